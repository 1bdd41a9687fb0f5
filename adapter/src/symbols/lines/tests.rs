//! gdb is the oracle: every line of the fixtures' sources and a list of function names
//! are resolved by gdb 13's `break` (through its Python API, one gdb per binary) and by
//! `lines`, in the file's own numbering (no process), and must agree.

use super::*;
use crate::symbols::functions::{functions_named, name_components, name_matches};
use crate::symbols::module::map_file;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .canonicalize()
        .unwrap()
}

fn work_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latch-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fixture {
    COptimizedNot,
    COptimized,
    Cpp,
    LinesO0,
    LinesO2,
}

impl Fixture {
    fn source(self) -> PathBuf {
        match self {
            Fixture::COptimizedNot | Fixture::COptimized => fixtures().join("stacks/stack.c"),
            Fixture::Cpp => fixtures().join("stacks/stack.cpp"),
            Fixture::LinesO0 | Fixture::LinesO2 => fixtures().join("breakpoints/lines.cpp"),
        }
    }

    fn build(self) -> PathBuf {
        let (compiler, level, name) = match self {
            Fixture::COptimizedNot => ("gcc", "-O0", "c0"),
            Fixture::COptimized => ("gcc", "-O2", "c2"),
            Fixture::Cpp => ("g++", "-O2", "cpp"),
            Fixture::LinesO0 => ("g++", "-O0", "lines0"),
            Fixture::LinesO2 => ("g++", "-O2", "lines2"),
        };
        let out = work_dir().join(name);
        let output = std::process::Command::new(compiler)
            .args([level, "-g", "-pthread", "-I"])
            .arg(fixtures())
            .arg("-o")
            .arg(&out)
            .arg(self.source())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
        assert!(
            output.status.success(),
            "{compiler} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    }

    /// The built binary, once per test process.
    fn binary(self) -> &'static Path {
        static BUILT: OnceLock<std::sync::Mutex<BTreeMap<String, &'static Path>>> = OnceLock::new();
        let built = BUILT.get_or_init(Default::default);
        let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
        built
            .entry(format!("{self:?}"))
            .or_insert_with(|| Box::leak(self.build().into_boxed_path()))
    }

    fn module(self) -> Rc<ModuleInfo> {
        let path = self.binary();
        Rc::new(ModuleInfo::parse(
            map_file(path).unwrap(),
            Some(path),
            Path::new("/"),
        ))
    }
}

/// What gdb's `break QUERY` set: (addresses, the lines it reports), or `None` when it
/// set nothing.
type GdbAnswer = Option<(Vec<u64>, Vec<u32>)>;

const GDB_SCRIPT: &str = r#"
import gdb, os
gdb.execute("set breakpoint pending off")
gdb.execute("set confirm off")
for index, query in enumerate(open(os.environ["LATCH_GDB_QUERIES"]).read().splitlines()):
    before = len(gdb.breakpoints())
    try:
        gdb.execute("break " + query, to_string=True)
    except gdb.error:
        pass
    points = gdb.breakpoints()
    if len(points) == before:
        print("R\t%d\tERR" % index)
        continue
    locations = points[-1].locations
    print("R\t%d\t%s\t%s" % (index, ",".join(str(l.address) for l in locations),
                             ",".join(str(l.source[1] if l.source else 0) for l in locations)))
"#;

/// gdb's answers to `break QUERY` for each query, on `binary` without running it.
fn gdb_breaks(binary: &Path, queries: &[String]) -> Option<Vec<GdbAnswer>> {
    let dir = work_dir();
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{}-{call}", binary.file_name().unwrap().to_string_lossy());
    let script = dir.join(format!("{name}.py"));
    let list = dir.join(format!("{name}.queries"));
    std::fs::write(&script, GDB_SCRIPT).unwrap();
    std::fs::write(&list, queries.join("\n")).unwrap();
    let output = std::process::Command::new("gdb")
        .args(["-nx", "-batch", "-x"])
        .arg(&script)
        .arg(binary)
        .env("LATCH_GDB_QUERIES", &list)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut answers = vec![None; queries.len()];
    let mut seen = 0;
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.first() != Some(&"R") {
            continue;
        }
        let index: usize = fields[1].parse().unwrap_or_else(|_| panic!("{line}"));
        seen += 1;
        if fields[2] == "ERR" {
            continue;
        }
        let number = |text: &str| text.parse().unwrap_or_else(|_| panic!("{line}"));
        let addresses = fields[2].split(',').map(number).collect();
        let lines = fields[3].split(',').map(|l| number(l) as u32).collect();
        answers[index] = Some((addresses, lines));
    }
    assert_eq!(seen, queries.len(), "gdb answered only part: {text}");
    Some(answers)
}

