//! Stops and detaches at the edges: threads that cannot stop when asked (blocked in
//! the kernel), a panic on the ptrace thread, a client that stopped reading.

use serde_json::json;

use crate::require_harness;
use crate::support::procfs;
use crate::support::{secs, Dap, Fixture, Target};

/// The vforker of the vfork fixture sleeps uninterruptibly until its child exits: it
/// misses the stop deadline at the attach, and cannot be detached while it runs. What
/// latch still traces after it answered `disconnect` (while it lingers for the
/// client) is what it would leave stopped: the vforker's pending interrupt stops it
/// as soon as its vfork returns, with nobody left to resume it.
#[test]
fn a_thread_that_never_stopped_is_released_at_detach() {
    require_harness!();
    let mut target = Target::start(Fixture::Vfork, &[]);
    let vforker = target.tid_named("vforker");
    let mut dap = Dap::attached(target.pid, true);
    dap.next_event("stopped", secs(10));
    dap.ok("disconnect", json!({}));
    assert!(dap.is_running(), "latch should linger after disconnect");
    let traced: Vec<_> = procfs::all_tasks(target.pid)
        .into_iter()
        .filter(|t| t.tracer_pid != 0)
        .collect();
    assert!(
        traced.is_empty(),
        "after disconnect latch still traces {traced:?} (the vforker is {vforker})"
    );
    // Its vfork returns and it runs on, untraced.
    target.send_line("release");
    assert!(
        target.next_line("vfork-done", secs(10)).is_some(),
        "the vforker did not run on after its child exited: {:?}",
        procfs::all_tasks(target.pid)
    );
    assert!(dap.wait_exit(secs(10)).success());
    target.assert_runs_on(false);
}

/// The vforker misses the stop at the attach; when its vfork returns while the editor
/// shows the process paused, it must stay stopped with the rest, not run on alone.
/// It is named while it runs, and a later `pause` does not wait the whole stop
/// deadline again for a thread still blocked where the last stop found it.
#[test]
fn a_thread_that_stops_late_stays_stopped_while_paused() {
    require_harness!();
    let mut target = Target::start(Fixture::Vfork, &[]);
    let vforker = target.tid_named("vforker");
    let mut dap = Dap::attached(target.pid, true);
    let stopped = dap.next_event("stopped", secs(10));
    let description = stopped["body"]["description"].as_str().unwrap_or_default();
    assert!(
        description.contains(&vforker.to_string()),
        "the stop does not name the thread that still runs ({vforker}): {stopped}"
    );
    let named = |dap: &mut Dap| {
        dap.threads()
            .into_iter()
            .find(|(id, _)| *id == vforker as i64)
            .map(|(_, name)| name)
            .unwrap_or_else(|| panic!("no thread {vforker} in `threads`"))
    };
    let name = named(&mut dap);
    assert!(name.contains("running"), "{name}");

    // Its vfork returns (the target's own threads are stopped and cannot release the
    // child: the test kills it): its pending interrupt stops it, and it stays stopped.
    end_vfork_child(target.pid, vforker);
    let pid = target.pid;
    let state = |tid: i32| {
        procfs::all_tasks(pid)
            .into_iter()
            .find(|t| t.tid == tid)
            .map(|t| t.state)
    };
    let reached_stop = procfs::wait_for(secs(10), || state(vforker) == Some('t'));
    // A request goes through the ptrace thread, which handles the stop's event before
    // it answers: after it, latch has decided what to do with the late stop.
    let name = named(&mut dap);
    let mut target_out = target.printed("vfork-done");
    assert!(
        reached_stop && state(vforker) == Some('t') && target_out.is_none(),
        "the late thread ran on while the process is shown paused: state {:?}, printed {target_out:?}",
        state(vforker)
    );
    assert!(!name.contains("running"), "{name}");

    // `continue` lets it go on, into its next vfork.
    dap.ok("continue", json!({"threadId": target.pid}));
    target_out = target.next_line("vfork-done", secs(10));
    assert!(
        target_out.is_some(),
        "the vforker did not go on after continue"
    );
    assert!(
        procfs::wait_for(secs(10), || state(vforker) == Some('D')),
        "the vforker is not blocked in its next vfork: {:?}",
        state(vforker)
    );
    // Blocked anew: the first pause waits the stop deadline for it, and names it.
    dap.ok("pause", json!({"threadId": target.pid}));
    let stopped = dap.next_event("stopped", secs(10));
    let description = stopped["body"]["description"].as_str().unwrap_or_default();
    assert!(description.contains(&vforker.to_string()), "{stopped}");
    dap.ok("continue", json!({"threadId": target.pid}));
    // Still blocked in the same vfork: a pause now does not wait the deadline again.
    let started = std::time::Instant::now();
    dap.ok("pause", json!({"threadId": target.pid}));
    let stopped = dap.next_event("stopped", secs(10));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "pause took {:?}",
        started.elapsed()
    );
    let description = stopped["body"]["description"].as_str().unwrap_or_default();
    assert!(description.contains(&vforker.to_string()), "{stopped}");
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// Kills the child a vfork fixture's vforker waits for, so that its vfork returns.
fn end_vfork_child(pid: i32, vforker: i32) {
    let path = format!("/proc/{pid}/task/{vforker}/children");
    let children = std::fs::read_to_string(&path).unwrap_or_default();
    let child: i32 = children
        .split_whitespace()
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no vfork child in {path}: {children:?}"));
    // SAFETY: kill with a pid read from /proc.
    assert_eq!(unsafe { libc::kill(child, libc::SIGKILL) }, 0);
}

