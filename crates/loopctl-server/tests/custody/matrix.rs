//! Check 10: the authorization matrix — every mutating endpoint × every kind of caller.
//!
//! One row per endpoint (method, path template as in the OpenAPI document, what `{id}`
//! names, the state the target story is put in first, the body, the expected answer per
//! caller, who may). Every row gets a fresh project, so a call that succeeds never changes
//! what another row sees. Within a row the refusals run first, against the prepared state
//! in which the call would succeed: WIRE.md checks permission before state, so a refusal
//! must be a 403 (or 404 across tenants) there, and must change nothing (no change-feed
//! event, the story as it was). Then the callers that may make the call run, in column order.
//! For the story endpoints the refusals run once more with the story in another state
//! (fresh, or reported when the row starts fresh), and must answer the same.
//! The other tenant calls with the most powerful of its keys that the row allows, naming
//! tenant A's ids: it must get 404, or act in its own tenant where the path names no id.
//!
//! The table is checked against `/api/v1/openapi.json` at runtime: a mutating path the
//! server documents but the table lacks fails the test, so a new endpoint cannot be
//! forgotten. Superadmin keys are not tenant keys (the tenant API refuses them), so they
//! have no column.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

/// The state the target story (1.1) is put in by its dispatched implementer before the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prep {
    Fresh,
    Contracted,
    Assigned,
    Implementing,
    Reported,
    /// Rejected three times: escalated, not locked.
    Escalated,
}

/// What the path parameter (`{id}`, `{project_id}`, `{name}`) names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum On {
    /// No path parameter.
    NoId,
    /// Story 1.1, the one the "own story" tokens were dispatched for.
    Story,
    /// Epic 1, holding story 1.1.
    Epic,
    Project,
    /// A spare agent key of tenant A.
    Key,
    /// A spare dispatch of tenant A.
    Dispatch,
    /// Story 1.2 → 1.1.
    StoryDep,
    /// Epic 2 → epic 1.
    EpicDep,
    /// The built-in `loopctl:review`.
    Skill,
    /// A webhook of tenant A.
    Webhook,
}

use On::*;
use Prep::*;

/// The callers, in the order of the columns (and of execution within a phase).
const CALLERS: [&str; 8] = [
    "other tenant's key",
    "reviewer token of another story",
    "implementer token of another story",
    "reviewer token of this story",
    "implementer token of this story",
    "agent key",
    "orchestrator key",
    "user key",
];

