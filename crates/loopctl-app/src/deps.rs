//! Dependencies between stories and between epics: same project, no self edges, no cycles.

use loopctl_api::*;

use crate::view::FromRecord;
use loopctl_core::graph::would_cycle;
use loopctl_store::{DependencyRecord, WriteOp};
use serde_json::json;
use uuid::Uuid;

use crate::{ANYONE, App, AppError, AppResult, HUMANS, MANAGERS, Principal, event, require};

impl FromRecord<DependencyRecord> for StoryDependencyView {
    fn from_record(d: &DependencyRecord) -> StoryDependencyView {
        StoryDependencyView {
            id: d.id,
            tenant_id: d.tenant_id,
            story_id: d.from_id,
            depends_on_story_id: d.to_id,
            inserted_at: d.created_at,
        }
    }
}

impl FromRecord<DependencyRecord> for EpicDependencyView {
    fn from_record(d: &DependencyRecord) -> EpicDependencyView {
        EpicDependencyView {
            id: d.id,
            tenant_id: d.tenant_id,
            epic_id: d.from_id,
            depends_on_epic_id: d.to_id,
            inserted_at: d.created_at,
        }
    }
}

fn cycle_error(what: &str) -> AppError {
    AppError::new(
        ErrorCode::CycleDetected,
        format!("this dependency would create a cycle between {what}; remove an edge of the loop first"),
    )
}

impl App {
    pub async fn add_story_dependency(
        &self,
        who: &Principal,
        request: CreateStoryDependency,
    ) -> AppResult<StoryDependencyView> {
        require(who, MANAGERS, "add dependencies")?;
        let story = self.story_of(who, request.story_id).await?;
        let target = self.story_of(who, request.depends_on_story_id).await?;
        if story.id == target.id {
            return Err(AppError::validation("a story cannot depend on itself"));
        }
        if story.project_id != target.project_id {
            return Err(AppError::validation("stories must belong to the same project"));
        }
        let deps = self.store.dependencies(who.tenant_id, story.project_id).await?;
        if deps.stories.iter().any(|d| d.from_id == story.id && d.to_id == target.id) {
            return Err(AppError::new(
                ErrorCode::Conflict,
                format!("story {} already depends on {}", story.number, target.number),
            ));
        }
        let edges: Vec<(Uuid, Uuid)> = deps.stories.iter().map(|d| (d.from_id, d.to_id)).collect();
        if would_cycle(&edges, story.id, target.id) {
            return Err(cycle_error("stories"));
        }
        let record = DependencyRecord {
            id: Uuid::now_v7(),
            tenant_id: who.tenant_id,
            project_id: story.project_id,
            from_id: story.id,
            to_id: target.id,
            created_at: self.now(),
        };
        let audit = event(
            who,
            Some(story.project_id),
            ("story_dependency", record.id),
            "created",
            json!({}),
            json!({"story": story.number, "depends_on": target.number}),
        );
        self.commit(vec![WriteOp::InsertStoryDependency(record.clone()), audit]).await?;
        Ok(StoryDependencyView::from_record(&record))
    }

    pub async fn add_epic_dependency(
        &self,
        who: &Principal,
        request: CreateEpicDependency,
    ) -> AppResult<EpicDependencyView> {
        require(who, MANAGERS, "add dependencies")?;
        let epic = self.epic_of(who, request.epic_id).await?;
        let target = self.epic_of(who, request.depends_on_epic_id).await?;
        if epic.id == target.id {
            return Err(AppError::validation("an epic cannot depend on itself"));
        }
        if epic.project_id != target.project_id {
            return Err(AppError::validation("epics must belong to the same project"));
        }
        let deps = self.store.dependencies(who.tenant_id, epic.project_id).await?;
        if deps.epics.iter().any(|d| d.from_id == epic.id && d.to_id == target.id) {
            return Err(AppError::new(
                ErrorCode::Conflict,
                format!("epic {} already depends on {}", epic.number, target.number),
            ));
        }
        let edges: Vec<(Uuid, Uuid)> = deps.epics.iter().map(|d| (d.from_id, d.to_id)).collect();
        if would_cycle(&edges, epic.id, target.id) {
            return Err(cycle_error("epics"));
        }
        let record = DependencyRecord {
            id: Uuid::now_v7(),
            tenant_id: who.tenant_id,
            project_id: epic.project_id,
            from_id: epic.id,
            to_id: target.id,
            created_at: self.now(),
        };
        let audit = event(
            who,
            Some(epic.project_id),
            ("epic_dependency", record.id),
            "created",
            json!({}),
            json!({"epic": epic.number, "depends_on": target.number}),
        );
        self.commit(vec![WriteOp::InsertEpicDependency(record.clone()), audit]).await?;
        Ok(EpicDependencyView::from_record(&record))
    }

