//! The story lifecycle: contract → claim → start → report → review → verify / reject, and
//! the transitions around it. Each tool uses the key of the role that makes the call in the
//! seed's flow; the server decides whether that identity may.

use loopctl_client::{ClientError, Method};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::story::{StoryRef, text};
use super::{Effect, Outcome, Tier, ToolResult, ToolSpec, spec};
use crate::ctx::Ctx;
use crate::refusal::invalid;
use crate::speak::KeyRole;
use crate::{rows, speak};

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![
        spec(
            Tier::Core,
            "contract_story",
            "Implementer, step 1: acknowledge a story by its exact title and number of acceptance criteria \
             (pending → contracted). A mismatch is refused with the real counts.",
            Effect::Write,
            contract_story,
        ),
        spec(
            Tier::Core,
            "claim_story",
            "Implementer, step 2: claim a contracted story (→ assigned). One agent wins a race; the claim holds a \
             lease.",
            Effect::Write,
            claim_story,
        ),
        spec(
            Tier::Core,
            "start_story",
            "Implementer, step 3: start work on your claimed story (assigned → implementing).",
            Effect::Write,
            start_story,
        ),
        spec(
            Tier::Core,
            "report_story",
            "Implementer, step 4: report the work done (implementing → reported_done) with its artifact, e.g. \
             artifact_type \"commit_diff\" and commit_sha. It does not verify the story.",
            Effect::Write,
            report_story,
        ),
        spec(
            Tier::Core,
            "review_complete",
            "Record an independent review of a reported story (never by its implementer), with findings counts \
             and a summary.",
            Effect::Write,
            review_complete,
        ),
        spec(
            Tier::Core,
            "verify_story",
            "Orchestrator: mark a reported story verified after independent review. Its implementer can never \
             verify it.",
            Effect::Write,
            verify_story,
        ),
        spec(
            Tier::Core,
            "reject_story",
            "Orchestrator: reject a reported story with the reason; it goes back to pending for another round \
             and escalates after repeated rejections.",
            Effect::Write,
            reject_story,
        ),
        spec(
            Tier::Core,
            "heartbeat_story",
            "Implementer: renew the lease on your claimed story during long work; a story whose lease ran out \
             can be taken over by another agent.",
            Effect::Write,
            heartbeat_story,
        ),
        spec(
            Tier::Core,
            "backfill_story",
            "Mark a story verified because the work was done outside loopctl; the reason is recorded.",
            Effect::Write,
            backfill_story,
        ),
        spec(
            Tier::Standard,
            "claim_next_story",
            "Implementer: contract and claim the first ready story of a project in one step; answers it with \
             its acceptance criteria (nothing_ready when none).",
            Effect::Write,
            claim_next_story,
        ),
        spec(
            Tier::Standard,
            "unclaim_story",
            "Implementer: give your claimed story back (→ pending) when you cannot finish it.",
            Effect::Write,
            unclaim_story,
        ),
        spec(
            Tier::Standard,
            "request_review",
            "Implementer: ask for review of your story (strict custody flow).",
            Effect::Write,
            request_review,
        ),
        spec(
            Tier::Standard,
            "force_unclaim_story",
            "Orchestrator: take a story back from a stuck or crashed agent, with the reason (required, \
             audited); its later writes are refused.",
            Effect::Destroy,
            force_unclaim_story,
        ),
        spec(
            Tier::All,
            "clear_escalation",
            "User: clear a story's escalation after a human looked at it, so it can be claimed again.",
            Effect::Write,
            clear_escalation,
        ),
    ]
}

/// Which call of the lifecycle, and whether the claimant's fencing epoch goes with it.
struct Step {
    role: KeyRole,
    action: &'static str,
    fenced: bool,
}

/// `POST /api/v1/stories/{id}/{action}`; the summary says where the story is now and what
/// comes next.
async fn transition(
    ctx: &Ctx,
    story: &StoryRef,
    step: Step,
    body: Option<Value>,
) -> Result<(String, Value), ClientError> {
    let id = story.resolve(ctx).await?;
    let path = format!("/api/v1/stories/{id}/{}", step.action);
    let epoch = if step.fenced { ctx.epoch(&id) } else { None };
    let fence: Vec<(&str, String)> = epoch.map(|epoch| ("X-Claim-Epoch", epoch.to_string())).into_iter().collect();
    let answer = ctx.request(step.role, Method::POST, &path, body, &[], &fence).await?;
    Ok((id, answer))
}

/// How much of the criteria a transition's answer carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Criteria {
    /// `ac_count` only.
    Count,
    /// Also `ac_ids`: the agent that just contracted names them in its evidence later.
    Ids,
}

