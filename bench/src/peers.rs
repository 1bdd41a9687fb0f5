//! Driving each debugger through one attach / threads / detach cycle.
//!
//! What is timed, per peer:
//!
//! - latch and lldb-dap are driven over DAP on stdio the way an editor does:
//!   `initialize`, `attach {pid, stopOnEntry}`, wait for `initialized`,
//!   `configurationDone`, then wait until the adapter has said that all
//!   threads are stopped. That moment is the latest of: the `attach`
//!   response, the `configurationDone` response and (with stopOnEntry, the
//!   default) the first `stopped` event with `allThreadsStopped: true`.
//!   latch's contract puts its `attach` response after `configurationDone`
//!   and after every thread is stopped. lldb-dap 19 answers `attach` before
//!   it sends `initialized`, with the target already in ptrace-stop, but it
//!   only tells the editor (one `stopped` event per thread) after
//!   `configurationDone`; an editor shows the stop only then, so that is
//!   what we time. Then `threads`, then the stack traces (below), then
//!   `disconnect {terminateDebuggee: false}`.
//! - Stack traces. On the thread targets: one `stackTrace {threadId,
//!   startFrame: 0, levels: 0}` per thread of the `threads` response, all
//!   written back to back before reading any answer, timed from the first
//!   request to the last response. On the large binary: `stackTrace` of the
//!   main thread (cold), then the same request again (warm).
//! - gdb has no protocol worth driving here, so it is timed as a whole:
//!   `gdb -nx -batch -p PID -ex 'info threads'` from spawn to exit, which
//!   covers attach, symbol loading, the thread list and detach; gdb + bt
//!   adds `-ex 'thread apply all bt'`. On the large binary gdb + bt is
//!   `-ex bt` alone (the main thread's stack).
//! - waitFor ([`run_waitfor`]): latch and lldb-dap are told to wait for the
//!   counter by name before it exists; it is started once they say they
//!   wait, and the lines it printed before the stop was reported say how
//!   early they caught it. gdb has no waitFor on Linux and sits it out.
//!
//! After every session the target must run on untraced
//! ([`check_target_after`]), by the rule of its scenario ([`ThreadRule`]).

pub mod bp;
pub mod goroutines;
pub mod launch;
pub mod values;

use crate::dap::{check_success, Dap, Timeout};
use crate::procfs::{self, Reaped};
use crate::report::{Measure, Outcome, Row, RunResult};
use crate::target::{Scenario, Target, Targets, ThreadRule, COUNTER_NAME};
use anyhow::Result;
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Peer {
    Latch,
    /// gdb -batch -ex 'info threads'
    Gdb,
    /// gdb -batch -ex 'info threads' -ex 'thread apply all bt'
    GdbBt,
    LldbDap,
    /// Delve's `dlv dap`, over TCP: the goroutines scenario only.
    Delve,
}

impl Peer {
    /// gdb has no waitFor on Linux: it sits out that scenario.
    /// gdb has no session to leave running either: it sits out churn-run.
    /// gdb + bt is gdb with backtraces: the breakpoint scenarios run gdb alone (over MI),
    /// and so do the launch scenarios (in batch mode).
    pub fn can_run(self, scenario: Scenario) -> bool {
        let breakpoints = matches!(
            scenario,
            Scenario::Hit(_) | Scenario::Hot | Scenario::HotCondition | Scenario::SourceBreakpoints
        );
        let gdb_cannot = matches!(scenario, Scenario::WaitFor | Scenario::ChurnRun(_))
            && matches!(self, Peer::Gdb | Peer::GdbBt);
        let values = matches!(scenario, Scenario::ValuesBig | Scenario::Values);
        let bt_cannot = (breakpoints || values || scenario.is_launch()) && self == Peer::GdbBt;
        // The goroutine view is latch's against Delve's; Delve debugs nothing else here.
        let goroutines = matches!(scenario, Scenario::Goroutines(_));
        let view_cannot = match self {
            Peer::Latch => false,
            Peer::Delve => !goroutines,
            _ => goroutines,
        };
        !gdb_cannot && !bt_cannot && !view_cannot
    }

    pub fn name(self) -> &'static str {
        match self {
            Peer::Latch => "latch",
            Peer::Gdb => "gdb",
            Peer::GdbBt => "gdb + bt",
            Peer::LldbDap => "lldb-dap",
            Peer::Delve => "delve",
        }
    }
}

