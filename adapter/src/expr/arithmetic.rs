//! Numbers as C computes with them: integer promotion, the usual arithmetic conversions,
//! wrapping at the type's width, pointer arithmetic scaled by the pointee's size.
//!
//! Here a value is a [`Scalar`], already read out of the target; nothing in this module
//! reads memory or knows DWARF, so each rule can be checked on its own.

use crate::values::types::{extend, truncate, TypeId};

use super::BinaryOp;

/// An integer type as arithmetic sees it: its width and whether it is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntKind {
    pub size: u64,
    pub signed: bool,
}

impl IntKind {
    pub const INT: IntKind = IntKind {
        size: 4,
        signed: true,
    };
    pub const LONG: IntKind = IntKind {
        size: 8,
        signed: true,
    };
    pub const UNSIGNED_LONG: IntKind = IntKind {
        size: 8,
        signed: false,
    };

    /// C's integer promotion: anything narrower than `int` computes as `int`.
    pub fn promoted(self) -> IntKind {
        if self.size < 4 {
            IntKind::INT
        } else {
            self
        }
    }

    /// `bits` cut to this width, then sign- or zero-extended to 64 bits: the one form in
    /// which integers are kept, so that comparisons and divisions read them right.
    pub fn normalize(self, bits: u64) -> u64 {
        extend(truncate(bits, self.size), self.size, self.signed)
    }

    /// The C type an integer of this kind is called.
    pub fn c_name(self) -> &'static str {
        match (self.size, self.signed) {
            (1, true) => "signed char",
            (1, false) => "unsigned char",
            (2, true) => "short",
            (2, false) => "unsigned short",
            (4, true) => "int",
            (4, false) => "unsigned int",
            (_, true) => "long",
            (_, false) => "unsigned long",
        }
    }
}

/// A value ready for arithmetic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    /// `bits` is normalized to `kind` (see [`IntKind::normalize`]).
    Int { bits: u64, kind: IntKind },
    /// Computed in double precision whatever the operand's width; `size` is the width
    /// the result is given back in (4 for `float`, 8 otherwise).
    Float { value: f64, size: u64 },
    /// `type_id` is the pointer's own type, which the result of `p + 1` keeps;
    /// `pointee_size` is what one step moves (1 for `void *` as in GNU C).
    Pointer {
        address: u64,
        type_id: TypeId,
        pointee_size: Option<u64>,
    },
}

impl Scalar {
    pub fn int(bits: u64, kind: IntKind) -> Scalar {
        Scalar::Int {
            bits: kind.normalize(bits),
            kind,
        }
    }

    /// `true`/`false` as C's comparisons give them: an `int` 1 or 0.
    pub fn truth(value: bool) -> Scalar {
        Scalar::int(u64::from(value), IntKind::INT)
    }

    pub fn is_true(&self) -> bool {
        match *self {
            Scalar::Int { bits, .. } => bits != 0,
            Scalar::Float { value, .. } => value != 0.0,
            Scalar::Pointer { address, .. } => address != 0,
        }
    }

    /// The value as a double (for a mixed integer and floating-point operation).
    pub fn as_f64(&self) -> f64 {
        match *self {
            Scalar::Int { bits, kind } if kind.signed => bits as i64 as f64,
            Scalar::Int { bits, .. } => bits as f64,
            Scalar::Float { value, .. } => value,
            Scalar::Pointer { address, .. } => address as f64,
        }
    }

    /// The value's integer bits (a float truncated toward zero, as C converts).
    pub fn as_bits(&self, signed: bool) -> u64 {
        match *self {
            Scalar::Int { bits, .. } => bits,
            Scalar::Float { value, .. } if signed => value as i64 as u64,
            Scalar::Float { value, .. } => {
                if value < 0.0 {
                    value as i64 as u64
                } else {
                    value as u64
                }
            }
            Scalar::Pointer { address, .. } => address,
        }
    }
}

/// C's usual arithmetic conversions for two integers: both promoted; the same
/// signedness keeps the wider; otherwise the unsigned one wins unless the signed one is
/// wider (and so holds every value of the other).
pub fn common_kind(a: IntKind, b: IntKind) -> IntKind {
    let (a, b) = (a.promoted(), b.promoted());
    if a.signed == b.signed {
        return IntKind {
            size: a.size.max(b.size),
            signed: a.signed,
        };
    }
    let (unsigned, signed) = if a.signed { (b, a) } else { (a, b) };
    if unsigned.size >= signed.size {
        unsigned
    } else {
        signed
    }
}

/// Why a binary operation has no result; the caller adds which expression it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArithmeticError {
    DivisionByZero,
    /// The operation is not defined on these operands: the text says why.
    Invalid(String),
}

