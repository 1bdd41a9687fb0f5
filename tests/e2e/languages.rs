//! Breakpoints by the names C++, Rust and Go programmers write (a namespace or crate
//! path or none, a template instance, a method), and a line breakpoint in each: each
//! stops the thread that calls the function, at the function's first line, and the
//! stack names it as the language does. Go with Debian's toolchain and the current one.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::require_harness;
use crate::support::fixtures::{go_build_with, go_tool, out_dir, source_dir};
use crate::support::stackfix::marker_line;
use crate::support::{secs, skip_or_fail, text, Dap, Target};

fn run(cmd: &mut Command) {
    let done = cmd.output().expect("run the compiler");
    assert!(
        done.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// A function breakpoint (the name as typed, the frame name expected, the marker of
/// the line it stops at).
struct Case {
    query: &'static str,
    frame: &'static str,
    marker: &'static str,
}

/// Each case in turn: set it alone, see it hit on the main thread at its line, clear
/// it; then a line breakpoint on the first case's line. The target runs on after.
fn breaks_by_name(binary: &Path, source: &Path, cases: &[Case]) {
    let mut target = Target::spawn(Command::new(binary));
    target.wait_ready(secs(30));
    let mut dap = Dap::attached(target.pid, false);
    let top = |dap: &mut Dap, tid: &serde_json::Value| {
        let trace = dap.ok("stackTrace", json!({ "threadId": tid, "levels": 1 }));
        let frame = trace["body"]["stackFrames"][0].clone();
        (
            frame["name"].as_str().unwrap_or_default().to_string(),
            frame["line"].as_u64().unwrap_or(0) as u32,
        )
    };
    for case in cases {
        let set = dap.ok(
            "setFunctionBreakpoints",
            json!({ "breakpoints": [{ "name": case.query }] }),
        );
        let breakpoint = &set["body"]["breakpoints"][0];
        assert_eq!(breakpoint["verified"], true, "{}: {set}", case.query);
        let stopped = dap.next_event("stopped", secs(10));
        assert_eq!(
            stopped["body"]["reason"], "function breakpoint",
            "{stopped}"
        );
        assert_eq!(stopped["body"]["hitBreakpointIds"][0], breakpoint["id"]);
        let tid = stopped["body"]["threadId"].clone();
        let (name, line) = top(&mut dap, &tid);
        assert!(
            name.starts_with(case.frame),
            "{}: frame 0 is {name}, not {}",
            case.query,
            case.frame
        );
        assert_eq!(line, marker_line(source, case.marker), "{}", case.query);
        dap.ok("setFunctionBreakpoints", json!({ "breakpoints": [] }));
        dap.ok("continue", json!({ "threadId": tid }));
    }
    let line = marker_line(source, cases[0].marker);
    let path = source.canonicalize().unwrap();
    let set = dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": path }, "breakpoints": [{ "line": line }] }),
    );
    assert_eq!(set["body"]["breakpoints"][0]["verified"], true, "{set}");
    assert_eq!(set["body"]["breakpoints"][0]["line"], line, "{set}");
    let stopped = dap.next_event("stopped", secs(10));
    assert_eq!(stopped["body"]["reason"], "breakpoint", "{stopped}");
    let tid = stopped["body"]["threadId"].clone();
    assert_eq!(top(&mut dap, &tid).1, line);
    dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": path }, "breakpoints": [] }),
    );
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());
    text::assert_released(target.pid);
    text::assert_code_as_in_files(target.pid);
}

fn fixture(name: &str) -> PathBuf {
    source_dir().join("breakpoints").join(name)
}

#[test]
fn cpp_functions_by_namespace_template_and_method() {
    require_harness!();
    let binary = out_dir().join("langs_cpp");
    run(Command::new("c++")
        .args(["-O0", "-g", "-o"])
        .arg(&binary)
        .arg(fixture("langs.cpp")));
    breaks_by_name(
        &binary,
        &fixture("langs.cpp"),
        &[
            Case {
                query: "area",
                frame: "shapes::area<int>",
                marker: "cpp_area",
            },
            Case {
                query: "shapes::Counter::add",
                frame: "shapes::Counter::add",
                marker: "cpp_add",
            },
        ],
    );
}

