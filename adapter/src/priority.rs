//! How latch's own threads are scheduled; the target's are never touched.
//!
//! - The ptrace thread runs at SCHED_FIFO while it races busy threads (`Boost`): a
//!   tracer on a 2-core machine with hundreds of spinning tracees gets a sliver of CPU;
//!   measured there, stopping 1000 spinners took 10.4 s at normal priority and 44 ms at
//!   SCHED_FIFO.
//! - Every thread runs at nice -10 when permitted (`prefer_latch_over_busy_targets`), and
//!   asks for the shortest time slice (`answer_promptly`), so requests are answered next
//!   to a target that saturates the CPU and next to latch's own reading.
//! - Threads that read DWARF ahead of need go back to nice 0 and the default slice
//!   (`work_in_background`), until a stack trace waits for them (`wait_for_background`).

use std::time::Duration;

/// Holds the calling thread at SCHED_FIFO until dropped, when permitted.
pub struct Boost {
    previous: Option<(libc::c_int, libc::sched_param)>,
}

impl Boost {
    /// Tries to raise the calling thread; does nothing (and says so in the log) when
    /// the user lacks CAP_SYS_NICE and an RLIMIT_RTPRIO allowance.
    pub fn raise() -> Boost {
        // SAFETY: plain syscalls on the calling thread (pid 0) with valid pointers.
        unsafe {
            let policy = libc::sched_getscheduler(0);
            let mut old = std::mem::zeroed::<libc::sched_param>();
            if policy < 0 || libc::sched_getparam(0, &mut old) != 0 {
                return Boost { previous: None };
            }
            let param = libc::sched_param { sched_priority: 1 };
            if libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) != 0 {
                tracing::debug!(
                    "priority boost not permitted: {}",
                    std::io::Error::last_os_error()
                );
                return Boost { previous: None };
            }
            Boost {
                previous: Some((policy, old)),
            }
        }
    }

    pub fn is_active(&self) -> bool {
        self.previous.is_some()
    }
}

impl Drop for Boost {
    fn drop(&mut self) {
        if let Some((policy, param)) = self.previous.take() {
            // SAFETY: restores what sched_getscheduler/sched_getparam returned.
            unsafe {
                libc::sched_setscheduler(0, policy, &param);
            }
        }
    }
}

/// Makes latch's own threads win against a target that saturates every CPU, so that
/// the editor's requests are answered promptly (measured: 340 ms just to answer
/// `initialize` next to 100 spinning threads). Call before spawning threads: Linux
/// applies nice per thread and new threads inherit it; threads that read ahead of need
/// go back to nice 0 (`work_in_background`). Does nothing when not permitted.
pub fn prefer_latch_over_busy_targets() {
    const NICE: libc::c_int = -10;
    // SAFETY: getpriority of the calling thread; -1 is also a valid nice value, so
    // errno is not consulted (a failure leaves 0, the common value).
    let before = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    ORIGINAL_NICE.store(before, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: setpriority on the calling thread (who = 0).
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) } != 0 {
        tracing::debug!(
            "nice {NICE} not permitted: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    lock_background().raised_nice = Some(NICE);
}

static ORIGINAL_NICE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The nice value latch was started with, before it raised its threads: what a program
/// latch launches gets, as if started from the same shell.
pub fn original_nice() -> libc::c_int {
    ORIGINAL_NICE.load(std::sync::atomic::Ordering::Relaxed)
}

/// The shortest time slice the kernel grants (EEVDF clamps requests to 0.1-100 ms).
const PROMPT_SLICE: Duration = Duration::from_micros(100);

/// Asks the scheduler to run the calling thread soon after it wakes, for threads that
/// mostly wait: the ones that carry the editor's requests and the ptrace events. Under
/// EEVDF (Linux 6.12 and later) a thread that asks for a short slice gets an earlier
/// deadline and preempts a thread with a longer one when it wakes; otherwise a request
/// that arrived while latch read DWARF on every core waited for a reader's slice to end
/// (measured: `threads` took 2-4 ms instead of 0.2). New threads inherit the slice, so
/// call this before spawning any, and `work_in_background` on the busy ones. Older
/// kernels ignore the request; a refusal is only logged.
pub fn answer_promptly() {
    set_slice(PROMPT_SLICE);
}

/// For a thread that computes for long stretches nobody waits on yet (reading DWARF
/// ahead, writing the cache), until the guard drops: the kernel's default slice, and
/// nice 0 instead of latch's -10, so that it yields to latch's prompt threads and to
/// the editor, often in latch's own session. Measured on two cores while the DWARF of
/// a 76 MiB binary was read: `threads` answered in 0.20 ms (median of 15, at most
/// 0.7) instead of 0.38 (at most 7.2). While a lookup waits for such threads
/// (`wait_for_background`) they get latch's priority back: at nice 0, a busy program
/// in latch's session made a first stack trace 10 ms slower.
pub fn work_in_background() -> Background {
    set_slice(Duration::ZERO);
    let mut readers = lock_background();
    // Without the privilege that raised latch, nothing could be raised back.
    let Some(raised) = readers.raised_nice else {
        return Background { tid: None };
    };
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // A thread started by another background thread inherited nice 0: it is set either
    // way, to what the others have now.
    renice(
        tid,
        if readers.waiting > 0 {
            raised
        } else {
            BACKGROUND_NICE
        },
    );
    readers.tids.push(tid);
    Background { tid: Some(tid) }
}

/// Gives the background threads latch's priority until the guard drops: something
/// waits for what they compute.
pub fn wait_for_background() -> Waiting {
    let mut readers = lock_background();
    readers.waiting += 1;
    if let (1, Some(raised)) = (readers.waiting, readers.raised_nice) {
        for &tid in &readers.tids {
            renice(tid, raised);
        }
    }
    Waiting(())
}

const BACKGROUND_NICE: libc::c_int = 0;

/// latch's threads that work in the background, and whether anyone waits for them.
struct Readers {
    tids: Vec<libc::pid_t>,
    waiting: usize,
    /// The nice value latch raised its threads to, once it could.
    raised_nice: Option<libc::c_int>,
}

static READERS: std::sync::Mutex<Readers> = std::sync::Mutex::new(Readers {
    tids: Vec::new(),
    waiting: 0,
    raised_nice: None,
});

fn lock_background() -> std::sync::MutexGuard<'static, Readers> {
    READERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn renice(tid: libc::pid_t, nice: libc::c_int) {
    // SAFETY: setpriority on a thread of latch's own that is still listed in READERS
    // (it leaves the list, under the lock, before it ends).
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
}

/// A thread's time in the background (see `work_in_background`).
pub struct Background {
    tid: Option<libc::pid_t>,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(tid) = self.tid {
            lock_background().tids.retain(|listed| *listed != tid);
        }
    }
}

