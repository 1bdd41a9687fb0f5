//! What a test does when it cannot run: one rule for the unit tests (included by
//! `adapter/src/lib.rs`) and the end-to-end tests (by `tests/e2e/support/mod.rs`).
//!
//! cargo prints `ok` for a test that returned early and hides its stderr, so a skip
//! that only said so on stderr once let a fresh clone report 90 untested tests as
//! passed. A test that cannot run therefore fails, naming what is missing and the
//! opt-out: `LATCH_ALLOW_SKIP=1` lets it return instead, loudly, on a developer's
//! machine. In CI (see [`in_ci`]) nothing may be skipped, opt-out or not.

#![allow(dead_code)]

/// The variable that lets a test that cannot run pass without running (outside CI).
pub const ALLOW_SKIP: &str = "LATCH_ALLOW_SKIP";

/// A flag variable is on when set to anything but empty, `0` or `false`: `CI=true` (what
/// CI services set), `CI=1` and `CI=yes` all count, `CI=` and `CI=false` do not.
fn flag(name: &str) -> bool {
    is_on(std::env::var(name).ok().as_deref())
}

fn is_on(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// True when the tests run in CI, where every test must run.
pub fn in_ci() -> bool {
    flag("CI")
}

/// True when a test that cannot run may return without running: only when the person
/// running the tests asked for it, and never in CI.
pub fn skip_allowed() -> bool {
    flag(ALLOW_SKIP) && !in_ci()
}

/// A test cannot run because of `why`: fails (naming the opt-out), or, when skipping is
/// allowed, says so on stderr and returns so that the test can return.
pub fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("this test cannot run in CI, where every test must run: {why}");
    }
    if !skip_allowed() {
        panic!("this test cannot run: {why}\n(set {ALLOW_SKIP}=1 to let such tests pass without running)");
    }
    eprintln!("\n*** SKIPPED ({ALLOW_SKIP} is set): {why} ***\n");
}

#[cfg(test)]
mod tests {
    #[test]
    fn flag_values() {
        for on in ["true", "1", "yes", "TRUE"] {
            assert!(super::is_on(Some(on)), "{on:?}");
        }
        for off in [
            None,
            Some(""),
            Some("0"),
            Some("false"),
            Some("False"),
            Some(" "),
        ] {
            assert!(!super::is_on(off), "{off:?}");
        }
    }
}
