//! Where displaced steps may run (see `ptrace/displaced.rs`): code of the executable
//! that runs once, at start-up, and never again. The C runtime's `_start` (gdb uses the
//! entry point the same way) or Go's `runtime.rt0_go`, found by the executable's
//! symbol table, placed by the entry point the kernel reports (`AT_ENTRY`), so a
//! position-independent executable's load address needs no guess.

use object::{Object, ObjectSymbol};

use crate::procfs::Pid;

/// The functions that run only while a process starts, in order of preference.
const RUN_ONCE: [&str; 2] = ["_start", "runtime.rt0_go"];

/// (address, length) of a slot in process `pid`, if its executable names one.
pub fn displaced_slot(pid: Pid) -> Option<(u64, usize)> {
    let entry = auxv_entry(pid)?;
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).ok()?;
    // SAFETY: a read-only mapping of the target's executable; a file changed under us
    // at worst gives a wrong slot, which `relocate`'s length check and the restore
    // bound. Executables being run cannot be written (ETXTBSY).
    let data = unsafe { memmap2::Mmap::map(&exe) }.ok()?;
    let file = object::File::parse(&*data).ok()?;
    let bias = entry.checked_sub(file.entry())?;
    for name in RUN_ONCE {
        let found = file
            .symbols()
            .find(|s| s.name() == Ok(name) && s.size() >= 16);
        if let Some(symbol) = found {
            // Past the first instructions: a thread's registers can never point there
            // (every thread has long left start-up), and the first bytes of `_start`
            // hold `endbr64`, which some tools look for.
            let skip = 4;
            let len = (symbol.size() - skip).min(64) as usize;
            return Some((symbol.address() + bias + skip, len));
        }
    }
    None
}

/// The program's entry point as loaded (`AT_ENTRY` in /proc/PID/auxv).
fn auxv_entry(pid: Pid) -> Option<u64> {
    const AT_ENTRY: u64 = 9;
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).ok()?;
    auxv.chunks_exact(16).find_map(|pair| {
        let key = u64::from_ne_bytes(pair[..8].try_into().ok()?);
        let value = u64::from_ne_bytes(pair[8..].try_into().ok()?);
        (key == AT_ENTRY).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary is a Rust program started by the C runtime: its `_start` is
    /// where the kernel entered it.
    #[test]
    fn the_slot_of_this_process_is_in_its_start_code() {
        let pid = std::process::id() as Pid;
        let entry = auxv_entry(pid).expect("AT_ENTRY");
        let (address, len) = displaced_slot(pid).expect("a slot in _start");
        assert!(len >= 15, "{len}");
        assert_eq!(
            address,
            entry + 4,
            "the slot is in _start, at the entry point"
        );
    }
}
