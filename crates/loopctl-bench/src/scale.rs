//! `loopctl-bench scale`: how the calls an orchestrator makes all day cost as the project
//! grows. For each size it starts a real `loopctl serve` on a fresh SQLite file, imports
//! the project with `loopctl import` (whole process, batched as the CLI sends it), times
//! whole-process CLI calls and one HTTP page, and reads the server's RSS from `/proc`, so
//! every figure is what a user's shell and the machine see. Each size's figures print as a
//! ratio of the smallest size's, measured in the same run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use loopctl_api::{CreateProject, FrontierParams, UpdateTenant};
use loopctl_client::Client;
use serde_json::{Value, json};

use crate::stats::{Rss, median};

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// Project sizes (stories), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub scale: Vec<usize>,
    /// The `loopctl` binary to measure (default: next to this one).
    #[arg(long, value_name = "PATH")]
    pub loopctl: Option<PathBuf>,
    /// Repetitions of each call (the median is shown).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Concurrent exports of the largest project (server RSS under them).
    #[arg(long, default_value_t = 6)]
    pub exports: usize,
}

/// One row of the table.
struct Row {
    stories: usize,
    import: Duration,
    next: Duration,
    status: Duration,
    blocked: Duration,
    export: Duration,
    claim: Duration,
    ready_page: Duration,
    rss_peak_mb: f64,
}

/// The `loopctl` next to the running bench binary (`target/release/loopctl`).
pub fn default_loopctl() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name("loopctl");
    if !path.exists() {
        bail!(
            "no loopctl binary at {}; build it (`cargo build --release -p loopctl`) or pass --loopctl",
            path.display()
        );
    }
    Ok(path)
}

pub async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    let bin = match &args.loopctl {
        Some(path) => path.clone(),
        None => default_loopctl()?,
    };
    let mut rows = Vec::new();
    for &stories in &args.scale {
        let row = measure(&bin, stories, &args).await.with_context(|| format!("at {stories} stories"))?;
        print_row(&row, rows.first());
        rows.push(row);
    }
    print_table(&rows);
    Ok(())
}

/// A real server on its own SQLite file, with a tenant whose keys the CLI calls use.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub server: Child,
    pub url: String,
    pub orchestrator: String,
    pub agent: String,
    bin: PathBuf,
}

impl Lab {
    pub async fn start(bin: &Path) -> anyhow::Result<Lab> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("loopctl.db");
        let init = Command::new(bin)
            .args(["admin", "init", "--tenant", "bench", "--format", "json", "--database-url"])
            .arg(&db)
            .env("HOME", dir.path())
            .output()?;
        if !init.status.success() {
            bail!("loopctl admin init failed: {}", String::from_utf8_lossy(&init.stderr));
        }
        let keys: Value = serde_json::from_slice(&init.stdout).context("admin init prints JSON")?;
        let key = |role: &str| {
            keys.pointer(&format!("/keys/{role}")).and_then(Value::as_str).map(str::to_string).context("a key")
        };
        let (user, orchestrator, agent) = (key("user")?, key("orchestrator")?, key("agent")?);
        let mut server = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
            .arg(&db)
            .env("HOME", dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let url = listening_url(&mut server)?;
        let admin = Client::new(&url, Some(user))?;
        let settings = json!({"max_concurrent_agents": 1000, "rate_limit_requests_per_minute": 10_000_000});
        admin.update_tenant(&UpdateTenant { name: None, email: None, settings: Some(settings) }).await?;
        Ok(Lab { dir, server, url, orchestrator, agent, bin: bin.to_path_buf() })
    }

