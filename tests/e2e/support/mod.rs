//! The end-to-end test harness: fixtures, targets, /proc, the DAP client.

#![allow(dead_code)]

pub mod checks;
pub mod code;
pub mod dap;
pub mod fixtures;
pub mod godump;
pub mod procfs;
pub mod schema;
pub mod server;
pub mod stackfix;
pub mod target;
pub mod text;
pub mod values;

pub use dap::Dap;
pub use fixtures::Fixture;
pub use target::Target;

/// What a test does when it cannot run (fail, unless LATCH_ALLOW_SKIP outside CI); the
/// unit tests share the file.
#[path = "../../skip.rs"]
pub mod skip;
pub use skip::skip_or_fail;

/// True when the DAP schema loads; otherwise fails (or, with LATCH_ALLOW_SKIP, says why
/// the test is skipped).
pub fn ready() -> bool {
    match schema::schema() {
        Ok(_) => true,
        Err(e) => {
            skip_or_fail(&format!(
                "the DAP schema every message is validated against does not load: {e}"
            ));
            false
        }
    }
}

/// Return from the test early when the harness cannot run and skipping is allowed.
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
