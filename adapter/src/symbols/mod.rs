//! Addresses to names. For now: the ELF symbol tables of each mapped file, enough to say
//! which function a thread stopped in. DWARF lines and unwinding build on this.

use std::collections::HashMap;
use std::path::PathBuf;

use object::{Object, ObjectSegment, ObjectSymbol};

use crate::procfs::Pid;

/// One file-backed executable mapping from `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
    pub path: String,
}

pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let offset = fields.next()?;
            let _dev = fields.next()?;
            let _inode = fields.next()?;
            let path = fields.collect::<Vec<_>>().join(" ");
            if !perms.contains('x') || path.is_empty() {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                file_offset: u64::from_str_radix(offset, 16).ok()?,
                path,
            })
        })
        .collect()
}

/// Where an address is: the module and, when the symbol tables know, the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub module: String,
    pub function: Option<(String, u64)>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let module = self.module.rsplit('/').next().unwrap_or(&self.module);
        match &self.function {
            Some((name, offset)) => write!(f, "{name}+{offset:#x} ({module})"),
            None => write!(f, "({module})"),
        }
    }
}

/// A sorted symbol table of one file, in the file's own virtual addresses.
struct SymbolTable {
    /// (address, size, name), sorted by address.
    symbols: Vec<(u64, u64, String)>,
    /// (file offset, virtual address, file size) of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
}

impl SymbolTable {
    fn load(path: &std::path::Path) -> Option<SymbolTable> {
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        let mut symbols: Vec<(u64, u64, String)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
            .collect();
        symbols.sort_by_key(|s| s.0);
        symbols.dedup_by_key(|s| s.0);
        let segments = file
            .segments()
            .map(|seg| {
                let (offset, size) = seg.file_range();
                (offset, seg.address(), size)
            })
            .collect();
        Some(SymbolTable { symbols, segments })
    }

    fn virtual_address(&self, file_offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|(offset, _, size)| file_offset >= *offset && file_offset < offset + size)
            .map(|(offset, vaddr, _)| vaddr + (file_offset - offset))
    }

    fn lookup(&self, vaddr: u64) -> Option<(String, u64)> {
        let index = self
            .symbols
            .partition_point(|s| s.0 <= vaddr)
            .checked_sub(1)?;
        let (address, size, name) = &self.symbols[index];
        // A size of 0 (hand-written assembly) still gets the nearest preceding name.
        if *size != 0 && vaddr >= address + size {
            return None;
        }
        Some((name.clone(), vaddr - address))
    }
}

/// Symbolizes addresses of one process; files are loaded on first use and kept.
pub struct ProcessSymbols {
    pid: Pid,
    maps: Vec<Mapping>,
    tables: HashMap<String, Option<SymbolTable>>,
}

impl ProcessSymbols {
    pub fn new(pid: Pid) -> ProcessSymbols {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map(|t| parse_maps(&t))
            .unwrap_or_default();
        ProcessSymbols {
            pid,
            maps,
            tables: HashMap::new(),
        }
    }

    pub fn locate(&mut self, pc: u64) -> Option<Location> {
        let mapping = self
            .maps
            .iter()
            .find(|m| pc >= m.start && pc < m.end)?
            .clone();
        let module = mapping.path.clone();
        if module.starts_with('[') {
            return Some(Location {
                module,
                function: None,
            });
        }
        let pid = self.pid;
        let table = self.tables.entry(module.clone()).or_insert_with(|| {
            // Through the process's root, so containers and deleted files still work.
            let path = PathBuf::from(format!(
                "/proc/{pid}/root{}",
                module.trim_end_matches(" (deleted)")
            ));
            SymbolTable::load(&path).or_else(|| SymbolTable::load(&PathBuf::from(&module)))
        });
        let function = table.as_ref().and_then(|t| {
            let vaddr = t.virtual_address(pc - mapping.start + mapping.file_offset)?;
            t.lookup(vaddr)
        });
        Some(Location { module, function })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keep_executable_file_mappings() {
        let text = "55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 123 /usr/bin/x\n\
                    55d0c0a01000-55d0c0a05000 r-xp 00001000 fd:01 123 /usr/bin/x\n\
                    7ffd1000-7ffd3000 r-xp 00000000 00:00 0 [vdso]\n\
                    7f0000000000-7f0000001000 rw-p 00000000 00:00 0\n";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].start, 0x55d0c0a01000);
        assert_eq!(maps[0].file_offset, 0x1000);
        assert_eq!(maps[1].path, "[vdso]");
    }

    #[test]
    fn finds_a_function_of_this_test_binary() {
        let pid = std::process::id() as Pid;
        let mut symbols = ProcessSymbols::new(pid);
        let pc = finds_a_function_of_this_test_binary as *const () as u64;
        let location = symbols.locate(pc + 4).expect("mapped");
        let (name, offset) = location.function.expect("symbol tables present");
        assert!(
            name.contains("finds_a_function_of_this_test_binary"),
            "{name}"
        );
        assert_eq!(offset, 4);
    }
}