    pub async fn delete_story_dependency(&self, who: &Principal, id: Uuid) -> AppResult<()> {
        require(who, HUMANS, "delete dependencies")?;
        let audit = event(who, None, ("story_dependency", id), "deleted", json!({}), json!({}));
        self.commit(vec![WriteOp::DeleteStoryDependency { tenant_id: who.tenant_id, id }, audit]).await?;
        Ok(())
    }

    pub async fn delete_epic_dependency(&self, who: &Principal, id: Uuid) -> AppResult<()> {
        require(who, HUMANS, "delete dependencies")?;
        let audit = event(who, None, ("epic_dependency", id), "deleted", json!({}), json!({}));
        self.commit(vec![WriteOp::DeleteEpicDependency { tenant_id: who.tenant_id, id }, audit]).await?;
        Ok(())
    }

    pub async fn list_epic_dependencies(
        &self,
        who: &Principal,
        project_id: Uuid,
    ) -> AppResult<Vec<EpicDependencyView>> {
        require(who, ANYONE, "read dependencies")?;
        self.project_of(who, project_id).await?;
        let deps = self.store.dependencies(who.tenant_id, project_id).await?;
        Ok(deps.epics.iter().map(EpicDependencyView::from_record).collect())
    }

    /// Story edges whose waiting story is in the epic (they may point across epics).
    pub async fn list_story_dependencies(&self, who: &Principal, epic_id: Uuid) -> AppResult<Vec<StoryDependencyView>> {
        require(who, ANYONE, "read dependencies")?;
        let epic = self.epic_of(who, epic_id).await?;
        let stories = self.all_stories(who, epic.project_id).await?;
        let in_epic: std::collections::HashSet<Uuid> =
            stories.iter().filter(|s| s.epic_id == epic_id).map(|s| s.id).collect();
        let deps = self.store.dependencies(who.tenant_id, epic.project_id).await?;
        Ok(deps.stories.iter().filter(|d| in_epic.contains(&d.from_id)).map(StoryDependencyView::from_record).collect())
    }

    /// Both levels of edges of a project, as `{from, to}` where `from` depends on `to`.
    pub async fn dependency_graph(&self, who: &Principal, project_id: Uuid) -> AppResult<GraphAnswer> {
        require(who, ANYONE, "read dependencies")?;
        self.project_of(who, project_id).await?;
        let epics = self.store.epics(who.tenant_id, project_id).await?;
        let stories = self.all_stories(who, project_id).await?;
        let deps = self.store.dependencies(who.tenant_id, project_id).await?;
        let graph_epics = epics
            .iter()
            .map(|e| GraphEpic {
                id: e.id,
                number: e.number,
                title: e.title.clone(),
                phase: e.phase.clone(),
                position: e.position,
                stories: stories
                    .iter()
                    .filter(|s| s.epic_id == e.id)
                    .map(|s| GraphStory {
                        id: s.id,
                        number: s.number.clone(),
                        title: s.title.clone(),
                        agent_status: s.state.agent_status.as_str().into(),
                        verified_status: s.state.verified_status.as_str().into(),
                        sort_key: s.sort_key,
                    })
                    .collect(),
            })
            .collect();
        let edges =
            |list: &[DependencyRecord]| list.iter().map(|d| Edge { from: d.from_id, to: d.to_id }).collect::<Vec<_>>();
        Ok(GraphAnswer {
            graph: DependencyGraph {
                epics: graph_epics,
                epic_dependencies: edges(&deps.epics),
                story_dependencies: edges(&deps.stories),
            },
        })
    }
}
