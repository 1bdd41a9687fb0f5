//! Symbolized stack traces (issue 4): `stackTrace` of every thread of the
//! stack fixtures (C at -O0 and -O2, compressed debug sections, split debug
//! info, a deleted source file, C++ with inlined calls, Rust, Go), paging,
//! the registers scope, modules, the `source` request, gdb as an oracle, and
//! the stacks `latch attach PID` prints.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::checks::assert_entry_stop;
use crate::support::dap::latch_bin;
use crate::support::fixtures::which;
use crate::support::procfs;
use crate::support::stackfix::{marker_line, stack_fixture, Stack};
use crate::support::target::run_with_deadline;
use crate::support::{secs, skip_or_fail, Dap, Target};

/// A stack deeper than this is a runaway unwind for these fixtures.
const MAX_FRAMES: usize = 64;

/// One frame of a `stackTrace` response.
#[derive(Debug, Clone)]
struct Frame {
    id: i64,
    name: String,
    line: i64,
    column: i64,
    source: Option<Value>,
    ip: u64,
    module: Option<String>,
    hint: Option<String>,
    raw: Value,
}

impl Frame {
    fn parse(v: &Value) -> Frame {
        let ip_text = v["instructionPointerReference"]
            .as_str()
            .unwrap_or_else(|| panic!("frame without instructionPointerReference: {v}"));
        Frame {
            id: v["id"].as_i64().unwrap_or_else(|| panic!("frame id: {v}")),
            name: v["name"].as_str().unwrap_or_default().to_string(),
            line: v["line"]
                .as_i64()
                .unwrap_or_else(|| panic!("frame line: {v}")),
            column: v["column"]
                .as_i64()
                .unwrap_or_else(|| panic!("frame column: {v}")),
            source: v.get("source").filter(|s| !s.is_null()).cloned(),
            ip: parse_hex(ip_text)
                .unwrap_or_else(|| panic!("instructionPointerReference not hex: {v}")),
            module: v["moduleId"].as_str().map(str::to_string),
            hint: v["presentationHint"].as_str().map(str::to_string),
            raw: v.clone(),
        }
    }

    fn source_path(&self) -> Option<&str> {
        self.source.as_ref()?["path"].as_str()
    }

    fn source_name(&self) -> Option<&str> {
        self.source.as_ref()?["name"].as_str()
    }

    fn plain(&self) -> Plain {
        Plain {
            name: normalize(&self.name),
            file: self
                .source_path()
                .map(basename)
                .or_else(|| self.source_name().map(str::to_string)),
            line: self.line.max(0) as u32,
            path: self.source_path().map(str::to_string),
        }
    }
}

/// A frame reduced to what gdb, the CLI and the DAP have in common.
#[derive(Debug, Clone, PartialEq)]
struct Plain {
    name: String,
    /// The source file's basename.
    file: Option<String>,
    line: u32,
    /// The source file's path, when given.
    path: Option<String>,
}

