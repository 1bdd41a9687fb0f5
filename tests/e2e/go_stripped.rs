//! Stripped Go binaries, as distributions ship them (`strip`), are named as their
//! unstripped twins: every kind of linking (external for cgo, Go's own for pure Go; PIE
//! or not), with Debian's Go and the current Go. The twin is the same build before
//! `strip`, which moves no code; latch reads it through the `program` attach argument
//! on the same process, kept stopped by job control (SIGSTOP) from before the first
//! attach to after the second, so both answers describe threads at the same places.
//! Stripped, Go code has no call frame information either: its frames are unwound by
//! Go's own table, and must pass through the same places as the twin's, whose
//! `.debug_frame` unwinds them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::fixtures::{go_build_with, go_tool, source_dir, tmp_dir};
use crate::support::{procfs, secs, skip_or_fail, Dap, Target};

/// (kind, cgo on, build flags): the ways a Go program is linked.
const LINKINGS: [(&str, bool, &[&str]); 4] = [
    ("cgo", true, &[]),
    ("cgo-pie", true, &["-buildmode=pie"]),
    ("pure", false, &[]),
    ("pure-pie", false, &["-buildmode=pie"]),
];

/// Builds tests/fixtures/golinking and a stripped copy; (twin, stripped).
fn build_pair(go: &Path, label: &str, cgo: bool, flags: &[&str]) -> (PathBuf, PathBuf) {
    let dir = tmp_dir().join("golinking");
    std::fs::create_dir_all(&dir).unwrap();
    let twin = dir.join(format!("{label}-twin"));
    let bare = dir.join(format!("{label}-stripped"));
    let cgo_enabled = if cgo { "1" } else { "0" };
    go_build_with(
        go,
        &source_dir().join("golinking"),
        &twin,
        flags,
        &[("CGO_ENABLED", cgo_enabled)],
    )
    .unwrap_or_else(|e| panic!("{label}: {e}"));
    let strip = Command::new("strip")
        .arg("-o")
        .arg(&bare)
        .arg(&twin)
        .output()
        .expect("running strip (binutils)");
    assert!(strip.status.success(), "strip: {strip:?}");
    (twin, bare)
}

/// A frame as (instruction pointer, name, line, source path).
type Frame = (String, String, i64, Option<String>);
type Frames = Vec<Frame>;

