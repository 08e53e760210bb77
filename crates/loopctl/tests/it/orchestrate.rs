//! `loopctl orchestrate` with real agent processes (small shell scripts) in worktrees of a
//! real git repository, against a real server: six stories with dependencies down the honest
//! path to a merged, checked base;
//! a lazy implementer caught by the evidence check and escalated; a reviewer that fails a
//! criterion; an agent that hangs, killed with its children at `--timeout`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{BIN, Lab, Out};

/// Criteria ids of the story, read from the prompt file the orchestrator wrote.
const CRITERIA: &str = r#"criteria=$(grep -o '\*\*AC-[0-9.]*\*\*' "$LOOPCTL_PROMPT_FILE" | tr -d '*')"#;

/// Contracts, claims, starts, commits a file per criterion, and reports the commit with
/// evidence per criterion.
fn honest_implementer() -> String {
    format!(
        r#"set -e
{CRITERIA}
loopctl contract "$LOOPCTL_STORY"
loopctl claim "$LOOPCTL_STORY"
loopctl start "$LOOPCTL_STORY"
mkdir -p work
evidence=""
for ac in $criteria; do echo "done $ac" > "work/$ac.txt"; evidence="$evidence --evidence $ac=file:work/$ac.txt"; done
git add work
git -c user.name=implementer -c user.email=impl@example.test commit -qm "story $LOOPCTL_STORY"
loopctl report "$LOOPCTL_STORY" --commit HEAD $evidence
"#
    )
}

/// Claims and reports without committing anything.
const LAZY_IMPLEMENTER: &str = r#"set -e
loopctl contract "$LOOPCTL_STORY"
loopctl claim "$LOOPCTL_STORY"
loopctl start "$LOOPCTL_STORY"
loopctl report "$LOOPCTL_STORY" --commit HEAD
"#;

fn reviewer(verdict: &str) -> String {
    format!(
        r#"set -e
{CRITERIA}
verdicts=""
for ac in $criteria; do verdicts="$verdicts --verdict $ac={verdict}"; done
loopctl review-complete "$LOOPCTL_STORY" --summary "read the diff against $LOOPCTL_BASE" $verdicts
"#
    )
}

/// A repository on `main` with one commit.
fn repository(lab: &Lab) -> PathBuf {
    let dir = lab.env.path("repo");
    std::fs::create_dir_all(&dir).expect("repo dir");
    git(&dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("README.md"), "# shop\n").expect("write");
    git(&dir, &["add", "."]);
    git(&dir, &["-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-qm", "start"]);
    dir
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").current_dir(dir).args(args).output().expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `loopctl orchestrate --format json` as the orchestrator, agents finding `loopctl` on PATH.
fn orchestrate(lab: &Lab, repo: &Path, implementer: &str, reviewer: &str, extra: &[&str]) -> (Out, Vec<Value>) {
    let repo = repo.to_string_lossy().into_owned();
    let mut args = vec!["orchestrate", "--project", "web", "--repo", &repo];
    if !extra.contains(&"--format") {
        args.extend(["--format", "json"]);
    }
    args.extend(["--implementer", implementer, "--reviewer", reviewer]);
    args.extend(extra);
    let mut cmd = lab.cmd(&lab.orch());
    cmd.env("PATH", agent_path()).timeout(Duration::from_secs(180));
    let out = Out::of(cmd.args(&args), &args);
    let events = out.stdout.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect();
    (out, events)
}

/// PATH with the `loopctl` under test first, so agents' `loopctl` calls reach it.
fn agent_path() -> String {
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default())
}

/// The same run as [`orchestrate`], as a process to start, signal or kill.
fn orchestrate_command(lab: &Lab, repo: &Path, implementer: &str, reviewer: &str, extra: &[&str]) -> Command {
    let mut cmd = lab.env.std_cmd();
    let orch = lab.orch();
    cmd.env("LOOPCTL_SERVER", lab.url())
        .env("LOOPCTL_API_KEY", &orch.key)
        .env("LOOPCTL_STATE_DIR", &orch.state_dir)
        .env("PATH", agent_path())
        .args(["orchestrate", "--project", "web", "--repo", &repo.to_string_lossy(), "--format", "json"])
        .args(["--implementer", implementer, "--reviewer", reviewer])
        .args(extra);
    cmd
}

