//! Child sessions: a process the target forks, when the user follows forks
//! (`followForks`), is served by this same latch process over a socket of its own, to a
//! second connection of the editor (DAP's `startDebugging` names the socket in the
//! configuration, as `latchChildSession`).
//!
//! The same process, not a new latch: Yama's ptrace_scope 1 (most desktops) lets a
//! process trace only its descendants, and a program latch launched, and its children,
//! descend from this latch, not from a latch the editor would start next to it.
//!
//! The child waits stopped (SIGSTOP, see `Tracer::hand_over`) until its session attaches;
//! if no editor connects in time, it is let run, clean of breakpoints.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::procfs::Pid;
use crate::transport::Outbox;

/// How long a followed child waits, stopped, for the editor to connect its session.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

static THREADS: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());
static ENDING: OnceLock<tokio::sync::watch::Sender<bool>> = OnceLock::new();

fn ending() -> &'static tokio::sync::watch::Sender<bool> {
    ENDING.get_or_init(|| tokio::sync::watch::channel(false).0)
}

/// Resolves when latch is ending and every child session must end too.
pub fn end_signal() -> tokio::sync::watch::Receiver<bool> {
    ending().subscribe()
}

/// A new socket path in a directory only this user can enter, made on first use:
/// `$XDG_RUNTIME_DIR/latch-PID/` or `/tmp/latch-PID/`.
pub fn private_socket_path(kind: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let dir = private_dir();
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!("{kind}-{n}.sock")))
}

fn private_dir() -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!("latch-{}", std::process::id()))
}

/// A child offered to the editor, until its session connects.
pub struct Offer {
    pub pid: Pid,
    pub socket: PathBuf,
    cancelled: Arc<AtomicBool>,
}

impl Offer {
    /// The editor will not connect (it refused `startDebugging`): let the child run.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// Opens the child's socket and starts the thread that serves its session.
/// `of_launch`: the child descends from a program latch launched, so its session ends
/// it with the rest, as the launched program is.
pub fn offer(pid: Pid, of_launch: bool, out: Outbox) -> std::io::Result<Offer> {
    let socket = private_socket_path("child")?;
    let listener = UnixListener::bind(&socket)?;
    listener.set_nonblocking(true)?;
    let cancelled = Arc::new(AtomicBool::new(false));
    let offer = Offer {
        pid,
        socket: socket.clone(),
        cancelled: cancelled.clone(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("latch-child-{pid}"))
        .spawn(move || serve(listener, &socket, pid, &cancelled, of_launch, out))?;
    lock(&THREADS).push(thread);
    Ok(offer)
}

fn serve(
    listener: UnixListener,
    socket: &Path,
    pid: Pid,
    cancelled: &AtomicBool,
    of_launch: bool,
    out: Outbox,
) {
    let deadline = Instant::now() + CONNECT_DEADLINE;
    let ended = end_signal();
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break Some(stream),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => {
                tracing::warn!(pid, "the child session's socket failed: {err}");
                break None;
            }
        }
        if cancelled.load(Ordering::Relaxed) || *ended.borrow() || Instant::now() > deadline {
            break None;
        }
        let mut poll = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut poll, 1, 100) };
    };
    let _ = std::fs::remove_file(socket);
    drop(listener);
    let Some(stream) = stream else {
        // Nobody came: the child goes on as if it had never been followed.
        // SAFETY: kill on the pid of the child we stopped.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        out.output(
            "console",
            &format!("latch: no debug session came for child pid {pid}; it runs on, not debugged"),
        );
        return;
    };
    // The main session's outbox is for the wait only: held while this session is
    // served, it would keep the main session's writer from finishing at its end.
    drop(out);
    if let Err(err) = stream.set_nonblocking(false) {
        tracing::warn!(pid, "the child session's connection: {err}");
    }
    if let Err(err) = crate::server::run_child(stream, of_launch) {
        tracing::error!(pid, "the child session failed: {err:#}");
        // SAFETY: as above; harmless if the session had attached and detached.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
}

/// The session that offered the children ended (latch is ending, or, for a
/// multiclient server, its client left): every child session ends (detaching or killing its process, as its
/// own end does) before this returns, or `within` has passed.
pub fn end_all(within: Duration) {
    let _ = ending().send(true);
    end_sessions(within);
    // A multiclient server's next client may follow children of its own.
    let _ = ending().send(false);
    // The sockets' directory, if a launch or a child made one.
    let _ = std::fs::remove_dir_all(private_dir());
}

fn end_sessions(within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let threads = std::mem::take(&mut *lock(&THREADS));
        if threads.is_empty() {
            return;
        }
        for thread in threads {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::warn!("a child session did not end in time");
                return;
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `latch dap --connect SOCKET`: copies stdin to the child session's socket and the
/// socket to stdout, until the latch that serves the session closes it.
pub fn bridge(socket: &Path) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context;
    let stream = std::os::unix::net::UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot connect to the child session at {} (the latch that offered it may have \
             ended)",
            socket.display()
        )
    })?;
    let mut to_latch = stream.try_clone().context("duplicating the socket")?;
    let closer = stream.try_clone().context("duplicating the socket")?;
    std::thread::Builder::new()
        .name("latch-bridge-in".into())
        .spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_latch);
            // The editor is done: latch reads the end of its input, as over stdio.
            let _ = closer.shutdown(std::net::Shutdown::Write);
        })
        .context("starting the bridge")?;
    // Not io::copy: stdout is line-buffered, and a DAP message need not end a line.
    use std::io::{Read, Write};
    let mut from_latch = stream;
    let mut stdout = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from_latch.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).context("reading the child session's socket"),
        };
        stdout
            .write_all(&buf[..n])
            .and_then(|()| stdout.flush())
            .context("writing to stdout")?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}
