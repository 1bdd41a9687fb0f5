//! Where a variable lives at a pc: its `DW_AT_location` (an expression or a location
//! list) run through gimli's evaluator with the frame's registers and memory, and the
//! result turned into [`Contents`].
//!
//! Every way the evaluator can stop is answered or turned into a value's text: what the
//! frame cannot supply (an entry value, a register the unwinder lost) is
//! `<optimized out>`, what latch does not support yet is `<error: ...>`; neither is
//! ever a number made up to fill the gap.

use super::types::TypeId;
use super::value::Contents;
use super::{CompileUnit, Memory, Registers};
use crate::symbols::module::Reader;

/// How many times an expression may ask for input, and how many operations it may run:
/// a loop in bad DWARF ends, it does not hang the session.
const MAX_RESUMES: usize = 256;
const MAX_OPERATIONS: u32 = 10_000;

/// Pieces assembled into one value are at most this large.
const MAX_PIECES_SIZE: u64 = 64 * 1024;

/// Where a module sits in the process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModuleLayout {
    /// Run-time address minus the address in the file (0 for a non-PIE executable).
    pub load_bias: u64,
    /// Where the module's thread-local block sits, when that can be known from the
    /// file: the executable's (x86-64 TLS variant II, below the thread pointer).
    pub static_tls: Option<StaticTls>,
}

/// The executable's `PT_TLS` segment: its block ends at the thread pointer, rounded to
/// the segment's alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticTls {
    pub size: u64,
    pub align: u64,
}

/// What a frame gives location expressions.
pub struct Frame<'a> {
    /// The run-time pc to look variables up at: a caller frame's return address minus
    /// one, so that a call at the end of a block still counts as inside it.
    pub pc: u64,
    pub registers: &'a dyn Registers,
    pub memory: &'a dyn Memory,
}

/// A variable's location attribute, as DWARF gave it.
#[derive(Debug, Clone)]
pub enum LocationAttr {
    /// No `DW_AT_location`, or an empty one: optimized out everywhere.
    None,
    Expression(gimli::Expression<Reader>),
    List(gimli::LocationListsOffset<usize>),
    /// `DW_AT_const_value`: the value itself, little-endian.
    Constant(std::sync::Arc<[u8]>),
}

impl LocationAttr {
    /// The location of a variable or parameter DIE (or its frame base).
    pub fn of(
        unit: &CompileUnit,
        value: Option<gimli::AttributeValue<Reader>>,
        constant: Option<gimli::AttributeValue<Reader>>,
    ) -> LocationAttr {
        if let Some(value) = value {
            if let Some(expression) = value.exprloc_value() {
                return if expression.0.is_empty() {
                    LocationAttr::None
                } else {
                    LocationAttr::Expression(expression)
                };
            }
            if let Ok(Some(offset)) = unit.dwarf.attr_locations_offset(&unit.unit, value) {
                return LocationAttr::List(offset);
            }
        }
        let bytes: Option<Vec<u8>> = constant.and_then(|value| match value {
            gimli::AttributeValue::Block(block) => Some(block.slice().to_vec()),
            gimli::AttributeValue::Data1(v) => Some(vec![v]),
            gimli::AttributeValue::Data2(v) => Some(v.to_le_bytes().to_vec()),
            gimli::AttributeValue::Data4(v) => Some(v.to_le_bytes().to_vec()),
            gimli::AttributeValue::Data8(v) => Some(v.to_le_bytes().to_vec()),
            gimli::AttributeValue::Sdata(v) => Some(v.to_le_bytes().to_vec()),
            gimli::AttributeValue::Udata(v) => Some(v.to_le_bytes().to_vec()),
            gimli::AttributeValue::String(s) => Some(s.slice().to_vec()),
            other => unit
                .dwarf
                .attr_string(&unit.unit, other)
                .ok()
                .map(|s| s.slice().to_vec()),
        });
        match bytes {
            Some(bytes) => LocationAttr::Constant(bytes.into()),
            None => LocationAttr::None,
        }
    }
}

