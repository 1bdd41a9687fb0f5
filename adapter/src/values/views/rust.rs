//! Rust's standard library, read from its layout: `String`, `&str`, `Vec<T>`, slices,
//! enums, `Rc`/`Arc`, `HashMap`/`HashSet`, `Cell`/`RefCell`, `&dyn Trait`.
//!
//! Types are recognised by their qualified names (`alloc::vec::Vec<i32, ...>`), then
//! read by their fields' names, so a layout that is not the one expected (another
//! toolchain) is no view and shows as its fields. Summaries are the text rust-gdb's
//! pretty printers print (`Vec(size=3) = {1, 2, 3}`, `core::option::Option<i32>::Some(5)`)
//! so that rust-gdb is the tests' oracle. `Box<T>` is a pointer in Rust's DWARF and
//! shows as one, as in rust-gdb.

use std::fmt::Write as _;

use super::{error_child, integer_key, number_child, Sequence, View, MAX_WALK};
use crate::values::format::{quote, Child, Formatter};
use crate::values::types::{BaseEncoding, Member, Type, TypeId, VariantPart};
use crate::values::value::{error_text, Contents, Value};
use crate::values::MAX_READ;

/// How many wrappers (`Unique` in `NonNull` in a pointer, `UnsafeCell` in `Cell`) a
/// field is unwrapped through to its number: the library nests three or four.
const MAX_WRAPPERS: usize = 8;

/// The view of a Rust standard library value, if `ty` is one.
pub fn view(formatter: &Formatter, value: &Value, id: TypeId, ty: &Type) -> Option<Box<dyn View>> {
    let Type::Aggregate {
        name: Some(_),
        variants,
        ..
    } = ty
    else {
        return None;
    };
    if let Some(part) = variants {
        return Some(Box::new(Enum::read(formatter, value, id, part)));
    }
    let name = formatter.unit.types.qualified_name(id)?;
    if name.contains("dyn ") {
        if let Some(view) = TraitObject::read(formatter, value) {
            return Some(Box::new(view));
        }
    }
    let generic = |prefix: &str| name.starts_with(prefix) && name.ends_with('>');
    if name == "alloc::string::String" {
        let bytes = field(formatter, value, &["vec"])?;
        let (data, len) = vec_parts(formatter, &bytes)?;
        return Some(Box::new(Text::new(formatter, data, len)));
    }
    if name == "&str" || name == "&mut str" {
        let data = field_number(formatter, value, &["data_ptr"])?;
        let len = field_number(formatter, value, &["length"])?;
        return Some(Box::new(Text::new(formatter, data, len)));
    }
    if generic("alloc::vec::Vec<") {
        return vec(formatter, value, id);
    }
    if (name.starts_with("&[") || name.starts_with("&mut [")) && name.ends_with(']') {
        return slice(formatter, value, &name);
    }
    if generic("alloc::rc::Rc<") || generic("alloc::sync::Arc<") {
        return counted(formatter, value, &name);
    }
    if generic("std::collections::hash::map::HashMap<") {
        let table = field(formatter, value, &["base", "table"])?;
        return Some(Box::new(HashTable::read(formatter, &table, true)?));
    }
    if generic("std::collections::hash::set::HashSet<") {
        let table = field(formatter, value, &["base", "map", "table"])?;
        return Some(Box::new(HashTable::read(formatter, &table, false)?));
    }
    if generic("core::cell::Cell<") {
        let inner = field(formatter, value, &["value", "value"])?;
        return Some(Box::new(CellView {
            label: "Cell".into(),
            inner,
            borrow: None,
        }));
    }
    if generic("core::cell::RefCell<") {
        let inner = field(formatter, value, &["value", "value"])?;
        let borrow = field(formatter, value, &["borrow"])?;
        let borrow = signed_number(formatter, &borrow)?;
        return Some(Box::new(CellView {
            label: format!("RefCell(borrow={borrow})"),
            inner,
            borrow: Some(borrow),
        }));
    }
    None
}

