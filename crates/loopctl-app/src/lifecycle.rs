//! Story lifecycle use cases: read, apply the pure state machine, compare-and-set.
//!
//! Every transition reads the story, asks `loopctl_core::apply` what follows, and writes
//! the new state with the version it read. Losing that race (another writer got there
//! first) means reading again and re-deciding, so the loser gets the error the new state
//! calls for (already claimed, stale claim…), never a silent overwrite.

use chrono::{DateTime, Utc};
use loopctl_api::*;
use loopctl_core::{Action, AgentStatus, Context, Role, StoryState, VerifiedStatus, apply};
use loopctl_store::{
    ArtifactRecord, ExpiredClaims, FrontierQuery, InFlightGuard, NewVerification, ReviewRecord, StoryRecord,
    StoryTransition, WriteOp,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::view::{FromRecord, FromRecordAt};
use crate::{App, AppError, AppResult, Principal, event, object, story_status};

/// How often a transition re-reads after losing a compare-and-set before giving up.
const MAX_ATTEMPTS: usize = 8;

impl App {
    /// Runs one lifecycle action with the evidence rows it writes, for a use case that answers
    /// with something else than the transition's outcome; answers the story as written.
    async fn transition<F>(
        &self,
        who: &Principal,
        story_id: Uuid,
        action: Action,
        claim_epoch: Option<i64>,
        note: Option<&str>,
        evidence: F,
    ) -> AppResult<StoryRecord>
    where
        F: Fn(&StoryRecord, &StoryState) -> AppResult<Vec<WriteOp>>,
    {
        Ok(self.run_transition::<false, F>(who, story_id, action, claim_epoch, note, evidence).await?.0)
    }

    /// Runs one lifecycle action for a use case that answers with its outcome: an HTTP
    /// request's Idempotency-Key marker then goes in with that answer (see `once`).
    async fn transition_answered<F>(
        &self,
        who: &Principal,
        story_id: Uuid,
        action: Action,
        claim_epoch: Option<i64>,
        note: Option<&str>,
        evidence: F,
    ) -> AppResult<TransitionOutcome>
    where
        F: Fn(&StoryRecord, &StoryState) -> AppResult<Vec<WriteOp>>,
    {
        Ok(self.run_transition::<true, F>(who, story_id, action, claim_epoch, note, evidence).await?.1)
    }

    /// The two above: the story as written and the outcome, which is the request's answer
    /// when `ANSWERS`.
    async fn run_transition<const ANSWERS: bool, F>(
        &self,
        who: &Principal,
        story_id: Uuid,
        action: Action,
        claim_epoch: Option<i64>,
        note: Option<&str>,
        evidence: F,
    ) -> AppResult<(StoryRecord, TransitionOutcome)>
    where
        F: Fn(&StoryRecord, &StoryState) -> AppResult<Vec<WriteOp>>,
    {
        who.check_story_scope(story_id)?;
        let waits_matter = matches!(action, Action::Claim | Action::Contract { .. });
        // The first attempt may start from the row this process last wrote (`remembered`);
        // every later one, and every refusal, reads the story.
        let mut remembered = self.remembered.take(who.tenant_id, story_id);
        for _ in 0..MAX_ATTEMPTS {
            let from_memory = remembered.is_some();
            let (story, dependencies_met) = match remembered.take() {
                // Whether it waits is checked by the compare-and-set (`only_if_unblocked`).
                Some(story) => (story, true),
                None if waits_matter => self.story_and_whether_free(who, story_id).await?,
                None => (self.story_of(who, story_id).await?, true),
            };
            let at = self.now();
            let ctx = Context {
                now: at,
                settings: &who.settings,
                story_title: &story.title,
                ac_count: story.ac_count(),
                dependencies_met,
                claim_epoch,
            };
            let decided = apply(&story.state, &action, &who.actor(), &ctx)
                .map_err(AppError::from)
                .and_then(|next| Ok((evidence(&story, &next)?, next)));
            let (mut batch, next) = match decided {
                Ok(decided) => decided,
                Err(_) if from_memory => continue,
                Err(refusal) => {
                    self.audit_refusal(who, &story, &action, refusal.code).await;
                    return Err(refusal);
                }
            };
            // A content edit of the story in the same batch (a backfill's note) moves its
            // version too, so it is written after the compare-and-set, and the row it leaves
            // is not remembered (though it is the row answered).
            let (edits, mut batch): (Vec<_>, Vec<_>) =
                batch.drain(..).partition(|op| matches!(op, WriteOp::UpdateStoryContent(_)));
            let guard = claim_guard(who, &story, &next);
            batch.push(WriteOp::TransitionStory(StoryTransition {
                tenant_id: who.tenant_id,
                story_id,
                expected_version: story.lock_version,
                state: next.clone(),
                updated_at: at,
                guard,
                only_if_unblocked: waits_matter && dependencies_met,
            }));
            // The edit is written last, so its row (and time) is the story's.
            let updated = match edits.last() {
                Some(WriteOp::UpdateStoryContent(edited)) => StoryRecord {
                    state: next,
                    lock_version: story.lock_version + 1 + edits.len() as i64,
                    ..edited.clone()
                },
                _ => StoryRecord { state: next, lock_version: story.lock_version + 1, updated_at: at, ..story.clone() },
            };
            let remember = edits.is_empty();
            batch.extend(edits);
            batch.extend(transition_events(who, &story, &updated, &action, note));
            let outcome = self.outcome(who, &updated);
            match self.commit_answering(batch, ANSWERS.then_some(&outcome)).await {
                Ok(_) => {
                    metrics::counter!("loopctl_transitions_total", "action" => action.name()).increment(1);
                    if remember {
                        self.remembered.put(&updated);
                    }
                    return Ok((updated, outcome));
                }
                Err(err) if err.code == ErrorCode::VersionConflict => continue,
                Err(err) => return Err(err),
            }
        }
        Err(AppError::new(ErrorCode::VersionConflict, "the story is changing too fast; read it again and retry"))
    }

    /// Custody refusals are recorded (SPEC: refuse the one call, audit it, go on); the
    /// refusal itself is what the caller gets, whether or not the record could be written.
    async fn audit_refusal(&self, who: &Principal, story: &StoryRecord, action: &Action, code: ErrorCode) {
        let custody = matches!(
            code,
            ErrorCode::SelfReviewBlocked
                | ErrorCode::SelfVerifyBlocked
                | ErrorCode::SelfReportBlocked
                | ErrorCode::ScopeViolation
        );
        if !custody {
            return;
        }
        let record = event(
            who,
            Some(story.project_id),
            ("story", story.id),
            "custody_refused",
            story_status(story),
            json!({"code": code, "attempted_action": action.name(), "number": story.number}),
        );
        if let Err(err) = self.commit(vec![record]).await {
            tracing::warn!(%err, "could not audit a custody refusal");
        }
    }

    /// The story, and whether everything it depends on is verified.
    async fn story_and_whether_free(&self, who: &Principal, id: Uuid) -> AppResult<(StoryRecord, bool)> {
        let (story, waits) =
            self.store.story_and_wait(who.tenant_id, id).await?.ok_or_else(|| AppError::not_found("story"))?;
        Ok((story, !waits))
    }

    fn outcome(&self, who: &Principal, story: &StoryRecord) -> TransitionOutcome {
        TransitionOutcome {
            story: StoryView::from_record_at(story, self.now()),
            next_actions: next_actions(who, story),
        }
    }

    pub async fn contract_story(
        &self,
        who: &Principal,
        id: Uuid,
        request: ContractRequest,
    ) -> AppResult<TransitionOutcome> {
        let ac_count = match request.ac_count {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| AppError::field("ac_count", "must be a whole number, 0 or more"))?,
            ),
            Some(Value::String(s)) => {
                Some(s.trim().parse().map_err(|_| AppError::field("ac_count", "must be a whole number"))?)
            }
            Some(_) => return Err(AppError::field("ac_count", "must be a whole number")),
        };
        let action = Action::Contract { story_title: request.story_title, ac_count };
        self.transition_answered(who, id, action, None, None, |_, _| Ok(Vec::new())).await
    }

    pub async fn claim_story(&self, who: &Principal, id: Uuid) -> AppResult<TransitionOutcome> {
        self.transition_answered(who, id, Action::Claim, None, None, |_, _| Ok(Vec::new())).await
    }

    pub async fn start_story(&self, who: &Principal, id: Uuid, epoch: Option<i64>) -> AppResult<TransitionOutcome> {
        self.transition_answered(who, id, Action::Start, epoch, None, |_, _| Ok(Vec::new())).await
    }

    pub async fn heartbeat_story(&self, who: &Principal, id: Uuid, epoch: Option<i64>) -> AppResult<TransitionOutcome> {
        self.transition_answered(who, id, Action::Heartbeat, epoch, None, |_, _| Ok(Vec::new())).await
    }

    pub async fn request_review(&self, who: &Principal, id: Uuid, epoch: Option<i64>) -> AppResult<TransitionOutcome> {
        self.transition_answered(who, id, Action::RequestReview, epoch, None, |_, _| Ok(Vec::new())).await
    }

    pub async fn report_story(
        &self,
        who: &Principal,
        id: Uuid,
        request: ReportRequest,
        epoch: Option<i64>,
    ) -> AppResult<TransitionOutcome> {
        let mut inputs: Vec<ArtifactInput> = request.artifacts.unwrap_or_default();
        inputs.extend(request.artifact);
        if inputs.len() > 100 {
            return Err(AppError::field("artifacts", "at most 100 artifacts per report"));
        }
        let reported_by = if who.role == Role::Agent { "agent" } else { "orchestrator" };
        let summary = request.summary;
        let evidence = request.acceptance_evidence.unwrap_or_default();
        let usage = request.token_usage;
        self.transition_answered(who, id, Action::Report, epoch, None, |story, _| {
            let mut ops: Vec<WriteOp> = inputs
                .iter()
                .map(|input| artifact_op(who, story.id, reported_by, input, summary.as_deref(), self.now()))
                .collect::<AppResult<_>>()?;
            ops.extend(crate::evidence::evidence_ops(who, story, &evidence, self.now())?);
            if let Some(usage) = &usage {
                ops.push(crate::usage::usage_op(who, story, "implementing", usage, self.now())?);
            }
            Ok(ops)
        })
        .await
    }

    pub async fn unclaim_story(&self, who: &Principal, id: Uuid, epoch: Option<i64>) -> AppResult<TransitionOutcome> {
        self.transition_answered(who, id, Action::Unclaim, epoch, None, |_, _| Ok(Vec::new())).await
    }

    pub async fn force_unclaim_story(
        &self,
        who: &Principal,
        id: Uuid,
        request: ReasonRequest,
    ) -> AppResult<TransitionOutcome> {
        let reason = request.reason.or(request.note).unwrap_or_default();
        if reason.trim().is_empty() {
            return Err(AppError::field("reason", "say why the story is taken back; it goes to the audit log"));
        }
        self.transition_answered(who, id, Action::ForceUnclaim, None, Some(reason.trim()), |_, _| Ok(Vec::new())).await
    }

    pub async fn review_complete(
        &self,
        who: &Principal,
        id: Uuid,
        request: ReviewRequest,
    ) -> AppResult<loopctl_api::ReviewView> {
        let findings = request.findings_count.unwrap_or(0);
        let fixes = request.fixes_count.unwrap_or(0);
        let disproved = request.disproved_count.unwrap_or(0);
        let counts = 0..=1_000_000;
        if !counts.contains(&findings) || !counts.contains(&fixes) || !counts.contains(&disproved) {
            return Err(AppError::validation(
                "findings_count, fixes_count and disproved_count must be from 0 to 1000000",
            ));
        }
        if findings > 0 && fixes + disproved < findings {
            return Err(AppError::field("fixes_count", "fixes_count + disproved_count must account for every finding"));
        }
        let review_type = request.review_type.unwrap_or_else(|| "standard".into());
        let review_type = crate::text("review_type", &review_type, 100)?;
        let findings_json = object("findings", request.findings)?;
        let at = self.now();
        let completed_at = request.completed_at.unwrap_or(at).min(at);
        let review = ReviewRecord {
            id: Uuid::now_v7(),
            tenant_id: who.tenant_id,
            story_id: id,
            reviewer_agent_id: who.agent_id,
            review_type,
            findings_count: findings,
            fixes_count: fixes,
            disproved_count: disproved,
            summary: request.summary,
            findings: findings_json,
            completed_at,
            created_at: at,
        };
        let record = review.clone();
        let verdicts = request.criteria.unwrap_or_default();
        let usage = request.token_usage;
        self.transition(who, id, Action::ReviewComplete, None, None, move |story, _| {
            let mut ops = vec![WriteOp::InsertReview(record.clone())];
            ops.extend(crate::evidence::verdict_ops(who, story, "review", &verdicts, self.now())?);
            if let Some(usage) = &usage {
                ops.push(crate::usage::usage_op(who, story, "reviewing", usage, self.now())?);
            }
            Ok(ops)
        })
        .await?;
        Ok(loopctl_api::ReviewView::from_record(&review))
    }

    pub async fn verify_story(
        &self,
        who: &Principal,
        id: Uuid,
        request: VerifyRequest,
    ) -> AppResult<TransitionOutcome> {
        let result = match request.result.as_deref() {
            None | Some("pass") => "pass",
            Some("partial") => "partial",
            Some(other) => {
                return Err(AppError::field(
                    "result",
                    format!("`{other}` is not a verify result; use pass or partial, or reject the story"),
                ));
            }
        };
        let findings = object("findings", request.findings)?;
        let mut findings = findings;
        if let Some(sha) = request.commit_sha {
            findings["commit_sha"] = json!(sha);
        }
        let facts = self.verify_facts(who, id).await?;
        let given = request.criteria.clone();
        self.transition_answered(who, id, Action::Verify, None, None, |story, _| {
            let mut ops = crate::evidence::verify_ops(who, story, given.as_deref(), &facts, self.now())?;
            let verdict = Verdict { result, summary: request.summary.clone(), findings: findings.clone() };
            ops.push(verification_op(who, story, verdict, request.review_type.clone(), self.now()));
            Ok(ops)
        })
        .await
    }

    pub async fn reject_story(
        &self,
        who: &Principal,
        id: Uuid,
        request: RejectRequest,
    ) -> AppResult<TransitionOutcome> {
        let reason = request.reason.unwrap_or_default();
        let findings = object("findings", request.findings)?;
        self.transition_answered(who, id, Action::Reject { reason: reason.clone() }, None, None, |story, next| {
            let verdict =
                Verdict { result: "fail", summary: next.rejection_reason.clone(), findings: findings.clone() };
            Ok(vec![verification_op(who, story, verdict, request.review_type.clone(), self.now())])
        })
        .await
    }

    pub async fn backfill_story(
        &self,
        who: &Principal,
        id: Uuid,
        request: BackfillRequest,
    ) -> AppResult<TransitionOutcome> {
        let reason = request.reason.unwrap_or_default();
        if let Some(url) = &request.evidence_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(AppError::field("evidence_url", "must be an http(s) URL"));
        }
        let pr_number = match &request.pr_number {
            None | Some(Value::Null) => None,
            Some(value) => Some(crate::work::epic_number("pr_number", value)?),
        };
        let at = self.now();
        // The note goes in with the transition, and the story answered carries it.
        self.transition_answered(who, id, Action::Backfill { reason: reason.clone() }, None, None, |story, _| {
            let mut content = story.clone();
            let mut metadata = story.metadata.clone();
            if !metadata.is_object() {
                metadata = json!({});
            }
            metadata["backfill"] = json!({
                "reason": reason.trim(),
                "evidence_url": request.evidence_url,
                "pr_number": pr_number,
                "backfilled_at": at,
            });
            content.metadata = metadata;
            content.updated_at = at;
            Ok(vec![WriteOp::UpdateStoryContent(content)])
        })
        .await
    }

    pub async fn clear_escalation(
        &self,
        who: &Principal,
        id: Uuid,
        request: ReasonRequest,
    ) -> AppResult<TransitionOutcome> {
        let note = request.note.or(request.reason).unwrap_or_default();
        if note.trim().is_empty() {
            return Err(AppError::field("note", "say why the escalation is cleared"));
        }
        self.transition_answered(who, id, Action::ClearEscalation, None, Some(note.trim()), |_, _| Ok(Vec::new())).await
    }

    /// Returns the project's stories whose lease expired to the queue (an orchestrator's
    /// explicit call; the sweeper only marks them stale). Answers the numbers reclaimed.
    pub async fn reclaim_expired(&self, who: &Principal, project_id: Uuid) -> AppResult<Vec<String>> {
        crate::require(who, crate::MANAGERS, "reclaim expired claims")?;
        self.project_of(who, project_id).await?;
        let query = ExpiredClaims {
            now: self.now(),
            project: Some((who.tenant_id, project_id)),
            unannounced_only: false,
            limit: 1000,
        };
        let mut reclaimed = Vec::new();
        for story in self.store.expired_claims(query).await? {
            match self.transition(who, story.id, Action::ReclaimExpired, None, None, |_, _| Ok(Vec::new())).await {
                Ok(_) => reclaimed.push(story.number.clone()),
                // Renewed, taken over or finished meanwhile: nothing to do.
                Err(err) if err.code == ErrorCode::InvalidTransition || err.code == ErrorCode::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(reclaimed)
    }

    /// One pass of the lease sweeper over every tenant: each claim whose lease ran out is
    /// announced once as stale (a `lease_expired` event). The story stays with its holder,
    /// whose writes still count, until another agent takes it over with `claim`.
    /// Answers how many claims it announced.
    ///
    /// # Errors
    /// When the store fails; a story someone else touched meanwhile is simply skipped.
    pub async fn sweep_expired_leases(&self) -> AppResult<usize> {
        let query = ExpiredClaims { now: self.now(), project: None, unannounced_only: true, limit: 1000 };
        let expired = self.store.expired_claims(query).await?;
        let mut count = 0;
        for story in &expired {
            let Some(tenant) = self.store.tenant(story.tenant_id).await? else {
                continue;
            };
            let system = Principal::system(tenant, "lease-sweeper");
            match self.transition(&system, story.id, Action::MarkStale, None, None, |_, _| Ok(Vec::new())).await {
                Ok(_) => count += 1,
                Err(err) if err.code == ErrorCode::InvalidTransition || err.code == ErrorCode::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(count)
    }

    /// Picks the first available story and claims it in one write: a pending one is
    /// contracted and claimed, a contracted one (by the caller, or a contract gone stale) is
    /// claimed, and a claim whose lease ran out is taken over.
    pub async fn claim_next(&self, who: &Principal, request: ClaimNextRequest) -> AppResult<TransitionOutcome> {
        crate::require(who, &[Role::Agent], "claim stories")?;
        self.project_of(who, request.project_id).await?;
        let at = self.now();
        // The head of the frontier, read again after every lost race: the first claim takes
        // the first story; a claimer that lost picks among the first few of the fresh head,
        // so racing claimers spread over the frontier instead of queueing on one story.
        const PAGE: i64 = 32;
        let mut offset = 0;
        let mut losses = 0usize;
        loop {
            let query = FrontierQuery {
                tenant_id: who.tenant_id,
                project_id: request.project_id,
                epic_id: request.epic_id,
                now: at,
                offset,
                limit: PAGE,
                with_total: false,
            };
            let page = self.store.ready_stories(query).await?.stories;
            let listed = page.len();
            let available: Vec<StoryRecord> = page
                .into_iter()
                .filter(|s| {
                    let reserved = s.state.agent_status == AgentStatus::Contracted
                        && !s.state.is_contractor(who.agent_id)
                        && !s.state.contract_stale(at, &who.settings);
                    !reserved
                })
                .collect();
            if available.is_empty() {
                // The whole page is someone else's fresh contracts: look further on.
                if (listed as i64) < PAGE {
                    break;
                }
                offset += PAGE;
                continue;
            }
            let pick = if losses == 0 { 0 } else { spread(available.len().min(losses.saturating_mul(2).min(16))) };
            match self.contract_and_claim(who, &available[pick]).await {
                Ok(story) => {
                    metrics::counter!("loopctl_transitions_total", "action" => "claim_next").increment(1);
                    return Ok(self.outcome(who, &story));
                }
                Err(ClaimNextError::Lost) => losses += 1,
                Err(ClaimNextError::Refused(err)) => return Err(err),
            }
        }
        Err(AppError::new(
            ErrorCode::NothingReady,
            "no story is ready to claim; see `loopctl blocked` for what waits on what",
        ))
    }

    async fn contract_and_claim(&self, who: &Principal, story: &StoryRecord) -> Result<StoryRecord, ClaimNextError> {
        let at = self.now();
        let ctx = Context {
            now: at,
            settings: &who.settings,
            story_title: &story.title,
            ac_count: story.ac_count(),
            dependencies_met: true,
            claim_epoch: None,
        };
        let refused = |e: loopctl_core::DomainError| ClaimNextError::Refused(e.into());
        let contracted = if story.state.agent_status == AgentStatus::Pending {
            let contract =
                Action::Contract { story_title: Some(story.title.clone()), ac_count: Some(story.ac_count()) };
            apply(&story.state, &contract, &who.actor(), &ctx).map_err(refused)?
        } else {
            story.state.clone()
        };
        let claimed = apply(&contracted, &Action::Claim, &who.actor(), &ctx).map_err(refused)?;
        let guard = claim_guard(who, story, &claimed);
        let updated = StoryRecord {
            state: claimed.clone(),
            lock_version: story.lock_version + 1,
            updated_at: at,
            ..story.clone()
        };
        let mut batch = vec![WriteOp::TransitionStory(StoryTransition {
            tenant_id: who.tenant_id,
            story_id: story.id,
            expected_version: story.lock_version,
            state: claimed,
            updated_at: at,
            guard,
            // Read from the frontier a moment ago; a dependency added since must stop it.
            only_if_unblocked: true,
        })];
        batch.extend(transition_events(who, story, &updated, &Action::Claim, None));
        match self.commit(batch).await {
            Ok(_) => {
                self.remembered.put(&updated);
                Ok(updated)
            }
            Err(err) if err.code == ErrorCode::VersionConflict => Err(ClaimNextError::Lost),
            Err(err) => Err(ClaimNextError::Refused(err)),
        }
    }
}

/// A uniformly drawn index below `n` (0 when randomness is unavailable: the head).
fn spread(n: usize) -> usize {
    let mut bytes = [0u8; 8];
    if n <= 1 || getrandom::fill(&mut bytes).is_err() {
        return 0;
    }
    usize::try_from(u64::from_le_bytes(bytes) % n as u64).unwrap_or(0)
}

/// A claim that puts one more story in flight is held to `max_concurrent_agents`; taking
/// over a claim whose lease ran out does not change how many are in flight.
fn claim_guard(who: &Principal, before: &StoryRecord, after: &StoryState) -> Option<InFlightGuard> {
    (after.agent_status.in_flight() && !before.state.agent_status.in_flight())
        .then_some(InFlightGuard { project_id: before.project_id, limit: who.settings.max_concurrent_agents })
}

enum ClaimNextError {
    Lost,
    Refused(AppError),
}

/// The verdict a verify or reject records (the store numbers it).
struct Verdict {
    result: &'static str,
    summary: Option<String>,
    findings: Value,
}

fn verification_op(
    who: &Principal,
    story: &StoryRecord,
    verdict: Verdict,
    review_type: Option<String>,
    at: DateTime<Utc>,
) -> WriteOp {
    WriteOp::InsertVerification(NewVerification {
        id: Uuid::now_v7(),
        tenant_id: who.tenant_id,
        story_id: story.id,
        verifier_agent_id: who.agent_id,
        result: verdict.result.into(),
        summary: verdict.summary,
        findings: verdict.findings,
        review_type,
        created_at: at,
    })
}

fn artifact_op(
    who: &Principal,
    story_id: Uuid,
    reported_by: &str,
    input: &ArtifactInput,
    summary: Option<&str>,
    at: DateTime<Utc>,
) -> AppResult<WriteOp> {
    let artifact_type = crate::text("artifact.artifact_type", &input.artifact_type, 100)?;
    let mut details = object("artifact.details", input.details.clone())?;
    if let Some(sha) = &input.commit_sha {
        details["commit_sha"] = json!(sha);
    }
    if let Some(summary) = summary {
        details["summary"] = json!(summary);
    }
    Ok(WriteOp::InsertArtifact(ArtifactRecord {
        id: Uuid::now_v7(),
        tenant_id: who.tenant_id,
        story_id,
        reported_by: reported_by.into(),
        reporter_agent_id: who.agent_id,
        artifact_type,
        path: crate::opt_text("artifact.path", input.path.as_deref(), 2000)?,
        exists: input.exists.unwrap_or(true),
        details,
        created_at: at,
    }))
}

/// The change-feed events of a transition: one status event, plus escalation when it starts.
fn transition_events(
    who: &Principal,
    before: &StoryRecord,
    after: &StoryRecord,
    action: &Action,
    note: Option<&str>,
) -> Vec<WriteOp> {
    let name = match action {
        Action::Contract { .. } | Action::Claim | Action::Start | Action::Report | Action::Unclaim => "status_changed",
        Action::Heartbeat => "heartbeat",
        Action::RequestReview => "review_requested",
        Action::ForceUnclaim => "force_unclaimed",
        Action::ReclaimExpired => "reclaimed_expired",
        Action::MarkStale => "lease_expired",
        Action::ReviewComplete => "review_completed",
        Action::Verify => "verified",
        Action::Reject { .. } => "rejected",
        Action::Backfill { .. } => "backfilled",
        Action::ClearEscalation => "escalation_cleared",
    };
    let mut status = story_status(after);
    status["transition"] = json!(action.name());
    if let Some(note) = note {
        status["note"] = json!(note);
    }
    if let Some(previous) = taken_over_from(before, after) {
        status["taken_over_from"] = json!(previous);
    }
    if matches!(action, Action::MarkStale) {
        status["lease_expires_at"] = json!(after.state.lease_expires_at);
        status["assigned_agent_id"] = json!(after.state.assigned_agent_id);
    }
    let mut events = vec![event(who, Some(after.project_id), ("story", after.id), name, story_status(before), status)];
    if after.state.escalated && !before.state.escalated {
        events.push(event(
            who,
            Some(after.project_id),
            ("story", after.id),
            "escalated",
            story_status(before),
            story_status(after),
        ));
    }
    events
}

/// The holder a claim took the story from, when it took over a lease that ran out.
fn taken_over_from(before: &StoryRecord, after: &StoryRecord) -> Option<Uuid> {
    let holder = before.state.assigned_agent_id?;
    let taken = matches!(after.state.agent_status, AgentStatus::Assigned | AgentStatus::Contracted);
    (before.state.agent_status.in_flight() && taken && after.state.assigned_agent_id != Some(holder)).then_some(holder)
}

fn next_actions(who: &Principal, story: &StoryRecord) -> Vec<NextAction> {
    let path = |verb: &str| format!("/api/v1/stories/{}/{verb}", story.id);
    let post = |action: &str, verb: &str, body: Value| NextAction {
        action: action.into(),
        method: "POST".into(),
        path: path(verb),
        required_body: body,
    };
    let st = &story.state;
    let manager = matches!(who.role, Role::Orchestrator | Role::User | Role::Superadmin);
    match st.agent_status {
        AgentStatus::Pending if !st.escalation_locked => {
            vec![post("contract", "contract", json!({"story_title": story.title, "ac_count": story.ac_count()}))]
        }
        AgentStatus::Contracted => vec![post("claim", "claim", json!({}))],
        AgentStatus::Assigned => vec![post("start", "start", json!({}))],
        AgentStatus::Implementing => {
            vec![post("report", "report", json!({"artifact": {"artifact_type": "commit_diff"}}))]
        }
        AgentStatus::ReportedDone if manager && st.verified_status != VerifiedStatus::Verified => {
            vec![post("verify", "verify", json!({"summary": "…"})), post("reject", "reject", json!({"reason": "…"}))]
        }
        _ => Vec::new(),
    }
}
