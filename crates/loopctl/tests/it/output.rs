//! Output for programs and people: JSON that parses, CSV with a header line, no ANSI escapes
//! when piped or with NO_COLOR.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::{BIN, Env, Lab, Server, csv_records, numbers};

#[test]
fn json_output_parses_for_every_read_of_the_loop() {
    let lab = Lab::start();
    let web = lab.project("Web shop", "web");
    let orch = lab.orch();
    let implementer = lab.new_key("impl-1", "agent", None);
    lab.implement(&implementer, "web", "1.1");

    let ready = lab.run(&orch, &["next", "--project", "web", "--format", "json"]).json();
    assert_eq!(numbers(&ready), ["1.3"], "{ready}");
    assert_eq!(ready["data"][0]["suggested"], true, "{ready}");
    assert_eq!(ready["meta"]["in_flight"], 0, "a reported story is not in flight: {ready}");

    let overview = lab.run(&orch, &["status", "--project", "web", "--format", "json"]).json();
    assert_eq!(overview["project"]["id"], json!(web), "{overview}");
    assert_eq!(overview["progress"]["total_stories"], 4, "{overview}");

    let story = lab.run(&orch, &["status", "1.1", "--project", "web", "--format", "json"]).json();
    assert_eq!((&story["number"], &story["agent_status"]), (&json!("1.1"), &json!("reported_done")), "{story}");
    assert_eq!(story["acceptance_criteria"].as_array().map(Vec::len), Some(2), "{story}");
    assert_eq!(story["artifacts"][0]["artifact_type"], "commit_diff", "{story}");

    let blocked = lab.run(&orch, &["blocked", "--project", "web", "--format", "json"]).json();
    assert_eq!(numbers(&blocked), ["1.2", "2.1"], "{blocked}");
    let waits: Vec<&str> = blocked["data"][0]["blocking_dependencies"]
        .as_array()
        .expect("blocking_dependencies")
        .iter()
        .filter_map(|d| d["number"].as_str())
        .collect();
    assert_eq!(waits, ["1.1"], "{blocked}");

    let changes = lab.run(&orch, &["changes", "--project", "web", "--format", "json"]).json();
    let cursors: Vec<i64> =
        changes["data"].as_array().expect("data").iter().filter_map(|e| e["cursor"].as_i64()).collect();
    assert!(cursors.len() >= 4, "{changes}");
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors rise: {cursors:?}");
    let next_cursor = changes["next_cursor"].as_i64().expect("next_cursor");
    assert_eq!(Some(&next_cursor), cursors.last(), "{changes}");
    let since = next_cursor.to_string();
    let later = lab.run(&orch, &["changes", "--project", "web", "--since", &since, "--format", "json"]).json();
    assert_eq!(later["data"], json!([]), "nothing after the last cursor: {later}");

    for n in 1..=2 {
        let data = format!(r#"{{"phase": "epic-1", "n": {n}}}"#);
        lab.run(&orch, &["state", "save", "--project", "web", "--data", &data]).ok();
    }
    let history = lab.run(&orch, &["state", "history", "--project", "web", "--format", "json"]).json();
    let saved: Vec<&serde_json::Value> =
        history["data"].as_array().expect("data").iter().map(|v| &v["state_data"]["n"]).collect();
    assert_eq!(saved, [&json!(2), &json!(1)], "newest first: {history}");
    let loaded = lab.run(&orch, &["state", "load", "--project", "web", "--format", "json"]).json();
    assert_eq!(loaded, json!({"phase": "epic-1", "n": 2}));

    let whoami = lab.run(&orch, &["auth", "whoami", "--format", "json"]).json();
    assert_eq!(whoami["role"], "orchestrator", "{whoami}");
    assert_eq!(whoami["tenant_id"], json!(lab.keys.id), "{whoami}");

    // Global flags may stand before the command too.
    let before = lab.run(&orch, &["--format", "json", "--project", "web", "next"]).json();
    assert_eq!(numbers(&before), ["1.3"]);
    // And LOOPCTL_FORMAT / LOOPCTL_PROJECT work as the flags do.
    let out = lab.cmd(&orch).env("LOOPCTL_FORMAT", "json").env("LOOPCTL_PROJECT", "web").arg("next").output();
    let out = out.expect("runs");
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("LOOPCTL_FORMAT=json gives JSON");
    assert_eq!(numbers(&parsed), ["1.3"]);
}

#[test]
fn csv_output_starts_with_a_header_line() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let next = lab.run(&orch, &["next", "--project", "web", "--format", "csv"]).ok().stdout.clone();
    let mut lines = next.lines();
    assert_eq!(lines.next(), Some("story,suggested,acs,state,title"), "{next}");
    assert_eq!(lines.next(), Some("1.1,yes,2,,Sign-up endpoint"), "{next}");
    assert!(!next.contains("ready;"), "CSV is rows only: {next}");
    let blocked = lab.run(&orch, &["blocked", "--project", "web", "--format", "csv"]).ok().stdout.clone();
    assert_eq!(blocked.lines().next(), Some("story,waits for,title"), "{blocked}");
    assert!(blocked.lines().nth(1).is_some_and(|l| l.starts_with("1.2,")), "{blocked}");
}

