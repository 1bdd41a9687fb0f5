//! A Go program seen as goroutines: the goroutines fixture (tests/fixtures/goroutines)
//! writes its own `runtime.Stack(buf, true)` dump when every goroutine waits where it
//! should; latch's `threads` and `stackTrace` of it, attached with stopOnEntry, must
//! say what the dump says, goroutine by goroutine. With Debian's Go and the current one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::fixtures::{go_build_with, go_tool, source_dir, tmp_dir};
use crate::support::{secs, skip_or_fail, Dap};

const BASE: i64 = 1 << 22;

/// The fixture running, killed when dropped.
struct Fixture {
    child: Child,
    dump: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn build(go: &Path, label: &str, flags: &[&str]) -> PathBuf {
    let dir = tmp_dir().join("goroutines-dap");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(format!("goroutines-{label}"));
    go_build_with(go, &source_dir().join("goroutines"), &binary, flags, &[])
        .unwrap_or_else(|e| panic!("building the goroutines fixture ({label}): {e}"));
    binary
}

fn start(binary: &Path, idle: usize) -> Fixture {
    let work = tmp_dir()
        .join("goroutines-dap")
        .join(format!("run-{}", std::process::id()))
        .join(binary.file_name().unwrap());
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let (dump, marker) = (work.join("dump"), work.join("ready"));
    let child = Command::new(binary)
        .arg(idle.to_string())
        .arg(&dump)
        .arg(&marker)
        .spawn()
        .unwrap();
    let mut fixture = Fixture {
        child,
        dump: String::new(),
    };
    let deadline = Instant::now() + secs(60);
    while !marker.exists() {
        if let Ok(Some(status)) = fixture.child.try_wait() {
            panic!("the fixture ended early: {status}");
        }
        assert!(Instant::now() < deadline, "the fixture never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    fixture.dump = std::fs::read_to_string(&dump).unwrap();
    fixture
}

/// One goroutine of the dump.
#[derive(Debug)]
struct Dumped {
    id: i64,
    state: String,
    /// Function names of its frames, innermost first (runtime ones elided by Go).
    frames: Vec<String>,
    creator: Option<String>,
    text: String,
}

/// The fixture's dump, each goroutine with the frames Go's traceback shows and its
/// creator's function.
fn parse_dump(dump: &str) -> Vec<Dumped> {
    crate::support::godump::parse_dump(dump)
        .into_iter()
        .map(|d| Dumped {
            id: d.id,
            state: d.state,
            // Newer Go shows some of the runtime's frames (the finalizer goroutine's
            // runtime.runFinalizers): the user's are compared.
            frames: d.functions.into_iter().filter(|f| shown_by_go(f)).collect(),
            creator: d
                .created_by
                .map(|c| c.split(" at ").next().unwrap_or_default().to_string()),
            text: d.text,
        })
        .collect()
}

/// Whether Go's traceback shows a frame of this function (`showfuncinfo`).
fn shown_by_go(function: &str) -> bool {
    function.contains('.')
        && match function.strip_prefix("runtime.") {
            Some(rest) => rest.starts_with(|c: char| c.is_ascii_uppercase()),
            None => true,
        }
}

/// The top function a thread entry's name shows: `goroutine 5 [state]: F (thread..) {..}`.
fn named_function(name: &str) -> &str {
    let after = name.split_once("]: ").map_or("", |(_, rest)| rest);
    after
        .split(" (thread ")
        .next()
        .unwrap()
        .split(" {")
        .next()
        .unwrap()
        .split(" [runtime]")
        .next()
        .unwrap()
}

fn attach(pid: i32, extra: Value) -> Dap {
    let mut dap = Dap::start();
    dap.initialize();
    let mut args = json!({ "pid": pid, "stopOnEntry": true });
    args.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = dap.attach(args);
    assert_eq!(r["success"], true, "attach failed: {r}");
    dap.next_event("stopped", secs(20));
    dap
}

fn stack_names(dap: &mut Dap, id: i64) -> Vec<Value> {
    let trace = dap.ok("stackTrace", json!({ "threadId": id }));
    trace["body"]["stackFrames"].as_array().unwrap().clone()
}

fn assert_agrees_with_dump(go: &Path, label: &str) {
    let binary = build(go, label, &[]);
    let fixture = start(&binary, 20);
    let dumped = parse_dump(&fixture.dump);
    assert!(
        dumped.len() > 25,
        "{label}: a short dump:\n{}",
        fixture.dump
    );
    let pid = fixture.child.id() as i32;
    let mut dap = attach(pid, json!({}));
    let stopped = dap.events("stopped").last().cloned().unwrap();
    let threads = dap.threads();
    let goroutines: Vec<&(i64, String)> = threads.iter().filter(|(id, _)| *id >= BASE).collect();
    assert!(
        goroutines.len() >= dumped.len(),
        "{label}: {} goroutines listed, {} dumped:\n{threads:#?}",
        goroutines.len(),
        dumped.len()
    );
    // No tid collides, and an OS thread is listed only when it runs no goroutine.
    let stopped_id = stopped["body"]["threadId"].as_i64().unwrap();
    assert!(
        threads.iter().any(|(id, _)| *id == stopped_id),
        "{label}: the stopped id {stopped_id} is not listed: {threads:#?}"
    );
    let mut parked_checked = 0;
    for d in &dumped {
        let (id, name) = goroutines
            .iter()
            .find(|(id, _)| *id == BASE + d.id)
            .unwrap_or_else(|| panic!("{label}: goroutine {} not listed: {threads:#?}", d.id));
        assert!(
            name.starts_with(&format!("goroutine {} [", d.id)),
            "{label}: {name}"
        );
        // The main goroutine wrote the dump (running then, blocked now); the busy loop
        // runs or waits for a thread.
        let moving = d.id == 1 || d.text.contains("main.busy(");
        if !moving {
            let state = name[name.find('[').unwrap() + 1..]
                .split([',', ']'])
                .next()
                .unwrap();
            assert_eq!(state, d.state, "{label}: {name}\n{}", d.text);
            assert_eq!(
                named_function(name),
                d.frames[0],
                "{label}: top user function of {name}\n{}",
                d.text
            );
        }
        if d.text.contains("main.labelled") {
            assert!(
                name.contains("request=r42") && name.contains("user=ann"),
                "{label}: labels missing: {name}"
            );
        }
        let frames = stack_names(&mut dap, *id);
        let last = frames.last().unwrap();
        match &d.creator {
            Some(creator) => {
                assert_eq!(
                    last["name"].as_str().unwrap(),
                    format!("created by {creator}"),
                    "{label}: {name}: {frames:#?}"
                );
                assert_eq!(last["presentationHint"], "label", "{last}");
                assert!(last["line"].as_u64().unwrap() > 0, "{last}");
            }
            None => assert!(
                !last["name"].as_str().unwrap().starts_with("created by "),
                "{label}: {frames:#?}"
            ),
        }
        if !moving && !name.contains(" (thread ") {
            let names: Vec<String> = frames
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_string())
                .filter(|f| shown_by_go(f) && !f.starts_with("created by "))
                .collect();
            // Go elides the wrapper the compiler makes of `go f(args)` (a closure of the
            // creator, `main.startWorkers.func2` or `.gowrap1`, called by goexit); latch
            // shows it, as the frame it is.
            let shown = names.len().min(d.frames.len());
            assert_eq!(
                names[..shown],
                d.frames[..],
                "{label}: frames of {name}\n{}",
                d.text
            );
            let extra = &names[shown..];
            let wrapper = d
                .creator
                .as_ref()
                .is_some_and(|c| extra.len() == 1 && extra[0].starts_with(&format!("{c}.")));
            assert!(
                extra.is_empty() || wrapper,
                "{label}: frames of {name}: {names:?}\n{}",
                d.text
            );
            // Registers of a parked goroutine's innermost frame: what was saved.
            let scopes = dap.ok("scopes", json!({ "frameId": frames[0]["id"] }));
            let reference = scopes["body"]["scopes"]
                .as_array()
                .and_then(|all| all.iter().find(|s| s["name"] == "Registers"))
                .map(|s| s["variablesReference"].clone())
                .unwrap_or_else(|| panic!("no Registers scope: {scopes}"));
            let vars = dap.ok("variables", json!({ "variablesReference": reference }));
            let registers: Vec<&str> = vars["body"]["variables"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap())
                .collect();
            assert!(registers.contains(&"rip"), "{registers:?}");
            parked_checked += 1;
        }
    }
    assert!(
        parked_checked >= 20,
        "{label}: only {parked_checked} parked"
    );
    // A step of a goroutine that runs on no thread says why it cannot.
    let parked = goroutines
        .iter()
        .find(|(_, name)| name.contains("main.idle") && !name.contains("(thread "))
        .unwrap();
    let step = dap.request("next", json!({ "threadId": parked.0 }));
    assert_eq!(step["success"], false, "{step}");
    let why = step["body"]["error"]["format"]
        .as_str()
        .or(step["message"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("runs on no thread"), "{step}");
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());
}

fn current_go() -> Option<PathBuf> {
    std::env::var_os("LATCH_CURRENT_GO").map(PathBuf::from)
}

#[test]
fn goroutines_agree_with_runtime_stack_debian_go() {
    require_harness!();
    match go_tool() {
        Ok(go) => assert_agrees_with_dump(&go, "debian"),
        Err(why) => skip_or_fail(&format!("goroutines cannot be tested: {why}")),
    }
}

#[test]
fn goroutines_agree_with_runtime_stack_current_go() {
    require_harness!();
    match current_go() {
        Some(go) => assert_agrees_with_dump(&go, "current"),
        None => skip_or_fail("LATCH_CURRENT_GO does not name a current Go (see .ci/run)"),
    }
}

/// `maxGoroutines` cuts the list, and one console line says so; `goroutines: false`
/// and a binary without DWARF show threads.
fn assert_cut_and_thread_views(go: &Path, label: &str) {
    let binary = build(go, label, &[]);
    let fixture = start(&binary, 50);
    let pid = fixture.child.id() as i32;
    let mut dap = attach(pid, json!({ "maxGoroutines": 7 }));
    let threads = dap.threads();
    let listed = threads.iter().filter(|(id, _)| *id >= BASE).count();
    assert_eq!(listed, 7, "{label}: {threads:#?}");
    dap.threads();
    dap.drain_for(Duration::from_millis(200));
    let cut: Vec<Value> = dap
        .events("output")
        .into_iter()
        .filter(|e| {
            e["body"]["output"]
                .as_str()
                .is_some_and(|o| o.contains("set maxGoroutines to see all"))
        })
        .collect();
    assert_eq!(cut.len(), 1, "{label}: {cut:#?}");
    let text = cut[0]["body"]["output"].as_str().unwrap();
    assert!(text.contains("7 of "), "{text}");
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());

    let mut dap = attach(pid, json!({ "goroutines": false }));
    let threads = dap.threads();
    assert!(
        threads.iter().all(|(id, _)| *id < BASE),
        "{label}: {threads:#?}"
    );
    assert!(threads.iter().any(|(id, _)| *id == pid as i64));
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());
    drop(fixture);

