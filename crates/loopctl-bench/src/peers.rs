//! `loopctl-bench peers [--loopctl PATH] [--tasks N]`: one workload of N tasks (1,000 by
//! default) through loopctl, Backlog.md and Task Master in one run, one process per call, as an
//! agent's shell makes the calls.
//!
//! Each tool gets a fresh temporary directory with the same N tasks ("Story i", one acceptance
//! criterion "works"), then the same calls are timed `REPS` times each, wall time from spawn to
//! exit with stdout and stderr read as a shell would: next, list, status, set-done, create, and a
//! claim race (8 processes at once on one task, "won" = exit 0). The table gives median and max
//! wall ms per call and loopctl's median as a share of each peer's (`loopctl / peer`).
//!
//! loopctl runs as the real binary against a `loopctl serve` it starts itself on an ephemeral
//! port over a fresh SQLite file; the tasks arrive in one `loopctl import`. Backlog.md
//! (`backlog.md`) and Task Master (`task-master-ai`) are installed from npm into
//! `target/peers` (reused when present); their N tasks are written as their own files
//! (Backlog.md: one markdown file per task, Task Master: `.taskmaster/tasks/tasks.json`) because
//! creating 1,000 through their CLIs takes 1,000 processes (about 6 and 75 minutes here); the
//! timed `create` calls do go through their CLIs (Task Master's manual `add-task --title`, no AI).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::lab::Lab;
use serde_json::{Value, json};

/// Timed repetitions of every call (and claim races run).
const REPS: usize = 5;
/// Processes in one claim race.
const RACERS: usize = 8;
/// npm packages of the peers, as installed into the cache.
const NPM_PACKAGES: [&str; 2] = ["backlog.md", "task-master-ai"];

/// Runs the workload through the three tools and prints the table. Async for the bench's
/// `main`; the work itself is processes, run on a blocking thread.
///
/// # Errors
/// A tool that cannot be installed or started, or a call that fails where it must succeed.
pub async fn run(loopctl_bin: &Path, tasks: usize) -> anyhow::Result<()> {
    let loopctl_bin = loopctl_bin.to_path_buf();
    tokio::task::spawn_blocking(move || run_blocking(&loopctl_bin, tasks)).await?
}

fn run_blocking(loopctl_bin: &Path, tasks: usize) -> anyhow::Result<()> {
    ensure!(tasks >= 30, "--tasks must be at least 30 (set-done and the races use tasks 11..=25)");
    let loopctl_bin = loopctl_bin.canonicalize().with_context(|| {
        format!(
            "no loopctl binary at {}; build it with `cargo build --release -p loopctl` or pass --loopctl PATH",
            loopctl_bin.display()
        )
    })?;
    let bin = npm_tools()?;
    let mut results = Vec::new();
    eprintln!("peers: loopctl ({}) with {tasks} tasks", loopctl_bin.display());
    let loopctl = Loopctl::start(&loopctl_bin, tasks)?;
    results.push(measure(&loopctl, tasks)?);
    drop(loopctl);
    eprintln!("peers: Backlog.md with {tasks} tasks");
    results.push(measure(&Backlog::new(&bin, tasks)?, tasks)?);
    eprintln!("peers: Task Master with {tasks} tasks");
    results.push(measure(&TaskMaster::new(&bin, tasks)?, tasks)?);
    print_table(&results, tasks);
    Ok(())
}

/// Installs the peers into `target/peers` of the workspace unless they are there; answers
/// its `node_modules/.bin`.
fn npm_tools() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize()?;
    let cache = workspace.join("target").join("peers");
    let bin = cache.join("node_modules").join(".bin");
    if !(bin.join("backlog").exists() && bin.join("task-master").exists()) {
        std::fs::create_dir_all(&cache)?;
        eprintln!("peers: npm install --prefix {} {}", cache.display(), NPM_PACKAGES.join(" "));
        let status = Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&cache)
            .args(NPM_PACKAGES)
            .stdout(Stdio::null())
            .status()
            .context("cannot run npm; the peers are npm packages (node and npm must be on PATH)")?;
        ensure!(status.success(), "npm install of {} failed ({status})", NPM_PACKAGES.join(" "));
    }
    Ok(bin)
}

