//! Reading the board: `status`, `next`, `blocked`, `pending`.

use clap::Args;
use serde_json::{Value, json};

use crate::context::{Ctx, remember_epoch};
use crate::output::{Format, Table, emit, emit_record, short_id, text};

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

async fn project_status(ctx: &Ctx) -> anyhow::Result<()> {
    let project = ctx.project().await?;
    let id = text(&project["id"]);
    // Every count comes from the server's aggregate; the lists below are bounded pages.
    let progress = ctx.client.get(&format!("/api/v1/projects/{id}/progress")).await?;
    let p = &progress["progress"];
    let page = |filter: (&'static str, &'static str)| {
        let query = vec![("project_id", id.clone()), (filter.0, filter.1.to_string()), ("limit", "100".into())];
        async move { ctx.client.get_query("/api/v1/stories", &query).await }
    };
    let mut in_flight = Vec::new();
    for status in ["assigned", "implementing"] {
        in_flight.extend(page(("agent_status", status)).await?["data"].as_array().cloned().unwrap_or_default());
    }
    let reported = page(("agent_status", "reported_done")).await?;
    let awaiting: Vec<Value> = reported["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["verified_status"] != "verified")
        .cloned()
        .collect();
    let escalated: Vec<Value> = match p["escalated"].as_i64() {
        Some(n) if n > 0 => page(("verified_status", "rejected")).await?["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["escalated"] == true)
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let value = json!({
        "project": project,
        "progress": p,
        "epics": p["epics"],
        "in_flight": in_flight,
        "awaiting_verification": awaiting,
        "escalated": escalated,
    });
    emit(ctx.format, &value, || {
        let mut table = Table::new(&["epic", "title", "progress", "verified", "stories"]);
        for epic in p["epics"].as_array().into_iter().flatten() {
            let total = count(&epic["total_stories"]);
            let verified = count(&epic["verified"]);
            table.row(vec![
                text(&epic["number"]),
                text(&epic["title"]),
                bar(verified, total),
                format!("{verified}/{total}"),
                stages(&epic["stages"]),
            ]);
        }
        // CSV is one table: the epics (the JSON has everything).
        if ctx.format == Format::Csv {
            return table.render(ctx.format, false);
        }
        let mut out = format!(
            "{} ({}): {} of {} stories verified ({}%), {} of {} epics complete\n",
            text(&project["name"]),
            text(&project["slug"]),
            text(&p["stages"]["verified"]),
            text(&p["total_stories"]),
            text(&p["verification_percentage"]),
            text(&p["epics_completed"]),
            text(&p["total_epics"]),
        );
        if p["complete"] == true {
            out.push_str(
                "Every story is verified: the project is complete. Add work with `loopctl import FILE --merge`.\n",
            );
        } else {
            out.push_str(&format!("Now: {}\n", stages(&p["stages"])));
        }
        out.push('\n');
        out.push_str(&table.render(ctx.format, ctx.color()));
        let listing = |title: &str, rows: &[Value], out: &mut String| {
            if rows.is_empty() {
                return;
            }
            out.push_str(&format!("\n{title}:\n"));
            let mut table = Table::new(&["story", "status", "assignee", "lease", "title"]);
            for s in rows {
                table.row(vec![
                    text(&s["number"]),
                    status_word(s),
                    short_id(&s["assigned_agent_id"]),
                    lease_word(s),
                    text(&s["title"]),
                ]);
            }
            out.push_str(&table.render(ctx.format, ctx.color()));
        };
        listing("In flight", &in_flight, &mut out);
        listing("Reported, awaiting verification", &awaiting, &mut out);
        if !escalated.is_empty() {
            out.push_str("\nEscalated (needs a human):\n");
            let mut table = Table::new(&["story", "iterations", "locked", "title"]);
            for s in &escalated {
                let locked = if s["escalation_locked"] == true { "LOCKED" } else { "no" };
                table.row(vec![text(&s["number"]), text(&s["iteration_count"]), locked.into(), text(&s["title"])]);
            }
            out.push_str(&table.render(ctx.format, ctx.color()));
        }
        out
    });
    Ok(())
}

fn count(value: &Value) -> usize {
    value.as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or(0)
}

/// The server's disjoint stages in words, leaving out the empty ones.
fn stages(stages: &Value) -> String {
    let mut parts = Vec::new();
    for (key, word) in [
        ("pending", "pending"),
        ("contracted", "contracted"),
        ("in_flight", "in flight"),
        ("awaiting_verification", "awaiting verification"),
        ("verified", "verified"),
    ] {
        let n = count(&stages[key]);
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    let stale = count(&stages["stale"]);
    if stale > 0 {
        parts.push(format!("{stale} stale (lease ran out)"));
    }
    if parts.is_empty() { "no stories".into() } else { parts.join(", ") }
}

/// `implementing`, or `implementing (stale)` when its lease ran out.
fn status_word(story: &Value) -> String {
    let status = text(&story["agent_status"]);
    if story["stale"] == true { format!("{status} (stale)") } else { status }
}

fn lease_word(story: &Value) -> String {
    match story["lease_expires_at"].as_str() {
        Some(until) => crate::time::display_time(until),
        None => "-".into(),
    }
}

/// `[#####-----]` for people scanning progress.
fn bar(done: usize, total: usize) -> String {
    let filled = (done * 10).checked_div(total).unwrap_or(0);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(10 - filled))
}

async fn story_status(ctx: &Ctx, reference: &str) -> anyhow::Result<()> {
    let id = ctx.story_id(reference).await?;
    let story = ctx.client.get(&format!("/api/v1/stories/{id}")).await?["story"].clone();
    let dependencies = story["dependencies"].as_array().cloned().unwrap_or_default();
    // People read dependencies by number: one list call names them all.
    let stories = match (ctx.format, dependencies.is_empty()) {
        (Format::Human, false) => Some(ctx.story_index(&text(&story["project_id"])).await?),
        _ => None,
    };
    emit_record(ctx.format, &story, &story, || {
        let mut out = format!(
            "{} {}\n  agent_status:    {}\n  verified_status: {}\n  assignee:        {}\n  claim epoch:     {} (lease until {})\n  iteration:       {}{}\n",
            text(&story["number"]),
            text(&story["title"]),
            text(&story["agent_status"]),
            text(&story["verified_status"]),
            text(&story["assigned_agent_id"]),
            text(&story["claim_epoch"]),
            crate::time::display_time(&text(&story["lease_expires_at"])),
            text(&story["iteration_count"]),
            if story["escalated"] == true {
                if story["escalation_locked"] == true { "  (ESCALATED, locked)" } else { "  (ESCALATED)" }
            } else {
                ""
            },
        );
        if let Some(reason) = story["rejection_reason"].as_str() {
            out.push_str(&format!("  last rejection:  {reason}\n"));
        }
        if story["stale"] == true {
            out.push_str("  lease:           ran out; another agent may take the story over with `loopctl claim`\n");
        }
        if story["agent_status"] == "contracted" {
            out.push_str(&format!(
                "  contracted by:   {} at {}\n",
                text(&story["contracted_by_agent_id"]),
                crate::time::display_time(&text(&story["contracted_at"]))
            ));
        }
        if story["backfilled"] == true {
            out.push_str(&format!(
                "  backfilled:      marked done outside the loop ({}), not independently verified\n",
                text(&story["metadata"]["backfill"]["reason"])
            ));
        }
        if let Some(stories) = &stories {
            out.push_str("\nDepends on:\n");
            for dependency in &dependencies {
                let target = &dependency["depends_on_story_id"];
                match stories.get(target) {
                    Some(s) => out.push_str(&format!(
                        "  {} {} ({} / {})\n",
                        text(&s["number"]),
                        text(&s["title"]),
                        text(&s["agent_status"]),
                        text(&s["verified_status"])
                    )),
                    None => out.push_str(&format!("  {}\n", short_id(target))),
                }
            }
        }
        out.push_str("\nAcceptance criteria:\n");
        for ac in story["criteria"].as_array().into_iter().flatten() {
            let verdicts = match (ac["review_verdict"].as_str(), ac["verify_verdict"].as_str()) {
                (None, None) => String::new(),
                (review, verify) => format!("  [review: {}, verify: {}]", review.unwrap_or("-"), verify.unwrap_or("-")),
            };
            out.push_str(&format!("  {}  {}{verdicts}\n", text(&ac["ac_id"]), text(&ac["text"])));
            for evidence in ac["evidence"].as_array().into_iter().flatten() {
                let parts: Vec<String> = ["test", "file", "commit", "note"]
                    .iter()
                    .filter_map(|k| evidence[*k].as_str().map(|v| format!("{k} {v}")))
                    .collect();
                out.push_str(&format!("      evidence: {}\n", parts.join(", ")));
            }
        }
        section(&mut out, "Artifacts", &story["artifacts"], |a| {
            format!("{} {} {}", text(&a["artifact_type"]), text(&a["path"]), a["details"])
        });
        section(&mut out, "Reviews", &story["reviews"], |r| {
            format!(
                "{} by {}: {} findings; {}",
                text(&r["review_type"]),
                short_id(&r["reviewer_agent_id"]),
                text(&r["findings_count"]),
                text(&r["summary"])
            )
        });
        section(&mut out, "Verdicts", &story["verifications"], |v| {
            format!(
                "#{} {} by {}: {}",
                text(&v["iteration"]),
                text(&v["result"]),
                short_id(&v["orchestrator_agent_id"]),
                text(&v["summary"])
            )
        });
        out
    });
    Ok(())
}

fn section(out: &mut String, title: &str, items: &Value, line: impl Fn(&Value) -> String) {
    let items = items.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return;
    }
    out.push_str(&format!("\n{title}:\n"));
    for item in &items {
        out.push_str(&format!("  {}\n", line(item)));
    }
}

pub async fn next(ctx: &Ctx, args: NextArgs) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    let epic_id = match args.epic {
        Some(number) => Some(epic_id(ctx, &project, number).await?),
        None => None,
    };
    if args.claim {
        let mut body = json!({"project_id": project});
        if let Some(epic) = &epic_id {
            body["epic_id"] = json!(epic);
        }
        let answer = ctx.client.post("/api/v1/stories/claim-next", body).await?;
        let story = &answer["story"];
        if let (Some(id), Some(epoch)) = (story["id"].as_str(), story["claim_epoch"].as_i64()) {
            remember_epoch(id, epoch);
        }
        emit_record(ctx.format, &answer, story, || {
            let mut out = format!(
                "Claimed {} {} (epoch {}, lease until {})\nAcceptance criteria:\n",
                text(&story["number"]),
                text(&story["title"]),
                text(&story["claim_epoch"]),
                crate::time::display_time(&text(&story["lease_expires_at"]))
            );
            for ac in story["acceptance_criteria"].as_array().into_iter().flatten() {
                let body = ac.get("criterion").or_else(|| ac.get("description")).unwrap_or(&Value::Null);
                out.push_str(&format!("  {}  {}\n", text(&ac["id"]), text(body)));
            }
            out.push_str(&format!("Next: loopctl start {}", text(&story["number"])));
            out
        });
        return Ok(());
    }
    let mut query = vec![("project_id", project)];
    if let Some(epic) = epic_id {
        query.push(("epic_id", epic));
    }
    let ready = ctx.client.get_query("/api/v1/stories/ready", &query).await?;
    emit(ctx.format, &ready, || {
        let mut table = Table::new(&["story", "suggested", "acs", "state", "title"]);
        for s in ready["data"].as_array().into_iter().flatten() {
            let suggested = if s["suggested"] == true { "yes" } else { "" };
            table.row(vec![
                text(&s["number"]),
                suggested.into(),
                text(&s["ac_count"]),
                availability(s),
                text(&s["title"]),
            ]);
        }
        let meta = &ready["meta"];
        if ctx.format != Format::Human {
            return table.render(ctx.format, ctx.color());
        }
        if meta["project_complete"] == true {
            return format!(
                "Every story ({}) is verified: the project is complete.\nNext: `loopctl status` for the summary, or add work with `loopctl import FILE --merge`.\n",
                text(&meta["total_stories"])
            );
        }
        let mut out = String::new();
        if meta["total_count"] == 0 {
            out.push_str("Nothing is ready to claim. See `loopctl blocked --explain` for what waits on what, `loopctl status` for what is in flight.\n");
        } else {
            out.push_str(&table.render(ctx.format, ctx.color()));
        }
        let stale = count(&meta["stale"]);
        let stale =
            if stale > 0 { format!(" ({stale} stale: take over with `loopctl claim N`)") } else { String::new() };
        out.push_str(&format!(
            "\n{} ready; {} in flight of max {}{stale}; {} of {} verified\n",
            text(&meta["total_count"]),
            text(&meta["in_flight"]),
            text(&meta["max_concurrent_agents"]),
            text(&meta["verified_stories"]),
            text(&meta["total_stories"]),
        ));
        out
    });
    Ok(())
}

/// What keeps a ready story from being plain pending: a contract waiting for its claim, or
/// a claim whose lease ran out.
fn availability(story: &Value) -> String {
    match story["agent_status"].as_str() {
        Some("contracted") => format!(
            "contracted by {} at {}",
            short_id(&story["contracted_by_agent_id"]),
            crate::time::display_time(&text(&story["contracted_at"]))
        ),
        Some("assigned" | "implementing") => format!(
            "stale: {} held it, lease ended {}",
            short_id(&story["assigned_agent_id"]),
            crate::time::display_time(&text(&story["lease_expires_at"]))
        ),
        _ => String::new(),
    }
}

async fn epic_id(ctx: &Ctx, project: &str, number: i64) -> anyhow::Result<String> {
    let epics = ctx.client.get(&format!("/api/v1/projects/{project}/epics")).await?;
    epics["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["number"] == number)
        .and_then(|e| e["id"].as_str().map(str::to_string))
        .ok_or_else(|| crate::output::usage(format!("no epic {number} in this project")))
}

pub async fn blocked(ctx: &Ctx, args: BlockedArgs) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    let blocked = ctx.client.get_query("/api/v1/stories/blocked", &[("project_id", project)]).await?;
    emit(ctx.format, &blocked, || {
        let items = blocked["data"].as_array().cloned().unwrap_or_default();
        // Prose for people; CSV is always the table (with no rows when nothing waits).
        let human = ctx.format == Format::Human;
        if human && items.is_empty() {
            return "Nothing is blocked.\n".into();
        }
        if human && args.explain {
            let mut out = String::new();
            for item in &items {
                let story = &item["story"];
                let flag = if story["escalated"] == true { " [escalated]" } else { "" };
                out.push_str(&format!("{} {}{flag}\n", text(&story["number"]), text(&story["title"])));
                for dep in item["blocking_dependencies"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "  waits for {} {} ({} / {})\n",
                        text(&dep["number"]),
                        text(&dep["title"]),
                        text(&dep["agent_status"]),
                        text(&dep["verified_status"])
                    ));
                }
            }
            return out;
        }
        let mut table = Table::new(&["story", "waits for", "title"]);
        for item in &items {
            let waits: Vec<String> = item["blocking_dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| format!("{} ({})", text(&d["number"]), text(&d["agent_status"])))
                .collect();
            table.row(vec![text(&item["story"]["number"]), waits.join(", "), text(&item["story"]["title"])]);
        }
        table.render(ctx.format, ctx.color())
    });
    Ok(())
}

pub async fn pending(ctx: &Ctx) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    let mut rows = Vec::new();
    for status in ["pending", "contracted"] {
        let page = ctx
            .client
            .get_query(
                "/api/v1/stories",
                &[("project_id", project.clone()), ("agent_status", status.into()), ("limit", "500".into())],
            )
            .await?;
        rows.extend(page["data"].as_array().cloned().unwrap_or_default());
    }
    rows.sort_by_key(|s| s["sort_key"].as_i64().unwrap_or(0));
    let value = json!({"data": rows});
    emit(ctx.format, &value, || {
        let mut table = Table::new(&["story", "status", "verified", "iterations", "title"]);
        for s in &rows {
            table.row(vec![
                text(&s["number"]),
                text(&s["agent_status"]),
                text(&s["verified_status"]),
                text(&s["iteration_count"]),
                text(&s["title"]),
            ]);
        }
        table.render(ctx.format, ctx.color())
    });
    Ok(())
}