/// Waits until each of `numbers` has `agent_status` (up to 30 s: the whole suite shares two
/// cores), and fails the test if they never do.
fn wait_until(lab: &Lab, numbers: &[&str], agent_status: &str) {
    for _ in 0..600 {
        if numbers.iter().all(|n| status(lab, n)["agent_status"] == agent_status) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{numbers:?} never reached {agent_status}");
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["event"] == kind).count()
}

fn status(lab: &Lab, number: &str) -> Value {
    lab.story("web", number)
}

/// Six stories in three epics: 1.2 waits for 1.1, 2.2 for 2.1 and 1.3 (across epics),
/// epic 3 for all of epic 1.
const SIX_STORIES: &str = r#"{
  "epics": [
    {"number": 1, "title": "Accounts", "phase": "p0", "stories": [
      {"number": "1.1", "title": "Sign-up endpoint", "acceptance_criteria": [
        {"id": "AC-1.1.1", "description": "POST /signup creates a user and returns 201"},
        {"id": "AC-1.1.2", "description": "A duplicate email returns 422"}]},
      {"number": "1.2", "title": "Login endpoint", "acceptance_criteria": [
        {"id": "AC-1.2.1", "description": "Valid credentials return a token"}]},
      {"number": "1.3", "title": "Password reset", "acceptance_criteria": [
        {"id": "AC-1.3.1", "description": "A reset mail is sent"}]}]},
    {"number": 2, "title": "Billing", "phase": "p1", "stories": [
      {"number": "2.1", "title": "Invoice list", "acceptance_criteria": [
        {"id": "AC-2.1.1", "description": "GET /invoices is paginated"}]},
      {"number": "2.2", "title": "Invoice for a user", "acceptance_criteria": [
        {"id": "AC-2.2.1", "description": "Only the owner sees an invoice"}]}]},
    {"number": 3, "title": "Admin", "phase": "p1", "stories": [
      {"number": "3.1", "title": "User search", "acceptance_criteria": [
        {"id": "AC-3.1.1", "description": "Admins find users by email"}]}]}
  ],
  "story_dependencies": [
    {"story": "1.2", "depends_on": "1.1"},
    {"story": "2.2", "depends_on": "2.1"},
    {"story": "2.2", "depends_on": "1.3"}],
  "epic_dependencies": [{"epic": 3, "depends_on": 1}]
}"#;

