//! latch: attach to running Linux processes and serve them over the Debug Adapter Protocol.
//!
//! The rooms, each with one job: [`dap`] is the wire protocol and nothing else,
//! [`session`] the DAP state machine, [`ptrace`] every ptrace call on one OS thread,
//! [`procfs`] reading `/proc`, [`waitfor`] finding a process as it starts,
//! [`symbols`] turning addresses into names, [`values`] what variables hold (from DWARF,
//! pure), [`expr`] the expression language users type, [`disassembly`] instructions around
//! an address (pure), [`transport`] moving frames,
//! [`server`] serving clients on stdio or a socket, [`listener`] where a socket listens
//! and whom it lets in, [`peer`] who is on the other end of a socket, [`syscall_names`] the
//! x86-64 system calls by number, [`cli`] the terminal commands, and [`words`] English
//! for counts.

pub mod children;
pub mod cli;
pub mod dap;
pub mod disassembly;
pub mod expr;
pub mod listener;
pub mod logging;
pub mod peer;
pub mod priority;
pub mod procfs;
pub mod ptrace;
pub mod server;
pub mod session;
pub mod symbols;
pub mod syscall_names;
pub mod terminal;
pub mod transport;
pub mod values;
pub mod waitfor;
pub mod words;

/// What a unit test does when it cannot run; the end-to-end tests share the file.
#[cfg(test)]
#[path = "../../tests/skip.rs"]
pub(crate) mod test_skip;

use std::process::ExitCode;

/// `latch dap` over stdin/stdout.
pub fn run_dap_stdio() -> anyhow::Result<ExitCode> {
    install_panic_logging();
    server::run_stdio()
}

/// `latch dap --listen`: over a socket, one client, or one after another.
pub fn run_dap_listen(
    address: listener::ListenAddress,
    multiclient: bool,
    access: listener::Access,
) -> anyhow::Result<ExitCode> {
    install_panic_logging();
    server::run_listen(address, multiclient, access)
}

fn install_panic_logging() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        default(info);
    }));
}