/// The member `path[0]` of `value`, then its member `path[1]`, and so on.
fn field(formatter: &Formatter, value: &Value, path: &[&str]) -> Option<Value> {
    let mut current = value.clone();
    for name in path {
        let (_, ty) = formatter.unit.types.strip(current.type_id)?;
        let Type::Aggregate { members, .. } = &*ty else {
            return None;
        };
        let member = members.iter().find(|m| m.name.as_deref() == Some(*name))?;
        current = formatter.member_value(&current, member);
    }
    Some(current)
}

/// The number a value holds, unwrapped from the structs the library wraps its numbers
/// and pointers in (`NonNull { pointer }`, `Cell { value: UnsafeCell { value } }`,
/// `UsizeNoHighBit(usize)`): each wrapper's first member, down to an integer or a
/// pointer. `None` when it does not come down to one.
fn number(formatter: &Formatter, value: &Value) -> Option<u64> {
    let (value, size) = unwrapped(formatter, value)?;
    formatter.integer(&value, size, false).ok()
}

fn signed_number(formatter: &Formatter, value: &Value) -> Option<i64> {
    let (value, size) = unwrapped(formatter, value)?;
    formatter
        .integer(&value, size, true)
        .ok()
        .map(|raw| raw as i64)
}

fn unwrapped(formatter: &Formatter, value: &Value) -> Option<(Value, u64)> {
    let mut current = value.clone();
    for _ in 0..MAX_WRAPPERS {
        let (_, ty) = formatter.unit.types.strip(current.type_id)?;
        match &*ty {
            Type::Base { size, .. } | Type::Pointer { size, .. } => return Some((current, *size)),
            Type::Aggregate {
                members,
                variants: None,
                ..
            } => {
                let first = members.first()?;
                current = formatter.member_value(&current, first);
            }
            _ => return None,
        }
    }
    None
}

fn field_number(formatter: &Formatter, value: &Value, path: &[&str]) -> Option<u64> {
    number(formatter, &field(formatter, value, path)?)
}

/// A `Vec`'s (or `String`'s bytes') data pointer and length.
fn vec_parts(formatter: &Formatter, vec: &Value) -> Option<(u64, u64)> {
    let data = field_number(formatter, vec, &["buf", "inner", "ptr"])?;
    let len = field_number(formatter, vec, &["len"])?;
    Some((data, len))
}

/// `String`, `&str`: UTF-8 bytes shown as a string literal (invalid bytes escaped, cut at
/// the formatter's limit).
struct Text {
    text: String,
}

impl Text {
    fn new(formatter: &Formatter, data: u64, len: u64) -> Text {
        Text {
            text: if len == 0 {
                quote(&[])
            } else {
                formatter.string_at(data, len)
            },
        }
    }
}

impl View for Text {
    fn summary(&self, _formatter: &Formatter, _depth: usize) -> String {
        self.text.clone()
    }
}

/// A view that is only a message: a container whose fields cannot be what they say
/// (uninitialised memory, a corrupted object), shown as why rather than walked.
struct Broken {
    why: String,
}

impl View for Broken {
    fn summary(&self, _formatter: &Formatter, _depth: usize) -> String {
        error_text(&self.why)
    }
}

/// Elements as rust-gdb shows them: `Vec(size=3) = {1, 2, 3}`, and `Vec(size=0)` alone.
struct Elements(Sequence);

impl View for Elements {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        if self.0.count == 0 {
            return self.0.label.clone();
        }
        self.0.summary(formatter, depth)
    }
    fn named(&self, formatter: &Formatter) -> Vec<Child> {
        self.0.named(formatter)
    }
    fn element_count(&self, formatter: &Formatter) -> u64 {
        self.0.element_count(formatter)
    }
    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        self.0.elements(formatter, start, count)
    }
    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        self.0.index(formatter, key)
    }
}

/// Whether `count` elements of `stride` bytes can be what a live object holds: they fit
/// in the address space as Rust allows an allocation (`isize::MAX` bytes).
fn plausible(count: u64, stride: u64) -> bool {
    count
        .checked_mul(stride.max(1))
        .is_some_and(|bytes| bytes <= i64::MAX as u64)
}

