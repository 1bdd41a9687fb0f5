//! Why an attach failed, in words a user can act on.
//!
//! EPERM is the most common failure of every attach tool, and the kernel gives no reason,
//! so the causes are ranked from what `/proc` tells us (DESIGN.md section 6). We always
//! try the attach first and explain afterwards: a guess never refuses an attach.

use crate::procfs::{self, Pid};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AttachError {
    #[error("pid {0} is not a valid pid: a pid is a whole number of 1 or more. Pick the process again (`latch ps` lists them)")]
    InvalidPid(i64),
    #[error("no process with pid {0} exists (it may have exited). Check the pid with `latch ps` or `ps -e`")]
    NoSuchProcess(Pid),
    #[error("pid {0} is latch itself; attach to another process")]
    Itself(Pid),
    #[error("pid {pid} ({name}) is an ancestor of latch (e.g. the editor or shell that started it); attaching would stop the program that is waiting on latch and deadlock both")]
    Ancestor { pid: Pid, name: String },
    #[error("pid {pid} ({name}) is a zombie: it has exited and waits for its parent to reap it, so there is nothing left to debug")]
    Zombie { pid: Pid, name: String },
    #[error(
        "pid {pid} ({name}) is a kernel thread; kernel threads cannot be traced from user space"
    )]
    KernelThread { pid: Pid, name: String },
    #[error("pid {pid} ({name}) is already traced by pid {tracer} ({tracer_name}); a process can have only one tracer. Detach that debugger first (or end it)")]
    AlreadyTraced {
        pid: Pid,
        name: String,
        tracer: Pid,
        tracer_name: String,
    },
    #[error("{0}")]
    PermissionDenied(String),
    #[error("a session is already attached to pid {0}; one latch session debugs one process")]
    AlreadyAttached(Pid),
    #[error("could not attach to pid {pid}: {message}")]
    Os { pid: Pid, message: String },
}

fn name_of(pid: Pid) -> String {
    procfs::comm(pid).unwrap_or_else(|_| "?".into())
}

/// Checks that can be made before touching the process, with precise errors.
pub fn validate(pid: i64) -> Result<Pid, AttachError> {
    let pid = Pid::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .ok_or(AttachError::InvalidPid(pid))?;
    let me = std::process::id() as Pid;
    if pid == me {
        return Err(AttachError::Itself(pid));
    }
    let stat = procfs::stat(pid).map_err(|_| AttachError::NoSuchProcess(pid))?;
    if procfs::is_ancestor_or_self(pid, me) {
        return Err(AttachError::Ancestor {
            pid,
            name: stat.comm,
        });
    }
    if stat.is_kernel_thread() {
        return Err(AttachError::KernelThread {
            pid,
            name: stat.comm,
        });
    }
    if matches!(stat.state, 'Z' | 'X') && !has_live_task(pid) {
        return Err(AttachError::Zombie {
            pid,
            name: stat.comm,
        });
    }
    if let Some((tracer, tracer_name)) = foreign_tracer(pid) {
        return Err(AttachError::AlreadyTraced {
            pid,
            name: stat.comm,
            tracer,
            tracer_name,
        });
    }
    Ok(pid)
}

/// A leader that called `pthread_exit` is a zombie while its threads run on.
fn has_live_task(pid: Pid) -> bool {
    procfs::tasks(pid)
        .unwrap_or_default()
        .into_iter()
        .any(|tid| procfs::task_stat(pid, tid).is_ok_and(|s| !matches!(s.state, 'Z' | 'X')))
}

/// The tracer of any of the process's threads, when it is not latch.
fn foreign_tracer(pid: Pid) -> Option<(Pid, String)> {
    let me = std::process::id() as Pid;
    let tracer = procfs::status(pid).ok()?.tracer_pid;
    if tracer == 0 || procfs::stat(tracer).is_ok_and(|_| is_ours(tracer, me)) {
        return None;
    }
    // Named by its process, not by the thread that traces (e.g. latch's `latch-ptrace`).
    let tracer = procfs::process_of(tracer);
    Some((tracer, name_of(tracer)))
}

