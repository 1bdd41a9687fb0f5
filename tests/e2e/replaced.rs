//! Files replaced on disk while the process runs: an executable rebuilt (the linker
//! unlinks the old file and writes a new one at the path), a library replaced with `mv`
//! as package managers do. latch must name the code from the file that is loaded, never
//! from the new file at the path. The oracle is `addr2line -f -i` on a copy of the old
//! build kept aside, and the test checks that the new build would have named the same
//! addresses otherwise, so that it can fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::require_harness;
use crate::support::dap::latch_bin;
use crate::support::fixtures::{source_dir, tmp_dir, which};
use crate::support::target::run_with_deadline;
use crate::support::{procfs, secs, skip_or_fail, Dap, Target};

/// A fresh folder for one test's builds.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = tmp_dir().join(format!("replaced-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds `source` (in tests/fixtures/replaced) to `dest`: written to a temporary name
/// and renamed over `dest`, as a linker or a package manager replaces a file, so that a
/// running copy becomes "(deleted)". `padding` moves the code to other addresses.
fn build(source: &str, dest: &Path, padding: bool, shared: bool) {
    let src = source_dir().join("replaced").join(source);
    let tmp = dest.with_extension("new");
    let mut cc = Command::new("cc");
    // Functions in source order, so that the padding comes first.
    cc.args([
        "-O1",
        "-g",
        "-pthread",
        "-Wall",
        "-fno-toplevel-reorder",
        "-o",
    ])
    .arg(&tmp)
    .arg(&src);
    if padding {
        cc.arg("-DPADDING");
    }
    if shared {
        cc.args(["-shared", "-fPIC"]);
    } else {
        cc.arg("-ldl");
    }
    let out = cc.output().expect("run cc");
    assert!(
        out.status.success(),
        "cc {source} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, dest).unwrap();
}

/// True when binutils' addr2line, the oracle, is installed; says so loudly otherwise.
fn have_addr2line() -> bool {
    if which("addr2line").is_some() {
        return true;
    }
    skip_or_fail("addr2line (binutils) is not installed; it names the old build's code");
    false
}

/// The functions at `address` of `file` (its own numbering), innermost inlined first,
/// as `addr2line -f -i` names them.
fn addr2line(file: &Path, address: u64) -> Vec<String> {
    let out = Command::new("addr2line")
        .args(["-f", "-i", "-e"])
        .arg(file)
        .arg(format!("{address:#x}"))
        .output()
        .expect("run addr2line");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Where the file mapped at `path` (as /proc/PID/maps names it, " (deleted)" or not)
/// was loaded: the start of its mapping at offset 0. The fixtures are PIE and shared
/// objects whose first segment is at address 0, so this is the load bias.
fn load_bias(pid: i32, path: &Path) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let path = path.to_string_lossy();
    maps.lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = fields.get(5..)?.join(" ");
            let name = name.trim_end_matches(" (deleted)");
            (name == path && fields[2] == "00000000")
                .then(|| u64::from_str_radix(fields[0].split('-').next()?, 16).ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("{path} is not mapped by {pid}:\n{maps}"))
}

/// One frame of a stack: its pc and the name latch gave it.
#[derive(Debug, Clone)]
struct Frame {
    pc: u64,
    name: String,
    in_module: bool,
}

/// Checks every frame in the replaced module against the old build: the names latch
/// shows for each pc are what addr2line names on the old copy. Returns how many of
/// those pcs the new build names differently (the test's power to fail).
fn assert_named_from_old_build(frames: &[Frame], bias: u64, old: &Path, new: &Path) -> usize {
    let mut by_pc: BTreeMap<(usize, u64), Vec<String>> = BTreeMap::new();
    let mut order = 0;
    let mut last_pc = None;
    for frame in frames {
        if last_pc != Some(frame.pc) {
            order += 1;
            last_pc = Some(frame.pc);
        }
        if frame.in_module {
            by_pc
                .entry((order, frame.pc))
                .or_default()
                .push(frame.name.clone());
        }
    }
    assert!(
        !by_pc.is_empty(),
        "no frame in the replaced module: {frames:#?}"
    );
    let mut differs = 0;
    for ((order, pc), names) in by_pc {
        // A return address is just past its call.
        let address = pc - bias - u64::from(order > 1);
        let expected = addr2line(old, address);
        assert_eq!(
            names, expected,
            "the frames at {pc:#x} ({address:#x} in the file) are named as the old build \
             names them; all frames: {frames:#?}"
        );
        if addr2line(new, address) != expected {
            differs += 1;
        }
    }
    differs
}

#[test]
fn a_rebuilt_executable_is_named_from_the_build_that_runs() {
    require_harness!();
    if !have_addr2line() {
        return;
    }
    let dir = fresh_dir("executable");
    let program = dir.join("program");
    build("program.c", &program, false, false);
    let old = dir.join("program.old");
    std::fs::copy(&program, &old).unwrap();
    let target = Target::start_cmd(Command::new(&program));
    build("program.c", &program, true, false);

    let out = run_with_deadline(
        Command::new(latch_bin()).args(["attach", &target.pid.to_string()]),
        secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "latch attach failed: {stdout}");
    let sleeper = procfs::live_tasks(target.pid)
        .into_iter()
        .find(|t| t.comm == "sleeper")
        .expect("a sleeper thread");
    let mut frames = cli_stack(&stdout, sleeper.tid);
    mark_module(&mut frames, target.pid, &program);
    let names: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
    assert!(names.contains(&"sleeper"), "{stdout}");
    assert!(
        names.iter().any(|n| n.contains("start_thread")),
        "the stack goes on past the replaced file's code: {stdout}"
    );
    let bias = load_bias(target.pid, &program);
    let differs = assert_named_from_old_build(&frames, bias, &old, &program);
    assert!(
        differs > 0,
        "the new build names the same code alike: the test would not catch a wrong name"
    );
    let note = format!("{} (deleted): Replaced on disk", program.display());
    assert!(
        stdout.contains(&note),
        "the terminal says the executable was replaced: no {note:?} in\n{stdout}"
    );
    target.assert_runs_on(false);
}

/// The frames of thread `tid` in `latch attach`'s output (`#N  0xPC in NAME ...`).
fn cli_stack(stdout: &str, tid: i32) -> Vec<Frame> {
    let header = format!("Thread {tid} ");
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with(&header));
    assert!(lines.next().is_some(), "no stack of thread {tid}: {stdout}");
    lines
        .take_while(|l| l.trim_start().starts_with('#'))
        .map(|line| {
            let rest = line.trim_start().split_once(' ').unwrap().1.trim_start();
            let (pc, rest) = rest.split_once(" in ").unwrap();
            let pc = u64::from_str_radix(pc.trim_start_matches("0x"), 16).unwrap();
            let rest = rest.trim_end_matches(" [inlined]");
            let name = rest
                .split(" at ")
                .next()
                .unwrap()
                .split(" (")
                .next()
                .unwrap()
                .to_string();
            Frame {
                pc,
                name,
                in_module: false,
            }
        })
        .collect()
}

