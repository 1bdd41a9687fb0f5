//! Variables over DAP (issue 15), with gdb as the oracle: the values fixture
//! (tests/fixtures/values/stopped.c, built -O0 and -O2) calls probe() forever with the same
//! values; latch stops there with a breakpoint and shows the frame's arguments and locals;
//! after latch detaches, gdb attaches, stops at the same line with its own breakpoint, and
//! its `info args` and `info locals` must say the same, variable by variable. Also: the
//! scopes a frame has, expanding structs, arrays and pointers, paging an array, a unit's
//! globals, and references that are stale or were never given.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::require_harness;
use crate::support::code;
use crate::support::fixtures::{source_dir, which};
use crate::support::stackfix::marker_line;
use crate::support::values::{self, rows, variables, Rows};
use crate::support::{secs, skip_or_fail, thread_id, Dap, Target};

fn source() -> PathBuf {
    source_dir().join("values/stopped.c")
}

/// The fixture built with `optimization`, once per test run.
fn build(optimization: &str) -> PathBuf {
    values::built_once(&format!("stopped{optimization}"), |binary| {
        let mut cc = Command::new("cc");
        cc.args([optimization, "-g", "-pthread", "-Wall", "-o"])
            .arg(binary)
            .arg(source());
        cc
    })
}

/// gdb attached to `pid`, stopped at `line` of the fixture by its own breakpoint, then
/// running `commands`: what it printed after the stop. `None` (the test skipped or
/// failed loudly) without gdb.
fn gdb_at(pid: i32, binary: &std::path::Path, line: u32, commands: &[String]) -> Option<String> {
    let Some(gdb) = which("gdb") else {
        skip_or_fail("gdb not found (the oracle of the variables tests); install gdb");
        return None;
    };
    // A char array is shown to its first NUL, as latch shows it.
    let setup = ["set print null-stop on"];
    let place = format!("stopped.c:{line}");
    Some(values::gdb_stopped_at(
        &gdb, pid, binary, &place, &setup, commands,
    ))
}

/// gdb's `info args` and `info locals` at the marker line: name -> value.
fn gdb_view(pid: i32, binary: &std::path::Path, line: u32) -> Option<BTreeMap<String, String>> {
    let commands = ["info args".to_string(), "info locals".to_string()];
    let text = gdb_at(pid, binary, line, &commands)?;
    Some(
        text.lines()
            .filter_map(|line| line.split_once(" = "))
            .filter(|(name, _)| !name.contains(' '))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    )
}

/// Stops latch's session at the marker line: (stopped thread, frame 0's id).
fn stop_at_probe(dap: &mut Dap, line: u32) -> (i64, i64) {
    let set = dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": source() }, "breakpoints": [{ "line": line }] }),
    );
    assert_eq!(set["body"]["breakpoints"][0]["verified"], true, "{set}");
    let stopped = dap.next_event("stopped", secs(30));
    let tid = thread_id(&stopped);
    let trace = dap.ok("stackTrace", json!({ "threadId": tid, "levels": 1 }));
    let frame = &trace["body"]["stackFrames"][0];
    assert_eq!(frame["name"], "probe", "{trace}");
    (tid, frame["id"].as_i64().unwrap())
}

/// The fixture built with `optimization`, running, attached by latch and stopped at the
/// marker line in probe().
struct Stopped {
    binary: PathBuf,
    line: u32,
    target: Target,
    dap: Dap,
    tid: i64,
    frame: i64,
}

fn stopped(optimization: &str) -> Stopped {
    let binary = build(optimization);
    let line = marker_line(&source(), "probe_stop");
    let mut target = Target::spawn(Command::new(&binary));
    target.wait_ready(secs(10));
    let mut dap = Dap::attached(target.pid, false);
    let (tid, frame) = stop_at_probe(&mut dap, line);
    Stopped {
        binary,
        line,
        target,
        dap,
        tid,
        frame,
    }
}

/// The request fails, and the reason shown to the user says `why`.
fn assert_refused(dap: &mut Dap, command: &str, arguments: Value, why: &str) {
    let r = dap.request(command, arguments.clone());
    assert_eq!(r["success"], false, "{command} {arguments}: {r}");
    let text = r["body"]["error"]["format"].as_str().unwrap_or_default();
    assert!(text.contains(why), "{command} {arguments}: {r}");
}

