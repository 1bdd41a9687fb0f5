//! Attaching by pid to each kind of target, the threads it reports, pause and
//! continue, thread and exit events, and a clean detach.

use serde_json::json;
use std::collections::BTreeSet;

use crate::require_harness;
use crate::support::checks::*;
use crate::support::procfs;
use crate::support::{secs, thread_id, Dap, Fixture, Target};

/// Attach with stopOnEntry, check events, the stop, the threads, that every
/// task is stopped by latch; disconnect and check the target runs on.
fn attach_stopped_roundtrip(target: &Target, expected_entry_thread: i64, was_stopped_before: bool) {
    let mut dap = Dap::start();
    let caps = dap.initialize();
    assert_capabilities(&caps);
    let tids_before = procfs::live_tids(target.pid)
        .iter()
        .map(|&t| t as i64)
        .collect::<BTreeSet<_>>();
    // The thread view, for a Go program too (`goroutines` tests its goroutine view).
    let r = dap.attach(json!({ "pid": target.pid, "stopOnEntry": true, "goroutines": false }));
    assert_eq!(r["success"], true, "attach failed: {r}");
    assert_attach_events(&dap, target.pid, &tids_before);
    assert_entry_stop(&mut dap, expected_entry_thread);
    assert_all_traced_and_stopped(target.pid, dap.pid());
    assert_threads_match(&mut dap, target.pid);
    dap.disconnect(json!({}));
    target.assert_runs_on(was_stopped_before);
}

#[test]
fn attach_sleeping_threads() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["8"]);
    attach_stopped_roundtrip(&target, target.pid as i64, false);
}

#[test]
fn attach_spinning_threads() {
    require_harness!();
    let target = Target::start(Fixture::Spinning, &["4"]);
    attach_stopped_roundtrip(&target, target.pid as i64, false);
}

#[test]
fn attach_target_stopped_before_attach() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["3"]);
    target.signal(libc::SIGSTOP);
    assert!(
        procfs::wait_for(secs(5), || procfs::live_tasks(target.pid)
            .iter()
            .all(|t| t.state == 'T')),
        "SIGSTOP did not stop the target"
    );
    attach_stopped_roundtrip(&target, target.pid as i64, true);
    // Left stopped, as it was; it resumes normally on SIGCONT.
    target.signal(libc::SIGCONT);
    target.assert_runs_on(false);
}