/// Wall times of one call's repetitions.
#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn ms(&self, pick: impl Fn(&[Duration]) -> Duration) -> Option<f64> {
        let mut sorted = self.0.clone();
        sorted.sort();
        (!sorted.is_empty()).then(|| pick(&sorted).as_secs_f64() * 1e3)
    }
    fn median(&self) -> Option<f64> {
        self.ms(|s| s[s.len() / 2])
    }
    fn max(&self) -> Option<f64> {
        self.ms(|s| s[s.len() - 1])
    }
}

/// The calls of one tool; every `Command` is one process, as an agent's shell runs it.
trait Tool {
    fn name(&self) -> &'static str;
    /// The next task to work on.
    fn next(&self) -> Command;
    /// Every task.
    fn list(&self) -> Command;
    /// A project overview, when the tool has one besides its list.
    fn status(&self) -> Option<Command>;
    /// Untimed: whatever must happen before `done(task)` is the agent's next call.
    fn prepare_done(&self, _task: usize) -> anyhow::Result<()> {
        Ok(())
    }
    /// The transition an agent makes when it finishes `task`.
    fn done(&self, task: usize) -> Command;
    /// Creates task number `task` (past the imported ones).
    fn create(&self, task: usize) -> Command;
    /// Untimed: what makes `task` claimable.
    fn prepare_race(&self, _task: usize) -> anyhow::Result<()> {
        Ok(())
    }
    /// Racer `racer` takes `task` (in progress, assigned to itself).
    fn claim(&self, task: usize, racer: usize) -> Command;
    /// What the tool's own data says after the race on `task`.
    fn after_race(&self, task: usize) -> anyhow::Result<String>;
    /// What the calls mean for this tool, for the notes under the table.
    fn notes(&self) -> &'static str;
}

/// What one tool measured.
struct Measured {
    tool: &'static str,
    next: Samples,
    list: Samples,
    status: Samples,
    done: Samples,
    create: Samples,
    race: Samples,
    winners: Vec<usize>,
    commands: Vec<(&'static str, String)>,
    race_notes: Vec<String>,
    notes: &'static str,
}

fn measure(tool: &dyn Tool, tasks: usize) -> anyhow::Result<Measured> {
    let mut m = Measured {
        tool: tool.name(),
        next: Samples::default(),
        list: Samples::default(),
        status: Samples::default(),
        done: Samples::default(),
        create: Samples::default(),
        race: Samples::default(),
        winners: Vec::new(),
        commands: Vec::new(),
        race_notes: Vec::new(),
        notes: tool.notes(),
    };
    m.commands.push(("next", shown(&tool.next())));
    m.commands.push(("list", shown(&tool.list())));
    if let Some(status) = tool.status() {
        m.commands.push(("status", shown(&status)));
    }
    m.commands.push(("set-done", shown(&tool.done(11))));
    m.commands.push(("create", shown(&tool.create(tasks + 1))));
    m.commands.push(("claim", shown(&tool.claim(21, 1))));
    for rep in 0..REPS {
        m.next.0.push(timed_ok(tool.next())?);
        m.list.0.push(timed_ok(tool.list())?);
        if let Some(status) = tool.status() {
            m.status.0.push(timed_ok(status)?);
        }
        let task = 11 + rep;
        tool.prepare_done(task)?;
        m.done.0.push(timed_ok(tool.done(task))?);
        m.create.0.push(timed_ok(tool.create(tasks + 1 + rep))?);
        let task = 21 + rep;
        tool.prepare_race(task)?;
        let (wall, outputs) = race((0..RACERS).map(|racer| tool.claim(task, racer)).collect())?;
        m.race.0.push(wall);
        let winners: Vec<String> =
            (0..RACERS).filter(|&r| outputs[r].status.success()).map(|r| r.to_string()).collect();
        let won = winners.len();
        m.winners.push(won);
        let refusals: Vec<String> = outputs
            .iter()
            .filter(|o| !o.status.success())
            .map(|o| o.status.code().map_or_else(|| "signal".to_string(), |c| c.to_string()))
            .collect();
        let refused = match outputs.iter().find(|o| !o.status.success()) {
            None => String::new(),
            Some(first) => {
                let text = String::from_utf8_lossy(&first.stderr);
                let text = if text.trim().is_empty() { String::from_utf8_lossy(&first.stdout) } else { text };
                let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
                format!(
                    ", refused exits {} (first said: {})",
                    refusals.join(" "),
                    line.chars().take(160).collect::<String>()
                )
            }
        };
        m.race_notes.push(format!(
            "task {task}: {won} of {RACERS} told they won (racers {}){refused}; {}",
            winners.join(" "),
            tool.after_race(task)?
        ));
        eprintln!("  {} rep {}: race on task {task}: {won} won", tool.name(), rep + 1);
    }
    Ok(m)
}

/// The command line as a shell would show it (program by file name).
fn shown(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .map_or_else(|| cmd.get_program().to_string_lossy().into_owned(), |name| name.to_string_lossy().into_owned());
    let mut line = program;
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "\"'{}$*".contains(c)) {
            line.push_str(&format!(" '{arg}'"));
        } else {
            line.push(' ');
            line.push_str(&arg);
        }
    }
    line
}

