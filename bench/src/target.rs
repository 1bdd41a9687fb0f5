//! The programs we attach to: C sources under `bench/targets/`, compiled at
//! run time so the benchmark needs nothing but a C compiler, a Go program
//! built with the system's Go toolchain (offline), and a large binary with
//! full debug info built from this workspace (latch's own debug build,
//! idling in `latch dap` on a stdin pipe we keep open).

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Embedded so the binary works from any directory.
pub(crate) const THREADS_C: &str = include_str!("../targets/threads.c");
const CHURN_C: &str = include_str!("../targets/churn.c");
const COUNTER_C: &str = include_str!("../targets/counter.c");
const LAUNCH_C: &str = include_str!("../targets/launch.c");
const LAUNCH_LIB_C: &str = include_str!("../targets/launchlib.c");
const VALUES_CPP: &str = include_str!("../targets/values.cpp");
const GO_MAIN: &str = include_str!("../targets/go/main.go");
const GO_MOD: &str = include_str!("../targets/go/go.mod");

/// The counter's file name, which is also its process name (`comm`, at
/// most 15 bytes): what the debuggers wait for. Unusual on purpose, so no
/// other process on the machine matches it.
pub const COUNTER_NAME: &str = "latchbench-ctr";
// The kernel keeps 15 bytes of a process name and waitFor matches it: checked when the
// bench compiles, not by a test that could only pass.
const _: () = assert!(COUNTER_NAME.len() <= 15);

/// Seconds of `churn-run` without a count: what issue 20 asks for.
pub const DEFAULT_CHURN_RUN_SECS: u64 = 10;

/// Goroutines of `go` without a count: what issue 5 asks for.
pub const DEFAULT_GOROUTINES: usize = 10000;

/// Busy (spinning) goroutines next to the blocked ones in `go`: as many as
/// the 2-core machines have, so the runtime's threads are all busy.
const GO_BUSY: usize = 2;

/// One workload: a variant here plus a source file under `targets/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Sleeping(usize),
    Spinning(usize),
    /// Threads born and dying continuously (`targets/churn.c`).
    ShortLived,
    /// The same stream of threads, attached without stopping and left running for
    /// this many seconds: what the client is sent meanwhile, and what it costs.
    ChurnRun(u64),
    /// A Go program with this many blocked goroutines plus [`GO_BUSY`]
    /// spinning ones (`targets/go`).
    Go(usize),
    /// `goroutines` (or `goroutines:N`): the same Go program, seen as goroutines (issue 16):
    /// latch's goroutine view against Delve (`dlv dap`): attach, `threads` (the goroutine
    /// list), the stack of one parked goroutine, the stacks of the first 100 listed.
    Goroutines(usize),
    /// `attach {waitFor}` before the counter (`targets/counter.c`) is
    /// started: how early the debugger stops it.
    WaitFor,
    /// A large binary with full DWARF whose threads are all blocked: time to
    /// the first stack trace of its main thread, from a cold debugger.
    BigBinary,
    /// `bp:N`: N sleeping threads and a hitter (the main thread) that calls
    /// `bench_hit` when told on stdin: breakpoint hit → `stopped`, `next`,
    /// the F10 round (`targets/threads.c`, `threads bp N`).
    Hit(usize),
    /// `hot`: one thread calling `bench_hot` in a loop, with a breakpoint there
    /// that never stops (`threads hot 0`): the target's calls per second.
    Hot,
    /// `hot-cond`: the same loop, the breakpoint's `condition` never true but read from
    /// the target at every hit (a global the loop counts in), after a control stop with
    /// a condition that is true.
    HotCondition,
    /// `bp-lines`: 100 source-line breakpoints set in the large binary, with
    /// its DWARF not yet read.
    SourceBreakpoints,
    /// `launch-main`: the debugger starts the launch target (`targets/launch.c`) and
    /// stops at the first line of its `main`.
    LaunchMain,
    /// `launch-lib`: the debugger starts the launch target with a breakpoint on
    /// [`LAUNCH_LIB_FUNCTION`], in its shared library (`targets/launchlib.c`), which
    /// `main` calls first.
    LaunchLibrary,
    /// `values-big`: the large binary stopped at a source breakpoint in a function it
    /// calls when a DAP frame arrives on its stdin: frame 0's scopes and variables.
    ValuesBig,
    /// `values`: a C++ program (`targets/values.cpp`) with a `std::vector<int>` of
    /// [`VALUES_ELEMENTS`] and a two-node list: the vector paged, hover evaluation.
    Values,
}

