//! Launch (issue 17's speed rows), driven as an editor drives it: the debugger starts
//! the program itself and the user waits for the first stop.
//!
//! The program is the launch target (`targets/launch.c`), linked against a shared library
//! of its own (`targets/launchlib.c`) that the dynamic loader loads at startup; the first
//! line of its `main` calls [`LAUNCH_LIB_FUNCTION`] in that library.
//!
//! - `launch-main`: stop at the first line of `main`. latch: `launch {program,
//!   stopAtMain: true}` (its `stopped` reason is `entry`); lldb-dap 19, whose launch has
//!   no such argument: `launch {program, stopOnEntry: false}` and `setFunctionBreakpoints`
//!   `main` between `initialized` and `configurationDone`; gdb: `break main`, `run`.
//! - `launch-lib`: stop at the breakpoint on [`LAUNCH_LIB_FUNCTION`], set before the
//!   library is loaded. latch and lldb-dap: `setFunctionBreakpoints` between
//!   `initialized` and `configurationDone`; gdb: `break bench_lib_first` (pending), `run`.
//!
//! Every time runs on one clock, CLOCK_MONOTONIC (Rust's `Instant`, and gdb's python
//! `time.clock_gettime_ns`), from the debugger's spawn: DESIGN §8's "start → the answer
//! the user asked for". The DAP peers' stop is the latest of the `launch` response, the
//! `configurationDone` response and the `stopped` event; gdb's is a python print of the
//! clock in the `-ex` after `run`, which gdb runs once `run` has returned stopped.
//! Then, untimed, the DAP peers' stop is checked (`stackTrace`: the top frame is in the
//! function it should be; the stopped thread is the launched program), the session ends
//! with `disconnect {terminateDebuggee: true}` (gdb: the end of `-batch`, which kills
//! the program), and the program must be gone.

use super::{end_session, initialize, mib, ms, start_adapter, Peer, RunOpts};
use crate::dap::{check_success, Dap};
use crate::procfs;
use crate::report::{Measure, Outcome, Row, RunResult};
use crate::target::{launch_lib_line, Scenario, Targets, LAUNCH_LIB_FUNCTION, LAUNCH_LIB_SOURCE};
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How the breakpoint in the library (`launch-lib`) is set, for every peer alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LibBreakpoint {
    /// By function name: `setFunctionBreakpoints` (gdb: `break bench_lib_first`).
    Function,
    /// On the source line of the function's first statement: `setBreakpoints` (gdb:
    /// `break launchlib.c:LINE`).
    Line,
}

/// The breakpoint an editor sends with the launch.
#[derive(Debug, PartialEq)]
enum Breakpoint {
    Function(&'static str),
    Line(PathBuf, u32),
}

/// Where the program must stop: the function of the top frame.
pub fn stop_function(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::LaunchLibrary => LAUNCH_LIB_FUNCTION,
        _ => "main",
    }
}

/// The row of the stop for `scenario`.
fn stop_row(scenario: Scenario) -> Row {
    match scenario {
        Scenario::LaunchLibrary => Row::StartToLibraryBreakpoint,
        _ => Row::StartToMain,
    }
}

/// The `launch` arguments and the breakpoint (if any) an editor sends for `scenario` to
/// `peer`.
fn launch_request(
    peer: Peer,
    targets: &Targets,
    scenario: Scenario,
    lib: LibBreakpoint,
) -> (Value, Option<Breakpoint>) {
    let program = &targets.launch_bin;
    match (peer, scenario, lib) {
        (Peer::Latch, Scenario::LaunchMain, _) => {
            (json!({ "program": program, "stopAtMain": true }), None)
        }
        (_, Scenario::LaunchLibrary, LibBreakpoint::Line) => (
            json!({ "program": program, "stopOnEntry": false }),
            Some(Breakpoint::Line(
                targets.launch_lib_src.clone(),
                launch_lib_line(),
            )),
        ),
        _ => (
            json!({ "program": program, "stopOnEntry": false }),
            Some(Breakpoint::Function(stop_function(scenario))),
        ),
    }
}

