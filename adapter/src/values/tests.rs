//! Tests on C programs built with gcc at test time. The module itself never sees a
//! process: globals are read from the ELF file's sections, locals from a stack and
//! registers that a test makes up or that gdb saved from a run of the program. gdb is
//! the oracle: the same variables printed by gdb must read the same here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;

use object::{Object, ObjectSection, ObjectSymbol};

use super::location::Frame;
use super::*;
use crate::symbols::module::map_file;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/values")
        .join(name)
}

fn has_tool(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// gcc (and gdb when `oracle`) are there; otherwise the test fails or, when skipping
/// is allowed outside CI, says so loudly and returns false.
fn tools_or_skip(oracle: bool) -> bool {
    for tool in ["gcc"].into_iter().chain(oracle.then_some("gdb")) {
        if !has_tool(tool) {
            crate::test_skip::skip_or_fail(&format!(
                "{tool} is not installed: the values tests build C programs and ask gdb"
            ));
            return false;
        }
    }
    true
}

/// `source` built with `flags`, once per test process. Non-PIE: the file's addresses
/// are the process's, so gdb's runs and the file agree without a load bias.
fn built(source: &str, flags: &[&str]) -> &'static Path {
    static BUILT: OnceLock<std::sync::Mutex<BTreeMap<String, &'static Path>>> = OnceLock::new();
    let key = format!("{source} {}", flags.join(" "));
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    built.entry(key).or_insert_with(|| {
        let dir = std::env::temp_dir().join(format!("latch-values-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let name = format!(
            "{}{}",
            source.trim_end_matches(".c"),
            flags.join("").replace(['-', ' '], "_")
        );
        let out = dir.join(name);
        let output = std::process::Command::new("gcc")
            .args(["-g", "-no-pie", "-fno-pie"])
            .args(flags)
            .arg("-o")
            .arg(&out)
            .arg(fixture(source))
            .output()
            .expect("gcc runs");
        assert!(
            output.status.success(),
            "gcc failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Box::leak(out.into_boxed_path())
    })
}

/// A built program's file, its DWARF and what the tests read through.
struct Program {
    file: object::File<'static>,
    dwarf: Rc<gimli::Dwarf<crate::symbols::module::Reader>>,
}

impl Program {
    fn load(path: &Path) -> Program {
        let data = map_file(path).unwrap();
        let file = object::File::parse(data).unwrap();
        let dwarf = Rc::new(load_dwarf(&file));
        Program { file, dwarf }
    }

    fn units(&self) -> Vec<CompileUnit> {
        CompileUnit::all(self.dwarf.clone(), ModuleLayout::default())
    }

    /// The lowest address of a statement of `line` in the fixture's unit.
    fn line_address(&self, line: u64) -> Option<u64> {
        let mut best: Option<u64> = None;
        for unit in self.units() {
            let Some(program) = unit.unit.line_program.clone() else {
                continue;
            };
            let mut rows = program.rows();
            while let Ok(Some((_, row))) = rows.next_row() {
                if row.is_stmt() && row.line().map(|l| l.get()) == Some(line) {
                    best = Some(best.map_or(row.address(), |b| b.min(row.address())));
                }
            }
        }
        best
    }

    fn unit_at(&self, pc: u64) -> CompileUnit {
        CompileUnit::containing(self.dwarf.clone(), pc, ModuleLayout::default()).unwrap()
    }
}

/// Memory as the file lays it out: initialized data from the sections, `.bss` zeros.
struct FileMemory<'a>(&'a object::File<'static>);

impl Memory for FileMemory<'_> {
    fn read(&self, address: u64, into: &mut [u8]) -> Result<(), ReadError> {
        let error = ReadError {
            address,
            len: into.len(),
        };
        let end = address
            .checked_add(into.len() as u64)
            .ok_or(error.clone())?;
        for section in self.0.sections() {
            let start = section.address();
            if start == 0 || address < start || end > start + section.size() {
                continue;
            }
            let offset = (address - start) as usize;
            if section.kind() == object::SectionKind::UninitializedData {
                into.fill(0);
                return Ok(());
            }
            let data = section.data().map_err(|_| error.clone())?;
            let bytes = data.get(offset..offset + into.len()).ok_or(error.clone())?;
            into.copy_from_slice(bytes);
            return Ok(());
        }
        Err(error)
    }
}

/// A stack saved from a run, in front of the file's memory.
struct StackMemory<'a> {
    start: u64,
    bytes: Vec<u8>,
    below: FileMemory<'a>,
}