fn stacks(target: &Target, program: Option<&Path>) -> BTreeMap<i64, Frames> {
    let mut dap = Dap::start();
    dap.initialize();
    // OS threads' stacks are compared, tid by tid (the twin, with DWARF, would
    // otherwise show goroutines).
    let mut args = json!({ "pid": target.pid, "stopOnEntry": true, "goroutines": false });
    if let Some(program) = program {
        args["program"] = json!(program);
    }
    let r = dap.attach(args);
    assert_eq!(r["success"], true, "attach failed: {r}");
    let mut out = BTreeMap::new();
    for (tid, _) in dap.threads() {
        let r = dap.ok("stackTrace", json!({ "threadId": tid }));
        let frames = r["body"]["stackFrames"].as_array().unwrap();
        let frames = frames
            .iter()
            .map(|f: &Value| {
                (
                    f["instructionPointerReference"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    f["name"].as_str().unwrap().to_string(),
                    f["line"].as_i64().unwrap(),
                    f["source"]["path"].as_str().map(str::to_string),
                )
            })
            .collect();
        out.insert(tid, frames);
    }
    dap.disconnect(json!({}));
    // Left stopped by job control, as it was, and untraced.
    target.assert_runs_on(true);
    out
}

fn describe(frames: &Frames) -> String {
    frames
        .iter()
        .map(|(ip, name, line, path)| {
            format!("  {ip} {name} {}:{line}\n", path.as_deref().unwrap_or("?"))
        })
        .collect()
}

/// A thread's frames grouped by instruction pointer (inlined calls share one), in
/// order.
fn by_place(frames: &Frames) -> Vec<(&str, Vec<&Frame>)> {
    let mut groups: Vec<(&str, Vec<&Frame>)> = Vec::new();
    for frame in frames {
        match groups.last_mut() {
            Some((ip, group)) if *ip == frame.0 => group.push(frame),
            _ => groups.push((&frame.0, vec![frame])),
        }
    }
    groups
}

/// Every thread must unwind through the same places in both attaches, and its Go
/// frames (Go names always hold a dot: `runtime.futex`, `main.main`) must have the same
/// names, lines and files. C frames are not compared by name: the stripped copy has no
/// DWARF for cgo's C code, so it shows some of them as addresses.
fn assert_named_like_twin(label: &str, bare: &BTreeMap<i64, Frames>, twin: &BTreeMap<i64, Frames>) {
    assert_eq!(
        bare.keys().collect::<Vec<_>>(),
        twin.keys().collect::<Vec<_>>(),
        "{label}: the threads of a stopped process changed between the attaches"
    );
    let go = |group: &[&Frame]| -> Vec<Frame> {
        group
            .iter()
            .filter(|f| f.1.contains('.'))
            .map(|f| (*f).clone())
            .collect()
    };
    let mut go_frames = 0;
    for (tid, frames) in bare {
        let theirs = &twin[tid];
        let context = || {
            format!(
                "{label}: thread {tid}, stripped:\n{}twin:\n{}",
                describe(frames),
                describe(theirs)
            )
        };
        let (ours_by_place, theirs_by_place) = (by_place(frames), by_place(theirs));
        let places = |groups: &[(&str, Vec<&Frame>)]| {
            groups.iter().map(|g| g.0.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(
            places(&ours_by_place),
            places(&theirs_by_place),
            "{}",
            context()
        );
        for ((_, ours), (_, twins)) in ours_by_place.iter().zip(&theirs_by_place) {
            let (ours, twins) = (go(ours), go(twins));
            assert_eq!(ours, twins, "{}", context());
            go_frames += ours.len();
        }
    }
    // Go's scheduler threads park in runtime.futex, runtime.notesleep, ...
    assert!(
        go_frames >= 6,
        "{label}: only {go_frames} Go frames:\n{bare:#?}"
    );
}

/// Waits until every thread of `pid` is in a job-control stop.
fn wait_all_stopped(pid: i32) {
    let stopped = || {
        let tasks = procfs::live_tasks(pid);
        !tasks.is_empty() && tasks.iter().all(|t| t.state == 'T')
    };
    assert!(
        procfs::wait_for(secs(10), stopped),
        "{pid} did not stop for SIGSTOP: {:?}",
        procfs::live_tasks(pid)
    );
}

fn check_toolchain(go: &Path, toolchain: &str) {
    for (kind, cgo, flags) in LINKINGS {
        let label = format!("{toolchain}-{kind}");
        let (twin, bare) = build_pair(go, &label, cgo, flags);
        let mut target = Target::spawn(Command::new(&bare));
        target.wait_ready(secs(20));
        target.signal(libc::SIGSTOP);
        wait_all_stopped(target.pid);
        target.record_threads();
        let stripped_view = stacks(&target, None);
        let twin_view = stacks(&target, Some(&twin));
        target.signal(libc::SIGCONT);
        target.assert_runs_on_with_new_threads_allowed();
        assert_named_like_twin(&label, &stripped_view, &twin_view);
        // The goroutine in C code: its thread shows the C function under cgo's frames.
        if cgo {
            let in_c = stripped_view.values().any(|frames| {
                frames
                    .iter()
                    .any(|f| f.1.contains("runtime.cgocall") || f.1.contains("runtime.asmcgocall"))
            });
            assert!(
                in_c,
                "{label}: no thread in cgo's call into C:\n{stripped_view:#?}"
            );
        }
    }
}

#[test]
fn stripped_go_binaries_are_named_as_their_unstripped_twins() {
    require_harness!();
    if Command::new("strip").arg("--version").output().is_err() {
        skip_or_fail("strip (binutils) is missing");
        return;
    }
    match go_tool() {
        Ok(go) => check_toolchain(&go, "debian-go"),
        Err(e) => skip_or_fail(&e),
    }
    match std::env::var_os("LATCH_CURRENT_GO") {
        Some(go) => check_toolchain(Path::new(&go), "current-go"),
        None => skip_or_fail("LATCH_CURRENT_GO does not name a current Go (see .ci/run)"),
    }
}
