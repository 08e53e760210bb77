//! The dashboard's pages: read through the `App` as the API does, render with
//! `loopctl-dashboard`. A refusal (an unknown project, a role that may not read agents) is
//! a page with the API's code and status.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loopctl_api::{EventView, ProjectView, StoryView};
use loopctl_app::{AppError, AppResult, Paging, Principal, StoryQuery};
use loopctl_dashboard::board::Board;
use loopctl_dashboard::fleet::{AgentRow, Located, NeedsYou};
use loopctl_dashboard::graph::GraphPage;
use loopctl_dashboard::home::ProjectSummary;
use loopctl_dashboard::story::StoryPage;
use loopctl_dashboard::{Names, Viewer};
use serde::Deserialize;
use uuid::Uuid;

use super::session::{LOGIN_COOKIE, over_tls, set_cookie};
use super::{Signed, html, html_refusal};
use crate::AppState;
use crate::routes::events::{Framing, live_feed};

/// The most stories one board (or one page of the fleet) lists; past it, filter by epic.
pub(crate) const BOARD_LIMIT: usize = 2_000;
/// A story reported this long ago and still not verified needs a person.
const WAITING_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// A page, or its refusal rendered for the viewer.
fn answer(viewer: &Viewer, page: AppResult<loopctl_dashboard::Html>) -> Response {
    match page {
        Ok(body) => html(StatusCode::OK, body),
        Err(err) => html_refusal(Some(viewer), &err),
    }
}

/// `GET /login`: the form, with a fresh login CSRF token in a cookie of its own.
pub(crate) async fn login_form(headers: HeaderMap) -> Response {
    login_page(&headers, None, StatusCode::OK)
}

pub(crate) fn login_page(headers: &HeaderMap, refusal: Option<&str>, status: StatusCode) -> Response {
    let Ok(token) = loopctl_app::keys::random_token() else {
        return html_refusal(None, &AppError::internal());
    };
    let cookie = set_cookie(LOGIN_COOKIE, &token, "/login", over_tls(headers), Some(3600));
    let mut response = html(status, loopctl_dashboard::login(&token, refusal));
    if let Ok(value) = cookie.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Every story of a project in work order, page by page, up to `limit`; and whether
/// there were more.
pub(crate) async fn stories(
    state: &AppState,
    who: &Principal,
    project_id: Uuid,
    epic_id: Option<Uuid>,
    agent_status: Option<&str>,
    limit: usize,
) -> AppResult<(Vec<StoryView>, bool)> {
    let mut all = Vec::new();
    loop {
        let query = StoryQuery {
            project_id,
            epic_id,
            agent_status: agent_status.map(str::to_string),
            verified_status: None,
            limit: Some(500),
            offset: Some(all.len() as i64),
        };
        let page = state.app.list_stories(who, query).await?;
        let more = (all.len() + page.data.len()) < usize::try_from(page.meta.total_count).unwrap_or(0);
        let got = page.data.len();
        all.extend(page.data);
        if all.len() >= limit {
            all.truncate(limit);
            return Ok((all, more));
        }
        if !more || got == 0 {
            return Ok((all, false));
        }
    }
}

/// Agent names, where the viewer may read them (an agent's key may not: ids then).
async fn names(state: &AppState, who: &Principal) -> Names {
    let agents = state.app.list_agents(who).await.unwrap_or_default();
    Names(agents.into_iter().map(|a| (a.id, a.name)).collect())
}

async fn project(state: &AppState, who: &Principal, slug: &str) -> AppResult<ProjectView> {
    let record = state.app.resolve_project(who, slug).await?;
    state.app.get_project(who, record.id).await
}

/// `GET /`.
pub(crate) async fn projects(State(state): State<AppState>, signed: Signed) -> Response {
    let viewer = signed.viewer();
    let who = &signed.who;
    let page = async {
        let mut rows = Vec::new();
        for project in state.app.list_projects(who, false).await? {
            let progress = state.app.project_progress(who, project.id).await?;
            let ready =
                state.app.ready_stories(who, project.id, None, Paging { page: Some(1), page_size: Some(1) }).await?;
            rows.push((ProjectSummary { project, progress }, ready.meta.total_count));
        }
        Ok(loopctl_dashboard::home::projects(&viewer, &rows))
    };
    answer(&viewer, page.await)
}

#[derive(Deserialize)]
pub(crate) struct BoardFilter {
    epic: Option<String>,
    agent: Option<String>,
}

/// A filter value: empty means none; anything else must be a UUID.
fn filter_id(value: Option<&String>, what: &str) -> AppResult<Option<Uuid>> {
    match value.map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => {
            Uuid::parse_str(text).map(Some).map_err(|_| AppError::field(what, format!("`{text}` is not an {what} id")))
        }
    }
}