/// `Vec<T>`: a buffer (pointer, capacity) and a length; `T` from the type's template
/// parameter, as the buffer's pointer is untyped (`*const u8`).
fn vec(formatter: &Formatter, value: &Value, id: TypeId) -> Option<Box<dyn View>> {
    let types = &formatter.unit.types;
    let element_type = types.template_parameter(id, "T")?;
    let stride = types.size_of(Some(element_type))?;
    let (data, len) = vec_parts(formatter, value)?;
    let capacity = field_number(formatter, value, &["buf", "inner", "cap"])?;
    // A zero-sized T has no buffer: its capacity reads as usize::MAX or 0.
    if stride > 0 && (len > capacity || !plausible(capacity, stride)) {
        return Some(Box::new(Broken {
            why: format!(
                "a Vec of length {len} and capacity {capacity}: uninitialised or corrupted"
            ),
        }));
    }
    Some(Box::new(Elements(Sequence {
        label: format!("Vec(size={len})"),
        separator: " = ",
        first: Contents::Memory(data),
        element_type: Some(element_type),
        stride,
        count: len,
        named: vec![
            number_child(formatter, "len", len),
            number_child(formatter, "capacity", capacity),
        ],
    })))
}

/// `&[T]`: a pointer to the first element and a length: `&[i32](size=2) = {2, 3}`.
fn slice(formatter: &Formatter, value: &Value, name: &str) -> Option<Box<dyn View>> {
    let pointer = field(formatter, value, &["data_ptr"])?;
    let (_, ty) = formatter.unit.types.strip(pointer.type_id)?;
    let Type::Pointer { pointee, .. } = &*ty else {
        return None;
    };
    let stride = formatter.unit.types.size_of(*pointee)?;
    let data = number(formatter, &pointer)?;
    let len = field_number(formatter, value, &["length"])?;
    if !plausible(len, stride) {
        return Some(Box::new(Broken {
            why: format!("a slice of length {len}: uninitialised or corrupted"),
        }));
    }
    Some(Box::new(Elements(Sequence {
        label: format!("{name}(size={len})"),
        separator: " = ",
        first: Contents::Memory(data),
        element_type: *pointee,
        stride,
        count: len,
        named: vec![number_child(formatter, "len", len)],
    })))
}

/// An enum: the variant the discriminant chooses, and its fields.
struct Enum {
    /// `core::option::Option<i32>::Some`, or why no variant could be chosen.
    name: Result<String, String>,
    /// The variant's fields (`__0` for a tuple variant), in order.
    fields: Vec<Child>,
    /// A tuple variant: its fields show as `(a, b)` rather than `{x: a}`.
    tuple: bool,
}

impl Enum {
    fn read(formatter: &Formatter, value: &Value, id: TypeId, part: &VariantPart) -> Enum {
        let types = &formatter.unit.types;
        let enum_name = types
            .qualified_name(id)
            .unwrap_or_else(|| types.name_of(Some(id)));
        let chosen = match &part.discriminant {
            None => part
                .variants
                .first()
                .map(|v| &v.member)
                .ok_or_else(|| "an enum without variants".to_string()),
            Some(discriminant) => Enum::chosen(formatter, value, discriminant, part),
        };
        let variant = match chosen {
            Ok(variant) => variant,
            Err(why) => {
                return Enum {
                    name: Err(why),
                    fields: Vec::new(),
                    tuple: false,
                }
            }
        };
        let payload = formatter.member_value(value, variant);
        let members = match types.strip(payload.type_id) {
            Some((_, ty)) => match &*ty {
                Type::Aggregate { members, .. } => members.clone(),
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        let tuple = !members.is_empty()
            && members
                .iter()
                .all(|m| m.name.as_deref().is_some_and(|n| n.starts_with("__")));
        let fields = members
            .iter()
            .map(|member| Child {
                name: member.name.clone().unwrap_or_default(),
                value: formatter.member_value(&payload, member),
            })
            .collect();
        Enum {
            name: Ok(format!(
                "{enum_name}::{}",
                variant.name.as_deref().unwrap_or("?")
            )),
            fields,
            tuple,
        }
    }

    /// The variant whose value the discriminant holds, else the default (untagged)
    /// variant: in a niche layout that is the one whose payload the discriminant is part of.
    fn chosen<'p>(
        formatter: &Formatter,
        value: &Value,
        discriminant: &Member,
        part: &'p VariantPart,
    ) -> Result<&'p Member, String> {
        let size = formatter
            .unit
            .types
            .size_of(discriminant.type_id)
            .ok_or("a discriminant of unknown size")?;
        let raw = formatter.integer(&formatter.member_value(value, discriminant), size, false)?;
        let tagged = part.variants.iter().find(|v| v.discr_value == Some(raw));
        let default = || part.variants.iter().find(|v| v.discr_value.is_none());
        tagged
            .or_else(default)
            .map(|v| &v.member)
            .ok_or_else(|| format!("the discriminant {raw} names no variant"))
    }
}

