//! `loopctl-bench loop`: the seed loop (contract → claim → start → report → verify, five
//! transitions a story) with C concurrent agents, measured in one run against three
//! baselines: the store's raw compare-and-set (the same five writes with their events, no
//! service layer), the service layer itself, and a constant HTTP handler (the transport's
//! ceiling). On PostgreSQL `--instances N` runs N servers on the one database, each with its
//! own pool, the agents spread over them, as N `loopctl serve` processes would.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use loopctl_api::{ContractRequest, CreateProject, ReportRequest, VerifyRequest};
use loopctl_app::{App, BootstrapRequest, Principal};
use loopctl_client::{Client, Method};
use loopctl_core::StoryState;
use loopctl_store::{ActorStamp, NewEvent, Store, StoryFilter, StoryTransition, WriteOp};
use serde_json::json;
use uuid::Uuid;

use crate::stats::{CpuClock, Outcome, Rss};

#[derive(clap::Args, Debug, Clone)]
pub struct LoopArgs {
    /// Concurrent agents.
    #[arg(long, default_value_t = 16)]
    pub workers: usize,
    /// Stories per agent.
    #[arg(long, default_value_t = 40)]
    pub stories: usize,
    /// A PostgreSQL URL (postgres://…) instead of a fresh SQLite file.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Server instances over the one database (PostgreSQL).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
}

/// Opens the store under test: a fresh SQLite file, or the PostgreSQL database.
pub async fn open_store(url: Option<&str>, dir: &std::path::Path) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match url {
        Some(url) => Arc::new(loopctl_store_postgres::PgStore::connect(url).await?),
        None => Arc::new(loopctl_store_sqlite::SqliteStore::open(&dir.join("bench.db")).await?),
    })
}

/// A tenant with one project of independent stories and one agent key per worker.
pub struct Fixture {
    pub app: App,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    pub orchestrator: String,
    pub agents: Vec<String>,
    pub stories: Vec<Vec<(Uuid, String)>>,
}

fn app_err(e: loopctl_app::AppError) -> anyhow::Error {
    anyhow::anyhow!(e.to_string())
}

/// `workers` agent keys and `total` stories, dealt to the agents in equal runs.
pub async fn fixture(store: Arc<dyn Store>, workers: usize, total: usize, name: &str) -> anyhow::Result<Fixture> {
    let app = App::new(store.clone());
    let boot = app
        // A tenant of its own each run, so a PostgreSQL database can be measured again.
        .bootstrap_tenant(BootstrapRequest {
            tenant_name: format!("{name} {}", &Uuid::now_v7().simple().to_string()[20..]),
            slug: None,
            email: None,
        })
        .await
        .map_err(app_err)?;
    let user = app.authenticate(&boot.keys.user).await.map_err(app_err)?;
    let settings = json!({"max_concurrent_agents": 1000, "rate_limit_requests_per_minute": 10_000_000});
    app.update_tenant(&user, serde_json::from_value(json!({"settings": settings}))?).await.map_err(app_err)?;
    let orch = app.authenticate(&boot.keys.orchestrator).await.map_err(app_err)?;
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
        .map_err(app_err)?;
    let per_worker = total.div_ceil(workers.max(1));
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
    .map_err(app_err)?;
    let mut agents = Vec::new();
    for idx in 0..workers {
        let request = serde_json::from_value(json!({"name": format!("bench-{idx}"), "role": "agent"}))?;
        let key = app.create_api_key(&user, request).await.map_err(app_err)?;
        agents.push(key.raw_key.context("a raw key")?);
    }
    let filter = StoryFilter { project_id: Some(project.id), limit: i64::try_from(total)?, ..StoryFilter::default() };
    let (records, _) = store.stories(boot.tenant_id, filter).await?;
    let all: Vec<(Uuid, String)> = records.into_iter().map(|s| (s.id, s.title)).collect();
    let stories = all.chunks(per_worker.max(1)).map(<[_]>::to_vec).collect();
    Ok(Fixture {
        app,
        tenant_id: boot.tenant_id,
        project_id: project.id,
        orchestrator: boot.keys.orchestrator,
        agents,
        stories,
    })
}

