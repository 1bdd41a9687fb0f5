//! C++'s standard library as libstdc++ (GCC 12) lays it out: `std::string` (and its wide
//! kin), `std::vector` (and `vector<bool>`), `std::array`, `std::map`/`set` and their
//! multi- kin, `std::unordered_map`/`set` and kin, `std::unique_ptr`,
//! `std::shared_ptr`/`weak_ptr`, `std::optional`, `std::variant`.
//!
//! Text follows gdb's libstdc++ printers (`printers.py`, which Debian's gdb loads for any
//! program linked with libstdc++), so that gdb is the tests' oracle. Types are recognised
//! by their qualified names (`std::vector<...>`), and read by the member names the
//! printers use (`_M_impl._M_start`); a layout that does not match is no view, and the
//! value shows as its fields.
//!
//! Template arguments are read two ways: as types from DWARF's template parameters (the
//! element type to read), and as text from the class's DWARF name, which is how gdb
//! spells them in its summaries and how the node types of trees and hash tables are
//! named (`std::_Rb_tree_node<std::pair<int const, int> >`), as gdb finds them too.

use rustc_hash::FxHashSet;

use super::{error_child, index_within, integer_key, labelled, numbered, Sequence, View, MAX_WALK};
use crate::values::format::{quote, Child, Formatter};
use crate::values::types::{BaseEncoding, Type, TypeId};
use crate::values::value::{error_text, Contents, Value};

/// How deep the search for a member goes through base classes (libstdc++ nests
/// `std::unique_ptr`'s pointer five bases down).
const MAX_BASE_DEPTH: usize = 8;

/// The view of a libstdc++ value, if `ty` is one.
pub fn view(formatter: &Formatter, value: &Value, id: TypeId, ty: &Type) -> Option<Box<dyn View>> {
    let Type::Aggregate {
        name: Some(name), ..
    } = ty
    else {
        return None;
    };
    // Every type here is a template: most classes are not, and cost no name lookup.
    let (short, _) = name.split_once('<')?;
    if !KNOWN.contains(&short) {
        return None;
    }
    let qualified = formatter.unit.types.qualified_name(id)?;
    let (template, _) = qualified.split_once('<')?;
    match template {
        "std::__cxx11::basic_string" | "std::basic_string" => string(formatter, value, id),
        "std::vector" => vector(formatter, value, id, name),
        "std::array" => array(formatter, value),
        "std::__cxx11::list" | "std::list" => {
            List::read(formatter, value, id, name, template).map(|l| Box::new(l) as Box<dyn View>)
        }
        "std::deque" => Deque::read(formatter, value, id, template),
        "std::map" | "std::multimap" | "std::set" | "std::multiset" => {
            Tree::read(formatter, value, template).map(|tree| Box::new(tree) as Box<dyn View>)
        }
        "std::unordered_map"
        | "std::unordered_multimap"
        | "std::unordered_set"
        | "std::unordered_multiset" => HashTable::read(formatter, value, template)
            .map(|table| Box::new(table) as Box<dyn View>),
        "std::unique_ptr" => unique_ptr(formatter, value, name),
        "std::shared_ptr" | "std::weak_ptr" => shared_ptr(formatter, value, template, name),
        "std::optional" => optional(formatter, value, name),
        "std::variant" => variant(formatter, value, id, name),
        _ => None,
    }
}

/// The unqualified template names of the types viewed here.
const KNOWN: &[&str] = &[
    "basic_string",
    "vector",
    "array",
    "list",
    "deque",
    "map",
    "multimap",
    "set",
    "multiset",
    "unordered_map",
    "unordered_multimap",
    "unordered_set",
    "unordered_multiset",
    "unique_ptr",
    "shared_ptr",
    "weak_ptr",
    "optional",
    "variant",
];

/// Whether gdb's printer for the template shows children, which changes how an
/// `optional` or `variant` holding one reads (`containing ...` rather than `= {...}`).
fn printer_has_children(formatter: &Formatter, value: &Value) -> bool {
    let Some((id, _)) = formatter.unit.types.strip(value.type_id) else {
        return false;
    };
    let Some(qualified) = formatter.unit.types.qualified_name(id) else {
        return false;
    };
    let template = qualified.split_once('<').map_or("", |(t, _)| t);
    !matches!(
        template,
        "" | "std::__cxx11::basic_string" | "std::basic_string" | "std::array"
    ) && KNOWN.contains(&template.trim_start_matches("std::"))
}

// ---------------------------------------------------------------------------------
// Reading members and template arguments.

/// The member `name` of `value`, looked for in its class and then in its base classes,
/// depth first, as C++'s name lookup finds an inherited member.
fn member(formatter: &Formatter, value: &Value, name: &str) -> Option<Value> {
    member_within(formatter, value, name, 0)
}

fn member_within(formatter: &Formatter, value: &Value, name: &str, depth: usize) -> Option<Value> {
    if depth > MAX_BASE_DEPTH {
        return None;
    }
    let (_, ty) = formatter.unit.types.strip(value.type_id)?;
    let Type::Aggregate { members, .. } = &*ty else {
        return None;
    };
    if let Some(found) = members
        .iter()
        .find(|m| !m.is_base && m.name.as_deref() == Some(name))
    {
        return Some(formatter.member_value(value, found));
    }
    members.iter().filter(|m| m.is_base).find_map(|base| {
        member_within(
            formatter,
            &formatter.member_value(value, base),
            name,
            depth + 1,
        )
    })
}

/// A path of members: `_M_impl._M_start`.
fn path(formatter: &Formatter, value: &Value, names: &[&str]) -> Option<Value> {
    names
        .iter()
        .try_fold(value.clone(), |at, name| member(formatter, &at, name))
}

/// The value as an unsigned number of its own size (a pointer, a count).
fn number(formatter: &Formatter, value: &Value) -> Option<u64> {
    let size = formatter.unit.types.size_of(value.type_id)?;
    formatter.integer(value, size, false).ok()
}

/// The offset of member `name` in type `id`, searched through base classes, and the
/// member's type.
fn offset_of(
    formatter: &Formatter,
    id: Option<TypeId>,
    name: &str,
) -> Option<(u64, Option<TypeId>)> {
    let probe = Value::new(id, Contents::Memory(0));
    let found = member(formatter, &probe, name)?;
    Some((found.contents.address()?, found.type_id))
}

