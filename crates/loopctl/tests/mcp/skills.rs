//! The built-in skills, as agents get them (MCP prompts from a real server), teach commands
//! the built binary really has: every `loopctl …` they name is checked against its `--help`
//! — the subcommands, each flag, the value of a flag with a fixed set of values, the flags
//! and arguments the command requires.

use std::collections::HashMap;

use loopctl_mcp::{Tier, tool_names};
use rmcp::model::GetPromptRequestParams;

use crate::support::*;

const SKILLS: &[&str] = &["loopctl:orchestrate", "loopctl:review", "loopctl:verify-artifacts", "loopctl:contract"];

async fn skill_text(mcp: &Mcp, name: &str) -> String {
    let prompt = mcp.get_prompt(GetPromptRequestParams::new(name)).await.expect("prompts/get");
    let message = serde_json::to_value(&prompt.messages[0]).expect("message");
    message["content"]["text"].as_str().expect("text").to_string()
}

/// Every code span of a text.
fn spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The words of a command as a shell splits them: quotes group, `|` ends the command.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c == '|' => break,
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// One option of a help text: whether it takes a value, and the values it allows if listed.
#[derive(Default)]
struct Flag {
    takes_value: bool,
    values: Vec<String>,
}

/// A `--help` text of the built binary, read.
struct Help {
    subcommands: Vec<String>,
    flags: HashMap<String, Flag>,
    /// Flags and positional arguments the usage line says are required.
    required_flags: Vec<String>,
    required_arguments: usize,
}

impl Help {
    fn parse(text: &str) -> Help {
        // clap lists a subcommand at an indent of two; wrapped descriptions are indented deeper.
        let subcommands = text
            .lines()
            .skip_while(|line| !line.starts_with("Commands:"))
            .skip(1)
            .take_while(|line| !line.trim().is_empty())
            .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_string)
            .collect();
        let mut flags: HashMap<String, Flag> = HashMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            let indent = line.len() - line.trim_start().len();
            let trimmed = line.trim();
            if indent <= 6 && trimmed.starts_with('-') {
                let tokens: Vec<&str> = trimmed.split_whitespace().collect();
                let long = tokens.iter().position(|t| t.starts_with("--"));
                current = long.map(|at| tokens[at].trim_end_matches(',').trim_start_matches("--").to_string());
                if let (Some(at), Some(name)) = (long, &current) {
                    let takes_value = tokens.get(at + 1).is_some_and(|t| t.starts_with('<'));
                    flags.insert(name.clone(), Flag { takes_value, values: Vec::new() });
                }
            } else if let (Some(list), Some(name)) = (trimmed.strip_prefix("[possible values: "), &current)
                && let Some(flag) = flags.get_mut(name)
            {
                flag.values = list.trim_end_matches(']').split(", ").map(str::to_string).collect();
            }
        }
        let usage: Vec<&str> = text
            .lines()
            .find_map(|line| line.strip_prefix("Usage: "))
            .map(|usage| usage.split_whitespace().collect())
            .unwrap_or_default();
        let required_flags = usage.iter().filter_map(|t| t.strip_prefix("--")).map(str::to_string).collect();
        let required_arguments = usage
            .iter()
            .enumerate()
            .filter(|(at, t)| t.starts_with('<') && !(*at > 0 && usage[at - 1].starts_with("--")))
            .count();
        Help { subcommands, flags, required_flags, required_arguments }
    }
}

/// The built binary's help, per subcommand path.
struct Cli<'a> {
    world: &'a World,
    helps: HashMap<Vec<String>, Option<String>>,
}

