//! Values as C programmers read them: `42`, `65 'A'`, `0x4011d6 <add>`,
//! `0x402010 "hello"`, `RED`, `A | B`, `{x = 1, y = 2}`; and the children a value
//! expands to (members, elements, the pointee), a page at a time.
//!
//! Text follows gdb's where gdb has a convention, so that users read what they know
//! and gdb can be the tests' oracle. Every read is bounded: a summary reads at most
//! [`Limits::summary_bytes`] of an aggregate, a string at most
//! [`Limits::max_string`] bytes, and nothing follows pointers except to a string.

use std::fmt::Write as _;

use super::types::{AggregateKind, BaseEncoding, Language, Type, TypeId};
use super::value::{error_text, Contents, Value, OPTIMIZED_OUT, SYNTHETIC_POINTER};
use super::{views, CompileUnit, Memory, MAX_READ};

/// Names addresses: function pointers show the function, data pointers the object.
pub trait Symbolizer {
    /// The symbol containing `address` and how far into it the address is.
    fn symbol_for(&self, address: u64) -> Option<(String, u64)>;
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest string shown, in bytes (gdb's `print elements` is 200).
    pub max_string: usize,
    /// Elements of an array shown in its summary.
    pub summary_elements: usize,
    /// Characters of a summary before it is cut with `...`.
    pub summary_chars: usize,
    /// Bytes of an aggregate read to summarize it.
    pub summary_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_string: 200,
            summary_elements: 100,
            summary_chars: 1024,
            summary_bytes: 64 * 1024,
        }
    }
}

/// A child of an expanded value: a member, an element or the pointee.
#[derive(Debug, Clone)]
pub struct Child {
    /// `x`, `[3]`, `<Base>` for a base class, `*` for a pointer's target.
    pub name: String,
    pub value: Value,
}

/// Nested aggregates deeper than this read `{...}` in a summary.
const MAX_SUMMARY_DEPTH: usize = 4;

pub struct Formatter<'a> {
    pub unit: &'a CompileUnit,
    pub memory: &'a dyn Memory,
    pub symbols: Option<&'a dyn Symbolizer>,
    pub limits: Limits,
    /// Integers (and characters' codes) in hexadecimal, as an editor's "View as hex"
    /// asks (DAP's `format.hex`); names of enumerators and floats are unchanged.
    pub hex: bool,
}

