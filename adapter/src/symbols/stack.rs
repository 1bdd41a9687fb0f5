//! Stacks of a stopped process: unwinding from each thread's registers, then naming
//! every frame, inlined calls as frames of their own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use object::Object;

use super::maps::{self, Module};
use super::memory::{self, ProcessMemory};
use super::module::{self, ModuleInfo};
use super::unwind::{self, Registers, Step, UnwindContext};
use crate::procfs::Pid;

/// Deeper stacks are cut here: a corrupt stack must end, and no editor shows more.
pub const MAX_FRAMES: usize = 1024;

/// One frame as a user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFrame {
    /// The frame's pc; for callers, the return address.
    pub pc: u64,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: u32,
    pub column: u32,
    /// The module's path as `/proc/PID/maps` names it.
    pub module: Option<String>,
    /// A call inlined into the next frame: it shares that frame's registers.
    pub inlined: bool,
    pub registers: Registers,
}

impl StackFrame {
    pub fn module_name(&self) -> Option<&str> {
        let path = self.module.as_deref()?.trim_end_matches(" (deleted)");
        Some(path.rsplit('/').next().unwrap_or(path))
    }

    /// The function's name, or where the pc is when nothing names it.
    pub fn display_name(&self) -> String {
        match (&self.function, self.module_name()) {
            (Some(name), _) => name.clone(),
            (None, Some(module)) => format!("{:#018x} ({module})", self.pc),
            (None, None) => format!("{:#018x}", self.pc),
        }
    }
}

/// Modules read once and shared by every stack that passes through them, keyed by the
/// path the process maps and the file's build-id.
#[derive(Default)]
pub struct Cache {
    modules: HashMap<(String, Option<Vec<u8>>), Rc<ModuleInfo>>,
}

pub struct Stacker {
    pid: Pid,
    cache: Cache,
    modules: Vec<Module>,
    infos: Vec<Option<Rc<ModuleInfo>>>,
    executable: Option<String>,
    program: Option<PathBuf>,
    memory: ProcessMemory,
    context: Box<UnwindContext>,
}

impl Stacker {
    pub fn new(pid: Pid) -> Stacker {
        let mut stacker = Stacker {
            pid,
            cache: Cache::default(),
            modules: Vec::new(),
            infos: Vec::new(),
            executable: None,
            program: None,
            memory: ProcessMemory::new(pid),
            context: Box::new(UnwindContext::new()),
        };
        stacker.refresh();
        stacker
    }

    /// Reads the executable from `program` instead of the file the process runs.
    pub fn set_program(&mut self, program: PathBuf) {
        self.program = Some(program);
        self.refresh();
    }

    /// The process ran: libraries may have come and gone, memory changed.
    pub fn refresh(&mut self) {
        let text = std::fs::read_to_string(format!("/proc/{}/maps", self.pid)).unwrap_or_default();
        let modules = maps::modules(&maps::parse_maps(&text));
        // A module still mapped where it was is the same file: keep what was read.
        self.infos = modules
            .iter()
            .map(|new| {
                let old = self
                    .modules
                    .iter()
                    .position(|old| old.path == new.path && old.code == new.code)?;
                self.infos.get(old).cloned().flatten()
            })
            .collect();
        self.modules = modules;
        self.executable = std::fs::read_link(format!("/proc/{}/exe", self.pid))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        self.memory.invalidate();
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Modules in the order worth reading ahead: the executable first.
    pub fn preparation_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.modules.len()).collect();
        order.sort_by_key(|&i| self.executable.as_deref() != Some(self.modules[i].path.as_str()));
        order
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The module's symbols, read on first use.
    pub fn module_info(&mut self, index: usize) -> Rc<ModuleInfo> {
        if let Some(info) = &self.infos[index] {
            return info.clone();
        }
        let info = self.load(index);
        self.infos[index] = Some(info.clone());
        info
    }

    fn load(&mut self, index: usize) -> Rc<ModuleInfo> {
        let module = &self.modules[index];
        let root = PathBuf::from(format!("/proc/{}/root", self.pid));
        if module.is_vdso() {
            let image = memory::read(self.pid, module.start, (module.end - module.start) as usize);
            return Rc::new(match image {
                Some(bytes) => ModuleInfo::parse(module::keep(bytes), None, &root),
                None => ModuleInfo::unreadable("cannot read the vDSO".into()),
            });
        }
        let (path, data) = match self.open(module, &root) {
            Ok(found) => found,
            Err(why) => return Rc::new(ModuleInfo::unreadable(why)),
        };
        let build_id = object::File::parse(data)
            .ok()
            .and_then(|f| f.build_id().ok().flatten().map(<[u8]>::to_vec));
        let key = (module.path.clone(), build_id);
        self.cache
            .modules
            .entry(key)
            .or_insert_with(|| Rc::new(ModuleInfo::parse(data, Some(&path), &root)))
            .clone()
    }

