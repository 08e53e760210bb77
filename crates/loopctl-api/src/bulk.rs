//! Bulk verify / reject / claim: one result per story.

use crate::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkStory {
    pub story_id: Uuid,
    pub summary: Option<String>,
    pub review_type: Option<String>,
    pub reason: Option<String>,
    #[schema(value_type = Object)]
    pub findings: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct BulkResult {
    pub story_id: Uuid,
    /// `success` or `error`.
    pub status: String,
    pub code: Option<ErrorCode>,
    pub reason: Option<String>,
}

/// `POST /stories/bulk/verify|reject|mark-complete`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkStories {
    pub stories: Vec<BulkStory>,
}

/// `POST /stories/bulk/claim`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkIds {
    pub story_ids: Vec<Uuid>,
}

/// `POST /epics/:id/verify-all`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct VerifyAll {
    pub summary: Option<String>,
    pub review_type: Option<String>,
}