async fn timed<F, T>(outcome: &mut Outcome, call: F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let start = Instant::now();
    let value = call.await?;
    outcome.latencies.push(start.elapsed());
    Ok(value)
}

/// When a phase started, by the wall clock and the CPU clocks.
#[derive(Clone, Copy)]
struct Started {
    at: Instant,
    cpu: CpuClock,
}

impl Started {
    fn now() -> Started {
        Started { at: Instant::now(), cpu: CpuClock::now() }
    }
}

async fn gather(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Outcome>>>,
    started: Started,
) -> anyhow::Result<Outcome> {
    let mut all = Outcome::default();
    for task in tasks {
        let part = task.await??;
        all.latencies.extend(part.latencies);
        all.errors += part.errors;
    }
    all.wall = started.at.elapsed();
    all.cpu = started.cpu.spent();
    Ok(all)
}

/// The floor under every transition: five compare-and-sets of a story, each with its
/// change-feed event, straight into the store.
async fn run_raw_store(store: Arc<dyn Store>, fx: &Fixture) -> anyhow::Result<Outcome> {
    let started = Started::now();
    let mut tasks = Vec::new();
    for stories in &fx.stories {
        let (store, stories, tenant_id) = (store.clone(), stories.clone(), fx.tenant_id);
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            for (id, _) in stories {
                for version in 0..5 {
                    let batch = vec![
                        WriteOp::TransitionStory(StoryTransition {
                            tenant_id,
                            story_id: id,
                            expected_version: version,
                            state: StoryState::default(),
                            updated_at: chrono::Utc::now(),
                            guard: None,
                            only_if_unblocked: false,
                        }),
                        WriteOp::AppendEvent(raw_event(tenant_id, id)),
                    ];
                    timed(&mut outcome, async { Ok(store.commit(batch).await?) }).await?;
                }
            }
            anyhow::Ok(outcome)
        }));
    }
    gather(tasks, started).await
}

fn raw_event(tenant_id: Uuid, story: Uuid) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        tenant_id,
        project_id: None,
        entity_type: "story".into(),
        entity_id: story,
        action: "bench".into(),
        actor: ActorStamp {
            actor_type: "system".into(),
            key_id: None,
            agent_id: None,
            role: None,
            label: "system:bench".into(),
        },
        old_state: json!({}),
        new_state: json!({}),
        metadata: json!({}),
        inserted_at: chrono::Utc::now(),
    }
}

async fn run_service(fx: &Fixture) -> anyhow::Result<Outcome> {
    let orch = fx.app.authenticate(&fx.orchestrator).await.map_err(app_err)?;
    let started = Started::now();
    let mut tasks = Vec::new();
    for (agent_key, stories) in fx.agents.iter().zip(&fx.stories) {
        let app = fx.app.clone();
        let agent: Principal = app.authenticate(agent_key).await.map_err(app_err)?;
        let (orch, stories) = (orch.clone(), stories.clone());
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome::default();
            for (id, title) in stories {
                let contract = ContractRequest { story_title: Some(title), ac_count: Some(json!(1)) };
                timed(&mut o, async { app.contract_story(&agent, id, contract).await.map_err(app_err) }).await?;
                timed(&mut o, async { app.claim_story(&agent, id).await.map_err(app_err) }).await?;
                timed(&mut o, async { app.start_story(&agent, id, None).await.map_err(app_err) }).await?;
                let report = ReportRequest::default();
                timed(&mut o, async { app.report_story(&agent, id, report, None).await.map_err(app_err) }).await?;
                let verify = VerifyRequest::default();
                timed(&mut o, async { app.verify_story(&orch, id, verify).await.map_err(app_err) }).await?;
            }
            anyhow::Ok(o)
        }));
    }
    gather(tasks, started).await
}

