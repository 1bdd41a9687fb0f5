//! The terminal commands: `latch attach` and `latch ps`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use crate::procfs::{self, Pid};
use crate::ptrace::{Backend, DetachMode};
use crate::symbols::service::after_cgo_call;
use crate::symbols::{Registers, StackFrame, Stacker};
use crate::waitfor::{timeout_message, Canceller, MatchMode, WaitError, WaitSpec, Waiter, Wording};
use crate::words::counted;

#[derive(Args, Debug)]
pub struct AttachOptions {
    /// The process to attach to.
    #[arg(required_unless_present = "waitfor", conflicts_with = "waitfor")]
    pub pid: Option<String>,
    /// Wait for a process whose name starts with NAME and attach to it as it starts.
    #[arg(long, value_name = "NAME")]
    pub waitfor: Option<String>,
    /// Match NAME against the full command line instead of the process name.
    #[arg(long, requires = "waitfor")]
    pub waitfor_cmdline: bool,
    /// Give up waiting after this many milliseconds.
    #[arg(long, value_name = "MS", requires = "waitfor")]
    pub waitfor_timeout: Option<u64>,
    /// How often to scan /proc when the kernel's process events are unavailable (ms).
    #[arg(long, value_name = "MS", default_value_t = 1, requires = "waitfor")]
    pub waitfor_interval: u64,
    /// Also take a matching process that is already running.
    #[arg(long, requires = "waitfor")]
    pub waitfor_existing: bool,
    /// Stay attached with every thread stopped for this many seconds before detaching.
    #[arg(long, value_name = "SECS", conflicts_with = "break_at")]
    pub hold: Option<f64>,
    /// Let the process run until a thread reaches FILE:LINE or FUNCTION, then print
    /// that thread's stack and the others', and detach (gdb's most common one-shot use).
    #[arg(long = "break", value_name = "FILE:LINE|FUNCTION")]
    pub break_at: Option<String>,
    /// With --break: give up after this many seconds (default: wait until Ctrl-C).
    #[arg(long, value_name = "SECS", requires = "break_at")]
    pub break_timeout: Option<f64>,
    /// A Go program: also list the runtime's own goroutines (the garbage collector's,
    /// the finalizer's...), which are otherwise counted in one line.
    #[arg(long)]
    pub all_goroutines: bool,
}

/// Where `--break` stops: `file.c:42` or a function name (`main`, `ns::f`, `main.run`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum BreakAt {
    Line(String, u32),
    Function(String),
}

impl BreakAt {
    fn parse(text: &str) -> anyhow::Result<BreakAt> {
        let text = text.trim();
        if text.is_empty() {
            bail!("--break needs FILE:LINE or a function name");
        }
        // `a.c:12` is a line; `ns::f` (and `C:\` style paths) are not, so the line is the
        // part after the last colon, and must be a number.
        match text.rsplit_once(':') {
            Some((file, line)) if !file.is_empty() && !file.ends_with(':') => {
                let line = line.trim().parse().map_err(|_| {
                    anyhow::anyhow!(
                        "--break {text}: `{line}` is not a line number (write FILE:LINE, e.g.                          main.c:42, or a function name)"
                    )
                })?;
                Ok(BreakAt::Line(file.to_string(), line))
            }
            _ => Ok(BreakAt::Function(text.to_string())),
        }
    }
}

