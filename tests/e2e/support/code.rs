//! The target's code as the breakpoint tests see it: its memory (through
//! `/proc/PID/mem`), the bytes of the file mapped at an address, the address of a
//! function from the file's own symbol table (`nm`, an oracle latch does not share),
//! and the breakpoints fixture (tests/fixtures/breakpoints), built at test time.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::fixtures::{out_dir, source_dir};
use super::target::Target;

/// Reads `len` bytes of `pid`'s memory at `address` (the test process is the target's
/// parent, and the fixtures allow any tracer: /proc/PID/mem is readable, traced or not).
pub fn read_memory(pid: i32, address: u64, len: usize) -> Vec<u8> {
    let file = std::fs::File::open(format!("/proc/{pid}/mem"))
        .unwrap_or_else(|e| panic!("cannot open /proc/{pid}/mem: {e}"));
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, address)
        .unwrap_or_else(|e| panic!("cannot read {len} bytes at {address:#x} of {pid}: {e}"));
    bytes
}

pub fn read_u64(pid: i32, address: u64) -> u64 {
    u64::from_le_bytes(read_memory(pid, address, 8).try_into().unwrap())
}

/// One line of /proc/PID/maps.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub path: String,
}

pub fn mappings(pid: i32) -> Vec<Mapping> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/maps: {e}"));
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next()?.split_once('-')?;
            let perms = fields.next()?.to_string();
            let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
            let _dev = fields.next()?;
            let _inode = fields.next()?;
            let path = fields.collect::<Vec<_>>().join(" ");
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                perms,
                offset,
                path,
            })
        })
        .collect()
}

/// The bytes of the file mapped at `address` in `pid` (what the program's code is
/// without any debugger's `int3`), and the file's path.
pub fn file_bytes_at(pid: i32, address: u64, len: usize) -> (PathBuf, Vec<u8>) {
    let all = mappings(pid);
    let mapping = all
        .iter()
        .find(|m| m.start <= address && address < m.end)
        .unwrap_or_else(|| panic!("{address:#x} is not mapped in {pid}: {all:#?}"));
    assert!(
        mapping.path.starts_with('/'),
        "{address:#x} of {pid} is not file-backed: {mapping:?}"
    );
    let path = PathBuf::from(&mapping.path);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, address - mapping.start + mapping.offset)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (path, bytes)
}

/// The code at every address equals its file's bytes: no `int3` (or anything else) was
/// left behind.
pub fn assert_code_intact(pid: i32, addresses: &[u64]) {
    const LEN: usize = 16;
    for &address in addresses {
        let memory = read_memory(pid, address, LEN);
        let (path, file) = file_bytes_at(pid, address, LEN);
        assert_eq!(
            memory,
            file,
            "the code of {pid} at {address:#x} differs from {} (an int3 left behind?)",
            path.display()
        );
    }
}

/// The address of the load of `exe` in `pid` whose file offset is 0 (the base a
/// position-independent executable's symbol values are relative to).
pub fn load_base(pid: i32, exe: &Path) -> u64 {
    let exe = std::fs::canonicalize(exe).unwrap();
    let exe = exe.to_string_lossy();
    let all = mappings(pid);
    all.iter()
        .find(|m| m.path == exe && m.offset == 0)
        .unwrap_or_else(|| panic!("{exe} is not mapped at offset 0 in {pid}: {all:#?}"))
        .start
}

/// The value of symbol `name` in `exe`'s symbol table, from binutils' `nm`.
pub fn nm_value(exe: &Path, name: &str) -> u64 {
    let out = Command::new("nm")
        .arg(exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm: {e}"));
    assert!(out.status.success(), "nm {} failed", exe.display());
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let value = fields.next()?;
            let _kind = fields.next()?;
            (fields.next()? == name).then(|| u64::from_str_radix(value, 16).ok())?
        })
        .unwrap_or_else(|| panic!("no symbol {name} in {}", exe.display()))
}

/// The address of function `name` in the running `pid`, from the file's symbol table
/// and the load base in /proc.
pub fn function_address(pid: i32, exe: &Path, name: &str) -> u64 {
    load_base(pid, exe) + nm_value(exe, name)
}

