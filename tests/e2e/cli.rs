//! The terminal commands: `latch attach PID`, `latch attach --waitfor NAME`,
//! `latch ps [PATTERN] --json`, and `--help`.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::require_harness;
use crate::support::dap::latch_bin;
use crate::support::fixtures::renamed_fixture;
use crate::support::procfs;
use crate::support::target::{run_with_deadline, spawn_retrying};
use crate::support::{secs, Dap, Fixture, Target};

/// Runs latch with `args` to completion within `within` (killed otherwise).
fn run_latch(args: &[&str], within: Duration) -> Output {
    run_with_deadline(Command::new(latch_bin()).args(args), within)
}

/// Waits for a child up to `within`; kills and reaps it (returning None) after.
fn wait_child(
    child: &mut std::process::Child,
    within: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The header and the thread table of `latch attach`: one row per task. With
/// `exact`, the rows are the tasks the target had when ready; otherwise (a
/// waitFor may catch the target before it starts its threads) the rows are
/// tasks of the target, the main thread among them.
fn assert_attach_output(out: &Output, target: &Target, name: &str, exact: bool) {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "latch attach failed ({}): {stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    let header = stdout
        .lines()
        .find(|l| l.contains(&target.pid.to_string()))
        .unwrap_or_else(|| panic!("no header with the pid {}: {stdout}", target.pid));
    assert!(
        header.contains(name),
        "header {header:?} lacks the name {name:?}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let table_at = lines
        .iter()
        .position(|l| {
            l.contains("TID") && l.contains("NAME") && l.contains("STATE") && l.contains("PC")
        })
        .unwrap_or_else(|| panic!("no thread table header: {stdout}"));
    // The table ends at the first blank line (a Go program's goroutine groups follow).
    let rows: Vec<i32> = lines[table_at + 1..]
        .iter()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let mut rows_sorted = rows.clone();
    rows_sorted.sort();
    if exact {
        let tids: Vec<i32> = target.initial.iter().map(|t| t.tid).collect();
        assert_eq!(
            rows_sorted, tids,
            "thread rows {rows:?} != tasks {:?}\n{stdout}",
            target.initial
        );
    } else {
        assert!(
            rows.contains(&target.pid),
            "no row for the main thread: {stdout}"
        );
        let tasks = procfs::live_tids(target.pid);
        for tid in &rows {
            assert!(
                tasks.contains(tid),
                "row {tid} is not a task of {}: {stdout}",
                target.pid
            );
        }
    }
}

#[test]
fn cli_attach_pid() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["3"]);
    let out = run_latch(&["attach", &target.pid.to_string()], secs(15));
    assert_attach_output(&out, &target, "sleeping", true);
    target.assert_runs_on(false);
}

/// Each file of a symbol cache folder (`<build-id>/<section>`): its path and inode.
fn cache_files(cache: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut files = Vec::new();
    for build in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(build.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let inode = file.metadata().map_or(0, |m| m.ino());
            files.push((file.path(), inode));
        }
    }
    files.sort();
    files
}

/// Runs `latch attach` on `target` twice with a cache folder of its own. The first run
/// exits as soon as it has printed the stacks, within milliseconds of inflating the
/// debug sections; it must still leave them whole in the cache, and the second run
/// must read them rather than inflate and write them again. Returns the cache's files.
/// (Before latch waited for its cache writes, a release build exited before libc's
/// `.debug_info` was written in every run; this debug build's slower naming leaves the
/// write a few ms to win that race, so here that check catches it only some of the time.)
fn attach_twice_with_a_cache(target: &Target, name: &str) -> Vec<(std::path::PathBuf, u64)> {
    let cache = std::env::temp_dir().join(format!(
        "latch-e2e-cache-{}-{}",
        std::process::id(),
        target.pid
    ));
    let _ = std::fs::remove_dir_all(&cache);
    let attach = || {
        let out = run_with_deadline(
            Command::new(latch_bin())
                .env("LATCH_CACHE_DIR", &cache)
                .args(["attach", &target.pid.to_string()]),
            secs(15),
        );
        assert_attach_output(&out, target, name, false);
    };
    attach();
    let written = cache_files(&cache);
    let unfinished: Vec<_> = written
        .iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "tmp"))
        .collect();
    assert!(
        unfinished.is_empty(),
        "latch exited with cache files half written: {unfinished:?}"
    );
    attach();
    assert_eq!(
        cache_files(&cache),
        written,
        "the second run wrote the cache again instead of reading it"
    );
    let _ = std::fs::remove_dir_all(&cache);
    written
}

