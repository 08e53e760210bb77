//! The story state machine: one pure function from (state, action, actor, context) to the
//! next state or the reason it is refused.
//!
//! Order of checks, the same for every action: the caller's role, then custody (who the
//! caller is relative to the story), then the claim fence (epoch and lease), then state.
//! Persisting the result as a compare-and-set is the store's job.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::{AgentStatus, CustodyMode, DomainError, Role, Settings, VerifiedStatus};

/// Everything about a story that the lifecycle reads or writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoryState {
    pub agent_status: AgentStatus,
    pub verified_status: VerifiedStatus,
    pub assigned_agent_id: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub reported_done_at: Option<DateTime<Utc>>,
    pub reported_by_agent_id: Option<Uuid>,
    pub verified_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    /// Fencing token: rises at every claim, unclaim and reclaim.
    pub claim_epoch: i64,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Rejections over the story's life; only rises.
    pub iteration_count: i32,
    /// Rejections since a user last cleared an escalation.
    pub rejections_since_clear: i32,
    pub escalated: bool,
    pub escalated_at: Option<DateTime<Utc>>,
    pub escalation_locked: bool,
    pub review_requested_at: Option<DateTime<Utc>>,
    pub last_review_at: Option<DateTime<Utc>>,
    /// Who verified (or backfilled) the story; never its implementer.
    pub verified_by_agent_id: Option<Uuid>,
    /// Who contracted the story and when, while it waits in `contracted` for a claim.
    pub contracted_by_agent_id: Option<Uuid>,
    pub contracted_at: Option<DateTime<Utc>>,
    /// When the server announced that this claim's lease ran out (once per claim, in the
    /// change feed). Cleared when the holder writes again or someone takes the story over.
    pub stale_since: Option<DateTime<Utc>>,
    /// The last holder whose claim ended without its own report (taken over, reclaimed,
    /// force-unclaimed, rejected): its late writes get `stale_claim`, not `forbidden`.
    pub previous_assignee_agent_id: Option<Uuid>,
}

impl StoryState {
    /// Claimed, and the lease ran out: the holder may still write, anyone may take it over.
    pub fn lease_expired(&self, now: DateTime<Utc>) -> bool {
        self.agent_status.in_flight() && self.lease_expires_at.is_some_and(|until| until <= now)
    }

    /// Contracted but not claimed for longer than a lease: it no longer holds anyone back.
    pub fn contract_stale(&self, now: DateTime<Utc>, settings: &Settings) -> bool {
        self.agent_status == AgentStatus::Contracted
            && self.contracted_at.is_none_or(|at| at + lease_length(settings) <= now)
    }

    /// The identity that contracted the story, while it is contracted.
    pub fn is_contractor(&self, agent_id: Option<Uuid>) -> bool {
        self.agent_status == AgentStatus::Contracted && agent_id.is_some() && self.contracted_by_agent_id == agent_id
    }
}

/// Who is asking: the key's role, the agent identity behind it, and — for a capability
/// token minted by dispatch — the one capacity it was dispatched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub role: Role,
    pub agent_id: Option<Uuid>,
    pub dispatched_as: Option<DispatchRole>,
}

impl Actor {
    /// A plain API key: no dispatch scope.
    pub fn key(role: Role, agent_id: Option<Uuid>) -> Actor {
        Actor { role, agent_id, dispatched_as: None }
    }
}

/// The capacity a dispatched sub-agent works in; its token can do that work and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DispatchRole {
    Implementer,
    Reviewer,
}

impl DispatchRole {
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchRole::Implementer => "implementer",
            DispatchRole::Reviewer => "reviewer",
        }
    }

    /// `implementer`, `reviewer`, or the reference's `agent` (= implementer).
    pub fn parse(text: &str) -> Option<DispatchRole> {
        match text {
            "implementer" | "agent" => Some(DispatchRole::Implementer),
            "reviewer" => Some(DispatchRole::Reviewer),
            _ => None,
        }
    }

    /// The lifecycle calls this capacity exists for.
    pub fn permits(self, action: &Action) -> bool {
        match self {
            DispatchRole::Implementer => matches!(
                action,
                Action::Contract { .. }
                    | Action::Claim
                    | Action::Start
                    | Action::Heartbeat
                    | Action::RequestReview
                    | Action::Report
                    | Action::Unclaim
            ),
            // In the strict flow the reviewer also files the report the implementer may not.
            DispatchRole::Reviewer => matches!(action, Action::ReviewComplete | Action::Report),
        }
    }
}

