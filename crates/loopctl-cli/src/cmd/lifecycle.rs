//! The story lifecycle: contract, claim, start, report, review, verify, reject, …

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::context::{Ctx, forget_epoch, recall_epoch, remember_epoch};
use crate::output::{emit_record, text, usage};

#[derive(Args, Debug)]
pub struct StoryArg {
    /// The story: 2.1, US-2.1, or its id.
    pub story: String,
}

#[derive(Args, Debug)]
pub struct ContractArgs {
    /// The story: 2.1, US-2.1, or its id.
    story: String,
    /// The acceptance-criteria count you read (default: the story's, as fetched now).
    #[arg(long)]
    ac_count: Option<usize>,
    /// The title you read (default: the story's, as fetched now).
    #[arg(long)]
    title: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The story: 2.1, US-2.1, or its id.
    story: String,
    /// What the work produced, as JSON or @file.json (repeatable).
    #[arg(long)]
    artifact: Vec<String>,
    /// Build a commit_diff artifact from this commit of the git repository here.
    #[arg(long)]
    commit: Option<String>,
    /// A short summary of the work.
    #[arg(long)]
    summary: Option<String>,
    /// Evidence for a criterion: `AC-1=test:tests/signup.rs::creates_user` (also file:, commit:,
    /// note:; repeatable).
    #[arg(long)]
    evidence: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ReasonArgs {
    /// The story: 2.1, US-2.1, or its id.
    story: String,
    /// Why (recorded; the implementer sees it).
    #[arg(long, value_parser = not_blank)]
    reason: String,
}

/// A reason or note that says something: an audit line reading "" explains nothing.
fn not_blank(value: &str) -> Result<String, String> {
    if value.trim().is_empty() { Err("say why; it is recorded and shown".into()) } else { Ok(value.to_string()) }
}

#[derive(Args, Debug)]
pub struct ReviewArgs {
    /// The story: 2.1, US-2.1, or its id.
    story: String,
    #[arg(long)]
    summary: Option<String>,
    /// Findings as JSON or @file.json.
    #[arg(long)]
    findings: Option<String>,
    #[arg(long, default_value = "standard")]
    review_type: String,
    /// A verdict per criterion: `AC-1=pass` or `AC-2=fail:no test` (repeatable).
    #[arg(long)]
    verdict: Vec<String>,
    #[arg(long)]
    findings_count: Option<i64>,
    #[arg(long)]
    fixes_count: Option<i64>,
    #[arg(long)]
    disproved_count: Option<i64>,
}

/// The verdict of `verify`: there is no implicit pass, and no half one.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every criterion is met: the story is verified.
    Pass,
    /// Not done: the story is rejected, with the summary as the reason.
    Fail,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The story: 2.1, US-2.1, or its id.
    story: String,
    /// The verdict: pass verifies the story, fail rejects it (back to pending).
    #[arg(long, value_enum)]
    result: Verdict,
    /// What was checked and found; with --result fail, the rejection reason (required then).
    #[arg(long)]
    summary: Option<String>,
    #[arg(long)]
    review_type: Option<String>,
    #[arg(long)]
    commit_sha: Option<String>,
    /// A verdict per criterion: `AC-1=pass` or `AC-2=fail:no test` (repeatable).
    #[arg(long)]
    verdict: Vec<String>,
}

#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// The story: 2.1, US-2.1, or its id.
    story: String,
    /// Why the work counts as done (recorded and shown as backfilled).
    #[arg(long, value_parser = not_blank)]
    reason: String,
    #[arg(long)]
    evidence_url: Option<String>,
    #[arg(long)]
    pr_number: Option<i64>,
}

#[derive(Subcommand, Debug)]
pub enum EscalationCmd {
    /// Clear a story's escalation so it can be claimed again (user keys).
    ///
    /// Example: loopctl escalation clear 2.1 --note "split into 2.1a/2.1b"
    Clear {
        story: String,
        #[arg(long, value_parser = not_blank)]
        note: String,
    },
}

fn done(ctx: &Ctx, answer: &Value, verb: &str) {
    let story = answer.get("story").unwrap_or(answer);
    emit_record(ctx.format, answer, story, || {
        let mut out = format!(
            "{verb} {} {}: {} / {}",
            text(&story["number"]),
            text(&story["title"]),
            text(&story["agent_status"]),
            text(&story["verified_status"])
        );
        // A held story is lost when its lease ends; the holder should know when that is.
        if matches!(story["agent_status"].as_str(), Some("assigned" | "implementing"))
            && let Some(lease) = story["lease_expires_at"].as_str()
        {
            out.push_str(&format!(
                " (lease until {}; renew with loopctl heartbeat {})",
                crate::time::display_time(lease),
                text(&story["number"])
            ));
        }
        if let Some(next) = answer["next_actions"].as_array().and_then(|a| a.first()) {
            out.push_str(&format!(
                "\nNext: loopctl {} {}",
                text(&next["action"]).replace('_', "-"),
                text(&story["number"])
            ));
        }
        out
    });
}

