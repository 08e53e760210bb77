//! The one client of the loopctl API: the CLI, `loopctl mcp` (over HTTP, and in-process at
//! the server's `/mcp`), the runner and the bench all send through it, so answers are decoded,
//! errors typed ([`loopctl_api::ErrorCode`]) and retries made in one place.
//!
//! Idempotent requests (GET) are retried on connection failures; mutating requests carry an
//! `Idempotency-Key` so that a retry after a lost answer is never applied twice (a retry that
//! finds its first attempt still running is told `idempotency_in_progress` and waits for it).
//! A 429 or 503 with `Retry-After` is retried after the time the server names, when the
//! request is safe to repeat.

mod batches;
mod live;
mod ops;
mod resolve;
mod transport;

use std::sync::Arc;
use std::time::Duration;

pub use batches::{DEFAULT_IMPORT_BATCH, import_batches};
pub use live::LiveEvents;
use loopctl_api::{ErrorBody, ErrorCode, ExitClass};
pub use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;
pub use transport::{
    BodyStream, BoxFuture, HttpTransport, Incoming, Outgoing, Streamed, Transport, Unanswered, encode_component,
    path_with_query,
};

/// What went wrong talking to the server.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server refused, with its error body.
    #[error("{}", error.message)]
    Api { status: u16, error: Box<ErrorBody>, body: Value },
    /// No answer: connection refused, DNS, timeout.
    #[error("cannot reach the loopctl server at {server}: {reason}; is it running? (`loopctl up`, or check --server)")]
    Unreachable { server: String, reason: String },
    /// The answer was not the JSON we expected.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// A setup problem (bad URL, TLS).
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The server's stable error code, when the server answered with one.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// Whether the server refused with `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.error_code().is_some_and(|c| c.as_str() == code.as_str())
    }

    /// The code as text: the server's, or a local one (`unreachable`, `protocol`, `config`).
    pub fn code(&self) -> &str {
        match self {
            ClientError::Api { error, .. } => error.code.as_str(),
            ClientError::Unreachable { .. } => "unreachable",
            ClientError::Protocol(_) => "protocol",
            ClientError::Config(_) => "config",
        }
    }

    /// How the CLI exits for this error.
    pub fn exit_class(&self) -> ExitClass {
        match self {
            ClientError::Api { error, .. } => error.code.exit_class(),
            ClientError::Unreachable { .. } => ExitClass::Unreachable,
            ClientError::Protocol(_) | ClientError::Config(_) => ExitClass::Failure,
        }
    }
}

/// How many times a request is sent at most.
const MAX_ATTEMPTS: u32 = 4;
/// The longest a retry waits for, whatever `Retry-After` says.
const MAX_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Client {
    transport: Arc<dyn Transport>,
    key: Option<String>,
}

impl Client {
    /// A client for `server` (`http://127.0.0.1:4000`) with an optional bearer key.
    ///
    /// # Errors
    /// When the TLS stack cannot be set up.
    pub fn new(server: &str, key: Option<String>) -> Result<Client, ClientError> {
        let transport = HttpTransport::new(server).map_err(ClientError::Config)?;
        Ok(Client { transport: Arc::new(transport), key })
    }

    /// A client over any transport (the server's in-process router, for `/mcp`).
    pub fn over(transport: Arc<dyn Transport>, key: Option<String>) -> Client {
        Client { transport, key }
    }

    pub fn server(&self) -> &str {
        self.transport.server()
    }