/// Elements of the `values` target's vector (`targets/values.cpp`); element i holds i.
pub const VALUES_ELEMENTS: usize = 1_000_000;

/// The function of the launch target's shared library that `main` calls first.
pub const LAUNCH_LIB_FUNCTION: &str = "bench_lib_first";

/// The file name of the launch target's library source, in the benchmark's temp dir.
pub const LAUNCH_LIB_SOURCE: &str = "launchlib.c";

/// The line of the first statement of [`LAUNCH_LIB_FUNCTION`] in its source: where a
/// source breakpoint in the library goes.
pub fn launch_lib_line() -> u32 {
    let at = LAUNCH_LIB_C
        .lines()
        .position(|l| l.contains("volatile int doubled"))
        .expect("launchlib.c has its first statement");
    at as u32 + 1
}

impl Scenario {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "big" => return Ok(Scenario::BigBinary),
            "short-lived" | "shortlived" | "churn" => return Ok(Scenario::ShortLived),
            "go" => return Ok(Scenario::Go(DEFAULT_GOROUTINES)),
            "goroutines" => return Ok(Scenario::Goroutines(DEFAULT_GOROUTINES)),
            "waitfor" | "waitFor" => return Ok(Scenario::WaitFor),
            "churn-run" => return Ok(Scenario::ChurnRun(DEFAULT_CHURN_RUN_SECS)),
            "hot" => return Ok(Scenario::Hot),
            "hot-cond" => return Ok(Scenario::HotCondition),
            "bp-lines" => return Ok(Scenario::SourceBreakpoints),
            "launch-main" => return Ok(Scenario::LaunchMain),
            "launch-lib" => return Ok(Scenario::LaunchLibrary),
            "values-big" => return Ok(Scenario::ValuesBig),
            "values" => return Ok(Scenario::Values),
            _ => {}
        }
        let expected =
            "expected sleep:N, spin:N, short-lived, churn-run, churn-run:SECS, go, go:N, goroutines, \
             goroutines:N, waitfor, big, bp:N, hot, hot-cond, bp-lines, launch-main, launch-lib, values-big \
             or values";
        let (kind, n) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: {expected}"))?;
        let n: usize = n
            .parse()
            .map_err(|_| format!("`{s}`: `{n}` is not a count"))?;
        match kind {
            "sleep" | "sleeping" => Ok(Scenario::Sleeping(n)),
            "spin" | "spinning" => Ok(Scenario::Spinning(n)),
            "go" => Ok(Scenario::Go(n)),
            "goroutines" => Ok(Scenario::Goroutines(n)),
            "churn-run" if n > 0 => Ok(Scenario::ChurnRun(n as u64)),
            "bp" => Ok(Scenario::Hit(n)),
            _ => Err(format!("`{s}`: unknown kind `{kind}`; {expected}")),
        }
    }

    pub fn title(&self) -> String {
        match self {
            Scenario::Sleeping(n) => format!("{n} sleeping thread{}", plural(*n)),
            Scenario::Spinning(n) => format!("{n} spinning thread{}", plural(*n)),
            Scenario::ShortLived => {
                "a stream of short-lived threads (one born every ~100 µs, each living ~0.5 ms)"
                    .into()
            }
            Scenario::ChurnRun(secs) => format!(
                "short-lived threads, attached and running for {secs} s (what the client is sent)"
            ),
            Scenario::Go(n) => format!("Go: {n} blocked goroutine{} + {GO_BUSY} busy", plural(*n)),
            Scenario::Goroutines(n) => format!(
                "Go as goroutines (latch's goroutine view vs Delve): {n} blocked goroutine{} + \
                 {GO_BUSY} busy",
                plural(*n)
            ),
            Scenario::WaitFor => "waitFor: a counter printing a line every ms from main()".into(),
            Scenario::BigBinary => {
                "first stack trace on a large binary with full debug info".into()
            }
            Scenario::Hit(n) => format!(
                "breakpoint hit, `next` and the F10 round, {n} other sleeping thread{}",
                plural(*n)
            ),
            Scenario::Hot => {
                "a hot breakpoint that never stops (hit condition 1000000), one looping thread"
                    .into()
            }
            Scenario::HotCondition => format!(
                "a hot breakpoint whose condition (`{}`) is never true, one looping thread",
                crate::peers::bp::HOT_FALSE_CONDITION
            ),
            Scenario::SourceBreakpoints => {
                "100 source breakpoints in a large binary, DWARF not yet read".into()
            }
            Scenario::LaunchMain => {
                "launch → first line of `main` stopped (a program linked against a shared library)"
                    .into()
            }
            Scenario::LaunchLibrary => format!(
                "launch → first breakpoint in a library loaded at startup (`{LAUNCH_LIB_FUNCTION}`, \
                 called first thing in `main`)"
            ),
            Scenario::ValuesBig => {
                "values on a large binary: frame 0's scopes and variables after a breakpoint stop"
                    .into()
            }
            Scenario::Values => format!(
                "values: a C++ `std::vector<int>` of {VALUES_ELEMENTS} elements paged, hover \
                 evaluation"
            ),
        }
    }

    /// Whether the debugger starts the target itself (`launch`).
    pub fn is_launch(self) -> bool {
        matches!(self, Scenario::LaunchMain | Scenario::LaunchLibrary)
    }

    /// What may happen to the target's threads between its `ready` and the
    /// check after the detach.
    fn thread_rule(self) -> ThreadRule {
        match self {
            Scenario::ShortLived | Scenario::ChurnRun(_) => ThreadRule::ShortLived,
            // Go's runtime starts OS threads on its own, e.g. when a stop
            // kept its threads from running for a while.
            Scenario::Go(_) | Scenario::Goroutines(_) => ThreadRule::NewAllowed,
            _ => ThreadRule::Same,
        }
    }
}

