//! Finding a process by name as it starts (DAP `waitFor`). See DESIGN.md section 5.
//!
//! The caller attaches with ptrace as soon as [`Waiter::wait`] returns, hoping to stop
//! the target before its `main()` runs. So the whole design is about doing as little as
//! possible between the kernel reporting an `exec` and returning:
//!
//! - The preferred source is the kernel's process-event socket (netlink proc connector).
//!   It reports every `exec` within a fraction of a millisecond, and by then `comm`,
//!   `exe` and the command line already describe the new program, so one `stat` read
//!   usually decides. We subscribe to `PROC_EVENT_EXEC` only where the kernel can filter
//!   (6.6+), so a busy machine does not wake us for every fork and exit.
//! - Without it (no `CAP_NET_ADMIN`, not in the initial pid and user namespaces, a
//!   network namespace without the connector), we poll. Each poll first reads the most
//!   recently allocated pid from `/proc/loadavg` and lists `/proc` only when it moved,
//!   then reads only the pids that are new since the previous listing: reading every
//!   process's files on every poll costs 127 ms with 4,000 processes.
//!
//! What counts as a match: a program that *started* (was `exec`ed) after the wait began,
//! whose name or command line fits. A child that was forked and has not `exec`ed yet is
//! not a new program: it still carries its parent's name, and matching it would attach
//! to, say, the `bash` that is about to become `ls`. Such children are watched and
//! checked again once they `exec`. Both sources follow that rule, so they find the same
//! processes (the connector just finds them sooner).
//!
//! A process that was running when the wait began never counts without `existing`, even
//! if it later `exec`s a matching program: the fallback could only notice that by
//! re-reading every process on every poll. Its pid is recognised as reused (and so new)
//! when its start time is later than the moment the wait began.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

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
    /// The name that matched: `comm`, or the basename of `exe` or `argv[0]` when only
    /// that fits (long names). In [`MatchMode::Cmdline`], `comm`.
    pub name: String,
    /// Other processes that matched in the same instant (not taken).
    pub others: Vec<Pid>,
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Worded for an editor's user, who sets attach arguments; the terminal's `latch
    /// attach --waitfor` words it with its flags ([`timeout_message`] with [`Wording::Cli`]).
    #[error("{}", timeout_message(.pattern, *.ms, Wording::Dap))]
    Timeout { pattern: String, ms: u128 },
    #[error("the wait was cancelled")]
    Cancelled,
    #[error("waiting failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Who reads a message about the wait, and so how its options are spelled: an editor's
/// user writes `"waitForMatch": "cmdline"` in launch.json, a terminal's types
/// `--waitfor-cmdline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    Dap,
    Cli,
}

/// The user reads this when nothing showed up, so it says what was compared with what:
/// most misses are a name longer than `comm`'s 15 bytes spelled differently from the
/// executable, or a process that was already running.
pub fn timeout_message(pattern: &str, ms: u128, wording: Wording) -> String {
    let within = if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    };
    let (by_cmdline, existing) = match wording {
        Wording::Dap => (
            "set \"waitForMatch\": \"cmdline\"",
            "with \"waitForExisting\": true",
        ),
        Wording::Cli => ("add --waitfor-cmdline", "with --waitfor-existing"),
    };
    format!(
        "no process matching '{pattern}' started within {within}. The name is compared with \
         the start of the process name, which the kernel cuts to 15 characters (see \
         `ps -e -o comm`), and with the start of the executable's file name; {by_cmdline} to \
         compare with the start of the command line instead. Processes already running when \
         the wait began count only {existing}."
    )
}

/// Wakes a blocked [`Waiter::wait`] from another thread (an eventfd).
///
/// Cancelling is sticky: `wait` only polls the eventfd and never reads it, so once
/// cancelled, every later `wait` with the same `Canceller` returns
/// [`WaitError::Cancelled`] at once. Use a new `Canceller` for a new wait.
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

/// The shortest poll interval we honour: below this the fallback is a busy loop.
const MIN_INTERVAL: Duration = Duration::from_micros(100);
/// `comm` holds at most this many bytes (TASK_COMM_LEN - 1).
const COMM_LEN: usize = 15;

pub struct Waiter {
    spec: WaitSpec,
    me: Pid,
    /// Pids that existed when the wait began (sorted; empty with `existing`).
    baseline: Vec<Pid>,
    /// Clock ticks since boot, read after listing `baseline`: a baseline pid whose start
    /// time is later was reused by a new process.
    start_tick: u64,
    deadline: Option<Instant>,
    /// `existing` asks for one look at everything running; done on the first `wait`.
    existing_pending: bool,
    source: Source,
    fallback_reason: Option<String>,
    /// Orders candidates seen in the same instant.
    seen: u64,
}

enum Source {
    Events(Connector),
    Scan(Scanner),
}

/// How much we already know about a pid when we examine it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Origin {
    /// It just `exec`ed (an event, or its exec mark changed): its name is its program's.
    Exec,
    /// New in a `/proc` listing: it may sit between fork and exec, still wearing its
    /// parent's name.
    New,
    /// Running when `existing` asked us to look: take it as it is.
    Existing,
}

#[derive(Debug)]
enum Examined {
    Match(Candidate),
    /// Not (yet) a match; worth watching for an exec.
    Miss {
        starttime: u64,
        mark: ExecMark,
    },
    /// Gone, or never interesting (latch, zombies, kernel threads, pre-existing).
    Ignore,
}

#[derive(Debug, Clone)]
struct Candidate {
    pid: Pid,
    name: String,
    starttime: u64,
    order: u64,
}

impl Waiter {
    /// Starts watching: records the processes that exist now (they do not count unless
    /// `existing`), and opens the proc connector, falling back to scanning `/proc`.
    pub fn start(spec: WaitSpec) -> std::io::Result<Waiter> {
        Self::start_with(spec, true)
    }

    /// Like [`Waiter::start`], but never uses the proc connector: always scans `/proc`.
    /// For tests, and for an escape hatch should the connector misbehave somewhere.
    pub fn start_scanning(spec: WaitSpec) -> std::io::Result<Waiter> {
        Self::start_with(spec, false)
    }