/// Marks the frames whose code lies in the file mapped at `path`, by /proc/PID/maps.
fn mark_module(frames: &mut [Frame], pid: i32, path: &Path) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let path = path.to_string_lossy();
    let ranges: Vec<(u64, u64)> = maps
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = fields.get(5..)?.join(" ");
            if name.trim_end_matches(" (deleted)") != path {
                return None;
            }
            let (start, end) = fields[0].split_once('-')?;
            Some((
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect();
    for frame in frames {
        // A return address may be just past the end of its module's code.
        let pc = frame.pc.saturating_sub(1);
        frame.in_module = ranges
            .iter()
            .any(|(start, end)| (*start..*end).contains(&pc));
    }
}

/// The replaced library's fixture: `program LIBRARY`, the library then replaced.
struct LibraryCase {
    target: Target,
    library: PathBuf,
    old: PathBuf,
    sleeper: i32,
}

fn start_with_replaced_library(dir: &Path, program: &Path) -> LibraryCase {
    build("program.c", program, false, false);
    let library = dir.join("libreplaced.so");
    build("library.c", &library, false, true);
    let old = dir.join("libreplaced.so.old");
    std::fs::copy(&library, &old).unwrap();
    let mut cmd = Command::new(program);
    cmd.arg(&library);
    let target = Target::start_cmd(cmd);
    build("library.c", &library, true, true);
    let sleeper = procfs::live_tasks(target.pid)
        .into_iter()
        .find(|t| t.comm == "sleeper")
        .expect("a sleeper thread")
        .tid;
    LibraryCase {
        target,
        library,
        old,
        sleeper,
    }
}

/// The stack of `tid` over DAP, and the library's entry in the `modules` list.
fn dap_stack_and_module(dap: &mut Dap, case: &LibraryCase) -> (Vec<Frame>, Value) {
    let tid = case.sleeper;
    let r = dap.ok("stackTrace", json!({ "threadId": tid }));
    let frames = r["body"]["stackFrames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Frame {
            pc: u64::from_str_radix(
                f["instructionPointerReference"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("0x"),
                16,
            )
            .unwrap(),
            name: f["name"].as_str().unwrap().to_string(),
            in_module: false,
        })
        .collect::<Vec<_>>();
    let mut frames = frames;
    mark_module(&mut frames, case.target.pid, &case.library);
    let modules = dap.ok("modules", json!({}));
    let module = modules["body"]["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"].as_str().unwrap().contains("libreplaced.so"))
        .unwrap_or_else(|| panic!("no libreplaced.so in {modules}"))
        .clone();
    (frames, module)
}

