//! Fixtures shared by every test module: identities, fixed clock, the facts a call is made
//! with, representative story states, the one `check` helper and a small story driver.

use chrono::{DateTime, Duration, TimeZone, Utc};
use loopctl_core::{
    Action, Actor, AgentStatus, Context, CustodyMode, DomainError, Role, Settings, StoryState, VerifiedStatus, apply,
};
use uuid::Uuid;

/// The agent that claims and implements the story in most tests.
pub const IMPLEMENTER: Uuid = Uuid::from_u128(0x1);
/// Some other agent identity, never the assignee unless a test makes it one.
pub const OTHER_AGENT: Uuid = Uuid::from_u128(0x2);
/// The agent identity behind the orchestrator key.
pub const ORCHESTRATOR: Uuid = Uuid::from_u128(0x3);
/// An agent that never holds the story: in the strict flow it reports and reviews.
pub const REVIEWER: Uuid = Uuid::from_u128(0x4);

pub const TITLE: &str = "Login page";
pub const AC_COUNT: usize = 3;

/// Every stable code `DomainError::code` may answer.
pub const ALL_CODES: [&str; 13] = [
    "forbidden",
    "invalid_transition",
    "must_contract_first",
    "must_claim_first",
    "contract_mismatch",
    "self_review_blocked",
    "self_verify_blocked",
    "self_report_blocked",
    "stale_claim",
    "escalation_locked",
    "review_not_conducted",
    "dependencies_not_met",
    "validation_failed",
];

/// The fixed "now" of every test that does not move the clock.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).single().expect("a valid fixed time")
}

/// `minutes` after (or before, when negative) `t0`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

pub fn agent(id: Uuid) -> Actor {
    Actor::key(Role::Agent, Some(id))
}

/// A token the orchestrator dispatched for review: in the strict flow it files the report.
pub fn reviewer_token(id: Uuid) -> Actor {
    Actor { dispatched_as: Some(loopctl_core::DispatchRole::Reviewer), ..agent(id) }
}

pub fn orchestrator() -> Actor {
    Actor::key(Role::Orchestrator, Some(ORCHESTRATOR))
}

/// A human's key: no agent identity behind it.
pub fn user() -> Actor {
    Actor::key(Role::User, None)
}

pub fn superadmin() -> Actor {
    Actor::key(Role::Superadmin, None)
}

/// A key of `role` whose agent identity is `agent_id`.
pub fn key(role: Role, agent_id: Option<Uuid>) -> Actor {
    Actor::key(role, agent_id)
}

/// The contract an agent sends after reading the story correctly.
pub fn contract() -> Action {
    Action::Contract { story_title: Some(TITLE.to_string()), ac_count: Some(AC_COUNT) }
}

pub fn reject(reason: &str) -> Action {
    Action::Reject { reason: reason.to_string() }
}

pub fn backfill(reason: &str) -> Action {
    Action::Backfill { reason: reason.to_string() }
}

/// One well-formed instance of every action, in the order of the `Action` enum.
pub fn every_action() -> Vec<Action> {
    vec![
        contract(),
        Action::Claim,
        Action::Start,
        Action::Heartbeat,
        Action::RequestReview,
        Action::Report,
        Action::Unclaim,
        Action::ForceUnclaim,
        Action::ReviewComplete,
        Action::Verify,
        reject("missing tests for AC-2"),
        backfill("shipped before loopctl"),
        Action::ClearEscalation,
        Action::ReclaimExpired,
        Action::MarkStale,
    ]
}

/// The facts a call is made with: clock, tenant settings, what the caller read about the
/// story, and the `X-Claim-Epoch` it sent. `ctx()` lends them out as a `Context`.
#[derive(Debug, Clone)]
pub struct Facts {
    pub now: DateTime<Utc>,
    pub settings: Settings,
    pub story_title: String,
    pub ac_count: usize,
    pub dependencies_met: bool,
    pub claim_epoch: Option<i64>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            now: t0(),
            settings: Settings::default(),
            story_title: TITLE.to_string(),
            ac_count: AC_COUNT,
            dependencies_met: true,
            claim_epoch: None,
        }
    }
}

impl Facts {
    pub fn at(mut self, now: DateTime<Utc>) -> Facts {
        self.now = now;
        self
    }

    pub fn strict(mut self) -> Facts {
        self.settings.custody_mode = CustodyMode::Strict;
        self
    }

    pub fn settings(mut self, settings: Settings) -> Facts {
        self.settings = settings;
        self
    }

