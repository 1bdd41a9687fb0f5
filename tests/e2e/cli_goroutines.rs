//! `latch attach PID` on a Go program: its goroutines grouped by identical stacks,
//! checked against the program's own `runtime.Stack(buf, true)` dump
//! (tests/fixtures/goroutines), with Debian's Go and the current Go; and the line a Go
//! program built without DWARF gets instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::require_harness;
use crate::support::dap::latch_bin;
use crate::support::fixtures::{go_build_with, go_tool, out_dir, source_dir, tmp_dir};
use crate::support::godump::{parse_dump, Dumped};
use crate::support::procfs;
use crate::support::skip_or_fail;
use crate::support::target::{run_with_deadline, spawn_retrying};
use crate::support::Target;

/// The fixture's idle goroutines, all blocked at the same place.
const IDLE: usize = 10000;

/// The fixture running, killed when dropped.
struct Running {
    child: Child,
    dump: PathBuf,
    work: PathBuf,
}

impl Running {
    /// Builds tests/fixtures/goroutines with `go` and `flags`, starts it and waits until
    /// it has written its dump and its ready marker.
    fn start(go: &Path, label: &str, flags: &[&str]) -> Running {
        let binary = out_dir().join(format!("goroutines_cli_{label}"));
        go_build_with(go, &source_dir().join("goroutines"), &binary, flags, &[])
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let work = tmp_dir().join(format!("goroutines-cli-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let dump = work.join("dump");
        let marker = work.join("ready");
        let child = spawn_retrying(
            Command::new(&binary)
                .arg(IDLE.to_string())
                .arg(&dump)
                .arg(&marker)
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        );
        let mut running = Running { child, dump, work };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !marker.exists() {
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!("{label}: the fixture ended early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "{label}: the fixture never got ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        running
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// After latch has detached: alive, untraced, not left stopped.
    fn assert_runs_untraced(&mut self, label: &str) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "{label}: the fixture died"
        );
        assert_eq!(
            procfs::tracer_pid(self.pid()),
            Some(0),
            "{label}: still traced"
        );
        let state = procfs::process_state(self.pid());
        assert!(
            !matches!(state, Some('t' | 'T')),
            "{label}: left stopped ({state:?})"
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// One group of `latch attach`'s goroutines.
#[derive(Debug, Default)]
struct Group {
    count: usize,
    state: String,
    threads: Vec<i32>,
    /// The ids shown; `cut` when the line ends in `…`.
    ids: Vec<i64>,
    cut: bool,
    labels: Option<String>,
    functions: Vec<String>,
    places: Vec<String>,
    created_by: Option<String>,
    text: String,
}

/// `5-16, 28, 30-31, …` as ids.
fn parse_ids(text: &str) -> (Vec<i64>, bool) {
    let mut ids = Vec::new();
    let mut cut = false;
    for part in text.split(", ") {
        if part == "…" {
            cut = true;
        } else if let Some((first, last)) = part.split_once('-') {
            let (first, last): (i64, i64) = (first.parse().unwrap(), last.parse().unwrap());
            assert!(first < last, "a run {part}");
            ids.extend(first..=last);
        } else {
            ids.push(part.parse().unwrap_or_else(|_| panic!("an id {part:?}")));
        }
    }
    (ids, cut)
}

/// The groups of `latch attach`'s output, and how many runtime goroutines it left out.
fn parse_groups(stdout: &str) -> (Vec<Group>, usize) {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(" by stack, the largest first:"))
        .unwrap_or_else(|| panic!("no goroutine groups:\n{stdout}"));
    let mut groups: Vec<Group> = Vec::new();
    let mut hidden = 0;
    for line in &lines[start + 1..] {
        if line.starts_with("Thread ") {
            break;
        }
        if let Some(count) = line
            .strip_suffix(" runtime goroutines not shown; --all-goroutines lists them")
            .or_else(|| {
                line.strip_suffix(" runtime goroutine not shown; --all-goroutines lists them")
            })
        {
            hidden = count.parse().unwrap();
        } else if let Some(frame) = line.strip_prefix("  #") {
            let group = groups.last_mut().unwrap();
            let name = frame.split_once(" in ").unwrap().1;
            let name = name
                .split(" at ")
                .next()
                .unwrap()
                .split(" (")
                .next()
                .unwrap()
                .trim_end_matches(" [inlined]");
            group.functions.push(name.to_string());
            let place = frame
                .split_once(" at ")
                .map(|(_, place)| place.trim_end_matches(" [inlined]").to_string());
            group.places.push(place.unwrap_or_default());
            group.text += &format!("{line}\n");
        } else if let Some(created) = line.strip_prefix("  created by ") {
            let group = groups.last_mut().unwrap();
            group.created_by = Some(created.to_string());
            group.text += &format!("{line}\n");
        } else if let Some(labels) = line.strip_prefix("  labels: ") {
            let group = groups.last_mut().unwrap();
            group.labels = Some(labels.to_string());
            group.text += &format!("{line}\n");
        } else if line.starts_with("  ") {
            groups.last_mut().unwrap().text += &format!("{line}\n");
        } else if !line.is_empty() {
            // `N goroutines [STATE, M minutes] on thread T: IDS`
            let (count, rest) = line.split_once(' ').unwrap();
            let count = count
                .parse()
                .unwrap_or_else(|_| panic!("a group header {line:?}"));
            let open = rest.find('[').unwrap();
            let close = rest.find(']').unwrap();
            let state = rest[open + 1..close]
                .split(", ")
                .next()
                .unwrap()
                .to_string();
            let (between, ids) = rest[close + 1..].split_once(": ").unwrap();
            let threads = between
                .trim()
                .trim_start_matches("on threads")
                .trim_start_matches("on thread")
                .split(", ")
                .filter(|t| !t.trim().is_empty())
                .map(|t| t.trim().parse().unwrap())
                .collect();
            let (ids, cut) = parse_ids(ids);
            groups.push(Group {
                count,
                state,
                threads,
                ids,
                cut,
                text: format!("{line}\n"),
                ..Group::default()
            });
        }
    }
    (groups, hidden)
}

/// The functions Go's tracebacks show by default: without the runtime's unexported
/// ones (which Go versions differ on: the current Go shows `runtime.runFinalizers`).
fn shown_by_go(functions: &[String]) -> Vec<String> {
    functions
        .iter()
        .filter(|f| is_shown_by_go(f))
        .cloned()
        .collect()
}

fn is_shown_by_go(function: &str) -> bool {
    function
        .strip_prefix("runtime.")
        .is_none_or(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// The `FILE:LINE` of each frame `shown_by_go` keeps.
fn places_shown_by_go(functions: &[String], places: &[String]) -> Vec<String> {
    functions
        .iter()
        .zip(places)
        .filter(|(f, _)| is_shown_by_go(f))
        .map(|(_, p)| p.clone())
        .collect()
}

fn latch_attach(pid: i32) -> Output {
    run_with_deadline(
        Command::new(latch_bin()).args(["attach", &pid.to_string()]),
        Duration::from_secs(60),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_groups_agree_with_dump(go: &Path, label: &str) {
    let mut fixture = Running::start(go, label, &[]);
    let dumped = parse_dump(&std::fs::read_to_string(&fixture.dump).unwrap());
    assert_eq!(dumped.len(), IDLE + 11, "{label}: the fixture's dump");
    // The marker is written just before main parks for good: until it has, it may still
    // be in the system call that wrote it. Attach again until it is parked.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (stdout, groups, hidden) = loop {
        let out = latch_attach(fixture.pid());
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{label}: latch attach failed ({}): {stdout}\n{}",
            out.status,
            text(&out.stderr)
        );
        let (groups, hidden) = parse_groups(&stdout);
        let main_parked = groups
            .iter()
            .any(|g| g.ids.contains(&1) && g.state == "select (no cases)");
        if main_parked || Instant::now() > deadline {
            break (stdout, groups, hidden);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "{label}: {} groups, {hidden} runtime goroutines left out; the output's first lines:\n{}",
        groups.len(),
        stdout.lines().take(40).collect::<Vec<_>>().join("\n")
    );
    assert!(
        hidden > 0,
        "{label}: no runtime goroutine counted:\n{stdout}"
    );

    // Counts: every goroutine of the dump is in a group.
    let total: usize = groups.iter().map(|g| g.count).sum();
    assert_eq!(
        total,
        dumped.len(),
        "{label}: the groups' counts:\n{stdout}"
    );
    // Largest first.
    for pair in groups.windows(2) {
        assert!(pair[0].count >= pair[1].count, "{label}: order:\n{stdout}");
    }
    // Each id shown is in one group only, and is one of the dump's; a group not cut
    // shows all of its ids.
    let mut owner: BTreeMap<i64, usize> = BTreeMap::new();
    for (index, group) in groups.iter().enumerate() {
        if group.cut {
            assert!(group.ids.len() < group.count, "{label}: {}", group.text);
        } else {
            assert_eq!(group.ids.len(), group.count, "{label}: {}", group.text);
        }
        for id in &group.ids {
            assert!(
                owner.insert(*id, index).is_none(),
                "{label}: goroutine {id} in two groups:\n{stdout}"
            );
        }
    }
    let uncut = groups.iter().all(|g| !g.cut);
    for theirs in &dumped {
        let Some(&index) = owner.get(&theirs.id) else {
            assert!(!uncut, "{label}: goroutine {} in no group", theirs.id);
            continue;
        };
        let group = &groups[index];
        let context = format!(
            "{label}: goroutine {}:\n{}\nin\n{}",
            theirs.id, theirs.text, group.text
        );
        if theirs.text.contains("main.busy(") {
            assert!(
                ["running", "runnable", "preempted"].contains(&group.state.as_str()),
                "{context}"
            );
            if group.state == "running" {
                assert_eq!(group.threads.len(), 1, "{context}: its thread");
                assert!(
                    procfs::live_tids(fixture.pid()).contains(&group.threads[0]),
                    "{context}: not a thread of the fixture"
                );
            }
        } else if theirs.id == 1 {
            // The goroutine that took the dump, since parked for good.
            assert_eq!(group.state, "select (no cases)", "{context}");
        } else {
            assert_eq!(group.state, theirs.state, "{context}");
            assert!(group.threads.is_empty(), "{context}");
        }
        // Its frames are the dump's, the runtime's aside, and the wrapper Go's compiler
        // makes of a `go` statement with arguments (hidden by Go's tracebacks).
        let mut ours = shown_by_go(&group.functions);
        let mut our_places = places_shown_by_go(&group.functions, &group.places);
        let creator = theirs
            .created_by
            .as_deref()
            .map(|c| c.split(" at ").next().unwrap().to_string());
        if ours.len() == shown_by_go(&theirs.functions).len() + 1 {
            let wrapper = ours.last().unwrap();
            if creator
                .as_deref()
                .is_some_and(|c| wrapper.starts_with(&format!("{c}.")))
            {
                ours.pop();
                our_places.pop();
            }
        }
        assert_eq!(ours, shown_by_go(&theirs.functions), "{context}");
        // At the same lines too, but for the two that ran on since the dump.
        if theirs.id != 1 && !theirs.text.contains("main.busy(") {
            assert_eq!(
                our_places,
                places_shown_by_go(&theirs.functions, &theirs.places),
                "{context}"
            );
        }
        assert_eq!(group.created_by, theirs.created_by, "{context}");
        if theirs.text.contains("main.labelled") {
            assert_eq!(
                group.labels.as_deref(),
                Some("request=r42 user=ann"),
                "{context}"
            );
        } else {
            assert_eq!(group.labels, None, "{context}");
        }
    }
    // The idle goroutines are one group, of all of them.
    let idle: Vec<&Dumped> = dumped
        .iter()
        .filter(|d| d.functions.first().is_some_and(|f| f == "main.idle"))
        .collect();
    assert_eq!(idle.len(), IDLE, "{label}: the dump's idle goroutines");
    let index = *idle
        .iter()
        .find_map(|d| owner.get(&d.id))
        .unwrap_or_else(|| panic!("{label}: no idle goroutine shown:\n{stdout}"));
    let group = &groups[index];
    assert_eq!(group.count, IDLE, "{label}: {}", group.text);
    assert!(
        std::ptr::eq(group, &groups[0]),
        "{label}: the largest first"
    );
    assert_eq!(group.state, "chan receive", "{label}: {}", group.text);
    assert_eq!(
        group
            .created_by
            .as_deref()
            .map(|c| c.split(" at ").next().unwrap()),
        Some("main.startIdle"),
        "{label}: {}",
        group.text
    );
    for d in &idle {
        assert!(
            owner
                .get(&d.id)
                .is_none_or(|&i| std::ptr::eq(&groups[i], group)),
            "{label}: idle goroutine {} elsewhere",
            d.id
        );
    }
    // The thread of the running goroutine is not printed again alone.
    for group in &groups {
        for tid in &group.threads {
            assert!(
                !stdout.contains(&format!("\nThread {tid} ")),
                "{label}: thread {tid}'s stack printed twice:\n{stdout}"
            );
        }
    }
    // With --all-goroutines, the runtime's are listed too, in groups of their own.
    let out = run_with_deadline(
        Command::new(latch_bin()).args(["attach", &fixture.pid().to_string(), "--all-goroutines"]),
        Duration::from_secs(60),
    );
    let every = text(&out.stdout);
    assert!(out.status.success(), "{label}: {every}");
    let (all_groups, none_hidden) = parse_groups(&every);
    assert_eq!(none_hidden, 0, "{label}: {every}");
    let total: usize = all_groups.iter().map(|g| g.count).sum();
    assert_eq!(
        total,
        dumped.len() + hidden,
        "{label}: --all-goroutines lists what was counted:\n{every}"
    );
    assert!(
        all_groups
            .iter()
            .any(|g| g.functions.iter().any(
                |f| f.starts_with("runtime.bgsweep") || f.starts_with("runtime.forcegchelper")
            )),
        "{label}: no runtime goroutine listed:\n{every}"
    );
    fixture.assert_runs_untraced(label);
}

fn assert_no_dwarf_says_why(go: &Path, label: &str) {
    let mut fixture = Running::start(go, &format!("{label}-no-dwarf"), &["-ldflags=-w"]);
    let out = latch_attach(fixture.pid());
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{label}: latch attach failed ({}): {stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let process = lines
        .iter()
        .position(|l| l.starts_with(&format!("process {} ", fixture.pid())))
        .unwrap_or_else(|| panic!("{label}: no process line:\n{stdout}"));
    assert!(
        lines[process + 1].starts_with("goroutines need the program's DWARF"),
        "{label}: no word on DWARF after the process line:\n{stdout}"
    );
    assert!(lines[process + 2].contains("TID"), "{label}:\n{stdout}");
    assert!(!stdout.contains("by stack"), "{label}:\n{stdout}");
    // Today's threads: every thread of the table, then each one's stack.
    let rows = lines[process + 3..]
        .iter()
        .take_while(|l| !l.is_empty())
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|t| t.parse::<i32>().is_ok())
        })
        .count();
    let stacks = stdout.matches("\nThread ").count();
    assert!(rows > 0, "{label}:\n{stdout}");
    assert_eq!(stacks, rows, "{label}:\n{stdout}");
    fixture.assert_runs_untraced(label);
}

fn debian_go() -> Option<PathBuf> {
    match go_tool() {
        Ok(go) => Some(go),
        Err(why) => {
            skip_or_fail(&format!("goroutines cannot be tested: {why}"));
            None
        }
    }
}

fn current_go() -> Option<PathBuf> {
    match std::env::var_os("LATCH_CURRENT_GO") {
        Some(go) => Some(PathBuf::from(go)),
        None => {
            skip_or_fail("LATCH_CURRENT_GO does not name a current Go (see .ci/run)");
            None
        }
    }
}

#[test]
fn cli_go_1_19_goroutines_grouped_agree_with_runtime_stack() {
    require_harness!();
    if let Some(go) = debian_go() {
        assert_groups_agree_with_dump(&go, "go119");
    }
}

#[test]
fn cli_current_go_goroutines_grouped_agree_with_runtime_stack() {
    require_harness!();
    if let Some(go) = current_go() {
        assert_groups_agree_with_dump(&go, "current");
    }
}

#[test]
fn cli_go_1_19_without_dwarf_says_goroutines_need_it() {
    require_harness!();
    if let Some(go) = debian_go() {
        assert_no_dwarf_says_why(&go, "go119");
    }
}

#[test]
fn cli_current_go_without_dwarf_says_goroutines_need_it() {
    require_harness!();
    if let Some(go) = current_go() {
        assert_no_dwarf_says_why(&go, "current");
    }
}

/// `--break` on a Go program: the thread that hit the breakpoint is marked and its
/// stack printed first, alone, as on any program; the goroutines follow the table,
/// the one that hit it among them, running on that thread.
#[test]
fn cli_break_in_a_go_program_prints_the_thread_and_the_goroutines() {
    require_harness!();
    let Some(target) = Target::start_go(&["1", "4"]) else {
        return;
    };
    // The busy goroutine's `atomic.AddUint64(&sink, 1)`, reached every 2^24 turns.
    let source = source_dir().join("go/main.go");
    let line = std::fs::read_to_string(&source)
        .unwrap()
        .lines()
        .position(|l| l.contains("atomic.AddUint64(&sink, 1)"))
        .unwrap()
        + 1;
    let place = format!("main.go:{line}");
    let out = run_with_deadline(
        Command::new(latch_bin()).args([
            "attach",
            &target.pid.to_string(),
            "--break",
            &place,
            "--break-timeout",
            "20",
        ]),
        Duration::from_secs(60),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let first = stdout.lines().next().unwrap_or_default();
    let tid: i32 = first
        .strip_prefix("thread ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no hit: {stdout}"));
    assert!(first.contains(&place), "{stdout}");
    assert!(stdout.contains("[hit the breakpoint]"), "{stdout}");
    let (groups, _) = parse_groups(&stdout);
    let hitting = groups
        .iter()
        .find(|g| g.threads.contains(&tid))
        .unwrap_or_else(|| panic!("no goroutine on thread {tid}:\n{stdout}"));
    assert_eq!(hitting.state, "running", "{stdout}");
    assert!(
        hitting
            .text
            .lines()
            .nth(1)
            .unwrap_or_default()
            .ends_with(&place),
        "{stdout}"
    );
    // Its thread's stack, printed alone too: what the user asked for.
    let stack = stdout
        .split(&format!("\nThread {tid} "))
        .nth(1)
        .unwrap_or_else(|| panic!("thread {tid}'s stack not printed: {stdout}"));
    assert!(
        stack.lines().nth(1).unwrap_or_default().ends_with(&place),
        "{stdout}"
    );
    assert!(stdout.contains("detached from"), "{stdout}");
    target.assert_runs_on_with_new_threads_allowed();
}
