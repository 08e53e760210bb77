//! Who may make each call at all (WIRE.md, "Roles on the story lifecycle"), and that the
//! role is checked before custody, the claim fence and state.

use chrono::Duration;
use loopctl_core::{Action, AgentStatus, DomainError, Role, StoryState, VerifiedStatus, apply};
use uuid::Uuid;

use crate::support::*;

/// A story and facts on which `action` succeeds for every role WIRE.md allows, and the
/// agent identity a key of an agent-side role would carry for it.
fn scene(action: &Action) -> (StoryState, Facts, Option<Uuid>) {
    use AgentStatus::*;
    let unverified = VerifiedStatus::Unverified;
    let facts = Facts::default();
    match action {
        Action::Contract { .. } => (story(Pending, unverified), facts, Some(OTHER_AGENT)),
        Action::Claim => (story(Contracted, unverified), facts, Some(OTHER_AGENT)),
        Action::Start => (story(Assigned, unverified), facts, Some(IMPLEMENTER)),
        // A key of either role gives back the contract its identity made.
        Action::Unclaim => (story(Contracted, unverified), facts, Some(IMPLEMENTER)),
        Action::Heartbeat | Action::RequestReview | Action::Report => {
            (story(Implementing, unverified), facts, Some(IMPLEMENTER))
        }
        Action::ForceUnclaim => (story(Implementing, unverified), facts, Some(ORCHESTRATOR)),
        Action::ReviewComplete | Action::Verify | Action::Reject { .. } => {
            (story(ReportedDone, unverified), facts, Some(ORCHESTRATOR))
        }
        Action::Backfill { .. } => {
            (StoryState { claim_epoch: 0, ..story(Pending, unverified) }, facts, Some(ORCHESTRATOR))
        }
        Action::ClearEscalation => {
            let mut state = story(Pending, VerifiedStatus::Rejected);
            state.escalated = true;
            state.escalated_at = Some(at(-1));
            state.escalation_locked = true;
            (state, facts, Some(ORCHESTRATOR))
        }
        Action::ReclaimExpired | Action::MarkStale => {
            let late = facts.at(at(LEASE_END_MIN) + Duration::minutes(1));
            (story(Implementing, unverified), late, Some(ORCHESTRATOR))
        }
    }
}

/// The roles WIRE.md grants each call. Superadmin (the operator) stands above user and may do
/// what a user may. `reclaim_expired` and `mark_stale` are what the server's lease sweeper and
/// an orchestrator run; they take a human or orchestrator role.
fn wire_roles(action: &Action) -> &'static [Role] {
    use Role::*;
    match action {
        // Unclaim: the claimant agent, or the contractor (agent or orchestrator key) of a
        // contracted story.
        Action::Contract { .. } | Action::Report | Action::Unclaim => &[Agent, Orchestrator],
        Action::Claim | Action::Start | Action::Heartbeat | Action::RequestReview => &[Agent],
        Action::ForceUnclaim
        | Action::ReviewComplete
        | Action::Verify
        | Action::Reject { .. }
        | Action::Backfill { .. }
        | Action::ReclaimExpired
        | Action::MarkStale => &[Orchestrator, User, Superadmin],
        Action::ClearEscalation => &[User, Superadmin],
    }
}

/// What a caller refused `review_complete` is told: which keys a reviewer uses.
const REVIEWER_HINT: &str = "a reviewer uses an orchestrator or user key, or the token the orchestrator dispatches for it with `loopctl dispatch N --role reviewer`";

fn key_for(role: Role, agent_side_id: Option<Uuid>) -> loopctl_core::Actor {
    match role {
        Role::Agent | Role::Orchestrator => key(role, agent_side_id),
        Role::User | Role::Superadmin | Role::Verifier => key(role, None),
    }
}

#[test]
fn every_role_for_every_action_follows_the_wire_table() {
    for action in every_action() {
        let (state, facts, agent_side_id) = scene(&action);
        for role in Role::ALL {
            let actor = key_for(role, agent_side_id);
            let outcome = apply(&state, &action, &actor, &facts.ctx());
            if wire_roles(&action).contains(&role) {
                assert!(outcome.is_ok(), "{role} should be able to {}: {outcome:?}", action.name());
            } else {
                match outcome {
                    Err(DomainError::Forbidden { role: refused, action: name, hint }) => {
                        assert_eq!(refused, role);
                        assert_eq!(name, action.name());
                        if matches!(action, Action::ReviewComplete) {
                            assert_eq!(hint, REVIEWER_HINT);
                        } else {
                            assert!(hint.starts_with("use "), "hint `{hint}` says what to do");
                        }
                    }
                    other => panic!("{role} must be forbidden to {}: {other:?}", action.name()),
                }
            }
        }
    }
}

