//! The tokens of an expression, each with where it starts (for error messages).

use super::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Int { value: u128, suffix: String },
    Float(f64),
    Char(u32),
    Str(String),
    Ident(String),
    Register(String),
    Punct(&'static str),
    End,
}

/// Operators and punctuation, longest first so that `->` is not read as `-`.
const PUNCTUATION: [&str; 31] = [
    "->", "::", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+", "-", "*", "/", "%", "<", ">",
    "&", "|", "^", "!", "~", "(", ")", "[", "]", ".", "?", ":", ",", "=",
];

/// (token, byte offset where it starts); the last is `End`.
pub fn tokens(text: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut out: Vec<(Token, usize)> = Vec::new();
    loop {
        lexer.skip_space();
        let start = lexer.at;
        let Some(&byte) = lexer.bytes.get(start) else {
            out.push((Token::End, start));
            return Ok(out);
        };
        // After a `.`, digits are a tuple field (`pair.0.1`), never a fraction.
        let after_dot = matches!(out.last(), Some((Token::Punct("."), _)));
        let token = match byte {
            b'0'..=b'9' if after_dot => lexer.field_number()?,
            b'0'..=b'9' => lexer.number()?,
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => Token::Ident(lexer.ident().to_string()),
            0x80..
                if text[start..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphabetic) =>
            {
                Token::Ident(lexer.ident().to_string())
            }
            b'$' => {
                lexer.at += 1;
                let name = lexer.ident();
                if name.is_empty() {
                    return Err(
                        lexer.error(start, "expected a register name after '$' (as in $rip)")
                    );
                }
                Token::Register(name.to_string())
            }
            b'\'' => Token::Char(lexer.char_literal()?),
            b'"' => Token::Str(lexer.string_literal()?),
            _ => match PUNCTUATION.iter().find(|p| text[start..].starts_with(**p)) {
                Some(p) => {
                    lexer.at += p.len();
                    Token::Punct(p)
                }
                None => {
                    let c = text[start..].chars().next().unwrap_or('?');
                    return Err(lexer.error(start, &format!("unexpected character {c:?}")));
                }
            },
        };
        out.push((token, start));
    }
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Lexer<'a> {
    fn error(&self, at: usize, message: &str) -> ParseError {
        ParseError::at(self.text, at, message)
    }

    fn skip_space(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// A name: letters (Rust and Go allow any alphabet), digits and `_`.
    fn ident(&mut self) -> &'a str {
        let start = self.at;
        for c in self.text[start..].chars() {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.at += c.len_utf8();
        }
        &self.text[start..self.at]
    }

    /// Digits of `radix` with `_` separators allowed (`1_000`, `0xffff_ffff`).
    fn digits(&mut self, radix: u32) -> String {
        let mut digits = String::new();
        while let Some(b) = self.peek() {
            if b == b'_' {
                self.at += 1;
            } else if (b as char).is_digit(radix) {
                digits.push(b as char);
                self.at += 1;
            } else {
                break;
            }
        }
        digits
    }

    fn field_number(&mut self) -> Result<Token, ParseError> {
        let start = self.at;
        let digits = self.digits(10);
        let value = digits
            .parse()
            .map_err(|_| self.error(start, "field number too large"))?;
        Ok(Token::Int {
            value,
            suffix: String::new(),
        })
    }

    fn number(&mut self) -> Result<Token, ParseError> {
        let start = self.at;
        let rest = &self.bytes[start..];
        let prefixed =
            |c: u8| rest.len() > 2 && rest[0] == b'0' && rest[1].eq_ignore_ascii_case(&c);
        let radix = if prefixed(b'x') {
            16
        } else if prefixed(b'b') {
            2
        } else if prefixed(b'o') {
            8
        } else {
            10
        };
        if radix != 10 {
            self.at += 2;
            let digits = self.digits(radix);
            if digits.is_empty() {
                return Err(self.error(start, "expected digits after the number's prefix"));
            }
            return self.integer(start, &digits, radix);
        }
        let whole = self.digits(10);
        let fraction = self.peek() == Some(b'.')
            && self.bytes.get(self.at + 1).is_some_and(u8::is_ascii_digit);
        let exponent = |at: usize| {
            let b = self.bytes.get(at).copied();
            matches!(b, Some(b'e' | b'E'))
                && match self.bytes.get(at + 1).copied() {
                    Some(b'+' | b'-') => self.bytes.get(at + 2).is_some_and(u8::is_ascii_digit),
                    Some(d) => d.is_ascii_digit(),
                    None => false,
                }
        };
        if fraction || exponent(self.at) {
            let mut literal = whole;
            if fraction {
                self.at += 1;
                literal.push('.');
                literal.push_str(&self.digits(10));
            }
            if exponent(self.at) {
                literal.push('e');
                self.at += 1;
                if let Some(sign @ (b'+' | b'-')) = self.peek() {
                    literal.push(sign as char);
                    self.at += 1;
                }
                literal.push_str(&self.digits(10));
            }
            // A float's own suffixes: `f` (C), `f32`/`f64` (Rust).
            let suffix = self.ident();
            if !matches!(suffix, "" | "f" | "F" | "l" | "L" | "f32" | "f64") {
                return Err(self.error(start, &format!("unknown suffix {suffix:?} on a number")));
            }
            let value = literal
                .parse()
                .map_err(|_| self.error(start, "malformed floating-point number"))?;
            return Ok(Token::Float(value));
        }
        // C's leading zero means octal (`017`); a lone `0` is zero either way.
        if whole.len() > 1 && whole.starts_with('0') {
            return self.integer(start, &whole[1..], 8);
        }
        self.integer(start, &whole, 10)
    }

    fn integer(&mut self, start: usize, digits: &str, radix: u32) -> Result<Token, ParseError> {
        let value = u128::from_str_radix(digits, radix).map_err(|_| {
            if radix == 8 && digits.bytes().any(|b| b > b'7') {
                self.error(
                    start,
                    "not an octal number (a leading 0 means octal, as in C)",
                )
            } else {
                self.error(start, "integer literal too large")
            }
        })?;
        let suffix = self.ident().to_string();
        let known = matches!(
            suffix.to_ascii_lowercase().as_str(),
            "" | "u" | "l" | "ul" | "lu" | "ll" | "ull" | "llu"
        ) || matches!(
            suffix.as_str(),
            "u8" | "u16"
                | "u32"
                | "u64"
                | "u128"
                | "usize"
                | "i8"
                | "i16"
                | "i32"
                | "i64"
                | "i128"
                | "isize"
        );
        if !known {
            return Err(self.error(start, &format!("unknown suffix {suffix:?} on a number")));
        }
        Ok(Token::Int { value, suffix })
    }

    /// One character of a char or string literal, escapes resolved; `None` at `quote`.
    fn literal_char(&mut self, quote: char, start: usize) -> Result<Option<u32>, ParseError> {
        let rest = &self.text[self.at..];
        let Some(c) = rest.chars().next() else {
            let what = if quote == '"' { "string" } else { "character" };
            return Err(self.error(start, &format!("unterminated {what} literal")));
        };
        self.at += c.len_utf8();
        if c == quote {
            return Ok(None);
        }
        if c != '\\' {
            return Ok(Some(c as u32));
        }
        let Some(escape) = self.text[self.at..].chars().next() else {
            return Err(self.error(start, "unterminated escape"));
        };
        self.at += escape.len_utf8();
        let simple = match escape {
            'n' => Some(b'\n' as u32),
            't' => Some(b'\t' as u32),
            'r' => Some(b'\r' as u32),
            '0' if !self.peek().is_some_and(|b| b.is_ascii_digit()) => Some(0),
            'a' => Some(7),
            'b' => Some(8),
            'f' => Some(12),
            'v' => Some(11),
            'e' => Some(27),
            '\\' | '\'' | '"' | '?' => Some(escape as u32),
            _ => None,
        };
        if let Some(value) = simple {
            return Ok(Some(value));
        }
        let escape_start = self.at - escape.len_utf8() - 1;
        match escape {
            'x' => {
                let digits = self.digits(16);
                u32::from_str_radix(&digits, 16)
                    .ok()
                    .filter(|v| *v <= 0xff)
                    .map(Some)
                    .ok_or_else(|| self.error(escape_start, "\\x needs one or two hex digits"))
            }
            'u' if self.peek() == Some(b'{') => {
                self.at += 1;
                let digits = self.digits(16);
                if self.peek() != Some(b'}') {
                    return Err(self.error(escape_start, "expected '}' to end \\u{...}"));
                }
                self.at += 1;
                u32::from_str_radix(&digits, 16)
                    .ok()
                    .filter(|v| char::from_u32(*v).is_some())
                    .map(Some)
                    .ok_or_else(|| self.error(escape_start, "not a Unicode scalar value"))
            }
            '0'..='7' => {
                let mut value = escape as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            self.at += 1;
                        }
                        _ => break,
                    }
                }
                Ok(Some(value))
            }
            other => Err(self.error(escape_start, &format!("unknown escape \\{other}"))),
        }
    }

    fn char_literal(&mut self) -> Result<u32, ParseError> {
        let start = self.at;
        self.at += 1;
        let Some(value) = self.literal_char('\'', start)? else {
            return Err(self.error(start, "empty character literal"));
        };
        if self.literal_char('\'', start)?.is_some() {
            return Err(self.error(
                start,
                "a character literal holds one character: use \"...\" for a string",
            ));
        }
        Ok(value)
    }

    fn string_literal(&mut self) -> Result<String, ParseError> {
        let start = self.at;
        self.at += 1;
        let mut out = String::new();
        while let Some(value) = self.literal_char('"', start)? {
            // A byte escape above 0x7f (`\xff`) stands for that code point here; the
            // evaluator encodes strings for the target as it needs.
            out.push(char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
        Ok(out)
    }
}
