//! Everything that calls ptrace or waitpid, on ONE dedicated OS thread.
//!
//! Linux ties a tracee to the tracer *thread*: ptrace from any other thread fails with
//! ESRCH, and when the tracing thread exits the kernel detaches every tracee. So the
//! tracer lives on a `std::thread` for the whole session, never on a pool. Other threads
//! talk to it through [`BackendHandle`] (a command channel plus an eventfd to wake it)
//! and hear from it through [`BackendEvent`]s.

pub mod breakpoints;
mod control;
mod displaced;
mod errors;
pub mod launch;
mod memory;
mod sys;
mod tracer;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

pub use breakpoints::{Condition, HitCondition, HitContext, LogRenderer, UserBreakpoint};
pub use control::{SignalFilters, StepResult};
pub use errors::{explain_permission, validate, AttachError};
use tracer::{EventWait, Tracer};

use crate::procfs::{self, Pid};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    pub tid: Pid,
    /// `comm` of the thread.
    pub name: String,
    pub is_main: bool,
    /// Still running while the rest of the process is held stopped: blocked in the
    /// kernel (vfork, D state); it stops as soon as the kernel lets it.
    pub running_while_held: bool,
}

impl ThreadInfo {
    pub fn read(pid: Pid, tid: Pid) -> ThreadInfo {
        ThreadInfo {
            tid,
            name: ThreadInfo::read_name(pid, tid),
            is_main: tid == pid,
            running_while_held: false,
        }
    }

    pub fn read_name(pid: Pid, tid: Pid) -> String {
        procfs::task_comm(pid, tid).unwrap_or_else(|_| "?".into())
    }

    /// The names of `tids`, in order; side by side on every core when there are enough
    /// to repay starting a thread. Each is an open and a read of /proc, 6-9 µs here:
    /// 4000 threads took 35 ms on one core.
    pub fn read_names(pid: Pid, tids: &[Pid]) -> Vec<String> {
        const AT_LEAST_PER_THREAD: usize = 128;
        let cores = procfs::usable_cores();
        let threads = (tids.len() / AT_LEAST_PER_THREAD).clamp(1, cores);
        let read = |part: &[Pid]| -> Vec<String> {
            part.iter()
                .map(|&tid| ThreadInfo::read_name(pid, tid))
                .collect()
        };
        if threads == 1 {
            return read(tids);
        }
        let mut parts = tids.chunks(tids.len().div_ceil(threads));
        let here = parts.next().unwrap_or_default();
        std::thread::scope(|scope| {
            let helpers: Vec<_> = parts
                .map(|part| {
                    let helper = std::thread::Builder::new()
                        .name("latch-names".into())
                        .spawn_scoped(scope, move || read(part));
                    (part, helper)
                })
                .collect();
            let mut names = read(here);
            for (part, helper) in helpers {
                // A helper that could not start is read here; one that failed leaves its
                // threads unnamed, not lost.
                names.extend(match helper {
                    Ok(helper) => helper
                        .join()
                        .unwrap_or_else(|_| vec!["?".to_string(); part.len()]),
                    Err(_) => read(part),
                });
            }
            names
        })
    }
}

#[derive(Debug, Clone)]
pub struct AttachReport {
    pub pid: Pid,
    pub name: String,
    /// The thread ids, in ascending order. Names are read on demand ([`BackendHandle::threads`]):
    /// reading a thousand `comm` files costs milliseconds the attach need not spend.
    pub tids: Vec<Pid>,
    /// Threads that would not stop (blocked in the kernel: vfork, D state); they are
    /// traced and will stop when the kernel lets them.
    pub stragglers: Vec<Pid>,
    /// Threads that could not be attached (another tracer holds them, say), and why:
    /// they run on, untouched.
    pub refused: Vec<(Pid, String)>,
    /// The thread to show first: the leader, or the first thread if the leader exited.
    pub main_tid: Pid,
    /// The process was stopped by job control (e.g. `kill -STOP`) before we came.
    pub was_job_stopped: bool,
    /// The thread id the user gave instead of the process id (copied from `top -H`,
    /// `ps -L` or a log): the whole process is attached, and this thread is the one
    /// shown as stopped.
    pub named_thread: Option<Pid>,
    pub elapsed: Duration,
}

impl AttachReport {
    /// "2 threads could not be attached and run on: 1234 (traced by pid 99 (gdb))".
    pub fn refused_note(&self) -> Option<String> {
        if self.refused.is_empty() {
            return None;
        }
        let each: Vec<String> = self
            .refused
            .iter()
            .map(|(tid, why)| format!("{tid} ({why})"))
            .collect();
        Some(format!(
            "{} threads could not be attached and run on, not stopped: {}",
            self.refused.len(),
            each.join(", ")
        ))
    }

    /// The thread to report a stop of after the attach: the one the user named, or the
    /// main thread.
    pub fn focus_tid(&self) -> Pid {
        self.named_thread
            .filter(|tid| self.tids.contains(tid))
            .unwrap_or(self.main_tid)
    }

