//! The change feed, the audit log and story history: three views of the events table.

use chrono::{DateTime, Utc};
use loopctl_api::*;
use loopctl_store::EventFilter;
use uuid::Uuid;

use crate::view::FromRecord;
use crate::{ANYONE, App, AppError, AppResult, HUMANS, Principal, require};

#[derive(Debug, Clone, Default)]
pub struct ChangesQuery {
    pub project_id: Option<Uuid>,
    /// A cursor (integer) or an ISO-8601 time.
    pub since: Option<String>,
    pub entity_type: Option<String>,
    pub action: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub project_id: Option<Uuid>,
    pub entity_type: Option<String>,
    pub entity_id: Option<Uuid>,
    pub action: Option<String>,
    pub limit: Option<i64>,
}

/// Where a feed continues: after a cursor, or after a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    Cursor(i64),
    Time(DateTime<Utc>),
}

/// Parses `since`: an integer cursor or an ISO-8601 time.
///
/// # Errors
/// `validation_failed` naming both accepted forms.
pub fn parse_since(text: &str) -> AppResult<Since> {
    let text = text.trim();
    if let Ok(cursor) = text.parse::<i64>() {
        return Ok(Since::Cursor(cursor.max(0)));
    }
    DateTime::parse_from_rfc3339(text).map(|t| Since::Time(t.with_timezone(&Utc))).map_err(|_| {
        AppError::field("since", "must be a cursor (integer) or an ISO-8601 time such as 2026-01-01T00:00:00Z")
    })
}

impl App {
    pub async fn changes(&self, who: &Principal, query: ChangesQuery) -> AppResult<Changes> {
        require(who, ANYONE, "read the change feed")?;
        if let Some(project) = query.project_id {
            self.project_of(who, project).await?;
        }
        let since = match query.since.as_deref() {
            None | Some("") => Since::Cursor(0),
            Some(text) => parse_since(text)?,
        };
        let limit = query.limit.unwrap_or(1000).clamp(1, 1000);
        let (after_cursor, after_time) = match since {
            Since::Cursor(c) => (Some(c), None),
            Since::Time(t) => (None, Some(t)),
        };
        let filter = EventFilter {
            project_id: query.project_id,
            entity_type: query.entity_type,
            action: query.action,
            after_cursor,
            after_time,
            limit: limit + 1,
            ..EventFilter::default()
        };
        // Where the feed stands before reading what is after a time: read first, so an event
        // committed in between has a higher cursor and is not skipped by the next poll.
        let head = match after_cursor {
            Some(cursor) => cursor,
            None => self.feed_head(who).await?,
        };
        let mut events = self.store.events(who.tenant_id, filter).await?;
        let has_more = events.len() as i64 > limit;
        events.truncate(usize::try_from(limit).unwrap_or(0));
        let data: Vec<EventView> = events.iter().map(EventView::from_record).collect();
        let next_cursor = data.last().map_or(head, |e| e.cursor);
        let next_since = data.last().map(|e| e.inserted_at).or(after_time);
        Ok(Changes { data, has_more, next_cursor, next_since })
    }

    /// The cursor of the tenant's newest event (0 when there is none).
    async fn feed_head(&self, who: &Principal) -> AppResult<i64> {
        let newest = EventFilter { limit: 1, newest_first: true, ..EventFilter::default() };
        Ok(self.store.events(who.tenant_id, newest).await?.first().map_or(0, |e| e.cursor))
    }

    pub async fn audit(&self, who: &Principal, query: AuditQuery) -> AppResult<Vec<EventView>> {
        require(who, HUMANS, "read the audit log")?;
        let filter = EventFilter {
            project_id: query.project_id,
            entity_type: query.entity_type,
            entity_id: query.entity_id,
            action: query.action,
            limit: query.limit.unwrap_or(100).clamp(1, 1000),
            newest_first: true,
            ..EventFilter::default()
        };
        Ok(self.store.events(who.tenant_id, filter).await?.iter().map(EventView::from_record).collect())
    }

    /// The newest events of the tenant (or one project, or one action), newest first: what
    /// a person watching the feed sees first.
    ///
    /// # Errors
    /// `not_found` for a project of another tenant.
    pub async fn recent_changes(
        &self,
        who: &Principal,
        project_id: Option<Uuid>,
        action: Option<String>,
        limit: i64,
    ) -> AppResult<Vec<EventView>> {
        require(who, ANYONE, "read the change feed")?;
        if let Some(project) = project_id {
            self.project_of(who, project).await?;
        }
        let filter = EventFilter {
            project_id,
            action,
            limit: limit.clamp(1, 1000),
            newest_first: true,
            ..EventFilter::default()
        };
        Ok(self.store.events(who.tenant_id, filter).await?.iter().map(EventView::from_record).collect())
    }

    /// Every event of one story, oldest first.
    pub async fn story_history(&self, who: &Principal, story_id: Uuid) -> AppResult<Vec<EventView>> {
        who.check_story_scope(story_id)?;
        self.story_of(who, story_id).await?;
        let filter = EventFilter {
            entity_type: Some("story".into()),
            entity_id: Some(story_id),
            limit: 10_000,
            ..EventFilter::default()
        };
        Ok(self.store.events(who.tenant_id, filter).await?.iter().map(EventView::from_record).collect())
    }
}