/// Breakpoints out, disconnect; the target runs on untraced with its code as in its files.
fn detach(dap: &mut Dap, target: &Target) {
    values::detach(dap, target, &source());
}

/// The scopes of frame `id` by name: name -> variablesReference.
fn scopes(dap: &mut Dap, id: i64) -> Vec<(String, i64, bool)> {
    let r = dap.ok("scopes", json!({ "frameId": id }));
    r["body"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["variablesReference"].as_i64().unwrap(),
                s["expensive"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// latch's arguments and locals of probe(), then gdb's at the same line; returns both.
fn both_views(optimization: &str) -> Option<(Rows, BTreeMap<String, String>)> {
    let Stopped {
        binary,
        line,
        target,
        mut dap,
        frame,
        ..
    } = stopped(optimization);
    let found = scopes(&mut dap, frame);
    let names: Vec<&str> = found.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Arguments",
            "Locals",
            "Globals",
            "Module globals",
            "Registers"
        ],
        "{found:?}"
    );
    assert!(found[2].2, "Globals are expensive: {found:?}");
    let mut latch = variables(&mut dap, found[0].1);
    latch.extend(variables(&mut dap, found[1].1));
    detach(&mut dap, &target);
    let gdb = gdb_view(target.pid, &binary, line)?;
    Some((latch, gdb))
}

#[test]
fn locals_and_arguments_agree_with_gdb_at_o0() {
    require_harness!();
    let Some((latch, gdb)) = both_views("-O0") else {
        return;
    };
    assert!(gdb.len() >= 20, "gdb's view: {gdb:#?}");
    let latch_values: BTreeMap<&str, &str> = latch
        .iter()
        .map(|(name, (value, _, _))| (name.as_str(), value.as_str()))
        .collect();
    let gdb_values: BTreeMap<&str, &str> =
        gdb.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(
        latch_values, gdb_values,
        "latch (left) and gdb (right) differ"
    );
    // And the types, as C writes them.
    let types: BTreeMap<&str, &str> = latch
        .iter()
        .map(|(name, (_, ty, _))| (name.as_str(), ty.as_str()))
        .collect();
    for (name, ty) in [
        ("round", "int"),
        ("label", "const char *"),
        ("where", "struct point"),
        ("byte", "unsigned char"),
        ("counted", "counter_t"),
        ("numbers", "int [5]"),
        ("grid", "int [2][3]"),
        ("cursor", "struct shape *"),
        ("number", "union number"),
        ("function", "int (*)(int)"),
        ("color", "enum color"),
    ] {
        assert_eq!(types.get(name), Some(&ty), "type of {name}");
    }
}

/// Optimized code: every argument and local reads as gdb shows it. Arguments the callee
/// no longer holds (`round` and `label` at -O2 are `DW_OP_entry_value`s) are recovered
/// from main's call site as gdb does; a struct with members the compiler dropped or
/// turned into implicit pointers (`head`) shows the others, those as
/// `<optimized out>`/`<synthetic pointer>`; latch never shows a value where gdb has none.
#[test]
fn optimized_locals_are_right_or_said_to_be_gone_as_gdb_says() {
    require_harness!();
    let Some((latch, gdb)) = both_views("-O2") else {
        return;
    };
    let mut agreed = 0;
    for (name, gdb_value) in &gdb {
        let Some((value, _, _)) = latch.get(name) else {
            panic!("latch does not list {name} (gdb: {gdb_value}); latch: {latch:#?}");
        };
        assert_eq!(value, gdb_value, "{name}");
        agreed += 1;
    }
    assert!(
        agreed >= 20,
        "only {agreed} values to compare: latch {latch:#?} gdb {gdb:#?}"
    );
    // What this test is about was among them: values on entry, a struct in part.
    for name in ["round", "label"] {
        assert!(!latch[name].0.starts_with('<'), "{name}: {:?}", latch[name]);
    }
    for part in [
        "<synthetic pointer>",
        "<optimized out>",
        "corners = {{x = 2",
    ] {
        assert!(latch["head"].0.contains(part), "head: {:?}", latch["head"]);
    }
}

/// Structs, arrays and pointers expand; a large array pages; the unit's globals are
/// there; references end when the program runs on, and a reference never given is
/// refused.
#[test]
fn values_expand_page_and_expire() {
    require_harness!();
    let Stopped {
        target,
        mut dap,
        tid,
        frame,
        ..
    } = stopped("-O0");
    let found = scopes(&mut dap, frame);
    let locals = variables(&mut dap, found[1].1);

    let head = variables(&mut dap, locals["head"].2);
    let corners = variables(&mut dap, head["corners"].2);
    let second = variables(&mut dap, corners["[1]"].2);
    assert_eq!(second["y"].0, "5", "{second:?}");
    assert_eq!(head["layer"].0, "9", "a bitfield: {head:?}");
    let next = variables(&mut dap, head["next"].2);
    assert_eq!(next["*next"].1, "struct shape", "{next:?}");
    assert!(next["*next"].0.starts_with("{name = 0x"), "{next:?}");
    assert!(next["*next"].0.contains("\"tail\""), "{next:?}");
    let cursor = variables(&mut dap, locals["cursor"].2);
    assert_eq!(cursor["*cursor"].0, locals["head"].0, "*cursor is head");
    let pointer = variables(&mut dap, locals["pointer"].2);
    assert_eq!(pointer["*pointer"].0, "2");
    assert_eq!(locals["nothing"].2, 0, "a null pointer does not expand");

    // A page of an array: its elements start..start+count, no more.
    let page = dap.ok(
        "variables",
        json!({ "variablesReference": locals["numbers"].2, "start": 2, "count": 2 }),
    );
    let names: Vec<&str> = page["body"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["[2]", "[3]"], "{page}");
    let r = dap.ok("variables", json!({ "variablesReference": found[1].1 }));
    let numbers = r["body"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "numbers")
        .unwrap()
        .clone();
    assert_eq!(numbers["indexedVariables"], 5, "{numbers}");

    // "View as hex": integers in hexadecimal, in the type's own width, as gdb's p/x.
    let hex = dap.ok(
        "variables",
        json!({ "variablesReference": found[1].1, "format": { "hex": true } }),
    );
    let hex = rows(&hex);
    assert_eq!(hex["small"].0, "0xfff9", "{hex:?}");
    assert_eq!(hex["byte"].0, "0xc8 '\\310'", "{hex:?}");
    assert_eq!(hex["numbers"].0, "{0x1, 0x1, 0x2, 0x3, 0x5}", "{hex:?}");
    assert_eq!(
        hex["color"].0, "BLUE",
        "enumerators keep their names: {hex:?}"
    );
    let r = dap.ok(
        "evaluate",
        json!({ "expression": "global_count", "frameId": frame, "format": { "hex": true } }),
    );
    assert_eq!(r["body"]["result"], "0x2a", "{r}");

    let globals = variables(&mut dap, found[2].1);
    assert_eq!(globals["global_count"].0, "42", "{globals:?}");
    assert_eq!(globals["origin"].0, "{x = -1, y = 1}", "{globals:?}");
    assert!(
        globals["global_name"].0.ends_with(" \"global\""),
        "{globals:?}"
    );

    let never = dap.request("variables", json!({ "variablesReference": 999_999_999 }));
    assert_eq!(never["success"], false, "{never}");
    assert!(
        never["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not valid now")
            || never["body"]["error"]["format"]
                .as_str()
                .unwrap_or_default()
                .contains("not valid now"),
        "{never}"
    );
    // The program runs on: every reference of that stop is stale.
    let stale_reference = locals["head"].2;
    dap.ok("continue", json!({ "threadId": tid }));
    let _ = dap.next_event("stopped", secs(30));
    let stale = dap.request(
        "variables",
        json!({ "variablesReference": stale_reference }),
    );
    assert_eq!(stale["success"], false, "{stale}");
    detach(&mut dap, &target);
}

/// What the user types in the watch panel or the debug console, evaluated by latch in the
/// stopped frame and printed by gdb (`print`) at the same line: the same text. Errors
/// name their cause; calls are refused (latch never runs code in the target).
#[test]
fn expressions_agree_with_gdb() {
    require_harness!();
    let Stopped {
        binary,
        line,
        target,
        mut dap,
        frame,
        ..
    } = stopped("-O0");
    let expressions = [
        "head.corners[1].y",
        "cursor->next->name",
        "cursor->next->corners",
        "*pointer + 1",
        "numbers",
        "grid[1]",
        "&numbers[1]",
        "sizeof(struct shape)",
        "global_count * 2",
        "(unsigned char)-1",
        "where.x == 10 && flag",
        "number.f",
        "text",
        "color",
        "big / 3",
        "huge >> 60",
        "letter + 1",
        "origin",
        "tail.next == 0",
        "round * -3 % 5",
        "label[1]",
    ];
    let mut latch = Vec::new();
    for expression in expressions {
        let r = dap.request(
            "evaluate",
            json!({ "expression": expression, "frameId": frame, "context": "watch" }),
        );
        assert_eq!(r["success"], true, "{expression}: {r}");
        latch.push(r["body"]["result"].as_str().unwrap().to_string());
    }
    for (expression, why) in [
        ("nope", "no variable named 'nope' in this frame"),
        ("head.zz", "struct shape has no field named 'zz'"),
        ("numbers[9]", "out of bounds"),
        ("strlen(label)", "latch never runs code in the target"),
        ("x = 3", "assignment is not an expression here"),
    ] {
        let arguments = json!({ "expression": expression, "frameId": frame, "context": "repl" });
        assert_refused(&mut dap, "evaluate", arguments, why);
    }
    detach(&mut dap, &target);

    let prints: Vec<String> = expressions.iter().map(|e| format!("print {e}")).collect();
    let Some(text) = gdb_at(target.pid, &binary, line, &prints) else {
        return;
    };
    let printed: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('$'))
        .filter_map(|l| l.split_once(" = "))
        // gdb names a pointer's type before it: `(int *) 0x7ffc...`; latch's type is in
        // the answer's `type`.
        .map(|(_, value)| match value.strip_prefix('(') {
            Some(rest) if value.contains(") 0x") => rest
                .split_once(") ")
                .map_or(value.to_string(), |(_, v)| v.to_string()),
            _ => value.to_string(),
        })
        .collect();
    assert_eq!(printed.len(), expressions.len(), "gdb printed:\n{text}");
    for ((expression, ours), theirs) in expressions.iter().zip(&latch).zip(&printed) {
        assert_eq!(ours, theirs, "{expression}: latch (left) and gdb (right)");
    }
}

