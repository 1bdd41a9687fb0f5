//! Which variables exist at a pc: the function containing it, the lexical blocks and
//! inlined calls inside it that cover the pc, and their parameters and variables; and
//! the unit's globals.
//!
//! An inlined call is a frame of its own (its caller's variables are not its
//! variables), so the answer is one [`FrameScope`] per function, innermost inlined
//! call first, as the stack shows them. Within one, a variable of an inner block hides
//! one of the same name further out, as the compiler sees it.

use std::rc::Rc;

use super::location::LocationAttr;
use super::types::TypeId;
use super::CompileUnit;
use crate::symbols::module::Reader;

/// How deep DIE trees are walked: C nests blocks a few levels, only bad DWARF or a
/// generator gone wild nests more than this.
const MAX_DIE_DEPTH: usize = 128;

/// How many `DW_AT_abstract_origin`/`DW_AT_specification` links a name is looked up
/// through (an out-of-line copy of an inline member function takes two).
const MAX_ORIGIN_LINKS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariableKind {
    Argument,
    Local,
    Global,
}

/// A variable as DWARF declares it: no value yet.
#[derive(Debug, Clone)]
pub struct VariableDecl {
    pub name: String,
    pub kind: VariableKind,
    pub type_id: Option<TypeId>,
    pub location: LocationAttr,
    /// For a global inside namespaces or modules, its path as the language writes it
    /// (`prog::inner::NAME`), which an expression may name it by.
    pub path: Option<String>,
    /// `DW_AT_external`: a global other units can name (C's non-`static`), as opposed to
    /// a file's `static`; on a definition's declaration when the definition has none.
    pub external: bool,
    /// How many blocks deep inside its function the variable is declared: the deepest
    /// of several with one name is the one in scope.
    depth: usize,
}

/// One function's frame at a pc: the function itself or a call inlined into it.
#[derive(Debug, Clone)]
pub struct FrameScope {
    pub function: Option<String>,
    pub inlined: bool,
    /// Arguments in declaration order, then locals, outermost block first; names
    /// already unique (shadowed ones dropped).
    pub variables: Vec<VariableDecl>,
    /// `DW_AT_frame_base` of the out-of-line function the code belongs to (an inlined
    /// call uses its caller's).
    pub frame_base: Option<LocationAttr>,
}

/// The frames at `pc` (a run-time address), innermost inlined call first; empty when no
/// function of the unit covers it.
pub fn scopes_at(unit: &CompileUnit, pc: u64) -> Result<Vec<FrameScope>, String> {
    let file_pc = pc.wrapping_sub(unit.layout.load_bias);
    let mut tree = unit
        .unit
        .entries_tree(None)
        .map_err(|e| format!("cannot read the unit's DIEs: {e}"))?;
    let root = tree.root().map_err(|e| e.to_string())?;
    let mut frames = Vec::new();
    find_function(unit, root, file_pc, &mut frames, 0).map_err(|e| e.to_string())?;
    for frame in &mut frames {
        frame.variables = innermost_of_each_name(std::mem::take(&mut frame.variables));
    }
    frames.reverse();
    Ok(frames)
}

type Node<'a, 'b> = gimli::EntriesTreeNode<'a, 'b, Reader>;

