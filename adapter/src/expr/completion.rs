//! What the debug console completes: the word being typed, and whether it follows a
//! `.` or `->` (then it is a field of the value before it) or stands alone (a name in
//! scope). Pure text, so it is tested without a process; the symbols side supplies the
//! names and the fields.

/// The text before the cursor, cut where completion needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionContext {
    /// The part of a name already typed (possibly empty).
    pub partial: String,
    /// Where `partial` starts, in bytes from the start of the text.
    pub partial_start: usize,
    /// For a field: the expression whose fields complete it (`list->next` of
    /// `list->next->va`).
    pub fields_of: Option<String>,
}

/// Splits `before_cursor` into the expression whose fields are wanted (if any) and the
/// partial name being typed.
pub fn context(before_cursor: &str) -> CompletionContext {
    let partial_start = before_cursor
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map_or(before_cursor.len(), |(i, _)| i);
    let partial = before_cursor[partial_start..].to_string();
    let head = &before_cursor[..partial_start];
    let trimmed = head.trim_end();
    let base_end = if let Some(rest) = trimmed.strip_suffix("->") {
        Some(rest.len())
    } else {
        trimmed.strip_suffix('.').map(str::len)
    };
    let fields_of = base_end
        .map(|end| postfix_operand(&head[..end]))
        .filter(|base| !base.is_empty());
    CompletionContext {
        partial,
        partial_start,
        fields_of,
    }
}

/// The operand a `.` or `->` at the end of `text` applies to: the longest tail made of
/// names, `.`, `->`, `::` and balanced brackets (`table[i + 1].where`, `(*p).next`).
fn postfix_operand(text: &str) -> String {
    let bytes = text.trim_end().as_bytes();
    let mut start = bytes.len();
    let mut depth = 0usize;
    while start > 0 {
        let c = bytes[start - 1];
        match c {
            b')' | b']' => depth += 1,
            b'(' | b'[' => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            b'>' if depth == 0 && start >= 2 && bytes[start - 2] == b'-' => {
                start -= 2;
                continue;
            }
            b':' if depth == 0 && start >= 2 && bytes[start - 2] == b':' => {
                start -= 2;
                continue;
            }
            _ if depth > 0 => {}
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c >= 0x80 => {}
            _ => break,
        }
        start -= 1;
    }
    String::from_utf8_lossy(&bytes[start..]).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> (String, Option<String>, usize) {
        let c = context(text);
        (c.partial, c.fields_of, c.partial_start)
    }

    #[test]
    fn a_lone_word_completes_a_name_in_scope() {
        assert_eq!(split("cou"), ("cou".into(), None, 0));
        assert_eq!(split("a + cou"), ("cou".into(), None, 4));
        assert_eq!(split(""), ("".into(), None, 0));
        assert_eq!(split("x * "), ("".into(), None, 4));
    }

    #[test]
    fn after_a_dot_or_an_arrow_the_fields_of_the_operand() {
        assert_eq!(split("head."), ("".into(), Some("head".into()), 5));
        assert_eq!(split("head.na"), ("na".into(), Some("head".into()), 5));
        assert_eq!(
            split("list->next->va"),
            ("va".into(), Some("list->next".into()), 12)
        );
        assert_eq!(
            split("1 + table[i + 1].where.x"),
            ("x".into(), Some("table[i + 1].where".into()), 23)
        );
        assert_eq!(split("(*p).n"), ("n".into(), Some("(*p)".into()), 5));
        assert_eq!(split("f(a, b."), ("".into(), Some("b".into()), 7));
        assert_eq!(split("ns::x."), ("".into(), Some("ns::x".into()), 6));
    }

    proptest::proptest! {
        #[test]
        fn any_text_splits_without_panicking(text in "\\PC{0,40}") {
            let c = context(&text);
            proptest::prop_assert!(text.is_char_boundary(c.partial_start));
        }
    }
}