impl View for Enum {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let name = match &self.name {
            Ok(name) => name,
            Err(why) => return error_text(why),
        };
        if self.fields.is_empty() {
            return name.clone();
        }
        let mut text = name.clone();
        text.push(if self.tuple { '(' } else { '{' });
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            if !self.tuple {
                let _ = write!(text, "{}: ", field.name);
            }
            text.push_str(&field_summary(formatter, &field.value, depth + 1));
        }
        text.push(if self.tuple { ')' } else { '}' });
        text
    }

    fn named(&self, _formatter: &Formatter) -> Vec<Child> {
        match &self.name {
            Ok(_) => self.fields.clone(),
            Err(why) => vec![error_child("variant", why.clone())],
        }
    }
}

/// A variant's field in the enum's summary: `()` as Rust writes it (its DWARF is a
/// base type of no bytes, which reads as 0).
fn field_summary(formatter: &Formatter, value: &Value, depth: usize) -> String {
    if let Some((_, ty)) = formatter.unit.types.strip(value.type_id) {
        if let Type::Base { name, size: 0, .. } = &*ty {
            if name == "()" {
                return "()".into();
            }
        }
    }
    formatter.summary_at(value, depth)
}

/// `Rc<T>`, `Arc<T>`: the shared value behind a pointer with its counts. The weak count
/// shown is the number of `Weak`s, as rust-gdb shows it: the library keeps one more
/// while any strong reference lives.
fn counted(formatter: &Formatter, value: &Value, name: &str) -> Option<Box<dyn View>> {
    let pointer = field(formatter, value, &["ptr"])?;
    let (inner_pointer, _) = unwrapped(formatter, &pointer)?;
    let inner = formatter.pointee(&inner_pointer)?;
    let label = if name.starts_with("alloc::rc::") {
        "Rc"
    } else {
        "Arc"
    };
    let shared =
        field(formatter, &inner, &["value"]).or_else(|| field(formatter, &inner, &["data"]))?;
    let strong = field_number(formatter, &inner, &["strong"]);
    let weak = field_number(formatter, &inner, &["weak"]);
    let (Some(strong), Some(weak)) = (strong, weak) else {
        return Some(Box::new(Broken {
            why: format!("the counts of this {label} cannot be read"),
        }));
    };
    let weak = if strong > 0 {
        weak.saturating_sub(1)
    } else {
        weak
    };
    Some(Box::new(Counted {
        label: format!("{label}(strong={strong}, weak={weak})"),
        shared,
        strong,
        weak,
    }))
}

struct Counted {
    label: String,
    shared: Value,
    strong: u64,
    weak: u64,
}

impl View for Counted {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        format!(
            "{} = {{value = {}, strong = {}, weak = {}}}",
            self.label,
            formatter.summary_at(&self.shared, depth + 1),
            self.strong,
            self.weak
        )
    }

    fn named(&self, formatter: &Formatter) -> Vec<Child> {
        vec![
            Child {
                name: "value".into(),
                value: self.shared.clone(),
            },
            number_child(formatter, "strong", self.strong),
            number_child(formatter, "weak", self.weak),
        ]
    }
}

/// `Cell<T>` (`Cell = {value = 9}`) and `RefCell<T>` (`RefCell(borrow=1) = {value = ...,
/// borrow = 1}`: the number of shared borrows, -1 while borrowed mutably).
struct CellView {
    label: String,
    inner: Value,
    borrow: Option<i64>,
}

