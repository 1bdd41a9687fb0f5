//! A stopped Go program's goroutines, read as the runtime keeps them: the slice
//! `runtime.allgs` of every `g` ever made, each `g` read through the runtime's own DWARF
//! types, so that field offsets follow the Go version (Go 1.19's `g` and Go 1.27's differ
//! in size and order). Wait reasons are the runtime's own words, read from its array
//! `runtime.waitReasonStrings` in the program's memory, not from a table of ours.
//!
//! Learnt from Delve (pkg/proc/variables.go `loadG`, goroutine.go), written anew. What is
//! read is bounded: at most `MAX_GOROUTINES` goroutines, short strings, a few labels.

use std::rc::Rc;

use gimli::{AttributeValue, RunTimeEndian};
use rustc_hash::FxHashMap;

/// DWARF read from sections inflated for the while the layout is read, then freed: a
/// large Go program's `.debug_info` is tens of MiB inflated, and only a few types are
/// wanted from it.
type Reader<'a> = gimli::EndianSlice<'a, RunTimeEndian>;

/// The sections the types and variables are read from (not the ranges, locations or
/// frame tables), inflated.
struct Sections(Vec<(gimli::SectionId, std::borrow::Cow<'static, [u8]>)>);

impl Sections {
    fn load(file: &object::File<'static>) -> Sections {
        use object::{Object, ObjectSection};
        let wanted = [
            gimli::SectionId::DebugAbbrev,
            gimli::SectionId::DebugInfo,
            gimli::SectionId::DebugStr,
            gimli::SectionId::DebugStrOffsets,
            gimli::SectionId::DebugLineStr,
            gimli::SectionId::DebugAddr,
            // Each unit's line program header is read with the unit.
            gimli::SectionId::DebugLine,
        ];
        Sections(
            wanted
                .into_iter()
                .filter_map(|id| {
                    let section = file.section_by_name(id.name())?;
                    Some((id, section.uncompressed_data().ok()?))
                })
                .collect(),
        )
    }

    fn get(&self, id: gimli::SectionId) -> &[u8] {
        self.0
            .iter()
            .find(|(have, _)| *have == id)
            .map_or(&[][..], |(_, data)| data)
    }
}

/// The most goroutines one listing reads: a program with more is shown in part.
pub const MAX_GOROUTINES: usize = 1 << 20;
/// The longest wait reason, label key or value read (Go's are a few dozen bytes).
const MAX_STRING: u64 = 4096;
/// The most pprof labels read of one goroutine.
const MAX_LABELS: u64 = 64;
/// How many `g`s one system call reads (the kernel takes at most 1024 pieces).
const BATCH: usize = 512;

/// `_Gscan`: the bit the garbage collector sets on a status while it scans the stack.
const G_SCAN: u32 = 0x1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Idle,
    Runnable,
    Running,
    Syscall,
    Waiting,
    Dead,
    Copystack,
    Preempted,
    /// Go 1.25 and later: a goroutine the garbage collector found blocked for good.
    Leaked,
    Other(u32),
}

impl Status {
    /// From `g.atomicstatus` (runtime2.go's `_Gidle` ... `_Gleaked`), the scan bit dropped.
    pub fn from_raw(raw: u32) -> Status {
        match raw & !G_SCAN {
            0 => Status::Idle,
            1 => Status::Runnable,
            2 => Status::Running,
            3 => Status::Syscall,
            4 => Status::Waiting,
            // _Gdeadextra (Go 1.26): dead, kept for a cgo callback's thread.
            6 | 11 => Status::Dead,
            8 => Status::Copystack,
            9 => Status::Preempted,
            10 => Status::Leaked,
            other => Status::Other(other),
        }
    }

    /// As Go's tracebacks name the state (`gStatusStrings`).
    pub fn name(&self) -> String {
        match self {
            Status::Idle => "idle".into(),
            Status::Runnable => "runnable".into(),
            Status::Running => "running".into(),
            Status::Syscall => "syscall".into(),
            Status::Waiting => "waiting".into(),
            Status::Dead => "dead".into(),
            Status::Copystack => "copystack".into(),
            Status::Preempted => "preempted".into(),
            Status::Leaked => "leaked".into(),
            Status::Other(raw) => format!("status {raw}"),
        }
    }
}

/// Where a goroutine that does not run was stopped (`g.sched`, a `gobuf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Saved {
    pub pc: u64,
    pub sp: u64,
    pub bp: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goroutine {
    /// `g.goid`.
    pub id: i64,
    pub status: Status,
    /// Go's words for why a waiting goroutine waits (`chan receive`, `sync.Mutex.Lock`).
    pub wait_reason: Option<String>,
    /// `g.waitsince`, CLOCK_MONOTONIC nanoseconds (`runtime.nanotime`), when recorded.
    pub waiting_since_ns: Option<i64>,
    /// The OS thread running it (`g.m.procid`), when it has one.
    pub thread: Option<i32>,
    pub saved: Saved,
    /// In a system call or in C code (cgo), where its Go frames go on: below the C
    /// frames of its thread, Go's traceback shows the goroutine's stack from here.
    pub in_syscall: Option<Saved>,
    /// The return address of the `go` statement that created it (`g.gopc`).
    pub go_pc: u64,
    /// The function it started in (`g.startpc`).
    pub start_pc: u64,
    /// pprof labels (`runtime/pprof.Do`), in the runtime's order.
    pub labels: Vec<(String, String)>,
    /// A goroutine of the runtime's own, as `runtime.isSystemGoroutine` decides: Go's
    /// tracebacks of all goroutines leave these out.
    pub system: bool,
    /// Where the `g` is in memory.
    pub address: u64,
}

impl Goroutine {
    /// The state as a Go traceback's header shows it: the wait reason of a waiting
    /// goroutine, else the status.
    pub fn state(&self) -> String {
        match (&self.wait_reason, self.status) {
            (Some(reason), Status::Waiting | Status::Leaked) => reason.clone(),
            _ => self.status.name(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoroutinesError {
    #[error(
        "goroutines need the program's DWARF (it was built with -ldflags=-w, or stripped): \
         showing its threads instead"
    )]
    NoDwarf,
    #[error("the program's DWARF does not describe Go's runtime as expected: {0}")]
    Layout(String),
    #[error("cannot read the Go runtime's memory: {0}")]
    Memory(String),
    #[error("not a Go program")]
    NotGo,
}

/// A field of a struct: where it is and how many bytes it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    offset: u64,
    size: u64,
}

impl Field {
    fn read(&self, bytes: &[u8]) -> Option<u64> {
        let start = usize::try_from(self.offset).ok()?;
        let size = usize::try_from(self.size).ok()?;
        let raw = bytes.get(start..start.checked_add(size)?)?;
        let mut word = [0u8; 8];
        word.get_mut(..size)?.copy_from_slice(raw);
        Some(u64::from_le_bytes(word))
    }
}

/// How pprof labels hang off `g.labels`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelLayout {
    /// Go 1.21 and later: `*labelMap`, a struct whose first field is a slice of
    /// key/value string pairs; the offset of that slice in the struct, and of each
    /// pair's key and value.
    Slice {
        list: u64,
        pair_size: u64,
        key: u64,
        value: u64,
    },
    /// Go 1.20 and earlier: `*labelMap`, a `map[string]string` (a pointer to the map's
    /// `hmap`): fields of the hmap and of its buckets.
    Map {
        count: Field,
        log2_buckets: Field,
        buckets: u64,
        old_buckets: u64,
        bucket_size: u64,
        top_hash: u64,
        keys: u64,
        values: u64,
        overflow: u64,
    },
}

/// What the runtime's DWARF says about the data goroutines are read from; read once
/// per module (`ModuleInfo::go_runtime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLayout {
    /// `runtime.allgs`, a `[]*g` (file numbering).
    allgs: u64,
    /// `runtime.waitReasonStrings` (file numbering) and its length.
    wait_reasons: Option<(u64, u64)>,
    g_size: u64,
    goid: Field,
    status: Field,
    wait_reason: Field,
    wait_since: Option<Field>,
    m: Field,
    sched_pc: Field,
    sched_sp: Field,
    sched_bp: Field,
    /// `g.syscallsp`, `g.syscallpc` and (Go 1.23 and later) `g.syscallbp`: where a
    /// goroutine in a system call or in C code (cgo) left its Go stack.
    syscall_sp: Option<Field>,
    syscall_pc: Option<Field>,
    syscall_bp: Option<Field>,
    go_pc: Field,
    start_pc: Field,
    labels: Option<Field>,
    m_procid: Field,
    label_layout: Option<LabelLayout>,
    /// Where the runtime says that the finalizer goroutine runs a finalizer: a
    /// variable (file numbering), its value's field, and the bit that says so
    /// (`fingRunning bool` before Go 1.21; `fingStatus`'s `fingRunningFinalizer` since).
    finalizer_flag: Option<(u64, Field, u64)>,
    /// `g.runningCleanups` (Go 1.24 and later).
    running_cleanups: Option<Field>,
}