/// Runs `cmd` to its end with its output read, as a shell does; answers the output and the
/// wall time from spawn to exit.
fn timed(mut cmd: Command) -> anyhow::Result<(Duration, Output)> {
    cmd.stdin(Stdio::null());
    let start = Instant::now();
    let output = cmd.output().with_context(|| format!("cannot run {}", shown(&cmd)))?;
    Ok((start.elapsed(), output))
}

/// `timed`, where the call must succeed.
fn timed_ok(cmd: Command) -> anyhow::Result<Duration> {
    let line = shown(&cmd);
    let (wall, output) = timed(cmd)?;
    check(&line, &output)?;
    Ok(wall)
}

fn check(line: &str, output: &Output) -> anyhow::Result<()> {
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// An untimed call that must succeed; answers its stdout.
fn run_ok(cmd: Command) -> anyhow::Result<String> {
    let line = shown(&cmd);
    let (_, output) = timed(cmd)?;
    check(&line, &output)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Starts every command at once (all spawned before any is waited for), then collects each
/// one's output; answers the wall time until the last exited.
fn race(cmds: Vec<Command>) -> anyhow::Result<(Duration, Vec<Output>)> {
    let start = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    for mut cmd in cmds {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        children.push(cmd.spawn().with_context(|| format!("cannot run {}", shown(&cmd)))?);
    }
    let outputs = children.into_iter().map(Child::wait_with_output).collect::<Result<Vec<_>, _>>()?;
    Ok((start.elapsed(), outputs))
}

// ---------------------------------------------------------------------------------------------
// loopctl

/// A `loopctl serve` of its own over a fresh SQLite file (`Lab`), a project "bench" of N
/// imported stories (epic 1, stories 1.1..1.N), and 1 + RACERS agent keys.
struct Loopctl {
    lab: Lab,
    /// Agent 0 does the untimed preparation and the timed reads and set-done; 0..RACERS race.
    agents: Vec<String>,
}

impl Loopctl {
    fn start(bin: &Path, tasks: usize) -> anyhow::Result<Self> {
        let lab = Lab::start(bin)?;
        lab.run_ok(&lab.orchestrator, "orch", "", &["project", "create", "bench", "--slug", "bench"])?;
        let stories: Vec<Value> = (1..=tasks)
            .map(|i| {
                json!({"number": format!("1.{i}"), "title": format!("Story {i}"),
                       "acceptance_criteria": [{"id": "AC-1", "description": "works"}]})
            })
            .collect();
        let breakdown = lab.dir.path().join("breakdown.json");
        std::fs::write(
            &breakdown,
            json!({"epics": [{"number": 1, "title": "Bench", "stories": stories}]}).to_string(),
        )?;
        let start = Instant::now();
        lab.run_ok(&lab.orchestrator, "orch", "bench", &["import", &breakdown.to_string_lossy()])?;
        eprintln!("  loopctl import of {tasks} stories: {} ms", start.elapsed().as_millis());
        let mut agents = vec![lab.agent.clone()];
        for racer in 1..RACERS {
            let out = lab.run_ok(
                &lab.user,
                "user",
                "",
                &["keys", "create", &format!("racer-{racer}"), "--role", "agent", "--format", "json"],
            )?;
            let answer: Value = serde_json::from_str(&out).context("`loopctl keys create` printed no JSON")?;
            let raw = answer["api_key"]["raw_key"]
                .as_str()
                .or_else(|| answer["raw_key"].as_str())
                .with_context(|| format!("no raw key in {answer}"))?;
            agents.push(raw.to_string());
        }
        Ok(Loopctl { lab, agents })
    }

    /// One CLI process as `who`, configured only by environment (`Lab::cli`).
    fn cmd(&self, key: &str, who: &str, args: &[&str]) -> Command {
        self.lab.cli(key, who, "bench", args)
    }

    fn agent(&self, n: usize, args: &[&str]) -> Command {
        self.cmd(&self.agents[n], &format!("agent-{n}"), args)
    }
}

impl Tool for Loopctl {
    fn name(&self) -> &'static str {
        "loopctl"
    }
    fn next(&self) -> Command {
        self.agent(0, &["next"])
    }
    fn list(&self) -> Command {
        // `pending` would show at most 500 of them (its page size), so the full list is the export.
        self.agent(0, &["export"])
    }
    fn status(&self) -> Option<Command> {
        Some(self.agent(0, &["status"]))
    }
    fn prepare_done(&self, task: usize) -> anyhow::Result<()> {
        let story = format!("1.{task}");
        for verb in ["contract", "claim", "start"] {
            run_ok(self.agent(0, &[verb, &story]))?;
        }
        Ok(())
    }
    fn done(&self, task: usize) -> Command {
        self.agent(0, &["report", &format!("1.{task}")])
    }
    fn create(&self, task: usize) -> Command {
        let (number, title) = (format!("1.{task}"), format!("Story {task}"));
        self.cmd(&self.lab.orchestrator, "orch", &["story", "create", &number, &title, "--epic", "1", "--ac", "works"])
    }
    fn prepare_race(&self, task: usize) -> anyhow::Result<()> {
        run_ok(self.agent(0, &["contract", &format!("1.{task}")])).map(drop)
    }
    fn claim(&self, task: usize, racer: usize) -> Command {
        self.agent(racer, &["claim", &format!("1.{task}")])
    }
    fn after_race(&self, task: usize) -> anyhow::Result<String> {
        let out = run_ok(self.agent(0, &["status", &format!("1.{task}"), "--format", "json"]))?;
        let answer: Value = serde_json::from_str(&out)?;
        let story = answer.get("story").unwrap_or(&answer);
        Ok(format!(
            "server says {} / claim epoch {}",
            story["agent_status"].as_str().unwrap_or("?"),
            story["claim_epoch"].as_i64().map_or_else(|| "?".into(), |e| e.to_string())
        ))
    }
    fn notes(&self) -> &'static str {
        "real binary, one process per call, against its own `loopctl serve` (SQLite) on 127.0.0.1; \
         list = `export` (every story, as JSON; `pending` stops at 500 without saying so); set-done = `report` (the agent's done; \
         contract+claim+start before it, untimed); create by the orchestrator key; each racer is \
         its own agent key, the story contracted first (untimed), since claim needs a contract"
    }
}

