//! Tenant isolation for every endpoint: tenant B's keys, on every route that takes an id
//! (in the path, the query or the body), get what they would get for an id that does not
//! exist at all — 404 `not_found` for every role that may make the call — and lists never
//! show tenant A's rows. Afterwards tenant A's data is exactly as it was.
//!
//! The routes come from one table (`routes`), built once with A's ids and once with fresh
//! random ids, so the two answers can be compared route by route.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::*;

both!(tenant_isolation => tenant_isolation_sqlite, tenant_isolation_postgres);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum R {
    User,
    Orch,
    Agent,
}

const ALL: &[R] = &[R::User, R::Orch, R::Agent];
const MANAGERS: &[R] = &[R::User, R::Orch];
const HUMANS: &[R] = &[R::User];
const CLAIMERS: &[R] = &[R::Agent];

/// The ids a route may name.
struct Ids {
    project: String,
    slug: String,
    epic: String,
    epic2: String,
    story: String,
    story2: String,
    story_dep: String,
    epic_dep: String,
    key: String,
    agent: String,
    /// A skill only tenant A published.
    skill: String,
    /// Tenant B's own story, for bodies that mix tenants.
    b_story: String,
}

impl Ids {
    /// The same shape, every id of tenant A replaced by one that exists nowhere.
    fn random(b_story: &str) -> Ids {
        let id = || Uuid::now_v7().to_string();
        Ids {
            project: id(),
            slug: "no-such-project-anywhere".into(),
            epic: id(),
            epic2: id(),
            story: id(),
            story2: id(),
            story_dep: id(),
            epic_dep: id(),
            key: id(),
            agent: id(),
            skill: "team:nothing-here".into(),
            b_story: b_story.to_string(),
        }
    }
}

struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Roles that may make this call: they must get 404. Others get 404 or 403.
    must_404: &'static [R],
    /// Only "the same answer as for a name that exists nowhere" (name-keyed reads whose
    /// answer for an unknown name is an empty result).
    same_as_unknown: bool,
}

fn route(method: Method, path: String, body: Option<Value>, must_404: &'static [R]) -> Route {
    Route { method, path, body, must_404, same_as_unknown: false }
}