/// A lifecycle command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Contract {
        story_title: Option<String>,
        ac_count: Option<usize>,
    },
    Claim,
    Start,
    Heartbeat,
    RequestReview,
    Report,
    Unclaim,
    ForceUnclaim,
    ReviewComplete,
    Verify,
    Reject {
        reason: String,
    },
    Backfill {
        reason: String,
    },
    ClearEscalation,
    /// An orchestrator returns stories whose lease expired to the queue.
    ReclaimExpired,
    /// Run by the server's lease sweeper: announces once that a claim's lease ran out.
    /// The story stays with its holder until someone takes it over.
    MarkStale,
}

impl Action {
    /// The verb used in messages and audit rows.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Contract { .. } => "contract",
            Action::Claim => "claim",
            Action::Start => "start",
            Action::Heartbeat => "heartbeat",
            Action::RequestReview => "request_review",
            Action::Report => "report",
            Action::Unclaim => "unclaim",
            Action::ForceUnclaim => "force_unclaim",
            Action::ReviewComplete => "review_complete",
            Action::Verify => "verify",
            Action::Reject { .. } => "reject",
            Action::Backfill { .. } => "backfill",
            Action::ClearEscalation => "clear_escalation",
            Action::ReclaimExpired => "reclaim_expired",
            Action::MarkStale => "mark_stale",
        }
    }

    /// The roles that may make this call at all (WIRE.md, "Roles on the story lifecycle").
    pub fn allowed_roles(&self) -> &'static [Role] {
        use Role::*;
        match self {
            // The contractor of a contracted story may give it back, and an orchestrator may contract.
            Action::Contract { .. } | Action::Report | Action::Unclaim => &[Agent, Orchestrator],
            Action::Claim | Action::Start | Action::Heartbeat | Action::RequestReview => &[Agent],
            Action::ForceUnclaim
            | Action::ReviewComplete
            | Action::Verify
            | Action::Reject { .. }
            | Action::Backfill { .. } => &[Orchestrator, User, Superadmin],
            Action::ClearEscalation => &[User, Superadmin],
            Action::ReclaimExpired | Action::MarkStale => &[Orchestrator, User, Superadmin],
        }
    }

    /// `allowed_roles` under a custody mode: strict custody has no side door, so only a human
    /// marks work done outside the loop (backfill).
    pub fn allowed_roles_in(&self, mode: CustodyMode) -> &'static [Role] {
        match (self, mode) {
            (Action::Backfill { .. }, CustodyMode::Strict) => &[Role::User, Role::Superadmin],
            _ => self.allowed_roles(),
        }
    }

    fn role_hint(&self, mode: CustodyMode) -> &'static str {
        if matches!(self, Action::ReviewComplete) {
            return "a reviewer uses an orchestrator or user key, or the token the orchestrator dispatches for it with `loopctl dispatch N --role reviewer`";
        }
        if matches!((self, mode), (Action::Backfill { .. }, CustodyMode::Strict)) {
            return "in the strict custody flow only a user (human) key backfills";
        }
        match self.allowed_roles() {
            [Role::Agent] => "use an agent key",
            [Role::Agent, Role::Orchestrator] => "use an agent or orchestrator key",
            [Role::User, Role::Superadmin] => "use a user (human) key",
            _ => "use an orchestrator or user key",
        }
    }
}

/// Facts the caller read alongside the state.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub settings: &'a Settings,
    pub story_title: &'a str,
    pub ac_count: usize,
    /// Every story and epic this story depends on is verified.
    pub dependencies_met: bool,
    /// The `X-Claim-Epoch` the caller sent, if any.
    pub claim_epoch: Option<i64>,
}

