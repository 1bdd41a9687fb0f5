//! The schema generated from `@vscode/debugprotocol` judges real latch messages: it is
//! what a clone with nothing beside it validates against, so it must accept what latch
//! writes in a session and reject those messages with one fault put in.

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::schema::{generated_or_skip, reference, Schema};
use crate::support::{thread_id, Dap, Fixture, Target};

/// The first message in `log` that `pick` accepts; panics naming `what` otherwise.
fn find<'a>(log: &'a [Value], what: &str, pick: impl Fn(&Value) -> bool) -> &'a Value {
    log.iter()
        .find(|m| pick(m))
        .unwrap_or_else(|| panic!("latch wrote no {what} in the session"))
}

/// `message` with `change` applied to a copy.
fn altered(message: &Value, change: impl FnOnce(&mut Value)) -> Value {
    let mut m = message.clone();
    change(&mut m);
    m
}

fn rejects(schema: &Schema, which: &str, what: &str, message: &Value) {
    assert!(
        schema.check_message(message).is_err(),
        "the {which} DAP schema accepted {what}: {message}"
    );
}

#[test]
fn generated_schema_judges_real_messages() {
    require_harness!();
    let Some(generated) = generated_or_skip() else {
        return;
    };
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let mut dap = Dap::start();
    dap.initialize();
    dap.attach_pid(target.pid, true);
    let stopped = dap.next_event("stopped", crate::support::secs(10));
    dap.threads();
    let trace = dap.ok("stackTrace", json!({"threadId": thread_id(&stopped)}));
    let frame = &trace["body"]["stackFrames"][0]["id"];
    dap.ok("scopes", json!({"frameId": frame}));
    dap.disconnect(json!({}));
    target.assert_runs_on(false);

    let log = dap.log.clone();
    let mut schemas = vec![("generated", generated)];
    // Where the reference is beside the checkout (CI), it must judge the same.
    schemas.extend(reference().map(|r| ("reference", r)));
    for (which, schema) in &schemas {
        for message in &log {
            if let Err(e) = schema.check_message(message) {
                panic!("the {which} DAP schema rejects what latch wrote: {message}\n{e}");
            }
        }
    }

    let trace = find(&log, "stackTrace response with frames", |m| {
        m["command"] == "stackTrace" && m["body"]["stackFrames"][0].is_object()
    });
    let stopped = find(&log, "stopped event", |m| m["event"] == "stopped");
    let threads = find(&log, "threads response", |m| m["command"] == "threads");
    let bad = [
        (
            "a stackTrace response without stackFrames",
            altered(trace, |m| {
                m["body"].as_object_mut().unwrap().remove("stackFrames");
            }),
        ),
        (
            "a stack frame without a name",
            altered(trace, |m| {
                m["body"]["stackFrames"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("name");
            }),
        ),
        (
            "a stack frame's line as a string",
            altered(trace, |m| m["body"]["stackFrames"][0]["line"] = json!("12")),
        ),
        (
            "a stopped event without reason",
            altered(stopped, |m| {
                m["body"].as_object_mut().unwrap().remove("reason");
            }),
        ),
        (
            "a stopped event's threadId as a string",
            altered(stopped, |m| m["body"]["threadId"] = json!("1")),
        ),
        (
            "a threads response whose threads are not an array",
            altered(threads, |m| m["body"]["threads"] = json!({})),
        ),
        (
            "a response whose success is a string",
            altered(threads, |m| m["success"] = json!("true")),
        ),
    ];
    for (which, schema) in &schemas {
        for (what, message) in &bad {
            rejects(schema, which, what, message);
        }
    }
}