/// The template arguments written in a class's DWARF name, as gcc spells them:
/// `["int", "std::allocator<int>"]` of `vector<int, std::allocator<int> >`.
fn template_arguments(name: &str) -> Vec<&str> {
    let Some(open) = name.find('<') else {
        return Vec::new();
    };
    let inside = name[open + 1..].trim_end();
    let inside = inside.strip_suffix('>').unwrap_or(inside);
    let mut arguments = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in inside.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                arguments.push(inside[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = inside[start..].trim();
    if !last.is_empty() {
        arguments.push(last);
    }
    arguments
}

/// `template<argument>` as gcc names a class (a space between two closing brackets).
fn instance_name(template: &str, argument: &str) -> String {
    if argument.ends_with('>') {
        format!("{template}<{argument} >")
    } else {
        format!("{template}<{argument}>")
    }
}

/// A type's name as gdb's libstdc++ type printers show it inside `optional<...>` and
/// `variant<...>`: `std::string` for `std::__cxx11::basic_string<char, ...>`, and the
/// containers without their default arguments (`std::vector<int>`).
fn recognized(name: &str) -> String {
    let name = name.trim();
    let Some((template, _)) = name.split_once('<') else {
        return name.to_string();
    };
    let template = template.replace("std::__cxx11::", "std::");
    let arguments = template_arguments(name);
    let first = arguments.first().copied().unwrap_or("");
    let same = |text: &str, expected: &str| {
        let squash = |s: &str| s.replace(' ', "");
        squash(text) == squash(expected)
    };
    if template == "std::basic_string"
        && arguments.len() == 3
        && same(arguments[1], &format!("std::char_traits<{first}>"))
        && same(arguments[2], &format!("std::allocator<{first}>"))
    {
        let prefix = match first {
            "char" => "",
            "wchar_t" => "w",
            "char8_t" => "u8",
            "char16_t" => "u16",
            "char32_t" => "u32",
            _ => return name.to_string(),
        };
        return format!("std::{prefix}string");
    }
    // The arguments each template has by default, gdb's list.
    let second = arguments.get(1).copied().unwrap_or("");
    let pair = |a: &str, b: &str| {
        [
            format!("std::allocator<std::pair<{a} const, {b}> >"),
            format!("std::allocator<std::pair<const {a}, {b}> >"),
        ]
    };
    let defaults: Vec<Vec<String>> = match template.as_str() {
        "std::vector" | "std::deque" | "std::list" | "std::forward_list" => {
            vec![vec![format!("std::allocator<{first}>")]]
        }
        "std::unique_ptr" => vec![vec![format!("std::default_delete<{first}>")]],
        "std::map" | "std::multimap" => vec![
            vec![format!("std::less<{first}>")],
            pair(first, second).to_vec(),
        ],
        "std::set" | "std::multiset" => vec![
            vec![format!("std::less<{first}>")],
            vec![format!("std::allocator<{first}>")],
        ],
        "std::unordered_map" | "std::unordered_multimap" => vec![
            vec![format!("std::hash<{first}>")],
            vec![format!("std::equal_to<{first}>")],
            pair(first, second).to_vec(),
        ],
        "std::unordered_set" | "std::unordered_multiset" => vec![
            vec![format!("std::hash<{first}>")],
            vec![format!("std::equal_to<{first}>")],
            vec![format!("std::allocator<{first}>")],
        ],
        _ => return name.to_string(),
    };
    let shown = arguments.len().saturating_sub(defaults.len());
    let defaulted = arguments[shown..]
        .iter()
        .zip(&defaults)
        .all(|(argument, choices)| choices.iter().any(|c| same(argument, c)));
    if !defaulted || shown == 0 {
        return name.to_string();
    }
    let shown: Vec<String> = arguments[..shown].iter().map(|a| recognized(a)).collect();
    format!("{template}<{}>", shown.join(", "))
}

// ---------------------------------------------------------------------------------
// Strings.

/// `std::string` and its kin: a pointer and a length; shown as gdb does, as a literal
/// (`L"..."` for `wchar_t`, `u"..."`, `U"..."`).
struct Text {
    text: String,
}

impl View for Text {
    fn summary(&self, _formatter: &Formatter, _depth: usize) -> String {
        self.text.clone()
    }
}

/// A `std::string`'s data pointer and length.
fn string_parts(formatter: &Formatter, value: &Value) -> Option<(u64, u64)> {
    let data = number(
        formatter,
        &path(formatter, value, &["_M_dataplus", "_M_p"])?,
    )?;
    let len = number(formatter, &member(formatter, value, "_M_string_length")?)?;
    Some((data, len))
}

/// Whether `value` is a `std::string` (of `char`): its type's qualified name.
fn is_std_string(formatter: &Formatter, value: &Value) -> bool {
    let Some((id, _)) = formatter.unit.types.strip(value.type_id) else {
        return false;
    };
    formatter
        .unit
        .types
        .qualified_name(id)
        .is_some_and(|name| recognized(&name) == "std::string")
}

fn string(formatter: &Formatter, value: &Value, id: TypeId) -> Option<Box<dyn View>> {
    let (data, len) = string_parts(formatter, value)?;
    let character = formatter.unit.types.template_types(id).first().copied()?;
    let (_, ty) = formatter.unit.types.strip(character)?;
    let Type::Base { size, .. } = &*ty else {
        return None;
    };
    let text = match size {
        1 => formatter.string_at(data, len),
        2 | 4 => wide_string(formatter, data, len, *size),
        _ => return None,
    };
    let prefix = match (size, formatter.unit.types.name_of(character).as_str()) {
        (1, "char8_t") => "u8",
        (1, _) => "",
        (2, _) => "u",
        (_, "wchar_t") => "L",
        _ => "U",
    };
    Some(Box::new(Text {
        text: if text.starts_with('"') {
            format!("{prefix}{text}")
        } else {
            text
        },
    }))
}

/// `len` characters of `size` bytes (UTF-16 or UTF-32) at `address`, quoted, cut at
/// `max_string` characters as gdb cuts them.
fn wide_string(formatter: &Formatter, address: u64, len: u64, size: u64) -> String {
    let shown = len.min(formatter.limits.max_string as u64);
    let mut bytes = vec![0; (shown * size) as usize];
    if let Err(err) = formatter.memory.read(address, &mut bytes) {
        return error_text(&err.to_string());
    }
    let units = bytes.chunks(size as usize).map(|c| {
        let mut raw = [0u8; 4];
        raw[..c.len()].copy_from_slice(c);
        u32::from_le_bytes(raw)
    });
    let text: String = if size == 2 {
        let units: Vec<u16> = units.map(|u| u as u16).collect();
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    } else {
        units
            .map(|u| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    };
    let mut quoted = quote(text.as_bytes());
    if shown < len {
        quoted.push_str("...");
    }
    quoted
}

// ---------------------------------------------------------------------------------
// Sequences: std::vector, std::vector<bool>, std::array.

/// A sequence with gdb's C++ text: an empty one is its label alone (`std::vector of
/// length 0, capacity 0`), and `std::array`, which has no printer in gdb, reads as its
/// fields.
struct CppSequence {
    sequence: Sequence,
    /// `std::array`: the summary is the fields', as gdb prints it.
    as_fields: Option<Value>,
}

impl View for CppSequence {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        if let Some(fields) = &self.as_fields {
            return formatter.summary_at(fields, depth);
        }
        if self.sequence.count == 0 {
            return self.sequence.label.clone();
        }
        self.sequence.summary(formatter, depth)
    }

    fn named(&self, formatter: &Formatter) -> Vec<Child> {
        self.sequence.named(formatter)
    }

    fn element_count(&self, formatter: &Formatter) -> u64 {
        self.sequence.element_count(formatter)
    }

    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        self.sequence.elements(formatter, start, count)
    }

    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        self.sequence.index(formatter, key)
    }
}

/// A value that could not be viewed for a reason worth showing (a vector whose pointers
/// are out of order): the reason, and the fields under `[raw]`.
struct Broken {
    why: String,
}

impl View for Broken {
    fn summary(&self, _formatter: &Formatter, _depth: usize) -> String {
        error_text(&self.why)
    }
}

fn vector(formatter: &Formatter, value: &Value, id: TypeId, name: &str) -> Option<Box<dyn View>> {
    let element = formatter.unit.types.template_types(id).first().copied()?;
    let is_bool = matches!(
        formatter
            .unit
            .types
            .strip(element)
            .map(|(_, t)| t)
            .as_deref(),
        Some(Type::Base {
            encoding: BaseEncoding::Bool,
            ..
        })
    );
    if is_bool && template_arguments(name).first() == Some(&"bool") {
        return bit_vector(formatter, value);
    }
    let start = number(
        formatter,
        &path(formatter, value, &["_M_impl", "_M_start"])?,
    )?;
    let finish = number(
        formatter,
        &path(formatter, value, &["_M_impl", "_M_finish"])?,
    )?;
    let end = number(
        formatter,
        &path(formatter, value, &["_M_impl", "_M_end_of_storage"])?,
    )?;
    let stride = formatter.unit.types.size_of(element)?;
    if stride == 0 {
        return None;
    }
    if finish < start || end < finish {
        return Some(Box::new(Broken {
            why: format!(
                "a std::vector whose pointers are out of order (start {start:#x}, \
                 finish {finish:#x}, end of storage {end:#x})"
            ),
        }));
    }
    let length = (finish - start) / stride;
    let capacity = (end - start) / stride;
    Some(Box::new(CppSequence {
        sequence: Sequence {
            label: format!("std::vector of length {length}, capacity {capacity}"),
            separator: " = ",
            first: Contents::Memory(start),
            element_type: element,
            stride,
            count: length,
            named: Vec::new(),
        },
        as_fields: None,
    }))
}

