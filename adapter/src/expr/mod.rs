//! The expression language of the watch panel, hovers, the debug console and breakpoint
//! conditions (issue 15): what the user types, parsed into an [`Expr`].
//!
//! Parsing is pure text: it knows nothing of processes, DWARF or DAP. Evaluation
//! ([`Scope::evaluate`]) is pure too: it works over a frame's variables, registers and a
//! memory reader handed in, and gives a `values::Value` the formatter shows. The parser
//! reads like the languages latch debugs: C's operators and precedence, `.` and `->`
//! (both work through a pointer, as in Rust and Go), indexing, `*` and `&`, casts
//! (`(unsigned long)x`, `x as u32`, Go's `uint8(x)`), `sizeof`, paths (`std::cout`,
//! `crate::CONFIG`), tuple fields (`pair.0`), registers (`$rip`), and integer, float,
//! character and string literals. It has no calls and no assignment: latch never runs
//! code in the target to show a value, and values are set through `setVariable`.

mod arithmetic;
mod ast;
pub mod completion;
mod eval;
#[cfg(test)]
mod eval_tests;
mod lexer;
mod parser;
pub mod template;
pub(crate) mod type_names;

use std::fmt;

pub use ast::{BinaryOp, Expr, TypeName, UnaryOp};
pub use eval::{EvalError, Scope};

/// Why an expression could not be read, and where (a 1-based column in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub column: usize,
}

impl ParseError {
    fn at(text: &str, byte_offset: usize, message: &str) -> ParseError {
        let before = text.get(..byte_offset).unwrap_or(text);
        ParseError {
            message: message.to_string(),
            column: before.chars().count() + 1,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (column {})", self.message, self.column)
    }
}

impl std::error::Error for ParseError {}

/// Parses `text`; a parenthesized name is a cast only when its words make a type on their
/// own (`(unsigned)x`, `(u32)x`, `(Node *)p`).
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    parse_with_types(text, &|_| false)
}

