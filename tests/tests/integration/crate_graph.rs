//! The architecture's absences, checked (ARCHITECTURE.md, "Invariants"):
//! - `identity-core` depends on no web framework, Lambda runtime, AWS crate or SQLite;
//! - no crate under `functions/` depends on another;
//! - a function's build carries no SQLite, no key generation, no second HTTP stack, no
//!   regex engine and no SSO credential provider (bench/README.md, the bootstrap sizes);
//! - within each crate, the top-level modules form no cycle (`use crate::x` / `crate::x::…`
//!   references between the files of `src/`, read as text).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `cargo tree -p PACKAGE -e normal` as a list of package names (every depth).
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn identity_core_has_no_web_framework_lambda_runtime_aws_crate_or_sqlite() {
    let deps = normal_dependencies("identity-core");
    let forbidden: Vec<&String> = deps
        .iter()
        .filter(|d| {
            d.starts_with("aws-")
                || d.starts_with("aws_")
                || d.starts_with("lambda")
                || [
                    "axum",
                    "hyper",
                    "tower",
                    "rusqlite",
                    "libsqlite3-sys",
                    "tokio",
                ]
                .contains(&d.as_str())
        })
        .collect();
    assert!(forbidden.is_empty(), "identity-core pulls in {forbidden:?}");
    assert!(
        deps.contains("identity-core"),
        "the tree was read: {deps:?}"
    );
}

const FUNCTIONS: [&str; 6] = [
    "sso-acs",
    "oauth-authorize",
    "oauth-token",
    "addon-sso",
    "jwt-grant",
    "key-rotation",
];

#[test]
fn a_functions_build_has_no_sqlite_key_generation_legacy_http_stack_regex_or_sso_provider() {
    for f in FUNCTIONS {
        let deps = normal_dependencies(f);
        assert!(deps.contains("identity-shared"), "{f}: the tree was read");
        assert!(deps.contains("aws-sdk-dynamodb"), "{f}: the tree was read");
        let forbidden: Vec<&String> = deps
            .iter()
            // Making keys is the rotation function's job.
            .filter(|d| !(f == "key-rotation" && *d == "rcgen"))
            .filter(|d| {
                [
                    "rusqlite",
                    "libsqlite3-sys",
                    "rcgen",
                    "ring",
                    "regex",
                    "aws-sdk-sso",
                    "aws-sdk-ssooidc",
                ]
                .contains(&d.as_str())
            })
            .collect();
        assert!(forbidden.is_empty(), "{f} pulls in {forbidden:?}");
        // One HTTP stack: hyper 1 only (cargo tree names a package once per version).
        let tree = {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let out = Command::new(cargo)
                .current_dir(workspace())
                .args(["tree", "--offline", "-p", f, "-e", "normal", "-i", "hyper"])
                .output()
                .expect("cargo tree runs");
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)
        };
        assert!(
            !tree.contains("hyper@0.14") && !tree.contains("hyper v0.14"),
            "{f} has two HTTP stacks: {tree}"
        );
    }
}

#[test]
fn no_function_depends_on_another() {
    for f in FUNCTIONS {
        let deps = normal_dependencies(f);
        let others: Vec<&str> = FUNCTIONS
            .into_iter()
            .filter(|o| *o != f && deps.contains(*o))
            .collect();
        assert!(others.is_empty(), "{f} depends on {others:?}");
    }
}

/// The top-level module a file of `src/` belongs to (`acs.rs` → `acs`, `saml/verify.rs`
/// → `saml`); `None` for the crate root.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "lib" | "main")).then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Edges module → module from `crate::name` mentions (in `use` lists too: `use crate::{a, b}`).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        // Test modules may reach anywhere; the graph is the shipped code's, without comments
        // (doc links name modules they do not use).
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut rest = code.as_str();
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let names: Vec<String> = if let Some(list) = rest.strip_prefix('{') {
                let end = list.find('}').unwrap_or(list.len());
                list[..end]
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap_or("").to_string())
                    .collect()
            } else {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                vec![rest[..end].to_string()]
            };
            for to in names {
                if to != from && modules.contains(&to) {
                    graph.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    graph
}

/// A cycle in the graph, if any (depth-first search).
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_crate_has_a_module_cycle() {
    let mut crates: Vec<PathBuf> = ["core", "shared", "cli", "addon-verify"]
        .iter()
        .map(|c| workspace().join(c).join("src"))
        .collect();
    crates.extend(
        FUNCTIONS
            .iter()
            .map(|f| workspace().join("functions").join(f).join("src")),
    );
    for src in crates {
        let graph = module_graph(&src);
        assert!(
            cycle(&graph).is_none(),
            "{}: module cycle {:?}",
            src.display(),
            cycle(&graph)
        );
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        cycle(&graph),
        Some(vec!["a".into(), "b".into(), "a".into()])
    );
}

/// Every rule in ARCHITECTURE.md's table names the test that checks it: each such name is a
/// test function in the file the row names (under `core/src/`, or the path given), so the
/// table cannot point at a test that was renamed or removed.
#[test]
fn architectures_rule_table_names_tests_that_exist() {
    let root = workspace();
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let table = doc
        .split("| Rule |")
        .nth(1)
        .and_then(|t| t.split("\n\n").next())
        .expect("ARCHITECTURE.md has the rule table");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let mut checked = 0;
    for row in table.lines().skip(2).filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').collect();
        let (decision, tests) = (cells[2], cells[3]);
        let default_file = ticked(decision)
            .into_iter()
            .find(|t| t.ends_with(".rs"))
            .expect("each row names its file");
        let default_path = if default_file.contains('/') && !default_file.starts_with("sso/") {
            root.join(&default_file)
        } else {
            root.join("core/src").join(&default_file)
        };
        // A test name followed by `(path)` lives there; otherwise in the row's file.
        for part in tests.split([',', ';']) {
            let names = ticked(part);
            let Some(name) = names.first().filter(|n| !n.ends_with(".rs")) else {
                continue;
            };
            let path = match names.get(1) {
                Some(f) if f.contains('/') && !f.starts_with("sso/") => root.join(f),
                Some(f) => root.join("core/src").join(f),
                None => default_path.clone(),
            };
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                text.contains(&format!("fn {name}(")),
                "ARCHITECTURE.md names {name} in {}, which has no such test",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} tests named");
}