fn gdb_or_skip() -> bool {
    let found = std::process::Command::new("gdb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        crate::test_skip::skip_or_fail("gdb is not installed: the oracle of these tests");
    }
    found
}

fn source_lines(source: &Path) -> u32 {
    std::fs::read_to_string(source).unwrap().lines().count() as u32
}

/// Every line of the fixture's source, and one past its end, as gdb resolves it.
fn every_line_agrees_with_gdb(fixture: Fixture) {
    if !gdb_or_skip() {
        return;
    }
    let source = fixture.source();
    let path = source.to_string_lossy().into_owned();
    let lines: Vec<u32> = (1..=source_lines(&source) + 1).chain([900]).collect();
    let queries: Vec<String> = lines.iter().map(|l| format!("{path}:{l}")).collect();
    let expected = gdb_breaks(fixture.binary(), &queries).expect("gdb runs");
    let module = fixture.module();
    let ours = resolve_in_files(std::slice::from_ref(&module), &path, &lines);
    let mut compared = 0;
    for ((line, expected), ours) in lines.iter().zip(expected).zip(ours) {
        match (expected, ours) {
            (None, Err(_)) => {}
            (Some((addresses, gdb_lines)), Ok(found)) => {
                let got: Vec<u64> = found.addresses.iter().map(|a| a.1).collect();
                let mut want = addresses.clone();
                want.sort_unstable();
                want.dedup();
                assert_eq!(
                    got, want,
                    "{fixture:?} line {line}: ours {got:x?}, gdb's {want:x?}"
                );
                assert!(
                    gdb_lines.contains(&found.line),
                    "{fixture:?} line {line}: ours at line {}, gdb's at {gdb_lines:?}",
                    found.line
                );
                assert_eq!(found.file, path);
                compared += 1;
            }
            (expected, ours) => panic!(
                "{fixture:?} line {line}: gdb {expected:x?}, ours {:?}",
                ours.map(|f| f.addresses)
            ),
        }
    }
    assert!(
        compared > 20,
        "{fixture:?}: only {compared} lines have code"
    );
    eprintln!("{fixture:?}: {compared} lines agree with gdb");
}

#[test]
fn c_lines_at_o0_agree_with_gdb() {
    every_line_agrees_with_gdb(Fixture::COptimizedNot);
}

#[test]
fn c_lines_at_o2_agree_with_gdb() {
    every_line_agrees_with_gdb(Fixture::COptimized);
}

#[test]
fn cpp_lines_agree_with_gdb() {
    every_line_agrees_with_gdb(Fixture::Cpp);
}

#[test]
fn inlined_and_template_lines_agree_with_gdb() {
    every_line_agrees_with_gdb(Fixture::LinesO0);
    every_line_agrees_with_gdb(Fixture::LinesO2);
}

fn functions_agree_with_gdb(fixture: Fixture, names: &[&str]) {
    if !gdb_or_skip() {
        return;
    }
    let queries: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let expected = gdb_breaks(fixture.binary(), &queries).expect("gdb runs");
    let module = fixture.module();
    for (name, expected) in names.iter().zip(expected) {
        let mut got: Vec<u64> = functions_named(&module, name)
            .iter()
            .map(|f| f.address)
            .collect();
        got.sort_unstable();
        got.dedup();
        let mut want = expected.map(|e| e.0).unwrap_or_default();
        want.sort_unstable();
        want.dedup();
        assert_eq!(
            got, want,
            "{fixture:?} break {name}: ours {got:x?}, gdb's {want:x?}"
        );
    }
}

const C_FUNCTIONS: &[&str] = &[
    "level_one",
    "level_two",
    "level_three",
    "worker_main",
    "nap_inner",
    "main",
    "main_wait",
    "fixture_init",
    "no_such_function",
];

#[test]
fn c_functions_agree_with_gdb() {
    functions_agree_with_gdb(Fixture::COptimizedNot, C_FUNCTIONS);
    functions_agree_with_gdb(Fixture::COptimized, C_FUNCTIONS);
}

