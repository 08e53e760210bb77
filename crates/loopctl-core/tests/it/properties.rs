//! Property tests: random sequences of calls by random callers, played from a fresh story on
//! a clock that only moves forward, never reach a state or a transition the rules forbid.
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
        1 => Just(Cmd::Unclaim),
        1 => Just(Cmd::ForceUnclaim),
        6 => Just(Cmd::ReviewComplete),
        6 => Just(Cmd::Verify),
        5 => Just(Cmd::Reject),
        1 => Just(Cmd::RejectBlank),
        1 => Just(Cmd::Backfill),
        3 => Just(Cmd::ClearEscalation),
        1 => Just(Cmd::ReclaimExpired),
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

/// The caller the workflow means for `cmd`: implementers alternate between rounds, a strict
/// report comes from the other agent, verdicts from the orchestrator, a clear from a user.
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
            CustodyMode::Strict => agent(if assignee == AGENT_A { AGENT_B } else { AGENT_A }),
        },
        Cmd::ForceUnclaim
        | Cmd::ReviewComplete
        | Cmd::Verify
        | Cmd::Reject
        | Cmd::RejectBlank
        | Cmd::Backfill
        | Cmd::ReclaimExpired => orchestrator(),
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
    strict_verifies: usize,
    locks: usize,
}