    /// "1165 is a thread of process 1163 (name): attaching to the process", when the
    /// user gave a thread id.
    pub fn named_thread_note(&self) -> Option<String> {
        self.named_thread.map(|tid| {
            format!(
                "{tid} is a thread of process {} ({}): attaching to the process",
                self.pid, self.name
            )
        })
    }
}

/// What a stop achieved.
#[derive(Debug, Clone, Default)]
pub struct Stopped {
    /// Every thread, ascending.
    pub tids: Vec<Pid>,
    /// Threads that could not stop (blocked in the kernel); each stops and stays
    /// stopped as soon as the kernel lets it.
    pub running: Vec<Pid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetachMode {
    /// The DAP default for attach: the target runs on as before.
    Run,
    /// `suspendDebuggee`: released, but stopped by SIGSTOP so it can be attached again.
    LeaveStopped,
    /// `terminateDebuggee`: SIGKILL.
    Kill,
}

#[derive(Debug, Clone)]
pub enum BackendEvent {
    ThreadStarted(ThreadInfo),
    ThreadExited(Pid),
    /// The whole process is gone; `code` is 128 + signal when a signal ended it.
    ProcessExited {
        code: i32,
    },
    /// Thread `tid` stopped for `reason`, and every other thread with it.
    Stopped {
        tid: Pid,
        reason: StopReason,
    },
    /// A line for the debug console (a logpoint's message).
    Output(String),
    /// A step cannot end as planned (its thread exited, the process exec'd): why.
    StepAbandoned(String),
    /// With `followForks`: the target forked `pid`, which is let go stopped (SIGSTOP),
    /// clean of breakpoints, for a session of its own to attach.
    ChildProcess {
        pid: Pid,
        parent: Pid,
    },
}

/// Why the target stopped on its own (not by `pause`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// User breakpoints that hit, by DAP id.
    Breakpoint(Vec<i64>),
    /// A step reached its target, or a single step blocked in the kernel ended.
    Step,
    /// A signal the user stops on; continuing delivers it. `code` is `si_code`,
    /// `address` the fault address of a fault, `caught` whether the program has a
    /// handler for it.
    Signal {
        signal: i32,
        code: i32,
        address: Option<u64>,
        caught: bool,
    },
    /// The dynamic loader changed the list of libraries.
    Libraries,
    /// The process started another program (exec); only its thread waits, for
    /// `release`.
    Exec,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("not attached to a process")]
    NotAttached,
    #[error("the process has exited")]
    Exited,
    #[error("the ptrace thread is gone")]
    Gone,
}