impl Cli<'_> {
    async fn help(&mut self, path: &[String]) -> Option<String> {
        if let Some(known) = self.helps.get(path) {
            return known.clone();
        }
        let output = loopctl(&self.world.dir).args(path).arg("--help").output().await.expect("loopctl runs");
        let help = output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned());
        self.helps.insert(path.to_vec(), help.clone());
        help
    }

    /// What is wrong with `command` for the real CLI; empty when nothing is.
    async fn problems(&mut self, command: &str) -> Vec<String> {
        let words = words(command);
        let mut problems = Vec::new();
        let mut path: Vec<String> = Vec::new();
        let Some(mut help) = self.help(&path).await.map(|text| Help::parse(&text)) else {
            return vec!["`loopctl --help` fails".into()];
        };
        let mut given_flags = Vec::new();
        let mut arguments = 0;
        let mut rest = words.iter().skip(1);
        while let Some(word) = rest.next() {
            if let Some(flag) = word.strip_prefix("--") {
                let (name, inline) = match flag.split_once('=') {
                    Some((name, value)) => (name, Some(value.to_string())),
                    None => (flag, None),
                };
                given_flags.push(name.to_string());
                let Some(known) = help.flags.get(name) else {
                    problems.push(format!("`loopctl {}` has no --{name}", path.join(" ")));
                    continue;
                };
                let value = if known.takes_value { inline.or_else(|| rest.next().cloned()) } else { None };
                // Placeholders (`<sha>`, `…`, `$PROJECT`) stand for a value; literal words must be allowed ones.
                let literal = value
                    .as_deref()
                    .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
                if let Some(value) = literal
                    && !known.values.is_empty()
                    && !known.values.iter().any(|allowed| allowed == value)
                {
                    problems.push(format!("--{name} {value}: allowed are {}", known.values.join(", ")));
                }
            } else if arguments == 0 && help.subcommands.iter().any(|s| s == word) {
                path.push(word.clone());
                match self.help(&path).await {
                    Some(text) => help = Help::parse(&text),
                    None => {
                        problems.push(format!("`loopctl {} --help` fails", path.join(" ")));
                        return problems;
                    }
                }
            } else {
                arguments += 1;
            }
        }
        for flag in &help.required_flags {
            if !given_flags.contains(flag) {
                problems.push(format!("`loopctl {}` requires --{flag}", path.join(" ")));
            }
        }
        if arguments < help.required_arguments {
            problems.push(format!("`loopctl {}` needs {} argument(s)", path.join(" "), help.required_arguments));
        }
        if path.is_empty() {
            problems.push("names no subcommand".into());
        }
        problems.into_iter().map(|problem| format!("{command}: {problem}")).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_the_built_in_skills_name_is_a_real_cli_command() {
    let w = World::start().await;
    let mcp = w.mcp(&[("LOOPCTL_ORCH_KEY", &w.keys.orch)]).await;
    let mut cli = Cli { world: &w, helps: HashMap::new() };
    let mut problems = Vec::new();
    let mut texts = HashMap::new();
    for name in SKILLS {
        let text = skill_text(&mcp, name).await;
        assert_eq!(text.matches('`').count() % 2, 0, "{name}: every code span is closed");
        let commands: Vec<&str> = spans(&text).into_iter().filter(|span| span.starts_with("loopctl ")).collect();
        assert!(commands.len() >= 3, "{name} teaches commands: {commands:?}");
        for command in commands {
            problems.extend(cli.problems(command).await);
            // `loopctl verify` is to require its verdict; the skills already give it.
            if words(command).get(1).map(String::as_str) == Some("verify") && !command.contains("--result") {
                problems.push(format!("{command}: says no --result"));
            }
        }
        texts.insert(*name, text);
    }
    assert!(problems.is_empty(), "commands the CLI does not have:\n{}", problems.join("\n"));

    // The evidence check is the command that does it, with a clean re-run of the tests.
    let verify_artifacts = &texts["loopctl:verify-artifacts"];
    assert!(verify_artifacts.contains("`loopctl verify-artifacts N"), "{verify_artifacts}");
    assert!(verify_artifacts.contains("--run \""), "{verify_artifacts}");
    assert!(!verify_artifacts.contains("git cat-file"), "no manual git in place of the command");
    // A reviewer is told where its identity comes from and that a plain agent key is refused.
    let review = &texts["loopctl:review"];
    for needle in
        ["`loopctl dispatch N --role reviewer`", "LOOPCTL_API_KEY", "`loopctl review-complete N", "`forbidden`"]
    {
        assert!(review.contains(needle), "the review skill says {needle}: {review}");
    }
    // The MCP tools the skills name exist.
    let tools = tool_names(Tier::All);
    for tool in ["dispatch", "review_complete", "reject_story", "verify_story"] {
        assert!(texts.values().any(|t| t.contains(&format!("`{tool}`"))), "a skill names `{tool}`");
        assert!(tools.contains(&tool), "{tool} is an MCP tool");
    }
}
