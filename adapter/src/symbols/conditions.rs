//! Breakpoint conditions and logpoint messages, compiled once on the symbols thread and
//! run on the ptrace thread at every hit (DESIGN.md §9: "a hit is decided where it
//! happens"): a false condition costs a trap, a read of a few words with
//! `process_vm_readv`, and a resume, never a trip through the session.
//!
//! Compiling resolves everything that depends only on the breakpoint's address: the
//! module and compile unit, the variables in scope there (blocks, inlined calls), the
//! unit's globals, the rule that gives the frame's CFA, and the parsed expression, and
//! checks that every name in it means something at that address, so that a typo is
//! reported when the breakpoint is set. What is left for a hit is evaluation with the
//! thread's registers: locations, reads, arithmetic.
//!
//! A compiled program is `Send` (DWARF sections are `'static`); the compile unit with its
//! type cache, which is not, is built on the ptrace thread at the first hit and kept in a
//! thread-local table.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::module::Reader;
use super::unwind::Registers;
use super::variables::{FrameRegisters, ProcessReader, VariableStore};
use super::Stacker;
use crate::expr::template::Template;
use crate::expr::{EvalError, Expr, Scope};
use crate::ptrace::{Condition, HitContext, LogRenderer};
use crate::values::scope::{FrameScope, VariableDecl};
use crate::values::{self, CompileUnit, Formatter, ModuleLayout};

/// What one breakpoint runs at its hits: a condition, a message, or both.
#[derive(Clone, Default)]
pub struct Compiled {
    pub condition: Option<Condition>,
    pub log: Option<LogRenderer>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("condition", &self.condition.is_some())
            .field("log", &self.log.is_some())
            .finish()
    }
}

/// Everything about one address of a breakpoint that a hit there needs.
struct Site {
    /// Names the site's prepared unit in the ptrace thread's table.
    id: u64,
    address: u64,
    sections: Arc<gimli::DwarfSections<Reader>>,
    unit_offset: gimli::DebugInfoOffset<usize>,
    layout: ModuleLayout,
    scopes: Vec<FrameScope>,
    globals: Vec<VariableDecl>,
    /// The CFA as register + offset, from the CFI row at the address.
    cfa: Option<(u16, i64)>,
    condition: Option<Expr>,
    log: Option<Template>,
}

/// Ids of sites, never reused, so that a thread-local entry never serves another site.
static NEXT_SITE: AtomicU64 = AtomicU64::new(1);

/// At most this many sites' units are kept on the ptrace thread; more are built again.
const MAX_PREPARED: usize = 256;

thread_local! {
    static PREPARED: RefCell<FxHashMap<u64, Rc<CompileUnit>>> = RefCell::default();
}

impl VariableStore {
    /// Compiles `condition` and the expressions in `log` for each of `addresses`. An
    /// expression that cannot mean anything at any address (a name not in scope, a
    /// syntax error) is refused with why.
    pub fn compile_breakpoint(
        &mut self,
        stacker: &mut Stacker,
        addresses: &[u64],
        condition: Option<&str>,
        log: Option<&str>,
    ) -> Result<Compiled, String> {
        let mut sites = Vec::new();
        let mut refusal = None;
        for &address in addresses {
            match self.compile_site(stacker, address, condition, log) {
                Ok(site) => sites.push(site),
                Err(why) => refusal = refusal.or(Some(why)),
            }
        }
        if sites.is_empty() {
            return Err(refusal.unwrap_or_else(|| "the breakpoint has no address".into()));
        }
        let sites: Arc<[Site]> = sites.into();
        let site_for = |sites: &Arc<[Site]>, pc: u64| -> Option<usize> {
            sites.iter().position(|site| site.address == pc)
        };
        let compiled_condition: Option<Condition> = condition.map(|_| {
            let sites = sites.clone();
            Arc::new(move |hit: &HitContext| -> Result<bool, String> {
                let site = site_for(&sites, hit.registers.rip)
                    .map(|i| &sites[i])
                    .ok_or_else(|| {
                        format!(
                            "the condition was not compiled for {:#x}: no debug information there",
                            hit.registers.rip
                        )
                    })?;
                site.condition_holds(hit)
            }) as Condition
        });
        let compiled_log: Option<LogRenderer> = log.map(|_| {
            let sites = sites.clone();
            Arc::new(move |hit: &HitContext| -> String {
                match site_for(&sites, hit.registers.rip) {
                    Some(i) => sites[i].message(hit),
                    None => format!(
                        "<no debug information at {:#x} for the log message>",
                        hit.registers.rip
                    ),
                }
            }) as LogRenderer
        });
        Ok(Compiled {
            condition: compiled_condition,
            log: compiled_log,
        })
    }