enum Command {
    Attach {
        pid: i64,
        reply: oneshot::Sender<Result<AttachReport, AttachError>>,
    },
    /// Start a program (see `launch.rs`); answered when it is stopped at its exec.
    Launch {
        start: launch::Start,
        reply: oneshot::Sender<Result<AttachReport, launch::LaunchError>>,
    },
    /// Whether forked children are followed (handed over stopped) or let go.
    FollowForks {
        follow: bool,
        reply: oneshot::Sender<()>,
    },
    /// The process was attached in a stop a parent latch put it in when handing it
    /// over (`ChildProcess`): end that job-control stop, as if it had never been.
    EndHandOverStop { reply: oneshot::Sender<()> },
    StopAll {
        reply: oneshot::Sender<Result<Stopped, BackendError>>,
    },
    ResumeAll {
        reply: oneshot::Sender<Result<(), BackendError>>,
    },
    /// `continue` with `singleThread`: only this thread runs.
    ResumeThread {
        tid: Pid,
        reply: oneshot::Sender<Result<(), BackendError>>,
    },
    SetBreakpoints {
        breakpoints: Vec<UserBreakpoint>,
        reply: oneshot::Sender<Result<BreakpointFailures, BackendError>>,
    },
    WatchLibraries {
        hook: Option<u64>,
        reply: oneshot::Sender<()>,
    },
    SetSignalFilters {
        filters: SignalFilters,
        reply: oneshot::Sender<()>,
    },
    StepInstruction {
        tid: Pid,
        reply: oneshot::Sender<Result<StepResult, String>>,
    },
    RunTo {
        tid: Pid,
        address: u64,
        min_sp: u64,
        single_thread: bool,
        goroutine: Option<u64>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    ReadCode {
        address: u64,
        len: usize,
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
    ReadMemory {
        address: u64,
        len: usize,
        reply: oneshot::Sender<Vec<u8>>,
    },
    WriteMemory {
        address: u64,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<usize, String>>,
    },
    Release {
        tid: Pid,
        reply: oneshot::Sender<()>,
    },
    SetScratch {
        address: u64,
        len: usize,
        reply: oneshot::Sender<()>,
    },
    ThreadRegisters {
        tid: Pid,
        reply: oneshot::Sender<Option<libc::user_regs_struct>>,
    },
    Threads {
        reply: oneshot::Sender<Result<Vec<ThreadInfo>, BackendError>>,
    },
    Registers {
        reply: oneshot::Sender<Result<Vec<(Pid, libc::user_regs_struct)>, BackendError>>,
    },
    Signal {
        signal: i32,
        reply: oneshot::Sender<Result<(), BackendError>>,
    },
    Detach {
        mode: DetachMode,
        /// Only if the process attached is this one (a waitFor letting go of what it
        /// caught must not detach another session's process).
        only: Option<Pid>,
        reply: oneshot::Sender<()>,
    },
    /// Detach and end the ptrace thread now, whoever else still holds a handle.
    Shutdown,
    /// A waitFor is about to wait: keep the ptrace thread boosted until the attach, so
    /// the wake-up that starts it is not queued behind the new process's start-up.
    Arm { armed: bool },
    /// The stop has been reported: read thread names and registers ahead while idle,
    /// then send the thread list, if every thread is still stopped.
    ReadAhead {
        listed: oneshot::Sender<Vec<ThreadInfo>>,
    },
}

impl Command {
    #[cfg(debug_assertions)]
    fn name(&self) -> &'static str {
        match self {
            Command::Attach { .. } => "attach",
            Command::Launch { .. } => "launch",
            Command::FollowForks { .. } => "follow_forks",
            Command::EndHandOverStop { .. } => "end_hand_over_stop",
            Command::StopAll { .. } => "stop_all",
            Command::ResumeAll { .. } => "resume_all",
            Command::ResumeThread { .. } => "resume_thread",
            Command::SetBreakpoints { .. } => "set_breakpoints",
            Command::WatchLibraries { .. } => "watch_libraries",
            Command::SetSignalFilters { .. } => "set_signal_filters",
            Command::StepInstruction { .. } => "step_instruction",
            Command::RunTo { .. } => "run_to",
            Command::ReadCode { .. } => "read_code",
            Command::ReadMemory { .. } => "read_memory",
            Command::WriteMemory { .. } => "write_memory",
            Command::ThreadRegisters { .. } => "thread_registers",
            Command::Release { .. } => "release",
            Command::SetScratch { .. } => "set_scratch",
            Command::Threads { .. } => "threads",
            Command::Registers { .. } => "registers",
            Command::Signal { .. } => "signal",
            Command::Detach { .. } => "detach",
            Command::Shutdown => "shutdown",
            Command::Arm { .. } => "arm",
            Command::ReadAhead { .. } => "read_ahead",
        }
    }
}

/// Per breakpoint id, the addresses that could not be written and why.
pub type BreakpointFailures = Vec<(i64, Vec<(u64, String)>)>;

/// A cloneable way to command the ptrace thread from any thread.
#[derive(Clone)]
pub struct BackendHandle {
    commands: mpsc::Sender<Command>,
    wake: Arc<OwnedFd>,
}

/// Owns the ptrace thread: dropping it detaches from the target and joins the thread.
pub struct Backend {
    handle: Option<BackendHandle>,
    /// The ptrace thread, and any that took over from it (see `Worker::hand_over`).
    threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
}

impl Backend {
    pub fn spawn() -> std::io::Result<(Backend, tokio::sync::mpsc::UnboundedReceiver<BackendEvent>)>
    {
        let (commands, command_rx) = mpsc::channel();
        let wake = Arc::new(new_eventfd()?);
        let (event_tx, event_rx) = tokio::sync::mpsc::unbounded_channel();
        let (sigchld_read, sigchld_write) = UnixStream::pair()?;
        sigchld_read.set_nonblocking(true)?;
        signal_hook::low_level::pipe::register(libc::SIGCHLD, sigchld_write)?;
        let thread_wake = wake.clone();
        let threads = Arc::new(Mutex::new(Vec::new()));
        let worker = Worker {
            commands: command_rx,
            wake: thread_wake,
            sigchld: sigchld_read,
            events: event_tx,
            tracer: None,
            armed: None,
            reading_ahead: false,
            listed: None,
            detached: None,
            follow_forks: false,
        };
        let worker_threads = threads.clone();
        let thread = std::thread::Builder::new()
            .name("latch-ptrace".into())
            .spawn(move || worker_main(worker, worker_threads))?;
        lock(&threads).push(thread);
        Ok((
            Backend {
                handle: Some(BackendHandle { commands, wake }),
                threads,
            },
            event_rx,
        ))
    }