    fn start_with(mut spec: WaitSpec, connector: bool) -> io::Result<Waiter> {
        if spec.pattern.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "waitFor needs a non-empty name",
            ));
        }
        spec.interval = spec.interval.max(MIN_INTERVAL);
        let began = Instant::now();
        // Subscribe before listing: a process forked after the listing then always has
        // its exec reported, and one forked before it is in the baseline.
        let (events, fallback_reason) = if connector {
            match Connector::open() {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(e.to_string())),
            }
        } else {
            (None, Some("the /proc scan was requested".to_string()))
        };
        let last_pid = last_pid();
        let mut listing = Vec::new();
        list_pids(&mut listing)?;
        let start_tick = boot_ticks_now();
        let source = match events {
            Some(c) => Source::Events(c),
            None => Source::Scan(Scanner {
                interval: spec.interval,
                last_pid,
                known: listing.clone(),
                next_scan: began,
                watch: Vec::new(),
                fresh: Vec::new(),
                scratch: Vec::new(),
            }),
        };
        let baseline = if spec.existing { Vec::new() } else { listing };
        Ok(Waiter {
            existing_pending: spec.existing,
            deadline: spec.timeout.map(|t| began + t),
            me: std::process::id() as Pid,
            baseline,
            start_tick,
            source,
            fallback_reason,
            seen: 0,
            spec,
        })
    }

    /// "proc connector" or "/proc scan every N ms": for the user-visible output line.
    pub fn method(&self) -> String {
        match &self.source {
            Source::Events(_) => "listening to the kernel's process events (proc connector)".into(),
            Source::Scan(s) => format!("scanning /proc every {}", human_interval(s.interval)),
        }
    }

    /// Why the proc connector is not used, for logs; `None` when it is.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// Blocks until a match, the timeout, or `cancel`.
    ///
    /// The timeout counts from [`Waiter::start`]. Calling `wait` again after a match
    /// looks for the next one.
    pub fn wait(&mut self, cancel: &Canceller) -> Result<Found, WaitError> {
        if poll_fds(&mut [], cancel.raw_fd(), Some(Duration::ZERO))?.cancelled {
            return Err(WaitError::Cancelled);
        }
        if std::mem::take(&mut self.existing_pending) {
            let mut pids = Vec::new();
            list_pids(&mut pids)?;
            let mut found = Vec::new();
            for pid in pids {
                if let Examined::Match(c) = self.examine(pid, Origin::Existing) {
                    found.push(c);
                }
            }
            if let Some(f) = pick(found) {
                return Ok(f);
            }
        }
        loop {
            let now = Instant::now();
            let found = match &mut self.source {
                Source::Events(_) => self.events_wait(cancel, now)?,
                Source::Scan(_) => self.scan_wait(cancel, now)?,
            };
            if let Some(f) = pick(found) {
                return Ok(f);
            }
        }
    }

    /// One round with the connector: sleep until events, cancel or the deadline, then
    /// examine every queued exec. Returns the matches (maybe none).
    fn events_wait(
        &mut self,
        cancel: &Canceller,
        now: Instant,
    ) -> Result<Vec<Candidate>, WaitError> {
        let timeout = self.remaining(now)?;
        let Source::Events(conn) = &mut self.source else {
            unreachable!()
        };
        let mut execs = std::mem::take(&mut conn.pending);
        let mut overflow = false;
        if execs.is_empty() {
            let ready = poll_fds(&mut [conn.fd.as_raw_fd()], cancel.raw_fd(), timeout)?;
            if ready.cancelled {
                return Err(WaitError::Cancelled);
            }
            if !ready.any {
                self.remaining(Instant::now())?;
                return Ok(Vec::new());
            }
            overflow = conn.drain(&mut execs, usize::MAX)?;
        }
        let mut found = Vec::new();
        let mut i = 0;
        while i < execs.len() {
            let pid = execs[i];
            i += 1;
            if found.iter().any(|c: &Candidate| c.pid == pid) {
                continue;
            }
            if let Examined::Match(c) = self.examine(pid, Origin::Exec) {
                found.push(c);
            }
            if i == execs.len() && !found.is_empty() {
                // Whatever else is already queued happened "in the same instant"; look
                // at a bounded amount of it so the attach is not delayed.
                let Source::Events(conn) = &mut self.source else {
                    unreachable!()
                };
                if execs.len() < 64 {
                    overflow |= conn.drain(&mut execs, 64)?;
                }
            }
        }
        if overflow && found.is_empty() {
            // The socket overflowed and execs were lost: look at every process that is
            // new since the wait began, once.
            let mut pids = Vec::new();
            list_pids(&mut pids)?;
            for pid in pids {
                if self.baseline.binary_search(&pid).is_err() {
                    if let Examined::Match(c) = self.examine(pid, Origin::New) {
                        found.push(c);
                    }
                }
            }
        }
        Ok(found)
    }

    /// One round of the `/proc` fallback: scan when due, else sleep until the next scan.
    fn scan_wait(&mut self, cancel: &Canceller, now: Instant) -> Result<Vec<Candidate>, WaitError> {
        let rest = self.remaining(now)?;
        let Source::Scan(scan) = &mut self.source else {
            unreachable!()
        };
        if now >= scan.next_scan {
            scan.next_scan = now + scan.interval;
            let found = self.scan_once(now)?;
            if !found.is_empty() {
                return Ok(found);
            }
        }
        let Source::Scan(scan) = &self.source else {
            unreachable!()
        };
        let mut timeout = scan.next_scan.saturating_duration_since(Instant::now());
        if let Some(rest) = rest {
            timeout = timeout.min(rest);
        }
        // Even when scans take longer than the interval, the canceller gets a look.
        if poll_fds(&mut [], cancel.raw_fd(), Some(timeout))?.cancelled {
            return Err(WaitError::Cancelled);
        }
        Ok(Vec::new())
    }

    fn scan_once(&mut self, now: Instant) -> io::Result<Vec<Candidate>> {
        let Source::Scan(scan) = &mut self.source else {
            unreachable!()
        };
        let mut fresh = std::mem::take(&mut scan.fresh);
        fresh.clear();
        scan.new_pids(&mut fresh)?;
        let mut due = Vec::new();
        scan.due_watched(now, &mut due);
        let mut found = Vec::new();
        let mut watch_new = Vec::new();
        for &pid in &fresh {
            match self.examine(pid, Origin::New) {
                Examined::Match(c) => found.push(c),
                Examined::Miss { starttime, mark } => watch_new.push(Watched {
                    pid,
                    starttime,
                    mark,
                    first_seen: now,
                    next_check: now,
                }),
                Examined::Ignore => {}
            }
        }
        for (idx, pid, starttime, mark) in due {
            // Cheap re-check: only the stat line, and a full look only once it changed.
            let outcome = match read_stat(pid) {
                Some(st) if st.starttime == starttime && st.state != b'Z' && st.state != b'X' => {
                    if st.mark == mark {
                        Recheck::Same
                    } else {
                        match self.examine(pid, Origin::Exec) {
                            Examined::Match(c) => {
                                found.push(c);
                                Recheck::Drop
                            }
                            Examined::Miss { mark, .. } => Recheck::Changed(mark),
                            Examined::Ignore => Recheck::Drop,
                        }
                    }
                }
                _ => Recheck::Drop,
            };
            let Source::Scan(scan) = &mut self.source else {
                unreachable!()
            };
            scan.after_check(idx, now, outcome);
        }
        let Source::Scan(scan) = &mut self.source else {
            unreachable!()
        };
        scan.watch.retain(|w| w.pid != 0);
        scan.watch.extend(watch_new);
        scan.trim_watch();
        scan.fresh = fresh;
        Ok(found)
    }

    /// Time left before the deadline (`None`: no deadline); the timeout error once spent.
    fn remaining(&self, now: Instant) -> Result<Option<Duration>, WaitError> {
        match self.deadline {
            None => Ok(None),
            Some(d) if now >= d => Err(WaitError::Timeout {
                pattern: self.spec.pattern.clone(),
                ms: self.spec.timeout.unwrap_or_default().as_millis(),
            }),
            Some(d) => Ok(Some(d - now)),
        }
    }

    /// Decides about one pid, reading as little as possible: the stat line always, the
    /// executable and command line only when the name alone cannot decide, the parent's
    /// stat and our own status only for a would-be match.
    fn examine(&mut self, pid: Pid, origin: Origin) -> Examined {
        if pid == self.me {
            return Examined::Ignore;
        }
        let Some(st) = read_stat(pid) else {
            return Examined::Ignore;
        };
        if matches!(st.state, b'Z' | b'X') || st.flags & PF_KTHREAD != 0 {
            return Examined::Ignore;
        }
        if origin != Origin::Existing
            && st.starttime <= self.start_tick
            && self.baseline.binary_search(&pid).is_ok()
        {
            // Running when the wait began (and not a reuse of its pid).
            return Examined::Ignore;
        }
        let miss = Examined::Miss {
            starttime: st.starttime,
            mark: st.mark.clone(),
        };
        let name = match self.spec.mode {
            MatchMode::Name => match name_matches(&self.spec.pattern, &st.mark.comm) {
                NameVerdict::Yes => Some(lossy(&st.mark.comm)),
                NameVerdict::No => None,
                NameVerdict::Maybe => long_name_match(pid, &self.spec.pattern),
            },
            MatchMode::Cmdline => match read_cmdline(pid) {
                Some(line) if line.starts_with(self.spec.pattern.as_bytes()) => {
                    Some(lossy(&st.mark.comm))
                }
                _ => None,
            },
        };
        let Some(name) = name else { return miss };
        if origin == Origin::New && !has_execed(&st) {
            return miss;
        }
        if tracer_pid(pid) != Some(0) {
            return miss;
        }
        self.seen += 1;
        Examined::Match(Candidate {
            pid,
            name,
            starttime: st.starttime,
            order: self.seen,
        })
    }
}