/// A title with everything CSV must quote: a comma, a quote, a line break.
const AWKWARD_TITLE: &str = "Refunds, \"fast\"\nand safe";

#[test]
fn csv_round_trips_a_title_with_a_comma_a_quote_and_a_newline() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    lab.run(&orch, &["story", "create", "1.4", AWKWARD_TITLE, "--epic", "1", "--ac", "it works", "--project", "web"])
        .ok();

    let ready = csv_records(&lab.run(&orch, &["next", "--project", "web", "--format", "csv"]));
    assert_eq!(ready[0], ["story", "suggested", "acs", "state", "title"], "{ready:?}");
    let row = ready.iter().find(|r| r[0] == "1.4").unwrap_or_else(|| panic!("1.4 is ready: {ready:?}"));
    assert_eq!(row[4], AWKWARD_TITLE, "{ready:?}");

    let pending = csv_records(&lab.run(&orch, &["pending", "--project", "web", "--format", "csv"]));
    let title = pending[0].iter().position(|h| h == "title").expect("a title column");
    assert!(pending.iter().any(|r| r[title] == AWKWARD_TITLE), "{pending:?}");

    let story = csv_records(&lab.run(&orch, &["status", "1.4", "--project", "web", "--format", "csv"]));
    assert_eq!(story.len(), 2, "one story: a header row and a value row: {story:?}");
    let field = |name: &str| {
        let at = story[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("no {name} column: {story:?}"));
        story[1][at].clone()
    };
    assert_eq!((field("number"), field("title")), ("1.4".to_string(), AWKWARD_TITLE.to_string()));
}

#[test]
fn every_command_that_prints_rows_prints_csv() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let user = lab.user();
    lab.run(&orch, &["story", "create", "1.4", AWKWARD_TITLE, "--epic", "1", "--ac", "it works", "--project", "web"])
        .ok();
    lab.implement(&lab.agent(), "web", "1.1");
    lab.run(&orch, &["dispatch", "1.3", "--role", "implementer", "--project", "web"]).ok();
    lab.run(&orch, &["state", "save", "--project", "web", "--data", r#"{"phase": "a, \"b\""}"#]).ok();
    for (who, args) in [
        (&orch, &["status", "--project", "web"][..]),
        (&orch, &["next", "--project", "web"]),
        (&orch, &["blocked", "--project", "web"]),
        (&orch, &["blocked", "--project", "web", "--explain"]),
        (&orch, &["pending", "--project", "web"]),
        (&orch, &["changes", "--project", "web"]),
        (&orch, &["history", "1.1", "--project", "web"]),
        (&orch, &["dispatch", "list", "--project", "web"]),
        (&orch, &["state", "history", "--project", "web"]),
        (&orch, &["project", "list"]),
        (&orch, &["epic", "list", "--project", "web"]),
        (&orch, &["story", "deps", "1.2", "--project", "web"]),
        (&orch, &["skill", "list"]),
        (&user, &["keys", "list"]),
        (&user, &["audit"]),
    ] {
        let args = [args, &["--format", "csv"]].concat();
        let records = csv_records(&lab.run(who, &args));
        assert!(!records.is_empty(), "`{}` prints at least a header row", args.join(" "));
        assert!(
            records[0].iter().all(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_lowercase() || " %-_".contains(c))),
            "`{}` starts with a header row: {records:?}",
            args.join(" ")
        );
    }
}

