//! What an expression means at a stop: an [`Expr`] evaluated over a frame's variables,
//! the unit's globals, registers and memory, to a [`Value`] the [`Formatter`] shows like
//! any variable.
//!
//! It reads like C for now: C's names, operators, conversions ([`super::arithmetic`])
//! and type names ([`super::type_names`]); a Rust or Go view would swap those two and
//! the name lookup here. Nothing runs in the target, every read is bounded (at most 8
//! bytes for a scalar; a result's bytes are read by the formatter, a page at a time),
//! and a pointer is followed only where the expression says so.

use crate::values::format::decode_float;
use crate::values::types::{AggregateKind, BaseEncoding, PointerKind, Type, TypeId};
use crate::values::{
    CompileUnit, Contents, Formatter, FrameVariables, Memory, Registers, Value, Variable,
};

use super::arithmetic::{self, ArithmeticError, IntKind, Scalar};
use super::type_names::{self, Builtin};
use super::{BinaryOp, Expr, ParseError, TypeName, UnaryOp};

/// Expressions nest no deeper than this (chains of `+` excepted, which are walked
/// without recursion): the parser allows long postfix chains (`a.b.c...`).
const MAX_DEPTH: usize = 200;

/// Why a pointer the compiler optimized away cannot be used: its target exists only in
/// the DWARF, which latch does not follow yet.
const SYNTHETIC_WHY: &str = "the compiler optimized this pointer into what it points to \
    (DW_OP_implicit_pointer), and latch cannot follow such a pointer yet; ask for its target \
    by name instead";

/// Why an expression has no value, naming the part that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("no variable named '{0}' in this frame")]
    NoVariable(String),
    #[error("{type_name} has no field named '{field}'")]
    NoField { type_name: String, field: String },
    #[error("no type named '{0}' in this program")]
    UnknownType(String),
    #[error("no register named '${0}'")]
    UnknownRegister(String),
    #[error("register ${0} is not known in this frame")]
    UnavailableRegister(String),
    #[error("index {index} is out of bounds for '{expr}', an array of {len} elements")]
    OutOfBounds { expr: String, index: i128, len: u64 },
    #[error("division by zero in '{0}'")]
    DivisionByZero(String),
    #[error("cannot read '{expr}': {why}")]
    Unreadable { expr: String, why: String },
    /// The operation does not apply to these operands; the text says why and how.
    #[error("{0}")]
    Invalid(String),
}

/// What names in an expression refer to, and where values are read from.
pub struct Scope<'a> {
    pub unit: &'a CompileUnit,
    /// The frame's variables, innermost inlined call first, as
    /// [`CompileUnit::frame_variables`] gives them; empty for globals only.
    pub frames: &'a [FrameVariables],
    pub globals: &'a [Variable],
    /// The globals of the module's other units, for a name the frame and its unit do not
    /// define: `Ok(None)` when none does, an error when it cannot tell which one is meant.
    /// `None` where only the unit's globals are at hand (tests without a process).
    pub other_globals: Option<OtherGlobals<'a>>,
    pub registers: &'a dyn Registers,
    pub memory: &'a dyn Memory,
}

/// Finds a global of the module's other units by name (see [`Scope::other_globals`]).
pub type OtherGlobals<'a> = &'a dyn Fn(&str) -> std::result::Result<Option<Value>, String>;

type Result<T, E = EvalError> = std::result::Result<T, E>;

impl<'a> Scope<'a> {
    /// Parses `text`, a name in parentheses being a cast when the unit has a type of
    /// that name (`(my_t)x`).
    pub fn parse(&self, text: &str) -> Result<Expr> {
        let types = &self.unit.types;
        Ok(super::parse_with_types(text, &|name| {
            type_names::is_type(types, name)
        })?)
    }

    /// Parses and evaluates `text`.
    pub fn evaluate_text(&self, text: &str) -> Result<Value> {
        self.evaluate(&self.parse(text)?)
    }

    /// The value of `expr`. A value that lives in memory is not read here: the
    /// formatter reads what it shows (and says `<error: ...>` when it cannot).
    pub fn evaluate(&self, expr: &Expr) -> Result<Value> {
        self.eval(expr, 0)
    }

