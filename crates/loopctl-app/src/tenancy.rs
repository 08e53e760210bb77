//! The tenant, its API keys and its agent identities.

use chrono::Duration;
use loopctl_api::*;
use loopctl_core::Role;
use loopctl_store::{AgentRecord, ApiKeyRecord, WriteOp};
use serde_json::json;
use uuid::Uuid;

use crate::view::FromRecord;
use crate::{
    ANYONE, App, AppError, AppResult, HUMANS, MANAGERS, Principal, event, keys, metadata, require,
    settings::{self, effective_settings, settings_json},
    text,
};

impl App {
    pub async fn whoami(&self, who: &Principal) -> AppResult<WhoAmI> {
        let agent_name = match who.agent_id {
            Some(id) => self.store.agent(who.tenant_id, id).await?.map(|a| a.name),
            None => None,
        };
        Ok(WhoAmI {
            tenant_id: who.tenant_id,
            tenant_name: who.tenant.name.clone(),
            tenant_slug: who.tenant.slug.clone(),
            role: who.role.as_str().into(),
            agent_id: who.agent_id,
            agent_name,
            key_id: who.key_id,
            key_name: who.key_name.clone(),
            key_prefix: who.key_prefix.clone(),
            expires_at: who.expires_at,
            scope: who
                .scope
                .map(|s| json!({"dispatch_id": s.dispatch_id, "story_id": s.story_id, "role": s.role.as_str()})),
        })
    }

    pub async fn tenant_info(&self, who: &Principal) -> AppResult<TenantView> {
        require(who, ANYONE, "read the tenant")?;
        let tenant = self.store.tenant(who.tenant_id).await?.ok_or_else(|| AppError::not_found("tenant"))?;
        Ok(tenant_view(&tenant))
    }

    pub async fn update_tenant(&self, who: &Principal, patch: UpdateTenant) -> AppResult<TenantView> {
        require(who, HUMANS, "change tenant settings")?;
        let mut tenant = self.store.tenant(who.tenant_id).await?.ok_or_else(|| AppError::not_found("tenant"))?;
        let before = tenant.settings.clone();
        if let Some(name) = patch.name {
            tenant.name = text("name", &name, 120)?;
        }
        if let Some(email) = patch.email {
            tenant.email = Some(text("email", &email, 320)?);
        }
        if let Some(patch) = patch.settings {
            tenant.settings = settings::merge(&tenant.settings, &patch)?;
        }
        tenant.updated_at = self.now();
        let audit = event(
            who,
            None,
            ("tenant", tenant.id),
            "updated",
            json!({"settings": before}),
            json!({"settings": tenant.settings}),
        );
        self.commit(vec![WriteOp::UpdateTenant(tenant.clone()), audit]).await?;
        Ok(tenant_view(&tenant))
    }

    /// Only a human key mints keys: an orchestrator cannot give itself a second identity.
    pub async fn create_api_key(&self, who: &Principal, request: CreateApiKey) -> AppResult<ApiKeyView> {
        require(who, HUMANS, "create API keys")?;
        let name = text("name", &request.name, 255)?;
        let role: Role = request.role.parse().map_err(|msg: String| AppError::field("role", msg))?;
        if role == Role::Superadmin {
            return Err(AppError::forbidden(
                "superadmin keys are created by the operator with `loopctl admin init --superadmin`",
            ));
        }
        if request.expires_at.is_some_and(|at| at <= self.now()) {
            return Err(AppError::field("expires_at", "must be in the future"));
        }
        let at = self.now();
        let mut batch = Vec::new();
        let agent_id = match (role, request.agent_id) {
            (Role::User | Role::Superadmin | Role::Verifier, Some(_)) => {
                return Err(AppError::field("agent_id", "user and verifier keys have no agent identity"));
            }
            // A verifier implements nothing, so it needs no agent identity for custody.
            (Role::User | Role::Superadmin | Role::Verifier, None) => None,
            (_, Some(id)) => {
                self.store.agent(who.tenant_id, id).await?.ok_or_else(|| AppError::not_found("agent"))?;
                Some(id)
            }
            (_, None) => {
                let agent = AgentRecord {
                    id: Uuid::now_v7(),
                    tenant_id: who.tenant_id,
                    name: format!("{name}-{}", &Uuid::now_v7().simple().to_string()[24..]),
                    agent_type: if role == Role::Orchestrator { "orchestrator" } else { "implementer" }.into(),
                    status: "active".into(),
                    metadata: json!({}),
                    created_at: at,
                    updated_at: at,
                };
                let id = agent.id;
                batch.push(WriteOp::InsertAgent(agent));
                Some(id)
            }
        };
        let minted = keys::mint()?;
        let key = ApiKeyRecord {
            id: Uuid::now_v7(),
            tenant_id: Some(who.tenant_id),
            name,
            key_hash: minted.hash,
            key_prefix: minted.prefix,
            role,
            agent_id,
            expires_at: request.expires_at,
            revoked_at: None,
            last_used_at: None,
            created_at: at,
            scope: None,
        };
        batch.push(WriteOp::InsertApiKey(key.clone()));
        batch.push(event(
            who,
            None,
            ("api_key", key.id),
            "created",
            json!({}),
            json!({"role": role.as_str(), "name": key.name}),
        ));
        self.commit(batch).await?;
        Ok(crate::view::api_key_view(&key, Some(minted.raw)))
    }

