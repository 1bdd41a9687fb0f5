//! Breakpoints, hit counts, signals as exceptions and instruction steps, through the real
//! `latch` over DAP against the breakpoints fixture (tests/fixtures/breakpoints): many
//! threads calling one function, a counted loop, a thread that writes through NULL, a
//! fork. Breakpoints are instruction breakpoints at function addresses the fixture prints
//! (checked against `nm` and /proc/PID/maps); line and function breakpoints need the
//! symbols side, which these tests leave alone.
//!
//! Every test also proves the breakpoints did no harm: after the session ends, the code
//! at every breakpoint address equals the executable file's bytes, no thread is traced
//! or stopped, none died, and the target runs on.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::code::{self, assert_code_intact, BpTarget};
use crate::support::procfs;
use crate::support::{secs, thread_id, Dap};

/// How long a stop may take to be reported: generous, for a loaded 2-core machine with
/// 100 spinning threads to stop.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// `setInstructionBreakpoints` with (address, hitCondition) pairs; every one must be
/// verified at the address asked for. Returns their ids.
fn set_instruction_breakpoints(dap: &mut Dap, wanted: &[(u64, Option<&str>)]) -> Vec<i64> {
    let breakpoints: Vec<Value> = wanted
        .iter()
        .map(|(address, hit)| {
            let mut b = json!({ "instructionReference": format!("{address:#x}") });
            if let Some(hit) = hit {
                b["hitCondition"] = json!(hit);
            }
            b
        })
        .collect();
    let r = dap.ok(
        "setInstructionBreakpoints",
        json!({ "breakpoints": breakpoints }),
    );
    let answered = r["body"]["breakpoints"]
        .as_array()
        .unwrap_or_else(|| panic!("no breakpoints in {r}"))
        .clone();
    assert_eq!(answered.len(), wanted.len(), "{r}");
    answered
        .iter()
        .zip(wanted)
        .map(|(b, (address, _))| {
            assert_eq!(b["verified"], true, "breakpoint at {address:#x}: {b}");
            assert_eq!(
                b["instructionReference"],
                format!("{address:#x}"),
                "breakpoint at {address:#x}: {b}"
            );
            b["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("breakpoint without id: {b}"))
        })
        .collect()
}

fn clear_instruction_breakpoints(dap: &mut Dap) {
    let r = dap.ok("setInstructionBreakpoints", json!({ "breakpoints": [] }));
    assert_eq!(r["body"]["breakpoints"], json!([]), "{r}");
}

/// The next `stopped` event; it must be an instruction breakpoint's, of `id`, with
/// every thread stopped. Returns the thread.
fn breakpoint_stop(dap: &mut Dap, id: i64) -> i64 {
    let stopped = dap.next_event("stopped", STOP_WAIT);
    let body = &stopped["body"];
    assert_eq!(body["reason"], "instruction breakpoint", "{stopped}");
    assert_eq!(body["hitBreakpointIds"], json!([id]), "{stopped}");
    assert_eq!(body["allThreadsStopped"], true, "{stopped}");
    thread_id(&stopped)
}

/// Frame 0 of `tid`: (name, pc, frame id).
fn top_frame(dap: &mut Dap, tid: i64) -> (String, u64, i64) {
    let frames = stack(dap, tid, 2);
    frames[0].clone()
}

/// The first `levels` frames of `tid`: (name, pc, frame id) each.
fn stack(dap: &mut Dap, tid: i64, levels: i64) -> Vec<(String, u64, i64)> {
    let r = dap.request("stackTrace", json!({ "threadId": tid, "levels": levels }));
    assert_eq!(
        r["success"],
        true,
        "stackTrace of {tid} failed: {r}; recent messages:\n  {}",
        dap.recent()
    );
    let frames = r["body"]["stackFrames"]
        .as_array()
        .unwrap_or_else(|| panic!("no frames: {r}"));
    assert!(!frames.is_empty(), "no frames for {tid}: {r}");
    frames
        .iter()
        .map(|f| {
            let ip = f["instructionPointerReference"]
                .as_str()
                .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                .unwrap_or_else(|| panic!("frame without a hex pc: {f}"));
            (
                f["name"].as_str().unwrap_or_default().to_string(),
                ip,
                f["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The registers of a frame (its Registers scope).
fn registers(dap: &mut Dap, frame: i64) -> BTreeMap<String, u64> {
    let scopes = dap.ok("scopes", json!({ "frameId": frame }));
    let reference = scopes["body"]["scopes"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "Registers"))
        .and_then(|s| s["variablesReference"].as_i64())
        .unwrap_or_else(|| panic!("no Registers scope: {scopes}"));
    let r = dap.ok("variables", json!({ "variablesReference": reference }));
    r["body"]["variables"]
        .as_array()
        .unwrap_or_else(|| panic!("no variables: {r}"))
        .iter()
        .filter_map(|v| {
            let value = v["value"].as_str()?.trim_start_matches("0x");
            Some((
                v["name"].as_str()?.to_string(),
                u64::from_str_radix(value, 16).ok()?,
            ))
        })
        .collect()
}

fn continue_thread(dap: &mut Dap, tid: i64) {
    dap.ok("continue", json!({ "threadId": tid }));
}

/// The target is stopped at `address` in `function` (frame 0), as `tid`.
fn assert_at(dap: &mut Dap, tid: i64, function: &str, address: u64) {
    let (name, pc, _) = top_frame(dap, tid);
    assert!(
        name.contains(function),
        "thread {tid} stopped in {name:?}, not {function}"
    );
    assert_eq!(
        pc, address,
        "thread {tid} stopped at {pc:#x}, not at the breakpoint {address:#x}"
    );
}

/// While a stop is shown, no second `stopped` event comes: other threads that hit the
/// breakpoint meanwhile are reported one at a time, at the next resumes. (Checked after
/// a request answered while stopped, by which time latch has handled what the stop
/// collected.)
fn assert_one_stop(dap: &mut Dap) {
    if let Some(second) = dap.try_next_event("stopped", Duration::ZERO) {
        panic!("a second stopped event while the first is shown: {second}");
    }
}

/// No `stopped` event has come so far.
fn assert_no_stop(dap: &mut Dap, what: &str) {
    let stops = dap.events("stopped");
    assert!(stops.is_empty(), "{what}, yet latch stopped: {stops:?}");
}

/// The end of every test: after the session, the code at `addresses` is the file's, and
/// the target runs on untraced with every thread it had.
fn assert_unharmed(fixture: &mut BpTarget, addresses: &[u64]) {
    assert_unharmed_after(fixture, addresses, "the session");
}

/// `assert_unharmed`, saying after what.
fn assert_unharmed_after(fixture: &mut BpTarget, addresses: &[u64], after: &str) {
    if !fixture.target.is_alive() {
        let status = fixture.target.wait_exit(secs(10));
        panic!("the target died after {after}: {status}");
    }
    assert_code_intact(fixture.pid(), addresses);
    fixture.target.assert_runs_on(false);
    // Its workers still call the functions the breakpoints were in.
    let before = fixture.checksum();
    if fixture.workers > 0 {
        assert!(
            procfs::wait_for(secs(10), || fixture.checksum() > before),
            "the workers no longer call tick after the detach"
        );
    }
}

/// An instruction breakpoint on a function many threads call stops, each time, one of
/// those threads exactly at the function's first instruction, reported as an
/// instruction breakpoint with the breakpoint's id; every `continue` brings the next
/// stop. The address the fixture printed is the one its symbol table gives (`nm` plus
/// the load base in /proc), so the tests that follow aim where they think they do.
#[test]
fn an_instruction_breakpoint_stops_every_caller_at_its_address() {
    require_harness!();
    let mut fixture = BpTarget::start(8, &[]);
    let tick = fixture.address("tick");
    assert_eq!(
        code::function_address(fixture.pid(), &fixture.exe, "tick"),
        tick,
        "the fixture's &tick is not what nm and /proc/PID/maps say"
    );
    let workers: Vec<i64> = fixture.slots().keys().copied().collect();
    let mut dap = Dap::attached(fixture.pid(), false);
    let ids = set_instruction_breakpoints(&mut dap, &[(tick, None)]);
    assert_eq!(
        code::read_memory(fixture.pid(), tick, 1),
        [0xcc],
        "no int3 at the breakpoint"
    );
    for _ in 0..10 {
        let tid = breakpoint_stop(&mut dap, ids[0]);
        assert!(
            workers.contains(&tid),
            "the stop names {tid}, not a worker: {workers:?}"
        );
        assert_at(&mut dap, tid, "tick", tick);
        assert_one_stop(&mut dap);
        continue_thread(&mut dap, tid);
    }
    breakpoint_stop(&mut dap, ids[0]);
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[tick]);
}

/// Hit conditions count the calls of a function only the main thread calls, in a loop
/// whose iteration is the function's argument (rdi in frame 0's registers): `== 3` stops
/// at the third call and never again, `% 2` at every second, `>= 5` at the fifth and
/// every one after. A changed hit condition counts from zero again. Calls that do not
/// stop run on: the fixture finishes its loop and says so.
#[test]
fn hit_conditions_stop_at_the_counted_calls() {
    require_harness!();
    let mut fixture = BpTarget::start(2, &[]);
    let counted = fixture.address("counted");
    let mut dap = Dap::attached(fixture.pid(), false);
    let main = fixture.pid() as i64;
    for (condition, loop_length, expected) in [
        ("== 3", 10, vec![3]),
        ("% 2", 6, vec![2, 4, 6]),
        (">= 5", 7, vec![5, 6, 7]),
    ] {
        let ids = set_instruction_breakpoints(&mut dap, &[(counted, Some(condition))]);
        fixture.target.send_line(&format!("count {loop_length}"));
        for iteration in &expected {
            let tid = breakpoint_stop(&mut dap, ids[0]);
            assert_eq!(tid, main, "{condition}: only the main thread calls counted");
            assert_at(&mut dap, tid, "counted", counted);
            let (_, _, frame) = top_frame(&mut dap, tid);
            let rdi = registers(&mut dap, frame)["rdi"];
            assert_eq!(
                rdi, *iteration,
                "{condition}: stopped at call {rdi}, expected {iteration}"
            );
            // The call has not run: the last one that did is the one before.
            assert_eq!(
                code::read_u64(fixture.pid(), fixture.address("last_counted")),
                iteration - 1,
                "{condition}"
            );
            continue_thread(&mut dap, tid);
        }
        fixture
            .target
            .wait_line(&format!("counted {loop_length}"), secs(30));
        // The loop ended, so every call after the last expected one ran on: a call that
        // stopped would have kept the loop from printing its line.
        if let Some(extra) = dap.try_next_event("stopped", Duration::ZERO) {
            panic!("{condition}: an unexpected stop: {extra}");
        }
    }
    // `== 3` again: the count starts over; after its one stop, a second loop never stops.
    let ids = set_instruction_breakpoints(&mut dap, &[(counted, Some("== 3"))]);
    fixture.target.send_line("count 4");
    let tid = breakpoint_stop(&mut dap, ids[0]);
    let (_, _, frame) = top_frame(&mut dap, tid);
    assert_eq!(registers(&mut dap, frame)["rdi"], 3);
    continue_thread(&mut dap, tid);
    fixture.target.wait_line("counted 4", secs(30));
    fixture.target.send_line("count 5");
    fixture.target.wait_line("counted 5", secs(30));
    assert!(
        dap.try_next_event("stopped", Duration::ZERO).is_none(),
        "`== 3` stopped after its third hit"
    );
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[counted]);
}

/// 100 threads run through a breakpoint whose hit condition (`% 1000000`) never holds
/// within the test: every call traps, and latch steps each thread over the `int3` and
/// lets it go, 20,000 times and more, with no stop reported. Nothing is lost or doubled:
/// held still afterwards, the fixture's per-thread counts sum to its global checksum,
/// every thread lives, and after the detach the code is the file's.
#[test]
fn a_hundred_threads_pass_a_breakpoint_that_never_stops_unharmed() {
    require_harness!();
    let mut fixture = BpTarget::start(100, &[]);
    let tick = fixture.address("tick");
    let threads = procfs::live_tids(fixture.pid());
    let mut dap = Dap::attached(fixture.pid(), false);
    set_instruction_breakpoints(&mut dap, &[(tick, Some("% 1000000"))]);
    assert_eq!(code::read_memory(fixture.pid(), tick, 1), [0xcc]);
    let start = fixture.checksum();
    let passed = procfs::wait_for(secs(300), || {
        fixture.checksum() >= start + 20_000 || !dap.is_running()
    });
    assert!(
        passed && dap.is_running(),
        "the threads made {} calls through the breakpoint (latch running: {})",
        fixture.checksum() - start,
        dap.is_running()
    );
    assert_no_stop(&mut dap, "the hit condition never held");
    clear_instruction_breakpoints(&mut dap);
    assert_eq!(
        code::read_memory(fixture.pid(), tick, 16),
        code::file_bytes_at(fixture.pid(), tick, 16).1,
        "removing the breakpoint did not restore the code"
    );
    fixture.ask("hold", "held");
    let (sum, checksum) = fixture.counts();
    assert_eq!(
        sum, checksum,
        "the threads' counts do not add up to the checksum: calls were lost or doubled"
    );
    assert_eq!(
        procfs::live_tids(fixture.pid()),
        threads,
        "threads died or appeared"
    );
    fixture.ask("resume", "resumed");
    assert_no_stop(&mut dap, "the hit condition never held");
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[tick]);
}

/// 100 threads call a function with a breakpoint that stops every time: each of 200
/// `continue`s yields a stop of some worker at the breakpoint's address, and no thread
/// ever runs the function without its stop being reported first (at every stop, each
/// thread's count of calls has grown by at most the number of its stops reported before
/// this one). Nothing dies; afterwards the counts add up and the code is the file's.
#[test]
fn a_hundred_threads_stop_at_a_breakpoint_and_none_runs_past_it() {
    require_harness!();
    let mut fixture = BpTarget::start(100, &[]);
    let tick = fixture.address("tick");
    let threads = procfs::live_tids(fixture.pid());
    let mut dap = Dap::attached(fixture.pid(), false);
    // The workers wait outside tick while the breakpoint goes in: each count from here
    // on is a call that began after it.
    fixture.ask("hold", "held");
    let ids = set_instruction_breakpoints(&mut dap, &[(tick, None)]);
    let base = fixture.slots();
    // Not waiting for its "resumed": the first worker's stop may stop the main thread
    // before it prints it.
    fixture.target.send_line("resume");
    let mut stops: BTreeMap<i64, u64> = BTreeMap::new();
    for n in 0..200 {
        let tid = breakpoint_stop(&mut dap, ids[0]);
        assert!(base.contains_key(&tid), "stop {n}: {tid} is not a worker");
        *stops.entry(tid).or_default() += 1;
        let (_, pc, _) = top_frame(&mut dap, tid);
        assert_eq!(pc, tick, "stop {n}: thread {tid} is not at the breakpoint");
        assert_one_stop(&mut dap);
        let now = fixture.slots();
        for (worker, count) in &now {
            let calls = count - base[worker];
            let reported = stops.get(worker).copied().unwrap_or(0);
            // This stop's call has not run yet.
            let allowed = if *worker == tid {
                reported - 1
            } else {
                reported
            };
            assert!(
                calls <= allowed,
                "stop {n}: thread {worker} made {calls} calls of tick but only {allowed} \
                 of its stops were reported before: it ran past the breakpoint"
            );
        }
        continue_thread(&mut dap, tid);
    }
    let tid = breakpoint_stop(&mut dap, ids[0]);
    assert!(stops.len() > 1, "only one thread ever stopped: {stops:?}");
    // With the breakpoint gone, hits of it that were still waiting to be reported are
    // no stops any more: the target runs on, all of it.
    clear_instruction_breakpoints(&mut dap);
    continue_thread(&mut dap, tid);
    fixture.target.send_line("hold");
    if fixture.target.next_line("held", secs(30)).is_none() {
        panic!(
            "the workers did not all come round to be held after the breakpoint was removed \
             and the target continued; a stop since (a hit of the removed breakpoint?): {:?}; \
             stopped tasks: {:?}",
            dap.try_next_event("stopped", Duration::ZERO),
            procfs::all_tasks(fixture.pid())
                .iter()
                .filter(|t| t.state == 't')
                .count()
        );
    }
    let (sum, checksum) = fixture.counts();
    assert_eq!(sum, checksum, "calls were lost or doubled");
    assert_eq!(procfs::live_tids(fixture.pid()), threads, "threads died");
    fixture.ask("resume", "resumed");
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[tick]);
}

/// A worker thread writes through a NULL pointer: latch stops with reason `exception`,
/// naming SIGSEGV; `exceptionInfo` says SIGSEGV, `unhandled` (the program has no handler),
/// the fault address 0x0 and SEGV_MAPERR; frame 0 is the faulting function, at the
/// faulting instruction. `continue` delivers the signal as it would have been without
/// latch: the process dies of SIGSEGV, and latch says `exited` and `terminated`.
#[test]
fn a_null_write_stops_as_an_exception_and_continuing_delivers_it() {
    require_harness!();
    let mut fixture = BpTarget::start(2, &[]);
    let crash_here = fixture.address("crash_here");
    let crasher = fixture.target.tid_named("crasher") as i64;
    let mut dap = Dap::attached(fixture.pid(), false);
    fixture.target.send_line("crash");
    let stopped = dap.next_event("stopped", STOP_WAIT);
    assert_eq!(stopped["body"]["reason"], "exception", "{stopped}");
    assert_eq!(thread_id(&stopped), crasher, "{stopped}");
    let description = stopped["body"]["description"].as_str().unwrap_or_default();
    assert!(description.contains("SIGSEGV"), "{stopped}");
    let info = dap.ok("exceptionInfo", json!({ "threadId": crasher }));
    let body = &info["body"];
    assert_eq!(body["exceptionId"], "SIGSEGV", "{info}");
    assert_eq!(body["breakMode"], "unhandled", "{info}");
    let details = body["details"].to_string();
    assert!(
        details.contains("0x0") && details.contains("SEGV_MAPERR"),
        "the details do not give the fault address and cause: {info}"
    );
    // The first instruction of crash_here is the store through its argument.
    assert_at(&mut dap, crasher, "crash_here", crash_here);
    continue_thread(&mut dap, crasher);
    let status = fixture.target.wait_exit(secs(30));
    assert_eq!(
        status.signal(),
        Some(libc::SIGSEGV),
        "the target ended with {status}, not SIGSEGV"
    );
    let exited = dap.next_event("exited", secs(10));
    assert_eq!(exited["body"]["exitCode"], 128 + libc::SIGSEGV, "{exited}");
    dap.next_event("terminated", secs(10));
}

/// A program that catches SIGSEGV itself handles its own faults: latch does not stop
/// (the handler runs, the program goes on), unless the user turns on `handled-signals`;
/// then it stops with breakMode `always`, and `continue` hands the signal to the
/// program's handler.
#[test]
fn a_handled_sigsegv_stops_only_when_asked() {
    require_harness!();
    let mut fixture = BpTarget::start(2, &["handler"]);
    let crasher = fixture.target.tid_named("crasher") as i64;
    let mut dap = Dap::attached(fixture.pid(), false);
    fixture.target.send_line("crash");
    fixture.target.wait_line("handled SIGSEGV", secs(30));
    assert_no_stop(&mut dap, "the program handled its SIGSEGV");
    dap.ok(
        "setExceptionBreakpoints",
        json!({ "filters": ["SIGSEGV", "handled-signals"] }),
    );
    fixture.target.send_line("crash");
    let stopped = dap.next_event("stopped", STOP_WAIT);
    assert_eq!(stopped["body"]["reason"], "exception", "{stopped}");
    assert_eq!(thread_id(&stopped), crasher, "{stopped}");
    let info = dap.ok("exceptionInfo", json!({ "threadId": crasher }));
    assert_eq!(info["body"]["exceptionId"], "SIGSEGV", "{info}");
    assert_eq!(info["body"]["breakMode"], "always", "{info}");
    assert_eq!(fixture.target.printed("handled"), None);
    continue_thread(&mut dap, crasher);
    fixture.target.wait_line("handled SIGSEGV", secs(30));
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[]);
}