/// Whether a cache folder named by a build id that starts with `prefix` holds `section`.
fn cached(files: &[(std::path::PathBuf, u64)], prefix: &str, section: &str) -> bool {
    files.iter().any(|(path, _)| {
        let build = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str());
        build.is_some_and(|b| b.starts_with(prefix))
            && path.file_name().is_some_and(|n| n == section)
    })
}

/// libc's separate debug file (libc6-dbg) is zlib-compressed: its inflated sections
/// are kept under its GNU build-id.
#[test]
fn cli_attach_keeps_libc_debug_sections_in_the_cache() {
    require_harness!();
    if !crate::stacks::libc_debug_info() {
        return;
    }
    let target = Target::start(Fixture::Sleeping, &["3"]);
    let files = attach_twice_with_a_cache(&target, "sleeping");
    assert!(
        cached(&files, "", "debug_info")
            && cached(&files, "", "debug_line")
            && cached(&files, "", "debug_info.units"),
        "libc's inflated .debug_info and .debug_line, and its units' spans, are not in the \
         cache: {files:?}"
    );
    target.assert_runs_on(false);
}

/// Go code is named from Go's own function table (`.gopclntab`): the Go program's
/// compressed DWARF is not inflated, so none of it lands in the cache (it would be
/// under Go's build ID, the hex of `go:` and that ID), and the stacks still name Go
/// functions with their files and lines.
#[test]
fn cli_attach_names_go_code_without_inflating_its_dwarf() {
    require_harness!();
    let Some(target) = Target::start_go(&["1", "4"]) else {
        return;
    };
    let cache = std::env::temp_dir().join(format!("latch-e2e-go-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let out = run_with_deadline(
        Command::new(latch_bin())
            .env("LATCH_CACHE_DIR", &cache)
            .args(["attach", &target.pid.to_string()]),
        secs(15),
    );
    assert_attach_output(&out, &target, "gotarget", false);
    let stdout = text(&out.stdout);
    let named = stdout
        .lines()
        .filter(|l| l.contains(" in runtime.") && l.contains("/runtime/") && l.contains(".go:"))
        .count();
    assert!(
        named >= 2,
        "Go runtime frames are not named with file and line: {stdout}"
    );
    let files = cache_files(&cache);
    let _ = std::fs::remove_dir_all(&cache);
    let go_prefix: String = b"go:".iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !cached(&files, &go_prefix, "debug_info"),
        "the Go program's DWARF was inflated: {files:?}"
    );
    target.assert_runs_on_with_new_threads_allowed();
}

/// `latch attach PID | head`: once the reader is gone, latch detaches and ends quietly
/// (exit 0, nothing on stderr), as the commands that die of SIGPIPE do.
#[test]
fn cli_attach_into_a_closed_pipe_detaches_quietly() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["3"]);
    let (reader, writer) = std::io::pipe().expect("pipe");
    // Closed before latch writes a byte: its first line meets EPIPE.
    drop(reader);
    let mut cmd = Command::new(latch_bin());
    cmd.args(["attach", &target.pid.to_string()])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped());
    let mut latch = spawn_retrying(&mut cmd);
    let status = wait_child(&mut latch, secs(15));
    let mut stderr = String::new();
    if let Some(mut pipe) = latch.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "latch attach into a closed pipe: {status:?}, stderr: {stderr}"
    );
    assert!(stderr.trim().is_empty(), "latch complained: {stderr}");
    target.assert_runs_on(false);
}

