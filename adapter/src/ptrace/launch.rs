//! Starting a program under latch (`launch`), on the ptrace thread.
//!
//! The program is a child that waits, before its `execve`, until this thread has seized
//! it; so the first stop latch sees is the exec itself, before the new program's first
//! instruction. From there on it is a process like an attached one, with one thread.
//!
//! Two ways in:
//! - `Start::Fork`: this thread forks the child itself, so that it is both the child's
//!   parent and its tracer: the exit status comes to one place, and no zombie is left
//!   for another thread to reap.
//! - `Start::Adopt`: the child was started elsewhere (`latch run-in-terminal`, run by
//!   the editor's terminal for DAP's `runInTerminal`) and waits on a socket; it is
//!   seized by pid and then told to go on.
//!
//! Either way the tracee has PTRACE_O_EXITKILL: a launched program belongs to the debug
//! session, and if latch dies without a word (SIGKILL) the program dies with it instead
//! of running on with breakpoints in its memory.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::sys::{self, WaitEvent};
use super::tracer::EventWait;
use crate::procfs::Pid;

/// How long the program may take from fork to its exec.
const EXEC_DEADLINE: Duration = Duration::from_secs(30);

/// A program to start, with everything the child needs prepared before the fork (the
/// child of a threaded process may only make async-signal-safe calls).
pub struct ForkSpec {
    /// The path given to execve.
    pub program: CString,
    /// argv, argv[0] first.
    pub argv: Vec<CString>,
    /// The whole environment, `NAME=value` each.
    pub envp: Vec<CString>,
    pub cwd: Option<CString>,
    /// The child's stdin, stdout and stderr.
    pub stdio: [OwnedFd; 3],
    pub disable_aslr: bool,
}

pub enum Start {
    Fork(ForkSpec),
    /// A process that waits on `go` (see `crate::terminal`): seize it, write a byte.
    Adopt {
        pid: Pid,
        go: std::os::unix::net::UnixStream,
    },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LaunchError {
    #[error("could not start the program: {0}")]
    Os(String),
    #[error("could not start {program}: {reason}")]
    Exec { program: String, reason: String },
    #[error("the program exited ({code}) before it started ({program})")]
    ExitedEarly { program: String, code: i32 },
    #[error("could not trace the program (pid {pid}): {reason}")]
    Seize { pid: Pid, reason: String },
    #[error("the program did not start within {0:?}; it was killed")]
    Timeout(Duration),
}

/// Starts the program and returns its pid once it is stopped at its exec, seized.
pub fn start(start: Start, waiter: &mut dyn EventWait) -> Result<Pid, LaunchError> {
    match start {
        Start::Fork(spec) => fork_and_seize(spec, waiter),
        Start::Adopt { pid, mut go } => {
            if let Err(err) = sys::seize_launched(pid) {
                let reason = format!(
                    "{err}. The program waits in the terminal; close the terminal to end it"
                );
                return Err(LaunchError::Seize { pid, reason });
            }
            let program = crate::procfs::comm(pid).unwrap_or_else(|_| format!("pid {pid}"));
            if let Err(err) = go.write_all(b"g") {
                kill_and_reap(pid);
                return Err(LaunchError::Os(format!(
                    "could not tell pid {pid} to start: {err}"
                )));
            }
            wait_for_exec(pid, &program, waiter, || {
                // The helper writes why its exec failed before it exits.
                let mut why = String::new();
                let _ = go.read_to_string(&mut why);
                (!why.is_empty()).then_some(why)
            })
        }
    }
}

fn fork_and_seize(spec: ForkSpec, waiter: &mut dyn EventWait) -> Result<Pid, LaunchError> {
    let os = |what: &str, err: nix::Error| LaunchError::Os(format!("{what}: {err}"));
    // The child blocks on `go` until it is seized; `errors` carries errno if its exec
    // fails (both close on exec, so a successful exec reads as end of file).
    let (go_read, go_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| os("pipe", e))?;
    let (errors_read, errors_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| os("pipe", e))?;
    let argv: Vec<*const libc::c_char> = spec
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = spec
        .envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let child_setup = ChildSetup {
        stdio: [
            spec.stdio[0].as_raw_fd(),
            spec.stdio[1].as_raw_fd(),
            spec.stdio[2].as_raw_fd(),
        ],
        go: go_read.as_raw_fd(),
        errors: errors_write.as_raw_fd(),
        cwd: spec.cwd.as_ref().map(|c| c.as_ptr()),
        program: spec.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        disable_aslr: spec.disable_aslr,
        nice: crate::priority::original_nice(),
    };
    // SAFETY: the child only runs `child_setup.run`, which makes async-signal-safe calls
    // on memory prepared above, and never returns.
    let pid = match unsafe { libc::fork() } {
        -1 => {
            return Err(LaunchError::Os(format!(
                "fork: {}",
                std::io::Error::last_os_error()
            )))
        }
        0 => unsafe { child_setup.run() },
        pid => pid,
    };
    drop(spec.stdio);
    drop(go_read);
    drop(errors_write);
    let program = spec.program.to_string_lossy().into_owned();
    if let Err(err) = sys::seize_launched(pid) {
        kill_and_reap(pid);
        return Err(LaunchError::Seize {
            pid,
            reason: err.to_string(),
        });
    }
    // The child reads this and execs.
    let mut go = std::fs::File::from(go_write);
    if let Err(err) = go.write_all(b"g") {
        kill_and_reap(pid);
        return Err(LaunchError::Os(format!("could not start the child: {err}")));
    }
    drop(go);
    let mut errors = std::fs::File::from(errors_read);
    wait_for_exec(pid, &program, waiter, move || {
        let mut errno = [0u8; 4];
        errors
            .read_exact(&mut errno)
            .ok()
            .map(|()| std::io::Error::from_raw_os_error(i32::from_ne_bytes(errno)).to_string())
    })
}

/// Waits for the child's exec stop, passing on any signal it gets before that.
fn wait_for_exec(
    pid: Pid,
    program: &str,
    waiter: &mut dyn EventWait,
    why_exited: impl FnOnce() -> Option<String>,
) -> Result<Pid, LaunchError> {
    let deadline = Instant::now() + EXEC_DEADLINE;
    loop {
        let Some(event) = sys::wait_thread(pid) else {
            if Instant::now() > deadline {
                kill_and_reap(pid);
                return Err(LaunchError::Timeout(EXEC_DEADLINE));
            }
            waiter.wait_for_events(Duration::from_millis(50));
            continue;
        };
        match event {
            WaitEvent::Event { event, .. } if event == libc::PTRACE_EVENT_EXEC => return Ok(pid),
            WaitEvent::Event { .. } => {
                let _ = sys::cont(pid, 0);
            }
            WaitEvent::Signal { signal, .. } => {
                let _ = sys::cont(pid, signal);
            }
            WaitEvent::Exited { code, .. } => {
                return Err(match why_exited() {
                    Some(reason) => LaunchError::Exec {
                        program: program.to_string(),
                        reason,
                    },
                    None => LaunchError::ExitedEarly {
                        program: program.to_string(),
                        code,
                    },
                })
            }
            WaitEvent::Killed { signal, .. } => {
                return Err(LaunchError::ExitedEarly {
                    program: program.to_string(),
                    code: 128 + signal,
                })
            }
        }
    }
}

fn kill_and_reap(pid: Pid) {
    // SAFETY: kill and waitpid on our own child / tracee.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(pid, &mut status, libc::__WALL);
    }
}

