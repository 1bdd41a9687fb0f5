//! Programs whose DIEs refer into other units with `DW_FORM_ref_addr`, read from their
//! files: Go's (its linker puts every type in a unit of its own) and gcc's LTO (its
//! final units stand in for the early ones through cross-unit abstract origins).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::location::Frame;
use super::test_support::*;
use super::*;

const SOURCE: &str = r#"package main

type point struct {
	X, Y int
}

var counter int64 = 42
var ratio float64 = 2.5
var origin = point{X: 3, Y: -4}
var where = &origin

func main() {
	// Used, so the linker keeps them.
	println(counter, ratio, origin.X, where)
}
"#;

/// The program built with Debian's `go` into a directory of the test process's own;
/// `None` (after saying why) without go.
fn built() -> Option<PathBuf> {
    let go_runs = std::process::Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !go_runs {
        crate::test_skip::skip_or_fail("go is not installed: the Go values test builds a program");
        return None;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("latch-values-go-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.go"), SOURCE).unwrap();
    std::fs::write(dir.join("go.mod"), "module values\n\ngo 1.19\n").unwrap();
    let binary = dir.join("values");
    let output = std::process::Command::new("go")
        // Unoptimized, as a program being debugged is built.
        .args(["build", "-gcflags=-N -l", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&dir)
        // The build cache the other Go tests share: a cold one rebuilds the runtime.
        .env("GOCACHE", manifest.join("../target/tmp/go/cache"))
        .env("GOPATH", dir.join("path"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(binary)
}

#[test]
fn go_globals_have_their_types_from_the_type_unit() {
    let Some(binary) = built() else {
        return;
    };
    let program = Program::load(&binary);
    let memory = FileMemory(&program.file);
    let registers = RegisterSet::default();
    let frame = Frame {
        pc: 0,
        registers: &registers,
        memory: &memory,
    };
    let mut found = BTreeMap::new();
    let units = program.units();
    for unit in &units {
        let formatter = Formatter::new(unit, &memory);
        let globals = unit.global_variables(&frame).unwrap();
        if globals.iter().any(|v| v.name == "main.counter") {
            // An expression in package main can name the type unit's types too.
            let point = unit.types.named("main.point").expect("main.point by name");
            assert_eq!(unit.types.name_of(Some(point)), "main.point");
            assert_eq!(unit.types.size_of(Some(point)), Some(16));
        }
        // An offset no unit holds is an unknown type saying so, not a panic.
        let nowhere = unit.types.get(TypeId(usize::MAX >> 2));
        assert!(
            matches!(&*nowhere, Type::Unknown { what } if what.contains("no compile unit")),
            "{nowhere:?}"
        );
        for variable in globals {
            if variable.name.starts_with("main.") {
                let text = formatter.summary(&variable.value);
                let type_name = formatter.type_name(&variable.value);
                found.insert(variable.name.clone(), (type_name, text));
            }
        }
    }
    let _ = std::fs::remove_dir_all(binary.parent().unwrap());
    let get = |name: &str| {
        found
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not among {found:?}"))
    };
    assert_eq!(get("main.counter"), ("int64".into(), "42".into()));
    assert_eq!(get("main.ratio"), ("float64".into(), "2.5".into()));
    assert_eq!(
        get("main.origin"),
        ("main.point".into(), "{X = 3, Y = -4}".into())
    );
    let (type_name, text) = get("main.where");
    assert_eq!(type_name, "*main.point");
    assert!(text.starts_with("0x"), "{text}");
}

const LTO_MAIN: &str = r#"struct pair { int a; long b; };
struct pair g_pair = { 7, -9 };
int g_count = 5;
int get(void);
int main(void) { struct pair local = g_pair; local.a += get(); return local.a + g_count; }
"#;

const LTO_OTHER: &str = r#"extern int g_count;
int get(void) { return g_count * 2; }
"#;

#[test]
fn lto_globals_take_name_and_type_from_their_early_unit() {
    if !tools_or_skip(false) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("latch-values-lto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.c"), LTO_MAIN).unwrap();
    std::fs::write(dir.join("b.c"), LTO_OTHER).unwrap();
    let binary = dir.join("lto");
    let output = std::process::Command::new("gcc")
        .args(["-g", "-O0", "-flto", "-no-pie", "-fno-pie", "-o"])
        .arg(&binary)
        .args(["a.c", "b.c"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "gcc -flto: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let program = Program::load(&binary);
    let memory = FileMemory(&program.file);
    let registers = RegisterSet::default();
    let frame = Frame {
        pc: 0,
        registers: &registers,
        memory: &memory,
    };
    // Only the final (ltrans) unit gives the globals a location; their names and types
    // are in a.c's early unit.
    let mut found = BTreeMap::new();
    for unit in program.units() {
        let formatter = Formatter::new(&unit, &memory);
        for variable in unit.global_variables(&frame).unwrap() {
            let text = formatter.summary(&variable.value);
            let type_name = formatter.type_name(&variable.value);
            found
                .entry(variable.name.clone())
                .or_insert_with(Vec::new)
                .push((type_name, text));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let read = |name: &str| {
        found
            .get(name)
            .and_then(|all| all.iter().find(|(_, text)| !text.starts_with('<')))
            .cloned()
            .unwrap_or_else(|| panic!("{name} not read among {found:?}"))
    };
    assert_eq!(
        read("g_pair"),
        ("struct pair".into(), "{a = 7, b = -9}".into())
    );
    assert_eq!(read("g_count"), ("int".into(), "5".into()));
}
