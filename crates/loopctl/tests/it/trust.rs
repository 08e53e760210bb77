//! Keys cannot be stolen (issue 11), end to end with the real binary: a checkout's
//! `.loopctl.toml` cannot send a saved key to a server of its choosing, and what `up` and
//! `serve` keep on disk (the data directory, the SQLite files, `keys.json`) is readable by
//! its owner only.

use std::path::{Path, PathBuf};

use loopctl_test_support::key_trap::KeyTrap;

use crate::support::{Env, Lab, Out, Proc, start_up_in};

/// A checkout of somebody else's repository: its `.loopctl.toml` names the project and,
/// planted, the attacker's server.
fn hostile_checkout(env: &Env, server: &str) -> PathBuf {
    let dir = env.work().join("checkout");
    std::fs::create_dir_all(&dir).expect("checkout dir");
    std::fs::write(dir.join(".loopctl.toml"), format!("project = \"web\"\nserver = \"{server}\"\n"))
        .expect("write .loopctl.toml");
    dir
}

#[test]
fn a_checkout_s_loopctl_toml_cannot_send_the_saved_key_to_its_server() {
    let lab = Lab::start();
    lab.project("Web shop", "web");
    let env = &lab.env;
    let trap = KeyTrap::start();
    env.run(&["auth", "login", "--server", lab.url(), "--key", &lab.keys.orch, "--profile", "work"]).ok();
    let checkout = hostile_checkout(env, &trap.url);
    let file = checkout.join(".loopctl.toml");
    let in_checkout = |args: &[&str]| Out::of(env.cmd().current_dir(&checkout).args(args), args);

    for args in [&["status"][..], &["verify-artifacts", "1.1"], &["next"]] {
        let out = in_checkout(args);
        out.fails(3);
        for part in [file.to_string_lossy().as_ref(), trap.url.as_str(), "`work`", lab.url(), "--server"] {
            out.stderr_has(part);
        }
    }
    // A key given for this run does not let the file choose where it goes either.
    let out = Out::of(env.cmd().current_dir(&checkout).env("LOOPCTL_API_KEY", &lab.keys.agent).arg("next"), &["next"]);
    out.fails(3).stderr_has("LOOPCTL_API_KEY").stderr_has(&trap.url);
    let json = in_checkout(&["status", "--format", "json"]);
    json.fails_json(3, "key_server_mismatch");
    assert_eq!(trap.requests(), 0, "nothing was sent to the file's server");
    assert_eq!(trap.keyed(), 0, "no key reached the file's server");

    // The file still names the project: with the server chosen by the user the command runs there.
    in_checkout(&["status", "--server", lab.url()]).ok().stdout_has("Web shop (web)");
    std::fs::write(&file, format!("project = \"web\"\nserver = \"{}/\"\n", lab.url())).expect("rewrite");
    in_checkout(&["status"]).ok().stdout_has("Web shop (web)");
    // And a server the user names is where the key goes, even the trap: the trap does see keys.
    let chosen = Out::of(env.cmd().current_dir(&checkout).env("LOOPCTL_SERVER", &trap.url).arg("status"), &["status"]);
    assert_ne!(chosen.code, Some(0), "the trap answers no API: {chosen:?}");
    assert!(trap.keyed() >= 1, "the trap counts keyed requests");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    meta.permissions().mode() & 0o777
}

/// The database and the side files SQLite keeps next to it while it is open.
#[cfg(unix)]
fn assert_private_database(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&path), 0o600, "{} is readable by its owner only", path.display());
    }
}

#[cfg(unix)]
#[test]
fn what_up_keeps_on_disk_is_readable_by_its_owner_only() {
    let env = Env::new();
    // A data directory `up` creates itself (the harness's own one exists already).
    let data = env.path("fresh").join("loopctl");
    let (_up, _, _) = start_up_in(&env, &data);
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_private_database(&data.join("loopctl.db"));
    assert_eq!(mode(&data.join("keys.json")), 0o600, "keys.json");
}

#[cfg(unix)]
#[test]
fn serve_on_a_sqlite_path_keeps_it_private_and_tightens_a_world_readable_one() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let db = env.path("srv").join("nested").join("team.db");
    let serve = |db: &Path| {
        let mut cmd = env.std_cmd();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database-url"]).arg(db);
        let mut proc = Proc::spawn(cmd, "loopctl serve");
        proc.wait_for("`listening on` line", |l| l.contains(" listening on http://"));
        proc
    };
    let _server = serve(&db);
    assert_eq!(mode(&env.path("srv")), 0o700, "a directory serve creates");
    assert_eq!(mode(db.parent().expect("parent")), 0o700);
    assert_private_database(&db);

    // A database file someone left readable by everyone (here: an empty one, 0644).
    let loose = env.path("loose.db");
    std::fs::write(&loose, b"").expect("write");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let _second = serve(&loose);
    assert_private_database(&loose);
}
