//! Tenant settings: defaults, parsing (numbers may come as strings), and validation.

use loopctl_core::{CustodyMode, Settings};
use serde_json::{Map, Value, json};

use crate::{AppError, AppResult};

/// The settings a tenant runs with: what it stored, defaults for the rest.
pub fn effective_settings(stored: &Value) -> Settings {
    let defaults = Settings::default();
    let number = |key: &str, default: u32| stored.get(key).and_then(as_u32).unwrap_or(default);
    let flag = |key: &str| stored.get(key).and_then(as_bool).unwrap_or(false);
    Settings {
        max_concurrent_agents: number("max_concurrent_agents", defaults.max_concurrent_agents),
        escalate_after_rejections: number("escalate_after_rejections", defaults.escalate_after_rejections),
        max_review_cycles: number("max_review_cycles", defaults.max_review_cycles),
        claim_lease_seconds: number("claim_lease_seconds", defaults.claim_lease_seconds),
        custody_mode: stored
            .get("custody_mode")
            .and_then(Value::as_str)
            .and_then(CustodyMode::parse)
            .unwrap_or(defaults.custody_mode),
        require_artifact_verification: flag("require_artifact_verification"),
        require_ac_evidence: flag("require_ac_evidence"),
        rate_limit_requests_per_minute: number(
            "rate_limit_requests_per_minute",
            defaults.rate_limit_requests_per_minute,
        ),
    }
}

/// Settings as the API shows them.
pub fn settings_json(settings: &Settings) -> Value {
    json!({
        "max_concurrent_agents": settings.max_concurrent_agents,
        "escalate_after_rejections": settings.escalate_after_rejections,
        "max_review_cycles": settings.max_review_cycles,
        "claim_lease_seconds": settings.claim_lease_seconds,
        "custody_mode": settings.custody_mode.as_str(),
        "require_artifact_verification": settings.require_artifact_verification,
        "require_ac_evidence": settings.require_ac_evidence,
        "rate_limit_requests_per_minute": settings.rate_limit_requests_per_minute,
    })
}

/// Merges a `PATCH` of settings into the stored ones, refusing unknown keys and bad values
/// (a typo in a setting name must not be silently ignored).
pub(crate) fn merge(stored: &Value, patch: &Value) -> AppResult<Value> {
    let Some(patch) = patch.as_object() else {
        return Err(AppError::field("settings", "must be a JSON object"));
    };
    let mut merged: Map<String, Value> = stored.as_object().cloned().unwrap_or_default();
    for (key, value) in patch {
        let normalised = match key.as_str() {
            "max_concurrent_agents" => ranged(key, value, 1, 1000)?,
            "escalate_after_rejections" | "max_review_cycles" => ranged(key, value, 1, 100)?,
            "claim_lease_seconds" => ranged(key, value, 10, 7 * 24 * 3600)?,
            "rate_limit_requests_per_minute" => ranged(key, value, 1, 10_000_000)?,
            "require_artifact_verification" | "require_ac_evidence" => {
                Value::Bool(as_bool(value).ok_or_else(|| AppError::field(key, "must be true or false"))?)
            }
            "custody_mode" => {
                let mode = value.as_str().and_then(CustodyMode::parse);
                let mode = mode.ok_or_else(|| AppError::field(key, "must be \"seed\" or \"strict\""))?;
                Value::String(mode.as_str().into())
            }
            other => {
                return Err(AppError::field(
                    other,
                    "is not a setting; known settings: max_concurrent_agents, escalate_after_rejections, \
                     max_review_cycles, claim_lease_seconds, custody_mode, require_artifact_verification, \
                     require_ac_evidence, rate_limit_requests_per_minute",
                ));
            }
        };
        merged.insert(key.clone(), normalised);
    }
    let settings = effective_settings(&Value::Object(merged.clone()));
    if settings.max_review_cycles < settings.escalate_after_rejections {
        return Err(AppError::field(
            "max_review_cycles",
            "must be at least escalate_after_rejections (the lock comes after the flag)",
        ));
    }
    Ok(Value::Object(merged))
}

fn ranged(key: &str, value: &Value, min: u32, max: u32) -> AppResult<Value> {
    match as_u32(value) {
        Some(n) if (min..=max).contains(&n) => Ok(json!(n)),
        _ => Err(AppError::field(key, format!("must be a whole number from {min} to {max}"))),
    }
}

fn as_u32(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_is_not_stored() {
        let settings = effective_settings(&json!({"max_concurrent_agents": "3"}));
        assert_eq!(settings.max_concurrent_agents, 3);
        assert_eq!(settings.escalate_after_rejections, 3);
        assert_eq!(settings.custody_mode, CustodyMode::Seed);
    }

    #[test]
    fn merge_accepts_strings_and_refuses_unknown_keys() {
        let merged =
            merge(&json!({}), &json!({"max_concurrent_agents": "4", "custody_mode": "strict"})).expect("valid");
        assert_eq!(merged, json!({"max_concurrent_agents": 4, "custody_mode": "strict"}));
        assert!(merge(&json!({}), &json!({"max_concurent_agents": 4})).is_err());
        assert!(merge(&json!({}), &json!({"max_concurrent_agents": 0})).is_err());
        assert!(merge(&json!({}), &json!({"max_review_cycles": 2})).is_err());
        assert!(merge(&json!({}), &json!(["x"])).is_err());
    }
}
