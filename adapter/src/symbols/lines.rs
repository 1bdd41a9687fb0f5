//! Source lines and function names to addresses, and what stepping needs to know about
//! an address: the symbols side of breakpoints and stepping.
//!
//! A breakpoint request names a file and lines. Building addr2line's context over a
//! whole file would parse every unit's DIEs and line program; instead each unit's line
//! program *header* is read once (`LineTables::new`) and its files indexed by base name,
//! and only the units that name the requested file have their line programs run and
//! their scopes read (`UnitData`, kept per unit: stepping asks about nearby addresses
//! over and over). The choices follow gdb 13's `break FILE:LINE` and `break FUNC`, which
//! the tests use as the oracle.
//!
//! Function names are found the same way: the first search by name reads every unit's
//! functions once (their short names only) and remembers which units have which name;
//! a search then reads only those units. A Go program without DWARF has its lines and
//! functions from Go's own table, any other module without DWARF its functions from
//! the ELF symbol tables.
//!
//! Everything here works in the module's file numbering; `locations` translates to the
//! process's addresses through the module's mappings.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use gimli::AttributeValue;
use rustc_hash::FxHashMap;

use super::calls;
use super::module::{ModuleInfo, Reader, SourceFrame};

/// A source line that has code, and every address that starts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedLine {
    /// The line that has code: the requested one or the next line with code (a line
    /// with no code moves forward, as gdb does).
    pub line: u32,
    pub column: Option<u32>,
    /// The file as the debug info names it (full path), the one that matched.
    pub file: String,
    /// Runtime addresses, every place that starts that line: every module, every
    /// inlined copy, every function instance; deduplicated, sorted.
    pub addresses: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineResolution {
    pub requested: u32,
    /// Err: a message for the user.
    pub found: Result<ResolvedLine, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLocation {
    /// Runtime address: past the prologue for a function, the entry of an inlined copy.
    pub address: u64,
    pub name: String,
    pub file: Option<String>,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// The inline chain at pc, innermost first (as stack frames show it).
    pub frames: Vec<SourceFrame>,
    /// Runtime [start, end) of the line-table row range containing pc.
    pub row: Option<(u64, u64)>,
    /// pc is where an is_stmt row starts a line (where gdb stops a `next`).
    pub statement_start: bool,
    /// Runtime [low, high) of the physical function containing pc.
    pub function: Option<(u64, u64)>,
    /// DWARF or Go's table gives pc a source line.
    pub has_lines: bool,
    /// Runtime address where a breakpoint on this function would go (gdb's `break FUNC`).
    pub after_prologue: Option<u64>,
}

const STMT: u8 = 1;
const PROLOGUE_END: u8 = 2;
const END_SEQUENCE: u8 = 4;
/// An is_stmt row whose line or file differs from the previous row's (or that opens a
/// sequence): a line starts here.
const LINE_START: u8 = 8;
/// A row gdb keeps in its line table (see `mark_gdb_entries`).
const GDB_ENTRY: u8 = 16;

/// One row of a line program, 24 bytes.
#[derive(Debug, Clone, Copy)]
struct Row {
    address: u64,
    line: u32,
    column: u32,
    file: u32,
    flags: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Function,
    Inlined,
    Block,
}

/// One address range of a function, an inlined call or a lexical block.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scope {
    pub(super) low: u64,
    pub(super) high: u64,
    pub(super) kind: Kind,
    /// The entry's offset in the unit: ranges of one entry share it.
    pub(super) die: gimli::UnitOffset<usize>,
    pub(super) depth: u32,
    /// Where a breakpoint on it goes before any prologue skip: the low pc of a
    /// function, the entry pc of an inlined call (its first range).
    pub(super) entry: u64,
    /// The line an inlined call was made from.
    pub(super) call_line: u32,
}

/// What a unit's line program and DIEs say, read when first needed and kept.
pub(super) struct UnitData {
    rows: Vec<Row>,
    /// Each sequence, sorted by start.
    sequences: Vec<Sequence>,
    pub(super) scopes: Scopes,
}

/// A unit's scopes sorted by low address, with the greatest high address up to each,
/// to find the scopes holding an address without looking at all of them.
pub(super) struct Scopes {
    pub(super) scopes: Vec<Scope>,
    max_high: Vec<u64>,
}

impl Scopes {
    fn new(mut scopes: Vec<Scope>) -> Scopes {
        scopes.sort_by_key(|s| (s.low, s.depth));
        let max_high = scopes
            .iter()
            .scan(0, |max, s| {
                *max = s.high.max(*max);
                Some(*max)
            })
            .collect();
        Scopes { scopes, max_high }
    }