/// Applies `action` by `actor` to `state`.
///
/// # Errors
/// The first rule the call breaks, in the order role, custody, claim fence, state.
pub fn apply(state: &StoryState, action: &Action, actor: &Actor, ctx: &Context<'_>) -> Result<StoryState, DomainError> {
    match actor.dispatched_as {
        Some(capacity) if !capacity.permits(action) => {
            return Err(DomainError::ScopeViolation { capacity: capacity.as_str(), action: action.name() });
        }
        Some(_) => {}
        None if !action.allowed_roles_in(ctx.settings.custody_mode).contains(&actor.role) => {
            let hint = action.role_hint(ctx.settings.custody_mode);
            return Err(DomainError::Forbidden { role: actor.role, action: action.name(), hint });
        }
        None => {}
    }
    check_custody(state, action, actor, ctx)?;
    // A claimant that names an epoch which is no longer current was fenced off (reclaimed,
    // force-unclaimed, rejected): say so before anything about the story's new state.
    let claimant_write =
        matches!(action, Action::Start | Action::Heartbeat | Action::RequestReview | Action::Report | Action::Unclaim);
    if claimant_write
        && let Some(epoch) = ctx.claim_epoch
        && epoch != state.claim_epoch
    {
        return Err(DomainError::StaleClaim { current: state.claim_epoch });
    }
    // The same for a former holder that sends no epoch (MCP, the reference's clients).
    let former_holder =
        actor.agent_id.is_some() && actor.agent_id == state.previous_assignee_agent_id && !is_assignee(state, actor);
    if claimant_write && former_holder && !state.is_contractor(actor.agent_id) {
        return Err(DomainError::StaleClaim { current: state.claim_epoch });
    }
    let mut next = state.clone();
    match action {
        Action::Contract { story_title, ac_count } => {
            refuse_if_locked(state)?;
            let takeover = state.lease_expired(ctx.now);
            let renewable = state.is_contractor(actor.agent_id) || state.contract_stale(ctx.now, ctx.settings);
            let open = state.agent_status == AgentStatus::Pending
                || (state.agent_status == AgentStatus::Contracted && renewable)
                || takeover;
            if !open {
                let hint = match state.agent_status {
                    AgentStatus::Contracted => {
                        "another identity contracted it within the lease; claim it, or wait until the contract is stale"
                    }
                    AgentStatus::Assigned | AgentStatus::Implementing => {
                        "it is claimed and its lease is alive; pick another story from `next`"
                    }
                    _ => "only pending stories (or claims whose lease ran out) can be contracted",
                };
                return Err(invalid(state, action, hint));
            }
            if !ctx.dependencies_met {
                return Err(DomainError::DependenciesNotMet);
            }
            if actor.role == Role::Agent && (story_title.is_none() || ac_count.is_none()) {
                return Err(DomainError::Validation(
                    "contract needs story_title and ac_count; read the story and send both".into(),
                ));
            }
            if let Some(title) = story_title
                && title.trim() != ctx.story_title.trim()
            {
                return Err(DomainError::ContractTitleMismatch { expected: ctx.story_title.to_string() });
            }
            if let Some(provided) = *ac_count
                && provided != ctx.ac_count
            {
                return Err(DomainError::ContractMismatch { expected: ctx.ac_count, provided });
            }
            if takeover {
                // Contracting an abandoned claim fences its old holder off, as a claim would.
                reset_to_pending(&mut next);
            }
            next.agent_status = AgentStatus::Contracted;
            next.contracted_by_agent_id = actor.agent_id;
            next.contracted_at = Some(ctx.now);
        }
        Action::Claim => {
            refuse_if_locked(state)?;
            if state.agent_status == AgentStatus::Pending {
                return Err(DomainError::MustContractFirst);
            }
            // A claim whose lease ran out is available: claiming it takes it over.
            if !state.lease_expired(ctx.now) {
                expect_status(
                    state,
                    action,
                    &[AgentStatus::Contracted],
                    "the story is claimed and its lease is alive; see `loopctl status`",
                )?;
            }
            if !ctx.dependencies_met {
                return Err(DomainError::DependenciesNotMet);
            }
            let agent_id = actor.agent_id.ok_or_else(|| {
                DomainError::Validation(
                    "this key has no agent identity; register one with `loopctl agent register` first".into(),
                )
            })?;
            if state.assigned_agent_id.is_some_and(|holder| holder != agent_id) {
                next.previous_assignee_agent_id = state.assigned_agent_id;
            }
            next.agent_status = AgentStatus::Assigned;
            next.assigned_agent_id = Some(agent_id);
            next.assigned_at = Some(ctx.now);
            next.claim_epoch = state.claim_epoch + 1;
            next.lease_expires_at = Some(lease_until(ctx));
            next.review_requested_at = None;
            next.contracted_by_agent_id = None;
            next.contracted_at = None;
            next.stale_since = None;
        }
        Action::Start => {
            match state.agent_status {
                AgentStatus::Pending => return Err(DomainError::MustContractFirst),
                AgentStatus::Contracted => return Err(DomainError::MustClaimFirst),
                _ => {}
            }
            check_claimant(state, action, actor, ctx)?;
            expect_status(state, action, &[AgentStatus::Assigned], "work has already started")?;
            next.agent_status = AgentStatus::Implementing;
            renew_lease(&mut next, ctx);
        }
        Action::Heartbeat => {
            check_claimant(state, action, actor, ctx)?;
            expect_status(
                state,
                action,
                &[AgentStatus::Assigned, AgentStatus::Implementing],
                "only a claimed story has a lease",
            )?;
            renew_lease(&mut next, ctx);
        }
        Action::RequestReview => {
            check_claimant(state, action, actor, ctx)?;
            expect_status(state, action, &[AgentStatus::Implementing], "start the story before requesting review")?;
            next.review_requested_at = Some(ctx.now);
            renew_lease(&mut next, ctx);
        }
        Action::Report => {
            if matches!(state.agent_status, AgentStatus::Pending | AgentStatus::Contracted) {
                return Err(DomainError::MustClaimFirst);
            }
            // A plain agent key reports only the story it holds, in either flow (in the strict
            // flow the orchestrator or its dispatched reviewer files the report).
            if is_assignee(state, actor) {
                check_claimant(state, action, actor, ctx)?;
            } else if actor.role == Role::Agent
                && (ctx.settings.custody_mode == CustodyMode::Seed
                    || actor.dispatched_as != Some(DispatchRole::Reviewer))
            {
                return Err(DomainError::NotAssignee { action: action.name() });
            }
            expect_status(state, action, &[AgentStatus::Implementing], "run `loopctl start` before reporting")?;
            next.agent_status = AgentStatus::ReportedDone;
            next.reported_done_at = Some(ctx.now);
            next.reported_by_agent_id = actor.agent_id;
            next.lease_expires_at = None;
            next.stale_since = None;
        }
        Action::Unclaim => {
            if state.agent_status == AgentStatus::Contracted {
                // The contractor gives back a story it contracted but never claimed.
                if !state.is_contractor(actor.agent_id) {
                    return Err(DomainError::NotContractor);
                }
                // Nobody held a claim, so there is no epoch to move.
                next.agent_status = AgentStatus::Pending;
                next.contracted_by_agent_id = None;
                next.contracted_at = None;
                return Ok(next);
            }
            // Beyond its own contracts an orchestrator unclaims nothing (permission before state).
            if actor.role != Role::Agent {
                return Err(DomainError::NotAssignee { action: action.name() });
            }
            expect_status(
                state,
                action,
                &[AgentStatus::Assigned, AgentStatus::Implementing, AgentStatus::ReportedDone],
                "the story is not claimed",
            )?;
            check_claimant(state, action, actor, ctx)?;
            if state.verified_status == VerifiedStatus::Verified {
                return Err(invalid(state, action, "a verified story cannot be unclaimed"));
            }
            reset_to_pending(&mut next);
        }
        Action::ForceUnclaim => {
            if state.verified_status == VerifiedStatus::Verified {
                return Err(invalid(state, action, "a verified story is done and cannot be reclaimed"));
            }
            if state.agent_status != AgentStatus::Pending {
                reset_to_pending(&mut next);
            }
        }
        Action::ReclaimExpired => {
            if !state.lease_expired(ctx.now) {
                return Err(invalid(state, action, "only stories whose lease has expired can be reclaimed"));
            }
            reset_to_pending(&mut next);
        }
        Action::MarkStale => {
            if !state.lease_expired(ctx.now) || state.stale_since.is_some() {
                return Err(invalid(state, action, "only a claim whose lease just ran out is marked stale"));
            }
            next.stale_since = Some(ctx.now);
        }
        Action::ReviewComplete => {
            expect_status(
                state,
                action,
                &[AgentStatus::ReportedDone],
                "a story is reviewed after it is reported done",
            )?;
            if state.verified_status == VerifiedStatus::Verified {
                return Err(invalid(state, action, "the story is already verified"));
            }
            if state.last_review_at.is_some() {
                return Err(invalid(state, action, "a review is already recorded for this round"));
            }
            next.last_review_at = Some(ctx.now);
        }
        Action::Verify => {
            expect_status(state, action, &[AgentStatus::ReportedDone], "only reported_done stories can be verified")?;
            if state.verified_status == VerifiedStatus::Verified {
                return Err(invalid(state, action, "the story is already verified"));
            }
            if ctx.settings.custody_mode == CustodyMode::Strict {
                let reviewed_after_report = match (state.last_review_at, state.reported_done_at) {
                    (Some(review), Some(report)) => review >= report,
                    _ => false,
                };
                if !reviewed_after_report {
                    return Err(DomainError::ReviewNotConducted);
                }
            }
            next.verified_status = VerifiedStatus::Verified;
            next.verified_at = Some(ctx.now);
            next.verified_by_agent_id = actor.agent_id;
            next.rejected_at = None;
            next.rejection_reason = None;
        }
        Action::Reject { reason } => {
            let reason = required_reason(reason)?;
            let rejectable =
                state.agent_status == AgentStatus::ReportedDone || state.verified_status == VerifiedStatus::Verified;
            if !rejectable {
                return Err(invalid(state, action, "only reported_done or verified stories can be rejected"));
            }
            next.verified_status = VerifiedStatus::Rejected;
            next.verified_at = None;
            next.verified_by_agent_id = None;
            next.rejected_at = Some(ctx.now);
            next.rejection_reason = Some(reason);
            next.iteration_count = state.iteration_count + 1;
            next.rejections_since_clear = state.rejections_since_clear + 1;
            let rejections = u32::try_from(next.rejections_since_clear).unwrap_or(u32::MAX);
            if rejections >= ctx.settings.escalate_after_rejections && !state.escalated {
                next.escalated = true;
                next.escalated_at = Some(ctx.now);
            }
            if rejections >= ctx.settings.max_review_cycles {
                next.escalated = true;
                next.escalated_at = next.escalated_at.or(Some(ctx.now));
                next.escalation_locked = true;
            }
            reset_to_pending(&mut next);
        }
        Action::Backfill { reason } => {
            required_reason(reason)?;
            // Backfill is for work done outside loopctl: a story ever claimed here was worked on
            // here, and must be verified or rejected by someone other than its implementer.
            let untouched = state.agent_status == AgentStatus::Pending
                && state.verified_status == VerifiedStatus::Unverified
                && state.assigned_agent_id.is_none()
                && state.claim_epoch == 0;
            if !untouched {
                return Err(invalid(
                    state,
                    action,
                    "only stories never claimed in loopctl can be backfilled; verify or reject this one instead",
                ));
            }
            next.agent_status = AgentStatus::ReportedDone;
            next.verified_status = VerifiedStatus::Verified;
            next.reported_done_at = Some(ctx.now);
            next.reported_by_agent_id = actor.agent_id;
            next.verified_at = Some(ctx.now);
            next.verified_by_agent_id = actor.agent_id;
        }
        Action::ClearEscalation => {
            if !state.escalated && !state.escalation_locked {
                return Err(invalid(state, action, "the story is not escalated"));
            }
            next.escalated = false;
            next.escalated_at = None;
            next.escalation_locked = false;
            next.rejections_since_clear = 0;
        }
    }
    Ok(next)
}

