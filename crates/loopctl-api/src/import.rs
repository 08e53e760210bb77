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