#[test]
fn the_role_check_is_exactly_allowed_roles_and_comes_before_state() {
    // Whatever the story's state, a role outside `allowed_roles` gets `forbidden` and an
    // allowed one never gets the role refusal.
    for action in every_action() {
        for (agent_status, verified_status) in every_status_pair() {
            let state = story(agent_status, verified_status);
            for role in Role::ALL {
                let actor = key(role, Some(OTHER_AGENT));
                let outcome = apply(&state, &action, &actor, &Facts::default().ctx());
                let role_refused = matches!(outcome, Err(DomainError::Forbidden { .. }));
                assert_eq!(
                    role_refused,
                    !action.allowed_roles().contains(&role),
                    "{role} / {} on {agent_status}/{verified_status}: {outcome:?}",
                    action.name()
                );
            }
        }
    }
}

#[test]
fn allowed_roles_agree_with_the_wire_table() {
    for action in every_action() {
        for role in Role::ALL {
            assert_eq!(
                action.allowed_roles().contains(&role),
                wire_roles(&action).contains(&role),
                "{role} / {}",
                action.name()
            );
        }
    }
}

#[test]
fn the_role_is_checked_before_custody() {
    // An agent key of the implementer asking to verify is refused for its role, not custody.
    let state = story(AgentStatus::ReportedDone, VerifiedStatus::Unverified);
    for action in [Action::Verify, reject("fine"), Action::ReviewComplete] {
        check(&state, &action, &agent(IMPLEMENTER), Expect::Err("forbidden"));
    }
}

#[test]
fn the_role_is_checked_before_the_claim_fence() {
    // A stale epoch and an expired lease, but a user key: the role answers first.
    let state = story(AgentStatus::Implementing, VerifiedStatus::Unverified);
    let facts = Facts::default().epoch(FIXTURE_EPOCH - 1).at(at(LEASE_END_MIN + 5));
    for action in [Action::Heartbeat, Action::Report, Action::Start, Action::Unclaim] {
        check_with(&facts, &state, &action, &user(), Expect::Err("forbidden"));
    }
}

#[test]
fn only_a_human_may_clear_an_escalation() {
    let (state, facts, _) = scene(&Action::ClearEscalation);
    for actor in [agent(OTHER_AGENT), orchestrator()] {
        check_with(&facts, &state, &Action::ClearEscalation, &actor, Expect::Err("forbidden"));
    }
    for actor in [user(), superadmin(), key(Role::User, Some(OTHER_AGENT))] {
        let next = success(&facts, &state, &Action::ClearEscalation, &actor);
        assert!(!next.escalated && !next.escalation_locked);
    }
}

#[test]
fn actions_carry_the_verbs_used_in_messages_and_audit_rows() {
    let names: Vec<_> = every_action().iter().map(Action::name).collect();
    assert_eq!(
        names,
        [
            "contract",
            "claim",
            "start",
            "heartbeat",
            "request_review",
            "report",
            "unclaim",
            "force_unclaim",
            "review_complete",
            "verify",
            "reject",
            "backfill",
            "clear_escalation",
            "reclaim_expired",
            "mark_stale",
        ]
    );
}

#[test]
fn a_forbidden_message_names_the_role_the_call_and_what_to_use() {
    let state = story(AgentStatus::ReportedDone, VerifiedStatus::Unverified);
    let error = refusal(&Facts::default(), &state, &Action::Verify, &agent(OTHER_AGENT));
    assert_eq!(error.to_string(), "the agent role may not verify; use an orchestrator or user key");
    let error = refusal(&Facts::default(), &StoryState::default(), &Action::Claim, &user());
    assert_eq!(error.to_string(), "the user role may not claim; use an agent key");
    let error = refusal(&Facts::default(), &state, &Action::ClearEscalation, &orchestrator());
    assert_eq!(error.to_string(), "the orchestrator role may not clear_escalation; use a user (human) key");
    let error = refusal(&Facts::default(), &state, &Action::Unclaim, &user());
    assert_eq!(error.to_string(), "the user role may not unclaim; use an agent or orchestrator key");
    let error = refusal(&Facts::default(), &state, &Action::MarkStale, &agent(OTHER_AGENT));
    assert_eq!(error.to_string(), "the agent role may not mark_stale; use an orchestrator or user key");
}

#[test]
fn a_forbidden_review_says_which_keys_and_tokens_a_reviewer_uses() {
    let state = story(AgentStatus::ReportedDone, VerifiedStatus::Unverified);
    let error = refusal(&Facts::default(), &state, &Action::ReviewComplete, &agent(OTHER_AGENT));
    assert_eq!(error, DomainError::Forbidden { role: Role::Agent, action: "review_complete", hint: REVIEWER_HINT });
    assert_eq!(error.code(), "forbidden");
    assert_eq!(error.to_string(), format!("the agent role may not review_complete; {REVIEWER_HINT}"));
    assert!(error.to_string().contains("`loopctl dispatch N --role reviewer`"), "{error}");
}
