//! Where a Go binary's function table lies, and the two addresses its offsets count
//! from: the runtime's `text` (function entries) and `go:func.*` (function data, the
//! inline trees among them).
//!
//! An unstripped binary names all three in its symbol table (`runtime.pclntab`,
//! `runtime.text`, `go:func.*`). `strip` removes those symbols, and the sections are no
//! safe stand-in: with external linking (cgo) C start-up code comes before the Go text,
//! so `.text` starts too early, and in a PIE the table's own section is merged into
//! `.data.rel.ro`. What the runtime itself reads survives stripping:
//! `runtime.firstmoduledata`, a structure in the data segment that points at the table
//! and records `text`, `minpc`, `maxpc` and `gofunc`. It is found by the table's
//! address, and believed only when its fields agree with the table's own header.

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};
use std::cell::OnceCell;

use rustc_hash::FxHashMap;

/// The words of `runtime.moduledata` that precede the fields this reads. Stable from Go
/// 1.16 to today: pcHeader, then six slices (funcnametab, cutab, filetab, pctab,
/// pclntable, ftab), findfunctab, minpc, maxpc, text.
const MODULEDATA_FUNCNAMETAB: usize = 1;
const MODULEDATA_FTAB: usize = 16;
const MODULEDATA_MINPC: usize = 20;
const MODULEDATA_MAXPC: usize = 21;
const MODULEDATA_TEXT: usize = 22;
/// How many words after `text` may hold `gofunc`: 16 in Go 1.19, 21 in Go 1.27; fields
/// keep being added in between, so every word in reach is a candidate that the caller
/// must confirm.
const GOFUNC_REACH: usize = 32;

/// The loadable segments of a file, read as the loader lays them out.
pub struct Image<'a> {
    segments: Vec<Segment>,
    little_endian: bool,
    /// `R_X86_64_RELATIVE` targets and addends (pointers the loader adds the load bias to), read only if a word the file leaves
    /// zero is asked for (lld leaves them zero; GNU ld and Go's linker fill them in).
    relocations: OnceCell<FxHashMap<u64, u64>>,
    elf: &'a object::File<'static>,
}

#[derive(Clone, Copy)]
struct Segment {
    address: u64,
    /// Its bytes in the file (`p_filesz` of them).
    bytes: &'static [u8],
    executable: bool,
    writable: bool,
}

/// The table's header fields that place everything else.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub pointer_size: usize,
    pub function_count: u64,
    /// Go 1.18-1.19 record the text start here; Go 1.20 on leave it zero in the file.
    pub text_start: u64,
    /// Where the tables start, counted from the header.
    pub funcname_offset: u64,
    pub cu_offset: u64,
    pub filetab_offset: u64,
    pub pctab_offset: u64,
    pub ftab_offset: u64,
}

/// What `runtime.firstmoduledata` says, once it agreed with the table.
pub struct ModuleData {
    pub text: u64,
    /// The words after `text`: one of them is `gofunc`.
    pub after_text: Vec<u64>,
}