/// Why an evaluation produced no location.
#[derive(Debug, Clone, PartialEq)]
enum Unavailable {
    OptimizedOut,
    Error(String),
}

impl From<gimli::Error> for Unavailable {
    fn from(error: gimli::Error) -> Unavailable {
        Unavailable::Error(format!("bad location expression: {error}"))
    }
}

/// The contents of a variable of type `type_id` whose location is `attr`, in the frame
/// of a function whose `DW_AT_frame_base` is `frame_base`. For globals `frame` still
/// carries memory and registers; its pc only matters to location lists.
pub fn contents_of(
    unit: &CompileUnit,
    attr: &LocationAttr,
    type_id: Option<TypeId>,
    frame: &Frame,
    frame_base: Option<&LocationAttr>,
) -> Contents {
    let size = unit.types.size_of(type_id);
    match attr {
        LocationAttr::None => Contents::OptimizedOut,
        LocationAttr::Constant(bytes) => {
            let mut bytes = bytes.to_vec();
            if let Some(size) = size.and_then(|s| usize::try_from(s).ok()) {
                // A constant comes in the smallest form that holds it (DW_FORM_data1
                // for an int of 3, sdata's 8 bytes for an int of -1): extended or cut
                // to the type's size, with the type's sign.
                if bytes.len() > size {
                    bytes.truncate(size);
                } else if bytes.len() < size && size <= 16 {
                    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
                    let fill = if negative && is_signed(unit, type_id) {
                        0xff
                    } else {
                        0
                    };
                    bytes.resize(size, fill);
                }
            }
            Contents::bytes(bytes)
        }
        LocationAttr::Expression(_) | LocationAttr::List(_) => {
            match pieces_of(unit, attr, frame, frame_base) {
                Ok(pieces) => assemble(&pieces, size, frame),
                Err(Unavailable::OptimizedOut) => Contents::OptimizedOut,
                Err(Unavailable::Error(why)) => Contents::Error(why),
            }
        }
    }
}

fn is_signed(unit: &CompileUnit, type_id: Option<TypeId>) -> bool {
    use super::types::{BaseEncoding, Type};
    match unit.types.strip(type_id).as_ref().map(|(_, ty)| &**ty) {
        Some(Type::Base { encoding, .. }) => {
            matches!(encoding, BaseEncoding::Signed | BaseEncoding::SignedChar)
        }
        Some(Type::Enum { signed, .. }) => *signed,
        _ => false,
    }
}

/// The expression covering the frame's pc, or `None` when the list has no entry for it
/// (the value does not exist there).
fn expression_at(
    unit: &CompileUnit,
    attr: &LocationAttr,
    frame: &Frame,
) -> Result<Option<gimli::Expression<Reader>>, Unavailable> {
    match attr {
        LocationAttr::Expression(expression) => Ok(Some(*expression)),
        LocationAttr::List(offset) => {
            let file_pc = frame.pc.wrapping_sub(unit.layout.load_bias);
            let mut entries = unit.dwarf.locations(&unit.unit, *offset)?;
            while let Some(entry) = entries.next()? {
                if entry.range.begin <= file_pc && file_pc < entry.range.end {
                    return Ok(Some(entry.data));
                }
            }
            Ok(None)
        }
        LocationAttr::None | LocationAttr::Constant(_) => Ok(None),
    }
}

fn pieces_of(
    unit: &CompileUnit,
    attr: &LocationAttr,
    frame: &Frame,
    frame_base: Option<&LocationAttr>,
) -> Result<Vec<gimli::Piece<Reader>>, Unavailable> {
    let Some(expression) = expression_at(unit, attr, frame)? else {
        return Err(Unavailable::OptimizedOut);
    };
    if expression.0.is_empty() {
        return Err(Unavailable::OptimizedOut);
    }
    evaluate(unit, expression, frame, frame_base)
}

