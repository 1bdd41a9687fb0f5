//! Serving DAP clients: one over stdin/stdout (what editors run), or over a socket
//! (`latch dap --listen`), one client at a time, and with `--accept-multiclient` one
//! after another while the target stays attached.

use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{bail, Context};
use tokio::sync::mpsc;

use crate::ptrace::{Backend, BackendEvent, DetachMode};
use crate::session::{EndReason, HeldTarget, Session, SessionEnd, Signals};
use crate::symbols::SymbolService;
use crate::transport;

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

/// What outlives a single client: the ptrace thread, its events and the symbols thread.
struct Adapter {
    backend: Backend,
    backend_events: mpsc::UnboundedReceiver<BackendEvent>,
    symbols: SymbolService,
}

impl Adapter {
    fn start() -> anyhow::Result<Adapter> {
        let (backend, backend_events) = Backend::spawn().context("starting the ptrace thread")?;
        let symbols = SymbolService::spawn().context("starting the symbols thread")?;
        Ok(Adapter {
            backend,
            backend_events,
            symbols,
        })
    }

    /// One DAP session over a byte stream. `multiclient` sessions take over `held` and
    /// hand their target back instead of detaching when the client leaves.
    async fn serve_client<R, W>(
        &mut self,
        input: R,
        output: W,
        multiclient: Option<Option<HeldTarget>>,
        signals: &mut Signals,
    ) -> SessionEnd
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let (outbox, writer) = transport::spawn_writer(output);
        let input = transport::spawn_reader(input);
        let mut session = Session::new(outbox, self.backend.handle(), self.symbols.clone());
        if let Some(held) = multiclient {
            session = session.one_of_many(held);
        }
        let end = session.run(input, &mut self.backend_events, signals).await;
        // Every message the session queued reaches the client before its stream closes.
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        end
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `latch dap`: one DAP session over stdin/stdout. The target is detached on every way
/// out: disconnect, end of input, SIGTERM/SIGINT/SIGHUP, and panics (the backend's drop
/// detaches while the stack unwinds).
pub fn run_stdio() -> anyhow::Result<ExitCode> {
    let mut adapter = Adapter::start()?;
    let runtime = runtime()?;
    // Written through a file of its own rather than `Stdout`, whose line buffering
    // wrote each frame in two pieces, split after its header's blank line, and so
    // woke the client twice per message.
    let output = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .context("duplicating stdout")?;
    let end = runtime.block_on(async {
        let mut signals = Signals::install();
        adapter
            .serve_client(std::io::stdin(), output, None, &mut signals)
            .await
    });
    tracing::info!(reason = ?end.reason, "session ended");
    drop(runtime);
    drop(adapter);
    Ok(ExitCode::SUCCESS)
}

/// `latch dap --listen ADDRESS [--accept-multiclient]`.
pub fn run_listen(address: ListenAddress, multiclient: bool) -> anyhow::Result<ExitCode> {
    let mut adapter = Adapter::start()?;
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let mut signals = Signals::install();
        let listener = Listener::bind(&address).await?;
        listener.announce(multiclient)?;
        let result = if multiclient {
            serve_many(&mut adapter, &listener, &mut signals).await
        } else {
            serve_one(&mut adapter, listener, &mut signals).await
        };
        // A multiclient server may still hold a target nobody is debugging.
        adapter.backend.handle().detach(DetachMode::Run).await;
        result
    });
    if let ListenAddress::Unix(path) = &address {
        let _ = std::fs::remove_file(path);
    }
    drop(runtime);
    drop(adapter);
    result.map(|()| ExitCode::SUCCESS)
}

/// The first client is served and latch ends with it; the socket closes as soon as that
/// client is in, so a second one is refused rather than left waiting.
async fn serve_one(
    adapter: &mut Adapter,
    listener: Listener,
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let stream = tokio::select! {
        stream = listener.accept() => stream?,
        _ = signals.recv() => return Ok(()),
    };
    drop(listener);
    let (input, output) = stream.split()?;
    let end = adapter.serve_client(input, output, None, signals).await;
    tracing::info!(reason = ?end.reason, "session ended");
    Ok(())
}

