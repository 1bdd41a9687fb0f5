//! Addresses to functions and source lines from one file's DWARF, reading only the
//! compile units that the asked-for addresses fall in.
//!
//! addr2line's `Context` parses the header, abbreviations and line program header of
//! every unit before its first answer. For libc's debug file (4126 units) that was about
//! 85 M instructions and 20 MiB, most of the cost of a first stack trace, for the three
//! or four units any stack passes through. We find an address's unit through
//! `.debug_aranges` (gcc and clang emit it for C and C++) or, for units it leaves out
//! (rustc emits none), through the unit's own root ranges, and give addr2line a context
//! over that unit alone; its answers (inlined calls, names, file:line) are the same as
//! the whole file's context would give. Units that refer into other units
//! (`DW_FORM_ref_addr`: LTO, dwz), and files with a unit whose code its root does not
//! place, use the whole-file context as before.

use std::cell::OnceCell;
use std::sync::Arc;

use gimli::{Reader as _, RunTimeEndian, Section as _};

use super::cache;
use super::calls;
use super::module::{demangle, Reader};

/// A function and place that an address belongs to; several for inlined code. Names
/// are shared: every frame of a thousand threads stopped at one place holds the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFrame {
    pub function: Option<Arc<str>>,
    pub file: Option<Arc<str>>,
    pub line: u32,
    pub column: u32,
}

type Context = addr2line::Context<Reader>;

/// One file's DWARF: its (inflated) sections and the means to look addresses up.
pub struct Dwarf {
    /// Each section's bytes, to make a `gimli::Dwarf` of for each unit's context.
    raw: Sections,
    sections: gimli::Dwarf<Reader>,
    /// `None` when `.debug_aranges` cannot be trusted to name every address's unit.
    by_unit: Option<UnitIndex>,
    /// The whole-file context, built only when a lookup needs it.
    whole: OnceCell<Option<Context>>,
    /// Where each unit that can hold code lies in `.debug_info` (start, end), in order:
    /// line tables (`lines`) index units by these.
    spans: Vec<(usize, usize)>,
}

/// Compile units by address, from `.debug_aranges`.
struct UnitIndex {
    /// (start, end, unit index) sorted by start, and the greatest end up to each entry,
    /// to find overlapping ranges (rare, but weak symbols produce them).
    ranges: Vec<(u64, u64, usize)>,
    max_end: Vec<u64>,
    units: Vec<Unit>,
}

struct Unit {
    /// Where the unit lies in `.debug_info`.
    start: usize,
    end: usize,
    context: OnceCell<UnitContext>,
}

enum UnitContext {
    Own(Box<OwnUnit>),
    /// The unit refers to entries of other units, which only the whole-file context
    /// resolves, or it could not be read on its own: do as before.
    Whole,
}

impl Dwarf {
    /// Inflates the sections lookups use and indexes the units; nothing per unit yet.
    pub fn load(file: &object::File<'static>) -> Dwarf {
        let build_id = cache::build_identity(file);
        let raw = Sections::load(file, build_id.as_deref());
        let sections = raw.dwarf();
        let info = sections.debug_info.reader();
        let spans = cache::unit_spans(file, build_id.as_deref(), info.len(), || {
            code_unit_spans(info.slice(), info.endian())
        });
        let by_unit = UnitIndex::build(&sections, spans.clone());
        let whole = OnceCell::new();
        if by_unit.is_none() {
            // Every lookup will need it: build it now, on the loading thread, rather
            // than on the first lookup.
            let _ = whole.set(whole_context(raw.dwarf()));
        }
        Dwarf {
            raw,
            sections,
            by_unit,
            whole,
            spans,
        }
    }

    /// A fresh set of the sections, to read units with (see `lines`).
    /// Whether `name` is anywhere in the sections a line table's file names live in
    /// (`.debug_line` itself, `.debug_line_str`, `.debug_str`): a file no unit names
    /// is not there. One pass of memmem, about a millisecond per 10 MB, instead of
    /// reading every unit's header (libc's debug file has 4126 units).
    pub(super) fn mentions(&self, name: &[u8]) -> bool {
        let finder = memchr::memmem::Finder::new(name);
        self.raw.data.iter().any(|(id, bytes)| {
            matches!(
                id,
                gimli::SectionId::DebugLine
                    | gimli::SectionId::DebugLineStr
                    | gimli::SectionId::DebugStr
            ) && finder.find(bytes).is_some()
        })
    }

