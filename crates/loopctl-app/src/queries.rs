//! Read models over a project: ready, blocked, the dependency graph.

use std::collections::HashMap;

use loopctl_core::AgentStatus;
use loopctl_store::{StoryFilter, StoryRecord};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::view::StoryBrief;
use crate::{ANYONE, App, AppResult, Principal, require};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListMeta {
    pub page: i64,
    pub page_size: i64,
    pub total_count: i64,
    pub total_pages: i64,
    /// Stories assigned or implementing now, and the tenant's limit.
    pub in_flight: usize,
    pub max_concurrent_agents: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadyList {
    pub data: Vec<StoryBrief>,
    pub meta: ListMeta,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Blocker {
    pub id: Uuid,
    pub number: String,
    pub title: String,
    pub agent_status: String,
    pub verified_status: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BlockedStory {
    pub story: StoryBrief,
    pub blocking_dependencies: Vec<Blocker>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BlockedList {
    pub data: Vec<BlockedStory>,
    pub meta: ListMeta,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Paging {
    pub page: Option<i64>,
    pub page_size: Option<i64>,
}

impl Paging {
    fn window(self) -> (i64, i64) {
        (self.page.unwrap_or(1).max(1), self.page_size.unwrap_or(100).clamp(1, 500))
    }
}

impl App {
    /// Ready stories of a project in work order (epic position, epic number, story number),
    /// answered by one index-backed query.
    pub(crate) async fn ready_records(&self, who: &Principal, project_id: Uuid) -> AppResult<Vec<StoryRecord>> {
        Ok(self.store.ready_stories(who.tenant_id, project_id).await?)
    }

    /// Stories assigned or implementing in the project.
    async fn in_flight(&self, who: &Principal, project_id: Uuid) -> AppResult<usize> {
        let mut total = 0;
        for status in [AgentStatus::Assigned, AgentStatus::Implementing] {
            let filter = StoryFilter {
                project_id: Some(project_id),
                agent_status: Some(status),
                limit: 0,
                ..StoryFilter::default()
            };
            total += self.store.stories(who.tenant_id, filter).await?.1;
        }
        Ok(usize::try_from(total).unwrap_or(usize::MAX))
    }

    /// Ready stories, with the suggested batch for the next round of agents marked: up to
    /// `max_concurrent_agents` minus those in flight, preferring the epic of the first.
    pub async fn ready_stories(
        &self,
        who: &Principal,
        project_id: Uuid,
        epic_id: Option<Uuid>,
        paging: Paging,
    ) -> AppResult<ReadyList> {
        require(who, ANYONE, "list ready stories")?;
        self.project_of(who, project_id).await?;
        let in_flight = self.in_flight(who, project_id).await?;
        let all_ready = self.ready_records(who, project_id).await?;
        let ready: Vec<&StoryRecord> = all_ready.iter().filter(|s| epic_id.is_none_or(|e| s.epic_id == e)).collect();
        let limit = who.settings.max_concurrent_agents as usize;
        let slots = limit.saturating_sub(in_flight);
        let suggested = suggest(&ready, slots);
        let (page, page_size) = paging.window();
        let total_count = ready.len() as i64;
        let data = ready
            .iter()
            .skip(usize::try_from((page - 1).saturating_mul(page_size)).unwrap_or(usize::MAX))
            .take(usize::try_from(page_size).unwrap_or(0))
            .map(|s| {
                let mut brief = StoryBrief::from(*s);
                brief.suggested = Some(suggested.contains(&s.id));
                brief
            })
            .collect();
        Ok(ReadyList { data, meta: meta(page, page_size, total_count, in_flight, who.settings.max_concurrent_agents) })
    }

    /// Stories not yet claimed that wait for unverified dependencies, each with what it waits for.
    pub async fn blocked_stories(&self, who: &Principal, project_id: Uuid, paging: Paging) -> AppResult<BlockedList> {
        require(who, ANYONE, "list blocked stories")?;
        self.project_of(who, project_id).await?;
        let stories = self.all_stories(who, project_id).await?;
        let in_flight = stories.iter().filter(|s| s.state.agent_status.in_flight()).count();
        let graph = self.graph_of(who, project_id, &stories).await?;
        let by_id: HashMap<Uuid, &StoryRecord> = stories.iter().map(|s| (s.id, s)).collect();
        let blocked: Vec<BlockedStory> = stories
            .iter()
            .filter(|s| graph.is_blocked(s.id))
            .map(|s| BlockedStory {
                story: StoryBrief::from(s),
                blocking_dependencies: graph
                    .blockers(s.id)
                    .into_iter()
                    .filter_map(|id| by_id.get(&id))
                    .map(|dep| Blocker {
                        id: dep.id,
                        number: dep.number.clone(),
                        title: dep.title.clone(),
                        agent_status: dep.state.agent_status.as_str().into(),
                        verified_status: dep.state.verified_status.as_str().into(),
                    })
                    .collect(),
            })
            .collect();
        let (page, page_size) = paging.window();
        let total_count = blocked.len() as i64;
        let data = blocked
            .into_iter()
            .skip(usize::try_from((page - 1).saturating_mul(page_size)).unwrap_or(usize::MAX))
            .take(usize::try_from(page_size).unwrap_or(0))
            .collect();
        Ok(BlockedList {
            data,
            meta: meta(page, page_size, total_count, in_flight, who.settings.max_concurrent_agents),
        })
    }
}

/// The suggested batch: fill `slots` from the first ready story's epic, then from the rest
/// in order.
fn suggest(ready: &[&StoryRecord], slots: usize) -> Vec<Uuid> {
    let Some(first) = ready.first() else {
        return Vec::new();
    };
    let same_epic = ready.iter().filter(|s| s.epic_id == first.epic_id);
    let others = ready.iter().filter(|s| s.epic_id != first.epic_id);
    same_epic.chain(others).take(slots).map(|s| s.id).collect()
}

fn meta(page: i64, page_size: i64, total_count: i64, in_flight: usize, limit: u32) -> ListMeta {
    ListMeta {
        page,
        page_size,
        total_count,
        total_pages: total_count.saturating_add(page_size - 1) / page_size,
        in_flight,
        max_concurrent_agents: limit,
    }
}
