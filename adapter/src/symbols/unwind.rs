//! The x86-64 specifics of registers and unwinding (the one place aarch64 would add
//! its own), and one step up the stack: from a frame's registers to its caller's, by the
//! module's call frame information (`.eh_frame`, else `.debug_frame`), evaluating DWARF
//! expressions where the CFI uses them (PLT stubs, signal trampolines).

use gimli::{CfaRule, RegisterRule, UnwindSection};

use super::gopclntab::GoFrame;
use super::memory::ProcessMemory;
use super::module::{CfiSection, ModuleInfo, Reader, UnwindRule};

/// DWARF's x86-64 register numbers, in the order `Registers` stores them.
pub const REGISTER_NAMES: [&str; 17] = [
    "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip",
];
const RBP: u16 = 6;
const RSP: u16 = 7;
const RIP: u16 = 16;
/// Preserved across calls by the System V ABI: a caller's value equals the callee's
/// unless the CFI says where the callee saved it.
const CALLEE_SAVED: [u16; 6] = [3, 6, 12, 13, 14, 15];

/// The general-purpose registers of one frame; None where unwinding could not recover one.
/// A bit mask of the known ones beside the values: 144 bytes instead of 272 as
/// `[Option<u64>; 17]`, and every frame of every stopped thread keeps one (4000 threads:
/// 16,000 frames).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registers {
    known: u32,
    values: [u64; 17],
}

impl Registers {
    pub fn from_user_regs(regs: &libc::user_regs_struct) -> Registers {
        Registers {
            known: (1 << 17) - 1,
            values: [
                regs.rax, regs.rdx, regs.rcx, regs.rbx, regs.rsi, regs.rdi, regs.rbp, regs.rsp,
                regs.r8, regs.r9, regs.r10, regs.r11, regs.r12, regs.r13, regs.r14, regs.r15,
                regs.rip,
            ],
        }
    }

    /// Only a pc, stack pointer and frame pointer known: a parked goroutine's saved
    /// context (Go's `gobuf`), the rest of its registers being lost.
    pub fn from_pc_sp_bp(pc: u64, sp: u64, bp: u64) -> Registers {
        let mut registers = Registers::default();
        registers.set(RIP, Some(pc));
        registers.set(RSP, Some(sp));
        registers.set(RBP, Some(bp));
        registers
    }

    pub fn get(&self, register: u16) -> Option<u64> {
        let index = usize::from(register);
        (index < self.values.len() && self.known & (1 << index) != 0).then(|| self.values[index])
    }

    fn set(&mut self, register: u16, value: Option<u64>) {
        let index = usize::from(register);
        if index >= self.values.len() {
            return;
        }
        match value {
            Some(value) => {
                self.values[index] = value;
                self.known |= 1 << index;
            }
            None => {
                // Cleared, so that equal register sets compare equal.
                self.values[index] = 0;
                self.known &= !(1 << index);
            }
        }
    }

    pub fn pc(&self) -> Option<u64> {
        self.get(RIP)
    }

    /// Only a pc known: a code address to name (where a `go` statement is).
    pub fn from_pc(pc: u64) -> Registers {
        let mut registers = Registers::default();
        registers.set(RIP, Some(pc));
        registers
    }

    pub fn sp(&self) -> Option<u64> {
        self.get(RSP)
    }

    /// (name, value) of each known register, in DWARF order.
    pub fn known(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REGISTER_NAMES
            .iter()
            .enumerate()
            .filter_map(|(index, name)| Some((*name, self.get(index as u16)?)))
    }
}

