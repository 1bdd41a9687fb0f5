//! The stack-trace fixtures (tests/fixtures/stacks): one C program built
//! several ways (-O0, -O2 -fomit-frame-pointer, compressed debug sections,
//! debug info in a separate file, a source file deleted after the build), C++,
//! Rust and Go. Each is built once per test run into CARGO_TARGET_TMPDIR.
//! The expected line of a frame comes from the "line:NAME" marker comment in
//! the source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::fixtures::{go_build, out_dir, source_dir, which};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// stack.c, `-O0 -g`.
    O0,
    /// stack.c, `-O2 -g -fomit-frame-pointer`.
    O2,
    /// stack.c, `-gz=zlib` (SHF_COMPRESSED debug sections).
    Zlib,
    /// stack.c, `-gz=zlib-gnu` (the older `.zdebug_*` sections).
    ZlibGnu,
    /// stack.c at -O0, its debug sections compressed with zstd by objcopy
    /// (gcc 12 has no `-gz=zstd`).
    Zstd,
    /// stack.c at -O2 with -rdynamic, stripped, its debug info in
    /// `stack_split.debug` next to it (`.gnu_debuglink`).
    Split,
    /// The same stripped binary in another directory, without the debug file.
    SplitNoDebug,
    /// stack.c at -O0 compiled from a copy that is deleted after the build.
    Gone,
    /// stack.cpp, `g++ -O2 -g`.
    Cpp,
    /// stack.rs, `rustc -g -C opt-level=0`.
    Rust,
    /// stacks/go, `go build`.
    Go,
}

const ALL: [Stack; 11] = [
    Stack::O0,
    Stack::O2,
    Stack::Zlib,
    Stack::ZlibGnu,
    Stack::Zstd,
    Stack::Split,
    Stack::SplitNoDebug,
    Stack::Gone,
    Stack::Cpp,
    Stack::Rust,
    Stack::Go,
];

/// Why a fixture could not be built: a missing tool (fail, or skip with
/// LATCH_ALLOW_SKIP outside CI) or a real failure.
#[derive(Debug, Clone)]
enum BuildError {
    Missing(String),
    Failed(String),
}

impl Stack {
    fn index(self) -> usize {
        ALL.iter().position(|&s| s == self).unwrap()
    }

    /// The executable's file name (and so the main thread's comm).
    pub fn exe_name(self) -> &'static str {
        match self {
            Stack::O0 => "stack_O0",
            Stack::O2 => "stack_O2",
            Stack::Zlib => "stack_zlib",
            Stack::ZlibGnu => "stack_zlibgnu",
            Stack::Zstd => "stack_zstd",
            Stack::Split | Stack::SplitNoDebug => "stack_split",
            Stack::Gone => "stack_gone",
            Stack::Cpp => "stack_cpp",
            Stack::Rust => "stack_rs",
            Stack::Go => "gostack",
        }
    }

    /// The source file that holds the markers.
    pub fn marker_source(self) -> PathBuf {
        let dir = stacks_src();
        match self {
            Stack::Cpp => dir.join("stack.cpp"),
            Stack::Rust => dir.join("stack.rs"),
            Stack::Go => dir.join("go/main.go"),
            _ => dir.join("stack.c"),
        }
    }

    /// The path the debug info names for the known frames' source file (for
    /// `Gone`, a file that no longer exists).
    pub fn debug_source(self) -> PathBuf {
        match self {
            Stack::Gone => gone_source(),
            _ => self.marker_source(),
        }
    }

    /// True for the variants whose known frames have line information.
    pub fn has_lines(self) -> bool {
        self != Stack::SplitNoDebug
    }
}

/// tests/fixtures/stacks, canonical (so that the paths in the debug info have
/// no `..` in them).
pub fn stacks_src() -> PathBuf {
    source_dir()
        .join("stacks")
        .canonicalize()
        .expect("tests/fixtures/stacks")
}

fn stacks_out() -> PathBuf {
    let dir = out_dir().join("stacks");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gone_source() -> PathBuf {
    stacks_out().join("gone-src").join("stack.c")
}

/// The 1-based line of the unique "line:NAME" marker in `src`.
pub fn marker_line(src: &Path, name: &str) -> u32 {
    let text = std::fs::read_to_string(src)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
    let marker = format!("line:{name}");
    let hits: Vec<u32> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            l.match_indices(&marker).any(|(at, m)| {
                l[at + m.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c.is_whitespace() || c == '*')
            })
        })
        .map(|(i, _)| i as u32 + 1)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "marker {marker:?} must be on exactly one line of {}, found on {hits:?}",
        src.display()
    );
    hits[0]
}

