//! Source-level debugging against the real binary: `next`, `stepIn` and `stepOut`
//! through the shapes of code that break steppers (an inlined call, recursion that
//! stepping out must return through by frame, a call through the PLT into a library
//! without line information, a signal handler that runs during a step), `singleThread`
//! steps that must not let any other thread move; and line breakpoints as editors set
//! them: in another checkout or through a symlink, logpoints, a library loaded later
//! by dlopen, and `latch attach --break` from the terminal.
//!
//! The targets (tests/fixtures/breakpoints/) mark their lines with `line:NAME`
//! comments; every expected place is read from there, and each stop's place is what
//! `stackTrace` says of the stepping thread.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::fixtures::{out_dir, source_dir};
use crate::support::stackfix::marker_line;
use crate::support::{secs, text, Dap, Target};

pub fn source() -> PathBuf {
    source_dir().join("breakpoints/stepping.c")
}

pub fn line(name: &str) -> u32 {
    marker_line(&source(), name)
}

/// Builds the library without line information and the program against it (once).
pub fn program() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = out_dir().join("stepping");
        std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
        let run = |cmd: &mut Command| -> Result<(), String> {
            let done = cmd.output().map_err(|e| format!("cannot run cc: {e}"))?;
            if done.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&done.stderr).into_owned())
            }
        };
        run(Command::new("cc")
            .args(["-O0", "-g0", "-shared", "-fPIC", "-o"])
            .arg(out.join("libstepnolines.so"))
            .arg(source_dir().join("breakpoints/nolines.c")))?;
        let binary = out.join("stepping");
        run(Command::new("cc")
            .args(["-O0", "-g", "-pthread", "-Wall", "-o"])
            .arg(&binary)
            .arg(source())
            .arg(format!("-L{}", out.display()))
            .arg("-lstepnolines")
            .arg(format!("-Wl,-rpath,{}", out.display())))?;
        Ok(binary)
    });
    match built {
        Ok(binary) => binary.clone(),
        Err(err) => panic!("building the stepping fixture failed: {err}"),
    }
}

/// The stepping fixture, started and ready: `loop` makes it call work() every 20 ms,
/// otherwise once per line on its stdin.
pub fn start(args: &[&str]) -> Target {
    let mut command = Command::new(program());
    command.args(args);
    let mut target = Target::spawn(command);
    target.wait_ready(secs(10));
    target
}

/// A target attached and running, with a breakpoint at `at`, and its main thread
/// stopped there.
struct Session {
    target: Target,
    dap: Dap,
    tid: i64,
}

impl Session {
    fn stopped_at(at: &str) -> Session {
        let mut target = start(&[]);
        let mut dap = Dap::attached(target.pid, false);
        let path = source().canonicalize().unwrap();
        let set = dap.ok(
            "setBreakpoints",
            json!({ "source": { "path": path }, "breakpoints": [{ "line": line(at) }] }),
        );
        let breakpoint = &set["body"]["breakpoints"][0];
        assert_eq!(breakpoint["verified"], true, "{set}");
        assert_eq!(breakpoint["line"], line(at), "{set}");
        target.send_line("go");
        let stopped = dap.next_event("stopped", secs(10));
        assert_eq!(stopped["body"]["reason"], "breakpoint", "{stopped}");
        let tid = stopped["body"]["threadId"].as_i64().unwrap();
        assert_eq!(tid, target.pid as i64, "the main thread calls work()");
        // The breakpoint has done its job: steps must stop for their own reasons.
        dap.ok(
            "setBreakpoints",
            json!({ "source": { "path": path }, "breakpoints": [] }),
        );
        let mut session = Session { target, dap, tid };
        assert_eq!(session.place(0), ("work".to_string(), line(at)));
        session
    }

    /// (function, line) of frame `level` of the stepping thread.
    fn place(&mut self, level: usize) -> (String, u32) {
        let frames = self.frames();
        let frame = &frames[level];
        (
            frame["name"].as_str().unwrap_or_default().to_string(),
            frame["line"].as_u64().unwrap_or(0) as u32,
        )
    }

