//! One typed method per operation of `/api/v1`, named after the handler's `operationId` in
//! the OpenAPI document, so that paths, query strings and headers are written once, here.
//! Each answers the body as the server sends it (envelope included), so a caller that prints
//! `--format json` re-encodes exactly what came.
//!
//! Left out: the SSE stream `/events` (read as a stream, not one answer).

use loopctl_api::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::{Client, ClientError, Method, encode_component, path_with_query};

/// The body of a POST that takes none: `{}`, as every client has sent it.
#[derive(Serialize)]
struct Empty {}

/// `params` as a query string on `path`: each field that is set, by name.
///
/// # Errors
/// `Config` when `params` is not a struct of plain values.
fn with_query<P: Serialize>(path: &str, params: &P) -> Result<String, ClientError> {
    let fields = match serde_json::to_value(params) {
        Ok(Value::Object(fields)) => fields,
        Ok(other) => return Err(ClientError::Config(format!("query parameters must be a struct, not {other}"))),
        Err(err) => return Err(ClientError::Config(err.to_string())),
    };
    let pairs: Vec<(String, String)> = fields
        .into_iter()
        .filter_map(|(name, value)| match value {
            Value::Null => None,
            Value::String(text) => Some((name, text)),
            other => Some((name, other.to_string())),
        })
        .collect();
    let borrowed: Vec<(&str, String)> = pairs.iter().map(|(name, value)| (name.as_str(), value.clone())).collect();
    Ok(path_with_query(path, &borrowed))
}

/// `X-Claim-Epoch`, the fencing token of the claimant's writes, when known.
fn epoch_header(epoch: Option<i64>) -> Vec<(&'static str, String)> {
    epoch.map(|epoch| ("X-Claim-Epoch", epoch.to_string())).into_iter().collect()
}

fn story_path(id: Uuid, verb: &str) -> String {
    format!("/api/v1/stories/{id}/{verb}")
}

fn skill_path(name: &str) -> String {
    format!("/api/v1/skills/{}", encode_component(name))
}

