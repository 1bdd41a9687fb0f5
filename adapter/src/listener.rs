//! Where `latch dap --listen` listens and whom it lets in.
//!
//! A latch server can stop, read and kill every process latch may trace (everything,
//! when it runs as root), so who reaches it matters as much as what it does:
//!
//! - TCP binds loopback unless `--allow-remote-clients` says otherwise;
//! - a unix socket is created mode 0600, only in a directory no other user can write
//!   to (else they could swap the socket for their own);
//! - every accepted connection is checked before a byte of it is read: its user
//!   ([`crate::peer`]) must be latch's own or root, unless `--allow-other-users`.
//!   Refused clients are told nothing; the person running latch is told on stderr.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};

use crate::peer::{self, Peer};

/// Where `--listen` serves: `HOST:PORT`, a bare `PORT` (loopback), or `unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for ListenAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<ListenAddress, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a socket path, e.g. unix:/tmp/latch.sock".into());
            }
            return Ok(ListenAddress::Unix(PathBuf::from(path)));
        }
        // Without a host, loopback: a debugger port open to the network lets anyone who
        // reaches it read and change the memory of whatever latch may attach to.
        let port = text.strip_prefix(':').unwrap_or(text);
        if let Ok(port) = port.parse::<u16>() {
            return Ok(ListenAddress::Tcp(SocketAddr::from(([127, 0, 0, 1], port))));
        }
        let mut addresses = text.to_socket_addrs().map_err(|err| {
            format!(
                "`{text}` is not an address to listen on ({err}); give HOST:PORT \
                 (e.g. 127.0.0.1:4711), a port alone (loopback), or unix:PATH"
            )
        })?;
        addresses
            .next()
            .map(ListenAddress::Tcp)
            .ok_or_else(|| format!("`{text}` resolves to no address"))
    }
}

/// Who besides latch's own user (and root) may be served. Both off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// `--allow-other-users`: serve a client whatever its user, or when it has none
    /// latch can name. A unix socket is then created mode 0666.
    pub other_users: bool,
    /// `--allow-remote-clients`: listen on an address other machines reach, and serve
    /// their clients, whose user latch cannot know. Clients on this machine are still
    /// checked.
    pub remote_clients: bool,
}

impl Access {
    /// Whether a latch running as `me` serves `peer`; the error says why not, and what
    /// would let it in.
    pub fn admits(&self, peer: &Peer, me: u32) -> Result<(), String> {
        if self.other_users {
            return Ok(());
        }
        match peer {
            // Root may connect to anyone's latch: it could trace that latch itself.
            Peer::Local { uid, .. } if *uid == me || *uid == 0 => Ok(()),
            Peer::Local { .. } => Err(format!(
                "{} may connect (--allow-other-users lets every local user in)",
                who_may_connect(me)
            )),
            Peer::Remote if self.remote_clients => Ok(()),
            Peer::Remote => Err("clients from other machines need --allow-remote-clients".into()),
            Peer::Unknown(_) => Err(format!(
                "latch cannot tell which user it is, and {} may connect",
                who_may_connect(me)
            )),
        }
    }
}

fn who_may_connect(me: u32) -> String {
    if me == 0 {
        "only root, the user latch runs as,".into()
    } else {
        format!(
            "only uid {me} ({}), the user latch runs as, and root",
            crate::procfs::user_name(me)
        )
    }
}

/// A bound socket that hands out only clients its [`Access`] admits.
pub struct Listener {
    socket: Socket,
    access: Access,
    /// The effective uid latch runs as: the user whose rights a client would borrow.
    me: u32,
}

enum Socket {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, SocketFile),
}