    pub fn handle(&self) -> BackendHandle {
        self.handle.clone().expect("handle lives until drop")
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // An explicit command (not just closing the channel) wakes the worker at once
        // and ends it even if a handle clone lingers elsewhere.
        if let Some(handle) = self.handle.take() {
            drop(handle.send(|_: oneshot::Sender<()>| Command::Shutdown));
        }
        // A thread that handed over to another pushed its successor before it ended.
        loop {
            let Some(thread) = lock(&self.threads).pop() else {
                break;
            };
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The life of a ptrace thread: serve commands until the session ends, or until a
/// detach left threads that only this thread's end can release; then another thread
/// takes over the same channels, so the session never notices.
fn worker_main(mut worker: Worker, threads: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>) {
    if worker.run() != RunEnd::HandOver {
        return;
    }
    // A priority boost belongs to this thread; the next one raises its own.
    worker.armed = None;
    let ending = sys::gettid();
    let successor_threads = threads.clone();
    let spawned = std::thread::Builder::new()
        .name("latch-ptrace".into())
        .spawn(move || {
            // The detach is answered only once the kernel has let go of what this
            // thread still traced: the client is told "detached" when it is true.
            wait_until_thread_ended(ending);
            if let Some(reply) = worker.detached.take() {
                let _ = reply.send(());
            }
            worker_main(worker, successor_threads)
        });
    match spawned {
        Ok(thread) => lock(&threads).push(thread),
        // The worker is gone with the closure: the session hears `Gone` from now on.
        Err(err) => tracing::error!("could not start the next ptrace thread: {err}"),
    }
}

/// Waits (at most a second) until the thread `tid` of this process has ended: the kernel
/// detaches a thread's tracees as it exits, before its /proc entry goes.
fn wait_until_thread_ended(tid: Pid) {
    let path = format!("/proc/self/task/{tid}");
    let deadline = Instant::now() + Duration::from_secs(1);
    while std::path::Path::new(&path).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunEnd {
    /// The session is over.
    Finished,
    /// End this thread and go on in a new one (see `worker_main`).
    HandOver,
}

impl BackendHandle {
    fn send<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(make(tx)).is_ok() {
            let one: u64 = 1;
            // SAFETY: 8 bytes from a valid u64 to our eventfd.
            unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
        rx
    }

    pub async fn attach(&self, pid: i64) -> Result<AttachReport, AttachError> {
        self.send(|reply| Command::Attach { pid, reply })
            .await
            .unwrap_or_else(|_| Err(gone_attach(pid)))
    }

    pub fn attach_blocking(&self, pid: i64) -> Result<AttachReport, AttachError> {
        self.send(|reply| Command::Attach { pid, reply })
            .blocking_recv()
            .unwrap_or_else(|_| Err(gone_attach(pid)))
    }

    /// Starts a program under latch; answers once it is stopped at its first
    /// instruction (its exec), as an attach would.
    pub async fn launch(&self, start: launch::Start) -> Result<AttachReport, launch::LaunchError> {
        self.send(|reply| Command::Launch { start, reply })
            .await
            .unwrap_or_else(|_| Err(launch::LaunchError::Os("the ptrace thread is gone".into())))
    }

    pub async fn follow_forks(&self, follow: bool) {
        let _ = self
            .send(|reply| Command::FollowForks { follow, reply })
            .await;
    }

    pub async fn end_hand_over_stop(&self) {
        let _ = self.send(|reply| Command::EndHandOverStop { reply }).await;
    }

    /// Stops every thread; answers their ids (names come with `threads`).
    pub async fn stop_all(&self) -> Result<Stopped, BackendError> {
        self.send(|reply| Command::StopAll { reply })
            .await
            .unwrap_or(Err(BackendError::Gone))
    }

    pub async fn resume_all(&self) -> Result<(), BackendError> {
        self.send(|reply| Command::ResumeAll { reply })
            .await
            .unwrap_or(Err(BackendError::Gone))
    }

    /// `continue` with `singleThread`: `tid` runs, every other thread stays stopped.
    pub async fn resume_thread(&self, tid: Pid) -> Result<(), BackendError> {
        self.send(|reply| Command::ResumeThread { tid, reply })
            .await
            .unwrap_or(Err(BackendError::Gone))
    }

    /// Replaces every user breakpoint; written at once, even while the target runs.
    pub async fn set_breakpoints(
        &self,
        breakpoints: Vec<UserBreakpoint>,
    ) -> Result<BreakpointFailures, BackendError> {
        self.send(|reply| Command::SetBreakpoints { breakpoints, reply })
            .await
            .unwrap_or(Err(BackendError::Gone))
    }

    /// Stop (with reason `Libraries`) whenever the dynamic loader changes the list of
    /// libraries, at its hook `hook`; `None` stops watching.
    pub async fn watch_libraries(&self, hook: Option<u64>) {
        let _ = self
            .send(|reply| Command::WatchLibraries { hook, reply })
            .await;
    }

    pub async fn set_signal_filters(&self, filters: SignalFilters) {
        let _ = self
            .send(|reply| Command::SetSignalFilters { filters, reply })
            .await;
    }

    /// Runs one instruction of `tid`; the other threads stay stopped.
    pub async fn step_instruction(&self, tid: Pid) -> Result<StepResult, String> {
        self.send(|reply| Command::StepInstruction { tid, reply })
            .await
            .unwrap_or_else(|_| Err(BackendError::Gone.to_string()))
    }

    /// Runs until `tid` reaches `address` in a frame at or above `min_sp`: a `Stopped`
    /// event with reason `Step` says so.
    pub async fn run_to(
        &self,
        tid: Pid,
        address: u64,
        min_sp: u64,
        single_thread: bool,
        goroutine: Option<u64>,
    ) -> Result<(), String> {
        self.send(|reply| Command::RunTo {
            tid,
            address,
            min_sp,
            single_thread,
            goroutine,
            reply,
        })
        .await
        .unwrap_or_else(|_| Err(BackendError::Gone.to_string()))
    }

    /// The program's own code at `address`: memory with latch's breakpoints taken out.
    /// Up to `len` bytes at `address` as the program sees them (latch's breakpoint bytes
    /// put back), ending where memory stops being readable.
    pub async fn read_memory(&self, address: u64, len: usize) -> Vec<u8> {
        self.send(|reply| Command::ReadMemory {
            address,
            len,
            reply,
        })
        .await
        .unwrap_or_default()
    }

    /// Writes `bytes` at `address`, up to the first page that cannot be written: how
    /// many were written. Breakpoints in the range stay, over the new bytes.
    pub async fn write_memory(&self, address: u64, bytes: Vec<u8>) -> Result<usize, String> {
        self.send(|reply| Command::WriteMemory {
            address,
            bytes,
            reply,
        })
        .await
        .unwrap_or_else(|_| Err(BackendError::Gone.to_string()))
    }

    pub async fn read_code(&self, address: u64, len: usize) -> Option<Vec<u8>> {
        self.send(|reply| Command::ReadCode {
            address,
            len,
            reply,
        })
        .await
        .ok()
        .flatten()
    }

    /// Code of `len` bytes at `address` that never runs again (the entry point): the
    /// slot where displaced steps run.
    pub async fn set_scratch(&self, address: u64, len: usize) {
        let _ = self
            .send(|reply| Command::SetScratch {
                address,
                len,
                reply,
            })
            .await;
    }

    /// Lets a thread that stopped with reason `Libraries` go on.
    pub async fn release(&self, tid: Pid) {
        let _ = self.send(|reply| Command::Release { tid, reply }).await;
    }

    /// The registers of one stopped thread.
    pub async fn thread_registers(&self, tid: Pid) -> Option<libc::user_regs_struct> {
        self.send(|reply| Command::ThreadRegisters { tid, reply })
            .await
            .ok()
            .flatten()
    }

    pub async fn threads(&self) -> Result<Vec<ThreadInfo>, BackendError> {
        self.send(|reply| Command::Threads { reply })
            .await
            .unwrap_or(Err(BackendError::Gone))
    }

    pub fn threads_blocking(&self) -> Result<Vec<ThreadInfo>, BackendError> {
        self.send(|reply| Command::Threads { reply })
            .blocking_recv()
            .unwrap_or(Err(BackendError::Gone))
    }

    /// The registers of every stopped thread, read in one visit to the ptrace thread.
    pub async fn registers(&self) -> Result<Vec<(Pid, libc::user_regs_struct)>, BackendError> {
        self.send(|reply| Command::Registers { reply })
            .await
            .unwrap_or(Err(BackendError::Gone))
    }

    pub fn registers_blocking(&self) -> Result<Vec<(Pid, libc::user_regs_struct)>, BackendError> {
        self.send(|reply| Command::Registers { reply })
            .blocking_recv()
            .unwrap_or(Err(BackendError::Gone))
    }

    pub async fn signal(&self, signal: i32) -> Result<(), BackendError> {
        self.send(|reply| Command::Signal { signal, reply })
            .await
            .unwrap_or(Err(BackendError::Gone))
    }

    /// Raise (or, after a failed wait, lower) the ptrace thread's priority ahead of an
    /// attach that must win a race, as waitFor's does. Does not wait for an answer.
    pub fn arm_for_attach(&self, armed: bool) {
        drop(self.send(|_: oneshot::Sender<()>| Command::Arm { armed }));
    }

    /// Once a stop is reported to the editor, read every thread's name and registers
    /// ahead of its `threads` and `stackTrace` requests, between commands. Not sooner:
    /// right after the attach, that reading competed with the events that report it.
    /// The thread list arrives once every name is read, unless the target ran or
    /// changed meanwhile (then the sender is dropped).
    pub fn read_ahead(&self) -> oneshot::Receiver<Vec<ThreadInfo>> {
        self.send(|listed| Command::ReadAhead { listed })
    }

    pub async fn detach(&self, mode: DetachMode) {
        let _ = self
            .send(|reply| Command::Detach {
                mode,
                only: None,
                reply,
            })
            .await;
    }

    pub fn detach_blocking(&self, mode: DetachMode) {
        let _ = self
            .send(|reply| Command::Detach {
                mode,
                only: None,
                reply,
            })
            .blocking_recv();
    }

    /// Detaches (the target runs on) if the process attached is `pid`.
    pub fn detach_pid_blocking(&self, pid: Pid) {
        let _ = self
            .send(|reply| Command::Detach {
                mode: DetachMode::Run,
                only: Some(pid),
                reply,
            })
            .blocking_recv();
    }
}

fn gone_attach(pid: i64) -> AttachError {
    AttachError::Os {
        pid: pid as Pid,
        message: "the ptrace thread is gone".into(),
    }
}

fn new_eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

struct Worker {
    commands: mpsc::Receiver<Command>,
    wake: Arc<OwnedFd>,
    sigchld: UnixStream,
    events: tokio::sync::mpsc::UnboundedSender<BackendEvent>,
    tracer: Option<Tracer>,
    /// Held between `Arm` and the next attach.
    armed: Option<crate::priority::Boost>,
    /// Between `ReadAhead` and the end of that reading, or the next attach or stop.
    reading_ahead: bool,
    /// Where the thread list goes when this reading ahead is done.
    listed: Option<oneshot::Sender<Vec<ThreadInfo>>>,
    /// The answer to a detach that left threads only this thread's end releases: it
    /// is sent by the thread that takes over.
    detached: Option<oneshot::Sender<()>>,
    /// `followForks`, for the process attached now or next.
    follow_forks: bool,
}

/// Waits on the SIGCHLD pipe only: used inside stop/detach, where commands wait.
struct ChildWait<'a>(&'a UnixStream);

impl EventWait for ChildWait<'_> {
    fn wait_for_events(&mut self, timeout: Duration) {
        poll_readable(&[self.0.as_raw_fd()], timeout);
        drain_fd(self.0.as_raw_fd());
    }
}

fn poll_readable(fds: &[RawFd], timeout: Duration) {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: *fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: a valid array of pollfd of the given length.
    unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, ms) };
}

/// Empties a non-blocking descriptor; whether there was anything to read.
fn drain_fd(fd: RawFd) -> bool {
    let mut buf = [0u8; 256];
    let mut any = false;
    // SAFETY: reads into a local buffer from a non-blocking descriptor.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {
        any = true;
    }
    any
}

