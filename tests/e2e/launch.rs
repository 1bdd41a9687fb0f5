//! `launch`: programs started by latch (tests/fixtures/launch/, built at test time), over
//! DAP against the real binary. What the program was started with (arguments, environment,
//! working directory) is what it prints, and its output comes as `output` events before
//! its `exited`; the stops at `main` and at the entry point are where gdb, readelf and the
//! kernel's auxiliary vector say they are; breakpoints set during configuration hit, in
//! `main` and in a library loaded later by dlopen; bad arguments fail before anything
//! runs; every way a session ends leaves the program killed (and reaped) or running
//! untraced with its code as in its files; a script that execs the real program lands in
//! it (and so does a `waitFor` attach that catches what a script execs); and a pre-fork
//! server's children never die of latch's `int3`s, whether they are let go or followed
//! through `startDebugging` into sessions of their own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::checks::assert_error;
use crate::support::code::{load_base, nm_value};
use crate::support::dap::REQUEST_TIMEOUT;
use crate::support::fixtures::{out_dir, source_dir, tmp_dir};
use crate::support::procfs;
use crate::support::stackfix::marker_line;
use crate::support::target::heartbeat_path;
use crate::support::text::{assert_code_as_in_files, assert_released};
use crate::support::{secs, thread_id, Dap, Target};

/// How long a launched program may take to stop or end, on a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);

/// The launch fixtures, built once per run into one directory.
struct Built {
    dir: PathBuf,
    report: PathBuf,
    server: PathBuf,
    prefork: PathBuf,
    loader: PathBuf,
    plugin: PathBuf,
    spawner: PathBuf,
}

fn launch_src() -> PathBuf {
    source_dir()
        .join("launch")
        .canonicalize()
        .expect("tests/fixtures/launch")
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    BUILT
        .get_or_init(build)
        .as_ref()
        .unwrap_or_else(|e| panic!("building the launch fixtures failed: {e}"))
}

fn build() -> Result<Built, String> {
    let src = launch_src();
    let dir = out_dir().join("launch");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let cc = |name: &str, source: &Path, flags: &[&str], libs: &[&str]| {
        let dest = dir.join(name);
        let tmp = dir.join(format!("{name}.tmp{}", std::process::id()));
        let done = Command::new("cc")
            .args(["-O0", "-g", "-Wall"])
            .args(flags)
            .arg("-o")
            .arg(&tmp)
            .arg(source)
            .args(libs)
            .output()
            .map_err(|e| format!("cannot run cc: {e}"))?;
        if !done.status.success() {
            return Err(format!(
                "cc failed for {}: {}",
                source.display(),
                String::from_utf8_lossy(&done.stderr)
            ));
        }
        std::fs::rename(&tmp, &dest).map_err(|e| e.to_string())?;
        Ok::<PathBuf, String>(dest)
    };
    let report = cc("report", &src.join("report.c"), &[], &[])?;
    let server = cc("server", &src.join("server.c"), &["-pthread"], &[])?;
    let prefork = cc("prefork", &src.join("prefork.c"), &[], &[])?;
    let loader = cc("loader", &src.join("loader.c"), &[], &["-ldl"])?;
    let spawner = cc("spawner", &src.join("spawner.c"), &[], &[])?;
    let plugin = cc("libplugin.so", &plugin_source(), &["-shared", "-fPIC"], &[])?;
    // The script, next to the program it execs (./report, from its working directory).
    let script = dir.join("run.sh");
    let tmp = dir.join(format!("run.sh.tmp{}", std::process::id()));
    std::fs::copy(src.join("run.sh"), &tmp).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &script).map_err(|e| e.to_string())?;
    Ok(Built {
        dir,
        report,
        server,
        prefork,
        loader,
        plugin,
        spawner,
    })
}

fn plugin_source() -> PathBuf {
    source_dir()
        .join("breakpoints/plugin.c")
        .canonicalize()
        .expect("tests/fixtures/breakpoints/plugin.c")
}

fn source(name: &str) -> PathBuf {
    launch_src().join(name)
}

fn line(file: &str, marker: &str) -> u32 {
    marker_line(&source(file), marker)
}

/// `command` (`launch`, or `attach` on a child session) with `arguments`: once
/// `initialized` comes, `configure` runs (breakpoints), then configurationDone, which
/// must be answered before the request is. Returns the request's response (an error may
/// come instead of `initialized`).
fn start(
    dap: &mut Dap,
    command: &str,
    arguments: Value,
    configure: impl FnOnce(&mut Dap),
) -> Value {
    let seq = dap.send(command, arguments);
    finish_start(dap, seq, command, configure)
}

/// `start` for a request already sent as `seq`.
fn finish_start(dap: &mut Dap, seq: i64, command: &str, configure: impl FnOnce(&mut Dap)) -> Value {
    let started = dap.wait_until(REQUEST_TIMEOUT, |dap| {
        dap.position_of_response(seq).is_some() || dap.position_of_event("initialized").is_some()
    });
    assert!(
        started,
        "neither initialized nor a {command} response within {REQUEST_TIMEOUT:?}:\n  {}",
        dap.recent()
    );
    if dap.position_of_response(seq).is_some() {
        let r = dap.response(seq, Duration::ZERO);
        assert_eq!(
            r["success"], false,
            "{command} answered before configuration: {r}"
        );
        return r;
    }
    dap.next_event("initialized", Duration::ZERO);
    configure(dap);
    let done = dap.send("configurationDone", Value::Null);
    let done_response = dap.response(done, REQUEST_TIMEOUT);
    assert_eq!(done_response["success"], true, "{done_response}");
    let r = dap.response(seq, WAIT);
    assert_eq!(r["command"], command, "{r}");
    assert!(
        dap.position_of_response(done) < dap.position_of_response(seq),
        "the {command} response came before the configurationDone response"
    );
    r
}

/// A launch that must succeed; returns the program's pid (from the `process` event, which
/// says it was launched).
fn launch(dap: &mut Dap, arguments: Value, configure: impl FnOnce(&mut Dap)) -> i32 {
    let r = start(dap, "launch", arguments.clone(), configure);
    assert_eq!(r["success"], true, "launch {arguments} failed: {r}");
    let process = dap
        .events("process")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no process event after launch:\n  {}", dap.recent()));
    assert_eq!(process["body"]["startMethod"], "launch", "{process}");
    let pid = process["body"]["systemProcessId"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid in {process}")) as i32;
    assert!(
        dap.position_of_event("process")
            < dap.position_of_response(r["request_seq"].as_i64().unwrap()),
        "the process event came after the launch response"
    );
    pid
}

/// `setBreakpoints` on one line of `file`; returns the breakpoint as answered.
fn set_line_breakpoint(dap: &mut Dap, file: &Path, line: u32) -> Value {
    let r = dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": file }, "breakpoints": [{ "line": line }] }),
    );
    let breakpoints = r["body"]["breakpoints"].as_array().unwrap();
    assert_eq!(breakpoints.len(), 1, "{r}");
    breakpoints[0].clone()
}

