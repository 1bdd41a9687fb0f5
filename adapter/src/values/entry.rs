//! A parameter's value on entry to its function (`DW_OP_entry_value`), recovered from
//! the caller as gdb does: the caller's `DW_TAG_call_site` whose return address is the
//! one the stack was unwound through says, for each register an argument was passed in,
//! how to compute what the caller put there (`DW_AT_call_value`), in the caller's frame.
//!
//! Only an unambiguous answer is given: one call site at that return address, a call
//! that is known to go to the function the callee frame is in (not a tail call that
//! went elsewhere), one parameter in the asked-for register, and a value the caller's
//! recovered registers and memory can compute. Anything else is `None`, which the value
//! shows as `<optimized out>`: a guess would be worse than nothing.

use super::location::{self, Frame, LocationAttr};
use super::scope;
use super::{CompileUnit, Memory, Registers};
use crate::symbols::module::Reader;

/// How deep the caller's DIEs are searched for call sites (blocks and inlined calls nest).
const MAX_DEPTH: usize = 64;

/// The frame that called the function whose entry values are asked for.
pub struct Caller<'a> {
    /// The unit holding the caller's code (the caller may be in another module).
    pub unit: &'a CompileUnit,
    /// The return address into the caller: the caller frame's pc as unwound.
    pub return_address: u64,
    /// The caller's registers as the unwinder recovered them (callee-saved ones, the
    /// stack pointer; not those a call clobbers), and its CFA.
    pub registers: &'a dyn Registers,
    pub memory: &'a dyn Memory,
}

/// The value `expression` (the operand of `DW_OP_entry_value`, e.g. `DW_OP_reg5`) had
/// when the function holding `pc` in `callee` was entered from `caller`; `None` unless
/// the caller's call site gives it unambiguously.
pub fn entry_value(
    callee: &CompileUnit,
    pc: u64,
    caller: &Caller,
    expression: &[u8],
) -> Option<u64> {
    // gcc and clang ask for registers only; a value in memory at entry
    // (DW_OP_breg; DW_OP_deref, DW_AT_call_data_value) is left unanswered.
    let register = single_register(expression)?;
    let callee_function = Function::at(callee, pc)?;
    let sites = call_sites(caller)?;
    let [site] = sites.as_slice() else {
        return None;
    };
    if !site.calls(caller, &callee_function) {
        return None;
    }
    let values: Vec<&gimli::Expression<Reader>> = site
        .parameters
        .iter()
        .filter(|(location, _)| single_register(location.0.slice()) == Some(register))
        .map(|(_, value)| value)
        .collect();
    let [value] = values.as_slice() else {
        return None;
    };
    let frame = Frame {
        // The call instruction, in the caller's numbering of pcs (a location list of
        // the frame base is looked up there).
        pc: caller.return_address.wrapping_sub(1),
        registers: caller.registers,
        memory: caller.memory,
    };
    let pieces =
        location::evaluate_in(caller.unit, **value, &frame, site.frame_base.as_ref()).ok()?;
    // DW_AT_call_value is a DWARF expression, not a location: the top of its stack is
    // the value (which gimli reports as an address), or a register named whole.
    match pieces.as_slice() {
        [piece] if piece.size_in_bits.is_none() => match piece.location {
            gimli::Location::Address { address } => Some(address),
            gimli::Location::Value { value } => value.to_u64(!0).ok(),
            gimli::Location::Register { register } => caller.registers.register(register.0),
            _ => None,
        },
        _ => None,
    }
}

/// The register an expression names whole (`DW_OP_reg0`..`DW_OP_reg31`,
/// `DW_OP_regx N`), or `None` for any other expression.
pub fn single_register(expression: &[u8]) -> Option<u16> {
    match expression {
        [op @ 0x50..=0x6f] => Some(u16::from(op - 0x50)),
        [0x90, rest @ ..] => {
            let mut reader = gimli::EndianSlice::new(rest, gimli::LittleEndian);
            let number = gimli::Reader::read_uleb128(&mut reader).ok()?;
            // Nothing may follow the register.
            if !gimli::Reader::is_empty(&reader) {
                return None;
            }
            u16::try_from(number).ok()
        }
        _ => None,
    }
}

/// The out-of-line function a frame is in: where it is entered and what it is called.
struct Function {
    /// Run-time entry address.
    entry: u64,
    /// Linkage name, else name.
    name: Option<String>,
    external: bool,
}

