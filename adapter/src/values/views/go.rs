//! Go's built-in types, read from the layout its DWARF describes: strings, slices,
//! maps (both of the runtime's layouts), interfaces and channels, shown as Delve shows
//! them (`[]int len: 3, cap: 4, [1,2,3]`, `map[string]int ["a": 1, "b": 2]`,
//! `error(*errors.errorString) *{s = "boom"}`, `chan int 2/4`).
//!
//! Go's DWARF names the runtime's structures after what they hold (`hash<string,int>`,
//! `map<string,int>`, `hchan<int>`), and gives every type a `DW_AT_go_runtime_type`:
//! where its runtime type descriptor lies in the module's types section. That is how an
//! interface's dynamic type is found (see [`RuntimeTypes`]).

use std::fmt::Write as _;

use rustc_hash::{FxHashMap, FxHashSet};

use super::{error_child, integer_key, number_child, Sequence, View, MAX_WALK};
use crate::symbols::module::Reader;
use crate::values::format::{Child, Formatter};
use crate::values::types::{BaseEncoding, Member, Type, TypeId};
use crate::values::value::{Contents, Value};
use crate::values::MAX_READ;

/// x86-64's user address space (47 bits): no slice is larger.
const ADDRESS_SPACE: u64 = 1 << 47;

/// Go's DWARF extensions (cmd/internal/dwarf).
const DW_AT_GO_KEY: gimli::DwAt = gimli::DwAt(0x2901);
const DW_AT_GO_ELEM: gimli::DwAt = gimli::DwAt(0x2902);
const DW_AT_GO_RUNTIME_TYPE: gimli::DwAt = gimli::DwAt(0x2904);

/// A runtime type whose value is stored in the interface's data word itself (a pointer,
/// a map, a channel): `abi.KindDirectIface` in the type's kind before Go 1.26,
/// `abi.TFlagDirectIface` in its tflag since. The same bit is unused in the other byte
/// in either version.
const DIRECT_IFACE: u8 = 1 << 5;

/// `abi.TFlagExtraStar`: the name in the descriptor has a `*` the type does not.
const TFLAG_EXTRA_STAR: u8 = 1 << 1;

/// The view of a Go value, if `ty` is one of Go's built-in kinds.
pub fn view(formatter: &Formatter, value: &Value, _id: TypeId, ty: &Type) -> Option<Box<dyn View>> {
    match ty {
        Type::Aggregate {
            name: Some(name),
            members,
            ..
        } => match name.as_str() {
            "string" => Some(Box::new(GoString::read(formatter, value, members)?)),
            "runtime.eface" | "runtime.iface" => {
                Some(Box::new(Interface::read(formatter, value, members)?))
            }
            _ if name.starts_with("[]") => slice(formatter, value, name, members),
            _ => None,
        },
        // Maps and channels are pointers to the runtime's structure.
        Type::Pointer {
            pointee: Some(pointee),
            size,
            ..
        } => {
            let (_, target) = formatter.unit.types.strip(Some(*pointee))?;
            let Type::Aggregate {
                name: Some(name),
                members,
                ..
            } = &*target
            else {
                return None;
            };
            let address = formatter.integer(value, *size, false).ok()?;
            let label = formatter.type_name(value);
            if name.starts_with("hash<") {
                Some(Box::new(GoMap::read(
                    formatter,
                    value,
                    label,
                    address,
                    Layout::Buckets,
                    members,
                )?))
            } else if name.starts_with("map<") {
                Some(Box::new(GoMap::read(
                    formatter,
                    value,
                    label,
                    address,
                    Layout::Swiss,
                    members,
                )?))
            } else if name.starts_with("hchan<") {
                Some(Box::new(Channel::read(
                    formatter, value, label, address, members,
                )?))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn member<'m>(members: &'m [Member], name: &str) -> Option<&'m Member> {
    members.iter().find(|m| m.name.as_deref() == Some(name))
}

/// The first member called one of `names`, ignoring case: the runtime renamed its
/// fields over the versions (`_type.str` became `abi.Type.Str`).
fn member_named<'m>(members: &'m [Member], names: &[&str]) -> Option<&'m Member> {
    names.iter().find_map(|wanted| {
        members.iter().find(|m| {
            m.name
                .as_deref()
                .is_some_and(|name| name.eq_ignore_ascii_case(wanted))
        })
    })
}

/// A member's value as an unsigned integer of its size.
fn member_integer(formatter: &Formatter, value: &Value, member: &Member) -> Option<u64> {
    let size = formatter.unit.types.size_of(member.type_id)?;
    formatter
        .integer(&formatter.member_value(value, member), size, false)
        .ok()
}

/// The members of the structure `id` names (through typedefs), and its size.
fn struct_of(formatter: &Formatter, id: Option<TypeId>) -> Option<(Vec<Member>, Option<u64>)> {
    match &*formatter.unit.types.strip(id)?.1 {
        Type::Aggregate { members, size, .. } => Some((members.clone(), *size)),
        _ => None,
    }
}

/// What a pointer type points to (`None` for anything else or `unsafe.Pointer`).
fn pointee_of(formatter: &Formatter, id: Option<TypeId>) -> Option<TypeId> {
    match &*formatter.unit.types.strip(id)?.1 {
        Type::Pointer { pointee, .. } => *pointee,
        _ => None,
    }
}