/// Attach, print the process and its threads, optionally hold, detach.
pub fn attach(options: AttachOptions) -> anyhow::Result<ExitCode> {
    let stop = signal_flag()?;
    let (backend, _events) = Backend::spawn().context("starting the ptrace thread")?;
    if let Some(spec) = &options.break_at {
        // Bad input fails before anything is attached.
        BreakAt::parse(spec)?;
    }
    let handle = backend.handle();
    // Kept until the attach is done: see `Caught`.
    let mut _caught = None;
    let pid: i64 = match (&options.pid, &options.waitfor) {
        // What `latch attach "$(pgrep -n myprogram)"` passes when nothing matches.
        (Some(text), _) if text.trim().is_empty() => bail!(
            "no pid given (an empty argument, as `\"$(pgrep -n NAME)\"` gives when no such \
             program is running): the program is not running. `latch ps NAME` lists the \
             processes latch may attach to; `latch attach --waitfor NAME` waits for the \
             program to start and attaches as it does"
        ),
        (Some(text), _) => text.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "{text:?} is not a pid: a pid is a whole number (`latch ps` lists processes)"
            )
        })?,
        (None, Some(pattern)) => {
            handle.arm_for_attach(true);
            let caught = wait_for(pattern, &options, &stop)?;
            let pid = caught.pid;
            _caught = Some(caught);
            pid
        }
        (None, None) => bail!("give a pid or --waitfor NAME"),
    };
    let report = handle
        .attach_blocking(pid)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let mut focus = report.named_thread;
    let mut headline = None;
    if let Some(spec) = &options.break_at {
        match wait_for_hit(
            &handle,
            &report,
            spec,
            options.break_timeout,
            &stop,
            _events,
        ) {
            Ok(Some((tid, what))) => {
                focus = Some(tid);
                headline = Some(what);
            }
            Ok(None) => {
                handle.detach_blocking(DetachMode::Run);
                return Ok(ExitCode::FAILURE);
            }
            Err(err) => {
                handle.detach_blocking(DetachMode::Run);
                return Err(err);
            }
        }
    }
    let registers = handle.registers_blocking().unwrap_or_default();
    // Everything from here on is what the user waits for: nothing reads in the background.
    let _waited_for = crate::priority::wait_for_background();
    let mut stacker = Stacker::new(report.pid);
    let stacks: Vec<(Pid, Vec<StackFrame>)> = registers
        .iter()
        .map(|(tid, regs)| (*tid, stacker.stack(Registers::from_user_regs(regs))))
        .collect();
    let goroutines = read_goroutines(&mut stacker, &stacks, options.all_goroutines);
    // The threads whose stacks a goroutine group shows: not shown again alone, except
    // the one that hit the breakpoint, whose stack is what the user asked for.
    let folded: std::collections::BTreeMap<Pid, i64> = match &goroutines {
        Some(Ok(report)) => report
            .on_threads
            .iter()
            .filter(|(tid, _)| headline.is_none() || Some(**tid) != focus)
            .map(|(tid, id)| (*tid, *id))
            .collect(),
        _ => Default::default(),
    };

    let mut out = std::io::stdout().lock();
    // A leader that called pthread_exit has no readable exe; a live thread has the same.
    let exe = procfs::exe(report.pid)
        .or_else(|_| procfs::exe(report.main_tid))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".into());
    let mut print = || -> std::io::Result<()> {
        if let Some(what) = &headline {
            writeln!(out, "{what}")?;
        } else if let Some(note) = report.named_thread_note() {
            writeln!(out, "{note}")?;
        }
        writeln!(
            out,
            "process {} ({}) {}: {}, all stopped in {:.1} ms{}",
            report.pid,
            report.name,
            exe,
            counted(report.tids.len(), "thread", "threads"),
            report.elapsed.as_secs_f64() * 1000.0,
            if report.was_job_stopped {
                " (it was already stopped by job control)"
            } else {
                ""
            }
        )?;
        if let Some(note) = report.refused_note() {
            writeln!(out, "{note}")?;
        }
        if let Some(Err(why)) = &goroutines {
            writeln!(out, "{why}")?;
        }
        if !report.stragglers.is_empty() {
            writeln!(
                out,
                "{} not be stopped, blocked in the kernel (vfork or uninterruptible \
             sleep): {:?}",
                counted(report.stragglers.len(), "thread could", "threads could"),
                report.stragglers
            )?;
        }
        writeln!(
            out,
            "{:>8}  {:<16} {:<20} {:<18}  LOCATION",
            "TID", "NAME", "STATE", "PC"
        )?;
        let mut threads = handle.threads_blocking().unwrap_or_default();
        // The thread that hit the breakpoint or that the user named comes first, then
        // the main thread.
        threads.sort_by_key(|t| (Some(t.tid) != focus, !t.is_main, t.tid));
        for thread in &threads {
            let top = stack_of(&stacks, thread.tid).and_then(|s| s.first());
            let pc = top.map(|f| f.pc);
            let state = thread_state(report.pid, thread.tid);
            let location = top.map(short_location).unwrap_or_default();
            let mut marker = match (thread.is_main, Some(thread.tid) == focus) {
                (_, true) if headline.is_some() => " [hit the breakpoint]",
                (true, _) => " [main]",
                (false, true) => " [the thread named]",
                (false, false) => "",
            }
            .to_string();
            if let Some(Ok(report)) = &goroutines {
                if let Some(id) = report.on_threads.get(&thread.tid) {
                    marker += &format!(" [goroutine {id}]");
                }
            }
            writeln!(
                out,
                "{:>8}  {:<16} {:<20} {:<18}  {location}{marker}",
                thread.tid,
                thread.name,
                state,
                pc.map(|pc| format!("{pc:#018x}"))
                    .unwrap_or_else(|| "-".into()),
            )?;
        }
        if let Some(Ok(report)) = &goroutines {
            print_goroutines(&mut out, report)?;
        }
        for thread in threads.iter().filter(|t| !folded.contains_key(&t.tid)) {
            writeln!(out, "\nThread {} {:?}:", thread.tid, thread.name)?;
            for (level, frame) in stack_of(&stacks, thread.tid)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                writeln!(out, "  #{level:<3}{}", describe_frame(frame))?;
            }
        }
        // Files these stacks pass through that are not on disk as they were loaded.
        let replaced = stacker.replaced_files();
        if !replaced.is_empty() {
            writeln!(out)?;
        }
        for (path, note) in replaced {
            writeln!(out, "{path}: {note}")?;
        }
        out.flush()
    };
    match print() {
        Ok(()) => {}
        // `latch attach PID | head`: the reader has what it wanted. Detach and end as
        // quietly as the commands that die of SIGPIPE.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            handle.detach_blocking(DetachMode::Run);
            return Ok(ExitCode::SUCCESS);
        }
        Err(err) => return Err(err.into()),
    }
    if let Some(secs) = options.hold {
        writeln!(
            out,
            "holding all threads stopped for {secs} s (Ctrl-C to detach now)"
        )?;
        out.flush()?;
        let until = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
        while Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(
                Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())),
            );
        }
    }
    handle.detach_blocking(DetachMode::Run);
    // Detached already: a reader that left meanwhile changes nothing.
    let _ = if report.was_job_stopped {
        writeln!(
            out,
            "detached from {}; it was stopped by job control before the attach and is left \
             stopped, as it was (`kill -CONT {}` resumes it)",
            report.pid, report.pid
        )
    } else {
        writeln!(out, "detached from {}; it runs on", report.pid)
    };
    drop(backend);
    Ok(ExitCode::SUCCESS)
}

