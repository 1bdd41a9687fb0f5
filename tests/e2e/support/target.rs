//! A running target process, killed and reaped when dropped (even on panic).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use super::fixtures::{c_fixture, tmp_dir, Fixture};
use super::procfs::{self, Task};

pub struct Target {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub pid: i32,
    pub heartbeat: PathBuf,
    /// Long-lived tasks at the time "ready" was printed.
    pub initial: Vec<Task>,
    reaped: bool,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh heartbeat file path.
pub fn heartbeat_path() -> PathBuf {
    let dir = tmp_dir().join("heartbeat");
    std::fs::create_dir_all(&dir).unwrap();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("hb-{}-{n}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// Spawns, retrying on ETXTBSY (another test thread may have forked while a
/// freshly copied executable was still open for writing).
pub fn spawn_retrying(cmd: &mut Command) -> Child {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match cmd.spawn() {
            Ok(c) => return c,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::yield_now();
            }
            Err(e) => panic!("cannot start {cmd:?}: {e}"),
        }
    }
}

/// Runs a command to completion within `within` (killed otherwise).
pub fn run_with_deadline(cmd: &mut Command, within: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn_retrying(cmd);
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(within).is_err() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    let out = child.wait_with_output().expect("wait for child");
    let _ = tx.send(());
    assert!(
        !watchdog.join().unwrap(),
        "{cmd:?} did not finish within {within:?} (killed); it printed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Target {
    /// The Go fixture (`gotarget BUSY SLEEPING`), started; None, when skipping is allowed (otherwise a failure;
    /// see `skip_or_fail`), when there is no Go toolchain to build it.
    pub fn start_go(args: &[&str]) -> Option<Target> {
        super::fixtures::go_fixture()?;
        Some(Target::start(Fixture::Go, args))
    }

    /// Starts a fixture with arguments and waits for its "ready" line.
    pub fn start(f: Fixture, args: &[&str]) -> Target {
        let program = if f == Fixture::Go {
            super::fixtures::go_fixture().expect("Go fixture unavailable")
        } else {
            c_fixture(f)
        };
        let mut cmd = Command::new(program);
        cmd.args(args);
        let mut t = Target::spawn(cmd);
        t.wait_ready(Duration::from_secs(15));
        if f == Fixture::Churn {
            // Long-lived threads are recorded; now start the churn.
            t.send_line("go");
        }
        t
    }

    /// Spawns any command as a target with a heartbeat file; does not wait for
    /// "ready" (see `wait_ready`).
    pub fn spawn(cmd: Command) -> Target {
        Target::spawn_with_heartbeat(cmd, heartbeat_path())
    }

    fn spawn_with_heartbeat(mut cmd: Command, heartbeat: PathBuf) -> Target {
        cmd.env("LATCH_HEARTBEAT", &heartbeat)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = spawn_retrying(&mut cmd);
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let pid = child.id() as i32;
        Target {
            stdin: child.stdin.take(),
            child,
            lines,
            pid,
            heartbeat,
            initial: Vec::new(),
            reaped: false,
        }
    }

    /// Waits for "ready <pid>" and records the long-lived tasks.
    pub fn wait_ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(pid) = line.strip_prefix("ready ") {
                        assert_eq!(
                            pid.trim().parse::<i32>().ok(),
                            Some(self.pid),
                            "ready line {line:?}"
                        );
                        break;
                    }
                }
                Err(e) => panic!(
                    "target {} did not print ready within {within:?}: {e}",
                    self.pid
                ),
            }
        }
        self.initial = procfs::live_tasks(self.pid);
        assert!(
            !self.initial.is_empty(),
            "target {} has no live tasks",
            self.pid
        );
    }

    /// Waits for the next line of the target's stdout that starts with `prefix`
    /// (others are skipped); None if none came within `within`.
    pub fn next_line(&mut self, prefix: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits for the next line of the target's stdout that starts with `prefix` and
    /// returns the rest of it.
    pub fn wait_line(&mut self, prefix: &str, within: Duration) -> String {
        match self.next_line(prefix, within) {
            Some(line) => line[prefix.len()..].trim().to_string(),
            None => panic!(
                "target {} printed no {prefix:?} line within {within:?}",
                self.pid
            ),
        }
    }

    /// A line starting with `prefix` the target has already printed, without waiting.
    pub fn printed(&mut self, prefix: &str) -> Option<String> {
        self.lines.try_iter().find(|line| line.starts_with(prefix))
    }

    /// The tid of the live task named `comm`.
    pub fn tid_named(&self, comm: &str) -> i32 {
        procfs::live_tasks(self.pid)
            .into_iter()
            .find(|t| t.comm == comm)
            .unwrap_or_else(|| panic!("target {} has no thread {comm}", self.pid))
            .tid
    }

    /// Takes the threads the target has now as those later checks expect (Go's runtime
    /// starts threads of its own after its ready line).
    pub fn record_threads(&mut self) {
        self.initial = procfs::live_tasks(self.pid);
    }

    /// Number of long-lived threads when the target became ready.
    pub fn thread_count(&self) -> usize {
        self.initial.len()
    }

    pub fn heartbeat_path(&self) -> &Path {
        &self.heartbeat
    }

    /// Writes a command line to the target's stdin ("exit N").
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("target stdin closed");
        writeln!(stdin, "{line}").expect("write to target stdin");
        stdin.flush().unwrap();
    }

    pub fn signal(&self, sig: i32) {
        let rc = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(
            rc,
            0,
            "kill({}, {sig}): {}",
            self.pid,
            std::io::Error::last_os_error()
        );
    }

    /// Asserts the target runs on untraced (see `procfs::assert_runs_on`).
    pub fn assert_runs_on(&self, was_stopped_before: bool) {
        procfs::assert_runs_on(self.pid, &self.heartbeat, &self.initial, was_stopped_before);
    }

    /// For Go targets: see `procfs::assert_runs_on_with_new_threads_allowed`.
    pub fn assert_runs_on_with_new_threads_allowed(&self) {
        procfs::assert_runs_on_with_new_threads_allowed(self.pid, &self.heartbeat, &self.initial);
    }

    /// Asserts the target is alive (not a zombie, not reaped).
    pub fn is_alive(&mut self) -> bool {
        !self.reaped
            && matches!(self.child.try_wait(), Ok(None))
            && procfs::process_state(self.pid).is_some_and(|s| s != 'Z' && s != 'X')
    }

    /// Waits for the target to die and returns its wait status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                self.reaped = true;
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "target {} still alive after {within:?}",
                self.pid
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits (up to `within`) until the target has exited, without reaping it.
    pub fn wait_zombie_or_gone(&self, within: Duration) -> bool {
        procfs::wait_for(within, || {
            procfs::process_state(self.pid).is_none_or(|s| s == 'Z' || s == 'X')
        })
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
        // Reap it; if a tracer still holds it the zombie may take a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        eprintln!(
            "warning: target {} could not be reaped within 10 s",
            self.pid
        );
    }
}

impl Target {
    /// As `start_cmd`, for a target that runs as another user (`uid`): its heartbeat
    /// file is made first and given to that user, who may not create files here.
    pub fn start_cmd_with_heartbeat_owned_by(mut cmd: Command, uid: Option<u32>) -> Target {
        let heartbeat = heartbeat_path();
        if let Some(uid) = uid {
            std::fs::write(&heartbeat, [0u8; 4096]).unwrap();
            std::os::unix::fs::chown(&heartbeat, Some(uid), None).unwrap();
        }
        cmd.env("LATCH_HEARTBEAT", &heartbeat);
        let mut t = Target::spawn_with_heartbeat(cmd, heartbeat);
        t.wait_ready(Duration::from_secs(15));
        t
    }

    /// Starts any command and waits for its "ready" line.
    pub fn start_cmd(cmd: Command) -> Target {
        let mut t = Target::spawn(cmd);
        t.wait_ready(Duration::from_secs(15));
        t
    }
}