/// Expected answers:
/// - `ok` 2xx · `own` 2xx, acting in the caller's own tenant
/// - `p` permission passed: 2xx, or a state/validation refusal (409/422, `nothing_ready`),
///   never 401/403/`not_found`/5xx
/// - `f` 403 `forbidden` · `s` 403 `scope_violation` · `nf` 404 `not_found`
/// - `fc` 403 `forbidden` for an agent that is not the claimant (so only checked while the
///   story has one)
/// - `nf*` / `s*` (bulk calls, a refusal that depends on the story named rather than on the
///   caller's role): 404 / 403 with that code, or a bulk answer refusing every story with it
type Cells = [&'static str; 8];

struct Row {
    method: &'static str,
    path: &'static str,
    on: On,
    prep: Prep,
    body: &'static str,
    cells: Cells,
    who: &'static str,
}

const fn row(
    method: &'static str,
    path: &'static str,
    on: On,
    prep: Prep,
    body: &'static str,
    cells: Cells,
    who: &'static str,
) -> Row {
    Row { method, path, on, prep, body, cells, who }
}

/// Placeholders in bodies: `@S` story 1.1 · `@X` story 3.1 · `@P` project · `@E` epic 1 ·
/// `@G` epic 3 · `@U` a fresh unique token per call.
#[rustfmt::skip]
const TABLE: &[Row] = &[
    //  method    path                                         on        prep          body                                                                                      other  rev-O  imp-O  rev-S  imp-S  agent  orch   user     who may (WIRE / SPEC)
    // tenancy
    row("PATCH",  "/api/v1/tenants/me",                        NoId,     Fresh,        r#"{"settings":{"claim_lease_seconds":1800}}"#,                                           ["own", "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user"),
    row("POST",   "/api/v1/api_keys",                          NoId,     Fresh,        r#"{"name":"k-@U","role":"agent"}"#,                                                       ["own", "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user: only a human mints identities"),
    row("DELETE", "/api/v1/api_keys/{id}",                     Key,      Fresh,        "",                                                                                       ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user"),
    row("POST",   "/api/v1/api_keys/{id}/rotate",              Key,      Fresh,        "{}",                                                                                     ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user"),
    row("POST",   "/api/v1/agents/register",                   NoId,     Fresh,        r#"{"name":"agent-@U"}"#,                                                                 ["own", "s",   "s",   "s",   "s",   "ok",  "ok",  "f"],    "agent, orchestrator: names its own identity"),
    // work breakdown
    row("POST",   "/api/v1/projects",                          NoId,     Fresh,        r#"{"name":"P @U","slug":"p-@U"}"#,                                                        ["own", "s",   "s",   "s",   "s",   "f",   "ok",  "ok"],   "orchestrator, user"),
    row("PATCH",  "/api/v1/projects/{id}",                     Project,  Fresh,        r#"{"description":"changed"}"#,                                                           ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "ok"],   "orchestrator, user"),
    row("DELETE", "/api/v1/projects/{id}",                     Project,  Fresh,        "",                                                                                       ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user (archives)"),
    row("PUT",    "/api/v1/projects/{id}/runner",              Project,  Fresh,        r#"{"repo":"/srv/git/web.git","check_command":"cargo test"}"#,                            ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user (what the verifier checks)"),
    row("PUT",    "/api/v1/projects/{id}/budget",              Project,  Fresh,        r#"{"tokens":1000000}"#,                                                                  ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user (the limit that stops the orchestrator)"),
    row("POST",   "/api/v1/projects/{id}/epics",               Project,  Fresh,        r#"{"number":9,"title":"Nine"}"#,                                                         ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user"),
    row("POST",   "/api/v1/projects/{id}/stories",             Project,  Fresh,        r#"{"epic_number":1,"number":"1.9","title":"Nine","acceptance_criteria":[{"id":"AC","description":"x"}]}"#, ["nf", "s", "s", "s", "s", "f", "ok", "p"], "orchestrator, user"),
    row("POST",   "/api/v1/projects/{id}/import",              Project,  Fresh,        r#"{"merge":true,"epics":[{"number":4,"title":"Four","stories":[{"number":"4.1","title":"Story 4.1","acceptance_criteria":[{"id":"AC-4.1","description":"x"}]}]}]}"#, ["nf", "s", "s", "s", "s", "f", "ok", "ok"], "orchestrator, user"),
    row("PATCH",  "/api/v1/epics/{id}",                        Epic,     Fresh,        r#"{"title":"Renamed"}"#,                                                                 ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "ok"],   "orchestrator, user"),
    row("DELETE", "/api/v1/epics/{id}",                        Epic,     Fresh,        "",                                                                                       ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "p"],    "user"),
    row("POST",   "/api/v1/epics/{id}/stories",                Epic,     Fresh,        r#"{"number":"1.8","title":"Eight"}"#,                                                    ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user"),
    row("POST",   "/api/v1/epics/{id}/verify-all",             Epic,     Reported,     "{}",                                                                                     ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "ok"],   "orchestrator, user; per-story custody"),
    row("PATCH",  "/api/v1/stories/{id}",                      Story,    Fresh,        r#"{"description":"changed"}"#,                                                           ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "ok"],   "orchestrator, user"),
    row("DELETE", "/api/v1/stories/{id}",                      Story,    Fresh,        "",                                                                                       ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "p"],    "user"),
    row("POST",   "/api/v1/story_dependencies",                NoId,     Fresh,        r#"{"story_id":"@X","depends_on_story_id":"@S"}"#,                                        ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user"),
    row("DELETE", "/api/v1/story_dependencies/{id}",           StoryDep, Fresh,        "",                                                                                       ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user"),
    row("POST",   "/api/v1/epic_dependencies",                 NoId,     Fresh,        r#"{"epic_id":"@G","depends_on_epic_id":"@E"}"#,                                          ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user"),
    row("DELETE", "/api/v1/epic_dependencies/{id}",            EpicDep,  Fresh,        "",                                                                                       ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user"),
    row("PUT",    "/api/v1/orchestrator/state/{project_id}",   Project,  Fresh,        r#"{"state_data":{"step":1}}"#,                                                           ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "ok"],   "orchestrator, user"),
    // webhooks
    row("POST",   "/api/v1/webhooks",                          NoId,     Fresh,        r#"{"url":"https://93.184.216.34/hook-@U","events":["verified"]}"#,                       ["own", "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user (where the tenant's events go)"),
    row("DELETE", "/api/v1/webhooks/{id}",                     Webhook,  Fresh,        "",                                                                                       ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user"),
    // skills
    row("POST",   "/api/v1/skills",                            NoId,     Fresh,        r#"{"name":"team:x-@U","prompt_text":"do it"}"#,                                          ["own", "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user"),
    row("POST",   "/api/v1/skills/{name}/versions",            Skill,    Fresh,        r#"{"prompt_text":"v2"}"#,                                                                ["own", "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user"),
    row("POST",   "/api/v1/skills/{name}/results",             Skill,    Fresh,        r#"{"result":"pass","story_id":"@S"}"#,                                                   ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "ok"],   "orchestrator, user"),
    // dispatch and bulk
    row("POST",   "/api/v1/dispatches",                        NoId,     Fresh,        r#"{"role":"implementer","story_id":"@S"}"#,                                              ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "ok"],   "orchestrator, user"),
    row("DELETE", "/api/v1/dispatches/{id}",                   Dispatch, Fresh,        "",                                                                                       ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user"),
    row("POST",   "/api/v1/stories/bulk/verify",               NoId,     Reported,     r#"{"stories":[{"story_id":"@S"}]}"#,                                                     ["nf*", "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user; per-story custody"),
    row("POST",   "/api/v1/stories/bulk/reject",               NoId,     Reported,     r#"{"stories":[{"story_id":"@S","reason":"no"}]}"#,                                       ["nf*", "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user; per-story custody"),
    row("POST",   "/api/v1/stories/bulk/mark-complete",        NoId,     Reported,     r#"{"stories":[{"story_id":"@S"}]}"#,                                                     ["nf*", "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user; per-story custody"),
    row("POST",   "/api/v1/stories/bulk/claim",                NoId,     Contracted,   r#"{"story_ids":["@S"]}"#,                                                                ["nf*", "s",   "s*",  "s",   "ok",  "p",   "f",   "f"],    "agent (claim)"),
    row("POST",   "/api/v1/stories/claim-next",                NoId,     Fresh,        r#"{"project_id":"@P"}"#,                                                                 ["nf",  "s",   "s",   "s",   "s",   "ok",  "f",   "f"],    "agent (contract + claim)"),
    row("POST",   "/api/v1/stories/reclaim-expired",           NoId,     Fresh,        r#"{"project_id":"@P"}"#,                                                                 ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "ok"],   "orchestrator, user"),
    // the story lifecycle (WIRE.md, "Roles on the story lifecycle")
    row("POST",   "/api/v1/stories/{id}/contract",             Story,    Fresh,        r#"{"story_title":"Story 1.1","ac_count":1}"#,                                            ["nf",  "s",   "s",   "s",   "ok",  "p",   "p",   "f"],    "agent; an orchestrator may contract"),
    row("POST",   "/api/v1/stories/{id}/claim",                Story,    Contracted,   "",                                                                                       ["nf",  "s",   "s",   "s",   "ok",  "p",   "f",   "f"],    "agent"),
    row("POST",   "/api/v1/stories/{id}/start",                Story,    Assigned,     "",                                                                                       ["nf",  "s",   "s",   "s",   "ok",  "fc",  "f",   "f"],    "the claimant"),
    row("POST",   "/api/v1/stories/{id}/start-work",           Story,    Assigned,     "",                                                                                       ["nf",  "s",   "s",   "s",   "ok",  "fc",  "f",   "f"],    "the claimant"),
    row("POST",   "/api/v1/stories/{id}/heartbeat",            Story,    Assigned,     "",                                                                                       ["nf",  "s",   "s",   "s",   "ok",  "fc",  "f",   "f"],    "the claimant"),
    row("POST",   "/api/v1/stories/{id}/request-review",       Story,    Implementing, "",                                                                                       ["nf",  "s",   "s",   "s",   "p",   "fc",  "f",   "f"],    "the assignee (strict flow)"),
    row("POST",   "/api/v1/stories/{id}/report",               Story,    Implementing, r#"{"artifact":{"artifact_type":"commit_diff","details":{"commit_sha":"0123abcd"}}}"#,    ["nf",  "s",   "s",   "fc",  "ok",  "fc",  "p",   "f"],    "the assignee; an orchestrator on its behalf"),
    row("POST",   "/api/v1/stories/{id}/report-done",          Story,    Implementing, r#"{"artifact":{"artifact_type":"commit_diff","details":{"commit_sha":"0123abcd"}}}"#,    ["nf",  "s",   "s",   "fc",  "ok",  "fc",  "p",   "f"],    "the assignee; an orchestrator on its behalf"),
    row("POST",   "/api/v1/stories/{id}/unclaim",              Story,    Assigned,     "",                                                                                       ["nf",  "s",   "s",   "s",   "ok",  "fc",  "f",   "f"],    "the claimant"),
    row("POST",   "/api/v1/stories/{id}/force-unclaim",        Story,    Implementing, r#"{"reason":"went silent"}"#,                                                            ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user"),
    row("POST",   "/api/v1/stories/{id}/review-complete",      Story,    Reported,     "{}",                                                                                     ["nf",  "s",   "s",   "ok",  "s",   "f",   "p",   "p"],    "orchestrator, user, dispatched reviewer; never the implementer"),
    row("POST",   "/api/v1/stories/{id}/verify",               Story,    Reported,     r#"{"summary":"ok"}"#,                                                                    ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user; never the implementer"),
    row("POST",   "/api/v1/stories/{id}/reject",               Story,    Reported,     r#"{"reason":"no"}"#,                                                                     ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user; never the implementer"),
    row("POST",   "/api/v1/stories/{id}/verification-runs",    Story,    Reported,     r#"{"result":"pass","checks":[{"name":"tests","passed":true}]}"#,                         ["nf",  "s",   "s",   "f",   "f",   "f",   "f",   "f"],    "verifier keys only (the runner); trust tests cover it"),
    row("POST",   "/api/v1/stories/{id}/backfill",             Story,    Fresh,        r#"{"reason":"shipped before loopctl"}"#,                                                 ["nf",  "s",   "s",   "s",   "s",   "f",   "ok",  "p"],    "orchestrator, user"),
    row("POST",   "/api/v1/stories/{id}/clear-escalation",     Story,    Escalated,    r#"{"note":"split it"}"#,                                                                 ["nf",  "s",   "s",   "s",   "s",   "f",   "f",   "ok"],   "user only"),
];

fn is_refusal(cell: &str) -> bool {
    matches!(cell, "f" | "fc" | "s" | "nf" | "nf*" | "s*")
}

/// Every bulk result refused with `code` (the answer as a whole not a success).
fn every_item(resp: &Resp, code: &str) -> bool {
    let results = resp.body["results"].as_array();
    !(200..300).contains(&resp.status)
        && results.is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["status"] == "error" && r["code"] == code))
}

fn meets(cell: &str, resp: &Resp) -> bool {
    let (status, code) = (resp.status, resp.code());
    let success = (200..300).contains(&status);
    match cell {
        "ok" | "own" => success,
        "p" => {
            success
                || ((400..500).contains(&status)
                    && !matches!(
                        code,
                        Some(
                            "unauthorized"
                                | "forbidden"
                                | "scope_violation"
                                | "not_found"
                                | "token_expired"
                                | "token_revoked"
                        )
                    ))
        }
        "f" | "fc" => status == 403 && code == Some("forbidden"),
        "s" => status == 403 && code == Some("scope_violation"),
        "nf" => status == 404 && code == Some("not_found"),
        "nf*" => (status == 404 && code == Some("not_found")) || every_item(resp, "not_found"),
        "s*" => (status == 403 && code == Some("scope_violation")) || every_item(resp, "scope_violation"),
        other => panic!("unknown cell `{other}` in the table"),
    }
}

/// One row's world in tenant A: a fresh project, its ids, and four dispatched tokens.
struct Fixture {
    project: String,
    epic1: String,
    epic3: String,
    s: String,
    x: String,
    target: String,
    imp_s: Dispatched,
    rev_s: Dispatched,
    imp_o: Dispatched,
    rev_o: Dispatched,
}

/// Epic 1: 1.1 (the target), 1.2 (depends on 1.1); epic 2 (depends on epic 1): 2.1;
/// epic 3: 3.1.
fn matrix_doc() -> Value {
    let mut d = doc(&[2, 1, 1]);
    d["story_dependencies"] = json!([{"story": "1.2", "depends_on": "1.1"}]);
    d["epic_dependencies"] = json!([{"epic": 2, "depends_on": 1}]);
    d
}

async fn fixture(server: &Server, a: &Tenant, row: &Row, prep: Prep) -> Fixture {
    let ids = seed(server, &a.orch, &matrix_doc()).await;
    let (s, o) = (ids.story("1.1").to_string(), ids.story("1.2").to_string());
    let imp_s = dispatch(server, &a.orch, "implementer", &s).await;
    let rev_s = dispatch(server, &a.orch, "reviewer", &s).await;
    let imp_o = dispatch(server, &a.orch, "implementer", &o).await;
    let rev_o = dispatch(server, &a.orch, "reviewer", &o).await;
    let target = match row.on {
        NoId => String::new(),
        Story => s.clone(),
        Epic => ids.epic(1).to_string(),
        Project => ids.project.clone(),
        Key => new_key(server, &a.user, "agent", None).await.1,
        Dispatch => dispatch(server, &a.orch, "implementer", &o).await.id,
        StoryDep => {
            let resp = server.get(&a.user, &format!("/api/v1/epics/{}/story_dependencies", ids.epic(1))).await;
            crate::support::s(&resp.ok(200)["data"][0]["id"])
        }
        EpicDep => {
            let resp = server.get(&a.user, &format!("/api/v1/projects/{}/epic_dependencies", ids.project)).await;
            crate::support::s(&resp.ok(200)["data"][0]["id"])
        }
        Skill => "loopctl:review".into(),
        Webhook => {
            let resp = server.post(&a.user, "/api/v1/webhooks", json!({"url": "https://93.184.216.34/hook"})).await;
            crate::support::s(&resp.ok(201)["webhook"]["id"])
        }
    };
    let key = &imp_s.key;
    let step = |verb: &'static str, body: Value| {
        let p = path(&s, verb);
        async move {
            server.post(key, &p, body).await.ok(200);
        }
    };
    let rounds = if prep == Escalated { 3 } else { 1 };
    for _ in 0..rounds {
        if prep == Fresh {
            break;
        }
        step("contract", contract_body("1.1")).await;
        if prep == Contracted {
            break;
        }
        step("claim", Value::Null).await;
        if prep == Assigned {
            break;
        }
        step("start", Value::Null).await;
        if prep == Implementing {
            break;
        }
        step("report", commit_artifact()).await;
        if prep == Escalated {
            server.post(&a.orch, &path(&s, "reject"), json!({"reason": "not yet"})).await.ok(200);
        }
    }
    if prep == Escalated {
        let st = story(server, &a.user, &s).await;
        assert_eq!((st["escalated"].as_bool(), st["escalation_locked"].as_bool()), (Some(true), Some(false)));
    }
    Fixture {
        project: ids.project.clone(),
        epic1: ids.epic(1).to_string(),
        epic3: ids.epic(3).to_string(),
        s,
        x: ids.story("3.1").to_string(),
        target,
        imp_s,
        rev_s,
        imp_o,
        rev_o,
    }
}

fn fill(text: &str, f: &Fixture) -> String {
    text.replace("@S", &f.s)
        .replace("@X", &f.x)
        .replace("@P", &f.project)
        .replace("@E", &f.epic1)
        .replace("@G", &f.epic3)
        .replace("@U", &Uuid::now_v7().simple().to_string())
}

/// The fields of the target story a refused call must leave as they were.
async fn snapshot(server: &Server, user: &str, id: &str) -> Value {
    let st = story(server, user, id).await;
    let fields = [
        "title",
        "description",
        "agent_status",
        "verified_status",
        "assigned_agent_id",
        "claim_epoch",
        "lease_expires_at",
        "iteration_count",
        "escalated",
        "escalation_locked",
        "metadata",
        "updated_at",
    ];
    let mut out = serde_json::Map::new();
    for f in fields {
        out.insert(f.into(), st[f].clone());
    }
    for list in ["reviews", "verifications", "artifacts"] {
        out.insert(list.into(), json!(st[list].as_array().map_or(0, Vec::len)));
    }
    Value::Object(out)
}

/// A change-feed event that only records a refused call (SPEC: refusals are audited).
fn records_a_refusal(event: &Value) -> bool {
    let action = event["action"].as_str().unwrap_or_default();
    ["refus", "denied", "blocked", "violation", "forbidden"].iter().any(|w| action.contains(w))
}

fn compact(body: &Value) -> String {
    let text = body.to_string();
    if text.len() > 300 { format!("{}…", &text[..300]) } else { text }
}

/// The mutating `(METHOD, path)` pairs of the OpenAPI document.
async fn documented_mutations(server: &Server) -> BTreeSet<(String, String)> {
    let resp = server.req(Method::GET, "/api/v1/openapi.json").send().await;
    let doc = resp.ok(200);
    let paths = doc["paths"].as_object().expect("the OpenAPI document has paths");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for method in ["post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

async fn matrix(server: Server) {
    // The table covers every mutating endpoint the server documents, once.
    let documented = documented_mutations(&server).await;
    assert!(documented.len() >= 40, "the OpenAPI document lists the API: {documented:?}");
    let mut table = BTreeSet::new();
    for r in TABLE {
        assert!(
            table.insert((r.method.to_string(), r.path.to_string())),
            "{} {} is in the table twice",
            r.method,
            r.path
        );
    }
    let missing: Vec<_> = documented.difference(&table).collect();
    assert!(missing.is_empty(), "mutating endpoints without a row in the authorization matrix: {missing:?}");
    let undocumented: Vec<_> = table.difference(&documented).collect();
    assert!(undocumented.is_empty(), "rows for endpoints the server does not document: {undocumented:?}");

    let a = server.tenant("Tenant A").await;
    let b = server.tenant("Tenant B").await;
    let (_, mut cursor) = changes_after(&server, &a.user, 0).await;
    let mut wrong: Vec<String> = Vec::new();
    let mut cells = 0;
    for row in TABLE {
        let f = fixture(&server, &a, row, row.prep).await;
        let (_, now) = changes_after(&server, &a.user, cursor).await;
        cursor = now;
        let before = snapshot(&server, &a.user, &f.s).await;
        cells += run_cells(&server, row, &f, (&a, &b), Phase::Refusals, &mut wrong).await;
        let (events, now) = changes_after(&server, &a.user, cursor).await;
        cursor = now;
        let changed: Vec<_> = events.iter().filter(|e| !records_a_refusal(e)).map(|e| e["action"].clone()).collect();
        if !changed.is_empty() {
            wrong.push(format!("{} {}: refused calls wrote change-feed events {changed:?}", row.method, row.path));
        }
        let after = snapshot(&server, &a.user, &f.s).await;
        if after != before {
            wrong.push(format!("{} {}: refused calls changed the story: {before} → {after}", row.method, row.path));
        }
        cells += run_cells(&server, row, &f, (&a, &b), Phase::Allowed, &mut wrong).await;

        // Permission before state: the same refusals with the story in another state.
        if row.path.contains("/stories") {
            let other_state = if row.prep == Fresh { Reported } else { Fresh };
            let f = fixture(&server, &a, row, other_state).await;
            run_cells(&server, row, &f, (&a, &b), Phase::RefusalsIn(other_state), &mut wrong).await;
            let (_, now) = changes_after(&server, &a.user, cursor).await;
            cursor = now;
        }
    }
    assert_eq!(cells, TABLE.len() * CALLERS.len());
    assert!(
        wrong.is_empty(),
        "{} authorization cells answered otherwise ({}):\n{}",
        wrong.len(),
        server.backend(),
        wrong.join("\n")
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The refusals, with the story in the row's state.
    Refusals,
    /// The callers that may make the call.
    Allowed,
    /// The refusals that do not depend on the story's state, with the story in another one.
    RefusalsIn(Prep),
}

/// Runs the cells of one phase of a row, in column order; answers how many ran.
async fn run_cells(
    server: &Server,
    row: &Row,
    f: &Fixture,
    (a, b): (&Tenant, &Tenant),
    phase: Phase,
    wrong: &mut Vec<String>,
) -> usize {
    // The other tenant calls with the most powerful of its keys the row allows.
    let other = if !is_refusal(row.cells[7]) {
        &b.user
    } else if !is_refusal(row.cells[6]) {
        &b.orch
    } else {
        &b.agent
    };
    let keys: [&str; 8] = [other, &f.rev_o.key, &f.imp_o.key, &f.rev_s.key, &f.imp_s.key, &a.agent, &a.orch, &a.user];
    let path = row.path.replace("{id}", &f.target).replace("{project_id}", &f.target).replace("{name}", &f.target);
    let method = Method::from_bytes(row.method.as_bytes()).expect("an HTTP method");
    let mut ran = 0;
    for (col, key) in keys.iter().enumerate() {
        let cell = row.cells[col];
        let runs = match phase {
            Phase::Refusals => is_refusal(cell),
            Phase::Allowed => !is_refusal(cell),
            Phase::RefusalsIn(_) => is_refusal(cell) && cell != "fc",
        };
        if !runs {
            continue;
        }
        let body = if row.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&fill(row.body, f)).expect("a JSON body")
        };
        let resp = server.call(method.clone(), Some(key), &path, (!body.is_null()).then_some(&body)).await;
        ran += 1;
        if !meets(cell, &resp) {
            let state = match phase {
                Phase::RefusalsIn(state) => state,
                _ => row.prep,
            };
            wrong.push(format!(
                "{} {}  [{}; story {state:?}]  {}: expected `{cell}`, got {} {}",
                row.method,
                row.path,
                row.who,
                CALLERS[col],
                resp.status,
                compact(&resp.body)
            ));
        }
    }
    ran
}

both!(matrix => authorization_matrix_sqlite, authorization_matrix_postgres);