#[test]
fn six_honest_stories_with_dependencies_end_verified_merged_in_order_and_the_base_passes_its_check() {
    let lab = Lab::start();
    lab.project_from("Web shop", "web", SIX_STORIES, 6);
    let repo = repository(&lab);
    let check = "for f in work/*.txt; do grep -q done \"$f\" || exit 1; done";
    let (out, events) = orchestrate(
        &lab,
        &repo,
        &honest_implementer(),
        &reviewer("pass"),
        &["--parallel", "2", "--merge", "--check", check, "--until-done", "--timeout", "60s"],
    );
    out.ok();
    let stories = ["1.1", "1.2", "1.3", "2.1", "2.2", "3.1"];
    for number in stories {
        assert_eq!(status(&lab, number)["verified_status"], "verified", "{number}: {}", out.stdout);
    }
    assert_eq!(
        (count(&events, "verified"), count(&events, "merged"), count(&events, "rejected")),
        (6, 6, 0),
        "{}",
        out.stdout
    );
    // No story was started before what it waits for was verified.
    let at = |kind: &str, number: &str| {
        events
            .iter()
            .position(|e| {
                e["event"] == kind && e["story"] == number && (kind != "dispatched" || e["role"] == "implementer")
            })
            .unwrap_or_else(|| panic!("no {kind} of {number}: {}", out.stdout))
    };
    for (story, waits_for) in
        [("1.2", "1.1"), ("2.2", "2.1"), ("2.2", "1.3"), ("3.1", "1.1"), ("3.1", "1.2"), ("3.1", "1.3")]
    {
        assert!(at("verified", waits_for) < at("dispatched", story), "{story} started before {waits_for} was verified");
    }
    // The base holds every story's work, in merges the check passed on, and passes it now.
    for ac in ["AC-1.1.1", "AC-1.1.2", "AC-1.2.1", "AC-1.3.1", "AC-2.1.1", "AC-2.2.1", "AC-3.1.1"] {
        assert_eq!(git(&repo, &["show", &format!("main:work/{ac}.txt")]), format!("done {ac}"));
    }
    let base = lab.env.path("base-checkout");
    git(&repo, &["worktree", "add", "-q", "--detach", &base.to_string_lossy(), "main"]);
    let ran = Command::new("sh").arg("-c").arg(check).current_dir(&base).status().expect("run the check");
    assert!(ran.success(), "the base fails its own check");
    let merges = git(&repo, &["log", "--merges", "--format=%s", "main"]);
    assert_eq!(merges.lines().count(), 6, "{merges}");
    let checked: Vec<&Value> = events.iter().filter(|e| e["event"] == "checked").collect();
    assert!(checked.iter().all(|e| e["success"] == true), "{checked:?}");
    // Each agent had a token of its own, and none outlives its agent.
    assert_eq!(count(&events, "dispatched"), 12, "{}", out.stdout);
    let active = lab.run(&lab.orch(), &["dispatch", "list", "--active", "--project", "web", "--format", "json"]).json();
    assert_eq!(active["data"].as_array().map(Vec::len), Some(0), "{active}");
    // The implementer never reviewed or verified its own work: three identities per story.
    let one = &lab.story("web", "1.1");
    assert_ne!(one["assigned_agent_id"], one["reviews"][0]["reviewer_agent_id"], "{one}");
    let done = events.last().expect("a last event");
    assert_eq!((done["event"].as_str(), done["verified"].as_u64()), (Some("done"), Some(6)), "{done}");
    // The checkpoint says where the run ended.
    let saved = lab.run(&lab.orch(), &["state", "load", "--project", "web", "--key", "orchestrate"]).json();
    assert_eq!((saved["phase"].as_str(), saved["verified"].as_u64()), (Some("done"), Some(6)), "{saved}");
    let last = events.iter().rev().find(|e| e["event"] == "verified").expect("a verified event");
    assert_eq!(saved["last_verified"], last["story"], "{saved}");
    // Each agent's run is on its story: how it ended, its wall time, and its log, kept.
    let shown = lab.run(&lab.orch(), &["status", "1.1", "--project", "web"]).ok().stdout.clone();
    assert!(
        shown.contains("attempt 1 implementer exited 0") && shown.contains("attempt 1 reviewer    exited 0"),
        "{shown}"
    );
    let runs = one["metadata"]["orchestrate"]["runs"].as_array().expect("runs on the story").clone();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in &runs {
        let log = run["log"].as_str().expect("a log path");
        assert!(Path::new(log).is_file(), "{log}");
        assert!(run["elapsed_s"].as_f64().is_some(), "{run}");
    }
}

#[test]
fn agents_that_report_what_they_spend_run_the_project_into_its_budget_and_orchestrate_stops_dispatching() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    // A user sets the budget; the orchestrator it stops may not.
    lab.run(&lab.orch(), &["project", "budget", "web", "--tokens", "99999999"]).fails(3);
    lab.run(&lab.user(), &["project", "budget", "web", "--tokens", "2500", "--cost-usd", "1"]).ok();
    let implementer = honest_implementer().replace(
        "--commit HEAD $evidence",
        "--commit HEAD $evidence --token-usage input=1000,output=500,cost_usd=0.02,model=test-model",
    );
    let reviewer = reviewer("pass").replace(" $verdicts\n", " $verdicts --token-usage input=100,output=50\n");
    let (out, events) = orchestrate(&lab, &repo, &implementer, &reviewer, &["--parallel", "1", "--until-done"]);
    out.ok();
    // 1,650 tokens a story: the first leaves the project at 66 %, the second takes it past
    // 2,500, and no third story is started.
    assert_eq!((count(&events, "verified"), count(&events, "budget_reached")), (2, 1), "{}", out.stdout);
    assert_eq!(count(&events, "dispatched"), 4, "{}", out.stdout);
    let done = events.last().expect("a last event");
    assert_eq!(done["budget_reached"], true, "{done}");
    let first = status(&lab, "1.1");
    assert_eq!(
        first["token_usage"],
        serde_json::json!({"reports": 2, "input_tokens": 1100, "output_tokens": 550, "cost_millicents": 2000}),
        "{first}"
    );
    let shown = lab.run(&lab.orch(), &["status", "1.1", "--project", "web"]).ok().stdout.clone();
    assert!(shown.contains("spent:           1650 tokens (1100 in, 550 out), $0.02 over 2 reports"), "{shown}");
    let overview = lab.run(&lab.orch(), &["status", "--project", "web"]).ok().stdout.clone();
    assert!(overview.contains("Spent: 3300 tokens (2200 in, 1100 out), $0.04 over 4 reports"), "{overview}");
    assert!(overview.contains("BUDGET REACHED: 132.0% of 2500 tokens and $1.00"), "{overview}");
    // Started again, it dispatches nothing until a user raises the budget.
    let (again, events) = orchestrate(&lab, &repo, &implementer, &reviewer, &["--parallel", "1", "--until-done"]);
    again.ok();
    assert_eq!((count(&events, "dispatched"), count(&events, "budget_reached")), (0, 1), "{}", again.stdout);
    lab.run(&lab.user(), &["project", "budget", "web"]).ok().stdout_has("removed");
    let (last, events) = orchestrate(&lab, &repo, &implementer, &reviewer, &["--parallel", "1", "--until-done"]);
    last.ok();
    assert_eq!(count(&events, "verified"), 2, "the other two stories, once the budget is lifted: {}", last.stdout);
}

