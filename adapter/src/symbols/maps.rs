//! `/proc/PID/maps` as modules: the executable, each shared library and the vDSO, with
//! the mappings that say where each part of the file lies in memory.

/// One file-backed (or vDSO) mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
    pub executable: bool,
    /// The device (major, minor) and inode of the mapped file, as the kernel saw them
    /// when it mapped it: what tells the mapped file from another one at the same path.
    pub device: (u32, u32),
    pub inode: u64,
    pub path: String,
}

/// Mappings of files and of the vDSO; anonymous memory, the stack, the heap and the
/// legacy `[vsyscall]` page are left out because no symbols describe them.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let offset = fields.next()?;
            let device = fields.next()?;
            let inode = fields.next()?;
            let path = fields.collect::<Vec<_>>().join(" ");
            if path.is_empty() || (path.starts_with('[') && path != VDSO) {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let (major, minor) = device.split_once(':')?;
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                file_offset: u64::from_str_radix(offset, 16).ok()?,
                executable: perms.contains('x'),
                device: (
                    u32::from_str_radix(major, 16).ok()?,
                    u32::from_str_radix(minor, 16).ok()?,
                ),
                inode: inode.parse().ok()?,
                path,
            })
        })
        .collect()
}

pub const VDSO: &str = "[vdso]";

/// A file mapped into the process with at least one executable mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// As `/proc/PID/maps` names it (may end in " (deleted)").
    pub path: String,
    /// Lowest and highest address of all its mappings.
    pub start: u64,
    pub end: u64,
    /// Where the file's first page (its ELF header) is mapped, when it is.
    pub header: Option<u64>,
    /// Its executable mappings, where a program counter can be.
    pub code: Vec<Mapping>,
}

impl Module {
    pub fn is_vdso(&self) -> bool {
        self.path == VDSO
    }

    /// The dynamic loader (`ld-linux-x86-64.so.2`, `ld-musl-x86_64.so.1`): a running
    /// process is rarely in its code, except while it loads a library or binds a symbol.
    pub fn is_dynamic_loader(&self) -> bool {
        let name = self.name();
        name.starts_with("ld-linux") || name.starts_with("ld-musl") || name.starts_with("ld.so")
    }

    /// `/proc/PID/maps` appends " (deleted)" to a file unlinked since it was mapped: the
    /// path may now name another file, or none.
    pub fn is_deleted(&self) -> bool {
        self.path.ends_with(" (deleted)")
    }

    /// The device and inode of the mapped file.
    pub fn file_id(&self) -> Option<((u32, u32), u64)> {
        self.code.first().map(|m| (m.device, m.inode))
    }

    pub fn name(&self) -> &str {
        let path = self.path.trim_end_matches(" (deleted)");
        path.rsplit('/').next().unwrap_or(path)
    }

    pub fn contains_code(&self, address: u64) -> bool {
        self.code
            .iter()
            .any(|m| address >= m.start && address < m.end)
    }

    /// The file offset that `address` was loaded from.
    pub fn file_offset(&self, address: u64) -> Option<u64> {
        self.code
            .iter()
            .find(|m| address >= m.start && address < m.end)
            .map(|m| address - m.start + m.file_offset)
    }
}

/// Groups mappings by file (path, device and inode: an old copy of a library and the
/// new one at the same path are two modules), keeping files that have code, in address
/// order.
pub fn modules(mappings: &[Mapping]) -> Vec<Module> {
    let mut modules: Vec<Module> = Vec::new();
    let mut files: Vec<((u32, u32), u64)> = Vec::new();
    for mapping in mappings {
        let file = (mapping.device, mapping.inode);
        let found = modules
            .iter()
            .zip(&files)
            .position(|(m, f)| m.path == mapping.path && *f == file);
        let module = match found {
            Some(at) => &mut modules[at],
            None => {
                modules.push(Module {
                    path: mapping.path.clone(),
                    start: mapping.start,
                    end: mapping.end,
                    header: None,
                    code: Vec::new(),
                });
                files.push(file);
                modules.last_mut().expect("just pushed")
            }
        };
        module.start = module.start.min(mapping.start);
        module.end = module.end.max(mapping.end);
        if mapping.file_offset == 0 && module.header.is_none() {
            module.header = Some(mapping.start);
        }
        if mapping.executable {
            module.code.push(mapping.clone());
        }
    }
    modules.retain(|m| !m.code.is_empty());
    modules.sort_by_key(|m| m.start);
    modules
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 123 /usr/bin/x\n\
                        55d0c0a01000-55d0c0a05000 r-xp 00001000 fd:01 123 /usr/bin/x\n\
                        55d0c0a05000-55d0c0a06000 rw-p 00005000 fd:01 123 /usr/bin/x\n\
                        7f0000000000-7f0000001000 rw-p 00000000 00:00 0\n\
                        7f0000100000-7f0000101000 r--p 00000000 fd:01 9 /usr/share/locale/data\n\
                        7ffd1000-7ffd3000 r-xp 00000000 00:00 0 [vdso]\n\
                        7ffd0000-7ffd1000 r--p 00000000 00:00 0 [vvar]\n\
                        ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n\
                        7f0000200000-7f0000201000 r-xp 00000000 fd:01 7 /tmp/my prog (deleted)\n";

    #[test]
    fn modules_group_mappings_of_files_with_code() {
        let modules = modules(&parse_maps(MAPS));
        let names: Vec<_> = modules.iter().map(|m| m.name()).collect();
        assert_eq!(names, ["[vdso]", "x", "my prog"]);
        let exe = &modules[1];
        assert_eq!((exe.start, exe.end), (0x55d0c0a00000, 0x55d0c0a06000));
        assert_eq!(exe.file_offset(0x55d0c0a01010), Some(0x1010));
        assert_eq!(exe.file_offset(0x55d0c0a00010), None, "not code");
        assert!(modules[0].is_vdso());
        assert_eq!(exe.header, Some(0x55d0c0a00000));
        assert_eq!(exe.file_id(), Some(((0xfd, 1), 123)));
        assert!(modules[2].is_deleted() && !exe.is_deleted());
    }

    #[test]
    fn an_old_and_a_new_copy_at_one_path_are_two_modules() {
        let maps = "1000-2000 r-xp 00000000 fd:01 7 /lib/libz.so (deleted)\n\
                    3000-4000 r-xp 00000000 fd:01 7 /lib/libz.so (deleted)\n\
                    5000-6000 r-xp 00000000 fd:01 8 /lib/libz.so (deleted)\n";
        let modules = modules(&parse_maps(maps));
        assert_eq!(modules.len(), 2, "{modules:#?}");
        assert_eq!(modules[0].code.len(), 2);
        assert_eq!(modules[1].file_id(), Some(((0xfd, 1), 8)));
    }
}
