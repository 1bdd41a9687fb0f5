//! Where a breakpoint on a Go function goes, found without walking DWARF entries: the
//! function's [entry, end) from Go's own table, and the one sequence of `.debug_line`
//! that opens at its entry, run alone under its unit's header. The address is the one
//! `functions` finds through the unit's entries (the same rows, the same
//! `UnitData::after_prologue`, proven on every function of two Go toolchains' binaries
//! by the tests below), in about a millisecond (inflating `.debug_line`) where the
//! runtime unit's entries take about 8 ms to walk: this is what a Go program's panic
//! breakpoints use, on the way to the first stop of an attach.

use gimli::RunTimeEndian;

use super::functions::{name_components, name_matches};
use super::lines::UnitData;
use super::module::ModuleInfo;

/// Where `break FUNC` goes for each function called `name` in Go's table (matched as
/// `functions` matches names)
/// (file numbering): none in a module without Go's table or without the name in it;
/// `None` when the module has it but not the line rows to place it by (no DWARF, or
/// code no line program opens a sequence for): then the DWARF path must answer.
pub fn functions_named(info: &ModuleInfo, name: &str) -> Option<Vec<u64>> {
    let Some(go) = info.go_lines() else {
        return Some(Vec::new());
    };
    let query = name_components(name);
    go.functions_named(|n| name_matches(&query, n))
        .into_iter()
        .map(|(entry, _)| after_prologue(info, entry))
        .collect()
}

/// Where `break FUNC` goes for the Go function starting at `entry`.
pub(super) fn after_prologue(info: &ModuleInfo, entry: u64) -> Option<u64> {
    let (start, end) = info.go_lines()?.function_range(entry)?;
    if start != entry {
        return None;
    }
    let debug_line = info.debug_line()?;
    // A match of the opcode's bytes elsewhere (inside another opcode's operands) is
    // not where a sequence opens: the next match is tried.
    sequences_opening(debug_line, entry).find_map(|program| {
        let section = gimli::DebugLine::new(&program, RunTimeEndian::Little);
        let program = section
            .program(gimli::DebugLineOffset(0), 8, None, None)
            .ok()?;
        let data = UnitData::first_sequence(program);
        // The unit's DWARF entry ends the function where its code ends; Go's table, at
        // the next function (alignment padding included). The Go linker gives every
        // function a sequence of its own, ending where its code does. Its first row
        // may come after the entry (generated code: `type:.eq.*`, `init`), and then
        // no sequence holds the entry, as in the DWARF path.
        let (_, sequence_end) = data.sequence_from(entry).filter(|s| s.0 < end)?;
        Some(data.after_prologue(info, entry, end.min(sequence_end)))
    })
}

/// Line programs of one sequence each: the one that opens at `entry`, with its unit's
/// header. The Go linker opens each function's sequence with `DW_LNE_set_address` to
/// its entry, right after the previous sequence's `DW_LNE_end_sequence` (or first in
/// its program), so the bytes of those two opcodes find it without running any
/// program; and a sequence's rows do not depend on the ones before it (the end of a
/// sequence resets every register of the line state machine), so running it alone
/// gives the rows that running its unit's whole program gives (for the runtime's
/// unit, a few milliseconds instead of microseconds).
fn sequences_opening(debug_line: &'static [u8], entry: u64) -> impl Iterator<Item = Vec<u8>> {
    const END_SEQUENCE: [u8; 3] = [0, 1, 1];
    // Extended opcode: 0, length 9 (ULEB128), DW_LNE_set_address, 8-byte address.
    let mut opcode = vec![0u8, 9, gimli::DW_LNE_set_address.0];
    opcode.extend_from_slice(&entry.to_le_bytes());
    let found: Vec<usize> = memchr::memmem::find_iter(debug_line, &opcode).collect();
    found.into_iter().filter_map(move |at| {
        let (start, opcodes, end, offset_size) = program_around(debug_line, at)?;
        let after_end = at >= 3 && debug_line.get(at - 3..at) == Some(&END_SEQUENCE[..]);
        if at != opcodes && !after_end {
            return None;
        }
        // The header, then the opcodes from the sequence's first on, under a
        // unit_length that says so.
        let mut program = debug_line.get(start..opcodes)?.to_vec();
        program.extend_from_slice(debug_line.get(at..end)?);
        let length_at = if offset_size == 8 { 4 } else { 0 };
        let length = (program.len() - length_at - offset_size) as u64;
        program[length_at..length_at + offset_size]
            .copy_from_slice(&length.to_le_bytes()[..offset_size]);
        Some(program)
    })
}

/// The line program whose bytes hold `offset`: where it starts, where its opcodes
/// start, where it ends, and its offset size (4 or 8), from each program's
/// unit_length and header_length (DWARF 2 to 5).
fn program_around(debug_line: &[u8], offset: usize) -> Option<(usize, usize, usize, usize)> {
    let word = |at: usize, len: usize| -> Option<u64> {
        let bytes = debug_line.get(at..at.checked_add(len)?)?;
        let mut value = [0u8; 8];
        value[..len].copy_from_slice(bytes);
        Some(u64::from_le_bytes(value))
    };
    let start = program_start(debug_line, offset)?;
    let (length, offset_size, after_length) = match word(start, 4)? {
        0xffff_ffff => (word(start + 4, 8)?, 8, start + 12),
        length => (length, 4, start + 4),
    };
    let end = after_length.checked_add(usize::try_from(length).ok()?)?;
    let version = word(after_length, 2)?;
    // DWARF 5 puts address_size and segment_selector_size before header_length.
    let header_length_at = after_length + 2 + if version >= 5 { 2 } else { 0 };
    let header_length = usize::try_from(word(header_length_at, offset_size)?).ok()?;
    let opcodes = (header_length_at + offset_size).checked_add(header_length)?;
    (opcodes <= offset && offset < end).then_some((start, opcodes, end, offset_size))
}

