//! Rust views over DAP (issue 15), with rust-gdb as the oracle: the Rust values fixture
//! (tests/fixtures/values/views.rs, built with `rustc -g -C opt-level=0`) calls probe()
//! forever with the same values; latch stops there with a breakpoint and shows its locals
//! (`String`, `&str`, `Vec`, slices, `Option`/`Result` and other enums, `Rc`/`Arc`,
//! `HashMap`/`HashSet`, `Cell`/`RefCell`); after latch detaches, rust-gdb (gdb with
//! Rust's own pretty printers) attaches, stops at the same line with its own breakpoint,
//! and its `info locals` must say the same. Also: the views' children and `[raw]`,
//! indexing a `Vec` and a `HashMap` in expressions, and a garbage `Vec` shown as an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::require_harness;
use crate::support::fixtures::{source_dir, which};
use crate::support::stackfix::marker_line;
use crate::support::values::{self, child_names, rows, variables};
use crate::support::{secs, skip_or_fail, thread_id, Dap, Target};

fn source() -> PathBuf {
    source_dir().join("values/views.rs")
}

/// The fixture, built once per test run.
fn build() -> PathBuf {
    values::built_once("views_rs", |binary| {
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let mut rustc = Command::new(rustc);
        rustc
            .args(["-g", "-C", "opt-level=0", "--edition", "2021", "-o"])
            .arg(binary)
            .arg(source());
        rustc
    })
}

/// The fixture running, attached by latch and stopped at the marker line in probe().
struct Stopped {
    binary: PathBuf,
    line: u32,
    target: Target,
    dap: Dap,
    frame: i64,
    locals: i64,
}

fn stopped() -> Stopped {
    let binary = build();
    let line = marker_line(&source(), "probe_stop");
    let mut target = Target::spawn(Command::new(&binary));
    target.wait_ready(secs(10));
    let mut dap = Dap::attached(target.pid, false);
    let set = dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": source() }, "breakpoints": [{ "line": line }] }),
    );
    assert_eq!(set["body"]["breakpoints"][0]["verified"], true, "{set}");
    let stopped = dap.next_event("stopped", secs(30));
    let tid = thread_id(&stopped);
    let trace = dap.ok("stackTrace", json!({ "threadId": tid, "levels": 1 }));
    let frame = &trace["body"]["stackFrames"][0];
    assert_eq!(frame["name"], "views::probe", "{trace}");
    let frame = frame["id"].as_i64().unwrap();
    let scopes = dap.ok("scopes", json!({ "frameId": frame }));
    let locals = scopes["body"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Locals")
        .unwrap_or_else(|| panic!("no Locals scope: {scopes}"))["variablesReference"]
        .as_i64()
        .unwrap();
    Stopped {
        binary,
        line,
        target,
        dap,
        frame,
        locals,
    }
}

/// Breakpoints out, disconnect; the target runs on untraced with its code as in its files.
fn detach(dap: &mut Dap, target: &Target) {
    values::detach(dap, target, &source());
}

/// rust-gdb: gdb with the Rust toolchain's pretty printers. `None` (skipped or failed
/// loudly) without it.
fn rust_gdb() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let found =
        which("rust-gdb").or_else(|| home.map(|h| h.join("bin/rust-gdb")).filter(|p| p.is_file()));
    if found.is_none() || which("gdb").is_none() {
        skip_or_fail("rust-gdb or gdb not found (the oracle of the Rust views tests); install gdb and rustup's rust-gdb");
    }
    found
}

/// rust-gdb attached to `pid`, stopped at `line` of the fixture by its own breakpoint,
/// then running `commands`: what it printed after the stop.
fn rust_gdb_at(pid: i32, binary: &Path, line: u32, commands: &[String]) -> Option<String> {
    let gdb = rust_gdb()?;
    let place = format!("views.rs:{line}");
    Some(values::gdb_stopped_at(
        &gdb,
        pid,
        binary,
        &place,
        &[],
        commands,
    ))
}

/// The locals rust-gdb's pretty printers and Rust support show, with what latch shows the
/// same way (the others are asserted on their own below).
const AGREED: [&str; 27] = [
    "dog",
    "weak",
    "borrowed",
    "text",
    "word",
    "invalid",
    "numbers",
    "nothing",
    "tail",
    "some",
    "none",
    "reference",
    "fine",
    "failed",
    "circle",
    "square",
    "empty",
    "shared",
    "again",
    "atomic",
    "map",
    "set",
    "cell",
    "refcell",
    "dog_age",
    "round_trip",
    "unit",
];