/// The `size` bytes at `address` as a little-endian number.
fn read_word(formatter: &Formatter, address: u64, size: usize) -> Result<u64, String> {
    let mut bytes = [0u8; 8];
    let size = size.min(8);
    formatter
        .memory
        .read(address, &mut bytes[..size])
        .map_err(|e| e.to_string())?;
    Ok(u64::from_le_bytes(bytes))
}

/// A type DIE's Go attribute that names another type (`DW_AT_go_key`, `DW_AT_go_elem`).
fn go_type_attribute(
    formatter: &Formatter,
    id: Option<TypeId>,
    attribute: gimli::DwAt,
) -> Option<TypeId> {
    let types = &formatter.unit.types;
    // The attribute sits on the typedef (`map[string]int`), which a typedef of it
    // (a named map type) leads to.
    let mut id = id;
    for _ in 0..crate::values::types::MAX_TYPE_DEPTH {
        let current = id?;
        let (unit, offset) = types.die(current).ok()?;
        let entry = unit.entry(offset).ok()?;
        if let Some(value) = entry.attr_value(attribute) {
            return types.reference(&unit, value);
        }
        match &*types.get(current) {
            Type::Typedef { target, .. } => id = *target,
            _ => return None,
        }
    }
    None
}

/// `string`: a pointer to bytes and a length.
struct GoString {
    text: String,
}

impl GoString {
    fn read(formatter: &Formatter, value: &Value, members: &[Member]) -> Option<GoString> {
        let data = member_integer(formatter, value, member(members, "str")?)?;
        let len = member_integer(formatter, value, member(members, "len")?)?;
        Some(GoString {
            text: formatter.string_at(data, len),
        })
    }
}

impl View for GoString {
    fn summary(&self, _formatter: &Formatter, _depth: usize) -> String {
        self.text.clone()
    }
}

/// The bytes of a Go string value, or of a C string literal from an expression
/// (`m["a"]`), without its terminating NUL.
fn string_bytes(formatter: &Formatter, value: &Value) -> Option<Vec<u8>> {
    let (id, ty) = formatter.unit.types.strip(value.type_id)?;
    match &*ty {
        Type::Aggregate {
            name: Some(name),
            members,
            ..
        } if name == "string" => {
            let data = member_integer(formatter, value, member(members, "str")?)?;
            let len = member_integer(formatter, value, member(members, "len")?)?;
            if len > MAX_READ as u64 {
                return None;
            }
            let mut bytes = vec![0; len as usize];
            if len > 0 {
                formatter.memory.read(data, &mut bytes).ok()?;
            }
            Some(bytes)
        }
        Type::Array { .. } => {
            let (element, size) = formatter.element_of(id);
            let is_char = matches!(
                formatter
                    .unit
                    .types
                    .strip(element)
                    .map(|(_, t)| t)
                    .as_deref(),
                Some(Type::Base {
                    encoding: BaseEncoding::SignedChar | BaseEncoding::UnsignedChar,
                    size: 1,
                    ..
                })
            ) && size == Some(1);
            if !is_char {
                return None;
            }
            let len = formatter.unit.types.size_of(value.type_id)?;
            let bytes = value.contents.read(formatter.memory, len).ok()?;
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
            Some(bytes[..end].to_vec())
        }
        _ => None,
    }
}

/// `[]T`: a pointer to the first element, a length and a capacity; shown as Delve
/// shows it, `[]int len: 3, cap: 4, [1,2,3]`.
struct Slice {
    elements: Sequence,
    is_nil: bool,
    /// Why the header cannot be right (a length beyond the capacity).
    corrupt: Option<String>,
}

fn slice(
    formatter: &Formatter,
    value: &Value,
    name: &str,
    members: &[Member],
) -> Option<Box<dyn View>> {
    let array = member(members, "array")?;
    let data = member_integer(formatter, value, array)?;
    let len = member_integer(formatter, value, member(members, "len")?)?;
    let cap = member_integer(formatter, value, member(members, "cap")?)?;
    let pointee = pointee_of(formatter, array.type_id)?;
    let stride = formatter.unit.types.size_of(Some(pointee))?;
    if stride == 0 && len > 0 {
        return None;
    }
    // An uninitialised or torn slice: no elements rather than a walk of garbage (each
    // page would still be bounded, but the count would be a lie).
    let corrupt = if (len as i64) < 0 || (cap as i64) < 0 || len > cap {
        Some(format!("a corrupt slice: len {len} and cap {cap}"))
    } else if cap
        .checked_mul(stride)
        .is_none_or(|bytes| bytes > ADDRESS_SPACE)
    {
        Some(format!(
            "a corrupt slice: cap {cap} of {stride}-byte elements is more than memory holds"
        ))
    } else if data == 0 && len > 0 {
        Some(format!("a corrupt slice: len {len} at a nil array"))
    } else {
        None
    };
    Some(Box::new(Slice {
        elements: Sequence {
            label: format!("{name} len: {len}, cap: {cap}"),
            separator: ", ",
            first: Contents::Memory(data),
            element_type: Some(pointee),
            stride,
            count: if corrupt.is_some() { 0 } else { len },
            named: vec![
                number_child(formatter, "len", len),
                number_child(formatter, "cap", cap),
            ],
        },
        is_nil: data == 0,
        corrupt,
    }))
}

