//! A stopped frame's variables for the session: the `values` part (pure) run on the
//! symbols thread, over the process's memory, behind handles the session turns into DAP
//! `variablesReference`s.
//!
//! A handle names a scope (a frame's arguments, locals or its unit's globals) or a value
//! that expands (a struct, an array, a pointer). Handles are valid until the process runs
//! again (`clear`) and never reused, so a stale one is refused rather than answered with
//! another stop's value. Compile units, with the types read from them, are kept across
//! stops: a program's types do not change while it runs.

use std::cell::RefCell;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use super::module::ModuleInfo;
use super::unwind::Registers;
use super::Stacker;
use crate::procfs::Pid;
use crate::values::{self, CompileUnit, Formatter, Value};

/// Rows of a value expanded without `count` stop here; editors that page (`start` and
/// `count`, driven by `indexedVariables`) get every element.
const UNPAGED_ROWS: u64 = 10_000;

/// The frame whose variables are asked for, as the session knows it.
pub struct FrameQuery {
    /// The frame's pc: for a caller, its return address.
    pub pc: u64,
    /// A caller's pc is a return address: variables are looked up at the call itself
    /// (pc - 1), or a call at the end of a block would leave the block.
    pub is_caller: bool,
    /// Which of the (inlined) functions at this pc: 0 the innermost.
    pub inline_depth: usize,
    pub registers: Registers,
    /// The canonical frame address (the caller's stack pointer), when known.
    pub cfa: Option<u64>,
    /// The thread's `fs_base`, for thread-local variables.
    pub thread_pointer: Option<u64>,
    /// The frame that called this one's function, where parameters' values on entry
    /// (`DW_OP_entry_value`) are recovered from; `None` for the outermost frame.
    pub caller: Option<CallerQuery>,
}

/// The caller of a frame's (out-of-line) function, as the stack was unwound.
#[derive(Debug, Clone, Copy)]
pub struct CallerQuery {
    /// Its pc: the return address of the call.
    pub pc: u64,
    pub registers: Registers,
    /// Its canonical frame address, when known.
    pub cfa: Option<u64>,
}

impl FrameQuery {
    /// Where the frame's variables are looked up: a caller's at its call.
    fn lookup_pc(&self) -> u64 {
        if self.is_caller {
            self.pc.wrapping_sub(1)
        } else {
            self.pc
        }
    }

    fn registers(&self) -> FrameRegisters {
        FrameRegisters {
            registers: self.registers,
            cfa: self.cfa,
            thread_pointer: self.thread_pointer,
            entry: None,
        }
    }
}

/// The variables of the (inlined) function the query names, of those at its pc. The stack
/// and the values part each read the inlined calls at a pc from the same DWARF; should
/// they ever disagree on how many, the outermost is the safe answer (its variables are
/// the physical frame's).
fn chosen_function(
    mut frames: Vec<values::FrameVariables>,
    query: &FrameQuery,
) -> Option<values::FrameVariables> {
    if frames.is_empty() {
        return None;
    }
    Some(frames.remove(query.inline_depth.min(frames.len() - 1)))
}

/// A scope of a frame: what `scopes` answers.
pub struct ScopeInfo {
    pub name: &'static str,
    pub handle: u32,
    /// How many variables; `None` when counting would cost the reading (globals).
    pub count: Option<usize>,
    pub expensive: bool,
}

/// A variable as `variables` shows it.
pub struct VariableRow {
    pub name: String,
    pub value: String,
    pub type_name: String,
    /// The handle of its children, 0 when it has none.
    pub handle: u32,
    /// Array elements, for the editor to page through.
    pub indexed: Option<u64>,
    /// Named children beside the elements (a view's `len`, its `[raw]`), when there
    /// are elements.
    pub named: Option<u64>,
    /// Where the editor's memory view opens for it: a pointer's target, else where the
    /// value itself lives.
    pub memory_reference: Option<u64>,
}