/// How a session ends in the exit-path tests.
#[derive(Debug, Clone, Copy)]
enum End {
    Disconnect,
    /// The client closes latch's stdin.
    Eof,
    /// SIGTERM to latch.
    Sigterm,
    /// A panic on the session thread (a debug build's `LATCH_TEST_PANIC_ON=threads`).
    SessionPanic,
    /// A panic on the ptrace thread (`LATCH_TEST_PANIC_ON=ptrace:...`): on `stop_all`
    /// (a `pause`) while the target runs, on `step_instruction` (an instruction `next`)
    /// while stopped at a breakpoint.
    PtracePanic,
}

/// With breakpoints in the code (one that 8 threads hit all the time, one never hit),
/// while the target runs through them and while it is stopped at one, the session ends
/// by `end`: the code at each breakpoint is the file's again and the target runs on,
/// untraced, with all its threads (an `int3` left in tick would kill it at once).
fn ends_with_breakpoints_in(end: End) {
    for stopped in [false, true] {
        let mut fixture = BpTarget::start(8, &[]);
        let (tick, counted) = (fixture.address("tick"), fixture.address("counted"));
        let panic_on = match (end, stopped) {
            (End::SessionPanic, _) => Some("threads"),
            (End::PtracePanic, false) => Some("ptrace:stop_all"),
            (End::PtracePanic, true) => Some("ptrace:step_instruction"),
            _ => None,
        };
        let mut dap = match panic_on {
            Some(command) => {
                let prefix = [
                    "env".to_string(),
                    "RUST_BACKTRACE=0".to_string(),
                    format!("LATCH_TEST_PANIC_ON={command}"),
                ]
                .to_vec();
                let mut dap = Dap::start_with(prefix, &[], true);
                dap.initialize();
                dap.attach_pid(fixture.pid(), false);
                dap
            }
            None => Dap::attached(fixture.pid(), false),
        };
        let hit = if stopped { None } else { Some("% 1000000") };
        let ids = set_instruction_breakpoints(&mut dap, &[(tick, hit), (counted, None)]);
        let stopped_at = if stopped {
            let tid = breakpoint_stop(&mut dap, ids[0]);
            assert_at(&mut dap, tid, "tick", tick);
            Some(tid)
        } else {
            // The workers are going through the breakpoint.
            let before = fixture.checksum();
            assert!(procfs::wait_for(secs(30), || fixture.checksum() > before + 100));
            None
        };
        let ctx = format!("{end:?} (stopped at a breakpoint: {stopped})");
        match end {
            End::Disconnect => {
                dap.disconnect(json!({}));
            }
            End::Eof => {
                dap.close_stdin();
                let status = dap.wait_exit(secs(30));
                assert!(status.success(), "{ctx}: latch exited with {status}");
            }
            End::Sigterm => {
                dap.signal(libc::SIGTERM);
                dap.wait_exit(secs(30));
            }
            End::SessionPanic => {
                dap.send("threads", json!({}));
                let status = dap.wait_exit(secs(30));
                assert_eq!(status.code(), Some(101), "{ctx}: no panic: {status}");
            }
            End::PtracePanic => {
                match stopped_at {
                    Some(tid) => dap.send(
                        "next",
                        json!({ "threadId": tid, "granularity": "instruction" }),
                    ),
                    None => dap.send("pause", json!({ "threadId": fixture.pid() })),
                };
                let status = dap.wait_exit(secs(30));
                assert!(!status.success(), "{ctx}: latch did not fail: {status}");
            }
        }
        if panic_on.is_some() {
            assert!(
                dap.log_text().contains("LATCH_TEST_PANIC_ON"),
                "{ctx}: the panic did not happen"
            );
        }
        // (The client lives on until the checks are done: a failure shows latch's log.)
        assert_unharmed_after(&mut fixture, &[tick, counted], &ctx);
        drop(dap);
    }
}

