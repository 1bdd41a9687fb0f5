//! Malformed DAP never crashes latch (it answers the next valid request) and
//! never harms the attached target.

use serde_json::json;

use crate::require_harness;
use crate::support::checks::*;
use crate::support::{secs, Dap, Fixture, Target};

/// Attaches (running), sends `garbage`, then checks latch still answers,
/// still reports the target truthfully, and detaches cleanly.
fn survives(garbage: &[&[u8]]) {
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let mut dap = Dap::attached(target.pid, false);
    for g in garbage {
        dap.send_raw(g);
        // A valid request after each piece of garbage is answered.
        assert_threads_match(&mut dap, target.pid);
        assert!(
            dap.is_running(),
            "latch died after {:?}",
            String::from_utf8_lossy(g)
        );
    }
    assert_traced_and_running(&target, dap.pid());
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn invalid_json_is_survived() {
    require_harness!();
    survives(&[
        b"Content-Length: 5\r\n\r\n{abc}",
        b"Content-Length: 2\r\n\r\n[1",
        b"Content-Length: 4\r\n\r\nnull",
    ]);
}

#[test]
fn bad_headers_are_survived() {
    require_harness!();
    survives(&[
        b"Content-Length: abc\r\n\r\n",
        b"Content-Length: -3\r\n\r\n",
        b"this is not a header\r\n\r\n",
    ]);
}

#[test]
fn missing_content_length_is_survived() {
    require_harness!();
    survives(&[b"Content-Type: application/json\r\n\r\n"]);
}

#[test]
fn huge_content_length_is_survived() {
    require_harness!();
    survives(&[b"Content-Length: 1000000000000\r\n\r\n"]);
}

#[test]
fn messages_that_are_not_requests_are_survived() {
    require_harness!();
    let mut frames = Vec::new();
    for body in [
        json!([1, 2, 3]),
        json!({"seq": 90, "type": "request"}),
        json!({"seq": 91, "type": "event", "event": "stopped"}),
        json!({"seq": "x", "type": "request", "command": "threads"}),
    ] {
        let b = body.to_string();
        frames.push(format!("Content-Length: {}\r\n\r\n{b}", b.len()).into_bytes());
    }
    let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_slice()).collect();
    survives(&refs);
}

#[test]
fn unknown_command_gets_an_error_response() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let mut dap = Dap::attached(target.pid, false);
    let r = dap.request("frobnicate", json!({"x": 1}));
    assert_eq!(r["success"], false, "{r}");
    let text = format!("{} {}", r["message"], r["body"]).to_lowercase();
    assert!(
        text.contains("unknown") || text.contains("not supported"),
        "{r}"
    );
    assert_threads_match(&mut dap, target.pid);
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn wrong_argument_types_while_attached_are_survived() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let mut dap = Dap::attached(target.pid, false);
    for (command, args, argument) in [
        ("pause", json!({"threadId": "main"}), Some("threadId")),
        ("continue", json!({"threadId": [1]}), Some("threadId")),
        ("threads", json!("nonsense"), None),
        // Must not be taken as terminateDebuggee: true (nor end the session).
        (
            "disconnect",
            json!({"terminateDebuggee": "yes"}),
            Some("terminateDebuggee"),
        ),
    ] {
        let seq = dap.send(command, args.clone());
        let r = dap.response(seq, secs(10));
        assert!(dap.is_running(), "latch died after {command} {args}");
        if let Some(argument) = argument {
            assert_error(&r, &[argument]);
        }
        assert_threads_match(&mut dap, target.pid);
    }
    assert_traced_and_running(&target, dap.pid());
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}
