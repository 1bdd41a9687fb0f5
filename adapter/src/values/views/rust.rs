//! Rust's standard library, read from its layout: `String`, `&str`, `Vec<T>`, slices,
//! enums, `Box`, `Rc`/`Arc`, `HashMap`/`HashSet`, `Cell`/`RefCell`, `&dyn Trait`.

use super::View;
use crate::values::format::Formatter;
use crate::values::types::{Type, TypeId};
use crate::values::value::Value;

/// The view of a Rust standard library value, if `ty` is one.
pub fn view(
    _formatter: &Formatter,
    _value: &Value,
    _id: TypeId,
    _ty: &Type,
) -> Option<Box<dyn View>> {
    None
}
