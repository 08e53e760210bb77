//! The tamper-evident audit chain: each event's SHA-256, chained to the hash of its tenant's
//! previous event, and the chain's head signed with the server's Ed25519 key (the key of
//! the verification runs, which lives in the key directory, never in the database).
//!
//! Links are written after the events commit, in feed order, by a background task on every
//! server (`chain_audit`) and before each verification: the request path never waits for
//! the chain, and event writers never wait for each other on it. Of several servers chaining
//! the same tenant at once one writes each link (the tenant and cursor are the link's key).
//! Someone with database access who edits an event is found at that event; one who also
//! rewrites the chain's hashes after it is found at the next signed head, which cannot be
//! signed again without the key. One who deletes the chain's tail, so that the server would
//! chain the edited events again, is found by the heads each server keeps outside the
//! database (`audit-heads.json` in its key directory): a server never chains behind a head it
//! signed, and a verification checks the chain against them. What is not yet chained (the
//! seconds between a commit and the next round) is not protected.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use loopctl_api::{AuditHead, AuditMismatch, AuditSealView, AuditVerification};
use loopctl_store::{AuditLink, AuditSeal, EventFilter, EventRecord, StoreError, WriteOp};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::signing::{hex, unhex};
use crate::{App, AppResult, HUMANS, Principal, require};

/// Links written, and entries read back, per store call.
const PAGE: i64 = 500;
/// Tenants chained per round of the background task.
const TENANTS_PER_ROUND: i64 = 1_000;
/// The `prev_hash` of a tenant's first link.
const GENESIS: [u8; 32] = [0; 32];

/// The hash of an event chained to the hash before it, over every stored field of the event
/// as read back from the store (so a re-read of an unchanged row always hashes the same).
/// Public so that a verifier of its own (or an attack test) can recompute the chain.
#[must_use]
pub fn link_hash(prev: &[u8], record: &EventRecord) -> [u8; 32] {
    let e = &record.event;
    let fields = serde_json::json!([
        record.cursor,
        e.id,
        e.tenant_id,
        e.project_id,
        e.entity_type,
        e.entity_id,
        e.action,
        e.actor.actor_type,
        e.actor.key_id,
        e.actor.agent_id,
        e.actor.role.map(|r| r.as_str()),
        e.actor.label,
        e.old_state,
        e.new_state,
        e.metadata,
        e.inserted_at.timestamp_micros(),
    ]);
    let mut hasher = Sha256::new();
    hasher.update(b"loopctl-audit-v1\n");
    hasher.update(prev);
    hasher.update(fields.to_string().as_bytes());
    hasher.finalize().into()
}

/// The newest chain head this server signed for each tenant, kept outside the database: in
/// memory, and in a file of the key directory when there is one (so it outlives a restart).
#[derive(Debug, Default)]
pub(crate) struct SignedHeads {
    file: Option<PathBuf>,
    heads: Mutex<HashMap<Uuid, (i64, Vec<u8>)>>,
}

/// The file, in the key directory, of the heads this server signed.
const HEADS_FILE: &str = "audit-heads.json";

impl SignedHeads {
    /// The heads kept in `key_dir` (none yet when the file is missing or unreadable: a
    /// damaged file is logged, never fatal, and the next head written replaces it).
    pub(crate) fn open(key_dir: Option<&std::path::Path>) -> SignedHeads {
        let file = key_dir.map(|dir| dir.join(HEADS_FILE));
        let mut heads = HashMap::new();
        if let Some(path) = &file
            && let Ok(text) = std::fs::read_to_string(path)
        {
            match serde_json::from_str::<HashMap<Uuid, (i64, String)>>(&text) {
                Ok(read) => {
                    heads = read.into_iter().filter_map(|(t, (c, h))| Some((t, (c, unhex(&h)?)))).collect();
                }
                Err(err) => tracing::error!(path = %path.display(), %err, "the audit heads file is damaged"),
            }
        }
        SignedHeads { file, heads: Mutex::new(heads) }
    }

    fn get(&self, tenant_id: Uuid) -> Option<(i64, Vec<u8>)> {
        self.heads.lock().ok()?.get(&tenant_id).cloned()
    }

    /// Keeps a head just signed and written, when it is newer than the one kept.
    fn record(&self, tenant_id: Uuid, cursor: i64, hash: &[u8]) {
        let Ok(mut heads) = self.heads.lock() else { return };
        if heads.get(&tenant_id).is_some_and(|(kept, _)| *kept >= cursor) {
            return;
        }
        heads.insert(tenant_id, (cursor, hash.to_vec()));
        let Some(path) = &self.file else { return };
        let all: HashMap<Uuid, (i64, String)> = heads.iter().map(|(t, (c, h))| (*t, (*c, hex(h)))).collect();
        let text = serde_json::to_string(&all).unwrap_or_default();
        let temporary = path.with_extension("json.new");
        let _ = std::fs::remove_file(&temporary);
        let written = crate::signing::write_private(&temporary, &text).and_then(|()| std::fs::rename(&temporary, path));
        if let Err(err) = written {
            tracing::error!(path = %path.display(), %err, "could not keep the signed audit head");
        }
    }
}

