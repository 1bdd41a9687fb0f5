//! Execution control on the ptrace thread: breakpoint traps and what they decide,
//! stepping threads over breakpoints, single steps and run-to-address for the session's
//! step plans, and the signals that stop the target (DESIGN.md section 9).
//!
//! Stepping over a breakpoint is done the proven way: with every other thread stopped,
//! the `int3` is lifted, the threads parked on it run one instruction, and it is put
//! back; so no thread can run past a breakpoint while it is out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::breakpoints::{Internal, Table, UserBreakpoint};
use super::displaced::{self, Relocated};
use super::memory::TargetMemory;
use super::sys::{self, WaitEvent, SI_KERNEL};
use super::tracer::{EventWait, RunState, Tracer};
use super::{BackendEvent, StopReason};
use crate::procfs::{self, Pid};

/// How long one instruction may take to execute. Only an instruction that blocks in
/// the kernel (a `syscall` waiting for another thread) takes longer; its thread is then
/// left running and its step reported when it ends.
const STEP_DEADLINE: Duration = Duration::from_secs(1);

/// How long a thread stepping over a lifted breakpoint may take to run its (ordinary)
/// instruction: only a machine too loaded to schedule it takes seconds.
const LIFTED_STEP_DEADLINE: Duration = Duration::from_secs(60);

/// The signals that stop the target, from the exception filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalFilters {
    /// Stop on these when the program does not catch them (it would die of them): a
    /// program's own SIGSEGV handler (a JVM's null checks, Go's nil-pointer panics) is
    /// its business, and stopping the world on it would freeze a production process.
    pub fatal: Vec<i32>,
    /// Stop on these even when the program catches them.
    pub always: Vec<i32>,
    /// Stop on every other signal too.
    pub all_others: bool,
}

impl SignalFilters {
    /// The crash signals, on by default.
    pub const CRASHES: [i32; 5] = [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
        libc::SIGABRT,
    ];
}

impl Default for SignalFilters {
    fn default() -> SignalFilters {
        SignalFilters {
            fatal: SignalFilters::CRASHES.to_vec(),
            always: Vec::new(),
            all_others: false,
        }
    }
}

/// Signals that are never an exception: job control, and what a debugger's own work
/// raises.
fn never_an_exception(signal: i32) -> bool {
    matches!(
        signal,
        libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
            | libc::SIGCONT
            | libc::SIGTRAP
    )
}

/// What a thread's single step came to.
#[derive(Debug, Clone)]
pub enum StepResult {
    /// One instruction ran; the thread's registers now.
    Stepped(Box<libc::user_regs_struct>),
    /// Something else happened first (a breakpoint of another kind, a signal the user
    /// stops on, the thread's exit): a `Stopped` event says what, or the exit events.
    Interrupted,
    /// The instruction blocks in the kernel: the thread runs on, and a `Stopped` event
    /// with reason `Step` comes when it returns.
    Running,
    /// The thread exited instead; every other thread is still stopped.
    Exited,
}

/// Why a thread is being single-stepped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stepping {
    /// Over a breakpoint, on the way to letting it run.
    Over,
    /// For the user (an instruction step, or a line step's next instruction).
    User,
    /// The instruction of the breakpoint at this address, run in the scratch slot.
    Displaced(u64),
}

/// The displaced-stepping slot: code that never runs again (see `displaced.rs`).
struct Scratch {
    address: u64,
    len: usize,
    /// Its own bytes, saved before the first use, put back at detach.
    saved: Option<Vec<u8>>,
    /// The breakpoint whose instruction is in it now.
    loaded: Option<u64>,
}

pub struct Control {
    pid: Pid,
    /// `/proc/PID/mem`, opened on first use and again after an exec (the old file shows
    /// the old program's memory).
    memory: Option<TargetMemory>,
    pub(super) table: Table,
    pub(super) filters: SignalFilters,
    /// Stops to report, oldest first: several threads can hit breakpoints at once, and
    /// one stop event reports one thread; the others are reported at the next resume,
    /// without running anything, as gdb and lldb do.
    pub(super) pending: VecDeque<(Pid, StopReason)>,
    /// Only this thread runs (`singleThread`, or a step); the others are held.
    pub(super) only: Option<Pid>,
    /// A breakpoint that does not stop (a hit count not reached, a logpoint) was hit:
    /// its thread waits, parked on it, to be stepped over and run on.
    pub(super) step_over_wanted: bool,
    /// Threads being single-stepped, and why.
    pub(super) stepping: rustc_hash::FxHashMap<Pid, Stepping>,
    scratch: Option<Scratch>,
    /// Each breakpoint's instruction re-encoded for the slot, or why it cannot be.
    relocations: rustc_hash::FxHashMap<u64, Result<Relocated, String>>,
    /// vfork children running in the target's memory (see `vfork_started`).
    vforks: std::collections::HashSet<Pid>,
    /// Child processes in the target's memory waiting for their parent's event.
    waiting_children: Vec<Pid>,
    /// `followForks`: children are handed over to a session of their own instead of
    /// being let go.
    pub(super) follow_forks: bool,
    /// Followed children that run in the target's memory (vfork) until they exec: still
    /// traced by us, handed over at their exec.
    pub(super) followed: std::collections::BTreeSet<Pid>,
    /// Threads parked on a breakpoint that does not stop, to step displaced, with their
    /// registers as the trap left them (pc rewound): one read fewer per hit.
    displace: Vec<(Pid, libc::user_regs_struct)>,
    /// A stop is shown to the user (a `Stopped` event was sent, or a `pause` stopped
    /// everything): the process is held for them, and stops still to report wait for
    /// the next resume. Without this, a second thread's trap collected while the first
    /// stop stopped everything was reported at once, as a second stop, while the
    /// session already showed the first.
    pub(super) shown: bool,
}

impl Control {
    pub fn new(pid: Pid) -> Control {
        Control {
            pid,
            memory: None,
            table: Table::default(),
            filters: SignalFilters::default(),
            pending: VecDeque::new(),
            only: None,
            step_over_wanted: false,
            stepping: Default::default(),
            scratch: None,
            relocations: Default::default(),
            displace: Vec::new(),
            vforks: Default::default(),
            waiting_children: Vec::new(),
            follow_forks: false,
            followed: Default::default(),
            shown: false,
        }
    }

