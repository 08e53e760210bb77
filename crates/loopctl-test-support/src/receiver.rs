//! A webhook receiver on loopback that a test controls: it fails its first answers, or all
//! of them while down, keeps what it was sent, and checks signatures as the README's recipe
//! says (its own HMAC, not the server's code).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// What the receiver was sent: the headers it checks and the body.
pub struct Got {
    pub signature: String,
    pub delivery: String,
    pub body: Vec<u8>,
    pub answered: u16,
}

/// An HTTP receiver on 127.0.0.1 that fails its first `fail_first` requests with a 500, and
/// every request while `down`.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Got>>>,
    pub down: Arc<AtomicBool>,
    /// Its own runtime, when started outside one (a plain `#[test]`).
    _runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    #[must_use]
    pub fn start(fail_first: usize) -> Receiver {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let down = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let (got2, down2) = (got.clone(), down.clone());
        let hook = move |headers: HeaderMap, body: axum::body::Bytes| {
            let (got, down, seen) = (got2.clone(), down2.clone(), seen.clone());
            async move {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let status = if n < fail_first || down.load(Ordering::SeqCst) {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                };
                let header =
                    |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                got.lock().expect("receiver state").push(Got {
                    signature: header("loopctl-signature"),
                    delivery: header("loopctl-delivery"),
                    body: body.to_vec(),
                    answered: status.as_u16(),
                });
                status
            }
        };
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        std_listener.set_nonblocking(true).expect("a non-blocking listener");
        let url = format!("http://{}/hook", std_listener.local_addr().expect("address"));
        let (runtime, handle) = match tokio::runtime::Handle::try_current() {
            Ok(handle) => (None, handle),
            Err(_) => {
                let runtime = tokio::runtime::Runtime::new().expect("a runtime");
                let handle = runtime.handle().clone();
                (Some(runtime), handle)
            }
        };
        let _entered = handle.enter();
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("the listener on the runtime");
        let app = axum::Router::new().route("/hook", axum::routing::post(hook));
        handle.spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got, down, _runtime: runtime }
    }

    /// The cursors of the events answered with a 200, in the order they arrived.
    #[must_use]
    pub fn delivered_cursors(&self) -> Vec<i64> {
        let got = self.got.lock().expect("receiver state");
        got.iter()
            .filter(|g| g.answered == 200)
            .map(|g| {
                serde_json::from_slice::<Value>(&g.body).expect("receiver state")["event"]["cursor"]
                    .as_i64()
                    .expect("receiver state")
            })
            .collect()
    }
}

/// The README's recipe: HMAC-SHA256 keyed with the secret over `<t>.<body>`, hex, against `v1`.
#[must_use]
pub fn signature_holds(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("receiver state");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    expected == v1
}