    /// The module's file: through the process's root, so files inside containers are
    /// found; for deleted files, through `/proc/PID/exe` or `/proc/PID/map_files`.
    fn open(&self, module: &Module, root: &Path) -> Result<(PathBuf, &'static [u8]), String> {
        let is_executable = self.executable.as_deref() == Some(module.path.as_str());
        if let (true, Some(program)) = (is_executable, &self.program) {
            let data = module::map_file(program)
                .map_err(|e| format!("cannot read program {}: {e}", program.display()))?;
            return Ok((program.clone(), data));
        }
        let inside = module.path.trim_end_matches(" (deleted)");
        let path = root.join(inside.trim_start_matches('/'));
        let mut candidates = vec![path.clone()];
        if is_executable {
            candidates.push(PathBuf::from(format!("/proc/{}/exe", self.pid)));
        }
        if let Some(first) = module.code.first() {
            candidates.push(PathBuf::from(format!(
                "/proc/{}/map_files/{:x}-{:x}",
                self.pid, first.start, first.end
            )));
        }
        let mut last_error = String::new();
        for candidate in candidates {
            match module::map_file(&candidate) {
                Ok(data) => return Ok((path, data)),
                Err(e) => last_error = format!("{}: {e}", candidate.display()),
            }
        }
        Err(last_error)
    }

    fn module_index(&self, address: u64) -> Option<usize> {
        self.modules.iter().position(|m| m.contains_code(address))
    }

    /// (module index, the address in the module's own numbering).
    fn locate(&mut self, address: u64) -> Option<(usize, Rc<ModuleInfo>, u64)> {
        let index = self.module_index(address)?;
        let offset = self.modules[index].file_offset(address)?;
        let info = self.module_info(index);
        let virtual_address = info.virtual_address(offset)?;
        Some((index, info, virtual_address))
    }

    /// The registers of every frame, innermost first.
    pub fn unwind(&mut self, top: Registers) -> Vec<Registers> {
        self.memory.invalidate();
        let mut frames = vec![top];
        while frames.len() < MAX_FRAMES {
            let current = frames[frames.len() - 1];
            let Some(pc) = current.pc() else { break };
            // A caller's pc is a return address, just past its call: look up the call.
            let lookup = if frames.len() == 1 {
                pc
            } else {
                pc.saturating_sub(1)
            };
            let step = match self.locate(lookup) {
                Some((_, info, address)) => unwind::cfi_step(
                    &info,
                    address,
                    &current,
                    &mut self.memory,
                    &mut self.context,
                ),
                None => Step::Unknown,
            };
            let step = match step {
                Step::Unknown => unwind::frame_pointer_step(&current, &mut self.memory),
                other => other,
            };
            let Step::Caller(caller) = step else { break };
            let (Some(caller_pc), Some(caller_sp), Some(sp)) =
                (caller.pc(), caller.sp(), current.sp())
            else {
                break;
            };
            // Stacks grow down: a caller's frame lies above. Anything else is a loop or
            // garbage, and the walk ends rather than reads on.
            if caller_sp <= sp || self.module_index(caller_pc.saturating_sub(1)).is_none() {
                break;
            }
            frames.push(caller);
        }
        frames
    }

    /// The frames the user sees for one unwound frame: its inlined calls, then itself.
    pub fn symbolize(&mut self, registers: Registers, is_top: bool) -> Vec<StackFrame> {
        let pc = registers.pc().unwrap_or(0);
        let lookup = if is_top { pc } else { pc.saturating_sub(1) };
        let bare = |module: Option<String>| StackFrame {
            pc,
            function: None,
            file: None,
            line: 0,
            column: 0,
            module,
            inlined: false,
            registers,
        };
        let Some((index, info, address)) = self.locate(lookup) else {
            let module = self
                .module_index(lookup)
                .map(|i| self.modules[i].path.clone());
            return vec![bare(module)];
        };
        let module = Some(self.modules[index].path.clone());
        let sources = info.source_frames(address);
        if sources.is_empty() {
            return vec![bare(module)];
        }
        let last = sources.len() - 1;
        sources
            .into_iter()
            .enumerate()
            .map(|(i, source)| StackFrame {
                pc,
                function: source.function,
                file: source.file,
                line: source.line,
                column: source.column,
                module: module.clone(),
                inlined: i < last,
                registers,
            })
            .collect()
    }

    /// A thread's whole stack, innermost frame first.
    pub fn stack(&mut self, top: Registers) -> Vec<StackFrame> {
        let unwound = self.unwind(top);
        let mut frames = Vec::with_capacity(unwound.len());
        for (i, registers) in unwound.into_iter().enumerate() {
            frames.extend(self.symbolize(registers, i == 0));
        }
        frames
    }
}
