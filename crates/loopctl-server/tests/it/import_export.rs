//! Import and export: a round trip keeps the breakdown, a merge updates content and never
//! status, and reports the stories it did not mention.

use serde_json::{Value, json};

use crate::support::*;

both!(round_trip => round_trip_sqlite, round_trip_postgres);
both!(merge_import => merge_import_sqlite, merge_import_postgres);

/// A breakdown with every content field the format has.
fn rich_doc() -> Value {
    let mut doc = reference_doc();
    doc["epics"][0]["description"] = json!("Everything about accounts");
    doc["epics"][0]["metadata"] = json!({"owner": "ana"});
    doc["epics"][1]["phase"] = json!("p1");
    doc["epics"][1]["position"] = json!(5);
    doc["epics"][0]["stories"][0]["description"] = json!("Sign up with email ✉️ and a password");
    doc["epics"][0]["stories"][0]["metadata"] = json!({"risk": "low", "tags": ["api", "auth"]});
    doc["epics"][0]["stories"][1]["estimated_hours"] = json!("2.5");
    doc["epics"][1]["stories"]
        .as_array_mut()
        .unwrap()
        .push(json!({"number": "2.10", "title": "Invoice PDF", "acceptance_criteria": []}));
    doc["epics"][1]["stories"].as_array_mut().unwrap().push(json!({"number": "2.9", "title": "Invoice email"}));
    doc["story_dependencies"].as_array_mut().unwrap().push(json!({"story": "2.10", "depends_on": "2.9"}));
    doc
}

/// The breakdown of an export without ids, times or statuses, in a stable order.
fn breakdown(export: &Value) -> Value {
    let epics: Vec<Value> = export["epics"]
        .as_array()
        .expect("epics")
        .iter()
        .map(|e| {
            let stories: Vec<Value> = e["stories"]
                .as_array()
                .expect("stories")
                .iter()
                .map(|st| {
                    json!({
                        "number": st["number"], "title": st["title"], "description": st["description"],
                        "acceptance_criteria": st["acceptance_criteria"], "estimated_hours": st["estimated_hours"],
                        "metadata": st["metadata"],
                    })
                })
                .collect();
            json!({"number": e["number"], "title": e["title"], "description": e["description"], "phase": e["phase"],
                   "position": e["position"], "metadata": e["metadata"], "stories": stories})
        })
        .collect();
    let mut story_deps: Vec<String> =
        export["story_dependencies"].as_array().expect("story deps").iter().map(|d| d.to_string()).collect();
    story_deps.sort();
    let mut epic_deps: Vec<String> =
        export["epic_dependencies"].as_array().expect("epic deps").iter().map(|d| d.to_string()).collect();
    epic_deps.sort();
    json!({"epics": epics, "story_dependencies": story_deps, "epic_dependencies": epic_deps})
}

async fn round_trip(server: Server) {
    let t = server.tenant("Round Trip").await;
    let first = seed_with(&server, &t.orch, "Original", &rich_doc()).await;
    // Some progress, which the export shows and an import ignores.
    to_verified(&server, &t.agent, &t.orch, first.story("1.1")).await;

    let resp = server.get(&t.agent, &format!("/api/v1/projects/{}/export", first.project)).await;
    let export = resp.ok(200).clone();
    assert_eq!(export["export_metadata"]["project_id"], json!(first.project));
    assert_eq!(export["project"]["slug"], "original");
    let numbers: Vec<&Value> =
        export["epics"][1]["stories"].as_array().unwrap().iter().map(|st| &st["number"]).collect();
    assert_eq!(numbers, vec!["2.1", "2.9", "2.10"], "stories in numeric order");
    assert_eq!(export["epics"][0]["stories"][0]["verified_status"], "verified");
    assert_eq!(export["epics"][0]["stories"][1]["estimated_hours"], 2.5);
    let original = breakdown(&export);
    assert_eq!(original["story_dependencies"].as_array().unwrap().len(), 2);
    assert_eq!(original["epic_dependencies"].as_array().unwrap().len(), 1);

    // Import the export document as it is into a new project.
    let copy = create_project(&server, &t.orch, "Copy").await;
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{copy}/import"), export.clone()).await;
    assert_eq!(resp.ok(201), &json!({"import": {"epics_created": 2, "stories_created": 5, "dependencies_created": 3}}));
    let resp = server.get(&t.agent, &format!("/api/v1/projects/{copy}/export")).await;
    let again = resp.ok(200).clone();
    assert_eq!(breakdown(&again), original, "export → import → export keeps the breakdown");
    for epic in again["epics"].as_array().unwrap() {
        for st in epic["stories"].as_array().unwrap() {
            assert_eq!(st["agent_status"], "pending", "statuses are not imported: {st}");
            assert_eq!(st["verified_status"], "unverified", "statuses are not imported: {st}");
        }
    }
    // The copy works like the original: the same ready story.
    assert_eq!(ready_numbers(&server, &t.agent, &copy).await, vec!["1.1"]);
    let detail = story(&server, &t.agent, &ids_of(&server, &t.agent, &copy).await.stories["1.1"]).await;
    assert_eq!(detail["ac_count"], 2);
}

