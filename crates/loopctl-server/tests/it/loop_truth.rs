//! The seed's loop as real agents run it, with real timing: nothing vanishes from the loop,
//! no honest work is lost to a lease, and what the API says about a project is true.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

both!(a_contracted_story_refused_a_slot_stays_ready_and_is_claimed_later
    => contracted_story_waits_in_ready_sqlite, contracted_story_waits_in_ready_postgres);
both!(the_contractor_gives_a_contract_back_and_nobody_else_can
    => contractor_unclaims_sqlite, contractor_unclaims_postgres);
both!(an_honest_implementer_silent_past_its_lease_still_reports_and_a_taken_over_one_is_stale
    => leases_make_stories_available_sqlite, leases_make_stories_available_postgres);
both!(a_finished_project_says_so_and_counts_come_from_the_server
    => project_complete_and_counts_sqlite, project_complete_and_counts_postgres);
both!(the_change_feed_by_time_continues_with_a_cursor_and_sse_never_replays_the_past
    => feed_by_time_sqlite, feed_by_time_postgres);
both!(force_unclaim_without_a_reason_is_refused
    => force_unclaim_needs_reason_sqlite, force_unclaim_needs_reason_postgres);
both!(merge_imports_of_a_large_project_answer_in_bounded_size
    => merge_imports_bounded_sqlite, merge_imports_bounded_postgres);

fn ready_path(project: &str) -> String {
    format!("/api/v1/stories/ready?project_id={project}")
}

/// The row of one story in the ready list, if it is there.
async fn ready_row(server: &Server, key: &str, project: &str, number: &str) -> Option<Value> {
    let resp = server.get(key, &ready_path(project)).await;
    resp.ok(200)["data"].as_array().expect("data is an array").iter().find(|r| r["number"] == number).cloned()
}

fn verb(id: &str, verb: &str) -> String {
    format!("/api/v1/stories/{id}/{verb}")
}

/// Two stories in flight, an agent contracts a third, its claim is refused, the story is
/// still in `next` (marked contracted, by whom, since when), and after one in-flight story is
/// verified the agent claims it.
async fn a_contracted_story_refused_a_slot_stays_ready_and_is_claimed_later(server: Server) {
    let t = server.tenant("Slots").await;
    let ids = seed_with(&server, &t.orch, "Slots", &flat_doc(3)).await;
    let (second, _, _) = new_key(&server, &t.user, "agent", "second agent").await;
    // max_concurrent_agents is 2: two stories in flight.
    claim(&server, &t.agent, ids.story("1.1")).await;
    claim(&server, &second, ids.story("1.2")).await;

    let third = ids.story("1.3");
    let me = agent_id(&server, &second).await;
    let contracted = contract(&server, &second, third).await;
    assert_eq!(contracted["contracted_by_agent_id"], json!(me));
    server.post(&second, &verb(third, "claim"), Value::Null).await.err(409, "concurrency_limit");

    let row = ready_row(&server, &t.orch, &ids.project, "1.3").await.expect("the contracted story is still ready");
    assert_eq!(row["agent_status"], "contracted");
    assert_eq!(row["contracted_by_agent_id"], json!(me));
    assert!(row["contracted_at"].is_string(), "{row}");
    let meta = server.get(&t.orch, &ready_path(&ids.project)).await.ok(200)["meta"].clone();
    assert_eq!(meta["in_flight"], 2, "{meta}");
    let blocked = server.get(&t.orch, &format!("/api/v1/stories/blocked?project_id={}", ids.project)).await;
    assert_eq!(blocked.ok(200)["data"], json!([]), "nothing waits for a dependency here");

    // One in-flight story is reported and verified: a slot frees and the claim goes through.
    let done = ids.story("1.1");
    server.post(&t.agent, &verb(done, "start"), Value::Null).await.ok(200);
    server.post(&t.agent, &verb(done, "report"), commit_artifact("abc123")).await.ok(200);
    server.post(&t.orch, &verb(done, "verify"), json!({"summary": "ok"})).await.ok(202);
    let claimed = server.post(&second, &verb(third, "claim"), Value::Null).await;
    assert_eq!(claimed.ok(200)["story"]["agent_status"], "assigned");
}

