//! The claim fence: a claim takes a lease and a new epoch; a claimant's writes need the
//! current epoch (when sent) and a live lease; every reset raises the epoch.

use chrono::Duration;
use loopctl_core::{Action, AgentStatus::*, DomainError, Role, Settings, StoryState, VerifiedStatus::*};

use crate::support::*;

/// The claimant's writes, each with the state it is legal in.
fn claimant_writes() -> Vec<(Action, StoryState)> {
    vec![
        (Action::Start, story(Assigned, Unverified)),
        (Action::Heartbeat, story(Assigned, Unverified)),
        (Action::Heartbeat, story(Implementing, Unverified)),
        (Action::RequestReview, story(Implementing, Unverified)),
        (Action::Report, story(Implementing, Unverified)),
        (Action::Unclaim, story(Assigned, Unverified)),
        (Action::Unclaim, story(Implementing, Rejected)),
    ]
}

#[test]
fn a_claim_takes_a_lease_of_the_tenants_length_and_a_new_epoch() {
    let settings = Settings { claim_lease_seconds: 90, ..Settings::default() };
    let facts = Facts::default().settings(settings).at(at(3));
    let mut state = story(Contracted, Rejected);
    state.review_requested_at = Some(at(-200));
    let next = success(&facts, &state, &Action::Claim, &agent(OTHER_AGENT));
    assert_eq!(next.agent_status, Assigned);
    assert_eq!(next.assigned_agent_id, Some(OTHER_AGENT));
    assert_eq!(next.assigned_at, Some(at(3)));
    assert_eq!(next.claim_epoch, FIXTURE_EPOCH + 1);
    assert_eq!(next.lease_expires_at, Some(at(3) + Duration::seconds(90)));
    assert_eq!(next.review_requested_at, None, "an old review request does not carry over");
}

#[test]
fn the_default_lease_is_thirty_minutes() {
    let next = success(&Facts::default(), &story(Contracted, Unverified), &Action::Claim, &agent(OTHER_AGENT));
    assert_eq!(next.lease_expires_at, Some(t0() + Duration::minutes(30)));
}

#[test]
fn a_key_without_an_agent_identity_cannot_claim() {
    let state = story(Contracted, Unverified);
    check(&state, &Action::Claim, &key(Role::Orchestrator, None), Expect::Err("forbidden"));
    check(&state, &Action::Claim, &key(Role::Agent, None), Expect::Err("validation_failed"));
}

#[test]
fn a_claim_waits_for_dependencies() {
    let waiting = Facts::default().dependencies_unmet();
    let error = refusal(&waiting, &story(Contracted, Unverified), &Action::Claim, &agent(OTHER_AGENT));
    assert_eq!(error, DomainError::DependenciesNotMet);
    assert_eq!(error.code(), "dependencies_not_met");
    // Being uncontracted is the first thing to fix.
    check_with(
        &waiting,
        &story(Pending, Unverified),
        &Action::Claim,
        &agent(OTHER_AGENT),
        Expect::Err("must_contract_first"),
    );
    // Dependencies matter only to the claim: contract and the rest go on.
    check_with(
        &waiting,
        &story(Pending, Unverified),
        &contract(),
        &agent(OTHER_AGENT),
        Expect::Ok(StoryState { agent_status: Contracted, ..story(Pending, Unverified) }),
    );
    success(&waiting, &story(Assigned, Unverified), &Action::Start, &agent(IMPLEMENTER));
}

#[test]
fn every_claimant_write_with_a_stale_epoch_is_refused() {
    for (action, state) in claimant_writes() {
        for stale in [FIXTURE_EPOCH - 1, FIXTURE_EPOCH + 1, 0] {
            let facts = Facts::default().epoch(stale);
            let error = refusal(&facts, &state, &action, &agent(IMPLEMENTER));
            assert_eq!(error, DomainError::StaleClaim { current: FIXTURE_EPOCH }, "{}", action.name());
            assert_eq!(error.code(), "stale_claim");
        }
    }
}

