//! The target's code as it runs against its files on disk: after latch detaches, every
//! executable mapping of a file must hold the file's bytes (no `int3` left, no
//! displaced-stepping slot left), and no thread may be stopped or traced.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use super::procfs;

/// Every executable mapping of a file in `pid` holds the file's bytes.
pub fn assert_code_as_in_files(pid: i32) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut memory = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut checked = 0;
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || !fields[1].contains('x') || !fields[5].starts_with('/') {
            continue;
        }
        let (start, end) = fields[0].split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let offset = u64::from_str_radix(fields[2], 16).unwrap();
        let Ok(file) = std::fs::read(fields[5]) else {
            continue;
        };
        let in_file = file
            .len()
            .saturating_sub(offset as usize)
            .min((end - start) as usize);
        let mut mapped = vec![0u8; in_file];
        memory.seek(SeekFrom::Start(start)).unwrap();
        memory.read_exact(&mut mapped).unwrap();
        let expected = &file[offset as usize..offset as usize + in_file];
        if let Some(at) = mapped.iter().zip(expected).position(|(a, b)| a != b) {
            panic!(
                "{}: the code at {:#x} is {:#04x} in memory but {:#04x} in the file",
                fields[5],
                start + at as u64,
                mapped[at],
                expected[at]
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no executable file mapping in {pid}:\n{maps}");
}

/// No thread of `pid` is stopped or traced (a detach is asynchronous: polled), and the
/// process is alive.
pub fn assert_released(pid: i32) {
    let released = procfs::wait_for(Duration::from_secs(5), || {
        let tasks = procfs::all_tasks(pid);
        !tasks.is_empty()
            && tasks
                .iter()
                .all(|t| t.tracer_pid == 0 && !matches!(t.state, 't' | 'T' | 'Z' | 'X'))
    });
    assert!(released, "{:?}", procfs::all_tasks(pid));
}