/// The first match (earliest start, then first seen) is taken; the rest are reported.
fn pick(mut found: Vec<Candidate>) -> Option<Found> {
    found.sort_by_key(|c| (c.starttime, c.order));
    let mut it = found.into_iter();
    let first = it.next()?;
    let mut others: Vec<Pid> = Vec::new();
    for c in it {
        if c.pid != first.pid && !others.contains(&c.pid) {
            others.push(c.pid);
        }
    }
    Some(Found {
        pid: first.pid,
        name: first.name,
        others,
    })
}

fn human_interval(d: Duration) -> String {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} µs", d.as_micros())
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------
// Name matching

#[derive(Debug, PartialEq, Eq)]
enum NameVerdict {
    Yes,
    No,
    /// `comm` cannot decide: look at the executable and `argv[0]`.
    Maybe,
}

/// Byte-wise, because the kernel cuts `comm` at 15 bytes even inside a UTF-8 character.
/// `Maybe` when the pattern is longer than `comm` can be, or when `comm` is a prefix of
/// it (a symlink `vi` to `vim.basic`, a renamed thread): only then are the executable
/// and `argv[0]` worth reading, which keeps the common miss to one `stat` read.
fn name_matches(pattern: &str, comm: &[u8]) -> NameVerdict {
    let pattern = pattern.as_bytes();
    if pattern.len() <= COMM_LEN && comm.starts_with(pattern) {
        return NameVerdict::Yes;
    }
    let head = &pattern[..pattern.len().min(COMM_LEN)];
    if pattern.len() > COMM_LEN || head.starts_with(comm) {
        NameVerdict::Maybe
    } else {
        NameVerdict::No
    }
}

/// The basename of `exe` or else of `argv[0]`, when it starts with the pattern.
fn long_name_match(pid: Pid, pattern: &str) -> Option<String> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    if let Some(base) = exe.as_deref().and_then(|p| p.file_name()) {
        if base.as_bytes().starts_with(pattern.as_bytes()) {
            return Some(base.to_string_lossy().into_owned());
        }
    }
    let mut buf = [0u8; 4096];
    let n = read_into(&format!("/proc/{pid}/cmdline"), &mut buf)?;
    let argv0 = buf[..n].split(|b| *b == 0).next()?;
    let base = argv0.rsplit(|b| *b == b'/').next()?;
    base.starts_with(pattern.as_bytes()).then(|| lossy(base))
}

/// The command line with every NUL turned into a space, as Delve compares it.
fn read_cmdline(pid: Pid) -> Option<Vec<u8>> {
    let mut raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    for b in &mut raw {
        if *b == 0 {
            *b = b' ';
        }
    }
    Some(raw)
}

// ---------------------------------------------------------------------------------------
// /proc reading, raw and allocation-light (procfs.rs reads to `String`, which fails on a
// `comm` the kernel cut in the middle of a UTF-8 character, and skips the fields we need)

const PF_KTHREAD: u64 = 0x0020_0000;

/// What changes when a process `exec`s: its name (normally) and, with ASLR, where its
/// code and stack sit. A forked child that has not exec'd yet has its parent's values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExecMark {
    comm: Vec<u8>,
    startcode: u64,
    startstack: u64,
}

#[derive(Debug)]
struct RawStat {
    state: u8,
    ppid: Pid,
    flags: u64,
    starttime: u64,
    mark: ExecMark,
}

fn parse_raw_stat(line: &[u8]) -> Option<RawStat> {
    let open = line.iter().position(|b| *b == b'(')?;
    let close = line.iter().rposition(|b| *b == b')')?;
    let comm = line.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    // fields[0] is field 3 (state); field N is fields[N - 3].
    let fields: Vec<&str> = rest.split_ascii_whitespace().take(26).collect();
    let num = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(RawStat {
        state: *fields.first()?.as_bytes().first()?,
        ppid: fields.get(1)?.parse().ok()?,
        flags: num(9)?,
        starttime: num(22)?,
        mark: ExecMark {
            comm,
            startcode: num(26).unwrap_or(0),
            startstack: num(28).unwrap_or(0),
        },
    })
}