/// Facts about one story that hold in every state a sequence of calls can reach.
fn state_invariants(state: &StoryState, settings: &Settings) -> Result<(), TestCaseError> {
    use AgentStatus::*;
    let status = state.agent_status;
    let holder = state.assigned_agent_id.is_some();
    match status {
        Pending | Contracted => {
            prop_assert!(!holder, "nobody holds a {status} story: {state:?}");
            prop_assert!(state.lease_expires_at.is_none(), "no lease on a {status} story");
        }
        Assigned | Implementing => {
            prop_assert!(holder, "a {status} story has its claimant: {state:?}");
            prop_assert!(state.lease_expires_at.is_some(), "a {status} story has a lease");
        }
        ReportedDone => prop_assert!(state.lease_expires_at.is_none(), "no lease after a report"),
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

/// Facts about every single call, legal or not, from any state.
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
    let role_allowed = action.allowed_roles().contains(&actor.role);
    let after = match outcome {
        Err(error) => {
            prop_assert!(ALL_CODES.contains(&error.code()), "unknown code {}", error.code());
            prop_assert_eq!(
                matches!(error, DomainError::Forbidden { .. }),
                !role_allowed,
                "the role refusal is exactly the roles outside allowed_roles: {:?}",
                error
            );
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
    let resets = match action {
        Action::Claim | Action::Unclaim | Action::Reject { .. } | Action::ReclaimExpired => true,
        Action::ForceUnclaim => before.agent_status != Pending,
        _ => false,
    };
    prop_assert_eq!(after.claim_epoch - before.claim_epoch, i64::from(resets), "{}", action.name());

    // One assignee at most, and only a claim names one: the claimer.
    match (before.assigned_agent_id, after.assigned_agent_id) {
        (Some(old), Some(new)) => prop_assert_eq!(old, new, "a holder is never swapped"),
        (None, Some(new)) => {
            prop_assert!(matches!(action, Action::Claim));
            prop_assert_eq!(Some(new), actor.agent_id);
        }
        _ => {}
    }
    if matches!(action, Action::Claim) {
        prop_assert!(dependencies_met && !before.escalation_locked);
        prop_assert_eq!(before.agent_status, Contracted);
        let lease = now + Duration::seconds(i64::from(settings.claim_lease_seconds));
        prop_assert_eq!(after.lease_expires_at, Some(lease));
    }
    if matches!(action, Action::Contract { .. }) {
        prop_assert!(!before.escalation_locked);
    }

    // agent_status moves only along the chain, to reported_done by backfill, or back to pending.
    if after.agent_status != before.agent_status {
        let legal = match (before.agent_status, after.agent_status) {
            (Pending, Contracted) => matches!(action, Action::Contract { .. }),
            (Contracted, Assigned) => matches!(action, Action::Claim),
            (Assigned, Implementing) => matches!(action, Action::Start),
            (Implementing, ReportedDone) => matches!(action, Action::Report),
            (Pending, ReportedDone) => matches!(action, Action::Backfill { .. }),
            (_, Pending) => resets && !matches!(action, Action::Claim),
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
                prop_assert!(!is_implementer(before, actor), "strict self-report")
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

    // The claim fence: the claimant's own writes need the current epoch and a live lease.
    let claimant_write = matches!(action, Action::Start | Action::Heartbeat | Action::RequestReview | Action::Unclaim)
        || (matches!(action, Action::Report) && is_implementer(before, actor));
    if claimant_write {
        prop_assert!(is_implementer(before, actor), "{} by a non-claimant", action.name());
        prop_assert!(sent_epoch.is_none_or(|epoch| epoch == before.claim_epoch), "stale epoch accepted");
        let lease_alive = before.lease_expires_at.is_none_or(|until| until > now);
        prop_assert!(lease_alive || !before.agent_status.in_flight(), "expired lease accepted");
    }
    Ok(())
}

/// Plays a scenario, checking every call and every state reached.
fn play(scenario: &Scenario) -> Result<Tally, TestCaseError> {
    let settings = &scenario.settings;
    let mut state = StoryState::default();
    let mut now = t0();
    // Model: was a review completed after the latest report?
    let mut reviewed_since_report = false;
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
        match outcome {
            Err(error) => *tally.refusals.entry(error.code()).or_default() += 1,
            Ok(next) => {
                *tally.successes.entry(action.name()).or_default() += 1;
                match action {
                    Action::Report => reviewed_since_report = false,
                    Action::ReviewComplete => reviewed_since_report = true,
                    Action::Verify if settings.custody_mode == CustodyMode::Strict => {
                        prop_assert!(reviewed_since_report, "strict verify with no review since the last report");
                        tally.strict_verifies += 1;
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
}

#[test]
fn the_random_sequences_reach_every_transition_and_every_refusal() {
    let mut runner = TestRunner::deterministic();
    let strategy = scenario();
    let mut total = Tally::default();
    for _ in 0..400 {
        let scenario = strategy.new_tree(&mut runner).expect("a scenario").current();
        let tally = play(&scenario).unwrap_or_else(|error| panic!("{error}\n{scenario:?}"));
        for (name, n) in tally.successes {
            *total.successes.entry(name).or_default() += n;
        }
        for (code, n) in tally.refusals {
            *total.refusals.entry(code).or_default() += n;
        }
        total.strict_verifies += tally.strict_verifies;
        total.locks += tally.locks;
    }
    for action in every_action() {
        let n = total.successes.get(action.name()).copied().unwrap_or(0);
        assert!(n >= 10, "`{}` succeeded only {n} times: {:?}", action.name(), total.successes);
    }
    for code in ALL_CODES {
        let n = total.refusals.get(code).copied().unwrap_or(0);
        assert!(n >= 1, "no call was refused with `{code}`: {:?}", total.refusals);
    }
    assert!(total.strict_verifies >= 5, "{total:?}");
    assert!(total.locks >= 5, "{total:?}");
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
    (statuses, times, counters).prop_map(
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
            contracted_by_agent_id: None,
            contracted_at: None,
            stale_since: None,
            previous_assignee_agent_id: None,
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
        let outcome = apply(&state, &action, &actor, &facts.ctx());
        // The state-shape checks need a reachable state; these hold from any state.
        match &outcome {
            Err(error) => {
                prop_assert!(ALL_CODES.contains(&error.code()));
                prop_assert_eq!(
                    matches!(error, DomainError::Forbidden { .. }),
                    !action.allowed_roles().contains(&actor.role)
                );
            }
            Ok(after) => {
                prop_assert!(action.allowed_roles().contains(&actor.role));
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
                }
                if matches!(action, Action::Claim) {
                    prop_assert!(dependencies_met);
                    prop_assert_eq!(after.assigned_agent_id, actor.agent_id);
                    prop_assert!(actor.agent_id.is_some());
                }
                if matches!(action, Action::Start | Action::Heartbeat | Action::RequestReview | Action::Unclaim) {
                    prop_assert!(is_implementer(&state, &actor));
                    prop_assert!(facts.claim_epoch.is_none_or(|epoch| epoch == state.claim_epoch));
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