/// How the target's threads may change while a debugger attaches and
/// detaches; checked after every detach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadRule {
    /// Exactly the threads it had when ready.
    Same,
    /// Every thread it had when ready, and maybe new ones.
    NewAllowed,
    /// Threads come and go; the main thread must remain (and the target's
    /// output must go on: it reports the threads it keeps spawning).
    ShortLived,
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub struct Targets {
    threads_bin: PathBuf,
    churn_bin: PathBuf,
    counter_bin: PathBuf,
    /// The launch target, linked against `liblaunchbench.so` next to it (rpath).
    pub launch_bin: PathBuf,
    /// The source of that library, where its debug info says it is.
    pub launch_lib_src: PathBuf,
    /// Built only when the run has a `go` scenario and Go is installed.
    go_bin: Option<PathBuf>,
    /// The large binary and its arguments, when the run has a `big` scenario.
    pub big: Option<BigBinary>,
    /// The C++ values target, built only when the run has the `values` scenario.
    values_bin: Option<PathBuf>,
}

#[cfg(test)]
impl Targets {
    /// Targets that were never built: for tests of what is sent about them.
    pub fn none() -> Self {
        Targets {
            threads_bin: PathBuf::new(),
            churn_bin: PathBuf::new(),
            counter_bin: PathBuf::new(),
            launch_bin: PathBuf::new(),
            launch_lib_src: PathBuf::new(),
            go_bin: None,
            big: None,
            values_bin: None,
        }
    }
}

/// A large program with full debug info that idles with every thread
/// blocked once started with its stdin on a pipe we keep open.
pub struct BigBinary {
    pub path: PathBuf,
    pub args: Vec<String>,
}