/// A panic on the ptrace thread itself (forced in debug builds by
/// `LATCH_TEST_PANIC_ON=ptrace:<command>`): the tracer lets the target go as that
/// thread unwinds, and the session, which can do nothing more for the process, says so
/// and ends instead of answering every later request with an error.
#[test]
fn panic_on_the_ptrace_thread_detaches_and_ends_the_session() {
    require_harness!();
    let target = Target::start(Fixture::Spinning, &["2"]);
    let prefix = vec![
        "env".to_string(),
        "LATCH_TEST_PANIC_ON=ptrace:stop_all".to_string(),
    ];
    let mut dap = Dap::start_with(prefix, &[], true);
    dap.initialize();
    dap.attach_pid(target.pid, false);
    let pause = dap.send("pause", json!({"threadId": target.pid}));
    let response = dap.response(pause, secs(10));
    assert_eq!(response["success"], false, "{response}");
    dap.next_event("terminated", secs(10));
    let status = dap.wait_exit(secs(10));
    assert!(
        !status.success(),
        "latch should report the failure: {status}"
    );
    assert!(
        dap.log_text().contains("LATCH_TEST_PANIC_ON"),
        "{}",
        dap.log_text()
    );
    let said = dap.events("output").iter().any(|e| {
        e["body"]["output"]
            .as_str()
            .unwrap_or_default()
            .contains("ptrace thread")
    });
    assert!(
        said,
        "no output event says what happened: {:?}",
        dap.events("output")
    );
    target.assert_runs_on(false);
}

