//! The node under test, seen from outside: a local relais started for the run (or any
//! process named by its pid), its CPU time and RSS from `/proc`, and its `/metrics`.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{CONNECTION, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

use crate::measure::{prometheus_counter_sum, ProcessSample};

/// How long a local node may take to answer `/about/health`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the node could not be started or observed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The binary could not be started.
    #[error("starting {binary}: {source}")]
    Spawn {
        /// The binary's path.
        binary: String,
        /// Why.
        source: std::io::Error,
    },
    /// No free loopback port.
    #[error("no free loopback port: {0}")]
    Ports(std::io::Error),
    /// The node exited before it was healthy.
    #[error("the node exited during start-up ({0}); its log: {1}")]
    Exited(String, String),
    /// The node did not become healthy in time.
    #[error("the node was not healthy within {0:?}")]
    NotHealthy(Duration),
    /// `/proc` could not be read or parsed.
    #[error("reading /proc for the node: {0}")]
    Proc(String),
    /// An HTTP exchange failed.
    #[error("HTTP: {0}")]
    Http(String),
}

/// A relais node started for the run on free loopback ports; killed on drop.
#[derive(Debug)]
pub struct LocalNode {
    child: Child,
    /// The media (UDP) address.
    pub media: SocketAddr,
    /// The public HTTP listener (bridge channel, WHIP/WHEP).
    pub public: SocketAddr,
    /// The private HTTP listener (Colibri2, metrics).
    pub private: SocketAddr,
    log: PathBuf,
}

fn free_tcp() -> Result<SocketAddr, NodeError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(NodeError::Ports)
}

fn free_udp() -> Result<SocketAddr, NodeError> {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .map_err(NodeError::Ports)
}

impl LocalNode {
    /// Starts `binary` with its three listeners on free loopback ports, its log in
    /// `log_dir`, and `extra` arguments; returns once `/about/health` answers 200.
    pub async fn start(binary: &Path, log_dir: &Path, extra: &[String]) -> Result<Self, NodeError> {
        let (media, public, private) = (free_udp()?, free_tcp()?, free_tcp()?);
        let log = log_dir.join(format!("relais-node-{}.log", public.port()));
        let log_file = std::fs::File::create(&log).map_err(|source| NodeError::Spawn {
            binary: log.display().to_string(),
            source,
        })?;
        let child = Command::new(binary)
            .args(["--media-bind", &media.to_string()])
            .args(["--http-public-bind", &public.to_string()])
            .args(["--http-private-bind", &private.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|source| NodeError::Spawn {
                binary: binary.display().to_string(),
                source,
            })?;
        let mut node = Self {
            child,
            media,
            public,
            private,
            log,
        };
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok((200, _)) = http_get(private, "/about/health").await {
                return Ok(node);
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                let log = std::fs::read_to_string(&node.log).unwrap_or_default();
                return Err(NodeError::Exited(status.to_string(), log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(NodeError::NotHealthy(HEALTH_TIMEOUT))
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where the node's log is.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One observation of the node.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct NodeSample {
    /// Seconds since the run started.
    pub at_s: f64,
    /// CPU time (user + system) used so far, seconds.
    pub cpu_s: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// `relais_packets_sent_total`, when the node has metrics.
    pub packets_sent: Option<f64>,
    /// `relais_packets_received_total`, when the node has metrics.
    pub packets_received: Option<f64>,
}

/// Reads the node's CPU time and RSS from `/proc/<pid>` and, when it has one, its
/// Prometheus `/metrics` listener.
#[derive(Debug, Clone)]
pub struct NodeSampler {
    pid: u32,
    metrics: Option<SocketAddr>,
    ticks_per_second: u64,
    start: Instant,
}

impl NodeSampler {
    /// Samples process `pid`, and `metrics` (`GET /metrics`) when given.
    pub fn new(pid: u32, metrics: Option<SocketAddr>, start: Instant) -> Self {
        Self {
            pid,
            metrics,
            ticks_per_second: clock_ticks_per_second(),
            start,
        }
    }

    /// The process's CPU time and RSS now.
    pub fn process(&self) -> Result<ProcessSample, NodeError> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .map_err(|e| NodeError::Proc(e.to_string()))?;
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .map_err(|e| NodeError::Proc(e.to_string()))?;
        ProcessSample::parse(&stat, &status, self.ticks_per_second)
            .map_err(|e| NodeError::Proc(e.to_string()))
    }

    /// A full sample: the process, and the packet counters of `/metrics` if reachable.
    pub async fn sample(&self) -> Result<NodeSample, NodeError> {
        let process = self.process()?;
        let mut sample = NodeSample {
            at_s: self.start.elapsed().as_secs_f64(),
            cpu_s: process.cpu.as_secs_f64(),
            rss_bytes: process.rss_bytes,
            packets_sent: None,
            packets_received: None,
        };
        if let Some(address) = self.metrics {
            if let Ok((200, text)) = http_get(address, "/metrics").await {
                sample.packets_sent = prometheus_counter_sum(&text, "relais_packets_sent_total");
                sample.packets_received =
                    prometheus_counter_sum(&text, "relais_packets_received_total");
            }
        }
        Ok(sample)
    }
}

/// The kernel's clock tick (`getconf CLK_TCK`); 100 on every Linux this runs on.
fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// `GET path` on `address`; the status and the body as text.
pub async fn http_get(address: SocketAddr, path: &str) -> Result<(u16, String), NodeError> {
    let exchange = async {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| NodeError::Http(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| NodeError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::get(path)
            .header(HOST, "relais")
            .header(CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| NodeError::Http(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| NodeError::Http(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| NodeError::Http(e.to_string()))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| NodeError::Http("timed out".into()))?
}