impl<'a> Image<'a> {
    pub fn of(elf: &'a object::File<'static>) -> Image<'a> {
        let segments = elf
            .segments()
            .filter_map(|s| {
                let flags = match s.flags() {
                    object::SegmentFlags::Elf { p_flags, .. } => p_flags.0,
                    _ => 0,
                };
                Some(Segment {
                    address: s.address(),
                    bytes: s.data().ok()?,
                    executable: flags & object::elf::PF_X.0 != 0,
                    writable: flags & object::elf::PF_W.0 != 0,
                })
            })
            .collect();
        Image {
            segments,
            little_endian: elf.is_little_endian(),
            relocations: OnceCell::new(),
            elf,
        }
    }

    pub fn little_endian(&self) -> bool {
        self.little_endian
    }

    /// The file's bytes from `address` to the end of its segment.
    pub fn bytes_at(&self, address: u64) -> Option<&'static [u8]> {
        let segment = self.segment_of(address)?;
        segment
            .bytes
            .get(usize::try_from(address - segment.address).ok()?..)
    }

    fn segment_of(&self, address: u64) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|s| address >= s.address && address - s.address < s.bytes.len() as u64)
    }

    /// Whether `[start, end)` lies inside one executable segment.
    pub fn is_code(&self, start: u64, end: u64) -> bool {
        start < end
            && self.segments.iter().any(|s| {
                s.executable
                    && start >= s.address
                    && end <= s.address.saturating_add(s.bytes.len() as u64)
            })
    }

    /// The pointer-sized word at `address` as the loader leaves it, less the load bias.
    fn word(&self, address: u64, size: usize) -> Option<u64> {
        let bytes = self.bytes_at(address)?.get(..size)?;
        let value = read_word(bytes, size, self.little_endian)?;
        if value != 0 {
            return Some(value);
        }
        Some(self.relocations().get(&address).copied().unwrap_or(0))
    }

    fn relocations(&self) -> &FxHashMap<u64, u64> {
        self.relocations.get_or_init(|| {
            self.elf
                .dynamic_relocations()
                .into_iter()
                .flatten()
                .filter(|(_, r)| {
                    matches!(r.flags(), object::RelocationFlags::Elf { r_type } if r_type == object::elf::R_X86_64_RELATIVE)
                })
                .map(|(at, r)| (at, r.addend() as u64))
                .collect()
        })
    }

    /// Where pointers to `target` sit in the writable segments, 8-byte aligned.
    fn pointers_to(&self, target: u64, size: usize) -> Vec<u64> {
        let mut found = Vec::new();
        for segment in self.segments.iter().filter(|s| s.writable) {
            let bytes = segment.bytes;
            let skip = ((size as u64 - segment.address % size as u64) % size as u64) as usize;
            for (i, chunk) in bytes
                .get(skip..)
                .unwrap_or(&[])
                .chunks_exact(size)
                .enumerate()
            {
                if read_word(chunk, size, self.little_endian) == Some(target) {
                    found.push(segment.address + (skip + i * size) as u64);
                }
            }
        }
        if found.is_empty() {
            // A linker that leaves relocated pointers zero in the file (lld).
            found.extend(
                self.relocations()
                    .iter()
                    .filter(|(_, addend)| **addend == target)
                    .map(|(at, _)| *at),
            );
            found.sort_unstable();
        }
        found
    }
}

/// Whether the file was written by Go's linker, which always leaves its build id note
/// and build information (both survive `strip` and external linking), or has a table
/// section by its usual name.
pub fn is_go_binary(elf: &object::File<'_>) -> bool {
    [
        ".gopclntab",
        ".data.rel.ro.gopclntab",
        ".go.buildinfo",
        ".note.go.buildid",
    ]
    .iter()
    .any(|name| elf.section_by_name(name).is_some())
}