    /// Runs `work` on the table with the target's memory to write to; `None` if the
    /// memory cannot be opened.
    fn with_memory<R>(&mut self, work: impl FnOnce(&mut Table, &TargetMemory) -> R) -> Option<R> {
        self.memory()?;
        let memory = self.memory.as_ref()?;
        Some(work(&mut self.table, memory))
    }

    fn memory(&mut self) -> Option<&TargetMemory> {
        if self.memory.is_none() {
            match TargetMemory::open(self.pid) {
                Ok(memory) => self.memory = Some(memory),
                Err(err) => {
                    tracing::warn!("cannot open /proc/{}/mem: {err}", self.pid);
                    return None;
                }
            }
        }
        self.memory.as_ref()
    }

    /// Every thread is stopped: any trap of an `int3` taken out while they ran has been
    /// collected.
    pub(super) fn all_stopped(&mut self) {
        self.table.forget_removed();
    }

    /// An exec replaced the program: its breakpoints went with the old code.
    pub(super) fn after_exec(&mut self) {
        self.table.forget_all_sites();
        self.memory = None;
        self.pending.clear();
        self.scratch = None;
        self.relocations.clear();
        self.displace.clear();
    }

    /// Puts the program's own bytes back everywhere, for a detach.
    pub(super) fn restore_code(&mut self) {
        if !self.table.is_empty() {
            self.with_memory(|table, memory| table.restore_all(memory));
        }
        if let Some(Scratch {
            address,
            saved: Some(saved),
            ..
        }) = self.scratch.take()
        {
            if let Some(memory) = self.memory() {
                if let Err(err) = memory.write(address, &saved) {
                    tracing::warn!("could not restore the code at {address:#x}: {err}");
                }
            }
        }
    }

    /// The instruction of the breakpoint at `address`, re-encoded for the slot.
    fn relocated(&mut self, address: u64) -> Result<Relocated, String> {
        if let Some(known) = self.relocations.get(&address) {
            return known.clone();
        }
        let slot = self.scratch.as_ref().ok_or("no slot")?;
        let (to, room) = (slot.address, slot.len);
        let mut code = vec![0u8; displaced::MAX_INSTRUCTION];
        let read = self
            .memory()
            .ok_or_else(|| "memory unreadable".to_string())
            .and_then(|m| m.read(address, &mut code).map_err(|e| e.to_string()));
        let result = read.and_then(|()| {
            self.table.show_original(address, &mut code);
            let moved = displaced::relocate(&code, address, to)?;
            if moved.bytes.len() > room {
                return Err("too long for the slot".to_string());
            }
            Ok(moved)
        });
        if let Err(why) = &result {
            tracing::debug!("the instruction at {address:#x} is stepped in place: {why}");
        }
        self.relocations.insert(address, result.clone());
        result
    }

    /// Puts the relocated instruction of the breakpoint at `address` in the slot.
    fn load_slot(&mut self, address: u64, moved: &Relocated) -> Result<u64, String> {
        let slot = self.scratch.as_ref().ok_or("no slot")?;
        if slot.loaded == Some(address) {
            return Ok(slot.address);
        }
        let (to, len, saved) = (slot.address, slot.len, slot.saved.is_some());
        let memory = self.memory().ok_or("memory unwritable")?;
        let mut own = None;
        if !saved {
            let mut bytes = vec![0u8; len];
            memory.read(to, &mut bytes).map_err(|e| e.to_string())?;
            own = Some(bytes);
        }
        memory.write(to, &moved.bytes).map_err(|e| e.to_string())?;
        let slot = self.scratch.as_mut().expect("checked above");
        if own.is_some() {
            slot.saved = own;
        }
        slot.loaded = Some(address);
        Ok(to)
    }

    /// A thread of the target vforked `child`, which runs in the target's memory until
    /// it execs or exits: no `int3` may be there meanwhile. The child is let go once
    /// they are out (it may have stopped first, see `must_wait_for_parent`).
    pub(super) fn vfork_started(&mut self, child: Pid) {
        if self.vforks.insert(child) {
            self.with_memory(|table, memory| table.suspend(memory));
        }
        self.let_child_go(child);
    }

    /// The vfork child exec'd or exited: the breakpoints go back.
    pub(super) fn vfork_done(&mut self, child: Pid) {
        if self.vforks.remove(&child) {
            self.with_memory(|table, memory| table.resume(memory));
        }
    }

    /// A child process in the target's memory stopped before its parent's vfork (or
    /// clone) event said what it is: with breakpoints in, it is held until then (let go
    /// now, it would run them). True if held.
    pub(super) fn must_wait_for_parent(&mut self, child: Pid) -> bool {
        let held = !self.table.is_empty()
            && !self.vforks.contains(&child)
            && sys::same_memory(child, self.pid);
        if held {
            self.waiting_children.push(child);
        }
        held
    }

    /// Detaches a child held by `must_wait_for_parent`, if it is.
    pub(super) fn let_child_go(&mut self, child: Pid) {
        if let Some(at) = self.waiting_children.iter().position(|c| *c == child) {
            self.waiting_children.remove(at);
            if self.follow_forks {
                // Followed from its exec on, when its memory is its own.
                self.followed.insert(child);
                let _ = sys::cont(child, 0);
                return;
            }
            if let Err(err) = sys::detach(child, 0) {
                tracing::debug!(child, %err, "detaching a child process failed");
            }
        }
    }

    /// At detach: every child still held goes.
    pub(super) fn let_children_go(&mut self) {
        for child in std::mem::take(&mut self.waiting_children) {
            let _ = sys::detach(child, 0);
        }
        // Followed vfork children still run traced: each is stopped to be detached.
        for child in std::mem::take(&mut self.followed) {
            let _ = sys::interrupt(child);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
            loop {
                match sys::wait_thread(child) {
                    Some(sys::WaitEvent::Event { .. }) => {
                        let _ = sys::detach(child, 0);
                        break;
                    }
                    Some(sys::WaitEvent::Signal { signal, .. }) => {
                        let _ = sys::detach(child, signal);
                        break;
                    }
                    Some(_) => break,
                    None if std::time::Instant::now() > deadline => break,
                    None => std::thread::sleep(std::time::Duration::from_millis(1)),
                }
            }
        }
    }

    /// A forked child is let go: its copy of memory has our breakpoints in it, and the
    /// first one it ran would kill it with SIGTRAP. A child that shares our memory
    /// (`CLONE_VM`) is left alone: writing its memory would write the target's.
    pub(super) fn clean_child(&mut self, child: Pid) {
        let originals = self.table.originals();
        if originals.is_empty() || sys::same_memory(child, self.pid) {
            return;
        }
        let memory = match TargetMemory::open(child) {
            Ok(memory) => memory,
            Err(err) => {
                tracing::warn!("cannot clean the breakpoints out of child {child}: {err}");
                return;
            }
        };
        for (address, original) in originals {
            if memory.read_byte(address).ok() == Some(super::breakpoints::INT3) {
                let _ = memory.write_byte(address, original);
            }
        }
    }

