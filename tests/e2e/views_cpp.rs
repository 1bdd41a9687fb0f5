//! C++ views over DAP (issue 15), with gdb and its libstdc++ pretty printers as the
//! oracle: the containers fixture (tests/fixtures/values/containers.cpp, built with g++)
//! calls probe() forever with the same strings, vectors, maps, sets, hash tables, smart
//! pointers, optionals and variants; latch stops there with a breakpoint and shows the
//! frame's locals; after latch detaches, gdb attaches, stops at the same line with its
//! own breakpoint, and its `info locals` (printed by libstdc++'s printers, which Debian's
//! gdb loads for any program linked with libstdc++) must say the same, local by local.
//! Also: expanding a container into its elements and its `[raw]` fields, and indexing
//! one in an expression.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::require_harness;
use crate::support::fixtures::{source_dir, which};
use crate::support::stackfix::marker_line;
use crate::support::values::{self, child_names, rows, variables, Rows};
use crate::support::{secs, skip_or_fail, thread_id, Dap, Target};

fn source() -> PathBuf {
    source_dir().join("values/containers.cpp")
}

/// The fixture built with `optimization`, once per test run; `None` (skipped or failed
/// loudly) without g++.
fn build(optimization: &str) -> Option<PathBuf> {
    if which("g++").is_none() {
        skip_or_fail("g++ not found (it builds the C++ views fixture); install g++");
        return None;
    }
    Some(values::built_once(
        &format!("containers{optimization}"),
        |binary| {
            let mut gxx = Command::new("g++");
            gxx.args([optimization, "-g", "-pthread", "-Wall", "-o"])
                .arg(binary)
                .arg(source());
            gxx
        },
    ))
}

/// gdb attached to `pid`, stopped at `line` of the fixture by its own breakpoint, then
/// running `commands`: what it printed after the stop. `None` (skipped or failed
/// loudly) without gdb.
fn gdb_at(pid: i32, binary: &Path, line: u32, commands: &[String]) -> Option<String> {
    let Some(gdb) = which("gdb") else {
        skip_or_fail("gdb not found (the oracle of the C++ views tests); install gdb");
        return None;
    };
    let place = format!("containers.cpp:{line}");
    Some(values::gdb_stopped_at(
        &gdb,
        pid,
        binary,
        &place,
        &[],
        commands,
    ))
}

/// Between gdb's `info locals` and its `whatis` answers.
const TYPES_MARK: &str = "--- types ---";

/// gdb's `info locals` at the marker line (name -> value), and `whatis/r` of each of
/// `names` (name -> type: the raw type, as DWARF names it, without the default template
/// arguments libstdc++'s type printers leave out). gdb must have printed the values
/// with libstdc++'s printers, or it is no oracle for these views.
type GdbLocals = (BTreeMap<String, String>, BTreeMap<String, String>);

fn gdb_locals(pid: i32, binary: &Path, line: u32, names: &[&str]) -> Option<GdbLocals> {
    let mut commands = vec!["info locals".to_string(), format!("echo {TYPES_MARK}\\n")];
    commands.extend(names.iter().map(|name| format!("whatis/r {name}")));
    let text = gdb_at(pid, binary, line, &commands)?;
    let (values, types) = text
        .split_once(TYPES_MARK)
        .unwrap_or_else(|| panic!("gdb did not answer every command:\n{text}"));
    let locals: BTreeMap<String, String> = values
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .filter(|(name, _)| !name.contains(' '))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let types: Vec<&str> = types
        .lines()
        .filter_map(|line| line.strip_prefix("type = "))
        .collect();
    assert_eq!(types.len(), names.len(), "gdb's whatis answers:\n{text}");
    let types = names
        .iter()
        .zip(types)
        .map(|(name, ty)| (name.to_string(), ty.to_string()))
        .collect();
    assert!(
        locals
            .get("numbers")
            .is_some_and(|v| v.starts_with("std::vector of length")),
        "gdb did not load libstdc++'s pretty printers:\n{text}"
    );
    Some((locals, types))
}

/// The fixture running, attached by latch and stopped at the marker line in probe().
struct Stopped {
    binary: PathBuf,
    line: u32,
    target: Target,
    dap: Dap,
    frame: i64,
}

fn stopped(optimization: &str) -> Option<Stopped> {
    let binary = build(optimization)?;
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
    assert_eq!(frame["name"], "probe(int)", "{trace}");
    let frame = frame["id"].as_i64().unwrap();
    Some(Stopped {
        binary,
        line,
        target,
        dap,
        frame,
    })
}

