//! What the client hears of threads coming and going while the target runs.
//!
//! Every clone and exit is followed by the ptrace thread, but a target that makes
//! short-lived threads (a thread per request, the churn fixture) would otherwise send the
//! editor a `thread` event per birth and per death: 15,000 a second, each one JSON the
//! editor parses and acts on. So the session coalesces them on a ticker of one
//! [`WINDOW`]:
//!
//! - a thread is announced at the first tick at which it was already known at the tick
//!   before: it has lived at least one window. One that starts and exits between two
//!   ticks is never announced; one that lives longer than two windows always is, within
//!   two windows of its birth;
//! - an announced thread's exit goes out at the next tick;
//! - at most one batch goes out per tick, and ticks are at least a window apart, so the
//!   rate is bounded by what lives that long, whatever the target does;
//! - the threads found by the attach are announced at once (nvim-dap needs one to pause);
//! - at a stop, before `stopped`, one batch brings the client's set to exactly the
//!   threads that exist ([`ThreadEvents::sync`]).
//!
//! Pure bookkeeping: the session owns the ticker and writes the batches.

use std::collections::BTreeSet;
use std::time::Duration;

use rustc_hash::FxHashSet;

use crate::procfs::Pid;

/// The reporting window. Tens of milliseconds: well below what a person notices in a
/// thread list, well above the life of a per-request thread.
pub const WINDOW: Duration = Duration::from_millis(50);

/// `thread` events to send, exits first (a tid may be reused by a thread that starts).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Batch {
    pub exited: Vec<Pid>,
    pub started: Vec<Pid>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.exited.is_empty() && self.started.is_empty()
    }
}

#[derive(Debug, Default)]
pub(super) struct ThreadEvents {
    /// The client's view: announced by a `started` event and not retired since.
    announced: BTreeSet<Pid>,
    /// Born since the last tick: not announced yet.
    fresh: FxHashSet<Pid>,
    /// Known at the last tick and alive since: announced at the next one.
    aged: FxHashSet<Pid>,
    /// Announced threads that have exited: retired at the next tick.
    gone: BTreeSet<Pid>,
}

impl ThreadEvents {
    /// The threads found by an attach: all announced at once. Starts a new view.
    pub fn announce_all(&mut self, tids: &[Pid]) -> Vec<Pid> {
        *self = ThreadEvents::default();
        self.announced.extend(tids);
        self.announced.iter().copied().collect()
    }

    /// A thread the ptrace thread saw start.
    pub fn started(&mut self, tid: Pid) {
        // Already announced and not exited: an event the client's view has caught up
        // with (sent before a stop's `sync`, handled after it). A tid that exited is
        // reused by a new thread.
        if self.announced.contains(&tid) && !self.gone.contains(&tid) {
            return;
        }
        self.fresh.insert(tid);
    }

    /// A thread the ptrace thread saw exit.
    pub fn exited(&mut self, tid: Pid) {
        if self.fresh.remove(&tid) || self.aged.remove(&tid) {
            // Never announced: the client never hears of it.
            return;
        }
        if self.announced.contains(&tid) {
            self.gone.insert(tid);
        }
    }

    /// Whether a tick has anything to do (the ticker waits while it has not).
    pub fn pending(&self) -> bool {
        !(self.fresh.is_empty() && self.aged.is_empty() && self.gone.is_empty())
    }

    /// A tick of the window: the exits of announced threads, and the threads that
    /// have lived since the last tick.
    pub fn tick(&mut self) -> Batch {
        let exited: Vec<Pid> = std::mem::take(&mut self.gone).into_iter().collect();
        for tid in &exited {
            self.announced.remove(tid);
        }
        let mut started: Vec<Pid> = std::mem::take(&mut self.aged).into_iter().collect();
        started.sort_unstable();
        self.announced.extend(&started);
        self.aged = std::mem::take(&mut self.fresh);
        Batch { exited, started }
    }

    /// Exits only, now: the process is gone, its remaining threads with it.
    pub fn retire_now(&mut self) -> Vec<Pid> {
        self.fresh.clear();
        self.aged.clear();
        let exited: Vec<Pid> = std::mem::take(&mut self.gone).into_iter().collect();
        for tid in &exited {
            self.announced.remove(tid);
        }
        exited
    }