/// A transition's answer as an agent needs it: the compact story, `next_actions` as tool
/// calls, and the answer's other (small) fields such as verify's `status` or heartbeat's
/// `lease_expires_at`. `get_story` has everything else.
fn compact(answer: Value, criteria: Criteria) -> Value {
    let Value::Object(mut fields) = answer else {
        return answer;
    };
    let story = fields.remove("story").unwrap_or_default();
    let mut small = rows::pick(&story, rows::TRANSITION_STORY, None);
    if criteria == Criteria::Ids
        && let Some(small) = small.as_object_mut()
    {
        small.insert("ac_ids".into(), json!(rows::ac_ids(&story)));
    }
    if let Some(next) = fields.remove("next_actions") {
        fields.insert("next_actions".into(), speak::next_actions(&next, story["id"].as_str()));
    }
    fields.insert("story".into(), small);
    Value::Object(fields)
}

/// The compact answer, and a summary line saying where the story stands and which tool is next.
fn outcome(answer: Value, criteria: Criteria) -> ToolResult {
    let value = compact(answer, criteria);
    let mut summary = rows::story_line(&value["story"]);
    if let Some(next) = value["next_actions"][0]["tool"].as_str() {
        summary.push_str(&format!("; next: {next}"));
    }
    Ok(Outcome::new(value, summary))
}

/// Text an agent must give, not blank: a refusal before any request, so no default reason is
/// ever recorded in its name.
fn required(text: String, field: &str, why: &str) -> Result<String, ClientError> {
    if text.trim().is_empty() {
        return Err(invalid(format!("{field} must not be blank: {why}")));
    }
    Ok(text)
}

#[derive(Deserialize, JsonSchema)]
struct ContractParams {
    #[serde(flatten)]
    story: StoryRef,
    /// The story's exact title.
    story_title: String,
    /// How many acceptance criteria the story has.
    ac_count: i64,
}

async fn contract_story(ctx: Ctx, params: ContractParams) -> ToolResult {
    let body = json!({"story_title": params.story_title, "ac_count": params.ac_count});
    let step = Step { role: KeyRole::Agent, action: "contract", fenced: false };
    let (_, answer) = transition(&ctx, &params.story, step, Some(body)).await?;
    outcome(answer, Criteria::Ids)
}

async fn claim_story(ctx: Ctx, params: StoryRef) -> ToolResult {
    let step = Step { role: KeyRole::Agent, action: "claim", fenced: false };
    let (_, answer) = transition(&ctx, &params, step, None).await?;
    ctx.remember_epoch(&answer["story"]);
    outcome(answer, Criteria::Count)
}

async fn start_story(ctx: Ctx, params: StoryRef) -> ToolResult {
    let step = Step { role: KeyRole::Agent, action: "start", fenced: true };
    let (_, answer) = transition(&ctx, &params, step, None).await?;
    outcome(answer, Criteria::Count)
}

#[derive(Deserialize, JsonSchema)]
struct ArtifactParam {
    /// commit_diff, file, test, migration, ci_run, …
    artifact_type: String,
    path: Option<String>,
    commit_sha: Option<String>,
    details: Option<Value>,
}

#[derive(Deserialize, JsonSchema)]
struct ReportParams {
    #[serde(flatten)]
    story: StoryRef,
    /// commit_diff, file, test, migration, ci_run, …
    artifact_type: Option<String>,
    /// File path of the artifact, if any.
    artifact_path: Option<String>,
    /// The commit holding the work.
    commit_sha: Option<String>,
    /// Free JSON about the artifact.
    details: Option<Value>,
    /// More artifacts: [{"artifact_type","path","commit_sha","details"}].
    artifacts: Option<Vec<ArtifactParam>>,
    /// What was done, in a sentence or two.
    summary: Option<String>,
    /// Evidence per criterion, [{"ac_id","test","file","commit","note"}] (when the tenant requires it).
    acceptance_evidence: Option<Vec<Value>>,
    /// What the implementer spent: {"input_tokens","output_tokens","cost_millicents","model_name"}
    /// (1 USD = 100000 millicents); summed per story and project, counted against the budget.
    token_usage: Option<Value>,
}