impl View for Slice {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let label = &self.elements.label;
        if let Some(why) = &self.corrupt {
            return format!("{label}, <error: {why}>");
        }
        if self.is_nil {
            return format!("{label}, nil");
        }
        let count = self.elements.count;
        let shown = count.min(formatter.limits.summary_elements as u64);
        let children = self.elements.elements(formatter, 0, shown);
        list(
            formatter,
            &format!("{label}, "),
            &children,
            shown < count,
            depth,
        )
    }

    fn named(&self, formatter: &Formatter) -> Vec<Child> {
        let mut named = self.elements.named(formatter);
        if let Some(why) = &self.corrupt {
            named.push(error_child("elements", why.clone()));
        }
        named
    }

    fn element_count(&self, formatter: &Formatter) -> u64 {
        self.elements.element_count(formatter)
    }

    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        self.elements.elements(formatter, start, count)
    }

    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        self.elements.index(formatter, key)
    }
}

/// `label[a,b,c]` of the children's summaries (Delve's spelling, without spaces), cut
/// at the summary's length limit.
fn list(
    formatter: &Formatter,
    label: &str,
    children: &[Child],
    more: bool,
    depth: usize,
) -> String {
    let mut text = format!("{label}[");
    for (i, child) in children.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        if text.len() > formatter.limits.summary_chars {
            text.push_str("...");
            return text + "]";
        }
        text.push_str(&formatter.summary_at(&child.value, depth + 1));
    }
    if more {
        text.push_str("...");
    }
    text.push(']');
    text
}

/// The two layouts of Go's maps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Go 1.23 and earlier: `runtime.hmap` (`hash<K,V>`), 2^B buckets of 8 entries
    /// with overflow chains, and old buckets while the map grows.
    Buckets,
    /// Go 1.24 and later: `internal/runtime/maps.Map` (`map<K,V>`), Swiss tables: a
    /// directory of tables, each an array of groups of 8 slots under a control word;
    /// a small map is one group.
    Swiss,
}

/// A Go map: the runtime's structure, walked a bounded number of buckets or groups at
/// a time.
struct GoMap {
    label: String,
    /// The header's count of entries.
    len: u64,
    address: u64,
    layout: Layout,
    members: Vec<Member>,
    /// The map's key type (`DW_AT_go_key`), to see keys stored out of line.
    key_type: Option<TypeId>,
    elem_type: Option<TypeId>,
}

/// One entry of a map.
struct Entry {
    key: Value,
    value: Value,
}

/// A group of 8 slots or a bucket of 8 entries, as its type lays them out: where the
/// key and value of slot `i` are, relative to the group's address.
struct Slots {
    size: u64,
    key_type: Option<TypeId>,
    value_type: Option<TypeId>,
    /// Offset of slot 0's key and value, and the distance from one slot's to the next.
    key_at: u64,
    value_at: u64,
    key_stride: u64,
    value_stride: u64,
}

impl Slots {
    /// A Swiss-table group `{ctrl uint64; slots [8]struct{key K; elem V}}`.
    fn of_group(formatter: &Formatter, group: Option<TypeId>) -> Option<Slots> {
        let (members, size) = struct_of(formatter, group)?;
        let slots = member(&members, "slots")?;
        let (slot_type, slot_size) = match &*formatter.unit.types.strip(slots.type_id)?.1 {
            Type::Array { element, .. } => (*element, formatter.unit.types.size_of(*element)?),
            _ => return None,
        };
        let (slot_members, _) = struct_of(formatter, slot_type)?;
        let key = member(&slot_members, "key")?;
        let value = member(&slot_members, "elem")?;
        let base = slots.offset?;
        Some(Slots {
            size: size?,
            key_type: key.type_id,
            value_type: value.type_id,
            key_at: base + key.offset?,
            value_at: base + value.offset?,
            key_stride: slot_size,
            value_stride: slot_size,
        })
    }

    /// A bucket `{tophash [8]uint8; keys [8]K; values [8]V; overflow *bucket}`.
    fn of_bucket(formatter: &Formatter, bucket: Option<TypeId>) -> Option<Slots> {
        let (members, size) = struct_of(formatter, bucket)?;
        let keys = member(&members, "keys")?;
        let values = member(&members, "values")?;
        let element = |m: &Member| match &*formatter.unit.types.strip(m.type_id)?.1 {
            Type::Array { element, .. } => {
                Some((*element, formatter.unit.types.size_of(*element)?))
            }
            _ => None,
        };
        let (key_type, key_stride) = element(keys)?;
        let (value_type, value_stride) = element(values)?;
        Some(Slots {
            size: size?,
            key_type,
            value_type,
            key_at: keys.offset?,
            value_at: values.offset?,
            key_stride,
            value_stride,
        })
    }

    fn entry(&self, formatter: &Formatter, map: &GoMap, group: u64, slot: u64) -> Entry {
        let key = Value::new(
            self.key_type,
            Contents::Memory(group + self.key_at + slot * self.key_stride),
        );
        let value = Value::new(
            self.value_type,
            Contents::Memory(group + self.value_at + slot * self.value_stride),
        );
        Entry {
            key: out_of_line(formatter, key, map.key_type),
            value: out_of_line(formatter, value, map.elem_type),
        }
    }
}