fn is_ours(tid: Pid, me: Pid) -> bool {
    tid == me || std::path::Path::new(&format!("/proc/{me}/task/{tid}")).exists()
}

/// Turns an errno from seizing the process into an explanation.
pub fn explain(pid: Pid, errno: i32) -> AttachError {
    match errno {
        libc::ESRCH => AttachError::NoSuchProcess(pid),
        libc::EPERM | libc::EACCES => AttachError::PermissionDenied(explain_permission(pid)),
        _ => AttachError::Os {
            pid,
            message: std::io::Error::from_raw_os_error(errno).to_string(),
        },
    }
}

const CAP_SYS_PTRACE: u64 = 1 << 19;

/// The ranked causes of EPERM, most likely first, each with its fix.
pub fn explain_permission(pid: Pid) -> String {
    let name = name_of(pid);
    let me = procfs::status(std::process::id() as Pid).unwrap_or_default();
    let target = procfs::status(pid).unwrap_or_default();
    let euid = me.uids[1];
    let has_cap = me.cap_eff & CAP_SYS_PTRACE != 0;
    let mut causes: Vec<String> = Vec::new();

    let (exe, as_root) = latch_as_root();
    if let Some(cause) =
        procfs::yama_ptrace_scope().and_then(|scope| yama_cause(scope, has_cap, &exe, &as_root))
    {
        causes.push(cause);
    }
    if let Some((tracer, tracer_name)) = foreign_tracer(pid) {
        causes.insert(
            0,
            format!("it is already traced by pid {tracer} ({tracer_name}). Fix: detach that debugger first"),
        );
    }
    if !has_cap && target.uids.iter().any(|uid| *uid != euid) {
        let owner = target.uids[0];
        let different_user = owner != euid;
        causes.push(if different_user {
            let as_owner = if owner == 0 {
                String::new()
            } else {
                format!("as {} or ", procfs::user_name(owner))
            };
            format!(
                "it belongs to a different user: {} (uid {owner}), and latch runs as {} (uid {euid}) \
                 without CAP_SYS_PTRACE. Fix: run latch {as_owner}as root: `{as_root}`",
                procfs::user_name(owner),
                procfs::user_name(euid),
            )
        } else {
            format!(
                "it runs with other credentials than latch (a set-user-ID or set-group-ID \
                 program). Fix: run latch as root: `{as_root}`"
            )
        });
    }
    if euid == 0 && !has_cap {
        causes.push(
            "latch runs as root but without CAP_SYS_PTRACE, as in a container started without it. \
             Fix: start the container with `--cap-add=SYS_PTRACE`"
                .into(),
        );
    }
    if me.seccomp == 2 {
        causes.push(
            "latch runs under a seccomp filter, which may forbid ptrace (container runtimes' \
             default profiles do). Fix: start the container with `--security-opt seccomp=unconfined` \
             or a profile that allows ptrace"
                .into(),
        );
    }
    causes.push(format!(
        "the target may have made itself non-dumpable (prctl(PR_SET_DUMPABLE, 0), as some \
         hardened programs do), which only CAP_SYS_PTRACE overrides. Fix: run latch as root: \
         `{as_root}`"
    ));

    let mut text = format!(
        "Permission denied: the kernel refused to let latch attach to pid {pid} ({name}). \
         Most likely cause: {}.",
        causes[0]
    );
    if causes.len() > 1 {
        text.push_str(" Other possible causes: ");
        text.push_str(&causes[1..].join("; "));
        text.push('.');
    }
    text
}

