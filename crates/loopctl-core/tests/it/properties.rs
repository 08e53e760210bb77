//! Property tests: random sequences of calls by random callers, played from a fresh story on
//! a clock that only moves forward, never reach a state or a transition the rules forbid:
//! never two assignees (a holder is replaced only by a takeover of a claim whose lease ran
//! out), verified only after someone else's review, iteration counts only rise, and an expired
//! lease never refuses the holder's write unless someone else took the story over.
//! A second family applies one random call to an arbitrary (even unreachable) state.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use loopctl_core::{
    Action, Actor, AgentStatus, CustodyMode, DomainError, Role, Settings, StoryState, VerifiedStatus, apply,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};
use uuid::Uuid;

use crate::support::*;

const AGENT_A: Uuid = IMPLEMENTER;
const AGENT_B: Uuid = OTHER_AGENT;

/// Who makes a call. `Assignee*` resolve to the story's current assignee at that moment,
/// `Natural` to the caller the workflow means for the call (so sequences get deep).
#[derive(Debug, Clone, Copy)]
enum Who {
    Natural,
    AgentA,
    AgentB,
    Assignee,
    AssigneeAsOrchestrator,
    AgentWithoutId,
    Orchestrator,
    OrchestratorWithoutId,
    User,
    UserLinkedToA,
    Superadmin,
}

/// The `X-Claim-Epoch` sent with a call, relative to the story's epoch at that moment.
#[derive(Debug, Clone, Copy)]
enum EpochSent {
    Absent,
    Current,
    Behind,
    Ahead,
}

#[derive(Debug, Clone, Copy)]
enum Cmd {
    ContractRight,
    ContractWrongCount,
    ContractWrongTitle,
    ContractBare,
    Claim,
    Start,
    Heartbeat,
    RequestReview,
    Report,
    Unclaim,
    ForceUnclaim,
    ReviewComplete,
    Verify,
    Reject,
    RejectBlank,
    Backfill,
    ClearEscalation,
    ReclaimExpired,
    MarkStale,
}

#[derive(Debug, Clone)]
struct Step {
    cmd: Cmd,
    who: Who,
    epoch: EpochSent,
    wait_seconds: i64,
    dependencies_met: bool,
}

#[derive(Debug, Clone)]
struct Scenario {
    settings: Settings,
    steps: Vec<Step>,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    // Weighted toward the forward path so that sequences get deep; resets stay rare.
    prop_oneof![
        8 => Just(Cmd::ContractRight),
        1 => Just(Cmd::ContractWrongCount),
        1 => Just(Cmd::ContractWrongTitle),
        1 => Just(Cmd::ContractBare),
        8 => Just(Cmd::Claim),
        8 => Just(Cmd::Start),
        3 => Just(Cmd::Heartbeat),
        3 => Just(Cmd::RequestReview),
        8 => Just(Cmd::Report),
        2 => Just(Cmd::Unclaim),
        1 => Just(Cmd::ForceUnclaim),
        6 => Just(Cmd::ReviewComplete),
        6 => Just(Cmd::Verify),
        5 => Just(Cmd::Reject),
        1 => Just(Cmd::RejectBlank),
        1 => Just(Cmd::Backfill),
        3 => Just(Cmd::ClearEscalation),
        2 => Just(Cmd::ReclaimExpired),
        2 => Just(Cmd::MarkStale),
    ]
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        12 => Just(Who::Natural),
        2 => Just(Who::AgentA),
        2 => Just(Who::AgentB),
        5 => Just(Who::Assignee),
        1 => Just(Who::AssigneeAsOrchestrator),
        1 => Just(Who::AgentWithoutId),
        3 => Just(Who::Orchestrator),
        1 => Just(Who::OrchestratorWithoutId),
        2 => Just(Who::User),
        1 => Just(Who::UserLinkedToA),
        1 => Just(Who::Superadmin),
    ]
}

