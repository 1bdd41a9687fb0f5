//! latch: attach to running Linux processes and serve them over the Debug Adapter Protocol.
//!
//! The rooms, each with one job: [`dap`] is the wire protocol and nothing else,
//! [`session`] the DAP state machine, [`ptrace`] every ptrace call on one OS thread,
//! [`procfs`] reading `/proc`, [`waitfor`] finding a process as it starts,
//! [`symbols`] turning addresses into names, [`transport`] moving frames, and [`cli`]
//! the terminal commands.

pub mod cli;
pub mod dap;
pub mod logging;
pub mod priority;
pub mod procfs;
pub mod ptrace;
pub mod session;
pub mod symbols;
pub mod transport;
pub mod waitfor;

use std::process::ExitCode;

use anyhow::Context;

/// `latch dap`: one DAP session over stdin/stdout. The target is detached on every way
/// out: disconnect, end of input, SIGTERM/SIGINT/SIGHUP, and panics (the backend's drop
/// detaches while the stack unwinds).
pub fn run_dap_stdio() -> anyhow::Result<ExitCode> {
    install_panic_logging();
    let (backend, backend_events) =
        ptrace::Backend::spawn().context("starting the ptrace thread")?;
    let (outbox, writer) = transport::spawn_writer(std::io::stdout());
    let input = transport::spawn_reader(std::io::stdin());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let symbols = symbols::SymbolService::spawn().context("starting the symbols thread")?;
    let session = session::Session::new(outbox, backend.handle(), symbols);
    let reason = runtime.block_on(session.run(input, backend_events));
    tracing::info!(?reason, "session ended");
    drop(runtime);
    drop(backend);
    let _ = writer.join();
    Ok(ExitCode::SUCCESS)
}

fn install_panic_logging() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        default(info);
    }));
}
