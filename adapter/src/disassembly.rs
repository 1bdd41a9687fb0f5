//! Instructions around an address, as an editor's disassembly view asks for them: so many
//! before it and so many from it. Pure: it reads bytes through a closure and knows
//! nothing of processes or DAP; tested on byte strings.
//!
//! x86 instructions have no fixed length, so the instructions *before* an address are
//! found by decoding forward from some bytes earlier and keeping the start that lands on
//! the address itself (decoding resynchronises within a few instructions).

use iced_x86::{Decoder, DecoderOptions, Formatter as _, GasFormatter, Instruction};

/// The longest x86-64 instruction.
const MAX_INSTRUCTION: u64 = 15;
/// Bytes decoded before the first instruction wanted, so that decoding has settled on
/// the real instruction boundaries by then.
const SYNC_MARGIN: u64 = 64;

/// One line of a disassembly: an instruction, or `valid: false` for bytes that could
/// not be read or decoded (shown `(bad)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub address: u64,
    pub bytes: Vec<u8>,
    pub text: String,
    pub valid: bool,
}

/// Instructions `first..first + count` counted from the one at `anchor` (0), negative
/// `first` reaching before it; exactly `count` lines. `read(address, len)` gives the
/// readable bytes from `address` (fewer, or none, where memory ends).
pub fn window(
    read: &mut dyn FnMut(u64, usize) -> Vec<u8>,
    anchor: u64,
    first: i64,
    count: usize,
) -> Vec<Line> {
    let mut lines = Vec::with_capacity(count);
    let before = usize::try_from(first.min(0).unsigned_abs()).unwrap_or(usize::MAX);
    let wanted_before = before.min(count);
    if wanted_before > 0 {
        lines.extend(lines_before(read, anchor, before, wanted_before));
    }
    let skip = usize::try_from(first.max(0)).unwrap_or(usize::MAX);
    let after = count - lines.len();
    if after > 0 {
        lines.extend(lines_from(read, anchor, skip, after));
    }
    lines
}

