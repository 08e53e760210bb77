//! The HTTP face of loopctl: an axum router over the service layer.
//!
//! Handlers are thin: extract, call one `loopctl_app::App` method, wrap the answer in
//! the reference's envelope. Routes are registered through `utoipa_axum::routes!`, so the
//! OpenAPI document at `/api/v1/openapi.json` is generated from the same code that serves.

mod dashboard;
mod error;
mod idempotency;
mod limits;
mod mcp;
mod metrics;
mod openapi;
mod routes;
mod webhook_sender;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use loopctl_api::ErrorCode;
use loopctl_app::{App, AppError};
use loopctl_store::Store;
use tokio::net::TcpListener;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

/// Bodies above this are refused with `payload_too_large` (imports have their own limit).
pub const BODY_LIMIT: usize = 1 << 20;
pub const IMPORT_BODY_LIMIT: usize = 16 << 20;

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub limiter: Arc<limits::RateLimiter>,
    /// The dashboard's signed-in browsers.
    pub(crate) sessions: Arc<dashboard::Sessions>,
}

/// How `serve_with` runs the server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Per-key and per-tenant request limits (off for `loopctl up`).
    pub rate_limits: bool,
    /// The keys verification runs are signed with (from the server's key directory);
    /// without them a key of this process only.
    pub signing_keys: Option<loopctl_app::signing::SigningKeys>,
    /// Where the app reads the time (leases, expiry); the system clock when absent.
    pub clock: Option<Arc<dyn loopctl_app::Clock>>,
    /// Webhooks may reach private, loopback and link-local addresses.
    pub allow_private_webhooks: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { rate_limits: true, signing_keys: None, clock: None, allow_private_webhooks: false }
    }
}

/// A request still without an answer after this is cut off with a 408 (the live feed and
/// `/mcp` stream their bodies; only the wait for the answer's head counts).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Every request is logged once it is answered (method, path, status, latency) under a
/// request id, which the answer carries back in `x-request-id` (a caller's own id is kept).
fn observed(router: Router) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &axum::http::Request<_>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Millis))
        .on_failure(());
    router.layer(
        tower::ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::new(request_id)),
    )
}

/// How often the server returns stories with expired leases to the queue.
const LEASE_SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How often events are chained into the audit chain (and its head signed): what is newer
/// is not yet tamper-evident.
const AUDIT_CHAIN_EVERY: Duration = Duration::from_secs(2);
/// How long a stopping server waits for its open connections (live streams stay open until
/// their clients leave).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The whole router: `/health`, `/api/v1/*`, the OpenAPI document, the dashboard, and `/mcp` (loopback
/// `Host` names only; `serve` accepts any when it listens elsewhere).
pub fn router(store: Arc<dyn Store>) -> Router {
    let state =
        AppState { app: App::new(store), limiter: Arc::new(limits::RateLimiter::new(true)), sessions: Arc::default() };
    observed(mcp::with_mcp(state.clone(), router_for(state), false))
}

/// The OpenAPI document of `/api/v1`, as `/api/v1/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_routes().1
}

/// The API's routes and the document generated from them.
fn api_routes() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, openapi) = OpenApiRouter::with_openapi(openapi::base())
        .merge(routes::tenancy::routes())
        .merge(routes::work::routes())
        .merge(routes::lifecycle::routes())
        .merge(routes::queries::routes())
        .merge(routes::feed::routes())
        .merge(routes::skills::routes())
        .merge(routes::webhooks::routes())
        .merge(routes::dispatch::routes())
        .merge(routes::evidence::routes())
        .merge(routes::import::routes())
        .split_for_parts();
    (api, openapi::complete(openapi))
}

fn router_for(state: AppState) -> Router {
    metrics::install();
    let (api, openapi) = api_routes();
    let openapi = Arc::new(openapi);
    let spec = move || {
        let openapi = openapi.clone();
        async move { axum::Json(openapi.as_ref().clone()) }
    };
    Router::new()
        .merge(api)
        .route("/health", axum::routing::get(routes::health))
        .route("/api/v1", axum::routing::get(routes::index))
        .route("/api/v1/openapi.json", axum::routing::get(spec.clone()))
        .route("/api/v1/openapi", axum::routing::get(spec))
        .route("/metrics", axum::routing::get(metrics::render))
        .route("/ready", axum::routing::get(metrics::ready))
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), idempotency::replay))
        .route_layer(axum::middleware::from_fn(metrics::count))
        .layer(axum::middleware::from_fn(refuse_nul))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| error::ApiError::from(AppError::internal()).into_response()))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(axum::middleware::from_fn(error::json_refusals))
        .with_state(state)
}