#[test]
fn a_slow_story_does_not_hold_back_the_ones_ready_behind_the_others() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    let slow_on_1_3 = format!("if [ \"$LOOPCTL_STORY\" = 1.3 ]; then sleep 3; fi\n{}", honest_implementer());
    let (out, events) = orchestrate(&lab, &repo, &slow_on_1_3, &reviewer("pass"), &["--parallel", "2", "--until-done"]);
    out.ok();
    let at = |kind: &str, story: &str| {
        events
            .iter()
            .position(|e| e["event"] == kind && e["story"] == story)
            .unwrap_or_else(|| panic!("no {kind} of {story}: {}", out.stdout))
    };
    // 1.2 waits only for 1.1: its implementer starts while 1.3's is still at work.
    assert!(at("dispatched", "1.2") < at("verified", "1.3"), "{}", out.stdout);
    assert_eq!(count(&events, "verified"), 4, "{}", out.stdout);
}

#[test]
fn on_a_terminal_a_live_table_shows_each_story_in_flight_and_a_pipe_gets_plain_lines() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    let scripts = lab.env.path("agents");
    std::fs::create_dir_all(&scripts).expect("agents dir");
    let slow = honest_implementer().replace("loopctl report", "sleep 2\nloopctl report");
    std::fs::write(scripts.join("implement.sh"), slow).expect("write");
    std::fs::write(scripts.join("review.sh"), reviewer("pass")).expect("write");
    let line = format!(
        "{BIN} orchestrate --project web --repo {} --implementer 'sh {}/implement.sh' --reviewer 'sh {}/review.sh' --once --parallel 2",
        repo.display(),
        scripts.display(),
        scripts.display()
    );
    // `script` gives the run a terminal (a pseudo-terminal) and copies what it shows.
    let mut cmd = Command::new("sh");
    lab.env.apply_std(&mut cmd);
    let orch = lab.orch();
    let out = cmd
        .env("LOOPCTL_SERVER", lab.url())
        .env("LOOPCTL_API_KEY", &orch.key)
        .env("LOOPCTL_STATE_DIR", &orch.state_dir)
        .env("PATH", agent_path())
        .env_remove("LOOPCTL_FORMAT")
        .args(["-c", &format!("script -qec \"{line}\" /dev/null")])
        .output();
    let out = out.expect("run script");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("STORY") && shown.contains("ELAPSED"), "no table: {shown}");
    assert!(shown.contains("1.1    implementer") && shown.contains("1.3    implementer"), "no rows: {shown}");
    assert!(shown.contains("\x1b[J"), "the table is redrawn in place: {shown}");
    assert!(shown.contains("2 verified"), "{shown}");
    // Through a pipe the same run prints event lines only.
    let (piped, _) =
        orchestrate(&lab, &repo, &honest_implementer(), &reviewer("pass"), &["--format", "human", "--once"]);
    piped.ok();
    assert!(!piped.stdout.contains('\x1b') && !piped.stdout.contains("STORY"), "{}", piped.stdout);
    assert!(piped.stdout.contains("verified"), "{}", piped.stdout);
}

