//! What one loaded file tells about its code: line tables and inlining (DWARF, see
//! `dwarf`), names (ELF symbol tables), and how to unwind (CFI from `.eh_frame` and
//! `.debug_frame`), with the debug information taken from a separate file when the
//! binary is stripped.
//!
//! Files are mapped and never unmapped: a module, once read, is kept for the life of
//! latch (see `Cache`), so its data can be `'static` and every gimli reader a plain
//! slice, with no copy of uncompressed debug sections.

use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use gimli::{RunTimeEndian, UnwindSection};
use object::{Object, ObjectSection, ObjectSegment};

use super::dwarf::Dwarf;
use super::gopclntab::{GoFrame, GoLineTable};
use super::goroutines::{GoroutinesError, RuntimeLayout};
use super::image::LoadedImage;
use super::lines::LineTables;
use super::symtab::SymbolTable;
use crate::procfs::Pid;

pub type Reader = gimli::EndianSlice<'static, RunTimeEndian>;

/// How many addresses' answers (names, unwind rules) a module keeps: a few MiB at most.
const MAX_NAMED: usize = 16 * 1024;

/// How much a module can tell, as the DAP `modules` view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolStatus {
    /// DWARF in the file itself.
    Dwarf,
    /// DWARF in a separate debug file (build-id or `.gnu_debuglink`).
    SeparateDwarf(PathBuf),
    /// No DWARF: function names from the ELF symbol tables only.
    SymbolsOnly,
    /// No DWARF, but a Go program's own function table: names, files and lines.
    GoTable,
    /// Neither DWARF nor symbols.
    Stripped,
    /// Neither DWARF nor symbols, and a Go function table that cannot be used (why).
    GoTableUnread(String),
    /// The file could not be read (gone, or not permitted).
    Unreadable(String),
}

impl std::fmt::Display for SymbolStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SymbolStatus::Dwarf => write!(f, "Symbols loaded."),
            SymbolStatus::SeparateDwarf(path) => {
                write!(f, "Symbols loaded from {}.", path.display())
            }
            SymbolStatus::SymbolsOnly => write!(f, "No debug info: ELF symbols only."),
            SymbolStatus::GoTable => write!(f, "No debug info: Go's function table."),
            SymbolStatus::Stripped => write!(f, "Stripped: no symbols."),
            SymbolStatus::GoTableUnread(why) => write!(
                f,
                "Stripped: no symbols, and Go's function table is not used: {why}."
            ),
            SymbolStatus::Unreadable(why) => write!(f, "Cannot read the file: {why}"),
        }
    }
}

/// Call frame information of one section, and an index of its FDEs built on first use
/// when the section has no binary-search table of its own.
pub struct CfiSection<S> {
    pub section: S,
    pub bases: gimli::BaseAddresses,
    pub hdr_table: Option<gimli::ParsedEhFrameHdr<Reader>>,
    /// (start, end, FDE offset) sorted by start.
    index: OnceCell<Vec<(u64, u64, usize)>>,
    /// The rule found for each address asked about: the threads of a process mostly
    /// stop at the same few return addresses, and finding and running an FDE's
    /// instructions costs far more than a lookup here.
    rules: RefCell<FxHashMap<u64, Option<Rc<UnwindRule>>>>,
}

/// How to find a frame's caller at one address: the CFI table's row.
pub struct UnwindRule {
    pub row: gimli::UnwindTableRow<usize>,
    /// The CIE marks the kernel's signal return trampoline.
    pub signal_trampoline: bool,
}

impl<S: UnwindSection<Reader>> CfiSection<S>
where
    S::Offset: gimli::UnwindOffset<usize>,
{
    fn new(section: S, bases: gimli::BaseAddresses) -> Self {
        CfiSection {
            section,
            bases,
            hdr_table: None,
            index: OnceCell::new(),
            rules: RefCell::default(),
        }
    }

    /// The unwind rule at `address`, if an FDE covers it (`find` finds the FDE).
    pub fn rule_for(
        &self,
        address: u64,
        context: &mut gimli::UnwindContext<usize>,
        find: impl FnOnce(&Self) -> Option<gimli::FrameDescriptionEntry<Reader>>,
    ) -> Option<Rc<UnwindRule>> {
        if let Some(known) = self.rules.borrow().get(&address) {
            return known.clone();
        }
        let rule = find(self).and_then(|fde| {
            let row = fde
                .unwind_info_for_address(&self.section, &self.bases, context, address)
                .ok()?;
            Some(Rc::new(UnwindRule {
                row: row.clone(),
                signal_trampoline: fde.cie().is_signal_trampoline(),
            }))
        });
        let mut rules = self.rules.borrow_mut();
        if rules.len() >= MAX_NAMED {
            rules.clear();
        }
        rules.insert(address, rule.clone());
        rule
    }

    /// The FDE covering `address`, by our own index.
    pub fn fde_for(&self, address: u64) -> Option<gimli::FrameDescriptionEntry<Reader>> {
        let index = self.index.get_or_init(|| self.build_index());
        let at = index.partition_point(|e| e.0 <= address).checked_sub(1)?;
        let (start, end, offset) = index[at];
        if address < start || address >= end {
            return None;
        }
        self.section
            .fde_from_offset(&self.bases, S::Offset::from(offset), S::cie_from_offset)
            .ok()
    }

    fn build_index(&self) -> Vec<(u64, u64, usize)> {
        let mut index = Vec::new();
        let mut entries = self.section.entries(&self.bases);
        while let Ok(Some(entry)) = entries.next() {
            if let gimli::CieOrFde::Fde(partial) = entry {
                if let Ok(fde) = partial.parse(S::cie_from_offset) {
                    let start = fde.initial_address();
                    index.push((start, start + fde.len(), fde.offset()));
                }
            }
        }
        index.sort_unstable_by_key(|e| e.0);
        index
    }
}

