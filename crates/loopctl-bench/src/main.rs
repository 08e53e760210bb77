//! `cargo run --release -p loopctl-bench -- [--workers 16] [--stories 40] [--postgres URL]`
//!
//! Runs the seed loop (contract → claim → start → report → verify, five transitions a story)
//! with N concurrent workers twice in one run: through the service layer directly (the
//! baseline), then over HTTP against a real server on an ephemeral port. Prints transitions
//! per second, p50/p99 latency per transition, and HTTP as a share of the baseline, because
//! this machine is too noisy for absolute numbers to mean much on their own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use loopctl_api::{ContractRequest, CreateProject, ReportRequest, VerifyRequest};
use loopctl_app::{App, BootstrapRequest, Principal};
use loopctl_client::Client;
use loopctl_store::Store;
use serde_json::json;
use uuid::Uuid;

struct Args {
    workers: usize,
    stories: usize,
    postgres: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args { workers: 16, stories: 40, postgres: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().context("a value after the flag");
        match flag.as_str() {
            "--workers" => args.workers = value()?.parse()?,
            "--stories" => args.stories = value()?.parse()?,
            "--postgres" => args.postgres = Some(value()?),
            other => anyhow::bail!("unknown flag {other}; use --workers N --stories N --postgres URL"),
        }
    }
    Ok(args)
}

/// A tenant with one project of `workers * stories` independent stories and one agent key per worker.
struct Fixture {
    app: App,
    orchestrator: String,
    agents: Vec<String>,
    stories: Vec<Vec<(Uuid, String)>>,
}

async fn fixture(store: Arc<dyn Store>, args: &Args, name: &str) -> anyhow::Result<Fixture> {
    let app = App::new(store);
    let err = |e: loopctl_app::AppError| anyhow::anyhow!(e.to_string());
    let boot = app
        .bootstrap_tenant(BootstrapRequest { tenant_name: name.into(), slug: None, email: None })
        .await
        .map_err(err)?;
    let user = app.authenticate(&boot.keys.user).await.map_err(err)?;
    let settings = json!({"max_concurrent_agents": 1000, "rate_limit_requests_per_minute": 10_000_000});
    app.update_tenant(&user, serde_json::from_value(json!({"settings": settings}))?).await.map_err(err)?;
    let orch = app.authenticate(&boot.keys.orchestrator).await.map_err(err)?;
    let project = app
        .create_project(
            &orch,
            CreateProject {
                name: name.into(),
                slug: None,
                repo_url: None,
                description: None,
                tech_stack: None,
                mission: None,
                metadata: None,
            },
        )
        .await
        .map_err(err)?;
    let total = args.workers * args.stories;
    let stories: Vec<_> = (1..=total)
        .map(|i| json!({"number": format!("1.{i}"), "title": format!("Story {i}"), "acceptance_criteria": [{"id": "AC-1", "description": "works"}]}))
        .collect();
    app.import_project(
        &orch,
        project.id,
        &json!({"epics": [{"number": 1, "title": "Bench", "stories": stories}]}),
        false,
    )
    .await
    .map_err(err)?;
    let mut agents = Vec::new();
    for idx in 0..args.workers {
        let request = serde_json::from_value(json!({"name": format!("bench-{idx}"), "role": "agent"}))?;
        let key = app.create_api_key(&user, request).await.map_err(err)?;
        agents.push(key.raw_key.context("a raw key")?);
    }
    let all = app.all_stories_for_bench(&orch, project.id).await.map_err(err)?;
    let stories = all.chunks(args.stories).map(|chunk| chunk.to_vec()).collect();
    Ok(Fixture { app, orchestrator: boot.keys.orchestrator, agents, stories })
}

/// Latencies of every transition, and the wall time of the whole run.
struct Outcome {
    latencies: Vec<Duration>,
    wall: Duration,
}