#[test]
fn an_implementer_silent_past_its_lease_keeps_its_claim_because_the_orchestrator_renews_it() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    lab.run(&lab.user(), &["tenant", "settings", "set", "claim_lease_seconds=10"]).ok();
    let repo = repository(&lab);
    // Never heartbeats, and works past its 10 s lease.
    let silent = honest_implementer().replace("loopctl report", "sleep 13\nloopctl report");
    let mut cmd = orchestrate_command(&lab, &repo, &silent, &reviewer("pass"), &["--once"]);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
    let run = cmd.spawn().expect("start the run");
    std::thread::sleep(Duration::from_secs(12));
    let story = status(&lab, "1.1");
    assert_eq!(
        (story["agent_status"].as_str(), story["stale"].as_bool()),
        (Some("implementing"), Some(false)),
        "{story}"
    );
    let out = run.wait_with_output().expect("the run ends");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(status(&lab, "1.1")["verified_status"], "verified");
}

#[test]
fn a_round_that_breaks_costs_its_story_an_attempt_not_the_whole_run() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    // Deletes the base branch the orchestrator merges into: every round after this one fails.
    let vandal = format!("{}\ngit update-ref -d refs/heads/main\n", honest_implementer());
    let (out, events) = orchestrate(&lab, &repo, &vandal, &reviewer("pass"), &["--merge", "--until-done"]);
    out.ok();
    let failed: Vec<&Value> = events.iter().filter(|e| e["event"] == "failed").collect();
    assert!(
        failed.iter().all(|e| e["message"].as_str().is_some_and(|m| m.contains("the round failed"))),
        "{}",
        out.stdout
    );
    let done = events.last().expect("a last event");
    assert_eq!(done["needs_human"], serde_json::json!(["1.1", "1.3"]), "{}", out.stdout);
    for number in ["1.1", "1.3"] {
        let story = status(&lab, number);
        assert!(matches!(story["agent_status"].as_str(), Some("pending")), "nothing is left held: {story}");
    }
    let active = lab.run(&lab.orch(), &["dispatch", "list", "--active", "--project", "web", "--format", "json"]).json();
    assert_eq!(active["data"].as_array().map(Vec::len), Some(0), "{active}");
}

#[test]
fn where_the_tenant_requires_the_verifier_runner_the_round_waits_for_its_signed_run() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    let user = lab.user();
    lab.run(&user, &["tenant", "settings", "set", "require_artifact_verification=true"]).ok();
    let check = "for f in work/*.txt; do grep -q done \"$f\" || exit 1; done";
    lab.run(&user, &["project", "runner", "web", "--repo", &repo.to_string_lossy(), "--check", check]).ok();
    let verifier = lab.new_key("runner", "verifier", None);
    let mut runner = lab.env.std_cmd();
    runner
        .env("LOOPCTL_SERVER", lab.url())
        .env("LOOPCTL_API_KEY", &verifier.key)
        .env("LOOPCTL_STATE_DIR", &verifier.state_dir)
        .env("LOOPCTL_RUNNER_DIR", lab.env.path("runner"))
        .args(["runner", "--project", "web", "--interval", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut runner = runner.spawn().expect("start the runner");
    let (out, events) =
        orchestrate(&lab, &repo, &honest_implementer(), &reviewer("pass"), &["--once", "--timeout", "60s"]);
    let _ = runner.kill();
    let _ = runner.wait();
    out.ok();
    let by_runner: Vec<&Value> = events.iter().filter(|e| e["event"] == "checked" && e["source"] == "runner").collect();
    assert_eq!(by_runner.len(), 1, "{}", out.stdout);
    assert_eq!(by_runner[0]["success"], true, "{}", out.stdout);
    assert_eq!(status(&lab, "1.1")["verified_status"], "verified", "{}", out.stdout);
}

#[test]
fn an_implementer_that_moves_the_base_to_its_own_commit_gets_nothing_merged() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    // Worktrees share the repository's branches: this one publishes its own work on main.
    let pushes = format!("{}\ngit update-ref refs/heads/main HEAD\n", honest_implementer());
    let (out, events) = orchestrate(&lab, &repo, &pushes, &reviewer("pass"), &["--merge", "--once"]);
    out.ok();
    assert_eq!((count(&events, "verified"), count(&events, "merged")), (0, 0), "{}", out.stdout);
    let failed = events.iter().find(|e| e["event"] == "failed").expect("a failed round");
    assert!(
        failed["message"].as_str().is_some_and(|m| m.contains("main was moved outside the orchestrator")),
        "{failed}"
    );
    let story = status(&lab, "1.1");
    assert_ne!(story["verified_status"], "verified", "{story}");
}

