//! Logpoint messages: text with expressions in braces, `x is {x}, next {p->next}`, as
//! VS Code and the DAP specification describe `logMessage`. `{{` and `}}` write a brace.
//!
//! Pure: parsing takes the expression parser as an argument, and rendering the function
//! that turns an expression into text, so that the ptrace thread can render a message
//! with the values it reads where the breakpoint hit.

use super::{Expr, ParseError};

/// One piece of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    /// An expression, with the text the user wrote for it (shown in errors).
    Expression {
        text: String,
        expr: Expr,
    },
}

/// A parsed logpoint message.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

impl Template {
    /// Reads `message`, parsing each `{...}` with `parse`. An unclosed or empty brace,
    /// or an expression that does not parse, is refused with where and why.
    pub fn parse(
        message: &str,
        parse: impl Fn(&str) -> Result<Expr, ParseError>,
    ) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = message.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let column = message[..at].chars().count() + 1;
                    let Some(end) = message[at + 1..].find('}') else {
                        return Err(format!(
                            "the `{{` at column {column} of the log message has no closing \
                             `}}` (write `{{{{` for a brace)"
                        ));
                    };
                    let inner = &message[at + 1..at + 1 + end];
                    if inner.trim().is_empty() {
                        return Err(format!(
                            "the `{{}}` at column {column} of the log message holds no \
                             expression (write `{{{{}}}}` for braces)"
                        ));
                    }
                    let expr = parse(inner.trim()).map_err(|err| {
                        format!("in the log message's `{{{inner}}}` at column {column}: {err}")
                    })?;
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Expression {
                        text: inner.trim().to_string(),
                        expr,
                    });
                    while chars.peek().is_some_and(|(i, _)| *i <= at + 1 + end) {
                        chars.next();
                    }
                }
                '}' => {
                    let column = message[..at].chars().count() + 1;
                    return Err(format!(
                        "the `}}` at column {column} of the log message closes nothing \
                         (write `}}}}` for a brace)"
                    ));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// Whether the message has expressions to evaluate at all.
    pub fn has_expressions(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Expression { .. }))
    }

    /// The message with each expression replaced by what `show` makes of it.
    pub fn render(&self, mut show: impl FnMut(&str, &Expr) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Expression { text, expr } => out.push_str(&show(text, expr)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(message: &str) -> Result<Template, String> {
        Template::parse(message, super::super::parse)
    }

    fn rendered(message: &str) -> String {
        parse(message)
            .unwrap()
            .render(|text, _| format!("<{text}>"))
    }

    #[test]
    fn expressions_in_braces_are_replaced_and_the_rest_is_kept() {
        assert_eq!(rendered("x is {x}"), "x is <x>");
        assert_eq!(rendered("{a}{b}"), "<a><b>");
        assert_eq!(rendered("{ p->next } done"), "<p->next> done");
        assert_eq!(rendered("no braces"), "no braces");
        assert_eq!(rendered("naïve {é} ok"), "naïve <é> ok");
        assert!(!parse("plain").unwrap().has_expressions());
        assert!(parse("{x}").unwrap().has_expressions());
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(rendered("{{x}} is {x}"), "{x} is <x>");
        assert_eq!(rendered("}}{{"), "}{");
    }

    #[test]
    fn bad_braces_and_bad_expressions_say_where() {
        let unclosed = parse("value {x").unwrap_err();
        assert!(
            unclosed.contains("column 7") && unclosed.contains("no closing"),
            "{unclosed}"
        );
        let empty = parse("a {} b").unwrap_err();
        assert!(empty.contains("holds no expression"), "{empty}");
        let stray = parse("a } b").unwrap_err();
        assert!(stray.contains("closes nothing"), "{stray}");
        let bad = parse("v={x +}").unwrap_err();
        assert!(bad.contains("`{x +}`") && bad.contains("column 3"), "{bad}");
    }

    proptest::proptest! {
        #[test]
        fn any_message_parses_or_is_refused_without_panicking(message in "\\PC{0,40}") {
            if let Ok(template) = parse(&message) {
                template.render(|text, _| text.to_string());
            }
        }
    }
}
