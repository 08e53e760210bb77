//! Token usage and the project budget: what agents spend is summed where a person looks,
//! and the budget that stops `orchestrate` is a user's to set, through no side door.

use serde_json::{Value, json};

use crate::support::*;

both!(reported_usage_is_summed_per_story_and_per_project
    => usage_totals_sqlite, usage_totals_postgres);
both!(usage_that_cannot_be_counted_is_refused_and_the_report_changes_nothing
    => bad_usage_sqlite, bad_usage_postgres);
both!(an_orchestrator_cannot_raise_or_remove_the_budget_that_stops_it
    => budget_custody_sqlite, budget_custody_postgres);

async fn progress(server: &Server, key: &str, project: &str) -> Value {
    server.get(key, &format!("/api/v1/projects/{project}/progress")).await.ok(200)["progress"].clone()
}

async fn reported_usage_is_summed_per_story_and_per_project(server: Server) {
    let t = server.tenant("Usage").await;
    let seeded = seed_with(&server, &t.orch, "Usage", &flat_doc(2)).await;
    let (id, other) = (seeded.story("1.1"), seeded.story("1.2"));
    claim(&server, &t.agent, id).await;
    server.post(&t.agent, &format!("/api/v1/stories/{id}/start"), Value::Null).await.ok(200);
    let mut report = commit_artifact("0123abcd");
    report["token_usage"] =
        json!({"input_tokens": 1200, "output_tokens": 300, "cost_millicents": 4500, "model_name": "m1"});
    server.post(&t.agent, &format!("/api/v1/stories/{id}/report"), report).await.ok(200);
    let review = json!({"summary": "read it", "token_usage": {"input_tokens": 800, "output_tokens": 100}});
    server.post(&t.orch, &format!("/api/v1/stories/{id}/review-complete"), review).await.ok(201);
    // Another story's usage counts for the project, not for this story.
    claim(&server, &t.agent, other).await;
    server.post(&t.agent, &format!("/api/v1/stories/{other}/start"), Value::Null).await.ok(200);
    let mut report = commit_artifact("4567cdef");
    report["token_usage"] = json!({"input_tokens": 5, "output_tokens": 5});
    server.post(&t.agent, &format!("/api/v1/stories/{other}/report"), report).await.ok(200);

    let detail = server.get(&t.orch, &format!("/api/v1/stories/{id}")).await;
    assert_eq!(
        detail.ok(200)["story"]["token_usage"],
        json!({"reports": 2, "input_tokens": 2000, "output_tokens": 400, "cost_millicents": 4500})
    );
    let progress = progress(&server, &t.orch, &seeded.project).await;
    assert_eq!(
        progress["token_usage"],
        json!({"reports": 3, "input_tokens": 2005, "output_tokens": 405, "cost_millicents": 4500})
    );
    assert_eq!(progress["budget"], Value::Null, "no budget was set");
    // Usage of another tenant's project never shows here.
    let stranger = server.tenant("Stranger").await;
    let theirs = seed(&server, &stranger, "Theirs").await;
    assert_eq!(progress_of_other(&server, &stranger.orch, &theirs.project).await, 0);
}

async fn progress_of_other(server: &Server, key: &str, project: &str) -> i64 {
    progress(server, key, project).await["token_usage"]["reports"].as_i64().unwrap_or(-1)
}