/// Yama's rule (`kernel.yama.ptrace_scope`) as a cause with its fixes, when it is what
/// forbids the attach. `exe` is this latch's full path and `as_root` this very command
/// run as root: `sudo` searches only its own `secure_path`, not `~/.cargo/bin` where
/// `cargo install` puts latch, so a bare `sudo latch` says "command not found".
fn yama_cause(scope: u32, has_cap: bool, exe: &str, as_root: &str) -> Option<String> {
    match scope {
        3 => Some(
            "kernel.yama.ptrace_scope is 3: no process may attach to another until reboot. \
             Fix: boot with a lower ptrace_scope"
                .into(),
        ),
        2 if !has_cap => Some(format!(
            "kernel.yama.ptrace_scope is 2: only processes with CAP_SYS_PTRACE may attach. \
             Fix, one of: run latch as root, by its full path (sudo does not search \
             ~/.cargo/bin): `{as_root}`; or give this latch binary the capability: \
             `sudo setcap cap_sys_ptrace+ep {exe}` (again after each reinstall)"
        )),
        1 if !has_cap => Some(format!(
            "kernel.yama.ptrace_scope is 1 (the default on Ubuntu and most desktops): only a \
             process's parent (or ancestor) may attach to it. Fix, one of: run latch as root, by \
             its full path (sudo does not search ~/.cargo/bin): `{as_root}`; or let this latch \
             binary attach without root: `sudo setcap cap_sys_ptrace+ep {exe}` (again after \
             each reinstall); or allow attaching to any process of your own until reboot: \
             `sudo sysctl kernel.yama.ptrace_scope=0`"
        )),
        _ => None,
    }
}

/// This latch's full path, and the command that runs it again, as it was run, as root.
fn latch_as_root() -> (String, String) {
    let exe = std::env::current_exe()
        .map(|p| shell_quote(&p.display().to_string()))
        .unwrap_or_else(|_| "\"$(command -v latch)\"".into());
    let mut command = format!("sudo {exe}");
    for arg in std::env::args().skip(1) {
        command.push(' ');
        command.push_str(&shell_quote(&arg));
    }
    (exe, command)
}

/// `word` as a POSIX shell reads it back: as is when that is safe, else single-quoted.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_impossible_pids() {
        assert!(matches!(validate(0), Err(AttachError::InvalidPid(0))));
        assert!(matches!(validate(-5), Err(AttachError::InvalidPid(-5))));
        assert!(matches!(
            validate(i64::MAX),
            Err(AttachError::InvalidPid(_))
        ));
        let me = std::process::id() as i64;
        assert!(matches!(validate(me), Err(AttachError::Itself(_))));
        assert!(matches!(validate(1), Err(AttachError::Ancestor { .. })));
        assert!(matches!(
            validate(4_000_000),
            Err(AttachError::NoSuchProcess(_))
        ));
    }

    #[test]
    fn messages_name_cause_and_fix() {
        let text = AttachError::NoSuchProcess(77).to_string();
        assert!(text.contains("no process with pid 77") && text.contains("latch ps"));
        let text = explain_permission(1);
        assert!(text.starts_with("Permission denied"), "{text}");
        assert!(text.contains("Fix:"), "{text}");
    }

    /// Yama's scope 1 (Ubuntu's default) names the three ways out, each a command to copy.
    #[test]
    fn ptrace_scope_1_names_sudo_by_full_path_setcap_and_the_sysctl() {
        let exe = "/home/ann/.cargo/bin/latch";
        let text = yama_cause(1, false, exe, &format!("sudo {exe} attach 4242")).unwrap();
        for fix in [
            "`sudo /home/ann/.cargo/bin/latch attach 4242`",
            "`sudo setcap cap_sys_ptrace+ep /home/ann/.cargo/bin/latch`",
            "`sudo sysctl kernel.yama.ptrace_scope=0`",
            "~/.cargo/bin",
        ] {
            assert!(text.contains(fix), "{fix} missing: {text}");
        }
        assert!(yama_cause(1, true, exe, "sudo x").is_none());
        assert!(yama_cause(0, false, exe, "sudo x").is_none());
        let text = yama_cause(2, false, exe, "sudo x").unwrap();
        assert!(
            text.contains("setcap cap_sys_ptrace+ep /home/ann/.cargo/bin/latch"),
            "{text}"
        );
    }

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("/usr/bin/latch"), "/usr/bin/latch");
        assert_eq!(shell_quote("my dir/latch"), "'my dir/latch'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
