//! Tokens to an [`Expr`], by precedence climbing with C's operator precedence.
//!
//! The grammar reads like C, with what Rust and Go users type as well: `a.b` through a
//! pointer, `x as u32`, `uint8(x)` (a conversion to a base type written as a call), paths
//! `a::b`, tuple fields `t.0`, registers `$rip`. A cast `(T)x` is told from a
//! parenthesized value by the words inside: C's type keywords, base type names of the
//! three languages, a name followed by `*`, or a name the caller says is a type.

use super::ast::{BinaryOp, Expr, TypeName, UnaryOp};
use super::lexer::{tokens, Token};
use super::ParseError;

/// Nesting deeper than this is refused: recursion must not overflow latch's stack on
/// input such as ten thousand `(`.
const MAX_DEPTH: usize = 200;

/// C's words that make up base types; any run of them is one type (`unsigned long long`).
const C_TYPE_WORDS: [&str; 11] = [
    "unsigned", "signed", "short", "long", "int", "char", "float", "double", "void", "bool",
    "_Bool",
];

/// Base types of Rust and Go that may be written alone in a cast or conversion.
const BASE_TYPE_NAMES: [&str; 33] = [
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32",
    "f64", "uint", "uint8", "uint16", "uint32", "uint64", "uintptr", "int8", "int16", "int32",
    "int64", "float32", "float64", "byte", "rune", "int", "char", "bool", "float", "double",
];

pub(super) struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(Token, usize)>,
    at: usize,
    depth: usize,
    is_type: &'a dyn Fn(&str) -> bool,
}

impl<'a> Parser<'a> {
    pub(super) fn new(
        text: &'a str,
        is_type: &'a dyn Fn(&str) -> bool,
    ) -> Result<Self, ParseError> {
        Ok(Parser {
            text,
            tokens: tokens(text)?,
            at: 0,
            depth: 0,
            is_type,
        })
    }

