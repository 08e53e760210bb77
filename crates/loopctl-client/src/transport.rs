//! How a request reaches a loopctl server: over HTTP ([`HttpTransport`], reqwest with rustls),
//! or in-process through the server's own router (the server's `/mcp` implements
//! [`Transport`] for that). The client above it is the same either way, so decoding, errors
//! and retries are written once.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed `Send` future, so that [`Transport`] stays dyn-compatible.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request under the server root: `path` already carries its query string.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: reqwest::Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// A JSON body.
    pub body: Option<Vec<u8>>,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub status: u16,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// The request did not get an answer.
#[derive(Debug, Clone)]
pub struct Unanswered {
    pub reason: String,
    /// A refused connection never reached the server; a timeout may have.
    pub may_have_arrived: bool,
}

/// An answer whose body arrives in parts (a live stream of server-sent events).
pub trait BodyStream: Send {
    /// The next part of the body; `None` once the server ended it.
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, Unanswered>>;
}

/// A streamed answer: its status, and its body as it comes.
pub struct Streamed {
    pub status: u16,
    pub body: Box<dyn BodyStream>,
}

/// Sends a request and returns the server's answer, whatever its status.
pub trait Transport: Send + Sync {
    /// Where requests go, for messages (`http://127.0.0.1:4000`, `in-process`).
    fn server(&self) -> &str;
    fn send(&self, request: Outgoing) -> BoxFuture<'_, Result<Incoming, Unanswered>>;
    /// Sends a request whose answer is read as it arrives, without a time limit on the whole
    /// answer. Transports that cannot stream say so.
    fn open_stream(&self, request: Outgoing) -> BoxFuture<'_, Result<Streamed, Unanswered>> {
        let _ = request;
        Box::pin(async { Err(Unanswered { reason: "this transport cannot stream".into(), may_have_arrived: false }) })
    }
}

/// reqwest's body, read a chunk at a time.
struct HttpBody(reqwest::Response);

impl BodyStream for HttpBody {
    fn next_chunk(&mut self) -> BoxFuture<'_, Result<Option<Vec<u8>>, Unanswered>> {
        Box::pin(async move {
            match self.0.chunk().await {
                Ok(chunk) => Ok(chunk.map(|c| c.to_vec())),
                Err(err) => Err(Unanswered { reason: short_reason(&err), may_have_arrived: true }),
            }
        })
    }
}

/// A live stream stays open for as long as the reader wants it (a day at most per request).
const STREAM_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// reqwest over HTTP(S).
pub struct HttpTransport {
    base: String,
    http: reqwest::Client,
}

impl HttpTransport {
    /// # Errors
    /// When the TLS stack cannot be set up.
    pub fn new(server: &str) -> Result<HttpTransport, String> {
        // One crypto provider for the whole process (ring); installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("loopctl/", env!("CARGO_PKG_VERSION")));
        if server.starts_with("http://") {
            // A plain-HTTP server needs no certificates: skip loading the platform's roots
            // (most of a short CLI call's start-up). Any https:// redirect then fails closed.
            builder = builder.tls_certs_only(std::iter::empty());
        }
        let http = builder.build().map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(HttpTransport { base: server.trim_end_matches('/').to_string(), http })
    }
}

impl Transport for HttpTransport {
    fn server(&self) -> &str {
        &self.base
    }

    fn open_stream(&self, request: Outgoing) -> BoxFuture<'_, Result<Streamed, Unanswered>> {
        Box::pin(async move {
            let response = self
                .builder(&request)
                .timeout(STREAM_LIMIT)
                .send()
                .await
                .map_err(|err| Unanswered { reason: short_reason(&err), may_have_arrived: !err.is_connect() })?;
            Ok(Streamed { status: response.status().as_u16(), body: Box::new(HttpBody(response)) })
        })
    }

    fn send(&self, request: Outgoing) -> BoxFuture<'_, Result<Incoming, Unanswered>> {
        Box::pin(async move {
            let mut builder = self.builder(&request);
            if let Some(body) = request.body {
                builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
            }
            let response = builder
                .send()
                .await
                .map_err(|err| Unanswered { reason: short_reason(&err), may_have_arrived: !err.is_connect() })?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response
                .bytes()
                .await
                .map_err(|err| Unanswered { reason: short_reason(&err), may_have_arrived: true })?
                .to_vec();
            Ok(Incoming { status, retry_after, body })
        })
    }
}

impl HttpTransport {
    fn builder(&self, request: &Outgoing) -> reqwest::RequestBuilder {
        let mut builder = self.http.request(request.method.clone(), format!("{}{}", self.base, request.path));
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
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

/// Percent-encodes one path segment or query value (RFC 3986 unreserved characters stay).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `path?k=v&…` with the values encoded.
pub fn path_with_query(path: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect();
    format!("{path}?{}", pairs.join("&"))
}
