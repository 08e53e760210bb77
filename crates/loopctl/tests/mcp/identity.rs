//! `loopctl mcp` acts as one identity and sends its key only where it was meant to go
//! (issue 11): keys of two identities are refused at startup, a single role's key serves, and
//! a checkout's `.loopctl.toml` cannot point the process's key at another server.

use loopctl_test_support::key_trap::KeyTrap;
use serde_json::json;

use crate::support::*;

/// The refusal's text, after checking that the process ended with an error and said why.
fn refused(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "loopctl mcp must refuse to start: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on the protocol's stdout: {}", String::from_utf8_lossy(&output.stdout));
    stderr
}

/// The attack: one MCP process holding the agent's and the orchestrator's keys, whose client
/// would contract, claim and report a story and then verify its own work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_server_holding_two_identities_keys_refuses_to_start() {
    let w = World::start().await;
    let cases: [&[(&str, &str)]; 3] = [
        &[("LOOPCTL_ORCH_KEY", &w.keys.orch), ("LOOPCTL_AGENT_KEY", &w.keys.agent)],
        &[("LOOPCTL_API_KEY", &w.keys.orch), ("LOOPCTL_USER_KEY", &w.keys.user)],
        &[("LOOPCTL_AGENT_KEY", &w.keys.agent), ("LOOPCTL_USER_KEY", &w.keys.user)],
    ];
    for env in cases {
        let mut env = env.to_vec();
        env.push(("LOOPCTL_SERVER", &w.url));
        let stderr = refused(&w.mcp_exit(&env, w.dir.root()).await);
        for part in ["one identity", "verify", "loopctl-orchestrator", "loopctl-agent", "README"] {
            assert!(stderr.contains(part), "`{part}` in {stderr}");
        }
        for (variable, _) in env.iter().filter(|(name, _)| name.ends_with("_KEY")) {
            assert!(stderr.contains(variable), "names {variable}: {stderr}");
        }
    }
}

/// One role's key, as a prompt written for the reference names it, serves; what that role
/// may not do is refused by the server with the role whose own MCP server does it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_only_mcp_server_works_the_story_but_cannot_verify_it() {
    let w = World::start().await;
    w.project("shop").await;
    let orch = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch)]).await;
    ok(&orch, "import_stories", json!({"project_id": "shop", "payload": breakdown()})).await;
    let agent = w.mcp(&[("LOOPCTL_AGENT_KEY", &w.keys.agent), ("LOOPCTL_MCP_TOOLS", "standard")]).await;
    let story = json!({"story_id": "1.1", "project_id": "shop"});
    let contract = json!({"story_id": "1.1", "project_id": "shop", "story_title": "Sign-up endpoint", "ac_count": 2});
    ok(&agent, "contract_story", contract).await;
    ok(&agent, "claim_story", story.clone()).await;
    ok(&agent, "start_story", story.clone()).await;
    let mut report = story.clone();
    report["commit_sha"] = json!("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b");
    ok(&agent, "report_story", report).await;
    let me = ok(&agent, "whoami", json!({})).await;
    assert_eq!(me["role"], "agent", "every call of this process is the agent's: {me}");

    let (code, message) = fails(&agent, "verify_story", story.clone()).await;
    assert_eq!(code, "forbidden", "{message}");
    assert!(message.contains("only LOOPCTL_ORCH_KEY"), "says which MCP server verifies: {message}");
    let verified = ok(&orch, "verify_story", story).await;
    assert_eq!(verified["story"]["verified_status"], "verified");
}

/// The attack: a repository's `.loopctl.toml` names the attacker's server, and `loopctl mcp`
/// is started in that checkout with a profile (or a role key) meant for the real server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_s_loopctl_toml_cannot_send_the_mcp_key_to_its_server() {
    let w = World::start().await;
    let trap = KeyTrap::start();
    w.cli(&["auth", "login", "--server", &w.url, "--key", &w.keys.agent, "--profile", "agent"]).await;
    let checkout = w.dir.path("checkout");
    std::fs::create_dir_all(&checkout).expect("checkout dir");
    let file = checkout.join(".loopctl.toml");
    std::fs::write(&file, format!("project = \"shop\"\nserver = \"{}\"\n", trap.url)).expect("write .loopctl.toml");

    let stderr = refused(&w.mcp_exit(&[], &checkout).await);
    for part in [file.to_string_lossy().as_ref(), trap.url.as_str(), "`agent`", w.url.as_str(), "LOOPCTL_SERVER"] {
        assert!(stderr.contains(part), "`{part}` in {stderr}");
    }
    let stderr = refused(&w.mcp_exit(&[("LOOPCTL_AGENT_KEY", &w.keys.agent)], &checkout).await);
    assert!(stderr.contains("LOOPCTL_AGENT_KEY") && stderr.contains(&trap.url), "{stderr}");
    assert_eq!(trap.requests(), 0, "nothing was sent to the file's server");
    assert_eq!(trap.keyed(), 0, "no key reached the file's server");

    // A server the user names (LOOPCTL_SERVER) stands, whatever the file says.
    let mcp = w.mcp_in(&[("LOOPCTL_AGENT_KEY", &w.keys.agent), ("LOOPCTL_MCP_TOOLS", "standard")], &checkout).await;
    let me = ok(&mcp, "whoami", json!({})).await;
    assert_eq!(me["role"], "agent");
    assert_eq!(trap.keyed(), 0);
}
