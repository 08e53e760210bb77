//! Whole stories, told call by call: the seed flow, a rejection round, unclaim, backfill,
//! re-opening a verified story, a late holder finishing its work, an abandoned claim taken
//! over or reclaimed.

use chrono::Duration;
use loopctl_core::{Action, AgentStatus::*, DomainError, Role, StoryState, VerifiedStatus::*};

use crate::support::*;

#[test]
fn the_seed_flow_from_pending_to_verified() {
    let mut story = Story::new();
    story.does(agent(IMPLEMENTER), &contract());
    assert_eq!(story.state.agent_status, Contracted);

    let claimed_at = story.now();
    story.does(agent(IMPLEMENTER), &Action::Claim);
    assert_eq!(story.state.agent_status, Assigned);
    assert_eq!(story.state.assigned_agent_id, Some(IMPLEMENTER));
    assert_eq!(story.state.assigned_at, Some(claimed_at));
    assert_eq!(story.state.claim_epoch, 1);

    story.facts.claim_epoch = Some(1); // the CLI remembers the epoch from `claim`
    story
        .does(agent(IMPLEMENTER), &Action::Start)
        .wait(Duration::minutes(20))
        .does(agent(IMPLEMENTER), &Action::Heartbeat)
        .wait(Duration::minutes(20));
    let reported_at = story.now();
    story.does(agent(IMPLEMENTER), &Action::Report);
    assert_eq!(story.state.agent_status, ReportedDone);
    assert_eq!(story.state.reported_done_at, Some(reported_at));
    assert_eq!(story.state.lease_expires_at, None);

    let verified_at = story.now();
    story.does(orchestrator(), &Action::Verify);
    let done = &story.state;
    assert_eq!((done.agent_status, done.verified_status), (ReportedDone, Verified));
    assert_eq!(done.verified_at, Some(verified_at));
    assert_eq!(done.assigned_agent_id, Some(IMPLEMENTER), "the record keeps who implemented it");
    assert_eq!(done.claim_epoch, 1);
    assert_eq!(done.iteration_count, 0);

    // Done is done: nothing on the agent side moves a verified story.
    for action in [contract(), Action::Claim, Action::Start, Action::Report, Action::Unclaim] {
        let code = story.refused(agent(IMPLEMENTER), &action);
        assert_eq!(code, "invalid_transition", "{}", action.name());
    }
    assert_eq!(story.refused(orchestrator(), &Action::Verify), "invalid_transition");
    assert_eq!(story.refused(orchestrator(), &Action::ForceUnclaim), "invalid_transition");
    assert_eq!(story.refused(orchestrator(), &Action::ReviewComplete), "invalid_transition");
}

#[test]
fn a_rejected_story_goes_back_to_the_queue_and_a_fresh_agent_finishes_it() {
    let mut story = Story::new();
    story.implemented_by(IMPLEMENTER);
    let rejected_at = story.now();
    story.does(orchestrator(), &reject("  AC-2 has no test  "));
    let state = story.state.clone();
    assert_eq!((state.agent_status, state.verified_status), (Pending, Rejected));
    assert_eq!(state.rejection_reason.as_deref(), Some("AC-2 has no test"));
    assert_eq!(state.rejected_at, Some(rejected_at));
    assert_eq!((state.assigned_agent_id, state.assigned_at, state.lease_expires_at), (None, None, None));
    assert_eq!(state.reported_done_at, None);
    assert_eq!(state.reported_by_agent_id, Some(IMPLEMENTER), "who reported last is kept");
    assert_eq!(state.previous_assignee_agent_id, Some(IMPLEMENTER), "who held it last is kept");
    assert_eq!(state.iteration_count, 1);

    // The old implementer is no longer the assignee: its claim is stale, it may not touch the lease.
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Heartbeat), "stale_claim");
    story.implemented_by(OTHER_AGENT).does(user(), &Action::Verify);
    let done = &story.state;
    assert_eq!(done.verified_status, Verified);
    assert_eq!((done.rejected_at, done.rejection_reason.as_deref()), (None, None));
    assert_eq!(done.iteration_count, 1, "a verify is not an iteration");
}