/// Runs a DWARF expression that is not a variable's location (a call site's value or
/// target) in `frame`: its pieces, or `Err` with why not.
pub(super) fn evaluate_in(
    unit: &CompileUnit,
    expression: gimli::Expression<Reader>,
    frame: &Frame,
    frame_base: Option<&LocationAttr>,
) -> Result<Vec<gimli::Piece<Reader>>, String> {
    evaluate(unit, expression, frame, frame_base).map_err(|why| match why {
        Unavailable::OptimizedOut => "optimized out".to_string(),
        Unavailable::Error(why) => why,
    })
}

/// Runs `expression`, answering everything it asks for from the frame.
fn evaluate(
    unit: &CompileUnit,
    expression: gimli::Expression<Reader>,
    frame: &Frame,
    frame_base: Option<&LocationAttr>,
) -> Result<Vec<gimli::Piece<Reader>>, Unavailable> {
    let encoding = unit.unit.encoding();
    let mut evaluation = expression.evaluation(encoding);
    evaluation.set_max_iterations(MAX_OPERATIONS);
    let mut result = evaluation.evaluate()?;
    for _ in 0..MAX_RESUMES {
        use gimli::EvaluationResult as R;
        result = match result {
            R::Complete => return Ok(evaluation.result()),
            R::RequiresMemory {
                address,
                size,
                base_type,
                ..
            } => {
                let mut bytes = [0u8; 8];
                let size = usize::from(size).min(8);
                frame
                    .memory
                    .read(address, &mut bytes[..size])
                    .map_err(|e| Unavailable::Error(e.to_string()))?;
                let value = typed_value(unit, u64::from_le_bytes(bytes), base_type)?;
                evaluation.resume_with_memory(value)?
            }
            R::RequiresRegister {
                register,
                base_type,
            } => {
                // A register the unwinder could not recover in this frame: the value
                // is gone as far as anyone can tell.
                let value = frame
                    .registers
                    .register(register.0)
                    .ok_or(Unavailable::OptimizedOut)?;
                let value = typed_value(unit, value, base_type)?;
                evaluation.resume_with_register(value)?
            }
            R::RequiresFrameBase => {
                let base = frame_base.ok_or_else(|| {
                    Unavailable::Error("DW_OP_fbreg outside a function with a frame base".into())
                })?;
                let base = frame_base_address(unit, base, frame)?;
                evaluation.resume_with_frame_base(base)?
            }
            R::RequiresCallFrameCfa => {
                let cfa = frame
                    .registers
                    .cfa()
                    .ok_or_else(|| Unavailable::Error("the frame's CFA is not known".into()))?;
                evaluation.resume_with_call_frame_cfa(cfa)?
            }
            R::RequiresTls(offset) => {
                let block = tls_block(unit, frame)?;
                evaluation.resume_with_tls(block.wrapping_add(offset))?
            }
            R::RequiresEntryValue(expression) => {
                let value = frame
                    .registers
                    .entry_value(expression.0.slice())
                    .ok_or(Unavailable::OptimizedOut)?;
                evaluation.resume_with_entry_value(gimli::Value::Generic(value))?
            }
            // The caller's value of a parameter (DW_OP_GNU_parameter_ref): only call
            // site information could give it.
            R::RequiresParameterRef(_) => return Err(Unavailable::OptimizedOut),
            R::RequiresRelocatedAddress(address) => evaluation
                .resume_with_relocated_address(address.wrapping_add(unit.layout.load_bias))?,
            R::RequiresIndexedAddress { index, relocate } => {
                let address = unit.dwarf.address(&unit.unit, index)?;
                let address = if relocate {
                    address.wrapping_add(unit.layout.load_bias)
                } else {
                    address
                };
                evaluation.resume_with_indexed_address(address)?
            }
            R::RequiresBaseType(offset) => {
                let entry = unit.unit.entry(offset)?;
                evaluation.resume_with_base_type(
                    gimli::ValueType::from_entry(&entry)?.ok_or_else(|| {
                        Unavailable::Error("DW_OP_convert to a type that is not a base type".into())
                    })?,
                )?
            }
            R::RequiresAtLocation(_) => {
                return Err(Unavailable::Error("DW_OP_call is not supported yet".into()))
            }
            R::RequiresWasmLocal { .. }
            | R::RequiresWasmGlobal { .. }
            | R::RequiresWasmStack { .. } => {
                return Err(Unavailable::Error("WebAssembly locations".into()))
            }
        };
    }
    Err(Unavailable::Error(
        "location expression asks for too much".into(),
    ))
}

