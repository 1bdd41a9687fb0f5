//! The globals of every compile unit of a module (one ELF file), not only the unit of
//! the stopped frame: what an expression names when the frame's own unit does not
//! define it (`other_count`, defined in another `.c` file), and the "Module globals"
//! scope.
//!
//! A big program has thousands of units, so nothing here is done before it is needed:
//! the name index is built on the first lookup (one walk of each unit's top-level
//! DIEs, then kept), it holds declarations, not values, and a value is made only for a
//! global asked for (its bytes are read later still, by the formatter). The units
//! values were made in are kept, the others dropped after the walk.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use rustc_hash::FxHashMap;

use super::location::Frame;
use super::scope::{self, VariableDecl};
use super::{types, CompileUnit, ModuleLayout, Value};
use crate::symbols::module::Reader;

/// The globals of one module's units, indexed by name on first use.
pub struct ModuleGlobals {
    dwarf: Rc<gimli::Dwarf<Reader>>,
    layout: ModuleLayout,
    /// Shared by every unit made here, so a type unit is parsed once.
    units: Rc<types::Units>,
    index: OnceCell<Vec<Global>>,
    /// The units values were made in, by their offset in `.debug_info`.
    made: RefCell<FxHashMap<usize, Rc<CompileUnit>>>,
}

/// A global of some unit of the module, without its value.
struct Global {
    /// The offset of its unit in `.debug_info`.
    unit: usize,
    /// Its unit's source file, without directories (`twofiles_b.c`).
    file: Rc<str>,
    decl: VariableDecl,
}

impl Global {
    /// The name code uses for it from the top: its path through namespaces or modules
    /// (`views::settings::LIMIT`), else its name.
    fn key(&self) -> &str {
        self.decl.path.as_deref().unwrap_or(&self.decl.name)
    }
}

/// A global of the module as a scope lists it.
pub struct Row {
    /// Its name; a name several units define is followed by its file: `shared
    /// (twofiles_b.c)`.
    pub name: String,
    /// The unit it is defined in: its value is shown in that unit's language.
    pub unit: Rc<CompileUnit>,
    pub value: Value,
}

impl ModuleGlobals {
    /// The globals of the file `dwarf` describes, loaded as `layout` says; nothing is
    /// read yet.
    pub fn new(dwarf: Rc<gimli::Dwarf<Reader>>, layout: ModuleLayout) -> ModuleGlobals {
        ModuleGlobals {
            units: types::Units::new(dwarf.clone()),
            dwarf,
            layout,
            index: OnceCell::new(),
            made: RefCell::default(),
        }
    }

    /// Whether these are the globals of `unit`'s module, as loaded there.
    pub fn is_of(&self, unit: &CompileUnit) -> bool {
        Rc::ptr_eq(&self.dwarf, &unit.dwarf) && self.layout == unit.layout
    }

    /// How many globals the module's units define, once the index is built: counting
    /// them is building it.
    pub fn known_len(&self) -> Option<usize> {
        self.index.get().map(Vec::len)
    }

    /// How many globals the module's units define (building the index).
    pub fn count(&self) -> usize {
        self.index().len()
    }

    /// Every global by name, then file: built once, on first use.
    fn index(&self) -> &[Global] {
        self.index.get_or_init(|| {
            let mut found = Vec::new();
            let mut headers = self.dwarf.units();
            while let Ok(Some(header)) = headers.next() {
                let offset = header.offset().0;
                // A unit that does not parse has no globals to offer; the others still do.
                let Ok(unit) = self.dwarf.unit(header) else {
                    continue;
                };
                let file: Rc<str> = unit
                    .name
                    .as_ref()
                    .map(|name| name.to_string_lossy().into_owned())
                    .map(|name| name.rsplit('/').next().unwrap_or(&name).into())
                    .unwrap_or_else(|| "?".into());
                let unit = CompileUnit::sharing(self.units.clone(), unit, self.layout);
                let Ok(decls) = scope::globals(&unit) else {
                    continue;
                };
                found.extend(decls.into_iter().map(|decl| Global {
                    unit: offset,
                    file: file.clone(),
                    decl,
                }));
            }
            found.sort_by(|a, b| (a.key(), &a.file).cmp(&(b.key(), &b.file)));
            found
        })
    }

