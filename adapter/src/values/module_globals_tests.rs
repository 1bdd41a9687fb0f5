//! The globals of a module's other units, on the two-files fixture read from its file
//! (no process), with gdb printing the same file as the oracle.

use super::location::Frame;
use super::test_support::*;
use super::*;

const SOURCES: [&str; 3] = ["twofiles_main.c", "twofiles_a.c", "twofiles_b.c"];

/// The fixture's own globals, as the module scope names them.
const LISTED: [&str; 9] = [
    "a_numbers",
    "a_pair",
    "b_name",
    "level (twofiles_a.c)",
    "level (twofiles_b.c)",
    "lonely",
    "other_count",
    "shared (twofiles_a.c)",
    "shared (twofiles_b.c)",
];

/// The offset of the unit of `file` in `.debug_info`.
fn unit_of(program: &Program, file: &str) -> usize {
    program
        .units()
        .iter()
        .find(|u| {
            u.unit
                .name
                .is_some_and(|n| n.to_string_lossy().ends_with(file))
        })
        .map(|u| u.unit.header.offset().0)
        .unwrap_or_else(|| panic!("no unit of {file}"))
}

/// gdb's `print` of each expression on the file, in order.
fn gdb_prints(binary: &std::path::Path, expressions: &[String]) -> Vec<String> {
    let commands: Vec<String> = expressions.iter().map(|e| format!("print {e}")).collect();
    let text = gdb(binary, &commands);
    let printed: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('$'))
        .filter_map(|l| l.split_once(" = ").map(|(_, v)| v.to_string()))
        .collect();
    assert_eq!(printed.len(), expressions.len(), "gdb printed:\n{text}");
    printed
}

/// What gdb is asked for a row's value: `'file'::name` for a name several files have.
fn gdb_expression(shown: &str) -> String {
    match shown.strip_suffix(')').and_then(|s| s.split_once(" (")) {
        Some((name, file)) => format!("'{file}'::{name}"),
        None => shown.to_string(),
    }
}

#[test]
fn names_of_other_units_are_found_as_gdb_finds_them() {
    if !tools_or_skip(true) {
        return;
    }
    let binary = built_from(&SOURCES, &["-O0"]);
    let program = Program::load(binary);
    let memory = FileMemory(&program.file);
    let registers = RegisterSet::default();
    let frame = Frame {
        pc: 0,
        registers: &registers,
        memory: &memory,
    };
    let main = unit_of(&program, "twofiles_main.c");
    let globals = ModuleGlobals::new(program.dwarf.clone(), ModuleLayout::default());
    assert_eq!(
        globals.known_len(),
        None,
        "nothing is indexed before it is asked"
    );

    let units = program.units();
    let formatter = Formatter::new(&units[0], &memory);
    let show = |name: &str, except: usize| -> String {
        let value = globals.find(name, except, &frame).unwrap();
        formatter.summary(&value.unwrap_or_else(|| panic!("no {name}")))
    };
    // `level` is twofiles_a.c's external and twofiles_b.c's static: the external is
    // meant, as gdb means it.
    let names = ["other_count", "level", "lonely", "a_pair", "a_numbers"];
    let ours: Vec<String> = names.iter().map(|name| show(name, main)).collect();
    assert!(globals.known_len().is_some_and(|n| n >= LISTED.len()));
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    assert_eq!(ours, gdb_prints(binary, &names), "{names:?}");

    let refused = globals.find("shared", main, &frame).unwrap_err();
    assert!(
        refused.contains("'shared' is a static of several files (twofiles_a.c, twofiles_b.c)"),
        "{refused}"
    );
    // Seen from twofiles_a.c (whose own `shared` the frame's unit gave already), the
    // other file's is the only one left.
    let from_a = unit_of(&program, "twofiles_a.c");
    assert_eq!(show("shared", from_a), "202");
    assert_eq!(
        globals
            .find("no_such_global", main, &frame)
            .unwrap()
            .map(|_| ()),
        None
    );
}

#[test]
fn the_module_scope_lists_every_units_globals_a_page_at_a_time() {
    if !tools_or_skip(true) {
        return;
    }
    let binary = built_from(&SOURCES, &["-O0"]);
    let program = Program::load(binary);
    let memory = FileMemory(&program.file);
    let registers = RegisterSet::default();
    let frame = Frame {
        pc: 0,
        registers: &registers,
        memory: &memory,
    };
    let globals = ModuleGlobals::new(program.dwarf.clone(), ModuleLayout::default());
    let all = globals.page(0, u64::MAX, &frame).unwrap();
    assert_eq!(all.len(), globals.count());
    let summary =
        |row: &module_globals::Row| Formatter::new(&row.unit, &memory).summary(&row.value);
    let ours: Vec<(String, String)> = all
        .iter()
        .filter(|row| LISTED.contains(&row.name.as_str()))
        .map(|row| (row.name.clone(), summary(row)))
        .collect();
    let listed: Vec<&str> = ours.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(listed, LISTED, "by name, then file");
    let expressions: Vec<String> = LISTED.iter().map(|n| gdb_expression(n)).collect();
    let theirs = gdb_prints(binary, &expressions);
    for ((name, ours), theirs) in ours.iter().zip(&theirs) {
        assert_eq!(ours, theirs, "{name}: latch (left) and gdb (right)");
    }

    // A page is that page; a row is found by the name it is shown with.
    let at = all
        .iter()
        .position(|r| r.name == "shared (twofiles_a.c)")
        .unwrap();
    let page = globals.page(at as u64, 2, &frame).unwrap();
    let names: Vec<&str> = page.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["shared (twofiles_a.c)", "shared (twofiles_b.c)"]);
    assert!(globals.page(u64::MAX, 5, &frame).unwrap().is_empty());
    let row = globals
        .row_named("shared (twofiles_b.c)", &frame)
        .unwrap()
        .unwrap();
    assert_eq!(summary(&row), "202");
    let row = globals.row_named("other_count", &frame).unwrap().unwrap();
    assert_eq!(summary(&row), "7");
    assert!(globals.row_named("shared", &frame).unwrap().is_none());
}
