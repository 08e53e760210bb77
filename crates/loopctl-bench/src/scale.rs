//! `loopctl-bench scale`: how the calls an orchestrator makes all day cost as the project
//! grows. For each size it starts a real `loopctl serve` on a fresh SQLite file, imports
//! the project with `loopctl import` (whole process, batched as the CLI sends it), times
//! whole-process CLI calls and one HTTP page, and reads the server's RSS from `/proc`, so
//! every figure is what a user's shell and the machine see. Each size's figures print as a
//! ratio of the smallest size's, measured in the same run.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use loopctl_api::FrontierParams;
use loopctl_client::Client;
use serde_json::{Value, json};

use crate::lab::Lab;
use crate::stats::median;

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

pub async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    let bin = match &args.loopctl {
        Some(path) => path.clone(),
        None => crate::lab::default_loopctl()?,
    };
    let mut rows = Vec::new();
    for &stories in &args.scale {
        let row = measure(&bin, stories, &args).await.with_context(|| format!("at {stories} stories"))?;
        eprintln!("measured {stories} stories");
        rows.push(row);
    }
    print_table(&rows);
    Ok(())
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
    let lab = Lab::start(bin)?;
    lab.run_ok(&lab.orchestrator, "orch", "", &["project", "create", &format!("Scale {stories}"), "--slug", "scale"])?;
    let file = lab.dir.path().join("breakdown.json");
    std::fs::write(&file, serde_json::to_vec(&breakdown(stories))?)?;
    let file = file.to_string_lossy().into_owned();
    let import = lab.time(&lab.orchestrator, "orch", "scale", &["import", &file])?;
    let repeat = |argv: &[&str], key: &str, who: &str| -> anyhow::Result<Duration> {
        let mut times = Vec::new();
        for _ in 0..args.repeat.max(1) {
            times.push(lab.time(key, who, "scale", argv)?);
        }
        Ok(median(&mut times))
    };
    let next = repeat(&["next"], &lab.orchestrator, "orch")?;
    let status = repeat(&["status"], &lab.orchestrator, "orch")?;
    let blocked = repeat(&["blocked"], &lab.orchestrator, "orch")?;
    let export = repeat(&["export"], &lab.orchestrator, "orch")?;
    let claim = repeat(&["next", "--claim"], &lab.agent, "agent")?;
    let orch = Client::new(&lab.url, Some(lab.orchestrator.clone()))?;
    let params = FrontierParams { project_id: Some("scale".into()), limit: Some(20), ..FrontierParams::default() };
    let mut pages = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        orch.ready_stories(&params).await?;
        pages.push(started.elapsed());
    }
    let ready_page = median(&mut pages);
    // Several exports at once, read to the end by separate processes.
    let exporters: Vec<Child> = (0..args.exports)
        .map(|i| lab.cli(&lab.orchestrator, &format!("export-{i}"), "scale", &["export"]).stdout(Stdio::null()).spawn())
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
