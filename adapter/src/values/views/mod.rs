//! Language views: a `Vec<i32>` read as its elements, a `std::map` as its entries, a Go
//! string as text, the way each language's users think of them, rather than as the
//! pointers and counters their libraries lay them out as.
//!
//! Every view is computed from the type's layout in DWARF and the target's memory
//! (DESIGN.md §9): no pretty-printer script and no code in the target, so reading one is
//! as safe as reading any other value. A view that does not recognise a layout (another
//! library version, a corrupted object) is no view: the value shows as its fields. The
//! fields stay reachable in every case under a `[raw]` child the formatter adds.
//!
//! One module per language, each with one entry point, `view(formatter, value, id,
//! type)`, which recognises its library's types and returns their [`View`]; this module
//! dispatches on the unit's language and holds what views share ([`Sequence`]).
//!
//! Views are bounded like everything the formatter reads: a page of elements costs that
//! page, a walk of a tree or a hash table follows at most [`MAX_WALK`] pointers, and a
//! cycle ends the walk with an error child rather than looping.

pub mod cpp;
pub mod go;
pub mod rust;

use std::fmt::Write as _;

use super::format::{Child, Formatter};
use super::types::{Language, Type, TypeId};
use super::value::{Contents, Value};

/// At most this many pointers are followed to list one page of a walked structure
/// (a tree's nodes, a hash table's buckets).
pub const MAX_WALK: u64 = 100_000;

/// The name of the child that shows a viewed value's own fields.
pub const RAW: &str = "[raw]";

/// A language's view of one value. Children come in two lists, as DAP has them: named
/// ones (a `Rc`'s counts, an `Option`'s payload) and indexed ones (elements, entries),
/// which editors page through with `start` and `count`.
pub trait View {
    /// The value on one line (`depth` is how deep in an enclosing summary it is: pass it
    /// on to [`Formatter::summary_at`] for nested values).
    fn summary(&self, formatter: &Formatter, depth: usize) -> String;

    /// The named children, before the formatter's `[raw]`.
    fn named(&self, _formatter: &Formatter) -> Vec<Child> {
        Vec::new()
    }

    /// How many indexed children (elements, entries) there are.
    fn element_count(&self, _formatter: &Formatter) -> u64 {
        0
    }

    /// The indexed children `start..start + count` (fewer at the end).
    fn elements(&self, _formatter: &Formatter, _start: u64, _count: u64) -> Vec<Child> {
        Vec::new()
    }

    /// `value[key]` in an expression: an element by index (a `Vec`, a Go slice, a
    /// `std::vector`) or a map's value by key. `None`: this view is not indexed that way
    /// (the evaluator then says so); `Some(Err)`: why this index has no value.
    fn index(&self, _formatter: &Formatter, _key: &Value) -> Option<Result<Value, String>> {
        None
    }
}

/// Which children DAP's `variables` asks for (its `filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildFilter {
    All,
    Named,
    Indexed,
}

/// The view of `value` in its unit's language, if its type is one a view knows.
pub fn view_of(formatter: &Formatter, value: &Value) -> Option<Box<dyn View>> {
    if value.raw || !value.is_available() {
        return None;
    }
    let (id, ty) = formatter.unit.types.strip(value.type_id)?;
    match formatter.unit.types.language() {
        Language::Rust => rust::view(formatter, value, id, &ty),
        Language::Cpp => cpp::view(formatter, value, id, &ty),
        Language::Go => go::view(formatter, value, id, &ty),
        Language::C | Language::Other => None,
    }
}

/// `count` elements of one type laid out `stride` bytes apart from `first`: a `Vec`, a
/// slice, a `std::vector`, a Go slice. `label` starts the summary (`Vec(size=3)`,
/// `std::vector of length 3, capacity 4`, `[]int len: 3, cap: 4`), the elements follow.
pub struct Sequence {
    pub label: String,
    /// Between the label and the elements: ` = ` for gdb's C++ and Rust style.
    pub separator: &'static str,
    pub first: Contents,
    pub element_type: Option<TypeId>,
    pub stride: u64,
    pub count: u64,
    /// Named children shown before the elements (`len`, `cap`).
    pub named: Vec<Child>,
}

impl Sequence {
    fn element(&self, index: u64) -> Value {
        match index.checked_mul(self.stride) {
            Some(offset) => Value::new(self.element_type, self.first.part(offset, self.stride)),
            None => Value::new(
                self.element_type,
                Contents::Error(format!("element {index} lies beyond the address space")),
            ),
        }
    }
}

