//! The architecture's layer rules (ARCHITECTURE.md), checked on what the manifests declare
//! (`cargo metadata`), so that a dependency that breaks a rule fails CI instead of creeping in:
//! one direction of a call, CLI → client → HTTP → server → app → core → store.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Each workspace crate and the crates it depends on to build (dev- and build-dependencies left out).
fn normal_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| {
            let dependencies = package["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str().map(str::to_string))
                .collect();
            (package["name"].as_str().expect("name").to_string(), dependencies)
        })
        .collect()
}

const IO_CRATES: [&str; 9] = ["tokio", "sqlx", "reqwest", "axum", "hyper", "tower", "tower-http", "rmcp", "gix"];

fn loopctl_crates(dependencies: &BTreeSet<String>) -> BTreeSet<&str> {
    dependencies.iter().map(String::as_str).filter(|name| name.starts_with("loopctl")).collect()
}

/// `krate` may depend on these loopctl crates and no others.
fn allowed(krate: &str) -> Option<&'static [&'static str]> {
    Some(match krate {
        "loopctl-core" | "loopctl-api" | "loopctl-git" => &[],
        "loopctl-evidence" => &["loopctl-api", "loopctl-git"],
        "loopctl-dashboard" => &["loopctl-api"],
        "loopctl-store" => &["loopctl-core"],
        "loopctl-store-sqlite" | "loopctl-store-postgres" => &["loopctl-core", "loopctl-store"],
        "loopctl-app" => &["loopctl-core", "loopctl-store", "loopctl-api"],
        "loopctl-client" => &["loopctl-api"],
        "loopctl-mcp" => &["loopctl-api", "loopctl-client"],
        "loopctl-orchestrate" => &["loopctl-api", "loopctl-client", "loopctl-git", "loopctl-evidence"],
        "loopctl-cli" => &["loopctl-api", "loopctl-client", "loopctl-git", "loopctl-evidence", "loopctl-orchestrate"],
        "loopctl-server" => &[
            "loopctl-core",
            "loopctl-store",
            "loopctl-api",
            "loopctl-app",
            "loopctl-mcp",
            "loopctl-client",
            "loopctl-dashboard",
        ],
        _ => return None,
    })
}

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let crates = normal_dependencies();
    let mut broken = Vec::new();
    for (krate, dependencies) in &crates {
        let Some(allowed) = allowed(krate) else { continue };
        for dependency in loopctl_crates(dependencies) {
            if !allowed.contains(&dependency) {
                broken.push(format!("{krate} depends on {dependency}"));
            }
        }
    }
    assert!(broken.is_empty(), "layer rules broken:\n{}", broken.join("\n"));
}

#[test]
fn the_core_the_wire_contract_and_the_dashboard_pages_do_no_io_and_the_core_knows_no_json() {
    let crates = normal_dependencies();
    for krate in ["loopctl-core", "loopctl-api", "loopctl-dashboard"] {
        let dependencies = &crates[krate];
        let io: Vec<&str> = IO_CRATES.into_iter().filter(|io| dependencies.contains(*io)).collect();
        assert!(io.is_empty(), "{krate} depends on IO crates {io:?}");
    }
    assert!(!crates["loopctl-core"].contains("loopctl-api"), "a domain refactor must not change the JSON");
}

#[test]
fn the_cli_and_mcp_never_link_a_store_or_the_service_layer() {
    let crates = normal_dependencies();
    for krate in
        ["loopctl-cli", "loopctl-mcp", "loopctl-client", "loopctl-orchestrate", "loopctl-evidence", "loopctl-dashboard"]
    {
        for forbidden in ["loopctl-app", "loopctl-store", "loopctl-store-sqlite", "loopctl-store-postgres", "sqlx"] {
            assert!(!crates[krate].contains(forbidden), "{krate} depends on {forbidden}");
        }
    }
}

#[test]
fn sql_http_serving_and_git_each_live_in_their_own_crates() {
    let crates = normal_dependencies();
    let owners = |dependency: &str| -> BTreeSet<&str> {
        crates.iter().filter(|(_, deps)| deps.contains(dependency)).map(|(name, _)| name.as_str()).collect()
    };
    let only = |dependency: &str, expected: &[&str]| {
        let mut found = owners(dependency);
        found.remove("loopctl-test-support");
        assert_eq!(found, expected.iter().copied().collect(), "who depends on {dependency}");
    };
    only("sqlx", &["loopctl-store-postgres", "loopctl-store-sqlite"]);
    only("gix", &["loopctl-git"]);
    only("axum", &["loopctl-server"]);
}

#[test]
fn architecture_md_names_every_crate_of_the_workspace() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../ARCHITECTURE.md"))
        .expect("read ARCHITECTURE.md");
    let missing: Vec<String> =
        normal_dependencies().into_keys().filter(|krate| !doc.contains(&format!("`crates/{krate}`"))).collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map misses {missing:?}");
}
