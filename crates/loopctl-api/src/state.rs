//! The orchestrator's saved state.

use crate::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SaveState {
    pub state_key: Option<String>,
    #[schema(value_type = Object)]
    pub state_data: Value,
    /// The version you read; absent, the save always succeeds (history keeps the old one).
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct StateVersion {
    pub version: i64,
    #[schema(value_type = Object)]
    pub state_data: Value,
    pub saved_by: String,
    pub saved_at: chrono::DateTime<chrono::Utc>,
}