    fn frames(&mut self) -> Vec<Value> {
        let trace = self
            .dap
            .ok("stackTrace", json!({ "threadId": self.tid, "levels": 30 }));
        trace["body"]["stackFrames"].as_array().unwrap().clone()
    }

    /// One step request; the stop it ends with must be a step of this thread.
    fn step(&mut self, command: &str, extra: Value) -> (String, u32) {
        let mut arguments = json!({ "threadId": self.tid });
        if let (Some(into), Some(more)) = (arguments.as_object_mut(), extra.as_object()) {
            into.extend(more.clone());
        }
        self.dap.ok(command, arguments);
        let stopped = self.dap.next_event("stopped", secs(20));
        assert_eq!(stopped["body"]["reason"], "step", "{command}: {stopped}");
        assert_eq!(stopped["body"]["threadId"], self.tid, "{stopped}");
        self.place(0)
    }

    fn finish(mut self) {
        self.dap.ok("disconnect", json!({}));
        assert!(self.dap.wait_exit(secs(10)).success());
        self.target.assert_runs_on(false);
        text::assert_code_as_in_files(self.target.pid);
    }
}

fn at(function: &str, name: &str) -> (String, u32) {
    (function.to_string(), line(name))
}

/// `next` goes line by line through work(): over the inlined call, over a recursion
/// three calls deep, over a libc call through the PLT, over a library function without
/// lines.
#[test]
fn next_goes_over_inlined_calls_recursion_and_library_calls() {
    require_harness!();
    let mut s = Session::stopped_at("work_start");
    for expected in [
        "work_inline",
        "work_depth",
        "work_libc",
        "work_nolines",
        "work_sum",
        "work_return",
    ] {
        assert_eq!(s.step("next", json!({})), at("work", expected));
    }
    assert_eq!(s.step("next", json!({})), at("work", "work_end"));
    // Off the end of work(): back in main (its call's line is finished first, as gdb
    // does).
    let (function, _) = s.step("next", json!({}));
    assert_eq!(function, "main");
    s.dap.ok("continue", json!({ "threadId": s.tid }));
    let done = s.target.wait_line("done", secs(10));
    assert_eq!(done, "33 handled 0", "work() computed something else");
    s.finish();
}

/// `stepIn` enters the inlined call (shown as its own frame over work), `stepOut`
/// leaves it for work's line; then into depth(3), down one recursion, and `stepOut`
/// returns to the caller's frame: the same function one frame up, by stack depth.
#[test]
fn step_in_and_out_of_inlined_calls_and_recursion() {
    require_harness!();
    let mut s = Session::stopped_at("work_start");
    assert_eq!(s.step("stepIn", json!({})), at("twice", "twice_body"));
    assert_eq!(s.place(1).0, "work", "the inlined call's caller");
    assert_eq!(s.step("stepOut", json!({})), at("work", "work_inline"));

    assert_eq!(s.step("next", json!({})), at("work", "work_depth"));
    assert_eq!(s.step("stepIn", json!({})), at("depth", "depth_test"));
    let depth_frames = |s: &mut Session| s.frames().iter().filter(|f| f["name"] == "depth").count();
    assert_eq!(depth_frames(&mut s), 1);
    assert_eq!(s.step("next", json!({})), at("depth", "depth_call"));
    assert_eq!(s.step("stepIn", json!({})), at("depth", "depth_test"));
    assert_eq!(depth_frames(&mut s), 2, "one recursion deeper");
    // Out of depth(2): back in depth(3), at its call line, one frame less.
    assert_eq!(s.step("stepOut", json!({})), at("depth", "depth_call"));
    assert_eq!(depth_frames(&mut s), 1);
    assert_eq!(s.step("stepOut", json!({})), at("work", "work_depth"));
    s.finish();
}