/// The same loop through `loopctl_client`, as the CLI and MCP send it: one client (and
/// connection pool) per key, an `Idempotency-Key` on every write; agent i talks to server
/// i mod N.
async fn run_http(fx: &Fixture, bases: &[String]) -> anyhow::Result<Outcome> {
    let started = Started::now();
    let mut tasks = Vec::new();
    for (i, (agent_key, stories)) in fx.agents.iter().zip(&fx.stories).enumerate() {
        let base = &bases[i % bases.len()];
        let agent = Client::new(base, Some(agent_key.clone()))?;
        let orch = Client::new(base, Some(fx.orchestrator.clone()))?;
        let stories = stories.clone();
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome::default();
            for (id, title) in stories {
                let contract = ContractRequest { story_title: Some(title), ac_count: Some(json!(1)) };
                timed(&mut o, async { Ok(agent.contract_story(id, &contract).await?) }).await?;
                timed(&mut o, async { Ok(agent.claim_story(id).await?) }).await?;
                timed(&mut o, async { Ok(agent.start_story(id, None).await?) }).await?;
                timed(&mut o, async { Ok(agent.report_story(id, &ReportRequest::default(), None).await?) }).await?;
                timed(&mut o, async { Ok(orch.verify_story(id, &VerifyRequest::default()).await?) }).await?;
            }
            anyhow::Ok(o)
        }));
    }
    gather(tasks, started).await
}

/// The transport's ceiling: `GET /api/v1` (a constant answer, no database) as often as the
/// loop makes calls, from as many clients.
async fn run_constant(bases: &[String], workers: usize, calls_each: usize) -> anyhow::Result<Outcome> {
    let started = Started::now();
    let mut tasks = Vec::new();
    for i in 0..workers {
        let client = Client::new(&bases[i % bases.len()], None)?;
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome::default();
            for _ in 0..calls_each {
                timed(&mut o, async { Ok(client.request(Method::GET, "/api/v1", None, &[], &[]).await?) }).await?;
            }
            anyhow::Ok(o)
        }));
    }
    gather(tasks, started).await
}

/// Starts `n` servers on the store's database: on PostgreSQL each opens its own pool (as a
/// separate process would); on SQLite they share the one writer.
pub async fn start_servers(
    store: &Arc<dyn Store>,
    url: Option<&str>,
    n: usize,
) -> anyhow::Result<(Vec<String>, Vec<tokio::task::JoinHandle<std::io::Result<()>>>)> {
    let mut bases = Vec::new();
    let mut handles = Vec::new();
    for i in 0..n.max(1) {
        let instance: Arc<dyn Store> = match url {
            Some(url) if i > 0 => Arc::new(loopctl_store_postgres::PgStore::connect(url).await?),
            _ => store.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        bases.push(format!("http://{}", listener.local_addr()?));
        handles.push(tokio::spawn(loopctl_server::serve(instance, listener)));
    }
    Ok((bases, handles))
}

pub async fn run(args: LoopArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = args.database_url.as_deref();
    let store = open_store(url, dir.path()).await?;
    let backend = store.backend();
    let (workers, per) = (args.workers, args.stories);
    let raw_fx = fixture(store.clone(), workers, workers * per, "bench raw").await?;
    let mut raw = run_raw_store(store.clone(), &raw_fx).await?;
    let service_fx = fixture(store.clone(), workers, workers * per, "bench service").await?;
    let mut service = run_service(&service_fx).await?;
    let http_fx = fixture(store.clone(), workers, workers * per, "bench http").await?;
    let (bases, servers) = start_servers(&store, url, args.instances).await?;
    let mut http = run_http(&http_fx, &bases).await?;
    let mut constant = run_constant(&bases, workers, per * 5).await?;
    for server in servers {
        server.abort();
    }
    let rss = Rss::of_self()?;
    println!(
        "\nseed loop on {backend}, {workers} agents x {per} stories (5 transitions each), {} server instance(s):",
        bases.len()
    );
    let floor = raw.report("raw store compare-and-set (baseline)", "writes", None);
    let through_app = service.report("service layer", "transitions", Some(floor));
    let over_http = http.report("HTTP, through loopctl-client", "transitions", Some(floor));
    let ceiling = constant.report("constant HTTP handler", "calls", None);
    println!(
        "{:<34} {:>6.0} % of the service layer",
        "HTTP / service layer",
        over_http * 100.0 / through_app.max(1e-9)
    );
    println!(
        "{:<34} {:>6.0} % of the constant handler",
        "HTTP / constant handler",
        over_http * 100.0 / ceiling.max(1e-9)
    );
    println!("{:<34} {:>6.0} MB now, {:.0} MB peak (bench and servers in one process)", "RSS", rss.now_mb, rss.peak_mb);
    Ok(())
}