#[test]
fn cpp_functions_agree_with_gdb() {
    functions_agree_with_gdb(
        Fixture::Cpp,
        &[
            "shapes::Widget::middle",
            "middle",
            "Widget::outer",
            "shapes::Widget::block",
            "run",
            "shapes::run",
            "shapes::run<int>",
            "widget_main",
            "main",
        ],
    );
    let names = &[
        "geo::twice",
        "twice",
        "scale",
        "geo::scale<int>",
        "geo::Box::Box",
        "Box::area",
        "looping",
        "main",
    ];
    functions_agree_with_gdb(Fixture::LinesO0, names);
    functions_agree_with_gdb(Fixture::LinesO2, names);
}

/// The line with `marker` in the fixture's source.
fn marker_line(source: &Path, marker: &str) -> u32 {
    let text = std::fs::read_to_string(source).unwrap();
    text.lines()
        .position(|l| l.contains(marker))
        .map(|i| i as u32 + 1)
        .unwrap_or_else(|| panic!("no {marker} in {}", source.display()))
}

#[test]
fn paths_match_by_their_longest_suffix() {
    let fixture = Fixture::COptimizedNot;
    let module = fixture.module();
    let modules = std::slice::from_ref(&module);
    let source = fixture.source();
    let line = marker_line(&source, "line:level_two");
    let real = resolve_in_files(modules, &source.to_string_lossy(), &[line]);
    let real = real[0].as_ref().expect("resolves");
    assert_eq!(real.line, line);

    // A checkout elsewhere: the same file under another root.
    let elsewhere = "/somewhere/else/tests/fixtures/stacks/stack.c";
    let found = resolve_in_files(modules, elsewhere, &[line]);
    let found = found[0].as_ref().expect("matched by suffix");
    assert_eq!(found.addresses, real.addresses);
    assert_eq!(
        found.file,
        source.to_string_lossy(),
        "the file the DWARF names"
    );

    // The same file through a symlinked directory.
    let link = work_dir().join("linked-stacks");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(source.parent().unwrap(), &link).unwrap();
    let through = link.join("stack.c");
    let found = resolve_in_files(modules, &through.to_string_lossy(), &[line]);
    assert_eq!(
        found[0].as_ref().expect("through the link").addresses,
        real.addresses
    );

    // Only the base name in common still matches; another base name does not.
    let found = resolve_in_files(modules, "/x/y/stack.c", &[line]);
    assert!(found[0].is_ok());
    let missing = resolve_in_files(modules, "/x/y/nosuch.c", &[line, line + 1]);
    assert_eq!(missing.len(), 2);
    for answer in missing {
        let why = answer.err().expect("no module has it");
        assert!(
            why.contains("no loaded module has code for /x/y/nosuch.c"),
            "{why}"
        );
    }
}

#[test]
fn lines_without_code_move_forward() {
    let fixture = Fixture::LinesO0;
    let module = fixture.module();
    let source = fixture.source();
    let path = source.to_string_lossy().into_owned();
    let loop_line = marker_line(&source, "line:loop");
    // The comment and the blank line before the loop move to it.
    let found = resolve_in_files(std::slice::from_ref(&module), &path, &[loop_line - 2, 900]);
    let moved = found[0].as_ref().expect("moves forward");
    assert_eq!(moved.line, loop_line);
    let why = found[1].as_ref().err().expect("past the end");
    assert!(why.contains("no code at or after line 900 of"), "{why}");
    // Two inlined copies of one line, two instances of a template's line.
    let twice = marker_line(&source, "line:twice");
    let scale = marker_line(&source, "line:scale");
    let found = resolve_in_files(std::slice::from_ref(&module), &path, &[twice, scale]);
    for answer in found {
        assert_eq!(answer.expect("has code").addresses.len(), 2);
    }
}

#[test]
fn breakpoint_locations_list_lines_with_code() {
    let fixture = Fixture::LinesO0;
    let module = fixture.module();
    let source = fixture.source();
    let path = source.to_string_lossy().into_owned();
    let loop_line = marker_line(&source, "line:loop");
    let found = locations_in_file(
        std::slice::from_ref(&module),
        &path,
        loop_line - 3,
        loop_line + 3,
    );
    let lines: BTreeSet<u32> = found.iter().map(|l| l.0).collect();
    assert!(lines.contains(&loop_line), "{found:?}");
    assert!(
        !lines.contains(&(loop_line - 1)),
        "a comment has no code: {found:?}"
    );
    assert!(
        found.iter().all(|l| l.1.is_some()),
        "gcc gives columns: {found:?}"
    );
    // Every line listed over the whole file resolves to itself.
    let all = locations_in_file(std::slice::from_ref(&module), &path, 1, 1000);
    let lines: Vec<u32> = all.iter().map(|l| l.0).collect();
    let resolved = resolve_in_files(std::slice::from_ref(&module), &path, &lines);
    for (line, found) in lines.iter().zip(resolved) {
        let found = found.expect("listed lines have code");
        assert!(!found.addresses.is_empty());
        // A function's first line lands past its prologue, on the body's line.
        let first_line = found
            .addresses
            .iter()
            .all(|&(_, a)| step_in_file(&module, a).function.is_some_and(|f| f.0 < a));
        assert!(
            found.line == *line || first_line,
            "line {line} -> {}",
            found.line
        );
    }
}