/// The exact text a chain head's signature covers.
fn seal_payload(tenant_id: Uuid, cursor: i64, hash: &[u8]) -> String {
    format!("loopctl audit head v1\ntenant {tenant_id}\ncursor {cursor}\nhash {}\n", hex(hash))
}

impl App {
    /// Chains the settled events of every tenant whose chain is behind; answers how many
    /// links were written. The server runs this every few seconds.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn chain_audit(&self) -> AppResult<u64> {
        let mut written = 0;
        for tenant_id in self.store.tenants_behind_audit_chain(TENANTS_PER_ROUND).await? {
            written += self.chain_tenant(tenant_id).await?;
        }
        Ok(written)
    }

    /// Chains the tenant's settled events after its chain's tip, a page per commit, the last
    /// link of each page signed.
    async fn chain_tenant(&self, tenant_id: Uuid) -> AppResult<u64> {
        let mut written = 0;
        loop {
            let tip = self.store.audit_tip(tenant_id).await?;
            if let Some((cursor, hash)) = self.signed_heads.get(tenant_id)
                && tip.as_ref().is_none_or(|tip| tip.cursor < cursor || (tip.cursor == cursor && tip.hash != hash))
            {
                // The chain was cut back behind what this server signed: chaining again would
                // sign whatever the rows say now. `audit verify` names it.
                tracing::error!(%tenant_id, signed_head = cursor, "the audit chain was cut back behind a head this server signed; not chaining");
                break;
            }
            let (mut prev, after) = tip.map_or((GENESIS.to_vec(), None), |link| (link.hash, Some(link.cursor)));
            let page = EventFilter { after_cursor: after, limit: PAGE, ..EventFilter::default() };
            let events = self.store.events(tenant_id, page).await?;
            let mut links = Vec::with_capacity(events.len());
            for record in &events {
                let hash = link_hash(&prev, record).to_vec();
                let prev_hash = std::mem::replace(&mut prev, hash.clone());
                let (cursor, event_id) = (record.cursor, record.event.id);
                links.push(AuditLink { tenant_id, cursor, event_id, prev_hash, hash, seal: None });
            }
            let Some(head) = links.last_mut() else { break };
            let (key_id, signature) = self.signing.sign(&seal_payload(tenant_id, head.cursor, &head.hash));
            head.seal = Some(AuditSeal { key_id, signature, sealed_at: self.now() });
            let (head_cursor, head_hash) = (head.cursor, head.hash.clone());
            let count = links.len() as u64;
            match self.store.commit(vec![WriteOp::AppendAuditLinks(links)]).await {
                Ok(_) => {
                    written += count;
                    self.signed_heads.record(tenant_id, head_cursor, &head_hash);
                }
                // Another server chained these first; its links stand.
                Err(StoreError::Duplicate { .. }) => break,
                Err(err) => return Err(err.into()),
            }
            if events.len() < PAGE as usize {
                break;
            }
        }
        Ok(written)
    }

    /// Chains what is not chained yet, then re-walks the tenant's whole chain (a page at a
    /// time): every event hashed again from its row, each hash chained to the one before,
    /// each signed head checked. Stops at the first entry that does not match.
    ///
    /// # Errors
    /// `forbidden` for agent keys; when the store fails.
    pub async fn verify_audit(&self, who: &Principal) -> AppResult<AuditVerification> {
        require(who, HUMANS, "verify the audit chain")?;
        let tenant_id = who.tenant_id;
        self.chain_tenant(tenant_id).await?;
        let kept_head = self.signed_heads.get(tenant_id);
        let mut walk = Walk::new(self, tenant_id);
        let mut expected_prev = GENESIS.to_vec();
        let mut checked = 0;
        let mut head = None;
        let mut sealed_through: Option<AuditSealView> = None;
        let verdict = |checked, head, sealed_through, first_mismatch: Option<AuditMismatch>| AuditVerification {
            intact: first_mismatch.is_none(),
            entries_checked: checked,
            head,
            sealed_through,
            first_mismatch,
        };
        while let Some(link) = walk.next_link().await? {
            let mismatch = |problem: &str, event_id, message: String| AuditMismatch {
                cursor: link.cursor,
                event_id,
                problem: problem.to_owned(),
                message,
            };
            if let Some(stray) = walk.event_before(link.cursor).await? {
                let found = AuditMismatch {
                    cursor: stray.cursor,
                    event_id: Some(stray.event.id),
                    problem: "event_not_chained".into(),
                    message: format!(
                        "event {} ({}) sits inside the chain without a link: it was inserted behind the server's back",
                        stray.cursor, stray.event.action
                    ),
                };
                return Ok(verdict(checked, head, sealed_through, Some(found)));
            }
            let Some(record) = walk.event_at(link.cursor).await? else {
                let message = format!(
                    "event {} ({}) is in the chain but not in the audit log: it was deleted",
                    link.cursor, link.event_id
                );
                let found = mismatch("event_missing", None, message);
                return Ok(verdict(checked, head, sealed_through, Some(found)));
            };
            if link.prev_hash != expected_prev {
                let message = format!(
                    "the link of event {} does not follow the link before it: the chain was edited",
                    link.cursor
                );
                return Ok(verdict(
                    checked,
                    head,
                    sealed_through,
                    Some(mismatch("chain_broken", Some(link.event_id), message)),
                ));
            }
            let hash = link_hash(&expected_prev, &record).to_vec();
            if hash != link.hash {
                let message = format!(
                    "event {} ({} of {} {}, by {}) no longer matches the hash it was chained with: it was changed after it was written",
                    link.cursor,
                    record.event.action,
                    record.event.entity_type,
                    record.event.entity_id,
                    record.event.actor.label
                );
                return Ok(verdict(
                    checked,
                    head,
                    sealed_through,
                    Some(mismatch("event_changed", Some(record.event.id), message)),
                ));
            }
            if let Some((cursor, kept)) = &kept_head
                && *cursor == link.cursor
                && *kept != hash
            {
                let message = format!(
                    "the chain at event {cursor} is not the chain this server signed there: entries up to it were changed and the chain cut back and chained again"
                );
                return Ok(verdict(
                    checked,
                    head,
                    sealed_through,
                    Some(mismatch("head_rewritten", Some(record.event.id), message)),
                ));
            }
            if let Some(seal) = &link.seal {
                if !self.signing.verify(&seal.key_id, &seal_payload(tenant_id, link.cursor, &hash), &seal.signature) {
                    let after = sealed_through
                        .as_ref()
                        .map_or_else(|| "the start".to_owned(), |s| format!("event {}", s.cursor));
                    let message = format!(
                        "the signed head at event {} does not match its signature (key {}): an entry after {after} and up to {} was changed and the chain's hashes rewritten",
                        link.cursor, seal.key_id, link.cursor
                    );
                    let found = mismatch("seal_invalid", Some(record.event.id), message);
                    return Ok(verdict(checked, head, sealed_through, Some(found)));
                }
                sealed_through =
                    Some(AuditSealView { cursor: link.cursor, key_id: seal.key_id.clone(), sealed_at: seal.sealed_at });
            }
            checked += 1;
            head = Some(AuditHead { cursor: link.cursor, hash: hex(&hash) });
            expected_prev = hash;
        }
        if let Some((cursor, _)) = kept_head
            && head.as_ref().is_none_or(|h| h.cursor < cursor)
        {
            let end =
                head.as_ref().map_or_else(|| "before its first entry".to_owned(), |h| format!("at event {}", h.cursor));
            let found = AuditMismatch {
                cursor,
                event_id: None,
                problem: "chain_truncated".into(),
                message: format!(
                    "the chain ends {end}, but this server signed a head at event {cursor}: its tail was deleted"
                ),
            };
            return Ok(verdict(checked, head, sealed_through, Some(found)));
        }
        Ok(verdict(checked, head, sealed_through, None))
    }
}

