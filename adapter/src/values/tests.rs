//! Tests on C programs built with gcc at test time. The module itself never sees a
//! process: globals are read from the ELF file's sections, locals from a stack and
//! registers that a test makes up or that gdb saved from a run of the program. gdb is
//! the oracle: the same variables printed by gdb must read the same here.

use super::location::Frame;
use super::test_support::*;
use super::*;
use std::collections::BTreeMap;

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

/// Locals and arguments at breakpoints in a real run, at -O0 and -O2, read by this
/// module from gdb's snapshot of the registers and stack: the same text as gdb's
/// `info locals`/`info args`, `<optimized out>` exactly where gdb says so. Arguments the
/// callee no longer holds (`DW_OP_entry_value`) are recovered from the caller's call
/// site, with the caller's registers as an unwinder knows them.
#[test]
fn locals_of_a_real_stop_agree_with_gdb() {
    if !tools_or_skip(true) {
        return;
    }
    let mut compared = 0;
    let mut optimized_out = 0;
    let mut entry_values = 0;
    let mut clobbered = Vec::new();
    for level in ["-O0", "-O2"] {
        let binary = built("locals.c", &[level]);
        let program = Program::load(binary);
        for marker in ["inner", "other", "outer", "loop", "after loop"] {
            let line = marker_line("locals.c", marker);
            let Some(stop) = gdb_stop(binary, line) else {
                continue;
            };
            let memory = StackMemory {
                start: stop.stack.0,
                bytes: stop.stack.1.clone(),
                below: FileMemory(&program.file),
            };
            let unit = program.unit_at(stop.pc);
            let caller_unit = stop.caller.as_ref().map(|(pc, _)| program.unit_at(pc - 1));
            // The caller as latch's unwinder knows it (preserved registers), and as
            // gdb assumes it (every register carried over from frame 0).
            let preserved = stop.caller.as_ref().map(|(_, all)| all.preserved());
            let caller = |registers| caller_of(caller_unit.as_ref(), &stop, registers, &memory);
            let registers = FromCaller {
                registers: &stop.registers,
                callee: &unit,
                pc: stop.pc,
                caller: caller(preserved.as_ref()),
                asked: Default::default(),
            };
            let frame = Frame {
                pc: stop.pc,
                registers: &registers,
                memory: &memory,
            };
            let frames = unit.frame_variables(&frame).unwrap();
            let ours = &frames[0];
            let formatter = Formatter::new(&unit, &memory);
            let where_ = format!("{level} at {marker} (pc {:#x})", stop.pc);
            for (gdb_list, our_list, what) in [
                (&stop.locals, &ours.locals, "local"),
                (&stop.arguments, &ours.arguments, "argument"),
            ] {
                let mut seen = std::collections::BTreeSet::new();
                for (name, gdb_value) in gdb_list {
                    // gdb lists shadowed variables too, innermost first.
                    if !seen.insert(name) {
                        continue;
                    }
                    let ours = our_list
                        .iter()
                        .find(|v| &v.name == name)
                        .unwrap_or_else(|| panic!("{where_}: no {what} {name}; gdb: {gdb_list:?}"));
                    let text = formatter.summary(&ours.value);
                    compared += 1;
                    registers.asked.set(None);
                    assert_eq!(summary_of(&unit, &frame, name), text);
                    match registers.asked.get() {
                        Some(true) => entry_values += 1,
                        Some(false) if gdb_value != &text => {
                            // gcc described this argument at the call by a register the
                            // call clobbers (DW_OP_breg5 for rdi); gdb takes the callee's
                            // rdi for the caller's, latch's unwinder knows it is lost.
                            // With gdb's assumption the same lookup gives gdb's value.
                            let assuming = FromCaller {
                                caller: caller(stop.caller.as_ref().map(|(_, all)| all)),
                                asked: Default::default(),
                                ..registers
                            };
                            let frame = Frame {
                                registers: &assuming,
                                ..frame
                            };
                            assert_eq!(
                                &summary_of(&unit, &frame, name),
                                gdb_value,
                                "{where_}: {what} {name} on entry, with gdb's registers"
                            );
                            clobbered.push(format!("{where_}: {name} = {gdb_value}"));
                            continue;
                        }
                        _ => {}
                    }
                    assert_eq!(&text, gdb_value, "{where_}: {what} {name}");
                    if text == value::OPTIMIZED_OUT {
                        optimized_out += 1;
                    }
                }
                assert_eq!(
                    our_list.len(),
                    seen.len(),
                    "{where_}: ours {:?}, gdb's {gdb_list:?}",
                    names(our_list)
                );
            }
        }
    }
    assert!(compared >= 20, "only {compared} variables compared");
    assert!(optimized_out >= 1, "no optimized-out variable was compared");
    // work()'s n and values at -O2 (DW_OP_lit4, DW_OP_fbreg in main) at least.
    assert!(
        entry_values >= 2,
        "only {entry_values} values on entry compared"
    );
    eprintln!(
        "{compared} variables compared with gdb, {entry_values} of them values on entry; \
         left out as clobbered by the call: {clobbered:?}"
    );
}

