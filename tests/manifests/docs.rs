//! The docs name the tree as it is: the layout and every path they name.

use super::*;

/// docs/development.md's layout matches the tree: every path it names
/// exists, and every file and folder of `src/` is named.
#[test]
pub fn the_layout_in_the_docs_matches_the_tree() {
    let doc = std::fs::read_to_string(repo("docs/development.md")).unwrap();
    let start = doc.find("## Layout").expect("a Layout section");
    let block = &doc[start..];
    let block = &block[block.find("```\n").unwrap() + 4..];
    let block = &block[..block.find("```").unwrap()];
    let mut parent = String::new();
    let mut named = Vec::new();
    for line in block.lines() {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        if line.starts_with("                 ") {
            continue; // a continuation of the previous description
        }
        let path = if line.starts_with("  ") {
            format!("{parent}{first}")
        } else {
            if first.ends_with('/') {
                parent = first.to_owned();
            }
            first.to_owned()
        };
        assert!(
            repo(&path).exists(),
            "docs/development.md names {path}, which does not exist"
        );
        named.push(path);
    }
    for entry in std::fs::read_dir(repo("src")).unwrap() {
        let entry = entry.unwrap();
        let mut path = format!("src/{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            path.push('/');
        }
        assert!(
            named.contains(&path),
            "{path} is missing from the layout in docs/development.md"
        );
    }
}

/// ARCHITECTURE.md names files and folders as it follows one poll; each
/// must exist, or the walk-through has gone stale.
#[test]
pub fn every_path_the_architecture_names_exists() {
    let text = std::fs::read_to_string(repo("ARCHITECTURE.md")).unwrap();
    let mut named = 0;
    for quoted in text.split('`').skip(1).step_by(2) {
        if quoted.starts_with("src/") || quoted.starts_with("tests/") {
            assert!(
                repo(quoted).exists(),
                "ARCHITECTURE.md names {quoted}, which does not exist"
            );
            named += 1;
        }
    }
    assert!(
        named >= 20,
        "only {named} paths found: did the quoting change?"
    );
}
