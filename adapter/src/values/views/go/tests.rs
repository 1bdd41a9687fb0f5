//! Go maps walked over memory the tests lay out, with the types of a real Go program's
//! DWARF: growth (old buckets, entries moved out of them), overflow chains, a Swiss
//! directory naming a table several times, and headers and chains that are garbage.
//! The runtime's layouts of `map[int]int` are written out here (offsets as
//! runtime/map.go and internal/runtime/maps lay them out); the views must read the
//! same from DWARF.

use std::path::{Path, PathBuf};

use crate::values::location::Frame;
use crate::values::test_support::{FileMemory, Program};
use crate::values::views::ChildFilter;
use crate::values::{CompileUnit, Contents, Formatter, Memory, ReadError, RegisterSet, Value};

const SOURCE: &str = r#"package main

var ints map[int]int

func main() {
	ints = map[int]int{1: 1}
	println(len(ints))
}
"#;

/// The program built by `go` (`label` names the build), `None` after saying why not.
fn built(go: Option<PathBuf>, label: &str) -> Option<PathBuf> {
    let Some(go) = go else {
        crate::test_skip::skip_or_fail(&format!("no {label} Go to build the map test program"));
        return None;
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("latch-go-maps-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.go"), SOURCE).unwrap();
    std::fs::write(dir.join("go.mod"), "module gomaps\n\ngo 1.19\n").unwrap();
    let binary = dir.join("maps");
    let output = std::process::Command::new(go)
        .args(["build", "-gcflags=-N -l", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&dir)
        .env("GOCACHE", manifest.join("../target/tmp/go/cache"))
        .env("GOPATH", dir.join("path"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(binary)
}

fn debian_go() -> Option<PathBuf> {
    Some(PathBuf::from("go")).filter(|go| {
        std::process::Command::new(go)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn current_go() -> Option<PathBuf> {
    std::env::var_os("LATCH_CURRENT_GO").map(PathBuf::from)
}

/// Memory the test lays out: regions of bytes; anything else is unreadable.
#[derive(Default)]
struct Laid(Vec<(u64, Vec<u8>)>);

impl Laid {
    fn word(&mut self, address: u64, value: u64) {
        self.bytes(address, &value.to_le_bytes());
    }

    fn bytes(&mut self, address: u64, bytes: &[u8]) {
        for (start, region) in &mut self.0 {
            if address >= *start && address + bytes.len() as u64 <= *start + region.len() as u64 {
                let at = (address - *start) as usize;
                region[at..at + bytes.len()].copy_from_slice(bytes);
                return;
            }
        }
        panic!("no region holds {address:#x}");
    }

    fn region(&mut self, start: u64, len: usize) {
        self.0.push((start, vec![0; len]));
    }
}

impl Memory for Laid {
    fn read(&self, address: u64, into: &mut [u8]) -> Result<(), ReadError> {
        for (start, region) in &self.0 {
            let end = *start + region.len() as u64;
            if address >= *start && address + into.len() as u64 <= end {
                let at = (address - *start) as usize;
                into.copy_from_slice(&region[at..at + into.len()]);
                return Ok(());
            }
        }
        Err(ReadError {
            address,
            len: into.len(),
        })
    }
}

/// The unit of package main and the type of `main.ints`.
fn ints_type(program: &Program) -> (CompileUnit, Option<crate::values::TypeId>) {
    let memory = FileMemory(&program.file);
    let registers = RegisterSet::default();
    let frame = Frame {
        pc: 0,
        registers: &registers,
        memory: &memory,
    };
    for unit in program.units() {
        let globals = unit.global_variables(&frame).unwrap();
        if let Some(ints) = globals.iter().find(|v| v.name == "main.ints") {
            let type_id = ints.value.type_id;
            return (unit, type_id);
        }
    }
    panic!("no main.ints in the program");
}

/// A `map[int]int` whose header is at `address`.
fn map_at(type_id: Option<crate::values::TypeId>, address: u64) -> Value {
    Value::new(type_id, Contents::bytes(address.to_le_bytes().to_vec()))
}

/// Children `start..start + count` of the map's entries: `[key]` -> value.
fn entries(formatter: &Formatter, map: &Value, start: u64, count: u64) -> Vec<(String, String)> {
    formatter
        .filtered_children(map, ChildFilter::Indexed, start, count)
        .iter()
        .map(|child| (child.name.clone(), formatter.summary(&child.value)))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// hmap and bmap of map[int]int (Go 1.23 and earlier).
const COUNT: u64 = 0;
const FLAGS_B: u64 = 8;
const BUCKETS: u64 = 16;
const OLDBUCKETS: u64 = 24;
const BUCKET_SIZE: u64 = 144;
const KEYS: u64 = 8;
const VALUES: u64 = 72;
const OVERFLOW: u64 = 136;

/// One entry of a bucket: its tophash, key and value.
fn bucket_entry(memory: &mut Laid, bucket: u64, slot: u64, tophash: u8, key: u64, value: u64) {
    memory.bytes(bucket + slot, &[tophash]);
    memory.word(bucket + KEYS + 8 * slot, key);
    memory.word(bucket + VALUES + 8 * slot, value);
}

#[test]
fn bucket_maps_growing_with_overflow_and_garbage() {
    let Some(binary) = built(debian_go(), "debian") else {
        return;
    };
    let program = Program::load(&binary);
    let (unit, type_id) = ints_type(&program);
    let mut memory = Laid::default();
    // A map doubling from 1 bucket to 2: the old bucket still holds 10 and marks 11
    // as moved (tophash 2, evacuatedX); 11 is in new bucket 0; 12 in bucket 1 and 13
    // in bucket 1's overflow.
    let (header, buckets, old, overflow) = (0x10000, 0x20000, 0x30000, 0x40000);
    memory.region(header, 48);
    memory.region(buckets, 2 * BUCKET_SIZE as usize);
    memory.region(old, BUCKET_SIZE as usize);
    memory.region(overflow, BUCKET_SIZE as usize);
    memory.word(header + COUNT, 4);
    memory.word(header + FLAGS_B, 1 << 8); // flags 0, B 1
    memory.word(header + BUCKETS, buckets);
    memory.word(header + OLDBUCKETS, old);
    bucket_entry(&mut memory, old, 0, 5, 10, 100);
    bucket_entry(&mut memory, old, 1, 2, 11, 110);
    bucket_entry(&mut memory, buckets, 0, 9, 11, 110);
    bucket_entry(&mut memory, buckets + BUCKET_SIZE, 3, 7, 12, 120);
    memory.word(buckets + BUCKET_SIZE + OVERFLOW, overflow);
    bucket_entry(&mut memory, overflow, 0, 8, 13, 130);

    let formatter = Formatter::new(&unit, &memory);
    let map = map_at(type_id, header);
    assert_eq!(
        formatter.summary(&map),
        "map[int]int [10: 100, 11: 110, 12: 120, 13: 130]"
    );
    assert_eq!(
        entries(&formatter, &map, 1, 2),
        pairs(&[("[11]", "110"), ("[12]", "120")])
    );
    let view = crate::values::views::view_of(&formatter, &map).unwrap();
    let int = unit.types.named("int").unwrap();
    let key = Value::new(Some(int), Contents::bytes(13u64.to_le_bytes().to_vec()));
    let found = view.index(&formatter, &key).unwrap().unwrap();
    assert_eq!(formatter.summary(&found), "130");
    let missing = Value::new(Some(int), Contents::bytes(14u64.to_le_bytes().to_vec()));
    let why = view.index(&formatter, &missing).unwrap().unwrap_err();
    assert!(why.contains("no key 14"), "{why}");

    // The overflow bucket is its own overflow: a cycle, said after its entry (when
    // the count asks for more entries than the walk found before it).
    memory.word(overflow + OVERFLOW, overflow);
    memory.word(header + COUNT, 100);
    let formatter = Formatter::new(&unit, &memory);
    let text = formatter.summary(&map);
    assert!(
        text.starts_with("map[int]int [10: 100, 11: 110, 12: 120, 13: 130, <error: a cycle"),
        "{text}"
    );
    memory.word(overflow + OVERFLOW, 0);

    // More entries counted than there are: the page says so instead of inventing.
    memory.word(header + COUNT, 6);
    let formatter = Formatter::new(&unit, &memory);
    let page = entries(&formatter, &map, 3, 3);
    assert_eq!(page[0], ("[13]".to_string(), "130".to_string()));
    assert!(
        page[1].1.contains("says it has 6 entries; 4 were found"),
        "{page:?}"
    );

    // 2^63 buckets, and buckets that cannot be read: errors, not walks.
    memory.word(header + FLAGS_B, 63 << 8);
    let formatter = Formatter::new(&unit, &memory);
    assert!(formatter
        .summary(&map)
        .contains("<error: a corrupt map: 2^63 buckets>"));
    memory.word(header + FLAGS_B, 1 << 8);
    memory.word(header + OLDBUCKETS, 0);
    memory.word(header + BUCKETS, 0xdead_0000);
    let formatter = Formatter::new(&unit, &memory);
    let text = formatter.summary(&map);
    assert!(text.contains("<error: bucket at 0xdead0000"), "{text}");
    let _ = std::fs::remove_dir_all(binary.parent().unwrap());
}

// Map, table and group of map[int]int (Go 1.24 and later, Swiss tables).
const USED: u64 = 0;
const DIR_PTR: u64 = 16;
const DIR_LEN: u64 = 24;
const GROUP_SIZE: u64 = 136;
const TABLE_GROUPS: u64 = 16;
const TABLE_MASK: u64 = 24;

/// A group whose control bytes are `ctrl` (0x80 empty, 0xfe deleted, else full), slot
/// i holding key `base + i` and value `10 * (base + i)`.
fn group(memory: &mut Laid, at: u64, ctrl: [u8; 8], base: u64) {
    memory.bytes(at, &ctrl);
    for slot in 0..8 {
        memory.word(at + 8 + 16 * slot, base + slot);
        memory.word(at + 16 + 16 * slot, 10 * (base + slot));
    }
}

const EMPTY: u8 = 0x80;
const DELETED: u8 = 0xfe;

#[test]
fn swiss_maps_small_directory_and_garbage() {
    let Some(binary) = built(current_go(), "current") else {
        return;
    };
    let program = Program::load(&binary);
    let (unit, type_id) = ints_type(&program);
    let mut memory = Laid::default();
    let header = 0x10000;
    memory.region(header, 48);
    let map = map_at(type_id, header);

    // A small map: one group, its full slots only.
    let small = 0x20000;
    memory.region(small, GROUP_SIZE as usize);
    group(
        &mut memory,
        small,
        [0x01, EMPTY, DELETED, 0x22, EMPTY, EMPTY, EMPTY, EMPTY],
        1,
    );
    memory.word(header + USED, 2);
    memory.word(header + DIR_PTR, small);
    memory.word(header + DIR_LEN, 0);
    let formatter = Formatter::new(&unit, &memory);
    assert_eq!(formatter.summary(&map), "map[int]int [1: 10, 4: 40]");

    // A directory of 4 slots naming table A twice and B twice: each table walked once.
    // A has 2 groups, B 1.
    let (directory, table_a, table_b, groups_a, groups_b) =
        (0x30000, 0x40000, 0x41000, 0x50000, 0x60000);
    memory.region(directory, 32);
    memory.region(table_a, 32);
    memory.region(table_b, 32);
    memory.region(groups_a, 2 * GROUP_SIZE as usize);
    memory.region(groups_b, GROUP_SIZE as usize);
    for (slot, table) in [table_a, table_a, table_b, table_b].iter().enumerate() {
        memory.word(directory + 8 * slot as u64, *table);
    }
    memory.word(table_a + TABLE_GROUPS, groups_a);
    memory.word(table_a + TABLE_MASK, 1);
    memory.word(table_b + TABLE_GROUPS, groups_b);
    memory.word(table_b + TABLE_MASK, 0);
    let one_full = [0x11, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, EMPTY];
    group(&mut memory, groups_a, one_full, 100);
    group(&mut memory, groups_a + GROUP_SIZE, one_full, 200);
    group(&mut memory, groups_b, one_full, 300);
    memory.word(header + USED, 3);
    memory.word(header + DIR_PTR, directory);
    memory.word(header + DIR_LEN, 4);
    let formatter = Formatter::new(&unit, &memory);
    assert_eq!(
        formatter.summary(&map),
        "map[int]int [100: 1000, 200: 2000, 300: 3000]"
    );
    assert_eq!(
        entries(&formatter, &map, 2, 10),
        pairs(&[("[300]", "3000")])
    );

    // Garbage: a directory of 2^40 tables, a table of 2^40 groups.
    memory.word(header + DIR_LEN, 1 << 40);
    let formatter = Formatter::new(&unit, &memory);
    let text = formatter.summary(&map);
    assert!(
        text.contains("<error: a corrupt map: a directory of 1099511627776 tables>"),
        "{text}"
    );
    memory.word(header + DIR_LEN, 4);
    memory.word(table_b + TABLE_MASK, (1 << 40) - 1);
    let formatter = Formatter::new(&unit, &memory);
    let text = formatter.summary(&map);
    assert!(
        text.ends_with("200: 2000, <error: a corrupt map: a table of 1099511627776 groups>]"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(binary.parent().unwrap());
}