#[test]
fn step_info_knows_lines_functions_and_prologues() {
    let fixture = Fixture::COptimizedNot;
    let module = fixture.module();
    let functions = functions_named(&module, "level_two");
    let [function] = functions.as_slice() else {
        panic!("{} level_two", functions.len());
    };
    let step = step_in_file(&module, function.address);
    assert!(step.statement_start && step.has_lines);
    assert_eq!(step.after_prologue, Some(function.address));
    let (low, high) = step.function.expect("in a function");
    assert!(low < function.address && function.address < high);
    assert_eq!(step.frames[0].function.as_deref(), Some("level_two"));
    let (start, end) = step.row.expect("a row");
    assert_eq!(start, function.address);
    // Inside the row: not a statement start, the same row.
    let inside = step_in_file(&module, start + 1);
    if end > start + 1 {
        assert!(!inside.statement_start);
        assert_eq!(inside.row, Some((start, end)));
    }
    // At the function's entry: the prologue is still ahead.
    let entry = step_in_file(&module, low);
    assert_eq!(entry.after_prologue, Some(function.address));
    assert_eq!(entry.function, Some((low, high)));
}

#[test]
fn names_match_by_their_last_components() {
    let q = |s: &str| name_components(s);
    assert_eq!(q("shapes::run<int>(int)"), ["shapes", "run<int>"]);
    assert_eq!(
        q("std::vector<std::pair<int, int>>::push_back(int const&)"),
        ["std", "vector<std::pair<int,int>>", "push_back"]
    );
    assert!(!name_matches(&q("run<double>"), "shapes::run<int>(int)"));
    assert!(name_matches(
        &q("vector::push_back"),
        "std::vector<int>::push_back(int)"
    ));
    assert_eq!(q("main.(*T).M"), ["main.(*T).M"]);
    assert!(name_matches(&q("run"), "shapes::run<int>(int)"));
    assert!(name_matches(&q("shapes::run"), "shapes::run<int>(int)"));
    assert!(name_matches(
        &q("shapes::run<int>"),
        "shapes::run<int>(int)"
    ));
    assert!(!name_matches(&q("hapes::run"), "shapes::run<int>(int)"));
    assert!(name_matches(&q("stack::level_two"), "stack::level_two"));
    assert!(!name_matches(&q("level"), "stack::level_two"));
}

// --- Through the symbols thread, on this very process -------------------------------

