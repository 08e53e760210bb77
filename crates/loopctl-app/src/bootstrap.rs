//! Creating a tenant with one key per role, directly on the store (`admin init`, `up`).

use loopctl_api::ErrorCode;
use loopctl_core::Role;
use loopctl_store::{AgentRecord, ApiKeyRecord, TenantRecord, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::{App, AppError, AppResult, keys, text};

#[derive(Debug, Clone)]
pub struct BootstrapRequest {
    pub tenant_name: String,
    pub slug: Option<String>,
    pub email: Option<String>,
}

/// What `admin init --format json` prints: the only time these keys are shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bootstrap {
    pub tenant_id: Uuid,
    pub tenant_slug: String,
    pub keys: BootstrapKeys,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BootstrapKeys {
    pub user: String,
    pub orchestrator: String,
    pub agent: String,
    /// For `loopctl runner` (absent in the keys of tenants made before verifiers existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
}

/// `My Team!` → `my-team`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for ch in name.trim().to_lowercase().chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(64).collect()
}

/// Whether `slug` has the reference's shape: `^[a-z0-9][a-z0-9-]*[a-z0-9]$`, 2..64.
pub fn valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    (2..=64).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

impl App {
    /// Mints an operator (superadmin) key: no tenant, shown once.
    ///
    /// # Errors
    /// When the store refuses the write.
    pub async fn create_superadmin_key(&self) -> AppResult<String> {
        let minted = keys::mint()?;
        let key = ApiKeyRecord {
            id: Uuid::now_v7(),
            tenant_id: None,
            name: "superadmin".into(),
            key_hash: minted.hash,
            key_prefix: minted.prefix,
            role: Role::Superadmin,
            agent_id: None,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            created_at: self.now(),
            scope: None,
        };
        self.store.commit(vec![WriteOp::InsertApiKey(key)]).await?;
        Ok(minted.raw)
    }

    /// Creates a tenant, an orchestrator and an implementer identity, and a user,
    /// orchestrator and agent key, in one transaction.
    ///
    /// # Errors
    /// `validation_failed` for a bad name or slug, `conflict` when the slug is taken.
    pub async fn bootstrap_tenant(&self, request: BootstrapRequest) -> AppResult<Bootstrap> {
        let name = text("tenant", &request.tenant_name, 120)?;
        let slug = request.slug.unwrap_or_else(|| slugify(&name));
        if !valid_slug(&slug) {
            return Err(AppError::field(
                "slug",
                "must be 2 to 64 lowercase letters, digits or dashes, not starting or ending with a dash",
            ));
        }
        let at = self.now();
        let tenant_id = Uuid::now_v7();
        let mut batch = vec![WriteOp::InsertTenant(TenantRecord {
            id: tenant_id,
            name,
            slug: slug.clone(),
            email: request.email,
            settings: json!({}),
            status: "active".into(),
            created_at: at,
            updated_at: at,
        })];
        let mut raw = Vec::new();
        for role in [Role::User, Role::Orchestrator, Role::Agent, Role::Verifier] {
            let agent_id = match role {
                Role::User | Role::Superadmin | Role::Verifier => None,
                Role::Orchestrator | Role::Agent => {
                    let id = Uuid::now_v7();
                    let (name, agent_type) = if role == Role::Orchestrator {
                        ("orchestrator", "orchestrator")
                    } else {
                        ("agent", "implementer")
                    };
                    batch.push(WriteOp::InsertAgent(AgentRecord {
                        id,
                        tenant_id,
                        name: name.into(),
                        agent_type: agent_type.into(),
                        status: "active".into(),
                        metadata: json!({}),
                        created_at: at,
                        updated_at: at,
                    }));
                    Some(id)
                }
            };
            let minted = keys::mint()?;
            batch.push(WriteOp::InsertApiKey(ApiKeyRecord {
                id: Uuid::now_v7(),
                tenant_id: Some(tenant_id),
                name: format!("{role}-bootstrap"),
                key_hash: minted.hash,
                key_prefix: minted.prefix,
                role,
                agent_id,
                expires_at: None,
                revoked_at: None,
                last_used_at: None,
                created_at: at,
                scope: None,
            }));
            raw.push(minted.raw);
        }
        self.store.commit(batch).await.map_err(|err| match err {
            loopctl_store::StoreError::Duplicate { .. } => AppError::new(
                ErrorCode::Conflict,
                format!("a tenant with slug `{slug}` already exists; pick another name or --slug"),
            ),
            other => other.into(),
        })?;
        let mut raw = raw.into_iter();
        let mut next = || raw.next().unwrap_or_default();
        Ok(Bootstrap {
            tenant_id,
            tenant_slug: slug,
            keys: BootstrapKeys { user: next(), orchestrator: next(), agent: next(), verifier: Some(next()) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_names() {
        assert_eq!(slugify("My Team!"), "my-team");
        assert_eq!(slugify("  acme  corp "), "acme-corp");
        assert!(valid_slug("my-team"));
        assert!(!valid_slug("-x"));
        assert!(!valid_slug("a"));
        assert!(!valid_slug("Has Caps"));
    }
}
