//! The SSE change feed: backlog, live events, `Last-Event-ID` resume, and events committed by
//! another server on the same PostgreSQL database.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::support::*;

/// Reads an SSE stream until `needle` appears (or fails after `within`); answers the text read.
async fn read_until(response: &mut reqwest::Response, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut text = String::new();
    while !text.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no `{needle}` in the stream within {within:?}; read:\n{text}");
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => panic!("the stream ended; read:\n{text}"),
            Ok(Err(err)) => panic!("the stream failed: {err}"),
            Err(_) => panic!("no `{needle}` in the stream within {within:?}; read:\n{text}"),
        }
    }
    text
}

async fn open(server: &Server, key: &str, query: &str, last_event_id: Option<&str>) -> reqwest::Response {
    let mut request = server.http.get(format!("{}/api/v1/events{query}", server.base)).bearer_auth(key);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = request.timeout(Duration::from_secs(60)).send().await.expect("open the event stream");
    assert_eq!(response.status(), 200);
    response
}

fn last_id(text: &str) -> String {
    text.lines().filter_map(|l| l.strip_prefix("id:")).map(str::trim).next_back().expect("an event id").to_string()
}

async fn the_stream_replays_then_follows_and_resumes(server: Server) {
    let t = server.tenant("Stream").await;
    let project = create_project(&server, &t.orch, "Streamed").await;
    let mut stream = open(&server, &t.orch, &format!("?project_id={project}"), None).await;
    let backlog = read_until(&mut stream, "event: created", Duration::from_secs(5)).await;
    let seen = last_id(&backlog);

    let state = format!("/api/v1/orchestrator/state/{project}");
    server.put(&t.orch, &state, json!({"state_data": {"round": 1}})).await.ok(200);
    let live = read_until(&mut stream, "event: saved", Duration::from_secs(5)).await;
    assert!(live.contains("round"), "{live}");
    let after_save = last_id(&live);
    drop(stream);

    // Resuming after the last event seen replays nothing old, then follows.
    let mut resumed = open(&server, &t.orch, &format!("?project_id={project}"), Some(&after_save)).await;
    server.put(&t.orch, &state, json!({"state_data": {"round": 2}})).await.ok(200);
    let text = read_until(&mut resumed, "event: saved", Duration::from_secs(5)).await;
    assert!(!text.contains(&format!("id: {seen}\n")), "an event before Last-Event-ID was replayed:\n{text}");
    assert!(text.contains("round"), "{text}");

    // Another tenant sees none of it.
    let other = server.tenant("Elsewhere").await;
    let mut foreign = open(&server, &other.orch, "", None).await;
    server.put(&t.orch, &state, json!({"state_data": {"round": 3}})).await.ok(200);
    let quiet = tokio::time::timeout(Duration::from_millis(1500), foreign.chunk()).await;
    if let Ok(Ok(Some(chunk))) = quiet {
        let text = String::from_utf8_lossy(&chunk).to_string();
        assert!(!text.contains("saved"), "another tenant's event leaked: {text}");
    }
}

both!(the_stream_replays_then_follows_and_resumes => sse_stream_sqlite, sse_stream_postgres);

/// A second server on the first's PostgreSQL database (its own store, pool and listener).
async fn second_server(first: &Server) -> (tokio::task::JoinHandle<std::io::Result<()>>, std::net::SocketAddr) {
    let url = first.database_url().expect("a PostgreSQL server");
    let store = loopctl_store_postgres::PgStore::connect(url).await.expect("second store on the same database");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    (tokio::spawn(loopctl_server::serve(std::sync::Arc::new(store), listener)), addr)
}

/// The live feed of `project` on the server at `addr`, once it answers (up to 10 s).
async fn stream_of(addr: std::net::SocketAddr, key: &str, project: &str) -> reqwest::Response {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = client
            .get(format!("http://{addr}/api/v1/events?project_id={project}"))
            .bearer_auth(key)
            .timeout(Duration::from_secs(120))
            .send()
            .await;
        if let Ok(response) = answer
            && response.status() == 200
        {
            return response;
        }
        assert!(Instant::now() < deadline, "the second server did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two servers on one PostgreSQL database: a client of one sees what the other commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_events_cross_server_instances() {
    let first = Server::postgres().await;
    let (second, addr) = second_server(&first).await;
    let t = first.tenant("Two Servers").await;
    let project = create_project(&first, &t.orch, "Shared").await;
    let mut stream = stream_of(addr, &t.orch, &project).await;
    read_until(&mut stream, "event: created", Duration::from_secs(5)).await;
    first
        .put(&t.orch, &format!("/api/v1/orchestrator/state/{project}"), json!({"state_data": {"from": "first"}}))
        .await
        .ok(200);
    let sent = Instant::now();
    let text = read_until(&mut stream, "event: saved", Duration::from_secs(5)).await;
    assert!(text.contains("first"), "{text}");
    assert!(sent.elapsed() < Duration::from_secs(3), "the other server's event took {:?}", sent.elapsed());
    second.abort();
}

/// Follows `project`'s stream on the server at `addr` from `start` (as `Last-Event-ID`),
/// collecting every event's cursor; after `reconnect_after` events it drops the connection and
/// resumes with the last id it saw, as a client whose connection broke does. Stops once it has
/// seen `until` (set when the burst is over).
async fn follow_with_a_reconnect(
    addr: std::net::SocketAddr,
    key: String,
    project: String,
    start: i64,
    reconnect_after: usize,
    until: std::sync::Arc<std::sync::atomic::AtomicI64>,
) -> (Vec<i64>, usize) {
    let client = reqwest::Client::new();
    let mut seen: Vec<i64> = Vec::new();
    let mut connections = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    'connections: loop {
        let last = seen.last().copied().unwrap_or(start);
        let mut response = client
            .get(format!("http://{addr}/api/v1/events?project_id={project}"))
            .bearer_auth(&key)
            .header("Last-Event-ID", last.to_string())
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .expect("open the stream");
        assert_eq!(response.status(), 200);
        connections += 1;
        let mut partial = String::new();
        loop {
            let target = until.load(std::sync::atomic::Ordering::SeqCst);
            if target > 0 && seen.last().is_some_and(|c| *c >= target) {
                return (seen, connections);
            }
            assert!(Instant::now() < deadline, "the stream did not reach {target}; saw {} events", seen.len());
            let chunk = match tokio::time::timeout(Duration::from_secs(2), response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(other) => panic!("the stream stopped: {other:?}"),
                Err(_) => continue,
            };
            partial.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = partial.find('\n') {
                let line: String = partial.drain(..=end).collect();
                if let Some(id) = line.strip_prefix("id: ").and_then(|id| id.trim().parse::<i64>().ok()) {
                    seen.push(id);
                    if connections == 1 && seen.len() == reconnect_after {
                        continue 'connections;
                    }
                }
            }
        }
    }
}