#[test]
fn a_folder_inside_the_repository_names_the_repository_and_gets_no_git_folder_of_its_own() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    let inside = repo.join("docs");
    std::fs::create_dir_all(&inside).expect("a folder inside");
    let (out, events) = orchestrate(&lab, &inside, &honest_implementer(), &reviewer("pass"), &["--once"]);
    out.ok();
    assert_eq!(count(&events, "verified"), 1, "{}", out.stdout);
    assert!(!inside.join(".git").exists(), "no .git under the folder");
    assert!(repo.join(".git/loopctl/logs").is_dir(), "the work is in the repository's git folder");
}

#[test]
fn a_lazy_implementer_is_caught_by_the_evidence_check_and_escalated() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    lab.run(&lab.user(), &["tenant", "settings", "set", "escalate_after_rejections=2"]).ok();
    let repo = repository(&lab);
    let (out, events) = orchestrate(
        &lab,
        &repo,
        LAZY_IMPLEMENTER,
        &reviewer("pass"),
        &["--parallel", "2", "--until-done", "--timeout", "60s"],
    );
    out.ok();
    for number in ["1.1", "1.3"] {
        let story = status(&lab, number);
        assert_eq!(
            (story["escalated"].as_bool(), story["verified_status"].as_str()),
            (Some(true), Some("rejected")),
            "{story}"
        );
        // Escalated after the tenant's two rejections, and then left alone.
        assert_eq!(story["iteration_count"], 2, "{story}");
        assert!(story["rejection_reason"].as_str().is_some_and(|r| r.contains("no new commit")), "{story}");
    }
    assert_eq!(
        (count(&events, "verified"), count(&events, "reviewed"), count(&events, "escalated")),
        (0, 0, 2),
        "{}",
        out.stdout
    );
    let done = events.last().expect("a last event");
    assert_eq!(done["needs_human"], serde_json::json!(["1.1", "1.3"]), "{done}");
}

#[test]
fn an_implementer_that_never_reports_is_given_up_on_instead_of_dispatched_all_night() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    let crashes = r#"loopctl contract "$LOOPCTL_STORY"; loopctl claim "$LOOPCTL_STORY"; exit 1"#;
    let (out, events) = orchestrate(&lab, &repo, crashes, &reviewer("pass"), &["--parallel", "2", "--until-done"]);
    out.ok();
    // The tenant's escalate_after_rejections (3) failed attempts for each ready story.
    assert_eq!((count(&events, "failed"), count(&events, "escalated")), (6, 2), "{}", out.stdout);
    let done = events.last().expect("a last event");
    assert_eq!(done["needs_human"], serde_json::json!(["1.1", "1.3"]), "{done}");
    for number in ["1.1", "1.3"] {
        assert_eq!(status(&lab, number)["agent_status"], "pending", "each claim was taken back");
    }
}

#[test]
fn a_report_claiming_a_file_it_never_committed_is_rejected_before_any_review() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    let claims_more = honest_implementer().replace(
        "loopctl report \"$LOOPCTL_STORY\" --commit HEAD",
        r#"loopctl report "$LOOPCTL_STORY" --commit HEAD --artifact '{"artifact_type": "test", "path": "tests/signup_test.rs"}'"#,
    );
    assert!(claims_more.contains("signup_test"), "{claims_more}");
    let (out, events) = orchestrate(&lab, &repo, &claims_more, &reviewer("pass"), &["--once"]);
    out.ok();
    assert_eq!((count(&events, "rejected"), count(&events, "reviewed")), (1, 0), "{}", out.stdout);
    let story = status(&lab, "1.1");
    let reason = story["rejection_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("evidence does not hold") && reason.contains("tests/signup_test.rs"), "{story}");
}