fn clear_breakpoints(dap: &mut Dap, file: &Path) {
    dap.ok(
        "setBreakpoints",
        json!({ "source": { "path": file }, "breakpoints": [] }),
    );
}

/// Frame 0 of `tid`: its name, line, source path and pc.
fn top_frame(dap: &mut Dap, tid: i64) -> (String, u32, String, u64) {
    let r = dap.ok("stackTrace", json!({ "threadId": tid, "levels": 1 }));
    let frame = &r["body"]["stackFrames"][0];
    let pc = frame["instructionPointerReference"]
        .as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| panic!("frame without a hex pc: {r}"));
    (
        frame["name"].as_str().unwrap_or_default().to_string(),
        frame["line"].as_u64().unwrap_or(0) as u32,
        frame["source"]["path"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        pc,
    )
}

/// The next `stopped` event; it must have `reason`. Returns its thread.
fn stopped(dap: &mut Dap, reason: &str) -> (i64, Value) {
    let stopped = dap.next_event("stopped", WAIT);
    assert_eq!(stopped["body"]["reason"], reason, "{stopped}");
    (thread_id(&stopped), stopped)
}

/// Everything the program wrote to `category` (stdout or stderr), as the output events
/// carried it, in order.
fn printed(dap: &Dap, category: &str) -> String {
    dap.events("output")
        .iter()
        .filter(|e| e["body"]["category"] == category)
        .map(|e| e["body"]["output"].as_str().unwrap_or_default())
        .collect()
}

/// Waits for the program's end: `exited`, then `terminated`, with every `output` event of
/// the program's before `exited`. Returns the exit code.
fn ended(dap: &mut Dap) -> i64 {
    dap.next_event("terminated", WAIT);
    let exited = dap
        .events("exited")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("terminated without exited:\n  {}", dap.recent()));
    let exited_at = dap.position_of_event("exited").unwrap();
    assert!(
        exited_at < dap.position_of_event("terminated").unwrap(),
        "terminated came before exited"
    );
    let late: Vec<&Value> = dap.log[exited_at..]
        .iter()
        .filter(|m| {
            m["event"] == "output"
                && matches!(m["body"]["category"].as_str(), Some("stdout" | "stderr"))
        })
        .collect();
    assert!(late.is_empty(), "program output after exited: {late:?}");
    exited["body"]["exitCode"]
        .as_i64()
        .unwrap_or_else(|| panic!("no exitCode in {exited}"))
}

/// The process is gone: ended and reaped (no zombie left), so nothing of it is stopped
/// or traced.
fn assert_gone(pid: i32) {
    let gone = procfs::wait_for(secs(10), || procfs::process_state(pid).is_none());
    assert!(
        gone,
        "process {pid} is still there: state {:?}, tasks {:?}",
        procfs::process_state(pid),
        procfs::all_tasks(pid)
    );
}

/// The children of latch (every thread's), from /proc: empty once it started nothing or
/// its program is gone.
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

