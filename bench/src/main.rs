//! latch-bench: attach latch, gdb and lldb-dap to the same freshly built
//! targets, interleaved run by run, and report medians and peer/latch ratios.
//!
//! Absolute times on a shared machine are noisy; ratios measured in the same
//! run, with peers interleaved, are what we publish.

mod dap;
mod peers;
mod procfs;
mod report;
mod target;

use anyhow::{Context, Result};
use clap::Parser;
use peers::{Peer, RunOpts};
use report::{Cell, Outcome, Report, Row};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use target::{BigBinary, Scenario, Targets};

#[derive(Parser, Debug)]
#[command(
    name = "latch-bench",
    about = "Benchmark latch against gdb and lldb-dap on the same targets, in one run",
    long_about = "Builds its targets (N sleeping or spinning threads, a stream of short-lived \
                  threads, a Go program with many goroutines, a counter for waitFor), then for \
                  every scenario and run attaches each peer in turn to a fresh target: latch and \
                  lldb-dap over DAP on stdio as an editor would, gdb timed as a whole in batch \
                  mode. Prints a markdown table of medians and peer/latch ratios."
)]
struct Cli {
    /// Runs per scenario and peer; medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Scenarios: sleep:N (N sleeping threads), spin:N (N spinning threads),
    /// short-lived (a stream of short-lived threads), go or go:N (a Go
    /// program with N blocked goroutines, default 10000, plus 2 busy),
    /// goroutines or goroutines:N (the same program seen as goroutines: latch against
    /// Delve's `dlv dap`: attach, the goroutine list, one parked goroutine's stack, the
    /// stacks of the first 100 listed),
    /// churn-run or churn-run:SECS (short-lived threads attached and left running,
    /// default 10 s: the events the client is sent, and their cost; latch and
    /// lldb-dap only), waitfor (attach by name before a counter starts; see
    /// --waitfor-runs),
    /// big (first stack trace on a large binary with full debug info),
    /// bp:N (breakpoint hit → stopped, `next` and the F10 round next to N sleeping
    /// threads), hot (a breakpoint that never stops in a hot loop: the loop's calls
    /// per second), hot-cond (the same with a `condition` that is never true but is read
    /// from the target at every hit, after a control stop where it is true), bp-lines (100 source breakpoints set in the large binary),
    /// launch-main (launch a program linked against a shared library, until it is
    /// stopped at the first line of `main`), launch-lib (the same until the breakpoint
    /// in that library, which `main` calls first), values-big (frame 0's scopes and
    /// variables after a breakpoint stop in the large binary), values (a C++ vector of
    /// 1,000,000 ints paged, hover evaluation of a field path).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = Scenario::parse,
        default_value = "sleep:1,sleep:100,sleep:1000,sleep:4000,spin:16,spin:100,short-lived,go,goroutines,waitfor,big,bp:1,bp:100,bp:1000,hot,hot-cond,bp-lines,launch-main,launch-lib,values-big,values"
    )]
    sizes: Vec<Scenario>,
    /// Runs of the waitfor scenario per peer: its goal is stated over 20
    /// runs, and a run takes well under a second.
    #[arg(long, default_value_t = 20)]
    waitfor_runs: usize,
    /// Debuggers to run. gdb-bt is gdb with `thread apply all bt` as well. delve (`dlv
    /// dap`) runs only the goroutines scenario, where it is the only peer besides latch.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "latch,gdb,gdb-bt,lldb-dap,delve"
    )]
    peers: Vec<Peer>,
    /// Also write the markdown report here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// The latch binary (default: `latch` next to this binary, then PATH).
    #[arg(long)]
    latch: Option<PathBuf>,
    /// Deadline for one peer's whole session, in seconds; past it the peer
    /// is killed and the run reported as a timeout (and a peer none of
    /// whose runs of a scenario finished skips that scenario's other runs).
    /// 120 s is four times lldb-dap's ~28 s next to 100 spinning threads.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Attach without stopOnEntry: then "stopped" is the attach response.
    /// (waitFor always stops on entry: the stop is what it measures.)
    #[arg(long)]
    no_stop_on_entry: bool,
    /// Skip the stack traces of all threads on the thread targets.
    #[arg(long)]
    no_stacks: bool,
    /// Start the targets in the harness's own session instead of one of their own:
    /// with autogroup scheduling a busy target then takes CPU from the debuggers'
    /// own start (see the report's method line).
    #[arg(long)]
    same_session: bool,
    /// Let latch keep inflated debug sections in its on-disk cache across runs (warm
    /// after the first run). Default: the cache is off and every run is a first attach.
    #[arg(long)]
    warm_cache: bool,
    /// The large binary of the `big` scenario, started with the argument
    /// `dap` (default: latch's debug build, `../debug/latch` from here).
    #[arg(long)]
    big_binary: Option<PathBuf>,
    /// How latch's and gdb's breakpoints are set in bp:N and hot: by function name
    /// (latch: `setFunctionBreakpoints`, as lldb-dap's always are; gdb: `-break-insert
    /// NAME`) or by address (latch: `setInstructionBreakpoints`; gdb: `*ADDR`).
    #[arg(long, value_enum, default_value = "function")]
    breakpoints: peers::bp::BreakpointsBy,
    /// How every peer's breakpoint in the library is set in launch-lib: by function name
    /// (`setFunctionBreakpoints`; gdb `break NAME`) or on the source line of its first
    /// statement (`setBreakpoints`; gdb `break launchlib.c:LINE`).
    #[arg(long, value_enum, default_value = "function")]
    launch_lib_breakpoint: peers::launch::LibBreakpoint,
    /// What `next` steps over in bp:N: one instruction (`granularity: instruction`,
    /// gdb `nexti`) or one source line (gdb `next`).
    #[arg(long, value_enum, default_value = "line")]
    step: peers::bp::Step,
    /// Keep the temporary directory (targets, adapters' stderr, gdb output).
    #[arg(long)]
    keep_logs: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(cli.runs > 0, "--runs must be at least 1");
    // Before any child exists, so lldb-server orphans come to us.
    procfs::become_subreaper();
    // Before any thread exists, so the DAP reader threads inherit it.
    let raised = procfs::raise_harness_priority();
    procfs::TARGETS_IN_OWN_SESSION.store(!cli.same_session, std::sync::atomic::Ordering::Relaxed);

    let mut peers = Vec::new();
    let mut paths = BTreeMap::new();
    let mut skipped = Vec::new();
    for &p in &cli.peers {
        if peers.contains(&p) {
            continue;
        }
        match peers::locate(p, cli.latch.as_deref()) {
            Ok(path) => {
                paths.insert(p, path);
                peers.push(p);
            }
            Err(why) => {
                eprintln!("skipping {why}");
                skipped.push(why);
            }
        }
    }
    anyhow::ensure!(!peers.is_empty(), "no peer to run");

    let mut scenarios = cli.sizes.clone();
    let mut big = None;
    if scenarios.iter().any(|s| {
        matches!(
            s,
            Scenario::BigBinary | Scenario::SourceBreakpoints | Scenario::ValuesBig
        )
    }) {
        match BigBinary::locate(cli.big_binary.as_deref()) {
            Ok(b) => big = Some(b),
            Err(why) => {
                eprintln!("skipping {why}");
                skipped.push(why);
                scenarios.retain(|s| {
                    !matches!(
                        s,
                        Scenario::BigBinary | Scenario::SourceBreakpoints | Scenario::ValuesBig
                    )
                });
            }
        }
    }
    let mut go = None;
    if scenarios
        .iter()
        .any(|s| matches!(s, Scenario::Go(_) | Scenario::Goroutines(_)))
    {
        match target::go_tool() {
            Ok(g) => go = Some(g),
            Err(why) => {
                eprintln!("skipping {why}");
                skipped.push(why);
                scenarios.retain(|s| !matches!(s, Scenario::Go(_) | Scenario::Goroutines(_)));
            }
        }
    }
    anyhow::ensure!(!scenarios.is_empty(), "no scenario to run");

    let dir = std::env::temp_dir().join(format!("latch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cpp = scenarios.contains(&Scenario::Values);
    let targets = Targets::build(&dir, big, go.as_deref(), cpp)?;
    let opts = RunOpts {
        timeout: Duration::from_secs(cli.timeout),
        stop_on_entry: !cli.no_stop_on_entry,
        stacks: !cli.no_stacks,
        log_dir: dir.clone(),
        warm_cache: cli.warm_cache,
        breakpoints: cli.breakpoints,
        step: cli.step,
        launch_lib_breakpoint: cli.launch_lib_breakpoint,
    };

    let mut versions: BTreeMap<Peer, String> = peers
        .iter()
        .filter_map(|&p| Some((p, peers::version_of(p, &paths[&p])?)))
        .collect();
    let mut cells: BTreeMap<(usize, Peer), Cell> = BTreeMap::new();
    let load_before = procfs::loadavg();

    let runs: Vec<usize> = scenarios
        .iter()
        .map(|&sc| {
            if sc == Scenario::WaitFor {
                cli.waitfor_runs
            } else {
                cli.runs
            }
        })
        .collect();
    for (si, &sc) in scenarios.iter().enumerate() {
        for run in 1..=runs[si] {
            // Interleaved: latch, gdb, lldb-dap, latch, gdb, ... so a burst of
            // load from the machine's other tenants hits every peer alike.
            for &peer in &peers {
                if !peer.can_run(sc) {
                    continue;
                }
                // A peer that timed out without ever finishing here would
                // most likely time out again: one deadline per scenario is
                // enough to show it, and keeps the whole run bounded.
                if let Some(c) = cells.get_mut(&(si, peer)) {
                    if c.measures.is_empty() && !c.timeouts.is_empty() {
                        if !c.notes.iter().any(|n| n == SKIPPED_AFTER_TIMEOUT) {
                            c.notes.push(SKIPPED_AFTER_TIMEOUT.into());
                        }
                        continue;
                    }
                }
                let r = run_one(&targets, sc, peer, &paths[&peer], &opts);
                eprintln!(
                    "[{}] run {run}/{} {:<9} {}",
                    sc.title(),
                    runs[si],
                    peer.name(),
                    summary(&r)
                );
                for n in &r.notes {
                    eprintln!("    {n}");
                }
                if let Some(v) = &r.version {
                    versions.entry(peer).or_insert_with(|| v.clone());
                }
                cells.entry((si, peer)).or_default().add(r);
            }
        }
    }

    let report = Report {
        header: header(
            &cli,
            &peers,
            &paths,
            &versions,
            &targets,
            &Plan {
                scenarios: &scenarios,
                skipped: &skipped,
            },
            &Conditions {
                load: [load_before, procfs::loadavg()],
                raised,
            },
        ),
        peers,
        cells,
        scenarios,
        runs,
    };
    let md = report.markdown();
    println!("{md}");
    if let Some(path) = &cli.markdown {
        std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if cli.keep_logs {
        eprintln!("logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// The note of a peer whose remaining runs of a scenario were skipped.
const SKIPPED_AFTER_TIMEOUT: &str =
    "the remaining runs were skipped: the first timed out and none had finished";

/// One peer on one fresh target. A fresh target per run means no run
/// inherits damage (a stopped or still-traced target) from the previous one.
fn run_one(
    targets: &Targets,
    sc: Scenario,
    peer: Peer,
    path: &Path,
    opts: &RunOpts,
) -> report::RunResult {
    if sc == Scenario::WaitFor {
        // The target is started by the driver, once the adapter waits.
        let args: &[&str] = if peer == Peer::Latch { &["dap"] } else { &[] };
        let r = peers::run_waitfor(peer, path, args, targets, opts);
        reap_strays();
        return r;
    }
    if sc.is_launch() {
        // The debugger starts the program itself.
        let r = match peer {
            Peer::Latch => peers::launch::run_dap(peer, path, &["dap"], targets, sc, opts),
            Peer::LldbDap => peers::launch::run_dap(peer, path, &[], targets, sc, opts),
            Peer::Gdb | Peer::GdbBt => peers::launch::run_gdb(path, targets, sc, opts),
            Peer::Delve => unreachable!("Delve runs only the goroutines scenario"),
        };
        reap_strays();
        return r;
    }
    let mut target = match targets.spawn(sc, Instant::now() + opts.timeout) {
        Ok(t) => t,
        Err(e) => {
            return report::RunResult {
                // The harness failed, not the peer; say so in the table.
                outcome: Outcome::Failed(format!("harness, not the peer: {e:#}")),
                notes: vec![],
                version: None,
            };
        }
    };
    let r = match (peer, sc) {
        (Peer::Latch, Scenario::ChurnRun(secs)) => {
            peers::run_running(peer, path, &["dap"], &mut target, secs, opts)
        }
        (Peer::LldbDap, Scenario::ChurnRun(secs)) => {
            peers::run_running(peer, path, &[], &mut target, secs, opts)
        }
        (
            Peer::Latch | Peer::LldbDap,
            Scenario::Hit(_) | Scenario::Hot | Scenario::HotCondition | Scenario::SourceBreakpoints,
        ) => {
            let args: &[&str] = if peer == Peer::Latch { &["dap"] } else { &[] };
            match sc {
                Scenario::Hit(_) => peers::bp::run_dap_hit(peer, path, args, &mut target, opts),
                Scenario::Hot => peers::bp::run_dap_hot(
                    peer,
                    path,
                    args,
                    &mut target,
                    opts,
                    peers::bp::HotBreakpoint::HitCount,
                ),
                Scenario::HotCondition => peers::bp::run_dap_hot(
                    peer,
                    path,
                    args,
                    &mut target,
                    opts,
                    peers::bp::HotBreakpoint::Condition,
                ),
                _ => peers::bp::run_dap_lines(peer, path, args, &mut target, opts),
            }
        }
        (Peer::Latch | Peer::LldbDap, Scenario::ValuesBig | Scenario::Values) => {
            let args: &[&str] = if peer == Peer::Latch { &["dap"] } else { &[] };
            if sc == Scenario::ValuesBig {
                peers::values::run_dap_big(peer, path, args, &mut target, opts)
            } else {
                peers::values::run_dap_cpp(peer, path, args, &mut target, opts)
            }
        }
        (Peer::Gdb, Scenario::ValuesBig) => peers::values::run_gdb_big(path, &mut target, opts),
        (Peer::Gdb, Scenario::Values) => peers::values::run_gdb_cpp(path, &mut target, opts),
        (Peer::Gdb, Scenario::Hit(_)) => peers::bp::run_gdb_hit(path, &mut target, opts),
        (Peer::Gdb, Scenario::Hot) => {
            peers::bp::run_gdb_hot(path, &mut target, opts, peers::bp::HotBreakpoint::HitCount)
        }
        (Peer::Gdb, Scenario::HotCondition) => {
            peers::bp::run_gdb_hot(path, &mut target, opts, peers::bp::HotBreakpoint::Condition)
        }
        (Peer::Gdb, Scenario::SourceBreakpoints) => {
            peers::bp::run_gdb_lines(path, &mut target, opts)
        }
        // Delve runs nothing else (`Peer::can_run`).
        (Peer::Latch, Scenario::Goroutines(_)) | (Peer::Delve, _) => {
            peers::goroutines::run(peer, path, &mut target, opts)
        }
        (Peer::Latch, _) => peers::run_dap(peer, path, &["dap"], &mut target, sc, opts),
        (Peer::LldbDap, _) => peers::run_dap(peer, path, &[], &mut target, sc, opts),
        (Peer::Gdb | Peer::GdbBt, _) => peers::run_gdb(peer, path, &mut target, sc, opts),
    };
    drop(target);
    reap_strays();
    r
}

/// As a subreaper we may inherit exited grandchildren nobody waited for;
/// collect them so they do not pile up over hundreds of runs. Safe: the
/// target of this run has already been reaped by its Drop.
fn reap_strays() {
    loop {
        let mut status = 0;
        // SAFETY: plain syscall with a pointer to a local.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
}

fn summary(r: &report::RunResult) -> String {
    match &r.outcome {
        Outcome::Ok(m) => {
            let mut s = String::new();
            for (row, label) in [
                (Row::StartToMain, "start→main"),
                (Row::StartToLibraryBreakpoint, "start→lib bp"),
                (Row::LaunchToStopped, "launch→stopped"),
                (Row::HitToStopped, "hit→stopped"),
                (Row::NextInstruction, "nexti"),
                (Row::NextLine, "next"),
                (Row::F10Round, "F10 round"),
                (Row::SetSourceBreakpoints, "100 bps"),
                (Row::AttachStopped, "attach"),
                (Row::ExecToStopped, "exec→stop"),
                (Row::Threads, "threads"),
                (Row::AllStacks, "stacks"),
                (Row::FirstStack, "1st stack"),
                (Row::SecondStack, "2nd stack"),
                (Row::Detach, "detach"),
                (Row::Terminate, "terminate"),
                (Row::Session, "session"),
                (Row::Cpu, "cpu"),
            ] {
                if let Some(v) = m.0.get(&row) {
                    let _ = write!(s, "{label} {v:.1} ms  ");
                }
            }
            if let Some(v) = m.0.get(&Row::BreakpointsVerified) {
                let _ = write!(s, "verified {v}  ");
            }
            for (row, label) in [
                (Row::HotBaselinePerSec, "calls/s alone"),
                (Row::HotCallsPerSec, "calls/s with bp"),
            ] {
                if let Some(v) = m.0.get(&row) {
                    let _ = write!(s, "{label} {v:.0}  ");
                }
            }
            if let Some(v) = m.0.get(&Row::StopLine) {
                let _ = write!(s, "line {v}  ");
            }
            if let Some(v) = m.0.get(&Row::Frames) {
                let _ = write!(s, "frames {v}  ");
            }
            if let Some(v) = m.0.get(&Row::LinesBeforeStop) {
                let _ = write!(s, "lines before stop {v}  ");
            }
            for (row, label) in [
                (Row::ThreadEventsPerSec, "thread events/s"),
                (Row::TargetThreadsPerSec, "target threads/s"),
            ] {
                if let Some(v) = m.0.get(&row) {
                    let _ = write!(s, "{label} {v:.0}  ");
                }
            }
            for (row, label) in [
                (Row::AdapterCpuRunning, "adapter cpu running"),
                (Row::ClientCpu, "client cpu"),
            ] {
                if let Some(v) = m.0.get(&row) {
                    let _ = write!(s, "{label} {v:.1} ms  ");
                }
            }
            if let Some(v) = m.0.get(&Row::BytesToClient) {
                let _ = write!(s, "bytes {v:.0}  ");
            }
            if let Some(v) = m.0.get(&Row::PeakRss) {
                let _ = write!(s, "rss {v:.1} MiB");
            }
            s
        }
        Outcome::Timeout(w) => format!("TIMEOUT: {w}"),
        Outcome::Failed(w) => format!("FAILED: {w}"),
    }
}

/// `go version`'s words after "go version", e.g. "go1.19.8 linux/amd64".
fn go_version() -> Option<String> {
    let go = target::go_tool().ok()?;
    let out = std::process::Command::new(go)
        .arg("version")
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    Some(s.trim().trim_start_matches("go version ").to_string())
}

/// What was run, after leaving out what could not be.
struct Plan<'a> {
    scenarios: &'a [Scenario],
    /// Peers and scenarios left out, each with how to get it.
    skipped: &'a [String],
}

/// How the machine and the harness were while measuring.
struct Conditions {
    /// Load averages at the start and at the end of the run.
    load: [String; 2],
    /// Whether the harness runs at [`procfs::HARNESS_NICE`].
    raised: bool,
}

fn header(
    cli: &Cli,
    peers: &[Peer],
    paths: &BTreeMap<Peer, PathBuf>,
    versions: &BTreeMap<Peer, String>,
    targets: &Targets,
    plan: &Plan,
    conditions: &Conditions,
) -> String {
    let &Plan { scenarios, skipped } = plan;
    let Conditions { load, raised } = conditions;
    let m = procfs::machine();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Show the documented way to run it rather than the target-dir path.
    let command = format!("cargo run --release -p latch-bench -- {}", args.join(" "));
    let mut h = String::from("## latch benchmark\n\n");
    let _ = writeln!(h, "- date: {date}");
    let _ = writeln!(
        h,
        "- machine: {} CPUs, {}, Linux {}",
        m.nproc, m.cpu, m.kernel
    );
    let spinners = cli
        .sizes
        .iter()
        .filter_map(|s| match s {
            Scenario::Spinning(n) => Some(*n),
            _ => None,
        })
        .max();
    let _ = writeln!(
        h,
        "- load average (1, 5, 15 min): {} at the start, {} at the end{}",
        load[0],
        load[1],
        spinners.map_or(String::new(), |n| format!(
            " (the {n} spinning threads of this run's own targets add up to {n} to it)"
        ))
    );
    let _ = writeln!(h, "- command: `{}`", command.trim_end());
    // SAFETY: geteuid cannot fail.
    let _ = writeln!(h, "- euid: {}", unsafe { libc::geteuid() });
    let _ = writeln!(
        h,
        "- harness priority: {} (debuggers and targets always start at nice 0)",
        if *raised {
            format!("nice {}", procfs::HARNESS_NICE)
        } else {
            "nice 0 (raising it was not permitted: timings next to spinning threads include the harness's own wake-up delays)".into()
        }
    );
    let autogroup = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
        .map_or("unknown".into(), |v| v.trim().to_string());
    let _ = writeln!(
        h,
        "- sessions: {} (kernel.sched_autogroup_enabled = {autogroup}: the kernel shares CPU \
         between sessions first, so a busy target in the debugger's session slows the \
         debugger's own start)",
        if procfs::TARGETS_IN_OWN_SESSION.load(std::sync::atomic::Ordering::Relaxed) {
            "every target runs in a session of its own (`setsid`), as a program started in \
             another terminal or as a service does; debuggers run in the harness's"
        } else {
            "targets and debuggers share the harness's session (`--same-session`)"
        }
    );
    for p in peers {
        let v = versions
            .get(p)
            .map_or("version unknown".into(), |v| v.clone());
        let _ = writeln!(h, "- {}: `{}` ({v})", p.name(), paths[p].display());
    }
    if let Some(b) = &targets.big {
        let _ = writeln!(h, "- large binary: {}", b.describe());
    }
    for s in skipped {
        let _ = writeln!(h, "- **skipped** {s}");
    }
    let _ = writeln!(
        h,
        "- method: a fresh target per run (C targets built with `cc -O1 -g -pthread`, attached \
         once it printed `ready`), peers interleaved run by run, medians of {} runs (waitFor: \
         {}). latch (`latch dap`) \
         and lldb-dap (`lldb-dap-19`) driven over DAP on stdio: `initialize`, `attach {{pid, \
         stopOnEntry: {}}}`, `configurationDone`, `threads`, `disconnect {{terminateDebuggee: \
         false}}`; \"all threads stopped\" is the latest of the attach response, the \
         configurationDone response{}. {}{}gdb timed as a whole: `gdb -nx -iex 'set debuginfod \
         enabled off' -batch -p PID -ex 'info threads'` (gdb + bt adds `-ex 'thread apply all \
         bt'`; on the large binary gdb + bt is `-ex bt` alone); gdb's \"start → threads\" is \
         when a python print of CLOCK_MONOTONIC that follows `info threads` ran, and gdb's \
         \"attach until all threads stopped\" runs from such a print in `-iex` (before `-p`'s \
         attach) to one in the first `-ex` (after it; gdb reads symbols during its attach). CPU is user+sys from wait4 rusage of the debugger and its descendants; memory is \
         VmHWM of the adapter plus its descendants (lldb-server) just before `disconnect`, and \
         ru_maxrss for gdb. After every detach /proc is checked: no thread in t/T, TracerPid 0; \
         targets that print progress (short-lived, Go, waitFor's counter) must print on.",
        cli.runs,
        cli.waitfor_runs,
        !cli.no_stop_on_entry,
        if cli.no_stop_on_entry {
            ""
        } else {
            " and the first `stopped` event with allThreadsStopped"
        },
        if cli.warm_cache {
            "latch's on-disk cache of inflated debug sections is on (--warm-cache): every run \
             after the first finds libc's debug sections inflated. "
        } else {
            "latch runs with its on-disk cache of inflated debug sections off \
             (`LATCH_CACHE_DIR=`): every run inflates them, as a first attach does. "
        },
        if cli.no_stacks {
            "No stack traces on the thread targets (--no-stacks). "
        } else {
            "After `threads`, one `stackTrace {threadId, startFrame: 0, levels: 0}` per thread, \
             all sent back to back, timed from the first request to the last response. "
        }
    );
    let _ = writeln!(
        h,
        "- deadline of one peer's session: {} s (`--timeout`); past it the peer and the target \
         are killed, the run counts as timed out, and a peer none of whose runs of a scenario \
         finished skips that scenario's remaining runs.",
        cli.timeout
    );
    if scenarios.contains(&Scenario::ShortLived) {
        let _ = writeln!(
            h,
            "- short-lived threads (`targets/churn.c`): a spawner thread starts a detached thread \
             every ~100 µs that sleeps ~0.5 ms and exits; threads are born and die throughout the \
             session. After the detach the main thread must remain and the spawner must go on \
             (it prints a line every 500 threads)."
        );
    }
    if let Some(Scenario::ChurnRun(secs)) = scenarios
        .iter()
        .find(|s| matches!(s, Scenario::ChurnRun(_)))
    {
        let _ = writeln!(
            h,
            "- short-lived threads left running (`targets/churn.c`, as above): `attach {{pid, \
             stopOnEntry: false}}`, `configurationDone`, then {secs} s of running during which \
             the client reads every message and parses it in full, as an editor does. Counted \
             over those {secs} s: `thread` and other events per second, the bytes the adapter \
             wrote (headers and bodies), the adapter's CPU (user+sys of it and its \
             descendants, lldb-server, from /proc/PID/stat, 10 ms ticks), the client's CPU \
             (its reader thread, which frames and parses, plus the thread that consumes the \
             messages, from their thread CPU clocks), and the threads the target made (its \
             own count). Then `disconnect`. gdb sits it out."
        );
    }
    if let Some(Scenario::Go(n)) = scenarios.iter().find(|s| matches!(s, Scenario::Go(_))) {
        let _ = writeln!(
            h,
            "- Go (`targets/go`, built with {}): {n} goroutines blocked (half on a channel, half \
             in `time.Sleep`) and 2 spinning, on the runtime's few OS threads; ready once its \
             thread count is stable for 200 ms. Go may start OS threads after a stop, so after \
             the detach every old thread must remain and new ones are allowed; it must go on \
             printing (a line every 20 ms).",
            go_version().unwrap_or_else(|| "go".into())
        );
    }
    if let Some(Scenario::Goroutines(n)) = scenarios
        .iter()
        .find(|s| matches!(s, Scenario::Goroutines(_)))
    {
        let _ = writeln!(
            h,
            "- Goroutines (issue 16; the same `targets/go` binary, built with {}, {n} blocked + 2 \
             busy): latch gets `attach {{pid, stopOnEntry: true}}` (its goroutine view is the \
             default for a Go program; `maxGoroutines` left at its default, 1000), Delve (`dlv \
             dap --listen 127.0.0.1:0`, over TCP) `attach {{mode: \"local\", processId, \
             stopOnEntry: true}}`; attach until stopped is timed as for the thread rows (the \
             latest of the attach and configurationDone responses and the `stopped` event). \
             Then `threads` (the goroutine list: how many each lists is its own row), \
             `stackTrace {{levels: 0}}` of one parked goroutine (the middle one of the listed \
             ids in id order: a blocked worker for both; its stack must have a `main.` frame), \
             then the first 100 goroutines of the `threads` answer, pipelined, then the same \
             100 one at a time. Peak memory as for the thread rows (VmHWM of the adapter and \
             its descendants, just before `disconnect`). gdb and lldb-dap sit it out.",
            go_version().unwrap_or_else(|| "go".into())
        );
    }
    if scenarios.contains(&Scenario::WaitFor) {
        let _ = writeln!(
            h,
            "- waitFor (`targets/counter.c`): latch gets `attach {{waitFor: \"{}\", \
             stopOnEntry: true}}`, lldb-dap `attach {{waitFor: true, program: PATH, stopOnEntry: \
             true}}`, before the counter exists; once the adapter's `output` says it waits (and \
             {} ms more), the counter is started. It prints a line every ms from the first \
             statement of `main()`; when the stop is reported its stdout pipe is drained: 0 lines \
             means it was caught before `main()`. gdb has no waitFor on Linux.",
            target::COUNTER_NAME,
            peers::WAITFOR_SETTLE.as_millis()
        );
    }
    if scenarios.iter().any(|s| {
        matches!(
            s,
            Scenario::Hit(_) | Scenario::Hot | Scenario::HotCondition | Scenario::SourceBreakpoints
        )
    }) {
        let _ = writeln!(
            h,
            "- breakpoints (`bp:N`, `hot`, `hot-cond`, `bp-lines`): latch and lldb-dap get `attach {{pid, \
             stopOnEntry: false}}`, the breakpoint between `initialized` and \
             `configurationDone` as an editor sends it, and run on; gdb is driven over MI \
             (`gdb -nx -q --interpreter=mi3`, `mi-async on`, all-stop): `-target-attach`, \
             `-break-insert`, `-exec-continue`. Breakpoints {} (`--breakpoints`); lldb-dap 19 \
             has no instruction breakpoints: its are always `setFunctionBreakpoints` by name. `bp:N` (`threads bp N`: N sleeping threads, \
             the main thread calls `bench_hit` when the benchmark writes `h` to its stdin): the \
             trigger time is taken just before that write, the end is the `stopped` event (gdb: \
             its `*stopped` record); {} hits a run, their median; after every stop the editor's \
             `threads`, `stackTrace` (20 levels), `scopes`, `variables`; on the last hit `next` \
             ({}) until its `stopped`, then the F10 round (`next` → `stopped` → `threads` → \
             `stackTrace` → `scopes` → `variables`, one after the other; gdb sits it out). `hot` \
             (`threads hot 0`: one thread calls `bench_hot` in a loop and counts its calls): the \
             count is read over {} s before the attach and again with a breakpoint there whose \
             hit condition `{}` (gdb: `-break-insert -i {}`, an ignore count) never stops within \
             that window. `hot-cond`: the same loop and windows, the breakpoint's `condition` \
             `{}` instead (gdb: `-break-insert -c`), never true but decided by reading the \
             target's global at every hit; before the window, in the same session, a control: \
             the breakpoint is first set with `{}` (true) and must stop there (`stopped` with a \
             breakpoint reason; gdb `breakpoint-hit`), then set again with the false condition \
             (gdb: `-break-condition`) and continued; a failed control or a stop in the window \
             fails the run, so a peer that ignores conditions cannot look fast. `bp-lines`: the large binary, right after `initialized` (no stack asked \
             for: latch has read no DWARF), {} `setBreakpoints` of {} lines each (single-line \
             `let` statements of latch's own sources), sent back to back, timed from the first \
             request to the last response; gdb: `-break-insert FILE:LINE` × {}, after its attach.",
            match cli.breakpoints {
                peers::bp::BreakpointsBy::Address => {
                    "by address, printed by the target: latch `setInstructionBreakpoints`, gdb \
                     `-break-insert *ADDR`"
                }
                peers::bp::BreakpointsBy::Function => {
                    "by function name: latch `setFunctionBreakpoints`, gdb `-break-insert NAME`"
                }
            },
            peers::bp::HITS,
            match cli.step {
                peers::bp::Step::Instruction => "`granularity: instruction`; gdb `-exec-next-instruction`",
                peers::bp::Step::Line => "one source line; gdb `-exec-next`",
            },
            peers::bp::HOT_WINDOW.as_secs(),
            peers::bp::HOT_HIT_CONDITION,
            peers::bp::HOT_HIT_CONDITION,
            peers::bp::HOT_FALSE_CONDITION,
            peers::bp::HOT_TRUE_CONDITION,
            peers::bp::LINE_FILES,
            peers::bp::LINES_PER_FILE,
            peers::bp::LINE_FILES * peers::bp::LINES_PER_FILE,
        );
    }
    if scenarios.iter().any(|s| s.is_launch()) {
        let _ = writeln!(
            h,
            "- launch (`launch-main`, `launch-lib`): the debugger starts the program itself, \
             a fresh debugger per run: `targets/launch.c` linked against a shared library of \
             its own (`targets/launchlib.c`, `liblaunchbench.so`, `cc -O1 -g -fPIC -shared`, \
             found through the program's rpath), whose first line of `main` calls `{lib}` in \
             that library. `launch-main`: latch gets `launch {{program, stopAtMain: true}}` \
             (stopped reason `entry`); lldb-dap 19, whose launch has no such argument, \
             `launch {{program, stopOnEntry: false}}` and `setFunctionBreakpoints` `main` \
             between `initialized` and `configurationDone`; gdb `break main`. `launch-lib` \
             (`--launch-lib-breakpoint {kind}`): latch and lldb-dap {lib_bp} there, gdb \
             {gdb_bp} (pending: the library is loaded by `run`). Times run from the debugger's spawn \
             (DESIGN §8: start → the answer the user asked for) on one clock \
             (CLOCK_MONOTONIC): the DAP peers' stop is the latest of the `launch` response, \
             the `configurationDone` response and the `stopped` event; gdb runs in batch mode, \
             `gdb -nx -iex 'set debuginfod enabled off' -iex 'set breakpoint pending on' \
             -batch -ex CLOCK -ex 'file PROGRAM' -ex 'break FUNCTION' -ex run -ex CLOCK` (its \
             default `startup-with-shell on`), and its stop is when the python print of \
             CLOCK_MONOTONIC after `run` ran. Untimed after the stop: the DAP peers' \
             stopped thread must be the launched program and the top frame of its \
             `stackTrace` (1 level) the function asked for (gdb: its `Breakpoint 1, \
             FUNCTION` line); then `disconnect {{terminateDebuggee: true}}` (gdb: the end of \
             `-batch`, which kills the program), and the program must be gone 2 s later. \
             Memory leaves the program out (adapter plus lldb-server).",
            lib = target::LAUNCH_LIB_FUNCTION,
            kind = match cli.launch_lib_breakpoint {
                peers::launch::LibBreakpoint::Function => "function",
                peers::launch::LibBreakpoint::Line => "line",
            },
            lib_bp = match cli.launch_lib_breakpoint {
                peers::launch::LibBreakpoint::Function => format!(
                    "`setFunctionBreakpoints` `{}`",
                    target::LAUNCH_LIB_FUNCTION
                ),
                peers::launch::LibBreakpoint::Line => format!(
                    "`setBreakpoints` on `{}` line {} (its first statement)",
                    target::LAUNCH_LIB_SOURCE,
                    target::launch_lib_line()
                ),
            },
            gdb_bp = match cli.launch_lib_breakpoint {
                peers::launch::LibBreakpoint::Function => {
                    format!("`break {}`", target::LAUNCH_LIB_FUNCTION)
                }
                peers::launch::LibBreakpoint::Line => format!(
                    "`break {}:{}`",
                    target::LAUNCH_LIB_SOURCE,
                    target::launch_lib_line()
                ),
            },
        );
    }
    if scenarios.contains(&Scenario::ValuesBig) {
        let (file, line) = peers::values::big_breakpoint_line()
            .map_or(("codec.rs".into(), 0), |(p, l)| {
                (p.display().to_string(), l)
            });
        let _ = writeln!(
            h,
            "- values on the large binary (`values-big`, issue 15): a fresh debugger and target \
             per run; latch and lldb-dap get `attach {{pid, stopOnEntry: false}}` and \
             `setBreakpoints` on `{file}` line {line} (in `FrameDecoder::next_frame`, its \
             locals live) before `configurationDone`; gdb over MI `-break-insert FILE:LINE`. \
             The benchmark writes a DAP frame to the target's stdin; its reader thread stops \
             there. Then `threads`, `stackTrace` (20 levels), and the timed `scopes` of frame 0 \
             with `variables` of its argument and local scopes (latch `Arguments` and \
             `Locals`, lldb-dap `Locals`), one after the other, cold (gdb: \
             `-stack-list-variables --simple-values`, its symbols read during the attach: \
             compare *start → frame 0's variables shown*)."
        );
    }
    if scenarios.contains(&Scenario::Values) {
        let _ = writeln!(
            h,
            "- values (`values`, issue 15): `targets/values.cpp` (`c++ -O0 -g`), a \
             `std::vector<int>` of {} elements (element i holds i) and a two-node list, \
             sleeping in `pause()`; `attach {{pid, stopOnEntry: true}}`, the stack of the main \
             thread, main's `Locals`, then `v` expanded page by page as VS Code does: \
             `variables {{filter: indexed, start, count: {}}}` for {} pages spread evenly \
             from the first to the last, each after the previous answer, every element \
             checked (gdb: `-enable-pretty-printing`, `-var-create` and `-var-list-children \
             --simple-values FROM TO`, as IDEs drive it); resident memory (VmRSS of the \
             debugger and its descendants) after the first and the last page. Then \
             `evaluate {{expression: \"{}\", context: hover}}` once (warm-up, checked to be \
             42), {} times one at a time and {} times pipelined (gdb: \
             `-data-evaluate-expression`); times per request.",
            target::VALUES_ELEMENTS,
            peers::values::PAGE,
            peers::values::PAGES,
            peers::values::HOVER,
            peers::values::HOVERS,
            peers::values::HOVERS,
        );
    }
    if scenarios.contains(&Scenario::BigBinary) {
        let _ = writeln!(
            h,
            "- large binary: a fresh debugger and a fresh target per run, attached once all the \
             target's threads sleep; after `threads`, `stackTrace` of the main thread (cold: the \
             adapter has not read the binary before; the page cache is warm after the first run, \
             for every peer alike), then the same request again (warm)."
        );
    }
    h
}