#[test]
fn a_reviewer_that_fails_a_criterion_sends_the_story_back_with_its_reasons() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    let (out, events) =
        orchestrate(&lab, &repo, &honest_implementer(), &reviewer("fail:no-test-for-duplicates"), &["--once"]);
    out.ok();
    assert_eq!(
        (count(&events, "reported"), count(&events, "rejected"), count(&events, "verified")),
        (1, 1, 0),
        "{}",
        out.stdout
    );
    let story = status(&lab, "1.1");
    let reason = story["rejection_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("review failed AC-1.1.1, AC-1.1.2"), "{story}");
    assert_eq!(story["agent_status"], "pending", "back in the queue for a fresh implementer: {story}");
    // Nothing was merged: the base is as it was.
    assert_eq!(git(&repo, &["rev-list", "--count", "main"]), "1");
}

#[test]
fn an_agent_that_hangs_is_killed_at_the_timeout_with_its_children_and_the_claim_is_taken_back() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    let hangs = r#"loopctl claim "$LOOPCTL_STORY" >/dev/null 2>&1 || { loopctl contract "$LOOPCTL_STORY"; loopctl claim "$LOOPCTL_STORY"; }
sleep 600 &
echo $! > "$LOOPCTL_PROMPT_FILE.child"
wait
"#;
    let started = std::time::Instant::now();
    let (out, events) = orchestrate(&lab, &repo, hangs, &reviewer("pass"), &["--once", "--timeout", "3s"]);
    out.ok();
    assert!(started.elapsed() < Duration::from_secs(60), "the run took {:?}", started.elapsed());
    let failed: Vec<&Value> = events.iter().filter(|e| e["event"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{}", out.stdout);
    assert!(failed[0]["message"].as_str().is_some_and(|m| m.contains("timed out after 3s")), "{failed:?}");
    let story = status(&lab, "1.1");
    assert_eq!(story["agent_status"], "pending", "the claim was taken back: {story}");
    let work = repo.join(".git/loopctl/prompts");
    let child =
        std::fs::read_to_string(work.join("1.1-1-implementer.md.child")).expect("the agent wrote its child's pid");
    assert!(gone(child.trim()), "the agent's child {} still runs", child.trim());
}

#[test]
fn an_orchestrator_killed_mid_run_and_restarted_finishes_with_nothing_verified_twice() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    // The first run's implementers take their time, so the orchestrator dies while they run.
    let slow = honest_implementer()
        .replace("loopctl start \"$LOOPCTL_STORY\"\n", "loopctl start \"$LOOPCTL_STORY\"\nsleep 4\n");
    assert!(slow.contains("sleep 4"), "{slow}");
    let mut cmd =
        orchestrate_command(&lab, &repo, &slow, &reviewer("pass"), &["--parallel", "2", "--merge", "--until-done"]);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null());
    let mut first = cmd.spawn().expect("start the first run");
    let stdout = first.stdout.take().expect("stdout");
    let mut dispatched = 0;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.expect("read the first run");
        if line.contains("\"dispatched\"") {
            dispatched += 1;
        }
        if dispatched == 2 {
            break;
        }
    }
    // Once both agents hold their claims, the orchestrator dies (SIGKILL); they run on.
    wait_until(&lab, &["1.1", "1.3"], "implementing");
    first.kill().expect("kill -9 the orchestrator");
    first.wait().expect("reap it");

    let (out, events) = orchestrate(
        &lab,
        &repo,
        &honest_implementer(),
        &reviewer("pass"),
        &["--parallel", "2", "--merge", "--until-done"],
    );
    out.ok();
    assert_eq!(count(&events, "recovered"), 2, "both stories of the dead pass are taken back: {}", out.stdout);
    // The first run's agents wake up to a revoked token: their reports change nothing.
    std::thread::sleep(Duration::from_secs(4));
    for number in ["1.1", "1.2", "1.3", "2.1"] {
        let story = status(&lab, number);
        assert_eq!(story["verified_status"], "verified", "{number}: {story}");
        let passes =
            story["verifications"].as_array().map_or(0, |v| v.iter().filter(|v| v["result"] == "pass").count());
        assert_eq!(passes, 1, "{number} verified once: {story}");
    }
    assert_eq!(git(&repo, &["log", "--merges", "--format=%s", "main"]).lines().count(), 4);
    // The restart did not reuse the dead run's worktrees or branches (attempt 2), and took
    // the dead run's worktrees off the disk.
    let second = events.iter().find(|e| e["event"] == "dispatched" && e["story"] == "1.1").expect("1.1 dispatched");
    assert_eq!(second["attempt"], 2, "{second}");
    let left = std::fs::read_dir(repo.join(".git/loopctl/worktrees")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "worktrees left on disk");
    assert_eq!(git(&repo, &["worktree", "list"]).lines().count(), 1, "{}", git(&repo, &["worktree", "list"]));
}

