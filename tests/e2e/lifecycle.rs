//! Every way a session ends: disconnect (default, terminateDebuggee,
//! suspendDebuggee), terminate, EOF on stdin, signals to latch, SIGKILL to
//! latch; and many attach/detach cycles.

use serde_json::json;

use crate::require_harness;
use crate::support::checks::*;
use crate::support::procfs;
use crate::support::{secs, Dap, Fixture, Target};

#[test]
fn disconnect_terminate_debuggee_kills_target() {
    require_harness!();
    let mut target = Target::start(Fixture::Sleeping, &["3"]);
    let mut dap = Dap::attached(target.pid, false);
    dap.disconnect(json!({"terminateDebuggee": true}));
    let st = target.wait_exit(secs(10));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL), "target ended with {st}");
}

#[test]
fn disconnect_suspend_debuggee_leaves_target_stopped_and_attachable() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["3"]);
    let mut dap = Dap::attached(target.pid, false);
    dap.disconnect(json!({"suspendDebuggee": true}));
    drop(dap);
    // Stopped (T), not traced.
    procfs::assert_runs_on(target.pid, target.heartbeat_path(), &target.initial, true);
    // A second latch can attach to it, and leaves it as it found it.
    let mut second = Dap::attached(target.pid, true);
    assert_entry_stop(&mut second, target.pid as i64);
    assert_threads_match(&mut second, target.pid);
    second.disconnect(json!({}));
    procfs::assert_runs_on(target.pid, target.heartbeat_path(), &target.initial, true);
    target.signal(libc::SIGCONT);
    target.assert_runs_on(false);
}

#[test]
fn terminate_sends_sigterm() {
    require_harness!();
    let mut target = Target::start(Fixture::Sleeping, &["2"]);
    let mut dap = Dap::attached(target.pid, false);
    dap.ok("terminate", json!({}));
    let exited = dap.next_event("exited", secs(10));
    assert_eq!(exited["body"]["exitCode"], 128 + libc::SIGTERM, "{exited}");
    dap.next_event("terminated", secs(10));
    let st = target.wait_exit(secs(10));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGTERM), "target ended with {st}");
}

#[test]
fn terminate_while_stopped_sends_sigterm() {
    require_harness!();
    let mut target = Target::start(Fixture::Sleeping, &["2"]);
    let mut dap = Dap::attached(target.pid, true);
    dap.next_event("stopped", secs(10));
    dap.ok("terminate", json!({}));
    let exited = dap.next_event("exited", secs(10));
    assert_eq!(exited["body"]["exitCode"], 128 + libc::SIGTERM, "{exited}");
    dap.next_event("terminated", secs(10));
    target.wait_exit(secs(10));
}

/// Attach (optionally stopped), end latch with `end`, and check the target.
fn ends_with_detach(stop_on_entry: bool, end: impl FnOnce(&mut Dap)) {
    let target = Target::start(Fixture::Spinning, &["2"]);
    let mut dap = Dap::start();
    dap.initialize();
    dap.attach_pid(target.pid, stop_on_entry);
    if stop_on_entry {
        dap.next_event("stopped", secs(10));
    }
    end(&mut dap);
    dap.wait_exit(secs(10));
    target.assert_runs_on(false);
}

#[test]
fn stdin_eof_detaches() {
    require_harness!();
    ends_with_detach(true, |dap| dap.close_stdin());
}

#[test]
fn sigterm_to_latch_detaches() {
    require_harness!();
    ends_with_detach(true, |dap| dap.signal(libc::SIGTERM));
}

#[test]
fn sigint_to_latch_detaches() {
    require_harness!();
    ends_with_detach(false, |dap| dap.signal(libc::SIGINT));
}

#[test]
fn sigkill_to_latch_while_target_stopped_lets_it_run_on() {
    require_harness!();
    ends_with_detach(true, |dap| {
        assert_all_traced_and_stopped(dap_target_pid(dap), dap.pid());
        dap.signal(libc::SIGKILL);
    });
}

/// A panic inside latch (forced in debug builds by `LATCH_TEST_PANIC_ON=<command>`)
/// still detaches: the target runs on, stopped or running when it happened.
#[test]
fn panic_in_latch_detaches() {
    require_harness!();
    for stop_on_entry in [true, false] {
        let target = Target::start(Fixture::Spinning, &["2"]);
        // The panic is the point, not news: its message without the backtrace
        // (RUST_BACKTRACE=1 in a developer's shell would add ~60 lines each time) keeps
        // a passing run's output for real failures.
        let prefix = ["env", "RUST_BACKTRACE=0", "LATCH_TEST_PANIC_ON=threads"]
            .map(String::from)
            .to_vec();
        let mut dap = Dap::start_with(prefix, &[], true);
        dap.initialize();
        dap.attach_pid(target.pid, stop_on_entry);
        if stop_on_entry {
            dap.next_event("stopped", secs(10));
            assert_all_traced_and_stopped(target.pid, dap.pid());
        }
        dap.send("threads", json!({}));
        let status = dap.wait_exit(secs(10));
        assert_eq!(
            status.code(),
            Some(101),
            "latch should have panicked: {status}"
        );
        assert!(
            dap.log_text().contains("LATCH_TEST_PANIC_ON"),
            "{}",
            dap.log_text()
        );
        target.assert_runs_on(false);
    }
}

