//! `/projects/<slug>/stories/<number>`: the chain of custody of one story on one page —
//! criteria with their evidence and verdicts, artifacts, reviews, verification runs,
//! rejections, the history from the audit log, and (for those who may) the verdict forms.

use chrono::{DateTime, Utc};
use loopctl_api::{EventView, ProjectView, StoryDetail, VerificationRunView};
use maud::{Markup, html};
use serde_json::Value;

use crate::format::{ago, change, lease, short_sha, text, words};
use crate::{Names, Section, Viewer, alert, page};

/// What the story page shows.
pub struct StoryPage<'a> {
    pub project: &'a ProjectView,
    pub detail: &'a StoryDetail,
    pub history: &'a [EventView],
    pub runs: &'a [VerificationRunView],
    pub names: &'a Names,
    pub now: DateTime<Utc>,
    /// A refusal of the action just tried (code, message), shown above the forms.
    pub refused: Option<(&'a str, &'a str)>,
    /// What the action just done did (after its redirect).
    pub done: Option<&'a str>,
}

/// One piece of evidence of a criterion in a line: `test: …`, `file: …`, `commit: …`, `note: …`.
fn evidence_line(evidence: &Value) -> String {
    let parts: Vec<String> = ["test", "file", "commit", "note", "path", "ref"]
        .iter()
        .filter_map(|key| evidence.get(*key).filter(|v| !v.is_null()).map(|v| format!("{key}: {}", text(v))))
        .collect();
    if parts.is_empty() { evidence.to_string() } else { parts.join(" · ") }
}

fn verdict(verdict: Option<&String>) -> Markup {
    match verdict.map(String::as_str) {
        Some("pass") => html! { span.pass { "pass" } },
        Some(other) => html! { span.fail { (other) } },
        None => html! { span.muted { "—" } },
    }
}

fn forms(viewer: &Viewer, view: &StoryPage) -> Markup {
    let story = &view.detail.story;
    let base = format!("/projects/{}/stories/{}", view.project.slug, story.number);
    let held = matches!(story.agent_status.as_str(), "assigned" | "implementing" | "contracted");
    html! {
        section.actions aria-labelledby="actions" {
            h2 id="actions" { "Verdict" }
            @if let Some((code, message)) = view.refused { (alert(code, message)) }
            @if let Some(done) = view.done { p.done role="status" { (done) } }
            @if !viewer.can_judge {
                p.muted { "Read-only: a " (viewer.role) " key does not verify, reject or take back stories." }
            } @else {
                div.forms {
                    @if story.agent_status == "reported_done" && story.verified_status != "verified" {
                        form method="post" action=(format!("{base}/verify")) {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            label for="verify-summary" { "Verification summary" }
                            textarea id="verify-summary" name="summary" required rows="2" {}
                            button type="submit" { "Verify" }
                        }
                        form method="post" action=(format!("{base}/reject")) {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            label for="reject-reason" { "Why it is rejected" }
                            textarea id="reject-reason" name="reason" required rows="2" {}
                            button.danger type="submit" { "Reject" }
                        }
                    }
                    @if held {
                        form method="post" action=(format!("{base}/force-unclaim")) {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            label for="unclaim-reason" { "Why the claim is taken back" }
                            input id="unclaim-reason" name="reason" required;
                            button.danger type="submit" { "Force-unclaim" }
                        }
                    }
                    @if story.escalated && viewer.can_clear_escalations {
                        form method="post" action=(format!("{base}/clear-escalation")) {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            label for="clear-reason" { "What a person decided" }
                            input id="clear-reason" name="reason" required;
                            button type="submit" { "Clear escalation" }
                        }
                    }
                }
            }
        }
    }
}