/// Set `bp` as an editor does; an unverified answer is a note (pending until the library
/// is loaded is fine: the stop says whether it works).
fn set_breakpoint(
    dap: &mut Dap,
    bp: &Breakpoint,
    deadline: Instant,
    notes: &mut Vec<String>,
) -> Result<()> {
    let (command, args, what) = match bp {
        Breakpoint::Function(name) => (
            "setFunctionBreakpoints",
            json!({ "breakpoints": [{ "name": name }] }),
            name.to_string(),
        ),
        Breakpoint::Line(path, line) => (
            "setBreakpoints",
            json!({ "source": { "path": path }, "breakpoints": [{ "line": line }] }),
            format!("{}:{line}", path.display()),
        ),
    };
    let seq = dap.send(command, args)?;
    let (_, resp) = dap.response(seq, deadline, "the breakpoint's response")?;
    let b = &resp["body"]["breakpoints"][0];
    if b["verified"].as_bool() != Some(true) {
        notes.push(format!(
            "`{command}` {what}: not verified when set ({})",
            b["message"].as_str().unwrap_or("no message")
        ));
    }
    Ok(())
}

/// Why the program would not stop any more: it ended.
fn ended(dap: &Dap) -> Option<&'static str> {
    ["exited", "terminated"]
        .into_iter()
        .find(|e| dap.seen.events.contains_key(*e))
}

/// One launch over DAP: `initialize`, `launch`, the breakpoint, `configurationDone`,
/// until the stop; checked, then `disconnect {terminateDebuggee: true}`.
pub fn run_dap(
    peer: Peer,
    adapter: &Path,
    args: &[&str],
    targets: &Targets,
    scenario: Scenario,
    opts: &RunOpts,
) -> RunResult {
    let program = targets.launch_bin.as_path();
    let mut notes = Vec::new();
    let mut version = None;
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let log_name = format!("launch-{}", RUN.fetch_add(1, Ordering::Relaxed));
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let (pid, mut dap) = match start_adapter(peer, adapter, args, &log_name, opts) {
        Ok(started) => started,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    let mut tree = Vec::new();
    let mut launched = None;
    let result = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (t_init, v) = initialize(&mut dap, peer, deadline)?;
        version = v;
        m.0.insert(Row::Initialize, ms(t_init - t0));

        let (arguments, breakpoint) =
            launch_request(peer, targets, scenario, opts.launch_lib_breakpoint);
        let t_launch = Instant::now();
        let launch = dap.send("launch", arguments)?;
        dap.wait_until(deadline, "the `initialized` event", |s| {
            s.events.contains_key("initialized")
                || s.responses
                    .get(&launch)
                    .is_some_and(|r| r.1.success != Some(true))
        })?;
        if let Some((_, r)) = dap.seen.responses.get(&launch) {
            check_success(r.value())?;
        }
        if let Some(bp) = &breakpoint {
            set_breakpoint(&mut dap, bp, deadline, &mut notes)?;
        }
        let conf = dap.send("configurationDone", json!({}))?;
        dap.wait_until(deadline, "the `stopped` event", |s| {
            let answered = s.responses.contains_key(&launch) && s.responses.contains_key(&conf);
            (answered && !s.stops.is_empty())
                || ["exited", "terminated"]
                    .iter()
                    .any(|e| s.events.contains_key(*e))
                || [launch, conf].iter().any(|q| {
                    s.responses
                        .get(q)
                        .is_some_and(|r| r.1.success != Some(true))
                })
        })?;
        let t_launched = dap.answered_at(launch)?;
        let t_conf = dap.answered_at(conf)?;
        if dap.seen.stops.is_empty() {
            bail!(
                "the program ended (`{}` event) before any stop",
                ended(&dap).unwrap_or("?")
            );
        }
        let (t_stop, body) = dap.seen.stops[0].clone();
        let t_stopped = t_stop.max(t_launched).max(t_conf);
        m.0.insert(stop_row(scenario), ms(t_stopped - t0));
        m.0.insert(Row::LaunchToStopped, ms(t_stopped - t_launch));

        // Untimed: is it the stop asked for, in the program launched?
        let reason = body["reason"].as_str().unwrap_or("");
        let expected = match breakpoint {
            None => reason == "entry",
            Some(_) => reason.contains("breakpoint"),
        };
        if !expected {
            notes.push(format!("stopped with reason `{reason}`"));
        }
        let thread = body["threadId"]
            .as_i64()
            .ok_or_else(|| anyhow!("`stopped` event without threadId: {body}"))?;
        // The program is single-threaded: its stopped thread is its main thread.
        let program_pid = i32::try_from(thread)?;
        launched = Some(program_pid);
        check_launched(program_pid, program, &mut notes);
        let seq = dap.send(
            "stackTrace",
            json!({ "threadId": thread, "startFrame": 0, "levels": 1 }),
        )?;
        let (_, st) = dap.response(seq, deadline, "the `stackTrace` response")?;
        let frame = &st["body"]["stackFrames"][0];
        if let Some(line) = frame["line"].as_f64() {
            m.0.insert(Row::StopLine, line);
        }
        let top = frame["name"].as_str().unwrap_or("");
        let want = stop_function(scenario);
        if !is_function(top, want) {
            notes.push(format!(
                "**STOPPED ELSEWHERE**: top frame `{top}`, not `{want}`"
            ));
        }

        // Memory of the debugger and what it started, but not the program.
        tree = procfs::descendants(pid);
        let rss_kb: u64 = std::iter::once(pid)
            .chain(tree.iter().copied().filter(|&p| p != program_pid))
            .filter_map(procfs::vm_hwm_kb)
            .sum();
        m.0.insert(Row::PeakRss, mib(rss_kb));
        let t_sent = Instant::now();
        let disc = dap.send("disconnect", json!({ "terminateDebuggee": true }))?;
        let (t_disc, _) = dap.response(disc, deadline, "the `disconnect` response")?;
        m.0.insert(Row::Terminate, ms(t_disc - t_sent));
        Ok(m)
    })();
    // The adapter's descendants include the program: it is the adapter's to end, and
    // is checked below, not reaped as one of the adapter's helpers.
    tree.retain(|&p| Some(p) != launched);
    let (mut m, reaped) = match end_session(result, dap, pid, &tree, deadline, peer, &mut notes) {
        Ok(ended) => ended,
        Err(outcome) => {
            if let Some(p) = launched {
                procfs::kill(p, libc::SIGKILL);
            }
            return RunResult::ended(outcome, notes, version);
        }
    };
    m.0.insert(Row::Session, ms(reaped.at - t0));
    m.0.insert(Row::Cpu, ms(reaped.cpu));
    if let Some(p) = launched {
        check_program_gone(p, &mut notes);
    }
    RunResult {
        outcome: Outcome::Ok(m),
        notes,
        version,
    }
}

