//! latch driven by real DAP clients written by others: Microsoft's DebugClient
//! (`tests/clients/`, run with node's test runner).

use std::path::Path;
use std::process::Command;

#[test]
fn microsoft_debugclient() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/clients");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let ready = dir
        .join("node_modules/@vscode/debugadapter-testsupport")
        .exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ready {
        let why = "SKIPPED microsoft_debugclient: node or tests/clients/node_modules is missing; \
                   run `npm ci --prefix tests/clients` (needs node and npm)";
        assert!(!ci, "{why} (CI must run it)");
        eprintln!("{why}");
        return;
    }
    let output = Command::new("node")
        .arg("--test")
        .current_dir(&dir)
        .env("LATCH_BIN", env!("CARGO_BIN_EXE_latch"))
        .output()
        .expect("running node --test");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "DebugClient tests failed:\n{report}"
    );
    assert!(
        report.contains("# fail 0") && !report.contains("# pass 0"),
        "{report}"
    );
}