impl<'a> Formatter<'a> {
    pub fn new(unit: &'a CompileUnit, memory: &'a dyn Memory) -> Formatter<'a> {
        Formatter {
            unit,
            memory,
            symbols: None,
            limits: Limits::default(),
            hex: false,
        }
    }

    /// The value's type as C writes it.
    pub fn type_name(&self, value: &Value) -> String {
        self.unit.types.name_of(value.type_id)
    }

    /// The value on one line.
    pub fn summary(&self, value: &Value) -> String {
        let mut text = String::new();
        self.write_summary(&mut text, value, 0);
        if text.chars().count() > self.limits.summary_chars {
            text = text.chars().take(self.limits.summary_chars).collect();
            text.push_str("...");
        }
        text
    }

    /// The value on one line as part of an enclosing summary `depth` levels deep (what
    /// a language view uses for its elements).
    pub fn summary_at(&self, value: &Value, depth: usize) -> String {
        let mut text = String::new();
        self.write_summary(&mut text, value, depth);
        text
    }

    /// `len` bytes at `address` as a string literal, cut at `max_string` bytes (`...`
    /// after the quote when cut): a Go string, a Rust `&str`, a `std::string`.
    pub fn string_at(&self, address: u64, len: u64) -> String {
        let shown = len.min(self.limits.max_string as u64);
        let mut bytes = vec![0; shown as usize];
        if shown > 0 {
            if let Err(err) = self.memory.read(address, &mut bytes) {
                return error_text(&err.to_string());
            }
        }
        let mut text = quote(&bytes);
        if shown < len {
            text.push_str("...");
        }
        text
    }

    /// How many children the value expands to; arrays' are indexed (`[i]`), the
    /// others named. A value with a language view has the view's children and `[raw]`.
    pub fn child_count(&self, value: &Value) -> u64 {
        if !value.is_available() {
            return 0;
        }
        if let Some(view) = views::view_of(self, value) {
            return view.named(self).len() as u64 + 1 + view.element_count(self);
        }
        let Some((_, ty)) = self.unit.types.strip(value.type_id) else {
            return 0;
        };
        match &*ty {
            Type::Aggregate { members, .. } => members.len() as u64,
            Type::Array { dimensions, .. } => dimensions.first().copied().flatten().unwrap_or(0),
            Type::Pointer { .. } => u64::from(self.pointee(value).is_some()),
            _ => 0,
        }
    }

    /// How many of the children are named (members, a view's named children and its
    /// `[raw]`), as DAP's `namedVariables` counts them.
    pub fn named_count(&self, value: &Value) -> u64 {
        if let Some(view) = views::view_of(self, value) {
            return view.named(self).len() as u64 + 1;
        }
        if self.has_indexed_children(value) {
            0
        } else {
            self.child_count(value)
        }
    }

    /// Whether the children are elements (`indexedVariables`) rather than members.
    pub fn has_indexed_children(&self, value: &Value) -> bool {
        if let Some(view) = views::view_of(self, value) {
            return view.element_count(self) > 0;
        }
        matches!(
            self.unit.types.strip(value.type_id).as_deref_type(),
            Some(Type::Array { .. })
        )
    }

    /// The children `start..start + count` (fewer at the end): a page of a large
    /// array costs that page only.
    pub fn children(&self, value: &Value, start: u64, count: u64) -> Vec<Child> {
        self.filtered_children(value, views::ChildFilter::All, start, count)
    }

    /// The named or the indexed children (DAP's `filter`), `start..start + count` of
    /// them. Unfiltered, named children come first, then the elements.
    pub fn filtered_children(
        &self,
        value: &Value,
        filter: views::ChildFilter,
        start: u64,
        count: u64,
    ) -> Vec<Child> {
        use views::ChildFilter;
        if !value.is_available() {
            return Vec::new();
        }
        if let Some(view) = views::view_of(self, value) {
            let mut named = view.named(self);
            named.push(Child {
                name: views::RAW.into(),
                value: Value {
                    raw: true,
                    ..value.clone()
                },
            });
            let end = start.saturating_add(count);
            return match filter {
                ChildFilter::Named => named
                    .into_iter()
                    .skip(start as usize)
                    .take(count as usize)
                    .collect(),
                ChildFilter::Indexed => view.elements(self, start, count),
                ChildFilter::All => {
                    let named_len = named.len() as u64;
                    let mut children: Vec<Child> = named
                        .into_iter()
                        .skip(start as usize)
                        .take(count as usize)
                        .collect();
                    if end > named_len {
                        let first = start.saturating_sub(named_len);
                        let wanted = end - named_len - first;
                        children.extend(view.elements(self, first, wanted));
                    }
                    children
                }
            };
        }
        let indexed = self.has_indexed_children(value);
        match (filter, indexed) {
            (ChildFilter::Named, true) | (ChildFilter::Indexed, false) => return Vec::new(),
            _ => {}
        }
        let Some((id, ty)) = self.unit.types.strip(value.type_id) else {
            return Vec::new();
        };
        let end = start.saturating_add(count).min(self.child_count(value));
        match &*ty {
            Type::Aggregate { members, .. } => (start..end)
                .filter_map(|i| members.get(i as usize))
                .map(|member| {
                    let name = match (&member.name, member.is_base) {
                        (_, true) => format!("<{}>", self.unit.types.name_of(member.type_id)),
                        (Some(name), false) => name.clone(),
                        (None, false) => {
                            let what = match self.unit.types.strip(member.type_id).as_deref_type() {
                                Some(Type::Aggregate {
                                    kind: AggregateKind::Union,
                                    ..
                                }) => "union",
                                _ => "struct",
                            };
                            format!("<anonymous {what}>")
                        }
                    };
                    Child {
                        name,
                        value: self.member_value(value, member),
                    }
                })
                .collect(),
            Type::Array { .. } => {
                let (element_type, element_size) = self.element_of(id);
                (start..end)
                    .map(|i| Child {
                        name: format!("[{i}]"),
                        value: Value::new(
                            element_type,
                            match element_size {
                                Some(size) => value.contents.part(i * size, size),
                                None => Contents::Error("element of unknown size".into()),
                            },
                        ),
                    })
                    .collect()
            }
            Type::Pointer { .. } => self
                .pointee(value)
                .map(|target| Child {
                    name: "*".into(),
                    value: target,
                })
                .into_iter()
                .filter(|_| start == 0 && end > 0)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The value a pointer or reference points to, if it points somewhere readable
    /// as a value (not `void *`, a function or null).
    pub fn pointee(&self, value: &Value) -> Option<Value> {
        let (_, ty) = self.unit.types.strip(value.type_id)?;
        let Type::Pointer { pointee, size, .. } = &*ty else {
            return None;
        };
        match self.unit.types.strip(*pointee).as_deref_type() {
            None | Some(Type::Function { .. }) => return None,
            Some(_) => {}
        }
        let address = self.integer(value, *size, false).ok()?;
        if address == 0 {
            return None;
        }
        Some(Value::new(*pointee, Contents::Memory(address)))
    }

    pub fn member_value(&self, parent: &Value, member: &super::types::Member) -> Value {
        let Some(offset) = member.offset else {
            return Value::new(
                member.type_id,
                Contents::Error("member at a location that depends on the object".into()),
            );
        };
        match member.bit_field {
            Some(bits) => {
                let len = (u64::from(bits.offset) + u64::from(bits.size)).div_ceil(8);
                Value {
                    type_id: member.type_id,
                    contents: parent.contents.part(offset, len),
                    bit_field: Some(bits),
                    raw: false,
                }
            }
            None => {
                let size = self.unit.types.size_of(member.type_id).unwrap_or(0);
                Value::new(member.type_id, parent.contents.part(offset, size))
            }
        }
    }

    /// The element type of array `id` (a row for a multi-dimensional one) and its size.
    pub fn element_of(&self, id: TypeId) -> (Option<TypeId>, Option<u64>) {
        let element = match self.unit.types.row_of(id) {
            Some(row) => Some(row),
            None => match &*self.unit.types.get(id) {
                Type::Array { element, .. } => *element,
                _ => None,
            },
        };
        (element, self.unit.types.size_of(element))
    }

    /// The value's bits as an integer `size` bytes wide (a bitfield's own bits),
    /// sign-extended when `signed`. `Err` is the text to show instead.
    pub fn integer(&self, value: &Value, size: u64, signed: bool) -> Result<u64, String> {
        match value.bit_field {
            Some(bits) => {
                let len = (u64::from(bits.offset) + u64::from(bits.size)).div_ceil(8);
                let bytes = value.contents.read(self.memory, len.min(16))?;
                let mut raw = 0u128;
                for (i, byte) in bytes.iter().enumerate() {
                    raw |= u128::from(*byte) << (8 * i);
                }
                let raw = (raw >> bits.offset) as u64;
                let raw = if bits.size >= 64 {
                    raw
                } else {
                    raw & ((1u64 << bits.size) - 1)
                };
                if signed && bits.size > 0 && bits.size < 64 && raw >> (bits.size - 1) & 1 == 1 {
                    Ok(raw | !((1u64 << bits.size) - 1))
                } else {
                    Ok(raw)
                }
            }
            None => {
                if size > 8 {
                    return Err(error_text(&format!("{size}-byte integers")));
                }
                let bytes = value.contents.read(self.memory, size)?;
                let mut raw = [0u8; 8];
                raw[..bytes.len()].copy_from_slice(&bytes);
                Ok(super::types::extend(u64::from_le_bytes(raw), size, signed))
            }
        }
    }

    fn write_summary(&self, out: &mut String, value: &Value, depth: usize) {
        match &value.contents {
            Contents::OptimizedOut => return out.push_str(OPTIMIZED_OUT),
            Contents::SyntheticPointer => return out.push_str(SYNTHETIC_POINTER),
            Contents::Error(why) => return out.push_str(&error_text(why)),
            _ => {}
        }
        if let Some(view) = views::view_of(self, value) {
            if depth >= MAX_SUMMARY_DEPTH {
                return out.push_str("{...}");
            }
            return out.push_str(&view.summary(self, depth));
        }
        let Some((id, ty)) = self.unit.types.strip(value.type_id) else {
            return out.push_str(match value.type_id {
                None => "void",
                Some(_) => "<type too deep>",
            });
        };
        let shown = match &*ty {
            Type::Base { encoding, size, .. } => self.base(value, *encoding, *size),
            Type::Enum {
                size,
                signed,
                enumerators,
                ..
            } => self.integer(value, *size, *signed).map(|raw| {
                enum_text(
                    super::types::truncate(raw, *size),
                    *size,
                    *signed,
                    enumerators,
                )
            }),
            Type::Pointer {
                kind,
                pointee,
                size,
            } => self.pointer(value, *kind, *pointee, *size, depth),
            Type::Aggregate { size, members, .. } => {
                if depth >= MAX_SUMMARY_DEPTH {
                    Ok("{...}".into())
                } else {
                    match self.prefetched(value, size.unwrap_or(0)) {
                        Err(text) => Err(text),
                        Ok(value) if self.unit.types.language() == Language::Rust => {
                            Ok(self.rust_struct(&value, id, members, depth))
                        }
                        Ok(value) => {
                            let mut text = String::from("{");
                            for (i, member) in members.iter().enumerate() {
                                if i > 0 {
                                    text.push_str(", ");
                                }
                                if text.len() > self.limits.summary_chars {
                                    text.push_str("...");
                                    break;
                                }
                                if member.is_base {
                                    let _ = write!(
                                        text,
                                        "<{}> = ",
                                        self.unit.types.name_of(member.type_id)
                                    );
                                } else if let Some(name) = &member.name {
                                    let _ = write!(text, "{name} = ");
                                }
                                self.write_summary(
                                    &mut text,
                                    &self.member_value(&value, member),
                                    depth + 1,
                                );
                            }
                            text.push('}');
                            Ok(text)
                        }
                    }
                }
            }
            Type::Array { dimensions, .. } => {
                self.array(value, id, dimensions.first().copied().flatten(), depth)
            }
            Type::Function { .. } => Ok(match value.contents.address() {
                Some(address) => self.address_text(address),
                None => "<function>".into(),
            }),
            Type::MemberPointer {
                member,
                class,
                size,
            } => self.member_pointer(value, id, *member, *class, *size),
            Type::Typedef { .. } | Type::Qualified { .. } => Ok("<type too deep>".into()),
            Type::Unknown { what } => Ok(format!("<{what}>")),
        };
        match shown {
            Ok(text) | Err(text) => out.push_str(&text),
        }
    }

    /// A Rust struct as Rust (and rust-gdb) writes it: `views::Dog {age: 6}`, a tuple
    /// struct `views::Pair (1, 2)`, a tuple `(1, 2.5)`, a unit struct by its name.
    fn rust_struct(
        &self,
        value: &Value,
        id: TypeId,
        members: &[super::types::Member],
        depth: usize,
    ) -> String {
        let name = self.unit.types.name_of(Some(id));
        // rustc names tuple fields `__0`, `__1`: positional, written without names.
        let positional = !members.is_empty()
            && members.iter().all(|m| {
                m.name
                    .as_deref()
                    .and_then(|n| n.strip_prefix("__"))
                    .is_some_and(|n| n.parse::<usize>().is_ok())
            });
        let mut text = String::new();
        for (i, member) in members.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            if text.len() > self.limits.summary_chars {
                text.push_str("...");
                break;
            }
            if !positional {
                let _ = write!(text, "{}: ", member.name.as_deref().unwrap_or("_"));
            }
            self.write_summary(&mut text, &self.member_value(value, member), depth + 1);
        }
        match (members.is_empty(), positional, name.starts_with('(')) {
            (true, _, _) => name,
            (false, true, true) => format!("({text})"),
            (false, true, false) => format!("{name} ({text})"),
            (false, false, _) => format!("{name} {{{text}}}"),
        }
    }

    /// The value with its first `size` bytes read in one go when it lives in memory
    /// (one read for a struct rather than one per member); as it is otherwise. `Err`
    /// is the text to show when those bytes cannot be read: one error for the whole
    /// aggregate, not one per member.
    fn prefetched(&self, value: &Value, size: u64) -> Result<Value, String> {
        if size == 0 || size > self.limits.summary_bytes as u64 {
            return Ok(value.clone());
        }
        match value.contents {
            Contents::Memory(_) => {
                let bytes = value.contents.read(self.memory, size)?;
                Ok(Value {
                    contents: Contents::bytes(bytes.into_owned()),
                    ..value.clone()
                })
            }
            _ => Ok(value.clone()),
        }
    }

    fn base(&self, value: &Value, encoding: BaseEncoding, size: u64) -> Result<String, String> {
        match encoding {
            // Hex shows the type's own bits, as gdb's `p/x` does: an int's -1 is 0xffffffff.
            BaseEncoding::Signed | BaseEncoding::Unsigned if self.hex => {
                Ok(format!("{:#x}", self.integer(value, size, false)?))
            }
            BaseEncoding::Signed => Ok((self.integer(value, size, true)? as i64).to_string()),
            BaseEncoding::Unsigned => Ok(self.integer(value, size, false)?.to_string()),
            BaseEncoding::SignedChar | BaseEncoding::UnsignedChar => {
                let signed = encoding == BaseEncoding::SignedChar;
                let raw = self.integer(value, size, signed)?;
                let number = if self.hex {
                    format!("{:#x}", self.integer(value, size, false)?)
                } else if signed {
                    (raw as i64).to_string()
                } else {
                    raw.to_string()
                };
                let byte = raw as u8;
                Ok(format!("{number} '{}'", escape_char_byte(byte, '\'')))
            }
            BaseEncoding::Utf => {
                let raw = self.integer(value, size, false)?;
                let shown = char::from_u32(raw as u32)
                    .filter(|c| !c.is_control())
                    .map_or_else(|| format!("\\x{raw:x}"), |c| c.to_string());
                let prefix = match size {
                    1 => "u8",
                    2 => "u",
                    _ => "U",
                };
                Ok(format!("{raw} {prefix}'{shown}'"))
            }
            BaseEncoding::Bool => {
                let raw = self.integer(value, size, false)?;
                Ok(match raw {
                    0 => "false".into(),
                    1 => "true".into(),
                    other => other.to_string(),
                })
            }
            BaseEncoding::Float => {
                if value.bit_field.is_some() {
                    return Err(error_text("floating-point bitfield"));
                }
                let bytes = value.contents.read(self.memory, size)?;
                float_text(&bytes)
            }
            BaseEncoding::Other => {
                let bytes = value.contents.read(self.memory, size.min(64))?;
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                Ok(format!("0x{hex}"))
            }
        }
    }

    fn pointer(
        &self,
        value: &Value,
        kind: super::types::PointerKind,
        pointee: Option<TypeId>,
        size: u64,
        depth: usize,
    ) -> Result<String, String> {
        let address = self.integer(value, size, false)?;
        let target = self.unit.types.strip(pointee);
        let mut text = match target.as_deref_type() {
            Some(Type::Function { .. }) => self.address_text(address),
            _ => format!("{address:#x}"),
        };
        if kind != super::types::PointerKind::Pointer {
            // A reference shows what it refers to, as gdb does: `@0x7ffe...: 5`.
            let referent = Value::new(pointee, Contents::Memory(address));
            text = format!("@{text}: ");
            self.write_summary(&mut text, &referent, depth + 1);
            return Ok(text);
        }
        if address == 0 {
            return Ok(text);
        }
        match target.as_deref_type() {
            Some(Type::Base {
                encoding: BaseEncoding::SignedChar | BaseEncoding::UnsignedChar,
                size: 1,
                ..
            }) => {
                text.push(' ');
                text.push_str(&self.c_string(address));
            }
            Some(Type::Function { .. }) => {}
            _ => {
                if let Some(symbol) = self.symbol_text(address) {
                    text.push(' ');
                    text.push_str(&symbol);
                }
            }
        }
        Ok(text)
    }

    /// A C++ pointer to member as gdb shows it (Itanium ABI): to a data member
    /// `&S::b` (the member at the offset it holds; -1 is `NULL`); to a member function
    /// `(int (S::*)(S * const, int)) 0x401136 <S::get(int)>`, or `&virtual S::v(int)`
    /// when it holds a vtable offset (odd: the offset plus one), with `, this
    /// adjustment N` when it adjusts the object.
    fn member_pointer(
        &self,
        value: &Value,
        id: TypeId,
        member: Option<TypeId>,
        class: Option<TypeId>,
        size: u64,
    ) -> Result<String, String> {
        let types = &self.unit.types;
        let is_method = matches!(
            types.strip(member).as_deref_type(),
            Some(Type::Function { .. })
        );
        if !is_method {
            let offset = self.integer(value, size, true)? as i64;
            if offset == -1 {
                return Ok("NULL".into());
            }
            let found = class.and_then(|c| types.member_at(c, u64::try_from(offset).ok()?));
            return Ok(match found {
                Some((holder, name)) => format!("&{}::{name}", types.name_of(Some(holder))),
                None => offset.to_string(),
            });
        }
        let word = types.address_size();
        let whole = self.prefetched(value, size)?;
        let pointer = self.integer(&Value::new(None, whole.contents.part(0, word)), word, false)?;
        let adjustment = self.integer(
            &Value::new(None, whole.contents.part(word, word)),
            word,
            true,
        )? as i64;
        let adjusted = |text: String| {
            if adjustment == 0 {
                text
            } else {
                format!("{text}, this adjustment {adjustment}")
            }
        };
        if pointer == 0 {
            return Ok("NULL".into());
        }
        if pointer & 1 == 1 {
            let slot = (pointer - 1) / word;
            let method =
                class.and_then(|c| types.virtual_method(c, slot, u64::try_from(adjustment).ok()?));
            return Ok(match method {
                Some(name) => format!("&virtual {name}"),
                None => adjusted(format!("&virtual table offset {slot}")),
            });
        }
        Ok(adjusted(format!(
            "({}) {}",
            types.name_of(Some(id)),
            self.address_text(pointer)
        )))
    }

    /// A NUL-terminated string at `address`, at most `max_string` bytes of it, read a
    /// piece at a time so that a string near the end of a mapping still reads.
    fn c_string(&self, address: u64) -> String {
        const PIECE: usize = 64;
        let mut bytes = Vec::new();
        let mut cut = false;
        'reading: loop {
            let at = address.wrapping_add(bytes.len() as u64);
            let want = PIECE.min(self.limits.max_string + 1 - bytes.len());
            let mut piece = vec![0u8; want];
            if self.memory.read(at, &mut piece).is_err() {
                // Byte by byte up to the unreadable one.
                for i in 0..want {
                    let mut one = [0u8];
                    if self.memory.read(at + i as u64, &mut one).is_err() {
                        if bytes.is_empty() {
                            return error_text(&format!("cannot read memory at {address:#x}"));
                        }
                        return format!(
                            "{}<error: string runs into unreadable memory>",
                            quote(&bytes)
                        );
                    }
                    if one[0] == 0 {
                        break 'reading;
                    }
                    bytes.push(one[0]);
                    if bytes.len() > self.limits.max_string {
                        bytes.truncate(self.limits.max_string);
                        cut = true;
                        break 'reading;
                    }
                }
                continue;
            }
            match piece.iter().position(|b| *b == 0) {
                Some(end) => {
                    bytes.extend_from_slice(&piece[..end]);
                    break;
                }
                None => bytes.extend_from_slice(&piece),
            }
            if bytes.len() > self.limits.max_string {
                bytes.truncate(self.limits.max_string);
                cut = true;
                break;
            }
        }
        let mut text = quote(&bytes);
        if cut {
            text.push_str("...");
        }
        text
    }

    fn array(
        &self,
        value: &Value,
        id: TypeId,
        count: Option<u64>,
        depth: usize,
    ) -> Result<String, String> {
        let (element_type, element_size) = self.element_of(id);
        let Some(count) = count else {
            return Ok(match value.contents.address() {
                Some(address) => format!("{address:#x}"),
                None => "[]".into(),
            });
        };
        let element_size = element_size.unwrap_or(0);
        let shown = count.min(self.limits.summary_elements as u64);
        // Strings: a char array reads as the text up to its first NUL.
        if element_size == 1
            && matches!(
                self.unit.types.strip(element_type).as_deref_type(),
                Some(Type::Base {
                    encoding: BaseEncoding::SignedChar | BaseEncoding::UnsignedChar,
                    ..
                })
            )
        {
            // One byte past the limit: a NUL there means the text ends just at it.
            let max = self.limits.max_string as u64;
            let len = count.min(max + 1);
            let bytes = value.contents.read(self.memory, len)?;
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
            let cut = end as u64 > max;
            let mut text = quote(&bytes[..end.min(max as usize)]);
            if cut {
                text.push_str("...");
            }
            return Ok(text);
        }
        if depth >= MAX_SUMMARY_DEPTH {
            return Ok("{...}".into());
        }
        let value = self.prefetched(value, (shown * element_size).min(MAX_READ as u64))?;
        let mut text = String::from("{");
        for i in 0..shown {
            if i > 0 {
                text.push_str(", ");
            }
            if text.len() > self.limits.summary_chars {
                text.push_str("...");
                break;
            }
            let element = Value::new(
                element_type,
                value.contents.part(i * element_size, element_size),
            );
            self.write_summary(&mut text, &element, depth + 1);
        }
        if shown < count && !text.ends_with("...") {
            text.push_str("...");
        }
        text.push('}');
        Ok(text)
    }

    fn address_text(&self, address: u64) -> String {
        match self.symbol_text(address) {
            Some(symbol) => format!("{address:#x} {symbol}"),
            None => format!("{address:#x}"),
        }
    }

    fn symbol_text(&self, address: u64) -> Option<String> {
        let (name, offset) = self.symbols?.symbol_for(address)?;
        Some(if offset == 0 {
            format!("<{name}>")
        } else {
            format!("<{name}+{offset}>")
        })
    }
}

