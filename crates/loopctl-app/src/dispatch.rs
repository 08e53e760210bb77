//! Dispatch: an orchestrator asks for a sub-agent for one story and one capacity; loopctl
//! mints a fresh identity and a capability token scoped to exactly that work.
//!
//! This is how "a fresh agent per story" and "the reviewer is not the implementer" become
//! facts: the token cannot act outside its story or capacity (`scope_violation`), a reviewer
//! dispatch never goes to the implementer, and only a human key mints ordinary keys, so an
//! orchestrator gets new identities through here, with lineage, and nowhere else.

use loopctl_api::*;

use crate::view::FromRecordAt;
use chrono::Duration;
use loopctl_core::{DispatchRole, Role};
use loopctl_store::{AgentRecord, ApiKeyRecord, DispatchRecord, KeyScope, WriteOp};
use serde_json::json;
use uuid::Uuid;

use crate::{App, AppError, AppResult, MANAGERS, Principal, event, keys, require};

const DEFAULT_TTL_SECONDS: i64 = 3600;
const MAX_TTL_SECONDS: i64 = 24 * 3600;

impl FromRecordAt<DispatchRecord> for DispatchView {
    fn from_record_at(d: &DispatchRecord, now: chrono::DateTime<chrono::Utc>) -> DispatchView {
        DispatchView {
            id: d.id,
            tenant_id: d.tenant_id,
            parent_dispatch_id: d.parent_dispatch_id,
            agent_id: d.agent_id,
            story_id: d.story_id,
            role: d.role.as_str().into(),
            lineage_path: d.lineage_path.clone(),
            dispatched_by_agent_id: d.dispatched_by_agent_id,
            dispatched_by_key_id: d.dispatched_by_key_id,
            expires_at: d.expires_at,
            revoked_at: d.revoked_at,
            created_at: d.created_at,
            active: d.revoked_at.is_none() && d.expires_at > now,
        }
    }
}