/// Custody: the implementer never reviews, verifies or rejects its own story, and in the
/// strict flow never reports it either.
fn check_custody(state: &StoryState, action: &Action, actor: &Actor, ctx: &Context<'_>) -> Result<(), DomainError> {
    let implementer = is_assignee(state, actor);
    match action {
        Action::ReviewComplete if implementer => Err(DomainError::SelfReviewBlocked),
        Action::Verify | Action::Reject { .. } if implementer => Err(DomainError::SelfVerifyBlocked),
        Action::Report if implementer && ctx.settings.custody_mode == CustodyMode::Strict => {
            Err(DomainError::SelfReportBlocked)
        }
        _ => Ok(()),
    }
}

fn is_assignee(state: &StoryState, actor: &Actor) -> bool {
    actor.agent_id.is_some() && actor.agent_id == state.assigned_agent_id
}

/// A write by the claimant: the epoch it holds must be current and it must still hold the story.
fn check_claimant(state: &StoryState, action: &Action, actor: &Actor, ctx: &Context<'_>) -> Result<(), DomainError> {
    if let Some(epoch) = ctx.claim_epoch
        && epoch != state.claim_epoch
    {
        return Err(DomainError::StaleClaim { current: state.claim_epoch });
    }
    // An expired lease alone does not fence the holder off: until someone takes the story
    // over (the epoch moves, the assignee changes) its honest work still counts.
    if !is_assignee(state, actor) {
        return Err(DomainError::NotAssignee { action: action.name() });
    }
    Ok(())
}