fn parent_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// A process the test must end itself if latch left it running: SIGKILL at drop (by pid,
/// only while it still exists).
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if procfs::process_state(self.0).is_some() {
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

/// Arguments (one with a space, one empty), the environment (one variable set, one of
/// latch's removed with null, one of latch's passed on, and latch's own `LATCH_*` kept
/// from the program) and the working directory reach the program, which prints them
/// (and that its stdin is /dev/null):
/// its stdout comes as `output` events of category stdout, exactly, its stderr apart,
/// all before `exited`, whose exit code is the one the program printed and returned.
#[test]
fn launch_passes_arguments_environment_and_cwd_and_reports_output_and_exit_code() {
    require_harness!();
    let b = built();
    let cwd = tmp_dir().join("launch cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let cwd = cwd.canonicalize().unwrap();
    let mut dap = Dap::start_with(
        vec![
            "env".into(),
            "LAUNCH_KEPT=kept from latch".into(),
            "LAUNCH_REMOVED=present in latch".into(),
            "LATCH_E2E_PRIVATE=latch's own".into(),
        ],
        &[],
        true,
    );
    // Answered by latch, so `env` has exec'd it: its environment is latch's.
    dap.initialize();
    let environ = std::fs::read(format!("/proc/{}/environ", dap.pid())).unwrap();
    assert!(
        environ
            .split(|&b| b == 0)
            .any(|v| v == b"LATCH_E2E_PRIVATE=latch's own"),
        "latch itself lacks LATCH_E2E_PRIVATE: the test proves nothing"
    );
    let args = ["plain", "two words", ""];
    let pid = launch(
        &mut dap,
        json!({
            "program": b.report, "args": args, "cwd": cwd,
            "env": {
                "LAUNCH_SET": "set by launch",
                "LAUNCH_REMOVED": null,
                "REPORT_VARS": "LAUNCH_SET,LAUNCH_KEPT,LAUNCH_REMOVED,LATCH_E2E_PRIVATE",
            },
        }),
        |_| {},
    );
    let code = ended(&mut dap);
    let expected_code = 40 + 1 + args.len() as i64;
    let expected = format!(
        "arg 1 [plain]\narg 2 [two words]\narg 3 []\n\
         env LAUNCH_SET [set by launch]\nenv LAUNCH_KEPT [kept from latch]\n\
         env LAUNCH_REMOVED unset\nenv LATCH_E2E_PRIVATE unset\n\
         cwd [{}]\nstdin [/dev/null]\nexit {expected_code}\n",
        cwd.display()
    );
    assert_eq!(printed(&dap, "stdout"), expected);
    assert_eq!(printed(&dap, "stderr"), "to stderr\n");
    assert_eq!(code, expected_code, "exited's code is not the program's");
    assert_gone(pid);
    assert!(
        children_of(dap.pid()).is_empty(),
        "{:?}",
        children_of(dap.pid())
    );
    dap.disconnect(json!({}));
}

/// `stopAtMain`: the program stops, before any of `main` has run (nothing printed yet),
/// at the first line of `main` as gdb places `break main` (which must be the fixture's
/// marked line); `continue` runs it to its end.
#[test]
fn stop_at_main_stops_at_the_first_line_of_main() {
    require_harness!();
    let b = built();
    let main_line = line("report.c", "main_first");
    let gdb = Command::new("gdb")
        .args(["-batch", "-nx", "-ex", "break main"])
        .arg(&b.report)
        .output()
        .unwrap_or_else(|e| panic!("cannot run gdb: {e}"));
    let said = String::from_utf8_lossy(&gdb.stdout);
    let gdb_line: u32 = said
        .split("line ")
        .nth(1)
        .and_then(|rest| rest.trim().trim_end_matches('.').parse().ok())
        .unwrap_or_else(|| panic!("no line in gdb's answer: {said}"));
    assert_eq!(
        gdb_line, main_line,
        "gdb's `break main` is not the marked line"
    );
    let mut dap = Dap::start();
    dap.initialize();
    let pid = launch(
        &mut dap,
        json!({ "program": b.report, "args": ["x"], "stopAtMain": true }),
        |_| {},
    );
    let (tid, event) = stopped(&mut dap, "entry");
    assert_eq!(event["body"]["description"], "Paused at main", "{event}");
    assert_eq!(tid, pid as i64, "{event}");
    let (name, at, path, _) = top_frame(&mut dap, tid);
    assert_eq!((name.as_str(), at), ("main", main_line), "{path}");
    assert_eq!(Path::new(&path), source("report.c"));
    assert_eq!(printed(&dap, "stdout"), "", "main ran before the stop");
    dap.ok("continue", json!({ "threadId": tid }));
    assert_eq!(ended(&mut dap), 42);
    assert!(printed(&dap, "stdout").starts_with("arg 1 [x]\n"));
    assert_eq!(
        dap.events("stopped").len(),
        1,
        "{:?}",
        dap.events("stopped")
    );
    assert_gone(pid);
    dap.disconnect(json!({}));
}

/// `stopOnEntry`: the program stops at its first instruction, the entry point the kernel
/// gave it (`AT_ENTRY` in /proc/PID/auxv), which is the ELF header's entry (readelf) plus
/// the executable's load address, with the libraries it needs already mapped.
#[test]
fn stop_on_entry_stops_at_the_elf_entry_point() {
    require_harness!();
    let b = built();
    let mut dap = Dap::start();
    dap.initialize();
    let pid = launch(
        &mut dap,
        json!({ "program": b.report, "stopOnEntry": true }),
        |_| {},
    );
    let (tid, event) = stopped(&mut dap, "entry");
    assert_eq!(
        event["body"]["description"], "Paused at the program's entry point",
        "{event}"
    );
    assert_eq!(tid, pid as i64, "{event}");
    let at_entry = entry_point(pid);
    let readelf = Command::new("readelf")
        .arg("-h")
        .arg(&b.report)
        .output()
        .unwrap();
    let header = String::from_utf8_lossy(&readelf.stdout);
    let e_entry = header
        .lines()
        .find_map(|l| l.trim().strip_prefix("Entry point address:"))
        .and_then(|v| u64::from_str_radix(v.trim().trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| panic!("no entry in readelf -h:\n{header}"));
    assert_eq!(at_entry, load_base(pid, &b.report) + e_entry);
    assert_eq!(e_entry, nm_value(&b.report, "_start"));
    let (name, _, _, pc) = top_frame(&mut dap, tid);
    assert_eq!(
        pc, at_entry,
        "stopped at {pc:#x} ({name}), not at the entry point"
    );
    assert!(name.contains("_start"), "frame 0 is {name:?}");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(
        maps.lines()
            .any(|l| l.contains("/libc.so") || l.contains("/libc-")),
        "libc is not loaded at the entry stop:\n{maps}"
    );
    assert_eq!(
        printed(&dap, "stdout"),
        "",
        "the program ran before the stop"
    );
    dap.ok("continue", json!({ "threadId": tid }));
    assert_eq!(ended(&mut dap), 41);
    assert_gone(pid);
    dap.disconnect(json!({}));
}

/// The entry point the kernel gave `pid`'s program: `AT_ENTRY` in its auxiliary vector.
fn entry_point(pid: i32) -> u64 {
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).unwrap();
    auxv.chunks_exact(16)
        .find_map(|pair| {
            let key = u64::from_ne_bytes(pair[..8].try_into().unwrap());
            (key == libc::AT_ENTRY).then(|| u64::from_ne_bytes(pair[8..].try_into().unwrap()))
        })
        .expect("no AT_ENTRY in auxv")
}

/// Breakpoints set during configuration: one in `main` hits; one in a library the
/// program loads later with dlopen is unverified until then, verifies when it is loaded
/// (`breakpoint` event), and hits in its first call.
#[test]
fn breakpoints_set_during_configuration_hit_in_main_and_in_a_library_loaded_later() {
    require_harness!();
    let b = built();
    let main_line = line("loader.c", "loader_main");
    let plugin_line = marker_line(&plugin_source(), "plugin_body");
    let mut dap = Dap::start();
    dap.initialize();
    let mut ids = (Value::Null, Value::Null);
    let pid = launch(
        &mut dap,
        json!({ "program": b.loader, "args": [b.plugin] }),
        |dap| {
            let in_main = set_line_breakpoint(dap, &source("loader.c"), main_line);
            assert_eq!(in_main["verified"], true, "{in_main}");
            assert_eq!(in_main["line"], main_line, "{in_main}");
            let in_plugin = set_line_breakpoint(dap, &plugin_source(), plugin_line);
            assert_eq!(in_plugin["verified"], false, "{in_plugin}");
            ids = (in_main["id"].clone(), in_plugin["id"].clone());
        },
    );
    let (tid, event) = stopped(&mut dap, "breakpoint");
    assert_eq!(tid, pid as i64, "{event}");
    assert_eq!(event["body"]["hitBreakpointIds"], json!([ids.0]), "{event}");
    let (name, at, _, _) = top_frame(&mut dap, tid);
    assert_eq!((name.as_str(), at), ("main", main_line));
    dap.ok("continue", json!({ "threadId": tid }));
    let changed = dap.next_event("breakpoint", WAIT);
    assert_eq!(changed["body"]["reason"], "changed", "{changed}");
    assert_eq!(changed["body"]["breakpoint"]["id"], ids.1, "{changed}");
    assert_eq!(changed["body"]["breakpoint"]["verified"], true, "{changed}");
    let (tid, event) = stopped(&mut dap, "breakpoint");
    assert_eq!(event["body"]["hitBreakpointIds"], json!([ids.1]), "{event}");
    let (name, at, _, _) = top_frame(&mut dap, tid);
    assert_eq!((name.as_str(), at), ("plugin_work", plugin_line));
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(maps.contains(&b.plugin.display().to_string()), "{maps}");
    dap.ok("continue", json!({ "threadId": tid }));
    assert_eq!(ended(&mut dap), 0);
    assert_eq!(printed(&dap, "stdout"), "done 13\n");
    assert_gone(pid);
    dap.disconnect(json!({}));
}

/// A launch that cannot start fails with a message that names the cause and the path,
/// and starts nothing: latch has no child process.
#[test]
fn launch_errors_name_the_cause_and_start_nothing() {
    require_harness!();
    let b = built();
    let dir = tmp_dir().join("launch-errors");
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("plain-file");
    std::fs::write(&plain, "#!/bin/sh\necho should not run\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing = dir.join("no-such-program");
    let no_dir = dir.join("no-such-dir");
    let cases = [
        (
            json!({ "program": missing }),
            vec!["no-such-program", "no such file"],
        ),
        (
            json!({ "program": plain }),
            vec!["plain-file", "not executable"],
        ),
        (
            json!({ "program": b.report, "cwd": no_dir }),
            vec!["no-such-dir", "cwd", "no such file"],
        ),
        (
            json!({ "program": dir }),
            vec!["launch-errors", "not a file"],
        ),
        (json!({ "program": "" }), vec!["program"]),
    ];
    for (arguments, keywords) in cases {
        let mut dap = Dap::start();
        dap.initialize();
        let r = start(&mut dap, "launch", arguments.clone(), |_| {});
        assert_error(&r, &keywords);
        assert!(
            dap.events("process").is_empty(),
            "{arguments}: {:?}",
            dap.events("process")
        );
        assert!(
            children_of(dap.pid()).is_empty(),
            "{arguments}: latch has children {:?}",
            children_of(dap.pid())
        );
        dap.disconnect(json!({}));
    }
}

/// How a session with a running launched program ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// `disconnect` with no arguments: terminateDebuggee defaults to true for a launch.
    Disconnect,
    /// `disconnect` with terminateDebuggee false: the program runs on.
    Detach,
    /// latch's stdin closes (the editor is gone).
    ClientGone,
    /// SIGTERM to latch.
    LatchTerminated,
    /// The `terminate` request: SIGTERM to the program, whose handler says so.
    Terminate,
}

/// The server fixture launched with a breakpoint that is never hit (an `int3` in its
/// code), running under latch; the session then ends as `ending` says. After it, the
/// program is gone and reaped, or (detach) runs on untraced with its code as in its
/// files.
fn launched_program_ends(ending: Ending) {
    let b = built();
    let heartbeat = heartbeat_path();
    let mut dap = Dap::start();
    dap.initialize();
    let pid = launch(
        &mut dap,
        json!({ "program": b.server, "env": { "LATCH_HEARTBEAT": heartbeat } }),
        |dap| {
            let never =
                set_line_breakpoint(dap, &source("server.c"), line("server.c", "never_called"));
            assert_eq!(never["verified"], true, "{never}");
        },
    );
    let _guard = KillOnDrop(pid);
    let ready = dap.wait_until(WAIT, |dap| printed(dap, "stdout").contains("ready "));
    assert!(ready, "no ready line:\n  {}", dap.recent());
    assert_eq!(printed(&dap, "stdout"), format!("ready {pid}\n"));
    assert_eq!(
        parent_of(pid),
        Some(dap.pid()),
        "the program is not latch's child"
    );
    let latch = dap.pid();
    let traced = procfs::wait_for(secs(5), || {
        let tasks = procfs::live_tasks(pid);
        !tasks.is_empty()
            && tasks.iter().all(|t| {
                !matches!(t.state, 't' | 'T') && procfs::tgid_of(t.tracer_pid) == Some(latch)
            })
    });
    assert!(
        traced,
        "not running under latch: {:?}",
        procfs::all_tasks(pid)
    );
    procfs::assert_heartbeat(&heartbeat, pid);
    match ending {
        Ending::Disconnect => {
            dap.disconnect(json!({}));
            assert_gone(pid);
        }
        Ending::Detach => {
            dap.disconnect(json!({ "terminateDebuggee": false }));
            assert_released(pid);
            procfs::assert_heartbeat(&heartbeat, pid);
            assert_code_as_in_files(pid);
            assert_eq!(
                procfs::live_tasks(pid).len(),
                2,
                "{:?}",
                procfs::all_tasks(pid)
            );
            unsafe { libc::kill(pid, libc::SIGKILL) };
            assert_gone(pid);
        }
        Ending::ClientGone => {
            dap.close_stdin();
            dap.wait_exit(secs(10));
            assert_gone(pid);
        }
        Ending::LatchTerminated => {
            dap.signal(libc::SIGTERM);
            dap.wait_exit(secs(10));
            assert_gone(pid);
        }
        Ending::Terminate => {
            dap.ok("terminate", json!({}));
            assert_eq!(
                ended(&mut dap),
                77,
                "the program's SIGTERM handler did not run"
            );
            assert_eq!(
                printed(&dap, "stdout"),
                format!("ready {pid}\ncaught SIGTERM\n")
            );
            assert_gone(pid);
            dap.disconnect(json!({}));
        }
    }
}

#[test]
fn disconnect_kills_a_launched_program_by_default() {
    require_harness!();
    launched_program_ends(Ending::Disconnect);
}

#[test]
fn disconnect_without_terminate_leaves_a_launched_program_running_untraced() {
    require_harness!();
    launched_program_ends(Ending::Detach);
}

#[test]
fn the_client_going_away_kills_a_launched_program() {
    require_harness!();
    launched_program_ends(Ending::ClientGone);
}

#[test]
fn sigterm_to_latch_kills_a_launched_program() {
    require_harness!();
    launched_program_ends(Ending::LatchTerminated);
}

#[test]
fn terminate_sends_sigterm_to_a_launched_program() {
    require_harness!();
    launched_program_ends(Ending::Terminate);
}

/// A shell script that execs the real program (`exec ./report "$@"`), launched with
/// stopAtMain and a breakpoint in the program: latch follows the exec (a second
/// `process` event, for the program), verifies the breakpoint, stops at the program's
/// `main` (not in the shell), and the breakpoint hits.
#[test]
fn a_script_that_execs_the_program_lands_in_its_main_and_its_breakpoint_hits() {
    require_harness!();
    let b = built();
    let mark_line = line("report.c", "report_mark");
    let mut dap = Dap::start();
    dap.initialize();
    let mut id = Value::Null;
    let pid = launch(
        &mut dap,
        json!({
            "program": "./run.sh", "cwd": b.dir, "args": ["via script"], "stopAtMain": true,
        }),
        |dap| id = set_line_breakpoint(dap, &source("report.c"), mark_line)["id"].clone(),
    );
    let (tid, event) = stopped(&mut dap, "entry");
    assert_eq!(event["body"]["description"], "Paused at main", "{event}");
    assert_eq!(tid, pid as i64);
    let (name, at, _, _) = top_frame(&mut dap, tid);
    assert_eq!(
        (name.as_str(), at),
        ("main", line("report.c", "main_first"))
    );
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, b.report.canonicalize().unwrap());
    let processes = dap.events("process");
    assert_eq!(processes.len(), 2, "{processes:?}");
    assert_eq!(
        processes[1]["body"]["systemProcessId"], pid,
        "{processes:?}"
    );
    assert!(
        processes[1]["body"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("report")),
        "{processes:?}"
    );
    let verified = dap.events("breakpoint").iter().any(|e| {
        e["body"]["breakpoint"]["id"] == id && e["body"]["breakpoint"]["verified"] == true
    });
    assert!(
        verified,
        "the breakpoint was not verified in the program:\n  {}",
        dap.recent()
    );
    dap.ok("continue", json!({ "threadId": tid }));
    let (tid, event) = stopped(&mut dap, "breakpoint");
    assert_eq!(event["body"]["hitBreakpointIds"], json!([id]), "{event}");
    let (name, at, _, _) = top_frame(&mut dap, tid);
    assert_eq!((name.as_str(), at), ("report_mark", mark_line));
    dap.ok("continue", json!({ "threadId": tid }));
    assert_eq!(ended(&mut dap), 42);
    assert!(printed(&dap, "stdout").starts_with("arg 1 [via script]\n"));
    assert_gone(pid);
    dap.disconnect(json!({}));
}

/// `console: integratedTerminal` with a client that runs terminals: latch asks the client
/// (`runInTerminal`) to run `latch run-in-terminal ... -- program args` in the working
/// directory with the launch's environment; the test runs it as a terminal would, with
/// its stdout a pipe of the test's, and answers with its pid. That process becomes the
/// program, stopped at `main`; its output goes to the terminal (not to `output` events),
/// and its exit code is the one the test's wait sees.
#[test]
fn a_program_in_the_clients_terminal_is_the_one_debugged() {
    require_harness!();
    let b = built();
    let mut dap = Dap::start();
    dap.initialize_with(json!({ "supportsRunInTerminalRequest": true }));
    let seq = dap.send(
        "launch",
        json!({
            "program": b.report, "args": ["in terminal"], "cwd": b.dir, "stopAtMain": true,
            "console": "integratedTerminal",
            "env": { "LAUNCH_SET": "for the terminal", "REPORT_VARS": "LAUNCH_SET" },
        }),
    );
    let ask = dap.next_reverse_request("runInTerminal", REQUEST_TIMEOUT);
    let arguments = &ask["arguments"];
    assert_eq!(arguments["kind"], "integrated", "{ask}");
    assert_eq!(arguments["cwd"], json!(b.dir), "{ask}");
    let command: Vec<String> = arguments["args"]
        .as_array()
        .unwrap_or_else(|| panic!("no args in {ask}"))
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let dash = command
        .iter()
        .position(|a| a == "--")
        .expect("no -- in the command");
    assert_eq!(
        command[dash + 1..],
        [b.report.display().to_string(), "in terminal".to_string()],
        "{ask}"
    );
    let mut terminal = Command::new(&command[0]);
    terminal.args(&command[1..]).current_dir(&b.dir);
    for (name, value) in arguments["env"].as_object().unwrap() {
        match value.as_str() {
            Some(value) => terminal.env(name, value),
            None => terminal.env_remove(name),
        };
    }
    let mut terminal = Target::spawn(terminal);
    dap.answer(&ask, true, json!({ "processId": terminal.pid }));
    let r = finish_start(&mut dap, seq, "launch", |_| {});
    assert_eq!(r["success"], true, "{r}");
    let process = dap.next_event("process", Duration::ZERO);
    assert_eq!(
        process["body"]["systemProcessId"], terminal.pid,
        "{process}"
    );
    assert_eq!(process["body"]["startMethod"], "launch", "{process}");
    let (tid, event) = stopped(&mut dap, "entry");
    assert_eq!(tid, terminal.pid as i64, "{event}");
    let (name, at, _, _) = top_frame(&mut dap, tid);
    assert_eq!(
        (name.as_str(), at),
        ("main", line("report.c", "main_first"))
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", terminal.pid)).unwrap();
    assert_eq!(exe, b.report.canonicalize().unwrap());
    dap.ok("continue", json!({ "threadId": tid }));
    assert_eq!(terminal.wait_line("arg 1 ", WAIT), "[in terminal]");
    assert_eq!(
        terminal.wait_line("env LAUNCH_SET ", WAIT),
        "[for the terminal]"
    );
    let cwd = b.dir.canonicalize().unwrap();
    assert_eq!(
        terminal.wait_line("cwd ", WAIT),
        format!("[{}]", cwd.display())
    );
    assert_eq!(terminal.wait_line("exit ", WAIT), "42");
    assert_eq!(ended(&mut dap), 42);
    assert_eq!(terminal.wait_exit(secs(10)).code(), Some(42));
    assert_eq!(
        printed(&dap, "stdout"),
        "",
        "the terminal's output came as events"
    );
    dap.disconnect(json!({}));
}

/// A client that refuses `runInTerminal`: the launch fails and says why, and nothing runs.
#[test]
fn a_refused_terminal_fails_the_launch() {
    require_harness!();
    let b = built();
    let mut dap = Dap::start();
    dap.initialize_with(json!({ "supportsRunInTerminalRequest": true }));
    let seq = dap.send(
        "launch",
        json!({ "program": b.report, "console": "externalTerminal" }),
    );
    let ask = dap.next_reverse_request("runInTerminal", REQUEST_TIMEOUT);
    assert_eq!(ask["arguments"]["kind"], "external", "{ask}");
    dap.answer(&ask, false, Value::Null);
    let r = dap.response(seq, REQUEST_TIMEOUT);
    assert_error(&r, &["terminal", "refused by the test client"]);
    assert!(
        dap.events("process").is_empty(),
        "{:?}",
        dap.events("process")
    );
    assert!(
        children_of(dap.pid()).is_empty(),
        "{:?}",
        children_of(dap.pid())
    );
    dap.disconnect(json!({}));
}

/// A script launched with `stopOnEntry` stops at the entry point of the program it execs,
/// not in its interpreter.
#[test]
fn a_script_launched_with_stop_on_entry_stops_at_the_programs_entry_point() {
    require_harness!();
    let b = built();
    let mut dap = Dap::start();
    dap.initialize();
    let pid = launch(
        &mut dap,
        json!({ "program": "./run.sh", "cwd": b.dir, "stopOnEntry": true }),
        |_| {},
    );
    let (tid, event) = stopped(&mut dap, "entry");
    assert_eq!(
        event["body"]["description"], "Paused at the program's entry point",
        "{event}"
    );
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, b.report.canonicalize().unwrap(), "stopped in {exe:?}");
    let (name, _, _, pc) = top_frame(&mut dap, tid);
    assert_eq!(pc, entry_point(pid), "stopped at {pc:#x} ({name})");
    dap.ok("continue", json!({ "threadId": tid }));
    assert_eq!(ended(&mut dap), 41);
    assert_gone(pid);
    dap.disconnect(json!({}));
}

/// A `waitFor` attach that catches a program a shell script execs (`sh -c 'exec ./prog'`)
/// lands in that program with breakpoints working: a function breakpoint set while
/// waiting hits in the program, with every `continue`, and the detach leaves its code as
/// in its files.
#[test]
fn wait_for_lands_in_the_program_a_script_execs_with_breakpoints_working() {
    require_harness!();
    let name = "wf_scriptbp";
    let dir = tmp_dir().join("renamed");
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!("{name}.tmp{}", std::process::id()));
    std::fs::copy(crate::stepping::program(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
    let mut dap = Dap::start();
    dap.initialize();
    let mut target = None;
    let r = start(&mut dap, "attach", json!({ "waitFor": name }), |dap| {
        let set = dap.ok(
            "setFunctionBreakpoints",
            json!({ "breakpoints": [{ "name": "work" }] }),
        );
        assert_eq!(
            set["body"]["breakpoints"].as_array().map(Vec::len),
            Some(1),
            "{set}"
        );
        let mut script = Command::new("sh");
        script
            .arg("-c")
            .arg(format!("exec ./{name} loop"))
            .current_dir(&dir);
        target = Some(Target::spawn(script));
    });
    assert_eq!(r["success"], true, "{r}");
    let mut target = target.unwrap();
    let process = dap.next_event("process", Duration::ZERO);
    assert_eq!(process["body"]["systemProcessId"], target.pid, "{process}");
    for _ in 0..2 {
        let (tid, _) = stopped(&mut dap, "function breakpoint");
        assert_eq!(tid, target.pid as i64);
        assert_eq!(top_frame(&mut dap, tid).0, "work");
        dap.ok("continue", json!({ "threadId": tid }));
    }
    dap.ok("setFunctionBreakpoints", json!({ "breakpoints": [] }));
    dap.disconnect(json!({}));
    target.wait_ready(secs(10));
    assert_released(target.pid);
    assert_code_as_in_files(target.pid);
}

/// What the pre-fork fixture said of its children: (pid, how it ended) per child, and
/// its own exit code, which counts those that exited normally.
fn children_reported(dap: &Dap) -> Vec<(i32, String)> {
    printed(dap, "stdout")
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("child ")?;
            let (pid, how) = rest.split_once(' ')?;
            if how == "worked" {
                return None;
            }
            Some((pid.parse().ok()?, how.to_string()))
        })
        .collect()
}