/// Every route of the API that takes an id, with a body that would be valid.
fn routes(i: &Ids) -> Vec<Route> {
    use Method as M;
    let (p, slug, e, e2, st, st2) = (&i.project, &i.slug, &i.epic, &i.epic2, &i.story, &i.story2);
    let report = commit_artifact("abc123");
    let mut r = vec![
        // Keys and agents.
        route(M::DELETE, format!("/api/v1/api_keys/{}", i.key), None, HUMANS),
        route(M::POST, format!("/api/v1/api_keys/{}/rotate", i.key), Some(json!({})), HUMANS),
        route(M::GET, format!("/api/v1/agents/{}", i.agent), None, MANAGERS),
        route(
            M::POST,
            "/api/v1/api_keys".into(),
            Some(json!({"name": "borrowed", "role": "orchestrator", "agent_id": i.agent})),
            HUMANS,
        ),
        // Projects.
        route(M::GET, format!("/api/v1/projects/{p}"), None, ALL),
        route(M::GET, format!("/api/v1/projects/{slug}"), None, ALL),
        route(M::PATCH, format!("/api/v1/projects/{p}"), Some(json!({"name": "pwned"})), MANAGERS),
        route(M::DELETE, format!("/api/v1/projects/{p}"), None, HUMANS),
        route(M::GET, format!("/api/v1/projects/{p}/progress"), None, ALL),
        route(M::POST, format!("/api/v1/projects/{p}/epics"), Some(json!({"number": 9, "title": "x"})), MANAGERS),
        route(M::GET, format!("/api/v1/projects/{p}/epics"), None, ALL),
        route(
            M::POST,
            format!("/api/v1/projects/{p}/stories"),
            Some(json!({"number": "1.9", "title": "x", "epic_number": 1})),
            MANAGERS,
        ),
        route(M::GET, format!("/api/v1/projects/{p}/epic_dependencies"), None, ALL),
        route(M::GET, format!("/api/v1/projects/{p}/dependency_graph"), None, ALL),
        route(M::GET, format!("/api/v1/projects/{p}/export"), None, ALL),
        route(M::POST, format!("/api/v1/projects/{p}/import"), Some(flat_doc(1)), ALL),
        route(M::POST, format!("/api/v1/projects/{p}/import?merge=true"), Some(reference_doc()), ALL),
        route(M::POST, format!("/api/v1/projects/{slug}/import?merge=true"), Some(reference_doc()), ALL),
        // Epics.
        route(M::GET, format!("/api/v1/epics/{e}"), None, ALL),
        route(M::PATCH, format!("/api/v1/epics/{e}"), Some(json!({"title": "pwned"})), MANAGERS),
        route(M::DELETE, format!("/api/v1/epics/{e}"), None, HUMANS),
        route(M::GET, format!("/api/v1/epics/{e}/progress"), None, ALL),
        route(M::POST, format!("/api/v1/epics/{e}/stories"), Some(json!({"number": "1.9", "title": "x"})), MANAGERS),
        route(M::GET, format!("/api/v1/epics/{e}/stories"), None, ALL),
        route(M::GET, format!("/api/v1/epics/{e}/story_dependencies"), None, ALL),
        // Stories.
        route(M::GET, format!("/api/v1/stories?project_id={p}"), None, ALL),
        route(M::GET, format!("/api/v1/stories?project_id={slug}"), None, ALL),
        route(M::GET, format!("/api/v1/stories?project_id={p}&number=1.1"), None, ALL),
        route(M::GET, format!("/api/v1/stories/{st}"), None, ALL),
        route(M::PATCH, format!("/api/v1/stories/{st}"), Some(json!({"title": "pwned"})), MANAGERS),
        route(M::DELETE, format!("/api/v1/stories/{st}"), None, HUMANS),
        route(M::GET, format!("/api/v1/stories/{st}/history"), None, ALL),
        route(M::GET, format!("/api/v1/stories/{st}/artifacts"), None, ALL),
        route(M::GET, format!("/api/v1/stories/{st}/verifications"), None, ALL),
        // Dependencies.
        route(
            M::POST,
            "/api/v1/story_dependencies".into(),
            Some(json!({"story_id": st2, "depends_on_story_id": st})),
            MANAGERS,
        ),
        route(
            M::POST,
            "/api/v1/story_dependencies".into(),
            Some(json!({"story_id": i.b_story, "depends_on_story_id": st})),
            MANAGERS,
        ),
        route(
            M::POST,
            "/api/v1/story_dependencies".into(),
            Some(json!({"story_id": st, "depends_on_story_id": i.b_story})),
            MANAGERS,
        ),
        route(M::DELETE, format!("/api/v1/story_dependencies/{}", i.story_dep), None, HUMANS),
        route(
            M::POST,
            "/api/v1/epic_dependencies".into(),
            Some(json!({"epic_id": e, "depends_on_epic_id": e2})),
            MANAGERS,
        ),
        route(M::DELETE, format!("/api/v1/epic_dependencies/{}", i.epic_dep), None, HUMANS),
        // Ready, blocked, reclaim.
        route(M::GET, format!("/api/v1/stories/ready?project_id={p}"), None, ALL),
        route(M::GET, format!("/api/v1/stories/ready?project_id={slug}"), None, ALL),
        route(M::GET, format!("/api/v1/stories/blocked?project_id={p}"), None, ALL),
        route(M::POST, "/api/v1/stories/reclaim-expired".into(), Some(json!({"project_id": p})), MANAGERS),
        route(M::POST, "/api/v1/stories/claim-next".into(), Some(json!({"project_id": p})), CLAIMERS),
        // Feed and checkpoints.
        route(M::GET, format!("/api/v1/changes?project_id={p}&since=0"), None, ALL),
        route(M::PUT, format!("/api/v1/orchestrator/state/{p}"), Some(json!({"state_data": {"pwned": true}})), ALL),
        route(M::PUT, format!("/api/v1/orchestrator/state/{slug}"), Some(json!({"state_data": {"pwned": true}})), ALL),
        route(M::GET, format!("/api/v1/orchestrator/state/{p}"), None, ALL),
        route(M::GET, format!("/api/v1/orchestrator/state/{p}/history"), None, ALL),
    ];
    // Skills: A's own skill, A's own version of a built-in, results naming A's story.
    let sk = &i.skill;
    r.extend([
        route(M::GET, format!("/api/v1/skills/{sk}"), None, ALL),
        route(M::GET, format!("/api/v1/skills/{sk}?version=1"), None, ALL),
        route(M::GET, format!("/api/v1/skills/{sk}/versions/1"), None, ALL),
        route(M::POST, format!("/api/v1/skills/{sk}/results"), Some(json!({"result": "pass"})), MANAGERS),
        route(
            M::POST,
            "/api/v1/skills/loopctl:review/results".into(),
            Some(json!({"result": "fail", "version": 1, "story_id": st})),
            MANAGERS,
        ),
        Route { same_as_unknown: true, ..route(M::GET, format!("/api/v1/skills/{sk}/stats"), None, &[]) },
    ]);
    // The story lifecycle, every verb.
    let lifecycle: [(&str, Option<Value>); 15] = [
        ("contract", Some(json!({"story_title": "Sign-up endpoint", "ac_count": 2}))),
        ("claim", None),
        ("start", None),
        ("start-work", None),
        ("heartbeat", None),
        ("request-review", None),
        ("report", Some(report.clone())),
        ("report-done", Some(report)),
        ("unclaim", None),
        ("force-unclaim", Some(json!({"reason": "take it"}))),
        ("review-complete", Some(json!({"summary": "fine"}))),
        ("verify", Some(json!({"summary": "fine"}))),
        ("reject", Some(json!({"reason": "not good"}))),
        ("backfill", Some(json!({"reason": "done elsewhere"}))),
        ("clear-escalation", Some(json!({"note": "cleared"}))),
    ];
    for (verb, body) in lifecycle {
        r.push(route(Method::POST, format!("/api/v1/stories/{st}/{verb}"), body, ALL));
    }
    r
}

