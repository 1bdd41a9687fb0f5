//! tracing set-up: to a file when asked, else to stderr; never to stdout, which belongs
//! to DAP.

use std::path::Path;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

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
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}
