//! The sizes a newcomer is promised (docs/development.md, "Style"): a module
//! under 500 lines, a function that fits on a screen (60 lines). Counted on
//! rustfmt's layout, which `cargo fmt --check` keeps: a function runs from
//! its `fn` line to the closing brace at the same indentation.

use std::path::{Path, PathBuf};

use super::repo;

const MODULE_LINES: usize = 500;
const FUNCTION_LINES: usize = 60;

/// Every Rust file of the crates and their tests, outside build output.
fn rust_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "testbed", "experiments"] {
        walk(&repo(dir), &mut files);
    }
    files.sort();
    files
}

/// `name` when the line declares a function, after its qualifiers.
fn function_name(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for qualifier in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

/// Whether `line` declares a function at exactly `indent`.
fn is_function_at(line: &str, indent: &str) -> bool {
    line.strip_prefix(indent)
        .is_some_and(|inner| !inner.starts_with(' ') && function_name(inner).is_some())
}

/// The functions of `text` longer than `limit` lines, as (name, first line,
/// length).
fn long_functions(text: &str, limit: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = function_name(line) else {
            continue;
        };
        let indent = &line[..line.len() - line.trim_start().len()];
        let closing = format!("{indent}}}");
        // A declaration without a body (a trait's) meets the next function
        // at its indentation before any closing brace there.
        let end = lines[i + 1..]
            .iter()
            .position(|l| *l == closing || is_function_at(l, indent));
        if let Some(offset) = end.filter(|&o| lines[i + 1 + o] == closing) {
            let length = offset + 2;
            if length > limit {
                long.push((name.to_owned(), i + 1, length));
            }
        }
    }
    long
}

#[test]
fn every_module_stays_under_500_lines() {
    let long: Vec<String> = rust_files()
        .into_iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(&path).ok()?.lines().count();
            (lines > MODULE_LINES).then(|| format!("{}: {lines} lines", path.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split by what they hold:\n{}",
        long.join("\n")
    );
}

#[test]
fn every_function_fits_on_a_screen() {
    let mut long = Vec::new();
    for path in rust_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (name, line, length) in long_functions(&text, FUNCTION_LINES) {
            long.push(format!("{}:{line} {name}: {length} lines", path.display()));
        }
    }
    assert!(
        long.is_empty(),
        "split into named steps:\n{}",
        long.join("\n")
    );
}

/// The counting itself: bodies to their closing brace, qualifiers read
/// past, declarations without a body and nested functions not confused.
#[test]
fn functions_are_measured_from_fn_to_their_closing_brace() {
    let body = |n: usize| "    let x = 1;\n".repeat(n);
    let text = format!(
        "pub async fn long() {{\n{}}}\n\ntrait T {{\n    fn declared(&self);\n    fn provided(&self) {{\n{}    }}\n}}\n\nfn short() {{\n{}}}\n",
        body(4),
        body(1),
        body(1)
    );
    let found = long_functions(&text, 3);
    assert_eq!(found, [("long".to_owned(), 1, 6)]);
    assert_eq!(long_functions(&text, 6), []);
    assert_eq!(function_name("    pub(crate) const fn f<T>()"), Some("f"));
    assert_eq!(function_name("    let fnord = 1;"), None);
}
