//! A Go program's globals, read from its file: Go's linker puts every type in a unit
//! of its own and refers to it from the packages' units with `DW_FORM_ref_addr`, so
//! these read only if types are followed into other units.

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
    for unit in program.units() {
        let formatter = Formatter::new(&unit, &memory);
        for variable in unit.global_variables(&frame).unwrap() {
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
