//! Breakpoint and stepping locations in a process: what `lines` and `functions` find
//! in each module's own numbering, translated through the module's mappings to the
//! addresses the process runs at, and the dynamic loader's hook for noticing libraries
//! come and go.

use std::rc::Rc;

use object::{Object, ObjectSymbol};

use super::functions;
use super::go_prologue;
use super::lines::{self, FunctionLocation, LineResolution, ResolvedLine, StepInfo};
use super::maps::Module;
use super::module::ModuleInfo;
use super::stack::Stacker;

/// Every module's symbols, read if not yet (a module whose file cannot be read has none).
fn all_infos(stacker: &mut Stacker) -> Vec<Rc<ModuleInfo>> {
    (0..stacker.modules().len())
        .map(|index| stacker.module_info(index))
        .collect()
}

/// The difference between the process's addresses and the file's for this module: ELF
/// loads every segment with one bias, which its first code mapping shows.
pub(super) fn bias(module: &Module, info: &ModuleInfo) -> Option<u64> {
    let mapping = module.code.first()?;
    let file_address = info.virtual_address(mapping.file_offset)?;
    Some(mapping.start.wrapping_sub(file_address))
}

/// The process's address of code at `address` (file numbering), if it is mapped.
pub fn runtime_code_address(module: &Module, info: &ModuleInfo, address: u64) -> Option<u64> {
    let offset = info.file_offset_of(address)?;
    module
        .code
        .iter()
        .find(|m| offset >= m.file_offset && offset - m.file_offset < m.end - m.start)
        .map(|m| m.start + (offset - m.file_offset))
}

pub fn resolve_lines(stacker: &mut Stacker, path: &str, requested: &[u32]) -> Vec<LineResolution> {
    let infos = all_infos(stacker);
    let modules = stacker.modules();
    lines::resolve_in_files(&infos, path, requested)
        .into_iter()
        .zip(requested)
        .map(|(found, &requested)| LineResolution {
            requested,
            found: found.and_then(|line| {
                let mut addresses: Vec<u64> = line
                    .addresses
                    .iter()
                    .filter_map(|&(m, a)| runtime_code_address(&modules[m], &infos[m], a))
                    .collect();
                addresses.sort_unstable();
                addresses.dedup();
                if addresses.is_empty() {
                    return Err(format!(
                        "line {} of {} has code, but none of it is loaded",
                        line.line, line.file
                    ));
                }
                Ok(ResolvedLine {
                    line: line.line,
                    column: line.column,
                    file: line.file,
                    addresses,
                })
            }),
        })
        .collect()
}

pub fn resolve_function(
    stacker: &mut Stacker,
    name: &str,
) -> Result<Vec<FunctionLocation>, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("no function name given".into());
    }
    let infos = all_infos(stacker);
    let modules = stacker.modules();
    let mut found: Vec<FunctionLocation> = Vec::new();
    for (index, info) in infos.iter().enumerate() {
        for function in functions::functions_named(info, name) {
            let Some(address) = runtime_code_address(&modules[index], info, function.address)
            else {
                continue;
            };
            found.push(FunctionLocation {
                address,
                name: function.name,
                file: function.file,
                line: function.line,
            });
        }
    }
    found.sort_by_key(|f| f.address);
    found.dedup_by_key(|f| f.address);
    if found.is_empty() {
        return Err(format!("no function {name} in any loaded module"));
    }
    Ok(found)
}

/// The Go function `name`, named in full, through `go_prologue`: the addresses
/// `resolve_function` gives for a concrete function, without reading DWARF entries.
/// When some module's Go table has the name but the fast path cannot place it, the
/// DWARF path answers for all.
pub fn resolve_go_runtime_function(
    stacker: &mut Stacker,
    name: &str,
) -> Result<Vec<FunctionLocation>, String> {
    let infos = all_infos(stacker);
    let modules = stacker.modules();
    let started = std::time::Instant::now();
    let mut found: Vec<FunctionLocation> = Vec::new();
    for (index, info) in infos.iter().enumerate() {
        let Some(addresses) = go_prologue::functions_named(info, name) else {
            tracing::debug!("{name}: not placed from Go's table and line rows; from DWARF");
            return resolve_function(stacker, name);
        };
        found.extend(addresses.into_iter().filter_map(|address| {
            Some(FunctionLocation {
                address: runtime_code_address(&modules[index], info, address)?,
                name: name.to_string(),
                file: None,
                line: 0,
            })
        }));
    }
    if found.is_empty() {
        tracing::debug!("{name}: not in any Go table; from DWARF");
        return resolve_function(stacker, name);
    }
    found.sort_by_key(|f| f.address);
    found.dedup_by_key(|f| f.address);
    let addresses: Vec<u64> = found.iter().map(|f| f.address).collect();
    tracing::debug!(
        "{name}: placed from Go's table and line rows at {addresses:x?} in {:?}",
        started.elapsed()
    );
    Ok(found)
}