#[test]
fn breakpoints_are_taken_out_at_disconnect() {
    require_harness!();
    ends_with_breakpoints_in(End::Disconnect);
}

#[test]
fn breakpoints_are_taken_out_when_the_client_goes() {
    require_harness!();
    ends_with_breakpoints_in(End::Eof);
}

#[test]
fn breakpoints_are_taken_out_at_sigterm() {
    require_harness!();
    ends_with_breakpoints_in(End::Sigterm);
}

#[test]
fn breakpoints_are_taken_out_when_the_session_panics() {
    require_harness!();
    ends_with_breakpoints_in(End::SessionPanic);
}

#[test]
fn breakpoints_are_taken_out_when_the_ptrace_thread_panics() {
    require_harness!();
    ends_with_breakpoints_in(End::PtracePanic);
}

/// A `disconnect` that arrives while 100 threads hit a breakpoint that stops, as fast as
/// they can (just continued): whatever stop was under way, the detach takes the `int3`
/// out and every thread runs on. Three sessions in a row on the same target.
#[test]
fn a_disconnect_amid_a_hundred_threads_hitting_a_breakpoint() {
    require_harness!();
    let mut fixture = BpTarget::start(100, &[]);
    let tick = fixture.address("tick");
    for round in 0..3 {
        let mut dap = Dap::attached(fixture.pid(), false);
        let ids = set_instruction_breakpoints(&mut dap, &[(tick, None)]);
        let tid = breakpoint_stop(&mut dap, ids[0]);
        let go = dap.send("continue", json!({ "threadId": tid }));
        let bye = dap.send("disconnect", json!({}));
        let r = dap.response(go, secs(30));
        assert_eq!(r["success"], true, "round {round}: {r}");
        let r = dap.response(bye, secs(30));
        assert_eq!(r["success"], true, "round {round}: {r}");
        let status = dap.wait_exit(secs(30));
        assert!(
            status.success(),
            "round {round}: latch exited with {status}"
        );
        drop(dap);
        assert_unharmed(&mut fixture, &[tick]);
    }
}

