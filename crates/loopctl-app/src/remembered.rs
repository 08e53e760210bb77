//! Stories as this process last wrote them, for the transitions that follow.
//!
//! Every transition reads its story, decides with the pure state machine, and
//! compare-and-sets on the version it read. An agent's transitions of one story come one
//! after another (contract, claim, start, report, then the orchestrator's verify), and each
//! read would return the row this process wrote a moment before: on PostgreSQL a round trip
//! per transition. So a transition may start from the row remembered here instead, because
//! the compare-and-set still decides:
//! - anything that changes a story moves its version (every transition, on any instance, and
//!   every edit of its content), so a decision on a row that changed since fails, and the
//!   transition reads the story afresh and decides again;
//! - what the row cannot show, that something it depends on was added or reopened since, the
//!   compare-and-set of a contract or claim checks in the database itself
//!   (`only_if_unblocked`);
//! - a refusal is never decided from memory: the story is read again, and decided again.
//!
//! Memory is bounded: past [`CAP`] stories the whole table starts over.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use loopctl_store::StoryRecord;
use uuid::Uuid;

/// Most stories remembered at once: a few per agent in flight is all the loop needs.
const CAP: usize = 1_024;

#[derive(Debug, Default)]
pub(crate) struct RememberedStories(Mutex<HashMap<(Uuid, Uuid), StoryRecord>>);

impl RememberedStories {
    /// The story as this process last wrote it, if it still remembers it; forgotten until
    /// the transition that takes it commits and remembers the row it wrote.
    pub(crate) fn take(&self, tenant_id: Uuid, story_id: Uuid) -> Option<StoryRecord> {
        self.entries().remove(&(tenant_id, story_id))
    }

    /// Remembers the row a transition just committed.
    pub(crate) fn put(&self, story: &StoryRecord) {
        let mut entries = self.entries();
        if entries.len() >= CAP {
            entries.clear();
        }
        entries.insert((story.tenant_id, story.id), story.clone());
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, Uuid), StoryRecord>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
