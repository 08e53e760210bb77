//! Sends webhook deliveries from the outbox: the head of each enabled webhook's queue, all
//! webhooks side by side, each delivery leased to this server while it is sent (so of several
//! servers on one database one sends it), to the address its name resolved to when it was
//! checked, without following redirects. Runs beside the requests: a slow or dead receiver
//! delays only its own webhook's queue.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use loopctl_app::App;
use loopctl_app::webhooks::{Outgoing, SEND_TIMEOUT, SendResult};
use loopctl_store::DeliveryRecord;

/// How long to wait when there was nothing to send.
const IDLE: Duration = Duration::from_millis(250);
/// Webhooks served per round.
const PER_ROUND: i64 = 64;

pub(crate) async fn send_webhooks(app: App) {
    let mut clients = Clients::default();
    loop {
        let due = match app.due_webhook_deliveries(PER_ROUND).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(%err, "reading the webhook outbox failed");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::time::sleep(IDLE).await;
            continue;
        }
        let mut ready = Vec::with_capacity(due.len());
        for delivery in due {
            let id = delivery.id;
            match clients.prepare(&app, delivery).await {
                Ok(Some((outgoing, http))) => ready.push((outgoing, http)),
                Ok(None) => {}
                Err(err) => tracing::warn!(%err, delivery = id, "preparing a webhook delivery failed"),
            }
        }
        if ready.is_empty() {
            // Every head is another server's, or gone: wait rather than ask again at once.
            tokio::time::sleep(IDLE).await;
            continue;
        }
        let attempts = ready.into_iter().map(|(outgoing, http)| {
            let app = app.clone();
            async move {
                let result = send(&http, &outgoing).await;
                if let Err(err) = app.finish_delivery(&outgoing, &result).await {
                    tracing::warn!(%err, delivery = outgoing.delivery.id, "recording a webhook delivery failed");
                }
            }
        });
        futures_util::future::join_all(attempts).await;
    }
}

/// One HTTP client per (host, checked address): the connection is reused, and a client can
/// reach no address but the one that was checked.
#[derive(Default)]
struct Clients {
    by_target: HashMap<(String, SocketAddr), reqwest::Client>,
}

impl Clients {
    async fn prepare(
        &mut self,
        app: &App,
        delivery: DeliveryRecord,
    ) -> loopctl_app::AppResult<Option<(Outgoing, reqwest::Client)>> {
        let Some(outgoing) = app.prepare_delivery(delivery).await? else {
            return Ok(None);
        };
        let key = (outgoing.target.host.clone(), outgoing.target.addr);
        if !self.by_target.contains_key(&key) {
            if self.by_target.len() > 1_000 {
                self.by_target.clear();
            }
            let _ = rustls::crypto::ring::default_provider().install_default();
            let built = reqwest::Client::builder()
                .resolve(&key.0, key.1)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(SEND_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("loopctl-webhooks/", env!("CARGO_PKG_VERSION")))
                .build();
            match built {
                Ok(client) => {
                    self.by_target.insert(key.clone(), client);
                }
                Err(err) => {
                    let result = SendResult {
                        status: None,
                        error: Some(format!("no HTTP client: {err}")),
                        latency: Duration::ZERO,
                    };
                    app.finish_delivery(&outgoing, &result).await?;
                    return Ok(None);
                }
            }
        }
        Ok(self.by_target.get(&key).cloned().map(|client| (outgoing, client)))
    }
}

async fn send(http: &reqwest::Client, outgoing: &Outgoing) -> SendResult {
    let started = Instant::now();
    let mut request = http.post(outgoing.target.url.as_str()).body(outgoing.body.clone());
    for (name, value) in &outgoing.headers {
        request = request.header(*name, value);
    }
    match request.send().await {
        Ok(answer) => SendResult { status: Some(answer.status().as_u16()), error: None, latency: started.elapsed() },
        Err(err) => {
            let what = if err.is_timeout() {
                format!("no answer within {}s", SEND_TIMEOUT.as_secs())
            } else {
                format!("cannot reach the receiver: {err}")
            };
            SendResult { status: None, error: Some(what), latency: started.elapsed() }
        }
    }
}
