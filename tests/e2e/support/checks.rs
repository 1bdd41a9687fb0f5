//! Assertions shared by the test files.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::dap::Dap;
use super::procfs;
use super::target::Target;

/// `initialize` advertises what the contract requires.
pub fn assert_capabilities(caps: &Value) {
    for cap in [
        "supportsConfigurationDoneRequest",
        "supportTerminateDebuggee",
        "supportSuspendDebuggee",
        "supportsTerminateRequest",
        "supportsCancelRequest",
    ] {
        assert_eq!(caps[cap], true, "capability {cap} not advertised: {caps}");
    }
}

/// The `threads` response equals the live tasks of the (stopped or static)
/// target, with readable names and the main thread marked.
pub fn assert_threads_match(dap: &mut Dap, pid: i32) -> Vec<(i64, String)> {
    let threads = dap.threads();
    let tasks = procfs::live_tasks(pid);
    let reported: BTreeSet<i64> = threads.iter().map(|t| t.0).collect();
    let live: BTreeSet<i64> = tasks.iter().map(|t| t.tid as i64).collect();
    assert_eq!(
        reported.len(),
        threads.len(),
        "duplicate thread ids: {threads:?}"
    );
    assert_eq!(
        reported, live,
        "threads response {threads:?} != /proc/{pid}/task {tasks:?}"
    );
    for (id, name) in &threads {
        let task = tasks.iter().find(|t| t.tid as i64 == *id).unwrap();
        assert!(
            name.contains(&task.comm),
            "thread name {name:?} lacks comm {:?}",
            task.comm
        );
        assert!(
            name.contains(&id.to_string()),
            "thread name {name:?} lacks tid {id}"
        );
        if *id == pid as i64 {
            assert!(
                name.ends_with(" [main]"),
                "main thread name {name:?} not marked"
            );
        } else {
            assert!(
                !name.ends_with(" [main]"),
                "non-main thread {name:?} marked main"
            );
        }
    }
    threads
}

/// The events of an attach by pid: `process` (attach, the pid), a `thread`
/// `started` per task, all before `initialized`.
pub fn assert_attach_events(dap: &Dap, pid: i32, expected_tids: &BTreeSet<i64>) {
    let process = dap.events("process");
    assert_eq!(process.len(), 1, "process events: {process:?}");
    assert_eq!(
        process[0]["body"]["startMethod"], "attach",
        "{}",
        process[0]
    );
    assert_eq!(process[0]["body"]["systemProcessId"], pid, "{}", process[0]);
    let initialized = dap
        .position_of_event("initialized")
        .expect("no initialized event");
    let process_at = dap.position_of_event("process").unwrap();
    assert!(process_at < initialized, "process event after initialized");
    let started: Vec<i64> = dap.log[..initialized]
        .iter()
        .filter(|m| {
            m["type"] == "event" && m["event"] == "thread" && m["body"]["reason"] == "started"
        })
        .map(super::thread_id)
        .collect();
    let started_set: BTreeSet<i64> = started.iter().copied().collect();
    assert_eq!(
        started.len(),
        started_set.len(),
        "duplicate thread started events: {started:?}"
    );
    assert_eq!(
        &started_set, expected_tids,
        "thread started events before initialized"
    );
}

/// The `stopped` event of stopOnEntry.
pub fn assert_entry_stop(dap: &mut Dap, expected_thread: i64) {
    let stopped = dap.next_event("stopped", super::dap::REQUEST_TIMEOUT);
    assert_eq!(stopped["body"]["reason"], "entry", "{stopped}");
    assert_eq!(stopped["body"]["allThreadsStopped"], true, "{stopped}");
    assert_eq!(super::thread_id(&stopped), expected_thread, "{stopped}");
}

/// Every live task of `pid` is in ptrace-stop and traced by `tracer` (latch's pid).
pub fn assert_all_traced_and_stopped(pid: i32, tracer: i32) {
    let mut tasks = Vec::new();
    let ok = procfs::wait_for(Duration::from_secs(5), || {
        tasks = procfs::live_tasks(pid);
        tasks
            .iter()
            .all(|t| t.state == 't' && procfs::tgid_of(t.tracer_pid) == Some(tracer))
    });
    assert!(
        ok,
        "not every task of {pid} is stopped by latch {tracer}: {tasks:?}"
    );
}

/// Every live task of `pid` is traced by latch and running (not stopped).
pub fn assert_traced_and_running(target: &Target, tracer: i32) {
    let mut tasks = Vec::new();
    let ok = procfs::wait_for(Duration::from_secs(5), || {
        tasks = procfs::live_tasks(target.pid);
        tasks
            .iter()
            .all(|t| !matches!(t.state, 't' | 'T') && procfs::tgid_of(t.tracer_pid) == Some(tracer))
    });
    assert!(
        ok,
        "tasks of {} not running under latch {tracer}: {tasks:?}",
        target.pid
    );
    procfs::assert_heartbeat(target.heartbeat_path(), target.pid);
}

/// An error response whose message and `body.error.format` contain every
/// keyword (case-insensitively); returns the user-visible text.
pub fn assert_error(response: &Value, keywords: &[&str]) -> String {
    assert_eq!(response["success"], false, "expected an error: {response}");
    let message = response["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {response}"));
    assert!(!message.is_empty(), "empty message: {response}");
    let error = &response["body"]["error"];
    let format = error["format"]
        .as_str()
        .unwrap_or_else(|| panic!("no body.error.format: {response}"));
    assert_eq!(
        error["showUser"], true,
        "error not shown to the user: {response}"
    );
    let text = format!("{message}\n{format}").to_lowercase();
    for k in keywords {
        assert!(
            text.contains(&k.to_lowercase()),
            "error lacks {k:?}: {response}"
        );
    }
    format.to_string()
}