    pub(super) fn fresh_sections(&self) -> gimli::Dwarf<Reader> {
        self.raw.dwarf()
    }

    /// Where each unit that can hold code lies in `.debug_info`, in the file's order.
    pub(super) fn unit_spans(&self) -> &[(usize, usize)] {
        &self.spans
    }

    /// The `.debug_info` offsets of the units whose code holds `address`; `None` when
    /// the file's units are not indexed by address (then every unit may hold it).
    pub(super) fn unit_starts_at(&self, address: u64) -> Option<Vec<usize>> {
        let index = self.by_unit.as_ref()?;
        Some(index.units_at(address).map(|unit| unit.start).collect())
    }

    /// The functions at `address`, innermost inlined call first; empty when the DWARF
    /// does not cover it.
    pub fn source_frames(&self, address: u64) -> Vec<SourceFrame> {
        let Some(index) = &self.by_unit else {
            return self.whole().map_or_else(Vec::new, |c| frames(c, address));
        };
        // As addr2line does over several units covering an address: the first unit
        // that knows a function there wins, else the first that knows a line.
        let mut found = Vec::new();
        for unit in index.units_at(address) {
            let frames = match unit.context.get_or_init(|| self.unit_context(unit)) {
                UnitContext::Own(own) => own.frames(address),
                UnitContext::Whole => self.whole().map_or_else(Vec::new, |c| frames(c, address)),
            };
            if frames.iter().any(|f| f.function.is_some()) {
                return frames;
            }
            if found.is_empty() {
                found = frames;
            }
        }
        found
    }

    fn whole(&self) -> Option<&Context> {
        self.whole
            .get_or_init(|| whole_context(self.raw.dwarf()))
            .as_ref()
    }

    /// A context over one unit: the same sections, but `.debug_info` cut down to the
    /// unit, so addr2line parses nothing else. Offsets inside the unit are relative to
    /// it and stay right; offsets into other sections (lines, strings, ranges) are
    /// untouched. Only references into other units would break, hence `refers_out`.
    fn unit_context(&self, unit: &Unit) -> UnitContext {
        let info = self.sections.debug_info.reader();
        let Some(bytes) = info.slice().get(unit.start..unit.end) else {
            return UnitContext::Whole;
        };
        let header = match self
            .sections
            .debug_info
            .header_from_offset(gimli::DebugInfoOffset(unit.start))
        {
            Ok(header) => header,
            Err(_) => return UnitContext::Whole,
        };
        if refers_out(&self.sections.debug_abbrev, header.debug_abbrev_offset()).unwrap_or(true) {
            return UnitContext::Whole;
        }
        let unit_dwarf = || {
            let mut dwarf = self.raw.dwarf();
            dwarf.debug_info =
                gimli::DebugInfo::from(gimli::EndianSlice::new(bytes, info.endian()));
            // Its offsets name units of the whole section.
            dwarf.debug_aranges =
                gimli::DebugAranges::from(gimli::EndianSlice::new(&[], info.endian()));
            dwarf
        };
        let lines = match Context::from_dwarf(unit_dwarf()) {
            Ok(context) => context,
            Err(_) => return UnitContext::Whole,
        };
        let dwarf = unit_dwarf();
        let unit = match dwarf.units().next() {
            Ok(Some(header)) => dwarf.unit(header),
            _ => return UnitContext::Whole,
        };
        let Ok(unit) = unit else {
            return UnitContext::Whole;
        };
        let language = gimli::UnitRef::new(&dwarf, &unit)
            .entries()
            .next_dfs()
            .ok()
            .flatten()
            .and_then(|root| match root.attr_value(gimli::DW_AT_language) {
                Some(gimli::AttributeValue::Language(language)) => Some(language),
                _ => None,
            });
        UnitContext::Own(Box::new(OwnUnit {
            lines,
            dwarf,
            unit,
            language,
        }))
    }
}

