//! Tenant settings that change how the rules apply.

/// Which chain-of-custody flow a tenant runs (WIRE.md, "Tenant settings").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustodyMode {
    /// The implementer reports its own work; the orchestrator's verify is the review.
    Seed,
    /// The implementer requests review; a different agent reports and reviews; verify
    /// needs that review.
    Strict,
}

impl CustodyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CustodyMode::Seed => "seed",
            CustodyMode::Strict => "strict",
        }
    }

    pub fn parse(text: &str) -> Option<CustodyMode> {
        match text {
            "seed" => Some(CustodyMode::Seed),
            "strict" => Some(CustodyMode::Strict),
            _ => None,
        }
    }
}

/// Settings with their defaults already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub max_concurrent_agents: u32,
    pub escalate_after_rejections: u32,
    pub max_review_cycles: u32,
    pub claim_lease_seconds: u32,
    pub custody_mode: CustodyMode,
    pub require_artifact_verification: bool,
    pub require_ac_evidence: bool,
    pub rate_limit_requests_per_minute: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_concurrent_agents: 2,
            escalate_after_rejections: 3,
            max_review_cycles: 5,
            claim_lease_seconds: 1800,
            custody_mode: CustodyMode::Seed,
            require_artifact_verification: false,
            require_ac_evidence: false,
            rate_limit_requests_per_minute: 6000,
        }
    }
}