fn epoch_sent() -> impl Strategy<Value = EpochSent> {
    prop_oneof![
        4 => Just(EpochSent::Absent),
        4 => Just(EpochSent::Current),
        1 => Just(EpochSent::Behind),
        1 => Just(EpochSent::Ahead),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let wait = prop_oneof![12 => 1i64..90, 1 => 1i64..5_000];
    (cmd(), who(), epoch_sent(), wait, prop::bool::weighted(0.9)).prop_map(
        |(cmd, who, epoch, wait_seconds, dependencies_met)| Step { cmd, who, epoch, wait_seconds, dependencies_met },
    )
}

fn settings() -> impl Strategy<Value = Settings> {
    (prop_oneof![Just(CustodyMode::Seed), Just(CustodyMode::Strict)], 1u32..5, 1u32..7, 120u32..3_600).prop_map(
        |(custody_mode, escalate_after_rejections, max_review_cycles, claim_lease_seconds)| Settings {
            custody_mode,
            escalate_after_rejections,
            max_review_cycles,
            claim_lease_seconds,
            ..Settings::default()
        },
    )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (settings(), prop::collection::vec(step(), 1..120)).prop_map(|(settings, steps)| Scenario { settings, steps })
}

/// Sequences about leases: short leases, long silences, the holder's writes, and the calls that
/// take a story over or mark it stale, by the two agents that compete for it.
fn lease_scenario() -> impl Strategy<Value = Scenario> {
    let cmd = prop_oneof![
        4 => Just(Cmd::ContractRight),
        4 => Just(Cmd::Claim),
        4 => Just(Cmd::Start),
        4 => Just(Cmd::Heartbeat),
        2 => Just(Cmd::RequestReview),
        3 => Just(Cmd::Report),
        2 => Just(Cmd::Unclaim),
        3 => Just(Cmd::MarkStale),
        2 => Just(Cmd::ReclaimExpired),
        1 => Just(Cmd::ForceUnclaim),
        2 => Just(Cmd::Verify),
        2 => Just(Cmd::Reject),
    ];
    let who =
        prop_oneof![6 => Just(Who::Natural), 3 => Just(Who::AgentA), 3 => Just(Who::AgentB), 2 => Just(Who::Assignee)];
    let epoch = prop_oneof![3 => Just(EpochSent::Absent), 3 => Just(EpochSent::Current), 1 => Just(EpochSent::Behind)];
    let wait = prop_oneof![3 => 1i64..120, 2 => 120i64..1_200];
    let step = (cmd, who, epoch, wait).prop_map(|(cmd, who, epoch, wait_seconds)| Step {
        cmd,
        who,
        epoch,
        wait_seconds,
        dependencies_met: true,
    });
    let settings = (prop_oneof![Just(CustodyMode::Seed), Just(CustodyMode::Strict)], 120u32..600).prop_map(
        |(custody_mode, claim_lease_seconds)| Settings { custody_mode, claim_lease_seconds, ..Settings::default() },
    );
    (settings, prop::collection::vec(step, 1..80)).prop_map(|(settings, steps)| Scenario { settings, steps })
}

fn actor(who: Who, cmd: Cmd, state: &StoryState, settings: &Settings) -> Actor {
    let assignee = state.assigned_agent_id.unwrap_or(AGENT_A);
    match who {
        Who::Natural => natural_actor(cmd, state, settings),
        Who::AgentA => agent(AGENT_A),
        Who::AgentB => agent(AGENT_B),
        Who::Assignee => agent(assignee),
        Who::AssigneeAsOrchestrator => key(Role::Orchestrator, Some(assignee)),
        Who::AgentWithoutId => key(Role::Agent, None),
        Who::Orchestrator => orchestrator(),
        Who::OrchestratorWithoutId => key(Role::Orchestrator, None),
        Who::User => user(),
        Who::UserLinkedToA => key(Role::User, Some(AGENT_A)),
        Who::Superadmin => superadmin(),
    }
}

/// The caller the workflow means for `cmd`: implementers alternate between rounds (so the
/// one contracting also gives a contract back), a strict report comes from a reviewer agent
/// that never holds the story (a former holder's report is a stale claimant's write),
/// verdicts and the lease sweeps from the orchestrator, a clear from a user.
fn natural_actor(cmd: Cmd, state: &StoryState, settings: &Settings) -> Actor {
    let implementer = if state.iteration_count % 2 == 0 { AGENT_A } else { AGENT_B };
    let assignee = state.assigned_agent_id.unwrap_or(implementer);
    match cmd {
        Cmd::ContractRight | Cmd::ContractWrongCount | Cmd::ContractWrongTitle | Cmd::ContractBare | Cmd::Claim => {
            agent(implementer)
        }
        Cmd::Start | Cmd::Heartbeat | Cmd::RequestReview | Cmd::Unclaim => agent(assignee),
        Cmd::Report => match settings.custody_mode {
            CustodyMode::Seed => agent(assignee),
            CustodyMode::Strict => reviewer_token(REVIEWER),
        },
        Cmd::ForceUnclaim
        | Cmd::ReviewComplete
        | Cmd::Verify
        | Cmd::Reject
        | Cmd::RejectBlank
        | Cmd::Backfill
        | Cmd::ReclaimExpired
        | Cmd::MarkStale => orchestrator(),
        Cmd::ClearEscalation => user(),
    }
}

fn action(cmd: Cmd) -> Action {
    match cmd {
        Cmd::ContractRight => contract(),
        Cmd::ContractWrongCount => {
            Action::Contract { story_title: Some(TITLE.to_string()), ac_count: Some(AC_COUNT + 1) }
        }
        Cmd::ContractWrongTitle => {
            Action::Contract { story_title: Some("Another story".to_string()), ac_count: Some(AC_COUNT) }
        }
        Cmd::ContractBare => Action::Contract { story_title: None, ac_count: None },
        Cmd::Claim => Action::Claim,
        Cmd::Start => Action::Start,
        Cmd::Heartbeat => Action::Heartbeat,
        Cmd::RequestReview => Action::RequestReview,
        Cmd::Report => Action::Report,
        Cmd::Unclaim => Action::Unclaim,
        Cmd::ForceUnclaim => Action::ForceUnclaim,
        Cmd::ReviewComplete => Action::ReviewComplete,
        Cmd::Verify => Action::Verify,
        Cmd::Reject => reject("acceptance criterion unmet"),
        Cmd::RejectBlank => reject("  "),
        Cmd::Backfill => backfill("done before loopctl"),
        Cmd::ClearEscalation => Action::ClearEscalation,
        Cmd::ReclaimExpired => Action::ReclaimExpired,
        Cmd::MarkStale => Action::MarkStale,
    }
}

fn epoch(sent: EpochSent, state: &StoryState) -> Option<i64> {
    match sent {
        EpochSent::Absent => None,
        EpochSent::Current => Some(state.claim_epoch),
        EpochSent::Behind => Some(state.claim_epoch - 1),
        EpochSent::Ahead => Some(state.claim_epoch + 1),
    }
}

/// What the sequence reached, for the coverage check.
#[derive(Debug, Default)]
struct Tally {
    successes: BTreeMap<&'static str, usize>,
    refusals: BTreeMap<&'static str, usize>,
    /// Refusals by `DomainError` variant, and by (call, variant).
    variants: BTreeMap<&'static str, usize>,
    refused_calls: BTreeMap<(&'static str, &'static str), usize>,
    /// Notable moments of the rules on contracts and leases (see `EVENTS`).
    events: BTreeMap<&'static str, usize>,
    strict_verifies: usize,
    locks: usize,
}

impl Tally {
    fn event(&mut self, name: &'static str) {
        *self.events.entry(name).or_default() += 1;
    }

    fn add(&mut self, other: Tally) {
        fn merge<K: Ord>(into: &mut BTreeMap<K, usize>, from: BTreeMap<K, usize>) {
            for (key, n) in from {
                *into.entry(key).or_default() += n;
            }
        }
        merge(&mut self.successes, other.successes);
        merge(&mut self.refusals, other.refusals);
        merge(&mut self.variants, other.variants);
        merge(&mut self.refused_calls, other.refused_calls);
        merge(&mut self.events, other.events);
        self.strict_verifies += other.strict_verifies;
        self.locks += other.locks;
    }
}

/// The moments the coverage check wants to see, each several times.
const EVENTS: [&str; 8] = [
    "claim takes over an expired claim",
    "contract takes over an expired claim",
    "contractor renews its contract",
    "contract over a stale contract",
    "contractor gives the story back",
    "holder writes after its lease ran out",
    "former holder is stale without an epoch",
    "old holder is stale with its epoch",
];

/// The name of a refusal's variant: several share a code (`forbidden`, `contract_mismatch`).
fn variant(error: &DomainError) -> &'static str {
    match error {
        DomainError::Forbidden { .. } => "Forbidden",
        DomainError::ScopeViolation { .. } => "ScopeViolation",
        DomainError::NotAssignee { .. } => "NotAssignee",
        DomainError::NotContractor => "NotContractor",
        DomainError::InvalidTransition { .. } => "InvalidTransition",
        DomainError::MustContractFirst => "MustContractFirst",
        DomainError::MustClaimFirst => "MustClaimFirst",
        DomainError::ContractMismatch { .. } => "ContractMismatch",
        DomainError::ContractTitleMismatch { .. } => "ContractTitleMismatch",
        DomainError::SelfReviewBlocked => "SelfReviewBlocked",
        DomainError::SelfVerifyBlocked => "SelfVerifyBlocked",
        DomainError::SelfReportBlocked => "SelfReportBlocked",
        DomainError::StaleClaim { .. } => "StaleClaim",
        DomainError::EscalationLocked { .. } => "EscalationLocked",
        DomainError::ReviewNotConducted => "ReviewNotConducted",
        DomainError::DependenciesNotMet => "DependenciesNotMet",
        DomainError::Validation(_) => "Validation",
    }
}

