//! The tracer: the state of one traced process and the attach, stop, resume and detach
//! algorithms of DESIGN.md section 4. It lives on the ptrace thread and is driven by it.

use std::collections::{BTreeMap, HashSet};

use rustc_hash::FxHashMap;
use std::time::{Duration, Instant};

use super::errors::{self, AttachError};
use super::sys::{
    self, WaitEvent, PTRACE_EVENT_CLONE, PTRACE_EVENT_EXEC, PTRACE_EVENT_STOP, PTRACE_EVENT_VFORK,
    PTRACE_EVENT_VFORK_DONE,
};
use super::{BackendEvent, DetachMode, ThreadInfo};
use crate::priority::Boost;
use crate::procfs::{self, Pid};

/// How long stopping every thread may take before we give up on the stragglers. A thread
/// in uninterruptible sleep (D state, e.g. on a hung NFS mount) or waiting for a vfork
/// child stops only when the kernel lets it go. Generous enough for 1000 spinning threads
/// without the priority boost (measured: seconds), short enough not to look hung.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// How long the stop loop waits without progress before it looks in /proc for threads
/// that died without telling us (a leader that called pthread_exit becomes a zombie
/// whose exit is reported only when the whole group ends).
const STALL_CHECK: Duration = Duration::from_millis(20);

/// While more threads than this are still to stop, the stop loop collects their stops in
/// batches, resting between passes (see `wait_until_all_stopped`); fewer are awaited one
/// SIGCHLD at a time, for the lowest latency.
const FEW_PENDING: usize = 8;
const BATCH_REST: Duration = Duration::from_micros(300);

/// Remembers the last threads whose exit we reaped, so that a clone event that arrives
/// after its child already ran and exited does not resurrect a phantom thread. Bounded:
/// a thread forgotten here still gets added back only through its own first stop.
#[derive(Default)]
struct RecentExits {
    order: std::collections::VecDeque<Pid>,
    set: HashSet<Pid>,
}

impl RecentExits {
    const CAPACITY: usize = 4096;