/// A value of the base type at `base_type` (0: the generic, address-sized type) with
/// the bits of `raw`.
fn typed_value(
    unit: &CompileUnit,
    raw: u64,
    base_type: gimli::UnitOffset<usize>,
) -> Result<gimli::Value, Unavailable> {
    if base_type.0 == 0 {
        return Ok(gimli::Value::Generic(raw));
    }
    let entry = unit.unit.entry(base_type)?;
    let value_type = gimli::ValueType::from_entry(&entry)?
        .ok_or_else(|| Unavailable::Error("typed DWARF operation on a non-base type".into()))?;
    Ok(gimli::Value::from_u64(value_type, raw)?)
}

/// `DW_AT_frame_base`'s value: an address (`DW_OP_call_frame_cfa`), or a register's
/// contents when it names a register (`DW_OP_reg6`, as older compilers emit).
fn frame_base_address(
    unit: &CompileUnit,
    base: &LocationAttr,
    frame: &Frame,
) -> Result<u64, Unavailable> {
    // The frame base's own expression cannot ask for the frame base.
    let pieces = pieces_of(unit, base, frame, None)?;
    match pieces.as_slice() {
        [piece] => match piece.location {
            gimli::Location::Address { address } => Ok(address),
            gimli::Location::Register { register } => frame
                .registers
                .register(register.0)
                .ok_or(Unavailable::OptimizedOut),
            gimli::Location::Value { value } => Ok(value.to_u64(!0)?),
            _ => Err(Unavailable::Error("unusual frame base".into())),
        },
        _ => Err(Unavailable::Error("frame base in pieces".into())),
    }
}

fn tls_block(unit: &CompileUnit, frame: &Frame) -> Result<u64, Unavailable> {
    let tls = unit.layout.static_tls.ok_or_else(|| {
        Unavailable::Error("thread-local storage of this module is not located yet".into())
    })?;
    let thread_pointer = frame
        .registers
        .thread_pointer()
        .ok_or_else(|| Unavailable::Error("the thread pointer is not known".into()))?;
    let align = tls.align.max(1);
    let rounded = tls.size.div_ceil(align).saturating_mul(align);
    Ok(thread_pointer.wrapping_sub(rounded))
}

