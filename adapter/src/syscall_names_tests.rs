//! Checks of the generated table (kept apart so that regenerating it leaves them be).

use super::*;

#[test]
fn common_blocking_calls_have_names() {
    assert_eq!(name(288), Some("accept4"));
    assert_eq!(name(128), Some("rt_sigtimedwait"));
    assert_eq!(name(130), Some("rt_sigsuspend"));
    assert_eq!(name(219), Some("restart_syscall"));
    assert_eq!(name(202), Some("futex"));
    assert_eq!(name(-1), None);
    assert_eq!(name(100_000), None);
}

#[test]
fn the_table_is_sorted_without_duplicates() {
    assert!(X86_64.windows(2).all(|w| w[0].0 < w[1].0));
}

/// The generated table says what the kernel's header says, where the header is
/// installed (Debian's linux-libc-dev). A newer header may add calls: then regenerate.
#[test]
fn the_table_is_the_kernel_header() {
    let header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
    let Ok(text) = std::fs::read_to_string(header) else {
        crate::test_skip::skip_or_fail(&format!(
            "{header} is not installed (apt-get install linux-libc-dev): \
             the syscall table is not checked"
        ));
        return;
    };
    let mut from_header: Vec<(i64, String)> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next()? == "#define").then_some(())?;
            let name = fields.next()?.strip_prefix("__NR_")?;
            Some((fields.next()?.parse().ok()?, name.to_string()))
        })
        .collect();
    from_header.sort();
    let generated: Vec<(i64, String)> = X86_64
        .iter()
        .map(|(nr, name)| (*nr, name.to_string()))
        .collect();
    assert_eq!(
        generated, from_header,
        "adapter/src/syscall_names.rs differs from {header}: regenerate it with \
         adapter/src/syscall_names.sh"
    );
}