    pub fn epoch(mut self, epoch: i64) -> Facts {
        self.claim_epoch = Some(epoch);
        self
    }

    pub fn dependencies_unmet(mut self) -> Facts {
        self.dependencies_met = false;
        self
    }

    pub fn ctx(&self) -> Context<'_> {
        Context {
            now: self.now,
            settings: &self.settings,
            story_title: &self.story_title,
            ac_count: self.ac_count,
            dependencies_met: self.dependencies_met,
            claim_epoch: self.claim_epoch,
        }
    }
}

/// When the fixture's contract and claim were made, its lease ends, and its report was filed.
pub const CONTRACTED_MIN: i64 = -5;
pub const ASSIGNED_MIN: i64 = -60;
pub const REPORTED_MIN: i64 = -30;
pub const VERIFIED_MIN: i64 = -10;
pub const REJECTED_MIN: i64 = -120;
pub const LEASE_END_MIN: i64 = 10;
/// The claim epoch of every fixture: the story has some history behind it.
pub const FIXTURE_EPOCH: i64 = 4;

/// A representative story in `agent_status` × `verified_status`, shaped the way the
/// lifecycle leaves it: a contracted story was contracted by `IMPLEMENTER` at
/// `CONTRACTED_MIN` (a live contract), claimed stories belong to `IMPLEMENTER` with a live
/// lease, reported stories carry their report, rejected ones their reason, verified ones
/// `verified_at`. Combinations no sequence of commands reaches (pending + verified, say) are
/// built the same way, so the pure function can be checked on them too.
pub fn story(agent_status: AgentStatus, verified_status: VerifiedStatus) -> StoryState {
    let mut state = StoryState { agent_status, verified_status, claim_epoch: FIXTURE_EPOCH, ..StoryState::default() };
    if agent_status == AgentStatus::Contracted {
        state.contracted_by_agent_id = Some(IMPLEMENTER);
        state.contracted_at = Some(at(CONTRACTED_MIN));
    }
    if matches!(agent_status, AgentStatus::Assigned | AgentStatus::Implementing | AgentStatus::ReportedDone) {
        state.assigned_agent_id = Some(IMPLEMENTER);
        state.assigned_at = Some(at(ASSIGNED_MIN));
    }
    if agent_status.in_flight() {
        state.lease_expires_at = Some(at(LEASE_END_MIN));
    }
    if agent_status == AgentStatus::ReportedDone {
        state.reported_done_at = Some(at(REPORTED_MIN));
        state.reported_by_agent_id = Some(IMPLEMENTER);
    }
    match verified_status {
        VerifiedStatus::Unverified => {}
        VerifiedStatus::Verified => state.verified_at = Some(at(VERIFIED_MIN)),
        VerifiedStatus::Rejected => {
            state.rejected_at = Some(at(REJECTED_MIN));
            state.rejection_reason = Some("no tests".to_string());
            state.iteration_count = 1;
            state.rejections_since_clear = 1;
        }
    }
    state
}

/// Every `agent_status` × `verified_status` pair.
pub fn every_status_pair() -> Vec<(AgentStatus, VerifiedStatus)> {
    AgentStatus::ALL
        .into_iter()
        .flat_map(|agent| VerifiedStatus::ALL.into_iter().map(move |verified| (agent, verified)))
        .collect()
}