/// Where the table may be: its address and bytes (to the end of its segment), and
/// whether the places were found by scanning for its magic number, so that only a
/// moduledata pointing at one can confirm it.
pub fn find_table(
    elf: &object::File<'static>,
    image: &Image<'_>,
    pclntab_symbol: Option<u64>,
) -> (Vec<(u64, &'static [u8])>, bool) {
    let at = |address: u64| image.bytes_at(address).map(|bytes| vec![(address, bytes)]);
    if let Some(found) = pclntab_symbol.and_then(at) {
        return (found, false);
    }
    // Internal linking names the section; a PIE's is `.data.rel.ro.gopclntab`.
    for name in [".gopclntab", ".data.rel.ro.gopclntab"] {
        if let Some(found) = elf.section_by_name(name).and_then(|s| at(s.address())) {
            return (found, false);
        }
    }
    // External linking of a PIE merges it into `.data.rel.ro`: look for its magic at
    // the start of every 8-byte aligned word of the non-executable segments.
    let mut found = Vec::new();
    for segment in image.segments.iter().filter(|s| !s.executable) {
        let skip = ((8 - segment.address % 8) % 8) as usize;
        let words = segment.bytes.get(skip..).unwrap_or(&[]).chunks_exact(8);
        for (i, chunk) in words.enumerate() {
            if looks_like_header(chunk, image.little_endian) {
                let offset = skip + i * 8;
                found.push((segment.address + offset as u64, &segment.bytes[offset..]));
            }
        }
    }
    (found, true)
}

/// Go 1.2 to today: a magic number, two zero bytes, the pc quantum and pointer size.
fn looks_like_header(bytes: &[u8], little_endian: bool) -> bool {
    let magic = read_word(&bytes[..4], 4, little_endian);
    matches!(
        magic,
        Some(0xffff_fff0 | 0xffff_fff1 | 0xffff_fffa | 0xffff_fffb)
    ) && bytes[4] == 0
        && bytes[5] == 0
        && matches!(bytes[6], 1 | 2 | 4)
        && matches!(bytes[7], 4 | 8)
}

impl Header {
    /// The header of a Go 1.18+ table.
    pub fn read(data: &[u8], little_endian: bool) -> Option<Header> {
        let pointer_size = usize::from(*data.get(7)?);
        if pointer_size != 8 && pointer_size != 4 {
            return None;
        }
        let word = |index: usize| {
            let at = 8 + index * pointer_size;
            read_word(
                data.get(at..at + pointer_size)?,
                pointer_size,
                little_endian,
            )
        };
        Some(Header {
            pointer_size,
            function_count: word(0)?,
            text_start: word(2)?,
            funcname_offset: word(3)?,
            cu_offset: word(4)?,
            filetab_offset: word(5)?,
            pctab_offset: word(6)?,
            ftab_offset: word(7)?,
        })
    }
}

/// `runtime.firstmoduledata`, if exactly one structure points at the table at
/// `address` with the table's own name table and function table in place, and records
/// `minpc` and `maxpc` where the table's first and last entries put them.
pub fn find_moduledata(
    image: &Image<'_>,
    address: u64,
    header: &Header,
    entry_offsets: (u64, u64),
) -> Option<ModuleData> {
    let size = header.pointer_size;
    let mut agreeing = image
        .pointers_to(address, size)
        .into_iter()
        .filter_map(|at| {
            let field = |index: usize| image.word(at + (index * size) as u64, size);
            let agrees = field(MODULEDATA_FUNCNAMETAB)?
                == address.checked_add(header.funcname_offset)?
                && field(MODULEDATA_FTAB)? == address.checked_add(header.ftab_offset)?
                && field(MODULEDATA_FTAB + 1)? == header.function_count.checked_add(1)?;
            if !agrees {
                return None;
            }
            let text = field(MODULEDATA_TEXT)?;
            let places_entries = field(MODULEDATA_MINPC)? == text.checked_add(entry_offsets.0)?
                && field(MODULEDATA_MAXPC)? == text.checked_add(entry_offsets.1)?;
            places_entries.then(|| ModuleData {
                text,
                after_text: (1..=GOFUNC_REACH)
                    .filter_map(|i| field(MODULEDATA_TEXT + i))
                    .collect(),
            })
        });
    let found = agreeing.next()?;
    // Two structures that both claim the table: believe neither.
    agreeing.next().is_none().then_some(found)
}

/// The addresses of the named symbols, from one pass over the symbol table.
pub fn symbol_addresses<const N: usize>(
    elf: &object::File<'static>,
    names: [&[&str]; N],
) -> [Option<u64>; N] {
    let mut found = [None; N];
    for symbol in elf.symbols() {
        let Ok(name) = symbol.name() else { continue };
        for (slot, wanted) in found.iter_mut().zip(names.iter()) {
            if slot.is_none() && wanted.contains(&name) {
                *slot = Some(symbol.address());
            }
        }
    }
    found
}

fn read_word(bytes: &[u8], size: usize, little_endian: bool) -> Option<u64> {
    match size {
        8 => {
            let b: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
            Some(if little_endian {
                u64::from_le_bytes(b)
            } else {
                u64::from_be_bytes(b)
            })
        }
        4 => {
            let b: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
            Some(u64::from(if little_endian {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }))
        }
        _ => None,
    }
}