    fn holding(&self, address: u64) -> impl Iterator<Item = &Scope> {
        let end = self.scopes.partition_point(|s| s.low <= address);
        let start = self.max_high[..end].partition_point(|&high| high <= address);
        self.scopes[start..end]
            .iter()
            .filter(move |s| address < s.high)
    }
}

/// The line tables of one file's DWARF.
pub struct LineTables {
    pub(super) sections: gimli::Dwarf<Reader>,
    /// Units read again when a file of theirs is asked for: kept, they would hold every
    /// unit's abbreviations and file tables (libc's debug file has 4126 units).
    parsed: RefCell<FxHashMap<u32, Rc<gimli::Unit<Reader>>>>,
    /// `.debug_info` offset of each unit, ascending.
    pub(super) starts: Vec<usize>,
    /// File base name -> (unit, file index) of every file entry by that name. The
    /// names are slices of the (mapped, kept) string sections: a large Rust binary's
    /// units name some 100,000 files, and only the few that match are ever joined
    /// into full paths.
    by_name: FxHashMap<&'static [u8], Vec<(u32, u32)>>,
    data: RefCell<FxHashMap<u32, Rc<UnitData>>>,
    /// Function short name (without template arguments) -> the units with code of a
    /// function or inlined call by that name: read on the first search by name (one
    /// pass over every unit), so later searches read only those units.
    functions: std::cell::OnceCell<FxHashMap<&'static [u8], Vec<u32>>>,
}

impl LineTables {
    /// Reads every unit's header and line program header; runs no line program.
    pub fn new(dwarf: &super::dwarf::Dwarf) -> LineTables {
        let mut sections = dwarf.fresh_sections();
        sections.populate_abbreviations_cache(gimli::AbbreviationsCacheStrategy::Duplicates);
        let starts: Vec<usize> = dwarf.unit_spans().iter().map(|s| s.0).collect();
        let mut by_name: FxHashMap<&'static [u8], Vec<(u32, u32)>> = FxHashMap::default();
        for (index, &start) in starts.iter().enumerate() {
            let Some(unit) = parse_unit(&sections, start) else {
                continue;
            };
            if let Some(program) = &unit.line_program {
                let header = program.header();
                let unit_ref = gimli::UnitRef::new(&sections, &unit);
                // DWARF 5 numbers files from 0, earlier versions from 1.
                for file in 0..=header.file_names().len() as u64 {
                    let Some(entry) = header.file(file) else {
                        continue;
                    };
                    let Ok(name) = unit_ref.attr_string(entry.path_name()) else {
                        continue;
                    };
                    let name = name.slice();
                    let base = match name.iter().rposition(|&b| b == b'/') {
                        Some(slash) => &name[slash + 1..],
                        None => name,
                    };
                    by_name
                        .entry(base)
                        .or_default()
                        .push((index as u32, file as u32));
                }
            }
        }
        LineTables {
            sections,
            parsed: RefCell::default(),
            starts,
            by_name,
            data: RefCell::default(),
            functions: std::cell::OnceCell::new(),
        }
    }

    /// The units that have code of a function or inlined call with this short name.
    pub(super) fn units_naming(&self, name: &str) -> &[u32] {
        let functions = self.functions.get_or_init(|| {
            let mut functions: FxHashMap<&'static [u8], Vec<u32>> = FxHashMap::default();
            for (unit, &start) in self.starts.iter().enumerate() {
                let Some(parsed) = parse_unit(&self.sections, start) else {
                    continue;
                };
                let unit_ref = gimli::UnitRef::new(&self.sections, &parsed);
                for (_, short) in super::functions::unit_instances(unit_ref).unwrap_or_default() {
                    let Some(short) = short else { continue };
                    let units = functions.entry(short).or_default();
                    if units.last() != Some(&(unit as u32)) {
                        units.push(unit as u32);
                    }
                }
            }
            functions
        });
        functions.get(name.as_bytes()).map_or(&[], Vec::as_slice)
    }

    /// A unit, read once asked for.
    fn unit(&self, index: u32) -> Option<Rc<gimli::Unit<Reader>>> {
        if let Some(known) = self.parsed.borrow().get(&index) {
            return Some(known.clone());
        }
        let unit = Rc::new(parse_unit(
            &self.sections,
            *self.starts.get(index as usize)?,
        )?);
        self.parsed.borrow_mut().insert(index, unit.clone());
        Some(unit)
    }

