//! Writing the target's code: one byte at a time, through `/proc/PID/mem`.
//!
//! The kernel writes through `/proc/PID/mem` as `PTRACE_POKEDATA` does (forcing the
//! copy-on-write of a read-only text page), but byte for byte: POKEDATA rewrites a whole
//! word, so a breakpoint written while other threads run would rewrite seven bytes
//! around it, and a thread executing one of them (or a JIT writing them) could see a
//! torn instruction. A one-byte write is atomic, so a breakpoint can be put in or taken
//! out while the target runs, with nothing stopped: an `int3` replaces the first byte of
//! an instruction, which every other thread sees either whole before or whole after.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::procfs::Pid;

pub struct TargetMemory {
    file: File,
}

impl TargetMemory {
    pub fn open(pid: Pid) -> io::Result<TargetMemory> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/{pid}/mem"))?;
        Ok(TargetMemory { file })
    }

    pub fn read_byte(&self, address: u64) -> io::Result<u8> {
        let mut byte = [0u8];
        self.file.read_exact_at(&mut byte, address)?;
        Ok(byte[0])
    }

    pub fn read(&self, address: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(out, address)
    }

    /// Several bytes at once: for data (a return address on a stack) and for the
    /// displaced-stepping slot, which no thread runs.
    pub fn write(&self, address: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, address)
    }

    pub fn write_byte(&self, address: u64, byte: u8) -> io::Result<()> {
        match self.file.write_at(&[byte], address)? {
            1 => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("could not write the byte at {address:#x}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process stands for the target: a byte of a buffer is written and read back
    /// through /proc/self/mem.
    #[test]
    fn bytes_are_written_one_at_a_time() {
        let buffer = vec![1u8, 2, 3, 4, 5, 6, 7, 8];
        let memory = TargetMemory::open(std::process::id() as Pid).unwrap();
        let at = buffer.as_ptr() as u64 + 3;
        assert_eq!(memory.read_byte(at).unwrap(), 4);
        memory.write_byte(at, 0xcc).unwrap();
        // SAFETY: the buffer is alive; the read must not be optimised away.
        let seen = unsafe { std::ptr::read_volatile(buffer.as_ptr().add(3)) };
        assert_eq!(seen, 0xcc);
        assert_eq!(std::hint::black_box(&buffer)[..3], [1, 2, 3]);
        assert_eq!(buffer[4..], [5, 6, 7, 8]);
    }
}
