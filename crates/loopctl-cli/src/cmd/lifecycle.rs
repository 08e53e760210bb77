//! The story lifecycle: contract, claim, start, report, review, verify, reject, …

use clap::{Args, Subcommand, ValueEnum};
use loopctl_api::{
    ArtifactInput, BackfillRequest, ContractRequest, CriterionVerdict, EvidenceInput, NextAction, ReasonRequest,
    RejectRequest, ReportRequest, ReviewRequest, StoryView, TokenUsageInput, TransitionOutcome, VerifyRequest,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::context::{Ctx, forget_epoch, recall_epoch, remember_epoch};
use crate::output::{emit_record, or_dash, text, usage};
use crate::time::shown;

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
    /// What this agent spent: `input=N,output=N[,cost_usd=X][,model=NAME]` (summed per story
    /// and project by `status`, and counted against the project's budget).
    #[arg(long, value_parser = token_usage_arg)]
    token_usage: Option<TokenUsageInput>,
}

#[derive(Args, Debug)]
pub struct ReasonArgs {
    /// The story: 2.1, US-2.1, or its id.
    story: String,
    /// Why (recorded; the implementer sees it).
    #[arg(long, value_parser = not_blank)]
    reason: String,
}

/// `input=N,output=N[,cost_usd=X][,model=NAME]`: the usage an agent reports, cost in the
/// reference's millicents (1 USD = 100,000).
fn token_usage_arg(value: &str) -> Result<TokenUsageInput, String> {
    let mut usage = TokenUsageInput::default();
    let (mut input, mut output) = (false, false);
    let count = |key: &str, raw: &str, unit: &str| {
        raw.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or(format!("{key} must be a whole number of {unit}, got `{raw}`"))
    };
    for part in value.split(',').filter(|part| !part.trim().is_empty()) {
        let (key, raw) =
            part.split_once('=').ok_or(format!("`{part}` is not key=value (input=N,output=N,cost_usd=X)"))?;
        match key.trim() {
            "input" | "input_tokens" => (usage.input_tokens, input) = (count(key, raw, "tokens")?, true),
            "output" | "output_tokens" => (usage.output_tokens, output) = (count(key, raw, "tokens")?, true),
            "cost_usd" => {
                let usd = raw.trim().parse::<f64>().ok().filter(|usd| usd.is_finite() && (0.0..=1e7).contains(usd));
                let usd = usd.ok_or(format!("cost_usd must be dollars from 0 to 10000000, got `{raw}`"))?;
                usage.cost_millicents = Some((usd * 100_000.0).round() as i64);
            }
            "cost_millicents" => usage.cost_millicents = Some(count(key, raw, "millicents")?),
            "model" | "model_name" => usage.model_name = Some(raw.trim().to_string()),
            other => return Err(format!("unknown key `{other}`: use input, output, cost_usd, model")),
        }
    }
    if !(input && output) {
        return Err("give both input=N and output=N".into());
    }
    Ok(usage)
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
    /// What this agent spent: `input=N,output=N[,cost_usd=X][,model=NAME]` (summed per story
    /// and project by `status`, and counted against the project's budget).
    #[arg(long, value_parser = token_usage_arg)]
    token_usage: Option<TokenUsageInput>,
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

/// Which write of the claimant `claimant` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimantWrite {
    Start,
    Heartbeat,
    RequestReview,
    Unclaim,
}

/// A transition's answer: as JSON as it came, for people the story's new state, its lease
/// while held, and the next step.
fn done(ctx: &Ctx, answer: &impl Serialize, story: &StoryView, next_actions: &[NextAction], verb: &str) {
    emit_record(ctx.format, answer, story, || {
        let mut out =
            format!("{verb} {} {}: {} / {}", story.number, story.title, story.agent_status, story.verified_status);
        // A held story is lost when its lease ends; the holder should know when that is.
        if matches!(story.agent_status.as_str(), "assigned" | "implementing")
            && let Some(lease) = story.lease_expires_at
        {
            out.push_str(&format!(
                " (lease until {}; renew with loopctl heartbeat {})",
                shown(Some(lease)),
                story.number
            ));
        }
        if let Some(next) = next_actions.first() {
            out.push_str(&format!("\nNext: loopctl {} {}", next.action.replace('_', "-"), story.number));
        }
        out
    });
}

fn transitioned(ctx: &Ctx, answer: &TransitionOutcome, verb: &str) {
    done(ctx, answer, &answer.story, &answer.next_actions, verb);
}

/// The criteria of a story as people read them: `AC-1  text`.
pub(crate) fn criteria_lines(story: &StoryView) -> Vec<String> {
    story
        .acceptance_criteria
        .as_array()
        .into_iter()
        .flatten()
        .map(|ac| {
            let body = ac.get("criterion").or_else(|| ac.get("description")).unwrap_or(&Value::Null);
            format!("  {}  {}", text(&ac["id"]), text(body))
        })
        .collect()
}

