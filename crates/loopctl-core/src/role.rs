//! Key roles and the order between them.

use std::fmt;
use std::str::FromStr;

/// The role of an API key. Order matters for "at least" checks: superadmin > user >
/// orchestrator > agent > verifier. A verifier (held by `loopctl runner`, minted only by a
/// user) records verification runs and reads; it takes part in no lifecycle call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Verifier,
    Agent,
    Orchestrator,
    User,
    Superadmin,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Superadmin, Role::User, Role::Orchestrator, Role::Agent, Role::Verifier];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Superadmin => "superadmin",
            Role::User => "user",
            Role::Orchestrator => "orchestrator",
            Role::Agent => "agent",
            Role::Verifier => "verifier",
        }
    }

    /// Whether this role stands at or above `other` in the hierarchy.
    pub fn at_least(self, other: Role) -> bool {
        self >= other
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "superadmin" => Ok(Role::Superadmin),
            "user" => Ok(Role::User),
            "orchestrator" => Ok(Role::Orchestrator),
            "agent" => Ok(Role::Agent),
            "verifier" => Ok(Role::Verifier),
            other => Err(format!("unknown role `{other}`; use one of superadmin, user, orchestrator, agent, verifier")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_orders_roles() {
        assert!(Role::Superadmin.at_least(Role::User));
        assert!(Role::User.at_least(Role::Orchestrator));
        assert!(Role::Orchestrator.at_least(Role::Agent));
        assert!(!Role::Agent.at_least(Role::Orchestrator));
        assert!(!Role::Verifier.at_least(Role::Agent), "a verifier is no agent");
    }

    #[test]
    fn roles_round_trip_through_strings() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