    /// The global `name` of a unit other than `except` (the frame's own, searched
    /// already): the external definition when there is one (C's non-`static`), else the
    /// one file `static` of that name. `Ok(None)` when no other unit defines it; an
    /// error when only several files' `static`s have that name, as there is no telling
    /// which one is meant.
    pub fn find(&self, name: &str, except: usize, frame: &Frame) -> Result<Option<Value>, String> {
        let index = self.index();
        let start = index.partition_point(|g| g.key() < name);
        let mut same: Vec<&Global> = index[start..]
            .iter()
            .take_while(|g| g.key() == name)
            .filter(|g| g.unit != except)
            .collect();
        if same.is_empty() && name.contains("::") {
            // A path without its first parts (`settings::LIMIT` of
            // `views::settings::LIMIT`: the crate's name left out).
            let tail = format!("::{name}");
            same = index
                .iter()
                .filter(|g| g.unit != except && g.key().ends_with(&tail))
                .collect();
            if same.len() > 1 && !same.iter().all(|g| g.key() == same[0].key()) {
                let paths: Vec<&str> = same.iter().map(|g| g.key()).collect();
                return Err(format!(
                    "'{name}' could be any of {}: write the whole path",
                    paths.join(", ")
                ));
            }
        }
        let chosen = match same.iter().find(|g| g.decl.external) {
            // Several external definitions of one name are one object (C++'s inline
            // variables and template statics, merged by the linker): any is it.
            Some(external) => external,
            None => match same.as_slice() {
                [] => return Ok(None),
                [only] => only,
                several => {
                    let files: Vec<&str> = several.iter().map(|g| &*g.file).collect();
                    return Err(format!(
                        "'{name}' is a static of several files ({}), none of them this \
                         frame's: stop in code of the file whose '{name}' you mean",
                        files.join(", ")
                    ));
                }
            },
        };
        Ok(Some(self.value(chosen, frame)?.1))
    }

    /// The globals `start..start + count` in the index's order (by name, then file).
    pub fn page(&self, start: u64, count: u64, frame: &Frame) -> Result<Vec<Row>, String> {
        let index = self.index();
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let mut rows = Vec::new();
        for (at, global) in index.iter().enumerate().skip(start).take(count) {
            let name = global.key();
            // Sorted by name: another of the same name is a neighbour.
            let shared = [at.checked_sub(1), at.checked_add(1)]
                .into_iter()
                .flatten()
                .filter_map(|other| index.get(other))
                .any(|other| other.key() == name);
            let (unit, value) = self.value(global, frame)?;
            rows.push(Row {
                name: if shared {
                    format!("{name} ({})", global.file)
                } else {
                    name.to_string()
                },
                unit,
                value,
            });
        }
        Ok(rows)
    }

    /// The global a scope lists as `shown` (`shared (twofiles_b.c)` or `count`), found
    /// by its name rather than by listing them all (`setVariable`).
    pub fn row_named(&self, shown: &str, frame: &Frame) -> Result<Option<Row>, String> {
        let name = match shown.strip_suffix(')').and_then(|s| s.split_once(" (")) {
            Some((name, _file)) => name,
            None => shown,
        };
        let index = self.index();
        let start = index.partition_point(|g| g.key() < name);
        let end = start + index[start..].partition_point(|g| g.key() == name);
        for at in start..end {
            if let Some(row) = self.page(at as u64, 1, frame)?.pop() {
                if row.name == shown {
                    return Ok(Some(row));
                }
            }
        }
        Ok(None)
    }

    /// The value of `global` (where it lives, not yet read), with its unit.
    fn value(&self, global: &Global, frame: &Frame) -> Result<(Rc<CompileUnit>, Value), String> {
        let unit = self.unit(global.unit)?;
        let variable = unit
            .globals_of(std::slice::from_ref(&global.decl), frame)
            .pop()
            .map(|variable| variable.value);
        let value = variable.ok_or_else(|| format!("'{}' has no value", global.decl.name))?;
        Ok((unit, value))
    }

    /// The unit at `offset` in `.debug_info`, made once.
    fn unit(&self, offset: usize) -> Result<Rc<CompileUnit>, String> {
        if let Some(made) = self.made.borrow().get(&offset) {
            return Ok(made.clone());
        }
        let unreadable = |e: gimli::Error| format!("cannot read the unit at {offset:#x}: {e}");
        let header = self
            .dwarf
            .debug_info
            .header_from_offset(gimli::DebugInfoOffset(offset))
            .map_err(unreadable)?;
        let unit = self.dwarf.unit(header).map_err(unreadable)?;
        let unit = Rc::new(CompileUnit::sharing(self.units.clone(), unit, self.layout));
        self.made.borrow_mut().insert(offset, unit.clone());
        Ok(unit)
    }
}