fn run(cmd: &mut Command) -> Result<String, BuildError> {
    let out = cmd
        .output()
        .map_err(|e| BuildError::Failed(format!("cannot run {cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(BuildError::Failed(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn tool(name: &str, package: &str) -> Result<PathBuf, BuildError> {
    which(name).ok_or_else(|| {
        BuildError::Missing(format!(
            "{name} not found; install the Debian package {package}"
        ))
    })
}

/// Compiles C or C++ into `dest` (through a temporary name, then renamed).
fn compile(compiler: &Path, flags: &[&str], src: &Path, dest: &Path) -> Result<(), BuildError> {
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    let include = source_dir().canonicalize().unwrap();
    run(Command::new(compiler)
        .args(flags)
        .args(["-g", "-pthread", "-Wall", "-I"])
        .arg(&include)
        .arg("-o")
        .arg(&tmp)
        .arg(src))?;
    std::fs::rename(&tmp, dest).map_err(|e| BuildError::Failed(e.to_string()))
}

/// The sections of an ELF file as (name, flags) from `readelf -S -W`.
fn sections(file: &Path) -> Result<Vec<(String, String)>, BuildError> {
    let readelf = tool("readelf", "binutils")?;
    let text = run(Command::new(readelf).args(["-S", "-W"]).arg(file))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix('[')?;
            let (_, rest) = rest.split_once(']')?;
            let cols: Vec<&str> = rest.split_whitespace().collect();
            // Name Type Address Off Size ES [Flg] Lk Inf Al
            let flags = if cols.len() == 10 { cols[6] } else { "" };
            Some((cols.first()?.to_string(), flags.to_string()))
        })
        .collect())
}

fn fail(msg: String) -> BuildError {
    BuildError::Failed(msg)
}

