//! The function and the chain of inlined calls at an address, within one compile unit,
//! reading the names of those calls only.
//!
//! addr2line finds the same chain, but reads the name of every call inlined anywhere in
//! a function it looks at. Rust code inlines hundreds of calls into one function, and
//! their names are spread over `.debug_str`: naming the dozen frames of one thread of
//! latch's debug build made 8.4 MiB of its `.debug_str` resident (the kernel maps
//! 64 KiB around every page touched). addr2line still answers the source lines.

use gimli::AttributeValue;

use super::module::{read_c_string, Reader};

/// One call in the chain, outermost first.
pub struct Call {
    /// The DIE to name the call by.
    pub entry: gimli::UnitOffset<usize>,
    /// Where it was called from (for inlined calls): file index, line, column.
    pub call_file: Option<u64>,
    pub call_line: u32,
    pub call_column: u32,
}

/// The function whose code holds `address` and the calls inlined into it there,
/// outermost first; `None` when no function of the unit holds it.
pub fn calls_at(unit: gimli::UnitRef<Reader>, address: u64) -> gimli::Result<Option<Vec<Call>>> {
    let Some(function) = function_at(unit, address)? else {
        return Ok(None);
    };
    let mut chain = vec![Call {
        entry: function,
        call_file: None,
        call_line: 0,
        call_column: 0,
    }];
    let mut entries = unit.entries_raw(Some(function))?;
    // Depths are relative to the function: only its descendants are searched, and once
    // an inlined call holds the address, only that call's descendants.
    let mut inside = entries.next_depth();
    if let Some(abbrev) = entries.read_abbreviation()? {
        entries.skip_attributes(abbrev.attributes())?;
    }
    loop {
        let depth = entries.next_depth();
        if depth <= inside || entries.is_empty() {
            break;
        }
        let offset = entries.next_offset();
        let Some(abbrev) = entries.read_abbreviation()? else {
            continue;
        };
        match abbrev.tag() {
            gimli::DW_TAG_inlined_subroutine => {
                let mut extent = Extent::default();
                let mut call = Call {
                    entry: offset,
                    call_file: None,
                    call_line: 0,
                    call_column: 0,
                };
                for spec in abbrev.attributes() {
                    let attr = entries.read_attribute(*spec)?;
                    match attr.name() {
                        // As addr2line: index 0 names no file before DWARF 5.
                        gimli::DW_AT_call_file => {
                            if let AttributeValue::FileIndex(index) = attr.value() {
                                if index > 0 || unit.header.version() >= 5 {
                                    call.call_file = Some(index);
                                }
                            }
                        }
                        gimli::DW_AT_call_line => {
                            call.call_line = attr.udata_value().unwrap_or(0) as u32;
                        }
                        gimli::DW_AT_call_column => {
                            call.call_column = attr.udata_value().unwrap_or(0) as u32;
                        }
                        _ => extent.note(unit, &attr)?,
                    }
                }
                if extent.contains(unit, address)? {
                    chain.push(call);
                    inside = depth;
                } else {
                    skip_children(&mut entries, depth)?;
                }
            }
            // A nested function's code is its own, not this one's.
            gimli::DW_TAG_subprogram => {
                entries.skip_attributes(abbrev.attributes())?;
                skip_children(&mut entries, depth)?;
            }
            // Lexical blocks and the like: inlined calls may be inside.
            _ => entries.skip_attributes(abbrev.attributes())?,
        }
    }
    Ok(Some(chain))
}

/// The function (`DW_TAG_subprogram` with code) whose ranges hold `address`. Assembly
/// units describe one routine under several names one after the other (`__clone3`,
/// `clone3`): the last of them is taken, the public name where glibc has one, as gdb
/// shows it.
fn function_at(
    unit: gimli::UnitRef<Reader>,
    address: u64,
) -> gimli::Result<Option<gimli::UnitOffset<usize>>> {
    let mut found = None;
    let mut entries = unit.entries_raw(None)?;
    while !entries.is_empty() {
        let offset = entries.next_offset();
        let Some(abbrev) = entries.read_abbreviation()? else {
            continue;
        };
        if abbrev.tag() != gimli::DW_TAG_subprogram {
            entries.skip_attributes(abbrev.attributes())?;
            continue;
        }
        let mut extent = Extent::default();
        for spec in abbrev.attributes() {
            extent.note(unit, &entries.read_attribute(*spec)?)?;
        }
        if extent.contains(unit, address)? {
            found = Some(offset);
        } else if found.is_some() {
            break;
        }
    }
    Ok(found)
}

/// Skips the descendants of the entry at `depth` whose attributes were just read.
fn skip_children(entries: &mut gimli::EntriesRaw<Reader>, depth: isize) -> gimli::Result<()> {
    while !entries.is_empty() && entries.next_depth() > depth {
        if let Some(abbrev) = entries.read_abbreviation()? {
            entries.skip_attributes(abbrev.attributes())?;
        }
    }
    Ok(())
}

