//! `skill`: get, list, publish, record results, stats.

use clap::Subcommand;
use loopctl_api::{PublishSkill, RecordSkillResult, SkillVersionParams};

use crate::context::Ctx;
use crate::output::{Format, Table, emit, json_number, or_dash, usage};

#[derive(Subcommand, Debug)]
pub enum SkillCmd {
    /// Print a skill's text (the latest version, or --version N).
    ///
    /// Example: loopctl skill get loopctl:review
    Get {
        name: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// The skills of this tenant, built-in and published.
    List,
    /// Publish the next version of a skill from a file (user keys).
    ///
    /// Example: loopctl skill publish loopctl:review --file review-v2.md --changelog "asks for tenant tests"
    Publish {
        name: String,
        #[arg(long)]
        file: String,
        #[arg(long)]
        changelog: Option<String>,
    },
    /// Record how a story went with a skill version.
    ///
    /// Example: loopctl skill result loopctl:review --result pass --story 2.1
    Result {
        name: String,
        #[arg(long, value_parser = ["pass", "fail"])]
        result: String,
        #[arg(long)]
        version: Option<i64>,
        #[arg(long)]
        story: Option<String>,
    },
    /// Pass rate per version.
    ///
    /// Example: loopctl skill stats loopctl:review
    Stats { name: String },
}

pub async fn run(ctx: &Ctx, command: SkillCmd) -> anyhow::Result<()> {
    match command {
        SkillCmd::Get { name, version } => {
            let answer = ctx.client.get_skill(&name, &SkillVersionParams { version }).await?;
            // The text alone, so it can go straight into an agent's prompt.
            if ctx.format == Format::Json {
                crate::output::print_json(&answer);
            } else {
                crate::out!("{}", answer.skill.prompt_text);
            }
        }
        SkillCmd::List => {
            let answer = ctx.client.list_skills().await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["name", "version", "built-in", "description"]);
                for skill in &answer.data {
                    let built_in = if skill.built_in { "yes" } else { "" };
                    table.row(vec![
                        skill.name.clone(),
                        skill.current_version.to_string(),
                        built_in.into(),
                        or_dash(skill.description.as_ref()),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
        SkillCmd::Publish { name, file, changelog } => {
            let prompt_text =
                std::fs::read_to_string(&file).map_err(|err| usage(format!("cannot read {file}: {err}")))?;
            let version = PublishSkill { prompt_text, changelog, description: None };
            let answer = ctx.client.publish_skill_version(&name, &version).await?;
            emit(ctx.format, &answer, || format!("Published {name} version {}", answer.version.version));
        }
        SkillCmd::Result { name, result, version, story } => {
            let story_id = match story {
                Some(story) => Some(ctx.story_id(&story).await?),
                None => None,
            };
            let recorded = RecordSkillResult { version, story_id, result: result.clone(), metrics: None };
            let answer = ctx.client.record_skill_result(&name, &recorded).await?;
            emit(ctx.format, &answer, || {
                format!("Recorded {result} for {name} version {}", answer.skill_result.version)
            });
        }
        SkillCmd::Stats { name } => {
            let answer = ctx.client.skill_stats(&name).await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["version", "results", "passed", "failed", "pass %"]);
                for v in &answer.data.versions {
                    table.row(vec![
                        v.version.to_string(),
                        v.results.to_string(),
                        v.passed.to_string(),
                        v.failed.to_string(),
                        json_number(v.pass_rate),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
    }
    Ok(())
}