/// The end of a pre-fork run: every child exited 0 (none died of a signal, a SIGTRAP of
/// a stray `int3` above all), the fixture's exit code says all 3, and every child is gone.
fn assert_children_exited_normally(dap: &mut Dap, pid: i32) -> Vec<i32> {
    let code = ended(dap);
    let children = children_reported(dap);
    let out = printed(dap, "stdout");
    assert_eq!(children.len(), 3, "{out}");
    for (child, how) in &children {
        assert_eq!(how, "exited 0", "child {child}: {out}");
        assert_gone(*child);
    }
    assert!(out.ends_with("normal 3 of 3\n"), "{out}");
    assert_eq!(code, 3, "{out}");
    assert_gone(pid);
    children.into_iter().map(|(pid, _)| pid).collect()
}

/// Without followForks, the children of a program with a breakpoint in the function
/// they all run are let go at once, clean of latch's `int3`s: only the parent stops
/// there, and no child dies of SIGTRAP.
#[test]
fn forked_children_are_let_go_clean_of_breakpoints() {
    require_harness!();
    let b = built();
    let work_line = line("prefork.c", "work");
    let mut dap = Dap::start();
    dap.initialize_with(json!({ "supportsStartDebuggingRequest": true }));
    let pid = launch(&mut dap, json!({ "program": b.prefork }), |dap| {
        let set = set_line_breakpoint(dap, &source("prefork.c"), work_line);
        assert_eq!(set["verified"], true, "{set}");
    });
    let (tid, _) = stopped(&mut dap, "breakpoint");
    assert_eq!(tid, pid as i64);
    assert_eq!(top_frame(&mut dap, tid).0, "work");
    dap.ok("continue", json!({ "threadId": tid }));
    assert_children_exited_normally(&mut dap, pid);
    assert_eq!(
        dap.events("stopped").len(),
        1,
        "{:?}",
        dap.events("stopped")
    );
    assert!(
        !dap.log.iter().any(|m| m["type"] == "request"),
        "latch offered a child without followForks"
    );
    dap.disconnect(json!({}));
}

