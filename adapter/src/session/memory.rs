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

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WriteMemoryArguments {
    memory_reference: String,
    #[serde(default)]
    offset: Option<i64>,
    data: String,
    #[serde(default)]
    allow_partial: Option<bool>,
}

impl Session {
    /// `writeMemory`: the bytes go in through the ptrace thread, the only writer of the
    /// target; under an inserted breakpoint they become the code the breakpoint puts
    /// back when it goes. Without `allowPartial`, a write that cannot be done whole is
    /// refused (nothing written is then the first page's failure).
    pub(super) async fn write_memory(&mut self, request: &Request) {
        let Some(args) = self.arguments::<WriteMemoryArguments>(request) else {
            return;
        };
        if self.require_target(request).is_none() {
            return;
        }
        let Some(address) = parse_reference(&args.memory_reference)
            .and_then(|base| base.checked_add_signed(args.offset.unwrap_or(0)))
        else {
            let text = format!(
                "memoryReference {:?} with offset {} is not an address: give one latch sent \
                 (as 0x7ffc1234)",
                args.memory_reference,
                args.offset.unwrap_or(0)
            );
            return self.fail(request, "not an address", &text);
        };
        let bytes = match base64::engine::general_purpose::STANDARD.decode(args.data.trim()) {
            Ok(bytes) => bytes,
            Err(err) => {
                let text = format!("data is not base64 ({err}): send the bytes base64-encoded");
                return self.fail(request, "not base64", &text);
            }
        };
        if bytes.len() as u64 > MAX_READ {
            let text = format!(
                "{} bytes is more than latch writes at once ({MAX_READ}): write smaller pieces",
                bytes.len()
            );
            return self.fail(request, "too much at once", &text);
        }
        if address.checked_add(bytes.len() as u64).is_none() {
            let text = format!(
                "{address:#x} plus {} bytes is past the address space",
                bytes.len()
            );
            return self.fail(request, "not an address", &text);
        }
        let wanted = bytes.len();
        match self.backend.write_memory(address, bytes).await {
            Ok(written) if written == wanted || args.allow_partial == Some(true) => {
                self.out.respond(Response::ok(
                    request,
                    Some(json!({ "offset": 0, "bytesWritten": written })),
                ));
            }
            Ok(written) => {
                let text = format!(
                    "only {written} of {wanted} bytes at {address:#x} could be written (the rest \
                     is not writable memory); set allowPartial to accept part of a write"
                );
                self.fail(request, "partly written", &text);
            }
            Err(why) => self.fail(request, "cannot write memory", &why),
        }
    }

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

/// The most instructions one `disassemble` answers.
const MAX_INSTRUCTIONS: u64 = 10_000;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DisassembleArguments {
    memory_reference: String,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    instruction_offset: Option<i64>,
    instruction_count: u64,
    #[serde(default)]
    resolve_symbols: Option<bool>,
}

impl Session {
    /// `disassemble`: instructions around an address (VS Code's disassembly view asks for
    /// some before the pc and some from it), with their function and source line, read
    /// as the program's own bytes (never latch's `int3`s).
    pub(super) async fn disassemble(&mut self, request: &Request) {
        let Some(args) = self.arguments::<DisassembleArguments>(request) else {
            return;
        };
        if self.require_target(request).is_none() {
            return;
        }
        let anchor = parse_reference(&args.memory_reference)
            .and_then(|base| base.checked_add_signed(args.offset.unwrap_or(0)));
        let Some(anchor) = anchor else {
            let text = format!(
                "memoryReference {:?} (plus offset) is not an address: give one latch sent \
                 (a frame's instructionPointerReference)",
                args.memory_reference
            );
            return self.fail(request, "not an address", &text);
        };
        if args.instruction_count > MAX_INSTRUCTIONS {
            let text = format!(
                "instructionCount {} is more than latch disassembles at once ({MAX_INSTRUCTIONS})",
                args.instruction_count
            );
            return self.fail(request, "too much at once", &text);
        }
        let count = args.instruction_count as usize;
        let first = args.instruction_offset.unwrap_or(0);
        let memory = self.bytes_around(anchor, first, count).await;
        let mut read = |address: u64, len: usize| memory.read(address, len);
        let lines = crate::disassembly::window(&mut read, anchor, first, count);
        let places = if args.resolve_symbols.unwrap_or(true) {
            let addresses = lines
                .iter()
                .filter(|l| l.valid)
                .map(|l| l.address)
                .collect();
            self.symbols.instruction_places(addresses).await
        } else {
            Vec::new()
        };
        let mut places = places.into_iter();
        let instructions: Vec<serde_json::Value> = lines
            .iter()
            .map(|line| {
                let mut body = json!({
                    "address": format!("{:#x}", line.address),
                    "instruction": line.text,
                });
                if !line.bytes.is_empty() {
                    let bytes: Vec<String> =
                        line.bytes.iter().map(|b| format!("{b:02x}")).collect();
                    body["instructionBytes"] = json!(bytes.join(" "));
                }
                if !line.valid {
                    body["presentationHint"] = json!("invalid");
                    return body;
                }
                if let Some(Some(place)) = places.next() {
                    if let Some(function) = place.function {
                        body["symbol"] = json!(function);
                    }
                    if let Some(file) = place.file {
                        let name = file.rsplit('/').next().unwrap_or(&file).to_string();
                        body["location"] = json!({ "name": name, "path": file });
                        body["line"] = json!(place.line);
                    }
                }
                body
            })
            .collect();
        self.out.respond(Response::ok(
            request,
            Some(json!({ "instructions": instructions })),
        ));
    }

    /// The readable bytes a disassembly window needs, read ahead (the decoder reads
    /// synchronously): before the anchor from the earliest readable start, and after it.
    async fn bytes_around(&self, anchor: u64, first: i64, count: usize) -> Bytes {
        const MAX_INSTRUCTION: u64 = 15;
        let before = first.min(0).unsigned_abs();
        let reach = before
            .saturating_mul(MAX_INSTRUCTION)
            .saturating_add(64)
            .min(1 << 16);
        let mut start = anchor.saturating_sub(reach);
        let mut bytes = Vec::new();
        // As `disassembly::window` does: halve the window until it starts in readable
        // memory (a read stops at the first unreadable page).
        while start < anchor {
            bytes = self
                .backend
                .read_memory(start, (anchor - start) as usize)
                .await;
            if bytes.len() as u64 == anchor - start {
                break;
            }
            bytes.clear();
            start += ((anchor - start) / 2).max(1);
        }
        if bytes.is_empty() {
            start = anchor;
        }
        let after = (first.max(0) as u64 + count as u64)
            .saturating_mul(MAX_INSTRUCTION)
            .min(1 << 20);
        bytes.extend(self.backend.read_memory(anchor, after as usize).await);
        Bytes { start, bytes }
    }
}

/// Bytes read ahead from `start`: a read outside them is a read of unreadable memory.
struct Bytes {
    start: u64,
    bytes: Vec<u8>,
}

impl Bytes {
    fn read(&self, address: u64, len: usize) -> Vec<u8> {
        let Some(from) = address.checked_sub(self.start) else {
            return Vec::new();
        };
        let Ok(from) = usize::try_from(from) else {
            return Vec::new();
        };
        if from >= self.bytes.len() {
            return Vec::new();
        }
        self.bytes[from..from.saturating_add(len).min(self.bytes.len())].to_vec()
    }
}