async fn report_story(ctx: Ctx, params: ReportParams) -> ToolResult {
    let mut body = json!({});
    // The reference sends `{artifact_type, path}`; a bare path is a file, a bare sha a commit.
    let single = params.artifact_type.clone().or_else(|| match (&params.artifact_path, &params.commit_sha) {
        (Some(_), _) => Some("file".to_string()),
        (None, Some(_)) => Some("commit_diff".to_string()),
        (None, None) => None,
    });
    if let Some(artifact_type) = single {
        let artifact = ArtifactParam {
            artifact_type,
            path: params.artifact_path,
            commit_sha: params.commit_sha,
            details: params.details,
        };
        body["artifact"] = artifact_json(artifact);
    }
    if let Some(more) = params.artifacts {
        body["artifacts"] = Value::Array(more.into_iter().map(artifact_json).collect());
    }
    if let Some(summary) = params.summary {
        body["summary"] = json!(summary);
    }
    if let Some(evidence) = params.acceptance_evidence {
        body["acceptance_evidence"] = json!(evidence);
    }
    if let Some(usage) = params.token_usage {
        body["token_usage"] = usage;
    }
    // The claimant's report is fenced by its claim epoch; an orchestrator reporting on its
    // behalf (the seed's flow) never claimed, so it has no epoch to send.
    let step = Step { role: KeyRole::Agent, action: "report", fenced: true };
    let (id, answer) = transition(&ctx, &params.story, step, Some(body)).await?;
    ctx.forget_epoch(&id);
    outcome(answer, Criteria::Count)
}

fn artifact_json(artifact: ArtifactParam) -> Value {
    let mut value = json!({"artifact_type": artifact.artifact_type});
    if let Some(path) = artifact.path {
        value["path"] = json!(path);
    }
    if let Some(sha) = artifact.commit_sha {
        value["commit_sha"] = json!(sha);
    }
    if let Some(details) = artifact.details {
        value["details"] = details;
    }
    value
}

/// What review_complete answers of the record it wrote.
const REVIEW_RECORD: &[&str] = &[
    "id",
    "story_id",
    "reviewer_agent_id",
    "review_type",
    "findings_count",
    "fixes_count",
    "disproved_count",
    "completed_at",
];

#[derive(Deserialize, JsonSchema)]
struct ReviewParams {
    #[serde(flatten)]
    story: StoryRef,
    /// Default "standard".
    review_type: Option<String>,
    findings_count: Option<i64>,
    fixes_count: Option<i64>,
    disproved_count: Option<i64>,
    summary: Option<String>,
    /// Verdict per criterion: [{"ac_id","verdict":"pass|fail","note"}].
    criteria: Option<Vec<Value>>,
    /// What the reviewer spent: {"input_tokens","output_tokens","cost_millicents","model_name"}.
    token_usage: Option<Value>,
}

async fn review_complete(ctx: Ctx, params: ReviewParams) -> ToolResult {
    let mut body = json!({"review_type": params.review_type.unwrap_or_else(|| "standard".into())});
    for (key, value) in [
        ("findings_count", params.findings_count),
        ("fixes_count", params.fixes_count),
        ("disproved_count", params.disproved_count),
    ] {
        if let Some(value) = value {
            body[key] = json!(value);
        }
    }
    if let Some(summary) = params.summary {
        body["summary"] = json!(summary);
    }
    if let Some(criteria) = params.criteria {
        body["criteria"] = json!(criteria);
    }
    if let Some(usage) = params.token_usage {
        body["token_usage"] = usage;
    }
    let step = Step { role: KeyRole::Orchestrator, action: "review-complete", fenced: false };
    let (_, answer) = transition(&ctx, &params.story, step, Some(body)).await?;
    // The reviewer wrote the summary and findings; echoing them back costs its context.
    let review = rows::pick(&answer["review_record"], REVIEW_RECORD, None);
    let summary = format!(
        "review recorded for story {} ({}, {} findings); next: verify_story or reject_story by the orchestrator",
        params.story.story_id,
        review["review_type"].as_str().unwrap_or("standard"),
        review["findings_count"].as_i64().unwrap_or(0)
    );
    Ok(Outcome::new(json!({"review_record": review}), summary))
}

#[derive(Deserialize, JsonSchema)]
struct VerifyParams {
    #[serde(flatten)]
    story: StoryRef,
    /// Why it passes, e.g. "All ACs met, tests pass".
    summary: Option<String>,
    review_type: Option<String>,
    /// Verdict per criterion: [{"ac_id","verdict":"pass|fail","note"}].
    criteria: Option<Vec<Value>>,
}

async fn verify_story(ctx: Ctx, params: VerifyParams) -> ToolResult {
    let mut body = json!({});
    if let Some(summary) = params.summary {
        body["summary"] = json!(summary);
    }
    if let Some(review_type) = params.review_type {
        body["review_type"] = json!(review_type);
    }
    if let Some(criteria) = params.criteria {
        body["criteria"] = json!(criteria);
    }
    let step = Step { role: KeyRole::Orchestrator, action: "verify", fenced: false };
    let (_, answer) = transition(&ctx, &params.story, step, Some(body)).await?;
    outcome(answer, Criteria::Count)
}