impl Function {
    /// The function (not an inlined call) whose code holds `pc`.
    fn at(unit: &CompileUnit, pc: u64) -> Option<Function> {
        let file_pc = pc.wrapping_sub(unit.layout.load_bias);
        let (offset, _) = subprogram_at(unit, file_pc)?;
        let entry = unit.unit.entry(offset).ok()?;
        Some(Function {
            entry: entry_address(unit, &entry)?.wrapping_add(unit.layout.load_bias),
            name: linkage_or_name(unit, &unit.unit, &entry),
            external: matches!(
                entry.attr_value(gimli::DW_AT_external),
                Some(gimli::AttributeValue::Flag(true))
            ),
        })
    }
}

/// Where a function DIE's code is entered (in the file's numbering): its low pc, else
/// the first of its ranges (gcc puts the entry's range first, as gdb assumes too).
fn entry_address(
    unit: &CompileUnit,
    entry: &gimli::DebuggingInformationEntry<Reader>,
) -> Option<u64> {
    if let Some(value) = entry.attr_value(gimli::DW_AT_low_pc) {
        return unit.dwarf.attr_address(&unit.unit, value).ok()?;
    }
    let mut ranges = unit.dwarf.die_ranges(&unit.unit, entry).ok()?;
    ranges.next().ok()?.map(|range| range.begin)
}

/// A function DIE's linkage name, else its name, looked up through the DIEs it completes
/// (`DW_AT_specification`, `DW_AT_abstract_origin`), each read in the unit that holds
/// it (`owner`).
fn linkage_or_name(
    unit: &CompileUnit,
    owner: &std::rc::Rc<gimli::Unit<Reader>>,
    entry: &gimli::DebuggingInformationEntry<Reader>,
) -> Option<String> {
    let mut owner = owner.clone();
    let mut entry = entry.clone();
    let mut name = None;
    for _ in 0..4 {
        let read = |at| {
            let value = entry.attr_value(at)?;
            let text = unit.dwarf.attr_string(&owner, value).ok()?;
            Some(text.to_string_lossy().into_owned())
        };
        if let Some(linkage) =
            read(gimli::DW_AT_linkage_name).or_else(|| read(gimli::DW_AT_MIPS_linkage_name))
        {
            return Some(linkage);
        }
        name = name.or_else(|| read(gimli::DW_AT_name));
        let Some(link) = entry
            .attr_value(gimli::DW_AT_specification)
            .or_else(|| entry.attr_value(gimli::DW_AT_abstract_origin))
        else {
            break;
        };
        let Some((next, offset)) = unit
            .types
            .reference(&owner, link)
            .and_then(|id| unit.types.die(id).ok())
        else {
            break;
        };
        let Ok(next_entry) = next.entry(offset) else {
            break;
        };
        entry = next_entry;
        owner = next;
    }
    name
}

/// The subprogram DIE covering `file_pc`, and its `DW_AT_frame_base`.
fn subprogram_at(
    unit: &CompileUnit,
    file_pc: u64,
) -> Option<(gimli::UnitOffset<usize>, Option<LocationAttr>)> {
    let mut entries = unit.unit.entries();
    while let Ok(Some(entry)) = entries.next_dfs() {
        if entry.tag() == gimli::DW_TAG_subprogram
            && scope::covers(unit, entry, file_pc).ok()? == Some(true)
        {
            let frame_base = entry
                .attr_value(gimli::DW_AT_frame_base)
                .map(|base| LocationAttr::of(unit, Some(base), None));
            return Some((entry.offset(), frame_base));
        }
    }
    None
}

/// A call site of the caller at the return address.
struct CallSite {
    /// `DW_AT_call_origin`: the DIE of the function called.
    origin: Option<gimli::AttributeValue<Reader>>,
    /// `DW_AT_call_target`: where an indirect call went, computed in the caller's frame.
    target: Option<gimli::Expression<Reader>>,
    /// (`DW_AT_location`, `DW_AT_call_value`) of each parameter.
    parameters: Vec<(gimli::Expression<Reader>, gimli::Expression<Reader>)>,
    /// The caller function's frame base, for `DW_OP_fbreg` in a value.
    frame_base: Option<LocationAttr>,
}