async fn usage_that_cannot_be_counted_is_refused_and_the_report_changes_nothing(server: Server) {
    let t = server.tenant("Bad usage").await;
    let seeded = seed(&server, &t, "Bad usage").await;
    let id = seeded.story("1.1");
    claim(&server, &t.agent, id).await;
    server.post(&t.agent, &format!("/api/v1/stories/{id}/start"), Value::Null).await.ok(200);
    for (usage, field) in [
        (json!({"input_tokens": -1, "output_tokens": 1}), "token_usage.input_tokens"),
        (
            json!({"input_tokens": 1, "output_tokens": 1, "cost_millicents": 2_000_000_000_000_i64}),
            "token_usage.cost_millicents",
        ),
        (json!({"input_tokens": 1, "output_tokens": 1, "model_name": "m".repeat(201)}), "token_usage.model_name"),
    ] {
        let mut report = commit_artifact("0123abcd");
        report["token_usage"] = usage;
        let refused = server.post(&t.agent, &format!("/api/v1/stories/{id}/report"), report).await;
        let body = refused.err(422, "validation_failed");
        assert!(body.to_string().contains(field), "{field} is named: {body}");
    }
    let mut report = commit_artifact("0123abcd");
    report["token_usage"] = json!({"input_tokens": "lots", "output_tokens": 1});
    server.post(&t.agent, &format!("/api/v1/stories/{id}/report"), report).await.err(422, "validation_failed");
    let detail = server.get(&t.orch, &format!("/api/v1/stories/{id}")).await;
    let story = &detail.ok(200)["story"];
    assert_eq!(story["agent_status"], "implementing", "the refused reports moved nothing");
    assert_eq!(story["token_usage"]["reports"], 0);
    assert_eq!(story["artifacts"], json!([]));
}

async fn an_orchestrator_cannot_raise_or_remove_the_budget_that_stops_it(server: Server) {
    let t = server.tenant("Budget").await;
    let seeded = seed(&server, &t, "Budget").await;
    let project = &seeded.project;
    let budget = format!("/api/v1/projects/{project}/budget");
    server.put(&t.orch, &budget, json!({"tokens": 1_000_000_000})).await.err(403, "forbidden");
    server.put(&t.agent, &budget, json!({"tokens": 1_000_000_000})).await.err(403, "forbidden");
    server.put(&t.user, &budget, json!({"tokens": 0})).await.err(422, "validation_failed");
    let set = server.put(&t.user, &budget, json!({"tokens": 1000, "cost_millicents": 50_000})).await;
    assert_eq!(set.ok(200)["budget"]["exhausted"], false);
    // The side door: project metadata, without the budget or with a larger one.
    for evil in [json!({"metadata": {"team": "a"}}), json!({"metadata": {"budget": {"tokens": 999_999_999}}})] {
        server.patch(&t.orch, &format!("/api/v1/projects/{project}"), json!(evil)).await.ok(200);
        let progress = progress(&server, &t.orch, project).await;
        assert_eq!(progress["budget"]["budget"], json!({"tokens": 1000, "cost_millicents": 50_000}), "{progress}");
    }
    // Nor does a project created with a budget in its metadata have one.
    let created = server
        .post(&t.orch, "/api/v1/projects", json!({"name": "Sneaky", "metadata": {"budget": {"tokens": 1}}}))
        .await;
    let sneaky = created.ok(201)["project"]["id"].as_str().expect("id").to_string();
    assert_eq!(progress(&server, &t.orch, &sneaky).await["budget"], Value::Null);

    // Spending reaches it: warned at 80 %, exhausted at 100 %.
    let id = seeded.story("1.1");
    claim(&server, &t.agent, id).await;
    server.post(&t.agent, &format!("/api/v1/stories/{id}/start"), Value::Null).await.ok(200);
    let mut report = commit_artifact("0123abcd");
    report["token_usage"] = json!({"input_tokens": 700, "output_tokens": 150, "cost_millicents": 1000});
    server.post(&t.agent, &format!("/api/v1/stories/{id}/report"), report).await.ok(200);
    let status = progress(&server, &t.orch, project).await["budget"].clone();
    assert_eq!((status["used_percent"].as_f64(), status["warning"].as_bool()), (Some(85.0), Some(true)), "{status}");
    assert_eq!(status["exhausted"], false);
    let review = json!({"summary": "ok", "token_usage": {"input_tokens": 100, "output_tokens": 50}});
    server.post(&t.orch, &format!("/api/v1/stories/{id}/review-complete"), review).await.ok(201);
    assert_eq!(progress(&server, &t.orch, project).await["budget"]["exhausted"], true);
    // A user removes it; the change is audited both times.
    let removed = server.put(&t.user, &budget, json!({})).await;
    assert_eq!(removed.ok(200)["budget"], Value::Null);
    let audit = server.get(&t.user, &format!("/api/v1/audit?project_id={project}&action=budget_set")).await;
    assert_eq!(audit.ok(200)["data"].as_array().map(Vec::len), Some(2));
}
