//! No 500 anywhere: malformed input of every kind (wrong JSON types, huge and negative
//! numbers, NUL characters, odd unicode, non-UUID ids, odd query parameters and headers)
//! sent to every endpoint gets a 4xx (or a success), never a server error. Then every read
//! endpoint still answers over whatever the fuzzing managed to store.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

both!(no_500 => no_500_sqlite, no_500_postgres);

/// Bodies as raw text: some are not JSON at all, some hold numbers JSON values cannot.
fn bodies() -> Vec<String> {
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let mut nested = json!("leaf");
    for _ in 0..100 {
        nested = json!({ "a": nested });
    }
    let mut out: Vec<String> = [
        "{}",
        "[]",
        "null",
        "\"text\"",
        "123",
        "true",
        "{\"name\": ",
        "{\"name\": \"unterminated}",
        "{\"a\":1}{\"b\":2}",
        // Not JSON at all, in the shapes that used to read as a wrong field type.
        "[[[",
        "[[[[[[[[",
        "[{",
        "{[",
        "[1, 2",
        "]",
        "[[[]]]",
        "[\"name\", \"slug\"",
        "\u{feff}{}",
        // Wrong types for every field name the API knows.
        r#"{"name":5,"title":[],"number":{},"slug":true,"description":7,"metadata":"x","acceptance_criteria":"x",
            "estimated_hours":"lots","settings":[1],"state_data":"x","state_key":5,"version":"1","story_id":5,
            "depends_on_story_id":[],"epic_id":{},"depends_on_epic_id":1,"project_id":7,"reason":9,"note":[],
            "artifact":"x","artifacts":{},"role":1,"expires_at":5,"agent_id":"x","ac_count":{},"story_title":1,
            "findings":"x","result":7,"review_type":[],"epics":"x","story_dependencies":{},"merge":"yes",
            "pr_number":"x","evidence_url":5,"grace_period_hours":"x","position":"first","phase":1,
            "epic_number":[],"findings_count":"1","summary":{},"agent_type":5,"email":1,"status":2}"#,
        // Huge numbers.
        r#"{"number":1e400}"#,
        r#"{"number":99999999999999999999999,"position":99999999999999999999,"ac_count":18446744073709551616,
            "version":99999999999999999999,"grace_period_hours":99999999999999999999,"pr_number":99999999999999999999,
            "estimated_hours":1e308,"findings_count":99999999999999999999}"#,
        r#"{"findings_count":1,"fixes_count":9223372036854775807,"disproved_count":9223372036854775807}"#,
        r#"{"findings_count":9223372036854775807,"fixes_count":9223372036854775807,"disproved_count":0}"#,
        r#"{"version":9223372036854775807,"state_data":{}}"#,
        r#"{"version":-9223372036854775808,"state_data":{}}"#,
        r#"{"grace_period_hours":-9223372036854775808}"#,
        r#"{"pr_number":9223372036854775807,"reason":"x"}"#,
        r#"{"ac_count":9223372036854775807,"story_title":"Login endpoint"}"#,
        r#"{"number":"9999.9999","title":"largest story"}"#,
        r#"{"number":1000000,"title":"largest epic","position":9223372036854775807}"#,
        r#"{"number":"1.5","title":"huge hours","estimated_hours":1e308}"#,
        r#"{"number":"1.6","title":"more huge hours","estimated_hours":"1e308","epic_number":1}"#,
        r#"{"settings":{"max_concurrent_agents":"99999999999999999999","claim_lease_seconds":4294967296}}"#,
        // Negative numbers.
        r#"{"number":-1,"title":"neg","position":-1,"ac_count":-1,"version":-1,"estimated_hours":-1,
            "grace_period_hours":-1,"findings_count":-1,"fixes_count":-1,"disproved_count":-1,"pr_number":-1}"#,
        r#"{"settings":{"max_concurrent_agents":-1,"escalate_after_rejections":-5,"max_review_cycles":-5}}"#,
        // NUL characters where text goes.
        r#"{"name":"nul\u0000name","slug":"nul-slug","title":"t\u0000","description":"\u0000","reason":"r\u0000",
            "note":"n\u0000","summary":"\u0000","story_title":"\u0000","state_key":"k\u0000","state_data":{"k":"\u0000"},
            "metadata":{"\u0000":"\u0000"},"review_type":"\u0000","role":"agent","phase":"\u0000","number":"1.7",
            "epic_number":1,"repo_url":"\u0000","mission":"\u0000","tech_stack":"\u0000",
            "artifact":{"artifact_type":"\u0000","path":"\u0000","details":{"x":"\u0000"}}}"#,
        r#"{"name":"\u0000","role":"agent"}"#,
        r#"{"name":"\u0000 agent"}"#,
        r#"{"state_data":{"\u0000":1}}"#,
        r#"{"state_key":"\u0000","state_data":{}}"#,
        r#"{"reason":"\u0000"}"#,
        r#"{"note":"\u0000"}"#,
        r#"{"metadata":{"k":"\u0000"}}"#,
        r#"{"title":"\u0000"}"#,
        r#"{"summary":"\u0000","findings":{"k":"\u0000"},"commit_sha":"\u0000"}"#,
        r#"{"artifact":{"artifact_type":"commit_diff","details":{"commit_sha":"\u0000"}}}"#,
        r#"{"epics":[{"number":1,"title":"\u0000","stories":[{"number":"1.1","title":"\u0000","description":"\u0000",
            "metadata":{"k":"\u0000"},"acceptance_criteria":[{"id":"\u0000","description":"\u0000"}]}]}],"merge":true}"#,
        r#"{"settings":{"custody_mode":"\u0000"}}"#,
        r#"{"name":"tenant\u0000"}"#,
        // Unicode.
        r#"{"name":"Ünïcödé 🚀 שלום مرحبا","slug":"ünï","title":"🚀🚀🚀","number":"١.٢","description":"a\u0301\u200d\u202e"}"#,
        r#"{"name":"emoji 🚀","slug":"emoji-rocket","title":"\uffff\ufffe","reason":"👍","note":"👍","state_data":{"🚀":"✓"}}"#,
        r#"{"name":"\ud800"}"#,
        r#"{"number":"US-1.1"}"#,
        // Odd dates.
        r#"{"name":"far future","role":"agent","expires_at":"262143-12-31T23:59:59Z"}"#,
        r#"{"name":"odd date","role":"agent","expires_at":"+275760-09-13T00:00:00Z"}"#,
        r#"{"name":"bad date","role":"agent","expires_at":"yesterday"}"#,
        r#"{"completed_at":"-262143-01-01T00:00:00Z"}"#,
        r#"{"completed_at":"0001-01-01T00:00:00Z","summary":"early"}"#,
        // Odd ids in bodies.
        r#"{"story_id":"not-a-uuid","depends_on_story_id":"00000000-0000-0000-0000-000000000000"}"#,
        r#"{"project_id":"00000000-0000-0000-0000-000000000000"}"#,
        r#"{"project_id":"\u0000"}"#,
        r#"{"name":"link","role":"orchestrator","agent_id":"00000000-0000-0000-0000-000000000000"}"#,
        // Imports that are almost right.
        r#"{"epics":[{"number":"x","title":"t"}]}"#,
        r#"{"epics":[{"number":1,"title":"t","stories":[{"number":"1.1","title":"s","acceptance_criteria":"nope"}]}]}"#,
        r#"{"epics":[{"number":1,"title":"t","stories":"nope"}],"story_dependencies":[{"story":1.1,"depends_on":[]}]}"#,
        r#"{"epics":[{"number":1,"title":"t","stories":[{"number":"1.1","title":"s"}]}],"epic_dependencies":[{"epic":99999999999999999999,"depends_on":1}]}"#,
        r#"{"epics":[{"number":1,"title":"t","stories":[{"number":"1.1","title":"s","initial_agent_status":"reported_done"}]}]}"#,
        r#"{"epics":[{"number":1,"title":"t","position":-5,"stories":[{"number":"1.1","title":"s","estimated_hours":"NaN"}]}]}"#,
    ]
    .iter()
    .map(|b| (*b).to_string())
    .collect();
    out.push(deep);
    out.push(json!({"metadata": nested, "state_data": nested, "title": "deep"}).to_string());
    out
}