impl CfiSection<gimli::EhFrame<Reader>> {
    /// The FDE covering `address`, by `.eh_frame_hdr`'s binary-search table when there is
    /// one.
    pub fn eh_fde_for(&self, address: u64) -> Option<gimli::FrameDescriptionEntry<Reader>> {
        match self.hdr_table.as_ref().and_then(|h| h.table()) {
            Some(table) => table
                .fde_for_address(
                    &self.section,
                    &self.bases,
                    address,
                    gimli::EhFrame::cie_from_offset,
                )
                .ok(),
            None => self.fde_for(address),
        }
    }
}

pub struct ModuleInfo {
    pub status: SymbolStatus,
    pub build_id: Option<Vec<u8>>,
    /// (file offset, virtual address, size in the file) of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
    /// The file whose DWARF describes this module (itself or its separate debug file).
    dwarf_file: Option<&'static [u8]>,
    /// Built on the first lookup or ahead of it: listing modules must not pay for
    /// parsing DWARF.
    dwarf: OnceCell<Option<Dwarf>>,
    /// A thread already building `dwarf` (see `prepare`).
    building: RefCell<Option<std::thread::JoinHandle<Option<Dwarf>>>>,
    /// The module's file and its debug file: the larger symbol table of the two names
    /// what DWARF does not.
    symbol_files: Vec<&'static [u8]>,
    symbols: OnceCell<SymbolTable>,
    /// What `source_frames` answered, by address.
    named: RefCell<FxHashMap<u64, Rc<[SourceFrame]>>>,
    /// A Go program's own function and line table, read on the first lookup: Go code
    /// is named from it, without waiting for (or parsing) the DWARF.
    go_lines: OnceCell<Option<GoLineTable>>,
    /// Line tables by source file, for breakpoints and stepping: built on first use.
    lines: OnceCell<Option<LineTables>>,
    /// `.debug_line` alone, inflated, for `go_prologue`: a Go program's panic
    /// breakpoints need one line program, not the whole DWARF.
    debug_line: OnceCell<Option<&'static [u8]>>,
    /// Where a Go program's runtime keeps its goroutines, from its DWARF: read once,
    /// and kept for every later stop (it depends on the file, not on the process).
    go_runtime: OnceCell<Result<Rc<RuntimeLayout>, GoroutinesError>>,
    /// The DWARF as the values part reads it (location lists included): built when a
    /// frame's variables are first asked for.
    values_dwarf: OnceCell<Option<Rc<gimli::Dwarf<Reader>>>>,
    values_sections: OnceCell<Option<std::sync::Arc<gimli::DwarfSections<Reader>>>>,
    /// A thread already reading `go_runtime` (see `read_go_runtime_ahead`).
    go_runtime_reading: RefCell<Option<std::thread::JoinHandle<GoRuntimeRead>>>,
    pub eh_frame: Option<CfiSection<gimli::EhFrame<Reader>>>,
    pub debug_frame: Option<CfiSection<gimli::DebugFrame<Reader>>>,
}

pub use super::dwarf::SourceFrame;

/// What reading a Go runtime's layout gives, sent from the thread that reads it ahead.
type GoRuntimeRead = Result<RuntimeLayout, GoroutinesError>;