/// The addresses of the instructions of function `name` of `exe`, from `objdump -d`,
/// relative to the file (add the load base).
pub fn instruction_offsets(exe: &Path, name: &str) -> Vec<u64> {
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .arg(format!("--disassemble={name}"))
        .arg(exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run objdump: {e}"));
    assert!(out.status.success(), "objdump {} failed", exe.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|line| !line.ends_with(&format!("<{name}>:")))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| u64::from_str_radix(line.trim().split(':').next()?.trim(), 16).ok())
        .collect()
}

/// The file offsets of the `call` instructions in function `name` of `exe` that call
/// `callee`, from `objdump -d`.
pub fn calls_to(exe: &Path, name: &str, callee: &str) -> Vec<u64> {
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .arg(format!("--disassemble={name}"))
        .arg(exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run objdump: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| line.contains("call") && line.ends_with(&format!("<{callee}>")))
        .filter_map(|line| u64::from_str_radix(line.trim().split(':').next()?.trim(), 16).ok())
        .collect()
}

/// The breakpoints fixture (see its source for what it does), built once per run.
pub fn breakpoints_fixture() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dest = out_dir().join("breakpoints");
            let tmp = out_dir().join(format!("breakpoints.tmp{}", std::process::id()));
            let result = Command::new("cc")
                .args(["-O1", "-g", "-pthread", "-Wall", "-o"])
                .arg(&tmp)
                .arg(source_dir().join("breakpoints/breakpoints.c"))
                .output()
                .map_err(|e| format!("cannot run cc: {e}"))?;
            if !result.status.success() {
                return Err(format!(
                    "cc failed for breakpoints.c: {}",
                    String::from_utf8_lossy(&result.stderr)
                ));
            }
            std::fs::rename(&tmp, &dest).map_err(|e| e.to_string())?;
            Ok(dest)
        })
        .clone()
        .unwrap_or_else(|e| panic!("building the breakpoints fixture failed: {e}"))
}

/// A running breakpoints fixture and the addresses it printed.
pub struct BpTarget {
    pub target: Target,
    pub exe: PathBuf,
    pub symbols: BTreeMap<String, u64>,
    pub workers: usize,
}

/// Workers' slots in the fixture: (tid, calls of tick).
pub const SLOT_SIZE: usize = 16;

impl BpTarget {
    /// `breakpoints WORKERS [extra]`, started and ready.
    pub fn start(workers: usize, extra: &[&str]) -> BpTarget {
        let exe = breakpoints_fixture();
        let mut cmd = Command::new(&exe);
        cmd.arg(workers.to_string()).args(extra);
        let mut target = Target::start_cmd(cmd);
        let line = target.wait_line("symbols ", Duration::from_secs(10));
        let symbols = line
            .split_whitespace()
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                let value = u64::from_str_radix(value.strip_prefix("0x")?, 16).ok()?;
                Some((name.to_string(), value))
            })
            .collect();
        BpTarget {
            target,
            exe,
            symbols,
            workers,
        }
    }

    pub fn pid(&self) -> i32 {
        self.target.pid
    }

    /// The address of one of the fixture's functions or variables, as it printed it.
    pub fn address(&self, name: &str) -> u64 {
        *self
            .symbols
            .get(name)
            .unwrap_or_else(|| panic!("the fixture printed no address for {name}"))
    }

    /// Every worker's (tid, calls of tick), read from the target's memory.
    pub fn slots(&self) -> BTreeMap<i64, u64> {
        let bytes = read_memory(self.pid(), self.address("slots"), SLOT_SIZE * self.workers);
        bytes
            .chunks(SLOT_SIZE)
            .map(|slot| {
                let tid = i32::from_le_bytes(slot[..4].try_into().unwrap());
                let count = u64::from_le_bytes(slot[8..16].try_into().unwrap());
                (tid as i64, count)
            })
            .collect()
    }

    pub fn checksum(&self) -> u64 {
        read_u64(self.pid(), self.address("checksum"))
    }

    /// Sends `line` to the fixture and waits for the line it answers with (starting with
    /// `answer`); returns the rest of it.
    pub fn ask(&mut self, line: &str, answer: &str) -> String {
        self.target.send_line(line);
        self.target.wait_line(answer, Duration::from_secs(60))
    }

    /// "counts": (sum of the slots, checksum), as the fixture reads them.
    pub fn counts(&mut self) -> (u64, u64) {
        let rest = self.ask("counts", "counts ");
        let mut numbers = rest.split_whitespace().map(|n| n.parse::<u64>().unwrap());
        (numbers.next().unwrap(), numbers.next().unwrap())
    }
}
