//! The crate layers of `docs/architecture.md`, enforced.
//!
//! The architecture doc keeps, between the markers `<!-- layers:begin -->`
//! and `<!-- layers:end -->`, a table of every workspace crate and the kraft
//! crates it may depend on. This test reads that table and the workspace as
//! `cargo metadata` describes it, and fails when a crate's `Cargo.toml`
//! depends (normal or build dependency) on a kraft crate the table does not
//! allow, or when a crate is missing from the table. Dev-dependencies are
//! free: tests may reach any layer.
//!
//! So the doc is the rule and the test its guard: to add a dependency
//! between crates, change the table first, and say why in the same commit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BEGIN: &str = "<!-- layers:begin -->";
const END: &str = "<!-- layers:end -->";

/// Every crate in the table, with the kraft crates it may import.
fn allowed_layers(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let start = doc.find(BEGIN).expect("the layers table's begin marker") + BEGIN.len();
    let end = doc.find(END).expect("the layers table's end marker");
    let mut layers = BTreeMap::new();
    for line in doc[start..end].lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        if cells.len() < 2 {
            continue;
        }
        let names = |cell: &str| -> Vec<String> {
            cell.split(',')
                .map(|s| s.trim().trim_matches('`').trim())
                .filter(|s| s.starts_with("kraft"))
                .map(str::to_string)
                .collect()
        };
        let Some(krate) = names(cells[0]).into_iter().next() else {
            continue; // the header and its rule
        };
        let allowed = names(cells[1]).into_iter().collect();
        assert!(
            layers.insert(krate.clone(), allowed).is_none(),
            "{krate} is listed twice in the layers table"
        );
    }
    layers
}

/// Every workspace crate, with the workspace crates it depends on outside
/// its tests.
fn workspace_dependencies(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    packages
        .iter()
        .map(|p| {
            let name = p["name"].as_str().expect("package name").to_string();
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .filter_map(|d| d["name"].as_str())
                .filter(|d| members.contains(*d))
                .map(str::to_string)
                .collect();
            (name, deps)
        })
        .collect()
}

#[test]
fn crates_depend_only_on_the_layers_the_architecture_doc_allows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md"))
        .expect("read docs/architecture.md");
    let layers = allowed_layers(&doc);
    let workspace = workspace_dependencies(root);
    let mut problems = Vec::new();
    for (krate, deps) in &workspace {
        let Some(allowed) = layers.get(krate) else {
            problems.push(format!(
                "{krate} is not in the layers table of docs/architecture.md"
            ));
            continue;
        };
        for dep in deps.difference(allowed) {
            problems.push(format!(
                "{krate} depends on {dep}, which docs/architecture.md does not allow"
            ));
        }
    }
    for krate in layers.keys().filter(|k| !workspace.contains_key(*k)) {
        problems.push(format!(
            "docs/architecture.md lists {krate}, which is not a workspace crate"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_layers_table_reads_as_written() {
    let doc = format!(
        "intro\n{BEGIN}\n| crate | may depend on |\n|---|---|\n\
         | `kraft-a` | — |\n| `kraft-b` | `kraft-a`, `kraft-c` |\n{END}\n"
    );
    let layers = allowed_layers(&doc);
    assert_eq!(layers.len(), 2);
    assert!(layers["kraft-a"].is_empty());
    assert_eq!(
        layers["kraft-b"].iter().collect::<Vec<_>>(),
        vec!["kraft-a", "kraft-c"]
    );
}
