//! The dashboard in a real browser: Debian's headless chromium driven through chromedriver
//! (WebDriver, fantoccini). Sign in with the form; watch a card move on the board when an
//! agent claims the story over the API, with no reload; open the graph and the story with
//! its evidence; verify from the page as the orchestrator; see the verdict refused for the
//! orchestrator's own work and for an agent's session. No console errors, no request off
//! the origin. Screenshots of every page are kept in `target/tmp/dashboard/`.
//!
//! Needs `chromium` and `chromedriver` (`.ci/run` installs them); without them it fails.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::*;

/// chromedriver on a free loopback port, killed with the test.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is not installed: apt-get install chromium chromium-driver (.ci/run does)");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http.get(format!("{}/status", driver.url)).send().await;
        if let Ok(response) = ready
            && let Ok(status) = response.json::<Value>().await
            && status["value"]["ready"] == true
        {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(driver: &Driver) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1500,1000",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update"]
        },
        "goog:loggingPrefs": {"browser": "ALL"}
    });
    let Value::Object(caps) = caps else { unreachable!("an object literal") };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("start a chromium session (is /usr/bin/chromium installed?)")
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(shots().join(format!("{name}.png")), png).expect("write screenshot");
}

/// The browser console since the last read (chromedriver's log endpoint).
async fn console(driver: &Driver, client: &Client) -> Vec<Value> {
    let session = client.session_id().await.expect("session id").expect("a session");
    let url = format!("{}/session/{session}/se/log", driver.url);
    let logs: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .expect("logs")
        .json()
        .await
        .expect("json");
    logs["value"].as_array().cloned().unwrap_or_default()
}

