//! Orchestrator checkpoints: versioned JSON per project and key, with history.

use loopctl_api::*;
use loopctl_core::Role;
use loopctl_store::{EventFilter, OrchestratorStateRecord, WriteOp};
use serde_json::json;
use uuid::Uuid;

use crate::view::FromRecord;
use crate::{App, AppError, AppResult, Principal, event, require};

const STATE_ROLES: &[Role] = &[Role::Orchestrator, Role::User, Role::Superadmin];
/// Checkpoints are for crash recovery, not bulk storage.
const MAX_STATE_BYTES: usize = 1 << 20;

fn key_of(state_key: Option<&str>) -> AppResult<String> {
    let key = state_key.unwrap_or("main").trim();
    if key.is_empty() || key.len() > 255 {
        return Err(AppError::field("state_key", "must be 1 to 255 characters"));
    }
    Ok(key.to_string())
}

impl App {
    pub async fn save_state(
        &self,
        who: &Principal,
        project_id: Uuid,
        request: SaveState,
    ) -> AppResult<OrchestratorStateView> {
        require(who, STATE_ROLES, "save orchestrator state")?;
        self.project_of(who, project_id).await?;
        let state_key = key_of(request.state_key.as_deref())?;
        if !request.state_data.is_object() {
            return Err(AppError::field("state_data", "must be a JSON object"));
        }
        let state_data = crate::free_json::object("state_data", Some(request.state_data), MAX_STATE_BYTES)?;
        for _ in 0..8 {
            let current = self.store.orchestrator_state(who.tenant_id, project_id, &state_key).await?;
            let current_version = current.as_ref().map_or(0, |s| s.version);
            if let Some(expected) = request.version
                && expected != current_version
            {
                return Err(AppError::new(ErrorCode::VersionConflict,
                    format!("the saved state is at version {current_version}, not {expected}; load it, merge, and save again"),
                )
                .with_context(json!({"current_version": current_version})));
            }
            let at = self.now();
            let record = OrchestratorStateRecord {
                id: current.as_ref().map_or_else(Uuid::now_v7, |s| s.id),
                tenant_id: who.tenant_id,
                project_id,
                state_key: state_key.clone(),
                state_data: state_data.clone(),
                version: current_version + 1,
                created_at: current.as_ref().map_or(at, |s| s.created_at),
                updated_at: at,
            };
            let audit = event(
                who,
                Some(project_id),
                ("orchestrator_state", record.id),
                "saved",
                json!({"version": current_version}),
                json!({"state_key": state_key, "version": record.version, "state_data": record.state_data}),
            );
            let save = WriteOp::SaveOrchestratorState { record: record.clone(), expected_version: current_version };
            match self.commit(vec![save, audit]).await {
                Ok(_) => return Ok(OrchestratorStateView::from_record(&record)),
                // Without an expected version a concurrent save just means: go again on top.
                Err(err) if err.code == ErrorCode::VersionConflict && request.version.is_none() => continue,
                Err(err) => return Err(err),
            }
        }
        Err(AppError::new(ErrorCode::VersionConflict, "the state is being saved concurrently; retry"))
    }

    pub async fn load_state(
        &self,
        who: &Principal,
        project_id: Uuid,
        state_key: Option<&str>,
    ) -> AppResult<OrchestratorStateView> {
        require(who, STATE_ROLES, "load orchestrator state")?;
        self.project_of(who, project_id).await?;
        let state_key = key_of(state_key)?;
        let state = self.store.orchestrator_state(who.tenant_id, project_id, &state_key).await?;
        state
            .as_ref()
            .map(OrchestratorStateView::from_record)
            .ok_or_else(|| AppError::not_found(format!("orchestrator state `{state_key}` (nothing saved yet)")))
    }

    pub async fn state_history(
        &self,
        who: &Principal,
        project_id: Uuid,
        state_key: Option<&str>,
        limit: i64,
    ) -> AppResult<Vec<StateVersion>> {
        require(who, STATE_ROLES, "read orchestrator state")?;
        self.project_of(who, project_id).await?;
        let state_key = key_of(state_key)?;
        let Some(state) = self.store.orchestrator_state(who.tenant_id, project_id, &state_key).await? else {
            return Ok(Vec::new());
        };
        let filter = EventFilter {
            entity_type: Some("orchestrator_state".into()),
            entity_id: Some(state.id),
            limit: limit.clamp(1, 1000),
            newest_first: true,
            ..EventFilter::default()
        };
        let events = self.store.events(who.tenant_id, filter).await?;
        Ok(events
            .into_iter()
            .map(|e| StateVersion {
                version: e.event.new_state["version"].as_i64().unwrap_or(0),
                state_data: e.event.new_state["state_data"].clone(),
                saved_by: e.event.actor.label,
                saved_at: e.event.inserted_at,
            })
            .collect())
    }
}