pub fn breakpoint_locations(
    stacker: &mut Stacker,
    path: &str,
    line: u32,
    end_line: Option<u32>,
) -> Vec<(u32, Option<u32>)> {
    let infos = all_infos(stacker);
    lines::locations_in_file(&infos, path, line, end_line.unwrap_or(line).max(line))
}

pub fn step_info(stacker: &mut Stacker, pc: u64) -> Option<StepInfo> {
    let (index, info, address) = stacker.locate(pc)?;
    let module = &stacker.modules()[index];
    let step = lines::step_in_file(&info, address);
    // Everything below is in the same mapping as pc, or is dropped.
    let runtime = |a: u64| runtime_code_address(module, &info, a);
    let range = |(low, high): (u64, u64)| Some((runtime(low)?, runtime(high - 1)? + 1));
    Some(StepInfo {
        frames: step.frames,
        row: step.row.and_then(range),
        statement_start: step.statement_start,
        function: step.function.and_then(range),
        has_lines: step.has_lines,
        after_prologue: step.after_prologue.and_then(runtime),
    })
}

/// The address of the dynamic loader's hook, called after each change to the list of
/// loaded objects: `_r_debug.r_brk` read from the process (struct r_debug: int
/// r_version; struct link_map *r_map; ElfW(Addr) r_brk; ...), else the address of
/// `_dl_debug_state` (before the loader has filled `_r_debug` in). `None` when no
/// dynamic loader is mapped (a static program).
pub fn loader_breakpoint(stacker: &mut Stacker) -> Option<u64> {
    let index = stacker
        .modules()
        .iter()
        .position(|m| m.is_dynamic_loader())?;
    let info = stacker.module_info(index);
    let module = &stacker.modules()[index];
    let bias = bias(module, &info)?;
    if let Some(r_debug) = symbol_address(&info, "_r_debug") {
        let bytes = super::memory::read(stacker.view(), r_debug.wrapping_add(bias) + 16, 8)?;
        let r_brk = u64::from_le_bytes(bytes.try_into().ok()?);
        if r_brk != 0 {
            return Some(r_brk);
        }
    }
    let hook = symbol_address(&info, "_dl_debug_state")?;
    runtime_code_address(module, &info, hook)
}

/// The address (file numbering) of the symbol `name` in the module's file or its
/// debug file.
fn symbol_address(info: &ModuleInfo, name: &str) -> Option<u64> {
    info.symbol_files().iter().find_map(|data| {
        let file = object::File::parse(*data).ok()?;
        file.dynamic_symbols()
            .chain(file.symbols())
            .find(|s| s.address() != 0 && s.name().ok() == Some(name))
            .map(|s| s.address())
    })
}

/// Where an instruction is, for a disassembly: its function (the physical one, inlined
/// calls folded into it) and the source line of the innermost code there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionPlace {
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: u32,
}

/// The place of each address (process numbering); `None` outside any module.
pub fn instruction_places(
    stacker: &mut Stacker,
    addresses: &[u64],
) -> Vec<Option<InstructionPlace>> {
    addresses
        .iter()
        .map(|&address| {
            let (_, info, file_address) = stacker.locate(address)?;
            let frames = info.source_frames(file_address);
            let innermost = frames.first()?;
            Some(InstructionPlace {
                function: frames
                    .last()
                    .and_then(|f| f.function.as_deref())
                    .map(str::to_string),
                file: innermost.file.as_deref().map(str::to_string),
                line: innermost.line,
            })
        })
        .collect()
}
