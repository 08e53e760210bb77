//! An instance remembers the keys it authenticated for `KEY_CACHE_TTL`, so an agent's calls
//! do not each read the key and its tenant again. These are the attacks on that memory: a
//! revoked key and a rotated-out key must stop working at once on
//! the instance that ended them, and within the TTL on another instance over the same
//! database (real SQLite, two `App`s, each with its own cache).

use std::sync::Arc;

use loopctl_api::{CreateApiKey, ErrorCode};
use loopctl_app::{App, BootstrapRequest, KEY_CACHE_TTL, Principal};
use loopctl_store::Store;
use loopctl_store_sqlite::SqliteStore;

struct Two {
    here: App,
    there: App,
    user: Principal,
    _dir: tempfile::TempDir,
}

async fn two_instances() -> Two {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("loopctl.db")).await.expect("open SQLite"));
    let here = App::new(store.clone());
    let there = App::new(store);
    let boot = here
        .bootstrap_tenant(BootstrapRequest { tenant_name: "cache".into(), slug: None, email: None })
        .await
        .expect("bootstrap");
    let user = here.authenticate(&boot.keys.user).await.expect("user key");
    Two { here, there, user, _dir: dir }
}

async fn agent_key(t: &Two, name: &str) -> (uuid::Uuid, String) {
    let request = CreateApiKey { name: name.into(), role: "agent".into(), agent_id: None, expires_at: None };
    let key = t.here.create_api_key(&t.user, request).await.expect("agent key");
    (key.id, key.raw_key.expect("raw key"))
}

fn refused(result: Result<Principal, loopctl_app::AppError>) -> ErrorCode {
    match result {
        Ok(who) => panic!("a key that was ended still authenticated as {}", who.key_name),
        Err(err) => err.code,
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_by_the_instance_that_revoked_it() {
    let t = two_instances().await;
    let (id, raw) = agent_key(&t, "stolen").await;
    // Cached by both instances.
    t.here.authenticate(&raw).await.expect("live key");
    t.there.authenticate(&raw).await.expect("live key");

    t.here.revoke_api_key(&t.user, id).await.expect("revoke");
    assert_eq!(refused(t.here.authenticate(&raw).await), ErrorCode::TokenRevoked);

    // The other instance read the key before the revocation; it stops trusting that read
    // within the TTL, and never later.
    tokio::time::sleep(KEY_CACHE_TTL + std::time::Duration::from_millis(100)).await;
    assert_eq!(refused(t.there.authenticate(&raw).await), ErrorCode::TokenRevoked);
}

#[tokio::test]
async fn a_key_rotated_out_with_no_grace_stops_at_once_here_and_within_the_ttl_there() {
    let t = two_instances().await;
    let (id, raw) = agent_key(&t, "rotated").await;
    t.here.authenticate(&raw).await.expect("live key");
    t.there.authenticate(&raw).await.expect("live key");
    let rotated = t
        .here
        .rotate_api_key(&t.user, id, loopctl_api::RotateApiKey { grace_period_hours: Some(0) })
        .await
        .expect("rotate");
    assert_eq!(refused(t.here.authenticate(&raw).await), ErrorCode::TokenExpired);
    let new_key = rotated.new_key.raw_key.expect("the new key is shown once");
    t.there.authenticate(&new_key).await.expect("the new key works everywhere at once");
    tokio::time::sleep(KEY_CACHE_TTL + std::time::Duration::from_millis(100)).await;
    assert_eq!(refused(t.there.authenticate(&raw).await), ErrorCode::TokenExpired);
}

#[tokio::test]
async fn a_key_that_was_never_valid_is_not_remembered_as_valid() {
    let t = two_instances().await;
    let (_, raw) = agent_key(&t, "real").await;
    let forged = format!("{}x", &raw[..raw.len() - 1]);
    for _ in 0..3 {
        assert_eq!(refused(t.here.authenticate(&forged).await), ErrorCode::Unauthorized);
    }
    t.here.authenticate(&raw).await.expect("the real key still works");
}