enum Entry {
    /// A frame's arguments or locals, read when `scopes` was answered.
    Variables {
        unit: Rc<CompileUnit>,
        variables: Vec<(String, Value)>,
    },
    /// A unit's globals, read when first expanded.
    Globals {
        unit: Rc<CompileUnit>,
        pc: u64,
        thread_pointer: Option<u64>,
    },
    /// The globals of every unit of a module, indexed when first expanded and read a
    /// page at a time.
    ModuleGlobals {
        globals: Rc<values::ModuleGlobals>,
        pc: u64,
        thread_pointer: Option<u64>,
    },
    Value {
        unit: Rc<CompileUnit>,
        name: String,
        value: Value,
    },
}

#[derive(Default)]
pub struct VariableStore {
    entries: Vec<Entry>,
    /// The handle of `entries[0]`.
    first_handle: u32,
    /// Units by (module, offset of the unit in `.debug_info`); the module is kept alive
    /// so that its address is never another module's.
    units: FxHashMap<(usize, usize), (Rc<ModuleInfo>, Rc<CompileUnit>)>,
    /// How much of a value is shown (`maxStringLength`).
    pub limits: values::Limits,
    /// What names mean in each frame asked about in this stop (its variables and its
    /// unit's globals): a hover or a watch asks again and again for one frame, and
    /// finding the variables in scope walks the unit's DIEs.
    in_scope: FxHashMap<FrameKey, Rc<InScope>>,
    /// The globals of each module's units (one per module and load), kept across stops
    /// like the units: their index is built once, on first use.
    module_globals: Vec<Rc<values::ModuleGlobals>>,
}

/// A frame of the current stop, as far as what is in scope goes.
type FrameKey = (u64, Option<u64>, usize, Option<u64>);

/// The names an expression can use in a frame.
struct InScope {
    /// The chosen (inlined) function's variables.
    frames: Vec<values::FrameVariables>,
    globals: Vec<values::Variable>,
}

impl VariableStore {
    /// The process ran: every handle given out is stale now.
    pub fn clear(&mut self) {
        self.first_handle = self.next_handle();
        self.entries.clear();
        self.in_scope.clear();
    }

    /// The variables and globals of the frame `query` names, read once per stop.
    fn in_scope(
        &mut self,
        unit: &CompileUnit,
        query: &FrameQuery,
        frame: &values::location::Frame,
    ) -> Result<Rc<InScope>, String> {
        let key = (
            query.lookup_pc(),
            query.cfa,
            query.inline_depth,
            query.thread_pointer,
        );
        if let Some(known) = self.in_scope.get(&key) {
            return Ok(known.clone());
        }
        // Only the chosen function's own variables (and the globals) are in scope: an
        // inlined callee's and its caller's are not each other's.
        let frames = chosen_function(unit.frame_variables(frame)?, query)
            .into_iter()
            .collect();
        let globals = unit.global_variables(frame)?;
        let found = Rc::new(InScope { frames, globals });
        self.in_scope.insert(key, found.clone());
        Ok(found)
    }

    /// The globals of the module `unit` belongs to.
    fn module_globals(&mut self, unit: &CompileUnit) -> Rc<values::ModuleGlobals> {
        if let Some(known) = self.module_globals.iter().find(|g| g.is_of(unit)) {
            return known.clone();
        }
        let globals = Rc::new(values::ModuleGlobals::new(unit.dwarf.clone(), unit.layout));
        self.module_globals.push(globals.clone());
        globals
    }

    fn next_handle(&self) -> u32 {
        let handle = self.first_handle.max(1) as usize + self.entries.len();
        u32::try_from(handle).unwrap_or(u32::MAX)
    }

    fn add(&mut self, entry: Entry) -> u32 {
        let handle = self.next_handle();
        self.entries.push(entry);
        handle
    }

    fn entry(&self, handle: u32) -> Option<&Entry> {
        let index = handle.checked_sub(self.first_handle.max(1))?;
        self.entries.get(index as usize)
    }