#[test]
fn every_claimant_write_with_the_current_epoch_or_none_goes_through() {
    for (action, state) in claimant_writes() {
        success(&Facts::default().epoch(FIXTURE_EPOCH), &state, &action, &agent(IMPLEMENTER));
        success(&Facts::default(), &state, &action, &agent(IMPLEMENTER));
    }
}

#[test]
fn every_claimant_write_after_the_lease_ran_out_is_stale() {
    for (action, state) in claimant_writes() {
        for late in [at(LEASE_END_MIN), at(LEASE_END_MIN) + Duration::hours(5)] {
            let facts = Facts::default().at(late).epoch(FIXTURE_EPOCH);
            let error = refusal(&facts, &state, &action, &agent(IMPLEMENTER));
            assert_eq!(error.code(), "stale_claim", "{} at {late}", action.name());
        }
        // One second before the end the lease still holds.
        let just_in_time = Facts::default().at(at(LEASE_END_MIN) - Duration::seconds(1));
        success(&just_in_time, &state, &action, &agent(IMPLEMENTER));
    }
}

#[test]
fn every_claimant_write_by_someone_else_is_forbidden() {
    for (action, state) in claimant_writes() {
        for actor in [agent(OTHER_AGENT), key(Role::Agent, None), orchestrator()] {
            if action == Action::Report && actor.role == Role::Orchestrator {
                continue; // an orchestrator may report on the claimant's behalf (custody tests)
            }
            let error = refusal(&Facts::default(), &state, &action, &actor);
            assert_eq!(error.code(), "forbidden", "{}: {error}", action.name());
            assert_eq!(error.code(), "forbidden");
        }
    }
}

#[test]
fn a_reported_story_has_no_lease_to_expire() {
    let long_after = Facts::default().at(at(LEASE_END_MIN) + Duration::days(3));
    let state = story(ReportedDone, Unverified);
    assert_eq!(state.lease_expires_at, None);
    success(&long_after, &state, &Action::Unclaim, &agent(IMPLEMENTER));
    check_with(&long_after, &state, &Action::ReclaimExpired, &orchestrator(), Expect::Err("invalid_transition"));
}

#[test]
fn a_heartbeat_pushes_the_lease_out_so_the_story_is_not_reclaimed() {
    let mut story = Story::new();
    story.started_by(IMPLEMENTER);
    let first_end = story.state.lease_expires_at.expect("a claimed story has a lease");
    story.wait(Duration::minutes(20)).does(agent(IMPLEMENTER), &Action::Heartbeat);
    let renewed = story.state.lease_expires_at.expect("still leased");
    assert_eq!(renewed, story.now() - Duration::minutes(1) + Duration::minutes(30));
    assert!(renewed > first_end);

    story.facts.now = first_end;
    assert_eq!(story.refused(orchestrator(), &Action::ReclaimExpired), "invalid_transition");
    story.facts.now = renewed;
    story.does(orchestrator(), &Action::ReclaimExpired);
    assert_eq!(story.state.agent_status, Pending);
}

#[test]
fn start_also_renews_the_lease() {
    let facts = Facts::default().at(at(7));
    let next = success(&facts, &story(Assigned, Unverified), &Action::Start, &agent(IMPLEMENTER));
    assert_eq!(next.lease_expires_at, Some(at(7) + Duration::minutes(30)));
}

#[test]
fn the_old_holder_is_fenced_off_after_its_lease_is_reclaimed() {
    let mut story = Story::new();
    story.does(agent(IMPLEMENTER), &contract()).does(agent(IMPLEMENTER), &Action::Claim);
    let old_epoch = story.state.claim_epoch;
    story.wait(Duration::hours(1)).does(orchestrator(), &Action::ReclaimExpired);
    story.does(agent(OTHER_AGENT), &contract()).does(agent(OTHER_AGENT), &Action::Claim);
    let new_epoch = story.state.claim_epoch;
    assert_eq!(new_epoch, old_epoch + 2, "one for the reclaim, one for the new claim");

    story.facts.claim_epoch = Some(old_epoch);
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Start), "stale_claim");
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Heartbeat), "stale_claim");
    story.facts.claim_epoch = None;
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Start), "forbidden");
    story.facts.claim_epoch = Some(new_epoch);
    story.does(agent(OTHER_AGENT), &Action::Start);
    assert_eq!(story.state.assigned_agent_id, Some(OTHER_AGENT));
}

