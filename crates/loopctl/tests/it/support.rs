//! The harness: a private sandbox per test (`loopctl_test_support::Sandbox`: HOME, XDG dirs,
//! data and state dirs), the real `loopctl` binary started as a server child process on
//! 127.0.0.1:0, keys bootstrapped on its database, and helpers that run CLI commands as a
//! given identity and check what they print and how they exit.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use loopctl_test_support::Sandbox;
pub use loopctl_test_support::{Proc, Tenant, url_after};
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_loopctl");

/// How long any one CLI command may take before the test fails (never a hang).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A work breakdown: epic 1 (1.1 with two criteria, 1.2 after 1.1, 1.3), epic 2 (2.1) after epic 1.
pub const BREAKDOWN: &str = r#"{
  "epics": [
    {"number": 1, "title": "Accounts", "phase": "p0", "stories": [
      {"number": "1.1", "title": "Sign-up endpoint", "acceptance_criteria": [
        {"id": "AC-1.1.1", "description": "POST /signup creates a user and returns 201"},
        {"id": "AC-1.1.2", "description": "A duplicate email returns 422"}]},
      {"number": "1.2", "title": "Login endpoint", "acceptance_criteria": [
        {"id": "AC-1.2.1", "description": "Valid credentials return a token"}]},
      {"number": "1.3", "title": "Password reset", "acceptance_criteria": [
        {"id": "AC-1.3.1", "description": "A reset mail is sent"}]}
    ]},
    {"number": 2, "title": "Billing", "phase": "p1", "stories": [
      {"number": "2.1", "title": "Invoice list", "acceptance_criteria": [
        {"id": "AC-2.1.1", "description": "GET /invoices is paginated"}]}
    ]}
  ],
  "story_dependencies": [{"story": "1.2", "depends_on": "1.1"}],
  "epic_dependencies": [{"epic": 2, "depends_on": 1}]
}"#;

/// A private world for one test: every directory the CLI or the server could read or write
/// (the sandbox's), and commands of the binary under test that run in it.
pub struct Env {
    sandbox: Sandbox,
}

impl Deref for Env {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

impl Env {
    pub fn new() -> Env {
        Env { sandbox: Sandbox::new("loopctl-it-") }
    }

    /// Where commands run unless a test says otherwise (no `.loopctl.toml` above it).
    pub fn work(&self) -> PathBuf {
        self.path("work")
    }

    pub fn db(&self) -> PathBuf {
        self.data_dir().join("loopctl.db")
    }

    /// The CLI's config file under the private XDG_CONFIG_HOME.
    pub fn config_file(&self) -> PathBuf {
        self.path("config").join("loopctl").join("config.toml")
    }

    /// Applies the private environment to a command: nothing from the outer environment
    /// that loopctl reads survives; it runs in `work`.
    pub fn apply_std(&self, cmd: &mut StdCommand) {
        self.apply(cmd);
        cmd.current_dir(self.work());
    }

    /// `loopctl` with the private environment and no server, key or project configured.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut std_cmd = StdCommand::new(BIN);
        self.apply_std(&mut std_cmd);
        let mut cmd = assert_cmd::Command::from_std(std_cmd);
        cmd.timeout(COMMAND_TIMEOUT);
        cmd
    }

    /// Runs `loopctl ARGS` with nothing but the private environment (profiles, .loopctl.toml).
    pub fn run(&self, args: &[&str]) -> Out {
        Out::of(self.cmd().args(args), args)
    }