/// The name of a function or inlined call, as addr2line reads it: the linkage name,
/// else the name, else that of the entry it is an instance or definition of.
pub fn name_of(unit: gimli::UnitRef<Reader>, entry: gimli::UnitOffset<usize>) -> Option<String> {
    let mut entry = entry;
    // Chains of abstract origins and specifications are short; a loop is a bad file.
    for _ in 0..16 {
        let die = unit.entry(entry).ok()?;
        let names = [
            gimli::DW_AT_linkage_name,
            gimli::DW_AT_MIPS_linkage_name,
            gimli::DW_AT_name,
        ];
        for name in names {
            if let Some(text) = die.attr_value(name).and_then(|v| string(unit, v)) {
                return Some(text);
            }
        }
        let next = die
            .attr_value(gimli::DW_AT_abstract_origin)
            .or_else(|| die.attr_value(gimli::DW_AT_specification));
        match next {
            Some(AttributeValue::UnitRef(offset)) => entry = offset,
            // References into other units never get here: such units are read by the
            // whole-file context (see `dwarf::refers_out`).
            _ => return None,
        }
    }
    None
}

/// A string attribute's text. Strings in `.debug_str` are read from the file
/// (`module::read_c_string`): through the mapping, each name of a frame made the
/// 64 KiB around it resident, 3.3 MiB for the 160 frames of latch's debug build.
fn string(unit: gimli::UnitRef<Reader>, value: AttributeValue<Reader>) -> Option<String> {
    let offset = match value {
        AttributeValue::DebugStrRef(offset) => offset,
        AttributeValue::DebugStrOffsetsIndex(index) => unit.string_offset(index).ok()?,
        other => return Some(unit.attr_string(other).ok()?.to_string_lossy().into_owned()),
    };
    use gimli::Section;
    read_c_string(unit.dwarf.debug_str.reader().slice(), offset.0)
}

/// The path of file `index` of the unit's line program, as addr2line renders it: the
/// unit's directory, the file's directory (unless it is the unit's), the file's name;
/// an absolute part replaces what precedes it.
pub fn file_path(unit: gimli::UnitRef<Reader>, index: u64) -> Option<String> {
    let program = unit.line_program.as_ref()?;
    let header = program.header();
    let file = header.file(index)?;
    let text = |value| -> Option<String> {
        Some(unit.attr_string(value).ok()?.to_string_lossy().into_owned())
    };
    let mut path = match &unit.comp_dir {
        Some(dir) => dir.to_string_lossy().into_owned(),
        None => String::new(),
    };
    if file.directory_index() != 0 {
        if let Some(directory) = file.directory(header) {
            push_path(&mut path, &text(directory)?);
        }
    }
    push_path(&mut path, &text(file.path_name())?);
    Some(path)
}

fn push_path(path: &mut String, part: &str) {
    if part.starts_with('/') {
        *path = part.to_string();
        return;
    }
    if !path.is_empty() && !path.ends_with('/') {
        path.push('/');
    }
    path.push_str(part);
}

/// Where an entry's code lies, from its attributes.
#[derive(Default)]
struct Extent {
    low_pc: Option<u64>,
    high_pc: Option<u64>,
    size: Option<u64>,
    ranges: Option<gimli::RangeListsOffset<usize>>,
}

impl Extent {
    fn note(
        &mut self,
        unit: gimli::UnitRef<Reader>,
        attr: &gimli::Attribute<Reader>,
    ) -> gimli::Result<()> {
        match (attr.name(), attr.value()) {
            (gimli::DW_AT_low_pc, AttributeValue::Addr(address)) => self.low_pc = Some(address),
            (gimli::DW_AT_low_pc, AttributeValue::DebugAddrIndex(index)) => {
                self.low_pc = Some(unit.address(index)?)
            }
            (gimli::DW_AT_high_pc, AttributeValue::Addr(address)) => self.high_pc = Some(address),
            (gimli::DW_AT_high_pc, AttributeValue::DebugAddrIndex(index)) => {
                self.high_pc = Some(unit.address(index)?)
            }
            (gimli::DW_AT_high_pc, AttributeValue::Udata(size)) => self.size = Some(size),
            (gimli::DW_AT_ranges, value) => self.ranges = unit.attr_ranges_offset(value)?,
            _ => {}
        }
        Ok(())
    }

    fn contains(&self, unit: gimli::UnitRef<Reader>, address: u64) -> gimli::Result<bool> {
        if let Some(offset) = self.ranges {
            let mut ranges = unit.ranges(offset)?;
            while let Some(range) = ranges.next()? {
                if range.begin <= address && address < range.end {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        let Some(low) = self.low_pc else {
            return Ok(false);
        };
        let end = match (self.high_pc, self.size) {
            (Some(high), _) => high,
            (None, Some(size)) => low.wrapping_add(size),
            (None, None) => return Ok(false),
        };
        Ok(low <= address && address < end)
    }
}
