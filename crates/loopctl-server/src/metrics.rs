//! `/metrics` (Prometheus text format) and `/ready`. The recorder is the process's one
//! `metrics` recorder, installed by the first server of the process: requests by route,
//! method and status with a latency histogram (this module's middleware), transitions by
//! action (the service layer), refusals by code (every `ApiError` answered), the live
//! streams open (`routes::events`), webhook deliveries by outcome, and at each scrape the
//! store's connections, its writer queue and the claims in flight and stale. Labels carry routes, never ids or tenants, so the
//! endpoint tells an operator how the server runs and nobody what a tenant does.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Latency buckets, in seconds: a millisecond to ten seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The process's recorder's handle. Where another recorder was installed first (a host
/// process of its own), `/metrics` renders what this one holds: nothing.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = || {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new())
        };
        builder().install_recorder().unwrap_or_else(|err| {
            tracing::warn!(%err, "a metrics recorder is installed already; /metrics stays empty");
            builder().build_recorder().handle()
        })
    })
}

/// Installs the recorder (once per process), so the first requests are counted too.
pub(crate) fn install() {
    handle();
}

/// Counts each request by its route template (never its ids), method and status.
pub(crate) async fn count(request: Request, next: Next) -> Response {
    // `/api/v1/stories/:id`: the template in the colon form, which every text-format parser
    // reads (some stop at a brace, even inside a quoted label).
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |path| path.as_str().replace('{', ":").replace('}', ""));
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("loopctl_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("loopctl_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`. The store's gauges are read as the scrape asks: its connections, the
/// writer's queue, and the claims in flight with how many are stale (every tenant's, from the
/// claim-lease index).
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    let store = state.app.store();
    let pressure = store.pressure();
    metrics::gauge!("loopctl_store_pool_connections").set(f64::from(pressure.pool_size));
    metrics::gauge!("loopctl_store_pool_idle").set(f64::from(pressure.pool_idle));
    if let Some(queue) = pressure.writer_queue {
        metrics::gauge!("loopctl_store_writer_queue").set(queue as f64);
    }
    match store.claims_in_flight(state.app.now()).await {
        Ok((in_flight, stale)) => {
            metrics::gauge!("loopctl_claims_in_flight").set(in_flight as f64);
            metrics::gauge!("loopctl_claims_stale").set(stale as f64);
        }
        Err(err) => tracing::warn!(%err, "counting the claims in flight for /metrics failed"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle().render()).into_response()
}

/// `GET /ready`: 200 while the store answers, 503 otherwise (take the instance out of the
/// load balancer, not the process down).
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    match state.app.store().ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"ready": true}))).into_response(),
        Err(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"ready": false, "store": "unavailable"})))
                .into_response()
        }
    }
}

/// One open live stream, counted while it lives.
pub(crate) struct StreamOpen;

impl StreamOpen {
    pub fn new() -> StreamOpen {
        metrics::gauge!("loopctl_sse_clients").increment(1.0);
        StreamOpen
    }
}

impl Drop for StreamOpen {
    fn drop(&mut self) {
        metrics::gauge!("loopctl_sse_clients").decrement(1.0);
    }
}
