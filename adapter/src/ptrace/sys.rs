//! Thin, errno-preserving wrappers over the ptrace and waitpid calls latch makes.
//!
//! Wait statuses are decoded here by hand: nix's `WaitStatus` rejects real-time signal
//! stops with EINVAL after the kernel has already consumed the event, losing the stop.
//! Signals are passed as raw numbers for the same reason.

use std::io;

use crate::procfs::Pid;

pub const PTRACE_EVENT_STOP: i32 = 128;
pub const PTRACE_EVENT_CLONE: i32 = libc::PTRACE_EVENT_CLONE;
pub const PTRACE_EVENT_EXEC: i32 = libc::PTRACE_EVENT_EXEC;
pub const PTRACE_EVENT_VFORK: i32 = libc::PTRACE_EVENT_VFORK;
pub const PTRACE_EVENT_VFORK_DONE: i32 = libc::PTRACE_EVENT_VFORK_DONE;

/// `si_code` of the SIGTRAP an `int3` raises.
pub const SI_KERNEL: i32 = 0x80;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn request(req: libc::c_uint, tid: Pid, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: every request made through here takes integers (or a pointer we own, for
    // GETEVENTMSG/GETREGS) and the kernel validates the tid.
    check(unsafe {
        libc::ptrace(
            req,
            tid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    })
}

/// Seizes without stopping; the options apply atomically. TRACECLONE makes every new
/// thread ours before it runs a single instruction. TRACEFORK makes a forked child ours
/// at its first stop, so that the breakpoints its copy of memory inherited are taken out
/// before it is let go (it would die of SIGTRAP on the first one); TRACEVFORK and
/// TRACEVFORKDONE bracket the time a vfork child runs in the target's own memory, when
/// no breakpoint may be in it. Never EXITKILL: the
/// target must outlive latch.
pub fn seize(tid: Pid) -> io::Result<()> {
    let options = libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACEVFORKDONE;
    request(libc::PTRACE_SEIZE, tid, 0, options as usize).map(drop)
}

/// Seizes a program latch started (`launch`): as `seize`, and with EXITKILL, since a
/// launched program belongs to the debug session and must not outlive latch running
/// with breakpoints in it.
pub fn seize_launched(tid: Pid) -> io::Result<()> {
    let options = libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACEVFORKDONE
        | libc::PTRACE_O_EXITKILL;
    request(libc::PTRACE_SEIZE, tid, 0, options as usize).map(drop)
}

pub fn interrupt(tid: Pid) -> io::Result<()> {
    request(libc::PTRACE_INTERRUPT, tid, 0, 0).map(drop)
}

pub fn cont(tid: Pid, signal: i32) -> io::Result<()> {
    request(libc::PTRACE_CONT, tid, 0, signal as usize).map(drop)
}

/// Lets a thread in group-stop stay stopped (as job control wants) while still
/// reporting to us; see ptrace(2), "PTRACE_LISTEN".
pub fn listen(tid: Pid) -> io::Result<()> {
    request(libc::PTRACE_LISTEN, tid, 0, 0).map(drop)
}

pub fn detach(tid: Pid, signal: i32) -> io::Result<()> {
    request(libc::PTRACE_DETACH, tid, 0, signal as usize).map(drop)
}

pub fn event_message(tid: Pid) -> io::Result<u64> {
    let mut message: libc::c_ulong = 0;
    request(
        libc::PTRACE_GETEVENTMSG,
        tid,
        0,
        &mut message as *mut _ as usize,
    )?;
    Ok(message as u64)
}

/// Runs one instruction, delivering `signal` first when it is not 0.
pub fn single_step(tid: Pid, signal: i32) -> io::Result<()> {
    request(libc::PTRACE_SINGLESTEP, tid, 0, signal as usize).map(drop)
}

pub fn set_regs(tid: Pid, regs: &libc::user_regs_struct) -> io::Result<()> {
    request(libc::PTRACE_SETREGS, tid, 0, regs as *const _ as usize).map(drop)
}

/// What the kernel says about the signal a thread is stopped for: who sent it, and for
/// a fault, what and where.
pub fn sig_info(tid: Pid) -> io::Result<libc::siginfo_t> {
    // SAFETY: siginfo_t is plain old data; GETSIGINFO fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    request(
        libc::PTRACE_GETSIGINFO,
        tid,
        0,
        &mut info as *mut _ as usize,
    )?;
    Ok(info)
}

/// Whether two processes share one address space (a `clone` with CLONE_VM, or vfork):
/// writing one's memory writes the other's.
pub fn same_memory(a: Pid, b: Pid) -> bool {
    const KCMP_VM: libc::c_long = 1;
    // SAFETY: kcmp takes integers only.
    let ret = unsafe { libc::syscall(libc::SYS_kcmp, a, b, KCMP_VM, 0, 0) };
    ret == 0
}

pub fn get_regs(tid: Pid) -> io::Result<libc::user_regs_struct> {
    // SAFETY: user_regs_struct is plain old data; GETREGS fills it completely.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    request(libc::PTRACE_GETREGS, tid, 0, &mut regs as *mut _ as usize)?;
    Ok(regs)
}

/// One decoded `waitpid` result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEvent {
    Exited {
        tid: Pid,
        code: i32,
    },
    Killed {
        tid: Pid,
        signal: i32,
    },
    /// A `PTRACE_EVENT_*` stop; `signal` tells an interrupt (SIGTRAP) from a group-stop.
    Event {
        tid: Pid,
        event: i32,
        signal: i32,
    },
    /// Signal-delivery-stop: the thread is about to receive `signal`; resuming it with
    /// the same number delivers it, with 0 suppresses it.
    Signal {
        tid: Pid,
        signal: i32,
    },
}