    /// A `loopctl` command as an agent's shell runs it: its own process, the key and server
    /// in the environment, no profile.
    pub fn cli(&self, key: &str, project: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("LOOPCTL_CONFIG", self.dir.path().join("no-config.toml"))
            .env("LOOPCTL_STATE_DIR", self.dir.path().join("state"))
            .env("LOOPCTL_SERVER", &self.url)
            .env("LOOPCTL_API_KEY", key)
            .env("LOOPCTL_PROJECT", project)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `args` once and answers its wall time; a failed call fails the bench.
    pub fn time(&self, key: &str, project: &str, args: &[&str]) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let out = self.cli(key, project, args).output()?;
        let took = started.elapsed();
        if !out.status.success() {
            bail!("`loopctl {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(took)
    }

    pub fn rss(&self) -> anyhow::Result<Rss> {
        Rss::of(self.server.id())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Reads the server's `listening on http://…` line.
fn listening_url(server: &mut Child) -> anyhow::Result<String> {
    // The listening line goes to stderr, with the log.
    let stderr = server.stderr.take().context("server stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(at) = line.find("listening on ") {
            let url = line[at + "listening on ".len()..].split_whitespace().next().unwrap_or_default().to_string();
            // Keep draining the server's output so it never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(url);
        }
    }
    bail!("the server exited before it listened")
}

/// A breakdown of `stories` stories in epics of 100: every tenth story waits for the one
/// before it, and each epic past the tenth waits for the epic ten before it, so the ready
/// frontier is about a tenth of the project and most stories are blocked.
pub fn breakdown(stories: usize) -> Value {
    let per_epic = 100;
    let epics = stories.div_ceil(per_epic);
    let mut story_deps = Vec::new();
    let mut epic_deps = Vec::new();
    let epic_list: Vec<Value> = (1..=epics)
        .map(|e| {
            let count = per_epic.min(stories - (e - 1) * per_epic);
            if e > 10 {
                epic_deps.push(json!({"epic": e, "depends_on": e - 10}));
            }
            let list: Vec<Value> = (1..=count)
                .map(|s| {
                    if s % 10 == 0 {
                        story_deps.push(json!({"story": format!("{e}.{s}"), "depends_on": format!("{e}.{}", s - 1)}));
                    }
                    json!({
                        "number": format!("{e}.{s}"),
                        "title": format!("Story {e}.{s}"),
                        "description": "A story of the scale bench, about as long as a real one's first line.",
                        "acceptance_criteria": [{"id": "AC-1", "description": "it works"}, {"id": "AC-2", "description": "it is tested"}],
                        "estimated_hours": 2,
                    })
                })
                .collect();
            json!({"number": e, "title": format!("Epic {e}"), "stories": list})
        })
        .collect();
    json!({"epics": epic_list, "story_dependencies": story_deps, "epic_dependencies": epic_deps})
}

async fn measure(bin: &Path, stories: usize, args: &ScaleArgs) -> anyhow::Result<Row> {
    let lab = Lab::start(bin).await?;
    let orch = Client::new(&lab.url, Some(lab.orchestrator.clone()))?;
    let project = orch
        .create_project(&CreateProject {
            name: format!("Scale {stories}"),
            slug: Some("scale".into()),
            repo_url: None,
            description: None,
            tech_stack: None,
            mission: None,
            metadata: None,
        })
        .await?
        .project;
    let file = lab.dir.path().join("breakdown.json");
    std::fs::write(&file, serde_json::to_vec(&breakdown(stories))?)?;
    let file = file.to_string_lossy().into_owned();
    let import = lab.time(&lab.orchestrator, "scale", &["import", &file])?;
    let repeat = |argv: &[&str], key: &str| -> anyhow::Result<Duration> {
        let mut times = Vec::new();
        for _ in 0..args.repeat.max(1) {
            times.push(lab.time(key, "scale", argv)?);
        }
        Ok(median(&mut times))
    };
    let next = repeat(&["next"], &lab.orchestrator)?;
    let status = repeat(&["status"], &lab.orchestrator)?;
    let blocked = repeat(&["blocked"], &lab.orchestrator)?;
    let export = repeat(&["export"], &lab.orchestrator)?;
    let claim = repeat(&["next", "--claim"], &lab.agent)?;
    let params =
        FrontierParams { project_id: Some(project.id.to_string()), limit: Some(20), ..FrontierParams::default() };
    let mut pages = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        orch.ready_stories(&params).await?;
        pages.push(started.elapsed());
    }
    let ready_page = median(&mut pages);
    // Several exports at once, read to the end by separate processes.
    let exporters: Vec<Child> = (0..args.exports)
        .map(|_| lab.cli(&lab.orchestrator, "scale", &["export"]).spawn())
        .collect::<Result<_, _>>()?;
    for mut exporter in exporters {
        if !exporter.wait()?.success() {
            bail!("a concurrent export failed");
        }
    }
    let rss = lab.rss()?;
    Ok(Row { stories, import, next, status, blocked, export, claim, ready_page, rss_peak_mb: rss.peak_mb })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_row(row: &Row, base: Option<&Row>) {
    let ratio = |f: fn(&Row) -> Duration| match base {
        Some(b) => format!(" ({:.2}x)", ms(f(row)) / ms(f(b)).max(1e-9)),
        None => String::new(),
    };
    println!(
        "{} stories: import {:.2} s{}, next {:.1} ms{}, status {:.1} ms{}, blocked {:.1} ms{}, export {:.1} ms{}, \
         next --claim {:.1} ms{}, GET ready?limit=20 {:.2} ms{}, server RSS peak {:.0} MB",
        row.stories,
        row.import.as_secs_f64(),
        ratio(|r| r.import),
        ms(row.next),
        ratio(|r| r.next),
        ms(row.status),
        ratio(|r| r.status),
        ms(row.blocked),
        ratio(|r| r.blocked),
        ms(row.export),
        ratio(|r| r.export),
        ms(row.claim),
        ratio(|r| r.claim),
        ms(row.ready_page),
        ratio(|r| r.ready_page),
        row.rss_peak_mb,
    );
}

fn print_table(rows: &[Row]) {
    let Some(base) = rows.first() else {
        return;
    };
    println!(
        "\n| stories | import | `next` | `status` | `blocked` | export | `next --claim` | GET ready?limit=20 | server RSS peak |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let cell = |d: Duration, b: Duration| {
            if row.stories == base.stories {
                format!("{:.1} ms", ms(d))
            } else {
                format!("{:.1} ms ({:.2}x)", ms(d), ms(d) / ms(b).max(1e-9))
            }
        };
        println!(
            "| {} | {:.2} s | {} | {} | {} | {} | {} | {} | {:.0} MB |",
            row.stories,
            row.import.as_secs_f64(),
            cell(row.next, base.next),
            cell(row.status, base.status),
            cell(row.blocked, base.blocked),
            cell(row.export, base.export),
            cell(row.claim, base.claim),
            cell(row.ready_page, base.ready_page),
            row.rss_peak_mb,
        );
    }
    println!(
        "(whole-process CLI calls, median of the repetitions; ratios against the {}-story row of this run; RSS is the server's VmHWM after the imports, calls and concurrent exports)",
        base.stories
    );
}