/// `GET /projects/<slug>`: the board.
pub(crate) async fn board(
    State(state): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    Query(filter): Query<BoardFilter>,
) -> Response {
    let viewer = signed.viewer();
    let who = &signed.who;
    let page = async {
        let project = project(&state, who, &slug).await?;
        let epic_filter = filter_id(filter.epic.as_ref(), "epic")?;
        let agent_filter = filter_id(filter.agent.as_ref(), "agent")?;
        let epics = state.app.list_epics(who, project.id).await?;
        let (stories, truncated) = stories(&state, who, project.id, epic_filter, None, BOARD_LIMIT).await?;
        let names = names(&state, who).await;
        let mut agents: Vec<(Uuid, String)> = stories
            .iter()
            .filter_map(|s| s.assigned_agent_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|id| (id, names.of(Some(id))))
            .collect();
        agents.sort_by(|a, b| a.1.cmp(&b.1));
        let board = Board {
            project: &project,
            epics: &epics,
            stories: &stories,
            names: &names,
            now: state.app.now(),
            epic_filter,
            agent_filter,
            truncated,
        };
        Ok(loopctl_dashboard::board::board(&viewer, &board, &agents))
    };
    answer(&viewer, page.await)
}

#[derive(Deserialize)]
pub(crate) struct GraphFilter {
    epic: Option<i64>,
}

/// `GET /projects/<slug>/graph`.
pub(crate) async fn graph(
    State(state): State<AppState>,
    signed: Signed,
    Path(slug): Path<String>,
    Query(filter): Query<GraphFilter>,
) -> Response {
    let viewer = signed.viewer();
    let who = &signed.who;
    let page = async {
        let project = project(&state, who, &slug).await?;
        let graph = state.app.dependency_graph(who, project.id).await?.graph;
        let mut ready = HashSet::new();
        let mut blocked: HashMap<Uuid, Vec<String>> = HashMap::new();
        for page in 1.. {
            let paging = Paging { page: Some(page), page_size: Some(500) };
            let listed = state.app.ready_stories(who, project.id, None, paging).await?;
            ready.extend(listed.data.iter().map(|s| s.id));
            if page >= listed.meta.total_pages {
                break;
            }
        }
        for page in 1.. {
            let listed =
                state.app.blocked_stories(who, project.id, Paging { page: Some(page), page_size: Some(500) }).await?;
            for b in &listed.data {
                blocked.insert(b.story.id, b.blocking_dependencies.iter().map(|d| d.number.clone()).collect());
            }
            if page >= listed.meta.total_pages {
                break;
            }
        }
        let view = GraphPage { project: &project, graph: &graph, ready: &ready, blocked: &blocked, epic: filter.epic };
        Ok(loopctl_dashboard::graph::graph_page(&viewer, &view))
    };
    answer(&viewer, page.await)
}

#[derive(Deserialize, Default)]
pub(crate) struct StoryNotice {
    done: Option<String>,
}

