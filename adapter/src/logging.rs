//! tracing set-up: to a file when asked, else to stderr; never to stdout, which belongs
//! to DAP.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// Whether the log goes to a file (`--log-file`) rather than to stderr.
static LOG_IN_FILE: AtomicBool = AtomicBool::new(false);

/// A line the person running latch must see whatever `--log` filters (a refused client,
/// a risky option): on stderr, and in the log file when there is one.
pub fn tell_user(line: &str) {
    if LOG_IN_FILE.load(Ordering::Relaxed) {
        tracing::warn!("{line}");
    }
    eprintln!("latch: {line}");
}

/// A command's failure, for the person who typed it: one line, `latch: error: ...`,
/// not a log record (no timestamp, no level, no module), so it reads the same in a
/// terminal, a pipe and a script's log. "error:" is red only on a terminal, and never
/// when `NO_COLOR` is set (<https://no-color.org>).
pub fn print_error(message: &str) {
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let label = if colour {
        "\x1b[1;31merror:\x1b[0m"
    } else {
        "error:"
    };
    eprintln!("latch: {label} {message}");
}

pub fn init(log_file: Option<&Path>, filter: Option<&str>) -> anyhow::Result<()> {
    let default = if log_file.is_some() {
        "latch=debug"
    } else {
        "latch=warn"
    };
    let filter = EnvFilter::try_new(filter.unwrap_or(default))
        .with_context(|| format!("invalid --log filter {:?}", filter.unwrap_or_default()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true);
    match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
            LOG_IN_FILE.store(true, Ordering::Relaxed);
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}