/// A forked child inherits the parent's memory, `int3`s included: latch must clean its
/// copy (or the child dies of SIGTRAP at its first call of the function). The child
/// calls the breakpointed function 1000 times after the fork and exits 0, which the
/// parent reports; the parent's breakpoint still stops its own threads.
#[test]
fn a_forked_child_runs_the_breakpointed_function_unharmed() {
    require_harness!();
    child_runs_the_breakpointed_function_unharmed("fork");
}

/// A vforked child runs in the parent's memory until it execs or exits, as the child of
/// posix_spawn does (which calls libc functions there: a breakpoint on one of them, or on
/// execve, is hit by the child). The `int3` is in that shared memory, and the child is
/// not the process being debugged: it must not die of SIGTRAP (gdb takes its
/// breakpoints out of the parent while a vfork child runs, and puts them back at
/// PTRACE_EVENT_VFORK_DONE). The child calls the breakpointed function 3 times, then
/// `_exit(0)`.
#[test]
fn a_vforked_child_runs_the_breakpointed_function_unharmed() {
    require_harness!();
    child_runs_the_breakpointed_function_unharmed("vfork");
}

/// The fixture's `how` ("fork" or "vfork") makes a child that calls `tick` while it has
/// a breakpoint: the child exits 0 without a stop, and the parent's own threads still
/// stop there afterwards.
fn child_runs_the_breakpointed_function_unharmed(how: &str) {
    let mut fixture = BpTarget::start(2, &[]);
    let tick = fixture.address("tick");
    let mut dap = Dap::attached(fixture.pid(), false);
    fixture.ask("hold", "held");
    let ids = set_instruction_breakpoints(&mut dap, &[(tick, None)]);
    fixture.target.send_line(how);
    let status = fixture.target.next_line("child ", secs(30));
    assert_eq!(
        status.as_deref(),
        Some("child exited 0"),
        "the {how}ed child did not exit normally; stops: {:?}",
        dap.events("stopped")
    );
    assert_no_stop(&mut dap, "only the child called tick");
    fixture.target.send_line("resume");
    let tid = breakpoint_stop(&mut dap, ids[0]);
    assert_at(&mut dap, tid, "tick", tick);
    dap.disconnect(json!({}));
    fixture.target.wait_line("resumed", secs(10));
    assert_unharmed(&mut fixture, &[tick]);
}

