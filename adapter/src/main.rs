//! The `latch` command line: parse, set up logging, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// latch attaches to running Linux processes and serves them to editors over the Debug
/// Adapter Protocol.
#[derive(Parser)]
#[command(name = "latch", version, about, propagate_version = true)]
struct Cli {
    /// Write logs to this file (nothing but DAP ever goes to stdout).
    #[arg(long, global = true, value_name = "PATH")]
    log_file: Option<PathBuf>,
    /// What to log, in tracing's EnvFilter syntax, e.g. `latch=debug,latch::dap=trace`.
    #[arg(long = "log", global = true, value_name = "FILTER")]
    log_filter: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Debug Adapter Protocol on stdin/stdout (what editors run), or on a socket.
    Dap(DapOptions),
    /// Attach to a process from the terminal, print its threads, and detach.
    Attach(latch::cli::AttachOptions),
    /// List the processes latch may attach to.
    Ps(latch::cli::PsOptions),
    /// Run by the editor's terminal for a launch with `console: integratedTerminal`:
    /// waits until latch traces it, then starts the program.
    #[command(hide = true)]
    RunInTerminal(latch::terminal::RunInTerminalOptions),
}

#[derive(clap::Args)]
struct DapOptions {
    /// Serve DAP on a socket instead of stdio: HOST:PORT, a bare PORT (binds 127.0.0.1),
    /// or unix:PATH. Port 0 picks a free port; the first line on stdout says which.
    /// Only clients running as latch's own user or as root are served: a unix socket
    /// checks the client's credentials (and is created mode 0600, in a directory no other
    /// user can write to), TCP finds the user of the client's socket in /proc/net/tcp.
    /// Any other client is closed before it is read, and named on stderr.
    #[arg(long, value_name = "ADDRESS", conflicts_with = "connect")]
    listen: Option<latch::listener::ListenAddress>,
    /// Carry DAP between stdin/stdout and the unix socket of a child session that another
    /// latch offered (`latchChildSession`, see `followForks`): for editors that can start
    /// a child session only by running a program.
    #[arg(long, value_name = "SOCKET")]
    connect: Option<std::path::PathBuf>,
    /// With --listen: serve clients one after another. A client leaving keeps the target
    /// attached for the next one; latch detaches when it is stopped (Ctrl-C, SIGTERM).
    #[arg(long, requires = "listen")]
    accept_multiclient: bool,
    /// With --listen: serve clients of every user, not only latch's own and root's (a
    /// unix socket is then created mode 0666). Whoever connects can stop, read and kill
    /// every process this latch may attach to, with latch's rights: as root, that is
    /// every process on the machine.
    #[arg(long, requires = "listen")]
    allow_other_users: bool,
    /// With --listen: allow an address other machines can reach (e.g. 0.0.0.0:4711), and
    /// serve clients from other machines, whose user latch cannot know. Anyone who reaches
    /// the port can then debug what latch may debug; prefer 127.0.0.1 and an SSH tunnel
    /// (ssh -L 4711:127.0.0.1:4711 HOST). Clients on this machine are still checked.
    #[arg(long, requires = "listen")]
    allow_remote_clients: bool,
}

fn main() -> ExitCode {
    // First of all: next to a target that saturates every CPU, even parsing the command
    // line waits for a time slice.
    latch::priority::prefer_latch_over_busy_targets();
    latch::priority::answer_promptly();
    let cli = Cli::parse();
    let logging_to_stderr = cli.log_file.is_none();
    if let Err(err) = latch::logging::init(cli.log_file.as_deref(), cli.log_filter.as_deref()) {
        latch::logging::print_error(&format!("{err:#}"));
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Dap(DapOptions {
            listen: Some(address),
            accept_multiclient,
            allow_other_users,
            allow_remote_clients,
            ..
        }) => latch::run_dap_listen(
            address,
            accept_multiclient,
            latch::listener::Access {
                other_users: allow_other_users,
                remote_clients: allow_remote_clients,
            },
        ),
        Command::Dap(DapOptions {
            connect: Some(socket),
            ..
        }) => latch::children::bridge(&socket),
        Command::Dap(DapOptions { listen: None, .. }) => latch::run_dap_stdio(),
        Command::Attach(options) => latch::cli::attach(options),
        Command::Ps(options) => latch::cli::ps(options),
        Command::RunInTerminal(options) => return latch::terminal::run(options),
    };
    // Every way out above has detached the target: what may be left is finishing the
    // symbol cache, so that the next run finds what this one inflated.
    latch::symbols::cache::finish_writing(Duration::from_secs(5));
    match result {
        Ok(code) => code,
        Err(err) => {
            // The log file keeps it with the rest of the run; the terminal gets one line.
            if !logging_to_stderr {
                tracing::error!("{err:#}");
            }
            latch::logging::print_error(&format!("{err:#}"));
            ExitCode::FAILURE
        }
    }
}