/// Path segments that are not ids.
fn odd_ids() -> Vec<String> {
    vec![
        "not-a-uuid".into(),
        "%00".into(),
        "a%00b".into(),
        "%F0%9F%9A%80".into(),
        "x".repeat(5000),
        "00000000-0000-0000-0000-000000000000".into(),
        "-1".into(),
        "99999999999999999999".into(),
        "%27%3B%20DROP%20TABLE%20stories%3B--".into(),
        "..%2F..%2Fetc%2Fpasswd".into(),
        "US-1.1".into(),
        "%E2%80%AE".into(),
        // Segments that do not percent-decode to UTF-8.
        "%ff%fe".into(),
        "%C3%28".into(),
        "%80".into(),
        "a%E2%82".into(),
        "%ED%A0%80".into(),
    ]
}

const VERBS: [&str; 15] = [
    "contract",
    "claim",
    "start",
    "start-work",
    "heartbeat",
    "request-review",
    "report",
    "report-done",
    "unclaim",
    "force-unclaim",
    "review-complete",
    "verify",
    "reject",
    "backfill",
    "clear-escalation",
];

struct Fuzz<'a> {
    server: &'a Server,
    failures: Vec<String>,
    count: usize,
}

impl Fuzz<'_> {
    async fn send(&mut self, method: Method, key: &str, path: &str, body: Option<&str>, header: Option<(&str, &str)>) {
        let mut req = self.server.req(method.clone(), path).key(key);
        if let Some(body) = body {
            req = req.raw(body.to_string(), "application/json");
        }
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        let resp = req.send().await;
        self.count += 1;
        let shown: String = body.unwrap_or("").chars().take(300).collect();
        let path: String = path.chars().take(200).collect();
        if resp.status >= 500 {
            self.failures.push(format!("{method} {path} body={shown} → {} {}", resp.status, resp.body));
        } else if resp.status >= 400 {
            // Every refusal speaks the API's error shape, never a framework's plain text.
            let problem = match resp.body.get("error") {
                Some(_) => resp.shape_problem(),
                None => Some(format!("not the error shape: {}", resp.body)),
            };
            if let Some(problem) = problem {
                self.failures.push(format!("{method} {path} body={shown} → {}: {problem}", resp.status));
            }
        }
    }
}

