//! Stacks of a stopped process: unwinding from each thread's registers, then naming
//! every frame, inlined calls as frames of their own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use object::Object;

use super::image::LoadedImage;
use super::maps::{self, Module};
use super::memory::{self, ProcessMemory};
use super::module::{self, ModuleInfo};
use super::unwind::{self, Registers, Step, UnwindContext};
use crate::procfs::Pid;

/// Deeper stacks are cut here: a corrupt stack must end, and no editor shows more.
pub const MAX_FRAMES: usize = 1024;

/// How gdb names the frame of the kernel's signal return trampoline (`__restore_rt`).
pub const SIGNAL_TRAMPOLINE: &str = "<signal handler called>";

/// One frame as the unwinder found it.
#[derive(Debug, Clone, Copy)]
pub struct Unwound {
    pub registers: Registers,
    /// The pc is where the thread is (frame 0, or a frame a signal interrupted), not a
    /// return address.
    pub exact_pc: bool,
    /// The kernel's signal return trampoline: the frame above it was interrupted.
    pub signal_trampoline: bool,
}

impl Unwound {
    /// Where to look the frame up: a return address is just past its call, and the
    /// byte before it is in the call, which may end its function.
    fn lookup_address(&self) -> u64 {
        let pc = self.registers.pc().unwrap_or(0);
        if self.exact_pc {
            pc
        } else {
            pc.saturating_sub(1)
        }
    }
}

/// One frame as a user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFrame {
    /// The frame's pc; for callers, the return address.
    pub pc: u64,
    pub function: Option<Arc<str>>,
    pub file: Option<Arc<str>>,
    pub line: u32,
    pub column: u32,
    /// The module's path as `/proc/PID/maps` names it.
    pub module: Option<Arc<str>>,
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
            (Some(name), _) => name.to_string(),
            (None, Some(module)) => format!("{:#018x} ({module})", self.pc),
            (None, None) => format!("{:#018x}", self.pc),
        }
    }
}

/// Whether a module's symbols come from the very file the process mapped, as the
/// `modules` list tells the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// The file at the module's path is the one mapped.
    OnDisk,
    /// Unlinked since it was mapped; the mapped file was read through /proc.
    Deleted,
    /// Another file is at the path now (a package upgrade, a rebuild); the mapped file
    /// was read through /proc.
    Replaced,
    /// Another file is at the path now and the mapped one cannot be opened; the symbols
    /// come from its debug file, found by the build-id in its loaded image.
    ReplacedDebugFileOnly,
    /// Another file is at the path now (or none), the mapped one cannot be opened, and
    /// nothing else carries its symbols: addresses only.
    ReplacedUnreadable,
}

