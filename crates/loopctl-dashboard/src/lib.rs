//! The supervisor's view of loopctl: every dashboard page as HTML, rendered from the wire
//! types of `loopctl-api` (what the service layer answers) with maud.
//!
//! No IO here: the server's dashboard handlers read through the same `App` calls as the
//! API, then hand the answers to these functions. A page is complete without JavaScript;
//! `assets::LIVE_JS` only refreshes the live region when the change stream says something
//! moved.

pub mod assets;
pub mod board;
pub mod fleet;
pub mod format;
pub mod graph;
pub mod home;
pub mod story;

use std::collections::HashMap;

use maud::{DOCTYPE, Markup, html};
use uuid::Uuid;

pub use maud::Markup as Html;

/// Who is looking, and what they may do from a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The key's name.
    pub name: String,
    /// `user`, `orchestrator`, `agent`, `verifier`, or a dispatched token's role.
    pub role: String,
    /// The session's CSRF token, carried by every form.
    pub csrf: String,
    /// May verify, reject and force-unclaim (orchestrators and users).
    pub can_judge: bool,
    /// May clear an escalation (users).
    pub can_clear_escalations: bool,
    /// The change feed's cursor when the page was read: the live stream starts after it, so
    /// a change committed while the page loads still refreshes it.
    pub feed_cursor: i64,
}

/// The top-level sections, for the navigation's current-page mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Projects,
    Activity,
    Agents,
    NeedsYou,
}

/// Agent ids to names, for every place a page names who did something.
#[derive(Debug, Clone, Default)]
pub struct Names(pub HashMap<Uuid, String>);

impl Names {
    /// The agent's name, or the start of its id when the viewer cannot see it.
    pub fn of(&self, id: Option<Uuid>) -> String {
        match id {
            None => "—".into(),
            Some(id) => self.0.get(&id).cloned().unwrap_or_else(|| id.to_string()[..8].to_string()),
        }
    }
}

/// A full page: head, navigation, and `body` in the live region. `live` is the URL of the
/// change stream that refreshes the region (`None` for a page that does not move).
pub fn page(viewer: &Viewer, section: Option<Section>, title: &str, live: Option<&str>, body: Markup) -> Markup {
    let item = |href: &str, label: &str, this: Section| {
        html! {
            li { a href=(href) aria-current=[(section == Some(this)).then_some("page")] { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-live=[live] data-since=(viewer.feed_cursor) {
                a.skip href="#live" { "Skip to content" }
                header.top {
                    nav aria-label="Sections" {
                        a.brand href="/" { "loopctl" }
                        ul {
                            (item("/", "Projects", Section::Projects))
                            (item("/activity", "Activity", Section::Activity))
                            (item("/agents", "Agents", Section::Agents))
                            (item("/needs-you", "Needs you", Section::NeedsYou))
                        }
                    }
                    div.who {
                        span { (viewer.name) " · " (viewer.role) }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="live" tabindex="-1" { (body) }
                p.live-state aria-live="polite" id="live-state" {}
                script src="/assets/live.js" defer {}
            }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) " · loopctl" }
            link rel="stylesheet" href="/assets/dashboard.css";
            link rel="icon" href="data:,";
        }
    }
}

/// The sign-in page: a form that posts the key (never in a URL) with the login CSRF token.
pub fn login(csrf: &str, refusal: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body {
                main.login id="live" {
                    h1 { "loopctl" }
                    p { "Sign in with an API key. The key stays in this server's memory as a hash for the session; it is never put in a URL or a cookie." }
                    @if let Some(refusal) = refusal {
                        p.alert role="alert" { (refusal) }
                    }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="api_key" { "API key" }
                        input id="api_key" name="api_key" type="password" autocomplete="off" required autofocus;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// A page for a refusal that is not part of another page (an unknown project, say).
pub fn refusal(viewer: &Viewer, code: &str, message: &str) -> Markup {
    page(
        viewer,
        None,
        "Refused",
        None,
        html! {
            h1 { "Refused" }
            (alert(code, message))
            p { a href="/" { "Back to the projects" } }
        },
    )
}

/// An error code and its message, as every page shows a refusal.
pub fn alert(code: &str, message: &str) -> Markup {
    html! {
        div.alert role="alert" {
            strong { "Refused: " code { (code) } }
            " " (message)
        }
    }
}

/// A stacked bar of counts as SVG (attributes, not inline styles: the pages' CSP forbids those).
pub fn stacked_bar(label: &str, parts: &[(&str, &str, i64)]) -> Markup {
    let total = parts.iter().map(|(_, _, n)| *n).sum::<i64>().max(1) as f64;
    let mut x = 0.0_f64;
    let mut segments = Vec::new();
    for (class, name, count) in parts.iter().filter(|part| part.2 > 0) {
        let width = *count as f64 * 100.0 / total;
        segments.push((*class, *name, *count, x, width));
        x += width;
    }
    let summary: Vec<String> = segments.iter().map(|(_, name, n, _, _)| format!("{n} {name}")).collect();
    html! {
        svg.bar viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label=(format!("{label}: {}", summary.join(", "))) {
            @for (class, name, count, x, width) in &segments {
                rect class=(class) x=(format!("{x:.2}")) y="0" width=(format!("{width:.2}")) height="8" {
                    title { (count) " " (name) }
                }
            }
        }
    }
}
