//! `evaluate`: an expression the user typed (watch, hover, debug console, clipboard),
//! evaluated in a stopped frame from DWARF and memory alone (the `expr` part on the
//! symbols thread), never by running code in the target. The answer is shown as a
//! variable is, and expands the same way.

use serde_json::json;

use super::Session;
use crate::dap::{Request, Response};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct EvaluateArguments {
    expression: String,
    #[serde(default)]
    frame_id: Option<i64>,
    #[serde(default)]
    format: Option<super::stacks::ValueFormat>,
}

impl Session {
    pub(super) async fn evaluate(&mut self, request: &Request) {
        let Some(args) = self.arguments::<EvaluateArguments>(request) else {
            return;
        };
        match self.require_target(request) {
            Some(target) if target.stopped => {}
            Some(_) => {
                return self.fail(
                    request,
                    "not stopped",
                    "the program is running: pause it (or stop at a breakpoint) to evaluate",
                )
            }
            None => return,
        }
        let Some(frame_id) = args.frame_id else {
            return self.fail(
                request,
                "no frame",
                "an expression is evaluated in a frame of a stopped thread: select one in the \
                 call stack (the request had no frameId)",
            );
        };
        let Some(query) = self.frame_query(frame_id) else {
            return self.fail(
                request,
                "no such frame",
                &super::stacks::stale_frame(frame_id),
            );
        };
        let hex = super::stacks::ValueFormat::hex(args.format);
        match self.symbols.evaluate(query, args.expression, hex).await {
            Ok(row) => {
                let mut body = json!({ "result": row.value });
                super::stacks::add_value_details(&mut body, &row);
                self.out.respond(Response::ok(request, Some(body)));
            }
            Err(why) => self.fail(request, "cannot evaluate", &why),
        }
    }
}