    let bare = build(go, &format!("{label}-nodwarf"), &["-ldflags=-w"]);
    let fixture = start(&bare, 5);
    let pid = fixture.child.id() as i32;
    let mut dap = attach(pid, json!({}));
    let threads = dap.threads();
    assert!(
        threads.iter().all(|(id, _)| *id < BASE),
        "{label}: {threads:#?}"
    );
    dap.threads();
    dap.drain_for(Duration::from_millis(200));
    let said: Vec<Value> = dap
        .events("output")
        .into_iter()
        .filter(|e| {
            e["body"]["output"]
                .as_str()
                .is_some_and(|o| o.contains("goroutines need the program's DWARF"))
        })
        .collect();
    assert_eq!(said.len(), 1, "{label}: {said:#?}");
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());
}

#[test]
fn goroutines_cut_and_thread_views_debian_go() {
    require_harness!();
    match go_tool() {
        Ok(go) => assert_cut_and_thread_views(&go, "debian"),
        Err(why) => skip_or_fail(&format!("goroutines cannot be tested: {why}")),
    }
}

#[test]
fn goroutines_cut_and_thread_views_current_go() {
    require_harness!();
    match current_go() {
        Some(go) => assert_cut_and_thread_views(&go, "current"),
        None => skip_or_fail("LATCH_CURRENT_GO does not name a current Go (see .ci/run)"),
    }
}

