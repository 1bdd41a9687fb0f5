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

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompletionsArguments {
    text: String,
    /// 1-based, in UTF-16 code units (DAP's default `columnsStartAt1`).
    column: u64,
    #[serde(default)]
    frame_id: Option<i64>,
}

/// The byte offset in `text` of 1-based UTF-16 `column` (clamped to the text).
fn byte_offset(text: &str, column: u64) -> usize {
    let mut units = 0u64;
    for (offset, c) in text.char_indices() {
        if units + 1 >= column {
            return offset;
        }
        units += c.len_utf16() as u64;
    }
    text.len()
}

/// The 1-based UTF-16 column of byte `offset` in `text`.
fn column_of(text: &str, offset: usize) -> u64 {
    text[..offset].encode_utf16().count() as u64 + 1
}

impl Session {
    /// `completions` in the debug console: names in scope, or fields after `.`/`->`,
    /// for the word before the cursor. Nothing to offer (running, no frame, no DWARF)
    /// is an empty list, not an error: the console just shows no suggestions.
    pub(super) async fn completions(&mut self, request: &Request) {
        let Some(args) = self.arguments::<CompletionsArguments>(request) else {
            return;
        };
        let query = match (&self.target, args.frame_id) {
            (Some(target), Some(frame)) if target.stopped => self.frame_query(frame),
            _ => None,
        };
        let cursor = byte_offset(&args.text, args.column);
        let before = &args.text[..cursor];
        let found = match query {
            Some(query) => self.symbols.completions(query, before.to_string()).await,
            None => Vec::new(),
        };
        let context = crate::expr::completion::context(before);
        let start = column_of(&args.text, context.partial_start);
        let length = context.partial.encode_utf16().count();
        let targets: Vec<serde_json::Value> = found
            .into_iter()
            .map(|(label, kind)| {
                json!({ "label": label, "type": kind, "start": start, "length": length })
            })
            .collect();
        self.out
            .respond(Response::ok(request, Some(json!({ "targets": targets }))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_utf16_and_one_based() {
        assert_eq!(byte_offset("abc", 1), 0);
        assert_eq!(byte_offset("abc", 4), 3);
        assert_eq!(byte_offset("abc", 99), 3);
        assert_eq!(byte_offset("é.x", 3), 3);
        assert_eq!(byte_offset("😀x", 3), 4);
        assert_eq!(column_of("😀x", 4), 3);
        assert_eq!(column_of("abc", 0), 1);
    }
}