/// Every refusal a random sequence can meet. Not `ScopeViolation`: these callers carry no
/// dispatch token (custody.rs checks dispatched tokens).
const REACHABLE_VARIANTS: [&str; 16] = [
    "Forbidden",
    "NotAssignee",
    "NotContractor",
    "InvalidTransition",
    "MustContractFirst",
    "MustClaimFirst",
    "ContractMismatch",
    "ContractTitleMismatch",
    "SelfReviewBlocked",
    "SelfVerifyBlocked",
    "SelfReportBlocked",
    "StaleClaim",
    "EscalationLocked",
    "ReviewNotConducted",
    "DependenciesNotMet",
    "Validation",
];

/// Refusals of the new rules, by the call that meets them.
const REFUSED_CALLS: [(&str, &str); 7] = [
    ("contract", "DependenciesNotMet"),
    ("contract", "InvalidTransition"),
    ("claim", "InvalidTransition"),
    ("unclaim", "NotContractor"),
    ("mark_stale", "InvalidTransition"),
    ("heartbeat", "StaleClaim"),
    ("report", "StaleClaim"),
];

/// Facts about one story that hold in every state a sequence of calls can reach.
fn state_invariants(state: &StoryState, settings: &Settings) -> Result<(), TestCaseError> {
    use AgentStatus::*;
    let status = state.agent_status;
    let holder = state.assigned_agent_id.is_some();
    let contract = (state.contracted_by_agent_id, state.contracted_at);
    match status {
        Pending => {
            prop_assert!(!holder, "nobody holds a pending story: {state:?}");
            prop_assert!(state.lease_expires_at.is_none(), "no lease on a pending story");
            prop_assert_eq!(contract, (None, None), "no contract on a pending story");
        }
        Contracted => {
            prop_assert!(!holder, "nobody holds a contracted story: {state:?}");
            prop_assert!(state.lease_expires_at.is_none(), "no lease on a contracted story");
            prop_assert!(state.contracted_at.is_some(), "a contract has its time: {state:?}");
        }
        Assigned | Implementing => {
            prop_assert!(holder, "a {status} story has its claimant: {state:?}");
            prop_assert!(state.lease_expires_at.is_some(), "a {status} story has a lease");
            prop_assert_eq!(contract, (None, None), "a claim uses the contract up");
        }
        ReportedDone => {
            prop_assert!(state.lease_expires_at.is_none(), "no lease after a report");
            prop_assert_eq!(contract, (None, None));
        }
    }
    // Only agents with an identity claim: A and B in these sequences.
    for id in [state.assigned_agent_id, state.previous_assignee_agent_id].into_iter().flatten() {
        prop_assert!(id == AGENT_A || id == AGENT_B, "{id} never claimed: {state:?}");
    }
    // A stale mark belongs to a claim whose lease had run out when it was made.
    if let Some(marked) = state.stale_since {
        prop_assert!(status.in_flight(), "a stale mark on a {status} story: {state:?}");
        prop_assert!(state.lease_expires_at.is_some_and(|until| until <= marked), "marked before expiry: {state:?}");
    }
    prop_assert_eq!(state.assigned_at.is_some(), holder, "assigned_at goes with the assignee");
    prop_assert_eq!(state.reported_done_at.is_some(), status == ReportedDone);
    if state.review_requested_at.is_some() {
        prop_assert!(matches!(status, Implementing | ReportedDone), "stale review request: {state:?}");
    }

    let verified = state.verified_status == VerifiedStatus::Verified;
    let rejected = state.verified_status == VerifiedStatus::Rejected;
    prop_assert!(!verified || status == ReportedDone, "a verified story is reported done");
    prop_assert_eq!(state.verified_at.is_some(), verified);
    prop_assert_eq!(state.rejected_at.is_some(), rejected);
    prop_assert_eq!(state.rejection_reason.is_some(), rejected);
    if state.verified_status == VerifiedStatus::Unverified {
        prop_assert_eq!(state.iteration_count, 0, "never rejected yet");
    }
    if rejected {
        prop_assert!(state.iteration_count >= 1);
    }

    prop_assert!(state.claim_epoch >= 0);
    prop_assert!(0 <= state.rejections_since_clear);
    prop_assert!(state.rejections_since_clear <= state.iteration_count);
    prop_assert_eq!(state.escalated, state.escalated_at.is_some());
    prop_assert!(!state.escalation_locked || state.escalated, "a lock is an escalation");
    prop_assert!(!state.escalation_locked || status == Pending, "a locked story stays in the queue");
    let since_clear = u32::try_from(state.rejections_since_clear).unwrap_or(0);
    let flag_at = settings.escalate_after_rejections.min(settings.max_review_cycles);
    prop_assert_eq!(state.escalated, since_clear >= flag_at, "escalated with {} since clear", since_clear);
    prop_assert_eq!(state.escalation_locked, since_clear >= settings.max_review_cycles);
    Ok(())
}

