//! The dashboard over HTTP, as a browser and an attacker send it: signed out every page
//! sends you to the sign-in form; the session cookie is `HttpOnly`, `SameSite=Strict` and
//! (over TLS) `Secure`, and holds no key; a form without the session's CSRF token, or from
//! another origin, changes nothing; a revoked key ends its session; an agent's session and
//! the implementer's own identity are refused a verdict exactly as the API refuses them.

use std::time::Instant;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::support::*;

/// A browser without a cookie jar: every cookie is the test's to send.
fn browser() -> reqwest::Client {
    loopctl_test_support::http::install_crypto();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

fn form(fields: &[(&str, &str)]) -> String {
    let enc = loopctl_client::encode_component;
    fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
}

/// The value a `name=value; …` cookie line sets.
fn cookie_value(lines: &[String], name: &str) -> Option<String> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or("").to_string())
}

fn csrf_in(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field in the page") + r#"name="csrf" value=""#.len();
    html[at..].split('"').next().unwrap_or_default().to_string()
}

/// A signed-in browser: the session cookie and the session's CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(server: &Server, key: &str) -> Session {
    let http = browser();
    let form_page = http.get(format!("{}/login", server.base)).send().await.expect("GET /login");
    let login_cookie = cookie_value(&set_cookies(&form_page), "loopctl_login").expect("a login cookie");
    let csrf = csrf_in(&form_page.text().await.expect("body"));
    let signed = http
        .post(format!("{}/login", server.base))
        .header(COOKIE, format!("loopctl_login={login_cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("api_key", key), ("csrf", &csrf)]))
        .send()
        .await
        .expect("POST /login");
    assert_eq!(signed.status(), 303, "signed in");
    let session = cookie_value(&set_cookies(&signed), "loopctl_session").expect("a session cookie");
    let home = page(server, &format!("loopctl_session={session}"), "/").await;
    assert_eq!(home.0, 200);
    Session { cookie: format!("loopctl_session={session}"), csrf: csrf_in(&home.1) }
}

/// GET a page with a cookie: the status and the body.
async fn page(server: &Server, cookie: &str, path: &str) -> (u16, String, Option<String>) {
    let response = browser().get(format!("{}{path}", server.base)).header(COOKIE, cookie).send().await.expect("GET");
    let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    (response.status().as_u16(), response.text().await.expect("body"), location)
}

async fn post_form(
    server: &Server,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
    origin: Option<&str>,
) -> (u16, String) {
    let mut request = browser()
        .post(format!("{}{path}", server.base))
        .header(COOKIE, cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.expect("POST");
    (response.status().as_u16(), response.text().await.expect("body"))
}

const PAGES: [&str; 7] = [
    "/",
    "/projects/example",
    "/projects/example/graph",
    "/projects/example/stories/1.1",
    "/activity",
    "/agents",
    "/needs-you",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_every_page_and_its_live_feed_send_you_to_the_sign_in_form() {
    let server = Server::sqlite().await;
    for path in PAGES.iter().chain(&["/dashboard/events"]) {
        for cookie in ["", "loopctl_session=forged", "loopctl_session="] {
            let (status, _, location) = page(&server, cookie, path).await;
            assert_eq!((status, location.as_deref()), (303, Some("/login")), "{path} with `{cookie}`");
        }
    }
    // A verdict posted without a session changes nothing and asks for a sign-in.
    let (status, _) = post_form(&server, "", "/projects/example/stories/1.1/verify", &[("csrf", "x")], None).await;
    assert_eq!(status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_http_only_strict_secure_over_tls_and_holds_no_key() {
    let server = Server::sqlite().await;
    let t = server.tenant("Cookies").await;
    let http = browser();
    for (tls, expect_secure) in [(false, false), (true, true)] {
        let mut get = http.get(format!("{}/login", server.base));
        if tls {
            get = get.header("x-forwarded-proto", "https");
        }
        let form_page = get.send().await.expect("GET /login");
        let login = set_cookies(&form_page);
        assert!(login[0].contains("HttpOnly") && login[0].contains("SameSite=Strict"), "{login:?}");
        let csrf = csrf_in(&form_page.text().await.expect("body"));
        let mut post = http
            .post(format!("{}/login", server.base))
            .header(COOKIE, format!("loopctl_login={}", cookie_value(&login, "loopctl_login").expect("login cookie")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("api_key", &t.orch), ("csrf", &csrf)]));
        if tls {
            post = post.header("x-forwarded-proto", "https");
        }
        let signed = post.send().await.expect("POST /login");
        let location = signed.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let cookies = set_cookies(&signed);
        let session = cookies.iter().find(|c| c.starts_with("loopctl_session=")).expect("session cookie");
        assert!(session.contains("; HttpOnly") && session.contains("; SameSite=Strict"), "{session}");
        assert_eq!(session.contains("; Secure"), expect_secure, "{session}");
        // The key is in no cookie and in no URL.
        assert!(cookies.iter().all(|c| !c.contains(&t.orch)), "{cookies:?}");
        assert!(!location.contains(&t.orch) && location == "/", "{location}");
    }
    // Signed-in pages carry a policy that keeps scripts, styles and requests on this origin.
    let session = sign_in(&server, &t.orch).await;
    let response = http.get(format!("{}/", server.base)).header(COOKIE, &session.cookie).send().await.expect("GET /");
    let csp = response.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("connect-src 'self'")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // Signing out ends the session on the server, whatever the browser keeps.
    let (status, _) = post_form(&server, &session.cookie, "/logout", &[("csrf", &session.csrf)], None).await;
    assert_eq!(status, 303);
    assert_eq!(page(&server, &session.cookie, "/").await.0, 303, "the old cookie opens nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_of_a_verdicts_url_goes_back_to_its_story_and_leads_nowhere_else() {
    let server = Server::sqlite().await;
    let t = server.tenant("Reload").await;
    let session = sign_in(&server, &t.orch).await;
    let (status, _, location) = page(&server, &session.cookie, "/projects/web/stories/1.1/verify").await;
    assert_eq!((status, location.as_deref()), (303, Some("/projects/web/stories/1.1")));
    // Header injection and off-site redirects through the path are encoded away.
    let (status, _, location) =
        page(&server, &session.cookie, "/projects/%0d%0aSet-Cookie:%20x=1/stories/%2F%2Fevil.example/verify").await;
    assert_eq!(status, 303);
    let location = location.unwrap_or_default();
    assert!(
        location.starts_with("/projects/%0D%0ASet-Cookie") && location.contains("%2F%2Fevil.example"),
        "{location}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_without_its_csrf_cookie_or_with_a_bad_key_opens_no_session() {
    let server = Server::sqlite().await;
    let t = server.tenant("Login").await;
    // Login CSRF: a page on another site posting its own key into our form gets nothing.
    let (status, body) = post_form(&server, "", "/login", &[("api_key", &t.orch), ("csrf", "guess")], None).await;
    assert_eq!(status, 403, "{body}");
    let http = browser();
    let form_page = http.get(format!("{}/login", server.base)).send().await.expect("GET /login");
    let login = cookie_value(&set_cookies(&form_page), "loopctl_login").expect("login cookie");
    let csrf = csrf_in(&form_page.text().await.expect("body"));
    let cookie = format!("loopctl_login={login}");
    let (status, body) =
        post_form(&server, &cookie, "/login", &[("api_key", "lc_not_a_key"), ("csrf", &csrf)], None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unauthorized"), "the page says why: {body}");
    assert!(!body.contains("lc_not_a_key"), "the key typed is not echoed");
    let (status, _) =
        post_form(&server, &cookie, "/login", &[("api_key", &t.orch), ("csrf", &csrf)], Some("https://evil.example"))
            .await;
    assert_eq!(status, 403, "a login posted from another origin");
}

both!(a_verdict_form_without_the_sessions_token_or_from_another_origin_changes_nothing
    => forged_forms_sqlite, forged_forms_postgres);
both!(the_orchestrator_that_implemented_a_story_is_refused_its_verdict_on_the_page
    => own_work_on_the_page_sqlite, own_work_on_the_page_postgres);

async fn a_verdict_form_without_the_sessions_token_or_from_another_origin_changes_nothing(server: Server) {
    let t = server.tenant("Forms").await;
    let seeded = seed(&server, &t, "Forms").await;
    let id = seeded.story("1.1");
    to_reported(&server, &t.agent, id).await;
    let session = sign_in(&server, &t.orch).await;
    let slug =
        s(&server.get(&t.orch, &format!("/api/v1/projects/{}", seeded.project)).await.ok(200)["project"]["slug"]);
    let verify = format!("/projects/{slug}/stories/1.1/verify");
    for (fields, origin) in [
        (vec![("summary", "ok")], None),
        (vec![("summary", "ok"), ("csrf", "not-the-token")], None),
        (vec![("summary", "ok"), ("csrf", &session.csrf[..10])], None),
        (vec![("summary", "ok"), ("csrf", session.csrf.as_str())], Some("https://evil.example")),
    ] {
        let (status, body) = post_form(&server, &session.cookie, &verify, &fields, origin).await;
        assert_eq!(status, 403, "{fields:?} {origin:?}: {body}");
        assert!(body.contains("CSRF"), "{body}");
    }
    assert_eq!(story(&server, &t.orch, id).await["verified_status"], "unverified", "nothing was verified");
    // With the token, from this origin, it is the API's verify.
    let origin = server.base.clone();
    let (status, _) =
        post_form(&server, &session.cookie, &verify, &[("summary", "ok"), ("csrf", &session.csrf)], Some(&origin))
            .await;
    assert_eq!(status, 303);
    assert_eq!(story(&server, &t.orch, id).await["verified_status"], "verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_ends_its_dashboard_session_at_once() {
    let server = Server::sqlite().await;
    let t = server.tenant("Revoked").await;
    let (key, key_id, _) = new_key(&server, &t.user, "orchestrator", "night-shift").await;
    let session = sign_in(&server, &key).await;
    assert_eq!(page(&server, &session.cookie, "/activity").await.0, 200);
    server.delete(&t.user, &format!("/api/v1/api_keys/{key_id}")).await.success();
    tokio::time::sleep(loopctl_app::KEY_CACHE_TTL).await;
    let (status, _, location) = page(&server, &session.cookie, "/activity").await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_session_reads_the_pages_but_a_forged_verdict_is_refused_as_the_api_refuses_it() {
    let server = Server::sqlite().await;
    let t = server.tenant("Agent pages").await;
    let seeded = seed(&server, &t, "Agent pages").await;
    let id = seeded.story("1.1");
    to_reported(&server, &t.agent, id).await;
    let slug =
        s(&server.get(&t.orch, &format!("/api/v1/projects/{}", seeded.project)).await.ok(200)["project"]["slug"]);
    let session = sign_in(&server, &t.agent).await;
    let (status, body, _) = page(&server, &session.cookie, &format!("/projects/{slug}/stories/1.1")).await;
    assert_eq!(status, 200);
    assert!(body.contains("Read-only") && !body.contains("/verify\""), "no verdict form for an agent: {body}");
    for action in ["verify", "reject", "force-unclaim", "clear-escalation"] {
        let path = format!("/projects/{slug}/stories/1.1/{action}");
        let (status, body) = post_form(
            &server,
            &session.cookie,
            &path,
            &[("csrf", &session.csrf), ("summary", "mine"), ("reason", "mine")],
            None,
        )
        .await;
        assert_eq!(status, 403, "{action}: {body}");
        assert!(body.contains("forbidden"), "{action}: the API's code: {body}");
    }
    let after = story(&server, &t.orch, id).await;
    assert_eq!(
        (after["agent_status"].as_str(), after["verified_status"].as_str()),
        (Some("reported_done"), Some("unverified"))
    );
    // The pages an agent may not read say so with the API's code.
    let (status, body, _) = page(&server, &session.cookie, "/agents").await;
    assert_eq!(status, 403, "{body}");
}

async fn the_orchestrator_that_implemented_a_story_is_refused_its_verdict_on_the_page(server: Server) {
    let t = server.tenant("Own work").await;
    let seeded = seed(&server, &t, "Own work").await;
    let id = seeded.story("1.1");
    let orch_id = agent_id(&server, &t.orch).await;
    let body = json!({"role": "implementer", "story_id": id, "agent_id": orch_id});
    let own = s(&server.post(&t.orch, "/api/v1/dispatches", body).await.ok(201)["data"]["api_key"]["raw_key"]);
    to_reported(&server, &own, id).await;
    let slug =
        s(&server.get(&t.orch, &format!("/api/v1/projects/{}", seeded.project)).await.ok(200)["project"]["slug"]);
    let session = sign_in(&server, &t.orch).await;
    let path = format!("/projects/{slug}/stories/1.1/verify");
    let (status, body) =
        post_form(&server, &session.cookie, &path, &[("csrf", &session.csrf), ("summary", "mine")], None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("self_verify_blocked") && body.contains("Refused"), "{body}");
    assert_eq!(story(&server, &t.orch, id).await["verified_status"], "unverified");
    // And the refusal is on the needs-you page, for a person to see.
    let user = sign_in(&server, &t.user).await;
    let (_, needs, _) = page(&server, &user.cookie, "/needs-you").await;
    assert!(needs.contains("self_verify_blocked"), "{needs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_of_a_thousand_stories_is_served_in_milliseconds() {
    let server = Server::sqlite().await;
    let t = server.tenant("Big board").await;
    let seeded = seed_with(&server, &t.orch, "Big board", &flat_doc(1000)).await;
    let slug =
        s(&server.get(&t.orch, &format!("/api/v1/projects/{}", seeded.project)).await.ok(200)["project"]["slug"]);
    let session = sign_in(&server, &t.orch).await;
    let http = browser();
    let mut timings: Vec<(String, u128, u128)> = Vec::new();
    for path in [format!("/projects/{slug}"), format!("/projects/{slug}/graph?epic=1"), "/".to_string()] {
        let started = Instant::now();
        let response =
            http.get(format!("{}{path}", server.base)).header(COOKIE, &session.cookie).send().await.expect("GET");
        let first_byte = started.elapsed().as_millis();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.text().await.expect("body");
        timings.push((path.clone(), first_byte, started.elapsed().as_millis()));
        if path.ends_with(&slug) {
            assert_eq!(body.matches("class=\"card\"").count(), 1000, "every card on the board");
        }
    }
    // Measured, not asserted (a debug build on a shared machine): the figures for docs/performance.md.
    for (path, first, whole) in &timings {
        println!("dashboard {path}: first byte {first} ms, whole page {whole} ms (1,000 stories, debug build)");
    }
}