/// What the forked child does, as raw pointers and descriptors prepared by the parent.
struct ChildSetup {
    stdio: [libc::c_int; 3],
    go: libc::c_int,
    errors: libc::c_int,
    cwd: Option<*const libc::c_char>,
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    disable_aslr: bool,
    nice: libc::c_int,
}

impl ChildSetup {
    /// Runs in the child between fork and exec: only async-signal-safe calls.
    unsafe fn run(&self) -> ! {
        let fail = |errors: libc::c_int| -> ! {
            let errno = *libc::__errno_location();
            let bytes = errno.to_ne_bytes();
            libc::write(errors, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127)
        };
        // The program starts as it would from a shell: latch's signal mask, ignored
        // signals (Rust ignores SIGPIPE), scheduling and nice value are latch's own.
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        // 64 signals on Linux; sigaction refuses the few it must, harmlessly.
        for signal in 1..=64 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        let normal = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal);
        libc::setpriority(libc::PRIO_PROCESS, 0, self.nice);
        for (target, fd) in self.stdio.iter().enumerate() {
            let target = target as libc::c_int;
            // dup2 onto itself keeps close-on-exec: clear it instead (latch started
            // with a standard descriptor closed hands out that number).
            let done = if *fd == target {
                libc::fcntl(target, libc::F_SETFD, 0)
            } else {
                libc::dup2(*fd, target)
            };
            if done < 0 {
                fail(self.errors);
            }
        }
        if let Some(cwd) = self.cwd {
            if libc::chdir(cwd) != 0 {
                fail(self.errors);
            }
        }
        if self.disable_aslr {
            let current = libc::personality(0xffff_ffff);
            if current != -1 {
                libc::personality((current | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong);
            }
        }
        // Wait until latch has seized us: then the exec is the first thing it sees.
        let mut byte = 0u8;
        if libc::read(self.go, (&mut byte as *mut u8).cast(), 1) != 1 {
            libc::_exit(127);
        }
        libc::execve(self.program, self.argv, self.envp);
        fail(self.errors)
    }
}
