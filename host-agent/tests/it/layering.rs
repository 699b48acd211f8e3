//! The agent's modules depend on each other in one direction: read from the sources, the
//! graph of `crate::<module>` references outside tests has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module of `src/` with the modules its non-test code names through `crate::`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && !["lib", "main"].contains(&name) {
            modules.insert(name.to_owned(), std::fs::read_to_string(&path).unwrap());
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, text)| {
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            (name.clone(), references(code, &names, name))
        })
        .collect()
}

/// The modules `code` names: `crate::x`, and each first name in `crate::{x, y::z}`.
fn references(code: &str, names: &BTreeSet<String>, this: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let words: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                group.split(',').map(str::trim).collect()
            }
            None => vec![rest],
        };
        for word in words {
            let first: String = word
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if names.contains(&first) && first != this {
                found.insert(first);
            }
        }
    }
    found
}

/// A cycle in `graph`, as the modules on it, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut on = path[start..].to_vec();
            on.push(node.to_owned());
            return Some(on);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_agents_modules_depend_on_each_other_one_way() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.len() > 20, "read {} modules", graph.len());
    assert!(graph["fill"].contains("host"), "{:?}", graph["fill"]);
    if let Some(on) = cycle(&graph) {
        panic!(
            "the modules import each other in a circle: {}",
            on.join(" → ")
        );
    }
}

#[test]
fn a_circle_is_found() {
    let names: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", "use crate::{b::X, error};"),
        ("b", "fn f() { crate::c::g() }"),
        ("c", "use crate::a;\n#[cfg(test)]\nuse crate::b;"),
    ]
    .into_iter()
    .map(|(m, code)| {
        let code = code.split("#[cfg(test)]").next().unwrap();
        (m.to_owned(), references(code, &names, m))
    })
    .collect();
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    let mut broken = graph.clone();
    broken.get_mut("c").unwrap().clear();
    assert_eq!(cycle(&broken), None);
}
