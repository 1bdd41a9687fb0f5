//! `readMemory`: the target's bytes for an editor's memory view ("View binary data"),
//! as the program sees them: bytes under latch's breakpoints read as the original ones.
//! Reads stop at the first unreadable page and say how much could not be read.

use base64::Engine as _;
use serde_json::json;

use super::Session;
use crate::dap::{Request, Response};

/// The most one request reads: an editor pages through memory, and a `count` of 2^31
/// must not make latch allocate and read gigabytes.
const MAX_READ: u64 = 1 << 20;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadMemoryArguments {
    memory_reference: String,
    #[serde(default)]
    offset: Option<i64>,
    count: u64,
}

/// An address as latch writes it in `memoryReference`s (`0x...`), or in decimal.
pub(super) fn parse_reference(reference: &str) -> Option<u64> {
    let text = reference.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

impl Session {
    pub(super) async fn read_memory(&mut self, request: &Request) {
        let Some(args) = self.arguments::<ReadMemoryArguments>(request) else {
            return;
        };
        if self.require_target(request).is_none() {
            return;
        }
        let Some(base) = parse_reference(&args.memory_reference) else {
            let text = format!(
                "memoryReference {:?} is not an address: give one latch sent (as 0x7ffc1234)",
                args.memory_reference
            );
            return self.fail(request, "not an address", &text);
        };
        let Some(address) = base.checked_add_signed(args.offset.unwrap_or(0)) else {
            let text = format!(
                "{} plus offset {} is outside the address space",
                args.memory_reference,
                args.offset.unwrap_or(0)
            );
            return self.fail(request, "not an address", &text);
        };
        if args.count > MAX_READ {
            let text = format!(
                "count {} is more than latch reads at once ({} bytes): ask for smaller pieces",
                args.count, MAX_READ
            );
            return self.fail(request, "too much at once", &text);
        }
        // Never past the end of the address space.
        let count = args.count.min(u64::MAX - address);
        let bytes = self.backend.read_memory(address, count as usize).await;
        let mut body = json!({ "address": format!("{address:#x}") });
        if !bytes.is_empty() {
            body["data"] = json!(base64::engine::general_purpose::STANDARD.encode(&bytes));
        }
        let unreadable = args.count - bytes.len() as u64;
        if unreadable > 0 {
            body["unreadableBytes"] = json!(unreadable);
        }
        self.out.respond(Response::ok(request, Some(body)));
    }
}
