//! Token usage agents report, its sums, and a project's budget.

use crate::prelude::*;

/// What an agent spent, sent with `report` or `review-complete` (the reference's
/// `token_usage`). `cost_millicents` is thousandths of a cent: 1 USD is 100,000.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default, PartialEq)]
pub struct TokenUsageInput {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_millicents: Option<i64>,
    pub model_name: Option<String>,
}

/// Sums of reported usage (`reports` is how many reports they come from).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, Default, PartialEq, Eq)]
pub struct TokenTotalsView {
    pub reports: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_millicents: i64,
}

/// `PUT /projects/:id/budget` (users only): where `orchestrate` stops dispatching. Either
/// limit may be left out; both left out removes the budget.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, Default, PartialEq, Eq)]
pub struct ProjectBudget {
    /// Input plus output tokens.
    pub tokens: Option<i64>,
    pub cost_millicents: Option<i64>,
}

/// A project's budget against what its agents reported.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct BudgetStatus {
    pub budget: ProjectBudget,
    /// The larger of tokens used / token budget and cost used / cost budget, in percent.
    pub used_percent: f64,
    /// At or past 80 %: `status` warns.
    pub warning: bool,
    /// Reached: `orchestrate` dispatches no more agents.
    pub exhausted: bool,
}

/// The answer of `PUT /projects/:id/budget`: the budget now in force (null when removed).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct BudgetAnswer {
    pub budget: Option<BudgetStatus>,
}