    fn compile_site(
        &mut self,
        stacker: &mut Stacker,
        address: u64,
        condition: Option<&str>,
        log: Option<&str>,
    ) -> Result<Site, String> {
        let no_debug_information = || {
            format!(
                "there is no debug information at {address:#x} to evaluate the condition or \
                 message with: build the program with -g"
            )
        };
        let unit = self
            .unit_at(stacker, address)
            .ok_or_else(no_debug_information)?;
        let (_, info, file_pc) = stacker.locate(address).ok_or_else(no_debug_information)?;
        let sections = info.values_sections().ok_or_else(no_debug_information)?;
        let unit_offset = gimli::DebugInfoOffset(unit.unit.header.offset().0);
        let scopes = values::scope::scopes_at(&unit, address)?;
        let globals = values::scope::globals(&unit)?;
        let parse = |text: &str| {
            crate::expr::parse_with_types(text, &|name| {
                crate::expr::type_names::is_type(&unit.types, name)
            })
        };
        let condition = condition
            .map(|text| {
                parse(text).map_err(|err| format!("the condition `{text}` does not parse: {err}"))
            })
            .transpose()?;
        let log = log.map(|text| Template::parse(text, parse)).transpose()?;
        // Only the variables the expressions name are read at a hit: a frame's every
        // local and its unit's every global would cost most of a hit's time.
        let mut names: Vec<String> = condition.iter().flat_map(Expr::names).collect();
        for part in log.iter().flat_map(|log| &log.parts) {
            if let crate::expr::template::Part::Expression { expr, .. } = part {
                names.extend(expr.names());
            }
        }
        let scopes: Vec<FrameScope> = scopes
            .into_iter()
            .map(|mut scope| {
                scope.variables.retain(|decl| may_be_named(decl, &names));
                scope
            })
            .collect();
        let globals: Vec<VariableDecl> = globals
            .into_iter()
            .filter(|decl| may_be_named(decl, &names))
            .collect();
        let mut context = Box::new(super::unwind::UnwindContext::new());
        let cfa = super::unwind::cfa_rule(&info, file_pc, &mut context);
        let site = Site {
            id: NEXT_SITE.fetch_add(1, Ordering::Relaxed),
            address,
            sections,
            unit_offset,
            layout: unit.layout,
            scopes,
            globals,
            cfa,
            condition,
            log,
        };
        site.check_names(&unit)?;
        Ok(site)
    }
}

impl Site {
    /// Every name the expressions use means something here: evaluated once over zeroed
    /// registers and memory, only "no such name" answers refuse them (a null pointer
    /// or a division by zero over zeros says nothing of a real hit).
    fn check_names(&self, unit: &CompileUnit) -> Result<(), String> {
        let registers = FrameRegisters {
            registers: Registers::from_user_regs(&zeroed_registers(self.address)),
            cfa: Some(0),
            thread_pointer: Some(0),
            entry: None,
        };
        let memory = Zeroes;
        let frame = values::location::Frame {
            pc: self.address,
            registers: &registers,
            memory: &memory,
        };
        let frames = unit.variables_in(&self.scopes, &frame);
        let globals = unit.globals_of(&self.globals, &frame);
        let scope = Scope {
            unit,
            frames: &frames,
            globals: &globals,
            // Conditions run on the ptrace thread at every hit, over a DWARF of their
            // own: indexing every unit of the module there would cost each breakpoint
            // that walk. They name the unit's own globals only (the manual says so).
            other_globals: None,
            registers: &registers,
            memory: &memory,
        };
        let mut expressions: Vec<(&str, &Expr)> = Vec::new();
        if let Some(condition) = &self.condition {
            expressions.push(("the condition", condition));
        }
        if let Some(log) = &self.log {
            for part in &log.parts {
                if let crate::expr::template::Part::Expression { expr, .. } = part {
                    expressions.push(("the log message", expr));
                }
            }
        }
        for (what, expr) in expressions {
            if let Err(
                err @ (EvalError::NoVariable(_)
                | EvalError::NoField { .. }
                | EvalError::UnknownType(_)
                | EvalError::UnknownRegister(_)),
            ) = scope.evaluate(expr)
            {
                return Err(format!("{what} `{expr}` cannot be evaluated here: {err}"));
            }
        }
        Ok(())
    }

