//! `loopctl-bench poll` and `storm`: the reads an orchestrator makes all day while agents
//! work, and many agents racing for a few stories.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loopctl_api::{ChangesParams, ClaimNextRequest, FrontierParams};
use loopctl_client::{Client, Method};

use crate::seed_loop::{fixture, open_store, start_servers};
use crate::stats::Outcome;

#[derive(clap::Args, Debug)]
pub struct PollArgs {
    /// Stories in the project.
    #[arg(long, default_value_t = 10_000)]
    pub stories: usize,
    /// Concurrent pollers.
    #[arg(long, default_value_t = 8)]
    pub pollers: usize,
    /// Agents claiming meanwhile (`claim-next`, one after another).
    #[arg(long, default_value_t = 4)]
    pub agents: usize,
    /// How long to poll.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
}

#[derive(clap::Args, Debug)]
pub struct StormArgs {
    /// Agents racing.
    #[arg(long, default_value_t = 64)]
    pub agents: usize,
    /// Stories in the project (all ready): the agents race for these with `claim-next`.
    #[arg(long, default_value_t = 4)]
    pub stories: usize,
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
}

/// Calls `call` until `until` from `n` tasks, timing each answer.
async fn hammer<F, Fut>(n: usize, until: Instant, call: F) -> anyhow::Result<Outcome>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut o = Outcome::default();
            while Instant::now() < until {
                let at = Instant::now();
                match call(i).await {
                    Ok(()) => o.latencies.push(at.elapsed()),
                    Err(_) => o.errors += 1,
                }
            }
            o
        }));
    }
    let mut all = Outcome::default();
    for task in tasks {
        let part = task.await?;
        all.latencies.extend(part.latencies);
        all.errors += part.errors;
    }
    all.wall = started.elapsed();
    Ok(all)
}

pub async fn poll(args: PollArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = args.database_url.as_deref();
    let store = open_store(url, dir.path()).await?;
    let fx = fixture(store.clone(), args.agents.max(1), args.stories, "bench poll").await?;
    let (bases, servers) = start_servers(&store, url, args.instances).await?;
    let orch = |i: usize| Client::new(&bases[i % bases.len()], Some(fx.orchestrator.clone()));
    let project = fx.project_id;
    println!(
        "\npolling on {}, {} stories, {} pollers per call, {} agents claiming, {:?} each:",
        store.backend(),
        args.stories,
        args.pollers,
        args.agents,
        args.duration
    );
    let constant: Vec<Client> =
        (0..args.pollers).map(|i| Client::new(&bases[i % bases.len()], None)).collect::<Result<_, _>>()?;
    let constant = Arc::new(constant);
    let mut ceiling = hammer(args.pollers, Instant::now() + args.duration, move |i| {
        let c = constant.clone();
        async move { Ok(c[i].request(Method::GET, "/api/v1", None, &[], &[]).await.map(drop)?) }
    })
    .await?;
    let baseline = ceiling.report("constant HTTP handler (baseline)", "calls", None);
    // Agents claim the whole time the reads run, so the reads see a moving frontier.
    let stop = Arc::new(AtomicUsize::new(0));
    let mut claimers = Vec::new();
    for (i, key) in fx.agents.iter().enumerate() {
        let (client, stop) = (Client::new(&bases[i % bases.len()], Some(key.clone()))?, stop.clone());
        claimers.push(tokio::spawn(async move {
            while stop.load(Ordering::Relaxed) == 0 {
                if client.claim_next(&ClaimNextRequest { project_id: project, epic_id: None }).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }));
    }
    let readers: Vec<Client> = (0..args.pollers).map(orch).collect::<Result<_, _>>()?;
    let readers = Arc::new(readers);
    let r = readers.clone();
    let mut ready = hammer(args.pollers, Instant::now() + args.duration, move |i| {
        let r = r.clone();
        async move {
            let params =
                FrontierParams { project_id: Some(project.to_string()), limit: Some(20), ..FrontierParams::default() };
            Ok(r[i].ready_stories(&params).await.map(drop)?)
        }
    })
    .await?;
    ready.report("GET /stories/ready?limit=20", "calls", Some(baseline));
    let r = readers.clone();
    let mut progress = hammer(args.pollers, Instant::now() + args.duration, move |i| {
        let r = r.clone();
        async move { Ok(r[i].project_progress(project).await.map(drop)?) }
    })
    .await?;
    progress.report("GET /projects/:id/progress", "calls", Some(baseline));
    let r = readers.clone();
    let mut changes = hammer(args.pollers, Instant::now() + args.duration, move |i| {
        let r = r.clone();
        async move {
            let params = ChangesParams {
                project_id: Some(project),
                since: Some("0".into()),
                limit: Some(100),
                ..ChangesParams::default()
            };
            Ok(r[i].changes(&params).await.map(drop)?)
        }
    })
    .await?;
    changes.report("GET /changes?since=0&limit=100", "calls", Some(baseline));
    stop.store(1, Ordering::Relaxed);
    for claimer in claimers {
        claimer.await?;
    }
    for server in servers {
        server.abort();
    }
    Ok(())
}

pub async fn storm(args: StormArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = args.database_url.as_deref();
    let store = open_store(url, dir.path()).await?;
    let fx = fixture(store.clone(), args.agents, args.stories, "bench storm").await?;
    let (bases, servers) = start_servers(&store, url, args.instances).await?;
    let project = fx.project_id;
    let racers: Vec<Client> = fx
        .agents
        .iter()
        .enumerate()
        .map(|(i, key)| Client::new(&bases[i % bases.len()], Some(key.clone())))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in racers {
        tasks.push(tokio::spawn(async move {
            let at = Instant::now();
            let won = client.claim_next(&ClaimNextRequest { project_id: project, epic_id: None }).await;
            (at.elapsed(), won.ok().map(|o| o.story.id))
        }));
    }
    let mut outcome = Outcome::default();
    let mut winners = Vec::new();
    for task in tasks {
        let (took, won) = task.await?;
        outcome.latencies.push(took);
        match won {
            Some(id) => winners.push(id),
            None => outcome.errors += 1,
        }
    }
    outcome.wall = started.elapsed();
    let claimed = winners.len();
    winners.sort();
    winners.dedup();
    println!(
        "\nclaim storm on {}: {} agents, {} ready stories, {} server instance(s):",
        store.backend(),
        args.agents,
        args.stories,
        bases.len()
    );
    outcome.report("claim-next", "claims", None);
    println!(
        "{:<34} {claimed} claims won for {} distinct stories ({}); the others were told nothing is ready",
        "winners",
        winners.len(),
        if claimed == winners.len() { "no story won twice" } else { "A STORY WAS WON TWICE" }
    );
    for server in servers {
        server.abort();
    }
    Ok(())
}