/// `stepIn` on a line whose call goes through the PLT into a function without line
/// information goes over it and stops on the next line of the caller, as gdb does.
#[test]
fn step_in_goes_over_a_function_without_lines() {
    require_harness!();
    let mut s = Session::stopped_at("work_nolines");
    assert_eq!(s.step("stepIn", json!({})), at("work", "work_sum"));
    s.finish();
}

/// A signal that arrives while a line is stepped waits until the thread runs on (as in
/// Delve): the step ends on the next line, not in the handler, and the program sees the
/// signal exactly once.
#[test]
fn a_signal_handler_that_runs_during_a_step_does_not_end_it() {
    require_harness!();
    let mut s = Session::stopped_at("work_inline");
    // Queued for the stopped main thread: delivered as the step resumes it.
    // SAFETY: tgkill with the target's own ids.
    let sent =
        unsafe { libc::syscall(libc::SYS_tgkill, s.target.pid, s.target.pid, libc::SIGUSR1) };
    assert_eq!(sent, 0);
    assert_eq!(s.step("next", json!({})), at("work", "work_depth"));
    s.dap.ok("continue", json!({ "threadId": s.tid }));
    let done = s.target.wait_line("done", secs(10));
    assert_eq!(
        done,
        format!("33 handled {}", libc::SIGUSR1),
        "the handler did not run exactly once"
    );
    s.finish();
}

/// With `singleThread`, a step over a line that calls functions lets no other thread
/// run: the heartbeat thread's counter does not move. Without it, the others run
/// while the calls do.
#[test]
fn single_thread_steps_move_only_the_stepping_thread() {
    require_harness!();
    let mut s = Session::stopped_at("work_depth");
    let beats = |s: &Session| heartbeat(s.target.heartbeat_path());
    let before = beats(&s);
    assert_eq!(
        s.step("next", json!({ "singleThread": true })),
        at("work", "work_libc")
    );
    assert_eq!(
        s.step("next", json!({ "singleThread": true })),
        at("work", "work_nolines")
    );
    assert_eq!(
        beats(&s),
        before,
        "another thread ran during a singleThread step"
    );
    s.finish();
}

fn heartbeat(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    u64::from_ne_bytes(bytes[..8].try_into().unwrap())
}

/// An instruction step moves the pc by one instruction, inside the same function.
#[test]
fn instruction_steps_move_by_one_instruction() {
    require_harness!();
    let mut s = Session::stopped_at("work_sum");
    let pc = |s: &mut Session| {
        let frames = s.frames();
        let reference = frames[0]["instructionPointerReference"]
            .as_str()
            .unwrap()
            .to_string();
        u64::from_str_radix(reference.trim_start_matches("0x"), 16).unwrap()
    };
    let before = pc(&mut s);
    let (function, _) = s.step("next", json!({ "granularity": "instruction" }));
    let after = pc(&mut s);
    assert_eq!(function, "work");
    assert!(
        after > before && after - before <= 15,
        "one instruction from {before:#x} went to {after:#x}"
    );
    s.finish();
}

/// Stepping when the target runs is refused with a reason, not queued.
#[test]
fn stepping_a_running_target_is_refused() {
    require_harness!();
    let target = start(&[]);
    let mut dap = Dap::attached(target.pid, false);
    let r = dap.request("next", json!({ "threadId": target.pid }));
    assert_eq!(r["success"], false, "{r}");
    let text = r["body"]["error"]["format"].as_str().unwrap_or_default();
    assert!(text.contains("running"), "{r}");
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());
    target.assert_runs_on(false);
}

