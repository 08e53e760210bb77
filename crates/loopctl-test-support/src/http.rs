//! A client of a running loopctl server: requests built with a key, answers that keep the
//! status and the JSON body together, and assertions on the wire's error shape.

use std::time::Duration;

use loopctl_api::ErrorCode;
use reqwest::Method;
use serde_json::{Value, json};

/// A server's base URL and a client for it.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    pub http: reqwest::Client,
}

/// Installs rustls' ring provider, the one the workspace builds (reqwest has none of its own).
pub fn install_crypto() {
    // Fails only when a provider is already installed (by another test): fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Api {
    pub fn new(base: impl Into<String>) -> Api {
        install_crypto();
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("build the reqwest client");
        Api { base: base.into(), http }
    }

    pub fn req(&self, method: Method, path: &str) -> Req {
        let url = format!("{}{path}", self.base);
        Req { rb: self.http.request(method.clone(), url), desc: format!("{method} {path}") }
    }

    /// One call, with a key and a JSON body when given.
    pub async fn call(&self, method: Method, key: Option<&str>, path: &str, body: Option<&Value>) -> Resp {
        let mut req = self.req(method, path);
        if let Some(key) = key {
            req = req.key(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await
    }

    pub async fn get(&self, key: &str, path: &str) -> Resp {
        self.call(Method::GET, Some(key), path, None).await
    }

    /// POST; a `Value::Null` body sends no body at all.
    pub async fn post(&self, key: &str, path: &str, body: Value) -> Resp {
        let body = (!body.is_null()).then_some(body);
        self.call(Method::POST, Some(key), path, body.as_ref()).await
    }

    pub async fn patch(&self, key: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, Some(key), path, Some(&body)).await
    }

    pub async fn put(&self, key: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, Some(key), path, Some(&body)).await
    }

    pub async fn delete(&self, key: &str, path: &str) -> Resp {
        self.call(Method::DELETE, Some(key), path, None).await
    }
}

/// A request being built.
pub struct Req {
    rb: reqwest::RequestBuilder,
    desc: String,
}

impl Req {
    pub fn key(mut self, key: &str) -> Req {
        self.rb = self.rb.bearer_auth(key);
        self
    }

    pub fn json(mut self, body: &Value) -> Req {
        self.rb = self.rb.json(body);
        self
    }

    /// A raw body with a content type (malformed JSON, oversized bodies).
    pub fn raw(mut self, body: impl Into<String>, content_type: &str) -> Req {
        let body: String = body.into();
        self.rb = self.rb.header("content-type", content_type).body(body);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.rb = self.rb.header(name, value);
        self
    }

    pub async fn send(self) -> Resp {
        let response = self.rb.send().await.unwrap_or_else(|err| panic!("{}: the request failed: {err}", self.desc));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_else(|err| panic!("{}: reading the body failed: {err}", self.desc));
        Resp { status, body: body_of(text), desc: self.desc }
    }
}

/// A body as JSON: `Null` when empty, the text as a JSON string when it is not JSON.
fn body_of(text: String) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// An answer: the status and the body (see `body_of`), and the request it answers.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub desc: String,
}

impl Resp {
    /// Asserts the status and answers the body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {} with body {}",
            self.desc, self.status, self.body
        );
        &self.body
    }

    /// Asserts a success (any 2xx) and answers the body.
    #[track_caller]
    pub fn success(&self) -> &Value {
        assert!(
            (200..300).contains(&self.status),
            "{}: expected success, got {} {}",
            self.desc,
            self.status,
            self.body
        );
        &self.body
    }

    /// Asserts an error answer: status, code, and the wire shape
    /// `{"error":{"status","code","message",…}}` with a code WIRE.md lists.
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.code()),
            (status, Some(code)),
            "{}: expected {status} {code}, got {} with body {}",
            self.desc,
            self.status,
            self.body
        );
        self.assert_error_shape();
        &self.body["error"]
    }

    /// The error code, when the body is an error.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// What is wrong with an error answer's shape, if anything.
    pub fn shape_problem(&self) -> Option<String> {
        let error = self.body.get("error")?;
        if !self.body.is_object() || !error.is_object() {
            return Some(format!("not the error shape {{\"error\":{{…}}}}: {}", self.body));
        }
        if error["status"] != json!(self.status) {
            return Some(format!("error.status differs from HTTP status {}: {}", self.status, self.body));
        }
        match error["code"].as_str() {
            Some(code) if code.parse::<ErrorCode>().is_ok() => {}
            _ => return Some(format!("error.code missing or not in WIRE.md's list: {}", self.body)),
        }
        if error["message"].as_str().is_none_or(|m| m.trim().is_empty()) {
            return Some(format!("error without message: {}", self.body));
        }
        None
    }

    #[track_caller]
    pub fn assert_error_shape(&self) {
        let error = &self.body["error"];
        assert_eq!(
            error["status"],
            json!(self.status),
            "{}: error.status differs from HTTP status: {}",
            self.desc,
            self.body
        );
        let code = error["code"].as_str().unwrap_or_else(|| panic!("{}: error without code: {}", self.desc, self.body));
        assert!(code.parse::<ErrorCode>().is_ok(), "{}: code `{code}` is not in WIRE.md's list", self.desc);
        let message = error["message"].as_str().unwrap_or_default();
        assert!(!message.trim().is_empty(), "{}: error without message: {}", self.desc, self.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_json_null_when_empty_and_a_string_when_not_json() {
        assert_eq!(body_of(String::new()), Value::Null);
        assert_eq!(body_of("{\"ok\":true}".into()), json!({"ok": true}));
        assert_eq!(body_of("Method Not Allowed".into()), json!("Method Not Allowed"));
    }
}