/// The chain's links and the audit log's events side by side, read a page at a time.
struct Walk<'a> {
    app: &'a App,
    tenant_id: Uuid,
    links: VecDeque<AuditLink>,
    links_after: Option<i64>,
    links_done: bool,
    events: VecDeque<EventRecord>,
    events_after: Option<i64>,
    events_done: bool,
}

impl<'a> Walk<'a> {
    fn new(app: &'a App, tenant_id: Uuid) -> Walk<'a> {
        Walk {
            app,
            tenant_id,
            links: VecDeque::new(),
            links_after: None,
            links_done: false,
            events: VecDeque::new(),
            events_after: None,
            events_done: false,
        }
    }

    async fn next_link(&mut self) -> AppResult<Option<AuditLink>> {
        if self.links.is_empty() && !self.links_done {
            let page = self.app.store.audit_links(self.tenant_id, self.links_after, PAGE).await?;
            self.links_done = page.len() < PAGE as usize;
            self.links_after = page.last().map(|l| l.cursor).or(self.links_after);
            self.links.extend(page);
        }
        Ok(self.links.pop_front())
    }

    async fn peek_event(&mut self) -> AppResult<Option<&EventRecord>> {
        if self.events.is_empty() && !self.events_done {
            let filter = EventFilter { after_cursor: self.events_after, limit: PAGE, ..EventFilter::default() };
            let page = self.app.store.events(self.tenant_id, filter).await?;
            self.events_done = page.len() < PAGE as usize;
            self.events_after = page.last().map(|e| e.cursor).or(self.events_after);
            self.events.extend(page);
        }
        Ok(self.events.front())
    }

    /// The next event, when it comes before `cursor`: one the chain does not hold.
    async fn event_before(&mut self, cursor: i64) -> AppResult<Option<EventRecord>> {
        let before = self.peek_event().await?.is_some_and(|e| e.cursor < cursor);
        Ok(if before { self.events.pop_front() } else { None })
    }

    /// The next event, when it is the one at `cursor`.
    async fn event_at(&mut self, cursor: i64) -> AppResult<Option<EventRecord>> {
        let at = self.peek_event().await?.is_some_and(|e| e.cursor == cursor);
        Ok(if at { self.events.pop_front() } else { None })
    }
}
