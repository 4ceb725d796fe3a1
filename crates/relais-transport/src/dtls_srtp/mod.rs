//! The DTLS-SRTP handshake (RFC 5763/5764) of one endpoint, through the `dtls` crate.
//!
//! This is the one part of relais that is not sans-IO (DESIGN.md principle 1): the mandated
//! webrtc-rs `dtls` crate runs its own tokio tasks and timers. It is kept behind a small,
//! datagram-level interface so that a sans-IO DTLS could replace it:
//!
//! - in: the DTLS datagrams the port's demultiplexer routed to this endpoint
//!   ([`DtlsSrtpHandshake::handle_datagram`], non-blocking, bounded, drops are counted);
//! - out: handshake datagrams for the endpoint's selected 5-tuple
//!   ([`DtlsSrtpHandshake::poll_transmit`] or [`DtlsSrtpHandshake::next_event`]);
//! - out, once: [`DtlsSrtpOutcome`] (SRTP profile, SRTP keys, the verified peer
//!   fingerprint) or a [`DtlsSrtpError`].
//!
//! # Driver usage
//!
//! ```no_run
//! # use relais_srtp::DtlsRole;
//! # use relais_transport::dtls_srtp::*;
//! # fn send_to_selected_5_tuple(_: Vec<u8>) {}
//! # fn install_srtp(_: DtlsSrtpOutcome) {}
//! # async fn drive(remote_fingerprint: Fingerprint, datagram: Vec<u8>) -> Result<(), DtlsSrtpError> {
//! let certificate = NodeCertificate::generate()?; // once per node
//! // Per endpoint, after SDP: the role from a=setup, the fingerprint from a=fingerprint.
//! let (mut dtls, task) = DtlsSrtpHandshake::start(
//!     DtlsRole::Server,
//!     &certificate,
//!     remote_fingerprint,
//!     DtlsSrtpConfig::default(),
//! )?;
//! tokio::spawn(task);
//! // The demultiplexer hands over this endpoint's DTLS datagrams (first byte 20..=63).
//! dtls.handle_datagram(&datagram);
//! while let Some(event) = dtls.next_event().await {
//!     match event {
//!         DtlsEvent::Transmit(bytes) => send_to_selected_5_tuple(bytes),
//!         DtlsEvent::Completed(Ok(outcome)) => install_srtp(outcome), // keep `dtls` alive
//!         DtlsEvent::Completed(Err(error)) => return Err(error),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Keep the handle (and keep forwarding DTLS datagrams and transmitting) after completion:
//! the peer may retransmit its last flight if our final flight was lost, and the DTLS
//! connection stays alive to answer it (as server, relais resends its recorded last flight
//! itself: the dtls crate does not after completing). relais uses no DTLS application data (no SCTP data
//! channels yet): application data received after the handshake is read and discarded
//! (counted in [`DtlsSrtpStats::app_data_discarded`]). [`DtlsSrtpHandshake::close`] sends
//! close_notify (drain `next_event` until `None` to transmit it); dropping the handle ends
//! the task and the connection without it.
//!
//! A failure ends this endpoint's handshake only: no panic, nothing global.
//!
//! # Peer authentication
//!
//! WebRTC certificates are self-signed, so chain verification is off and the peer's leaf
//! certificate is compared with the SDP fingerprint instead (with the fingerprint's own hash
//! function) — as client and as server (the server requires a client certificate). A
//! mismatch fails the handshake with [`DtlsSrtpError::FingerprintMismatch`].
//!
//! Cipher suites: as server relais offers only ECDHE_ECDSA suites (its certificate is
//! ECDSA, and the dtls crate picks the suite by the client's order without checking the
//! certificate type); as client it offers ECDHE_ECDSA and ECDHE_RSA suites, so a server with
//! an RSA certificate (e.g. GStreamer webrtcbin) works. Client certificates may be ECDSA or
//! RSA either way (the CertificateRequest lists both; rsa_pkcs1_sha256/384/512 and
//! ecdsa_secp256r1_sha256 etc. are accepted).
//!
//! SRTP profile: relais' preference order ([`DtlsSrtpConfig::profiles`], AEAD_AES_128_GCM
//! first) decides either way. As client it is the order of its `use_srtp` offer. As server,
//! the dtls crate would take the first of the client's profiles it supports, and browsers
//! list AES_CM_128_HMAC_SHA1_80 first: so the server reads the client's first flight itself
//! (Chromium's ClientHello comes in two fragments), narrows its configuration to the most
//! preferred profile offered, then hands the datagrams to the DTLS connection.