/// What a call must come to: the exact next state, a refusal with this code, or exactly
/// this refusal (where two refusals share a code, `forbidden` say).
#[derive(Debug, Clone)]
#[expect(clippy::large_enum_variant, reason = "one short-lived expectation per call; a box would only add noise")]
pub enum Expect {
    Ok(StoryState),
    Err(&'static str),
    Refused(DomainError),
}

/// The one table helper: applies `action` by `actor` to `state` with default facts and
/// compares the outcome with `expect`.
pub fn check(state: &StoryState, action: &Action, actor: &Actor, expect: Expect) {
    check_with(&Facts::default(), state, action, actor, expect);
}

/// `check` with explicit facts (clock, settings, claim epoch, …).
pub fn check_with(facts: &Facts, state: &StoryState, action: &Action, actor: &Actor, expect: Expect) {
    let outcome = apply(state, action, actor, &facts.ctx());
    let situation = format!(
        "{} by {:?} (agent {:?}) on {}/{}",
        action.name(),
        actor.role,
        actor.agent_id,
        state.agent_status,
        state.verified_status
    );
    match (outcome, expect) {
        (Ok(next), Expect::Ok(wanted)) => {
            assert_eq!(next, wanted, "{situation}: next state differs");
        }
        (Err(error), Expect::Err(code)) => {
            assert_eq!(error.code(), code, "{situation}: refused with `{error}`");
            assert!(!error.to_string().is_empty(), "{situation}: refusal without a message");
        }
        (Err(error), Expect::Refused(wanted)) => {
            assert_eq!(error, wanted, "{situation}: refused with `{error}`");
        }
        (Ok(next), Expect::Err(code)) => {
            panic!("{situation}: expected `{code}`, but it succeeded with {next:?}")
        }
        (Ok(next), Expect::Refused(wanted)) => {
            panic!("{situation}: expected `{wanted:?}`, but it succeeded with {next:?}")
        }
        (Err(error), Expect::Ok(_)) => {
            panic!("{situation}: expected success, but it was refused: {} ({error})", error.code())
        }
    }
}

/// Applies the call and returns the refusal, failing the test if it succeeds.
pub fn refusal(facts: &Facts, state: &StoryState, action: &Action, actor: &Actor) -> DomainError {
    match apply(state, action, actor, &facts.ctx()) {
        Ok(next) => panic!("{} should be refused, but it gave {next:?}", action.name()),
        Err(error) => error,
    }
}

/// Applies the call and returns the next state, failing the test if it is refused.
pub fn success(facts: &Facts, state: &StoryState, action: &Action, actor: &Actor) -> StoryState {
    apply(state, action, actor, &facts.ctx()).unwrap_or_else(|error| {
        panic!("{} by {:?} should succeed, but: {} ({error})", action.name(), actor.role, error.code())
    })
}

/// A story played out call by call on a clock that moves one minute after every call.
#[derive(Debug, Clone)]
pub struct Story {
    pub state: StoryState,
    pub facts: Facts,
}

impl Story {
    pub fn new() -> Story {
        Story::with(Facts::default())
    }

    pub fn strict() -> Story {
        Story::with(Facts::default().strict())
    }

    pub fn with(facts: Facts) -> Story {
        Story { state: StoryState::default(), facts }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.facts.now
    }

    /// Moves the clock on.
    pub fn wait(&mut self, duration: Duration) -> &mut Story {
        self.facts.now += duration;
        self
    }

    /// The outcome of `action` by `actor` now; on success the story moves on.
    pub fn try_do(&mut self, actor: Actor, action: &Action) -> Result<(), DomainError> {
        let next = apply(&self.state, action, &actor, &self.facts.ctx())?;
        self.state = next;
        self.facts.now += Duration::minutes(1);
        Ok(())
    }

    /// `action` by `actor` must succeed.
    pub fn does(&mut self, actor: Actor, action: &Action) -> &mut Story {
        if let Err(error) = self.try_do(actor, action) {
            panic!(
                "{} by {:?} should succeed on {}/{}, but: {} ({error})",
                action.name(),
                actor.role,
                self.state.agent_status,
                self.state.verified_status,
                error.code()
            );
        }
        self
    }

    /// `action` by `actor` must be refused; answers the code and leaves the story alone.
    pub fn refused(&mut self, actor: Actor, action: &Action) -> &'static str {
        let before = self.state.clone();
        match self.try_do(actor, action) {
            Ok(()) => panic!(
                "{} by {:?} should be refused on {}/{}, but it gave {:?}",
                action.name(),
                actor.role,
                before.agent_status,
                before.verified_status,
                self.state
            ),
            Err(error) => {
                assert_eq!(self.state, before, "a refused call changed the story");
                error.code()
            }
        }
    }

    /// The seed flow's implementing half: `agent` contracts, claims, starts and reports.
    pub fn implemented_by(&mut self, agent_id: Uuid) -> &mut Story {
        self.does(agent(agent_id), &contract())
            .does(agent(agent_id), &Action::Claim)
            .does(agent(agent_id), &Action::Start)
            .does(agent(agent_id), &Action::Report)
    }

    /// `agent` contracts, claims and starts: the story is implementing.
    pub fn started_by(&mut self, agent_id: Uuid) -> &mut Story {
        self.does(agent(agent_id), &contract())
            .does(agent(agent_id), &Action::Claim)
            .does(agent(agent_id), &Action::Start)
    }

    /// One full round that ends in a rejection by the orchestrator.
    pub fn rejected_round(&mut self, implementer: Uuid) -> &mut Story {
        self.implemented_by(implementer).does(orchestrator(), &reject("acceptance criterion 2 is not met"))
    }
}
