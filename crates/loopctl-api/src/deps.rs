//! Dependency edges between stories and between epics.

use crate::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateStoryDependency {
    pub story_id: Uuid,
    pub depends_on_story_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateEpicDependency {
    pub epic_id: Uuid,
    pub depends_on_epic_id: Uuid,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct StoryDependencyView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub depends_on_story_id: Uuid,
    pub inserted_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct EpicDependencyView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub epic_id: Uuid,
    pub depends_on_epic_id: Uuid,
    pub inserted_at: chrono::DateTime<chrono::Utc>,
}
