//! A server an attacker controls, as a repository's `.loopctl.toml` could name it: a plain
//! TCP listener on 127.0.0.1:0 that reads each request's head, counts the requests and those
//! carrying an `Authorization` header (a key that was sent where it must not go), and answers
//! 404.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct KeyTrap {
    pub url: String,
    requests: Arc<AtomicUsize>,
    keyed: Arc<AtomicUsize>,
}

impl KeyTrap {
    pub fn start() -> KeyTrap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the trap on 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("the trap's address"));
        let (requests, keyed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (seen, stolen) = (requests.clone(), keyed.clone());
        // The thread ends with the test process; it holds nothing but the socket.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Ok(reader) = stream.try_clone() else { continue };
                let mut head = Vec::new();
                for line in BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    if line.is_empty() {
                        break;
                    }
                    head.push(line);
                }
                if head.is_empty() {
                    continue;
                }
                seen.fetch_add(1, Ordering::SeqCst);
                if head.iter().any(|line| line.to_ascii_lowercase().starts_with("authorization:")) {
                    stolen.fetch_add(1, Ordering::SeqCst);
                }
                let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        KeyTrap { url, requests, keyed }
    }

    /// Requests that reached the trap.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests that reached the trap with an `Authorization` header: stolen keys.
    pub fn keyed(&self) -> usize {
        self.keyed.load(Ordering::SeqCst)
    }
}
