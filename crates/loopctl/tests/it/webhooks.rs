//! Webhooks as a team wires them to CI: a receiver on loopback (allowed by the operator's
//! flag) gets every event signed, in order, exactly once per success — after failing its
//! first answers, and across a server restart with deliveries still waiting. Without the
//! flag, private, loopback and link-local targets are refused.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use loopctl_test_support::receiver::{Receiver, signature_holds};

use crate::support::{Env, Lab, Server};

/// The cursors of the tenant's events after `after`, oldest first, from the audit log.
fn feed_cursors(lab: &Lab, after: i64) -> Vec<i64> {
    let audit = lab.run(&lab.user(), &["audit", "--limit", "1000", "--format", "json"]).ok().json();
    let mut cursors: Vec<i64> = audit["data"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["cursor"].as_i64().unwrap())
        .filter(|c| *c > after)
        .collect();
    cursors.reverse();
    cursors
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_loopback_receiver_that_fails_twice_then_gets_every_event_signed_in_order_across_a_restart() {
    let env = Env::new();
    let db = env.db();
    let mut lab = Lab::start_on(env, &db);
    let receiver = Receiver::start(2);

    // Without the operator's flag, the receiver's loopback address is refused.
    let refused = lab.run(&lab.user(), &["webhook", "create", &receiver.url]);
    refused.fails(2).stderr_has("127.0.0.1 (a loopback address)").stderr_has("--allow-private-webhooks");
    lab.server.proc.kill();
    lab.server = Server::start_with(&lab.env, &db, &["--allow-private-webhooks"]);

    let created = lab.run(&lab.user(), &["webhook", "create", &receiver.url, "--format", "json"]).ok().json();
    let secret = created["secret"].as_str().expect("the secret, once").to_owned();
    let id = created["webhook"]["id"].as_str().expect("id").to_owned();
    let listed = lab.run(&lab.user(), &["webhook", "list", "--format", "json"]).ok().json();
    assert!(!listed.to_string().contains(&secret), "the secret is shown once, never listed: {listed}");
    let start = feed_cursors(&lab, 0).last().copied().unwrap_or(0);

    lab.project("Web", "web");
    lab.implement(&lab.agent(), "web", "1.1");
    let wanted = feed_cursors(&lab, start);
    assert!(wanted.len() >= 5, "{wanted:?}");
    wait_for("every event delivered", Duration::from_secs(30), || receiver.delivered_cursors().len() >= wanted.len());
    assert_eq!(receiver.delivered_cursors(), wanted, "each event once, in feed order, after two failed answers");

    // The receiver goes down; events wait in the outbox through a restart of the server.
    receiver.down.store(true, Ordering::SeqCst);
    lab.implement(&lab.agent(), "web", "1.3");
    let more = feed_cursors(&lab, *wanted.last().unwrap());
    assert!(!more.is_empty());
    wait_for("a failed attempt at the new events", Duration::from_secs(10), || {
        receiver.got.lock().unwrap().iter().filter(|g| g.answered == 500).count() >= 3
    });
    lab.server.proc.kill();
    lab.server = Server::start_with(&lab.env, &db, &["--allow-private-webhooks"]);
    receiver.down.store(false, Ordering::SeqCst);
    let everything: Vec<i64> = wanted.iter().chain(&more).copied().collect();
    wait_for("the waiting events after the restart", Duration::from_secs(40), || {
        receiver.delivered_cursors().len() >= everything.len()
    });
    assert_eq!(receiver.delivered_cursors(), everything);

    let got = receiver.got.lock().unwrap();
    for g in got.iter() {
        assert!(signature_holds(&secret, &g.signature, &g.body), "a delivery's signature holds: {}", g.signature);
        assert!(!signature_holds("whsec_wrong", &g.signature, &g.body));
    }
    let mut ids: Vec<&str> = got.iter().filter(|g| g.answered == 200).map(|g| g.delivery.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), everything.len(), "one delivery id per event");
    drop(got);

    let log = lab.run(&lab.user(), &["webhook", "deliveries", &id, "--limit", "500", "--format", "json"]).ok().json();
    let log = log["data"].as_array().expect("deliveries").clone();
    assert_eq!(log.len(), everything.len(), "{log:?}");
    assert!(log.iter().all(|d| d["status"] == "delivered" && d["last_status"] == 200), "{log:?}");
    let first = log.last().expect("the oldest delivery");
    assert_eq!(first["attempts"], 3, "two 500s, then the 200: {first}");
    lab.run(&lab.user(), &["webhook", "deliveries", &id]).ok().stdout_has("delivered");
}

#[test]
fn private_loopback_and_link_local_targets_are_refused_without_the_operators_flag() {
    let lab = Lab::start();
    for (url, why) in [
        ("http://10.0.0.7/hook", "a private address"),
        ("http://192.168.1.20:8080/hook", "a private address"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]:9000/hook", "a loopback address"),
        ("http://localhost:9000/hook", "a loopback address"),
        ("http://[::ffff:127.0.0.1]/hook", "a loopback address"),
    ] {
        lab.run(&lab.user(), &["webhook", "create", url]).fails(2).stderr_has(why);
    }
    lab.run(&lab.user(), &["webhook", "create", "ftp://example.com/x"]).fails(2).stderr_has("not http:// or https://");
    lab.run(&lab.user(), &["webhook", "create", "http://user:pw@93.184.216.34/x"])
        .fails(2)
        .stderr_has("user name or password");
    // Agents and orchestrators cannot subscribe (users only).
    lab.run(&lab.orch(), &["webhook", "create", "https://93.184.216.34/hook"]).fails(3);
    lab.run(&lab.agent(), &["webhook", "list"]).fails(3);
    let listed = lab.run(&lab.user(), &["webhook", "list", "--format", "json"]).ok().json();
    assert_eq!(listed["data"], serde_json::json!([]), "nothing was created: {listed}");
}
