//! Escalation, the concurrency limit and reclaiming (issue 6, checks 7, 8 and 9).

use serde_json::{Value, json};

use crate::support::*;

/// Check 7: three rejections flag the story `escalated` (with an `escalated` event in the
/// change feed); five lock it (`escalation_locked`: contract and claim get 409, the story
/// leaves the ready list); only a user clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_after_three_rejections_and_lock_after_five() {
    let server = Server::sqlite().await;
    let t = server.tenant("Escalation").await;
    let ids = seed(&server, &t.orch, &doc(&[1])).await;
    let id = ids.story("1.1");
    let reject = |round: usize| {
        let server = &server;
        let (orch, id) = (t.orch.clone(), id);
        async move {
            let resp = server.post(&orch, &path(id, "reject"), json!({"reason": format!("round {round}")})).await;
            resp.ok(200)["story"].clone()
        }
    };

    for round in 1..=2 {
        to_reported(&server, &t.agent, id, "1.1").await;
        let st = reject(round).await;
        assert_eq!(st["escalated"], false, "not escalated after {round} rejections: {st}");
    }
    to_reported(&server, &t.agent, id, "1.1").await;
    let st = reject(3).await;
    assert_eq!((st["escalated"].as_bool(), st["escalation_locked"].as_bool()), (Some(true), Some(false)), "{st}");
    let st = story(&server, &t.orch, id).await;
    assert_eq!(st["escalated"], true);
    assert!(st["escalated_at"].is_string(), "escalated_at is set: {st}");
    assert_eq!(st["iteration_count"], 3);
    let (events, _) = changes_after(&server, &t.orch, 0).await;
    let escalated: Vec<&Value> =
        events.iter().filter(|e| e["action"] == "escalated" && e["entity_id"] == json!(id)).collect();
    assert_eq!(escalated.len(), 1, "one `escalated` event in /changes");
    assert_eq!(escalated[0]["project_id"], json!(ids.project));

    // Escalated is not yet locked: the story can be claimed again.
    for round in 4..=5 {
        to_reported(&server, &t.agent, id, "1.1").await;
        reject(round).await;
    }
    let st = story(&server, &t.orch, id).await;
    assert_eq!((st["escalated"].as_bool(), st["escalation_locked"].as_bool()), (Some(true), Some(true)), "{st}");
    assert_eq!(st["iteration_count"], 5);
    assert_eq!(st["agent_status"], "pending");

    server.post(&t.agent, &path(id, "contract"), contract_body("1.1")).await.err(409, "escalation_locked");
    server.post(&t.agent, &path(id, "claim"), Value::Null).await.err(409, "escalation_locked");
    let imp = dispatch(&server, &t.orch, "implementer", id).await;
    server.post(&imp.key, &path(id, "contract"), contract_body("1.1")).await.err(409, "escalation_locked");
    let ready = server.get(&t.orch, &format!("/api/v1/stories/ready?project_id={}", ids.project)).await;
    assert_eq!(ready.ok(200)["data"], json!([]), "a locked story is not ready");
    let body = json!({"project_id": ids.project});
    server.post(&t.agent, "/api/v1/stories/claim-next", body).await.err(404, "nothing_ready");

    // Only a user clears it.
    let note = json!({"note": "split the story; try again"});
    server.post(&t.orch, &path(id, "clear-escalation"), note.clone()).await.err(403, "forbidden");
    server.post(&t.agent, &path(id, "clear-escalation"), note.clone()).await.err(403, "forbidden");
    server.post(&imp.key, &path(id, "clear-escalation"), note.clone()).await.err(403, "scope_violation");
    let another_orch = new_key(&server, &t.user, "orchestrator", None).await.0;
    server.post(&another_orch, &path(id, "clear-escalation"), note.clone()).await.err(403, "forbidden");
    assert_eq!(story(&server, &t.orch, id).await["escalation_locked"], true);
    let resp = server.post(&t.user, &path(id, "clear-escalation"), note).await;
    let st = &resp.ok(200)["story"];
    assert_eq!((st["escalated"].as_bool(), st["escalation_locked"].as_bool()), (Some(false), Some(false)), "{st}");
    assert_eq!(st["iteration_count"], 5, "the iteration count only rises");

    // Claimable again, and escalation counts rejections since the clear.
    to_reported(&server, &t.agent, id, "1.1").await;
    assert_eq!(reject(6).await["escalated"], false, "one rejection since the clear does not escalate");
}

