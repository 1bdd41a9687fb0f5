//! What a module's loaded image in the target's memory says about the file it came
//! from: its build-id and its loadable segments, read from the ELF header and program
//! headers the loader mapped.
//!
//! This is the one account of a mapped file that cannot be out of date: the file at the
//! module's path may have been replaced since (every package upgrade, every rebuild of
//! a running program), and reading symbols from another file names the code wrongly.
//! The build-id read here is what a candidate file must match.

use crate::procfs::Pid;

use super::memory;

/// The loaded image of one ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The GNU build-id note, when the file has one.
    pub build_id: Option<Vec<u8>>,
    /// (file offset, virtual address, size in the file) of each `PT_LOAD` segment, as
    /// the file numbers them.
    pub segments: Vec<(u64, u64, u64)>,
    /// Where the file's numbering starts in memory: address = bias + virtual address.
    pub bias: u64,
    /// (virtual address, size) of `.eh_frame_hdr` (`PT_GNU_EH_FRAME`): the loaded unwind
    /// tables, which let a module whose file is out of reach still be unwound.
    pub eh_frame_hdr: Option<(u64, u64)>,
}

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
const NT_GNU_BUILD_ID: u32 = 3;
/// Bounds on what is read from a target, which may be corrupt or hostile.
const MAX_PHDRS: usize = 256;
const MAX_NOTES: usize = 4096;

impl LoadedImage {
    /// Reads the image whose ELF header is mapped at `header` in `pid` (any live thread
    /// of the process). None when there is no 64-bit little-endian ELF header there.
    pub fn read(pid: Pid, header: u64) -> Option<LoadedImage> {
        LoadedImage::parse(header, |address, len| memory::read(pid, address, len))
    }

    /// The same from any reader of memory, so that it can be tested on this process.
    fn parse(
        header: u64,
        mut read: impl FnMut(u64, usize) -> Option<Vec<u8>>,
    ) -> Option<LoadedImage> {
        let ehdr = read(header, 64)?;
        // ELF magic, ELFCLASS64, ELFDATA2LSB.
        if ehdr[..4] != *b"\x7fELF" || ehdr[4] != 2 || ehdr[5] != 1 {
            return None;
        }
        let phoff = u64_at(&ehdr, 0x20)?;
        let phentsize = u16_at(&ehdr, 0x36)? as usize;
        let phnum = (u16_at(&ehdr, 0x38)? as usize).min(MAX_PHDRS);
        if phentsize < 56 {
            return None;
        }
        let phdrs = read(header.checked_add(phoff)?, phentsize * phnum)?;
        let mut segments = Vec::new();
        let mut notes = Vec::new();
        let mut eh_frame_hdr = None;
        for entry in phdrs.chunks_exact(phentsize) {
            let kind = u32_at(entry, 0)?;
            let offset = u64_at(entry, 0x08)?;
            let vaddr = u64_at(entry, 0x10)?;
            let filesz = u64_at(entry, 0x20)?;
            match kind {
                PT_LOAD => segments.push((offset, vaddr, filesz)),
                PT_NOTE => notes.push((vaddr, filesz)),
                PT_GNU_EH_FRAME => eh_frame_hdr = Some((vaddr, filesz)),
                _ => {}
            }
        }
        // The load bias: where the first segment (the one that holds the header) went.
        let first = segments.iter().min_by_key(|s| s.1)?;
        let bias = header.checked_sub(first.1.checked_sub(first.0)?)?;
        let build_id = notes.iter().find_map(|&(vaddr, size)| {
            let bytes = read(bias.checked_add(vaddr)?, (size as usize).min(MAX_NOTES))?;
            gnu_build_id(&bytes)
        });
        Some(LoadedImage {
            build_id,
            segments,
            bias,
            eh_frame_hdr,
        })
    }
}

/// The descriptor of the `GNU` note of type `NT_GNU_BUILD_ID` among `notes`.
fn gnu_build_id(notes: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    while at + 12 <= notes.len() {
        let namesz = u32_at(notes, at)? as usize;
        let descsz = u32_at(notes, at + 4)? as usize;
        let kind = u32_at(notes, at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at + namesz.next_multiple_of(4);
        let end = desc_at.checked_add(descsz)?;
        let name = notes.get(name_at..name_at + namesz)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" {
            return notes.get(desc_at..end).map(<[u8]>::to_vec);
        }
        at = desc_at + descsz.next_multiple_of(4);
    }
    None
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::{Object, ObjectSegment};

    /// This test binary's image in memory says what its file on disk says.
    #[test]
    fn this_process_image_matches_its_file() {
        let me = std::process::id() as Pid;
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let modules = super::super::maps::modules(&super::super::maps::parse_maps(&maps));
        let module = modules
            .iter()
            .find(|m| m.path == exe.to_string_lossy())
            .expect("the test binary is mapped");
        let image = LoadedImage::read(me, module.header.unwrap()).expect("an ELF header");
        let data = std::fs::read(&exe).unwrap();
        let file = object::File::parse(&*data).unwrap();
        assert_eq!(
            image.build_id.as_deref(),
            file.build_id().unwrap(),
            "build-id"
        );
        let segments: Vec<(u64, u64, u64)> = file
            .segments()
            .map(|s| (s.file_range().0, s.address(), s.file_range().1))
            .collect();
        assert_eq!(image.segments, segments);
        let hdr = file.section_by_name(".eh_frame_hdr").map(|s| {
            (
                object::ObjectSection::address(&s),
                object::ObjectSection::size(&s),
            )
        });
        assert_eq!(image.eh_frame_hdr, hdr);
    }

    #[test]
    fn not_an_elf_header() {
        let bytes = vec![0u8; 4096];
        assert_eq!(
            LoadedImage::parse(0, |at, len| bytes
                .get(at as usize..at as usize + len)
                .map(<[u8]>::to_vec)),
            None
        );
    }

    #[test]
    fn build_id_note_among_others() {
        let mut notes = Vec::new();
        // An ABI tag note first, then the build-id.
        for (name, kind, desc) in [
            (&b"GNU\0"[..], 1u32, &[0u8, 0, 0, 0, 3, 0, 0, 0][..]),
            (&b"GNU\0"[..], 3u32, &[0xab, 0xcd, 0xef][..]),
        ] {
            notes.extend((name.len() as u32).to_le_bytes());
            notes.extend((desc.len() as u32).to_le_bytes());
            notes.extend(kind.to_le_bytes());
            notes.extend(name);
            notes.extend(desc);
            notes.resize(notes.len().next_multiple_of(4), 0);
        }
        assert_eq!(gnu_build_id(&notes), Some(vec![0xab, 0xcd, 0xef]));
        assert_eq!(gnu_build_id(&notes[..20]), None);
    }
}
