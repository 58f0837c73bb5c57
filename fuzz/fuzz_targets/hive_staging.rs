//! Columns, separators and formats from definitions become HiveQL when HiveActivity stages its
//! data nodes as tables: whatever a definition says, the checks must not panic, and what they
//! accept must be safe to put in the generated statements (no quote, backtick or statement
//! break in a column; a separator literal that cannot close its quotes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::runtime::support::{hive_column, hive_format_problem, hive_separator};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\u{1f}');
    let format_type = parts.next().unwrap_or("");
    let separator = parts.next().unwrap_or("");
    let columns: Vec<String> = parts.map(str::to_string).collect();

    for column in &columns {
        if let Ok((name, kind)) = hive_column(column) {
            assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            assert!(!kind.is_empty());
            assert!(
                !kind.contains(['\'', '`', ';', '"', '\\', '-', '/', '\n', '\r']),
                "{kind:?}"
            );
        }
    }
    if let Ok(literal) = hive_separator(separator) {
        assert!(literal.is_ascii());
        let mut characters = literal.chars();
        while let Some(character) = characters.next() {
            assert_ne!(character, '\'', "{literal:?}");
            if character == '\\' {
                assert!(characters.next().is_some(), "{literal:?}");
            }
        }
    }
    let field = |key: &str| (key == "columnSeparator").then(|| separator.to_string());
    for output in [false, true] {
        if hive_format_problem(format_type, &field, &columns, output).is_none() {
            // Accepted: every column and the separator passed their own checks.
            assert!(!columns.is_empty());
            assert!(columns.iter().all(|column| hive_column(column).is_ok()));
        }
    }
});