#[test]
fn rust_functions_with_and_without_the_crate_path() {
    require_harness!();
    let binary = out_dir().join("langs_rs");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    run(Command::new(rustc)
        .args([
            "-g",
            "-C",
            "opt-level=0",
            "--edition",
            "2021",
            "--crate-name",
            "langs_rs",
            "-o",
        ])
        .arg(&binary)
        .arg(fixture("langs.rs")));
    breaks_by_name(
        &binary,
        &fixture("langs.rs"),
        &[
            Case {
                query: "geometry::perimeter",
                frame: "langs_rs::geometry::perimeter",
                marker: "rs_perimeter",
            },
            Case {
                query: "langs_rs::geometry::Square::area",
                frame: "langs_rs::geometry::Square::area",
                marker: "rs_area",
            },
        ],
    );
}

fn go_cases() -> [Case; 2] {
    [
        Case {
            query: "main.(*Counter).Add",
            frame: "main.(*Counter).Add",
            marker: "go_add",
        },
        Case {
            query: "main.area",
            frame: "main.area",
            marker: "go_area",
        },
    ]
}

fn go_case(go: &Path, label: &str) {
    let binary = out_dir().join(format!("langs_go_{label}"));
    go_build_with(go, &fixture("go"), &binary, &[], &[])
        .unwrap_or_else(|e| panic!("building the Go fixture with {}: {e}", go.display()));
    breaks_by_name(&binary, &fixture("go/main.go"), &go_cases());
}

#[test]
fn go_functions_and_methods_debian_go() {
    require_harness!();
    match go_tool() {
        Ok(go) => go_case(&go, "debian"),
        Err(why) => skip_or_fail(&format!("Go breakpoints cannot be tested: {why}")),
    }
}

#[test]
fn go_functions_and_methods_current_go() {
    require_harness!();
    match std::env::var_os("LATCH_CURRENT_GO") {
        Some(go) => go_case(Path::new(&go), "current"),
        None => skip_or_fail("LATCH_CURRENT_GO does not name a current Go (see .ci/run)"),
    }
}

/// An unrecovered Go panic stops the program where Go's runtime would end it
/// (`runtime.fatalpanic`, the `go-panic` filter, on without the client asking), as an
/// exception; continuing lets the program end as it would have (exit status 2).
#[test]
fn an_unrecovered_go_panic_stops_as_an_exception() {
    require_harness!();
    let go = match go_tool() {
        Ok(go) => go,
        Err(why) => return skip_or_fail(&format!("Go panics cannot be tested: {why}")),
    };
    let binary = out_dir().join("langs_go_panic");
    go_build_with(&go, &fixture("go"), &binary, &[], &[]).expect("building the Go fixture");
    let mut target = Target::spawn(Command::new(&binary));
    target.wait_ready(secs(30));
    let mut dap = Dap::attached(target.pid, false);
    target.send_line("panic");
    let stopped = dap.next_event("stopped", secs(10));
    assert_eq!(stopped["body"]["reason"], "exception", "{stopped}");
    assert_eq!(stopped["body"]["text"], "panic", "{stopped}");
    let tid = stopped["body"]["threadId"].clone();
    let info = dap.ok("exceptionInfo", json!({ "threadId": tid }));
    assert_eq!(info["body"]["exceptionId"], "panic", "{info}");
    assert_eq!(info["body"]["breakMode"], "unhandled", "{info}");
    let trace = dap.ok("stackTrace", json!({ "threadId": tid, "levels": 5 }));
    let names: Vec<&str> = trace["body"]["stackFrames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names.first(), Some(&"runtime.fatalpanic"), "{names:?}");
    assert!(names.contains(&"runtime.gopanic"), "{names:?}");
    dap.ok("continue", json!({ "threadId": tid }));
    let exited = dap.next_event("exited", secs(10));
    assert_eq!(exited["body"]["exitCode"], 2, "{exited}");
    let status = target.wait_exit(secs(10));
    assert_eq!(
        status.code(),
        Some(2),
        "the program did not end as a panic ends it"
    );
}