/// A breakpoint hit in a goroutine names it (`stopped.threadId` is its id), its stack
/// is that of the thread it runs on, and `next`, `continue` and `pause` take its id.
fn assert_breakpoint_in_goroutine(go: &Path, label: &str) {
    let dir = tmp_dir().join("goroutines-dap");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(format!("breakpoints-go-{label}"));
    let source = source_dir().join("breakpoints").join("go");
    go_build_with(go, &source, &binary, &[], &[]).expect("building the Go fixture");
    let mut target = crate::support::Target::spawn(Command::new(&binary));
    target.wait_ready(secs(30));
    let mut dap = Dap::attached(target.pid, false);
    let set = dap.ok(
        "setFunctionBreakpoints",
        json!({ "breakpoints": [{ "name": "main.area" }] }),
    );
    assert_eq!(set["body"]["breakpoints"][0]["verified"], true, "{set}");
    let stopped = dap.next_event("stopped", secs(10));
    let id = stopped["body"]["threadId"].as_i64().unwrap();
    assert_eq!(
        id,
        BASE + 1,
        "{label}: main.area runs on the main goroutine: {stopped}"
    );
    let threads = dap.threads();
    let (_, name) = threads.iter().find(|(t, _)| *t == id).unwrap();
    assert!(
        name.starts_with("goroutine 1 [running]: main.area (thread "),
        "{label}: {name}"
    );
    let frames = stack_names(&mut dap, id);
    assert_eq!(frames[0]["name"], "main.area", "{frames:#?}");
    assert!(
        frames.iter().any(|f| f["name"] == "main.main"),
        "{frames:#?}"
    );
    dap.ok("setFunctionBreakpoints", json!({ "breakpoints": [] }));
    // A step of the goroutine steps the thread it runs on, and stops on it again.
    dap.ok("next", json!({ "threadId": id }));
    let stepped = dap.next_event("stopped", secs(10));
    assert_eq!(stepped["body"]["reason"], "step", "{stepped}");
    assert_eq!(stepped["body"]["threadId"], id, "{label}: {stepped}");
    dap.ok("continue", json!({ "threadId": id }));
    dap.ok("pause", json!({ "threadId": id }));
    let paused = dap.next_event("stopped", secs(10));
    let paused_id = paused["body"]["threadId"].as_i64().unwrap();
    let threads = dap.threads();
    assert!(
        threads.iter().any(|(t, _)| *t == paused_id),
        "{label}: {paused} names no listed thread: {threads:#?}"
    );
    stack_names(&mut dap, paused_id);
    // No OS-thread `thread` events after the attach's.
    let attach_events = dap.events("thread").len();
    dap.ok("continue", json!({ "threadId": paused_id }));
    dap.drain_for(Duration::from_millis(300));
    dap.ok("pause", json!({ "threadId": paused_id }));
    dap.next_event("stopped", secs(10));
    assert_eq!(dap.events("thread").len(), attach_events, "{label}");
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());
}

