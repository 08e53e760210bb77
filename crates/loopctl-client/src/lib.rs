//! A small client of the loopctl HTTP API: JSON in, JSON out, errors with their stable code.
//!
//! Idempotent requests (GET) are retried on connection failures; mutating requests carry an
//! `Idempotency-Key` so that a retry after a lost answer is never applied twice (a retry that
//! finds its first attempt still running is told `idempotency_in_progress` and waits for it).

use std::time::Duration;

pub use reqwest::Method;
use reqwest::StatusCode;
use serde_json::Value;
use thiserror::Error;

/// What went wrong talking to the server.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{message}")]
    Api { status: u16, code: String, message: String, body: Value },
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
    /// The stable error code (`not_found`, `stale_claim`, …), or a local one.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Api { code, .. } => code,
            ClientError::Unreachable { .. } => "unreachable",
            ClientError::Protocol(_) => "protocol",
            ClientError::Config(_) => "config",
        }
    }
}

#[derive(Clone)]
pub struct Client {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for `server` (`http://127.0.0.1:4000`) with an optional bearer key.
    ///
    /// # Errors
    /// When the TLS stack cannot be set up.
    pub fn new(server: &str, key: Option<String>) -> Result<Client, ClientError> {
        // One crypto provider for the whole process (ring); installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("loopctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ClientError::Config(format!("cannot build the HTTP client: {err}")))?;
        Ok(Client { base: server.trim_end_matches('/').to_string(), key, http })
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn get_query(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        self.send(Method::GET, path, None, query).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        self.send(Method::PUT, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Result<Value, ClientError> {
        self.send(Method::PATCH, path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// Sends a request with extra headers (e.g. `X-Claim-Epoch`).
    pub async fn post_with(&self, path: &str, body: Value, headers: &[(&str, String)]) -> Result<Value, ClientError> {
        self.request(Method::POST, path, Some(body), &[], headers).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        query: &[(&str, String)],
    ) -> Result<Value, ClientError> {
        self.request(method, path, body, query, &[]).await
    }

    /// Any request: method, path under the server, query, optional JSON body, extra headers.
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
        let url = format!("{}{}", self.base, path);
        let idempotent = method == Method::GET;
        let idempotency_key = (!idempotent).then(|| uuid::Uuid::now_v7().to_string());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), &url).query(query);
            if let Some(key) = &self.key {
                request = request.bearer_auth(key);
            }
            if let Some(key) = &idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send().await {
                // The same request is still running on the server (an earlier attempt of ours
                // whose answer we stopped waiting for): come back when it says, for its answer.
                Ok(response)
                    if attempt < 3
                        && response.status() == StatusCode::CONFLICT
                        && response.headers().contains_key(reqwest::header::RETRY_AFTER) =>
                {
                    let seconds = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(1);
                    tokio::time::sleep(Duration::from_secs(seconds.clamp(1, 5))).await;
                }
                Ok(response) => return decode(response).await,
                // A refused connection never reached the server: safe to retry any request.
                // A timeout may have: retry only what is idempotent or carries a key.
                Err(err)
                    if attempt < 3
                        && (err.is_connect() || (err.is_timeout() && (idempotent || idempotency_key.is_some()))) =>
                {
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(err) => {
                    return Err(ClientError::Unreachable { server: self.base.clone(), reason: short_reason(&err) });
                }
            }
        }
    }
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

fn short_reason(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "connection refused".into()
    } else {
        err.to_string()
    }
}

async fn decode(response: reqwest::Response) -> Result<Value, ClientError> {
    let status = response.status();
    let text = response.text().await.map_err(|err| ClientError::Protocol(err.to_string()))?;
    if status == StatusCode::NO_CONTENT || text.trim().is_empty() {
        return if status.is_success() {
            Ok(Value::Null)
        } else {
            Err(ClientError::Api {
                status: status.as_u16(),
                code: "internal".into(),
                message: format!("HTTP {status}"),
                body: Value::Null,
            })
        };
    }
    let body: Value = serde_json::from_str(&text).map_err(|_| {
        ClientError::Protocol(format!("HTTP {status}, not JSON: {}", text.chars().take(200).collect::<String>()))
    })?;
    if status.is_success() {
        return Ok(body);
    }
    let error = &body["error"];
    Err(ClientError::Api {
        status: status.as_u16(),
        code: error["code"].as_str().unwrap_or("internal").to_string(),
        message: error["message"].as_str().unwrap_or("the server refused the request").to_string(),
        body,
    })
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