/// Tenant A's data as its own keys see it, for before/after comparison.
async fn snapshot(server: &Server, a: &Tenant, ids: &Ids) -> Value {
    let p = &ids.project;
    let mut export = server.get(&a.user, &format!("/api/v1/projects/{p}/export")).await.ok(200).clone();
    export["export_metadata"]["exported_at"] = Value::Null;
    let mut out = json!({"export": export});
    for (name, path) in [
        ("project", format!("/api/v1/projects/{p}")),
        ("stories", format!("/api/v1/stories?project_id={p}")),
        ("epics", format!("/api/v1/projects/{p}/epics")),
        ("story", format!("/api/v1/stories/{}", ids.story)),
        ("graph", format!("/api/v1/projects/{p}/dependency_graph")),
        ("state", format!("/api/v1/orchestrator/state/{p}")),
        ("state_history", format!("/api/v1/orchestrator/state/{p}/history")),
        ("keys", "/api/v1/api_keys?include_revoked=true".to_string()),
        ("agents", "/api/v1/agents".to_string()),
        ("tenant", "/api/v1/tenants/me".to_string()),
        ("skills", "/api/v1/skills".to_string()),
        ("skill", format!("/api/v1/skills/{}", ids.skill)),
        ("skill_stats", format!("/api/v1/skills/{}/stats", ids.skill)),
        ("review_skill", "/api/v1/skills/loopctl:review".to_string()),
        ("review_stats", "/api/v1/skills/loopctl:review/stats".to_string()),
    ] {
        out[name] = server.get(&a.user, &path).await.ok(200).clone();
    }
    // Keys carry last_used_at, which our own reads move; compare what matters.
    for key in out["keys"]["api_keys"].as_array_mut().unwrap() {
        key["last_used_at"] = Value::Null;
    }
    out["feed"] = json!(all_changes(server, &a.user, None).await);
    out
}