    /// Whether the program catches `signal` (its `SigCgt` mask in /proc).
    fn caught(&self, signal: i32) -> bool {
        procfs::status(self.pid).is_ok_and(|status| status.caught_signal(signal))
    }

    fn stops_on(&self, signal: i32) -> Option<bool> {
        if never_an_exception(signal) {
            return None;
        }
        if self.filters.always.contains(&signal) {
            return Some(self.caught(signal));
        }
        if self.filters.fatal.contains(&signal) {
            let caught = self.caught(signal);
            return (!caught).then_some(false);
        }
        let crash = SignalFilters::CRASHES.contains(&signal);
        (self.filters.all_others && !crash).then(|| self.caught(signal))
    }

    /// Forgets the hits, still to report, of breakpoints the user has removed since: as
    /// in gdb, a breakpoint that is gone does not stop the program. The thread's pc was
    /// rewound onto the address when it hit, so it runs the instruction when resumed.
    fn forget_stale_stops(&mut self) {
        let table = &self.table;
        self.pending.retain_mut(|(_, reason)| match reason {
            StopReason::Breakpoint(ids) => {
                ids.retain(|id| table.hits(*id).is_some());
                !ids.is_empty()
            }
            _ => true,
        });
    }

    pub(super) fn remove_step_targets(&mut self) {
        self.with_memory(|table, memory| {
            table.remove_internal(
                |i| matches!(i, Internal::Step { .. } | Internal::Return { .. }),
                memory,
                false,
            )
        });
    }
}

impl Tracer {
    /// Whether a stop of `tid` that latch did not ask for is kept rather than resumed:
    /// the process is held, and `tid` is not the one thread let run.
    pub(super) fn holds(&self, tid: Pid) -> bool {
        self.holding && self.control.only != Some(tid)
    }

    fn mark_stopped(&mut self, tid: Pid) -> Option<&mut super::tracer::Thread> {
        let thread = self.threads.get_mut(&tid)?;
        thread.state = RunState::Stopped;
        thread.late = false;
        thread.in_group_stop = false;
        Some(thread)
    }

    /// A signal-delivery-stop of a known thread that is latch's business: the trap of
    /// one of our breakpoints, the end of a single step, or a signal the user stops on.
    /// True if handled here.
    pub(super) fn on_trap_or_fault(&mut self, tid: Pid, signal: i32, stopping: bool) -> bool {
        if signal == libc::SIGTRAP {
            if let Some(kind) = self.control.stepping.remove(&tid) {
                // A step that outlived its deadline (a blocking syscall) has ended.
                self.mark_stopped(tid);
                match kind {
                    Stepping::User => self.control.pending.push_back((tid, StopReason::Step)),
                    Stepping::Displaced(address) => {
                        if stopping || self.holds(tid) {
                            // Fixed up now; it runs on when the process does.
                            let held = self.holding;
                            self.holding = true;
                            self.after_displaced_step(tid, address);
                            self.holding = held;
                        } else {
                            self.after_displaced_step(tid, address);
                        }
                    }
                    Stepping::Over if !stopping && !self.holds(tid) => self.resume(tid),
                    Stepping::Over => {}
                }
                return true;
            }
            if self.on_breakpoint_trap(tid, stopping) {
                return true;
            }
        }
        let Some(caught) = self.control.stops_on(signal) else {
            return false;
        };
        let info = sys::sig_info(tid).ok();
        let Some(thread) = self.mark_stopped(tid) else {
            return false;
        };
        // Owed to the thread: continuing delivers it, as without latch.
        super::tracer::owe(thread, signal);
        let (code, address) = match info {
            // SAFETY: si_addr is valid to read for the fault signals asked about here.
            Some(info) if has_fault_address(signal) => {
                (info.si_code, Some(unsafe { info.si_addr() } as u64))
            }
            Some(info) => (info.si_code, None),
            None => (0, None),
        };
        self.control.pending.push_back((
            tid,
            StopReason::Signal {
                signal,
                code,
                address,
                caught,
            },
        ));
        true
    }

    /// The trap of an `int3` of ours: the pc is rewound onto the breakpoint and the hit
    /// decided. True if the trap was ours.
    fn on_breakpoint_trap(&mut self, tid: Pid, stopping: bool) -> bool {
        if self.control.table.is_empty() && !self.control.table.any_removed() {
            return false;
        }
        // An int3 raises SIGTRAP with SI_KERNEL; a SIGTRAP sent by kill() does not.
        match sys::sig_info(tid) {
            Ok(info) if info.si_code == SI_KERNEL => {}
            _ => return false,
        }
        let Ok(mut regs) = sys::get_regs(tid) else {
            return false;
        };
        let address = regs.rip.wrapping_sub(1);
        let mut ours = self.control.table.contains(address);
        if !ours && !self.control.table.was_removed(address) {
            // The program's own int3: a signal like any other.
            return false;
        }
        regs.rip = address;
        if let Err(err) = sys::set_regs(tid, &regs) {
            tracing::warn!(tid, "could not rewind the pc onto the breakpoint: {err}");
        }
        self.forget_registers(tid);
        let Some(thread) = self.mark_stopped(tid) else {
            return true;
        };
        thread.at_breakpoint = ours.then_some(address);
        if ours {
            let verdict = self.control.table.on_hit(address, tid, &regs);
            for line in verdict.logs.iter() {
                let _ = self.events.send(BackendEvent::Output(line.clone()));
            }
            if verdict.silent_return {
                // Back from the handler it ran while being stepped over this
                // breakpoint: the one-shot return target goes, and the thread is
                // stepped over whatever breakpoint is still here (or runs on).
                self.control.with_memory(|table, memory| {
                    table.remove_internal(
                        |i| matches!(i, Internal::Return { tid: t, reported: false, .. } if *t == tid),
                        memory,
                        true,
                    )
                });
                ours = self.control.table.contains(address);
                if let Some(thread) = self.threads.get_mut(&tid) {
                    thread.at_breakpoint = ours.then_some(address);
                }
            }
            if verdict.loader && verdict.stop.is_empty() && !verdict.step_done {
                // Only this thread waits while the session resolves breakpoints in the
                // new library (the loader holds its lock: no other thread can be in the
                // library's code yet); the others run on. `release` lets it go.
                let _ = self.events.send(BackendEvent::Stopped {
                    tid,
                    reason: StopReason::Libraries,
                });
                return true;
            }
            if verdict.stops() {
                let reason = if !verdict.stop.is_empty() {
                    StopReason::Breakpoint(verdict.stop)
                } else if verdict.step_done {
                    StopReason::Step
                } else {
                    StopReason::Libraries
                };
                self.control.pending.push_back((tid, reason));
                return true;
            }
        }
        if !stopping && !self.holds(tid) {
            if !ours {
                self.resume(tid);
            } else if self.control.scratch.is_some() {
                self.control.displace.push((tid, regs));
            } else {
                self.control.step_over_wanted = true;
            }
        }
        true
    }