    fn record(&mut self, tid: Pid) {
        if self.set.insert(tid) {
            self.order.push_back(tid);
            if self.order.len() > Self::CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    /// True (and forgotten) if `tid` exited recently.
    fn take(&mut self, tid: Pid) -> bool {
        self.set.remove(&tid)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RunState {
    Running,
    Stopped,
}

#[derive(Debug)]
pub(super) struct Thread {
    pub(super) state: RunState,
    /// A signal intercepted at signal-delivery-stop, owed to the thread when it resumes.
    pub(super) pending_signal: i32,
    /// Further signals owed (rare: a second, different one came while a step kept the
    /// first owed). Raised again just before the thread resumes, so none is lost.
    pub(super) more_signals: Vec<i32>,
    /// Stopped by job control (SIGSTOP and kin) rather than by us.
    pub(super) in_group_stop: bool,
    /// Missed a stop deadline and has not stopped since: blocked in the kernel (vfork,
    /// D state). Its interrupt is still pending; the next stop does not wait for it.
    pub(super) late: bool,
    /// Stopped with its pc on a breakpoint of ours that it has not executed yet (its
    /// trap was taken and the pc rewound, or a step ended there): resuming it must step
    /// it over the `int3` first.
    pub(super) at_breakpoint: Option<u64>,
}

impl Thread {
    fn running() -> Thread {
        Thread {
            state: RunState::Running,
            pending_signal: 0,
            more_signals: Vec::new(),
            in_group_stop: false,
            late: false,
            at_breakpoint: None,
        }
    }
}

/// Waits until a tracee event is probably ready (the SIGCHLD pipe or the command
/// eventfd becomes readable), or the timeout passes.
pub trait EventWait {
    fn wait_for_events(&mut self, timeout: Duration);
}

pub struct Tracer {
    pub pid: Pid,
    pub(super) threads: BTreeMap<Pid, Thread>,
    /// True once the process is gone; nothing more to do with it.
    pub exited: bool,
    was_job_stopped: bool,
    pub(super) events: tokio::sync::mpsc::UnboundedSender<BackendEvent>,
    /// Events are reported to the session only after the attach finished.
    announce: bool,
    /// The process is held stopped (after the attach or a stop, until a resume): a
    /// late thread's stop that arrives meanwhile is kept, not resumed.
    pub(super) holding: bool,
    /// Breakpoints, stepping and signal stops (see `control.rs`).
    pub(super) control: super::control::Control,
    recent_exits: RecentExits,
    /// Threads the attach could not seize while others were (another tracer holds
    /// them, say), with why: they run on, and the user must be told.
    refused: BTreeMap<Pid, String>,
    /// Thread names read while every thread was stopped, when none can rename another;
    /// forgotten as soon as any thread runs. Read ahead while the ptrace thread is idle
    /// (`read_ahead`), so that `threads` after a stop rarely reads /proc.
    names: FxHashMap<Pid, String>,
    /// Registers of stopped threads, likewise: nothing changes them until they run, and
    /// the first stack trace of a stop needs every thread's (4000 threads: about 20 ms
    /// of PTRACE_GETREGS). `None`: could not be read (the thread is exiting).
    registers: FxHashMap<Pid, Option<libc::user_regs_struct>>,
    /// Threads whose name or registers `read_ahead` has yet to read, taken from the end:
    /// a list, so that a turn does not look through every thread to find them.
    unread: Vec<Pid>,
}

/// Threads whose name and registers are read ahead per turn of the ptrace thread's
/// loop, between its commands.
const READ_AHEAD_PER_TURN: usize = 64;

pub struct AttachOutcome {
    pub tids: Vec<Pid>,
    /// Threads that could not be stopped before the deadline (see STOP_DEADLINE).
    pub stragglers: Vec<Pid>,
    /// Threads that could not be seized, and why.
    pub refused: Vec<(Pid, String)>,
    pub was_job_stopped: bool,
}

impl Tracer {
    pub fn attach(
        pid: i64,
        events: tokio::sync::mpsc::UnboundedSender<BackendEvent>,
        waiter: &mut dyn EventWait,
    ) -> Result<(Tracer, AttachOutcome), AttachError> {
        let pid = errors::validate(pid)?;
        let was_job_stopped = procfs::stat(pid).is_ok_and(|s| s.state == 'T');
        let mut tracer = Tracer::new(pid, was_job_stopped, events);
        let _boost = Boost::raise();
        let started = Instant::now();
        if let Err(err) = tracer.seize_all() {
            tracer.release_after_failed_attach();
            return Err(err);
        }
        let seized = started.elapsed();
        let deadline = started + STOP_DEADLINE;
        tracer.wait_until_all_stopped(waiter, deadline);
        tracing::debug!(
            threads = tracer.threads.len(),
            boosted = _boost.is_active(),
            ?seized,
            stopped = ?started.elapsed(),
            "seized every thread, then waited for their stops"
        );
        // Threads born between our scan and their parent's stop arrive through
        // TRACECLONE; the final check makes sure /proc agrees. Only tasks we do not hold
        // yet are worth another pass: known ones already had the whole deadline.
        for _ in 0..10 {
            let missing = tracer.unstopped_tasks();
            if missing.iter().all(|tid| tracer.threads.contains_key(tid)) {
                break;
            }
            tracing::debug!(?missing, "tasks not yet stopped after the first pass");
            let _ = tracer.seize_all();
            tracer.wait_until_all_stopped(waiter, deadline);
        }
        let stragglers = tracer.mark_stragglers();
        if tracer.threads.is_empty() {
            tracer.exited = true;
            return Err(AttachError::NoSuchProcess(pid));
        }
        tracer.announce = true;
        tracer.holding = true;
        let tids = tracer.threads.keys().copied().collect();
        // A thread refused at first and seized by a later pass is ours after all.
        let refused = std::mem::take(&mut tracer.refused)
            .into_iter()
            .filter(|(tid, _)| !tracer.threads.contains_key(tid) && !task_is_gone(pid, *tid))
            .collect();
        Ok((
            tracer,
            AttachOutcome {
                tids,
                stragglers,
                refused,
                was_job_stopped,
            },
        ))
    }

    fn new(
        pid: Pid,
        was_job_stopped: bool,
        events: tokio::sync::mpsc::UnboundedSender<BackendEvent>,
    ) -> Tracer {
        Tracer {
            pid,
            threads: BTreeMap::new(),
            names: FxHashMap::default(),
            registers: FxHashMap::default(),
            unread: Vec::new(),
            exited: false,
            was_job_stopped,
            events,
            announce: false,
            holding: false,
            recent_exits: RecentExits::default(),
            refused: BTreeMap::new(),
            control: super::control::Control::new(pid),
        }
    }

    /// Seizes and interrupts every task in /proc without waiting in between, rescanning
    /// until two passes in a row find nothing new.
    fn seize_all(&mut self) -> Result<(), AttachError> {
        let me = std::process::id() as Pid;
        let my_tid = sys::gettid();
        let mut seen: HashSet<Pid> = self.threads.keys().copied().collect();
        let mut quiet_passes = 0;
        let mut first_error: Option<i32> = None;
        for _ in 0..10_000 {
            let tids = match procfs::tasks(self.pid) {
                Ok(tids) => tids,
                Err(_) if self.threads.is_empty() => {
                    return Err(AttachError::NoSuchProcess(self.pid))
                }
                Err(_) => break,
            };
            let mut found_new = false;
            for tid in tids {
                if !seen.insert(tid) {
                    continue;
                }
                found_new = true;
                match sys::seize(tid) {
                    Ok(()) => {
                        // The thread may exit between the two calls; its exit event tells us.
                        let _ = sys::interrupt(tid);
                        self.threads.insert(tid, Thread::running());
                    }
                    Err(err) => {
                        let errno = sys::errno_of(&err);
                        match errno {
                            libc::ESRCH => {}
                            libc::EPERM if task_is_gone(self.pid, tid) => {}
                            libc::EPERM if traced_by_us(self.pid, tid, me, my_tid) => {
                                // A clone child that TRACECLONE already gave us.
                                self.threads.entry(tid).or_insert_with(Thread::running);
                            }
                            _ => {
                                tracing::debug!(tid, %err, "seize failed");
                                first_error.get_or_insert(errno);
                                self.refused.insert(tid, why_refused(self.pid, tid, &err));
                            }
                        }
                    }
                }
            }
            if found_new {
                quiet_passes = 0;
            } else {
                quiet_passes += 1;
                if quiet_passes == 2 {
                    break;
                }
            }
        }
        match (self.threads.is_empty(), first_error) {
            (true, Some(errno)) => Err(errors::explain(self.pid, errno)),
            (true, None) if has_live_tasks(self.pid) => Err(errors::explain(self.pid, libc::EPERM)),
            (true, None) => Err(AttachError::NoSuchProcess(self.pid)),
            (false, _) => Ok(()),
        }
    }

    /// After a partial failure, let go of whatever we did seize.
    fn release_after_failed_attach(&mut self) {
        let tids: Vec<Pid> = self.threads.keys().copied().collect();
        for tid in tids {
            let _ = sys::detach(tid, 0);
        }
        self.threads.clear();
        self.exited = true;
    }

    /// Tasks in /proc (not zombies) that we do not hold stopped.
    fn unstopped_tasks(&self) -> Vec<Pid> {
        procfs::tasks(self.pid)
            .unwrap_or_default()
            .into_iter()
            .filter(|tid| {
                self.threads
                    .get(tid)
                    .is_none_or(|t| t.state != RunState::Stopped)
            })
            .filter(|tid| !task_is_gone(self.pid, *tid))
            .collect()
    }

    fn stragglers(&self) -> Vec<Pid> {
        self.threads
            .iter()
            .filter(|(_, t)| t.state != RunState::Stopped)
            .map(|(tid, _)| *tid)
            .collect()
    }

    /// The threads that did not stop in time, marked late so that later stops do not
    /// wait for them again until they have stopped once.
    fn mark_stragglers(&mut self) -> Vec<Pid> {
        let stragglers = self.stragglers();
        for tid in &stragglers {
            if let Some(thread) = self.threads.get_mut(tid) {
                thread.late = true;
            }
        }
        if !stragglers.is_empty() {
            tracing::warn!(?stragglers, "threads did not stop within {STOP_DEADLINE:?}");
        }
        stragglers
    }

    /// The threads that run while the process is held stopped (late ones).
    pub fn still_running(&self) -> Vec<Pid> {
        if self.holding {
            self.stragglers()
        } else {
            Vec::new()
        }
    }

    fn wait_until_all_stopped(&mut self, waiter: &mut dyn EventWait, deadline: Instant) {
        let mut batch = Vec::new();
        let mut last_progress = Instant::now();
        loop {
            // Each thread we wait for is asked on its own (see `sys::wait_thread`), then
            // one wait for any tracee picks up the rest: a clone child whose parent's
            // event is still to come, the exit of a thread already stopped.
            let pass_started = Instant::now();
            batch.extend(
                self.threads
                    .iter()
                    .filter(|(_, t)| t.state != RunState::Stopped)
                    .filter_map(|(tid, _)| sys::wait_thread(*tid)),
            );
            sys::drain_events(&mut batch);
            let pass_cost = pass_started.elapsed();
            if !batch.is_empty() {
                last_progress = Instant::now();
            }
            for event in batch.drain(..) {
                self.on_event(event, true);
            }
            // Threads that missed the last deadline are most likely still blocked (a hung
            // NFS read does not end because we ask again): each stop waiting the whole
            // deadline for them would make every pause take that long.
            if self.exited
                || self
                    .threads
                    .values()
                    .all(|t| t.state == RunState::Stopped || t.late)
            {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            if now - last_progress >= STALL_CHECK {
                self.forget_dead_threads();
                last_progress = now;
                continue;
            }
            let pending = self
                .threads
                .values()
                .filter(|t| t.state != RunState::Stopped)
                .count();
            if pending > FEW_PENDING {
                // Many threads still to stop: every one that stops sends SIGCHLD, and a
                // pass per signal would keep taking a core (we run boosted) from the very
                // threads that need it to reach their stops. Let them run, then collect
                // them together: rest at least as long as the pass took.
                std::thread::sleep(pass_cost.clamp(BATCH_REST, Duration::from_millis(2)));
            } else {
                // A short timeout: SIGCHLD may be handled by a starved thread of ours,
                // and a missed wake-up must not cost more than a millisecond.
                waiter.wait_for_events((deadline - now).min(Duration::from_millis(1)));
            }
        }
    }

    /// Stops every running thread and waits for all of them.
    pub fn stop_all(&mut self, waiter: &mut dyn EventWait) {
        self.control.only = None;
        if self.exited {
            return;
        }
        let _boost = Boost::raise();
        let running: Vec<Pid> = self
            .threads
            .iter()
            .filter(|(_, t)| t.state == RunState::Running)
            .map(|(tid, _)| *tid)
            .collect();
        for tid in running {
            let _ = sys::interrupt(tid);
        }
        self.wait_until_all_stopped(waiter, Instant::now() + STOP_DEADLINE);
        self.mark_stragglers();
        self.collect_queued_traps(waiter);
        self.holding = true;
        self.control.all_stopped();
    }

    /// Drops running threads that /proc shows dead or zombie: they will never stop.
    fn forget_dead_threads(&mut self) {
        let dead: Vec<Pid> = self
            .threads
            .iter()
            .filter(|(tid, t)| t.state == RunState::Running && task_is_gone(self.pid, **tid))
            .map(|(tid, _)| *tid)
            .collect();
        for tid in dead {
            tracing::debug!(tid, "thread died without an exit event (zombie leader?)");
            self.threads.remove(&tid);
            if self.announce {
                let _ = self.events.send(BackendEvent::ThreadExited(tid));
            }
        }
    }

    /// Lets every thread run, after stepping those parked on a breakpoint over it.
    pub fn resume_all(&mut self, waiter: &mut dyn EventWait) {
        if self.exited {
            return;
        }
        let _boost = Boost::raise();
        let tids: Vec<Pid> = self.threads.keys().copied().collect();
        self.control.shown = false;
        self.step_over_breakpoints(&tids, waiter);
        self.holding = false;
        self.control.only = None;
        for tid in tids {
            self.resume(tid);
        }
    }

    pub(super) fn resume(&mut self, tid: Pid) {
        let Some(thread) = self.threads.get_mut(&tid) else {
            return;
        };
        if thread.state != RunState::Stopped {
            return;
        }
        self.names.clear();
        self.registers.clear();
        self.unread.clear();
        thread.at_breakpoint = None;
        for signal in std::mem::take(&mut thread.more_signals) {
            raise_again(self.pid, tid, signal);
        }
        let result = if thread.in_group_stop {
            // Job control stopped it: stay stopped until SIGCONT, as without a debugger.
            sys::listen(tid)
        } else {
            sys::cont(tid, std::mem::take(&mut thread.pending_signal))
        };
        thread.state = RunState::Running;
        if let Err(err) = result {
            // ESRCH: it is exiting; its exit event will remove it.
            tracing::debug!(tid, %err, "resume failed");
        }
    }

    /// Reacts to one wait event. While stopping (`stopping`), stops are kept; otherwise a
    /// stop that the user did not ask for is passed through so the target runs on.
    pub(super) fn on_event(&mut self, event: WaitEvent, stopping: bool) {
        match event {
            WaitEvent::Exited { tid, code } => self.on_exit(tid, code),
            WaitEvent::Killed { tid, signal } => self.on_exit(tid, 128 + signal),
            WaitEvent::Event { tid, .. } | WaitEvent::Signal { tid, .. }
                if !self.threads.contains_key(&tid) && self.let_go_if_other_process(tid, event) => {
            }
            WaitEvent::Event { tid, event, signal } => {
                match event {
                    PTRACE_EVENT_CLONE => {
                        if let Ok(child) = sys::event_message(tid) {
                            let child = child as Pid;
                            if self.clone_child_is_new(child) {
                                self.add_thread(child, RunState::Running);
                            } else {
                                // A child process sharing our memory without vfork: it
                                // goes as it is (see `must_wait_for_parent`).
                                self.control.let_child_go(child);
                            }
                        }
                    }
                    PTRACE_EVENT_EXEC => {
                        self.forget_threads_gone_by_exec();
                        self.forget_old_leader(tid);
                        if self.control.table.has_step_target(None) {
                            let _ = self.events.send(BackendEvent::StepAbandoned(
                                "the process started another program (exec) during the step; it runs on"
                                    .into(),
                            ));
                        }
                        self.control.after_exec();
                    }
                    PTRACE_EVENT_VFORK => {
                        if let Ok(child) = sys::event_message(tid) {
                            self.control.vfork_started(child as Pid);
                        }
                    }
                    PTRACE_EVENT_VFORK_DONE => {
                        if let Ok(child) = sys::event_message(tid) {
                            self.control.vfork_done(child as Pid);
                        }
                    }
                    _ => {}
                }
                if !self.threads.contains_key(&tid) {
                    // A clone child's first stop can come before its parent's clone event
                    // (and a recycled tid is a new thread).
                    self.recent_exits.take(tid);
                    self.add_thread(tid, RunState::Running);
                }
                let thread = self.threads.get_mut(&tid).expect("just added");
                thread.state = RunState::Stopped;
                thread.late = false;
                thread.in_group_stop =
                    event == PTRACE_EVENT_STOP && sys::is_group_stop_signal(signal);
                // A new program: its thread waits while the session reads it and puts
                // the breakpoints that match it in, before it runs an instruction.
                if event == PTRACE_EVENT_EXEC && self.announce && !stopping && !self.holds(tid) {
                    let _ = self.events.send(BackendEvent::Stopped {
                        tid,
                        reason: super::StopReason::Exec,
                    });
                    return;
                }
                // While the process is held, a late thread's stop is kept: the editor
                // shows every thread stopped.
                if !stopping && !self.holds(tid) {
                    self.resume(tid);
                }
            }
            WaitEvent::Signal { tid, signal }
                if self.threads.contains_key(&tid)
                    && self.on_trap_or_fault(tid, signal, stopping) => {}
            WaitEvent::Signal { tid, signal } => {
                if !self.threads.contains_key(&tid) {
                    self.add_thread(tid, RunState::Running);
                }
                let thread = self.threads.get_mut(&tid).expect("just added");
                thread.state = RunState::Stopped;
                thread.late = false;
                owe(thread, signal);
                thread.in_group_stop = false;
                if !stopping && !self.holds(tid) {
                    self.resume(tid);
                }
            }
        }
    }

    /// Whether the child a clone event names is a thread to add now, before its first
    /// stop. That stop may already have come, and the child may have run and exited
    /// since: then it must not come back. But the kernel hands a tid out again as soon
    /// as its thread is reaped, and every thread in `recent_exits` was reaped by us: a
    /// live task under that tid is a newer thread (DESIGN.md section 4: a thread is its
    /// tid and start time), whichever of the two this event is about. Left out until its
    /// own first stop, it would be missing from a stop or a detach meanwhile, and stay
    /// traced and stopped after the detach. A child process is let go at its first stop.
    fn clone_child_is_new(&mut self, child: Pid) -> bool {
        if self.recent_exits.take(child) && task_is_gone(self.pid, child) {
            return false;
        }
        !self.is_other_process(child)
    }

    /// Whether `tid` belongs to another process: `clone` without CLONE_THREAD (and
    /// without SIGCHLD as exit signal, which makes it neither a thread nor a fork to
    /// ptrace) makes a child process that PTRACE_O_TRACECLONE traces too.
    fn is_other_process(&self, tid: Pid) -> bool {
        let tgid = procfs::process_of(tid);
        tgid != self.pid && tgid == tid
    }

    /// A stop of a task we do not know: if it is a child process (see
    /// `is_other_process`), it is not ours to debug; detach it at once, at its first
    /// stop, with nothing owed (that stop is the one tracing gave it). True if so.
    fn let_go_if_other_process(&mut self, tid: Pid, event: WaitEvent) -> bool {
        if !self.is_other_process(tid) {
            return false;
        }
        if self.control.follow_forks {
            self.follow_child(tid, event);
            return true;
        }
        if self.control.must_wait_for_parent(tid) {
            tracing::debug!(tid, "a child in our memory: held until its parent's event");
            return true;
        }
        tracing::debug!(tid, "a cloned child process, not a thread: detached");
        self.control.clean_child(tid);
        if let Err(err) = sys::detach(tid, 0) {
            tracing::debug!(tid, %err, "detaching a cloned child process failed");
        }
        true
    }

    /// `followForks`: a stop of a child process. A child with its own memory is cleaned
    /// of our breakpoints and handed over at once; one in the target's memory (vfork)
    /// runs on, traced, until its exec gives it memory of its own.
    fn follow_child(&mut self, child: Pid, event: WaitEvent) {
        if let WaitEvent::Event { event, .. } = event {
            if event == PTRACE_EVENT_EXEC {
                self.control.followed.remove(&child);
                return self.hand_over(child);
            }
        }
        let in_our_memory =
            self.control.followed.contains(&child) || sys::same_memory(child, self.pid);
        if !in_our_memory {
            self.control.clean_child(child);
            return self.hand_over(child);
        }
        if !self.control.followed.contains(&child) && self.control.must_wait_for_parent(child) {
            tracing::debug!(
                child,
                "a child in our memory: held until its parent's event"
            );
            return;
        }
        self.control.followed.insert(child);
        let signal = match event {
            WaitEvent::Signal { signal, .. } => signal,
            _ => 0,
        };
        let _ = sys::cont(child, signal);
    }

    /// Lets `child` go stopped (SIGSTOP, queued before the detach so that it never
    /// runs an instruction untraced), and tells the session, which offers it to the
    /// editor as a session of its own.
    fn hand_over(&mut self, child: Pid) {
        tracing::debug!(child, "a forked child is handed over, stopped");
        // SAFETY: kill on the pid of a child process we trace.
        unsafe { libc::kill(child, libc::SIGSTOP) };
        if let Err(err) = sys::detach(child, 0) {
            tracing::debug!(child, %err, "detaching a followed child failed");
        }
        let _ = self.events.send(BackendEvent::ChildProcess {
            pid: child,
            parent: self.pid,
        });
    }

    /// A process latch started: stopped at its exec, its one thread ours.
    pub fn launched(pid: Pid, events: tokio::sync::mpsc::UnboundedSender<BackendEvent>) -> Tracer {
        let mut tracer = Tracer::new(pid, false, events);
        tracer.threads.insert(
            pid,
            Thread {
                state: RunState::Stopped,
                ..Thread::running()
            },
        );
        tracer.announce = true;
        tracer.holding = true;
        tracer
    }

    /// The process was attached stopped by a parent latch that handed it over
    /// (`hand_over`): SIGCONT ends that stop, and its threads run when resumed.
    pub fn end_job_stop(&mut self) {
        // SAFETY: kill on the pid we trace.
        unsafe { libc::kill(self.pid, libc::SIGCONT) };
        for thread in self.threads.values_mut() {
            thread.in_group_stop = false;
        }
        self.was_job_stopped = false;
    }

    pub(super) fn add_thread(&mut self, tid: Pid, state: RunState) {
        if self.threads.contains_key(&tid) {
            return;
        }
        self.threads.insert(
            tid,
            Thread {
                state,
                ..Thread::running()
            },
        );
        if self.announce {
            let _ = self
                .events
                .send(BackendEvent::ThreadStarted(ThreadInfo::read(self.pid, tid)));
        }
    }

    pub(super) fn on_exit(&mut self, tid: Pid, code: i32) {
        if self.control.followed.remove(&tid) {
            return;
        }
        if self.control.table.has_step_target(Some(tid)) {
            // The step's thread is gone: the step ends, the others run on.
            self.control.remove_step_targets();
            let _ = self.events.send(BackendEvent::StepAbandoned(format!(
                "thread {tid} exited during the step; the process runs on"
            )));
        }
        self.names.remove(&tid);
        self.registers.remove(&tid);
        self.recent_exits.record(tid);
        if self.threads.remove(&tid).is_some() && self.announce && tid != self.pid {
            let _ = self.events.send(BackendEvent::ThreadExited(tid));
        }
        // The leader's exit is reported last, when the whole group is gone. If the leader
        // left early (pthread_exit) it was never ours, and the last thread stands for it.
        if tid == self.pid || self.threads.is_empty() {
            self.threads.clear();
            self.exited = true;
            if self.announce {
                let _ = self.events.send(BackendEvent::ProcessExited { code });
            }
        }
    }

    /// After an exec only the exec'ing thread survives, under the leader's tid.
    fn forget_threads_gone_by_exec(&mut self) {
        let alive: HashSet<Pid> = procfs::tasks(self.pid)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let gone: Vec<Pid> = self
            .threads
            .keys()
            .filter(|t| !alive.contains(t))
            .copied()
            .collect();
        for tid in gone {
            self.threads.remove(&tid);
            if self.announce {
                let _ = self.events.send(BackendEvent::ThreadExited(tid));
            }
        }
    }

    /// At an exec the thread that exec'd takes the leader's tid (`tid`), and the old
    /// leader is gone. What we recorded under that tid was the old leader's: a signal
    /// it was owed (intercepted at its signal-delivery-stop while the process was held
    /// or being stopped) died with it, as without a debugger, and passing it on would
    /// hit the new program, whose handlers exec reset (SIGUSR1's default kills it).
    fn forget_old_leader(&mut self, tid: Pid) {
        if let Some(thread) = self.threads.get_mut(&tid) {
            thread.pending_signal = 0;
            thread.in_group_stop = false;
        }
        self.names.remove(&tid);
        self.registers.remove(&tid);
    }

    /// The registers read ahead for `tid` are stale: latch changed them, or it ran.
    pub(super) fn forget_registers(&mut self, tid: Pid) {
        self.registers.remove(&tid);
    }

    /// Handles events that arrived while the target runs, then what they call for: a
    /// breakpoint that stops (every thread is stopped, and the session told), or one
    /// that does not (its thread is stepped over it and runs on).
    pub fn poll_events(&mut self, waiter: &mut dyn EventWait) {
        let mut batch = Vec::new();
        sys::drain_events(&mut batch);
        for event in batch {
            self.on_event(event, false);
        }
        self.after_events(waiter);
    }

    /// The threads as they are now. A leader that called pthread_exit is a zombie that
    /// reports nothing until the group ends, so it is checked here (one read).
    pub fn current_threads(&mut self) -> Vec<ThreadInfo> {
        if self
            .threads
            .get(&self.pid)
            .is_some_and(|t| t.state == RunState::Running)
            && task_is_gone(self.pid, self.pid)
        {
            self.forget_dead_threads();
        }
        self.thread_infos()
    }

    /// The registers of one stopped thread.
    pub fn thread_registers(&mut self, tid: Pid) -> Option<libc::user_regs_struct> {
        if self.threads.get(&tid)?.state != RunState::Stopped {
            return None;
        }
        if let Some(known) = self.registers.get(&tid) {
            return *known;
        }
        sys::get_regs(tid).ok()
    }

    /// The registers of every stopped thread: what a stack walk of all threads needs.
    pub fn all_registers(&mut self) -> Vec<(Pid, libc::user_regs_struct)> {
        let keep = self.all_stopped();
        let mut all = Vec::with_capacity(self.threads.len());
        for (&tid, thread) in &self.threads {
            if thread.state != RunState::Stopped {
                continue;
            }
            let regs = match self.registers.get(&tid) {
                Some(known) => *known,
                None => {
                    let regs = sys::get_regs(tid).ok();
                    if keep {
                        self.registers.insert(tid, regs);
                    }
                    regs
                }
            };
            let Some(regs) = regs else {
                continue;
            };
            all.push((tid, regs));
        }
        all
    }

    pub fn thread_infos(&mut self) -> Vec<ThreadInfo> {
        let unnamed: Vec<Pid> = self
            .threads
            .keys()
            .filter(|tid| !self.names.contains_key(tid))
            .copied()
            .collect();
        let mut read: FxHashMap<Pid, String> = unnamed
            .iter()
            .copied()
            .zip(ThreadInfo::read_names(self.pid, &unnamed))
            .collect();
        let keep = self.all_stopped();
        let mut infos = Vec::with_capacity(self.threads.len());
        for (&tid, thread) in &self.threads {
            let name = match (self.names.get(&tid), read.remove(&tid)) {
                (Some(name), _) => name.clone(),
                (None, read) => {
                    let name = read.unwrap_or_else(|| "?".into());
                    if keep {
                        self.names.insert(tid, name.clone());
                    }
                    name
                }
            };
            infos.push(ThreadInfo {
                tid,
                name,
                is_main: tid == self.pid,
                running_while_held: self.holding && thread.state == RunState::Running,
            });
        }
        infos
    }

    /// The thread ids, ascending.
    pub fn tids(&self) -> Vec<Pid> {
        self.threads.keys().copied().collect()
    }

    pub fn all_stopped(&self) -> bool {
        self.threads.values().all(|t| t.state == RunState::Stopped)
    }

    /// Every thread is stopped: list those whose name or registers are not read yet,
    /// for `read_ahead`.
    pub fn start_read_ahead(&mut self) {
        self.unread.clear();
        if self.exited || !self.all_stopped() {
            return;
        }
        self.unread.extend(
            self.threads
                .keys()
                .rev()
                .filter(|tid| !self.names.contains_key(tid) || !self.registers.contains_key(tid)),
        );
    }

    /// Whether `read_ahead` has work.
    pub fn wants_read_ahead(&self) -> bool {
        !self.unread.is_empty()
    }

    /// Reads the names and registers of a few stopped threads ahead of the `threads` and
    /// `stackTrace` requests that follow a stop; called between commands, so it never
    /// delays one by more than a turn. Lowest tids first, the order editors list them in.
    /// Returns whether more remains to read.
    pub fn read_ahead(&mut self) -> bool {
        for _ in 0..READ_AHEAD_PER_TURN {
            let Some(tid) = self.unread.pop() else {
                break;
            };
            // Anything that ran since the list was made emptied it; a thread may have
            // exited, or had its name read by `threads` meanwhile.
            if self
                .threads
                .get(&tid)
                .is_none_or(|t| t.state != RunState::Stopped)
            {
                continue;
            }
            if !self.names.contains_key(&tid) {
                self.names.insert(tid, ThreadInfo::read_name(self.pid, tid));
            }
            self.registers
                .entry(tid)
                .or_insert_with(|| sys::get_regs(tid).ok());
        }
        self.wants_read_ahead()
    }

    /// Lets go of the process: everything stopped first, then each thread detached with
    /// the signal it is owed, non-leaders before the leader.
    ///
    /// Returns the threads that never stopped (blocked in the kernel: vfork, D state).
    /// PTRACE_DETACH needs a stopped tracee, so these are still ours, with an interrupt
    /// pending that stops them as soon as the kernel lets them go; only the end of the
    /// ptrace thread releases them (the kernel then detaches every tracee of that thread
    /// and clears its pending interrupt). The caller must end this thread.
    #[must_use]
    pub fn detach(&mut self, mode: DetachMode, waiter: &mut dyn EventWait) -> Vec<Pid> {
        if self.exited {
            return Vec::new();
        }
        self.stop_all(waiter);
        if mode == DetachMode::Kill {
            // SAFETY: kill with a pid we validated.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.reap_until_exit(waiter);
            return Vec::new();
        }
        // A stop that came after the deadline is still waiting to be collected: its
        // thread can be detached like the others.
        let mut batch: Vec<WaitEvent> = self
            .stragglers()
            .into_iter()
            .filter_map(sys::wait_thread)
            .collect();
        sys::drain_events(&mut batch);
        for event in batch {
            self.on_event(event, true);
        }
        if self.exited {
            return Vec::new();
        }
        let _boost = Boost::raise();
        // Every thread is stopped and every trap collected (each pc rewound onto its
        // breakpoint): the program's own bytes go back before any thread runs again.
        self.control.restore_code();
        self.control.let_children_go();
        if mode == DetachMode::LeaveStopped {
            // Queued while every thread is held: each dequeues it on release and enters
            // group-stop before running a single instruction.
            // SAFETY: kill with a pid we validated.
            unsafe { libc::kill(self.pid, libc::SIGSTOP) };
        }
        let mut order: Vec<Pid> = self
            .threads
            .keys()
            .copied()
            .filter(|t| *t != self.pid)
            .collect();
        if self.threads.contains_key(&self.pid) {
            order.push(self.pid);
        }
        let mut unreleased = Vec::new();
        for tid in order {
            let thread = &self.threads[&tid];
            if thread.state != RunState::Stopped {
                unreleased.push(tid);
                continue;
            }
            let signal = if thread.in_group_stop {
                0
            } else {
                thread.pending_signal
            };
            for &more in &thread.more_signals {
                raise_again(self.pid, tid, more);
            }
            if let Err(err) = sys::detach(tid, signal) {
                tracing::debug!(tid, %err, "detach failed (thread exiting?)");
            }
        }
        self.threads.clear();
        self.exited = true;
        // Exit statuses of threads that died meanwhile are ours to collect.
        let mut batch = Vec::new();
        sys::drain_events(&mut batch);
        if self.was_job_stopped {
            tracing::debug!(
                "the target was stopped by job control before the attach; it stays stopped"
            );
        }
        if !unreleased.is_empty() {
            tracing::warn!(
                ?unreleased,
                "threads still blocked in the kernel cannot be detached; ending the ptrace \
                 thread releases them"
            );
        }
        unreleased
    }

    fn reap_until_exit(&mut self, waiter: &mut dyn EventWait) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.exited && Instant::now() < deadline {
            let mut batch = Vec::new();
            sys::drain_events(&mut batch);
            for event in batch {
                match event {
                    WaitEvent::Exited { tid, code } => self.on_exit(tid, code),
                    WaitEvent::Killed { tid, signal } => self.on_exit(tid, 128 + signal),
                    // A thread still reporting a stop must be let go to die.
                    WaitEvent::Event { tid, .. } | WaitEvent::Signal { tid, .. } => {
                        let _ = sys::cont(tid, 0);
                    }
                }
            }
            if !self.exited {
                waiter.wait_for_events(Duration::from_millis(20));
            }
        }
    }
}

/// Why seizing one thread failed, in words: most often another tracer holds it
/// (ptrace is per thread, and `validate` looks only at the leader).
fn why_refused(pid: Pid, tid: Pid, err: &std::io::Error) -> String {
    let tracer = procfs::task_status(pid, tid).map_or(0, |s| s.tracer_pid);
    if tracer != 0 {
        let process = procfs::process_of(tracer);
        let name = procfs::comm(process).unwrap_or_else(|_| "?".into());
        return format!("traced by pid {process} ({name})");
    }
    err.to_string()
}

fn task_is_gone(pid: Pid, tid: Pid) -> bool {
    procfs::task_stat(pid, tid).map_or(true, |s| matches!(s.state, 'Z' | 'X'))
}

fn has_live_tasks(pid: Pid) -> bool {
    procfs::tasks(pid)
        .unwrap_or_default()
        .into_iter()
        .any(|tid| !task_is_gone(pid, tid))
}

fn traced_by_us(pid: Pid, tid: Pid, me: Pid, my_tid: Pid) -> bool {
    procfs::task_status(pid, tid).is_ok_and(|s| s.tracer_pid == my_tid || s.tracer_pid == me)
}

/// Records `signal` as owed to a stopped thread; one already owed is kept too.
/// A fault comes first: it is what the instruction raised, and is delivered with its
/// own details by the next resume.
pub(super) fn owe(thread: &mut Thread, signal: i32) {
    let owed = thread.pending_signal;
    if owed == 0 || owed == signal {
        thread.pending_signal = signal;
        return;
    }
    let (first, other) = if super::control::is_fault(signal) && !super::control::is_fault(owed) {
        (signal, owed)
    } else {
        (owed, signal)
    };
    thread.pending_signal = first;
    if !thread.more_signals.contains(&other) {
        thread.more_signals.push(other);
    }
}

/// Queues `signal` to thread `tid` again (it was taken at a signal-delivery-stop and
/// is owed): the kernel delivers it once the thread runs, through another such stop.
fn raise_again(pid: Pid, tid: Pid, signal: i32) {
    // SAFETY: tgkill with the target's ids and a signal it was sent.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal) };
    if sent != 0 {
        tracing::debug!(tid, signal, "could not raise an owed signal again");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn owed_signals_are_all_kept_a_fault_first() {
        let mut thread = Thread::running();
        owe(&mut thread, libc::SIGURG);
        owe(&mut thread, libc::SIGURG);
        assert_eq!(
            (thread.pending_signal, thread.more_signals.clone()),
            (libc::SIGURG, vec![])
        );
        owe(&mut thread, libc::SIGUSR1);
        assert_eq!(thread.more_signals, vec![libc::SIGUSR1]);
        owe(&mut thread, libc::SIGSEGV);
        assert_eq!(
            thread.pending_signal,
            libc::SIGSEGV,
            "the fault is delivered first"
        );
        assert_eq!(thread.more_signals, vec![libc::SIGUSR1, libc::SIGURG]);
    }

    use super::*;

    /// A clone event whose child has the tid of a thread that exited (and was reaped)
    /// adds the child when a live task has that tid now: the tid was reused. A thread
    /// of this test process stands for the child: no tracing is needed to decide.
    #[test]
    fn a_clone_child_with_an_exited_threads_tid_is_new_when_alive() {
        let pid = std::process::id() as Pid;
        let (events, _received) = tokio::sync::mpsc::unbounded_channel();
        let mut tracer = Tracer::new(pid, false, events);
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (end_tx, end_rx) = std::sync::mpsc::channel::<()>();
        let child = std::thread::spawn(move || {
            tid_tx.send(sys::gettid()).unwrap();
            let _ = end_rx.recv();
        });
        let tid = tid_rx.recv().unwrap();
        tracer.recent_exits.record(tid);
        assert!(
            tracer.clone_child_is_new(tid),
            "a live reused tid was ignored"
        );
        assert!(
            !tracer.recent_exits.take(tid),
            "the exit is forgotten once used"
        );

        // Gone for good: a late clone event must not bring it back.
        end_tx.send(()).unwrap();
        child.join().unwrap();
        // The join returns when the thread left user space; its task goes a moment later.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !task_is_gone(pid, tid) && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(task_is_gone(pid, tid), "thread {tid} did not go");
        tracer.recent_exits.record(tid);
        assert!(
            !tracer.clone_child_is_new(tid),
            "an exited thread came back"
        );
        // Not in recent exits and alive: a thread like any other.
        let me = sys::gettid();
        assert!(tracer.clone_child_is_new(me));
        // Dropping a tracer not marked exited would detach (and wait) on this process.
        tracer.exited = true;
    }

    /// The exec event comes under the leader's tid, now the thread that exec'd: a
    /// signal latch held for the old leader must not be passed to the new program.
    /// This process stands for the target (its main thread is alive under its pid);
    /// the exec'ing thread's old tid is one no task has. Nothing here calls ptrace:
    /// the event is handled as while stopping, so nothing is resumed.
    #[test]
    fn an_exec_forgets_the_signal_owed_to_the_old_leader() {
        let pid = std::process::id() as Pid;
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let mut tracer = Tracer::new(pid, false, events);
        tracer.announce = true;
        let execer: Pid = i32::MAX - 1;
        tracer.threads.insert(
            pid,
            Thread {
                state: RunState::Stopped,
                pending_signal: libc::SIGUSR1,
                ..Thread::running()
            },
        );
        tracer.threads.insert(execer, Thread::running());
        tracer.names.insert(pid, "old program".into());
        tracer.on_event(
            WaitEvent::Event {
                tid: pid,
                event: PTRACE_EVENT_EXEC,
                signal: libc::SIGTRAP,
            },
            true,
        );
        let leader = &tracer.threads[&pid];
        assert_eq!(
            leader.pending_signal, 0,
            "the old leader's signal survived exec"
        );
        assert_eq!(leader.state, RunState::Stopped);
        assert!(
            !tracer.names.contains_key(&pid),
            "the old program's name is kept"
        );
        assert_eq!(tracer.tids(), vec![pid]);
        assert!(matches!(
            received.try_recv(),
            Ok(BackendEvent::ThreadExited(tid)) if tid == execer
        ));
        tracer.exited = true;
    }
}