#[test]
fn the_old_holder_is_fenced_off_after_a_force_unclaim() {
    let mut story = Story::new();
    story.started_by(IMPLEMENTER);
    let epoch = story.state.claim_epoch;
    story.does(orchestrator(), &Action::ForceUnclaim);
    story.facts.claim_epoch = Some(epoch);
    // The old epoch is named first: the holder learns it was fenced off, not a state puzzle.
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Report), "stale_claim");
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Start), "stale_claim");
    story.does(agent(IMPLEMENTER), &contract()).does(agent(IMPLEMENTER), &Action::Claim);
    // Even the same agent, claiming again, must use the new epoch.
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Start), "stale_claim");
}

#[test]
fn each_reset_and_each_claim_raises_the_epoch_by_exactly_one() {
    let facts = Facts::default();
    let late = Facts::default().at(at(LEASE_END_MIN));
    let cases = [
        (&facts, story(Contracted, Unverified), Action::Claim, agent(OTHER_AGENT)),
        (&facts, story(Assigned, Unverified), Action::Unclaim, agent(IMPLEMENTER)),
        (&facts, story(ReportedDone, Unverified), Action::Unclaim, agent(IMPLEMENTER)),
        (&facts, story(Contracted, Unverified), Action::ForceUnclaim, orchestrator()),
        (&facts, story(Implementing, Unverified), Action::ForceUnclaim, user()),
        (&facts, story(ReportedDone, Unverified), reject("no"), orchestrator()),
        (&facts, story(ReportedDone, Verified), reject("regressed"), user()),
        (&late, story(Assigned, Unverified), Action::ReclaimExpired, orchestrator()),
        (&late, story(Implementing, Unverified), Action::ReclaimExpired, orchestrator()),
    ];
    for (facts, state, action, actor) in cases {
        let next = success(facts, &state, &action, &actor);
        assert_eq!(next.claim_epoch, state.claim_epoch + 1, "{}", action.name());
    }
}

#[test]
fn calls_that_neither_claim_nor_reset_leave_the_epoch_alone() {
    let facts = Facts::default();
    let mut escalated = story(Pending, Rejected);
    escalated.escalated = true;
    escalated.escalated_at = Some(at(-3));
    let cases = [
        (story(Pending, Unverified), contract(), agent(OTHER_AGENT)),
        (story(Assigned, Unverified), Action::Start, agent(IMPLEMENTER)),
        (story(Implementing, Unverified), Action::Heartbeat, agent(IMPLEMENTER)),
        (story(Implementing, Unverified), Action::RequestReview, agent(IMPLEMENTER)),
        (story(Implementing, Unverified), Action::Report, agent(IMPLEMENTER)),
        (story(ReportedDone, Unverified), Action::ReviewComplete, orchestrator()),
        (story(ReportedDone, Unverified), Action::Verify, orchestrator()),
        (StoryState { claim_epoch: 0, ..story(Pending, Unverified) }, backfill("done"), orchestrator()),
        (story(Pending, Unverified), Action::ForceUnclaim, orchestrator()),
        (escalated, Action::ClearEscalation, user()),
    ];
    for (state, action, actor) in cases {
        let next = success(&facts, &state, &action, &actor);
        assert_eq!(next.claim_epoch, state.claim_epoch, "{}", action.name());
    }
}

#[test]
fn a_stale_claim_message_names_the_current_epoch() {
    let facts = Facts::default().epoch(1);
    let error = refusal(&facts, &story(Implementing, Unverified), &Action::Heartbeat, &agent(IMPLEMENTER));
    assert!(error.to_string().contains(&format!("current claim epoch {FIXTURE_EPOCH}")), "{error}");
}
