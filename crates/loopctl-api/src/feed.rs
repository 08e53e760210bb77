//! The change feed.

use crate::prelude::*;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct Changes {
    pub data: Vec<EventView>,
    pub has_more: bool,
    /// Pass as `since` to continue (a cursor). Always present: with nothing new it is the
    /// cursor the feed stands at, so a poll by time continues without skipping or replaying.
    pub next_cursor: i64,
    /// The reference's continuation: the time of the last event.
    pub next_since: Option<DateTime<Utc>>,
}