    /// Runs the instruction under the breakpoint `tid` is parked on from the slot, and
    /// lets the thread go on; every other thread runs on meanwhile. False when it
    /// cannot be done that way: the thread is then stepped over the proven way.
    fn displaced_step(
        &mut self,
        tid: Pid,
        mut regs: libc::user_regs_struct,
        waiter: &mut dyn EventWait,
    ) -> bool {
        let Some(address) = self
            .threads
            .get(&tid)
            .filter(|t| t.state == RunState::Stopped && !t.in_group_stop)
            .and_then(|t| t.at_breakpoint)
        else {
            return true;
        };
        if self.holds(tid) {
            return true;
        }
        let Ok(moved) = self.control.relocated(address) else {
            return false;
        };
        let Ok(slot) = self.control.load_slot(address, &moved) else {
            return false;
        };
        if regs.rip != address {
            return false;
        }
        regs.rip = slot;
        if sys::set_regs(tid, &regs).is_err() || sys::single_step(tid, 0).is_err() {
            return false;
        }
        self.forget_registers(tid);
        if let Some(thread) = self.threads.get_mut(&tid) {
            thread.state = RunState::Running;
        }
        self.control
            .stepping
            .insert(tid, Stepping::Displaced(address));
        if self.finish_step(tid, waiter) {
            self.after_displaced_step(tid, address);
            return true;
        }
        if self.control.stepping.contains_key(&tid) {
            // Blocked in the kernel (a displaced syscall): its trap comes later.
            return true;
        }
        // A signal came before the instruction ran: back onto the breakpoint, with the
        // signal owed; the proven way steps it over on the way out.
        self.back_onto_breakpoint(tid, address);
        self.threads
            .get(&tid)
            .is_none_or(|t| t.state != RunState::Stopped)
    }

    /// The displaced instruction ran: the pc (and a call's return address) are made
    /// the original's, and the thread runs on.
    fn after_displaced_step(&mut self, tid: Pid, address: u64) {
        let (Ok(moved), Some(slot)) = (
            self.control.relocated(address),
            self.control.scratch.as_ref().map(|s| s.address),
        ) else {
            return;
        };
        let Ok(mut regs) = sys::get_regs(tid) else {
            return;
        };
        let return_address = displaced::fix_after_step(&mut regs, address, slot, &moved);
        if let Err(err) = sys::set_regs(tid, &regs) {
            tracing::warn!(tid, "could not move the pc back from the slot: {err}");
        }
        if let (Some(value), Some(memory)) = (return_address, self.control.memory()) {
            if let Err(err) = memory.write(regs.rsp, &value.to_le_bytes()) {
                tracing::warn!(tid, "could not correct a call's return address: {err}");
            }
        }
        if let Some(thread) = self.threads.get_mut(&tid) {
            thread.at_breakpoint = (regs.rip == address).then_some(address);
        }
        if !self.holds(tid) {
            self.resume(tid);
        }
    }

    fn back_onto_breakpoint(&mut self, tid: Pid, address: u64) {
        let Some(slot) = self.control.scratch.as_ref().map(|s| s.address) else {
            return;
        };
        if let Ok(mut regs) = sys::get_regs(tid) {
            if regs.rip == slot {
                regs.rip = address;
                let _ = sys::set_regs(tid, &regs);
                if let Some(thread) = self.threads.get_mut(&tid) {
                    thread.at_breakpoint = Some(address);
                }
            }
        }
    }

    /// A thread can stop for our interrupt just after it executed an `int3`, before the
    /// kernel dequeued the SIGTRAP: the interrupt's stop is reported first, with the pc
    /// one past the breakpoint and SIGTRAP still pending (`SigPnd` in /proc). Resumed, it
    /// would report the trap at once; detached, or once the breakpoint is gone, it would
    /// die of it (seen: a detach while 8 threads ran through a breakpoint killed the
    /// target with SIGTRAP). Each such thread takes its signal now (PTRACE_CONT: the
    /// signal is dequeued before any instruction runs), and the trap is handled as any
    /// other: pc rewound, hit counted.
    pub(super) fn collect_queued_traps(&mut self, waiter: &mut dyn EventWait) {
        if self.control.table.is_empty() && !self.control.table.any_removed() {
            return;
        }
        let table = &self.control.table;
        let suspects: Vec<Pid> = self
            .threads
            .iter()
            .filter(|(_, t)| {
                t.state == RunState::Stopped
                    && t.at_breakpoint.is_none()
                    && !t.in_group_stop
                    && t.pending_signal == 0
            })
            .map(|(tid, _)| *tid)
            .filter(|tid| {
                sys::get_regs(*tid).is_ok_and(|regs| {
                    let address = regs.rip.wrapping_sub(1);
                    table.contains(address) || table.was_removed(address)
                })
            })
            .filter(|tid| sigtrap_pending(self.pid, *tid))
            .collect();
        for tid in suspects {
            tracing::debug!(tid, "a breakpoint's SIGTRAP is still queued; collecting it");
            if sys::cont(tid, 0).is_err() {
                continue;
            }
            self.forget_registers(tid);
            if let Some(thread) = self.threads.get_mut(&tid) {
                thread.state = RunState::Running;
            }
            let mut interrupted = false;
            let mut deadline = Instant::now() + STEP_DEADLINE;
            loop {
                if let Some(event) = sys::wait_thread(tid) {
                    self.on_event(event, true);
                    let stopped = self
                        .threads
                        .get(&tid)
                        .is_none_or(|t| t.state == RunState::Stopped);
                    if stopped {
                        break;
                    }
                }
                if Instant::now() >= deadline {
                    if interrupted {
                        tracing::warn!(tid, "a thread let take its SIGTRAP did not stop");
                        break;
                    }
                    // Never expected: the signal is taken before anything runs.
                    let _ = sys::interrupt(tid);
                    interrupted = true;
                    deadline = Instant::now() + STEP_DEADLINE;
                }
                waiter.wait_for_events(Duration::from_millis(1));
            }
        }
    }