// ---------------------------------------------------------------------------------------------
// Backlog.md

/// A fresh `backlog init` directory with N task files.
struct Backlog {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Backlog {
    fn new(npm_bin: &Path, tasks: usize) -> anyhow::Result<Self> {
        let this = Backlog { bin: npm_bin.join("backlog"), dir: tempfile::tempdir()? };
        run_ok(this.cmd(&["init", "bench", "--defaults", "--no-git", "--integration-mode", "none"]))?;
        let dir = this.dir.path().join("backlog").join("tasks");
        std::fs::create_dir_all(&dir)?;
        for i in 1..=tasks {
            let text = format!(
                "---\nid: TASK-{i}\ntitle: Story {i}\nstatus: To Do\nassignee: []\n\
                 created_date: '2026-01-01 00:00'\nlabels: []\ndependencies: []\nordinal: {}\n---\n\n\
                 ## Acceptance Criteria\n<!-- AC:BEGIN -->\n- [ ] #1 works\n<!-- AC:END -->\n",
                i * 1000
            );
            std::fs::write(dir.join(format!("task-{i} - Story-{i}.md")), text)?;
        }
        let start = Instant::now();
        let listed = run_ok(this.list())?;
        ensure!(
            listed.contains(&format!("TASK-{tasks} ")),
            "Backlog.md does not list the task files written for it:\n{listed}"
        );
        eprintln!("  Backlog.md lists {tasks} task files ({} ms)", start.elapsed().as_millis());
        Ok(this)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(self.dir.path()).env_remove("BACKLOG_CWD");
        cmd
    }
}

impl Tool for Backlog {
    fn name(&self) -> &'static str {
        "Backlog.md"
    }
    fn next(&self) -> Command {
        self.cmd(&["task", "list", "--ready", "--status", "To Do", "--limit", "1", "--plain"])
    }
    fn list(&self) -> Command {
        self.cmd(&["task", "list", "--plain"])
    }
    fn status(&self) -> Option<Command> {
        Some(self.cmd(&["overview"]))
    }
    fn done(&self, task: usize) -> Command {
        self.cmd(&["task", "edit", &task.to_string(), "--status", "Done", "--plain"])
    }
    fn create(&self, task: usize) -> Command {
        self.cmd(&["task", "create", &format!("Story {task}"), "--ac", "works", "--plain"])
    }
    fn claim(&self, task: usize, racer: usize) -> Command {
        let assignee = format!("@racer-{racer}");
        self.cmd(&["task", "edit", &task.to_string(), "--status", "In Progress", "--assignee", &assignee, "--plain"])
    }
    fn after_race(&self, task: usize) -> anyhow::Result<String> {
        let dir = self.dir.path().join("backlog").join("tasks");
        let prefix = format!("task-{task} ");
        let file = std::fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .with_context(|| format!("no file of task {task} in {}", dir.display()))?;
        let text = std::fs::read_to_string(file.path())?;
        let field = |name: &str| {
            let mut lines = text.lines().skip_while(|l| !l.starts_with(&format!("{name}:")));
            let first = lines.next().unwrap_or_default().trim_start_matches(&format!("{name}:")).trim().to_string();
            // A YAML list may continue on `  - item` lines.
            let rest: Vec<&str> = lines
                .take_while(|l| l.trim_start().starts_with("- "))
                .map(|l| l.trim().trim_start_matches("- "))
                .collect();
            if rest.is_empty() { first } else { rest.join(", ") }
        };
        Ok(format!("file says status {}, assignee {}", field("status"), field("assignee")))
    }
    fn notes(&self) -> &'static str {
        "no `next` command: next = `task list --ready --status 'To Do' --limit 1`; status = \
         `overview`; set-done = `task edit N --status Done`; claim = `task edit N --status \
         'In Progress' --assignee @racer-i` (no claim verb, no compare-and-set)"
    }
}

