//! A `latch dap --listen` server started by a test, and clients of it that run as
//! another user.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::dap::latch_bin;
use super::fixtures::tmp_dir;
use super::{secs, skip_or_fail, Dap};

/// A `latch dap --listen` process and the address it announced on its first line.
pub struct Server {
    child: Child,
    pub address: String,
    stderr: Receiver<String>,
    /// stderr lines already taken from `stderr`.
    stderr_seen: Vec<String>,
    log_file: PathBuf,
}

static SERVERS: AtomicUsize = AtomicUsize::new(0);

impl Server {
    pub fn start(listen: &str, extra: &[&str]) -> Server {
        Server::start_as(None, listen, extra)
    }

    /// `latch dap --listen LISTEN EXTRA...`, run as `user` (through setpriv) when given;
    /// callers check [`other_users_available`] first.
    pub fn start_as(user: Option<User>, listen: &str, extra: &[&str]) -> Server {
        Server::start_full(user, listen, extra, &[])
    }

    /// As `start`, with environment variables for latch (its test hooks).
    pub fn start_with_env(listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_full(None, listen, extra, env)
    }

    fn start_full(
        user: Option<User>,
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let dir = tmp_dir().join("logs");
        std::fs::create_dir_all(&dir).unwrap();
        let log_file = dir.join(format!(
            "latch-listen-{}-{}-{}.log",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::Relaxed),
            listen.replace(['/', ':'], "_")
        ));
        let mut cmd = match user {
            Some(user) => {
                // Created here, writable by the user latch runs as.
                std::fs::write(&log_file, "").unwrap();
                std::fs::set_permissions(&log_file, std::fs::Permissions::from_mode(0o666))
                    .unwrap();
                let mut cmd = user.setpriv();
                cmd.arg(latch_bin());
                cmd
            }
            None => Command::new(latch_bin()),
        };
        cmd.envs(env.iter().copied())
            .args(["dap", "--listen", listen])
            .args(extra)
            .arg("--log-file")
            .arg(&log_file)
            .args(["--log", "latch=debug"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = super::target::spawn_retrying(&mut cmd);
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("latch server stderr: {line}");
                let _ = tx.send(line);
            }
        });
        // The announcement is the first line on stdout; the pipe ends if latch fails.
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .expect("reading latch's announcement");
        let address = first
            .strip_prefix("latch: DAP server listening at ")
            .and_then(|rest| rest.split(", ").next())
            .unwrap_or_else(|| panic!("unexpected first line from latch --listen: {first:?}"))
            .to_string();
        Server {
            child,
            address,
            stderr,
            stderr_seen: Vec::new(),
            log_file,
        }
    }

    /// A client running as `user`: a relay (python3's socket module, under setpriv)
    /// between the returned client and this server. Callers check
    /// [`other_users_available`] first.
    pub fn connect_as(&self, user: User) -> Relay {
        self.connect_as_at(user, &self.address)
    }

    /// [`Server::connect_as`] through another address of the server, e.g. loopback for
    /// a server on 0.0.0.0.
    pub fn connect_as_at(&self, user: User, address: &str) -> Relay {
        let mut cmd = user.setpriv();
        cmd.args([PYTHON, "-c", RELAY, address])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = super::target::spawn_retrying(&mut cmd);
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("client as uid {} stderr: {line}", user.uid);
                let _ = tx.send(line);
            }
        });
        Relay {
            dap: Dap::over_child(child, self.log_file.clone()),
            stderr,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    /// Waits until latch has written a stderr line containing every one of `words`;
    /// returns that line.
    pub fn wait_stderr(&mut self, words: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self
                .stderr_seen
                .iter()
                .find(|line| words.iter().all(|w| line.contains(w)))
            {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => self.stderr_seen.push(line),
                Err(_) => panic!(
                    "latch wrote no stderr line with {words:?} within {within:?}; it wrote:\n{}",
                    self.stderr_seen.join("\n")
                ),
            }
        }
    }

    pub fn connect(&self) -> Dap {
        match self.address.strip_prefix("unix:") {
            Some(path) => Dap::over_socket(
                UnixStream::connect(path).expect("connecting to latch's unix socket"),
                self.log_file.clone(),
            ),
            None => {
                let stream = TcpStream::connect(&self.address).expect("connecting to latch");
                stream.set_nodelay(true).unwrap();
                Dap::over_socket(stream, self.log_file.clone())
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let mut status = None;
        super::procfs::wait_for(within, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap_or_else(|| panic!("latch --listen still running after {within:?}"))
    }

    /// Stops the server the way a user does (Ctrl-C) and checks it exits cleanly.
    pub fn stop(&mut self) {
        unsafe { libc::kill(self.pid(), libc::SIGINT) };
        let status = self.wait_exit(secs(10));
        assert!(status.success(), "latch --listen exited with {status}");
    }

    /// Every stderr line latch has written so far (that the reader has passed on).
    pub fn stderr_lines(&mut self) -> Vec<String> {
        self.stderr_seen.extend(self.stderr.try_iter());
        self.stderr_seen.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A user for a process started through setpriv, with no supplementary groups.
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// The unprivileged user of the issue's attacker.
pub const NOBODY: User = User {
    uid: 65534,
    gid: 65534,
};

/// A second unprivileged user, with no entry in /etc/passwd (setpriv needs none).
pub const STRANGER: User = User {
    uid: 54321,
    gid: 54321,
};

impl User {
    fn setpriv(self) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--clear-groups");
        cmd
    }
}

/// The system's Python, which any user may run (a pyenv shim under /root is not).
const PYTHON: &str = "/usr/bin/python3";

/// Relays stdin to the server at argv[1] (HOST:PORT or unix:PATH) and the server's
/// bytes to stdout. Says on stderr whether it connected; exits 3 when it could not,
/// 4 when the server reset the connection, 0 when the server closed it.
const RELAY: &str = r#"
import os, socket, sys, threading
address = sys.argv[1]
try:
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address[len("unix:"):])
    else:
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host.strip("[]"), int(port)))
except OSError as err:
    print(f"relay: cannot connect to {address}: {err}", file=sys.stderr, flush=True)
    sys.exit(3)