/// The names looked for among the DWARF's top-level entries.
const WANTED: &[&str] = &[
    "runtime.g",
    "runtime.m",
    "runtime.gobuf",
    "runtime.allgs",
    "runtime.waitReasonStrings",
    "runtime.fingRunning",
    "runtime.fingStatus",
    "runtime/pprof.labelMap",
    "internal/runtime/pprof/label.Label",
    "runtime/pprof.label",
    "hash<string,string>",
    "bucket<string,string>",
];

/// The DWARF of one Go program, indexed by the few names above.
struct Types<'a> {
    dwarf: gimli::Dwarf<Reader<'a>>,
    units: Vec<gimli::Unit<Reader<'a>>>,
    /// Name to (tag, global `.debug_info` offset); a structure wins over a typedef.
    named: FxHashMap<&'static str, (gimli::DwTag, usize)>,
}

fn layout_error(what: impl Into<String>) -> GoroutinesError {
    GoroutinesError::Layout(what.into())
}

/// Adds the unit's top-level entries named in `WANTED` to `named`.
fn index_unit(
    dwarf: &gimli::Dwarf<Reader<'_>>,
    unit: &gimli::Unit<Reader<'_>>,
    named: &mut FxHashMap<&'static str, (gimli::DwTag, usize)>,
) {
    let base = unit.header.offset().0;
    let mut entries = unit.entries();
    while let Ok(Some(entry)) = entries.next_dfs() {
        if entry.depth() != 1 {
            continue;
        }
        let tag = entry.tag();
        if !matches!(
            tag,
            gimli::DW_TAG_structure_type | gimli::DW_TAG_typedef | gimli::DW_TAG_variable
        ) {
            continue;
        }
        let Some(name) = entry
            .attr_value(gimli::DW_AT_name)
            .and_then(|v| dwarf.attr_string(unit, v).ok())
        else {
            continue;
        };
        let Some(wanted) = WANTED.iter().find(|w| w.as_bytes() == name.slice()) else {
            continue;
        };
        let offset = base + entry.offset().0;
        if !matches!(named.get(wanted), Some((gimli::DW_TAG_structure_type, _))) {
            named.insert(*wanted, (tag, offset));
        }
    }
}

impl<'a> Types<'a> {
    fn load(sections: &'a Sections) -> Result<Types<'a>, GoroutinesError> {
        let endian = RunTimeEndian::Little;
        let dwarf = gimli::Dwarf::load(|id| -> Result<Reader<'a>, gimli::Error> {
            Ok(gimli::EndianSlice::new(sections.get(id), endian))
        })
        .map_err(|e| layout_error(e.to_string()))?;
        let mut units = Vec::new();
        let mut named = FxHashMap::default();
        let mut headers = dwarf.units();
        while let Some(header) = headers.next().map_err(|e| layout_error(e.to_string()))? {
            units.push(
                dwarf
                    .unit(header)
                    .map_err(|e| layout_error(e.to_string()))?,
            );
        }
        // Go's linker writes the runtime's variables and every type into units named
        // "runtime": those first, the rest only when they lack what is looked for.
        let is_runtime = |unit: &gimli::Unit<Reader<'a>>| {
            let mut entries = unit.entries();
            let root = entries.next_dfs().ok().flatten();
            root.and_then(|root| root.attr_value(gimli::DW_AT_name))
                .and_then(|v| dwarf.attr_string(unit, v).ok())
                .is_some_and(|name| name.slice() == b"runtime")
        };
        let (runtime, rest): (Vec<&gimli::Unit<Reader<'a>>>, Vec<_>) =
            units.iter().partition(|unit| is_runtime(unit));
        for unit in &runtime {
            index_unit(&dwarf, unit, &mut named);
        }
        if !named.contains_key("runtime.g") || !named.contains_key("runtime.allgs") {
            for unit in &rest {
                index_unit(&dwarf, unit, &mut named);
            }
        }
        Ok(Types {
            dwarf,
            units,
            named,
        })
    }

    /// The unit holding the entry at `offset` (global), and the entry's offset in it.
    fn locate(&self, offset: usize) -> Option<(&gimli::Unit<Reader<'a>>, gimli::UnitOffset)> {
        self.units.iter().find_map(|unit| {
            let at = gimli::DebugInfoOffset(offset).to_unit_offset(&unit.header)?;
            Some((unit, at))
        })
    }

    /// A reference attribute as a global offset.
    fn reference(
        unit: &gimli::Unit<Reader<'a>>,
        value: AttributeValue<Reader<'a>>,
    ) -> Option<usize> {
        match value {
            AttributeValue::UnitRef(at) => Some(at.to_debug_info_offset(&unit.header)?.0),
            AttributeValue::DebugInfoRef(at) => Some(at.0),
            _ => None,
        }
    }

