//! Every action from every `agent_status` × `verified_status` pair, by the caller the workflow
//! means to make it. Each test states its rule as a `match` over the two statuses: where the
//! call is legal, the exact next state; everywhere else, the refusal's code.

use chrono::Duration;
use loopctl_core::{Action, Actor, AgentStatus::*, DomainError, StoryState, VerifiedStatus, VerifiedStatus::*};
use uuid::Uuid;

use crate::support::*;

/// Runs `rule` over all fifteen status pairs: `prepare` shapes the fixture, `rule` names the
/// expected outcome for it.
fn matrix(
    facts: &Facts,
    action: &Action,
    actor: &Actor,
    prepare: impl Fn(&mut StoryState),
    rule: impl Fn(&StoryState) -> Expect,
) {
    for (agent_status, verified_status) in every_status_pair() {
        let mut state = story(agent_status, verified_status);
        prepare(&mut state);
        check_with(facts, &state, action, actor, rule(&state));
    }
}

fn unchanged(_: &mut StoryState) {}

fn lease_from_now(facts: &Facts) -> Option<chrono::DateTime<chrono::Utc>> {
    Some(facts.now + Duration::seconds(i64::from(facts.settings.claim_lease_seconds)))
}

/// Contracted now by `by`.
fn contracted(state: &StoryState, by: Uuid, facts: &Facts) -> StoryState {
    StoryState {
        agent_status: Contracted,
        contracted_by_agent_id: Some(by),
        contracted_at: Some(facts.now),
        ..state.clone()
    }
}

/// Claimed now by `by`: a new epoch and lease; the contract is used up, a stale mark gone; a
/// holder it took the story from becomes the previous assignee.
fn claimed(state: &StoryState, by: Uuid, facts: &Facts) -> StoryState {
    let previous = match state.assigned_agent_id {
        Some(holder) if holder != by => Some(holder),
        _ => state.previous_assignee_agent_id,
    };
    StoryState {
        agent_status: Assigned,
        assigned_agent_id: Some(by),
        assigned_at: Some(facts.now),
        claim_epoch: state.claim_epoch + 1,
        lease_expires_at: lease_from_now(facts),
        review_requested_at: None,
        contracted_by_agent_id: None,
        contracted_at: None,
        stale_since: None,
        previous_assignee_agent_id: previous,
        ..state.clone()
    }
}

/// A write by the holder: a lease from now, and no stale mark.
fn lease_renewed(state: &StoryState, facts: &Facts) -> StoryState {
    StoryState { lease_expires_at: lease_from_now(facts), stale_since: None, ..state.clone() }
}

fn started(state: &StoryState, facts: &Facts) -> StoryState {
    StoryState { agent_status: Implementing, ..lease_renewed(state, facts) }
}

fn review_requested(state: &StoryState, facts: &Facts) -> StoryState {
    StoryState { review_requested_at: Some(facts.now), ..lease_renewed(state, facts) }
}

fn reported(state: &StoryState, by: Uuid, facts: &Facts) -> StoryState {
    StoryState {
        agent_status: ReportedDone,
        reported_done_at: Some(facts.now),
        reported_by_agent_id: Some(by),
        lease_expires_at: None,
        stale_since: None,
        ..state.clone()
    }
}

/// Back to the queue: no assignee, no lease, no report, no review, no contract, no stale
/// mark, and a new epoch; the holder it had becomes the previous assignee. The verdict, the
/// reporter and the counters stay.
fn back_in_queue(state: &StoryState) -> StoryState {
    StoryState {
        agent_status: Pending,
        assigned_agent_id: None,
        assigned_at: None,
        reported_done_at: None,
        lease_expires_at: None,
        review_requested_at: None,
        last_review_at: None,
        contracted_by_agent_id: None,
        contracted_at: None,
        stale_since: None,
        previous_assignee_agent_id: state.assigned_agent_id.or(state.previous_assignee_agent_id),
        claim_epoch: state.claim_epoch + 1,
        ..state.clone()
    }
}

/// A contract nobody claimed, given back by its contractor: pending again, and since no claim
/// ended, the epoch and everything else stay.
fn given_back(state: &StoryState) -> StoryState {
    StoryState { agent_status: Pending, contracted_by_agent_id: None, contracted_at: None, ..state.clone() }
}

