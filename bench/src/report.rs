//! What a run measures, medians, and the markdown table.

use crate::peers::Peer;
use crate::target::Scenario;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One row of the table: a variant here, a label, and the peer drivers
/// fill it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Row {
    /// Spawn of the adapter until its `initialize` response.
    Initialize,
    /// `initialize` response until all threads are stopped (see README of
    /// the peers module for what "stopped" means per peer).
    AttachStopped,
    /// waitFor: in how many runs the counter had printed nothing when the
    /// stop was reported (1 or 0 per run; shown as a count of runs, not a
    /// median).
    CaughtBeforeMain,
    /// waitFor: lines the counter printed before it was stopped.
    LinesBeforeStop,
    /// waitFor: the counter's exec until the stop was reported (as for
    /// attach until all threads stopped: the latest of the attach and
    /// configurationDone responses and the `stopped` event).
    ExecToStopped,
    /// `threads` request until its response.
    Threads,
    /// Spawn of the adapter until `threads` answered: what a user waits for
    /// between "attach" and seeing the thread list.
    UntilThreads,
    /// One `stackTrace {levels: 0}` per thread, pipelined: first request
    /// sent until the last response arrived. For gdb + bt: derived, the
    /// median session of gdb + bt minus that of gdb.
    AllStacks,
    /// `stackTrace` of the main thread right after `threads`, from a
    /// debugger that has not looked at the binary before (large binary).
    FirstStack,
    /// Spawn of the adapter until that first `stackTrace` answered.
    UntilFirstStack,
    /// Spawn of the adapter until the last of those stack traces answered: what the
    /// whole way to every thread's stack costs, wherever a peer puts its symbol reading.
    UntilAllStacks,
    /// The same `stackTrace` again, right after: symbols now cached.
    SecondStack,
    /// Goroutines: `stackTrace {levels: 0}` of one parked goroutine of the list.
    GoroutineStack,
    /// Goroutines: frames of that parked goroutine's stack (a count).
    GoroutineFrames,
    /// Goroutines: the first 100 goroutines of the `threads` answer, one `stackTrace`
    /// each, pipelined: first request until the last response.
    FirstStacksPipelined,
    /// Goroutines: the same 100, one at a time: each request after the previous answer.
    FirstStacksSerial,
    /// Threads in the `threads` response (gdb: in `info threads`), shown
    /// for targets whose thread count is not fixed (short-lived, Go).
    ThreadsListed,
    /// Frames returned in total (all threads, or the main thread's first
    /// stack trace). A count, not a time: a peer that returns empty stacks
    /// must not look fast.
    Frames,
    /// `disconnect` request until its response.
    Detach,
    /// Spawn until the debugger process exited. The only timing gdb has.
    Session,
    /// User + system CPU of the debugger and every descendant.
    Cpu,
    /// Peak resident memory of the debugger (and descendants).
    PeakRss,
    /// Running target (churn-run): `thread` events the client received per second.
    ThreadEventsPerSec,
    /// Running target: every other event (`output`, `module`, ...) per second.
    OtherEventsPerSec,
    /// Running target: bytes the adapter wrote to the client (headers and bodies).
    BytesToClient,
    /// Running target: user + system CPU of the adapter and its descendants
    /// (lldb-server) over the running window.
    AdapterCpuRunning,
    /// Running target: CPU the benchmark's own client spent reading and parsing
    /// (every message in full, as an editor does) over the running window.
    ClientCpu,
    /// Running target: threads the target made per second while attached (its own
    /// count): how much the debugger slowed it.
    TargetThreadsPerSec,
    /// Breakpoint targets: from the start of the adapter until the breakpoint was
    /// set, `configurationDone` answered and every thread ran again.
    UntilBreakpointArmed,
    /// `bp:N`: the trigger written to the target's stdin until the `stopped` event
    /// (gdb: its `*stopped` record); median of the run's hits.
    HitToStopped,
    /// `bp:N`: the first hit's trigger until the `variables` response of what an
    /// editor asks after a stop (`threads`, `stackTrace`, `scopes`, `variables`).
    FirstHitShown,
    /// `bp:N`: `next {granularity: instruction}` until its `stopped` event.
    NextInstruction,
    /// `bp:N`: `next` over one source line until its `stopped` event.
    NextLine,
    /// `bp:N`: `next` → `stopped` → `threads` → `stackTrace` → `scopes` → `variables`,
    /// one after the other, until the `variables` response.
    F10Round,
    /// `hot`: the target's own calls of the function per second, breakpoint set.
    HotCallsPerSec,
    /// `hot`: the same without a debugger (the same target, before the attach).
    HotBaselinePerSec,
    /// `hot`: time per call with the breakpoint set (µs).
    HotPerCall,
    /// `hot`: calls per second without a debugger over calls per second with it.
    HotSlowdown,
    /// `bp-lines`: 100 source breakpoints, one `setBreakpoints` per file, pipelined:
    /// first request until the last response.
    SetSourceBreakpoints,
    /// `bp-lines`: breakpoints the adapter answered as verified (a count).
    BreakpointsVerified,
    /// `launch-main`: spawn of the debugger until the program is reported stopped at the
    /// first line of `main`.
    StartToMain,
    /// `launch-lib`: spawn of the debugger until the program is reported stopped at the
    /// breakpoint in its shared library.
    StartToLibraryBreakpoint,
    /// Launch scenarios: the `launch` request until that stop (gdb: from a clock print
    /// before `file PROGRAM` until one after `run`).
    LaunchToStopped,
    /// Launch scenarios: `disconnect {terminateDebuggee: true}` until its response.
    Terminate,
    /// Launch scenarios: the source line of the stop, as the debugger reported it (a
    /// count: which line each peer takes for "the first line").
    StopLine,
    /// `values-big`: `scopes` of frame 0 until the last `variables` response of its
    /// arguments and locals, one request after the other (gdb: `-stack-list-variables`).
    FrameScopesVariables,
    /// `values-big`: the trigger written to the target's stdin until those variables were
    /// answered (`stopped`, `threads`, `stackTrace`, `scopes`, `variables`).
    StopToFrameVariables,
    /// `values-big`: start of the debugger until the breakpoint was armed, plus the
    /// trigger until frame 0's variables were answered: what the user waits for, wherever
    /// a peer puts its symbol reading (the wait for the trigger in between is the
    /// harness's, left out).
    StartToFrameVariables,
    /// `values-big`: variables those answers listed (a count: a peer that shows fewer
    /// must not look fast).
    FrameVariables,
    /// `values`: the vector's first page, `variables {start: 0, count: 100}` (gdb:
    /// `-var-list-children` 0 100), right after the frame's locals.
    FirstPage,
    /// `values`: one page of 100 elements, median over the pages read (spread from the
    /// first to the last).
    PageTime,
    /// `values`: the pages that failed the check (100 elements, element i is i): a count.
    BadPages,
    /// `values`: `evaluate {context: hover}` of a field path, warm, one request after the
    /// other: time per request.
    HoverSerial,
    /// `values`: the same, all written before any answer is read: time per request.
    HoverPipelined,
    /// `values`: resident memory of the debugger after the first page.
    RssFirstPage,
    /// `values`: resident memory of the debugger after the last page.
    RssLastPage,
}

