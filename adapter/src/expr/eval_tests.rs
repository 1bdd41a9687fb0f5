//! The evaluator on C programs built at test time, without a process: globals read from
//! the ELF file, locals from a stop gdb saved. gdb is the oracle: `print EXPR` on the
//! same binary must show what the formatter shows for our value of EXPR.

use std::path::Path;

use super::{EvalError, Scope};
use crate::values::location::Frame;
use crate::values::test_support::*;
use crate::values::{CompileUnit, Formatter, Memory, RegisterSet, Value, Variable};

/// The fixture's unit, its globals as read through `memory`, and what the tests
/// evaluate with.
struct Fixture {
    program: Program,
    unit: CompileUnit,
}

impl Fixture {
    fn load(binary: &Path, source: &str) -> Fixture {
        let program = Program::load(binary);
        let unit = program
            .units()
            .into_iter()
            .find(|u| {
                u.unit
                    .name
                    .is_some_and(|n| n.to_string_lossy().ends_with(source))
            })
            .expect("the fixture's unit");
        Fixture { program, unit }
    }

    fn globals(&self, memory: &dyn Memory) -> Vec<Variable> {
        let registers = RegisterSet::default();
        let frame = Frame {
            pc: 0,
            registers: &registers,
            memory,
        };
        self.unit.global_variables(&frame).unwrap()
    }
}

/// Evaluates over the fixture's globals read from the file; the summary and the type,
/// or the error's text.
struct Globals<'a> {
    fixture: &'a Fixture,
    memory: &'a dyn Memory,
    globals: Vec<Variable>,
    registers: RegisterSet,
    symbols: FileSymbols,
}

impl<'a> Globals<'a> {
    fn new(fixture: &'a Fixture, memory: &'a dyn Memory) -> Globals<'a> {
        Globals {
            globals: fixture.globals(memory),
            fixture,
            memory,
            registers: RegisterSet::default(),
            symbols: FileSymbols::of(&fixture.program.file),
        }
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            unit: &self.fixture.unit,
            frames: &[],
            globals: &self.globals,
            other_globals: None,
            registers: &self.registers,
            memory: self.memory,
        }
    }

    fn value(&self, text: &str) -> Result<Value, EvalError> {
        self.scope().evaluate_text(text)
    }

    fn formatter(&self) -> Formatter<'_> {
        let mut formatter = Formatter::new(&self.fixture.unit, self.memory);
        formatter.symbols = Some(&self.symbols);
        formatter
    }

    /// `(summary, type)` of the expression's value.
    fn show(&self, text: &str) -> (String, String) {
        let value = self.value(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let formatter = self.formatter();
        (formatter.summary(&value), formatter.type_name(&value))
    }

    fn error(&self, text: &str) -> String {
        match self.value(text) {
            Ok(value) => panic!("{text} = {}", self.formatter().summary(&value)),
            Err(error) => error.to_string(),
        }
    }
}

/// Expressions over expressions.c's globals that gdb prints from the file as we do.
const AGREED_WITH_GDB: &[&str] = &[
    "table[2].name",
    "*ptr",
    "&a",
    "sizeof(struct entry)",
    "(unsigned char)-1",
    "a + b * 2",
    "flags & 4",
    "list->next->value",
    "list.next.next",
    "u + 1",
    "-1 < 1u",
    "ratio * 2",
    "half + 1",
    "1.0/0",
    "ptr[1]",
    "ptr + 2",
    "&numbers[4] - ptr",
    "*where",
    "where->y",
    "'a'",
    "\"hi\"",
    "sizeof numbers",
    "level",
    "HIGH",
    "(enum level)1",
    "anon.as_int",
    "mask",
    "(mask_t)-1",
    "numbers",
    "greeting[1]",
    "message",
    "small + small",
    "big >> 8",
    "a > b && b < 0",
    "a ? 1 : 2",
    "!a",
    "~a",
    "(char)65",
    "(long)b",
    "(struct point *)where",
    "*(int *)opaque",
    "derived.base.id",
    "table[1]",
    "&table[1]",
    "*list",
    "10 % 3",
    "-7 / 2",
    "0x10 | 1",
    "sizeof(int *)",
    "yes",
    "18446744073709551615",
    "2147483648",
    "-2147483648",
    "'\\n'",
    "u * 2",
    "(short)70000",
    "(unsigned long)-1 >> 1",
    "(int)2.9",
    "(int)-2.9",
    "(double)a / 2",
    "1 + 2.5",
    "b % 2",
    "a << 3",
    "b >> 1",
    "(level == MID) + 1",
    "numbers[2] == *ptr",
    "ptr > numbers",
    "&numbers[1] == &numbers[0] + 1",
    "null_ptr == 0",
    "*table[0].name",
    "table[1].where.x * table[2].where.y",
    "sizeof(table) / sizeof(table[0])",
    "(unsigned)b",
    "(signed char)200",
    "!null_ptr",
];

