//! The webhook outbox as the service layer keeps it (real SQLite, a `ManualClock` instead of
//! waiting through backoffs): a receiver that keeps failing is retried later each time and
//! disabled after `DISABLE_AFTER` failures in a row with a reason its owner can read; one
//! sender at a time holds a delivery.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use loopctl_api::{CreateApiKey, CreateWebhook};
use loopctl_app::webhooks::{DISABLE_AFTER, SendResult};
use loopctl_app::{App, BootstrapRequest, ManualClock};
use loopctl_store_sqlite::SqliteStore;

#[tokio::test]
async fn a_receiver_that_keeps_failing_backs_off_then_is_disabled_with_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("loopctl.db")).await.expect("open SQLite");
    let clock = Arc::new(ManualClock::starting_at(Utc::now()));
    let app = App::new(Arc::new(store)).with_clock(clock.clone()).allowing_private_webhook_targets(true);
    let boot = app
        .bootstrap_tenant(BootstrapRequest { tenant_name: "hooks".into(), slug: None, email: None })
        .await
        .expect("bootstrap");
    let user = app.authenticate(&boot.keys.user).await.expect("user key");
    let hook = CreateWebhook { url: "http://127.0.0.1:9/hook".into(), project_id: None, events: vec![] };
    let created = app.create_webhook(&user, hook).await.expect("webhook");
    assert!(created.secret.starts_with("whsec_"));
    let key = CreateApiKey { name: "one".into(), role: "agent".into(), agent_id: None, expires_at: None };
    app.create_api_key(&user, key).await.expect("an event");

    let mut waits = Vec::new();
    for attempt in 1..=DISABLE_AFTER {
        let due = app.due_webhook_deliveries(10).await.expect("due");
        assert_eq!(due.len(), 1, "attempt {attempt}: the one delivery is due");
        let outgoing = app.prepare_delivery(due[0].clone()).await.expect("prepare").expect("leased to us");
        // While we hold it, no other sender gets it.
        assert!(app.prepare_delivery(due[0].clone()).await.expect("prepare").is_none(), "a second sender is refused");
        let failed = SendResult { status: Some(503), error: None, latency: Duration::from_millis(3) };
        app.finish_delivery(&outgoing, &failed).await.expect("record");
        assert!(app.due_webhook_deliveries(10).await.expect("due").is_empty(), "not due again at once");
        let log = app.webhook_deliveries(&user, created.webhook.id, None).await.expect("log");
        let wait = log[0].next_attempt_at - app.now();
        waits.push(wait.num_milliseconds());
        assert_eq!((log[0].attempts, log[0].last_status), (attempt, Some(503)));
        clock.advance(wait + chrono::Duration::milliseconds(1));
    }
    assert!(waits.windows(2).all(|w| w[0] <= w[1] + 1), "the waits only grow: {waits:?}");
    assert!((999..=1000).contains(&waits[0]), "the first retry waits a second: {waits:?}");
    assert!(*waits.last().expect("waits") <= 600_000, "capped at ten minutes: {waits:?}");

    let hooks = app.list_webhooks(&user).await.expect("list");
    assert!(!hooks[0].enabled, "{hooks:?}");
    let reason = hooks[0].disabled_reason.clone().expect("a reason");
    assert!(
        reason.contains(&format!("{DISABLE_AFTER} failed deliveries in a row")) && reason.contains("HTTP 503"),
        "{reason}"
    );
    clock.advance(chrono::Duration::hours(2));
    assert!(app.due_webhook_deliveries(10).await.expect("due").is_empty(), "a disabled webhook is not sent");
}