impl Row {
    pub const ALL: [Row; 56] = [
        Row::Initialize,
        Row::StartToMain,
        Row::StartToLibraryBreakpoint,
        Row::LaunchToStopped,
        Row::StopLine,
        Row::UntilBreakpointArmed,
        Row::HitToStopped,
        Row::FirstHitShown,
        Row::NextInstruction,
        Row::NextLine,
        Row::F10Round,
        Row::HotCallsPerSec,
        Row::HotBaselinePerSec,
        Row::HotPerCall,
        Row::HotSlowdown,
        Row::SetSourceBreakpoints,
        Row::BreakpointsVerified,
        Row::FrameScopesVariables,
        Row::StopToFrameVariables,
        Row::StartToFrameVariables,
        Row::FrameVariables,
        Row::FirstPage,
        Row::PageTime,
        Row::BadPages,
        Row::HoverSerial,
        Row::HoverPipelined,
        Row::RssFirstPage,
        Row::RssLastPage,
        Row::AttachStopped,
        Row::CaughtBeforeMain,
        Row::LinesBeforeStop,
        Row::ExecToStopped,
        Row::Threads,
        Row::UntilThreads,
        Row::AllStacks,
        Row::UntilAllStacks,
        Row::FirstStack,
        Row::UntilFirstStack,
        Row::SecondStack,
        Row::GoroutineStack,
        Row::GoroutineFrames,
        Row::FirstStacksPipelined,
        Row::FirstStacksSerial,
        Row::ThreadsListed,
        Row::Frames,
        Row::Detach,
        Row::Terminate,
        Row::Session,
        Row::ThreadEventsPerSec,
        Row::OtherEventsPerSec,
        Row::BytesToClient,
        Row::AdapterCpuRunning,
        Row::ClientCpu,
        Row::TargetThreadsPerSec,
        Row::Cpu,
        Row::PeakRss,
    ];

