//! Attacks on the audit chain by someone who can write the database and knows how its hashes
//! are computed, but holds no signing key: they edit an event and recompute every hash after
//! it, so each link follows the one before. The signed head no longer matches.

use std::sync::Arc;

use loopctl_api::CreateApiKey;
use loopctl_app::signing::SigningKeys;
use loopctl_app::{App, BootstrapRequest, audit_link_hash};
use loopctl_store::{EventFilter, Store};
use loopctl_store_sqlite::SqliteStore;
use sqlx::{Connection, SqliteConnection};

#[tokio::test]
async fn an_edit_with_the_whole_chain_rehashed_after_it_fails_at_the_signed_head() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("loopctl.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.expect("open SQLite"));
    let keys = SigningKeys::load_or_create(&dir.path().join("signing-keys")).expect("key directory");
    let app = App::with_signing_keys(store.clone(), keys);
    let boot = app
        .bootstrap_tenant(BootstrapRequest { tenant_name: "chain".into(), slug: None, email: None })
        .await
        .expect("bootstrap");
    let user = app.authenticate(&boot.keys.user).await.expect("user key");
    for name in ["one", "two", "three", "four", "five", "six"] {
        let request = CreateApiKey { name: name.into(), role: "agent".into(), agent_id: None, expires_at: None };
        app.create_api_key(&user, request).await.expect("a key");
    }
    let found = app.verify_audit(&user).await.expect("verify");
    assert!(found.intact, "{found:?}");
    let events =
        store.events(user.tenant_id, EventFilter { limit: 1000, ..EventFilter::default() }).await.expect("events");
    assert!(events.len() >= 5, "{events:?}");
    let edited = events[events.len() / 2].cursor;

    // The attack: the event edited, every link from it on recomputed with the published hash.
    let mut conn = SqliteConnection::connect(&format!("sqlite:{}", db.display())).await.expect("open the file");
    sqlx::raw_sql("DROP TRIGGER events_append_only_update; DROP TRIGGER audit_links_append_only_update;")
        .execute(&mut conn)
        .await
        .expect("drop the append-only triggers");
    sqlx::query("UPDATE events SET actor_label = 'user:somebody-else' WHERE cursor = ?")
        .bind(edited)
        .execute(&mut conn)
        .await
        .expect("edit the event");
    let events =
        store.events(user.tenant_id, EventFilter { limit: 1000, ..EventFilter::default() }).await.expect("events");
    let links = store.audit_links(user.tenant_id, None, 1000).await.expect("links");
    let mut prev = links[0].prev_hash.clone();
    for (event, link) in events.iter().zip(&links) {
        let hash = audit_link_hash(&prev, event).to_vec();
        if event.cursor >= edited {
            sqlx::query("UPDATE audit_links SET prev_hash = ?, hash = ? WHERE cursor = ?")
                .bind(&prev)
                .bind(&hash)
                .bind(link.cursor)
                .execute(&mut conn)
                .await
                .expect("rewrite a link");
        }
        prev = hash;
    }

    // Another instance with the same signing key (and none of this one's memory) re-walks it.
    let other_keys = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(dir.path().join("signing-keys")).expect("keys") {
        let path = entry.expect("a key file").path();
        if path.extension().is_some_and(|ext| ext == "ed25519") {
            std::fs::copy(&path, other_keys.path().join(path.file_name().expect("name"))).expect("copy the key");
        }
    }
    let other = App::with_signing_keys(store.clone(), SigningKeys::load_or_create(other_keys.path()).expect("keys"));
    let found = other.verify_audit(&user).await.expect("verify");
    let mismatch = found.first_mismatch.expect("the rewritten chain does not verify");
    assert_eq!(mismatch.problem, "seal_invalid", "{mismatch:?}");
    assert!(mismatch.message.contains("an entry after the start"), "{mismatch:?}");
    assert!(!found.intact);

    // The instance that signed the head knows it, and names the rewrite too.
    let found = app.verify_audit(&user).await.expect("verify");
    assert_eq!(found.first_mismatch.expect("a mismatch").problem, "head_rewritten");
}