/// An enum's value: the enumerator's name; for a flag enum (enumerators of disjoint
/// bits) the names of the bits set, `A | B`, with any bits no enumerator names in hex;
/// otherwise the number.
fn enum_text(
    raw: u64,
    size: u64,
    signed: bool,
    enumerators: &[super::types::Enumerator],
) -> String {
    if let Some(known) = enumerators.iter().find(|e| e.value == raw) {
        return known.name.clone();
    }
    let number = || {
        if signed {
            (super::types::extend(raw, size, true) as i64).to_string()
        } else {
            raw.to_string()
        }
    };
    let mut seen = 0u64;
    let is_flags = !enumerators.is_empty()
        && enumerators.iter().all(|e| {
            let disjoint = e.value & seen == 0;
            seen |= e.value;
            disjoint
        });
    if !is_flags || raw == 0 {
        return number();
    }
    let mut left = raw;
    let mut parts = Vec::new();
    for enumerator in enumerators {
        if enumerator.value != 0 && raw & enumerator.value == enumerator.value {
            parts.push(enumerator.name.clone());
            left &= !enumerator.value;
        }
    }
    if parts.is_empty() {
        return number();
    }
    if left != 0 {
        parts.push(format!("{left:#x}"));
    }
    parts.join(" | ")
}

