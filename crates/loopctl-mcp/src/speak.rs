//! The REST API speaks to CLI users and HTTP clients: its errors say "run `loopctl contract`
//! first" and its `next_actions` are `{action, method, path, required_body}`. An agent over
//! MCP can do neither; it can only call tools. This is the one place that turns both into
//! MCP's words, so every tool's errors and next steps name tools with their arguments.
//! The stable error `code` is never touched: agents branch on it.

use loopctl_api::ErrorCode;
use loopctl_client::ClientError;
use serde_json::{Map, Value, json};

use crate::tools;

/// The role a call is made for. The reference MCP server picked one of several keys by it;
/// loopctl's acts as one identity (so a client cannot claim and report a story as the agent
/// and then verify it as the orchestrator), and uses the role only to say, when its key may
/// not make a call, which role's MCP server should.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum KeyRole {
    /// Reads and anything the reference sends with its default key (the orchestrator's).
    Default,
    Orchestrator,
    /// The implementing agent: contract, claim, start, report (seed custody), unclaim.
    Agent,
    /// A human: destructive or administrative calls.
    User,
}

/// What `loopctl verify-artifacts` is over MCP: the checks the loopctl:verify-artifacts prompt
/// describes (only the runner's verifier key records a run of them).
const VERIFY_ARTIFACTS: &str = "the checks the loopctl:verify-artifacts prompt describes (the verifier runner records the run with `record_verification_run`)";

/// The server's hints for CLI users, and what they are for an MCP agent. Keys keep their
/// backticks (or a few words around a bare word), so a story title quoted in a message is
/// not mistaken for a hint, and `loopctl blocked` never matches inside
/// `loopctl blocked --explain`. No replacement contains a key (a unit test checks), so the
/// order of the rows does not matter.
const HINTS: &[(&str, &str)] = &[
    ("`loopctl contract`", "`contract_story`"),
    ("`loopctl claim`", "`claim_story`"),
    ("`loopctl start`", "`start_story`"),
    ("`loopctl heartbeat`", "`heartbeat_story`"),
    ("`loopctl status`", "`get_story`"),
    ("`loopctl blocked --explain`", "`list_blocked_stories`"),
    ("`loopctl blocked`", "`list_blocked_stories`"),
    ("`loopctl escalation clear`", "`clear_escalation` (with a user key)"),
    ("`loopctl dispatch N --role reviewer`", "`dispatch` with role \"reviewer\" and the story's story_id"),
    ("`loopctl verify-artifacts N`", VERIFY_ARTIFACTS),
    ("`loopctl verify-artifacts`", VERIFY_ARTIFACTS),
    ("`loopctl agent register`", "`dispatch` (it mints a key with its own agent identity)"),
    ("`loopctl skill list`", "`list_skills`"),
    ("`force-unclaim`", "`force_unclaim_story`"),
    ("`loopctl reject`", "`reject_story`"),
    ("`loopctl runner`", "the verifier runner, outside MCP (its runs show in `get_story`)"),
    ("`loopctl keys create --role verifier`", "a user outside MCP (see which key you hold with `whoami`)"),
    ("from `next`", "from `list_ready_stories`"),
    ("review-complete by another agent", "`review_complete` by another agent"),
];

/// A REST error as an MCP agent reads it: the same status and code, the hints in tool names,
/// and for a call this session's key may not make, which role's MCP server makes it.
pub(crate) fn failure(mut failure: ClientError, role: KeyRole) -> ClientError {
    if let ClientError::Api { error, .. } = &mut failure {
        error.message = message(&error.message);
        if error.code == ErrorCode::Forbidden
            && let Some((whose, variable)) = role_key(role)
        {
            error.message = format!(
                "{} (this tool is made with {whose} key; one MCP server acts as one identity, so give that role an \
                 MCP server of its own, configured with only {variable})",
                error.message
            );
        }
    }
    failure
}

