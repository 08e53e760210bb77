//! The audit chain as an operator checks it: `loopctl audit verify` passes on what the
//! server wrote, and names the entry someone with database access changed behind its back.

use std::path::Path;

use loopctl_test_support::postgres::TestDatabase;
use loopctl_test_support::tamper::behind_the_servers_back;

use crate::support::{Env, Lab};

fn block_on<T>(work: impl Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().expect("a runtime").block_on(work)
}

/// A project imported and one story implemented: a few dozen audit entries. Verifies that the
/// untouched chain holds and answers the cursor of an entry in its middle.
fn a_history_that_verifies(lab: &Lab) -> i64 {
    lab.project("Web", "web");
    lab.implement(&lab.agent(), "web", "1.1");
    let verified = lab.run(&lab.user(), &["audit", "verify", "--format", "json"]).ok().json();
    let found = &verified["data"];
    assert_eq!(found["intact"], true, "{verified}");
    assert!(found["first_mismatch"].is_null(), "{verified}");
    assert!(found["entries_checked"].as_i64() >= Some(5), "{verified}");
    assert!(found["sealed_through"]["cursor"] == found["head"]["cursor"], "the head is signed: {verified}");
    lab.run(&lab.user(), &["audit", "verify"]).ok().stdout_has("The audit chain is intact");
    let entries = lab.run(&lab.user(), &["audit", "--limit", "200", "--format", "json"]).ok().json();
    let entries = entries["data"].as_array().expect("audit entries").clone();
    entries[entries.len() / 2]["cursor"].as_i64().expect("an entry's cursor")
}

fn verify_names(lab: &Lab, cursor: i64, problem: &str) {
    let out = lab.run(&lab.user(), &["audit", "verify"]);
    out.fails(5).stderr_has(&format!("does not match at event {cursor} ({problem})"));
}

#[test]
fn sqlite_an_audit_entry_edited_in_the_database_is_named_by_audit_verify() {
    let env = Env::new();
    let db = env.db();
    let lab = Lab::start_on(env, &db);
    let cursor = a_history_that_verifies(&lab);
    let db = db.to_string_lossy();
    block_on(behind_the_servers_back(
        &db,
        &format!(
            "DROP TRIGGER events_append_only_update; \
             UPDATE events SET actor_label = 'user:somebody-else' WHERE cursor = {cursor};"
        ),
    ));
    verify_names(&lab, cursor, "event_changed");
}

#[test]
fn sqlite_an_audit_entry_deleted_from_the_database_is_named_by_audit_verify() {
    let env = Env::new();
    let db = env.db();
    let lab = Lab::start_on(env, &db);
    let cursor = a_history_that_verifies(&lab);
    block_on(behind_the_servers_back(
        &db.to_string_lossy(),
        &format!("DROP TRIGGER events_append_only_delete; DELETE FROM events WHERE cursor = {cursor};"),
    ));
    verify_names(&lab, cursor, "event_missing");
}

#[test]
fn pg_an_audit_entry_edited_in_the_database_is_named_by_audit_verify() {
    let database = block_on(TestDatabase::create());
    let lab = Lab::start_on(Env::new(), Path::new(&database.url));
    let cursor = a_history_that_verifies(&lab);
    block_on(behind_the_servers_back(
        &database.url,
        &format!(
            "ALTER TABLE events DISABLE TRIGGER events_append_only_update; \
             UPDATE events SET metadata = '{{\"note\": \"nothing happened here\"}}' WHERE cursor = {cursor};"
        ),
    ));
    verify_names(&lab, cursor, "event_changed");
    drop(lab);
}

/// The attacker edits an entry and deletes the chain from there on, so that the server would
/// chain the edited rows again and sign them. The server remembers (in its key directory,
/// across a restart) the head it signed, chains nothing behind it, and `audit verify` says
/// the chain was cut.
#[test]
fn sqlite_a_chain_cut_back_after_an_edit_is_not_chained_again_even_after_a_restart() {
    let env = Env::new();
    let db = env.db();
    let mut lab = Lab::start_on(env, &db);
    let cursor = a_history_that_verifies(&lab);
    let head = lab.run(&lab.user(), &["audit", "verify", "--format", "json"]).ok().json()["data"]["head"]["cursor"]
        .as_i64()
        .expect("the head's cursor");
    lab.server.proc.kill();
    block_on(behind_the_servers_back(
        &db.to_string_lossy(),
        &format!(
            "DROP TRIGGER events_append_only_update; DROP TRIGGER audit_links_append_only_delete; \
             UPDATE events SET actor_label = 'user:somebody-else' WHERE cursor = {cursor}; \
             DELETE FROM audit_links WHERE cursor >= {cursor};"
        ),
    ));
    lab.server = crate::support::Server::start(&lab.env, &db);
    let out = lab.run(&lab.user(), &["audit", "verify"]);
    out.fails(5).stderr_has(&format!("does not match at event {head} (chain_truncated)"));
    out.stderr_has(&format!("the chain ends at event {}", cursor - 1));
}
