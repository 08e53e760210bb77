//! loopctl's use cases, shared by every face (HTTP, MCP, CLI through HTTP).
//!
//! Each use case authenticates nothing itself: it takes the `Principal` the face
//! resolved, checks the caller's role and the custody rules (through `loopctl-core`),
//! reads what it needs, writes one atomic batch with its change-feed events, and only
//! after the commit publishes those events to live subscribers.

mod error;
pub mod keys;
pub mod signing;
pub mod view;

mod audit;
mod auth;
mod bootstrap;
mod bulk;
mod deps;
mod dispatch;
mod evidence;
mod export;
mod feed;
mod free_json;
mod import;
mod lifecycle;
pub mod once;
mod queries;
mod remembered;
mod settings;
mod skills;
mod state;
mod tenancy;
mod usage;
pub mod webhooks;
mod work;

use loopctl_api::ErrorCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use loopctl_core::Role;
use loopctl_store::{ActorStamp, NewEvent, Store, StoryRecord, WriteOp};
use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

pub use audit::link_hash as audit_link_hash;
pub use auth::{KEY_CACHE_TTL, Principal};
pub use bootstrap::{Bootstrap, BootstrapRequest};
pub use bulk::*;
pub use error::AppError;
pub use export::ExportCursor;
pub use feed::*;
pub use import::*;
pub use queries::*;
pub use settings::{effective_settings, settings_json};
pub use skills::*;
pub use work::*;

pub type AppResult<T> = Result<T, AppError>;

/// A committed change, as live subscribers (SSE, webhooks) receive it.
#[derive(Debug, Clone)]
pub struct Published {
    pub tenant_id: Uuid,
    pub project_id: Option<Uuid>,
    pub cursor: i64,
    pub event: loopctl_api::EventView,
}

/// The service layer over one store.
#[derive(Clone)]
pub struct App {
    store: Arc<dyn Store>,
    events: broadcast::Sender<Published>,
    signing: signing::SigningKeys,
    clock: Arc<dyn Clock>,
    keys_seen: Arc<auth::KeyCache>,
    remembered: Arc<remembered::RememberedStories>,
    signed_heads: Arc<audit::SignedHeads>,
    webhook_keys: Arc<webhooks::WebhookKeys>,
}

/// Where the service layer reads the time: leases, token expiry, staleness and every
/// timestamp it writes. The system clock in production; a test moves a [`ManualClock`]
/// instead of sleeping.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn starting_at(at: DateTime<Utc>) -> ManualClock {
        ManualClock(std::sync::Mutex::new(at))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl App {
    /// An app over `store` that signs verification runs with a key of this process only;
    /// a server uses `with_signing_keys` and the keys of its key directory.
    pub fn new(store: Arc<dyn Store>) -> App {
        App::with_signing_keys(store, signing::SigningKeys::ephemeral())
    }

    pub fn with_signing_keys(store: Arc<dyn Store>, signing: signing::SigningKeys) -> App {
        let (events, _) = broadcast::channel(4096);
        let signed_heads = Arc::new(audit::SignedHeads::open(signing.dir()));
        let webhook_keys = Arc::new(webhooks::WebhookKeys::open(signing.dir()));
        App {
            store,
            events,
            signing,
            clock: Arc::new(SystemClock),
            keys_seen: Arc::default(),
            remembered: Arc::default(),
            signed_heads,
            webhook_keys,
        }
    }

    /// The same app reading the time from `clock`.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> App {
        App { clock, ..self }
    }

    /// The time as this app sees it.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Live feed of committed events, for SSE.
    /// Tenants whose events another process sharing the database committed (PostgreSQL);
    /// `None` on a store one process owns.
    pub fn commit_signals(&self) -> Option<futures_util::stream::BoxStream<'static, Uuid>> {
        self.store.commit_signals()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.events.subscribe()
    }

    /// Commits a batch and publishes its events after the commit, never before. Its events
    /// are stamped with this app's clock here, at the one place every event passes.
    async fn commit(&self, batch: Vec<WriteOp>) -> AppResult<Vec<i64>> {
        self.commit_answering(batch, None).await
    }

    /// Commits `batch`; `answer` is the transition's outcome this request answers with, which
    /// an HTTP request's marker can then carry complete (see `once`).
    async fn commit_answering(
        &self,
        mut batch: Vec<WriteOp>,
        answer: Option<&loopctl_api::TransitionOutcome>,
    ) -> AppResult<Vec<i64>> {
        let at = self.now();
        let mut events: Vec<NewEvent> = Vec::new();
        for op in &mut batch {
            if let WriteOp::AppendEvent(event) = op {
                event.inserted_at = at;
                events.push(event.clone());
            }
        }
        let changes_auth = auth::KeyCache::changed_by(&batch);
        let cursors = self.commit_with_marker(batch, answer).await?;
        if changes_auth {
            self.keys_seen.forget();
        }
        for (event, cursor) in events.into_iter().zip(cursors.iter().copied()) {
            let record = loopctl_store::EventRecord { cursor, event };
            let _ = self.events.send(Published {
                tenant_id: record.event.tenant_id,
                project_id: record.event.project_id,
                cursor,
                event: <loopctl_api::EventView as view::FromRecord<_>>::from_record(&record),
            });
        }
        Ok(cursors)
    }
}

