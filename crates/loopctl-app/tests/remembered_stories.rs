//! Two instances over one database, each remembering the stories it last wrote: a transition
//! that starts from a row another instance has moved on since is decided again from the row
//! as it is, never from memory — whether the story was taken back, its content edited, or
//! something it depends on added since.

use std::sync::Arc;

use loopctl_api::{ContractRequest, CreateProject, CreateStoryDependency, ErrorCode, ReasonRequest, UpdateStory};
use loopctl_app::{App, BootstrapRequest, Principal};
use loopctl_core::AgentStatus;
use loopctl_store::Store;
use loopctl_store_sqlite::SqliteStore;
use serde_json::json;
use uuid::Uuid;

struct TwoInstances {
    here: App,
    there: App,
    store: Arc<dyn Store>,
    agent: Principal,
    orchestrator: Principal,
    stories: Vec<(Uuid, String)>,
    _dir: tempfile::TempDir,
}

async fn two_instances() -> TwoInstances {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("loopctl.db")).await.expect("open"));
    let (here, there) = (App::new(store.clone()), App::new(store.clone()));
    let boot = here
        .bootstrap_tenant(BootstrapRequest { tenant_name: "two instances".into(), slug: None, email: None })
        .await
        .expect("bootstrap");
    let user = here.authenticate(&boot.keys.user).await.expect("user");
    let orchestrator = here.authenticate(&boot.keys.orchestrator).await.expect("orchestrator");
    let project = here
        .create_project(
            &orchestrator,
            CreateProject {
                name: "memory".into(),
                slug: None,
                repo_url: None,
                description: None,
                tech_stack: None,
                mission: None,
                metadata: None,
            },
        )
        .await
        .expect("project");
    let stories: Vec<_> = (1..=3)
        .map(|i| json!({"number": format!("1.{i}"), "title": format!("Story {i}"), "acceptance_criteria": [{"id": "AC-1", "description": "works"}]}))
        .collect();
    let plan = json!({"epics": [{"number": 1, "title": "Memory", "stories": stories}]});
    here.import_project(&orchestrator, project.id, &plan, false).await.expect("import");
    let request = serde_json::from_value(json!({"name": "implementer", "role": "agent"})).expect("key request");
    let key = here.create_api_key(&user, request).await.expect("agent key").raw_key.expect("raw key");
    let agent = here.authenticate(&key).await.expect("agent");
    let mut stories = Vec::new();
    for number in ["1.1", "1.2", "1.3"] {
        let story = here.resolve_story(&orchestrator, Some(project.id), number).await.expect("story");
        stories.push((story.id, story.title));
    }
    TwoInstances { here, there, store, agent, orchestrator, stories, _dir: dir }
}

fn contract(title: &str) -> ContractRequest {
    ContractRequest { story_title: Some(title.into()), ac_count: Some(json!(1)) }
}

#[tokio::test]
async fn a_claim_taken_back_through_another_instance_cannot_be_started_from_memory() {
    let t = two_instances().await;
    let (story, title) = t.stories[0].clone();
    t.here.contract_story(&t.agent, story, contract(&title)).await.expect("contract");
    t.here.claim_story(&t.agent, story).await.expect("claim");
    let reason = ReasonRequest { reason: Some("reassigning".into()), note: None };
    t.there.force_unclaim_story(&t.orchestrator, story, reason).await.expect("force-unclaim elsewhere");

    // This instance remembers the agent's claim; the row says it was taken back.
    let refused = t.here.start_story(&t.agent, story, None).await.expect_err("the claim is gone");
    assert_ne!(refused.code, ErrorCode::VersionConflict, "decided again, not given up: {refused:?}");
    let now = t.store.story(t.agent.tenant_id, story).await.expect("read").expect("story");
    assert_ne!(now.state.agent_status, AgentStatus::Implementing, "{:?}", now.state);
    assert_eq!(now.state.assigned_agent_id, None);
}

#[tokio::test]
async fn a_title_edited_through_another_instance_decides_the_next_contract() {
    let t = two_instances().await;
    let (story, title) = t.stories[1].clone();
    t.here.contract_story(&t.agent, story, contract(&title)).await.expect("contract");
    t.here.claim_story(&t.agent, story).await.expect("claim");
    t.here.unclaim_story(&t.agent, story, None).await.expect("unclaim");
    let edit = UpdateStory {
        title: Some("Story two, renamed".into()),
        description: None,
        acceptance_criteria: None,
        estimated_hours: None,
        metadata: None,
    };
    t.there.update_story(&t.orchestrator, story, edit).await.expect("edit elsewhere");

    // Remembered: the old title. The row: the new one, which is the only one that contracts.
    let old = t.here.contract_story(&t.agent, story, contract(&title)).await.expect_err("the old title");
    assert_eq!(old.code, ErrorCode::ContractMismatch, "{old:?}");
    t.here.contract_story(&t.agent, story, contract("Story two, renamed")).await.expect("the title as it is now");
}

#[tokio::test]
async fn a_dependency_added_through_another_instance_blocks_a_claim_decided_from_memory() {
    let t = two_instances().await;
    let (story, title) = t.stories[2].clone();
    let (blocker, _) = t.stories[0].clone();
    t.here.contract_story(&t.agent, story, contract(&title)).await.expect("contract");
    let edge = CreateStoryDependency { story_id: story, depends_on_story_id: blocker };
    t.there.add_story_dependency(&t.orchestrator, edge).await.expect("a dependency, elsewhere");

    // Remembered free; the edge moved no version, so the claim's compare-and-set looks.
    let blocked = t.here.claim_story(&t.agent, story).await.expect_err("1.3 waits for 1.1 now");
    assert_eq!(blocked.code, ErrorCode::DependenciesNotMet, "{blocked:?}");
    let now = t.store.story(t.agent.tenant_id, story).await.expect("read").expect("story");
    assert_eq!(now.state.assigned_agent_id, None, "not claimed: {:?}", now.state);
}