/// A frame's registers from gdb's snapshot, answering values on entry from the caller's
/// call site, and noting whether one was asked for (and answered).
struct FromCaller<'a> {
    registers: &'a RegisterSet,
    callee: &'a CompileUnit,
    pc: u64,
    caller: Option<entry::Caller<'a>>,
    asked: std::cell::Cell<Option<bool>>,
}

impl Registers for FromCaller<'_> {
    fn register(&self, number: u16) -> Option<u64> {
        self.registers.register(number)
    }
    fn cfa(&self) -> Option<u64> {
        self.registers.cfa()
    }
    fn entry_value(&self, expression: &[u8]) -> Option<u64> {
        let value = self
            .caller
            .as_ref()
            .and_then(|caller| entry::entry_value(self.callee, self.pc, caller, expression));
        self.asked.set(Some(value.is_some()));
        value
    }
}

/// gdb's frame 1 as [`entry::Caller`], with `registers`.
fn caller_of<'a>(
    unit: Option<&'a CompileUnit>,
    stop: &'a GdbStop,
    registers: Option<&'a RegisterSet>,
    memory: &'a dyn Memory,
) -> Option<entry::Caller<'a>> {
    Some(entry::Caller {
        unit: unit?,
        return_address: stop.caller.as_ref()?.0,
        registers: registers?,
        memory,
    })
}

/// `name`'s value in `frame`, as text.
fn summary_of(unit: &CompileUnit, frame: &Frame, name: &str) -> String {
    let scopes = scope::scopes_at(unit, frame.pc).unwrap();
    let decl = scopes[0].variables.iter().find(|v| v.name == name).unwrap();
    let contents = location::contents_of(
        unit,
        &decl.location,
        decl.type_id,
        frame,
        scopes[0].frame_base.as_ref(),
    );
    Formatter::new(unit, frame.memory).summary(&Value::new(decl.type_id, contents))
}

