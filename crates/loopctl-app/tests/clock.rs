//! The service layer reads the time from its `Clock`: a lease runs out and a token expires
//! when the clock says so, so these stories are told by moving a `ManualClock` half an hour
//! ahead instead of sleeping through it (on a real SQLite store).

use std::sync::Arc;

use chrono::{Duration, Utc};
use loopctl_api::{ContractRequest, CreateApiKey, CreateDispatch, CreateProject, ErrorCode, ReportRequest};
use loopctl_app::{App, BootstrapRequest, ManualClock, Principal};
use loopctl_store_sqlite::SqliteStore;
use serde_json::json;
use uuid::Uuid;

struct World {
    app: App,
    clock: Arc<ManualClock>,
    orchestrator: Principal,
    user: Principal,
    story: Uuid,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("loopctl.db")).await.expect("open SQLite");
    let clock = Arc::new(ManualClock::starting_at(Utc::now()));
    let app = App::new(Arc::new(store)).with_clock(clock.clone());
    let boot = app
        .bootstrap_tenant(BootstrapRequest { tenant_name: "clock".into(), slug: None, email: None })
        .await
        .expect("bootstrap");
    let user = app.authenticate(&boot.keys.user).await.expect("user key");
    let orchestrator = app.authenticate(&boot.keys.orchestrator).await.expect("orchestrator key");
    let project = CreateProject {
        name: "clock".into(),
        slug: None,
        repo_url: None,
        description: None,
        tech_stack: None,
        mission: None,
        metadata: None,
    };
    let project = app.create_project(&orchestrator, project).await.expect("project");
    let breakdown = json!({"epics": [{"number": 1, "title": "E", "stories": [
        {"number": "1.1", "title": "Lease", "acceptance_criteria": [{"id": "AC-1", "description": "works"}]}
    ]}]});
    app.import_project(&orchestrator, project.id, &breakdown, false).await.expect("import");
    let story = app.all_stories_for_bench(&orchestrator, project.id).await.expect("stories")[0].0;
    World { app, clock, orchestrator, user, story, _dir: dir }
}

async fn agent(w: &World, name: &str) -> Principal {
    let request = CreateApiKey { name: name.into(), role: "agent".into(), agent_id: None, expires_at: None };
    let key = w.app.create_api_key(&w.user, request).await.expect("agent key");
    w.app.authenticate(&key.raw_key.expect("raw key")).await.expect("authenticate the agent")
}

#[tokio::test]
async fn an_implementer_silent_past_its_lease_is_taken_over_and_its_late_report_is_fenced() {
    let w = world().await;
    let (first, second) = (agent(&w, "first").await, agent(&w, "second").await);
    let contract = ContractRequest { story_title: Some("Lease".into()), ac_count: Some(json!(1)) };
    w.app.contract_story(&first, w.story, contract).await.expect("contract");
    let claimed = w.app.claim_story(&first, w.story).await.expect("claim");
    let epoch = claimed.story.claim_epoch;
    let lease_end = claimed.story.lease_expires_at.expect("a claim has a lease");
    assert!(!claimed.story.stale);

    // Twenty-nine minutes of silence: still the holder's.
    w.clock.advance(lease_end - w.app.now() - Duration::minutes(1));
    let refused = w.app.claim_story(&second, w.story).await.expect_err("the lease still runs");
    assert_ne!(refused.code, ErrorCode::Internal);
    assert!(!w.app.story_detail(&w.orchestrator, w.story).await.expect("detail").story.stale);

    // Two minutes later the lease has run out: the story shows stale, another agent takes it over.
    w.clock.advance(Duration::minutes(2));
    assert!(w.app.story_detail(&w.orchestrator, w.story).await.expect("detail").story.stale);
    let taken = w.app.claim_story(&second, w.story).await.expect("take over the stale claim");
    assert_eq!(taken.story.claim_epoch, epoch + 1);
    assert!(taken.story.lease_expires_at.expect("new lease") > w.app.now());

    // The first holder wakes up and reports: fenced by the new epoch.
    let late = w.app.report_story(&first, w.story, ReportRequest::default(), Some(epoch)).await;
    assert_eq!(late.expect_err("a late report is refused").code, ErrorCode::StaleClaim);
}

#[tokio::test]
async fn a_dispatched_token_stops_working_when_the_clock_passes_its_expiry() {
    let w = world().await;
    let request = CreateDispatch {
        role: "implementer".into(),
        story_id: Some(w.story),
        agent_id: None,
        parent_dispatch_id: None,
        expires_in_seconds: Some(60),
    };
    let dispatched = w.app.create_dispatch(&w.orchestrator, request).await.expect("dispatch");
    let token = dispatched.api_key.raw_key;
    w.app.authenticate(&token).await.expect("a fresh token works");
    w.clock.advance(Duration::seconds(59));
    w.app.authenticate(&token).await.expect("still inside its minute");
    w.clock.advance(Duration::seconds(2));
    let expired = w.app.authenticate(&token).await.expect_err("past its expiry");
    assert_eq!(expired.code, ErrorCode::TokenExpired);
}
