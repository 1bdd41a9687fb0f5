//! What the variables tests share: latch's rows as a map, gdb (or rust-gdb) stopped at a
//! fixture's line by its own breakpoint after latch detached, and the detach itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::target::run_with_deadline;
use super::{secs, text, Dap, Target};

/// The fixture binary `name` in the tests' output folder, built by `command` (given the
/// path to write) once per test run: tests run in parallel, and one building the file
/// while another starts it fails ("Text file busy", "Permission denied").
pub fn built_once(name: &str, command: impl FnOnce(&Path) -> Command) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(binary) = built.get(name) {
        return binary.clone();
    }
    let dir = super::fixtures::out_dir().join("values");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(name);
    let mut command = command(&binary);
    let out = command
        .output()
        .unwrap_or_else(|err| panic!("building {name}: cannot run {command:?}: {err}"));
    assert!(
        out.status.success(),
        "building {name} ({command:?}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    built.insert(name.to_string(), binary.clone());
    binary
}

/// name -> (value, type, variablesReference), as latch lists them.
pub type Rows = BTreeMap<String, (String, String, i64)>;

/// The rows of a `variables` answer.
pub fn rows(response: &Value) -> Rows {
    response["body"]["variables"]
        .as_array()
        .unwrap_or_else(|| panic!("no variables in {response}"))
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                (
                    v["value"].as_str().unwrap().to_string(),
                    v["type"].as_str().unwrap_or_default().to_string(),
                    v["variablesReference"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Every variable under `reference`.
pub fn variables(dap: &mut Dap, reference: i64) -> Rows {
    rows(&dap.ok("variables", json!({ "variablesReference": reference })))
}

/// The children's names in the order latch gives them (`filter`: DAP's `named` or
/// `indexed`).
pub fn child_names(dap: &mut Dap, reference: i64, filter: Option<&str>) -> Vec<String> {
    let mut arguments = json!({ "variablesReference": reference });
    if let Some(filter) = filter {
        arguments["filter"] = json!(filter);
    }
    let r = dap.ok("variables", arguments);
    r["body"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

/// `gdb` (gdb itself, or rust-gdb) attached to `pid`, stopped at `place` (`file:line`)
/// by its own breakpoint, then running `setup` before the stop and `commands` after it:
/// what it printed after the stop. Panics when gdb does not stop there.
pub fn gdb_stopped_at(
    gdb: &Path,
    pid: i32,
    binary: &Path,
    place: &str,
    setup: &[&str],
    commands: &[String],
) -> String {
    let mut command = Command::new(gdb);
    command
        .args(["-batch", "-nx", "-iex", "set debuginfod enabled off"])
        .args(["-ex", "set width 0", "-ex", "set height 0"]);
    for each in setup {
        command.arg("-ex").arg(each);
    }
    command
        .arg("-ex")
        .arg(format!("break {place}"))
        .args(["-ex", "continue"]);
    for each in commands {
        command.arg("-ex").arg(each);
    }
    let out = run_with_deadline(command.arg(binary).arg(pid.to_string()), secs(60));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match text.split_once("Breakpoint 1, ") {
        Some((_, after_stop)) => after_stop.to_string(),
        None => panic!(
            "{} did not stop at {place}:\n{text}\n{}",
            gdb.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Breakpoints in `source` out, disconnect; the target runs on untraced with its code
/// as in its files.
pub fn detach(dap: &mut Dap, target: &Target, source: &Path) {
    dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": source }, "breakpoints": [] }),
    );
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
    text::assert_code_as_in_files(target.pid);
}