fn read_stat(pid: Pid) -> Option<RawStat> {
    let mut buf = [0u8; 2048];
    let n = read_into(&format!("/proc/{pid}/stat"), &mut buf)?;
    parse_raw_stat(&buf[..n])
}

/// Reads as much of a small file as fits in `buf`.
fn read_into(path: &str, buf: &mut [u8]) -> Option<usize> {
    let mut f = File::open(path).ok()?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(n)
}

/// True unless `st` looks exactly like its parent: then it is a fork that has not
/// `exec`ed yet. When the addresses are hidden from us (zeros), we cannot tell, and
/// assume it did.
fn has_execed(st: &RawStat) -> bool {
    if st.mark.startcode == 0 && st.mark.startstack == 0 {
        return true;
    }
    match read_stat(st.ppid) {
        Some(parent) => parent.mark != st.mark,
        None => true,
    }
}

fn tracer_pid(pid: Pid) -> Option<Pid> {
    let mut buf = [0u8; 4096];
    let n = read_into(&format!("/proc/{pid}/status"), &mut buf)?;
    let text = &buf[..n];
    let at = text.windows(10).position(|w| w == b"TracerPid:")?;
    let rest = &text[at + 10..];
    let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.trim().parse().ok()
}

/// The pid most recently allocated in our pid namespace (last field of `/proc/loadavg`).
/// If it has not moved, no process (or thread) was created, and listing `/proc` can wait.
fn last_pid() -> Option<Pid> {
    let mut buf = [0u8; 128];
    let n = read_into("/proc/loadavg", &mut buf)?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split_ascii_whitespace()
        .last()?
        .parse()
        .ok()
}

/// Clock ticks since boot, the unit of `starttime` in `/proc/PID/stat`.
fn boot_ticks_now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ts.tv_sec as u64 * hz + ts.tv_nsec as u64 / (1_000_000_000 / hz)
}

/// Every process in `/proc`, sorted. Uses getdents64 with a large buffer: a poll may
/// list 4,000 entries, and `read_dir` allocates for each.
fn list_pids(out: &mut Vec<Pid>) -> io::Result<()> {
    out.clear();
    // SAFETY: a valid NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            c"/proc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that we own.
    let dir = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut buf = vec![0u64; 8192]; // 64 KiB, 8-aligned for the dirent records
    loop {
        // SAFETY: getdents64 writes at most the buffer's length into it.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len() * 8,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            break;
        }
        // SAFETY: the kernel filled n bytes of the buffer.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
        let mut off = 0;
        while off + 19 < bytes.len() {
            let reclen = u16::from_ne_bytes([bytes[off + 16], bytes[off + 17]]) as usize;
            if reclen == 0 {
                break;
            }
            let name = &bytes[off + 19..(off + reclen).min(bytes.len())];
            let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
            if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
                if let Ok(pid) = std::str::from_utf8(name).unwrap_or("").parse() {
                    out.push(pid);
                }
            }
            off += reclen;
        }
    }
    out.sort_unstable();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Waiting on descriptors

struct Ready {
    cancelled: bool,
    any: bool,
}

/// ppoll on `fds` and the canceller, with a sub-millisecond timeout (`None`: forever).
fn poll_fds(fds: &mut [RawFd], cancel: RawFd, timeout: Option<Duration>) -> io::Result<Ready> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .chain(std::iter::once(&cancel))
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    loop {
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: pfds and tsp are valid for the call; no signal mask change.
        let n = unsafe {
            libc::ppoll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                tsp,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let (cancel_pfd, rest) = pfds.split_last().expect("cancel fd");
        return Ok(Ready {
            cancelled: cancel_pfd.revents != 0,
            any: rest.iter().any(|p| p.revents != 0),
        });
    }
}

// ---------------------------------------------------------------------------------------
// The proc connector

const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;
const PROC_EVENT_NONE: u32 = 0;
const PROC_EVENT_EXEC: u32 = 2;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const PROC_CN_MCAST_IGNORE: u32 = 2;
/// How long to wait for the kernel's reply to a subscription. It normally arrives
/// before `sendto` returns; no reply at all means we are outside the initial pid or
/// user namespace, where the kernel silently ignores the request.
const ACK_WAIT: Duration = Duration::from_millis(25);

struct Connector {
    fd: OwnedFd,
    /// Execs received while subscribing; examined first.
    pending: Vec<Pid>,
    buf: Vec<u64>,
}

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Exec { tgid: Pid },
    Ack { ack: u32, err: u32 },
    Other,
}