/// A wait for the background threads (see `wait_for_background`).
pub struct Waiting(());

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut readers = lock_background();
        readers.waiting -= 1;
        if readers.waiting == 0 {
            for &tid in &readers.tids {
                renice(tid, BACKGROUND_NICE);
            }
        }
    }
}

/// Zero means the kernel's default.
fn set_slice(slice: Duration) {
    let size = std::mem::size_of::<libc::sched_attr>() as u32;
    // SAFETY: sched_attr is plain data; the kernel fills at most `size` bytes of it.
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    // SAFETY: the calling thread (0), a valid pointer and its size, no flags.
    if unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr, size, 0) } != 0 {
        return;
    }
    // Real-time threads (a boosted ptrace thread) have no slice to change.
    let policy = attr.sched_policy as libc::c_int;
    if policy != libc::SCHED_OTHER && policy != libc::SCHED_BATCH {
        return;
    }
    // Everything else as it was, the nice value included: sched_setattr sets them all.
    attr.size = size;
    attr.sched_flags = 0;
    attr.sched_runtime = slice.as_nanos() as u64;
    // SAFETY: the calling thread (0), an initialised attribute block, no flags.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) } != 0 {
        tracing::debug!(
            "scheduler slice not changed: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's slice (what sched_getattr reports as its runtime) and nice.
    fn slice_and_nice() -> (u64, i32) {
        let size = std::mem::size_of::<libc::sched_attr>() as u32;
        // SAFETY: as in set_slice.
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        let status = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr, size, 0) };
        assert_eq!(
            status,
            0,
            "sched_getattr: {}",
            std::io::Error::last_os_error()
        );
        (attr.sched_runtime, attr.sched_nice)
    }

    #[test]
    fn prompt_threads_get_the_shortest_slice_and_background_ones_the_default() {
        // A thread of its own: the test harness's threads keep their scheduling.
        std::thread::spawn(|| {
            let (_, nice) = slice_and_nice();
            answer_promptly();
            let (prompt, prompt_nice) = slice_and_nice();
            assert_eq!(prompt_nice, nice, "the nice value is kept");
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
            let mut version = release.trim().split(['.', '-']).map(|n| n.parse::<u32>());
            let (Some(Ok(major)), Some(Ok(minor))) = (version.next(), version.next()) else {
                panic!("unreadable kernel release {release:?}");
            };
            if (major, minor) < (6, 12) {
                // Before Linux 6.12 the slice of a normal thread is not the caller's to set.
                crate::test_skip::skip_or_fail(&format!(
                    "Linux {major}.{minor} has no requested slices (6.12+)"
                ));
                return;
            }
            assert_eq!(prompt, PROMPT_SLICE.as_nanos() as u64);
            let inherited = std::thread::spawn(slice_and_nice).join().unwrap();
            assert_eq!(inherited.0, prompt, "new threads inherit the slice");
            let background = work_in_background();
            let (slice, _) = slice_and_nice();
            assert!(slice > prompt, "the default slice is back: {slice} ns");
            drop(background);
        })
        .join()
        .unwrap();
    }

    /// A thread latch raised goes to nice 0 in the background and back to its raised
    /// priority while something waits for it.
    #[test]
    fn background_threads_are_raised_while_waited_for() {
        std::thread::spawn(|| {
            prefer_latch_over_busy_targets();
            if slice_and_nice().1 != -10 {
                crate::test_skip::skip_or_fail("lowering nice needs CAP_SYS_NICE (run as root)");
                return;
            }
            let background = work_in_background();
            assert_eq!(slice_and_nice().1, BACKGROUND_NICE);
            // A reader's helper starts at its nice 0 and is raised with it.
            let (to_helper, helper_inbox) = std::sync::mpsc::channel::<()>();
            let (to_reader, reader_inbox) = std::sync::mpsc::channel();
            let helper = std::thread::spawn(move || {
                let _background = work_in_background();
                to_reader.send(()).unwrap();
                helper_inbox.recv().unwrap();
                slice_and_nice().1
            });
            reader_inbox.recv().unwrap();
            let waiting = wait_for_background();
            assert_eq!(slice_and_nice().1, -10, "raised while waited for");
            to_helper.send(()).unwrap();
            assert_eq!(helper.join().unwrap(), -10, "the helper too");
            let also_waiting = wait_for_background();
            drop(waiting);
            assert_eq!(slice_and_nice().1, -10, "another wait goes on");
            drop(also_waiting);
            assert_eq!(slice_and_nice().1, BACKGROUND_NICE);
            drop(background);
            let _waiting = wait_for_background();
            assert_eq!(slice_and_nice().1, BACKGROUND_NICE, "no longer listed");
        })
        .join()
        .unwrap();
    }
}