/// The frame's locals, as latch lists them.
fn locals(dap: &mut Dap, frame: i64) -> Rows {
    let r = dap.ok("scopes", json!({ "frameId": frame }));
    let scope = r["body"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Locals")
        .unwrap_or_else(|| panic!("no Locals scope: {r}"))
        .clone();
    variables(dap, scope["variablesReference"].as_i64().unwrap())
}

/// Breakpoints out, disconnect; the target runs on untraced with its code as in its files.
fn detach(dap: &mut Dap, target: &Target) {
    values::detach(dap, target, &source());
}

/// `text` with every hexadecimal address replaced by `0x?`.
fn without_addresses(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at]);
        out.push_str("0x?");
        rest = rest[at + 2..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    out
}

/// Every local of probe() reads as gdb's libstdc++ printers print it, and has the type
/// gdb names (`whatis/r`: qualified, no `class` keyword, pointers to members). Built
/// with `optimization`; a local gdb cannot read (`<optimized out>`) latch cannot either.
fn containers_agree_with_gdb(optimization: &str) {
    let Some(Stopped {
        binary,
        line,
        target,
        mut dap,
        frame,
    }) = stopped(optimization)
    else {
        return;
    };
    let latch = locals(&mut dap, frame);
    detach(&mut dap, &target);
    let names: Vec<&str> = latch.keys().map(String::as_str).collect();
    let Some((gdb, gdb_types)) = gdb_locals(target.pid, &binary, line, &names) else {
        return;
    };
    assert!(gdb.len() >= 40, "gdb's view: {gdb:#?}");
    // The fixture's heap blocks alternate between two addresses from one call of probe()
    // to the next (frees in reverse order of allocation), so the smart pointers' addresses
    // are compared apart: as text without them here, and what they point to below.
    let latch_values: BTreeMap<&str, String> = latch
        .iter()
        .map(|(name, (value, _, _))| (name.as_str(), without_addresses(value)))
        .collect();
    let gdb_values: BTreeMap<&str, String> = gdb
        .iter()
        .map(|(n, v)| (n.as_str(), without_addresses(v)))
        .collect();
    assert_eq!(
        latch_values, gdb_values,
        "latch (left) and gdb (right) differ ({optimization})"
    );
    let types: BTreeMap<String, String> = latch
        .iter()
        .map(|(name, (_, ty, _))| (name.clone(), ty.clone()))
        .collect();
    assert_eq!(
        types, gdb_types,
        "latch's types (left) and gdb's whatis/r (right) differ ({optimization})"
    );
}

#[test]
fn containers_agree_with_gdbs_printers_at_o0() {
    require_harness!();
    containers_agree_with_gdb("-O0");
}

#[test]
fn containers_agree_with_gdbs_printers_at_o2() {
    require_harness!();
    containers_agree_with_gdb("-O2");
}