    /// The unit's rows and scopes, read once.
    pub(super) fn unit_data(&self, unit: u32) -> Option<Rc<UnitData>> {
        if let Some(known) = self.data.borrow().get(&unit) {
            return Some(known.clone());
        }
        let parsed = self.unit(unit)?;
        let unit_ref = gimli::UnitRef::new(&self.sections, &parsed);
        let (rows, sequences) = read_rows(unit_ref.line_program.clone(), false);
        let scopes = Scopes::new(read_scopes(unit_ref).unwrap_or_default());
        let data = Rc::new(UnitData {
            rows,
            sequences,
            scopes,
        });
        self.data.borrow_mut().insert(unit, data.clone());
        Some(data)
    }

    /// The units whose code may hold `address`, by the index of `dwarf`, the DWARF
    /// these tables were made from.
    fn units_at(&self, dwarf: &super::dwarf::Dwarf, address: u64) -> Vec<u32> {
        match dwarf.unit_starts_at(address) {
            Some(starts) => starts
                .iter()
                .filter_map(|s| self.starts.binary_search(s).ok())
                .map(|i| i as u32)
                .collect(),
            None => (0..self.starts.len() as u32).collect(),
        }
    }

    /// (unit, file index, full path) of every file entry whose base name is `name`.
    fn files_named(&self, name: &str) -> Vec<(u32, u32, String)> {
        let Some(found) = self.by_name.get(name.as_bytes()) else {
            return Vec::new();
        };
        found
            .iter()
            .filter_map(|&(unit, file)| {
                let parsed = self.unit(unit)?;
                let unit_ref = gimli::UnitRef::new(&self.sections, &parsed);
                let path = calls::file_path(unit_ref, u64::from(file))?;
                Some((unit, file, path))
            })
            .collect()
    }
}

/// Runs a unit's line program; rows in sequences, each sequence sorted by address.
/// The unit at `start` in `.debug_info`: its header, root and line program header.
pub(super) fn parse_unit(
    sections: &gimli::Dwarf<Reader>,
    start: usize,
) -> Option<gimli::Unit<Reader>> {
    let header = sections
        .debug_info
        .header_from_offset(gimli::DebugInfoOffset(start))
        .ok()?;
    sections.unit(header).ok()
}

/// (start, end, first row, end row) of a sequence.
type Sequence = (u64, u64, usize, usize);

/// With `first_only`, stops at the end of the first sequence.
fn read_rows<R: gimli::Reader<Offset = usize>>(
    program: Option<gimli::IncompleteLineProgram<R>>,
    first_only: bool,
) -> (Vec<Row>, Vec<Sequence>) {
    let mut rows = Vec::new();
    let mut sequences = Vec::new();
    let Some(program) = program else {
        return (rows, sequences);
    };
    let mut state = program.rows();
    let mut first = 0;
    let mut discriminators = Vec::new();
    while let Ok(Some((_, row))) = state.next_row() {
        let mut flags = 0;
        if row.is_stmt() {
            flags |= STMT;
        }
        if row.prologue_end() {
            flags |= PROLOGUE_END;
        }
        if row.end_sequence() {
            flags |= END_SEQUENCE;
        }
        let line = row
            .line()
            .map_or(0, |l| l.get().min(u64::from(u32::MAX)) as u32);
        let column = match row.column() {
            gimli::ColumnType::LeftEdge => 0,
            gimli::ColumnType::Column(c) => c.get().min(u64::from(u32::MAX)) as u32,
        };
        let file = row.file_index().min(u64::from(u32::MAX)) as u32;
        let opens = rows.len() == first;
        let previous = rows.last().filter(|_| !opens);
        let differs = previous.is_none_or(|p: &Row| p.line != line || p.file != file);
        if flags & STMT != 0 && flags & END_SEQUENCE == 0 && line != 0 && differs {
            flags |= LINE_START;
        }
        rows.push(Row {
            address: row.address(),
            line,
            column,
            file,
            flags,
        });
        discriminators.push(row.discriminator() != 0);
        if flags & END_SEQUENCE != 0 {
            let start = rows[first].address;
            // The linker drops unused functions and leaves their sequences at 0.
            if start != 0 && row.address() > start {
                mark_gdb_entries(&mut rows[first..], &discriminators[first..]);
                sequences.push((start, row.address(), first, rows.len()));
            } else {
                rows.truncate(first);
                discriminators.truncate(first);
            }
            first = rows.len();
            if first_only {
                break;
            }
        }
    }
    rows.truncate(first);
    sequences.sort_unstable();
    (rows, sequences)
}

