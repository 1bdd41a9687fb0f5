//! Breakpoints and stepping (issue 14's speed rows), driven as an editor drives them.
//!
//! - `bp:N` ([`run_dap_hit`], [`run_gdb_hit`]): the target (`threads bp N`) has N
//!   sleeping threads and a main thread, the hitter, that calls `bench_hit` when told
//!   on its stdin. The debugger attaches without stopping and sets a breakpoint on
//!   `bench_hit` before `configurationDone`, as an editor sends it; once every thread
//!   runs, the benchmark writes `h` to the target and times from just before that write
//!   until the `stopped` event ([`HITS`] times a run, the median counts). On the last
//!   hit it then times `next` until its `stopped`, and the F10 round an editor makes
//!   after it: `next` → `stopped` → `threads` → `stackTrace` (that thread, 20 levels)
//!   → `scopes` → `variables` of the first scope, one request after the other.
//! - `hot` ([`run_dap_hot`], [`run_gdb_hot`]): one thread calls `bench_hot` in a
//!   loop and counts its calls. Its rate is read over [`HOT_WINDOW`] before the attach
//!   (no debugger), then again with a breakpoint there whose hit condition (gdb: an
//!   ignore count) of [`HOT_HIT_CONDITION`] never lets it stop within the window.
//! - `hot-cond` (the same functions, [`HotBreakpoint::Condition`]): the breakpoint has a
//!   `condition` instead, [`HOT_FALSE_CONDITION`], which is never true but can only be
//!   decided by reading the target's memory at each hit. A control comes first in every
//!   run: the breakpoint is set with [`HOT_TRUE_CONDITION`] (the same read, true) and
//!   must stop; then its condition becomes the false one and the target goes on. A peer
//!   that ignored conditions would stop in the window, and one that could not read the
//!   global would fail the control: either fails the run, so neither can look fast.
//! - `bp-lines` ([`run_dap_lines`], [`run_gdb_lines`]): the large binary; right after
//!   the attach (no stack asked for, so latch has read no DWARF), 100 source-line
//!   breakpoints, one `setBreakpoints` per file sent back to back, timed from the first
//!   request to the last response.
//!
//! gdb is driven over MI (`gdb --interpreter=mi3`), all-stop as the DAP peers.

use super::{
    end_session, initialize, measure_and_detach, ms, start_adapter, timed_run, Peer, RunOpts,
};
use crate::dap::{check_success, Dap, Timeout};
use crate::procfs;
use crate::report::{Measure, Outcome, Row, RunResult};
use crate::target::{Commands, Target};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Hits per run of `bp:N`; the run's value is their median.
pub const HITS: usize = 3;

/// How long the hot loop's rate is counted, without and with the breakpoint.
pub const HOT_WINDOW: Duration = Duration::from_secs(1);

/// The hot breakpoint's hit condition: from the millionth hit on. The loop under a
/// breakpoint makes far fewer calls than that in [`HOT_WINDOW`].
pub const HOT_HIT_CONDITION: u64 = 1_000_000;

/// The hot breakpoint's condition in `hot-cond`, never true: `hot_calls`, the global
/// `bench_hot` counts its calls in (`targets/threads.c`), is past 0 from the loop's
/// first call, long before the attach (the baseline window runs first). A global of
/// the breakpoint's own unit, so every peer can name it at the hit; deciding it takes
/// a read of the target's memory at every hit.
pub const HOT_FALSE_CONDITION: &str = "hot_calls == 0";

/// The control of `hot-cond`: the same read, true at every hit, so it must stop.
pub const HOT_TRUE_CONDITION: &str = "hot_calls != 0";

/// What keeps the hot breakpoint from stopping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotBreakpoint {
    /// `hot`: a hit count that is not reached (gdb: an ignore count).
    HitCount,
    /// `hot-cond`: a condition that is never true, after a control stop where it is.
    Condition,
}

/// Source breakpoints of `bp-lines`: [`LINE_FILES`] files, [`LINES_PER_FILE`] each.
pub const LINE_FILES: usize = 10;
pub const LINES_PER_FILE: usize = 10;

/// The function of the breakpoint that is hit, and of the hot one.
const HIT_FUNCTION: &str = "bench_hit";
const HOT_FUNCTION: &str = "bench_hot";

/// How latch's and gdb's breakpoints are set: by function name (lldb-dap's always are),
/// or by address, which needs no symbols (how latch was measured before it resolved
/// names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BreakpointsBy {
    /// `setFunctionBreakpoints` by name (gdb: `-break-insert FUNCTION`).
    Function,
    /// latch: `setInstructionBreakpoints` at the function's address, which the target
    /// prints (gdb: `-break-insert *ADDR`).
    Address,
}

impl BreakpointsBy {
    /// gdb's `-break-insert` location for `function` at `address`.
    fn gdb_location(self, function: &str, address: u64) -> String {
        match self {
            BreakpointsBy::Function => function.to_string(),
            BreakpointsBy::Address => format!("*{address:#x}"),
        }
    }
}

/// What one `next` steps over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    /// `granularity: "instruction"` (gdb: `nexti`).
    Instruction,
    /// One source line, the default granularity (gdb: `next`).
    Line,
}

impl Step {
    fn row(self) -> Row {
        match self {
            Step::Instruction => Row::NextInstruction,
            Step::Line => Row::NextLine,
        }
    }

    fn args(self, thread: i64) -> Value {
        match self {
            Step::Instruction => json!({ "threadId": thread, "granularity": "instruction" }),
            Step::Line => json!({ "threadId": thread }),
        }
    }
}

