//! Read models over a project: ready, blocked, the dependency graph.

use loopctl_api::*;
use std::collections::HashMap;

use loopctl_store::{FrontierQuery, ProjectTally};
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

/// At most this many blockers are listed per blocked story (an epic dependency can stand for
/// thousands of stories; the page stays bounded).
pub const BLOCKERS_LISTED: i64 = 100;

impl App {
    /// Available stories, with the suggested batch for the next round of agents marked:
    /// every stale claim (its slot is taken already), then up to `max_concurrent_agents`
    /// minus those in flight, preferring the epic of the first.
    ///
    /// Reads the maintained frontier: the page and the counts, each from an index, whatever
    /// the project's size.
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
        let (page, page_size) = paging.window();
        let frontier = |offset: i64, limit: i64, epic_id: Option<Uuid>, with_total: bool| FrontierQuery {
            tenant_id: who.tenant_id,
            project_id,
            epic_id,
            now: at,
            offset,
            limit,
            with_total,
        };
        let tally = self.store.project_tally(who.tenant_id, project_id, at).await?;
        let offset = (page - 1).saturating_mul(page_size);
        let listed = self.store.ready_stories(frontier(offset, page_size, epic_id, true)).await?;
        let slots =
            (who.settings.max_concurrent_agents as usize).saturating_sub(usize::try_from(tally.in_flight).unwrap_or(0));
        // The suggestion is every stale claim and the first `slots` waiting stories in work
        // order (one epic's stories are adjacent, so the first one's epic comes first). On a
        // later page, the waiting stories before it are counted from the frontier's head.
        let mut waiting_before = if offset == 0 {
            0
        } else {
            let head = self.store.ready_stories(frontier(0, offset.min(10_000), epic_id, false)).await?.stories;
            head.iter().filter(|s| !s.state.agent_status.in_flight()).count()
        };
        let data = listed
            .stories
            .iter()
            .map(|s| {
                let mut brief = StoryBrief::from_record_at(s, at);
                let waiting = !s.state.agent_status.in_flight();
                brief.suggested = Some(s.state.lease_expired(at) || (waiting && waiting_before < slots));
                waiting_before += usize::from(waiting);
                brief
            })
            .collect();
        let total_count = listed.total.unwrap_or(0);
        Ok(ReadyList { data, meta: meta(page, page_size, total_count, &tally, who.settings.max_concurrent_agents) })
    }

    /// Stories not yet claimed that wait for unverified dependencies, each with what it waits
    /// for (at most `BLOCKERS_LISTED`). One page from an index, and the page's blockers.
    pub async fn blocked_stories(&self, who: &Principal, project_id: Uuid, paging: Paging) -> AppResult<BlockedList> {
        require(who, ANYONE, "list blocked stories")?;
        self.project_of(who, project_id).await?;
        let at = self.now();
        let (page, page_size) = paging.window();
        let tally = self.store.project_tally(who.tenant_id, project_id, at).await?;
        let listed = self
            .store
            .blocked_stories(who.tenant_id, project_id, (page - 1).saturating_mul(page_size), page_size)
            .await?;
        let ids: Vec<Uuid> = listed.stories.iter().map(|s| s.id).collect();
        let mut blockers: HashMap<Uuid, Vec<Blocker>> = HashMap::new();
        for b in self.store.blockers(who.tenant_id, &ids, BLOCKERS_LISTED).await? {
            blockers.entry(b.blocked_id).or_default().push(Blocker {
                id: b.id,
                number: b.number,
                title: b.title,
                agent_status: b.agent_status.as_str().into(),
                verified_status: b.verified_status.as_str().into(),
            });
        }
        let data = listed
            .stories
            .iter()
            .map(|s| BlockedStory {
                story: StoryBrief::from_record_at(s, at),
                blocking_dependencies: blockers.remove(&s.id).unwrap_or_default(),
            })
            .collect();
        let total_count = listed.total.unwrap_or(0);
        Ok(BlockedList { data, meta: meta(page, page_size, total_count, &tally, who.settings.max_concurrent_agents) })
    }
}

fn meta(page: i64, page_size: i64, total_count: i64, tally: &ProjectTally, limit: u32) -> ListMeta {
    ListMeta {
        page,
        page_size,
        total_count,
        total_pages: total_count.saturating_add(page_size - 1) / page_size,
        in_flight: usize::try_from(tally.in_flight).unwrap_or(0),
        max_concurrent_agents: limit,
        stale: usize::try_from(tally.stale).unwrap_or(0),
        total_stories: tally.total,
        verified_stories: tally.verified,
        project_complete: tally.complete(),
    }
}