/// Builds the change-feed event of a mutation by `who`.
fn event(
    who: &Principal,
    project_id: Option<Uuid>,
    entity: (&str, Uuid),
    action: &str,
    old_state: Value,
    new_state: Value,
) -> WriteOp {
    WriteOp::AppendEvent(NewEvent {
        id: Uuid::now_v7(),
        tenant_id: who.tenant_id,
        project_id,
        entity_type: entity.0.to_string(),
        entity_id: entity.1,
        action: action.to_string(),
        actor: stamp(who),
        old_state,
        new_state,
        metadata: Value::Object(Default::default()),
        // Stamped with the app's clock when the batch is committed.
        inserted_at: DateTime::<Utc>::MIN_UTC,
    })
}

fn stamp(who: &Principal) -> ActorStamp {
    ActorStamp {
        actor_type: who.actor_type().into(),
        key_id: Some(who.key_id),
        agent_id: who.agent_id,
        role: Some(who.role),
        label: if who.key_id.is_nil() {
            format!("system:{}", who.key_name)
        } else {
            format!("{}:{}", who.role, who.key_name)
        },
    }
}

/// The story's status fields, as old/new state of an event.
fn story_status(story: &StoryRecord) -> Value {
    let st = &story.state;
    serde_json::json!({
        "number": story.number,
        "agent_status": st.agent_status.as_str(),
        "verified_status": st.verified_status.as_str(),
        "assigned_agent_id": st.assigned_agent_id,
        "claim_epoch": st.claim_epoch,
        "iteration_count": st.iteration_count,
        "escalated": st.escalated,
        "escalation_locked": st.escalation_locked,
    })
}

/// Refuses unless the caller's role is one of `roles`.
fn require(who: &Principal, roles: &[Role], what: &str) -> AppResult<()> {
    // A dispatched token serves one story in one capacity; everything else is out of scope.
    if let Some(scope) = who.scope {
        return Err(AppError::new(
            ErrorCode::ScopeViolation,
            format!("this token was dispatched as {} for one story and may not {what}", scope.role.as_str()),
        ));
    }
    if roles.contains(&who.role) {
        return Ok(());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Err(AppError::forbidden(format!("the {} role may not {what}; this needs a {} key", who.role, names.join(" or "))))
}

/// Roles at or above orchestrator: the ones that manage work.
const MANAGERS: &[Role] = &[Role::Orchestrator, Role::User, Role::Superadmin];
/// Humans only.
const HUMANS: &[Role] = &[Role::User, Role::Superadmin];
/// Everyone with a tenant key.
/// Readers: every role, the runner's verifier included.
const ANYONE: &[Role] = &[Role::Verifier, Role::Agent, Role::Orchestrator, Role::User, Role::Superadmin];

/// Checks the length and presence of a text field.
fn text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::field(field, "can't be blank"));
    }
    if trimmed.chars().count() > max {
        return Err(AppError::field(field, format!("is longer than {max} characters")));
    }
    Ok(trimmed.to_string())
}

fn opt_text(field: &str, value: Option<&str>, max: usize) -> AppResult<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) if v.chars().count() > max => Err(AppError::field(field, format!("is longer than {max} characters"))),
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// A free JSON object (findings, artifact details): bounded in depth, numbers and size.
fn object(field: &str, value: Option<Value>) -> AppResult<Value> {
    free_json::object(field, value, free_json::MAX_FREE_JSON_BYTES)
}

/// The `metadata` of a project, epic, story or agent: bounded as `object`, to 64 KiB.
fn metadata(value: Option<Value>) -> AppResult<Value> {
    free_json::object("metadata", value, free_json::MAX_METADATA_BYTES)
}