#[test]
fn an_agent_unclaims_and_the_story_must_be_contracted_again() {
    let mut story = Story::new();
    story.started_by(IMPLEMENTER).does(agent(IMPLEMENTER), &Action::Unclaim);
    assert_eq!(story.state.agent_status, Pending);
    assert_eq!(story.state.assigned_agent_id, None);
    assert_eq!(story.state.previous_assignee_agent_id, Some(IMPLEMENTER));
    assert_eq!(story.state.verified_status, Unverified);
    // Its claim is over: its own late writes are stale, its next step is a new contract.
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Start), "stale_claim");
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Unclaim), "stale_claim");
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Claim), "must_contract_first");
    assert_eq!(story.refused(agent(OTHER_AGENT), &Action::Start), "must_contract_first");
    assert_eq!(story.refused(agent(OTHER_AGENT), &Action::Unclaim), "invalid_transition");
    // Contracting it again makes it the contractor, which may give the story back.
    story.does(agent(IMPLEMENTER), &contract());
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Start), "must_claim_first");
    story.does(agent(IMPLEMENTER), &Action::Unclaim);
    assert_eq!(story.state.agent_status, Pending);
    assert_eq!(story.state.claim_epoch, 2, "the claim and its unclaim; giving a contract back moves nothing");
    assert_eq!(story.state.previous_assignee_agent_id, Some(IMPLEMENTER));
}

#[test]
fn an_agent_may_take_back_its_report_before_the_verdict() {
    let mut story = Story::new();
    story.implemented_by(IMPLEMENTER).does(agent(IMPLEMENTER), &Action::Unclaim);
    assert_eq!(story.state.agent_status, Pending);
    assert_eq!(story.state.reported_done_at, None);
    assert_eq!(story.refused(orchestrator(), &Action::Verify), "invalid_transition");
}

#[test]
fn the_contractor_gives_a_contracted_story_back() {
    let mut story = Story::new();
    story.does(agent(IMPLEMENTER), &contract()).does(agent(IMPLEMENTER), &Action::Unclaim);
    // As if it had never been contracted: no claim ended, so no epoch moved.
    assert_eq!(story.state, StoryState::default());
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Claim), "must_contract_first");
    // An orchestrator that contracted it gives it back the same way.
    story.does(orchestrator(), &Action::Contract { story_title: None, ac_count: None });
    story.does(orchestrator(), &Action::Unclaim);
    assert_eq!(story.state, StoryState::default());
    // A story given back can be backfilled: it was never claimed here.
    story.does(orchestrator(), &backfill("shipped before loopctl"));
    assert_eq!(story.state.verified_status, Verified);
}

#[test]
fn nobody_else_unclaims_a_contracted_story_but_an_orchestrator_can_force_it_back() {
    let mut story = Story::new();
    story.does(agent(IMPLEMENTER), &contract());
    for actor in [agent(OTHER_AGENT), orchestrator(), key(Role::Agent, None)] {
        let error = refusal(&story.facts, &story.state, &Action::Unclaim, &actor);
        assert_eq!(error, DomainError::NotContractor, "{actor:?}");
        assert_eq!(error.code(), "forbidden");
        assert!(error.to_string().contains("force-unclaim"), "{error}");
    }
    story.does(orchestrator(), &Action::ForceUnclaim);
    assert_eq!(story.state.agent_status, Pending);
    assert_eq!((story.state.contracted_by_agent_id, story.state.contracted_at), (None, None));
    assert_eq!(story.state.claim_epoch, 1);
    // Once back in the queue the former contractor holds nothing to give back.
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Unclaim), "invalid_transition");
}

#[test]
fn a_force_unclaim_of_a_pending_story_changes_nothing() {
    let state = story(Pending, Rejected);
    check(&state, &Action::ForceUnclaim, &user(), Expect::Ok(state.clone()));
}

#[test]
fn a_verified_story_can_be_reopened_by_a_rejection() {
    let mut story = Story::new();
    story.implemented_by(IMPLEMENTER).does(orchestrator(), &Action::Verify);
    story.does(user(), &reject("broke the build after merge"));
    let state = &story.state;
    assert_eq!((state.agent_status, state.verified_status), (Pending, Rejected));
    assert_eq!(state.verified_at, None);
    assert_eq!(state.iteration_count, 1);
    story.implemented_by(OTHER_AGENT).does(orchestrator(), &Action::Verify);
    assert_eq!(story.state.verified_status, Verified);
}

#[test]
fn a_story_done_outside_loopctl_is_backfilled_as_verified() {
    let mut story = Story::new();
    let when = story.now();
    story.does(orchestrator(), &backfill("shipped in PR 41 before we used loopctl"));
    assert_eq!(
        story.state,
        StoryState {
            agent_status: ReportedDone,
            verified_status: Verified,
            reported_done_at: Some(when),
            reported_by_agent_id: Some(ORCHESTRATOR),
            verified_at: Some(when),
            verified_by_agent_id: Some(ORCHESTRATOR),
            ..StoryState::default()
        }
    );
    assert_eq!(story.refused(orchestrator(), &backfill("again")), "invalid_transition");
    // A backfilled story can still be rejected if it turns out not to be done.
    story.does(orchestrator(), &reject("the PR was reverted"));
    assert_eq!((story.state.agent_status, story.state.verified_status), (Pending, Rejected));
    assert_eq!(story.refused(orchestrator(), &backfill("re-merged")), "invalid_transition");
}