/// `left op right` for every operator but `&&` and `||`, which the evaluator
/// short-circuits itself.
pub fn binary(op: BinaryOp, left: Scalar, right: Scalar) -> Result<Scalar, ArithmeticError> {
    use Scalar::*;
    match (left, right) {
        (Pointer { .. }, _) | (_, Pointer { .. }) => pointer_binary(op, left, right),
        (Float { .. }, _) | (_, Float { .. }) => float_binary(op, left, right),
        (Int { bits: a, kind: ka }, Int { bits: b, kind: kb }) => int_binary(op, a, ka, b, kb),
    }
}

fn int_binary(
    op: BinaryOp,
    a: u64,
    a_kind: IntKind,
    b: u64,
    b_kind: IntKind,
) -> Result<Scalar, ArithmeticError> {
    use BinaryOp::*;
    if matches!(op, Shl | Shr) {
        // A shift takes its left operand's (promoted) type; the count is separate.
        let kind = a_kind.promoted();
        let a = kind.normalize(a);
        let count = if b_kind.signed {
            b as i64
        } else {
            b.min(i64::MAX as u64) as i64
        };
        let width = kind.size * 8;
        if count < 0 || count as u64 >= width {
            return Err(ArithmeticError::Invalid(format!(
                "shift count {count} is out of range for a {width}-bit {}",
                kind.c_name()
            )));
        }
        let bits = match (op, kind.signed) {
            (Shl, _) => a << count,
            (_, true) => ((a as i64) >> count) as u64,
            (_, false) => a >> count,
        };
        return Ok(Scalar::int(bits, kind));
    }
    let kind = common_kind(a_kind, b_kind);
    let (a, b) = (kind.normalize(a), kind.normalize(b));
    let compare = |ordering: std::cmp::Ordering| -> Scalar {
        let truth = match op {
            Less => ordering.is_lt(),
            LessEq => ordering.is_le(),
            Greater => ordering.is_gt(),
            GreaterEq => ordering.is_ge(),
            Eq => ordering.is_eq(),
            _ => ordering.is_ne(),
        };
        Scalar::truth(truth)
    };
    let ordering = if kind.signed {
        (a as i64).cmp(&(b as i64))
    } else {
        a.cmp(&b)
    };
    let bits = match op {
        Add => a.wrapping_add(b),
        Sub => a.wrapping_sub(b),
        Mul => a.wrapping_mul(b),
        Div | Rem if b == 0 => return Err(ArithmeticError::DivisionByZero),
        Div if kind.signed => (a as i64).wrapping_div(b as i64) as u64,
        Div => a / b,
        Rem if kind.signed => (a as i64).wrapping_rem(b as i64) as u64,
        Rem => a % b,
        BitAnd => a & b,
        BitOr => a | b,
        BitXor => a ^ b,
        Less | LessEq | Greater | GreaterEq | Eq | NotEq => return Ok(compare(ordering)),
        And | Or | Shl | Shr => unreachable_op(op)?,
    };
    Ok(Scalar::int(bits, kind))
}

fn float_binary(op: BinaryOp, left: Scalar, right: Scalar) -> Result<Scalar, ArithmeticError> {
    use BinaryOp::*;
    let float_size = |s: &Scalar| match s {
        Scalar::Float { size, .. } => *size,
        _ => 0,
    };
    // float with float (or an integer) stays float; anything wider is double.
    let size = match float_size(&left).max(float_size(&right)) {
        4 => 4,
        _ => 8,
    };
    let (a, b) = (left.as_f64(), right.as_f64());
    let value = match op {
        Add => a + b,
        Sub => a - b,
        Mul => a * b,
        // IEEE's answer (inf, nan), as C and gdb give it.
        Div => a / b,
        Less => return Ok(Scalar::truth(a < b)),
        LessEq => return Ok(Scalar::truth(a <= b)),
        Greater => return Ok(Scalar::truth(a > b)),
        GreaterEq => return Ok(Scalar::truth(a >= b)),
        Eq => return Ok(Scalar::truth(a == b)),
        NotEq => return Ok(Scalar::truth(a != b)),
        Rem | Shl | Shr | BitAnd | BitOr | BitXor => {
            return Err(ArithmeticError::Invalid(format!(
                "'{}' needs integers, not floating point",
                op.symbol()
            )))
        }
        And | Or => unreachable_op(op)?,
    };
    let value = if size == 4 {
        f64::from(value as f32)
    } else {
        value
    };
    Ok(Scalar::Float { value, size })
}

