//! stdio mode's identity: the one key of this MCP process, from
//! the reference MCP server's variables (`LOOPCTL_API_KEY`, `LOOPCTL_ORCH_KEY`,
//! `LOOPCTL_AGENT_KEY`, `LOOPCTL_USER_KEY`).
//!
//! The reference picked a key per tool from several of these. loopctl does not: a process
//! that held the agent's and the orchestrator's keys would let its client contract, claim and
//! report a story as the agent and then verify it as the orchestrator, its own work with two
//! identities. So one process acts as one identity, and a setup with several roles runs one
//! MCP server per role ([`RemoteConfig::single_key`] refuses anything else).

/// The variables a key may come from, in the order a refusal names them.
pub const KEY_VARIABLES: [&str; 4] = ["LOOPCTL_API_KEY", "LOOPCTL_ORCH_KEY", "LOOPCTL_AGENT_KEY", "LOOPCTL_USER_KEY"];

/// The keys the environment offers (the server is the CLI's: flags, env, profile).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteConfig {
    pub api_key: Option<String>,
    pub orch_key: Option<String>,
    pub agent_key: Option<String>,
    pub user_key: Option<String>,
}

impl RemoteConfig {
    /// Reads the `LOOPCTL_*` variables; empty values count as unset.
    pub fn from_env() -> RemoteConfig {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        RemoteConfig {
            api_key: var(KEY_VARIABLES[0]),
            orch_key: var(KEY_VARIABLES[1]),
            agent_key: var(KEY_VARIABLES[2]),
            user_key: var(KEY_VARIABLES[3]),
        }
    }

    /// The one key this process acts with and the variable it came from, `None` when no
    /// variable holds one. A prompt written for the reference that names a single role's key
    /// (only `LOOPCTL_ORCH_KEY`, or only `LOOPCTL_AGENT_KEY`) works as it is; the same key in
    /// several variables is still one identity.
    ///
    /// # Errors
    /// When the variables hold more than one distinct key: why that is refused, and how to
    /// configure one MCP server per role instead.
    pub fn single_key(&self) -> Result<Option<(&'static str, &str)>, String> {
        let set: Vec<(&'static str, &str)> = KEY_VARIABLES
            .into_iter()
            .zip([&self.api_key, &self.orch_key, &self.agent_key, &self.user_key])
            .filter_map(|(name, key)| key.as_deref().map(|key| (name, key)))
            .collect();
        let Some(&(first_name, first_key)) = set.first() else {
            return Ok(None);
        };
        if set.iter().all(|(_, key)| *key == first_key) {
            return Ok(Some((first_name, first_key)));
        }
        let names: Vec<&str> = set.iter().map(|(name, _)| *name).collect();
        Err(format!(
            "loopctl mcp acts as one identity, but {} hold different keys. One MCP server with the keys of several \
             identities would let its client contract, claim and report a story as the agent and then verify it \
             as the orchestrator: its own work. Configure one MCP server per role, each with one key: e.g. \
             `loopctl-orchestrator` (`loopctl mcp` with only LOOPCTL_ORCH_KEY) and `loopctl-agent` (`loopctl mcp` \
             with only LOOPCTL_AGENT_KEY); see the MCP section of loopctl's README",
            names.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: [Option<&str>; 4]) -> RemoteConfig {
        let [api_key, orch_key, agent_key, user_key] = keys.map(|k| k.map(str::to_string));
        RemoteConfig { api_key, orch_key, agent_key, user_key }
    }

    #[test]
    fn one_role_s_key_is_the_identity_and_two_different_keys_are_refused() {
        assert_eq!(config([None, None, Some("lc_a"), None]).single_key(), Ok(Some(("LOOPCTL_AGENT_KEY", "lc_a"))));
        assert_eq!(config([None, Some("lc_o"), None, None]).single_key(), Ok(Some(("LOOPCTL_ORCH_KEY", "lc_o"))));
        assert_eq!(
            config([Some("lc_o"), Some("lc_o"), None, None]).single_key(),
            Ok(Some(("LOOPCTL_API_KEY", "lc_o")))
        );
        assert_eq!(config([None; 4]).single_key(), Ok(None));
        let refused = config([None, Some("lc_o"), Some("lc_a"), None]).single_key().expect_err("two identities");
        assert!(refused.contains("LOOPCTL_ORCH_KEY, LOOPCTL_AGENT_KEY"), "{refused}");
        assert!(refused.contains("loopctl-orchestrator") && refused.contains("verify"), "{refused}");
        assert!(config([Some("lc_x"), None, None, Some("lc_u")]).single_key().is_err());
    }
}