    /// Any request, answered as JSON (`Null` for 204).
    ///
    /// # Errors
    /// The server's error (with its stable code), or why it could not be reached.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        query: &[(&str, String)],
        headers: &[(&str, String)],
    ) -> Result<Value, ClientError> {
        let body = body.map(|b| serde_json::to_vec(&b)).transpose().map_err(|e| ClientError::Config(e.to_string()))?;
        let answer = self.exchange(method, &path_with_query(path, query), body, headers).await?;
        decode_json(&answer)
    }

    /// A typed call: `body` serialized as JSON, the answer decoded as `T`.
    ///
    /// # Errors
    /// The server's error, why it could not be reached, or an answer that is not a `T`.
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        headers: &[(&str, String)],
    ) -> Result<T, ClientError> {
        let body = body.map(serde_json::to_vec).transpose().map_err(|e| ClientError::Config(e.to_string()))?;
        let answer = self.exchange(method, path, body, headers).await?;
        let text = if answer.body.iter().all(u8::is_ascii_whitespace) { &b"null"[..] } else { &answer.body[..] };
        serde_json::from_slice(text).map_err(|err| {
            ClientError::Protocol(format!("HTTP {} from {path}: {err}: {}", answer.status, snippet(&answer.body)))
        })
    }

    /// Sends until there is an answer worth returning: a success or a refusal; waits and
    /// sends again when the server says so and the request is safe to repeat.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, String)],
    ) -> Result<Incoming, ClientError> {
        let idempotent = method == Method::GET;
        let idempotency_key = (!idempotent).then(|| uuid::Uuid::now_v7().to_string());
        let mut all_headers: Vec<(String, String)> =
            headers.iter().map(|(name, value)| ((*name).to_string(), value.clone())).collect();
        if let Some(key) = &self.key {
            all_headers.push(("authorization".into(), format!("Bearer {key}")));
        }
        if let Some(key) = &idempotency_key {
            all_headers.push(("idempotency-key".into(), key.clone()));
        }
        let request = Outgoing { method, path: path.to_string(), headers: all_headers, body };
        for attempt in 1..=MAX_ATTEMPTS {
            let last = attempt == MAX_ATTEMPTS;
            match self.transport.send(request.clone()).await {
                Ok(answer) if !last && should_wait(&answer) => {
                    let wait = answer
                        .retry_after
                        .unwrap_or(Duration::from_secs(1))
                        .clamp(Duration::from_millis(100), MAX_WAIT);
                    tokio::time::sleep(wait).await;
                }
                Ok(answer) if (200..300).contains(&answer.status) => return Ok(answer),
                Ok(answer) => return Err(refusal(&answer)),
                // A refused connection never reached the server: safe to retry any request.
                // One that may have arrived is retried only when repeating it is harmless.
                Err(failure) if !last && (!failure.may_have_arrived || idempotent || idempotency_key.is_some()) => {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(failure) => {
                    return Err(ClientError::Unreachable {
                        server: self.transport.server().to_string(),
                        reason: failure.reason,
                    });
                }
            }
        }
        Err(ClientError::Unreachable { server: self.transport.server().to_string(), reason: "gave up".into() })
    }
}

/// The server asked to come back later, and every request this client sends is safe to
/// repeat (GETs, and mutations under their `Idempotency-Key`): an earlier copy still running
/// (409 with `Retry-After`), over the rate budget (429), or busy (503).
fn should_wait(answer: &Incoming) -> bool {
    matches!(answer.status, 429 | 503) || (answer.status == 409 && answer.retry_after.is_some())
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

fn decode_json(answer: &Incoming) -> Result<Value, ClientError> {
    if answer.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&answer.body)
        .map_err(|_| ClientError::Protocol(format!("HTTP {}, not JSON: {}", answer.status, snippet(&answer.body))))
}

/// A non-2xx answer as a typed refusal; one without the error shape still gets a code.
fn refusal(answer: &Incoming) -> ClientError {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let error = serde_json::from_value::<ErrorBody>(body["error"].clone()).unwrap_or_else(|_| ErrorBody {
        status: answer.status,
        code: if answer.status == 503 { ErrorCode::Unavailable } else { ErrorCode::Internal },
        message: format!("the server answered HTTP {}: {}", answer.status, snippet(&answer.body)),
        context: None,
        details: None,
    });
    ClientError::Api { status: answer.status, error: Box::new(error), body }
}

/// Whether two server URLs name the same server: scheme, host and port compared as URLs
/// (`http://HOST:80/` is `http://host`), else the text without trailing slashes. Used to
/// decide whether a key may go somewhere, so anything unclear counts as different.
pub fn same_server(a: &str, b: &str) -> bool {
    let origin = |url: &str| {
        reqwest::Url::parse(url.trim()).ok().map(|url| {
            let path = url.path().trim_end_matches('/').to_string();
            (url.scheme().to_string(), url.host_str().map(str::to_ascii_lowercase), url.port_or_known_default(), path)
        })
    };
    match (origin(a), origin(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/'),
    }
}

#[cfg(test)]
mod tests {
    use super::same_server;

    #[test]
    fn a_server_is_the_same_only_when_scheme_host_and_port_agree() {
        assert!(same_server("http://127.0.0.1:4000", "http://127.0.0.1:4000/"));
        assert!(same_server("http://Example.com", "http://example.com:80"));
        assert!(!same_server("http://127.0.0.1:4000", "http://127.0.0.1:4001"));
        assert!(!same_server("http://127.0.0.1:4000", "https://127.0.0.1:4000"));
        assert!(!same_server("http://localhost:4000", "http://127.0.0.1:4000"));
        assert!(!same_server("http://127.0.0.1:4000", "http://127.0.0.1:4000.evil.example"));
    }
}