    /// The scopes of a frame: its arguments and locals (read now), and its compile unit's
    /// globals (read when expanded). Empty when no DWARF describes the frame's code.
    pub fn scopes(
        &mut self,
        stacker: &mut Stacker,
        query: &FrameQuery,
    ) -> Result<Vec<ScopeInfo>, String> {
        let lookup = query.lookup_pc();
        let Some(unit) = self.unit_at(stacker, lookup) else {
            return Ok(Vec::new());
        };
        let memory = ProcessReader(stacker.view());
        let registers = self.frame_registers(stacker, query, &unit);
        let frame = values::location::Frame {
            pc: lookup,
            registers: &registers,
            memory: &memory,
        };
        let Some(chosen) = chosen_function(unit.frame_variables(&frame)?, query) else {
            return Ok(Vec::new());
        };
        let named = |list: Vec<values::Variable>| -> Vec<(String, Value)> {
            list.into_iter().map(|v| (v.name, v.value)).collect()
        };
        let mut scopes = Vec::new();
        for (name, list) in [("Arguments", chosen.arguments), ("Locals", chosen.locals)] {
            let count = list.len();
            let handle = self.add(Entry::Variables {
                unit: unit.clone(),
                variables: named(list),
            });
            scopes.push(ScopeInfo {
                name,
                handle,
                count: Some(count),
                expensive: false,
            });
        }
        let module_globals = self.module_globals(&unit);
        let handle = self.add(Entry::Globals {
            unit,
            pc: lookup,
            thread_pointer: query.thread_pointer,
        });
        scopes.push(ScopeInfo {
            name: "Globals",
            handle,
            count: None,
            expensive: true,
        });
        // Counted only once the index is built: building it walks every unit.
        let count = module_globals.known_len();
        let handle = self.add(Entry::ModuleGlobals {
            globals: module_globals,
            pc: lookup,
            thread_pointer: query.thread_pointer,
        });
        scopes.push(ScopeInfo {
            name: "Module globals",
            handle,
            count,
            expensive: true,
        });
        Ok(scopes)
    }

    /// `text` evaluated in the frame: a row like a variable's (its children behind a
    /// handle), or why not, in words for the user.
    pub fn evaluate(
        &mut self,
        stacker: &mut Stacker,
        query: &FrameQuery,
        text: &str,
        hex: bool,
    ) -> Result<VariableRow, String> {
        let lookup = query.lookup_pc();
        let Some(unit) = self.unit_at(stacker, lookup) else {
            return Err(format!(
                "no debug information describes the code at {:#x}: expressions need DWARF \
                 (build with -g)",
                query.pc
            ));
        };
        let memory = ProcessReader(stacker.view());
        let registers = self.frame_registers(stacker, query, &unit);
        let frame = values::location::Frame {
            pc: lookup,
            registers: &registers,
            memory: &memory,
        };
        let in_scope = self.in_scope(&unit, query, &frame)?;
        let module_globals = self.module_globals(&unit);
        let own_unit = unit.unit.header.offset().0;
        let other_globals = |name: &str| module_globals.find(name, own_unit, &frame);
        let scope = crate::expr::Scope {
            unit: &unit,
            frames: &in_scope.frames,
            globals: &in_scope.globals,
            other_globals: Some(&other_globals),
            registers: &registers,
            memory: &memory,
        };
        let value = scope.evaluate_text(text).map_err(|err| err.to_string())?;
        let symbols = StackerSymbols(RefCell::new(stacker));
        Ok(self.row(&unit, &memory, &symbols, hex, text.to_string(), value))
    }

