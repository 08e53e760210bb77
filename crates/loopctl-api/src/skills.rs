//! Skills: versioned prompt documents and their results.

use crate::prelude::*;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct SkillView {
    pub name: String,
    pub description: Option<String>,
    pub current_version: i64,
    pub built_in: bool,
    pub versions: Vec<i64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct SkillVersionView {
    pub name: String,
    pub version: i64,
    pub prompt_text: String,
    pub changelog: Option<String>,
    pub created_by: String,
    pub built_in: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublishSkill {
    pub prompt_text: String,
    pub changelog: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordSkillResult {
    pub version: Option<i64>,
    pub story_id: Option<Uuid>,
    /// `pass` or `fail`.
    pub result: String,
    #[schema(value_type = Object)]
    pub metrics: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct SkillStats {
    pub name: String,
    pub versions: Vec<VersionStats>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct VersionStats {
    pub version: i64,
    pub results: usize,
    pub passed: usize,
    pub failed: usize,
    pub pass_rate: f64,
}

/// `POST /skills`: publishes a skill (the next version when the name exists).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateSkill {
    pub name: String,
    pub prompt_text: String,
    pub description: Option<String>,
    pub changelog: Option<String>,
}
