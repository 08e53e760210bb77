//! The contract: an agent acknowledges the story's title and its number of acceptance
//! criteria; a mismatch is refused; an orchestrator may contract without them. The contract
//! names its contractor and time; it waits for dependencies; only its contractor renews it
//! while it is live; contracting a claim whose lease ran out takes the story over.

use chrono::Duration;
use loopctl_core::{Action, AgentStatus::*, DomainError, Role, Settings, StoryState, VerifiedStatus::*};
use uuid::Uuid;

use crate::support::*;

fn contract_with(title: Option<&str>, ac_count: Option<usize>) -> Action {
    Action::Contract { story_title: title.map(str::to_string), ac_count }
}

/// A fresh story contracted at `t0` by `by`.
fn contracted_by(by: Option<Uuid>) -> StoryState {
    StoryState {
        agent_status: Contracted,
        contracted_by_agent_id: by,
        contracted_at: Some(t0()),
        ..StoryState::default()
    }
}

#[test]
fn an_agent_that_read_the_story_contracts_it() {
    let next = success(&Facts::default(), &StoryState::default(), &contract(), &agent(IMPLEMENTER));
    assert_eq!(next, contracted_by(Some(IMPLEMENTER)));
    assert_eq!(next.assigned_agent_id, None, "a contract assigns nobody");
    assert_eq!(next.contracted_by_agent_id, Some(IMPLEMENTER), "it names its contractor");
    assert_eq!(next.contracted_at, Some(t0()));
}

#[test]
fn surrounding_whitespace_in_either_title_does_not_matter() {
    let facts = Facts { story_title: format!("  {TITLE}\n"), ..Facts::default() };
    let action = contract_with(Some(&format!("\t{TITLE} ")), Some(AC_COUNT));
    let expected = Expect::Ok(contracted_by(Some(IMPLEMENTER)));
    check_with(&facts, &StoryState::default(), &action, &agent(IMPLEMENTER), expected);
}

#[test]
fn a_different_title_is_a_contract_mismatch() {
    for wrong in ["Logout page", "login page", "Login  page", ""] {
        let error = refusal(
            &Facts::default(),
            &StoryState::default(),
            &contract_with(Some(wrong), Some(AC_COUNT)),
            &agent(IMPLEMENTER),
        );
        assert_eq!(error, DomainError::ContractTitleMismatch { expected: TITLE.to_string() }, "title {wrong:?}");
        assert_eq!(error.code(), "contract_mismatch");
    }
}

#[test]
fn a_different_number_of_acceptance_criteria_is_a_contract_mismatch() {
    for wrong in [0, AC_COUNT - 1, AC_COUNT + 1, usize::MAX] {
        let error = refusal(
            &Facts::default(),
            &StoryState::default(),
            &contract_with(Some(TITLE), Some(wrong)),
            &agent(IMPLEMENTER),
        );
        assert_eq!(error, DomainError::ContractMismatch { expected: AC_COUNT, provided: wrong });
        assert_eq!(error.code(), "contract_mismatch");
    }
}

#[test]
fn a_story_without_acceptance_criteria_is_contracted_with_zero() {
    let facts = Facts { ac_count: 0, ..Facts::default() };
    let action = contract_with(Some(TITLE), Some(0));
    let expected = Expect::Ok(contracted_by(Some(IMPLEMENTER)));
    check_with(&facts, &StoryState::default(), &action, &agent(IMPLEMENTER), expected);
}

#[test]
fn an_agent_must_send_both_title_and_count() {
    for action in [contract_with(None, Some(AC_COUNT)), contract_with(Some(TITLE), None), contract_with(None, None)] {
        let error = refusal(&Facts::default(), &StoryState::default(), &action, &agent(IMPLEMENTER));
        assert_eq!(error.code(), "validation_failed", "{action:?}");
        assert!(error.to_string().contains("story_title and ac_count"), "{error}");
    }
}

#[test]
fn an_orchestrator_may_omit_the_title_the_count_or_both() {
    for action in
        [contract_with(None, None), contract_with(None, Some(AC_COUNT)), contract_with(Some(TITLE), None), contract()]
    {
        check(&StoryState::default(), &action, &orchestrator(), Expect::Ok(contracted_by(Some(ORCHESTRATOR))));
    }
    // An orchestrator key without an agent identity too: its contract names no contractor.
    check(
        &StoryState::default(),
        &contract_with(None, None),
        &key(Role::Orchestrator, None),
        Expect::Ok(contracted_by(None)),
    );
}

#[test]
fn what_an_orchestrator_does_send_must_still_match() {
    check(
        &StoryState::default(),
        &contract_with(Some("Other"), None),
        &orchestrator(),
        Expect::Err("contract_mismatch"),
    );
    check(
        &StoryState::default(),
        &contract_with(None, Some(AC_COUNT + 2)),
        &orchestrator(),
        Expect::Err("contract_mismatch"),
    );
}