fn is_implementer(state: &StoryState, actor: &Actor) -> bool {
    actor.agent_id.is_some() && actor.agent_id == state.assigned_agent_id
}

/// The calls fenced by the claim epoch, whoever makes them.
fn is_claimant_write(action: &Action) -> bool {
    matches!(action, Action::Start | Action::Heartbeat | Action::RequestReview | Action::Report | Action::Unclaim)
}

// The model's own reading of leases and contracts, independent of `StoryState`'s helpers.

/// Claimed, and the lease ends at or before `now`.
fn lease_ran_out(state: &StoryState, now: DateTime<Utc>) -> bool {
    matches!(state.agent_status, AgentStatus::Assigned | AgentStatus::Implementing)
        && state.lease_expires_at.is_some_and(|until| until <= now)
}

/// Contracted, and nobody claimed it for a whole lease (or the contract has no time).
fn contract_stale(state: &StoryState, now: DateTime<Utc>, settings: &Settings) -> bool {
    let lease = Duration::seconds(i64::from(settings.claim_lease_seconds));
    state.agent_status == AgentStatus::Contracted && state.contracted_at.is_none_or(|at| at + lease <= now)
}

/// Contracted by this very identity (a key without one is nobody's contractor).
fn is_contractor(state: &StoryState, agent_id: Option<Uuid>) -> bool {
    state.agent_status == AgentStatus::Contracted && agent_id.is_some() && state.contracted_by_agent_id == agent_id
}

/// The caller held the story last, no longer does, and did not contract it again since.
fn is_former_holder(state: &StoryState, actor: &Actor) -> bool {
    actor.agent_id.is_some()
        && actor.agent_id == state.previous_assignee_agent_id
        && !is_implementer(state, actor)
        && !is_contractor(state, actor.agent_id)
}

/// Contract is open to this caller now: a pending story, its own or a stale contract, or a
/// claim whose lease ran out.
fn contract_open(state: &StoryState, actor: &Actor, facts: &Facts) -> bool {
    state.agent_status == AgentStatus::Pending
        || is_contractor(state, actor.agent_id)
        || contract_stale(state, facts.now, &facts.settings)
        || lease_ran_out(state, facts.now)
}

