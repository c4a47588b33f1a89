//! The architecture as a test: the modules of this crate import each other in one direction.
//!
//! ```text
//!   adapters   http   ui   cli   demo          (http and ui never import each other)
//!                 \   |   /
//!   use cases        app                        (AppState, login, status, settings, ...)
//!                 /   |    \
//!   engines    ingest   notify                  (own dependency structs, no AppState)
//!                 \   |   /
//!   data            store   db
//!                     |
//!   rules          domain   auth   clock   config
//! ```
//!
//! The test reads the sources (every `crate::` path, grouped `use crate::{..}` included) and
//! fails on an arrow that points up or sideways, and on any cycle between top-level modules
//! or between the files of one module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// (module, modules it must not import).
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("http", &["ui", "startup", "cli", "demo"]),
    ("ui", &["http", "startup", "cli", "demo"]),
    ("app", &["http", "ui", "startup", "cli", "demo"]),
    ("ingest", &["http", "ui", "app", "startup", "notify"]),
    ("notify", &["http", "ui", "app", "startup", "ingest"]),
    (
        "store",
        &["http", "ui", "app", "startup", "ingest", "notify"],
    ),
    (
        "domain",
        &[
            "http", "ui", "app", "startup", "ingest", "notify", "store", "db",
        ],
    ),
    (
        "auth",
        &["http", "ui", "app", "startup", "ingest", "notify", "store"],
    ),
];

/// The `crate::<name>` first segments a source text mentions.
fn crate_imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{c}, d}`: the first segment of every item at depth 0.
            let mut depth = 0;
            let mut item_start = true;
            for (i, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        let name: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        out.insert(name);
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

/// Source text before its unit tests (tests may reach anywhere), without comment lines (a doc
/// comment may name any module).
fn code_of(text: &str) -> String {
    let code = text.find("#[cfg(test)]").map_or(text, |i| &text[..i]);
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module -> the top-level modules it imports; and per module, file -> sibling files.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn graphs() -> (Graph, BTreeMap<String, Graph>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut top = Graph::new();
    let mut inner: BTreeMap<String, Graph> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap_or(&file);
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
            .collect();
        let module = parts[0].clone();
        if ["lib", "main", "layering"].contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let text = code_of(&text);
        let text = text.as_str();
        let imports = crate_imports(text);
        let edges = top.entry(module.clone()).or_default();
        edges.extend(imports.iter().filter(|m| **m != module).cloned());
        // Sibling files of one module: `crate::<module>::<file>` and `super::<file>`.
        if parts.len() == 2 && parts[1] != "mod" {
            let file_name = parts[1].clone();
            let prefix = format!("crate::{module}::");
            let mut siblings = BTreeSet::new();
            for pat in [prefix.as_str(), "super::"] {
                let mut rest = text;
                while let Some(at) = rest.find(pat) {
                    rest = &rest[at + pat.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != file_name {
                        siblings.insert(name);
                    }
                }
            }
            inner.entry(module).or_default().insert(file_name, siblings);
        }
    }
    (top, inner)
}

/// A cycle in `graph`, if there is one, as the path that closes it.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
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
        for next in graph.get(node).into_iter().flatten() {
            if graph.contains_key(next)
                && let Some(c) = visit(next, graph, path, done)
            {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_import_parser_sees_grouped_and_nested_paths() {
    let found = crate_imports("use crate::{a::b, c::{d, e}, f};\nlet x = crate::g::h();");
    assert_eq!(found, ["a", "c", "f", "g"].map(str::to_owned).into());
}

#[test]
fn no_module_imports_a_layer_above_it_or_a_sibling_adapter() {
    let (top, _) = graphs();
    let mut wrong = Vec::new();
    for (module, forbidden) in FORBIDDEN {
        for import in top.get(*module).into_iter().flatten() {
            if forbidden.contains(&import.as_str()) {
                wrong.push(format!("{module} imports {import}"));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows against the layering: {wrong:?}");
}

#[test]
fn the_top_level_modules_form_no_cycle() {
    let (top, _) = graphs();
    assert_eq!(find_cycle(&top), None);
}

#[test]
fn the_files_of_each_module_form_no_cycle() {
    let (_, inner) = graphs();
    for (module, graph) in inner {
        assert_eq!(find_cycle(&graph), None, "in {module}");
    }
}
