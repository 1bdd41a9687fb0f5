//! Values: what a program's variables hold at a stop, from DWARF alone.
//!
//! Pure by design (DESIGN.md §9): everything here works over a [`Registers`] set and a
//! [`Memory`] reader handed in by the caller, and neither calls ptrace nor knows DAP, so
//! it is tested on files and synthetic stacks without a process, and can never disturb
//! one. Nothing runs code in the target.
//!
//! The rooms, each with one job: [`types`] reads type DIEs into an owned model,
//! [`scope`] finds the variables in scope at a pc, [`location`] evaluates where a
//! variable lives (gimli's evaluator, location lists, pieces), [`value`] holds a value's
//! bytes or address and cuts it into parts, and [`format`] turns a value into text and
//! children the way C programmers read them.
//!
//! Values are decoded little-endian: x86-64 is the only target latch serves.

pub mod entry;
pub mod format;
pub mod location;
pub mod module_globals;
pub mod scope;
pub mod types;
pub mod value;
pub mod views;

#[cfg(test)]
mod module_globals_tests;
#[cfg(test)]
mod other_units_tests;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::symbols::module::Reader;

pub use format::{Child, Formatter, Limits, Symbolizer};
pub use location::{ModuleLayout, StaticTls};
pub use module_globals::ModuleGlobals;
pub use scope::{FrameScope, VariableKind};
pub use types::{Language, Type, TypeId, Types};
pub use value::{Contents, Value};
pub use views::ChildFilter;

/// No single read of target memory for a value is larger than this (1 MiB): a huge
/// array is read a page of elements at a time, never whole.
pub const MAX_READ: usize = 1 << 20;

/// Could not read target memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {len} bytes at {address:#x}")]
pub struct ReadError {
    pub address: u64,
    pub len: usize,
}

/// Target memory, as the caller can read it: a process (`process_vm_readv`), a core
/// file, the sections of an ELF file, a test's buffer. A failed read is an answer, not
/// a panic.
pub trait Memory {
    fn read(&self, address: u64, into: &mut [u8]) -> Result<(), ReadError>;
}

/// One frame's registers, by DWARF register number (x86-64: 0 rax .. 16 rip, 17-32
/// xmm0-15's low 64 bits), and the inputs DWARF expressions ask for besides.
pub trait Registers {
    /// The register's value; `None` when the unwinder could not recover it in this
    /// frame (then a variable living there reads `<optimized out>`).
    fn register(&self, number: u16) -> Option<u64>;
    /// The canonical frame address of this frame (from CFI), what
    /// `DW_OP_call_frame_cfa` and most frame bases ask for.
    fn cfa(&self) -> Option<u64>;
    /// The thread pointer (x86-64's fs_base), for thread-local variables.
    fn thread_pointer(&self) -> Option<u64> {
        None
    }
    /// The value an expression had on entry to the function (`DW_OP_entry_value`),
    /// when the caller recovered it (e.g. from call site parameters); `None` makes the
    /// variable `<optimized out>`, never a guess.
    fn entry_value(&self, _expression: &[u8]) -> Option<u64> {
        None
    }
}

/// A plain set of registers, for callers that have them at hand and for tests.
#[derive(Debug, Clone, Default)]
pub struct RegisterSet {
    pub registers: FxHashMap<u16, u64>,
    pub cfa: Option<u64>,
    pub thread_pointer: Option<u64>,
}

impl Registers for RegisterSet {
    fn register(&self, number: u16) -> Option<u64> {
        self.registers.get(&number).copied()
    }
    fn cfa(&self) -> Option<u64> {
        self.cfa
    }
    fn thread_pointer(&self) -> Option<u64> {
        self.thread_pointer
    }
}

/// Where one compile unit's code and data were loaded, and its DWARF: what every
/// question here starts from.
pub struct CompileUnit {
    pub dwarf: Rc<gimli::Dwarf<Reader>>,
    pub unit: Rc<gimli::Unit<Reader>>,
    pub types: Types,
    pub layout: ModuleLayout,
    /// Go's runtime type descriptors by DIE, indexed on first use (an interface's
    /// dynamic type): a walk of the runtime's units, once per unit kept.
    go_runtime_types: std::cell::OnceCell<views::go::RuntimeTypes>,
}

impl CompileUnit {
    pub fn new(
        dwarf: Rc<gimli::Dwarf<Reader>>,
        unit: gimli::Unit<Reader>,
        layout: ModuleLayout,
    ) -> CompileUnit {
        CompileUnit::sharing(types::Units::new(dwarf), unit, layout)
    }

    /// A unit that finds types in the file's other units through `units`, which the
    /// file's units may share.
    pub fn sharing(
        units: Rc<types::Units>,
        unit: gimli::Unit<Reader>,
        layout: ModuleLayout,
    ) -> CompileUnit {
        let unit = Rc::new(unit);
        CompileUnit {
            types: Types::with_units(units.clone(), unit.clone()),
            dwarf: units.dwarf(),
            unit,
            layout,
            go_runtime_types: std::cell::OnceCell::new(),
        }
    }

    /// Go's runtime type descriptors, indexed on first use.
    pub fn go_runtime_types(&self) -> &views::go::RuntimeTypes {
        self.go_runtime_types.get_or_init(|| {
            views::go::RuntimeTypes::index(&self.dwarf, &self.types, self.layout.load_bias)
        })
    }

