//! A guard over the source tree: SQL text is always a static string.
//!
//! sqlx 0.9 only accepts `&'static str` (or [`sqlx::AssertSqlSafe`]) as
//! query text, so values cannot be formatted into SQL by accident; this test
//! keeps the escape hatch out of production code.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn production_code_never_asserts_sql_safe() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    let needle = ["Assert", "SqlSafe"].concat();
    let offenders: Vec<_> = files
        .iter()
        .filter(|f| {
            let p = f.to_string_lossy();
            // Test code may build SQL from generated identifiers (CREATE DATABASE);
            // `in_list` puts numbered placeholders into static templates.
            !p.contains("/tests/")
                && !p.contains("basalt-testkit")
                && !p.ends_with("basalt-platform/src/db/in_list.rs")
        })
        .filter(|f| {
            // Unit tests at the end of a file are test code too.
            let source = std::fs::read_to_string(f).expect("utf-8");
            let production = source.split("#[cfg(test)]").next().unwrap_or_default();
            production.contains(&needle)
        })
        .collect();
    assert!(files.len() > 10, "walked the tree: {}", files.len());
    assert!(offenders.is_empty(), "dynamic SQL in {offenders:?}");
}
