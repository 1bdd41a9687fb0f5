//! Target programs, built once per test run into CARGO_TARGET_TMPDIR.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The comm of the churn fixture's short-lived threads.
pub const EPHEMERAL_COMM: &str = "ephemeral";
/// The comm of the churn fixture's creator threads.
pub const CREATOR_COMM: &str = "creator";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixture {
    /// `sleeping N`: N sleeping threads; N + 2 threads in all.
    Sleeping,
    /// `spinning N`: N spinning threads; N + 2 threads in all.
    Spinning,
    /// `churn N`: N creators of short-lived threads; N + 2 long-lived threads.
    Churn,
    /// `pthread_exit N`: the main thread has exited; N + 2 live threads.
    PthreadExit,
    /// `vfork`: a "vforker" thread blocked in vfork (uninterruptible) until the test
    /// writes "release"; it prints "vfork-done N" each time a vfork returns. 3 threads.
    Vfork,
    /// `signals`: catches SIGUSR1 ("caught SIGUSR1"); "exec" on stdin makes a thread
    /// exec the program again ("execd", then "ready" under the same pid);
    /// "thread-exit" runs a thread that ends ("exited TID"), "thread-stay" starts one
    /// that stays ("born TID"). 3 threads.
    Signals,
    /// The Go program: `gotarget BUSY SLEEPING`.
    Go,
}

impl Fixture {
    pub fn name(self) -> &'static str {
        match self {
            Fixture::Sleeping => "sleeping",
            Fixture::Spinning => "spinning",
            Fixture::Churn => "churn",
            Fixture::PthreadExit => "pthread_exit",
            Fixture::Vfork => "vfork",
            Fixture::Signals => "signals",
            Fixture::Go => "gotarget",
        }
    }
}

pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

pub fn tmp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

pub fn out_dir() -> PathBuf {
    let dir = tmp_dir().join("fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const C_FIXTURES: [Fixture; 6] = [
    Fixture::Sleeping,
    Fixture::Spinning,
    Fixture::Churn,
    Fixture::PthreadExit,
    Fixture::Vfork,
    Fixture::Signals,
];

fn build_c() -> Result<(), String> {
    let src = source_dir();
    let out = out_dir();
    for f in C_FIXTURES {
        let dest = out.join(f.name());
        let tmp = out.join(format!("{}.tmp{}", f.name(), std::process::id()));
        let result = Command::new("cc")
            .args(["-O1", "-g", "-pthread", "-Wall", "-o"])
            .arg(&tmp)
            .arg(src.join(format!("{}.c", f.name())))
            .output()
            .map_err(|e| format!("cannot run cc: {e}"))?;
        if !result.status.success() {
            return Err(format!(
                "cc failed for {}: {}",
                f.name(),
                String::from_utf8_lossy(&result.stderr)
            ));
        }
        std::fs::rename(&tmp, &dest).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Builds the C fixtures (once) and returns the path of one of them.
pub fn c_fixture(f: Fixture) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = BUILT.get_or_init(build_c) {
        panic!("building the C fixtures failed: {e}");
    }
    out_dir().join(f.name())
}

fn build_go() -> Result<PathBuf, String> {
    let dest = out_dir().join(Fixture::Go.name());
    go_build(&source_dir().join("go"), &dest)?;
    Ok(dest)
}

/// The Go toolchain, or the error that says it is missing.
pub fn go_tool() -> Result<PathBuf, String> {
    ["/usr/bin/go", "/usr/local/go/bin/go"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| which("go"))
        .ok_or_else(|| "no Go toolchain (go) found; install golang-go".to_string())
}

/// `go build -o DEST .` in the module at `dir`, offline, with a cache in the
/// test's temp dir.
pub fn go_build(dir: &Path, dest: &Path) -> Result<(), String> {
    go_build_with(&go_tool()?, dir, dest, &[], &[])
}

/// `go build FLAGS -o DEST .` with the toolchain `go` and extra environment (such as
/// `CGO_ENABLED`), offline, with the cache the other Go builds use.
pub fn go_build_with(
    go: &Path,
    dir: &Path,
    dest: &Path,
    flags: &[&str],
    env: &[(&str, &str)],
) -> Result<(), String> {
    let work = tmp_dir().join("go");
    let result = Command::new(go)
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(dest)
        .arg(".")
        .current_dir(dir)
        .env("GOCACHE", work.join("cache"))
        .env("GOPATH", work.join("path"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GO111MODULE", "on")
        .env("GOTOOLCHAIN", "local")
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", go.display()))?;
    if !result.status.success() {
        return Err(format!(
            "go build in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    Ok(())
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The Go fixture, or None when Go is missing and skipping is allowed (`skip_or_fail`).
pub fn go_fixture() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build_go) {
        Ok(p) => Some(p.clone()),
        Err(e) if e.starts_with("no Go toolchain") => {
            super::skip_or_fail(e);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// A copy of a C fixture under another file name (for waitFor by name). The
/// copy is made once per name and run.
pub fn renamed_fixture(f: Fixture, name: &str) -> PathBuf {
    let src = c_fixture(f);
    let dir = tmp_dir().join("renamed");
    std::fs::create_dir_all(&dir).unwrap();
    let dest = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp{}", std::process::id()));
    std::fs::copy(&src, &tmp).unwrap();
    std::fs::rename(&tmp, &dest).unwrap();
    dest
}

/// The cgo program (tests/fixtures/cgo), or None when Go is missing and skipping is allowed
/// (`skip_or_fail`).
pub fn cgo_fixture() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dest = out_dir().join("cgotarget");
        go_build(&source_dir().join("cgo"), &dest)?;
        Ok(dest)
    });
    match built {
        Ok(p) => Some(p.clone()),
        Err(e) if e.starts_with("no Go toolchain") => {
            super::skip_or_fail(e);
            None
        }
        Err(e) => panic!("{e}"),
    }
}