impl BigBinary {
    /// latch's own debug build, `latch dap`: some 50 MiB with full DWARF for
    /// latch and every dependency (tokio, serde, clap, ...). Looked for in
    /// the target directory this benchmark was built in.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, String> {
        let hint =
            "build it with `cargo build -p latch` (the debug build) or pass --big-binary PATH";
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => std::env::current_exe()
                .ok()
                .and_then(|e| Some(e.parent()?.parent()?.join("debug").join("latch")))
                .ok_or_else(|| format!("large binary: cannot find latch's debug build; {hint}"))?,
        };
        if !path.is_file() {
            return Err(format!(
                "large binary: {} does not exist; {hint}",
                path.display()
            ));
        }
        Ok(BigBinary {
            path,
            args: vec!["dap".into()],
        })
    }

    /// One line for the report header: path, size, and the size of its
    /// `.debug_info`, so a reader can judge how large "large" is.
    pub fn describe(&self) -> String {
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        let info = debug_info_size(&self.path).map_or("no .debug_info found".into(), |n| {
            format!("{:.1} MiB of .debug_info", n as f64 / 1048576.0)
        });
        format!(
            "`{} {}` ({:.1} MiB, {info})",
            self.path.display(),
            self.args.join(" "),
            size as f64 / 1048576.0
        )
    }
}

/// Size of the `.debug_info` section, read from the ELF section headers
/// (64-bit little-endian only; enough for the header line).
fn debug_info_size(path: &Path) -> Option<u64> {
    let data = std::fs::read(path).ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?));
    if data.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let shoff = u64_at(0x28)? as usize;
    let shentsize = u16_at(0x3a)? as usize;
    let shnum = u16_at(0x3c)? as usize;
    let shstrndx = u16_at(0x3e)? as usize;
    let strtab = u64_at(shoff + shstrndx * shentsize + 0x18)? as usize;
    (0..shnum).find_map(|i| {
        let sh = shoff + i * shentsize;
        let name = strtab + u32_at(sh)? as usize;
        let end = name + data.get(name..)?.iter().position(|&b| b == 0)?;
        (&data[name..end] == b".debug_info").then(|| u64_at(sh + 0x20))?
    })
}

impl Targets {
    /// Compile the C targets into `dir` with `cc -O1 -g -pthread` (debug
    /// info so peers that load symbols pay their real cost), and the Go
    /// target with `go` when `go` is given.
    /// `cpp`: also build the C++ values target (`c++ -O0 -g`).
    pub fn build(dir: &Path, big: Option<BigBinary>, go: Option<&Path>, cpp: bool) -> Result<Self> {
        let threads_bin = cc(dir, "threads", THREADS_C)?;
        let churn_bin = cc(dir, "churn", CHURN_C)?;
        let counter_bin = cc(dir, COUNTER_NAME, COUNTER_C)?;
        let launch_bin = cc_launch(dir)?;
        let go_bin = go.map(|go| go_build(go, dir)).transpose()?;
        let values_bin = cpp.then(|| cxx_values(dir)).transpose()?;
        Ok(Targets {
            threads_bin,
            churn_bin,
            counter_bin,
            launch_bin,
            launch_lib_src: dir.join(LAUNCH_LIB_SOURCE),
            go_bin,
            big,
            values_bin,
        })
    }