impl Connector {
    fn open() -> io::Result<Connector> {
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("proc connector: {what}: {e}"))
        };
        // SAFETY: plain socket creation; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_CONNECTOR,
            )
        };
        if fd < 0 {
            return Err(ctx("socket", io::Error::last_os_error()));
        }
        // SAFETY: fd is a fresh descriptor that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // A burst of execs must not overflow the queue while we are busy: ask for 4 MiB
        // (FORCE works as root, beyond rmem_max), else whatever we may have.
        let size: libc::c_int = 4 << 20;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: passes a valid c_int of the right length.
            let r = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if r == 0 {
                break;
            }
        }
        // SAFETY: sockaddr_nl is plain data; zeroes are a valid start.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = libc::CN_IDX_PROC;
        // SAFETY: addr is a valid sockaddr_nl of the given length.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(ctx("bind", io::Error::last_os_error()));
        }
        let mut conn = Connector {
            fd,
            pending: Vec::new(),
            buf: vec![0u64; 1024],
        };
        // The classic request first: every kernel answers it, with an errno, so we learn
        // whether we may listen. The kernel rewrites `seq` in its answer but returns our
        // `ack` plus one, so a nonce there tells our answer from another listener's.
        let nonce = std::process::id().rotate_left(16) ^ boot_ticks_now() as u32;
        let Some(err) = conn.subscribe(&PROC_CN_MCAST_LISTEN.to_ne_bytes(), nonce)? else {
            return Err(io::Error::other(
                "proc connector: the kernel did not answer (not in the initial pid and user namespaces?)",
            ));
        };
        if err != 0 {
            return Err(ctx("subscribe", io::Error::from_raw_os_error(err as i32)));
        }
        // Then narrow to execs. Kernels 6.6+ filter per socket (no answer comes: the
        // answer itself is not an exec); older ones ignore this longer request and keep
        // sending everything, which costs wakeups but changes no result.
        let filtered = [
            PROC_CN_MCAST_LISTEN.to_ne_bytes(),
            PROC_EVENT_EXEC.to_ne_bytes(),
        ]
        .concat();
        conn.send(&filtered, 0)?;
        Ok(conn)
    }

    fn send(&self, payload: &[u8], ack: u32) -> io::Result<()> {
        let total = NLMSG_HDRLEN + CN_MSG_LEN + payload.len();
        let mut msg = Vec::with_capacity(total);
        msg.extend_from_slice(&(total as u32).to_ne_bytes());
        msg.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&std::process::id().to_ne_bytes());
        msg.extend_from_slice(&libc::CN_IDX_PROC.to_ne_bytes());
        msg.extend_from_slice(&libc::CN_VAL_PROC.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&ack.to_ne_bytes());
        msg.extend_from_slice(&(payload.len() as u16).to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(payload);
        // SAFETY: sockaddr_nl is plain data; all zeroes addresses the kernel.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: msg and kernel are valid for the given lengths.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends a subscription and waits for the kernel's answer: `Some(errno)`, or `None`
    /// when none came. Execs that arrive meanwhile are kept in `pending`.
    fn subscribe(&mut self, payload: &[u8], nonce: u32) -> io::Result<Option<u32>> {
        self.send(payload, nonce)?;
        let until = Instant::now() + ACK_WAIT;
        loop {
            let mut events = Vec::new();
            match self.recv(&mut events) {
                Ok(true) => {}
                Ok(false) => {
                    let now = Instant::now();
                    if now >= until {
                        return Ok(None);
                    }
                    let mut fds = [self.fd.as_raw_fd()];
                    // Poll the socket only; the "cancel" slot gets a descriptor that is
                    // never readable in this direction (-1 is ignored by poll).
                    poll_fds(&mut fds, -1, Some(until - now))?;
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(e) => return Err(e),
            }
            for ev in events {
                match ev {
                    Event::Exec { tgid } => self.pending.push(tgid),
                    Event::Ack { ack, err } if ack == nonce.wrapping_add(1) => {
                        return Ok(Some(err))
                    }
                    _ => {}
                }
            }
        }
    }

    /// Receives one datagram without blocking: `Ok(false)` when the queue is empty.
    /// Only messages from the kernel (port 0) are believed.
    fn recv(&mut self, out: &mut Vec<Event>) -> io::Result<bool> {
        loop {
            // SAFETY: sockaddr_nl is plain data.
            let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: the buffer and address are valid for the given lengths.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len() * 8,
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_nl).cast(),
                    &mut from_len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return Ok(false),
                    _ => return Err(e),
                }
            }
            if from.nl_pid == 0 {
                // SAFETY: the kernel filled n bytes of the buffer.
                let bytes = unsafe {
                    std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), n as usize)
                };
                parse_datagram(bytes, out);
            }
            return Ok(true);
        }
    }

    /// Reads up to `max` datagrams that are already queued, appending exec'd pids.
    /// Returns whether the socket overflowed (execs were lost).
    fn drain(&mut self, execs: &mut Vec<Pid>, max: usize) -> io::Result<bool> {
        let mut overflow = false;
        let mut events = Vec::new();
        for _ in 0..max {
            events.clear();
            match self.recv(&mut events) {
                Ok(true) => execs.extend(events.iter().filter_map(|e| match e {
                    Event::Exec { tgid } => Some(*tgid),
                    _ => None,
                })),
                Ok(false) => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => overflow = true,
                Err(e) => return Err(e),
            }
        }
        Ok(overflow)
    }
}

impl Drop for Connector {
    /// Before 6.6 the kernel counts listeners only by these requests and keeps
    /// generating events for a count that never drops otherwise.
    fn drop(&mut self) {
        let _ = self.send(&PROC_CN_MCAST_IGNORE.to_ne_bytes(), 0);
    }
}

/// Splits a datagram into netlink messages, each a `cn_msg` carrying a `proc_event`:
/// what (u32), cpu (u32), timestamp (u64), then the event's data.
fn parse_datagram(bytes: &[u8], out: &mut Vec<Event>) {
    let u32_at = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|s| u32::from_ne_bytes(s.try_into().unwrap()))
    };
    let mut off = 0;
    while off + NLMSG_HDRLEN <= bytes.len() {
        let Some(len) = u32_at(bytes, off).map(|l| l as usize) else {
            break;
        };
        if len < NLMSG_HDRLEN || off + len > bytes.len() {
            break;
        }
        let msg = &bytes[off + NLMSG_HDRLEN..off + len];
        out.push(parse_cn_msg(msg).unwrap_or(Event::Other));
        off += (len + 3) & !3;
    }
}

fn parse_cn_msg(msg: &[u8]) -> Option<Event> {
    let u32_at = |at: usize| {
        msg.get(at..at + 4)
            .map(|s| u32::from_ne_bytes(s.try_into().unwrap()))
    };
    if u32_at(0)? != libc::CN_IDX_PROC || u32_at(4)? != libc::CN_VAL_PROC {
        return Some(Event::Other);
    }
    let ack = u32_at(12)?;
    let ev = CN_MSG_LEN;
    Some(match u32_at(ev)? {
        PROC_EVENT_EXEC => Event::Exec {
            tgid: u32_at(ev + 20)? as Pid,
        },
        PROC_EVENT_NONE => Event::Ack {
            ack,
            err: u32_at(ev + 16)?,
        },
        _ => Event::Other,
    })
}

// ---------------------------------------------------------------------------------------
// The /proc fallback

struct Scanner {
    interval: Duration,
    last_pid: Option<Pid>,
    /// Pids in the previous listing, sorted.
    known: Vec<Pid>,
    next_scan: Instant,
    /// New processes that did not match (yet): they may still `exec`.
    watch: Vec<Watched>,
    fresh: Vec<Pid>,
    scratch: Vec<Pid>,
}

struct Watched {
    pid: Pid,
    starttime: u64,
    mark: ExecMark,
    first_seen: Instant,
    next_check: Instant,
}

enum Recheck {
    Same,
    Changed(ExecMark),
    Drop,
}

/// Most execs follow their fork within milliseconds, but a wrapper script may take
/// seconds first. So young entries are checked on every poll and older ones less often
/// (age / 16, at most every 100 ms), and the list is capped, dropping the oldest: the
/// cost stays bounded on a machine that starts many long-lived processes.
const WATCH_MAX: usize = 256;
const WATCH_SLOWEST: Duration = Duration::from_millis(100);

