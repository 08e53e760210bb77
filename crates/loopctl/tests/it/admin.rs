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

/// An operator greps the log for the id a client saw in `x-request-id`: with
/// `--log-format json` the request's line is one JSON object carrying it.
#[test]
fn a_requests_id_is_in_its_json_log_line() {
    use std::io::{Read, Write};

    let env = Env::new();
    let db = env.db();
    admin_init(&env, &db, "logs").ok();
    let mut cmd = env.std_cmd();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--database-url"]).arg(&db);
    let mut proc = crate::support::Proc::spawn(cmd, "loopctl serve --log-format json");
    let line = proc.wait_for("`listening on` line", |l| l.contains(" listening on http://"));
    let url = crate::support::url_after(&line, "listening on ").expect("URL");
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let request =
        format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nx-request-id: trace-me-4711\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.to_ascii_lowercase().contains("x-request-id: trace-me-4711"), "the id comes back: {answer}");
    let logged = proc.wait_for("the request's log line", |l| l.contains("trace-me-4711"));
    let entry: Value = serde_json::from_str(&logged).unwrap_or_else(|_| panic!("a JSON log line: {logged}"));
    assert_eq!(entry["span"]["request_id"], "trace-me-4711", "{entry}");
    assert_eq!(
        (entry["span"]["method"].as_str(), entry["span"]["path"].as_str()),
        (Some("GET"), Some("/health")),
        "{entry}"
    );
    assert!(entry["fields"]["status"].as_u64() == Some(200) || entry["fields"]["status"] == "200", "{entry}");
}