#[test]
fn ctrl_c_stops_the_agents_and_releases_their_claims() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    let hangs = r#"loopctl contract "$LOOPCTL_STORY"; loopctl claim "$LOOPCTL_STORY"; loopctl start "$LOOPCTL_STORY"
sleep 600 &
echo $! > "$LOOPCTL_PROMPT_FILE.child"
wait
"#;
    let mut cmd = orchestrate_command(&lab, &repo, hangs, &reviewer("pass"), &["--parallel", "2", "--until-done"]);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let run = cmd.spawn().expect("start the run");
    wait_until(&lab, &["1.1", "1.3"], "implementing");
    let signalled = Command::new("kill").args(["-INT", &run.id().to_string()]).status().expect("kill -INT");
    assert!(signalled.success());
    let out = run.wait_with_output().expect("the run ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "an interrupted run does not exit 0: {stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"), "{out:?}");
    for number in ["1.1", "1.3"] {
        assert_eq!(status(&lab, number)["agent_status"], "pending", "{number}'s claim is released: {stdout}");
        let child = std::fs::read_to_string(repo.join(format!(".git/loopctl/prompts/{number}-1-implementer.md.child")))
            .expect("the agent wrote its child's pid");
        assert!(gone(child.trim()), "{number}'s agent left {} running", child.trim());
    }
    let active = lab.run(&lab.orch(), &["dispatch", "list", "--active", "--project", "web", "--format", "json"]).json();
    assert_eq!(active["data"].as_array().map(Vec::len), Some(0), "no token outlives the run: {active}");
    let saved = lab.run(&lab.orch(), &["state", "load", "--project", "web", "--key", "orchestrate"]).json();
    assert_eq!(saved["phase"], "interrupted", "{saved}");
}

#[test]
fn a_story_reported_when_the_orchestrator_died_is_reviewed_by_the_next_run_not_redone() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let repo = repository(&lab);
    let slow_reviewer = format!("sleep 20\n{}", reviewer("pass"));
    let mut cmd =
        orchestrate_command(&lab, &repo, &honest_implementer(), &slow_reviewer, &["--parallel", "2", "--until-done"]);
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut first = cmd.spawn().expect("start the first run");
    wait_until(&lab, &["1.1", "1.3"], "reported_done");
    first.kill().expect("kill -9 the orchestrator while its reviewers run");
    first.wait().expect("reap it");

    let (out, events) =
        orchestrate(&lab, &repo, &honest_implementer(), &reviewer("pass"), &["--parallel", "2", "--until-done"]);
    out.ok();
    let resumed: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "recovered" && e["message"].as_str().is_some_and(|m| m.starts_with("resumed")))
        .collect();
    assert_eq!(resumed.len(), 2, "{}", out.stdout);
    let redone = events.iter().filter(|e| e["event"] == "dispatched" && e["role"] == "implementer");
    let redone: Vec<&Value> = redone.filter(|e| e["story"] == "1.1" || e["story"] == "1.3").collect();
    assert!(redone.is_empty(), "the reported work is not redone: {redone:?}");
    for number in ["1.1", "1.2", "1.3", "2.1"] {
        let story = status(&lab, number);
        assert_eq!(story["verified_status"], "verified", "{number}: {story}");
        assert_eq!(story["iteration_count"], 0, "{number} was never rejected: {story}");
    }
}

/// Whether process `pid` has ended (or is a zombie waiting to be reaped), within 5 s.
fn gone(pid: &str) -> bool {
    let stat = format!("/proc/{pid}/stat");
    for _ in 0..100 {
        let state = std::fs::read_to_string(&stat)
            .ok()
            .and_then(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string)));
        if matches!(state.as_deref(), None | Some("Z" | "X")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