/// Takes latch's next `startDebugging` offer of a child of `parent` (which must wait,
/// stopped), accepts it, connects to the socket it names, attaches with its
/// configuration and a breakpoint in `work`, and sees the hit there (the child's session,
/// the child's thread, `work` on top). Returns the child and its session, stopped there
/// (the caller ends the child if the test fails).
fn accept_child(dap: &mut Dap, parent: i32) -> (i32, Dap) {
    let work_line = line("prefork.c", "work");
    let prefork_c = source("prefork.c");
    let offer = dap.next_reverse_request("startDebugging", WAIT);
    let arguments = &offer["arguments"];
    assert_eq!(arguments["request"], "attach", "{offer}");
    let configuration = arguments["configuration"].clone();
    assert_eq!(configuration["type"], "latch", "{offer}");
    assert_eq!(configuration["request"], "attach", "{offer}");
    assert_eq!(configuration["followForks"], true, "{offer}");
    let child = configuration["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid in {offer}")) as i32;
    assert_eq!(parent_of(child), Some(parent), "{offer}");
    let waiting = procfs::wait_for(secs(5), || {
        procfs::process_state(child).is_some_and(|s| matches!(s, 't' | 'T'))
    });
    assert!(
        waiting,
        "child {child} is not stopped: {:?}",
        procfs::all_tasks(child)
    );
    let socket = PathBuf::from(
        configuration["latchChildSession"]
            .as_str()
            .unwrap_or_else(|| panic!("no latchChildSession in {offer}")),
    );
    dap.answer(&offer, true, json!({}));
    let mut session = Dap::connect_unix(&socket, dap.log_file());
    session.initialize();
    let r = start(&mut session, "attach", configuration.clone(), |session| {
        let set = set_line_breakpoint(session, &prefork_c, work_line);
        assert_eq!(set["verified"], true, "{set}");
    });
    assert_eq!(r["success"], true, "attach of child {child}: {r}");
    let process = session.next_event("process", Duration::ZERO);
    assert_eq!(process["body"]["systemProcessId"], child, "{process}");
    let (hit, event) = stopped(&mut session, "breakpoint");
    assert_eq!(hit, child as i64, "{event}");
    let (name, at, _, _) = top_frame(&mut session, hit);
    assert_eq!((name.as_str(), at), ("work", work_line));
    (child, session)
}