/// Clients one after another until latch is signalled; the target one client attached
/// stays attached for the next. A client that connects while another is served waits
/// in the listen queue.
async fn serve_many(
    adapter: &mut Adapter,
    listener: &Listener,
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let mut held: Option<HeldTarget> = None;
    loop {
        tokio::select! {
            stream = listener.accept() => {
                let stream = match stream {
                    Ok(stream) => stream,
                    Err(err) => {
                        tracing::warn!("accepting a client failed: {err}");
                        continue;
                    }
                };
                let (input, output) = stream.split()?;
                tracing::info!(held = ?held.as_ref().map(|h| h.pid), "client connected");
                let end = adapter
                    .serve_client(input, output, Some(held.take()), signals)
                    .await;
                tracing::info!(reason = ?end.reason, "client session ended");
                held = end.held;
                if end.reason == EndReason::Signal {
                    return Ok(());
                }
            }
            Some(event) = adapter.backend_events.recv() => {
                if let (BackendEvent::ProcessExited { code }, Some(target)) = (&event, &held) {
                    eprintln!("latch: pid {} exited ({code}) between clients", target.pid);
                    held = None;
                }
            }
            _ = signals.recv() => return Ok(()),
        }
    }
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, PathBuf),
}

/// An accepted client, as blocking std streams for the reader and writer threads.
enum Stream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl Listener {
    async fn bind(address: &ListenAddress) -> anyhow::Result<Listener> {
        match address {
            ListenAddress::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                Ok(Listener::Tcp(listener))
            }
            ListenAddress::Unix(path) => {
                remove_stale_socket(path)?;
                let listener = tokio::net::UnixListener::bind(path)
                    .with_context(|| format!("cannot listen on {}", path.display()))?;
                Ok(Listener::Unix(listener, path.clone()))
            }
        }
    }

    /// The first line on stdout says where to connect (port 0 picks a free port);
    /// a socket reachable from other machines gets a warning on stderr.
    fn announce(&self, multiclient: bool) -> anyhow::Result<()> {
        let (shown, exposed) = match self {
            Listener::Tcp(listener) => {
                let addr = listener.local_addr()?;
                (addr.to_string(), !addr.ip().is_loopback())
            }
            Listener::Unix(_, path) => (format!("unix:{}", path.display()), false),
        };
        let mode = if multiclient {
            "clients one after another (--accept-multiclient)"
        } else {
            "one client"
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "latch: DAP server listening at {shown}, for {mode}")?;
        stdout.flush()?;
        if exposed {
            eprintln!(
                "latch: warning: {shown} is reachable from other machines, and whoever \
                 connects can stop and read every process this latch may attach to. Listen \
                 on 127.0.0.1 (the default for a bare port) and reach it through an SSH \
                 tunnel unless this is what you want"
            );
        }
        Ok(())
    }

    async fn accept(&self) -> std::io::Result<Stream> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                tracing::info!(%peer, "client connected");
                let stream = stream.into_std()?;
                stream.set_nonblocking(false)?;
                // DAP is request/response: small writes must not wait for Nagle.
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
            Listener::Unix(listener, _) => {
                let (stream, _) = listener.accept().await?;
                let stream = stream.into_std()?;
                stream.set_nonblocking(false)?;
                Ok(Stream::Unix(stream))
            }
        }
    }
}

impl Stream {
    /// Reading and writing halves for the transport's two threads. The writer's half
    /// shuts the socket down when dropped, which also ends the reader's blocking read.
    fn split(self) -> anyhow::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
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

/// A socket file left by a latch that died is replaced; one that a live server answers
/// on, or any other file, is not.
fn remove_stale_socket(path: &std::path::Path) -> anyhow::Result<()> {
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
}