#[test]
fn cli_attach_pid_hold_keeps_target_stopped() {
    require_harness!();
    let target = Target::start(Fixture::Spinning, &["2"]);
    let mut cmd = Command::new(latch_bin());
    cmd.args(["attach", "--hold", "30", &target.pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut holder = spawn_retrying(&mut cmd);
    let held = procfs::wait_for(secs(10), || {
        let tasks = procfs::live_tasks(target.pid);
        tasks
            .iter()
            .all(|t| t.state == 't' && procfs::tgid_of(t.tracer_pid) == Some(holder.id() as i32))
    });
    let tasks = procfs::live_tasks(target.pid);
    // SIGTERM ends the hold with a detach, and latch exits.
    unsafe { libc::kill(holder.id() as i32, libc::SIGTERM) };
    let exited = wait_child(&mut holder, secs(10));
    assert!(
        held,
        "latch attach --hold did not hold every thread stopped: {tasks:?}"
    );
    target.assert_runs_on(false);
    assert!(
        exited.is_some(),
        "latch attach --hold detached but did not exit within 10 s of SIGTERM"
    );
}

#[test]
fn cli_attach_waitfor() {
    require_harness!();
    let name = "cli_waitfor_t";
    let exe = renamed_fixture(Fixture::Sleeping, name);
    let mut cmd = Command::new(latch_bin());
    cmd.args(["attach", "--waitfor", name, "--waitfor-timeout", "15000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let latch = spawn_retrying(&mut cmd);
    // Without a signal that latch is waiting, start instances one after the
    // other until it has caught one (it only takes processes started after it
    // began waiting); each must be one of ours.
    let mut targets: Vec<Target> = Vec::new();
    let latch_pid = latch.id() as i32;
    let deadline = Instant::now() + secs(15);
    let mut output = None;
    let mut latch = Some(latch);
    while Instant::now() < deadline && targets.len() < 50 {
        let mut t = Target::spawn(Command::new(&exe));
        t.wait_ready(secs(10));
        targets.push(t);
        if procfs::process_state(latch_pid).is_none_or(|s| s == 'Z') {
            output = Some(latch.take().unwrap().wait_with_output().unwrap());
            break;
        }
    }
    let out = output.unwrap_or_else(|| {
        let l = latch.take().unwrap();
        unsafe { libc::kill(latch_pid, libc::SIGKILL) };
        let out = l.wait_with_output().unwrap();
        panic!(
            "latch attach --waitfor did not finish after {} instances; it printed:\n{}\nstderr:\n{}",
            targets.len(),
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let stdout = text(&out.stdout);
    let target = targets
        .iter()
        .find(|t| {
            stdout
                .lines()
                .any(|l| l.contains(&t.pid.to_string()) && l.contains(&name[..13]))
        })
        .unwrap_or_else(|| panic!("output names none of our targets: {stdout}"));
    assert_attach_output(&out, target, name, false);
    for t in &targets {
        t.assert_runs_on(false);
    }
}

fn ps_json(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["ps"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run_latch(&all, secs(15));
    assert!(
        out.status.success(),
        "latch ps failed: {}",
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("latch ps --json is not JSON ({e}): {}", text(&out.stdout)));
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .clone()
}

#[test]
fn cli_ps_json() {
    require_harness!();
    let name = "ps_listed_tgt";
    let exe = renamed_fixture(Fixture::Sleeping, name);
    let target = Target::start_cmd(Command::new(&exe));
    let list = ps_json(&[name]);
    assert!(!list.is_empty(), "pattern {name} matched nothing");
    for p in &list {
        let pname = p["name"].as_str().unwrap_or_else(|| panic!("no name: {p}"));
        let cmdline = p["cmdline"]
            .as_str()
            .unwrap_or_else(|| panic!("no cmdline: {p}"));
        assert!(
            pname.contains(name) || cmdline.contains(name),
            "{p} does not match {name}"
        );
        assert!(p["pid"].is_u64(), "{p}");
        assert!(p["threads"].is_u64(), "{p}");
        assert!(p.get("user").is_some(), "{p}");
        assert!(p["tracer_pid"].is_null() || p["tracer_pid"].is_u64(), "{p}");
    }
    let me = list
        .iter()
        .find(|p| p["pid"] == target.pid)
        .unwrap_or_else(|| panic!("target {} not listed: {list:?}", target.pid));
    assert_eq!(me["name"], name, "{me}");
    assert_eq!(me["threads"], target.thread_count(), "{me}");
    assert!(me["tracer_pid"].is_null() || me["tracer_pid"] == 0, "{me}");
    assert!(
        me["cmdline"]
            .as_str()
            .unwrap()
            .contains(exe.to_str().unwrap()),
        "{me}"
    );

    // Traced by a latch session: the tracer shows.
    let mut dap = Dap::attached(target.pid, false);
    let list = ps_json(&[name]);
    let me = list
        .iter()
        .find(|p| p["pid"] == target.pid)
        .expect("target not listed while traced");
    let tracer = me["tracer_pid"].as_i64().unwrap_or(0) as i32;
    assert!(
        tracer == dap.pid() || procfs::tgid_of(tracer) == Some(dap.pid()),
        "tracer_pid {tracer} is not latch {}: {me}",
        dap.pid()
    );
    dap.disconnect(serde_json::json!({}));
    target.assert_runs_on(false);

    // Without a pattern, everything attachable is listed, the target included: every
    // process that /proc shows before and after as attachable (a user process, not a
    // zombie, ours unless we are root), whatever its name.
    let before = attachable_pids();
    let all = ps_json(&[]);
    let after = attachable_pids();
    assert!(
        all.iter().any(|p| p["pid"] == target.pid),
        "unfiltered list lacks the target"
    );
    let listed: std::collections::BTreeSet<i64> =
        all.iter().filter_map(|p| p["pid"].as_i64()).collect();
    let missing: Vec<&i32> = before
        .intersection(&after)
        .filter(|pid| !listed.contains(&i64::from(**pid)))
        .collect();
    assert!(
        missing.is_empty(),
        "latch ps without a pattern lacks attachable processes {missing:?}"
    );
    assert!(
        listed.contains(&i64::from(std::process::id() as i32)),
        "latch ps without a pattern lacks this test process, which does not match {name}"
    );
}

/// The processes /proc shows that this test may attach to: not kernel threads, not
/// zombies, and (unless root) running as this user.
fn attachable_pids() -> std::collections::BTreeSet<i32> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let root = unsafe { libc::geteuid() } == 0;
    let me = unsafe { libc::geteuid() };
    let mut pids = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(format!("/proc/{pid}/stat")),
            std::fs::read_to_string(format!("/proc/{pid}/status")),
        ) else {
            continue;
        };
        // After the name: state, ppid, pgrp, session, tty, tpgid, flags.
        let Some((_, fields)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = fields.split_whitespace().collect();
        let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
        let uid: Option<u32> = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|u| u.split_whitespace().next()?.parse().ok());
        if flags & PF_KTHREAD == 0
            && !matches!(fields.first(), Some(&"Z") | Some(&"X"))
            && (root || uid == Some(me))
        {
            pids.insert(pid);
        }
    }
    pids
}

#[test]
fn cli_help() {
    require_harness!();
    for args in [
        &["--help"][..],
        &["dap", "--help"],
        &["attach", "--help"],
        &["ps", "--help"],
    ] {
        let out = run_latch(args, secs(10));
        assert!(
            out.status.success(),
            "latch {args:?} failed: {}",
            text(&out.stderr)
        );
        let stdout = text(&out.stdout).to_lowercase();
        assert!(stdout.contains("usage"), "latch {args:?}: {stdout}");
    }
}

/// `latch attach TID`: the process of the thread is attached, said in so many words, the
/// real main thread marked `[main]` and the named thread listed first.
#[test]
fn cli_attach_thread_id_attaches_its_process() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let tid = target
        .initial
        .iter()
        .find(|t| t.tid != target.pid && t.comm == "sleeper")
        .expect("a sleeper thread")
        .tid;
    let out = run_latch(&["attach", &tid.to_string()], secs(15));
    assert_attach_output(&out, &target, "sleeping", true);
    let stdout = text(&out.stdout);
    let expected = format!(
        "{tid} is a thread of process {} (sleeping): attaching to the process",
        target.pid
    );
    assert!(stdout.contains(&expected), "no {expected:?} in:\n{stdout}");
    assert!(
        stdout.contains(&format!("process {} (sleeping)", target.pid)),
        "{stdout}"
    );
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("TID"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(
        rows[0].trim_start().starts_with(&tid.to_string()),
        "the named thread comes first: {rows:#?}"
    );
    let main_rows: Vec<&&str> = rows.iter().filter(|r| r.ends_with("[main]")).collect();
    assert_eq!(main_rows.len(), 1, "one main thread: {rows:#?}");
    assert!(
        main_rows[0]
            .trim_start()
            .starts_with(&target.pid.to_string()),
        "the process's leader is [main]: {rows:#?}"
    );
    target.assert_runs_on(false);
}

/// A target stopped by job control before the attach is left stopped, and latch says
/// so instead of "it runs on".
#[test]
fn cli_attach_leaves_a_job_control_stopped_target_stopped_and_says_so() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["2"]);
    target.signal(libc::SIGSTOP);
    assert!(
        procfs::wait_for(secs(5), || procfs::live_tasks(target.pid)
            .iter()
            .all(|t| t.state == 'T')),
        "SIGSTOP did not stop the target"
    );
    let out = run_latch(&["attach", &target.pid.to_string()], secs(15));
    assert_attach_output(&out, &target, "sleeping", true);
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("in syscall "),
        "every blocking call has its name in the STATE column:\n{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.contains("left stopped, as it was") && !last.contains("runs on"),
        "the last line says the target was left stopped: {last:?}\n{stdout}"
    );
    target.assert_runs_on(true);
    target.signal(libc::SIGCONT);
    target.assert_runs_on(false);
}

/// Runs latch with stdout and stderr on a terminal of its own (a new pty) `cols`
/// columns wide, and returns its exit status and what it printed (the terminal's CRLF
/// turned back into LF). NO_COLOR is unset unless `env` sets it.
fn run_on_terminal(
    args: &[&str],
    cols: u16,
    env: &[(&str, &str)],
) -> (Option<std::process::ExitStatus>, String) {
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 50,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors, which are then owned here.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = Command::new(latch_bin());
    cmd.args(args)
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave);
    let mut latch = spawn_retrying(&mut cmd);
    // The parent's copies of the terminal's slave side close here, so that the reader
    // below sees the end (EIO) once latch has exited.
    drop(cmd);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut master, &mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(all);
    });
    let status = wait_child(&mut latch, secs(15));
    let printed = rx.recv_timeout(secs(5)).unwrap_or_default();
    (status, text(&printed).replace("\r\n", "\n"))
}