/// Facts about every single call, legal or not, from any state reached.
fn call_invariants(
    before: &StoryState,
    action: &Action,
    actor: &Actor,
    facts: &Facts,
    outcome: &Result<StoryState, DomainError>,
) -> Result<(), TestCaseError> {
    use AgentStatus::*;
    let (now, sent_epoch, settings) = (facts.now, facts.claim_epoch, &facts.settings);
    let dependencies_met = facts.dependencies_met;
    let role_allowed = action.allowed_roles_in(settings.custody_mode).contains(&actor.role);
    let claimant_write = is_claimant_write(action);
    let epoch_moved = sent_epoch.is_some_and(|epoch| epoch != before.claim_epoch);
    let lease = now + Duration::seconds(i64::from(settings.claim_lease_seconds));

    // An expired lease changes nothing about a claimant's write: the same outcome, to the
    // last field, as if the lease were still alive at this very moment.
    if claimant_write && lease_ran_out(before, now) {
        let alive = StoryState { lease_expires_at: Some(now + Duration::seconds(1)), ..before.clone() };
        let outcome_alive = apply(&alive, action, actor, &facts.ctx());
        prop_assert_eq!(outcome, &outcome_alive, "the expired lease decided {} by {:?}", action.name(), actor);
    }

    let after = match outcome {
        Err(error) => {
            prop_assert!(ALL_CODES.contains(&error.code()), "unknown code {}", error.code());
            prop_assert_eq!(
                matches!(error, DomainError::Forbidden { .. }),
                !role_allowed,
                "the role refusal is exactly the roles outside allowed_roles: {:?}",
                error
            );
            let self_report = matches!(action, Action::Report)
                && settings.custody_mode == CustodyMode::Strict
                && is_implementer(before, actor);
            // The fence answers right after role and custody: a claimant's write with an epoch
            // that moved, or by a former holder, is stale before anything else.
            if role_allowed && claimant_write && !self_report && (epoch_moved || is_former_holder(before, actor)) {
                prop_assert_eq!(error, &DomainError::StaleClaim { current: before.claim_epoch });
            }
            if let DomainError::StaleClaim { current } = error {
                prop_assert_eq!(*current, before.claim_epoch);
                prop_assert!(claimant_write && (epoch_moved || is_former_holder(before, actor)), "stale for no reason");
            }
            if matches!(error, DomainError::NotContractor) {
                prop_assert!(matches!(action, Action::Unclaim) && before.agent_status == Contracted);
                prop_assert!(!is_contractor(before, actor.agent_id));
            }
            if matches!(error, DomainError::DependenciesNotMet) {
                let takes_the_story = matches!(action, Action::Contract { .. } | Action::Claim);
                prop_assert!(!dependencies_met && takes_the_story, "{} waits for dependencies", action.name());
            }
            return Ok(());
        }
        Ok(after) => after,
    };
    prop_assert!(role_allowed, "{} by {:?} got through", action.name(), actor.role);

    // Counters and the fence only rise, by one at a time, and only when they should.
    prop_assert!(after.iteration_count >= before.iteration_count);
    prop_assert!(after.claim_epoch >= before.claim_epoch);
    let rejected = matches!(action, Action::Reject { .. });
    prop_assert_eq!(after.iteration_count - before.iteration_count, i32::from(rejected));
    let takeover = lease_ran_out(before, now);
    // The contractor giving back a contract nobody claimed: no claim ended, no epoch moves.
    let gives_back = matches!(action, Action::Unclaim) && before.agent_status == Contracted;
    let back_to_queue = match action {
        Action::Unclaim => !gives_back,
        Action::Reject { .. } | Action::ReclaimExpired => true,
        Action::ForceUnclaim => before.agent_status != Pending,
        _ => false,
    };
    let moves_epoch =
        back_to_queue || matches!(action, Action::Claim) || (matches!(action, Action::Contract { .. }) && takeover);
    prop_assert_eq!(after.claim_epoch - before.claim_epoch, i64::from(moves_epoch), "{}", action.name());
    if matches!(action, Action::ForceUnclaim) && before.agent_status == Pending {
        prop_assert_eq!(after, before, "a force-unclaim of a pending story changes nothing");
    }
    if gives_back {
        prop_assert!(is_contractor(before, actor.agent_id), "a contract given back by {:?}", actor);
        let given_back =
            StoryState { agent_status: Pending, contracted_by_agent_id: None, contracted_at: None, ..before.clone() };
        prop_assert_eq!(after, &given_back);
    }

    // One assignee at most; a holder is replaced only by a claim taking over an expired claim,
    // and loses the story only to a reset or a takeover.
    match (before.assigned_agent_id, after.assigned_agent_id) {
        (Some(old), Some(new)) if old != new => {
            prop_assert!(matches!(action, Action::Claim) && takeover, "holder {old} swapped by {}", action.name());
            prop_assert_eq!(Some(new), actor.agent_id);
            prop_assert_eq!(after.previous_assignee_agent_id, Some(old), "the takeover names who it fenced off");
        }
        (None, Some(new)) => {
            prop_assert!(matches!(action, Action::Claim));
            prop_assert_eq!(Some(new), actor.agent_id);
        }
        (Some(old), None) => {
            prop_assert!(back_to_queue || (matches!(action, Action::Contract { .. }) && takeover), "{}", action.name());
            prop_assert_eq!(after.previous_assignee_agent_id, Some(old));
        }
        _ => {}
    }
    if back_to_queue {
        prop_assert_eq!(after.agent_status, Pending);
        prop_assert_eq!(
            after.previous_assignee_agent_id,
            before.assigned_agent_id.or(before.previous_assignee_agent_id)
        );
        prop_assert_eq!((after.contracted_by_agent_id, after.contracted_at, after.stale_since), (None, None, None));
        prop_assert_eq!((after.lease_expires_at, after.last_review_at), (None, None));
    }
    if matches!(action, Action::Claim) {
        prop_assert!(dependencies_met && !before.escalation_locked);
        prop_assert!(before.agent_status == Contracted || takeover, "claimed from {}", before.agent_status);
        prop_assert_eq!(after.agent_status, Assigned);
        prop_assert_eq!(after.assigned_at, Some(now));
        prop_assert_eq!(after.lease_expires_at, Some(lease));
        prop_assert_eq!((after.contracted_by_agent_id, after.contracted_at, after.stale_since), (None, None, None));
    }
    if matches!(action, Action::Contract { .. }) {
        prop_assert!(!before.escalation_locked && dependencies_met);
        prop_assert!(contract_open(before, actor, facts), "contracted over a live custody: {before:?} by {actor:?}");
        prop_assert_eq!(after.agent_status, Contracted);
        prop_assert_eq!(after.contracted_by_agent_id, actor.agent_id);
        prop_assert_eq!(after.contracted_at, Some(now));
        prop_assert_eq!((after.assigned_agent_id, after.lease_expires_at), (None, None));
        if takeover {
            prop_assert_eq!(after.previous_assignee_agent_id, before.assigned_agent_id);
        }
    }
    match action {
        Action::Start | Action::Heartbeat | Action::RequestReview => {
            prop_assert_eq!(after.lease_expires_at, Some(lease), "{} renews the lease", action.name());
            prop_assert_eq!(after.stale_since, None);
        }
        Action::Report => {
            prop_assert_eq!((after.lease_expires_at, after.stale_since), (None, None));
        }
        Action::MarkStale => {
            prop_assert!(takeover && before.stale_since.is_none(), "marked {before:?} at {now}");
            prop_assert_eq!(after, &StoryState { stale_since: Some(now), ..before.clone() });
        }
        Action::ReclaimExpired => prop_assert!(takeover),
        _ => {}
    }

    // agent_status moves only along the chain, to reported_done by backfill, back to pending,
    // or, for a claim whose lease ran out, to a new contract or a new claim.
    if after.agent_status != before.agent_status {
        let legal = match (before.agent_status, after.agent_status) {
            (Pending, Contracted) => matches!(action, Action::Contract { .. }),
            (Contracted, Assigned) => matches!(action, Action::Claim),
            (Implementing, Assigned) => matches!(action, Action::Claim) && takeover,
            (Assigned | Implementing, Contracted) => matches!(action, Action::Contract { .. }) && takeover,
            (Assigned, Implementing) => matches!(action, Action::Start),
            (Implementing, ReportedDone) => matches!(action, Action::Report),
            (Pending, ReportedDone) => matches!(action, Action::Backfill { .. }),
            (Contracted, Pending) => back_to_queue || gives_back,
            (_, Pending) => back_to_queue,
            _ => false,
        };
        prop_assert!(legal, "{} moved {} to {}", action.name(), before.agent_status, after.agent_status);
    }

    // The verdict: written only by verify, reject and backfill; verified never by the implementer.
    if after.verified_status != before.verified_status {
        let verdict_call = matches!(action, Action::Verify | Action::Reject { .. } | Action::Backfill { .. });
        prop_assert!(verdict_call, "{} changed the verdict", action.name());
    }
    if after.verified_status == VerifiedStatus::Verified && before.verified_status != VerifiedStatus::Verified {
        match action {
            Action::Verify => {
                prop_assert!(!is_implementer(before, actor), "self-verified: {before:?} by {actor:?}");
                prop_assert!(actor.role != Role::Agent);
            }
            Action::Backfill { .. } => prop_assert!(before.assigned_agent_id.is_none()),
            _ => prop_assert!(false, "{} verified the story", action.name()),
        }
    }
    if matches!(action, Action::ReviewComplete | Action::Verify | Action::Reject { .. }) {
        prop_assert!(!is_implementer(before, actor), "{} by the implementer", action.name());
    }

    // Custody of the report.
    if matches!(action, Action::Report) {
        match settings.custody_mode {
            CustodyMode::Strict => {
                prop_assert!(!is_implementer(before, actor), "strict self-report");
                let plain_agent = actor.role == Role::Agent && actor.dispatched_as.is_none();
                prop_assert!(!plain_agent, "strict report by a plain agent key");
            }
            CustodyMode::Seed if actor.role == Role::Agent => {
                prop_assert!(is_implementer(before, actor), "seed report by a stranger agent");
            }
            CustodyMode::Seed => {}
        }
    }
    if matches!(action, Action::Verify) && settings.custody_mode == CustodyMode::Strict {
        let reviewed = before.last_review_at.zip(before.reported_done_at).is_some_and(|(r, d)| r >= d);
        prop_assert!(reviewed, "strict verify without a review after the report");
    }

    // The claim fence: no fenced write gets through with an epoch that moved or from a former
    // holder; the claimant's own writes need it to be the claimant (or, giving a contracted
    // story back, its contractor). The lease is no part of it.
    if claimant_write {
        prop_assert!(!epoch_moved, "stale epoch accepted for {}", action.name());
        prop_assert!(!is_former_holder(before, actor), "{} by a former holder", action.name());
        let own_write = !matches!(action, Action::Report) || is_implementer(before, actor);
        if gives_back {
            prop_assert!(is_contractor(before, actor.agent_id), "a contract given back by a stranger");
        } else if own_write {
            prop_assert!(is_implementer(before, actor), "{} by a non-claimant", action.name());
        }
        if matches!(action, Action::Unclaim) && !gives_back {
            prop_assert_eq!(actor.role, Role::Agent, "an orchestrator unclaims only its own contract");
        }
    }
    Ok(())
}