/// Whose key a role's calls take, and the variable a stdio MCP server reads it from.
fn role_key(role: KeyRole) -> Option<(&'static str, &'static str)> {
    match role {
        KeyRole::Default => None,
        KeyRole::Orchestrator => Some(("an orchestrator's", "LOOPCTL_ORCH_KEY")),
        KeyRole::Agent => Some(("the implementing agent's", "LOOPCTL_AGENT_KEY")),
        KeyRole::User => Some(("a user's", "LOOPCTL_USER_KEY")),
    }
}

fn message(text: &str) -> String {
    HINTS
        .iter()
        .fold(text.to_string(), |text, (cli, mcp)| if text.contains(cli) { text.replace(cli, mcp) } else { text })
}

/// The REST answer's `next_actions` as tool calls: `{"tool":"claim_story","arguments":{"story_id":…}}`.
/// An action no tool makes is left out rather than shown as a REST path the agent cannot call.
pub(crate) fn next_actions(rest: &Value, story_id: Option<&str>) -> Value {
    let calls: Vec<Value> =
        rest.as_array().into_iter().flatten().filter_map(|action| tool_call(action, story_id)).collect();
    Value::Array(calls)
}

fn tool_call(action: &Value, story_id: Option<&str>) -> Option<Value> {
    let name = action["action"].as_str()?.replace('-', "_");
    // The lifecycle tools are `<action>_story` (claim_story, heartbeat_story, …); the rest are
    // named as the action is (review_complete, request_review, clear_escalation).
    let Some(tool) = [format!("{name}_story"), name.clone()].into_iter().find(|tool| tools::find(tool).is_some())
    else {
        tracing::debug!(action = name, "a next action no MCP tool makes is left out");
        return None;
    };
    let mut arguments = Map::new();
    if let Some(id) = story_id {
        arguments.insert("story_id".into(), json!(id));
    }
    for (key, value) in action["required_body"].as_object().into_iter().flatten() {
        match (key.as_str(), value) {
            // report_story takes the artifact's fields at the top level, its path as artifact_path.
            ("artifact", Value::Object(artifact)) => {
                for (field, value) in artifact {
                    let field = if field == "path" { "artifact_path" } else { field.as_str() };
                    arguments.insert(field.to_string(), value.clone());
                }
            }
            _ => {
                arguments.insert(key.clone(), value.clone());
            }
        }
    }
    Some(json!({"tool": tool, "arguments": arguments}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::refusal;

    /// What an agent reads of a refusal: status, code, message.
    fn seen(err: &ClientError) -> (u16, &'static str, String) {
        let status = match err {
            ClientError::Api { status, .. } => *status,
            _ => 0,
        };
        (status, err.error_code().map_or("", ErrorCode::as_str), err.to_string())
    }

    #[test]
    fn server_hints_become_tool_names_and_the_code_stays() {
        let cases = [
            ("the story must be contracted before it is claimed; run `loopctl contract` first", "`contract_story`"),
            ("the story must be claimed before work starts; run `loopctl claim` first", "`claim_story`"),
            (
                "the story waits for dependencies that are not verified yet; see `loopctl blocked --explain`",
                "`list_blocked_stories`",
            ),
            ("no story is ready to claim; see `loopctl blocked` for what waits on what", "`list_blocked_stories`"),
            (
                "story is locked after 5 rejections; a user must clear it with `loopctl escalation clear`",
                "`clear_escalation`",
            ),
            (
                "a reviewer uses … the token the orchestrator dispatches for it with `loopctl dispatch N --role reviewer`",
                "`dispatch` with role \"reviewer\"",
            ),
            (
                "requires a passing, server-signed verification run; run `loopctl verify-artifacts` first",
                "`record_verification_run`",
            ),
            ("the story is already claimed; see `loopctl status`", "`get_story`"),
            ("run `loopctl start` before reporting", "`start_story`"),
            ("an orchestrator or user can `force-unclaim` it", "`force_unclaim_story`"),
            ("it is claimed and its lease is alive; pick another story from `next`", "`list_ready_stories`"),
            (
                "no review was completed after the latest report; record review-complete by another agent first",
                "`review_complete`",
            ),
        ];
        for (server, tool) in cases {
            let (status, code, message) = seen(&failure(refusal(ErrorCode::MustContractFirst, server), KeyRole::Agent));
            assert_eq!(code, "must_contract_first");
            assert_eq!(status, 409);
            assert!(message.contains(tool), "{server} → {message}");
            assert!(!message.contains("`loopctl"), "{message}");
        }
        // A story title quoted in a message is not a hint.
        let title = "contract mismatch: story_title does not match the story's title `next`";
        assert_eq!(message(title), title);
    }

    #[test]
    fn a_forbidden_call_names_the_role_whose_own_mcp_server_makes_it() {
        let refused =
            || refusal(ErrorCode::Forbidden, "the agent role may not verify; use an orchestrator or user key");
        let (status, code, message) = seen(&failure(refused(), KeyRole::Orchestrator));
        assert_eq!((status, code), (403, "forbidden"));
        assert!(message.starts_with(&refused().to_string()), "{message}");
        assert!(message.contains("only LOOPCTL_ORCH_KEY"), "{message}");
        // Other refusals, and calls any role makes, are left as they are.
        assert_eq!(seen(&failure(refused(), KeyRole::Default)), seen(&refused()));
        let stale = || refusal(ErrorCode::StaleClaim, "another agent took the story over");
        assert_eq!(seen(&failure(stale(), KeyRole::Agent)), seen(&stale()));
    }

    #[test]
    fn every_hint_names_tools_that_exist_and_no_replacement_is_a_hint_again() {
        for (cli, mcp) in HINTS {
            let named: Vec<&str> = mcp.split('`').skip(1).step_by(2).collect();
            assert!(!named.is_empty(), "{cli} names a tool");
            for tool in named {
                assert!(tools::find(tool).is_some(), "{cli} → `{tool}` is a tool");
            }
            for (other, _) in HINTS {
                assert!(!mcp.contains(other), "{mcp} would be translated again by {other}");
            }
        }
    }

    #[test]
    fn next_actions_become_tool_calls_with_their_arguments() {
        let rest = json!([
            {"action": "contract", "method": "POST", "path": "/api/v1/stories/s/contract",
             "required_body": {"story_title": "Sign-up", "ac_count": 2}},
            {"action": "report", "method": "POST", "path": "/api/v1/stories/s/report",
             "required_body": {"artifact": {"artifact_type": "commit_diff", "path": "src/a.rs"}}},
            {"action": "verify", "method": "POST", "path": "/api/v1/stories/s/verify", "required_body": {"summary": "…"}},
            {"action": "reject", "method": "POST", "path": "/api/v1/stories/s/reject", "required_body": {"reason": "…"}},
            {"action": "heartbeat", "method": "POST", "path": "/api/v1/stories/s/heartbeat", "required_body": {}},
            {"action": "unclaim", "method": "POST", "path": "/api/v1/stories/s/unclaim", "required_body": {}},
            {"action": "review-complete", "method": "POST", "path": "/api/v1/stories/s/review-complete"},
            {"action": "teleport", "method": "POST", "path": "/api/v1/stories/s/teleport", "required_body": {}},
            "not an action"
        ]);
        let calls = next_actions(&rest, Some("s"));
        assert_eq!(
            calls,
            json!([
                {"tool": "contract_story", "arguments": {"story_id": "s", "story_title": "Sign-up", "ac_count": 2}},
                {"tool": "report_story", "arguments": {"story_id": "s", "artifact_type": "commit_diff", "artifact_path": "src/a.rs"}},
                {"tool": "verify_story", "arguments": {"story_id": "s", "summary": "…"}},
                {"tool": "reject_story", "arguments": {"story_id": "s", "reason": "…"}},
                {"tool": "heartbeat_story", "arguments": {"story_id": "s"}},
                {"tool": "unclaim_story", "arguments": {"story_id": "s"}},
                {"tool": "review_complete", "arguments": {"story_id": "s"}}
            ])
        );
        assert_eq!(next_actions(&json!(null), None), json!([]));
    }
}