/// WIRE.md: "Permission is checked before state" — with nothing ready to claim, the roles
/// that may not claim at all still get 403, not `nothing_ready`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_next_checks_the_role_before_the_queue() {
    let server = Server::sqlite().await;
    let t = server.tenant("Queue").await;
    let ids = seed(&server, &t.orch, &doc(&[1])).await;
    let imp = dispatch(&server, &t.orch, "implementer", ids.story("1.1")).await;
    let body = json!({"project_id": ids.project});
    // With a ready story the orchestrator is refused for its role ...
    server.post(&t.orch, "/api/v1/stories/claim-next", body.clone()).await.err(403, "forbidden");
    to_reported(&server, &t.agent, ids.story("1.1"), "1.1").await;
    server.post(&t.agent, "/api/v1/stories/claim-next", body.clone()).await.err(404, "nothing_ready");
    // ... and so it must be with nothing ready.
    let mut wrong = Vec::new();
    for key in [&t.orch, &t.user, &imp.key] {
        let resp = server.post(key, "/api/v1/stories/claim-next", body.clone()).await;
        if resp.status != 403 {
            wrong.push(format!("{} → {} {}", resp.desc, resp.status, resp.body));
        }
    }
    assert!(wrong.is_empty(), "claim-next answered the queue before the role:\n{}", wrong.join("\n"));
}

/// Check 8: with `max_concurrent_agents` 1, a second claim in the project is refused with
/// 409 `concurrency_limit` naming the story in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_refuses_the_second_claim() {
    let server = Server::sqlite().await;
    let t = server.tenant("Limit").await;
    let resp = server.patch(&t.user, "/api/v1/tenants/me", json!({"settings": {"max_concurrent_agents": 1}})).await;
    assert_eq!(resp.ok(200)["tenant"]["settings"]["max_concurrent_agents"], 1, "{}", resp.body);
    server
        .patch(&t.orch, "/api/v1/tenants/me", json!({"settings": {"max_concurrent_agents": 9}}))
        .await
        .err(403, "forbidden");
    let ids = seed(&server, &t.orch, &doc(&[4])).await;
    let (a, b) = (t.agent.clone(), new_key(&server, &t.user, "agent", None).await.0);
    let (s1, s2, s3, s4) = (ids.story("1.1"), ids.story("1.2"), ids.story("1.3"), ids.story("1.4"));

    // Two agents race for two different stories: the limit holds under the race.
    server.post(&a, &path(s1, "contract"), contract_body("1.1")).await.ok(200);
    server.post(&b, &path(s2, "contract"), contract_body("1.2")).await.ok(200);
    let (p1, p2) = (path(s1, "claim"), path(s2, "claim"));
    let (ra, rb) = tokio::join!(server.post(&a, &p1, Value::Null), server.post(&b, &p2, Value::Null));
    let mut statuses = [ra.status, rb.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{}: {} / {}: {}", ra.desc, ra.body, rb.desc, rb.body);
    let (winner, loser_key, loser, held, waiting, waiting_no) =
        if ra.status == 200 { (&a, &b, &rb, "1.1", &s2, "1.2") } else { (&b, &a, &ra, "1.2", &s1, "1.1") };
    let err = loser.err(409, "concurrency_limit").clone();
    assert!(err["message"].as_str().is_some_and(|m| m.contains(held)), "the message names {held}: {err}");
    assert_eq!(err["context"]["in_flight"], json!([held]), "{err}");

    // Again, without the race; claim-next and a dispatched token are held to it too.
    let resp = server.post(loser_key, &path(waiting, "claim"), Value::Null).await;
    let err = resp.err(409, "concurrency_limit");
    assert_eq!(err["context"]["in_flight"], json!([held]), "{err}");
    let body = json!({"project_id": ids.project});
    server.post(loser_key, "/api/v1/stories/claim-next", body).await.err(409, "concurrency_limit");
    let imp = dispatch(&server, &t.orch, "implementer", s3).await;
    server.post(&imp.key, &path(s3, "contract"), contract_body("1.3")).await.ok(200);
    server.post(&imp.key, &path(s3, "claim"), Value::Null).await.err(409, "concurrency_limit");
    assert_eq!(story(&server, &t.orch, s4).await["agent_status"], "pending", "claim-next claimed nothing");

    // The story in flight is reported: the slot is free.
    let held_id = ids.story(held);
    server.post(winner, &path(held_id, "start"), Value::Null).await.ok(200);
    server.post(winner, &path(held_id, "report"), commit_artifact()).await.ok(200);
    let resp = server.post(loser_key, &path(waiting, "claim"), Value::Null).await;
    assert_eq!(resp.ok(200)["story"]["number"], waiting_no);
}