fn array(formatter: &Formatter, value: &Value) -> Option<Box<dyn View>> {
    let elements = member(formatter, value, "_M_elems")?;
    let (array_id, ty) = formatter.unit.types.strip(elements.type_id)?;
    let Type::Array { dimensions, .. } = &*ty else {
        return None;
    };
    let count = dimensions.first().copied().flatten()?;
    let (element_type, stride) = formatter.element_of(array_id);
    Some(Box::new(CppSequence {
        sequence: Sequence {
            label: String::new(),
            separator: "",
            first: elements.contents.clone(),
            element_type,
            stride: stride?,
            count,
            named: Vec::new(),
        },
        as_fields: Some(Value {
            raw: true,
            ..value.clone()
        }),
    }))
}

/// `std::vector<bool>`: bits packed in words, from the start iterator's word to the
/// finish iterator's word and bit offset.
struct BitVector {
    first_word: u64,
    word_bytes: u64,
    length: u64,
    capacity: u64,
    bool_type: TypeId,
}

impl BitVector {
    fn bit(&self, formatter: &Formatter, index: u64) -> Value {
        let bits = self.word_bytes * 8;
        let address = self.first_word + (index / bits) * self.word_bytes;
        let mut word = vec![0u8; self.word_bytes as usize];
        let contents = match formatter.memory.read(address, &mut word) {
            Ok(()) => {
                let shift = index % bits;
                let byte = word[(shift / 8) as usize];
                Contents::bytes(vec![(byte >> (shift % 8)) & 1])
            }
            Err(err) => Contents::Error(err.to_string()),
        };
        Value::new(Some(self.bool_type), contents)
    }
}

impl View for BitVector {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let label = format!(
            "std::vector<bool> of length {}, capacity {}",
            self.length, self.capacity
        );
        labelled(formatter, label, self.length, depth, |shown| {
            self.elements(formatter, 0, shown)
        })
    }

    fn element_count(&self, _formatter: &Formatter) -> u64 {
        self.length
    }

    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        numbered(start, count, self.length, |i| self.bit(formatter, i))
    }

    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        index_within(formatter, key, self.length, |i| self.bit(formatter, i))
    }
}

fn bit_vector(formatter: &Formatter, value: &Value) -> Option<Box<dyn View>> {
    let start = path(formatter, value, &["_M_impl", "_M_start", "_M_p"])?;
    let first_word = number(formatter, &start)?;
    let finish_word = number(
        formatter,
        &path(formatter, value, &["_M_impl", "_M_finish", "_M_p"])?,
    )?;
    let finish_bits = number(
        formatter,
        &path(formatter, value, &["_M_impl", "_M_finish", "_M_offset"])?,
    )?;
    let end = number(
        formatter,
        &path(formatter, value, &["_M_impl", "_M_end_of_storage"])?,
    )?;
    let (_, pointer) = formatter.unit.types.strip(start.type_id)?;
    let Type::Pointer { pointee, .. } = &*pointer else {
        return None;
    };
    let word_bytes = formatter.unit.types.size_of(*pointee)?;
    if word_bytes == 0 || word_bytes > 8 {
        return None;
    }
    if finish_word < first_word || end < finish_word {
        return Some(Box::new(Broken {
            why: format!(
                "a std::vector<bool> whose pointers are out of order (start {first_word:#x}, \
                 finish {finish_word:#x}, end of storage {end:#x})"
            ),
        }));
    }
    let bits = word_bytes * 8;
    let length = ((finish_word - first_word) / word_bytes)
        .saturating_mul(bits)
        .saturating_add(finish_bits);
    let capacity = ((end - first_word) / word_bytes).saturating_mul(bits);
    Some(Box::new(BitVector {
        first_word,
        word_bytes,
        length,
        capacity,
        bool_type: formatter.unit.types.base("bool", BaseEncoding::Bool, 1),
    }))
}

// ---------------------------------------------------------------------------------
// std::list and std::deque.

/// `std::list` (`std::__cxx11::list`): a ring of `_List_node<T>` through the header
/// node `_M_impl._M_node`; the value lies at the node's `_M_storage`. gdb's text:
/// `std::__cxx11::list = {[0] = 1, [1] = 2}`, or `empty std::__cxx11::list`.
struct List {
    label: String,
    header: u64,
    /// The header's `_M_size`: how many elements to list (the walk still ends at the
    /// header, at a cycle, or after [`MAX_WALK`] links).
    count: u64,
    next_offset: u64,
    value_offset: u64,
    element: Option<TypeId>,
}

impl List {
    fn read(
        formatter: &Formatter,
        value: &Value,
        id: TypeId,
        name: &str,
        template: &str,
    ) -> Option<List> {
        let header = path(formatter, value, &["_M_impl", "_M_node"])?;
        let count = number(formatter, &member(formatter, &header, "_M_size")?)?;
        let (next_offset, _) = offset_of(formatter, header.type_id, "_M_next")?;
        let element = formatter.unit.types.template_types(id).first().copied()?;
        let stored = *template_arguments(name).first()?;
        let node = formatter
            .unit
            .types
            .named(&instance_name("_List_node", stored))?;
        let (value_offset, _) = offset_of(formatter, Some(node), "_M_storage")?;
        Some(List {
            label: template.to_string(),
            header: header.contents.address()?,
            count,
            next_offset,
            value_offset,
            element,
        })
    }

    fn next(&self, formatter: &Formatter, node: u64) -> Result<u64, String> {
        let mut bytes = [0u8; 8];
        formatter
            .memory
            .read(node.wrapping_add(self.next_offset), &mut bytes)
            .map_err(|err| err.to_string())?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// The nodes `start..start + count` along the ring, following at most
    /// [`MAX_WALK`] links; `more` says whether the ring goes on after them.
    fn walk(&self, formatter: &Formatter, start: u64, count: u64) -> (Walked, bool) {
        let end = start.saturating_add(count).min(MAX_WALK);
        let mut walked = Walked {
            nodes: Vec::new(),
            cut: None,
        };
        let mut seen = FxHashSet::default();
        let mut node = match self.next(formatter, self.header) {
            Ok(node) => node,
            Err(why) => {
                walked.cut = Some(why);
                return (walked, false);
            }
        };
        for index in 0..end {
            if node == self.header {
                return (walked, false);
            }
            if node == 0 {
                walked.cut = Some(format!("the list ends in a null link after {index} nodes"));
                return (walked, false);
            }
            if !seen.insert(node) {
                walked.cut = Some(format!("the list's links form a cycle at node {node:#x}"));
                return (walked, false);
            }
            if index >= start {
                walked.nodes.push(node);
            }
            match self.next(formatter, node) {
                Ok(next) => node = next,
                Err(why) => {
                    walked.cut = Some(why);
                    return (walked, false);
                }
            }
        }
        (walked, node != self.header)
    }

    fn children(&self, first: u64, walked: Walked) -> Vec<Child> {
        let mut children: Vec<Child> = walked
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| Child {
                name: format!("[{}]", first + i as u64),
                value: Value::new(
                    self.element,
                    Contents::Memory(node.wrapping_add(self.value_offset)),
                ),
            })
            .collect();
        if let Some(why) = walked.cut {
            children.push(error_child("[...]", why));
        }
        children
    }
}

