//! Commits wake every instance: after a batch that appended events commits, its tenants are
//! announced with `pg_notify('loopctl_events', tenant)`, and each store listens on that
//! channel and hands what it hears to its server's live streams.
//!
//! The events table stays the truth: a notification only wakes a stream early, to read the
//! store. So the announcement is sent after the commit from a background task (never in the
//! request's path, never inside the transaction, where NOTIFY would serialise commits), a
//! lost one delays a stream only to its next poll, and the listener reconnects on its own.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

/// The channel every instance of one database announces its commits on.
pub const CHANNEL: &str = "loopctl_events";

/// The announcing half (fed by commits) and the hearing half (read by live streams).
pub struct Signals {
    announce: mpsc::UnboundedSender<Uuid>,
    heard: broadcast::Sender<Uuid>,
}

impl Signals {
    /// Starts the announcer and the listener over `pool`.
    pub fn start(pool: PgPool) -> Signals {
        let (announce, queue) = mpsc::unbounded_channel();
        let (heard, _) = broadcast::channel(1024);
        tokio::spawn(announcer(pool.clone(), queue));
        tokio::spawn(listener(pool, heard.clone()));
        Signals { announce, heard }
    }

    /// A batch of these tenants committed events.
    pub fn committed(&self, tenants: impl IntoIterator<Item = Uuid>) {
        for tenant in tenants {
            // The announcer only stops with the runtime.
            let _ = self.announce.send(tenant);
        }
    }

    /// Tenants whose events any instance committed, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.heard.subscribe()
    }
}

/// Sends one notification per tenant for everything queued since the last one.
async fn announcer(pool: PgPool, mut queue: mpsc::UnboundedReceiver<Uuid>) {
    while let Some(first) = queue.recv().await {
        let mut tenants = BTreeSet::from([first]);
        while let Ok(more) = queue.try_recv() {
            tenants.insert(more);
        }
        let payloads: Vec<String> = tenants.iter().map(Uuid::to_string).collect();
        let sent = sqlx::query("SELECT pg_notify($1, tenant) FROM unnest($2::text[]) AS tenant")
            .bind(CHANNEL)
            .bind(&payloads)
            .execute(&pool)
            .await;
        if let Err(err) = sent {
            tracing::debug!(%err, "could not announce a commit; streams elsewhere see it at their next poll");
        }
    }
}

/// Listens on [`CHANNEL`] and forwards each tenant it hears; reconnects after a failure.
async fn listener(pool: PgPool, heard: broadcast::Sender<Uuid>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if listener.listen(CHANNEL).await.is_ok() {
                    while let Ok(notification) = listener.recv().await {
                        if let Ok(tenant) = Uuid::parse_str(notification.payload()) {
                            let _ = heard.send(tenant);
                        }
                    }
                }
            }
            Err(err) => tracing::debug!(%err, "cannot listen for other instances' commits; retrying"),
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
