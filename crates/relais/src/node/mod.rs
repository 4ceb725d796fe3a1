//! The node: startup, the media task and the HTTP listeners.
//!
//! [`run`] binds the media UDP socket and both HTTP listeners, starts the media task and
//! serves until told to stop ([`Signal`]), then stops everything.
//!
//! Draining (the first [`Signal::Terminate`], or `POST /colibri/shutdown` on the private
//! listener): new conferences are refused, sessions joining a stream that has endpoints are
//! still accepted, readiness fails; the node stops when the last endpoint is gone or after
//! `limits.drain_timeout_s` (closing what is left). A second [`Signal::Terminate`] during a
//! drain, or [`Signal::Interrupt`] at any time, stops at once.

mod bridge;
mod bridge_io;
mod colibri;
mod endpoint;
mod http;
mod media;
mod signalling;

use std::future::IntoFuture;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use relais_transport::dtls_srtp::{DtlsSrtpError, NodeCertificate};
use relais_whip::sdp;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

pub use media::MediaStats;
pub use signalling::NodeHandle;

use crate::config::Config;

/// Commands queued to the media task before signalling waits.
const COMMAND_QUEUE: usize = 256;
/// Drain requests queued from the private listener.
const CONTROL_QUEUE: usize = 4;
/// DTLS events queued to the media task.
const DTLS_EVENT_QUEUE: usize = 1024;

/// What the process asks the node to do (from its signal handlers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: drain the first time, stop at once the second time.
    Terminate,
    /// SIGINT (Ctrl-C): stop at once.
    Interrupt,
}

/// What the private listener asks of the node's control loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// Start draining (idempotent).
    Drain,
}

/// Why the node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node certificate could not be generated.
    #[error("node certificate: {0}")]
    Certificate(#[from] DtlsSrtpError),
    /// A listener could not be bound.
    #[error("{what} {addr}: cannot bind: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The configured address (the node's own, not a client's).
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The node certificate's fingerprint does not make an SDP fingerprint (a bug).
    #[error("node fingerprint: {0}")]
    Fingerprint(#[from] sdp::SdpError),
    /// The metrics registry could not be built (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] relais_metrics::Error),
    /// An HTTP listener failed while serving.
    #[error("HTTP listener: {0}")]
    Serve(std::io::Error),
}

/// The node's host addresses for ICE host candidates when bound to all interfaces:
/// non-loopback IPv4 first, then global/ULA IPv6, loopback last (link-local IPv6 is left
/// out: it needs a scope id a candidate cannot carry).
pub fn host_addresses() -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map(|ifs| ifs.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default();
    addresses.retain(|ip| match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => (v6.segments().first().copied().unwrap_or(0) & 0xffc0) != 0xfe80,
    });
    addresses.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6()));
    addresses.dedup();
    if addresses.is_empty() {
        addresses.push(IpAddr::from([127, 0, 0, 1]));
    }
    addresses
}