impl View for List {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let (walked, more) = self.walk(formatter, 0, formatter.limits.summary_elements as u64);
        if walked.nodes.is_empty() && walked.cut.is_none() {
            return format!("empty {}", self.label);
        }
        let mut text = String::from("{");
        for (i, child) in self.children(0, walked).iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            if text.len() > formatter.limits.summary_chars {
                text.push_str("...");
                break;
            }
            text.push_str(&child.name);
            text.push_str(" = ");
            text.push_str(&formatter.summary_at(&child.value, depth + 1));
        }
        if more && !text.ends_with("...") {
            text.push_str("...");
        }
        text.push('}');
        format!("{} = {text}", self.label)
    }

    fn element_count(&self, _formatter: &Formatter) -> u64 {
        self.count.min(MAX_WALK)
    }

    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        let (walked, _) = self.walk(formatter, start, count);
        self.children(start, walked)
    }

    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        let index = match integer_key(formatter, key) {
            Ok(index) => index,
            Err(why) => return Some(Err(why)),
        };
        let Ok(index) = u64::try_from(index) else {
            return Some(Err(format!("index {index} is out of range")));
        };
        let (walked, _) = self.walk(formatter, index, 1);
        Some(match (walked.nodes.first(), walked.cut) {
            (Some(node), _) => Ok(Value::new(
                self.element,
                Contents::Memory(node.wrapping_add(self.value_offset)),
            )),
            (None, Some(why)) => Err(why),
            (None, None) => Err(format!(
                "index {index} is out of range: there are {} elements",
                self.count
            )),
        })
    }
}

/// `std::deque`: buffers of `512 / sizeof(T)` elements (one for larger ones), their
/// addresses in the map `_M_impl._M_map`; the elements run from the start iterator's
/// `_M_cur` (in the buffer of map slot `_M_start._M_node`) to the finish iterator's.
/// Element `i` is found directly, one read of its buffer's address, so a page costs
/// its elements only. gdb's text: `std::deque with 3 elements = {1, 2, 3}`.
struct Deque {
    label: String,
    count: u64,
    /// The first element, and how many of them the first buffer holds from there.
    first: u64,
    first_run: u64,
    /// The map slot of the first buffer.
    start_node: u64,
    buffer_len: u64,
    stride: u64,
    element: Option<TypeId>,
}

impl Deque {
    fn read(
        formatter: &Formatter,
        value: &Value,
        id: TypeId,
        template: &str,
    ) -> Option<Box<dyn View>> {
        let element = formatter.unit.types.template_types(id).first().copied()?;
        let stride = formatter.unit.types.size_of(element)?;
        if stride == 0 {
            return None;
        }
        let buffer_len = if stride < 512 { 512 / stride } else { 1 };
        let iterator = |which: &str| -> Option<[u64; 4]> {
            let at = path(formatter, value, &["_M_impl", which])?;
            let field = |name| number(formatter, &member(formatter, &at, name)?);
            Some([
                field("_M_cur")?,
                field("_M_first")?,
                field("_M_last")?,
                field("_M_node")?,
            ])
        };
        let [cur, first, last, node] = iterator("_M_start")?;
        let [end_cur, end_first, end_last, end_node] = iterator("_M_finish")?;
        let word = formatter.unit.types.address_size();
        let in_order = first <= cur
            && cur <= last
            && end_first <= end_cur
            && end_cur <= end_last
            && node <= end_node
            && (node != end_node || cur <= end_cur)
            && (last - first) / stride == buffer_len;
        if !in_order {
            return Some(Box::new(Broken {
                why: format!(
                    "a std::deque whose iterators are out of order (start {cur:#x} in \
                     buffer {first:#x}..{last:#x} of map slot {node:#x}, finish {end_cur:#x} \
                     in buffer {end_first:#x}..{end_last:#x} of map slot {end_node:#x})"
                ),
            }));
        }
        // gdb's count: the whole buffers between the ends, and the ends' parts.
        let count = if node == end_node {
            (end_cur - cur) / stride
        } else {
            ((end_node - node) / word - 1)
                .saturating_mul(buffer_len)
                .saturating_add((last - cur) / stride)
                .saturating_add((end_cur - end_first) / stride)
        };
        Some(Box::new(Deque {
            label: template.to_string(),
            count,
            first: cur,
            first_run: (last - cur) / stride,
            start_node: node,
            buffer_len,
            stride,
            element,
        }))
    }

    fn element(&self, formatter: &Formatter, index: u64) -> Value {
        if index < self.first_run {
            return Value::new(
                self.element,
                Contents::Memory(self.first + index * self.stride),
            );
        }
        let after = index - self.first_run;
        let slot = self
            .start_node
            .wrapping_add((1 + after / self.buffer_len).wrapping_mul(8));
        let mut bytes = [0u8; 8];
        let contents = match formatter.memory.read(slot, &mut bytes) {
            Ok(()) => Contents::Memory(
                u64::from_le_bytes(bytes).wrapping_add((after % self.buffer_len) * self.stride),
            ),
            Err(err) => Contents::Error(err.to_string()),
        };
        Value::new(self.element, contents)
    }
}

impl View for Deque {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let label = format!("{} with {}", self.label, elements_text(self.count));
        labelled(formatter, label, self.count, depth, |shown| {
            self.elements(formatter, 0, shown)
        })
    }

    fn element_count(&self, _formatter: &Formatter) -> u64 {
        self.count
    }

    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        numbered(start, count, self.count, |i| self.element(formatter, i))
    }

    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        index_within(formatter, key, self.count, |i| self.element(formatter, i))
    }
}

// ---------------------------------------------------------------------------------
// Walked containers: the red-black tree of std::map and std::set, the node list of the
// unordered containers.

/// `1 element`, `3 elements`, as gdb counts.
fn elements_text(count: u64) -> String {
    if count == 1 {
        "1 element".into()
    } else {
        format!("{count} elements")
    }
}

/// The nodes a walk found, and why it stopped early, if it did.
struct Walked {
    nodes: Vec<u64>,
    cut: Option<String>,
}

/// The entries of a map (key and value) or a set (the value), whatever holds them.
struct Entries {
    /// `pair<const K, V>` of a map, `K` of a set.
    value_type: Option<TypeId>,
    /// How far into a node its value lies.
    value_offset: u64,
    is_map: bool,
}

impl Entries {
    fn value_at(&self, node: u64) -> Value {
        Value::new(
            self.value_type,
            Contents::Memory(node).part(self.value_offset, 0),
        )
    }