/// The offset of the line program whose bytes hold `offset`, from the programs'
/// lengths (each begins with its unit_length, 32- or 64-bit DWARF).
fn program_start(debug_line: &[u8], offset: usize) -> Option<usize> {
    let mut start = 0usize;
    while start < debug_line.len() {
        let word = |at: usize, len: usize| -> Option<u64> {
            let bytes = debug_line.get(at..at.checked_add(len)?)?;
            let mut value = [0u8; 8];
            value[..len].copy_from_slice(bytes);
            Some(u64::from_le_bytes(value))
        };
        let (length, header) = match word(start, 4)? {
            0xffff_ffff => (word(start + 4, 8)?, 12),
            length => (length, 4),
        };
        let end = start
            .checked_add(header)?
            .checked_add(usize::try_from(length).ok()?)?;
        if offset < end {
            return Some(start);
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::functions;
    use super::super::gopclntab::tests::{build_fixture, toolchain};
    use super::super::lines::Kind;
    use super::*;

    /// The fast path and the DWARF entries agree: for the panic breakpoints' functions
    /// through `functions::functions_named` itself, and for every function that has a
    /// DWARF entry, package runtime and main included, through the address
    /// `functions` takes for a concrete function (`after_prologue` of its entry's
    /// [low, high) in its unit's rows).
    fn assert_agrees_with_dwarf_entries(data: &'static [u8]) {
        let info = ModuleInfo::parse(data, None, Path::new("/"));
        for name in ["runtime.fatalpanic", "runtime.gopanic"] {
            let dwarf: Vec<u64> = functions::functions_named(&info, name)
                .iter()
                .map(|f| f.address)
                .collect();
            let fast = super::functions_named(&info, name).expect(name);
            assert_eq!(fast, dwarf, "{name}");
        }
        let go = info.go_lines().unwrap();
        let tables = info.line_tables().unwrap();
        let (mut checked, mut moved, mut packages) = (0, 0, std::collections::BTreeMap::new());
        let (mut disagree, mut unanswered) = (Vec::new(), Vec::new());
        for unit in 0..tables.starts.len() as u32 {
            let Some(data) = tables.unit_data(unit) else {
                continue;
            };
            for scope in data
                .scopes
                .scopes
                .iter()
                .filter(|s| s.kind == Kind::Function)
            {
                if go.function_range(scope.low).map(|r| r.0) != Some(scope.low) {
                    continue;
                }
                let name = go
                    .source_frames(scope.low)
                    .and_then(|frames| frames.last()?.function.clone())
                    .unwrap_or_default();
                let dwarf = data.after_prologue(&info, scope.low, scope.high);
                let fast = after_prologue(&info, scope.low);
                checked += 1;
                moved += usize::from(dwarf != scope.low);
                let package = name.split('.').next().unwrap_or("").to_string();
                *packages.entry(package).or_insert(0) += 1;
                // None leaves it to the DWARF path (a function whose code the line
                // programs do not cover, e.g. assembly with no line rows); an answer
                // must be the DWARF path's.
                let Some(fast) = fast else {
                    unanswered.push(name);
                    continue;
                };
                if fast != dwarf {
                    disagree.push(format!(
                        "{name} at {:#x}: DWARF {dwarf:#x}, fast {fast:x?}",
                        scope.low
                    ));
                }
            }
        }
        assert!(
            disagree.is_empty(),
            "{} of {checked} functions disagree:\n{}",
            disagree.len(),
            disagree[..disagree.len().min(20)].join("\n")
        );
        assert!(
            packages.get("runtime").is_some_and(|&n| n > 1000),
            "{packages:?}"
        );
        assert!(packages.get("main").is_some_and(|&n| n > 0), "{packages:?}");
        assert!(
            moved * 2 > checked,
            "only {moved} of {checked} past a prologue"
        );
        assert!(
            unanswered.len() * 100 < checked,
            "the fast path found {} of {checked} functions not: {unanswered:?}",
            unanswered.len()
        );
        eprintln!(
            "{checked} functions, {moved} past a prologue: the fast path agrees on all but \
             {unanswered:?}, which it leaves to DWARF; by package: {packages:?}"
        );
    }

    #[test]
    fn go_1_19_fast_path_agrees_with_dwarf_entries() {
        if let Some(go) = toolchain("LATCH_GO", Some("/usr/bin/go")) {
            assert_agrees_with_dwarf_entries(build_fixture(&go, "prologue-go119"));
        }
    }

    #[test]
    fn current_go_fast_path_agrees_with_dwarf_entries() {
        if let Some(go) = toolchain("LATCH_CURRENT_GO", None) {
            assert_agrees_with_dwarf_entries(build_fixture(&go, "prologue-current"));
        }
    }
}
