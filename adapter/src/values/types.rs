//! Types from a file's DWARF, as an owned model keyed by DIE offset in `.debug_info`.
//!
//! A type may live in any unit of the file: Go's linker puts every type in a unit of
//! its own, LTO and dwz share types between units, and both refer to them with
//! `DW_FORM_ref_addr`. So a [`TypeId`] is a section offset, and each DIE is read in the
//! context of the unit that holds it (its names, its unit-relative references).
//!
//! A type refers to other types by their offset ([`TypeId`]), never by value: a struct
//! holding a pointer to itself (a list node) is one entry whose member names the
//! pointer's offset, resolved only when something asks for it. Each DIE is read once,
//! on first use, and kept in the unit's table; nothing here recurses over the type
//! graph without a depth bound, so a cycle in bad DWARF (a typedef naming itself) ends
//! in an "unknown" answer rather than a stack overflow.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::symbols::module::Reader;

/// A type DIE, by its offset in `.debug_info` (whichever unit holds it), or a made-up
/// type (top bit set). `None` where a type is expected means `void`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub usize);

/// How far any walk along typedefs, qualifiers and pointees goes before giving up: real
/// programs nest a few levels; only a cycle goes deeper.
pub const MAX_TYPE_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaseEncoding {
    Signed,
    Unsigned,
    /// `char`, `signed char`: shown as a number and the character.
    SignedChar,
    UnsignedChar,
    /// `char16_t`, `char32_t`, Rust's `char`: a code point.
    Utf,
    Float,
    Bool,
    /// Encodings shown as their bytes (complex, decimal floats, ...).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateKind {
    Struct,
    Class,
    Union,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerKind {
    Pointer,
    Reference,
    RvalueReference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Const,
    Volatile,
    Restrict,
    Atomic,
}

/// Where a bitfield lies: `size` bits starting `offset` bits above the least
/// significant bit of the member's first byte (little-endian numbering, whichever of
/// DWARF's two forms the compiler used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitField {
    pub offset: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `None` for an anonymous struct or union member.
    pub name: Option<String>,
    pub type_id: Option<TypeId>,
    /// Bytes from the start of the containing object; `None` when DWARF gives a
    /// location that depends on the object (a virtual base class).
    pub offset: Option<u64>,
    pub bit_field: Option<BitField>,
    /// A base class (`DW_TAG_inheritance`), shown as a member named after its type.
    pub is_base: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enumerator {
    pub name: String,
    /// The value's bits, truncated to the enum's size.
    pub value: u64,
}

/// The variants of a Rust enum (`DW_TAG_variant_part`): the value is the variant whose
/// `discr_value` the discriminant member holds, or else the default one. In a niche
/// layout the discriminant is a field of the payload (a pointer, a capacity) and the
/// default variant is the one holding that payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantPart {
    /// The member holding the discriminant (`DW_AT_discr`); `None` when there is none
    /// (an enum of one variant).
    pub discriminant: Option<Member>,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The discriminant's value (its bits, truncated to its size) choosing this
    /// variant; `None` for the default variant.
    pub discr_value: Option<u64>,
    /// The variant's payload: a member named for the variant, its type a struct of the
    /// variant's fields (`__0`, `__1` for a tuple variant).
    pub member: Member,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Base {
        name: String,
        encoding: BaseEncoding,
        size: u64,
    },
    Enum {
        name: Option<String>,
        size: u64,
        signed: bool,
        enumerators: Vec<Enumerator>,
    },
    Aggregate {
        kind: AggregateKind,
        name: Option<String>,
        /// `None` for a declaration without a definition in this unit.
        size: Option<u64>,
        members: Vec<Member>,
        /// Rust's enums (`DW_TAG_variant_part`): which of the variants the value holds
        /// is told by a discriminant member. `None` for every other aggregate.
        variants: Option<VariantPart>,
    },
    Array {
        element: Option<TypeId>,
        /// The element count of each dimension, outermost first; `None` when not known
        /// (a flexible array member, a variable-length array).
        dimensions: Vec<Option<u64>>,
    },
    Pointer {
        kind: PointerKind,
        pointee: Option<TypeId>,
        size: u64,
    },
    Typedef {
        name: String,
        target: Option<TypeId>,
    },
    Qualified {
        qualifier: Qualifier,
        target: Option<TypeId>,
    },
    Function {
        returns: Option<TypeId>,
        parameters: Vec<Option<TypeId>>,
        variadic: bool,
    },
    /// C++'s pointer to a member of `class` (`DW_TAG_ptr_to_member_type`): to a data
    /// member (`int S::*`, an offset into the object, -1 for null) when `member` is a
    /// data type, to a member function (`int (S::*)(S * const, int)`: the Itanium ABI's
    /// function address or vtable offset plus one, then the `this` adjustment) when it
    /// is a function type.
    MemberPointer {
        member: Option<TypeId>,
        class: Option<TypeId>,
        size: u64,
    },
    /// A DIE this model does not describe (or could not read): shown as its tag.
    Unknown { what: String },
}

/// The units of one file's `.debug_info`, found by offset, each parsed on first use and
/// kept: shared by every [`Types`] of the file, so Go's one big type unit is parsed once.
pub struct Units {
    dwarf: Rc<gimli::Dwarf<Reader>>,
    /// Every unit's header, in section order, read on the first lookup.
    headers: OnceCell<Vec<gimli::UnitHeader<Reader>>>,
    /// Units parsed so far by their start offset; `None` for one that would not parse.
    parsed: RefCell<FxHashMap<usize, Option<Rc<gimli::Unit<Reader>>>>>,
}

impl Units {
    pub fn new(dwarf: Rc<gimli::Dwarf<Reader>>) -> Rc<Units> {
        Rc::new(Units {
            dwarf,
            headers: OnceCell::new(),
            parsed: RefCell::default(),
        })
    }

    pub fn dwarf(&self) -> Rc<gimli::Dwarf<Reader>> {
        self.dwarf.clone()
    }

    fn headers(&self) -> &[gimli::UnitHeader<Reader>] {
        self.headers.get_or_init(|| {
            let mut headers = Vec::new();
            let mut iter = self.dwarf.units();
            // A header that does not read ends the walk: the units after it cannot be
            // found without it anyway.
            while let Ok(Some(header)) = iter.next() {
                headers.push(header);
            }
            headers
        })
    }

    /// The unit holding the DIE at `offset`, and the DIE's offset in it.
    pub fn holding(
        &self,
        offset: gimli::DebugInfoOffset,
    ) -> Result<(Rc<gimli::Unit<Reader>>, gimli::UnitOffset), String> {
        let headers = self.headers();
        // The last unit starting at or before the offset is the only one that can hold it.
        let after = headers.partition_point(|h| h.offset().0 <= offset.0);
        let (header, in_unit) = after
            .checked_sub(1)
            .map(|i| &headers[i])
            .and_then(|h| Some((h, offset.to_unit_offset(h)?)))
            .ok_or_else(|| format!("no compile unit holds offset {:#x}", offset.0))?;
        let start = header.offset().0;
        if let Some(known) = self.parsed.borrow().get(&start) {
            return known
                .clone()
                .map(|unit| (unit, in_unit))
                .ok_or_else(|| format!("the unit at {start:#x} does not read"));
        }
        let unit = self.dwarf.unit(*header).ok().map(Rc::new);
        self.parsed.borrow_mut().insert(start, unit.clone());
        unit.map(|unit| (unit, in_unit))
            .ok_or_else(|| format!("the unit at {start:#x} does not read"))
    }
}

/// Every type read so far, seen from one compile unit (whose names [`Types::named`]
/// finds first, and whose DIEs [`Types::name`] and [`Types::type_ref`] read).
pub struct Types {
    dwarf: Rc<gimli::Dwarf<Reader>>,
    unit: Rc<gimli::Unit<Reader>>,
    units: Rc<Units>,
    read: RefCell<FxHashMap<TypeId, Rc<Type>>>,
    /// Types DWARF does not name but values need, each made once.
    made: RefCell<FxHashMap<Made, TypeId>>,
    /// The unit's types and enumerators by name, indexed on the first lookup.
    named: OnceCell<Named>,
    /// The home unit's source language: Go's type names are written Go's way, and
    /// each language has its own views of its library's types.
    language: OnceCell<Language>,
    /// The scopes of each unit's named DIEs, by unit start (see [`Types::qualified_name`]).
    scopes: RefCell<FxHashMap<usize, Rc<Scopes>>>,
    /// Rust's vtables by their address in the file: the type each is for.
    vtables: OnceCell<FxHashMap<u64, TypeId>>,
}

