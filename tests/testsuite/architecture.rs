//! The source tree's shape, checked: the modules of `src/` import one
//! another without a cycle, and each stage folder uses only the stages
//! below it (the order in lib.rs and the README's "How it is built").
//! Read from the source text, so it needs no tool beyond the test itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, lowest first. A module may use a module of a
/// lower layer, or one in its own folder; never one of its own layer or
/// above.
const LAYERS: &[&[&str]] = &[
    &["yaml", "units", "secret", "terminal"],
    &["model"],
    &["pipeline"],
    &["plan"],
    &["manifests", "report"],
    &["sink", "forge", "source"],
    &["cli"],
    &["error"],
    &["commands"],
];

fn layer_of(top: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| panic!("src/{top} is in no layer of tests/testsuite/architecture.rs"))
}

/// Module path (`sink::git::tree`) → file, for every file under `src/`
/// but the crate roots.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut p = prefix.to_vec();
                if name != "mod" {
                    p.push(name);
                }
                if !p.is_empty() && !(p.len() == 1 && (p[0] == "lib" || p[0] == "main")) {
                    out.insert(p.join("::"), path);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The longest known module that `path` (`a::b::C`) starts with.
fn resolve(path: &str, known: &BTreeMap<String, PathBuf>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| known.contains_key(m))
}

/// `a::b` paths after `prefix` in `text` (identifiers and `::` only).
fn paths_after<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = String> + 'a {
    text.match_indices(prefix).filter_map(move |(at, _)| {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let rest = &text[at + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches(':');
        (!path.is_empty()).then(|| path.to_owned())
    })
}

/// Module → the modules it uses: `crate::` paths, `super::` paths, and
/// paths through its own children (`use child::X`, `child::f()`).
fn edges(known: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, file) in known {
        let text: String = std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let mut uses = BTreeSet::new();
        for p in paths_after(&text, "crate::") {
            uses.extend(resolve(&p, known));
        }
        for p in paths_after(&text, "super::") {
            let full = if parent.is_empty() {
                p
            } else {
                format!("{parent}::{p}")
            };
            uses.extend(resolve(&full, known).or_else(|| Some(parent.to_owned())));
        }
        for child in known.keys().filter_map(|k| {
            k.strip_prefix(&format!("{module}::"))
                .filter(|rest| !rest.contains("::"))
        }) {
            if paths_after(&text, &format!("{child}::")).next().is_some() {
                uses.insert(format!("{module}::{child}"));
            }
        }
        uses.remove(module);
        uses.remove("");
        graph.insert(module.clone(), uses);
    }
    graph
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.graph[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_module_imports_form_a_cycle() {
    let known = modules(&src());
    assert!(known.len() > 40, "the walk found the modules: {known:?}");
    let graph = edges(&known);
    // The reader finds the edges it should: one known edge of each kind.
    assert!(graph["commands::render"].contains("plan::guard"));
    assert!(graph["forge::github"].contains("forge::proposal"));
    assert!(graph["sink::git"].contains("sink::git::tree"));
    let found = cycles(&graph);
    assert!(found.is_empty(), "import cycles: {found:#?}");
}

#[test]
fn stages_use_only_the_stages_below_them() {
    let known = modules(&src());
    let mut climbing = Vec::new();
    for (from, uses) in edges(&known) {
        let top = from.split("::").next().unwrap();
        for to in uses {
            let target = to.split("::").next().unwrap();
            if target != top && layer_of(target) >= layer_of(top) {
                climbing.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        climbing.is_empty(),
        "imports that climb a layer: {climbing:#?}"
    );
}

/// The reader and the cycle finder themselves, on a made-up graph.
#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("a".into(), ["b".to_string()].into());
    graph.insert("b".into(), ["c".to_string()].into());
    graph.insert("c".into(), ["a".to_string()].into());
    graph.insert("d".into(), ["a".to_string()].into());
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "c"]]);
    let paths: Vec<String> =
        paths_after("use crate::x::{y}; a_crate::z; crate::w()", "crate::").collect();
    assert_eq!(paths, ["x", "w"]);
}