impl ModuleInfo {
    pub fn unreadable(why: String) -> ModuleInfo {
        ModuleInfo {
            status: SymbolStatus::Unreadable(why),
            build_id: None,
            segments: Vec::new(),
            dwarf_file: None,
            dwarf: OnceCell::new(),
            building: RefCell::new(None),
            symbol_files: Vec::new(),
            symbols: OnceCell::new(),
            named: RefCell::default(),
            go_lines: OnceCell::new(),
            lines: OnceCell::new(),
            debug_line: OnceCell::new(),
            go_runtime: OnceCell::new(),
            values_dwarf: OnceCell::new(),
            values_sections: OnceCell::new(),
            go_runtime_reading: RefCell::new(None),
            eh_frame: None,
            debug_frame: None,
        }
    }

    /// Reads a module from its bytes; `path` (as the process sees the file, prefixed by
    /// `root`) is where separate debug files are looked for.
    pub fn parse(data: &'static [u8], path: Option<&Path>, root: &Path) -> ModuleInfo {
        let file = match object::File::parse(data) {
            Ok(file) => file,
            Err(err) => return ModuleInfo::unreadable(format!("not an ELF file: {err}")),
        };
        let build_id = file.build_id().ok().flatten().map(<[u8]>::to_vec);
        let segments = file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, s.address(), size)
            })
            .collect();

        let separate = if has_dwarf(&file) {
            None
        } else {
            path.and_then(|p| find_debug_file(&file, p, root, build_id.as_deref()))
        };
        let symbol_files: Vec<&'static [u8]> = std::iter::once(data)
            .chain(separate.as_ref().map(|(_, debug_data, _)| *debug_data))
            .collect();

        let endian = endian(&file);
        let eh_frame = eh_frame(&file, endian);
        let debug_frame = section_data(&file, ".debug_frame")
            .or_else(|| {
                separate
                    .as_ref()
                    .and_then(|(_, _, f)| section_data(f, ".debug_frame"))
            })
            .map(|data| {
                let mut section = gimli::DebugFrame::new(data, endian);
                section.set_address_size(8);
                CfiSection::new(section, gimli::BaseAddresses::default())
            });

        // A Go program without DWARF is named from Go's own table: read once, here. A
        // table that cannot be placed with confidence names nothing, and says why.
        let go_lines = OnceCell::new();
        let mut go_refusal = None;
        if separate.is_none() && !has_dwarf(&file) {
            let table = match GoLineTable::parse(&file) {
                Some(Ok(table)) => Some(table),
                Some(Err(why)) => {
                    go_refusal = Some(why);
                    None
                }
                None => None,
            };
            let _ = go_lines.set(table);
        }

        // With DWARF, the symbol tables only name what it leaves unnamed: read them then.
        // libc's debug file has 12,000 symbols (8 M instructions to sort), and its read-ahead
        // waits for this.
        let symbols = OnceCell::new();
        let (dwarf_file, status) = match separate {
            Some((debug_path, debug_data, _)) => {
                (Some(debug_data), SymbolStatus::SeparateDwarf(debug_path))
            }
            None if has_dwarf(&file) => (Some(data), SymbolStatus::Dwarf),
            None if matches!(go_lines.get(), Some(Some(_))) => (None, SymbolStatus::GoTable),
            None => {
                let table = symbols.get_or_init(|| SymbolTable::largest_of(&symbol_files));
                match (table.is_empty(), go_refusal) {
                    (true, Some(why)) => (None, SymbolStatus::GoTableUnread(why)),
                    (true, None) => (None, SymbolStatus::Stripped),
                    (false, _) => (None, SymbolStatus::SymbolsOnly),
                }
            }
        };

        ModuleInfo {
            status,
            build_id,
            segments,
            dwarf_file,
            dwarf: OnceCell::new(),
            building: RefCell::new(None),
            symbol_files,
            symbols,
            named: RefCell::default(),
            go_lines,
            lines: OnceCell::new(),
            debug_line: OnceCell::new(),
            go_runtime: OnceCell::new(),
            values_dwarf: OnceCell::new(),
            values_sections: OnceCell::new(),
            go_runtime_reading: RefCell::new(None),
            eh_frame,
            debug_frame,
        }
    }

    /// Starts reading the DWARF on a thread of its own, so that the modules of a process
    /// (a large executable, libc's debug file) are read side by side, and while the
    /// target is stopped; the first lookup waits for it. Not for a Go program: its own
    /// table names its Go code, and only a lookup in its C code (cgo) reads the DWARF.
    pub fn prepare(&self) {
        let Some(data) = self.dwarf_file else { return };
        if self.go_lines().is_some() {
            return;
        }
        if self.dwarf.get().is_some() || self.building.borrow().is_some() {
            return;
        }
        let thread = std::thread::Builder::new()
            .name("latch-dwarf".into())
            .spawn(move || {
                let _background = crate::priority::work_in_background();
                Some(Dwarf::load(&object::File::parse(data).ok()?))
            });
        *self.building.borrow_mut() = thread.ok();
    }

    /// Whether a lookup would find the DWARF read, without waiting for it (Go code is
    /// named from Go's own table, which needs none: cgo's C code still waits).
    pub fn is_ready(&self) -> bool {
        self.dwarf_file.is_none()
            || self.go_lines().is_some()
            || self.dwarf.get().is_some()
            || self
                .building
                .borrow()
                .as_ref()
                .is_some_and(|thread| thread.is_finished())
    }

    pub(super) fn go_lines(&self) -> Option<&GoLineTable> {
        self.go_lines
            .get_or_init(|| {
                let file = object::File::parse(*self.symbol_files.first()?).ok()?;
                let table = GoLineTable::parse(&file)?.ok()?;
                // Without its symbol table (`-ldflags=-s`) a Go binary's table cannot show
                // inlined calls: then DWARF, when there is any, names them better.
                (table.shows_inlining() || self.dwarf_file.is_none()).then_some(table)
            })
            .as_ref()
    }

    /// How Go's traceback would leave the frame at `address` (file numbering), for code
    /// that has no call frame information; `None` outside Go code.
    pub fn go_frame(&self, address: u64) -> Option<GoFrame> {
        self.go_lines()?.frame_at(address)
    }

    /// Whether the module's DWARF may name a file called `name` (see `Dwarf::mentions`):
    /// a module that cannot is not indexed for it.
    pub fn may_name_file(&self, name: &str) -> bool {
        if self.lines.get().is_some() {
            return true;
        }
        self.dwarf()
            .is_some_and(|dwarf| dwarf.mentions(name.as_bytes()))
    }

    /// Where a Go program's runtime keeps its goroutines, as its DWARF describes it.
    pub fn go_runtime(&self) -> Result<Rc<RuntimeLayout>, GoroutinesError> {
        self.go_runtime
            .get_or_init(|| {
                let reading = self.go_runtime_reading.borrow_mut().take();
                let read = match reading {
                    Some(thread) => {
                        // The stop waits for it now: it gets latch's priority back.
                        let _hurry = crate::priority::wait_for_background();
                        thread.join().unwrap_or_else(|_| {
                            Err(GoroutinesError::Layout(
                                "reading the runtime's layout failed (a latch bug)".into(),
                            ))
                        })
                    }
                    None => RuntimeLayout::from_dwarf(self.dwarf_file),
                };
                read.map(Rc::new)
            })
            .clone()
    }

    /// Starts reading `go_runtime` on a thread of its own, for a Go program with DWARF:
    /// the first stop lists goroutines and needs it, and meanwhile the symbols thread
    /// resolves the panic breakpoint in the same DWARF (a few milliseconds each, on two
    /// cores side by side). Nothing for any other module.
    pub fn read_go_runtime_ahead(&self) {
        let Some(data) = self.dwarf_file else { return };
        if self.go_lines().is_none()
            || self.go_runtime.get().is_some()
            || self.go_runtime_reading.borrow().is_some()
        {
            return;
        }
        let thread = std::thread::Builder::new()
            .name("latch-goruntime".into())
            .spawn(move || {
                let _background = crate::priority::work_in_background();
                RuntimeLayout::from_dwarf(Some(data))
            });
        *self.go_runtime_reading.borrow_mut() = thread.ok();
    }

    /// The line tables of the module's DWARF, indexed by file on first use.
    pub fn line_tables(&self) -> Option<&LineTables> {
        self.lines
            .get_or_init(|| self.dwarf().map(LineTables::new))
            .as_ref()
    }

    /// The DWARF file's `.debug_line`, inflated (through the cache of inflated
    /// sections), without loading any other section.
    pub(super) fn debug_line(&self) -> Option<&'static [u8]> {
        *self.debug_line.get_or_init(|| {
            let file = object::File::parse(self.dwarf_file?).ok()?;
            let build_id = super::cache::build_identity(&file);
            super::cache::section_data(&file, build_id.as_deref(), ".debug_line")
        })
    }

    /// The ELF symbol tables (the larger of the file's and its debug file's).
    pub(super) fn symbol_table(&self) -> &SymbolTable {
        self.symbols
            .get_or_init(|| SymbolTable::largest_of(&self.symbol_files))
    }

    /// The module's file and its debug file.
    pub(super) fn symbol_files(&self) -> &[&'static [u8]] {
        &self.symbol_files
    }

    /// The offset in the file of the byte at `address` (file numbering).
    pub fn file_offset_of(&self, address: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|(_, vaddr, size)| address >= *vaddr && address < vaddr + size)
            .map(|(offset, vaddr, _)| offset + (address - vaddr))
    }

    /// Up to `len` bytes of the module's own file at `address` (file numbering): its
    /// code as built, to recognise a prologue by. `None` when the file is not at hand
    /// (a module named from its debug file alone).
    pub fn code_bytes(&self, address: u64, len: usize) -> Option<&'static [u8]> {
        if matches!(self.status, SymbolStatus::Unreadable(_)) || self.segments.is_empty() {
            return None;
        }
        let data = *self.symbol_files.first()?;
        // Named from its debug file alone: that file's code sections are empty.
        let debug_only = matches!(self.status, SymbolStatus::SeparateDwarf(_))
            && self.dwarf_file.map(<[u8]>::as_ptr) == Some(data.as_ptr());
        if debug_only {
            return None;
        }
        let offset = usize::try_from(self.file_offset_of(address)?).ok()?;
        data.get(offset..offset.checked_add(len)?.min(data.len()))
    }

    pub(super) fn dwarf(&self) -> Option<&Dwarf> {
        self.dwarf
            .get_or_init(|| match self.building.borrow_mut().take() {
                Some(thread) => thread.join().ok().flatten(),
                None => Some(Dwarf::load(&object::File::parse(self.dwarf_file?).ok()?)),
            })
            .as_ref()
    }

    /// The module's DWARF for reading variables (`values`), if it has any.
    pub fn values_dwarf(&self) -> Option<Rc<gimli::Dwarf<Reader>>> {
        self.values_dwarf
            .get_or_init(|| {
                let sections = self.values_sections()?;
                Some(Rc::new(sections.borrow(|section| *section)))
            })
            .clone()
    }

    /// The sections of [`ModuleInfo::values_dwarf`], which other threads can share.
    pub fn values_sections(&self) -> Option<std::sync::Arc<gimli::DwarfSections<Reader>>> {
        self.values_sections
            .get_or_init(|| {
                let file = object::File::parse(self.dwarf_file?).ok()?;
                Some(std::sync::Arc::new(crate::values::load_sections(&file)))
            })
            .clone()
    }

    /// The module's thread-local block (`PT_TLS`), which the values part places below
    /// the thread pointer for the executable.
    pub fn static_tls(&self) -> Option<crate::values::StaticTls> {
        use object::read::elf::ProgramHeader as _;
        let data = *self.symbol_files.first()?;
        let file = object::read::elf::ElfFile64::<object::Endianness>::parse(data).ok()?;
        let endian = file.endian();
        file.elf_program_headers()
            .iter()
            .find(|header| header.p_type(endian) == object::elf::PT_TLS)
            .map(|header| crate::values::StaticTls {
                size: header.p_memsz(endian),
                align: header.p_align(endian).max(1),
            })
    }

    /// The address in the file's own numbering that a file offset was loaded from.
    pub fn virtual_address(&self, file_offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|(offset, _, size)| file_offset >= *offset && file_offset < offset + size)
            .map(|(offset, vaddr, _)| vaddr + (file_offset - offset))
    }

    /// The functions at `address` (file numbering), innermost inlined call first. Falls
    /// back to the ELF symbol tables when DWARF does not cover the address.
    /// Answers are kept: the threads of a process mostly stop at the same few
    /// addresses (a thousand sleeping threads: four), and a lookup costs microseconds.
    pub fn source_frames(&self, address: u64) -> Rc<[SourceFrame]> {
        if let Some(known) = self.named.borrow().get(&address) {
            return known.clone();
        }
        let frames: Rc<[SourceFrame]> = self.look_up(address).into();
        let mut named = self.named.borrow_mut();
        // Bounded: a long session over many stops must not grow without end.
        if named.len() >= MAX_NAMED {
            named.clear();
        }
        named.insert(address, frames.clone());
        frames
    }

    fn look_up(&self, address: u64) -> Vec<SourceFrame> {
        if let Some(frames) = self.go_lines().and_then(|go| go.source_frames(address)) {
            return frames;
        }
        let mut out = self
            .dwarf()
            .map(|dwarf| dwarf.source_frames(address))
            .unwrap_or_default();
        let outermost_named = out.last().is_some_and(|f| f.function.is_some());
        if !outermost_named {
            if let Some(name) = self.symbol_name(address) {
                let name: std::sync::Arc<str> = name.into();
                match out.last_mut() {
                    Some(frame) => frame.function = Some(name),
                    None => out.push(SourceFrame {
                        function: Some(name),
                        file: None,
                        line: 0,
                        column: 0,
                    }),
                }
            }
        }
        out
    }

    fn symbol_name(&self, address: u64) -> Option<String> {
        let name = self.symbol_table().containing(address)?;
        // Versioned dynamic symbols read `memcpy@GLIBC_2.14`: the version is noise here.
        let name = name.split_once('@').map_or(name.as_str(), |(bare, _)| bare);
        Some(demangle(name, None))
    }
}