/// The `take` earliest of the `before` instructions that end at `anchor`.
fn lines_before(
    read: &mut dyn FnMut(u64, usize) -> Vec<u8>,
    anchor: u64,
    before: usize,
    take: usize,
) -> Vec<Line> {
    let reach = (before as u64)
        .saturating_mul(MAX_INSTRUCTION)
        .saturating_add(SYNC_MARGIN)
        .min(1 << 16);
    // Readable bytes must reach the anchor for their instructions to lead up to it; where
    // the window starts in unreadable memory (before a mapping), it is halved until not.
    let mut start = anchor.saturating_sub(reach);
    let mut bytes = read(start, (anchor - start) as usize);
    while (bytes.len() as u64) < anchor - start && anchor - start > 1 {
        start += (anchor - start) / 2;
        bytes = read(start, (anchor - start) as usize);
    }
    let found = if bytes.len() as u64 == anchor - start {
        (0..MAX_INSTRUCTION)
            .take_while(|&skip| skip < bytes.len() as u64)
            .filter_map(|skip| {
                let from = start + skip;
                let decoded = decode_all(&bytes[skip as usize..], from);
                // Settled on the real boundaries: an instruction ends exactly at the anchor.
                let lands = decoded
                    .last()
                    .is_some_and(|last| last.address + last.bytes.len() as u64 == anchor);
                lands.then_some(decoded)
            })
            .next()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let known: Vec<Line> = found.into_iter().rev().take(before).collect();
    // Too few before it (the start of readable memory): the rest are shown as bad bytes,
    // one address each, ahead of those found.
    let missing = before - known.len();
    let first_known = known.last().map_or(anchor, |l| l.address);
    let mut lines: Vec<Line> = (0..missing)
        .map(|i| bad(first_known.wrapping_sub((missing - i) as u64)))
        .collect();
    lines.extend(known.into_iter().rev());
    lines.truncate(take);
    lines
}

/// `take` instructions from the `skip`th at `anchor` on.
fn lines_from(
    read: &mut dyn FnMut(u64, usize) -> Vec<u8>,
    anchor: u64,
    skip: usize,
    take: usize,
) -> Vec<Line> {
    let wanted = skip.saturating_add(take);
    let len = (wanted as u64).saturating_mul(MAX_INSTRUCTION).min(1 << 20) as usize;
    let bytes = read(anchor, len);
    let mut decoded = decode_all(&bytes, anchor);
    // An instruction cut by the end of readable memory is not one.
    decoded.truncate(wanted);
    let mut lines: Vec<Line> = decoded.into_iter().skip(skip).collect();
    let mut next = lines.last().map_or(anchor + bytes.len() as u64, |l| {
        l.address + l.bytes.len() as u64
    });
    while lines.len() < take {
        lines.push(bad(next));
        next = next.wrapping_add(1);
    }
    lines
}

/// Every whole instruction in `bytes`, which start at `address`; undecodable bytes are
/// one bad line each.
fn decode_all(bytes: &[u8], address: u64) -> Vec<Line> {
    let mut decoder = Decoder::with_ip(64, bytes, address, DecoderOptions::NONE);
    let mut formatter = GasFormatter::new();
    // As objdump and gdb write them.
    formatter.options_mut().set_uppercase_hex(false);
    let mut instruction = Instruction::default();
    let mut lines = Vec::new();
    while decoder.can_decode() {
        let at = decoder.position();
        decoder.decode_out(&mut instruction);
        if instruction.is_invalid() {
            // Cut short by the end of the bytes: not an instruction we can show.
            if at + MAX_INSTRUCTION as usize > bytes.len() {
                break;
            }
            lines.push(Line {
                address: address + at as u64,
                bytes: vec![bytes[at]],
                text: "(bad)".into(),
                valid: false,
            });
            decoder.set_position(at + 1).ok();
            decoder.set_ip(address + at as u64 + 1);
            continue;
        }
        let mut text = String::new();
        formatter.format(&instruction, &mut text);
        lines.push(Line {
            address: instruction.ip(),
            bytes: bytes[at..at + instruction.len()].to_vec(),
            text,
            valid: true,
        });
    }
    lines
}

fn bad(address: u64) -> Line {
    Line {
        address,
        bytes: Vec::new(),
        text: "(bad)".into(),
        valid: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// main.worker of a Go program (go1.19), at 0x482800: 17 instructions.
    const WORKER: [u8; 83] = [
        0x49, 0x3b, 0x66, 0x10, // cmp 0x10(%r14),%rsp
        0x76, 0x3c, // jbe
        0x48, 0x83, 0xec, 0x20, // sub $0x20,%rsp
        0x48, 0x89, 0x6c, 0x24, 0x18, // mov %rbp,0x18(%rsp)
        0x48, 0x8d, 0x6c, 0x24, 0x18, // lea 0x18(%rsp),%rbp
        0x48, 0x89, 0x44, 0x24, 0x10, // mov %rax,0x10(%rsp)
        0xe8, 0xc2, 0xff, 0xff, 0xff, // call
        0x48, 0x89, 0x44, 0x24, 0x08, // mov %rax,0x8(%rsp)
        0xb8, 0x40, 0x42, 0x0f, 0x00, // mov $0xf4240,%eax
        0xe8, 0xf3, 0x77, 0xfd, 0xff, // call
        0x48, 0x8b, 0x4c, 0x24, 0x08, // mov 0x8(%rsp),%rcx
        0x48, 0x01, 0x0d, 0x27, 0x78, 0x0d, 0x00, // add %rcx,...(%rip)
        0x48, 0x8b, 0x44, 0x24, 0x10, // mov 0x10(%rsp),%rax
        0x66, 0x90, // xchg %ax,%ax
        0xeb, 0xd7, // jmp
        0x48, 0x89, 0x44, 0x24, 0x08, // mov %rax,0x8(%rsp)
        0xe8, 0xf4, 0x88, 0xfd, 0xff, // call
        0x48, 0x8b, 0x44, 0x24, 0x08, // mov 0x8(%rsp),%rax
        0xeb, 0xad, // jmp
    ];
    const BASE: u64 = 0x482800;
    /// Where each instruction starts, as objdump shows them.
    const STARTS: [u64; 17] = [
        0x482800, 0x482804, 0x482806, 0x48280a, 0x48280f, 0x482814, 0x482819, 0x48281e, 0x482823,
        0x482828, 0x48282d, 0x482832, 0x482839, 0x48283e, 0x482840, 0x482842, 0x482847,
    ];

    /// Memory holding the function and nothing else: reads stop at its ends.
    fn memory() -> impl FnMut(u64, usize) -> Vec<u8> {
        move |address: u64, len: usize| {
            let end = BASE + WORKER.len() as u64;
            if address < BASE || address >= end {
                return Vec::new();
            }
            let from = (address - BASE) as usize;
            WORKER[from..(from + len).min(WORKER.len())].to_vec()
        }
    }

    fn addresses(lines: &[Line]) -> Vec<u64> {
        lines.iter().map(|l| l.address).collect()
    }

    #[test]
    fn forward_from_an_instruction() {
        let lines = window(&mut memory(), 0x482823, 0, 4);
        assert_eq!(addresses(&lines), STARTS[8..12]);
        assert_eq!(lines[0].text, "mov $0xf4240,%eax");
        assert_eq!(lines[0].bytes, [0xb8, 0x40, 0x42, 0x0f, 0x00]);
        assert!(lines.iter().all(|l| l.valid));
    }

    #[test]
    fn before_an_instruction_lands_on_the_real_boundaries() {
        // The memory starts at the function: decoding from its first byte is the only
        // start that can be read; it must still end exactly at the anchor.
        let lines = window(&mut memory(), 0x48282d, -5, 8);
        assert_eq!(addresses(&lines), STARTS[5..13]);
        assert_eq!(lines[4].text.split_whitespace().next(), Some("call"));
    }

    #[test]
    fn past_the_readable_start_and_end_lines_are_bad_not_missing() {
        let lines = window(&mut memory(), BASE, -2, 3);
        assert_eq!(lines.len(), 3);
        assert_eq!(addresses(&lines), [BASE - 2, BASE - 1, BASE]);
        assert!(!lines[0].valid && !lines[1].valid && lines[2].valid);
        let lines = window(&mut memory(), 0x482847, 0, 5);
        assert_eq!(lines.len(), 5);
        assert_eq!(addresses(&lines)[..3], [0x482847, 0x48284c, 0x482851]);
        assert!(lines[..3].iter().all(|l| l.valid));
        assert!(lines[3..].iter().all(|l| !l.valid));
    }

    #[test]
    fn a_window_entirely_after_or_before_the_anchor() {
        let lines = window(&mut memory(), BASE, 3, 2);
        assert_eq!(addresses(&lines), STARTS[3..5]);
        let lines = window(&mut memory(), 0x482840, -4, 2);
        assert_eq!(addresses(&lines), STARTS[10..12]);
    }

    proptest::proptest! {
        /// Any bytes, any window: exactly the lines asked for, in address order, and no
        /// panic.
        #[test]
        fn any_window_has_its_count_of_lines(
            code in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            at in 0u64..220,
            first in -40i64..40,
            count in 0usize..60,
        ) {
            let base = 0x1000u64;
            let mut read = |address: u64, len: usize| -> Vec<u8> {
                if address < base || address >= base + code.len() as u64 {
                    return Vec::new();
                }
                let from = (address - base) as usize;
                code[from..(from + len).min(code.len())].to_vec()
            };
            let lines = window(&mut read, base + at, first, count);
            proptest::prop_assert_eq!(lines.len(), count);
            for pair in lines.windows(2) {
                proptest::prop_assert!(pair[0].address < pair[1].address, "{:?}", lines);
            }
        }
    }

    #[test]
    fn unreadable_memory_is_all_bad_lines() {
        let mut nothing = |_: u64, _: usize| Vec::new();
        let lines = window(&mut nothing, 0x1000, -2, 4);
        assert_eq!(addresses(&lines), [0xffe, 0xfff, 0x1000, 0x1001]);
        assert!(lines.iter().all(|l| !l.valid && l.text == "(bad)"));
    }
}