pub async fn contract(ctx: &Ctx, args: ContractArgs) -> anyhow::Result<()> {
    let story = ctx.story(&args.story).await?;
    let id = text(&story["id"]);
    let ac_count = args.ac_count.unwrap_or_else(|| story["acceptance_criteria"].as_array().map_or(0, Vec::len));
    let title = args.title.unwrap_or_else(|| text(&story["title"]));
    if ctx.format == crate::output::Format::Human {
        crate::outln!("{} {}", text(&story["number"]), title);
        for ac in story["acceptance_criteria"].as_array().into_iter().flatten() {
            let body = ac.get("criterion").or_else(|| ac.get("description")).unwrap_or(&Value::Null);
            crate::outln!("  {}  {}", text(&ac["id"]), text(body));
        }
    }
    let answer = ctx
        .client
        .post(&format!("/api/v1/stories/{id}/contract"), json!({"story_title": title, "ac_count": ac_count}))
        .await?;
    done(ctx, &answer, "Contracted");
    Ok(())
}

pub async fn claim(ctx: &Ctx, args: StoryArg) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let answer = ctx.client.post(&format!("/api/v1/stories/{id}/claim"), json!({})).await?;
    if let Some(epoch) = answer["story"]["claim_epoch"].as_i64() {
        remember_epoch(&id, epoch);
    }
    done(ctx, &answer, "Claimed");
    Ok(())
}

/// A write only the claimant makes; sends the epoch it got from `claim` as the fencing token.
pub async fn claimant(ctx: &Ctx, args: StoryArg, verb: &str) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let answer = post_fenced(ctx, &id, verb, json!({})).await?;
    if verb == "unclaim" {
        forget_epoch(&id);
    }
    let label = match verb {
        "start" => "Started",
        "heartbeat" => "Lease renewed for",
        "request-review" => "Review requested for",
        _ => "Unclaimed",
    };
    done(ctx, &answer, label);
    Ok(())
}

async fn post_fenced(ctx: &Ctx, id: &str, verb: &str, body: Value) -> anyhow::Result<Value> {
    let headers: Vec<(&str, String)> = recall_epoch(id).map(|e| ("X-Claim-Epoch", e.to_string())).into_iter().collect();
    Ok(ctx.client.post_with(&format!("/api/v1/stories/{id}/{verb}"), body, &headers).await?)
}

pub async fn report(ctx: &Ctx, args: ReportArgs) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let mut artifacts = Vec::new();
    for raw in &args.artifact {
        let artifact = crate::json_arg("--artifact", raw)?;
        if !artifact.is_object() {
            return Err(usage("--artifact must be a JSON object like {\"artifact_type\":\"commit_diff\",…}"));
        }
        artifacts.push(artifact);
    }
    if let Some(commit) = &args.commit {
        artifacts.push(commit_artifact(commit)?);
    }
    let mut body = json!({"artifacts": artifacts});
    if let Some(summary) = &args.summary {
        body["summary"] = json!(summary);
    }
    if !args.evidence.is_empty() {
        body["acceptance_evidence"] =
            Value::Array(args.evidence.iter().map(|e| evidence_arg(e)).collect::<anyhow::Result<_>>()?);
    }
    let answer = post_fenced(ctx, &id, "report", body).await?;
    done(ctx, &answer, "Reported");
    Ok(())
}