/// Parses `text`, asking `is_type` whether a name in parentheses (`(my_t)x`) names a type
/// of the program (a typedef or struct in its DWARF), which makes it a cast.
pub fn parse_with_types(text: &str, is_type: &dyn Fn(&str) -> bool) -> Result<Expr, ParseError> {
    parser::Parser::new(text, is_type)?.whole()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expression as the parser understood it, every operation parenthesized.
    fn read(text: &str) -> String {
        match parse(text) {
            Ok(expr) => expr.to_string(),
            Err(err) => panic!("{text:?}: {err}"),
        }
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(expr) => panic!("{text:?} parsed as {expr}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn operators_bind_as_in_c() {
        assert_eq!(read("a + b * c"), "(a + (b * c))");
        assert_eq!(read("a - b - c"), "((a - b) - c)");
        assert_eq!(read("a << 1 + 2"), "(a << (1 + 2))");
        assert_eq!(read("a & b == c"), "(a & (b == c))");
        assert_eq!(
            read("a || b && c | d ^ e & f"),
            "(a || (b && (c | (d ^ (e & f)))))"
        );
        assert_eq!(read("a < b == c >= d"), "((a < b) == (c >= d))");
        assert_eq!(read("a ? b : c ? d : e"), "(a ? b : (c ? d : e))");
        assert_eq!(read("-a * !b"), "(-a * !b)");
        assert_eq!(read("~x % 3"), "(~x % 3)");
    }

    #[test]
    fn postfix_binds_tighter_than_prefix() {
        assert_eq!(read("*p->next"), "*(p->next)");
        assert_eq!(read("&a.b[2]"), "&((a.b)[2])");
        assert_eq!(read("*argv[1]"), "*(argv[1])");
        assert_eq!(read("(*p).x"), "(*p).x");
        assert_eq!(read("v[i + 1].name"), "(v[(i + 1)]).name");
        assert_eq!(read("pair.0.1"), "(pair.0).1");
        assert_eq!(read("m[\"key\"]"), "m[\"key\"]");
    }

    #[test]
    fn names_paths_and_registers() {
        assert_eq!(
            parse("std::cout").unwrap(),
            Expr::Name(vec!["std".into(), "cout".into()])
        );
        assert_eq!(read("crate::CONFIG.level"), "crate::CONFIG.level");
        assert_eq!(read("$rip + 4"), "($rip + 4)");
        assert_eq!(read("main.counter"), "main.counter");
        assert_eq!(read("true && false"), "(true && false)");
    }

    #[test]
    fn names_an_expression_may_look_up() {
        let names = |text: &str| parse(text).unwrap().names();
        assert_eq!(names("a + b * 2"), ["a", "b"]);
        assert_eq!(names("p->next->value == x[i]"), ["p", "x", "i"]);
        assert_eq!(names("main.counter > 0"), ["main.counter", "main"]);
        assert_eq!(names("std::cout"), ["std::cout"]);
        assert_eq!(names("(long)v ? sizeof w : $rip"), ["v", "w"]);
        assert!(names("1 + 2").is_empty());
    }

    #[test]
    fn casts_in_three_languages() {
        assert_eq!(read("(unsigned long)x"), "((unsigned long) x)");
        assert_eq!(read("(const char *)p"), "((char *) p)");
        assert_eq!(read("(struct node *)p->next"), "((struct node *) p->next)");
        assert_eq!(read("(u32)-1"), "((u32) -1)");
        assert_eq!(read("(Node **)p"), "((Node **) p)");
        assert_eq!(read("(std::string *)p"), "((std::string *) p)");
        assert_eq!(read("x as u32 + 1"), "(((u32) x) + 1)");
        assert_eq!(read("-x as i64"), "((i64) -x)");
        assert_eq!(read("uint8(x) + 1"), "(((uint8) x) + 1)");
        // A parenthesized variable is not a cast ...
        assert_eq!(read("(a) - b"), "(a - b)");
        assert_eq!(read("(a) * b"), "(a * b)");
        // ... unless the program says the name is a type.
        let typed = parse_with_types("(my_t) - b", &|name| name == "my_t").unwrap();
        assert_eq!(typed.to_string(), "((my_t) -b)");
    }

    #[test]
    fn sizeof_of_types_and_values() {
        assert_eq!(read("sizeof(int)"), "sizeof(int)");
        assert_eq!(read("sizeof(struct node)"), "sizeof(struct node)");
        assert_eq!(read("sizeof x + 1"), "(sizeof(x) + 1)");
        assert_eq!(read("sizeof(v[0])"), "sizeof(v[0])");
        assert_eq!(read("sizeof(char *) * 2"), "(sizeof(char *) * 2)");
    }

    #[test]
    fn literals() {
        let int = |text: &str| match parse(text).unwrap() {
            Expr::Int { value, suffix } => (value, suffix),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(int("42"), (42, String::new()));
        assert_eq!(int("0x_ff_ff"), (0xffff, String::new()));
        assert_eq!(int("0b1010"), (10, String::new()));
        assert_eq!(int("017"), (15, String::new()));
        assert_eq!(int("0o17"), (15, String::new()));
        assert_eq!(int("0"), (0, String::new()));
        assert_eq!(int("1_000_000u64"), (1_000_000, "u64".into()));
        assert_eq!(
            int("18446744073709551615ULL"),
            (u64::MAX as u128, "ULL".into())
        );
        assert_eq!(parse("1.5").unwrap(), Expr::Float(1.5));
        assert_eq!(parse("2e3").unwrap(), Expr::Float(2000.0));
        assert_eq!(parse("1.0e-2f").unwrap(), Expr::Float(0.01));
        assert_eq!(parse("'a'").unwrap(), Expr::Char('a' as u32));
        assert_eq!(parse("'\\n'").unwrap(), Expr::Char(10));
        assert_eq!(parse("'\\x41'").unwrap(), Expr::Char(0x41));
        assert_eq!(parse("'\\0'").unwrap(), Expr::Char(0));
        assert_eq!(parse("'\\101'").unwrap(), Expr::Char(0o101));
        assert_eq!(parse("'\\u{1F600}'").unwrap(), Expr::Char(0x1F600));
        assert_eq!(parse("'é'").unwrap(), Expr::Char('é' as u32));
        assert_eq!(
            parse(r#""tab\there \"q\" \\""#).unwrap(),
            Expr::Str("tab\there \"q\" \\".into())
        );
    }

    #[test]
    fn errors_name_the_cause_and_the_column() {
        assert_eq!(error(""), "expected an expression (column 1)");
        assert_eq!(
            error("a +"),
            "expected a value, found the end of the expression (column 4)"
        );
        assert_eq!(
            error("(a + b"),
            "expected ')' to close '(', found the end of the expression (column 7)"
        );
        assert_eq!(
            error("strlen(s)"),
            "calling functions is not supported: latch never runs code in the target to show \
             a value (column 7)"
        );
        assert!(error("x = 3").starts_with("assignment is not an expression here"));
        assert!(error("x += 3").starts_with("assignment is not an expression here"));
        assert_eq!(
            error("a b"),
            "unexpected 'b' after the expression (column 3)"
        );
        assert_eq!(
            error("a.(b)"),
            "expected a field name after '.', found '(' (column 3)"
        );
        assert_eq!(error("#"), "unexpected character '#' (column 1)");
        assert_eq!(
            error("'ab'"),
            "a character literal holds one character: use \"...\" for a string (column 1)"
        );
        assert_eq!(error("\"open"), "unterminated string literal (column 1)");
        assert_eq!(
            error("12abc"),
            "unknown suffix \"abc\" on a number (column 1)"
        );
        assert_eq!(
            error("09"),
            "not an octal number (a leading 0 means octal, as in C) (column 1)"
        );
        assert_eq!(
            error("99999999999999999999999999999999999999999"),
            "integer literal too large (column 1)"
        );
        assert_eq!(
            error("$"),
            "expected a register name after '$' (as in $rip) (column 1)"
        );
        assert_eq!(
            error("a, b"),
            "one expression at a time: ',' is not supported (column 2)"
        );
        assert_eq!(error("é + #"), "unexpected character '#' (column 5)");
        assert_eq!(read("größe * 2"), "(größe * 2)");
        assert_eq!(
            error("(struct)x"),
            "expected a name after 'struct' (column 8)"
        );
        assert_eq!(
            error("int + 1"),
            "'int' names a type, not a value: write a cast such as (int)x or sizeof(int) (column 1)"
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(error(&deep).starts_with("expression nested too deeply"));
        let negations = format!("{}x", "-".repeat(10_000));
        assert!(error(&negations).starts_with("expression nested too deeply"));
        let indexes = format!("{}0{}", "a[".repeat(10_000), "]".repeat(10_000));
        assert!(error(&indexes).starts_with("expression nested too deeply"));
        // Long flat chains are fine.
        let sum = vec!["1"; 10_000].join(" + ");
        assert!(parse(&sum).is_ok());
    }

    mod random_input {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the user types, the parser answers with an expression or an error.
            #[test]
            fn never_panics(text in "\\PC{0,64}") {
                let _ = parse(&text);
            }

            /// Text made of the language's own pieces reaches deeper into the parser.
            #[test]
            fn never_panics_on_expression_like_text(
                pieces in proptest::collection::vec(
                    prop_oneof![
                        Just("a"), Just("b1"), Just("std"), Just("::"), Just("("), Just(")"),
                        Just("["), Just("]"), Just("."), Just("->"), Just("*"), Just("&"),
                        Just("-"), Just("+"), Just("!"), Just("~"), Just("?"), Just(":"),
                        Just("<<"), Just(">="), Just("&&"), Just("||"), Just("sizeof"),
                        Just("as"), Just("u32"), Just("int"), Just("unsigned"), Just("struct"),
                        Just("const"), Just("0"), Just("0x1f"), Just("1.5"), Just("'c'"),
                        Just("\"s\""), Just("$rip"), Just("uint8"), Just(" "), Just("="),
                        Just(","), Just("'"), Just("\""), Just("0b"), Just("1e"),
                    ],
                    0..24,
                )
            ) {
                let text: String = pieces.concat();
                if let Ok(expr) = parse(&text) {
                    // What was understood can be written back and read again the same.
                    let again = parse_with_types(&expr.to_string(), &|_| false);
                    prop_assert!(again.is_ok(), "{text:?} -> {expr} did not parse again");
                }
            }
        }
    }
}