/// One unit read on its own: addr2line answers its source lines; its functions and
/// inlined calls are found by `calls`, which reads the names of the frames it returns
/// and no others.
struct OwnUnit {
    lines: Context,
    dwarf: gimli::Dwarf<Reader>,
    unit: gimli::Unit<Reader>,
    language: Option<gimli::DwLang>,
}

impl OwnUnit {
    /// The same frames as addr2line's `find_frames` over this unit: innermost inlined
    /// call first, each at the place the next inner call was made from, the innermost at
    /// the address's own line; a frame without a function when only the line table
    /// covers the address.
    fn frames(&self, address: u64) -> Vec<SourceFrame> {
        let unit = gimli::UnitRef::new(&self.dwarf, &self.unit);
        let location = self.lines.find_location(address).ok().flatten().map(place);
        let chain = match calls::calls_at(unit, address) {
            Ok(Some(chain)) => chain,
            Ok(None) | Err(_) => {
                return location
                    .map(|(file, line, column)| SourceFrame {
                        function: None,
                        file,
                        line,
                        column,
                    })
                    .into_iter()
                    .collect()
            }
        };
        let mut out = Vec::with_capacity(chain.len());
        let mut place = location.unwrap_or((None, 0, 0));
        for call in chain.iter().rev() {
            let function = calls::name_of(unit, call.entry)
                .map(|name| Arc::from(demangle(&name, self.language)));
            let (file, line, column) = std::mem::take(&mut place);
            out.push(SourceFrame {
                function,
                file,
                line,
                column,
            });
            place = (
                call.call_file
                    .and_then(|index| calls::file_path(unit, index))
                    .map(Arc::from),
                call.call_line,
                call.call_column,
            );
        }
        out
    }
}

impl UnitIndex {
    /// From `.debug_aranges`, and the units' own ranges for units it leaves out. `None`
    /// when a unit's code cannot be placed that way (see below).
    fn build(sections: &gimli::Dwarf<Reader>, spans: Vec<(usize, usize)>) -> Option<UnitIndex> {
        let units: Vec<Unit> = spans
            .into_iter()
            .map(|(start, end)| Unit {
                start,
                end,
                context: OnceCell::new(),
            })
            .collect();
        let mut listed = vec![false; units.len()];
        let mut ranges = Vec::new();
        // Read once, front to back: from a copy that goes away afterwards, rather than
        // through the mapping, where all of it (1 MiB for latch's debug build) would stay
        // resident in latch's memory.
        let aranges = sections.debug_aranges.reader();
        let copy = Scratch::copy_of(aranges.slice())?;
        let aranges = gimli::DebugAranges::new(copy.bytes(), aranges.endian());
        let mut sets = aranges.headers();
        while let Some(set) = sets.next().ok()? {
            let offset = set.debug_info_offset().0;
            let unit = units.binary_search_by_key(&offset, |u| u.start).ok()?;
            listed[unit] = true;
            let mut entries = set.entries();
            // A bad entry (an address that overflows) is skipped, as addr2line does.
            while let Some(entry) = entries.next().transpose() {
                if let Ok(entry) = entry {
                    let range = entry.range();
                    if range.end > range.begin && range.begin != 0 {
                        push_range(&mut ranges, (range.begin, range.end, unit));
                    }
                }
            }
        }
        if units.is_empty() {
            return None;
        }
        // Units that `.debug_aranges` leaves out (all of them for rustc, which emits
        // none) are indexed by their own root ranges (DW_AT_low_pc/high_pc/ranges).
        for (index, unit) in units.iter().enumerate() {
            if listed[index] {
                continue;
            }
            let header = sections
                .debug_info
                .header_from_offset(gimli::DebugInfoOffset(unit.start))
                .ok()?;
            let parsed = sections.unit(header).ok()?;
            let mut own = sections.unit_ranges(&parsed).ok()?;
            let mut any = false;
            while let Some(range) = own.next().ok()? {
                // Functions the linker dropped keep ranges relocated to 0: no code of a
                // loaded file is there (its ELF header is).
                if range.end > range.begin && range.begin != 0 {
                    push_range(&mut ranges, (range.begin, range.end, index));
                    any = true;
                }
            }
            // A unit without ranges of its own might still hold code that only its
            // line program tells of (rustc leaves such units behind with no code at
            // all): if it has any line sequence, only the whole-file context finds it.
            if !any {
                if let Some(program) = parsed.line_program.clone() {
                    let (_, sequences) = program.sequences().ok()?;
                    if !sequences.is_empty() {
                        return None;
                    }
                }
            }
        }
        ranges.sort_unstable();
        ranges.dedup_by(|next, kept| {
            let continues = kept.2 == next.2 && next.0 <= kept.1;
            if continues {
                kept.1 = kept.1.max(next.1);
            }
            continues
        });
        ranges.shrink_to_fit();
        let max_end = ranges
            .iter()
            .scan(0, |max, r| {
                *max = r.1.max(*max);
                Some(*max)
            })
            .collect();
        Some(UnitIndex {
            ranges,
            max_end,
            units,
        })
    }

