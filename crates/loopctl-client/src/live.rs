//! The live change feed (`GET /api/v1/events`, server-sent events) as a stream of events that
//! survives broken connections: it resumes with `Last-Event-ID` from the last event it handed
//! out, so across any number of reconnects every event comes once, in cursor order.

use std::time::Duration;

use loopctl_api::{ErrorBody, EventView};
use uuid::Uuid;

use crate::transport::{BodyStream, Outgoing, Streamed};
use crate::{Client, ClientError, Method, refusal};

/// The server sends a comment every 15 s; this long without a byte means the connection is dead.
const SILENT_FOR: Duration = Duration::from_secs(45);
/// Waits between attempts to reconnect, growing to the last.
const RECONNECT_WAITS: [u64; 5] = [200, 500, 1_000, 2_000, 5_000];

/// A project's (or the tenant's) events as they are committed.
pub struct LiveEvents {
    client: Client,
    path: String,
    after: i64,
    body: Option<Box<dyn BodyStream>>,
    pending: String,
    failures: usize,
}

impl Client {
    /// Follows the change feed from just after `after` (a cursor; 0 for the start).
    #[must_use]
    pub fn live_events(&self, project: Option<Uuid>, after: i64) -> LiveEvents {
        let path = project.map_or_else(|| "/api/v1/events".to_owned(), |p| format!("/api/v1/events?project_id={p}"));
        LiveEvents { client: self.clone(), path, after, body: None, pending: String::new(), failures: 0 }
    }
}

impl LiveEvents {
    /// The cursor of the last event handed out.
    #[must_use]
    pub fn cursor(&self) -> i64 {
        self.after
    }

    /// The next event; waits for it, reconnecting as often as it takes.
    ///
    /// # Errors
    /// The server's refusal (a bad key, an unknown project): reconnecting would not help.
    pub async fn next(&mut self) -> Result<EventView, ClientError> {
        loop {
            if let Some(event) = self.take_frame()? {
                return Ok(event);
            }
            let Some(body) = self.body.as_mut() else {
                self.connect().await?;
                continue;
            };
            match tokio::time::timeout(SILENT_FOR, body.next_chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    self.failures = 0;
                    self.pending.push_str(&String::from_utf8_lossy(&chunk));
                }
                // Ended, broken or silent: resume from the last event handed out.
                Ok(Ok(None) | Err(_)) | Err(_) => {
                    self.body = None;
                    self.pending.clear();
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        loop {
            let mut headers = vec![
                ("last-event-id".to_owned(), self.after.to_string()),
                ("accept".to_owned(), "text/event-stream".to_owned()),
            ];
            if let Some(key) = &self.client.key {
                headers.push(("authorization".into(), format!("Bearer {key}")));
            }
            let request = Outgoing { method: Method::GET, path: self.path.clone(), headers, body: None };
            match self.client.transport.open_stream(request).await {
                Ok(Streamed { status: 200, body }) => {
                    self.body = Some(body);
                    return Ok(());
                }
                Ok(Streamed { status, mut body }) if !matches!(status, 429 | 502 | 503 | 504) => {
                    let mut text = Vec::new();
                    while let Ok(Some(chunk)) = body.next_chunk().await {
                        text.extend(chunk);
                    }
                    return Err(refusal(&crate::transport::Incoming { status, retry_after: None, body: text }));
                }
                Ok(_) | Err(_) => {
                    let wait = RECONNECT_WAITS[self.failures.min(RECONNECT_WAITS.len() - 1)];
                    self.failures += 1;
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
            }
        }
    }

    /// Takes one complete frame from what was read: an event, or nothing yet. Comments
    /// (keep-alives) and frames at or before the cursor are skipped.
    fn take_frame(&mut self) -> Result<Option<EventView>, ClientError> {
        while let Some(end) = self.pending.find("\n\n") {
            let frame: String = self.pending.drain(..end + 2).collect();
            let mut kind = "message";
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    kind = if value.trim() == "error" { "error" } else { "event" };
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            if data.is_empty() {
                continue;
            }
            if kind == "error" {
                let error: ErrorBody = serde_json::from_str::<serde_json::Value>(&data)
                    .ok()
                    .and_then(|v| serde_json::from_value(v["error"].clone()).ok())
                    .ok_or_else(|| ClientError::Protocol(format!("an error frame that is not an error: {data}")))?;
                let status = error.status;
                return Err(ClientError::Api { status, error: Box::new(error), body: serde_json::Value::Null });
            }
            let event: EventView = serde_json::from_str(&data)
                .map_err(|err| ClientError::Protocol(format!("an event frame that is not an event ({err}): {data}")))?;
            if event.cursor > self.after {
                self.after = event.cursor;
                return Ok(Some(event));
            }
        }
        Ok(None)
    }
}