/// The memory view: a variable's `memoryReference` opens at its bytes (a pointer's at its
/// target); code under a breakpoint reads as the program's own bytes, not latch's `int3`,
/// in memory and in the disassembly view (objdump's instruction boundaries);
/// a read running into unmapped memory says how much it could not read; bad input is
/// refused with why.
#[test]
fn memory_reads_as_the_program_sees_it() {
    require_harness!();
    let Stopped {
        binary,
        target,
        mut dap,
        frame,
        ..
    } = stopped("-O0");
    let pid = target.pid;
    let found = scopes(&mut dap, frame);
    let r = dap.ok("variables", json!({ "variablesReference": found[1].1 }));
    let row = |name: &str| {
        r["body"]["variables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {r}"))
            .clone()
    };
    let read = |dap: &mut Dap, reference: &str, offset: i64, count: u64| -> (Vec<u8>, u64) {
        let m = dap.ok(
            "readMemory",
            json!({ "memoryReference": reference, "offset": offset, "count": count }),
        );
        let data = m["body"]["data"].as_str().unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap_or_else(|e| panic!("{m}: {e}"));
        (bytes, m["body"]["unreadableBytes"].as_u64().unwrap_or(0))
    };
    let numbers = row("numbers");
    let (bytes, _) = read(
        &mut dap,
        numbers["memoryReference"].as_str().unwrap(),
        0,
        20,
    );
    let ints: Vec<i32> = bytes
        .chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(ints, [1, 1, 2, 3, 5], "{numbers}");
    let cursor = row("cursor");
    let head = row("head");
    assert_eq!(
        cursor["memoryReference"], head["memoryReference"],
        "a pointer's view opens at its target"
    );

    // The breakpoint's own address: latch's int3 is in memory, the program's byte is read.
    let set = dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": source() }, "breakpoints": [{ "line": marker_line(&source(), "probe_stop") }] }),
    );
    let at = set["body"]["breakpoints"][0]["instructionReference"]
        .as_str()
        .unwrap()
        .to_string();
    let address = u64::from_str_radix(at.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(
        code::read_memory(pid, address, 1),
        [0xcc],
        "the breakpoint is in"
    );
    let (bytes, _) = read(&mut dap, &at, 0, 8);
    assert_eq!(
        bytes,
        code::file_bytes_at(pid, address, 8).1,
        "code as in the file"
    );

    // The disassembly view around the breakpoint: objdump's instruction boundaries, the
    // program's own bytes at the breakpoint, and the function and line of each.
    let d = dap.ok(
        "disassemble",
        json!({ "memoryReference": at, "instructionOffset": -4, "instructionCount": 10 }),
    );
    let instructions = d["body"]["instructions"].as_array().unwrap().clone();
    assert_eq!(instructions.len(), 10, "{d}");
    let base = code::load_base(pid, &binary);
    let starts: Vec<u64> = code::instruction_offsets(&binary, "probe")
        .into_iter()
        .map(|offset| base + offset)
        .collect();
    let listed: Vec<u64> = instructions
        .iter()
        .map(|i| {
            u64::from_str_radix(i["address"].as_str().unwrap().trim_start_matches("0x"), 16)
                .unwrap()
        })
        .collect();
    let from = starts
        .iter()
        .position(|a| *a == listed[0])
        .unwrap_or_else(|| panic!("{:#x} is not an instruction of probe: {d}", listed[0]));
    assert_eq!(listed, starts[from..from + 10], "objdump's boundaries");
    assert_eq!(listed[4], address, "the anchor is the fifth");
    let bytes_at = instructions[4]["instructionBytes"]
        .as_str()
        .unwrap()
        .replace(' ', "");
    let file_bytes: String = code::file_bytes_at(pid, address, bytes_at.len() / 2)
        .1
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        bytes_at, file_bytes,
        "the program's bytes, not the int3: {d}"
    );
    assert!(
        instructions.iter().all(|i| i["symbol"] == "probe"),
        "each names its function: {d}"
    );
    assert_eq!(
        instructions[4]["line"],
        marker_line(&source(), "probe_stop"),
        "{d}"
    );

    // Into unmapped memory: the readable part, then how much could not be read.
    let stack_end = code::mappings(pid)
        .into_iter()
        .find(|m| m.path == "[stack]")
        .map(|m| m.end)
        .expect("a [stack] mapping");
    let last = format!("{:#x}", stack_end - 16);
    let (bytes, unreadable) = read(&mut dap, &last, 0, 64);
    assert_eq!((bytes.len(), unreadable), (16, 48));

    for (arguments, why) in [
        (
            json!({ "memoryReference": "main", "count": 4 }),
            "is not an address",
        ),
        (
            json!({ "memoryReference": at, "count": 1u64 << 31 }),
            "more than latch reads at once",
        ),
    ] {
        let command = if arguments.get("count").is_some() {
            "readMemory"
        } else {
            "disassemble"
        };
        assert_refused(&mut dap, command, arguments, why);
    }
    detach(&mut dap, &target);
}

