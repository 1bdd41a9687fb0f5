//! Checks of the harness itself: the fixtures start, report ready, have the
//! expected threads and a heartbeat that keeps beating.

use super::procfs::{self, assert_heartbeat};
use super::{Fixture, Target};

fn check(f: Fixture, args: &[&str], expected_live: usize) {
    let t = Target::start(f, args);
    assert_eq!(t.thread_count(), expected_live, "{f:?}: {:?}", t.initial);
    assert!(t.initial.iter().all(|t| t.tracer_pid == 0));
    assert_heartbeat(t.heartbeat_path(), t.pid);
    // Nothing is traced, so the runs-on check must hold as is.
    t.assert_runs_on(false);
}

#[test]
fn fixture_sleeping_runs() {
    check(Fixture::Sleeping, &["3"], 5);
}

#[test]
fn fixture_spinning_runs() {
    check(Fixture::Spinning, &["2"], 4);
}

#[test]
fn fixture_churn_runs() {
    let t = Target::start(Fixture::Churn, &["2"]);
    assert_eq!(t.thread_count(), 4, "{:?}", t.initial);
    // Short-lived threads come and go.
    let seen = procfs::wait_for(super::secs(10), || {
        procfs::live_tasks(t.pid)
            .iter()
            .any(|x| x.comm == super::fixtures::EPHEMERAL_COMM)
    });
    assert!(seen, "no short-lived thread seen");
    t.assert_runs_on(false);
}

#[test]
fn fixture_pthread_exit_runs() {
    let t = Target::start(Fixture::PthreadExit, &["2"]);
    // The main thread is a zombie task, the others live on.
    let main = procfs::all_tasks(t.pid)
        .into_iter()
        .find(|x| x.tid == t.pid)
        .unwrap();
    assert_eq!(main.state, 'Z');
    assert_eq!(t.thread_count(), 4, "{:?}", t.initial);
    t.assert_runs_on(false);
}

#[test]
fn fixture_go_runs() {
    if super::fixtures::go_fixture().is_none() {
        return;
    }
    let t = Target::start(Fixture::Go, &["2", "4"]);
    assert!(t.thread_count() >= 2, "{:?}", t.initial);
    t.assert_runs_on(false);
}

#[test]
fn runs_on_check_detects_a_stopped_target() {
    // The check must be able to fail: a SIGSTOPped target is not running on.
    let t = Target::start(Fixture::Sleeping, &["1"]);
    t.signal(libc::SIGSTOP);
    assert!(procfs::wait_for(super::secs(5), || procfs::process_state(
        t.pid
    ) == Some('T')));
    let r = std::panic::catch_unwind(|| {
        procfs::assert_runs_on(t.pid, t.heartbeat_path(), &t.initial, false)
    });
    assert!(r.is_err(), "assert_runs_on accepted a stopped target");
    // And the stopped-before variant accepts it.
    procfs::assert_runs_on(t.pid, t.heartbeat_path(), &t.initial, true);
    t.signal(libc::SIGCONT);
    t.assert_runs_on(false);
}