/// The holder's view. `held` is the epoch each agent got at its latest successful claim. An
/// agent writing as that holder (no epoch, or the one it got) is never refused for its lease:
/// while the epoch has not moved it still holds the story and nothing answers `stale_claim`;
/// once it moved (someone took the story over, or it went back to the queue) its writes as the
/// old holder are stale and never get through.
fn holder_invariants(
    before: &StoryState,
    action: &Action,
    actor: &Actor,
    facts: &Facts,
    outcome: &Result<StoryState, DomainError>,
    held: &BTreeMap<Uuid, i64>,
    tally: &mut Tally,
) -> Result<(), TestCaseError> {
    let (Some(id), Role::Agent) = (actor.agent_id, actor.role) else { return Ok(()) };
    let Some(&mine) = held.get(&id) else { return Ok(()) };
    if !is_claimant_write(action) || facts.claim_epoch.is_some_and(|sent| sent != mine) {
        return Ok(());
    }
    let strict_report_for_another = matches!(action, Action::Report)
        && facts.settings.custody_mode == CustodyMode::Strict
        && !is_implementer(before, actor);
    if before.claim_epoch == mine {
        prop_assert_eq!(before.assigned_agent_id, Some(id), "the epoch it got is current, so it holds the story");
        prop_assert!(
            !matches!(outcome, Err(DomainError::StaleClaim { .. })),
            "{} by the holder refused as stale though nobody took the story over: {:?}",
            action.name(),
            before
        );
        if lease_ran_out(before, facts.now) && outcome.is_ok() {
            tally.event("holder writes after its lease ran out");
        }
    } else {
        let current = DomainError::StaleClaim { current: before.claim_epoch };
        if facts.claim_epoch.is_some() {
            prop_assert_eq!(outcome, &Err(current), "the old holder's {} with its epoch", action.name());
            tally.event("old holder is stale with its epoch");
        } else if is_former_holder(before, actor) {
            prop_assert_eq!(outcome, &Err(current), "the former holder's {} without an epoch", action.name());
            tally.event("former holder is stale without an epoch");
        }
        if outcome.is_ok() {
            // What is left to it is no holder's write: giving back a story it contracted since,
            // or, in the strict flow, reporting for the agent that holds it now.
            let contractor_gives_back = matches!(action, Action::Unclaim) && is_contractor(before, actor.agent_id);
            prop_assert!(
                contractor_gives_back || strict_report_for_another,
                "the old holder's {} went through: {:?}",
                action.name(),
                before
            );
        }
    }
    Ok(())
}

/// Notes the contract and lease moments a successful call made.
fn note_events(before: &StoryState, action: &Action, actor: &Actor, facts: &Facts, tally: &mut Tally) {
    match action {
        Action::Claim if lease_ran_out(before, facts.now) => tally.event("claim takes over an expired claim"),
        Action::Contract { .. } if lease_ran_out(before, facts.now) => {
            tally.event("contract takes over an expired claim")
        }
        Action::Contract { .. } if is_contractor(before, actor.agent_id) => {
            tally.event("contractor renews its contract")
        }
        Action::Contract { .. } if before.agent_status == AgentStatus::Contracted => {
            tally.event("contract over a stale contract")
        }
        Action::Unclaim if before.agent_status == AgentStatus::Contracted => {
            tally.event("contractor gives the story back")
        }
        _ => {}
    }
}

