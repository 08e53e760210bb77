//! The two status tiers of a story.

use std::fmt;
use std::str::FromStr;

/// Written by the implementing side: contract, claim, start, report (unclaim goes back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AgentStatus {
    #[default]
    Pending,
    Contracted,
    Assigned,
    Implementing,
    ReportedDone,
}

/// Written only by a verifier that is not the implementer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VerifiedStatus {
    #[default]
    Unverified,
    Verified,
    Rejected,
}

impl AgentStatus {
    pub const ALL: [AgentStatus; 5] = [
        AgentStatus::Pending,
        AgentStatus::Contracted,
        AgentStatus::Assigned,
        AgentStatus::Implementing,
        AgentStatus::ReportedDone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Pending => "pending",
            AgentStatus::Contracted => "contracted",
            AgentStatus::Assigned => "assigned",
            AgentStatus::Implementing => "implementing",
            AgentStatus::ReportedDone => "reported_done",
        }
    }

    /// Stories in flight count against `max_concurrent_agents`.
    pub fn in_flight(self) -> bool {
        matches!(self, AgentStatus::Assigned | AgentStatus::Implementing)
    }
}

impl VerifiedStatus {
    pub const ALL: [VerifiedStatus; 3] =
        [VerifiedStatus::Unverified, VerifiedStatus::Verified, VerifiedStatus::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            VerifiedStatus::Unverified => "unverified",
            VerifiedStatus::Verified => "verified",
            VerifiedStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for VerifiedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| {
            format!("unknown agent_status `{s}`; use pending, contracted, assigned, implementing or reported_done")
        })
    }
}

impl FromStr for VerifiedStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VerifiedStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown verified_status `{s}`; use unverified, verified or rejected"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_strings() {
        for status in AgentStatus::ALL {
            assert_eq!(status.as_str().parse::<AgentStatus>(), Ok(status));
        }
        for status in VerifiedStatus::ALL {
            assert_eq!(status.as_str().parse::<VerifiedStatus>(), Ok(status));
        }
        assert!("done".parse::<AgentStatus>().is_err());
        assert!("ok".parse::<VerifiedStatus>().is_err());
    }

    #[test]
    fn only_assigned_and_implementing_are_in_flight() {
        let in_flight: Vec<_> = AgentStatus::ALL.into_iter().filter(|s| s.in_flight()).collect();
        assert_eq!(in_flight, vec![AgentStatus::Assigned, AgentStatus::Implementing]);
    }
}
