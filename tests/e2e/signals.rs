//! Signals the target is owed while latch holds it, job control while attached, and
//! exec while attached.

use serde_json::json;

use crate::require_harness;
use crate::support::checks::*;
use crate::support::procfs;
use crate::support::{secs, Dap, Fixture, Target};

/// A signal sent while the target is stopped is delivered to its handler once it
/// runs again: after `continue`, and after a detach.
#[test]
fn a_signal_sent_during_a_stop_reaches_the_handler() {
    require_harness!();
    for detach in [false, true] {
        let mut target = Target::start(Fixture::Signals, &[]);
        let mut dap = Dap::attached(target.pid, true);
        dap.next_event("stopped", secs(10));
        target.signal(libc::SIGUSR1);
        // Every thread of the target stays stopped with the signal pending.
        assert_all_traced_and_stopped(target.pid, dap.pid());
        assert_eq!(target.printed("caught"), None);
        if detach {
            dap.disconnect(json!({}));
        } else {
            dap.ok("continue", json!({"threadId": target.pid}));
        }
        assert!(
            target.next_line("caught SIGUSR1", secs(10)).is_some(),
            "the handler did not run (detach: {detach})"
        );
        if !detach {
            // A second one while it runs goes straight through.
            target.signal(libc::SIGUSR1);
            assert!(target.next_line("caught SIGUSR1", secs(10)).is_some());
            dap.disconnect(json!({}));
        }
        target.assert_runs_on(false);
    }
}

