//! Reading the board: `status`, `next`, `blocked`, `pending`.

use clap::Args;
use loopctl_api::{
    BudgetStatus, ClaimNextRequest, Data, EpicProgress, FrontierParams, Progress, ProjectBudget, ProjectView, Stages,
    StoryBrief, StoryListParams, StoryView, TokenTotalsView,
};
use serde::Serialize;
use uuid::Uuid;

use crate::cmd::lifecycle::criteria_lines;
use crate::context::{Ctx, remember_epoch};
use crate::output::{Format, Table, emit, emit_record, json_number, or_dash, short_uuid, text};
use crate::time::shown;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// A story (2.1, US-2.1 or its id); without it, the project overview.
    story: Option<String>,
}

#[derive(Args, Debug)]
pub struct NextArgs {
    /// Pick the first ready story and contract + claim it in one step (for agents).
    #[arg(long)]
    claim: bool,
    /// Only stories of this epic (number).
    #[arg(long)]
    epic: Option<i64>,
}

#[derive(Args, Debug)]
pub struct BlockedArgs {
    /// Show, per story, each dependency it waits for with its status.
    #[arg(long)]
    explain: bool,
}

pub async fn status(ctx: &Ctx, args: StatusArgs) -> anyhow::Result<()> {
    match args.story {
        Some(story) => story_status(ctx, &story).await,
        None => project_status(ctx).await,
    }
}

/// What the project overview shows: the counts and the bounded lists beside them.
struct Board {
    project: ProjectView,
    progress: Progress,
    in_flight: Vec<StoryView>,
    awaiting: Vec<StoryView>,
    escalated: Vec<StoryView>,
}

async fn board(ctx: &Ctx, project: ProjectView) -> anyhow::Result<Board> {
    let id = project.id;
    // Every count comes from the server's aggregate; the lists below are bounded pages.
    let progress = ctx.client.project_progress(id).await?.progress;
    let page = |agent_status: Option<&str>, verified_status: Option<&str>| {
        let params = StoryListParams {
            project_id: Some(id.to_string()),
            agent_status: agent_status.map(str::to_string),
            verified_status: verified_status.map(str::to_string),
            limit: Some(100),
            ..StoryListParams::default()
        };
        async move { anyhow::Ok(ctx.client.story_page(&params).await?.data) }
    };
    let mut in_flight = Vec::new();
    for status in ["assigned", "implementing"] {
        in_flight.extend(page(Some(status), None).await?);
    }
    // Reported and not verified yet; the server filters, so verified stories never crowd the page.
    let awaiting: Vec<StoryView> = page(Some("reported_done"), Some("unverified")).await?;
    let escalated: Vec<StoryView> = if progress.escalated > 0 {
        page(None, Some("rejected")).await?.into_iter().filter(|s| s.escalated).collect()
    } else {
        Vec::new()
    };
    Ok(Board { project, progress, in_flight, awaiting, escalated })
}

