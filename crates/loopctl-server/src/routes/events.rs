//! `GET /api/v1/events`: the change feed as Server-Sent Events. Replays what the caller
//! missed (from `Last-Event-ID` or `since`), then streams live; each event's `id` is its
//! cursor, so a reconnect resumes exactly where it left off.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use loopctl_api::{EventView, EventsParams};
use loopctl_app::ChangesQuery;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, Caller, Params};

struct Feed {
    app: loopctl_app::App,
    who: loopctl_app::Principal,
    backlog: std::vec::IntoIter<EventView>,
    live: tokio::sync::broadcast::Receiver<loopctl_app::Published>,
    /// Commits of other servers sharing the database (PostgreSQL's notifications).
    elsewhere: Option<futures_util::stream::BoxStream<'static, Uuid>>,
    project_id: Option<Uuid>,
    last_cursor: i64,
    /// Counts this stream in `loopctl_sse_clients` until it is dropped.
    _open: crate::metrics::StreamOpen,
}

/// How long a quiet stream waits before it looks at the store itself: an event committed by
/// another server on the same database wakes it at once (a notification), or within this
/// time if the notification was lost.
const POLL_EVERY: Duration = Duration::from_secs(1);

fn frame(event: &EventView) -> Event {
    Event::default()
        .id(event.cursor.to_string())
        .event(event.action.clone())
        .data(serde_json::to_string(event).unwrap_or_else(|_| "{}".into()))
}

/// Live change feed (SSE). `Last-Event-ID` resumes. Commits of this server wake the stream at
/// once; on PostgreSQL so do other servers' commits on the same database (a notification).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "feed",
    params(EventsParams, ("Last-Event-ID" = Option<String>, Header, description = "the cursor to resume after")),
    responses((status = 200, description = "`text/event-stream`: each event's `id` is its cursor, its `data` an EventView", content_type = "text/event-stream", body = EventView)),
)]
pub async fn events(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    Params(q): Params<EventsParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let since = resume.or(q.since).unwrap_or_else(|| "0".into());
    Ok(live_feed(&s.app, who, q.project_id, since, Framing::Named).await?)
}

/// How a feed names its frames: the API names each by its action; the dashboard's page
/// script listens for plain messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Named,
    Plain,
}

/// The change feed after `since` (a cursor or a time) as SSE: the backlog, then live.
pub(crate) async fn live_feed(
    app: &loopctl_app::App,
    who: loopctl_app::Principal,
    project_id: Option<Uuid>,
    since: String,
    framing: Framing,
) -> loopctl_app::AppResult<Sse<impl Stream<Item = Result<Event, Infallible>> + use<>>> {
    // Subscribe before reading the backlog, so a commit in between still wakes the stream.
    let live = app.subscribe();
    let elsewhere = app.commit_signals();
    let query = ChangesQuery { project_id, since: Some(since), limit: Some(1000), ..ChangesQuery::default() };
    let changes = app.changes(&who, query).await?;
    let last_cursor = changes.next_cursor;
    let feed = Feed {
        app: app.clone(),
        who,
        backlog: changes.data.into_iter(),
        live,
        elsewhere,
        project_id,
        last_cursor,
        _open: crate::metrics::StreamOpen::new(),
    };
    let framed = move |event: &EventView| match framing {
        Framing::Named => frame(event),
        Framing::Plain => Event::default().id(event.cursor.to_string()).data(event.action.clone()),
    };
    let stream = stream::unfold(feed, move |mut feed| async move {
        loop {
            if let Some(event) = feed.backlog.next() {
                feed.last_cursor = feed.last_cursor.max(event.cursor);
                return Some((Ok(framed(&event)), feed));
            }
            // Wait for a local commit or the poll interval, then read what is new from the
            // store: the store, not the broadcast, is the source of truth.
            let deadline = tokio::time::Instant::now() + POLL_EVERY;
            loop {
                tokio::select! {
                    received = feed.live.recv() => match received {
                        // Another tenant's or project's commit is no reason to look.
                        Ok(published)
                            if published.tenant_id != feed.who.tenant_id
                                || feed.project_id.is_some_and(|p| published.project_id != Some(p)) => continue,
                        Err(RecvError::Closed) => return None,
                        // Ours, or missed some (lagged): read the store.
                        Ok(_) | Err(RecvError::Lagged(_)) => break,
                    },
                    signal = next_signal(&mut feed.elsewhere) => match signal {
                        Some(tenant) if tenant == feed.who.tenant_id => break,
                        Some(_) => continue,
                        None => feed.elsewhere = None,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            let query = ChangesQuery {
                project_id: feed.project_id,
                since: Some(feed.last_cursor.to_string()),
                limit: Some(1000),
                ..ChangesQuery::default()
            };
            match feed.app.changes(&feed.who, query).await {
                Ok(changes) => feed.backlog = changes.data.into_iter(),
                Err(err) => {
                    let failure = Event::default()
                        .event("error")
                        .data(serde_json::to_string(&err.body(err.code.http_status())).unwrap_or_default());
                    return Some((Ok(failure), feed));
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The next commit signal of another server; never, where there are none.
async fn next_signal(elsewhere: &mut Option<futures_util::stream::BoxStream<'static, Uuid>>) -> Option<Uuid> {
    match elsewhere {
        Some(signals) => futures_util::StreamExt::next(signals).await,
        None => std::future::pending().await,
    }
}