/// Marks the rows of one sequence that gdb 13 keeps in its line tables, as its
/// `lnp_state_machine::record_line` and `buildsym_compunit::record_line` do: a row of
/// line 0 is dropped; a non-stmt row that switches file at the address of the row
/// before is dropped; a row repeating the line before, in the same file, is dropped
/// once that line has had a non-zero discriminator; and when the file switches (or the
/// sequence ends) at an address, the previous file's rows at that very address are
/// deleted (its end marker there replaces them). gdb sets breakpoints only on what
/// stays: a function's first line at the address where an inlined call's file starts
/// has no breakpoint location of its own.
fn mark_gdb_entries(rows: &mut [Row], discriminators: &[bool]) {
    let mut last_file: Option<u32> = None;
    let mut last_line = 0;
    let mut last_address: Option<u64> = None;
    let mut line_had_discriminator = false;
    // Per file, the rows kept so far, whose tail an end marker may delete.
    let mut kept: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
    let mut previous_line = None;
    for i in 0..rows.len() {
        let row = rows[i];
        let end = row.flags & END_SEQUENCE != 0;
        if previous_line != Some(row.line) {
            line_had_discriminator = discriminators[i];
        } else {
            line_had_discriminator |= discriminators[i];
        }
        previous_line = Some(row.line);
        let file_changed = last_file != Some(row.file);
        let ignore =
            (file_changed && !end && last_address == Some(row.address) && row.flags & STMT == 0)
                || (!end && row.line == 0);
        if (file_changed && !ignore) || end {
            if let Some(entries) = last_file.and_then(|f| kept.get_mut(&f)) {
                while entries
                    .last()
                    .is_some_and(|&k| rows[k].address == row.address)
                {
                    let k = entries.pop().expect("just seen");
                    rows[k].flags &= !GDB_ENTRY;
                }
            }
        }
        if !end && !ignore {
            if file_changed || row.line != last_line || !line_had_discriminator {
                rows[i].flags |= GDB_ENTRY;
                kept.entry(row.file).or_default().push(i);
            }
            last_file = Some(row.file);
            last_line = row.line;
        }
        last_address = Some(row.address);
    }
}

/// Every function, inlined call and lexical block with code, with its ranges.
fn read_scopes(unit: gimli::UnitRef<Reader>) -> gimli::Result<Vec<Scope>> {
    let mut scopes = Vec::new();
    let mut entries = unit.entries();
    while let Some(entry) = entries.next_dfs()? {
        let depth = entry.depth();
        let kind = match entry.tag() {
            gimli::DW_TAG_subprogram => Kind::Function,
            gimli::DW_TAG_inlined_subroutine => Kind::Inlined,
            gimli::DW_TAG_lexical_block => Kind::Block,
            _ => continue,
        };
        let mut ranges = Vec::new();
        let mut iter = unit.die_ranges(entry)?;
        while let Some(range) = iter.next()? {
            if range.begin != 0 && range.end > range.begin {
                ranges.push((range.begin, range.end));
            }
        }
        // gdb's entry pc of a block: its low pc, or the start of its first range.
        let Some(&(entry_pc, _)) = ranges.first() else {
            continue;
        };
        let entry_pc = match entry.attr_value(gimli::DW_AT_low_pc) {
            Some(AttributeValue::Addr(low)) if low != 0 => low,
            _ => entry_pc,
        };
        let call_line = entry
            .attr_value(gimli::DW_AT_call_line)
            .and_then(|v| v.udata_value())
            .map_or(0, |l| l as u32);
        for (low, high) in ranges {
            scopes.push(Scope {
                call_line,
                low,
                high,
                kind,
                die: entry.offset(),
                depth: depth.max(0) as u32,
                entry: entry_pc,
            });
        }
    }
    Ok(scopes)
}

impl UnitData {
    /// The rows of a line program's first sequence alone, without the unit's DIEs (no
    /// scopes): enough for `after_prologue` on a function that sequence holds, which
    /// reads rows only (see `go_prologue`).
    pub(super) fn first_sequence<R: gimli::Reader<Offset = usize>>(
        program: gimli::IncompleteLineProgram<R>,
    ) -> UnitData {
        let (rows, sequences) = read_rows(Some(program), true);
        UnitData {
            rows,
            sequences,
            scopes: Scopes::new(Vec::new()),
        }
    }

