//! Rate limits: budgets per key and per role of a tenant (WIRE.md:
//! `rate_limit_requests_per_minute` per key, three times that for each role of the tenant).
//!
//! Budgets are per role so that no party can starve another: every agent key of a tenant
//! (dispatched tokens included) draws on the tenant's one agent budget, while orchestrators
//! and users have budgets of their own. A fleet of agents at its limit therefore never locks
//! out the orchestrator that directs it or the human who would raise the limit; and a user
//! key changing tenant settings (`PATCH /api/v1/tenants/me`) is never limited, so the way out
//! of a limit is always open. A request refused by one budget is not counted in the other,
//! so one key hammering past its own limit does not drain its role's budget either.
//!
//! Fixed one-minute windows in memory: cheap, and generous enough by default that a local
//! fleet of agents never meets them; `loopctl up` turns them off.

use loopctl_api::ErrorCode;
use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::Method;
use loopctl_app::{AppError, Principal};
use loopctl_core::Role;
use serde_json::json;
use uuid::Uuid;

/// How many windows are kept before old ones are dropped.
const PRUNE_ABOVE: usize = 10_000;
/// Each role of a tenant may make this many times the per-key limit.
const ROLE_BUDGET_FACTOR: u32 = 3;

/// What a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Budget {
    Key(Uuid),
    Role { tenant: Uuid, role: Role },
}

impl Budget {
    /// The name a refusal gives the budget: `key`, `tenant agents`, `tenant orchestrators`, ….
    fn name(self) -> String {
        match self {
            Budget::Key(_) => "key".into(),
            Budget::Role { role, .. } => format!("tenant {}s", role.as_str()),
        }
    }

    fn describe(self, limit: u32) -> String {
        match self {
            Budget::Key(_) => format!("this key's budget of {limit} requests a minute is used up"),
            Budget::Role { role, .. } => format!(
                "the tenant's {} budget of {limit} requests a minute is used up (shared by every {} key of the tenant)",
                role.as_str(),
                role.as_str()
            ),
        }
    }
}

#[derive(Default)]
pub struct RateLimiter {
    enabled: bool,
    /// Budget → (window minute, requests admitted in it).
    windows: Mutex<HashMap<Budget, (i64, u32)>>,
}

impl RateLimiter {
    pub fn new(enabled: bool) -> RateLimiter {
        RateLimiter { enabled, windows: Mutex::default() }
    }

    /// Counts one request of `who` to `method path`; refuses it, naming the budget, once the
    /// key's or its role's window is full.
    pub fn check(&self, who: &Principal, method: &Method, path: &str) -> Result<(), AppError> {
        if !self.enabled || is_way_out(who, method, path) {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp();
        let minute = now / 60;
        let per_key = who.settings.rate_limit_requests_per_minute;
        let per_role = per_key.saturating_mul(ROLE_BUDGET_FACTOR);
        let budgets =
            [(Budget::Key(who.key_id), per_key), (Budget::Role { tenant: who.tenant_id, role: who.role }, per_role)];
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned lock means a panic elsewhere; limits are a courtesy, not custody.
            return Ok(());
        };
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, (window, _)| *window == minute);
        }
        let used = |windows: &HashMap<Budget, (i64, u32)>, budget: &Budget| match windows.get(budget) {
            Some((window, count)) if *window == minute => *count,
            _ => 0,
        };
        if let Some(&(budget, limit)) = budgets.iter().find(|(budget, limit)| used(&windows, budget) >= *limit) {
            let retry_after = 60 - now % 60;
            return Err(AppError::new(
                ErrorCode::RateLimited,
                format!(
                    "{}; retry in {retry_after} s, or have a user raise rate_limit_requests_per_minute \
                     (`loopctl tenant settings set rate_limit_requests_per_minute=N`)",
                    budget.describe(limit)
                ),
            )
            .with_context(json!({
                "budget": budget.name(),
                "limit": limit,
                "limit_per_key": per_key,
                "retry_after_seconds": retry_after,
            })));
        }
        for (budget, _) in budgets {
            let entry = windows.entry(budget).or_insert((minute, 0));
            if entry.0 != minute {
                *entry = (minute, 0);
            }
            entry.1 = entry.1.saturating_add(1);
        }
        Ok(())
    }
}

/// A user key changing the tenant's settings: the one call that lifts a limit, so it is never
/// limited itself.
fn is_way_out(who: &Principal, method: &Method, path: &str) -> bool {
    who.role == Role::User && method == Method::PATCH && path.trim_end_matches('/') == "/api/v1/tenants/me"
}
