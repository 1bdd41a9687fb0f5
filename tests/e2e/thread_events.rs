//! `thread` events while a target makes short-lived threads (issue 20): coalesced by
//! latch's reporting window while the target runs, exact at a stop.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::checks::assert_all_traced_and_stopped;
use crate::support::{procfs, secs, thread_id, Dap, Fixture, Target};

/// latch's reporting window, as latch defines it.
const WINDOW: Duration = latch::session::THREAD_EVENT_WINDOW;

/// The `thread` events in `log` (in order) as (tid, started?).
fn thread_events(log: &[Value]) -> Vec<(i64, bool)> {
    log.iter()
        .filter(|m| m["type"] == "event" && m["event"] == "thread")
        .map(|e| (thread_id(e), e["body"]["reason"] == "started"))
        .collect()
}

/// The threads the client knows from events alone: announced and not retired, in
/// the order the events came (as nvim-dap keeps its table).
fn view_from_events(log: &[Value]) -> BTreeSet<i64> {
    let mut view = BTreeSet::new();
    for (tid, started) in thread_events(log) {
        if started {
            view.insert(tid);
        } else {
            view.remove(&tid);
        }
    }
    view
}

/// Pauses, then checks that the events up to `stopped` describe exactly the threads
/// that exist: the `threads` answer and /proc (frozen: every task is stopped).
fn pause_and_check_view(dap: &mut Dap, target: &Target, what: &str) {
    let r = dap.request("pause", json!({"threadId": target.pid}));
    assert_eq!(r["success"], true, "{what}: {r}");
    dap.next_event("stopped", secs(10));
    let stopped_at = dap.log.len();
    assert_all_traced_and_stopped(target.pid, dap.pid());
    let from_events = view_from_events(&dap.log[..stopped_at]);
    let answered: BTreeSet<i64> = dap.threads().into_iter().map(|(tid, _)| tid).collect();
    let in_proc: BTreeSet<i64> = procfs::live_tids(target.pid)
        .into_iter()
        .map(i64::from)
        .collect();
    assert_eq!(
        from_events, answered,
        "{what}: the threads the events announced and did not retire, against `threads`"
    );
    assert_eq!(
        answered, in_proc,
        "{what}: `threads` against /proc/PID/task"
    );
}

/// The churn fixture makes and joins a thread per creator, each living about 2 ms, for
/// as long as it runs: 15,000 `thread` events a second before coalescing. Now at most
/// one batch goes out per window, and a batch holds at most the exits of announced
/// threads and the threads alive through a whole window: with N creators, about N
/// short-lived threads exist at any moment (N + 2 allows for a joined thread whose
/// exit the tracer has yet to collect), so a batch holds at most 2 (N + 2) events.
#[test]
fn churning_threads_send_at_most_one_batch_per_window() {
    require_harness!();
    const CREATORS: usize = 2;
    let target = Target::start(Fixture::Churn, &[&CREATORS.to_string()]);
    let mut dap = Dap::attached(target.pid, true);
    dap.next_event("stopped", secs(10));
    let before = dap.log.len();

    // The span during which latch can have sent batches: from before `continue` to
    // after the pause is answered (a stopped target sends none). Measured by the test,
    // so at least as long as latch ran it: the bound below only grows with it.
    let started = Instant::now();
    dap.ok("continue", json!({"threadId": target.pid}));
    dap.drain_for(secs(5));
    let seq = dap.send("pause", json!({"threadId": target.pid}));
    let r = dap.response(seq, secs(10));
    let span = started.elapsed();
    assert_eq!(r["success"], true, "{r}");
    let answered_at = dap
        .position_of_response(seq)
        .expect("the pause response is logged");
    dap.next_event("stopped", secs(10));

    let windows = (span.as_secs_f64() / WINDOW.as_secs_f64()).ceil() as usize + 1;
    let running = thread_events(&dap.log[before..answered_at]);
    let bound = windows * 2 * (CREATORS + 2);
    assert!(
        running.len() <= bound,
        "{} thread events while running for {span:?}; at most {bound} allowed \
         ({windows} windows of {WINDOW:?}, {CREATORS} creators)",
        running.len()
    );
    // latch's own account: one debug line per batch, batches a window apart.
    let log = dap.log_text();
    let batches = log.matches("thread events flushed").count();
    eprintln!(
        "{} thread events in {batches} batches while running for {span:?}",
        running.len()
    );
    assert!(
        batches <= windows,
        "{batches} batches of thread events in {span:?}, more than one per {WINDOW:?}"
    );
    // The churn went on all along: its threads are still being made at the stop.
    assert!(
        procfs::live_tasks(target.pid)
            .iter()
            .any(|t| procfs::is_transient(t, &target.initial)),
        "no short-lived thread at the stop: did the fixture churn?"
    );
    let from_events = view_from_events(&dap.log);
    let answered: BTreeSet<i64> = dap.threads().into_iter().map(|(tid, _)| tid).collect();
    assert_eq!(
        from_events, answered,
        "events against `threads` at the stop"
    );
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// Threads born and dead as fast as the fixture can (burst: detached, exiting at once)
/// and pauses at arbitrary moments: every time, the events before `stopped` bring the
/// client's set to exactly the threads that exist.
#[test]
fn at_a_pause_the_events_announced_exactly_the_threads_that_exist() {
    require_harness!();
    let target = Target::start(Fixture::Churn, &["4", "burst"]);
    let mut dap = Dap::attached(target.pid, false);
    for round in 0..5 {
        // Let threads come and go, for a few windows and for less than one.
        let run = if round % 2 == 0 {
            WINDOW * 4
        } else {
            WINDOW / 5
        };
        dap.drain_for(run);
        pause_and_check_view(&mut dap, &target, &format!("round {round}"));
        dap.ok("continue", json!({"threadId": target.pid}));
    }
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// A thread that lives on is announced while the target runs, without a stop, and its
/// exit is reported too, among the churn of short-lived ones.
#[test]
fn a_long_lived_thread_started_mid_session_is_announced() {
    require_harness!();
    let mut target = Target::start(Fixture::Churn, &["2"]);
    let mut dap = Dap::attached(target.pid, false);
    target.send_line("spawn");
    let tid: i64 = target
        .wait_line("spawned ", secs(10))
        .parse()
        .expect("a tid");
    let announced = |dap: &Dap, started: bool| thread_events(&dap.log).contains(&(tid, started));
    assert!(
        dap.wait_until(secs(10), |dap| announced(dap, true)),
        "the long-lived thread {tid} was not announced while the target ran"
    );
    assert!(
        dap.events("stopped").is_empty(),
        "announced only because of a stop"
    );
    target.send_line("release");
    assert!(
        dap.wait_until(secs(10), |dap| announced(dap, false)),
        "the long-lived thread {tid} was announced, but its exit never was"
    );
    assert!(
        procfs::tgid_of(tid as i32) != Some(target.pid),
        "thread {tid} reported exited but is alive"
    );
    pause_and_check_view(&mut dap, &target, "after the long-lived thread");
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}