    pub async fn list_api_keys(&self, who: &Principal, include_revoked: bool) -> AppResult<Vec<ApiKeyView>> {
        require(who, HUMANS, "list API keys")?;
        let keys = self.store.api_keys(who.tenant_id, include_revoked).await?;
        Ok(keys.iter().map(|k| crate::view::api_key_view(k, None)).collect())
    }

    pub async fn revoke_api_key(&self, who: &Principal, id: Uuid) -> AppResult<ApiKeyView> {
        require(who, HUMANS, "revoke API keys")?;
        let key = self.tenant_key(who, id).await?;
        let at = self.now();
        let revoke = WriteOp::EndApiKey { tenant_id: who.tenant_id, id, revoked_at: Some(at), expires_at: None };
        let audit = event(who, None, ("api_key", id), "revoked", json!({}), json!({"revoked_at": at}));
        self.commit(vec![revoke, audit]).await?;
        let mut view = crate::view::api_key_view(&key, None);
        view.revoked_at = Some(at);
        Ok(view)
    }

    /// A new key with the same role and identity; the old one keeps working for the grace period.
    pub async fn rotate_api_key(&self, who: &Principal, id: Uuid, request: RotateApiKey) -> AppResult<RotatedKey> {
        require(who, HUMANS, "rotate API keys")?;
        let old = self.tenant_key(who, id).await?;
        if old.revoked_at.is_some() {
            return Err(AppError::validation("this key is revoked; create a new key instead"));
        }
        let hours = request.grace_period_hours.unwrap_or(24);
        if !(0..=168).contains(&hours) {
            return Err(AppError::field("grace_period_hours", "must be from 0 to 168"));
        }
        let at = self.now();
        let old_expires = at + Duration::hours(hours);
        let minted = keys::mint()?;
        let new_key = ApiKeyRecord {
            id: Uuid::now_v7(),
            key_hash: minted.hash,
            key_prefix: minted.prefix,
            created_at: at,
            last_used_at: None,
            ..old.clone()
        };
        let batch = vec![
            WriteOp::InsertApiKey(new_key.clone()),
            WriteOp::EndApiKey { tenant_id: who.tenant_id, id, revoked_at: None, expires_at: Some(old_expires) },
            event(who, None, ("api_key", id), "rotated", json!({}), json!({"new_key_id": new_key.id})),
        ];
        self.commit(batch).await?;
        Ok(RotatedKey {
            new_key: crate::view::api_key_view(&new_key, Some(minted.raw)),
            old_key_expires_at: old_expires,
        })
    }

    async fn tenant_key(&self, who: &Principal, id: Uuid) -> AppResult<ApiKeyRecord> {
        let keys = self.store.api_keys(who.tenant_id, true).await?;
        keys.into_iter().find(|k| k.id == id).ok_or_else(|| AppError::not_found("api key"))
    }

    /// Names the calling key's own agent identity; calling again renames it.
    pub async fn register_agent(&self, who: &Principal, request: RegisterAgent) -> AppResult<AgentView> {
        require(who, &[Role::Agent, Role::Orchestrator], "register an agent")?;
        let agent_id = who.agent_id.ok_or_else(|| AppError::validation("this key has no agent identity"))?;
        let mut agent = self.store.agent(who.tenant_id, agent_id).await?.ok_or_else(|| AppError::not_found("agent"))?;
        agent.name = text("name", &request.name, 255)?;
        if let Some(agent_type) = request.agent_type {
            if !matches!(agent_type.as_str(), "orchestrator" | "implementer") {
                return Err(AppError::field("agent_type", "must be orchestrator or implementer"));
            }
            agent.agent_type = agent_type;
        }
        if request.metadata.is_some() {
            agent.metadata = metadata(request.metadata)?;
        }
        agent.updated_at = self.now();
        let audit = event(who, None, ("agent", agent.id), "registered", json!({}), json!({"name": agent.name}));
        self.commit(vec![WriteOp::UpdateAgent(agent.clone()), audit]).await.map_err(|err| {
            if err.code == ErrorCode::Conflict {
                AppError::new(
                    ErrorCode::Conflict,
                    format!("an agent named `{}` already exists in this tenant; pick another name", agent.name),
                )
            } else {
                err
            }
        })?;
        Ok(AgentView::from_record(&agent))
    }

    pub async fn list_agents(&self, who: &Principal) -> AppResult<Vec<AgentView>> {
        require(who, MANAGERS, "list agents")?;
        Ok(self.store.agents(who.tenant_id).await?.iter().map(AgentView::from_record).collect())
    }

    pub async fn get_agent(&self, who: &Principal, id: Uuid) -> AppResult<AgentView> {
        require(who, MANAGERS, "read agents")?;
        let agent = self.store.agent(who.tenant_id, id).await?.ok_or_else(|| AppError::not_found("agent"))?;
        Ok(AgentView::from_record(&agent))
    }
}

fn tenant_view(tenant: &loopctl_store::TenantRecord) -> TenantView {
    TenantView {
        id: tenant.id,
        name: tenant.name.clone(),
        slug: tenant.slug.clone(),
        email: tenant.email.clone(),
        settings: settings_json(&effective_settings(&tenant.settings)),
        status: tenant.status.clone(),
        inserted_at: tenant.created_at,
        updated_at: tenant.updated_at,
    }
}