#[test]
fn a_library_replaced_with_mv_is_named_from_the_loaded_copy() {
    require_harness!();
    if !have_addr2line() {
        return;
    }
    // The loaded copy is read through /proc/PID/map_files, which needs CAP_SYS_ADMIN:
    // an ordinary user's run is the next test's case.
    if !nix::unistd::geteuid().is_root() {
        return skip_or_fail(
            "not root: reading a replaced library's loaded copy needs CAP_SYS_ADMIN",
        );
    }
    let dir = fresh_dir("library");
    let case = start_with_replaced_library(&dir, &dir.join("program"));
    let mut dap = Dap::attached(case.target.pid, true);
    let (frames, module) = dap_stack_and_module(&mut dap, &case);
    let names: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
    assert!(names.contains(&"library_pause"), "{frames:#?}");
    assert!(
        names.iter().any(|n| n.contains("start_thread")),
        "the stack goes on past the library: {frames:#?}"
    );
    let bias = load_bias(case.target.pid, &case.library);
    let differs = assert_named_from_old_build(&frames, bias, &case.old, &case.library);
    assert!(differs > 0, "the new build names the same code alike");
    let status = module["symbolStatus"].as_str().unwrap();
    assert!(
        status.contains("Replaced on disk"),
        "the modules list says the file was replaced: {module}"
    );
    dap.disconnect(json!({}));
    case.target.assert_runs_on(false);
}

/// The same as an ordinary user, who cannot open `/proc/PID/map_files` (it needs
/// CAP_SYS_ADMIN): the loaded copy is out of reach and its debug file is not installed,
/// so the library's code is shown as addresses, never with the new file's names, and
/// the modules list says why. As root, the target and latch run as `nobody`.
#[test]
fn a_replaced_library_out_of_reach_is_shown_as_addresses() {
    require_harness!();
    let as_nobody = nix::unistd::geteuid().is_root();
    if as_nobody && which("setpriv").is_none() {
        skip_or_fail("setpriv (util-linux) is needed to run the target and latch as nobody");
        return;
    }
    let prefix: Vec<String> = match as_nobody {
        true => [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]
        .map(String::from)
        .to_vec(),
        false => Vec::new(),
    };
    let dir = fresh_dir("unprivileged");
    let program = dir.join("program");
    build("program.c", &program, false, false);
    let library = dir.join("libreplaced.so");
    build("library.c", &library, false, true);
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(&program);
            cmd
        }
        None => Command::new(&program),
    };
    cmd.arg(&library);
    let target = Target::start_cmd_with_heartbeat_owned_by(cmd, as_nobody.then_some(65534));
    build("library.c", &library, true, true);
    let sleeper = procfs::live_tasks(target.pid)
        .into_iter()
        .find(|t| t.comm == "sleeper")
        .expect("a sleeper thread")
        .tid;
    let case = LibraryCase {
        target,
        library: library.clone(),
        old: PathBuf::new(),
        sleeper,
    };

    let mut dap = Dap::start_with(prefix, &[], false);
    dap.initialize();
    dap.attach_pid(case.target.pid, true);
    let (frames, module) = dap_stack_and_module(&mut dap, &case);
    let in_library: Vec<&Frame> = frames.iter().filter(|f| f.in_module).collect();
    assert!(
        !in_library.is_empty(),
        "no frame in the library: {frames:#?}"
    );
    for frame in &in_library {
        assert!(
            frame.name.starts_with("0x") && frame.name.contains("libreplaced.so"),
            "a frame in the replaced library is shown as its address and module, not named \
             from another file: {frames:#?}"
        );
    }
    assert!(
        frames.iter().any(|f| f.name.contains("start_thread")),
        "the stack goes on through the library by its loaded unwind tables: {frames:#?}"
    );
    let status = module["symbolStatus"].as_str().unwrap();
    assert!(
        status.contains("Replaced") && status.contains("build-id"),
        "the modules list says the file was replaced and what would name it: {module}"
    );
    dap.disconnect(json!({}));
    case.target.assert_runs_on(false);
}