impl View for CellView {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let value = formatter.summary_at(&self.inner, depth + 1);
        match self.borrow {
            Some(borrow) => format!("{} = {{value = {value}, borrow = {borrow}}}", self.label),
            None => format!("{} = {{value = {value}}}", self.label),
        }
    }

    fn named(&self, formatter: &Formatter) -> Vec<Child> {
        let mut children = vec![Child {
            name: "value".into(),
            value: self.inner.clone(),
        }];
        if let Some(borrow) = self.borrow {
            let types = &formatter.unit.types;
            let id = types.base("isize", BaseEncoding::Signed, 8);
            children.push(Child {
                name: "borrow".into(),
                value: Value::new(Some(id), Contents::bytes(borrow.to_le_bytes().to_vec())),
            });
        }
        children
    }
}

/// hashbrown's table (`HashMap`, `HashSet`): `buckets` (a power of two) control bytes
/// at `ctrl`, one per bucket, whose top bit is clear for a full bucket; bucket `i`'s
/// entry is stored below them, at `ctrl - (i + 1) * size_of::<T>()`.
struct HashTable {
    map: bool,
    items: u64,
    ctrl: u64,
    buckets: u64,
    entry_type: TypeId,
    entry_size: u64,
    /// The full buckets' entries, in bucket order, as far as the walk went; `Err` ends
    /// a walk cut short (unreadable control bytes, too many buckets).
    entries: Result<Vec<Value>, (Vec<Value>, String)>,
}

impl HashTable {
    fn read(formatter: &Formatter, table: &Value, map: bool) -> Option<HashTable> {
        let types = &formatter.unit.types;
        let (table_id, _) = types.strip(table.type_id)?;
        let entry_type = types.template_parameter(table_id, "T")?;
        let entry_size = types.size_of(Some(entry_type))?;
        let inner = field(formatter, table, &["table"])?;
        let mask = field_number(formatter, &inner, &["bucket_mask"])?;
        let ctrl = field_number(formatter, &inner, &["ctrl"])?;
        let items = field_number(formatter, &inner, &["items"])?;
        let buckets = mask.wrapping_add(1);
        let mut view = HashTable {
            map,
            items,
            ctrl,
            buckets,
            entry_type,
            entry_size,
            entries: Ok(Vec::new()),
        };
        view.entries = view.walk(formatter);
        Some(view)
    }

    /// The full buckets' entries: the control bytes read in pieces of at most
    /// `MAX_READ`, at most `MAX_WALK` buckets looked at.
    fn walk(&self, formatter: &Formatter) -> Result<Vec<Value>, (Vec<Value>, String)> {
        let mut found = Vec::new();
        // An empty table points at a static group of empty control bytes and has one
        // bucket (mask 0) that is never full.
        if self.items == 0 {
            return Ok(found);
        }
        if !self.buckets.is_power_of_two() || self.items > self.buckets || self.entry_size == 0 {
            return Err((
                found,
                format!(
                    "a table of {} items in {} buckets: uninitialised or corrupted",
                    self.items, self.buckets
                ),
            ));
        }
        let looked_at = self.buckets.min(MAX_WALK);
        let mut at = 0;
        while at < looked_at && (found.len() as u64) < self.items {
            let piece = (looked_at - at).min(MAX_READ as u64);
            let mut bytes = vec![0u8; piece as usize];
            if let Err(err) = formatter
                .memory
                .read(self.ctrl.wrapping_add(at), &mut bytes)
            {
                return Err((found, err.to_string()));
            }
            for (i, byte) in bytes.iter().enumerate() {
                if byte & 0x80 == 0 {
                    let index = at + i as u64;
                    let address = (index + 1)
                        .checked_mul(self.entry_size)
                        .and_then(|below| self.ctrl.checked_sub(below));
                    let contents = match address {
                        Some(address) => Contents::Memory(address),
                        None => Contents::Error(format!("bucket {index} lies below address 0")),
                    };
                    found.push(Value::new(Some(self.entry_type), contents));
                }
            }
            at += piece;
        }
        if (found.len() as u64) < self.items && looked_at < self.buckets {
            return Err((
                found,
                format!(
                    "the walk stopped after {MAX_WALK} of {} buckets",
                    self.buckets
                ),
            ));
        }
        Ok(found)
    }