/// Whether a frame's name is `function` (lldb-dap and latch may add the module or the
/// arguments: `main`, `launchbench`main`, `bench_lib_first(n=1)`).
fn is_function(frame: &str, function: &str) -> bool {
    let name = frame.rsplit('`').next().unwrap_or(frame);
    let name = name.split('(').next().unwrap_or(name).trim();
    name == function
}

/// The stopped thread is the program's: its executable is the one launched.
fn check_launched(pid: i32, program: &Path, notes: &mut Vec<String>) {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
    let same = match (&exe, program.canonicalize()) {
        (Ok(exe), Ok(program)) => *exe == program,
        _ => false,
    };
    if !same {
        notes.push(format!(
            "**the stopped thread {pid} is not the launched program** (its executable: {exe:?})"
        ));
    }
}

/// After the session: the launched program must be gone (or a zombie for its reaper).
fn check_program_gone(pid: i32, notes: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match procfs::task_state(pid, pid) {
            None | Some('Z' | 'X') => return,
            Some(state) if Instant::now() >= deadline => {
                notes.push(format!(
                    "**PROGRAM LEFT** in state {state} 2 s after the session ended; killed it"
                ));
                procfs::kill(pid, libc::SIGKILL);
                return;
            }
            Some(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// The line of gdb's `Breakpoint 1, main (argc=1, ...) at /tmp/x/launchbench.c:17`.
fn gdb_stop_line(stop: &str) -> Option<u32> {
    stop.rsplit_once(':')?.1.trim().parse().ok()
}

/// Labels of gdb's clock prints (see [`super::gdb_clock`]).
const GDB_LAUNCH: &str = "launch";
const GDB_STOPPED: &str = "stopped";
const GDB_PID: &str = "latch-bench-pid";

/// gdb's command line for `scenario`: a clock print, `file`, `break`, `run`, a clock
/// print and the program's pid; `-batch` then kills the program and exits.
pub fn gdb_args(program: &Path, scenario: Scenario, lib: LibBreakpoint) -> Vec<String> {
    let mut a: Vec<String> = [
        "-nx",
        "-iex",
        "set debuginfod enabled off",
        // The library is not loaded before `run`: its breakpoint is pending until then.
        "-iex",
        "set breakpoint pending on",
        "-batch",
    ]
    .map(String::from)
    .to_vec();
    let commands = [
        super::gdb_clock(GDB_LAUNCH),
        format!("file {}", program.display()),
        match (scenario, lib) {
            (Scenario::LaunchLibrary, LibBreakpoint::Line) => {
                format!("break {}:{}", LAUNCH_LIB_SOURCE, launch_lib_line())
            }
            _ => format!("break {}", stop_function(scenario)),
        },
        "run".into(),
        super::gdb_clock(GDB_STOPPED),
        format!("python print('{GDB_PID}', gdb.selected_inferior().pid)"),
    ];
    for c in commands {
        a.extend(["-ex".into(), c]);
    }
    a
}

/// One launch with gdb in batch mode, timed on its clock prints; its output goes to a
/// file, read after it exited.
pub fn run_gdb(gdb: &Path, targets: &Targets, scenario: Scenario, opts: &RunOpts) -> RunResult {
    let program = targets.launch_bin.as_path();
    let mut notes = Vec::new();
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    let out_path = opts.log_dir.join(format!("gdb-launch-{n}.out"));
    let (out, err) = match (
        std::fs::File::create(&out_path),
        super::log_file(opts, &format!("gdb-launch-{n}.stderr")),
    ) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            return RunResult::ended(Outcome::Failed(format!("log file: {e}")), notes, None)
        }
    };
    let mut cmd = Command::new(gdb);
    procfs::normal_priority(&mut cmd)
        .args(gdb_args(program, scenario, opts.launch_lib_breakpoint))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let t0 = Instant::now();
    let started_ns = super::monotonic_ns();
    let pid = match cmd.spawn() {
        Ok(c) => c.id() as i32,
        Err(e) => {
            let outcome = Outcome::Failed(format!("cannot start gdb: {e}"));
            return RunResult::ended(outcome, notes, None);
        }
    };
    let reaped = match procfs::wait4_deadline(pid, t0 + opts.timeout) {
        Ok(Some(r)) => r,
        Ok(None) => {
            let extra = procfs::descendants(pid);
            super::kill_peer(pid, &extra);
            let outcome = Outcome::Timeout(format!("gdb still running after {:?}", opts.timeout));
            return RunResult::ended(outcome, notes, None);
        }
        Err(e) => return RunResult::ended(Outcome::Failed(format!("wait4 gdb: {e}")), notes, None),
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let r = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let want = stop_function(scenario);
        // "Breakpoint 1, main (argc=1, ...) at launchbench.c:18"
        let hit = format!("Breakpoint 1, {want} ");
        let Some(stop) = out.lines().find(|l| l.starts_with(&hit)) else {
            bail!(
                "gdb did not stop in {want}: {}",
                out.lines()
                    .filter(|l| !l.starts_with("latch-bench-"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
        };
        if let Some(line) = gdb_stop_line(stop) {
            m.0.insert(Row::StopLine, f64::from(line));
        }
        let launch = super::gdb_clock_at(&out, GDB_LAUNCH);
        let stopped = super::gdb_clock_at(&out, GDB_STOPPED)
            .ok_or_else(|| anyhow!("gdb printed no clock after `run`"))?;
        let start_to_stop = super::ns_between(started_ns, stopped)
            .ok_or_else(|| anyhow!("gdb's clock print came before its spawn"))?;
        m.0.insert(stop_row(scenario), start_to_stop);
        if let Some(l) = launch.and_then(|l| super::ns_between(l, stopped)) {
            m.0.insert(Row::LaunchToStopped, l);
        }
        m.0.insert(Row::Session, ms(reaped.at - t0));
        m.0.insert(Row::Cpu, ms(reaped.cpu));
        m.0.insert(Row::PeakRss, mib(reaped.maxrss_kb));
        if !reaped.exited_cleanly() {
            notes.push(format!("gdb {}", reaped.describe_status()));
        }
        let program_pid = out
            .lines()
            .find_map(|l| l.strip_prefix(GDB_PID))
            .and_then(|p| p.trim().parse::<i32>().ok());
        match program_pid {
            Some(p) if p > 0 => check_program_gone(p, &mut notes),
            _ => notes.push("gdb printed no pid for the program".into()),
        }
        Ok(m)
    })();
    match r {
        Ok(m) => RunResult {
            outcome: Outcome::Ok(m),
            notes,
            version: None,
        },
        Err(e) => RunResult::ended(super::outcome_of_error(e), notes, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_name_their_function() {
        assert!(is_function("main", "main"));
        assert!(is_function("launchbench`main", "main"));
        assert!(is_function("bench_lib_first(n=1)", "bench_lib_first"));
        assert!(!is_function("__libc_start_main", "main"));
        assert!(!is_function("", "main"));
    }

    #[test]
    fn gdb_says_the_line_of_its_stop() {
        let stop = "Breakpoint 1, main (argc=1, argv=0x7ffc) at /tmp/x/launchbench.c:17";
        assert_eq!(gdb_stop_line(stop), Some(17));
        assert_eq!(gdb_stop_line("Breakpoint 1, main ()"), None);
    }

    #[test]
    fn gdb_times_run_between_its_clock_prints() {
        let args = gdb_args(
            Path::new("/tmp/x/launchbench"),
            Scenario::LaunchLibrary,
            LibBreakpoint::Function,
        );
        let at = |needle: &str| args.iter().position(|a| a == needle).unwrap();
        let clock = |label: &str| {
            args.iter()
                .position(|a| a.contains(&format!("'latch-bench-{label}'")))
                .unwrap()
        };
        assert!(clock(GDB_LAUNCH) < at("file /tmp/x/launchbench"));
        assert!(at("break bench_lib_first") < at("run"));
        assert!(at("run") < clock(GDB_STOPPED));
        assert_eq!(args[at("run") - 1], "-ex");
        assert!(args.contains(&"set breakpoint pending on".to_string()));
        let args = gdb_args(
            Path::new("/tmp/x/launchbench"),
            Scenario::LaunchLibrary,
            LibBreakpoint::Line,
        );
        let line = format!("break launchlib.c:{}", launch_lib_line());
        assert!(args.contains(&line), "{args:?}");
    }

    #[test]
    fn latch_stops_at_main_by_its_argument_lldb_dap_by_a_breakpoint() {
        let mut t = Targets::none();
        t.launch_bin = "/d/launchbench".into();
        t.launch_lib_src = "/d/launchlib.c".into();
        let f = LibBreakpoint::Function;
        let (a, bp) = launch_request(Peer::Latch, &t, Scenario::LaunchMain, f);
        assert_eq!(a["stopAtMain"], true);
        assert_eq!(a["program"], "/d/launchbench");
        assert_eq!(bp, None);
        let (a, bp) = launch_request(Peer::LldbDap, &t, Scenario::LaunchMain, f);
        assert!(a.get("stopAtMain").is_none());
        assert_eq!(bp, Some(Breakpoint::Function("main")));
        let (_, bp) = launch_request(Peer::Latch, &t, Scenario::LaunchLibrary, f);
        assert_eq!(bp, Some(Breakpoint::Function(LAUNCH_LIB_FUNCTION)));
        let line = LibBreakpoint::Line;
        let (_, bp) = launch_request(Peer::LldbDap, &t, Scenario::LaunchLibrary, line);
        let want = Breakpoint::Line("/d/launchlib.c".into(), launch_lib_line());
        assert_eq!(bp, Some(want));
        // The main row never changes with the library's breakpoint kind.
        let (_, bp) = launch_request(Peer::Latch, &t, Scenario::LaunchMain, line);
        assert_eq!(bp, None);
    }
}