/// A claim whose lease ran out, taken over by a contract: back in the queue, then contracted.
fn taken_over_by_contract(state: &StoryState, by: Uuid, facts: &Facts) -> StoryState {
    contracted(&back_in_queue(state), by, facts)
}

/// The sweeper's mark on a claim whose lease ran out; nothing else moves.
fn marked_stale(state: &StoryState, facts: &Facts) -> StoryState {
    StoryState { stale_since: Some(facts.now), ..state.clone() }
}

/// The fixtures' leases end here; a lease ending exactly now has expired.
fn lease_over() -> Facts {
    Facts::default().at(at(LEASE_END_MIN))
}

fn reviewed(state: &StoryState, facts: &Facts) -> StoryState {
    StoryState { last_review_at: Some(facts.now), ..state.clone() }
}

fn verified(state: &StoryState, facts: &Facts) -> StoryState {
    StoryState {
        verified_status: Verified,
        verified_at: Some(facts.now),
        verified_by_agent_id: Some(ORCHESTRATOR),
        rejected_at: None,
        rejection_reason: None,
        ..state.clone()
    }
}

/// Rejected below the escalation threshold (the fixtures hold at most one rejection).
fn rejected(state: &StoryState, reason: &str, facts: &Facts) -> StoryState {
    back_in_queue(&StoryState {
        verified_status: Rejected,
        verified_at: None,
        verified_by_agent_id: None,
        rejected_at: Some(facts.now),
        rejection_reason: Some(reason.to_string()),
        iteration_count: state.iteration_count + 1,
        rejections_since_clear: state.rejections_since_clear + 1,
        ..state.clone()
    })
}

fn backfilled(state: &StoryState, by: Option<Uuid>, facts: &Facts) -> StoryState {
    StoryState {
        agent_status: ReportedDone,
        verified_status: Verified,
        reported_done_at: Some(facts.now),
        reported_by_agent_id: by,
        verified_at: Some(facts.now),
        verified_by_agent_id: by,
        ..state.clone()
    }
}

fn cleared(state: &StoryState) -> StoryState {
    StoryState {
        escalated: false,
        escalated_at: None,
        escalation_locked: false,
        rejections_since_clear: 0,
        ..state.clone()
    }
}

fn unverified_or_rejected(status: VerifiedStatus) -> bool {
    matches!(status, Unverified | Rejected)
}

#[test]
fn contract_takes_a_pending_story_but_none_another_identity_holds() {
    // Every fixture's contract and lease is alive: only the queue is open to another agent.
    let facts = Facts::default();
    matrix(&facts, &contract(), &agent(OTHER_AGENT), unchanged, |s| match s.agent_status {
        Pending => Expect::Ok(contracted(s, OTHER_AGENT, &facts)),
        Contracted | Assigned | Implementing | ReportedDone => Expect::Err("invalid_transition"),
    });
}

#[test]
fn contract_by_the_contractor_renews_its_contract_but_not_a_live_claim() {
    let facts = Facts::default();
    matrix(&facts, &contract(), &agent(IMPLEMENTER), unchanged, |s| match s.agent_status {
        Pending | Contracted => Expect::Ok(contracted(s, IMPLEMENTER, &facts)),
        // Its own live claim is no contract to renew.
        Assigned | Implementing | ReportedDone => Expect::Err("invalid_transition"),
    });
}

#[test]
fn contract_takes_over_a_claim_whose_lease_ran_out() {
    for facts in [lease_over(), lease_over().at(at(LEASE_END_MIN + 600))] {
        let contract_live = facts.now < at(CONTRACTED_MIN) + Duration::minutes(30);
        matrix(&facts, &contract(), &agent(OTHER_AGENT), unchanged, |s| match s.agent_status {
            Pending => Expect::Ok(contracted(s, OTHER_AGENT, &facts)),
            Contracted if contract_live => Expect::Err("invalid_transition"),
            Contracted => Expect::Ok(contracted(s, OTHER_AGENT, &facts)),
            Assigned | Implementing => Expect::Ok(taken_over_by_contract(s, OTHER_AGENT, &facts)),
            ReportedDone => Expect::Err("invalid_transition"),
        });
    }
}