mod client_hello;
mod conn;
mod fingerprint;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dtls::cipher_suite::CipherSuiteId;
use dtls::config::{ClientAuthType, Config};
use dtls::conn::DTLSConn;
use dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use relais_srtp::{DtlsRole, SrtpError, SrtpKeys, SrtpProfile};
use tokio::sync::{mpsc, oneshot, Mutex};
use webrtc_util::KeyingMaterialExporter;

use conn::{bump, Counters, FinalFlight, HandshakeConn};
pub use fingerprint::{Fingerprint, FingerprintAlgorithm, FingerprintParseError, NodeCertificate};

/// Default for [`DtlsSrtpConfig::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest inbound DTLS datagram accepted (the dtls crate's read buffer); larger ones are
/// dropped and counted.
pub const MAX_DATAGRAM_LEN: usize = 8192;

/// The RFC 5764 exporter label.
const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// How long a close waits for close_notify to be queued.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings of one handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsSrtpConfig {
    /// SRTP protection profiles offered/accepted, most preferred first. Default:
    /// AEAD_AES_128_GCM, then AES_CM_128_HMAC_SHA1_80.
    pub profiles: Vec<SrtpProfile>,
    /// The whole handshake must finish within this time, else [`DtlsSrtpError::Timeout`].
    pub handshake_timeout: Duration,
    /// Initial flight retransmission interval (the dtls crate does not back off).
    pub retransmit_interval: Duration,
    /// Handshake messages are fragmented to fit this many bytes.
    pub mtu: usize,
    /// Capacity of the inbound and of the outbound datagram queue.
    pub queue_capacity: usize,
}

impl Default for DtlsSrtpConfig {
    fn default() -> Self {
        Self {
            profiles: SrtpProfile::ALL.to_vec(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            retransmit_interval: Duration::from_secs(1),
            mtu: 1200,
            queue_capacity: 64,
        }
    }
}

/// Why a DTLS-SRTP handshake failed. Never contains an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsSrtpError {
    /// The node certificate could not be generated.
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    /// The configuration is unusable (e.g. no SRTP profile, zero-capacity queue).
    #[error("invalid DTLS-SRTP configuration: {0}")]
    InvalidConfig(&'static str),
    /// The handshake did not finish within [`DtlsSrtpConfig::handshake_timeout`].
    #[error("DTLS handshake timed out after {0:?}")]
    Timeout(Duration),
    /// The peer's certificate does not match the fingerprint from SDP.
    #[error("peer certificate does not match the SDP fingerprint")]
    FingerprintMismatch,
    /// The peer presented no certificate.
    #[error("peer presented no certificate")]
    NoPeerCertificate,
    /// No SRTP protection profile in common (or none negotiated).
    #[error("no common SRTP protection profile")]
    NoCommonProfile,
    /// The DTLS handshake failed (alert, protocol error, ...).
    #[error("DTLS handshake failed: {0}")]
    Handshake(String),
    /// The SRTP keying material could not be exported.
    #[error("SRTP key export failed: {0}")]
    KeyExport(String),
    /// The exported keying material did not make SRTP keys.
    #[error("SRTP keys: {0}")]
    Srtp(#[from] SrtpError),
    /// The handshake task ended (or was never spawned) without a result.
    #[error("DTLS handshake task ended without a result")]
    TaskEnded,
}

/// A finished handshake: everything the SRTP layer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsSrtpOutcome {
    /// The negotiated SRTP protection profile.
    pub profile: SrtpProfile,
    /// SRTP master keys: `local` protects what relais sends, `remote` unprotects what the
    /// peer sends.
    pub keys: SrtpKeys,
    /// The peer certificate's fingerprint (same hash function as the expected one, which it
    /// equals).
    pub remote_fingerprint: Fingerprint,
    /// Our DTLS role.
    pub role: DtlsRole,
}

/// What [`DtlsSrtpHandshake::next_event`] yields.
#[derive(Debug)]
pub enum DtlsEvent {
    /// A DTLS datagram to send to the endpoint's selected 5-tuple.
    Transmit(Vec<u8>),
    /// The handshake finished (yielded once).
    Completed(Result<DtlsSrtpOutcome, DtlsSrtpError>),
}

/// Drop and discard counters of one handshake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DtlsSrtpStats {
    /// Inbound datagrams dropped because the queue was full or the task had ended.
    pub inbound_dropped: u64,
    /// Inbound datagrams dropped for exceeding [`MAX_DATAGRAM_LEN`].
    pub inbound_oversized: u64,
    /// Outbound datagrams dropped because the driver did not drain the queue.
    pub outbound_dropped: u64,
    /// DTLS application data records received after the handshake and discarded.
    pub app_data_discarded: u64,
}