#[test]
fn rust_locals_agree_with_rust_gdb() {
    require_harness!();
    let Stopped {
        binary,
        line,
        target,
        mut dap,
        locals,
        ..
    } = stopped();
    let latch = variables(&mut dap, locals);
    detach(&mut dap, &target);

    // What latch shows its own way, where rust-gdb has no answer (`&dyn Trait`: gdb
    // cannot read rustc's vtables) or shows a long string as `'x' <repeats 200 times>...`.
    let value = |name: &str| latch[name].0.clone();
    assert_eq!(value("long"), format!("\"{}\"...", "x".repeat(200)));
    // A Box is a pointer, in Rust's DWARF as in rust-gdb; it points to the heap, whose
    // addresses differ from call to call (its target is checked in the expansions test).
    assert!(value("boxed").starts_with("0x"), "{}", value("boxed"));
    let dog_address = latch["speaker"].0.split(':').next().unwrap().to_string();
    assert_eq!(
        value("speaker"),
        format!("{dog_address}: views::Dog {{age: 6}}")
    );
    assert!(dog_address.starts_with("@0x"), "{}", value("speaker"));
    // A Vec that was never set up: said so, not walked (its length is 2^61).
    assert_eq!(
        value("garbage"),
        "core::mem::manually_drop::ManuallyDrop<alloc::vec::Vec<i32, alloc::alloc::Global>> {value: core::mem::maybe_dangling::MaybeDangling<alloc::vec::Vec<i32, alloc::alloc::Global>> (<error: a Vec of length 2305843009213693952 and capacity 16: uninitialised or corrupted>)}"
    );
    assert_eq!(
        value("garbage_map"),
        "core::mem::manually_drop::ManuallyDrop<std::collections::hash::map::HashMap<u32, u32, core::hash::BuildHasherDefault<std::hash::random::DefaultHasher>, alloc::alloc::Global>> {value: core::mem::maybe_dangling::MaybeDangling<std::collections::hash::map::HashMap<u32, u32, core::hash::BuildHasherDefault<std::hash::random::DefaultHasher>, alloc::alloc::Global>> (HashMap(size=1125899906842624) <error: a table of 1125899906842624 items in 8 buckets: uninitialised or corrupted>)}"
    );

    let names: Vec<&String> = latch.keys().collect();
    let mut commands = vec!["info locals".to_string()];
    commands.extend(names.iter().map(|name| format!("whatis {name}")));
    let Some(gdb_text) = rust_gdb_at(target.pid, &binary, line, &commands) else {
        return;
    };
    let gdb: BTreeMap<&str, &str> = gdb_text
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .filter(|(name, _)| !name.contains(' ') && *name != "type")
        .collect();
    let gdb_names: Vec<&str> = gdb.keys().copied().collect();
    assert_eq!(
        names, gdb_names,
        "the locals: latch (left), rust-gdb (right)"
    );
    for name in AGREED {
        let ours = latch.get(name).map(|row| row.0.as_str());
        assert_eq!(
            ours,
            gdb.get(name).copied(),
            "{name}: latch (left), rust-gdb (right)"
        );
    }
    // The types, as rust-gdb's `whatis` names them, in the order asked.
    let gdb_types: Vec<&str> = gdb_text
        .lines()
        .filter_map(|line| line.strip_prefix("type = "))
        .collect();
    assert_eq!(
        gdb_types.len(),
        names.len(),
        "rust-gdb's whatis:\n{gdb_text}"
    );
    for ((name, (_, ours, _)), theirs) in latch.iter().zip(gdb_types) {
        // rust-gdb names a Box by the pointer it is made of (`*mut i32`); latch by
        // the type the program wrote, which its DWARF names.
        let theirs = match name.as_str() {
            "boxed" if theirs == "*mut i32" => "alloc::boxed::Box<i32, alloc::alloc::Global>",
            _ => theirs,
        };
        assert_eq!(
            ours, theirs,
            "the type of {name}: latch (left), rust-gdb (right)"
        );
    }
}

