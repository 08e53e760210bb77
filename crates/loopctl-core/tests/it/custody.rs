//! Chain of custody: the implementer never reviews, verifies or rejects its own story, in the
//! strict flow never reports it either, and a strict verify needs a review after the report.

use chrono::Duration;
use loopctl_core::{Action, AgentStatus::*, DomainError, Role, StoryState, VerifiedStatus::*};

use crate::support::*;

/// Keys of every role that may review or verify, all linked to the implementer's identity.
fn implementer_keys() -> [loopctl_core::Actor; 3] {
    [
        key(Role::Orchestrator, Some(IMPLEMENTER)),
        key(Role::User, Some(IMPLEMENTER)),
        key(Role::Superadmin, Some(IMPLEMENTER)),
    ]
}

#[test]
fn the_implementer_may_not_review_its_own_story() {
    let state = story(ReportedDone, Unverified);
    for actor in implementer_keys() {
        check(&state, &Action::ReviewComplete, &actor, Expect::Err("self_review_blocked"));
    }
}

#[test]
fn the_implementer_may_not_verify_or_reject_its_own_story() {
    let state = story(ReportedDone, Unverified);
    for actor in implementer_keys() {
        check(&state, &Action::Verify, &actor, Expect::Err("self_verify_blocked"));
        check(&state, &reject("not good enough"), &actor, Expect::Err("self_verify_blocked"));
    }
}

#[test]
fn custody_is_checked_before_state_and_before_the_reason() {
    // Wrong state for the call, and a blank reason: custody still answers first.
    let implementer_as_orchestrator = key(Role::Orchestrator, Some(IMPLEMENTER));
    let state = story(Implementing, Unverified);
    check(&state, &Action::ReviewComplete, &implementer_as_orchestrator, Expect::Err("self_review_blocked"));
    check(&state, &Action::Verify, &implementer_as_orchestrator, Expect::Err("self_verify_blocked"));
    check(&state, &reject("   "), &implementer_as_orchestrator, Expect::Err("self_verify_blocked"));
}

#[test]
fn the_implementer_stays_the_implementer_after_its_story_is_verified() {
    // Re-opening its own verified story by a rejection is custody too.
    let state = story(ReportedDone, Verified);
    let implementer_as_user = key(Role::User, Some(IMPLEMENTER));
    check(&state, &reject("reopen"), &implementer_as_user, Expect::Err("self_verify_blocked"));
}

#[test]
fn anyone_else_with_the_right_role_may_review_verify_and_reject() {
    let state = story(ReportedDone, Unverified);
    let others = [
        orchestrator(),
        key(Role::Orchestrator, None),
        key(Role::Orchestrator, Some(OTHER_AGENT)),
        user(),
        superadmin(),
    ];
    let facts = Facts::default();
    for actor in others {
        for action in [Action::ReviewComplete, Action::Verify, reject("AC-1 unmet")] {
            success(&facts, &state, &action, &actor);
        }
    }
}

#[test]
fn a_user_key_without_an_agent_identity_may_verify_a_story_nobody_holds() {
    // No agent id on either side is not "the same agent".
    let mut state = story(ReportedDone, Unverified);
    state.assigned_agent_id = None;
    state.reported_by_agent_id = None;
    let next = success(&Facts::default(), &state, &Action::Verify, &user());
    assert_eq!(next.verified_status, Verified);
    let next = success(&Facts::default(), &next, &reject("found a regression"), &user());
    assert_eq!(next.verified_status, Rejected);
}

#[test]
fn in_the_seed_flow_the_implementer_reports_its_own_work() {
    let next = success(&Facts::default(), &story(Implementing, Unverified), &Action::Report, &agent(IMPLEMENTER));
    assert_eq!(next.agent_status, ReportedDone);
    assert_eq!(next.reported_by_agent_id, Some(IMPLEMENTER));
}

#[test]
fn in_the_seed_flow_another_agent_may_not_report_but_the_orchestrator_may() {
    let state = story(Implementing, Unverified);
    let error = refusal(&Facts::default(), &state, &Action::Report, &agent(OTHER_AGENT));
    assert_eq!(error, DomainError::NotAssignee { action: "report" });
    assert_eq!(error.code(), "forbidden");

    let next = success(&Facts::default(), &state, &Action::Report, &orchestrator());
    assert_eq!(next.agent_status, ReportedDone);
    assert_eq!(next.reported_by_agent_id, Some(ORCHESTRATOR));
    // The orchestrator reported on the implementer's behalf; the implementer is unchanged.
    assert_eq!(next.assigned_agent_id, Some(IMPLEMENTER));
}