/// The driver's handle on one endpoint's DTLS-SRTP handshake (and, after it, the idle DTLS
/// connection). Dropping it ends the task.
#[derive(Debug)]
pub struct DtlsSrtpHandshake {
    role: DtlsRole,
    inbound: mpsc::Sender<Vec<u8>>,
    transmit: mpsc::Receiver<Vec<u8>>,
    outcome: Option<oneshot::Receiver<Result<DtlsSrtpOutcome, DtlsSrtpError>>>,
    shutdown: Option<oneshot::Sender<()>>,
    counters: Arc<Counters>,
}

/// The future running the handshake; spawn it on a tokio runtime (the dtls crate spawns its
/// own tasks and uses tokio timers). It ends after a failure, after [`DtlsSrtpHandshake::close`]
/// or when the handle is dropped.
#[must_use = "the handshake only runs when the task is spawned"]
pub struct DtlsSrtpTask(Pin<Box<dyn Future<Output = ()> + Send + 'static>>);

impl Future for DtlsSrtpTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for DtlsSrtpTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DtlsSrtpTask")
    }
}

impl DtlsSrtpHandshake {
    /// Prepares the handshake of one endpoint. `role` comes from SDP `a=setup` (active =
    /// client), `expected_remote_fingerprint` from the peer's `a=fingerprint`. Returns the
    /// handle and the task to spawn; nothing happens until the task runs.
    pub fn start(
        role: DtlsRole,
        certificate: &NodeCertificate,
        expected_remote_fingerprint: Fingerprint,
        config: DtlsSrtpConfig,
    ) -> Result<(Self, DtlsSrtpTask), DtlsSrtpError> {
        if config.profiles.is_empty() {
            return Err(DtlsSrtpError::InvalidConfig("no SRTP protection profile"));
        }
        if config.queue_capacity == 0 {
            return Err(DtlsSrtpError::InvalidConfig(
                "queue capacity must be at least 1",
            ));
        }
        let counters = Arc::new(Counters::default());
        let (inbound_tx, inbound_rx) = mpsc::channel(config.queue_capacity);
        let (transmit_tx, transmit_rx) = mpsc::channel(config.queue_capacity);
        let (outcome_tx, outcome_rx) = oneshot::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let mismatch = Arc::new(AtomicBool::new(false));
        let dtls_config = dtls_config(
            role,
            certificate,
            &expected_remote_fingerprint,
            &config,
            Arc::clone(&mismatch),
        );
        let conn = Arc::new(HandshakeConn {
            inbound: Mutex::new(inbound_rx),
            outbound: transmit_tx,
            counters: Arc::clone(&counters),
            is_server: role == DtlsRole::Server,
            first: std::sync::Mutex::new(std::collections::VecDeque::new()),
            completed: AtomicBool::new(false),
            final_flight: std::sync::Mutex::new(FinalFlight::default()),
        });
        let task = run(Task {
            conn,
            dtls_config,
            role,
            expected: expected_remote_fingerprint,
            profiles: config.profiles,
            timeout: config.handshake_timeout,
            mismatch,
            outcome: outcome_tx,
            shutdown: shutdown_rx,
            counters: Arc::clone(&counters),
        });
        let handle = Self {
            role,
            inbound: inbound_tx,
            transmit: transmit_rx,
            outcome: Some(outcome_rx),
            shutdown: Some(shutdown_tx),
            counters,
        };
        Ok((handle, DtlsSrtpTask(Box::pin(task))))
    }

