//! Webhooks: subscriptions (users only), the outbox the store fills in the transaction of each
//! event, and what a sender needs to deliver one: the lease, the signed body, the checked
//! address, and the bookkeeping of each attempt (backoff, disabling after repeated failure).
//!
//! The signing secret of a webhook is never stored: it is derived from a secret in the
//! server's key directory and the webhook's id, shown once when the webhook is created, and
//! derived again for each delivery. Every instance sharing the key directory signs alike.
//!
//! A target is checked when the webhook is created and again at every delivery, after DNS
//! resolution, and the request goes to the address that was checked: a name that later
//! resolves to a private, loopback or link-local address (DNS rebinding) reaches nothing.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use loopctl_api::{CreateWebhook, DeliveryView, EventView, WebhookCreated, WebhookPayload, WebhookView};
use loopctl_store::{DeliveryAttempt, DeliveryRecord, StoreError, WebhookRecord, WriteOp};
use sha2::Sha256;
use uuid::Uuid;

use crate::signing::{hex, unhex};
use crate::view::FromRecord;
use crate::{App, AppError, AppResult, HUMANS, Principal, require};

/// A delivery is one sender's for this long (longer than `SEND_TIMEOUT`); a sender that died
/// holding it gives it up when it runs out.
pub const LEASE: Duration = Duration::from_secs(15);
/// How long a receiver has to answer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed attempts in a row after which a webhook is disabled.
pub const DISABLE_AFTER: i64 = 15;
/// The first retry waits this long, each next one twice as long, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// The file, in the key directory, of the secret webhook secrets are derived from.
const SECRET_FILE: &str = "webhook-secret.key";

/// Where webhooks may point, and what they are signed with.
#[derive(Clone)]
pub(crate) struct WebhookKeys {
    master: [u8; 32],
    allow_private_targets: bool,
}

impl std::fmt::Debug for WebhookKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookKeys")
            .field("allow_private_targets", &self.allow_private_targets)
            .finish_non_exhaustive()
    }
}

impl WebhookKeys {
    /// The secret in `key_dir` (made there, 0600, on first use), or one of this process only.
    pub(crate) fn open(key_dir: Option<&Path>) -> WebhookKeys {
        let master = key_dir.and_then(|dir| match load_or_create_secret(&dir.join(SECRET_FILE)) {
            Ok(secret) => Some(secret),
            Err(err) => {
                tracing::error!(%err, "cannot use the webhook secret file; webhook signatures change at restart");
                None
            }
        });
        WebhookKeys { master: master.unwrap_or_else(random_secret), allow_private_targets: false }
    }

    /// The secret of one webhook: what its receiver verifies signatures with.
    fn secret_of(&self, webhook_id: Uuid) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.master).expect("HMAC takes any key length");
        mac.update(b"loopctl webhook secret v1\n");
        mac.update(webhook_id.as_bytes());
        format!("whsec_{}", hex(&mac.finalize().into_bytes()))
    }
}

fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the system provides randomness");
    secret
}

fn load_or_create_secret(path: &Path) -> std::io::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => unhex32(text.trim())
            .ok_or_else(|| std::io::Error::other(format!("{} is not 64 hex digits", path.display()))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let secret = random_secret();
            crate::signing::write_private(path, &hex(&secret))?;
            Ok(secret)
        }
        Err(err) => Err(err),
    }
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    unhex(text)?.try_into().ok()
}

/// The `loopctl-signature` header of a body sent at `at`: `t=<unix seconds>,v1=<hex of
/// HMAC-SHA256(secret, "<t>.<body>")>`.
#[must_use]
pub fn signature_header(secret: &str, at: DateTime<Utc>, body: &[u8]) -> String {
    let t = at.timestamp();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex(&mac.finalize().into_bytes()))
}