    /// The children of the walked nodes `first..`: a map's `[key] = value`, a set's
    /// `[i] = value`; an error child where the walk was cut short.
    fn children(&self, formatter: &Formatter, first: u64, walked: Walked) -> Vec<Child> {
        let mut children: Vec<Child> = walked
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let value = self.value_at(*node);
                if !self.is_map {
                    return Child {
                        name: format!("[{}]", first + i as u64),
                        value,
                    };
                }
                match (
                    member(formatter, &value, "first"),
                    member(formatter, &value, "second"),
                ) {
                    (Some(key), Some(mapped)) => Child {
                        name: format!("[{}]", formatter.summary_at(&key, 1)),
                        value: mapped,
                    },
                    _ => error_child(
                        &format!("[{}]", first + i as u64),
                        "an entry without first and second",
                    ),
                }
            })
            .collect();
        if let Some(why) = walked.cut {
            children.push(error_child("[...]", why));
        }
        children
    }

    /// `std::map with 2 elements = {[1] = "one", [2] = "two"}`.
    fn summary(
        &self,
        formatter: &Formatter,
        label: &str,
        count: u64,
        walked: Walked,
        depth: usize,
    ) -> String {
        let label = format!("{label} with {}", elements_text(count));
        if count == 0 {
            return label;
        }
        let shown = walked.nodes.len() as u64;
        let more = shown < count && walked.cut.is_none();
        let children = self.children(formatter, 0, walked);
        let mut text = String::from("{");
        for (i, child) in children.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            if text.len() > formatter.limits.summary_chars {
                text.push_str("...");
                break;
            }
            text.push_str(&child.name);
            text.push_str(" = ");
            text.push_str(&formatter.summary_at(&child.value, depth + 1));
        }
        if more && !text.ends_with("...") {
            text.push_str("...");
        }
        text.push('}');
        format!("{label} = {text}")
    }

    /// `m[key]` on a map with integer or `std::string` keys: the value of the first
    /// entry with that key.
    fn find(
        &self,
        formatter: &Formatter,
        key: &Value,
        walk: impl FnOnce() -> Walked,
    ) -> Option<Result<Value, String>> {
        if !self.is_map {
            return None;
        }
        if let Some(text) = text_key(formatter, key) {
            return Some(text.and_then(|text| self.find_text(formatter, &text, walk)));
        }
        let wanted = match integer_key(formatter, key) {
            Ok(wanted) => wanted,
            Err(why) => return Some(Err(why)),
        };
        let walked = walk();
        for node in &walked.nodes {
            let entry = self.value_at(*node);
            let (Some(first), Some(second)) = (
                member(formatter, &entry, "first"),
                member(formatter, &entry, "second"),
            ) else {
                return Some(Err("an entry without first and second".into()));
            };
            let (_, key_type) = formatter.unit.types.strip(first.type_id)?;
            let (size, signed) = match &*key_type {
                Type::Base { encoding, size, .. } => (
                    *size,
                    matches!(encoding, BaseEncoding::Signed | BaseEncoding::SignedChar),
                ),
                Type::Enum { size, signed, .. } => (*size, *signed),
                // Keys that are not integers are not indexed (yet): a string key would
                // need an expression's string compared to the target's.
                _ => return None,
            };
            let raw = match formatter.integer(&first, size, signed) {
                Ok(raw) => raw,
                Err(why) => return Some(Err(why)),
            };
            let found = if signed {
                i128::from(raw as i64)
            } else {
                i128::from(raw)
            };
            if found == wanted {
                return Some(Ok(second));
            }
        }
        Some(Err(match walked.cut {
            Some(why) => format!("no entry with key {wanted} found ({why})"),
            None => format!("no entry with key {wanted}"),
        }))
    }
}

impl Entries {
    /// The value of the first entry whose `std::string` key holds `text`; a key of
    /// another length is not read.
    fn find_text(
        &self,
        formatter: &Formatter,
        text: &[u8],
        walk: impl FnOnce() -> Walked,
    ) -> Result<Value, String> {
        let walked = walk();
        let shown = String::from_utf8_lossy(text);
        for node in &walked.nodes {
            let entry = self.value_at(*node);
            let (Some(first), Some(second)) = (
                member(formatter, &entry, "first"),
                member(formatter, &entry, "second"),
            ) else {
                return Err("an entry without first and second".into());
            };
            if !is_std_string(formatter, &first) {
                return Err(format!(
                    "the keys are {}, not std::string: index with one of those",
                    formatter.type_name(&first)
                ));
            }
            let (data, len) = string_parts(formatter, &first)
                .ok_or_else(|| "a key whose std::string fields do not read".to_string())?;
            if len != text.len() as u64 {
                continue;
            }
            let mut bytes = vec![0u8; text.len()];
            formatter
                .memory
                .read(data, &mut bytes)
                .map_err(|err| err.to_string())?;
            if bytes == text {
                return Ok(second);
            }
        }
        Err(match walked.cut {
            Some(why) => format!("no entry with key \"{shown}\" found ({why})"),
            None => format!("no entry with key \"{shown}\""),
        })
    }
}

/// A key written as text: a string literal (a `char` array, up to its NUL) or a
/// `std::string`; `None` for any other key.
fn text_key(formatter: &Formatter, key: &Value) -> Option<Result<Vec<u8>, String>> {
    if is_std_string(formatter, key) {
        let (data, len) = string_parts(formatter, key)?;
        if len > MAX_KEY {
            return Some(Err(format!(
                "a key of {len} bytes is longer than latch compares"
            )));
        }
        let mut bytes = vec![0u8; len as usize];
        return Some(
            formatter
                .memory
                .read(data, &mut bytes)
                .map(|()| bytes)
                .map_err(|err| err.to_string()),
        );
    }
    let (array, ty) = formatter.unit.types.strip(key.type_id)?;
    let Type::Array { dimensions, .. } = &*ty else {
        return None;
    };
    let (element, size) = formatter.element_of(array);
    let is_char = matches!(
        formatter
            .unit
            .types
            .strip(element)
            .map(|(_, t)| t)
            .as_deref(),
        Some(Type::Base {
            encoding: BaseEncoding::SignedChar | BaseEncoding::UnsignedChar,
            ..
        })
    );
    if !is_char || size != Some(1) {
        return None;
    }
    let count = dimensions.first().copied().flatten()?.min(MAX_KEY);
    Some(key.contents.read(formatter.memory, count).map(|bytes| {
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        bytes[..end].to_vec()
    }))
}

/// The longest text key compared (a map's `m["..."]`).
const MAX_KEY: u64 = 4096;

/// `std::map`, `std::set` and their multi- kin: `_M_t._M_impl`'s header node, whose
/// left link is the first node, and the node count; nodes are `_Rb_tree_node<T>`, the
/// links of `_Rb_tree_node_base` followed by the value.
struct Tree {
    label: String,
    header: u64,
    count: u64,
    parent_offset: u64,
    left_offset: u64,
    right_offset: u64,
    entries: Entries,
}

impl Tree {
    fn read(formatter: &Formatter, value: &Value, template: &str) -> Option<Tree> {
        let tree = member(formatter, value, "_M_t")?;
        let impl_ = member(formatter, &tree, "_M_impl")?;
        let header = member(formatter, &impl_, "_M_header")?;
        let count = number(formatter, &member(formatter, &impl_, "_M_node_count")?)?;
        let offset = |name| offset_of(formatter, header.type_id, name).map(|(o, _)| o);
        // `_Rb_tree<K, V, ...>`: the nodes are `_Rb_tree_node<V>`, found by that name.
        let (tree_id, tree_type) = formatter.unit.types.strip(tree.type_id)?;
        let Type::Aggregate {
            name: Some(tree_name),
            ..
        } = &*tree_type
        else {
            return None;
        };
        let stored = *template_arguments(tree_name).get(1)?;
        let node = formatter
            .unit
            .types
            .named(&instance_name("_Rb_tree_node", stored))?;
        let value_type = formatter
            .unit
            .types
            .template_types(tree_id)
            .get(1)
            .copied()
            .flatten()?;
        let (value_offset, _) = offset_of(formatter, Some(node), "_M_storage")?;
        Some(Tree {
            label: template.to_string(),
            header: header.contents.address()?,
            count,
            parent_offset: offset("_M_parent")?,
            left_offset: offset("_M_left")?,
            right_offset: offset("_M_right")?,
            entries: Entries {
                value_type: Some(value_type),
                value_offset,
                is_map: template.ends_with("map"),
            },
        })
    }