/// `continue` with `singleThread: true` runs only the thread asked for: while it goes
/// round its loop back to the breakpoint, no other thread's count moves (a stop of
/// another thread that was already waiting to be reported may come first, with nothing
/// run). A plain `continue` then moves every thread.
#[test]
fn single_thread_continue_moves_only_that_thread() {
    require_harness!();
    let mut fixture = BpTarget::start(4, &[]);
    let tick = fixture.address("tick");
    let mut dap = Dap::attached(fixture.pid(), false);
    let ids = set_instruction_breakpoints(&mut dap, &[(tick, None)]);
    let mut tid = breakpoint_stop(&mut dap, ids[0]);
    let mut moved_alone = 0;
    for n in 0..20 {
        let before = fixture.slots();
        let r = dap.ok("continue", json!({ "threadId": tid, "singleThread": true }));
        assert_eq!(r["body"]["allThreadsContinued"], false, "{r}");
        let next = breakpoint_stop(&mut dap, ids[0]);
        let after = fixture.slots();
        for (worker, count) in &after {
            let expected = before[worker] + u64::from(*worker == tid && next == tid);
            assert_eq!(
                *count, expected,
                "continue {n} of thread {tid} alone (then a stop of {next}): thread {worker} \
                 went from {} to {count}",
                before[worker]
            );
        }
        if next == tid {
            moved_alone += 1;
        }
        tid = next;
    }
    assert!(
        moved_alone > 0,
        "no single-thread continue ever ran its thread"
    );
    // All together now, without the breakpoint.
    let before = fixture.slots();
    clear_instruction_breakpoints(&mut dap);
    continue_thread(&mut dap, tid);
    let all_moved = procfs::wait_for(secs(30), || {
        let now = fixture.slots();
        now.iter().all(|(worker, count)| *count > before[worker])
    });
    assert!(
        all_moved,
        "a plain continue did not move every thread: {before:?} -> {:?}",
        fixture.slots()
    );
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[tick]);
}

/// Instruction steps of a thread stopped at a breakpoint: `next` and `stepIn` with
/// granularity `instruction` each run exactly one instruction (the pc goes to the next
/// instruction `objdump` lists), are reported as `step` stops of that thread, and move
/// no other thread; `stepOut` (single thread) returns to the caller at the return address
/// the stack showed.
#[test]
fn instruction_steps_move_one_instruction_of_one_thread() {
    require_harness!();
    let mut fixture = BpTarget::start(4, &[]);
    let tick = fixture.address("tick");
    let base = code::load_base(fixture.pid(), &fixture.exe);
    let instructions: Vec<u64> = code::instruction_offsets(&fixture.exe, "tick")
        .into_iter()
        .map(|offset| base + offset)
        .collect();
    assert!(
        instructions.len() >= 3 && instructions[0] == tick,
        "objdump's tick: {instructions:x?}"
    );
    let mut dap = Dap::attached(fixture.pid(), false);
    let ids = set_instruction_breakpoints(&mut dap, &[(tick, None)]);
    let tid = breakpoint_stop(&mut dap, ids[0]);
    let frames = stack(&mut dap, tid, 2);
    assert_eq!(frames[0].1, tick);
    let caller = frames
        .get(1)
        .unwrap_or_else(|| panic!("no caller frame: {frames:?}"))
        .clone();
    assert!(caller.0.contains("worker_main"), "{caller:?}");
    for (n, command) in ["next", "stepIn"].into_iter().enumerate() {
        let before = fixture.slots();
        dap.ok(
            command,
            json!({ "threadId": tid, "granularity": "instruction" }),
        );
        let stopped = dap.next_event("stopped", STOP_WAIT);
        assert_eq!(stopped["body"]["reason"], "step", "{command}: {stopped}");
        assert_eq!(thread_id(&stopped), tid, "{command}: {stopped}");
        let (name, pc, _) = top_frame(&mut dap, tid);
        assert!(name.contains("tick"), "{command}: in {name}");
        assert_eq!(
            pc,
            instructions[n + 1],
            "{command}: the pc is not at the next instruction (tick's: {instructions:x?})"
        );
        assert_eq!(fixture.slots(), before, "{command}: threads moved");
    }
    dap.ok(
        "stepOut",
        json!({ "threadId": tid, "granularity": "instruction", "singleThread": true }),
    );
    let stopped = dap.next_event("stopped", STOP_WAIT);
    assert_eq!(stopped["body"]["reason"], "step", "stepOut: {stopped}");
    assert_eq!(thread_id(&stopped), tid, "stepOut: {stopped}");
    let (name, pc, _) = top_frame(&mut dap, tid);
    assert!(name.contains("worker_main"), "stepOut: in {name}");
    assert_eq!(pc, caller.1, "stepOut: not at the return address");
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[tick]);
}

/// Several workers hit the breakpoint at once, so stops of other threads wait behind the
/// one reported; the user takes the breakpoint out (those stops are moot now) and steps,
/// and a signal reaches the stepping thread before its instruction runs. The step must
/// still end as a step of that thread. It once became a silent `continue`: the signal
/// made the single step look interrupted by "another stop", which was one of the moot
/// ones; nothing was reported and the editor waited for a stop that never came.
#[test]
fn a_step_ends_as_a_step_after_its_breakpoint_and_other_threads_hits_are_gone() {
    require_harness!();
    let mut fixture = BpTarget::start(4, &[]);
    let tick = fixture.address("tick");
    let mut dap = Dap::attached(fixture.pid(), false);
    for round in 0..12 {
        let ids = set_instruction_breakpoints(&mut dap, &[(tick, None)]);
        let tid = breakpoint_stop(&mut dap, ids[0]);
        clear_instruction_breakpoints(&mut dap);
        // Queued for the stopped thread: it comes before the stepped instruction runs.
        // SIGWINCH is ignored by the program, so it changes nothing else.
        // SAFETY: tgkill with the target's own ids.
        let sent =
            unsafe { libc::syscall(libc::SYS_tgkill, fixture.pid(), tid as i32, libc::SIGWINCH) };
        assert_eq!(sent, 0, "tgkill");
        dap.ok(
            "next",
            json!({ "threadId": tid, "granularity": "instruction" }),
        );
        let stopped = dap.next_event("stopped", STOP_WAIT);
        assert_eq!(
            stopped["body"]["reason"], "step",
            "round {round}: {stopped}"
        );
        assert_eq!(thread_id(&stopped), tid, "round {round}: {stopped}");
        continue_thread(&mut dap, tid);
    }
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[tick]);
}