// ---------------------------------------------------------------------------------------------
// Task Master

/// A fresh `task-master init` directory with N tasks in its tasks.json.
struct TaskMaster {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl TaskMaster {
    fn new(npm_bin: &Path, tasks: usize) -> anyhow::Result<Self> {
        let this = TaskMaster { bin: npm_bin.join("task-master"), dir: tempfile::tempdir()? };
        run_ok(this.cmd(&[
            "init",
            "--yes",
            "--name",
            "bench",
            "--no-git",
            "--no-aliases",
            "--skip-install",
            "--rules",
            "cursor",
        ]))?;
        let list: Vec<Value> = (1..=tasks)
            .map(|i| {
                json!({"id": i, "title": format!("Story {i}"), "description": "works", "details": "",
                       "testStrategy": "works", "status": "pending", "dependencies": [],
                       "priority": "medium", "subtasks": []})
            })
            .collect();
        let doc = json!({"master": {"tasks": list, "metadata": {
            "created": "2026-01-01T00:00:00.000Z", "updated": "2026-01-01T00:00:00.000Z",
            "description": "Tasks for master context"}}});
        let file = this.tasks_json();
        std::fs::create_dir_all(file.parent().context("tasks.json has a directory")?)?;
        std::fs::write(&file, serde_json::to_string_pretty(&doc)?)?;
        let listed = run_ok(this.cmd(&["list", "--format", "json"]))?;
        // The first run may print a notice after the JSON: read the first value only.
        let first = serde_json::Deserializer::from_str(&listed).into_iter::<Value>().next();
        let shown = first.and_then(Result::ok).and_then(|v| v["tasks"].as_array().map(Vec::len));
        ensure!(
            shown == Some(tasks),
            "Task Master lists {shown:?} of the {tasks} tasks written to its tasks.json:\n{}",
            listed.chars().rev().take(2000).collect::<Vec<_>>().into_iter().rev().collect::<String>()
        );
        Ok(this)
    }