impl Worker {
    fn run(&mut self) -> RunEnd {
        loop {
            let timeout = match &self.tracer {
                // Names and registers to read ahead: look for commands and events without
                // waiting, then read some.
                Some(tracer) if self.reading_ahead && tracer.wants_read_ahead() => 0,
                Some(_) => 100,
                None => 1000,
            };
            poll_readable(
                &[self.wake.as_raw_fd(), self.sigchld.as_raw_fd()],
                Duration::from_millis(timeout),
            );
            drain_fd(self.wake.as_raw_fd());
            let child_signalled = drain_fd(self.sigchld.as_raw_fd());
            // Events before commands: a stop the kernel has already reported (a late
            // thread that stopped, a thread that exited) must be known before a command
            // that arrived with it is answered, or `threads` describes the moment before.
            if child_signalled {
                self.collect_events();
            }
            let mut handled_command = false;
            loop {
                match self.commands.try_recv() {
                    // This thread ends: whatever it could not detach is released too.
                    Ok(Command::Shutdown) => {
                        self.detach(DetachMode::Run);
                        return RunEnd::Finished;
                    }
                    Ok(command) => {
                        handled_command = true;
                        self.handle(command);
                        if self.detached.is_some() {
                            return RunEnd::HandOver;
                        }
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.detach(DetachMode::Run);
                        return RunEnd::Finished;
                    }
                }
            }
            if let Some(tracer) = &mut self.tracer {
                // A turn of reading ahead that no SIGCHLD and no command interrupted has
                // no event to collect, and waitpid(-1) looks at every tracee: at a
                // thousand threads that was most of a millisecond over one read-ahead.
                // (A command may have drained SIGCHLD while waiting for its own events.)
                if handled_command || timeout != 0 {
                    tracer.poll_events(&mut ChildWait(&self.sigchld));
                }
                if tracer.exited {
                    self.tracer = None;
                } else if self.reading_ahead {
                    self.reading_ahead = tracer.read_ahead();
                    if !self.reading_ahead {
                        self.send_thread_list();
                    }
                }
            }
        }
    }