#[inline(never)]
pub(crate) fn resolution_target(x: u64) -> u64 {
    let y = std::hint::black_box(x).wrapping_mul(7); // resolution_target's line
    y.wrapping_add(1)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn this_process_resolves_through_the_symbols_thread() {
    let service = crate::symbols::SymbolService::spawn().unwrap();
    service.attach(std::process::id() as crate::procfs::Pid, None);
    let target = resolution_target as *const () as u64;
    assert_eq!(resolution_target(1), 8);
    // The first request pays for every module's line index (this test binary's, libc's
    // and the loader's, read ahead since the attach): printed, not asserted.
    let started = std::time::Instant::now();
    let stack_rs = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/symbols/stack.rs");
    let first = block_on(service.resolve_lines(
        stack_rs.to_string_lossy().into(),
        (1..=100).map(|i| i * 6).collect(),
    ));
    eprintln!(
        "this process, 100 lines of stack.rs, first request: {} resolved in {:?}",
        first.iter().filter(|l| l.found.is_ok()).count(),
        started.elapsed()
    );
    let started = std::time::Instant::now();
    let found = block_on(service.resolve_function("level_that_does_not_exist".into()));
    eprintln!(
        "this process, first function search: {:?} in {:?}",
        found.err(),
        started.elapsed()
    );
    for name in [
        "resolution_target",
        "lines::tests::resolution_target",
        "latch::symbols::lines::tests::resolution_target",
    ] {
        let found = block_on(service.resolve_function(name.into())).expect(name);
        let [location] = found.as_slice() else {
            panic!("{name}: {found:#x?}");
        };
        assert!(
            location.name.ends_with("lines::tests::resolution_target"),
            "{location:?}"
        );
        let step = block_on(service.step_info(location.address)).expect("in a module");
        assert_eq!(step.function.map(|f| f.0), Some(target), "{name}");
        assert_eq!(step.after_prologue, Some(location.address));
        assert!(location.address > target, "past the prologue");
    }
    assert!(block_on(service.resolve_function("no_such_function_anywhere".into())).is_err());

    // This file's line inside the function: its address lies in the function.
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(file!().trim_start_matches("adapter/"));
    let line = marker_line(&source, "// resolution_target's line");
    let found = block_on(service.resolve_lines(source.to_string_lossy().into(), vec![line]));
    let resolved = found[0].found.as_ref().expect("resolves");
    assert_eq!(resolved.line, line);
    for &address in &resolved.addresses {
        let step = block_on(service.step_info(address)).expect("in a module");
        assert_eq!(step.function.map(|f| f.0), Some(target));
        assert!(step.statement_start && step.has_lines);
    }
    let locations =
        block_on(service.breakpoint_locations(source.to_string_lossy().into(), line, None));
    assert!(locations.iter().all(|l| l.0 == line) && !locations.is_empty());

    // The dynamic loader's hook is in its code.
    let hook = block_on(service.loader_breakpoint()).expect("a dynamically linked test");
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let in_loader = crate::symbols::maps::parse_maps(&maps)
        .iter()
        .any(|m| m.executable && m.path.contains("/ld-linux") && (m.start..m.end).contains(&hook));
    assert!(in_loader, "{hook:#x} is not in ld.so's code");
    // r_brk is the address of _dl_debug_state: a function's first instruction.
    let step = block_on(service.step_info(hook)).expect("in ld.so");
    assert_eq!(step.function.map(|f| f.0), Some(hook));
}

/// 100 lines of one file of latch's own debug build, from a cold start: the time is
/// printed (`--nocapture`), never asserted.
#[test]
fn resolving_lines_in_a_large_binary_is_quick() {
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/latch");
    if !binary.exists() {
        crate::test_skip::skip_or_fail("target/debug/latch is not built (cargo build)");
        return;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/symbols/stack.rs");
    let lines: Vec<u32> = (1..=100).map(|i| i * 6).collect();
    let started = std::time::Instant::now();
    let module = Rc::new(ModuleInfo::parse(
        map_file(&binary).unwrap(),
        Some(&binary),
        Path::new("/"),
    ));
    let parsed = started.elapsed();
    let dwarf_ready = module.dwarf().is_some();
    let read = started.elapsed();
    let indexed = module.line_tables().is_some();
    let headers = started.elapsed() - read;
    let found = resolve_in_files(
        std::slice::from_ref(&module),
        &source.to_string_lossy(),
        &lines,
    );
    let total = started.elapsed();
    let resolved = found.iter().filter(|f| f.is_ok()).count();
    let again = std::time::Instant::now();
    let _ = resolve_in_files(
        std::slice::from_ref(&module),
        &source.to_string_lossy(),
        &lines,
    );
    eprintln!(
        "100 lines of stack.rs in target/debug/latch: {resolved} resolved; cold {total:?} \
         (ELF {parsed:?}, DWARF {:?}, headers {headers:?}, lines {:?}); warm {:?}",
        read - parsed,
        total - read,
        again.elapsed()
    );
    let started = std::time::Instant::now();
    let functions = functions_named(&module, "Stacker::refresh");
    eprintln!(
        "break Stacker::refresh in target/debug/latch: {} found in {:?}",
        functions.len(),
        started.elapsed()
    );
    let started = std::time::Instant::now();
    let again = functions_named(&module, "symbols::stack::Stacker::unwind");
    eprintln!(
        "then break symbols::stack::Stacker::unwind: {} found in {:?}",
        again.len(),
        started.elapsed()
    );
    assert_eq!(again.len(), 1);
    let names: Vec<&String> = functions.iter().map(|f| &f.name).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        dwarf_ready && indexed && resolved > 50,
        "{resolved} resolved"
    );
}

/// tests/fixtures/stacks/go built by `go build` with `flags`; `None` without Go.
fn go_fixture(label: &str, flags: &[&str]) -> Option<PathBuf> {
    let source = fixtures().join("stacks/go");
    let out = work_dir().join(format!("go-{label}"));
    let output = std::process::Command::new("go")
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(".")
        .current_dir(&source)
        .output();
    match output {
        Ok(output) if output.status.success() => Some(out),
        Ok(output) => panic!("go build: {}", String::from_utf8_lossy(&output.stderr)),
        Err(_) => {
            crate::test_skip::skip_or_fail("go is not installed: Go binaries are not checked");
            None
        }
    }
}

fn module_of(path: &Path) -> Rc<ModuleInfo> {
    Rc::new(ModuleInfo::parse(
        map_file(path).unwrap(),
        Some(path),
        Path::new("/"),
    ))
}

/// A Go binary's DWARF: every line of its main.go and its functions as gdb sets
/// them; without DWARF (`-ldflags=-w`), its functions by Go's own table, at their
/// entries.
#[test]
fn go_lines_and_functions_agree_with_gdb() {
    if !gdb_or_skip() {
        return;
    }
    let Some(binary) = go_fixture("dwarf", &[]) else {
        return;
    };
    let source = fixtures().join("stacks/go/main.go");
    let path = source.to_string_lossy().into_owned();
    let module = module_of(&binary);
    let lines: Vec<u32> = (1..=source_lines(&source)).collect();
    let names = [
        "main.levelTwo",
        "main.levelOne",
        "main.mainWait",
        "main.main",
    ];
    let queries: Vec<String> = lines
        .iter()
        .map(|l| format!("{path}:{l}"))
        .chain(names.iter().map(|n| n.to_string()))
        .collect();
    let expected = gdb_breaks(&binary, &queries).expect("gdb runs");
    let ours = resolve_in_files(std::slice::from_ref(&module), &path, &lines);
    let mut compared = 0;
    for ((line, expected), ours) in lines.iter().zip(&expected).zip(ours) {
        let want = expected.as_ref().map(|e| e.0.clone());
        let got = ours
            .ok()
            .map(|f| f.addresses.iter().map(|a| a.1).collect::<Vec<_>>());
        assert_eq!(got, want, "main.go:{line}");
        compared += usize::from(got.is_some());
    }
    assert!(compared > 10, "{compared} lines have code");
    let stripped = module_of(&go_fixture("w", &["-ldflags=-w"]).unwrap());
    // Without DWARF, lines come from Go's pc-line table, which has no is_stmt flags and
    // no prologue_end: most lines resolve to the very addresses gdb finds with DWARF
    // (114 of 119 here), every line with code there has code here.
    let bare = resolve_in_files(std::slice::from_ref(&stripped), &path, &lines);
    let mut same = 0;
    for ((line, expected), bare) in lines.iter().zip(&expected).zip(bare) {
        let want = expected.as_ref().map(|e| e.0.clone());
        let got = bare
            .ok()
            .map(|f| f.addresses.iter().map(|a| a.1).collect::<Vec<_>>());
        assert_eq!(
            got.is_some(),
            want.is_some(),
            "main.go:{line}: {got:x?}, gdb {want:x?}"
        );
        if got != want {
            eprintln!("main.go:{line}: Go's table {got:x?}, gdb with DWARF {want:x?}");
        }
        same += usize::from(got == want);
    }
    eprintln!("{same} of {} lines the same without DWARF", lines.len());
    assert!(same * 10 >= lines.len() * 9, "{same} of {}", lines.len());
    for (name, expected) in names.iter().zip(&expected[lines.len()..]) {
        let got: Vec<u64> = functions_named(&module, name)
            .iter()
            .map(|f| f.address)
            .collect();
        assert_eq!(Some(&got), expected.as_ref().map(|e| &e.0), "break {name}");
        // The same code without DWARF: found at the function's entry.
        let entry = step_in_file(&module, got[0])
            .function
            .expect("in a function")
            .0;
        let bare: Vec<u64> = functions_named(&stripped, name)
            .iter()
            .map(|f| f.address)
            .collect();
        assert_eq!(bare, [entry], "{name} without DWARF");
        // Stepping there without DWARF: Go's table gives the line's run and the function.
        let step = step_in_file(&stripped, entry);
        assert!(step.has_lines && step.statement_start, "{name}");
        assert_eq!(step.row.map(|r| r.0), Some(entry));
        assert_eq!(step.function.map(|f| f.0), Some(entry));
    }
}