/// Polls a script until it answers `true` (up to 10 s).
async fn until(client: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if client.execute(script, vec![]).await.expect("execute") == Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(client: &Client, base: &str, key: &str) {
    client.goto(&format!("{base}/")).await.expect("open /");
    assert!(client.current_url().await.expect("url").path().ends_with("/login"), "signed out, / sends you to /login");
    client.find(Locator::Id("api_key")).await.expect("key field").send_keys(key).await.expect("type the key");
    client.find(Locator::Css("form[action='/login'] button")).await.expect("button").click().await.expect("sign in");
    until(client, "the projects page", "return document.title.startsWith('Projects');").await;
    let url = client.current_url().await.expect("url");
    assert!(!url.as_str().contains(key) && url.query().is_none(), "no key in the URL: {url}");
}

async fn sign_out(client: &Client) {
    client.find(Locator::Css("form[action='/logout'] button")).await.expect("sign out").click().await.expect("click");
    until(client, "the sign-in page", "return document.title.startsWith('Sign in');").await;
}

async fn text(client: &Client, css: &str) -> String {
    client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("{css} on the page")).text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_watches_the_board_move_reads_the_evidence_and_verifies_from_the_page() {
    let server = Server::sqlite().await;
    let t = server.tenant("Browser").await;
    let seeded = seed(&server, &t, "Web shop").await;
    let slug =
        s(&server.get(&t.orch, &format!("/api/v1/projects/{}", seeded.project)).await.ok(200)["project"]["slug"]);
    let base = server.base.clone();
    let driver = driver().await;
    let client = browser(&driver).await;

    sign_in(&client, &base, &t.orch).await;
    screenshot(&client, "projects").await;
    assert!(text(&client, "main").await.contains("Web shop"));

    // The board, then a claim over the API: the card moves, the page is not reloaded.
    client.goto(&format!("{base}/projects/{slug}")).await.expect("board");
    until(&client, "the live stream", "return document.body.getAttribute('data-live-open') === '1';").await;
    client.execute("window.notReloaded = true;", vec![]).await.expect("mark the page");
    assert_eq!(
        client
            .execute("return document.querySelector('[data-story=\"1.1\"]').dataset.column;", vec![])
            .await
            .expect("js"),
        json!("pending")
    );
    let id = seeded.story("1.1");
    claim(&server, &t.agent, id).await;
    until(
        &client,
        "card 1.1 in the assigned column",
        "return document.querySelector('#column-assigned [data-story=\"1.1\"]') !== null;",
    )
    .await;
    assert_eq!(
        client.execute("return window.notReloaded === true;", vec![]).await.expect("js"),
        json!(true),
        "moved without a reload"
    );
    server.post(&t.agent, &format!("/api/v1/stories/{id}/start"), Value::Null).await.ok(200);
    let report = json!({"artifact": {"artifact_type": "commit_diff", "details": {"commit_sha": "0123456789abcdef0123456789abcdef01234567", "files": ["lib/signup.ex"]}},
        "acceptance_evidence": [{"ac_id": "AC-1.1.1", "test": "test/signup_test.exs:12"}, {"ac_id": "AC-1.1.2", "file": "lib/signup.ex"}]});
    server.post(&t.agent, &format!("/api/v1/stories/{id}/report"), report).await.ok(200);
    until(
        &client,
        "card 1.1 reported",
        "return document.querySelector('#column-reported_done [data-story=\"1.1\"]') !== null;",
    )
    .await;
    screenshot(&client, "board").await;
    // From the keyboard: the first Tab reaches the skip link, and every card is a link.
    client.find(Locator::Css("body")).await.expect("body").send_keys("\u{E004}").await.expect("Tab");
    let focused = client.execute("return document.activeElement.className;", vec![]).await.expect("js");
    assert_eq!(focused, json!("skip"), "the first Tab lands on the skip link");
    let unreachable = client
        .execute(
            "return [...document.querySelectorAll('.card')].filter(c => !c.querySelector('a[href]')).length;",
            vec![],
        )
        .await
        .expect("js");
    assert_eq!(unreachable, json!(0), "every card is reachable by keyboard");

    // The graph: 1.2 waits for 1.1, and says so.
    client.goto(&format!("{base}/projects/{slug}/graph")).await.expect("graph");
    let blocked = client
        .execute("return document.querySelector('g[data-story=\"1.2\"] title').textContent;", vec![])
        .await
        .expect("js");
    assert!(blocked.as_str().is_some_and(|t| t.contains("waits for 1.1")), "{blocked}");
    screenshot(&client, "graph").await;

    // The story with its evidence, and the verdict from the page.
    client.goto(&format!("{base}/projects/{slug}/stories/1.1")).await.expect("story");
    let criteria = text(&client, "[data-criterion='AC-1.1.1']").await;
    assert!(criteria.contains("test/signup_test.exs:12"), "{criteria}");
    assert!(text(&client, "main").await.contains("0123456789ab"), "the reported commit");
    client
        .find(Locator::Id("verify-summary"))
        .await
        .expect("summary")
        .send_keys("read the diff; tests pass")
        .await
        .expect("type");
    client.find(Locator::Css("form[action$='/verify'] button")).await.expect("verify").click().await.expect("click");
    until(&client, "the verdict", "return document.querySelector('.done') !== null;").await;
    assert_eq!(story(&server, &t.orch, id).await["verified_status"], "verified");
    screenshot(&client, "story").await;

    // The orchestrator's own work: dispatched to itself, reported, then refused its verdict.
    let own_story = seeded.story("1.2");
    let orch_id = agent_id(&server, &t.orch).await;
    let body = json!({"role": "implementer", "story_id": own_story, "agent_id": orch_id});
    let own = s(&server.post(&t.orch, "/api/v1/dispatches", body).await.ok(201)["data"]["api_key"]["raw_key"]);
    to_reported(&server, &own, own_story).await;
    client.goto(&format!("{base}/projects/{slug}/stories/1.2")).await.expect("own story");
    client
        .find(Locator::Id("verify-summary"))
        .await
        .expect("summary")
        .send_keys("mine, looks fine")
        .await
        .expect("type");
    client.find(Locator::Css("form[action$='/verify'] button")).await.expect("verify").click().await.expect("click");
    until(&client, "the refusal", "return document.querySelector('.alert') !== null;").await;
    assert!(text(&client, ".alert").await.contains("self_verify_blocked"));
    screenshot(&client, "refused").await;
    assert_eq!(story(&server, &t.orch, own_story).await["verified_status"], "unverified");

    // Two hundred stories (every tenth waiting on the one before it) stay readable: the
    // layers wrap into columns instead of one column thousands of pixels tall.
    let stories: Vec<Value> = (1..=200)
        .map(|i| json!({"number": format!("1.{i}"), "title": format!("Story {i}"), "acceptance_criteria": [{"id": format!("AC-{i}"), "description": "works"}]}))
        .collect();
    let waits: Vec<Value> = (1..=20)
        .map(|i| json!({"story": format!("1.{}", i * 10), "depends_on": format!("1.{}", i * 10 - 1)}))
        .collect();
    let big = seed_with(
        &server,
        &t.orch,
        "Two hundred",
        &json!({"epics": [{"number": 1, "title": "Big", "stories": stories}], "story_dependencies": waits}),
    )
    .await;
    let big_slug =
        s(&server.get(&t.orch, &format!("/api/v1/projects/{}", big.project)).await.ok(200)["project"]["slug"]);
    client.goto(&format!("{base}/projects/{big_slug}/graph")).await.expect("big graph");
    let shape = client
        .execute("const g = document.querySelector('svg.graph'); return [g.querySelectorAll('g.node').length, g.height.baseVal.value];", vec![])
        .await
        .expect("js");
    assert_eq!(shape[0], json!(200), "every story drawn");
    assert!(shape[1].as_f64().is_some_and(|h| h < 1300.0), "at most twenty rows tall: {shape}");
    screenshot(&client, "graph-200").await;

    for page in ["agents", "activity", "needs-you"] {
        client.goto(&format!("{base}/{page}")).await.expect("page");
        screenshot(&client, page).await;
    }
    assert!(text(&client, "main").await.contains("self_verify_blocked"), "the refusal needs a person");

    // Every request of every page stayed on this origin; the console is clean.
    let off_origin = client
        .execute("return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin));", vec![])
        .await
        .expect("js");
    assert_eq!(off_origin, json!([]), "requests that left the origin");
    let errors: Vec<Value> = console(&driver, &client).await.into_iter().filter(|l| l["level"] == "SEVERE").collect();
    // The refused verdict is answered with its status (409), which the console reports as a
    // failed resource load; nothing else may appear.
    let unexpected: Vec<&Value> =
        errors.iter().filter(|l| !l["message"].as_str().unwrap_or("").contains("409")).collect();
    assert!(unexpected.is_empty(), "console errors: {unexpected:?}");

    // An agent's session: read-only, and a verdict forged with its own token is refused.
    sign_out(&client).await;
    sign_in(&client, &base, &t.agent).await;
    client.goto(&format!("{base}/projects/{slug}/stories/2.1")).await.expect("story as agent");
    screenshot(&client, "agent-story").await;
    assert!(text(&client, ".actions").await.contains("Read-only"));
    assert!(client.find(Locator::Css("form[action$='/verify']")).await.is_err(), "no verdict form for an agent");
    let forged = client
        .execute_async(
            r#"const done = arguments[0];
               const csrf = document.querySelector("input[name=csrf]").value;
               fetch(location.pathname + "/verify", {method: "POST", headers: {"content-type": "application/x-www-form-urlencoded"},
                     body: "csrf=" + encodeURIComponent(csrf) + "&summary=mine"})
                 .then(r => r.text().then(t => done([r.status, t.includes("forbidden")])));"#,
            vec![],
        )
        .await
        .expect("forged verdict");
    assert_eq!(forged, json!([403, true]), "an agent's verdict is refused as the API refuses it");
    assert_eq!(story(&server, &t.orch, seeded.story("2.1")).await["verified_status"], "unverified");
    client.close().await.expect("close the browser");
}
