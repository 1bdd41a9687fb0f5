//! The programs we attach to: C sources under `bench/targets/`, compiled at
//! run time so the benchmark needs nothing but a C compiler, and a large
//! binary with full debug info built from this workspace (latch's own debug
//! build, idling in `latch dap` on a stdin pipe we keep open).

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Embedded so the binary works from any directory.
const THREADS_C: &str = include_str!("../targets/threads.c");

/// One workload. Issue 5 adds short-lived threads, a Go program and a
/// waitFor counter: each becomes a variant here plus a source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Sleeping(usize),
    Spinning(usize),
    /// A large binary with full DWARF whose threads are all blocked: time to
    /// the first stack trace of its main thread, from a cold debugger.
    BigBinary,
}

impl Scenario {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "big" {
            return Ok(Scenario::BigBinary);
        }
        let (kind, n) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected sleep:N, spin:N or big"))?;
        let n: usize = n
            .parse()
            .map_err(|_| format!("`{s}`: `{n}` is not a thread count"))?;
        match kind {
            "sleep" | "sleeping" => Ok(Scenario::Sleeping(n)),
            "spin" | "spinning" => Ok(Scenario::Spinning(n)),
            _ => Err(format!("`{s}`: unknown kind `{kind}` (sleep, spin or big)")),
        }
    }

    pub fn title(&self) -> String {
        match self {
            Scenario::Sleeping(n) => format!("{n} sleeping thread{}", plural(*n)),
            Scenario::Spinning(n) => format!("{n} spinning thread{}", plural(*n)),
            Scenario::BigBinary => {
                "first stack trace on a large binary with full debug info".into()
            }
        }
    }
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
    /// The large binary and its arguments, when the run has a `big` scenario.
    pub big: Option<BigBinary>,
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
    /// Compile the targets into `dir` with `cc -O1 -g -pthread` (debug info
    /// so peers that load symbols pay their real cost).
    pub fn build(dir: &Path, big: Option<BigBinary>) -> Result<Self> {
        let src = dir.join("threads.c");
        std::fs::write(&src, THREADS_C)?;
        let threads_bin = dir.join("threads");
        let out = Command::new("cc")
            .args(["-O1", "-g", "-pthread", "-o"])
            .arg(&threads_bin)
            .arg(&src)
            .output()
            .context("running cc (install with: apt-get install -y gcc)")?;
        if !out.status.success() {
            bail!(
                "cc failed on {}:\n{}",
                src.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Targets { threads_bin, big })
    }

    /// Start a fresh target and wait until it prints `ready` (all threads
    /// exist), so no peer ever races thread creation.
    pub fn spawn(&self, scenario: Scenario, deadline: Instant) -> Result<Target> {
        let (mode, n) = match scenario {
            Scenario::Sleeping(n) => ("sleep", n),
            Scenario::Spinning(n) => ("spin", n),
            Scenario::BigBinary => return self.spawn_big(deadline),
        };
        let mut child = crate::procfs::normal_priority(&mut Command::new(&self.threads_bin))
            .args([mode, &n.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", self.threads_bin.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        // The reader keeps the pipe open for the target's whole life, so
        // the target never gets SIGPIPE.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut target = Target {
            child,
            stdin: None,
            threads: n + 1,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(line)) if line.trim() == "ready" => break,
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
        let tids = crate::procfs::tasks(target.pid())?;
        if tids.len() != target.threads {
            bail!(
                "target has {} threads, expected {}",
                tids.len(),
                target.threads
            );
        }
        // A sleeper between leaving the barrier and pause() is still
        // running: wait until every thread sleeps, so that all stacks are
        // the same when a debugger looks.
        if let Scenario::Sleeping(_) = scenario {
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
        let mut child = crate::procfs::normal_priority(&mut Command::new(&big.path))
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
            threads: 0,
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
        Ok(target)
    }
}

/// A running target; killed and reaped on drop so a failed run never leaks
/// a spinning process that would skew the following runs.
pub struct Target {
    child: Child,
    /// The large binary's stdin: held open so it blocks reading it.
    stdin: Option<ChildStdin>,
    /// Threads it had when ready; the count after detach must match.
    pub threads: usize,
}

impl Target {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
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
        // SIGKILL works even on a ptrace-stopped process.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Give the kernel a moment to tear down thousands of threads before
        // the next run starts timing.
        std::thread::sleep(Duration::from_millis(20));
    }
}