/// As above, but the debug file of the loaded build is installed where the target sees
/// it (`/usr/lib/debug/.build-id/` in its mount namespace, as in a container): the
/// library is named from it, by the build-id of its loaded image, and unwound by its
/// loaded unwind tables. Needs root (for the namespace), which CI has.
#[test]
fn a_replaced_library_out_of_reach_is_named_from_its_debug_file_by_build_id() {
    require_harness!();
    if !have_addr2line() {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        skip_or_fail("not root: the test needs a mount namespace and to run as nobody");
        return;
    }
    let probe = Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) || which("setpriv").is_none() {
        skip_or_fail("`unshare -m` or setpriv (util-linux) is not available");
        return;
    }
    let build_ids = Path::new("/usr/lib/debug/.build-id");
    if !build_ids.is_dir() {
        skip_or_fail("/usr/lib/debug/.build-id does not exist to mount over (install libc6-dbg)");
        return;
    }
    let dir = fresh_dir("debug-file");
    let program = dir.join("program");
    build("program.c", &program, false, false);
    let library = dir.join("libreplaced.so");
    build("library.c", &library, false, true);
    let old = dir.join("libreplaced.so.old");
    std::fs::copy(&library, &old).unwrap();
    let debug = dir.join("libreplaced.debug");
    let objcopy = Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&library)
        .arg(&debug)
        .status()
        .expect("run objcopy");
    assert!(objcopy.success(), "objcopy --only-keep-debug failed");
    let data = std::fs::read(&library).unwrap();
    let id = {
        use object::Object;
        let file = object::File::parse(&*data).unwrap();
        file.build_id()
            .unwrap()
            .expect("the library has a build-id")
            .to_vec()
    };
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    // Inside the target's mount namespace only: the host's folder is left as it is.
    let script = format!(
        "mount -t tmpfs latch-test {ids} && mkdir {ids}/{head} && cp {debug} {ids}/{head}/{tail}.debug \
         && exec setpriv --reuid=65534 --regid=65534 --clear-groups {program} {library}",
        ids = build_ids.display(),
        head = &hex[..2],
        tail = &hex[2..],
        debug = debug.display(),
        program = program.display(),
        library = library.display(),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let target = Target::start_cmd_with_heartbeat_owned_by(cmd, Some(65534));
    build("library.c", &library, true, true);
    let sleeper = procfs::live_tasks(target.pid)
        .into_iter()
        .find(|t| t.comm == "sleeper")
        .expect("a sleeper thread")
        .tid;
    let case = LibraryCase {
        target,
        library,
        old,
        sleeper,
    };
    let prefix = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ]
    .map(String::from)
    .to_vec();
    let mut dap = Dap::start_with(prefix, &[], false);
    dap.initialize();
    dap.attach_pid(case.target.pid, true);
    let (frames, module) = dap_stack_and_module(&mut dap, &case);
    assert!(
        frames.iter().any(|f| f.name == "library_pause"),
        "{frames:#?}"
    );
    assert!(
        frames.iter().any(|f| f.name.contains("start_thread")),
        "the stack goes on through the library by its loaded unwind tables: {frames:#?}"
    );
    let bias = load_bias(case.target.pid, &case.library);
    let differs = assert_named_from_old_build(&frames, bias, &case.old, &case.library);
    assert!(differs > 0, "the new build names the same code alike");
    let status = module["symbolStatus"].as_str().unwrap();
    assert!(
        status.contains("Replaced on disk") && status.contains("debug file"),
        "the modules list says where the names come from: {module}"
    );
    dap.disconnect(json!({}));
    case.target.assert_runs_on(false);
}