    /// Collects the events waitpid has for us; forgets a tracer whose process is gone.
    fn collect_events(&mut self) {
        if let Some(tracer) = &mut self.tracer {
            tracer.poll_events(&mut ChildWait(&self.sigchld));
            if tracer.exited {
                self.tracer = None;
            }
        }
    }

    /// Reading ahead is done: the session can answer `threads` without asking, as long
    /// as the target stays stopped.
    fn send_thread_list(&mut self) {
        let (Some(listed), Some(tracer)) = (self.listed.take(), self.tracer.as_mut()) else {
            return;
        };
        if tracer.all_stopped() {
            let _ = listed.send(tracer.thread_infos());
        }
    }

    /// Detaches; whether threads are left that only the end of this thread releases.
    fn detach(&mut self, mode: DetachMode) -> bool {
        match self.tracer.take() {
            Some(mut tracer) => !tracer
                .detach(mode, &mut ChildWait(&self.sigchld))
                .is_empty(),
            None => false,
        }
    }

    fn attached(&mut self) -> Result<&mut Tracer, BackendError> {
        self.tracer.as_mut().ok_or(BackendError::NotAttached)
    }

    fn handle(&mut self, command: Command) {
        // Debug builds only: lets the end-to-end tests prove that a panic on this
        // thread still detaches, and that the session hears of it.
        #[cfg(debug_assertions)]
        if std::env::var("LATCH_TEST_PANIC_ON")
            .is_ok_and(|c| c.strip_prefix("ptrace:") == Some(command.name()))
        {
            panic!("LATCH_TEST_PANIC_ON=ptrace:{}", command.name());
        }
        match command {
            Command::Attach { pid, reply } => {
                self.reading_ahead = false;
                self.listed = None;
                let result = self.attach(pid);
                self.armed = None;
                let _ = reply.send(result);
            }
            Command::Launch { start, reply } => {
                self.reading_ahead = false;
                self.listed = None;
                let _ = reply.send(self.launch(start));
            }
            Command::FollowForks { follow, reply } => {
                self.follow_forks = follow;
                if let Some(tracer) = self.tracer.as_mut() {
                    tracer.control.follow_forks = follow;
                }
                let _ = reply.send(());
            }
            Command::EndHandOverStop { reply } => {
                if let Some(tracer) = self.tracer.as_mut() {
                    tracer.end_job_stop();
                }
                let _ = reply.send(());
            }
            Command::StopAll { reply } => {
                self.reading_ahead = false;
                self.listed = None;
                let sigchld = &self.sigchld;
                let result = self
                    .tracer
                    .as_mut()
                    .ok_or(BackendError::NotAttached)
                    .map(|tracer| {
                        tracer.stop_all(&mut ChildWait(sigchld));
                        // A pause ends a step in progress.
                        tracer.cancel_steps();
                        // The session shows this stop: stops still to report wait.
                        tracer.control.shown = true;
                        Stopped {
                            tids: tracer.tids(),
                            running: tracer.still_running(),
                        }
                    });
                let _ = reply.send(result);
            }
            Command::ResumeAll { reply } => {
                self.listed = None;
                let sigchld = &self.sigchld;
                let result = self
                    .tracer
                    .as_mut()
                    .ok_or(BackendError::NotAttached)
                    .map(|t| t.resume_some(None, &mut ChildWait(sigchld)));
                let _ = reply.send(result);
            }
            Command::ResumeThread { tid, reply } => {
                self.listed = None;
                let sigchld = &self.sigchld;
                let result = self
                    .tracer
                    .as_mut()
                    .ok_or(BackendError::NotAttached)
                    .map(|t| t.resume_some(Some(tid), &mut ChildWait(sigchld)));
                let _ = reply.send(result);
            }
            Command::SetBreakpoints { breakpoints, reply } => {
                let _ = reply.send(self.attached().map(|t| t.set_breakpoints(breakpoints)));
            }
            Command::WatchLibraries { hook, reply } => {
                if let Some(tracer) = self.tracer.as_mut() {
                    tracer.watch_libraries(hook);
                }
                let _ = reply.send(());
            }
            Command::SetSignalFilters { filters, reply } => {
                if let Some(tracer) = self.tracer.as_mut() {
                    tracer.set_signal_filters(filters);
                }
                let _ = reply.send(());
            }
            Command::StepInstruction { tid, reply } => {
                self.listed = None;
                let sigchld = &self.sigchld;
                let result = match self.tracer.as_mut() {
                    Some(tracer) => tracer.step_instruction(tid, &mut ChildWait(sigchld)),
                    None => Err(BackendError::NotAttached.to_string()),
                };
                let _ = reply.send(result);
            }
            Command::RunTo {
                tid,
                address,
                min_sp,
                single_thread,
                goroutine,
                reply,
            } => {
                self.listed = None;
                let sigchld = &self.sigchld;
                let result = match self.tracer.as_mut() {
                    Some(tracer) => tracer.run_to(
                        tid,
                        address,
                        min_sp,
                        single_thread,
                        goroutine,
                        &mut ChildWait(sigchld),
                    ),
                    None => Err(BackendError::NotAttached.to_string()),
                };
                let _ = reply.send(result);
            }
            Command::SetScratch {
                address,
                len,
                reply,
            } => {
                if let Some(tracer) = self.tracer.as_mut() {
                    tracer.set_scratch(address, len);
                }
                let _ = reply.send(());
            }
            Command::Release { tid, reply } => {
                let sigchld = &self.sigchld;
                if let Some(tracer) = self.tracer.as_mut() {
                    tracer.release(tid, &mut ChildWait(sigchld));
                }
                let _ = reply.send(());
            }
            Command::ThreadRegisters { tid, reply } => {
                let _ = reply.send(self.tracer.as_mut().and_then(|t| t.thread_registers(tid)));
            }
            Command::ReadCode {
                address,
                len,
                reply,
            } => {
                let _ = reply.send(self.tracer.as_mut().and_then(|t| t.read_code(address, len)));
            }
            Command::ReadMemory {
                address,
                len,
                reply,
            } => {
                let read = self.tracer.as_mut().map(|t| t.read_readable(address, len));
                let _ = reply.send(read.unwrap_or_default());
            }
            Command::WriteMemory {
                address,
                bytes,
                reply,
            } => {
                let written = match self.tracer.as_mut() {
                    Some(tracer) => tracer.write_memory(address, &bytes),
                    None => Err("not attached to a process".into()),
                };
                let _ = reply.send(written);
            }
            Command::Threads { reply } => {
                let _ = reply.send(self.attached().map(|t| t.current_threads()));
            }
            Command::Registers { reply } => {
                // Tids only: reading every thread's name here cost a /proc read each.
                let result = self.attached().map(|t| t.all_registers());
                let _ = reply.send(result);
            }
            Command::Signal { signal, reply } => {
                let result = self.attached().map(|t| {
                    // SAFETY: kill with the attached pid and a signal number from us.
                    unsafe { libc::kill(t.pid, signal) };
                });
                let _ = reply.send(result);
            }
            Command::Detach { only, reply, .. }
                if only.is_some_and(|pid| self.tracer.as_ref().map(|t| t.pid) != Some(pid)) =>
            {
                let _ = reply.send(());
            }
            Command::Detach { mode, reply, .. } => {
                if self.detach(mode) {
                    self.detached = Some(reply);
                } else {
                    let _ = reply.send(());
                }
            }
            Command::Shutdown => unreachable!("handled by the run loop"),
            Command::ReadAhead { listed } => {
                if let Some(tracer) = self.tracer.as_mut() {
                    tracer.start_read_ahead();
                    self.listed = Some(listed);
                    self.reading_ahead = tracer.wants_read_ahead();
                    if !self.reading_ahead {
                        self.send_thread_list();
                    }
                }
            }
            Command::Arm { armed } => {
                self.armed = armed.then(crate::priority::Boost::raise);
            }
        }
    }

