//! Token usage: what agents report spending, its sums, and the project budget that stops
//! `orchestrate` from dispatching more.

use loopctl_api::{BudgetStatus, ProjectBudget, TokenTotalsView, TokenUsageInput};
use loopctl_store::{ProjectRecord, StoryRecord, TokenTotals, TokenUsageRecord, WriteOp};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::view::FromRecord;
use crate::{App, AppError, AppResult, HUMANS, Principal, event, opt_text, require};

/// Where a project's budget lives in its metadata (changed only by `set_project_budget`).
pub(crate) const BUDGET_KEY: &str = "budget";

/// At this share of the budget `status` warns.
const WARN_PERCENT: f64 = 80.0;

/// Far beyond any real run, small enough that a project's sum stays an `i64`.
const MAX_TOKENS: i64 = 1_000_000_000_000;

impl FromRecord<TokenTotals> for TokenTotalsView {
    fn from_record(t: &TokenTotals) -> Self {
        TokenTotalsView {
            reports: t.reports,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cost_millicents: t.cost_millicents,
        }
    }
}

/// The sums of a story's rows.
pub(crate) fn story_totals(rows: &[TokenUsageRecord]) -> TokenTotalsView {
    rows.iter().fold(TokenTotalsView::default(), |sum, row| TokenTotalsView {
        reports: sum.reports + 1,
        input_tokens: sum.input_tokens.saturating_add(row.input_tokens),
        output_tokens: sum.output_tokens.saturating_add(row.output_tokens),
        cost_millicents: sum.cost_millicents.saturating_add(row.cost_millicents),
    })
}

/// The row a report or review writes for the usage it carries (validated: counts from 0 to
/// 10^12, a model name of at most 200 characters).
pub(crate) fn usage_op(
    who: &Principal,
    story: &StoryRecord,
    phase: &str,
    usage: &TokenUsageInput,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<WriteOp> {
    let bounded = |field: &str, value: i64| {
        if (0..=MAX_TOKENS).contains(&value) {
            Ok(value)
        } else {
            Err(AppError::field(&format!("token_usage.{field}"), "must be a whole number from 0 to 1000000000000"))
        }
    };
    Ok(WriteOp::InsertTokenUsage(TokenUsageRecord {
        id: Uuid::now_v7(),
        tenant_id: who.tenant_id,
        project_id: story.project_id,
        story_id: story.id,
        agent_id: who.agent_id,
        phase: phase.into(),
        input_tokens: bounded("input_tokens", usage.input_tokens)?,
        output_tokens: bounded("output_tokens", usage.output_tokens)?,
        cost_millicents: bounded("cost_millicents", usage.cost_millicents.unwrap_or(0))?,
        model_name: opt_text("token_usage.model_name", usage.model_name.as_deref(), 200)?,
        created_at: at,
    }))
}

/// The project's budget, if one is set and readable.
fn budget_of(project: &ProjectRecord) -> Option<ProjectBudget> {
    project.metadata.get(BUDGET_KEY).and_then(|b| serde_json::from_value(b.clone()).ok())
}

/// How far the project is into its budget: the larger share of the two limits.
pub(crate) fn budget_status(project: &ProjectRecord, used: &TokenTotals) -> Option<BudgetStatus> {
    let budget = budget_of(project)?;
    let share = |used: i64, limit: Option<i64>| limit.map(|limit| percent(used, limit));
    let tokens = share(used.input_tokens.saturating_add(used.output_tokens), budget.tokens);
    let cost = share(used.cost_millicents, budget.cost_millicents);
    let used_percent = tokens.into_iter().chain(cost).fold(0.0, f64::max);
    Some(BudgetStatus { budget, used_percent, warning: used_percent >= WARN_PERCENT, exhausted: used_percent >= 100.0 })
}

fn percent(used: i64, limit: i64) -> f64 {
    if limit <= 0 {
        return 100.0;
    }
    // Rounded to a tenth; exact enough for a warning, and stable in JSON.
    ((used as f64) * 1000.0 / (limit as f64)).round() / 10.0
}

impl App {
    /// Sets (or, with both limits left out, removes) the project's budget. Users only: the
    /// orchestrator whose dispatching it stops cannot raise it.
    pub async fn set_project_budget(
        &self,
        who: &Principal,
        id: Uuid,
        budget: ProjectBudget,
    ) -> AppResult<Option<BudgetStatus>> {
        require(who, HUMANS, "set a project's budget")?;
        for (field, limit) in [("tokens", budget.tokens), ("cost_millicents", budget.cost_millicents)] {
            if limit.is_some_and(|limit| !(1..=MAX_TOKENS).contains(&limit)) {
                return Err(AppError::field(field, "must be a whole number from 1 to 1000000000000, or left out"));
            }
        }
        let mut project = self.project_of(who, id).await?;
        let before = project.metadata.get(BUDGET_KEY).cloned().unwrap_or(Value::Null);
        if !project.metadata.is_object() {
            project.metadata = json!({});
        }
        let after = if budget == ProjectBudget::default() {
            if let Some(map) = project.metadata.as_object_mut() {
                map.remove(BUDGET_KEY);
            }
            Value::Null
        } else {
            let value = serde_json::to_value(budget).map_err(|_| AppError::internal())?;
            project.metadata[BUDGET_KEY] = value.clone();
            value
        };
        project.updated_at = self.now();
        let audit =
            event(who, Some(id), ("project", id), "budget_set", json!({"budget": before}), json!({"budget": after}));
        self.commit(vec![WriteOp::UpdateProject(project.clone()), audit]).await?;
        let used = self.store.project_token_totals(who.tenant_id, id).await?;
        Ok(budget_status(&project, &used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project_with(budget: Value) -> ProjectRecord {
        ProjectRecord {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            name: "p".into(),
            slug: "p".into(),
            repo_url: None,
            description: None,
            tech_stack: None,
            mission: None,
            status: "active".into(),
            metadata: json!({ BUDGET_KEY: budget }),
            created_at: chrono::DateTime::UNIX_EPOCH,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn used(tokens: i64, cost: i64) -> TokenTotals {
        TokenTotals { reports: 1, input_tokens: tokens / 2, output_tokens: tokens - tokens / 2, cost_millicents: cost }
    }

    #[test]
    fn the_nearer_limit_decides_how_far_a_project_is_into_its_budget() {
        let project = project_with(json!({"tokens": 1000, "cost_millicents": 100_000}));
        let status = budget_status(&project, &used(500, 90_000)).expect("a budget");
        assert_eq!(status.used_percent, 90.0);
        assert!(status.warning && !status.exhausted);
        let status = budget_status(&project, &used(1000, 0)).expect("a budget");
        assert!(status.exhausted, "reaching the token limit exhausts the budget");
    }

    #[test]
    fn a_project_without_a_budget_has_no_budget_status() {
        let mut project = project_with(Value::Null);
        project.metadata = json!({});
        assert_eq!(budget_status(&project, &used(10, 10)), None);
    }
}