/// gdb's text in our spelling: without the `(type) ` gdb puts before a pointer.
fn without_type_prefix(gdb_value: &str, our_type: &str) -> String {
    gdb_value
        .strip_prefix(&format!("({our_type}) "))
        .unwrap_or(gdb_value)
        .to_string()
}

#[test]
fn expressions_over_globals_agree_with_gdb() {
    if !tools_or_skip(true) {
        return;
    }
    let binary = built("expressions.c", &["-O0"]);
    let fixture = Fixture::load(binary, "expressions.c");
    let memory = FileMemory(&fixture.program.file);
    let globals = Globals::new(&fixture, &memory);
    let expressions = AGREED_WITH_GDB;
    let commands: Vec<String> = expressions.iter().map(|e| format!("print {e}")).collect();
    let answer = gdb(binary, &commands);
    let lines: Vec<&str> = answer.lines().collect();
    assert_eq!(lines.len(), expressions.len(), "gdb said:\n{answer}");
    let mut wrong = Vec::new();
    for (text, line) in expressions.iter().zip(&lines) {
        let gdb_value = line.split_once(" = ").map_or(*line, |(_, v)| v);
        let (ours, type_name) = globals.show(text);
        let expected = without_type_prefix(gdb_value, &type_name);
        if ours != expected {
            wrong.push(format!("{text}: {ours:?} ({type_name}), gdb {expected:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "disagreements with gdb:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn results_expand_like_variables() {
    if !tools_or_skip(false) {
        return;
    }
    let fixture = Fixture::load(built("expressions.c", &["-O0"]), "expressions.c");
    let memory = FileMemory(&fixture.program.file);
    let globals = Globals::new(&fixture, &memory);
    let formatter = globals.formatter();
    let children = |text: &str| -> Vec<String> {
        let value = globals.value(text).unwrap();
        formatter
            .children(&value, 0, 10)
            .iter()
            .map(|c| format!("{}={}", c.name, formatter.summary(&c.value)))
            .collect()
    };
    assert_eq!(children("table[1].where"), ["x=3", "y=4"]);
    assert_eq!(children("&origin"), ["*={x = 0, y = 0}"]);
    let third = globals.show("&third").0;
    assert_eq!(
        children("*list->next"),
        ["value=2".to_string(), format!("next={third}")]
    );
    assert_eq!(
        children("\"ab\""),
        ["[0]=97 'a'", "[1]=98 'b'", "[2]=0 '\\000'"]
    );
    // A place keeps its address (a memoryReference), a computed value has none.
    let element = globals.value("numbers[3]").unwrap();
    let base = globals.value("&numbers[0]").unwrap();
    let base_address = formatter.integer(&base, 8, false).unwrap();
    assert_eq!(element.contents.address(), Some(base_address + 12));
    assert_eq!(
        globals.value("numbers[3] + 0").unwrap().contents.address(),
        None
    );
    assert_eq!(
        globals.show("sizeof(struct derived)"),
        ("8".into(), "unsigned long".into())
    );
    assert_eq!(globals.show("1.5").1, "double");
    assert_eq!(globals.show("7u").1, "unsigned int");
    assert_eq!(globals.show("(u8)300").0, "44");
    // Anonymous union members and base-class-like members are reached by name.
    assert_eq!(globals.show("anon.as_float").1, "float");
}

#[test]
fn errors_say_what_failed_and_where() {
    if !tools_or_skip(false) {
        return;
    }
    let fixture = Fixture::load(built("expressions.c", &["-O0"]), "expressions.c");
    let memory = FileMemory(&fixture.program.file);
    let globals = Globals::new(&fixture, &memory);
    let cases: &[(&str, &str)] = &[
        ("foo", "no variable named 'foo' in this frame"),
        ("origin.z", "struct point has no field named 'z'"),
        ("where->z", "struct point has no field named 'z'"),
        ("origin->x", "'origin' is a struct, not a pointer: use origin.x"),
        ("a->x", "'a' is not a pointer: it is an int"),
        ("a.x", "'a' is an int, which has no fields: '.x' needs a struct"),
        ("*a", "cannot dereference 'a': it is an int, not a pointer"),
        ("*null_ptr", "cannot dereference 'null_ptr': it is a null pointer"),
        (
            "*opaque",
            "cannot dereference 'opaque': it is a void pointer; cast it first, as in *(int *)opaque",
        ),
        (
            "numbers[6]",
            "index 6 is out of bounds for 'numbers', an array of 6 elements",
        ),
        (
            "table[-1]",
            "index -1 is out of bounds for 'table', an array of 3 elements",
        ),
        ("a / 0", "division by zero in '(a / 0)'"),
        ("a % (b + 3)", "division by zero in '(a % (b + 3))'"),
        ("a[1]", "cannot index 'a': it is an int, not an array or a pointer"),
        ("origin + 1", "'origin' is a struct, not a number: use origin.field"),
        ("ratio & 1", "'(ratio & 1)': '&' needs integers, not floating point"),
        ("ptr * 2", "'(ptr * 2)': '*' is not defined on pointers"),
        ("(struct nothing *)ptr", "no type named 'struct nothing' in this program"),
        ("sizeof(struct nothing)", "no type named 'struct nothing' in this program"),
        ("(struct point)a", "cannot cast 'a' to struct point: only numbers and pointers convert"),
        ("&(a + 1)", "cannot take the address of '(a + 1)': it is not in memory (a register or a computed value)"),
        ("$rax", "register $rax is not known in this frame"),
        ("$xyz", "no register named '$xyz'"),
        ("1 << 40", "'(1 << 40)': shift count 40 is out of range for a 32-bit int"),
        ("300i8", "300i8 does not fit in i8"),
        ("1u128", "integers of type u128 are not supported (64 bits at most)"),
        ("a +", "expected a value, found the end of the expression (column 4)"),
        ("\"hi\" + 1", "'\"hi\"' is an array that is not in memory: index it instead"),
    ];
    let mut wrong = Vec::new();
    for (text, expected) in cases {
        let got = globals.error(text);
        if got != *expected {
            wrong.push(format!("{text}: {got:?}, expected {expected:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Short-circuits never evaluate the side that would fail.
    assert_eq!(globals.show("0 && *null_ptr").0, "0");
    assert_eq!(globals.show("1 || a / 0").0, "1");
    assert_eq!(globals.show("null_ptr ? *null_ptr : -1").0, "-1");
}

#[test]
fn unreadable_memory_is_an_error_when_a_value_is_needed() {
    if !tools_or_skip(false) {
        return;
    }
    let fixture = Fixture::load(built("expressions.c", &["-O0"]), "expressions.c");
    let globals = Globals::new(&fixture, &NoMemory);
    // A variable alone is its place: the formatter says it cannot read it.
    let (text, _) = globals.show("a");
    assert!(
        text.starts_with("<error: cannot read 4 bytes at 0x"),
        "{text}"
    );
    // Anything that needs its bytes fails with the expression's name.
    let error = globals.error("a + 1");
    assert!(
        error.starts_with("cannot read 'a': cannot read 4 bytes at 0x"),
        "{error}"
    );
    let error = globals.error("*ptr");
    assert!(
        error.starts_with("cannot read 'ptr': cannot read 8 bytes"),
        "{error}"
    );
    let error = globals.error("list->next");
    assert!(error.starts_with("cannot read 'list'"), "{error}");
    let scope = globals.scope();
    let flags = scope.evaluate_text("flags").unwrap();
    assert!(scope.truthy(&flags).is_err());
    // Addresses need no memory.
    assert!(globals.value("&table[2].where.y").is_ok());
}

#[test]
fn registers_and_conditions() {
    if !tools_or_skip(false) {
        return;
    }
    let fixture = Fixture::load(built("expressions.c", &["-O0"]), "expressions.c");
    let memory = FileMemory(&fixture.program.file);
    let mut globals = Globals::new(&fixture, &memory);
    globals.registers.registers.insert(0, u64::MAX); // rax
    globals.registers.registers.insert(7, 0x7ffe_0000); // rsp
    globals.registers.registers.insert(16, 0x401000); // rip
    assert_eq!(globals.show("$rax").0, "-1");
    assert_eq!(globals.show("$rsp + 8").0, "0x7ffe0008");
    assert_eq!(globals.show("$sp == $rsp").0, "1");
    assert_eq!(globals.show("(unsigned long)$pc").0, "4198400");
    let scope = globals.scope();
    let truth = |text: &str| scope.truthy(&scope.evaluate_text(text).unwrap()).unwrap();
    assert!(truth("list->next->value == 2"));
    assert!(!truth("null_ptr"));
    assert!(truth("message"));
    assert!(truth("half"));
    assert!(!truth("level != MID"));
    assert!(scope
        .truthy(&scope.evaluate_text("origin").unwrap())
        .is_err());
}

/// Locals of a real stop (gdb's snapshot of registers and stack), innermost block
/// first: the inner `x` hides the outer one, arguments are found, and expressions over
/// them agree with gdb's `info locals`.
#[test]
fn locals_of_a_real_stop() {
    if !tools_or_skip(true) {
        return;
    }
    let binary = built("locals.c", &["-O0"]);
    let program = Program::load(binary);
    let Some(stop) = gdb_stop(binary, marker_line("locals.c", "inner")) else {
        panic!("gdb placed no breakpoint at the inner block");
    };
    let memory = StackMemory {
        start: stop.stack.0,
        bytes: stop.stack.1.clone(),
        below: FileMemory(&program.file),
    };
    let unit = program.unit_at(stop.pc);
    let frame = Frame {
        pc: stop.pc,
        registers: &stop.registers,
        memory: &memory,
    };
    let frames = unit.frame_variables(&frame).unwrap();
    let globals = unit.global_variables(&frame).unwrap();
    let scope = Scope {
        unit: &unit,
        frames: &frames,
        globals: &globals,
        other_globals: None,
        registers: &stop.registers,
        memory: &memory,
    };
    let formatter = Formatter::new(&unit, &memory);
    let show = |text: &str| formatter.summary(&scope.evaluate_text(text).unwrap());
    let gdb_says = |name: &str| {
        stop.locals
            .iter()
            .chain(&stop.arguments)
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(show("x"), gdb_says("x"));
    assert_eq!(show("pair"), gdb_says("pair"));
    assert_eq!(show("a"), gdb_says("a"));
    let a: i64 = gdb_says("a").parse().unwrap();
    let b: i64 = gdb_says("b").parse().unwrap();
    assert_eq!(show("a * 2 == x"), "1");
    assert_eq!(show("a + b"), (a + b).to_string());
    assert_eq!(show("pair.first + pair.second"), "300");
    assert_eq!(show("(&pair)->second"), "200");
    assert_eq!(show("*&a"), a.to_string());
    assert!(show("&inner_only").starts_with("0x7ff"));
    assert_eq!(show("$rsp == $sp"), "1");
}

mod random_expressions {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Expressions made of the fixture's names and every operator evaluate to a
        /// value or an error, and the value formats; nothing panics.
        #[test]
        fn never_panic(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just("a"), Just("b"), Just("u"), Just("ratio"), Just("half"), Just("ptr"),
                    Just("null_ptr"), Just("opaque"), Just("numbers"), Just("table"),
                    Just("list"), Just("origin"), Just("where"), Just("greeting"),
                    Just("message"), Just("anon"), Just("level"), Just("HIGH"), Just("mask"),
                    Just("derived"), Just("yes"), Just("nope"), Just("$rip"), Just("$rax"),
                    Just("."), Just("->"), Just("next"), Just("value"), Just("name"), Just("x"),
                    Just("where"), Just("base"), Just("as_int"), Just("["), Just("]"),
                    Just("("), Just(")"), Just("*"), Just("&"), Just("-"), Just("+"), Just("/"),
                    Just("%"), Just("<<"), Just(">>"), Just("!"), Just("~"), Just("?"),
                    Just(":"), Just("&&"), Just("||"), Just("=="), Just("<"), Just("0"),
                    Just("1"), Just("-1"), Just("5"), Just("64"), Just("0xffffffffffffffff"),
                    Just("2.5"), Just("'c'"), Just("\"s\""), Just("sizeof"), Just("(int)"),
                    Just("(char *)"), Just("(struct node *)"), Just("(unsigned char)"),
                    Just("(double)"), Just("(enum level)"), Just("(void *)"), Just("(mask_t)"),
                    Just("as u8"), Just(" "),
                ],
                1..16,
            )
        ) {
            if !tools_or_skip(false) {
                return Ok(());
            }
            let fixture = fixture();
            let memory = FileMemory(&fixture.program.file);
            let globals = Globals::new(fixture, &memory);
            let text = pieces.join(" ");
            if let Ok(value) = globals.value(&text) {
                let formatter = globals.formatter();
                formatter.summary(&value);
                formatter.type_name(&value);
                for child in formatter.children(&value, 0, 4) {
                    formatter.summary(&child.value);
                }
                let _ = globals.scope().truthy(&value);
            }
        }
    }

    /// The fixture, loaded once for all cases (a leaked one: tests are short-lived).
    fn fixture() -> &'static Fixture {
        thread_local! {
            static FIXTURE: &'static Fixture = Box::leak(Box::new(Fixture::load(
                built("expressions.c", &["-O0"]),
                "expressions.c",
            )));
        }
        FIXTURE.with(|f| *f)
    }
}

/// What `setVariable` stores: the bytes of the typed value converted to the variable's
/// type, refused with why when it does not fit or the type cannot be set whole.
#[test]
fn assignments_give_the_bytes_of_the_variables_type() {
    if !tools_or_skip(false) {
        return;
    }
    let fixture = Fixture::load(built("expressions.c", &["-O0"]), "expressions.c");
    let memory = FileMemory(&fixture.program.file);
    let globals = Globals::new(&fixture, &memory);
    let scope = globals.scope();
    let stored = |target: &str, text: &str| {
        let variable = scope.evaluate_text(target).unwrap();
        let expr = scope.parse(text).unwrap();
        let value = scope.evaluate(&expr).unwrap();
        scope
            .assignment_bytes(&value, &expr, variable.type_id.unwrap())
            .map_err(|e| e.to_string())
    };
    assert_eq!(stored("a", "-2"), Ok((-2i32).to_le_bytes().to_vec()));
    assert_eq!(stored("small", "'A'"), Ok(vec![65]));
    assert_eq!(
        stored("big", "(long)0x10 << 40"),
        Ok((0x10i64 << 40).to_le_bytes().to_vec())
    );
    assert_eq!(stored("ratio", "1.25"), Ok(1.25f64.to_le_bytes().to_vec()));
    assert_eq!(stored("half", "3"), Ok(3.0f32.to_le_bytes().to_vec()));
    assert_eq!(stored("level", "HIGH"), Ok(9u32.to_le_bytes().to_vec()));
    assert_eq!(stored("yes", "0"), Ok(vec![0]));
    assert_eq!(
        stored("ptr", "0x1000"),
        Ok(0x1000u64.to_le_bytes().to_vec())
    );
    assert_eq!(stored("greeting", "\"hey\""), Ok(b"hey\0\0\0".to_vec()));
    let too_big = stored("small", "300").unwrap_err();
    assert!(
        too_big.contains("300 does not fit in unsigned char (0 to 255)"),
        "{too_big}"
    );
    let too_long = stored("greeting", "\"goodbye\"").unwrap_err();
    assert!(
        too_long.contains("the string is 7 bytes and the array holds 6"),
        "{too_long}"
    );
    let whole = stored("origin", "0").unwrap_err();
    assert!(whole.contains("set its members"), "{whole}");
    let not_string = stored("numbers", "1").unwrap_err();
    assert!(not_string.contains("string literal"), "{not_string}");
}

/// A Go function's package, whose globals its code names without the package: the
/// dots of an import path's domain are not the package's end.
#[test]
fn go_package_of_functions_and_methods() {
    use super::eval::go_package;
    assert_eq!(go_package("main.main"), "main");
    assert_eq!(go_package("main.(*Counter).Add"), "main");
    assert_eq!(go_package("example.com/a/b.F"), "example.com/a/b");
    assert_eq!(go_package("example.com/a/b.(*T).M"), "example.com/a/b");
    assert_eq!(go_package("runtime.gopark"), "runtime");
    assert_eq!(go_package("nodot"), "nodot");
}
