//! A Go program seen as goroutines: `threads` lists them (with the OS threads that run
//! none), `stackTrace` unwinds one whether a thread runs it or not, and requests that
//! name a thread accept a goroutine's id for the thread it runs on.
//!
//! A goroutine's DAP thread id is [`GOROUTINE_ID_BASE`] + its goroutine id: above any
//! Linux tid (pid_max is at most 2^22), and the same at every stop.

use super::Session;
use crate::procfs::Pid;
use crate::symbols::goroutines::{Goroutine, GoroutinesError, Status};
use crate::symbols::service::{GoroutineStackJob, CREATED_BY};
use crate::symbols::{Registers, StackFrame};

/// Goroutine ids are shown from here up: `1 << 22` is above any tid.
pub(super) const GOROUTINE_ID_BASE: i64 = 1 << 22;

/// How many goroutines a `threads` answer lists unless `maxGoroutines` says otherwise.
pub(super) const DEFAULT_MAX_GOROUTINES: usize = 1000;

/// The session's goroutine settings and what it knows across stops.
pub(super) struct GoView {
    /// The `goroutines` argument (default true).
    pub enabled: bool,
    /// The `maxGoroutines` argument.
    pub max: usize,
    /// The program has no goroutines latch can show (not Go, no DWARF, a runtime it
    /// cannot read): its threads are shown.
    pub unavailable: bool,
    /// Goroutines have been read: the thread list is theirs, and OS threads' `thread`
    /// events are not sent.
    pub active: bool,
    /// Why there are no goroutines was said (once a session).
    said: bool,
    /// The last stop's `threads` answer, given while the target runs.
    pub last_list: Option<Vec<ThreadEntry>>,
    /// The last stop's goroutines that ran on a thread: (goroutine id, tid).
    pub last_running: Vec<(i64, Pid)>,
}

impl Default for GoView {
    fn default() -> GoView {
        GoView {
            enabled: true,
            max: DEFAULT_MAX_GOROUTINES,
            unavailable: false,
            active: false,
            said: false,
            last_list: None,
            last_running: Vec::new(),
        }
    }
}

impl GoView {
    /// From the attach or launch arguments.
    pub fn configure(&mut self, goroutines: Option<bool>, max: Option<u64>) {
        *self = GoView {
            enabled: goroutines.unwrap_or(true),
            max: max
                .map(|max| usize::try_from(max.max(1)).unwrap_or(usize::MAX))
                .unwrap_or(DEFAULT_MAX_GOROUTINES),
            ..GoView::default()
        };
    }

    /// The target started another program (exec): what was known of the old is gone.
    pub fn forget_program(&mut self) {
        self.unavailable = false;
        self.active = false;
        self.last_list = None;
        self.last_running.clear();
    }

    pub fn is_active(&self) -> bool {
        self.enabled && self.active
    }
}

/// One entry of a `threads` answer.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct ThreadEntry {
    pub id: i64,
    pub name: String,
}

/// This stop's goroutines, as listed (sorted, cut at `maxGoroutines`).
pub(super) struct StopGoroutines {
    pub listed: Vec<Goroutine>,
    pub entries: Vec<ThreadEntry>,
}

/// The key a goroutine's stack has in the stop's stacks: its DAP id.
fn key_of(goid: i64) -> Option<Pid> {
    Pid::try_from(GOROUTINE_ID_BASE.checked_add(goid)?).ok()
}

