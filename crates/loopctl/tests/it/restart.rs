//! Crash recovery: a checkpoint saved before the server is killed is there after a restart.

use serde_json::json;

use crate::support::{Lab, Server};

#[test]
fn state_load_after_a_server_restart_returns_the_saved_checkpoint() {
    let mut lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let first = r#"{"phase": "epic-1", "last_verified": "US-1.1"}"#;
    let second = r#"{"phase": "epic-2", "last_verified": "US-1.3", "in_flight": ["2.1"], "notes": {"retries": 0}}"#;
    lab.run(&orch, &["state", "save", "--project", "web", "--data", first]).ok();
    lab.run(&orch, &["state", "save", "--project", "web", "--data", second]).ok().stdout_has("version 2");

    // Killed (SIGKILL), not stopped: what was acknowledged must be on disk.
    lab.server.proc.kill();
    lab.run(&orch, &["state", "load", "--project", "web"]).fails(6);
    lab.server = Server::start(&lab.env, &lab.env.db());

    // With a fresh server process, the orchestrator picks up where it was.
    let out = lab.run(&orch, &["state", "load", "--project", "web"]);
    out.ok();
    let loaded: serde_json::Value = serde_json::from_str(&out.stdout).expect("state load prints exactly the JSON");
    assert_eq!(
        loaded,
        json!({"phase": "epic-2", "last_verified": "US-1.3", "in_flight": ["2.1"], "notes": {"retries": 0}})
    );
    let compact = lab.run(&orch, &["state", "load", "--project", "web", "--format", "json"]).json();
    assert_eq!(compact, loaded);
    let history = lab.run(&orch, &["state", "history", "--project", "web", "--format", "json"]).json();
    assert_eq!(history["data"].as_array().map(Vec::len), Some(2), "{history}");
}
