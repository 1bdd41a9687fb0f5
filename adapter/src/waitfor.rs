//! Finding a process by name as it starts (DAP `waitFor`). See DESIGN.md section 5.
//! (Interface stub: the implementation lands separately.)

use std::time::Duration;

use crate::procfs::Pid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchMode {
    /// `comm`, or the basename of `exe`/`argv[0]` for names longer than 15 bytes.
    #[default]
    Name,
    /// A prefix of the full command line, arguments joined by single spaces.
    Cmdline,
}

#[derive(Debug, Clone)]
pub struct WaitSpec {
    pub pattern: String,
    pub mode: MatchMode,
    /// Also accept a process that was already running when the wait began.
    pub existing: bool,
    /// How often the `/proc` fallback polls.
    pub interval: Duration,
    /// `None`: until cancelled.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub pid: Pid,
    pub name: String,
    /// Other processes that matched in the same instant (not taken).
    pub others: Vec<Pid>,
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("no process matching '{pattern}' started within {ms} ms")]
    Timeout { pattern: String, ms: u128 },
    #[error("the wait was cancelled")]
    Cancelled,
    #[error("waiting failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Wakes a blocked [`Waiter::wait`] from another thread (an eventfd).
#[derive(Clone)]
pub struct Canceller {
    fd: std::sync::Arc<std::os::fd::OwnedFd>,
}

impl Canceller {
    pub fn new() -> std::io::Result<Canceller> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that we own.
        let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Canceller {
            fd: std::sync::Arc::new(owned),
        })
    }

    pub fn cancel(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe {
            libc::write(
                std::os::fd::AsRawFd::as_raw_fd(&*self.fd),
                (&one as *const u64).cast(),
                8,
            );
        }
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&*self.fd)
    }
}

pub struct Waiter {
    spec: WaitSpec,
}

impl Waiter {
    /// Starts watching: records the processes that exist now (they do not count unless
    /// `existing`), and opens the proc connector, falling back to scanning `/proc`.
    pub fn start(spec: WaitSpec) -> std::io::Result<Waiter> {
        Ok(Waiter { spec })
    }

    /// "proc connector" or "/proc scan every N ms": for the user-visible output line.
    pub fn method(&self) -> String {
        "unimplemented".into()
    }

    /// Blocks until a match, the timeout, or `cancel`.
    pub fn wait(&mut self, cancel: &Canceller) -> Result<Found, WaitError> {
        let _ = (cancel, &self.spec);
        Err(WaitError::Cancelled)
    }
}