/// Every register of a stopped thread by name, in the order debuggers list them.
pub fn named_registers(regs: &libc::user_regs_struct) -> Vec<(&'static str, u64)> {
    vec![
        ("rax", regs.rax),
        ("rbx", regs.rbx),
        ("rcx", regs.rcx),
        ("rdx", regs.rdx),
        ("rsi", regs.rsi),
        ("rdi", regs.rdi),
        ("rbp", regs.rbp),
        ("rsp", regs.rsp),
        ("r8", regs.r8),
        ("r9", regs.r9),
        ("r10", regs.r10),
        ("r11", regs.r11),
        ("r12", regs.r12),
        ("r13", regs.r13),
        ("r14", regs.r14),
        ("r15", regs.r15),
        ("rip", regs.rip),
        ("eflags", regs.eflags),
        ("orig_rax", regs.orig_rax),
        ("cs", regs.cs),
        ("ss", regs.ss),
        ("ds", regs.ds),
        ("es", regs.es),
        ("fs", regs.fs),
        ("gs", regs.gs),
        ("fs_base", regs.fs_base),
        ("gs_base", regs.gs_base),
    ]
}

/// What one unwinding step found. Returned by value and consumed at once, so the size
/// of `Caller` costs nothing a box would save.
#[allow(clippy::large_enum_variant)]
pub enum Step {
    /// The caller's registers, and whether the step went through a signal trampoline
    /// (the caller was interrupted, so its pc is exact, not a return address).
    Caller(Registers, bool),
    /// The CFI marks the outermost frame (its return address is undefined).
    Outermost,
    /// No CFI covers the address, or it could not be applied.
    Unknown,
}

pub type UnwindContext = gimli::UnwindContext<usize>;

/// The caller of the frame whose code is at `address` (in the module's own numbering).
pub fn cfi_step(
    module: &ModuleInfo,
    address: u64,
    regs: &Registers,
    memory: &mut ProcessMemory,
    context: &mut UnwindContext,
) -> Step {
    let from_eh_frame = module.eh_frame.as_ref().and_then(|cfi| {
        let rule = cfi.rule_for(address, context, |c| c.eh_fde_for(address))?;
        Some((rule, Cfi::Eh(cfi)))
    });
    let found = from_eh_frame.or_else(|| {
        let cfi = module.debug_frame.as_ref()?;
        let rule = cfi.rule_for(address, context, |c| c.fde_for(address))?;
        Some((rule, Cfi::Debug(cfi)))
    });
    match found {
        Some((rule, Cfi::Eh(cfi))) => apply(&cfi.section, &rule, regs, memory),
        Some((rule, Cfi::Debug(cfi))) => apply(&cfi.section, &rule, regs, memory),
        None => Step::Unknown,
    }
}

/// The CFA at `address` (the module's own numbering) as a register plus an offset, the
/// form compilers give it everywhere but in hand-written code; `None` otherwise.
pub fn cfa_rule(
    module: &ModuleInfo,
    address: u64,
    context: &mut UnwindContext,
) -> Option<(u16, i64)> {
    let rule = module
        .eh_frame
        .as_ref()
        .and_then(|cfi| cfi.rule_for(address, context, |c| c.eh_fde_for(address)))
        .or_else(|| {
            let cfi = module.debug_frame.as_ref()?;
            cfi.rule_for(address, context, |c| c.fde_for(address))
        })?;
    match rule.row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => Some((register.0, *offset)),
        CfaRule::Expression(_) => None,
    }
}