async fn merge_import(server: Server) {
    let t = server.tenant("Merge").await;
    let ids = seed(&server, &t, "Shop").await;
    let s11 = ids.story("1.1");
    to_verified(&server, &t.agent, &t.orch, s11).await;

    let doc = json!({
        "epics": [{"number": 1, "title": "Accounts and sessions", "stories": [
            {"number": "1.1", "title": "Sign-up endpoint (v2)",
             "acceptance_criteria": [{"id": "AC-1.1.1", "description": "POST /signup returns 201"},
                                     {"id": "AC-1.1.2", "description": "Duplicate email returns 422"}]},
            {"number": "1.3", "title": "Logout endpoint"}
        ]}],
        "story_dependencies": [{"story": "1.3", "depends_on": "1.1"}, {"story": "1.2", "depends_on": "1.1"}]
    });
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{}/import?merge=true", ids.project), doc).await;
    let summary = &resp.ok(200)["import"];
    assert_eq!(summary["epics_created"], 0);
    assert_eq!(summary["epics_updated"], 1);
    assert_eq!(summary["stories_created"], 1);
    assert_eq!(summary["stories_updated"], 1);
    assert_eq!(summary["dependencies_created"], 1);
    assert_eq!(summary["dependencies_existing"], 1);
    let mut orphaned: Vec<(String, String)> = summary["stories_orphaned"]
        .as_array()
        .expect("stories_orphaned")
        .iter()
        .map(|o| (s(&o["number"]), s(&o["title"])))
        .collect();
    orphaned.sort();
    assert_eq!(
        orphaned,
        vec![("1.2".to_string(), "Login endpoint".to_string()), ("2.1".to_string(), "Invoice list".to_string())]
    );

    // Content changed, status did not; orphans are kept.
    let st = story(&server, &t.agent, s11).await;
    assert_eq!(st["title"], "Sign-up endpoint (v2)");
    assert_eq!(st["agent_status"], "reported_done");
    assert_eq!(st["verified_status"], "verified");
    assert_eq!(st["ac_count"], 2);
    let after = ids_of(&server, &t.agent, &ids.project).await;
    assert_eq!(after.stories.keys().cloned().collect::<Vec<_>>(), vec!["1.1", "1.2", "1.3", "2.1"]);
    assert_eq!(after.stories["1.2"], ids.stories["1.2"], "an orphan keeps its id");
    let resp = server.get(&t.agent, &format!("/api/v1/epics/{}", ids.epic(1))).await;
    assert_eq!(resp.ok(200)["epic"]["title"], "Accounts and sessions");
    assert_eq!(
        ready_numbers(&server, &t.agent, &ids.project).await,
        vec!["1.2", "1.3"],
        "the new story waits on a verified one: ready"
    );

    // `merge` may come in the body too; a second identical merge only updates.
    let doc = json!({"merge": true, "epics": [{"number": 1, "title": "Accounts and sessions",
                     "stories": [{"number": "1.3", "title": "Logout endpoint"}]}]});
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{}/import", ids.project), doc).await;
    let summary = &resp.ok(200)["import"];
    assert_eq!(summary["stories_created"], 0);
    assert_eq!(summary["stories_updated"], 1);
    assert_eq!(summary["epics_created"], 0);
}