fn find_function(
    unit: &CompileUnit,
    node: Node,
    pc: u64,
    frames: &mut Vec<FrameScope>,
    depth: usize,
) -> gimli::Result<bool> {
    if depth > MAX_DIE_DEPTH {
        return Ok(false);
    }
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        match entry.tag() {
            gimli::DW_TAG_subprogram => {
                if covers(unit, entry, pc)? == Some(true) {
                    let frame_base = entry
                        .attr_value(gimli::DW_AT_frame_base)
                        .map(|base| LocationAttr::of(unit, Some(base), None));
                    frames.push(FrameScope {
                        function: name_of(unit, entry),
                        inlined: false,
                        variables: Vec::new(),
                        frame_base,
                    });
                    let last = frames.len() - 1;
                    collect(unit, child, pc, frames, last, 0, depth + 1)?;
                    return Ok(true);
                }
            }
            // Functions are defined inside namespaces, classes and Rust modules too.
            _ => {
                if find_function(unit, child, pc, frames, depth + 1)? {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Adds the parameters and variables of `node`'s children that are in scope at `pc`
/// to `frames[frame]`, and a frame for each inlined call covering `pc`.
fn collect(
    unit: &CompileUnit,
    node: Node,
    pc: u64,
    frames: &mut Vec<FrameScope>,
    frame: usize,
    block_depth: usize,
    depth: usize,
) -> gimli::Result<()> {
    if depth > MAX_DIE_DEPTH {
        return Ok(());
    }
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        match entry.tag() {
            gimli::DW_TAG_formal_parameter | gimli::DW_TAG_variable => {
                let kind = if entry.tag() == gimli::DW_TAG_formal_parameter {
                    VariableKind::Argument
                } else {
                    VariableKind::Local
                };
                if let Some(decl) = declaration(unit, entry, kind, block_depth) {
                    frames[frame].variables.push(decl);
                }
            }
            gimli::DW_TAG_lexical_block => match covers(unit, entry, pc)? {
                Some(true) => collect(unit, child, pc, frames, frame, block_depth + 1, depth + 1)?,
                Some(false) => {}
                // A block without addresses has no code of its own: like gdb, its
                // variables belong to the enclosing scope.
                None => collect(unit, child, pc, frames, frame, block_depth, depth + 1)?,
            },
            gimli::DW_TAG_inlined_subroutine if covers(unit, entry, pc)? == Some(true) => {
                frames.push(FrameScope {
                    function: name_of(unit, entry),
                    inlined: true,
                    variables: Vec::new(),
                    frame_base: frames[frame].frame_base.clone(),
                });
                let inner = frames.len() - 1;
                collect(unit, child, pc, frames, inner, 0, depth + 1)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn declaration(
    unit: &CompileUnit,
    entry: &gimli::DebuggingInformationEntry<Reader>,
    kind: VariableKind,
    depth: usize,
) -> Option<VariableDecl> {
    // `extern int x;` inside a function declares a global defined elsewhere.
    if matches!(
        entry.attr_value(gimli::DW_AT_declaration),
        Some(gimli::AttributeValue::Flag(true))
    ) {
        return None;
    }
    let name = name_of(unit, entry)?;
    Some(VariableDecl {
        name,
        kind,
        type_id: type_of(unit, entry),
        location: LocationAttr::of(
            unit,
            entry.attr_value(gimli::DW_AT_location),
            entry.attr_value(gimli::DW_AT_const_value),
        ),
        path: None,
        external: matches!(
            origin_attr(unit, entry, gimli::DW_AT_external),
            Some((_, gimli::AttributeValue::Flag(true)))
        ),
        depth,
    })
}

/// Whether the DIE's code covers `pc`; `None` when it has no addresses at all.
pub(super) fn covers(
    unit: &CompileUnit,
    entry: &gimli::DebuggingInformationEntry<Reader>,
    pc: u64,
) -> gimli::Result<Option<bool>> {
    let mut ranges = unit.dwarf.die_ranges(&unit.unit, entry)?;
    let mut any = false;
    while let Some(range) = ranges.next()? {
        any = true;
        if range.begin <= pc && pc < range.end {
            return Ok(Some(true));
        }
    }
    Ok(any.then_some(false))
}

/// Each name once: the deepest declaration, the later of equals (a C block's variables
/// come after its parent's in the DIE tree).
fn innermost_of_each_name(variables: Vec<VariableDecl>) -> Vec<VariableDecl> {
    let mut kept: Vec<VariableDecl> = Vec::with_capacity(variables.len());
    for variable in variables {
        match kept.iter().position(|k| k.name == variable.name) {
            Some(at) if kept[at].depth <= variable.depth => {
                kept.remove(at);
                kept.push(variable);
            }
            Some(_) => {}
            None => kept.push(variable),
        }
    }
    // Arguments first, as every debugger lists them.
    kept.sort_by_key(|v| v.kind != VariableKind::Argument);
    kept
}

/// The unit's variables with static storage outside functions: file-scope `static`s
/// and definitions of globals (declarations of globals defined in another unit are
/// left to that unit).
pub fn globals(unit: &CompileUnit) -> Result<Vec<VariableDecl>, String> {
    let mut tree = unit
        .unit
        .entries_tree(None)
        .map_err(|e| format!("cannot read the unit's DIEs: {e}"))?;
    let root = tree.root().map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    collect_globals(unit, root, &mut found, &mut Vec::new()).map_err(|e| e.to_string())?;
    Ok(found)
}

/// rustc describes each trait object's vtable as a variable (`<T as Trait>::{vtable}`):
/// an artifact of the compiler, not a global of the program.
fn is_compiler_made(name: &str) -> bool {
    name.ends_with("::{vtable}")
}

fn collect_globals(
    unit: &CompileUnit,
    node: Node,
    found: &mut Vec<VariableDecl>,
    namespaces: &mut Vec<String>,
) -> gimli::Result<()> {
    let depth = namespaces.len();
    if depth > MAX_DIE_DEPTH {
        return Ok(());
    }
    let mut children = node.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        match entry.tag() {
            gimli::DW_TAG_variable
                if entry.has_attr(gimli::DW_AT_location)
                    || entry.has_attr(gimli::DW_AT_const_value) =>
            {
                if let Some(mut decl) = declaration(unit, entry, VariableKind::Global, 0) {
                    if is_compiler_made(&decl.name) {
                        continue;
                    }
                    if !namespaces.is_empty() {
                        decl.path = Some(format!("{}::{}", namespaces.join("::"), decl.name));
                    }
                    found.push(decl);
                }
            }
            gimli::DW_TAG_namespace | gimli::DW_TAG_module => {
                let name = name_of(unit, entry).unwrap_or_else(|| "(anonymous namespace)".into());
                namespaces.push(name);
                collect_globals(unit, child, found, namespaces)?;
                namespaces.pop();
            }
            _ => {}
        }
    }
    Ok(())
}

/// The DIE's name, through `DW_AT_abstract_origin` (inlined and out-of-line copies of
/// inline functions and their variables) and `DW_AT_specification` (C++ definitions of
/// declared members).
pub fn name_of(
    unit: &CompileUnit,
    entry: &gimli::DebuggingInformationEntry<Reader>,
) -> Option<String> {
    origin_attr(unit, entry, gimli::DW_AT_name).and_then(|(owner, value)| {
        let name = unit.dwarf.attr_string(&owner, value).ok()?;
        Some(name.to_string_lossy().into_owned())
    })
}

fn type_of(unit: &CompileUnit, entry: &gimli::DebuggingInformationEntry<Reader>) -> Option<TypeId> {
    origin_attr(unit, entry, gimli::DW_AT_type)
        .and_then(|(owner, value)| unit.types.reference(&owner, value))
}

/// The attribute `at` of the DIE or of the DIEs it stands in for, with the unit whose
/// DIE gave it (LTO's abstract origins are in other units, and a value read there is
/// relative to that unit).
fn origin_attr(
    unit: &CompileUnit,
    entry: &gimli::DebuggingInformationEntry<Reader>,
    at: gimli::DwAt,
) -> Option<(Rc<gimli::Unit<Reader>>, gimli::AttributeValue<Reader>)> {
    if let Some(value) = entry.attr_value(at) {
        return Some((unit.unit.clone(), value));
    }
    let mut owner = unit.unit.clone();
    let mut current = entry.clone();
    for _ in 0..MAX_ORIGIN_LINKS {
        let link = current
            .attr_value(gimli::DW_AT_abstract_origin)
            .or_else(|| current.attr_value(gimli::DW_AT_specification))?;
        let target = unit.types.reference(&owner, link)?;
        let (next, offset) = unit.types.die(target).ok()?;
        current = next.entry(offset).ok()?;
        owner = next;
        if let Some(value) = current.attr_value(at) {
            return Some((owner, value));
        }
    }
    None
}