print("relay: connected", file=sys.stderr, flush=True)

def to_server():
    try:
        while data := os.read(0, 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass

threading.Thread(target=to_server, daemon=True).start()
try:
    while data := sock.recv(65536):
        os.write(1, data)
except ConnectionResetError:
    print("relay: reset by the server", file=sys.stderr, flush=True)
    sys.exit(4)
print("relay: closed by the server", file=sys.stderr, flush=True)
"#;

/// A DAP client running as another user, through the relay.
pub struct Relay {
    pub dap: Dap,
    stderr: Receiver<String>,
}

impl Relay {
    /// How the relay ended: its exit code and what it said on stderr.
    pub fn outcome(&mut self) -> (Option<i32>, String) {
        let status = self.dap.wait_exit(secs(10));
        // The stderr reader ends with the relay; every line is in the channel by then.
        let mut said = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(secs(5)) {
            said.push(line);
        }
        (status.code(), said.join("\n"))
    }
}

/// Whether clients (and latch) can be run as other users here: root, setpriv, and a
/// Python that nobody may run. Fails saying why not (see `skip_or_fail`).
pub fn other_users_available() -> bool {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let available = AVAILABLE.get_or_init(|| {
        if unsafe { libc::geteuid() } != 0 {
            return Err("running clients as other users needs root".into());
        }
        if super::fixtures::which("setpriv").is_none() {
            return Err("setpriv (util-linux) is not installed".into());
        }
        let mut probe = NOBODY.setpriv();
        probe.args([PYTHON, "-c", "import socket"]);
        match super::target::run_with_deadline(&mut probe, secs(20)) {
            out if out.status.success() => Ok(()),
            out => Err(format!(
                "`setpriv ... {PYTHON}` cannot run as nobody (install util-linux and \
                 python3): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    });
    match available {
        Ok(()) => true,
        Err(why) => {
            skip_or_fail(why);
            false
        }
    }
}