impl CallSite {
    /// Whether the call went to `callee`: its origin is that function (by address when
    /// the caller's DWARF defines it, else by name when it is external), or its target
    /// computes to that function's entry.
    fn calls(&self, caller: &Caller, callee: &Function) -> bool {
        let unit = caller.unit;
        if let Some(origin) = &self.origin {
            let Some(id) = unit.types.reference(&unit.unit, *origin) else {
                return false;
            };
            let Ok((owner, offset)) = unit.types.die(id) else {
                return false;
            };
            let Ok(entry) = owner.entry(offset) else {
                return false;
            };
            // The origin may be a DIE of another unit of the caller's file: its
            // addresses and names are read in that unit.
            if let Some(address) = entry
                .attr_value(gimli::DW_AT_low_pc)
                .and_then(|v| unit.dwarf.attr_address(&owner, v).ok().flatten())
            {
                return address.wrapping_add(unit.layout.load_bias) == callee.entry;
            }
            // A declaration (the function is defined elsewhere): only an external
            // function's name is the same function everywhere.
            let name = linkage_or_name(unit, &owner, &entry);
            return callee.external && name.is_some() && name == callee.name;
        }
        if let Some(target) = self.target {
            let frame = Frame {
                pc: caller.return_address.wrapping_sub(1),
                registers: caller.registers,
                memory: caller.memory,
            };
            let Ok(pieces) = location::evaluate_in(unit, target, &frame, self.frame_base.as_ref())
            else {
                return false;
            };
            // As gdb reads it: the target's location is the called address.
            let address = match pieces.as_slice() {
                [piece] => match piece.location {
                    gimli::Location::Address { address } => Some(address),
                    gimli::Location::Register { register } => caller.registers.register(register.0),
                    gimli::Location::Value { value } => value.to_u64(!0).ok(),
                    _ => None,
                },
                _ => None,
            };
            return address == Some(callee.entry);
        }
        false
    }
}

/// The call sites of the caller's function that return to `caller.return_address`;
/// `None` when the caller's function is not found.
fn call_sites(caller: &Caller) -> Option<Vec<CallSite>> {
    let unit = caller.unit;
    let return_pc = caller.return_address.wrapping_sub(unit.layout.load_bias);
    let (function, frame_base) = subprogram_at(unit, return_pc.wrapping_sub(1))?;
    let mut tree = unit.unit.entries_tree(Some(function)).ok()?;
    let root = tree.root().ok()?;
    let mut sites = Vec::new();
    collect_sites(unit, root, return_pc, &frame_base, &mut sites, 0).ok()?;
    Some(sites)
}

