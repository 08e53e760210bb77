//! Two `loopctl serve` processes on one PostgreSQL database, as behind a load balancer: a
//! transition made through one reaches a live stream on the other at once (PostgreSQL's
//! notification wakes it), not at its next one-second poll; and both send webhooks from the
//! one outbox without sending any delivery twice; a burst through both reaches a stream on
//! each exactly once across a broken connection.

use std::time::{Duration, Instant};

use loopctl_test_support::Sandbox;
use loopctl_test_support::postgres::TestDatabase;
use serde_json::{Value, json};

use loopctl_test_support::receiver::Receiver;

use crate::support::{admin_init, all_changes, flat_doc, seed_with, serve, serve_with, unleash};

/// Reads the stream until a frame with a cursor above `after` arrives; answers that cursor.
async fn next_cursor(response: &mut reqwest::Response, pending: &mut String, after: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let newest = pending
            .lines()
            .filter_map(|l| l.strip_prefix("id: ").and_then(|id| id.trim().parse::<i64>().ok()))
            .filter(|cursor| *cursor > after)
            .max();
        if let Some(cursor) = newest {
            pending.clear();
            return cursor;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no event after cursor {after} within 5 s");
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => pending.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the stream stopped: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_through_one_server_process_reaches_the_others_stream_within_100_ms_at_the_median() {
    // Dropped last: after both servers are killed.
    let db = TestDatabase::create().await;
    let sandbox = Sandbox::new("loopctl-torture-instances-");
    let t = admin_init(&sandbox, &db.url, "Across");
    let first = serve(&sandbox, &db.url);
    let second = serve(&sandbox, &db.url);
    let seeded = seed_with(&first.api, &t.orch, "Across", &flat_doc(1)).await;
    let id = seeded.story("1.1").to_owned();
    let mut stream = second
        .api
        .http
        .get(format!("{}/api/v1/events?project_id={}", second.api.base, seeded.project))
        .bearer_auth(&t.orch)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("open the second server's stream");
    assert_eq!(stream.status(), 200);
    let mut pending = String::new();
    // The backlog (the import) first.
    let mut cursor = next_cursor(&mut stream, &mut pending, 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let story: Value = first.api.get(&t.agent, &format!("/api/v1/stories/{id}")).await.ok(200).clone();
    let terms = json!({"story_title": story["story"]["title"], "ac_count": story["story"]["ac_count"]});
    let mut latencies = Vec::new();
    for round in 0..50 {
        let path = ["contract", "claim", "unclaim"][round % 3];
        let body = if path == "contract" { terms.clone() } else { Value::Null };
        let resp = first.api.post(&t.agent, &format!("/api/v1/stories/{id}/{path}"), body).await;
        assert!(resp.status < 300, "{path}: {:?}", resp.body);
        let done = Instant::now();
        cursor = next_cursor(&mut stream, &mut pending, cursor).await;
        latencies.push(done.elapsed());
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    println!("cross-process event latency over 50 transitions: median {median:?}, max {:?}", latencies[49]);
    assert!(median < Duration::from_millis(100), "median {median:?}: {latencies:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_send_each_webhook_delivery_once_in_order() {
    let db = TestDatabase::create().await;
    let sandbox = Sandbox::new("loopctl-torture-webhooks-");
    let t = admin_init(&sandbox, &db.url, "Hooks");
    let allow = ["--allow-private-webhooks"];
    let servers = [serve_with(&sandbox, &db.url, &allow), serve_with(&sandbox, &db.url, &allow)];
    let receiver = Receiver::start(0);
    let project = seed_with(&servers[0].api, &t.orch, "Hooks", &flat_doc(1)).await.project;
    let created = servers[0].api.post(&t.user, "/api/v1/webhooks", json!({"url": receiver.url})).await;
    created.ok(201);
    let start =
        all_changes(&servers[0].api, &t.user, None).await.last().and_then(|e| e["cursor"].as_i64()).unwrap_or(0);
    for round in 0..60 {
        let server = &servers[round % 2];
        let state = format!("/api/v1/orchestrator/state/{project}");
        server.api.put(&t.orch, &state, json!({"state_data": {"round": round}})).await.ok(200);
    }
    let wanted: Vec<i64> = all_changes(&servers[0].api, &t.user, None)
        .await
        .iter()
        .filter_map(|e| e["cursor"].as_i64())
        .filter(|c| *c > start)
        .collect();
    assert_eq!(wanted.len(), 60);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.delivered_cursors().len() < wanted.len() {
        assert!(Instant::now() < deadline, "delivered {} of {}", receiver.delivered_cursors().len(), wanted.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.delivered_cursors(), wanted, "each event once, in order, from two senders");
    assert_eq!(receiver.got.lock().unwrap().len(), wanted.len(), "no delivery was sent twice");
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

/// Two server processes on one PostgreSQL database, a stream on each; 1,008 transitions
/// through both while each stream is cut once and resumed: both streams see every event of the
/// burst once, in cursor order, with none missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_through_two_server_processes_reaches_a_stream_on_each_exactly_once_across_a_reconnect() {
    // Dropped last: after both servers are killed.
    let db = TestDatabase::create().await;
    let sandbox = Sandbox::new("loopctl-torture-burst-");
    let t = admin_init(&sandbox, &db.url, "Burst");
    let (first, second) = (serve(&sandbox, &db.url), serve(&sandbox, &db.url));
    let address = |served: &crate::support::Served| -> std::net::SocketAddr {
        served.api.base.trim_start_matches("http://").parse().expect("a server's address")
    };
    let (addr_a, addr_b) = (address(&first), address(&second));
    let seeded = seed_with(&first.api, &t.orch, "Burst", &flat_doc(4)).await;
    let project = seeded.project.clone();
    let ready = ["1.1", "1.2", "1.3", "1.4"];
    unleash(&first.api, &t.user).await;
    let start =
        all_changes(&first.api, &t.orch, Some(&project)).await.last().and_then(|e| e["cursor"].as_i64()).unwrap_or(0);
    let until = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let on_a =
        tokio::spawn(follow_with_a_reconnect(addr_a, t.orch.clone(), project.clone(), start, 300, until.clone()));
    let on_b =
        tokio::spawn(follow_with_a_reconnect(addr_b, t.orch.clone(), project.clone(), start, 500, until.clone()));

    // Per ready story, one writer cycling contract → claim → unclaim, alternating servers.
    let stories: Vec<String> = ready.iter().map(|n| seeded.story(n).to_string()).collect();
    let cycles = 1008 / (3 * stories.len());
    let second_base = second.api.base.clone();
    let mut writers = Vec::new();
    for (i, id) in stories.iter().enumerate() {
        let (id, key, bases) = (id.clone(), t.agent.clone(), [first.api.base.clone(), second_base.clone()]);
        let http = first.api.http.clone();
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
    let burst: Vec<i64> = all_changes(&first.api, &t.orch, Some(&project))
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
}