    fn found(&self) -> &[Value] {
        match &self.entries {
            Ok(found) | Err((found, _)) => found,
        }
    }

    /// An entry's key and value: a map's entries are `(K, V)` tuples.
    fn key_and_value(&self, formatter: &Formatter, entry: &Value) -> (Value, Option<Value>) {
        if !self.map {
            return match field(formatter, entry, &["__0"]) {
                Some(key) => (key, None),
                None => (entry.clone(), None),
            };
        }
        match (
            field(formatter, entry, &["__0"]),
            field(formatter, entry, &["__1"]),
        ) {
            (Some(key), Some(value)) => (key, Some(value)),
            _ => (entry.clone(), None),
        }
    }

    fn child(&self, formatter: &Formatter, index: usize, entry: &Value) -> Child {
        match self.key_and_value(formatter, entry) {
            (key, Some(value)) => Child {
                name: format!("[{}]", formatter.summary_at(&key, 1)),
                value,
            },
            (key, None) => Child {
                name: format!("[{index}]"),
                value: key,
            },
        }
    }
}

impl View for HashTable {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let label = if self.map { "HashMap" } else { "HashSet" };
        let mut text = format!("{label}(size={})", self.items);
        if let Err((_, why)) = &self.entries {
            if self.found().is_empty() {
                return format!("{text} {}", error_text(why));
            }
        }
        if self.items == 0 {
            return text;
        }
        text.push_str(" = {");
        let shown = self.found().len().min(formatter.limits.summary_elements);
        for (i, entry) in self.found()[..shown].iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            if text.len() > formatter.limits.summary_chars {
                text.push_str("...");
                return text + "}";
            }
            match self.key_and_value(formatter, entry) {
                (key, Some(value)) => {
                    let _ = write!(
                        text,
                        "[{}] = {}",
                        formatter.summary_at(&key, depth + 1),
                        formatter.summary_at(&value, depth + 1)
                    );
                }
                (key, None) => text.push_str(&formatter.summary_at(&key, depth + 1)),
            }
        }
        if (shown as u64) < self.items {
            text.push_str("...");
        }
        text.push('}');
        text
    }

    fn named(&self, formatter: &Formatter) -> Vec<Child> {
        vec![
            number_child(formatter, "len", self.items),
            number_child(formatter, "buckets", self.buckets),
        ]
    }

    fn element_count(&self, _formatter: &Formatter) -> u64 {
        let cut = u64::from(self.entries.is_err());
        self.found().len() as u64 + cut
    }

    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        let found = self.found();
        let end = start.saturating_add(count);
        let mut children: Vec<Child> = found
            .iter()
            .enumerate()
            .skip(start as usize)
            .take(count as usize)
            .map(|(i, entry)| self.child(formatter, i, entry))
            .collect();
        if let Err((_, why)) = &self.entries {
            if (found.len() as u64) >= start && (found.len() as u64) < end {
                children.push(error_child("[...]", why.clone()));
            }
        }
        children
    }

    /// `map["key"]` for `&str` and `String` keys, `map[3]` for integer keys.
    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        if !self.map {
            return None;
        }
        let wanted = match Key::of(formatter, key) {
            Ok(wanted) => wanted,
            Err(why) => return Some(Err(why)),
        };
        for entry in self.found() {
            if let (stored, Some(value)) = self.key_and_value(formatter, entry) {
                if wanted.matches(formatter, &stored) {
                    return Some(Ok(value));
                }
            }
        }
        Some(Err(match &self.entries {
            Err((_, why)) => format!("no such key among those read ({why})"),
            Ok(_) => "no such key in the map".into(),
        }))
    }
}

/// A key an expression looks a map up by.
enum Key {
    Text(Vec<u8>),
    Integer(i128),
}