/// `latch attach PID --break FILE:LINE`: the process runs until a thread gets there;
/// latch prints that thread first, marked, with its stack at that line, then detaches,
/// leaving the process running with its code as the file has it.
#[test]
fn the_terminal_breaks_once_prints_the_thread_and_detaches() {
    require_harness!();
    let target = start(&["loop"]);
    let file = source().file_name().unwrap().to_string_lossy().into_owned();
    let place = format!("{file}:{}", line("work_depth"));
    let out = crate::support::target::run_with_deadline(
        Command::new(crate::support::dap::latch_bin()).args([
            "attach",
            &target.pid.to_string(),
            "--break",
            &place,
        ]),
        secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("waiting for a thread"),
        "no word of waiting: {stderr}"
    );
    let first_line = stdout.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with(&format!("thread {} reached", target.pid))
            && first_line.contains(&place),
        "{stdout}"
    );
    assert!(stdout.contains("[hit the breakpoint]"), "{stdout}");
    // The hitting thread's stack is the first printed, and its top frame is the line.
    let stack = stdout
        .split("\nThread ")
        .nth(1)
        .unwrap_or_else(|| panic!("no stacks in {stdout}"));
    assert!(stack.starts_with(&target.pid.to_string()), "{stdout}");
    let top = stack.lines().nth(1).unwrap_or_default();
    assert!(
        top.contains(" in work at ") && top.ends_with(&place),
        "frame #0 is not {place}: {top}"
    );
    assert!(stdout.contains("detached from"), "{stdout}");
    target.assert_runs_on(false);
    text::assert_code_as_in_files(target.pid);
}

/// A place that does not exist is an error that says why, and nothing is left traced.
#[test]
fn the_terminal_refuses_a_break_place_with_no_code() {
    require_harness!();
    let target = start(&["loop"]);
    let out = crate::support::target::run_with_deadline(
        Command::new(crate::support::dap::latch_bin()).args([
            "attach",
            &target.pid.to_string(),
            "--break",
            "no_such_function_here",
        ]),
        secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no_such_function_here") && stderr.contains("no function"),
        "{stderr}"
    );
    target.assert_runs_on(false);
}

/// Editors send the path of the file they show: a checkout somewhere other than where
/// the program was built, or a path through a symlink. Both match the program's file
/// by the end of the path; the first says which file it matched.
#[test]
fn a_breakpoint_in_another_checkout_or_through_a_symlink_hits() {
    require_harness!();
    let elsewhere = out_dir().join("elsewhere/checkout/tests/fixtures/breakpoints");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let copy = elsewhere.join("stepping.c");
    std::fs::copy(source(), &copy).unwrap();
    let link = out_dir().join("elsewhere/linked");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(source().parent().unwrap(), &link).unwrap();
    let through_link = link.join("stepping.c");

    let target = start(&["loop"]);
    let mut dap = Dap::attached(target.pid, false);
    for (path, says_where) in [(&copy, true), (&through_link, false)] {
        let set = dap.ok(
            "setBreakpoints",
            json!({ "source": { "path": path }, "breakpoints": [{ "line": line("work_sum") }] }),
        );
        let breakpoint = &set["body"]["breakpoints"][0];
        assert_eq!(breakpoint["verified"], true, "{set}");
        let message = breakpoint["message"].as_str().unwrap_or_default();
        let built_from = source();
        assert_eq!(
            message.contains(&*built_from.to_string_lossy()),
            says_where,
            "{}: {set}",
            path.display()
        );
        let stopped = dap.next_event("stopped", secs(10));
        assert_eq!(stopped["body"]["reason"], "breakpoint", "{stopped}");
        let trace = dap.ok(
            "stackTrace",
            json!({ "threadId": stopped["body"]["threadId"], "levels": 1 }),
        );
        assert_eq!(trace["body"]["stackFrames"][0]["line"], line("work_sum"));
        dap.ok(
            "setBreakpoints",
            json!({ "source": { "path": path }, "breakpoints": [] }),
        );
        dap.ok(
            "continue",
            json!({ "threadId": stopped["body"]["threadId"] }),
        );
    }
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());
    target.assert_runs_on(false);
    text::assert_code_as_in_files(target.pid);
}

