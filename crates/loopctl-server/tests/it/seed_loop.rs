//! The loop of the seed skill, over HTTP, with separate keys for the orchestrator and the
//! implementing agent: plan → import → ready → contract → claim → start → report →
//! review → verify, then the next story; and the reject path.

use serde_json::{Value, json};

use crate::support::*;

both!(seed_loop => seed_loop_sqlite, seed_loop_postgres);
both!(reject_path => reject_path_sqlite, reject_path_postgres);

async fn seed_loop(server: Server) {
    let t = server.tenant("Seed Team").await;
    let agent_id = agent_id(&server, &t.agent).await;
    let orch_id = agent_id_of_orch(&server, &t).await;
    assert_ne!(agent_id, orch_id, "the orchestrator and the agent are different identities");

    // The orchestrator plans: a project and the reference's example breakdown.
    let resp = server.post(&t.orch, "/api/v1/projects", json!({"name": "Shop", "slug": "shop"})).await;
    let project = s(&resp.ok(201)["project"]["id"]);
    assert_eq!(resp.body["project"]["status"], "active");
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{project}/import"), reference_doc()).await;
    assert_eq!(resp.ok(201), &json!({"import": {"epics_created": 2, "stories_created": 3, "dependencies_created": 2}}));
    let ids = ids_of(&server, &t.orch, &project).await;
    let (s11, s12, s21) = (ids.story("1.1").to_string(), ids.story("1.2").to_string(), ids.story("2.1").to_string());

    // Only 1.1 is ready, and it is the suggested batch.
    let resp = server.get(&t.agent, &format!("/api/v1/stories/ready?project_id={project}")).await;
    let ready = resp.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(ready.len(), 1, "only 1.1 is ready: {ready:?}");
    assert_eq!(ready[0]["number"], "1.1");
    assert_eq!(ready[0]["id"], json!(s11));
    assert_eq!(ready[0]["suggested"], true);
    assert_eq!(ready[0]["ac_count"], 2);
    // The project may be named by its slug.
    assert_eq!(ready_numbers(&server, &t.agent, "shop").await, vec!["1.1"]);
    // Blocked: 1.2 waits for 1.1; 2.1 waits for epic 1 (its stories).
    let resp = server.get(&t.agent, &format!("/api/v1/stories/blocked?project_id={project}")).await;
    let blocked: Vec<String> =
        resp.ok(200)["data"].as_array().unwrap().iter().map(|b| s(&b["story"]["number"])).collect();
    assert_eq!(blocked, vec!["1.2", "2.1"]);
    let waits_for_12 = &resp.body["data"][0]["blocking_dependencies"];
    assert_eq!(waits_for_12.as_array().unwrap().len(), 1);
    assert_eq!(waits_for_12[0]["number"], "1.1");
    // A story by number, as the CLI names it.
    let resp = server.get(&t.agent, &format!("/api/v1/stories?project_id={project}&number=US-1.1")).await;
    assert_eq!(resp.ok(200)["story"]["id"], json!(s11));

    // Contract: the wrong criteria count is refused with the counts, the right one passes.
    let resp = server
        .post(
            &t.agent,
            &format!("/api/v1/stories/{s11}/contract"),
            json!({"story_title": "Sign-up endpoint", "ac_count": 3}),
        )
        .await;
    let err = resp.err(422, "contract_mismatch");
    assert_eq!(err["context"]["expected_ac_count"], 2);
    assert_eq!(err["context"]["provided_ac_count"], 3);
    let resp = server
        .post(
            &t.agent,
            &format!("/api/v1/stories/{s11}/contract"),
            json!({"story_title": "Sign-up endpoint", "ac_count": 2}),
        )
        .await;
    assert_eq!(resp.ok(200)["story"]["agent_status"], "contracted");
    assert_eq!(resp.body["next_actions"][0]["action"], "claim");

    // Claim: epoch 1, a lease, and the agent as assignee.
    let resp = server.post(&t.agent, &format!("/api/v1/stories/{s11}/claim"), Value::Null).await;
    let claimed = resp.ok(200)["story"].clone();
    assert_eq!(claimed["agent_status"], "assigned");
    assert_eq!(claimed["claim_epoch"], 1);
    assert!(claimed["lease_expires_at"].is_string(), "lease_expires_at is set: {claimed}");
    assert!(claimed["assigned_at"].is_string());
    assert_eq!(claimed["assigned_agent_id"], json!(agent_id));
    assert_eq!(resp.body["next_actions"][0]["action"], "start");

    // Start and report, fenced by the epoch the claim returned.
    let resp = server
        .req(reqwest::Method::POST, &format!("/api/v1/stories/{s11}/start"))
        .key(&t.agent)
        .header("X-Claim-Epoch", "1")
        .send()
        .await;
    assert_eq!(resp.ok(200)["story"]["agent_status"], "implementing");
    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";
    let report = json!({"artifact": {"artifact_type": "commit_diff", "details": {"commit_sha": sha}}});
    let resp = server
        .req(reqwest::Method::POST, &format!("/api/v1/stories/{s11}/report"))
        .key(&t.agent)
        .header("X-Claim-Epoch", "1")
        .json(&report)
        .send()
        .await;
    let reported = &resp.ok(200)["story"];
    assert_eq!(reported["agent_status"], "reported_done");
    assert_eq!(reported["verified_status"], "unverified");
    assert_eq!(reported["reported_by_agent_id"], json!(agent_id));
    assert!(reported["reported_done_at"].is_string());

    // The orchestrator reviews (201) and verifies (202).
    let resp = server
        .post(&t.orch, &format!("/api/v1/stories/{s11}/review-complete"), json!({"summary": "all criteria met"}))
        .await;
    let review = &resp.ok(201)["review_record"];
    assert_eq!(review["story_id"], json!(s11));
    assert_eq!(review["review_type"], "standard");
    assert_eq!(review["reviewer_agent_id"], json!(orch_id));
    let resp = server
        .post(
            &t.orch,
            &format!("/api/v1/stories/{s11}/verify"),
            json!({"summary": "All ACs met", "review_type": "standard"}),
        )
        .await;
    let body = resp.ok(202);
    assert_eq!(body["status"], "verified");
    assert_eq!(body["story"]["verified_status"], "verified");
    assert_eq!(body["story"]["agent_status"], "reported_done");
    assert!(body["story"]["verified_at"].is_string());

    // 1.2 is ready now; 2.1 still waits for the rest of epic 1.
    let resp = server.get(&t.agent, &format!("/api/v1/stories/ready?project_id={project}")).await;
    let ready = resp.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(ready.iter().map(|r| s(&r["number"])).collect::<Vec<_>>(), vec!["1.2"]);
    assert_eq!(ready[0]["id"], json!(s12));
    assert_eq!(ready[0]["suggested"], true);
    assert!(!ready_numbers(&server, &t.agent, &project).await.contains(&"2.1".to_string()));
    let _ = s21;

    // The story with everything recorded about it.
    let detail = story(&server, &t.agent, &s11).await;
    assert_eq!(detail["verified_status"], "verified");
    let artifacts = detail["artifacts"].as_array().expect("artifacts");
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0]["artifact_type"], "commit_diff");
    assert_eq!(artifacts[0]["details"]["commit_sha"], sha);
    assert_eq!(artifacts[0]["reporter_agent_id"], json!(agent_id));
    assert_eq!(detail["reviews"].as_array().expect("reviews").len(), 1);
    assert_eq!(detail["reviews"][0]["summary"], "all criteria met");
    let verifications = detail["verifications"].as_array().expect("verifications");
    assert_eq!(verifications.len(), 1);
    assert_eq!(verifications[0]["result"], "pass");
    assert_eq!(verifications[0]["summary"], "All ACs met");
    assert_eq!(verifications[0]["orchestrator_agent_id"], json!(orch_id));
    assert_eq!(detail["latest_verification"]["result"], "pass");
    let detail12 = story(&server, &t.agent, &s12).await;
    assert_eq!(detail12["dependencies"][0]["depends_on_story_id"], json!(s11));

    // Progress counts it.
    let resp = server.get(&t.agent, &format!("/api/v1/projects/{project}/progress")).await;
    let progress = &resp.ok(200)["progress"];
    assert_eq!(progress["total_stories"], 3);
    assert_eq!(progress["stories_by_verified_status"]["verified"], 1);
    assert_eq!(progress["stories_by_agent_status"]["pending"], 2);

    // The change feed: every event in order, rising cursors, pages joined by next_cursor.
    let resp = server.get(&t.orch, &format!("/api/v1/changes?project_id={project}&since=0")).await;
    let feed = resp.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(resp.body["has_more"], false);
    let seen: Vec<(String, String)> = feed.iter().map(|e| (s(&e["entity_type"]), s(&e["action"]))).collect();
    let expected: Vec<(String, String)> = [
        ("project", "created"),
        ("project", "imported"),
        ("story", "status_changed"),
        ("story", "status_changed"),
        ("story", "status_changed"),
        ("story", "status_changed"),
        ("story", "review_completed"),
        ("story", "verified"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
    .collect();
    assert_eq!(seen, expected, "change feed: {feed:#?}");
    let cursors: Vec<i64> = feed.iter().map(|e| e["cursor"].as_i64().expect("cursor")).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors rise: {cursors:?}");
    assert!(feed.iter().all(|e| e["project_id"] == json!(project)), "every event carries the project");
    let transitions: Vec<&Value> = feed[2..6].iter().map(|e| &e["new_state"]["transition"]).collect();
    assert_eq!(transitions, vec!["contract", "claim", "start", "report"]);
    assert_eq!(resp.body["next_cursor"], json!(cursors[cursors.len() - 1]));

    let mut paged = Vec::new();
    let mut since = 0;
    for (expected_len, has_more) in [(3, true), (3, true), (2, false), (0, false)] {
        let resp = server.get(&t.orch, &format!("/api/v1/changes?project_id={project}&since={since}&limit=3")).await;
        let body = resp.ok(200);
        let page = body["data"].as_array().unwrap();
        assert_eq!(page.len(), expected_len, "page after cursor {since}: {body}");
        assert_eq!(body["has_more"], json!(has_more), "page after cursor {since}: {body}");
        paged.extend(page.iter().map(|e| e["cursor"].as_i64().unwrap()));
        since = body["next_cursor"].as_i64().expect("next_cursor continues");
    }
    assert_eq!(paged, cursors, "pages joined by next_cursor are the whole feed");
    // `since` as an ISO-8601 time.
    let resp = server.get(&t.orch, &format!("/api/v1/changes?project_id={project}&since=2000-01-01T00:00:00Z")).await;
    assert_eq!(resp.ok(200)["data"].as_array().unwrap().len(), feed.len());

    // The story's history, oldest first.
    let resp = server.get(&t.agent, &format!("/api/v1/stories/{s11}/history")).await;
    let history = resp.ok(200)["data"].as_array().unwrap().clone();
    let actions: Vec<String> = history.iter().map(|e| s(&e["action"])).collect();
    assert_eq!(
        actions,
        vec!["status_changed", "status_changed", "status_changed", "status_changed", "review_completed", "verified"]
    );
    assert_eq!(history[1]["new_state"]["agent_status"], "assigned");
    assert_eq!(history[1]["actor_agent_id"], json!(agent_id));
    assert_eq!(history[5]["actor_agent_id"], json!(orch_id));
}

async fn agent_id_of_orch(server: &Server, t: &Tenant) -> String {
    agent_id(server, &t.orch).await
}

async fn reject_path(server: Server) {
    let t = server.tenant("Reject Team").await;
    let ids = seed(&server, &t, "Shop").await;
    let (s11, s12) = (ids.story("1.1"), ids.story("1.2"));
    to_verified(&server, &t.agent, &t.orch, s11).await;
    to_reported(&server, &t.agent, s12).await;

    // A reason is required.
    let resp = server.post(&t.orch, &format!("/api/v1/stories/{s12}/reject"), json!({})).await;
    resp.err(422, "validation_failed");
    let resp = server.post(&t.orch, &format!("/api/v1/stories/{s12}/reject"), json!({"reason": "   "})).await;
    resp.err(422, "validation_failed");
    assert_eq!(
        story(&server, &t.agent, s12).await["agent_status"],
        "reported_done",
        "a refused reject changes nothing"
    );

    let resp = server
        .post(&t.orch, &format!("/api/v1/stories/{s12}/reject"), json!({"reason": "no test for a wrong password"}))
        .await;
    let st = &resp.ok(200)["story"];
    assert_eq!(st["agent_status"], "pending");
    assert_eq!(st["verified_status"], "rejected");
    assert_eq!(st["iteration_count"], 1);
    assert_eq!(st["rejection_reason"], "no test for a wrong password");
    assert!(st["rejected_at"].is_string());
    assert_eq!(st["assigned_agent_id"], Value::Null);
    assert_eq!(st["escalated"], false);
    assert_eq!(resp.body["next_actions"][0]["action"], "contract");

    // Ready again, and it can go round once more.
    assert_eq!(ready_numbers(&server, &t.agent, &ids.project).await, vec!["1.2"]);
    let detail = story(&server, &t.agent, s12).await;
    assert_eq!(detail["verifications"][0]["result"], "fail");
    assert_eq!(detail["verifications"][0]["summary"], "no test for a wrong password");
    let resp = server.get(&t.orch, &format!("/api/v1/stories/{s12}/verifications")).await;
    assert_eq!(resp.ok(200)["data"].as_array().unwrap().len(), 1);
    let epoch = to_reported(&server, &t.agent, s12).await;
    assert!(epoch > 1, "a new round has a new claim epoch: {epoch}");
    let resp = server.post(&t.orch, &format!("/api/v1/stories/{s12}/verify"), json!({})).await;
    let st = &resp.ok(202)["story"];
    assert_eq!(st["verified_status"], "verified");
    assert_eq!(st["iteration_count"], 1, "iteration_count only rises on rejection");
    assert_eq!(ready_numbers(&server, &t.agent, &ids.project).await, vec!["2.1"], "epic 1 done: 2.1 is ready");
}