/// A NUL character in a path or query is never meaningful (and PostgreSQL cannot store it):
/// refuse it before any handler runs.
async fn refuse_nul(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let uri = request.uri();
    let has_nul = |text: &str| text.as_bytes().windows(3).any(|w| w.eq_ignore_ascii_case(b"%00"));
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return ApiError::from(AppError::validation("the URL contains a NUL (%00) character; remove it"))
            .into_response();
    }
    next.run(request).await
}

async fn not_found() -> impl IntoResponse {
    ApiError::from(AppError::new(ErrorCode::NotFound, "no such endpoint; see /api/v1/openapi.json for the API"))
}

async fn method_not_allowed() -> impl IntoResponse {
    let refusal =
        AppError::new(ErrorCode::NotFound, "this endpoint does not take that method; see /api/v1/openapi.json");
    ApiError::transport(StatusCode::METHOD_NOT_ALLOWED, refusal)
}

/// Serves until ctrl-c / SIGTERM; answers in-flight requests before returning.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(store: Arc<dyn Store>, listener: TcpListener) -> std::io::Result<()> {
    serve_with(store, listener, ServeOptions::default()).await
}

/// `serve` with options.
///
/// # Errors
/// When the address cannot be served.
pub async fn serve_with(store: Arc<dyn Store>, listener: TcpListener, options: ServeOptions) -> std::io::Result<()> {
    let signing = options.signing_keys.unwrap_or_else(loopctl_app::signing::SigningKeys::ephemeral);
    let mut app =
        App::with_signing_keys(store, signing).allowing_private_webhook_targets(options.allow_private_webhooks);
    if let Some(clock) = options.clock {
        app = app.with_clock(clock);
    }
    let state = AppState {
        app: app.clone(),
        limiter: Arc::new(limits::RateLimiter::new(options.rate_limits)),
        sessions: Arc::default(),
    };
    let sweeper = tokio::spawn(sweep_leases(app.clone()));
    let chainer = tokio::spawn(chain_audit_log(app.clone()));
    let webhooks = tokio::spawn(webhook_sender::send_webhooks(app.clone()));
    // On loopback, `/mcp` keeps rmcp's DNS-rebinding check; elsewhere every request is
    // authenticated by its bearer key, so any `Host` is accepted.
    let any_host = listener.local_addr().is_ok_and(|addr| !addr.ip().is_loopback());
    let router = observed(mcp::with_mcp(state.clone(), router_for(state), any_host));
    // Answers go out at once: with Nagle's algorithm a keep-alive client (every agent's
    // connection pool) waits for a delayed ACK on each answer written in two parts.
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
    });
    // On ctrl-c / SIGTERM: stop accepting, let requests in flight finish, but do not wait
    // longer than `SHUTDOWN_GRACE` for clients that hold a live stream open (every `watch`).
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let graceful = async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    };
    let serving = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(graceful)
        .into_future();
    let grace = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let served = tokio::select! {
        served = serving => served,
        () = grace => {
            tracing::info!("live streams still open after {}s; closing them", SHUTDOWN_GRACE.as_secs());
            Ok(())
        }
    };
    sweeper.abort();
    chainer.abort();
    webhooks.abort();
    served
}

/// Chains committed events into each tenant's audit chain and signs its head.
async fn chain_audit_log(app: App) {
    let mut tick = tokio::time::interval(AUDIT_CHAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match app.chain_audit().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(links = n, "chained events into the audit chain"),
            Err(err) => tracing::warn!(%err, "chaining the audit log failed"),
        }
    }
}

/// Crashed or silent agents lose their claim when the lease ends: the story goes back to
/// pending with a new epoch, so the old holder's late writes are refused.
async fn sweep_leases(app: App) {
    let mut tick = tokio::time::interval(LEASE_SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for round in 0u64.. {
        tick.tick().await;
        if round % 60 == 0 {
            let before = app.now() - idempotency::KEEP_FOR;
            let purge = loopctl_store::WriteOp::PurgeIdempotentResponses { before };
            if let Err(err) = app.store().commit(vec![purge]).await {
                tracing::warn!(%err, "purging old idempotent answers failed");
            }
        }
        match app.sweep_expired_leases().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(reclaimed = n, "returned stories with expired leases to the queue"),
            Err(err) => tracing::warn!(%err, "lease sweep failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
    tokio::time::sleep(Duration::from_millis(10)).await;
}