/// What a view expands to: its named children, `[raw]` with the fields it hides, and its
/// elements a page at a time; expressions index a `Vec`, a slice and a `HashMap` by key,
/// as rust-gdb's `print` does; a garbage `Vec` has no elements to walk.
#[test]
fn rust_views_expand_and_index_as_rust_gdb_prints() {
    require_harness!();
    let Stopped {
        binary,
        line,
        target,
        mut dap,
        frame,
        locals,
    } = stopped();
    let latch = variables(&mut dap, locals);

    let numbers = latch["numbers"].2;
    assert_eq!(
        child_names(&mut dap, numbers, None),
        ["len", "capacity", "[raw]", "[0]", "[1]", "[2]"]
    );
    let page = dap.ok(
        "variables",
        json!({ "variablesReference": numbers, "filter": "indexed", "start": 1, "count": 5 }),
    );
    let page = rows(&page);
    assert_eq!(page.keys().collect::<Vec<_>>(), ["[1]", "[2]"], "{page:?}");
    assert_eq!(
        (page["[1]"].0.as_str(), page["[1]"].1.as_str()),
        ("2", "i32")
    );
    let raw_reference = variables(&mut dap, numbers)["[raw]"].2;
    let raw = variables(&mut dap, raw_reference);
    assert_eq!(raw.keys().collect::<Vec<_>>(), ["buf", "len"], "{raw:?}");
    assert_eq!(raw["len"].0, "3");

    let shared = variables(&mut dap, latch["shared"].2);
    assert_eq!(
        (
            shared["value"].0.as_str(),
            shared["strong"].0.as_str(),
            shared["weak"].0.as_str()
        ),
        ("\"rc\"", "2", "1"),
        "{shared:?}"
    );
    let circle = variables(&mut dap, latch["circle"].2);
    assert_eq!(circle["radius"].0, "1.5", "{circle:?}");
    let failed = variables(&mut dap, latch["failed"].2);
    assert_eq!(failed["__0"].0, "\"bad\"", "{failed:?}");
    let refcell = variables(&mut dap, latch["refcell"].2);
    assert_eq!(refcell["borrow"].0, "1", "{refcell:?}");
    assert_eq!(refcell["value"].0, "Vec(size=2) = {4, 5}", "{refcell:?}");
    let map = variables(&mut dap, latch["map"].2);
    for (key, value) in [("one", "1"), ("two", "2"), ("three", "3")] {
        assert_eq!(map[&format!("[\"{key}\"]")].0, value, "{map:?}");
    }
    assert_eq!(map["len"].0, "3", "{map:?}");
    let speaker = variables(&mut dap, latch["speaker"].2);
    assert_eq!(speaker["*speaker"].0, "views::Dog {age: 6}", "{speaker:?}");
    assert_eq!(speaker["*speaker"].1, "views::Dog", "{speaker:?}");
    let boxed = variables(&mut dap, latch["boxed"].2);
    assert_eq!(boxed["*boxed"].0, "7", "{boxed:?}");
    let garbage = variables(&mut dap, latch["garbage"].2);
    let wrapped = variables(&mut dap, garbage["value"].2)["__0"].2;
    let inner = variables(&mut dap, wrapped);
    assert_eq!(
        inner.keys().collect::<Vec<_>>(),
        ["[raw]"],
        "a corrupt Vec has no elements: {inner:?}"
    );

    let expressions = [
        "numbers[2]",
        "tail[0]",
        "map[\"two\"]",
        "refcell",
        "some",
        "views::settings::LIMIT",
        "settings::NAME",
    ];
    let mut answers = Vec::new();
    for expression in expressions {
        let r = dap.ok(
            "evaluate",
            json!({ "expression": expression, "frameId": frame, "context": "watch" }),
        );
        answers.push(r["body"]["result"].as_str().unwrap().to_string());
    }
    for (expression, why) in [
        ("numbers[3]", "out of range"),
        ("map[\"four\"]", "no such key"),
    ] {
        let r = dap.request(
            "evaluate",
            json!({ "expression": expression, "frameId": frame, "context": "repl" }),
        );
        assert_eq!(r["success"], false, "{expression}: {r}");
        let text = r["body"]["error"]["format"].as_str().unwrap_or_default();
        assert!(text.contains(why), "{expression}: {r}");
    }
    detach(&mut dap, &target);

    // rust-gdb indexes slices but neither a Vec nor a HashMap (its Rust support has no
    // such operators): for those, the element its printer shows is the oracle.
    let prints = [
        "print tail[0]",
        "print refcell",
        "print some",
        "print numbers",
        "print map",
        "print views::settings::LIMIT",
        "print views::settings::NAME",
    ];
    let prints: Vec<String> = prints.iter().map(|p| p.to_string()).collect();
    let Some(text) = rust_gdb_at(target.pid, &binary, line, &prints) else {
        return;
    };
    let printed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('$'))
        .filter_map(|l| l.split_once(" = ").map(|(_, v)| v))
        .collect();
    assert_eq!(printed.len(), prints.len(), "rust-gdb printed:\n{text}");
    let elements: Vec<&str> = printed[3]
        .strip_prefix("Vec(size=3) = {")
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_else(|| panic!("rust-gdb's numbers: {}", printed[3]))
        .split(", ")
        .collect();
    let entry = printed[4]
        .split(", ")
        .find_map(|entry| entry.split_once("[\"two\"] = "))
        .map(|(_, value)| value.trim_end_matches('}'))
        .unwrap_or_else(|| panic!("rust-gdb's map: {}", printed[4]));
    let oracle = [
        elements[2],
        printed[0],
        entry,
        printed[1],
        printed[2],
        printed[5],
        printed[6],
    ];
    for ((expression, ours), theirs) in expressions.iter().zip(&answers).zip(oracle) {
        assert_eq!(ours, theirs, "{expression}: latch (left), rust-gdb (right)");
    }
}
