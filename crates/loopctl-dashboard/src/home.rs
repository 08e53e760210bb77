//! `/`: every project with its progress, one bar each.

use loopctl_api::{Progress, ProjectView};
use maud::{Markup, html};

use crate::{Section, Viewer, page, stacked_bar};

/// A project and its progress, as the projects page lists them.
pub struct ProjectSummary {
    pub project: ProjectView,
    pub progress: Progress,
}

/// The parts of a progress bar: verified / reported / in flight / ready / blocked / escalated.
/// `ready` is the pending and contracted stories with nothing left to wait for.
pub fn progress_parts(progress: &Progress, ready: i64) -> Vec<(&'static str, &'static str, i64)> {
    let s = &progress.stages;
    let waiting = (s.pending + s.contracted + s.rejected - ready).max(0);
    vec![
        ("st-verified", "verified", s.verified),
        ("st-reported", "reported", s.awaiting_verification),
        ("st-flight", "in flight", s.in_flight + s.stale),
        ("st-ready", "ready", ready.min(s.pending + s.contracted + s.rejected)),
        ("st-blocked", "blocked", waiting),
        ("st-escalated", "escalated", s.escalated),
    ]
}

/// The projects page. `ready` is each project's count of ready stories, in the same order.
pub fn projects(viewer: &Viewer, projects: &[(ProjectSummary, i64)]) -> Markup {
    page(
        viewer,
        Some(Section::Projects),
        "Projects",
        Some("/dashboard/events"),
        html! {
            h1 { "Projects" }
            @if projects.is_empty() {
                p { "No projects yet. Create one with " code { "loopctl project create NAME" } " and import a breakdown with " code { "loopctl import" } "." }
            }
            ul.projects {
                @for (summary, ready) in projects {
                    @let p = &summary.progress;
                    @let parts = progress_parts(p, *ready);
                    li.project {
                        h2 { a href=(format!("/projects/{}", summary.project.slug)) { (summary.project.name) } }
                        p.muted {
                            (p.total_stories) " stories in " (p.total_epics) " epics · "
                            (format!("{:.0}", p.verification_percentage)) "% verified"
                            @if p.escalated > 0 { " · " strong.warn { (p.escalated) " escalated" } }
                        }
                        (stacked_bar(&format!("{} progress", summary.project.name), &parts))
                        ul.legend {
                            @for (class, name, count) in &parts {
                                li { span class=(format!("swatch {class}")) {} (name) " " (count) }
                            }
                        }
                        p.links {
                            a href=(format!("/projects/{}", summary.project.slug)) { "Board" } " · "
                            a href=(format!("/projects/{}/graph", summary.project.slug)) { "Dependency graph" }
                        }
                    }
                }
            }
        },
    )
}