fn float_text(bytes: &[u8]) -> Result<String, String> {
    match (decode_float(bytes), bytes.len()) {
        // A `float` shows its own shortest digits, not those of the double it widens to.
        (Some(_), 4) => {
            let value = f32::from_le_bytes(bytes.try_into().unwrap_or_default());
            Ok(float_to_text(f64::from(value), value.to_string()))
        }
        (Some(value), _) => Ok(float_to_text(value, value.to_string())),
        (None, other) => Err(error_text(&format!("{other}-byte floating point"))),
    }
}

/// A float's bytes as a double: `float`, `double`, and x87's 80-bit extended precision
/// (`long double`, stored in 10, 12 or 16 bytes), which loses precision here.
pub fn decode_float(bytes: &[u8]) -> Option<f64> {
    Some(match bytes.len() {
        4 => f64::from(f32::from_le_bytes(bytes.try_into().ok()?)),
        8 => f64::from_le_bytes(bytes.try_into().ok()?),
        10 | 12 | 16 => {
            let mantissa = u64::from_le_bytes(bytes[..8].try_into().ok()?);
            let top = u16::from_le_bytes([bytes[8], bytes[9]]);
            let exponent = i32::from(top & 0x7fff);
            let magnitude = if exponent == 0x7fff {
                if mantissa << 1 == 0 {
                    f64::INFINITY
                } else {
                    f64::NAN
                }
            } else {
                // Two steps: 2^(e - 16383 - 63) alone may underflow where the product
                // does not.
                (mantissa as f64) * 2f64.powi(exponent - 16383 - 63)
            };
            if top & 0x8000 != 0 {
                -magnitude
            } else {
                magnitude
            }
        }
        _ => return None,
    })
}

