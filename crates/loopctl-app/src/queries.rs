//! Read models over a project: ready, blocked, the dependency graph.

use loopctl_api::*;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use loopctl_store::{EpicCounts, StoryRecord};
use uuid::Uuid;

use crate::view::FromRecordAt;
use crate::{ANYONE, App, AppResult, Principal, require};

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
    /// Available stories, with the suggested batch for the next round of agents marked:
    /// every stale claim (its slot is taken already), then up to `max_concurrent_agents`
    /// minus those in flight, preferring the epic of the first.
    pub async fn ready_stories(
        &self,
        who: &Principal,
        project_id: Uuid,
        epic_id: Option<Uuid>,
        paging: Paging,
    ) -> AppResult<ReadyList> {
        require(who, ANYONE, "list ready stories")?;
        self.project_of(who, project_id).await?;
        let at = self.now();
        let counts = self.project_counts(who, project_id).await?;
        let all_ready = self.store.ready_stories(who.tenant_id, project_id, at).await?;
        let ready: Vec<&StoryRecord> = all_ready.iter().filter(|s| epic_id.is_none_or(|e| s.epic_id == e)).collect();
        let slots = (who.settings.max_concurrent_agents as usize).saturating_sub(counts.in_flight());
        let suggested = suggest(&ready, slots, at);
        let (page, page_size) = paging.window();
        let total_count = ready.len() as i64;
        let data = ready
            .iter()
            .skip(usize::try_from((page - 1).saturating_mul(page_size)).unwrap_or(usize::MAX))
            .take(usize::try_from(page_size).unwrap_or(0))
            .map(|s| {
                let mut brief = StoryBrief::from_record_at(*s, at);
                brief.suggested = Some(suggested.contains(&s.id));
                brief
            })
            .collect();
        Ok(ReadyList { data, meta: meta(page, page_size, total_count, &counts, who.settings.max_concurrent_agents) })
    }

    /// The project's story counts, summed over its epics (one aggregate query).
    pub(crate) async fn project_counts(&self, who: &Principal, project_id: Uuid) -> AppResult<EpicCounts> {
        let per_epic = self.store.stage_counts(who.tenant_id, project_id, self.now()).await?;
        Ok(EpicCounts::sum(&per_epic))
    }

    /// Stories not yet claimed that wait for unverified dependencies, each with what it waits for.
    pub async fn blocked_stories(&self, who: &Principal, project_id: Uuid, paging: Paging) -> AppResult<BlockedList> {
        require(who, ANYONE, "list blocked stories")?;
        self.project_of(who, project_id).await?;
        let stories = self.all_stories(who, project_id).await?;
        let counts = self.project_counts(who, project_id).await?;
        let graph = self.graph_of(who, project_id, &stories).await?;
        let by_id: HashMap<Uuid, &StoryRecord> = stories.iter().map(|s| (s.id, s)).collect();
        let at = self.now();
        let blocked: Vec<BlockedStory> = stories
            .iter()
            .filter(|s| graph.is_blocked(s.id))
            .map(|s| BlockedStory {
                story: StoryBrief::from_record_at(s, at),
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
        Ok(BlockedList { data, meta: meta(page, page_size, total_count, &counts, who.settings.max_concurrent_agents) })
    }
}

/// The suggested batch: every stale claim, then `slots` more from the first ready story's
/// epic, then from the rest in order. A fresh contract is someone's pick already, so it is
/// suggested only to fill a slot like any other.
fn suggest(ready: &[&StoryRecord], slots: usize, now: DateTime<Utc>) -> Vec<Uuid> {
    let stale = ready.iter().filter(|s| s.state.lease_expired(now)).map(|s| s.id);
    let waiting: Vec<&&StoryRecord> = ready.iter().filter(|s| !s.state.agent_status.in_flight()).collect();
    let Some(first) = waiting.first() else {
        return stale.collect();
    };
    let same_epic = waiting.iter().filter(|s| s.epic_id == first.epic_id);
    let others = waiting.iter().filter(|s| s.epic_id != first.epic_id);
    stale.chain(same_epic.chain(others).take(slots).map(|s| s.id)).collect()
}

fn meta(page: i64, page_size: i64, total_count: i64, counts: &EpicCounts, limit: u32) -> ListMeta {
    ListMeta {
        page,
        page_size,
        total_count,
        total_pages: total_count.saturating_add(page_size - 1) / page_size,
        in_flight: counts.in_flight(),
        max_concurrent_agents: limit,
        stale: usize::try_from(counts.stale).unwrap_or(0),
        total_stories: counts.total,
        verified_stories: counts.verified,
        project_complete: counts.complete(),
    }
}
