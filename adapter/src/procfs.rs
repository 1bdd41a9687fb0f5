//! Reading `/proc`: task lists, names, states, tracers, users, command lines.
//!
//! Everything here is a plain file read with no side effects on the target, so it is
//! safe from any thread and while the target runs.

use std::fs;
use std::io;
use std::path::PathBuf;

pub type Pid = i32;

/// How many threads can run at once: the CPUs latch may use, within its cgroup's quota.
/// Read once: std asks `/proc/self/cgroup`, the cgroup's quota files and the affinity
/// mask every time, ten system calls that each `threads` answer paid (in its name
/// reading) before this was cached.
pub fn usable_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The process-wide fields of `/proc/PID/stat` that latch needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    /// One of R S D Z T t X I (see proc(5)).
    pub state: char,
    pub ppid: Pid,
    pub flags: u64,
    /// Start time in clock ticks after boot: with the pid it identifies a task uniquely.
    pub starttime: u64,
}

impl Stat {
    pub fn is_kernel_thread(&self) -> bool {
        const PF_KTHREAD: u64 = 0x0020_0000;
        self.flags & PF_KTHREAD != 0
    }
}

fn proc_path(pid: Pid) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}"))
}

fn task_path(pid: Pid, tid: Pid) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/task/{tid}"))
}

/// Parses a `stat` line. The name sits in parentheses and may itself contain spaces and
/// parentheses, so the fields are counted from the *last* `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let comm = line.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    Some(Stat {
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        flags: rest.get(6)?.parse().ok()?,
        starttime: rest.get(19)?.parse().ok()?,
    })
}

pub fn stat(pid: Pid) -> io::Result<Stat> {
    let text = fs::read_to_string(proc_path(pid).join("stat"))?;
    parse_stat(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"))
}

pub fn task_stat(pid: Pid, tid: Pid) -> io::Result<Stat> {
    let text = fs::read_to_string(task_path(pid, tid).join("stat"))?;
    parse_stat(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"))
}

/// The thread ids in `/proc/PID/task`, in directory order.
pub fn tasks(pid: Pid) -> io::Result<Vec<Pid>> {
    let mut tids = Vec::new();
    for entry in fs::read_dir(proc_path(pid).join("task"))? {
        if let Some(tid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            tids.push(tid);
        }
    }
    Ok(tids)
}

/// All numeric entries of `/proc`: every process visible in our pid namespace.
pub fn all_pids() -> io::Result<Vec<Pid>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc")? {
        if let Some(pid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// The thread's name, without the trailing newline. One open and one read into a stack
/// buffer (`comm` is at most 16 bytes): `threads` reads this for every thread, and
/// `read_to_string`'s extra metadata and EOF calls nearly double the syscalls.
pub fn task_comm(pid: Pid, tid: Pid) -> io::Result<String> {
    read_comm(&task_path(pid, tid).join("comm"))
}

pub fn comm(pid: Pid) -> io::Result<String> {
    read_comm(&proc_path(pid).join("comm"))
}

fn read_comm(path: &std::path::Path) -> io::Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 64];
    let n = fs::File::open(path)?.read(&mut buf)?;
    let name = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]);
    // The kernel may cut a UTF-8 name mid-character at 15 bytes.
    Ok(String::from_utf8_lossy(name).into_owned())
}

/// The NUL-separated arguments of `/proc/PID/cmdline`.
pub fn cmdline(pid: Pid) -> io::Result<Vec<String>> {
    let raw = fs::read(proc_path(pid).join("cmdline"))?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect())
}

pub fn exe(pid: Pid) -> io::Result<PathBuf> {
    fs::read_link(proc_path(pid).join("exe"))
}

/// The fields of `/proc/PID/status` that attach decisions depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub state: char,
    /// The process the task belongs to.
    pub tgid: Pid,
    /// The tracing *thread* (a debugger's ptrace thread need not be its main thread).
    pub tracer_pid: Pid,
    /// Real, effective, saved and filesystem uids.
    pub uids: [u32; 4],
    pub threads: u32,
    /// Effective capabilities, a bit mask.
    pub cap_eff: u64,
    /// 0 none, 1 strict, 2 filter.
    pub seccomp: u32,
    /// Signals the process has a handler for (`SigCgt`), bit N-1 for signal N.
    pub sig_cgt: u64,
}

impl Status {
    /// Whether the process catches `signal` with a handler of its own.
    pub fn caught_signal(&self, signal: i32) -> bool {
        (1..=64).contains(&signal) && self.sig_cgt & (1u64 << (signal - 1)) != 0
    }
}