pub fn story_page(viewer: &Viewer, view: &StoryPage) -> Markup {
    let detail = view.detail;
    let story = &detail.story;
    let names = view.names;
    let rejections: Vec<&EventView> = view.history.iter().filter(|e| e.action.contains("reject")).collect();
    let live = format!("/dashboard/events?project_id={}", view.project.id);
    page(
        viewer,
        Some(Section::Projects),
        &format!("{} {}", story.number, story.title),
        Some(&live),
        html! {
            p.links { a href=(format!("/projects/{}", view.project.slug)) { (view.project.name) } " › story " (story.number) }
            h1 { span.number { (story.number) } " " (story.title) }
            dl.summary {
                dt { "State" } dd { (words(&story.agent_status)) " · " (words(&story.verified_status)) @if story.escalated { " · " strong.warn { "escalated" } } }
                dt { "Implementer" } dd { (names.of(story.assigned_agent_id.or(story.reported_by_agent_id))) }
                dt { "Iteration" } dd { (story.iteration_count) }
                @if let Some(until) = story.lease_expires_at.filter(|_| matches!(story.agent_status.as_str(), "assigned" | "implementing")) {
                    @let (stale, words) = lease(view.now, until);
                    dt { "Lease" } dd class=[stale.then_some("stale")] { (words) }
                }
                @if let Some(sha) = &detail.reported_commit_sha { dt { "Reported commit" } dd { code { (short_sha(sha)) } } }
                @if detail.token_usage.reports > 0 {
                    dt { "Spent" } dd { (detail.token_usage.input_tokens + detail.token_usage.output_tokens) " tokens"
                        @if detail.token_usage.cost_millicents > 0 { ", $" (format!("{:.2}", detail.token_usage.cost_millicents as f64 / 100_000.0)) } }
                }
            }
            @if let Some(description) = &story.description { p.description { (description) } }
            (forms(viewer, view))
            section aria-labelledby="criteria" {
                h2 id="criteria" { "Acceptance criteria" }
                table {
                    thead { tr { th scope="col" { "Criterion" } th scope="col" { "Evidence" } th scope="col" { "Review" } th scope="col" { "Verification" } } }
                    tbody {
                        @for c in &detail.criteria {
                            tr id=(format!("criterion-{}", c.ac_id)) data-criterion=(c.ac_id) {
                                th scope="row" { code { (c.ac_id) } " " (c.text) }
                                td { @if c.evidence.is_empty() { span.muted { "none" } } @else { ul { @for e in &c.evidence { li { (evidence_line(e)) } } } } }
                                td { (verdict(c.review_verdict.as_ref())) }
                                td { (verdict(c.verify_verdict.as_ref())) }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="artifacts" {
                h2 id="artifacts" { "Artifacts" }
                @if detail.artifacts.is_empty() { p.muted { "None reported." } } @else {
                    table {
                        thead { tr { th scope="col" { "Type" } th scope="col" { "Commit / path" } th scope="col" { "Reported by" } th scope="col" { "When" } } }
                        tbody {
                            @for a in &detail.artifacts {
                                tr {
                                    td { (a.artifact_type) }
                                    td {
                                        @if let Some(sha) = a.details.get("commit_sha").and_then(Value::as_str) { code { (short_sha(sha)) } " " }
                                        @if let Some(path) = &a.path { code { (path) } }
                                        @if let Some(files) = a.details.get("files").and_then(Value::as_array) {
                                            @for f in files { " " code { (text(f)) } }
                                        }
                                    }
                                    td { (names.of(a.reporter_agent_id)) " (" (a.reported_by) ")" }
                                    td { (ago(view.now, a.inserted_at)) }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="reviews" {
                h2 id="reviews" { "Reviews" }
                @if detail.reviews.is_empty() { p.muted { "No review recorded." } } @else {
                    ul.entries {
                        @for r in &detail.reviews {
                            li { strong { (names.of(r.reviewer_agent_id)) } " · " (r.review_type) " · " (r.findings_count) " findings · " (ago(view.now, r.completed_at))
                                @if let Some(summary) = &r.summary { p { (summary) } } }
                        }
                    }
                }
            }
            section aria-labelledby="runs" {
                h2 id="runs" { "Verification runs" }
                @if view.runs.is_empty() { p.muted { "No runner has checked this story." } } @else {
                    table {
                        thead { tr { th scope="col" { "Round" } th scope="col" { "Result" } th scope="col" { "Commit" } th scope="col" { "Checks" } th scope="col" { "Signature" } th scope="col" { "When" } } }
                        tbody {
                            @for run in view.runs {
                                tr {
                                    td { (run.round) }
                                    td { @if run.result == "pass" { span.pass { "pass" } } @else { span.fail { (run.result) } } }
                                    td { @if let Some(sha) = &run.commit_sha { code { (short_sha(sha)) } } }
                                    td { ul { @for check in run.checks.as_array().into_iter().flatten() {
                                        li { (check.get("name").map(text).unwrap_or_default()) ": " (check.get("result").or_else(|| check.get("status")).map(text).unwrap_or_default()) }
                                    } } }
                                    td { @if run.signature_valid { span.pass { "valid (" (run.key_id) ")" } } @else { span.fail { "INVALID" } } }
                                    td { (ago(view.now, run.inserted_at)) }
                                }
                            }
                        }
                    }
                }
                @for v in &detail.verifications {
                    p { "Verdict " strong { (v.result) } " by " (names.of(v.orchestrator_agent_id)) " in iteration " (v.iteration) " · " (ago(view.now, v.inserted_at))
                        @if let Some(summary) = &v.summary { ": " (summary) } }
                }
            }
            section aria-labelledby="rejections" {
                h2 id="rejections" { "Rejections" }
                @if rejections.is_empty() { p.muted { "Never rejected." } } @else {
                    ul.entries { @for e in &rejections { li { (ago(view.now, e.inserted_at)) " by " (e.actor_label) ": " (change(e)) } } }
                }
            }
            section aria-labelledby="history" {
                h2 id="history" { "History" }
                ol.timeline {
                    @for e in view.history {
                        li {
                            (ago(view.now, e.inserted_at)) " · "
                            strong { (words(&e.action)) } " by " (e.actor_label) " (" (e.actor_type) ")"
                            @let what = change(e);
                            @if !what.is_empty() { " — " (what) }
                        }
                    }
                }
            }
        },
    )
}
