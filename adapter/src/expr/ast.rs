//! What an expression the user typed means, before any name in it is looked up.

use std::fmt;

/// One expression. Names stay names here: whether `a.b` is a field of the variable `a`
/// or the name `b` in Go package `a` is decided by the evaluator, which knows the frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// An integer literal; `suffix` keeps what followed the digits (`u`, `ul`, `i64`), for
    /// the evaluator to pick the type from.
    Int {
        value: u128,
        suffix: String,
    },
    Float(f64),
    /// A character literal, as its code point.
    Char(u32),
    /// A string literal, with its escapes resolved.
    Str(String),
    Bool(bool),
    /// A name, or a path of names: `x`, `std::cout`, `crate::CONFIG`.
    Name(Vec<String>),
    /// A register, written `$rip` or `$rax`.
    Register(String),
    /// `value.field`: also through a pointer, as Rust and Go write it.
    Field(Box<Expr>, String),
    /// `value->field`.
    Arrow(Box<Expr>, String),
    /// `value[index]`.
    Index(Box<Expr>, Box<Expr>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `condition ? then : otherwise`.
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `(type) value` or `value as type`.
    Cast(TypeName, Box<Expr>),
    SizeOfType(TypeName),
    SizeOfValue(Box<Expr>),
}

impl Expr {
    /// Every name the expression may look up as a variable: `x`, paths as written
    /// (`std::cout`), and `a.b` for a field of a bare name (Go's `pkg.Name`).
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        self.collect_names(&mut names);
        names
    }

    fn collect_names(&self, names: &mut Vec<String>) {
        match self {
            Expr::Name(path) => names.push(path.join("::")),
            Expr::Field(base, field) => {
                if let Expr::Name(path) = &**base {
                    names.push(format!("{}.{field}", path.join("::")));
                }
                base.collect_names(names);
            }
            Expr::Arrow(base, _) | Expr::Unary(_, base) | Expr::SizeOfValue(base) => {
                base.collect_names(names)
            }
            Expr::Cast(_, operand) => operand.collect_names(names),
            Expr::Index(base, index) | Expr::Binary(_, base, index) => {
                base.collect_names(names);
                index.collect_names(names);
            }
            Expr::Conditional(condition, then, otherwise) => {
                condition.collect_names(names);
                then.collect_names(names);
                otherwise.collect_names(names);
            }
            Expr::Int { .. }
            | Expr::Float(_)
            | Expr::Char(_)
            | Expr::Str(_)
            | Expr::Bool(_)
            | Expr::Register(_)
            | Expr::SizeOfType(_) => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`
    Negate,
    /// `+x`
    Plus,
    /// `!x`
    Not,
    /// `~x`
    Complement,
    /// `*x`
    Deref,
    /// `&x`
    AddressOf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Mul,
    Div,
    Rem,
    Add,
    Sub,
    Shl,
    Shr,
    Less,
    LessEq,
    Greater,
    GreaterEq,
    Eq,
    NotEq,
    BitAnd,
    BitXor,
    BitOr,
    And,
    Or,
}

impl BinaryOp {
    /// How tightly the operator binds, C's order: higher binds tighter.
    pub fn precedence(self) -> u8 {
        use BinaryOp::*;
        match self {
            Mul | Div | Rem => 10,
            Add | Sub => 9,
            Shl | Shr => 8,
            Less | LessEq | Greater | GreaterEq => 7,
            Eq | NotEq => 6,
            BitAnd => 5,
            BitXor => 4,
            BitOr => 3,
            And => 2,
            Or => 1,
        }
    }

    pub fn symbol(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Mul => "*",
            Div => "/",
            Rem => "%",
            Add => "+",
            Sub => "-",
            Shl => "<<",
            Shr => ">>",
            Less => "<",
            LessEq => "<=",
            Greater => ">",
            GreaterEq => ">=",
            Eq => "==",
            NotEq => "!=",
            BitAnd => "&",
            BitXor => "^",
            BitOr => "|",
            And => "&&",
            Or => "||",
        }
    }
}

/// A type as written in a cast or `sizeof`: its name (`unsigned long`, `struct node`,
/// `std::string`, `u32`) and how many pointers deep (`char **` is `char` and 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeName {
    pub name: String,
    pub pointers: u8,
}

impl fmt::Display for TypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.pointers > 0 {
            f.write_str(" ")?;
            for _ in 0..self.pointers {
                f.write_str("*")?;
            }
        }
        Ok(())
    }
}

/// Writes the expression back with every operation parenthesized: what the parser
/// understood, for tests and for error messages.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Int { value, suffix } => write!(f, "{value}{suffix}"),
            Expr::Float(value) => write!(f, "{value:?}"),
            Expr::Char(c) => match char::from_u32(*c) {
                Some(c) => write!(f, "{c:?}"),
                None => write!(f, "'\\u{{{c:x}}}'"),
            },
            Expr::Str(s) => write!(f, "{s:?}"),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Name(path) => f.write_str(&path.join("::")),
            Expr::Register(name) => write!(f, "${name}"),
            Expr::Field(value, field) => write!(f, "{}.{field}", Operand(value)),
            Expr::Arrow(value, field) => write!(f, "{}->{field}", Operand(value)),
            Expr::Index(value, index) => write!(f, "{}[{index}]", Operand(value)),
            Expr::Unary(op, value) => {
                let symbol = match op {
                    UnaryOp::Negate => "-",
                    UnaryOp::Plus => "+",
                    UnaryOp::Not => "!",
                    UnaryOp::Complement => "~",
                    UnaryOp::Deref => "*",
                    UnaryOp::AddressOf => "&",
                };
                write!(f, "{symbol}{}", Operand(value))
            }
            Expr::Binary(op, left, right) => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Conditional(c, a, b) => write!(f, "({c} ? {a} : {b})"),
            Expr::Cast(ty, value) => write!(f, "(({ty}) {value})"),
            Expr::SizeOfType(ty) => write!(f, "sizeof({ty})"),
            Expr::SizeOfValue(value) => write!(f, "sizeof({value})"),
        }
    }
}

/// An operand written back: names and literals bare (`(u32).x` would read as a cast),
/// anything else in parentheses.
struct Operand<'a>(&'a Expr);

impl fmt::Display for Operand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Expr::Name(_)
            | Expr::Register(_)
            | Expr::Int { .. }
            | Expr::Char(_)
            | Expr::Str(_)
            | Expr::Bool(_) => write!(f, "{}", self.0),
            other => write!(f, "({other})"),
        }
    }
}
