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
