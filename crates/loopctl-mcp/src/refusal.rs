//! Refusals the MCP layer makes itself, before any request (a tool's arguments, a local file,
//! no key configured), in the client's error type: a tool's `isError` result reads the same
//! whether the server or this layer said no.

use loopctl_api::{ErrorBody, ErrorCode};
use loopctl_client::ClientError;
use serde_json::Value;

/// A refusal with `code` and the status the server answers it with.
pub(crate) fn refusal(code: ErrorCode, message: impl Into<String>) -> ClientError {
    let status = code.http_status();
    let error = ErrorBody { status, code, message: message.into(), context: None, details: None };
    // Nothing came over the wire, so there is no body to keep.
    ClientError::Api { status, error: Box::new(error), body: Value::Null }
}

/// A mistake in the tool's arguments, found before any request.
pub(crate) fn invalid(message: impl Into<String>) -> ClientError {
    refusal(ErrorCode::ValidationFailed, message)
}

/// `<code>: <message>`, as every tool error reads.
pub(crate) fn line(err: &ClientError) -> String {
    format!("{}: {err}", err.code())
}