pub fn decode(tid: Pid, status: i32) -> Option<WaitEvent> {
    if libc::WIFEXITED(status) {
        Some(WaitEvent::Exited {
            tid,
            code: libc::WEXITSTATUS(status),
        })
    } else if libc::WIFSIGNALED(status) {
        Some(WaitEvent::Killed {
            tid,
            signal: libc::WTERMSIG(status),
        })
    } else if libc::WIFSTOPPED(status) {
        let signal = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        if event != 0 {
            Some(WaitEvent::Event { tid, event, signal })
        } else {
            Some(WaitEvent::Signal { tid, signal })
        }
    } else {
        None
    }
}

/// Collects every event that is ready now, without blocking. `__WNOTHREAD` keeps us to
/// the tracees of this thread, which is the only thread that traces.
pub fn drain_events(out: &mut Vec<WaitEvent>) {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let tid = unsafe {
            libc::waitpid(
                -1,
                &mut status,
                libc::__WALL | libc::__WNOTHREAD | libc::WNOHANG,
            )
        };
        if tid <= 0 {
            return;
        }
        if let Some(event) = decode(tid, status) {
            out.push(event);
        }
    }
}

/// The event of one thread, if it has one ready. `waitpid(-1)` makes the kernel look at
/// every tracee on each call, one call per event: quadratic when thousands of threads
/// stop at once (4000 threads: ~16M looks, most of a 400 ms attach). A wait for one tid
/// looks at that thread alone (Linux 5.14 and later), for the price of a syscall.
pub fn wait_thread(tid: Pid) -> Option<WaitEvent> {
    let mut status = 0;
    // SAFETY: waitpid with a valid status pointer.
    let got = unsafe {
        libc::waitpid(
            tid,
            &mut status,
            libc::__WALL | libc::__WNOTHREAD | libc::WNOHANG,
        )
    };
    if got <= 0 {
        return None;
    }
    decode(got, status)
}

pub fn is_group_stop_signal(signal: i32) -> bool {
    matches!(
        signal,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

pub fn gettid() -> Pid {
    // SAFETY: gettid cannot fail.
    unsafe { libc::gettid() }
}

pub fn errno_of(err: &io::Error) -> i32 {
    err.raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_realtime_signal_stops_that_nix_rejects() {
        let sigrtmin = libc::SIGRTMIN();
        let status = (sigrtmin << 8) | 0x7f;
        assert_eq!(
            decode(5, status),
            Some(WaitEvent::Signal {
                tid: 5,
                signal: sigrtmin
            })
        );
    }

    #[test]
    fn decodes_event_stops_and_exits() {
        let status = (PTRACE_EVENT_STOP << 16) | (libc::SIGTRAP << 8) | 0x7f;
        assert_eq!(
            decode(9, status),
            Some(WaitEvent::Event {
                tid: 9,
                event: PTRACE_EVENT_STOP,
                signal: libc::SIGTRAP
            })
        );
        assert_eq!(
            decode(9, 3 << 8),
            Some(WaitEvent::Exited { tid: 9, code: 3 })
        );
        assert_eq!(
            decode(9, libc::SIGKILL),
            Some(WaitEvent::Killed {
                tid: 9,
                signal: libc::SIGKILL
            })
        );
    }
}