/// Plays a scenario, checking every call and every state reached.
fn play(scenario: &Scenario) -> Result<Tally, TestCaseError> {
    let settings = &scenario.settings;
    let mut state = StoryState::default();
    let mut now = t0();
    // Model: was a review completed after the latest report?
    let mut reviewed_since_report = false;
    // Model: the epoch each agent got at its latest claim.
    let mut held: BTreeMap<Uuid, i64> = BTreeMap::new();
    let mut tally = Tally::default();
    state_invariants(&state, settings)?;
    for step in &scenario.steps {
        now += Duration::seconds(step.wait_seconds);
        let actor = actor(step.who, step.cmd, &state, settings);
        let action = action(step.cmd);
        let mut facts = Facts::default().settings(settings.clone()).at(now);
        facts.claim_epoch = epoch(step.epoch, &state);
        facts.dependencies_met = step.dependencies_met;
        let outcome = apply(&state, &action, &actor, &facts.ctx());
        call_invariants(&state, &action, &actor, &facts, &outcome)?;
        holder_invariants(&state, &action, &actor, &facts, &outcome, &held, &mut tally)?;
        match outcome {
            Err(error) => {
                *tally.refusals.entry(error.code()).or_default() += 1;
                *tally.variants.entry(variant(&error)).or_default() += 1;
                *tally.refused_calls.entry((action.name(), variant(&error))).or_default() += 1;
            }
            Ok(next) => {
                *tally.successes.entry(action.name()).or_default() += 1;
                note_events(&state, &action, &actor, &facts, &mut tally);
                match action {
                    Action::Report => reviewed_since_report = false,
                    Action::ReviewComplete => reviewed_since_report = true,
                    Action::Verify if settings.custody_mode == CustodyMode::Strict => {
                        prop_assert!(reviewed_since_report, "strict verify with no review since the last report");
                        tally.strict_verifies += 1;
                    }
                    Action::Claim => {
                        let claimer = actor.agent_id.expect("only an identity claims");
                        held.insert(claimer, next.claim_epoch);
                    }
                    _ => {}
                }
                if next.escalation_locked && !state.escalation_locked {
                    tally.locks += 1;
                }
                state = next;
                state_invariants(&state, settings)?;
            }
        }
    }
    Ok(tally)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_sequence_of_calls_breaks_a_rule(scenario in scenario()) {
        play(&scenario)?;
    }

    /// The lease property, on sequences made of long silences, holders' writes and takeovers:
    /// an expired lease never refuses the holder's write unless someone took the story over.
    #[test]
    fn an_expired_lease_never_refuses_the_holder_unless_someone_took_the_story_over(scenario in lease_scenario()) {
        play(&scenario)?;
    }
}

/// Plays `cases` scenarios of `strategy` and adds up what they reached.
fn reach(strategy: impl Strategy<Value = Scenario>, cases: usize) -> Tally {
    let mut runner = TestRunner::deterministic();
    let mut total = Tally::default();
    for _ in 0..cases {
        let scenario = strategy.new_tree(&mut runner).expect("a scenario").current();
        let tally = play(&scenario).unwrap_or_else(|error| panic!("{error}\n{scenario:?}"));
        total.add(tally);
    }
    total
}

#[test]
fn the_random_sequences_reach_every_transition_and_every_refusal() {
    let total = reach(scenario(), 400);
    for action in every_action() {
        let n = total.successes.get(action.name()).copied().unwrap_or(0);
        assert!(n >= 10, "`{}` succeeded only {n} times: {:?}", action.name(), total.successes);
    }
    for code in ALL_CODES {
        let n = total.refusals.get(code).copied().unwrap_or(0);
        assert!(n >= 1, "no call was refused with `{code}`: {:?}", total.refusals);
    }
    for name in REACHABLE_VARIANTS {
        let n = total.variants.get(name).copied().unwrap_or(0);
        assert!(n >= 1, "no call was refused with {name}: {:?}", total.variants);
    }
    for call in REFUSED_CALLS {
        let n = total.refused_calls.get(&call).copied().unwrap_or(0);
        assert!(n >= 1, "`{}` was never refused with {}: {:?}", call.0, call.1, total.refused_calls);
    }
    for event in EVENTS {
        let n = total.events.get(event).copied().unwrap_or(0);
        assert!(n >= 3, "`{event}` happened {n} times: {:?}", total.events);
    }
    assert!(total.strict_verifies >= 5, "{total:?}");
    assert!(total.locks >= 5, "{total:?}");
}

#[test]
fn the_lease_sequences_reach_late_writes_takeovers_and_stale_holders() {
    let total = reach(lease_scenario(), 200);
    for event in EVENTS {
        let n = total.events.get(event).copied().unwrap_or(0);
        assert!(n >= 10, "`{event}` happened {n} times: {:?}", total.events);
    }
    for action in [Action::MarkStale, Action::ReclaimExpired, Action::Heartbeat, Action::Report] {
        let n = total.successes.get(action.name()).copied().unwrap_or(0);
        assert!(n >= 10, "`{}` succeeded only {n} times: {:?}", action.name(), total.successes);
    }
}

// ---- one call on an arbitrary state -------------------------------------------------------

fn any_time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
    prop::option::of((-600i64..600).prop_map(at))
}

fn any_agent_id() -> impl Strategy<Value = Option<Uuid>> {
    prop::option::of(prop_oneof![Just(AGENT_A), Just(AGENT_B), Just(ORCHESTRATOR)])
}