    fn label(self) -> &'static str {
        match self {
            Row::Initialize => "start + `initialize`",
            Row::AttachStopped => "attach until all threads stopped",
            Row::CaughtBeforeMain => "caught before `main()` (0 lines printed)",
            Row::LinesBeforeStop => "lines printed before the stop",
            Row::ExecToStopped => "exec → stop reported",
            Row::Threads => "`threads`",
            Row::UntilThreads => "start → `threads` answered (gdb: `info threads` printed)",
            Row::AllStacks => "stack traces of all threads (`stackTrace` × threads, pipelined)",
            Row::FirstStack => "first `stackTrace` (main thread)",
            Row::UntilFirstStack => "start → first `stackTrace` answered",
            Row::UntilAllStacks => "start → all stack traces answered",
            Row::SecondStack => "second `stackTrace` (same thread, warm)",
            Row::GoroutineStack => "**`stackTrace` of one parked goroutine**",
            Row::GoroutineFrames => "frames of that goroutine",
            Row::FirstStacksPipelined => {
                "**stacks of the first 100 goroutines listed** (`stackTrace` × 100, pipelined)"
            }
            Row::FirstStacksSerial => {
                "**stacks of the first 100 goroutines listed** (one at a time)"
            }
            Row::ThreadsListed => "threads listed",
            Row::Frames => "frames returned (total)",
            Row::Detach => "`disconnect` (detach)",
            Row::Session => "whole session (start → debugger exit)",
            Row::Cpu => "CPU time (user+sys)",
            Row::PeakRss => "peak memory (RSS)",
            Row::ThreadEventsPerSec => "`thread` events to the client, per second",
            Row::OtherEventsPerSec => "other events to the client, per second",
            Row::BytesToClient => "bytes written to the client while running",
            Row::AdapterCpuRunning => "adapter CPU while running (user+sys, with lldb-server)",
            Row::ClientCpu => "client CPU reading and parsing it",
            Row::TargetThreadsPerSec => "threads the target made per second (its count)",
            Row::UntilBreakpointArmed => {
                "start → breakpoint set, `configurationDone`, all threads running"
            }
            Row::HitToStopped => "**breakpoint hit → `stopped`** (trigger written → event)",
            Row::FirstHitShown => {
                "first hit → its variables shown (trigger → `threads`, `stackTrace`, `scopes`, \
                 `variables` answered)"
            }
            Row::NextInstruction => {
                "**`next` → `stopped`** (one instruction: `granularity: instruction`; gdb `nexti`)"
            }
            Row::NextLine => "**`next` → `stopped`** (one source line; gdb `next`)",
            Row::F10Round => {
                "**F10 round**: `next` → `stopped` → `threads` → `stackTrace` (20) → `scopes` → \
                 `variables`"
            }
            Row::HotCallsPerSec => "calls per second with the breakpoint (the target's count)",
            Row::HotBaselinePerSec => "calls per second without a debugger (same target)",
            Row::HotPerCall => "**time per call with the breakpoint**",
            Row::HotSlowdown => "slowdown against no debugger",
            Row::SetSourceBreakpoints => {
                "**100 source breakpoints set** (`setBreakpoints` per file, pipelined; gdb: \
                 `-break-insert` × 100)"
            }
            Row::BreakpointsVerified => "breakpoints verified (of 100)",
            Row::StartToMain => {
                "**start → stopped at the first line of `main`** (debugger spawned → `stopped`; \
                 gdb: `run` returned)"
            }
            Row::StartToLibraryBreakpoint => {
                "**start → stopped at the breakpoint in the library** (debugger spawned → \
                 `stopped`; gdb: `run` returned)"
            }
            Row::LaunchToStopped => {
                "`launch` → stopped (gdb: `file`, `break`, `run` until `run` returned)"
            }
            Row::Terminate => "`disconnect` (terminate the program)",
            Row::StopLine => "source line of the stop (as reported)",
            Row::FrameScopesVariables => {
                "**first `scopes` + `variables` of frame 0** (arguments and locals; gdb: \
                 `-stack-list-variables --simple-values`)"
            }
            Row::StopToFrameVariables => {
                "trigger → `stopped` → `threads` → `stackTrace` → `scopes` → `variables` \
                 answered (gdb: `*stopped` → `-stack-list-variables`)"
            }
            Row::StartToFrameVariables => {
                "**start → frame 0's variables shown** (start → breakpoint armed, plus trigger \
                 → variables answered)"
            }
            Row::FrameVariables => "variables shown (arguments and locals of frame 0)",
            Row::FirstPage => {
                "first page of the vector (`variables` start 0, count 100; gdb: \
                 `-var-create` + `-var-list-children 0 100`)"
            }
            Row::PageTime => {
                "**one page of 100 elements** (`variables` start/count, median of the pages \
                 read from the first to the last; gdb: `-var-list-children FROM TO`)"
            }
            Row::BadPages => "pages not as the program wrote them (of those read)",
            Row::HoverSerial => {
                "**`evaluate` hover `head.next->value`, one at a time** (per request; gdb: \
                 `-data-evaluate-expression`)"
            }
            Row::HoverPipelined => {
                "**`evaluate` hover `head.next->value`, pipelined** (per request)"
            }
            Row::RssFirstPage => "memory (RSS) after the first page",
            Row::RssLastPage => "memory (RSS) after the last page",
        }
    }

    /// Where a peer none of whose runs finished says "timed out" rather
    /// than "—": the rows that peer would have filled first.
    fn shows_timeout(self, peer: Peer) -> bool {
        match peer {
            Peer::Gdb | Peer::GdbBt => self == Row::Session,
            Peer::Latch | Peer::LldbDap | Peer::Delve => matches!(
                self,
                Row::AttachStopped
                    | Row::ExecToStopped
                    | Row::StartToMain
                    | Row::StartToLibraryBreakpoint
                    | Row::Session
            ),
        }
    }

    fn is_memory(self) -> bool {
        matches!(self, Row::PeakRss | Row::RssFirstPage | Row::RssLastPage)
    }

    /// Times well under a millisecond, shown in µs so that their ratio can be read.
    fn is_per_request(self) -> bool {
        matches!(self, Row::PageTime | Row::HoverSerial | Row::HoverPipelined)
    }

    fn is_rate(self) -> bool {
        matches!(
            self,
            Row::ThreadEventsPerSec
                | Row::OtherEventsPerSec
                | Row::TargetThreadsPerSec
                | Row::HotCallsPerSec
                | Row::HotBaselinePerSec
        )
    }

    /// Rows whose 0 is a real value, not the noise of a derived difference.
    fn zero_is_real(self) -> bool {
        self.is_count() || self.is_rate() || self == Row::BytesToClient
    }

    fn is_count(self) -> bool {
        matches!(
            self,
            Row::Frames
                | Row::GoroutineFrames
                | Row::LinesBeforeStop
                | Row::ThreadsListed
                | Row::BreakpointsVerified
                | Row::StopLine
                | Row::FrameVariables
                | Row::BadPages
        )
    }

    /// The row where gdb + bt's value is derived from two gdb runs: the
    /// difference of the median whole sessions with and without `bt`.
    fn gdb_bt_derived(self, sc: Scenario) -> bool {
        match sc {
            Scenario::BigBinary => self == Row::FirstStack,
            _ => self == Row::AllStacks,
        }
    }
}

