//! Reading a stopped process's memory for the unwinder: whole pages through
//! `process_vm_readv`, cached for the walk of one stack, so that it costs a few system
//! calls instead of one per word.

use std::io::IoSliceMut;

use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid as NixPid;
use rustc_hash::FxHashMap;

use crate::procfs::Pid;

const PAGE: u64 = 4096;
/// A corrupt stack must not make the unwinder read without end: this bounds the pages
/// one walk may read (1 MiB; 1024 frames of a deep recursion fit many times over).
const MAX_PAGES: usize = 256;

pub struct ProcessMemory {
    pid: Pid,
    pages: FxHashMap<u64, Option<Box<[u8]>>>,
    /// Buffers of pages forgotten, reused: a thousand stacks walked one after another
    /// would otherwise allocate and zero a page each time.
    spare: Vec<Box<[u8]>>,
}

impl ProcessMemory {
    pub fn new(pid: Pid) -> ProcessMemory {
        ProcessMemory {
            pid,
            pages: FxHashMap::default(),
            spare: Vec::new(),
        }
    }

    /// Forget what was read: another stack is walked, or the process ran.
    pub fn invalidate(&mut self) {
        self.spare
            .extend(self.pages.drain().filter_map(|(_, page)| page));
    }

    pub fn read_u64(&mut self, address: u64) -> Option<u64> {
        let offset = (address % PAGE) as usize;
        if offset <= (PAGE as usize) - 8 {
            let page = self.page(address - offset as u64)?;
            let bytes: [u8; 8] = page[offset..offset + 8].try_into().ok()?;
            return Some(u64::from_le_bytes(bytes));
        }
        // Straddles two pages.
        let mut bytes = [0u8; 8];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let at = address.checked_add(i as u64)?;
            let page = self.page(at & !(PAGE - 1))?;
            *byte = page[(at % PAGE) as usize];
        }
        Some(u64::from_le_bytes(bytes))
    }

    pub fn read_sized(&mut self, address: u64, size: u8) -> Option<u64> {
        let value = self.read_u64(address)?;
        Some(match size {
            1 => value & 0xff,
            2 => value & 0xffff,
            4 => value & 0xffff_ffff,
            _ => value,
        })
    }

    fn page(&mut self, base: u64) -> Option<&[u8]> {
        if !self.pages.contains_key(&base) {
            if self.pages.len() >= MAX_PAGES {
                return None;
            }
            let mut buffer = self
                .spare
                .pop()
                .unwrap_or_else(|| vec![0u8; PAGE as usize].into_boxed_slice());
            let page = if read_into(self.pid, base, &mut buffer) {
                Some(buffer)
            } else {
                self.spare.push(buffer);
                None
            };
            self.pages.insert(base, page);
        }
        self.pages.get(&base)?.as_deref()
    }
}

/// `len` bytes at `address`, or None when any of them cannot be read.
pub fn read(pid: Pid, address: u64, len: usize) -> Option<Vec<u8>> {
    let mut buffer = vec![0u8; len];
    read_into(pid, address, &mut buffer).then_some(buffer)
}

/// Fills `buffer` from `address`; false when any byte of it cannot be read.
pub(super) fn read_into(pid: Pid, address: u64, buffer: &mut [u8]) -> bool {
    let Ok(base) = usize::try_from(address) else {
        return false;
    };
    let len = buffer.len();
    let remote = [RemoteIoVec { base, len }];
    process_vm_readv(
        NixPid::from_raw(pid),
        &mut [IoSliceMut::new(buffer)],
        &remote,
    )
    .is_ok_and(|done| done == len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_words_across_a_page_boundary_of_this_process() {
        let words: Vec<u64> = (0..2048).map(|i| i * 0x0101_0101).collect();
        let mut memory = ProcessMemory::new(std::process::id() as Pid);
        let base = words.as_ptr() as u64;
        for (i, expected) in words.iter().enumerate() {
            // 16 KiB of words: some reads cross from one cached page to the next.
            let at = base + i as u64 * 8;
            assert_eq!(memory.read_u64(at), Some(*expected));
        }
        assert_eq!(memory.read_u64(8), None, "page zero is never mapped");
    }
}