    /// The bytes that `value` (what the user typed, evaluated) becomes when stored in a
    /// variable of type `target` (`setVariable`): numbers, characters, enumerators and
    /// pointers converted as C assigns them, refused when the number does not fit;
    /// a string literal into a `char` array that holds it (the rest of the array is
    /// zeroed). Aggregates are refused: set their members one by one.
    pub fn assignment_bytes(&self, value: &Value, expr: &Expr, target: TypeId) -> Result<Vec<u8>> {
        let target_name = self.unit.types.name_of(Some(target));
        let size = self.unit.types.size_of(Some(target)).ok_or_else(|| {
            EvalError::Invalid(format!("{target_name} has no known size: it cannot be set"))
        })?;
        match self.strip(Some(target)) {
            Some(Type::Array { element, .. }) => {
                let is_char = matches!(
                    self.strip(element),
                    Some(Type::Base {
                        encoding: BaseEncoding::SignedChar | BaseEncoding::UnsignedChar,
                        size: 1,
                        ..
                    })
                );
                let literal = match expr {
                    Expr::Str(text) => Some(text.as_bytes()),
                    _ => None,
                };
                let (true, Some(bytes)) = (is_char, literal) else {
                    return Err(EvalError::Invalid(format!(
                        "an array of {target_name} can be set only from a string literal \
                         (\"text\") when its elements are characters"
                    )));
                };
                if bytes.len() as u64 > size {
                    return Err(EvalError::Invalid(format!(
                        "the string is {} bytes and the array holds {size}",
                        bytes.len()
                    )));
                }
                let mut stored = bytes.to_vec();
                stored.resize(size as usize, 0);
                Ok(stored)
            }
            Some(Type::Base { .. } | Type::Enum { .. } | Type::Pointer { .. }) => {
                let scalar = self.scalar(value, expr)?;
                if let Some((low, high)) = self.integer_range(target) {
                    let number = match scalar {
                        Scalar::Int { bits, kind } if kind.signed => Some(i128::from(bits as i64)),
                        Scalar::Int { bits, .. } => Some(i128::from(bits)),
                        _ => None,
                    };
                    if let Some(number) = number.filter(|n| *n < low || *n > high) {
                        return Err(EvalError::Invalid(format!(
                            "{number} does not fit in {target_name} ({low} to {high})"
                        )));
                    }
                }
                let written = TypeName {
                    name: target_name.clone(),
                    pointers: 0,
                };
                let converted = self.cast(value, expr, Some(target), &written)?;
                converted
                    .contents
                    .read(self.memory, size)
                    .map(|bytes| bytes.into_owned())
                    .map_err(|why| EvalError::Unreadable {
                        expr: expr.to_string(),
                        why,
                    })
            }
            _ => Err(EvalError::Invalid(format!(
                "{target_name} cannot be set as a whole: set its members or elements one by one"
            ))),
        }
    }

