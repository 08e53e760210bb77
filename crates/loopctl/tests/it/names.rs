//! People name stories by number: every screen that names a story says `1.1`, never its
//! UUID, and a short id is the random end of a UUID, so two of them differ.

use serde_json::Value;

use crate::support::{Lab, Out};

/// Every hyphenated UUID in a text (8-4-4-4-12 hex digits).
fn uuids(text: &str) -> Vec<&str> {
    let is_uuid = |word: &str| {
        let groups: Vec<usize> =
            word.split('-').map(|g| if g.chars().all(|c| c.is_ascii_hexdigit()) { g.len() } else { 0 }).collect();
        groups == [8, 4, 4, 4, 12]
    };
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-')).filter(|word| is_uuid(word)).collect()
}

fn last8(id: &Value) -> String {
    let id = id.as_str().unwrap_or_else(|| panic!("an id: {id}"));
    id[id.len() - 8..].to_string()
}

/// The rows of a human table under its header, as whitespace-separated words.
fn rows(out: &Out) -> Vec<Vec<String>> {
    out.ok().stdout.lines().skip(1).map(|line| line.split_whitespace().map(str::to_string).collect()).collect()
}

#[test]
fn dispatch_list_names_stories_by_number_with_distinct_short_ids() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    for story in ["1.1", "1.3"] {
        lab.run(&orch, &["dispatch", story, "--role", "implementer", "--project", "web"])
            .ok()
            .stdout_has(&format!("for story {story} "));
    }
    let listed = lab.run(&orch, &["dispatch", "list", "--project", "web", "--format", "json"]).json();
    let dispatches = listed["data"].as_array().expect("data");
    assert_eq!(dispatches.len(), 2, "{listed}");

    let table = lab.run(&orch, &["dispatch", "list", "--project", "web"]);
    let rows = rows(&table);
    // ID ROLE STORY AGENT BY …
    let mut stories: Vec<&str> = rows.iter().map(|row| row[2].as_str()).collect();
    stories.sort_unstable();
    assert_eq!(stories, ["1.1", "1.3"], "{}", table.stdout);
    let agents: Vec<&str> = rows.iter().map(|row| row[3].as_str()).collect();
    assert_ne!(agents[0], agents[1], "two sub-agents, two short ids: {}", table.stdout);
    for dispatch in dispatches {
        assert!(agents.contains(&last8(&dispatch["agent_id"]).as_str()), "the end of {dispatch}: {}", table.stdout);
    }
}

#[test]
fn status_and_story_deps_name_dependencies_by_number() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    lab.run(&orch, &["story", "deps", "1.3", "--add", "1.2", "--project", "web"]).ok().stdout_has("1.3 depends on 1.2");

    let status = lab.run(&orch, &["status", "1.2", "--project", "web"]);
    status.ok().stdout_has("Depends on:\n  1.1 Sign-up endpoint (pending / unverified)");
    assert_eq!(uuids(&status.stdout), Vec::<&str>::new(), "no story UUIDs: {}", status.stdout);
    let deps = lab.run(&orch, &["story", "deps", "1.3", "--project", "web"]);
    deps.ok().stdout_has("1.3 depends on 1.2");
    assert!(uuids(&deps.stdout).is_empty(), "{}", deps.stdout);
    let explained = lab.run(&orch, &["blocked", "--project", "web", "--explain"]);
    explained.ok().stdout_has("1.2 Login endpoint\n  waits for 1.1 Sign-up endpoint (pending / unverified)");
    assert!(uuids(&explained.stdout).is_empty(), "{}", explained.stdout);
}

#[test]
fn a_scope_violation_names_the_tokens_story_by_number() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let dispatched =
        lab.run(&orch, &["dispatch", "1.1", "--role", "implementer", "--project", "web", "--format", "json"]);
    let dispatched = dispatched.json();
    let mut token = lab.agent();
    token.key = dispatched["data"]["api_key"]["raw_key"].as_str().expect("raw_key").to_string();

    let out = lab.run(&token, &["contract", "1.3", "--project", "web"]);
    out.fails(3).stderr_has("story 1.1");
    assert!(uuids(&out.stderr).is_empty(), "the CLI knows the number: {}", out.stderr);
    // Programs get the server's error as it came.
    lab.run(&token, &["contract", "1.3", "--project", "web", "--format", "json"]).fails_json(3, "scope_violation");
    // Its own story is its to work on.
    lab.run(&token, &["contract", "1.1", "--project", "web"]).ok().stdout_has("contracted");
}