    /// A std command for long-running children (servers).
    pub fn std_cmd(&self) -> StdCommand {
        let mut cmd = StdCommand::new(BIN);
        self.apply_std(&mut cmd);
        cmd
    }
}

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Out {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn of(cmd: &mut assert_cmd::Command, args: &[&str]) -> Out {
        let what = format!("loopctl {}", args.join(" "));
        let output = cmd.output().unwrap_or_else(|err| panic!("`{what}` did not finish: {err}"));
        Out {
            what,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "`{}` exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }

    /// Exit 0, else the test fails with everything the command printed.
    #[track_caller]
    pub fn ok(&self) -> &Out {
        assert_eq!(self.code, Some(0), "expected success: {}", self.describe());
        self
    }

    /// Exits with `code`.
    #[track_caller]
    pub fn exit(&self, code: i32) -> &Out {
        assert_eq!(self.code, Some(code), "expected exit {code}: {}", self.describe());
        self
    }

    /// Exits with `code` and says so in exactly one `error: …` line on stderr (human mode).
    #[track_caller]
    pub fn fails(&self, code: i32) -> &Out {
        self.exit(code);
        let stderr = self.stderr.trim_end();
        assert_eq!(stderr.lines().count(), 1, "an error is one line on stderr: {}", self.describe());
        assert!(stderr.starts_with("error: "), "an error line starts with `error: `: {}", self.describe());
        assert!(!self.stderr.contains('\x1b'), "no ANSI escapes in a piped error: {}", self.describe());
        assert!(!self.stderr.contains("panicked"), "no panic: {}", self.describe());
        self
    }

    /// Exits with `code` and prints `{"error":{"code":CODE,…}}` on stderr (`--format json`).
    #[track_caller]
    pub fn fails_json(&self, code: i32, error_code: &str) -> Value {
        self.exit(code);
        let body: Value = serde_json::from_str(self.stderr.trim())
            .unwrap_or_else(|err| panic!("stderr is not one JSON document ({err}): {}", self.describe()));
        assert_eq!(body["error"]["code"], error_code, "error code: {}", self.describe());
        assert!(body["error"]["message"].is_string(), "an error has a message: {}", self.describe());
        assert!(self.stdout.trim().is_empty(), "nothing on stdout when a command fails: {}", self.describe());
        body
    }

    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        self.ok();
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not one JSON document ({err}): {}", self.describe()))
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Out {
        assert!(self.stdout.contains(needle), "stdout should contain {needle:?}: {}", self.describe());
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Out {
        assert!(self.stderr.contains(needle), "stderr should contain {needle:?}: {}", self.describe());
        self
    }
}

/// `loopctl serve --listen 127.0.0.1:0 --database-url DB`, with the URL it listens on.
pub struct Server {
    pub proc: Proc,
    pub url: String,
}

impl Server {
    pub fn start(env: &Env, db: &Path) -> Server {
        Server::start_with(env, db, &[])
    }

    /// [`Server::start`] with more `serve` flags.
    pub fn start_with(env: &Env, db: &Path, flags: &[&str]) -> Server {
        Server::start_at(env, db, "127.0.0.1:0", flags)
    }

    /// [`Server::start_with`] on the address `listen` (a restart where the last one listened).
    pub fn start_at(env: &Env, db: &Path, listen: &str, flags: &[&str]) -> Server {
        let mut cmd = env.std_cmd();
        cmd.args(["serve", "--listen", listen, "--database-url"]).arg(db).args(flags);
        let mut proc = Proc::spawn(cmd, "loopctl serve");
        let line = proc.wait_for("`listening on` line", |l| l.contains(" listening on http://"));
        let url = url_after(&line, "listening on ").expect("URL in the listening line");
        assert!(line.starts_with(&format!("loopctl {} listening on", env!("CARGO_PKG_VERSION"))), "{line}");
        Server { proc, url }
    }
}

/// `loopctl admin init --tenant NAME --database-url DB --format json`.
pub fn admin_init(env: &Env, db: &Path, tenant: &str) -> Out {
    let db = db.to_string_lossy().into_owned();
    env.run(&["admin", "init", "--tenant", tenant, "--database-url", &db, "--format", "json"])
}

/// Runs `loopctl up` in `env` until it is up; returns the process and every line it printed
/// up to its "Stop with Ctrl-C." line.
pub fn start_up(env: &Env) -> (Proc, String, Vec<String>) {
    start_up_in(env, &env.data_dir())
}

/// `start_up` with its data in `data_dir` (another quickstart for the same user).
pub fn start_up_in(env: &Env, data_dir: &Path) -> (Proc, String, Vec<String>) {
    start_up_with(env, data_dir, &[])
}

/// `start_up_in` with more arguments to `up`.
pub fn start_up_with(env: &Env, data_dir: &Path, args: &[&str]) -> (Proc, String, Vec<String>) {
    let mut cmd = env.std_cmd();
    cmd.env("LOOPCTL_DATA_DIR", data_dir).args(["up", "--listen", "127.0.0.1:0"]).args(args);
    let mut proc = Proc::spawn(cmd, "loopctl up");
    let up_line = proc.wait_for("`is up on` line", |l| l.contains(" is up on http://"));
    let url = url_after(&up_line, "is up on ").unwrap_or_else(|| panic!("no parseable URL in {up_line:?}"));
    proc.wait_for("the end of the quickstart text", |l| l.contains("Ctrl-C"));
    let lines = proc.log().lines().map(str::to_string).collect();
    (proc, url, lines)
}

/// Someone running commands: a key, and the directory the CLI remembers claim epochs in
/// (each agent process has its own, as separate agents on separate machines would).
#[derive(Debug, Clone)]
pub struct Actor {
    pub key: String,
    pub state_dir: PathBuf,
}

/// A running server with a bootstrapped tenant.
pub struct Lab {
    // Declared first so it is dropped (killed) before its directory is removed.
    pub server: Server,
    pub env: Env,
    pub keys: Tenant,
}

impl Lab {
    /// A server on a fresh SQLite file with one tenant. Keys come from `admin init --format
    /// json`; should that fail (a bug the `admin_init_*` tests report), from a first run of
    /// `loopctl up` on the same file, with its example project archived, so the other tests
    /// still see a tenant with no projects.
    pub fn start() -> Lab {
        let env = Env::new();
        let db = env.db();
        Lab::start_on(env, &db)
    }

    /// [`Lab::start`] on the database `db` names (a SQLite file, or a `postgres://` URL).
    pub fn start_on(env: Env, db: &Path) -> Lab {
        std::fs::create_dir_all(env.data_dir()).expect("data dir");
        let init = admin_init(&env, db, "acme");
        let (keys, via_up) = match serde_json::from_str::<Value>(init.stdout.trim()) {
            Ok(value) if init.code == Some(0) => (Tenant::from_json(&value), false),
            _ => (bootstrap_with_up(&env), true),
        };
        let server = Server::start(&env, db);
        let lab = Lab { env, server, keys };
        if via_up {
            lab.run(&lab.user(), &["project", "archive", "example"]).ok();
        }
        lab
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }

    fn actor(&self, name: &str, key: &str) -> Actor {
        let state_dir = self.env.path("actors").join(name);
        std::fs::create_dir_all(&state_dir).expect("actor state dir");
        Actor { key: key.into(), state_dir }
    }

    pub fn user(&self) -> Actor {
        self.actor("user", &self.keys.user)
    }

    pub fn orch(&self) -> Actor {
        self.actor("orchestrator", &self.keys.orch)
    }

    pub fn agent(&self) -> Actor {
        self.actor("agent", &self.keys.agent)
    }

    /// `loopctl keys create NAME --role ROLE [--agent-id ID] --format json` with the user key.
    pub fn new_key(&self, name: &str, role: &str, agent_id: Option<&str>) -> Actor {
        let mut args = vec!["keys", "create", name, "--role", role, "--format", "json"];
        if let Some(id) = agent_id {
            args.extend(["--agent-id", id]);
        }
        let created = self.run(&self.user(), &args).json();
        assert_eq!(created["api_key"]["role"], role, "{created}");
        let raw = created["api_key"]["raw_key"].as_str().expect("raw_key").to_string();
        self.actor(name, &raw)
    }

    /// The agent identity behind a key (`auth whoami --format json`).
    pub fn agent_id(&self, who: &Actor) -> String {
        let me = self.run(who, &["auth", "whoami", "--format", "json"]).json();
        me["agent_id"].as_str().unwrap_or_else(|| panic!("no agent_id in {me}")).to_string()
    }

    /// `loopctl` as `who` against this server: key and server in the environment, no project.
    pub fn cmd(&self, who: &Actor) -> assert_cmd::Command {
        let mut cmd = self.env.cmd();
        cmd.env("LOOPCTL_SERVER", self.url()).env("LOOPCTL_API_KEY", &who.key).env("LOOPCTL_STATE_DIR", &who.state_dir);
        cmd
    }

    pub fn run(&self, who: &Actor, args: &[&str]) -> Out {
        Out::of(self.cmd(who).args(args), args)
    }

    pub fn run_in(&self, who: &Actor, dir: &Path, args: &[&str]) -> Out {
        Out::of(self.cmd(who).current_dir(dir).args(args), args)
    }

    /// `loopctl project create NAME --slug SLUG` and an import of `BREAKDOWN`, by the
    /// orchestrator. Returns the project id.
    pub fn project(&self, name: &str, slug: &str) -> String {
        self.project_from(name, slug, BREAKDOWN, 4)
    }

    /// [`Lab::project`] with a breakdown of the test's own that holds `stories` stories.
    pub fn project_from(&self, name: &str, slug: &str, breakdown: &str, stories: usize) -> String {
        let orch = self.orch();
        let created = self.run(&orch, &["project", "create", name, "--slug", slug, "--format", "json"]).json();
        let file = self.env.path(&format!("breakdown-{slug}.json"));
        std::fs::write(&file, breakdown).expect("write breakdown");
        let file = file.to_string_lossy().into_owned();
        self.run(&orch, &["import", "--project", slug, &file]).ok().stdout_has(&format!("{stories} stories created"));
        created["project"]["id"].as_str().expect("project id").to_string()
    }

    /// A story as JSON (`status N --format json`), read by the orchestrator.
    pub fn story(&self, project: &str, number: &str) -> Value {
        self.run(&self.orch(), &["status", number, "--project", project, "--format", "json"]).json()
    }

    /// contract, claim, start, report: the implementer's half of the loop.
    pub fn implement(&self, who: &Actor, project: &str, number: &str) {
        for verb in ["contract", "claim", "start"] {
            self.run(who, &[verb, number, "--project", project]).ok();
        }
        let artifact = r#"{"artifact_type": "commit_diff", "details": {"commit_sha": "0123456789abcdef0123456789abcdef01234567", "files": ["lib/app.ex"]}}"#;
        self.run(who, &["report", number, "--project", project, "--artifact", artifact]).ok();
    }
}

fn bootstrap_with_up(env: &Env) -> Tenant {
    let mut cmd = env.std_cmd();
    // Its profiles go to a file of their own: the test's config stays empty.
    cmd.env("LOOPCTL_CONFIG", env.path("bootstrap-config.toml")).args(["up", "--listen", "127.0.0.1:0"]);
    let mut proc = Proc::spawn(cmd, "loopctl up (bootstrap)");
    proc.wait_for("`is up on` line", |l| l.contains(" is up on http://"));
    proc.kill();
    let text = std::fs::read_to_string(env.data_dir().join("keys.json")).expect("keys.json from up");
    Tenant::from_json(&serde_json::from_str(&text).expect("keys.json is JSON"))
}

/// Now as ISO-8601 UTC with milliseconds (what `changes --since $LAST_POLL` gets).
pub fn iso_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// `git ARGS` in `dir` with a fixed identity; fails the test when git does.
pub use loopctl_git::testkit::git;

/// The numbers of the stories in a list answer (`data[].number` or `data[].story.number`).
pub fn numbers(answer: &Value) -> Vec<String> {
    answer["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["number"].as_str().or_else(|| item["story"]["number"].as_str()))
        .map(str::to_string)
        .collect()
}

/// `--format csv` output read by a real CSV reader: every record, the header first. Fails the
/// test when it is not CSV or its records differ in length.
#[track_caller]
pub fn csv_records(out: &Out) -> Vec<Vec<String>> {
    out.ok();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(out.stdout.as_bytes())
        .records()
        .map(|record| match record {
            Ok(record) => record.iter().map(str::to_string).collect(),
            Err(err) => panic!("`{}` is not CSV ({err}):\n{}", out.what, out.stdout),
        })
        .collect()
}