#[derive(Deserialize, JsonSchema)]
struct RejectParams {
    #[serde(flatten)]
    story: StoryRef,
    /// What is missing or wrong; the next implementer reads it.
    reason: String,
}

async fn reject_story(ctx: Ctx, params: RejectParams) -> ToolResult {
    let body = json!({"reason": params.reason});
    let step = Step { role: KeyRole::Orchestrator, action: "reject", fenced: false };
    let (_, answer) = transition(&ctx, &params.story, step, Some(body)).await?;
    outcome(answer, Criteria::Count)
}

#[derive(Deserialize, JsonSchema)]
struct BackfillParams {
    #[serde(flatten)]
    story: StoryRef,
    /// Why the story counts as done.
    reason: String,
    evidence_url: Option<String>,
    pr_number: Option<i64>,
}

async fn backfill_story(ctx: Ctx, params: BackfillParams) -> ToolResult {
    let reason = required(params.reason, "reason", "say why the story counts as done")?;
    let mut body = json!({"reason": reason});
    if let Some(url) = params.evidence_url {
        body["evidence_url"] = json!(url);
    }
    if let Some(pr) = params.pr_number {
        body["pr_number"] = json!(pr);
    }
    let step = Step { role: KeyRole::Orchestrator, action: "backfill", fenced: false };
    let (_, answer) = transition(&ctx, &params.story, step, Some(body)).await?;
    outcome(answer, Criteria::Count)
}

#[derive(Deserialize, JsonSchema)]
struct ClaimNextParams {
    /// Project UUID or slug.
    project_id: Option<String>,
    /// Only this epic (UUID).
    epic_id: Option<String>,
}

async fn claim_next_story(ctx: Ctx, params: ClaimNextParams) -> ToolResult {
    let project = ctx.project_id(params.project_id.as_deref()).await?;
    let mut body = json!({"project_id": project});
    if let Some(epic) = params.epic_id.filter(|e| !e.trim().is_empty()) {
        body["epic_id"] = json!(epic);
    }
    let answer = ctx.send(KeyRole::Agent, Method::POST, "/api/v1/stories/claim-next", Some(body)).await?;
    ctx.remember_epoch(&answer["story"]);
    let mut result = outcome(answer, Criteria::Ids)?;
    result.summary.push_str(" (criteria texts: get_story)");
    Ok(result)
}

async fn heartbeat_story(ctx: Ctx, params: StoryRef) -> ToolResult {
    let step = Step { role: KeyRole::Agent, action: "heartbeat", fenced: true };
    let (_, answer) = transition(&ctx, &params, step, None).await?;
    let mut result = outcome(answer, Criteria::Count)?;
    result.summary = format!(
        "lease of story {} renewed until {}",
        params.story_id,
        result.value["lease_expires_at"].as_str().unwrap_or("?")
    );
    Ok(result)
}

async fn unclaim_story(ctx: Ctx, params: StoryRef) -> ToolResult {
    let step = Step { role: KeyRole::Agent, action: "unclaim", fenced: true };
    let (id, answer) = transition(&ctx, &params, step, None).await?;
    ctx.forget_epoch(&id);
    outcome(answer, Criteria::Count)
}

async fn request_review(ctx: Ctx, params: StoryRef) -> ToolResult {
    let step = Step { role: KeyRole::Agent, action: "request-review", fenced: true };
    let (_, answer) = transition(&ctx, &params, step, None).await?;
    outcome(answer, Criteria::Count)
}

#[derive(Deserialize, JsonSchema)]
struct ForceUnclaimParams {
    #[serde(flatten)]
    story: StoryRef,
    /// Why the story is taken back; recorded in the audit log, which is why there is no default.
    reason: String,
}

async fn force_unclaim_story(ctx: Ctx, params: ForceUnclaimParams) -> ToolResult {
    let reason = required(params.reason, "reason", "say why the story is taken from its holder")?;
    let body = json!({"reason": reason});
    let step = Step { role: KeyRole::Orchestrator, action: "force-unclaim", fenced: false };
    let (_, answer) = transition(&ctx, &params.story, step, Some(body)).await?;
    outcome(answer, Criteria::Count)
}

#[derive(Deserialize, JsonSchema)]
struct ClearParams {
    #[serde(flatten)]
    story: StoryRef,
    /// What the human decided.
    #[serde(deserialize_with = "text")]
    note: String,
}

async fn clear_escalation(ctx: Ctx, params: ClearParams) -> ToolResult {
    let body = json!({"note": params.note});
    let step = Step { role: KeyRole::User, action: "clear-escalation", fenced: false };
    let (_, answer) = transition(&ctx, &params.story, step, Some(body)).await?;
    outcome(answer, Criteria::Count)
}
