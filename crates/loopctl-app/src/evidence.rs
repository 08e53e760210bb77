//! Evidence, not claims: per-criterion evidence in reports, per-criterion verdicts in review
//! and verify, and verification runs that the server signs so no caller can forge one.

use chrono::{DateTime, Utc};
use loopctl_api::*;
use loopctl_core::{AgentStatus, Role};
use loopctl_store::{ArtifactRecord, CriterionRecord, StoryRecord, VerificationRunRecord, WriteOp};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{App, AppError, AppResult, Principal, event, story_status};

/// The criteria of a story as (ac_id, text), in order.
pub(crate) fn criteria_of(story: &StoryRecord) -> Vec<(String, String)> {
    story
        .acceptance_criteria
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(idx, ac)| {
            let id = ac.get("id").and_then(Value::as_str).map_or_else(|| format!("AC-{}", idx + 1), str::to_string);
            let text = ac
                .get("criterion")
                .or_else(|| ac.get("description"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (id, text)
        })
        .collect()
}

fn incomplete(message: String) -> AppError {
    AppError::new(ErrorCode::AcceptanceIncomplete, message)
}

fn record(
    who: &Principal,
    story: &StoryRecord,
    ac_id: &str,
    kind: &str,
    verdict: Option<&str>,
    detail: Value,
    at: DateTime<Utc>,
) -> WriteOp {
    WriteOp::InsertCriterionRecord(CriterionRecord {
        id: Uuid::now_v7(),
        tenant_id: who.tenant_id,
        story_id: story.id,
        ac_id: ac_id.to_string(),
        kind: kind.into(),
        round: story.state.claim_epoch,
        verdict: verdict.map(str::to_string),
        detail,
        actor_agent_id: who.agent_id,
        created_at: at,
    })
}

/// Evidence rows for a report; with `require_ac_evidence`, every criterion needs one.
pub(crate) fn evidence_ops(
    who: &Principal,
    story: &StoryRecord,
    evidence: &[EvidenceInput],
    at: DateTime<Utc>,
) -> AppResult<Vec<WriteOp>> {
    let criteria = criteria_of(story);
    for item in evidence {
        if !criteria.iter().any(|(id, _)| *id == item.ac_id) {
            return Err(AppError::field(
                "acceptance_evidence",
                format!("`{}` is not a criterion of this story", item.ac_id),
            ));
        }
        if item.test.is_none() && item.file.is_none() && item.commit.is_none() && item.note.is_none() {
            return Err(AppError::field(
                "acceptance_evidence",
                format!("evidence for {} names nothing; give a test, file, commit or note", item.ac_id),
            ));
        }
    }
    if who.settings.require_ac_evidence {
        let missing: Vec<&str> = criteria
            .iter()
            .filter(|(id, _)| !evidence.iter().any(|e| e.ac_id == *id))
            .map(|(id, _)| id.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(incomplete(format!(
                "this tenant requires evidence for every acceptance criterion; none given for {}",
                missing.join(", ")
            )));
        }
    }
    Ok(evidence
        .iter()
        .map(|e| {
            record(
                who,
                story,
                &e.ac_id,
                "evidence",
                None,
                json!({"test": e.test, "file": e.file, "commit": e.commit, "note": e.note}),
                at,
            )
        })
        .collect())
}

/// Verdict rows (review or verify); every verdict names a criterion of the story.
pub(crate) fn verdict_ops(
    who: &Principal,
    story: &StoryRecord,
    kind: &str,
    verdicts: &[CriterionVerdict],
    at: DateTime<Utc>,
) -> AppResult<Vec<WriteOp>> {
    let criteria = criteria_of(story);
    verdicts
        .iter()
        .map(|v| {
            if !criteria.iter().any(|(id, _)| *id == v.ac_id) {
                return Err(AppError::field("criteria", format!("`{}` is not a criterion of this story", v.ac_id)));
            }
            if !matches!(v.verdict.as_str(), "pass" | "fail") {
                return Err(AppError::field("criteria", format!("the verdict on {} must be pass or fail", v.ac_id)));
            }
            Ok(record(who, story, &v.ac_id, kind, Some(&v.verdict), json!({"note": v.note}), at))
        })
        .collect()
}

/// What a verify decision reads from the store, fetched before the transition so that the
/// decision itself runs after the role and custody checks.
pub(crate) struct VerifyFacts {
    /// (round, ac_id, verdict) of review verdicts; read only where the tenant requires evidence.
    reviews: Vec<(i64, String, String)>,
    /// The latest valid run for the latest report's commit passed.
    latest_run_passed: bool,
}

/// The verdict rows a verify records, after the tenant's evidence rules.
///
/// Without `criteria` in the call, a pass passes every criterion (the seed's flow) unless the
/// tenant requires evidence; then every criterion needs a passing verdict, from this call or
/// from this round's review.
pub(crate) fn verify_ops(
    who: &Principal,
    story: &StoryRecord,
    given: Option<&[CriterionVerdict]>,
    facts: &VerifyFacts,
    at: DateTime<Utc>,
) -> AppResult<Vec<WriteOp>> {
    let criteria = criteria_of(story);
    let round = story.state.claim_epoch;
    if who.settings.require_artifact_verification && !facts.latest_run_passed {
        return Err(incomplete(
            "this tenant requires that the runner's latest signed verification run of the reported commit passed; wait for the runner (`loopctl runner`) to record one, or reject the story with `loopctl reject`".into(),
        ));
    }
    let verdicts: Vec<CriterionVerdict> =
        match given {
            Some(verdicts) => verdicts.to_vec(),
            None if who.settings.require_ac_evidence => criteria
                .iter()
                .filter_map(|(id, _)| {
                    facts.reviews.iter().rev().find(|(r, ac, _)| *r == round && ac == id).map(|(_, _, verdict)| {
                        CriterionVerdict { ac_id: id.clone(), verdict: verdict.clone(), note: None }
                    })
                })
                .collect(),
            None => criteria
                .iter()
                .map(|(id, _)| CriterionVerdict { ac_id: id.clone(), verdict: "pass".into(), note: None })
                .collect(),
        };
    if who.settings.require_ac_evidence {
        let not_passed: Vec<&str> = criteria
            .iter()
            .filter(|(id, _)| !verdicts.iter().any(|v| v.ac_id == *id && v.verdict == "pass"))
            .map(|(id, _)| id.as_str())
            .collect();
        if !not_passed.is_empty() {
            return Err(incomplete(format!(
                "a pass needs a passing verdict on every criterion; missing or failed: {}",
                not_passed.join(", ")
            )));
        }
    }
    verdict_ops(who, story, "verify", &verdicts, at)
}

impl App {
    pub(crate) async fn verify_facts(&self, who: &Principal, story_id: Uuid) -> AppResult<VerifyFacts> {
        // The reviews' verdicts stand in for a verify that names none only where the tenant
        // requires evidence (`verify_ops`); elsewhere they are not read at all.
        let reviews = if who.settings.require_ac_evidence {
            let records = self.store.criterion_records(who.tenant_id, story_id).await?;
            records
                .into_iter()
                .filter(|r| r.kind == "review")
                .map(|r| (r.round, r.ac_id, r.verdict.unwrap_or_default()))
                .collect()
        } else {
            Vec::new()
        };
        let latest_run_passed = if who.settings.require_artifact_verification {
            let story = self.story_of(who, story_id).await?;
            let commit = self.reported_commit(who, &story).await?;
            let runs = self.store.verification_runs(who.tenant_id, story_id).await?;
            // The newest run of this round for this very commit decides: a later failure
            // undoes an earlier pass, and a run of an older report's commit does not count.
            runs.iter()
                .rev()
                .find(|run| run.round == story.state.claim_epoch && run.commit_sha == commit && self.run_signed(run))
                .is_some_and(|run| run.result == "pass")
        } else {
            false
        };
        Ok(VerifyFacts { reviews, latest_run_passed })
    }

    /// Criteria with their evidence and this round's verdicts.
    pub async fn story_criteria(&self, who: &Principal, story_id: Uuid) -> AppResult<Vec<CriterionView>> {
        who.check_story_scope(story_id)?;
        let story = self.story_of(who, story_id).await?;
        let records = self.store.criterion_records(who.tenant_id, story_id).await?;
        let round = story.state.claim_epoch;
        Ok(criteria_of(&story)
            .into_iter()
            .enumerate()
            .map(|(position, (ac_id, text))| {
                let ac = ac_id.as_str();
                let mine = |kind: &str| records.iter().rfind(|r| r.kind == kind && r.ac_id == ac && r.round == round);
                let evidence = records
                    .iter()
                    .filter(|r| r.kind == "evidence" && r.ac_id == ac_id && r.round == round)
                    .map(|r| r.detail.clone())
                    .collect();
                CriterionView {
                    review_verdict: mine("review").and_then(|r| r.verdict.clone()),
                    verify_verdict: mine("verify").and_then(|r| r.verdict.clone()),
                    evidence,
                    position,
                    ac_id: ac_id.clone(),
                    text,
                }
            })
            .collect())
    }

    /// `GET /.well-known/loopctl/signing-key`: the public keys runs are signed with.
    pub fn public_signing_key(&self) -> SigningKeyInfo {
        let keys: Vec<PublicKey> = self
            .signing
            .public_keys()
            .into_iter()
            .map(|(key_id, public_key)| PublicKey { key_id: key_id.to_string(), public_key })
            .collect();
        let current = self.signing.current_id().to_string();
        let public_key = keys.iter().find(|k| k.key_id == current).map(|k| k.public_key.clone());
        SigningKeyInfo {
            algorithm: "ed25519".into(),
            encoding: "base64, 32 raw bytes".into(),
            key_id: current,
            public_key,
            keys,
            signed: "the exact bytes of each run's signed_payload".into(),
        }
    }

    /// The commit the story's latest report names (the newest artifact of this round that
    /// carries a `commit_sha`).
    pub(crate) async fn reported_commit(&self, who: &Principal, story: &StoryRecord) -> AppResult<Option<String>> {
        let artifacts = self.store.artifacts(who.tenant_id, story.id).await?;
        Ok(latest_commit(&artifacts, story))
    }

    fn run_signed(&self, run: &VerificationRunRecord) -> bool {
        self.signing.verify(&run.key_id, &run.signed_payload, &run.signature) && payload_matches(run)
    }

    /// Records a verification run of the story's latest report and signs it.
    pub async fn record_verification_run(
        &self,
        who: &Principal,
        story_id: Uuid,
        request: RecordVerificationRun,
    ) -> AppResult<VerificationRunView> {
        who.check_story_scope(story_id)?;
        let story = self.story_of(who, story_id).await?;
        // Only the runner's verifier identity states facts about a commit: no orchestrator,
        // user or dispatched token can assert a passing run.
        if who.role != Role::Verifier || who.scope.is_some() {
            return Err(AppError::forbidden(
                "verification runs are recorded only by a verifier key (held by `loopctl runner`; a user mints it with `loopctl keys create --role verifier`)",
            ));
        }
        if !matches!(request.result.as_str(), "pass" | "fail") {
            return Err(AppError::field("result", "must be pass or fail"));
        }
        if request.checks.is_empty() || request.checks.len() > 1000 {
            return Err(AppError::field("checks", "list from 1 to 1000 checks"));
        }
        if story.state.agent_status != AgentStatus::ReportedDone {
            return Err(AppError::new(
                ErrorCode::InvalidTransition,
                "a verification run checks a reported story; this one is not reported done",
            ));
        }
        // The run is bound to the commit of the report it checked.
        let reported = self.reported_commit(who, &story).await?;
        if let Some(claimed) = request.commit_sha.as_deref()
            && reported.as_deref() != Some(claimed)
        {
            return Err(AppError::new(
                ErrorCode::CommitMismatch,
                format!(
                    "the run checked commit {claimed}, but the latest report names {}; check that commit",
                    reported.as_deref().unwrap_or("no commit")
                ),
            ));
        }
        let mut run = VerificationRunRecord {
            id: Uuid::now_v7(),
            tenant_id: who.tenant_id,
            story_id,
            round: story.state.claim_epoch,
            result: request.result,
            commit_sha: reported,
            checks: Value::Array(request.checks),
            recorded_by_agent_id: who.agent_id,
            signature: String::new(),
            created_at: self.now(),
            signed_payload: String::new(),
            key_id: String::new(),
        };
        run.signed_payload = canonical(&run);
        (run.key_id, run.signature) = self.signing.sign(&run.signed_payload);
        let audit = event(
            who,
            Some(story.project_id),
            ("story", story.id),
            "verification_run",
            story_status(&story),
            json!({"result": run.result, "run_id": run.id, "commit_sha": run.commit_sha}),
        );
        self.commit(vec![WriteOp::InsertVerificationRun(run.clone()), audit]).await?;
        Ok(run_view(&run, true))
    }

    pub async fn verification_runs(&self, who: &Principal, story_id: Uuid) -> AppResult<Vec<VerificationRunView>> {
        who.check_story_scope(story_id)?;
        self.story_of(who, story_id).await?;
        let runs = self.store.verification_runs(who.tenant_id, story_id).await?;
        Ok(runs.iter().map(|run| run_view(run, self.run_signed(run))).collect())
    }
}

/// The commit of the newest artifact reported in the story's current round.
pub(crate) fn latest_commit(artifacts: &[ArtifactRecord], story: &StoryRecord) -> Option<String> {
    let since = story.state.reported_done_at?;
    artifacts
        .iter()
        .filter(|a| a.created_at >= since)
        .rev()
        .find_map(|a| a.details.get("commit_sha").and_then(Value::as_str).map(str::to_string))
}

/// What is signed: the run's fields as sorted-key JSON, kept byte for byte in the row.
fn canonical(run: &VerificationRunRecord) -> String {
    json!({
        "id": run.id, "tenant_id": run.tenant_id, "story_id": run.story_id, "round": run.round,
        "result": run.result, "commit_sha": run.commit_sha, "checks": run.checks,
        "recorded_by_agent_id": run.recorded_by_agent_id, "created_at": run.created_at.timestamp_micros(),
    })
    .to_string()
}

/// The row's own columns say what the signed bytes say (a row edited around the server, say
/// `fail` turned into `pass`, no longer matches its payload).
fn payload_matches(run: &VerificationRunRecord) -> bool {
    let Ok(signed) = serde_json::from_str::<Value>(&run.signed_payload) else {
        return false;
    };
    signed["id"] == json!(run.id)
        && signed["tenant_id"] == json!(run.tenant_id)
        && signed["story_id"] == json!(run.story_id)
        && signed["round"] == json!(run.round)
        && signed["result"] == json!(run.result)
        && signed["commit_sha"] == json!(run.commit_sha)
        && signed["created_at"] == json!(run.created_at.timestamp_micros())
}

fn run_view(run: &VerificationRunRecord, signature_valid: bool) -> VerificationRunView {
    // The checks shown are the signed ones, not the (normalised) copy in the row.
    let checks = serde_json::from_str::<Value>(&run.signed_payload)
        .ok()
        .map_or_else(|| run.checks.clone(), |signed| signed["checks"].clone());
    VerificationRunView {
        id: run.id,
        story_id: run.story_id,
        round: run.round,
        result: run.result.clone(),
        commit_sha: run.commit_sha.clone(),
        checks,
        recorded_by_agent_id: run.recorded_by_agent_id,
        signature: run.signature.clone(),
        key_id: run.key_id.clone(),
        signature_valid,
        inserted_at: run.created_at,
    }
}
