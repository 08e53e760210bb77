//! Whole stories, told call by call: the seed flow, a rejection round, unclaim, backfill,
//! re-opening a verified story.

use chrono::Duration;
use loopctl_core::{Action, AgentStatus::*, StoryState, VerifiedStatus::*};

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
    assert_eq!(state.iteration_count, 1);

    // The old implementer is no longer the assignee: it may not touch the story's lease.
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Heartbeat), "forbidden");
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
    assert_eq!(story.state.verified_status, Unverified);
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Start), "must_contract_first");
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Claim), "must_contract_first");
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Unclaim), "invalid_transition");
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
fn nobody_unclaims_a_contracted_story_but_an_orchestrator_can_force_it_back() {
    let mut story = Story::new();
    story.does(agent(IMPLEMENTER), &contract());
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Unclaim), "forbidden");
    story.does(orchestrator(), &Action::ForceUnclaim);
    assert_eq!(story.state.agent_status, Pending);
    assert_eq!(story.state.claim_epoch, 1);
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
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Report), "stale_claim");
    story.does(orchestrator(), &Action::ReclaimExpired);
    assert_eq!(story.state.agent_status, Pending);
    assert_eq!(story.state.lease_expires_at, None);
    assert_eq!(story.state.verified_status, Unverified);
    assert_eq!(story.state.iteration_count, 0, "a reclaim is not a rejection");
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