/// `--break`: resolves the place, lets the process run until a thread hits it, and
/// answers that thread with a line saying what it hit; `None` when the wait ended
/// otherwise (Ctrl-C, the timeout, the process's exit), said on stderr.
fn wait_for_hit(
    handle: &crate::ptrace::BackendHandle,
    report: &crate::ptrace::AttachReport,
    spec: &str,
    timeout: Option<f64>,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<crate::ptrace::BackendEvent>,
) -> anyhow::Result<Option<(Pid, String)>> {
    use crate::ptrace::{BackendEvent, StopReason, UserBreakpoint};
    let at = BreakAt::parse(spec)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let symbols = crate::symbols::SymbolService::spawn()?;
    symbols.attach(report.pid, None);
    let (addresses, place) = runtime.block_on(async {
        match &at {
            BreakAt::Line(file, line) => {
                let mut found = symbols.resolve_lines(file.clone(), vec![*line]).await;
                let found = found
                    .pop()
                    .map(|r| r.found)
                    .unwrap_or_else(|| Err(format!("no code for {file}:{line}")))
                    .map_err(|why| anyhow::anyhow!("--break {spec}: {why}"))?;
                let place = format!("{}:{}", found.file, found.line);
                Ok::<_, anyhow::Error>((found.addresses, place))
            }
            BreakAt::Function(name) => {
                let found = symbols
                    .resolve_function(name.clone())
                    .await
                    .map_err(|why| anyhow::anyhow!("--break {spec}: {why}"))?;
                let place = match found.first() {
                    Some(first) => first.name.clone(),
                    None => name.clone(),
                };
                Ok((found.iter().map(|f| f.address).collect(), place))
            }
        }
    })?;
    if addresses.is_empty() {
        bail!(
            "--break {spec}: no code found for it in process {}",
            report.pid
        );
    }
    let failures = runtime
        .block_on(handle.set_breakpoints(vec![UserBreakpoint {
            id: 1,
            addresses: addresses.clone(),
            hit_condition: None,
            condition: None,
            log_message: None,
            log: None,
        }]))
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    if failures
        .first()
        .is_some_and(|(_, failed)| failed.len() == addresses.len())
    {
        bail!(
            "--break {spec}: cannot write a breakpoint into process {}: {}",
            report.pid,
            failures[0].1[0].1
        );
    }
    runtime
        .block_on(handle.resume_all())
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    eprintln!(
        "waiting for a thread of process {} to reach {place} ({}){}; Ctrl-C detaches",
        report.pid,
        counted(addresses.len(), "place", "places"),
        timeout.map_or(String::new(), |secs| format!(", at most {secs} s"))
    );
    let deadline = timeout.map(|secs| Instant::now() + Duration::from_secs_f64(secs.max(0.0)));
    runtime.block_on(async {
        loop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                eprintln!("interrupted before any thread reached {place}; detaching");
                return Ok(None);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                eprintln!("no thread reached {place} in time; detaching");
                let _ = handle.stop_all().await;
                return Ok(None);
            }
            let event = tokio::time::timeout(Duration::from_millis(20), events.recv()).await;
            match event {
                Err(_) => continue,
                Ok(None) => bail!("latch's ptrace thread ended"),
                Ok(Some(BackendEvent::Stopped { tid, reason })) => {
                    let what = match reason {
                        StopReason::Breakpoint(_) => format!("thread {tid} reached {place}"),
                        StopReason::Signal { signal, .. } => format!(
                            "thread {tid} got {} before any thread reached {place}",
                            crate::session::signal_name(signal)
                        ),
                        StopReason::Libraries | StopReason::Exec => {
                            handle.release(tid).await;
                            continue;
                        }
                        StopReason::Step => continue,
                    };
                    // The breakpoint goes before anything is printed: the process must
                    // not keep stopping on it, whatever happens next.
                    let _ = handle.set_breakpoints(Vec::new()).await;
                    return Ok(Some((tid, what)));
                }
                Ok(Some(BackendEvent::ProcessExited { code })) => {
                    bail!(
                        "process {} exited ({code}) before any thread reached {place}",
                        report.pid
                    )
                }
                Ok(Some(_)) => continue,
            }
        }
    })
}