    fn attribute(&self, offset: usize, name: gimli::DwAt) -> Option<AttributeValue<Reader<'a>>> {
        let (unit, at) = self.locate(offset)?;
        let entry = unit.entry(at).ok()?;
        entry.attr_value(name)
    }

    /// The entry `DW_AT_type` of the entry at `offset` refers to.
    fn type_of(&self, offset: usize) -> Option<usize> {
        let (unit, at) = self.locate(offset)?;
        let entry = unit.entry(at).ok()?;
        Self::reference(unit, entry.attr_value(gimli::DW_AT_type)?)
    }

    fn tag(&self, offset: usize) -> Option<gimli::DwTag> {
        let (unit, at) = self.locate(offset)?;
        Some(unit.entry(at).ok()?.tag())
    }

    /// Through typedefs to the type itself (a chain of a few; a loop is a bad file).
    fn strip_typedefs(&self, mut offset: usize) -> usize {
        for _ in 0..8 {
            if self.tag(offset) != Some(gimli::DW_TAG_typedef) {
                break;
            }
            match self.type_of(offset) {
                Some(next) => offset = next,
                None => break,
            }
        }
        offset
    }

    fn byte_size(&self, offset: usize) -> Option<u64> {
        let offset = self.strip_typedefs(offset);
        match self.attribute(offset, gimli::DW_AT_byte_size) {
            Some(size) => size.udata_value(),
            // Go's pointer types say no size: an address's.
            None => (self.tag(offset)? == gimli::DW_TAG_pointer_type).then_some(8),
        }
    }

    /// The members of the struct at `offset`: name, offset in the struct, type.
    fn members(&self, offset: usize) -> Vec<(String, u64, usize)> {
        let offset = self.strip_typedefs(offset);
        let Some((unit, at)) = self.locate(offset) else {
            return Vec::new();
        };
        let Ok(mut tree) = unit.entries_tree(Some(at)) else {
            return Vec::new();
        };
        let Ok(root) = tree.root() else {
            return Vec::new();
        };
        let mut children = root.children();
        let mut out = Vec::new();
        while let Ok(Some(child)) = children.next() {
            let entry = child.entry();
            if entry.tag() != gimli::DW_TAG_member {
                continue;
            }
            let name = entry
                .attr_value(gimli::DW_AT_name)
                .and_then(|v| self.dwarf.attr_string(unit, v).ok())
                .map(|n| n.to_string_lossy().into_owned());
            let location = entry
                .attr_value(gimli::DW_AT_data_member_location)
                .and_then(|v| v.udata_value());
            let kind = entry
                .attr_value(gimli::DW_AT_type)
                .and_then(|v| Self::reference(unit, v));
            if let (Some(name), Some(location), Some(kind)) = (name, location, kind) {
                out.push((name, location, kind));
            }
        }
        out
    }

    /// The member `name` of the struct at `offset`: its place and its type.
    fn member(&self, offset: usize, name: &str) -> Option<(u64, usize)> {
        self.members(offset)
            .into_iter()
            .find(|(n, ..)| n == name)
            .map(|(_, at, kind)| (at, kind))
    }

    /// A field of a scalar type (or of a struct wrapping one, as `atomic.Uint32` wraps
    /// its `value`, which Go 1.20 and later use for `g.atomicstatus`).
    fn scalar(&self, structure: usize, name: &str) -> Result<Field, GoroutinesError> {
        let (offset, kind) = self
            .member(structure, name)
            .ok_or_else(|| layout_error(format!("no field {name}")))?;
        let (offset, kind) = self
            .unwrap_value(offset, kind)
            .ok_or_else(|| layout_error(format!("field {name} has no value")))?;
        let size = self
            .byte_size(kind)
            .filter(|s| matches!(s, 1 | 2 | 4 | 8))
            .ok_or_else(|| layout_error(format!("field {name} is not a number")))?;
        Ok(Field { offset, size })
    }

    /// Into structs that wrap one value (`atomic.Uint32`'s `value`, `atomic.Bool`'s `u`)
    /// down to the value: its offset (from `offset` on) and type.
    fn unwrap_value(&self, mut offset: u64, mut kind: usize) -> Option<(u64, usize)> {
        for _ in 0..4 {
            let stripped = self.strip_typedefs(kind);
            if self.tag(stripped) != Some(gimli::DW_TAG_structure_type) {
                break;
            }
            let (inner, inner_kind) = self.member(stripped, "value").or_else(|| {
                // A struct of one scalar and zero-sized markers (noCopy, align64).
                self.members(stripped)
                    .into_iter()
                    .find(|(_, _, k)| self.byte_size(*k).unwrap_or(0) > 0)
                    .map(|(_, at, k)| (at, k))
            })?;
            offset += inner;
            kind = inner_kind;
        }
        Some((offset, kind))
    }

    fn named(&self, name: &str) -> Option<usize> {
        self.named.get(name).map(|(_, offset)| *offset)
    }

    fn structure(&self, name: &str) -> Result<usize, GoroutinesError> {
        self.named(name)
            .ok_or_else(|| layout_error(format!("no type {name}")))
    }

    /// The address of a variable (`DW_OP_addr`).
    fn variable(&self, name: &str) -> Option<u64> {
        let offset = self.named(name)?;
        let AttributeValue::Exprloc(expression) = self.attribute(offset, gimli::DW_AT_location)?
        else {
            return None;
        };
        let bytes = expression.0.slice();
        match bytes {
            [0x03, address @ ..] if address.len() == 8 => {
                Some(u64::from_le_bytes(address.try_into().ok()?))
            }
            _ => None,
        }
    }

    /// See `RuntimeLayout::finalizer_flag`.
    fn finalizer_flag(&self) -> Option<(u64, Field, u64)> {
        // fingRunningFinalizer = 1 << 1 (mfinal.go), a constant DWARF does not carry.
        let (name, mask) = [("runtime.fingStatus", 2), ("runtime.fingRunning", 1)]
            .into_iter()
            .find(|(name, _)| self.named(name).is_some())?;
        let at = self.variable(name)?;
        let kind = self.type_of(self.named(name)?)?;
        let (offset, kind) = self.unwrap_value(0, kind)?;
        let size = self
            .byte_size(kind)
            .filter(|s| matches!(s, 1 | 2 | 4 | 8))?;
        Some((at, Field { offset, size }, mask))
    }

    fn label_layout(&self) -> Option<LabelLayout> {
        let label_map = self.named("runtime/pprof.labelMap")?;
        let stripped = self.strip_typedefs(label_map);
        if self.tag(stripped) == Some(gimli::DW_TAG_structure_type) {
            // labelMap{Set{List []Label}} (Go 1.24+) or labelMap{LabelSet{list []label}}.
            let mut list = 0;
            let mut at = stripped;
            for _ in 0..4 {
                let members = self.members(at);
                let (_, offset, kind) = members.first()?.clone();
                list += offset;
                let kind = self.strip_typedefs(kind);
                if self.tag(kind) == Some(gimli::DW_TAG_structure_type)
                    && self
                        .members(kind)
                        .first()
                        .is_some_and(|(n, ..)| n == "array")
                {
                    break;
                }
                at = kind;
            }
            let pair = ["internal/runtime/pprof/label.Label", "runtime/pprof.label"]
                .iter()
                .find_map(|name| self.named(name))?;
            Some(LabelLayout::Slice {
                list,
                pair_size: self.byte_size(pair)?,
                key: self.member(pair, "key").or(self.member(pair, "Key"))?.0,
                value: self.member(pair, "value").or(self.member(pair, "Value"))?.0,
            })
        } else {
            let hash = self.named("hash<string,string>")?;
            let bucket = self.named("bucket<string,string>")?;
            let field = |name: &str| self.scalar(hash, name).ok();
            Some(LabelLayout::Map {
                count: field("count")?,
                log2_buckets: field("B")?,
                buckets: self.member(hash, "buckets")?.0,
                old_buckets: self.member(hash, "oldbuckets")?.0,
                bucket_size: self.byte_size(bucket)?,
                top_hash: self.member(bucket, "tophash")?.0,
                keys: self.member(bucket, "keys")?.0,
                values: self.member(bucket, "values")?.0,
                overflow: self.member(bucket, "overflow")?.0,
            })
        }
    }
}