/// `GET /projects/<slug>/stories/<number>`.
pub(crate) async fn story(
    State(state): State<AppState>,
    signed: Signed,
    Path((slug, number)): Path<(String, String)>,
    Query(notice): Query<StoryNotice>,
) -> Response {
    let viewer = signed.viewer();
    let done = notice.done.as_deref().and_then(done_words);
    story_response(&state, &signed, &viewer, &slug, &number, None, done, StatusCode::OK).await
}

/// What a finished action says on the page it returns to (only these: the query string is
/// the caller's, so nothing of it is echoed).
fn done_words(action: &str) -> Option<&'static str> {
    Some(match action {
        "verify" => "Verified.",
        "reject" => "Rejected; the story goes back to the queue.",
        "force-unclaim" => "The claim was taken back.",
        "clear-escalation" => "The escalation was cleared.",
        _ => return None,
    })
}

/// The story page, with a refusal of the action just tried (and its status) if there was one.
#[allow(clippy::too_many_arguments)] // one page, its context and what happened
pub(crate) async fn story_response(
    state: &AppState,
    signed: &Signed,
    viewer: &Viewer,
    slug: &str,
    number: &str,
    refused: Option<&AppError>,
    done: Option<&str>,
    status: StatusCode,
) -> Response {
    let who = &signed.who;
    let page = async {
        let project = project(state, who, slug).await?;
        let record = state.app.resolve_story(who, Some(project.id), number).await?;
        let detail = state.app.story_detail(who, record.id).await?;
        let history = state.app.story_history(who, record.id).await?;
        let runs = state.app.verification_runs(who, record.id).await?;
        let names = names(state, who).await;
        let view = StoryPage {
            project: &project,
            detail: &detail,
            history: &history,
            runs: &runs,
            names: &names,
            now: state.app.now(),
            refused: refused.map(|e| (e.code.as_str(), e.message.as_str())),
            done,
        };
        Ok(loopctl_dashboard::story::story_page(viewer, &view))
    };
    match page.await {
        Ok(body) => html(status, body),
        Err(err) => html_refusal(Some(viewer), &err),
    }
}

/// Project ids to slugs, for links in feeds.
async fn slugs(state: &AppState, who: &Principal) -> AppResult<HashMap<Uuid, String>> {
    Ok(state.app.list_projects(who, true).await?.into_iter().map(|p| (p.id, p.slug)).collect())
}

/// `GET /activity`.
pub(crate) async fn activity(State(state): State<AppState>, signed: Signed) -> Response {
    let viewer = signed.viewer();
    let who = &signed.who;
    let page = async {
        let slugs = slugs(&state, who).await?;
        let events = state.app.recent_changes(who, None, None, 200).await?;
        let slug_of = |e: &EventView| e.project_id.and_then(|p| slugs.get(&p).cloned());
        Ok(loopctl_dashboard::fleet::activity(&viewer, state.app.now(), &events, &slug_of))
    };
    answer(&viewer, page.await)
}

/// `GET /agents`.
pub(crate) async fn agents(State(state): State<AppState>, signed: Signed) -> Response {
    let viewer = signed.viewer();
    let who = &signed.who;
    let page = async {
        let agents = state.app.list_agents(who).await?;
        let names = Names(agents.iter().map(|a| (a.id, a.name.clone())).collect());
        let mut held: HashMap<Uuid, Vec<Located>> = HashMap::new();
        let mut by_id: HashMap<Uuid, Located> = HashMap::new();
        for project in state.app.list_projects(who, false).await? {
            for status in ["assigned", "implementing"] {
                for story in stories(&state, who, project.id, None, Some(status), BOARD_LIMIT).await?.0 {
                    by_id.insert(story.id, Located { slug: project.slug.clone(), story: story.clone() });
                    if let Some(agent) = story.assigned_agent_id {
                        held.entry(agent).or_default().push(Located { slug: project.slug.clone(), story });
                    }
                }
            }
        }
        let mut dispatched: HashMap<Uuid, Vec<_>> = HashMap::new();
        for d in state.app.list_dispatches(who, None, true).await? {
            let story = match by_id.get(&d.story_id) {
                Some(l) => Some(Located { slug: l.slug.clone(), story: l.story.clone() }),
                None => located(&state, who, d.story_id).await,
            };
            dispatched.entry(d.agent_id).or_default().push((d, story));
        }
        let rows: Vec<AgentRow> = agents
            .into_iter()
            .map(|agent| AgentRow {
                holds: held.remove(&agent.id).unwrap_or_default(),
                dispatches: dispatched.remove(&agent.id).unwrap_or_default(),
                agent,
            })
            .collect();
        let lease = i64::from(who.settings.claim_lease_seconds);
        Ok(loopctl_dashboard::fleet::agents(&viewer, state.app.now(), &rows, &names, lease))
    };
    answer(&viewer, page.await)
}