fn report(label: &str, outcome: &mut Outcome) -> f64 {
    outcome.latencies.sort();
    let n = outcome.latencies.len();
    let pct =
        |p: f64| outcome.latencies.get(((n as f64 * p) as usize).min(n.saturating_sub(1))).copied().unwrap_or_default();
    let rate = n as f64 / outcome.wall.as_secs_f64();
    println!(
        "{label:<28} {n:>7} transitions  {rate:>9.0} /s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    rate
}

async fn timed<F, T>(latencies: &mut Vec<Duration>, call: F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let start = Instant::now();
    let value = call.await?;
    latencies.push(start.elapsed());
    Ok(value)
}

async fn run_direct(fx: &Fixture) -> anyhow::Result<Outcome> {
    let orch = fx.app.authenticate(&fx.orchestrator).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (agent_key, stories) in fx.agents.iter().zip(&fx.stories) {
        let app = fx.app.clone();
        let agent: Principal = app.authenticate(agent_key).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
        let orch = orch.clone();
        let stories = stories.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let err = |e: loopctl_app::AppError| anyhow::anyhow!(e.to_string());
            for (id, title) in stories {
                let contract = ContractRequest { story_title: Some(title), ac_count: Some(json!(1)) };
                timed(&mut lat, async { app.contract_story(&agent, id, contract).await.map_err(err) }).await?;
                timed(&mut lat, async { app.claim_story(&agent, id).await.map_err(err) }).await?;
                timed(&mut lat, async { app.start_story(&agent, id, None).await.map_err(err) }).await?;
                timed(&mut lat, async {
                    app.report_story(&agent, id, ReportRequest::default(), None).await.map_err(err)
                })
                .await?;
                timed(&mut lat, async { app.verify_story(&orch, id, VerifyRequest::default()).await.map_err(err) })
                    .await?;
            }
            anyhow::Ok(lat)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Outcome { latencies, wall: started.elapsed() })
}

/// The same loop through `loopctl_client`, as the CLI and MCP send it: one client (and
/// connection pool) per key, an `Idempotency-Key` on every write.
async fn run_http(fx: &Fixture, base: &str) -> anyhow::Result<Outcome> {
    let orch = Client::new(base, Some(fx.orchestrator.clone()))?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (agent_key, stories) in fx.agents.iter().zip(&fx.stories) {
        let (agent, orch, stories) = (Client::new(base, Some(agent_key.clone()))?, orch.clone(), stories.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for (id, title) in stories {
                let contract = ContractRequest { story_title: Some(title), ac_count: Some(json!(1)) };
                timed(&mut lat, async { Ok(agent.contract_story(id, &contract).await?) }).await?;
                timed(&mut lat, async { Ok(agent.claim_story(id).await?) }).await?;
                timed(&mut lat, async { Ok(agent.start_story(id, None).await?) }).await?;
                timed(&mut lat, async { Ok(agent.report_story(id, &ReportRequest::default(), None).await?) }).await?;
                timed(&mut lat, async { Ok(orch.verify_story(id, &VerifyRequest::default()).await?) }).await?;
            }
            anyhow::Ok(lat)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(Outcome { latencies, wall: started.elapsed() })
}

async fn bench(
    label: &str,
    open: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Arc<dyn Store>>>>>,
    args: &Args,
) -> anyhow::Result<()> {
    let store = open().await?;
    let direct_fx = fixture(store.clone(), args, &format!("{label} direct")).await?;
    let mut direct = run_direct(&direct_fx).await?;
    let http_fx = fixture(store.clone(), args, &format!("{label} http")).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(loopctl_server::serve(store, listener));
    let mut http = run_http(&http_fx, &base).await?;
    server.abort();
    println!("\n{label}, {} workers x {} stories:", args.workers, args.stories);
    let baseline = report("service layer (baseline)", &mut direct);
    let over_http = report("HTTP", &mut http);
    println!("{:<28} {:>6.0} % of the baseline", "HTTP / baseline", over_http * 100.0 / baseline);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = args()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    bench(
        "SQLite",
        || {
            let path = path.clone();
            Box::pin(async move {
                let store: Arc<dyn Store> = Arc::new(loopctl_store_sqlite::SqliteStore::open(&path).await?);
                Ok(store)
            })
        },
        &args,
    )
    .await?;
    if let Some(url) = args.postgres.clone() {
        bench(
            "PostgreSQL",
            || {
                let url = url.clone();
                Box::pin(async move {
                    let store: Arc<dyn Store> = Arc::new(loopctl_store_postgres::PgStore::connect(&url).await?);
                    Ok(store)
                })
            },
            &args,
        )
        .await?;
    }
    Ok(())
}