impl View for Sequence {
    fn summary(&self, formatter: &Formatter, depth: usize) -> String {
        let mut text = format!("{}{}{{", self.label, self.separator);
        let shown = self.count.min(formatter.limits.summary_elements as u64);
        for i in 0..shown {
            if i > 0 {
                text.push_str(", ");
            }
            if text.len() > formatter.limits.summary_chars {
                text.push_str("...");
                return text + "}";
            }
            text.push_str(&formatter.summary_at(&self.element(i), depth + 1));
        }
        if shown < self.count {
            text.push_str("...");
        }
        text.push('}');
        text
    }

    fn named(&self, _formatter: &Formatter) -> Vec<Child> {
        self.named.clone()
    }

    fn element_count(&self, _formatter: &Formatter) -> u64 {
        self.count
    }

    fn elements(&self, _formatter: &Formatter, start: u64, count: u64) -> Vec<Child> {
        numbered(start, count, self.count, |i| self.element(i))
    }

    fn index(&self, formatter: &Formatter, key: &Value) -> Option<Result<Value, String>> {
        index_within(formatter, key, self.count, |i| self.element(i))
    }
}

/// The children `[start]..[start + count]` of `len` elements, each made by `element`.
pub fn numbered(start: u64, count: u64, len: u64, element: impl Fn(u64) -> Value) -> Vec<Child> {
    let end = start.saturating_add(count).min(len);
    (start..end)
        .map(|i| Child {
            name: format!("[{i}]"),
            value: element(i),
        })
        .collect()
}

/// `value[key]` of `len` elements made by `element`: the key read as an integer, and
/// refused when out of range.
pub fn index_within(
    formatter: &Formatter,
    key: &Value,
    len: u64,
    element: impl Fn(u64) -> Value,
) -> Option<Result<Value, String>> {
    Some(integer_key(formatter, key).and_then(|index| {
        if index >= 0 && (index as u128) < u128::from(len) {
            Ok(element(index as u64))
        } else {
            Err(format!(
                "index {index} is out of range: there are {len} elements"
            ))
        }
    }))
}

/// An integer key (`v[3]`), read from the evaluated index value.
pub fn integer_key(formatter: &Formatter, key: &Value) -> Result<i128, String> {
    let Some((_, ty)) = formatter.unit.types.strip(key.type_id) else {
        return Err("an index must be an integer".into());
    };
    match &*ty {
        Type::Base { encoding, size, .. } => {
            use super::types::BaseEncoding::*;
            let signed = match encoding {
                Signed | SignedChar => true,
                Unsigned | UnsignedChar | Bool | Utf => false,
                Float | Other => return Err("an index must be an integer".into()),
            };
            let raw = formatter.integer(key, *size, signed)?;
            Ok(if signed {
                i128::from(raw as i64)
            } else {
                i128::from(raw)
            })
        }
        Type::Enum { size, signed, .. } => {
            let raw = formatter.integer(key, *size, *signed)?;
            Ok(i128::from(raw as i64))
        }
        _ => Err("an index must be an integer".into()),
    }
}

/// A named child holding a number the view computed (a `Rc`'s strong count, a Go
/// channel's length), typed as the unit's (or a made-up) unsigned integer.
pub fn number_child(formatter: &Formatter, name: &str, number: u64) -> Child {
    let types = &formatter.unit.types;
    let id = types.base("usize", super::types::BaseEncoding::Unsigned, 8);
    Child {
        name: name.to_string(),
        value: Value::new(Some(id), Contents::bytes(number.to_le_bytes().to_vec())),
    }
}

/// A child that only says why it has no value (a walk cut short, a cycle).
pub fn error_child(name: &str, why: impl Into<String>) -> Child {
    Child {
        name: name.to_string(),
        value: Value::new(None, Contents::Error(why.into())),
    }
}

/// gdb's text of a container: `label = {a, b, c}` of its first elements (as many as a
/// summary shows, `...` when there are more), or the label alone when it is empty.
pub fn labelled(
    formatter: &Formatter,
    label: String,
    len: u64,
    depth: usize,
    elements: impl FnOnce(u64) -> Vec<Child>,
) -> String {
    if len == 0 {
        return label;
    }
    let shown = len.min(formatter.limits.summary_elements as u64);
    let children = elements(shown);
    format!(
        "{label} = {}",
        braces(formatter, &children, shown < len, depth)
    )
}

/// `{a, b, c}` of the children's summaries, for views whose elements are walked.
pub fn braces(formatter: &Formatter, children: &[Child], more: bool, depth: usize) -> String {
    let mut text = String::from("{");
    for (i, child) in children.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        if text.len() > formatter.limits.summary_chars {
            text.push_str("...");
            return text + "}";
        }
        let _ = write!(text, "{}", formatter.summary_at(&child.value, depth + 1));
    }
    if more {
        text.push_str("...");
    }
    text.push('}');
    text
}
