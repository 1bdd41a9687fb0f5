//! attach by `waitFor`: new processes, exec after fork, long names, timeout,
//! cancel, disconnect while waiting, and running processes.
//!
//! Each test waits for a copy of a fixture under its own name (no name is a
//! prefix of another) so that tests running in parallel never match each other.

use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::checks::*;
use crate::support::dap::REQUEST_TIMEOUT;
use crate::support::fixtures::renamed_fixture;
use crate::support::procfs;
use crate::support::{secs, Dap, Fixture, Target};

/// Starts a waitFor attach: sends `attach`, checks the `output` line, the
/// `progressStart` (if `progress`), `initialized`, and that configurationDone
/// is answered while the wait goes on. Returns the attach seq.
fn start_wait(dap: &mut Dap, name: &str, args: Value, progress: bool) -> (i64, Option<String>) {
    dap.initialize_with(json!({"supportsProgressReporting": progress}));
    let mut a = json!({"waitFor": name});
    a.as_object_mut()
        .unwrap()
        .extend(args.as_object().unwrap().clone());
    let seq = dap.send("attach", a);
    let output = dap.next_event("output", REQUEST_TIMEOUT);
    assert!(
        output["body"]["output"]
            .as_str()
            .unwrap_or("")
            .contains(name),
        "output event does not say what is awaited: {output}"
    );
    let progress_id = if progress {
        let p = dap.next_event("progressStart", REQUEST_TIMEOUT);
        assert_eq!(p["body"]["cancellable"], true, "{p}");
        Some(
            p["body"]["progressId"]
                .as_str()
                .unwrap_or_else(|| panic!("progressId not a string: {p}"))
                .to_string(),
        )
    } else {
        None
    };
    dap.next_event("initialized", REQUEST_TIMEOUT);
    let done = dap.send("configurationDone", Value::Null);
    let r = dap.response(done, REQUEST_TIMEOUT);
    assert_eq!(r["success"], true, "configurationDone during waitFor: {r}");
    assert!(
        dap.try_response(seq, std::time::Duration::ZERO).is_none(),
        "attach answered before a process exists"
    );
    // The session keeps answering while it waits.
    assert!(dap.threads().is_empty(), "threads while waiting");
    (seq, progress_id)
}

/// After the attach response of a waitFor: the process event names `pid`, and
/// the target runs on once the attach is answered.
fn finish_found(dap: &mut Dap, seq: i64, target: &mut Target, name: &str, progress: bool) {
    let r = dap.response(seq, REQUEST_TIMEOUT);
    assert_eq!(r["success"], true, "waitFor attach failed: {r}");
    let process = dap.events("process");
    assert_eq!(process.len(), 1, "{process:?}");
    assert_eq!(
        process[0]["body"]["systemProcessId"], target.pid,
        "{}",
        process[0]
    );
    assert_eq!(
        process[0]["body"]["startMethod"], "attach",
        "{}",
        process[0]
    );
    let pname = process[0]["body"]["name"].as_str().unwrap_or("");
    assert!(
        pname.contains(&name[..name.len().min(15)]),
        "process name {pname:?} is not {name:?}"
    );
    if progress {
        dap.next_event("progressEnd", REQUEST_TIMEOUT);
        assert!(dap.position_of_event("progressEnd") < dap.position_of_event("process"));
    }
    assert!(dap.position_of_event("process") < dap.position_of_response(seq));
    // The target was caught early; it runs on and reaches "ready".
    target.wait_ready(secs(10));
    assert_threads_match(dap, target.pid);
    assert!(procfs::live_tasks(target.pid)
        .iter()
        .all(|t| procfs::tgid_of(t.tracer_pid) == Some(dap.pid())));
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn waitfor_process_started_after_request() {
    require_harness!();
    let name = "wf_after";
    let exe = renamed_fixture(Fixture::Sleeping, name);
    let mut dap = Dap::start();
    let (seq, _) = start_wait(&mut dap, name, json!({}), true);
    let mut target = Target::spawn(Command::new(exe));
    finish_found(&mut dap, seq, &mut target, name, true);
}

#[test]
fn waitfor_sh_then_exec() {
    require_harness!();
    let name = "wf_shexec";
    let exe = renamed_fixture(Fixture::Sleeping, name);
    let mut dap = Dap::start();
    let (seq, _) = start_wait(&mut dap, name, json!({}), false);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("sleep 0.1; exec ./{name} 2"))
        .current_dir(exe.parent().unwrap());
    let mut target = Target::spawn(cmd);
    finish_found(&mut dap, seq, &mut target, name, false);
}

#[test]
fn waitfor_name_longer_than_15_chars() {
    require_harness!();
    let name = "wf_longname_target_program";
    assert!(name.len() > 15);
    let exe = renamed_fixture(Fixture::Sleeping, name);
    let mut dap = Dap::start();
    let (seq, _) = start_wait(&mut dap, name, json!({}), false);
    let mut target = Target::spawn(Command::new(exe));
    finish_found(&mut dap, seq, &mut target, name, false);
}