/// Values of one successful run: milliseconds for times, MiB for memory.
#[derive(Default, Debug)]
pub struct Measure(pub BTreeMap<Row, f64>);

pub enum Outcome {
    Ok(Measure),
    Timeout(String),
    Failed(String),
}

pub struct RunResult {
    pub outcome: Outcome,
    /// Findings worth showing even when the run succeeded: a target left
    /// stopped, a thread count that does not match /proc, a crash on exit.
    pub notes: Vec<String>,
    /// Version string learnt during the run (lldb-dap reports it in its
    /// `initialize` response).
    pub version: Option<String>,
}

impl RunResult {
    /// A run that ended early with `outcome`, with what it had learnt so far.
    pub fn ended(outcome: Outcome, notes: Vec<String>, version: Option<String>) -> RunResult {
        RunResult {
            outcome,
            notes,
            version,
        }
    }

    /// A run the harness itself could not prepare: not the peer's failure.
    pub fn harness_failed(err: &anyhow::Error, notes: Vec<String>) -> RunResult {
        RunResult::ended(
            Outcome::Failed(format!("harness, not the peer: {err:#}")),
            notes,
            None,
        )
    }
}

/// All runs of one scenario for one peer.
#[derive(Default)]
pub struct Cell {
    pub measures: Vec<Measure>,
    pub timeouts: Vec<String>,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
}

