//! `changes --since`: a cursor, an RFC 3339 time, a date or a time ago; and the `next:` hint
//! it prints is a value that works when passed back.

use crate::support::{Lab, Out};

/// The value after `next: --since ` in a human `changes` answer.
#[track_caller]
fn next_since(out: &Out) -> String {
    let line = out.ok().stdout.lines().find_map(|line| line.strip_prefix("next: --since "));
    let line = line.unwrap_or_else(|| panic!("no `next: --since` line: {out:?}"));
    line.split_whitespace().next().unwrap_or_default().to_string()
}

#[test]
fn changes_since_a_time_ago_works_and_its_next_hint_works_when_passed_back() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    lab.implement(&lab.agent(), "web", "1.1");

    let recent = lab.run(&orch, &["changes", "--project", "web", "--since", "10m"]);
    recent.ok().stdout_has("imported").stdout_has("1.1: reported_done");
    let next = next_since(&recent);
    let cursor: i64 = next.parse().unwrap_or_else(|_| panic!("the hint after events is a cursor: {next:?}"));
    let last = lab.run(&orch, &["changes", "--project", "web", "--format", "json"]).json()["next_cursor"].clone();
    assert_eq!(last, cursor, "the hint is the last event's cursor");
    let after = lab.run(&orch, &["changes", "--project", "web", "--since", &next]);
    assert_eq!(after.ok().stdout.lines().nth(1), Some(""), "nothing after the last event: {after:?}");
    assert_eq!(next_since(&after), next, "with nothing new, the same cursor again");

    // A time after every event: nothing to show, and the hint is the cursor the feed stands at
    // (the server answers one), which works when passed back.
    let future = lab.run(&orch, &["changes", "--project", "web", "--since", "2099-12-01"]);
    assert_eq!(future.ok().stdout.lines().nth(1), Some(""), "nothing after 2099: {future:?}");
    let hint = next_since(&future);
    assert_eq!(hint, next, "a date with nothing newer continues from the feed's cursor: {future:?}");
    assert_eq!(next_since(&lab.run(&orch, &["changes", "--project", "web", "--since", &hint])), hint);

    for since in ["45s", "2h", "3d", "2020-01-01", "2020-01-01T00:00:00+02:00", "0"] {
        let page = lab.run(&orch, &["changes", "--project", "web", "--since", since, "--format", "json"]).json();
        let events = page["data"].as_array().map_or(0, Vec::len);
        assert!(events >= 6, "--since {since}: every event of this test is newer: {page}");
        let hint = next_since(&lab.run(&orch, &["changes", "--project", "web", "--since", since]));
        assert_ne!(hint, "-", "--since {since}");
    }
}

#[test]
fn a_bad_since_is_a_usage_error_naming_the_accepted_forms() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let orch = lab.orch();
    for bad in ["yesterday", "10x", "2026-13-01", "-"] {
        lab.run(&orch, &["changes", "--project", "web", "--since", bad])
            .fails(2)
            .stderr_has(&format!("`{bad}`"))
            .stderr_has("a cursor")
            .stderr_has("RFC 3339")
            .stderr_has("a date")
            .stderr_has("10m");
    }
    lab.run(&orch, &["changes", "--project", "web", "--since", "soon", "--format", "json"]).fails_json(2, "usage");
}
