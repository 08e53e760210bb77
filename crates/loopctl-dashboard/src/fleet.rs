//! The fleet: `/activity` (the live change feed), `/agents` (who holds what, since when,
//! who dispatched it) and `/needs-you` (what only a person can unstick).

use chrono::{DateTime, Utc};
use loopctl_api::{AgentView, DispatchView, EventView, StoryView};
use maud::{Markup, html};
use serde_json::Value;

use crate::format::{ago, change, field, lease, span, words};
use crate::{Names, Section, Viewer, page};

/// A story with the slug of its project, for links.
pub struct Located {
    pub slug: String,
    pub story: StoryView,
}

fn story_link(located: &Located) -> Markup {
    html! {
        a href=(format!("/projects/{}/stories/{}", located.slug, located.story.number)) {
            (located.slug) " " (located.story.number)
        }
        " " (located.story.title)
    }
}

fn event_row(
    now: DateTime<Utc>,
    event: &EventView,
    slug_of: &dyn Fn(&EventView) -> Option<String>,
    extra: Markup,
) -> Markup {
    let number = field(event, "number").and_then(Value::as_str).map(str::to_string);
    let target = match (slug_of(event), event.entity_type.as_str()) {
        (Some(slug), "story") => {
            // A story page takes its number or its id.
            let reference = number.clone().unwrap_or_else(|| event.entity_id.to_string());
            let label = number.unwrap_or_else(|| "story".into());
            html! { a href=(format!("/projects/{slug}/stories/{reference}")) { (slug) " " (label) } }
        }
        (_, kind) => html! { (kind) },
    };
    html! {
        li data-cursor=(event.cursor) {
            (ago(now, event.inserted_at)) " · " strong { (words(&event.action)) } " · " (target)
            @let what = change(event);
            @if !what.is_empty() { " · " (what) }
            " by " (event.actor_label) " (" (event.actor_type) ")" (extra)
        }
    }
}

/// `/activity`: the newest events first; the live stream adds what follows.
pub fn activity(
    viewer: &Viewer,
    now: DateTime<Utc>,
    events: &[EventView],
    slug_of: &dyn Fn(&EventView) -> Option<String>,
) -> Markup {
    page(
        viewer,
        Some(Section::Activity),
        "Activity",
        Some("/dashboard/events"),
        html! {
            h1 { "Activity" }
            p.muted { "The change feed, newest first (the last " (events.len()) " events)." }
            ol.feed reversed { @for e in events { (event_row(now, e, slug_of, html! {})) } }
        },
    )
}

/// An agent, the stories it holds and the tokens dispatched to it.
pub struct AgentRow {
    pub agent: AgentView,
    pub holds: Vec<Located>,
    pub dispatches: Vec<(DispatchView, Option<Located>)>,
}

/// `/agents`. `lease_seconds` is the tenant's claim lease, so the last heartbeat is when
/// the lease was last set.
pub fn agents(viewer: &Viewer, now: DateTime<Utc>, rows: &[AgentRow], names: &Names, lease_seconds: i64) -> Markup {
    page(
        viewer,
        Some(Section::Agents),
        "Agents",
        Some("/dashboard/events"),
        html! {
            h1 { "Agents" }
            table.agents {
                thead { tr { th scope="col" { "Agent" } th scope="col" { "Holds" } th scope="col" { "Dispatched tokens" } } }
                tbody {
                    @for row in rows {
                        tr id=(format!("agent-{}", row.agent.id)) {
                            th scope="row" { (row.agent.name) br; span.muted { (row.agent.agent_type) " · " (row.agent.status) } }
                            td {
                                @if row.holds.is_empty() { span.muted { "nothing" } }
                                ul { @for held in &row.holds {
                                    li {
                                        (story_link(held)) " · " (words(&held.story.agent_status))
                                        @if let Some(at) = held.story.assigned_at { " since " (ago(now, at)) }
                                        @if let Some(until) = held.story.lease_expires_at {
                                            @let (stale, text) = lease(now, until);
                                            " · last heartbeat " (span((now - (until - chrono::Duration::seconds(lease_seconds))).num_seconds())) " ago · "
                                            span class=[stale.then_some("stale")] { (text) }
                                        }
                                    }
                                } }
                            }
                            td {
                                @if row.dispatches.is_empty() { span.muted { "none active" } }
                                ul { @for (d, story) in &row.dispatches {
                                    li {
                                        (d.role) " for " @if let Some(story) = story { (story_link(story)) } @else { "a story" }
                                        " · by " (names.of(d.dispatched_by_agent_id))
                                        @if d.lineage_path.len() > 1 { " · lineage depth " (d.lineage_path.len()) }
                                        " · expires in " (span((d.expires_at - now).num_seconds()))
                                    }
                                } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// What a person must act on.
pub struct NeedsYou {
    pub escalated: Vec<Located>,
    pub stale: Vec<Located>,
    /// Reported done longer ago than [`NeedsYou::waiting_after`], still not verified.
    pub waiting: Vec<Located>,
    pub waiting_after: chrono::Duration,
    /// Custody refusals in the last day.
    pub refusals: Vec<EventView>,
}

pub fn needs_you(
    viewer: &Viewer,
    now: DateTime<Utc>,
    needs: &NeedsYou,
    slug_of: &dyn Fn(&EventView) -> Option<String>,
) -> Markup {
    let list = |items: &[Located], empty: &str, extra: &dyn Fn(&Located) -> Markup| {
        html! {
            @if items.is_empty() { p.muted { (empty) } } @else {
                ul.entries { @for item in items { li { (story_link(item)) " · " (extra(item)) } } }
            }
        }
    };
    let total = needs.escalated.len() + needs.stale.len() + needs.waiting.len() + needs.refusals.len();
    page(
        viewer,
        Some(Section::NeedsYou),
        "Needs you",
        Some("/dashboard/events"),
        html! {
            h1 { "Needs you" @if total > 0 { " " span.count { (total) } } }
            section aria-labelledby="escalated" {
                h2 id="escalated" { "Escalated stories" }
                (list(&needs.escalated, "Nothing escalated.", &|l| html! {
                    "rejected " (l.story.iteration_count) " times"
                    @if let Some(reason) = &l.story.rejection_reason { ": " (reason) }
                }))
            }
            section aria-labelledby="stale" {
                h2 id="stale" { "Stale leases" }
                (list(&needs.stale, "Every claim is alive.", &|l| html! {
                    @if let Some(until) = l.story.lease_expires_at { "lease ran out " (ago(now, until)) }
                }))
            }
            section aria-labelledby="waiting" {
                h2 id="waiting" { "Reported, not verified for " (span(needs.waiting_after.num_seconds())) " or more" }
                (list(&needs.waiting, "Nothing waits for a verdict that long.", &|l| html! {
                    @if let Some(at) = l.story.reported_done_at { "reported " (ago(now, at)) }
                }))
            }
            section aria-labelledby="refusals" {
                h2 id="refusals" { "Custody refusals in the last day" }
                @if needs.refusals.is_empty() { p.muted { "None." } } @else {
                    ol.feed { @for e in &needs.refusals {
                        @let attempted = field(e, "attempted_action").and_then(Value::as_str).unwrap_or("?");
                        @let code = field(e, "code").and_then(Value::as_str).unwrap_or("?");
                        (event_row(now, e, slug_of, html! { " tried " code { (attempted) } ": " code { (code) } }))
                    } }
                }
            }
        },
    )
}
