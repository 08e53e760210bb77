//! Rate limits per key and per tenant (WIRE.md: `rate_limit_requests_per_minute` per key,
//! three times that per tenant). Fixed one-minute windows in memory: cheap, and generous
//! enough by default that a local fleet of agents never meets them; `loopctl up` turns
//! them off.

use std::collections::HashMap;
use std::sync::Mutex;

use loopctl_app::{AppError, Principal};
use serde_json::json;
use uuid::Uuid;

/// How many windows are kept before old ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct RateLimiter {
    enabled: bool,
    /// (key or tenant id) → (window minute, requests in it).
    windows: Mutex<HashMap<Uuid, (i64, u32)>>,
}

impl RateLimiter {
    pub fn new(enabled: bool) -> RateLimiter {
        RateLimiter { enabled, windows: Mutex::default() }
    }

    /// Counts one request of `who`; refuses it once the key's or the tenant's window is full.
    pub fn check(&self, who: &Principal) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp();
        let minute = now / 60;
        let per_key = who.settings.rate_limit_requests_per_minute;
        let per_tenant = per_key.saturating_mul(3);
        let Ok(mut windows) = self.windows.lock() else {
            // A poisoned lock means a panic elsewhere; limits are a courtesy, not custody.
            return Ok(());
        };
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, (window, _)| *window == minute);
        }
        let mut count = |id: Uuid| {
            let entry = windows.entry(id).or_insert((minute, 0));
            if entry.0 != minute {
                *entry = (minute, 0);
            }
            entry.1 = entry.1.saturating_add(1);
            entry.1
        };
        let key_count = count(who.key_id);
        let tenant_count = count(who.tenant_id);
        if key_count > per_key || tenant_count > per_tenant {
            let retry_after = 60 - now % 60;
            return Err(AppError::new(
                429,
                "rate_limited",
                format!(
                    "more than {per_key} requests a minute for this key ({per_tenant} for the tenant); retry in {retry_after} s or raise rate_limit_requests_per_minute"
                ),
            )
            .with_context(json!({"retry_after_seconds": retry_after, "limit_per_key": per_key})));
        }
        Ok(())
    }
}
