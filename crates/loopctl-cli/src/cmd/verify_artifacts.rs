//! `loopctl verify-artifacts N`: the story's reported artifacts checked against a real git
//! repository (and, with `--run`, its tests re-run on a clean copy of the reported commit);
//! the result is recorded as a server-signed verification run.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use loopctl_api::{ErrorCode, RecordVerificationRun, StoryView, VerificationRunView};
use loopctl_client::ClientError;
use serde_json::{Value, json};
use uuid::Uuid;

use loopctl_git::CheckCommand;

use crate::artifacts::{self, Check, Report, Status};
use crate::context::Ctx;
use crate::output::{Format, Table, emit, usage};

/// The server takes at most this many checks per run.
const MAX_RECORDED_CHECKS: usize = 1000;

#[derive(Args, Debug)]
pub struct VerifyArtifactsArgs {
    /// The story: 2.1, US-2.1, or its id.
    story: String,
    /// The git repository to check against (default: the one containing the working directory).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// The branch every reported commit must be reachable from (default: the current HEAD's).
    #[arg(long)]
    branch: Option<String>,
    /// Re-run the tests: `sh -c CMD` in a clean temporary copy of the reported commit.
    #[arg(long, value_name = "CMD")]
    run: Option<String>,
    /// Time limit of --run in seconds; the command and its children are killed after it [env: LOOPCTL_VERIFY_TIMEOUT]
    #[arg(long, value_name = "SECS", env = "LOOPCTL_VERIFY_TIMEOUT", hide_env = true, default_value_t = 600)]
    timeout: u64,
    /// Check only; do not record the run on the server (only a verifier key records anyway).
    #[arg(long)]
    no_record: bool,
}

pub async fn run(ctx: &Ctx, args: VerifyArtifactsArgs) -> anyhow::Result<()> {
    if args.run.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return Err(usage("--run needs a command, e.g. --run \"cargo test\""));
    }
    if args.timeout == 0 {
        return Err(usage("--timeout must be at least 1 second"));
    }
    let repo = match &args.repo {
        Some(path) => path.clone(),
        None => std::env::current_dir().map_err(|err| usage(format!("cannot read the working directory: {err}")))?,
    };
    let id = ctx.story_id(&args.story).await?;
    let detail = ctx.client.get_story(id).await?.story;
    let story = &detail.story;
    let artifacts = current_artifacts(story.assigned_at, &detail.artifacts);
    let spec = args.run.clone().map(|command| CheckCommand {
        command,
        timeout: Duration::from_secs(args.timeout),
        sealed: false,
    });
    let branch = args.branch.clone();
    let report =
        tokio::task::spawn_blocking(move || artifacts::check(&repo, branch.as_deref(), &artifacts, spec.as_ref()))
            .await
            .map_err(|err| anyhow::anyhow!("the check did not finish: {err}"))?
            .map_err(crate::output::setup_is_usage)?;
    // Only a verifier key (the runner's) records runs; for anyone else this is a local check
    // for a reviewer's eyes, printed and recorded nowhere.
    let verifier = !args.no_record && ctx.client.whoami().await?.role == "verifier";
    let recorded = if verifier { record(ctx, id, &report).await.map(Some) } else { Ok(None) };
    let run = match recorded {
        Ok(run) => run,
        Err(err) => {
            // The checks still show; the error says why the run is not on record.
            print(ctx, story, &report, Recorded::Refused);
            return Err(err);
        }
    };
    let state = match (&run, args.no_record) {
        (Some(run), _) => Recorded::Yes(run),
        (None, true) => Recorded::Skipped,
        (None, false) => Recorded::NotAVerifier,
    };
    print(ctx, story, &report, state);
    if report.passed() { Ok(()) } else { Err(failed(&report)) }
}

/// What became of the run on the server.
#[derive(Clone, Copy)]
enum Recorded<'a> {
    Yes(&'a VerificationRunView),
    Skipped,
    NotAVerifier,
    Refused,
}

pub(crate) use crate::artifacts::current_artifacts;

/// Posts the run (`pass` only when every check passed); the server signs it.
async fn record(ctx: &Ctx, story_id: Uuid, report: &Report) -> anyhow::Result<VerificationRunView> {
    let run = RecordVerificationRun {
        result: if report.passed() { "pass" } else { "fail" }.into(),
        commit_sha: report.commit_sha.clone(),
        checks: recorded_checks(&report.checks),
    };
    Ok(ctx.client.record_verification_run(story_id, &run).await?.verification_run)
}

/// `{artifact, name, ok, detail}` per check; past the server's limit, failures first and a
/// last line saying how many passing checks were left out.
pub(crate) fn recorded_checks(checks: &[Check]) -> Vec<Value> {
    let row = |c: &Check| {
        let ok = match c.status {
            Status::Pass => json!(true),
            Status::Fail => json!(false),
            Status::NotChecked => Value::Null,
        };
        json!({"artifact": c.artifact, "name": c.name, "ok": ok, "detail": c.detail})
    };
    if checks.len() <= MAX_RECORDED_CHECKS {
        return checks.iter().map(row).collect();
    }
    let mut ordered: Vec<&Check> = checks.iter().filter(|c| c.status == Status::Fail).collect();
    ordered.extend(checks.iter().filter(|c| c.status != Status::Fail));
    let kept = MAX_RECORDED_CHECKS - 1;
    let mut rows: Vec<Value> = ordered.iter().take(kept).map(|c| row(c)).collect();
    let left_out = &ordered[kept.min(ordered.len())..];
    let all_ok = left_out.iter().all(|c| c.status != Status::Fail);
    rows.push(json!({
        "artifact": "report",
        "name": format!("{} more checks", left_out.len()),
        "ok": all_ok,
        "detail": "left out of the record (the server keeps at most 1000 checks per run)",
    }));
    rows
}

