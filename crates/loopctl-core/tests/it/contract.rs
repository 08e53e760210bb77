//! The contract: an agent acknowledges the story's title and its number of acceptance
//! criteria; a mismatch is refused; an orchestrator may contract without them.

use loopctl_core::{Action, AgentStatus::*, DomainError, Role, StoryState, VerifiedStatus::*};

use crate::support::*;

fn contract_with(title: Option<&str>, ac_count: Option<usize>) -> Action {
    Action::Contract { story_title: title.map(str::to_string), ac_count }
}

fn contracted_pending() -> StoryState {
    StoryState { agent_status: Contracted, ..StoryState::default() }
}

#[test]
fn an_agent_that_read_the_story_contracts_it() {
    let next = success(&Facts::default(), &StoryState::default(), &contract(), &agent(IMPLEMENTER));
    assert_eq!(next, contracted_pending());
    assert_eq!(next.assigned_agent_id, None, "a contract assigns nobody");
}

#[test]
fn surrounding_whitespace_in_either_title_does_not_matter() {
    let facts = Facts { story_title: format!("  {TITLE}\n"), ..Facts::default() };
    let action = contract_with(Some(&format!("\t{TITLE} ")), Some(AC_COUNT));
    check_with(&facts, &StoryState::default(), &action, &agent(IMPLEMENTER), Expect::Ok(contracted_pending()));
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
    check_with(&facts, &StoryState::default(), &action, &agent(IMPLEMENTER), Expect::Ok(contracted_pending()));
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
        check(&StoryState::default(), &action, &orchestrator(), Expect::Ok(contracted_pending()));
    }
    // An orchestrator key without an agent identity too: a contract names nobody.
    check(
        &StoryState::default(),
        &contract_with(None, None),
        &key(Role::Orchestrator, None),
        Expect::Ok(contracted_pending()),
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
    // A second contract is refused for the state, however wrong its content.
    let state = contracted_pending();
    check(&state, &contract_with(Some("Other"), Some(99)), &agent(OTHER_AGENT), Expect::Err("invalid_transition"));
    check(&state, &contract_with(None, None), &agent(OTHER_AGENT), Expect::Err("invalid_transition"));
}

#[test]
fn a_rejected_story_back_in_the_queue_is_contracted_again() {
    let state = story(Pending, Rejected);
    let next = success(&Facts::default(), &state, &contract(), &agent(OTHER_AGENT));
    assert_eq!(next, StoryState { agent_status: Contracted, ..state });
}

#[test]
fn a_contract_ignores_unmet_dependencies() {
    let next =
        success(&Facts::default().dependencies_unmet(), &StoryState::default(), &contract(), &agent(IMPLEMENTER));
    assert_eq!(next.agent_status, Contracted);
}

#[test]
fn a_mismatch_message_names_both_counts() {
    let error =
        refusal(&Facts::default(), &StoryState::default(), &contract_with(Some(TITLE), Some(5)), &agent(IMPLEMENTER));
    let message = error.to_string();
    assert!(message.contains("has 3 acceptance criteria"), "{message}");
    assert!(message.contains("named 5"), "{message}");
}