    fn launch(&mut self, start: launch::Start) -> Result<AttachReport, launch::LaunchError> {
        if let Some(tracer) = &self.tracer {
            return Err(launch::LaunchError::Os(format!(
                "already attached to pid {}",
                tracer.pid
            )));
        }
        let started = Instant::now();
        let pid = launch::start(start, &mut ChildWait(&self.sigchld))?;
        let mut tracer = Tracer::launched(pid, self.events.clone());
        tracer.control.follow_forks = self.follow_forks;
        self.tracer = Some(tracer);
        Ok(AttachReport {
            pid,
            name: procfs::comm(pid).unwrap_or_else(|_| "?".into()),
            tids: vec![pid],
            stragglers: Vec::new(),
            refused: Vec::new(),
            main_tid: pid,
            was_job_stopped: false,
            named_thread: None,
            elapsed: started.elapsed(),
        })
    }

    fn attach(&mut self, pid: i64) -> Result<AttachReport, AttachError> {
        if let Some(tracer) = &self.tracer {
            return Err(AttachError::AlreadyAttached(tracer.pid));
        }
        let started = Instant::now();
        tracing::debug!(pid, "attach command received");
        // A thread id stands for its process (Tgid in /proc/TID/status).
        let named_thread = Pid::try_from(pid)
            .ok()
            .filter(|tid| *tid > 0 && procfs::process_of(*tid) != *tid);
        let pid = named_thread.map_or(pid, |tid| i64::from(procfs::process_of(tid)));
        let (mut tracer, outcome) =
            Tracer::attach(pid, self.events.clone(), &mut ChildWait(&self.sigchld))?;
        tracer.control.follow_forks = self.follow_forks;
        let pid = tracer.pid;
        let main_tid = if outcome.tids.contains(&pid) {
            pid
        } else {
            outcome.tids.first().copied().unwrap_or(pid)
        };
        self.tracer = Some(tracer);
        Ok(AttachReport {
            pid,
            name: procfs::comm(pid).unwrap_or_else(|_| "?".into()),
            tids: outcome.tids,
            stragglers: outcome.stragglers,
            refused: outcome.refused,
            main_tid,
            was_job_stopped: outcome.was_job_stopped,
            named_thread,
            elapsed: started.elapsed(),
        })
    }
}

