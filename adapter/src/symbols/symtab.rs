//! Addresses to names from an ELF symbol table (`.symtab`, else `.dynsym`), for code
//! that DWARF does not describe (`_start`, stripped libraries).
//!
//! object's `SymbolMap` reads every symbol's name up front. For latch's own debug build
//! (48,000 symbols, a 4 MiB `.strtab`) that made the whole string table and symbol
//! table resident in latch's memory, to name one frame (`_start`). Here the table is
//! read from the file (`module::peek`), and a name only when a lookup returns it. A
//! module with DWARF asks for a handful of addresses: each is answered by one pass over
//! the table. Past `SCANS_BEFORE_INDEX` lookups (a module without DWARF), the table is
//! indexed once: addresses, sizes and name offsets, 24 bytes a symbol. The choice of
//! symbol at an address and the sizes guessed for symbols without one follow object's
//! `SymbolMapBuilder`.

use std::cell::{Cell, OnceCell};

use object::elf;
use object::read::elf::{FileHeader, SectionHeader};

use super::module::{peek, read_c_string};

/// Lookups answered by a pass over the table before it is indexed.
const SCANS_BEFORE_INDEX: usize = 16;

pub struct SymbolTable {
    located: Option<Located>,
    /// Symbols sorted by address, one per address, once built.
    index: OnceCell<Vec<Entry>>,
    lookups: Cell<usize>,
}

/// 24 bytes: a large binary has tens of thousands.
#[derive(Clone, Copy, Debug)]
struct Entry {
    address: u64,
    size: u64,
    /// Which of the symbols at one address names it: the lowest rank (see `rank`).
    rank: u32,
    /// Offset of the name in the string table.
    name: u32,
}

/// Orders symbols at one address as object's map does: by `Symbol::priority`, then the
/// later symbol in the table first (an earlier one is likely less specific).
fn rank(priority: u32, index: usize) -> u32 {
    const INDEX_BITS: u32 = 27;
    const MAX_INDEX: u32 = (1 << INDEX_BITS) - 1;
    let index = u32::try_from(index).unwrap_or(MAX_INDEX).min(MAX_INDEX);
    priority << INDEX_BITS | (MAX_INDEX - index)
}

/// Ranks after every symbol's: a section's end names nothing.
const SECTION_END: u32 = u32::MAX;
const NO_NAME: u32 = u32::MAX;

/// Bytes of one ELF64 symbol: name u32, info u8, other u8, section u16, value u64, size u64.
const SYMBOL_SIZE: usize = 24;
/// Symbols are read from the file this many at a time.
const SYMBOLS_PER_READ: usize = 2730;

impl SymbolTable {
    /// The larger table among `files` (a debug file usually has the `.symtab` that the
    /// stripped binary lacks). Only little-endian ELF64, the only kind latch unwinds.
    pub fn largest_of(files: &[&'static [u8]]) -> SymbolTable {
        SymbolTable {
            located: files
                .iter()
                .filter_map(|data| Located::find(data))
                .max_by_key(|table| table.count()),
            index: OnceCell::new(),
            lookups: Cell::new(0),
        }
    }

    /// Whether no symbol names any address.
    pub fn is_empty(&self) -> bool {
        let Some(located) = &self.located else {
            return true;
        };
        let mut any = false;
        located.each_candidate(|entry| {
            any |= entry.name != NO_NAME;
            !any
        });
        !any
    }

    /// The name of the symbol whose range holds `address` (file numbering), as written
    /// in the table (mangled, maybe `name@VERSION`).
    pub fn containing(&self, address: u64) -> Option<String> {
        let located = self.located.as_ref()?;
        let lookups = self.lookups.get() + 1;
        self.lookups.set(lookups);
        let entry = if lookups > SCANS_BEFORE_INDEX {
            located.indexed(self.index.get_or_init(|| located.index()), address)?
        } else {
            located.scan(address)?
        };
        located.name_if_holding(entry, address)
    }

    /// [start, end) of the symbol whose range holds `address`, when it has a size.
    pub fn range_containing(&self, address: u64) -> Option<(u64, u64)> {
        let located = self.located.as_ref()?;
        let entry = located.indexed(self.index.get_or_init(|| located.index()), address)?;
        located.name_if_holding(entry, address)?;
        (entry.size != 0).then(|| (entry.address, entry.address + entry.size))
    }
}

/// Where a file's symbol table and its strings are, from the section headers alone.
struct Located {
    symbols: &'static [u8],
    strings: &'static [u8],
    /// (address, size) of each allocated section: their ends bound the guessed sizes.
    sections: Vec<(u64, u64)>,
}

impl Located {
    fn find(data: &'static [u8]) -> Option<Located> {
        let header = elf::FileHeader64::<object::LittleEndian>::parse(data).ok()?;
        let endian = header.endian().ok()?;
        if !header.is_little_endian() {
            return None;
        }
        let sections = header.sections(endian, data).ok()?;
        let table = [elf::SHT_SYMTAB, elf::SHT_DYNSYM]
            .into_iter()
            .find_map(|kind| {
                sections
                    .iter()
                    .find(|s| s.sh_type(endian) == kind && s.sh_size(endian) > 0)
            })?;
        let bytes = |s: &elf::SectionHeader64<object::LittleEndian>| -> Option<&'static [u8]> {
            let start = usize::try_from(s.sh_offset(endian)).ok()?;
            let size = usize::try_from(s.sh_size(endian)).ok()?;
            data.get(start..start.checked_add(size)?)
        };
        let strings = sections.section(table.link(endian)).ok()?;
        Some(Located {
            symbols: bytes(table)?,
            strings: bytes(strings)?,
            sections: sections
                .iter()
                .filter(|s| s.sh_flags(endian).0 & elf::SHF_ALLOC.0 != 0)
                .map(|s| (s.sh_addr(endian), s.sh_size(endian)))
                .collect(),
        })
    }

