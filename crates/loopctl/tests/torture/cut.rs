//! The database goes away under a running server: a TCP proxy owned by the test sits
//! between `loopctl serve` and PostgreSQL, and is cut (every connection dropped, new ones
//! refused) and restored while agents work.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loopctl_test_support::postgres::TestDatabase;
use reqwest::Method;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::support::*;

const WRITERS: usize = 4;
/// More than the writers get through before the restore (480 stories: one page of 500 lists them).
const STORIES_EACH: usize = 120;
/// The longest any answer may take, cut or not (the store's pool waits 5 s for a connection).
const ANSWER_WITHIN: Duration = Duration::from_secs(8);
/// How soon after the restore requests succeed again.
const RECOVER_WITHIN: Duration = Duration::from_secs(5);
/// How long the database stays unreachable.
const CUT_FOR: Duration = Duration::from_secs(7);

/// A TCP proxy to `upstream` on a port of its own that can be cut and restored.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = listen("127.0.0.1:0".parse().expect("an address")).await;
        let addr = listener.local_addr().expect("the proxy's address");
        let proxy = Proxy { addr, upstream, accept: Mutex::new(None), links: Arc::default() };
        proxy.accept_on(listener);
        proxy
    }

    fn accept_on(&self, listener: tokio::net::TcpListener) {
        let (links, upstream) = (self.links.clone(), self.upstream);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                links.lock().expect("links").push(link);
            }
        });
        *self.accept.lock().expect("accept") = Some(task);
    }

    /// Closes the port (new connections are refused) and drops every open connection.
    async fn cut(&self) {
        let accept = self.accept.lock().expect("accept").take();
        if let Some(task) = accept {
            task.abort();
            let _ = task.await;
        }
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    /// Listens on the same port again.
    async fn restore(&self) {
        let listener = listen(self.addr).await;
        self.accept_on(listener);
    }
}

async fn listen(addr: SocketAddr) -> tokio::net::TcpListener {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).unwrap_or_else(|err| panic!("bind {addr}: {err}"));
    socket.listen(128).expect("listen")
}

/// `host:port` of a `postgres://` URL, and the URL with it replaced by `with`.
fn split_host(url: &str, with: &str) -> (String, String) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let host_start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    let mut host = url[host_start..end].to_string();
    if !host.contains(':') {
        host.push_str(":5432");
    }
    (host, format!("{}{with}{}", &url[..host_start], &url[end..]))
}

/// One answer a writer got, and when.
struct Seen {
    at: Instant,
    took: Duration,
    what: String,
    status: Option<u16>,
    problem: Option<String>,
}

/// Records an answer; hands it back when it is a success.
fn record(call: &Try, what: String, seen: &mut Vec<Seen>) -> Option<Resp> {
    let (status, problem) = match &call.answer {
        Ok(resp) => {
            let problem = match resp.status {
                200..=299 => None,
                503 if resp.code() == Some("unavailable") => resp.shape_problem(),
                _ => Some(format!("{} {}", resp.status, resp.body)),
            };
            (Some(resp.status), problem)
        }
        Err(err) => (None, Some(err.clone())),
    };
    seen.push(Seen { at: Instant::now(), took: call.took, what, status, problem });
    call.answer.as_ref().ok().filter(|r| (200..300).contains(&r.status)).cloned()
}

/// An agent taking its stories through the lifecycle until told to stop; after a failed
/// call it reads the story back (until it can) and goes on from where the story is.
async fn writer(
    api: Api,
    key: String,
    stories: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
) -> (Vec<(String, usize)>, Vec<Seen>) {
    let (mut acked, mut seen) = (Vec::new(), Vec::new());
    let (mut index, mut step) = (0, 0);
    while index < stories.len() && !stop.load(Ordering::SeqCst) {
        let (number, story) = &stories[index];
        let path = format!("/api/v1/stories/{story}/{}", STEPS[step].0);
        let call = try_call(&api, Method::POST, &key, &path, &step_body(step, number)).await;
        if record(&call, format!("POST {path}"), &mut seen).is_some() {
            acked.push((story.clone(), step));
            step += 1;
        } else {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let path = format!("/api/v1/stories/{story}");
                let call = try_call(&api, Method::GET, &key, &path, &serde_json::Value::Null).await;
                if let Some(resp) = record(&call, format!("GET {path}"), &mut seen) {
                    step = reached(&resp.body["story"]["agent_status"]).map_or(0, |n| n + 1);
                    break;
                }
                if stop.load(Ordering::SeqCst) {
                    return (acked, seen);
                }
            }
        }
        if step == STEPS.len() {
            (index, step) = (index + 1, 0);
        }
    }
    (acked, seen)
}

