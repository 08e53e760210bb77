//! Free JSON a caller writes (project, epic and story metadata) is bounded on every write:
//! at most 32 levels deep, 64 KiB, numbers within ±(2^53 − 1), `-0.0` stored as `0.0`.
//! The story: metadata nested 124 levels deep used to be accepted by `PATCH`, and then the
//! project's export, which wraps story metadata in five more levels, could not be imported
//! again. Now the deepest accepted metadata round-trips and anything deeper is refused up
//! front, naming the field and the limit. Estimated-hour totals are never `null` or `-0.0`.

use serde_json::{Value, json};

use crate::support::*;

both!(
    the_deepest_accepted_metadata_survives_export_and_import
        => the_deepest_accepted_metadata_survives_export_and_import_sqlite,
           the_deepest_accepted_metadata_survives_export_and_import_postgres
);
both!(
    metadata_deeper_than_32_levels_is_refused_naming_the_field_and_the_limit
        => metadata_deeper_than_32_levels_is_refused_naming_the_field_and_the_limit_sqlite,
           metadata_deeper_than_32_levels_is_refused_naming_the_field_and_the_limit_postgres
);
both!(
    metadata_numbers_and_sizes_are_bounded_and_negative_zero_is_stored_as_zero
        => metadata_numbers_and_sizes_are_bounded_and_negative_zero_is_stored_as_zero_sqlite,
           metadata_numbers_and_sizes_are_bounded_and_negative_zero_is_stored_as_zero_postgres
);
both!(
    hour_totals_are_numbers_never_null_or_negative_zero
        => hour_totals_are_numbers_never_null_or_negative_zero_sqlite,
           hour_totals_are_numbers_never_null_or_negative_zero_postgres
);