async fn tenant_isolation(server: Server) {
    let a = server.tenant("Tenant A").await;
    let b = server.tenant("Tenant B").await;

    // Tenant A: a project in flight, dependencies, an extra key, a checkpoint.
    let seeded = seed(&server, &a, "Alpha Shop").await;
    let resp = server.get(&a.orch, &format!("/api/v1/epics/{}/story_dependencies", seeded.epic(1))).await;
    let story_dep = s(&resp.ok(200)["data"][0]["id"]);
    let resp = server.get(&a.orch, &format!("/api/v1/projects/{}/epic_dependencies", seeded.project)).await;
    let epic_dep = s(&resp.ok(200)["data"][0]["id"]);
    let (_, key, _) = new_key(&server, &a.user, "agent", "a-extra").await;
    let a_agent = agent_id(&server, &a.agent).await;
    let path = format!("/api/v1/orchestrator/state/{}", seeded.project);
    server.put(&a.orch, &path, json!({"state_data": {"phase": "build"}})).await.ok(200);
    let resp = server
        .post(&a.user, "/api/v1/skills", json!({"name": "team:secret", "prompt_text": "tenant A's secret prompt"}))
        .await;
    assert_eq!(resp.ok(201)["skill"]["version"], 1);
    let resp = server
        .post(&a.user, "/api/v1/skills/loopctl:review/versions", json!({"prompt_text": "tenant A's review v2"}))
        .await;
    assert_eq!(resp.ok(201)["version"]["version"], 2);
    let result = json!({"result": "pass", "story_id": seeded.story("1.2")});
    server.post(&a.orch, "/api/v1/skills/team:secret/results", result).await.ok(201);
    claim(&server, &a.agent, seeded.story("1.1")).await;
    server.post(&a.agent, &format!("/api/v1/stories/{}/start", seeded.story("1.1")), Value::Null).await.ok(200);

    // Tenant B: its own project and story, with the same slug as nothing of A's.
    let b_seeded = seed_with(&server, &b.orch, "Beta Shop", &flat_doc(1)).await;
    let b_story = b_seeded.story("1.1").to_string();

    let ids = Ids {
        project: seeded.project.clone(),
        slug: seeded.slug.clone(),
        epic: seeded.epic(1).to_string(),
        epic2: seeded.epic(2).to_string(),
        story: seeded.story("1.1").to_string(),
        story2: seeded.story("1.2").to_string(),
        story_dep,
        epic_dep,
        key,
        agent: a_agent,
        skill: "team:secret".into(),
        b_story: b_story.clone(),
    };
    let before = snapshot(&server, &a, &ids).await;

    let real = routes(&ids);
    let fake = routes(&Ids::random(&b_story));
    assert_eq!(real.len(), fake.len());
    let keys = [(R::User, b.user.as_str()), (R::Orch, b.orch.as_str()), (R::Agent, b.agent.as_str())];
    let mut failures = Vec::new();
    for (r, f) in real.iter().zip(&fake) {
        for (role, key) in keys {
            let got = server.call(r.method.clone(), Some(key), &r.path, r.body.as_ref()).await;
            let baseline = server.call(f.method.clone(), Some(key), &f.path, f.body.as_ref()).await;
            let answer = (got.status, got.code().unwrap_or("-").to_string());
            let unknown = (baseline.status, baseline.code().unwrap_or("-").to_string());
            let what = format!("{role:?} key of B: {} {}", r.method, r.path);
            if r.same_as_unknown {
                if got.status >= 500
                    || got.body.to_string().contains("tenant A's")
                    || got.body.to_string().contains(&ids.story)
                {
                    failures.push(format!("{what}: got {} {}", got.status, got.body));
                }
            } else if r.must_404.contains(&role) {
                if answer != (404, "not_found".to_string()) {
                    failures.push(format!("{what}: expected 404 not_found, got {} {}", got.status, got.body));
                }
            } else if answer != (404, "not_found".to_string()) && answer != (403, "forbidden".to_string()) {
                failures
                    .push(format!("{what}: expected 404 not_found or 403 forbidden, got {} {}", got.status, got.body));
            }
            if answer != unknown {
                failures.push(format!(
                    "{what}: answers {answer:?} for A's id but {unknown:?} for an id that exists nowhere (an existence oracle)"
                ));
            }
            if got.status >= 400 && got.body.get("error").is_some() {
                got.assert_error_shape();
            }
        }
    }

    // Lists never show A's rows.
    let a_ids: Vec<String> = vec![
        ids.project.clone(),
        ids.epic.clone(),
        ids.epic2.clone(),
        ids.story.clone(),
        ids.story2.clone(),
        seeded.story("2.1").to_string(),
        ids.story_dep.clone(),
        ids.epic_dep.clone(),
        ids.key.clone(),
        ids.agent.clone(),
        a.id.clone(),
        "team:secret".into(),
        "tenant A's".into(),
    ];
    let mut lists: Vec<(&str, &str, String)> = Vec::new();
    for (name, key) in [("user", &b.user), ("orchestrator", &b.orch), ("agent", &b.agent)] {
        lists.push((name, key, "/api/v1/projects".into()));
        lists.push((name, key, "/api/v1/projects?include_archived=true".into()));
        lists.push((name, key, "/api/v1/changes?since=0".into()));
        lists.push((name, key, format!("/api/v1/stories?project_id={}", b_seeded.project)));
        lists.push((name, key, format!("/api/v1/stories/ready?project_id={}", b_seeded.project)));
        lists.push((name, key, "/api/v1/whoami".into()));
        lists.push((name, key, "/api/v1/tenants/me".into()));
    }
    for (name, key) in [("user", &b.user), ("orchestrator", &b.orch)] {
        lists.push((name, key, "/api/v1/agents".into()));
    }
    for (name, key) in [("user", &b.user), ("orchestrator", &b.orch), ("agent", &b.agent)] {
        lists.push((name, key, "/api/v1/skills".into()));
        lists.push((name, key, "/api/v1/skills/loopctl:review".into()));
        lists.push((name, key, "/api/v1/skills/loopctl:review/stats".into()));
    }
    lists.push(("user", &b.user, "/api/v1/api_keys?include_revoked=true".into()));
    lists.push(("user", &b.user, "/api/v1/audit".into()));
    lists.push(("user", &b.user, format!("/api/v1/audit?project_id={}", ids.project)));
    lists.push(("user", &b.user, format!("/api/v1/audit?entity_id={}", ids.story)));
    for (name, key, path) in &lists {
        let resp = server.get(key, path).await;
        if resp.status != 200 && resp.status != 404 {
            failures.push(format!("{name} key of B: GET {path}: got {} {}", resp.status, resp.body));
            continue;
        }
        let text = resp.body.to_string();
        for id in &a_ids {
            if text.contains(id.as_str()) {
                failures.push(format!("{name} key of B: GET {path} shows tenant A's id {id}: {text}"));
            }
        }
    }
    let resp = server.get(&b.user, "/api/v1/projects").await;
    let projects = resp.ok(200)["data"].as_array().unwrap();
    assert_eq!(projects.len(), 1, "B sees only its own project: {projects:?}");

    // A's data is exactly as it was.
    let after = snapshot(&server, &a, &ids).await;
    if before != after {
        failures.push(format!("tenant A's data changed:\nbefore: {before:#}\nafter: {after:#}"));
    }
    assert!(failures.is_empty(), "{} isolation failures:\n{}", failures.len(), failures.join("\n"));
}
