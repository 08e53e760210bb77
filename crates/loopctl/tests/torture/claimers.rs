//! A hundred agents, each with its own key, ask for the next story until nothing is ready:
//! on SQLite, on PostgreSQL, and split across two `loopctl serve` processes on one
//! PostgreSQL database. No story may be won twice, none may be left over, none may 5xx.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loopctl_test_support::Server;
use loopctl_test_support::postgres::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::support::*;

/// One storm at a time: three at once on two cores would measure the machine, not loopctl.
static STORM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const AGENTS: usize = 100;
const STORIES: usize = 200;

/// One hundred claimers on one server over a SQLite file: 200 distinct stories won.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_claimers_never_share_a_story_on_sqlite() {
    let _storm = STORM.lock().await;
    let server = Server::sqlite().await;
    let t = server.tenant("Claimers").await;
    hammer(&[(*server).clone()], &t).await;
}

/// One hundred claimers on one server over a PostgreSQL database: 200 distinct stories won.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_claimers_never_share_a_story_on_postgresql() {
    let _storm = STORM.lock().await;
    let server = Server::postgres().await;
    let t = server.tenant("Claimers").await;
    hammer(&[(*server).clone()], &t).await;
}

/// Two real `loopctl serve` processes on ONE PostgreSQL database, fifty claimers on each:
/// the compare-and-set holds across processes, and both servers read the same outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_claimers_never_share_a_story_across_two_servers_on_one_postgresql() {
    let _storm = STORM.lock().await;
    // Dropped last: after both servers are killed.
    let db = TestDatabase::create().await;
    let sandbox = Sandbox::new("loopctl-torture-claim-");
    let t = admin_init(&sandbox, &db.url, "Claimers");
    let first = serve(&sandbox, &db.url);
    let second = serve(&sandbox, &db.url);
    hammer(&[first.api.clone(), second.api.clone()], &t).await;
}

/// What one claimer saw: the stories it won, and every answer that was neither a win nor
/// `404 nothing_ready`.
struct Claimer {
    agent: String,
    won: Vec<String>,
    odd: Vec<String>,
    slowest: Duration,
}

/// Seeds 200 independent stories, then lets 100 agents (round-robin over `servers`) call
/// `claim-next` until each is told nothing is ready, and checks the outcome three ways.
async fn hammer(servers: &[Api], t: &Tenant) {
    let started = Instant::now();
    let api = &servers[0];
    unleash(api, &t.user).await;
    let ids = seed_with(api, &t.orch, "Claim storm", &flat_doc(STORIES)).await;
    let claimers = agents(api, &t.user, AGENTS, "claimer").await;
    let project = ids.project.clone();

    let barrier = Arc::new(Barrier::new(AGENTS));
    let mut set = JoinSet::new();
    for (i, (raw, agent)) in claimers.into_iter().enumerate() {
        let (api, barrier, body) =
            (servers[i % servers.len()].clone(), barrier.clone(), json!({"project_id": project}));
        set.spawn(async move {
            let mut me = Claimer { agent, won: Vec::new(), odd: Vec::new(), slowest: Duration::ZERO };
            barrier.wait().await;
            loop {
                let call = try_call(&api, Method::POST, &raw, "/api/v1/stories/claim-next", &body).await;
                me.slowest = me.slowest.max(call.took);
                let resp = match call.answer {
                    Ok(resp) => resp,
                    Err(err) => {
                        me.odd.push(err);
                        break;
                    }
                };
                match (resp.status, resp.code()) {
                    (200, _) => me.won.push(s(&resp.body["story"]["id"])),
                    (404, Some("nothing_ready")) => break,
                    _ => {
                        me.odd.push(format!("{} {}", resp.status, resp.body));
                        // A refusal is reported below; a server error ends this claimer.
                        if resp.status >= 500 || me.odd.len() > 5 {
                            break;
                        }
                    }
                }
            }
            me
        });
    }
    let claimers = set.join_all().await;
    let raced = started.elapsed();
    let slowest = claimers.iter().map(|c| c.slowest).max().unwrap_or_default();

    let odd: Vec<String> =
        claimers.iter().flat_map(|c| c.odd.iter().map(move |o| format!("agent {}: {o}", c.agent))).collect();
    assert!(odd.is_empty(), "every answer is a win or 404 nothing_ready (no 5xx, no other refusal): {odd:#?}");

    // By the winners' answers: each story won once, every story won.
    let mut winner: BTreeMap<String, String> = BTreeMap::new();
    for c in &claimers {
        for story in &c.won {
            if let Some(other) = winner.insert(story.clone(), c.agent.clone()) {
                panic!("story {story} was won by {other} and by {}", c.agent);
            }
        }
    }
    let all: BTreeSet<String> = ids.stories.values().cloned().collect();
    assert_eq!(winner.keys().cloned().collect::<BTreeSet<_>>(), all, "every story is won exactly once");

    // By reading every story back, on every server: one assignee each, the winner.
    for api in servers {
        let resp = api.get(&t.orch, &format!("/api/v1/stories?project_id={project}&limit=500")).await;
        let stories = resp.ok(200)["data"].as_array().expect("data is an array").clone();
        assert_eq!(stories.len(), STORIES, "{} lists every story", api.base);
        for st in &stories {
            let id = s(&st["id"]);
            assert_eq!(st["agent_status"], "assigned", "{st}");
            assert_eq!(st["assigned_agent_id"], json!(winner[&id]), "the assignee is the one that won {id}");
            assert_eq!(st["claim_epoch"], 1, "claimed once: {st}");
        }
    }

    // By the change feed: one claim event per story, by its winner.
    let feed = all_changes(api, &t.orch, Some(&project)).await;
    let claims: Vec<&Value> = feed.iter().filter(|e| e["new_state"]["transition"] == "claim").collect();
    let mut claimed = BTreeSet::new();
    for event in &claims {
        let story = s(&event["entity_id"]);
        assert_eq!(event["actor_agent_id"], json!(winner[&story]), "the claim event names the winner: {event}");
        assert!(claimed.insert(story.clone()), "two claim events name story {story}");
    }
    assert_eq!(claimed, all, "a claim event for every story, and only those");
    eprintln!(
        "{AGENTS} claimers over {} server(s): {STORIES} stories claimed in {raced:?}, slowest answer {slowest:?} \
         ({:?} in all)",
        servers.len(),
        started.elapsed()
    );
}
