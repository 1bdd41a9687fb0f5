//! Go's built-in types, read from the layout its DWARF describes: strings, slices,
//! maps, interfaces, channels.

use super::{number_child, Sequence, View};
use crate::values::format::Formatter;
use crate::values::types::{Member, Type, TypeId};
use crate::values::value::{Contents, Value};

/// The view of a Go value, if `ty` is one of Go's built-in kinds.
pub fn view(formatter: &Formatter, value: &Value, _id: TypeId, ty: &Type) -> Option<Box<dyn View>> {
    let Type::Aggregate {
        name: Some(name),
        members,
        ..
    } = ty
    else {
        return None;
    };
    if name == "string" {
        return Some(Box::new(GoString::read(formatter, value, members)?));
    }
    if name.starts_with("[]") {
        return slice(formatter, value, name, members);
    }
    None
}

fn member<'m>(members: &'m [Member], name: &str) -> Option<&'m Member> {
    members.iter().find(|m| m.name.as_deref() == Some(name))
}

/// A member's value as an unsigned integer of its size.
fn member_integer(formatter: &Formatter, value: &Value, member: &Member) -> Option<u64> {
    let size = formatter.unit.types.size_of(member.type_id)?;
    formatter
        .integer(&formatter.member_value(value, member), size, false)
        .ok()
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

/// `[]T`: a pointer to the first element, a length and a capacity.
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
    let (_, pointer) = formatter.unit.types.strip(array.type_id)?;
    let Type::Pointer { pointee, .. } = &*pointer else {
        return None;
    };
    let stride = formatter.unit.types.size_of(*pointee)?;
    if stride == 0 && len > 0 {
        return None;
    }
    Some(Box::new(Sequence {
        label: format!("{name} len: {len}, cap: {cap}"),
        separator: ", ",
        first: Contents::Memory(data),
        element_type: *pointee,
        stride,
        count: if data == 0 { 0 } else { len },
        named: vec![
            number_child(formatter, "len", len),
            number_child(formatter, "cap", cap),
        ],
    }))
}