fn refuse_if_locked(state: &StoryState) -> Result<(), DomainError> {
    if state.escalation_locked {
        return Err(DomainError::EscalationLocked {
            rejections: u32::try_from(state.rejections_since_clear).unwrap_or(0),
        });
    }
    Ok(())
}

fn expect_status(
    state: &StoryState,
    action: &Action,
    allowed: &[AgentStatus],
    hint: &'static str,
) -> Result<(), DomainError> {
    if allowed.contains(&state.agent_status) { Ok(()) } else { Err(invalid(state, action, hint)) }
}

fn invalid(state: &StoryState, action: &Action, hint: &'static str) -> DomainError {
    DomainError::InvalidTransition {
        action: action.name(),
        agent_status: state.agent_status,
        verified_status: state.verified_status,
        hint,
    }
}

fn required_reason(reason: &str) -> Result<String, DomainError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(DomainError::Validation("reason is required and cannot be blank".into()));
    }
    if reason.chars().count() > 2000 {
        return Err(DomainError::Validation("reason is longer than 2000 characters; shorten it".into()));
    }
    Ok(reason.to_string())
}

fn lease_length(settings: &Settings) -> Duration {
    Duration::seconds(i64::from(settings.claim_lease_seconds))
}

fn lease_until(ctx: &Context<'_>) -> DateTime<Utc> {
    ctx.now + lease_length(ctx.settings)
}

/// Every write by the holder renews its lease and clears a stale mark.
fn renew_lease(next: &mut StoryState, ctx: &Context<'_>) {
    next.lease_expires_at = Some(lease_until(ctx));
    next.stale_since = None;
}

/// Back to the queue: no assignee, no lease, and a new epoch so the old holder is fenced off.
fn reset_to_pending(next: &mut StoryState) {
    if next.assigned_agent_id.is_some() {
        next.previous_assignee_agent_id = next.assigned_agent_id;
    }
    next.agent_status = AgentStatus::Pending;
    next.assigned_agent_id = None;
    next.assigned_at = None;
    next.reported_done_at = None;
    next.lease_expires_at = None;
    next.review_requested_at = None;
    // A review belongs to one round: a new report needs a new review.
    next.last_review_at = None;
    next.contracted_by_agent_id = None;
    next.contracted_at = None;
    next.stale_since = None;
    next.claim_epoch += 1;
}