impl Cell {
    pub fn add(&mut self, r: RunResult) {
        match r.outcome {
            Outcome::Ok(m) => self.measures.push(m),
            Outcome::Timeout(w) => self.timeouts.push(w),
            Outcome::Failed(w) => self.failures.push(w),
        }
        self.notes.extend(r.notes);
    }

    /// Runs with `row` equal to 1, and all runs (timeouts and failures
    /// count as misses): "caught before main(): 19/20".
    fn hits(&self, row: Row) -> Option<(usize, usize)> {
        let hits = self
            .measures
            .iter()
            .filter(|m| m.0.get(&row) == Some(&1.0))
            .count();
        let all = self.measures.len() + self.timeouts.len() + self.failures.len();
        (all > 0).then_some((hits, all))
    }

    fn median(&self, row: Row) -> Option<f64> {
        let mut v: Vec<f64> = self
            .measures
            .iter()
            .filter_map(|m| m.0.get(&row).copied())
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        })
    }
}

pub struct Report {
    pub header: String,
    pub peers: Vec<Peer>,
    pub cells: BTreeMap<(usize, Peer), Cell>,
    pub scenarios: Vec<Scenario>,
    /// Runs of each scenario (waitFor has its own count).
    pub runs: Vec<usize>,
}

fn fmt_value(row: Row, v: f64) -> String {
    if row.is_count() {
        format!("{v:.0}")
    } else if row.is_rate() && v < 10.0 {
        format!("{v:.1} /s")
    } else if row.is_rate() {
        format!("{v:.0} /s")
    } else if row == Row::BytesToClient {
        if v >= 1048576.0 {
            format!("{:.1} MiB", v / 1048576.0)
        } else if v >= 1024.0 {
            format!("{:.1} KiB", v / 1024.0)
        } else {
            format!("{v:.0} B")
        }
    } else if row == Row::HotPerCall {
        // Stored in µs.
        if v < 10.0 {
            format!("{v:.2} µs")
        } else {
            format!("{v:.1} µs")
        }
    } else if row == Row::HotSlowdown {
        fmt_ratio(v)
    } else if row.is_per_request() && v < 1.0 {
        // Stored in ms.
        format!("{:.1} µs", v * 1000.0)
    } else if row.is_memory() {
        format!("{v:.1} MiB")
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 1000.0 {
        format!("{v:.1} ms")
    } else {
        format!("{:.2} s", v / 1000.0)
    }
}

fn fmt_ratio(r: f64) -> String {
    if r < 0.1 {
        format!("{r:.3}×")
    } else if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

impl Report {
    pub fn markdown(&self) -> String {
        let mut out = self.header.clone();
        for (si, sc) in self.scenarios.iter().enumerate() {
            let runs = self.runs[si];
            // Delve has columns only where it runs (goroutines), and there it is the only peer
            // besides latch.
            let peers: Vec<Peer> = self
                .peers
                .iter()
                .copied()
                .filter(|p| {
                    p.can_run(*sc)
                        || !matches!((p, sc), (Peer::Delve, _) | (_, Scenario::Goroutines(_)))
                })
                .collect();
            let _ = writeln!(
                out,
                "\n### {} (median of {runs} run{})\n",
                sc.title(),
                if runs == 1 { "" } else { "s" }
            );
            let mut head = String::from("| phase |");
            let mut rule = String::from("|---|");
            for p in &peers {
                let _ = write!(head, " {} |", p.name());
                rule.push_str("---:|");
                if *p != Peer::Latch && peers.contains(&Peer::Latch) {
                    let _ = write!(head, " {} / latch |", p.name());
                    rule.push_str("---:|");
                }
            }
            let _ = writeln!(out, "{head}\n{rule}");
            let latch = self.cells.get(&(si, Peer::Latch));
            let mut derived = false;
            for row in Row::ALL {
                let values: Vec<Option<f64>> = peers
                    .iter()
                    .map(|p| {
                        let v = self.cells.get(&(si, *p)).and_then(|c| c.median(row));
                        if v.is_none() && *p == Peer::GdbBt && row.gdb_bt_derived(*sc) {
                            let d = self.gdb_bt_cost(si);
                            derived |= d.is_some();
                            return d;
                        }
                        v
                    })
                    .collect();
                if values.iter().all(Option::is_none) {
                    continue;
                }
                let mut line = format!("| {} |", row.label());
                if row == Row::CaughtBeforeMain {
                    for p in &peers {
                        let hits = self.cells.get(&(si, *p)).and_then(|c| c.hits(row));
                        let cell = hits.map_or("—".into(), |(h, n)| format!("{h}/{n}"));
                        let _ = write!(line, " {cell} |");
                        if *p != Peer::Latch && peers.contains(&Peer::Latch) {
                            line.push_str(" — |");
                        }
                    }
                    let _ = writeln!(out, "{line}");
                    continue;
                }
                let base = latch.and_then(|c| c.median(row));
                for (p, v) in peers.iter().zip(&values) {
                    // Only a derived difference can be negative: noise, not a time.
                    // (A count, such as lines printed before a stop, is 0 for real.)
                    if !row.zero_is_real() && v.is_some_and(|v| v <= 0.0) {
                        line.push_str(" ≈ 0 (noise) |");
                        if *p != Peer::Latch && peers.contains(&Peer::Latch) {
                            line.push_str(" — |");
                        }
                        continue;
                    }
                    let timed_out = v.is_none()
                        && self
                            .cells
                            .get(&(si, *p))
                            .is_some_and(|c| c.measures.is_empty() && !c.timeouts.is_empty())
                        && row.shows_timeout(*p);
                    let cell = match v {
                        Some(v) => fmt_value(row, *v),
                        None if timed_out => "timed out".into(),
                        None => "—".into(),
                    };
                    let _ = write!(line, " {cell} |");
                    if *p != Peer::Latch && peers.contains(&Peer::Latch) {
                        let ratio = match (v, base) {
                            (Some(v), Some(b)) if b > 0.0 && !row.is_count() => fmt_ratio(v / b),
                            _ => "—".into(),
                        };
                        let _ = write!(line, " {ratio} |");
                    }
                }
                let _ = writeln!(out, "{line}");
            }
            if derived {
                let _ = writeln!(
                    out,
                    "\ngdb + bt's stack-trace row is derived, not timed: the median whole session \
                     of gdb + bt minus that of gdb ({}) in the same runs; noisy, and shown as ≈ 0 \
                     when noise makes it negative.",
                    if *sc == Scenario::BigBinary {
                        "`-ex bt` against `-ex 'info threads'`"
                    } else {
                        "with and without `thread apply all bt`"
                    }
                );
            }
            if *sc == Scenario::WaitFor
                && peers.iter().any(|p| matches!(p, Peer::Gdb | Peer::GdbBt))
            {
                let _ = writeln!(
                    out,
                    "\ngdb has no waitFor on Linux, so its columns are empty. The counter prints a line every ms from the first statement of \
                     `main()`; its stdout pipe is read once the stop is reported, so the lines \
                     counted are all it printed before it was stopped. The target is started \
                     {} ms after the adapter's `output` says it waits (lldb-dap says so before \
                     its lldb-server polls); exec → stop is timed from the return of the \
                     target's spawn (after its exec).",
                    crate::peers::WAITFOR_SETTLE.as_millis()
                );
            }
            // Problems go right under their table, loudly.
            for p in &peers {
                let Some(c) = self.cells.get(&(si, *p)) else {
                    continue;
                };
                let ok = c.measures.len();
                if !c.timeouts.is_empty() || !c.failures.is_empty() {
                    let _ = writeln!(
                        out,
                        "\n**{}: {} of {} runs did not complete** (medians use the {ok} that did):",
                        p.name(),
                        c.timeouts.len() + c.failures.len(),
                        ok + c.timeouts.len() + c.failures.len()
                    );
                    for t in dedup_count(&c.timeouts) {
                        let _ = writeln!(out, "- TIMEOUT: {t}");
                    }
                    for f in dedup_count(&c.failures) {
                        let _ = writeln!(out, "- FAILED: {f}");
                    }
                }
                if !c.notes.is_empty() {
                    let _ = writeln!(out, "\n**{}**:", p.name());
                    for n in dedup_count(&c.notes) {
                        let _ = writeln!(out, "- {n}");
                    }
                }
            }
        }
        out
    }
}

impl Report {
    /// What `bt` adds to a gdb session: median session of gdb + bt minus
    /// the median session of gdb, when both peers ran.
    fn gdb_bt_cost(&self, si: usize) -> Option<f64> {
        let with = self.cells.get(&(si, Peer::GdbBt))?.median(Row::Session)?;
        let without = self.cells.get(&(si, Peer::Gdb))?.median(Row::Session)?;
        Some(with - without)
    }
}

/// Collapse repeated messages into "message (×3)".
fn dedup_count(items: &[String]) -> Vec<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for i in items {
        match counts.iter_mut().find(|(s, _)| s == i) {
            Some(c) => c.1 += 1,
            None => counts.push((i.clone(), 1)),
        }
    }
    counts
        .into_iter()
        .map(|(s, n)| if n > 1 { format!("{s} (×{n})") } else { s })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(caught: bool) -> RunResult {
        let mut m = Measure::default();
        m.0.insert(Row::CaughtBeforeMain, f64::from(u8::from(caught)));
        RunResult {
            outcome: Outcome::Ok(m),
            notes: vec![],
            version: None,
        }
    }

    #[test]
    fn caught_counts_timeouts_as_misses() {
        let mut c = Cell::default();
        c.add(run(true));
        c.add(run(true));
        c.add(run(false));
        c.add(RunResult {
            outcome: Outcome::Timeout("x".into()),
            notes: vec![],
            version: None,
        });
        assert_eq!(c.hits(Row::CaughtBeforeMain), Some((2, 4)));
    }

    #[test]
    fn waitfor_table_and_timeouts() {
        let mut latch = Cell::default();
        latch.add(run(true));
        let mut lldb = Cell::default();
        lldb.add(RunResult {
            outcome: Outcome::Timeout("the stop".into()),
            notes: vec![],
            version: None,
        });
        let report = Report {
            header: String::new(),
            peers: vec![Peer::Latch, Peer::LldbDap],
            cells: BTreeMap::from([((0, Peer::Latch), latch), ((0, Peer::LldbDap), lldb)]),
            scenarios: vec![Scenario::WaitFor],
            runs: vec![1],
        };
        let md = report.markdown();
        assert!(
            md.contains("| caught before `main()` (0 lines printed) | 1/1 | 0/1 | — |"),
            "{md}"
        );
        assert!(md.contains("- TIMEOUT: the stop"), "{md}");
    }
}
