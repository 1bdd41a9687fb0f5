//! The end-to-end test harness: fixtures, targets, /proc, the DAP client.

#![allow(dead_code)]

pub mod checks;
pub mod dap;
pub mod fixtures;
pub mod procfs;
pub mod schema;
pub mod server;
pub mod stackfix;
pub mod target;

pub use dap::Dap;
pub use fixtures::Fixture;
pub use target::Target;

/// Says loudly why a test is skipped; under CI=true it fails instead.
pub fn skip_or_fail(why: &str) {
    if fixtures::in_ci() {
        panic!("CI=true and {why}");
    }
    eprintln!("\n*** SKIPPED: {why} ***\n");
}

/// True when the DAP schema is present; otherwise says why the test is skipped
/// (or fails under CI=true).
pub fn ready() -> bool {
    match schema::schema() {
        Ok(_) => true,
        Err(e) => {
            skip_or_fail(&format!(
                "the DAP schema is not available ({e}); set LATCH_DAP_SCHEMA or put it at ../shared/dap/"
            ));
            false
        }
    }
}

/// Return from the test early (loudly) when the harness cannot run.
#[macro_export]
macro_rules! require_harness {
    () => {
        if !$crate::support::ready() {
            return;
        }
    };
}

pub fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n)
}

/// The id of the thread of a `thread`/`stopped` event.
pub fn thread_id(event: &serde_json::Value) -> i64 {
    event["body"]["threadId"]
        .as_i64()
        .unwrap_or_else(|| panic!("no threadId in {event}"))
}

#[cfg(test)]
mod selftest;
