//! The documents a newcomer reads first name only what exists: every path in
//! `docs/architecture.md` and README.md (`foo/bar.rs`, `a/{b,c}.rs`, `ui/src/pages/*.tsx`) is in
//! the tree.

use std::path::Path;

/// The repository's root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ is in the repository")
}

/// What may name a path in a Markdown text: its `code spans`, and the words of its fenced
/// blocks (the pictures name files too).
fn candidates(text: &str) -> Vec<&str> {
    let mut prose = Vec::new();
    let mut words = Vec::new();
    for (i, part) in text.split("```").enumerate() {
        match i % 2 {
            0 => prose.push(part),
            _ => words.extend(part.split_whitespace()),
        }
    }
    let spans = prose
        .into_iter()
        .flat_map(|p| p.split('`').skip(1).step_by(2));
    words.retain(|w| w.contains('/'));
    spans.chain(words).collect()
}

/// Extensions of the files the documents point at.
const EXTENSIONS: [&str; 15] = [
    "rs", "md", "ts", "tsx", "json", "yaml", "yml", "toml", "sh", "proto", "py", "csv", "svg",
    "sql", "cql",
];

/// The paths a code span names, braces expanded (`a/{b,c}.rs` → `a/b.rs`, `a/c.rs`); none
/// when it is no path (a route, a URL, a content type, a Rust path).
fn paths(span: &str) -> Vec<String> {
    let span = span.trim().trim_end_matches(['.', ',', ';', ':']);
    let is_path = span.contains('/')
        && !span.starts_with('/')
        && !span.contains("://")
        && !span.contains("::")
        && !span.contains([' ', '\n', '<', '>', '=', '?', '@', '$', '"', '(', ')'])
        && {
            let first = span.split('/').next().unwrap_or("");
            let named_file = span
                .rsplit_once('.')
                .is_some_and(|(_, ext)| EXTENSIONS.contains(&ext));
            root().join(first).is_dir() || named_file
        };
    if !is_path {
        return Vec::new();
    }
    match (span.find('{'), span.find('}')) {
        (Some(open), Some(close)) if open < close => span[open + 1..close]
            .split(',')
            .flat_map(|alt| paths(&format!("{}{alt}{}", &span[..open], &span[close + 1..])))
            .collect(),
        _ => vec![span.to_owned()],
    }
}

/// What a build or a run makes: named by the documents, absent from a fresh clone.
const BUILT: [&str; 4] = [
    "ui/dist",
    "target/",
    "ui/e2e/screenshots",
    "./flowwatch-data",
];

/// Whether `path` (relative to the root, possibly with one `*` in its last part) exists, or
/// is what a build makes.
fn exists(path: &str) -> bool {
    if BUILT.iter().any(|b| path.starts_with(b)) {
        return true;
    }
    let full = root().join(path.trim_end_matches('/'));
    let Some((prefix, suffix)) = path.rsplit('/').next().and_then(|l| l.split_once('*')) else {
        return full.exists();
    };
    let dir = full.parent().expect("a path with a directory");
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
    })
}

#[test]
fn spans_name_paths_and_nothing_else() {
    assert_eq!(
        paths("storage/tests/{embedded,postgres}.rs"),
        ["storage/tests/embedded.rs", "storage/tests/postgres.rs"]
    );
    assert_eq!(paths("ui/src/pages/*.tsx"), ["ui/src/pages/*.tsx"]);
    assert_eq!(
        paths("nowhere/file.rs"),
        ["nowhere/file.rs"],
        "a file anywhere"
    );
    for not_a_path in [
        "/api/v1/status",
        "text/csv",
        "postgres://user@host/db",
        "flowwatch_core::event",
        "flowwatch.alarms.<country>",
        "FLOWWATCH_RUN__DATA_DIR",
    ] {
        assert!(paths(not_a_path).is_empty(), "{not_a_path}");
    }
    assert!(exists("ui/src/pages/*.tsx"));
    assert!(!exists("ui/src/pages/*.nothing"));
    assert!(!exists("core/src/nothing.rs"));
}

#[test]
fn the_architecture_and_the_readme_name_only_paths_that_exist() {
    for doc in ["docs/architecture.md", "README.md"] {
        let text = std::fs::read_to_string(root().join(doc)).expect("the document");
        let missing: Vec<String> = candidates(&text)
            .into_iter()
            .flat_map(paths)
            .filter(|p| !exists(p))
            .collect();
        assert!(
            missing.is_empty(),
            "{doc} names paths that do not exist: {missing:?}"
        );
    }
}