/// Why an address may not receive webhooks (unless the operator allows private targets).
#[must_use]
pub fn refused_address(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address (cloud metadata lives there)")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || a == 0 {
                Some("not a host's address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("not a host's address")
            } else {
                None
            }
        }
    }
}

/// A target checked and resolved: the URL, and the one address the request may go to.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: url::Url,
    pub host: String,
    pub addr: SocketAddr,
}

/// One delivery ready to send: where, what, and the headers that sign it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub delivery: DeliveryRecord,
    /// The webhook as read when the delivery was leased: while the lease lasts no other
    /// attempt of this webhook is recorded, so its failure count is still current.
    pub webhook: WebhookRecord,
    pub target: Target,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// How an attempt ended, as the sender saw it.
#[derive(Debug, Clone)]
pub struct SendResult {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency: Duration,
}

fn parse_target(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|err| format!("`{url}` is not a URL ({err})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}` is not http:// or https://"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a webhook URL may not carry a user name or password; the signature proves the sender".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` names no host"));
    }
    Ok(parsed)
}

impl App {
    /// Allows webhook targets on private, loopback and link-local addresses (an operator's
    /// choice: receivers on the same network).
    #[must_use]
    pub fn allowing_private_webhook_targets(mut self, allow: bool) -> App {
        let mut keys = (*self.webhook_keys).clone();
        keys.allow_private_targets = allow;
        self.webhook_keys = std::sync::Arc::new(keys);
        self
    }