/// Runs a node with `config` until [`signals`](Signal) stop it (directly, or through a
/// drain that ends), or the signal channel closes.
pub async fn run(config: Config, signals: mpsc::Receiver<Signal>) -> Result<(), NodeError> {
    let certificate = Arc::new(NodeCertificate::generate()?);
    let fingerprint: sdp::Fingerprint = certificate.fingerprint().to_string().parse()?;

    // On Linux an IPv6 wildcard socket is dual-stack by default (net.ipv6.bindv6only=0):
    // IPv4 peers appear as ::ffff:a.b.c.d and are normalised to IPv4 by the media task.
    let socket = UdpSocket::bind(config.media.bind)
        .await
        .map_err(|source| NodeError::Bind {
            what: "media",
            addr: config.media.bind,
            source,
        })?;
    let media_addr = socket.local_addr().map_err(|source| NodeError::Bind {
        what: "media",
        addr: config.media.bind,
        source,
    })?;
    let announced = config
        .media
        .effective_announced_addresses(&host_addresses());
    let candidates = sdp::host_candidates(&announced, media_addr.port());

    let public = bind_tcp("public HTTP", config.http.public_bind).await?;
    let private = bind_tcp("private HTTP", config.http.private_bind).await?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (dtls_tx, dtls_rx) = mpsc::channel(DTLS_EVENT_QUEUE);
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (count_tx, count_rx) = watch::channel(0usize);
    let draining = Arc::new(AtomicBool::new(false));
    let media = media::MediaTask::new(
        socket,
        certificate,
        &config,
        dtls_tx,
        draining.clone(),
        count_tx,
        &announced,
    )
    .map_err(|source| NodeError::Bind {
        what: "media",
        addr: config.media.bind,
        source,
    })?;
    let media_task = tokio::spawn(media.run(commands_rx, dtls_rx, shutdown_rx.clone()));

    let web_socket_base = web_socket_base(&config, &announced);
    let handle = NodeHandle::new(commands_tx, fingerprint, candidates, web_socket_base);
    let public_app = http::public_router(handle.clone(), &config);
    let metrics = Arc::new(relais_metrics::Metrics::new(env!("CARGO_PKG_VERSION"))?);
    let private_app = http::private_router(handle, &config, metrics, control_tx);

    tracing::info!(
        "relais {} serving: media udp {}, {} announced address(es); public http {}; private http {}",
        env!("CARGO_PKG_VERSION"),
        media_addr,
        announced.len(),
        config.http.public_bind,
        config.http.private_bind
    );

    let stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let public_server = tokio::spawn(
        axum::serve(public, public_app)
            .with_graceful_shutdown(stop(shutdown_rx.clone()))
            .into_future(),
    );
    let private_server = tokio::spawn(
        axum::serve(private, private_app)
            .with_graceful_shutdown(stop(shutdown_rx.clone()))
            .into_future(),
    );

    control_loop(
        signals,
        control_rx,
        count_rx,
        &draining,
        Duration::from_secs(config.limits.drain_timeout_s),
    )
    .await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    let _ = media_task.await;
    let mut result = Ok(());
    for server in [public_server, private_server] {
        if let Ok(Err(e)) = server.await {
            result = Err(NodeError::Serve(e));
        }
    }
    result
}

/// Waits for the moment to stop: an interrupt, a second terminate, the end of a drain (no
/// endpoints left, or `drain_timeout` passed) or the signal channel closing.
async fn control_loop(
    mut signals: mpsc::Receiver<Signal>,
    mut control: mpsc::Receiver<Control>,
    mut endpoints: watch::Receiver<usize>,
    draining: &AtomicBool,
    drain_timeout: Duration,
) {
    let mut deadline: Option<Instant> = None;
    loop {
        let drain_started = deadline.is_some();
        let start_drain = tokio::select! {
            signal = signals.recv() => match signal {
                Some(Signal::Terminate) if !drain_started => true,
                Some(Signal::Terminate) => {
                    tracing::info!("second SIGTERM while draining: stopping now");
                    return;
                }
                Some(Signal::Interrupt) | None => return,
            },
            Some(Control::Drain) = control.recv() => !drain_started,
            changed = endpoints.changed(), if drain_started => {
                if changed.is_err() || *endpoints.borrow() == 0 {
                    tracing::info!("drain complete: no endpoints left");
                    return;
                }
                false
            }
            () = sleep_until_opt(deadline) => {
                tracing::info!(
                    "drain timeout ({} s): closing {} endpoint(s)",
                    drain_timeout.as_secs(),
                    *endpoints.borrow()
                );
                return;
            }
        };
        if start_drain {
            draining.store(true, Ordering::Relaxed);
            deadline = Some(Instant::now() + drain_timeout);
            let left = *endpoints.borrow_and_update();
            tracing::info!(
                "draining: no new conferences; {} endpoint(s) left, at most {} s",
                left,
                drain_timeout.as_secs()
            );
            if left == 0 {
                return;
            }
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// `ws(s)://host:port` of the public listener: from `http.public_base_url` when set, else
/// the bind address (the first announced media address when bound to all interfaces).
fn web_socket_base(config: &Config, announced: &[IpAddr]) -> String {
    if let Some(base) = &config.http.public_base_url {
        let base = base.trim_end_matches('/');
        if let Some(rest) = base.strip_prefix("https://") {
            return format!("wss://{rest}");
        }
        if let Some(rest) = base.strip_prefix("http://") {
            return format!("ws://{rest}");
        }
        return base.to_owned();
    }
    let bind = config.http.public_bind;
    let ip = if bind.ip().is_unspecified() {
        announced.first().copied().unwrap_or(bind.ip())
    } else {
        bind.ip()
    };
    format!("ws://{}", SocketAddr::new(ip, bind.port()))
}

async fn bind_tcp(what: &'static str, addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { what, addr, source })
}