#[test]
fn a_story_already_in_the_loop_cannot_be_backfilled() {
    let mut story = Story::new();
    story.does(agent(IMPLEMENTER), &contract());
    assert_eq!(story.refused(orchestrator(), &backfill("done by hand")), "invalid_transition");
    story.does(agent(IMPLEMENTER), &Action::Claim);
    assert_eq!(story.refused(user(), &backfill("done by hand")), "invalid_transition");
}

#[test]
fn an_abandoned_claim_is_reclaimed_after_its_lease() {
    let mut story = Story::new();
    story.started_by(IMPLEMENTER);
    let lease_end = story.state.lease_expires_at.expect("a lease");
    assert_eq!(story.refused(orchestrator(), &Action::ReclaimExpired), "invalid_transition");
    story.facts.now = lease_end;
    story.does(orchestrator(), &Action::MarkStale).does(orchestrator(), &Action::ReclaimExpired);
    assert_eq!(story.state.agent_status, Pending);
    assert_eq!(story.state.lease_expires_at, None);
    assert_eq!(story.state.stale_since, None);
    assert_eq!(story.state.previous_assignee_agent_id, Some(IMPLEMENTER));
    assert_eq!(story.state.verified_status, Unverified);
    assert_eq!(story.state.iteration_count, 0, "a reclaim is not a rejection");
    // Reclaimed, the old holder's report comes too late.
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Report), "stale_claim");
}

#[test]
fn a_late_holder_finishes_its_work_while_nobody_took_the_story_over() {
    let mut story = Story::new();
    story.started_by(IMPLEMENTER);
    let epoch = story.state.claim_epoch;
    story.facts.claim_epoch = Some(epoch);
    let lease_end = story.state.lease_expires_at.expect("a lease");
    story.facts.now = lease_end + Duration::minutes(45);
    story.does(orchestrator(), &Action::MarkStale);
    assert!(story.state.stale_since.is_some());
    // The holder was slow, not gone: its writes still count.
    story.does(agent(IMPLEMENTER), &Action::RequestReview);
    assert_eq!(story.state.stale_since, None);
    story.wait(Duration::hours(2)).does(agent(IMPLEMENTER), &Action::Report);
    assert_eq!(story.state.agent_status, ReportedDone);
    assert_eq!(story.state.lease_expires_at, None);
    assert_eq!(story.state.claim_epoch, epoch, "nobody was fenced off");
    story.does(orchestrator(), &Action::Verify);
    assert_eq!(story.state.verified_status, Verified);
}

#[test]
fn another_agent_takes_over_an_abandoned_claim_and_finishes_it() {
    let mut story = Story::new();
    story.started_by(IMPLEMENTER);
    let old_epoch = story.state.claim_epoch;
    let lease_end = story.state.lease_expires_at.expect("a lease");
    // While the lease lives, the claim is the holder's.
    assert_eq!(story.refused(agent(OTHER_AGENT), &Action::Claim), "invalid_transition");
    assert_eq!(story.refused(agent(OTHER_AGENT), &contract()), "invalid_transition");
    story.facts.now = lease_end;
    story.does(orchestrator(), &Action::MarkStale).does(agent(OTHER_AGENT), &Action::Claim);
    let state = &story.state;
    assert_eq!((state.agent_status, state.assigned_agent_id), (Assigned, Some(OTHER_AGENT)));
    assert_eq!(state.claim_epoch, old_epoch + 1);
    assert_eq!(state.previous_assignee_agent_id, Some(IMPLEMENTER));
    assert_eq!(state.stale_since, None);
    // The old holder wakes up: stale, with or without the epoch it held.
    story.facts.claim_epoch = Some(old_epoch);
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Heartbeat), "stale_claim");
    story.facts.claim_epoch = None;
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Start), "stale_claim");
    // The new holder starts over and finishes.
    story.does(agent(OTHER_AGENT), &Action::Start).does(agent(OTHER_AGENT), &Action::Report);
    story.does(orchestrator(), &Action::Verify);
    assert_eq!(story.state.verified_status, Verified);
    assert_eq!(story.state.reported_by_agent_id, Some(OTHER_AGENT));
}

#[test]
fn a_review_request_is_recorded_and_forgotten_at_the_next_claim() {
    let mut story = Story::new();
    story.started_by(IMPLEMENTER);
    let asked_at = story.now();
    story.does(agent(IMPLEMENTER), &Action::RequestReview);
    assert_eq!(story.state.review_requested_at, Some(asked_at));
    assert_eq!(story.state.agent_status, Implementing);
    story.does(agent(IMPLEMENTER), &Action::Unclaim);
    assert_eq!(story.state.review_requested_at, None);
}