#[test]
fn claim_takes_a_contracted_story_and_must_follow_a_contract() {
    let facts = Facts::default();
    // Any agent claims a contracted story, the contractor or another.
    for by in [OTHER_AGENT, IMPLEMENTER] {
        matrix(&facts, &Action::Claim, &agent(by), unchanged, |s| match s.agent_status {
            Pending => Expect::Err("must_contract_first"),
            Contracted => Expect::Ok(claimed(s, by, &facts)),
            Assigned | Implementing | ReportedDone => Expect::Err("invalid_transition"),
        });
    }
}

#[test]
fn claim_takes_over_a_claim_whose_lease_ran_out() {
    let facts = lease_over();
    let mark = |s: &mut StoryState| {
        if s.agent_status.in_flight() {
            s.stale_since = Some(at(LEASE_END_MIN));
        }
    };
    matrix(&facts, &Action::Claim, &agent(OTHER_AGENT), mark, |s| match s.agent_status {
        Pending => Expect::Err("must_contract_first"),
        Contracted | Assigned | Implementing => Expect::Ok(claimed(s, OTHER_AGENT, &facts)),
        // A report ends the lease: nothing to take over.
        ReportedDone => Expect::Err("invalid_transition"),
    });
    // The takeover names the holder it fenced off; the holder re-claiming names nobody.
    let holder = story(Implementing, Unverified);
    let taken = success(&facts, &holder, &Action::Claim, &agent(OTHER_AGENT));
    assert_eq!(taken.previous_assignee_agent_id, Some(IMPLEMENTER));
    let again = success(&facts, &holder, &Action::Claim, &agent(IMPLEMENTER));
    assert_eq!(again, claimed(&holder, IMPLEMENTER, &facts));
    assert_eq!(again.previous_assignee_agent_id, None);
}

#[test]
fn start_moves_the_claimants_assigned_story_to_implementing() {
    let facts = Facts::default();
    matrix(&facts, &Action::Start, &agent(IMPLEMENTER), unchanged, |s| match s.agent_status {
        Pending => Expect::Err("must_contract_first"),
        Contracted => Expect::Err("must_claim_first"),
        Assigned => Expect::Ok(started(s, &facts)),
        Implementing | ReportedDone => Expect::Err("invalid_transition"),
    });
}

#[test]
fn heartbeat_renews_the_lease_of_a_story_in_flight() {
    let facts = Facts::default().at(at(5));
    matrix(&facts, &Action::Heartbeat, &agent(IMPLEMENTER), unchanged, |s| match s.agent_status {
        // Nobody holds a pending or contracted story, so the caller is not its claimant.
        Pending | Contracted => Expect::Err("forbidden"),
        Assigned | Implementing => Expect::Ok(lease_renewed(s, &facts)),
        ReportedDone => Expect::Err("invalid_transition"),
    });
}

#[test]
fn request_review_marks_an_implementing_story_without_moving_it_and_renews_the_lease() {
    let facts = Facts::default().at(at(5));
    matrix(&facts, &Action::RequestReview, &agent(IMPLEMENTER), unchanged, |s| match s.agent_status {
        Pending | Contracted => Expect::Err("forbidden"),
        Implementing => Expect::Ok(review_requested(s, &facts)),
        Assigned | ReportedDone => Expect::Err("invalid_transition"),
    });
}

#[test]
fn report_by_the_implementer_in_the_seed_flow_moves_implementing_to_reported_done() {
    let facts = Facts::default();
    matrix(&facts, &Action::Report, &agent(IMPLEMENTER), unchanged, |s| match s.agent_status {
        Pending | Contracted => Expect::Err("must_claim_first"),
        Implementing => Expect::Ok(reported(s, IMPLEMENTER, &facts)),
        Assigned | ReportedDone => Expect::Err("invalid_transition"),
    });
}

#[test]
fn unclaim_by_the_claimant_or_the_contractor_puts_an_unverified_story_back_in_the_queue() {
    // IMPLEMENTER contracted the contracted fixture and holds the claimed ones.
    let facts = Facts::default();
    matrix(&facts, &Action::Unclaim, &agent(IMPLEMENTER), unchanged, |s| match (s.agent_status, s.verified_status) {
        (Pending, _) => Expect::Err("invalid_transition"),
        (Contracted, _) => Expect::Ok(given_back(s)),
        (_, Verified) => Expect::Err("invalid_transition"),
        (Assigned | Implementing | ReportedDone, Unverified | Rejected) => Expect::Ok(back_in_queue(s)),
    });
}