    fn count(&self) -> usize {
        self.symbols.len() / SYMBOL_SIZE
    }

    /// Calls `f` with every symbol that can name an address, then every section end
    /// (`NO_NAME`, ranked last), until it returns false.
    fn each_candidate(&self, mut f: impl FnMut(Entry) -> bool) {
        let mut chunk = vec![0u8; SYMBOLS_PER_READ * SYMBOL_SIZE];
        let mut index = 0;
        while index < self.count() {
            let n = (self.count() - index).min(SYMBOLS_PER_READ);
            let chunk = &mut chunk[..n * SYMBOL_SIZE];
            if !peek(self.symbols, index * SYMBOL_SIZE, chunk) {
                return;
            }
            for (i, raw) in chunk.chunks_exact(SYMBOL_SIZE).enumerate() {
                let symbol = Symbol::parse(raw);
                if let Some(priority) = symbol.priority() {
                    let entry = Entry {
                        address: symbol.value,
                        rank: rank(priority, index + i),
                        size: symbol.size,
                        name: symbol.name,
                    };
                    if !f(entry) {
                        return;
                    }
                }
            }
            index += n;
        }
        for (address, size) in &self.sections {
            let end = Entry {
                address: address.saturating_add(*size),
                rank: SECTION_END,
                size: 0,
                name: NO_NAME,
            };
            if !f(end) {
                return;
            }
        }
    }

    /// What the index would answer for `address`, from two passes over the table: the
    /// symbol at the highest address up to it (the lowest rank there), and, when that
    /// symbol has no size, the next address anything starts or ends at.
    fn scan(&self, address: u64) -> Option<Entry> {
        let mut best: Option<Entry> = None;
        self.each_candidate(|e| {
            let better = best.is_none_or(|b| (e.address, b.rank) > (b.address, e.rank));
            if e.name != NO_NAME && e.address <= address && better {
                best = Some(e);
            }
            true
        });
        let mut best = best?;
        if best.size == 0 {
            let mut next: Option<u64> = None;
            self.each_candidate(|e| {
                if e.address > best.address {
                    next = Some(next.map_or(e.address, |n| n.min(e.address)));
                }
                true
            });
            if let Some(next) = next {
                best.size = next - best.address;
            }
        }
        Some(best)
    }

    fn indexed(&self, index: &[Entry], address: u64) -> Option<Entry> {
        index
            .get(
                index
                    .partition_point(|e| e.address <= address)
                    .checked_sub(1)?,
            )
            .copied()
    }

    fn name_if_holding(&self, entry: Entry, address: u64) -> Option<String> {
        // As object's map: a symbol whose size nothing bounds holds what follows it.
        if entry.size != 0 && address - entry.address >= entry.size {
            return None;
        }
        let name = read_c_string(self.strings, entry.name as usize)?;
        // ARM mapping symbols ($x, $d) mark code and data, they name nothing.
        (!name.is_empty() && !name.starts_with('$')).then_some(name)
    }

    /// Every named address once, sorted, with the sizes guessed.
    fn index(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = Vec::with_capacity(self.count() + self.sections.len());
        self.each_candidate(|e| {
            entries.push(e);
            true
        });
        entries.sort_unstable_by_key(|e| (e.address, e.rank));
        entries.dedup_by_key(|e| e.address);
        // A symbol without a size reaches the next symbol or section end.
        let mut next = entries.last().map_or(0, |e| e.address);
        for entry in entries.iter_mut().rev().skip(1) {
            if entry.size == 0 {
                entry.size = next.saturating_sub(entry.address);
            }
            next = entry.address;
        }
        entries.retain(|e| e.name != NO_NAME);
        entries.shrink_to_fit();
        entries
    }
}