    pub(super) fn whole(mut self) -> Result<Expr, ParseError> {
        if self.peek() == &Token::End {
            return Err(self.error("expected an expression"));
        }
        let expr = self.expression()?;
        match self.peek() {
            Token::End => Ok(expr),
            Token::Punct("=") => Err(self.error(
                "assignment is not an expression here: set a value from the Variables view \
                 (setVariable) instead",
            )),
            Token::Punct(",") => Err(self.error("one expression at a time: ',' is not supported")),
            other => {
                let what = describe(other);
                Err(self.error(&format!("unexpected {what} after the expression")))
            }
        }
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)].0
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        &self.tokens[(self.at + ahead).min(self.tokens.len() - 1)].0
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        token
    }

    fn eat(&mut self, punct: &str) -> bool {
        if matches!(self.peek(), Token::Punct(p) if *p == punct) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: &str, context: &str) -> Result<(), ParseError> {
        if self.eat(punct) {
            Ok(())
        } else {
            let what = describe(self.peek());
            Err(self.error(&format!("expected '{punct}' {context}, found {what}")))
        }
    }

    fn error(&self, message: &str) -> ParseError {
        let offset = self.tokens[self.at.min(self.tokens.len() - 1)].1;
        ParseError::at(self.text, offset, message)
    }

    fn deeper(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("expression nested too deeply"));
        }
        Ok(())
    }

    fn expression(&mut self) -> Result<Expr, ParseError> {
        self.deeper()?;
        let condition = self.binary(1)?;
        let expr = if self.eat("?") {
            let then = self.expression()?;
            self.expect(":", "in 'condition ? a : b'")?;
            let otherwise = self.expression()?;
            Expr::Conditional(Box::new(condition), Box::new(then), Box::new(otherwise))
        } else {
            condition
        };
        self.depth -= 1;
        Ok(expr)
    }

    fn binary_op(&self) -> Option<BinaryOp> {
        use BinaryOp::*;
        let Token::Punct(p) = self.peek() else {
            return None;
        };
        Some(match *p {
            "*" => Mul,
            "/" => Div,
            "%" => Rem,
            "+" => Add,
            "-" => Sub,
            "<<" => Shl,
            ">>" => Shr,
            "<" => Less,
            "<=" => LessEq,
            ">" => Greater,
            ">=" => GreaterEq,
            "==" => Eq,
            "!=" => NotEq,
            "&" => BitAnd,
            "^" => BitXor,
            "|" => BitOr,
            "&&" => And,
            "||" => Or,
            _ => return None,
        })
    }

    /// Operators binding at least as tightly as `min`, left to right.
    fn binary(&mut self, min: u8) -> Result<Expr, ParseError> {
        let mut left = self.cast_as()?;
        while let Some(op) = self.binary_op().filter(|op| op.precedence() >= min) {
            self.advance();
            if self.eat("=") {
                return Err(self.error(
                    "assignment is not an expression here: set a value from the Variables view \
                     (setVariable) instead",
                ));
            }
            let right = self.binary(op.precedence() + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// Rust's `value as Type`, which binds looser than prefix operators.
    fn cast_as(&mut self) -> Result<Expr, ParseError> {
        let mut value = self.prefix()?;
        while matches!(self.peek(), Token::Ident(word) if word == "as") {
            self.advance();
            let ty = self.type_name()?;
            value = Expr::Cast(ty, Box::new(value));
        }
        Ok(value)
    }

    fn prefix(&mut self) -> Result<Expr, ParseError> {
        self.deeper()?;
        let op = match self.peek() {
            Token::Punct("-") => Some(UnaryOp::Negate),
            Token::Punct("+") => Some(UnaryOp::Plus),
            Token::Punct("!") => Some(UnaryOp::Not),
            Token::Punct("~") => Some(UnaryOp::Complement),
            Token::Punct("*") => Some(UnaryOp::Deref),
            Token::Punct("&") => Some(UnaryOp::AddressOf),
            // `&&x` is the address of an address, which C does not allow either.
            Token::Punct("&&") => {
                return Err(self.error("cannot take the address of an address ('&&')"));
            }
            _ => None,
        };
        let expr = if let Some(op) = op {
            self.advance();
            Expr::Unary(op, Box::new(self.prefix()?))
        } else if matches!(self.peek(), Token::Ident(word) if word == "sizeof") {
            self.advance();
            if matches!(self.peek(), Token::Punct("(")) && self.type_follows(1) {
                self.advance();
                let ty = self.type_name()?;
                self.expect(")", "to end sizeof(type)")?;
                Expr::SizeOfType(ty)
            } else {
                Expr::SizeOfValue(Box::new(self.prefix()?))
            }
        } else if matches!(self.peek(), Token::Punct("(")) && self.type_follows(1) {
            self.advance();
            let ty = self.type_name()?;
            self.expect(")", "to end the cast")?;
            Expr::Cast(ty, Box::new(self.prefix()?))
        } else {
            let primary = self.primary()?;
            self.postfix(primary)?
        };
        self.depth -= 1;
        Ok(expr)
    }

    fn postfix(&mut self, mut value: Expr) -> Result<Expr, ParseError> {
        loop {
            if self.eat(".") {
                let field = self.field_name("after '.'")?;
                value = Expr::Field(Box::new(value), field);
            } else if self.eat("->") {
                let field = self.field_name("after '->'")?;
                value = Expr::Arrow(Box::new(value), field);
            } else if self.eat("[") {
                let index = self.expression()?;
                self.expect("]", "to end the index")?;
                value = Expr::Index(Box::new(value), Box::new(index));
            } else if matches!(self.peek(), Token::Punct("(")) {
                return Err(self.error(
                    "calling functions is not supported: latch never runs code in the target \
                     to show a value",
                ));
            } else {
                return Ok(value);
            }
        }
    }

    fn field_name(&mut self, context: &str) -> Result<String, ParseError> {
        match self.advance() {
            Token::Ident(name) => Ok(name),
            Token::Int { value, suffix } if suffix.is_empty() => Ok(value.to_string()),
            other => {
                self.at -= 1;
                let what = describe(&other);
                Err(self.error(&format!("expected a field name {context}, found {what}")))
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.advance() {
            Token::Int { value, suffix } => Ok(Expr::Int { value, suffix }),
            Token::Float(value) => Ok(Expr::Float(value)),
            Token::Char(c) => Ok(Expr::Char(c)),
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Register(name) => Ok(Expr::Register(name)),
            Token::Ident(word) if word == "true" => Ok(Expr::Bool(true)),
            Token::Ident(word) if word == "false" => Ok(Expr::Bool(false)),
            // C's type words are never values; Go's conversion `int(x)` is taken below.
            Token::Ident(word)
                if (C_TYPE_WORDS.contains(&word.as_str())
                    || matches!(
                        word.as_str(),
                        "struct" | "union" | "enum" | "class" | "const" | "volatile"
                    ))
                    && !matches!(self.peek(), Token::Punct("(")) =>
            {
                self.at -= 1;
                Err(self.error(&format!(
                    "'{word}' names a type, not a value: write a cast such as ({word})x or sizeof({word})"
                )))
            }
            Token::Ident(word) => {
                // Go's conversion `uint8(x)`, the one call that runs no code.
                if BASE_TYPE_NAMES.contains(&word.as_str())
                    && matches!(self.peek(), Token::Punct("("))
                {
                    self.advance();
                    let value = self.expression()?;
                    self.expect(")", "to end the conversion")?;
                    let ty = TypeName {
                        name: word,
                        pointers: 0,
                    };
                    return Ok(Expr::Cast(ty, Box::new(value)));
                }
                let mut path = vec![word];
                while self.eat("::") {
                    match self.advance() {
                        Token::Ident(next) => path.push(next),
                        other => {
                            self.at -= 1;
                            let what = describe(&other);
                            return Err(
                                self.error(&format!("expected a name after '::', found {what}"))
                            );
                        }
                    }
                }
                Ok(Expr::Name(path))
            }
            Token::Punct("(") => {
                let inner = self.expression()?;
                self.expect(")", "to close '('")?;
                Ok(inner)
            }
            other => {
                self.at = self.at.saturating_sub(usize::from(other != Token::End));
                let what = describe(&other);
                Err(self.error(&format!("expected a value, found {what}")))
            }
        }
    }

    /// Whether the tokens from `ahead` on spell a type closed by `)`: the start of a cast
    /// or of `sizeof(type)`.
    fn type_follows(&self, ahead: usize) -> bool {
        let word = |n: usize| match self.peek_at(ahead + n) {
            Token::Ident(w) => Some(w.as_str()),
            _ => None,
        };
        let Some(first) = word(0) else {
            return false;
        };
        if matches!(
            first,
            "struct" | "union" | "enum" | "class" | "const" | "volatile"
        ) || C_TYPE_WORDS.contains(&first)
        {
            return true;
        }
        // A path, then `*`s or `)`: `(u32)x`, `(Node *)p`, `(my_t)x` when `my_t` is a type.
        let mut n = 1;
        let mut path = first.to_string();
        while matches!(self.peek_at(ahead + n), Token::Punct("::")) {
            let Some(next) = word(n + 1) else {
                return false;
            };
            path.push_str("::");
            path.push_str(next);
            n += 2;
        }
        let mut pointers = 0;
        while matches!(self.peek_at(ahead + n), Token::Punct("*")) {
            pointers += 1;
            n += 1;
        }
        if !matches!(self.peek_at(ahead + n), Token::Punct(")")) {
            return false;
        }
        pointers > 0 || BASE_TYPE_NAMES.contains(&path.as_str()) || (self.is_type)(&path)
    }

    fn type_name(&mut self) -> Result<TypeName, ParseError> {
        let mut words: Vec<String> = Vec::new();
        loop {
            match self.peek().clone() {
                Token::Ident(w) if w == "const" || w == "volatile" => {
                    self.advance();
                }
                Token::Ident(w) if matches!(w.as_str(), "struct" | "union" | "enum" | "class") => {
                    self.advance();
                    let Token::Ident(tag) = self.advance() else {
                        self.at -= 1;
                        return Err(self.error(&format!("expected a name after '{w}'")));
                    };
                    words.push(format!("{w} {tag}"));
                    break;
                }
                Token::Ident(w) if C_TYPE_WORDS.contains(&w.as_str()) => {
                    self.advance();
                    words.push(w);
                }
                Token::Ident(w) if words.is_empty() => {
                    self.advance();
                    let mut path = w;
                    while self.eat("::") {
                        let Token::Ident(next) = self.advance() else {
                            self.at -= 1;
                            return Err(self.error("expected a name after '::' in the type"));
                        };
                        path.push_str("::");
                        path.push_str(&next);
                    }
                    words.push(path);
                    break;
                }
                _ => break,
            }
        }
        if words.is_empty() {
            let what = describe(self.peek());
            return Err(self.error(&format!("expected a type, found {what}")));
        }
        let mut pointers: u8 = 0;
        loop {
            if self.eat("*") {
                pointers = pointers.saturating_add(1);
            } else if matches!(self.peek(), Token::Ident(w) if w == "const" || w == "volatile") {
                self.advance();
            } else {
                break;
            }
        }
        Ok(TypeName {
            name: words.join(" "),
            pointers,
        })
    }
}

/// A token as an error message names it.
fn describe(token: &Token) -> String {
    match token {
        Token::End => "the end of the expression".to_string(),
        Token::Int { value, suffix } => format!("the number {value}{suffix}"),
        Token::Float(value) => format!("the number {value}"),
        Token::Char(_) => "a character literal".to_string(),
        Token::Str(_) => "a string literal".to_string(),
        Token::Ident(name) => format!("'{name}'"),
        Token::Register(name) => format!("'${name}'"),
        Token::Punct(p) => format!("'{p}'"),
    }
}