    /// Where displaced steps run: `len` bytes at `address` that never run again.
    pub fn set_scratch(&mut self, address: u64, len: usize) {
        if self
            .control
            .scratch
            .as_ref()
            .is_some_and(|s| s.address == address)
        {
            return;
        }
        if len < displaced::MAX_INSTRUCTION {
            return;
        }
        self.control.scratch = Some(Scratch {
            address,
            len,
            saved: None,
            loaded: None,
        });
        self.control.relocations.clear();
    }

    /// After a batch of events while the target runs: report a stop, or step the
    /// threads parked on breakpoints that did not stop over them and let them run.
    pub(super) fn after_events(&mut self, waiter: &mut dyn EventWait) {
        if self.exited || self.control.shown {
            return;
        }
        if self.has_news() {
            self.report_next_stop(waiter);
            return;
        }
        for (tid, regs) in std::mem::take(&mut self.control.displace) {
            if !self.displaced_step(tid, regs, waiter) {
                self.control.step_over_wanted = true;
            }
        }
        if self.has_news() {
            self.report_next_stop(waiter);
            return;
        }
        if !std::mem::take(&mut self.control.step_over_wanted) {
            return;
        }
        match self.control.only {
            Some(tid) => {
                self.step_over_breakpoints(&[tid], waiter);
                if self.control.pending.is_empty() {
                    self.resume(tid);
                } else {
                    self.report_next_stop(waiter);
                }
            }
            None => {
                self.stop_all(waiter);
                if self.control.pending.is_empty() {
                    self.resume_all(waiter);
                } else {
                    self.report_next_stop(waiter);
                }
            }
        }
    }

    /// Takes out every step's temporary breakpoint: the step is over.
    pub fn cancel_steps(&mut self) {
        self.control.remove_step_targets();
    }

    /// A stop to report now: any, or with one thread let run (`singleThread`), one of
    /// that thread's (the others', kept from before, wait until they may run).
    fn has_news(&self) -> bool {
        let only = self.control.only;
        self.control
            .pending
            .iter()
            .any(|(t, _)| only.is_none_or(|o| o == *t))
    }

    pub fn has_pending_stop(&self) -> bool {
        !self.control.pending.is_empty()
    }

    /// Stops every thread (if not already) and tells the session about the oldest stop
    /// still to report. A step's temporary breakpoints go: any stop ends the step.
    pub fn report_next_stop(&mut self, waiter: &mut dyn EventWait) {
        // With one thread let run, its own stop is the news: the others' are older.
        let running_alone = self.control.only;
        if !self.holding || self.control.only.is_some() {
            self.stop_all(waiter);
        }
        self.control.only = None;
        self.control.remove_step_targets();
        self.control.forget_stale_stops();
        if let Some(at) =
            running_alone.and_then(|only| self.control.pending.iter().position(|(t, _)| *t == only))
        {
            let own = self.control.pending.remove(at).expect("found above");
            self.control.pending.push_front(own);
        }
        while let Some((tid, reason)) = self.control.pending.pop_front() {
            if !self.threads.contains_key(&tid) {
                continue;
            }
            self.control.shown = true;
            tracing::debug!(
                tid,
                ?reason,
                pending = self.control.pending.len(),
                "stop reported"
            );
            let _ = self.events.send(BackendEvent::Stopped { tid, reason });
            return;
        }
        // Every thread that had something to report is gone: nothing to show.
        self.resume_all(waiter);
    }

    /// Steps the threads of `tids` that are parked on a breakpoint over it, while every
    /// other thread stays stopped.
    pub(super) fn step_over_breakpoints(&mut self, tids: &[Pid], waiter: &mut dyn EventWait) {
        let parked: Vec<(Pid, u64)> = tids
            .iter()
            .filter_map(|tid| {
                let thread = self.threads.get(tid)?;
                let address = thread.at_breakpoint?;
                (thread.state == RunState::Stopped
                    && !thread.in_group_stop
                    && self.control.table.contains(address))
                .then_some((*tid, address))
            })
            .collect();
        if parked.is_empty() {
            return;
        }
        let mut addresses: Vec<u64> = parked.iter().map(|(_, address)| *address).collect();
        addresses.sort_unstable();
        addresses.dedup();
        let lifted = self.control.with_memory(|table, memory| {
            for &address in &addresses {
                table.lift(address, memory);
            }
        });
        if lifted.is_none() {
            return;
        }
        // Side by side: every thread parked on one breakpoint is stepped together.
        let mut started = Vec::new();
        for &(tid, _) in &parked {
            if sys::single_step(tid, 0).is_ok() {
                self.threads.get_mut(&tid).expect("parked").state = RunState::Running;
                self.control.stepping.insert(tid, Stepping::Over);
                started.push(tid);
            }
        }
        let address_of = |tid: Pid| {
            parked
                .iter()
                .find(|(t, _)| *t == tid)
                .map_or(0, |(_, a)| *a)
        };
        let mut stepped = Vec::new();
        let mut signalled = Vec::new();
        for tid in started {
            let patience = self.patience_over(address_of(tid));
            if self.finish_step_within(tid, waiter, patience) {
                stepped.push(tid);
            } else if self
                .threads
                .get(&tid)
                .is_some_and(|t| t.pending_signal != 0)
            {
                signalled.push(tid);
            }
        }
        self.control.with_memory(|table, memory| {
            for &address in &addresses {
                table.lower(address, memory);
            }
        });
        // A signal came before the instruction ran (Go's preemption signal, say): the
        // handler runs first, with the breakpoint in and only that thread running, and
        // the step over is tried again once it is back. Delivered with the breakpoint
        // out, the handler's return would run into it as a new hit.
        for tid in signalled {
            if self.step_over_after_signals(tid, address_of(tid), waiter) {
                stepped.push(tid);
            }
        }
        tracing::debug!(
            parked = parked.len(),
            stepped = stepped.len(),
            "threads stepped over breakpoints"
        );
        for tid in stepped {
            if let Some(thread) = self.threads.get_mut(&tid) {
                thread.at_breakpoint = None;
            }
        }
    }

