//! A value: a type and where its bytes are. Bytes in target memory are read only when
//! shown, and only the part shown, so a struct holding a 100 MB array costs what its
//! first page of elements costs.

use std::borrow::Cow;
use std::rc::Rc;

use super::types::{BitField, TypeId};
use super::{Memory, MAX_READ};

/// Where a value's bytes are, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub enum Contents {
    /// In target memory from this (run-time) address.
    Memory(u64),
    /// Known bytes: from registers, `DW_OP_stack_value`, `DW_OP_implicit_value`,
    /// `DW_AT_const_value` or assembled from pieces. `missing` marks bytes that a piece
    /// without a location left out (the compiler dropped that part); `synthetic`, those
    /// of them that a pointer optimized into its target stood for (a struct's member).
    Bytes {
        bytes: Rc<[u8]>,
        missing: Option<Rc<[bool]>>,
        synthetic: Option<Rc<[bool]>>,
    },
    /// The compiler dropped the value here: shown as `<optimized out>`.
    OptimizedOut,
    /// A pointer the compiler optimized into what it points to (`DW_OP_implicit_pointer`):
    /// there is no address to show, only the target, which latch does not follow yet.
    /// Shown as `<synthetic pointer>`, as gdb does.
    SyntheticPointer,
    /// Where the value is could not be worked out: shown as `<error: why>`.
    Error(String),
}

impl Contents {
    pub fn bytes(bytes: Vec<u8>) -> Contents {
        Contents::Bytes {
            bytes: bytes.into(),
            missing: None,
            synthetic: None,
        }
    }

    /// The contents of the part `len` bytes long at `offset` bytes in.
    pub fn part(&self, offset: u64, len: u64) -> Contents {
        match self {
            Contents::Memory(address) => match address.checked_add(offset) {
                Some(address) => Contents::Memory(address),
                None => Contents::Error(format!("{address:#x} + {offset} overflows")),
            },
            Contents::Bytes {
                bytes,
                missing,
                synthetic,
            } => {
                let range = usize::try_from(offset)
                    .ok()
                    .zip(usize::try_from(len).ok())
                    .and_then(|(start, len)| Some(start..start.checked_add(len)?))
                    .filter(|range| range.end <= bytes.len());
                let Some(range) = range else {
                    return Contents::Error(format!(
                        "{len} bytes at {offset} lie beyond the value's {} bytes",
                        bytes.len()
                    ));
                };
                if let Some(synthetic) = synthetic {
                    // A member that is the pointer itself, as gdb shows it.
                    if !range.is_empty() && synthetic[range.clone()].iter().all(|s| *s) {
                        return Contents::SyntheticPointer;
                    }
                }
                // A part with some bytes missing keeps which: its own parts (a member
                // of a base class whose padding the compiler dropped) may be whole.
                if let Some(missing) = missing {
                    let gaps = &missing[range.clone()];
                    if gaps.iter().all(|m| *m) {
                        return Contents::OptimizedOut;
                    }
                    if gaps.iter().any(|m| *m) {
                        return Contents::Bytes {
                            bytes: bytes[range.clone()].into(),
                            missing: Some(gaps.into()),
                            synthetic: synthetic.as_ref().map(|s| s[range].into()),
                        };
                    }
                }
                Contents::bytes(bytes[range].to_vec())
            }
            Contents::OptimizedOut => Contents::OptimizedOut,
            Contents::SyntheticPointer => Contents::SyntheticPointer,
            Contents::Error(why) => Contents::Error(why.clone()),
        }
    }

    /// The first `len` bytes, read from memory when they live there. `Err` is the text
    /// to show instead (`<optimized out>`, `<error: ...>`).
    pub fn read<'a>(&'a self, memory: &dyn Memory, len: u64) -> Result<Cow<'a, [u8]>, String> {
        let Ok(len) = usize::try_from(len) else {
            return Err(error_text(&format!("{len} bytes is too large to read")));
        };
        match self {
            Contents::Memory(address) => {
                if len > MAX_READ {
                    return Err(error_text(&format!(
                        "{len} bytes is more than the {MAX_READ} read at once"
                    )));
                }
                let mut buffer = vec![0; len];
                memory
                    .read(*address, &mut buffer)
                    .map_err(|e| error_text(&e.to_string()))?;
                Ok(Cow::Owned(buffer))
            }
            Contents::Bytes { .. } => match self.part(0, len as u64) {
                Contents::Bytes {
                    missing: Some(_), ..
                } => Err(OPTIMIZED_OUT.to_string()),
                Contents::Bytes { bytes, .. } => Ok(Cow::Owned(bytes.to_vec())),
                other => Err(other.unreadable_text()),
            },
            Contents::OptimizedOut | Contents::SyntheticPointer | Contents::Error(_) => {
                Err(self.unreadable_text())
            }
        }
    }

    /// The address of the value in target memory, if it has one.
    pub fn address(&self) -> Option<u64> {
        match self {
            Contents::Memory(address) => Some(*address),
            _ => None,
        }
    }

    fn unreadable_text(&self) -> String {
        match self {
            Contents::Error(why) => error_text(why),
            Contents::SyntheticPointer => SYNTHETIC_POINTER.to_string(),
            _ => OPTIMIZED_OUT.to_string(),
        }
    }
}

pub const OPTIMIZED_OUT: &str = "<optimized out>";
pub const SYNTHETIC_POINTER: &str = "<synthetic pointer>";

pub fn error_text(why: &str) -> String {
    format!("<error: {why}>")
}

/// A typed value. `type_id` `None` is `void`.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub type_id: Option<TypeId>,
    pub contents: Contents,
    /// For a bitfield member: which bits of the bytes at `contents` hold it.
    pub bit_field: Option<BitField>,
    /// Shown as its type's fields, without its language's view (the `[raw]` child of
    /// a `Vec`, a `std::map`, a Go map): what the view hides stays reachable.
    pub raw: bool,
}

impl Value {
    pub fn new(type_id: Option<TypeId>, contents: Contents) -> Value {
        Value {
            type_id,
            contents,
            bit_field: None,
            raw: false,
        }
    }

    pub fn is_available(&self) -> bool {
        !matches!(
            self.contents,
            Contents::OptimizedOut | Contents::SyntheticPointer | Contents::Error(_)
        )
    }
}