#[test]
fn unclaim_by_anyone_else_is_refused_as_not_the_contractor_or_not_the_assignee() {
    let facts = Facts::default();
    let not_assignee = || Expect::Refused(DomainError::NotAssignee { action: "unclaim" });
    matrix(&facts, &Action::Unclaim, &agent(OTHER_AGENT), unchanged, |s| match s.agent_status {
        Pending => Expect::Err("invalid_transition"),
        Contracted => Expect::Refused(DomainError::NotContractor),
        Assigned | Implementing | ReportedDone => not_assignee(),
    });
    // An orchestrator unclaims only its own contract: anything else is not its to give back,
    // whatever the state.
    matrix(&facts, &Action::Unclaim, &orchestrator(), unchanged, |s| match s.agent_status {
        Contracted => Expect::Refused(DomainError::NotContractor),
        Pending | Assigned | Implementing | ReportedDone => not_assignee(),
    });
}

#[test]
fn an_orchestrator_key_gives_back_its_identitys_contract_but_never_unclaims_a_claim() {
    // The orchestrator key carries IMPLEMENTER's identity: the contractor of the contracted
    // fixture and the holder of the claimed ones.
    let facts = Facts::default();
    let actor = key(loopctl_core::Role::Orchestrator, Some(IMPLEMENTER));
    matrix(&facts, &Action::Unclaim, &actor, unchanged, |s| match s.agent_status {
        Contracted => Expect::Ok(given_back(s)),
        Pending | Assigned | Implementing | ReportedDone => {
            Expect::Refused(DomainError::NotAssignee { action: "unclaim" })
        }
    });
}

#[test]
fn force_unclaim_resets_anything_but_a_verified_story_and_is_idempotent_on_pending() {
    let facts = Facts::default();
    matrix(&facts, &Action::ForceUnclaim, &orchestrator(), unchanged, |s| match (s.agent_status, s.verified_status) {
        (_, Verified) => Expect::Err("invalid_transition"),
        (Pending, _) => Expect::Ok(s.clone()),
        _ => Expect::Ok(back_in_queue(s)),
    });
}

#[test]
fn review_complete_records_a_review_of_a_reported_unverified_story() {
    let facts = Facts::default();
    matrix(&facts, &Action::ReviewComplete, &orchestrator(), unchanged, |s| {
        match (s.agent_status, s.verified_status) {
            (ReportedDone, v) if unverified_or_rejected(v) => Expect::Ok(reviewed(s, &facts)),
            _ => Expect::Err("invalid_transition"),
        }
    });
}

#[test]
fn verify_marks_a_reported_story_verified_and_clears_the_last_rejection() {
    let facts = Facts::default();
    matrix(&facts, &Action::Verify, &orchestrator(), unchanged, |s| match (s.agent_status, s.verified_status) {
        (ReportedDone, v) if unverified_or_rejected(v) => Expect::Ok(verified(s, &facts)),
        _ => Expect::Err("invalid_transition"),
    });
}

#[test]
fn reject_sends_a_reported_or_verified_story_back_to_pending_as_rejected() {
    let facts = Facts::default();
    let reason = "no test for AC-2";
    matrix(&facts, &reject(reason), &orchestrator(), unchanged, |s| match (s.agent_status, s.verified_status) {
        (ReportedDone, _) | (_, Verified) => Expect::Ok(rejected(s, reason, &facts)),
        _ => Expect::Err("invalid_transition"),
    });
}

#[test]
fn backfill_marks_only_an_untouched_story_done_and_verified() {
    let facts = Facts::default();
    let action = backfill("merged as PR 12 before loopctl");
    // The fixtures were claimed in loopctl before (epoch > 0): never a backfill.
    matrix(&facts, &action, &orchestrator(), unchanged, |_| Expect::Err("invalid_transition"));
    let never_claimed = StoryState { claim_epoch: 0, ..story(Pending, Unverified) };
    check(&never_claimed, &action, &orchestrator(), Expect::Ok(backfilled(&never_claimed, Some(ORCHESTRATOR), &facts)));
    // A human's backfill names no reporting agent.
    check(&never_claimed, &action, &user(), Expect::Ok(backfilled(&never_claimed, None, &facts)));
}