    /// The units whose ranges hold `address`, in the order of the file.
    fn units_at(&self, address: u64) -> impl Iterator<Item = &Unit> {
        let mut at = self.ranges.partition_point(|r| r.0 <= address);
        let mut found = Vec::new();
        while at > 0 && self.max_end[at - 1] > address {
            at -= 1;
            let (_, end, unit) = self.ranges[at];
            if address < end {
                found.push(unit);
            }
        }
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|unit| &self.units[unit])
    }
}

/// A temporary copy of bytes read once, in memory of its own that is handed back to
/// the kernel when dropped (a large heap block might stay resident in malloc's arena).
struct Scratch(Option<memmap2::MmapMut>);

impl Scratch {
    fn copy_of(bytes: &'static [u8]) -> Option<Scratch> {
        if bytes.is_empty() {
            return Some(Scratch(None));
        }
        let mut map = memmap2::MmapMut::map_anon(bytes.len()).ok()?;
        super::module::peek(bytes, 0, &mut map).then_some(Scratch(Some(map)))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

/// Adds a unit's range, extending the last one instead when it is the same unit's and
/// this one continues it: rustc's aranges list each function on its own, and a large
/// binary's 60,000 of them took 1.7 MiB.
fn push_range(ranges: &mut Vec<(u64, u64, usize)>, range: (u64, u64, usize)) {
    match ranges.last_mut() {
        Some(last) if last.2 == range.2 && last.0 <= range.0 && range.0 <= last.1 => {
            last.1 = last.1.max(range.1);
        }
        _ => ranges.push(range),
    }
}

/// Where each unit that can hold code (compile and skeleton units; not type or partial
/// units) lies in `.debug_info`, from the headers alone, read with `module::peek` so
/// that the scan does not make the whole section resident. Stops at the first header
/// that does not parse, as gimli's unit iterator does.
fn code_unit_spans(info: &'static [u8], endian: RunTimeEndian) -> Vec<(usize, usize)> {
    // Read a page at a time: a header is three small reads, and libc's 4126 units of
    // about 1.4 KiB each made 6,200 preads when its sections came from the cache (now 780).
    let mut window = Window::default();
    let mut word = |offset: usize, size: usize| -> Option<u64> {
        let bytes = window.read(info, offset, size)?;
        Some(match endian {
            RunTimeEndian::Little => bytes.iter().rev().fold(0, |v, b| v << 8 | u64::from(*b)),
            RunTimeEndian::Big => bytes.iter().fold(0, |v, b| v << 8 | u64::from(*b)),
        })
    };
    let mut spans = Vec::new();
    let mut start = 0;
    while start < info.len() {
        let Some(length32) = word(start, 4) else {
            break;
        };
        let (length, initial) = if length32 == 0xffff_ffff {
            let Some(length64) = word(start + 4, 8) else {
                break;
            };
            (length64, 12)
        } else if length32 >= 0xffff_fff0 {
            break; // reserved values
        } else {
            (length32, 4)
        };
        let Some(end) = usize::try_from(length)
            .ok()
            .and_then(|l| (start + initial).checked_add(l))
            .filter(|end| *end <= info.len())
        else {
            break;
        };
        let Some(version) = word(start + initial, 2) else {
            break;
        };
        let holds_code = match version {
            2..=4 => true,
            5 => matches!(
                word(start + initial + 2, 1),
                Some(0x01 /* DW_UT_compile */) | Some(0x04 /* DW_UT_skeleton */)
            ),
            _ => break,
        };
        if holds_code {
            spans.push((start, end));
        }
        start = end;
    }
    spans
}

/// A page of a section read with `module::peek`, for many small reads close together.
struct Window {
    start: usize,
    len: usize,
    bytes: [u8; 4096],
}

impl Default for Window {
    fn default() -> Window {
        Window {
            start: 0,
            len: 0,
            bytes: [0; 4096],
        }
    }
}

impl Window {
    /// `size` (at most 8) bytes of `data` at `offset`.
    fn read(&mut self, data: &'static [u8], offset: usize, size: usize) -> Option<&[u8]> {
        let end = offset.checked_add(size)?;
        if offset < self.start || end > self.start + self.len {
            let len = self.bytes.len().min(data.len().checked_sub(offset)?);
            if len < size || !super::module::peek(data, offset, &mut self.bytes[..len]) {
                return None;
            }
            self.start = offset;
            self.len = len;
        }
        Some(&self.bytes[offset - self.start..end - self.start])
    }
}

/// Whether a unit's abbreviations use a form that refers into another unit or file:
/// read straight from the table (code, tag, children, then attribute/form pairs up to
/// 0/0, the table ending with code 0), since gimli does not list a table's entries.
fn refers_out(
    debug_abbrev: &gimli::DebugAbbrev<Reader>,
    offset: gimli::DebugAbbrevOffset<usize>,
) -> Result<bool, gimli::Error> {
    let mut input = *debug_abbrev.reader();
    input.skip(offset.0)?;
    while input.read_uleb128()? != 0 {
        input.read_uleb128()?; // tag
        input.read_u8()?; // has children
        loop {
            let name = input.read_uleb128()?;
            let form = gimli::DwForm(input.read_uleb128_u16()?);
            if name == 0 && form.0 == 0 {
                break;
            }
            match form {
                gimli::DW_FORM_ref_addr
                | gimli::DW_FORM_GNU_ref_alt
                | gimli::DW_FORM_ref_sup4
                | gimli::DW_FORM_ref_sup8 => return Ok(true),
                gimli::DW_FORM_implicit_const => {
                    input.read_sleb128()?;
                }
                _ => {}
            }
        }
    }
    Ok(false)
}

fn whole_context(mut dwarf: gimli::Dwarf<Reader>) -> Option<Context> {
    // Units of one library mostly share abbreviation tables: parse each table once, as
    // addr2line's own loader does.
    dwarf.populate_abbreviations_cache(gimli::AbbreviationsCacheStrategy::Duplicates);
    Context::from_dwarf(dwarf).ok()
}

/// addr2line's location as a frame holds it: file, line, column (0: unknown).
fn place(location: addr2line::Location) -> (Option<Arc<str>>, u32, u32) {
    (
        location.file.map(Arc::from),
        location.line.unwrap_or(0),
        location.column.unwrap_or(0),
    )
}

fn frames(context: &Context, address: u64) -> Vec<SourceFrame> {
    let mut out = Vec::new();
    let Ok(mut frames) = context.find_frames(address).skip_all_loads() else {
        return out;
    };
    while let Ok(Some(frame)) = frames.next() {
        let function = frame.function.as_ref().and_then(|f| {
            let raw = f.raw_name().ok()?;
            Some(Arc::from(demangle(&raw, f.language)))
        });
        let (file, line, column) = frame.location.map_or((None, 0, 0), place);
        out.push(SourceFrame {
            function,
            file,
            line,
            column,
        });
    }
    out
}

/// The sections lookups read, inflated.
struct Sections {
    endian: RunTimeEndian,
    data: Vec<(gimli::SectionId, &'static [u8])>,
}

impl Sections {
    /// Side by side, largest first, one worker per core: libc's debug file alone holds
    /// 4 MB of zlib-compressed DWARF, and on two cores this halves the wait. A thread
    /// per section made `.debug_info`, the longest (about 10 ms here), share its core
    /// with the small ones and finish last. Through the cache of inflated sections (see
    /// `cache`).
    fn load(file: &object::File<'static>, build_id: Option<&[u8]>) -> Sections {
        let endian = if object::Object::is_little_endian(file) {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        // Only what names functions and lines: location lists and macros are large and
        // say nothing about them, type units hold no code, name indexes are not used.
        let mut wanted: Vec<(gimli::SectionId, u64)> = [
            gimli::SectionId::DebugAbbrev,
            gimli::SectionId::DebugAddr,
            gimli::SectionId::DebugAranges,
            gimli::SectionId::DebugInfo,
            gimli::SectionId::DebugLine,
            gimli::SectionId::DebugLineStr,
            gimli::SectionId::DebugStr,
            gimli::SectionId::DebugStrOffsets,
            gimli::SectionId::DebugRanges,
            gimli::SectionId::DebugRngLists,
        ]
        .into_iter()
        .filter_map(|id| {
            let section = object::Object::section_by_name(file, id.name())?;
            let size = object::ObjectSection::compressed_file_range(&section)
                .map_or(0, |range| range.compressed_size);
            Some((id, size))
        })
        .collect();
        wanted.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = crate::procfs::usable_cores().min(wanted.len());
        let data = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let _background = crate::priority::work_in_background();
                        let mut done = Vec::new();
                        loop {
                            let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(&(id, _)) = wanted.get(at) else {
                                return done;
                            };
                            if let Some(data) = cache::section_data(file, build_id, id.name()) {
                                done.push((id, data));
                            }
                        }
                    })
                })
                .collect();
            threads
                .into_iter()
                .filter_map(|t| t.join().ok())
                .flatten()
                .collect()
        });
        Sections { endian, data }
    }

    fn dwarf(&self) -> gimli::Dwarf<Reader> {
        let load = gimli::Dwarf::load(|id| -> Result<Reader, std::convert::Infallible> {
            let data = self.data.iter().find(|(section, _)| *section == id);
            Ok(gimli::EndianSlice::new(
                data.map_or(&[], |d| d.1),
                self.endian,
            ))
        });
        match load {
            Ok(dwarf) => dwarf,
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(bytes: &'static [u8]) -> Reader {
        gimli::EndianSlice::new(bytes, RunTimeEndian::Little)
    }

    /// The header scan finds the same compile units as gimli's iterator, here on libc's
    /// debug file (DWARF 5) and on this rustc test binary (DWARF 4).
    #[test]
    fn unit_spans_match_gimli() {
        let exe = std::env::current_exe().unwrap();
        let libc = libc_debug_file();
        if libc.is_none() {
            crate::test_skip::skip_or_fail(
                "no debug file for libc (apt-get install libc6-dbg): DWARF 5 is not checked",
            );
        }
        let files = [libc, Some(crate::symbols::module::map_file(&exe).unwrap())];
        for data in files.into_iter().flatten() {
            let dwarf = Dwarf::load(&object::File::parse(data).unwrap());
            let sections = &dwarf.sections;
            let mut expected = Vec::new();
            let mut headers = sections.units();
            while let Ok(Some(header)) = headers.next() {
                if matches!(
                    header.type_(),
                    gimli::UnitType::Compilation | gimli::UnitType::Skeleton(_)
                ) {
                    let start = header.debug_info_offset().unwrap().0;
                    expected.push((start, start + header.length_including_self()));
                }
            }
            let info = sections.debug_info.reader();
            assert!(!expected.is_empty());
            assert_eq!(code_unit_spans(info.slice(), info.endian()), expected);
        }
    }

    #[test]
    fn abbreviations_referring_out_are_found() {
        let at_start = gimli::DebugAbbrevOffset(0);
        // code 1, DW_TAG_compile_unit, children; DW_AT_name/DW_FORM_strp; 0/0; end.
        let plain = gimli::DebugAbbrev::from(le(&[1, 0x11, 1, 0x03, 0x0e, 0, 0, 0]));
        assert!(!refers_out(&plain, at_start).unwrap());
        // code 1 subprogram with DW_AT_decl_file implicit_const 5, then code 2 with
        // DW_AT_abstract_origin/DW_FORM_ref_addr.
        let out = gimli::DebugAbbrev::from(le(&[
            1, 0x2e, 0, 0x3a, 0x21, 5, 0, 0, 2, 0x1d, 0, 0x31, 0x10, 0, 0, 0,
        ]));
        assert!(refers_out(&out, at_start).unwrap());
    }

    /// libc's separate debug file (Debian's libc6-dbg), found by the build-id of the
    /// libc this test runs on.
    fn libc_debug_file() -> Option<&'static [u8]> {
        use object::Object;
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let libc = maps
            .lines()
            .filter_map(|line| line.split_whitespace().nth(5))
            .find(|path| path.contains("/libc.so"))?;
        let data = crate::symbols::module::map_file(std::path::Path::new(libc)).ok()?;
        let id = object::File::parse(data).ok()?.build_id().ok()??;
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let path = format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]);
        crate::symbols::module::map_file(std::path::Path::new(&path)).ok()
    }

    /// A file's DWARF, which must be indexed unit by unit (`why` says why it can be),
    /// and the whole-file context its answers are compared with.
    fn by_unit_and_whole(data: &'static [u8], why: &str) -> (Dwarf, Context) {
        let dwarf = Dwarf::load(&object::File::parse(data).unwrap());
        assert!(dwarf.by_unit.is_some(), "not indexed by unit, though {why}");
        let whole = whole_context(dwarf.raw.dwarf()).unwrap();
        (dwarf, whole)
    }

    /// This test binary, built by rustc: no `.debug_aranges`, so every unit is placed
    /// by its own ranges.
    #[test]
    fn rust_units_answer_as_the_whole_file_does() {
        let exe = std::env::current_exe().unwrap();
        let data = crate::symbols::module::map_file(&exe).unwrap();
        let (dwarf, whole) =
            by_unit_and_whole(data, "every unit of a rustc binary has root ranges");
        let index = dwarf.by_unit.as_ref().unwrap();
        let mut compared = 0;
        let step = (index.ranges.len() / 400).max(1);
        for &(start, end, _) in index.ranges.iter().step_by(step) {
            for address in [start, start + (end - start) / 2, end - 1] {
                let expected = frames(&whole, address);
                assert_eq!(dwarf.source_frames(address), expected, "at {address:#x}");
                compared += usize::from(!expected.is_empty());
            }
        }
        assert!(compared > 200, "few addresses compared: {compared}");
    }

    #[test]
    fn units_answer_as_the_whole_file_does() {
        let Some(data) = libc_debug_file() else {
            crate::test_skip::skip_or_fail("no debug file for libc (apt-get install libc6-dbg)");
            return;
        };
        let (dwarf, whole) = by_unit_and_whole(data, "libc's .debug_aranges lists every unit");
        let index = dwarf.by_unit.as_ref().unwrap();
        // Assembly units describe one routine under several names (`__GI_uname`,
        // `__uname`) with the same range; addr2line's pick among them is arbitrary, so
        // where ours differs, both must be names of that one address.
        let file = object::File::parse(data).unwrap();
        let address_of: std::collections::HashMap<&str, u64> = object::Object::symbols(&file)
            .filter_map(|s| {
                Some((
                    object::ObjectSymbol::name(&s).ok()?,
                    object::ObjectSymbol::address(&s),
                ))
            })
            .collect();
        let (mut compared, mut aliases) = (0, 0);
        for &(start, end, _) in index.ranges.iter().step_by(5) {
            for address in [start, start + (end - start) / 2, end - 1] {
                let expected = frames(&whole, address);
                let mut got = dwarf.source_frames(address);
                let (Some(ours), Some(theirs)) = (got.last_mut(), expected.last()) else {
                    assert_eq!(got, expected, "at {address:#x}");
                    continue;
                };
                if ours.function != theirs.function {
                    let at = |f: &Option<Arc<str>>| address_of.get(f.as_deref()?).copied();
                    assert!(
                        at(&ours.function).is_some() && at(&ours.function) == at(&theirs.function),
                        "at {address:#x}: {:?} is not another name of {:?}",
                        ours.function,
                        theirs.function
                    );
                    ours.function.clone_from(&theirs.function);
                    aliases += 1;
                }
                assert_eq!(got, expected, "at {address:#x}");
                compared += usize::from(expected.len() > 1);
            }
        }
        assert!(compared > 100, "few inlined calls compared: {compared}");
        assert!(aliases < 200, "{aliases} addresses named differently");
    }
}