fn collect_sites(
    unit: &CompileUnit,
    node: gimli::EntriesTreeNode<Reader>,
    return_pc: u64,
    frame_base: &Option<LocationAttr>,
    sites: &mut Vec<CallSite>,
    depth: usize,
) -> gimli::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        let tag = entry.tag();
        if tag != gimli::DW_TAG_call_site && tag != gimli::DW_TAG_GNU_call_site {
            collect_sites(unit, child, return_pc, frame_base, sites, depth + 1)?;
            continue;
        }
        // DWARF 5 names the return address; GNU's extension put it in the low pc.
        let at = entry
            .attr_value(gimli::DW_AT_call_return_pc)
            .or_else(|| entry.attr_value(gimli::DW_AT_low_pc));
        let address = match at {
            Some(value) => unit.dwarf.attr_address(&unit.unit, value)?,
            None => None,
        };
        if address != Some(return_pc) {
            continue;
        }
        // A tail call's site says nothing of the frame it returns to.
        let tail = [gimli::DW_AT_call_tail_call, gimli::DW_AT_GNU_tail_call]
            .into_iter()
            .any(|at| {
                matches!(
                    entry.attr_value(at),
                    Some(gimli::AttributeValue::Flag(true))
                )
            });
        let origin = entry
            .attr_value(gimli::DW_AT_call_origin)
            .or_else(|| entry.attr_value(gimli::DW_AT_abstract_origin));
        let target = entry
            .attr_value(gimli::DW_AT_call_target)
            .or_else(|| entry.attr_value(gimli::DW_AT_GNU_call_site_target))
            .and_then(|v| v.exprloc_value());
        let mut parameters = Vec::new();
        let mut params = child.children();
        while let Some(param) = params.next()? {
            let param = param.entry();
            if param.tag() != gimli::DW_TAG_call_site_parameter
                && param.tag() != gimli::DW_TAG_GNU_call_site_parameter
            {
                continue;
            }
            let location = param
                .attr_value(gimli::DW_AT_location)
                .and_then(|v| v.exprloc_value());
            let value = param
                .attr_value(gimli::DW_AT_call_value)
                .or_else(|| param.attr_value(gimli::DW_AT_GNU_call_site_value))
                .and_then(|v| v.exprloc_value());
            if let (Some(location), Some(value)) = (location, value) {
                parameters.push((location, value));
            }
        }
        // Counted even when a tail call, so that two sites at one address stay ambiguous.
        sites.push(CallSite {
            origin: if tail { None } else { origin },
            target: if tail { None } else { target },
            parameters,
            frame_base: frame_base.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::test_support::*;
    use crate::values::RegisterSet;
    use object::{Object, ObjectSymbol};

    /// The return addresses of `unit`'s call sites, with the entry of the function each
    /// calls (its `DW_AT_call_origin`'s low pc), read straight from the DIEs.
    fn call_sites_in(unit: &CompileUnit) -> Vec<(u64, Option<u64>)> {
        let mut sites = Vec::new();
        let mut entries = unit.unit.entries();
        while let Ok(Some(entry)) = entries.next_dfs() {
            if entry.tag() != gimli::DW_TAG_call_site {
                continue;
            }
            let address = |value| unit.dwarf.attr_address(&unit.unit, value).ok().flatten();
            let return_pc = address(entry.attr_value(gimli::DW_AT_call_return_pc).unwrap());
            let origin = match entry.attr_value(gimli::DW_AT_call_origin) {
                Some(gimli::AttributeValue::UnitRef(offset)) => unit
                    .unit
                    .entry(offset)
                    .ok()
                    .and_then(|e| address(e.attr_value(gimli::DW_AT_low_pc)?)),
                _ => None,
            };
            sites.push((return_pc.unwrap(), origin));
        }
        sites
    }

    /// main() of locals.c at -O2 calls compute(argc, argc + 1, pair) and then
    /// work(4, values): their call sites give `n` (DW_OP_lit4) and `values`
    /// (DW_OP_fbreg -32 in main) on entry to work, `a` only where main's rdi is known,
    /// and nothing for a register no parameter was passed in, another function, or an
    /// address that is no call's return.
    #[test]
    fn values_on_entry_only_from_the_call_that_entered_the_function() {
        if !tools_or_skip(false) {
            return;
        }
        let program = Program::load(built("locals.c", &["-O2"]));
        let symbol = |name: &str| {
            program
                .file
                .symbols()
                .find(|s| s.name() == Ok(name))
                .unwrap()
                .address()
        };
        let (work, compute) = (symbol("work"), symbol("compute"));
        let unit = program.unit_at(symbol("main"));
        let sites = call_sites_in(&unit);
        let site_of = |callee| {
            sites
                .iter()
                .find(|(_, origin)| *origin == Some(callee))
                .unwrap_or_else(|| panic!("no call of {callee:#x} in {sites:x?}"))
                .0
        };
        let cfa = 0x7fff_0000u64;
        let mut registers = RegisterSet {
            cfa: Some(cfa),
            ..Default::default()
        };
        let memory = NoMemory;
        let ask = |registers: &RegisterSet, return_address, pc, expression: &[u8]| {
            let caller = Caller {
                unit: &unit,
                return_address,
                registers,
                memory: &memory,
            };
            entry_value(&unit, pc, &caller, expression)
        };
        let (to_work, to_compute) = (site_of(work), site_of(compute));
        // In work(), a few bytes in: rdi is 4, rsi main's frame base (its CFA) - 32.
        assert_eq!(ask(&registers, to_work, work + 4, &[0x55]), Some(4));
        assert_eq!(ask(&registers, to_work, work + 4, &[0x90, 5]), Some(4));
        assert_eq!(ask(&registers, to_work, work + 4, &[0x54]), Some(cfa - 32));
        // rcx carried no parameter; a DW_OP_breg is not a register named whole.
        assert_eq!(ask(&registers, to_work, work + 4, &[0x52]), None);
        assert_eq!(ask(&registers, to_work, work + 4, &[0x75, 0]), None);
        // The call at that address went to work, not to compute.
        assert_eq!(ask(&registers, to_work, compute + 4, &[0x55]), None);
        // An address no call returns to.
        assert_eq!(ask(&registers, to_work - 1, work + 4, &[0x55]), None);
        // compute's a is main's rdi at the call (DW_OP_breg5): lost after the call
        // unless the caller's rdi is known.
        assert_eq!(ask(&registers, to_compute, compute + 4, &[0x55]), None);
        registers.registers.insert(5, 9);
        assert_eq!(ask(&registers, to_compute, compute + 4, &[0x55]), Some(9));
        // Without the caller's CFA, main's frame base is unknown.
        registers.cfa = None;
        assert_eq!(ask(&registers, to_work, work + 4, &[0x54]), None);
    }

    #[test]
    fn registers_named_whole_and_nothing_else() {
        assert_eq!(single_register(&[0x55]), Some(5));
        assert_eq!(single_register(&[0x6f]), Some(31));
        assert_eq!(single_register(&[0x90, 0x11]), Some(17));
        assert_eq!(single_register(&[0x90, 0x80, 0x01]), Some(128));
        // DW_OP_breg5 0, a register and more, an empty or truncated expression.
        assert_eq!(single_register(&[0x75, 0]), None);
        assert_eq!(single_register(&[0x55, 0x9f]), None);
        assert_eq!(single_register(&[0x90, 0x05, 0x9f]), None);
        assert_eq!(single_register(&[]), None);
        assert_eq!(single_register(&[0x90, 0x80]), None);
    }
}