fn build(s: Stack) -> Result<PathBuf, BuildError> {
    let out = stacks_out();
    let c_src = stacks_src().join("stack.c");
    let cc = || tool("cc", "build-essential");
    match s {
        Stack::O0 | Stack::O2 | Stack::Zlib | Stack::ZlibGnu => {
            let flags: &[&str] = match s {
                Stack::O0 => &["-O0"],
                Stack::O2 => &["-O2", "-fomit-frame-pointer"],
                Stack::Zlib => &["-O0", "-gz=zlib"],
                _ => &["-O0", "-gz=zlib-gnu"],
            };
            let dest = out.join(s.exe_name());
            compile(&cc()?, flags, &c_src, &dest)?;
            let secs = sections(&dest)?;
            let flags_of = |name: &str| secs.iter().find(|(n, _)| n == name).map(|(_, f)| f);
            match s {
                Stack::Zlib => match flags_of(".debug_info") {
                    Some(f) if f.contains('C') => {}
                    other => {
                        return Err(fail(format!(
                        "-gz=zlib: .debug_info is not SHF_COMPRESSED (flags {other:?}): {secs:?}"
                    )))
                    }
                },
                Stack::ZlibGnu => {
                    if flags_of(".zdebug_info").is_none() || flags_of(".debug_info").is_some() {
                        return Err(fail(format!(
                            "-gz=zlib-gnu: no .zdebug_info section: {secs:?}"
                        )));
                    }
                }
                _ => {
                    if flags_of(".debug_info").is_some_and(|f| f.contains('C')) {
                        return Err(fail(format!("{s:?}: unexpectedly compressed: {secs:?}")));
                    }
                }
            }
            Ok(dest)
        }
        Stack::Zstd => {
            let objcopy = tool("objcopy", "binutils")?;
            let readelf = tool("readelf", "binutils")?;
            let dest = out.join(s.exe_name());
            let plain = out.join(format!("{}.plain", s.exe_name()));
            compile(&cc()?, &["-O0"], &c_src, &plain)?;
            let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
            let packed = Command::new(&objcopy)
                .arg("--compress-debug-sections=zstd")
                .arg(&plain)
                .arg(&tmp)
                .output()
                .map_err(|e| fail(format!("cannot run objcopy: {e}")))?;
            if !packed.status.success() {
                return Err(BuildError::Missing(format!(
                    "objcopy cannot compress with zstd: {}",
                    String::from_utf8_lossy(&packed.stderr)
                )));
            }
            // readelf -t: the section name line, then the compression header.
            let text = run(Command::new(readelf).arg("-t").arg(&tmp))?;
            let lines: Vec<&str> = text.lines().collect();
            let at = lines
                .iter()
                .position(|l| l.split_whitespace().last() == Some(".debug_info"))
                .ok_or_else(|| fail(format!("no .debug_info in readelf -t:\n{text}")))?;
            if !lines[at..(at + 6).min(lines.len())]
                .iter()
                .any(|l| l.trim_start().starts_with("ZSTD"))
            {
                return Err(fail(format!(
                    ".debug_info is not zstd-compressed:\n{}",
                    lines[at..(at + 6).min(lines.len())].join("\n")
                )));
            }
            std::fs::rename(&tmp, &dest).map_err(|e| fail(e.to_string()))?;
            Ok(dest)
        }
        Stack::Split | Stack::SplitNoDebug => {
            let objcopy = tool("objcopy", "binutils")?;
            let strip = tool("strip", "binutils")?;
            let dir = out.join("split");
            let tmp = out.join(format!("split.tmp{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).unwrap();
            let exe = tmp.join(s.exe_name());
            compile(&cc()?, &["-O2", "-rdynamic"], &c_src, &exe)?;
            let debug_name = format!("{}.debug", s.exe_name());
            let in_tmp = |c: &Path| {
                let mut cmd = Command::new(c);
                cmd.current_dir(&tmp);
                cmd
            };
            run(in_tmp(&objcopy).args(["--only-keep-debug", s.exe_name(), &debug_name]))?;
            run(in_tmp(&strip).args(["--strip-debug", "--strip-unneeded", s.exe_name()]))?;
            run(in_tmp(&objcopy)
                .arg(format!("--add-gnu-debuglink={debug_name}"))
                .arg(s.exe_name()))?;
            let secs = sections(&exe)?;
            let names: Vec<&str> = secs.iter().map(|(n, _)| n.as_str()).collect();
            if names
                .iter()
                .any(|n| n.contains("debug_info") || *n == ".symtab")
                || !names.contains(&".gnu_debuglink")
                || !names.contains(&".dynsym")
            {
                return Err(fail(format!(
                    "the stripped binary is not as expected: {names:?}"
                )));
            }
            let dbg = sections(&tmp.join(&debug_name))?;
            if !dbg.iter().any(|(n, _)| n == ".debug_info") {
                return Err(fail(format!("{debug_name} has no .debug_info: {dbg:?}")));
            }
            // The copy without the debug file, in a directory of its own.
            let nodebug = out.join("nodebug");
            let nodebug_tmp = out.join(format!("nodebug.tmp{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&nodebug_tmp);
            std::fs::create_dir_all(&nodebug_tmp).unwrap();
            std::fs::copy(&exe, nodebug_tmp.join(s.exe_name())).unwrap();
            for (from, to) in [(&tmp, &dir), (&nodebug_tmp, &nodebug)] {
                let _ = std::fs::remove_dir_all(to);
                std::fs::rename(from, to).map_err(|e| fail(e.to_string()))?;
            }
            Ok(match s {
                Stack::Split => dir.join(s.exe_name()),
                _ => nodebug.join(s.exe_name()),
            })
        }
        Stack::Gone => {
            let copy = gone_source();
            let dir = copy.parent().unwrap().to_path_buf();
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(&c_src, &copy).unwrap();
            let dest = out.join(s.exe_name());
            let built = compile(&cc()?, &["-O0"], &copy, &dest);
            std::fs::remove_dir_all(&dir).unwrap();
            built?;
            assert!(!copy.exists());
            Ok(dest)
        }
        Stack::Cpp => {
            let dest = out.join(s.exe_name());
            let cxx = tool("g++", "g++")?;
            compile(&cxx, &["-O2"], &stacks_src().join("stack.cpp"), &dest)?;
            Ok(dest)
        }
        Stack::Rust => {
            let rustc = std::env::var_os("RUSTC")
                .map(PathBuf::from)
                .filter(|p| p.is_file())
                .or_else(|| which("rustc"))
                .ok_or_else(|| BuildError::Missing("rustc not found".into()))?;
            let dest = out.join(s.exe_name());
            let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
            run(Command::new(rustc)
                .args(["-g", "-C", "opt-level=0", "--crate-name", "stack_rs", "-o"])
                .arg(&tmp)
                .arg(stacks_src().join("stack.rs")))?;
            std::fs::rename(&tmp, &dest).map_err(|e| fail(e.to_string()))?;
            Ok(dest)
        }
        Stack::Go => {
            let dest = out.join(s.exe_name());
            go_build(&stacks_src().join("go"), &dest).map_err(|e| {
                if e.starts_with("no Go toolchain") {
                    BuildError::Missing(e)
                } else {
                    BuildError::Failed(e)
                }
            })?;
            Ok(dest)
        }
    }
}

/// Builds a stack fixture (once per run) and returns its path; None when a
/// tool it needs is missing (a failure saying so; see `skip_or_fail`).
pub fn stack_fixture(s: Stack) -> Option<PathBuf> {
    static BUILT: [OnceLock<Result<PathBuf, BuildError>>; ALL.len()] =
        [const { OnceLock::new() }; ALL.len()];
    // Split and SplitNoDebug come from one build.
    let key = if s == Stack::SplitNoDebug {
        Stack::Split
    } else {
        s
    };
    let built = BUILT[key.index()].get_or_init(|| build(key));
    match built {
        Ok(p) if s == Stack::SplitNoDebug => {
            let dir = p.parent().unwrap().parent().unwrap().join("nodebug");
            Some(dir.join(s.exe_name()))
        }
        Ok(p) => Some(p.clone()),
        Err(BuildError::Missing(why)) => {
            super::skip_or_fail(&format!("the {s:?} stack fixture cannot be built: {why}"));
            None
        }
        Err(BuildError::Failed(why)) => panic!("building the {s:?} stack fixture failed: {why}"),
    }
}