/// Goroutines that look alike: the same state, stack and creator.
struct GoroutineGroup {
    /// Go's words: the wait reason of waiting ones, else the status.
    state: String,
    system: bool,
    ids: Vec<i64>,
    /// The threads the running ones run on.
    threads: Vec<Pid>,
    /// The fewest and most whole minutes waited, of those the runtime records it for.
    minutes: Option<(i64, i64)>,
    /// The distinct pprof label sets of its goroutines.
    labels: Vec<Vec<(String, String)>>,
    frames: Vec<StackFrame>,
    /// `FUNC at FILE:LINE` of the `go` statement, as Go's tracebacks print it.
    created_by: Option<String>,
}

/// A Go program's goroutines, grouped.
struct GoroutineReport {
    /// The largest first; the runtime's own last.
    groups: Vec<GoroutineGroup>,
    /// The runtime's goroutines left out (without `--all-goroutines`).
    hidden: usize,
    /// The threads running a listed goroutine, and its id.
    on_threads: std::collections::BTreeMap<Pid, i64>,
}

/// How many runs of ids a group's line shows before `…`.
const SHOWN_ID_RUNS: usize = 8;
/// How many distinct label sets a group shows before `…`.
const SHOWN_LABEL_SETS: usize = 3;

/// The goroutines of a stopped Go program, grouped by identical stacks; None when the
/// program is not Go, an error (the line to print instead) when they cannot be read.
/// A running goroutine's stack is its thread's (`stacks`); a parked one's is unwound
/// from the context the runtime saved (`g.sched`).
fn read_goroutines(
    stacker: &mut Stacker,
    stacks: &[(Pid, Vec<StackFrame>)],
    all: bool,
) -> Option<Result<GoroutineReport, String>> {
    use crate::symbols::goroutines::{GoProgram, GoroutinesError, Status};
    if !GoProgram::executable_is_go(stacker) {
        return None;
    }
    let program = match GoProgram::find(stacker) {
        Ok(program) => program,
        Err(GoroutinesError::NotGo) => return None,
        Err(error @ GoroutinesError::NoDwarf) => return Some(Err(error.to_string())),
        Err(error) => {
            return Some(Err(format!(
                "cannot list the goroutines ({error}): showing the threads"
            )))
        }
    };
    let goroutines = match program.goroutines(stacker.view()) {
        Ok(goroutines) => goroutines,
        Err(error) => {
            return Some(Err(format!(
                "cannot list the goroutines ({error}): showing the threads"
            )))
        }
    };
    let now = monotonic_ns();
    let mut groups: Vec<GoroutineGroup> = Vec::new();
    let mut index: rustc_hash::FxHashMap<(bool, String, Vec<u64>, Option<String>), usize> =
        Default::default();
    let mut hidden = 0;
    let mut on_threads = std::collections::BTreeMap::new();
    for g in &goroutines {
        if g.status == Status::Dead {
            continue;
        }
        if g.system && !all {
            hidden += 1;
            continue;
        }
        let thread = match g.status {
            Status::Running | Status::Syscall => {
                g.thread.filter(|tid| stack_of(stacks, *tid).is_some())
            }
            _ => None,
        };
        let frames = match thread {
            Some(tid) => {
                let frames = stack_of(stacks, tid).unwrap_or_default().to_vec();
                match g.in_syscall {
                    Some(at) => after_cgo_call(frames, || {
                        stacker.stack(Registers::from_pc_sp_bp(at.pc, at.sp, at.bp))
                    }),
                    None => frames,
                }
            }
            None if g.saved.pc != 0 && g.saved.sp != 0 => {
                stacker.stack(Registers::from_pc_sp_bp(g.saved.pc, g.saved.sp, g.saved.bp))
            }
            None => Vec::new(),
        };
        // Go's tracebacks name no creator of goroutine 1, nor one in the runtime's
        // unexported code (the finalizer goroutine's).
        let created_by = program
            .creator(g.go_pc)
            .filter(|(function, _)| g.id != 1 && (all || !is_hidden_runtime(function)))
            .map(|(function, place)| match place {
                Some((file, line)) => format!("{function} at {file}:{line}"),
                None => function,
            });
        let state = g.state();
        let key = (
            g.system,
            state.clone(),
            frames.iter().map(|f| f.pc).collect(),
            created_by.clone(),
        );
        let at = *index.entry(key).or_insert_with(|| {
            groups.push(GoroutineGroup {
                state,
                system: g.system,
                ids: Vec::new(),
                threads: Vec::new(),
                minutes: None,
                labels: Vec::new(),
                frames,
                created_by,
            });
            groups.len() - 1
        });
        let group = &mut groups[at];
        group.ids.push(g.id);
        if let Some(tid) = thread {
            group.threads.push(tid);
            on_threads.insert(tid, g.id);
        }
        if let (Some(since), Some(now), Status::Waiting | Status::Leaked) =
            (g.waiting_since_ns, now, g.status)
        {
            let minutes = (now - since).max(0) / 60_000_000_000;
            group.minutes = Some(match group.minutes {
                Some((least, most)) => (least.min(minutes), most.max(minutes)),
                None => (minutes, minutes),
            });
        }
        if !g.labels.is_empty() && !group.labels.contains(&g.labels) {
            group.labels.push(g.labels.clone());
        }
    }
    for group in &mut groups {
        group.ids.sort_unstable();
        group.threads.sort_unstable();
        group.labels.sort();
    }
    groups.sort_by(|a, b| {
        (a.system, std::cmp::Reverse(a.ids.len()), &a.state, a.ids[0]).cmp(&(
            b.system,
            std::cmp::Reverse(b.ids.len()),
            &b.state,
            b.ids[0],
        ))
    });
    Some(Ok(GoroutineReport {
        groups,
        hidden,
        on_threads,
    }))
}