#[test]
fn in_the_strict_flow_the_implementer_may_not_report() {
    let strict = Facts::default().strict();
    for status in [Assigned, Implementing, ReportedDone] {
        let state = story(status, Unverified);
        // Custody first: even with the current epoch and in the wrong state.
        let facts = strict.clone().epoch(FIXTURE_EPOCH);
        check_with(&facts, &state, &Action::Report, &agent(IMPLEMENTER), Expect::Err("self_report_blocked"));
        let as_orchestrator = key(Role::Orchestrator, Some(IMPLEMENTER));
        check_with(&strict, &state, &Action::Report, &as_orchestrator, Expect::Err("self_report_blocked"));
    }
}

#[test]
fn in_the_strict_flow_a_dispatched_reviewer_or_the_orchestrator_reports_but_no_plain_agent() {
    let strict = Facts::default().strict();
    let state = story(Implementing, Unverified);
    // A plain agent key that does not hold the story cannot report it and clear its lease.
    let error = refusal(&strict, &state, &Action::Report, &agent(OTHER_AGENT));
    assert_eq!(error, DomainError::NotAssignee { action: "report" });
    for (actor, reporter) in [(reviewer_token(OTHER_AGENT), OTHER_AGENT), (orchestrator(), ORCHESTRATOR)] {
        let next = success(&strict, &state, &Action::Report, &actor);
        assert_eq!(next.agent_status, ReportedDone);
        assert_eq!(next.reported_by_agent_id, Some(reporter));
        assert_eq!(next.reported_done_at, Some(strict.now));
        assert_eq!(next.assigned_agent_id, Some(IMPLEMENTER));
        assert_eq!(next.lease_expires_at, None);
    }
}

#[test]
fn in_the_strict_flow_verify_without_a_review_is_refused() {
    let strict = Facts::default().strict();
    let state = story(ReportedDone, Unverified);
    check_with(&strict, &state, &Action::Verify, &orchestrator(), Expect::Err("review_not_conducted"));
    check_with(&strict, &state, &Action::Verify, &user(), Expect::Err("review_not_conducted"));
}

#[test]
fn in_the_strict_flow_a_review_from_before_the_report_does_not_count() {
    let strict = Facts::default().strict();
    let mut state = story(ReportedDone, Rejected);
    state.last_review_at = Some(at(REPORTED_MIN) - Duration::seconds(1));
    check_with(&strict, &state, &Action::Verify, &orchestrator(), Expect::Err("review_not_conducted"));
}

#[test]
fn in_the_strict_flow_a_review_at_or_after_the_report_lets_verify_through() {
    let strict = Facts::default().strict();
    for review in [at(REPORTED_MIN), at(REPORTED_MIN) + Duration::seconds(1), at(-1)] {
        let mut state = story(ReportedDone, Unverified);
        state.last_review_at = Some(review);
        let next = success(&strict, &state, &Action::Verify, &orchestrator());
        assert_eq!(next.verified_status, Verified);
    }
}

#[test]
fn in_the_strict_flow_a_review_without_a_report_time_does_not_count() {
    let strict = Facts::default().strict();
    let mut state = story(ReportedDone, Unverified);
    state.reported_done_at = None;
    state.last_review_at = Some(at(-1));
    check_with(&strict, &state, &Action::Verify, &orchestrator(), Expect::Err("review_not_conducted"));
}

#[test]
fn in_the_seed_flow_the_orchestrators_verify_is_the_review() {
    let state = story(ReportedDone, Unverified);
    assert_eq!(state.last_review_at, None);
    success(&Facts::default(), &state, &Action::Verify, &orchestrator());
}

#[test]
fn in_the_strict_flow_a_reject_needs_no_review() {
    let strict = Facts::default().strict();
    let next = success(&strict, &story(ReportedDone, Unverified), &reject("tests fail"), &orchestrator());
    assert_eq!(next.verified_status, Rejected);
}