/// An editor sends a kind's whole set of breakpoints again whenever one changes: a
/// breakpoint sent again unchanged keeps its id and its hit count (`== 3` counts on from
/// the hits before), while a new breakpoint added beside it counts from zero.
#[test]
fn a_breakpoint_sent_again_keeps_its_hit_count() {
    require_harness!();
    let mut fixture = BpTarget::start(2, &[]);
    let (counted, crash_here) = (fixture.address("counted"), fixture.address("crash_here"));
    let mut dap = Dap::attached(fixture.pid(), false);
    let first = set_instruction_breakpoints(&mut dap, &[(counted, Some("== 3"))]);
    fixture.ask("count 2", "counted 2");
    // Sent again with another breakpoint (never hit) beside it.
    let again =
        set_instruction_breakpoints(&mut dap, &[(counted, Some("== 3")), (crash_here, None)]);
    assert_eq!(again[0], first[0], "the breakpoint sent again got a new id");
    assert_ne!(again[1], first[0]);
    fixture.target.send_line("count 2");
    let tid = breakpoint_stop(&mut dap, first[0]);
    let (_, _, frame) = top_frame(&mut dap, tid);
    assert_eq!(
        registers(&mut dap, frame)["rdi"],
        1,
        "the third hit in all is the first call of the second loop"
    );
    continue_thread(&mut dap, tid);
    fixture.target.wait_line("counted 2", secs(30));
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[counted, crash_here]);
}

/// Two breakpoints one instruction apart, set while the target is stopped at entry: a
/// thread stepped over the first lands on the second without executing it, and must
/// still stop there. So each worker's stops alternate: the first breakpoint, then the
/// second, never two of the same in a row.
#[test]
fn adjacent_breakpoints_both_stop_each_thread() {
    require_harness!();
    let mut fixture = BpTarget::start(4, &[]);
    let tick = fixture.address("tick");
    let base = code::load_base(fixture.pid(), &fixture.exe);
    let second = base + code::instruction_offsets(&fixture.exe, "tick")[1];
    let mut dap = Dap::attached(fixture.pid(), true);
    dap.next_event("stopped", STOP_WAIT);
    let ids = set_instruction_breakpoints(&mut dap, &[(tick, None), (second, None)]);
    continue_thread(&mut dap, fixture.pid() as i64);
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for n in 0..40 {
        let stopped = dap.next_event("stopped", STOP_WAIT);
        assert_eq!(
            stopped["body"]["reason"], "instruction breakpoint",
            "{stopped}"
        );
        let tid = thread_id(&stopped);
        let hit = stopped["body"]["hitBreakpointIds"][0]
            .as_i64()
            .unwrap_or_else(|| panic!("{stopped}"));
        let (_, pc, _) = top_frame(&mut dap, tid);
        let expected_pc = if hit == ids[0] { tick } else { second };
        assert_eq!(pc, expected_pc, "stop {n}: {stopped}");
        let expected = match last.get(&tid) {
            None => None,
            Some(previous) if *previous == ids[0] => Some(ids[1]),
            Some(_) => Some(ids[0]),
        };
        // A thread's first stop may be at either: the attach may have stopped it
        // between the two instructions.
        if let Some(expected) = expected {
            assert_eq!(
                hit, expected,
                "stop {n}: thread {tid} stopped at breakpoint {hit} twice in a row (ran past \
                 the other one); {stopped}"
            );
        }
        last.insert(tid, hit);
        continue_thread(&mut dap, tid);
    }
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[tick, second]);
}

/// What latch cannot do is said, per breakpoint, never silently ignored: a condition
/// naming nothing at its address, a hit condition it cannot read, a reference that is
/// not an address, an address with no memory: each unverified, with a message saying
/// why; the others in the same request are set.
#[test]
fn breakpoints_latch_cannot_set_are_unverified_with_a_reason() {
    require_harness!();
    let mut fixture = BpTarget::start(2, &[]);
    let counted = fixture.address("counted");
    let mut dap = Dap::attached(fixture.pid(), false);
    let at = format!("{counted:#x}");
    let r = dap.ok(
        "setInstructionBreakpoints",
        json!({ "breakpoints": [
            { "instructionReference": at, "condition": "iterations > 2" },
            { "instructionReference": at, "offset": 0, "hitCondition": "% 0" },
            { "instructionReference": "counted" },
            { "instructionReference": "0x10" },
            { "instructionReference": at, "hitCondition": "2" },
        ] }),
    );
    let answered = r["body"]["breakpoints"].as_array().unwrap().clone();
    assert_eq!(answered.len(), 5, "{r}");
    for (i, keyword) in [
        (0, "no variable named 'iterations'"),
        (1, "% 0"),
        (2, "not an address"),
        (3, "cannot write"),
    ] {
        let b = &answered[i];
        assert_eq!(b["verified"], false, "breakpoint {i}: {b}");
        let message = b["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(keyword),
            "breakpoint {i}: the message does not say why ({keyword}): {b}"
        );
    }
    assert_eq!(answered[4]["verified"], true, "{r}");
    // The one that was set works: from the second call on (`2`).
    fixture.target.send_line("count 2");
    let stopped = dap.next_event("stopped", STOP_WAIT);
    let tid = thread_id(&stopped);
    let (_, _, frame) = top_frame(&mut dap, tid);
    assert_eq!(registers(&mut dap, frame)["rdi"], 2, "{stopped}");
    continue_thread(&mut dap, tid);
    fixture.target.wait_line("counted 2", secs(30));
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[counted]);
}