/// The overview for people (and its epics as CSV).
fn board_text(ctx: &Ctx, board: &Board) -> String {
    let Board { project, progress, in_flight, awaiting, escalated } = board;
    let mut table = Table::new(&["epic", "title", "progress", "verified", "stories"]);
    for epic in &progress.epics {
        let total = count(epic.total_stories);
        let verified = count(epic.verified);
        table.row(vec![
            epic.number.to_string(),
            epic.title.clone(),
            bar(verified, total),
            format!("{verified}/{total}"),
            stages(&epic.stages),
        ]);
    }
    // CSV is one table: the epics (the JSON has everything).
    if ctx.format == Format::Csv {
        return table.render(ctx.format, false);
    }
    let mut out = format!(
        "{} ({}): {} of {} stories verified ({}%), {} of {} epics complete\n",
        project.name,
        project.slug,
        progress.stages.verified,
        progress.total_stories,
        json_number(progress.verification_percentage),
        progress.epics_completed,
        progress.total_epics,
    );
    if progress.complete {
        out.push_str(
            "Every story is verified: the project is complete. Add work with `loopctl import FILE --merge`.\n",
        );
    } else {
        out.push_str(&format!("Now: {}\n", stages(&progress.stages)));
    }
    if progress.token_usage.reports > 0 || progress.budget.is_some() {
        out.push_str(&format!("Spent: {}\n", usage_words(&progress.token_usage)));
    }
    if let Some(budget) = &progress.budget {
        out.push_str(&budget_line(budget));
    }
    out.push('\n');
    out.push_str(&table.render(ctx.format, ctx.color()));
    let listing = |title: &str, rows: &[StoryView], out: &mut String| {
        if rows.is_empty() {
            return;
        }
        out.push_str(&format!("\n{title}:\n"));
        let mut table = Table::new(&["story", "status", "assignee", "lease", "title"]);
        for s in rows {
            table.row(vec![
                s.number.clone(),
                status_word(&s.agent_status, s.stale),
                short_uuid(s.assigned_agent_id),
                shown(s.lease_expires_at),
                s.title.clone(),
            ]);
        }
        out.push_str(&table.render(ctx.format, ctx.color()));
    };
    listing("In flight", in_flight, &mut out);
    listing("Reported, awaiting verification", awaiting, &mut out);
    if !escalated.is_empty() {
        out.push_str("\nEscalated (needs a human):\n");
        let mut table = Table::new(&["story", "iterations", "locked", "title"]);
        for s in escalated {
            let locked = if s.escalation_locked { "LOCKED" } else { "no" };
            table.row(vec![s.number.clone(), s.iteration_count.to_string(), locked.into(), s.title.clone()]);
        }
        out.push_str(&table.render(ctx.format, ctx.color()));
    }
    out
}

async fn project_status(ctx: &Ctx) -> anyhow::Result<()> {
    let board = board(ctx, ctx.project().await?).await?;
    let value = ProjectStatus {
        awaiting_verification: &board.awaiting,
        epics: &board.progress.epics,
        escalated: &board.escalated,
        in_flight: &board.in_flight,
        progress: &board.progress,
        project: &board.project,
    };
    emit(ctx.format, &value, || board_text(ctx, &board));
    Ok(())
}