#[test]
fn waitfor_timeout() {
    require_harness!();
    let name = "wf_never_started";
    let mut dap = Dap::start();
    let started = Instant::now();
    let (seq, _) = start_wait(&mut dap, name, json!({"waitForTimeout": 300}), true);
    let r = dap.response(seq, REQUEST_TIMEOUT);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(300),
        "timed out early: {r}"
    );
    assert_error(&r, &[name, "within"]);
    // Still alive and answering.
    assert!(dap.threads().is_empty());
    dap.disconnect(json!({}));
}

fn cancel_case(name: &str, by_progress: bool) {
    let mut dap = Dap::start();
    let (seq, progress_id) = start_wait(&mut dap, name, json!({}), by_progress);
    let args = match progress_id {
        Some(id) => json!({"progressId": id}),
        None => json!({"requestId": seq}),
    };
    let r = dap.request("cancel", args);
    assert_eq!(r["success"], true, "cancel: {r}");
    let a = dap.response(seq, REQUEST_TIMEOUT);
    assert_eq!(a["success"], false, "{a}");
    assert_eq!(a["message"], "cancelled", "{a}");
    // A process started now is not attached to.
    let exe = renamed_fixture(Fixture::Sleeping, name);
    let target = Target::start_cmd(Command::new(exe));
    assert_eq!(procfs::tracer_pid(target.pid), Some(0));
    assert!(dap.threads().is_empty());
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn waitfor_cancel_by_request_id() {
    require_harness!();
    cancel_case("wf_cancel_req", false);
}

#[test]
fn waitfor_cancel_by_progress_id() {
    require_harness!();
    cancel_case("wf_cancel_prog", true);
}

#[test]
fn waitfor_disconnect_while_waiting() {
    require_harness!();
    let mut dap = Dap::start();
    let (seq, _) = start_wait(&mut dap, "wf_disconnected", json!({}), true);
    let done = dap.disconnect(json!({}));
    // The waiting attach is answered, as cancelled, before the disconnect is.
    let r = dap
        .try_response(seq, std::time::Duration::ZERO)
        .unwrap_or_else(|| {
            panic!(
                "the waiting attach was never answered; recent:\n{}",
                dap.recent()
            )
        });
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(r["message"], "cancelled", "{r}");
    assert!(
        dap.position_of_response(seq)
            < dap.position_of_response(done["request_seq"].as_i64().unwrap()),
        "the attach was answered after the disconnect"
    );
}

#[test]
fn waitfor_existing_process_with_wait_for_existing() {
    require_harness!();
    let name = "wf_exist_yes";
    let exe = renamed_fixture(Fixture::Sleeping, name);
    let target = Target::start_cmd(Command::new(exe));
    let mut dap = Dap::start();
    dap.initialize();
    let r = dap.attach(json!({"waitFor": name, "waitForExisting": true, "waitForTimeout": 10000}));
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(
        dap.events("process")[0]["body"]["systemProcessId"],
        target.pid
    );
    assert_threads_match(&mut dap, target.pid);
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn waitfor_existing_process_ignored_by_default() {
    require_harness!();
    let name = "wf_exist_no";
    let exe = renamed_fixture(Fixture::Sleeping, name);
    let old = Target::start_cmd(Command::new(&exe));
    let mut dap = Dap::start();
    let (seq, _) = start_wait(&mut dap, name, json!({"waitForInterval": 1}), false);
    // The running one is not taken; a new one is.
    assert_eq!(procfs::tracer_pid(old.pid), Some(0));
    let mut new = Target::spawn(Command::new(&exe));
    finish_found(&mut dap, seq, &mut new, name, false);
    assert_eq!(procfs::tracer_pid(old.pid), Some(0));
    old.assert_runs_on(false);
}

#[test]
fn waitfor_match_cmdline_prefix() {
    require_harness!();
    let name = "wf_cmdline_t";
    let exe = renamed_fixture(Fixture::Sleeping, name);
    let pattern = format!("{} 3", exe.display());
    let mut dap = Dap::start();
    let (seq, _) = start_wait(
        &mut dap,
        &pattern,
        json!({"waitForMatch": "cmdline"}),
        false,
    );
    // Same program, other arguments: not a match.
    let mut decoy_cmd = Command::new(&exe);
    decoy_cmd.arg("2");
    let decoy = Target::start_cmd(decoy_cmd);
    assert!(
        dap.try_response(seq, std::time::Duration::ZERO).is_none(),
        "attached to a process whose command line does not match"
    );
    assert_eq!(procfs::tracer_pid(decoy.pid), Some(0));
    let mut cmd = Command::new(&exe);
    cmd.arg("3");
    let mut target = Target::spawn(cmd);
    finish_found(&mut dap, seq, &mut target, name, false);
    assert_eq!(procfs::tracer_pid(decoy.pid), Some(0));
    decoy.assert_runs_on(false);
}