impl Scanner {
    /// Appends the pids that appeared since the previous listing.
    fn new_pids(&mut self, fresh: &mut Vec<Pid>) -> io::Result<()> {
        let last = last_pid();
        if last.is_some() && last == self.last_pid {
            return Ok(());
        }
        self.last_pid = last;
        let mut cur = std::mem::take(&mut self.scratch);
        list_pids(&mut cur)?;
        let (mut i, mut j) = (0, 0);
        while i < cur.len() {
            if j < self.known.len() && self.known[j] < cur[i] {
                j += 1;
            } else if j < self.known.len() && self.known[j] == cur[i] {
                i += 1;
                j += 1;
            } else {
                fresh.push(cur[i]);
                i += 1;
            }
        }
        self.scratch = std::mem::replace(&mut self.known, cur);
        Ok(())
    }

    /// The watched entries due for a look: (index, pid, starttime, mark).
    fn due_watched(&self, now: Instant, due: &mut Vec<(usize, Pid, u64, ExecMark)>) {
        for (idx, w) in self.watch.iter().enumerate() {
            if w.next_check <= now {
                due.push((idx, w.pid, w.starttime, w.mark.clone()));
            }
        }
    }

    fn after_check(&mut self, idx: usize, now: Instant, outcome: Recheck) {
        let interval = self.interval;
        let w = &mut self.watch[idx];
        match outcome {
            Recheck::Drop => w.pid = 0,
            Recheck::Same | Recheck::Changed(_) => {
                if let Recheck::Changed(mark) = outcome {
                    w.mark = mark;
                }
                let age = now.saturating_duration_since(w.first_seen);
                w.next_check = now + (age / 16).clamp(interval, WATCH_SLOWEST.max(interval));
            }
        }
    }

