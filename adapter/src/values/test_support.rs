//! What tests of values and expressions share: C fixtures built with gcc at test time,
//! their memory as the ELF file lays it out, gdb's answers, and stops gdb saw in a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;

use object::{Object, ObjectSection, ObjectSymbol};

use super::*;
use crate::symbols::module::map_file;

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/values")
        .join(name)
}

pub(crate) fn has_tool(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// gcc (and gdb when `oracle`) are there; otherwise the test fails or, when skipping
/// is allowed outside CI, says so loudly and returns false.
pub(crate) fn tools_or_skip(oracle: bool) -> bool {
    for tool in ["gcc"].into_iter().chain(oracle.then_some("gdb")) {
        if !has_tool(tool) {
            crate::test_skip::skip_or_fail(&format!(
                "{tool} is not installed: the values tests build C programs and ask gdb"
            ));
            return false;
        }
    }
    true
}

/// `source` built with `flags`, once per test process. Non-PIE: the file's addresses
/// are the process's, so gdb's runs and the file agree without a load bias.
pub(crate) fn built(source: &str, flags: &[&str]) -> &'static Path {
    built_from(&[source], flags)
}

/// One program of the fixtures `sources` (the first names it), as [`built`].
pub(crate) fn built_from(sources: &[&str], flags: &[&str]) -> &'static Path {
    static BUILT: OnceLock<std::sync::Mutex<BTreeMap<String, &'static Path>>> = OnceLock::new();
    let key = format!("{} {}", sources.join(" "), flags.join(" "));
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    built.entry(key).or_insert_with(|| {
        let dir = std::env::temp_dir().join(format!("latch-values-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let name = format!(
            "{}{}",
            sources[0].trim_end_matches(".c"),
            flags.join("").replace(['-', ' '], "_")
        );
        let out = dir.join(name);
        let output = std::process::Command::new("gcc")
            .args(["-g", "-no-pie", "-fno-pie"])
            .args(flags)
            .arg("-o")
            .arg(&out)
            .args(sources.iter().map(|source| fixture(source)))
            .output()
            .expect("gcc runs");
        assert!(
            output.status.success(),
            "gcc failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Box::leak(out.into_boxed_path())
    })
}

/// A built program's file, its DWARF and what the tests read through.
pub(crate) struct Program {
    pub(crate) file: object::File<'static>,
    pub(crate) dwarf: Rc<gimli::Dwarf<crate::symbols::module::Reader>>,
}

impl Program {
    pub(crate) fn load(path: &Path) -> Program {
        let data = map_file(path).unwrap();
        let file = object::File::parse(data).unwrap();
        let dwarf = Rc::new(load_dwarf(&file));
        Program { file, dwarf }
    }

    pub(crate) fn units(&self) -> Vec<CompileUnit> {
        CompileUnit::all(self.dwarf.clone(), ModuleLayout::default())
    }

    /// The lowest address of a statement of `line` in the fixture's unit.
    pub(crate) fn line_address(&self, line: u64) -> Option<u64> {
        let mut best: Option<u64> = None;
        for unit in self.units() {
            let Some(program) = unit.unit.line_program.clone() else {
                continue;
            };
            let mut rows = program.rows();
            while let Ok(Some((_, row))) = rows.next_row() {
                if row.is_stmt() && row.line().map(|l| l.get()) == Some(line) {
                    best = Some(best.map_or(row.address(), |b| b.min(row.address())));
                }
            }
        }
        best
    }

    pub(crate) fn unit_at(&self, pc: u64) -> CompileUnit {
        CompileUnit::containing(self.dwarf.clone(), pc, ModuleLayout::default()).unwrap()
    }
}

/// Memory as the file lays it out: initialized data from the sections, `.bss` zeros.
pub(crate) struct FileMemory<'a>(pub(crate) &'a object::File<'static>);

impl Memory for FileMemory<'_> {
    fn read(&self, address: u64, into: &mut [u8]) -> Result<(), ReadError> {
        let error = ReadError {
            address,
            len: into.len(),
        };
        let end = address
            .checked_add(into.len() as u64)
            .ok_or(error.clone())?;
        for section in self.0.sections() {
            let start = section.address();
            if start == 0 || address < start || end > start + section.size() {
                continue;
            }
            let offset = (address - start) as usize;
            if section.kind() == object::SectionKind::UninitializedData {
                into.fill(0);
                return Ok(());
            }
            let data = section.data().map_err(|_| error.clone())?;
            let bytes = data.get(offset..offset + into.len()).ok_or(error.clone())?;
            into.copy_from_slice(bytes);
            return Ok(());
        }
        Err(error)
    }
}