    /// The site's unit on this (the ptrace) thread, built at the first hit.
    fn unit(&self) -> Result<Rc<CompileUnit>, String> {
        PREPARED.with(|prepared| {
            if let Some(unit) = prepared.borrow().get(&self.id) {
                return Ok(unit.clone());
            }
            // The sections are 'static: this copies their slices, not them.
            let dwarf = Rc::new(self.sections.borrow(|section| *section));
            let unit = dwarf
                .debug_info
                .header_from_offset(self.unit_offset)
                .and_then(|header| dwarf.unit(header))
                .map_err(|err| format!("cannot read the compile unit: {err}"))?;
            let unit = Rc::new(CompileUnit::new(dwarf, unit, self.layout));
            let mut prepared = prepared.borrow_mut();
            if prepared.len() >= MAX_PREPARED {
                prepared.clear();
            }
            prepared.insert(self.id, unit.clone());
            Ok(unit)
        })
    }

    /// Evaluates the expressions with the hitting thread's registers and memory.
    fn with_scope<T>(
        &self,
        hit: &HitContext,
        run: impl FnOnce(&Scope, &Formatter) -> T,
    ) -> Result<T, String> {
        let unit = self.unit()?;
        let registers = Registers::from_user_regs(hit.registers);
        let cfa = self.cfa.and_then(|(register, offset)| {
            registers
                .get(register)
                .map(|base| base.wrapping_add(offset as u64))
        });
        let registers = FrameRegisters {
            registers,
            cfa,
            thread_pointer: Some(hit.registers.fs_base),
            // A hit is decided without unwinding to the caller: a parameter's value
            // on entry reads as optimized out in a condition.
            entry: None,
        };
        let memory = ProcessReader(hit.tid);
        let frame = values::location::Frame {
            pc: self.address,
            registers: &registers,
            memory: &memory,
        };
        let frames = unit.variables_in(&self.scopes, &frame);
        let globals = unit.globals_of(&self.globals, &frame);
        let scope = Scope {
            unit: &unit,
            frames: &frames,
            globals: &globals,
            // As when the condition was checked: the unit's own globals only.
            other_globals: None,
            registers: &registers,
            memory: &memory,
        };
        let formatter = Formatter::new(&unit, &memory);
        Ok(run(&scope, &formatter))
    }

    fn condition_holds(&self, hit: &HitContext) -> Result<bool, String> {
        let Some(condition) = &self.condition else {
            return Ok(true);
        };
        self.with_scope(hit, |scope, _| {
            scope
                .evaluate(condition)
                .and_then(|value| scope.truthy(&value))
                .map_err(|err| format!("`{condition}`: {err}"))
        })?
    }

    fn message(&self, hit: &HitContext) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let rendered = self.with_scope(hit, |scope, formatter| {
            log.render(|_, expr| match scope.evaluate(expr) {
                Ok(value) => formatter.summary(&value),
                Err(err) => values::value::error_text(&err.to_string()),
            })
        });
        rendered.unwrap_or_else(|why| values::value::error_text(&why))
    }
}

/// Whether an expression naming `names` may mean the variable `decl`: by its name, its
/// path (`prog::inner::NAME`, or the end of it), or Go's package-qualified name
/// (`main.counter` for `counter` or `main.counter`).
fn may_be_named(decl: &VariableDecl, names: &[String]) -> bool {
    names.iter().any(|name| {
        decl.name == *name
            || decl.name.ends_with(&format!(".{name}"))
            || decl
                .path
                .as_deref()
                .is_some_and(|path| path == name || path.ends_with(&format!("::{name}")))
    })
}

/// Registers all zero but the pc, for checking names.
fn zeroed_registers(pc: u64) -> libc::user_regs_struct {
    // SAFETY: user_regs_struct is plain integers; all zeroes is a valid value.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    regs.rip = pc;
    regs
}

/// Memory that reads as zeroes, for checking names without a process.
struct Zeroes;

impl values::Memory for Zeroes {
    fn read(&self, _address: u64, into: &mut [u8]) -> Result<(), values::ReadError> {
        into.fill(0);
        Ok(())
    }
}