    /// The unit whose code holds `pc` (a run-time address), if any.
    pub fn containing(
        dwarf: Rc<gimli::Dwarf<Reader>>,
        pc: u64,
        layout: ModuleLayout,
    ) -> Option<CompileUnit> {
        let file_pc = pc.wrapping_sub(layout.load_bias);
        let mut headers = dwarf.units();
        while let Ok(Some(header)) = headers.next() {
            let Ok(unit) = dwarf.unit(header) else {
                continue;
            };
            let Ok(mut ranges) = dwarf.unit_ranges(&unit) else {
                continue;
            };
            while let Ok(Some(range)) = ranges.next() {
                if range.begin <= file_pc && file_pc < range.end {
                    return Some(CompileUnit::new(dwarf.clone(), unit, layout));
                }
            }
        }
        None
    }

    /// Every compile unit of the file, for its globals.
    pub fn all(dwarf: Rc<gimli::Dwarf<Reader>>, layout: ModuleLayout) -> Vec<CompileUnit> {
        // One index of units for all: a type unit (Go's) is parsed once, not per unit.
        let shared = types::Units::new(dwarf.clone());
        let mut units = Vec::new();
        let mut headers = dwarf.units();
        while let Ok(Some(header)) = headers.next() {
            if let Ok(unit) = dwarf.unit(header) {
                units.push(CompileUnit::sharing(shared.clone(), unit, layout));
            }
        }
        units
    }
}

/// A file's DWARF with every section values need, location lists included (the
/// symbols side loads only what names functions and lines). Sections that had to be
/// inflated are kept for latch's life, like the module they belong to.
pub fn load_dwarf(file: &object::File<'static>) -> gimli::Dwarf<Reader> {
    load_sections(file).borrow(|section| *section)
}

/// The sections [`load_dwarf`] reads, on their own: `Send`, so that another thread (the
/// ptrace thread, running a breakpoint's condition) can make its own `Dwarf` of them
/// without inflating them again.
pub fn load_sections(file: &object::File<'static>) -> gimli::DwarfSections<Reader> {
    use object::{Object, ObjectSection};
    let endian = if file.is_little_endian() {
        gimli::RunTimeEndian::Little
    } else {
        gimli::RunTimeEndian::Big
    };
    let load = gimli::DwarfSections::load(|id| -> Result<Reader, std::convert::Infallible> {
        let data: &'static [u8] = match file.section_by_name(id.name()) {
            Some(section) => match section.uncompressed_data() {
                Ok(std::borrow::Cow::Borrowed(data)) => data,
                Ok(std::borrow::Cow::Owned(data)) => crate::symbols::module::keep(data),
                Err(_) => &[],
            },
            None => &[],
        };
        Ok(gimli::EndianSlice::new(data, endian))
    });
    match load {
        Ok(sections) => sections,
        Err(never) => match never {},
    }
}

/// A variable as the user sees it: a name and a value.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub kind: VariableKind,
    pub value: Value,
    /// A global's path through namespaces or modules (`prog::inner::NAME`), if any.
    pub path: Option<String>,
}

/// One frame's variables, ready to show.
#[derive(Debug, Clone)]
pub struct FrameVariables {
    pub function: Option<String>,
    pub inlined: bool,
    pub arguments: Vec<Variable>,
    pub locals: Vec<Variable>,
}

impl CompileUnit {
    /// The variables of each frame at `frame.pc`, innermost inlined call first.
    pub fn frame_variables(&self, frame: &location::Frame) -> Result<Vec<FrameVariables>, String> {
        Ok(self.variables_in(&scope::scopes_at(self, frame.pc)?, frame))
    }

    /// The variables of `scopes` (found once for a pc, e.g. for a breakpoint's condition)
    /// in `frame`.
    pub fn variables_in(
        &self,
        scopes: &[FrameScope],
        frame: &location::Frame,
    ) -> Vec<FrameVariables> {
        scopes
            .iter()
            .map(|scope| {
                let mut arguments = Vec::new();
                let mut locals = Vec::new();
                for decl in &scope.variables {
                    let variable = self.variable(decl, frame, scope.frame_base.as_ref());
                    match decl.kind {
                        VariableKind::Argument => arguments.push(variable),
                        _ => locals.push(variable),
                    }
                }
                FrameVariables {
                    function: scope.function.clone(),
                    inlined: scope.inlined,
                    arguments,
                    locals,
                }
            })
            .collect()
    }

    /// The unit's globals and file-scope statics. `frame` supplies memory (and the
    /// thread pointer for thread-locals); its pc matters only to location lists.
    pub fn global_variables(&self, frame: &location::Frame) -> Result<Vec<Variable>, String> {
        Ok(self.globals_of(&scope::globals(self)?, frame))
    }

    /// The globals `decls` (found once, e.g. for a breakpoint's condition) in `frame`.
    pub fn globals_of(
        &self,
        decls: &[scope::VariableDecl],
        frame: &location::Frame,
    ) -> Vec<Variable> {
        decls
            .iter()
            .map(|decl| self.variable(decl, frame, None))
            .collect()
    }

    fn variable(
        &self,
        decl: &scope::VariableDecl,
        frame: &location::Frame,
        frame_base: Option<&location::LocationAttr>,
    ) -> Variable {
        Variable {
            path: decl.path.clone(),
            name: decl.name.clone(),
            kind: decl.kind,
            value: Value::new(
                decl.type_id,
                location::contents_of(self, &decl.location, decl.type_id, frame, frame_base),
            ),
        }
    }
}