/// A key or value larger than 128 bytes is stored as a pointer to it: the slot's type
/// is then a pointer to the map's key (value) type.
fn out_of_line(formatter: &Formatter, slot: Value, wanted: Option<TypeId>) -> Value {
    let Some(wanted) = wanted else {
        return slot;
    };
    if slot.type_id == Some(wanted) || pointee_of(formatter, slot.type_id) != Some(wanted) {
        return slot;
    }
    match formatter.pointee(&slot) {
        Some(target) => target,
        None => Value::new(
            Some(wanted),
            Contents::Error("a nil out-of-line slot".into()),
        ),
    }
}

impl GoMap {
    fn read(
        formatter: &Formatter,
        value: &Value,
        label: String,
        address: u64,
        layout: Layout,
        members: &[Member],
    ) -> Option<GoMap> {
        let count_name = match layout {
            Layout::Buckets => "count",
            Layout::Swiss => "used",
        };
        let len = if address == 0 {
            0
        } else {
            let count = member(members, count_name)?;
            let size = formatter.unit.types.size_of(count.type_id)?;
            read_word(formatter, address + count.offset?, size as usize).ok()?
        };
        Some(GoMap {
            label,
            len,
            address,
            layout,
            members: members.to_vec(),
            key_type: go_type_attribute(formatter, value.type_id, DW_AT_GO_KEY),
            elem_type: go_type_attribute(formatter, value.type_id, DW_AT_GO_ELEM),
        })
    }

    /// A member of the header, read as a number.
    fn header(&self, formatter: &Formatter, name: &str) -> Result<u64, String> {
        let field =
            member(&self.members, name).ok_or_else(|| format!("the map header has no {name}"))?;
        let size = formatter.unit.types.size_of(field.type_id).unwrap_or(8);
        let offset = field.offset.ok_or("a map header field without an offset")?;
        read_word(formatter, self.address + offset, size as usize)
    }

