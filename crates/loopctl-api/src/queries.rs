//! Ready and blocked lists.

use crate::prelude::*;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ListMeta {
    pub page: i64,
    pub page_size: i64,
    pub total_count: i64,
    pub total_pages: i64,
    /// Stories assigned or implementing now (the core's definition; stale ones included,
    /// they hold their slot until taken over), and the tenant's limit.
    pub in_flight: usize,
    pub max_concurrent_agents: u32,
    /// In-flight stories whose lease ran out: available to take over with `claim`.
    pub stale: usize,
    pub total_stories: i64,
    pub verified_stories: i64,
    /// Every story of the project is verified (and it has at least one).
    pub project_complete: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ReadyList {
    pub data: Vec<StoryBrief>,
    pub meta: ListMeta,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct Blocker {
    pub id: Uuid,
    pub number: String,
    pub title: String,
    pub agent_status: String,
    pub verified_status: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BlockedStory {
    pub story: StoryBrief,
    /// What the story waits for: unverified direct dependencies, and unverified stories of
    /// the epics its epic depends on, in story order; at most 100 are listed (an epic
    /// dependency can stand for thousands of stories).
    pub blocking_dependencies: Vec<Blocker>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BlockedList {
    pub data: Vec<BlockedStory>,
    pub meta: ListMeta,
}