/// A command line longer than any terminal: `latch ps` on a terminal cuts each row to
/// its width; into a pipe, and with `--wide`, the row is whole.
#[test]
fn cli_ps_fits_the_terminal_and_prints_whole_lines_into_a_pipe() {
    require_harness!();
    let name = "ps_wide_tgt";
    let exe = renamed_fixture(Fixture::Sleeping, name);
    let long_arg = format!("--an-argument-{}-end", "x".repeat(300));
    let mut cmd = Command::new(&exe);
    cmd.args(["1", &long_arg]);
    let target = Target::start_cmd(cmd);
    let row_of = |listing: &str| -> String {
        listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&target.pid.to_string()))
            .unwrap_or_else(|| panic!("no row for {}: {listing}", target.pid))
            .to_string()
    };

    let out = run_latch(&["ps", name], secs(15));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row = row_of(&text(&out.stdout));
    assert!(row.ends_with(&long_arg), "piped, the row is cut: {row:?}");

    let (status, printed) = run_on_terminal(&["ps", name], 60, &[]);
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {printed}");
    for line in printed.lines() {
        assert!(
            line.chars().count() <= 60,
            "a row wider than the 60-column terminal: {line:?}"
        );
    }
    let row = row_of(&printed);
    assert!(row.ends_with('…'), "the cut is not marked: {row:?}");

    let (status, printed) = run_on_terminal(&["ps", "--wide", name], 60, &[]);
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {printed}");
    assert!(
        row_of(&printed).ends_with(&long_arg),
        "--wide on a terminal cut the row: {printed}"
    );
}