impl Key {
    fn of(formatter: &Formatter, key: &Value) -> Result<Key, String> {
        if let Some(text) = string_bytes(formatter, key) {
            return Ok(Key::Text(text));
        }
        integer_key(formatter, key)
            .map(Key::Integer)
            .map_err(|_| "a map is indexed by a string or an integer key".into())
    }

    fn matches(&self, formatter: &Formatter, stored: &Value) -> bool {
        match self {
            Key::Text(text) => string_bytes(formatter, stored).as_deref() == Some(text.as_slice()),
            Key::Integer(number) => integer_key(formatter, stored).ok() == Some(*number),
        }
    }
}

/// The bytes of a string value: an expression's literal (a `char` array, to its NUL), a
/// `&str` or a `String`. `None` for anything else, or when the bytes cannot be read.
fn string_bytes(formatter: &Formatter, value: &Value) -> Option<Vec<u8>> {
    let types = &formatter.unit.types;
    let (id, ty) = types.strip(value.type_id)?;
    let (data, len) = match &*ty {
        Type::Array { element, .. } => {
            let size = types.size_of(value.type_id)?;
            if types.size_of(*element) != Some(1) {
                return None;
            }
            let bytes = value.contents.read(formatter.memory, size).ok()?;
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
            return Some(bytes[..end].to_vec());
        }
        Type::Aggregate { .. } => match types.qualified_name(id)?.as_str() {
            "&str" | "&mut str" => (
                field_number(formatter, value, &["data_ptr"])?,
                field_number(formatter, value, &["length"])?,
            ),
            "alloc::string::String" => vec_parts(formatter, &field(formatter, value, &["vec"])?)?,
            _ => return None,
        },
        _ => return None,
    };
    if len > MAX_READ as u64 {
        return None;
    }
    let mut bytes = vec![0u8; len as usize];
    if len > 0 {
        formatter.memory.read(data, &mut bytes).ok()?;
    }
    Some(bytes)
}

/// `&dyn Trait`, `Box<dyn Trait>`: a data pointer and a vtable pointer. The value's
/// concrete type is the one the vtable is for, which rustc's DWARF says of each vtable
/// (`<T as Trait>::{vtable}`).
struct TraitObject {
    data: u64,
    vtable: u64,
    /// The value as its concrete type, or why that type is not known.
    concrete: Result<Value, String>,
}

impl TraitObject {
    fn read(formatter: &Formatter, value: &Value) -> Option<TraitObject> {
        let data = field_number(formatter, value, &["pointer"])?;
        let vtable = field_number(formatter, value, &["vtable"])?;
        let types = &formatter.unit.types;
        let file_address = vtable.wrapping_sub(formatter.unit.layout.load_bias);
        let concrete = match types.vtable_for(file_address) {
            Some(concrete) => Ok(Value::new(Some(concrete), Contents::Memory(data))),
            None => Err(format!(
                "the vtable at {vtable:#x} is none the program's debug information describes"
            )),
        };
        Some(TraitObject {
            data,
            vtable,
            concrete,
        })
    }
}

impl View for TraitObject {
    /// `@0x7ffd...: views::Dog {age: 6}`: where the value is, its type, the value (a
    /// struct's text starts with its type already).
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        match &self.concrete {
            Ok(value) => {
                let type_name = formatter.type_name(value);
                let text = formatter.summary_at(value, depth + 1);
                if text.starts_with(&type_name) {
                    format!("@{:#x}: {text}", self.data)
                } else {
                    format!("@{:#x}: {type_name} {text}", self.data)
                }
            }
            Err(why) => format!("@{:#x}: {}", self.data, error_text(why)),
        }
    }

    fn named(&self, formatter: &Formatter) -> Vec<Child> {
        let concrete = match &self.concrete {
            Ok(value) => Child {
                name: "*".into(),
                value: value.clone(),
            },
            Err(why) => error_child("*", why.clone()),
        };
        let pointer = formatter.unit.types.pointer_to(None);
        vec![
            concrete,
            Child {
                name: "vtable".into(),
                value: Value::new(
                    Some(pointer),
                    Contents::bytes(self.vtable.to_le_bytes().to_vec()),
                ),
            },
        ]
    }
}
