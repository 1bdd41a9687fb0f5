//! English for counts in what users read: "1 thread", "2 threads".

/// `n` and the noun, singular for one: `counted(1, "thread", "threads")` is "1 thread".
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(counted(1, "thread", "threads"), "1 thread");
        assert_eq!(counted(0, "thread", "threads"), "0 threads");
        assert_eq!(counted(2, "process", "processes"), "2 processes");
    }
}