async fn the_contractor_gives_a_contract_back_and_nobody_else_can(server: Server) {
    let t = server.tenant("Give back").await;
    let ids = seed_with(&server, &t.orch, "Give back", &flat_doc(2)).await;
    let (other, _, _) = new_key(&server, &t.user, "agent", "other agent").await;
    let id = ids.story("1.1");
    contract(&server, &t.agent, id).await;
    server.post(&other, &verb(id, "unclaim"), Value::Null).await.err(403, "forbidden");
    server.post(&t.orch, &verb(id, "unclaim"), Value::Null).await.err(403, "forbidden");
    // Another agent may not contract over a fresh contract either…
    let st = story(&server, &other, id).await;
    let body = json!({"story_title": st["title"], "ac_count": st["ac_count"]});
    server.post(&other, &verb(id, "contract"), body).await.err(409, "invalid_transition");
    // …and claim-next passes it by for a story nobody picked.
    let next = server.post(&other, "/api/v1/stories/claim-next", json!({"project_id": ids.project})).await;
    assert_eq!(next.ok(200)["story"]["number"], "1.2");
    let back = server.post(&t.agent, &verb(id, "unclaim"), Value::Null).await;
    let st = &back.ok(200)["story"];
    assert_eq!(st["agent_status"], "pending");
    assert_eq!(st["contracted_by_agent_id"], Value::Null);
    assert_eq!(st["claim_epoch"], 0, "no claim was held, so no epoch moved");
}