impl RuntimeLayout {
    /// Reads the layout from the DWARF in `data` (an ELF file); `None` for no DWARF.
    pub fn from_dwarf(data: Option<&'static [u8]>) -> Result<RuntimeLayout, GoroutinesError> {
        let data = data.ok_or(GoroutinesError::NoDwarf)?;
        let file = object::File::parse(data).map_err(|e| layout_error(e.to_string()))?;
        let sections = Sections::load(&file);
        let types = Types::load(&sections)?;
        let g = types.structure("runtime.g").map_err(|_| {
            if types.named.is_empty() {
                GoroutinesError::NotGo
            } else {
                layout_error("no type runtime.g")
            }
        })?;
        let m = types.structure("runtime.m")?;
        let gobuf = types.structure("runtime.gobuf")?;
        let (sched, _) = types
            .member(g, "sched")
            .ok_or_else(|| layout_error("no field sched"))?;
        let in_sched = |name: &str| -> Result<Field, GoroutinesError> {
            let field = types.scalar(gobuf, name)?;
            Ok(Field {
                offset: sched + field.offset,
                ..field
            })
        };
        let allgs = types
            .variable("runtime.allgs")
            .ok_or_else(|| layout_error("no variable runtime.allgs"))?;
        let wait_reasons = types.variable("runtime.waitReasonStrings").and_then(|at| {
            let kind = types.type_of(types.named("runtime.waitReasonStrings")?)?;
            Some((at, types.byte_size(kind)? / 16))
        });
        let labels = types
            .member(g, "labels")
            .map(|(offset, _)| Field { offset, size: 8 });
        Ok(RuntimeLayout {
            allgs,
            wait_reasons,
            g_size: types
                .byte_size(g)
                .filter(|size| (64..=16384).contains(size))
                .ok_or_else(|| layout_error("runtime.g has no plausible size"))?,
            goid: types.scalar(g, "goid")?,
            status: types.scalar(g, "atomicstatus")?,
            wait_reason: types.scalar(g, "waitreason")?,
            wait_since: types.scalar(g, "waitsince").ok(),
            m: types.scalar(g, "m")?,
            sched_pc: in_sched("pc")?,
            sched_sp: in_sched("sp")?,
            sched_bp: in_sched("bp")?,
            syscall_sp: types.scalar(g, "syscallsp").ok(),
            syscall_pc: types.scalar(g, "syscallpc").ok(),
            syscall_bp: types.scalar(g, "syscallbp").ok(),
            go_pc: types.scalar(g, "gopc")?,
            start_pc: types.scalar(g, "startpc")?,
            labels,
            m_procid: types.scalar(m, "procid")?,
            label_layout: types.label_layout(),
            finalizer_flag: types.finalizer_flag(),
            running_cleanups: types.scalar(g, "runningCleanups").ok(),
        })
    }
}

/// Memory of the stopped process.
pub trait Memory {
    /// Fills `buffer` from `address`; false when any byte cannot be read.
    fn read(&mut self, address: u64, buffer: &mut [u8]) -> bool;

    /// Reads `size` bytes at each of `addresses` into consecutive pieces of `out`;
    /// whether each could be read.
    fn read_each(&mut self, addresses: &[u64], size: usize, out: &mut [u8]) -> Vec<bool> {
        addresses
            .iter()
            .zip(out.chunks_exact_mut(size))
            .map(|(&address, piece)| self.read(address, piece))
            .collect()
    }

    fn word(&mut self, address: u64) -> Option<u64> {
        let mut bytes = [0u8; 8];
        self.read(address, &mut bytes)
            .then(|| u64::from_le_bytes(bytes))
    }

    /// A Go string's bytes from its header (pointer, length) at `address`.
    fn go_string(&mut self, address: u64) -> Option<String> {
        let pointer = self.word(address)?;
        let length = self.word(address.checked_add(8)?)?;
        self.string_at(pointer, length)
    }