/// `accept_child`, then the breakpoint cleared and the child run to its end (`exited` 0
/// on its session), and the session disconnected.
fn follow_child(dap: &mut Dap, parent: i32) -> (i32, Dap) {
    let (child, mut session) = accept_child(dap, parent);
    let _guard = KillOnDrop(child);
    clear_breakpoints(&mut session, &source("prefork.c"));
    session.ok("continue", json!({ "threadId": child }));
    assert_eq!(ended(&mut session), 0, "child {child}");
    session.ok("disconnect", json!({}));
    (child, session)
}

/// A followed child of a launched program belongs to the debug session as the program
/// does: its session's `disconnect` kills it by default (the parent sees it killed by
/// SIGKILL), and with terminateDebuggee false lets it run on, clean of breakpoints, to
/// its normal end.
#[test]
fn a_followed_childs_disconnect_kills_it_unless_told_otherwise() {
    require_harness!();
    let b = built();
    for terminate in [None, Some(false)] {
        let mut dap = Dap::start();
        dap.initialize_with(json!({ "supportsStartDebuggingRequest": true }));
        let pid = launch(
            &mut dap,
            json!({ "program": b.prefork, "args": ["1"], "followForks": true }),
            |_| {},
        );
        let (child, mut session) = accept_child(&mut dap, pid);
        let _guard = KillOnDrop(child);
        let arguments = match terminate {
            None => json!({}),
            Some(t) => json!({ "terminateDebuggee": t }),
        };
        session.ok("disconnect", arguments);
        let code = ended(&mut dap);
        let out = printed(&dap, "stdout");
        let (expected, how) = match terminate {
            None => (
                0,
                format!("child {child} killed by signal {}\n", libc::SIGKILL),
            ),
            Some(_) => (1, format!("child {child} exited 0\n")),
        };
        assert!(out.contains(&how), "{terminate:?}: {out}");
        assert_eq!(code, expected, "{terminate:?}: {out}");
        assert_gone(child);
        assert_gone(pid);
        dap.disconnect(json!({}));
    }
}