#[test]
fn the_state_is_checked_before_the_contract_itself() {
    // A second contract over someone else's live contract is refused for the state, however
    // wrong its content and whatever the dependencies.
    let state = contracted_by(Some(IMPLEMENTER));
    let waiting = Facts::default().dependencies_unmet();
    for facts in [Facts::default(), waiting] {
        for action in [contract_with(Some("Other"), Some(99)), contract_with(None, None)] {
            check_with(&facts, &state, &action, &agent(OTHER_AGENT), Expect::Err("invalid_transition"));
        }
    }
}

#[test]
fn a_rejected_story_back_in_the_queue_is_contracted_again() {
    let state = story(Pending, Rejected);
    let next = success(&Facts::default(), &state, &contract(), &agent(OTHER_AGENT));
    assert_eq!(
        next,
        StoryState {
            agent_status: Contracted,
            contracted_by_agent_id: Some(OTHER_AGENT),
            contracted_at: Some(t0()),
            ..state
        }
    );
}

#[test]
fn a_contract_waits_for_dependencies() {
    let waiting = Facts::default().dependencies_unmet();
    let error = refusal(&waiting, &StoryState::default(), &contract(), &agent(IMPLEMENTER));
    assert_eq!(error, DomainError::DependenciesNotMet);
    assert_eq!(error.code(), "dependencies_not_met");
    // For an orchestrator too, and before the title and the count are looked at.
    for action in [contract_with(None, None), contract_with(Some("Other"), Some(99))] {
        check_with(
            &waiting,
            &StoryState::default(),
            &action,
            &orchestrator(),
            Expect::Refused(DomainError::DependenciesNotMet),
        );
    }
    check_with(
        &waiting,
        &StoryState::default(),
        &contract_with(None, None),
        &agent(IMPLEMENTER),
        Expect::Refused(DomainError::DependenciesNotMet),
    );
    // Renewing one's own contract or taking over an abandoned claim waits the same way.
    check_with(
        &waiting,
        &story(Contracted, Unverified),
        &contract(),
        &agent(IMPLEMENTER),
        Expect::Refused(DomainError::DependenciesNotMet),
    );
    let late_and_waiting = waiting.clone().at(at(LEASE_END_MIN));
    check_with(
        &late_and_waiting,
        &story(Implementing, Unverified),
        &contract(),
        &agent(OTHER_AGENT),
        Expect::Refused(DomainError::DependenciesNotMet),
    );
    // An escalation lock still answers first.
    let locked =
        StoryState { escalated: true, escalation_locked: true, rejections_since_clear: 5, ..StoryState::default() };
    check_with(&waiting, &locked, &contract(), &agent(IMPLEMENTER), Expect::Err("escalation_locked"));
}

#[test]
fn the_contractor_renews_its_own_live_contract() {
    let state = story(Contracted, Unverified);
    for (actor, by) in [(agent(IMPLEMENTER), IMPLEMENTER), (orchestrator(), ORCHESTRATOR)] {
        let mine = StoryState { contracted_by_agent_id: Some(by), ..state.clone() };
        let facts = Facts::default().at(at(1));
        let next = success(&facts, &mine, &contract(), &actor);
        assert_eq!(next, StoryState { contracted_at: Some(at(1)), ..mine.clone() }, "renewed by {by}");
        assert_eq!(next.claim_epoch, FIXTURE_EPOCH, "a renewal fences nobody off");
    }
}

#[test]
fn another_identity_may_not_contract_over_a_live_contract() {
    // The fixture was contracted by IMPLEMENTER at CONTRACTED_MIN, with the default 30-minute lease.
    let state = story(Contracted, Unverified);
    let live_until = at(CONTRACTED_MIN) + Duration::minutes(30);
    for actor in [agent(OTHER_AGENT), orchestrator(), key(Role::Agent, None), key(Role::Orchestrator, None)] {
        for now in [t0(), live_until - Duration::seconds(1)] {
            let error = refusal(&Facts::default().at(now), &state, &contract(), &actor);
            assert_eq!(error.code(), "invalid_transition", "{actor:?} at {now}");
            assert!(error.to_string().contains("another identity contracted it within the lease"), "{error}");
        }
    }
}