impl Memory for StackMemory<'_> {
    fn read(&self, address: u64, into: &mut [u8]) -> Result<(), ReadError> {
        if let Some(offset) = address.checked_sub(self.start) {
            let offset = offset as usize;
            if let Some(bytes) = self.bytes.get(offset..offset + into.len()) {
                into.copy_from_slice(bytes);
                return Ok(());
            }
        }
        self.below.read(address, into)
    }
}

/// Nothing readable anywhere.
struct NoMemory;

impl Memory for NoMemory {
    fn read(&self, address: u64, into: &mut [u8]) -> Result<(), ReadError> {
        Err(ReadError {
            address,
            len: into.len(),
        })
    }
}

/// The ELF symbol table, as gdb names addresses: `<g_array+8>`.
struct FileSymbols(Vec<(u64, u64, String)>);

impl FileSymbols {
    fn of(file: &object::File<'static>) -> FileSymbols {
        FileSymbols(
            file.symbols()
                .filter(|s| {
                    matches!(
                        s.kind(),
                        object::SymbolKind::Data | object::SymbolKind::Text
                    )
                })
                .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
                .filter(|(address, _, name)| *address != 0 && !name.is_empty())
                .collect(),
        )
    }
}

impl Symbolizer for FileSymbols {
    fn symbol_for(&self, address: u64) -> Option<(String, u64)> {
        self.0
            .iter()
            .find(|(start, size, _)| {
                address == *start || (*start < address && address < start + size)
            })
            .map(|(start, _, name)| (name.clone(), address - start))
    }
}