/// A unit's named DIEs (types and scopes) nested in namespaces or classes, by
/// `.debug_info` offset: the enclosing names joined with `::` (`std::__cxx11`).
type Scopes = FxHashMap<usize, Rc<str>>;

/// The source language of a compile unit, as far as values care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    C,
    Cpp,
    Rust,
    Go,
    Other,
}

impl Language {
    fn of(code: gimli::DwLang) -> Language {
        match code {
            gimli::DW_LANG_C
            | gimli::DW_LANG_C89
            | gimli::DW_LANG_C99
            | gimli::DW_LANG_C11
            | gimli::DW_LANG_C17 => Language::C,
            gimli::DW_LANG_C_plus_plus
            | gimli::DW_LANG_C_plus_plus_03
            | gimli::DW_LANG_C_plus_plus_11
            | gimli::DW_LANG_C_plus_plus_14
            | gimli::DW_LANG_C_plus_plus_17
            | gimli::DW_LANG_C_plus_plus_20 => Language::Cpp,
            gimli::DW_LANG_Rust => Language::Rust,
            gimli::DW_LANG_Go => Language::Go,
            _ => Language::Other,
        }
    }
}

/// A type made up for a value, rather than read from a DIE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Made {
    /// One row of a multi-dimensional array (`int [4]` of an `int [3][4]`).
    Row(TypeId),
    /// A pointer to a type (`&x` of a variable whose pointer type the program never
    /// spelled).
    PointerTo(Option<TypeId>),
    /// An array of `count` elements (a string literal's `char [6]`).
    ArrayOf(Option<TypeId>, u64),
    /// `T * const` of a method's `this` pointer `T *` (see [`Types::read_function`]).
    ConstOf(TypeId),
    /// A reference that names no DIE of `.debug_info` (a type unit's signature, dwz's
    /// supplementary file).
    Unreachable,
    /// A base type the unit may not have (an expression's `unsigned long`).
    Base {
        name: String,
        encoding: BaseEncoding,
        size: u64,
    },
}

/// Made-up types get ids no DIE can have.
const MADE_TYPE: usize = 1 << (usize::BITS - 1);

/// How many other units a unit's by-name index reads besides its own: Go's units take
/// their types from one; LTO's from a handful.
const MAX_OTHER_UNITS: usize = 8;

/// The `.debug_info` offset of a DIE of `unit`; `None` for a unit outside `.debug_info`.
fn global(unit: &gimli::Unit<Reader>, offset: gimli::UnitOffset) -> Option<TypeId> {
    offset
        .to_debug_info_offset(&unit.header)
        .map(|offset| TypeId(offset.0))
}

/// Names that an expression may write for a type or a constant.
#[derive(Default)]
struct Named {
    types: FxHashMap<String, TypeId>,
    /// Enumerators by name: their enum and value.
    enumerators: FxHashMap<String, (TypeId, u64)>,
}

impl Types {
    pub fn new(dwarf: Rc<gimli::Dwarf<Reader>>, unit: Rc<gimli::Unit<Reader>>) -> Types {
        let units = Units::new(dwarf.clone());
        Types::with_units(units, unit)
    }

    /// The types seen from `unit`, finding other units through `units` (shared with the
    /// file's other units).
    pub fn with_units(units: Rc<Units>, unit: Rc<gimli::Unit<Reader>>) -> Types {
        Types {
            dwarf: units.dwarf.clone(),
            unit,
            units,
            read: RefCell::default(),
            made: RefCell::default(),
            named: OnceCell::new(),
            language: OnceCell::new(),
            scopes: RefCell::default(),
            vtables: OnceCell::new(),
        }
    }

    /// The type of one element of the array `id` when it has several dimensions (a
    /// row: the same element type, one dimension fewer); `None` for a one-dimensional
    /// array, whose element type DWARF names itself.
    pub fn row_of(&self, id: TypeId) -> Option<TypeId> {
        let ty = self.get(id);
        let Type::Array {
            element,
            dimensions,
        } = &*ty
        else {
            return None;
        };
        if dimensions.len() < 2 {
            return None;
        }
        Some(self.make(Made::Row(id), || Type::Array {
            element: *element,
            dimensions: dimensions[1..].to_vec(),
        }))
    }

    /// A pointer to `pointee` (`None`: `void *`).
    pub fn pointer_to(&self, pointee: Option<TypeId>) -> TypeId {
        let size = self.address_size();
        self.make(Made::PointerTo(pointee), || Type::Pointer {
            kind: PointerKind::Pointer,
            pointee,
            size,
        })
    }

    /// An array of `count` elements of `element`.
    pub fn array_of(&self, element: Option<TypeId>, count: u64) -> TypeId {
        self.make(Made::ArrayOf(element, count), || Type::Array {
            element,
            dimensions: vec![Some(count)],
        })
    }

    /// A base type by its name, encoding and size, whether or not the unit has it.
    pub fn base(&self, name: &str, encoding: BaseEncoding, size: u64) -> TypeId {
        // An expression's C type names (its arithmetic is C's) in the unit's language:
        // `x + 1` in a Go frame is an `int`, in Rust an `i64`.
        let name = self.native_base_name(name);
        let name = name.as_str();
        let key = Made::Base {
            name: name.to_string(),
            encoding,
            size,
        };
        self.make(key, || Type::Base {
            name: name.to_string(),
            encoding,
            size,
        })
    }

    /// C's name of a base type as the unit's language writes it (Go, Rust); C's and
    /// C++'s, and names that are no C name, as they are.
    fn native_base_name(&self, c_name: &str) -> String {
        let language = self.language();
        let (go, rust) = match c_name {
            "long" | "long int" | "long long" | "long long int" => ("int", "i64"),
            "unsigned long" | "long unsigned int" | "unsigned long long" => ("uint", "u64"),
            "int" => ("int32", "i32"),
            "unsigned int" | "unsigned" => ("uint32", "u32"),
            "short" | "short int" => ("int16", "i16"),
            "unsigned short" | "short unsigned int" => ("uint16", "u16"),
            "signed char" | "char" => ("int8", "i8"),
            "unsigned char" => ("uint8", "u8"),
            "double" => ("float64", "f64"),
            "float" => ("float32", "f32"),
            "_Bool" | "bool" => ("bool", "bool"),
            _ => return c_name.to_string(),
        };
        match language {
            Language::Go => go.to_string(),
            Language::Rust => rust.to_string(),
            _ => c_name.to_string(),
        }
    }

    fn make(&self, key: Made, ty: impl FnOnce() -> Type) -> TypeId {
        if let Some(known) = self.made.borrow().get(&key) {
            return *known;
        }
        let id = TypeId(MADE_TYPE | self.made.borrow().len());
        self.read.borrow_mut().insert(id, Rc::new(ty()));
        self.made.borrow_mut().insert(key, id);
        id
    }

    /// The unit's type called `name` as a program writes it: a base type (`int`, gcc's
    /// `long unsigned int` or `unsigned long`, `u32`), a typedef, or a tag (`struct
    /// node`, also plain `node` as C++ and Rust write it). A definition wins over a
    /// declaration of the same name.
    pub fn named(&self, name: &str) -> Option<TypeId> {
        self.named_index().types.get(name).copied()
    }

    /// The enumerator called `name` in the unit: its enum type and value.
    pub fn enumerator(&self, name: &str) -> Option<(TypeId, u64)> {
        self.named_index().enumerators.get(name).copied()
    }

    fn named_index(&self) -> &Named {
        self.named.get_or_init(|| {
            let mut named = Named::default();
            let mut declarations = rustc_hash::FxHashSet::default();
            let mut elsewhere = std::collections::BTreeMap::new();
            // A walk of the whole unit, once: a unit with no readable DIEs simply
            // names nothing.
            let home = self.unit.clone();
            let _ = self.index_names(&home, &mut named, &mut declarations, &mut elsewhere);
            // Then the units the unit's DIEs take types from (Go's type unit), so an
            // expression can name them too; the unit's own names come first. A few at
            // most: this is a walk of each.
            for (_, inside) in elsewhere.into_iter().take(MAX_OTHER_UNITS) {
                if let Ok((unit, _)) = self.units.holding(inside) {
                    let mut ignored = std::collections::BTreeMap::new();
                    let _ = self.index_names(&unit, &mut named, &mut declarations, &mut ignored);
                }
            }
            named
        })
    }

