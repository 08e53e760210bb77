//! Imports of a project's breakdown.

use crate::prelude::*;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub epics_created: usize,
    pub epics_updated: usize,
    pub stories_created: usize,
    pub stories_updated: usize,
    /// Existing stories a merge import did not name (they are kept): the first
    /// `ORPHAN_SAMPLE` of them; `stories_orphaned_count` says how many there are.
    pub stories_orphaned: Vec<OrphanedStory>,
    pub stories_orphaned_count: usize,
    pub dependencies_created: usize,
    pub dependencies_existing: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
pub struct OrphanedStory {
    pub number: String,
    pub title: String,
}

/// `GET /projects/:id/export`: the whole breakdown in the format `import` reads back, with
/// statuses and progress that an import ignores.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectExport {
    pub export_metadata: ExportMetadata,
    pub project: ExportedProject,
    /// In epic-number order, each with its stories in story order.
    pub epics: Vec<ExportedEpic>,
    pub story_dependencies: Vec<ExportedStoryDependency>,
    pub epic_dependencies: Vec<ExportedEpicDependency>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportMetadata {
    pub exported_at: DateTime<Utc>,
    pub loopctl_version: String,
    pub project_id: Uuid,
    pub tenant_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedProject {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub repo_url: Option<String>,
    pub tech_stack: Option<String>,
    pub status: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedEpic {
    pub number: i64,
    pub title: String,
    pub description: Option<String>,
    pub phase: Option<String>,
    pub position: i64,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub stories: Vec<ExportedStory>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedStory {
    pub number: String,
    pub title: String,
    pub description: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub acceptance_criteria: Value,
    pub estimated_hours: Option<f64>,
    pub agent_status: String,
    pub verified_status: String,
    pub assigned_agent_id: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub reported_done_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// `story` depends on `depends_on` (story numbers).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedStoryDependency {
    pub story: String,
    pub depends_on: String,
}

/// `epic` depends on `depends_on` (epic numbers).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedEpicDependency {
    pub epic: i64,
    pub depends_on: i64,
}