async fn no_500(server: Server) {
    let t = server.tenant("Fuzz").await;
    let ids = seed(&server, &t, "Fuzz Shop").await;
    let (p, e1, s11, s12) =
        (ids.project.clone(), ids.epic(1).to_string(), ids.story("1.1").to_string(), ids.story("1.2").to_string());
    // 1.1 reported, so reviews and verifications get as far as the database.
    to_reported(&server, &t.agent, &s11).await;
    let resp = server.get(&t.orch, &format!("/api/v1/epics/{e1}/story_dependencies")).await;
    let story_dep = s(&resp.ok(200)["data"][0]["id"]);
    let resp = server.get(&t.orch, &format!("/api/v1/projects/{p}/epic_dependencies")).await;
    let epic_dep = s(&resp.ok(200)["data"][0]["id"]);
    let (_, key_id, _) = new_key(&server, &t.user, "agent", "fuzzed").await;
    let agent = agent_id(&server, &t.agent).await;

    let mut fuzz = Fuzz { server: &server, failures: Vec::new(), count: 0 };
    let bodies = bodies();

    // Every body to every endpoint that takes one.
    let mut writes: Vec<(Method, String, Vec<&str>)> = vec![
        (Method::POST, "/api/v1/projects".into(), vec![&t.user]),
        (Method::POST, format!("/api/v1/projects/{p}/epics"), vec![&t.orch]),
        (Method::POST, format!("/api/v1/projects/{p}/stories"), vec![&t.orch]),
        (Method::POST, format!("/api/v1/epics/{e1}/stories"), vec![&t.orch]),
        (Method::POST, "/api/v1/story_dependencies".into(), vec![&t.orch]),
        (Method::POST, "/api/v1/epic_dependencies".into(), vec![&t.orch]),
        (Method::POST, "/api/v1/api_keys".into(), vec![&t.user]),
        (Method::POST, format!("/api/v1/api_keys/{key_id}/rotate"), vec![&t.user]),
        (Method::POST, "/api/v1/agents/register".into(), vec![&t.agent]),
        (Method::POST, "/api/v1/stories/claim-next".into(), vec![&t.agent]),
        (Method::POST, "/api/v1/stories/reclaim-expired".into(), vec![&t.orch]),
        (Method::POST, format!("/api/v1/projects/{p}/import"), vec![&t.orch]),
        (Method::POST, format!("/api/v1/projects/{p}/import?merge=true"), vec![&t.orch]),
        (Method::PATCH, "/api/v1/tenants/me".into(), vec![&t.user]),
        (Method::PATCH, format!("/api/v1/projects/{p}"), vec![&t.orch]),
        (Method::PATCH, format!("/api/v1/epics/{e1}"), vec![&t.orch]),
        (Method::PATCH, format!("/api/v1/stories/{s12}"), vec![&t.orch]),
        (Method::PUT, format!("/api/v1/orchestrator/state/{p}"), vec![&t.orch]),
        (Method::POST, "/api/v1/skills".into(), vec![&t.user]),
        (Method::POST, "/api/v1/skills/team:fuzz/versions".into(), vec![&t.user]),
        (Method::POST, "/api/v1/skills/loopctl:review/results".into(), vec![&t.orch]),
    ];
    for verb in VERBS {
        let key = match verb {
            "contract" | "claim" | "start" | "start-work" | "heartbeat" | "request-review" | "report"
            | "report-done" | "unclaim" => &t.agent,
            "clear-escalation" => &t.user,
            _ => &t.orch,
        };
        writes.push((Method::POST, format!("/api/v1/stories/{s11}/{verb}"), vec![key]));
        writes.push((Method::POST, format!("/api/v1/stories/{s12}/{verb}"), vec![key]));
    }
    for (method, path, keys) in &writes {
        for key in keys {
            for body in &bodies {
                fuzz.send(method.clone(), key, path, Some(body), None).await;
            }
        }
    }

    // Odd ids in every id position, with the user key (and an agent key for the verbs).
    let templates: Vec<(Method, &str)> = vec![
        (Method::GET, "/api/v1/projects/{}"),
        (Method::PATCH, "/api/v1/projects/{}"),
        (Method::GET, "/api/v1/projects/{}/progress"),
        (Method::GET, "/api/v1/projects/{}/epics"),
        (Method::POST, "/api/v1/projects/{}/epics"),
        (Method::POST, "/api/v1/projects/{}/stories"),
        (Method::GET, "/api/v1/projects/{}/epic_dependencies"),
        (Method::GET, "/api/v1/projects/{}/dependency_graph"),
        (Method::GET, "/api/v1/projects/{}/export"),
        (Method::POST, "/api/v1/projects/{}/import"),
        (Method::GET, "/api/v1/epics/{}"),
        (Method::PATCH, "/api/v1/epics/{}"),
        (Method::GET, "/api/v1/epics/{}/progress"),
        (Method::GET, "/api/v1/epics/{}/stories"),
        (Method::POST, "/api/v1/epics/{}/stories"),
        (Method::GET, "/api/v1/epics/{}/story_dependencies"),
        (Method::GET, "/api/v1/stories/{}"),
        (Method::PATCH, "/api/v1/stories/{}"),
        (Method::GET, "/api/v1/stories/{}/history"),
        (Method::GET, "/api/v1/stories/{}/artifacts"),
        (Method::GET, "/api/v1/stories/{}/verifications"),
        (Method::GET, "/api/v1/agents/{}"),
        (Method::POST, "/api/v1/api_keys/{}/rotate"),
        (Method::GET, "/api/v1/orchestrator/state/{}"),
        (Method::PUT, "/api/v1/orchestrator/state/{}"),
        (Method::GET, "/api/v1/orchestrator/state/{}/history"),
        (Method::GET, "/api/v1/stories?project_id={}"),
        (Method::GET, "/api/v1/stories/ready?project_id={}"),
        (Method::GET, "/api/v1/stories/blocked?project_id={}"),
        (Method::GET, "/api/v1/changes?project_id={}"),
        (Method::GET, "/api/v1/audit?project_id={}"),
        (Method::GET, "/api/v1/audit?entity_id={}"),
        (Method::GET, "/api/v1/skills/{}"),
        (Method::GET, "/api/v1/skills/{}?version=1"),
        (Method::GET, "/api/v1/skills/{}/stats"),
        (Method::GET, "/api/v1/skills/{}/versions/1"),
        (Method::GET, "/api/v1/skills/loopctl:review/versions/{}"),
        (Method::POST, "/api/v1/skills/{}/versions"),
        (Method::POST, "/api/v1/skills/{}/results"),
        (Method::DELETE, "/api/v1/projects/{}"),
        (Method::DELETE, "/api/v1/epics/{}"),
        (Method::DELETE, "/api/v1/stories/{}"),
        (Method::DELETE, "/api/v1/api_keys/{}"),
        (Method::DELETE, "/api/v1/story_dependencies/{}"),
        (Method::DELETE, "/api/v1/epic_dependencies/{}"),
    ];
    let valid = r#"{"name":"n","title":"t","number":"1.8","epic_number":1,"state_data":{},"note":"n","reason":"r"}"#;
    for id in odd_ids() {
        for (method, template) in &templates {
            let path = template.replace("{}", &id);
            let body = (*method != Method::GET && *method != Method::DELETE).then_some(valid);
            fuzz.send(method.clone(), &t.user, &path, body, None).await;
        }
        for verb in VERBS {
            let path = format!("/api/v1/stories/{id}/{verb}");
            fuzz.send(Method::POST, &t.agent, &path, Some(valid), None).await;
            fuzz.send(Method::POST, &t.user, &path, Some(valid), None).await;
        }
    }

    // Odd query parameters.
    let queries = [
        "page=9223372036854775807",
        "page=-9223372036854775808",
        "page_size=9223372036854775807",
        "page=9223372036854775807&page_size=9223372036854775807",
        "page_size=0",
        "page_size=-1",
        "limit=-1",
        "limit=99999999999999999999",
        "offset=9223372036854775807",
        "offset=-9223372036854775808",
        "since=-1",
        "since=9223372036854775807",
        "since=99999999999999999999",
        "since=%00",
        "since=9999-99-99T99:99:99Z",
        "since=-262143-01-01T00:00:00Z",
        "since=262143-12-31T23:59:59Z",
        "entity_type=%00",
        "action=%00",
        "entity_id=%00",
        "state_key=%00",
        "state_key=%F0%9F%9A%80",
        "agent_status=%00",
        "verified_status=bogus",
        "number=%00",
        "number=99999.99999",
        "number=US-",
        "epic_id=not-a-uuid",
        "epic_id=%00",
        "include_archived=maybe",
        "include_revoked=%00",
        "merge=maybe",
        "status=%00",
        "phase=%00",
        "project_id=%00&number=1.1",
        "project_id=&since=",
        "version=-1",
        "version=99999999999999999999",
        "version=%00",
    ];
    let lists = [
        format!("/api/v1/stories?project_id={p}"),
        format!("/api/v1/stories/ready?project_id={p}"),
        format!("/api/v1/stories/blocked?project_id={p}"),
        format!("/api/v1/epics/{e1}/stories?x=1"),
        format!("/api/v1/changes?project_id={p}"),
        "/api/v1/changes?x=1".to_string(),
        "/api/v1/audit?x=1".to_string(),
        format!("/api/v1/orchestrator/state/{p}?x=1"),
        format!("/api/v1/orchestrator/state/{p}/history?x=1"),
        "/api/v1/projects?x=1".to_string(),
        "/api/v1/api_keys?x=1".to_string(),
        format!("/api/v1/stories/{s11}/history?x=1"),
        "/api/v1/skills/loopctl:review?x=1".to_string(),
    ];
    for list in &lists {
        for query in queries {
            fuzz.send(Method::GET, &t.user, &format!("{list}&{query}"), None, None).await;
        }
    }
    fuzz.send(Method::POST, &t.orch, &format!("/api/v1/projects/{p}/import?merge=%00"), Some("{\"epics\":[]}"), None)
        .await;

    // Odd headers.
    for epoch in ["99999999999999999999", "-9223372036854775808", "abc", "", " 1 ", "1.5", "0x10"] {
        for verb in ["start", "heartbeat", "report", "unclaim", "request-review"] {
            let path = format!("/api/v1/stories/{s12}/{verb}");
            fuzz.send(Method::POST, &t.agent, &path, Some("{}"), Some(("X-Claim-Epoch", epoch))).await;
        }
    }
    for auth in [
        format!("Bearer {}", "k".repeat(10_000)),
        "Bearer ".to_string(),
        "Bearer  ".to_string(),
        "bearer lowercase".to_string(),
        "Bearer a b c".to_string(),
        format!("Bearer {}x", t.user),
    ] {
        let resp = server.req(Method::GET, "/api/v1/whoami").header("authorization", &auth).send().await;
        if resp.status >= 500 || resp.shape_problem().is_some() || resp.body.get("error").is_none() {
            fuzz.failures.push(format!(
                "GET /api/v1/whoami with Authorization `{}` → {} {}",
                &auth[..auth.len().min(40)],
                resp.status,
                resp.body
            ));
        }
    }
    for content_type in
        ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "multipart/form-data"]
    {
        let resp = server.req(Method::POST, "/api/v1/projects").key(&t.user).raw("name=x", content_type).send().await;
        if resp.status >= 500 || resp.shape_problem().is_some() || resp.body.get("error").is_none() {
            fuzz.failures.push(format!("POST /api/v1/projects as {content_type} → {} {}", resp.status, resp.body));
        }
    }
    // /mcp with every content type, Accept header and method: refusals in the error shape.
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    for content_type in ["text/plain", "application/xml", "", "application/x-www-form-urlencoded", "application/json"] {
        for accept in ["application/json, text/event-stream", "text/html", "*/*", ""] {
            for body in [init, "[[[", "{}", "null"] {
                let mut req = server.req(Method::POST, "/mcp").key(&t.orch).raw(body, content_type);
                if !accept.is_empty() {
                    req = req.header("accept", accept);
                }
                let resp = req.send().await;
                fuzz.count += 1;
                // A JSON-RPC error (`{"jsonrpc":"2.0","error":{"code":-32600,…}}`) is what MCP
                // clients read; anything else refused must be the API's error shape.
                let json_rpc = resp.body["jsonrpc"] == "2.0" && resp.body["error"]["code"].is_i64();
                let refused_badly = resp.status >= 500
                    || (resp.status >= 400
                        && !json_rpc
                        && (resp.body.get("error").is_none() || resp.shape_problem().is_some()));
                if refused_badly {
                    fuzz.failures.push(format!(
                        "POST /mcp as `{content_type}` accepting `{accept}` body={body} → {} {}",
                        resp.status, resp.body
                    ));
                }
            }
        }
    }
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
        let resp = server.req(method.clone(), "/mcp").key(&t.orch).send().await;
        if resp.status >= 500 || resp.shape_problem().is_some() || resp.body.get("error").is_none() {
            fuzz.failures.push(format!("{method} /mcp → {} {}", resp.status, resp.body));
        }
    }
    for method in [Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
        fuzz.send(method, &t.user, "/api/v1/stories/ready", None, None).await;
    }
    let resp = server.req(Method::HEAD, "/api/v1/stories/ready").key(&t.user).send().await;
    if resp.status >= 500 {
        fuzz.failures.push(format!("HEAD /api/v1/stories/ready → {}", resp.status));
    }

    // Every read still answers over whatever got stored.
    let reads = [
        "/api/v1/projects?include_archived=true".to_string(),
        format!("/api/v1/projects/{p}"),
        format!("/api/v1/projects/{p}/progress"),
        format!("/api/v1/projects/{p}/epics"),
        format!("/api/v1/projects/{p}/export"),
        format!("/api/v1/projects/{p}/dependency_graph"),
        format!("/api/v1/stories?project_id={p}&limit=500"),
        format!("/api/v1/stories/ready?project_id={p}"),
        format!("/api/v1/stories/blocked?project_id={p}"),
        format!("/api/v1/stories/{s11}"),
        format!("/api/v1/stories/{s11}/history"),
        format!("/api/v1/stories/{s12}"),
        format!("/api/v1/epics/{e1}"),
        format!("/api/v1/epics/{e1}/progress"),
        format!("/api/v1/orchestrator/state/{p}"),
        format!("/api/v1/orchestrator/state/{p}/history"),
        "/api/v1/changes?since=0".to_string(),
        "/api/v1/audit?limit=1000".to_string(),
        "/api/v1/api_keys?include_revoked=true".to_string(),
        "/api/v1/agents".to_string(),
        "/api/v1/tenants/me".to_string(),
        "/api/v1/whoami".to_string(),
        format!("/api/v1/agents/{agent}"),
        "/api/v1/skills".to_string(),
        "/api/v1/skills/loopctl:review".to_string(),
        "/api/v1/skills/loopctl:review/stats".to_string(),
        "/api/v1/skills/team:fuzz".to_string(),
    ];
    for path in &reads {
        fuzz.send(Method::GET, &t.user, path, None, None).await;
    }
    let projects = server.get(&t.user, "/api/v1/projects?include_archived=true").await;
    for project in projects.ok(200)["data"].as_array().unwrap() {
        let id = s(&project["id"]);
        for path in [format!("/api/v1/projects/{id}/export"), format!("/api/v1/projects/{id}/progress")] {
            fuzz.send(Method::GET, &t.user, &path, None, None).await;
        }
    }

    // Deletes last.
    for path in [
        format!("/api/v1/story_dependencies/{story_dep}"),
        format!("/api/v1/epic_dependencies/{epic_dep}"),
        format!("/api/v1/api_keys/{key_id}"),
        format!("/api/v1/stories/{s11}"),
        format!("/api/v1/epics/{e1}"),
        format!("/api/v1/projects/{p}"),
    ] {
        fuzz.send(Method::DELETE, &t.user, &path, None, None).await;
        fuzz.send(Method::DELETE, &t.user, &path, None, None).await;
    }
    for path in &reads {
        fuzz.send(Method::GET, &t.user, path, None, None).await;
    }

    let count = fuzz.count;
    assert!(count > 1000, "the fuzzing sent {count} requests");
    assert!(
        fuzz.failures.is_empty(),
        "{} of {count} requests got a server error (or a refusal outside the API's error shape) on {}:\n{}",
        fuzz.failures.len(),
        server.backend(),
        fuzz.failures.join("\n")
    );
}