/// Lease 10 s. The implementer of 1.1 is silent for 11 s and nobody else claims it: its report
/// is accepted. The implementer of 1.2 is just as silent, another agent takes 1.2 over, and
/// the first agent's report is refused with `stale_claim`.
async fn an_honest_implementer_silent_past_its_lease_still_reports_and_a_taken_over_one_is_stale(server: Server) {
    let t = server.tenant("Leases").await;
    set_settings(&server, &t.user, json!({"claim_lease_seconds": 10, "max_concurrent_agents": 5})).await;
    let ids = seed_with(&server, &t.orch, "Leases", &flat_doc(3)).await;
    let (newcomer, _, _) = new_key(&server, &t.user, "agent", "newcomer").await;
    let (third, _, _) = new_key(&server, &t.user, "agent", "third").await;
    let (honest, taken, abandoned) = (ids.story("1.1"), ids.story("1.2"), ids.story("1.3"));
    for id in [honest, taken, abandoned] {
        claim(&server, &t.agent, id).await;
        let started = server.post(&t.agent, &verb(id, "start"), Value::Null).await;
        assert!(started.ok(200)["story"]["lease_expires_at"].is_string());
    }
    // A heartbeat renews the lease; after it, silence.
    server.post(&t.agent, &verb(taken, "heartbeat"), Value::Null).await.ok(200);

    tokio::time::sleep(Duration::from_secs(10)).await;

    // The sweeper (every 5 s) announces each expiry once in the change feed; the stories
    // stay with their holder meanwhile.
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    loop {
        let events = all_changes(&server, &t.orch, Some(&ids.project)).await;
        let expired: Vec<&Value> = events.iter().filter(|e| e["action"] == "lease_expired").collect();
        if expired.len() >= 3 || std::time::Instant::now() > deadline {
            assert_eq!(expired.len(), 3, "every expired lease is announced once: {events:#?}");
            assert!(expired.iter().all(|e| e["new_state"]["lease_expires_at"].is_string()));
            assert!(expired.iter().all(|e| e["new_state"]["agent_status"] == "implementing"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Every lease ran out: the stories are available, marked stale, and suggested.
    for number in ["1.1", "1.2", "1.3"] {
        let row = ready_row(&server, &t.orch, &ids.project, number).await.expect("a stale claim is available");
        assert_eq!(row["stale"], true, "{row}");
        assert_eq!(row["suggested"], true, "{row}");
    }
    let progress = server.get(&t.orch, &format!("/api/v1/projects/{}/progress", ids.project)).await;
    assert_eq!(progress.ok(200)["progress"]["stages"]["stale"], 3);

    // The newcomer takes 1.2 over with a plain claim.
    let took = server.post(&newcomer, &verb(taken, "claim"), Value::Null).await;
    let st = &took.ok(200)["story"];
    assert_eq!(st["assigned_agent_id"], json!(agent_id(&server, &newcomer).await));
    assert_eq!(st["stale"], false);

    // The honest implementer of 1.1 reports after its lease ran out: accepted.
    let report = server.post(&t.agent, &verb(honest, "report"), commit_artifact("c0ffee")).await;
    assert_eq!(report.ok(200)["story"]["agent_status"], "reported_done");
    // Its report on 1.2, taken over meanwhile, is stale (no epoch sent, as MCP clients do).
    server.post(&t.agent, &verb(taken, "report"), commit_artifact("beef")).await.err(409, "stale_claim");
    // `next --claim` (claim-next) takes over the abandoned one: the first stale story left.
    let next = server.post(&third, "/api/v1/stories/claim-next", json!({"project_id": ids.project})).await;
    let st = &next.ok(200)["story"];
    assert_eq!((st["number"].clone(), st["agent_status"].clone()), (json!("1.3"), json!("assigned")), "{st}");
    server.post(&t.agent, &verb(abandoned, "start"), Value::Null).await.err(409, "stale_claim");
    let events = all_changes(&server, &t.orch, Some(&ids.project)).await;
    let takeovers = events.iter().filter(|e| e["new_state"]["taken_over_from"].is_string()).count();
    assert_eq!(takeovers, 2, "both takeovers are on record");
}

async fn a_finished_project_says_so_and_counts_come_from_the_server(server: Server) {
    let t = server.tenant("Done").await;
    let ids = seed(&server, &t, "Done").await;
    let path = format!("/api/v1/projects/{}/progress", ids.project);
    let progress = async |server: &Server| server.get(&t.orch, &path).await.ok(200)["progress"].clone();
    to_verified(&server, &t.agent, &t.orch, ids.story("1.1")).await;
    to_reported(&server, &t.agent, ids.story("1.2")).await;
    let p = progress(&server).await;
    // A verified story is counted as verified, never as waiting in reported_done.
    assert_eq!(p["stories_by_agent_status"]["reported_done"], 1, "{p}");
    assert_eq!(p["stages"]["verified"], 1);
    assert_eq!(p["stages"]["awaiting_verification"], 1);
    assert_eq!(p["complete"], false);
    let epics = p["epics"].as_array().expect("per-epic counts");
    assert_eq!(epics[0]["total_stories"], 2);
    assert_eq!(epics[0]["verified"], 1);
    server.post(&t.orch, &verb(ids.story("1.2"), "verify"), json!({"summary": "ok"})).await.ok(202);
    to_verified(&server, &t.agent, &t.orch, ids.story("2.1")).await;

    let p = progress(&server).await;
    assert_eq!(p["complete"], true, "{p}");
    assert_eq!(p["epics_completed"], 2);
    assert_eq!(p["in_flight"], 0);
    let ready = server.get(&t.orch, &ready_path(&ids.project)).await;
    let meta = &ready.ok(200)["meta"];
    assert_eq!(meta["project_complete"], true, "{meta}");
    assert_eq!((meta["total_stories"].clone(), meta["verified_stories"].clone()), (json!(3), json!(3)));
}

/// `since=<time>` with nothing newer answers a cursor that continues the feed exactly, and an
/// SSE stream started at a time replays nothing older.
async fn the_change_feed_by_time_continues_with_a_cursor_and_sse_never_replays_the_past(server: Server) {
    let t = server.tenant("Feed").await;
    let ids = seed(&server, &t, "Feed").await;
    contract(&server, &t.agent, ids.story("1.1")).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = rfc3339_in(Duration::ZERO);
    let path = format!("/api/v1/changes?project_id={}&since={now}", ids.project);
    let quiet = server.get(&t.orch, &path).await;
    let body = quiet.ok(200);
    assert_eq!(body["data"], json!([]));
    let cursor = body["next_cursor"].as_i64().expect("an integer cursor even when nothing is new");
    assert!(cursor > 0);

    // Two events committed in one batch share a timestamp; continuing by cursor gets both.
    let claimed = server.post(&t.agent, &verb(ids.story("1.1"), "claim"), Value::Null).await;
    claimed.ok(200);
    let path = format!("/api/v1/changes?project_id={}&since={cursor}", ids.project);
    let next = server.get(&t.orch, &path).await;
    let data = next.ok(200)["data"].as_array().expect("data").clone();
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["new_state"]["agent_status"], "assigned");

    // SSE from a time: the first event it sends is newer than that time.
    let since = rfc3339_in(Duration::ZERO);
    let url = format!("{}/api/v1/events?project_id={}&since={since}", server.base, ids.project);
    let mut stream = server.http.get(&url).bearer_auth(&t.orch).send().await.expect("SSE connects");
    assert_eq!(stream.status(), 200);
    server.post(&t.agent, &verb(ids.story("1.1"), "start"), Value::Null).await.ok(200);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await.expect("an event within 5 s");
        text.push_str(&String::from_utf8_lossy(&chunk.expect("stream chunk").expect("not closed")));
    }
    let first = text.split("\n\n").next().unwrap_or_default();
    assert!(first.contains("\"implementing\""), "the first event is the new one, not history: {first}");
}

async fn force_unclaim_without_a_reason_is_refused(server: Server) {
    let t = server.tenant("Reasons").await;
    let ids = seed(&server, &t, "Reasons").await;
    let id = ids.story("1.1");
    claim(&server, &t.agent, id).await;
    for body in [Value::Null, json!({}), json!({"reason": "   "})] {
        let resp = server.post(&t.orch, &verb(id, "force-unclaim"), body.clone()).await;
        resp.err(422, "validation_failed");
    }
    assert_eq!(story(&server, &t.orch, id).await["agent_status"], "assigned", "a refusal changes nothing");
    let resp = server.post(&t.orch, &verb(id, "force-unclaim"), json!({"reason": "agent crashed"})).await;
    assert_eq!(resp.ok(200)["story"]["agent_status"], "pending");
}

/// Merge import of three 5,000-story batches: every answer under 64 KB, none 5xx, also with
/// an `Idempotency-Key` (a large answer is simply not kept for replay).
async fn merge_imports_of_a_large_project_answer_in_bounded_size(server: Server) {
    let t = server.tenant("Big").await;
    let project = create_project(&server, &t.orch, "Big").await;
    for batch in 0..3 {
        let stories: Vec<Value> = (1..=5000)
            .map(|i| json!({"number": format!("{}.{i}", batch + 1), "title": format!("Story {batch}-{i}")}))
            .collect();
        let doc = json!({"epics": [{"number": batch + 1, "title": format!("Batch {batch}"), "stories": stories}]});
        let path = format!("/api/v1/projects/{project}/import?merge=true");
        let resp = server
            .req(reqwest::Method::POST, &path)
            .key(&t.orch)
            .header("Idempotency-Key", &format!("big-import-{batch}"))
            .json(&doc)
            .send()
            .await;
        assert!(matches!(resp.status, 200 | 201), "batch {batch}: {} {}", resp.status, resp.body);
        let body = resp.body.to_string();
        assert!(body.len() < 64 * 1024, "batch {batch}: answer of {} bytes", body.len());
        let summary = &resp.body["import"];
        assert_eq!(summary["stories_created"], 5000, "{summary}");
        assert_eq!(summary["stories_orphaned_count"], 5000 * batch, "{summary}");
        assert!(summary["stories_orphaned"].as_array().expect("sample").len() <= 20);
    }
    let progress = server.get(&t.orch, &format!("/api/v1/projects/{project}/progress")).await;
    assert_eq!(progress.ok(200)["progress"]["total_stories"], 15_000);
}
