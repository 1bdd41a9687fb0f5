//! Globals of the module's other compile units (issue 15), with gdb as the oracle: the
//! two-files fixture (tests/fixtures/values/twofiles_*.c) stops in twofiles_main.c,
//! whose unit defines none of the names asked for. An expression finds another file's
//! global as gdb's `print` does (the external one over a file's static), a name only
//! several files' statics have is refused with why, and the "Module globals" scope
//! lists every file's globals, a page at a time, with gdb's values.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::require_harness;
use crate::support::fixtures::{out_dir, source_dir, which};
use crate::support::stackfix::marker_line;
use crate::support::values::{self, rows};
use crate::support::{secs, skip_or_fail, thread_id, Dap, Target};

const FILES: [&str; 3] = ["twofiles_main.c", "twofiles_a.c", "twofiles_b.c"];

/// The fixture's own globals as the module scope names them: a name several files
/// define is followed by its file.
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

fn source(file: &str) -> PathBuf {
    source_dir().join("values").join(file)
}

fn build() -> PathBuf {
    let dir = out_dir().join("values");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("twofiles");
    let built = Command::new("cc")
        .args(["-O0", "-g", "-pthread", "-Wall", "-o"])
        .arg(&binary)
        .args(FILES.map(source))
        .output()
        .expect("running cc");
    assert!(
        built.status.success(),
        "building the two-files fixture: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    binary
}

/// What gdb is asked for a row: `'file'::name` for a name several files define.
fn gdb_expression(shown: &str) -> String {
    match shown.strip_suffix(')').and_then(|s| s.split_once(" (")) {
        Some((name, file)) => format!("'{file}'::{name}"),
        None => shown.to_string(),
    }
}

#[test]
fn globals_of_other_files_agree_with_gdb() {
    require_harness!();
    let Some(gdb) = which("gdb") else {
        skip_or_fail("gdb not found (the oracle of the globals test); install gdb");
        return;
    };
    let binary = build();
    let main = source(FILES[0]);
    let line = marker_line(&main, "twofiles_stop");
    let mut target = Target::spawn(Command::new(&binary));
    target.wait_ready(secs(10));
    let mut dap = Dap::attached(target.pid, false);
    let set = dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": main }, "breakpoints": [{ "line": line }] }),
    );
    assert_eq!(set["body"]["breakpoints"][0]["verified"], true, "{set}");
    let stopped = dap.next_event("stopped", secs(30));
    let trace = dap.ok(
        "stackTrace",
        json!({ "threadId": thread_id(&stopped), "levels": 1 }),
    );
    let frame = trace["body"]["stackFrames"][0]["id"].as_i64().unwrap();
    assert_eq!(trace["body"]["stackFrames"][0]["name"], "probe", "{trace}");

    let scopes = |dap: &mut Dap| {
        let r = dap.ok("scopes", json!({ "frameId": frame }));
        r["body"]["scopes"].as_array().unwrap().clone()
    };
    let found = scopes(&mut dap);
    let names: Vec<&str> = found.iter().map(|s| s["name"].as_str().unwrap()).collect();
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
    let module = &found[3];
    assert_eq!(module["expensive"], true, "{module}");
    assert!(
        module.get("namedVariables").is_none(),
        "not counted before it is indexed: {module}"
    );
    let reference = module["variablesReference"].as_i64().unwrap();

    // Expressions: each of another file's globals, and arithmetic over them.
    let expressions = [
        "other_count",
        "level",
        "lonely",
        "a_pair",
        "a_pair.name",
        "b_name",
        "a_numbers[2] + other_count",
        "level * 2 + lonely",
    ];
    let mut ours = Vec::new();
    for expression in expressions {
        let r = dap.request(
            "evaluate",
            json!({ "expression": expression, "frameId": frame, "context": "watch" }),
        );
        assert_eq!(r["success"], true, "{expression}: {r}");
        ours.push(r["body"]["result"].as_str().unwrap().to_string());
    }
    for (expression, why) in [
        (
            "shared",
            "'shared' is a static of several files (twofiles_a.c, twofiles_b.c), none of \
             them this frame's: stop in code of the file whose 'shared' you mean",
        ),
        ("shared + 1", "'shared' is a static of several files"),
        (
            "no_such_global",
            "no variable named 'no_such_global' in this frame",
        ),
    ] {
        let r = dap.request(
            "evaluate",
            json!({ "expression": expression, "frameId": frame, "context": "repl" }),
        );
        assert_eq!(r["success"], false, "{expression}: {r}");
        let text = r["body"]["error"]["format"].as_str().unwrap_or_default();
        assert!(text.contains(why), "{expression}: {r}");
    }

    // The scope: every file's globals, by name then file, and a page is that page.
    let listing = rows(&dap.ok("variables", json!({ "variablesReference": reference })));
    let listed: Vec<(String, String)> = LISTED
        .iter()
        .map(|name| {
            let row = listing
                .get(*name)
                .unwrap_or_else(|| panic!("no {name} in {listing:?}"));
            (name.to_string(), row.0.clone())
        })
        .collect();
    let page = dap.ok(
        "variables",
        json!({ "variablesReference": reference, "start": 1, "count": 2 }),
    );
    assert_eq!(
        page["body"]["variables"].as_array().unwrap().len(),
        2,
        "{page}"
    );
    let again = scopes(&mut dap);
    assert_eq!(
        again[3]["namedVariables"].as_u64(),
        Some(listing.len() as u64),
        "counted once indexed: {again:?}"
    );
    // A struct of another file expands, its members read in that file's unit.
    let pair = values::variables(&mut dap, listing["a_pair"].2);
    assert_eq!(pair["weight"].0, "2.5", "{pair:?}");
    values::detach(&mut dap, &target, &main);

    let mut prints: Vec<String> = expressions.iter().map(|e| format!("print {e}")).collect();
    prints.extend(
        LISTED
            .iter()
            .map(|n| format!("print {}", gdb_expression(n))),
    );
    let place = format!("twofiles_main.c:{line}");
    let text = values::gdb_stopped_at(&gdb, target.pid, &binary, &place, &[], &prints);
    let printed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('$'))
        .filter_map(|l| l.split_once(" = ").map(|(_, v)| v))
        .collect();
    assert_eq!(printed.len(), prints.len(), "gdb printed:\n{text}");
    let (printed_expressions, printed_rows) = printed.split_at(expressions.len());
    for ((expression, ours), theirs) in expressions.iter().zip(&ours).zip(printed_expressions) {
        assert_eq!(ours, theirs, "{expression}: latch (left) and gdb (right)");
    }
    for ((name, ours), theirs) in listed.iter().zip(printed_rows) {
        assert_eq!(ours, theirs, "{name}: latch (left) and gdb (right)");
    }
}