    /// The numbers an integer, character or enum type holds (`None` for others).
    fn integer_range(&self, target: TypeId) -> Option<(i128, i128)> {
        let (size, signed) = match self.strip(Some(target))? {
            Type::Base {
                encoding:
                    encoding @ (BaseEncoding::Signed
                    | BaseEncoding::Unsigned
                    | BaseEncoding::SignedChar
                    | BaseEncoding::UnsignedChar
                    | BaseEncoding::Utf),
                size,
                ..
            } => (
                size,
                matches!(encoding, BaseEncoding::Signed | BaseEncoding::SignedChar),
            ),
            Type::Enum { size, signed, .. } => (size, signed),
            _ => return None,
        };
        let bits = (size.min(8) * 8) as u32;
        Some(if signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        })
    }

    /// Whether the value counts as true, as a C condition reads it (breakpoint
    /// conditions): non-zero numbers and non-null pointers.
    pub fn truthy(&self, value: &Value) -> Result<bool> {
        Ok(self.scalar(value, &"the condition")?.is_true())
    }

    fn formatter(&self) -> Formatter<'a> {
        Formatter::new(self.unit, self.memory)
    }

    fn eval(&self, expr: &Expr, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(EvalError::Invalid(format!(
                "expression nested too deeply (more than {MAX_DEPTH} levels)"
            )));
        }
        let depth = depth + 1;
        match expr {
            Expr::Int { value, suffix } => self.integer_literal(*value, suffix),
            Expr::Float(value) => Ok(self.scalar_value(Scalar::Float {
                value: *value,
                size: 8,
            })),
            Expr::Char(code) => Ok(self.char_literal(*code)),
            Expr::Str(text) => Ok(self.string_literal(text)),
            Expr::Bool(value) => {
                let bool_type = self.builtin_type("bool")?;
                Ok(Value::new(
                    Some(bool_type),
                    Contents::bytes(vec![u8::from(*value)]),
                ))
            }
            Expr::Name(path) => self.name(path),
            Expr::Register(name) => self.register(name),
            Expr::Field(base, field) => {
                // Go's package-qualified global, `main.counter`: a name, not a field.
                if let Some(global) = self.go_qualified_global(base, field) {
                    return Ok(global);
                }
                let value = self.referent(self.eval(base, depth)?, base)?;
                // `.` through a pointer, as Rust and Go write it: one level only.
                let value = match self.strip(value.type_id) {
                    Some(Type::Pointer { .. }) => self.deref(&value, base)?,
                    _ => value,
                };
                self.field(&value, base, field)
            }
            Expr::Arrow(base, field) => {
                let value = self.referent(self.eval(base, depth)?, base)?;
                match self.strip(value.type_id) {
                    Some(Type::Pointer { .. }) => {
                        let target = self.deref(&value, base)?;
                        self.field(&target, base, field)
                    }
                    Some(Type::Aggregate { kind, .. }) => Err(EvalError::Invalid(format!(
                        "'{base}' is a {}, not a pointer: use {}.{field}",
                        kind_word(kind),
                        Operand(base)
                    ))),
                    _ => Err(EvalError::Invalid(format!(
                        "'{base}' is not a pointer: it is {}",
                        self.type_text(&value)
                    ))),
                }
            }
            Expr::Index(base, index) => {
                let value = self.referent(self.eval(base, depth)?, base)?;
                let index_value = self.eval(index, depth)?;
                // A language view indexes its own way: a Vec's elements, a map's keys.
                let formatter = self.formatter();
                if let Some(view) = crate::values::views::view_of(&formatter, &value) {
                    if let Some(found) = view.index(&formatter, &index_value) {
                        return found.map_err(|why| {
                            EvalError::Invalid(format!("'{base}[{index}]': {why}"))
                        });
                    }
                }
                let index_number = match self.scalar(&index_value, index)? {
                    Scalar::Int { bits, kind } if kind.signed => i128::from(bits as i64),
                    Scalar::Int { bits, .. } => i128::from(bits),
                    _ => {
                        return Err(EvalError::Invalid(format!(
                            "an index must be an integer: '{index}' is {}",
                            self.type_text(&index_value)
                        )))
                    }
                };
                self.index(&value, base, index_number)
            }
            Expr::Unary(op, operand) => self.unary(*op, operand, depth),
            Expr::Binary(..) => self.binary_chain(expr, depth),
            Expr::Conditional(condition, then, otherwise) => {
                let condition_value = self.eval(condition, depth)?;
                if self.scalar(&condition_value, condition)?.is_true() {
                    self.eval(then, depth)
                } else {
                    self.eval(otherwise, depth)
                }
            }
            Expr::Cast(type_name, operand) => {
                let target = self.resolve(type_name)?;
                let value = self.eval(operand, depth)?;
                self.cast(&value, operand, target, type_name)
            }
            Expr::SizeOfType(type_name) => {
                let id = self.resolve(type_name)?;
                let size = self.unit.types.size_of(id).ok_or_else(|| {
                    EvalError::Invalid(format!(
                        "the size of {} is not known (void, a function or a declaration)",
                        self.unit.types.name_of(id)
                    ))
                })?;
                Ok(self.sizeof_value(size))
            }
            Expr::SizeOfValue(operand) => {
                // C does not evaluate sizeof's operand; reading it here is harmless
                // (bounded, no side effects) and gives its type.
                let value = self.eval(operand, depth)?;
                let size = self.unit.types.size_of(value.type_id).ok_or_else(|| {
                    EvalError::Invalid(format!(
                        "the size of '{operand}' ({}) is not known",
                        self.type_text(&value)
                    ))
                })?;
                Ok(self.sizeof_value(size))
            }
        }
    }

    /// A chain of binary operators, walked along its left spine without recursion:
    /// `1 + 1 + ... + 1` nests as deep as it is long.
    fn binary_chain(&self, expr: &Expr, depth: usize) -> Result<Value> {
        let mut spine = Vec::new();
        let mut leftmost = expr;
        while let Expr::Binary(op, left, right) = leftmost {
            spine.push((*op, leftmost, &**right));
            leftmost = left;
        }
        let mut value = self.eval(leftmost, depth)?;
        let mut left_expr = leftmost;
        for (op, whole, right) in spine.into_iter().rev() {
            value = match op {
                BinaryOp::And | BinaryOp::Or => {
                    let left_true = self.scalar(&value, left_expr)?.is_true();
                    let truth = match (op, left_true) {
                        (BinaryOp::And, false) => false,
                        (BinaryOp::Or, true) => true,
                        _ => {
                            let right_value = self.eval(right, depth)?;
                            self.scalar(&right_value, right)?.is_true()
                        }
                    };
                    self.scalar_value(Scalar::truth(truth))
                }
                _ => {
                    let right_value = self.eval(right, depth)?;
                    let a = self.scalar(&value, left_expr)?;
                    let b = self.scalar(&right_value, right)?;
                    let result = arithmetic::binary(op, a, b)
                        .map_err(|error| self.arithmetic_error(error, whole))?;
                    self.scalar_value(result)
                }
            };
            left_expr = whole;
        }
        Ok(value)
    }

    fn unary(&self, op: UnaryOp, operand: &Expr, depth: usize) -> Result<Value> {
        let value = self.eval(operand, depth)?;
        let number = |f: fn(Scalar) -> Result<Scalar, ArithmeticError>| -> Result<Value> {
            let scalar = self.scalar(&value, operand)?;
            let result = f(scalar).map_err(|error| self.arithmetic_error(error, operand))?;
            Ok(self.scalar_value(result))
        };
        match op {
            UnaryOp::Negate => number(arithmetic::negate),
            UnaryOp::Plus => number(arithmetic::plus),
            UnaryOp::Complement => number(arithmetic::complement),
            UnaryOp::Not => {
                let truth = self.scalar(&value, operand)?.is_true();
                Ok(self.scalar_value(Scalar::truth(!truth)))
            }
            UnaryOp::Deref => {
                let value = self.referent(value, operand)?;
                self.deref(&value, operand)
            }
            UnaryOp::AddressOf => {
                let value = self.referent(value, operand)?;
                self.address_of(&value, operand)
            }
        }
    }

    fn arithmetic_error(&self, error: ArithmeticError, expr: &Expr) -> EvalError {
        match error {
            ArithmeticError::DivisionByZero => EvalError::DivisionByZero(expr.to_string()),
            ArithmeticError::Invalid(why) => EvalError::Invalid(format!("'{expr}': {why}")),
        }
    }

    // Names and registers.

    fn name(&self, path: &[String]) -> Result<Value> {
        let name = path.join("::");
        // Innermost first: a block's variable hides the function's, an inlined
        // callee's hides its caller's.
        let in_frames = self
            .frames
            .iter()
            .flat_map(|frame| frame.locals.iter().chain(&frame.arguments));
        if let Some(variable) = in_frames
            .chain(self.globals)
            .find(|variable| variable.name == name)
        {
            return Ok(variable.value.clone());
        }
        if let Some(global) = self.go_package_global(&name) {
            return Ok(global);
        }
        if let Some(global) = self.global_by_path(&name) {
            return Ok(global);
        }
        if let Some((enum_type, raw)) = self.unit.types.enumerator(&name) {
            let size = self.unit.types.size_of(Some(enum_type)).unwrap_or(4);
            return Ok(Value::new(
                Some(enum_type),
                Contents::bytes(raw.to_le_bytes()[..size.min(8) as usize].to_vec()),
            ));
        }
        // The file's own names (its globals, its enumerators) come first, as in gdb.
        if let Some(other_globals) = self.other_globals {
            if let Some(value) = other_globals(&name).map_err(EvalError::Invalid)? {
                return Ok(value);
            }
        }
        Err(EvalError::NoVariable(name))
    }

    /// A global named by its path (`prog::inner::NAME`, `std::cout`), or by the end of
    /// it (`inner::NAME`: the crate's name may be left out): the one global whose path
    /// is or ends with it, never one of several.
    fn global_by_path(&self, name: &str) -> Option<Value> {
        if !name.contains("::") {
            return None;
        }
        let tail = format!("::{name}");
        let matches: Vec<&Variable> = self
            .globals
            .iter()
            .filter(|g| {
                g.path
                    .as_deref()
                    .is_some_and(|path| path == name || path.ends_with(&tail))
            })
            .collect();
        let exact = matches.iter().find(|g| g.path.as_deref() == Some(name));
        match (exact, matches.as_slice()) {
            (Some(global), _) => Some(global.value.clone()),
            (None, [only]) => Some(only.value.clone()),
            _ => None,
        }
    }

    /// In a Go frame, the global `name` of the frame's own package: Go's DWARF names
    /// globals by their package (`main.counter`), Go code by the short name.
    fn go_package_global(&self, name: &str) -> Option<Value> {
        if self.unit.types.language() != crate::values::Language::Go {
            return None;
        }
        let function = self.frames.iter().find_map(|f| f.function.as_deref())?;
        let qualified = format!("{}.{name}", go_package(function));
        self.globals
            .iter()
            .find(|variable| variable.name == qualified)
            .map(|variable| variable.value.clone())
    }

    /// `pkg.name` in a Go frame, when `pkg` is no variable and the global `pkg.name`
    /// exists.
    fn go_qualified_global(&self, base: &Expr, field: &str) -> Option<Value> {
        if self.unit.types.language() != crate::values::Language::Go {
            return None;
        }
        let Expr::Name(path) = base else {
            return None;
        };
        let [package] = path.as_slice() else {
            return None;
        };
        let shadowed = self
            .frames
            .iter()
            .flat_map(|frame| frame.locals.iter().chain(&frame.arguments))
            .any(|variable| &variable.name == package);
        if shadowed {
            return None;
        }
        let qualified = format!("{package}.{field}");
        self.globals
            .iter()
            .find(|variable| variable.name == qualified)
            .map(|variable| variable.value.clone())
    }

    fn register(&self, name: &str) -> Result<Value> {
        let number =
            register_number(name).ok_or_else(|| EvalError::UnknownRegister(name.to_string()))?;
        let raw = self
            .registers
            .register(number)
            .ok_or_else(|| EvalError::UnavailableRegister(name.to_string()))?;
        // As gdb types them: the pc and the stack and frame pointers are addresses,
        // the others 64-bit signed numbers.
        let type_id = if matches!(number, 6 | 7 | 16) {
            self.unit.types.pointer_to(None)
        } else {
            self.made_int(IntKind::LONG)
        };
        Ok(Value::new(
            Some(type_id),
            Contents::bytes(raw.to_le_bytes().to_vec()),
        ))
    }

    // Literals.

    fn integer_literal(&self, value: u128, suffix: &str) -> Result<Value> {
        let too_large = || EvalError::Invalid(format!("{value}{suffix} is too large for 64 bits"));
        let value = u64::try_from(value).map_err(|_| too_large())?;
        let fits_signed = |size: u64| value <= (i64::MAX as u64) >> (64 - size * 8);
        let kind = match suffix.to_ascii_lowercase().as_str() {
            // C: the first of int, long, unsigned long that holds the value.
            "" if fits_signed(4) => IntKind::INT,
            "" | "l" | "ll" if fits_signed(8) => IntKind::LONG,
            "" | "l" | "ll" | "ul" | "lu" | "ull" | "llu" => IntKind::UNSIGNED_LONG,
            "u" if value <= u64::from(u32::MAX) => IntKind {
                size: 4,
                signed: false,
            },
            "u" => IntKind::UNSIGNED_LONG,
            rust => {
                let builtin = type_names::other_language(rust)
                    .filter(|b| matches!(b.encoding, BaseEncoding::Signed | BaseEncoding::Unsigned))
                    .ok_or_else(|| {
                        EvalError::Invalid(format!(
                            "integers of type {rust} are not supported (64 bits at most)"
                        ))
                    })?;
                let signed = builtin.encoding == BaseEncoding::Signed;
                let fits = if signed {
                    fits_signed(builtin.size)
                } else {
                    builtin.size == 8 || value >> (builtin.size * 8) == 0
                };
                if !fits {
                    return Err(EvalError::Invalid(format!(
                        "{value}{suffix} does not fit in {rust}"
                    )));
                }
                let type_id = type_names::made(&self.unit.types, builtin);
                return Ok(self.int_value(value, builtin.size, type_id));
            }
        };
        Ok(self.scalar_value(Scalar::int(value, kind)))
    }

    fn char_literal(&self, code: u32) -> Value {
        let builtin = if code < 0x80 {
            Builtin {
                name: "char",
                encoding: BaseEncoding::SignedChar,
                size: 1,
            }
        } else {
            Builtin {
                name: "char32_t",
                encoding: BaseEncoding::Utf,
                size: 4,
            }
        };
        let type_id = type_names::made(&self.unit.types, builtin);
        self.int_value(u64::from(code), builtin.size, type_id)
    }

    /// A string literal: a `char` array holding its bytes and the terminating NUL.
    fn string_literal(&self, text: &str) -> Value {
        let char_type = type_names::made(
            &self.unit.types,
            Builtin {
                name: "char",
                encoding: BaseEncoding::SignedChar,
                size: 1,
            },
        );
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        let array = self
            .unit
            .types
            .array_of(Some(char_type), bytes.len() as u64);
        Value::new(Some(array), Contents::bytes(bytes))
    }

    fn sizeof_value(&self, size: u64) -> Value {
        self.scalar_value(Scalar::int(size, IntKind::UNSIGNED_LONG))
    }

    // Types.

    fn resolve(&self, type_name: &TypeName) -> Result<Option<TypeId>> {
        type_names::resolve(&self.unit.types, type_name)
            .map_err(|unknown| EvalError::UnknownType(unknown.0))
    }

    fn builtin_type(&self, name: &str) -> Result<TypeId> {
        self.resolve(&TypeName {
            name: name.into(),
            pointers: 0,
        })?
        .ok_or_else(|| EvalError::UnknownType(name.into()))
    }

    fn strip(&self, id: Option<TypeId>) -> Option<Type> {
        self.unit
            .types
            .strip(id)
            .map(|(_, ty)| std::rc::Rc::unwrap_or_clone(ty))
    }

    /// The value's type with its article, for messages: "an int", "a struct point".
    fn type_text(&self, value: &Value) -> String {
        let name = self.unit.types.name_of(value.type_id);
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }

    fn made_int(&self, kind: IntKind) -> TypeId {
        let encoding = if kind.signed {
            BaseEncoding::Signed
        } else {
            BaseEncoding::Unsigned
        };
        self.unit.types.base(kind.c_name(), encoding, kind.size)
    }

    // Values to scalars and back.

    /// A C++ reference stands for what it refers to.
    fn referent(&self, value: Value, expr: &dyn std::fmt::Display) -> Result<Value> {
        match self.strip(value.type_id) {
            Some(Type::Pointer {
                kind: PointerKind::Reference | PointerKind::RvalueReference,
                pointee,
                size,
            }) => {
                let address = self.read_integer(&value, expr, size, false)?;
                Ok(Value::new(pointee, Contents::Memory(address)))
            }
            _ => Ok(value),
        }
    }

    fn read_integer(
        &self,
        value: &Value,
        expr: &dyn std::fmt::Display,
        size: u64,
        signed: bool,
    ) -> Result<u64> {
        self.formatter()
            .integer(value, size, signed)
            .map_err(|shown| unreadable(expr, &shown))
    }

    /// The value read for arithmetic: a number, or an address (an array in memory
    /// stands for a pointer to its first element, as in C).
    fn scalar(&self, value: &Value, expr: &dyn std::fmt::Display) -> Result<Scalar> {
        let value = &self.referent(value.clone(), expr)?;
        let shown = || expr.to_string();
        match &value.contents {
            Contents::OptimizedOut => {
                return Err(EvalError::Unreadable {
                    expr: shown(),
                    why: "it is optimized out".into(),
                })
            }
            Contents::SyntheticPointer => {
                return Err(EvalError::Unreadable {
                    expr: shown(),
                    why: SYNTHETIC_WHY.into(),
                })
            }
            Contents::Error(why) => {
                return Err(EvalError::Unreadable {
                    expr: shown(),
                    why: why.clone(),
                })
            }
            _ => {}
        }
        let read = |size: u64, signed: bool| -> Result<u64> {
            self.formatter()
                .integer(value, size, signed)
                .map_err(|text| EvalError::Unreadable {
                    expr: shown(),
                    why: unwrap_error_text(&text),
                })
        };
        let Some((id, ty)) = self.unit.types.strip(value.type_id) else {
            return Err(EvalError::Invalid(format!(
                "'{}' has no value (void)",
                shown()
            )));
        };
        match &*ty {
            Type::Base {
                encoding: BaseEncoding::Float,
                size,
                ..
            } => {
                let bytes = value.contents.read(self.memory, *size).map_err(|text| {
                    EvalError::Unreadable {
                        expr: shown(),
                        why: unwrap_error_text(&text),
                    }
                })?;
                let float = decode_float(&bytes).ok_or_else(|| {
                    EvalError::Invalid(format!("'{}': {size}-byte floating point", shown()))
                })?;
                Ok(Scalar::Float {
                    value: float,
                    size: if *size == 4 { 4 } else { 8 },
                })
            }
            Type::Base { encoding, size, .. } if *size <= 8 => {
                let signed = matches!(encoding, BaseEncoding::Signed | BaseEncoding::SignedChar);
                let kind = IntKind {
                    size: *size,
                    signed,
                };
                Ok(Scalar::int(read(*size, signed)?, kind))
            }
            Type::Enum { size, signed, .. } if *size <= 8 => {
                let kind = IntKind {
                    size: *size,
                    signed: *signed,
                };
                Ok(Scalar::int(read(*size, *signed)?, kind))
            }
            Type::Pointer { pointee, size, .. } => Ok(Scalar::Pointer {
                address: read(*size, false)?,
                type_id: id,
                pointee_size: self.step_size(*pointee),
            }),
            Type::Array { .. } => {
                let (element, _) = self.formatter().element_of(id);
                let address = value.contents.address().ok_or_else(|| {
                    EvalError::Invalid(format!(
                        "'{}' is an array that is not in memory: index it instead",
                        shown()
                    ))
                })?;
                Ok(Scalar::Pointer {
                    address,
                    type_id: self.unit.types.pointer_to(element),
                    pointee_size: self.step_size(element),
                })
            }
            Type::Function { .. } => {
                let address = value.contents.address().ok_or_else(|| {
                    EvalError::Invalid(format!("'{}' is a function without an address", shown()))
                })?;
                Ok(Scalar::Pointer {
                    address,
                    type_id: self.unit.types.pointer_to(Some(id)),
                    pointee_size: Some(1),
                })
            }
            Type::Aggregate { kind, .. } => Err(EvalError::Invalid(format!(
                "'{}' is a {}, not a number: use {}.field",
                shown(),
                kind_word(*kind),
                shown()
            ))),
            _ => Err(EvalError::Invalid(format!(
                "'{}' is a {}, not a number",
                shown(),
                self.unit.types.name_of(value.type_id)
            ))),
        }
    }

    /// What `p + 1` moves a pointer to `pointee` by: `void *` and function pointers by
    /// a byte, as GNU C does; `None` for a type of unknown size.
    fn step_size(&self, pointee: Option<TypeId>) -> Option<u64> {
        match self.strip(pointee) {
            None | Some(Type::Function { .. }) => Some(1),
            Some(_) => self.unit.types.size_of(pointee),
        }
    }

    /// A computed number or address as a value with its own bytes.
    fn scalar_value(&self, scalar: Scalar) -> Value {
        match scalar {
            Scalar::Int { bits, kind } => self.int_value(bits, kind.size, self.made_int(kind)),
            Scalar::Float { value, size: 4 } => {
                let type_id = self.unit.types.base("float", BaseEncoding::Float, 4);
                Value::new(
                    Some(type_id),
                    Contents::bytes((value as f32).to_le_bytes().to_vec()),
                )
            }
            Scalar::Float { value, .. } => {
                let type_id = self.unit.types.base("double", BaseEncoding::Float, 8);
                Value::new(Some(type_id), Contents::bytes(value.to_le_bytes().to_vec()))
            }
            Scalar::Pointer {
                address, type_id, ..
            } => self.int_value(address, 8, type_id),
        }
    }

    fn int_value(&self, bits: u64, size: u64, type_id: TypeId) -> Value {
        let size = size.clamp(1, 8) as usize;
        Value::new(
            Some(type_id),
            Contents::bytes(bits.to_le_bytes()[..size].to_vec()),
        )
    }

    // Operators on places: fields, elements, `*` and `&`.

    fn deref(&self, value: &Value, expr: &Expr) -> Result<Value> {
        match self.strip(value.type_id) {
            Some(Type::Pointer { pointee, size, .. }) => {
                if pointee.is_none() {
                    return Err(EvalError::Invalid(format!(
                        "cannot dereference '{expr}': it is a void pointer; cast it first, as \
                         in *(int *){}",
                        Operand(expr)
                    )));
                }
                let address = self.read_integer(value, expr, size, false)?;
                if address == 0 {
                    return Err(EvalError::Invalid(format!(
                        "cannot dereference '{expr}': it is a null pointer"
                    )));
                }
                Ok(Value::new(pointee, Contents::Memory(address)))
            }
            Some(Type::Array { .. }) => self.index(value, expr, 0),
            _ => Err(EvalError::Invalid(format!(
                "cannot dereference '{expr}': it is {}, not a pointer",
                self.type_text(value)
            ))),
        }
    }

    fn address_of(&self, value: &Value, expr: &Expr) -> Result<Value> {
        if value.bit_field.is_some() {
            return Err(EvalError::Invalid(format!(
                "cannot take the address of '{expr}': it is a bitfield"
            )));
        }
        match &value.contents {
            Contents::Memory(address) => {
                let pointer = self.unit.types.pointer_to(value.type_id);
                Ok(self.int_value(*address, 8, pointer))
            }
            Contents::Bytes { .. } => Err(EvalError::Invalid(format!(
                "cannot take the address of '{expr}': it is not in memory (a register or a \
                 computed value)"
            ))),
            Contents::OptimizedOut => Err(EvalError::Unreadable {
                expr: expr.to_string(),
                why: "it is optimized out".into(),
            }),
            Contents::SyntheticPointer => Err(EvalError::Unreadable {
                expr: expr.to_string(),
                why: SYNTHETIC_WHY.into(),
            }),
            Contents::Error(why) => Err(EvalError::Unreadable {
                expr: expr.to_string(),
                why: why.clone(),
            }),
        }
    }

    /// The member `name` of the struct/union/class `value`, looking into base classes
    /// and anonymous members as C and C++ do; `__0` for Rust's tuple field `.0`.
    fn field(&self, value: &Value, expr: &Expr, name: &str) -> Result<Value> {
        let Some(Type::Aggregate { .. }) = self.strip(value.type_id) else {
            return Err(EvalError::Invalid(format!(
                "'{expr}' is {}, which has no fields: '.{name}' needs a struct",
                self.type_text(value)
            )));
        };
        let tuple_name = name
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| format!("__{name}"));
        let found = self
            .member(value, name, 0)
            .or_else(|| self.member(value, tuple_name.as_deref()?, 0));
        found.ok_or_else(|| EvalError::NoField {
            type_name: self.unit.types.name_of(value.type_id),
            field: name.to_string(),
        })
    }

    fn member(&self, value: &Value, name: &str, depth: usize) -> Option<Value> {
        if depth > crate::values::types::MAX_TYPE_DEPTH {
            return None;
        }
        let Some(Type::Aggregate { members, .. }) = self.strip(value.type_id) else {
            return None;
        };
        let formatter = self.formatter();
        if let Some(member) = members
            .iter()
            .find(|m| !m.is_base && m.name.as_deref() == Some(name))
        {
            return Some(formatter.member_value(value, member));
        }
        members
            .iter()
            .filter(|m| m.is_base || m.name.is_none())
            .find_map(|m| self.member(&formatter.member_value(value, m), name, depth + 1))
    }

    fn index(&self, value: &Value, expr: &Expr, index: i128) -> Result<Value> {
        let Some((id, ty)) = self.unit.types.strip(value.type_id) else {
            return Err(EvalError::Invalid(format!(
                "cannot index '{expr}': it has no value (void)"
            )));
        };
        match &*ty {
            Type::Array { dimensions, .. } => {
                let count = dimensions.first().copied().flatten();
                let in_bounds = index >= 0 && count.is_none_or(|count| index < i128::from(count));
                if !in_bounds {
                    return Err(match count {
                        Some(len) => EvalError::OutOfBounds {
                            expr: expr.to_string(),
                            index,
                            len,
                        },
                        None => EvalError::Invalid(format!(
                            "index {index} is before the start of '{expr}'"
                        )),
                    });
                }
                let (element, size) = self.formatter().element_of(id);
                let size = size.ok_or_else(|| {
                    EvalError::Invalid(format!(
                        "cannot index '{expr}': its elements' size is not known"
                    ))
                })?;
                let offset = (index as u64).checked_mul(size).ok_or_else(|| {
                    EvalError::Invalid(format!("index {index} of '{expr}' overflows"))
                })?;
                Ok(Value::new(element, value.contents.part(offset, size)))
            }
            Type::Pointer { pointee, size, .. } => {
                let step = match self.strip(*pointee) {
                    None => None,
                    Some(Type::Function { .. }) => None,
                    Some(_) => self.unit.types.size_of(*pointee),
                };
                let Some(step) = step else {
                    return Err(EvalError::Invalid(format!(
                        "cannot index '{expr}': it points to {}, which has no size",
                        self.unit.types.name_of(*pointee)
                    )));
                };
                let address = self.read_integer(value, expr, *size, false)?;
                if address == 0 {
                    return Err(EvalError::Invalid(format!(
                        "cannot index '{expr}': it is a null pointer"
                    )));
                }
                let address = address.wrapping_add((index as i64 as u64).wrapping_mul(step));
                Ok(Value::new(*pointee, Contents::Memory(address)))
            }
            _ => Err(EvalError::Invalid(format!(
                "cannot index '{expr}': it is {}, not an array or a pointer",
                self.type_text(value)
            ))),
        }
    }

    // Casts.

    fn cast(
        &self,
        value: &Value,
        expr: &Expr,
        target: Option<TypeId>,
        written: &TypeName,
    ) -> Result<Value> {
        let Some(target) = target else {
            return Err(EvalError::Invalid(format!(
                "a cast to void has no value: '({written}){}'",
                Operand(expr)
            )));
        };
        let cannot = |why: &str| {
            EvalError::Invalid(format!(
                "cannot cast '{expr}' to {}: {why}",
                self.unit.types.name_of(Some(target))
            ))
        };
        let target_type = self.strip(Some(target));
        // Same type: nothing to convert (a struct can be "cast" to itself).
        if self.unit.types.strip(value.type_id).map(|(id, _)| id)
            == self.unit.types.strip(Some(target)).map(|(id, _)| id)
        {
            return Ok(Value {
                type_id: Some(target),
                ..value.clone()
            });
        }
        let scalar = self.scalar(value, expr)?;
        match target_type {
            Some(Type::Base {
                encoding: BaseEncoding::Float,
                size,
                ..
            }) => {
                let float = scalar.as_f64();
                let bytes = match size {
                    4 => (float as f32).to_le_bytes().to_vec(),
                    8 => float.to_le_bytes().to_vec(),
                    _ => return Err(cannot(&format!("{size}-byte floating point"))),
                };
                Ok(Value::new(Some(target), Contents::bytes(bytes)))
            }
            Some(Type::Base {
                encoding: BaseEncoding::Bool,
                size,
                ..
            }) => Ok(self.int_value(u64::from(scalar.is_true()), size, target)),
            Some(Type::Base { encoding, size, .. }) if size <= 8 => {
                let signed = matches!(encoding, BaseEncoding::Signed | BaseEncoding::SignedChar);
                Ok(self.int_value(scalar.as_bits(signed), size, target))
            }
            Some(Type::Enum { size, signed, .. }) if size <= 8 => {
                Ok(self.int_value(scalar.as_bits(signed), size, target))
            }
            Some(Type::Pointer { size, .. }) => {
                if matches!(scalar, Scalar::Float { .. }) {
                    return Err(cannot("a floating-point number is not an address"));
                }
                Ok(self.int_value(scalar.as_bits(false), size, target))
            }
            _ => Err(cannot("only numbers and pointers convert")),
        }
    }
}