fn sleep_until(until: Instant) {
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Until no thread of `pid` is in ptrace-stop: the debugger has let everything run.
pub(super) fn wait_running(pid: i32, deadline: Instant) -> Result<()> {
    loop {
        let (stopped, _) = procfs::count_traced_stopped(pid)?;
        if stopped == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Timeout("every thread running again".into()).into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn commands(target: &mut Target) -> Result<&mut Commands> {
    target
        .commands
        .as_mut()
        .context("the target takes no commands")
}

/// Set one breakpoint on `function` (at `address` for latch with instruction
/// breakpoints; lldb-dap 19 has no instruction breakpoints) and check that it is
/// verified.
fn set_breakpoint(
    dap: &mut Dap,
    peer: Peer,
    opts: &RunOpts,
    function: &str,
    address: u64,
    fields: Value,
    deadline: Instant,
) -> Result<()> {
    let mut bp = match (peer, opts.breakpoints) {
        (Peer::Latch, BreakpointsBy::Address) => {
            json!({ "instructionReference": format!("{address:#x}") })
        }
        _ => json!({ "name": function }),
    };
    // The breakpoint's `hitCondition` or `condition`, if any.
    if let (Some(bp), Value::Object(fields)) = (bp.as_object_mut(), fields) {
        bp.extend(fields);
    }
    let command = if bp.get("name").is_some() {
        "setFunctionBreakpoints"
    } else {
        "setInstructionBreakpoints"
    };
    let seq = dap.send(command, json!({ "breakpoints": [bp] }))?;
    let (_, resp) = dap.response(seq, deadline, "the breakpoint's response")?;
    let b = &resp["body"]["breakpoints"][0];
    if b["verified"].as_bool() != Some(true) {
        bail!(
            "`{command}` on {function}: not verified ({})",
            b["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(())
}

/// `attach {pid, stopOnEntry: false}`, the breakpoint set between `initialized` and
/// `configurationDone` as an editor sets it, then until every thread runs.
pub(super) fn attach_with_breakpoint(
    dap: &mut Dap,
    pid: i32,
    set: impl FnOnce(&mut Dap) -> Result<()>,
    deadline: Instant,
) -> Result<()> {
    let attach = dap.send("attach", json!({ "pid": pid, "stopOnEntry": false }))?;
    dap.wait_until(deadline, "the `initialized` event", |s| {
        s.events.contains_key("initialized")
            || s.responses
                .get(&attach)
                .is_some_and(|r| r.1.success != Some(true))
    })?;
    if let Some((_, r)) = dap.seen.responses.get(&attach) {
        check_success(r.value())?;
    }
    set(dap)?;
    let conf = dap.send("configurationDone", json!({}))?;
    dap.wait_until(
        deadline,
        "the attach and configurationDone responses",
        |s| s.responses.contains_key(&attach) && s.responses.contains_key(&conf),
    )?;
    dap.answered_at(attach)?;
    dap.answered_at(conf)?;
    wait_running(pid, deadline)
}

/// How long a stop may take before the run gives up on it: far more than any peer
/// needs next to 1000 threads, far less than a session's deadline (an lldb-dap `next`
/// that never reports its stop would otherwise cost the whole deadline).
const STOP_WAIT: Duration = Duration::from_secs(30);

/// Wait for the `stopped` event after the first `k`; its arrival and body.
pub(super) fn stop_after(
    dap: &mut Dap,
    k: usize,
    deadline: Instant,
    what: &str,
) -> Result<(Instant, Value)> {
    let deadline = deadline.min(Instant::now() + STOP_WAIT);
    dap.wait_until(deadline, what, |s| s.stops.len() > k)?;
    Ok(dap.seen.stops[k].clone())
}

/// Send `next` and wait for the `stopped` event after the first `k` (a failed `next`
/// is an error, not a wait for a stop that cannot come); the event's arrival and body.
fn next_and_stop(
    dap: &mut Dap,
    step: Step,
    thread: i64,
    deadline: Instant,
) -> Result<(Instant, Value)> {
    let k = dap.seen.stops.len();
    let seq = dap.send("next", step.args(thread))?;
    let deadline = deadline.min(Instant::now() + STOP_WAIT);
    let waited = dap.wait_until(deadline, "the `stopped` event after `next`", |s| {
        s.stops.len() > k
            || s.responses
                .get(&seq)
                .is_some_and(|r| r.1.success != Some(true))
    });
    if let Err(e) = waited {
        // Say what did come: an answered `next` whose stop never came is the adapter's.
        let answered = dap.seen.responses.contains_key(&seq);
        let continued = dap.seen.events.get("continued").map_or(0, |e| e.1);
        if e.downcast_ref::<Timeout>().is_none() {
            return Err(e);
        }
        return Err(Timeout(format!(
            "the `stopped` event after `next` (`next` {}answered; {continued} `continued` \
             events in the session)",
            if answered { "" } else { "not " }
        ))
        .into());
    }
    if dap.seen.stops.len() == k {
        dap.answered_at(seq)?;
    }
    Ok(dap.seen.stops[k].clone())
}

/// Send one request and wait for its successful response.
pub(super) fn request(
    dap: &mut Dap,
    command: &str,
    args: Value,
    deadline: Instant,
) -> Result<(Instant, Value)> {
    let seq = dap.send(command, args)?;
    dap.response(seq, deadline, &format!("the `{command}` response"))
}

/// `bp:N` over DAP: hit → `stopped` ([`HITS`] times), `next`, the F10 round.
pub fn run_dap_hit(
    peer: Peer,
    program: &Path,
    args: &[&str],
    target: &mut Target,
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
    let mut partial = None;
    let tpid = target.pid();
    let result = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (t_init, v) = initialize(&mut dap, peer, deadline)?;
        version = v;
        m.0.insert(Row::Initialize, ms(t_init - t0));
        let hit = commands(target)?.hit;
        attach_with_breakpoint(
            &mut dap,
            tpid,
            |dap| set_breakpoint(dap, peer, opts, HIT_FUNCTION, hit, json!({}), deadline),
            deadline,
        )?;
        m.0.insert(Row::UntilBreakpointArmed, ms(Instant::now() - t0));
        let mut latencies = Vec::new();
        for i in 0..HITS {
            wait_running(tpid, deadline)?;
            let k = dap.seen.stops.len();
            let t_trigger = Instant::now();
            commands(target)?.send("h")?;
            let (at, body) = stop_after(&mut dap, k, deadline, "the breakpoint's `stopped` event")?;
            latencies.push(ms(at - t_trigger));
            let reason = body["reason"].as_str().unwrap_or("");
            if !reason.contains("breakpoint") {
                notes.push(format!("stopped with reason `{reason}`, not a breakpoint"));
            }
            let thread = body["threadId"]
                .as_i64()
                .ok_or_else(|| anyhow!("`stopped` event without threadId: {body}"))?;
            // What the editor shows of every stop; the first one is cold.
            let shown = show_stop(&mut dap, thread, deadline, &mut notes)?;
            if i == 0 {
                m.0.insert(Row::FirstHitShown, ms(shown - t_trigger));
            }
            if i + 1 == HITS {
                if let Err(e) = step_rows(&mut dap, thread, opts.step, deadline, &mut m, &mut notes)
                {
                    if e.downcast_ref::<Timeout>().is_none() {
                        return Err(e);
                    }
                    // The hits are measured: keep them, say loudly what never came.
                    notes.push(format!(
                        "**a step never reported its stop** ({e:#}); the adapter was killed, \
                         the rows measured before stand"
                    ));
                    m.0.insert(Row::HitToStopped, median(latencies));
                    partial = Some(m);
                    bail!("step hung");
                }
            }
            request(
                &mut dap,
                "continue",
                json!({ "threadId": thread }),
                deadline,
            )?;
            commands(target)?.answer("hit", deadline)?;
        }
        m.0.insert(Row::HitToStopped, median(latencies));
        tree = measure_and_detach(&mut dap, pid, deadline, &mut m)?;
        Ok(m)
    })();
    if let Some(m) = partial {
        let extra = procfs::descendants(pid);
        super::kill_peer(pid, &extra);
        return RunResult {
            outcome: Outcome::Ok(m),
            notes,
            version,
        };
    }
    let ended = end_session(result, dap, pid, &tree, deadline, peer, &mut notes);
    timed_run(ended, t0, target, 0, notes, version)
}

/// On a thread stopped at the breakpoint: `next` → `stopped`, then the F10 round.
fn step_rows(
    dap: &mut Dap,
    thread: i64,
    step: Step,
    deadline: Instant,
    m: &mut Measure,
    notes: &mut Vec<String>,
) -> Result<()> {
    let t = Instant::now();
    let (at, body) = next_and_stop(dap, step, thread, deadline)?;
    m.0.insert(step.row(), ms(at - t));
    let thread = body["threadId"].as_i64().unwrap_or(thread);
    // What the editor shows of that stop, untimed, before the next F10.
    show_stop(dap, thread, deadline, notes)?;

    // The F10 round, each request sent once the previous one is answered.
    let t = Instant::now();
    let (_, body) = next_and_stop(dap, step, thread, deadline)?;
    let thread = body["threadId"].as_i64().unwrap_or(thread);
    let at = show_stop(dap, thread, deadline, notes)?;
    m.0.insert(Row::F10Round, ms(at - t));
    Ok(())
}

/// What an editor asks after a stop, one request after the other: `threads`,
/// `stackTrace` of the stopped thread (20 levels), `scopes` of its top frame,
/// `variables` of the first scope. When the `variables` response came.
fn show_stop(
    dap: &mut Dap,
    thread: i64,
    deadline: Instant,
    notes: &mut Vec<String>,
) -> Result<Instant> {
    request(dap, "threads", json!({}), deadline)?;
    let (_, st) = request(
        dap,
        "stackTrace",
        json!({ "threadId": thread, "startFrame": 0, "levels": 20 }),
        deadline,
    )?;
    let frame = st["body"]["stackFrames"][0]["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("`stackTrace` answered no frame"))?;
    let (_, sc) = request(dap, "scopes", json!({ "frameId": frame }), deadline)?;
    let reference = sc["body"]["scopes"][0]["variablesReference"]
        .as_i64()
        .ok_or_else(|| anyhow!("`scopes` answered no scope"))?;
    let (at, vars) = request(
        dap,
        "variables",
        json!({ "variablesReference": reference }),
        deadline,
    )?;
    let n = vars["body"]["variables"].as_array().map_or(0, Vec::len);
    if n == 0 {
        notes.push("`variables` of the stopped frame's first scope answered no variable".into());
    }
    Ok(at)
}

/// Rate of the hot loop over [`HOT_WINDOW`], pumping `pump` meanwhile (the adapter's
/// messages must be read while the target runs; an error of `pump`, such as a stop
/// that must not happen, ends the window before the count is asked of a stopped
/// target); calls per second.
fn hot_rate(
    target: &mut Target,
    deadline: Instant,
    mut pump: impl FnMut(Instant) -> Result<()>,
) -> Result<f64> {
    let (t1, c1) = commands(target)?.count(deadline)?;
    pump(t1 + HOT_WINDOW)?;
    let (t2, c2) = commands(target)?.count(deadline)?;
    Ok(c2.saturating_sub(c1) as f64 / (t2 - t1).as_secs_f64())
}

/// For a condition that is never true, any stop since it was set fails the run (the
/// peer did not decide it, and its rate would measure a stopped loop; the target, all
/// stopped, would not even answer its count). A hit count's stop is a note, later.
fn never_true_stopped(kind: HotBreakpoint, stopped: bool) -> Result<()> {
    if kind == HotBreakpoint::Condition && stopped {
        bail!(
            "the hot breakpoint stopped although its condition `{HOT_FALSE_CONDITION}` is \
             never true: the peer did not evaluate the condition"
        );
    }
    Ok(())
}

fn hot_rows(m: &mut Measure, baseline: f64, rate: f64, notes: &mut Vec<String>) {
    m.0.insert(Row::HotBaselinePerSec, baseline);
    m.0.insert(Row::HotCallsPerSec, rate);
    if rate > 0.0 {
        m.0.insert(Row::HotPerCall, 1e6 / rate);
        m.0.insert(Row::HotSlowdown, baseline / rate);
    }
    if rate > baseline / 2.0 {
        notes.push(format!(
            "**the breakpoint seems not to be hit**: {rate:.0} calls/s with it, {baseline:.0} without"
        ));
    }
}

/// `hot` and `hot-cond` over DAP: the loop's rate without a debugger, then with a
/// breakpoint that never stops (`hot-cond`: after the control stop).
pub fn run_dap_hot(
    peer: Peer,
    program: &Path,
    args: &[&str],
    target: &mut Target,
    opts: &RunOpts,
    kind: HotBreakpoint,
) -> RunResult {
    let mut notes = Vec::new();
    let t_base = Instant::now();
    let baseline = match hot_rate(target, t_base + opts.timeout, |until| {
        sleep_until(until);
        Ok(())
    }) {
        Ok(r) => r,
        Err(e) => return RunResult::harness_failed(&e, notes),
    };
    let mut version = None;
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let (pid, mut dap) = match start_adapter(peer, program, args, &target.pid().to_string(), opts) {
        Ok(started) => started,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    let mut tree = Vec::new();
    let mut hung = None;
    let tpid = target.pid();
    let result = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (t_init, v) = initialize(&mut dap, peer, deadline)?;
        version = v;
        m.0.insert(Row::Initialize, ms(t_init - t0));
        let hot = commands(target)?.hot;
        let fields = match kind {
            HotBreakpoint::HitCount => json!({ "hitCondition": HOT_HIT_CONDITION.to_string() }),
            HotBreakpoint::Condition => json!({ "condition": HOT_TRUE_CONDITION }),
        };
        let attach = dap.send("attach", json!({ "pid": tpid, "stopOnEntry": false }))?;
        dap.wait_until(deadline, "the `initialized` event", |s| {
            s.events.contains_key("initialized")
                || s.responses
                    .get(&attach)
                    .is_some_and(|r| r.1.success != Some(true))
        })?;
        if let Some((_, r)) = dap.seen.responses.get(&attach) {
            check_success(r.value())?;
        }
        let stops = dap.seen.stops.len();
        set_breakpoint(&mut dap, peer, opts, HOT_FUNCTION, hot, fields, deadline)?;
        let conf = dap.send("configurationDone", json!({}))?;
        dap.wait_until(
            deadline,
            "the attach and configurationDone responses",
            |s| s.responses.contains_key(&attach) && s.responses.contains_key(&conf),
        )?;
        dap.answered_at(attach)?;
        dap.answered_at(conf)?;
        if kind == HotBreakpoint::Condition {
            // The control: the true condition stops; then the false one, and on. The
            // time until armed would include that stop, so it is no row here.
            let (_, body) = stop_after(
                &mut dap,
                stops,
                deadline,
                &format!("the stop of the control condition `{HOT_TRUE_CONDITION}`"),
            )?;
            let reason = body["reason"].as_str().unwrap_or("");
            if !reason.contains("breakpoint") {
                bail!("the control condition's stop has reason `{reason}`, not a breakpoint");
            }
            let thread = body["threadId"]
                .as_i64()
                .ok_or_else(|| anyhow!("`stopped` event without threadId: {body}"))?;
            let fields = json!({ "condition": HOT_FALSE_CONDITION });
            set_breakpoint(&mut dap, peer, opts, HOT_FUNCTION, hot, fields, deadline)?;
            request(
                &mut dap,
                "continue",
                json!({ "threadId": thread }),
                deadline,
            )?;
        } else {
            m.0.insert(Row::UntilBreakpointArmed, ms(Instant::now() - t0));
        }
        // From here on no stop may come: the control's stop is the last one.
        let resumed = dap.seen.stops.len();
        // Settle: the loop runs under the breakpoint from here on.
        dap.drain_until(Instant::now() + Duration::from_millis(200))?;
        never_true_stopped(kind, dap.seen.stops.len() > resumed)?;
        let stops = dap.seen.stops.len();
        let rate = hot_rate(target, deadline, |until| {
            dap.drain_until(until)?;
            never_true_stopped(kind, dap.seen.stops.len() > resumed)
        })?;
        if dap.seen.stops.len() > stops {
            notes.push("**the hot breakpoint stopped** during the window".into());
        }
        hot_rows(&mut m, baseline, rate, &mut notes);
        // The rates are measured; a peer that cannot detach under the hot breakpoint
        // keeps them, with a loud note, instead of costing a whole deadline.
        let finish = Instant::now() + HOT_DETACH_DEADLINE;
        match measure_and_detach(&mut dap, pid, finish.min(deadline), &mut m) {
            Ok(t) => tree = t,
            Err(e) => {
                notes.push(format!(
                    "**`disconnect` under the hot breakpoint did not complete in {} s** ({e:#}); \
                     the adapter was killed, the rates stand",
                    HOT_DETACH_DEADLINE.as_secs()
                ));
                hung = Some(m);
                bail!("detach hung");
            }
        }
        Ok(m)
    })();
    if let Some(m) = hung {
        let extra = procfs::descendants(pid);
        super::kill_peer(pid, &extra);
        return RunResult {
            outcome: Outcome::Ok(m),
            notes,
            version,
        };
    }
    let ended = end_session(result, dap, pid, &tree, deadline, peer, &mut notes);
    timed_run(ended, t0, target, 0, notes, version)
}

/// How long `disconnect` may take under the hot breakpoint before the run gives up on
/// it (keeping the rates it measured).
const HOT_DETACH_DEADLINE: Duration = Duration::from_secs(10);

/// The source lines of `bp-lines`: in [`LINE_FILES`] of latch's own source files
/// (sorted by path), [`LINES_PER_FILE`] single-line `let` statements inside functions,
/// spread over each file. Lines with code in any build, found without reading DWARF.
pub fn source_lines() -> Result<Vec<(PathBuf, Vec<u32>)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().context("the workspace root")?;
    let mut files = Vec::new();
    for dir in [
        "adapter/src/session",
        "adapter/src/ptrace",
        "adapter/src/dap",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut chosen = Vec::new();
    for path in files {
        if chosen.len() == LINE_FILES {
            break;
        }
        let text = std::fs::read_to_string(&path)?;
        let candidates: Vec<u32> = text
            .lines()
            .enumerate()
            .take_while(|(_, l)| !l.starts_with("#[cfg(test)]"))
            .filter(|(_, l)| {
                let t = l.trim_start();
                l.len() - t.len() >= 8 && t.starts_with("let ") && t.ends_with(';')
            })
            .map(|(i, _)| i as u32 + 1)
            .collect();
        if candidates.len() < LINES_PER_FILE {
            continue;
        }
        let stride = candidates.len() / LINES_PER_FILE;
        let lines = (0..LINES_PER_FILE)
            .map(|i| candidates[i * stride])
            .collect();
        chosen.push((path, lines));
    }
    if chosen.len() < LINE_FILES {
        bail!(
            "found only {} source files with {LINES_PER_FILE} `let` lines under {}",
            chosen.len(),
            root.display()
        );
    }
    Ok(chosen)
}

/// `bp-lines` over DAP: 100 source breakpoints right after the attach.
pub fn run_dap_lines(
    peer: Peer,
    program: &Path,
    args: &[&str],
    target: &mut Target,
    opts: &RunOpts,
) -> RunResult {
    let mut notes = Vec::new();
    let files = match source_lines() {
        Ok(f) => f,
        Err(e) => return RunResult::harness_failed(&e, notes),
    };
    let mut version = None;
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let (pid, mut dap) = match start_adapter(peer, program, args, &target.pid().to_string(), opts) {
        Ok(started) => started,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    let mut tree = Vec::new();
    let tpid = target.pid();
    let result = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (t_init, v) = initialize(&mut dap, peer, deadline)?;
        version = v;
        m.0.insert(Row::Initialize, ms(t_init - t0));
        let mut timed = (0.0, 0usize, String::new());
        attach_with_breakpoint(
            &mut dap,
            tpid,
            |dap| {
                let t = Instant::now();
                let mut seqs = Vec::new();
                for (path, lines) in &files {
                    let bps: Vec<Value> = lines.iter().map(|l| json!({ "line": l })).collect();
                    seqs.push(dap.send(
                        "setBreakpoints",
                        json!({
                            "source": { "path": path, "name": path.file_name().map(|n| n.to_string_lossy()) },
                            "breakpoints": bps,
                            "sourceModified": false,
                        }),
                    )?);
                }
                let mut answered = 0;
                dap.wait_until(deadline, "every `setBreakpoints` response", |s| {
                    while answered < seqs.len() && s.responses.contains_key(&seqs[answered]) {
                        answered += 1;
                    }
                    answered == seqs.len()
                })?;
                let mut last = t;
                let mut verified = 0;
                for q in &seqs {
                    last = last.max(dap.answered_at(*q)?);
                    let resp = dap.seen.responses[q].1.value();
                    for b in resp["body"]["breakpoints"].as_array().into_iter().flatten() {
                        if b["verified"].as_bool() == Some(true) {
                            verified += 1;
                        } else if timed.2.is_empty() {
                            timed.2 = b["message"].as_str().unwrap_or("no message").to_string();
                        }
                    }
                }
                timed.0 = ms(last - t);
                timed.1 = verified;
                Ok(())
            },
            deadline,
        )?;
        m.0.insert(Row::BreakpointsVerified, timed.1 as f64);
        let total = LINE_FILES * LINES_PER_FILE;
        if timed.1 == 0 {
            // Answering "not verified" at once is no measure of setting breakpoints.
            notes.push(format!(
                "**PENDING**: none of the {total} breakpoints verified (first message: {}), so \
                 the time to set them ({:.2} ms) is left out; latch resolves source lines once \
                 its symbols API's `lines` work has landed",
                timed.2, timed.0
            ));
        } else {
            m.0.insert(Row::SetSourceBreakpoints, timed.0);
        }
        if timed.1 > 0 && timed.1 < total {
            notes.push(format!(
                "{} of {total} breakpoints not verified; first message: {}",
                total - timed.1,
                timed.2
            ));
        }
        tree = measure_and_detach(&mut dap, pid, deadline, &mut m)?;
        Ok(m)
    })();
    let ended = end_session(result, dap, pid, &tree, deadline, peer, &mut notes);
    timed_run(ended, t0, target, 0, notes, version)
}

/// gdb over MI, lines stamped as they arrive.
pub(super) struct Mi {
    stdin: ChildStdin,
    rx: mpsc::Receiver<(Instant, String)>,
    pub(super) lines: Vec<(Instant, String)>,
    token: u64,
}

impl Mi {
    pub(super) fn send(&mut self, command: &str) -> Result<u64> {
        self.token += 1;
        writeln!(self.stdin, "{}{command}", self.token)
            .and_then(|_| self.stdin.flush())
            .with_context(|| format!("sending `{command}` to gdb"))?;
        Ok(self.token)
    }

    fn pump(&mut self, deadline: Instant, what: &str) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(l) => {
                self.lines.push(l);
                Ok(())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Timeout(what.into()).into()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("gdb closed its output while waiting for {what}")
            }
        }
    }

    /// Read whatever comes until `until`.
    fn drain_until(&mut self, until: Instant) -> Result<()> {
        loop {
            match self.pump(until, "the end of the window") {
                Ok(()) => {}
                Err(e) if e.downcast_ref::<Timeout>().is_some() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// The index of the first line from `from` on that satisfies `pred`.
    pub(super) fn wait_line(
        &mut self,
        from: usize,
        deadline: Instant,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<usize> {
        let mut i = from;
        loop {
            while i < self.lines.len() {
                if pred(&self.lines[i].1) {
                    return Ok(i);
                }
                i += 1;
            }
            self.pump(deadline, what)?;
        }
    }

    /// Send a command and wait for its result record; `^error` is an error.
    pub(super) fn command(
        &mut self,
        command: &str,
        deadline: Instant,
    ) -> Result<(Instant, String)> {
        let token = self.send(command)?;
        let prefix = format!("{token}^");
        let i = self.wait_line(0, deadline, &format!("gdb's answer to `{command}`"), |l| {
            l.starts_with(&prefix)
        })?;
        let (at, line) = self.lines[i].clone();
        if line[prefix.len()..].starts_with("error") {
            bail!("gdb: `{command}` failed: {line}");
        }
        Ok((at, line))
    }

    /// The first `*stopped` record from line `from` on.
    pub(super) fn stopped_after(
        &mut self,
        from: usize,
        deadline: Instant,
    ) -> Result<(Instant, String)> {
        let i = self.wait_line(from, deadline, "gdb's `*stopped`", |l| {
            l.starts_with("*stopped")
        })?;
        Ok(self.lines[i].clone())
    }
}

/// gdb on MI, attached to `pid`, all-stop; started with the other peers' rules
/// (normal priority, own process group, stderr to a log).
pub(super) fn start_gdb(
    gdb: &Path,
    pid: i32,
    opts: &RunOpts,
    deadline: Instant,
) -> Result<(i32, Mi)> {
    let stderr =
        super::log_file(opts, &format!("gdb-mi-{pid}.stderr")).map_or(Stdio::null(), Stdio::from);
    let mut child = procfs::normal_priority(&mut Command::new(gdb))
        .args([
            "-nx",
            "-q",
            "-iex",
            "set debuginfod enabled off",
            // Commands while the target runs (`-exec-interrupt`), as an IDE has them.
            "-iex",
            "set mi-async on",
            "--interpreter=mi3",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .context("starting gdb")?;
    let gpid = child.id() as i32;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let mut mi = Mi {
        stdin: child.stdin.take().expect("piped"),
        rx,
        lines: Vec::new(),
        token: 0,
    };
    mi.command(&format!("-target-attach {pid}"), deadline)?;
    Ok((gpid, mi))
}

/// `-target-detach`, `-gdb-exit`, then gdb's exit: the measures every session has.
pub(super) fn end_gdb(
    mut mi: Mi,
    gpid: i32,
    t0: Instant,
    deadline: Instant,
    m: &mut Measure,
    notes: &mut Vec<String>,
) -> Result<()> {
    let t = Instant::now();
    let (at, _) = mi.command("-target-detach", deadline)?;
    m.0.insert(Row::Detach, ms(at - t));
    mi.send("-gdb-exit")?;
    drop(mi);
    let reaped = procfs::wait4_deadline(gpid, deadline)?
        .ok_or_else(|| Timeout("gdb's exit after `-gdb-exit`".into()))?;
    m.0.insert(Row::Session, ms(reaped.at - t0));
    m.0.insert(Row::Cpu, ms(reaped.cpu));
    m.0.insert(Row::PeakRss, super::mib(reaped.maxrss_kb));
    if !reaped.exited_cleanly() {
        notes.push(format!("gdb {}", reaped.describe_status()));
    }
    Ok(())
}

/// A gdb run that failed: kill it, say why.
pub(super) fn gdb_failed(gpid: Option<i32>, e: anyhow::Error, notes: Vec<String>) -> RunResult {
    if let Some(gpid) = gpid {
        let extra = procfs::descendants(gpid);
        super::kill_peer(gpid, &extra);
    }
    RunResult {
        outcome: super::outcome_of_error(e),
        notes,
        version: None,
    }
}

pub(super) fn gdb_ok(m: Measure, target: &mut Target, mut notes: Vec<String>) -> RunResult {
    super::check_target_after(target, 0, &mut notes);
    RunResult {
        outcome: Outcome::Ok(m),
        notes,
        version: None,
    }
}

/// `bp:N` over gdb's MI: `-break-insert *ADDR`, `-exec-continue`, hit → `*stopped`,
/// then `-exec-next-instruction` (or `-exec-next`).
pub fn run_gdb_hit(gdb: &Path, target: &mut Target, opts: &RunOpts) -> RunResult {
    let mut notes = Vec::new();
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let mut gpid = None;
    let r = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let hit = commands(target)?.hit;
        let (p, mut mi) = start_gdb(gdb, target.pid(), opts, deadline)?;
        gpid = Some(p);
        let location = opts.breakpoints.gdb_location(HIT_FUNCTION, hit);
        mi.command(&format!("-break-insert {location}"), deadline)?;
        mi.command("-exec-continue", deadline)?;
        wait_running(target.pid(), deadline)?;
        m.0.insert(Row::UntilBreakpointArmed, ms(Instant::now() - t0));
        let mut latencies = Vec::new();
        for i in 0..HITS {
            wait_running(target.pid(), deadline)?;
            let from = mi.lines.len();
            let t = Instant::now();
            commands(target)?.send("h")?;
            let (at, line) = mi.stopped_after(from, deadline)?;
            latencies.push(ms(at - t));
            if !line.contains("breakpoint-hit") {
                notes.push(format!("gdb stopped for another reason: {line}"));
            }
            if i + 1 == HITS {
                let step = match opts.step {
                    Step::Instruction => "-exec-next-instruction",
                    Step::Line => "-exec-next",
                };
                let from = mi.lines.len();
                let t = Instant::now();
                mi.send(step)?;
                let (at, _) = mi.stopped_after(from, deadline)?;
                m.0.insert(opts.step.row(), ms(at - t));
            }
            mi.command("-exec-continue", deadline)?;
            commands(target)?.answer("hit", deadline)?;
        }
        m.0.insert(Row::HitToStopped, median(latencies));
        // Stop it to detach, as an editor's "disconnect" of a running gdb does.
        let from = mi.lines.len();
        mi.command("-exec-interrupt", deadline)?;
        mi.stopped_after(from, deadline)?;
        end_gdb(mi, p, t0, deadline, &mut m, &mut notes)?;
        Ok(m)
    })();
    match r {
        Ok(m) => gdb_ok(m, target, notes),
        Err(e) => gdb_failed(gpid, e, notes),
    }
}

/// `hot` over gdb's MI: `-break-insert -i 1000000 *ADDR` (an ignore count); `hot-cond`:
/// `-break-insert -c COND`, the control's stop, then `-break-condition N COND`.
pub fn run_gdb_hot(
    gdb: &Path,
    target: &mut Target,
    opts: &RunOpts,
    kind: HotBreakpoint,
) -> RunResult {
    let mut notes = Vec::new();
    let t_base = Instant::now();
    let baseline = match hot_rate(target, t_base + opts.timeout, |until| {
        sleep_until(until);
        Ok(())
    }) {
        Ok(r) => r,
        Err(e) => return RunResult::harness_failed(&e, notes),
    };
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let mut gpid = None;
    let r = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let hot = commands(target)?.hot;
        let (p, mut mi) = start_gdb(gdb, target.pid(), opts, deadline)?;
        gpid = Some(p);
        let location = opts.breakpoints.gdb_location(HOT_FUNCTION, hot);
        let insert = match kind {
            HotBreakpoint::HitCount => format!("-break-insert -i {HOT_HIT_CONDITION} {location}"),
            HotBreakpoint::Condition => {
                format!("-break-insert -c \"{HOT_TRUE_CONDITION}\" {location}")
            }
        };
        let (_, inserted) = mi.command(&insert, deadline)?;
        let from = mi.lines.len();
        mi.command("-exec-continue", deadline)?;
        if kind == HotBreakpoint::Condition {
            // The control, as over DAP: the true condition stops, then the false one.
            // The breakpoint's `*stopped`, not the attach's, which may come late.
            mi.wait_line(
                from,
                deadline.min(Instant::now() + STOP_WAIT),
                &format!("the stop of the control condition `{HOT_TRUE_CONDITION}`"),
                |l| l.starts_with("*stopped") && l.contains("reason=\"breakpoint-hit\""),
            )?;
            let number = mi_breakpoint_number(&inserted)
                .with_context(|| format!("no breakpoint number in gdb's answer: {inserted}"))?;
            mi.command(
                &format!("-break-condition {number} {HOT_FALSE_CONDITION}"),
                deadline,
            )?;
            mi.command("-exec-continue", deadline)?;
        } else {
            m.0.insert(Row::UntilBreakpointArmed, ms(Instant::now() - t0));
        }
        // No `*stopped` may come from here on (the control's came before its continue).
        let resumed = mi.lines.len();
        let stopped_since =
            |mi: &Mi, from: usize| mi.lines[from..].iter().any(|l| l.1.starts_with("*stopped"));
        mi.drain_until(Instant::now() + Duration::from_millis(200))?;
        never_true_stopped(kind, stopped_since(&mi, resumed))?;
        let from = mi.lines.len();
        let rate = hot_rate(target, deadline, |until| {
            mi.drain_until(until)?;
            never_true_stopped(kind, stopped_since(&mi, resumed))
        })?;
        if stopped_since(&mi, from) {
            notes.push("**the hot breakpoint stopped** during the window".into());
        }
        hot_rows(&mut m, baseline, rate, &mut notes);
        let from = mi.lines.len();
        mi.command("-exec-interrupt", deadline)?;
        mi.stopped_after(from, deadline)?;
        end_gdb(mi, p, t0, deadline, &mut m, &mut notes)?;
        Ok(m)
    })();
    match r {
        Ok(m) => gdb_ok(m, target, notes),
        Err(e) => gdb_failed(gpid, e, notes),
    }
}

/// The number of the breakpoint in gdb's `^done,bkpt={number="N",...}`.
fn mi_breakpoint_number(answer: &str) -> Option<u32> {
    let rest = &answer[answer.find("bkpt={number=\"")? + "bkpt={number=\"".len()..];
    rest[..rest.find('"')?].parse().ok()
}

/// `bp-lines` over gdb's MI: `-break-insert FILE:LINE` × 100, written back to back,
/// after the attach (gdb reads symbols during its attach).
pub fn run_gdb_lines(gdb: &Path, target: &mut Target, opts: &RunOpts) -> RunResult {
    let mut notes = Vec::new();
    let files = match source_lines() {
        Ok(f) => f,
        Err(e) => return RunResult::harness_failed(&e, notes),
    };
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let mut gpid = None;
    let r = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (p, mut mi) = start_gdb(gdb, target.pid(), opts, deadline)?;
        gpid = Some(p);
        let t = Instant::now();
        let mut tokens = Vec::new();
        for (path, lines) in &files {
            for l in lines {
                tokens.push(mi.send(&format!("-break-insert {}:{l}", path.display()))?);
            }
        }
        let (mut last, mut verified, mut first_error) = (t, 0, None);
        for token in tokens {
            let prefix = format!("{token}^");
            let i = mi.wait_line(0, deadline, "gdb's `-break-insert` answers", |l| {
                l.starts_with(&prefix)
            })?;
            let (at, line) = &mi.lines[i];
            last = last.max(*at);
            if line[prefix.len()..].starts_with("done") {
                verified += 1;
            } else if first_error.is_none() {
                first_error = Some(line.clone());
            }
        }
        m.0.insert(Row::SetSourceBreakpoints, ms(last - t));
        m.0.insert(Row::BreakpointsVerified, f64::from(verified));
        if let Some(e) = first_error {
            notes.push(format!("gdb refused a breakpoint: {e}"));
        }
        end_gdb(mi, p, t0, deadline, &mut m, &mut notes)?;
        Ok(m)
    })();
    match r {
        Ok(m) => gdb_ok(m, target, notes),
        Err(e) => gdb_failed(gpid, e, notes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_lines_are_let_statements_of_latchs_sources() {
        let files = source_lines().unwrap();
        assert_eq!(files.len(), LINE_FILES);
        for (path, lines) in &files {
            assert_eq!(lines.len(), LINES_PER_FILE, "{}", path.display());
            let text = std::fs::read_to_string(path).unwrap();
            let all: Vec<&str> = text.lines().collect();
            for &l in lines {
                let line = all[l as usize - 1].trim();
                assert!(line.starts_with("let ") && line.ends_with(';'), "{line}");
            }
        }
    }

    #[test]
    fn gdb_breakpoint_number_is_read_from_its_answer() {
        let answer = r#"3^done,bkpt={number="12",type="breakpoint",disp="keep",enabled="y",cond="hot_calls != 0"}"#;
        assert_eq!(mi_breakpoint_number(answer), Some(12));
        assert_eq!(mi_breakpoint_number("3^done"), None);
    }

    /// The hot conditions name the global that `bench_hot` counts in, compare it with 0
    /// both ways (one stops at every hit, the other at none), and the target declares
    /// it in the unit of `bench_hot`, where every peer looks names up at the hit.
    #[test]
    fn hot_conditions_read_the_counter_of_the_hot_loop() {
        let (var, _) = HOT_FALSE_CONDITION.split_once(" == ").unwrap();
        assert_eq!(HOT_TRUE_CONDITION, format!("{var} != 0"));
        assert_eq!(HOT_FALSE_CONDITION, format!("{var} == 0"));
        let source = crate::target::THREADS_C;
        assert!(source.contains(&format!("static unsigned long {var};")));
        let hot = source.find("void bench_hot(void)").unwrap();
        let body = &source[hot..source[hot..].find("\n}").unwrap() + hot];
        assert!(body.contains(&format!("&{var}")), "{body}");
    }

    #[test]
    fn next_says_its_granularity() {
        assert_eq!(Step::Instruction.args(7)["granularity"], "instruction");
        assert!(Step::Line.args(7).get("granularity").is_none());
        assert_eq!(Step::Line.row(), Row::NextLine);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
    }
}