#[test]
fn a_contract_unclaimed_for_a_whole_lease_is_stale_and_anyone_may_contract_it() {
    let settings = Settings { claim_lease_seconds: 600, ..Settings::default() };
    let state = story(Contracted, Unverified);
    let stale_at = at(CONTRACTED_MIN) + Duration::seconds(600);
    check_with(
        &Facts::default().settings(settings.clone()).at(stale_at - Duration::seconds(1)),
        &state,
        &contract(),
        &agent(OTHER_AGENT),
        Expect::Err("invalid_transition"),
    );
    for now in [stale_at, stale_at + Duration::days(2)] {
        let facts = Facts::default().settings(settings.clone()).at(now);
        let next = success(&facts, &state, &contract(), &agent(OTHER_AGENT));
        assert_eq!(
            next,
            StoryState { contracted_by_agent_id: Some(OTHER_AGENT), contracted_at: Some(now), ..state.clone() }
        );
    }
    // A contract with no time on record holds nobody back.
    let untimed = StoryState { contracted_at: None, ..state.clone() };
    let next = success(&Facts::default(), &untimed, &contract(), &agent(OTHER_AGENT));
    assert_eq!(next.contracted_by_agent_id, Some(OTHER_AGENT));
    assert_eq!(next.contracted_at, Some(t0()));
}

#[test]
fn a_key_without_an_agent_identity_never_counts_as_the_contractor() {
    // An id-less orchestrator contracted it; another id-less key is not "the same identity".
    let state = StoryState { contracted_by_agent_id: None, ..story(Contracted, Unverified) };
    let error = refusal(&Facts::default(), &state, &contract_with(None, None), &key(Role::Orchestrator, None));
    assert_eq!(error.code(), "invalid_transition");
    check(&state, &Action::Unclaim, &key(Role::Orchestrator, None), Expect::Refused(DomainError::NotContractor));
}

#[test]
fn contracting_a_claim_whose_lease_ran_out_takes_the_story_over() {
    for status in [Assigned, Implementing] {
        let mut state = story(status, Rejected);
        state.review_requested_at = Some(at(-2));
        state.stale_since = Some(at(LEASE_END_MIN));
        for now in [at(LEASE_END_MIN), at(LEASE_END_MIN) + Duration::hours(6)] {
            let facts = Facts::default().at(now);
            let next = success(&facts, &state, &contract(), &agent(OTHER_AGENT));
            assert_eq!(
                next,
                StoryState {
                    agent_status: Contracted,
                    assigned_agent_id: None,
                    assigned_at: None,
                    lease_expires_at: None,
                    review_requested_at: None,
                    stale_since: None,
                    claim_epoch: FIXTURE_EPOCH + 1,
                    previous_assignee_agent_id: Some(IMPLEMENTER),
                    contracted_by_agent_id: Some(OTHER_AGENT),
                    contracted_at: Some(now),
                    ..state.clone()
                },
                "{status} at {now}"
            );
        }
        // While the lease lives the claim is the holder's, whoever asks.
        let alive = Facts::default().at(at(LEASE_END_MIN) - Duration::seconds(1));
        for actor in [agent(OTHER_AGENT), agent(IMPLEMENTER), orchestrator()] {
            let error = refusal(&alive, &state, &contract(), &actor);
            assert_eq!(error.code(), "invalid_transition", "{status} by {actor:?}");
            assert!(error.to_string().contains("its lease is alive"), "{error}");
        }
    }
}

#[test]
fn a_takeover_by_contract_fences_the_old_holder_off() {
    let late = Facts::default().at(at(LEASE_END_MIN));
    let taken = success(&late, &story(Implementing, Unverified), &contract(), &agent(OTHER_AGENT));
    for action in [Action::Start, Action::Heartbeat, Action::RequestReview, Action::Report, Action::Unclaim] {
        // With the epoch it held, and without one: it learns that it was fenced off.
        for facts in [late.clone().epoch(FIXTURE_EPOCH), late.clone()] {
            let error = refusal(&facts, &taken, &action, &agent(IMPLEMENTER));
            assert_eq!(error, DomainError::StaleClaim { current: FIXTURE_EPOCH + 1 }, "{}", action.name());
        }
    }
    // The new contractor claims it.
    let claimed = success(&late, &taken, &Action::Claim, &agent(OTHER_AGENT));
    assert_eq!(claimed.assigned_agent_id, Some(OTHER_AGENT));
    assert_eq!(claimed.claim_epoch, FIXTURE_EPOCH + 2);
    assert_eq!((claimed.contracted_by_agent_id, claimed.contracted_at), (None, None));
}

#[test]
fn a_reported_story_cannot_be_contracted_however_old_its_lease() {
    let state = story(ReportedDone, Unverified);
    for now in [t0(), at(LEASE_END_MIN) + Duration::days(1)] {
        check_with(
            &Facts::default().at(now),
            &state,
            &contract(),
            &agent(OTHER_AGENT),
            Expect::Err("invalid_transition"),
        );
    }
}

#[test]
fn a_mismatch_message_names_both_counts() {
    let error =
        refusal(&Facts::default(), &StoryState::default(), &contract_with(Some(TITLE), Some(5)), &agent(IMPLEMENTER));
    let message = error.to_string();
    assert!(message.contains("has 3 acceptance criteria"), "{message}");
    assert!(message.contains("named 5"), "{message}");
}