    /// [`start`](Self::start) and `tokio::spawn` the task (inside a tokio runtime).
    pub fn spawn(
        role: DtlsRole,
        certificate: &NodeCertificate,
        expected_remote_fingerprint: Fingerprint,
        config: DtlsSrtpConfig,
    ) -> Result<Self, DtlsSrtpError> {
        let (handle, task) = Self::start(role, certificate, expected_remote_fingerprint, config)?;
        tokio::spawn(task);
        Ok(handle)
    }

    /// Our DTLS role.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Feeds one DTLS datagram from this endpoint. Never blocks: returns `false` (and counts
    /// it) when the datagram is dropped (queue full, task ended, oversized).
    pub fn handle_datagram(&self, datagram: &[u8]) -> bool {
        if datagram.len() > MAX_DATAGRAM_LEN {
            bump(&self.counters.inbound_oversized);
            return false;
        }
        if self.inbound.try_send(datagram.to_vec()).is_err() {
            bump(&self.counters.inbound_dropped);
            return false;
        }
        true
    }

    /// The next queued outbound datagram, if any (non-blocking).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.try_recv().ok()
    }

    /// The handshake result if it is ready (non-blocking); `Some` once.
    pub fn poll_outcome(&mut self) -> Option<Result<DtlsSrtpOutcome, DtlsSrtpError>> {
        let rx = self.outcome.as_mut()?;
        let result = match rx.try_recv() {
            Ok(result) => result,
            Err(oneshot::error::TryRecvError::Empty) => return None,
            Err(oneshot::error::TryRecvError::Closed) => Err(DtlsSrtpError::TaskEnded),
        };
        self.outcome = None;
        Some(result)
    }

    /// Waits for the next outbound datagram or the result (datagrams first). `None` when
    /// the task has ended and everything was yielded.
    pub async fn next_event(&mut self) -> Option<DtlsEvent> {
        enum Next {
            Transmit(Option<Vec<u8>>),
            Outcome(Result<Result<DtlsSrtpOutcome, DtlsSrtpError>, oneshot::error::RecvError>),
        }
        let next = match self.outcome.as_mut() {
            Some(outcome) => tokio::select! {
                biased;
                d = self.transmit.recv() => Next::Transmit(d),
                r = outcome => Next::Outcome(r),
            },
            None => Next::Transmit(self.transmit.recv().await),
        };
        match next {
            Next::Transmit(Some(d)) => Some(DtlsEvent::Transmit(d)),
            Next::Transmit(None) => {
                // The task ended: its result, if not yet yielded, is ready.
                let outcome = self.outcome.take()?;
                Some(DtlsEvent::Completed(
                    outcome.await.unwrap_or(Err(DtlsSrtpError::TaskEnded)),
                ))
            }
            Next::Outcome(r) => {
                self.outcome = None;
                Some(DtlsEvent::Completed(
                    r.unwrap_or(Err(DtlsSrtpError::TaskEnded)),
                ))
            }
        }
    }

    /// Waits for the result, discarding outbound datagrams meanwhile. For tests and for
    /// callers that transmit through [`poll_transmit`](Self::poll_transmit) elsewhere — a
    /// driver normally uses [`next_event`](Self::next_event).
    pub async fn outcome(&mut self) -> Result<DtlsSrtpOutcome, DtlsSrtpError> {
        match self.outcome.take() {
            Some(rx) => rx.await.unwrap_or(Err(DtlsSrtpError::TaskEnded)),
            None => Err(DtlsSrtpError::TaskEnded),
        }
    }

    /// Ends the DTLS connection: after a completed handshake, close_notify is queued as a
    /// last [`DtlsEvent::Transmit`]; a running handshake is abandoned.
    pub fn close(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Drop and discard counters.
    pub fn stats(&self) -> DtlsSrtpStats {
        let c = &self.counters;
        DtlsSrtpStats {
            inbound_dropped: c.inbound_dropped.load(Ordering::Relaxed),
            inbound_oversized: c.inbound_oversized.load(Ordering::Relaxed),
            outbound_dropped: c.outbound_dropped.load(Ordering::Relaxed),
            app_data_discarded: c.app_data_discarded.load(Ordering::Relaxed),
        }
    }
}