/// followForks with a client that starts child sessions: each child waits, stopped, for
/// the session latch offers through `startDebugging`; the test connects to the socket it
/// names, attaches with the configuration given, sets a breakpoint in the function the
/// children run, and sees it hit in that child's session (not the parent's); the child
/// runs to its end, reported on its own session.
#[test]
fn followed_children_report_their_hits_in_sessions_of_their_own() {
    require_harness!();
    let b = built();
    let work_line = line("prefork.c", "work");
    let prefork_c = source("prefork.c");
    let mut dap = Dap::start();
    dap.initialize_with(json!({ "supportsStartDebuggingRequest": true }));
    let pid = launch(
        &mut dap,
        json!({ "program": b.prefork, "followForks": true }),
        |dap| {
            let set = set_line_breakpoint(dap, &prefork_c, work_line);
            assert_eq!(set["verified"], true, "{set}");
        },
    );
    let (tid, _) = stopped(&mut dap, "breakpoint");
    assert_eq!(tid, pid as i64);
    dap.ok("continue", json!({ "threadId": tid }));
    let mut followed = Vec::new();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let (child, session) = follow_child(&mut dap, pid);
        followed.push(child);
        sessions.push(session);
    }
    let children = assert_children_exited_normally(&mut dap, pid);
    // Checked once every child has run, so that a connection left open does not hide
    // what the other children do.
    for session in &mut sessions {
        session.wait_closed(secs(10));
    }
    followed.sort();
    let mut reported = children.clone();
    reported.sort();
    assert_eq!(
        followed, reported,
        "the children followed are not the ones it forked"
    );
    assert_eq!(
        dap.events("stopped").len(),
        1,
        "a child's stop came to the parent's session: {:?}",
        dap.events("stopped")
    );
    dap.disconnect(json!({}));
}

/// followForks is an attach argument too: the children a running process forks after
/// the attach are offered, followed and debugged in sessions of their own, as a launched
/// program's are; the parent (the test's child) exits with all of them counted normal.
#[test]
fn followed_children_of_an_attached_process_get_sessions_of_their_own() {
    require_harness!();
    let b = built();
    let mut command = Command::new(&b.prefork);
    command.args(["3", "wait"]);
    let mut target = Target::spawn(command);
    target.wait_ready(secs(10));
    let mut dap = Dap::start();
    dap.initialize_with(json!({ "supportsStartDebuggingRequest": true }));
    let r = start(
        &mut dap,
        "attach",
        json!({ "pid": target.pid, "followForks": true }),
        |_| {},
    );
    assert_eq!(r["success"], true, "{r}");
    target.send_line("go");
    let mut followed = Vec::new();
    for _ in 0..3 {
        let (child, session) = follow_child(&mut dap, target.pid);
        followed.push(child);
        drop(session);
    }
    assert_eq!(ended(&mut dap), 3);
    assert_eq!(target.wait_exit(WAIT).code(), Some(3));
    assert_eq!(target.wait_line("normal ", secs(1)), "3 of 3");
    for child in followed {
        assert_gone(child);
    }
    assert!(
        dap.events("stopped").is_empty(),
        "{:?}",
        dap.events("stopped")
    );
    dap.disconnect(json!({}));
}

/// followForks with a client that supports `startDebugging` but refuses each child (as
/// when its user declines): latch says so in the console, once per child, and the
/// children run on, untraced, to their normal end.
#[test]
fn refused_child_sessions_let_the_children_run_on() {
    require_harness!();
    let b = built();
    let mut dap = Dap::start();
    dap.initialize_with(json!({ "supportsStartDebuggingRequest": true }));
    let pid = launch(
        &mut dap,
        json!({ "program": b.prefork, "followForks": true }),
        |_| {},
    );
    for _ in 0..3 {
        let offer = dap.next_reverse_request("startDebugging", WAIT);
        dap.answer(&offer, false, Value::Null);
    }
    let children = assert_children_exited_normally(&mut dap, pid);
    let said: Vec<String> = dap
        .events("output")
        .iter()
        .filter(|e| e["body"]["category"] == "console")
        .filter_map(|e| e["body"]["output"].as_str())
        .filter(|o| o.contains("did not start a session"))
        .map(str::to_string)
        .collect();
    assert_eq!(said.len(), 3, "{said:?}");
    for child in children {
        assert!(
            said.iter()
                .any(|line| line.contains(&format!("child process {child} "))),
            "no console line for child {child}: {said:?}"
        );
    }
    dap.disconnect(json!({}));
}

