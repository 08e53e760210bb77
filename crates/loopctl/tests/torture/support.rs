//! What the torture tests share: the `loopctl` binary as a server child process on any
//! database URL, tenants made with `loopctl admin init`, limits raised out of the way, calls
//! that report a dead server instead of panicking, and the lifecycle steps in order.

use std::process::Command;
use std::time::{Duration, Instant};

use loopctl_test_support::fixtures::set_settings;
pub use loopctl_test_support::fixtures::{all_changes, flat_doc, new_key, seed_with};
pub use loopctl_test_support::{Api, Proc, Resp, Sandbox, Tenant, s, url_after};
use serde_json::{Value, json};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_loopctl");

/// The implementer's steps of the lifecycle, in order, and the `agent_status` each leaves.
pub const STEPS: [(&str, &str); 4] =
    [("contract", "contracted"), ("claim", "assigned"), ("start", "implementing"), ("report", "reported_done")];

/// How far along `STEPS` a story's `agent_status` is: `None` before the first step.
#[track_caller]
pub fn reached(agent_status: &Value) -> Option<usize> {
    match agent_status.as_str() {
        Some("pending") => None,
        Some(status) => Some(
            STEPS.iter().position(|(_, after)| *after == status).unwrap_or_else(|| panic!("unknown status {status}")),
        ),
        None => panic!("agent_status is not a string: {agent_status}"),
    }
}

/// The request body of a step on story `number` of a `flat_doc` (a contract names the
/// story's title and criteria count, a report carries a commit).
pub fn step_body(step: usize, number: &str) -> Value {
    match STEPS[step].0 {
        "contract" => {
            let i = number.strip_prefix("1.").unwrap_or_else(|| panic!("{number} is not a flat_doc story"));
            json!({"story_title": format!("Story {i}"), "ac_count": 1})
        }
        "report" => json!({"artifact": {"artifact_type": "commit_diff", "details": {"commit_sha": "0123abcd"}}}),
        _ => Value::Null,
    }
}

/// `loopctl serve --listen 127.0.0.1:0 --database-url DB` in `sandbox`, and a client of it.
pub struct Served {
    pub proc: Proc,
    pub api: Api,
}

/// Starts the binary's server on `db` (a SQLite path or a `postgres://` URL) and waits for
/// its `listening on` line. Servers started in one sandbox share its signing keys.
pub fn serve(sandbox: &Sandbox, db: &str) -> Served {
    serve_with(sandbox, db, &[])
}

/// [`serve`] with more `serve` flags.
pub fn serve_with(sandbox: &Sandbox, db: &str, flags: &[&str]) -> Served {
    let mut cmd = sandbox.command(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url", db]).args(flags).env("LOOPCTL_LOG", "warn");
    let mut proc = Proc::spawn(cmd, "loopctl serve");
    let line = proc.wait_for("`listening on` line", |l| l.contains(" listening on http://"));
    let url = url_after(&line, "listening on ").expect("a URL in the listening line");
    Served { proc, api: Api::new(url) }
}

/// `loopctl admin init --tenant NAME --database-url DB --format json`: the tenant's keys.
pub fn admin_init(sandbox: &Sandbox, db: &str, tenant: &str) -> Tenant {
    let mut cmd: Command = sandbox.command(BIN);
    cmd.args(["admin", "init", "--tenant", tenant, "--database-url", db, "--format", "json"]);
    let out = cmd.output().expect("loopctl admin init runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "admin init failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    Tenant::from_json(&serde_json::from_str(stdout.trim()).expect("admin init prints JSON"))
}

/// Raises the in-flight limit and the rate limits so that only what a test races for decides.
pub async fn unleash(api: &Api, user: &str) {
    let settings = json!({"max_concurrent_agents": 1000, "rate_limit_requests_per_minute": 10_000_000});
    let after = set_settings(api, user, settings).await;
    assert_eq!(after["max_concurrent_agents"], 1000, "{after}");
}

/// `n` agent keys made at once, each its own identity: `(raw key, agent id)`.
pub async fn agents(api: &Api, user: &str, n: usize, prefix: &str) -> Vec<(String, String)> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (api, user, name) = (api.clone(), user.to_string(), format!("{prefix}-{i}"));
        set.spawn(async move {
            let (raw, _, agent) = new_key(&api, &user, "agent", &name).await;
            (i, raw, s(&agent))
        });
    }
    let mut out = set.join_all().await;
    out.sort();
    let distinct: std::collections::BTreeSet<&String> = out.iter().map(|(_, _, agent)| agent).collect();
    assert_eq!(distinct.len(), n, "every agent key is its own identity");
    out.into_iter().map(|(_, raw, agent)| (raw, agent)).collect()
}

/// An answer, or the transport error of a server that is gone; how long it took.
pub struct Try {
    pub answer: Result<Resp, String>,
    pub took: Duration,
}

/// How long [`try_call`] waits for an answer: longer than `Api`'s 30 s, because under the
/// claim storm on PostgreSQL one `claim-next` has been seen to take 33 s (see the report of
/// `a_hundred_claimers_never_share_a_story_*`); a call that takes longer fails its test.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(50);

/// One call that does not panic when the server does not answer.
pub async fn try_call(api: &Api, method: reqwest::Method, key: &str, path: &str, body: &Value) -> Try {
    let started = Instant::now();
    let mut request =
        api.http.request(method.clone(), format!("{}{path}", api.base)).bearer_auth(key).timeout(CALL_TIMEOUT);
    if !body.is_null() {
        request = request.json(body);
    }
    let answer = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(text) => Ok(Resp {
                    status,
                    body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                    desc: format!("{method} {path}"),
                }),
                Err(err) => Err(format!("{method} {path}: the body was cut: {err}")),
            }
        }
        Err(err) => Err(format!("{method} {path}: no answer after {:?}: {}", started.elapsed(), chain(&err))),
    };
    Try { answer, took: started.elapsed() }
}

/// An error and its sources, on one line.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

/// A PRNG seed for this run, printed so a failure can be told apart from another; taken
/// from `TORTURE_SEED` when set.
pub fn seed(what: &str) -> u64 {
    let seed = std::env::var("TORTURE_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
        (nanos as u64) ^ u64::from(std::process::id())
    });
    eprintln!("{what}: TORTURE_SEED={seed}");
    seed
}