    fn tasks_json(&self) -> PathBuf {
        self.dir.path().join(".taskmaster").join("tasks").join("tasks.json")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(self.dir.path());
        cmd
    }
}

impl Tool for TaskMaster {
    fn name(&self) -> &'static str {
        "Task Master"
    }
    fn next(&self) -> Command {
        self.cmd(&["next"])
    }
    fn list(&self) -> Command {
        self.cmd(&["list"])
    }
    fn status(&self) -> Option<Command> {
        None
    }
    fn done(&self, task: usize) -> Command {
        self.cmd(&["set-status", &task.to_string(), "done"])
    }
    fn create(&self, task: usize) -> Command {
        self.cmd(&["add-task", "--title", &format!("Story {task}"), "--description", "works"])
    }
    fn claim(&self, task: usize, _racer: usize) -> Command {
        self.cmd(&["set-status", &task.to_string(), "in-progress"])
    }
    fn after_race(&self, task: usize) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(self.tasks_json())?;
        let doc: Value = match serde_json::from_str(&text) {
            Ok(doc) => doc,
            Err(err) => return Ok(format!("tasks.json no longer parses: {err}")),
        };
        let tasks = doc["master"]["tasks"].as_array().map_or(&[][..], Vec::as_slice);
        let status = tasks
            .iter()
            // Task Master rewrites the ids as strings once it has saved the file.
            .find(|t| t["id"].as_u64() == Some(task as u64) || t["id"].as_str() == Some(&task.to_string()))
            .and_then(|t| t["status"].as_str())
            .unwrap_or("missing");
        Ok(format!("tasks.json holds {} tasks, task {task} {status}", tasks.len()))
    }
    fn notes(&self) -> &'static str {
        "no assignee field and no claim: claim = `set-status N in-progress` by all 8; list = \
         `list` (its table and dashboard); no overview besides list; create = manual \
         `add-task --title --description` (no AI key set, none used)"
    }
}

// ---------------------------------------------------------------------------------------------
// The table

/// One row's samples out of a tool's measurements.
type Pick = fn(&Measured) -> &Samples;

fn print_table(results: &[Measured], tasks: usize) {
    let [lc, bl, tm] = results else { return };
    let cell = |s: &Samples| match (s.median(), s.max()) {
        (Some(median), Some(max)) => format!("{median:.0} (max {max:.0})"),
        _ => "n/a".to_string(),
    };
    let ratio = |ours: &Samples, theirs: &Samples| match (ours.median(), theirs.median()) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".to_string(),
    };
    println!(
        "\n{tasks} tasks, one process per call, {REPS} runs each; median (max) wall ms; ratio = loopctl median / peer median\n"
    );
    println!("| call | loopctl ms | Backlog.md ms | ratio | Task Master ms | ratio |");
    println!("|---|---|---|---|---|---|");
    let rows: [(&str, Pick); 6] = [
        ("next", |m| &m.next),
        ("list", |m| &m.list),
        ("status", |m| &m.status),
        ("set-done", |m| &m.done),
        ("create", |m| &m.create),
        ("claim race, 8 at once (wall)", |m| &m.race),
    ];
    for (label, pick) in rows {
        println!(
            "| {label} | {} | {} | {} | {} | {} |",
            cell(pick(lc)),
            cell(pick(bl)),
            ratio(pick(lc), pick(bl)),
            cell(pick(tm)),
            ratio(pick(lc), pick(tm))
        );
    }
    let winners = |m: &Measured| m.winners.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    println!("| claim race: winners of 8 (each race) | {} | {} | | {} | |", winners(lc), winners(bl), winners(tm));
    for m in results {
        println!("\n{}: {}", m.tool, m.notes);
        for (call, line) in &m.commands {
            println!("  {call:<9} {line}");
        }
        for note in &m.race_notes {
            println!("  race     {note}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The median of an odd number of runs is the middle run, whatever order they came in,
    /// and the max is the slowest; no runs give no number (a "n/a" cell), not a zero.
    #[test]
    fn the_median_of_five_runs_is_the_middle_one_and_the_max_the_slowest() {
        let runs = Samples([40, 10, 30, 50, 20].into_iter().map(Duration::from_millis).collect());
        assert_eq!(runs.median(), Some(30.0));
        assert_eq!(runs.max(), Some(50.0));
        assert_eq!(Samples::default().median(), None);
    }

    /// The printed command line quotes what a shell would split, so it can be pasted.
    #[test]
    fn a_shown_command_line_quotes_arguments_with_spaces() {
        let mut cmd = Command::new("/somewhere/bin/backlog");
        cmd.args(["task", "edit", "7", "--status", "In Progress"]);
        assert_eq!(shown(&cmd), "backlog task edit 7 --status 'In Progress'");
    }
}