/// An object exactly `levels` deep (the object itself is level 1), objects and arrays taking
/// turns inside.
fn nested(levels: usize) -> Value {
    let mut value = json!({"leaf": "bottom", "n": 1.5});
    for level in 1..levels {
        value = if (levels - 1 - level).is_multiple_of(2) {
            json!({ "level": level, "inner": value })
        } else {
            json!([value])
        };
    }
    assert_eq!(depth(&value), levels);
    assert!(value.is_object());
    value
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The deepest metadata accepted.
fn deepest() -> Value {
    nested(32)
}

fn too_deep() -> Value {
    nested(33)
}

async fn the_deepest_accepted_metadata_survives_export_and_import(server: Server) {
    let t = server.tenant("Deep").await;
    let ids = seed(&server, &t, "Deep Shop").await;
    let meta = deepest();
    let resp = server.patch(&t.orch, &format!("/api/v1/stories/{}", ids.story("1.1")), json!({"metadata": meta})).await;
    assert_eq!(resp.ok(200)["story"]["metadata"], meta);
    let resp = server.patch(&t.orch, &format!("/api/v1/epics/{}", ids.epic(1)), json!({"metadata": meta})).await;
    assert_eq!(resp.ok(200)["epic"]["metadata"], meta);
    let resp = server.patch(&t.orch, &format!("/api/v1/projects/{}", ids.project), json!({"metadata": meta})).await;
    assert_eq!(resp.ok(200)["project"]["metadata"], meta);

    let export = server.get(&t.orch, &format!("/api/v1/projects/{}/export", ids.project)).await.ok(200).clone();
    assert_eq!(export["epics"][0]["stories"][0]["metadata"], meta);
    let copy = create_project(&server, &t.orch, "Deep Copy").await;
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{copy}/import"), export.clone()).await;
    assert_eq!(resp.ok(201)["import"]["stories_created"], 3, "{}", resp.body);
    let copied = ids_of(&server, &t.orch, &copy).await;
    assert_eq!(story(&server, &t.orch, copied.story("1.1")).await["metadata"], meta);
    let epic = server.get(&t.orch, &format!("/api/v1/epics/{}", copied.epic(1))).await;
    assert_eq!(epic.ok(200)["epic"]["metadata"], meta);
    // And a merge import of the same export into the original changes nothing.
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{}/import?merge=true", ids.project), export).await;
    resp.ok(200);
    assert_eq!(story(&server, &t.orch, ids.story("1.1")).await["metadata"], meta);
}

async fn metadata_deeper_than_32_levels_is_refused_naming_the_field_and_the_limit(server: Server) {
    let t = server.tenant("Too Deep").await;
    let ids = seed(&server, &t, "Too Deep Shop").await;
    let s11 = ids.story("1.1");
    let before = story(&server, &t.orch, s11).await["metadata"].clone();
    // The issue's 124 levels, and one past the limit.
    let mut issue = json!("leaf");
    for _ in 0..123 {
        issue = json!({ "a": issue });
    }
    assert_eq!(depth(&issue), 123);
    let issue = json!({ "a": issue });
    for meta in [too_deep(), issue] {
        let writes = [
            (format!("/api/v1/stories/{s11}"), json!({"metadata": meta})),
            (format!("/api/v1/epics/{}", ids.epic(1)), json!({"metadata": meta})),
            (format!("/api/v1/projects/{}", ids.project), json!({"metadata": meta})),
        ];
        for (path, body) in writes {
            let resp = server.patch(&t.orch, &path, body).await;
            let err = resp.err(422, "validation_failed");
            let message = err["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("metadata:") && message.contains("32 levels"), "{path}: {err}");
            assert!(err["details"]["metadata"].is_array(), "details name the field: {err}");
        }
        let body = json!({"number": "1.9", "title": "Deep", "metadata": meta});
        let resp = server.post(&t.orch, &format!("/api/v1/epics/{}/stories", ids.epic(1)), body).await;
        resp.err(422, "validation_failed");
        let resp = server
            .post(&t.user, "/api/v1/projects", json!({"name": "Deep New", "slug": "deep-new", "metadata": meta}))
            .await;
        resp.err(422, "validation_failed");
    }
    assert_eq!(story(&server, &t.orch, s11).await["metadata"], before, "a refused write changes nothing");

    // In an import the refusal names the place in the document.
    let mut doc = reference_doc();
    doc["epics"][1]["stories"][0]["metadata"] = too_deep();
    let fresh = create_project(&server, &t.orch, "Deep Import").await;
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{fresh}/import"), doc).await;
    let err = resp.err(422, "validation_failed");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("epics[1].stories[0].metadata:") && message.contains("32 levels"), "{err}");
    let mut doc = reference_doc();
    doc["epics"][0]["metadata"] = too_deep();
    let resp = server.post(&t.orch, &format!("/api/v1/projects/{fresh}/import"), doc).await;
    let err = resp.err(422, "validation_failed");
    assert!(err["message"].as_str().is_some_and(|m| m.starts_with("epics[0].metadata:")), "{err}");
    let listed = server.get(&t.orch, &format!("/api/v1/stories?project_id={fresh}")).await;
    assert_eq!(listed.ok(200)["data"], json!([]), "a refused import writes nothing");
}

async fn metadata_numbers_and_sizes_are_bounded_and_negative_zero_is_stored_as_zero(server: Server) {
    let t = server.tenant("Numbers").await;
    let ids = seed(&server, &t, "Numbers Shop").await;
    let path = format!("/api/v1/stories/{}", ids.story("1.2"));
    // -0.0 (and -0, which JSON parsers read as a float) is stored as 0.0.
    let raw = r#"{"metadata": {"zero": -0.0, "also": [-0, 1e-7], "edge": 9007199254740991, "low": -9007199254740991}}"#;
    let resp = server.req(reqwest::Method::PATCH, &path).key(&t.orch).raw(raw, "application/json").send().await;
    let stored = resp.ok(200)["story"]["metadata"].clone();
    assert_eq!(stored["zero"].as_f64(), Some(0.0));
    assert_eq!(stored["edge"], json!(9_007_199_254_740_991_i64));
    assert_no_null_or_negative_zero(&stored);
    let read = story(&server, &t.orch, ids.story("1.2")).await;
    assert_eq!(read["metadata"], stored, "as read back from the store");
    let export = server.get(&t.orch, &format!("/api/v1/projects/{}/export", ids.project)).await;
    let exported = export.ok(200)["epics"][0]["stories"][1]["metadata"].clone();
    assert_eq!(exported, stored, "nor exported");

    for number in ["9007199254740992", "-9007199254740993", "1e300", "-1.7976931348623157e308", "18446744073709551615"]
    {
        let raw = format!(r#"{{"metadata": {{"cost": {{"values": [1, {number}]}}}}}}"#);
        let resp = server.req(reqwest::Method::PATCH, &path).key(&t.orch).raw(raw, "application/json").send().await;
        let err = resp.err(422, "validation_failed");
        let message = err["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("metadata") && message.contains(".cost.values[1]") && message.contains("9007199254740991"),
            "{number}: {err}"
        );
    }
    // A number JSON cannot carry at all is not JSON.
    let resp = server
        .req(reqwest::Method::PATCH, &path)
        .key(&t.orch)
        .raw(r#"{"metadata": {"big": 1e400}}"#, "application/json")
        .send()
        .await;
    resp.err(400, "invalid_json");

    // 64 KiB of metadata at most.
    let resp = server.patch(&t.orch, &path, json!({"metadata": {"notes": "n".repeat(64 << 10)}})).await;
    let err = resp.err(422, "validation_failed");
    assert!(err["message"].as_str().is_some_and(|m| m.contains("64 KiB")), "{err}");
    let resp = server.patch(&t.orch, &path, json!({"metadata": {"notes": "n".repeat(60 << 10)}})).await;
    resp.ok(200);
    // Not an object at all.
    server.patch(&t.orch, &path, json!({"metadata": [1, 2]})).await.err(422, "validation_failed");
    server.patch(&t.orch, &path, json!({"metadata": "text"})).await.err(422, "validation_failed");
}

async fn hour_totals_are_numbers_never_null_or_negative_zero(server: Server) {
    let t = server.tenant("Hours").await;
    // No hours anywhere: totals are 0, not null.
    let none = seed_with(&server, &t.orch, "No Hours", &flat_doc(2)).await;
    let resp = server.get(&t.orch, &format!("/api/v1/projects/{}/progress", none.project)).await;
    let progress = resp.ok(200)["progress"].clone();
    assert_eq!(progress["estimated_hours_total"].as_f64(), Some(0.0), "{progress}");
    assert_eq!(progress["estimated_hours_completed"].as_f64(), Some(0.0), "{progress}");

    // Hours of -0.0 and 0 are stored, summed and exported as 0.0.
    let ids = seed(&server, &t, "Zero Hours").await;
    for (number, hours) in [("1.1", "-0.0"), ("1.2", "-0"), ("2.1", "0")] {
        let raw = format!(r#"{{"estimated_hours": {hours}}}"#);
        let path = format!("/api/v1/stories/{}", ids.story(number));
        let resp = server.req(reqwest::Method::PATCH, &path).key(&t.orch).raw(raw, "application/json").send().await;
        let hours = &resp.ok(200)["story"]["estimated_hours"];
        assert_eq!(hours.as_f64(), Some(0.0), "{number}: {hours}");
        assert!(!hours.to_string().starts_with('-'), "{number}: {hours}");
    }
    let resp = server.get(&t.orch, &format!("/api/v1/projects/{}/progress", ids.project)).await;
    assert_no_null_or_negative_zero(&resp.ok(200)["progress"]);
    assert_eq!(resp.body["progress"]["estimated_hours_total"].as_f64(), Some(0.0));
    let export = server.get(&t.orch, &format!("/api/v1/projects/{}/export", ids.project)).await;
    for epic in export.ok(200)["epics"].as_array().expect("epics") {
        for st in epic["stories"].as_array().expect("stories") {
            assert_eq!(st["estimated_hours"].as_f64(), Some(0.0), "{st}");
            assert!(!st["estimated_hours"].to_string().starts_with('-'), "{st}");
        }
    }
    // Out of range is refused, as before.
    let path = format!("/api/v1/stories/{}", ids.story("1.1"));
    server.patch(&t.orch, &path, json!({"estimated_hours": 1_000_001})).await.err(422, "validation_failed");
    server.patch(&t.orch, &path, json!({"estimated_hours": -1})).await.err(422, "validation_failed");
}

/// Every number in `value` is a real number other than `-0.0`, and nothing is `null`.
#[track_caller]
fn assert_no_null_or_negative_zero(value: &Value) {
    match value {
        Value::Null => panic!("a null where a number belongs"),
        Value::Number(n) => {
            let f = n.as_f64().expect("a number");
            assert!(f.is_finite() && !(f == 0.0 && f.is_sign_negative()), "{n}");
        }
        Value::Array(items) => items.iter().for_each(assert_no_null_or_negative_zero),
        Value::Object(map) => map.values().for_each(assert_no_null_or_negative_zero),
        Value::Bool(_) | Value::String(_) => {}
    }
}