/// The section a rule came from: its expressions are offsets into it.
enum Cfi<'a> {
    Eh(&'a CfiSection<gimli::EhFrame<Reader>>),
    Debug(&'a CfiSection<gimli::DebugFrame<Reader>>),
}

fn apply<S: UnwindSection<Reader>>(
    section: &S,
    rule: &UnwindRule,
    regs: &Registers,
    memory: &mut ProcessMemory,
) -> Step {
    let row = &rule.row;
    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => regs
            .get(register.0)
            .map(|base| base.wrapping_add(*offset as u64)),
        CfaRule::Expression(expression) => expression
            .get(section)
            .ok()
            .and_then(|e| evaluate(e, regs, memory, None)),
    };
    let Some(cfa) = cfa else {
        return Step::Unknown;
    };
    let mut caller = callee_saved(regs);
    let mut return_address_rule = false;
    for (register, rule) in row.registers() {
        let value = match rule {
            RegisterRule::Undefined => None,
            RegisterRule::SameValue => regs.get(register.0),
            RegisterRule::Offset(offset) => memory.read_u64(cfa.wrapping_add(*offset as u64)),
            RegisterRule::ValOffset(offset) => Some(cfa.wrapping_add(*offset as u64)),
            RegisterRule::Register(other) => regs.get(other.0),
            RegisterRule::Expression(expression) => expression
                .get(section)
                .ok()
                .and_then(|e| evaluate(e, regs, memory, Some(cfa)))
                .and_then(|at| memory.read_u64(at)),
            RegisterRule::ValExpression(expression) => expression
                .get(section)
                .ok()
                .and_then(|e| evaluate(e, regs, memory, Some(cfa))),
            RegisterRule::Constant(value) => Some(*value),
            _ => None,
        };
        if register.0 == RIP {
            return_address_rule = true;
            if matches!(rule, RegisterRule::Undefined) {
                return Step::Outermost;
            }
        }
        caller.set(register.0, value);
    }
    if !return_address_rule {
        // x86-64 CIEs always say where the return address is; without it, do not guess.
        return Step::Unknown;
    }
    caller.set(RSP, Some(cfa));
    match caller.pc() {
        Some(0) => Step::Outermost,
        Some(_) => Step::Caller(caller, rule.signal_trampoline),
        None => Step::Unknown,
    }
}

/// cgo's `crosscall_amd64` (Go up to 1.20; `crosscall1` since), the assembly between a
/// C thread's `threadentry` and Go's `mstart`, has no call frame information, and its
/// frame has no frame pointer: without this step every stack of a cgo program's Go
/// threads ends there, where gdb goes on through `threadentry`, `start_thread` and
/// `clone3`. It pushes the six callee-saved registers, then calls `setg_gcc` and `fn`:
///
/// ```text
/// 53 55 41 54 41 55 41 56 41 57   push rbx, rbp, r12, r13, r14, r15
/// 48 89 fb 48 89 d7               mov rbx, rdi; mov rdi, rdx
/// ff d6 | ff d3                   call rsi (setg_gcc) | call rbx (fn)
/// ```
///
/// The trampoline is known by these exact bytes before the return address `pc` (a
/// name could belong to anything), and its caller's registers are then where the
/// pushes put them: 56 bytes of frame, the return address on top.
pub fn cgo_crosscall_step(regs: &Registers, memory: &mut ProcessMemory) -> Step {
    const PUSHES_AND_MOVES: [u8; 16] = [
        0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, 0x48, 0x89, 0xfb, 0x48, 0x89,
        0xd7,
    ];
    const CALL_SETG: [u8; 2] = [0xff, 0xd6];
    const CALL_FN: [u8; 2] = [0xff, 0xd3];
    let (Some(pc), Some(rsp)) = (regs.pc(), regs.sp()) else {
        return Step::Unknown;
    };
    let Some(start) = pc.checked_sub(24) else {
        return Step::Unknown;
    };
    let mut before = [0u8; 24];
    for (i, word) in before.chunks_exact_mut(8).enumerate() {
        match memory.read_u64(start + 8 * i as u64) {
            Some(value) => word.copy_from_slice(&value.to_le_bytes()),
            None => return Step::Unknown,
        }
    }
    let after_fn =
        before[4..20] == PUSHES_AND_MOVES && before[20..22] == CALL_SETG && before[22..] == CALL_FN;
    let after_setg = before[6..22] == PUSHES_AND_MOVES && before[22..] == CALL_SETG;
    if !after_fn && !after_setg {
        return Step::Unknown;
    }
    // Pushed in the order rbx, rbp, r12, r13, r14, r15: r15 is at the top of the stack.
    let mut caller = Registers::default();
    for (slot, register) in [15u16, 14, 13, 12, RBP, 3].into_iter().enumerate() {
        match memory.read_u64(rsp + 8 * slot as u64) {
            Some(value) => caller.set(register, Some(value)),
            None => return Step::Unknown,
        }
    }
    let Some(return_address) = memory.read_u64(rsp + 48) else {
        return Step::Unknown;
    };
    caller.set(RSP, Some(rsp + 56));
    caller.set(RIP, Some(return_address));
    Step::Caller(caller, false)
}

