//! Bulk calls: each story goes through the same single-story path, with every custody check
//! (the reference's bulk verify and mark-complete skip them; ours skip the story and say why).

use loopctl_api::*;
use loopctl_core::{AgentStatus, VerifiedStatus};
use uuid::Uuid;

use crate::{App, AppError, AppResult, Principal};

/// At most this many stories per bulk call.
pub const MAX_BULK: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Verify,
    Reject,
    /// Verify what is reported done; anything else is refused with its reason.
    MarkComplete,
    Claim,
}

fn outcome(story_id: Uuid, result: AppResult<()>) -> BulkResult {
    match result {
        Ok(()) => BulkResult { story_id, status: "success".into(), code: None, reason: None },
        Err(err) => BulkResult { story_id, status: "error".into(), code: Some(err.code), reason: Some(err.message) },
    }
}

impl App {
    /// Runs `action` on each story independently, in the order given.
    pub async fn bulk(
        &self,
        who: &Principal,
        action: BulkAction,
        stories: Vec<BulkStory>,
    ) -> AppResult<Vec<BulkResult>> {
        // The caller's role is checked for the whole call before any story is looked at.
        match action {
            // A dispatched implementer may claim its own story this way; the story check follows.
            BulkAction::Claim if who.scope.is_some_and(|s| s.role == loopctl_core::DispatchRole::Implementer) => {}
            BulkAction::Claim => crate::require(who, &[loopctl_core::Role::Agent], "claim stories")?,
            _ => crate::require_manager(who)?,
        }
        if stories.is_empty() {
            return Err(AppError::field("stories", "is required and must be a non-empty array"));
        }
        if stories.len() > MAX_BULK {
            return Err(AppError::field("stories", format!("at most {MAX_BULK} stories per call")));
        }
        let mut results = Vec::with_capacity(stories.len());
        for item in stories {
            let id = item.story_id;
            let result = match action {
                BulkAction::Verify | BulkAction::MarkComplete => {
                    let request = VerifyRequest {
                        summary: item.summary,
                        review_type: item.review_type,
                        findings: item.findings,
                        result: None,
                        commit_sha: None,
                        criteria: None,
                    };
                    self.verify_story(who, id, request).await.map(|_| ())
                }
                BulkAction::Reject => {
                    let request =
                        RejectRequest { reason: item.reason, findings: item.findings, review_type: item.review_type };
                    self.reject_story(who, id, request).await.map(|_| ())
                }
                BulkAction::Claim => self.claim_story(who, id).await.map(|_| ()),
            };
            results.push(outcome(id, result));
        }
        Ok(results)
    }

    /// Verifies every reported, unverified story of an epic that this caller may verify.
    pub async fn verify_all_in_epic(
        &self,
        who: &Principal,
        epic_id: Uuid,
        summary: Option<String>,
        review_type: Option<String>,
    ) -> AppResult<VerifyAllAnswer> {
        crate::require_manager(who)?;
        let epic = self.epic_of(who, epic_id).await?;
        let stories = self.all_stories(who, epic.project_id).await?;
        let eligible: Vec<Uuid> = stories
            .iter()
            .filter(|s| s.epic_id == epic_id)
            .filter(|s| {
                s.state.agent_status == AgentStatus::ReportedDone && s.state.verified_status != VerifiedStatus::Verified
            })
            .map(|s| s.id)
            .collect();
        let total_eligible = eligible.len();
        let mut verified = 0;
        let mut errors = Vec::new();
        for id in eligible {
            let request = VerifyRequest {
                summary: summary.clone(),
                review_type: review_type.clone(),
                ..VerifyRequest::default()
            };
            match self.verify_story(who, id, request).await {
                Ok(_) => verified += 1,
                Err(err) => errors.push(BulkRefusal { story_id: id, code: err.code, reason: err.message }),
            }
        }
        Ok(VerifyAllAnswer {
            verified_count: verified,
            skipped_count: total_eligible - verified,
            total_eligible,
            errors,
        })
    }
}