/// Two servers on one PostgreSQL database, a stream on each; 1,008 transitions through both
/// servers while each stream is cut once and resumed: both streams see every event of the
/// burst once, in cursor order, with none missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_burst_of_transitions_reaches_both_servers_streams_exactly_once_across_a_reconnect() {
    let first = Server::postgres().await;
    let (second, addr_b) = second_server(&first).await;
    let addr_a: std::net::SocketAddr =
        first.base.trim_start_matches("http://").parse().expect("first server's address");
    let t = first.tenant("Burst").await;
    let doc = loopctl_test_support::fixtures::flat_doc(4);
    let seeded = loopctl_test_support::fixtures::seed_with(&first, &t.orch, "Burst", &doc).await;
    let project = seeded.project.clone();
    let ready = ready_numbers(&first, &t.orch, &project).await;
    assert_eq!(ready.len(), 4, "{ready:?}");
    first.patch(&t.user, "/api/v1/tenants/me", json!({"settings": {"max_concurrent_agents": 10}})).await.ok(200);
    let start =
        all_changes(&first, &t.orch, Some(&project)).await.last().and_then(|e| e["cursor"].as_i64()).unwrap_or(0);
    let until = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let on_a =
        tokio::spawn(follow_with_a_reconnect(addr_a, t.orch.clone(), project.clone(), start, 300, until.clone()));
    let on_b =
        tokio::spawn(follow_with_a_reconnect(addr_b, t.orch.clone(), project.clone(), start, 500, until.clone()));

    // Per ready story, one writer cycling contract → claim → unclaim, alternating servers.
    let stories: Vec<String> = ready.iter().take(4).map(|n| seeded.story(n).to_string()).collect();
    let cycles = 1008 / (3 * stories.len());
    let second_base = format!("http://{addr_b}");
    let mut writers = Vec::new();
    for (i, id) in stories.iter().enumerate() {
        let (id, key, bases) = (id.clone(), t.agent.clone(), [first.base.clone(), second_base.clone()]);
        let http = first.http.clone();
        writers.push(tokio::spawn(async move {
            let st: serde_json::Value = http
                .get(format!("{}/api/v1/stories/{id}", bases[0]))
                .bearer_auth(&key)
                .send()
                .await
                .expect("story")
                .json()
                .await
                .expect("story JSON");
            let terms = json!({"story_title": st["story"]["title"], "ac_count": st["story"]["ac_count"]});
            for cycle in 0..cycles {
                for (step, path) in ["contract", "claim", "unclaim"].iter().enumerate() {
                    let base = &bases[(i + cycle + step) % 2];
                    loop {
                        let mut request = http.post(format!("{base}/api/v1/stories/{id}/{path}")).bearer_auth(&key);
                        request = if *path == "contract" { request.json(&terms) } else { request };
                        let answer = request.send().await.expect("a transition");
                        // A busy database answers 503 with Retry-After, as the client retries.
                        if answer.status() == 503 {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        assert!(answer.status().is_success(), "{path}: {}", answer.text().await.unwrap_or_default());
                        break;
                    }
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("a writer");
    }
    let burst: Vec<i64> = all_changes(&first, &t.orch, Some(&project))
        .await
        .iter()
        .filter_map(|e| e["cursor"].as_i64())
        .filter(|c| *c > start)
        .collect();
    assert_eq!(burst.len(), cycles * 3 * stories.len(), "one event per transition");
    until.store(*burst.last().expect("events"), std::sync::atomic::Ordering::SeqCst);
    for (name, follower) in [("A", on_a), ("B", on_b)] {
        let (seen, connections) = follower.await.expect("a follower");
        assert_eq!(connections, 2, "stream {name} was cut and resumed once");
        assert_eq!(seen, burst, "stream {name}: every event once, in order, across the reconnect");
    }
    second.abort();
}