#[test]
fn a_breakpoint_in_a_goroutine_names_it_debian_go() {
    require_harness!();
    match go_tool() {
        Ok(go) => assert_breakpoint_in_goroutine(&go, "debian"),
        Err(why) => skip_or_fail(&format!("goroutines cannot be tested: {why}")),
    }
}

#[test]
fn a_breakpoint_in_a_goroutine_names_it_current_go() {
    require_harness!();
    match current_go() {
        Some(go) => assert_breakpoint_in_goroutine(&go, "current"),
        None => skip_or_fail("LATCH_CURRENT_GO does not name a current Go (see .ci/run)"),
    }
}

/// A `next` over a line that parks the goroutine (a sleep) ends on that goroutine,
/// whichever thread runs it then, and not on another goroutine that runs the same line
/// on the stepping thread meanwhile (as Delve steps).
fn assert_next_follows_the_goroutine(go: &Path, label: &str) {
    let dir = tmp_dir().join("goroutines-dap");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(format!("gostep-{label}"));
    let source = source_dir().join("gostep");
    go_build_with(go, &source, &binary, &[], &[]).expect("building the gostep fixture");
    let main_go = source.join("main.go");
    let sleep = crate::support::stackfix::marker_line(&main_go, "gostep_sleep");
    let after = crate::support::stackfix::marker_line(&main_go, "gostep_after");
    let mut target = crate::support::Target::spawn(Command::new(&binary));
    target.wait_ready(secs(30));
    let mut dap = Dap::attached(target.pid, false);
    let path = main_go.canonicalize().unwrap();
    for round in 0..6 {
        dap.ok(
            "setBreakpoints",
            json!({ "source": { "path": path }, "breakpoints": [{ "line": sleep }] }),
        );
        let stopped = dap.next_event("stopped", secs(10));
        let id = stopped["body"]["threadId"].as_i64().unwrap();
        assert!(id > BASE, "{label}: {stopped}");
        dap.ok(
            "setBreakpoints",
            json!({ "source": { "path": path }, "breakpoints": [] }),
        );
        dap.ok("next", json!({ "threadId": id }));
        let stepped = dap.next_event("stopped", secs(10));
        assert_eq!(stepped["body"]["reason"], "step", "{label}: {stepped}");
        assert_eq!(
            stepped["body"]["threadId"], id,
            "{label} round {round}: the step ended on another goroutine"
        );
        let frames = stack_names(&mut dap, id);
        assert_eq!(frames[0]["name"], "main.worker", "{label}: {frames:#?}");
        assert_eq!(frames[0]["line"], after, "{label}: {frames:#?}");
        dap.ok("continue", json!({ "threadId": id }));
    }
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());
}