/// A stack saved from a run, in front of the file's memory.
pub(crate) struct StackMemory<'a> {
    pub(crate) start: u64,
    pub(crate) bytes: Vec<u8>,
    pub(crate) below: FileMemory<'a>,
}

impl Memory for StackMemory<'_> {
    fn read(&self, address: u64, into: &mut [u8]) -> Result<(), ReadError> {
        if let Some(offset) = address.checked_sub(self.start) {
            let offset = offset as usize;
            if let Some(bytes) = self.bytes.get(offset..offset + into.len()) {
                into.copy_from_slice(bytes);
                return Ok(());
            }
        }
        self.below.read(address, into)
    }
}

/// Nothing readable anywhere.
pub(crate) struct NoMemory;

impl Memory for NoMemory {
    fn read(&self, address: u64, into: &mut [u8]) -> Result<(), ReadError> {
        Err(ReadError {
            address,
            len: into.len(),
        })
    }
}

/// The ELF symbol table, as gdb names addresses: `<g_array+8>`.
pub(crate) struct FileSymbols(Vec<(u64, u64, String)>);

impl FileSymbols {
    pub(crate) fn of(file: &object::File<'static>) -> FileSymbols {
        FileSymbols(
            file.symbols()
                .filter(|s| {
                    matches!(
                        s.kind(),
                        object::SymbolKind::Data | object::SymbolKind::Text
                    )
                })
                .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
                .filter(|(address, _, name)| *address != 0 && !name.is_empty())
                .collect(),
        )
    }
}

impl Symbolizer for FileSymbols {
    fn symbol_for(&self, address: u64) -> Option<(String, u64)> {
        self.0
            .iter()
            .find(|(start, size, _)| {
                address == *start || (*start < address && address < start + size)
            })
            .map(|(start, _, name)| (name.clone(), address - start))
    }
}