/// The socket file this latch created, removed when the listener closes. Only that
/// one: a path latch refused to bind (another server's socket, a file that is no
/// socket) is never touched.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An admitted client, as blocking std streams for the reader and writer threads.
pub enum Stream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Listener {
    /// Binds `address` if it is a safe place to serve from; must run inside the tokio
    /// runtime.
    pub fn bind(address: &ListenAddress, access: Access) -> anyhow::Result<Listener> {
        let me = nix::unistd::geteuid().as_raw();
        let socket = match address {
            ListenAddress::Tcp(addr) => {
                if !addr.ip().to_canonical().is_loopback() && !access.remote_clients {
                    bail!(
                        "refusing to listen on {addr}: not a loopback address; anyone who can \
                         reach it could debug every process latch may trace. Listen on \
                         127.0.0.1 and reach it through an SSH tunnel (ssh -L \
                         PORT:127.0.0.1:PORT HOST), or pass --allow-remote-clients if you mean it"
                    );
                }
                let listener = std::net::TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on {addr}"))?;
                listener.set_nonblocking(true)?;
                Socket::Tcp(tokio::net::TcpListener::from_std(listener)?)
            }
            ListenAddress::Unix(path) => {
                let mode = if access.other_users { 0o666 } else { 0o600 };
                let listener = bind_unix(path, mode, me)?;
                let file = SocketFile(path.clone());
                listener.set_nonblocking(true)?;
                Socket::Unix(tokio::net::UnixListener::from_std(listener)?, file)
            }
        };
        Ok(Listener { socket, access, me })
    }

    /// The first line on stdout says where to connect (port 0 picks a free port); what
    /// the access options open up is said on stderr.
    pub fn announce(&self, multiclient: bool) -> anyhow::Result<()> {
        let (shown, exposed) = match &self.socket {
            Socket::Tcp(listener) => {
                let addr = listener.local_addr()?;
                (addr.to_string(), !addr.ip().to_canonical().is_loopback())
            }
            Socket::Unix(_, file) => (format!("unix:{}", file.0.display()), false),
        };
        let mode = if multiclient {
            "clients one after another (--accept-multiclient)"
        } else {
            "one client"
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "latch: DAP server listening at {shown}, for {mode}")?;
        stdout.flush()?;
        let rights = format!(
            "stop, read and kill every process this latch (uid {}, {}) may attach to",
            self.me,
            crate::procfs::user_name(self.me)
        );
        if exposed {
            crate::logging::tell_user(&format!(
                "warning: --allow-remote-clients: {shown} is reachable from other machines, \
                 and latch cannot know who a client from another machine is: whoever reaches \
                 this port can {rights}. Prefer 127.0.0.1 and an SSH tunnel"
            ));
        }
        if self.access.other_users {
            crate::logging::tell_user(&format!(
                "warning: --allow-other-users: clients are not checked; any user on this \
                 machine who can connect to {shown} can {rights}"
            ));
        }
        Ok(())
    }

    /// The next client this listener's access admits. Others are closed before anything
    /// they sent is read, and reported on stderr and in the log.
    pub async fn accept(&self) -> std::io::Result<Stream> {
        loop {
            let (stream, from, peer) = match &self.socket {
                Socket::Tcp(listener) => {
                    let (stream, from) = listener.accept().await?;
                    let peer = peer::tcp_peer(stream.local_addr()?, from);
                    (Pending::Tcp(stream), format!("from {from}"), peer)
                }
                Socket::Unix(listener, file) => {
                    let (stream, _) = listener.accept().await?;
                    let peer = peer::unix_peer(&stream);
                    (
                        Pending::Unix(stream),
                        format!("on unix:{}", file.0.display()),
                        peer,
                    )
                }
            };
            match self.access.admits(&peer, self.me) {
                Ok(()) => {
                    tracing::info!(%from, %peer, "client connected");
                    return stream.into_blocking();
                }
                Err(why) => {
                    crate::logging::tell_user(&format!("refused a client {from}, {peer}: {why}"));
                    drop(stream);
                }
            }
        }
    }
}

/// A client accepted but not yet admitted.
enum Pending {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl Pending {
    fn into_blocking(self) -> std::io::Result<Stream> {
        Ok(match self {
            Pending::Tcp(stream) => {
                let stream = stream.into_std()?;
                stream.set_nonblocking(false)?;
                // DAP is request/response: small writes must not wait for Nagle.
                stream.set_nodelay(true)?;
                Stream::Tcp(stream)
            }
            Pending::Unix(stream) => {
                let stream = stream.into_std()?;
                stream.set_nonblocking(false)?;
                Stream::Unix(stream)
            }
        })
    }
}

impl Stream {
    /// Reading and writing halves for the transport's two threads. The writer's half
    /// shuts the socket down when dropped, which also ends the reader's blocking read.
    pub fn split(self) -> anyhow::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        Ok(match self {
            Stream::Tcp(stream) => {
                let reader = stream.try_clone()?;
                (Box::new(reader), Box::new(ShutdownOnDrop(stream)))
            }
            Stream::Unix(stream) => {
                let reader = stream.try_clone()?;
                (Box::new(reader), Box::new(ShutdownOnDrop(stream)))
            }
        })
    }
}