fn dtls_profile(profile: SrtpProfile) -> SrtpProtectionProfile {
    match profile {
        SrtpProfile::AeadAes128Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
        SrtpProfile::Aes128CmHmacSha1_80 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
    }
}

fn relais_profile(profile: SrtpProtectionProfile) -> Option<SrtpProfile> {
    match profile {
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => Some(SrtpProfile::AeadAes128Gcm),
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
            Some(SrtpProfile::Aes128CmHmacSha1_80)
        }
        _ => None,
    }
}

fn dtls_config(
    role: DtlsRole,
    certificate: &NodeCertificate,
    expected: &Fingerprint,
    config: &DtlsSrtpConfig,
    mismatch: Arc<AtomicBool>,
) -> Config {
    let cipher_suites = match role {
        // Our certificate is ECDSA: only ECDSA suites can be served.
        DtlsRole::Server => vec![
            CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
            CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_256_Cbc_Sha,
        ],
        // The server's certificate may be ECDSA or RSA.
        DtlsRole::Client => vec![
            CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
            CipherSuiteId::Tls_Ecdhe_Rsa_With_Aes_128_Gcm_Sha256,
            CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_256_Cbc_Sha,
            CipherSuiteId::Tls_Ecdhe_Rsa_With_Aes_256_Cbc_Sha,
        ],
    };
    let expected = expected.clone();
    Config {
        certificates: vec![certificate.inner.clone()],
        cipher_suites,
        // Empty: the dtls crate's defaults (ECDSA and RSA PKCS#1 with SHA-256/384/512, Ed25519).
        signature_schemes: vec![],
        srtp_protection_profiles: config.profiles.iter().copied().map(dtls_profile).collect(),
        client_auth: ClientAuthType::RequireAnyClientCert,
        flight_interval: config.retransmit_interval,
        insecure_skip_verify: true,
        verify_peer_certificate: Some(Arc::new(move |certs: &[Vec<u8>], _| {
            let Some(leaf) = certs.first() else {
                return Err(dtls::Error::ErrNoCertificates);
            };
            if expected.matches(leaf) {
                Ok(())
            } else {
                mismatch.store(true, Ordering::Relaxed);
                Err(dtls::Error::Other(
                    "peer certificate does not match the SDP fingerprint".to_owned(),
                ))
            }
        })),
        // Not verified (insecure_skip_verify); set so the crate does not look for an address.
        server_name: "relais.invalid".to_owned(),
        mtu: config.mtu,
        ..Config::default()
    }
}

struct Task {
    conn: Arc<HandshakeConn>,
    dtls_config: Config,
    role: DtlsRole,
    expected: Fingerprint,
    profiles: Vec<SrtpProfile>,
    timeout: Duration,
    mismatch: Arc<AtomicBool>,
    outcome: oneshot::Sender<Result<DtlsSrtpOutcome, DtlsSrtpError>>,
    shutdown: oneshot::Receiver<()>,
    counters: Arc<Counters>,
}

/// The IANA number of a protection profile (RFC 5764 §4.1.2, RFC 7714).
fn profile_id(profile: SrtpProfile) -> u16 {
    match profile {
        SrtpProfile::Aes128CmHmacSha1_80 => 0x0001,
        SrtpProfile::AeadAes128Gcm => 0x0007,
    }
}

/// Most client datagrams read before the DTLS connection starts (a ClientHello in more
/// fragments than this is left to the `dtls` crate's own choice).
const MAX_CLIENT_HELLO_DATAGRAMS: usize = 4;

/// As server: reads the client's first flight and, when it is a ClientHello with an SRTP
/// offer, narrows the configuration to our most preferred profile among those offered (the
/// `dtls` crate would take the client's first). The datagrams read are kept for the
/// connection. `None`: the handle was dropped.
async fn prefer_our_profile(
    conn: &HandshakeConn,
    dtls_config: &mut Config,
    profiles: &[SrtpProfile],
) -> Option<()> {
    let mut assembly = client_hello::ClientHelloAssembly::default();
    let mut read = Vec::new();
    {
        let mut inbound = conn.inbound.lock().await;
        while read.len() < MAX_CLIENT_HELLO_DATAGRAMS {
            let datagram = inbound.recv().await?;
            let complete = assembly.push(&datagram);
            read.push(datagram);
            if complete || assembly.has_failed() {
                break;
            }
        }
    }
    if let Some(offered) = assembly.offered_srtp_profiles() {
        if let Some(&chosen) = profiles.iter().find(|p| offered.contains(&profile_id(**p))) {
            dtls_config.srtp_protection_profiles = vec![dtls_profile(chosen)];
        }
    }
    if let Ok(mut first) = conn.first.lock() {
        first.extend(read);
    }
    Some(())
}

