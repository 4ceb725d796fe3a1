//! Starting a `relais` node on free loopback ports and talking HTTP/1.1 to it.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use relais::config::Key;

/// A running node; killed on drop.
pub struct Node {
    child: Child,
    pub media: SocketAddr,
    pub public: SocketAddr,
    pub private: SocketAddr,
    pub log: PathBuf,
}

/// A response.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn free_tcp() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Node {
    /// Starts the binary with its media, public and private listeners on free loopback
    /// ports, plus `extra` arguments, and waits until `/about/health` answers 200.
    pub fn start(extra: &[&str]) -> Node {
        Self::start_on(false, extra)
    }

    /// Like [`Node::start`] with the media socket on the dual-stack wildcard `[::]` (clients
    /// still reach it on 127.0.0.1, as IPv4-mapped addresses inside the node).
    pub fn start_dual_stack(extra: &[&str]) -> Node {
        Self::start_on(true, extra)
    }

    fn start_on(dual_stack: bool, extra: &[&str]) -> Node {
        let (media, public, private) = (free_udp(), free_tcp(), free_tcp());
        let media_bind = if dual_stack {
            format!("[::]:{}", media.port())
        } else {
            media.to_string()
        };
        let log = std::env::temp_dir().join(format!(
            "relais-node-{}-{}.log",
            std::process::id(),
            public.port()
        ));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relais"));
        for key in Key::ALL {
            cmd.env_remove(key.env());
        }
        cmd.args(["--media-bind", &media_bind])
            .args(["--http-public-bind", &public.to_string()])
            .args(["--http-private-bind", &private.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().unwrap();
        let mut node = Node {
            child,
            media,
            public,
            private,
            log,
        };
        for _ in 0..200 {
            if let Ok(r) = http(node.private, "GET", "/about/health", None) {
                if r.status == 200 {
                    return node;
                }
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("node exited with {status}: {}", node.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node not healthy in time: {}", node.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns whether it exited with 0.
    pub fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// One HTTP/1.1 request with `Connection: close`; `body` is `(content type, body)`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    match body {
        Some((content_type, body)) => {
            request.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        }
        None => request.push_str("Content-Length: 0\r\n\r\n"),
    }
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_owned(),
    })
}

pub const CHROMIUM_WHIP_OFFER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../relais-whip/tests/fixtures/chromium_whip_offer.sdp"
));

pub const CHROMIUM_WHEP_OFFER: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../relais-whip/tests/fixtures/chromium_whep_offer.sdp"
));

pub mod client;

/// One HTTP/1.1 request with `Authorization: Bearer token` (when given) and no body.
pub fn http_auth(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Response {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
    })
}

impl Node {
    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// Sends a signal (`kill` option, e.g. `-INT`) without waiting.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(sent.success());
    }

    /// Waits up to `timeout` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}