fn print(ctx: &Ctx, story: &StoryView, report: &Report, recorded: Recorded<'_>) {
    let run = match recorded {
        Recorded::Yes(run) => Some(run),
        Recorded::Skipped | Recorded::NotAVerifier | Recorded::Refused => None,
    };
    let result = if report.passed() { "pass" } else { "fail" };
    let value = json!({
        "story": {"id": story.id, "number": story.number},
        "repo": report.repo.display().to_string(),
        "branch": report.branch,
        "commit_sha": report.commit_sha,
        "result": result,
        "checks": report.checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        "verification_run": run,
    });
    emit(ctx.format, &value, || {
        let mut table = Table::new(&["artifact", "check", "ok", "detail"]);
        for check in &report.checks {
            let ok = match check.status {
                Status::Pass => "yes",
                Status::Fail => "NO",
                Status::NotChecked => "-",
            };
            let first = check.detail.lines().next().unwrap_or_default();
            table.row(vec![check.artifact.clone(), check.name.clone(), ok.into(), first.into()]);
        }
        let mut out = table.render(ctx.format, ctx.color());
        if ctx.format == Format::Human {
            if let Some(check) = report.checks.iter().find(|c| c.name.starts_with("tests pass"))
                && let Some((_, tail)) = check.detail.split_once('\n')
            {
                out.push_str(&format!("\n{tail}\n"));
            }
            let failures = report.failures().count();
            out.push_str(&format!(
                "\n{} {}: {} against {} ({}), {failures} of {} checks failed\n",
                story.number,
                if report.passed() { "artifacts verified" } else { "artifacts NOT verified" },
                report.commit_sha.as_deref().unwrap_or("-"),
                report.branch,
                report.repo.display(),
                report.checks.iter().filter(|c| c.status != Status::NotChecked).count(),
            ));
            match recorded {
                Recorded::Yes(run) => out.push_str(&format!(
                    "Recorded verification run {} ({}), signature valid: {}\n",
                    run.id, run.result, run.signature_valid
                )),
                Recorded::Skipped => out.push_str("Not recorded (--no-record).\n"),
                Recorded::NotAVerifier => {
                    out.push_str("Not recorded: only the runner's verifier key records runs; this was a local check.\n")
                }
                Recorded::Refused => out.push_str("Not recorded: the server refused the run (see the error).\n"),
            }
        }
        out
    });
}

/// Exit 5 (the evidence does not hold), one `error:` line per failed check.
fn failed(report: &Report) -> anyhow::Error {
    let failures: Vec<&Check> = report.failures().collect();
    let lines: Vec<String> = failures
        .iter()
        .map(|c| {
            let detail = c.detail.lines().next().unwrap_or_default();
            format!("check failed: {}: {}: {detail}", c.artifact, c.name)
        })
        .collect();
    let message = lines.join("\nerror: ");
    let body = json!({"error": {
        "code": "artifact_check_failed",
        "message": format!("{} check(s) failed", failures.len()),
        "failed_checks": failures.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
    }});
    // The conflict class: exit 5, like every other "the facts do not allow it" answer.
    let error =
        loopctl_api::ErrorBody { status: 409, code: ErrorCode::Conflict, message, context: None, details: None };
    anyhow::Error::new(ClientError::Api { status: 409, error: Box::new(error), body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::artifact_row;
    use crate::time::instant;

    #[test]
    fn timestamps_compare_across_precisions() {
        let a = instant("2026-01-02T03:04:05Z").expect("parsed");
        let b = instant("2026-01-02T03:04:05.5Z").expect("parsed");
        let c = instant("2026-01-02T03:04:05.123456Z").expect("parsed");
        assert!(a < c && c < b);
        assert_eq!(instant("yesterday"), None);
    }

    #[test]
    fn only_this_rounds_artifacts_are_checked() {
        let assigned_at = instant("2026-01-02T00:00:00.5Z");
        let artifacts = [
            artifact_row(json!({"artifact_type": "commit_diff", "inserted_at": "2026-01-01T00:00:00Z"})),
            artifact_row(json!({"artifact_type": "file", "inserted_at": "2026-01-02T00:00:01Z"})),
        ];
        let kept = current_artifacts(assigned_at, &artifacts);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].artifact_type, "file");
        assert_eq!(current_artifacts(None, &artifacts).len(), 2);
    }

    #[test]
    fn too_many_checks_keep_the_failures() {
        let check = |status| Check { artifact: "a".into(), name: "n".into(), status, detail: String::new() };
        let mut checks: Vec<Check> = (0..1200).map(|_| check(Status::Pass)).collect();
        checks.push(check(Status::Fail));
        let rows = recorded_checks(&checks);
        assert_eq!(rows.len(), MAX_RECORDED_CHECKS);
        assert_eq!(rows[0]["ok"], false);
        assert_eq!(rows[MAX_RECORDED_CHECKS - 1]["ok"], true);
    }
}