/// A pid of a process that existed a moment ago and has been reaped.
fn reaped_pid() -> i32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    assert!(procfs::process_state(pid).is_none());
    pid
}

/// A failed command says so in one plain line, `latch: error: ...`: no log record's
/// timestamp or level, and colour only on a terminal, never with NO_COLOR.
#[test]
fn cli_error_is_one_plain_line_coloured_only_on_a_terminal() {
    require_harness!();
    let pid = reaped_pid().to_string();
    let out = run_latch(&["attach", &pid], secs(15));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("latch: error: no process with pid {pid} exists"))
            && stderr.lines().count() == 1
            && !stderr.contains('\x1b')
            && !stderr.contains("ERROR"),
        "not one plain line: {stderr:?}"
    );

    let (status, printed) = run_on_terminal(&["attach", &pid], 200, &[]);
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    assert!(
        printed.starts_with("latch: \x1b[") && printed.contains("error:"),
        "no colour on a terminal: {printed:?}"
    );
    let (_, printed) = run_on_terminal(&["attach", &pid], 200, &[("NO_COLOR", "1")]);
    assert!(
        printed.starts_with("latch: error: ") && !printed.contains('\x1b'),
        "colour despite NO_COLOR: {printed:?}"
    );
}

/// `latch attach "$(pgrep -n myprogram)"` when myprogram is not running.
#[test]
fn cli_attach_empty_pid_says_the_program_is_not_running() {
    require_harness!();
    let out = run_latch(&["attach", ""], secs(15));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("latch: error: ")
            && stderr.contains("not running")
            && stderr.contains("latch ps")
            && stderr.contains("--waitfor"),
        "{stderr}"
    );
}