pub fn parse_status(text: &str) -> Status {
    let mut status = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => status.name = value.to_string(),
            "State" => status.state = value.chars().next().unwrap_or('?'),
            "TracerPid" => status.tracer_pid = value.parse().unwrap_or(0),
            "Tgid" => status.tgid = value.parse().unwrap_or(0),
            "Uid" => {
                for (slot, field) in status.uids.iter_mut().zip(value.split_whitespace()) {
                    *slot = field.parse().unwrap_or(0);
                }
            }
            "Threads" => status.threads = value.parse().unwrap_or(0),
            "CapEff" => status.cap_eff = u64::from_str_radix(value, 16).unwrap_or(0),
            "Seccomp" => status.seccomp = value.parse().unwrap_or(0),
            "SigCgt" => status.sig_cgt = u64::from_str_radix(value, 16).unwrap_or(0),
            _ => {}
        }
    }
    status
}

/// The process a thread id belongs to (/proc/TID works for any thread, listed or not).
pub fn process_of(tid: Pid) -> Pid {
    status(tid)
        .ok()
        .map(|s| s.tgid)
        .filter(|tgid| *tgid > 0)
        .unwrap_or(tid)
}

/// A thread of the process through which `/proc/N/maps`, `/proc/N/exe`,
/// `/proc/N/map_files` and `process_vm_readv` see its memory: the leader itself, or,
/// when the leader has exited (`pthread_exit` in `main`), a live thread. A zombie
/// leader's maps are empty and its memory unreadable while the process runs on.
pub fn memory_view(pid: Pid) -> Pid {
    let leader_alive = stat(pid).is_ok_and(|s| !matches!(s.state, 'Z' | 'X'));
    if leader_alive {
        return pid;
    }
    tasks(pid)
        .unwrap_or_default()
        .into_iter()
        .find(|&tid| task_stat(pid, tid).is_ok_and(|s| !matches!(s.state, 'Z' | 'X')))
        .unwrap_or(pid)
}

pub fn status(pid: Pid) -> io::Result<Status> {
    Ok(parse_status(&fs::read_to_string(
        proc_path(pid).join("status"),
    )?))
}

pub fn task_status(pid: Pid, tid: Pid) -> io::Result<Status> {
    Ok(parse_status(&fs::read_to_string(
        task_path(pid, tid).join("status"),
    )?))
}

/// What a stopped thread was doing, from `/proc/PID/task/TID/syscall`: the syscall
/// number when it is blocked in one, `None` when it was running user code.
pub fn task_syscall(pid: Pid, tid: Pid) -> io::Result<Option<i64>> {
    let text = fs::read_to_string(task_path(pid, tid).join("syscall"))?;
    let first = text.split_whitespace().next().unwrap_or("running");
    Ok(first.parse::<i64>().ok().filter(|nr| *nr >= 0))
}

/// `kernel.yama.ptrace_scope`, or `None` when Yama is not in the kernel.
pub fn yama_ptrace_scope() -> Option<u32> {
    fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The user name for a uid, from `/etc/passwd`; the number when there is none.
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// True when `ancestor` is `pid` itself or one of its parents.
pub fn is_ancestor_or_self(ancestor: Pid, pid: Pid) -> bool {
    let mut current = pid;
    for _ in 0..4096 {
        if current == ancestor {
            return true;
        }
        if current <= 1 {
            return false;
        }
        match stat(current) {
            Ok(s) => current = s.ppid,
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parentheses_and_spaces_in_the_name() {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 1000 200 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "a (b) c");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.starttime, 987654);
    }

    #[test]
    fn own_status_and_tasks() {
        let me = std::process::id() as Pid;
        let status = status(me).unwrap();
        assert!(status.threads >= 1);
        assert!(tasks(me).unwrap().contains(&me));
        assert_eq!(stat(me).unwrap().comm, comm(me).unwrap());
        assert!(is_ancestor_or_self(1, me));
        assert!(!is_ancestor_or_self(me, 1));
    }

    #[test]
    fn a_thread_belongs_to_its_process() {
        let me = std::process::id() as Pid;
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let live = std::thread::spawn(move || {
            tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = done_rx.recv();
        });
        let live_tid = rx.recv().unwrap();
        assert_ne!(live_tid, me);
        assert_eq!(process_of(live_tid), me);
        assert_eq!(process_of(me), me);
        drop(done_tx);
        live.join().unwrap();
    }

    #[test]
    fn status_fields() {
        let s = parse_status("Name:\tx\nState:\tS (sleeping)\nTracerPid:\t77\nUid:\t1\t2\t3\t4\nThreads:\t5\nCapEff:\t000001ffffffffff\nSeccomp:\t2\n");
        assert_eq!(s.tracer_pid, 77);
        assert_eq!(s.uids, [1, 2, 3, 4]);
        assert_eq!(s.threads, 5);
        assert_eq!(s.state, 'S');
        assert_eq!(s.cap_eff, 0x1ff_ffff_ffff);
        assert_eq!(s.seccomp, 2);
    }
}