pub struct RunOpts {
    pub timeout: Duration,
    pub stop_on_entry: bool,
    /// Stack traces of all threads after `threads` (thread targets).
    pub stacks: bool,
    /// Where adapters' stderr and gdb's output go, one file per run.
    pub log_dir: PathBuf,
    /// Let latch use its on-disk cache of inflated debug sections (warm after the first
    /// run); otherwise every run inflates them, as a first attach on a machine does.
    pub warm_cache: bool,
    /// How latch's breakpoints are set (`bp:N`, `hot`).
    pub breakpoints: bp::BreakpointsBy,
    /// What one `next` steps over (`bp:N`).
    pub step: bp::Step,
    /// How the breakpoint in the library is set (`launch-lib`).
    pub launch_lib_breakpoint: launch::LibBreakpoint,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn log_file(opts: &RunOpts, name: &str) -> std::io::Result<std::fs::File> {
    std::fs::File::create(opts.log_dir.join(name))
}

/// After the debugger is gone: did it give the target back running and
/// untraced, with all its threads? A peer that leaves a target stopped is a
/// finding, reported loudly. `lines_before`: the target's output lines read
/// before the detach, for targets whose output shows that they run on.
fn check_target_after(target: &mut Target, lines_before: u64, notes: &mut Vec<String>) {
    let pid = target.pid();
    if !target.alive() {
        notes.push("**TARGET DIED** during or after detach".into());
        return;
    }
    match procfs::wait_target_released(pid, Duration::from_secs(2)) {
        Ok(seen) => {
            if !seen.stopped.is_empty() {
                let mut states: Vec<char> = seen.stopped.iter().map(|s| s.1).collect();
                states.sort_unstable();
                states.dedup();
                let states: String = states.into_iter().collect();
                // No tids in the message, so identical findings across runs
                // collapse into one line with a count.
                notes.push(format!(
                    "**TARGET LEFT STOPPED**: {} of {} threads still in state {states} 2 s after detach",
                    seen.stopped.len(),
                    seen.threads,
                ));
            }
            if !seen.traced.is_empty() {
                notes.push(format!(
                    "**TARGET STILL TRACED**: {} of {} threads have a nonzero TracerPid 2 s after detach",
                    seen.traced.len(),
                    seen.threads,
                ));
            }
            match target.rule {
                ThreadRule::Same if seen.threads != target.threads => notes.push(format!(
                    "**THREAD COUNT CHANGED**: target has {} threads after detach, expected {}",
                    seen.threads, target.threads
                )),
                ThreadRule::NewAllowed => {
                    let gone = target
                        .tids
                        .iter()
                        .filter(|t| !seen.tids.contains(t))
                        .count();
                    if gone > 0 {
                        notes.push(format!(
                            "**THREADS GONE**: {gone} of the target's {} threads vanished during the session",
                            target.threads
                        ));
                    }
                }
                // The main thread is there (the target is alive); the
                // others come and go. Running on is checked below.
                _ => {}
            }
        }
        Err(e) => notes.push(format!("**cannot inspect target after detach**: {e}")),
    }
    if target.reports_progress() {
        check_output_goes_on(target, lines_before, notes);
    }
}

/// The target's output must advance after the detach (the short-lived
/// threads' spawner reports every 500 threads, Go ticks every 20 ms, the
/// counter prints every ms): a target that is not stopped but no longer
/// makes progress (e.g. a thread left in a state it cannot leave) shows here.
fn check_output_goes_on(target: &mut Target, before: u64, notes: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while target.lines() < before + 2 {
        if Instant::now() >= deadline {
            notes.push(format!(
                "**TARGET DOES NOT RUN ON**: its output advanced by {} lines in 2 s after detach",
                target.lines() - before
            ));
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Turn an error into Timeout or Failed.
fn outcome_of_error(e: anyhow::Error) -> Outcome {
    match e.downcast_ref::<Timeout>() {
        Some(t) => Outcome::Timeout(t.to_string()),
        None => Outcome::Failed(format!("{e:#}")),
    }
}

/// Kill a peer that timed out or failed, with its whole process group, and
/// reap what we can so nothing keeps running into the next measurement.
fn kill_peer(pid: i32, extra: &[i32]) {
    procfs::kill_group(pid);
    procfs::kill(pid, libc::SIGKILL);
    for &d in extra {
        procfs::kill(d, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let _ = procfs::wait4_deadline(pid, deadline);
    for &d in extra {
        let _ = procfs::wait4_deadline(d, deadline);
    }
}

/// Start an adapter on stdio, in its own process group (so a timeout kills
/// it and anything it started, lldb-server, in one go), stderr to a log.
fn start_adapter(
    peer: Peer,
    program: &Path,
    args: &[&str],
    log_name: &str,
    opts: &RunOpts,
) -> Result<(i32, Dap), Outcome> {
    let stderr = match log_file(opts, &format!("{}-{log_name}.stderr", peer.name())) {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::null(),
    };
    let mut command = Command::new(program);
    if !opts.warm_cache {
        // Empty: latch neither reads nor writes its cache (other peers ignore it).
        command.env("LATCH_CACHE_DIR", "");
    }
    let mut child = procfs::normal_priority(&mut command)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| Outcome::Failed(format!("cannot start {}: {e}", program.display())))?;
    let pid = child.id() as i32;
    let dap = Dap::new(child.stdin.take().unwrap(), child.stdout.take().unwrap());
    Ok((pid, dap))
}

/// `initialize`, as an editor sends it: when the response came, and the
/// version lldb-dap reports in it.
fn initialize(dap: &mut Dap, peer: Peer, deadline: Instant) -> Result<(Instant, Option<String>)> {
    let init = dap.send(
        "initialize",
        json!({
            "clientID": "latch-bench",
            "clientName": "latch-bench",
            "adapterID": match peer {
                Peer::LldbDap => "lldb-dap",
                Peer::Delve => "go",
                _ => "latch",
            },
            "linesStartAt1": true,
            "columnsStartAt1": true,
            "pathFormat": "path",
            "supportsRunInTerminalRequest": false,
        }),
    )?;
    let (t_init, resp) = dap.response(init, deadline, "the `initialize` response")?;
    let version = resp["body"]["__lldb"]["version"]
        .as_str()
        .map(str::to_string);
    Ok((t_init, version))
}

/// Peak memory of the adapter and everything it started, then
/// `disconnect {terminateDebuggee: false}`, timed. Returns the adapter's
/// descendants, to reap after it.
fn measure_and_detach(
    dap: &mut Dap,
    pid: i32,
    deadline: Instant,
    m: &mut Measure,
) -> Result<Vec<i32>> {
    // Memory just before detach: the adapter and everything it started
    // (lldb-server for lldb-dap). Summing per-process peaks slightly
    // over-states a tree whose peaks did not coincide; it is a bound.
    let tree = procfs::descendants(pid);
    let rss_kb: u64 = std::iter::once(pid)
        .chain(tree.iter().copied())
        .filter_map(procfs::vm_hwm_kb)
        .sum();
    m.0.insert(Row::PeakRss, mib(rss_kb));

    let t_sent = Instant::now();
    let disc = dap.send("disconnect", json!({ "terminateDebuggee": false }))?;
    let (t_disc, _) = dap.response(disc, deadline, "the `disconnect` response")?;
    m.0.insert(Row::Detach, ms(t_disc - t_sent));
    Ok(tree)
}

/// A session that failed or timed out: kill the adapter's tree, keep what
/// it said on stderr.
fn abort_session(dap: &Dap, pid: i32, e: anyhow::Error, notes: &mut Vec<String>) -> Outcome {
    let extra = procfs::descendants(pid);
    kill_peer(pid, &extra);
    if !dap.seen.stderr.is_empty() {
        notes.push(format!("adapter stderr: {}", first_line(&dap.seen.stderr)));
    }
    outcome_of_error(e)
}

/// Records a note when, after the stop was reported, not every thread is in ptrace-stop.
fn check_all_stopped(pid: i32, notes: &mut Vec<String>) -> Result<()> {
    let (stopped, total) = procfs::count_traced_stopped(pid)?;
    if stopped != total {
        notes.push(format!(
            "**NOT ALL STOPPED**: after the stop was reported, only {stopped} of {total} threads were in ptrace-stop"
        ));
    }
    Ok(())
}

/// Ends a DAP session: a failed one is aborted; otherwise the adapter, whose stdin is
/// closed after `disconnect` as an editor does, must exit on its own before the deadline.
fn end_session(
    result: Result<Measure>,
    dap: Dap,
    pid: i32,
    tree: &[i32],
    deadline: Instant,
    peer: Peer,
    notes: &mut Vec<String>,
) -> std::result::Result<(Measure, Reaped), Outcome> {
    let m = result.map_err(|e| abort_session(&dap, pid, e, notes))?;
    drop(dap);
    let Some(reaped) = reap_tree(pid, tree, deadline, peer, notes) else {
        kill_peer(pid, tree);
        return Err(Outcome::Timeout(
            "the adapter's exit after `disconnect`".into(),
        ));
    };
    Ok((m, reaped))
}

/// `attach {pid, stopOnEntry}` and `configurationDone` as an editor sends them, until
/// both are answered (and, with `stop_on_entry`, every thread is reported stopped);
/// their sequence numbers, for the caller's timings. `os_threads`: ask latch for a Go
/// program's OS threads (`goroutines: false`), not its goroutine view (an argument older
/// latches ignore).
fn attach_and_configure(
    dap: &mut Dap,
    pid: i32,
    stop_on_entry: bool,
    os_threads: bool,
    deadline: Instant,
) -> Result<(i64, i64)> {
    let mut args = json!({ "pid": pid, "stopOnEntry": stop_on_entry });
    if os_threads {
        args["goroutines"] = json!(false);
    }
    let attach = dap.send("attach", args)?;
    // `initialized` may come before the attach response (latch) or
    // after it (lldb-dap). A failed attach may never send it at all.
    dap.wait_until(deadline, "the `initialized` event", |s| {
        s.events.contains_key("initialized")
            || s.responses
                .get(&attach)
                .is_some_and(|r| r.1.success != Some(true))
    })?;
    if let Some((_, r)) = dap.seen.responses.get(&attach) {
        check_success(r.value())?;
    }
    let conf = dap.send("configurationDone", json!({}))?;
    let what = match stop_on_entry {
        true => "all threads stopped",
        false => "the attach and configurationDone responses",
    };
    dap.wait_until(deadline, what, |s| {
        s.responses.contains_key(&attach)
            && s.responses.contains_key(&conf)
            && (!stop_on_entry || s.all_stopped.is_some())
    })?;
    Ok((attach, conf))
}

/// The result of a run whose session ended: the whole session's time and CPU, and the
/// target checked to run on after the detach.
fn timed_run(
    ended: std::result::Result<(Measure, Reaped), Outcome>,
    t0: Instant,
    target: &mut Target,
    lines_at_detach: u64,
    mut notes: Vec<String>,
    version: Option<String>,
) -> RunResult {
    let (mut m, reaped) = match ended {
        Ok(ended) => ended,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    m.0.insert(Row::Session, ms(reaped.at - t0));
    m.0.insert(Row::Cpu, ms(reaped.cpu));
    check_target_after(target, lines_at_detach, &mut notes);
    RunResult {
        outcome: Outcome::Ok(m),
        notes,
        version,
    }
}

/// One DAP session against `target`. `program`/`args` start the adapter.
pub fn run_dap(
    peer: Peer,
    program: &Path,
    args: &[&str],
    target: &mut Target,
    scenario: Scenario,
    opts: &RunOpts,
) -> RunResult {
    let mut notes = Vec::new();
    let mut version = None;
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let (pid, mut dap) = match start_adapter(peer, program, args, &target.pid().to_string(), opts) {
        Ok(started) => started,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    let mut tree = Vec::new();
    let mut lines_at_detach = 0;

    let result = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (t_init, v) = initialize(&mut dap, peer, deadline)?;
        version = v;
        m.0.insert(Row::Initialize, ms(t_init - t0));

        let soe = opts.stop_on_entry;
        // The thread rows of the Go target are about its OS threads: latch's goroutine view
        // has rows of its own (the goroutines scenario).
        let os_threads = peer == Peer::Latch && matches!(scenario, Scenario::Go(_));
        let (attach, conf) =
            attach_and_configure(&mut dap, target.pid(), soe, os_threads, deadline)?;
        let t_attach = dap.answered_at(attach)?;
        let t_conf = dap.answered_at(conf)?;
        let t_stopped = [Some(t_attach), Some(t_conf), dap.seen.all_stopped]
            .into_iter()
            .flatten()
            .max()
            .unwrap();
        m.0.insert(Row::AttachStopped, ms(t_stopped - t_init));

        let t_sent = Instant::now();
        let threads = dap.send("threads", json!({}))?;
        let (t_threads, resp) = dap.response(threads, deadline, "the `threads` response")?;
        m.0.insert(Row::Threads, ms(t_threads - t_sent));
        m.0.insert(Row::UntilThreads, ms(t_threads - t0));
        let ids: Vec<i64> = resp["body"]["threads"]
            .as_array()
            .map(|ts| ts.iter().filter_map(|t| t["id"].as_i64()).collect())
            .unwrap_or_default();

        if scenario == Scenario::BigBinary {
            // The main thread: its id is the pid for both adapters (tids).
            let main = i64::from(target.pid());
            if !ids.contains(&main) {
                notes.push(format!(
                    "**main thread {main} not in the `threads` response**"
                ));
            }
            let (took, frames, at) = stack_once(&mut dap, main, deadline, &mut notes)?;
            m.0.insert(Row::FirstStack, took);
            m.0.insert(Row::UntilFirstStack, ms(at - t0));
            m.0.insert(Row::Frames, frames as f64);
            let (took, again, _) = stack_once(&mut dap, main, deadline, &mut notes)?;
            m.0.insert(Row::SecondStack, took);
            if again != frames {
                notes.push(format!(
                    "**second `stackTrace` differs**: {again} frames, the first had {frames}"
                ));
            }
        } else if opts.stacks {
            let (took, frames, done) = all_stacks(&mut dap, &ids, deadline, &mut notes)?;
            m.0.insert(Row::AllStacks, took);
            m.0.insert(Row::UntilAllStacks, ms(done - t0));
            m.0.insert(Row::Frames, frames as f64);
        }

        // Truthfulness checks, done outside the timed phases.
        let reported = resp["body"]["threads"].as_array().map_or(0, Vec::len);
        if target.rule != ThreadRule::Same {
            m.0.insert(Row::ThreadsListed, reported as f64);
        }
        let actual = procfs::tasks(target.pid())?.len();
        if reported != actual {
            notes.push(format!(
                "**`threads` WRONG**: reported {reported} threads, /proc has {actual}"
            ));
        }
        if soe {
            check_all_stopped(target.pid(), &mut notes)?;
        }

        tree = measure_and_detach(&mut dap, pid, deadline, &mut m)?;
        lines_at_detach = target.lines();
        Ok(m)
    })();

    let ended = end_session(result, dap, pid, &tree, deadline, peer, &mut notes);
    timed_run(ended, t0, target, lines_at_detach, notes, version)
}

/// churn-run: attach without stopping (`stopOnEntry: false`), let the short-lived
/// threads target run for `secs`, and count what the adapter sends the client
/// meanwhile, what that costs the adapter and the client (which parses every message in
/// full, as an editor does), and how many threads the target still makes. Then detach.
pub fn run_running(
    peer: Peer,
    program: &Path,
    args: &[&str],
    target: &mut Target,
    secs: u64,
    opts: &RunOpts,
) -> RunResult {
    let mut notes = Vec::new();
    let mut version = None;
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout + Duration::from_secs(secs);
    let (pid, mut dap) = match start_adapter(peer, program, args, &target.pid().to_string(), opts) {
        Ok(started) => started,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    dap.stats.parse_all.store(true, Ordering::Relaxed);
    let mut tree = Vec::new();
    let mut lines_at_detach = 0;

    let result = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (t_init, v) = initialize(&mut dap, peer, deadline)?;
        version = v;
        m.0.insert(Row::Initialize, ms(t_init - t0));
        let (attach, conf) = attach_and_configure(&mut dap, target.pid(), false, false, deadline)?;
        dap.answered_at(attach)?;
        dap.answered_at(conf)?;

        // The window: everything that arrives is read and parsed as it comes.
        let events = |dap: &Dap| -> (usize, usize) {
            let thread = dap.seen.events.get("thread").map_or(0, |e| e.1);
            let all: usize = dap.seen.events.values().map(|e| e.1).sum();
            (thread, all - thread)
        };
        let (thread_before, other_before) = events(&dap);
        let bytes_before = dap.stats.bytes.load(Ordering::Relaxed);
        let reader_before = dap.stats.cpu_ns.load(Ordering::Relaxed);
        let main_before = crate::dap::thread_cpu_ns();
        let adapter_before = procfs::tree_cpu_ms(pid);
        let lines_before = target.lines();
        let started = Instant::now();
        dap.drain_until(started + Duration::from_secs(secs))?;
        let window = started.elapsed().as_secs_f64();
        let adapter_after = procfs::tree_cpu_ms(pid);
        let main_after = crate::dap::thread_cpu_ns();
        let (thread_after, other_after) = events(&dap);
        let client_ns = dap
            .stats
            .cpu_ns
            .load(Ordering::Relaxed)
            .saturating_sub(reader_before)
            + main_after.saturating_sub(main_before);
        m.0.insert(
            Row::ThreadEventsPerSec,
            (thread_after - thread_before) as f64 / window,
        );
        m.0.insert(
            Row::OtherEventsPerSec,
            (other_after - other_before) as f64 / window,
        );
        m.0.insert(
            Row::BytesToClient,
            dap.stats
                .bytes
                .load(Ordering::Relaxed)
                .saturating_sub(bytes_before) as f64,
        );
        m.0.insert(Row::AdapterCpuRunning, adapter_after - adapter_before);
        m.0.insert(Row::ClientCpu, client_ns as f64 / 1e6);
        // The target prints a line per 500 threads it made.
        let made = target.lines().saturating_sub(lines_before) * 500;
        m.0.insert(Row::TargetThreadsPerSec, made as f64 / window);
        if made == 0 {
            notes.push(
                "**TARGET DID NOT RUN** while attached: it made no thread in the window".into(),
            );
        }

        tree = measure_and_detach(&mut dap, pid, deadline, &mut m)?;
        lines_at_detach = target.lines();
        Ok(m)
    })();

    let ended = end_session(result, dap, pid, &tree, deadline, peer, &mut notes);
    timed_run(ended, t0, target, lines_at_detach, notes, version)
}

/// After the adapter said it waits, and before the target is started: a
/// margin for lldb-dap, whose message comes before its lldb-server has
/// started and begun to poll for the process (a target started earlier
/// would be taken for one that was already running, and never caught).
/// Given to latch too, so both adapters are equally settled. Not timed.
pub const WAITFOR_SETTLE: Duration = Duration::from_millis(300);

/// waitFor: attach by name before the counter exists, start it once the
/// adapter says it waits, and see how far the counter got before it was
/// stopped. latch: `attach {waitFor: NAME, stopOnEntry: true}`; lldb-dap
/// 19: `attach {waitFor: true, program: PATH, stopOnEntry: true}`.
pub fn run_waitfor(
    peer: Peer,
    program: &Path,
    args: &[&str],
    targets: &Targets,
    opts: &RunOpts,
) -> RunResult {
    let mut notes = Vec::new();
    let mut version = None;
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    // The target does not exist yet, so its pid cannot name the log.
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let log_name = format!("waitfor-{}", RUN.fetch_add(1, Ordering::Relaxed));
    let (pid, mut dap) = match start_adapter(peer, program, args, &log_name, opts) {
        Ok(started) => started,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    let mut tree = Vec::new();
    // Outside the closure: on any error it is dropped, i.e. killed.
    let mut target: Option<Target> = None;
    let mut lines_at_detach = 0;

    let result = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (t_init, v) = initialize(&mut dap, peer, deadline)?;
        version = v;
        m.0.insert(Row::Initialize, ms(t_init - t0));

        let counter = targets.counter_path();
        let attach_args = match peer {
            Peer::LldbDap => json!({
                "waitFor": true,
                "program": counter,
                "stopOnEntry": true,
            }),
            _ => json!({ "waitFor": COUNTER_NAME, "stopOnEntry": true }),
        };
        let attach = dap.send("attach", attach_args)?;
        // latch: "latch: waiting for a process named ...";
        // lldb-dap: "Waiting to attach to \"...\"...".
        dap.wait_until(deadline, "the adapter's `output` saying it waits", |s| {
            s.output.to_lowercase().contains("waiting")
                || s.responses
                    .get(&attach)
                    .is_some_and(|r| r.1.success != Some(true))
        })?;
        if let Some((_, r)) = dap.seen.responses.get(&attach) {
            check_success(r.value())?;
        }
        // An editor answers `initialized` with its configuration at once;
        // latch sends it while it waits, lldb-dap only once it attached.
        let mut conf = None;
        if dap.seen.events.contains_key("initialized") {
            conf = Some(dap.send("configurationDone", json!({}))?);
        }
        std::thread::sleep(WAITFOR_SETTLE);

        let (t, exec) = targets.spawn_counter()?;
        let t = target.insert(t);
        let conf = match conf {
            Some(c) => c,
            None => {
                dap.wait_until(deadline, "the `initialized` event", |s| {
                    s.events.contains_key("initialized")
                        || s.responses
                            .get(&attach)
                            .is_some_and(|r| r.1.success != Some(true))
                })?;
                if let Some((_, r)) = dap.seen.responses.get(&attach) {
                    check_success(r.value())?;
                }
                dap.send("configurationDone", json!({}))?
            }
        };
        dap.wait_until(deadline, "the stop of the process waited for", |s| {
            s.responses.contains_key(&attach)
                && s.responses.contains_key(&conf)
                && s.all_stopped.is_some()
        })?;
        let t_attach = dap.answered_at(attach)?;
        let t_conf = dap.answered_at(conf)?;
        let t_stopped = [t_attach, t_conf, dap.seen.all_stopped.unwrap()]
            .into_iter()
            .max()
            .unwrap();
        // Stopped: everything the counter printed is in the pipe now.
        let lines = t.lines();
        m.0.insert(
            Row::ExecToStopped,
            ms(t_stopped.saturating_duration_since(exec)),
        );
        m.0.insert(Row::LinesBeforeStop, lines as f64);
        m.0.insert(Row::CaughtBeforeMain, f64::from(u8::from(lines == 0)));

        check_all_stopped(t.pid(), &mut notes)?;
        tree = measure_and_detach(&mut dap, pid, deadline, &mut m)?;
        lines_at_detach = t.lines();
        Ok(m)
    })();

    let (mut m, reaped) = match end_session(result, dap, pid, &tree, deadline, peer, &mut notes) {
        Ok(ended) => ended,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    // No whole-session row: it would include the settle margin and the
    // wait for the target, neither of which is the adapter's doing.
    m.0.insert(Row::Cpu, ms(reaped.cpu));
    if let Some(t) = &mut target {
        check_target_after(t, lines_at_detach, &mut notes);
    }
    RunResult {
        outcome: Outcome::Ok(m),
        notes,
        version,
    }
}

/// `stackTrace {threadId, startFrame: 0, levels: 0}` as the adapter wants it.
fn stack_args(thread: i64) -> serde_json::Value {
    json!({ "threadId": thread, "startFrame": 0, "levels": 0 })
}

/// Frames in a `stackTrace` response, and whether `totalFrames` disagrees
/// with them (with `levels: 0` both should be the whole stack).
fn frames_of(resp: &serde_json::Value) -> (usize, Option<i64>) {
    let n = resp["body"]["stackFrames"].as_array().map_or(0, Vec::len);
    let total = resp["body"]["totalFrames"].as_i64();
    (n, total.filter(|&t| t != n as i64))
}

/// One `stackTrace` of `thread`: milliseconds from request to response,
/// frames returned, and when the response arrived.
fn stack_once(
    dap: &mut Dap,
    thread: i64,
    deadline: Instant,
    notes: &mut Vec<String>,
) -> Result<(f64, usize, Instant)> {
    let t_sent = Instant::now();
    let seq = dap.send("stackTrace", stack_args(thread))?;
    let (at, resp) = dap.response(seq, deadline, "the `stackTrace` response")?;
    let (frames, total) = frames_of(&resp);
    if frames == 0 {
        notes.push("**EMPTY STACK**: `stackTrace` of the main thread returned no frames".into());
    }
    if let Some(t) = total {
        notes.push(format!(
            "`totalFrames` {t} but {frames} frames returned for `levels: 0`"
        ));
    }
    Ok((ms(at - t_sent), frames, at))
}

/// One `stackTrace` per thread, all written before any answer is read (the
/// reader thread drains the adapter meanwhile, so nobody blocks): ms from
/// the first request to the last response, and frames returned in total.
/// Failed requests and empty stacks are notes, not errors: they must show.
fn all_stacks(
    dap: &mut Dap,
    ids: &[i64],
    deadline: Instant,
    notes: &mut Vec<String>,
) -> Result<(f64, usize, Instant)> {
    let t_sent = Instant::now();
    let mut seqs = Vec::with_capacity(ids.len());
    for &id in ids {
        seqs.push(dap.send("stackTrace", stack_args(id))?);
    }
    // Checked after every message, so keep it O(1) amortised: advance past
    // the answered prefix instead of scanning all requests each time.
    let mut answered = 0;
    dap.wait_until(deadline, "every `stackTrace` response", |s| {
        while answered < seqs.len() && s.responses.contains_key(&seqs[answered]) {
            answered += 1;
        }
        answered == seqs.len()
    })?;
    let t_done = seqs
        .iter()
        .map(|q| dap.seen.responses[q].0)
        .max()
        .unwrap_or(t_sent);
    let (mut frames, mut empty, mut failed, mut mismatched) = (0, 0, Vec::new(), 0);
    for q in &seqs {
        let resp = dap.seen.responses[q].1.value();
        if let Err(e) = check_success(resp) {
            failed.push(format!("{e:#}"));
            continue;
        }
        let (n, total) = frames_of(resp);
        frames += n;
        empty += usize::from(n == 0);
        mismatched += usize::from(total.is_some());
    }
    if !failed.is_empty() {
        notes.push(format!(
            "**`stackTrace` FAILED** for {} of {} threads: {}",
            failed.len(),
            ids.len(),
            failed[0]
        ));
    }
    if empty > 0 {
        notes.push(format!(
            "**EMPTY STACKS**: {empty} of {} `stackTrace` responses had no frames",
            ids.len()
        ));
    }
    if mismatched > 0 {
        notes.push(format!(
            "`totalFrames` differs from the frames returned for `levels: 0` in {mismatched} of {} responses",
            ids.len()
        ));
    }
    Ok((ms(t_done - t_sent), frames, t_done))
}

/// Reap the adapter, then whatever it started: as a subreaper we inherit
/// descendants that outlived it. The CPU time of descendants the adapter
/// reaped itself is already in its rusage; the others we add here.
fn reap_tree(
    pid: i32,
    tree: &[i32],
    deadline: Instant,
    peer: Peer,
    notes: &mut Vec<String>,
) -> Option<Reaped> {
    let mut reaped = procfs::wait4_deadline(pid, deadline).ok().flatten()?;
    if !reaped.exited_cleanly() {
        notes.push(format!(
            "{} {} after `disconnect` (target unaffected unless noted)",
            peer.name(),
            reaped.describe_status()
        ));
    }
    for &d in tree {
        match procfs::wait4_deadline(d, Instant::now() + Duration::from_secs(2)) {
            Ok(Some(r)) => reaped.cpu += r.cpu,
            Ok(None) => {
                notes.push(format!(
                    "{}'s child {d} was still running 2 s after {} exited; killed it",
                    peer.name(),
                    peer.name()
                ));
                procfs::kill(d, libc::SIGKILL);
                if let Ok(Some(r)) =
                    procfs::wait4_deadline(d, Instant::now() + Duration::from_secs(2))
                {
                    reaped.cpu += r.cpu;
                }
            }
            // ECHILD: the adapter reaped it, its time is already counted.
            Err(_) => {}
        }
    }
    Some(reaped)
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// `gdb -p PID -batch`, timed from spawn to exit.
pub fn run_gdb(
    peer: Peer,
    gdb: &Path,
    target: &mut Target,
    scenario: Scenario,
    opts: &RunOpts,
) -> RunResult {
    let mut notes = Vec::new();
    let mut cmd = Command::new(gdb);
    procfs::normal_priority(&mut cmd);
    cmd.args(gdb_args(peer, scenario, target.pid()));
    let out_path = opts.log_dir.join(format!(
        "{}-{}.out",
        peer.name().replace(' ', ""),
        target.pid()
    ));
    // Output to a file, not a pipe: 1000 backtraces would fill a pipe we
    // are not reading and gdb would block, which we would time.
    let (out, err) = match (
        std::fs::File::create(&out_path),
        log_file(opts, &format!("gdb-{}.stderr", target.pid())),
    ) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            return RunResult {
                outcome: Outcome::Failed(format!("log file: {e}")),
                notes,
                version: None,
            }
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let t0 = Instant::now();
    let started_ns = monotonic_ns();
    let pid = match cmd.spawn() {
        Ok(c) => c.id() as i32,
        Err(e) => {
            return RunResult {
                outcome: Outcome::Failed(format!("cannot start gdb: {e}")),
                notes,
                version: None,
            }
        }
    };
    let reaped = match procfs::wait4_deadline(pid, t0 + opts.timeout) {
        Ok(Some(r)) => r,
        Ok(None) => {
            let extra = procfs::descendants(pid);
            kill_peer(pid, &extra);
            return RunResult {
                outcome: Outcome::Timeout(format!("gdb still running after {:?}", opts.timeout)),
                notes,
                version: None,
            };
        }
        Err(e) => {
            return RunResult {
                outcome: Outcome::Failed(format!("wait4 gdb: {e}")),
                notes,
                version: None,
            }
        }
    };
    let mut m = Measure::default();
    m.0.insert(Row::Session, ms(reaped.at - t0));
    m.0.insert(Row::Cpu, ms(reaped.cpu));
    // ru_maxrss: gdb's own peak; gdb runs no helper process for a local attach.
    m.0.insert(Row::PeakRss, mib(reaped.maxrss_kb));
    if !reaped.exited_cleanly() {
        notes.push(format!("gdb {}", reaped.describe_status()));
    }
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let listed = gdb_clock_at(&out, THREADS_LISTED).and_then(|t| ns_between(started_ns, t));
    if let Some(listed) = listed {
        m.0.insert(Row::UntilThreads, listed);
    }
    let attach = gdb_clock_at(&out, BEFORE_ATTACH)
        .zip(gdb_clock_at(&out, ATTACHED))
        .and_then(|(before, after)| ns_between(before, after));
    if let Some(attach) = attach {
        m.0.insert(Row::AttachStopped, attach);
    }
    let big = scenario == Scenario::BigBinary;
    // On the large binary gdb + bt runs `bt` alone, without `info threads`.
    if !(big && peer == Peer::GdbBt) {
        let listed = count_info_threads(&out);
        if target.rule != ThreadRule::Same {
            m.0.insert(Row::ThreadsListed, listed as f64);
        }
        // Only a target whose threads stay put has one right answer.
        if target.rule == ThreadRule::Same && listed != target.threads {
            notes.push(format!(
                "**`info threads` WRONG**: listed {listed} threads, expected {}",
                target.threads
            ));
        }
    }
    if peer == Peer::GdbBt {
        let frames = count_bt_frames(&out);
        m.0.insert(Row::Frames, frames as f64);
        if frames == 0 {
            notes.push("**EMPTY STACKS**: gdb printed no frame".into());
        }
    }
    let lines = target.lines();
    check_target_after(target, lines, &mut notes);
    RunResult {
        outcome: Outcome::Ok(m),
        notes,
        version: None,
    }
}

/// gdb prints CLOCK_MONOTONIC (ns; the clock of Rust's `Instant` here) with a
/// label at three points, so the harness can time its phases like the DAP peers'.
/// Python runs inside gdb: no process is started for it.
fn gdb_clock(label: &str) -> String {
    format!(
        "python import time; print('latch-bench-{label}', time.clock_gettime_ns(time.CLOCK_MONOTONIC))"
    )
}

/// Run by `-iex`, before gdb attaches to `-p PID`.
const BEFORE_ATTACH: &str = "before-attach";
/// The first `-ex`: gdb runs `-ex` commands once `-p`'s attach has returned with
/// every thread stopped (and the program's and libraries' symbols read, which
/// gdb does as part of its attach, as lldb-dap does).
const ATTACHED: &str = "attached";
/// Right after `info threads`: "start → threads listed", like the DAP peers'
/// "start → `threads` answered".
const THREADS_LISTED: &str = "threads-listed";

/// When gdb printed `label`, as ns of CLOCK_MONOTONIC.
fn gdb_clock_at(out: &str, label: &str) -> Option<u64> {
    let prefix = format!("latch-bench-{label} ");
    out.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))?
        .trim()
        .parse()
        .ok()
}

fn ns_between(from: u64, to: u64) -> Option<f64> {
    Some(to.checked_sub(from)? as f64 / 1e6)
}

fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime with a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

pub fn gdb_args(peer: Peer, scenario: Scenario, pid: i32) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "-nx".into(),
        "-iex".into(),
        "set debuginfod enabled off".into(),
        "-iex".into(),
        gdb_clock(BEFORE_ATTACH),
        "-batch".into(),
        "-p".into(),
        pid.to_string(),
    ];
    let listed = gdb_clock(THREADS_LISTED);
    let commands: Vec<&str> = match (peer, scenario) {
        (Peer::GdbBt, Scenario::BigBinary) => vec!["bt"],
        (Peer::GdbBt, _) => vec!["info threads", &listed, "thread apply all bt"],
        _ => vec!["info threads", &listed],
    };
    let attached = gdb_clock(ATTACHED);
    for c in std::iter::once(attached.as_str()).chain(commands) {
        a.extend(["-ex".into(), c.to_string()]);
    }
    a
}

/// Frames gdb printed: lines `#N  0x... in f (...)` or `#N  f (...)`.
fn count_bt_frames(out: &str) -> usize {
    out.lines()
        .filter(|l| {
            l.strip_prefix('#').is_some_and(|r| {
                let digits = r.bytes().take_while(u8::is_ascii_digit).count();
                digits > 0 && r[digits..].starts_with(' ')
            })
        })
        .count()
}

/// Lines of `info threads` output: `[*] N  Thread 0x... (LWP n) ...`.
fn count_info_threads(out: &str) -> usize {
    out.lines()
        .filter(|l| {
            let l = l.trim_start().trim_start_matches('*');
            let mut words = l.split_whitespace();
            words
                .next()
                .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit()))
                && matches!(words.next(), Some("Thread" | "LWP" | "process"))
        })
        .count()
}