/// A story by id with its project's slug (a dispatch's story the lists above did not hold).
async fn located(state: &AppState, who: &Principal, id: Uuid) -> Option<Located> {
    let detail = state.app.story_detail(who, id).await.ok()?;
    let project = state.app.get_project(who, detail.story.project_id).await.ok()?;
    Some(Located { slug: project.slug, story: detail.story })
}

/// `GET /needs-you`.
pub(crate) async fn needs_you(State(state): State<AppState>, signed: Signed) -> Response {
    let viewer = signed.viewer();
    let who = &signed.who;
    let page = async {
        let now = state.app.now();
        let mut needs = NeedsYou {
            escalated: Vec::new(),
            stale: Vec::new(),
            waiting: Vec::new(),
            waiting_after: WAITING_AFTER,
            refusals: Vec::new(),
        };
        let slugs = slugs(&state, who).await?;
        for project in state.app.list_projects(who, false).await? {
            let progress = state.app.project_progress(who, project.id).await?;
            let stages = &progress.stages;
            // Read the stories only where the counts say something needs a person.
            if stages.escalated + stages.stale + stages.awaiting_verification == 0 {
                continue;
            }
            for story in stories(&state, who, project.id, None, None, BOARD_LIMIT).await?.0 {
                let slug = project.slug.clone();
                if story.escalated {
                    needs.escalated.push(Located { slug, story });
                } else if story.stale {
                    needs.stale.push(Located { slug, story });
                } else if story.agent_status == "reported_done"
                    && story.verified_status != "verified"
                    && story.reported_done_at.is_some_and(|at| now - at >= WAITING_AFTER)
                {
                    needs.waiting.push(Located { slug, story });
                }
            }
        }
        let day_ago = now - chrono::Duration::days(1);
        needs.refusals = state
            .app
            .recent_changes(who, None, Some("custody_refused".into()), 200)
            .await?
            .into_iter()
            .filter(|e| e.inserted_at >= day_ago)
            .collect();
        let slug_of = |e: &EventView| e.project_id.and_then(|p| slugs.get(&p).cloned());
        Ok(loopctl_dashboard::fleet::needs_you(&viewer, now, &needs, &slug_of))
    };
    answer(&viewer, page.await)
}

#[derive(Deserialize)]
pub(crate) struct EventsFilter {
    project_id: Option<Uuid>,
    /// The cursor the page was rendered at.
    since: Option<i64>,
}

/// `GET /dashboard/events`: the session's change feed after `Last-Event-ID`, else after the
/// cursor the page was rendered at, else from now, as plain SSE messages the page script
/// refreshes on.
pub(crate) async fn events(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Query(filter): Query<EventsFilter>,
) -> Response {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let since = resume
        .or_else(|| filter.since.map(|cursor| cursor.to_string()))
        .unwrap_or_else(|| state.app.now().to_rfc3339());
    match live_feed(&state.app, signed.who, filter.project_id, since, Framing::Plain).await {
        Ok(sse) => sse.into_response(),
        Err(err) => crate::ApiError::from(err).into_response(),
    }
}