/// A `commit_diff` artifact for a commit of the repository in the working directory.
fn commit_artifact(commit: &str) -> anyhow::Result<Value> {
    let git = |args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new("git")
            .args(args)
            .output()
            .map_err(|err| usage(format!("--commit needs git: {err}")))?;
        if !out.status.success() {
            return Err(usage(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let sha = git(&["rev-parse", "--verify", &format!("{commit}^{{commit}}")])?;
    let files: Vec<String> = git(&["diff-tree", "--no-commit-id", "--name-only", "-r", "--root", &sha])?
        .lines()
        .map(str::to_string)
        .collect();
    let subject = git(&["log", "-1", "--format=%s", &sha])?;
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_default();
    Ok(json!({
        "artifact_type": "commit_diff",
        "details": {"commit_sha": sha, "files": files, "subject": subject, "branch": branch},
    }))
}

pub async fn force_unclaim(ctx: &Ctx, args: ReasonArgs) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let answer =
        ctx.client.post(&format!("/api/v1/stories/{id}/force-unclaim"), json!({"reason": args.reason})).await?;
    done(ctx, &answer, "Took back");
    Ok(())
}

pub async fn review_complete(ctx: &Ctx, args: ReviewArgs) -> anyhow::Result<()> {
    let story = ctx.story(&args.story).await?;
    let id = text(&story["id"]);
    let mut body = json!({"review_type": args.review_type, "summary": args.summary});
    if let Some(findings) = &args.findings {
        body["findings"] = crate::json_arg("--findings", findings)?;
    }
    for (key, value) in [
        ("findings_count", args.findings_count),
        ("fixes_count", args.fixes_count),
        ("disproved_count", args.disproved_count),
    ] {
        if let Some(n) = value {
            body[key] = json!(n);
        }
    }
    if !args.verdict.is_empty() {
        body["criteria"] = verdicts_arg(&args.verdict)?;
    }
    let answer = ctx.client.post(&format!("/api/v1/stories/{id}/review-complete"), body).await?;
    let record = &answer["review_record"];
    emit_record(ctx.format, &answer, record, || {
        format!("Review recorded for {}: {}", text(&story["number"]), text(&record["summary"]))
    });
    Ok(())
}

pub async fn verify(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    if args.result == Verdict::Fail {
        let reason = args
            .summary
            .ok_or_else(|| usage("verify --result fail needs --summary (it becomes the rejection reason)"))?;
        let answer = ctx.client.post(&format!("/api/v1/stories/{id}/reject"), json!({"reason": reason})).await?;
        done(ctx, &answer, "Rejected");
        return Ok(());
    }
    let mut body = json!({"result": "pass", "summary": args.summary, "review_type": args.review_type, "commit_sha": args.commit_sha});
    if !args.verdict.is_empty() {
        body["criteria"] = verdicts_arg(&args.verdict)?;
    }
    let answer = ctx.client.post(&format!("/api/v1/stories/{id}/verify"), body).await?;
    done(ctx, &answer, "Verified");
    Ok(())
}

pub async fn reject(ctx: &Ctx, args: ReasonArgs) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let answer = ctx.client.post(&format!("/api/v1/stories/{id}/reject"), json!({"reason": args.reason})).await?;
    let story = &answer["story"];
    done(ctx, &answer, "Rejected");
    if ctx.format == crate::output::Format::Human && story["escalated"] == true {
        eprintln!(
            "warning: story {} is escalated after {} rejections{}",
            text(&story["number"]),
            text(&story["iteration_count"]),
            if story["escalation_locked"] == true { " and locked until a user clears it" } else { "" }
        );
    }
    Ok(())
}

pub async fn backfill(ctx: &Ctx, args: BackfillArgs) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let body = json!({"reason": args.reason, "evidence_url": args.evidence_url, "pr_number": args.pr_number});
    let answer = ctx.client.post(&format!("/api/v1/stories/{id}/backfill"), body).await?;
    done(ctx, &answer, "Backfilled");
    Ok(())
}

pub async fn escalation(ctx: &Ctx, command: EscalationCmd) -> anyhow::Result<()> {
    match command {
        EscalationCmd::Clear { story, note } => {
            let id = ctx.story_id(&story).await?;
            let answer =
                ctx.client.post(&format!("/api/v1/stories/{id}/clear-escalation"), json!({"note": note})).await?;
            done(ctx, &answer, "Escalation cleared for");
            Ok(())
        }
    }
}

/// `AC-1=test:tests/a.rs::b` → `{"ac_id":"AC-1","test":"tests/a.rs::b"}`.
fn evidence_arg(arg: &str) -> anyhow::Result<Value> {
    let bad = || usage(format!("--evidence `{arg}`: write AC-ID=test:NAME (or file:, commit:, note:)"));
    let (ac_id, rest) = arg.split_once('=').ok_or_else(bad)?;
    let (kind, value) = rest.split_once(':').ok_or_else(bad)?;
    if !matches!(kind, "test" | "file" | "commit" | "note") || value.is_empty() {
        return Err(bad());
    }
    let mut evidence = json!({"ac_id": ac_id.trim()});
    evidence[kind] = json!(value);
    Ok(evidence)
}

/// `AC-1=pass`, `AC-2=fail:reason` → criteria verdicts.
fn verdicts_arg(args: &[String]) -> anyhow::Result<Value> {
    let verdicts = args
        .iter()
        .map(|arg| {
            let bad = || usage(format!("--verdict `{arg}`: write AC-ID=pass or AC-ID=fail:why"));
            let (ac_id, rest) = arg.split_once('=').ok_or_else(bad)?;
            let (verdict, note) = rest.split_once(':').map_or((rest, None), |(v, n)| (v, Some(n)));
            if !matches!(verdict, "pass" | "fail") {
                return Err(bad());
            }
            Ok(json!({"ac_id": ac_id.trim(), "verdict": verdict, "note": note}))
        })
        .collect::<anyhow::Result<Vec<Value>>>()?;
    Ok(Value::Array(verdicts))
}
