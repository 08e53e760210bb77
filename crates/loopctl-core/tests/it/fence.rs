//! The claim fence: a claim takes a lease and a new epoch; a claimant's writes need the
//! current epoch (when sent) and that the caller still holds the story. An expired lease alone
//! fences nobody off: it lets someone else take the story over, and only that (or a reset)
//! moves the epoch. A former holder's late writes are stale, with or without an epoch; every
//! reset raises the epoch.

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
    assert_eq!((next.contracted_by_agent_id, next.contracted_at), (None, None), "the contract is used up");
    assert_eq!(next.stale_since, None);
    assert_eq!(next.previous_assignee_agent_id, None, "nobody held it before");
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
    // A takeover of an abandoned claim waits the same way.
    let late_and_waiting = waiting.clone().at(at(LEASE_END_MIN));
    let error = refusal(&late_and_waiting, &story(Implementing, Unverified), &Action::Claim, &agent(OTHER_AGENT));
    assert_eq!(error, DomainError::DependenciesNotMet);
    // Dependencies hold back taking a story (contract and claim), not the holder's work.
    check_with(
        &waiting,
        &story(Pending, Unverified),
        &contract(),
        &agent(OTHER_AGENT),
        Expect::Refused(DomainError::DependenciesNotMet),
    );
    success(&waiting, &story(Assigned, Unverified), &Action::Start, &agent(IMPLEMENTER));
    success(&waiting, &story(Implementing, Unverified), &Action::Heartbeat, &agent(IMPLEMENTER));
    success(&waiting, &story(Implementing, Unverified), &Action::Report, &agent(IMPLEMENTER));
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
fn every_claimant_write_after_the_lease_ran_out_still_counts_while_nobody_took_over() {
    for (action, state) in claimant_writes() {
        // The sweeper may have marked the claim stale; that changes nothing for the holder.
        let marked = StoryState { stale_since: Some(at(LEASE_END_MIN)), ..state.clone() };
        for fixture in [&state, &marked] {
            for late in [at(LEASE_END_MIN), at(LEASE_END_MIN) + Duration::hours(5)] {
                for facts in [Facts::default().at(late).epoch(FIXTURE_EPOCH), Facts::default().at(late)] {
                    let next = success(&facts, fixture, &action, &agent(IMPLEMENTER));
                    // The same outcome as while the lease lived, at the same moment.
                    let alive = StoryState { lease_expires_at: Some(late + Duration::minutes(1)), ..fixture.clone() };
                    let next_alive = success(&facts, &alive, &action, &agent(IMPLEMENTER));
                    assert_eq!(next, next_alive, "{} at {late}", action.name());
                    assert_eq!(next.stale_since, None, "{}: the holder wrote again", action.name());
                    match action {
                        Action::Start | Action::Heartbeat | Action::RequestReview => {
                            assert_eq!(next.lease_expires_at, Some(late + Duration::minutes(30)), "{}", action.name());
                            assert_eq!(next.claim_epoch, FIXTURE_EPOCH);
                            assert_eq!(next.assigned_agent_id, Some(IMPLEMENTER));
                        }
                        Action::Report => {
                            assert_eq!(next.agent_status, ReportedDone);
                            assert_eq!(next.lease_expires_at, None);
                        }
                        Action::Unclaim => assert_eq!(next.agent_status, Pending),
                        _ => unreachable!("not a claimant write: {action:?}"),
                    }
                }
            }
        }
    }
}

#[test]
fn after_a_takeover_the_late_holder_is_stale_with_or_without_its_epoch() {
    let late = Facts::default().at(at(LEASE_END_MIN) + Duration::minutes(1));
    for (action, state) in claimant_writes() {
        let by_claim = success(&late, &state, &Action::Claim, &agent(OTHER_AGENT));
        let by_contract = success(&late, &state, &contract(), &agent(OTHER_AGENT));
        for taken in [by_claim, by_contract] {
            assert_eq!(taken.claim_epoch, FIXTURE_EPOCH + 1, "a takeover moves the epoch");
            assert_eq!(taken.previous_assignee_agent_id, Some(IMPLEMENTER));
            for facts in [late.clone().epoch(FIXTURE_EPOCH), late.clone()] {
                let error = refusal(&facts, &taken, &action, &agent(IMPLEMENTER));
                assert_eq!(
                    error,
                    DomainError::StaleClaim { current: FIXTURE_EPOCH + 1 },
                    "{} on {}",
                    action.name(),
                    taken.agent_status
                );
            }
        }
    }
}