fn dap_target_pid(dap: &Dap) -> i32 {
    dap.events("process")[0]["body"]["systemProcessId"]
        .as_i64()
        .unwrap() as i32
}

#[test]
fn twenty_attach_detach_cycles_on_short_lived_threads() {
    require_harness!();
    let target = Target::start(Fixture::Churn, &["2"]);
    for cycle in 0..20 {
        let stop = cycle % 2 == 0;
        let mut dap = Dap::start();
        dap.initialize();
        let r = dap.attach(json!({"pid": target.pid, "stopOnEntry": stop}));
        assert_eq!(r["success"], true, "cycle {cycle}: {r}");
        if stop {
            assert_entry_stop(&mut dap, target.pid as i64);
            assert_all_traced_and_stopped(target.pid, dap.pid());
        }
        let r = dap.request("disconnect", json!({}));
        assert_eq!(r["success"], true, "cycle {cycle}: {r}");
        let st = dap.wait_exit(secs(10));
        assert!(st.success(), "cycle {cycle}: latch exited with {st}");
        // No task left traced or stopped.
        let tasks = procfs::live_tasks(target.pid);
        let bad: Vec<_> = tasks
            .iter()
            .filter(|t| t.tracer_pid != 0 || matches!(t.state, 't' | 'T'))
            .collect();
        assert!(
            bad.is_empty()
                || procfs::wait_for(secs(2), || {
                    procfs::live_tasks(target.pid)
                        .iter()
                        .all(|t| t.tracer_pid == 0 && !matches!(t.state, 't' | 'T'))
                }),
            "cycle {cycle}: tasks left traced/stopped: {bad:?}"
        );
    }
    target.assert_runs_on(false);
}

/// A program latch launched belongs to the session: latch's end takes it along, whether
/// latch is stopped by a signal it can handle (SIGTERM: latch kills it and reaps it) or
/// killed outright (SIGKILL: the kernel kills it, `PTRACE_O_EXITKILL`), so it never runs
/// on with breakpoints in it.
#[test]
fn a_launched_program_ends_with_latch_however_latch_ends() {
    require_harness!();
    let program = crate::support::fixtures::c_fixture(Fixture::Sleeping);
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let mut dap = Dap::start();
        dap.initialize();
        let seq = dap.send(
            "launch",
            json!({"program": program, "args": ["1"], "stopOnEntry": true}),
        );
        let r = dap.finish_attach(seq, secs(10));
        assert_eq!(r["success"], true, "launch failed: {r}");
        let stopped = dap.next_event("stopped", secs(10));
        assert_eq!(stopped["body"]["reason"], "entry", "{stopped}");
        let pid = dap.next_event("process", secs(1))["body"]["systemProcessId"]
            .as_i64()
            .unwrap() as i32;
        assert_all_traced_and_stopped(pid, dap.pid());
        dap.signal(signal);
        dap.wait_exit(secs(10));
        let ended = || procfs::process_state(pid).is_none_or(|s| s == 'Z' || s == 'X');
        assert!(
            procfs::wait_for(secs(10), ended),
            "the launched program {pid} outlived latch ({signal}): {}",
            std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
        );
    }
}

/// `disableASLR` starts the program with `ADDR_NO_RANDOMIZE` (as gdb's
/// `disable-randomization`): it loads at the same address each time. By default ASLR
/// stays on, as it is without a debugger: the kernel's own flag says so, and two runs load
/// at different addresses.
#[test]
fn launch_keeps_aslr_unless_asked() {
    require_harness!();
    let program = crate::support::fixtures::c_fixture(Fixture::Sleeping);
    let launch = |disable: bool| -> (u64, u64) {
        let mut dap = Dap::start();
        dap.initialize();
        let seq = dap.send(
            "launch",
            json!({"program": program, "args": ["1"], "stopOnEntry": true, "disableASLR": disable}),
        );
        let r = dap.finish_attach(seq, secs(10));
        assert_eq!(r["success"], true, "launch failed: {r}");
        dap.next_event("stopped", secs(10));
        let pid = dap.next_event("process", secs(1))["body"]["systemProcessId"]
            .as_i64()
            .unwrap();
        let personality = std::fs::read_to_string(format!("/proc/{pid}/personality")).unwrap();
        let personality = u64::from_str_radix(personality.trim(), 16).unwrap();
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let base = u64::from_str_radix(maps.split('-').next().unwrap(), 16).unwrap();
        dap.disconnect(json!({}));
        (personality & libc::ADDR_NO_RANDOMIZE as u64, base)
    };
    let (flag_a, base_a) = launch(true);
    let (_, base_b) = launch(true);
    assert_ne!(flag_a, 0, "disableASLR: ADDR_NO_RANDOMIZE is not set");
    assert_eq!(
        base_a, base_b,
        "disableASLR: two runs loaded at different addresses"
    );
    let (flag_c, base_c) = launch(false);
    let (_, base_d) = launch(false);
    assert_eq!(flag_c, 0, "ASLR was turned off without disableASLR");
    // Equal by chance once in 2^28 or so.
    assert_ne!(
        base_c, base_d,
        "two runs with ASLR on loaded at the same address"
    );
}