pub async fn contract(ctx: &Ctx, args: ContractArgs) -> anyhow::Result<()> {
    let story = ctx.story(&args.story).await?;
    let ac_count = args.ac_count.unwrap_or_else(|| story.acceptance_criteria.as_array().map_or(0, Vec::len));
    let title = args.title.unwrap_or_else(|| story.title.clone());
    if ctx.format == crate::output::Format::Human {
        crate::outln!("{} {}", story.number, title);
        for line in criteria_lines(&story) {
            crate::outln!("{line}");
        }
    }
    let contract = ContractRequest { story_title: Some(title), ac_count: Some(ac_count.into()) };
    let answer = ctx.client.contract_story(story.id, &contract).await?;
    transitioned(ctx, &answer, "Contracted");
    Ok(())
}

pub async fn claim(ctx: &Ctx, args: StoryArg) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let answer = ctx.client.claim_story(id).await?;
    remember_epoch(id, answer.story.claim_epoch);
    transitioned(ctx, &answer, "Claimed");
    Ok(())
}

/// A write only the claimant makes; sends the epoch it got from `claim` as the fencing token.
pub async fn claimant(ctx: &Ctx, args: StoryArg, write: ClaimantWrite) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let epoch = recall_epoch(id);
    let client = &ctx.client;
    let (answer, label) = match write {
        ClaimantWrite::Start => (client.start_story(id, epoch).await?, "Started"),
        ClaimantWrite::RequestReview => (client.request_review(id, epoch).await?, "Review requested for"),
        ClaimantWrite::Unclaim => {
            let answer = client.unclaim_story(id, epoch).await?;
            forget_epoch(id);
            (answer, "Unclaimed")
        }
        // The renewal answers the new lease's end too, so it prints as it came.
        ClaimantWrite::Heartbeat => {
            let answer = client.heartbeat_story(id, epoch).await?;
            done(ctx, &answer, &answer.story, &answer.next_actions, "Lease renewed for");
            return Ok(());
        }
    };
    transitioned(ctx, &answer, label);
    Ok(())
}

pub async fn report(ctx: &Ctx, args: ReportArgs) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let mut artifacts = Vec::new();
    for raw in &args.artifact {
        let artifact = crate::json_arg("--artifact", raw)?;
        if !artifact.is_object() {
            return Err(usage("--artifact must be a JSON object like {\"artifact_type\":\"commit_diff\",…}"));
        }
        artifacts.push(
            serde_json::from_value(artifact).map_err(|err| usage(format!("--artifact is not an artifact: {err}")))?,
        );
    }
    if let Some(commit) = &args.commit {
        artifacts.push(commit_artifact(commit)?);
    }
    let acceptance_evidence = if args.evidence.is_empty() {
        None
    } else {
        Some(args.evidence.iter().map(|e| evidence_arg(e)).collect::<anyhow::Result<_>>()?)
    };
    let report = ReportRequest {
        artifact: None,
        artifacts: Some(artifacts),
        summary: args.summary,
        acceptance_evidence,
        token_usage: args.token_usage,
    };
    let answer = ctx.client.report_story(id, &report, recall_epoch(id)).await?;
    transitioned(ctx, &answer, "Reported");
    Ok(())
}

/// A `commit_diff` artifact for a commit of the repository in the working directory.
fn commit_artifact(commit: &str) -> anyhow::Result<ArtifactInput> {
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
    Ok(ArtifactInput {
        artifact_type: "commit_diff".into(),
        path: None,
        exists: None,
        // Free JSON: what the artifact says about the commit.
        details: Some(json!({"commit_sha": sha, "files": files, "subject": subject, "branch": branch})),
        commit_sha: None,
    })
}

pub async fn force_unclaim(ctx: &Ctx, args: ReasonArgs) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let reason = ReasonRequest { reason: Some(args.reason), note: None };
    let answer = ctx.client.force_unclaim_story(id, &reason).await?;
    transitioned(ctx, &answer, "Took back");
    Ok(())
}

pub async fn review_complete(ctx: &Ctx, args: ReviewArgs) -> anyhow::Result<()> {
    let story = ctx.story(&args.story).await?;
    let findings = args.findings.as_deref().map(|findings| crate::json_arg("--findings", findings)).transpose()?;
    let criteria = if args.verdict.is_empty() { None } else { Some(verdicts_arg(&args.verdict)?) };
    let review = ReviewRequest {
        review_type: Some(args.review_type),
        findings_count: args.findings_count,
        fixes_count: args.fixes_count,
        disproved_count: args.disproved_count,
        summary: args.summary,
        findings,
        completed_at: None,
        criteria,
        token_usage: args.token_usage,
    };
    let answer = ctx.client.review_complete(story.id, &review).await?;
    let record = &answer.review_record;
    emit_record(ctx.format, &answer, record, || {
        format!("Review recorded for {}: {}", story.number, or_dash(record.summary.as_ref()))
    });
    Ok(())
}