    fn link(&self, formatter: &Formatter, node: u64, offset: u64) -> Result<u64, String> {
        let mut bytes = [0u8; 8];
        formatter
            .memory
            .read(node.wrapping_add(offset), &mut bytes)
            .map_err(|err| err.to_string())?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// The nodes `start..start + count` in order (the tree's in-order walk, as
    /// libstdc++'s iterator and gdb's printer step), following at most [`MAX_WALK`]
    /// links; a cycle, a null link or an unreadable node ends the walk with why.
    fn walk(&self, formatter: &Formatter, start: u64, count: u64) -> Walked {
        let end = start.saturating_add(count).min(self.count);
        let mut walked = Walked {
            nodes: Vec::new(),
            cut: None,
        };
        if start >= end {
            return walked;
        }
        let mut budget = MAX_WALK;
        let mut seen = FxHashSet::default();
        let mut node = match self.link(formatter, self.header, self.left_offset) {
            Ok(node) => node,
            Err(why) => {
                walked.cut = Some(why);
                return walked;
            }
        };
        let mut index = 0;
        loop {
            if node == 0 || node == self.header {
                walked.cut = Some(format!(
                    "the tree ends after {index} of its {} nodes",
                    self.count
                ));
                return walked;
            }
            if !seen.insert(node) {
                walked.cut = Some(format!("the tree's links form a cycle at node {node:#x}"));
                return walked;
            }
            if index >= start {
                walked.nodes.push(node);
            }
            index += 1;
            if index >= end {
                return walked;
            }
            match self.successor(formatter, node, &mut budget) {
                Ok(next) => node = next,
                Err(why) => {
                    walked.cut = Some(why);
                    return walked;
                }
            }
        }
    }

    /// The next node in order: the leftmost of the right subtree, or the first
    /// ancestor this subtree is left of (`_Rb_tree_increment`).
    fn successor(&self, formatter: &Formatter, node: u64, budget: &mut u64) -> Result<u64, String> {
        let mut follow = |from: u64, offset: u64| -> Result<u64, String> {
            if *budget == 0 {
                return Err(format!(
                    "the walk followed {MAX_WALK} links, the most latch follows"
                ));
            }
            *budget -= 1;
            self.link(formatter, from, offset)
        };
        let right = follow(node, self.right_offset)?;
        if right != 0 {
            let mut node = right;
            loop {
                let left = follow(node, self.left_offset)?;
                if left == 0 {
                    return Ok(node);
                }
                node = left;
            }
        }
        let mut node = node;
        let mut parent = follow(node, self.parent_offset)?;
        while node == follow(parent, self.right_offset)? {
            node = parent;
            parent = follow(parent, self.parent_offset)?;
        }
        if follow(node, self.right_offset)? != parent {
            node = parent;
        }
        Ok(node)
    }
}

impl View for Tree {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let shown = self.count.min(formatter.limits.summary_elements as u64);
        let walked = self.walk(formatter, 0, shown);
        self.entries
            .summary(formatter, &self.label, self.count, walked, depth)
    }

    fn element_count(&self, _formatter: &Formatter) -> u64 {
        self.count.min(MAX_WALK)
    }

    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        let walked = self.walk(formatter, start, count.min(MAX_WALK));
        self.entries.children(formatter, start, walked)
    }

    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        self.entries.find(formatter, key, || {
            self.walk(formatter, 0, self.count.min(MAX_WALK))
        })
    }
}

/// The unordered containers: `_M_h`, a `_Hashtable` whose nodes form one list from
/// `_M_before_begin`, `_M_element_count` of them; nodes are `_Hash_node<T, cached>`.
struct HashTable {
    label: String,
    first: Result<u64, String>,
    count: u64,
    next_offset: u64,
    entries: Entries,
}

impl HashTable {
    fn read(formatter: &Formatter, value: &Value, template: &str) -> Option<HashTable> {
        let table = member(formatter, value, "_M_h")?;
        let before_begin = member(formatter, &table, "_M_before_begin")?;
        let next = member(formatter, &before_begin, "_M_nxt")?;
        let (next_offset, _) = offset_of(formatter, before_begin.type_id, "_M_nxt")?;
        let count = number(formatter, &member(formatter, &table, "_M_element_count")?)?;
        // `_Hashtable<K, V, A, ExtractKey, Equal, Hash, RangeHash, Unused, RehashPolicy,
        // _Hashtable_traits<cached, ...> >`: the nodes are `_Hash_node<V, cached>`.
        let (table_id, table_type) = formatter.unit.types.strip(table.type_id)?;
        let Type::Aggregate {
            name: Some(table_name),
            ..
        } = &*table_type
        else {
            return None;
        };
        let arguments = template_arguments(table_name);
        let stored = *arguments.get(1)?;
        let cached = *template_arguments(arguments.get(9)?).first()?;
        let node = formatter
            .unit
            .types
            .named(&format!("_Hash_node<{stored}, {cached}>"))?;
        let value_type = formatter
            .unit
            .types
            .template_types(table_id)
            .get(1)
            .copied()
            .flatten()?;
        let (value_offset, _) = offset_of(formatter, Some(node), "_M_storage")?;
        Some(HashTable {
            label: template.to_string(),
            first: number(formatter, &next).ok_or_else(|| "unreadable first node".into()),
            count,
            next_offset,
            entries: Entries {
                value_type: Some(value_type),
                value_offset,
                is_map: template.ends_with("map"),
            },
        })
    }

    /// The nodes `start..start + count` along the list, following at most
    /// [`MAX_WALK`] links; a cycle or an unreadable node ends the walk with why.
    fn walk(&self, formatter: &Formatter, start: u64, count: u64) -> Walked {
        let end = start.saturating_add(count).min(self.count).min(MAX_WALK);
        let mut walked = Walked {
            nodes: Vec::new(),
            cut: None,
        };
        let mut node = match &self.first {
            Ok(node) => *node,
            Err(why) => {
                walked.cut = Some(why.clone());
                return walked;
            }
        };
        let mut seen = FxHashSet::default();
        for index in 0..end {
            if node == 0 {
                walked.cut = Some(format!(
                    "the list ends after {index} of its {} elements",
                    self.count
                ));
                return walked;
            }
            if !seen.insert(node) {
                walked.cut = Some(format!("the list's links form a cycle at node {node:#x}"));
                return walked;
            }
            if index >= start {
                walked.nodes.push(node);
            }
            let mut bytes = [0u8; 8];
            if let Err(err) = formatter
                .memory
                .read(node.wrapping_add(self.next_offset), &mut bytes)
            {
                walked.cut = Some(err.to_string());
                return walked;
            }
            node = u64::from_le_bytes(bytes);
        }
        walked
    }
}

impl View for HashTable {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let shown = self.count.min(formatter.limits.summary_elements as u64);
        let walked = self.walk(formatter, 0, shown);
        self.entries
            .summary(formatter, &self.label, self.count, walked, depth)
    }

    fn element_count(&self, _formatter: &Formatter) -> u64 {
        self.count.min(MAX_WALK)
    }

    fn elements(&self, formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        let walked = self.walk(formatter, start, count);
        self.entries.children(formatter, start, walked)
    }

    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        self.entries
            .find(formatter, key, || self.walk(formatter, 0, self.count))
    }
}

// ---------------------------------------------------------------------------------
// One value inside: smart pointers, optional, variant.

/// A view with one named child and gdb's text around it: `label = {get() = 0x...}`,
/// `label = {[contained value] = 5}`, or `label containing ...` when the child is
/// itself a container (as gdb's printers say it).
struct Holder {
    label: String,
    child: Option<Child>,
    /// How the child shows in the summary: `= {name = value}`, `= {value}` (an
    /// array-like printer's, a variant's) or `containing value`.
    style: HolderStyle,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HolderStyle {
    Named,
    Bare,
}

impl View for Holder {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let Some(child) = &self.child else {
            return self.label.clone();
        };
        let shown = formatter.summary_at(&child.value, depth + 1);
        if printer_has_children(formatter, &child.value) {
            return format!("{} containing {shown}", self.label);
        }
        match self.style {
            HolderStyle::Named => format!("{} = {{{} = {shown}}}", self.label, child.name),
            HolderStyle::Bare => format!("{} = {{{shown}}}", self.label),
        }
    }

    fn named(&self, _formatter: &Formatter) -> Vec<Child> {
        self.child.iter().cloned().collect()
    }
}

fn unique_ptr(formatter: &Formatter, value: &Value, name: &str) -> Option<Box<dyn View>> {
    let pointer = pointer_member(formatter, &member(formatter, value, "_M_t")?, 0)?;
    let pointee = template_arguments(name).first().copied()?;
    Some(Box::new(Holder {
        label: format!("std::unique_ptr<{pointee}>"),
        child: Some(Child {
            name: "get()".into(),
            value: pointer,
        }),
        style: HolderStyle::Named,
    }))
}