/// gdb's spelling of the special values; Rust's shortest round-trip digits otherwise.
fn float_to_text(value: f64, shown: String) -> String {
    if value.is_nan() {
        if value.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        }
    } else if value.is_infinite() {
        if value < 0.0 {
            "-inf".into()
        } else {
            "inf".into()
        }
    } else {
        shown
    }
}

/// `bytes` as a C string literal: printable UTF-8 as it is, escapes for control
/// characters and for every byte that is not valid UTF-8 (`\377`, gdb's octal).
pub fn quote(bytes: &[u8]) -> String {
    let mut text = String::from("\"");
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_escaped(&mut text, valid);
                break;
            }
            Err(error) => {
                let (valid, after) = rest.split_at(error.valid_up_to());
                push_escaped(&mut text, std::str::from_utf8(valid).unwrap_or_default());
                let bad = error.error_len().unwrap_or(after.len()).max(1);
                for byte in &after[..bad.min(after.len())] {
                    let _ = write!(text, "\\{byte:03o}");
                }
                rest = &after[bad.min(after.len())..];
            }
        }
    }
    text.push('"');
    text
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x80 => out.push_str(&escape_char_byte(c as u8, '"')),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// One byte as C writes it inside quotes `quote` (`'` or `"`).
fn escape_char_byte(byte: u8, quote: char) -> String {
    match byte {
        b'\n' => "\\n".into(),
        b'\t' => "\\t".into(),
        b'\r' => "\\r".into(),
        0x07 => "\\a".into(),
        0x08 => "\\b".into(),
        0x0c => "\\f".into(),
        0x0b => "\\v".into(),
        0x1b => "\\033".into(),
        b'\\' => "\\\\".into(),
        b if b as char == quote => format!("\\{quote}"),
        b if (0x20..0x7f).contains(&b) => (b as char).to_string(),
        b => format!("\\{b:03o}"),
    }
}

/// `Option<(TypeId, Rc<Type>)>` to the type alone, for `matches!`.
trait AsDerefType {
    fn as_deref_type(&self) -> Option<&Type>;
}

impl AsDerefType for Option<(TypeId, std::rc::Rc<Type>)> {
    fn as_deref_type(&self) -> Option<&Type> {
        self.as_ref().map(|(_, ty)| &**ty)
    }
}
