//! `loopctl up`: the quickstart on an empty data dir, then again on the same dir.

use serde_json::{Value, json};

use crate::support::{Env, Keys, numbers, start_up};

fn config_show(env: &Env) -> Value {
    let out = env.run(&["config", "show"]);
    out.ok();
    serde_json::from_str(&out.stdout).expect("config show prints JSON")
}

#[test]
fn up_on_an_empty_data_dir_then_again_reuses_everything() {
    let env = Env::new();
    std::fs::remove_dir_all(env.data_dir()).expect("start with no data dir at all");

    // First run: tenant, keys, profiles, example project, and what to run next.
    let (mut proc, url, lines) = start_up(&env);
    let text = lines.join("\n");
    assert!(text.contains("Created tenant `local`"), "{text}");
    assert!(!text.contains("Reusing"), "{text}");
    let keys_file = env.data_dir().join("keys.json");
    let keys_text = std::fs::read_to_string(&keys_file).expect("up writes keys.json");
    let keys = Keys::from_json(&serde_json::from_str(&keys_text).expect("keys.json is JSON"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys_file).expect("keys.json").permissions().mode();
        assert_eq!(mode & 0o077, 0, "keys.json is readable by its owner only: {mode:o}");
    }
    assert!(env.config_file().is_file(), "profiles go to the XDG config file");
    let config = config_show(&env);
    assert_eq!(config["default_profile"], "local", "{config}");
    for name in ["local", "local-user", "local-agent"] {
        assert_eq!(config["profiles"][name]["server"], json!(url), "profile {name}: {config}");
        assert!(config["profiles"][name]["api_key"].is_string(), "profile {name}: {config}");
    }
    let raw = std::fs::read_to_string(env.config_file()).expect("config file");
    for key in [&keys.orchestrator, &keys.user, &keys.agent] {
        assert!(raw.contains(key.as_str()), "the profiles hold the keys of keys.json");
    }
    assert!(!config.to_string().contains(&keys.orchestrator), "config show hides keys: {config}");

    // The printed next commands work as printed, with nothing but the saved profiles.
    let suggested: Vec<&str> = lines.iter().filter(|l| l.starts_with("  loopctl ")).map(|l| l.trim()).collect();
    assert!(suggested.contains(&"loopctl status --project example"), "{text}");
    assert!(suggested.contains(&"loopctl next --project example"), "{text}");
    for command in &suggested {
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        env.run(&args).ok();
    }
    env.run(&["status", "--project", "example"]).ok().stdout_has("Example (example)");
    let me = env.run(&["auth", "whoami", "--format", "json"]).json();
    assert_eq!((&me["role"], &me["tenant_id"]), (&json!("orchestrator"), &json!(keys.tenant_id)), "{me}");
    let me = env.run(&["--profile", "local-user", "auth", "whoami", "--format", "json"]).json();
    assert_eq!(me["role"], "user", "{me}");
    let claimed =
        env.run(&["--profile", "local-agent", "status", "1.1", "--project", "example", "--format", "json"]).json();
    let claimed_by = claimed["assigned_agent_id"].clone();
    proc.kill();

    // Second run on the same dir: the same tenant, keys and data; only the port may change.
    let (_proc, url2, lines) = start_up(&env);
    let text = lines.join("\n");
    assert!(text.contains("Reusing the data in"), "{text}");
    assert!(!text.contains("Created tenant"), "no second tenant: {text}");
    assert_eq!(std::fs::read_to_string(&keys_file).expect("keys.json"), keys_text, "keys.json unchanged");
    assert_eq!(config_show(&env)["profiles"]["local"]["server"], json!(url2));
    let me = env.run(&["auth", "whoami", "--format", "json"]).json();
    assert_eq!(me["tenant_id"], json!(keys.tenant_id), "the same keys still work: {me}");
    let projects = env.run(&["project", "list", "--format", "json"]).json();
    let slugs: Vec<&str> =
        projects["data"].as_array().expect("data").iter().filter_map(|p| p["slug"].as_str()).collect();
    assert_eq!(slugs, ["example"], "one example project: {projects}");
    let story = env.run(&["status", "1.1", "--project", "example", "--format", "json"]).json();
    assert_eq!(story["assigned_agent_id"], claimed_by, "the data survived: {story}");
    let ready = env.run(&["next", "--project", "example", "--format", "json"]).json();
    assert!(!numbers(&ready).contains(&"1.1".to_string()), "1.1 is still claimed: {ready}");
}