#[test]
fn next_follows_the_goroutine_debian_go() {
    require_harness!();
    match go_tool() {
        Ok(go) => assert_next_follows_the_goroutine(&go, "debian"),
        Err(why) => skip_or_fail(&format!("goroutines cannot be tested: {why}")),
    }
}

#[test]
fn next_follows_the_goroutine_current_go() {
    require_harness!();
    match current_go() {
        Some(go) => assert_next_follows_the_goroutine(&go, "current"),
        None => skip_or_fail("LATCH_CURRENT_GO does not name a current Go (see .ci/run)"),
    }
}

/// A goroutine in C code (cgo) shows the C frames of its thread, then its Go frames down
/// to the `go` statement that created it, as Go's own traceback does (its Go stack goes
/// on from `g.syscallpc`, where the thread's unwind ends at `runtime.asmcgocall`).
#[test]
fn a_goroutine_in_c_shows_its_c_frames_then_its_go_frames() {
    require_harness!();
    let Some(exe) = crate::support::fixtures::cgo_fixture() else {
        return;
    };
    let target = crate::support::Target::start_cmd(Command::new(&exe));
    let mut dap = attach(target.pid, json!({}));
    let threads = dap.threads();
    let in_c: Vec<(i64, String, Vec<String>)> = threads
        .iter()
        .filter(|(id, _)| *id > BASE)
        .map(|(id, name)| {
            let frames = stack_names(&mut dap, *id);
            let names = frames
                .iter()
                .map(|f| f["name"].as_str().unwrap_or_default().to_string())
                .collect();
            (*id, name.clone(), names)
        })
        .filter(|(_, _, names): &(i64, String, Vec<String>)| {
            names.iter().any(|n| n.contains("Cfunc_wait_in_c"))
        })
        .collect();
    assert_eq!(in_c.len(), 1, "one goroutine waits in C: {threads:#?}");
    let (_, name, names) = &in_c[0];
    assert!(
        name.contains("[syscall]") && name.contains("(thread "),
        "{name}"
    );
    let at = |wanted: &str| {
        names
            .iter()
            .position(|n| n == wanted)
            .unwrap_or_else(|| panic!("no {wanted} in {names:#?}"))
    };
    let c_function = names
        .iter()
        .position(|n| n == "wait_in_c")
        .unwrap_or_else(|| panic!("no C frame wait_in_c in {names:#?}"));
    let order = [
        c_function,
        at("runtime.asmcgocall"),
        at("runtime.cgocall"),
        at("main._Cfunc_wait_in_c"),
        at("main.main.func1"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "C frames, then the Go ones: {names:#?}"
    );
    assert!(
        names.last().is_some_and(|n| n == "created by main.main"),
        "{names:#?}"
    );
    dap.disconnect(json!({}));
    target.assert_runs_on(false);
}

/// One goroutine as `dlv attach`'s `goroutines` command lists it.
#[derive(Debug)]
struct DelveGoroutine {
    id: i64,
    /// The topmost frame Delve calls the user's.
    function: String,
    /// Its wait reason (without Delve's wait time), `None` when it runs.
    reason: Option<String>,
    thread: Option<i32>,
}

/// `  Goroutine 18 - User: ./main.go:131 main.abandon.func1 (0x4d0512) [chan receive 3863]`
/// and `* Goroutine 25 - User: ./main.go:1 main.busy (0x4cf806) (thread 17479)`.
fn parse_delve_goroutines(text: &str) -> Vec<DelveGoroutine> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim_start_matches(['*', ' ', '(', 'd', 'l', 'v', ')']);
            let rest = rest.strip_prefix("Goroutine ")?;
            let (id, rest) = rest.split_once(" - ")?;
            let mut words = rest.split_whitespace();
            let _kind = words.next()?; // "User:"
            let _place = words.next()?;
            let function = words.next()?.to_string();
            let reason = rest
                .split_once('[')
                .and_then(|(_, r)| r.split_once(']'))
                .map(|(r, _)| {
                    // Delve 1.20 appends the wait's start time.
                    match r.rsplit_once(' ') {
                        Some((reason, since)) if since.chars().all(|c| c.is_ascii_digit()) => {
                            reason.to_string()
                        }
                        _ => r.to_string(),
                    }
                });
            let thread = rest
                .split_once("(thread ")
                .and_then(|(_, t)| t.split_once(')'))
                .and_then(|(t, _)| t.parse().ok());
            Some(DelveGoroutine {
                id: id.parse().ok()?,
                function,
                reason,
                thread,
            })
        })
        .collect()
}