/// Where the benchmark looks for a peer, and what to tell the user when
/// it is not there. We never install anything ourselves.
pub fn locate(peer: Peer, latch: Option<&Path>) -> Result<PathBuf, String> {
    match peer {
        Peer::Latch => {
            if let Some(p) = latch {
                return if p.is_file() {
                    Ok(p.to_path_buf())
                } else {
                    Err(format!("latch: {} does not exist", p.display()))
                };
            }
            // Next to this binary first: `cargo build --release` puts both
            // in the same target directory.
            let sibling = std::env::current_exe()
                .ok()
                .and_then(|e| Some(e.parent()?.join("latch")))
                .filter(|p| p.is_file());
            sibling.or_else(|| which("latch")).ok_or_else(|| {
                "latch: not found next to latch-bench nor in PATH; build it with \
                 `cargo build --release -p latch` or pass --latch PATH"
                    .into()
            })
        }
        Peer::Gdb | Peer::GdbBt => which("gdb")
            .ok_or_else(|| "gdb: not found in PATH; install it with `apt-get install -y gdb`".into()),
        Peer::LldbDap => which("lldb-dap-19").ok_or_else(|| {
            "lldb-dap: `lldb-dap-19` not found in PATH; install it with `apt-get install -y lldb-19`"
                .into()
        }),
        Peer::Delve => which("dlv").ok_or_else(|| {
            "delve: `dlv` not found in PATH; install it with `apt-get install -y delve`".into()
        }),
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// One line naming the peer's version, for the report header.
pub fn version_of(peer: Peer, path: &Path) -> Option<String> {
    // lldb-dap 19 has no --version; its initialize response says it.
    if peer == Peer::LldbDap {
        return None;
    }
    // `dlv version`: "Delve Debugger", then "Version: 1.20.2".
    let arg = if peer == Peer::Delve {
        "version"
    } else {
        "--version"
    };
    let mut child = procfs::normal_priority(&mut Command::new(path))
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let pid = child.id() as i32;
    // A deadline here too: an unfinished latch might not know --version.
    if procfs::wait4_deadline(pid, Instant::now() + Duration::from_secs(5))
        .ok()
        .flatten()
        .is_none()
    {
        kill_peer(pid, &[]);
        return None;
    }
    let mut s = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut s).ok()?;
    if peer == Peer::Delve {
        let v = s.lines().find_map(|l| l.trim().strip_prefix("Version:"))?;
        return Some(format!("Delve {}", v.trim()));
    }
    s.lines().next().map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goroutines_are_latch_against_delve_alone() {
        let g = Scenario::Goroutines(10000);
        assert!(Peer::Latch.can_run(g) && Peer::Delve.can_run(g));
        for p in [Peer::Gdb, Peer::GdbBt, Peer::LldbDap] {
            assert!(!p.can_run(g), "{} runs goroutines", p.name());
        }
        for sc in [
            Scenario::Go(10000),
            Scenario::Sleeping(1),
            Scenario::WaitFor,
        ] {
            assert!(!Peer::Delve.can_run(sc), "delve runs {}", sc.title());
            assert!(Peer::Latch.can_run(sc));
        }
    }

    #[test]
    fn gdb_phases_come_from_its_clock_prints_in_order() {
        let args = gdb_args(Peer::Gdb, Scenario::Sleeping(1), 42);
        let at = |needle: &str| args.iter().position(|a| a.contains(needle)).unwrap();
        // -iex runs before -p's attach, the first -ex after it.
        assert_eq!(args[at(BEFORE_ATTACH) - 1], "-iex");
        assert!(at(BEFORE_ATTACH) < at("-p"));
        assert_eq!(args[at(ATTACHED) - 1], "-ex");
        assert_eq!(args.iter().position(|a| a == "-ex"), Some(at(ATTACHED) - 1));
        assert!(at("info threads") < at(THREADS_LISTED));

        let out = "latch-bench-before-attach 1000000\n[New LWP 7]\nlatch-bench-attached 5500000\n";
        let before = gdb_clock_at(out, BEFORE_ATTACH).unwrap();
        let after = gdb_clock_at(out, ATTACHED).unwrap();
        assert_eq!(ns_between(before, after), Some(4.5));
        assert_eq!(gdb_clock_at(out, THREADS_LISTED), None);
        assert_eq!(ns_between(after, before), None);
    }
}