impl App {
    /// Mints a sub-agent identity and its capability token; the token is in this answer only.
    pub async fn create_dispatch(&self, who: &Principal, request: CreateDispatch) -> AppResult<DispatchCreated> {
        require(who, MANAGERS, "dispatch sub-agents")?;
        let role = DispatchRole::parse(&request.role).ok_or_else(|| {
            AppError::field("role", "must be implementer or reviewer; dispatch mints tokens for one story's work")
        })?;
        let story_id =
            request.story_id.ok_or_else(|| AppError::field("story_id", "is required: a dispatch is for one story"))?;
        let story = self.story_of(who, story_id).await?;
        let ttl = request.expires_in_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
        if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
            return Err(AppError::field("expires_in_seconds", "must be from 1 to 86400 (24 hours)"));
        }
        let at = self.now();
        let id = Uuid::now_v7();
        let lineage_path = match request.parent_dispatch_id {
            None => vec![id],
            Some(parent_id) => {
                let parent = self
                    .store
                    .dispatch(who.tenant_id, parent_id)
                    .await?
                    .ok_or_else(|| AppError::not_found("parent dispatch"))?;
                if parent.revoked_at.is_some() || parent.expires_at <= at {
                    return Err(AppError::forbidden(
                        "the parent dispatch is revoked or expired; dispatch from a live one",
                    ));
                }
                let mut path = parent.lineage_path.clone();
                path.push(id);
                path
            }
        };
        let mut batch = Vec::new();
        let agent_id = match request.agent_id {
            Some(agent_id) => {
                self.store.agent(who.tenant_id, agent_id).await?.ok_or_else(|| AppError::not_found("agent"))?;
                agent_id
            }
            None => {
                let agent = AgentRecord {
                    id: Uuid::now_v7(),
                    tenant_id: who.tenant_id,
                    name: format!("{}-{}-{}", role.as_str(), story.number, &id.simple().to_string()[24..]),
                    agent_type: "implementer".into(),
                    status: "active".into(),
                    metadata: json!({"dispatch_id": id}),
                    created_at: at,
                    updated_at: at,
                };
                let agent_id = agent.id;
                batch.push(WriteOp::InsertAgent(agent));
                agent_id
            }
        };
        if role == DispatchRole::Reviewer && story.state.assigned_agent_id == Some(agent_id) {
            return Err(loopctl_core::DomainError::SelfReviewBlocked.into());
        }
        let expires_at = at + Duration::seconds(ttl);
        let minted = keys::mint()?;
        let key = ApiKeyRecord {
            id: Uuid::now_v7(),
            tenant_id: Some(who.tenant_id),
            name: format!("dispatch:{}:{}", role.as_str(), story.number),
            key_hash: minted.hash,
            key_prefix: minted.prefix,
            role: Role::Agent,
            agent_id: Some(agent_id),
            expires_at: Some(expires_at),
            revoked_at: None,
            last_used_at: None,
            created_at: at,
            scope: Some(KeyScope { dispatch_id: id, story_id, role }),
        };
        let dispatch = DispatchRecord {
            id,
            tenant_id: who.tenant_id,
            parent_dispatch_id: request.parent_dispatch_id,
            dispatched_by_key_id: who.key_id,
            dispatched_by_agent_id: who.agent_id,
            agent_id,
            api_key_id: key.id,
            story_id,
            role,
            lineage_path,
            expires_at,
            revoked_at: None,
            created_at: at,
        };
        batch.push(WriteOp::InsertApiKey(key));
        batch.push(WriteOp::InsertDispatch(dispatch.clone()));
        batch.push(event(
            who,
            Some(story.project_id),
            ("dispatch", id),
            "dispatched",
            json!({}),
            json!({"story": story.number, "role": role.as_str(), "agent_id": agent_id, "lineage_path": dispatch.lineage_path}),
        ));
        self.commit(batch).await?;
        Ok(DispatchCreated {
            dispatch: DispatchView::from_record_at(&dispatch, self.now()),
            api_key: DispatchToken { raw_key: minted.raw, role: role.as_str().into(), agent_id, expires_at, story_id },
            next_action: Hint {
                description: format!(
                    "hand the raw_key to the new {} agent as its LOOPCTL_API_KEY; it works for story {} only, until {}",
                    role.as_str(),
                    story.number,
                    expires_at
                ),
            },
        })
    }

    pub async fn list_dispatches(
        &self,
        who: &Principal,
        story_id: Option<Uuid>,
        active_only: bool,
    ) -> AppResult<Vec<DispatchView>> {
        require(who, MANAGERS, "list dispatches")?;
        let rows = self.store.dispatches(who.tenant_id, story_id).await?;
        let at = self.now();
        Ok(rows
            .iter()
            .map(|record| DispatchView::from_record_at(record, at))
            .filter(|d| !active_only || d.active)
            .collect())
    }

    pub async fn get_dispatch(&self, who: &Principal, id: Uuid) -> AppResult<DispatchView> {
        // A dispatched token may read its own dispatch (lineage, expiry).
        let own = who.scope.is_some_and(|s| s.dispatch_id == id);
        if !own {
            require(who, MANAGERS, "read dispatches")?;
        }
        let dispatch = self.store.dispatch(who.tenant_id, id).await?.ok_or_else(|| AppError::not_found("dispatch"))?;
        Ok(DispatchView::from_record_at(&dispatch, self.now()))
    }

    /// Revokes a dispatch and its token at once; later calls with the token get 401.
    pub async fn revoke_dispatch(&self, who: &Principal, id: Uuid) -> AppResult<DispatchView> {
        require(who, MANAGERS, "revoke dispatches")?;
        let mut dispatch =
            self.store.dispatch(who.tenant_id, id).await?.ok_or_else(|| AppError::not_found("dispatch"))?;
        let at = self.now();
        let audit = event(who, None, ("dispatch", id), "revoked", json!({}), json!({"revoked_at": at}));
        self.commit(vec![WriteOp::RevokeDispatch { tenant_id: who.tenant_id, id, at }, audit]).await?;
        dispatch.revoked_at = dispatch.revoked_at.or(Some(at));
        Ok(DispatchView::from_record_at(&dispatch, self.now()))
    }
}