/// latch's goroutine names: `goroutine 17 [chan receive]: main.worker (thread 1234)`.
fn latch_state_and_function(name: &str) -> (String, String) {
    let state = name
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map(|(s, _)| s.split(", ").next().unwrap_or(s).to_string())
        .unwrap_or_default();
    let function = name
        .split_once("]: ")
        .map(|(_, f)| f.split([' ', '{']).next().unwrap_or(f).to_string())
        .unwrap_or_default();
    (state, function)
}

/// Delve, the Go debugger, as a second oracle (Debian's Delve 1.20 reads Debian's Go
/// 1.19): its `goroutines` list of the same stopped-then-resumed program has the same
/// goroutine ids as latch's `threads`, the same wait reasons, the same thread for the
/// running goroutine, and the same topmost function where that is the program's own.
#[test]
fn goroutines_agree_with_delve() {
    require_harness!();
    let go = match go_tool() {
        Ok(go) => go,
        Err(why) => return skip_or_fail(&format!("goroutines cannot be tested: {why}")),
    };
    let Ok(dlv) = which_dlv() else {
        return skip_or_fail("dlv (Debian's delve) is not installed: apt-get install delve");
    };
    let binary = build(&go, "delve", &[]);
    let fixture = start(&binary, 5);
    let pid = fixture.child.id() as i32;
    let mut dap = attach(pid, json!({}));
    let ours: Vec<(i64, String)> = dap
        .threads()
        .into_iter()
        .filter(|(id, _)| *id > BASE)
        .map(|(id, name)| (id - BASE, name))
        .collect();
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());

    let mut delve = Command::new(dlv)
        .args([
            "attach",
            &pid.to_string(),
            "--allow-non-terminal-interactive=true",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting dlv");
    // `exit`, then "n": Delve asks whether to kill the process it attached to.
    std::io::Write::write_all(delve.stdin.as_mut().unwrap(), b"goroutines\nexit\nn\n").unwrap();
    let output = delve.wait_with_output().expect("dlv ran");
    let text = String::from_utf8_lossy(&output.stdout);
    let theirs = parse_delve_goroutines(&text);
    assert!(
        theirs.len() > 10,
        "Delve listed too few goroutines:\n{text}"
    );

    let mut our_ids: Vec<i64> = ours.iter().map(|(id, _)| *id).collect();
    let mut their_ids: Vec<i64> = theirs.iter().map(|g| g.id).collect();
    our_ids.sort_unstable();
    their_ids.sort_unstable();
    assert_eq!(
        our_ids, their_ids,
        "goroutine ids: latch {ours:#?}\nDelve:\n{text}"
    );
    let (mut reasons, mut running, mut functions) = (0, 0, 0);
    for g in &theirs {
        let name = &ours.iter().find(|(id, _)| *id == g.id).unwrap().1;
        let (state, function) = latch_state_and_function(name);
        match (&g.reason, g.thread) {
            (Some(reason), _) => {
                reasons += 1;
                assert_eq!(&state, reason, "goroutine {}: {name}\n{text}", g.id);
            }
            (None, Some(thread)) => {
                running += 1;
                assert!(
                    name.contains(&format!("(thread {thread})")),
                    "goroutine {} runs on thread {thread} for Delve: {name}\n{text}",
                    g.id
                );
            }
            (None, None) => {}
        }
        if g.function.starts_with("main.") {
            functions += 1;
            assert_eq!(function, g.function, "goroutine {}: {name}\n{text}", g.id);
        }
    }
    // The fixture has a dozen kinds of wait and five idle goroutines (its busy one may
    // be between two time slices, on no thread, when either looks).
    assert!(
        reasons >= 15 && functions >= 10,
        "compared {reasons} wait reasons, {running} threads, {functions} functions:\n{text}"
    );
    // Delve detached too: the fixture runs on, traced by no one.
    let tasks = crate::support::procfs::all_tasks(pid);
    assert!(
        tasks.iter().all(|t| t.tracer_pid == 0 && t.state != 't'),
        "{tasks:#?}"
    );
    drop(fixture);
}

fn which_dlv() -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("dlv"))
        .find(|candidate| candidate.is_file())
        .ok_or(())
}
