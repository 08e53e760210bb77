//! `/projects/<slug>`: the board. One column per stage a story passes through, a card per
//! story, filters by epic and agent (a plain GET form, so they work without JavaScript).

use chrono::{DateTime, Utc};
use loopctl_api::{EpicView, ProjectView, StoryView};
use maud::{Markup, html};
use uuid::Uuid;

use crate::format::{ago, lease, words};
use crate::{Names, Section, Viewer, page};

/// The board's columns, in the order work moves through them.
pub const COLUMNS: [(&str, &str); 8] = [
    ("pending", "Pending"),
    ("contracted", "Contracted"),
    ("assigned", "Assigned"),
    ("implementing", "Implementing"),
    ("reported_done", "Reported done"),
    ("verified", "Verified"),
    ("rejected", "Rejected"),
    ("escalated", "Escalated"),
];

/// The column a story's card is in: escalation and a standing rejection come first, then
/// the verdict, then what the agent is doing.
pub fn column(story: &StoryView) -> &str {
    if story.escalated {
        "escalated"
    } else if story.verified_status == "verified" {
        "verified"
    } else if story.verified_status == "rejected" && story.agent_status == "pending" {
        "rejected"
    } else {
        &story.agent_status
    }
}

/// What the board shows and how it is filtered.
pub struct Board<'a> {
    pub project: &'a ProjectView,
    pub epics: &'a [EpicView],
    pub stories: &'a [StoryView],
    pub names: &'a Names,
    pub now: DateTime<Utc>,
    pub epic_filter: Option<Uuid>,
    pub agent_filter: Option<Uuid>,
    /// More stories than the board lists: narrow it by epic.
    pub truncated: bool,
}

/// When the story entered the state it is in (as far as its timestamps say).
fn since(story: &StoryView) -> Option<DateTime<Utc>> {
    [
        story.contracted_at,
        story.assigned_at,
        story.reported_done_at,
        story.verified_at,
        story.rejected_at,
        story.escalated_at,
    ]
    .into_iter()
    .flatten()
    .max()
}

fn card(board: &Board, story: &StoryView) -> Markup {
    let epic = board.epics.iter().find(|e| e.id == story.epic_id);
    let href = format!("/projects/{}/stories/{}", board.project.slug, story.number);
    let held = matches!(story.agent_status.as_str(), "assigned" | "implementing");
    let lease_words = story.lease_expires_at.filter(|_| held).map(|until| lease(board.now, until));
    html! {
        li.card id=(format!("story-{}", story.number)) data-story=(story.number) data-column=(column(story)) {
            a.card-link href=(href) {
                span.number { (story.number) }
                " "
                span.title { (story.title) }
            }
            dl.facts {
                @if let Some(epic) = epic { dt { "Epic" } dd { (epic.number) " " (epic.title) } }
                @if story.assigned_agent_id.is_some() { dt { "Assignee" } dd { (board.names.of(story.assigned_agent_id)) } }
                @if story.iteration_count > 0 { dt { "Iteration" } dd { (story.iteration_count) } }
                @if let Some((stale, text)) = lease_words {
                    dt { "Lease" } dd class=[stale.then_some("stale")] { (text) }
                }
                @if let Some(at) = since(story) { dt { "In this state" } dd { (ago(board.now, at)) } }
            }
        }
    }
}

pub fn board(viewer: &Viewer, board: &Board, agents: &[(Uuid, String)]) -> Markup {
    let slug = &board.project.slug;
    let shown: Vec<&StoryView> =
        board.stories.iter().filter(|s| board.agent_filter.is_none_or(|a| s.assigned_agent_id == Some(a))).collect();
    let live = format!("/dashboard/events?project_id={}", board.project.id);
    page(
        viewer,
        Some(Section::Projects),
        &board.project.name,
        Some(&live),
        html! {
            h1 { (board.project.name) }
            p.links { strong { "Board" } " · " a href=(format!("/projects/{slug}/graph")) { "Dependency graph" } }
            form.filters method="get" action=(format!("/projects/{slug}")) {
                label for="epic" { "Epic" }
                select id="epic" name="epic" {
                    option value="" { "All epics" }
                    @for epic in board.epics {
                        option value=(epic.id) selected[board.epic_filter == Some(epic.id)] { (epic.number) " " (epic.title) }
                    }
                }
                label for="agent" { "Agent" }
                select id="agent" name="agent" {
                    option value="" { "Any agent" }
                    @for (id, name) in agents {
                        option value=(id) selected[board.agent_filter == Some(*id)] { (name) }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if board.truncated {
                p.alert role="status" { "This project has more stories than one board shows; pick an epic to see all of its stories." }
            }
            div.board {
                @for (key, label) in COLUMNS {
                    @let cards: Vec<&&StoryView> = shown.iter().filter(|s| column(s) == key).collect();
                    section.column id=(format!("column-{key}")) aria-labelledby=(format!("heading-{key}")) {
                        h2 id=(format!("heading-{key}")) { (label) " " span.count { (cards.len()) } }
                        ol.cards {
                            @for story in &cards { (card(board, story)) }
                        }
                    }
                }
            }
            p.muted { (shown.len()) " stories shown · states: " @for (key, _) in COLUMNS { code { (words(key)) } " " } }
        },
    )
}
