//! The core's modules in layers (docs/design/architecture.md): each module may import only
//! from its own layer or the layers below, and no two modules import each other, however
//! indirectly. This test reads every `crate::…` path in `src/` and fails on an import that
//! goes up, or on a cycle, naming the file and the import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. A module is a file or folder directly under `src/`.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &[
            "cancel",
            "dialect",
            "distinct",
            "duration",
            "fingerprint",
            "http_client",
            "redact",
            "size",
            "suggest",
            "template",
            "text",
            "time",
            "value",
        ],
    ),
    ("errors", &["diagnostic", "error", "read", "write"]),
    ("config", &["rule", "project", "schema"]),
    ("sql", &["compile", "promql_text", "sql_text"]),
    ("lint", &["lint"]),
    ("project", &["load", "rule_files"]),
    ("model", &["finding", "outcome"]),
    ("source", &["source"]),
    ("plugin", &["plugin"]),
    // Rules that read two sources at once.
    ("reconcile", &["cache", "reconcile"]),
    ("store", &["store"]),
    ("engine", &["engine"]),
    ("validate", &["validate"]),
    ("check", &["check"]),
    ("repair", &["repair"]),
    // Scheduled audits: what a run means over time (metrics, alerts, reports), then the
    // service that runs audits on a schedule and tells people (webhooks).
    ("audit", &["alert", "metrics", "report"]),
    ("serve", &["notify", "serve"]),
];

/// `crate::Error` and `crate::Result` are the `error` module's, re-exported at the root.
const ROOT_ITEMS: &[(&str, &str)] = &[("Error", "error"), ("Result", "error")];

#[test]
fn core_modules_import_only_downward_and_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    let mut sources = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = top_module(relative);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read a source file");
        sources.push((relative.display().to_string(), module, text));
    }
    let problems = check(&sources);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Detection is read-only by construction: Redis detectors get `source::RedisConnection`,
/// which sends only read commands. The connection that may write (`redis_session`) is for
/// repairs: no module but `repair` (and `source`, which defines it) may name it.
#[test]
fn only_repairs_open_a_redis_session_that_may_write() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut named = Vec::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = top_module(relative);
        let text = std::fs::read_to_string(&file).expect("read a source file");
        if module != "repair" && module != "source" && text.contains("redis_session") {
            named.push(relative.display().to_string());
        }
        if module == "source"
            && relative != Path::new("source/mod.rs")
            && relative != Path::new("source/redis.rs")
            && text.contains("redis::session")
        {
            named.push(relative.display().to_string());
        }
    }
    assert!(
        named.is_empty(),
        "only `repair` may open a writing Redis session: {named:?}"
    );
    // The test looks at the name it guards.
    let source = std::fs::read_to_string(src.join("source/mod.rs")).expect("source/mod.rs");
    assert!(source.contains("pub mod redis_session"));
}

#[test]
fn every_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layer_of();
    let missing: BTreeSet<String> = rust_files(&src)
        .iter()
        .map(|file| top_module(file.strip_prefix(&src).expect("under src")))
        .filter(|module| module != "lib" && !layers.contains_key(module.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a layer in LAYERS (and docs/design/architecture.md): {missing:?}"
    );
}

/// docs/design/architecture.md draws the layers: each of them on a line of its picture that
/// starts with its name, with its modules on that line or the indented lines below it.
#[test]
fn the_architecture_picture_shows_every_layer() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/design/architecture.md");
    let doc = std::fs::read_to_string(doc).expect("read docs/design/architecture.md");
    let lines: Vec<&str> = doc.lines().collect();
    let drawn = |layer: &str, modules: &[&str]| {
        (0..lines.len()).any(|at| {
            if lines[at].split_whitespace().next() != Some(layer) {
                return false;
            }
            let indented = lines[at + 1..].iter().take_while(|l| l.starts_with(' '));
            let text = std::iter::once(&lines[at]).chain(indented);
            let words: BTreeSet<&str> = text.flat_map(|l| l.split_whitespace()).collect();
            modules.iter().all(|m| words.contains(m))
        })
    };
    let missing: Vec<&str> = LAYERS
        .iter()
        .filter(|(layer, modules)| !drawn(layer, modules))
        .map(|(layer, _)| *layer)
        .collect();
    assert!(
        missing.is_empty(),
        "layers missing from the picture in docs/design/architecture.md: {missing:?}"
    );
}

/// The checker catches what it is for: an upward import and a cycle.
#[test]
fn an_upward_import_and_a_cycle_are_caught() {
    let upward = [(
        "text.rs".to_owned(),
        "text".to_owned(),
        "use crate::engine::Event;\n".to_owned(),
    )];
    let problems = check(&upward);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("text.rs: `text` (base) imports `engine` (engine)"));

    let grouped = [(
        "value.rs".to_owned(),
        "value".to_owned(),
        "use crate::{text::escape, store::{Store, RunId}};\n".to_owned(),
    )];
    let problems = check(&grouped);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("imports `store`"), "{problems:?}");

    let cycle = [
        (
            "size.rs".to_owned(),
            "size".to_owned(),
            "fn f() { crate::time::now(); }\n".to_owned(),
        ),
        (
            "time.rs".to_owned(),
            "time".to_owned(),
            "use crate::size::ByteSize;\n".to_owned(),
        ),
    ];
    let problems = check(&cycle);
    assert!(problems.iter().any(|p| p.contains("cycle")), "{problems:?}");

    // Comments and doc links are not imports.
    let comment = [(
        "text.rs".to_owned(),
        "text".to_owned(),
        "/// See [`crate::engine`].\n// crate::store\nfn f() {}\n".to_owned(),
    )];
    assert!(check(&comment).is_empty());
}

/// Problems in `sources` (file, its module, its text): upward imports and cycles.
fn check(sources: &[(String, String, String)]) -> Vec<String> {
    let layers = layer_of();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, module, text) in sources {
        let Some(&(own_rank, own_layer)) = layers.get(module.as_str()) else {
            problems.push(format!("{file}: module `{module}` has no layer"));
            continue;
        };
        for imported in imports(text) {
            if imported == *module {
                continue;
            }
            let Some(&(rank, layer)) = layers.get(imported.as_str()) else {
                problems.push(format!("{file}: imports `{imported}`, which has no layer"));
                continue;
            };
            if rank > own_rank {
                problems.push(format!(
                    "{file}: `{module}` ({own_layer}) imports `{imported}` ({layer}), a layer above it"
                ));
            }
            edges.entry(module.clone()).or_default().insert(imported);
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        problems.push(format!("a cycle of imports: {}", cycle.join(" → ")));
    }
    problems
}

/// Module name → (rank of its layer, layer name).
fn layer_of() -> BTreeMap<&'static str, (usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(rank, (layer, modules))| modules.iter().map(move |m| (*m, (rank, *layer))))
        .collect()
}

/// The top-level modules `text` names through `crate::` paths, outside comments.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `trueup_core::`, not this crate's path
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = closing_brace(group);
            for item in split_top_level(&group[..end]) {
                found.extend(first_segment(item.trim()));
            }
        } else {
            found.extend(first_segment(rest));
        }
    }
    found
}

/// The module a path's first segment names (`engine::Event` → `engine`, `Error` → `error`).
fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() || name == "self" {
        return None;
    }
    Some(
        ROOT_ITEMS
            .iter()
            .find(|(item, _)| *item == name)
            .map_or(name, |(_, module)| (*module).to_owned()),
    )
}

fn closing_brace(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

fn top_module(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .expect("a path under src")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.strip_suffix(".rs").unwrap_or(&first).to_owned()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}
