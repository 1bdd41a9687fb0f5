//! Type names as an expression writes them (`unsigned long`, `struct node *`, `u32`,
//! `my_t`) to the unit's types: the unit's own DWARF type when it has one by that name,
//! otherwise a base type made for the expression with the size x86-64 gives it.

use crate::values::types::{BaseEncoding, TypeId, Types};

use super::TypeName;

/// A base type an expression may name without the program declaring it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    pub name: &'static str,
    pub encoding: BaseEncoding,
    pub size: u64,
}

const fn builtin(name: &'static str, encoding: BaseEncoding, size: u64) -> Builtin {
    Builtin {
        name,
        encoding,
        size,
    }
}

/// Rust's and Go's base types (C's are spelled in words, see [`c_words`]).
const OTHER_LANGUAGES: &[Builtin] = {
    use BaseEncoding::*;
    &[
        builtin("u8", Unsigned, 1),
        builtin("u16", Unsigned, 2),
        builtin("u32", Unsigned, 4),
        builtin("u64", Unsigned, 8),
        builtin("usize", Unsigned, 8),
        builtin("i8", Signed, 1),
        builtin("i16", Signed, 2),
        builtin("i32", Signed, 4),
        builtin("i64", Signed, 8),
        builtin("isize", Signed, 8),
        builtin("f32", Float, 4),
        builtin("f64", Float, 8),
        builtin("uint", Unsigned, 8),
        builtin("uint8", Unsigned, 1),
        builtin("uint16", Unsigned, 2),
        builtin("uint32", Unsigned, 4),
        builtin("uint64", Unsigned, 8),
        builtin("uintptr", Unsigned, 8),
        builtin("int8", Signed, 1),
        builtin("int16", Signed, 2),
        builtin("int32", Signed, 4),
        builtin("int64", Signed, 8),
        builtin("float32", Float, 4),
        builtin("float64", Float, 8),
        builtin("byte", Unsigned, 1),
        builtin("rune", Signed, 4),
    ]
};

/// A run of C's type words (`unsigned`, `long long int`, `char`) as one base type, in
/// the short spelling gdb prints (`unsigned long`); `None` for words that make no
/// type. `Some(None)` is `void`.
pub fn c_words(name: &str) -> Option<Option<Builtin>> {
    use BaseEncoding::*;
    let (mut unsigned, mut signed, mut short, mut long, mut int) = (0, 0, 0, 0, 0);
    let (mut char_, mut float, mut double, mut bool_, mut void) = (0, 0, 0, 0, 0);
    for word in name.split_whitespace() {
        match word {
            "unsigned" => unsigned += 1,
            "signed" => signed += 1,
            "short" => short += 1,
            "long" => long += 1,
            "int" => int += 1,
            "char" => char_ += 1,
            "float" => float += 1,
            "double" => double += 1,
            "bool" | "_Bool" => bool_ += 1,
            "void" => void += 1,
            _ => return None,
        }
    }
    let sign_words = unsigned + signed;
    let only = |count: i32| sign_words + short + long + int + count == count;
    if sign_words > 1 || short > 1 || long > 2 || int > 1 || (short > 0 && long > 0) {
        return None;
    }
    Some(Some(match (char_, float, double, bool_, void) {
        (0, 0, 0, 0, 0) => {
            let (name, size) = match (short, long, unsigned > 0) {
                (1, _, false) => ("short", 2),
                (1, _, true) => ("unsigned short", 2),
                (_, 1, false) => ("long", 8),
                (_, 1, true) => ("unsigned long", 8),
                (_, 2, false) => ("long long", 8),
                (_, 2, true) => ("unsigned long long", 8),
                (_, _, false) => ("int", 4),
                (_, _, true) => ("unsigned int", 4),
            };
            let encoding = if unsigned > 0 { Unsigned } else { Signed };
            builtin(name, encoding, size)
        }
        (1, 0, 0, 0, 0) if short + long + int == 0 => match (unsigned, signed) {
            (1, _) => builtin("unsigned char", UnsignedChar, 1),
            (_, 1) => builtin("signed char", SignedChar, 1),
            _ => builtin("char", SignedChar, 1),
        },
        (0, 1, 0, 0, 0) if only(0) => builtin("float", Float, 4),
        (0, 0, 1, 0, 0) if sign_words + short + int == 0 && long == 0 => {
            builtin("double", Float, 8)
        }
        (0, 0, 1, 0, 0) if sign_words + short + int == 0 && long == 1 => {
            builtin("long double", Float, 16)
        }
        (0, 0, 0, 1, 0) if only(0) => builtin("bool", Bool, 1),
        (0, 0, 0, 0, 1) if only(0) => return Some(None),
        _ => return None,
    }))
}