impl FileState {
    /// What the modules list says about the file, if anything.
    pub fn note(&self) -> Option<&'static str> {
        match self {
            FileState::OnDisk => None,
            FileState::Deleted => Some(
                "Deleted from disk after it was loaded; the loaded file was read through /proc.",
            ),
            FileState::Replaced => Some(
                "Replaced on disk after it was loaded; symbols are the loaded file's, not the \
                 new file's.",
            ),
            FileState::ReplacedDebugFileOnly => Some(
                "Replaced on disk after it was loaded; named from the debug file with the \
                 loaded file's build-id.",
            ),
            FileState::ReplacedUnreadable => {
                Some("Replaced or deleted on disk after it was loaded.")
            }
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
    /// The thread whose /proc files and memory show the process: the leader, or a live
    /// thread once the leader has exited (see `procfs::memory_view`).
    view: Pid,
    cache: Cache,
    modules: Vec<Module>,
    infos: Vec<Option<(Rc<ModuleInfo>, FileState)>>,
    /// Each module's path, shared by the frames in it.
    paths: Vec<Arc<str>>,
    executable: Option<String>,
    program: Option<PathBuf>,
    memory: ProcessMemory,
    context: Box<UnwindContext>,
}

impl Stacker {
    pub fn new(pid: Pid) -> Stacker {
        let view = crate::procfs::memory_view(pid);
        let mut stacker = Stacker {
            pid,
            view,
            cache: Cache::default(),
            modules: Vec::new(),
            infos: Vec::new(),
            paths: Vec::new(),
            executable: None,
            program: None,
            memory: ProcessMemory::new(view),
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
        // The thread that showed the process may have exited meanwhile.
        let view = crate::procfs::memory_view(self.pid);
        if view != self.view {
            self.view = view;
            self.memory = ProcessMemory::new(view);
        }
        let text = std::fs::read_to_string(format!("/proc/{}/maps", self.view)).unwrap_or_default();
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
        self.paths = modules.iter().map(|m| Arc::from(m.path.as_str())).collect();
        self.modules = modules;
        self.executable = std::fs::read_link(format!("/proc/{}/exe", self.view))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        self.memory.invalidate();
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The thread through which the process's /proc files are read (see `view`).
    pub fn view(&self) -> Pid {
        self.view
    }

    /// Modules worth reading ahead, the executable first. Not the dynamic loader: its
    /// debug information (libc6-dbg's, about 1 MiB inflated) is read only when a stack
    /// passes through it.
    pub fn preparation_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.modules.len())
            .filter(|&i| !self.modules[i].is_dynamic_loader())
            .collect();
        order.sort_by_key(|&i| self.executable.as_deref() != Some(self.modules[i].path.as_str()));
        order
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The module's symbols, read on first use.
    pub fn module_info(&mut self, index: usize) -> Rc<ModuleInfo> {
        self.loaded(index).0
    }

    /// Where the module's symbols came from (see `FileState`), reading them if needed.
    pub fn file_state(&mut self, index: usize) -> FileState {
        self.loaded(index).1
    }

    /// The modules read so far whose file on disk is not the one loaded (replaced or
    /// deleted since): (path, what the modules list says of it).
    pub fn replaced_files(&self) -> Vec<(String, String)> {
        self.modules
            .iter()
            .zip(&self.infos)
            .filter_map(|(module, loaded)| {
                let (info, state) = loaded.as_ref()?;
                Some((
                    module.path.clone(),
                    format!("{} {}", state.note()?, info.status),
                ))
            })
            .collect()
    }

    fn loaded(&mut self, index: usize) -> (Rc<ModuleInfo>, FileState) {
        if let Some(loaded) = &self.infos[index] {
            return loaded.clone();
        }
        let loaded = self.load(index);
        self.infos[index] = Some(loaded.clone());
        loaded
    }

    fn load(&mut self, index: usize) -> (Rc<ModuleInfo>, FileState) {
        let module = &self.modules[index];
        let root = PathBuf::from(format!("/proc/{}/root", self.view));
        if module.is_vdso() {
            let image = memory::read(
                self.view,
                module.start,
                (module.end - module.start) as usize,
            );
            let info = match image {
                Some(bytes) => ModuleInfo::parse(module::keep(bytes), None, &root),
                None => ModuleInfo::unreadable("cannot read the vDSO".into()),
            };
            return (Rc::new(info), FileState::OnDisk);
        }
        // The loaded image's build-id is what any file read for this module must have.
        let image = module
            .header
            .and_then(|header| LoadedImage::read(self.view, header));
        let loaded_id = image.as_ref().and_then(|i| i.build_id.clone());
        let opened = self.open(module, &root, loaded_id.as_deref());
        let (path, data, state) = match opened {
            Ok(found) => found,
            Err((why, state)) => return self.without_the_file(image, why, state),
        };
        let build_id = object::File::parse(data)
            .ok()
            .and_then(|f| f.build_id().ok().flatten().map(<[u8]>::to_vec));
        let key = (module.path.clone(), build_id);
        let info = self
            .cache
            .modules
            .entry(key)
            .or_insert_with(|| Rc::new(ModuleInfo::parse(data, Some(&path), &root)))
            .clone();
        (info, state)
    }

    /// A module whose mapped file cannot be opened: named from its debug file found by
    /// the loaded image's build-id, or not at all, saying why and what would help.
    fn without_the_file(
        &self,
        image: Option<LoadedImage>,
        why: String,
        state: FileState,
    ) -> (Rc<ModuleInfo>, FileState) {
        let root = PathBuf::from(format!("/proc/{}/root", self.view));
        // The file may simply be unreadable (permissions) and not replaced at all.
        let gone = state != FileState::OnDisk;
        let unnamed = match gone {
            true => FileState::ReplacedUnreadable,
            false => FileState::OnDisk,
        };
        let Some(image) = image else {
            return (Rc::new(ModuleInfo::unreadable(why)), unnamed);
        };
        let Some(build_id) = image.build_id.clone() else {
            let why = format!("{why}; its loaded image has no build-id to find its debug file by");
            let info = ModuleInfo::unnamed_loaded_image(self.view, &image, why);
            return (Rc::new(info), unnamed);
        };
        if let Some(info) = ModuleInfo::from_debug_file(self.view, &image, &root) {
            let named = match gone {
                true => FileState::ReplacedDebugFileOnly,
                false => FileState::OnDisk,
            };
            return (Rc::new(info), named);
        }
        let hex: String = build_id.iter().map(|b| format!("{b:02x}")).collect();
        let why = format!(
            "{why}. No debug file with its build-id {hex} was found either, so its code is \
             shown as addresses. To name it, run latch as root (or with CAP_SYS_ADMIN, which \
             /proc/{}/map_files needs), or install its debug file \
             (/usr/lib/debug/.build-id/{}/{}.debug)",
            self.pid,
            &hex[..2],
            &hex[2..],
        );
        let info = ModuleInfo::unnamed_loaded_image(self.view, &image, why);
        (Rc::new(info), unnamed)
    }

    /// The module's file: the file the process actually mapped, never merely the file
    /// now at its path. Tried in order: the mapped file itself through
    /// `/proc/PID/map_files` (needs CAP_SYS_ADMIN) or, for the executable,
    /// `/proc/PID/exe`; then the path inside the process's root (containers), accepted
    /// only if it is the same file (its build-id matches the loaded image's, or without
    /// build-ids, its device and inode match the mapping's). A file whose build-id
    /// differs from the loaded image's is never used: it was rewritten in place.
    fn open(
        &self,
        module: &Module,
        root: &Path,
        loaded_id: Option<&[u8]>,
    ) -> Result<(PathBuf, &'static [u8], FileState), (String, FileState)> {
        let is_executable = self.executable.as_deref() == Some(module.path.as_str());
        if let (true, Some(program)) = (is_executable, &self.program) {
            let data = module::map_file(program).map_err(|e| {
                let why = format!("cannot read program {}: {e}", program.display());
                (why, FileState::OnDisk)
            })?;
            return Ok((program.clone(), data, FileState::OnDisk));
        }
        let inside = module.path.trim_end_matches(" (deleted)");
        let path = root.join(inside.trim_start_matches('/'));
        let mapped_id = module.file_id();
        let at_path = std::fs::metadata(&path).ok();
        let path_is_mapped_file = at_path.as_ref().is_some_and(|meta| {
            use std::os::unix::fs::MetadataExt;
            let device = (libc::major(meta.dev()), libc::minor(meta.dev()));
            !module.is_deleted() && mapped_id == Some((device, meta.ino()))
        });
        // What reading the mapped file through /proc is, for the modules list.
        let through_proc = if path_is_mapped_file {
            FileState::OnDisk
        } else if module.is_deleted() && at_path.is_none() {
            FileState::Deleted
        } else {
            FileState::Replaced
        };
        let mut errors = Vec::new();
        let mut trusted = Vec::new();
        if let Some(first) = module.code.first() {
            trusted.push(PathBuf::from(format!(
                "/proc/{}/map_files/{:x}-{:x}",
                self.view, first.start, first.end
            )));
        }
        if is_executable {
            trusted.push(PathBuf::from(format!("/proc/{}/exe", self.view)));
        }
        for candidate in trusted {
            match module::map_file(&candidate) {
                Ok(data) => match same_build(data, loaded_id) {
                    Some(false) => errors.push(format!(
                        "{}: its contents were rewritten since it was loaded (another build-id)",
                        candidate.display()
                    )),
                    _ => return Ok((path, data, through_proc)),
                },
                Err(e) => errors.push(format!("{}: {e}", candidate.display())),
            }
        }
        match module::map_file(&path) {
            Ok(data) => match (same_build(data, loaded_id), path_is_mapped_file) {
                // The same build at the path: the same file seen through an overlay
                // (whose device and inode differ from the mapping's), or an identical
                // copy put in place of a deleted one.
                (Some(true), _) | (None, true) => {
                    let state = match module.is_deleted() {
                        false => FileState::OnDisk,
                        true => FileState::Replaced,
                    };
                    return Ok((path, data, state));
                }
                _ => errors.push(format!(
                    "{} is not the file the process loaded: it was replaced on disk since",
                    path.display()
                )),
            },
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
        Err((errors.join("; "), through_proc))
    }

    /// Whether module `index` is the program's executable.
    pub fn is_executable(&self, index: usize) -> bool {
        self.modules
            .get(index)
            .is_some_and(|m| self.executable.as_deref() == Some(m.path.as_str()))
    }

    fn module_index(&self, address: u64) -> Option<usize> {
        self.modules.iter().position(|m| m.contains_code(address))
    }

    /// (module index, the address in the module's own numbering).
    pub(super) fn locate(&mut self, address: u64) -> Option<(usize, Rc<ModuleInfo>, u64)> {
        let index = self.module_index(address)?;
        let offset = self.modules[index].file_offset(address)?;
        let info = self.module_info(index);
        let virtual_address = info.virtual_address(offset)?;
        Some((index, info, virtual_address))
    }

    /// Every frame, innermost first.
    pub fn unwind(&mut self, top: Registers) -> Vec<Unwound> {
        self.memory.invalidate();
        let mut frames = vec![Unwound {
            registers: top,
            exact_pc: true,
            signal_trampoline: false,
        }];
        while frames.len() < MAX_FRAMES {
            let current = frames[frames.len() - 1].registers;
            if current.pc().is_none() {
                break;
            }
            let lookup = frames[frames.len() - 1].lookup_address();
            let step = match self.locate(lookup) {
                Some((_, info, address)) => match unwind::cfi_step(
                    &info,
                    address,
                    &current,
                    &mut self.memory,
                    &mut self.context,
                ) {
                    // Go code without CFI (a stripped Go binary): Go's own table.
                    Step::Unknown => match info.go_frame(address) {
                        Some(frame) => unwind::go_table_step(frame, &current, &mut self.memory),
                        None => Step::Unknown,
                    },
                    step => step,
                },
                None => Step::Unknown,
            };
            // Code without CFI: cgo's trampoline, known by its bytes, else frame pointers.
            let step = match step {
                Step::Unknown if !frames[frames.len() - 1].exact_pc => {
                    match unwind::cgo_crosscall_step(&current, &mut self.memory) {
                        Step::Unknown => unwind::frame_pointer_step(&current, &mut self.memory),
                        other => other,
                    }
                }
                Step::Unknown => unwind::frame_pointer_step(&current, &mut self.memory),
                other => other,
            };
            let Step::Caller(caller, through_trampoline) = step else {
                break;
            };
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
            let last = frames.len() - 1;
            frames[last].signal_trampoline = through_trampoline;
            frames.push(Unwound {
                registers: caller,
                exact_pc: through_trampoline,
                signal_trampoline: false,
            });
        }
        frames
    }

    /// The frames the user sees for one unwound frame: its inlined calls, then itself.
    pub fn symbolize(&mut self, frame: &Unwound) -> Vec<StackFrame> {
        let registers = frame.registers;
        let pc = registers.pc().unwrap_or(0);
        let lookup = frame.lookup_address();
        let bare = |module: Option<Arc<str>>| StackFrame {
            pc,
            function: frame
                .signal_trampoline
                .then(|| Arc::from(SIGNAL_TRAMPOLINE)),
            file: None,
            line: 0,
            column: 0,
            module,
            inlined: false,
            registers,
        };
        let Some((index, info, address)) = self.locate(lookup) else {
            let module = self.module_index(lookup).map(|i| self.paths[i].clone());
            return vec![bare(module)];
        };
        let module = Some(self.paths[index].clone());
        let sources = info.source_frames(address);
        if sources.is_empty() || frame.signal_trampoline {
            return vec![bare(module)];
        }
        let last = sources.len() - 1;
        sources
            .iter()
            .enumerate()
            .map(|(i, source)| StackFrame {
                pc,
                function: source.function.clone(),
                file: source.file.clone(),
                line: source.line,
                column: source.column,
                module: module.clone(),
                inlined: i < last,
                registers,
            })
            .collect()
    }

    /// Whether naming these frames would not wait for DWARF still being read.
    pub fn can_name_now(&mut self, unwound: &[Unwound]) -> bool {
        unwound.iter().all(|frame| {
            self.locate(frame.lookup_address())
                .is_none_or(|(_, info, _)| info.is_ready())
        })
    }

    /// A thread's whole stack, innermost frame first.
    pub fn stack(&mut self, top: Registers) -> Vec<StackFrame> {
        let unwound = self.unwind(top);
        self.symbolize_all(&unwound)
    }

    /// The frames the user sees for an unwound stack.
    pub fn symbolize_all(&mut self, unwound: &[Unwound]) -> Vec<StackFrame> {
        let mut frames = Vec::with_capacity(unwound.len());
        for frame in unwound {
            frames.extend(self.symbolize(frame));
        }
        frames
    }
}

/// Whether `data` has the build-id the loaded image has; None when either has none.
fn same_build(data: &'static [u8], loaded_id: Option<&[u8]>) -> Option<bool> {
    let file = object::File::parse(data).ok()?;
    let on_disk = file.build_id().ok().flatten()?;
    Some(on_disk == loaded_id?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Registers that point into `stack` (a buffer of this test process) and a pc in
    /// this test binary's code, so the real CFI of a real function is applied to
    /// arbitrary memory.
    fn registers_over(stack: &[u64], rsp_word: usize, rbp_word: usize, pc: u64) -> Registers {
        let base = stack.as_ptr() as u64;
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        regs.rsp = base + 8 * rsp_word as u64;
        regs.rbp = base + 8 * rbp_word as u64;
        regs.rip = pc;
        Registers::from_user_regs(&regs)
    }

    thread_local! {
        /// One for all cases: reading this test binary's DWARF once is slow enough.
        static SELF: std::cell::RefCell<Stacker> =
            std::cell::RefCell::new(Stacker::new(std::process::id() as Pid));
    }

    #[inline(never)]
    fn some_function_with_cfi(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(3)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Garbage on the stack (random words, words pointing back into the stack,
        /// return addresses into real code) ends the walk: bounded, each caller's frame
        /// above the last, never a loop.
        #[test]
        fn unwinding_garbage_ends(
            words in proptest::collection::vec(any::<u64>(), 512),
            self_pointers in proptest::collection::vec((0usize..512, 0usize..512), 0..64),
            code_pointers in proptest::collection::vec((0usize..512, 0u64..64), 0..64),
            rsp_word in 0usize..256,
            rbp_word in 0usize..512,
            pc_offset in 0u64..32,
        ) {
            let mut stack = words;
            let base = stack.as_ptr() as u64;
            let code = some_function_with_cfi as *const () as u64;
            for (at, target) in self_pointers {
                stack[at] = base + 8 * target as u64;
            }
            for (at, offset) in code_pointers {
                stack[at] = code + offset;
            }
            let regs = registers_over(&stack, rsp_word, rbp_word, code + pc_offset);
            let (frames, named) = SELF.with_borrow_mut(|stacker| {
                let frames = stacker.unwind(regs);
                // Naming the frames must not fail on garbage either.
                let named = frames.iter().all(|f| !stacker.symbolize(f).is_empty());
                (frames, named)
            });
            prop_assert!(frames.len() <= MAX_FRAMES);
            for pair in frames.windows(2) {
                prop_assert!(pair[1].registers.sp() > pair[0].registers.sp());
            }
            prop_assert!(named);
            prop_assert_eq!(some_function_with_cfi(1), 3);
        }
    }

    #[test]
    fn this_threads_own_stack_reaches_this_test() {
        // The registers of a point in this very function, captured by inline assembly,
        // unwind through the test harness: the walk finds this test by name.
        let (rip, rsp, rbp): (u64, u64, u64);
        unsafe {
            std::arch::asm!(
                "lea {rip}, [rip]",
                "mov {rsp}, rsp",
                "mov {rbp}, rbp",
                rip = out(reg) rip,
                rsp = out(reg) rsp,
                rbp = out(reg) rbp,
            );
        }
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        regs.rip = rip;
        regs.rsp = rsp;
        regs.rbp = rbp;
        let mut stacker = Stacker::new(std::process::id() as Pid);
        let frames = stacker.stack(Registers::from_user_regs(&regs));
        let names: Vec<String> = frames.iter().map(StackFrame::display_name).collect();
        assert!(
            names[0].contains("this_threads_own_stack_reaches_this_test"),
            "{names:#?}"
        );
        assert!(
            names
                .iter()
                .any(|n| n.contains("start_thread") || n.contains("clone")),
            "the walk reaches the thread's start: {names:#?}"
        );
    }
}
