//! Where symbols come from when the executable is not simply on disk: deleted after the
//! start, visible only inside the target's mount namespace (as in a container), or
//! stripped with the `program` attach argument naming an unstripped copy.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::checks::assert_error;
use crate::support::fixtures::{c_fixture, tmp_dir};
use crate::support::{skip_or_fail, Dap, Fixture, Target};

/// A private copy of the sleeping fixture at `name` in a fresh folder.
fn copy_of_sleeping(name: &str) -> PathBuf {
    let dir = tmp_dir().join(format!("symbol-files-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::copy(c_fixture(Fixture::Sleeping), &path).unwrap();
    path
}

fn start(program: &Path, args: &[&str]) -> Target {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let mut target = Target::spawn(cmd);
    target.wait_ready(crate::support::secs(15));
    target
}

/// The main thread's stack after an attach with `extra` arguments.
fn main_stack(target: &Target, extra: Value) -> (Dap, Vec<Value>) {
    let mut dap = Dap::start();
    dap.initialize();
    let mut args = json!({ "pid": target.pid, "stopOnEntry": true });
    args.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = dap.attach(args);
    assert_eq!(r["success"], true, "attach failed: {r}");
    let r = dap.ok("stackTrace", json!({ "threadId": target.pid }));
    let frames = r["body"]["stackFrames"].as_array().unwrap().clone();
    (dap, frames)
}

fn frame_named<'a>(frames: &'a [Value], name: &str) -> Option<&'a Value> {
    frames.iter().find(|f| f["name"] == name)
}

/// `main` of the sleeping fixture, with its source file and a line.
fn assert_main_with_line(frames: &[Value]) {
    let main = frame_named(frames, "main").unwrap_or_else(|| panic!("no main in {frames:#?}"));
    assert_eq!(main["source"]["name"], "sleeping.c", "{main}");
    assert!(main["line"].as_u64().unwrap() > 0, "{main}");
}

#[test]
fn a_deleted_executable_is_read_through_proc() {
    require_harness!();
    let program = copy_of_sleeping("deleted-after-start");
    let target = start(&program, &["1"]);
    std::fs::remove_file(&program).unwrap();
    let (mut dap, frames) = main_stack(&target, json!({}));
    assert_main_with_line(&frames);
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn an_executable_only_inside_the_targets_mount_namespace_is_found() {
    require_harness!();
    let fixture = c_fixture(Fixture::Sleeping);
    let inside = tmp_dir().join(format!("mount-ns-{}", std::process::id()));
    std::fs::create_dir_all(&inside).unwrap();
    // The target mounts a tmpfs over `inside` in its own mount namespace and runs a
    // copy from there: on the host the folder stays empty, as a container's files are
    // not at their own paths on the host.
    let script = format!(
        "mount -t tmpfs latch-test {dir} && cp {fixture} {dir}/contained && exec {dir}/contained 1",
        dir = inside.display(),
        fixture = fixture.display()
    );
    let probe = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return skip_or_fail("`unshare -m` is not available or not permitted (needs root or user namespaces; util-linux)");
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let mut target = Target::spawn(cmd);
    target.wait_ready(crate::support::secs(15));
    assert!(
        !inside.join("contained").exists(),
        "the copy must exist only inside the target's namespace"
    );
    let (mut dap, frames) = main_stack(&target, json!({}));
    assert_main_with_line(&frames);
    let modules = dap.ok("modules", json!({}));
    let contained = inside.join("contained").display().to_string();
    let module = modules["body"]["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == contained.as_str())
        .unwrap_or_else(|| panic!("no module {contained}: {modules}"))
        .clone();
    assert_eq!(module["symbolStatus"], "Symbols loaded.", "{module}");
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn program_names_an_unstripped_copy_of_a_stripped_executable() {
    require_harness!();
    let stripped = copy_of_sleeping("stripped");
    let status = Command::new("strip")
        .args(["--strip-all"])
        .arg(&stripped)
        .status()
        .expect("run strip (binutils)");
    assert!(status.success());
    let target = start(&stripped, &["1"]);

    // Without `program`: no symbol names the fixture's main.
    let (mut dap, frames) = main_stack(&target, json!({}));
    assert!(frame_named(&frames, "main").is_none(), "{frames:#?}");
    let unnamed = frames
        .iter()
        .find(|f| f["moduleId"] == stripped.display().to_string().as_str())
        .unwrap_or_else(|| panic!("no frame in the executable: {frames:#?}"));
    assert!(
        unnamed["name"].as_str().unwrap().ends_with("(stripped)"),
        "a frame without any symbol is named by address and module: {unnamed}"
    );
    dap.disconnect(json!({}));

    let unstripped = c_fixture(Fixture::Sleeping).display().to_string();
    let (mut dap, frames) = main_stack(&target, json!({ "program": unstripped }));
    assert_main_with_line(&frames);
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn an_unreadable_program_fails_the_attach_and_names_it() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["1"]);
    let mut dap = Dap::start();
    dap.initialize();
    let r = dap.attach(json!({ "pid": target.pid, "program": "/nonexistent/latch-test" }));
    assert_error(&r, &["program", "/nonexistent/latch-test"]);
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}
