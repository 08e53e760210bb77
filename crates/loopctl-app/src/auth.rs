//! Who is calling: a bearer key resolved to tenant, role and agent identity.

use chrono::{DateTime, Utc};
use loopctl_api::ErrorCode;
use loopctl_core::{Actor, Role, Settings};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use loopctl_store::{ApiKeyRecord, KeyScope, TenantRecord, WriteOp};
use uuid::Uuid;

use crate::{App, AppError, AppResult, keys, settings::effective_settings};

/// The resolved caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    pub key_name: String,
    pub key_prefix: String,
    pub role: Role,
    pub agent_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub settings: Settings,
    pub tenant: TenantRecord,
    /// For a dispatched capability token: the one story and capacity it serves.
    pub scope: Option<KeyScope>,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor { role: self.role, agent_id: self.agent_id, dispatched_as: self.scope.map(|s| s.role) }
    }

    /// Refuses a dispatched token on any story but its own.
    pub(crate) fn check_story_scope(&self, story_id: Uuid) -> Result<(), AppError> {
        match self.scope {
            Some(scope) if scope.story_id != story_id => Err(AppError::new(
                ErrorCode::ScopeViolation,
                format!("this token was dispatched for story {} only; it may not touch another story", scope.story_id),
            )),
            _ => Ok(()),
        }
    }

    pub(crate) fn actor_type(&self) -> &'static str {
        if self.key_id.is_nil() {
            "system"
        } else if self.role == Role::Superadmin {
            "superadmin"
        } else {
            "api_key"
        }
    }

    /// The server itself acting in a tenant (the lease sweeper): no key, no agent identity.
    pub(crate) fn system(tenant: TenantRecord, name: &str) -> Principal {
        Principal {
            tenant_id: tenant.id,
            key_id: Uuid::nil(),
            key_name: name.to_string(),
            key_prefix: String::new(),
            role: Role::Orchestrator,
            agent_id: None,
            expires_at: None,
            settings: effective_settings(&tenant.settings),
            tenant,
            scope: None,
        }
    }
}

/// How long an instance trusts what it read of a key and its tenant. A key revoked, a tenant
/// suspended or its settings changed through this instance take effect at once (its commits
/// clear the cache); through another instance on the same database, within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most keys remembered at once; past it the cache starts over.
const KEY_CACHE_CAP: usize = 10_000;

/// Keys and tenants as recently read, by SHA-256 of the key (never the key itself), so the
/// dozens of calls an agent makes a minute do not each read both rows again.
#[derive(Debug, Default)]
pub(crate) struct KeyCache(Mutex<HashMap<Vec<u8>, (Instant, ApiKeyRecord, TenantRecord)>>);

impl KeyCache {
    fn get(&self, hash: &[u8]) -> Option<(ApiKeyRecord, TenantRecord)> {
        let entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (read_at, key, tenant) = entries.get(hash)?;
        (read_at.elapsed() < KEY_CACHE_TTL).then(|| (key.clone(), tenant.clone()))
    }

    fn put(&self, hash: Vec<u8>, key: ApiKeyRecord, tenant: TenantRecord) {
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= KEY_CACHE_CAP {
            entries.clear();
        }
        entries.insert(hash, (Instant::now(), key, tenant));
    }

    /// Whether `batch` changes what authentication reads: a key's end, a dispatch's
    /// revocation (and its token with it), a tenant's status or settings.
    pub(crate) fn changed_by(batch: &[WriteOp]) -> bool {
        batch.iter().any(|op| {
            matches!(op, WriteOp::EndApiKey { .. } | WriteOp::RevokeDispatch { .. } | WriteOp::UpdateTenant(_))
        })
    }

    pub(crate) fn forget(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

impl App {
    /// Resolves `Authorization: Bearer <key>` to its principal.
    ///
    /// # Errors
    /// `unauthorized` for an unknown key, `token_revoked` / `token_expired` for a key that
    /// was valid once, `forbidden` for a tenant that is not active.
    pub async fn authenticate(&self, raw_key: &str) -> AppResult<Principal> {
        self.authenticate_hash(&keys::hash(raw_key.trim())).await
    }

    /// [`App::authenticate`] for a key known by its SHA-256 only: a dashboard session keeps
    /// the hash, never the key, and is re-checked on every request (revocation, expiry,
    /// tenant status) like a bearer key.
    ///
    /// # Errors
    /// As [`App::authenticate`].
    pub async fn authenticate_hash(&self, hash: &[u8]) -> AppResult<Principal> {
        let (key, tenant) = match self.keys_seen.get(hash) {
            Some(seen) => seen,
            None => {
                let (key, tenant) = self.read_key(hash).await?;
                self.keys_seen.put(hash.to_vec(), key.clone(), tenant.clone());
                (key, tenant)
            }
        };
        // Checked on every call, cached or not: the clock moves on.
        let at = self.now();
        if key.revoked_at.is_some_and(|revoked| revoked <= at) {
            return Err(AppError::new(ErrorCode::TokenRevoked, "this API key was revoked; ask a user for a new one"));
        }
        if key.expires_at.is_some_and(|expires| expires <= at) {
            return Err(AppError::new(ErrorCode::TokenExpired, "this API key has expired; ask for a new one"));
        }
        if tenant.status != "active" {
            return Err(AppError::forbidden(format!("tenant {} is {}; access denied", tenant.slug, tenant.status)));
        }
        Ok(Principal {
            tenant_id: tenant.id,
            key_id: key.id,
            key_name: key.name,
            key_prefix: key.key_prefix,
            role: key.role,
            agent_id: key.agent_id,
            expires_at: key.expires_at,
            settings: effective_settings(&tenant.settings),
            tenant,
            scope: key.scope,
        })
    }

    /// The key with this hash and its tenant, from the store.
    async fn read_key(&self, hash: &[u8]) -> AppResult<(ApiKeyRecord, TenantRecord)> {
        let key =
            self.store.api_key_by_hash(hash).await?.filter(|key| keys::same_hash(&key.key_hash, hash)).ok_or_else(
                || AppError::unauthorized("invalid API key; check LOOPCTL_API_KEY or run `loopctl auth login`"),
            )?;
        let Some(tenant_id) = key.tenant_id else {
            return Err(AppError::forbidden(
                "superadmin keys operate on tenants through `loopctl admin`, not the tenant API",
            ));
        };
        let tenant = self
            .store
            .tenant(tenant_id)
            .await?
            .ok_or_else(|| AppError::unauthorized("the tenant of this key no longer exists"))?;
        Ok((key, tenant))
    }
}