/// A function Go's tracebacks leave out: the runtime's, unless exported.
fn is_hidden_runtime(function: &str) -> bool {
    function
        .strip_prefix("runtime.")
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of Go's `nanotime`, so of `g.waitsince`.
fn monotonic_ns() -> Option<i64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    (unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } == 0)
        .then(|| now.tv_sec * 1_000_000_000 + now.tv_nsec)
}

/// Sorted ids as runs (`28-10027, 10030`), at most `SHOWN_ID_RUNS` of them, then `…`.
fn id_runs(ids: &[i64]) -> String {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for &id in ids {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => runs.push((id, id)),
        }
    }
    let mut parts: Vec<String> = runs
        .iter()
        .take(SHOWN_ID_RUNS)
        .map(|&(first, last)| match last - first {
            0 => first.to_string(),
            1 => format!("{first}, {last}"),
            _ => format!("{first}-{last}"),
        })
        .collect();
    if runs.len() > SHOWN_ID_RUNS {
        parts.push("…".into());
    }
    parts.join(", ")
}

/// A group's first line: `10000 goroutines [chan receive, 3 minutes]: 28-10027`, with
/// ` on thread 4242` for running ones.
fn group_header(group: &GoroutineGroup) -> String {
    let count = group.ids.len();
    let mut state = group.state.clone();
    // As Go prints it: whole minutes, from the first.
    match group.minutes {
        Some((least, most)) if most >= 1 && least == most => state += &format!(", {most} minutes"),
        Some((least, most)) if most >= 1 => state += &format!(", {least}-{most} minutes"),
        _ => {}
    }
    let threads = match group.threads.as_slice() {
        [] => String::new(),
        [one] => format!(" on thread {one}"),
        many => format!(
            " on threads {}",
            many.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "{count} {} [{state}]{threads}: {}",
        if count == 1 {
            "goroutine"
        } else {
            "goroutines"
        },
        id_runs(&group.ids)
    )
}

fn print_goroutines(out: &mut impl Write, report: &GoroutineReport) -> std::io::Result<()> {
    let listed: usize = report.groups.iter().map(|g| g.ids.len()).sum();
    writeln!(
        out,
        "\n{} in {} by stack, the largest first:",
        counted(listed, "goroutine", "goroutines"),
        counted(report.groups.len(), "group", "groups")
    )?;
    for group in &report.groups {
        writeln!(out, "\n{}", group_header(group))?;
        if !group.labels.is_empty() {
            let mut sets: Vec<String> = group
                .labels
                .iter()
                .take(SHOWN_LABEL_SETS)
                .map(|set| {
                    set.iter()
                        .map(|(key, value)| format!("{key}={value}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            if group.labels.len() > SHOWN_LABEL_SETS {
                sets.push("…".into());
            }
            writeln!(out, "  labels: {}", sets.join("; "))?;
        }
        if group.frames.is_empty() {
            writeln!(out, "  (no stack: the runtime saved no context for it)")?;
        }
        for (level, frame) in group.frames.iter().enumerate() {
            writeln!(out, "  #{level:<3}{}", describe_frame(frame))?;
        }
        if let Some(created_by) = &group.created_by {
            writeln!(out, "  created by {created_by}")?;
        }
    }
    if report.hidden > 0 {
        writeln!(
            out,
            "\n{} not shown; --all-goroutines lists them",
            counted(report.hidden, "runtime goroutine", "runtime goroutines")
        )?;
    }
    Ok(())
}

fn stack_of(stacks: &[(Pid, Vec<StackFrame>)], tid: Pid) -> Option<&[StackFrame]> {
    stacks
        .iter()
        .find(|(t, _)| *t == tid)
        .map(|(_, s)| s.as_slice())
}

/// `function (module)`, for the table's one line per thread.
fn short_location(frame: &StackFrame) -> String {
    match (&frame.function, frame.module_name()) {
        (Some(function), Some(module)) => format!("{function} ({module})"),
        _ => frame.display_name(),
    }
}

/// gdb's `bt` line: `0xPC in NAME at FILE:LINE`, or `(MODULE)` without line information.
fn describe_frame(frame: &StackFrame) -> String {
    let mut text = format!("{:#018x} in {}", frame.pc, frame.display_name());
    match (&frame.file, frame.module_name()) {
        (Some(file), _) if frame.line > 0 => text += &format!(" at {file}:{}", frame.line),
        (_, Some(module)) if frame.function.is_some() => text += &format!(" ({module})"),
        _ => {}
    }
    if frame.inlined {
        text += " [inlined]";
    }
    text
}

fn wait_for(
    pattern: &str,
    options: &AttachOptions,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Caught> {
    let spec = WaitSpec {
        pattern: pattern.to_string(),
        mode: if options.waitfor_cmdline {
            MatchMode::Cmdline
        } else {
            MatchMode::Name
        },
        existing: options.waitfor_existing,
        interval: Duration::from_millis(options.waitfor_interval.max(1)),
        timeout: options.waitfor_timeout.map(Duration::from_millis),
    };
    let mut waiter = Waiter::start(spec)?;
    eprintln!(
        "waiting for a process {} '{pattern}' to start, {}",
        if options.waitfor_cmdline {
            "whose command line starts with"
        } else {
            "named"
        },
        waiter.method()
    );
    let canceller = Canceller::new()?;
    // Ctrl-C cancels the wait.
    let watcher = canceller.clone();
    let stop = stop.clone();
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        watcher.cancel();
    });
    let boost = crate::priority::Boost::raise();
    let found = waiter.wait(&canceller).map_err(|err| match err {
        // Worded with the flags the user typed, not the DAP keys.
        WaitError::Timeout { pattern, ms } => {
            anyhow::anyhow!(timeout_message(&pattern, ms, Wording::Cli))
        }
        other => other.into(),
    })?;
    tracing::debug!(pid = found.pid, "waitFor matched");
    Ok(Caught {
        pid: found.pid as i64,
        _waiter: waiter,
        _boost: boost,
    })
}

/// A process just caught by waitFor. Until the attach is done, keep what would cost the
/// race against its start-up: dropping the boost lets the new process preempt us, and
/// closing the proc connector takes about a millisecond (measured: 0.8 ms from match to
/// attach, long enough for main() to run).
struct Caught {
    pid: i64,
    _waiter: Waiter,
    _boost: crate::priority::Boost,
}

/// SIGINT and SIGTERM set a flag instead of killing latch, so it detaches first.
fn signal_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        signal_hook::flag::register(signal, flag.clone())?;
    }
    Ok(flag)
}

/// What a stopped thread was doing, from the syscall it was blocked in.
fn thread_state(pid: Pid, tid: Pid) -> String {
    match procfs::task_syscall(pid, tid) {
        Ok(Some(nr)) => format!("in {}()", syscall_name(nr)),
        Ok(None) => "running".into(),
        Err(_) => "?".into(),
    }
}

fn syscall_name(nr: i64) -> String {
    match crate::syscall_names::name(nr) {
        Some(name) => name.to_string(),
        None => format!("syscall {nr}"),
    }
}

#[derive(Args, Debug)]
pub struct PsOptions {
    /// Only processes whose name or command line contains this.
    pub pattern: Option<String>,
    /// Print JSON (for editors' process pickers) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print whole command lines. Without it, rows are cut to the terminal's width when
    /// the output is a terminal (and printed whole when it is a pipe or a file).
    #[arg(long, short = 'w')]
    pub wide: bool,
}

/// One attachable process, as `latch ps --json` prints it.
#[derive(Debug, Serialize)]
pub struct ProcessEntry {
    pub pid: Pid,
    pub name: String,
    pub user: String,
    pub uid: u32,
    pub threads: u32,
    /// The pid of the process's tracer, when it is already being debugged.
    pub tracer_pid: Option<Pid>,
    pub tracer_name: Option<String>,
    pub cmdline: String,
    pub exe: Option<String>,
}

/// The processes this user may attach to: the same definition for the terminal and the
/// editors' pickers. Kernel threads, zombies and latch itself are left out; so are other
/// users' processes unless latch has CAP_SYS_PTRACE.
pub fn list_processes(pattern: Option<&str>) -> Vec<ProcessEntry> {
    let me = std::process::id() as Pid;
    let my_status = procfs::status(me).unwrap_or_default();
    let privileged = my_status.cap_eff & (1 << 19) != 0;
    let mut entries = Vec::new();
    let mut pids = procfs::all_pids().unwrap_or_default();
    pids.sort_unstable();
    for pid in pids {
        if pid == me {
            continue;
        }
        let Ok(stat) = procfs::stat(pid) else {
            continue;
        };
        if stat.is_kernel_thread() || matches!(stat.state, 'Z' | 'X') {
            continue;
        }
        let Ok(status) = procfs::status(pid) else {
            continue;
        };
        if !privileged && status.uids[0] != my_status.uids[1] {
            continue;
        }
        let cmdline = procfs::cmdline(pid).unwrap_or_default().join(" ");
        if let Some(p) = pattern {
            if !stat.comm.contains(p) && !cmdline.contains(p) {
                continue;
            }
        }
        // The tracing process, not its tracing thread: that is the pid users can act on.
        let tracer = (status.tracer_pid != 0).then(|| procfs::process_of(status.tracer_pid));
        entries.push(ProcessEntry {
            pid,
            name: stat.comm,
            user: procfs::user_name(status.uids[0]),
            uid: status.uids[0],
            threads: status.threads,
            tracer_pid: tracer,
            tracer_name: tracer.and_then(|t| procfs::comm(t).ok()),
            cmdline,
            exe: procfs::exe(pid).ok().map(|p| p.display().to_string()),
        });
    }
    entries
}

pub fn ps(options: PsOptions) -> anyhow::Result<ExitCode> {
    let entries = list_processes(options.pattern.as_deref());
    let mut out = std::io::stdout().lock();
    if options.json {
        serde_json::to_writer_pretty(&mut out, &entries)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    // A command line can be thousands of characters: on a terminal, one row per process
    // stays readable only when cut to its width. A pipe gets it whole, for grep.
    let width = if options.wide { None } else { terminal_width() };
    writeln!(
        out,
        "{}",
        fit(
            &format!(
                "{:>8}  {:<12} {:<16} {:>7}  {:<14} COMMAND",
                "PID", "USER", "NAME", "THREADS", "TRACED BY"
            ),
            width
        )
    )?;
    for e in &entries {
        let traced = match (&e.tracer_pid, &e.tracer_name) {
            (Some(pid), Some(name)) => format!("{pid} ({name})"),
            (Some(pid), None) => pid.to_string(),
            _ => "-".into(),
        };
        let row = format!(
            "{:>8}  {:<12} {:<16} {:>7}  {:<14} {}",
            e.pid, e.user, e.name, e.threads, traced, e.cmdline
        );
        writeln!(out, "{}", fit(&row, width))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The width of the terminal stdout is, or `None` when stdout is not a terminal.
fn terminal_width() -> Option<usize> {
    // SAFETY: isatty and TIOCGWINSZ only read the descriptor's state into `size`.
    if unsafe { libc::isatty(libc::STDOUT_FILENO) } != 1 {
        return None;
    }
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let from_ioctl = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0
        && size.ws_col > 0;
    if from_ioctl {
        return Some(size.ws_col as usize);
    }
    // A terminal that does not know its size (e.g. a serial console): the shell's idea.
    Some(
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(|c| *c > 0)
            .unwrap_or(80),
    )
}

/// `line` cut to `width` characters, the cut marked with `…`.
fn fit(line: &str, width: Option<usize>) -> std::borrow::Cow<'_, str> {
    match width {
        Some(width) if line.chars().count() > width => {
            let kept: String = line.chars().take(width.saturating_sub(1)).collect();
            format!("{kept}…").into()
        }
        _ => line.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::{fit, group_header, id_runs, BreakAt, GoroutineGroup};

    #[test]
    fn goroutine_ids_print_as_runs_and_are_cut_after_a_few() {
        assert_eq!(id_runs(&[1]), "1");
        assert_eq!(id_runs(&[5, 6, 7, 8, 20, 21, 30]), "5-8, 20, 21, 30");
        let scattered: Vec<i64> = (0..20).map(|i| i * 10).collect();
        assert_eq!(id_runs(&scattered), "0, 10, 20, 30, 40, 50, 60, 70, …");
    }

    fn group(ids: Vec<i64>, minutes: Option<(i64, i64)>, threads: Vec<i32>) -> GoroutineGroup {
        GoroutineGroup {
            state: "chan receive".into(),
            system: false,
            ids,
            threads,
            minutes,
            labels: Vec::new(),
            frames: Vec::new(),
            created_by: None,
        }
    }

    #[test]
    fn group_headers_say_count_state_minutes_as_go_does_threads_and_ids() {
        assert_eq!(
            group_header(&group((28..10028).collect(), Some((0, 0)), vec![])),
            "10000 goroutines [chan receive]: 28-10027"
        );
        assert_eq!(
            group_header(&group(vec![3], Some((2, 2)), vec![])),
            "1 goroutine [chan receive, 2 minutes]: 3"
        );
        assert_eq!(
            group_header(&group(vec![3, 9], Some((0, 3)), vec![])),
            "2 goroutines [chan receive, 0-3 minutes]: 3, 9"
        );
        let mut running = group(vec![7, 9], None, vec![41, 42]);
        running.state = "running".into();
        assert_eq!(
            group_header(&running),
            "2 goroutines [running] on threads 41, 42: 7, 9"
        );
    }

    #[test]
    fn break_places_are_lines_or_functions() {
        assert_eq!(
            BreakAt::parse("main.c:42").unwrap(),
            BreakAt::Line("main.c".into(), 42)
        );
        assert_eq!(
            BreakAt::parse("/src/a b/x.rs:7").unwrap(),
            BreakAt::Line("/src/a b/x.rs".into(), 7)
        );
        assert_eq!(
            BreakAt::parse("shapes::run").unwrap(),
            BreakAt::Function("shapes::run".into())
        );
        assert_eq!(
            BreakAt::parse("main.(*Server).Serve").unwrap(),
            BreakAt::Function("main.(*Server).Serve".into())
        );
        assert!(BreakAt::parse("main.c:x").is_err());
        assert!(BreakAt::parse(" ").is_err());
    }

    #[test]
    fn fit_cuts_long_lines_to_the_width_and_marks_the_cut() {
        assert_eq!(fit("abcdef", Some(4)), "abc…");
        assert_eq!(fit("abcd", Some(4)), "abcd");
        assert_eq!(fit("abcdef", None), "abcdef");
        assert_eq!(fit("ééééé", Some(3)).chars().count(), 3);
    }
}