/// A logpoint writes its message to the debug console each time the line runs, and
/// never stops the program: the thread that passes it runs on (its work() calls
/// continue), and no `stopped` event comes.
#[test]
fn a_logpoint_logs_and_never_stops() {
    require_harness!();
    let target = start(&["loop"]);
    let mut dap = Dap::attached(target.pid, false);
    let path = source().canonicalize().unwrap();
    let set = dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": path },
                "breakpoints": [{ "line": line("work_sum"), "logMessage": "passing work_sum" }] }),
    );
    assert_eq!(set["body"]["breakpoints"][0]["verified"], true, "{set}");
    let logged = dap.wait_until(secs(10), |dap| {
        dap.events("output")
            .iter()
            .filter(|e| e["body"]["output"] == "passing work_sum\n")
            .count()
            >= 5
    });
    assert!(
        logged,
        "fewer than 5 logpoint lines in 10 s:\n{}",
        dap.recent()
    );
    assert!(
        dap.events("stopped").is_empty(),
        "a logpoint stopped the target: {:?}",
        dap.events("stopped")
    );
    dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": path }, "breakpoints": [] }),
    );
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());
    target.assert_runs_on(false);
    text::assert_code_as_in_files(target.pid);
}

/// A breakpoint in a library that is not loaded yet is unverified, says why, and
/// verifies (a `breakpoint` event, `changed`) when the program loads the library with
/// dlopen, in time to stop its first call.
#[test]
fn a_breakpoint_in_a_library_loaded_later_verifies_and_hits() {
    require_harness!();
    let out = out_dir().join("dlopen");
    std::fs::create_dir_all(&out).unwrap();
    let plugin_source = source_dir().join("breakpoints/plugin.c");
    let library = out.join("libplugin.so");
    let host = out.join("dlopen_host");
    for (args, what) in [
        (
            vec![
                "-O0".into(),
                "-g".into(),
                "-shared".into(),
                "-fPIC".into(),
                "-o".into(),
                library.clone().into_os_string(),
                plugin_source.clone().into_os_string(),
            ],
            "the library",
        ),
        (
            vec![
                "-O0".into(),
                "-g".into(),
                "-pthread".into(),
                "-o".into(),
                host.clone().into_os_string(),
                source_dir()
                    .join("breakpoints/dlopen_host.c")
                    .into_os_string(),
                "-ldl".into(),
            ],
            "the host",
        ),
    ] {
        let built = Command::new("cc").args(&args).output().unwrap();
        assert!(
            built.status.success(),
            "building {what}: {}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let mut command = Command::new(&host);
    command.arg(&library);
    let mut target = Target::spawn(command);
    target.wait_ready(secs(10));
    let mut dap = Dap::attached(target.pid, false);
    let body_line = marker_line(&plugin_source, "plugin_body");
    let set = dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": plugin_source }, "breakpoints": [{ "line": body_line }] }),
    );
    let breakpoint = &set["body"]["breakpoints"][0];
    assert_eq!(breakpoint["verified"], false, "{set}");
    assert!(
        breakpoint["message"]
            .as_str()
            .is_some_and(|m| m.contains("no loaded module")),
        "{set}"
    );
    target.send_line("go");
    let changed = dap.next_event("breakpoint", secs(10));
    assert_eq!(changed["body"]["reason"], "changed", "{changed}");
    assert_eq!(changed["body"]["breakpoint"]["id"], breakpoint["id"]);
    assert_eq!(changed["body"]["breakpoint"]["verified"], true, "{changed}");
    let stopped = dap.next_event("stopped", secs(10));
    assert_eq!(stopped["body"]["reason"], "breakpoint", "{stopped}");
    let trace = dap.ok(
        "stackTrace",
        json!({ "threadId": stopped["body"]["threadId"], "levels": 2 }),
    );
    let top = &trace["body"]["stackFrames"][0];
    assert_eq!(top["name"], "plugin_work", "{trace}");
    assert_eq!(top["line"], body_line, "{trace}");
    dap.ok(
        "continue",
        json!({ "threadId": stopped["body"]["threadId"] }),
    );
    assert_eq!(target.wait_line("done", secs(10)), "13");
    dap.ok("disconnect", json!({}));
    assert!(dap.wait_exit(secs(10)).success());
    target.assert_runs_on(false);
    text::assert_code_as_in_files(target.pid);
}