/// The evaluator's pieces as contents `size` bytes long (when the type's size is
/// known).
fn assemble(pieces: &[gimli::Piece<Reader>], size: Option<u64>, frame: &Frame) -> Contents {
    if let [piece] = pieces {
        if piece.size_in_bits.is_none() {
            let len = size.unwrap_or(8);
            return match whole_piece(&piece.location, len, frame) {
                Ok(contents) => contents,
                Err(Unavailable::OptimizedOut) => Contents::OptimizedOut,
                Err(Unavailable::Error(why)) => Contents::Error(why),
            };
        }
    }
    let total_bits: u64 = pieces.iter().map(|p| p.size_in_bits.unwrap_or(0)).sum();
    let total = size.unwrap_or(total_bits.div_ceil(8));
    if total > MAX_PIECES_SIZE {
        return Contents::Error(format!("{total} bytes in pieces is too large"));
    }
    let mut bytes = vec![0u8; total as usize];
    let mut missing = vec![true; total as usize];
    // Bytes a synthetic pointer stands for stay missing, and are marked: a member that
    // is such a pointer reads `<synthetic pointer>`, the members beside it read.
    let mut synthetic = vec![false; total as usize];
    let mut at_bit = 0u64;
    for piece in pieces {
        let bits = piece
            .size_in_bits
            .unwrap_or(total * 8 - at_bit.min(total * 8));
        let source_offset = piece.bit_offset.unwrap_or(0);
        let need = (source_offset + bits).div_ceil(8);
        let source = match whole_piece(&piece.location, need, frame) {
            Ok(Contents::Bytes { bytes, .. }) => Some(bytes.to_vec()),
            Ok(Contents::Memory(address)) => {
                let mut buffer = vec![0; need as usize];
                match frame.memory.read(address, &mut buffer) {
                    Ok(()) => Some(buffer),
                    Err(e) => return Contents::Error(e.to_string()),
                }
            }
            Ok(Contents::SyntheticPointer) => {
                let end = (at_bit + bits).min(total * 8);
                for bit in at_bit..end {
                    synthetic[(bit / 8) as usize] = true;
                }
                None
            }
            Ok(Contents::OptimizedOut) | Err(Unavailable::OptimizedOut) => None,
            Ok(Contents::Error(why)) | Err(Unavailable::Error(why)) => return Contents::Error(why),
        };
        if let Some(source) = source {
            for bit in 0..bits {
                let from = source_offset + bit;
                let to = at_bit + bit;
                if to >= total * 8 {
                    break;
                }
                let set = source
                    .get((from / 8) as usize)
                    .is_some_and(|byte| byte >> (from % 8) & 1 == 1);
                if set {
                    bytes[(to / 8) as usize] |= 1 << (to % 8);
                }
                missing[(to / 8) as usize] = false;
            }
        }
        at_bit += bits;
    }
    let missing = missing.iter().any(|m| *m).then(|| missing.into());
    let synthetic = synthetic.iter().any(|s| *s).then(|| synthetic.into());
    Contents::Bytes {
        bytes: bytes.into(),
        missing,
        synthetic,
    }
}

/// One location as contents `len` bytes long.
fn whole_piece(
    location: &gimli::Location<Reader>,
    len: u64,
    frame: &Frame,
) -> Result<Contents, Unavailable> {
    let little_endian = |raw: u64| -> Contents {
        let mut bytes = raw.to_le_bytes().to_vec();
        // Registers and stack values are 8 bytes; a wider type would need more than
        // DWARF gave, so the rest reads as missing rather than as zeros.
        let missing = (len > 8).then(|| {
            let mut missing = vec![false; len as usize];
            missing[8..].fill(true);
            missing.into()
        });
        bytes.resize(len.min(MAX_PIECES_SIZE) as usize, 0);
        Contents::Bytes {
            bytes: bytes.into(),
            missing,
            synthetic: None,
        }
    };
    match location {
        gimli::Location::Empty => Err(Unavailable::OptimizedOut),
        gimli::Location::Address { address } => Ok(Contents::Memory(*address)),
        gimli::Location::Register { register } => {
            let raw = frame
                .registers
                .register(register.0)
                .ok_or(Unavailable::OptimizedOut)?;
            Ok(little_endian(raw))
        }
        gimli::Location::Value { value } => {
            let raw = match *value {
                gimli::Value::F32(f) => u64::from(f.to_bits()),
                gimli::Value::F64(f) => f.to_bits(),
                other => other.to_u64(!0)?,
            };
            Ok(little_endian(raw))
        }
        gimli::Location::Bytes { value } => {
            let mut bytes = value.slice().to_vec();
            let given = bytes.len();
            let len = len.min(MAX_PIECES_SIZE) as usize;
            bytes.resize(len.max(given), 0);
            // Bytes the implicit value does not give are unknown, not zero.
            let missing = (len > given).then(|| {
                let mut missing = vec![false; bytes.len()];
                missing[given..].fill(true);
                missing.into()
            });
            Ok(Contents::Bytes {
                bytes: bytes.into(),
                missing,
                synthetic: None,
            })
        }
        // gdb follows such a pointer to its target's DIE; latch shows it as gdb does
        // but does not follow it yet.
        gimli::Location::ImplicitPointer { .. } => Ok(Contents::SyntheticPointer),
    }
}