/// A process stopped by job control before the attach stays stopped while attached
/// (PTRACE_LISTEN), and `kill -CONT` while attached lets it run, as it would without a
/// debugger; after the detach it runs on.
#[test]
fn sigcont_while_attached_resumes_a_job_stopped_target() {
    require_harness!();
    let target = Target::start(Fixture::Signals, &[]);
    target.signal(libc::SIGSTOP);
    assert!(procfs::wait_for(secs(10), || procfs::process_state(
        target.pid
    ) == Some('T')));
    let mut dap = Dap::attached(target.pid, false);
    // Still stopped by job control, though attached and "running" for the editor.
    let before = procfs::read_heartbeat(target.heartbeat_path());
    let tasks = procfs::live_tasks(target.pid);
    assert!(
        tasks.iter().all(|t| matches!(t.state, 'T' | 't')),
        "{tasks:?}"
    );
    target.signal(libc::SIGCONT);
    assert!(
        procfs::wait_for(secs(10), || {
            procfs::read_heartbeat(target.heartbeat_path()) >= before + 3
        }),
        "the target did not run after SIGCONT while attached: {:?}",
        procfs::all_tasks(target.pid)
    );
    dap.ok("pause", json!({"threadId": target.pid}));
    dap.next_event("stopped", secs(10));
    assert_threads_match(&mut dap, target.pid);
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// A thread that execs while attached: the new program is traced under the same pid,
/// its threads are the ones shown, and it runs on after the detach.
#[test]
fn exec_from_a_thread_while_attached() {
    require_harness!();
    let mut target = Target::start(Fixture::Signals, &[]);
    let mut dap = Dap::attached(target.pid, false);
    target.send_line("exec");
    assert!(target.next_line("execd", secs(10)).is_some(), "no exec");
    assert!(
        target.next_line("ready", secs(10)).is_some(),
        "no ready after exec"
    );
    dap.ok("pause", json!({"threadId": target.pid}));
    let stopped = dap.next_event("stopped", secs(10));
    assert_eq!(stopped["body"]["threadId"], target.pid, "{stopped}");
    assert_all_traced_and_stopped(target.pid, dap.pid());
    assert_threads_match(&mut dap, target.pid);
    dap.ok("continue", json!({"threadId": target.pid}));
    target.signal(libc::SIGUSR1);
    assert!(target.next_line("caught SIGUSR1", secs(10)).is_some());
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// Breakpoints survive an exec: the new program's thread waits at its exec while latch
/// reads it and puts in the breakpoints that match it, so a function the new program
/// runs first is caught, and the client hears of the new program (`process` event) and
/// of the breakpoint's new address (`breakpoint` event, reason `changed`).
#[test]
fn a_function_breakpoint_hits_in_the_program_an_exec_started() {
    require_harness!();
    let mut target = Target::start(Fixture::Signals, &[]);
    let mut dap = Dap::attached(target.pid, false);
    let set = dap.ok(
        "setFunctionBreakpoints",
        json!({"breakpoints": [{"name": "print_ready"}]}),
    );
    let breakpoint = &set["body"]["breakpoints"][0];
    assert_eq!(breakpoint["verified"], true, "{set}");
    target.send_line("exec");
    let stopped = dap.next_event("stopped", secs(10));
    assert_eq!(
        stopped["body"]["reason"], "function breakpoint",
        "{stopped}"
    );
    assert_eq!(stopped["body"]["hitBreakpointIds"][0], breakpoint["id"]);
    let process = dap.next_event("process", secs(1));
    assert_eq!(process["body"]["systemProcessId"], target.pid, "{process}");
    let changed = dap.next_event("breakpoint", secs(1));
    assert_eq!(changed["body"]["reason"], "changed", "{changed}");
    assert_eq!(changed["body"]["breakpoint"]["verified"], true, "{changed}");
    let trace = dap.ok(
        "stackTrace",
        json!({"threadId": stopped["body"]["threadId"], "levels": 3}),
    );
    let names: Vec<&str> = trace["body"]["stackFrames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(names.contains(&"print_ready"), "{names:?}");
    dap.ok("setFunctionBreakpoints", json!({"breakpoints": []}));
    dap.ok("continue", json!({"threadId": target.pid}));
    assert!(
        target.next_line("ready", secs(10)).is_some(),
        "the new program did not run on"
    );
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// A child process made by `clone` without `CLONE_THREAD` (and without SIGCHLD as its
/// exit signal) is traced through PTRACE_O_TRACECLONE, but it is another process, not
/// a thread of the target: latch lets it go at once and never lists it.
#[test]
fn a_cloned_child_process_is_not_a_thread_and_is_let_go() {
    require_harness!();
    let mut target = Target::start(Fixture::Signals, &[]);
    let mut dap = Dap::attached(target.pid, false);
    target.send_line("clone");
    let line = target
        .next_line("cloned ", secs(10))
        .expect("the target did not clone");
    let child: i32 = line["cloned ".len()..].trim().parse().unwrap();
    let untraced = procfs::wait_for(secs(5), || {
        procfs::all_tasks(child)
            .iter()
            .all(|t| t.tracer_pid == 0 && !matches!(t.state, 't' | 'T'))
    });
    assert!(
        untraced,
        "the cloned process is held: {:?}",
        procfs::all_tasks(child)
    );
    dap.ok("pause", json!({"threadId": target.pid}));
    dap.next_event("stopped", secs(10));
    assert_threads_match(&mut dap, target.pid);
    let started: Vec<_> = dap
        .events("thread")
        .into_iter()
        .filter(|e| e["body"]["threadId"] == child)
        .collect();
    assert!(
        started.is_empty(),
        "the cloned process was announced as a thread: {started:?}"
    );
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
    assert!(procfs::all_tasks(child).iter().all(|t| t.tracer_pid == 0));
}

/// A thread that latch may not seize (here: another tracer holds it, which only the
/// leader's TracerPid would have shown) is passed over, and the user is told which
/// one and why: it is not stopped with the others.
#[test]
fn a_thread_that_cannot_be_seized_is_named() {
    require_harness!();
    let target = Target::start(Fixture::Signals, &[]);
    let worker = target.tid_named("worker");
    // Another tracer: a thread of this test seizes the worker (it keeps running) and
    // holds it until told to end, which detaches it.
    let (seized_tx, seized_rx) = std::sync::mpsc::channel();
    let (end_tx, end_rx) = std::sync::mpsc::channel::<()>();
    let tracer = std::thread::spawn(move || {
        // SAFETY: PTRACE_SEIZE of a thread of our child, no pointers.
        let rc = unsafe {
            libc::ptrace(
                libc::PTRACE_SEIZE,
                worker,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        let _ = seized_tx.send((rc, std::io::Error::last_os_error()));
        let _ = end_rx.recv();
    });
    let (rc, err) = seized_rx.recv().unwrap();
    assert_eq!(rc, 0, "the test could not seize {worker}: {err}");
    let mut dap = Dap::attached(target.pid, true);
    dap.next_event("stopped", secs(10));
    let told = dap.events("output").iter().any(|e| {
        let text = e["body"]["output"].as_str().unwrap_or_default();
        text.contains(&worker.to_string()) && text.contains("traced by")
    });
    assert!(
        told,
        "nobody said {worker} was not attached: {:?}",
        dap.events("output")
    );
    dap.disconnect(json!({}));
    drop(end_tx);
    tracer.join().unwrap();
    target.assert_runs_on(false);
}
