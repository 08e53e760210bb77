//! Times and states in words a person scans: "3m ago", "12m left", "reported done".

use chrono::{DateTime, Utc};
use loopctl_api::EventView;
use maud::{Markup, html};
use serde_json::Value;

/// A JSON value as text: a string as itself, null as nothing.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A detail of an audit entry: what it recorded (`new_state`), else its metadata, else
/// what it replaced.
pub fn field<'e>(event: &'e EventView, key: &str) -> Option<&'e Value> {
    [&event.new_state, &event.metadata, &event.old_state].into_iter().find_map(|v| v.get(key)).filter(|v| !v.is_null())
}

/// A span of time, coarsely: `42s`, `12m`, `3h`, `5d`.
pub fn span(seconds: i64) -> String {
    let s = seconds.abs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `3m ago`, with the exact time as the element's title and `datetime`.
pub fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S UTC")) {
            (span((now - at).num_seconds())) " ago"
        }
    }
}

/// What a lease has left: `12m left`, or `stale 3m` once it ran out.
pub fn lease(now: DateTime<Utc>, until: DateTime<Utc>) -> (bool, String) {
    let left = (until - now).num_seconds();
    if left > 0 { (false, format!("lease {} left", span(left))) } else { (true, format!("stale {}", span(left))) }
}

/// A status as people say it: `reported_done` → `reported done`.
pub fn words(status: &str) -> String {
    status.replace('_', " ")
}

/// The first characters of a commit.
pub fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// A short description of what an audit entry changed.
pub fn change(event: &EventView) -> String {
    let state = |v: &Value| {
        let agent = v.get("agent_status").map(text).unwrap_or_default();
        let verified = v.get("verified_status").map(text).unwrap_or_default();
        if agent.is_empty() && verified.is_empty() {
            String::new()
        } else {
            format!("{} / {}", words(&agent), words(&verified))
        }
    };
    let (before, after) = (state(&event.old_state), state(&event.new_state));
    let reason = ["reason", "rejection_reason", "note", "summary", "code"]
        .iter()
        .find_map(|k| field(event, k).map(text))
        .unwrap_or_default();
    // An entry that records no statuses (a refusal, a dispatch) changed none.
    let moved = if after.is_empty() || before == after {
        String::new()
    } else if before.is_empty() {
        after
    } else {
        format!("{before} → {after}")
    };
    match (moved.is_empty(), reason.is_empty()) {
        (true, true) => String::new(),
        (false, true) => moved,
        (true, false) => reason,
        (false, false) => format!("{moved} — {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_round_down_to_the_largest_unit() {
        assert_eq!(
            (span(5), span(61), span(7200), span(200_000)),
            ("5s".into(), "1m".into(), "2h".into(), "2d".into())
        );
    }

    fn entry(old: Value, new: Value) -> EventView {
        EventView {
            id: uuid::Uuid::now_v7(),
            cursor: 1,
            entity_type: "story".into(),
            entity_id: uuid::Uuid::now_v7(),
            action: "x".into(),
            actor_type: "api_key".into(),
            actor_id: None,
            actor_agent_id: None,
            actor_label: "a".into(),
            old_state: old,
            new_state: new,
            project_id: None,
            metadata: serde_json::json!({}),
            inserted_at: Utc::now(),
        }
    }

    #[test]
    fn a_history_entry_says_what_moved_and_why() {
        let state = |a: &str, v: &str| serde_json::json!({"agent_status": a, "verified_status": v});
        let moved = entry(state("implementing", "unverified"), state("reported_done", "unverified"));
        assert_eq!(change(&moved), "implementing / unverified → reported done / unverified");
        let refused = entry(state("reported_done", "unverified"), serde_json::json!({"code": "self_verify_blocked"}));
        assert_eq!(change(&refused), "self_verify_blocked", "a refusal moved nothing");
    }

    #[test]
    fn a_lease_that_ran_out_is_stale() {
        let now = Utc::now();
        assert_eq!(lease(now, now + chrono::Duration::minutes(12)), (false, "lease 12m left".into()));
        assert!(lease(now, now - chrono::Duration::seconds(5)).0);
    }
}