    /// [start, end) of the sequence holding `address`, else of the first one starting
    /// past it.
    pub(super) fn sequence_from(&self, address: u64) -> Option<(u64, u64)> {
        let at = self.sequences.partition_point(|s| s.0 <= address);
        self.sequences[..at]
            .iter()
            .rev()
            .find(|s| address < s.1)
            .or_else(|| self.sequences.get(at))
            .map(|s| (s.0, s.1))
    }

    /// The sequence holding `address`: its rows.
    fn sequence_at(&self, address: u64) -> Option<&[Row]> {
        let at = self.sequences.partition_point(|s| s.0 <= address);
        self.sequences[..at]
            .iter()
            .rev()
            .find(|s| address < s.1)
            .map(|s| &self.rows[s.2..s.3])
    }

    /// The last row at or below `address` and the address of the next row past it.
    fn row_at(&self, address: u64) -> Option<(Row, u64)> {
        let rows = self.sequence_at(address)?;
        let next = rows.partition_point(|r| r.address <= address);
        let row = *rows.get(next.checked_sub(1)?)?;
        let end = rows.get(next).map_or(row.address, |r| r.address);
        Some((row, end))
    }

    /// The innermost scope holding `address`, and the physical function holding it.
    fn scopes_at(&self, address: u64) -> (Option<&Scope>, Option<&Scope>) {
        let holding = self.scopes.holding(address);
        let mut innermost: Option<&Scope> = None;
        let mut function: Option<&Scope> = None;
        for scope in holding {
            if innermost.is_none_or(|i| scope.depth > i.depth) {
                innermost = Some(scope);
            }
            if scope.kind == Kind::Function && function.is_none_or(|f| scope.depth > f.depth) {
                function = Some(scope);
            }
        }
        (innermost, function)
    }

    /// The function whose low pc is `address`.
    fn function_starting_at(&self, address: u64) -> Option<&Scope> {
        self.scopes
            .holding(address)
            .find(|s| s.kind == Kind::Function && s.entry == address && s.low == address)
    }

    /// The line gdb reports for a breakpoint moved past a prologue to `address`: the
    /// line the outermost inlined call there was made from (gdb's `skip_prologue_sal`),
    /// else that of the first is_stmt row there in one of `files`.
    fn line_in_files(&self, address: u64, files: &BTreeSet<u32>) -> Option<u32> {
        let outermost_inlined = self
            .scopes
            .holding(address)
            .filter(|s| s.kind == Kind::Inlined && s.call_line != 0)
            .min_by_key(|s| s.depth);
        if let Some(inlined) = outermost_inlined {
            return Some(inlined.call_line);
        }
        let rows = self.sequence_at(address)?;
        let from = rows.partition_point(|r| r.address < address);
        rows[from..]
            .iter()
            .take_while(|r| r.address == address)
            .find(|r| r.flags & (STMT | GDB_ENTRY) == STMT | GDB_ENTRY && files.contains(&r.file))
            .map(|r| r.line)
    }

    /// Where gdb 13's `break FUNC` puts a function's breakpoint: at the row flagged
    /// prologue_end (LLVM emits it); else past `push %rbp; mov %rsp,%rbp` (and an
    /// `endbr64` before it), moved to the start of the next row when that lands
    /// mid-row, as amd64_skip_prologue and skip_prologue_sal do; else (no frame
    /// pointer: optimized code) the function's first instruction.
    pub(super) fn after_prologue(&self, info: &ModuleInfo, low: u64, high: u64) -> u64 {
        if let Some(rows) = self.sequence_at(low) {
            let from = rows.partition_point(|r| r.address < low);
            let marked = rows[from..]
                .iter()
                .take_while(|r| r.address < high)
                .find(|r| r.flags & PROLOGUE_END != 0);
            if let Some(row) = marked {
                return row.address;
            }
        }
        let Some(code) = info.code_bytes(low, 8) else {
            return low;
        };
        let mut at = 0;
        if code.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) {
            at = 4;
        }
        let framed = code.get(at) == Some(&0x55)
            && matches!(
                code.get(at + 1..at + 4),
                Some([0x48, 0x89, 0xe5]) | Some([0x48, 0x8b, 0xec])
            );
        if !framed {
            return low;
        }
        let pc = low + at as u64 + 4;
        match self.row_at(pc) {
            Some((row, next)) if row.address != pc && next > pc && next < high => next,
            _ => pc,
        }
    }
}