#[test]
fn backfill_refuses_a_pending_story_that_still_has_an_assignee() {
    let mut state = story(Pending, Unverified);
    state.assigned_agent_id = Some(IMPLEMENTER);
    check(&state, &backfill("done by hand"), &orchestrator(), Expect::Err("invalid_transition"));
}

#[test]
fn clear_escalation_clears_an_escalated_story_in_any_status() {
    let facts = Facts::default();
    let escalate = |s: &mut StoryState| {
        s.escalated = true;
        s.escalated_at = Some(at(-5));
        s.escalation_locked = true;
        s.rejections_since_clear = 5;
        s.iteration_count = 7;
    };
    matrix(&facts, &Action::ClearEscalation, &user(), escalate, |s| Expect::Ok(cleared(s)));
}

#[test]
fn clear_escalation_refuses_a_story_that_is_not_escalated() {
    let facts = Facts::default();
    matrix(&facts, &Action::ClearEscalation, &user(), unchanged, |_| Expect::Err("invalid_transition"));
}

#[test]
fn reclaim_expired_puts_a_story_whose_lease_ran_out_back_in_the_queue() {
    // The fixtures' leases end at LEASE_END_MIN; a lease ending exactly now has expired.
    for minutes in [LEASE_END_MIN, LEASE_END_MIN + 60] {
        let facts = Facts::default().at(at(minutes));
        matrix(&facts, &Action::ReclaimExpired, &orchestrator(), unchanged, |s| match s.agent_status {
            Assigned | Implementing => Expect::Ok(back_in_queue(s)),
            _ => Expect::Err("invalid_transition"),
        });
        // Marked stale or not, the same.
        let mark = |s: &mut StoryState| s.stale_since = s.agent_status.in_flight().then_some(at(LEASE_END_MIN));
        matrix(&facts, &Action::ReclaimExpired, &user(), mark, |s| match s.agent_status {
            Assigned | Implementing => Expect::Ok(back_in_queue(s)),
            _ => Expect::Err("invalid_transition"),
        });
    }
}

#[test]
fn mark_stale_marks_a_claim_whose_lease_ran_out_once_and_leaves_it_with_its_holder() {
    for minutes in [LEASE_END_MIN, LEASE_END_MIN + 60] {
        let facts = Facts::default().at(at(minutes));
        matrix(&facts, &Action::MarkStale, &orchestrator(), unchanged, |s| match s.agent_status {
            Assigned | Implementing => Expect::Ok(marked_stale(s, &facts)),
            Pending | Contracted | ReportedDone => Expect::Err("invalid_transition"),
        });
        // Once per claim: a marked claim is not marked again.
        let mark = |s: &mut StoryState| s.stale_since = Some(at(LEASE_END_MIN));
        matrix(&facts, &Action::MarkStale, &orchestrator(), mark, |_| Expect::Err("invalid_transition"));
    }
}

#[test]
fn mark_stale_refuses_every_story_whose_lease_is_alive() {
    let facts = Facts::default().at(at(LEASE_END_MIN) - Duration::seconds(1));
    matrix(&facts, &Action::MarkStale, &user(), unchanged, |_| Expect::Err("invalid_transition"));
}

#[test]
fn reclaim_expired_refuses_every_story_whose_lease_is_alive() {
    let facts = Facts::default().at(at(LEASE_END_MIN) - Duration::seconds(1));
    matrix(&facts, &Action::ReclaimExpired, &orchestrator(), unchanged, |_| Expect::Err("invalid_transition"));
}

#[test]
fn an_invalid_transition_names_the_call_and_both_statuses() {
    let state = story(Implementing, Unverified);
    let error = refusal(&Facts::default(), &state, &Action::Verify, &orchestrator());
    let message = error.to_string();
    assert_eq!(error.code(), "invalid_transition");
    assert!(message.contains("verify"), "{message}");
    assert!(message.contains("agent_status='implementing'"), "{message}");
    assert!(message.contains("verified_status='unverified'"), "{message}");
}