async fn run(t: Task) {
    let Task {
        conn,
        mut dtls_config,
        role,
        expected,
        profiles,
        timeout,
        mismatch,
        outcome,
        mut shutdown,
        counters,
    } = t;
    let is_client = role == DtlsRole::Client;
    let deadline = tokio::time::Instant::now() + timeout;
    if !is_client && profiles.len() > 1 {
        let offer = tokio::time::timeout_at(
            deadline,
            prefer_our_profile(&conn, &mut dtls_config, &profiles),
        );
        let read = tokio::select! {
            r = offer => r,
            _ = &mut shutdown => return,
        };
        match read {
            Err(_elapsed) => {
                let _ = outcome.send(Err(DtlsSrtpError::Timeout(timeout)));
                return;
            }
            Ok(None) => return, // the handle is gone
            Ok(Some(())) => {}
        }
    }
    let handshake = tokio::time::timeout_at(
        deadline,
        DTLSConn::new(Arc::clone(&conn) as _, dtls_config, is_client, None),
    );
    // Dropping the handshake future (shutdown, handle dropped) drops the DTLS connection,
    // which stops the dtls crate's reader and writer tasks.
    let result = tokio::select! {
        r = handshake => r,
        _ = &mut shutdown => return,
    };
    let dtls_conn = match result {
        Err(_elapsed) => {
            let _ = outcome.send(Err(DtlsSrtpError::Timeout(timeout)));
            return;
        }
        Ok(Err(e)) => {
            let err = if mismatch.load(Ordering::Relaxed) {
                DtlsSrtpError::FingerprintMismatch
            } else {
                DtlsSrtpError::Handshake(e.to_string())
            };
            let _ = outcome.send(Err(err));
            return;
        }
        Ok(Ok(c)) => c,
    };
    conn.completed.store(true, Ordering::Relaxed);
    let result = derive_outcome(&dtls_conn, role, &expected, &profiles).await;
    let ok = result.is_ok();
    if outcome.send(result).is_err() || !ok {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, dtls_conn.close()).await;
        return;
    }
    // Keep the connection to answer retransmitted final flights; discard application data.
    let mut buf = vec![0u8; MAX_DATAGRAM_LEN];
    loop {
        tokio::select! {
            r = dtls_conn.read(&mut buf, None) => match r {
                Ok(_) => bump(&counters.app_data_discarded),
                Err(_) => return, // closed by the peer or fatal alert
            },
            _ = &mut shutdown => break,
        }
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, dtls_conn.close()).await;
}

async fn derive_outcome(
    conn: &DTLSConn,
    role: DtlsRole,
    expected: &Fingerprint,
    profiles: &[SrtpProfile],
) -> Result<DtlsSrtpOutcome, DtlsSrtpError> {
    let profile = relais_profile(conn.selected_srtpprotection_profile())
        .filter(|p| profiles.contains(p))
        .ok_or(DtlsSrtpError::NoCommonProfile)?;
    let state = conn.connection_state().await;
    let leaf = state
        .peer_certificates
        .first()
        .ok_or(DtlsSrtpError::NoPeerCertificate)?;
    let remote_fingerprint = Fingerprint::of_der(expected.algorithm(), leaf);
    if remote_fingerprint != *expected {
        // Defence in depth: the verify callback already checked it.
        return Err(DtlsSrtpError::FingerprintMismatch);
    }
    let material = state
        .export_keying_material(EXPORTER_LABEL, &[], profile.keying_material_len())
        .await
        .map_err(|e| DtlsSrtpError::KeyExport(e.to_string()))?;
    let keys = SrtpKeys::from_dtls_keying_material(profile, &material, role)?;
    Ok(DtlsSrtpOutcome {
        profile,
        keys,
        remote_fingerprint,
        role,
    })
}