/// A requested file's path components, after resolving symlinks when it exists.
fn requested_components(path: &str) -> Vec<String> {
    let canonical = std::fs::canonicalize(path)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string());
    components(&canonical)
}

/// A path's components, `.` dropped and `..` applied where it can be.
fn components(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if out.last().is_some_and(|l| l != "..") => {
                out.pop();
            }
            _ => out.push(part.to_string()),
        }
    }
    out
}

/// How many trailing components two paths share.
fn common_suffix(a: &[String], b: &[String]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// One module's unit whose line program names the requested file.
struct Match {
    module: usize,
    unit: u32,
    /// File indices in that unit that name it.
    files: BTreeSet<u32>,
}

/// The files of every module that best match `path`: by the longest common suffix of
/// whole components, the base name at least (ties: all). `Err` when none does.
fn match_file(infos: &[Rc<ModuleInfo>], path: &str) -> Result<(Vec<Match>, Vec<Rc<str>>), String> {
    let wanted = requested_components(path);
    let Some(name) = wanted.last() else {
        return Err(format!("{path} names no file"));
    };
    let mut best = 0;
    let mut found: Vec<(usize, u32, u32, Rc<str>)> = Vec::new();
    for (module, info) in infos.iter().enumerate() {
        if !info.may_name_file(name) {
            continue;
        }
        let Some(tables) = info.line_tables() else {
            continue;
        };
        for (unit, file, full) in tables.files_named(name) {
            let score = common_suffix(&wanted, &components(&full));
            if score == 0 || score < best {
                continue;
            }
            if score > best {
                best = score;
                found.clear();
            }
            found.push((module, unit, file, Rc::from(full)));
        }
    }
    if found.is_empty() {
        return Err(format!("no loaded module has code for {path}"));
    }
    let mut grouped: BTreeMap<(usize, u32), BTreeSet<u32>> = BTreeMap::new();
    let mut paths: Vec<Rc<str>> = Vec::new();
    for (module, unit, file, full) in found {
        grouped.entry((module, unit)).or_default().insert(file);
        if !paths.contains(&full) {
            paths.push(full);
        }
    }
    let matches = grouped
        .into_iter()
        .map(|((module, unit), files)| Match {
            module,
            unit,
            files,
        })
        .collect();
    Ok((matches, paths))
}

/// Lines resolved in file numbering: (module index, address) per location.
pub struct FileLine {
    pub line: u32,
    pub column: Option<u32>,
    pub file: String,
    pub addresses: Vec<(usize, u64)>,
}

/// `file:line` for each of `lines`, in the modules' own numbering, as gdb 13's `break
/// FILE:LINE`: the requested line, else the smallest line after it that has code in
/// that file; its is_stmt rows in every matching unit, the lowest address of each
/// innermost block (function, inlined call, lexical block) kept; a location at a
/// function's first instruction moved past its prologue.
pub fn resolve_in_files(
    infos: &[Rc<ModuleInfo>],
    path: &str,
    lines: &[u32],
) -> Vec<Result<FileLine, String>> {
    let (matches, paths) = match match_file(infos, path) {
        Ok(found) => found,
        Err(why) => {
            return resolve_in_go_tables(infos, path, lines)
                .unwrap_or_else(|| lines.iter().map(|_| Err(why.clone())).collect())
        }
    };
    // Per matching unit, its breakpoint rows (gdb's is_stmt entries) in the file,
    // sorted by line then address: each line is then a binary search.
    let units: Vec<(Rc<UnitData>, Vec<Row>)> = matches
        .iter()
        .filter_map(|m| {
            let data = infos[m.module].line_tables()?.unit_data(m.unit)?;
            let mut rows: Vec<Row> = data
                .rows
                .iter()
                .filter(|r| r.flags & (STMT | GDB_ENTRY) == STMT | GDB_ENTRY)
                .filter(|r| m.files.contains(&r.file))
                .copied()
                .collect();
            rows.sort_unstable_by_key(|r| (r.line, r.address));
            Some((data, rows))
        })
        .collect();
    let shown = paths.first().map(|p| p.to_string()).unwrap_or_default();
    lines
        .iter()
        .map(|&requested| {
            resolve_one(infos, &matches, &units, requested)
                .ok_or_else(|| format!("no code at or after line {requested} of {shown}"))
        })
        .map(|found| {
            found.map(|(line, column, addresses)| FileLine {
                line,
                column,
                file: shown.clone(),
                addresses,
            })
        })
        .collect()
}

type Found = (u32, Option<u32>, Vec<(usize, u64)>);

/// A line's start in Go's table, in a module.
struct GoRow {
    module: usize,
    function: u64,
    inlined: i32,
    pc: u64,
    line: u32,
}

/// Where a Go function's body starts: past the check of the stack bound that opens it
/// (`cmp rsp, [r14+16]; jbe more_stack`, or with `lea r12, [rsp-N]` first for a large
/// frame), where gdb breaks with Go's DWARF (its prologue_end). The entry when the code
/// is not at hand or does not open so.
fn go_after_stack_check(info: &ModuleInfo, entry: u64) -> u64 {
    let Some(code) = info.code_bytes(entry, 24) else {
        return entry;
    };
    let mut at = 0;
    // lea r12, [rsp-disp8] / [rsp-disp32]
    if code.starts_with(&[0x4c, 0x8d, 0x64, 0x24]) {
        at = 5;
    } else if code.starts_with(&[0x4c, 0x8d, 0xa4, 0x24]) {
        at = 8;
    }
    // cmp rsp, [r14+16] (49 3b 66 10) or cmp r12, [r14+16] (4d 3b 66 10)
    let compares = matches!(code.get(at..at + 4), Some([0x49 | 0x4d, 0x3b, 0x66, 0x10]));
    if !compares {
        return entry;
    }
    at += 4;
    match code.get(at..at + 2) {
        Some([0x76, _]) => entry + at as u64 + 2,
        Some([0x0f, 0x86]) => entry + at as u64 + 6,
        _ => entry,
    }
}

/// Lines of Go programs without DWARF, from Go's own table: files matched as with
/// DWARF; for each line, the lowest address that starts it in each function. `None`
/// when no such program has the file.
fn resolve_in_go_tables(
    infos: &[Rc<ModuleInfo>],
    path: &str,
    lines: &[u32],
) -> Option<Vec<Result<FileLine, String>>> {
    let wanted = requested_components(path);
    let name = wanted.last()?;
    let mut best = 0;
    // (module, function entry, inlined call, pc, line) and the file it is in.
    let mut found: Vec<(GoRow, &'static str)> = Vec::new();
    for (module, info) in infos.iter().enumerate() {
        if info.line_tables().is_some() {
            continue;
        }
        let Some(go) = info.go_lines() else { continue };
        let starts = go.line_starts(|file| file.rsplit('/').next() == Some(name.as_str()));
        for start in starts {
            let score = common_suffix(&wanted, &components(start.file));
            if score < best {
                continue;
            }
            if score > best {
                best = score;
                found.clear();
            }
            let function = go.function_range(start.pc).map_or(start.pc, |f| f.0);
            // As gdb with Go's DWARF: past the stack-bound check at a function's entry.
            let pc = match start.pc == function && start.inlined < 0 {
                true => go_after_stack_check(info, function),
                false => start.pc,
            };
            let row = GoRow {
                module,
                function,
                inlined: start.inlined,
                pc,
                line: start.line,
            };
            found.push((row, start.file));
        }
    }
    let shown = found.first()?.1.to_string();
    let mut rows: Vec<GoRow> = found.into_iter().map(|f| f.0).collect();
    rows.sort_unstable_by_key(|r| (r.line, r.module, r.function, r.inlined, r.pc));
    Some(
        lines
            .iter()
            .map(|&requested| {
                let at = rows.partition_point(|r| r.line < requested);
                let line = rows
                    .get(at)
                    .map(|r| r.line)
                    .ok_or_else(|| format!("no code at or after line {requested} of {shown}"))?;
                let mut addresses: Vec<(usize, u64)> = Vec::new();
                let mut functions = BTreeSet::new();
                // One per function and inlined call, as gdb's one per block.
                for r in rows[at..].iter().take_while(|r| r.line == line) {
                    if functions.insert((r.module, r.function, r.inlined)) {
                        addresses.push((r.module, r.pc));
                    }
                }
                addresses.sort_unstable();
                Ok(FileLine {
                    line,
                    column: None,
                    file: shown.clone(),
                    addresses,
                })
            })
            .collect(),
    )
}

fn resolve_one(
    infos: &[Rc<ModuleInfo>],
    matches: &[Match],
    units: &[(Rc<UnitData>, Vec<Row>)],
    requested: u32,
) -> Option<Found> {
    // The line: the requested one if any unit has it, else the least line after it.
    let line = units
        .iter()
        .filter_map(|(_, rows)| {
            let at = rows.partition_point(|r| r.line < requested);
            rows.get(at).map(|r| r.line)
        })
        .min()?;
    let mut column = None;
    let mut shown_line = None;
    let mut addresses = Vec::new();
    let mut skipped_all = true;
    for (m, (unit, rows)) in matches.iter().zip(units) {
        let from = rows.partition_point(|r| r.line < line);
        let to = rows.partition_point(|r| r.line <= line);
        // One location per innermost block: its lowest address.
        let mut blocks = BTreeSet::new();
        for row in &rows[from..to] {
            let (innermost, _) = unit.scopes_at(row.address);
            if let Some(scope) = innermost {
                if !blocks.insert(scope.die) {
                    continue;
                }
            }
            if column.is_none() && row.column != 0 {
                column = Some(row.column);
            }
            let mut address = row.address;
            match unit.function_starting_at(address) {
                Some(function) => {
                    let after = unit.after_prologue(&infos[m.module], function.low, function.high);
                    if after != address {
                        address = after;
                        if shown_line.is_none() {
                            shown_line = unit.line_in_files(after, &m.files);
                        }
                    } else {
                        skipped_all = false;
                    }
                }
                None => skipped_all = false,
            }
            addresses.push((m.module, address));
        }
    }
    addresses.sort_unstable();
    addresses.dedup();
    // gdb reports the line the breakpoint lands on when the prologue moved it.
    let line = match (skipped_all, shown_line) {
        (true, Some(shown)) => shown,
        _ => line,
    };
    Some((line, column, addresses))
}

/// The (line, column) pairs that start code in `path` within [line, end_line].
pub fn locations_in_file(
    infos: &[Rc<ModuleInfo>],
    path: &str,
    line: u32,
    end_line: u32,
) -> Vec<(u32, Option<u32>)> {
    let Ok((matches, _)) = match_file(infos, path) else {
        return Vec::new();
    };
    let mut found = BTreeSet::new();
    for m in &matches {
        let Some(unit) = infos[m.module]
            .line_tables()
            .and_then(|t| t.unit_data(m.unit))
        else {
            continue;
        };
        // The rows `resolve_in_files` sets breakpoints on: each line listed resolves to
        // itself.
        for row in &unit.rows {
            if row.flags & (STMT | GDB_ENTRY) == STMT | GDB_ENTRY
                && (line..=end_line).contains(&row.line)
                && m.files.contains(&row.file)
            {
                found.insert((row.line, (row.column != 0).then_some(row.column)));
            }
        }
    }
    found.into_iter().collect()
}

/// What stepping needs about `address` (file numbering), all in file numbering.
pub struct FileStep {
    pub frames: Vec<SourceFrame>,
    pub row: Option<(u64, u64)>,
    pub statement_start: bool,
    pub function: Option<(u64, u64)>,
    pub has_lines: bool,
    pub after_prologue: Option<u64>,
}

pub fn step_in_file(info: &ModuleInfo, address: u64) -> FileStep {
    let frames = info.source_frames(address).to_vec();
    let mut step = FileStep {
        has_lines: frames.iter().any(|f| f.line != 0),
        frames,
        row: None,
        statement_start: false,
        function: None,
        after_prologue: None,
    };
    if let (Some(tables), Some(dwarf)) = (info.line_tables(), info.dwarf()) {
        for unit in tables.units_at(dwarf, address) {
            let Some(data) = tables.unit_data(unit) else {
                continue;
            };
            let Some((row, end)) = data.row_at(address) else {
                continue;
            };
            let starts = data.sequence_at(address).is_some_and(|rows| {
                rows.iter()
                    .any(|r| r.address == address && r.flags & LINE_START != 0)
            });
            step.row = Some((row.address, end));
            step.statement_start = starts;
            step.has_lines |= row.line != 0;
            if let (_, Some(function)) = data.scopes_at(address) {
                step.function = Some((function.low, function.high));
                step.after_prologue = Some(data.after_prologue(info, function.low, function.high));
            }
            break;
        }
    }
    if step.row.is_none() {
        if let Some((start, end, starts)) = info.go_lines().and_then(|go| go.line_run_at(address)) {
            step.row = Some((start, end));
            step.statement_start = starts && start == address;
        }
    }
    if step.function.is_none() {
        let range = info
            .go_lines()
            .and_then(|go| go.function_range(address))
            .or_else(|| info.symbol_table().range_containing(address));
        step.function = range;
        step.after_prologue = range.map(|r| r.0);
    }
    step
}

#[cfg(test)]
mod tests;
