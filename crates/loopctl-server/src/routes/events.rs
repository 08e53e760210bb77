//! `GET /api/v1/events`: the change feed as Server-Sent Events. Replays what the caller
//! missed (from `Last-Event-ID` or `since`), then streams live; each event's `id` is its
//! cursor, so a reconnect resumes exactly where it left off.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use loopctl_app::ChangesQuery;
use loopctl_app::view::EventView;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, Caller, Params};

#[derive(Deserialize, Default)]
pub struct EventsQuery {
    project_id: Option<Uuid>,
    /// A cursor or an ISO-8601 time; `Last-Event-ID` wins when both are sent.
    since: Option<String>,
}

struct Feed {
    backlog: std::vec::IntoIter<EventView>,
    live: tokio::sync::broadcast::Receiver<loopctl_app::Published>,
    tenant_id: Uuid,
    project_id: Option<Uuid>,
    last_cursor: i64,
}

fn frame(event: &EventView) -> Event {
    Event::default()
        .id(event.cursor.to_string())
        .event(event.action.clone())
        .data(serde_json::to_string(event).unwrap_or_else(|_| "{}".into()))
}

/// Live change feed (SSE). `Last-Event-ID` resumes; a `resync` event means events were
/// dropped for a slow reader: fetch `/changes` from your last cursor.
#[utoipa::path(get, path = "/api/v1/events", tag = "feed")]
pub async fn events(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Params(q): Params<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    // Subscribe before reading the backlog, so nothing committed in between is lost; the
    // cursor filter drops what the backlog already had.
    let live = s.app.subscribe();
    let since = resume.or(q.since).or_else(|| Some("0".into()));
    let query = ChangesQuery { project_id: q.project_id, since, limit: Some(1000), ..ChangesQuery::default() };
    let changes = s.app.changes(&who, query).await?;
    let last_cursor = changes.next_cursor.unwrap_or(0);
    let feed = Feed {
        backlog: changes.data.into_iter(),
        live,
        tenant_id: who.tenant_id,
        project_id: q.project_id,
        last_cursor,
    };
    let stream = stream::unfold(feed, |mut feed| async move {
        if let Some(event) = feed.backlog.next() {
            return Some((Ok(frame(&event)), feed));
        }
        loop {
            match feed.live.recv().await {
                Ok(published) => {
                    let mine = published.tenant_id == feed.tenant_id
                        && feed.project_id.is_none_or(|p| published.project_id == Some(p))
                        && published.cursor > feed.last_cursor;
                    if mine {
                        feed.last_cursor = published.cursor;
                        return Some((Ok(frame(&published.event)), feed));
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let resync =
                        Event::default().event("resync").data(format!("{{\"last_cursor\":{}}}", feed.last_cursor));
                    return Some((Ok(resync), feed));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