#[test]
fn a_former_holder_is_stale_but_an_agent_that_never_held_the_story_is_forbidden() {
    let late = Facts::default().at(at(LEASE_END_MIN));
    // Every way a claim ends without its holder: reclaimed, forced back, rejected, taken over.
    let endings = [
        success(&late, &story(Implementing, Unverified), &Action::ReclaimExpired, &orchestrator()),
        success(&late, &story(Implementing, Unverified), &Action::ForceUnclaim, &user()),
        success(&late, &story(ReportedDone, Unverified), &reject("AC-1 unmet"), &orchestrator()),
        success(&late, &story(Implementing, Unverified), &Action::Claim, &agent(OTHER_AGENT)),
    ];
    for ended in endings {
        assert_eq!(ended.previous_assignee_agent_id, Some(IMPLEMENTER));
        for action in [Action::Start, Action::Heartbeat, Action::RequestReview, Action::Report, Action::Unclaim] {
            let error = refusal(&late, &ended, &action, &agent(IMPLEMENTER));
            assert_eq!(error, DomainError::StaleClaim { current: ended.claim_epoch }, "{}", action.name());
            // The stale answer comes before anything about the story's new state, which is
            // what an agent that never held it is told about.
            if ended.agent_status == Pending {
                let never_held = refusal(&late, &ended, &action, &agent(REVIEWER)).code();
                let expected = match action {
                    Action::Start => "must_contract_first",
                    Action::Heartbeat | Action::RequestReview => "forbidden",
                    Action::Report => "must_claim_first",
                    _ => "invalid_transition",
                };
                assert_eq!(never_held, expected, "{} by an agent that never held it", action.name());
            }
        }
    }
    // On a story someone else now holds, an agent that never held it is forbidden.
    let taken = success(&late, &story(Assigned, Unverified), &Action::Claim, &agent(OTHER_AGENT));
    for action in [Action::Start, Action::Heartbeat, Action::RequestReview, Action::Report, Action::Unclaim] {
        let error = refusal(&late, &taken, &action, &agent(REVIEWER));
        assert_eq!(error, DomainError::NotAssignee { action: action.name() }, "{}", action.name());
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
            // Refused for the role where the role may not make the call at all, else as not the
            // claimant (an orchestrator may unclaim only a contract of its own).
            if action.allowed_roles().contains(&actor.role) {
                assert_eq!(error, DomainError::NotAssignee { action: action.name() }, "{}: {error}", action.name());
            } else {
                assert!(matches!(error, DomainError::Forbidden { .. }), "{}: {error}", action.name());
            }
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
    check_with(&long_after, &state, &Action::MarkStale, &orchestrator(), Expect::Err("invalid_transition"));
    check_with(&long_after, &state, &Action::Claim, &agent(OTHER_AGENT), Expect::Err("invalid_transition"));
    check_with(&long_after, &state, &contract(), &agent(OTHER_AGENT), Expect::Err("invalid_transition"));
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
fn a_review_request_also_renews_the_lease() {
    let facts = Facts::default().at(at(8));
    let next = success(&facts, &story(Implementing, Unverified), &Action::RequestReview, &agent(IMPLEMENTER));
    assert_eq!(next.lease_expires_at, Some(at(8) + Duration::minutes(30)));
    assert_eq!(next.review_requested_at, Some(at(8)));
}

#[test]
fn the_sweepers_stale_mark_is_announced_once_and_cleared_when_the_holder_writes_again() {
    let mut story = Story::new();
    story.started_by(IMPLEMENTER);
    let lease_end = story.state.lease_expires_at.expect("a lease");
    story.facts.now = lease_end - Duration::seconds(1);
    assert_eq!(story.refused(orchestrator(), &Action::MarkStale), "invalid_transition");
    story.facts.now = lease_end;
    let before = story.state.clone();
    story.does(orchestrator(), &Action::MarkStale);
    assert_eq!(story.state, StoryState { stale_since: Some(lease_end), ..before }, "a mark moves nothing else");
    assert_eq!(story.refused(user(), &Action::MarkStale), "invalid_transition");
    // The holder comes back: the mark is gone, the lease runs again, and the story stays its own.
    let back_at = story.now();
    story.does(agent(IMPLEMENTER), &Action::Heartbeat);
    assert_eq!(story.state.stale_since, None);
    assert_eq!(story.state.lease_expires_at, Some(back_at + Duration::minutes(30)));
    assert_eq!(story.state.assigned_agent_id, Some(IMPLEMENTER));
    assert_eq!(story.refused(orchestrator(), &Action::ReclaimExpired), "invalid_transition");
    // Its next expiry is announced again.
    story.facts.now = back_at + Duration::minutes(30);
    story.does(superadmin(), &Action::MarkStale);
    assert_eq!(story.state.stale_since, Some(back_at + Duration::minutes(30)));
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
    // Without an epoch too: the story remembers who held it last.
    story.facts.claim_epoch = None;
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Start), "stale_claim");
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::Report), "stale_claim");
    // An agent that never held it is simply not the assignee.
    assert_eq!(story.refused(agent(REVIEWER), &Action::Start), "forbidden");
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
        (&late, story(Assigned, Unverified), Action::Claim, agent(OTHER_AGENT)),
        (&late, story(Implementing, Unverified), Action::Claim, agent(IMPLEMENTER)),
        (&late, story(Implementing, Unverified), contract(), agent(OTHER_AGENT)),
    ];
    for (facts, state, action, actor) in cases {
        let next = success(facts, &state, &action, &actor);
        assert_eq!(next.claim_epoch, state.claim_epoch + 1, "{}", action.name());
    }
}