/// `pause` while threads run through breakpoints: one that never stops (`% 1000000`)
/// and one that stops every time. Each `pause` or `continue` yields exactly one
/// `stopped` event (a pause, or a breakpoint hit collected on the way), the pause stop
/// never hides a thread inside the breakpoint's `int3`, and afterwards nothing was lost.
#[test]
fn pause_amid_breakpoint_hits_shows_one_stop_at_a_time() {
    require_harness!();
    let mut fixture = BpTarget::start(8, &[]);
    let (tick, counted) = (fixture.address("tick"), fixture.address("counted"));
    let threads = procfs::live_tids(fixture.pid());
    let mut dap = Dap::attached(fixture.pid(), false);
    set_instruction_breakpoints(&mut dap, &[(tick, Some("% 1000000")), (counted, None)]);
    for n in 0..20 {
        let before = fixture.checksum();
        assert!(
            procfs::wait_for(secs(30), || fixture.checksum() > before + 50),
            "round {n}: the workers do not run"
        );
        dap.ok("pause", json!({ "threadId": fixture.pid() }));
        let stopped = dap.next_event("stopped", STOP_WAIT);
        assert_eq!(stopped["body"]["reason"], "pause", "round {n}: {stopped}");
        // Every worker is somewhere sensible: never one past tick's first byte, which
        // is inside its first instruction.
        for (worker, _) in fixture.slots() {
            let (_, pc, _) = top_frame(&mut dap, worker);
            assert_ne!(pc, tick + 1, "round {n}: {worker} is inside the int3");
        }
        assert_one_stop(&mut dap);
        continue_thread(&mut dap, fixture.pid() as i64);
    }
    // The main thread now runs into the stopping one, while a pause is asked for.
    fixture.target.send_line("count 3");
    dap.ok("pause", json!({ "threadId": fixture.pid() }));
    let mut reasons = Vec::new();
    while reasons
        .iter()
        .filter(|r| *r == "instruction breakpoint")
        .count()
        < 3
    {
        let stopped = dap.next_event("stopped", STOP_WAIT);
        reasons.push(stopped["body"]["reason"].as_str().unwrap().to_string());
        let tid = thread_id(&stopped);
        top_frame(&mut dap, tid);
        assert_one_stop(&mut dap);
        continue_thread(&mut dap, tid);
        assert!(reasons.len() <= 4, "stops: {reasons:?}");
    }
    fixture.target.wait_line("counted 3", secs(30));
    clear_instruction_breakpoints(&mut dap);
    fixture.ask("hold", "held");
    let (sum, checksum) = fixture.counts();
    assert_eq!(sum, checksum, "calls were lost or doubled");
    assert_eq!(procfs::live_tids(fixture.pid()), threads, "threads died");
    fixture.ask("resume", "resumed");
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[tick, counted]);
}

/// Instruction steps at a `call`: `next` runs the whole call (here with `singleThread`,
/// so only that thread moves) and stops at the instruction after it, in the same frame,
/// the callee having run once; `stepIn` enters the callee, at its first instruction.
#[test]
fn instruction_steps_over_and_into_a_call() {
    require_harness!();
    let mut fixture = BpTarget::start(4, &[]);
    let tick = fixture.address("tick");
    let base = code::load_base(fixture.pid(), &fixture.exe);
    let calls = code::calls_to(&fixture.exe, "worker_main", "tick");
    assert_eq!(calls.len(), 1, "worker_main's calls of tick: {calls:x?}");
    let call = base + calls[0];
    let after = base
        + code::instruction_offsets(&fixture.exe, "worker_main")
            .into_iter()
            .find(|offset| base + offset > call)
            .expect("an instruction after the call");
    let mut dap = Dap::attached(fixture.pid(), false);
    let ids = set_instruction_breakpoints(&mut dap, &[(call, None)]);
    let tid = breakpoint_stop(&mut dap, ids[0]);
    assert_at(&mut dap, tid, "worker_main", call);
    let before = fixture.slots();
    dap.ok(
        "next",
        json!({ "threadId": tid, "granularity": "instruction", "singleThread": true }),
    );
    let stopped = dap.next_event("stopped", STOP_WAIT);
    assert_eq!(stopped["body"]["reason"], "step", "{stopped}");
    assert_eq!(thread_id(&stopped), tid, "{stopped}");
    assert_at(&mut dap, tid, "worker_main", after);
    let now = fixture.slots();
    for (worker, count) in &now {
        let expected = before[worker] + u64::from(*worker == tid);
        assert_eq!(
            *count, expected,
            "stepping over the call of {tid}: {worker}'s calls went {} -> {count}",
            before[worker]
        );
    }
    // Round the loop to the call again, then into it.
    continue_thread(&mut dap, tid);
    let tid = breakpoint_stop(&mut dap, ids[0]);
    dap.ok(
        "stepIn",
        json!({ "threadId": tid, "granularity": "instruction" }),
    );
    let stopped = dap.next_event("stopped", STOP_WAIT);
    assert_eq!(stopped["body"]["reason"], "step", "{stopped}");
    assert_at(&mut dap, tid, "tick", tick);
    let frames = stack(&mut dap, tid, 2);
    assert_eq!(frames[1].1, after, "tick's caller frame: {frames:?}");
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[call]);
}

/// `abort()` (a failed assert, a Rust panic with panic=abort) stops as a SIGABRT
/// exception by default, in the thread that called it, `unhandled`; `continue` lets the
/// program die of it as it would have without latch.
#[test]
fn an_abort_stops_as_an_exception_and_continuing_delivers_it() {
    require_harness!();
    let mut fixture = BpTarget::start(2, &[]);
    let crasher = fixture.target.tid_named("crasher") as i64;
    let mut dap = Dap::attached(fixture.pid(), false);
    fixture.target.send_line("abort");
    let stopped = dap.next_event("stopped", STOP_WAIT);
    assert_eq!(stopped["body"]["reason"], "exception", "{stopped}");
    assert_eq!(thread_id(&stopped), crasher, "{stopped}");
    let info = dap.ok("exceptionInfo", json!({ "threadId": crasher }));
    assert_eq!(info["body"]["exceptionId"], "SIGABRT", "{info}");
    assert_eq!(info["body"]["breakMode"], "unhandled", "{info}");
    // Another thread did not stop for a signal: no exception to describe.
    let other = dap.request("exceptionInfo", json!({ "threadId": fixture.pid() }));
    assert_eq!(other["success"], false, "{other}");
    continue_thread(&mut dap, crasher);
    let status = fixture.target.wait_exit(secs(30));
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "the target ended with {status}"
    );
    let exited = dap.next_event("exited", secs(10));
    assert_eq!(exited["body"]["exitCode"], 128 + libc::SIGABRT, "{exited}");
    dap.next_event("terminated", secs(10));
}

/// Signals other than crashes do not stop by default; with `other-signals` on, a SIGUSR1
/// the program catches stops (breakMode `always`), and `continue` hands it to the
/// program's handler.
#[test]
fn other_signals_stop_only_when_asked_and_continuing_delivers_them() {
    require_harness!();
    let mut target = crate::support::Target::start(crate::support::Fixture::Signals, &[]);
    let mut dap = Dap::attached(target.pid, false);
    target.signal(libc::SIGUSR1);
    assert!(target.next_line("caught SIGUSR1", secs(30)).is_some());
    assert_no_stop(&mut dap, "SIGUSR1 is not a crash and other-signals is off");
    dap.ok(
        "setExceptionBreakpoints",
        json!({ "filters": ["SIGSEGV", "other-signals"] }),
    );
    target.signal(libc::SIGUSR1);
    let stopped = dap.next_event("stopped", STOP_WAIT);
    assert_eq!(stopped["body"]["reason"], "exception", "{stopped}");
    let tid = thread_id(&stopped);
    let info = dap.ok("exceptionInfo", json!({ "threadId": tid }));
    assert_eq!(info["body"]["exceptionId"], "SIGUSR1", "{info}");
    assert_eq!(info["body"]["breakMode"], "always", "{info}");
    assert_eq!(
        target.printed("caught"),
        None,
        "the handler ran during the stop"
    );
    continue_thread(&mut dap, tid);
    assert!(
        target.next_line("caught SIGUSR1", secs(30)).is_some(),
        "continue did not deliver the signal"
    );
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// The source breakpoint inside counted() (`last_counted = iteration;`) with `extra`
/// (a condition, a hit condition, a log message): its id.
fn set_counted_line(dap: &mut Dap, extra: Value) -> Value {
    let mut breakpoint = json!({ "line": counted_line() });
    for (key, value) in extra.as_object().unwrap() {
        breakpoint[key] = value.clone();
    }
    let r = dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": breakpoints_source() }, "breakpoints": [breakpoint] }),
    );
    r["body"]["breakpoints"][0].clone()
}