    /// Steps `tid` over the breakpoint at `address` (in place) after running the handlers
    /// of the signals owed to it. True when it ran the instruction.
    fn step_over_after_signals(
        &mut self,
        tid: Pid,
        address: u64,
        waiter: &mut dyn EventWait,
    ) -> bool {
        for _ in 0..16 {
            let owed = self.threads.get(&tid).map_or(0, |t| t.pending_signal);
            if owed != 0
                && !deferred_while_stepping(owed)
                && self.run_signal_handler(tid, owed, false, waiter).is_some()
            {
                return false;
            }
            let parked = self.threads.get(&tid).is_some_and(|t| {
                t.state == RunState::Stopped
                    && (t.pending_signal == 0 || deferred_while_stepping(t.pending_signal))
            });
            if !parked || sys::get_regs(tid).map_or(true, |r| r.rip != address) {
                return false;
            }
            self.control
                .with_memory(|table, memory| table.lift(address, memory));
            let started = sys::single_step(tid, 0).is_ok();
            if started {
                self.threads.get_mut(&tid).expect("parked").state = RunState::Running;
                self.control.stepping.insert(tid, Stepping::Over);
            }
            let patience = self.patience_over(address);
            let done = started && self.finish_step_within(tid, waiter, patience);
            self.control
                .with_memory(|table, memory| table.lower(address, memory));
            if done {
                return true;
            }
        }
        false
    }

    /// How long to wait for a thread stepping the instruction under the lifted
    /// breakpoint at `address`. The `int3` goes back once the wait ends: a thread that
    /// has not run the instruction by then would run the `int3` instead. Only an
    /// instruction that enters the kernel can rightly take long (it may block there,
    /// and is past the breakpoint once in); any other is waited for, however loaded
    /// the machine.
    fn patience_over(&mut self, address: u64) -> Duration {
        let enters_kernel = self
            .read_code(address, 2)
            .is_some_and(|code| matches!(code[..], [0x0f, 0x05] | [0x0f, 0x34] | [0xcd, _]));
        if enters_kernel {
            STEP_DEADLINE
        } else {
            LIFTED_STEP_DEADLINE
        }
    }

    /// Waits for the single step of `tid` to end. True when it ran its instruction and
    /// stopped; false when something else came first (handled as any event is), or it
    /// is still running after the deadline (blocked in the kernel).
    fn finish_step(&mut self, tid: Pid, waiter: &mut dyn EventWait) -> bool {
        self.finish_step_within(tid, waiter, STEP_DEADLINE)
    }

    /// `finish_step`, waiting at most `patience`.
    fn finish_step_within(
        &mut self,
        tid: Pid,
        waiter: &mut dyn EventWait,
        patience: Duration,
    ) -> bool {
        const SPINS_BEFORE_SLEEP: u32 = 8;
        let deadline = Instant::now() + patience;
        let mut spins = 0;
        loop {
            if let Some(event) = sys::wait_thread(tid) {
                match event {
                    WaitEvent::Signal { signal, .. }
                        if signal == libc::SIGTRAP && self.control.stepping.contains_key(&tid) =>
                    {
                        self.control.stepping.remove(&tid);
                        self.mark_stopped(tid);
                        self.forget_registers(tid);
                        return true;
                    }
                    // An interrupt sent while the thread was already stopping for a
                    // trap stays pending, and stops it again, at once, the next time it
                    // is resumed: the instruction did not run yet. Step again.
                    WaitEvent::Event { event, signal, .. }
                        if is_stale_interrupt(event, signal)
                            && sys::single_step(tid, 0).is_ok() =>
                    {
                        continue;
                    }
                    other => {
                        // A signal that came before the instruction ran, an exit, an
                        // event (clone, exec): the thread did not step.
                        self.control.stepping.remove(&tid);
                        self.on_event(other, true);
                        return false;
                    }
                }
            }
            if Instant::now() >= deadline {
                tracing::debug!(tid, "a single step is blocked in the kernel; it runs on");
                return false;
            }
            // One instruction takes the thread microseconds once it is on a core: look
            // again a few times before sleeping until SIGCHLD, which costs a wake-up.
            if spins < SPINS_BEFORE_SLEEP {
                spins += 1;
                std::thread::yield_now();
                continue;
            }
            waiter.wait_for_events(Duration::from_millis(1));
        }
    }

    pub fn set_breakpoints(
        &mut self,
        breakpoints: Vec<UserBreakpoint>,
    ) -> Vec<(i64, Vec<(u64, String)>)> {
        let running = !self.holding || self.control.only.is_some();
        let why = format!("cannot write the memory of process {}", self.pid);
        let unwritable: Vec<(i64, Vec<(u64, String)>)> = breakpoints
            .iter()
            .map(|b| {
                (
                    b.id,
                    b.addresses.iter().map(|&a| (a, why.clone())).collect(),
                )
            })
            .collect();
        let set = self
            .control
            .with_memory(|table, memory| table.set_user(breakpoints, memory, running))
            .unwrap_or(unwritable);
        // Stops kept for breakpoints just taken out are moot (each such thread is back on
        // its instruction, see `on_breakpoint_trap`, and runs it when let go). Kept, they
        // would pass for news: a step that a signal interrupted would take one for the
        // stop that ended it, report nothing, and let the process run.
        self.control.forget_stale_stops();
        set
    }

    /// Puts latch's own breakpoint on the dynamic loader's hook (or takes it out), to
    /// hear of libraries loaded while the target runs.
    pub fn watch_libraries(&mut self, hook: Option<u64>) {
        let running = !self.holding || self.control.only.is_some();
        self.control.with_memory(|table, memory| {
            table.remove_internal(|i| *i == Internal::Loader, memory, running);
            if let Some(address) = hook {
                if let Err(err) = table.add_internal(address, Internal::Loader, memory) {
                    tracing::warn!("cannot watch the dynamic loader at {address:#x}: {err}");
                }
            }
        });
    }

    pub fn set_signal_filters(&mut self, filters: SignalFilters) {
        self.control.filters = filters;
    }

