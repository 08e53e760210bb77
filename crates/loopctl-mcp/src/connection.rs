//! Where a session's tool calls go, and as whom. stdio mode (`loopctl mcp`) talks to a server
//! over HTTP with the process's one key; the server's `/mcp` calls its own router in-process
//! with the MCP caller's bearer key. Either way the tools send through [`Client`], so
//! decoding, typed errors and retries are the client's, and one MCP session is one identity.

use std::sync::Arc;

use loopctl_api::ErrorCode;
use loopctl_client::{Client, ClientError, Transport};

use crate::refusal::refusal;

pub enum Connection {
    /// stdio mode: the server over HTTP with this process's one key.
    Remote(Client),
    /// stdio mode without a key: every call says how to configure one.
    Keyless { server: String },
    /// `/mcp` inside the server: each request with its own caller's key, never another.
    InProcess(Arc<dyn Transport>),
}

impl Connection {
    /// The client for one MCP request; `authorization` is that request's own header (HTTP
    /// mode).
    ///
    /// # Errors
    /// Without a key configured (stdio): how to configure one.
    pub(crate) fn client(&self, authorization: Option<&str>) -> Result<Client, ClientError> {
        match self {
            Connection::Remote(client) => Ok(client.clone()),
            Connection::Keyless { server } => Err(missing_key(server)),
            Connection::InProcess(transport) => Ok(Client::over(transport.clone(), caller_key(authorization))),
        }
    }
}

fn missing_key(server: &str) -> ClientError {
    refusal(
        ErrorCode::Unauthorized,
        format!(
            "no API key configured for calls to {server}; set one of LOOPCTL_ORCH_KEY, LOOPCTL_AGENT_KEY, \
             LOOPCTL_USER_KEY or LOOPCTL_API_KEY (one per MCP server) in the MCP server's environment, or run \
             `loopctl auth login`"
        ),
    )
}

/// The key of `Authorization: Bearer <key>`, read exactly as the server reads it, so the
/// in-process calls carry the very key the server authenticated this MCP request with.
fn caller_key(authorization: Option<&str>) -> Option<String> {
    loopctl_api::bearer_key(authorization?).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::caller_key;

    #[test]
    fn the_in_process_client_carries_exactly_the_key_the_caller_authenticated_with() {
        assert_eq!(caller_key(Some("Bearer lc_caller")).as_deref(), Some("lc_caller"));
        assert_eq!(caller_key(Some("Bearer  lc_caller ")).as_deref(), Some("lc_caller"));
        // Whatever the server would not read as a bearer key is sent as no key (a 401), never
        // as some other key.
        for header in [None, Some(""), Some("Bearer "), Some("bearer lc_caller"), Some("Basic lc_caller")] {
            assert_eq!(caller_key(header), None, "{header:?}");
        }
    }
}