    /// At a stop: the events that make the client's view exactly `tids`, every thread
    /// that exists, whatever the window would have held back.
    pub fn sync(&mut self, tids: &[Pid]) -> Batch {
        let now: BTreeSet<Pid> = tids.iter().copied().collect();
        let exited = self.announced.difference(&now).copied().collect();
        let started = now.difference(&self.announced).copied().collect();
        *self = ThreadEvents {
            announced: now,
            ..ThreadEvents::default()
        };
        Batch { exited, started }
    }

    /// The client's view (tests).
    #[cfg(test)]
    fn view(&self) -> Vec<Pid> {
        self.announced.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(exited: &[Pid], started: &[Pid]) -> Batch {
        Batch {
            exited: exited.to_vec(),
            started: started.to_vec(),
        }
    }

    #[test]
    fn a_thread_gone_within_a_window_is_never_announced() {
        let mut t = ThreadEvents::default();
        assert_eq!(t.announce_all(&[10, 11]), vec![10, 11]);
        t.started(20);
        t.exited(20);
        assert!(!t.pending());
        // Born before a tick, gone before the next: still never announced.
        t.started(21);
        assert_eq!(t.tick(), Batch::default());
        t.exited(21);
        assert_eq!(t.tick(), Batch::default());
        assert!(!t.pending());
        assert_eq!(t.view(), vec![10, 11]);
    }

    #[test]
    fn a_thread_that_lives_a_window_is_announced_and_retired() {
        let mut t = ThreadEvents::default();
        t.announce_all(&[10]);
        t.started(30);
        assert_eq!(t.tick(), Batch::default());
        assert_eq!(t.tick(), batch(&[], &[30]));
        t.exited(30);
        t.exited(10);
        assert_eq!(t.tick(), batch(&[10, 30], &[]));
        assert!(t.view().is_empty());
        assert!(!t.pending());
    }

    #[test]
    fn a_reused_tid_is_retired_then_announced_again() {
        let mut t = ThreadEvents::default();
        t.announce_all(&[10, 40]);
        t.exited(40);
        t.started(40);
        assert_eq!(t.tick(), batch(&[40], &[]));
        assert_eq!(t.tick(), batch(&[], &[40]));
        assert_eq!(t.view(), vec![10, 40]);
    }

    #[test]
    fn a_stop_brings_the_view_to_the_threads_that_exist() {
        let mut t = ThreadEvents::default();
        t.announce_all(&[10, 11, 12]);
        t.exited(11);
        t.started(50);
        assert_eq!(t.tick(), batch(&[11], &[]));
        t.started(51);
        t.exited(12);
        // 52's start is still on its way; 10 exited but its event is not here yet.
        assert_eq!(t.sync(&[50, 51, 52]), batch(&[10, 12], &[50, 51, 52]));
        assert_eq!(t.view(), vec![50, 51, 52]);
        assert!(!t.pending());
        // Events sent before the stop and handled after it change nothing.
        t.started(51);
        assert!(!t.pending());
        assert_eq!(t.tick(), Batch::default());
    }

    /// Under any churn, a tick sends at most the exits of what was announced and the
    /// threads that lived through the last tick: with N threads alive at any moment,
    /// at most 2N events per tick.
    #[test]
    fn churn_sends_nothing_when_nothing_lives_a_window() {
        let mut t = ThreadEvents::default();
        t.announce_all(&[1, 2, 3, 4]);
        let mut sent = 0;
        let mut tid = 100;
        for _ in 0..1000 {
            for _ in 0..300 {
                t.started(tid);
                t.exited(tid);
                tid += 1;
            }
            // Two threads in flight at each tick, gone before the next.
            t.started(tid);
            t.started(tid + 1);
            let b = t.tick();
            sent += b.exited.len() + b.started.len();
            t.exited(tid);
            t.exited(tid + 1);
            tid += 2;
        }
        assert_eq!(sent, 0);
    }
}