    /// Start a fresh target and wait until it prints `ready` (all threads
    /// exist), so no peer ever races thread creation.
    pub fn spawn(&self, scenario: Scenario, deadline: Instant) -> Result<Target> {
        let (program, args) = match scenario {
            Scenario::Sleeping(n) => (&self.threads_bin, vec!["sleep".into(), n.to_string()]),
            Scenario::Spinning(n) => (&self.threads_bin, vec!["spin".into(), n.to_string()]),
            Scenario::ShortLived | Scenario::ChurnRun(_) => (&self.churn_bin, vec![]),
            Scenario::Go(n) | Scenario::Goroutines(n) => (
                self.go_bin
                    .as_ref()
                    .context("the Go target was not built")?,
                vec![n.to_string(), GO_BUSY.to_string()],
            ),
            Scenario::BigBinary | Scenario::SourceBreakpoints | Scenario::ValuesBig => {
                return self.spawn_big(deadline)
            }
            Scenario::Values => (
                self.values_bin
                    .as_ref()
                    .context("the C++ values target was not built")?,
                vec![],
            ),
            Scenario::Hit(n) => (&self.threads_bin, vec!["bp".into(), n.to_string()]),
            Scenario::Hot | Scenario::HotCondition => {
                (&self.threads_bin, vec!["hot".into(), "0".into()])
            }
            Scenario::WaitFor => bail!("the waitFor counter is started by its driver"),
            Scenario::LaunchMain | Scenario::LaunchLibrary => {
                bail!("the launch target is started by the debugger")
            }
        };
        let commanded = matches!(
            scenario,
            Scenario::Hit(_) | Scenario::Hot | Scenario::HotCondition
        );
        let mut child = crate::procfs::as_target(&mut Command::new(program))
            .args(&args)
            .stdin(if commanded {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        let lines = Arc::new(AtomicU64::new(0));
        let counted = lines.clone();
        // The reader keeps the pipe open for the target's whole life, so
        // the target never gets SIGPIPE, and counts the lines after
        // `ready`: targets that print progress (short-lived, go) show that
        // way that they run on after a detach.
        // The breakpoint targets' answers after `ready` go to `answers`, stamped.
        let (answers_tx, answers_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = false;
            for line in BufReader::new(stdout).lines() {
                if ready && commanded {
                    if let Ok(l) = line {
                        let _ = answers_tx.send((Instant::now(), l));
                    }
                } else if ready {
                    counted.fetch_add(1, Ordering::Relaxed);
                } else {
                    ready = line.as_ref().is_ok_and(|l| l.trim() == "ready");
                    let _ = tx.send(line);
                }
            }
        });
        let stdin = child.stdin.take();
        let mut target = Target {
            child,
            stdin: None,
            stdout: None,
            threads: 0,
            tids: vec![],
            rule: scenario.thread_rule(),
            lines,
            commands: None,
        };
        let mut addresses = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(line)) if line.trim() == "ready" => break,
                Ok(Ok(line)) if line.starts_with("addr ") => {
                    let words: Vec<u64> = line
                        .split_whitespace()
                        .skip(1)
                        .filter_map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok())
                        .collect();
                    addresses = (words.len() == 2).then(|| (words[0], words[1]));
                }
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => bail!("reading target output: {e}"),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!(
                        "target `{}` not ready before the deadline",
                        scenario.title()
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = target.child.wait()?;
                    bail!(
                        "target `{}` exited before ready: {status}",
                        scenario.title()
                    )
                }
            }
        }
        if let (true, Some(stdin)) = (commanded, stdin) {
            let (hit, hot) = addresses.context("the target printed no `addr` line")?;
            target.commands = Some(Commands {
                stdin,
                answers: answers_rx,
                hit,
                hot,
            });
        }
        let tids = crate::procfs::tasks(target.pid())?;
        let expected = match scenario {
            Scenario::Sleeping(n) | Scenario::Spinning(n) | Scenario::Hit(n) => Some(n + 1),
            // The main thread and the looper.
            Scenario::Hot | Scenario::HotCondition => Some(2),
            Scenario::Values => Some(1),
            _ => None,
        };
        if let Some(expected) = expected {
            if tids.len() != expected {
                bail!("target has {} threads, expected {expected}", tids.len());
            }
        }
        target.threads = tids.len();
        target.tids = tids.clone();
        // A sleeper between leaving the barrier and pause() is still
        // running: wait until every thread sleeps, so that all stacks are
        // the same when a debugger looks.
        if let Scenario::Sleeping(_) | Scenario::Hit(_) | Scenario::Values = scenario {
            let pid = target.pid();
            while !tids
                .iter()
                .all(|&t| crate::procfs::task_state(pid, t) == Some('S'))
            {
                if Instant::now() >= deadline {
                    bail!("target `{}`: not every thread asleep", scenario.title());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(target)
    }

    /// Start the large binary with stdin on a pipe we hold, and wait until
    /// it idles: the same threads, all asleep, for a few polls in a row.
    fn spawn_big(&self, deadline: Instant) -> Result<Target> {
        let big = self
            .big
            .as_ref()
            .context("no large binary (see --big-binary)")?;
        let mut child = crate::procfs::as_target(&mut Command::new(&big.path))
            .args(&big.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", big.path.display()))?;
        let stdin = child.stdin.take();
        let mut target = Target {
            child,
            stdin,
            stdout: None,
            threads: 0,
            tids: vec![],
            rule: ThreadRule::Same,
            lines: Arc::default(),
            commands: None,
        };
        let pid = target.pid();
        let mut quiet = 0;
        let mut last = Vec::new();
        while quiet < 5 {
            if Instant::now() >= deadline {
                bail!("large binary never settled with all its threads asleep");
            }
            if !target.alive() {
                bail!("large binary {} exited at start", big.path.display());
            }
            std::thread::sleep(Duration::from_millis(10));
            let tids = crate::procfs::tasks(pid)?;
            let asleep = tids
                .iter()
                .all(|&t| crate::procfs::task_state(pid, t) == Some('S'));
            quiet = if asleep && tids == last { quiet + 1 } else { 0 };
            last = tids;
        }
        target.threads = last.len();
        target.tids = last;
        Ok(target)
    }

    /// Start the waitFor counter with its stdout on a pipe nobody reads
    /// until the stop is reported: then everything it printed before being
    /// stopped is in the pipe, and nothing more can come. Returns when the
    /// exec has happened (std's spawn waits for it), which is when the
    /// exec → stopped time starts.
    pub fn spawn_counter(&self) -> Result<(Target, Instant)> {
        let mut child = crate::procfs::as_target(&mut Command::new(&self.counter_bin))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.counter_bin.display()))?;
        let exec = Instant::now();
        let stdout = child.stdout.take().expect("piped");
        // Room for a few seconds of lines (about 5 bytes each) even if a
        // debugger is slow to stop it; a full pipe would block the counter
        // and make it look stopped. Best effort: the default is 64 KiB.
        // SAFETY: fcntl on a file descriptor we own.
        unsafe {
            libc::fcntl(stdout.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
        }
        let target = Target {
            child,
            stdin: None,
            stdout: Some(stdout),
            threads: 1,
            tids: vec![],
            rule: ThreadRule::Same,
            lines: Arc::default(),
            commands: None,
        };
        Ok((target, exec))
    }

    pub fn counter_path(&self) -> &Path {
        &self.counter_bin
    }
}

/// `cc -O1 -g -pthread -o DIR/NAME DIR/NAME.c`.
fn cc(dir: &Path, name: &str, source: &str) -> Result<PathBuf> {
    cc_with(dir, &format!("{name}.c"), name, source, &[])
}

/// `cc -O1 -g -pthread -o DIR/BIN DIR/SRC EXTRA...` (libraries after the source).
fn cc_with(dir: &Path, src: &str, bin: &str, source: &str, extra: &[String]) -> Result<PathBuf> {
    let src = dir.join(src);
    std::fs::write(&src, source)?;
    let bin = dir.join(bin);
    let out = Command::new("cc")
        .args(["-O1", "-g", "-pthread", "-o"])
        .arg(&bin)
        .arg(&src)
        .args(extra)
        .output()
        .context("running cc (install with: apt-get install -y gcc)")?;
    if !out.status.success() {
        bail!(
            "cc failed on {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(bin)
}

/// The launch target: `DIR/liblaunchbench.so` from `launchlib.c` (`-fPIC -shared`), then
/// `DIR/launchbench` from `launch.c`, linked against it (`-L DIR -llaunchbench`) with an
/// rpath to `DIR`, so the dynamic loader loads it at startup without any environment.
fn cc_launch(dir: &Path) -> Result<PathBuf> {
    cc_with(
        dir,
        LAUNCH_LIB_SOURCE,
        "liblaunchbench.so",
        LAUNCH_LIB_C,
        &["-fPIC".into(), "-shared".into()],
    )?;
    cc_with(
        dir,
        "launch.c",
        "launchbench",
        LAUNCH_C,
        &[
            format!("-L{}", dir.display()),
            "-llaunchbench".into(),
            format!("-Wl,-rpath,{}", dir.display()),
        ],
    )
}

/// The values target: `c++ -O0 -g -o DIR/values DIR/values.cpp` (no optimisation, so
/// its locals live in main's frame as a debug build has them).
fn cxx_values(dir: &Path) -> Result<PathBuf> {
    let src = dir.join("values.cpp");
    std::fs::write(&src, VALUES_CPP)?;
    let bin = dir.join("values");
    let out = Command::new("c++")
        .args(["-O0", "-g", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .context("running c++ (install with: apt-get install -y g++)")?;
    if !out.status.success() {
        bail!(
            "c++ failed on {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(bin)
}

/// The Go toolchain (Debian's `golang-go`), or why the `go` scenario is
/// skipped. As in the e2e tests, which build their Go fixture the same way.
pub fn go_tool() -> Result<PathBuf, String> {
    ["/usr/bin/go", "/usr/local/go/bin/go"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| crate::peers::which("go"))
        .ok_or_else(|| {
            "go: no Go toolchain found; install it with `apt-get install -y golang-go`".into()
        })
}

/// `go build` of `targets/go` into `dir/goroutines`, offline, with its
/// caches in `dir` so nothing outside the benchmark's temp dir is touched.
fn go_build(go: &Path, dir: &Path) -> Result<PathBuf> {
    let module = dir.join("go");
    std::fs::create_dir_all(&module)?;
    std::fs::write(module.join("main.go"), GO_MAIN)?;
    std::fs::write(module.join("go.mod"), GO_MOD)?;
    let bin = dir.join("goroutines");
    let out = Command::new(go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&module)
        .env("GOCACHE", dir.join("go-cache"))
        .env("GOPATH", dir.join("go-path"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GO111MODULE", "on")
        .output()
        .with_context(|| format!("running {}", go.display()))?;
    if !out.status.success() {
        bail!("go build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(bin)
}

/// A running target; killed and reaped on drop so a failed run never leaks
/// a spinning process that would skew the following runs.
pub struct Target {
    child: Child,
    /// The large binary's stdin: held open so it blocks reading it.
    stdin: Option<ChildStdin>,
    /// The waitFor counter's stdout, read only by [`Target::lines`].
    stdout: Option<ChildStdout>,
    /// Threads it had when ready.
    pub threads: usize,
    /// Their ids, for [`ThreadRule::NewAllowed`].
    pub tids: Vec<i32>,
    pub rule: ThreadRule,
    /// Lines printed after `ready` (the counter: all lines), as far as read.
    lines: Arc<AtomicU64>,
    /// The breakpoint targets' command pipe and answers.
    pub commands: Option<Commands>,
}

/// What the breakpoint targets (`threads bp N`, `threads hot N`) are told and answer.
pub struct Commands {
    stdin: ChildStdin,
    /// Lines printed after `ready`, stamped when read.
    answers: mpsc::Receiver<(Instant, String)>,
    /// Address of `bench_hit`, the breakpoint to hit.
    pub hit: u64,
    /// Address of `bench_hot`, the hot breakpoint.
    pub hot: u64,
}

impl Commands {
    /// Write one command line; returns when it was written (the trigger time is taken
    /// by the caller just before).
    pub fn send(&mut self, command: &str) -> Result<()> {
        use std::io::Write;
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .and_then(|_| self.stdin.flush())
            .context("writing to the target")
    }

    /// The next line starting with `prefix`, and when it was read.
    pub fn answer(&mut self, prefix: &str, deadline: Instant) -> Result<(Instant, String)> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok((at, l)) if l.starts_with(prefix) => return Ok((at, l)),
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(crate::dap::Timeout(format!("the target's `{prefix}`")).into())
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("the target closed its output waiting for `{prefix}`")
                }
            }
        }
    }

    /// The looper's count of `bench_hot` calls, and when the answer was read.
    pub fn count(&mut self, deadline: Instant) -> Result<(Instant, u64)> {
        self.send("c")?;
        let (at, line) = self.answer("count ", deadline)?;
        let n = line["count ".len()..]
            .trim()
            .parse()
            .context("the target's count")?;
        Ok((at, n))
    }
}

impl Target {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Lines the target printed after `ready` (the counter: since it
    /// started) that have reached us. For the counter, whose pipe nobody
    /// else reads, this drains the pipe without blocking: every line the
    /// counter wrote is counted.
    pub fn lines(&mut self) -> u64 {
        if let Some(out) = &mut self.stdout {
            // SAFETY: fcntl on a file descriptor we own.
            unsafe {
                let fd = out.as_raw_fd();
                let flags = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
            let mut buf = [0u8; 65536];
            // Ends at WouldBlock (drained), EOF or an error alike.
            while let Ok(n @ 1..) = out.read(&mut buf) {
                let newlines = buf[..n].iter().filter(|&&b| b == b'\n').count();
                self.lines.fetch_add(newlines as u64, Ordering::Relaxed);
            }
        }
        self.lines.load(Ordering::Relaxed)
    }

    /// Whether its output shows that it runs: then after a detach the
    /// output must go on.
    pub fn reports_progress(&self) -> bool {
        self.stdout.is_some() || self.rule != ThreadRule::Same
    }

    /// Write to the large binary's stdin (`latch dap` reads DAP frames there): what makes
    /// it call the function of the `values-big` breakpoint.
    pub fn write_stdin(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        let stdin = self
            .stdin
            .as_mut()
            .context("the target's stdin is not ours")?;
        stdin
            .write_all(bytes)
            .and_then(|_| stdin.flush())
            .context("writing to the target's stdin")
    }

    /// Still running (not exited, not a zombie)?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
            && crate::procfs::task_state(self.pid(), self.pid()) != Some('Z')
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        drop(self.stdin.take());
        drop(self.commands.take());
        // SIGKILL works even on a ptrace-stopped process.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Give the kernel a moment to tear down thousands of threads before
        // the next run starts timing.
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        let parse = |s| Scenario::parse(s);
        assert_eq!(parse("sleep:4000"), Ok(Scenario::Sleeping(4000)));
        assert_eq!(parse("spin:16"), Ok(Scenario::Spinning(16)));
        assert_eq!(parse("short-lived"), Ok(Scenario::ShortLived));
        assert_eq!(parse("go"), Ok(Scenario::Go(DEFAULT_GOROUTINES)));
        assert_eq!(parse("go:500"), Ok(Scenario::Go(500)));
        assert_eq!(
            parse("goroutines"),
            Ok(Scenario::Goroutines(DEFAULT_GOROUTINES))
        );
        assert_eq!(parse("goroutines:50"), Ok(Scenario::Goroutines(50)));
        assert_eq!(parse("waitfor"), Ok(Scenario::WaitFor));
        assert_eq!(parse("big"), Ok(Scenario::BigBinary));
        assert_eq!(parse("churn-run"), Ok(Scenario::ChurnRun(10)));
        assert_eq!(parse("churn-run:3"), Ok(Scenario::ChurnRun(3)));
        assert_eq!(parse("bp:1000"), Ok(Scenario::Hit(1000)));
        assert_eq!(parse("hot"), Ok(Scenario::Hot));
        assert_eq!(parse("hot-cond"), Ok(Scenario::HotCondition));
        assert_eq!(parse("bp-lines"), Ok(Scenario::SourceBreakpoints));
        assert_eq!(parse("launch-main"), Ok(Scenario::LaunchMain));
        assert_eq!(parse("launch-lib"), Ok(Scenario::LaunchLibrary));
        assert_eq!(parse("values-big"), Ok(Scenario::ValuesBig));
        assert_eq!(parse("values"), Ok(Scenario::Values));
        let line = LAUNCH_LIB_C
            .lines()
            .nth(launch_lib_line() as usize - 1)
            .unwrap();
        assert!(line.contains(LAUNCH_LIB_FUNCTION) || line.contains("volatile"));
        assert!(parse("churn-run:0").is_err());
        assert!(parse("spin").is_err());
        assert!(parse("sleep:x").is_err());
        assert!(parse("nap:3").is_err());
    }
}