    /// Completions of the debug console's text before the cursor in the frame: the
    /// names in scope (arguments, locals, the unit's globals) that start with the word
    /// being typed, or the fields of the value before a `.` or `->`. Each with its
    /// kind (DAP's `variable`, `field`); empty where nothing completes.
    pub fn completions(
        &mut self,
        stacker: &mut Stacker,
        query: &FrameQuery,
        before_cursor: &str,
    ) -> Vec<(String, &'static str)> {
        /// More than this many candidates help nobody in a console's list.
        const MAX_COMPLETIONS: usize = 500;
        let context = crate::expr::completion::context(before_cursor);
        let lookup = query.lookup_pc();
        let Some(unit) = self.unit_at(stacker, lookup) else {
            return Vec::new();
        };
        let memory = ProcessReader(stacker.view());
        let registers = query.registers();
        let frame = values::location::Frame {
            pc: lookup,
            registers: &registers,
            memory: &memory,
        };
        let Ok(in_scope) = self.in_scope(&unit, query, &frame) else {
            return Vec::new();
        };
        let (chosen, globals) = (&in_scope.frames, &in_scope.globals);
        let module_globals = self.module_globals(&unit);
        let own_unit = unit.unit.header.offset().0;
        let other_globals = |name: &str| module_globals.find(name, own_unit, &frame);
        let mut found: Vec<(String, &'static str)> = match &context.fields_of {
            Some(base) => {
                let scope = crate::expr::Scope {
                    unit: &unit,
                    frames: chosen,
                    globals,
                    other_globals: Some(&other_globals),
                    registers: &registers,
                    memory: &memory,
                };
                let Ok(value) = scope.evaluate_text(base) else {
                    return Vec::new();
                };
                let formatter = Formatter::new(&unit, &memory);
                // Through a pointer too: `.` and `->` both reach the pointee's fields.
                let value = formatter.pointee(&value).unwrap_or(value);
                field_names(&unit, value.type_id)
                    .into_iter()
                    .map(|name| (name, "field"))
                    .collect()
            }
            None => {
                let mut names: Vec<(String, &'static str)> = Vec::new();
                for frame in chosen {
                    for variable in frame.arguments.iter().chain(&frame.locals) {
                        names.push((variable.name.clone(), "variable"));
                    }
                }
                let mut global_names: Vec<String> =
                    globals.iter().map(|g| g.name.clone()).collect();
                global_names.sort();
                names.extend(global_names.into_iter().map(|n| (n, "variable")));
                names
            }
        };
        let mut seen = std::collections::HashSet::new();
        found.retain(|(name, _)| name.starts_with(&context.partial) && seen.insert(name.clone()));
        found.truncate(MAX_COMPLETIONS);
        found
    }

    /// The variables under `handle`, `start..start + count`.
    pub fn variables(
        &mut self,
        stacker: &mut Stacker,
        handle: u32,
        start: u64,
        count: Option<u64>,
        filter: values::ChildFilter,
        hex: bool,
    ) -> Result<Vec<VariableRow>, String> {
        let memory = ProcessReader(stacker.view());
        let children = self.children(stacker, handle, start, count, filter)?;
        let symbols = StackerSymbols(RefCell::new(stacker));
        Ok(children
            .into_iter()
            .map(|(unit, name, value)| self.row(&unit, &memory, &symbols, hex, name, value))
            .collect())
    }

    /// The values under `handle`, `start..start + count`, by the names they are shown
    /// with, each with the unit it is shown in.
    fn children(
        &self,
        stacker: &mut Stacker,
        handle: u32,
        start: u64,
        count: Option<u64>,
        filter: values::ChildFilter,
    ) -> Result<Named, String> {
        let memory = ProcessReader(stacker.view());
        let count = count.filter(|c| *c > 0).unwrap_or(UNPAGED_ROWS);
        // Scopes hold named variables only.
        let count = match (filter, self.entry(handle)) {
            (
                values::ChildFilter::Indexed,
                Some(Entry::Variables { .. } | Entry::Globals { .. } | Entry::ModuleGlobals { .. }),
            ) => 0,
            _ => count,
        };
        Ok(match self.entry(handle) {
            None => return Err(stale_reference(handle)),
            Some(Entry::Variables { unit, variables }) => page(unit, variables, start, count),
            Some(Entry::Globals {
                unit,
                pc,
                thread_pointer,
            }) => {
                let registers = FrameRegisters::for_globals(*thread_pointer);
                let frame = values::location::Frame {
                    pc: *pc,
                    registers: &registers,
                    memory: &memory,
                };
                // A global in a namespace or module by its path: two statics of one
                // name in two modules are two rows, each named as code names it.
                let globals: Vec<(String, Value)> = unit
                    .global_variables(&frame)?
                    .into_iter()
                    .map(|v| (v.path.unwrap_or(v.name), v.value))
                    .collect();
                page(unit, &globals, start, count)
            }
            Some(Entry::ModuleGlobals {
                globals,
                pc,
                thread_pointer,
            }) => {
                let registers = FrameRegisters::for_globals(*thread_pointer);
                let frame = values::location::Frame {
                    pc: *pc,
                    registers: &registers,
                    memory: &memory,
                };
                globals
                    .page(start, count, &frame)?
                    .into_iter()
                    .map(|row| (row.unit, row.name, row.value))
                    .collect()
            }
            Some(Entry::Value { unit, name, value }) => {
                let mut formatter = Formatter::new(unit, &memory);
                formatter.limits = self.limits;
                let children = formatter
                    .filtered_children(value, filter, start, count)
                    .into_iter()
                    // A pointer's target is named after the pointer, as gdb's `*p`.
                    .map(|child| match child.name.as_str() {
                        "*" => (unit.clone(), format!("*{name}"), child.value),
                        _ => (unit.clone(), child.name, child.value),
                    })
                    .collect();
                children
            }
        })
    }

    /// Where the variable `name` under `handle` lives and the bytes `text` makes of it
    /// in its type (`setVariable`): the session writes them through the ptrace thread.
    /// Only a variable in memory can be set; one in a register, or a bitfield, is
    /// refused with why.
    pub fn assignment(
        &mut self,
        stacker: &mut Stacker,
        handle: u32,
        name: &str,
        text: &str,
    ) -> Result<(u64, Vec<u8>), String> {
        // An element of a long array is looked up by its index, not by listing them all.
        let element = name
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|index| index.parse::<u64>().ok());
        let children = match (element, self.entry(handle)) {
            // A module has thousands of globals: the one named is looked up by its name.
            (
                None,
                Some(Entry::ModuleGlobals {
                    globals,
                    pc,
                    thread_pointer,
                }),
            ) => {
                let memory = ProcessReader(stacker.view());
                let registers = FrameRegisters::for_globals(*thread_pointer);
                let frame = values::location::Frame {
                    pc: *pc,
                    registers: &registers,
                    memory: &memory,
                };
                globals
                    .row_named(name, &frame)?
                    .map(|row| (row.unit, row.name, row.value))
                    .into_iter()
                    .collect()
            }
            (Some(index), _) => self.children(
                stacker,
                handle,
                index,
                Some(1),
                values::ChildFilter::Indexed,
            )?,
            (None, _) => self.children(stacker, handle, 0, None, values::ChildFilter::All)?,
        };
        let Some((unit, _, variable)) = children.into_iter().find(|(_, n, _)| n == name) else {
            return Err(format!("there is no variable named '{name}' here to set"));
        };
        let address = match (&variable.contents, variable.bit_field) {
            (_, Some(_)) => {
                return Err(format!(
                    "'{name}' is a bitfield: latch cannot set bitfields yet"
                ))
            }
            (values::Contents::Memory(address), None) => *address,
            (values::Contents::OptimizedOut, None) => {
                return Err(format!(
                    "'{name}' was optimized out here: there is nothing to set"
                ))
            }
            _ => {
                return Err(format!(
                    "'{name}' lives in a register or was computed by the compiler here, not in \
                     memory: latch sets variables in memory only"
                ))
            }
        };
        let type_id = variable
            .type_id
            .ok_or_else(|| format!("'{name}' has no type (void): it cannot be set"))?;
        let memory = ProcessReader(stacker.view());
        let registers = values::RegisterSet::default();
        let scope = crate::expr::Scope {
            unit: &unit,
            frames: &[],
            globals: &[],
            // The new value is made of constants and the unit's enumerators, not of
            // variables.
            other_globals: None,
            registers: &registers,
            memory: &memory,
        };
        let invalid =
            |err: crate::expr::EvalError| format!("cannot set '{name}' to `{text}`: {err}");
        let expr = scope.parse(text).map_err(invalid)?;
        let value = scope.evaluate(&expr).map_err(invalid)?;
        let bytes = scope
            .assignment_bytes(&value, &expr, type_id)
            .map_err(invalid)?;
        Ok((address, bytes))
    }

