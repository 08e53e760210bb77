//! Escalation: repeated rejections flag a story for a human, then lock it until a user
//! clears it. Rejections since the last clear count; the iteration count never goes down.

use loopctl_core::{Action, AgentStatus::*, DomainError, Role, Settings, StoryState, VerifiedStatus::*};

use crate::support::*;

/// A story rejected `n` times in full rounds, alternating implementers.
fn rejected_times(facts: Facts, n: usize) -> Story {
    let mut story = Story::with(facts);
    for round in 0..n {
        let implementer = if round % 2 == 0 { IMPLEMENTER } else { OTHER_AGENT };
        story.rejected_round(implementer);
    }
    story
}

#[test]
fn with_default_settings_the_third_rejection_escalates_and_the_fifth_locks() {
    let mut story = Story::new();
    let mut escalated_at = None;
    for round in 1..=5 {
        story.implemented_by(if round % 2 == 0 { OTHER_AGENT } else { IMPLEMENTER });
        let rejected_at = story.now();
        story.does(orchestrator(), &reject(&format!("round {round} misses AC-2")));
        let state = &story.state;
        assert_eq!(state.iteration_count, round);
        assert_eq!(state.rejections_since_clear, round);
        assert_eq!(state.agent_status, Pending);
        assert_eq!(state.verified_status, Rejected);
        assert_eq!(state.escalated, round >= 3, "round {round}");
        assert_eq!(state.escalation_locked, round >= 5, "round {round}");
        if round == 3 {
            escalated_at = Some(rejected_at);
        }
        // Flagged once: later rejections keep the time of the first escalation.
        assert_eq!(state.escalated_at, escalated_at, "round {round}");
    }
}

#[test]
fn a_locked_story_cannot_be_contracted_or_claimed() {
    let mut story = rejected_times(Facts::default(), 5);
    let error = apply_refusal(&story, &contract(), agent(IMPLEMENTER));
    assert_eq!(error, DomainError::EscalationLocked { rejections: 5 });
    assert_eq!(error.code(), "escalation_locked");
    assert!(error.to_string().contains("after 5 rejections"), "{error}");
    assert_eq!(
        story.refused(orchestrator(), &Action::Contract { story_title: None, ac_count: None }),
        "escalation_locked"
    );

    // Had it been contracted before the lock, the claim is still refused, before anything else.
    let mut contracted = story.state.clone();
    contracted.agent_status = Contracted;
    let waiting = Facts::default().dependencies_unmet();
    check_with(&waiting, &contracted, &Action::Claim, &agent(OTHER_AGENT), Expect::Err("escalation_locked"));
    check_with(&waiting, &story.state, &Action::Claim, &agent(OTHER_AGENT), Expect::Err("escalation_locked"));
}

fn apply_refusal(story: &Story, action: &Action, actor: loopctl_core::Actor) -> DomainError {
    refusal(&story.facts, &story.state, action, &actor)
}

#[test]
fn a_locked_story_cannot_be_backfilled_around_the_lock() {
    let mut story = rejected_times(Facts::default(), 5);
    assert_eq!(story.refused(orchestrator(), &backfill("did it by hand")), "invalid_transition");
}

#[test]
fn a_user_clears_the_lock_and_the_count_but_not_the_iterations() {
    let mut story = rejected_times(Facts::default(), 5);
    assert_eq!(story.refused(orchestrator(), &Action::ClearEscalation), "forbidden");
    assert_eq!(story.refused(agent(IMPLEMENTER), &Action::ClearEscalation), "forbidden");
    story.does(user(), &Action::ClearEscalation);
    let state = &story.state;
    assert!(!state.escalated && !state.escalation_locked);
    assert_eq!(state.escalated_at, None);
    assert_eq!(state.rejections_since_clear, 0);
    assert_eq!(state.iteration_count, 5, "iterations only rise");
    assert_eq!(state.verified_status, Rejected, "the verdict stays");
    assert_eq!(state.rejection_reason.as_deref(), Some("acceptance criterion 2 is not met"));

    // Claimable again; and the count starts over.
    story.rejected_round(IMPLEMENTER).rejected_round(OTHER_AGENT);
    assert!(!story.state.escalated);
    story.rejected_round(IMPLEMENTER);
    assert!(story.state.escalated && !story.state.escalation_locked);
    assert_eq!(story.state.rejections_since_clear, 3);
    assert_eq!(story.state.iteration_count, 8);
}

