//! Function names to addresses, as gdb 13's `break FUNC` chooses them: every concrete
//! instance of a function past its prologue and every inlined copy at its entry, found
//! through each unit's DWARF (`lines` keeps which units have which short name); a
//! module without DWARF answers from Go's table or the ELF symbol tables.

use std::collections::BTreeMap;

use gimli::AttributeValue;
use rustc_hash::FxHashMap;

use super::calls;
use super::lines::{parse_unit, Kind, LineTables};
use super::module::{demangle, ModuleInfo, Reader};

/// A function found by name, in its module's numbering.
pub struct FileFunction {
    pub address: u64,
    pub name: String,
    pub file: Option<String>,
    pub line: u32,
}

/// A name's `::`-separated components, without the parameter list and with no spaces
/// in template arguments: `shapes::run<int>(int)` is `["shapes", "run<int>"]`.
pub(super) fn name_components(name: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut angle = 0usize;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        let part = parts.last_mut().expect("never empty");
        match c {
            '<' => {
                angle += 1;
                part.push(c);
            }
            '>' => {
                angle = angle.saturating_sub(1);
                part.push(c);
            }
            // A parameter list ends the name (a Go receiver `main.(*T)` does not).
            '(' if angle == 0 && !part.ends_with('.') => break,
            ':' if angle == 0 && chars.peek() == Some(&':') => {
                chars.next();
                parts.push(String::new());
            }
            ' ' if angle > 0 => {}
            _ => part.push(c),
        }
    }
    parts.into_iter().map(|p| p.trim().to_string()).collect()
}

/// A name's bytes up to its template arguments.
fn base_bytes(name: &[u8]) -> &[u8] {
    match name.iter().position(|&b| b == b'<') {
        Some(at) => &name[..at],
        None => name,
    }
}

/// A component without its template arguments.
fn base(component: &str) -> &str {
    component.split('<').next().unwrap_or("")
}

/// Whether `name` (demangled) is what `query` asks for: the query's components are the
/// name's last ones, template arguments compared only where the query gives them (as
/// gdb: `run` and `run<int>` both find `shapes::run<int>(int)`).
pub(super) fn name_matches(query: &[String], name: &str) -> bool {
    let parts = name_components(name);
    parts.len() >= query.len()
        && parts[parts.len() - query.len()..]
            .iter()
            .zip(query)
            .all(|(part, wanted)| part == wanted || (!wanted.contains('<') && base(part) == wanted))
}

