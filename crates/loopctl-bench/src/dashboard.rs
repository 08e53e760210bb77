//! `loopctl-bench dashboard`: the dashboard's pages of a project of N stories, as a browser
//! asks for them (signed in with a session cookie) from a real `loopctl serve`, each page's
//! first byte and whole answer against `GET /health` measured in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::lab::Lab;
use crate::scale::breakdown;
use crate::stats::median;

#[derive(clap::Args, Debug)]
pub struct DashboardArgs {
    /// Stories in the project (epics of 100, a tenth of them waiting on another).
    #[arg(long, default_value_t = 1000)]
    pub stories: usize,
    /// Requests per page; the median is reported.
    #[arg(long, default_value_t = 30)]
    pub rounds: usize,
}

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?)
}

/// The value the answer's `Set-Cookie` gives cookie `name`.
fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(prefix.as_str()))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
}

/// Signs in through the form (login cookie, CSRF field, key) and answers the session cookie.
async fn sign_in(url: &str, key: &str) -> anyhow::Result<String> {
    let http = http()?;
    let form = http.get(format!("{url}/login")).send().await?;
    let login = cookie(&form, "loopctl_login").context("no login cookie")?;
    let page = form.text().await?;
    let marker = r#"name="csrf" value=""#;
    let csrf = page.split(marker).nth(1).and_then(|rest| rest.split('"').next()).context("no CSRF field")?.to_string();
    let signed = http
        .post(format!("{url}/login"))
        .header(reqwest::header::COOKIE, format!("loopctl_login={login}"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("api_key={key}&csrf={csrf}"))
        .send()
        .await?;
    let session = cookie(&signed, "loopctl_session").context("sign-in gave no session")?;
    Ok(format!("loopctl_session={session}"))
}

/// The median first byte and whole answer of `rounds` GETs of `path`.
async fn time_page(url: &str, cookie: &str, path: &str, rounds: usize) -> anyhow::Result<(Duration, Duration, usize)> {
    let http = http()?;
    let (mut first, mut whole, mut size) = (Vec::new(), Vec::new(), 0);
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let response = http.get(format!("{url}{path}")).header(reqwest::header::COOKIE, cookie).send().await?;
        first.push(started.elapsed());
        if !response.status().is_success() {
            bail!("GET {path}: {}", response.status());
        }
        size = response.bytes().await?.len();
        whole.push(started.elapsed());
    }
    Ok((median(&mut first), median(&mut whole), size))
}

pub async fn run(bin: &Path, args: DashboardArgs) -> anyhow::Result<()> {
    let lab = Lab::start(bin)?;
    let name = format!("Dashboard {}", args.stories);
    lab.run_ok(&lab.orchestrator, "orch", "", &["project", "create", &name, "--slug", "dash"])?;
    let file = lab.dir.path().join("breakdown.json");
    std::fs::write(&file, serde_json::to_vec(&breakdown(args.stories))?)?;
    lab.run_ok(&lab.orchestrator, "orch", "dash", &["import", &file.to_string_lossy()])?;
    // Some of the project in flight and done, so the board has cards in every column.
    for _ in 0..5 {
        lab.run_ok(&lab.agent, "agent", "dash", &["next", "--claim"])?;
    }
    let cookie = sign_in(&lab.url, &lab.orchestrator).await?;
    let (health_first, health_whole, _) = time_page(&lab.url, "", "/health", args.rounds).await?;
    println!(
        "\nDashboard pages of a {}-story project (median of {} GETs, signed in; baseline GET /health of the same run):\n",
        args.stories, args.rounds
    );
    println!("| page | first byte | whole page | size | × /health (whole) |");
    println!("|---|---|---|---|---|");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| `/health` (baseline) | {:.1} ms | {:.1} ms | | 1.0 |", ms(health_first), ms(health_whole));
    for path in [
        "/",
        "/projects/dash",
        "/projects/dash/graph",
        "/projects/dash/stories/1.1",
        "/activity",
        "/agents",
        "/needs-you",
    ] {
        let (first, whole, size) = time_page(&lab.url, &cookie, path, args.rounds).await?;
        println!(
            "| `{path}` | {:.1} ms | {:.1} ms | {} KB | {:.0} |",
            ms(first),
            ms(whole),
            size / 1024,
            whole.as_secs_f64() / health_whole.as_secs_f64().max(1e-9)
        );
    }
    let rss = lab.rss()?;
    println!("\nserver RSS after the run: {:.0} MB (peak {:.0} MB)", rss.now_mb, rss.peak_mb);
    Ok(())
}