/// `setVariable` and `writeMemory`: a new value typed as the user would (a number, an
/// enumerator, a string into a `char` array, a member of a struct) is converted to the
/// variable's type, written, and read back in the answer and by `evaluate`; values that
/// do not fit, aggregates, bitfields and unknown names are refused with why. Bytes
/// written over latch's own breakpoint keep the breakpoint (it stops again) and the
/// code equals its file after the detach.
#[test]
fn variables_and_memory_can_be_set() {
    require_harness!();
    let Stopped {
        target,
        mut dap,
        tid,
        frame,
        ..
    } = stopped("-O0");
    let found = scopes(&mut dap, frame);
    let locals_ref = found[1].1;
    let set = |dap: &mut Dap, reference: i64, name: &str, value: &str| -> Value {
        dap.request(
            "setVariable",
            json!({ "variablesReference": reference, "name": name, "value": value }),
        )
    };
    let evaluate = |dap: &mut Dap, text: &str| -> String {
        let r = dap.ok("evaluate", json!({ "expression": text, "frameId": frame }));
        r["body"]["result"].as_str().unwrap().to_string()
    };
    for (name, typed, shown) in [
        ("small", "-8", "-8"),
        ("color", "RED", "RED"),
        ("text", "\"xyz\"", "\"xyz\""),
        ("ratio", "1.5", "1.5"),
        ("letter", "'z'", "122 'z'"),
        ("nothing", "0x10", "0x10"),
    ] {
        let r = set(&mut dap, locals_ref, name, typed);
        assert_eq!(r["success"], true, "{name} = {typed}: {r}");
        assert_eq!(r["body"]["value"], shown, "{name} = {typed}: {r}");
        assert_eq!(evaluate(&mut dap, name), shown, "{name} read back");
    }
    let locals = variables(&mut dap, locals_ref);
    assert_eq!(locals["small"].0, "-8", "{locals:?}");
    let head = locals["head"].2;
    let r = set(&mut dap, head, "scale", "0.75");
    assert_eq!(r["body"]["value"], "0.75", "{r}");
    assert_eq!(evaluate(&mut dap, "head.scale"), "0.75");
    for (reference, name, typed, why) in [
        (locals_ref, "small", "70000", "70000 does not fit in short"),
        (locals_ref, "head", "1", "set its members"),
        (head, "layer", "1", "bitfield"),
        (locals_ref, "nobody", "1", "no variable named 'nobody'"),
        (locals_ref, "small", "1 +", "cannot set 'small'"),
        (999_999_999, "small", "1", "not valid now"),
    ] {
        let r = set(&mut dap, reference, name, typed);
        assert_eq!(r["success"], false, "{name} = {typed}: {r}");
        let text = r["body"]["error"]["format"].as_str().unwrap_or_default();
        assert!(text.contains(why), "{name} = {typed}: {r}");
    }

    // writeMemory: numbers[0] through the array's memory reference.
    let r = dap.ok("variables", json!({ "variablesReference": locals_ref }));
    let numbers = r["body"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "numbers")
        .unwrap()
        .clone();
    let reference = numbers["memoryReference"].as_str().unwrap().to_string();
    let data = base64::engine::general_purpose::STANDARD.encode(9i32.to_le_bytes());
    let r = dap.ok(
        "writeMemory",
        json!({ "memoryReference": reference, "data": data }),
    );
    assert_eq!(r["body"]["bytesWritten"], 4, "{r}");
    assert_eq!(evaluate(&mut dap, "numbers[0]"), "9");
    assert_refused(
        &mut dap,
        "writeMemory",
        json!({ "memoryReference": "0x10", "data": data }),
        "cannot write memory at 0x10",
    );
    assert_refused(
        &mut dap,
        "writeMemory",
        json!({ "memoryReference": reference, "data": "%%%" }),
        "base64",
    );

    // The program's own bytes written back over the breakpoint: it stays in.
    let trace = dap.ok("stackTrace", json!({ "threadId": tid, "levels": 1 }));
    let pc = trace["body"]["stackFrames"][0]["instructionPointerReference"]
        .as_str()
        .unwrap()
        .to_string();
    let read = dap.ok("readMemory", json!({ "memoryReference": pc, "count": 8 }));
    let code_bytes = read["body"]["data"].as_str().unwrap().to_string();
    let r = dap.ok(
        "writeMemory",
        json!({ "memoryReference": pc, "data": code_bytes }),
    );
    assert_eq!(r["body"]["bytesWritten"], 8, "{r}");
    let again = dap.ok("readMemory", json!({ "memoryReference": pc, "count": 8 }));
    assert_eq!(
        again["body"]["data"], read["body"]["data"],
        "reads as the program's own"
    );
    dap.ok("continue", json!({ "threadId": tid }));
    let stopped = dap.next_event("stopped", secs(30));
    assert_eq!(stopped["body"]["reason"], "breakpoint", "{stopped}");
    detach(&mut dap, &target);
}