fn pointer_binary(op: BinaryOp, left: Scalar, right: Scalar) -> Result<Scalar, ArithmeticError> {
    use BinaryOp::*;
    let step = |size: Option<u64>| {
        size.ok_or_else(|| {
            ArithmeticError::Invalid(
                "pointer arithmetic needs the size of what the pointer points to, which is \
                 not known (a declaration or a function)"
                    .into(),
            )
        })
    };
    match (op, left, right) {
        (
            Add,
            Scalar::Pointer {
                address,
                type_id,
                pointee_size,
            },
            Scalar::Int { bits, .. },
        )
        | (
            Add,
            Scalar::Int { bits, .. },
            Scalar::Pointer {
                address,
                type_id,
                pointee_size,
            },
        ) => Ok(Scalar::Pointer {
            address: address.wrapping_add(bits.wrapping_mul(step(pointee_size)?)),
            type_id,
            pointee_size,
        }),
        (
            Sub,
            Scalar::Pointer {
                address,
                type_id,
                pointee_size,
            },
            Scalar::Int { bits, .. },
        ) => Ok(Scalar::Pointer {
            address: address.wrapping_sub(bits.wrapping_mul(step(pointee_size)?)),
            type_id,
            pointee_size,
        }),
        (
            Sub,
            Scalar::Pointer {
                address: a,
                pointee_size: size_a,
                ..
            },
            Scalar::Pointer {
                address: b,
                pointee_size: size_b,
                ..
            },
        ) => {
            if size_a != size_b {
                return Err(ArithmeticError::Invalid(
                    "subtracting pointers to types of different sizes".into(),
                ));
            }
            let size = step(size_a)?.max(1);
            Ok(Scalar::int(
                ((a.wrapping_sub(b) as i64) / size as i64) as u64,
                IntKind::LONG,
            ))
        }
        (Less | LessEq | Greater | GreaterEq | Eq | NotEq, _, _)
            if !matches!(left, Scalar::Float { .. }) && !matches!(right, Scalar::Float { .. }) =>
        {
            // Addresses compare as unsigned numbers; `p == 0` compares with null.
            let unsigned = |s: Scalar| Scalar::int(s.as_bits(false), IntKind::UNSIGNED_LONG);
            int_binary_scalars(op, unsigned(left), unsigned(right))
        }
        _ => Err(ArithmeticError::Invalid(format!(
            "'{}' is not defined on pointers",
            op.symbol()
        ))),
    }
}

fn int_binary_scalars(
    op: BinaryOp,
    left: Scalar,
    right: Scalar,
) -> Result<Scalar, ArithmeticError> {
    match (left, right) {
        (Scalar::Int { bits: a, kind: ka }, Scalar::Int { bits: b, kind: kb }) => {
            int_binary(op, a, ka, b, kb)
        }
        _ => unreachable_op(op),
    }
}

/// `&&` and `||` are the evaluator's (they must not evaluate their right side
/// needlessly); reaching here is a bug answered with an error, not a panic.
fn unreachable_op<T>(op: BinaryOp) -> Result<T, ArithmeticError> {
    Err(ArithmeticError::Invalid(format!(
        "internal error: '{}' reached the arithmetic",
        op.symbol()
    )))
}

/// `-x`, `+x`, `~x` (`!x` and the pointer operators are the evaluator's).
pub fn negate(value: Scalar) -> Result<Scalar, ArithmeticError> {
    match value {
        Scalar::Int { bits, kind } => Ok(Scalar::int(bits.wrapping_neg(), kind.promoted())),
        Scalar::Float { value, size } => Ok(Scalar::Float {
            value: -value,
            size,
        }),
        Scalar::Pointer { .. } => Err(ArithmeticError::Invalid(
            "'-' is not defined on pointers".into(),
        )),
    }
}

pub fn plus(value: Scalar) -> Result<Scalar, ArithmeticError> {
    match value {
        Scalar::Int { bits, kind } => Ok(Scalar::int(bits, kind.promoted())),
        Scalar::Float { .. } => Ok(value),
        Scalar::Pointer { .. } => Err(ArithmeticError::Invalid(
            "'+' is not defined on pointers".into(),
        )),
    }
}