/// Runs gdb on `binary` with `commands`; its standard output.
pub(crate) fn gdb(binary: &Path, commands: &[String]) -> String {
    let mut args = vec![
        "-nx".to_string(),
        "-batch".into(),
        "-ex".into(),
        "set width 0".into(),
        "-ex".into(),
        "set print null-stop on".into(),
    ];
    for command in commands {
        args.push("-ex".into());
        args.push(command.clone());
    }
    let output = std::process::Command::new("gdb")
        .args(&args)
        .arg(binary)
        .output()
        .expect("gdb runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The line of the fixture's source that carries `marker` in a comment.
pub(crate) fn marker_line(source: &str, marker: &str) -> u64 {
    let text = std::fs::read_to_string(fixture(source)).unwrap();
    let needle = format!("/* {marker} */");
    text.lines()
        .position(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no {needle} in {source}")) as u64
        + 1
}

/// What gdb saw at a breakpoint in a run of the program: the registers, the CFA, the
/// stack around the stack pointer, and its `info locals` and `info args`.
pub(crate) struct GdbStop {
    pub(crate) registers: RegisterSet,
    pub(crate) pc: u64,
    pub(crate) stack: (u64, Vec<u8>),
    pub(crate) locals: Vec<(String, String)>,
    pub(crate) arguments: Vec<(String, String)>,
    /// The caller's frame (gdb's frame 1): its pc (the return address) and its
    /// registers as gdb shows them, with its CFA; `None` when gdb showed no caller.
    pub(crate) caller: Option<(u64, RegisterSet)>,
}

/// What a call preserves on x86-64 (System V), by DWARF number: rbx, rbp, rsp, r12-r15,
/// rip. gdb's frame 1 shows the other registers too, carried over from frame 0 (which
/// the call may have changed); a CFI unwinder like latch's knows only these there.
pub(crate) const PRESERVED: &[u16] = &[3, 6, 7, 12, 13, 14, 15, 16];

impl RegisterSet {
    /// Only the registers a call preserves.
    pub(crate) fn preserved(&self) -> RegisterSet {
        let mut kept = self.clone();
        kept.registers
            .retain(|number, _| PRESERVED.contains(number));
        kept
    }
}

/// x86-64's DWARF register numbers, by gdb's names.
pub(crate) const DWARF_REGISTERS: &[(&str, u16)] = &[
    ("rax", 0),
    ("rdx", 1),
    ("rcx", 2),
    ("rbx", 3),
    ("rsi", 4),
    ("rdi", 5),
    ("rbp", 6),
    ("rsp", 7),
    ("r8", 8),
    ("r9", 9),
    ("r10", 10),
    ("r11", 11),
    ("r12", 12),
    ("r13", 13),
    ("r14", 14),
    ("r15", 15),
    ("rip", 16),
];

/// Stops `binary` at `line` of locals.c under gdb; `None` when gdb places no
/// breakpoint there (the optimizer removed the line).
pub(crate) fn gdb_stop(binary: &Path, line: u64) -> Option<GdbStop> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dump = std::env::temp_dir().join(format!(
        "latch-values-{}-stack-{call}.bin",
        std::process::id()
    ));
    let below = 0x1000u64;
    let names: Vec<&str> = DWARF_REGISTERS.iter().map(|(n, _)| *n).collect();
    let commands = vec![
        format!("break locals.c:{line}"),
        "run".into(),
        "info frame".into(),
        format!("info registers {} fs_base", names.join(" ")),
        "echo @@LOCALS\\n".into(),
        "info locals".into(),
        "echo @@ARGS\\n".into(),
        "info args".into(),
        "echo @@END\\n".into(),
        format!(
            "dump binary memory {} $sp-{below} $sp+0x400",
            dump.display()
        ),
        "up".into(),
        "echo @@CALLER\n".into(),
        "info frame".into(),
        format!("info registers {}", names.join(" ")),
        "echo @@DONE\n".into(),
        "kill".into(),
    ];
    let output = gdb(binary, &commands);
    if !output.contains("\nBreakpoint 1, ") {
        return None;
    }
    let mut registers = RegisterSet::default();
    let mut locals = Vec::new();
    let mut arguments = Vec::new();
    let mut section = "";
    let mut caller = RegisterSet::default();
    for text in output.lines() {
        if let Some(cfa) = text
            .strip_prefix("Stack level 0, frame at ")
            .and_then(|rest| rest.strip_suffix(':'))
        {
            registers.cfa = u64::from_str_radix(cfa.trim_start_matches("0x"), 16).ok();
        }
        if let Some(cfa) = text
            .strip_prefix("Stack level 1, frame at ")
            .and_then(|rest| rest.strip_suffix(':'))
        {
            caller.cfa = u64::from_str_radix(cfa.trim_start_matches("0x"), 16).ok();
        }
        match text {
            "@@LOCALS" | "@@ARGS" | "@@END" | "@@CALLER" | "@@DONE" => {
                section = text;
                continue;
            }
            _ => {}
        }
        let variable = || {
            let (name, value) = text.split_once(" = ")?;
            Some((name.to_string(), value.to_string()))
        };
        match section {
            "@@LOCALS" => locals.extend(variable()),
            "@@ARGS" => arguments.extend(variable()),
            "" | "@@CALLER" => {
                let mut fields = text.split_whitespace();
                let (Some(name), Some(hex)) = (fields.next(), fields.next()) else {
                    continue;
                };
                let Some(value) = hex
                    .strip_prefix("0x")
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                else {
                    continue;
                };
                let into = if section.is_empty() {
                    &mut registers
                } else {
                    &mut caller
                };
                if name == "fs_base" {
                    into.thread_pointer = Some(value);
                } else if let Some((_, number)) = DWARF_REGISTERS.iter().find(|(n, _)| *n == name) {
                    into.registers.insert(*number, value);
                }
            }
            _ => {}
        }
    }
    let bytes = std::fs::read(&dump).expect("gdb dumped the stack");
    let _ = std::fs::remove_file(&dump);
    let pc = registers.registers[&16];
    let sp = registers.registers[&7];
    let caller = caller.registers.get(&16).map(|pc| (*pc, caller.clone()));
    Some(GdbStop {
        pc,
        stack: (sp - below, bytes),
        registers,
        locals,
        arguments,
        caller,
    })
}