/// The debug console's completions: names in scope for a lone word (locals, arguments,
/// the unit's globals), the fields of the value before `.` or `->` (through a pointer
/// too), each with where the typed word starts; nothing without a frame.
#[test]
fn the_console_completes_names_and_fields() {
    require_harness!();
    let Stopped {
        target,
        mut dap,
        frame,
        ..
    } = stopped("-O0");
    let complete = |dap: &mut Dap, text: &str| -> Vec<(String, String, i64, i64)> {
        let r = dap.ok(
            "completions",
            json!({ "text": text, "column": text.encode_utf16().count() + 1, "frameId": frame }),
        );
        r["body"]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["label"].as_str().unwrap().to_string(),
                    t["type"].as_str().unwrap().to_string(),
                    t["start"].as_i64().unwrap(),
                    t["length"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let labels = |found: &[(String, String, i64, i64)]| -> Vec<String> {
        found.iter().map(|f| f.0.clone()).collect()
    };
    let heads = complete(&mut dap, "1 + hea");
    assert_eq!(labels(&heads), ["head"], "{heads:?}");
    assert_eq!(heads[0], ("head".into(), "variable".into(), 5, 3));
    let arguments = complete(&mut dap, "r");
    assert!(
        labels(&arguments).contains(&"round".to_string()),
        "{arguments:?}"
    );
    assert!(
        labels(&arguments).contains(&"ratio".to_string()),
        "{arguments:?}"
    );
    let globals = complete(&mut dap, "global_");
    assert_eq!(
        labels(&globals),
        ["global_count", "global_name"],
        "{globals:?}"
    );
    let fields = complete(&mut dap, "head.");
    assert_eq!(
        labels(&fields),
        ["name", "corners", "color", "visible", "layer", "scale", "next"],
        "{fields:?}"
    );
    let through_pointer = complete(&mut dap, "cursor->next->na");
    assert_eq!(
        through_pointer,
        [("name".into(), "field".into(), 15, 2)],
        "{through_pointer:?}"
    );
    let element = complete(&mut dap, "head.corners[1].");
    assert_eq!(labels(&element), ["x", "y"], "{element:?}");
    assert!(complete(&mut dap, "nosuch.").is_empty());
    let r = dap.ok("completions", json!({ "text": "hea", "column": 4 }));
    assert_eq!(r["body"]["targets"], json!([]), "{r}");
    detach(&mut dap, &target);
}

/// Strings are cut at `maxStringLength` bytes (`...` after the quote) and shown whole
/// below it; bad input to the values requests is refused with why and harms nothing: a
/// frame id of a stop that is over, a `count` of 2^31 (one page is answered, not two
/// billion rows), an unknown reference.
#[test]
fn long_strings_are_cut_where_asked_and_bad_requests_refused() {
    require_harness!();
    let binary = build("-O0");
    let line = marker_line(&source(), "probe_stop");
    let mut target = Target::spawn(Command::new(&binary));
    target.wait_ready(secs(10));
    let mut dap = Dap::start();
    dap.initialize();
    let r = dap.attach(json!({ "pid": target.pid, "maxStringLength": 3 }));
    assert_eq!(r["success"], true, "{r}");
    let (tid, frame) = stop_at_probe(&mut dap, line);
    let found = scopes(&mut dap, frame);
    let arguments = variables(&mut dap, found[0].1);
    assert!(
        arguments["label"].0.ends_with(" \"lab\"..."),
        "{:?}",
        arguments["label"]
    );
    let locals = variables(&mut dap, found[1].1);
    assert_eq!(
        locals["text"].0, "\"abc\"",
        "a string as long as the limit is whole"
    );

    // 2^31 elements asked of a 5-element array: the 5, at once.
    let page = dap.ok(
        "variables",
        json!({ "variablesReference": locals["numbers"].2, "start": 0, "count": 1u64 << 31 }),
    );
    assert_eq!(
        page["body"]["variables"].as_array().unwrap().len(),
        5,
        "{page}"
    );
    assert_refused(
        &mut dap,
        "variables",
        json!({ "variablesReference": 1i64 << 40 }),
        "not valid now",
    );
    // The stop ends: its frame ids are refused by scopes and evaluate (never taken for a
    // frame of the next stop).
    dap.ok("continue", json!({ "threadId": tid }));
    let _ = dap.next_event("stopped", secs(30));
    let trace = dap.ok("stackTrace", json!({ "threadId": tid, "levels": 1 }));
    let current = trace["body"]["stackFrames"][0]["id"].as_i64().unwrap();
    let stale = frame;
    assert_ne!(current, stale, "a frame id given out again");
    assert_refused(&mut dap, "scopes", json!({ "frameId": stale }), "frame");
    assert_refused(
        &mut dap,
        "evaluate",
        json!({ "expression": "round", "frameId": stale }),
        "frame",
    );
    let r = dap.ok(
        "evaluate",
        json!({ "expression": "round", "frameId": current }),
    );
    assert_eq!(r["body"]["result"], "7", "{r}");
    detach(&mut dap, &target);
}