impl Client {
    async fn fetch<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, None, &[]).await
    }

    async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(method, path, Some(body), &[]).await
    }

    async fn send_fenced<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        epoch: Option<i64>,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body), &epoch_header(epoch)).await
    }

    async fn remove<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::DELETE, path, None, &[]).await
    }

    // --- the server and the caller ---

    pub async fn signing_key(&self) -> Result<SigningKeyInfo, ClientError> {
        self.fetch("/.well-known/loopctl/signing-key").await
    }

    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.fetch("/api/v1/whoami").await
    }

    pub async fn get_tenant(&self) -> Result<TenantAnswer, ClientError> {
        self.fetch("/api/v1/tenants/me").await
    }

    pub async fn update_tenant(&self, update: &UpdateTenant) -> Result<TenantAnswer, ClientError> {
        self.send(Method::PATCH, "/api/v1/tenants/me", update).await
    }

    // --- agents and keys ---

    pub async fn list_agents(&self) -> Result<AgentList, ClientError> {
        self.fetch("/api/v1/agents").await
    }

    pub async fn register_agent(&self, agent: &RegisterAgent) -> Result<AgentAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/agents/register", agent).await
    }

    pub async fn get_agent(&self, id: Uuid) -> Result<AgentAnswer, ClientError> {
        self.fetch(&format!("/api/v1/agents/{id}")).await
    }

    pub async fn list_api_keys(&self, params: &KeyListParams) -> Result<ApiKeyList, ClientError> {
        self.fetch(&with_query("/api/v1/api_keys", params)?).await
    }

    pub async fn create_api_key(&self, key: &CreateApiKey) -> Result<ApiKeyAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/api_keys", key).await
    }

    pub async fn revoke_api_key(&self, id: Uuid) -> Result<ApiKeyAnswer, ClientError> {
        self.remove(&format!("/api/v1/api_keys/{id}")).await
    }

    pub async fn rotate_api_key(&self, id: Uuid, rotation: &RotateApiKey) -> Result<RotatedKey, ClientError> {
        self.send(Method::POST, &format!("/api/v1/api_keys/{id}/rotate"), rotation).await
    }

    // --- dispatches ---

    pub async fn list_dispatches(
        &self,
        params: &DispatchListParams,
    ) -> Result<DataMeta<Vec<DispatchView>, CountMeta>, ClientError> {
        self.fetch(&with_query("/api/v1/dispatches", params)?).await
    }

    pub async fn create_dispatch(&self, dispatch: &CreateDispatch) -> Result<Data<DispatchCreated>, ClientError> {
        self.send(Method::POST, "/api/v1/dispatches", dispatch).await
    }

    pub async fn get_dispatch(&self, id: Uuid) -> Result<Data<DispatchView>, ClientError> {
        self.fetch(&format!("/api/v1/dispatches/{id}")).await
    }

    pub async fn revoke_dispatch(&self, id: Uuid) -> Result<Data<DispatchAnswer>, ClientError> {
        self.remove(&format!("/api/v1/dispatches/{id}")).await
    }

    // --- webhooks ---

    pub async fn create_webhook(&self, webhook: &CreateWebhook) -> Result<WebhookCreated, ClientError> {
        self.send(Method::POST, "/api/v1/webhooks", webhook).await
    }

    pub async fn webhooks(&self) -> Result<Data<Vec<WebhookView>>, ClientError> {
        self.fetch("/api/v1/webhooks").await
    }

    pub async fn delete_webhook(&self, id: Uuid) -> Result<Data<WebhookView>, ClientError> {
        self.remove(&format!("/api/v1/webhooks/{id}")).await
    }

    pub async fn webhook_deliveries(
        &self,
        id: Uuid,
        params: &DeliveryParams,
    ) -> Result<Data<Vec<DeliveryView>>, ClientError> {
        self.fetch(&with_query(&format!("/api/v1/webhooks/{id}/deliveries"), params)?).await
    }

    // --- audit and the change feed ---

    pub async fn audit(&self, params: &AuditParams) -> Result<EventPage, ClientError> {
        self.fetch(&with_query("/api/v1/audit", params)?).await
    }

    pub async fn verify_audit(&self) -> Result<Data<AuditVerification>, ClientError> {
        self.fetch("/api/v1/audit/verify").await
    }

    pub async fn changes(&self, params: &ChangesParams) -> Result<Changes, ClientError> {
        self.fetch(&with_query("/api/v1/changes", params)?).await
    }

    // --- projects ---

    pub async fn list_projects(
        &self,
        params: &ProjectListParams,
    ) -> Result<DataMeta<Vec<ProjectView>, PageInfo>, ClientError> {
        self.fetch(&with_query("/api/v1/projects", params)?).await
    }

    pub async fn create_project(&self, project: &CreateProject) -> Result<ProjectAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/projects", project).await
    }

    pub async fn get_project(&self, id: Uuid) -> Result<ProjectAnswer, ClientError> {
        self.fetch(&format!("/api/v1/projects/{id}")).await
    }

    pub async fn update_project(&self, id: Uuid, update: &UpdateProject) -> Result<ProjectAnswer, ClientError> {
        self.send(Method::PATCH, &format!("/api/v1/projects/{id}"), update).await
    }

    pub async fn archive_project(&self, id: Uuid) -> Result<ProjectAnswer, ClientError> {
        self.remove(&format!("/api/v1/projects/{id}")).await
    }

    pub async fn dependency_graph(&self, id: Uuid) -> Result<GraphAnswer, ClientError> {
        self.fetch(&format!("/api/v1/projects/{id}/dependency_graph")).await
    }

    pub async fn project_progress(&self, id: Uuid) -> Result<ProgressAnswer, ClientError> {
        self.fetch(&format!("/api/v1/projects/{id}/progress")).await
    }

    pub async fn set_project_runner(&self, id: Uuid, runner: &RunnerConfig) -> Result<RunnerAnswer, ClientError> {
        self.send(Method::PUT, &format!("/api/v1/projects/{id}/runner"), runner).await
    }

    pub async fn set_project_budget(&self, id: Uuid, budget: &ProjectBudget) -> Result<BudgetAnswer, ClientError> {
        self.send(Method::PUT, &format!("/api/v1/projects/{id}/budget"), budget).await
    }

    /// The whole project in the format `import_project` takes back.
    pub async fn export_project(&self, id: Uuid) -> Result<ProjectExport, ClientError> {
        self.fetch(&format!("/api/v1/projects/{id}/export")).await
    }

    /// Creates the epics, stories and dependencies of an export (free JSON) in the project.
    pub async fn import_project(&self, id: Uuid, import: &Value) -> Result<ImportCreatedAnswer, ClientError> {
        self.send(Method::POST, &format!("/api/v1/projects/{id}/import"), import).await
    }

    /// `import_project` with `merge=true`: updates what exists without touching statuses.
    pub async fn import_project_merge(&self, id: Uuid, import: &Value) -> Result<ImportMergedAnswer, ClientError> {
        let path = with_query(&format!("/api/v1/projects/{id}/import"), &ImportParams { merge: Some(true) })?;
        self.send(Method::POST, &path, import).await
    }

    // --- epics ---

    pub async fn list_epics(&self, project: Uuid) -> Result<DataMeta<Vec<EpicView>, PageInfo>, ClientError> {
        self.fetch(&format!("/api/v1/projects/{project}/epics")).await
    }

    pub async fn create_epic(&self, project: Uuid, epic: &CreateEpic) -> Result<EpicAnswer, ClientError> {
        self.send(Method::POST, &format!("/api/v1/projects/{project}/epics"), epic).await
    }

    pub async fn get_epic(&self, id: Uuid) -> Result<EpicAnswer, ClientError> {
        self.fetch(&format!("/api/v1/epics/{id}")).await
    }

    pub async fn update_epic(&self, id: Uuid, update: &UpdateEpic) -> Result<EpicAnswer, ClientError> {
        self.send(Method::PATCH, &format!("/api/v1/epics/{id}"), update).await
    }

    pub async fn delete_epic(&self, id: Uuid) -> Result<(), ClientError> {
        self.remove(&format!("/api/v1/epics/{id}")).await
    }

    pub async fn epic_progress(&self, id: Uuid) -> Result<EpicStatusAnswer, ClientError> {
        self.fetch(&format!("/api/v1/epics/{id}/progress")).await
    }

    pub async fn list_epic_stories(
        &self,
        id: Uuid,
        params: &EpicStoryParams,
    ) -> Result<DataMeta<Vec<StoryView>, PageInfo>, ClientError> {
        self.fetch(&with_query(&format!("/api/v1/epics/{id}/stories"), params)?).await
    }

    pub async fn create_epic_story(&self, id: Uuid, story: &CreateStory) -> Result<StoryAnswer, ClientError> {
        self.send(Method::POST, &format!("/api/v1/epics/{id}/stories"), story).await
    }

    pub async fn verify_all_in_epic(&self, id: Uuid, verify: &VerifyAll) -> Result<VerifyAllAnswer, ClientError> {
        self.send(Method::POST, &format!("/api/v1/epics/{id}/verify-all"), verify).await
    }

    // --- dependencies ---

    pub async fn list_epic_dependencies(&self, project: Uuid) -> Result<Data<Vec<EpicDependencyView>>, ClientError> {
        self.fetch(&format!("/api/v1/projects/{project}/epic_dependencies")).await
    }

    pub async fn create_epic_dependency(
        &self,
        dependency: &CreateEpicDependency,
    ) -> Result<EpicDependencyAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/epic_dependencies", dependency).await
    }

    pub async fn delete_epic_dependency(&self, id: Uuid) -> Result<(), ClientError> {
        self.remove(&format!("/api/v1/epic_dependencies/{id}")).await
    }

    pub async fn list_story_dependencies(&self, epic: Uuid) -> Result<Data<Vec<StoryDependencyView>>, ClientError> {
        self.fetch(&format!("/api/v1/epics/{epic}/story_dependencies")).await
    }

    pub async fn create_story_dependency(
        &self,
        dependency: &CreateStoryDependency,
    ) -> Result<StoryDependencyAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/story_dependencies", dependency).await
    }

    pub async fn delete_story_dependency(&self, id: Uuid) -> Result<(), ClientError> {
        self.remove(&format!("/api/v1/story_dependencies/{id}")).await
    }

    // --- orchestrator state ---

    pub async fn load_state(&self, project: Uuid, params: &StateParams) -> Result<StateAnswer, ClientError> {
        self.fetch(&with_query(&format!("/api/v1/orchestrator/state/{project}"), params)?).await
    }

    pub async fn save_state(&self, project: Uuid, state: &SaveState) -> Result<StateAnswer, ClientError> {
        self.send(Method::PUT, &format!("/api/v1/orchestrator/state/{project}"), state).await
    }

    pub async fn state_history(
        &self,
        project: Uuid,
        params: &StateParams,
    ) -> Result<DataMeta<Vec<StateVersion>, CountMeta>, ClientError> {
        self.fetch(&with_query(&format!("/api/v1/orchestrator/state/{project}/history"), params)?).await
    }

    // --- skills ---

    pub async fn list_skills(&self) -> Result<Data<Vec<SkillView>>, ClientError> {
        self.fetch("/api/v1/skills").await
    }

    pub async fn create_skill(&self, skill: &CreateSkill) -> Result<SkillVersionAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/skills", skill).await
    }

    pub async fn get_skill(&self, name: &str, params: &SkillVersionParams) -> Result<SkillAnswer, ClientError> {
        self.fetch(&with_query(&skill_path(name), params)?).await
    }

    pub async fn record_skill_result(
        &self,
        name: &str,
        result: &RecordSkillResult,
    ) -> Result<SkillResultAnswer, ClientError> {
        self.send(Method::POST, &format!("{}/results", skill_path(name)), result).await
    }

    pub async fn skill_stats(&self, name: &str) -> Result<Data<SkillStats>, ClientError> {
        self.fetch(&format!("{}/stats", skill_path(name))).await
    }

    pub async fn publish_skill_version(
        &self,
        name: &str,
        version: &PublishSkill,
    ) -> Result<VersionAnswer, ClientError> {
        self.send(Method::POST, &format!("{}/versions", skill_path(name)), version).await
    }

    pub async fn get_skill_version(&self, name: &str, version: i64) -> Result<VersionAnswer, ClientError> {
        self.fetch(&format!("{}/versions/{version}", skill_path(name))).await
    }

    // --- stories: reading ---

    pub async fn list_stories(&self, params: &StoryListParams) -> Result<StoryListAnswer, ClientError> {
        self.fetch(&with_query("/api/v1/stories", params)?).await
    }

    /// [`Client::list_stories`] without `number`: a page of stories.
    ///
    /// # Errors
    /// `Protocol` when the server answers one story instead (`number` was set).
    pub async fn story_page(&self, params: &StoryListParams) -> Result<Page<StoryView>, ClientError> {
        match self.list_stories(params).await? {
            StoryListAnswer::Page(page) => Ok(page),
            StoryListAnswer::One(_) => Err(ClientError::Protocol("GET /stories answered one story, not a page".into())),
        }
    }

    pub async fn ready_stories(&self, params: &FrontierParams) -> Result<ReadyList, ClientError> {
        self.fetch(&with_query("/api/v1/stories/ready", params)?).await
    }

    pub async fn blocked_stories(&self, params: &FrontierParams) -> Result<BlockedList, ClientError> {
        self.fetch(&with_query("/api/v1/stories/blocked", params)?).await
    }

    pub async fn get_story(&self, id: Uuid) -> Result<StoryDetailAnswer, ClientError> {
        self.fetch(&format!("/api/v1/stories/{id}")).await
    }

    pub async fn story_criteria(&self, id: Uuid) -> Result<Data<Vec<CriterionView>>, ClientError> {
        self.fetch(&story_path(id, "acceptance_criteria")).await
    }

    pub async fn story_artifacts(&self, id: Uuid) -> Result<Data<Vec<ArtifactView>>, ClientError> {
        self.fetch(&story_path(id, "artifacts")).await
    }

    pub async fn story_history(&self, id: Uuid) -> Result<EventPage, ClientError> {
        self.fetch(&story_path(id, "history")).await
    }

    pub async fn story_verifications(&self, id: Uuid) -> Result<Data<Vec<VerificationView>>, ClientError> {
        self.fetch(&story_path(id, "verifications")).await
    }

    pub async fn list_verification_runs(&self, id: Uuid) -> Result<Data<Vec<VerificationRunView>>, ClientError> {
        self.fetch(&story_path(id, "verification-runs")).await
    }

    // --- stories: writing ---

    pub async fn create_project_story(&self, project: Uuid, story: &CreateStory) -> Result<StoryAnswer, ClientError> {
        self.send(Method::POST, &format!("/api/v1/projects/{project}/stories"), story).await
    }

    pub async fn update_story(&self, id: Uuid, update: &UpdateStory) -> Result<StoryAnswer, ClientError> {
        self.send(Method::PATCH, &format!("/api/v1/stories/{id}"), update).await
    }

    pub async fn delete_story(&self, id: Uuid) -> Result<(), ClientError> {
        self.remove(&format!("/api/v1/stories/{id}")).await
    }

    pub async fn record_verification_run(
        &self,
        id: Uuid,
        run: &RecordVerificationRun,
    ) -> Result<VerificationRunAnswer, ClientError> {
        self.send(Method::POST, &story_path(id, "verification-runs"), run).await
    }

    // --- the lifecycle ---

    pub async fn contract_story(&self, id: Uuid, contract: &ContractRequest) -> Result<TransitionOutcome, ClientError> {
        self.send(Method::POST, &story_path(id, "contract"), contract).await
    }

    pub async fn claim_story(&self, id: Uuid) -> Result<TransitionOutcome, ClientError> {
        self.send(Method::POST, &story_path(id, "claim"), &Empty {}).await
    }

    pub async fn claim_next(&self, request: &ClaimNextRequest) -> Result<TransitionOutcome, ClientError> {
        self.send(Method::POST, "/api/v1/stories/claim-next", request).await
    }

    pub async fn start_story(&self, id: Uuid, epoch: Option<i64>) -> Result<TransitionOutcome, ClientError> {
        self.send_fenced(&story_path(id, "start"), &Empty {}, epoch).await
    }

    pub async fn start_work(&self, id: Uuid, epoch: Option<i64>) -> Result<TransitionOutcome, ClientError> {
        self.send_fenced(&story_path(id, "start-work"), &Empty {}, epoch).await
    }

    pub async fn heartbeat_story(&self, id: Uuid, epoch: Option<i64>) -> Result<HeartbeatAnswer, ClientError> {
        self.send_fenced(&story_path(id, "heartbeat"), &Empty {}, epoch).await
    }

    pub async fn request_review(&self, id: Uuid, epoch: Option<i64>) -> Result<TransitionOutcome, ClientError> {
        self.send_fenced(&story_path(id, "request-review"), &Empty {}, epoch).await
    }

    pub async fn unclaim_story(&self, id: Uuid, epoch: Option<i64>) -> Result<TransitionOutcome, ClientError> {
        self.send_fenced(&story_path(id, "unclaim"), &Empty {}, epoch).await
    }

    pub async fn report_story(
        &self,
        id: Uuid,
        report: &ReportRequest,
        epoch: Option<i64>,
    ) -> Result<TransitionOutcome, ClientError> {
        self.send_fenced(&story_path(id, "report"), report, epoch).await
    }

    pub async fn report_done(
        &self,
        id: Uuid,
        report: &ReportRequest,
        epoch: Option<i64>,
    ) -> Result<TransitionOutcome, ClientError> {
        self.send_fenced(&story_path(id, "report-done"), report, epoch).await
    }

    pub async fn review_complete(&self, id: Uuid, review: &ReviewRequest) -> Result<ReviewAnswer, ClientError> {
        self.send(Method::POST, &story_path(id, "review-complete"), review).await
    }

    pub async fn verify_story(&self, id: Uuid, verify: &VerifyRequest) -> Result<VerifyAnswer, ClientError> {
        self.send(Method::POST, &story_path(id, "verify"), verify).await
    }

    pub async fn reject_story(&self, id: Uuid, reject: &RejectRequest) -> Result<TransitionOutcome, ClientError> {
        self.send(Method::POST, &story_path(id, "reject"), reject).await
    }

    pub async fn backfill_story(&self, id: Uuid, backfill: &BackfillRequest) -> Result<TransitionOutcome, ClientError> {
        self.send(Method::POST, &story_path(id, "backfill"), backfill).await
    }

    pub async fn force_unclaim_story(
        &self,
        id: Uuid,
        reason: &ReasonRequest,
    ) -> Result<TransitionOutcome, ClientError> {
        self.send(Method::POST, &story_path(id, "force-unclaim"), reason).await
    }

    pub async fn clear_escalation(&self, id: Uuid, reason: &ReasonRequest) -> Result<TransitionOutcome, ClientError> {
        self.send(Method::POST, &story_path(id, "clear-escalation"), reason).await
    }

    pub async fn reclaim_expired(&self, request: &ReclaimRequest) -> Result<ReclaimAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/stories/reclaim-expired", request).await
    }

    // --- bulk ---

    pub async fn bulk_claim(&self, ids: &BulkIds) -> Result<BulkAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/stories/bulk/claim", ids).await
    }

    pub async fn bulk_mark_complete(&self, stories: &BulkStories) -> Result<BulkAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/stories/bulk/mark-complete", stories).await
    }

    pub async fn bulk_reject(&self, stories: &BulkStories) -> Result<BulkAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/stories/bulk/reject", stories).await
    }

    pub async fn bulk_verify(&self, stories: &BulkStories) -> Result<BulkAnswer, ClientError> {
        self.send(Method::POST, "/api/v1/stories/bulk/verify", stories).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_that_are_set_travel_encoded_and_unset_ones_stay_home() {
        let params = FrontierParams { project_id: Some("my project".into()), limit: Some(5), ..Default::default() };
        assert_eq!(
            with_query("/api/v1/stories/ready", &params).expect("query"),
            "/api/v1/stories/ready?limit=5&project_id=my%20project"
        );
        assert_eq!(
            with_query("/api/v1/stories/ready", &FrontierParams::default()).expect("query"),
            "/api/v1/stories/ready"
        );
    }

    #[test]
    fn a_claimants_write_carries_its_epoch_only_when_known() {
        assert_eq!(epoch_header(Some(3)), [("X-Claim-Epoch", "3".to_string())]);
        assert!(epoch_header(None).is_empty());
    }
}
