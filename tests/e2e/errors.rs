//! Attach errors: each a clear error response, and no harm to any process.

use std::process::Command;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::checks::*;
use crate::support::procfs;
use crate::support::{secs, Dap, Fixture, Target};

/// A fresh session's answer to `attach` with `args`.
fn attach_error(args: Value) -> Value {
    let mut dap = Dap::start();
    dap.initialize();
    let r = dap.attach(args);
    // The session survives a failed attach.
    assert!(dap.threads().is_empty(), "threads after a failed attach");
    dap.disconnect(json!({}));
    r
}

#[test]
fn attach_nonexistent_pid() {
    require_harness!();
    // A pid that existed a moment ago and has been reaped.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    assert!(procfs::process_state(pid).is_none());
    let r = attach_error(json!({"pid": pid}));
    assert_error(&r, &["no process", &pid.to_string()]);
}

#[test]
fn attach_invalid_pids() {
    require_harness!();
    for pid in [json!(0), json!(-5), json!("abc"), json!("")] {
        let r = attach_error(json!({"pid": pid}));
        assert_error(&r, &["pid"]);
    }
}

#[test]
fn attach_without_pid_or_waitfor() {
    require_harness!();
    let r = attach_error(json!({}));
    assert_eq!(r["success"], false, "{r}");
    assert_error(&r, &["pid"]);
}

#[test]
fn attach_to_latch_itself() {
    require_harness!();
    let mut dap = Dap::start();
    dap.initialize();
    let pid = dap.pid();
    let r = dap.attach(json!({"pid": pid}));
    assert_error(&r, &["latch itself"]);
    assert!(dap.is_running());
    dap.disconnect(json!({}));
}

#[test]
fn attach_to_zombie() {
    require_harness!();
    // A child of this test that has exited and is not reaped yet.
    let zombie = Target::spawn(Command::new("true"));
    assert!(
        procfs::wait_for(secs(5), || procfs::process_state(zombie.pid) == Some('Z')),
        "no zombie"
    );
    let r = attach_error(json!({"pid": zombie.pid}));
    assert_error(&r, &["zombie"]);
}

#[test]
fn attach_already_traced() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let mut first = Dap::attached(target.pid, false);
    let tracer = procfs::tracer_pid(target.pid).unwrap();
    assert_ne!(tracer, 0);
    let mut second = Dap::start();
    second.initialize();
    let r = second.attach(json!({"pid": target.pid}));
    let text = assert_error(&r, &["already traced"]);
    assert!(
        text.contains(&tracer.to_string()) || text.contains(&first.pid().to_string()),
        "error does not name the tracer ({tracer}, latch {}): {text}",
        first.pid()
    );
    let tracer_name = procfs::process_comm(tracer).unwrap_or_default();
    assert!(
        text.contains("latch") || (!tracer_name.is_empty() && text.contains(&tracer_name)),
        "error does not name the tracer's program: {text}"
    );
    second.disconnect(json!({}));
    // The first session is unharmed.
    assert_threads_match(&mut first, target.pid);
    first.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn second_attach_in_one_session() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let other = Target::start(Fixture::Sleeping, &["1"]);
    let mut dap = Dap::attached(target.pid, false);
    let seq = dap.send("attach", json!({"pid": other.pid}));
    let r = dap.response(seq, secs(10));
    assert_error(&r, &["already attached"]);
    assert_eq!(
        procfs::tracer_pid(other.pid),
        Some(0),
        "the second target was traced"
    );
    assert_threads_match(&mut dap, target.pid);
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
    other.assert_runs_on(false);
}

#[test]
fn requests_needing_a_target_before_attach() {
    require_harness!();
    let mut dap = Dap::start();
    dap.initialize();
    for (command, args) in [
        ("pause", json!({"threadId": 1})),
        ("continue", json!({"threadId": 1})),
    ] {
        let r = dap.request(command, args);
        assert_error(&r, &["not attached"]);
    }
    assert!(dap.threads().is_empty());
    dap.disconnect(json!({}));
}

#[test]
fn wrong_argument_types_name_the_argument() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["1"]);
    let cases = [
        (json!({"pid": true}), "pid"),
        (
            json!({"pid": target.pid, "stopOnEntry": "yes"}),
            "stopOnEntry",
        ),
        (json!({"waitFor": 42}), "waitFor"),
        (
            json!({"waitFor": "wf_types", "waitForTimeout": "soon"}),
            "waitForTimeout",
        ),
    ];
    for (args, argument) in cases {
        let r = attach_error(args.clone());
        assert_error(&r, &[argument]);
        assert_eq!(procfs::tracer_pid(target.pid), Some(0), "{args} attached");
    }
    target.assert_runs_on(false);
}

#[test]
fn permission_denied_for_another_user() {
    require_harness!();
    if !std::path::Path::new("/usr/bin/setpriv").exists() {
        crate::support::skip_or_fail("setpriv (util-linux) is not installed");
        return;
    }
    if unsafe { libc::geteuid() } != 0 {
        crate::support::skip_or_fail("the permission test needs root to drop to uid 65534");
        return;
    }
    let target = Target::start(Fixture::Sleeping, &["1"]);
    let prefix = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let mut dap = Dap::start_with(prefix.iter().map(|s| s.to_string()).collect(), &[], false);
    dap.initialize();
    let r = dap.attach(json!({"pid": target.pid}));
    let text = assert_error(&r, &["permission"]);
    // The fix is a command to copy: this latch by its full path, which sudo needs.
    let as_root = format!("`sudo {} dap`", crate::support::dap::latch_bin());
    assert!(text.contains(&as_root), "no {as_root} in: {text}");
    let text = text.to_lowercase();
    assert!(
        text.contains("different user") || text.contains("uid"),
        "the error does not name the cause (another user): {text}"
    );
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}