/// A function's name as people write it: Rust without the hash, C++ without the return
/// type a template's mangled name carries (`shapes::run<int>(int)`, as gdb and lldb
/// show it, not `int shapes::run<int>(int)`).
pub fn demangle(name: &str, language: Option<gimli::DwLang>) -> String {
    let rust = matches!(language, None | Some(gimli::DW_LANG_Rust));
    if let Some(text) = rust
        .then(|| addr2line::demangle(name, gimli::DW_LANG_Rust))
        .flatten()
    {
        return text;
    }
    if name.starts_with("_Z") {
        let options = cpp_demangle::DemangleOptions::new().no_return_type();
        if let Some(text) = cpp_demangle::Symbol::new(name)
            .ok()
            .and_then(|symbol| symbol.demangle_with_options(&options).ok())
        {
            return text;
        }
    }
    addr2line::demangle_auto(Cow::Borrowed(name), language).into_owned()
}

fn endian(file: &object::File<'static>) -> RunTimeEndian {
    if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    }
}

fn has_dwarf(file: &object::File<'static>) -> bool {
    file.section_by_name(".debug_info")
        .is_some_and(|s| s.size() > 0)
}

/// A section's bytes, decompressed when needed (SHF_COMPRESSED zlib or zstd, `.zdebug_`).
pub(super) fn section_data(file: &object::File<'static>, name: &str) -> Option<&'static [u8]> {
    let section = file.section_by_name(name)?;
    match section.uncompressed_data().ok()? {
        Cow::Borrowed(data) => Some(data),
        Cow::Owned(data) => {
            if let Ok(compressed) = section.compressed_data() {
                release(compressed.data);
            }
            Some(keep(data))
        }
    }
}

/// Kept for latch's lifetime, like the module that owns it (see the module docs).
pub fn keep(data: Vec<u8>) -> &'static [u8] {
    Box::leak(data.into_boxed_slice())
}