/// The base type called `name` in Rust or Go.
pub fn other_language(name: &str) -> Option<Builtin> {
    OTHER_LANGUAGES.iter().find(|b| b.name == name).copied()
}

/// Why a type name names nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownType(pub String);

/// The type `written` names in `types`' unit; `Ok(None)` is `void`.
pub fn resolve(types: &Types, written: &TypeName) -> Result<Option<TypeId>, UnknownType> {
    let mut resolved = base(types, &written.name)?;
    for _ in 0..written.pointers {
        resolved = Some(types.pointer_to(resolved));
    }
    Ok(resolved)
}

/// Whether `name` names a type (for the parser, to tell `(my_t)x` from `(a) - b`).
pub fn is_type(types: &Types, name: &str) -> bool {
    base(types, name).is_ok()
}

fn base(types: &Types, name: &str) -> Result<Option<TypeId>, UnknownType> {
    // The unit's own type first: Go's `int` is 8 bytes, C's is 4; Rust's `char` is
    // a code point, C's a byte.
    if let Some(id) = types.named(name) {
        return Ok(Some(id));
    }
    if let Some(c_type) = c_words(name) {
        let Some(builtin) = c_type else {
            return Ok(None);
        };
        let dwarf_name = if builtin.name == "bool" {
            "_Bool"
        } else {
            builtin.name
        };
        return Ok(Some(
            types
                .named(dwarf_name)
                .unwrap_or_else(|| made(types, builtin)),
        ));
    }
    match other_language(name) {
        Some(builtin) => Ok(Some(made(types, builtin))),
        None => Err(UnknownType(name.to_string())),
    }
}

/// The base type made for an expression (never a DWARF one: results of arithmetic have
/// the type C gives them whatever the unit declares).
pub fn made(types: &Types, builtin: Builtin) -> TypeId {
    types.base(builtin.name, builtin.encoding, builtin.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> Option<(&'static str, u64)> {
        c_words(name).flatten().map(|b| (b.name, b.size))
    }

    #[test]
    fn c_words_make_base_types_in_any_order() {
        assert_eq!(c("unsigned"), Some(("unsigned int", 4)));
        assert_eq!(c("long unsigned int"), Some(("unsigned long", 8)));
        assert_eq!(c("unsigned long long"), Some(("unsigned long long", 8)));
        assert_eq!(c("short int"), Some(("short", 2)));
        assert_eq!(c("signed"), Some(("int", 4)));
        assert_eq!(c("char"), Some(("char", 1)));
        assert_eq!(c("unsigned char"), Some(("unsigned char", 1)));
        assert_eq!(c("signed char"), Some(("signed char", 1)));
        assert_eq!(c("long double"), Some(("long double", 16)));
        assert_eq!(c("_Bool"), Some(("bool", 1)));
        assert_eq!(c_words("void"), Some(None));
        for nonsense in [
            "long short",
            "unsigned signed",
            "long long long",
            "char int",
            "node",
        ] {
            assert_eq!(c_words(nonsense), None, "{nonsense}");
        }
    }
}