/// Whether Go's traceback shows a frame of this function (`showfuncinfo`): the
/// runtime's own functions are elided, but for exported ones (`runtime.Gosched`).
pub(super) fn shown_by_go(function: &str) -> bool {
    if !function.contains('.') || function.starts_with(CREATED_BY) {
        return false;
    }
    match function.strip_prefix("runtime.") {
        Some(rest) => rest.starts_with(|c: char| c.is_ascii_uppercase()),
        None => true,
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds: the clock of Go's `nanotime`.
fn monotonic_ns() -> i64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec * 1_000_000_000 + now.tv_nsec
}

/// `goroutine 17 [chan receive, 3 minutes]: main.worker (thread 1234) {request=r42}`.
pub(super) fn goroutine_name(g: &Goroutine, frames: &[StackFrame], now_ns: i64) -> String {
    let mut name = format!("goroutine {} [{}", g.id, g.state());
    if let Some(since) = g.waiting_since_ns.filter(|since| *since > 0) {
        let minutes = now_ns.saturating_sub(since) / 60_000_000_000;
        if minutes >= 1 {
            name.push_str(&format!(", {minutes} minutes"));
        }
    }
    name.push(']');
    let function = frames
        .iter()
        .filter_map(|frame| frame.function.as_deref())
        .find(|function| shown_by_go(function))
        .or_else(|| frames.first().and_then(|frame| frame.function.as_deref()));
    if let Some(function) = function {
        name.push_str(": ");
        name.push_str(function);
    }
    if let Some(tid) = g.thread {
        name.push_str(&format!(" (thread {tid})"));
    }
    if !g.labels.is_empty() {
        let labels: Vec<String> = g.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        name.push_str(&format!(" {{{}}}", labels.join(", ")));
    }
    if g.system {
        name.push_str(" [runtime]");
    }
    name
}

impl Session {
    /// This stop's goroutines, read once a stop; `None` shows threads.
    pub(super) async fn stop_goroutines(&mut self) -> Option<&StopGoroutines> {
        if self.stop.goroutines.is_none() {
            let read = self.read_goroutines().await;
            self.stop.goroutines = Some(read);
        }
        self.stop.goroutines.as_ref().and_then(Option::as_ref)
    }

    async fn read_goroutines(&mut self) -> Option<StopGoroutines> {
        let stopped = self.target.as_ref().is_some_and(|t| t.stopped && !t.exited);
        if !self.go.enabled || self.go.unavailable || !stopped {
            return None;
        }
        let started = std::time::Instant::now();
        let all = match self.symbols.goroutines().await {
            Ok(all) => all,
            Err(error) => {
                self.no_goroutines(&error);
                return None;
            }
        };
        let first = self.stop.reported;
        let mut live: Vec<Goroutine> = all
            .into_iter()
            .filter(|g| g.status != Status::Dead && key_of(g.id).is_some())
            .collect();
        if live.is_empty() {
            // A runtime that has not started yet (a launch's entry): threads.
            return None;
        }
        self.go.active = true;
        live.sort_by_key(|g| {
            (
                first.is_none() || g.thread != first,
                g.system,
                g.thread.is_none(),
                g.id,
            )
        });
        let total = live.len();
        live.truncate(self.go.max);
        if live.len() < total {
            self.out.output(
                "console",
                &format!(
                    "latch: the thread list shows {} of {total} goroutines (the stopped one, \
                     running ones, then by id); set maxGoroutines to see all\n",
                    live.len()
                ),
            );
        }
        let registers = self.stop_registers().await;
        let jobs: Vec<GoroutineStackJob> = live
            .iter()
            .filter_map(|g| {
                let key = key_of(g.id)?;
                let on_thread = g.thread.and_then(|tid| registers.get(&tid));
                let regs = match on_thread {
                    Some(regs) => Registers::from_user_regs(regs),
                    None => Registers::from_pc_sp_bp(g.saved.pc, g.saved.sp, g.saved.bp),
                };
                Some(GoroutineStackJob {
                    key,
                    registers: regs,
                    // Go's tracebacks name no creator for the main goroutine.
                    go_pc: if g.id == 1 { 0 } else { g.go_pc },
                    go_stack_in_c: on_thread
                        .and(g.in_syscall)
                        .map(|at| Registers::from_pc_sp_bp(at.pc, at.sp, at.bp)),
                })
            })
            .collect();
        let read = started.elapsed();
        let stacks = self.symbols.goroutine_stacks(jobs).await;
        tracing::debug!(
            goroutines = total,
            listed = stacks.len(),
            ?read,
            stacks = ?started.elapsed() - read,
            "goroutines read"
        );
        let now = monotonic_ns();
        let mut entries = Vec::with_capacity(live.len());
        for (g, (key, mut frames)) in live.iter().zip(stacks) {
            // As Go's tracebacks: a creator in the runtime (the finalizer goroutine's,
            // the collector's) is not named.
            let creator = frames.last().and_then(|f| f.function.as_deref());
            if creator
                .and_then(|f| f.strip_prefix(CREATED_BY))
                .is_some_and(|f| !shown_by_go(f))
            {
                frames.pop();
            }
            entries.push(ThreadEntry {
                id: i64::from(key),
                name: goroutine_name(g, &frames, now),
            });
            let first_id = self.stop.next_frame_id();
            self.stop
                .frames
                .extend((0..frames.len()).map(|index| (key, index)));
            self.stop.stacks.insert(key, (first_id, frames));
        }
        self.go.last_running = live
            .iter()
            .filter_map(|g| Some((g.id, g.thread?)))
            .collect();
        Some(StopGoroutines {
            listed: live,
            entries,
        })
    }

    /// Goroutines could not be read: said once when it is the program's doing.
    fn no_goroutines(&mut self, error: &str) {
        let not_go = error == GoroutinesError::NotGo.to_string();
        let no_dwarf = error == GoroutinesError::NoDwarf.to_string();
        let layout = error.starts_with("the program's DWARF does not describe");
        if not_go || no_dwarf || layout {
            self.go.unavailable = true;
        }
        tracing::debug!("no goroutines: {error}");
        if (no_dwarf || layout) && !self.go.said {
            self.go.said = true;
            let text = if no_dwarf {
                error.to_string()
            } else {
                format!("{error}: showing threads instead")
            };
            self.out.output("console", &format!("latch: {text}\n"));
        }
    }

    /// The stop's registers of every thread, read once.
    async fn stop_registers(&mut self) -> &rustc_hash::FxHashMap<Pid, libc::user_regs_struct> {
        if self.stop.registers.is_none() {
            let all = self.backend.registers().await.unwrap_or_default();
            self.stop.registers = Some(all.into_iter().collect());
        }
        self.stop.registers.get_or_insert_with(Default::default)
    }

    /// The `threads` answer of a stop in the goroutine view: goroutines, then the OS
    /// threads that run none. `None`: show threads.
    pub(super) async fn goroutine_threads(&mut self) -> Option<Vec<ThreadEntry>> {
        let stop = self.stop_goroutines().await?;
        let mut entries = stop.entries.clone();
        let busy: Vec<Pid> = stop.listed.iter().filter_map(|g| g.thread).collect();
        let threads = match self.listed_threads() {
            Some(threads) => threads.to_vec(),
            None => self.backend.threads().await.unwrap_or_default(),
        };
        entries.extend(
            threads
                .iter()
                .filter(|t| !busy.contains(&t.tid))
                .map(|t| ThreadEntry {
                    id: i64::from(t.tid),
                    name: super::thread_name(t),
                }),
        );
        self.go.last_list = Some(entries.clone());
        Some(entries)
    }

    /// The id a stop of thread `tid` is reported under: the goroutine it runs, else (a
    /// pause) the first user goroutine running on a thread, else the thread.
    pub(super) async fn shown_id(&mut self, tid: Pid, pause: bool) -> i64 {
        let Some(stop) = self.stop_goroutines().await else {
            return i64::from(tid);
        };
        let on_thread = stop.listed.iter().find(|g| g.thread == Some(tid));
        let running = || stop.listed.iter().find(|g| g.thread.is_some() && !g.system);
        match on_thread.or_else(|| if pause { running() } else { None }) {
            Some(g) => GOROUTINE_ID_BASE + g.id,
            None => i64::from(tid),
        }
    }

    /// The OS thread a DAP thread id stands for: a tid itself, a goroutine the thread it
    /// runs on (in this stop, or the last one while the target runs).
    pub(super) fn thread_for(&self, id: i64) -> Result<Pid, String> {
        if id < GOROUTINE_ID_BASE {
            return Pid::try_from(id).map_err(|_| format!("{id} is not a thread id"));
        }
        let goid = id - GOROUTINE_ID_BASE;
        let listed = self.stop.goroutines.as_ref().and_then(Option::as_ref);
        if let Some(g) = listed.and_then(|stop| stop.listed.iter().find(|g| g.id == goid)) {
            return g.thread.ok_or_else(|| {
                format!(
                    "goroutine {goid} runs on no thread (it is {}): it cannot be stepped or \
                     resumed alone. Continue the whole program, or set a breakpoint where it \
                     runs next",
                    g.state()
                )
            });
        }
        if listed.is_none() {
            if let Some((_, tid)) = self.go.last_running.iter().find(|(g, _)| *g == goid) {
                return Ok(*tid);
            }
        }
        Err(format!(
            "no goroutine {goid} in this stop (it may have exited, or not be listed: see \
             maxGoroutines)"
        ))
    }

    /// The `g` address of the goroutine thread `tid` runs in this stop (goroutine view).
    pub(super) fn goroutine_on(&self, tid: Pid) -> Option<u64> {
        self.stop
            .goroutines
            .as_ref()
            .and_then(Option::as_ref)?
            .listed
            .iter()
            .find(|g| g.thread == Some(tid))
            .map(|g| g.address)
    }

    /// The thread whose registers stand for the innermost frame of the stack `key`.
    pub(super) fn registers_key(&self, key: Pid) -> Pid {
        if i64::from(key) < GOROUTINE_ID_BASE {
            return key;
        }
        let goid = i64::from(key) - GOROUTINE_ID_BASE;
        self.stop
            .goroutines
            .as_ref()
            .and_then(Option::as_ref)
            .and_then(|stop| stop.listed.iter().find(|g| g.id == goid))
            .and_then(|g| g.thread)
            .unwrap_or(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_traceback_elides_the_runtime_but_its_exported_functions() {
        assert!(!shown_by_go("runtime.gopark"));
        assert!(shown_by_go("runtime.Gosched"));
        assert!(shown_by_go("main.worker"));
        assert!(shown_by_go("internal/poll.(*FD).Read"));
        assert!(!shown_by_go("created by main.main"));
        assert!(!shown_by_go("nodot"));
    }

    #[test]
    fn goroutine_ids_are_above_every_tid() {
        assert_eq!(key_of(1), Some((1 << 22) + 1));
        assert!(i64::from(key_of(0).unwrap()) > 4_194_303 - 1);
    }
}