/// The `_M_head_impl` that holds a pointer, inside `std::tuple<T*, Deleter>`'s bases
/// (the deleter's `_M_head_impl` is the other one).
fn pointer_member(formatter: &Formatter, value: &Value, depth: usize) -> Option<Value> {
    if depth > MAX_BASE_DEPTH {
        return None;
    }
    let (_, ty) = formatter.unit.types.strip(value.type_id)?;
    let Type::Aggregate { members, .. } = &*ty else {
        return None;
    };
    members.iter().find_map(|m| {
        let inner = formatter.member_value(value, m);
        let is_pointer = matches!(
            formatter
                .unit
                .types
                .strip(m.type_id)
                .map(|(_, t)| t)
                .as_deref(),
            Some(Type::Pointer { .. })
        );
        if m.name.as_deref() == Some("_M_head_impl") && is_pointer {
            return Some(inner);
        }
        if m.is_base || m.name.as_deref() == Some("_M_t") {
            return pointer_member(formatter, &inner, depth + 1);
        }
        None
    })
}

fn shared_ptr(
    formatter: &Formatter,
    value: &Value,
    template: &str,
    name: &str,
) -> Option<Box<dyn View>> {
    let pointer = member(formatter, value, "_M_ptr")?;
    let counts = path(formatter, value, &["_M_refcount", "_M_pi"])?;
    let pointee = template_arguments(name).first().copied()?;
    let state = match number(formatter, &counts)? {
        0 => "empty".to_string(),
        address => {
            let (_, ty) = formatter.unit.types.strip(counts.type_id)?;
            let Type::Pointer { pointee, .. } = &*ty else {
                return None;
            };
            let block = Value::new(*pointee, Contents::Memory(address));
            let count = |name| {
                let field = member(formatter, &block, name)?;
                let size = formatter.unit.types.size_of(field.type_id)?;
                formatter
                    .integer(&field, size, true)
                    .ok()
                    .map(|raw| raw as i64)
            };
            match (count("_M_use_count"), count("_M_weak_count")) {
                (Some(0), Some(weak)) => format!("expired, weak count {weak}"),
                (Some(uses), Some(weak)) => format!("use count {uses}, weak count {}", weak - 1),
                _ => format!("unreadable counts at {address:#x}"),
            }
        }
    };
    Some(Box::new(Holder {
        label: format!("{template}<{pointee}> ({state})"),
        child: Some(Child {
            name: "get()".into(),
            value: pointer,
        }),
        style: HolderStyle::Named,
    }))
}

fn optional(formatter: &Formatter, value: &Value, name: &str) -> Option<Box<dyn View>> {
    let payload = member(formatter, value, "_M_payload")?;
    let engaged = number(formatter, &member(formatter, &payload, "_M_engaged")?)?;
    let contained = path(formatter, &payload, &["_M_payload", "_M_value"])?;
    let label = format!(
        "std::optional<{}>",
        recognized(template_arguments(name).first()?)
    );
    Some(Box::new(if engaged == 0 {
        Holder {
            label: format!("{label} [no contained value]"),
            child: None,
            style: HolderStyle::Named,
        }
    } else {
        Holder {
            label,
            child: Some(Child {
                name: "[contained value]".into(),
                value: contained,
            }),
            style: HolderStyle::Named,
        }
    }))
}