/// A Go function's frame left as Go's own traceback leaves it (runtime.gentraceback):
/// the return address at the stack pointer plus the frame size the function's table
/// gives for this pc, the caller's stack pointer just above it. Go code saves the
/// caller's rbp at the top of a frame that has one (the frame-pointer convention Go
/// keeps since 1.7); a frameless function (size 0, assembly such as runtime.futex)
/// leaves rbp as it was. Frame pointers alone would skip the caller of such a function.
pub fn go_table_step(frame: GoFrame, regs: &Registers, memory: &mut ProcessMemory) -> Step {
    let GoFrame::Size(size) = frame else {
        return Step::Outermost;
    };
    let Some(rsp) = regs.sp() else {
        return Step::Unknown;
    };
    let Some(return_address) = rsp.checked_add(size).and_then(|at| memory.read_u64(at)) else {
        return Step::Unknown;
    };
    if return_address == 0 {
        return Step::Outermost;
    }
    let mut caller = callee_saved(regs);
    if size >= 8 {
        caller.set(RBP, memory.read_u64(rsp + size - 8));
    }
    caller.set(RSP, Some(rsp + size + 8));
    caller.set(RIP, Some(return_address));
    Step::Caller(caller, false)
}

/// The classic frame-pointer chain, for code without CFI: the saved rbp at [rbp], the
/// return address above it.
pub fn frame_pointer_step(regs: &Registers, memory: &mut ProcessMemory) -> Step {
    let (Some(rbp), Some(rsp)) = (regs.get(RBP), regs.sp()) else {
        return Step::Unknown;
    };
    if rbp < rsp || rbp % 8 != 0 {
        return Step::Unknown;
    }
    let (Some(saved_rbp), Some(return_address)) = (memory.read_u64(rbp), memory.read_u64(rbp + 8))
    else {
        return Step::Unknown;
    };
    if return_address == 0 {
        return Step::Outermost;
    }
    let mut caller = callee_saved(regs);
    caller.set(RBP, Some(saved_rbp));
    caller.set(RSP, Some(rbp + 16));
    caller.set(RIP, Some(return_address));
    Step::Caller(caller, false)
}

/// A caller's registers before a step fills in the rest: the callee-saved ones equal
/// the callee's unless the step learns where the callee saved them.
fn callee_saved(regs: &Registers) -> Registers {
    let mut caller = Registers::default();
    for register in CALLEE_SAVED {
        caller.set(register, regs.get(register));
    }
    caller
}

/// Evaluates a CFI expression to an address (or value); `cfa` is pushed first for
/// register rules, as DWARF specifies. Bounded: corrupt expressions end, not loop.
fn evaluate(
    expression: gimli::Expression<Reader>,
    regs: &Registers,
    memory: &mut ProcessMemory,
    cfa: Option<u64>,
) -> Option<u64> {
    let encoding = gimli::Encoding {
        address_size: 8,
        format: gimli::Format::Dwarf32,
        version: 4,
    };
    let mut evaluation = expression.evaluation(encoding);
    evaluation.set_max_iterations(1000);
    if let Some(cfa) = cfa {
        evaluation.set_initial_value(cfa);
    }
    let mut state = evaluation.evaluate().ok()?;
    loop {
        state = match state {
            gimli::EvaluationResult::Complete => break,
            gimli::EvaluationResult::RequiresMemory { address, size, .. } => {
                let value = memory.read_sized(address, size)?;
                evaluation
                    .resume_with_memory(gimli::Value::Generic(value))
                    .ok()?
            }
            gimli::EvaluationResult::RequiresRegister { register, .. } => {
                let value = regs.get(register.0)?;
                evaluation
                    .resume_with_register(gimli::Value::Generic(value))
                    .ok()?
            }
            _ => return None,
        };
    }
    let pieces = evaluation.result();
    match pieces.first()?.location {
        gimli::Location::Address { address } => Some(address),
        gimli::Location::Value {
            value: gimli::Value::Generic(value),
        } => Some(value),
        _ => None,
    }
}