/// A client that stopped reading (an editor hung, a terminal suspended) must not keep
/// latch from ending: with its output pipe full, SIGTERM still detaches and latch
/// exits, dropping what the client will never read.
#[test]
fn latch_exits_though_the_client_stopped_reading() {
    require_harness!();
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let mut latch = std::process::Command::new(crate::support::dap::latch_bin())
        .arg("dap")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    // Never read: the pipe fills and latch's writer blocks in write.
    let stdout = latch.stdout.take().unwrap();
    let mut stdin = latch.stdin.take().unwrap();
    let frame = |seq: i64, command: &str, arguments: serde_json::Value| {
        let body =
            json!({"seq": seq, "type": "request", "command": command, "arguments": arguments})
                .to_string();
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    };
    let mut requests = frame(1, "initialize", json!({"adapterID": "latch"}));
    requests += &frame(2, "attach", json!({"pid": target.pid, "stopOnEntry": true}));
    requests += &frame(3, "configurationDone", json!({}));
    for seq in 4..3000 {
        requests += &frame(seq, "threads", json!({}));
    }
    stdin.write_all(requests.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let unread = || {
        let mut bytes: libc::c_int = 0;
        // SAFETY: FIONREAD into a local int on a pipe we own.
        unsafe { libc::ioctl(stdout.as_raw_fd(), libc::FIONREAD, &mut bytes) };
        bytes
    };
    // Far more is queued than a pipe holds (64 KiB at most, less when writes leave
    // pages part full): once this much is unread, the writer is about to block.
    assert!(
        procfs::wait_for(secs(10), || unread() >= 32 * 1024),
        "latch's output pipe did not fill: {} bytes",
        unread()
    );
    assert!(
        procfs::wait_for(secs(10), || procfs::tracer_pid(target.pid) != Some(0)),
        "latch did not attach"
    );
    // SAFETY: kill with the pid of our child.
    unsafe { libc::kill(latch.id() as i32, libc::SIGTERM) };
    let exited = procfs::wait_for(secs(10), || matches!(latch.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = latch.kill();
        let _ = latch.wait();
    }
    assert!(
        exited,
        "latch did not exit after SIGTERM while its client did not read"
    );
    target.assert_runs_on(false);
    drop(stdout);
}

/// A thread whose tid was an exited thread's: latch must take it for the new thread
/// it is (announce it, list it, stop it, detach it), though the clone event names a
/// tid it just saw exit. The reuse is forced with ns_last_pid (as CRIU does: writing
/// N makes the next pid N + 1), which needs root; another process on the machine may
/// take the pid first, so it is tried a few times. (The clone event is what must add
/// it; the thread's own first stop, moments later, adds it too, so this passes
/// whenever that stop comes before the checks: the tracer's unit test
/// `a_clone_child_with_an_exited_threads_tid_is_new_when_alive` pins the clone event.)
#[test]
fn a_new_thread_with_an_exited_threads_tid_is_a_thread() {
    require_harness!();
    const NS_LAST_PID: &str = "/proc/sys/kernel/ns_last_pid";
    const TRIES: usize = 20;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        crate::support::skip_or_fail("reusing a tid on purpose needs root (ns_last_pid)");
        return;
    }
    let mut target = Target::start(Fixture::Signals, &[]);
    let mut dap = Dap::attached(target.pid, false);
    let tid_of = |line: Option<String>, what: &str| -> i32 {
        line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("the fixture did not print {what}"))
    };
    let thread_events = |dap: &Dap, tid: i32, reason: &str| -> Vec<usize> {
        dap.events("thread")
            .iter()
            .enumerate()
            .filter(|(_, e)| e["body"]["threadId"] == tid && e["body"]["reason"] == reason)
            .map(|(i, _)| i)
            .collect()
    };
    let mut reused = None;
    let mut missed = Vec::new();
    for _ in 0..TRIES {
        target.send_line("thread-exit");
        let old = tid_of(target.next_line("exited ", secs(10)), "exited TID");
        // A traced thread's task stays until its tracer reaps it: once it is gone from
        // /proc, latch has seen it exit and the tid is free. (Its exit is not always an
        // event: a thread that lives less than a reporting window is never announced.)
        let task = format!("/proc/{}/task/{old}", target.pid);
        assert!(
            crate::support::procfs::wait_for(secs(10), || !std::path::Path::new(&task).exists()),
            "thread {old} exited but latch did not reap it"
        );
        std::fs::write(NS_LAST_PID, (old - 1).to_string())
            .unwrap_or_else(|e| panic!("cannot write {NS_LAST_PID}: {e}"));
        target.send_line("thread-stay");
        let born = tid_of(target.next_line("born ", secs(10)), "born TID");
        if born == old {
            reused = Some(old);
            break;
        }
        missed.push((old, born));
    }
    let Some(tid) = reused else {
        panic!(
            "no new thread got an exited thread's tid in {TRIES} tries (another process \
             took the pid each time?): (exited, new) {missed:?}"
        );
    };
    let announced = dap.wait_until(secs(10), |d| {
        let exited = thread_events(d, tid, "exited");
        let started = thread_events(d, tid, "started");
        started.last() > exited.last()
    });
    assert!(
        announced,
        "latch did not announce the new thread {tid} that took an exited thread's tid: {:?}",
        dap.events("thread")
    );
    let listed = dap.threads();
    assert!(
        listed.iter().any(|(id, _)| *id == tid as i64),
        "`threads` does not list the new thread {tid}: {listed:?}"
    );
    dap.ok("pause", json!({"threadId": target.pid}));
    dap.next_event("stopped", secs(10));
    crate::support::checks::assert_all_traced_and_stopped(target.pid, dap.pid());
    dap.disconnect(json!({}));
    target.assert_runs_on_with_new_threads_allowed();
}