    fn row(
        &mut self,
        unit: &Rc<CompileUnit>,
        memory: &ProcessReader,
        symbols: &StackerSymbols,
        hex: bool,
        name: String,
        value: Value,
    ) -> VariableRow {
        let mut formatter = Formatter::new(unit, memory);
        formatter.limits = self.limits;
        formatter.symbols = Some(symbols);
        formatter.hex = hex;
        let summary = formatter.summary(&value);
        let type_name = formatter.type_name(&value);
        let children = formatter.child_count(&value);
        let is_indexed = children > 0 && formatter.has_indexed_children(&value);
        let named = is_indexed
            .then(|| formatter.named_count(&value))
            .filter(|n| *n > 0);
        let indexed = is_indexed.then(|| children - named.unwrap_or(0));
        let memory_reference = match formatter.pointee(&value).map(|target| target.contents) {
            Some(values::Contents::Memory(address)) => Some(address),
            _ => match value.contents {
                values::Contents::Memory(address) => Some(address),
                _ => None,
            },
        };
        let handle = if children > 0 {
            self.add(Entry::Value {
                unit: unit.clone(),
                name: name.clone(),
                value,
            })
        } else {
            0
        };
        VariableRow {
            name,
            value: summary,
            type_name,
            handle,
            indexed,
            named,
            memory_reference,
        }
    }

