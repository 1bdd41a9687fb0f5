//! Small /proc readers and process helpers. The benchmark deliberately does
//! not reuse latch's own procfs code: it judges latch, so it must not share
//! latch's bugs.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::fs;
use std::time::{Duration, Instant};

/// Thread ids of a process, from /proc/PID/task.
pub fn tasks(pid: i32) -> Result<Vec<i32>> {
    let mut tids = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("reading /proc/{pid}/task"))?
    {
        if let Ok(tid) = entry?.file_name().to_string_lossy().parse() {
            tids.push(tid);
        }
    }
    tids.sort_unstable();
    Ok(tids)
}

/// The one-letter state of a thread (`R`, `S`, `t`, `T`, ...). The comm field
/// may contain spaces and parentheses, so parse after the last `)`.
pub fn task_state(pid: i32, tid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// A numeric field of /proc/.../status (e.g. `TracerPid`, `VmHWM` in kB).
fn status_field(path: &str, key: &str) -> Option<u64> {
    let status = fs::read_to_string(path).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

pub fn tracer_pid(pid: i32, tid: i32) -> Option<u64> {
    status_field(&format!("/proc/{pid}/task/{tid}/status"), "TracerPid")
}

/// Peak resident set size of a process in kB.
pub fn vm_hwm_kb(pid: i32) -> Option<u64> {
    status_field(&format!("/proc/{pid}/status"), "VmHWM")
}

/// Resident set size of a process now, in kB: whether memory stays flat as a value is
/// paged.
pub fn vm_rss_kb(pid: i32) -> Option<u64> {
    status_field(&format!("/proc/{pid}/status"), "VmRSS")
}

/// User + system CPU of a live process (all its threads) so far, in ms, from
/// /proc/PID/stat (clock ticks: 10 ms resolution at the usual 100 Hz).
pub fn cpu_ms(pid: i32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // After the comm: state is field 3; utime and stime are fields 14 and 15.
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((utime + stime) as f64 * 1000.0 / hz)
}

/// CPU of `root` and its live descendants so far, in ms (see [`cpu_ms`]).
pub fn tree_cpu_ms(root: i32) -> f64 {
    std::iter::once(root)
        .chain(descendants(root))
        .filter_map(cpu_ms)
        .sum()
}

/// Every live descendant of `root` (not `root` itself). lldb-dap does its
/// ptrace work in a child `lldb-server`, so its cost is the whole tree.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            // Fields after the comm: state, ppid, ...
            if let Some(ppid) = after.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            out.push(c);
            stack.push(c);
        }
    }
    out
}

/// What /proc says about a target after a debugger let go of it.
pub struct AfterDetach {
    pub threads: usize,
    pub tids: Vec<i32>,
    /// Threads still in `t`/`T`, with their state.
    pub stopped: Vec<(i32, char)>,
    /// Threads whose TracerPid is not 0.
    pub traced: Vec<(i32, u64)>,
}

impl AfterDetach {
    pub fn clean(&self) -> bool {
        self.stopped.is_empty() && self.traced.is_empty()
    }
}

pub fn inspect_target(pid: i32) -> Result<AfterDetach> {
    let tids = tasks(pid)?;
    let mut stopped = Vec::new();
    let mut traced = Vec::new();
    for &tid in &tids {
        if let Some(s @ ('t' | 'T')) = task_state(pid, tid) {
            stopped.push((tid, s));
        }
        if let Some(t @ 1..) = tracer_pid(pid, tid) {
            traced.push((tid, t));
        }
    }
    Ok(AfterDetach {
        threads: tids.len(),
        tids,
        stopped,
        traced,
    })
}