pub fn map_file(path: &Path) -> std::io::Result<&'static [u8]> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the mapping is read-only and private; a file truncated under us could
    // fault, the same risk every debugger that maps binaries takes.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(keep_mapping(map, file))
}

/// Files mapped for good, with their files, so that a few bytes here and there can be
/// read without touching the mapping (see `peek`).
static MAPPINGS: std::sync::Mutex<Vec<(usize, usize, std::fs::File)>> =
    std::sync::Mutex::new(Vec::new());

/// Keeps a mapping for the rest of the process, remembering its file.
pub fn keep_mapping(map: memmap2::Mmap, file: std::fs::File) -> &'static [u8] {
    let map: &'static memmap2::Mmap = Box::leak(Box::new(map));
    let mut mappings = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
    mappings.push((map.as_ptr() as usize, map.len(), file));
    &map[..]
}

/// Copies `out.len()` bytes of `data` from `offset`, reading a mapped file's bytes from
/// the file instead of through the mapping. A page touched through the mapping becomes
/// resident with its neighbours (the kernel maps 64 KiB around a fault): scanning the
/// headers of 569 units spread over a 26 MiB `.debug_info` that way made all of it count
/// in latch's memory. False when the bytes are not there.
pub fn peek(data: &'static [u8], offset: usize, out: &mut [u8]) -> bool {
    let Some(bytes) = offset
        .checked_add(out.len())
        .and_then(|end| data.get(offset..end))
    else {
        return false;
    };
    let address = bytes.as_ptr() as usize;
    let mappings = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
    let found = mappings
        .iter()
        .find(|(base, len, _)| (*base..base + len).contains(&address));
    match found {
        Some((base, _, file)) => {
            use std::os::unix::fs::FileExt;
            file.read_exact_at(out, (address - base) as u64).is_ok()
        }
        None => {
            // Inflated sections live on the heap, resident already.
            out.copy_from_slice(bytes);
            true
        }
    }
}