fn breakpoints_source() -> std::path::PathBuf {
    crate::support::fixtures::source_dir().join("breakpoints/breakpoints.c")
}

fn counted_line() -> u32 {
    let text = std::fs::read_to_string(breakpoints_source()).unwrap();
    text.lines()
        .position(|l| l.contains("last_counted = iteration;"))
        .expect("counted's line in breakpoints.c") as u32
        + 1
}

/// The value of `expression` in frame `frame`, as `evaluate` shows it.
fn evaluate(dap: &mut Dap, frame: i64, expression: &str) -> String {
    let r = dap.ok(
        "evaluate",
        json!({ "expression": expression, "frameId": frame, "context": "watch" }),
    );
    r["body"]["result"].as_str().unwrap().to_string()
}

/// A condition is decided at each hit from the thread's own values: `iteration % 3 == 0`
/// over ten calls stops at 3, 6 and 9 only (the argument read both by `evaluate` and from
/// rdi), and the calls between run on. With a hit condition too, only hits whose
/// condition holds are counted (`iteration > 4` and `2`: from the second such hit on, 6,
/// 7, 8). The loop ends each time, so no hit was lost or held.
#[test]
fn conditions_stop_only_where_they_hold() {
    require_harness!();
    let mut fixture = BpTarget::start(2, &[]);
    let counted = fixture.address("counted");
    let mut dap = Dap::attached(fixture.pid(), false);
    for (extra, loop_length, expected) in [
        (
            json!({ "condition": "iteration % 3 == 0" }),
            10,
            vec![3, 6, 9],
        ),
        (
            json!({ "condition": "iteration > 4", "hitCondition": "2" }),
            8,
            vec![6, 7, 8],
        ),
    ] {
        let set = set_counted_line(&mut dap, extra.clone());
        assert_eq!(set["verified"], true, "{extra}: {set}");
        fixture.target.send_line(&format!("count {loop_length}"));
        for iteration in &expected {
            let stopped = dap.next_event("stopped", STOP_WAIT);
            assert_eq!(stopped["body"]["reason"], "breakpoint", "{stopped}");
            let tid = thread_id(&stopped);
            let (name, _, frame) = top_frame(&mut dap, tid);
            assert_eq!(name, "counted", "{stopped}");
            assert_eq!(
                evaluate(&mut dap, frame, "iteration"),
                iteration.to_string(),
                "{extra}"
            );
            assert_eq!(registers(&mut dap, frame)["rdi"], *iteration, "{extra}");
            continue_thread(&mut dap, tid);
        }
        fixture
            .target
            .wait_line(&format!("counted {loop_length}"), secs(30));
        if let Some(extra_stop) = dap.try_next_event("stopped", Duration::ZERO) {
            panic!("{extra}: a stop where the condition was false: {extra_stop}");
        }
    }
    dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": breakpoints_source() }, "breakpoints": [] }),
    );
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[counted]);
}

/// A logpoint's `{expressions}` are evaluated at each hit with that call's values, in
/// order, and the program never stops; `{{` writes a brace; an expression that cannot be
/// read at a hit says why in its place.
#[test]
fn logpoints_show_each_hits_values() {
    require_harness!();
    let mut fixture = BpTarget::start(2, &[]);
    let counted = fixture.address("counted");
    let mut dap = Dap::attached(fixture.pid(), false);
    let set = set_counted_line(
        &mut dap,
        json!({ "logMessage": "{{call}} {iteration}, twice {iteration * 2}, {*(long *)8}" }),
    );
    assert_eq!(set["verified"], true, "{set}");
    fixture.target.send_line("count 4");
    fixture.target.wait_line("counted 4", secs(30));
    let logged = dap.wait_until(secs(10), |dap| {
        dap.events("output")
            .iter()
            .filter(|e| {
                e["body"]["output"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("{call}"))
            })
            .count()
            >= 4
    });
    assert!(logged, "fewer than 4 log lines:\n{}", dap.recent());
    let lines: Vec<String> = dap
        .events("output")
        .iter()
        .filter_map(|e| e["body"]["output"].as_str())
        .filter(|o| o.starts_with("{call}"))
        .map(str::to_string)
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        assert!(
            line.starts_with(&format!("{{call}} {n}, twice {}, <error: ", n * 2)),
            "log line {n}: {line:?}"
        );
        assert!(line.contains("cannot read"), "log line {n}: {line:?}");
    }
    assert!(
        dap.events("stopped").is_empty(),
        "a logpoint stopped the target"
    );
    dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": breakpoints_source() }, "breakpoints": [] }),
    );
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[counted]);
}

/// A condition that cannot be decided at a hit (it reads unmapped memory) stops there, as
/// gdb does, and says why in the debug console; a condition or message that does not
/// parse, or names nothing there, is unverified when set, with why.
#[test]
fn conditions_that_cannot_be_decided_stop_and_bad_ones_are_refused() {
    require_harness!();
    let mut fixture = BpTarget::start(2, &[]);
    let counted = fixture.address("counted");
    let mut dap = Dap::attached(fixture.pid(), false);
    for (extra, why) in [
        (json!({ "condition": "iteration >" }), "does not parse"),
        (
            json!({ "condition": "nothing == 1" }),
            "no variable named 'nothing'",
        ),
        (
            json!({ "logMessage": "at {nothing}" }),
            "no variable named 'nothing'",
        ),
        (json!({ "logMessage": "at {iteration" }), "no closing"),
    ] {
        let set = set_counted_line(&mut dap, extra.clone());
        assert_eq!(set["verified"], false, "{extra}: {set}");
        let message = set["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{extra}: {set}");
    }
    let set = set_counted_line(&mut dap, json!({ "condition": "*(long *)8 == iteration" }));
    assert_eq!(set["verified"], true, "{set}");
    fixture.target.send_line("count 1");
    let stopped = dap.next_event("stopped", STOP_WAIT);
    assert_eq!(stopped["body"]["reason"], "breakpoint", "{stopped}");
    let said = dap.events("output").iter().any(|e| {
        e["body"]["output"]
            .as_str()
            .is_some_and(|o| o.contains("could not be evaluated") && o.contains("cannot read"))
    });
    assert!(said, "no word of the failed condition:\n{}", dap.recent());
    continue_thread(&mut dap, thread_id(&stopped));
    fixture.target.wait_line("counted 1", secs(30));
    dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": breakpoints_source() }, "breakpoints": [] }),
    );
    dap.disconnect(json!({}));
    assert_unharmed(&mut fixture, &[counted]);
}