pub fn complement(value: Scalar) -> Result<Scalar, ArithmeticError> {
    match value {
        Scalar::Int { bits, kind } => Ok(Scalar::int(!bits, kind.promoted())),
        _ => Err(ArithmeticError::Invalid("'~' needs an integer".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UINT: IntKind = IntKind {
        size: 4,
        signed: false,
    };
    const CHAR: IntKind = IntKind {
        size: 1,
        signed: true,
    };

    fn int(value: i64, kind: IntKind) -> Scalar {
        Scalar::int(value as u64, kind)
    }

    fn result(op: BinaryOp, a: Scalar, b: Scalar) -> (i64, IntKind) {
        match binary(op, a, b).unwrap() {
            Scalar::Int { bits, kind } => (bits as i64, kind),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn usual_arithmetic_conversions() {
        assert_eq!(common_kind(CHAR, CHAR), IntKind::INT);
        assert_eq!(common_kind(IntKind::INT, UINT), UINT);
        assert_eq!(common_kind(UINT, IntKind::LONG), IntKind::LONG);
        assert_eq!(
            common_kind(IntKind::LONG, IntKind::UNSIGNED_LONG),
            IntKind::UNSIGNED_LONG
        );
        // -1 < 1u is false in C: -1 becomes UINT_MAX.
        let (less, _) = result(BinaryOp::Less, int(-1, IntKind::INT), int(1, UINT));
        assert_eq!(less, 0);
        let (less, _) = result(BinaryOp::Less, int(-1, IntKind::LONG), int(1, UINT));
        assert_eq!(less, 1);
        // char + char is an int, not a wrapped char.
        assert_eq!(
            result(BinaryOp::Add, int(100, CHAR), int(100, CHAR)),
            (200, IntKind::INT)
        );
    }

    #[test]
    fn integers_wrap_at_their_width() {
        assert_eq!(
            result(
                BinaryOp::Add,
                int(i32::MAX.into(), IntKind::INT),
                int(1, IntKind::INT)
            ),
            (i32::MIN.into(), IntKind::INT)
        );
        assert_eq!(
            result(BinaryOp::Sub, int(0, UINT), int(1, IntKind::INT)).0 as u64,
            u64::from(u32::MAX)
        );
        assert_eq!(
            result(BinaryOp::Div, int(-7, IntKind::INT), int(2, IntKind::INT)).0,
            -3
        );
        assert_eq!(
            result(BinaryOp::Rem, int(-7, IntKind::INT), int(2, IntKind::INT)).0,
            -1
        );
        assert_eq!(
            result(
                BinaryOp::Div,
                int(i64::MIN, IntKind::LONG),
                int(-1, IntKind::LONG)
            )
            .0,
            i64::MIN
        );
        assert_eq!(
            binary(BinaryOp::Rem, int(1, IntKind::INT), int(0, IntKind::INT)),
            Err(ArithmeticError::DivisionByZero)
        );
    }

    #[test]
    fn shifts_take_the_left_operands_type_and_refuse_wild_counts() {
        assert_eq!(
            result(BinaryOp::Shl, int(1, CHAR), int(9, IntKind::LONG)),
            (512, IntKind::INT)
        );
        assert_eq!(
            result(BinaryOp::Shr, int(-16, IntKind::INT), int(2, IntKind::INT)).0,
            -4
        );
        assert!(binary(BinaryOp::Shl, int(1, IntKind::INT), int(32, IntKind::INT)).is_err());
        assert!(binary(BinaryOp::Shl, int(1, IntKind::INT), int(-1, IntKind::INT)).is_err());
    }

    #[test]
    fn floats_and_mixed_operands() {
        let half = Scalar::Float {
            value: 0.5,
            size: 8,
        };
        assert_eq!(
            binary(BinaryOp::Mul, half, int(3, IntKind::INT)).unwrap(),
            Scalar::Float {
                value: 1.5,
                size: 8
            }
        );
        assert!(binary(BinaryOp::BitAnd, half, int(3, IntKind::INT)).is_err());
        assert_eq!(
            binary(
                BinaryOp::Div,
                half,
                Scalar::Float {
                    value: 0.0,
                    size: 8
                }
            )
            .unwrap()
            .as_f64(),
            f64::INFINITY
        );
    }

    #[test]
    fn pointers_step_by_their_pointees_size() {
        let p = Scalar::Pointer {
            address: 0x1000,
            type_id: TypeId(1),
            pointee_size: Some(4),
        };
        let moved = binary(BinaryOp::Add, p, int(3, IntKind::INT)).unwrap();
        assert!(matches!(
            moved,
            Scalar::Pointer {
                address: 0x100c,
                ..
            }
        ));
        let back = binary(BinaryOp::Sub, moved, int(1, IntKind::INT)).unwrap();
        assert!(matches!(
            back,
            Scalar::Pointer {
                address: 0x1008,
                ..
            }
        ));
        assert_eq!(result(BinaryOp::Sub, moved, p), (3, IntKind::LONG));
        assert_eq!(result(BinaryOp::Less, p, moved).0, 1);
        assert_eq!(result(BinaryOp::Eq, p, int(0, IntKind::INT)).0, 0);
        assert!(binary(BinaryOp::Mul, p, int(2, IntKind::INT)).is_err());
    }
}