/// Poll the target until no thread is stopped or traced, or until `grace`
/// has passed. The kernel finishes a detach asynchronously with respect to
/// the debugger's exit, so one look right after could see a stale `t`; a
/// thread still stopped after the grace period was really left stopped.
pub fn wait_target_released(pid: i32, grace: Duration) -> Result<AfterDetach> {
    let deadline = Instant::now() + grace;
    loop {
        let seen = inspect_target(pid)?;
        if seen.clean() || Instant::now() >= deadline {
            return Ok(seen);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How many of the target's threads are in ptrace-stop right now.
pub fn count_traced_stopped(pid: i32) -> Result<(usize, usize)> {
    let tids = tasks(pid)?;
    let n = tids
        .iter()
        .filter(|&&tid| task_state(pid, tid) == Some('t'))
        .count();
    Ok((n, tids.len()))
}

/// Outcome of waiting for a child: exit status and rusage.
pub struct Reaped {
    pub status: i32,
    pub cpu: Duration,
    pub maxrss_kb: u64,
    pub at: Instant,
}

impl Reaped {
    pub fn describe_status(&self) -> String {
        describe_wait_status(self.status)
    }
    pub fn exited_cleanly(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }
}

pub fn describe_wait_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // SAFETY: strsignal returns a pointer to a static or thread-local string.
        let name = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(sig)) };
        format!("killed by signal {sig} ({})", name.to_string_lossy())
    } else {
        format!("wait status {status:#x}")
    }
}

/// Wait for one child with a deadline, collecting its rusage. wait4 rather
/// than std's Child::wait because we need the rusage (CPU time of the child
/// and of every descendant it reaped). Polls: there is no wait4 with a
/// timeout, and 0.5 ms of polling slack is far below what we measure.
pub fn wait4_deadline(pid: i32, deadline: Instant) -> std::io::Result<Option<Reaped>> {
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain old data; zeroed is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        let at = Instant::now();
        if r == pid {
            let tv = |t: libc::timeval| {
                Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
            };
            return Ok(Some(Reaped {
                status,
                cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
                maxrss_kb: ru.ru_maxrss as u64,
                at,
            }));
        }
        if r < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        if at >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

pub fn kill(pid: i32, sig: i32) {
    // SAFETY: plain syscall; a stale pid at worst gets ESRCH.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Kill a whole process group (each peer runs in its own group, so this
/// also takes lldb-dap's lldb-server).
pub fn kill_group(pgid: i32) {
    // SAFETY: plain syscall.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Become a child subreaper: when lldb-dap exits before its lldb-server,
/// the orphan is reparented to us instead of init, so we can still reap it,
/// count its CPU time, and kill it if it lingers.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// The nice value the harness runs at when permitted (as root). On a 2-core
/// machine next to 100 spinning threads a harness at nice 0 gets a sliver of
/// CPU and would time its own wake-ups (reaping an exited debugger, reading a
/// response) rather than the debugger. Children are reset to nice 0 by
/// [`normal_priority`], so no peer and no target inherits it.
pub const HARNESS_NICE: i32 = -10;

/// Raise the calling thread, and the threads it spawns afterwards (Linux
/// applies nice per thread; new threads inherit it), to [`HARNESS_NICE`].
/// Call first thing in main. Returns whether it was permitted.
pub fn raise_harness_priority() -> bool {
    // SAFETY: setpriority on the calling thread (who = 0).
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, HARNESS_NICE) == 0 }
}

/// Start `cmd` at nice 0 whatever the harness runs at.
pub fn normal_priority(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec and only makes one
    // async-signal-safe syscall. Lowering priority back is always allowed.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpriority(libc::PRIO_PROCESS, 0, 0);
            Ok(())
        })
    }
}

/// Whether targets start in a session of their own (the default; `--same-session`
/// turns it off). With the kernel's autogroup scheduling (on by default in Debian's
/// kernels) CPU is shared between sessions first, so 100 spinning threads in the
/// debugger's own session leave a new debugger process a sliver of CPU for its start
/// (measured: `/bin/true` 47 ms median next to them, 3.8 ms with the spinners in their
/// own session). A program a user debugs runs in another terminal's session or as a
/// service, not in the editor's, so by default the targets do too.
pub static TARGETS_IN_OWN_SESSION: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);

/// Start `cmd` as a target: at nice 0, and in a session of its own unless
/// `--same-session` (see [`TARGETS_IN_OWN_SESSION`]).
pub fn as_target(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    use std::sync::atomic::Ordering;
    let own_session = TARGETS_IN_OWN_SESSION.load(Ordering::Relaxed);
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe syscalls. Lowering priority back is always allowed.
    unsafe {
        cmd.pre_exec(move || {
            libc::setpriority(libc::PRIO_PROCESS, 0, 0);
            if own_session {
                libc::setsid();
            }
            Ok(())
        })
    }
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg prints them: the
/// report shows them at the start and the end, so a reader can tell a quiet
/// machine from a shared, busy one.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The machine line of the report.
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|x| x.1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu,
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}