fn describe(frames: &[Plain]) -> String {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| match &f.file {
            Some(file) => format!("  #{i} {} at {file}:{}", f.name, f.line),
            None => format!("  #{i} {}", f.name),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe_frames(frames: &[Frame]) -> String {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            format!(
                "  #{i} {:#x} {} at {}:{} (module {:?}, hint {:?})",
                f.ip,
                f.name,
                f.source_path().unwrap_or("-"),
                f.line,
                f.module,
                f.hint
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_hex(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

fn basename(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// A function name without a symbol version (`@GLIBC_2.2.5`, `@@...`) and
/// without a trailing parameter list (`ns::W::f(int)` -> `ns::W::f`).
fn normalize(name: &str) -> String {
    let mut n = name.trim();
    if let Some(at) = n.find('@') {
        n = n[..at].trim_end();
    }
    if n.ends_with(')') {
        let mut depth = 0;
        for (i, c) in n.char_indices().rev() {
            match c {
                ')' => depth += 1,
                '(' => {
                    depth -= 1;
                    if depth == 0 {
                        if i > 0 {
                            n = n[..i].trim_end();
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    n.to_string()
}

/// `stackTrace` of one thread; returns the frames and totalFrames.
fn stack_trace(
    dap: &mut Dap,
    tid: i64,
    start: Option<i64>,
    levels: Option<i64>,
) -> (Vec<Frame>, i64) {
    let mut args = json!({ "threadId": tid });
    if let Some(s) = start {
        args["startFrame"] = json!(s);
    }
    if let Some(l) = levels {
        args["levels"] = json!(l);
    }
    let r = dap.ok("stackTrace", args);
    let frames: Vec<Frame> = r["body"]["stackFrames"]
        .as_array()
        .unwrap_or_else(|| panic!("stackTrace without stackFrames: {r}"))
        .iter()
        .map(Frame::parse)
        .collect();
    let total = r["body"]["totalFrames"]
        .as_i64()
        .unwrap_or_else(|| panic!("stackTrace without totalFrames: {r}"));
    (frames, total)
}

/// What every frame must satisfy, whatever the program.
fn check_frame_invariants(frames: &[Frame], ctx: &str) {
    let all = describe_frames(frames);
    let mut ids = HashSet::new();
    for (i, f) in frames.iter().enumerate() {
        assert!(
            ids.insert(f.id),
            "{ctx}: frame id {} repeated:\n{all}",
            f.id
        );
        assert!(!f.name.is_empty(), "{ctx}: frame #{i} has no name:\n{all}");
        assert_ne!(f.ip, 0, "{ctx}: frame #{i} has pc 0:\n{all}");
        assert!(
            f.line >= 0 && f.column >= 0,
            "{ctx}: frame #{i} line/column negative: {}",
            f.raw
        );
        let module = f
            .module
            .as_deref()
            .unwrap_or_else(|| panic!("{ctx}: frame #{i} has no moduleId: {}", f.raw));
        assert!(!module.is_empty(), "{ctx}: frame #{i} empty moduleId");
        match &f.source {
            // A file the debug info names only relatively (Debian's libc is
            // built with -fdebug-prefix-map, its comp_dir is `./csu`): no
            // absolute path can be made, so only a name and a reference.
            Some(src) if src["path"].is_null() => {
                assert!(
                    src["name"].as_str().is_some_and(|n| !n.is_empty()),
                    "{ctx}: frame #{i} source without name or path: {}",
                    f.raw
                );
                assert!(
                    src["sourceReference"].as_i64().is_some_and(|r| r > 0),
                    "{ctx}: frame #{i}'s source has neither a path nor a sourceReference: {}",
                    f.raw
                );
                assert!(
                    f.line > 0,
                    "{ctx}: frame #{i} has a source but no line: {}",
                    f.raw
                );
            }
            Some(src) => {
                let path = src["path"].as_str().unwrap_or_else(|| {
                    panic!("{ctx}: frame #{i} source path not a string: {}", f.raw)
                });
                assert!(
                    path.starts_with('/'),
                    "{ctx}: frame #{i} source path is not absolute: {}",
                    f.raw
                );
                assert_eq!(
                    src["name"].as_str(),
                    Some(basename(path).as_str()),
                    "{ctx}: frame #{i} source name is not the basename of its path: {}",
                    f.raw
                );
                assert!(
                    f.line > 0,
                    "{ctx}: frame #{i} has a source but no line: {}",
                    f.raw
                );
                if !Path::new(path).exists() {
                    assert!(
                        src["sourceReference"].as_i64().is_some_and(|r| r > 0),
                        "{ctx}: frame #{i}'s source is not on disk but has no sourceReference: {}",
                        f.raw
                    );
                    assert_eq!(
                        src["presentationHint"], "deemphasize",
                        "{ctx}: frame #{i}'s missing source is not deemphasized: {}",
                        f.raw
                    );
                }
            }
            None => {
                assert_eq!(
                    f.hint.as_deref(),
                    Some("subtle"),
                    "{ctx}: frame #{i} without source is not presentationHint subtle: {}",
                    f.raw
                );
            }
        }
    }
}

/// Every thread's stack, checked for the invariants and for ending.
fn all_stacks(dap: &mut Dap) -> BTreeMap<i64, Vec<Frame>> {
    let threads = dap.threads();
    let mut out = BTreeMap::new();
    for (tid, name) in threads {
        let (frames, total) = stack_trace(dap, tid, None, None);
        let ctx = format!("thread {tid} {name:?}");
        assert!(
            !frames.is_empty(),
            "{ctx}: empty stack (totalFrames {total})"
        );
        assert_eq!(
            frames.len() as i64,
            total,
            "{ctx}: all frames requested, but totalFrames differs:\n{}",
            describe_frames(&frames)
        );
        assert!(
            frames.len() < MAX_FRAMES,
            "{ctx}: {} frames, the unwind does not end:\n{}",
            frames.len(),
            describe_frames(&frames)
        );
        check_frame_invariants(&frames, &ctx);
        out.insert(tid, frames);
    }
    out
}

/// A known frame: its function name and the marker naming its line (None:
/// the line is not checked).
type Known<'a> = (&'a str, Option<&'a str>);

/// `frames` holds the `known` frames one after the other, with the marker
/// lines and the fixture's source file; returns the index of the first.
fn expect_run(frames: &[Plain], known: &[Known], s: Stack, ctx: &str) -> usize {
    let names: Vec<&str> = known.iter().map(|k| k.0).collect();
    let at = frames
        .windows(known.len())
        .position(|w| w.iter().zip(&names).all(|(f, n)| f.name == *n))
        .unwrap_or_else(|| {
            panic!(
                "{ctx}: expected the frames {names:?} one after the other in:\n{}",
                describe(frames)
            )
        });
    let src = s.marker_source();
    let path = s.debug_source().to_str().unwrap().to_string();
    for (i, (name, marker)) in known.iter().enumerate() {
        let f = &frames[at + i];
        let Some(marker) = marker else { continue };
        if s.has_lines() {
            let line = marker_line(&src, marker);
            assert_eq!(
                (f.path.as_deref(), f.line),
                (Some(path.as_str()), line),
                "{ctx}: frame #{} {name} should be at {path}:{line} (marker line:{marker}):\n{}",
                at + i,
                describe(frames)
            );
        } else {
            assert_eq!(
                (f.path.as_deref(), f.line),
                (None, 0),
                "{ctx}: frame #{} {name} has a line although {s:?} has no debug info:\n{}",
                at + i,
                describe(frames)
            );
        }
    }
    at
}

fn plain(frames: &[Frame]) -> Vec<Plain> {
    frames.iter().map(Frame::plain).collect()
}

/// The tid of the thread named `comm`, from the target's tasks.
fn tid_of(target: &Target, comm: &str) -> i64 {
    let hits: Vec<i32> = target
        .initial
        .iter()
        .filter(|t| t.comm == comm)
        .map(|t| t.tid)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one thread {comm:?}: {:?}",
        target.initial
    );
    hits[0] as i64
}

/// The build-id debug file of a module, under /usr/lib/debug.
fn build_id_debug_file(module: &Path) -> Option<PathBuf> {
    use object::Object;
    let data = std::fs::read(module).ok()?;
    let obj = object::File::parse(&*data).ok()?;
    let id = obj.build_id().ok()??;
    if id.len() < 2 {
        return None;
    }
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    Some(PathBuf::from(format!(
        "/usr/lib/debug/.build-id/{}/{}.debug",
        &hex[..2],
        &hex[2..]
    )))
}

/// True when libc's debug info (Debian's libc6-dbg) is installed: only then
/// do libc's internal functions (start_thread, ...) have names. When it is missing,
/// every call fails the test (or, with LATCH_ALLOW_SKIP, says which checks it skips):
/// a check said once per run and then silently left out let later tests pass unchecked.
pub(crate) fn libc_debug_info() -> bool {
    static LIBC: std::sync::OnceLock<(Option<PathBuf>, bool)> = std::sync::OnceLock::new();
    let (libc, found) = LIBC.get_or_init(|| {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let libc = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| basename(p).starts_with("libc.so"))
            .map(PathBuf::from);
        let found = libc
            .as_deref()
            .and_then(build_id_debug_file)
            .is_some_and(|d| d.exists());
        (libc, found)
    });
    if !found {
        skip_or_fail(&format!(
            "libc's debug info (package libc6-dbg) is not installed for {libc:?}: the \
             checks of libc's frames (start_thread, clone3) and the gdb comparisons cannot run"
        ));
    }
    *found
}

fn assert_thread_bottom(frames: &[Plain], ctx: &str) {
    if !libc_debug_info() {
        return;
    }
    assert!(
        frames.iter().any(|f| f.name == "start_thread"),
        "{ctx}: the stack does not reach start_thread:\n{}",
        describe(frames)
    );
    let last = &frames.last().unwrap().name;
    assert!(
        ["clone3", "clone", "__clone3", "__clone"].contains(&last.as_str()),
        "{ctx}: the stack ends in {last}, not in clone/clone3:\n{}",
        describe(frames)
    );
}

fn assert_main_bottom(frames: &[Plain], at_main: usize, ctx: &str) {
    let after = frames.len() - at_main - 1;
    assert!(
        after <= 4,
        "{ctx}: {after} frames below main:\n{}",
        describe(frames)
    );
}

/// Frame 0 of a thread blocked in a libc call is in libc.
fn assert_in_libc(frames: &[Frame], ctx: &str) {
    let module = frames[0].module.as_deref().unwrap_or_default();
    assert!(
        basename(module).starts_with("libc.so"),
        "{ctx}: frame 0 is not in libc:\n{}",
        describe_frames(frames)
    );
}

const C_WORKER: [Known; 4] = [
    ("level_three", Some("level_three")),
    ("level_two", Some("level_two")),
    ("level_one", Some("level_one")),
    ("worker_main", Some("worker_main")),
];
const C_NAPPER: [Known; 3] = [
    ("nap_inner", Some("nap_inner")),
    ("nap_outer", Some("nap_outer")),
    ("napper_main", Some("napper_main")),
];
const C_MAIN: [Known; 2] = [("main_wait", Some("main_wait")), ("main", Some("main"))];
const CPP_WIDGET: [Known; 5] = [
    ("shapes::Widget::block", Some("shapes::Widget::block")),
    ("shapes::Widget::middle", Some("shapes::Widget::middle")),
    ("shapes::Widget::outer", Some("shapes::Widget::outer")),
    ("shapes::run<int>", Some("shapes::run")),
    ("widget_main", Some("widget_main")),
];

fn plain_map(stacks: &BTreeMap<i64, Vec<Frame>>) -> BTreeMap<i64, Vec<Plain>> {
    stacks.iter().map(|(t, f)| (*t, plain(f))).collect()
}

/// The known frames of the C fixture (stack.c) on each of its threads, as
/// seen by `who` (latch, or gdb checking the fixture).
fn expect_c_names(s: Stack, target: &Target, stacks: &BTreeMap<i64, Vec<Plain>>, who: &str) {
    let exe = s.exe_name();
    for (comm, known) in [("worker", &C_WORKER[..]), ("napper", &C_NAPPER[..])] {
        let frames = &stacks[&tid_of(target, comm)];
        let ctx = format!("{who}: {exe} {comm}");
        expect_run(frames, known, s, &ctx);
        assert_thread_bottom(frames, &ctx);
    }
    let heartbeat = &stacks[&tid_of(target, "heartbeat")];
    let ctx = format!("{who}: {exe} heartbeat");
    if s != Stack::SplitNoDebug {
        expect_run(heartbeat, &[("heartbeat_main", None)], s, &ctx);
    }
    assert_thread_bottom(heartbeat, &ctx);
    let main = &stacks[&(target.pid as i64)];
    let ctx = format!("{who}: {exe} main thread");
    let at = expect_run(main, &C_MAIN, s, &ctx);
    assert_main_bottom(main, at + 1, &ctx);
}

fn expect_c(s: Stack, target: &Target, stacks: &BTreeMap<i64, Vec<Frame>>) {
    expect_c_names(s, target, &plain_map(stacks), "latch");
    let exe = s.exe_name();
    for comm in ["worker", "napper"] {
        assert_in_libc(&stacks[&tid_of(target, comm)], &format!("{exe} {comm}"));
    }
    assert_in_libc(&stacks[&(target.pid as i64)], &format!("{exe} main thread"));
    if s == Stack::SplitNoDebug {
        // heartbeat_main is static: without the debug file no symbol names
        // it, and its frame is `0x... (MODULE)`.
        let frames = &stacks[&tid_of(target, "heartbeat")];
        let ctx = format!("{exe} heartbeat");
        let start = frames
            .iter()
            .position(|f| normalize(&f.name) == "start_thread")
            .unwrap_or_else(|| panic!("{ctx}: no start_thread:\n{}", describe_frames(frames)));
        let f = &frames[start.checked_sub(1).expect("start_thread is frame 0")];
        assert!(
            f.name.starts_with("0x") && f.name.ends_with(&format!("({exe})")),
            "{ctx}: the frame of the static heartbeat_main should be `0x... ({exe})`: {}",
            f.raw
        );
    }
}

fn expect_cpp_names(target: &Target, stacks: &BTreeMap<i64, Vec<Plain>>, who: &str) {
    let s = Stack::Cpp;
    let widget = &stacks[&tid_of(target, "widget")];
    let ctx = format!("{who}: stack_cpp widget");
    expect_run(widget, &CPP_WIDGET, s, &ctx);
    assert_thread_bottom(widget, &ctx);
    let main = &stacks[&(target.pid as i64)];
    let ctx = format!("{who}: stack_cpp main thread");
    let at = expect_run(main, &C_MAIN, s, &ctx);
    assert_main_bottom(main, at + 1, &ctx);
}

fn expect_cpp(target: &Target, stacks: &BTreeMap<i64, Vec<Frame>>) {
    let widget = &stacks[&tid_of(target, "widget")];
    let ctx = "stack_cpp widget";
    // The inlined frame first, the template's name (with expect_cpp_names) last.
    let at = expect_run(&plain(widget), &CPP_WIDGET[..3], Stack::Cpp, ctx);
    // middle() is inlined into outer(): a frame of its own, at the same pc,
    // closer to frame 0; block() is a real call.
    let (block, middle, outer) = (&widget[at], &widget[at + 1], &widget[at + 2]);
    assert_eq!(
        middle.ip,
        outer.ip,
        "{ctx}: the inlined frame middle and its caller outer have different pcs:\n{}",
        describe_frames(widget)
    );
    assert_ne!(
        block.ip,
        middle.ip,
        "{ctx}: block is a real call, not inlined:\n{}",
        describe_frames(widget)
    );
    assert_in_libc(widget, ctx);
    expect_cpp_names(target, &plain_map(stacks), "latch");
}

fn expect_rust(target: &Target, stacks: &BTreeMap<i64, Vec<Frame>>) {
    let s = Stack::Rust;
    let sleeper = &stacks[&tid_of(target, "sleeper")];
    let ctx = "stack_rs sleeper";
    let w = plain(sleeper);
    let at = expect_run(
        &w,
        &[
            ("stack_rs::level_two", Some("stack_rs::level_two")),
            ("stack_rs::level_one", Some("stack_rs::level_one")),
            ("stack_rs::worker", Some("stack_rs::worker")),
        ],
        s,
        ctx,
    );
    // std::thread::sleep (defined in std::thread::functions in recent Rust).
    assert!(
        w[..at]
            .iter()
            .any(|f| f.name == "std::thread::sleep" || f.name == "std::thread::functions::sleep"),
        "{ctx}: no std::thread::sleep frame above level_two:\n{}",
        describe(&w)
    );
    let hashed = |name: &str| {
        name.rsplit("::").next().is_some_and(|last| {
            last.len() == 17
                && last.starts_with('h')
                && last[1..].chars().all(|c| c.is_ascii_hexdigit())
        })
    };
    assert!(
        !w.iter().any(|f| hashed(&f.name)),
        "{ctx}: a Rust name keeps its hash:\n{}",
        describe(&w)
    );
    assert_thread_bottom(&w, ctx);
    assert_in_libc(sleeper, ctx);

    let main = plain(&stacks[&(target.pid as i64)]);
    let ctx = "stack_rs main thread";
    let at = expect_run(
        &main,
        &[
            ("stack_rs::main_wait", Some("stack_rs::main_wait")),
            ("stack_rs::main", Some("stack_rs::main")),
        ],
        s,
        ctx,
    );
    let c_main = main[at..]
        .iter()
        .position(|f| f.name == "main")
        .unwrap_or_else(|| {
            panic!(
                "{ctx}: no C main below stack_rs::main:\n{}",
                describe(&main)
            )
        });
    assert_main_bottom(&main, at + c_main, ctx);
}

fn expect_go(stacks: &BTreeMap<i64, Vec<Frame>>) {
    let s = Stack::Go;
    let all: Vec<(i64, Vec<Plain>)> = stacks.iter().map(|(t, f)| (*t, plain(f))).collect();
    let everything = all
        .iter()
        .map(|(t, f)| format!("thread {t}:\n{}", describe(f)))
        .collect::<Vec<_>>()
        .join("\n");
    let find = |name: &str| {
        all.iter()
            .find(|(_, f)| f.iter().any(|x| x.name == name))
            .unwrap_or_else(|| panic!("gostack: no thread has a {name} frame:\n{everything}"))
    };
    let (tid, blocker) = find("main.levelTwo");
    let ctx = format!("gostack thread {tid} (blocker goroutine)");
    expect_run(
        blocker,
        &[
            ("main.levelTwo", Some("main.levelTwo")),
            ("main.levelOne", Some("main.levelOne")),
            ("main.blocker", Some("main.blocker")),
        ],
        s,
        &ctx,
    );
    let (tid, main) = find("main.mainWait");
    let ctx2 = format!("gostack thread {tid} (main goroutine)");
    expect_run(
        main,
        &[
            ("main.mainWait", Some("main.mainWait")),
            ("main.main", Some("main.main")),
            ("runtime.main", None),
        ],
        s,
        &ctx2,
    );
    for (frames, ctx) in [(blocker, &ctx), (main, &ctx2)] {
        assert!(
            frames.iter().any(|f| f.name == "syscall.Syscall"),
            "{ctx}: no syscall.Syscall frame:\n{}",
            describe(frames)
        );
        assert_eq!(
            frames.last().unwrap().name,
            "runtime.goexit",
            "{ctx}: a goroutine's stack ends in runtime.goexit:\n{}",
            describe(frames)
        );
    }
    // Every thread is in the runtime (blocked in a syscall, futex, epoll or
    // usleep) unless it runs goroutine code (the heartbeat goroutine, for a
    // microsecond each millisecond), and its stack ends in the runtime
    // (runtime.goexit for a goroutine, mstart/clone/mcall for g0).
    for (tid, frames) in &all {
        let ctx = format!("gostack thread {tid}");
        let (first, last) = (&frames[0].name, &frames.last().unwrap().name);
        let runs_goroutine = frames.iter().any(|f| f.name.starts_with("main."));
        assert!(
            runs_goroutine
                || first.starts_with("runtime.")
                || first.starts_with("runtime/internal/syscall."),
            "{ctx}: frame 0 is not in the runtime:\n{}",
            describe(frames)
        );
        assert!(
            last.starts_with("runtime."),
            "{ctx}: the stack does not end in the runtime:\n{}",
            describe(frames)
        );
    }
}

/// Starts the fixture, attaches stopped, checks every thread's stack, then
/// detaches and checks the target runs on untouched.
fn check_fixture(s: Stack) {
    let Some(exe) = stack_fixture(s) else { return };
    let target = Target::start_cmd(Command::new(&exe));
    let mut dap = attached_threads(target.pid);
    assert_entry_stop(&mut dap, target.pid as i64);
    let stacks = all_stacks(&mut dap);
    match s {
        Stack::Cpp => expect_cpp(&target, &stacks),
        Stack::Rust => expect_rust(&target, &stacks),
        Stack::Go => expect_go(&stacks),
        _ => expect_c(s, &target, &stacks),
    }
    if matches!(s, Stack::Split | Stack::SplitNoDebug) {
        // The module's symbol status says whether the debug file was found.
        let r = dap.ok("modules", json!({}));
        let exe_path = exe.canonicalize().unwrap();
        let module = r["body"]["modules"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["path"].as_str().is_some_and(|p| Path::new(p) == exe_path))
            .unwrap_or_else(|| panic!("{}: the executable is not a module: {r}", exe.display()))
            .clone();
        let status = module["symbolStatus"].as_str().unwrap_or_default();
        let debug_file = format!("{}.debug", s.exe_name());
        assert_eq!(
            status.contains(&debug_file),
            s == Stack::Split,
            "{s:?}: symbolStatus should name {debug_file} exactly when it is there: {module}"
        );
    }
    dap.disconnect(json!({}));
    assert_runs_on(&target, s);
}

#[test]
fn stacks_c_o0() {
    require_harness!();
    check_fixture(Stack::O0);
}

#[test]
fn stacks_c_o2_omit_frame_pointer() {
    require_harness!();
    check_fixture(Stack::O2);
}

#[test]
fn stacks_c_compressed_zlib() {
    require_harness!();
    check_fixture(Stack::Zlib);
}

#[test]
fn stacks_c_compressed_zlib_gnu() {
    require_harness!();
    check_fixture(Stack::ZlibGnu);
}

#[test]
fn stacks_c_compressed_zstd() {
    require_harness!();
    check_fixture(Stack::Zstd);
}

#[test]
fn stacks_c_split_debug_file() {
    require_harness!();
    check_fixture(Stack::Split);
}

#[test]
fn stacks_c_stripped_names_from_symbol_table() {
    require_harness!();
    check_fixture(Stack::SplitNoDebug);
}

#[test]
fn stacks_cpp_inlined_and_demangled() {
    require_harness!();
    check_fixture(Stack::Cpp);
}

#[test]
fn stacks_rust() {
    require_harness!();
    check_fixture(Stack::Rust);
}

#[test]
fn stacks_go() {
    require_harness!();
    check_fixture(Stack::Go);
}

/// Starts a stack fixture and attaches stopped; None when it cannot be built.
fn attached(s: Stack) -> Option<(Target, Dap)> {
    let exe = stack_fixture(s)?;
    let target = Target::start_cmd(Command::new(&exe));
    let mut dap = attached_threads(target.pid);
    assert_entry_stop(&mut dap, target.pid as i64);
    Some((target, dap))
}

#[test]
fn stacks_paging() {
    require_harness!();
    let Some((target, mut dap)) = attached(Stack::O0) else {
        return;
    };
    let tid = tid_of(&target, "worker");
    let (full, total) = stack_trace(&mut dap, tid, None, None);
    assert!(
        full.len() >= 6,
        "worker stack too short:\n{}",
        describe_frames(&full)
    );
    let key = |f: &Frame| {
        (
            f.name.clone(),
            f.ip,
            f.line,
            f.source_path().map(str::to_string),
        )
    };
    let full_keys: Vec<_> = full.iter().map(key).collect();
    let n = full.len() as i64;
    for (start, levels) in [
        (Some(0), Some(0)),
        (Some(0), Some(1)),
        (Some(1), Some(2)),
        (Some(2), None),
        (Some(n - 1), Some(5)),
        (Some(3), Some(n)),
        (Some(n), Some(3)),
        (Some(n + 10), None),
    ] {
        let (page, page_total) = stack_trace(&mut dap, tid, start, levels);
        let from = start.unwrap_or(0).min(n) as usize;
        let to = match levels {
            Some(l) if l > 0 => (from + l as usize).min(n as usize),
            _ => n as usize,
        };
        let got: Vec<_> = page.iter().map(key).collect();
        assert_eq!(
            got,
            full_keys[from..to],
            "startFrame {start:?} levels {levels:?}: wrong slice; the whole stack:\n{}",
            describe_frames(&full)
        );
        assert_eq!(
            page_total, total,
            "startFrame {start:?} levels {levels:?}: totalFrames changed"
        );
    }
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// The `variables` of a frame's Registers scope, as name -> value.
fn registers(dap: &mut Dap, frame: &Frame) -> BTreeMap<String, u64> {
    let r = dap.ok("scopes", json!({ "frameId": frame.id }));
    let scopes = r["body"]["scopes"]
        .as_array()
        .unwrap_or_else(|| panic!("scopes without scopes: {r}"));
    let regs = scopes
        .iter()
        .find(|s| s["name"] == "Registers")
        .unwrap_or_else(|| panic!("no Registers scope: {r}"));
    assert_eq!(regs["presentationHint"], "registers", "{regs}");
    assert_eq!(regs["expensive"], false, "{regs}");
    let reference = regs["variablesReference"]
        .as_i64()
        .filter(|&v| v > 0)
        .unwrap_or_else(|| panic!("Registers scope without variablesReference: {regs}"));
    let v = dap.ok("variables", json!({ "variablesReference": reference }));
    let vars = v["body"]["variables"]
        .as_array()
        .unwrap_or_else(|| panic!("variables without variables: {v}"));
    let mut out = BTreeMap::new();
    for var in vars {
        let name = var["name"].as_str().unwrap_or_else(|| panic!("{var}"));
        let value = var["value"].as_str().unwrap_or_else(|| panic!("{var}"));
        let parsed =
            parse_hex(value).unwrap_or_else(|| panic!("register {name} not in hex: {var}"));
        assert_eq!(
            var["variablesReference"], 0,
            "register {name} is expandable: {var}"
        );
        assert!(
            out.insert(name.to_string(), parsed).is_none(),
            "register {name} listed twice: {v}"
        );
    }
    out
}

/// The user stack pointer and program counter of a thread that is not running, from
/// `/proc/PID/task/TID/syscall` ("NR ARGS... SP PC", or "-1 SP PC" outside a system call).
fn kernel_sp_pc(pid: i32, tid: i64) -> (u64, u64) {
    let path = format!("/proc/{pid}/task/{tid}/syscall");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fields: Vec<&str> = text.split_whitespace().collect();
    let hex = |f: &str| {
        u64::from_str_radix(f.trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("{path}: {text:?} has no sp and pc"))
    };
    match fields[..] {
        [.., sp, pc] if fields.len() >= 3 => (hex(sp), hex(pc)),
        _ => panic!("{path}: {text:?} has no sp and pc (is the thread running?)"),
    }
}

#[test]
fn stacks_registers_scope() {
    require_harness!();
    let Some((target, mut dap)) = attached(Stack::O0) else {
        return;
    };
    let tid = tid_of(&target, "worker");
    let (frames, _) = stack_trace(&mut dap, tid, None, None);
    let regs = registers(&mut dap, &frames[0]);
    for name in [
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15", "rip", "eflags",
    ] {
        assert!(
            regs.contains_key(name),
            "frame 0 lacks register {name}: {regs:?}"
        );
    }
    assert_eq!(
        regs["rip"], frames[0].ip,
        "frame 0: rip != instructionPointerReference"
    );
    // The kernel's own view of the stopped thread, not latch's: /proc's `syscall` file
    // ends with the user stack pointer and program counter.
    let (sp, pc) = kernel_sp_pc(target.pid, tid);
    assert_eq!(
        (regs["rsp"], regs["rip"]),
        (sp, pc),
        "frame 0: (rsp, rip) are not the kernel's (sp, pc) of thread {tid}"
    );
    // An outer frame (level_two, a real call at -O0): rip is its pc, rsp is
    // above frame 0's.
    let i = frames
        .iter()
        .position(|f| normalize(&f.name) == "level_two")
        .unwrap_or_else(|| panic!("no level_two:\n{}", describe_frames(&frames)));
    let outer = registers(&mut dap, &frames[i]);
    assert_eq!(
        outer.get("rip"),
        Some(&frames[i].ip),
        "frame #{i}: rip != instructionPointerReference: {outer:?}"
    );
    let rsp = *outer
        .get("rsp")
        .unwrap_or_else(|| panic!("frame #{i} lacks rsp: {outer:?}"));
    assert!(
        rsp > regs["rsp"],
        "frame #{i}: rsp {rsp:#x} not above frame 0's {:#x}",
        regs["rsp"]
    );
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn stacks_modules() {
    require_harness!();
    let Some((target, mut dap)) = attached(Stack::O0) else {
        return;
    };
    let exe = stack_fixture(Stack::O0).unwrap().canonicalize().unwrap();
    let r = dap.ok("modules", json!({}));
    let modules = r["body"]["modules"]
        .as_array()
        .unwrap_or_else(|| panic!("modules without modules: {r}"))
        .clone();
    if let Some(total) = r["body"]["totalModules"].as_i64() {
        assert_eq!(total, modules.len() as i64, "totalModules: {r}");
    }
    let mut ids = HashSet::new();
    for m in &modules {
        let id = m["id"].as_str().unwrap_or_else(|| panic!("module id: {m}"));
        assert!(ids.insert(id.to_string()), "module {id} listed twice: {r}");
        let path = m["path"].as_str().unwrap_or_else(|| panic!("no path: {m}"));
        assert_eq!(id, path, "module id is not its path: {m}");
        assert_eq!(m["name"].as_str(), Some(basename(path).as_str()), "{m}");
        assert!(m["symbolStatus"].is_string(), "no symbolStatus: {m}");
    }
    let paths: Vec<&str> = modules.iter().filter_map(|m| m["path"].as_str()).collect();
    assert!(
        paths.iter().any(|p| Path::new(p) == exe),
        "the executable {} is not among the modules {paths:?}",
        exe.display()
    );
    assert!(
        paths.iter().any(|p| basename(p).starts_with("libc.so")),
        "libc is not among the modules {paths:?}"
    );
    // Every frame's moduleId is a listed module.
    for frames in all_stacks(&mut dap).values() {
        for f in frames {
            let m = f.module.as_deref().unwrap();
            assert!(
                ids.contains(m),
                "moduleId {m} of a frame is not listed by modules: {paths:?}"
            );
        }
    }
    // `module` events ("new") announce the executable and libc.
    let mut announced: Vec<String> = Vec::new();
    dap.wait_until(secs(10), |d| {
        announced = d
            .events("module")
            .iter()
            .filter(|e| e["body"]["reason"] == "new")
            .filter_map(|e| e["body"]["module"]["path"].as_str().map(str::to_string))
            .collect();
        announced.iter().any(|p| Path::new(p) == exe)
            && announced.iter().any(|p| basename(p).starts_with("libc.so"))
    });
    assert!(
        announced.iter().any(|p| Path::new(p) == exe)
            && announced.iter().any(|p| basename(p).starts_with("libc.so")),
        "module events do not announce the executable and libc: {announced:?}"
    );
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// Rust's standard library names its files `/rustc/HASH/library/...`: absolute,
/// and not on this machine. Such frames keep their path, carry a
/// sourceReference, are deemphasized, and `source` answers for them.
#[test]
fn stacks_rust_std_sources_not_on_this_machine() {
    require_harness!();
    let Some((target, mut dap)) = attached(Stack::Rust) else {
        return;
    };
    let (frames, _) = stack_trace(&mut dap, tid_of(&target, "sleeper"), None, None);
    let std_frames: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.source_path().is_some_and(|p| p.starts_with("/rustc/")))
        .collect();
    assert!(
        !std_frames.is_empty(),
        "no frame of the standard library has its /rustc/... path:\n{}",
        describe_frames(&frames)
    );
    for f in std_frames {
        let src = f.source.clone().unwrap();
        let reference = src["sourceReference"]
            .as_i64()
            .filter(|&r| r > 0)
            .unwrap_or_else(|| panic!("no sourceReference: {}", f.raw));
        assert_eq!(src["presentationHint"], "deemphasize", "{}", f.raw);
        let r = dap.ok(
            "source",
            json!({ "source": src, "sourceReference": reference }),
        );
        assert!(
            r["body"]["content"].as_str().is_some_and(|c| !c.is_empty()),
            "source for {}: {r}",
            f.raw
        );
    }
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

#[test]
fn stacks_source_not_on_disk() {
    require_harness!();
    let Some((target, mut dap)) = attached(Stack::Gone) else {
        return;
    };
    let gone = Stack::Gone.debug_source();
    assert!(!gone.exists(), "{} should not exist", gone.display());
    let tid = tid_of(&target, "worker");
    let (frames, _) = stack_trace(&mut dap, tid, None, None);
    let f = frames
        .iter()
        .find(|f| normalize(&f.name) == "level_two")
        .unwrap_or_else(|| panic!("no level_two:\n{}", describe_frames(&frames)));
    assert_eq!(
        f.source_path(),
        gone.to_str(),
        "level_two's source path: {}",
        f.raw
    );
    assert_eq!(f.source_name(), Some("stack.c"), "{}", f.raw);
    assert_eq!(
        f.line as u32,
        marker_line(&Stack::Gone.marker_source(), "level_two"),
        "{}",
        f.raw
    );
    let src = f.source.clone().unwrap();
    let reference = src["sourceReference"]
        .as_i64()
        .filter(|&r| r > 0)
        .unwrap_or_else(|| panic!("a source not on disk without sourceReference: {}", f.raw));
    assert_eq!(src["presentationHint"], "deemphasize", "{}", f.raw);
    let r = dap.ok(
        "source",
        json!({ "source": src, "sourceReference": reference }),
    );
    let content = r["body"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("source response without content: {r}"));
    assert!(!content.trim().is_empty(), "empty source text: {r}");
    // The frames of common.h (still on disk) have no sourceReference.
    let (hb, _) = stack_trace(&mut dap, tid_of(&target, "heartbeat"), None, None);
    let h = hb
        .iter()
        .find(|f| normalize(&f.name) == "heartbeat_main")
        .unwrap_or_else(|| panic!("no heartbeat_main:\n{}", describe_frames(&hb)));
    assert_eq!(h.source_name(), Some("common.h"), "{}", h.raw);
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

// ---------------------------------------------------------------- gdb oracle

/// Parses `gdb -batch -ex 'thread apply all bt'`: tid (LWP) -> frames.
fn parse_gdb(text: &str) -> BTreeMap<i32, Vec<Plain>> {
    let mut out: BTreeMap<i32, Vec<Plain>> = BTreeMap::new();
    let mut current: Option<i32> = None;
    for line in text.lines() {
        if line.starts_with("Thread ") {
            current = line.split_once("(LWP ").and_then(|(_, rest)| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            });
            if let Some(tid) = current {
                out.entry(tid).or_default();
            }
            continue;
        }
        let (Some(tid), Some(rest)) = (current, line.strip_prefix('#')) else {
            continue;
        };
        // "#N  0xADDR in NAME (ARGS) at FILE:LINE" or "#N  NAME (ARGS) at ..."
        let rest = rest
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        let rest = match rest.strip_prefix("0x") {
            Some(r) => r.split_once(" in ").map_or("", |(_, r)| r),
            None => rest,
        };
        let (name, tail) = rest.split_once(" (").unwrap_or((rest, ""));
        let at = tail.rsplit_once(") at ").map(|(_, loc)| loc);
        let (path, line_no) = match at.and_then(|loc| loc.rsplit_once(':')) {
            Some((file, l)) => (Some(file.to_string()), l.trim().parse().unwrap_or(0)),
            None => (None, 0),
        };
        out.get_mut(&tid).unwrap().push(Plain {
            name: normalize(name),
            file: path.as_deref().map(basename),
            line: line_no,
            path,
        });
    }
    out
}

/// A gdb Python helper printing, per thread, the indices of the frames gdb
/// made up from DWARF call-site information for tail calls (`jmp`): no
/// unwinder sees them, and gdb's `bt` does not mark them.
const GDB_TAILCALLS: &str = r#"
import gdb

def latch_tailcalls():
    frame = gdb.newest_frame()
    index = 0
    found = []
    while frame is not None:
        if frame.type() == gdb.TAILCALL_FRAME:
            found.append(str(index))
        index += 1
        try:
            frame = frame.older()
        except gdb.error:
            break
    print("latch-tailcalls %d: %s" % (gdb.selected_thread().ptid[1], " ".join(found)))
"#;

/// Parses the helper's "latch-tailcalls TID: I J" lines.
fn parse_tailcalls(text: &str) -> BTreeMap<i32, Vec<usize>> {
    text.lines()
        .filter_map(|l| {
            let (tid, list) = l.strip_prefix("latch-tailcalls ")?.split_once(':')?;
            let indices = list
                .split_whitespace()
                .filter_map(|i| i.parse().ok())
                .collect();
            Some((tid.trim().parse().ok()?, indices))
        })
        .collect()
}

/// gdb's backtrace of every thread of `pid` (gdb attaches, prints, detaches),
/// without gdb's synthesized tail-call frames; None when gdb is
/// missing.
fn gdb_backtraces(pid: i32) -> Option<(BTreeMap<i32, Vec<Plain>>, String)> {
    let Some(gdb) = which("gdb") else {
        skip_or_fail("gdb not found (the oracle of the stack tests); install gdb");
        return None;
    };
    let dir = crate::support::fixtures::tmp_dir().join("gdb");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join(format!("tailcalls-{}.py", std::process::id()));
    if !script.exists() {
        let tmp = script.with_extension(format!("tmp{pid}"));
        std::fs::write(&tmp, GDB_TAILCALLS).unwrap();
        std::fs::rename(&tmp, &script).unwrap();
    }
    let out = run_with_deadline(
        Command::new(gdb)
            .args([
                "-batch",
                "-nx",
                "-iex",
                "set debuginfod enabled off",
                "-ex",
                "set backtrace past-main on",
                "-ex",
                "set print frame-arguments none",
                "-ex",
                "set width 0",
                "-ex",
                "set height 0",
                "-x",
            ])
            .arg(&script)
            .args([
                "-p",
                &pid.to_string(),
                "-ex",
                "thread apply all bt",
                "-ex",
                "thread apply all python latch_tailcalls()",
            ]),
        secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parsed = parse_gdb(&text);
    assert!(
        !parsed.is_empty() && parsed.values().all(|f| !f.is_empty()),
        "no backtraces in gdb's output:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tailcalls = parse_tailcalls(&text);
    if tailcalls.len() != parsed.len() {
        eprintln!(
            "warning: gdb did not list its tail-call frames (no Python?); they count as frames:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (tid, frames) in parsed.iter_mut() {
        for &i in tailcalls.get(tid).into_iter().flatten().rev() {
            if i < frames.len() {
                frames.remove(i);
            }
        }
    }
    // gdb has detached: every thread runs untraced again.
    let ok = procfs::wait_for(secs(10), || {
        procfs::live_tasks(pid)
            .iter()
            .all(|t| t.tracer_pid == 0 && !matches!(t.state, 't' | 'T'))
    });
    assert!(
        ok,
        "the target is not running untraced after gdb detached: {:?}",
        procfs::live_tasks(pid)
    );
    Some((parsed, text))
}

/// Function symbols of an ELF file and of its debug file (by build-id in
/// /usr/lib/debug), as name -> addresses, for telling aliases apart from
/// real differences (`__GI___clock_nanosleep` is `clock_nanosleep`).
fn symbol_addresses(path: &Path) -> HashMap<String, HashSet<u64>> {
    use object::{Object, ObjectSymbol, SymbolKind};
    let mut map: HashMap<String, HashSet<u64>> = HashMap::new();
    let mut read = |file: &Path| -> Option<()> {
        let data = std::fs::read(file).ok()?;
        let obj = object::File::parse(&*data).ok()?;
        for sym in obj.symbols().chain(obj.dynamic_symbols()) {
            if sym.kind() != SymbolKind::Text || sym.address() == 0 {
                continue;
            }
            if let Ok(name) = sym.name() {
                map.entry(normalize(name))
                    .or_default()
                    .insert(sym.address());
            }
        }
        Some(())
    };
    read(path);
    if let Some(debug) = build_id_debug_file(path) {
        read(&debug);
    }
    map
}

/// latch and gdb agree on a frame: the same file basename and line (or
/// neither has one), and the same function: equal names, two names of one
/// address in the frame's module, or both unknown.
fn same_function(
    latch: &Frame,
    gdb: &Plain,
    symbols: &mut HashMap<String, HashMap<String, HashSet<u64>>>,
) -> bool {
    let ours = latch.plain();
    if (ours.file.as_deref(), ours.line) != (gdb.file.as_deref(), gdb.line) {
        return false;
    }
    let l = normalize(&latch.name);
    if l == gdb.name {
        return true;
    }
    if gdb.name == "??" {
        return l.starts_with("0x");
    }
    let Some(module) = latch.module.as_deref() else {
        return false;
    };
    let syms = symbols
        .entry(module.to_string())
        .or_insert_with(|| symbol_addresses(Path::new(module)));
    match (syms.get(&l), syms.get(&gdb.name)) {
        (Some(a), Some(b)) => !a.is_disjoint(b),
        _ => false,
    }
}

/// gdb sees the target first (attach, backtrace, detach), then latch: thread
/// by thread (by LWP id), frame by frame, the functions and the file:line
/// must be the same (gdb's made-up tail-call frames aside). The heartbeat
/// thread may be anywhere in its loop, so only its frames from heartbeat_main
/// on count; in Go only the threads of the two locked goroutines count.
fn compare_with_gdb(s: Stack) {
    if !libc_debug_info() {
        return;
    }
    let Some(exe) = stack_fixture(s) else { return };
    let target = Target::start_cmd(Command::new(&exe));
    let Some((gdb, gdb_text)) = gdb_backtraces(target.pid) else {
        return;
    };
    // The fixture is what the tests think it is: gdb sees the known frames
    // at the marker lines.
    let as_plain: BTreeMap<i64, Vec<Plain>> =
        gdb.iter().map(|(t, f)| (*t as i64, f.clone())).collect();
    let go = s == Stack::Go;
    match s {
        Stack::Cpp => expect_cpp_names(&target, &as_plain, "gdb (fixture check)"),
        Stack::Go => {
            for name in ["main.levelTwo", "main.mainWait"] {
                assert!(
                    gdb.values().flatten().any(|f| f.name == name),
                    "fixture problem: gdb sees no {name} frame:\n{gdb_text}"
                );
            }
        }
        _ => expect_c_names(s, &target, &as_plain, "gdb (fixture check)"),
    }
    let mut dap = attached_threads(target.pid);
    assert_entry_stop(&mut dap, target.pid as i64);
    let stacks = all_stacks(&mut dap);
    let heartbeat = (!go).then(|| tid_of(&target, "heartbeat"));
    let mut symbols = HashMap::new();
    let mut diffs = Vec::new();
    let mut compared = 0;
    assert_eq!(
        stacks.keys().map(|&t| t as i32).collect::<Vec<_>>(),
        gdb.keys().copied().collect::<Vec<_>>(),
        "latch and gdb see different threads; gdb:\n{gdb_text}"
    );
    for (tid, frames) in &stacks {
        let theirs = &gdb[&(*tid as i32)];
        let (mut ours, mut theirs) = (&frames[..], &theirs[..]);
        if go {
            // Only the two goroutines locked to their threads and blocked in
            // read(2) stay put between gdb and latch; the other threads are
            // the scheduler's. gdb ends a Go stack with a `0x0 in ??` frame.
            if !theirs
                .iter()
                .any(|f| f.name == "main.levelTwo" || f.name == "main.mainWait")
            {
                continue;
            }
            while theirs.last().is_some_and(|f| f.name == "??") {
                theirs = &theirs[..theirs.len() - 1];
            }
        }
        compared += 1;
        if Some(*tid) == heartbeat {
            let cut = |names: Vec<String>| names.iter().position(|n| n == "heartbeat_main");
            let a = cut(ours.iter().map(|f| normalize(&f.name)).collect());
            let b = cut(theirs.iter().map(|f| f.name.clone()).collect());
            match (a, b) {
                (Some(a), Some(b)) => {
                    ours = &ours[a..];
                    theirs = &theirs[b..];
                }
                _ => {
                    diffs.push(format!("thread {tid} (heartbeat): heartbeat_main missing"));
                }
            }
        }
        let same = ours.len() == theirs.len()
            && ours
                .iter()
                .zip(theirs)
                .all(|(l, g)| same_function(l, g, &mut symbols));
        if !same {
            let n = ours.len().max(theirs.len());
            let rows: Vec<String> = (0..n)
                .map(|i| {
                    let show = |p: Plain| match p.file {
                        Some(file) => format!("{} {file}:{}", p.name, p.line),
                        None => p.name,
                    };
                    let l = ours.get(i).map_or("-".to_string(), |f| show(f.plain()));
                    let g = theirs.get(i).map_or("-".to_string(), |f| show(f.clone()));
                    let mark = match (ours.get(i), theirs.get(i)) {
                        (Some(a), Some(b)) if same_function(a, b, &mut symbols) => " ",
                        _ => "!",
                    };
                    format!("  {mark} #{i:<3} {l:<64} {g}")
                })
                .collect();
            diffs.push(format!(
                "thread {tid}: latch (left) vs gdb (right)\n{}",
                rows.join("\n")
            ));
        }
    }
    let at_least = if go { 2 } else { stacks.len() };
    assert!(
        compared >= at_least,
        "compared {compared} threads with gdb, expected {at_least}:\n{gdb_text}"
    );
    assert!(
        diffs.is_empty(),
        "{}: latch's functions, files or lines differ from gdb's:\n{}\n\ngdb's output:\n{gdb_text}",
        s.exe_name(),
        diffs.join("\n")
    );
    dap.disconnect(json!({}));
    assert_runs_on(&target, s);
}

/// The /proc check after the detach; Go's runtime may have started a thread meanwhile
/// (gdb and latch each stop it for a while), which is its doing, not harm.
fn assert_runs_on(target: &Target, s: Stack) {
    if s == Stack::Go {
        target.assert_runs_on_with_new_threads_allowed();
    } else {
        target.assert_runs_on(false);
    }
}

#[test]
fn stacks_match_gdb_c_o0() {
    require_harness!();
    compare_with_gdb(Stack::O0);
}

#[test]
fn stacks_match_gdb_c_o2() {
    require_harness!();
    compare_with_gdb(Stack::O2);
}

#[test]
fn stacks_match_gdb_cpp() {
    require_harness!();
    compare_with_gdb(Stack::Cpp);
}

#[test]
fn stacks_match_gdb_go() {
    require_harness!();
    compare_with_gdb(Stack::Go);
}

#[test]
fn gdb_output_parser() {
    let text = "\
0x00007f in __futex_abstimed_wait_common64 (private=...) at ./nptl/futex-internal.c:57
Thread 2 (Thread 0x7f12 (LWP 6483) \"worker\"):
#0  0x00007f121ba4fdf2 in __libc_pause () at ../sysdeps/unix/sysv/linux/pause.c:29
#1  0x000055914f60a76b in level_three (n=...) at /w/stacks/stack.c:27
#2  0x000055955a28954c in shapes::Widget::middle (n=..., this=...) at /w/stack.cpp:32
#3  shapes::Widget::outer (this=..., n=...) at /w/stack.cpp:38
#4  0x00007f121ba858ec in clock_nanosleep@GLIBC_2.2.5 () from /lib/x86_64-linux-gnu/libc.so.6
#5  0x0000000000000000 in ?? ()

Thread 1 (Thread 0x7f13 (LWP 6481) \"stack_O0\"):
#0  __futex_abstimed_wait_common64 (private=..., cancel=...) at ./nptl/futex-internal.c:57
#1  0x000055914f60a221 in _start ()
";
    let p = parse_gdb(text);
    let names = |tid: i32| p[&tid].iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(6483),
        [
            "__libc_pause",
            "level_three",
            "shapes::Widget::middle",
            "shapes::Widget::outer",
            "clock_nanosleep",
            "??"
        ]
    );
    assert_eq!(names(6481), ["__futex_abstimed_wait_common64", "_start"]);
    assert_eq!(p[&6483][1].file.as_deref(), Some("stack.c"));
    assert_eq!(p[&6483][1].line, 27);
    assert_eq!(p[&6483][1].path.as_deref(), Some("/w/stacks/stack.c"));
    assert_eq!(p[&6483][4].file, None);
    assert_eq!(normalize("ns::Widget::spin(int)"), "ns::Widget::spin");
    assert_eq!(
        normalize("void f<int>(std::function<void (int)>)"),
        "void f<int>"
    );
    assert_eq!(normalize("clock_nanosleep@@GLIBC_2.17"), "clock_nanosleep");
    assert_eq!(normalize("main"), "main");
    let t = parse_tailcalls("Thread 1 (x):\nlatch-tailcalls 6481: 2 5\nlatch-tailcalls 6483: \n");
    assert_eq!(t[&6481], [2, 5]);
    assert!(t[&6483].is_empty());
}

// ------------------------------------------------------------------- CLI

/// The stacks `latch attach PID` prints: tid -> (thread name, frames).
fn parse_cli_stacks(text: &str) -> BTreeMap<i32, (String, Vec<(Plain, bool)>)> {
    let mut out = BTreeMap::new();
    let mut current: Option<i32> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Thread ") {
            // Thread 1235 "worker":
            let mut parts = rest.splitn(2, ' ');
            current = parts.next().and_then(|t| t.parse().ok());
            if let Some(tid) = current {
                let name = parts
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(':')
                    .trim_matches('"')
                    .to_string();
                out.insert(tid, (name, Vec::new()));
            }
            continue;
        }
        let trimmed = line.trim_start();
        let (Some(tid), true) = (current, line.starts_with("  #")) else {
            continue;
        };
        // #N  0xPC in NAME at FILE:LINE [inlined]  |  #N  0xPC in NAME (MODULE)
        let Some((_, rest)) = trimmed.split_once(" in ") else {
            continue;
        };
        let (rest, inlined) = match rest.strip_suffix(" [inlined]") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let plain = match rest.rsplit_once(" at ") {
            Some((name, loc)) => {
                let (file, l) = loc.rsplit_once(':').unwrap_or((loc, "0"));
                Plain {
                    name: normalize(name),
                    file: Some(basename(file)),
                    line: l.parse().unwrap_or(0),
                    path: Some(file.to_string()),
                }
            }
            None => {
                let name = rest.rsplit_once(" (").map_or(rest, |(n, _)| n);
                Plain {
                    name: normalize(name),
                    file: None,
                    line: 0,
                    path: None,
                }
            }
        };
        out.get_mut(&tid).unwrap().1.push((plain, inlined));
    }
    out
}

#[test]
fn cli_attach_prints_stacks() {
    require_harness!();
    for s in [Stack::O2, Stack::Cpp] {
        let Some(exe) = stack_fixture(s) else {
            continue;
        };
        let target = Target::start_cmd(Command::new(&exe));
        let out = run_with_deadline(
            Command::new(latch_bin()).args(["attach", &target.pid.to_string()]),
            secs(20),
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "latch attach failed ({}): {stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let stacks = parse_cli_stacks(&stdout);
        let tids: Vec<i32> = target.initial.iter().map(|t| t.tid).collect();
        assert_eq!(
            stacks.keys().copied().collect::<Vec<_>>(),
            tids,
            "latch attach should print one stack per thread:\n{stdout}"
        );
        for f in stacks.values().flat_map(|(_, f)| f) {
            assert!(!f.0.name.is_empty(), "a frame without a name:\n{stdout}");
        }
        for t in &target.initial {
            assert_eq!(
                stacks[&t.tid].0, t.comm,
                "thread {}'s name in:\n{stdout}",
                t.tid
            );
        }
        let map: BTreeMap<i64, Vec<Plain>> = stacks
            .iter()
            .map(|(t, (_, f))| (*t as i64, f.iter().map(|(p, _)| p.clone()).collect()))
            .collect();
        let who = format!("latch attach {}", s.exe_name());
        if s == Stack::Cpp {
            let tid = tid_of(&target, "widget");
            let at = expect_run(&map[&tid], &CPP_WIDGET[..3], s, &who);
            let (block, middle, outer) = (
                &stacks[&(tid as i32)].1[at],
                &stacks[&(tid as i32)].1[at + 1],
                &stacks[&(tid as i32)].1[at + 2],
            );
            assert!(
                middle.1 && !block.1 && !outer.1,
                "{who}: only the inlined middle() should be marked [inlined]:\n{stdout}"
            );
            expect_cpp_names(&target, &map, &who);
        } else {
            expect_c_names(s, &target, &map, &who);
        }
        target.assert_runs_on(false);
    }
}

/// A process whose `main` called `pthread_exit`: its leader is a zombie whose
/// `/proc/PID/maps` is empty and whose memory cannot be read, while its other threads
/// run on. latch reads through a live thread: every thread's stack is whole, as gdb
/// attached to that thread shows it, and the modules are listed.
#[test]
fn stacks_of_a_process_whose_main_thread_exited_match_gdb() {
    require_harness!();
    if !libc_debug_info() {
        return;
    }
    use crate::support::Fixture;
    let target = Target::start(Fixture::PthreadExit, &["1"]);
    assert_eq!(
        procfs::process_state(target.pid),
        Some('Z'),
        "the leader has exited"
    );
    let sleeper = tid_of(&target, "sleeper");
    // gdb given a thread id attaches to that thread alone: enough for an oracle.
    let Some((gdb, gdb_text)) = gdb_backtraces(sleeper as i32) else {
        return;
    };
    let theirs = &gdb[&(sleeper as i32)];
    assert!(
        theirs.iter().any(|f| f.name == "sleeper"),
        "fixture problem: gdb sees no sleeper frame:\n{gdb_text}"
    );

    let mut dap = Dap::attached(target.pid, true);
    let (ours, _) = stack_trace(&mut dap, sleeper, None, None);
    let mut symbols = HashMap::new();
    assert!(
        ours.len() == theirs.len()
            && ours
                .iter()
                .zip(theirs)
                .all(|(l, g)| same_function(l, g, &mut symbols)),
        "latch's stack of {sleeper} differs from gdb's:\n{}\n\ngdb:\n{gdb_text}",
        describe_frames(&ours)
    );
    for (tid, frames) in all_stacks(&mut dap) {
        let names: Vec<String> = frames.iter().map(|f| normalize(&f.name)).collect();
        assert!(
            names.iter().any(|n| n == "start_thread"),
            "thread {tid}'s stack reaches start_thread: {names:?}"
        );
    }
    let modules = dap.ok("modules", json!({}));
    let paths: Vec<&str> = modules["body"]["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["path"].as_str())
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("/pthread_exit"))
            && paths.iter().any(|p| basename(p).starts_with("libc.so")),
        "the executable and libc are listed: {paths:?}"
    );
    dap.disconnect(json!({}));
    target.assert_runs_on(false);

    // The terminal shows the same threads' stacks.
    let out = run_with_deadline(
        Command::new(latch_bin()).args(["attach", &target.pid.to_string()]),
        secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "latch attach failed: {stdout}");
    for (comm, function) in [("sleeper", "sleeper"), ("reporter", "reporter")] {
        let tid = tid_of(&target, comm);
        let stack: Vec<&str> = stdout
            .lines()
            .skip_while(|l| !l.starts_with(&format!("Thread {tid} ")))
            .skip(1)
            .take_while(|l| l.trim_start().starts_with('#'))
            .collect();
        assert!(
            stack
                .iter()
                .any(|l| l.contains(&format!(" in {function} at ")))
                && stack.iter().any(|l| l.contains(" in start_thread")),
            "thread {tid} ({comm}) in the terminal: {stack:#?}\n{stdout}"
        );
    }
    target.assert_runs_on(false);
}

/// cgo's trampoline between a C thread's start and Go's `mstart` has no call frame
/// information. latch goes through it, as gdb goes as far as it: every Go thread's stack
/// is gdb's up to `crosscall_amd64` (`crosscall1` in newer Go), then exactly
/// `threadentry`, `start_thread` and `clone3`, where a thread's stack ends.
#[test]
fn cgo_threads_unwind_through_the_trampoline_to_clone3() {
    require_harness!();
    if !libc_debug_info() {
        return;
    }
    let Some(exe) = crate::support::fixtures::cgo_fixture() else {
        return;
    };
    let target = Target::start_cmd(Command::new(&exe));
    let Some((gdb, gdb_text)) = gdb_backtraces(target.pid) else {
        return;
    };
    let is_trampoline = |name: &str| name == "crosscall_amd64" || name == "crosscall1";
    let mut dap = Dap::attached(target.pid, true);
    let stacks = all_stacks(&mut dap);
    let mut symbols = HashMap::new();
    let mut through = 0;
    for (tid, frames) in &stacks {
        let names: Vec<String> = frames.iter().map(|f| normalize(&f.name)).collect();
        let Some(at) = names.iter().position(|n| is_trampoline(n)) else {
            continue;
        };
        through += 1;
        assert_eq!(
            names[at + 1..],
            ["threadentry", "start_thread", "clone3"],
            "thread {tid}: after cgo's trampoline:\n{}",
            describe_frames(frames)
        );
        // gdb's frames from runtime.mstart to the trampoline are latch's (the frames
        // above may change between the two looks: these threads are the scheduler's).
        let theirs = &gdb[&(*tid as i32)];
        let Some(gdb_at) = theirs.iter().position(|f| is_trampoline(&f.name)) else {
            panic!("thread {tid}: gdb does not reach cgo's trampoline:\n{gdb_text}");
        };
        let from = |names: &[String]| names.iter().rposition(|n| n == "runtime.mstart");
        let gdb_names: Vec<String> = theirs.iter().map(|f| f.name.clone()).collect();
        let (Some(ours_from), Some(gdb_from)) = (from(&names[..at]), from(&gdb_names[..gdb_at]))
        else {
            panic!("thread {tid}: no runtime.mstart below the trampoline:\n{gdb_text}");
        };
        assert!(
            frames[ours_from..=at]
                .iter()
                .zip(&theirs[gdb_from..=gdb_at])
                .all(|(l, g)| same_function(l, g, &mut symbols))
                && at - ours_from == gdb_at - gdb_from,
            "thread {tid}: latch and gdb differ up to the trampoline:\n{}\n\ngdb:\n{gdb_text}",
            describe_frames(frames)
        );
    }
    assert!(
        through > 0,
        "no thread's stack passes through cgo's trampoline:\n{stacks:#?}"
    );
    dap.disconnect(json!({}));
    target.assert_runs_on_with_new_threads_allowed();
}

/// Attached with stopOnEntry, the thread view asked for (`goroutines: false`): these
/// tests compare OS threads' stacks (with gdb's, by LWP), a Go program's too.
fn attached_threads(pid: i32) -> Dap {
    let mut dap = Dap::start();
    dap.initialize();
    let r = dap.attach(json!({ "pid": pid, "stopOnEntry": true, "goroutines": false }));
    assert_eq!(r["success"], true, "attach to {pid} failed: {r}");
    dap
}