    /// Parses `url`, resolves its host and checks every address it resolves to; answers the
    /// first, the only one the request may go to.
    ///
    /// # Errors
    /// What is wrong with the URL or its addresses, in words for the log and the caller.
    pub async fn resolve_webhook_target(&self, url: &str) -> Result<Target, String> {
        let url = parse_target(url)?;
        let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(found) => found.collect(),
            Err(err) => return Err(format!("cannot resolve {host}: {err}")),
        };
        let Some(first) = addrs.first().copied() else {
            return Err(format!("{host} resolves to no address"));
        };
        if !self.webhook_keys.allow_private_targets {
            for addr in &addrs {
                if let Some(why) = refused_address(addr.ip()) {
                    return Err(format!(
                        "{host} resolves to {} ({why}); webhooks may not reach it unless the server is started with --allow-private-webhooks",
                        addr.ip()
                    ));
                }
            }
        }
        Ok(Target { url, host, addr: first })
    }

    /// Subscribes a URL to the tenant's events (users only); answers the secret once.
    ///
    /// # Errors
    /// `forbidden` for agent keys; `validation_error` for a bad or refused URL, an unknown
    /// project, or an empty action name.
    pub async fn create_webhook(&self, who: &Principal, body: CreateWebhook) -> AppResult<WebhookCreated> {
        require(who, HUMANS, "create webhooks")?;
        if body.url.len() > 2048 {
            return Err(AppError::field("url", "is longer than 2048 characters"));
        }
        self.resolve_webhook_target(&body.url).await.map_err(|why| AppError::field("url", why))?;
        if let Some(project) = body.project_id
            && self.store.project(who.tenant_id, project).await?.is_none()
        {
            return Err(AppError::field("project_id", format!("no project {project} in this tenant")));
        }
        let mut actions = Vec::new();
        for action in body.events {
            let action = action.trim().to_owned();
            if action.is_empty() || action.len() > 64 || !action.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(AppError::field(
                    "events",
                    format!("`{action}` is not an action name (letters, digits, _)"),
                ));
            }
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
        let record = WebhookRecord {
            id: Uuid::now_v7(),
            tenant_id: who.tenant_id,
            project_id: body.project_id,
            url: body.url,
            actions,
            enabled: true,
            disabled_reason: None,
            consecutive_failures: 0,
            created_by: format!("{}:{}", who.role, who.key_name),
            created_at: self.now(),
        };
        let audit = crate::event(
            who,
            record.project_id,
            ("webhook", record.id),
            "created",
            serde_json::json!({}),
            serde_json::json!({"url": record.url, "events": record.actions}),
        );
        // The event first: on both stores the new webhook is not sent the event of its creation.
        self.commit(vec![audit, WriteOp::InsertWebhook(record.clone())]).await?;
        Ok(WebhookCreated {
            webhook: WebhookView::from_record(&record),
            secret: self.webhook_keys.secret_of(record.id),
        })
    }

    /// The tenant's webhooks (users only).
    ///
    /// # Errors
    /// `forbidden` for agent keys.
    pub async fn list_webhooks(&self, who: &Principal) -> AppResult<Vec<WebhookView>> {
        require(who, HUMANS, "list webhooks")?;
        Ok(self.store.webhooks(who.tenant_id).await?.iter().map(WebhookView::from_record).collect())
    }

    /// Deletes a webhook and its delivery log (users only).
    ///
    /// # Errors
    /// `forbidden` for agent keys; `not_found`.
    pub async fn delete_webhook(&self, who: &Principal, id: Uuid) -> AppResult<WebhookView> {
        require(who, HUMANS, "delete webhooks")?;
        let webhook = self.webhook_of(who, id).await?;
        let audit = crate::event(
            who,
            webhook.project_id,
            ("webhook", id),
            "deleted",
            serde_json::json!({"url": webhook.url}),
            serde_json::json!({}),
        );
        self.commit(vec![WriteOp::DeleteWebhook { tenant_id: who.tenant_id, id }, audit]).await?;
        Ok(WebhookView::from_record(&webhook))
    }

    /// A webhook's newest deliveries, newest first (users only).
    ///
    /// # Errors
    /// `forbidden` for agent keys; `not_found`.
    pub async fn webhook_deliveries(
        &self,
        who: &Principal,
        id: Uuid,
        limit: Option<i64>,
    ) -> AppResult<Vec<DeliveryView>> {
        require(who, HUMANS, "read webhook deliveries")?;
        self.webhook_of(who, id).await?;
        let limit = limit.unwrap_or(50).clamp(1, 500);
        Ok(self.store.deliveries(who.tenant_id, id, limit).await?.iter().map(DeliveryView::from_record).collect())
    }

    async fn webhook_of(&self, who: &Principal, id: Uuid) -> AppResult<WebhookRecord> {
        self.store.webhook(who.tenant_id, id).await?.ok_or_else(|| AppError::not_found(format!("webhook {id}")))
    }

    /// What any sender should send next: the oldest pending delivery of each enabled webhook
    /// that is due.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn due_webhook_deliveries(&self, limit: i64) -> AppResult<Vec<DeliveryRecord>> {
        Ok(self.store.due_deliveries(self.now(), limit).await?)
    }

    /// Takes a delivery for this sender and makes it ready to send: `None` when another
    /// sender has it, or its webhook or event is gone. A target refused now (its name
    /// resolves elsewhere than when it was created) is recorded as a failed attempt.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn prepare_delivery(&self, delivery: DeliveryRecord) -> AppResult<Option<Outgoing>> {
        let now = self.now();
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let lease = WriteOp::LeaseDelivery {
            tenant_id: delivery.tenant_id,
            id: delivery.webhook_id,
            delivery_id: delivery.id,
            now,
            until,
        };
        match self.store.commit(vec![lease]).await {
            Ok(_) => {}
            Err(StoreError::VersionConflict { .. }) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
        let Some(webhook) = self.store.webhook(delivery.tenant_id, delivery.webhook_id).await? else {
            return Ok(None);
        };
        let Some(event) = self.store.event_at(delivery.tenant_id, delivery.event_cursor).await? else {
            return Ok(None);
        };
        let target = match self.resolve_webhook_target(&webhook.url).await {
            Ok(target) => target,
            Err(why) => {
                let refused = SendResult { status: None, error: Some(why), latency: Duration::ZERO };
                self.record_attempt(&webhook, &delivery, &refused).await?;
                return Ok(None);
            }
        };
        let payload =
            WebhookPayload { delivery_id: delivery.id, webhook_id: webhook.id, event: EventView::from_record(&event) };
        let body = serde_json::to_vec(&payload).map_err(|_| AppError::internal())?;
        let signature = signature_header(&self.webhook_keys.secret_of(webhook.id), now, &body);
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            ("loopctl-signature", signature),
            ("loopctl-delivery", delivery.id.to_string()),
            ("loopctl-event", event.event.action.clone()),
        ];
        Ok(Some(Outgoing { delivery, webhook, target, body, headers }))
    }

    /// Records how a sent delivery ended.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn finish_delivery(&self, outgoing: &Outgoing, result: &SendResult) -> AppResult<()> {
        self.record_attempt(&outgoing.webhook, &outgoing.delivery, result).await
    }

    async fn record_attempt(
        &self,
        webhook: &WebhookRecord,
        delivery: &DeliveryRecord,
        result: &SendResult,
    ) -> AppResult<()> {
        let now = self.now();
        let delivered = result.error.is_none() && result.status.is_some_and(|s| (200..300).contains(&s));
        let failures = if delivered { 0 } else { webhook.consecutive_failures + 1 };
        let what = match (result.status, &result.error) {
            (_, Some(error)) => error.clone(),
            (Some(status), None) => format!("HTTP {status}"),
            (None, None) => "no answer".to_owned(),
        };
        let disable = (failures >= DISABLE_AFTER).then(|| {
            format!("disabled after {failures} failed deliveries in a row; the last: {what}; fix the receiver, then delete and create the webhook again")
        });
        let backoff = FIRST_BACKOFF.saturating_mul(1 << delivery.attempts.clamp(0, 20)).min(MAX_BACKOFF);
        let attempt = DeliveryAttempt {
            tenant_id: delivery.tenant_id,
            delivery_id: delivery.id,
            webhook_id: webhook.id,
            delivered,
            status: result.status.map(i64::from),
            error: (!delivered).then_some(what),
            latency_ms: i64::try_from(result.latency.as_millis()).unwrap_or(i64::MAX),
            at: now,
            next_attempt_at: now + chrono::Duration::from_std(backoff).unwrap_or_default(),
            consecutive_failures: failures,
            disable,
        };
        metrics::counter!("loopctl_webhook_deliveries_total", "outcome" => if delivered { "delivered" } else { "failed" })
            .increment(1);
        self.store.commit(vec![WriteOp::RecordDeliveryAttempt(attempt)]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_mapped_addresses_are_refused_and_public_ones_pass() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(refused_address(refused.parse().expect("an address")).is_some(), "{refused} must be refused");
        }
        for allowed in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert_eq!(refused_address(allowed.parse().expect("an address")), None, "{allowed}");
        }
    }

    #[test]
    fn the_signature_covers_the_time_and_the_exact_body() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        let header = signature_header("whsec_test", at, b"{\"a\":1}");
        assert!(header.starts_with("t=1800000000,v1="), "{header}");
        assert_ne!(header, signature_header("whsec_test", at, b"{\"a\":2}"));
        assert_ne!(header, signature_header("whsec_other", at, b"{\"a\":1}"));
        assert_ne!(header, signature_header("whsec_test", at + chrono::Duration::seconds(1), b"{\"a\":1}"));
    }

    #[test]
    fn a_webhooks_secret_depends_on_the_key_directorys_secret_and_its_id() {
        let keys = WebhookKeys { master: [7; 32], allow_private_targets: false };
        let id = Uuid::now_v7();
        assert_eq!(keys.secret_of(id), keys.secret_of(id));
        assert_ne!(keys.secret_of(id), keys.secret_of(Uuid::now_v7()));
        let other = WebhookKeys { master: [8; 32], allow_private_targets: false };
        assert_ne!(keys.secret_of(id), other.secret_of(id));
    }
}