/// Runs gdb on `binary` with `commands`; its standard output.
fn gdb(binary: &Path, commands: &[String]) -> String {
    let mut args = vec![
        "-nx".to_string(),
        "-batch".into(),
        "-ex".into(),
        "set width 0".into(),
        "-ex".into(),
        "set print null-stop on".into(),
    ];
    for command in commands {
        args.push("-ex".into());
        args.push(command.clone());
    }
    let output = std::process::Command::new("gdb")
        .args(&args)
        .arg(binary)
        .output()
        .expect("gdb runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const GLOBALS: &[&str] = &[
    "g_int",
    "g_ulong",
    "g_llong",
    "g_short",
    "g_char",
    "g_newline",
    "g_uchar",
    "g_schar",
    "g_bool",
    "g_float",
    "g_double",
    "g_ldouble",
    "g_color",
    "g_color_unknown",
    "g_flags",
    "g_flags_extra",
    "g_flags_zero",
    "g_counter",
    "g_const_counter",
    "g_string",
    "g_null_string",
    "g_bad_utf8",
    "g_tab",
    "g_outer",
    "g_number",
    "g_array",
    "g_matrix",
    "g_function",
    "file_static",
    "g_pointer",
    "g_outer_pointer",
    "g_derived",
    "g_zero_bss",
    "g_const_pointer",
    "g_volatile",
];

/// Every global of the fixture, read from the file, by name.
fn file_globals(program: &Program) -> BTreeMap<String, (Variable, String, String)> {
    let memory = FileMemory(&program.file);
    let symbols = FileSymbols::of(&program.file);
    let registers = RegisterSet::default();
    let frame = Frame {
        pc: 0,
        registers: &registers,
        memory: &memory,
    };
    let mut found = BTreeMap::new();
    for unit in program.units() {
        let mut formatter = Formatter::new(&unit, &memory);
        formatter.symbols = Some(&symbols);
        for variable in unit.global_variables(&frame).unwrap() {
            let text = formatter.summary(&variable.value);
            let type_name = formatter.type_name(&variable.value);
            found.insert(variable.name.clone(), (variable, text, type_name));
        }
    }
    found
}

/// gdb's text in our spelling where the two differ by design: flag enums without
/// parentheses and `unknown:` (the issue's `A | B`), no `(type) ` before a pointer.
fn as_we_write(gdb_value: &str, type_name: &str) -> String {
    let value = gdb_value
        .strip_prefix(&format!("({type_name}) "))
        .unwrap_or(gdb_value);
    if value.starts_with('(') && value.ends_with(')') && value.contains(" | ") {
        return value[1..value.len() - 1].replace("unknown: ", "");
    }
    value.to_string()
}

#[test]
fn globals_read_from_the_file_agree_with_gdb() {
    if !tools_or_skip(true) {
        return;
    }
    let binary = built("globals.c", &["-O0"]);
    let program = Program::load(binary);
    let ours = file_globals(&program);
    let commands: Vec<String> = GLOBALS
        .iter()
        .flat_map(|name| [format!("print {name}"), format!("whatis {name}")])
        .collect();
    let answer = gdb(binary, &commands);
    let lines: Vec<&str> = answer.lines().collect();
    assert_eq!(lines.len(), GLOBALS.len() * 2, "gdb said:\n{answer}");
    let mut wrong = Vec::new();
    for (name, pair) in GLOBALS.iter().zip(lines.chunks(2)) {
        let gdb_value = pair[0].split_once(" = ").map_or(pair[0], |(_, v)| v);
        let gdb_type = pair[1].strip_prefix("type = ").unwrap_or(pair[1]);
        let Some((_, value, type_name)) = ours.get(*name) else {
            wrong.push(format!("{name}: not found among the globals"));
            continue;
        };
        if type_name != gdb_type {
            wrong.push(format!("{name}: type {type_name:?}, gdb {gdb_type:?}"));
        }
        let expected = as_we_write(gdb_value, gdb_type);
        if *value != expected {
            wrong.push(format!("{name}: {value:?}, gdb {expected:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "disagreements with gdb:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn children_are_members_elements_and_pointees_a_page_at_a_time() {
    if !tools_or_skip(false) {
        return;
    }
    let program = Program::load(built("globals.c", &["-O0"]));
    let memory = FileMemory(&program.file);
    let globals = file_globals(&program);
    let units = program.units();
    let unit = units
        .iter()
        .find(|u| {
            u.unit
                .name
                .is_some_and(|n| n.to_string_lossy().ends_with("globals.c"))
        })
        .unwrap();
    let symbols = FileSymbols::of(&program.file);
    let mut formatter = Formatter::new(unit, &memory);
    formatter.symbols = Some(&symbols);
    let value = |name: &str| globals[name].0.value.clone();
    let texts = |children: Vec<Child>| -> Vec<String> {
        children
            .iter()
            .map(|c| format!("{}={}", c.name, formatter.summary(&c.value)))
            .collect()
    };

    let array = value("g_array");
    assert!(formatter.has_indexed_children(&array));
    assert_eq!(formatter.child_count(&array), 5);
    assert_eq!(
        texts(formatter.children(&array, 1, 2)),
        ["[1]=20", "[2]=30"]
    );
    assert_eq!(texts(formatter.children(&array, 4, 100)), ["[4]=50"]);
    assert!(formatter.children(&array, 5, 1).is_empty());
    assert!(formatter.children(&array, u64::MAX, u64::MAX).is_empty());

    // A row of a three-dimensional array is itself an array, with its own type.
    let matrix = value("g_matrix");
    let rows = formatter.children(&matrix, 1, 1);
    assert_eq!(
        formatter.summary(&rows[0].value),
        "{{7, 8, 9}, {10, 11, 12}}"
    );
    assert_eq!(formatter.type_name(&rows[0].value), "short [2][3]");
    let row = formatter.children(&rows[0].value, 1, 1);
    assert_eq!(
        texts(formatter.children(&row[0].value, 0, 3)),
        ["[0]=10", "[1]=11", "[2]=12"]
    );

    let outer = value("g_outer");
    assert!(!formatter.has_indexed_children(&outer));
    let members = formatter.children(&outer, 0, 100);
    let names: Vec<&str> = members.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["id", "inner", "bits", "name", "ratio", "f", "tag", "matrix", "u", "next"]
    );
    // Every member of a value in memory has its own address (a memoryReference).
    assert_eq!(
        members[1].value.contents.address(),
        outer.contents.address().map(|a| a + 4)
    );
    let bits = &members[2].value;
    assert_eq!(
        texts(formatter.children(bits, 0, 5)),
        ["a=5", "b=-7", "c=1234", "d=true", "after=-8"]
    );

    // The pointer expands to the struct it points to, which points to itself: each
    // level is one step, never a walk.
    let pointer = value("g_outer_pointer");
    assert_eq!(formatter.child_count(&pointer), 1);
    let target = formatter.children(&pointer, 0, 1);
    assert_eq!(target[0].name, "*");
    assert_eq!(formatter.summary(&target[0].value), globals["g_outer"].1);
    let next = formatter.children(&target[0].value, 9, 1);
    let again = formatter.children(&next[0].value, 0, 1);
    assert_eq!(again[0].value.contents.address(), outer.contents.address());

    // Null and function pointers have nothing to expand.
    assert_eq!(formatter.child_count(&value("g_null_string")), 0);
    assert_eq!(formatter.child_count(&value("g_function")), 0);

    // A base class shown as a member named after its type; here a C stand-in.
    let derived = formatter.children(&value("g_derived"), 0, 2);
    assert_eq!(texts(derived), ["base={b = 3}", "extra=4"]);
}

#[test]
fn unreadable_memory_reads_as_errors_never_panics() {
    if !tools_or_skip(false) {
        return;
    }
    let program = Program::load(built("globals.c", &["-O0"]));
    let registers = RegisterSet::default();
    let frame = Frame {
        pc: 0,
        registers: &registers,
        memory: &NoMemory,
    };
    let mut seen = 0;
    for unit in program.units() {
        let formatter = Formatter::new(&unit, &NoMemory);
        for variable in unit.global_variables(&frame).unwrap() {
            let text = formatter.summary(&variable.value);
            assert!(
                text.starts_with("<error: cannot read"),
                "{}: {text}",
                variable.name
            );
            for child in formatter.children(&variable.value, 0, 10) {
                formatter.summary(&child.value);
            }
            seen += 1;
        }
    }
    assert!(seen >= GLOBALS.len());

    // A string pointer into memory that ends: the readable part, then the error.
    let file_memory = FileMemory(&program.file);
    let globals = file_globals(&program);
    let units = program.units();
    let unit = units.iter().find(|u| u.unit.name.is_some()).unwrap();
    let string = &globals["g_string"].0.value;
    let address = {
        let formatter = Formatter::new(unit, &file_memory);
        formatter.integer(string, 8, false).unwrap()
    };
    let partial = StackMemory {
        start: address,
        bytes: b"hel".to_vec(),
        below: FileMemory(&program.file),
    };
    let cut = StackOnly(&partial);
    let formatter = Formatter::new(unit, &cut);
    let pointer = Value::new(
        string.type_id,
        Contents::bytes(address.to_le_bytes().to_vec()),
    );
    assert_eq!(
        formatter.summary(&pointer),
        format!("{address:#x} \"hel\"<error: string runs into unreadable memory>")
    );
}

/// Only the saved stack's bytes.
struct StackOnly<'a>(&'a StackMemory<'a>);

impl Memory for StackOnly<'_> {
    fn read(&self, address: u64, into: &mut [u8]) -> Result<(), ReadError> {
        let stack = self.0;
        let error = ReadError {
            address,
            len: into.len(),
        };
        let offset = address.checked_sub(stack.start).ok_or(error.clone())? as usize;
        let bytes = stack.bytes.get(offset..offset + into.len()).ok_or(error)?;
        into.copy_from_slice(bytes);
        Ok(())
    }
}

/// The line of the fixture's source that carries `marker` in a comment.
fn marker_line(source: &str, marker: &str) -> u64 {
    let text = std::fs::read_to_string(fixture(source)).unwrap();
    let needle = format!("/* {marker} */");
    text.lines()
        .position(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no {needle} in {source}")) as u64
        + 1
}

fn names(variables: &[Variable]) -> Vec<&str> {
    variables.iter().map(|v| v.name.as_str()).collect()
}

/// At -O0 every variable lives in the frame: given a frame base, the scope at a pc in
/// a nested block holds the block's variables, the inner `x` hiding the outer one, and
/// not those of a sibling block; outside it, the outer `x` again.
#[test]
fn scopes_follow_blocks_and_shadowing() {
    if !tools_or_skip(false) {
        return;
    }
    let program = Program::load(built("locals.c", &["-O0"]));
    let cfa = 0x7fff_0000_2000u64;
    let stack_start = cfa - 0x1000;
    let stack = StackMemory {
        start: stack_start,
        bytes: vec![0; 0x1100],
        below: FileMemory(&program.file),
    };
    let registers = RegisterSet {
        cfa: Some(cfa),
        ..Default::default()
    };
    let at = |marker: &str| {
        let pc = program
            .line_address(marker_line("locals.c", marker))
            .unwrap();
        let unit = program.unit_at(pc);
        let frame = Frame {
            pc,
            registers: &registers,
            memory: &stack,
        };
        let frames = unit.frame_variables(&frame).unwrap();
        assert_eq!(frames.len(), 1, "{marker}: no inlining at -O0");
        frames.into_iter().next().unwrap()
    };

    let inner = at("inner");
    assert_eq!(inner.function.as_deref(), Some("compute"));
    assert_eq!(names(&inner.arguments), ["a", "b", "pair"]);
    let mut locals = names(&inner.locals);
    locals.sort_unstable();
    assert_eq!(locals, ["inner_only", "result", "x"]);

    let outer = at("outer");
    assert_eq!(names(&outer.arguments), ["a", "b", "pair"]);
    let mut locals = names(&outer.locals);
    locals.sort_unstable();
    assert_eq!(locals, ["result", "x"]);

    let other = at("other");
    let mut locals = names(&other.locals);
    locals.sort_unstable();
    assert_eq!(locals, ["other_block", "result", "x"]);

    // Each variable is in the frame, below the CFA; the two `x`s are two places.
    let address = |frame: &FrameVariables, name: &str| {
        frame
            .locals
            .iter()
            .chain(&frame.arguments)
            .find(|v| v.name == name)
            .and_then(|v| v.value.contents.address())
            .unwrap()
    };
    for variable in inner.locals.iter().chain(&inner.arguments) {
        let address = variable.value.contents.address().unwrap();
        assert!((stack_start..cfa).contains(&address), "{}", variable.name);
    }
    assert_ne!(address(&inner, "x"), address(&outer, "x"));
    assert_eq!(address(&inner, "result"), address(&outer, "result"));

    // Values come from the frame's bytes.
    let mut bytes = stack.bytes.clone();
    let mut put = |address: u64, value: i32| {
        let at = (address - stack_start) as usize;
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    };
    put(address(&inner, "x"), 84);
    put(address(&outer, "x"), -1);
    put(address(&inner, "pair"), 100);
    put(address(&inner, "pair") + 4, 200);
    let stack = StackMemory { bytes, ..stack };
    let units = program.units();
    let unit = units
        .iter()
        .find(|u| {
            u.unit
                .name
                .is_some_and(|n| n.to_string_lossy().ends_with("locals.c"))
        })
        .unwrap();
    let formatter = Formatter::new(unit, &stack);
    let shown = |frame: &FrameVariables, name: &str| {
        let variable = frame
            .locals
            .iter()
            .chain(&frame.arguments)
            .find(|v| v.name == name)
            .unwrap();
        formatter.summary(&variable.value)
    };
    assert_eq!(shown(&inner, "x"), "84");
    assert_eq!(shown(&outer, "x"), "-1");
    assert_eq!(shown(&inner, "pair"), "{first = 100, second = 200}");
}
