//! Go's views over DAP (issue 15), with the program itself as the oracle: the goviews
//! fixture (tests/fixtures/values/goviews, built with `-N -l` by Debian's Go, whose maps
//! are hash buckets, and by the current Go, whose maps are Swiss tables) prints what fmt
//! says of each value, then stops at views_stop forever. latch stops there and must show
//! every local as fmt did: strings, slices, maps, interfaces with their dynamic types,
//! channels' queued elements, structs and pointers; containers with garbage headers
//! show an error, bounded; `v[i]`, `m["key"]` and a package's globals evaluate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::fixtures::{go_build_with, go_tool, out_dir, source_dir};
use crate::support::stackfix::marker_line;
use crate::support::{secs, skip_or_fail, text, thread_id, Dap, Target};

fn source() -> PathBuf {
    source_dir().join("values/goviews")
}

/// The fixture built by `go`, once per test run and toolchain.
fn build(go: &Path, label: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(binary) = built.get(label) {
        return binary.clone();
    }
    let dir = out_dir().join("values");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(format!("goviews-{label}"));
    go_build_with(go, &source(), &binary, &["-gcflags=all=-N -l"], &[])
        .unwrap_or_else(|e| panic!("building the goviews fixture with {}: {e}", go.display()));
    built.insert(label.to_string(), binary.clone());
    binary
}

/// What the fixture printed before stopping: `oracle NAME TEXT` as name -> text, and
/// `entry MAP KEY VALUE` as map -> {(key, value)}.
#[derive(Default)]
struct Oracle {
    values: BTreeMap<String, String>,
    entries: BTreeMap<String, BTreeSet<(String, String)>>,
}

fn read_oracle(target: &mut Target) -> Oracle {
    let mut oracle = Oracle::default();
    loop {
        let line = target
            .next_line("", secs(10))
            .expect("the fixture's oracle lines");
        if let Some(rest) = line.strip_prefix("oracle ") {
            let (name, text) = rest.split_once(' ').unwrap();
            oracle.values.insert(name.into(), text.into());
            if name == "counter" {
                return oracle;
            }
        } else if let Some(rest) = line.strip_prefix("entry ") {
            let mut parts = rest.splitn(3, ' ');
            let (map, key, value) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            oracle
                .entries
                .entry(map.into())
                .or_default()
                .insert((key.into(), value.into()));
        }
    }
}

/// name -> (value, type, variablesReference, the whole row).
type Rows = BTreeMap<String, (String, String, i64, Value)>;

fn rows(response: &Value) -> Rows {
    response["body"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                (
                    v["value"].as_str().unwrap().to_string(),
                    v["type"].as_str().unwrap_or_default().to_string(),
                    v["variablesReference"].as_i64().unwrap(),
                    v.clone(),
                ),
            )
        })
        .collect()
}

fn variables(dap: &mut Dap, arguments: Value) -> Rows {
    rows(&dap.ok("variables", arguments))
}

fn evaluate(dap: &mut Dap, frame: i64, expression: &str) -> Value {
    dap.request(
        "evaluate",
        json!({ "expression": expression, "frameId": frame, "context": "watch" }),
    )
}

fn evaluated(dap: &mut Dap, frame: i64, expression: &str) -> String {
    let r = evaluate(dap, frame, expression);
    assert_eq!(r["success"], true, "{expression}: {r}");
    r["body"]["result"].as_str().unwrap().to_string()
}

