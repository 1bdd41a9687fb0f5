//! Stripped Go binaries, as distributions ship them (`strip`), are named as their
//! unstripped twins: every kind of linking (external for cgo, Go's own for pure Go; PIE
//! or not), with Debian's Go and the current Go. The twin is the same build before
//! `strip`, which moves no code; latch reads it through the `program` attach argument
//! on the same process, so both answers describe the same stopped threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::fixtures::{go_build_with, go_tool, source_dir, tmp_dir};
use crate::support::{secs, skip_or_fail, Dap, Target};

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
    let mut args = json!({ "pid": target.pid, "stopOnEntry": true });
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
    // Go's scheduler may start a thread after a stop (a P taken back from a thread
    // that was in a system call).
    target.assert_runs_on_with_new_threads_allowed();
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

/// Go frames (Go names always hold a dot: `runtime.futex`, `main.main`) at the same
/// places in both attaches must have the same names, lines and files. C frames are
/// not compared: the stripped copy has no DWARF for cgo's C code. A thread is compared
/// from the top down for as long as both attaches found it at the same places:
/// scheduler threads may wake between the attaches, and the unstripped twin's CFI may
/// unwind a frame further.
fn assert_named_like_twin(label: &str, bare: &BTreeMap<i64, Frames>, twin: &BTreeMap<i64, Frames>) {
    let go = |group: &[&Frame]| -> Vec<Frame> {
        group
            .iter()
            .filter(|f| f.1.contains('.'))
            .map(|f| (*f).clone())
            .collect()
    };
    let mut go_frames = 0;
    for (tid, frames) in bare {
        let Some(theirs) = twin.get(tid) else {
            continue;
        };
        let (ours_by_place, theirs_by_place) = (by_place(frames), by_place(theirs));
        let same_places = ours_by_place
            .iter()
            .zip(&theirs_by_place)
            .take_while(|(a, b)| a.0 == b.0);
        for ((_, ours), (_, twins)) in same_places {
            let (ours, twins) = (go(ours), go(twins));
            assert_eq!(
                ours,
                twins,
                "{label}: thread {tid}, stripped:\n{}twin:\n{}",
                describe(frames),
                describe(theirs)
            );
            go_frames += ours.len();
        }
    }
    assert!(
        go_frames >= 3,
        "{label}: only {go_frames} Go frames were at the same places in both attaches:\n{bare:#?}\n{twin:#?}"
    );
}

fn check_toolchain(go: &Path, toolchain: &str) {
    for (kind, cgo, flags) in LINKINGS {
        let label = format!("{toolchain}-{kind}");
        let (twin, bare) = build_pair(go, &label, cgo, flags);
        let mut target = Target::spawn(Command::new(&bare));
        target.wait_ready(secs(20));
        let stripped_view = stacks(&target, None);
        let twin_view = stacks(&target, Some(&twin));
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