fn any_state() -> impl Strategy<Value = StoryState> {
    let statuses = (
        prop::sample::select(AgentStatus::ALL.to_vec()),
        prop::sample::select(VerifiedStatus::ALL.to_vec()),
        any_agent_id(),
        any_agent_id(),
    );
    let times = (any_time(), any_time(), any_time(), any_time(), any_time(), any_time(), any_time());
    let counters = (0i64..10, 0i32..10, 0i32..10, any::<bool>(), any::<bool>(), any_time());
    let custody = (any_agent_id(), any_time(), any_time(), any_agent_id());
    (statuses, times, counters, custody).prop_map(
        |(
            (agent_status, verified_status, assigned_agent_id, reported_by_agent_id),
            (
                assigned_at,
                reported_done_at,
                verified_at,
                rejected_at,
                lease_expires_at,
                review_requested_at,
                last_review_at,
            ),
            (claim_epoch, iteration_count, rejections_since_clear, escalated, escalation_locked, escalated_at),
            (contracted_by_agent_id, contracted_at, stale_since, previous_assignee_agent_id),
        )| StoryState {
            agent_status,
            verified_status,
            assigned_agent_id,
            assigned_at,
            reported_done_at,
            reported_by_agent_id,
            verified_at,
            rejected_at,
            rejection_reason: rejected_at.map(|_| "earlier".to_string()),
            claim_epoch,
            lease_expires_at,
            iteration_count,
            rejections_since_clear,
            escalated,
            escalated_at,
            escalation_locked,
            review_requested_at,
            last_review_at,
            contracted_by_agent_id,
            contracted_at,
            stale_since,
            previous_assignee_agent_id,
            verified_by_agent_id: (verified_status == VerifiedStatus::Verified)
                .then_some(reported_by_agent_id)
                .flatten(),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn one_call_on_any_state_keeps_role_custody_and_fence(
        state in any_state(),
        cmd in cmd(),
        who in who(),
        sent in epoch_sent(),
        minutes in -600i64..600,
        dependencies_met in any::<bool>(),
        settings in settings(),
    ) {
        let actor = actor(who, cmd, &state, &settings);
        let action = action(cmd);
        let mut facts = Facts::default().settings(settings.clone()).at(at(minutes));
        facts.claim_epoch = epoch(sent, &state);
        facts.dependencies_met = dependencies_met;
        let now = facts.now;
        let outcome = apply(&state, &action, &actor, &facts.ctx());
        let claimant_write = is_claimant_write(&action);
        let epoch_moved = facts.claim_epoch.is_some_and(|epoch| epoch != state.claim_epoch);
        // An expired lease decides nothing about a claimant's write, from any state.
        if claimant_write && lease_ran_out(&state, now) {
            let alive = StoryState { lease_expires_at: Some(now + Duration::seconds(1)), ..state.clone() };
            prop_assert_eq!(&outcome, &apply(&alive, &action, &actor, &facts.ctx()));
        }
        // The state-shape checks need a reachable state; these hold from any state.
        match &outcome {
            Err(error) => {
                prop_assert!(ALL_CODES.contains(&error.code()));
                prop_assert_eq!(
                    matches!(error, DomainError::Forbidden { .. }),
                    !action.allowed_roles_in(settings.custody_mode).contains(&actor.role)
                );
                if let DomainError::StaleClaim { current } = error {
                    prop_assert_eq!(*current, state.claim_epoch);
                    prop_assert!(claimant_write && (epoch_moved || is_former_holder(&state, &actor)));
                }
                if matches!(error, DomainError::NotContractor) {
                    prop_assert!(matches!(action, Action::Unclaim) && !is_contractor(&state, actor.agent_id));
                }
            }
            Ok(after) => {
                prop_assert!(action.allowed_roles_in(settings.custody_mode).contains(&actor.role));
                prop_assert!(after.claim_epoch >= state.claim_epoch);
                prop_assert!(after.iteration_count >= state.iteration_count);
                if matches!(action, Action::ReviewComplete | Action::Verify | Action::Reject { .. }) {
                    prop_assert!(!is_implementer(&state, &actor));
                }
                if matches!(action, Action::Report) && settings.custody_mode == CustodyMode::Strict {
                    prop_assert!(!is_implementer(&state, &actor));
                }
                if matches!(action, Action::Verify) && settings.custody_mode == CustodyMode::Strict {
                    let reviewed = state.last_review_at.zip(state.reported_done_at).is_some_and(|(r, d)| r >= d);
                    prop_assert!(reviewed);
                }
                if matches!(action, Action::Claim | Action::Contract { .. }) {
                    prop_assert!(!state.escalation_locked);
                    prop_assert!(dependencies_met);
                }
                if matches!(action, Action::Claim) {
                    prop_assert!(state.agent_status == AgentStatus::Contracted || lease_ran_out(&state, now));
                    prop_assert_eq!(after.assigned_agent_id, actor.agent_id);
                    prop_assert!(actor.agent_id.is_some());
                    prop_assert_eq!(after.claim_epoch, state.claim_epoch + 1);
                    if state.assigned_agent_id.is_some_and(|holder| Some(holder) != actor.agent_id) {
                        prop_assert_eq!(after.previous_assignee_agent_id, state.assigned_agent_id);
                    }
                }
                if matches!(action, Action::Contract { .. }) {
                    prop_assert!(contract_open(&state, &actor, &facts));
                    prop_assert_eq!(after.agent_status, AgentStatus::Contracted);
                    prop_assert_eq!((after.contracted_by_agent_id, after.contracted_at), (actor.agent_id, Some(now)));
                    prop_assert_eq!(after.claim_epoch, state.claim_epoch + i64::from(lease_ran_out(&state, now)));
                }
                if claimant_write {
                    prop_assert!(!epoch_moved);
                    prop_assert!(!is_former_holder(&state, &actor));
                }
                if matches!(action, Action::Start | Action::Heartbeat | Action::RequestReview) {
                    prop_assert!(is_implementer(&state, &actor));
                }
                if matches!(action, Action::Unclaim) {
                    if state.agent_status == AgentStatus::Contracted {
                        // Given back by its contractor: no claim ended, so the epoch stays.
                        prop_assert!(is_contractor(&state, actor.agent_id));
                        prop_assert_eq!(after.claim_epoch, state.claim_epoch);
                        prop_assert_eq!(after.agent_status, AgentStatus::Pending);
                    } else {
                        prop_assert!(is_implementer(&state, &actor) && actor.role == Role::Agent);
                        prop_assert_eq!(after.claim_epoch, state.claim_epoch + 1);
                    }
                }
                if matches!(action, Action::MarkStale) {
                    prop_assert!(lease_ran_out(&state, now) && state.stale_since.is_none());
                    prop_assert_eq!(after, &StoryState { stale_since: Some(now), ..state.clone() });
                }
                if matches!(action, Action::ReclaimExpired) {
                    prop_assert!(lease_ran_out(&state, now));
                }
                if after.verified_status == VerifiedStatus::Verified
                    && state.verified_status != VerifiedStatus::Verified
                {
                    let verifying = matches!(action, Action::Verify | Action::Backfill { .. });
                    prop_assert!(verifying, "{} verified the story", action.name());
                }
                if after.verified_status != state.verified_status {
                    let verdict_call = matches!(action, Action::Verify | Action::Reject { .. } | Action::Backfill { .. });
                    prop_assert!(verdict_call, "{} changed the verdict", action.name());
                }
            }
        }
    }
}