/// Drops the pages of `bytes`, part of a mapped file, from latch's memory: used for
/// compressed sections once inflated (libc's debug file: 3.2 MiB), which nothing reads
/// again. The file's pages stay in the kernel's page cache, and a later read of these
/// bytes would fault them back in unchanged: the mapping is of a file, read-only.
pub fn release(bytes: &'static [u8]) {
    let address = bytes.as_ptr() as usize;
    let mappings = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
    let Some((base, len, _)) = mappings
        .iter()
        .find(|(base, len, _)| (*base..base + len).contains(&address))
    else {
        return;
    };
    let page = 4096;
    let start = (address & !(page - 1)).max(*base);
    let end = (address + bytes.len()).min(base + len);
    if end > start {
        // SAFETY: the range lies within a read-only file mapping we keep for good;
        // MADV_DONTNEED on it only unmaps pages that a later access reads back in.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// The NUL-terminated string at `offset`, read from the file a piece at a time.
pub fn read_c_string(strings: &'static [u8], offset: usize) -> Option<String> {
    let mut name = Vec::new();
    let mut piece = [0u8; 256];
    let mut at = offset;
    while at < strings.len() {
        let n = piece.len().min(strings.len() - at);
        if !peek(strings, at, &mut piece[..n]) {
            return None;
        }
        match piece[..n].iter().position(|&b| b == 0) {
            Some(end) => {
                name.extend_from_slice(&piece[..end]);
                return Some(String::from_utf8_lossy(&name).into_owned());
            }
            None => name.extend_from_slice(&piece[..n]),
        }
        at += n;
    }
    None
}

fn eh_frame(
    file: &object::File<'static>,
    endian: RunTimeEndian,
) -> Option<CfiSection<gimli::EhFrame<Reader>>> {
    let section = file.section_by_name(".eh_frame")?;
    let data = section_data(file, ".eh_frame")?;
    let mut bases = gimli::BaseAddresses::default().set_eh_frame(section.address());
    if let Some(text) = file.section_by_name(".text") {
        bases = bases.set_text(text.address());
    }
    if let Some(got) = file.section_by_name(".got") {
        bases = bases.set_got(got.address());
    }
    let mut eh_frame = gimli::EhFrame::new(data, endian);
    eh_frame.set_address_size(8);
    let mut cfi = CfiSection::new(eh_frame, bases.clone());
    if let Some(hdr) = file.section_by_name(".eh_frame_hdr") {
        let hdr_bases = bases.set_eh_frame_hdr(hdr.address());
        if let Some(data) = section_data(file, ".eh_frame_hdr") {
            cfi.hdr_table = gimli::EhFrameHdr::new(data, endian)
                .parse(&hdr_bases, 8)
                .ok();
            cfi.bases = hdr_bases;
        }
    }
    Some(cfi)
}

/// A separate debug file for a stripped binary: by build-id under `/usr/lib/debug`, then
/// by `.gnu_debuglink` next to the binary, in its `.debug` folder, or under
/// `/usr/lib/debug`, as gdb looks. Inside the target's root first (containers), then on
/// the host. A candidate whose build-id differs from the binary's is rejected.
fn find_debug_file(
    file: &object::File<'static>,
    path: &Path,
    root: &Path,
    build_id: Option<&[u8]>,
) -> Option<(PathBuf, &'static [u8], object::File<'static>)> {
    let roots = [root, Path::new("/")];
    let mut candidates = build_id.map(|id| by_build_id(id, root)).unwrap_or_default();
    if let Ok(Some((name, _crc))) = file.gnu_debuglink() {
        let name = Path::new(std::str::from_utf8(name).ok()?);
        if let Some(dir) = path.parent() {
            candidates.push(dir.join(name));
            candidates.push(dir.join(".debug").join(name));
            // `path` is under `root`; /usr/lib/debug mirrors the path inside the root.
            if let Ok(inside) = dir.strip_prefix(root) {
                for r in roots {
                    candidates.push(r.join("usr/lib/debug").join(inside).join(name));
                }
            }
        }
    }
    candidates
        .into_iter()
        .filter(|candidate| candidate != path)
        .find_map(|candidate| open_debug_file(candidate, build_id))
}

/// Where a debug file with this build-id would be: `/usr/lib/debug/.build-id/xx/rest.debug`
/// inside the target's root, then on the host.
fn by_build_id(build_id: &[u8], root: &Path) -> Vec<PathBuf> {
    if build_id.len() < 2 {
        return Vec::new();
    }
    let hex: String = build_id.iter().map(|b| format!("{b:02x}")).collect();
    let relative = format!("usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]);
    [root, Path::new("/")]
        .iter()
        .map(|r| r.join(&relative))
        .collect()
}

/// A debug file with DWARF whose build-id is `build_id` (when the file says one).
fn open_debug_file(
    candidate: PathBuf,
    build_id: Option<&[u8]>,
) -> Option<(PathBuf, &'static [u8], object::File<'static>)> {
    let data = map_file(&candidate).ok()?;
    let debug = object::File::parse(data).ok()?;
    if !has_dwarf(&debug) {
        return None;
    }
    let theirs = debug.build_id().ok().flatten();
    if let (Some(ours), Some(theirs)) = (build_id, theirs) {
        if ours != theirs {
            return None;
        }
    }
    Some((candidate, data, debug))
}

impl ModuleInfo {
    /// A module whose own file cannot be read (replaced on disk, the loaded copy out of
    /// reach), named from the debug file with its build-id, which must say so itself.
    /// Addresses are numbered by the loaded image's segments; a debug file's own
    /// program headers describe sections it leaves empty, and its `.eh_frame` is only a
    /// placeholder: unwinding uses the loaded one (see `loaded_eh_frame`).
    pub fn from_debug_file(pid: Pid, image: &LoadedImage, root: &Path) -> Option<ModuleInfo> {
        let build_id = image.build_id.as_deref()?;
        let (path, data, debug) = by_build_id(build_id, root)
            .into_iter()
            .find_map(|candidate| open_debug_file(candidate, Some(build_id)))?;
        if debug.build_id().ok().flatten() != Some(build_id) {
            return None;
        }
        let mut info = ModuleInfo::parse(data, None, root);
        info.segments = image.segments.clone();
        info.status = SymbolStatus::SeparateDwarf(path);
        info.eh_frame = loaded_eh_frame(pid, image);
        Some(info)
    }

    /// A module whose file cannot be read and that nothing names: its code is shown as
    /// addresses (`why` says why), but its stacks still unwind, by the unwind tables
    /// loaded in memory.
    pub fn unnamed_loaded_image(pid: Pid, image: &LoadedImage, why: String) -> ModuleInfo {
        let mut info = ModuleInfo::unreadable(why);
        info.build_id = image.build_id.clone();
        info.segments = image.segments.clone();
        info.eh_frame = loaded_eh_frame(pid, image);
        info
    }
}

/// The most of `.eh_frame` read from a target: libc's is 0.2 MiB.
const MAX_LOADED_EH_FRAME: u64 = 16 << 20;

/// `.eh_frame` and its search table as the loader mapped them, read from the target's
/// memory: `PT_GNU_EH_FRAME` locates `.eh_frame_hdr`, which points at `.eh_frame`.
/// Its length is not recorded anywhere loaded, so the rest of its segment is read; the
/// section ends with a zero terminator.
fn loaded_eh_frame(pid: Pid, image: &LoadedImage) -> Option<CfiSection<gimli::EhFrame<Reader>>> {
    let (hdr_address, hdr_size) = image.eh_frame_hdr?;
    let hdr_data = super::memory::read(
        pid,
        image.bias.checked_add(hdr_address)?,
        usize::try_from(hdr_size.min(MAX_LOADED_EH_FRAME)).ok()?,
    )?;
    let hdr_data = keep(hdr_data);
    let endian = RunTimeEndian::Little;
    let hdr_bases = gimli::BaseAddresses::default().set_eh_frame_hdr(hdr_address);
    let parsed = gimli::EhFrameHdr::new(hdr_data, endian)
        .parse(&hdr_bases, 8)
        .ok()?;
    let gimli::Pointer::Direct(eh_frame_address) = parsed.eh_frame_ptr() else {
        return None;
    };
    let segment_end = image
        .segments
        .iter()
        .find(|(_, vaddr, size)| (*vaddr..vaddr + size).contains(&eh_frame_address))
        .map(|(_, vaddr, size)| vaddr + size)?;
    let length = (segment_end - eh_frame_address).min(MAX_LOADED_EH_FRAME);
    let data = super::memory::read(
        pid,
        image.bias.checked_add(eh_frame_address)?,
        usize::try_from(length).ok()?,
    )?;
    let mut eh_frame = gimli::EhFrame::new(keep(data), endian);
    eh_frame.set_address_size(8);
    let bases = hdr_bases.set_eh_frame(eh_frame_address);
    let mut cfi = CfiSection::new(eh_frame, bases);
    cfi.hdr_table = Some(parsed);
    Some(cfi)
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn names_are_read_whole_across_pieces() {
        let mut strings = b"\0short\0".to_vec();
        let long = "x".repeat(1000);
        strings.extend_from_slice(long.as_bytes());
        strings.push(0);
        let strings: &'static [u8] = Box::leak(strings.into_boxed_slice());
        assert_eq!(super::read_c_string(strings, 1).as_deref(), Some("short"));
        assert_eq!(super::read_c_string(strings, 7), Some(long));
        assert_eq!(super::read_c_string(strings, strings.len()), None);
    }

    #[test]
    fn names_read_as_written() {
        // A C++ function template: the mangled name carries its return type.
        assert_eq!(
            demangle("_ZN6shapes3runIiEET_S1_", None),
            "shapes::run<int>(int)"
        );
        assert_eq!(
            demangle("_ZN2ns6Widget4spinEi", None),
            "ns::Widget::spin(int)"
        );
        // Rust legacy mangling: no hash.
        assert_eq!(
            demangle(
                "_ZN3std6thread5sleep17h0123456789abcdefE",
                Some(gimli::DW_LANG_Rust)
            ),
            "std::thread::sleep"
        );
        assert_eq!(demangle("clock_nanosleep", None), "clock_nanosleep");
    }
}