#[test]
fn an_escalated_story_that_is_not_locked_can_still_be_worked_and_cleared() {
    let mut story = rejected_times(Facts::default(), 3);
    assert!(story.state.escalated && !story.state.escalation_locked);
    story.does(agent(IMPLEMENTER), &contract());
    story.does(superadmin(), &Action::ClearEscalation);
    assert!(!story.state.escalated);
    assert_eq!(story.state.agent_status, Contracted, "clearing does not move the story");
}

#[test]
fn clearing_a_story_that_is_not_escalated_is_refused() {
    let mut story = rejected_times(Facts::default(), 2);
    assert_eq!(story.refused(user(), &Action::ClearEscalation), "invalid_transition");
}

#[test]
fn tenant_settings_move_both_thresholds() {
    let settings = Settings { escalate_after_rejections: 1, max_review_cycles: 2, ..Settings::default() };
    let mut story = rejected_times(Facts::default().settings(settings), 1);
    assert!(story.state.escalated && !story.state.escalation_locked);
    story.rejected_round(OTHER_AGENT);
    assert!(story.state.escalation_locked);
    assert_eq!(story.refused(agent(IMPLEMENTER), &contract()), "escalation_locked");
}

#[test]
fn reaching_the_lock_first_also_flags_the_escalation() {
    // max_review_cycles below escalate_after_rejections: the lock escalates too.
    let settings = Settings { escalate_after_rejections: 4, max_review_cycles: 2, ..Settings::default() };
    let mut story = rejected_times(Facts::default().settings(settings), 1);
    assert!(!story.state.escalated);
    let second_rejection_at = story.now() + chrono::Duration::minutes(4);
    story.rejected_round(OTHER_AGENT);
    assert!(story.state.escalated && story.state.escalation_locked);
    assert_eq!(story.state.escalated_at, Some(second_rejection_at));
}

#[test]
fn rejecting_a_verified_story_counts_as_a_rejection() {
    let mut state = story(ReportedDone, Verified);
    state.rejections_since_clear = 2;
    state.iteration_count = 2;
    let next = success(&Facts::default(), &state, &reject("regressed in prod"), &user());
    assert_eq!(next.iteration_count, 3);
    assert!(next.escalated);
    assert_eq!(next.escalated_at, Some(t0()));
    assert_eq!(next.verified_at, None);
    assert_eq!(next.agent_status, Pending);
}

#[test]
fn a_rejection_needs_a_reason_of_at_most_2000_characters() {
    let state = story(ReportedDone, Unverified);
    for blank in ["", "   ", "\n\t"] {
        check(&state, &reject(blank), &orchestrator(), Expect::Err("validation_failed"));
    }
    check(&state, &reject(&"x".repeat(2001)), &orchestrator(), Expect::Err("validation_failed"));
    // Characters, not bytes: 2000 two-byte characters are fine.
    let next = success(&Facts::default(), &state, &reject(&"é".repeat(2000)), &orchestrator());
    assert_eq!(next.rejection_reason.map(|r| r.chars().count()), Some(2000));
    // Padding around the reason is not kept, nor counted.
    let padded = format!("  {}  ", "y".repeat(2000));
    let next = success(&Facts::default(), &state, &reject(&padded), &orchestrator());
    assert_eq!(next.rejection_reason, Some("y".repeat(2000)));
}

#[test]
fn a_backfill_needs_a_reason_too() {
    let state = StoryState::default();
    check(&state, &backfill(" "), &orchestrator(), Expect::Err("validation_failed"));
    check(&state, &backfill(&"z".repeat(2001)), &orchestrator(), Expect::Err("validation_failed"));
    success(&Facts::default(), &state, &backfill(&"z".repeat(2000)), &key(Role::Superadmin, None));
}

#[test]
fn the_reason_is_checked_before_the_state() {
    check(&StoryState::default(), &reject(""), &orchestrator(), Expect::Err("validation_failed"));
    check(&story(Implementing, Unverified), &backfill(""), &orchestrator(), Expect::Err("validation_failed"));
}
