//! Story order is numeric for every minor number: the reference's sort key runs out at minor
//! 1000 (`1.1001` got the key of `2.1`, `1.1000` that of `2`), so a project with four-digit
//! minors listed out of order. Every list (stories, ready, an epic's stories, the export)
//! answers `1.999, 1.1000, 1.1001, 2.1, 2.9, 2.10`, on both stores.

use serde_json::{Value, json};

use crate::support::*;

both!(
    stories_with_four_digit_minors_list_in_numeric_order
        => stories_with_four_digit_minors_list_in_numeric_order_sqlite,
           stories_with_four_digit_minors_list_in_numeric_order_postgres
);
both!(
    story_numbers_above_9999_are_refused_naming_the_limit
        => story_numbers_above_9999_are_refused_naming_the_limit_sqlite,
           story_numbers_above_9999_are_refused_naming_the_limit_postgres
);

const NUMERIC: [&str; 6] = ["1.999", "1.1000", "1.1001", "2.1", "2.9", "2.10"];

fn numbers_of(list: &Value) -> Vec<String> {
    list.as_array().expect("an array").iter().map(|s| s["number"].as_str().expect("number").to_string()).collect()
}

/// One epic holds all six, imported shuffled, so only the story sort key decides the order.
fn one_epic_doc() -> Value {
    let stories: Vec<Value> = ["2.10", "1.1001", "2.1", "1.999", "2.9", "1.1000"]
        .iter()
        .map(|n| json!({"number": n, "title": format!("Story {n}"), "acceptance_criteria": [{"id": "AC-1", "description": "works"}]}))
        .collect();
    json!({"epics": [{"number": 1, "title": "Everything", "stories": stories}]})
}

async fn stories_with_four_digit_minors_list_in_numeric_order(server: Server) {
    let t = server.tenant("Order").await;
    let ids = seed_with(&server, &t.orch, "Many Minors", &one_epic_doc()).await;
    let p = &ids.project;

    let listed = server.get(&t.orch, &format!("/api/v1/stories?project_id={p}&limit=100")).await;
    assert_eq!(numbers_of(&listed.ok(200)["data"]), NUMERIC, "GET /stories");
    assert_eq!(ready_numbers(&server, &t.orch, p).await, NUMERIC, "GET /stories/ready");
    let epic = ids.epic(1);
    let in_epic = server.get(&t.orch, &format!("/api/v1/epics/{epic}/stories")).await;
    assert_eq!(numbers_of(&in_epic.ok(200)["data"]), NUMERIC, "GET /epics/:id/stories");
    let export = server.get(&t.orch, &format!("/api/v1/projects/{p}/export")).await;
    assert_eq!(numbers_of(&export.ok(200)["epics"][0]["stories"]), NUMERIC, "export");
    let keys: Vec<i64> = listed.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|s| s["sort_key"].as_i64().expect("sort_key is an integer"))
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sort keys rise strictly, no two alike: {keys:?}");

    // Stories created one by one land in the same order; paging walks it without repeats.
    let created = create_project(&server, &t.orch, "One By One").await;
    let resp =
        server.post(&t.orch, &format!("/api/v1/projects/{created}/epics"), json!({"number": 1, "title": "E"})).await;
    let epic = s(&resp.ok(201)["epic"]["id"]);
    for n in ["2.10", "1.1001", "2.1", "1.999", "2.9", "1.1000"] {
        let body = json!({"number": n, "title": format!("Story {n}")});
        server.post(&t.orch, &format!("/api/v1/epics/{epic}/stories"), body).await.ok(201);
    }
    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let page = server.get(&t.orch, &format!("/api/v1/stories?project_id={created}&limit=2&offset={offset}")).await;
        paged.extend(numbers_of(&page.ok(200)["data"]));
    }
    assert_eq!(paged, NUMERIC, "pages of two");
    assert_eq!(ready_numbers(&server, &t.orch, &created).await, NUMERIC);

    // Across epics the epic decides first (its position, then its number), then the story.
    let doc = json!({"epics": [
        {"number": 2, "title": "Second", "position": 1, "stories": [
            {"number": "2.10", "title": "b"}, {"number": "2.9", "title": "a"}, {"number": "2.1", "title": "c"}]},
        {"number": 1, "title": "First", "position": 0, "stories": [
            {"number": "1.1001", "title": "d"}, {"number": "1.999", "title": "e"}, {"number": "1.1000", "title": "f"}]}
    ]});
    let two = seed_with(&server, &t.orch, "Two Epics", &doc).await;
    assert_eq!(ready_numbers(&server, &t.orch, &two.project).await, NUMERIC);
}

async fn story_numbers_above_9999_are_refused_naming_the_limit(server: Server) {
    let t = server.tenant("Limits").await;
    let ids = seed(&server, &t, "Limit Shop").await;
    let epic = ids.epic(1);
    for number in ["1.10000", "10000.1", "1.99999999999999999999"] {
        let body = json!({"number": number, "title": "Too far"});
        let resp = server.post(&t.orch, &format!("/api/v1/epics/{epic}/stories"), body).await;
        let err = resp.err(422, "validation_failed");
        let message = err["message"].as_str().unwrap_or_default();
        assert!(message.contains("at most 9999") && message.contains("number"), "{number}: {err}");
        assert!(err["details"]["number"].is_array(), "details name the field: {err}");
    }
    let doc = json!({"epics": [{"number": 3, "title": "Far", "stories": [{"number": "3.12345", "title": "x"}]}]});
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{}/import?merge=true", ids.project), doc).await;
    let err = resp.err(422, "validation_failed");
    assert!(
        err["message"].as_str().is_some_and(|m| m.contains("epics[0].stories[0]") && m.contains("at most 9999")),
        "{err}"
    );
    // The largest number there is works.
    let body = json!({"number": "9999.9999", "title": "The last one"});
    server.post(&t.orch, &format!("/api/v1/epics/{epic}/stories"), body).await.ok(201);
}