    fn string_at(&mut self, pointer: u64, length: u64) -> Option<String> {
        if length == 0 {
            return Some(String::new());
        }
        if length > MAX_STRING {
            return None;
        }
        let mut bytes = vec![0u8; length as usize];
        self.read(pointer, &mut bytes)
            .then(|| String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A process's memory through `process_vm_readv`.
pub struct ProcessMemory(pub crate::procfs::Pid);

impl Memory for ProcessMemory {
    fn read(&mut self, address: u64, buffer: &mut [u8]) -> bool {
        super::memory::read_into(self.0, address, buffer)
    }

    /// Many pieces per system call: 10,000 goroutines in 20 calls instead of 10,000.
    /// The kernel stops at the first piece it cannot read; the pieces from there on are
    /// read one by one.
    fn read_each(&mut self, addresses: &[u64], size: usize, out: &mut [u8]) -> Vec<bool> {
        use nix::sys::uio::{process_vm_readv, RemoteIoVec};
        let mut done = vec![false; addresses.len()];
        let mut first_unread = addresses.len();
        if size > 0 {
            let remote: Vec<RemoteIoVec> = addresses
                .iter()
                .map(|&address| RemoteIoVec {
                    base: usize::try_from(address).unwrap_or(0),
                    len: size,
                })
                .collect();
            let mut local: Vec<std::io::IoSliceMut> = out
                .chunks_exact_mut(size)
                .map(std::io::IoSliceMut::new)
                .collect();
            let read = process_vm_readv(nix::unistd::Pid::from_raw(self.0), &mut local, &remote)
                .unwrap_or(0);
            first_unread = read / size;
        }
        done[..first_unread].fill(true);
        for i in first_unread..addresses.len() {
            done[i] = self.read(addresses[i], &mut out[i * size..(i + 1) * size]);
        }
        done
    }
}

/// Every goroutine of the program but the dead ones, in `runtime.allgs`'s order.
/// `bias` is what the executable was loaded at less its file addresses (0 unless PIE);
/// `function_at` names the function holding a pc (the process's numbering), as Go's
/// function table does, to tell the runtime's own goroutines.
pub fn read(
    layout: &RuntimeLayout,
    bias: u64,
    memory: &mut impl Memory,
    function_at: impl Fn(u64) -> Option<String>,
) -> Result<Vec<Goroutine>, GoroutinesError> {
    let allgs = layout.allgs.wrapping_add(bias);
    let mut header = [0u8; 24];
    if !memory.read(allgs, &mut header) {
        return Err(GoroutinesError::Memory(format!(
            "runtime.allgs at {allgs:#x} cannot be read"
        )));
    }
    let word = |i: usize| u64::from_le_bytes(header[i * 8..i * 8 + 8].try_into().unwrap());
    let (array, length, capacity) = (word(0), word(1), word(2));
    if length > capacity || (length > 0 && array == 0) {
        return Err(GoroutinesError::Memory(format!(
            "runtime.allgs is not a slice (length {length}, capacity {capacity})"
        )));
    }
    let count = usize::try_from(length)
        .unwrap_or(usize::MAX)
        .min(MAX_GOROUTINES);
    let mut pointers = vec![0u8; count * 8];
    if !memory.read(array, &mut pointers) {
        return Err(GoroutinesError::Memory(format!(
            "the {count} goroutine pointers at {array:#x} cannot be read"
        )));
    }

    let mut caches = Caches::default();
    let addresses: Vec<u64> = pointers
        .chunks_exact(8)
        .map(|pointer| u64::from_le_bytes(pointer.try_into().unwrap()))
        .filter(|&address| address != 0)
        .collect();
    let g_size = layout.g_size as usize;
    let mut batch = vec![0u8; g_size * BATCH];
    let mut out = Vec::new();
    for chunk in addresses.chunks(BATCH) {
        let read = memory.read_each(chunk, g_size, &mut batch[..chunk.len() * g_size]);
        for ((&address, g), read) in chunk.iter().zip(batch.chunks_exact(g_size)).zip(read) {
            if !read {
                continue;
            }
            if let Some(goroutine) =
                decode(layout, bias, memory, &function_at, &mut caches, address, g)
            {
                out.push(goroutine);
            }
        }
    }
    Ok(out)
}

/// What one listing looks up once: wait reasons by number, threads by `m`, and whether
/// a start function is the runtime's.
#[derive(Default)]
struct Caches {
    reasons: FxHashMap<u64, Option<String>>,
    threads: FxHashMap<u64, Option<i32>>,
    start_names: FxHashMap<u64, Option<String>>,
    /// Whether the finalizer goroutine runs a finalizer (read once per listing).
    finalizers_running: Option<bool>,
}

/// One `g` (its bytes `g`, read at `address`); None for a dead one.
fn decode(
    layout: &RuntimeLayout,
    bias: u64,
    memory: &mut impl Memory,
    function_at: &impl Fn(u64) -> Option<String>,
    caches: &mut Caches,
    address: u64,
    g: &[u8],
) -> Option<Goroutine> {
    let Caches {
        reasons,
        threads,
        start_names,
        finalizers_running,
    } = caches;
    let field = |f: Field| f.read(g).unwrap_or(0);
    let status = Status::from_raw(field(layout.status) as u32);
    if status == Status::Dead {
        return None;
    }
    let wait_reason = match (status, field(layout.wait_reason)) {
        (Status::Waiting | Status::Leaked, reason) if reason != 0 => reasons
            .entry(reason)
            .or_insert_with(|| wait_reason(layout, bias, memory, reason))
            .clone(),
        _ => None,
    };
    let m = field(layout.m);
    let thread = if m == 0 {
        None
    } else {
        *threads.entry(m).or_insert_with(|| {
            let mut bytes = [0u8; 8];
            let size = layout.m_procid.size as usize;
            memory
                .read(m.checked_add(layout.m_procid.offset)?, &mut bytes[..size])
                .then(|| u64::from_le_bytes(bytes))
                .and_then(|id| i32::try_from(id).ok())
                .filter(|id| *id > 0)
        })
    };
    let start_pc = field(layout.start_pc);
    let start = start_names
        .entry(start_pc)
        .or_insert_with(|| function_at(start_pc))
        .as_deref();
    let finalizers_running = *finalizers_running.get_or_insert_with(|| {
        layout
            .finalizer_flag
            .and_then(|(at, field, mask)| {
                let mut bytes = [0u8; 8];
                let size = field.size as usize;
                let address = at.wrapping_add(bias).checked_add(field.offset)?;
                memory
                    .read(address, &mut bytes[..size])
                    .then(|| u64::from_le_bytes(bytes) & mask != 0)
            })
            .unwrap_or(false)
    });
    let cleanups_running = layout.running_cleanups.is_some_and(|f| field(f) & 1 != 0);
    let system = is_system(start, finalizers_running, cleanups_running);
    let labels = layout
        .labels
        .map(field)
        .filter(|at| *at != 0)
        .and_then(|at| read_labels(layout.label_layout.as_ref()?, memory, at))
        .unwrap_or_default();
    let wait_since = layout.wait_since.map(field).unwrap_or(0) as i64;
    Some(Goroutine {
        id: field(layout.goid) as i64,
        status,
        wait_reason,
        waiting_since_ns: (wait_since != 0).then_some(wait_since),
        thread,
        saved: Saved {
            pc: field(layout.sched_pc),
            sp: field(layout.sched_sp),
            bp: field(layout.sched_bp),
        },
        in_syscall: match (status, layout.syscall_pc, layout.syscall_sp) {
            (Status::Syscall, Some(pc), Some(sp)) if field(pc) != 0 && field(sp) != 0 => {
                Some(Saved {
                    pc: field(pc),
                    sp: field(sp),
                    bp: layout.syscall_bp.map(field).unwrap_or(0),
                })
            }
            _ => None,
        },
        go_pc: field(layout.go_pc),
        start_pc,
        labels,
        system,
        address,
    })
}

/// `waitReasonStrings[reason]`, as the program has it.
fn wait_reason(
    layout: &RuntimeLayout,
    bias: u64,
    memory: &mut impl Memory,
    reason: u64,
) -> Option<String> {
    let (table, length) = layout.wait_reasons?;
    if reason >= length {
        return None;
    }
    let text = memory.go_string(table.wrapping_add(bias).checked_add(reason * 16)?)?;
    (!text.is_empty()).then_some(text)
}

/// `runtime.isSystemGoroutine`: a goroutine that started in the runtime, except the main
/// goroutine, a coroutine's (iter.Pull), and the finalizer and cleanup goroutines
/// while they run the program's code.
fn is_system(start: Option<&str>, finalizers_running: bool, cleanups_running: bool) -> bool {
    let Some(name) = start else { return false };
    match name {
        "runtime.main" | "runtime.corostart" | "runtime.handleAsyncEvent" => false,
        // The finalizer goroutine, while it calls the program's finalizers, is the
        // program's (runfinq before Go 1.25; runFinalizers since). So are the cleanup
        // goroutines (Go 1.24 and later) while they run its cleanups.
        "runtime.runfinq" | "runtime.runFinalizers" => !finalizers_running,
        "runtime.runCleanups" => !cleanups_running,
        _ => name.starts_with("runtime."),
    }
}

/// The labels `g.labels` (at `at`) points at.
fn read_labels(
    layout: &LabelLayout,
    memory: &mut impl Memory,
    at: u64,
) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    match layout {
        LabelLayout::Slice {
            list,
            pair_size,
            key,
            value,
        } => {
            let array = memory.word(at.checked_add(*list)?)?;
            let length = memory.word(at.checked_add(list + 8)?)?;
            if length > MAX_LABELS {
                return None;
            }
            for i in 0..length {
                let pair = array.checked_add(i * pair_size)?;
                labels.push((
                    memory.go_string(pair.checked_add(*key)?)?,
                    memory.go_string(pair.checked_add(*value)?)?,
                ));
            }
        }
        LabelLayout::Map {
            count,
            log2_buckets,
            buckets,
            old_buckets,
            bucket_size,
            top_hash,
            keys,
            values,
            overflow,
        } => {
            // g.labels is a *labelMap: the map variable, which points at the hmap.
            let hmap = memory.word(at)?;
            if hmap == 0 {
                return Some(labels);
            }
            let mut header = vec![0u8; (*old_buckets + 8) as usize];
            if !memory.read(hmap, &mut header) {
                return None;
            }
            let count = count.read(&header)?;
            let log2 = log2_buckets.read(&header)?;
            if count > MAX_LABELS || log2 > 4 {
                return None;
            }
            let word = |at: u64| {
                let at = at as usize;
                Some(u64::from_le_bytes(header.get(at..at + 8)?.try_into().ok()?))
            };
            let (new, old) = (word(*buckets)?, word(*old_buckets)?);
            // A map still growing has entries in both arrays: the old ones not yet
            // moved (their top hash byte not an "evacuated" mark) count too.
            let mut starts = Vec::new();
            if old != 0 {
                starts.extend((0..1u64 << log2.saturating_sub(1)).map(|i| old + i * bucket_size));
            }
            starts.extend((0..1u64 << log2).map(|i| new + i * bucket_size));
            let mut bucket = vec![0u8; *bucket_size as usize];
            for start in starts {
                let mut at = start;
                // Overflow chains are short for a handful of labels.
                for _ in 0..8 {
                    if at == 0 || !memory.read(at, &mut bucket) {
                        break;
                    }
                    for slot in 0..8u64 {
                        // emptyRest 0, emptyOne 1, evacuated 2..=4; minTopHash 5.
                        if *bucket.get((top_hash + slot) as usize)? < 5 {
                            continue;
                        }
                        labels.push((
                            memory.go_string(at + keys + slot * 16)?,
                            memory.go_string(at + values + slot * 16)?,
                        ));
                        if labels.len() as u64 > MAX_LABELS {
                            return None;
                        }
                    }
                    let link = *overflow as usize;
                    at = u64::from_le_bytes(bucket.get(link..link + 8)?.try_into().ok()?);
                }
            }
            labels.sort();
        }
    }
    Some(labels)
}

/// The Go program a `Stacker` is attached to: its executable's module, runtime layout
/// and load bias.
pub struct GoProgram {
    pub info: Rc<super::module::ModuleInfo>,
    pub layout: Rc<RuntimeLayout>,
    pub bias: u64,
}

impl GoProgram {
    /// The executable of the attached process (the module mapped from the file
    /// `/proc/PID/exe` is), or else the first module whose DWARF describes Go's runtime.
    pub fn find(stacker: &mut super::Stacker) -> Result<GoProgram, GoroutinesError> {
        let mut first_error = None;
        for index in Self::search_order(stacker) {
            let info = stacker.module_info(index);
            if info.go_lines().is_none() {
                continue;
            }
            match info.go_runtime() {
                Ok(layout) => {
                    let bias = super::locations::bias(&stacker.modules()[index], &info)
                        .ok_or_else(|| {
                            GoroutinesError::Memory("the executable is not mapped".into())
                        })?;
                    return Ok(GoProgram { info, layout, bias });
                }
                Err(GoroutinesError::NotGo) => {}
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error.unwrap_or(GoroutinesError::NotGo))
    }

    /// The modules `find` looks in, in order: the executable first.
    fn search_order(stacker: &super::Stacker) -> Vec<usize> {
        use std::os::unix::fs::MetadataExt;
        let exe = std::fs::metadata(format!("/proc/{}/exe", stacker.view()))
            .ok()
            .map(|m| {
                let dev = m.dev();
                ((libc::major(dev), libc::minor(dev)), m.ino())
            });
        let count = stacker.modules().len();
        let mut order: Vec<usize> = (0..count)
            .filter(|&i| exe.is_some() && stacker.modules()[i].file_id() == exe)
            .collect();
        let rest: Vec<usize> = (0..count).filter(|i| !order.contains(i)).collect();
        order.extend(rest);
        order
    }

    /// Starts reading the runtime's layout of the module `find` tries first, when it is
    /// a Go program, on a thread of its own (`ModuleInfo::read_go_runtime_ahead`).
    pub fn read_layout_ahead(stacker: &mut super::Stacker) {
        if let Some(&first) = Self::search_order(stacker).first() {
            stacker.module_info(first).read_go_runtime_ahead();
        }
    }

    /// Whether the attached process's executable is a Go program (has Go's function
    /// table), without reading any DWARF: a cheap test before `find`.
    pub fn executable_is_go(stacker: &mut super::Stacker) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(format!("/proc/{}/exe", stacker.view())) else {
            return false;
        };
        let dev = meta.dev();
        let exe = Some(((libc::major(dev), libc::minor(dev)), meta.ino()));
        let Some(index) =
            (0..stacker.modules().len()).find(|&i| stacker.modules()[i].file_id() == exe)
        else {
            return false;
        };
        stacker.module_info(index).go_lines().is_some()
    }

    /// Where the `go` statement at `go_pc` (a return address, the process's numbering)
    /// is, as Go's tracebacks print `created by`: the function it is in (outermost of
    /// inlined calls), and the file and line of the call (innermost).
    pub fn creator(&self, go_pc: u64) -> Option<(String, Option<(String, u32)>)> {
        if go_pc == 0 {
            return None;
        }
        let frames = self
            .info
            .source_frames(go_pc.wrapping_sub(1).wrapping_sub(self.bias));
        let function = frames.last()?.function.as_deref()?.to_string();
        let place = frames
            .first()
            .and_then(|f| Some((f.file.as_deref()?.to_string(), f.line)));
        Some((function, place))
    }

    /// The function holding `pc` (the process's numbering), outermost of inlined calls,
    /// as Go's function table names it.
    pub fn function_at(&self, pc: u64) -> Option<String> {
        let frames = self.info.source_frames(pc.wrapping_sub(self.bias));
        frames.last()?.function.as_deref().map(str::to_string)
    }

    /// Every live goroutine of the stopped process `pid`.
    pub fn goroutines(&self, pid: crate::procfs::Pid) -> Result<Vec<Goroutine>, GoroutinesError> {
        read(&self.layout, self.bias, &mut ProcessMemory(pid), |pc| {
            self.function_at(pc)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use crate::symbols::Stacker;

    /// How many idle goroutines the fixture starts besides the interesting ones.
    const IDLE: usize = 10000;

    /// The toolchain in `variable` (or at `default`), or None after saying why (a
    /// failure unless skipping is allowed).
    fn toolchain(variable: &str, default: Option<&str>) -> Option<PathBuf> {
        let path = std::env::var_os(variable)
            .map(PathBuf::from)
            .or_else(|| default.map(PathBuf::from))
            .filter(|path| path.exists());
        if path.is_none() {
            crate::test_skip::skip_or_fail(&format!(
                "no Go toolchain at ${variable}{} (see .ci/run)",
                default.map(|d| format!(" or {d}")).unwrap_or_default()
            ));
        }
        path
    }

    /// A directory of the test's own, removed when dropped.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Builds tests/fixtures/goroutines with `go` into `work`; the binary's path.
    fn build(go: &Path, work: &Path, flags: &[&str]) -> PathBuf {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let binary = work.join("goroutines");
        let output = std::process::Command::new(go)
            .arg("build")
            .args(flags)
            .arg("-o")
            .arg(&binary)
            .arg(".")
            .current_dir(manifest.join("../tests/fixtures/goroutines"))
            // The build cache the other Go tests share: a cold one rebuilds the runtime.
            .env("GOCACHE", manifest.join("../target/tmp/go/cache"))
            .env("GOPATH", work.join("path"))
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "go build with {}: {}",
            go.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        binary
    }

    /// The fixture running, killed when dropped.
    struct Fixture {
        child: std::process::Child,
        dump: PathBuf,
    }

    impl Fixture {
        /// Starts the fixture and waits until it has written its own dump.
        fn start(binary: &Path, work: &Path) -> Fixture {
            let dump = work.join("dump");
            let marker = work.join("ready");
            let child = std::process::Command::new(binary)
                .arg(IDLE.to_string())
                .arg(&dump)
                .arg(&marker)
                .spawn()
                .unwrap();
            let mut fixture = Fixture { child, dump };
            let deadline = Instant::now() + Duration::from_secs(60);
            while !marker.exists() {
                if let Ok(Some(status)) = fixture.child.try_wait() {
                    panic!("the fixture ended early: {status}");
                }
                assert!(Instant::now() < deadline, "the fixture never got ready");
                std::thread::sleep(Duration::from_millis(20));
            }
            fixture
        }

        fn pid(&self) -> crate::procfs::Pid {
            self.child.id() as crate::procfs::Pid
        }

        /// SIGSTOP, then waits until every thread is stopped.
        fn stop(&self) {
            let pid = self.pid();
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGSTOP,
            )
            .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let all_stopped = std::fs::read_dir(format!("/proc/{pid}/task"))
                    .unwrap()
                    .filter_map(Result::ok)
                    .all(|task| {
                        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                            stat.rsplit_once(')')
                                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
                        })
                    });
                if all_stopped {
                    return;
                }
                assert!(Instant::now() < deadline, "the fixture never stopped");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    impl Fixture {
        fn resume(&self) {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid()),
                nix::sys::signal::Signal::SIGCONT,
            )
            .unwrap();
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// One goroutine of a `runtime.Stack(buf, true)` dump.
    #[derive(Debug)]
    struct Dumped {
        id: i64,
        /// The header's state without its additions (`, 2 minutes`, `, locked to thread`).
        state: String,
        /// The function of `created by F` (`in goroutine N` dropped).
        creator: Option<String>,
        text: String,
    }

    fn parse_dump(dump: &str) -> Vec<Dumped> {
        dump.split("\n\n")
            .filter(|block| block.starts_with("goroutine "))
            .map(|block| {
                let header = block.lines().next().unwrap();
                let id = header["goroutine ".len()..]
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let open = header.find('[').unwrap();
                let close = header.rfind(']').unwrap();
                let state = header[open + 1..close]
                    .split(", ")
                    .next()
                    .unwrap()
                    .to_string();
                let creator = block
                    .lines()
                    .find_map(|line| line.strip_prefix("created by "))
                    .map(|rest| rest.split(" in goroutine ").next().unwrap().to_string());
                Dumped {
                    id,
                    state,
                    creator,
                    text: block.to_string(),
                }
            })
            .collect()
    }

    /// The process's memory with bytes flipped at random (about one in `rate`).
    struct Damaged {
        inner: ProcessMemory,
        state: u64,
        rate: u64,
    }

    impl Memory for Damaged {
        fn read(&mut self, address: u64, buffer: &mut [u8]) -> bool {
            if !self.inner.read(address, buffer) {
                return false;
            }
            for byte in buffer.iter_mut() {
                // xorshift64
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                if self.state.is_multiple_of(self.rate) {
                    *byte ^= (self.state >> 32) as u8 | 1;
                }
            }
            true
        }
    }

    /// Damaged memory (a runtime in the middle of changing its lists, a corrupt heap)
    /// gives odd goroutines or an error, never a panic, a hang or an unbounded list.
    fn assert_damage_is_survived(program: &GoProgram, pid: crate::procfs::Pid) {
        let started = Instant::now();
        for round in 0..12u64 {
            let mut memory = Damaged {
                inner: ProcessMemory(pid),
                state: 0x9e37_79b9_7f4a_7c15 ^ round,
                rate: [7, 50, 1000][round as usize % 3],
            };
            if let Ok(found) = read(&program.layout, program.bias, &mut memory, |pc| {
                program.function_at(pc)
            }) {
                assert!(found.len() <= MAX_GOROUTINES);
                assert!(found.iter().all(|g| g.labels.len() as u64 <= MAX_LABELS));
            }
        }
        eprintln!("12 damaged reads in {:?}", started.elapsed());
    }

    /// The fixture's goroutines as read by this module agree with its own dump of them,
    /// goroutine by goroutine.
    fn assert_agrees_with_runtime_stack(go: &Path, label: &str, flags: &[&str]) {
        let work =
            std::env::temp_dir().join(format!("latch-goroutines-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let _scratch = Scratch(work.clone());
        let binary = build(go, &work, flags);
        let fixture = Fixture::start(&binary, &work);
        fixture.stop();

        let pid = fixture.pid();
        let mut stacker = Stacker::new(pid);
        let started = Instant::now();
        let program = GoProgram::find(&mut stacker).unwrap();
        eprintln!(
            "{label}: the runtime's types read in {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let mut all = program.goroutines(pid).unwrap();
        // The marker is written just before the main goroutine parks for good: until it
        // has, it may still be in the system call that closed the file.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !all
            .iter()
            .any(|g| g.id == 1 && g.state() == "select (no cases)")
        {
            assert!(
                Instant::now() < deadline,
                "{label}: main never parked: {:?}",
                all.iter().find(|g| g.id == 1)
            );
            fixture.resume();
            std::thread::sleep(Duration::from_millis(10));
            fixture.stop();
            all = program.goroutines(pid).unwrap();
        }
        eprintln!(
            "{label}: {} goroutines read in {:?}",
            all.len(),
            started.elapsed()
        );
        // The symbols thread answers the same.
        let service = crate::symbols::SymbolService::spawn().unwrap();
        service.attach(pid, None);
        let served = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(service.goroutines())
            .unwrap();
        assert_eq!(served, all, "{label}: the symbols thread's answer");
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given.
        assert_eq!(
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) },
            0
        );
        let now = now.tv_sec * 1_000_000_000 + now.tv_nsec;
        for g in &all {
            if let Some(since) = g.waiting_since_ns {
                assert!(
                    since > 0 && since <= now,
                    "{label}: {g:?} waits since {since}, now {now}"
                );
            }
        }
        let dumped = parse_dump(&std::fs::read_to_string(&fixture.dump).unwrap());
        assert_damage_is_survived(&program, pid);
        let tasks: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        drop(fixture);
        eprintln!(
            "{label}: {} goroutines ({} the runtime's), {} on threads: {:?}",
            all.len(),
            all.iter().filter(|g| g.system).count(),
            all.iter().filter(|g| g.thread.is_some()).count(),
            all.iter()
                .filter(|g| g.thread.is_some())
                .map(|g| (g.id, g.state(), g.thread))
                .collect::<Vec<_>>()
        );
        // Every goroutine on a thread names one of the process's threads.
        for g in &all {
            if let Some(thread) = g.thread {
                assert!(
                    tasks.contains(&thread),
                    "{label}: {g:?} on thread {thread}, not one of {tasks:?}"
                );
            }
        }

        assert!(all.iter().any(|g| g.system), "{label}: no system goroutine");
        let ours: Vec<&Goroutine> = all.iter().filter(|g| !g.system).collect();
        let mut our_ids: Vec<i64> = ours.iter().map(|g| g.id).collect();
        let mut their_ids: Vec<i64> = dumped.iter().map(|d| d.id).collect();
        our_ids.sort_unstable();
        their_ids.sort_unstable();
        assert_eq!(our_ids, their_ids, "{label}: goroutine ids");
        assert_eq!(
            ours.len(),
            IDLE + 11,
            "{label}: main, 9 workers, a finalizer, {IDLE} idle"
        );
        // The finalizer goroutine is the runtime's, but the program's while in a finalizer.
        assert!(
            ours.iter().any(|g| program
                .function_at(g.start_pc)
                .is_some_and(|f| f == "runtime.runfinq" || f == "runtime.runFinalizers")),
            "{label}: the finalizer goroutine is not listed as the program's"
        );

        let mut seen_states = std::collections::BTreeSet::new();
        for theirs in &dumped {
            let g = ours.iter().find(|g| g.id == theirs.id).unwrap();
            let context = format!(
                "{label}: goroutine {}:\n{}\nread as {g:?}",
                g.id, theirs.text
            );
            let state = g.state();
            if theirs.text.contains("main.busy(") {
                // Stopped by SIGSTOP on its thread, or taken off it just before.
                assert!(
                    matches!(
                        g.status,
                        Status::Running | Status::Runnable | Status::Preempted
                    ),
                    "{context}"
                );
                if g.status == Status::Running {
                    assert!(
                        g.thread.is_some(),
                        "{context}: a running goroutine has a thread"
                    );
                }
            } else if theirs.state == "running" {
                // The goroutine that took the dump, since parked for good.
                assert_eq!(g.id, 1, "{context}");
                assert_eq!(state, "select (no cases)", "{context}");
            } else {
                assert_eq!(state, theirs.state, "{context}");
                assert_eq!(g.status, Status::Waiting, "{context}");
                assert!(g.saved.pc != 0 && g.saved.sp != 0, "{context}");
                assert!(
                    program
                        .function_at(g.saved.pc)
                        .is_some_and(|f| f.starts_with("runtime.")),
                    "{context}: parked in the runtime"
                );
            }
            seen_states.insert(state);
            match &theirs.creator {
                Some(creator) => assert_eq!(
                    program.function_at(g.go_pc).as_ref(),
                    Some(creator),
                    "{context}"
                ),
                // Go's tracebacks do not show a creator in the runtime (runtime.createfing
                // of the finalizer goroutine), nor goroutine 1's.
                None => assert!(
                    g.id == 1
                        || program
                            .function_at(g.go_pc)
                            .is_some_and(|f| f.starts_with("runtime.")),
                    "{context}"
                ),
            }
            let labelled = theirs.text.contains("main.labelled");
            let expected: Vec<(String, String)> = if labelled {
                vec![
                    ("request".into(), "r42".into()),
                    ("user".into(), "ann".into()),
                ]
            } else {
                Vec::new()
            };
            assert_eq!(g.labels, expected, "{context}");
        }
        if label.ends_with("pie") {
            assert_ne!(program.bias, 0, "{label}: not loaded elsewhere");
        }
        let mutex = if label.starts_with("go119") {
            "semacquire"
        } else {
            "sync.Mutex.Lock"
        };
        for expected in ["chan receive", "select", mutex, "sleep", "IO wait"] {
            assert!(
                seen_states.contains(expected),
                "{label}: no goroutine in {expected:?}: {seen_states:?}"
            );
        }
    }

    #[test]
    fn go_1_19_goroutines_agree_with_runtime_stack() {
        if let Some(go) = toolchain("LATCH_GO", Some("/usr/bin/go")) {
            assert_agrees_with_runtime_stack(&go, "go119", &[]);
        }
    }

    #[test]
    fn current_go_goroutines_agree_with_runtime_stack() {
        if let Some(go) = toolchain("LATCH_CURRENT_GO", None) {
            assert_agrees_with_runtime_stack(&go, "current", &[]);
        }
    }

    /// A position-independent executable is loaded elsewhere than its file's
    /// addresses say: runtime.allgs and waitReasonStrings are found through the bias.
    #[test]
    fn current_go_pie_goroutines_agree_with_runtime_stack() {
        if let Some(go) = toolchain("LATCH_CURRENT_GO", None) {
            assert_agrees_with_runtime_stack(&go, "current-pie", &["-buildmode=pie"]);
        }
    }

    /// Without DWARF there are no goroutines, and the error says why, so that the
    /// caller can show threads.
    fn assert_no_dwarf_says_why(go: &Path, label: &str) {
        let work = std::env::temp_dir().join(format!(
            "latch-goroutines-{}-no-dwarf-{label}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let _scratch = Scratch(work.clone());
        let binary = build(go, &work, &["-ldflags=-w"]);
        let fixture = Fixture::start(&binary, &work);
        let mut stacker = Stacker::new(fixture.pid());
        let error = GoProgram::find(&mut stacker).err().expect("no goroutines");
        assert_eq!(error, GoroutinesError::NoDwarf);
        assert!(
            error
                .to_string()
                .starts_with("goroutines need the program's DWARF (it was built with -ldflags=-w"),
            "{error}"
        );
    }

    #[test]
    fn go_1_19_goroutines_of_a_program_without_dwarf_say_why() {
        if let Some(go) = toolchain("LATCH_GO", Some("/usr/bin/go")) {
            assert_no_dwarf_says_why(&go, "go119");
        }
    }

    #[test]
    fn current_go_goroutines_of_a_program_without_dwarf_say_why() {
        if let Some(go) = toolchain("LATCH_CURRENT_GO", None) {
            assert_no_dwarf_says_why(&go, "current");
        }
    }

    /// A program that is not Go has no goroutines, and says so.
    #[test]
    fn goroutines_of_a_program_that_is_not_go() {
        let mut stacker = Stacker::new(std::process::id() as crate::procfs::Pid);
        assert_eq!(
            GoProgram::find(&mut stacker).err(),
            Some(GoroutinesError::NotGo)
        );
    }

    /// Batched reads of this process's memory: a piece that cannot be read (page zero)
    /// fails alone, and the pieces after it are still read.
    #[test]
    fn goroutines_memory_reads_pieces_past_an_unreadable_one() {
        let words: Vec<u64> = (0..4).map(|i| 0x1111 * (i + 1)).collect();
        let at = |i: usize| words.as_ptr() as u64 + 8 * i as u64;
        let mut memory = ProcessMemory(std::process::id() as crate::procfs::Pid);
        let addresses = [at(0), at(1), 8, at(3)];
        let mut out = [0u8; 32];
        let read = memory.read_each(&addresses, 8, &mut out);
        assert_eq!(read, [true, true, false, true]);
        let word = |i: usize| u64::from_le_bytes(out[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!([word(0), word(1), word(3)], [words[0], words[1], words[3]]);
    }

    #[test]
    fn statuses_drop_the_scan_bit() {
        assert_eq!(Status::from_raw(0x1004), Status::Waiting);
        assert_eq!(Status::from_raw(2), Status::Running);
        assert_eq!(Status::from_raw(6), Status::Dead);
        assert_eq!(Status::from_raw(77), Status::Other(77));
    }
}
