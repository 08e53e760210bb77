//! The OpenAPI document is a contract: it is checked in (`crates/loopctl-server/openapi.json`)
//! and any change to it fails this test until the snapshot is updated on purpose
//! (`UPDATE_SNAPSHOTS=1 cargo test -p loopctl-server --test openapi`). It must also be complete
//! enough to generate a client from: every operation declares its success answer, its
//! refusals and every parameter of its path.

use std::path::PathBuf;

use serde_json::Value;

fn document() -> Value {
    serde_json::to_value(loopctl_server::openapi_document()).expect("the document serializes")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[test]
fn the_document_matches_its_checked_in_snapshot() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let current = serde_json::to_string_pretty(&document()).expect("pretty") + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &current).expect("write the snapshot");
        eprintln!("wrote {}", path.display());
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    if stored != current {
        let first = stored.lines().zip(current.lines()).position(|(a, b)| a != b);
        let line = first.unwrap_or_else(|| stored.lines().count().min(current.lines().count()));
        panic!(
            "the OpenAPI document changed (first difference at line {}):\n  snapshot: {}\n  now:      {}\n\
             If the change is intended, run `UPDATE_SNAPSHOTS=1 cargo test -p loopctl-server --test openapi` \
             and commit crates/loopctl-server/openapi.json.",
            line + 1,
            stored.lines().nth(line).unwrap_or("<end>"),
            current.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

#[test]
fn every_operation_declares_its_answer_its_refusals_and_its_path_parameters() {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    let mut missing = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            operations += 1;
            let what = format!("{} {path}", method.to_uppercase());
            let responses = op["responses"].as_object().expect("responses");
            if !responses.keys().any(|status| status.starts_with('2')) {
                missing.push(format!("{what}: no success response"));
            }
            for refusal in ["4XX", "5XX"] {
                let schema = &responses.get(refusal).map(|r| &r["content"]["application/json"]["schema"]["$ref"]);
                if schema.and_then(Value::as_str) != Some("#/components/schemas/ErrorEnvelope") {
                    missing.push(format!("{what}: no {refusal} ErrorEnvelope"));
                }
            }
            for name in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
                let declared =
                    op["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == name && p["in"] == "path");
                if !declared {
                    missing.push(format!("{what}: path parameter `{name}` undeclared"));
                }
            }
            if let Some(body) = op.get("requestBody") {
                assert!(
                    body["content"]["application/json"]["schema"].is_object(),
                    "{what}: request body without a schema"
                );
            }
        }
    }
    assert!(operations >= 80, "only {operations} operations in the document");
    assert!(missing.is_empty(), "{} gaps:\n{}", missing.len(), missing.join("\n"));
}

#[test]
fn every_error_code_is_in_the_document() {
    let doc = document();
    let listed: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is an enum of strings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in loopctl_api::ErrorCode::ALL {
        assert!(listed.contains(&code.as_str()), "{code} is missing from the document");
    }
}