/// Every function called `name` in a module: each concrete instance past its prologue
/// and each inlined copy at its entry (from DWARF); without DWARF for it, from Go's
/// table or the ELF symbol tables, at the function's first instruction.
pub fn functions_named(info: &ModuleInfo, name: &str) -> Vec<FileFunction> {
    let query = name_components(name);
    let Some(last) = query.last().map(|l| base(l).to_string()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if let Some(tables) = info.line_tables() {
        for &unit in tables.units_naming(&last) {
            let Some(start) = tables.starts.get(unit as usize) else {
                continue;
            };
            // Read, walked and dropped: only the units that have the name.
            if let Some(parsed) = parse_unit(&tables.sections, *start) {
                let unit_ref = gimli::UnitRef::new(&tables.sections, &parsed);
                let _ = functions_in_unit(tables, info, unit, unit_ref, &query, &last, &mut found);
            }
        }
    }
    if !found.is_empty() {
        return found;
    }
    if let Some(go) = info.go_lines() {
        for (address, full) in go.functions_named(|n| name_matches(&query, n)) {
            found.push(FileFunction {
                address,
                name: full,
                file: None,
                line: 0,
            });
        }
        if !found.is_empty() {
            return found;
        }
    }
    symbols_named(info, &query, &last)
}

type DieOffset = gimli::UnitOffset<usize>;

/// A function or inlined call with code, and the base of its short name.
type Instance = (DieOffset, Option<&'static [u8]>);

/// The functions and inlined calls of a unit that have code, each with the base of its
/// short name (`run` for `run<int>`), its own or its abstract origin's or
/// specification's: one pass over the raw entries, decoding the attributes of those
/// entries only. Full names (namespaces, from the linkage name) are read later, for
/// the few that match.
pub(super) fn unit_instances(unit_ref: gimli::UnitRef<Reader>) -> gimli::Result<Vec<Instance>> {
    let mut names_seen: FxHashMap<DieOffset, (Option<&'static [u8]>, Option<DieOffset>)> =
        FxHashMap::default();
    let mut instances = Vec::new();
    let mut entries = unit_ref.entries_raw(None)?;
    while !entries.is_empty() {
        let offset = entries.next_offset();
        let Some(abbrev) = entries.read_abbreviation()? else {
            continue;
        };
        let tag = abbrev.tag();
        if tag != gimli::DW_TAG_subprogram && tag != gimli::DW_TAG_inlined_subroutine {
            entries.skip_attributes(abbrev.attributes())?;
            continue;
        }
        let (mut named, mut origin, mut code) = (None, None, false);
        for spec in abbrev.attributes() {
            let attr = entries.read_attribute(*spec)?;
            match attr.name() {
                gimli::DW_AT_name => {
                    named = unit_ref
                        .attr_string(attr.value())
                        .ok()
                        .map(|name| base_bytes(name.slice()));
                }
                gimli::DW_AT_abstract_origin | gimli::DW_AT_specification => {
                    if let AttributeValue::UnitRef(target) = attr.value() {
                        origin = Some(target);
                    }
                }
                gimli::DW_AT_low_pc | gimli::DW_AT_ranges => code = true,
                _ => {}
            }
        }
        names_seen.insert(offset, (named, origin));
        if code {
            instances.push(offset);
        }
    }
    let short_name = |mut offset| {
        // Chains are short; a loop is a bad file.
        for _ in 0..16 {
            let (named, origin) = names_seen.get(&offset)?;
            if named.is_some() {
                return *named;
            }
            offset = (*origin)?;
        }
        None
    };
    Ok(instances
        .into_iter()
        .map(|offset| (offset, short_name(offset)))
        .collect())
}

fn functions_in_unit(
    tables: &LineTables,
    info: &ModuleInfo,
    unit: u32,
    unit_ref: gimli::UnitRef<Reader>,
    query: &[String],
    last: &str,
    found: &mut Vec<FileFunction>,
) -> gimli::Result<()> {
    let mut data = None;
    let language = root_language(unit_ref);
    for (offset, short) in unit_instances(unit_ref)? {
        if short != Some(last.as_bytes()) {
            continue;
        }
        let Some((short, linkage, decl)) = names(unit_ref, offset) else {
            continue;
        };
        let full = match &linkage {
            Some(linkage) => demangle(linkage, language),
            None => short.clone(),
        };
        if !name_matches(query, &full) {
            continue;
        }
        let data = match &data {
            Some(data) => data,
            None => data.insert(tables.unit_data(unit).ok_or(gimli::Error::Io)?),
        };
        let Some(scope) = data.scopes.scopes.iter().find(|s| s.die == offset) else {
            continue;
        };
        let address = match scope.kind {
            Kind::Function => data.after_prologue(info, scope.low, scope.high),
            _ => scope.entry,
        };
        let (file, line) = match decl {
            Some((file, line)) => (calls::file_path(unit_ref, file), line),
            None => (None, 0),
        };
        found.push(FileFunction {
            address,
            name: full,
            file,
            line,
        });
    }
    Ok(())
}

fn root_language(unit: gimli::UnitRef<Reader>) -> Option<gimli::DwLang> {
    let mut entries = unit.entries();
    let root = entries.next_dfs().ok()??;
    match root.attr_value(gimli::DW_AT_language) {
        Some(AttributeValue::Language(language)) => Some(language),
        _ => None,
    }
}

/// A function's short name, linkage name and declaration (file index, line).
type Names = (String, Option<String>, Option<(u64, u32)>);

/// The short name, linkage name and declaration (file index, line) of a function or
/// inlined call, following its abstract origin and specification.
fn names(unit: gimli::UnitRef<Reader>, entry: gimli::UnitOffset<usize>) -> Option<Names> {
    let mut entry = entry;
    let (mut short, mut linkage, mut decl_file, mut decl_line) = (None, None, None, None);
    for _ in 0..16 {
        let die = unit.entry(entry).ok()?;
        let text = |name| {
            let value = die.attr_value(name)?;
            Some(unit.attr_string(value).ok()?.to_string_lossy().into_owned())
        };
        if short.is_none() {
            short = text(gimli::DW_AT_name);
        }
        if linkage.is_none() {
            linkage =
                text(gimli::DW_AT_linkage_name).or_else(|| text(gimli::DW_AT_MIPS_linkage_name));
        }
        if decl_file.is_none() {
            if let Some(AttributeValue::FileIndex(index)) = die.attr_value(gimli::DW_AT_decl_file) {
                decl_file = Some(index);
            }
        }
        if decl_line.is_none() {
            decl_line = die
                .attr_value(gimli::DW_AT_decl_line)
                .and_then(|v| v.udata_value())
                .map(|l| l as u32);
        }
        let next = die
            .attr_value(gimli::DW_AT_abstract_origin)
            .or_else(|| die.attr_value(gimli::DW_AT_specification));
        match next {
            Some(AttributeValue::UnitRef(offset)) => entry = offset,
            _ => break,
        }
    }
    let decl = decl_file.map(|file| (file, decl_line.unwrap_or(0)));
    Some((short?, linkage, decl))
}

/// Functions named `query` in the ELF symbol tables, at their first instruction.
fn symbols_named(info: &ModuleInfo, query: &[String], last: &str) -> Vec<FileFunction> {
    use object::{Object, ObjectSymbol};
    let mut found: BTreeMap<u64, String> = BTreeMap::new();
    for data in info.symbol_files() {
        let Ok(file) = object::File::parse(*data) else {
            continue;
        };
        for symbol in file.symbols().chain(file.dynamic_symbols()) {
            if symbol.kind() != object::SymbolKind::Text || symbol.address() == 0 {
                continue;
            }
            let Ok(raw) = symbol.name() else { continue };
            let raw = raw.split_once('@').map_or(raw, |(bare, _)| bare);
            // C++ and Rust manglings spell identifiers out: only a name that holds the
            // last one asked for is demangled (a large binary has 100,000 symbols).
            if !raw.contains(last) {
                continue;
            }
            let name = demangle(raw, None);
            if name_matches(query, &name) {
                found.entry(symbol.address()).or_insert(name);
            }
        }
    }
    found
        .into_iter()
        .map(|(address, name)| FileFunction {
            address,
            name,
            file: None,
            line: 0,
        })
        .collect()
}