/// `loopctl watch`: the overview, drawn again whenever the project's change stream moves
/// (at most four times a second, and every 30 s for the lease clocks).
pub async fn watch(ctx: &Ctx) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let project = ctx.project().await?;
    let tty = std::io::stdout().is_terminal();
    // Nothing is newer than the end of time, so the answer is only where the feed stands.
    let now = loopctl_api::ChangesParams {
        project_id: Some(project.id),
        since: Some("9999-12-31T00:00:00Z".into()),
        ..Default::default()
    };
    let head = ctx.client.changes(&now).await?.next_cursor;
    let mut live = ctx.client.live_events(Some(project.id), head);
    loop {
        let board = board(ctx, project.clone()).await?;
        let text = board_text(ctx, &board);
        if tty {
            // Home, clear, then the board: one redraw, no scrolling.
            crate::out!("\x1b[H\x1b[2J{text}\nwatching {} (Ctrl-C stops)\n", project.slug);
        } else {
            crate::outln!("{text}");
        }
        let changed = tokio::time::timeout(std::time::Duration::from_secs(30), live.next()).await;
        if let Ok(Err(err)) = changed {
            return Err(err.into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// What `status --format json` prints for a project (fields in name order, as it always has).
#[derive(Serialize)]
struct ProjectStatus<'a> {
    awaiting_verification: &'a [StoryView],
    epics: &'a [EpicProgress],
    escalated: &'a [StoryView],
    in_flight: &'a [StoryView],
    progress: &'a Progress,
    project: &'a ProjectView,
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// The server's disjoint stages in words, leaving out the empty ones.
fn stages(stages: &Stages) -> String {
    let mut parts = Vec::new();
    for (n, word) in [
        (stages.pending, "pending"),
        (stages.contracted, "contracted"),
        (stages.in_flight, "in flight"),
        (stages.awaiting_verification, "awaiting verification"),
        (stages.verified, "verified"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    if stages.stale > 0 {
        parts.push(format!("{} stale (lease ran out)", stages.stale));
    }
    if parts.is_empty() { "no stories".into() } else { parts.join(", ") }
}

/// `1.2M tokens (1.0M in, 200.0k out), $3.40 over 12 reports`.
pub(crate) fn usage_words(t: &TokenTotalsView) -> String {
    let tokens = t.input_tokens.saturating_add(t.output_tokens);
    format!(
        "{} tokens ({} in, {} out), {} over {} report{}",
        compact(tokens),
        compact(t.input_tokens),
        compact(t.output_tokens),
        dollars(t.cost_millicents),
        t.reports,
        if t.reports == 1 { "" } else { "s" }
    )
}

/// `5.0M tokens and $40.00`: the limits of a budget.
pub(crate) fn budget_words(b: &ProjectBudget) -> String {
    let limits: Vec<String> = [b.tokens.map(|n| format!("{} tokens", compact(n))), b.cost_millicents.map(dollars)]
        .into_iter()
        .flatten()
        .collect();
    limits.join(" and ")
}

/// How far into its budget the project is; a warning from 80 %, louder once reached.
fn budget_line(status: &BudgetStatus) -> String {
    let limits = budget_words(&status.budget);
    if status.exhausted {
        format!(
            "BUDGET REACHED: {}% of {limits}; `loopctl orchestrate` dispatches no more agents until a user raises it (`loopctl project budget`)\n",
            json_number(status.used_percent)
        )
    } else if status.warning {
        format!("Budget warning: {}% of {limits} used\n", json_number(status.used_percent))
    } else {
        format!("Budget: {}% of {limits} used\n", json_number(status.used_percent))
    }
}

fn compact(n: i64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn dollars(millicents: i64) -> String {
    format!("${:.2}", millicents as f64 / 100_000.0)
}

/// `implementing`, or `implementing (stale)` when its lease ran out.
fn status_word(agent_status: &str, stale: bool) -> String {
    if stale { format!("{agent_status} (stale)") } else { agent_status.to_string() }
}

/// `[#####-----]` for people scanning progress.
fn bar(done: usize, total: usize) -> String {
    let filled = (done * 10).checked_div(total).unwrap_or(0);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(10 - filled))
}

async fn story_status(ctx: &Ctx, reference: &str) -> anyhow::Result<()> {
    let id = ctx.story_id(reference).await?;
    let detail = ctx.client.get_story(id).await?.story;
    let story = &detail.story;
    // People read dependencies by number: one list call names them all.
    let stories = match (ctx.format, detail.dependencies.is_empty()) {
        (Format::Human, false) => Some(ctx.story_index(story.project_id).await?),
        _ => None,
    };
    emit_record(ctx.format, &detail, &detail, || {
        let mut out = format!(
            "{} {}\n  agent_status:    {}\n  verified_status: {}\n  assignee:        {}\n  claim epoch:     {} (lease until {})\n  iteration:       {}{}\n",
            story.number,
            story.title,
            story.agent_status,
            story.verified_status,
            or_dash(story.assigned_agent_id),
            story.claim_epoch,
            shown(story.lease_expires_at),
            story.iteration_count,
            if story.escalated {
                if story.escalation_locked { "  (ESCALATED, locked)" } else { "  (ESCALATED)" }
            } else {
                ""
            },
        );
        if let Some(reason) = &story.rejection_reason {
            out.push_str(&format!("  last rejection:  {reason}\n"));
        }
        if story.stale {
            out.push_str("  lease:           ran out; another agent may take the story over with `loopctl claim`\n");
        }
        if story.agent_status == "contracted" {
            out.push_str(&format!(
                "  contracted by:   {} at {}\n",
                or_dash(story.contracted_by_agent_id),
                shown(story.contracted_at)
            ));
        }
        if story.backfilled {
            out.push_str(&format!(
                "  backfilled:      marked done outside the loop ({}), not independently verified\n",
                text(&story.metadata["backfill"]["reason"])
            ));
        }
        if detail.token_usage.reports > 0 {
            out.push_str(&format!("  spent:           {}\n", usage_words(&detail.token_usage)));
        }
        if let Some(runs) = story.metadata["orchestrate"]["runs"].as_array().filter(|runs| !runs.is_empty()) {
            out.push_str("\nAgent runs (loopctl orchestrate):\n");
            for run in runs {
                out.push_str(&format!(
                    "  attempt {} {:<11} {} in {}s, log {}\n",
                    run["attempt"],
                    text(&run["role"]),
                    text(&run["ended"]),
                    run["elapsed_s"],
                    text(&run["log"])
                ));
            }
        }
        if let Some(stories) = &stories {
            out.push_str("\nDepends on:\n");
            for dependency in &detail.dependencies {
                let target = dependency.depends_on_story_id;
                match stories.get(Some(target)) {
                    Some(s) => out.push_str(&format!(
                        "  {} {} ({} / {})\n",
                        s.number, s.title, s.agent_status, s.verified_status
                    )),
                    None => out.push_str(&format!("  {}\n", short_uuid(Some(target)))),
                }
            }
        }
        out.push_str("\nAcceptance criteria:\n");
        for ac in &detail.criteria {
            let verdicts = match (&ac.review_verdict, &ac.verify_verdict) {
                (None, None) => String::new(),
                (review, verify) => {
                    format!("  [review: {}, verify: {}]", or_dash(review.as_ref()), or_dash(verify.as_ref()))
                }
            };
            out.push_str(&format!("  {}  {}{verdicts}\n", ac.ac_id, ac.text));
            for evidence in &ac.evidence {
                let parts: Vec<String> = ["test", "file", "commit", "note"]
                    .iter()
                    .filter_map(|k| evidence[*k].as_str().map(|v| format!("{k} {v}")))
                    .collect();
                out.push_str(&format!("      evidence: {}\n", parts.join(", ")));
            }
        }
        section(&mut out, "Artifacts", &detail.artifacts, |a| {
            format!("{} {} {}", a.artifact_type, or_dash(a.path.as_ref()), a.details)
        });
        section(&mut out, "Reviews", &detail.reviews, |r| {
            format!(
                "{} by {}: {} findings; {}",
                r.review_type,
                short_uuid(r.reviewer_agent_id),
                r.findings_count,
                or_dash(r.summary.as_ref())
            )
        });
        section(&mut out, "Verdicts", &detail.verifications, |v| {
            format!(
                "#{} {} by {}: {}",
                v.iteration,
                v.result,
                short_uuid(v.orchestrator_agent_id),
                or_dash(v.summary.as_ref())
            )
        });
        out
    });
    Ok(())
}

fn section<T>(out: &mut String, title: &str, items: &[T], line: impl Fn(&T) -> String) {
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("\n{title}:\n"));
    for item in items {
        out.push_str(&format!("  {}\n", line(item)));
    }
}

pub async fn next(ctx: &Ctx, args: NextArgs) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    let epic_id = match args.epic {
        Some(number) => Some(epic_id(ctx, project, number).await?),
        None => None,
    };
    if args.claim {
        let answer = ctx.client.claim_next(&ClaimNextRequest { project_id: project, epic_id }).await?;
        let story = &answer.story;
        remember_epoch(story.id, story.claim_epoch);
        emit_record(ctx.format, &answer, story, || {
            let mut out = format!(
                "Claimed {} {} (epoch {}, lease until {})\nAcceptance criteria:\n",
                story.number,
                story.title,
                story.claim_epoch,
                shown(story.lease_expires_at)
            );
            for line in criteria_lines(story) {
                out.push_str(&format!("{line}\n"));
            }
            out.push_str(&format!("Next: loopctl start {}", story.number));
            out
        });
        return Ok(());
    }
    let params = FrontierParams { project_id: Some(project.to_string()), epic_id, ..FrontierParams::default() };
    let ready = ctx.client.ready_stories(&params).await?;
    emit(ctx.format, &ready, || {
        let mut table = Table::new(&["story", "suggested", "acs", "state", "title"]);
        for s in &ready.data {
            let suggested = if s.suggested == Some(true) { "yes" } else { "" };
            table.row(vec![
                s.number.clone(),
                suggested.into(),
                s.ac_count.to_string(),
                availability(s),
                s.title.clone(),
            ]);
        }
        let meta = &ready.meta;
        if ctx.format != Format::Human {
            return table.render(ctx.format, ctx.color());
        }
        if meta.project_complete {
            return format!(
                "Every story ({}) is verified: the project is complete.\nNext: `loopctl status` for the summary, or add work with `loopctl import FILE --merge`.\n",
                meta.total_stories
            );
        }
        let mut out = String::new();
        if meta.total_count == 0 {
            out.push_str("Nothing is ready to claim. See `loopctl blocked --explain` for what waits on what, `loopctl status` for what is in flight.\n");
        } else {
            out.push_str(&table.render(ctx.format, ctx.color()));
        }
        let stale = if meta.stale > 0 {
            format!(" ({} stale: take over with `loopctl claim N`)", meta.stale)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "\n{} ready; {} in flight of max {}{stale}; {} of {} verified\n",
            meta.total_count, meta.in_flight, meta.max_concurrent_agents, meta.verified_stories, meta.total_stories,
        ));
        out
    });
    Ok(())
}

/// What keeps a ready story from being plain pending: a contract waiting for its claim, or
/// a claim whose lease ran out.
fn availability(story: &StoryBrief) -> String {
    match story.agent_status.as_str() {
        "contracted" => {
            format!("contracted by {} at {}", short_uuid(story.contracted_by_agent_id), shown(story.contracted_at))
        }
        "assigned" | "implementing" => format!(
            "stale: {} held it, lease ended {}",
            short_uuid(story.assigned_agent_id),
            shown(story.lease_expires_at)
        ),
        _ => String::new(),
    }
}

async fn epic_id(ctx: &Ctx, project: Uuid, number: i64) -> anyhow::Result<Uuid> {
    let epics = ctx.client.list_epics(project).await?;
    epics
        .data
        .iter()
        .find(|e| e.number == number)
        .map(|e| e.id)
        .ok_or_else(|| crate::output::usage(format!("no epic {number} in this project")))
}

pub async fn blocked(ctx: &Ctx, args: BlockedArgs) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    let params = FrontierParams { project_id: Some(project.to_string()), ..FrontierParams::default() };
    let blocked = ctx.client.blocked_stories(&params).await?;
    emit(ctx.format, &blocked, || {
        let items = &blocked.data;
        // Prose for people; CSV is always the table (with no rows when nothing waits).
        let human = ctx.format == Format::Human;
        if human && items.is_empty() {
            return "Nothing is blocked.\n".into();
        }
        if human && args.explain {
            let mut out = String::new();
            for item in items {
                let story = &item.story;
                let flag = if story.escalated { " [escalated]" } else { "" };
                out.push_str(&format!("{} {}{flag}\n", story.number, story.title));
                for dep in &item.blocking_dependencies {
                    out.push_str(&format!(
                        "  waits for {} {} ({} / {})\n",
                        dep.number, dep.title, dep.agent_status, dep.verified_status
                    ));
                }
            }
            return out;
        }
        let mut table = Table::new(&["story", "waits for", "title"]);
        for item in items {
            let waits: Vec<String> =
                item.blocking_dependencies.iter().map(|d| format!("{} ({})", d.number, d.agent_status)).collect();
            table.row(vec![item.story.number.clone(), waits.join(", "), item.story.title.clone()]);
        }
        table.render(ctx.format, ctx.color())
    });
    Ok(())
}

pub async fn pending(ctx: &Ctx) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    let mut rows = Vec::new();
    let mut total = 0;
    for status in ["pending", "contracted"] {
        let params = StoryListParams {
            project_id: Some(project.to_string()),
            agent_status: Some(status.into()),
            limit: Some(PENDING_SHOWN),
            ..StoryListParams::default()
        };
        let page = ctx.client.story_page(&params).await?;
        total += page.meta.total_count;
        rows.extend(page.data);
    }
    rows.sort_by_key(|s| s.sort_key);
    let unseen = total - rows.len() as i64;
    let value = Data { data: &rows };
    emit(ctx.format, &value, || {
        let mut table = Table::new(&["story", "status", "verified", "iterations", "title"]);
        for s in &rows {
            table.row(vec![
                s.number.clone(),
                s.agent_status.clone(),
                s.verified_status.clone(),
                s.iteration_count.to_string(),
                s.title.clone(),
            ]);
        }
        let mut out = table.render(ctx.format, ctx.color());
        if unseen > 0 && ctx.format == Format::Human {
            out.push_str(&format!(
                "\n… and {unseen} more not shown (the first {PENDING_SHOWN} of each status); `loopctl next` lists what is ready\n"
            ));
        }
        out
    });
    Ok(())
}

/// Stories of each waiting status `pending` lists.
const PENDING_SHOWN: i64 = 500;