    /// The registers of the frame `query` names, whose code is in `unit`, with what
    /// recovers its parameters' values on entry: its caller's frame and unit.
    fn frame_registers(
        &mut self,
        stacker: &mut Stacker,
        query: &FrameQuery,
        unit: &Rc<CompileUnit>,
    ) -> FrameRegisters {
        let mut registers = query.registers();
        registers.entry = query.caller.and_then(|caller| {
            // The caller's variables, and its call site, are at the call: its return
            // address minus one.
            let caller_unit = self.unit_at(stacker, caller.pc.wrapping_sub(1))?;
            Some(Box::new(EntrySource {
                callee: unit.clone(),
                pc: query.lookup_pc(),
                caller_unit,
                return_address: caller.pc,
                caller_registers: FrameRegisters {
                    registers: caller.registers,
                    cfa: caller.cfa,
                    thread_pointer: query.thread_pointer,
                    entry: None,
                },
                memory: ProcessReader(stacker.view()),
            }))
        });
        registers
    }

    /// The compile unit whose code holds `pc`, read once per unit.
    pub(super) fn unit_at(&mut self, stacker: &mut Stacker, pc: u64) -> Option<Rc<CompileUnit>> {
        let (index, info, file_pc) = stacker.locate(pc)?;
        let dwarf = info.values_dwarf()?;
        let is_executable = stacker.is_executable(index);
        let layout = values::ModuleLayout {
            load_bias: pc.wrapping_sub(file_pc),
            static_tls: if is_executable {
                info.static_tls()
            } else {
                None
            },
        };
        let module_key = Rc::as_ptr(&info) as usize;
        let known = self
            .units
            .iter()
            .find(|((module, _), (_, unit))| {
                *module == module_key && unit.layout == layout && unit_covers(unit, file_pc)
            })
            .map(|(_, (_, unit))| unit.clone());
        if known.is_some() {
            return known;
        }
        let unit = Rc::new(CompileUnit::containing(dwarf, pc, layout)?);
        let offset = unit.unit.header.offset().0;
        self.units
            .insert((module_key, offset), (info, unit.clone()));
        Some(unit)
    }
}

/// Whether the unit's code covers `file_pc` (an address in the file's numbering).
fn unit_covers(unit: &CompileUnit, file_pc: u64) -> bool {
    let Ok(mut ranges) = unit.dwarf.unit_ranges(&unit.unit) else {
        return false;
    };
    while let Ok(Some(range)) = ranges.next() {
        if range.begin <= file_pc && file_pc < range.end {
            return true;
        }
    }
    false
}

/// The fields of a struct, union or class (of its base classes and anonymous members
/// too, which `.` reaches), in declaration order.
fn field_names(unit: &CompileUnit, type_id: Option<values::TypeId>) -> Vec<String> {
    let mut names = Vec::new();
    let mut pending = vec![(type_id, 0usize)];
    while let Some((id, depth)) = pending.pop() {
        if depth > 8 {
            continue;
        }
        let Some((_, ty)) = unit.types.strip(id) else {
            continue;
        };
        if let values::Type::Aggregate { members, .. } = &*ty {
            for member in members.iter().rev() {
                match (&member.name, member.is_base) {
                    (Some(name), false) => names.push(name.clone()),
                    _ => pending.push((member.type_id, depth + 1)),
                }
            }
        }
    }
    names.reverse();
    names
}