/// Hand-written location expressions, with the types of a real unit: pieces split over
/// registers, a piece the compiler dropped, thread-locals, entry values, implicit values.
#[test]
fn location_expressions_by_hand() {
    if !tools_or_skip(false) {
        return;
    }
    let program = Program::load(built("locals.c", &["-O0"]));
    let pc = program
        .line_address(marker_line("locals.c", "inner"))
        .unwrap();
    let mut unit = program.unit_at(pc);
    unit.layout.static_tls = Some(StaticTls {
        size: 0x20,
        align: 16,
    });
    let scopes = scope::scopes_at(&unit, pc).unwrap();
    let type_of = |name: &str| {
        scopes[0]
            .variables
            .iter()
            .find(|v| v.name == name)
            .unwrap()
            .type_id
    };
    let pair = type_of("pair");
    let int = type_of("a");
    struct Entry(RegisterSet);
    impl Registers for Entry {
        fn register(&self, number: u16) -> Option<u64> {
            self.0.register(number)
        }
        fn cfa(&self) -> Option<u64> {
            self.0.cfa
        }
        fn thread_pointer(&self) -> Option<u64> {
            self.0.thread_pointer
        }
        fn entry_value(&self, expression: &[u8]) -> Option<u64> {
            // DW_OP_reg5 (rdi) on entry.
            (expression == [0x55]).then_some(41)
        }
    }
    let mut registers = RegisterSet {
        thread_pointer: Some(0x7000_1000),
        ..Default::default()
    };
    registers.registers.insert(0, 100); // rax
    registers.registers.insert(1, 200); // rdx
    let registers = Entry(registers);
    let tls_int = 0x7000_1000u64 - 0x20 + 8;
    let memory = StackMemory {
        start: tls_int,
        bytes: 77i32.to_le_bytes().to_vec(),
        below: FileMemory(&program.file),
    };
    let frame = Frame {
        pc,
        registers: &registers,
        memory: &memory,
    };
    let formatter = Formatter::new(&unit, &memory);
    let show = |bytes: &'static [u8], type_id| {
        let expression =
            gimli::Expression(gimli::EndianSlice::new(bytes, gimli::RunTimeEndian::Little));
        let contents = location::contents_of(
            &unit,
            &location::LocationAttr::Expression(expression),
            type_id,
            &frame,
            None,
        );
        formatter.summary(&Value::new(type_id, contents))
    };
    // DW_OP_reg0 DW_OP_piece 4 DW_OP_reg1 DW_OP_piece 4
    assert_eq!(
        show(&[0x50, 0x93, 4, 0x51, 0x93, 4], pair),
        "{first = 100, second = 200}"
    );
    // DW_OP_reg0 DW_OP_piece 4 DW_OP_piece 4: the second half is gone.
    assert_eq!(
        show(&[0x50, 0x93, 4, 0x93, 4], pair),
        "{first = 100, second = <optimized out>}"
    );
    // DW_OP_reg7 (rsp): not recovered in this frame.
    assert_eq!(show(&[0x57], int), "<optimized out>");
    // DW_OP_const1u 8 DW_OP_form_tls_address
    assert_eq!(show(&[0x08, 8, 0x9b], int), "77");
    // DW_OP_entry_value(DW_OP_reg5) DW_OP_plus_uconst 1 DW_OP_stack_value
    assert_eq!(show(&[0xa3, 1, 0x55, 0x23, 1, 0x9f], int), "42");
    // ... and with DW_OP_reg4 on entry, which the frame does not know.
    assert_eq!(show(&[0xa3, 1, 0x54, 0x9f], int), "<optimized out>");
    // DW_OP_implicit_value 4 bytes
    assert_eq!(show(&[0x9e, 4, 0xfe, 0xff, 0xff, 0xff], int), "-2");
    // DW_OP_lit3 DW_OP_stack_value
    assert_eq!(show(&[0x33, 0x9f], int), "3");
    // DW_OP_implicit_pointer <DIE> 0: a pointer optimized into its target, as gdb says.
    assert_eq!(show(&[0xa0, 0, 0, 0, 0, 0], int), "<synthetic pointer>");
    // ... as one member: the other still reads. DW_OP_implicit_pointer <DIE> 0
    // DW_OP_piece 4 DW_OP_lit2 DW_OP_stack_value DW_OP_piece 4
    assert_eq!(
        show(&[0xa0, 0, 0, 0, 0, 0, 0x93, 4, 0x32, 0x9f, 0x93, 4], pair),
        "{first = <synthetic pointer>, second = 2}"
    );
    // ... and a member only half of which it covers is gone: DW_OP_implicit_pointer
    // <DIE> 0 DW_OP_piece 2 DW_OP_piece 2 DW_OP_lit2 DW_OP_stack_value DW_OP_piece 4
    assert_eq!(
        show(
            &[0xa0, 0, 0, 0, 0, 0, 0x93, 2, 0x93, 2, 0x32, 0x9f, 0x93, 4],
            pair
        ),
        "{first = <optimized out>, second = 2}"
    );
    // DW_OP_fbreg without a frame base, a truncated expression, an unknown opcode.
    assert!(show(&[0x91, 0x10], int).starts_with("<error: "));
    assert!(show(&[0x08], int).starts_with("<error: "));
    assert!(show(&[0xfe], int).starts_with("<error: "));
    // DW_OP_skip -3 forever: bounded, not a hang.
    assert!(show(&[0x2f, 0xfd, 0xff], int).starts_with("<error: "));
}