trait Shutdown {
    fn shutdown_both(&self);
}

impl Shutdown for std::net::TcpStream {
    fn shutdown_both(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

impl Shutdown for std::os::unix::net::UnixStream {
    fn shutdown_both(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

struct ShutdownOnDrop<S: Shutdown + Write>(S);

impl<S: Shutdown + Write> Write for ShutdownOnDrop<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<S: Shutdown + Write> Drop for ShutdownOnDrop<S> {
    fn drop(&mut self) {
        self.0.shutdown_both();
    }
}

/// Binds a unix socket at `path` with `mode`, after checking that no other user can
/// swap it. The mode is set between bind and listen: until listen, connecting is
/// refused, so no one gets in while the file still has the umask's mode.
fn bind_unix(path: &Path, mode: u32, me: u32) -> anyhow::Result<std::os::unix::net::UnixListener> {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    check_socket_directory(path, me)?;
    remove_stale_socket(path)?;
    let fail =
        |err: &dyn std::fmt::Display| anyhow::anyhow!("cannot listen on {}: {err}", path.display());
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|err| fail(&err))?;
    let address = UnixAddr::new(path).map_err(|err| fail(&err))?;
    socket::bind(fd.as_raw_fd(), &address).map_err(|err| fail(&err))?;
    let ready = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|err| fail(&err))
        .and_then(|()| socket::listen(&fd, Backlog::MAXCONN).map_err(|err| fail(&err)));
    if let Err(err) = ready {
        let _ = std::fs::remove_file(path);
        return Err(err);
    }
    Ok(std::os::unix::net::UnixListener::from(fd))
}

/// The rule for where latch creates a socket: every directory on the way to it belongs
/// to latch's user or to root, and no one else may write to it unless it is sticky (as
/// /tmp is). Whoever can write to one of them could rename the socket, or a directory
/// above it, away and put their own in its place, and clients would talk to them.
/// Both the path as given and where its symbolic links lead are checked.
fn check_socket_directory(path: &Path, me: u32) -> anyhow::Result<()> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    let Some(parent) = absolute.parent() else {
        bail!("cannot listen on {}: not a file path", path.display());
    };
    let mut checked = HashSet::new();
    for prefix in parent.ancestors() {
        let real = prefix.canonicalize().with_context(|| {
            format!("cannot listen on {}: {}", path.display(), prefix.display())
        })?;
        for dir in real.ancestors() {
            if !checked.insert(dir.to_path_buf()) {
                continue;
            }
            let metadata = std::fs::metadata(dir).with_context(|| {
                format!("cannot listen on {}: {}", path.display(), dir.display())
            })?;
            if let Some(problem) = directory_problem(metadata.uid(), metadata.mode(), me) {
                bail!(
                    "refusing to create the socket {}: {} {problem}, who could replace the \
                     socket with their own. Use a directory only you can write to, such as \
                     $XDG_RUNTIME_DIR (/run/user/{me})",
                    path.display(),
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

/// Why a directory owned by `owner` with `mode` is no safe place for a socket of
/// user `me`, if it is not.
fn directory_problem(owner: u32, mode: u32, me: u32) -> Option<String> {
    const STICKY: u32 = 0o1000;
    const WRITABLE_BY_OTHERS: u32 = 0o022;
    if owner != me && owner != 0 {
        return Some(format!(
            "belongs to uid {owner} ({})",
            crate::procfs::user_name(owner)
        ));
    }
    if mode & WRITABLE_BY_OTHERS != 0 && mode & STICKY == 0 {
        return Some(format!(
            "is writable by other users (mode {:04o}, without the sticky bit)",
            mode & 0o7777
        ));
    }
    None
}

/// A socket file left by a latch that died is replaced; one that a live server answers
/// on, or any other file, is not.
fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !metadata.file_type().is_socket() {
        bail!(
            "cannot listen on {}: it exists and is not a socket; choose another path",
            path.display()
        );
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!(
            "cannot listen on {}: another server is listening there",
            path.display()
        );
    }
    std::fs::remove_file(path)
        .with_context(|| format!("removing the stale socket {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let loopback = |port| ListenAddress::Tcp(SocketAddr::from(([127, 0, 0, 1], port)));
        assert_eq!("4711".parse(), Ok(loopback(4711)));
        assert_eq!(":4711".parse(), Ok(loopback(4711)));
        assert_eq!("127.0.0.1:0".parse(), Ok(loopback(0)));
        assert_eq!(
            "0.0.0.0:9".parse(),
            Ok(ListenAddress::Tcp(SocketAddr::from(([0, 0, 0, 0], 9))))
        );
        assert_eq!(
            "unix:/tmp/l.sock".parse(),
            Ok(ListenAddress::Unix("/tmp/l.sock".into()))
        );
        assert!("unix:".parse::<ListenAddress>().is_err());
        let err = "no-port".parse::<ListenAddress>().unwrap_err();
        assert!(err.contains("HOST:PORT"), "{err}");
        assert!("127.0.0.1:99999".parse::<ListenAddress>().is_err());
    }

    fn local(uid: u32) -> Peer {
        Peer::Local { uid, pid: None }
    }

    #[test]
    fn only_the_same_user_and_root_by_default() {
        let strict = Access::default();
        // A latch run by uid 1000.
        assert_eq!(strict.admits(&local(1000), 1000), Ok(()));
        assert_eq!(
            strict.admits(&local(0), 1000),
            Ok(()),
            "root may always connect"
        );
        let refused = strict.admits(&local(1001), 1000).unwrap_err();
        assert!(refused.contains("--allow-other-users"), "{refused}");
        assert!(refused.contains("uid 1000"), "{refused}");
        // A latch run by root.
        assert_eq!(strict.admits(&local(0), 0), Ok(()));
        let refused = strict.admits(&local(65534), 0).unwrap_err();
        assert!(refused.contains("only root"), "{refused}");
        // Whoever cannot be named is refused.
        assert!(strict.admits(&Peer::Unknown("gone".into()), 0).is_err());
        let refused = strict.admits(&Peer::Remote, 0).unwrap_err();
        assert!(refused.contains("--allow-remote-clients"), "{refused}");
    }

    #[test]
    fn the_options_open_what_they_say() {
        let others = Access {
            other_users: true,
            remote_clients: false,
        };
        assert_eq!(others.admits(&local(65534), 0), Ok(()));
        assert_eq!(others.admits(&Peer::Unknown("gone".into()), 0), Ok(()));
        let remote = Access {
            other_users: false,
            remote_clients: true,
        };
        assert_eq!(remote.admits(&Peer::Remote, 0), Ok(()));
        // Local users are still checked when remote clients are let in.
        assert!(remote.admits(&local(65534), 0).is_err());
        assert!(remote.admits(&Peer::Unknown("gone".into()), 0).is_err());
    }

    #[test]
    fn safe_socket_directories() {
        let me = 1000;
        assert_eq!(directory_problem(me, 0o40700, me), None);
        assert_eq!(directory_problem(me, 0o40755, me), None);
        assert_eq!(directory_problem(0, 0o40755, me), None);
        // /tmp: anyone may write, but only owners may rename or remove.
        assert_eq!(directory_problem(0, 0o41777, me), None);
        let problem = directory_problem(0, 0o40777, me).unwrap();
        assert!(problem.contains("0777"), "{problem}");
        assert!(
            directory_problem(me, 0o40775, me).is_some(),
            "group-writable"
        );
        let problem = directory_problem(1001, 0o40700, me).unwrap();
        assert!(problem.contains("uid 1001"), "{problem}");
        assert!(
            directory_problem(1001, 0o41777, me).is_some(),
            "another user's sticky directory is still theirs"
        );
    }
}