    /// Runs one instruction of `tid`, the other threads held.
    pub fn step_instruction(
        &mut self,
        tid: Pid,
        waiter: &mut dyn EventWait,
    ) -> Result<StepResult, String> {
        // A step is about the program's lines, not its handlers. A signal sent to the
        // thread (owed, or arriving as it steps) waits until the thread runs on (see
        // `deferred_while_stepping`); an owed fault the user does not stop on runs its
        // handler to the end first, as in gdb.
        for _ in 0..16 {
            let owed = self.threads.get(&tid).map_or(0, |t| t.pending_signal);
            if owed != 0 && !deferred_while_stepping(owed) {
                if let Some(other) = self.run_signal_handler(tid, owed, true, waiter) {
                    return Ok(other);
                }
            }
            match self.step_once(tid, waiter)? {
                Some(result) => return Ok(result),
                None => continue,
            }
        }
        Err(format!(
            "thread {tid} keeps receiving signals: the step cannot make progress"
        ))
    }

    /// Delivers `signal` to `tid` and lets only that thread run until its handler
    /// returns to where it was. `None` when it did; otherwise what happened instead.
    fn run_signal_handler(
        &mut self,
        tid: Pid,
        signal: i32,
        for_user_step: bool,
        waiter: &mut dyn EventWait,
    ) -> Option<StepResult> {
        let regs = sys::get_regs(tid).ok()?;
        let return_to = Internal::Return {
            tid,
            min_sp: regs.rsp,
            reported: for_user_step,
        };
        let added = self
            .control
            .with_memory(|table, memory| table.add_internal(regs.rip, return_to, memory));
        if !matches!(added, Some(Ok(()))) {
            // Without a breakpoint to come back to, the signal is delivered with the
            // step, as the kernel does it.
            return None;
        }
        let (held, only) = (self.holding, self.control.only);
        self.holding = true;
        self.control.only = Some(tid);
        let mut owed = signal;
        let deadline = Instant::now() + STEP_DEADLINE;
        let outcome = loop {
            if let Some(thread) = self.threads.get_mut(&tid) {
                thread.pending_signal = 0;
                thread.at_breakpoint = None;
                thread.state = RunState::Running;
            }
            self.forget_registers(tid);
            if sys::cont(tid, owed).is_err() {
                break Some(StepResult::Interrupted);
            }
            let event = loop {
                if let Some(event) = sys::wait_thread(tid) {
                    break Some(event);
                }
                if Instant::now() >= deadline {
                    break None;
                }
                waiter.wait_for_events(Duration::from_millis(1));
            };
            let Some(event) = event else {
                // The handler takes its time (it sleeps, or waits for another thread):
                // its return is reported as the step's end. A thread that was only
                // being stepped over a breakpoint is not anyone's step: the process is
                // no longer held for it (another thread may hold what the handler
                // waits for), and its return goes on past the breakpoint unreported.
                if !for_user_step {
                    self.control.only = only;
                    self.holding = held;
                }
                return Some(StepResult::Running);
            };
            if let WaitEvent::Event { event, signal, .. } = event {
                // A stale interrupt (see `finish_step_within`): the thread goes on.
                if is_stale_interrupt(event, signal) {
                    owed = 0;
                    continue;
                }
            }
            self.on_event(event, true);
            if let Some(at) = self
                .control
                .pending
                .iter()
                .position(|(t, r)| *t == tid && *r == StopReason::Step)
            {
                self.control.pending.remove(at);
                break None;
            }
            if !self.threads.contains_key(&tid) {
                break Some(StepResult::Exited);
            }
            if !self.control.pending.is_empty() {
                self.report_next_stop(waiter);
                break Some(StepResult::Interrupted);
            }
            // Another signal came while the handler ran: it is delivered too.
            owed = self.threads.get(&tid).map_or(0, |t| t.pending_signal);
        };
        self.control.only = only;
        self.holding = held;
        self.control
            .with_memory(|table, memory| table.remove_internal(|i| *i == return_to, memory, false));
        outcome
    }

    /// One instruction; `None` when a signal came first (it is owed to the thread now).
    fn step_once(
        &mut self,
        tid: Pid,
        waiter: &mut dyn EventWait,
    ) -> Result<Option<StepResult>, String> {
        let Some(thread) = self.threads.get(&tid) else {
            return Err(format!("thread {tid} is gone"));
        };
        if thread.state != RunState::Stopped {
            return Err(format!("thread {tid} is not stopped"));
        }
        self.control.shown = false;
        if thread.in_group_stop {
            return Err(format!(
                "thread {tid} is stopped by job control (SIGSTOP): send SIGCONT to the process first"
            ));
        }
        let lifted = thread
            .at_breakpoint
            .filter(|address| self.control.table.contains(*address));
        if let Some(address) = lifted {
            self.control
                .with_memory(|table, memory| table.lift(address, memory));
        }
        self.forget_registers(tid);
        let stepped = match sys::single_step(tid, 0) {
            Ok(()) => {
                let thread = self.threads.get_mut(&tid).expect("checked above");
                thread.state = RunState::Running;
                thread.at_breakpoint = None;
                self.control.stepping.insert(tid, Stepping::User);
                let patience = lifted.map_or(STEP_DEADLINE, |a| self.patience_over(a));
                self.finish_step_within(tid, waiter, patience)
            }
            Err(err) => {
                tracing::debug!(tid, "single step failed: {err}");
                false
            }
        };
        if let Some(address) = lifted {
            self.control
                .with_memory(|table, memory| table.lower(address, memory));
        }
        if !stepped {
            if self.control.stepping.contains_key(&tid) {
                return Ok(Some(StepResult::Running));
            }
            // Only a stop that will be reported ends the step.
            self.control.forget_stale_stops();
            if !self.threads.contains_key(&tid) && self.control.pending.is_empty() {
                return Ok(Some(StepResult::Exited));
            }
            if self.control.pending.is_empty()
                && self
                    .threads
                    .get(&tid)
                    .is_some_and(|t| t.pending_signal != 0)
            {
                // A signal the user does not stop on came first: its handler runs,
                // then the step is tried again.
                if let Some(thread) = self.threads.get_mut(&tid) {
                    thread.at_breakpoint = lifted;
                }
                return Ok(None);
            }
            if !self.control.pending.is_empty() {
                self.report_next_stop(waiter);
            }
            return Ok(Some(StepResult::Interrupted));
        }
        let regs = sys::get_regs(tid)
            .map_err(|err| format!("cannot read thread {tid}'s registers: {err}"))?;
        if self.control.table.contains(regs.rip) {
            if let Some(thread) = self.threads.get_mut(&tid) {
                thread.at_breakpoint = Some(regs.rip);
            }
        }
        // The session shows the step's end (or steps on, through this command again).
        self.control.shown = true;
        Ok(Some(StepResult::Stepped(Box::new(regs))))
    }

