//! The programs we attach to: C sources under `bench/targets/`, compiled at
//! run time so the benchmark needs nothing but a C compiler.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
}

impl Scenario {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, n) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected sleep:N or spin:N"))?;
        let n: usize = n
            .parse()
            .map_err(|_| format!("`{s}`: `{n}` is not a thread count"))?;
        match kind {
            "sleep" | "sleeping" => Ok(Scenario::Sleeping(n)),
            "spin" | "spinning" => Ok(Scenario::Spinning(n)),
            _ => Err(format!("`{s}`: unknown kind `{kind}` (sleep or spin)")),
        }
    }

    pub fn title(&self) -> String {
        match self {
            Scenario::Sleeping(n) => format!("{n} sleeping thread{}", plural(*n)),
            Scenario::Spinning(n) => format!("{n} spinning thread{}", plural(*n)),
        }
    }

    /// Threads the target has once ready: the workers plus main.
    pub fn expected_threads(&self) -> usize {
        match self {
            Scenario::Sleeping(n) | Scenario::Spinning(n) => n + 1,
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
}

impl Targets {
    /// Compile the targets into `dir` with `cc -O1 -g -pthread` (debug info
    /// so peers that load symbols pay their real cost).
    pub fn build(dir: &Path) -> Result<Self> {
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
        Ok(Targets { threads_bin })
    }

    /// Start a fresh target and wait until it prints `ready` (all threads
    /// exist), so no peer ever races thread creation.
    pub fn spawn(&self, scenario: Scenario, deadline: Instant) -> Result<Target> {
        let (mode, n) = match scenario {
            Scenario::Sleeping(n) => ("sleep", n),
            Scenario::Spinning(n) => ("spin", n),
        };
        let mut child = Command::new(&self.threads_bin)
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
        let mut target = Target { child };
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
        let have = crate::procfs::tasks(target.pid())?.len();
        if have != scenario.expected_threads() {
            bail!(
                "target has {have} threads, expected {}",
                scenario.expected_threads()
            );
        }
        Ok(target)
    }
}

/// A running target; killed and reaped on drop so a failed run never leaks
/// a spinning process that would skew the following runs.
pub struct Target {
    child: Child,
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
        // SIGKILL works even on a ptrace-stopped process.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Give the kernel a moment to tear down thousands of threads before
        // the next run starts timing.
        std::thread::sleep(Duration::from_millis(20));
    }
}