pub async fn verify(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    if args.result == Verdict::Fail {
        let reason = args
            .summary
            .ok_or_else(|| usage("verify --result fail needs --summary (it becomes the rejection reason)"))?;
        let answer =
            ctx.client.reject_story(id, &RejectRequest { reason: Some(reason), ..RejectRequest::default() }).await?;
        transitioned(ctx, &answer, "Rejected");
        return Ok(());
    }
    let criteria = if args.verdict.is_empty() { None } else { Some(verdicts_arg(&args.verdict)?) };
    let verify = VerifyRequest {
        summary: args.summary,
        review_type: args.review_type,
        findings: None,
        result: Some("pass".into()),
        commit_sha: args.commit_sha,
        criteria,
    };
    let answer = ctx.client.verify_story(id, &verify).await?;
    done(ctx, &answer, &answer.story, &answer.next_actions, "Verified");
    Ok(())
}

pub async fn reject(ctx: &Ctx, args: ReasonArgs) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let reject = RejectRequest { reason: Some(args.reason), ..RejectRequest::default() };
    let answer = ctx.client.reject_story(id, &reject).await?;
    let story = &answer.story;
    transitioned(ctx, &answer, "Rejected");
    if ctx.format == crate::output::Format::Human && story.escalated {
        eprintln!(
            "warning: story {} is escalated after {} rejections{}",
            story.number,
            story.iteration_count,
            if story.escalation_locked { " and locked until a user clears it" } else { "" }
        );
    }
    Ok(())
}

pub async fn backfill(ctx: &Ctx, args: BackfillArgs) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let backfill = BackfillRequest {
        reason: Some(args.reason),
        evidence_url: args.evidence_url,
        pr_number: args.pr_number.map(Value::from),
    };
    let answer = ctx.client.backfill_story(id, &backfill).await?;
    transitioned(ctx, &answer, "Backfilled");
    Ok(())
}

pub async fn escalation(ctx: &Ctx, command: EscalationCmd) -> anyhow::Result<()> {
    match command {
        EscalationCmd::Clear { story, note } => {
            let id = ctx.story_id(&story).await?;
            let answer = ctx.client.clear_escalation(id, &ReasonRequest { reason: None, note: Some(note) }).await?;
            transitioned(ctx, &answer, "Escalation cleared for");
            Ok(())
        }
    }
}

/// `AC-1=test:tests/a.rs::b` → evidence for `AC-1` naming that test.
fn evidence_arg(arg: &str) -> anyhow::Result<EvidenceInput> {
    let bad = || usage(format!("--evidence `{arg}`: write AC-ID=test:NAME (or file:, commit:, note:)"));
    let (ac_id, rest) = arg.split_once('=').ok_or_else(bad)?;
    let (kind, value) = rest.split_once(':').ok_or_else(bad)?;
    if value.is_empty() {
        return Err(bad());
    }
    let mut evidence = EvidenceInput { ac_id: ac_id.trim().into(), test: None, file: None, commit: None, note: None };
    let slot = match kind {
        "test" => &mut evidence.test,
        "file" => &mut evidence.file,
        "commit" => &mut evidence.commit,
        "note" => &mut evidence.note,
        _ => return Err(bad()),
    };
    *slot = Some(value.into());
    Ok(evidence)
}

/// `AC-1=pass`, `AC-2=fail:reason` → criteria verdicts.
fn verdicts_arg(args: &[String]) -> anyhow::Result<Vec<CriterionVerdict>> {
    args.iter()
        .map(|arg| {
            let bad = || usage(format!("--verdict `{arg}`: write AC-ID=pass or AC-ID=fail:why"));
            let (ac_id, rest) = arg.split_once('=').ok_or_else(bad)?;
            let (verdict, note) = rest.split_once(':').map_or((rest, None), |(v, n)| (v, Some(n)));
            if !matches!(verdict, "pass" | "fail") {
                return Err(bad());
            }
            Ok(CriterionVerdict { ac_id: ac_id.trim().into(), verdict: verdict.into(), note: note.map(str::to_string) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::token_usage_arg;

    #[test]
    fn token_usage_reads_counts_dollars_and_a_model() {
        let usage = token_usage_arg("input=1200,output=340,cost_usd=0.0123,model=sonnet").expect("valid usage");
        assert_eq!((usage.input_tokens, usage.output_tokens), (1200, 340));
        assert_eq!(usage.cost_millicents, Some(1230));
        assert_eq!(usage.model_name.as_deref(), Some("sonnet"));
    }

    #[test]
    fn token_usage_refuses_what_it_cannot_count() {
        for bad in ["input=5", "input=-1,output=2", "input=1,output=2,cost_usd=NaN", "input=1,output=2,tokens=3", "x"] {
            assert!(token_usage_arg(bad).is_err(), "{bad} should be refused");
        }
    }
}
