//! Dashboard sessions: `POST /login` trades an API key for a random session id in an
//! `HttpOnly`, `SameSite=Strict` cookie. The server keeps, per session, the SHA-256 of the
//! key (never the key) and the session's CSRF token, keyed by the SHA-256 of the session id
//! (a memory dump shows no usable cookie). Every request re-authenticates the key hash, so a
//! revoked or expired key ends its sessions at once.
//!
//! Sessions live in this server's memory: behind a load balancer, pin a browser to one
//! instance (or sign in again after a restart).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use loopctl_app::AppResult;
use loopctl_app::keys;

pub(crate) const SESSION_COOKIE: &str = "loopctl_session";
pub(crate) const LOGIN_COOKIE: &str = "loopctl_login";

/// A session ends this long after sign-in, whatever happens.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions are kept; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone)]
pub(crate) struct Session {
    pub key_hash: Vec<u8>,
    pub csrf: String,
    started: Instant,
}

#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<Vec<u8>, Session>>);

impl Sessions {
    /// A new session for the key with this hash: the cookie value and the CSRF token.
    pub fn start(&self, key_hash: Vec<u8>) -> AppResult<(String, String)> {
        let (id, csrf) = (keys::random_token()?, keys::random_token()?);
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, s| s.started.elapsed() < SESSION_LIFETIME);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.started).map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(keys::hash(&id), Session { key_hash, csrf: csrf.clone(), started: Instant::now() });
        Ok((id, csrf))
    }

    /// The session of a cookie value, if it is one of ours and still alive.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let hash = keys::hash(id);
        match map.get(&hash) {
            Some(session) if session.started.elapsed() < SESSION_LIFETIME => Some(session.clone()),
            Some(_) => {
                map.remove(&hash);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, id: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&keys::hash(id));
    }
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Served over TLS (directly or behind a proxy that says so): cookies get `Secure`.
pub(crate) fn over_tls(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` over TLS; `max_age`
/// `Some(0)` deletes it, `None` makes it last as long as the browser session.
pub(crate) fn set_cookie(name: &str, value: &str, path: &str, tls: bool, max_age: Option<u64>) -> String {
    let mut cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if tls {
        cookie.push_str("; Secure");
    }
    cookie
}

/// The form's CSRF token equals the session's (in constant time).
pub(crate) fn same_token(expected: &str, sent: &str) -> bool {
    keys::same_hash(expected.as_bytes(), sent.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_and_gone_after_sign_out() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.start(vec![1, 2, 3]).expect("random");
        let found = sessions.get(&id).expect("the session");
        assert_eq!((found.key_hash, found.csrf), (vec![1, 2, 3], csrf));
        assert!(sessions.get("forged").is_none());
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn the_server_keeps_neither_the_session_id_nor_the_key() {
        let sessions = Sessions::default();
        let (id, _) = sessions.start(keys::hash("lc_secret")).expect("random");
        let map = sessions.0.lock().expect("lock");
        assert!(!map.contains_key(id.as_bytes()));
        assert!(map.values().all(|s| s.key_hash != b"lc_secret"));
    }

    #[test]
    fn cookies_are_read_by_name_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; loopctl_session=abc; b=2".parse().expect("header"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