#[test]
fn one_object_commands_honour_the_format() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    lab.run(&orch, &["auth", "login", "--server", lab.url(), "--key", &lab.keys.orch]).ok();

    let story = lab.run(&orch, &["status", "1.1", "--project", "web", "--format", "json"]).json();
    assert_eq!(story["number"], "1.1", "{story}");
    let me = lab.run(&orch, &["auth", "whoami", "--format", "json"]).json();
    assert_eq!(me["role"], "orchestrator", "{me}");
    let config = lab.env.run(&["config", "show", "--format", "json"]).json();
    assert_eq!(config["profiles"]["default"]["server"], json!(lab.url()), "{config}");

    for args in [&["status", "1.1", "--project", "web"][..], &["auth", "whoami"]] {
        let args = [args, &["--format", "csv"]].concat();
        let records = csv_records(&lab.run(&orch, &args));
        assert_eq!(records.len(), 2, "`{}`: a header row and a value row: {records:?}", args.join(" "));
    }
    let config = csv_records(&lab.env.run(&["config", "show", "--format", "csv"]));
    assert_eq!(config.len(), 2, "{config:?}");
    assert!(config[0].contains(&"default_profile".to_string()), "{config:?}");
    // People still get what they always got.
    lab.run(&orch, &["auth", "whoami"]).ok().stdout_has("role:     orchestrator");
    let shown = lab.env.run(&["config", "show"]).json();
    assert_eq!(shown["default_profile"], "default", "{shown}");
}

#[test]
fn human_output_has_no_ansi_escapes_when_piped() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    let implementer = lab.new_key("impl-1", "agent", None);
    lab.implement(&implementer, "web", "1.1");
    lab.run(&orch, &["reject", "1.1", "--project", "web", "--reason", "no"]).ok();
    for args in [
        &["status", "--project", "web"][..],
        &["status", "1.1", "--project", "web"],
        &["next", "--project", "web"],
        &["blocked", "--project", "web", "--explain"],
        &["changes", "--project", "web"],
        &["pending", "--project", "web"],
        &["auth", "whoami"],
        &["status", "9.9", "--project", "web"],
    ] {
        let out = lab.run(&orch, args);
        assert!(!out.stdout.contains('\x1b') && !out.stderr.contains('\x1b'), "ANSI escape in a pipe: {out:?}");
    }
}

/// Runs a command under a pseudo-terminal with `script(1)`, so stdout is a TTY.
fn on_a_tty(lab: &Lab, args: &str, no_color: bool) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"].into_iter().find(|p| Path::new(p).exists())?;
    let mut cmd = Command::new(script);
    lab.env.apply_std(&mut cmd);
    cmd.env("LOOPCTL_SERVER", lab.url()).env("LOOPCTL_API_KEY", &lab.keys.orch);
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let out = cmd.args(["-qec", &format!("'{BIN}' {args}"), "/dev/null"]).output().ok()?;
    assert!(out.status.success(), "script {args}: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    // Never skipped: `.ci/run` installs script(1) (Debian's bsdutils) when missing.
    let coloured =
        on_a_tty(&lab, "next --project web", false).expect("script(1) runs the command on a pseudo-terminal");
    assert!(coloured.contains('\x1b'), "a terminal gets colour (so this test can see it): {coloured:?}");
    let plain = on_a_tty(&lab, "next --project web", true).expect("script ran before");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    assert!(plain.contains("1.1"), "{plain:?}");
}

/// The server's own log (stderr) is read by people too, most often through a pipe or a file.
#[test]
fn server_logs_have_no_ansi_escapes_when_piped() {
    let env = Env::new();
    let server = Server::start(&env, &env.db());
    let log = server.proc.log();
    assert!(!log.contains('\x1b'), "ANSI escapes in the piped server log:\n{log:?}");
}