#[test]
fn the_strict_flow_end_to_end_needs_a_fresh_review_every_round() {
    let mut story = Story::strict();
    story.started_by(IMPLEMENTER).does(agent(IMPLEMENTER), &Action::RequestReview);
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Report), "self_report_blocked");
    story.does(reviewer_token(OTHER_AGENT), &Action::Report);
    assert_eq!(story.refused(orchestrator(), &Action::Verify), "review_not_conducted");
    story.does(orchestrator(), &Action::ReviewComplete).does(orchestrator(), &reject("AC-3 has no test"));

    // Round two: the review of round one does not carry over. The first round's implementer
    // held the story before, so its report now is a stale claimant's write; a third agent reports.
    story.started_by(OTHER_AGENT);
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Report), "stale_claim");
    story.does(reviewer_token(REVIEWER), &Action::Report);
    assert_eq!(story.refused(orchestrator(), &Action::Verify), "review_not_conducted");
    assert_eq!(story.refused(key(Role::User, Some(OTHER_AGENT)), &Action::ReviewComplete), "self_review_blocked");
    story.does(user(), &Action::ReviewComplete).does(orchestrator(), &Action::Verify);
    assert_eq!(story.state.verified_status, Verified);
    assert_eq!(story.state.iteration_count, 1);
}

#[test]
fn a_review_from_an_earlier_round_never_counts_even_within_one_clock_tick() {
    let facts = Facts::default().strict(); // the clock does not move
    let mut state = story(ReportedDone, Unverified);
    for (action, actor) in [
        (Action::ReviewComplete, orchestrator()),
        (reject("AC-2 unmet"), orchestrator()),
        (contract(), agent(IMPLEMENTER)),
        (Action::Claim, agent(IMPLEMENTER)),
        (Action::Start, agent(IMPLEMENTER)),
        (Action::Report, reviewer_token(OTHER_AGENT)),
    ] {
        state = success(&facts, &state, &action, &actor);
    }
    check_with(&facts, &state, &Action::Verify, &orchestrator(), Expect::Err("review_not_conducted"));
}

#[test]
fn one_review_per_round_so_racing_reviewers_cannot_both_record() {
    let state = story(ReportedDone, Unverified);
    let reviewed = success(&Facts::default(), &state, &Action::ReviewComplete, &orchestrator());
    check(&reviewed, &Action::ReviewComplete, &key(Role::User, None), Expect::Err("invalid_transition"));
}

#[test]
fn a_dispatched_token_may_do_only_the_work_of_its_capacity() {
    use loopctl_core::{Actor, DispatchRole};
    let implementer = Actor { dispatched_as: Some(DispatchRole::Implementer), ..agent(IMPLEMENTER) };
    let reviewer = Actor { dispatched_as: Some(DispatchRole::Reviewer), ..agent(OTHER_AGENT) };
    let reported = story(ReportedDone, Unverified);
    check(&reported, &Action::Verify, &implementer, Expect::Err("scope_violation"));
    check(&reported, &reject("no"), &implementer, Expect::Err("scope_violation"));
    check(&reported, &Action::Verify, &reviewer, Expect::Err("scope_violation"));
    check(&story(Pending, Unverified), &contract(), &reviewer, Expect::Err("scope_violation"));
    check(&story(Contracted, Unverified), &Action::Claim, &reviewer, Expect::Err("scope_violation"));
    // The reviewer reviews, though its key's role is agent.
    success(&Facts::default(), &reported, &Action::ReviewComplete, &reviewer);
    // A reviewer token in the implementer's identity is still refused by custody.
    let sneaky = Actor { dispatched_as: Some(DispatchRole::Reviewer), ..agent(IMPLEMENTER) };
    check(&reported, &Action::ReviewComplete, &sneaky, Expect::Err("self_review_blocked"));
}

#[test]
fn in_the_strict_flow_only_a_human_backfills_a_story() {
    let strict = Facts::default().strict();
    let untouched = StoryState { claim_epoch: 0, ..story(Pending, Unverified) };
    let backfill = Action::Backfill { reason: "trust me".into() };
    let error = refusal(&strict, &untouched, &backfill, &orchestrator());
    assert!(matches!(error, DomainError::Forbidden { role: Role::Orchestrator, .. }), "{error:?}");
    assert!(error.to_string().contains("only a user"), "{error}");
    let next = success(&strict, &untouched, &backfill, &user());
    assert_eq!(next.verified_status, Verified);
    // The seed flow keeps the orchestrator's backfill.
    success(&Facts::default(), &untouched, &backfill, &orchestrator());
}
