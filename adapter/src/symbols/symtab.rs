//! Addresses to names from an ELF symbol table (`.symtab`, else `.dynsym`), for code
//! that DWARF does not describe (`_start`, stripped libraries).
//!
//! object's `SymbolMap` reads every symbol's name up front. For latch's own debug build
//! (48,000 symbols, a 4 MiB `.strtab`) that made the whole string table and symbol
//! table resident in latch's memory, to name one frame (`_start`). Here the table is
//! read from the file (`module::peek`) into a compact index of addresses, sizes and
//! name offsets, and a name is read only when a lookup returns it. The choice of symbol
//! at an address and the sizes guessed for symbols without one follow object's
//! `SymbolMapBuilder`.

use object::elf;
use object::read::elf::{FileHeader, SectionHeader};

use super::module::{peek, read_c_string};

/// Symbols sorted by address, one per address.
pub struct SymbolTable {
    entries: Vec<Entry>,
    /// The string table the names are in.
    strings: &'static [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    address: u64,
    size: u64,
    /// Offset of the name in `strings`.
    name: u32,
}

/// Bytes of one ELF64 symbol: name u32, info u8, other u8, section u16, value u64, size u64.
const SYMBOL_SIZE: usize = 24;
/// Symbols are read from the file this many at a time.
const SYMBOLS_PER_READ: usize = 2730;

impl SymbolTable {
    pub fn empty() -> SymbolTable {
        SymbolTable {
            entries: Vec::new(),
            strings: &[],
        }
    }

    /// The larger table among `files` (a debug file usually has the `.symtab` that the
    /// stripped binary lacks). Only little-endian ELF64, the only kind latch unwinds.
    pub fn largest_of(files: &[&'static [u8]]) -> SymbolTable {
        files
            .iter()
            .filter_map(|data| Located::find(data))
            .max_by_key(|table| table.count())
            .and_then(|table| table.read())
            .unwrap_or_else(SymbolTable::empty)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name of the symbol whose range holds `address` (file numbering), as written
    /// in the table (mangled, maybe `name@VERSION`).
    pub fn containing(&self, address: u64) -> Option<String> {
        let at = self.entries.partition_point(|e| e.address <= address);
        let entry = self.entries.get(at.checked_sub(1)?)?;
        // As object's map: a symbol whose size nothing bounds holds what follows it.
        if entry.size != 0 && address - entry.address >= entry.size {
            return None;
        }
        let name = read_c_string(self.strings, entry.name as usize)?;
        // ARM mapping symbols ($x, $d) mark code and data, they name nothing.
        (!name.is_empty() && !name.starts_with('$')).then_some(name)
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

    fn read(self) -> Option<SymbolTable> {
        // (address, priority, index, size, name): lower priority wins at one address.
        let mut all: Vec<(u64, u32, usize, u64, u32)> = Vec::new();
        let mut chunk = vec![0u8; SYMBOLS_PER_READ * SYMBOL_SIZE];
        let mut index = 0;
        while index < self.count() {
            let n = (self.count() - index).min(SYMBOLS_PER_READ);
            let chunk = &mut chunk[..n * SYMBOL_SIZE];
            if !peek(self.symbols, index * SYMBOL_SIZE, chunk) {
                return None;
            }
            for (i, raw) in chunk.chunks_exact(SYMBOL_SIZE).enumerate() {
                let symbol = Symbol::parse(raw);
                if let Some(priority) = symbol.priority() {
                    let later_first = usize::MAX - (index + i);
                    all.push((
                        symbol.value,
                        priority,
                        later_first,
                        symbol.size,
                        symbol.name,
                    ));
                }
            }
            index += n;
        }
        // Section ends, with no name, improve the guesses for symbols without a size.
        const END: u32 = u32::MAX;
        for (address, size) in &self.sections {
            all.push((address.saturating_add(*size), END, 0, 0, 0));
        }
        all.sort_unstable();
        let mut entries: Vec<Entry> = Vec::with_capacity(all.len());
        for (address, priority, _, size, name) in all {
            if entries.last().is_some_and(|e| e.address == address) {
                continue;
            }
            let name = if priority == END { u32::MAX } else { name };
            entries.push(Entry {
                address,
                size,
                name,
            });
        }
        // A symbol without a size reaches the next symbol or section end.
        let mut next = entries.last().map_or(0, |e| e.address);
        for entry in entries.iter_mut().rev().skip(1) {
            if entry.size == 0 {
                entry.size = next.saturating_sub(entry.address);
            }
            next = entry.address;
        }
        entries.retain(|e| e.name != u32::MAX);
        entries.shrink_to_fit();
        Some(SymbolTable {
            entries,
            strings: self.strings,
        })
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
    /// the names are object's symbol map's. Returns how many addresses were checked.
    fn matches_objects_symbol_map(data: &'static [u8]) -> usize {
        let file = object::File::parse(data).unwrap();
        let reference = file.symbol_map();
        let table = SymbolTable::largest_of(&[data]);
        let mut checked = 0;
        let symbols = file.symbols().chain(file.dynamic_symbols());
        for symbol in symbols {
            if symbol.kind() != object::SymbolKind::Text || symbol.size() == 0 {
                continue;
            }
            let a = symbol.address();
            for address in [
                a,
                a + symbol.size() / 2,
                a + symbol.size() - 1,
                a + symbol.size(),
            ] {
                let expected = reference.containing(address).map(|s| s.name().to_string());
                assert_eq!(table.containing(address), expected, "at {address:#x}");
                checked += 1;
            }
        }
        checked
    }

    #[test]
    fn names_match_objects_symbol_map() {
        let exe = std::env::current_exe().unwrap();
        let data = super::super::module::map_file(&exe).unwrap();
        let checked = matches_objects_symbol_map(data);
        assert!(checked > 10_000, "only {checked} addresses checked");
        // A shared library has only `.dynsym` once stripped, as Debian ships it.
        let libc = std::path::Path::new("/lib/x86_64-linux-gnu/libc.so.6");
        let data = super::super::module::map_file(libc).unwrap();
        let checked = matches_objects_symbol_map(data);
        assert!(checked > 1_000, "only {checked} addresses of libc checked");
    }
}