/// Agents work through a proxy to PostgreSQL; the proxy is cut for 7 s and restored. While
/// it is cut every answer is `503 unavailable` in the error shape (never another 5xx, never
/// later than 8 s); within 5 s of the restore requests succeed again; and every transition
/// acknowledged before, during or after the cut is in the database and in the feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_postgresql_connection_fails_with_503_and_recovers() {
    let started = Instant::now();
    let db = TestDatabase::create().await;
    let (upstream, _) = split_host(&db.url, "");
    let upstream = tokio::net::lookup_host(&upstream).await.expect("resolve PostgreSQL").next().expect("an address");
    let proxy = Proxy::start(upstream).await;
    let (_, via_proxy) = split_host(&db.url, &proxy.addr.to_string());
    let sandbox = Sandbox::new("loopctl-torture-cut-");
    let t = admin_init(&sandbox, &db.url, "Cut");
    let served = serve(&sandbox, &via_proxy);
    let api = served.api.clone();
    unleash(&api, &t.user).await;
    let ids = seed_with(&api, &t.orch, "Cut wire", &flat_doc(WRITERS * STORIES_EACH)).await;
    let keys = agents(&api, &t.user, WRITERS, "cut").await;
    let stories: Vec<(String, String)> = ids.stories.clone().into_iter().collect();

    let stop = Arc::new(AtomicBool::new(false));
    let mut set = JoinSet::new();
    for (i, (raw, _)) in keys.into_iter().enumerate() {
        let mine: Vec<(String, String)> = stories.iter().skip(i).step_by(WRITERS).cloned().collect();
        set.spawn(writer(api.clone(), raw, mine, stop.clone()));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;

    proxy.cut().await;
    let cut_at = Instant::now();
    // A reader beside the writers: reads fail alike.
    let mut reads = Vec::new();
    while cut_at.elapsed() < CUT_FOR {
        let path = format!("/api/v1/changes?project_id={}", ids.project);
        reads.push(try_call(&api, Method::GET, &t.orch, &path, &serde_json::Value::Null).await);
    }
    proxy.restore().await;
    let restored_at = Instant::now();
    tokio::time::sleep(RECOVER_WITHIN + Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let writers = set.join_all().await;

    let seen: Vec<&Seen> = writers.iter().flat_map(|(_, seen)| seen).collect();
    let problems: Vec<String> = seen
        .iter()
        .filter_map(|s| s.problem.as_ref().map(|p| format!("{}: {p}", s.what)))
        .chain(reads.iter().filter_map(|r| match &r.answer {
            Ok(resp) if resp.status == 503 && resp.code() == Some("unavailable") => resp.shape_problem(),
            Ok(resp) => Some(format!("a read during the cut: {} {}", resp.status, resp.body)),
            Err(err) => Some(err.clone()),
        }))
        .collect();
    assert!(problems.is_empty(), "every answer is a success or 503 unavailable in the error shape: {problems:#?}");
    let slow: Vec<String> = seen
        .iter()
        .map(|s| (s.what.clone(), s.took))
        .chain(reads.iter().map(|r| ("a read during the cut".to_string(), r.took)))
        .filter(|(_, took)| *took > ANSWER_WITHIN)
        .map(|(what, took)| format!("{what}: {took:?}"))
        .collect();
    assert!(slow.is_empty(), "every answer within {ANSWER_WITHIN:?}: {slow:#?}");
    let unavailable = seen.iter().filter(|s| s.status == Some(503)).count();
    assert!(unavailable > 0 && !reads.is_empty(), "the cut was felt: {unavailable} writes answered 503");
    let before = seen.iter().filter(|s| s.at < cut_at && s.status.is_some_and(|c| c < 300)).count();
    assert!(before > 0, "writes succeeded before the cut");
    let recovered = seen
        .iter()
        .filter(|s| s.at > restored_at && s.status.is_some_and(|c| c < 300))
        .map(|s| s.at - restored_at)
        .min()
        .expect("a write succeeded after the restore");
    assert!(recovered <= RECOVER_WITHIN, "the first success after the restore took {recovered:?}");

    // Nothing acknowledged is lost: each story is at least as far as its last acknowledged
    // step, and each acknowledged step has its event.
    let direct = serve(&sandbox, &db.url);
    let resp = direct.api.get(&t.orch, &format!("/api/v1/stories?project_id={}&limit=500", ids.project)).await;
    let listed = resp.ok(200)["data"].as_array().expect("data is an array").clone();
    let now: BTreeMap<String, Option<usize>> =
        listed.iter().map(|st| (s(&st["id"]), reached(&st["agent_status"]))).collect();
    let feed = all_changes(&direct.api, &t.orch, Some(&ids.project)).await;
    let events: BTreeSet<(String, String)> = feed
        .iter()
        .filter(|e| e["action"] == "status_changed")
        .map(|e| (s(&e["entity_id"]), s(&e["new_state"]["transition"])))
        .collect();
    let acked: Vec<&(String, usize)> = writers.iter().flat_map(|(acked, _)| acked).collect();
    for (story, step) in &acked {
        assert!(now[story] >= Some(*step), "story {story} lost acknowledged step {}", STEPS[*step].0);
        assert!(events.contains(&(story.clone(), STEPS[*step].0.to_string())), "no event for {story} {step}");
    }
    eprintln!(
        "cut for {CUT_FOR:?}: {} answers, {unavailable} writes and {} reads answered 503, recovered {recovered:?} \
         after the restore; {} transitions acknowledged, all kept; in {:?}",
        seen.len(),
        reads.len(),
        acked.len(),
        started.elapsed()
    );
}
