//! `loopctl admin init`: bootstrap without a browser, on the database directly.

use serde_json::Value;

use crate::support::{Env, Server, Tenant, admin_init};

#[test]
fn admin_init_prints_json_keys_that_work_at_once() {
    let env = Env::new();
    let db = env.path("fresh").join("sub").join("loopctl.db");
    // It creates the database if missing.
    let out = admin_init(&env, &db, "acme");
    out.ok();
    let created: Value = serde_json::from_str(out.stdout.trim()).expect("admin init --format json prints JSON");
    let keys = Tenant::from_json(&created);
    assert!(db.exists(), "the database file is created");

    let server = Server::start(&env, &db);
    for (key, role) in [(&keys.user, "user"), (&keys.orch, "orchestrator"), (&keys.agent, "agent")] {
        let me = env.run(&["--server", &server.url, "--api-key", key, "auth", "whoami", "--format", "json"]).json();
        assert_eq!((me["role"].as_str(), me["tenant_id"].as_str()), (Some(role), Some(keys.id.as_str())), "{me}");
    }

    // Again with another name: another tenant, beside the first.
    let out = admin_init(&env, &db, "globex");
    out.ok();
    let other = Tenant::from_json(&serde_json::from_str(out.stdout.trim()).expect("JSON"));
    assert_ne!(other.id, keys.id);
    let me = env.run(&["--server", &server.url, "--api-key", &other.user, "auth", "whoami", "--format", "json"]).json();
    assert_eq!(me["tenant_id"].as_str(), Some(other.id.as_str()), "{me}");
}

#[test]
fn admin_init_human_output_shows_the_keys_once() {
    let env = Env::new();
    let db = env.path("data").join("loopctl.db");
    let db = db.to_string_lossy().into_owned();
    let out = env.run(&["admin", "init", "--tenant", "acme", "--database-url", &db]);
    out.ok().stdout_has("Created tenant acme").stdout_has("orchestrator:");
}

/// Rotation: a new key signs, the old one still verifies, and both are private files.
#[test]
fn rotating_the_signing_key_keeps_old_keys_and_makes_a_private_new_one() {
    let env = crate::support::Env::new();
    let dir = env.path("signing-keys");
    let dir_arg = dir.to_string_lossy().into_owned();
    let first = env.run(&["admin", "rotate-signing-key", "--signing-key-dir", &dir_arg, "--format", "json"]).json();
    let second = env.run(&["admin", "rotate-signing-key", "--signing-key-dir", &dir_arg, "--format", "json"]).json();
    assert_ne!(first["key_id"], second["key_id"], "a new key signs");
    assert_eq!(second["keys"], 3, "the first start's key and two rotations all verify: {second}");
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(&dir).expect("the key directory") {
        let mode = entry.expect("entry").metadata().expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by its owner only: {mode:o}");
    }
}
