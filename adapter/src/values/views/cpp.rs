//! C++'s standard library as libstdc++ lays it out: `std::string`, `std::vector`,
//! `std::array`, `std::map`/`set`, `std::unordered_map`, `std::unique_ptr`/`shared_ptr`,
//! `std::optional`, `std::variant`. Text follows gdb's libstdc++ printers, so that gdb
//! is the tests' oracle.

use super::View;
use crate::values::format::Formatter;
use crate::values::types::{Type, TypeId};
use crate::values::value::Value;

/// The view of a libstdc++ value, if `ty` is one.
pub fn view(
    _formatter: &Formatter,
    _value: &Value,
    _id: TypeId,
    _ty: &Type,
) -> Option<Box<dyn View>> {
    None
}