/// `Formatter`'s `<error: why>` as a plain `why`, for an error message of its own.
/// The package of a Go function's symbol name: `main` of `main.(*T).M`,
/// `example.com/a/b` of `example.com/a/b.F` (dots before the last `/` are the path's).
pub(super) fn go_package(function: &str) -> &str {
    let last_segment = function.rfind('/').map_or(0, |slash| slash + 1);
    match function[last_segment..].find('.') {
        Some(dot) => &function[..last_segment + dot],
        None => function,
    }
}

fn unwrap_error_text(text: &str) -> String {
    text.strip_prefix("<error: ")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(text)
        .to_string()
}

fn unreadable(expr: &dyn std::fmt::Display, shown: &str) -> EvalError {
    EvalError::Unreadable {
        expr: expr.to_string(),
        why: unwrap_error_text(shown),
    }
}

fn kind_word(kind: AggregateKind) -> &'static str {
    match kind {
        AggregateKind::Struct => "struct",
        AggregateKind::Class => "class",
        AggregateKind::Union => "union",
    }
}

/// An expression written as the operand of a postfix operator in a hint (`s.field`,
/// `(a + b).field`).
struct Operand<'e>(&'e Expr);

impl std::fmt::Display for Operand<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            // These print bracketed or bind tighter than a postfix operator already.
            Expr::Name(_)
            | Expr::Register(_)
            | Expr::Field(..)
            | Expr::Arrow(..)
            | Expr::Index(..)
            | Expr::Binary(..)
            | Expr::Conditional(..)
            | Expr::Cast(..) => write!(f, "{}", self.0),
            other => write!(f, "({other})"),
        }
    }
}

/// x86-64's DWARF register numbers by name, with gdb's aliases for the pc and the
/// stack and frame pointers.
fn register_number(name: &str) -> Option<u16> {
    const NAMES: [&str; 17] = [
        "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15", "rip",
    ];
    let name = match name {
        "pc" => "rip",
        "sp" => "rsp",
        "fp" => "rbp",
        other => other,
    };
    NAMES.iter().position(|n| *n == name).map(|n| n as u16)
}
