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