    /// Lets `tid` (or every thread) run until `tid` reaches `address` with its stack
    /// pointer at or above `min_sp`; a `Stopped` event with reason `Step` says so, or
    /// another stop comes first and ends the step. With `goroutine` (a Go `g`'s
    /// address), whatever thread runs that goroutine there (r14 holding it) reaches it,
    /// and `tid` running another goroutine does not.
    pub fn run_to(
        &mut self,
        tid: Pid,
        address: u64,
        min_sp: u64,
        single_thread: bool,
        goroutine: Option<u64>,
        waiter: &mut dyn EventWait,
    ) -> Result<(), String> {
        if !self.threads.contains_key(&tid) {
            return Err(format!("thread {tid} is gone"));
        }
        let pid = self.pid;
        self.control
            .with_memory(|table, memory| {
                table.add_internal(
                    address,
                    Internal::Step {
                        tid,
                        min_sp,
                        goroutine,
                    },
                    memory,
                )
            })
            .ok_or_else(|| format!("cannot write the memory of process {pid}"))?
            .map_err(|err| format!("cannot put a breakpoint at {address:#x}: {err}"))?;
        self.resume_some(single_thread.then_some(tid), waiter);
        Ok(())
    }

    /// Lets a thread held at the dynamic loader's hook go on (see `on_breakpoint_trap`).
    pub fn release(&mut self, tid: Pid, waiter: &mut dyn EventWait) {
        let parked = self
            .threads
            .get(&tid)
            .is_some_and(|t| t.state == RunState::Stopped);
        if !parked || self.holds(tid) {
            return;
        }
        self.step_over_breakpoints(&[tid], waiter);
        if self.has_pending_stop() {
            self.report_next_stop(waiter);
        } else if !self.holds(tid) {
            self.resume(tid);
        }
    }

    /// `continue`: every thread, or only `only` (the others stay held).
    pub fn resume_some(&mut self, only: Option<Pid>, waiter: &mut dyn EventWait) {
        self.control.shown = false;
        self.control.forget_stale_stops();
        // Stops kept from earlier are reported before anything runs; with one thread
        // let run, only its own (the others' wait until they may run).
        let kept = |control: &Control| {
            control
                .pending
                .iter()
                .any(|(t, _)| only.is_none_or(|o| o == *t))
        };
        if kept(&self.control) {
            self.control.only = only;
            self.report_next_stop(waiter);
            return;
        }
        match only {
            None => self.resume_all(waiter),
            Some(tid) => {
                self.step_over_breakpoints(&[tid], waiter);
                if kept(&self.control) {
                    self.control.only = only;
                    self.report_next_stop(waiter);
                    return;
                }
                self.holding = true;
                self.control.only = Some(tid);
                self.resume(tid);
            }
        }
    }

    /// Up to `len` bytes at `address` as the program sees them (the bytes our breakpoints
    /// replaced put back), read a page at a time and ending at the first page that cannot
    /// be read: an editor's memory view asks across mapping boundaries.
    pub fn read_readable(&mut self, address: u64, len: usize) -> Vec<u8> {
        const PAGE: u64 = 4096;
        let mut bytes = Vec::new();
        let Some(memory) = self.control.memory() else {
            return bytes;
        };
        let end = address.saturating_add(len as u64);
        let mut at = address;
        while at < end {
            let page_end = (at / PAGE + 1).saturating_mul(PAGE).min(end);
            let mut chunk = vec![0u8; (page_end - at) as usize];
            if memory.read(at, &mut chunk).is_err() {
                break;
            }
            bytes.extend_from_slice(&chunk);
            at = page_end;
        }
        self.control.table.show_original(address, &mut bytes);
        bytes
    }

    /// Writes `bytes` at `address` (the user's `writeMemory` or `setVariable`), page by
    /// page up to the first page that cannot be written; how many bytes were written.
    /// Bytes over latch's breakpoints become what the breakpoints put back when removed.
    pub fn write_memory(&mut self, address: u64, bytes: &[u8]) -> Result<usize, String> {
        const PAGE: u64 = 4096;
        let mut bytes = bytes.to_vec();
        self.control.table.absorb_write(address, &mut bytes);
        let Some(memory) = self.control.memory() else {
            return Err(format!("cannot open /proc/{}/mem", self.pid));
        };
        let end = address.saturating_add(bytes.len() as u64);
        let mut at = address;
        while at < end {
            let page_end = (at / PAGE + 1).saturating_mul(PAGE).min(end);
            let chunk = &bytes[(at - address) as usize..(page_end - address) as usize];
            if let Err(err) = memory.write(at, chunk) {
                if at == address {
                    return Err(format!("cannot write memory at {at:#x}: {err}"));
                }
                break;
            }
            at = page_end;
        }
        Ok((at - address) as usize)
    }

    /// The program's own bytes of `len` bytes at `address`: what is in memory, with the
    /// bytes our breakpoints replaced put back.
    pub fn read_code(&mut self, address: u64, len: usize) -> Option<Vec<u8>> {
        let mut bytes = vec![0u8; len];
        self.control.memory()?.read(address, &mut bytes).ok()?;
        self.control.table.show_original(address, &mut bytes);
        Some(bytes)
    }
}

/// Whether thread `tid` has a SIGTRAP pending (its own set, `SigPnd`).
fn sigtrap_pending(pid: Pid, tid: Pid) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigPnd:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGTRAP - 1)) != 0)
}

/// An interrupt's stop (`PTRACE_EVENT_STOP` with SIGTRAP), not a job-control stop.
fn is_stale_interrupt(event: i32, signal: i32) -> bool {
    event == super::sys::PTRACE_EVENT_STOP && !sys::is_group_stop_signal(signal)
}

fn has_fault_address(signal: i32) -> bool {
    matches!(
        signal,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP
    )
}

/// Whether a signal owed to a thread waits while the thread steps an instruction (and
/// is delivered when it next resumes) rather than having its handler run first. A
/// signal sent to the thread (Go's preemption SIGURG, a timer, kill) waits: running its
/// handler in the middle of a step, with the other threads held, can hand a Go
/// goroutine to the scheduler (async preemption) and leave the step on another one,
/// or wait on a lock a held thread owns. A fault the instruction itself raised does
/// not wait. (Delve delays such signals the same way.)
pub(super) fn deferred_while_stepping(signal: i32) -> bool {
    !is_fault(signal)
}

/// The signals an instruction raises by executing.
pub(super) fn is_fault(signal: i32) -> bool {
    matches!(
        signal,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP | libc::SIGSYS
    )
}
