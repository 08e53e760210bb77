//! `loopctl up`: the quickstart on an empty data dir, then again on the same dir.

use serde_json::{Value, json};

use loopctl_test_support::receiver::Receiver;

use crate::support::{Env, Tenant, numbers, start_up, start_up_in, start_up_with};

fn config_show(env: &Env) -> Value {
    let out = env.run(&["config", "show"]);
    out.ok();
    serde_json::from_str(&out.stdout).expect("config show prints JSON")
}

fn keys_in(data_dir: &std::path::Path) -> Tenant {
    let text = std::fs::read_to_string(data_dir.join("keys.json")).expect("up writes keys.json");
    Tenant::from_json(&serde_json::from_str(&text).expect("keys.json is JSON"))
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
    let keys = Tenant::from_json(&serde_json::from_str(&keys_text).expect("keys.json is JSON"));
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
    for key in [&keys.orch, &keys.user, &keys.agent] {
        assert!(raw.contains(key.as_str()), "the profiles hold the keys of keys.json");
    }
    assert!(!config.to_string().contains(&keys.orch), "config show hides keys: {config}");

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
    assert_eq!((&me["role"], &me["tenant_id"]), (&json!("orchestrator"), &json!(keys.id)), "{me}");
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
    assert_eq!(me["tenant_id"], json!(keys.id), "the same keys still work: {me}");
    let projects = env.run(&["project", "list", "--format", "json"]).json();
    let slugs: Vec<&str> =
        projects["data"].as_array().expect("data").iter().filter_map(|p| p["slug"].as_str()).collect();
    assert_eq!(slugs, ["example"], "one example project: {projects}");
    let story = env.run(&["status", "1.1", "--project", "example", "--format", "json"]).json();
    assert_eq!(story["assigned_agent_id"], claimed_by, "the data survived: {story}");
    let ready = env.run(&["next", "--project", "example", "--format", "json"]).json();
    assert!(!numbers(&ready).contains(&"1.1".to_string()), "1.1 is still claimed: {ready}");
}

#[test]
fn a_second_up_on_another_port_leaves_the_first_ones_profiles_and_says_how_to_repoint_them() {
    let env = Env::new();
    let (_first, first_url, _) = start_up(&env);
    let first_keys = keys_in(&env.data_dir());
    let other_data = env.path("other-data");
    let (_second, second_url, lines) = start_up_in(&env, &other_data);
    assert_ne!(first_url, second_url);
    let text = lines.join("\n");

    // The profiles still reach the first server, with its keys.
    let config = config_show(&env);
    for name in ["local", "local-user", "local-agent"] {
        assert_eq!(config["profiles"][name]["server"], json!(first_url), "profile {name}: {config}");
    }
    let me = env.run(&["auth", "whoami", "--format", "json"]).json();
    assert_eq!(me["tenant_id"], json!(first_keys.id), "{me}");

    // `up` says so in one line, with the way to point a profile at the new server.
    let left: Vec<&String> = lines.iter().filter(|l| l.starts_with("Left profiles")).collect();
    assert_eq!(left.len(), 1, "{text}");
    for part in [
        format!("local at {first_url}"),
        format!("local-agent at {first_url}"),
        format!("loopctl auth login --server {second_url} --key"),
        "--profile local".to_string(),
        other_data.join("keys.json").display().to_string(),
    ] {
        assert!(left[0].contains(&part), "{part:?} in {:?}", left[0]);
    }
    assert!(!text.contains("CLI profiles saved"), "nothing was saved: {text}");
    assert!(
        !lines.iter().any(|l| l.starts_with("  loopctl ")),
        "no commands that would reach the first server: {text}"
    );

    // Followed, the way works.
    let second_keys = keys_in(&other_data);
    env.run(&["--profile", "local", "auth", "login", "--server", &second_url, "--key", &second_keys.orch]).ok();
    let me = env.run(&["auth", "whoami", "--format", "json"]).json();
    assert_eq!(me["tenant_id"], json!(second_keys.id), "{me}");
    assert_eq!(config_show(&env)["profiles"]["local-agent"]["server"], json!(first_url), "only local moved");
}

#[test]
fn up_with_several_projects_says_commands_need_a_project() {
    let env = Env::new();
    let (mut proc, _, lines) = start_up(&env);
    let text = lines.join("\n");
    assert!(!text.contains("loopctl init --project"), "one project is used without saying: {text}");
    env.run(&["project", "create", "Web shop", "--slug", "web"]).ok();
    proc.kill();

    let (_proc, _, lines) = start_up(&env);
    let hint = lines.iter().find(|l| l.contains("projects (")).unwrap_or_else(|| panic!("no hint: {lines:?}"));
    for part in ["2 projects", "example", "web", "loopctl init --project P", "LOOPCTL_PROJECT"] {
        assert!(hint.contains(part), "{part:?} in {hint:?}");
    }
    // The hint is true: a command that names no project is refused, and one that does works.
    env.run(&["next"]).fails(2).stderr_has("example").stderr_has("web");
    env.run(&["next", "--project", "example"]).ok();
}

/// `up` keeps a verifier runner beside its server: once a user points the example project at a
/// repository, a reported commit gets a signed run without anyone starting `loopctl runner`.
#[test]
fn up_runs_the_verifier_for_projects_a_user_configured() {
    let env = Env::new();
    let (mut proc, _url, lines) = start_up(&env);
    assert!(lines.join("\n").contains("Verifier runner: on"), "{lines:?}");
    let dir = env.path("repo");
    std::fs::create_dir_all(&dir).expect("repo dir");
    crate::support::git(&dir, &["-c", "init.defaultBranch=main", "init", "-q"]);
    std::fs::write(dir.join("test.sh"), "echo ok\n").expect("test.sh");
    crate::support::git(&dir, &["add", "-A"]);
    crate::support::git(&dir, &["commit", "-q", "-m", "work"]);
    let sha = crate::support::git(&dir, &["rev-parse", "HEAD"]);
    let repo = dir.to_string_lossy().into_owned();
    let user = ["--profile", "local-user"];
    env.run(&[&user[..], &["project", "runner", "example", "--repo", &repo, "--check", "sh test.sh"]].concat()).ok();
    env.run(&["tenant", "settings", "set", "require_artifact_verification=true", "--profile", "local-user"]).ok();
    let agent = |args: &[&str]| env.run(&[&["--profile", "local-agent"], args, &["--project", "example"]].concat());
    for verb in ["contract", "claim", "start"] {
        agent(&[verb, "1.1"]).ok();
    }
    let artifact = json!({"artifact_type": "commit_diff", "details": {"commit_sha": sha}}).to_string();
    agent(&["report", "1.1", "--artifact", &artifact]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let verified = env.run(&["verify", "1.1", "--result", "pass", "--summary", "ok", "--project", "example"]);
        if verified.code == Some(0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no passing run within 20 s: {verified:?}\n{}", proc.log());
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    proc.kill();
}

/// A local setup's receiver runs on the same machine: `up` takes the operator's flag as
/// `serve` does, and then a webhook to a loopback address is accepted.
#[test]
fn up_with_allow_private_webhooks_lets_a_receiver_on_this_machine_subscribe() {
    let env = Env::new();
    let receiver = Receiver::start(0);
    let (_proc, _url, _lines) = start_up_with(&env, &env.data_dir(), &["--allow-private-webhooks"]);
    let created = env.run(&["--profile", "local-user", "webhook", "create", &receiver.url, "--format", "json"]);
    let created = created.ok().json();
    assert!(created["secret"].is_string(), "{created}");
}