/// The terminal's wait gives up with a message in its own words: the flags, not the
/// DAP keys of launch.json.
#[test]
fn cli_waitfor_timeout_names_the_flags() {
    require_harness!();
    let name = format!("never_{}", std::process::id());
    let began = Instant::now();
    let out = run_latch(
        &["attach", "--waitfor", &name, "--waitfor-timeout", "200"],
        secs(15),
    );
    assert!(!out.status.success());
    assert!(began.elapsed() >= Duration::from_millis(200));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "latch: error: no process matching '{name}' started within 200 ms"
        )) && stderr.contains("--waitfor-cmdline")
            && stderr.contains("--waitfor-existing")
            && !stderr.contains("waitForMatch")
            && !stderr.contains("waitForExisting"),
        "{stderr}"
    );
}

/// A single-threaded process has "1 thread", not "1 threads".
#[test]
fn cli_attach_counts_one_thread_in_the_singular() {
    require_harness!();
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
    let pid = sleeper.id() as i32;
    let out = run_latch(&["attach", &pid.to_string()], secs(15));
    let runs_on = procfs::wait_for(secs(5), || {
        procfs::live_tasks(pid)
            .iter()
            .all(|t| t.tracer_pid == 0 && !matches!(t.state, 't' | 'T'))
    });
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(": 1 thread, all stopped in") && !stdout.contains("1 threads"),
        "{stdout}"
    );
    assert!(runs_on, "sleep was left traced or stopped");
}