    /// Calls `visit` with each entry in the runtime's storage order until it returns
    /// false. `Err`: why the walk ended before the last entry (a corrupt header, an
    /// unreadable bucket, a cycle, [`MAX_WALK`] buckets or groups read).
    fn walk(
        &self,
        formatter: &Formatter,
        visit: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<(), String> {
        if self.address == 0 {
            return Ok(());
        }
        match self.layout {
            Layout::Buckets => self.walk_buckets(formatter, visit),
            Layout::Swiss => self.walk_tables(formatter, visit),
        }
    }

    /// The first `wanted` entries, and why there are fewer, if the walk ended early.
    fn first_entries(&self, formatter: &Formatter, wanted: u64) -> (Vec<Entry>, Option<String>) {
        let mut entries = Vec::new();
        if wanted == 0 {
            return (entries, None);
        }
        let stopped = self
            .walk(formatter, &mut |entry| {
                entries.push(entry);
                (entries.len() as u64) < wanted
            })
            .err();
        (entries, stopped)
    }

    /// `hmap`: the old buckets not yet moved (while the map grows), then the buckets,
    /// each with its overflow chain. An entry moved out of an old bucket is marked
    /// there (its tophash says evacuated), so no entry is seen twice.
    fn walk_buckets(
        &self,
        formatter: &Formatter,
        visit: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<(), String> {
        let buckets_member = member(&self.members, "buckets").ok_or("no buckets")?;
        let bucket_type = pointee_of(formatter, buckets_member.type_id);
        let slots = Slots::of_bucket(formatter, bucket_type).ok_or("an unknown bucket layout")?;
        let (bucket_members, _) = struct_of(formatter, bucket_type).ok_or("no bucket type")?;
        let overflow_at = member(&bucket_members, "overflow")
            .and_then(|m| m.offset)
            .ok_or("a bucket without an overflow pointer")?;
        let b = self.header(formatter, "B")?;
        if b > 40 {
            return Err(format!("a corrupt map: 2^{b} buckets"));
        }
        // While a map doubles, its old buckets are half as many (`sameSizeGrow`, flag
        // 8, keeps the number).
        let flags = self.header(formatter, "flags").unwrap_or(0);
        let same_size_grow = flags & 8 != 0;
        let old_count = if same_size_grow || b == 0 {
            1 << b
        } else {
            1 << (b - 1)
        };
        let lists = [
            (self.header(formatter, "oldbuckets")?, old_count),
            (self.header(formatter, "buckets")?, 1u64 << b),
        ];
        let mut steps = 0u64;
        for (first, count) in lists {
            if first == 0 {
                continue;
            }
            for index in 0..count {
                let mut bucket = first
                    .checked_add(index * slots.size)
                    .ok_or("buckets beyond the address space")?;
                let mut chain = FxHashSet::default();
                while bucket != 0 {
                    steps += 1;
                    if steps > MAX_WALK {
                        return Err(format!("the walk stopped after {MAX_WALK} buckets"));
                    }
                    if !chain.insert(bucket) {
                        return Err(format!("a cycle in an overflow chain at {bucket:#x}"));
                    }
                    let mut tophash = [0u8; 8];
                    formatter
                        .memory
                        .read(bucket, &mut tophash)
                        .map_err(|e| format!("bucket at {bucket:#x}: {e}"))?;
                    for (slot, hash) in tophash.iter().enumerate() {
                        // 0..=4: empty, or moved out while the map grows.
                        if *hash > 4 && !visit(slots.entry(formatter, self, bucket, slot as u64)) {
                            return Ok(());
                        }
                    }
                    bucket = read_word(formatter, bucket + overflow_at, 8)
                        .map_err(|e| format!("overflow of bucket {bucket:#x}: {e}"))?;
                }
            }
        }
        Ok(())
    }

    /// Swiss tables: a small map (`dirLen` 0) is the one group `dirPtr` points to;
    /// otherwise `dirPtr` is a directory of tables, where a table appears once for each
    /// of the 2^(globalDepth - localDepth) slots it covers, and is walked once.
    fn walk_tables(
        &self,
        formatter: &Formatter,
        visit: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<(), String> {
        let directory_member = member(&self.members, "dirPtr").ok_or("no dirPtr")?;
        let table_type = pointee_of(formatter, pointee_of(formatter, directory_member.type_id));
        let (table_members, _) = struct_of(formatter, table_type).ok_or("no table type")?;
        let groups = member(&table_members, "groups").ok_or("a table without groups")?;
        let (reference_members, _) =
            struct_of(formatter, groups.type_id).ok_or("no group reference type")?;
        let data = member(&reference_members, "data").ok_or("no group data")?;
        let mask = member(&reference_members, "lengthMask").ok_or("no group mask")?;
        let group_type = pointee_of(formatter, data.type_id);
        let slots = Slots::of_group(formatter, group_type).ok_or("an unknown group layout")?;
        let directory = self.header(formatter, "dirPtr")?;
        let directory_len = self.header(formatter, "dirLen")?;
        let mut steps = 0u64;
        if directory == 0 {
            return Ok(());
        }
        if directory_len == 0 {
            self.walk_group(formatter, &slots, directory, &mut steps, visit)?;
            return Ok(());
        }
        if directory_len > MAX_WALK {
            return Err(format!(
                "a corrupt map: a directory of {directory_len} tables"
            ));
        }
        let groups_at = groups.offset.unwrap_or(0);
        let mut seen = FxHashSet::default();
        for index in 0..directory_len {
            let table = read_word(formatter, directory + index * 8, 8)
                .map_err(|e| format!("directory at {directory:#x}: {e}"))?;
            if table == 0 || !seen.insert(table) {
                continue;
            }
            let field = |member: &Member| {
                read_word(formatter, table + groups_at + member.offset.unwrap_or(0), 8)
                    .map_err(|e| format!("table at {table:#x}: {e}"))
            };
            let first = field(data)?;
            let length_mask = field(mask)?;
            if length_mask >= MAX_WALK {
                return Err(format!(
                    "a corrupt map: a table of {} groups",
                    length_mask as u128 + 1
                ));
            }
            for group in 0..=length_mask {
                let at = first
                    .checked_add(group * slots.size)
                    .ok_or("groups beyond the address space")?;
                if !self.walk_group(formatter, &slots, at, &mut steps, visit)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The full slots of one Swiss-table group; `Ok(false)` when `visit` had enough.
    fn walk_group(
        &self,
        formatter: &Formatter,
        slots: &Slots,
        group: u64,
        steps: &mut u64,
        visit: &mut dyn FnMut(Entry) -> bool,
    ) -> Result<bool, String> {
        *steps += 1;
        if *steps > MAX_WALK {
            return Err(format!("the walk stopped after {MAX_WALK} groups"));
        }
        let ctrl =
            read_word(formatter, group, 8).map_err(|e| format!("group at {group:#x}: {e}"))?;
        for slot in 0..8u64 {
            // A full slot's control byte has its top bit clear (empty 0x80, deleted
            // 0xfe).
            if (ctrl >> (slot * 8)) & 0x80 == 0 && !visit(slots.entry(formatter, self, group, slot))
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl View for GoMap {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        if self.address == 0 {
            return format!("{} nil", self.label);
        }
        let shown = self.len.min(formatter.limits.summary_elements as u64);
        let (entries, stopped) = self.first_entries(formatter, shown);
        let mut text = format!("{} [", self.label);
        for (i, entry) in entries.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            if text.len() > formatter.limits.summary_chars {
                text.push_str("...");
                return text + "]";
            }
            let _ = write!(
                text,
                "{}: {}",
                formatter.summary_at(&entry.key, depth + 1),
                formatter.summary_at(&entry.value, depth + 1)
            );
        }
        let separator = if entries.is_empty() { "" } else { ", " };
        if let Some(why) = stopped {
            let _ = write!(text, "{separator}<error: {why}>");
        } else if (entries.len() as u64) < self.len {
            let _ = write!(text, "{separator}...");
        }
        text.push(']');
        text
    }

    fn named(&self, formatter: &Formatter) -> Vec<Child> {
        vec![number_child(formatter, "len", self.len)]
    }

    fn element_count(&self, _formatter: &Formatter) -> u64 {
        self.len
    }

    /// Entries `start..start + count`: the walk passes the first `start` without
    /// keeping them.
    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        let end = start.saturating_add(count).min(self.len);
        if start >= end {
            return Vec::new();
        }
        let mut seen = 0u64;
        let mut children = Vec::new();
        let stopped = self
            .walk(formatter, &mut |entry| {
                if seen >= start {
                    children.push(Child {
                        name: format!("[{}]", formatter.summary_at(&entry.key, 1)),
                        value: entry.value,
                    });
                }
                seen += 1;
                seen < end
            })
            .err();
        if seen < end {
            let why = stopped.unwrap_or_else(|| {
                format!(
                    "the map says it has {} entries; {seen} were found",
                    self.len
                )
            });
            children.push(error_child("[...]", why));
        }
        children
    }

    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        let wanted_bytes = string_bytes(formatter, key);
        let wanted_text = formatter.summary(key);
        let mut found = None;
        let stopped = self
            .walk(formatter, &mut |entry| {
                let matches = match &wanted_bytes {
                    // Strings by their bytes: a summary may be cut.
                    Some(bytes) => string_bytes(formatter, &entry.key).as_ref() == Some(bytes),
                    // Other keys (numbers, booleans) by their text.
                    None => formatter.summary(&entry.key) == wanted_text,
                };
                if matches {
                    found = Some(entry.value);
                }
                !matches
            })
            .err();
        Some(match (found, stopped) {
            (Some(value), _) => Ok(value),
            (None, Some(why)) => Err(format!("{wanted_text} was not found before {why}")),
            (None, None) => Err(format!("the map has no key {wanted_text}")),
        })
    }
}

/// `chan T`: a `hchan` whose buffer is a ring of `dataqsiz` elements, `qcount` of them
/// queued from `recvx` on.
struct Channel {
    label: String,
    address: u64,
    len: u64,
    cap: u64,
    buffer: u64,
    first: u64,
    element_type: Option<TypeId>,
    element_size: u64,
    corrupt: Option<String>,
}

impl Channel {
    fn read(
        formatter: &Formatter,
        value: &Value,
        label: String,
        address: u64,
        members: &[Member],
    ) -> Option<Channel> {
        let field = |name: &str| -> Option<u64> {
            let m = member(members, name)?;
            let size = formatter.unit.types.size_of(m.type_id)?;
            read_word(formatter, address.checked_add(m.offset?)?, size as usize).ok()
        };
        let element_type = go_type_attribute(formatter, value.type_id, DW_AT_GO_ELEM);
        let element_size = formatter.unit.types.size_of(element_type).unwrap_or(0);
        let mut channel = Channel {
            label,
            address,
            len: 0,
            cap: 0,
            buffer: 0,
            first: 0,
            element_type,
            element_size,
            corrupt: None,
        };
        if address == 0 {
            return Some(channel);
        }
        channel.len = field("qcount")?;
        channel.cap = field("dataqsiz")?;
        channel.buffer = field("buf")?;
        channel.first = field("recvx")?;
        let elemsize = field("elemsize")?;
        if channel.len > channel.cap || (channel.cap > 0 && channel.first >= channel.cap) {
            channel.corrupt = Some(format!(
                "a corrupt channel: {} of {} queued from {}",
                channel.len, channel.cap, channel.first
            ));
        } else if element_type.is_some() && elemsize != element_size {
            channel.corrupt = Some(format!(
                "elements of {elemsize} bytes where the type says {element_size}"
            ));
        }
        Some(channel)
    }

    fn element(&self, index: u64) -> Value {
        // Queued elements start at recvx and wrap around the ring.
        let slot = (self.first + index) % self.cap.max(1);
        match slot
            .checked_mul(self.element_size)
            .and_then(|offset| self.buffer.checked_add(offset))
        {
            Some(address) => Value::new(self.element_type, Contents::Memory(address)),
            None => Value::new(
                self.element_type,
                Contents::Error("beyond the address space".into()),
            ),
        }
    }

    fn has_elements(&self) -> bool {
        self.corrupt.is_none() && self.element_type.is_some() && self.element_size > 0
    }
}

impl View for Channel {
    fn summary(&self, _formatter: &Formatter, _depth: usize) -> String {
        if self.address == 0 {
            return format!("{} nil", self.label);
        }
        match &self.corrupt {
            Some(why) => format!("{} <error: {why}>", self.label),
            None => format!("{} {}/{}", self.label, self.len, self.cap),
        }
    }

    fn named(&self, formatter: &Formatter) -> Vec<Child> {
        let mut named = vec![
            number_child(formatter, "len", self.len),
            number_child(formatter, "cap", self.cap),
        ];
        if let Some(why) = &self.corrupt {
            named.push(error_child("elements", why.clone()));
        }
        named
    }

    fn element_count(&self, _formatter: &Formatter) -> u64 {
        if self.has_elements() {
            self.len
        } else {
            0
        }
    }

    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        let end = start
            .saturating_add(count)
            .min(self.element_count(formatter));
        (start..end)
            .map(|i| Child {
                name: format!("[{i}]"),
                value: self.element(i),
            })
            .collect()
    }

    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        let index = match integer_key(formatter, key) {
            Ok(index) => index,
            Err(why) => return Some(Err(why)),
        };
        let count = self.element_count(formatter);
        Some(if index >= 0 && (index as u128) < u128::from(count) {
            Ok(self.element(index as u64))
        } else {
            Err(format!(
                "index {index} is out of range: {count} elements are queued"
            ))
        })
    }
}

/// An interface value: `runtime.eface` `{_type, data}` (`interface {}`, `any`) or
/// `runtime.iface` `{tab, data}` whose `itab` holds the dynamic type.
struct Interface {
    label: String,
    /// `None`: a nil interface.
    dynamic: Option<Dynamic>,
}

/// The value inside an interface and its type.
struct Dynamic {
    type_name: String,
    value: Value,
}

impl Interface {
    fn read(formatter: &Formatter, value: &Value, members: &[Member]) -> Option<Interface> {
        let label = formatter.type_name(value);
        let data_member = member(members, "data")?;
        let data = member_integer(formatter, value, data_member)?;
        // The runtime type descriptor: eface's `_type`, or iface's `tab._type`.
        let (descriptor, descriptor_type) = if let Some(direct) = member(members, "_type") {
            (
                member_integer(formatter, value, direct)?,
                pointee_of(formatter, direct.type_id),
            )
        } else {
            let tab = member(members, "tab")?;
            let itab = member_integer(formatter, value, tab)?;
            if itab == 0 {
                return Some(Interface {
                    label,
                    dynamic: None,
                });
            }
            let (itab_members, _) = struct_of(formatter, pointee_of(formatter, tab.type_id))?;
            let field = member_named(&itab_members, &["_type", "Type"])?;
            let address = read_word(formatter, itab.checked_add(field.offset?)?, 8).ok()?;
            (address, pointee_of(formatter, field.type_id))
        };
        if descriptor == 0 {
            return Some(Interface {
                label,
                dynamic: None,
            });
        }
        let dynamic = match Descriptor::read(formatter, descriptor, descriptor_type) {
            Ok(found) => found.value(formatter, data),
            Err(why) => Dynamic {
                type_name: format!("{descriptor:#x}"),
                value: Value::new(None, Contents::Error(why)),
            },
        };
        Some(Interface {
            label,
            dynamic: Some(dynamic),
        })
    }
}

impl View for Interface {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let Some(dynamic) = &self.dynamic else {
            return format!("{} nil", self.label);
        };
        // A pointer shows what it points to, as Delve does: `*{s = "boom"}`.
        let shown = match formatter.pointee(&dynamic.value) {
            Some(target)
                if matches!(
                    formatter
                        .unit
                        .types
                        .strip(target.type_id)
                        .map(|(_, t)| t)
                        .as_deref(),
                    Some(Type::Aggregate { .. })
                ) =>
            {
                format!("*{}", formatter.summary_at(&target, depth + 1))
            }
            _ => formatter.summary_at(&dynamic.value, depth + 1),
        };
        format!("{}({}) {shown}", self.label, dynamic.type_name)
    }

    fn named(&self, _formatter: &Formatter) -> Vec<Child> {
        self.dynamic
            .iter()
            .map(|dynamic| Child {
                name: "data".into(),
                value: dynamic.value.clone(),
            })
            .collect()
    }
}

/// A runtime type descriptor (`runtime._type`, `internal/abi.Type`) read from memory.
struct Descriptor {
    /// The DWARF type whose `DW_AT_go_runtime_type` is this descriptor.
    type_id: Option<TypeId>,
    /// The name the descriptor itself carries, for a type DWARF does not describe.
    name: Option<String>,
    /// The interface's data word is the value itself, not a pointer to it.
    direct: bool,
}

impl Descriptor {
    fn read(
        formatter: &Formatter,
        address: u64,
        descriptor_type: Option<TypeId>,
    ) -> Result<Descriptor, String> {
        let (members, _) = struct_of(formatter, descriptor_type)
            .ok_or("no DWARF type for runtime type descriptors")?;
        let byte = |names: &[&str]| -> Result<u8, String> {
            let field = member_named(&members, names)
                .ok_or_else(|| format!("no {} in the type descriptor", names[0]))?;
            let at = address
                .checked_add(field.offset.unwrap_or(0))
                .ok_or("beyond the address space")?;
            Ok(read_word(formatter, at, 1)? as u8)
        };
        let tflag = byte(&["tflag"])?;
        let kind = byte(&["kind", "kind_"])?;
        let direct = (tflag | kind) & DIRECT_IFACE != 0;
        let runtime = formatter.unit.go_runtime_types();
        let Some(base) = runtime.types_base(formatter) else {
            return Ok(Descriptor {
                type_id: None,
                name: None,
                direct,
            });
        };
        let offset = address.wrapping_sub(base);
        let name = member_named(&members, &["str"]).and_then(|field| {
            let at = address.checked_add(field.offset?)?;
            let name_offset = read_word(formatter, at, 4).ok()? as u32 as i32;
            descriptor_name(formatter, base, name_offset, tflag)
        });
        Ok(Descriptor {
            type_id: runtime.by_offset.get(&offset).copied(),
            name,
            direct,
        })
    }

    fn value(&self, formatter: &Formatter, data: u64) -> Dynamic {
        let type_name = match (self.type_id, &self.name) {
            (Some(id), _) => formatter.unit.types.name_of(Some(id)),
            (None, Some(name)) => name.clone(),
            (None, None) => "?".into(),
        };
        let Some(id) = self.type_id else {
            return Dynamic {
                type_name,
                value: Value::new(
                    None,
                    Contents::Error(format!(
                        "no DWARF type for the dynamic type (data {data:#x})"
                    )),
                ),
            };
        };
        let contents = if self.direct {
            Contents::bytes(data.to_le_bytes().to_vec())
        } else if data == 0 {
            Contents::Error("a nil data pointer".into())
        } else {
            Contents::Memory(data)
        };
        Dynamic {
            type_name,
            value: Value::new(Some(id), contents),
        }
    }
}

/// The name a descriptor's `str` (a `nameOff` into the types section) leads to: a flag
/// byte, a varint length, the bytes.
fn descriptor_name(formatter: &Formatter, base: u64, offset: i32, tflag: u8) -> Option<String> {
    let at = base.checked_add_signed(i64::from(offset))?;
    let mut header = [0u8; 11];
    formatter.memory.read(at, &mut header[..3]).ok()?;
    let mut len = 0usize;
    let mut used = 1;
    for (i, byte) in header[1..3].iter().enumerate() {
        len |= usize::from(byte & 0x7f) << (7 * i);
        used += 1;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let len = len.min(formatter.limits.max_string);
    let mut bytes = vec![0u8; len];
    formatter.memory.read(at + used as u64, &mut bytes).ok()?;
    let name = String::from_utf8_lossy(&bytes).into_owned();
    Some(match name.strip_prefix('*') {
        Some(rest) if tflag & TFLAG_EXTRA_STAR != 0 => rest.to_string(),
        _ => name,
    })
}

/// Go's runtime type descriptors as DWARF knows them: each type DIE's
/// `DW_AT_go_runtime_type` is its descriptor's offset in the module's types section,
/// which starts at `runtime.firstmoduledata.types`.
///
/// Why this way: matching descriptors to ELF symbols fails (Go's linker leaves the
/// `type:*` symbols of single types out of the symbol table), and matching the name a
/// descriptor carries against DWARF names is ambiguous (`T` of two packages with the
/// same name) and misses unnamed types; the offset names exactly one DIE. The name is
/// kept as the fallback for a type without DWARF.
#[derive(Default)]
pub struct RuntimeTypes {
    by_offset: FxHashMap<u64, TypeId>,
    /// `runtime.firstmoduledata` (run-time address) and its type.
    moduledata: Option<(u64, Option<TypeId>)>,
}

impl RuntimeTypes {
    /// Walks the units Go's linker names "runtime" (which hold every type and the
    /// runtime's variables), once per compile unit.
    pub fn index(
        dwarf: &gimli::Dwarf<Reader>,
        types: &crate::values::Types,
        load_bias: u64,
    ) -> RuntimeTypes {
        let mut index = RuntimeTypes::default();
        let mut headers = dwarf.units();
        while let Ok(Some(header)) = headers.next() {
            let Ok(unit) = dwarf.unit(header) else {
                continue;
            };
            if unit_name(dwarf, &unit).as_deref() != Some("runtime") {
                continue;
            }
            let _ = index.add_unit(dwarf, types, &unit, load_bias);
        }
        index
    }

    fn add_unit(
        &mut self,
        dwarf: &gimli::Dwarf<Reader>,
        types: &crate::values::Types,
        unit: &gimli::Unit<Reader>,
        load_bias: u64,
    ) -> gimli::Result<()> {
        let mut entries = unit.entries();
        while let Some(entry) = entries.next_dfs()? {
            if entry.depth() != 1 {
                continue;
            }
            if let Some(offset) =
                entry
                    .attr_value(DW_AT_GO_RUNTIME_TYPE)
                    .and_then(|value| match value {
                        // DW_FORM_addr holding an offset, as Go's linker writes it.
                        gimli::AttributeValue::Addr(offset) => Some(offset),
                        other => other.udata_value(),
                    })
            {
                // 0: a type with no descriptor (the runtime's map internals).
                if offset != 0 {
                    if let Some(at) = entry.offset().to_debug_info_offset(&unit.header) {
                        self.by_offset.entry(offset).or_insert(TypeId(at.0));
                    }
                }
                continue;
            }
            if entry.tag() != gimli::DW_TAG_variable || self.moduledata.is_some() {
                continue;
            }
            let named = entry
                .attr_value(gimli::DW_AT_name)
                .and_then(|v| dwarf.attr_string(unit, v).ok())
                .is_some_and(|name| name.slice() == b"runtime.firstmoduledata");
            if !named {
                continue;
            }
            let Some(gimli::AttributeValue::Exprloc(expression)) =
                entry.attr_value(gimli::DW_AT_location)
            else {
                continue;
            };
            let mut ops = expression.operations(unit.encoding());
            if let Ok(Some(gimli::Operation::Address { address })) = ops.next() {
                let type_id = entry
                    .attr_value(gimli::DW_AT_type)
                    .and_then(|value| types.reference(unit, value));
                self.moduledata = Some((address.wrapping_add(load_bias), type_id));
            }
        }
        Ok(())
    }

    /// Where the types section starts at run time (`firstmoduledata.types`).
    fn types_base(&self, formatter: &Formatter) -> Option<u64> {
        let (address, type_id) = self.moduledata?;
        let (members, _) = struct_of(formatter, type_id)?;
        let field = member(&members, "types")?;
        read_word(formatter, address.checked_add(field.offset?)?, 8).ok()
    }
}

fn unit_name(dwarf: &gimli::Dwarf<Reader>, unit: &gimli::Unit<Reader>) -> Option<String> {
    let mut entries = unit.entries();
    let root = entries.next_dfs().ok()??;
    let name = dwarf
        .attr_string(unit, root.attr_value(gimli::DW_AT_name)?)
        .ok()?;
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests;
