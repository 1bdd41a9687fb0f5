//! Serving DAP clients: one over stdin/stdout (what editors run), or over a socket
//! (`latch dap --listen`), one client at a time, and with `--accept-multiclient` one
//! after another while the target stays attached.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::listener::{Access, ListenAddress, Listener};
use crate::ptrace::{Backend, BackendEvent, DetachMode};
use crate::session::{EndReason, HeldTarget, Session, SessionEnd, Signals};
use crate::symbols::SymbolService;
use crate::transport;

/// How long the last messages of a session may take to reach a client that has
/// stopped reading before latch goes on without them.
const WRITER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

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
        let mut end = session.run(input, &mut self.backend_events, signals).await;
        // The target is detached (or held) by now. Every message the session queued
        // reaches the client before its stream closes, unless the client stopped
        // reading: then its writer is blocked in `write` for good, and latch must not
        // wait on it to end (nor ignore a signal meanwhile). A plain thread waits for
        // the writer, not `spawn_blocking`: dropping the runtime would wait for that.
        let (flushed, flushed_rx) = tokio::sync::oneshot::channel();
        let waiter = std::thread::Builder::new()
            .name("latch-dap-flush".into())
            .spawn(move || {
                let _ = writer.join();
                let _ = flushed.send(());
            });
        if waiter.is_ok() {
            tokio::select! {
                _ = flushed_rx => {}
                _ = tokio::time::sleep(WRITER_GRACE) => {
                    tracing::warn!("the client has not read latch's last messages for {WRITER_GRACE:?}; dropping them");
                }
                _ = signals.recv() => {
                    tracing::warn!("signalled while the client's last messages were unread; dropping them");
                    // The signal was taken here: it still ends latch.
                    if end.reason != EndReason::BackendGone {
                        end.reason = EndReason::Signal;
                    }
                }
            }
        }
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
    crate::children::end_all(CHILDREN_GRACE);
    Ok(exit_code(end.reason))
}

/// How long latch's end waits for child sessions to let their processes go.
const CHILDREN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the session of a followed child (see `children.rs`) on its own ptrace thread,
/// symbols thread and runtime, until its client leaves or latch ends.
pub fn run_child(stream: std::os::unix::net::UnixStream, of_launch: bool) -> anyhow::Result<()> {
    let mut adapter = Adapter::start()?;
    let runtime = runtime()?;
    let input = stream
        .try_clone()
        .context("duplicating the child session's socket")?;
    let end = runtime.block_on(async {
        let mut signals = Signals::for_child(crate::children::end_signal());
        let (outbox, writer) = transport::spawn_writer(stream);
        let reader = transport::spawn_reader(input);
        let mut session = Session::new(outbox, adapter.backend.handle(), adapter.symbols.clone());
        if of_launch {
            session = session.child_of_launch();
        }
        let end = session
            .run(reader, &mut adapter.backend_events, &mut signals)
            .await;
        drop(writer);
        end
    });
    tracing::info!(reason = ?end.reason, "child session ended");
    drop(runtime);
    drop(adapter);
    Ok(())
}

/// A session that ended because latch failed ends latch with a failure status.
fn exit_code(reason: EndReason) -> ExitCode {
    match reason {
        EndReason::BackendGone => ExitCode::FAILURE,
        EndReason::Disconnected | EndReason::ClientGone | EndReason::Signal => ExitCode::SUCCESS,
    }
}

/// `latch dap --listen ADDRESS [--accept-multiclient] [--allow-other-users]
/// [--allow-remote-clients]`: only clients `access` admits are served (see
/// [`crate::listener`]).
pub fn run_listen(
    address: ListenAddress,
    multiclient: bool,
    access: Access,
) -> anyhow::Result<ExitCode> {
    let mut adapter = Adapter::start()?;
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let mut signals = Signals::install();
        let listener = Listener::bind(&address, access)?;
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
    drop(runtime);
    drop(adapter);
    crate::children::end_all(CHILDREN_GRACE);
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
    if end.reason == EndReason::BackendGone {
        anyhow::bail!("the ptrace thread ended");
    }
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
                match end.reason {
                    EndReason::Signal => return Ok(()),
                    EndReason::BackendGone => anyhow::bail!("the ptrace thread ended"),
                    EndReason::Disconnected | EndReason::ClientGone => {}
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
