//! Displaced stepping: a thread parked on a breakpoint that does not stop (a hit count
//! not reached, a logpoint, later a false condition) runs the instruction the `int3`
//! replaced from a scratch slot in the target's own code, while every other thread runs
//! on. The `int3` never leaves its place, so no thread can slip past it, and nothing
//! else stops: this is what makes a hot breakpoint cheap (gdb's amd64 displaced
//! stepping works the same way, amd64-tdep.c).
//!
//! The instruction is re-encoded for the slot's address by iced-x86: RIP-relative
//! operands and relative branches keep their absolute targets. After the single step
//! the thread's pc is moved back (fall-through lands after the original instruction;
//! a taken branch already holds its absolute target), and a call's pushed return
//! address is corrected. Instructions that cannot be moved (out of range of the slot,
//! `int`, repeated string instructions that stop mid-way, transactional memory) are
//! stepped the proven way instead: every thread stopped, the `int3` lifted.
//!
//! The slot is code that never runs again once the process has started: the ELF entry
//! point `_start` (gdb's choice too), or Go's `runtime.rt0_go`. Its bytes go back at
//! detach.

use iced_x86::{
    BlockEncoder, BlockEncoderOptions, Decoder, DecoderOptions, FlowControl, InstructionBlock,
    Mnemonic,
};

/// The longest x86-64 instruction.
pub const MAX_INSTRUCTION: usize = 15;

/// An instruction re-encoded to run at the slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocated {
    pub bytes: Vec<u8>,
    /// Length of the original instruction: fall-through continues after it.
    pub original_len: u64,
    /// A call: the return address it pushes must be the original's.
    pub pushes_return: bool,
}

/// Re-encodes the instruction at the start of `code` (the program's own bytes at
/// `from`) to run at `to`.
pub fn relocate(code: &[u8], from: u64, to: u64) -> Result<Relocated, String> {
    let mut decoder = Decoder::with_ip(64, code, from, DecoderOptions::NONE);
    let instruction = decoder.decode();
    if instruction.is_invalid() {
        return Err("not a valid instruction".into());
    }
    let flow = instruction.flow_control();
    if matches!(
        flow,
        FlowControl::Interrupt | FlowControl::XbeginXabortXend | FlowControl::Exception
    ) {
        return Err(format!(
            "`{:?}` cannot run elsewhere",
            instruction.mnemonic()
        ));
    }
    // A repeated string instruction single-steps one iteration at a time: its pc stays
    // on it, which in the slot would mean running it again from the breakpoint.
    if instruction.has_rep_prefix() || instruction.has_repne_prefix() {
        return Err("a repeated string instruction".into());
    }
    let block = InstructionBlock::new(std::slice::from_ref(&instruction), to);
    let encoded = BlockEncoder::encode(64, block, BlockEncoderOptions::NONE)
        .map_err(|err| format!("cannot be moved to {to:#x}: {err}"))?;
    let bytes = encoded.code_buffer;
    // A branch out of reach of the slot is encoded as several instructions; one single
    // step would run only the first.
    let mut check = Decoder::with_ip(64, &bytes, to, DecoderOptions::NONE);
    if check.decode().len() != bytes.len() {
        return Err("its target is out of the slot's reach".into());
    }
    let pushes_return = matches!(flow, FlowControl::Call | FlowControl::IndirectCall)
        && !matches!(
            instruction.mnemonic(),
            Mnemonic::Syscall | Mnemonic::Sysenter
        );
    Ok(Relocated {
        bytes,
        original_len: instruction.len() as u64,
        pushes_return,
    })
}

/// Where the thread really is after the relocated instruction ran at `to`: a pc just
/// after the slot's copy means it fell through, past the original at `from`. Returns
/// the return address to write at the stack pointer for a call.
pub fn fix_after_step(
    regs: &mut libc::user_regs_struct,
    from: u64,
    to: u64,
    relocated: &Relocated,
) -> Option<u64> {
    let after_copy = to + relocated.bytes.len() as u64;
    if regs.rip == after_copy {
        regs.rip = from + relocated.original_len;
    } else if regs.rip == to {
        // It did not run (a signal came first): back onto the breakpoint.
        regs.rip = from;
        return None;
    }
    relocated
        .pushes_return
        .then_some(from + relocated.original_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs_at(rip: u64) -> libc::user_regs_struct {
        // SAFETY: plain old data.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        regs.rip = rip;
        regs
    }

    const FROM: u64 = 0x5555_5555_1000;
    const SLOT: u64 = 0x5555_5555_0040;

    #[test]
    fn plain_instructions_copy_and_fall_through() {
        // push rbp
        let moved = relocate(&[0x55, 0x90, 0x90], FROM, SLOT).unwrap();
        assert_eq!(moved.bytes, vec![0x55]);
        let mut regs = regs_at(SLOT + 1);
        assert_eq!(fix_after_step(&mut regs, FROM, SLOT, &moved), None);
        assert_eq!(regs.rip, FROM + 1);
    }

    #[test]
    fn rip_relative_operands_keep_their_target() {
        // mov rax, [rip + 0x100]: reads FROM + 7 + 0x100.
        let code = [0x48, 0x8b, 0x05, 0x00, 0x01, 0x00, 0x00];
        let moved = relocate(&code, FROM, SLOT).unwrap();
        let mut decoder = Decoder::with_ip(64, &moved.bytes, SLOT, DecoderOptions::NONE);
        let there = decoder.decode();
        assert!(there.is_ip_rel_memory_operand());
        assert_eq!(there.ip_rel_memory_address(), FROM + 7 + 0x100);
    }

    #[test]
    fn calls_fix_their_return_address_and_branches_their_target() {
        // call rel32 to FROM + 5 + 0x20
        let moved = relocate(&[0xe8, 0x20, 0, 0, 0], FROM, SLOT).unwrap();
        assert!(moved.pushes_return);
        let mut regs = regs_at(FROM + 5 + 0x20);
        assert_eq!(
            fix_after_step(&mut regs, FROM, SLOT, &moved),
            Some(FROM + 5)
        );
        assert_eq!(regs.rip, FROM + 0x25, "a taken branch keeps its target");
        // jne short +0x10, not taken: falls through past the original.
        let moved = relocate(&[0x75, 0x10], FROM, SLOT).unwrap();
        let mut regs = regs_at(SLOT + moved.bytes.len() as u64);
        fix_after_step(&mut regs, FROM, SLOT, &moved);
        assert_eq!(regs.rip, FROM + 2);
    }

    #[test]
    fn what_cannot_move_is_refused() {
        assert!(relocate(&[0xcd, 0x80], FROM, SLOT).is_err(), "int 0x80");
        assert!(relocate(&[0xf3, 0xa4], FROM, SLOT).is_err(), "rep movsb");
        assert!(relocate(&[0x0f, 0x0b], FROM, SLOT).is_err(), "ud2");
        // A rip-relative operand 4 GiB away from the slot cannot be encoded there.
        let far = relocate(&[0x48, 0x8b, 0x05, 0, 0, 0, 0], FROM, FROM + (5u64 << 30));
        assert!(far.is_err());
    }

    #[test]
    fn a_step_that_did_not_run_goes_back_onto_the_breakpoint() {
        let moved = relocate(&[0x55], FROM, SLOT).unwrap();
        let mut regs = regs_at(SLOT);
        fix_after_step(&mut regs, FROM, SLOT, &moved);
        assert_eq!(regs.rip, FROM);
    }
}