/// Check 9: an orchestrator takes a story back with a reason; the audit log has it with the
/// reason, and the old holder's later writes with its old `X-Claim-Epoch` are `stale_claim`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_unclaim_is_audited_and_fences_the_old_holder() {
    let server = Server::sqlite().await;
    let t = server.tenant("Reclaim").await;
    let ids = seed(&server, &t.orch, &doc(&[1])).await;
    let id = ids.story("1.1");
    let old = dispatch(&server, &t.orch, "implementer", id).await;
    let epoch = claim(&server, &old.key, id, "1.1").await;
    server.post(&old.key, &path(id, "start"), Value::Null).await.ok(200);

    let reason = json!({"reason": "agent went silent for an hour"});
    server.post(&t.agent, &path(id, "force-unclaim"), reason.clone()).await.err(403, "forbidden");
    server.post(&old.key, &path(id, "force-unclaim"), reason.clone()).await.err(403, "scope_violation");
    let rev = dispatch(&server, &t.orch, "reviewer", id).await;
    server.post(&rev.key, &path(id, "force-unclaim"), reason.clone()).await.err(403, "scope_violation");
    assert_eq!(story(&server, &t.orch, id).await["agent_status"], "implementing");

    let resp = server.post(&t.orch, &path(id, "force-unclaim"), reason).await;
    let st = resp.ok(200)["story"].clone();
    assert_eq!(st["agent_status"], "pending", "{st}");
    assert_eq!(st["assigned_agent_id"], Value::Null, "{st}");
    let new_epoch = st["claim_epoch"].as_i64().expect("claim_epoch");
    assert!(new_epoch > epoch, "a new claim epoch: {epoch} → {new_epoch}");

    // The audit log (user keys only) has it, with who and why.
    server.get(&t.orch, "/api/v1/audit").await.err(403, "forbidden");
    let resp = server.get(&t.user, &format!("/api/v1/audit?entity_id={id}&limit=1000")).await;
    let rows = resp.ok(200)["data"].as_array().expect("audit rows").clone();
    let row = rows
        .iter()
        .find(|r| r["action"] == "force_unclaimed")
        .unwrap_or_else(|| panic!("no force_unclaimed row in the audit log: {rows:?}"));
    assert_eq!(row["entity_id"], json!(id));
    assert_eq!(row["new_state"]["note"], "agent went silent for an hour", "the reason is recorded: {row}");
    assert_eq!(row["new_state"]["agent_status"], "pending", "{row}");
    assert!(
        row["actor_label"].as_str().is_some_and(|l| l.starts_with("orchestrator")),
        "the audit row names the orchestrator: {row}"
    );
    let orch_id = agent_id(&server, &t.orch).await;
    assert_eq!(row["actor_agent_id"], json!(orch_id), "{row}");

    // The old holder's writes with its old epoch: stale_claim, before and after someone else
    // claims the story (collected, so that one failure names every verb that answers otherwise).
    let with_epoch = |verb: &str, e: i64, body: Value| {
        let req = server.req(reqwest::Method::POST, &path(id, verb)).key(&old.key);
        req.header("x-claim-epoch", &e.to_string()).json(&body)
    };
    let mut wrong = Vec::new();
    let mut stale_writes = async |when: &str| {
        for verb in ["start", "heartbeat", "request-review", "unclaim", "report"] {
            let body = if verb == "report" { commit_artifact() } else { json!({}) };
            let resp = with_epoch(verb, epoch, body).send().await;
            if (resp.status, resp.code()) != (409, Some("stale_claim")) {
                wrong.push(format!("{when}: {} → {} {}", resp.desc, resp.status, resp.body));
            }
        }
    };
    stale_writes("reclaimed, not claimed again").await;
    let newcomer = new_key(&server, &t.user, "agent", None).await.0;
    let fresh = claim(&server, &newcomer, id, "1.1").await;
    assert!(fresh > new_epoch);
    stale_writes("claimed by another agent").await;
    assert!(wrong.is_empty(), "old-epoch writes that are not 409 stale_claim:\n{}", wrong.join("\n"));
    let st = story(&server, &t.orch, id).await;
    assert_eq!(st["agent_status"], "assigned");
    assert_eq!(st["assigned_agent_id"], json!(agent_id(&server, &newcomer).await));
    assert_eq!(st["claim_epoch"], json!(fresh));
}