    fn trim_watch(&mut self) {
        if self.watch.len() > WATCH_MAX {
            let excess = self.watch.len() - WATCH_MAX;
            self.watch.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A private directory with a copy of `/bin/sleep` (or another program) under a
    /// distinctive name; removed, with its processes killed, on drop.
    struct Lab {
        dir: PathBuf,
        children: Vec<Child>,
    }

    static LAB_NO: AtomicU32 = AtomicU32::new(0);

    impl Lab {
        fn new() -> Lab {
            let n = LAB_NO.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("latch-waitfor-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Lab {
                dir,
                children: Vec::new(),
            }
        }

        fn program(&self, name: &str, from: &str) -> PathBuf {
            let path = self.dir.join(name);
            std::fs::copy(from, &path).unwrap();
            path
        }

        fn spawn(&mut self, cmd: &mut Command) -> Pid {
            let child = cmd
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let pid = child.id() as Pid;
            self.children.push(child);
            pid
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A name unique to this test and this test process, at most 15 bytes.
    fn unique(tag: &str) -> String {
        let name = format!("wf{tag}{}", std::process::id());
        assert!(name.len() <= COMM_LEN, "{name}");
        name
    }

    fn spec(pattern: &str) -> WaitSpec {
        WaitSpec {
            pattern: pattern.to_string(),
            mode: MatchMode::Name,
            existing: false,
            interval: Duration::from_millis(1),
            timeout: Some(Duration::from_secs(10)),
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Via {
        Connector,
        Scan,
    }

    /// Starts a waiter of the given kind; `None` when the connector is unavailable here
    /// (not root, a container) and LATCH_ALLOW_SKIP lets the connector half of a test
    /// be skipped; otherwise that fails.
    fn start(spec: WaitSpec, via: Via) -> Option<Waiter> {
        match via {
            Via::Scan => {
                let w = Waiter::start_scanning(spec).unwrap();
                assert!(w.method().starts_with("scanning /proc"), "{}", w.method());
                Some(w)
            }
            Via::Connector => {
                let w = Waiter::start(spec).unwrap();
                if let Some(why) = w.fallback_reason() {
                    // A silent skip once hid a broken subscription: where the connector
                    // must work (root in the initial namespaces), its absence fails.
                    assert!(
                        !connector_expected(),
                        "the proc connector should work here: {why}"
                    );
                    crate::test_skip::skip_or_fail(&format!(
                        "the proc connector is unavailable here (run as root): {why}"
                    ));
                    return None;
                }
                assert!(w.method().contains("proc connector"));
                Some(w)
            }
        }
    }

    fn connector_expected() -> bool {
        // SAFETY: geteuid has no failure modes.
        let root = unsafe { libc::geteuid() } == 0;
        let init_userns = std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]);
        let init_pidns = crate::procfs::stat(2).is_ok_and(|s| s.comm == "kthreadd");
        root && init_userns && init_pidns
    }

    const BOTH: [Via; 2] = [Via::Connector, Via::Scan];

    #[test]
    fn finds_a_process_started_after_start() {
        for via in BOTH {
            let mut lab = Lab::new();
            let name = unique(&format!("n{}", via as u8));
            let prog = lab.program(&name, "/bin/sleep");
            let Some(mut w) = start(spec(&name), via) else {
                continue;
            };
            let pid = lab.spawn(Command::new(&prog).arg("30"));
            let found = w.wait(&Canceller::new().unwrap()).unwrap();
            assert_eq!(
                found,
                Found {
                    pid,
                    name: name.clone(),
                    others: vec![]
                },
                "{via:?}"
            );
        }
    }

    #[test]
    fn finds_the_exec_after_a_fork() {
        for via in BOTH {
            let mut lab = Lab::new();
            let name = unique(&format!("x{}", via as u8));
            lab.program(&name, "/bin/sleep");
            let Some(mut w) = start(spec(&name), via) else {
                continue;
            };
            let pid = lab.spawn(
                Command::new("/bin/sh")
                    .arg("-c")
                    .arg(format!("sleep 0.1; exec ./{name} 30")),
            );
            let found = w.wait(&Canceller::new().unwrap()).unwrap();
            assert_eq!(
                (found.pid, found.name.as_str()),
                (pid, name.as_str()),
                "{via:?}"
            );
        }
    }

    #[test]
    fn a_name_longer_than_comm() {
        for via in BOTH {
            let mut lab = Lab::new();
            let name = format!(
                "wf-long-executable-name-{}-{}",
                via as u8,
                std::process::id()
            );
            let decoy = format!(
                "wf-long-executable-nope-{}-{}",
                via as u8,
                std::process::id()
            );
            let prog = lab.program(&name, "/bin/sleep");
            let decoy = lab.program(&decoy, "/bin/sleep");
            let Some(mut w) = start(spec(&name), via) else {
                continue;
            };
            lab.spawn(Command::new(&decoy).arg("30"));
            let pid = lab.spawn(Command::new(&prog).arg("30"));
            let found = w.wait(&Canceller::new().unwrap()).unwrap();
            assert_eq!(
                found,
                Found {
                    pid,
                    name: name.clone(),
                    others: vec![]
                },
                "{via:?}"
            );
        }
    }

    #[test]
    fn times_out_with_a_helpful_message() {
        for via in BOTH {
            let name = unique(&format!("t{}", via as u8));
            let mut s = spec(&name);
            s.timeout = Some(Duration::from_millis(200));
            let began = Instant::now();
            let Some(mut w) = start(s, via) else { continue };
            let err = w.wait(&Canceller::new().unwrap()).unwrap_err();
            assert!(began.elapsed() >= Duration::from_millis(200));
            assert!(began.elapsed() < Duration::from_secs(5));
            let msg = err.to_string();
            assert!(matches!(err, WaitError::Timeout { ms: 200, .. }), "{err:?}");
            assert!(
                msg.contains(&format!("'{name}'")) && msg.contains("200 ms"),
                "{msg}"
            );
            assert!(
                msg.contains("15 characters") && msg.contains("waitForMatch"),
                "{msg}"
            );
        }
    }

    #[test]
    fn timeout_message_names_the_options_as_the_reader_spells_them() {
        let dap = timeout_message("srv", 1500, Wording::Dap);
        assert!(
            dap.contains("\"waitForMatch\": \"cmdline\"")
                && dap.contains("\"waitForExisting\": true")
                && dap.contains("1.5 s"),
            "{dap}"
        );
        let cli = timeout_message("srv", 1500, Wording::Cli);
        assert!(
            cli.contains("--waitfor-cmdline") && cli.contains("--waitfor-existing"),
            "{cli}"
        );
        assert!(
            !cli.contains("waitForMatch") && !cli.contains("waitForExisting"),
            "{cli}"
        );
    }

    #[test]
    fn cancel_from_another_thread() {
        for via in BOTH {
            let mut s = spec(&unique(&format!("c{}", via as u8)));
            s.timeout = None;
            let Some(mut w) = start(s, via) else { continue };
            let cancel = Canceller::new().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let c2 = cancel.clone();
            let waiter = std::thread::spawn(move || {
                let first = w.wait(&c2);
                // Sticky: a second wait with the same canceller ends at once.
                let second = w.wait(&c2);
                tx.send((first, second)).unwrap();
            });
            cancel.cancel();
            let (first, second) = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("wait did not wake up");
            assert!(matches!(first, Err(WaitError::Cancelled)), "{first:?}");
            assert!(matches!(second, Err(WaitError::Cancelled)), "{second:?}");
            waiter.join().unwrap();
        }
    }

    #[test]
    fn existing_processes_count_only_when_asked() {
        for via in BOTH {
            let mut lab = Lab::new();
            let name = unique(&format!("e{}", via as u8));
            let prog = lab.program(&name, "/bin/sleep");
            let pid = lab.spawn(Command::new(&prog).arg("30"));
            // Let it exec before the wait begins: it must really be "already running".
            let until = Instant::now() + Duration::from_secs(5);
            while crate::procfs::comm(pid).ok().as_deref() != Some(name.as_str()) {
                assert!(Instant::now() < until, "the child never exec'd");
                std::thread::yield_now();
            }
            let mut s = spec(&name);
            s.timeout = Some(Duration::from_millis(300));
            let Some(mut w) = start(s.clone(), via) else {
                continue;
            };
            let err = w.wait(&Canceller::new().unwrap()).unwrap_err();
            assert!(matches!(err, WaitError::Timeout { .. }), "{via:?}: {err:?}");

            s.existing = true;
            let mut w = start(s, via).unwrap();
            let found = w.wait(&Canceller::new().unwrap()).unwrap();
            assert_eq!(found.pid, pid, "{via:?}");
        }
    }

    #[test]
    fn cmdline_mode() {
        for via in BOTH {
            let mut lab = Lab::new();
            let prog = lab.program(&unique(&format!("m{}", via as u8)), "/bin/sleep");
            let pattern = format!("{} 30", prog.display());
            let mut s = spec(&pattern);
            s.mode = MatchMode::Cmdline;
            let Some(mut w) = start(s, via) else { continue };
            lab.spawn(Command::new(&prog).arg("31"));
            let pid = lab.spawn(Command::new(&prog).arg("30"));
            let found = w.wait(&Canceller::new().unwrap()).unwrap();
            assert_eq!(found.pid, pid, "{via:?}");
        }
    }

    /// A subshell is a fork of a matching shell that never execs: not a new program.
    /// The subshell says when it exists, and that must come while the waiter still
    /// waits: a fork that came after the waiter gave up would pass untested.
    #[test]
    fn a_fork_without_exec_does_not_count() {
        for via in BOTH {
            let mut lab = Lab::new();
            let name = unique(&format!("f{}", via as u8));
            let shell = lab.program(&name, "/bin/dash");
            // The subshell outlives the wait (its `sleep` is a child; `true` keeps dash
            // from exec'ing it in place) and is killed below.
            let mut child = Command::new(&shell)
                .arg("-c")
                .arg("read go; (echo forked; sleep 30; true) & wait")
                .current_dir(&lab.dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let parent = child.id() as Pid;
            let mut stdin = child.stdin.take().unwrap();
            let stdout = child.stdout.take().unwrap();
            lab.children.push(child);
            let until = Instant::now() + Duration::from_secs(5);
            while crate::procfs::comm(parent).ok().as_deref() != Some(name.as_str()) {
                assert!(Instant::now() < until, "the shell never exec'd");
                std::thread::yield_now();
            }
            let mut s = spec(&name);
            s.timeout = Some(Duration::from_millis(1000));
            let Some(mut w) = start(s, via) else { continue };
            let (done_tx, done) = std::sync::mpsc::channel();
            let waiter = std::thread::spawn(move || {
                let result = w.wait(&Canceller::new().unwrap());
                let _ = done_tx.send(());
                result
            });
            let (line_tx, line) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut first = String::new();
                let _ =
                    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first);
                let _ = line_tx.send(first);
            });
            std::io::Write::write_all(&mut stdin, b"go\n").unwrap();
            let forked = line.recv_timeout(Duration::from_secs(5));
            assert_eq!(
                forked.as_deref().ok(),
                Some("forked\n"),
                "{via:?}: the subshell never said it exists"
            );
            let ended_before_the_fork = done.try_recv().is_ok();
            match waiter.join().unwrap() {
                Ok(found) => panic!(
                    "{via:?}: the fork {} was taken for a new program",
                    found.pid
                ),
                Err(WaitError::Timeout { .. }) => assert!(
                    !ended_before_the_fork,
                    "{via:?}: the waiter gave up before the subshell existed; nothing was tested"
                ),
                Err(err) => panic!("{via:?}: {err:?}"),
            }
            let subshells: Vec<Pid> = children_of(parent)
                .into_iter()
                .filter(|p| crate::procfs::comm(*p).ok().as_deref() == Some(name.as_str()))
                .collect();
            assert!(!subshells.is_empty(), "the test did not produce a subshell");
            for pid in subshells {
                for sleeper in children_of(pid) {
                    // SAFETY: kills the subshell's `sleep`, a grandchild of ours.
                    unsafe { libc::kill(sleeper, libc::SIGKILL) };
                }
                // SAFETY: kills the subshell of our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    fn children_of(parent: Pid) -> Vec<Pid> {
        let mut pids = Vec::new();
        list_pids(&mut pids).unwrap();
        pids.into_iter()
            .filter(|p| crate::procfs::stat(*p).map(|s| s.ppid).ok() == Some(parent))
            .collect()
    }

    /// Not a check but a measurement: `cargo test --release -- --ignored --nocapture
    /// latency`. From just before `spawn` to `wait` returning in a thread that was
    /// already blocked, and whether the dynamic loader had mapped libc by then (if not,
    /// `main()` was still far away).
    #[test]
    #[ignore]
    fn latency() {
        for via in BOTH {
            let mut lab = Lab::new();
            let name = unique(&format!("l{}", via as u8));
            let prog = lab.program(&name, "/bin/sleep");
            let mut times = Vec::new();
            let mut before_libc = 0;
            let rounds = 30;
            for _ in 0..rounds {
                let Some(mut w) = start(spec(&name), via) else {
                    return;
                };
                let (tx, rx) = std::sync::mpsc::channel();
                let t = std::thread::spawn(move || {
                    let found = w.wait(&Canceller::new().unwrap()).unwrap();
                    let at = Instant::now();
                    let maps = std::fs::read_to_string(format!("/proc/{}/maps", found.pid));
                    let libc = maps.map(|m| m.contains("libc.so")).unwrap_or(true);
                    tx.send((at, libc)).unwrap();
                });
                // Let the waiter block first (bounded spin, not a sleep).
                let until = Instant::now() + Duration::from_millis(20);
                while Instant::now() < until {
                    std::thread::yield_now();
                }
                let t0 = Instant::now();
                let pid = lab.spawn(Command::new(&prog).arg("30"));
                let (at, libc) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
                t.join().unwrap();
                times.push(at - t0);
                before_libc += usize::from(!libc);
                // SAFETY: kills our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            times.sort();
            eprintln!(
                "{via:?}: spawn -> found: min {:?}, median {:?}, max {:?}; libc not yet mapped in {before_libc}/{rounds}",
                times[0],
                times[times.len() / 2],
                times[times.len() - 1]
            );
        }
    }

    #[test]
    fn name_matching_rules() {
        use NameVerdict::*;
        assert_eq!(name_matches("sleep", b"sleep"), Yes);
        assert_eq!(name_matches("sle", b"sleep"), Yes);
        assert_eq!(name_matches("sleepy", b"sleep"), Maybe);
        assert_eq!(name_matches("vim", b"vi"), Maybe);
        assert_eq!(name_matches("busybox", b"ls"), No);
        assert_eq!(
            name_matches("a-very-long-program", b"a-very-long-pro"),
            Maybe
        );
        assert_eq!(name_matches("a-very-long-program", b"bash"), Maybe);
        // A cut in the middle of a UTF-8 character still compares.
        let pattern = "aaaaaaaaaaaaaaé"; // 14 + 2 bytes
        assert_eq!(name_matches(pattern, &pattern.as_bytes()[..15]), Maybe);
    }

    #[test]
    fn raw_stat_fields() {
        let line = b"4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 1000 200 18446744073709551615 94000 95000 140000 0 0";
        let st = parse_raw_stat(line).unwrap();
        assert_eq!(st.mark.comm, b"a (b) c");
        assert_eq!(
            (st.state, st.ppid, st.flags, st.starttime),
            (b'S', 1, 4194560, 987654)
        );
        assert_eq!((st.mark.startcode, st.mark.startstack), (94000, 140000));
    }

    #[test]
    fn datagram_parsing() {
        let mut d = Vec::new();
        let body = |what: u32, data: &[u32]| {
            let mut m = Vec::new();
            let len = 16 + 20 + 16 + data.len() * 4;
            m.extend_from_slice(&(len as u32).to_ne_bytes());
            m.extend_from_slice(&[3, 0, 0, 0]); // NLMSG_DONE, flags
            m.extend_from_slice(&[0; 8]); // seq, pid
            for v in [libc::CN_IDX_PROC, libc::CN_VAL_PROC, 7, 1] {
                m.extend_from_slice(&v.to_ne_bytes());
            }
            m.extend_from_slice(&((16 + data.len() * 4) as u16).to_ne_bytes());
            m.extend_from_slice(&[0, 0]);
            m.extend_from_slice(&what.to_ne_bytes());
            m.extend_from_slice(&[0; 12]); // cpu, timestamp
            for v in data {
                m.extend_from_slice(&v.to_ne_bytes());
            }
            m
        };
        d.extend(body(PROC_EVENT_EXEC, &[1234, 1230]));
        d.extend(body(PROC_EVENT_NONE, &[0]));
        d.extend(body(1, &[1, 1, 2, 2]));
        let mut out = Vec::new();
        parse_datagram(&d, &mut out);
        assert_eq!(
            out,
            vec![
                Event::Exec { tgid: 1230 },
                Event::Ack { ack: 1, err: 0 },
                Event::Other
            ]
        );
    }

    #[test]
    fn pick_takes_the_earliest() {
        let c = |pid, starttime, order| Candidate {
            pid,
            name: format!("p{pid}"),
            starttime,
            order,
        };
        let f = pick(vec![c(30, 5, 1), c(20, 4, 2), c(40, 4, 3), c(20, 4, 4)]).unwrap();
        assert_eq!(
            f,
            Found {
                pid: 20,
                name: "p20".into(),
                others: vec![40, 30]
            }
        );
        assert!(pick(Vec::new()).is_none());
    }

    #[test]
    fn list_pids_sees_us() {
        let mut pids = Vec::new();
        list_pids(&mut pids).unwrap();
        assert!(pids.contains(&(std::process::id() as Pid)));
        assert!(pids.windows(2).all(|w| w[0] < w[1]));
        assert!(last_pid().is_some());
        let _ = Path::new("/");
    }
}