#[test]
fn calls_that_neither_claim_nor_reset_leave_the_epoch_alone() {
    let facts = Facts::default();
    let late = Facts::default().at(at(LEASE_END_MIN));
    let mut escalated = story(Pending, Rejected);
    escalated.escalated = true;
    escalated.escalated_at = Some(at(-3));
    for (state, action, actor) in [
        (story(Implementing, Unverified), Action::MarkStale, orchestrator()),
        (story(Implementing, Unverified), Action::Heartbeat, agent(IMPLEMENTER)),
        (story(Implementing, Unverified), Action::Report, agent(IMPLEMENTER)),
        (StoryState { contracted_at: None, ..story(Contracted, Unverified) }, contract(), agent(OTHER_AGENT)),
    ] {
        // At the lease's end: a mark, a late holder's writes, a contract over a stale one.
        let next = success(&late, &state, &action, &actor);
        assert_eq!(next.claim_epoch, state.claim_epoch, "late {}", action.name());
    }
    let cases = [
        (story(Pending, Unverified), contract(), agent(OTHER_AGENT)),
        (story(Contracted, Unverified), contract(), agent(IMPLEMENTER)),
        // A contract given back: nobody held a claim, nobody is fenced off.
        (story(Contracted, Unverified), Action::Unclaim, agent(IMPLEMENTER)),
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

#[test]
fn the_story_state_reads_its_own_lease_and_contract() {
    let settings = Settings::default(); // a 30-minute lease
    // lease_expired: claimed, and the lease ends at or before now.
    for status in [Assigned, Implementing] {
        let state = story(status, Unverified);
        assert!(!state.lease_expired(at(LEASE_END_MIN) - Duration::seconds(1)), "{status}");
        assert!(state.lease_expired(at(LEASE_END_MIN)), "{status}: ending now is expired");
        assert!(state.lease_expired(at(LEASE_END_MIN) + Duration::days(1)), "{status}");
        let unleased = StoryState { lease_expires_at: None, ..state };
        assert!(!unleased.lease_expired(at(LEASE_END_MIN) + Duration::days(1)), "{status} without a lease");
    }
    // A lease left on a story not in flight expires nothing.
    for status in [Pending, Contracted, ReportedDone] {
        let state = StoryState { lease_expires_at: Some(at(LEASE_END_MIN)), ..story(status, Unverified) };
        assert!(!state.lease_expired(at(LEASE_END_MIN) + Duration::days(1)), "{status}");
    }

    // contract_stale: contracted, and unclaimed for a whole lease (or no time on record).
    let contracted = story(Contracted, Unverified);
    let stale_at = at(CONTRACTED_MIN) + Duration::minutes(30);
    assert!(!contracted.contract_stale(stale_at - Duration::seconds(1), &settings));
    assert!(contracted.contract_stale(stale_at, &settings));
    let short = Settings { claim_lease_seconds: 60, ..Settings::default() };
    assert!(contracted.contract_stale(at(CONTRACTED_MIN + 1), &short), "the tenant's lease length counts");
    assert!(StoryState { contracted_at: None, ..contracted.clone() }.contract_stale(t0(), &settings));
    for status in [Pending, Assigned, Implementing, ReportedDone] {
        let state = StoryState { contracted_at: Some(at(-600)), ..story(status, Unverified) };
        assert!(!state.contract_stale(t0(), &settings), "{status} is no contract");
    }

    // is_contractor: the identity that contracted it, while it is contracted.
    assert!(contracted.is_contractor(Some(IMPLEMENTER)));
    assert!(!contracted.is_contractor(Some(OTHER_AGENT)));
    assert!(!contracted.is_contractor(None));
    let by_nobody = StoryState { contracted_by_agent_id: None, ..contracted.clone() };
    assert!(!by_nobody.is_contractor(None), "no identity is nobody's contractor");
    let claimed = StoryState { contracted_by_agent_id: Some(IMPLEMENTER), ..story(Assigned, Unverified) };
    assert!(!claimed.is_contractor(Some(IMPLEMENTER)), "a claimed story has no contractor");
}