/// followForks with a client that cannot start child sessions (no
/// supportsStartDebuggingRequest): latch says so in the console, once per child, and the
/// children run on to their normal end.
#[test]
fn followed_children_run_on_when_the_client_cannot_start_sessions() {
    require_harness!();
    let b = built();
    let mut dap = Dap::start();
    dap.initialize();
    let pid = launch(
        &mut dap,
        json!({ "program": b.prefork, "followForks": true }),
        |_| {},
    );
    let children = assert_children_exited_normally(&mut dap, pid);
    let said: Vec<String> = dap
        .events("output")
        .iter()
        .filter(|e| e["body"]["category"] == "console")
        .filter_map(|e| e["body"]["output"].as_str())
        .filter(|o| o.contains("startDebugging"))
        .map(str::to_string)
        .collect();
    assert_eq!(said.len(), 3, "{said:?}");
    for child in children {
        assert!(
            said.iter()
                .any(|line| line.contains(&format!("child process {child}"))),
            "no console line for child {child}: {said:?}"
        );
    }
    assert!(
        !dap.log.iter().any(|m| m["type"] == "request"),
        "latch sent a reverse request to a client that does not support it"
    );
    dap.disconnect(json!({}));
}

/// `stopAtMain` with a breakpoint on main's first line, the same place: one stop there,
/// and `continue` runs on from it (no second stop at the same line).
#[test]
fn stop_at_main_and_a_breakpoint_on_its_first_line_stop_once() {
    require_harness!();
    let b = built();
    let main_line = line("report.c", "main_first");
    let mut dap = Dap::start();
    dap.initialize();
    let pid = launch(
        &mut dap,
        json!({ "program": b.report, "stopAtMain": true }),
        |dap| {
            let set = set_line_breakpoint(dap, &source("report.c"), main_line);
            assert_eq!(set["verified"], true, "{set}");
        },
    );
    let stop = dap.next_event("stopped", WAIT);
    assert!(
        matches!(
            stop["body"]["reason"].as_str(),
            Some("entry" | "breakpoint")
        ),
        "{stop}"
    );
    let tid = thread_id(&stop);
    let (name, at, _, _) = top_frame(&mut dap, tid);
    assert_eq!((name.as_str(), at), ("main", main_line), "{stop}");
    dap.ok("continue", json!({ "threadId": tid }));
    assert_eq!(ended(&mut dap), 41);
    let stops = dap.events("stopped");
    assert_eq!(
        stops.len(),
        1,
        "stopped twice at main's first line: {stops:?}"
    );
    assert_gone(pid);
    dap.disconnect(json!({}));
}

/// `terminate` while the program is stopped at `main`: it gets SIGTERM and, having no
/// handler, dies of it (exit code 128 + 15, as a shell reports it) before running any
/// more of `main`.
#[test]
fn terminate_while_stopped_at_main_ends_the_program_by_sigterm() {
    require_harness!();
    let b = built();
    let mut dap = Dap::start();
    dap.initialize();
    let pid = launch(
        &mut dap,
        json!({ "program": b.report, "stopAtMain": true }),
        |_| {},
    );
    stopped(&mut dap, "entry");
    dap.ok("terminate", json!({}));
    assert_eq!(ended(&mut dap), 128 + libc::SIGTERM as i64);
    assert_eq!(printed(&dap, "stdout"), "", "main ran on after SIGTERM");
    assert_gone(pid);
    dap.disconnect(json!({}));
}

/// A program that starts another with posix_spawn (a child that runs in the parent's
/// memory until its exec: CLONE_VM | CLONE_VFORK) keeps its breakpoints: the one it hits
/// before the spawn hits again after it, whether the child is let go or followed (and its
/// session refused), and the child runs to its normal end.
#[test]
fn a_breakpoint_survives_a_child_that_shares_the_programs_memory() {
    require_harness!();
    let b = built();
    let mark_line = line("spawner.c", "mark");
    for follow in [false, true] {
        let mut dap = Dap::start();
        dap.initialize_with(json!({ "supportsStartDebuggingRequest": true }));
        let pid = launch(
            &mut dap,
            json!({ "program": b.spawner, "followForks": follow }),
            |dap| {
                let set = set_line_breakpoint(dap, &source("spawner.c"), mark_line);
                assert_eq!(set["verified"], true, "{set}");
            },
        );
        for round in 1..=2 {
            let (tid, event) = stopped(&mut dap, "breakpoint");
            assert_eq!(tid, pid as i64, "follow {follow}, round {round}: {event}");
            let (name, at, _, _) = top_frame(&mut dap, tid);
            assert_eq!((name.as_str(), at), ("mark", mark_line), "follow {follow}");
            dap.ok("continue", json!({ "threadId": tid }));
            if follow && round == 1 {
                // The child is offered once its exec gave it memory of its own.
                let offer = dap.next_reverse_request("startDebugging", WAIT);
                dap.answer(&offer, false, Value::Null);
            }
        }
        assert_eq!(ended(&mut dap), 0, "follow {follow}");
        assert_eq!(
            printed(&dap, "stdout"),
            "true exited 0\n",
            "follow {follow}"
        );
        assert_gone(pid);
        dap.disconnect(json!({}));
    }
}

/// `console: integratedTerminal` with a client that cannot run terminals (no
/// supportsRunInTerminalRequest): latch says so in the console and runs the program with
/// its output as `output` events, as with the internal console.
#[test]
fn a_terminal_the_client_cannot_open_falls_back_to_the_debug_console() {
    require_harness!();
    let b = built();
    let mut dap = Dap::start();
    dap.initialize();
    let pid = launch(
        &mut dap,
        json!({ "program": b.report, "args": ["x"], "console": "integratedTerminal" }),
        |_| {},
    );
    assert_eq!(ended(&mut dap), 42);
    assert!(printed(&dap, "stdout").starts_with("arg 1 [x]\n"));
    assert_eq!(printed(&dap, "stderr"), "to stderr\n");
    let said = printed(&dap, "console");
    assert!(said.contains("runInTerminal"), "{said}");
    assert!(
        !dap.log.iter().any(|m| m["type"] == "request"),
        "latch sent a reverse request to a client that does not support it"
    );
    assert_gone(pid);
    dap.disconnect(json!({}));
}

/// The launch session's `disconnect` while a followed child is stopped at a breakpoint in
/// its own session: latch ends that session too, and neither the program nor its child
/// is left behind, stopped or traced; the main session's last messages are not taken
/// for unread.
#[test]
fn the_end_of_latch_ends_a_followed_child_stopped_in_its_session() {
    require_harness!();
    let b = built();
    let mut dap = Dap::start();
    dap.initialize_with(json!({ "supportsStartDebuggingRequest": true }));
    let pid = launch(
        &mut dap,
        json!({ "program": b.prefork, "args": ["1"], "followForks": true }),
        |_| {},
    );
    let (child, mut session) = accept_child(&mut dap, pid);
    let _guard = KillOnDrop(child);
    dap.disconnect(json!({}));
    assert_gone(pid);
    assert_gone(child);
    session.wait_closed(secs(10));
    // The client read everything latch wrote: latch has no reason to think otherwise (and
    // to wait for it before ending).
    let log = dap.log_text();
    let dropped: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("has not read latch's last messages"))
        .collect();
    assert!(dropped.is_empty(), "{dropped:?}");
}