/// `key: value` pairs of a map's summary `map[K]V [k: v, k: v]`.
fn summary_pairs(summary: &str, label: &str) -> BTreeSet<(String, String)> {
    let inner = summary
        .strip_prefix(&format!("{label} ["))
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a {label} summary: {summary}"));
    inner
        .split(", ")
        .map(|pair| {
            let (key, value) = pair.split_once(": ").unwrap();
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// A map's indexed children, `[key]` -> value, as (key, value) pairs.
fn child_pairs(dap: &mut Dap, reference: i64, count: u64) -> BTreeSet<(String, String)> {
    let children = variables(
        dap,
        json!({ "variablesReference": reference, "filter": "indexed", "start": 0, "count": count }),
    );
    children
        .into_iter()
        .map(|(name, (value, ..))| {
            let key = name
                .strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .unwrap_or_else(|| panic!("a map child named {name}"));
            (key.to_string(), value)
        })
        .collect()
}

/// The fixture built by `go`, running, read for its oracle, and attached by latch with a
/// breakpoint (with `extra`: a condition) verified at its stop line: (target, oracle,
/// session, main.go's path).
fn attached_with_breakpoint(
    go: &Path,
    label: &str,
    extra: Value,
) -> (Target, Oracle, Dap, PathBuf) {
    let binary = build(go, label);
    let main_go = source().join("main.go");
    let line = marker_line(&main_go, "views_stop");
    let mut target = Target::spawn(Command::new(&binary));
    target.wait_ready(secs(30));
    let oracle = read_oracle(&mut target);
    let mut dap = Dap::attached(target.pid, false);
    let path = main_go.canonicalize().unwrap();
    let mut breakpoint = json!({ "line": line });
    for (key, value) in extra.as_object().into_iter().flatten() {
        breakpoint[key] = value.clone();
    }
    let set = dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": path }, "breakpoints": [breakpoint] }),
    );
    assert_eq!(
        set["body"]["breakpoints"][0]["verified"], true,
        "{label}: {set}"
    );
    (target, oracle, dap, path)
}

/// Breakpoints out, disconnect; the Go program runs on (its runtime may have started
/// threads meanwhile) with its code as in its files.
fn finish(dap: &mut Dap, target: &Target, path: &Path) {
    dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": path }, "breakpoints": [] }),
    );
    dap.disconnect(json!({}));
    target.assert_runs_on_with_new_threads_allowed();
    text::assert_code_as_in_files(target.pid);
}

fn views_agree_with_fmt(go: &Path, label: &str) {
    let (target, oracle, mut dap, path) = attached_with_breakpoint(go, label, json!({}));
    let stopped = dap.next_event("stopped", secs(30));
    let tid = thread_id(&stopped);
    let trace = dap.ok("stackTrace", json!({ "threadId": tid, "levels": 1 }));
    let frame = &trace["body"]["stackFrames"][0];
    assert_eq!(frame["name"], "main.main", "{label}: {trace}");
    let frame = frame["id"].as_i64().unwrap();
    let scopes = dap.ok("scopes", json!({ "frameId": frame }));
    let locals_ref = scopes["body"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Locals")
        .unwrap_or_else(|| panic!("{label}: no Locals scope: {scopes}"))["variablesReference"]
        .as_i64()
        .unwrap();
    let locals = variables(&mut dap, json!({ "variablesReference": locals_ref }));

    // Every local, by name and type as the source declares it.
    let types: BTreeMap<&str, &str> = [
        ("greeting", "string"),
        ("numbers", "[]int"),
        ("words", "[]string"),
        ("none", "[]int"),
        ("ages", "map[string]int"),
        ("squares", "map[int]int"),
        ("nothing", "map[string]int"),
        ("err", "error"),
        ("noErr", "error"),
        ("boxed", "interface {}"),
        ("boxedPoint", "interface {}"),
        ("boxedPointer", "interface {}"),
        ("queue", "chan int"),
        ("origin", "main.point"),
        ("where", "*main.point"),
        ("header", "[3]uintptr"),
        ("bogus", "[]int"),
        ("fakePointer", "unsafe.Pointer"),
        ("garbage", "map[int]int"),
        ("p", "*main.point"),
        ("round", "int"),
        ("beat", "*uint64"),
        ("cyclePointer", "unsafe.Pointer"),
        ("cyclic", "map[int]int"),
        ("chanPointer", "unsafe.Pointer"),
        ("broken", "chan int"),
    ]
    .into_iter()
    .collect();
    let listed: BTreeMap<&str, &str> = locals
        .iter()
        .map(|(name, (_, ty, ..))| (name.as_str(), ty.as_str()))
        .collect();
    assert_eq!(
        listed, types,
        "{label}: latch's locals (left) and their declared types"
    );

    // Values fmt printed whole.
    for name in [
        "greeting",
        "numbers",
        "words",
        "none",
        "nothing",
        "err",
        "noErr",
        "boxed",
        "boxedPoint",
        "boxedPointer",
        "queue",
        "origin",
    ] {
        assert_eq!(
            locals[name].0, oracle.values[name],
            "{label}: {name} (latch, then fmt)"
        );
    }
    assert_eq!(
        evaluated(&mut dap, frame, "counter"),
        oracle.values["counter"],
        "{label}"
    );
    assert_eq!(
        evaluated(&mut dap, frame, "main.counter"),
        oracle.values["counter"],
        "{label}"
    );

    // Maps: the summary's pairs and the children are fmt's entries; the count is len.
    for (name, key_type) in [("ages", "map[string]int"), ("squares", "map[int]int")] {
        let (summary, _, reference, row) = &locals[name];
        let expected = &oracle.entries[name];
        let len = expected.len() as u64;
        assert_eq!(
            oracle.values[name],
            format!("{key_type} {len}"),
            "{label}: {name}"
        );
        assert_eq!(
            &summary_pairs(summary, key_type),
            expected,
            "{label}: {name}'s summary {summary}"
        );
        assert_eq!(row["indexedVariables"], len, "{label}: {name}: {row}");
        assert_eq!(
            &child_pairs(&mut dap, *reference, len),
            expected,
            "{label}: {name}'s children"
        );
        let named = variables(
            &mut dap,
            json!({ "variablesReference": reference, "filter": "named" }),
        );
        assert_eq!(
            named["len"].0,
            len.to_string(),
            "{label}: {name}: {named:?}"
        );
        assert!(named.contains_key("[raw]"), "{label}: {name}: {named:?}");
    }
    // A page of a map of several buckets (groups): the entries from start on, no more.
    let page = variables(
        &mut dap,
        json!({ "variablesReference": locals["squares"].2, "filter": "indexed", "start": 30, "count": 5 }),
    );
    assert_eq!(page.len(), 5, "{label}: {page:?}");
    for (key, (value, ..)) in &page {
        let n: u64 = key.trim_matches(['[', ']']).parse().unwrap();
        assert_eq!(value, &(n * n).to_string(), "{label}: squares{key}");
    }

    // A channel's queued elements, oldest first (the ring starts past index 0).
    let queued = variables(
        &mut dap,
        json!({ "variablesReference": locals["queue"].2, "filter": "indexed" }),
    );
    let queued: Vec<&str> = ["[0]", "[1]"]
        .iter()
        .map(|i| queued[*i].0.as_str())
        .collect();
    assert_eq!(queued.join(","), "6,7", "{label}");

    // An interface expands to its dynamic value; a pointer to its target.
    let data = variables(&mut dap, json!({ "variablesReference": locals["err"].2 }));
    assert_eq!(data["data"].1, "*errors.errorString", "{label}: {data:?}");
    let data = variables(
        &mut dap,
        json!({ "variablesReference": locals["boxedPoint"].2 }),
    );
    assert_eq!(data["data"].1, "main.point", "{label}: {data:?}");
    let (_, inside) = oracle.values["boxedPoint"].split_once(") ").unwrap();
    assert_eq!(data["data"].0, inside, "{label}");
    let pointee = variables(&mut dap, json!({ "variablesReference": locals["where"].2 }));
    assert_eq!(pointee["*where"].0, oracle.values["origin"], "{label}");
    let pointee = variables(&mut dap, json!({ "variablesReference": locals["p"].2 }));
    let (_, inside) = oracle.values["boxedPointer"].split_once(") *").unwrap();
    assert_eq!(pointee["*p"].0, inside, "{label}");

    // Garbage headers: an error, read in bounded time, never a walk of 2^60 elements.
    assert!(
        locals["bogus"].0.contains("<error: a corrupt slice"),
        "{label}: {}",
        locals["bogus"].0
    );
    assert!(
        locals["garbage"].0.contains("<error: a corrupt map"),
        "{label}: {}",
        locals["garbage"].0
    );
    let garbage = variables(
        &mut dap,
        json!({ "variablesReference": locals["garbage"].2, "filter": "indexed", "start": 0, "count": 3 }),
    );
    assert!(
        garbage
            .values()
            .any(|(value, ..)| value.contains("<error: a corrupt map")),
        "{label}: {garbage:?}"
    );

    // A bucket that is its own overflow (the old layout) ends in an error after its
    // entries; a Swiss group has no chain: its 8 entries, and what the count says.
    let cyclic = &locals["cyclic"].0;
    let pages = variables(
        &mut dap,
        json!({ "variablesReference": locals["cyclic"].2, "filter": "indexed", "start": 0, "count": 100 }),
    );
    let errors: Vec<&String> = pages
        .values()
        .map(|(value, ..)| value)
        .filter(|value| value.starts_with("<error:"))
        .collect();
    assert_eq!(
        pages.len(),
        9,
        "{label}: 8 entries and why no more: {pages:?}"
    );
    if label == "debian" {
        assert!(
            cyclic.contains("<error: a cycle in an overflow chain at 0x"),
            "{label}: {cyclic}"
        );
        assert!(
            errors[0].contains("a cycle in an overflow chain"),
            "{label}: {errors:?}"
        );
    } else {
        assert!(cyclic.ends_with(", ...]"), "{label}: {cyclic}");
        assert!(
            errors[0].contains("says it has 100 entries; 8 were found"),
            "{label}: {errors:?}"
        );
    }
    assert!(
        locals["broken"]
            .0
            .contains("<error: a corrupt channel: 10 of 4 queued"),
        "{label}: {}",
        locals["broken"].0
    );

    // Indexing in expressions: a slice's element, a map's value by a literal key.
    assert_eq!(evaluated(&mut dap, frame, "numbers[2]"), "3", "{label}");
    assert_eq!(evaluated(&mut dap, frame, "words[1]"), "\"bc\"", "{label}");
    assert_eq!(evaluated(&mut dap, frame, "ages[\"bob\"]"), "42", "{label}");
    assert_eq!(evaluated(&mut dap, frame, "squares[7]"), "49", "{label}");
    assert_eq!(evaluated(&mut dap, frame, "queue[1]"), "7", "{label}");
    for (expression, why) in [
        ("numbers[3]", "out of range"),
        ("ages[\"nobody\"]", "no key"),
    ] {
        let r = evaluate(&mut dap, frame, expression);
        assert_eq!(r["success"], false, "{label}: {expression}: {r}");
        assert!(
            r["body"]["error"]["format"]
                .as_str()
                .unwrap_or_default()
                .contains(why),
            "{label}: {expression}: {r}"
        );
    }

    finish(&mut dap, &target, &path);
}

#[test]
fn go_views_agree_with_fmt_debian_go() {
    require_harness!();
    match go_tool() {
        Ok(go) => views_agree_with_fmt(&go, "debian"),
        Err(why) => skip_or_fail(&format!("Go views cannot be tested: {why}")),
    }
}

#[test]
fn go_views_agree_with_fmt_current_go() {
    require_harness!();
    match std::env::var_os("LATCH_CURRENT_GO") {
        Some(go) => views_agree_with_fmt(Path::new(&go), "current"),
        None => skip_or_fail("LATCH_CURRENT_GO does not name a current Go (see .ci/run)"),
    }
}

/// A condition in Go code, decided on the ptrace thread at each hit from the goroutine's
/// own frame (Go's frame base is the CFA): it reads a local that changes (`round` goes
/// 0, 2, 4, ...), a global of the package by its short name, and a slice element, so it
/// stops at every other round only.
fn go_conditions_are_decided_at_the_hit(go: &Path, label: &str) {
    let condition = "round % 4 == 2 && counter == 7 && numbers[1] == 2";
    let (target, _, mut dap, path) =
        attached_with_breakpoint(go, label, json!({ "condition": condition }));
    let mut rounds = Vec::new();
    for _ in 0..2 {
        let stopped = dap.next_event("stopped", secs(30));
        let tid = thread_id(&stopped);
        let trace = dap.ok("stackTrace", json!({ "threadId": tid, "levels": 1 }));
        let frame = trace["body"]["stackFrames"][0]["id"].as_i64().unwrap();
        let round: i64 = evaluated(&mut dap, frame, "round").parse().unwrap();
        assert_eq!(
            round % 4,
            2,
            "{label}: stopped where the condition is false"
        );
        rounds.push(round);
        dap.ok("continue", json!({ "threadId": tid }));
    }
    assert_eq!(
        rounds[1],
        rounds[0] + 4,
        "{label}: a stop where it held was missed"
    );
    finish(&mut dap, &target, &path);
}

#[test]
fn go_conditions_are_decided_at_the_hit_debian_go() {
    require_harness!();
    match go_tool() {
        Ok(go) => go_conditions_are_decided_at_the_hit(&go, "debian"),
        Err(why) => skip_or_fail(&format!("Go conditions cannot be tested: {why}")),
    }
}

#[test]
fn go_conditions_are_decided_at_the_hit_current_go() {
    require_harness!();
    match std::env::var_os("LATCH_CURRENT_GO") {
        Some(go) => go_conditions_are_decided_at_the_hit(Path::new(&go), "current"),
        None => skip_or_fail("LATCH_CURRENT_GO does not name a current Go (see .ci/run)"),
    }
}