    /// Adds the names of `unit`'s types to `named`, and to `elsewhere` every other unit
    /// its DIEs refer to for a type: by the unit's start, a DIE offset inside it (a
    /// unit's start is its header's, which no DIE offset finds).
    fn index_names(
        &self,
        unit: &gimli::Unit<Reader>,
        named: &mut Named,
        declarations: &mut rustc_hash::FxHashSet<String>,
        elsewhere: &mut std::collections::BTreeMap<usize, gimli::DebugInfoOffset>,
    ) -> gimli::Result<()> {
        // Enumerators are the children of their enum: the last enum entered, one level
        // up.
        let mut current_enum: Option<(TypeId, isize)> = None;
        let mut entries = unit.entries();
        while entries.next_entry()? {
            let depth = entries.depth();
            let Some(entry) = entries.current() else {
                continue;
            };
            if let Some(gimli::AttributeValue::DebugInfoRef(target)) =
                entry.attr_value(gimli::DW_AT_type)
            {
                if target.to_unit_offset(&unit.header).is_none() {
                    if let Ok((other, _)) = self.units.holding(target) {
                        elsewhere.entry(other.header.offset().0).or_insert(target);
                    }
                }
            }
            let Some(id) = global(unit, entry.offset()) else {
                continue;
            };
            let tag_word = match entry.tag() {
                gimli::DW_TAG_structure_type => Some("struct"),
                gimli::DW_TAG_class_type => Some("class"),
                gimli::DW_TAG_union_type => Some("union"),
                gimli::DW_TAG_enumeration_type => Some("enum"),
                gimli::DW_TAG_base_type | gimli::DW_TAG_typedef => None,
                gimli::DW_TAG_enumerator => {
                    let parent = current_enum.filter(|(_, at)| *at + 1 == depth);
                    if let (Some((parent, _)), Some(name)) = (parent, self.name_in(unit, entry)) {
                        // The value as the enum holds it, its sign and size applied.
                        if let Type::Enum { enumerators, .. } = &*self.get(parent) {
                            if let Some(e) = enumerators.iter().find(|e| e.name == name) {
                                named.enumerators.entry(name).or_insert((parent, e.value));
                            }
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            if entry.tag() == gimli::DW_TAG_enumeration_type {
                current_enum = Some((id, depth));
            }
            let Some(name) = self.name_in(unit, entry) else {
                continue;
            };
            let declaration = matches!(
                entry.attr_value(gimli::DW_AT_declaration),
                Some(gimli::AttributeValue::Flag(true))
            );
            let mut keys = vec![name.clone()];
            if let Some(word) = tag_word {
                keys.push(format!("{word} {name}"));
            }
            if entry.tag() == gimli::DW_TAG_base_type {
                keys.push(c_base_name(&name).to_string());
            }
            for key in keys {
                let replaces = declarations.contains(&key) && !declaration;
                if replaces || !named.types.contains_key(&key) {
                    if declaration {
                        declarations.insert(key.clone());
                    } else {
                        declarations.remove(&key);
                    }
                    named.types.insert(key, id);
                }
            }
        }
        Ok(())
    }

    pub fn address_size(&self) -> u64 {
        u64::from(self.unit.encoding().address_size)
    }

    /// The type at `id`, read on first use. Never fails: a DIE that cannot be read is
    /// an `Unknown` type saying why.
    pub fn get(&self, id: TypeId) -> Rc<Type> {
        if let Some(known) = self.read.borrow().get(&id) {
            return known.clone();
        }
        let read = Rc::new(self.read_type(id).unwrap_or_else(|error| Type::Unknown {
            what: format!("unreadable type at {:#x}: {error}", id.0),
        }));
        self.read.borrow_mut().insert(id, read.clone());
        read
    }

    /// Typedefs and qualifiers stripped: what the value is made of.
    pub fn strip(&self, mut id: Option<TypeId>) -> Option<(TypeId, Rc<Type>)> {
        for _ in 0..MAX_TYPE_DEPTH {
            let current = id?;
            let ty = self.get(current);
            match &*ty {
                Type::Typedef { target, .. } | Type::Qualified { target, .. } => id = *target,
                _ => return Some((current, ty)),
            }
        }
        None
    }

    /// The size of a value of the type in bytes; `None` for `void`, functions, unsized
    /// arrays, declarations and cycles.
    pub fn size_of(&self, id: Option<TypeId>) -> Option<u64> {
        self.size_within(id, 0)
    }

    fn size_within(&self, id: Option<TypeId>, depth: usize) -> Option<u64> {
        if depth > MAX_TYPE_DEPTH {
            return None;
        }
        let (_, ty) = self.strip(id)?;
        match &*ty {
            Type::Base { size, .. }
            | Type::Enum { size, .. }
            | Type::Pointer { size, .. }
            | Type::MemberPointer { size, .. } => Some(*size),
            Type::Aggregate { size, .. } => *size,
            Type::Array {
                element,
                dimensions,
            } => {
                let element = self.size_within(*element, depth + 1)?;
                dimensions
                    .iter()
                    .try_fold(element, |total, count| total.checked_mul((*count)?))
            }
            _ => None,
        }
    }

    /// The type's name as C writes it: `const char *`, `int [3][4]`, `int (*)(int)`.
    /// In a Go unit, the name as Go writes it: `*main.point`, `[3]int`.
    pub fn name_of(&self, id: Option<TypeId>) -> String {
        if self.is_go() {
            return self.go_name(id, 0);
        }
        // Rust's DWARF names every type as Rust writes it (`&[i32]`, `Box<i32, ...>`,
        // `*const u8`), pointers included; qualified, that is what rust-gdb says.
        if self.language() == Language::Rust {
            if let Some(name) = id.and_then(|id| self.qualified_name(id)) {
                return name;
            }
        }
        self.c_declarator(id, String::new(), 0)
    }

    fn is_go(&self) -> bool {
        self.language() == Language::Go
    }

    /// The type given for the template parameter `parameter` of the type `id` (`T` of
    /// Rust's `Vec<T, A>`, whose buffer's pointer does not say what it points to).
    pub fn template_parameter(&self, id: TypeId, parameter: &str) -> Option<TypeId> {
        let (unit, offset) = self.die(id).ok()?;
        let mut tree = unit.entries_tree(Some(offset)).ok()?;
        let mut children = tree.root().ok()?.children();
        while let Ok(Some(child)) = children.next() {
            let entry = child.entry();
            if entry.tag() == gimli::DW_TAG_template_type_parameter
                && self.name_in(&unit, entry).as_deref() == Some(parameter)
            {
                return self.type_ref_in(&unit, entry);
            }
        }
        None
    }

    /// The type whose Rust vtable is at `file_address` (an address in the file, before
    /// relocation): rustc describes each vtable as a variable `<T as Trait>::{vtable}`
    /// whose type's `DW_AT_containing_type` is `T`. One walk of every unit's top-level
    /// DIEs, on first use.
    pub fn vtable_for(&self, file_address: u64) -> Option<TypeId> {
        self.vtables
            .get_or_init(|| {
                let mut vtables = FxHashMap::default();
                let mut headers = self.dwarf.units();
                while let Ok(Some(header)) = headers.next() {
                    let Ok(unit) = self.dwarf.unit(header) else {
                        continue;
                    };
                    self.index_vtables(&unit, &mut vtables);
                }
                vtables
            })
            .get(&file_address)
            .copied()
    }

    fn index_vtables(&self, unit: &gimli::Unit<Reader>, vtables: &mut FxHashMap<u64, TypeId>) {
        let mut entries = unit.entries();
        while let Ok(true) = entries.next_entry() {
            let Some(entry) = entries.current() else {
                continue;
            };
            if entry.tag() != gimli::DW_TAG_variable {
                continue;
            }
            if !self
                .name_in(unit, entry)
                .is_some_and(|n| n.ends_with("::{vtable}"))
            {
                continue;
            }
            let Some(gimli::AttributeValue::Exprloc(expression)) =
                entry.attr_value(gimli::DW_AT_location)
            else {
                continue;
            };
            let mut ops = expression.operations(unit.encoding());
            let Ok(Some(gimli::Operation::Address { address })) = ops.next() else {
                continue;
            };
            let Some(vtable_type) = self.type_ref_in(unit, entry) else {
                continue;
            };
            let Ok((holder, offset)) = self.die(vtable_type) else {
                continue;
            };
            let Ok(vtable_entry) = holder.entry(offset) else {
                continue;
            };
            if let Some(concrete) = vtable_entry
                .attr_value(gimli::DW_AT_containing_type)
                .and_then(|v| self.reference(&holder, v))
            {
                vtables.insert(address, concrete);
            }
        }
    }

    /// The home unit's source language (`DW_AT_language` of its root).
    pub fn language(&self) -> Language {
        *self.language.get_or_init(|| {
            let mut entries = self.unit.entries();
            if !matches!(entries.next_dfs(), Ok(Some(_))) {
                return Language::Other;
            }
            match entries
                .current()
                .and_then(|root| root.attr_value(gimli::DW_AT_language))
            {
                Some(gimli::AttributeValue::Language(code)) => Language::of(code),
                _ => Language::Other,
            }
        })
    }

    /// Go's type syntax reads left to right: a prefix per pointer or array, then the
    /// named type. Go's DWARF names its structs, typedefs and base types as Go does.
    fn go_name(&self, id: Option<TypeId>, depth: usize) -> String {
        if depth > MAX_TYPE_DEPTH {
            return "<type too deep>".into();
        }
        let Some(id) = id else {
            return "void".into();
        };
        match &*self.get(id) {
            Type::Base { name, .. } | Type::Typedef { name, .. } => name.clone(),
            Type::Enum { name, .. } => name.clone().unwrap_or_else(|| "<enum>".into()),
            Type::Aggregate { name, .. } => name.clone().unwrap_or_else(|| "struct {...}".into()),
            // Go's untyped pointer is a pointer DIE without a target.
            Type::Pointer { pointee: None, .. } => "unsafe.Pointer".into(),
            Type::Pointer { pointee, .. } => format!("*{}", self.go_name(*pointee, depth + 1)),
            Type::Array {
                element,
                dimensions,
            } => {
                let mut name: String = dimensions
                    .iter()
                    .map(|count| match count {
                        Some(count) => format!("[{count}]"),
                        None => "[]".into(),
                    })
                    .collect();
                name.push_str(&self.go_name(*element, depth + 1));
                name
            }
            Type::Qualified { target, .. } => self.go_name(*target, depth + 1),
            Type::Function { .. } => "func(...)".into(),
            Type::MemberPointer { .. } => "<pointer to member>".into(),
            Type::Unknown { what } => format!("<{what}>"),
        }
    }

    /// C's inside-out declarator syntax: `inner` is what is already declared around the
    /// name (`*`, `[3]`), the type adds itself around it.
    fn c_declarator(&self, id: Option<TypeId>, inner: String, depth: usize) -> String {
        let join = |base: &str, inner: &str| {
            if inner.is_empty() {
                base.to_string()
            } else {
                format!("{base} {inner}")
            }
        };
        if depth > MAX_TYPE_DEPTH {
            return join("<type too deep>", &inner);
        }
        let Some(id) = id else {
            return join("void", &inner);
        };
        let ty = self.get(id);
        // C++ writes a named class, enum or typedef by its name alone, with its
        // namespaces and enclosing classes, as gdb does; C writes the tag's keyword.
        let cpp_name = || {
            (self.language() == Language::Cpp)
                .then(|| self.qualified_name(id))
                .flatten()
                .map(|name| cpp_canonical(&name))
        };
        match &*ty {
            Type::Base { name, .. } if self.language() == Language::Cpp => {
                join(&cpp_canonical(name), &inner)
            }
            Type::Base { name, .. } => join(c_base_name(name), &inner),
            Type::Typedef { name, .. } => join(&cpp_name().unwrap_or_else(|| name.clone()), &inner),
            Type::Enum { name, .. } => match cpp_name() {
                Some(name) => join(&name, &inner),
                None => join(
                    &format!("enum {}", name.as_deref().unwrap_or("{...}")),
                    &inner,
                ),
            },
            Type::Aggregate { kind, name, .. } => {
                if let Some(name) = cpp_name() {
                    return join(&name, &inner);
                }
                let keyword = match kind {
                    AggregateKind::Struct => "struct",
                    AggregateKind::Class => "class",
                    AggregateKind::Union => "union",
                };
                join(
                    &format!("{keyword} {}", name.as_deref().unwrap_or("{...}")),
                    &inner,
                )
            }
            Type::MemberPointer { member, class, .. } => {
                // `int S::*`, `int (S::*)(S * const, int)`: the class's name and `::*`
                // stand where a pointer's `*` would.
                let class = self.c_declarator(*class, String::new(), depth + 1);
                let inner = if inner.is_empty() {
                    format!("{class}::*")
                } else if inner.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    format!("{class}::* {inner}")
                } else {
                    format!("{class}::*{inner}")
                };
                self.c_declarator(*member, inner, depth + 1)
            }
            Type::Pointer { kind, pointee, .. } => {
                let sigil = match kind {
                    PointerKind::Pointer => "*",
                    PointerKind::Reference => "&",
                    PointerKind::RvalueReference => "&&",
                };
                // `char * const`: a qualifier of the pointer stands apart from the `*`.
                let inner = if inner.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    format!("{sigil} {inner}")
                } else {
                    format!("{sigil}{inner}")
                };
                self.c_declarator(*pointee, inner, depth + 1)
            }
            Type::Array {
                element,
                dimensions,
            } => {
                let mut inner = if inner.starts_with(['*', '&']) {
                    format!("({inner})")
                } else {
                    inner
                };
                for count in dimensions {
                    match count {
                        Some(count) => inner.push_str(&format!("[{count}]")),
                        None => inner.push_str("[]"),
                    }
                }
                self.c_declarator(*element, inner, depth + 1)
            }
            Type::Function {
                returns,
                parameters,
                variadic,
            } => {
                let mut list: Vec<String> = parameters
                    .iter()
                    .map(|p| self.c_declarator(*p, String::new(), depth + 1))
                    .collect();
                if *variadic {
                    list.push("...".into());
                }
                if list.is_empty() {
                    list.push("void".into());
                }
                let inner = if inner.is_empty() {
                    String::new()
                } else {
                    format!("({inner})")
                };
                self.c_declarator(*returns, format!("{inner}({})", list.join(", ")), depth + 1)
            }
            Type::Qualified { qualifier, target } => {
                let word = match qualifier {
                    Qualifier::Const => "const",
                    Qualifier::Volatile => "volatile",
                    Qualifier::Restrict => "restrict",
                    Qualifier::Atomic => "_Atomic",
                };
                // A qualified pointer is written after the `*` (`char * const`), any
                // other qualified type before it (`const char`).
                let qualifies_pointer = matches!(
                    target.map(|t| self.get(t)).as_deref(),
                    Some(Type::Pointer { .. })
                );
                if qualifies_pointer {
                    let inner = if inner.is_empty() {
                        word.to_string()
                    } else {
                        format!("{word} {inner}")
                    };
                    self.c_declarator(*target, inner, depth + 1)
                } else {
                    format!("{word} {}", self.c_declarator(*target, inner, depth + 1))
                }
            }
            Type::Unknown { what } => join(&format!("<{what}>"), &inner),
        }
    }

    /// A class's, struct's or enum's name with its namespaces and enclosing classes,
    /// as C++ writes it (`std::__cxx11::basic_string<char, ...>`): DWARF names the type
    /// by its last component, nested in its scopes' DIEs, which a DIE cannot find from
    /// below, so each unit's scopes are read in one walk, on first use.
    /// Rust's names too (`core::option::Option<i32>`). `None` for a DIE without a name
    /// (a C pointer) or a made-up type.
    pub fn qualified_name(&self, id: TypeId) -> Option<String> {
        let (unit, offset) = self.die(id).ok()?;
        let name = self.name_in(&unit, &unit.entry(offset).ok()?)?;
        let scopes = self.scopes_of(&unit);
        Some(match scopes.get(&id.0) {
            Some(scope) => format!("{scope}::{name}"),
            None => name,
        })
    }

    /// The data member of `class` at byte `offset`, searched as gdb does: the class's
    /// own members, then its base classes' (the class named is the one declaring it):
    /// what a pointer to a data member holding `offset` points to.
    pub fn member_at(&self, class: TypeId, offset: u64) -> Option<(TypeId, String)> {
        self.member_at_within(class, offset, 0)
    }

    fn member_at_within(
        &self,
        class: TypeId,
        offset: u64,
        depth: usize,
    ) -> Option<(TypeId, String)> {
        if depth > MAX_TYPE_DEPTH {
            return None;
        }
        let (class, ty) = self.strip(Some(class))?;
        let Type::Aggregate { members, .. } = &*ty else {
            return None;
        };
        let own = members.iter().find(|m| {
            !m.is_base && m.bit_field.is_none() && m.offset == Some(offset) && m.name.is_some()
        });
        if let Some(found) = own {
            return Some((class, found.name.clone()?));
        }
        members.iter().filter(|m| m.is_base).find_map(|base| {
            let inside = offset.checked_sub(base.offset?)?;
            self.member_at_within(base.type_id?, inside, depth + 1)
        })
    }

    /// The virtual member function in vtable slot `slot` of `class` (or of the
    /// non-virtual base `adjustment` bytes into it), demangled from its linkage name
    /// (`S::v(int)`), as gdb names what a pointer to a virtual member function points
    /// to.
    pub fn virtual_method(&self, class: TypeId, slot: u64, adjustment: u64) -> Option<String> {
        self.virtual_method_within(class, slot, adjustment, 0)
    }

    fn virtual_method_within(
        &self,
        class: TypeId,
        slot: u64,
        adjustment: u64,
        depth: usize,
    ) -> Option<String> {
        if depth > MAX_TYPE_DEPTH {
            return None;
        }
        let (class, ty) = self.strip(Some(class))?;
        if adjustment == 0 {
            if let Some(found) = self.method_in_slot(class, slot) {
                return Some(found);
            }
        }
        let Type::Aggregate { members, .. } = &*ty else {
            return None;
        };
        // A virtual base has no fixed offset: gdb does not look there either.
        members.iter().filter(|m| m.is_base).find_map(|base| {
            let at = base.offset?;
            let size = self.size_of(base.type_id)?;
            if adjustment < at || adjustment >= at + size {
                return None;
            }
            self.virtual_method_within(base.type_id?, slot, adjustment - at, depth + 1)
        })
    }

    fn method_in_slot(&self, class: TypeId, slot: u64) -> Option<String> {
        let (unit, offset) = self.die(class).ok()?;
        let mut tree = unit.entries_tree(Some(offset)).ok()?;
        let mut children = tree.root().ok()?.children();
        while let Ok(Some(child)) = children.next() {
            let entry = child.entry();
            if entry.tag() != gimli::DW_TAG_subprogram {
                continue;
            }
            let Some(gimli::AttributeValue::Exprloc(location)) =
                entry.attr_value(gimli::DW_AT_vtable_elem_location)
            else {
                continue;
            };
            // gcc writes the slot as `DW_OP_constu N`.
            let mut ops = location.operations(unit.encoding());
            let Ok(Some(gimli::Operation::UnsignedConstant { value })) = ops.next() else {
                continue;
            };
            if value != slot {
                continue;
            }
            let linkage = entry
                .attr_value(gimli::DW_AT_linkage_name)
                .or_else(|| entry.attr_value(gimli::DW_AT_MIPS_linkage_name))?;
            let linkage = self.dwarf.attr_string(&unit, linkage).ok()?;
            let linkage = linkage.to_string_lossy();
            return Some(crate::symbols::module::demangle(
                &linkage,
                Some(gimli::DW_LANG_C_plus_plus),
            ));
        }
        None
    }

    fn scopes_of(&self, unit: &gimli::Unit<Reader>) -> Rc<Scopes> {
        let start = unit.header.offset().0;
        if let Some(known) = self.scopes.borrow().get(&start) {
            return known.clone();
        }
        let mut scopes = Scopes::default();
        // A unit that stops reading part way keeps the scopes read up to there.
        let _ = self.read_scopes(unit, &mut scopes);
        let scopes = Rc::new(scopes);
        self.scopes.borrow_mut().insert(start, scopes.clone());
        scopes
    }

    fn read_scopes(&self, unit: &gimli::Unit<Reader>, scopes: &mut Scopes) -> gimli::Result<()> {
        // The open scopes: each one's depth and its full name.
        let mut open: Vec<(isize, Rc<str>)> = Vec::new();
        let mut entries = unit.entries();
        while entries.next_entry()? {
            let depth = entries.depth();
            let Some(entry) = entries.current() else {
                continue;
            };
            while open.last().is_some_and(|(at, _)| *at >= depth) {
                open.pop();
            }
            // Rust nests types in enums too (a C-like enum's impl items).
            let is_scope = matches!(
                entry.tag(),
                gimli::DW_TAG_namespace
                    | gimli::DW_TAG_class_type
                    | gimli::DW_TAG_structure_type
                    | gimli::DW_TAG_union_type
                    | gimli::DW_TAG_enumeration_type
            );
            let is_named_type = is_scope
                || matches!(
                    entry.tag(),
                    gimli::DW_TAG_typedef | gimli::DW_TAG_base_type | gimli::DW_TAG_pointer_type
                );
            if !is_named_type {
                continue;
            }
            let Some(id) = global(unit, entry.offset()) else {
                continue;
            };
            if let Some((_, scope)) = open.last() {
                scopes.insert(id.0, scope.clone());
            }
            if is_scope && entry.has_children() {
                let name = self
                    .name_in(unit, entry)
                    .unwrap_or_else(|| "(anonymous namespace)".into());
                let full: Rc<str> = match open.last() {
                    Some((_, scope)) => format!("{scope}::{name}").into(),
                    None => name.into(),
                };
                open.push((depth, full));
            }
        }
        Ok(())
    }

    /// The types of a template's type parameters, in order (`int` and
    /// `std::allocator<int>` of `std::vector<int>`), a parameter pack's spread out:
    /// what a language view needs to read a container's elements.
    pub fn template_types(&self, id: TypeId) -> Vec<Option<TypeId>> {
        let mut types = Vec::new();
        if let Ok((unit, offset)) = self.die(id) {
            // An unreadable DIE has the parameters read up to there.
            let _ = self.read_template_types(&unit, offset, &mut types);
        }
        types
    }

    fn read_template_types(
        &self,
        unit: &gimli::Unit<Reader>,
        offset: gimli::UnitOffset,
        types: &mut Vec<Option<TypeId>>,
    ) -> gimli::Result<()> {
        let mut tree = unit.entries_tree(Some(offset))?;
        let mut children = tree.root()?.children();
        while let Some(child) = children.next()? {
            match child.entry().tag() {
                gimli::DW_TAG_template_type_parameter => {
                    types.push(self.type_ref_in(unit, child.entry()));
                }
                gimli::DW_TAG_GNU_template_parameter_pack => {
                    let mut pack = child.children();
                    while let Some(member) = pack.next()? {
                        if member.entry().tag() == gimli::DW_TAG_template_type_parameter {
                            types.push(self.type_ref_in(unit, member.entry()));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The unit holding the DIE `id`, and the DIE's offset in it: the home unit's
    /// without a lookup, any other's through the file's index of units.
    pub fn die(&self, id: TypeId) -> Result<(Rc<gimli::Unit<Reader>>, gimli::UnitOffset), String> {
        if id.0 & MADE_TYPE != 0 {
            return Err(format!("no DIE for the made-up type {:#x}", id.0));
        }
        let offset = gimli::DebugInfoOffset(id.0);
        match offset.to_unit_offset(&self.unit.header) {
            Some(in_unit) => Ok((self.unit.clone(), in_unit)),
            None => self.units.holding(offset),
        }
    }

    fn read_type(&self, id: TypeId) -> gimli::Result<Type> {
        let (unit, offset) = match self.die(id) {
            Ok(found) => found,
            Err(what) => return Ok(Type::Unknown { what }),
        };
        let unit = &*unit;
        let entry = unit.entry(offset)?;
        let name = self.name_in(unit, &entry);
        let size = entry
            .attr_value(gimli::DW_AT_byte_size)
            .and_then(|v| v.udata_value());
        let target = self.type_ref_in(unit, &entry);
        Ok(match entry.tag() {
            gimli::DW_TAG_base_type => {
                let encoding = match entry.attr_value(gimli::DW_AT_encoding) {
                    Some(gimli::AttributeValue::Encoding(e)) => e,
                    _ => gimli::DwAte(0),
                };
                Type::Base {
                    name: name.unwrap_or_else(|| "<unnamed>".into()),
                    encoding: base_encoding(encoding),
                    size: size.unwrap_or(0),
                }
            }
            gimli::DW_TAG_unspecified_type => Type::Base {
                // C++'s `decltype(nullptr)`: pointer-sized, shown as a number.
                name: name.unwrap_or_else(|| "<unspecified>".into()),
                encoding: BaseEncoding::Unsigned,
                size: size.unwrap_or(self.address_size()),
            },
            gimli::DW_TAG_enumeration_type => self.read_enum(unit, &entry, name, size, target)?,
            gimli::DW_TAG_structure_type | gimli::DW_TAG_class_type | gimli::DW_TAG_union_type => {
                let kind = match entry.tag() {
                    gimli::DW_TAG_structure_type => AggregateKind::Struct,
                    gimli::DW_TAG_class_type => AggregateKind::Class,
                    _ => AggregateKind::Union,
                };
                let declaration = matches!(
                    entry.attr_value(gimli::DW_AT_declaration),
                    Some(gimli::AttributeValue::Flag(true))
                );
                Type::Aggregate {
                    kind,
                    name,
                    size: if declaration { None } else { size },
                    members: self.read_members(unit, offset)?,
                    variants: self.read_variant_part(unit, offset)?,
                }
            }
            gimli::DW_TAG_array_type => self.read_array(unit, offset, target)?,
            gimli::DW_TAG_pointer_type
            | gimli::DW_TAG_reference_type
            | gimli::DW_TAG_rvalue_reference_type => Type::Pointer {
                kind: match entry.tag() {
                    gimli::DW_TAG_pointer_type => PointerKind::Pointer,
                    gimli::DW_TAG_reference_type => PointerKind::Reference,
                    _ => PointerKind::RvalueReference,
                },
                pointee: target,
                size: size.unwrap_or(self.address_size()),
            },
            gimli::DW_TAG_typedef => Type::Typedef {
                name: name.unwrap_or_else(|| "<unnamed typedef>".into()),
                target,
            },
            gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_restrict_type
            | gimli::DW_TAG_atomic_type => Type::Qualified {
                qualifier: match entry.tag() {
                    gimli::DW_TAG_const_type => Qualifier::Const,
                    gimli::DW_TAG_volatile_type => Qualifier::Volatile,
                    gimli::DW_TAG_restrict_type => Qualifier::Restrict,
                    _ => Qualifier::Atomic,
                },
                target,
            },
            gimli::DW_TAG_subroutine_type => self.read_function(unit, offset, target)?,
            gimli::DW_TAG_ptr_to_member_type => {
                let class = entry
                    .attr_value(gimli::DW_AT_containing_type)
                    .and_then(|v| self.reference(unit, v));
                // gcc gives no size: the Itanium ABI's, an offset for a data member,
                // a function address (or vtable offset) and an adjustment for a method.
                let is_method = matches!(
                    self.strip(target).map(|(_, t)| t).as_deref(),
                    Some(Type::Function { .. })
                );
                let words = if is_method { 2 } else { 1 };
                Type::MemberPointer {
                    member: target,
                    class,
                    size: size.unwrap_or(words * self.address_size()),
                }
            }
            tag => Type::Unknown {
                what: tag
                    .static_string()
                    .map_or_else(|| format!("tag {:#x}", tag.0), str::to_string),
            },
        })
    }

    fn read_enum(
        &self,
        unit: &gimli::Unit<Reader>,
        entry: &gimli::DebuggingInformationEntry<Reader>,
        name: Option<String>,
        size: Option<u64>,
        underlying: Option<TypeId>,
    ) -> gimli::Result<Type> {
        let underlying = self.strip(underlying).map(|(_, ty)| ty);
        let size = size
            .or(match underlying.as_deref() {
                Some(Type::Base { size, .. }) => Some(*size),
                _ => None,
            })
            .unwrap_or(4);
        // Without an underlying type (older gcc), an enum is signed only when an
        // enumerator is negative, which only DW_FORM_sdata can say.
        let mut signed = matches!(
            underlying.as_deref(),
            Some(Type::Base {
                encoding: BaseEncoding::Signed | BaseEncoding::SignedChar,
                ..
            })
        );
        let mut enumerators = Vec::new();
        let mut tree = unit.entries_tree(Some(entry.offset()))?;
        let mut children = tree.root()?.children();
        while let Some(child) = children.next()? {
            let child = child.entry();
            if child.tag() != gimli::DW_TAG_enumerator {
                continue;
            }
            let Some(name) = self.name_in(unit, child) else {
                continue;
            };
            let value = match child.attr_value(gimli::DW_AT_const_value) {
                Some(gimli::AttributeValue::Sdata(v)) => {
                    if v < 0 {
                        signed = true;
                    }
                    v as u64
                }
                Some(gimli::AttributeValue::Udata(v)) | Some(gimli::AttributeValue::Data8(v)) => v,
                Some(gimli::AttributeValue::Data1(v)) => extend(u64::from(v), 1, signed),
                Some(gimli::AttributeValue::Data2(v)) => extend(u64::from(v), 2, signed),
                Some(gimli::AttributeValue::Data4(v)) => extend(u64::from(v), 4, signed),
                _ => continue,
            };
            enumerators.push(Enumerator {
                name,
                value: truncate(value, size),
            });
        }
        Ok(Type::Enum {
            name,
            size,
            signed,
            enumerators,
        })
    }

    fn read_members(
        &self,
        unit: &gimli::Unit<Reader>,
        offset: gimli::UnitOffset,
    ) -> gimli::Result<Vec<Member>> {
        let mut members = Vec::new();
        let mut tree = unit.entries_tree(Some(offset))?;
        let mut children = tree.root()?.children();
        while let Some(child) = children.next()? {
            let child = child.entry();
            let is_base = child.tag() == gimli::DW_TAG_inheritance;
            if child.tag() != gimli::DW_TAG_member && !is_base {
                continue;
            }
            // Static data members are declarations without a location in the object.
            if child.tag() == gimli::DW_TAG_member
                && matches!(
                    child.attr_value(gimli::DW_AT_external),
                    Some(gimli::AttributeValue::Flag(true))
                )
                && !child.has_attr(gimli::DW_AT_data_member_location)
            {
                continue;
            }
            let type_id = self.type_ref_in(unit, child);
            let mut offset = match child.attr_value(gimli::DW_AT_data_member_location) {
                None => Some(0),
                Some(value) => match value.udata_value() {
                    Some(offset) => Some(offset),
                    None => value
                        .exprloc_value()
                        .and_then(|e| constant_offset(unit.encoding(), e)),
                },
            };
            let bit_size = child
                .attr_value(gimli::DW_AT_bit_size)
                .and_then(|v| v.udata_value());
            let mut bit_field = None;
            if let Some(bit_size) = bit_size {
                // DWARF 4: bits from the start of the containing object, counted from
                // the least significant bit on a little-endian machine.
                let from_start = if let Some(bits) = child
                    .attr_value(gimli::DW_AT_data_bit_offset)
                    .and_then(|v| v.udata_value())
                {
                    Some(bits)
                } else if let Some(from_msb) = child
                    .attr_value(gimli::DW_AT_bit_offset)
                    .and_then(|v| v.udata_value())
                {
                    // DWARF 2/3: bits from the most significant bit of a storage unit
                    // of DW_AT_byte_size bytes at the member's location.
                    let unit_size = child
                        .attr_value(gimli::DW_AT_byte_size)
                        .and_then(|v| v.udata_value())
                        .or_else(|| self.size_of(type_id));
                    unit_size.and_then(|unit| {
                        let lsb = (unit * 8).checked_sub(from_msb)?.checked_sub(bit_size)?;
                        Some(offset? * 8 + lsb)
                    })
                } else {
                    offset.map(|o| o * 8)
                };
                match from_start {
                    Some(bits) => {
                        offset = Some(bits / 8);
                        bit_field = Some(BitField {
                            offset: (bits % 8) as u32,
                            size: bit_size.min(64) as u32,
                        });
                    }
                    None => offset = None,
                }
            }
            members.push(Member {
                name: self.name_in(unit, child),
                type_id,
                offset,
                bit_field,
                is_base,
            });
        }
        Ok(members)
    }

    /// The variant part of a Rust enum's structure `offset`, if it has one.
    fn read_variant_part(
        &self,
        unit: &gimli::Unit<Reader>,
        offset: gimli::UnitOffset,
    ) -> gimli::Result<Option<VariantPart>> {
        let mut tree = unit.entries_tree(Some(offset))?;
        let mut children = tree.root()?.children();
        while let Some(child) = children.next()? {
            if child.entry().tag() != gimli::DW_TAG_variant_part {
                continue;
            }
            let part = child.entry().offset();
            // rustc puts the discriminant member (the one DW_AT_discr names) directly
            // in the variant part, and nothing else: its members are that one.
            let discriminant = if child.entry().has_attr(gimli::DW_AT_discr) {
                self.read_members(unit, part)?.into_iter().next()
            } else {
                None
            };
            let size = discriminant
                .as_ref()
                .and_then(|d| self.size_of(d.type_id))
                .unwrap_or(8);
            let mut variants = Vec::new();
            let mut each = child.children();
            while let Some(variant) = each.next()? {
                let entry = variant.entry();
                if entry.tag() != gimli::DW_TAG_variant {
                    continue;
                }
                let discr_value = match entry.attr_value(gimli::DW_AT_discr_value) {
                    None => None,
                    Some(gimli::AttributeValue::Sdata(v)) => Some(truncate(v as u64, size)),
                    Some(value) => match value.udata_value() {
                        Some(v) => Some(truncate(v, size)),
                        // A form this does not read (a 128-bit value): a variant that
                        // no value can be said to choose, left out.
                        None => continue,
                    },
                };
                let Some(member) = self.read_members(unit, entry.offset())?.into_iter().next()
                else {
                    continue;
                };
                variants.push(Variant {
                    discr_value,
                    member,
                });
            }
            return Ok(Some(VariantPart {
                discriminant,
                variants,
            }));
        }
        Ok(None)
    }

    fn read_array(
        &self,
        unit: &gimli::Unit<Reader>,
        offset: gimli::UnitOffset,
        element: Option<TypeId>,
    ) -> gimli::Result<Type> {
        let mut dimensions = Vec::new();
        let mut tree = unit.entries_tree(Some(offset))?;
        let mut children = tree.root()?.children();
        while let Some(child) = children.next()? {
            let child = child.entry();
            if child.tag() != gimli::DW_TAG_subrange_type {
                continue;
            }
            let constant = |at| {
                child.attr_value(at).and_then(|v| match v {
                    gimli::AttributeValue::Sdata(v) => Some(v),
                    gimli::AttributeValue::Udata(v) => i64::try_from(v).ok(),
                    gimli::AttributeValue::Data1(v) => Some(i64::from(v)),
                    gimli::AttributeValue::Data2(v) => Some(i64::from(v)),
                    gimli::AttributeValue::Data4(v) => Some(i64::from(v)),
                    gimli::AttributeValue::Data8(v) => i64::try_from(v).ok(),
                    // A bound in a variable or an expression: a variable-length array.
                    _ => None,
                })
            };
            let count = match constant(gimli::DW_AT_count) {
                Some(count) => u64::try_from(count).ok(),
                None => {
                    let lower = constant(gimli::DW_AT_lower_bound).unwrap_or(0);
                    constant(gimli::DW_AT_upper_bound)
                        .and_then(|upper| u64::try_from(upper - lower + 1).ok())
                }
            };
            dimensions.push(count);
        }
        if dimensions.is_empty() {
            dimensions.push(None);
        }
        Ok(Type::Array {
            element,
            dimensions,
        })
    }

    fn read_function(
        &self,
        unit: &gimli::Unit<Reader>,
        offset: gimli::UnitOffset,
        returns: Option<TypeId>,
    ) -> gimli::Result<Type> {
        let mut parameters = Vec::new();
        let mut variadic = false;
        let mut tree = unit.entries_tree(Some(offset))?;
        let mut children = tree.root()?.children();
        while let Some(child) = children.next()? {
            let child = child.entry();
            match child.tag() {
                gimli::DW_TAG_formal_parameter => {
                    let mut parameter = self.type_ref_in(unit, child);
                    // gcc marks a method's `this` artificial but not const in a class's
                    // declarations; gdb makes it `T * const` in C++, and so shows a
                    // pointer to member function's type: `int (S::*)(S * const, int)`.
                    let is_this = parameters.is_empty()
                        && matches!(
                            child.attr_value(gimli::DW_AT_artificial),
                            Some(gimli::AttributeValue::Flag(true))
                        )
                        && self.name_in(unit, child).is_none_or(|name| name == "this");
                    if is_this && self.language() == Language::Cpp {
                        if let Some(pointer) =
                            parameter.filter(|p| matches!(&*self.get(*p), Type::Pointer { .. }))
                        {
                            parameter =
                                Some(self.make(Made::ConstOf(pointer), || Type::Qualified {
                                    qualifier: Qualifier::Const,
                                    target: Some(pointer),
                                }));
                        }
                    }
                    parameters.push(parameter);
                }
                gimli::DW_TAG_unspecified_parameters => variadic = true,
                _ => {}
            }
        }
        Ok(Type::Function {
            returns,
            parameters,
            variadic,
        })
    }

    /// The `DW_AT_name` of a DIE of the home unit.
    pub fn name(&self, entry: &gimli::DebuggingInformationEntry<Reader>) -> Option<String> {
        self.name_in(&self.unit, entry)
    }

    /// The `DW_AT_name` of a DIE of `unit` (its string offsets are the unit's own).
    pub fn name_in(
        &self,
        unit: &gimli::Unit<Reader>,
        entry: &gimli::DebuggingInformationEntry<Reader>,
    ) -> Option<String> {
        let value = entry.attr_value(gimli::DW_AT_name)?;
        let name = self.dwarf.attr_string(unit, value).ok()?;
        Some(name.to_string_lossy().into_owned())
    }

    /// The `DW_AT_type` of a DIE of the home unit.
    pub fn type_ref(&self, entry: &gimli::DebuggingInformationEntry<Reader>) -> Option<TypeId> {
        self.type_ref_in(&self.unit, entry)
    }

    fn type_ref_in(
        &self,
        unit: &gimli::Unit<Reader>,
        entry: &gimli::DebuggingInformationEntry<Reader>,
    ) -> Option<TypeId> {
        self.reference(unit, entry.attr_value(gimli::DW_AT_type)?)
    }

    /// A reference from a DIE of the home unit, whichever form it takes.
    pub fn unit_ref(&self, value: gimli::AttributeValue<Reader>) -> Option<TypeId> {
        self.reference(&self.unit, value)
    }

    /// A reference from a DIE of `unit` (`DW_FORM_ref*` counts from that unit's start;
    /// `DW_FORM_ref_addr`, Go's, LTO's and dwz's, from the section's) as the DIE's
    /// offset in `.debug_info`. Whether a DIE is there is found out on reading it.
    pub fn reference(
        &self,
        unit: &gimli::Unit<Reader>,
        value: gimli::AttributeValue<Reader>,
    ) -> Option<TypeId> {
        let unreachable = || {
            self.make(Made::Unreachable, || Type::Unknown {
                what: "a type outside .debug_info (a type unit, dwz's supplementary file), \
                       which latch does not read"
                    .into(),
            })
        };
        match value {
            gimli::AttributeValue::UnitRef(offset) => {
                Some(global(unit, offset).unwrap_or_else(unreachable))
            }
            gimli::AttributeValue::DebugInfoRef(offset) => Some(TypeId(offset.0)),
            // A type unit's signature (`DW_FORM_ref_sig8`) or dwz's supplementary file
            // (`DW_FORM_GNU_ref_alt`): a type latch does not read, never `void`.
            gimli::AttributeValue::DebugTypesRef(_) | gimli::AttributeValue::DebugInfoRefSup(_) => {
                Some(unreachable())
            }
            _ => None,
        }
    }
}

/// A member location given as an expression (DWARF 2's `DW_OP_plus_uconst N`): its
/// offset when it does not depend on the object's contents.
fn constant_offset(
    encoding: gimli::Encoding,
    expression: gimli::Expression<Reader>,
) -> Option<u64> {
    let mut evaluation = expression.evaluation(encoding);
    evaluation.set_initial_value(0);
    evaluation.set_max_iterations(64);
    match evaluation.evaluate().ok()? {
        gimli::EvaluationResult::Complete => {}
        _ => return None,
    }
    match evaluation.as_result() {
        [gimli::Piece {
            location: gimli::Location::Address { address },
            ..
        }] => Some(*address),
        _ => None,
    }
}

/// gcc names C's integer types the long way (`long unsigned int`); C programmers and
/// gdb write them the short way.
fn c_base_name(name: &str) -> &str {
    match name {
        "short int" => "short",
        "short unsigned int" => "unsigned short",
        "long int" => "long",
        "long unsigned int" => "unsigned long",
        "long long int" => "long long",
        "long long unsigned int" => "unsigned long long",
        other => other,
    }
}

fn base_encoding(encoding: gimli::DwAte) -> BaseEncoding {
    match encoding {
        gimli::DW_ATE_signed => BaseEncoding::Signed,
        gimli::DW_ATE_unsigned => BaseEncoding::Unsigned,
        gimli::DW_ATE_signed_char => BaseEncoding::SignedChar,
        gimli::DW_ATE_unsigned_char => BaseEncoding::UnsignedChar,
        gimli::DW_ATE_UTF => BaseEncoding::Utf,
        gimli::DW_ATE_float => BaseEncoding::Float,
        gimli::DW_ATE_boolean => BaseEncoding::Bool,
        _ => BaseEncoding::Other,
    }
}

/// `value`'s low `size` bytes sign- or zero-extended to 64 bits.
pub fn extend(value: u64, size: u64, signed: bool) -> u64 {
    if size == 0 || size >= 8 {
        return value;
    }
    let bits = size * 8;
    let value = value & ((1 << bits) - 1);
    if signed && value >> (bits - 1) & 1 == 1 {
        value | !((1 << bits) - 1)
    } else {
        value
    }
}

/// `value`'s low `size` bytes.
pub fn truncate(value: u64, size: u64) -> u64 {
    if size >= 8 {
        value
    } else {
        value & ((1 << (size * 8)) - 1)
    }
}

/// A C++ type's name as gdb writes it (its C++ name parser's canonical form) from gcc's
/// DWARF spelling: within template arguments a qualifier follows what it qualifies
/// (`std::pair<int const, int>`, `char const*`, where gcc writes `const int` for some
/// and `int const` for others), and integer types take their short names (`unsigned
/// long` for gcc's `long unsigned int`). Anything it does not parse (a function type,
/// a non-type argument) is kept as gcc wrote it, its own template arguments still
/// rewritten.
pub fn cpp_canonical(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name.trim();
    // Outside template brackets the name is copied as is, a builtin type's words
    // excepted (`long unsigned int` of a base type DIE).
    if !rest.contains('<') {
        return canonical_argument(rest);
    }
    while let Some(open) = rest.find('<') {
        // `operator<` and `operator<<` are names, not brackets.
        if rest[..open].ends_with("operator") {
            let skip = open + rest[open..].find(|c| c != '<').unwrap_or(rest.len() - open);
            out.push_str(&rest[..skip]);
            rest = &rest[skip..];
            continue;
        }
        let Some(close) = matching_close(rest, open) else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..open]);
        let arguments: Vec<String> = split_top_level(&rest[open + 1..close])
            .into_iter()
            .map(canonical_argument)
            .collect();
        let joined = arguments.join(", ");
        out.push('<');
        out.push_str(&joined);
        out.push_str(if joined.ends_with('>') { " >" } else { ">" });
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The index of the `>` closing the `<` at `open`.
fn matching_close(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in text[open..].char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return (c == '>').then_some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` split at its commas outside brackets.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts
}

/// One template argument in gdb's form: `T const*` for gcc's `const T*`.
fn canonical_argument(argument: &str) -> String {
    let argument = argument.trim();
    // Values (`3`, `(char)97`, `true`, `&f`) and function types are kept.
    if argument.is_empty()
        || argument.starts_with(|c: char| !(c.is_ascii_alphabetic() || c == '_' || c == ':'))
        || argument.contains('(')
        || argument == "true"
        || argument == "false"
    {
        return canonical_nested(argument);
    }
    // Words (a name with its template arguments, a keyword) and declarator marks.
    let mut words: Vec<String> = Vec::new();
    let mut marks: Vec<String> = Vec::new();
    let mut rest = argument;
    while !rest.is_empty() {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(after) = rest.strip_prefix("&&") {
            marks.push("&&".into());
            rest = after;
            continue;
        }
        if rest.starts_with(['*', '&']) {
            marks.push(rest[..1].into());
            rest = &rest[1..];
            continue;
        }
        // A word runs to the next space, `*` or `&` outside brackets.
        let mut depth = 0i32;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '<' | '[' => depth += 1,
                '>' | ']' => depth -= 1,
                ' ' | '*' | '&' if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let word = &rest[..end];
        rest = &rest[end..];
        if marks.is_empty() {
            words.push(word.to_string());
        } else {
            // A qualifier of a pointer (`char* const`).
            marks.push(format!(" {word}"));
        }
    }
    let is_qualifier = |w: &str| w == "const" || w == "volatile";
    let qualifiers: Vec<&str> = ["const", "volatile"]
        .into_iter()
        .filter(|q| words.iter().any(|w| w == q))
        .collect();
    let base: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|w| !is_qualifier(w))
        .collect();
    let mut out = builtin_name(&base).unwrap_or_else(|| {
        base.iter()
            .map(|w| canonical_nested(w))
            .collect::<Vec<_>>()
            .join(" ")
    });
    for qualifier in qualifiers {
        out.push(' ');
        out.push_str(qualifier);
    }
    for mark in marks {
        out.push_str(&mark);
    }
    out
}

/// A word with template arguments (`std::vector<long int>`) in gdb's form; others as
/// they are.
fn canonical_nested(word: &str) -> String {
    if word.contains('<') {
        cpp_canonical(word)
    } else {
        word.to_string()
    }
}

/// An integer type's words as gdb names it: `unsigned long` for `long unsigned int`,
/// `short` for `short int`, `int` for `signed`; `None` for anything else.
fn builtin_name(words: &[&str]) -> Option<String> {
    const KEYWORDS: &[&str] = &[
        "unsigned", "signed", "long", "short", "int", "char", "double",
    ];
    if words.is_empty() || !words.iter().all(|w| KEYWORDS.contains(w)) {
        return None;
    }
    let has = |w: &str| words.contains(&w);
    let longs = words.iter().filter(|w| **w == "long").count();
    let unsigned = has("unsigned");
    let core = if has("char") {
        return Some(
            match (unsigned, has("signed")) {
                (true, _) => "unsigned char",
                (false, true) => "signed char",
                _ => "char",
            }
            .into(),
        );
    } else if has("double") {
        return Some(if longs > 0 { "long double" } else { "double" }.into());
    } else if has("short") {
        "short"
    } else if longs >= 2 {
        "long long"
    } else if longs == 1 {
        "long"
    } else {
        "int"
    };
    Some(if unsigned {
        format!("unsigned {core}")
    } else {
        core.to_string()
    })
}

#[cfg(test)]
mod cpp_name_tests {
    use super::cpp_canonical;

    /// gcc's DWARF spellings and what gdb's `whatis/r` prints for them (gdb 13, as
    /// seen on the containers fixture and on `std::map<unsigned long, short>`).
    #[test]
    fn template_arguments_are_written_as_gdb_writes_them() {
        for (gcc, gdb) in [
            (
                "vector<int, std::allocator<int> >",
                "vector<int, std::allocator<int> >",
            ),
            (
                "map<long unsigned int, short int, std::less<long unsigned int>, \
                 std::allocator<std::pair<long unsigned int const, short int> > >",
                "map<unsigned long, short, std::less<unsigned long>, \
                 std::allocator<std::pair<unsigned long const, short> > >",
            ),
            (
                "allocator<std::pair<const std::__cxx11::basic_string<char>, int> >",
                "allocator<std::pair<std::__cxx11::basic_string<char> const, int> >",
            ),
            ("vector<const char*>", "vector<char const*>"),
            (
                "_Deque_iterator<int, const int&, const int*>",
                "_Deque_iterator<int, int const&, int const*>",
            ),
            ("array<int, 3>", "array<int, 3>"),
            ("function<void (*)(int)>", "function<void (*)(int)>"),
            ("long long unsigned int", "unsigned long long"),
            (
                "(anonymous namespace)::Hidden",
                "(anonymous namespace)::Hidden",
            ),
            ("outer::Inner::Deep", "outer::Inner::Deep"),
        ] {
            assert_eq!(cpp_canonical(gcc), gdb, "{gcc}");
        }
    }
}