#[test]
fn attach_after_main_thread_exited() {
    require_harness!();
    let target = Target::start(Fixture::PthreadExit, &["3"]);
    let main = procfs::all_tasks(target.pid)
        .into_iter()
        .find(|t| t.tid == target.pid);
    assert_eq!(
        main.map(|t| t.state),
        Some('Z'),
        "the fixture's main thread has not exited"
    );
    let mut dap = Dap::start();
    dap.initialize();
    let live: BTreeSet<i64> = procfs::live_tids(target.pid)
        .iter()
        .map(|&t| t as i64)
        .collect();
    dap.attach_pid(target.pid, true);
    assert_attach_events(&dap, target.pid, &live);
    let stopped = dap.next_event("stopped", secs(10));
    assert_eq!(stopped["body"]["reason"], "entry", "{stopped}");
    assert_eq!(stopped["body"]["allThreadsStopped"], true, "{stopped}");
    let tid = thread_id(&stopped);
    assert!(
        live.contains(&tid),
        "stopped on {tid}, not a live thread of {live:?}"
    );
    assert_all_traced_and_stopped(target.pid, dap.pid());
    let threads = dap.threads();
    let reported: BTreeSet<i64> = threads.iter().map(|t| t.0).collect();
    assert_eq!(reported, live, "threads {threads:?}");
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn attach_go_program() {
    require_harness!();
    let Some(target) = Target::start_go(&["2", "4"]) else {
        return;
    };
    attach_stopped_roundtrip(&target, target.pid as i64, false);
}

#[test]
fn attach_short_lived_threads() {
    require_harness!();
    let target = Target::start(Fixture::Churn, &["2"]);
    let mut dap = Dap::attached(target.pid, true);
    assert_entry_stop(&mut dap, target.pid as i64);
    // Everything is stopped, so the task list is frozen and must match exactly.
    assert_all_traced_and_stopped(target.pid, dap.pid());
    assert_threads_match(&mut dap, target.pid);
    let started_at_attach: BTreeSet<i64> = dap
        .events("thread")
        .iter()
        .filter(|e| e["body"]["reason"] == "started")
        .map(thread_id)
        .collect();
    // Every thread the attach stopped was announced at once, short-lived ones too.
    let live: BTreeSet<i64> = procfs::live_tids(target.pid)
        .into_iter()
        .map(i64::from)
        .collect();
    assert_eq!(started_at_attach, live, "thread events of the attach");

    // Running: threads come and go. Their `thread` events are coalesced by latch's
    // reporting window (thread_events.rs tests them); `threads` answers at once.
    let r = dap.ok("continue", json!({"threadId": target.pid}));
    assert_eq!(r["body"]["allThreadsContinued"], true, "{r}");

    // While running: every long-lived thread is reported, and every reported thread is
    // a task of the target, or one that has gone since (a short-lived thread may die
    // before the test reads /proc; it is then no other process's task either).
    let threads = dap.threads();
    let reported: BTreeSet<i64> = threads.iter().map(|t| t.0).collect();
    for t in &target.initial {
        assert!(
            reported.contains(&(t.tid as i64)),
            "long-lived thread {t:?} missing from {threads:?}"
        );
    }
    for tid in &reported {
        assert!(
            procfs::tgid_of(*tid as i32).is_none_or(|p| p == target.pid),
            "reported thread {tid} is a task of another process"
        );
    }
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn threads_truthful_while_running_and_pause_continue() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["5"]);
    let mut dap = Dap::start();
    dap.initialize();
    // Before the attach there are no threads.
    assert!(dap.threads().is_empty(), "threads before attach");
    dap.attach_pid(target.pid, false);
    assert!(
        dap.events("stopped").is_empty(),
        "stopped without stopOnEntry: {:?}",
        dap.events("stopped")
    );
    assert_traced_and_running(&target, dap.pid());
    assert_threads_match(&mut dap, target.pid);
    assert_traced_and_running(&target, dap.pid());

    let r = dap.request("pause", json!({"threadId": target.pid}));
    assert_eq!(r["success"], true, "pause: {r}");
    let stopped = dap.next_event("stopped", secs(10));
    assert_eq!(stopped["body"]["reason"], "pause", "{stopped}");
    assert_eq!(stopped["body"]["allThreadsStopped"], true, "{stopped}");
    assert!(
        dap.position_of_response(r["request_seq"].as_i64().unwrap())
            < dap.position_of_event("stopped")
    );
    let tid = thread_id(&stopped);
    assert!(
        procfs::tgid_of(tid as i32) == Some(target.pid),
        "stopped on {tid}, not a thread of the target"
    );
    assert_all_traced_and_stopped(target.pid, dap.pid());
    assert_threads_match(&mut dap, target.pid);

    let r = dap.ok("continue", json!({"threadId": tid}));
    assert_eq!(r["body"]["allThreadsContinued"], true, "{r}");
    assert_traced_and_running(&target, dap.pid());

    // A second pause/continue round works the same.
    dap.ok("pause", json!({"threadId": target.pid}));
    let stopped = dap.next_event("stopped", secs(10));
    assert_eq!(stopped["body"]["reason"], "pause", "{stopped}");
    assert_all_traced_and_stopped(target.pid, dap.pid());
    dap.ok("continue", json!({"threadId": target.pid}));
    assert_traced_and_running(&target, dap.pid());

    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// latch keeps the names it read while every thread was stopped; a thread renamed while
/// the target ran must show its new name at the next stop.
#[test]
fn thread_names_follow_renames_between_stops() {
    require_harness!();
    let mut target = Target::start(Fixture::Sleeping, &["3"]);
    let mut dap = Dap::start();
    dap.initialize();
    dap.attach_pid(target.pid, true);
    dap.next_event("stopped", secs(10));
    let worker = assert_threads_match(&mut dap, target.pid)
        .into_iter()
        .find(|(id, _)| *id != target.pid as i64)
        .expect("a worker thread")
        .0;
    // Asked twice while stopped: the second answer comes from what was read ahead.
    assert_threads_match(&mut dap, target.pid);

    dap.ok("continue", json!({"threadId": target.pid}));
    target.send_line(&format!("rename {worker} renamed-worker"));
    wait_until_renamed(&target, &[(worker, "renamed-worker".into())]);
    dap.ok("pause", json!({"threadId": target.pid}));
    dap.next_event("stopped", secs(10));
    let names = assert_threads_match(&mut dap, target.pid);
    let (_, name) = names.iter().find(|(id, _)| *id == worker).unwrap();
    // comm holds 15 bytes.
    assert!(name.contains("renamed-worker"), "{names:?}");

    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// Waits (10 s at most) until each thread's `comm` is its new name: the fixture renames
/// its threads itself, after reading the command.
fn wait_until_renamed<T: Copy + std::fmt::Display>(target: &Target, renamed: &[(T, String)]) {
    let deadline = std::time::Instant::now() + secs(10);
    for (tid, name) in renamed {
        let comm = format!("/proc/{}/task/{tid}/comm", target.pid);
        while std::fs::read_to_string(&comm).unwrap().trim_end() != name {
            assert!(
                std::time::Instant::now() < deadline,
                "the fixture did not rename {tid}"
            );
            std::thread::yield_now();
        }
    }
}

/// Hundreds of threads, each renamed to a name of its own: latch reads their names side
/// by side on several threads, and every thread must still get its own. Asked while the
/// target runs, so that no name comes from what was read ahead at a stop.
#[test]
fn many_threads_each_listed_with_its_own_name() {
    require_harness!();
    let mut target = Target::start(Fixture::Sleeping, &["600"]);
    let renamed: Vec<(i32, String)> = target
        .initial
        .iter()
        .filter(|t| t.tid != target.pid)
        .map(|t| (t.tid, format!("w{}", t.tid)))
        .collect();
    for (tid, name) in &renamed {
        target.send_line(&format!("rename {tid} {name}"));
    }
    wait_until_renamed(&target, &renamed);
    let mut dap = Dap::attached(target.pid, false);
    let names = assert_threads_match(&mut dap, target.pid);
    for (tid, name) in &renamed {
        let (_, listed) = names.iter().find(|(id, _)| *id == *tid as i64).unwrap();
        assert!(
            listed.starts_with(&format!("{name} ")),
            "thread {tid}: {listed:?}"
        );
    }
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn attach_pid_as_string_and_process_id_alias() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["2"]);
    for args in [
        json!({"pid": target.pid.to_string()}),
        json!({"processId": target.pid}),
    ] {
        let mut dap = Dap::start();
        dap.initialize();
        let r = dap.attach(args.clone());
        assert_eq!(r["success"], true, "attach {args}: {r}");
        assert_eq!(
            dap.events("process")[0]["body"]["systemProcessId"],
            target.pid
        );
        assert_traced_and_running(&target, dap.pid());
        dap.disconnect(json!({}));
        target.assert_runs_on(false);
    }
}

#[test]
fn target_exit_sends_exited_then_terminated() {
    require_harness!();
    let mut target = Target::start(Fixture::Sleeping, &["2"]);
    let mut dap = Dap::attached(target.pid, false);
    target.send_line("exit 7");
    let exited = dap.next_event("exited", secs(10));
    assert_eq!(exited["body"]["exitCode"], 7, "{exited}");
    dap.next_event("terminated", secs(10));
    assert!(dap.position_of_event("exited") < dap.position_of_event("terminated"));
    let st = target.wait_exit(secs(10));
    assert_eq!(st.code(), Some(7));
}

#[test]
fn target_killed_reports_signal_exit_code() {
    require_harness!();
    let mut target = Target::start(Fixture::Spinning, &["2"]);
    let mut dap = Dap::attached(target.pid, false);
    target.signal(libc::SIGKILL);
    let exited = dap.next_event("exited", secs(10));
    assert_eq!(exited["body"]["exitCode"], 128 + libc::SIGKILL, "{exited}");
    dap.next_event("terminated", secs(10));
    assert!(dap.position_of_event("exited") < dap.position_of_event("terminated"));
    target.wait_exit(secs(10));
}

#[test]
fn target_exit_while_stopped_is_reported() {
    require_harness!();
    // Killed while latch holds it stopped: still exited then terminated.
    let mut target = Target::start(Fixture::Sleeping, &["2"]);
    let mut dap = Dap::attached(target.pid, true);
    dap.next_event("stopped", secs(10));
    target.signal(libc::SIGKILL);
    let exited = dap.next_event("exited", secs(10));
    assert_eq!(exited["body"]["exitCode"], 128 + libc::SIGKILL, "{exited}");
    dap.next_event("terminated", secs(10));
    target.wait_exit(secs(10));
}

/// Regression: a clone event drained after its child already ran and exited used to
/// bring the child back as a phantom thread that never stopped. Every pause must list
/// only live tasks, all of them stopped by latch.
#[test]
fn pauses_while_threads_churn_list_only_live_stopped_threads() {
    require_harness!();
    let mut target = Target::start(Fixture::Churn, &["4", "burst"]);
    let mut dap = Dap::attached(target.pid, false);
    target.send_line("go");
    for round in 0..5 {
        // Let threads come and go between the pauses.
        dap.drain_for(std::time::Duration::from_millis(100));
        let r = dap.request("pause", json!({"threadId": target.pid}));
        assert_eq!(r["success"], true, "round {round}: {r}");
        dap.next_event("stopped", secs(10));
        assert_all_traced_and_stopped(target.pid, dap.pid());
        let live = procfs::live_tids(target.pid);
        for (tid, name) in dap.threads() {
            assert!(
                live.contains(&(tid as i32)),
                "round {round}: latch lists thread {tid} ({name}), which is not a live task: {live:?}"
            );
        }
        dap.ok("continue", json!({"threadId": target.pid}));
    }
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// Regression: a main thread that calls pthread_exit while attached leaves a zombie
/// leader that never stops; pause and detach must not wait for it, and it must not be
/// listed or chosen as the stopped thread.
#[test]
fn main_thread_exits_while_attached() {
    require_harness!();
    let mut target = Target::start(Fixture::Sleeping, &["3"]);
    let mut dap = Dap::attached(target.pid, false);
    target.send_line("leave");
    assert!(
        procfs::wait_for(secs(5), || procfs::process_state(target.pid) == Some('Z')),
        "the main thread did not exit"
    );
    let live = procfs::live_tasks(target.pid);
    let r = dap.request("pause", json!({}));
    assert_eq!(r["success"], true, "{r}");
    let stopped = dap.next_event("stopped", secs(10));
    let tid = thread_id(&stopped);
    assert!(
        live.iter().any(|t| i64::from(t.tid) == tid),
        "stopped names thread {tid}, not a live task: {stopped}"
    );
    let listed: BTreeSet<i64> = dap.threads().into_iter().map(|(tid, _)| tid).collect();
    let expected: BTreeSet<i64> = live.iter().map(|t| i64::from(t.tid)).collect();
    assert_eq!(listed, expected, "threads after the main thread left");
    dap.disconnect(json!({}));
    procfs::assert_runs_on(target.pid, &target.heartbeat, &live, false);
}

/// A thread id given as the pid (copied from `top -H` or `ps -L`): latch attaches to the
/// whole process, says so, marks the real main thread, and reports the named thread as
/// the one stopped.
#[test]
fn attach_to_a_thread_id_attaches_its_process() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let tid = target
        .initial
        .iter()
        .find(|t| t.tid != target.pid && t.comm == "sleeper")
        .expect("a sleeper thread")
        .tid;
    let mut dap = Dap::start();
    dap.initialize();
    let tids: BTreeSet<i64> = procfs::live_tids(target.pid)
        .iter()
        .map(|&t| t as i64)
        .collect();
    dap.attach_pid(tid, true);
    assert_attach_events(&dap, target.pid, &tids);
    assert_entry_stop(&mut dap, tid as i64);
    let said = dap
        .events("output")
        .iter()
        .filter_map(|e| e["body"]["output"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("");
    let expected = format!("{tid} is a thread of process {} (sleeping)", target.pid);
    assert!(
        said.contains(&expected),
        "no {expected:?} in the output: {said}"
    );
    assert_all_traced_and_stopped(target.pid, dap.pid());
    // The real main thread is marked, the named one is not.
    assert_threads_match(&mut dap, target.pid);
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}
