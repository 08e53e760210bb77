//! How a request names its key: `Authorization: Bearer <key>`.

/// The key of an `Authorization` header value, read one way by every face: the server that
/// authenticates it, and the in-process `/mcp` that passes the same key on.
pub fn bearer_key(authorization: &str) -> Option<&str> {
    authorization.strip_prefix("Bearer ").map(str::trim).filter(|key| !key.is_empty())
}
