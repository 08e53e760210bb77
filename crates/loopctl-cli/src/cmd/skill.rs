//! `skill`: get, list, publish, record results, stats.

use clap::Subcommand;
use serde_json::json;

use crate::context::{Ctx, encode};
use crate::output::{Format, Table, emit, text, usage};

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
            let query: Vec<(&str, String)> = version.map(|v| ("version", v.to_string())).into_iter().collect();
            let answer = ctx.client.get_query(&format!("/api/v1/skills/{}", encode(&name)), &query).await?;
            // The text alone, so it can go straight into an agent's prompt.
            if ctx.format == Format::Json {
                crate::outln!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                crate::out!("{}", text(&answer["skill"]["prompt_text"]));
            }
        }
        SkillCmd::List => {
            let answer = ctx.client.get("/api/v1/skills").await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["name", "version", "built-in", "description"]);
                for skill in answer["data"].as_array().into_iter().flatten() {
                    let built_in = if skill["built_in"] == true { "yes" } else { "" };
                    table.row(vec![
                        text(&skill["name"]),
                        text(&skill["current_version"]),
                        built_in.into(),
                        text(&skill["description"]),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
        SkillCmd::Publish { name, file, changelog } => {
            let prompt_text =
                std::fs::read_to_string(&file).map_err(|err| usage(format!("cannot read {file}: {err}")))?;
            let body = json!({"prompt_text": prompt_text, "changelog": changelog});
            let answer = ctx.client.post(&format!("/api/v1/skills/{}/versions", encode(&name)), body).await?;
            emit(ctx.format, &answer, || format!("Published {name} version {}", text(&answer["version"]["version"])));
        }
        SkillCmd::Result { name, result, version, story } => {
            let story_id = match story {
                Some(story) => Some(ctx.story_id(&story).await?),
                None => None,
            };
            let body = json!({"result": result, "version": version, "story_id": story_id});
            let answer = ctx.client.post(&format!("/api/v1/skills/{}/results", encode(&name)), body).await?;
            emit(ctx.format, &answer, || {
                format!("Recorded {result} for {name} version {}", text(&answer["skill_result"]["version"]))
            });
        }
        SkillCmd::Stats { name } => {
            let answer = ctx.client.get(&format!("/api/v1/skills/{}/stats", encode(&name))).await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["version", "results", "passed", "failed", "pass %"]);
                for v in answer["data"]["versions"].as_array().into_iter().flatten() {
                    table.row(vec![
                        text(&v["version"]),
                        text(&v["results"]),
                        text(&v["passed"]),
                        text(&v["failed"]),
                        text(&v["pass_rate"]),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
    }
    Ok(())
}
