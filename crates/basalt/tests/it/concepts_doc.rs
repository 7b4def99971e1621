//! `docs/concepts.md` must stay true: every test it cites exists, and every
//! file and script it names is in the tree.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn all_rust_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            all_rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).expect("utf-8"));
        }
    }
}

/// The backticked spans of a table cell.
fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_cited_test_and_file_exists() {
    let root = repo_root();
    let doc = std::fs::read_to_string(root.join("docs/concepts.md")).expect("docs/concepts.md");
    let mut sources = String::new();
    all_rust_sources(&root.join("crates"), &mut sources);

    let rows: Vec<Vec<&str>> = doc
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("| ---") && !l.starts_with("| concept"))
        .map(|l| l.trim_matches('|').split(" | ").collect())
        .collect();
    assert!(
        rows.len() >= 15,
        "expected the concept rows, found {}",
        rows.len()
    );

    let mut cited_tests = 0;
    for row in &rows {
        assert_eq!(row.len(), 3, "a row has concept | code | proof: {row:?}");
        // A short path is relative to the folder of the full path before it
        // in the same cell (or one of that folder's parents), as read aloud.
        let mut base: Option<PathBuf> = None;
        for span in code_spans(row[1]) {
            let path = span.split_whitespace().next().unwrap_or_default();
            if !(path.ends_with(".rs") || path.ends_with('/') || path.ends_with(".txt")) {
                continue;
            }
            let mut candidates = vec![
                root.join(path),
                root.join("crates/basalt-platform/src").join(path),
            ];
            if let Some(base) = &base {
                candidates.extend(
                    base.ancestors()
                        .take_while(|a| a.starts_with(&root))
                        .map(|a| a.join(path)),
                );
            }
            let found = candidates.into_iter().find(|p| p.exists());
            assert!(
                found.is_some(),
                "file named in concepts.md is missing: {path}"
            );
            if path.starts_with("crates/") {
                base = found.and_then(|f| f.parent().map(Path::to_path_buf));
            }
        }
        for span in code_spans(row[2]) {
            // A proof by script (`bash scripts/deploy/manifests.sh`): the script exists.
            let mut words = span.split_whitespace();
            if words.any(|w| w == "bash") {
                let script = words.next().unwrap_or_default();
                assert!(
                    root.join(script).is_file(),
                    "script named in concepts.md is missing: {script}"
                );
                continue;
            }
            if let Some((_, name)) = span.rsplit_once("::") {
                if name == "*" {
                    continue;
                }
                assert!(
                    sources.contains(&format!("fn {name}(")),
                    "test cited in concepts.md is missing: {span}"
                );
                cited_tests += 1;
            }
        }
    }
    assert!(cited_tests >= 30, "only {cited_tests} tests cited");
}