fn variant(formatter: &Formatter, value: &Value, id: TypeId, name: &str) -> Option<Box<dyn View>> {
    let alternatives = formatter.unit.types.template_types(id);
    let names: Vec<String> = template_arguments(name)
        .into_iter()
        .map(recognized)
        .collect();
    if names.len() != alternatives.len() {
        return None;
    }
    let label = format!("std::variant<{}>", names.join(", "));
    let index = number(formatter, &member(formatter, value, "_M_index")?)?;
    let storage = member(formatter, value, "_M_u")?;
    let Some(alternative) = alternatives.get(index as usize) else {
        // variant_npos (valueless by exception), or a garbage index.
        return Some(Box::new(Holder {
            label: format!("{label} [no contained value]"),
            child: None,
            style: HolderStyle::Bare,
        }));
    };
    Some(Box::new(Holder {
        label: format!("{label} [index {index}]"),
        child: Some(Child {
            name: "[contained value]".into(),
            // Every alternative lies at the start of the union.
            value: Value::new(
                *alternative,
                storage
                    .contents
                    .part(0, formatter.unit.types.size_of(*alternative).unwrap_or(0)),
            ),
        }),
        style: HolderStyle::Bare,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_arguments_split_at_the_top_level() {
        assert_eq!(
            template_arguments("vector<int, std::allocator<int> >"),
            ["int", "std::allocator<int>"]
        );
        assert_eq!(
            template_arguments("map<int, std::pair<int, int>, std::less<int> >"),
            ["int", "std::pair<int, int>", "std::less<int>"]
        );
        assert_eq!(template_arguments("plain"), Vec::<&str>::new());
    }

    #[test]
    fn recognized_names_are_gdbs() {
        let string =
            "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >";
        assert_eq!(recognized(string), "std::string");
        assert_eq!(
            recognized("std::__cxx11::basic_string<wchar_t, std::char_traits<wchar_t>, std::allocator<wchar_t> >"),
            "std::wstring"
        );
        assert_eq!(
            recognized("std::vector<int, std::allocator<int> >"),
            "std::vector<int>"
        );
        assert_eq!(
            recognized(&format!(
                "std::map<int, {string}, std::less<int>, std::allocator<std::pair<int const, {string}> > >"
            )),
            "std::map<int, std::string>"
        );
        assert_eq!(recognized("int"), "int");
        assert_eq!(
            recognized("std::vector<int, my_allocator<int> >"),
            "std::vector<int, my_allocator<int> >"
        );
    }

    // Corrupt and uninitialised containers: the fixture's types, read over made-up
    // memory. Each must show an error or a bounded view, quickly.

    use crate::values::test_support::{has_tool, Program};
    use crate::values::{ChildFilter, CompileUnit, Memory, ReadError};
    use std::path::PathBuf;
    use std::sync::OnceLock;

    /// The containers fixture built with g++, once per test process.
    fn containers_binary() -> Option<&'static PathBuf> {
        static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                if !has_tool("g++") {
                    crate::test_skip::skip_or_fail(
                        "g++ is not installed: the C++ view tests read a C++ program's types",
                    );
                    return None;
                }
                let out =
                    std::env::temp_dir().join(format!("latch-cpp-views-{}", std::process::id()));
                let built = std::process::Command::new("g++")
                    .args(["-g", "-O0", "-pthread", "-o"])
                    .arg(&out)
                    .arg(crate::values::test_support::fixture("containers.cpp"))
                    .output()
                    .expect("g++ runs");
                assert!(
                    built.status.success(),
                    "g++ failed: {}",
                    String::from_utf8_lossy(&built.stderr)
                );
                Some(out)
            })
            .as_ref()
    }

    /// The fixture's C++ unit (the one that names `std::vector<int>`).
    fn cpp_unit() -> Option<CompileUnit> {
        let program = Program::load(containers_binary()?);
        let unit = program
            .units()
            .into_iter()
            .find(|u| u.types.named("vector<int, std::allocator<int> >").is_some())
            .expect("the fixture's unit");
        Some(unit)
    }

    /// Memory made of a few regions; everything else is unreadable.
    #[derive(Default)]
    struct Regions(Vec<(u64, Vec<u8>)>);

    impl Regions {
        fn put(&mut self, address: u64, value: u64) {
            for (start, bytes) in &mut self.0 {
                if address >= *start && address + 8 <= *start + bytes.len() as u64 {
                    let at = (address - *start) as usize;
                    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
                    return;
                }
            }
            panic!("no region holds {address:#x}");
        }
    }

    impl Memory for Regions {
        fn read(&self, address: u64, into: &mut [u8]) -> Result<(), ReadError> {
            for (start, bytes) in &self.0 {
                if address >= *start && address + into.len() as u64 <= *start + bytes.len() as u64 {
                    let at = (address - *start) as usize;
                    into.copy_from_slice(&bytes[at..at + into.len()]);
                    return Ok(());
                }
            }
            Err(ReadError {
                address,
                len: into.len(),
            })
        }
    }

    fn words(values: &[u64]) -> Contents {
        Contents::bytes(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    fn typed(unit: &CompileUnit, name: &str, contents: Contents) -> Value {
        let id = unit
            .types
            .named(name)
            .unwrap_or_else(|| panic!("no type {name}"));
        Value::new(Some(id), contents)
    }

    /// Children are listed a page at a time, each page bounded.
    fn assert_bounded(formatter: &Formatter, value: &Value) -> String {
        let started = std::time::Instant::now();
        let summary = formatter.summary(value);
        let children = formatter.children(value, 0, 50);
        assert!(children.len() <= 50, "{children:?}");
        assert!(summary.len() < 4096, "{summary}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        summary
    }

    #[test]
    fn a_vector_with_pointers_out_of_order_says_so() {
        let Some(unit) = cpp_unit() else { return };
        let memory = Regions::default();
        let formatter = Formatter::new(&unit, &memory);
        let vector = typed(
            &unit,
            "vector<int, std::allocator<int> >",
            words(&[0x2000, 0x1000, 0x3000]),
        );
        let summary = assert_bounded(&formatter, &vector);
        assert!(
            summary.starts_with("<error: a std::vector whose pointers are out of order"),
            "{summary}"
        );
        assert_eq!(formatter.child_count(&vector), 1, "only [raw]");
    }

    #[test]
    fn a_vector_with_a_garbage_length_reads_a_page_at_a_time() {
        let Some(unit) = cpp_unit() else { return };
        let memory = Regions::default();
        let formatter = Formatter::new(&unit, &memory);
        let vector = typed(
            &unit,
            "vector<int, std::allocator<int> >",
            words(&[0x1000, 0x1000 + (1 << 40), 0x1000 + (1 << 40)]),
        );
        let summary = assert_bounded(&formatter, &vector);
        assert!(
            summary.starts_with(
                "std::vector of length 274877906944, capacity 274877906944 = {<error:"
            ),
            "{summary}"
        );
        let page = formatter.filtered_children(&vector, ChildFilter::Indexed, 1 << 37, 3);
        assert_eq!(page.len(), 3);
        assert_eq!(page[0].name, format!("[{}]", 1u64 << 37));
    }

    #[test]
    fn a_string_with_a_garbage_length_and_no_data_is_an_error() {
        let Some(unit) = cpp_unit() else { return };
        let memory = Regions::default();
        let formatter = Formatter::new(&unit, &memory);
        let string = typed(
            &unit,
            "basic_string<char, std::char_traits<char>, std::allocator<char> >",
            words(&[0, 1 << 50, 0, 0]),
        );
        let summary = assert_bounded(&formatter, &string);
        assert!(summary.starts_with("<error:"), "{summary}");
    }

    /// Fills in the header and count of `value`, a map in `memory` (`layout` reads
    /// types only); the header's address.
    fn map_at(
        layout: &Formatter,
        memory: &mut Regions,
        value: &Value,
        count: u64,
        first: Option<u64>,
    ) -> u64 {
        let header = path(layout, value, &["_M_t", "_M_impl", "_M_header"]).unwrap();
        let header_at = header.contents.address().unwrap();
        let offset = |name| offset_of(layout, header.type_id, name).unwrap().0;
        let count_at = path(layout, value, &["_M_t", "_M_impl", "_M_node_count"])
            .unwrap()
            .contents
            .address()
            .unwrap();
        memory.put(count_at, count);
        memory.put(header_at + offset("_M_left"), first.unwrap_or(header_at));
        memory.put(header_at + offset("_M_right"), first.unwrap_or(header_at));
        memory.put(header_at + offset("_M_parent"), first.unwrap_or(0));
        header_at
    }

    #[test]
    fn a_tree_whose_links_form_a_cycle_ends_in_an_error() {
        let Some(unit) = cpp_unit() else { return };
        const MAP: u64 = 0x1000;
        const NODE: u64 = 0x8000;
        let mut memory = Regions(vec![(MAP, vec![0; 0x100]), (NODE, vec![0; 0x100])]);
        let map_type = "map<int, int, std::less<int>, std::allocator<std::pair<int const, int> > >";
        let map = typed(&unit, map_type, Contents::Memory(MAP));
        // Addresses are worked out from the types alone, before memory is filled in.
        let nothing = Regions::default();
        let layout = Formatter::new(&unit, &nothing);
        let header = path(&layout, &map, &["_M_t", "_M_impl", "_M_header"]).unwrap();
        let [parent, left, right] = ["_M_parent", "_M_left", "_M_right"]
            .map(|name| offset_of(&layout, header.type_id, name).unwrap().0);
        let header_at = map_at(&layout, &mut memory, &map, 5, Some(NODE));
        // The one node is its own right child: the in-order walk comes back to it.
        memory.put(NODE + parent, header_at);
        memory.put(NODE + left, 0);
        memory.put(NODE + right, NODE);
        let formatter = Formatter::new(&unit, &memory);
        let summary = assert_bounded(&formatter, &map);
        assert!(
            summary.starts_with("std::map with 5 elements = {[0] = 0, "),
            "{summary}"
        );
        assert!(summary.contains("cycle"), "{summary}");
        let children = formatter.filtered_children(&map, ChildFilter::Indexed, 0, 10);
        assert_eq!(children.len(), 2, "{children:?}");
        assert!(
            formatter
                .summary(&children[1].value)
                .contains("the tree's links form a cycle"),
            "{children:?}"
        );
    }

    #[test]
    fn a_tree_with_a_garbage_count_lists_what_there_is() {
        let Some(unit) = cpp_unit() else { return };
        const MAP: u64 = 0x1000;
        let mut memory = Regions(vec![(MAP, vec![0; 0x100])]);
        let map_type = "map<int, int, std::less<int>, std::allocator<std::pair<int const, int> > >";
        let map = typed(&unit, map_type, Contents::Memory(MAP));
        let nothing = Regions::default();
        map_at(
            &Formatter::new(&unit, &nothing),
            &mut memory,
            &map,
            1 << 60,
            None,
        );
        let formatter = Formatter::new(&unit, &memory);
        let summary = assert_bounded(&formatter, &map);
        assert!(
            summary.contains("the tree ends after 0 of its 1152921504606846976 nodes"),
            "{summary}"
        );
        assert_eq!(
            formatter
                .filtered_children(&map, ChildFilter::Indexed, 0, u64::MAX)
                .len(),
            1,
            "one error child"
        );
        assert!(formatter.child_count(&map) <= MAX_WALK + 1);
    }

    #[test]
    fn a_hash_table_whose_list_loops_ends_in_an_error() {
        let Some(unit) = cpp_unit() else { return };
        const SET: u64 = 0x1000;
        const NODE: u64 = 0x8000;
        let set_type =
            "unordered_set<int, std::hash<int>, std::equal_to<int>, std::allocator<int> >";
        let set = typed(&unit, set_type, Contents::Memory(SET));
        let mut memory = Regions(vec![(SET, vec![0; 0x100]), (NODE, vec![0; 0x100])]);
        let (first_at, count_at) = {
            let nothing = Regions::default();
            let formatter = Formatter::new(&unit, &nothing);
            let at = |names: &[&str]| {
                path(&formatter, &set, names)
                    .and_then(|v| v.contents.address())
                    .unwrap()
            };
            (
                at(&["_M_h", "_M_before_begin", "_M_nxt"]),
                at(&["_M_h", "_M_element_count"]),
            )
        };
        memory.put(first_at, NODE);
        memory.put(count_at, 1 << 40);
        memory.put(NODE, NODE);
        let formatter = Formatter::new(&unit, &memory);
        let summary = assert_bounded(&formatter, &set);
        assert!(
            summary.contains("the list's links form a cycle"),
            "{summary}"
        );
    }
}
