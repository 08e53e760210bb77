//! Races over HTTP: many agents claiming one story, many agents asking for the next one.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::support::*;

both!(racing_claims => racing_claims_sqlite, racing_claims_postgres);
both!(racing_claim_next => racing_claim_next_sqlite, racing_claim_next_postgres);

/// `n` agent keys, each its own identity: `(raw key, agent id)`.
async fn agents(server: &Server, user: &str, n: usize, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (raw, _, agent) = new_key(server, user, "agent", &format!("{prefix}-{i}")).await;
        out.push((raw, s(&agent)));
    }
    let distinct: BTreeSet<&String> = out.iter().map(|(_, agent)| agent).collect();
    assert_eq!(distinct.len(), n, "every agent key is its own identity");
    out
}

/// Fires one POST per agent at once (released together by a barrier); answers
/// `(agent id, status, body)` per agent.
async fn fire(server: &Server, agents: &[(String, String)], path: &str, body: Value) -> Vec<(String, u16, Value)> {
    let barrier = Arc::new(Barrier::new(agents.len()));
    let mut set = JoinSet::new();
    for (raw, agent) in agents.iter().cloned() {
        let (http, url, body, barrier) =
            (server.http.clone(), format!("{}{path}", server.base), body.clone(), barrier.clone());
        set.spawn(async move {
            let mut request = http.post(url).bearer_auth(&raw);
            if !body.is_null() {
                request = request.json(&body);
            }
            barrier.wait().await;
            let response = request.send().await.expect("the request is answered");
            let status = response.status().as_u16();
            let text = response.text().await.expect("read the body");
            (agent, status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        out.push(joined.expect("the request task does not panic"));
    }
    out
}

async fn racing_claims(server: Server) {
    let t = server.tenant("Racers").await;
    let ids = seed_with(&server, &t.orch, "Race", &flat_doc(1)).await;
    let s1 = ids.story("1.1");
    let racers = agents(&server, &t.user, 50, "racer").await;
    // An orchestrator may contract for the agents.
    let resp = server.post(&t.orch, &format!("/api/v1/stories/{s1}/contract"), json!({})).await;
    assert_eq!(resp.ok(200)["story"]["agent_status"], "contracted");

    let results = fire(&server, &racers, &format!("/api/v1/stories/{s1}/claim"), Value::Null).await;
    let winners: Vec<&(String, u16, Value)> = results.iter().filter(|(_, status, _)| *status == 200).collect();
    let losers: Vec<&(String, u16, Value)> = results.iter().filter(|(_, status, _)| *status != 200).collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins: {results:#?}");
    assert_eq!(losers.len(), 49);
    for (agent, status, body) in &losers {
        assert_eq!(*status, 409, "agent {agent} lost the race and gets a conflict: {body}");
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(
            ["invalid_transition", "version_conflict", "conflict"].contains(&code),
            "agent {agent}: a lost claim is a conflict, got {body}"
        );
    }
    let (winner, _, body) = winners[0];
    assert_eq!(body["story"]["assigned_agent_id"], json!(winner));
    assert_eq!(body["story"]["claim_epoch"], 1);

    let st = story(&server, &t.orch, s1).await;
    assert_eq!(st["agent_status"], "assigned");
    assert_eq!(st["assigned_agent_id"], json!(winner));
    assert_eq!(st["claim_epoch"], 1);
    let feed = all_changes(&server, &t.orch, Some(&ids.project)).await;
    let claims = feed.iter().filter(|e| e["new_state"]["transition"] == "claim").count();
    assert_eq!(claims, 1, "one claim event in the feed");
}

async fn racing_claim_next(server: Server) {
    let t = server.tenant("Next Racers").await;
    set_settings(&server, &t.user, json!({"max_concurrent_agents": 3})).await;
    let racers = agents(&server, &t.user, 10, "next").await;

    // Three ready stories, ten agents: three distinct claims, seven refusals.
    let ids = seed_with(&server, &t.orch, "Three", &flat_doc(3)).await;
    let results = fire(&server, &racers, "/api/v1/stories/claim-next", json!({"project_id": ids.project})).await;
    let won: Vec<&(String, u16, Value)> = results.iter().filter(|(_, status, _)| *status == 200).collect();
    assert_eq!(won.len(), 3, "three agents get a story: {results:#?}");
    let claimed: BTreeSet<String> = won.iter().map(|(_, _, body)| s(&body["story"]["id"])).collect();
    assert_eq!(claimed.len(), 3, "three different stories");
    assert_eq!(claimed, ids.stories.values().cloned().collect::<BTreeSet<String>>());
    for (agent, _, body) in &won {
        assert_eq!(body["story"]["assigned_agent_id"], json!(agent));
        assert_eq!(body["story"]["agent_status"], "assigned");
        assert_eq!(body["story"]["claim_epoch"], 1);
        assert!(body["story"]["acceptance_criteria"].is_array(), "claim-next answers the criteria");
    }
    for (agent, status, body) in results.iter().filter(|(_, status, _)| *status != 200) {
        let refusal = (*status, body["error"]["code"].as_str().unwrap_or_default());
        assert!(
            refusal == (404, "nothing_ready") || refusal == (409, "concurrency_limit"),
            "agent {agent}: expected 404 nothing_ready or 409 concurrency_limit, got {status} {body}"
        );
    }
    let resp = server.get(&t.orch, &format!("/api/v1/projects/{}/progress", ids.project)).await;
    assert_eq!(resp.ok(200)["progress"]["in_flight"], 3);

    // Five ready stories, ten agents, a limit of three: the limit holds under the race.
    let ids = seed_with(&server, &t.orch, "Five", &flat_doc(5)).await;
    let results = fire(&server, &racers, "/api/v1/stories/claim-next", json!({"project_id": ids.project})).await;
    let won = results.iter().filter(|(_, status, _)| *status == 200).count();
    assert_eq!(won, 3, "never more than max_concurrent_agents in flight: {results:#?}");
    for (agent, status, body) in results.iter().filter(|(_, status, _)| *status != 200) {
        let refusal = (*status, body["error"]["code"].as_str().unwrap_or_default());
        assert!(
            refusal == (404, "nothing_ready") || refusal == (409, "concurrency_limit"),
            "agent {agent}: expected 404 nothing_ready or 409 concurrency_limit, got {status} {body}"
        );
    }
    let resp = server.get(&t.orch, &format!("/api/v1/projects/{}/progress", ids.project)).await;
    assert_eq!(resp.ok(200)["progress"]["in_flight"], 3);
    assert_eq!(resp.body["progress"]["stories_by_agent_status"]["pending"], 2);
}