/// Containers expand into their elements (paged), a map into `[key] = value`, smart
/// pointers into `get()`, each with its `[raw]` fields; `v[i]` and `m[key]` index them in
/// expressions, and gdb (whose libstdc++ xmethods index vectors and arrays) agrees.
#[test]
fn containers_expand_and_index() {
    require_harness!();
    let Some(Stopped {
        binary,
        line,
        target,
        mut dap,
        frame,
    }) = stopped("-O0")
    else {
        return;
    };
    let locals = locals(&mut dap, frame);
    let numbers = variables(&mut dap, locals["numbers"].2);
    assert_eq!(
        child_names(&mut dap, locals["numbers"].2, None),
        ["[raw]", "[0]", "[1]", "[2]"]
    );
    assert_eq!(numbers["[2]"].0, "3", "{numbers:?}");
    let page = dap.ok(
        "variables",
        json!({ "variablesReference": locals["numbers"].2, "filter": "indexed", "start": 1, "count": 5 }),
    );
    assert_eq!(
        rows(&page).keys().collect::<Vec<_>>(),
        ["[1]", "[2]"],
        "{page}"
    );
    let raw = variables(&mut dap, numbers["[raw]"].2);
    assert!(
        raw.len() == 1 && raw.keys().all(|k| k.contains("_Vector_base<int")),
        "[raw] is the vector's own fields: {raw:?}"
    );

    let names = variables(&mut dap, locals["names"].2);
    assert_eq!(names["[2]"].0, "\"two\"", "{names:?}");
    assert_eq!(
        child_names(&mut dap, locals["names"].2, Some("indexed")),
        ["[1]", "[2]", "[3]"]
    );
    let counts = variables(&mut dap, locals["counts"].2);
    assert_eq!(counts["[\"apples\"]"].0, "3", "{counts:?}");
    let bits = variables(&mut dap, locals["bits"].2);
    assert_eq!(bits["[1]"].0, "false", "{bits:?}");
    let owned = variables(&mut dap, locals["owned"].2);
    let pointee = variables(&mut dap, owned["get()"].2);
    let maybe = variables(&mut dap, locals["maybe"].2);
    assert_eq!(maybe["[contained value]"].0, "5", "{maybe:?}");

    let evaluate = |dap: &mut Dap, expression: &str| {
        let r = dap.request(
            "evaluate",
            json!({ "expression": expression, "frameId": frame, "context": "watch" }),
        );
        assert_eq!(r["success"], true, "{expression}: {r}");
        r["body"]["result"].as_str().unwrap().to_string()
    };
    // A deque whose elements start at the start of its first buffer (`line`) indexes
    // as gdb's xmethod does. That xmethod ignores where in its first buffer a deque
    // starts (libstdc++ 12's xmethods.py), so `long_line`, which starts at element 11 of
    // its first buffer (16 strings to a buffer), is checked against gdb's printer.
    let indexed = ["numbers[1]", "triple[2]", "words[0]", "bits[2]", "line[1]"];
    let latch: Vec<String> = indexed.iter().map(|e| evaluate(&mut dap, e)).collect();
    let long_line_at = [0, 4, 5, 20, 21, 24];
    let long_line: Vec<String> = long_line_at
        .iter()
        .map(|i| evaluate(&mut dap, &format!("long_line[{i}]")))
        .collect();
    // A deque's page of children crosses buffers as indexing does.
    let page = dap.ok(
        "variables",
        json!({ "variablesReference": locals["long_line"].2, "filter": "indexed", "start": 3, "count": 3 }),
    );
    let page: Vec<String> = page["body"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            format!(
                "{} = {}",
                v["name"].as_str().unwrap(),
                v["value"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        page,
        [3, 4, 5].map(|i| format!("[{i}] = {}", evaluate(&mut dap, &format!("long_line[{i}]"))))
    );
    // A list's elements and a std::string-keyed map's values by key, which gdb cannot
    // index (no xmethod, no operator[] to call): checked against its printed entries.
    let queue_last = evaluate(&mut dap, "queue[2]");
    let by_key = [
        ("ages", "bob", evaluate(&mut dap, "ages[\"bob\"]")),
        ("counts", "apples", evaluate(&mut dap, "counts[\"apples\"]")),
    ];
    let r = dap.request(
        "evaluate",
        json!({ "expression": "ages[\"carol\"]", "frameId": frame, "context": "watch" }),
    );
    assert_eq!(r["success"], false, "{r}");
    assert!(r.to_string().contains("no entry with key"), "{r}");
    // A map by key: gdb cannot (no operator[] to call), the fixture's source says.
    assert_eq!(evaluate(&mut dap, "names[3]"), "\"three\"");
    assert_eq!(evaluate(&mut dap, "pairs[2]"), "20");
    let r = dap.request(
        "evaluate",
        json!({ "expression": "numbers[3]", "frameId": frame, "context": "watch" }),
    );
    assert_eq!(r["success"], false, "{r}");
    assert!(r.to_string().contains("out of range"), "{r}");
    detach(&mut dap, &target);

    let mut commands: Vec<String> = indexed.iter().map(|e| format!("print {e}")).collect();
    commands.push("print *owned".into());
    commands.extend(
        [
            "print queue",
            "print ages",
            "print counts",
            "print long_line",
        ]
        .map(String::from),
    );
    let Some(text) = gdb_at(target.pid, &binary, line, &commands) else {
        return;
    };
    let printed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('$'))
        .filter_map(|l| l.split_once(" = ").map(|(_, v)| v))
        .collect();
    assert_eq!(printed.len(), indexed.len() + 5, "gdb printed:\n{text}");
    let gdb_long_line: Vec<&str> = printed[indexed.len() + 4]
        .split_once('{')
        .and_then(|(_, elements)| elements.strip_suffix('}'))
        .unwrap_or_else(|| panic!("gdb printed:\n{text}"))
        .split(", ")
        .collect();
    for (i, ours) in long_line_at.iter().zip(&long_line) {
        assert_eq!(
            ours, gdb_long_line[*i],
            "long_line[{i}]: latch (left), gdb's printer (right)"
        );
    }
    assert!(
        printed[indexed.len() + 1].contains(&format!("[2] = {queue_last}}}")),
        "queue[2] is {queue_last}; gdb printed:\n{text}"
    );
    for (i, (map, key, ours)) in by_key.iter().enumerate() {
        let theirs = printed[indexed.len() + 2 + i];
        assert!(
            theirs.contains(&format!("[\"{key}\"] = {ours}")),
            "{map}[\"{key}\"] is {ours}; gdb printed {theirs}"
        );
    }
    for ((expression, ours), theirs) in indexed.iter().zip(&latch).zip(&printed) {
        assert_eq!(ours, theirs, "{expression}: latch (left) and gdb (right)");
    }
    assert_eq!(
        pointee.values().next().map(|(v, _, _)| v.as_str()),
        printed.get(indexed.len()).copied(),
        "*owned: {pointee:?}"
    );
}
