//! What /proc says about a target: its tasks, their states and tracers.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::fixtures::{CREATOR_COMM, EPHEMERAL_COMM};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub tid: i32,
    pub comm: String,
    /// The state letter of /proc/PID/task/TID/stat (R, S, D, T, t, Z, X, ...).
    pub state: char,
    pub tracer_pid: i32,
}

/// Parses /proc/PID/task/TID/stat: comm (between the parentheses) and state.
fn stat_of(path: &Path) -> Option<(String, char)> {
    let stat = std::fs::read_to_string(path.join("stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let state = stat[close + 1..].trim_start().chars().next()?;
    Some((comm, state))
}

fn tracer_of(path: &Path) -> Option<i32> {
    let status = std::fs::read_to_string(path.join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Every task of `pid`, zombies included. Tasks that vanish while being read
/// are left out. Empty if the process does not exist.
pub fn all_tasks(pid: i32) -> Vec<Task> {
    let dir = format!("/proc/{pid}/task");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut tasks: Vec<Task> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let path = e.path();
            let (comm, state) = stat_of(&path)?;
            let tracer_pid = tracer_of(&path)?;
            Some(Task {
                tid,
                comm,
                state,
                tracer_pid,
            })
        })
        .collect();
    tasks.sort_by_key(|t| t.tid);
    tasks
}

/// The live tasks of `pid` (zombie and dead tasks excluded).
pub fn live_tasks(pid: i32) -> Vec<Task> {
    all_tasks(pid)
        .into_iter()
        .filter(|t| t.state != 'Z' && t.state != 'X')
        .collect()
}

pub fn live_tids(pid: i32) -> BTreeSet<i32> {
    live_tasks(pid).iter().map(|t| t.tid).collect()
}

/// Whether a task is (or may be) one of the churn fixture's short-lived
/// threads: named "ephemeral", or not yet renamed from its creator's name and
/// not one of the tasks present when the target became ready.
pub fn is_transient(t: &Task, initial: &[Task]) -> bool {
    t.comm == EPHEMERAL_COMM || (t.comm == CREATOR_COMM && !initial.iter().any(|i| i.tid == t.tid))
}

/// The long-lived live tasks (see `is_transient`).
pub fn stable_tasks(pid: i32, initial: &[Task]) -> Vec<Task> {
    live_tasks(pid)
        .into_iter()
        .filter(|t| !is_transient(t, initial))
        .collect()
}

/// The process's state letter (from /proc/PID/stat), None if it is gone.
pub fn process_state(pid: i32) -> Option<char> {
    stat_of(Path::new(&format!("/proc/{pid}"))).map(|(_, s)| s)
}

pub fn process_comm(pid: i32) -> Option<String> {
    stat_of(Path::new(&format!("/proc/{pid}"))).map(|(c, _)| c)
}

pub fn tracer_pid(pid: i32) -> Option<i32> {
    tracer_of(Path::new(&format!("/proc/{pid}")))
}

/// The thread-group id of a task (Tgid in /proc/TID/status).
pub fn tgid_of(tid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Polls `cond` until it holds or `within` has passed; returns whether it held.
/// (A wait on a condition with a deadline, not a timed sleep.)
pub fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reads the heartbeat counter a fixture keeps in `path`.
pub fn read_heartbeat(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap_or_default();
    if bytes.len() < 8 {
        return 0;
    }
    u64::from_ne_bytes(bytes[..8].try_into().unwrap())
}

/// Asserts that the heartbeat in `path` advances by at least 3 within 10 s.
pub fn assert_heartbeat(path: &Path, pid: i32) {
    let start = read_heartbeat(path);
    assert!(
        wait_for(Duration::from_secs(10), || read_heartbeat(path)
            >= start + 3),
        "heartbeat of {pid} stuck at {} (was {start}); tasks: {:?}",
        read_heartbeat(path),
        all_tasks(pid)
    );
}

/// After a detach: no thread in `t`/`T` (or, if the target was job-control
/// stopped before the attach, every thread in `T`), TracerPid 0 everywhere, the
/// same number of long-lived threads, and (if running) the heartbeat goes on.
pub fn assert_runs_on(pid: i32, heartbeat: &Path, initial: &[Task], was_stopped_before: bool) {
    check_runs_on(pid, heartbeat, initial, was_stopped_before, false);
}

/// As `assert_runs_on`, for a runtime that starts OS threads of its own accord (Go starts
/// one when a stop kept its threads from running for long): the threads it had must all
/// be there; more may have come.
pub fn assert_runs_on_with_new_threads_allowed(pid: i32, heartbeat: &Path, initial: &[Task]) {
    check_runs_on(pid, heartbeat, initial, false, true);
}

fn check_runs_on(
    pid: i32,
    heartbeat: &Path,
    initial: &[Task],
    was_stopped_before: bool,
    may_grow: bool,
) {
    let expected_threads = initial.len();
    let count_ok = |tasks: &[Task]| {
        if may_grow {
            initial.iter().all(|i| tasks.iter().any(|t| t.tid == i.tid))
        } else {
            tasks.len() == expected_threads
        }
    };
    let good = |tasks: &[Task]| {
        count_ok(tasks)
            && tasks.iter().all(|t| {
                t.tracer_pid == 0
                    && if was_stopped_before {
                        t.state == 'T'
                    } else {
                        t.state != 't' && t.state != 'T'
                    }
            })
    };
    // The detach happened before latch answered; allow the scheduler a moment to
    // make the states visible, but no more.
    let mut tasks = stable_tasks(pid, initial);
    if !good(&tasks) {
        wait_for(Duration::from_secs(2), || {
            tasks = stable_tasks(pid, initial);
            good(&tasks)
        });
    }
    assert!(!live_tasks(pid).is_empty(), "target {pid} is gone");
    for t in &tasks {
        assert_eq!(
            t.tracer_pid, 0,
            "task {t:?} of {pid} is still traced; all: {tasks:?}"
        );
        if was_stopped_before {
            assert_eq!(
                t.state, 'T',
                "task {t:?} of the stopped target {pid} is not stopped; all: {tasks:?}"
            );
        } else {
            assert!(
                !matches!(t.state, 't' | 'T'),
                "task {t:?} of {pid} is stopped after detach; all: {tasks:?}"
            );
        }
    }
    assert!(
        count_ok(&tasks),
        "threads of {pid} changed: had {initial:?}, now {tasks:?}"
    );
    if !was_stopped_before {
        assert_heartbeat(heartbeat, pid);
    }
}