impl Drop for Tracer {
    /// Reached when the ptrace thread unwinds from a panic: let the target go.
    fn drop(&mut self) {
        if !self.exited {
            let (read, _write) = match UnixStream::pair() {
                Ok(pair) => pair,
                Err(_) => return,
            };
            // `ChildWait` empties what it polled with reads that must not block: a
            // blocking socket here left the panicking thread asleep in `read` forever,
            // holding every thread of the target stopped.
            if read.set_nonblocking(true).is_err() {
                return;
            }
            // This thread is unwinding and ends: what could not be detached is
            // released with it.
            let _ = self.detach(DetachMode::Run, &mut ChildWait(&read));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc, Barrier};

    /// Enough threads of this test process that `read_names` shares them out between
    /// threads of its own (on more than one core), each with a name to tell apart.
    #[test]
    fn names_read_side_by_side_are_each_threads_own() {
        const COUNT: usize = 600;
        let release = Arc::new(Barrier::new(COUNT + 1));
        let (tids, named) = mpsc::channel();
        let threads: Vec<_> = (0..COUNT)
            .map(|i| {
                let (release, tids) = (release.clone(), tids.clone());
                std::thread::Builder::new()
                    .name(format!("nm-{i}"))
                    .spawn(move || {
                        // SAFETY: gettid has no preconditions.
                        tids.send((unsafe { libc::gettid() }, format!("nm-{i}")))
                            .unwrap();
                        release.wait();
                    })
                    .unwrap()
            })
            .collect();
        let expected: Vec<(Pid, String)> = named.iter().take(COUNT).collect();
        let pid = std::process::id() as Pid;
        let tids: Vec<Pid> = expected.iter().map(|(tid, _)| *tid).collect();
        let names = ThreadInfo::read_names(pid, &tids);
        release.wait();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(names.len(), COUNT);
        for ((tid, expected), got) in expected.iter().zip(&names) {
            assert_eq!(got, expected, "thread {tid}");
        }
    }
}