/// Values by the names they are shown with, each with the unit it is shown in.
type Named = Vec<(Rc<CompileUnit>, String, Value)>;

fn page(unit: &Rc<CompileUnit>, variables: &[(String, Value)], start: u64, count: u64) -> Named {
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    variables
        .iter()
        .skip(start)
        .take(count)
        .map(|(name, value)| (unit.clone(), name.clone(), value.clone()))
        .collect()
}

pub fn stale_reference(handle: u32) -> String {
    format!(
        "variables reference {handle} is not valid now: references last until the program \
         runs again; ask for scopes of a frame of the current stop"
    )
}

/// The target's memory through `process_vm_readv`: values are data, not code, so bytes
/// under latch's breakpoints are not put back here (a disassembly does that).
pub(super) struct ProcessReader(pub(super) Pid);

impl values::Memory for ProcessReader {
    fn read(&self, address: u64, into: &mut [u8]) -> Result<(), values::ReadError> {
        let error = values::ReadError {
            address,
            len: into.len(),
        };
        if into.is_empty() {
            return Ok(());
        }
        let bytes = super::memory::read(self.0, address, into.len()).ok_or(error.clone())?;
        if bytes.len() != into.len() {
            return Err(error);
        }
        into.copy_from_slice(&bytes);
        Ok(())
    }
}

/// Names the code and data that pointers point to (`0x401136 <twice>`), from the ELF
/// symbol tables of the module holding the address.
struct StackerSymbols<'a>(RefCell<&'a mut Stacker>);

impl values::Symbolizer for StackerSymbols<'_> {
    fn symbol_for(&self, address: u64) -> Option<(String, u64)> {
        let mut stacker = self.0.borrow_mut();
        let (_, info, file_address) = stacker.locate(address)?;
        let table = info.symbol_table();
        let name = table.containing(file_address)?;
        let start = table
            .range_containing(file_address)
            .map_or(file_address, |(start, _)| start);
        let name = name.split('@').next().unwrap_or(&name).to_string();
        Some((super::module::demangle(&name, None), file_address - start))
    }
}

/// A frame's registers in DWARF's numbering (what the unwinder keeps), its CFA, the
/// thread pointer, and its caller for values on entry.
pub(super) struct FrameRegisters {
    pub(super) registers: Registers,
    pub(super) cfa: Option<u64>,
    pub(super) thread_pointer: Option<u64>,
    pub(super) entry: Option<Box<EntrySource>>,
}

/// Where a frame's values on entry come from: the call site in its caller. The caller's
/// own entry values are not followed further (one level, as most values need).
pub(super) struct EntrySource {
    /// The frame's unit and the pc its variables are looked up at.
    callee: Rc<CompileUnit>,
    pc: u64,
    caller_unit: Rc<CompileUnit>,
    return_address: u64,
    caller_registers: FrameRegisters,
    memory: ProcessReader,
}

impl FrameRegisters {
    /// What globals are read with: no frame's registers, only the thread pointer (for
    /// thread-local ones).
    fn for_globals(thread_pointer: Option<u64>) -> FrameRegisters {
        FrameRegisters {
            registers: Registers::default(),
            cfa: None,
            thread_pointer,
            entry: None,
        }
    }
}

impl values::Registers for FrameRegisters {
    fn register(&self, number: u16) -> Option<u64> {
        self.registers.get(number)
    }
    fn cfa(&self) -> Option<u64> {
        self.cfa
    }
    fn thread_pointer(&self) -> Option<u64> {
        self.thread_pointer
    }
    fn entry_value(&self, expression: &[u8]) -> Option<u64> {
        let source = self.entry.as_ref()?;
        let caller = values::entry::Caller {
            unit: &source.caller_unit,
            return_address: source.return_address,
            registers: &source.caller_registers,
            memory: &source.memory,
        };
        values::entry::entry_value(&source.callee, source.pc, &caller, expression)
    }
}