struct Symbol {
    name: u32,
    kind: elf::SymbolType,
    bind: elf::SymbolBind,
    visibility: elf::SymbolVisibility,
    section: elf::SymbolSection,
    value: u64,
    size: u64,
}

impl Symbol {
    fn parse(raw: &[u8]) -> Symbol {
        let u32_at = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().unwrap());
        Symbol {
            name: u32_at(0),
            kind: elf::SymbolType(raw[4] & 0xf),
            bind: elf::SymbolBind(raw[4] >> 4),
            visibility: elf::SymbolVisibility(raw[5] & 0x3),
            section: elf::SymbolSection(u16::from_le_bytes([raw[6], raw[7]])),
            value: u64_at(8),
            size: u64_at(16),
        }
    }

    /// As object's symbol map ranks symbols at one address (lower wins): defined
    /// functions and objects before untyped symbols, sized before unsized, exported
    /// before hidden before local. `None` for what names no code or data: undefined,
    /// special sections, files, sections, TLS, unnamed symbols.
    fn priority(&self) -> Option<u32> {
        if (self.section.is_special() && self.section != elf::SHN_XINDEX) || self.name == 0 {
            return None;
        }
        let kind = match self.kind {
            elf::STT_FUNC | elf::STT_OBJECT => 0,
            elf::STT_NOTYPE => 1,
            _ => return None,
        };
        let sizeless = u32::from(self.size == 0);
        let scope = match self.bind {
            elf::STB_LOCAL => 2,
            elf::STB_GLOBAL | elf::STB_WEAK if self.visibility == elf::STV_HIDDEN => 1,
            elf::STB_GLOBAL | elf::STB_WEAK => 0,
            _ => 3,
        };
        Some((kind * 2 + sizeless) * 4 + scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::{Object, ObjectSymbol};

    /// At the start, middle and last byte of every function symbol, and just past it,
    /// the index names what object's symbol map names; so does a scan, at every
    /// `scan_every`th function. Returns how many addresses were checked.
    fn matches_objects_symbol_map(data: &'static [u8], scan_every: usize) -> usize {
        let file = object::File::parse(data).unwrap();
        let reference = file.symbol_map();
        let located = Located::find(data).unwrap();
        let index = located.index();
        let mut checked = 0;
        let functions = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 0);
        for (n, symbol) in functions.enumerate() {
            let a = symbol.address();
            for address in [
                a,
                a + symbol.size() / 2,
                a + symbol.size() - 1,
                a + symbol.size(),
            ] {
                let expected = reference.containing(address).map(|s| s.name().to_string());
                let indexed = located
                    .indexed(&index, address)
                    .and_then(|e| located.name_if_holding(e, address));
                assert_eq!(indexed, expected, "index at {address:#x}");
                if n % scan_every == 0 {
                    let scanned = located
                        .scan(address)
                        .and_then(|e| located.name_if_holding(e, address));
                    assert_eq!(scanned, expected, "scan at {address:#x}");
                }
                checked += 1;
            }
        }
        checked
    }

    #[test]
    fn names_match_objects_symbol_map() {
        let exe = std::env::current_exe().unwrap();
        let data = super::super::module::map_file(&exe).unwrap();
        let checked = matches_objects_symbol_map(data, 1000);
        assert!(checked > 10_000, "only {checked} addresses checked");
        // A shared library has only `.dynsym` once stripped, as Debian ships it.
        let libc = std::path::Path::new("/lib/x86_64-linux-gnu/libc.so.6");
        let data = super::super::module::map_file(libc).unwrap();
        let checked = matches_objects_symbol_map(data, 10);
        assert!(checked > 1_000, "only {checked} addresses of libc checked");
    }

    #[test]
    fn lookups_scan_then_index() {
        let exe = std::env::current_exe().unwrap();
        let data = super::super::module::map_file(&exe).unwrap();
        let table = SymbolTable::largest_of(&[data]);
        let file = object::File::parse(data).unwrap();
        let symbol = file
            .symbols()
            .find(|s| {
                s.name()
                    .is_ok_and(|n| n.contains("lookups_scan_then_index"))
            })
            .unwrap();
        for _ in 0..SCANS_BEFORE_INDEX + 2 {
            let name = table.containing(symbol.address()).unwrap();
            assert!(name.contains("lookups_scan_then_index"), "{name}");
        }
        assert!(table.index.get().is_some(), "indexed after many lookups");
        assert!(!table.is_empty());
    }
}
