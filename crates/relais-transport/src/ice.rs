//! Sans-IO ICE agent for one endpoint (RFC 8445, RFC 7675 consent freshness).
//!
//! The agent owns no socket, no clock and no task (DESIGN.md principle 1). The driver feeds it
//! datagrams with [`IceAgent::handle_receive`] and timer expiries with
//! [`IceAgent::handle_timeout`], and drains its output with [`IceAgent::poll_transmit`],
//! [`IceAgent::poll_event`] and [`IceAgent::poll_timeout`]. Time is the caller's
//! [`Instant`]; randomness (credentials, tie-breaker, transaction ids, consent jitter) comes
//! from the RNG given to [`IceAgent::new`], so a seeded RNG makes a run reproducible.
//!
//! # Roles
//!
//! - [`IceRole::Lite`]: the node only answers (WHIP/WHEP). Binding requests are verified
//!   (FINGERPRINT, USERNAME `local:remote`, MESSAGE-INTEGRITY with the local password) and
//!   answered with XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT. It never sends a
//!   request.
//! - [`IceRole::Controlling`]: a full agent that pairs its host candidates with the remote
//!   candidates (same address family), runs paced connectivity checks (one new check every
//!   `Ta`, retransmissions with a doubling RTO, failure after `max_check_attempts` sends) and
//!   nominates with *regular nomination*: once the best pair has succeeded (or
//!   `nomination_delay` after the first success) it repeats the check on that pair with
//!   USE-CANDIDATE; the pair is selected when that check succeeds.
//! - [`IceRole::Controlled`]: a full agent that checks like the controlling one but does
//!   not nominate; it selects a pair when the peer has nominated it (USE-CANDIDATE) and its
//!   own check on that pair has succeeded. It exists for role-conflict resolution and for
//!   in-process peers in tests.
//!
//! Role conflicts (RFC 8445 §7.3.1.1) between full agents are resolved by tie-breaker: the
//! agent with the larger tie-breaker keeps (or takes) the controlling role, the other
//! answers 487 or switches role ([`IceEvent::RoleChanged`]).
//!
//! # Selecting the 5-tuple
//!
//! A remote address becomes the selected destination only through an authenticated STUN
//! exchange:
//! - lite and controlled: a valid Binding request with USE-CANDIDATE selects its 5-tuple
//!   (controlled additionally needs its own check on the pair to have succeeded). This is
//!   also the NAT-rebinding rule: a valid request with USE-CANDIDATE from a new 5-tuple takes
//!   over. A valid request *without* USE-CANDIDATE never replaces a selected pair.
//! - lite only, when [`IceConfig::select_without_nomination`] is set (the default): while
//!   no pair is selected, the first valid request selects its 5-tuple provisionally, for
//!   peers that nominate late; the first USE-CANDIDATE then decides.
//! - controlling: the nominated check's authenticated success response.
//!
//! # Consent freshness
//!
//! Full agents send a consent request on the selected pair every `consent_interval` ±20 %
//! and count an authenticated response as consent; a lite agent counts the peer's valid
//! requests on the selected 5-tuple. With no consent for `disconnected_timeout` the state is
//! [`IceState::Disconnected`] (media may still be sent); with none for `consent_timeout`
//! (30 s) the agent emits [`IceEvent::ConsentExpired`], goes to [`IceState::Failed`],
//! [`IceAgent::can_send`] turns false and no more datagrams are produced.
//!
//! # Untrusted input and privacy
//!
//! Every received datagram is untrusted: nothing in this module panics on it; rejected
//! datagrams are dropped unanswered and counted in [`IceStats`] by reason. Errors'
//! `Display` never contains an address, port, username or password (DESIGN.md principle 4);
//! the `Debug` output of [`IceEvent`] and [`Transmit`] does contain addresses, and the
//! driver decides whether to log it. [`IceCredentials`]' `Debug` redacts the password.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use relais_rtp::stun::{error_code, StunError, StunKey, StunMessage, StunWriter, TransactionId};

/// The 64 characters of `ice-char` (RFC 8839 §5.4): ALPHA / DIGIT / "+" / "/".
const ICE_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Length of generated local ufrags (RFC 8839: at least 4 characters).
const LOCAL_UFRAG_LEN: usize = 8;
/// Length of generated local passwords (RFC 8839: at least 22 characters).
const LOCAL_PWD_LEN: usize = 24;
/// Shortest accepted ufrag.
const MIN_UFRAG_LEN: usize = 4;
/// Shortest accepted password.
const MIN_PWD_LEN: usize = 22;
/// Longest accepted ufrag or password (RFC 8839 §5.4).
const MAX_CREDENTIAL_LEN: usize = 256;
/// Type preference of host candidates (RFC 8445 §5.1.2.2).
const HOST_TYPE_PREFERENCE: u32 = 126;
/// Type preference of peer-reflexive candidates (RFC 8445 §5.1.2.2).
const PRFLX_TYPE_PREFERENCE: u32 = 110;
/// Most datagrams waiting in the transmit queue; beyond it new ones are dropped (counted).
const MAX_QUEUED_TRANSMITS: usize = 256;
/// Most events waiting in the event queue; beyond it the oldest are dropped.
const MAX_QUEUED_EVENTS: usize = 256;
/// Most consent requests awaiting a response at once.
const MAX_CONSENT_TRANSACTIONS: usize = 16;

/// Which ICE role the agent plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IceRole {
    /// ICE lite (RFC 8445 §2.5): answers checks, never sends them; always controlled.
    Lite,
    /// Full agent in the controlling role: checks and nominates.
    Controlling,
    /// Full agent in the controlled role: checks and accepts the peer's nomination.
    Controlled,
}

/// The agent's connectivity state (modelled on `RTCIceConnectionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IceState {
    /// Nothing happened yet.
    New,
    /// Connectivity checks are running and no pair is selected.
    Checking,
    /// A pair is selected and consent is fresh.
    Connected,
    /// A pair is selected but consent was not refreshed for `disconnected_timeout`.
    Disconnected,
    /// All checks failed or consent expired; the owner should free the endpoint.
    Failed,
    /// [`IceAgent::close`] was called.
    Closed,
}

/// Something the driver or the endpoint owner must know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceEvent {
    /// The state changed to the given one.
    StateChanged(IceState),
    /// Media must now be sent from `local` to `remote` (the selected 5-tuple).
    SelectedPairChanged {
        /// The local address (the node's socket address) of the pair.
        local: SocketAddr,
        /// The peer's address.
        remote: SocketAddr,
    },
    /// A role conflict switched the agent's role; `controlling` is the new role.
    RoleChanged {
        /// Whether the agent is now controlling.
        controlling: bool,
    },
    /// No consent for `consent_timeout`: the agent stopped sending (RFC 7675 §5.1). The
    /// owner should free the endpoint.
    ConsentExpired,
}

/// A received datagram handed to [`IceAgent::handle_receive`].
#[derive(Debug, Clone, Copy)]
pub struct Receive<'a> {
    /// Where the datagram came from.
    pub source: SocketAddr,
    /// The local address it arrived on.
    pub destination: SocketAddr,
    /// The datagram bytes.
    pub datagram: &'a [u8],
}

/// A datagram the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address to send from.
    pub source: SocketAddr,
    /// The destination address.
    pub destination: SocketAddr,
    /// The STUN message.
    pub contents: Vec<u8>,
}

/// Tunables of the agent. Start from [`IceConfig::lite`], [`IceConfig::controlling`] or
/// [`IceConfig::controlled`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceConfig {
    /// The role the agent starts with.
    pub role: IceRole,
    /// Pacing of new connectivity checks (RFC 8445 §14.2, `Ta`).
    pub ta: Duration,
    /// First retransmission timeout of a check.
    pub initial_rto: Duration,
    /// Largest retransmission timeout (the doubling stops there).
    pub max_rto: Duration,
    /// Sends of one check (first transmission included) before it fails.
    pub max_check_attempts: u32,
    /// Controlling: how long after the first succeeded pair to wait for better pairs
    /// before nominating the best succeeded one.
    pub nomination_delay: Duration,
    /// Mean interval of consent requests (RFC 7675: 5 s, randomised ±20 %).
    pub consent_interval: Duration,
    /// Consent lifetime (RFC 7675: 30 s).
    pub consent_timeout: Duration,
    /// Time without consent after which the state is `Disconnected`.
    pub disconnected_timeout: Duration,
    /// Lite: let the first valid request select its 5-tuple while no pair is selected.
    pub select_without_nomination: bool,
    /// Most candidate pairs (or, for lite, remembered valid 5-tuples).
    pub max_pairs: usize,
    /// Most local plus remote candidates (peer-reflexive ones included).
    pub max_candidates: usize,
}

impl IceConfig {
    fn with_role(role: IceRole) -> Self {
        IceConfig {
            role,
            ta: Duration::from_millis(50),
            initial_rto: Duration::from_millis(250),
            max_rto: Duration::from_secs(3),
            max_check_attempts: 7,
            nomination_delay: Duration::from_millis(500),
            consent_interval: Duration::from_secs(5),
            consent_timeout: Duration::from_secs(30),
            disconnected_timeout: Duration::from_secs(15),
            select_without_nomination: true,
            max_pairs: 64,
            max_candidates: 32,
        }
    }

    /// Defaults for an ICE-lite agent.
    pub fn lite() -> Self {
        Self::with_role(IceRole::Lite)
    }

    /// Defaults for a controlling full agent.
    pub fn controlling() -> Self {
        Self::with_role(IceRole::Controlling)
    }

    /// Defaults for a controlled full agent.
    pub fn controlled() -> Self {
        Self::with_role(IceRole::Controlled)
    }
}

/// Errors of the agent's API. `Display` never contains addresses or credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IceError {
    /// A ufrag is shorter than 4, longer than 256 characters or not made of `ice-char`.
    #[error("ICE ufrag must be 4 to 256 ice-char characters")]
    InvalidUfrag,
    /// A password is shorter than 22, longer than 256 characters or not made of `ice-char`.
    #[error("ICE password must be 22 to 256 ice-char characters")]
    InvalidPassword,
    /// A candidate address has an unspecified IP, a multicast IP or port 0.
    #[error("ICE candidate address is not usable")]
    InvalidCandidate,
    /// The candidate or pair limit of the configuration is reached.
    #[error("too many ICE candidates")]
    TooManyCandidates,
    /// The agent is closed or failed.
    #[error("ICE agent is closed or failed")]
    Closed,
}

/// Counters of the agent, all monotonic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IceStats {
    /// Valid (authenticated) Binding requests received.
    pub requests_received: u64,
    /// Valid (authenticated, matching) Binding responses received.
    pub responses_received: u64,
    /// Binding success responses sent.
    pub responses_sent: u64,
    /// Binding requests sent for the first time (checks, nominations, consent).
    pub requests_sent: u64,
    /// Binding request retransmissions.
    pub retransmissions: u64,
    /// 487 Role Conflict responses sent.
    pub role_conflicts_sent: u64,
    /// Dropped: not STUN, unparsable, or missing a required attribute.
    pub dropped_malformed: u64,
    /// Dropped: FINGERPRINT missing or wrong.
    pub dropped_bad_fingerprint: u64,
    /// Dropped: USERNAME missing or not ours.
    pub dropped_bad_username: u64,
    /// Dropped: MESSAGE-INTEGRITY missing or wrong.
    pub dropped_bad_integrity: u64,
    /// Dropped: valid STUN the agent does not expect (unknown transaction, other method,
    /// request to a lite agent's unknown role, response from the wrong address, ...).
    pub dropped_unexpected: u64,
    /// Dropped outgoing datagrams or events because a queue was full, or a message could
    /// not be written.
    pub dropped_overflow: u64,
}

/// ICE username fragment and password of one side.
#[derive(Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// `ice-ufrag`.
    pub ufrag: String,
    /// `ice-pwd`.
    pub pwd: String,
}

impl std::fmt::Debug for IceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceCredentials")
            .field("ufrag", &self.ufrag)
            .field("pwd", &"<redacted>")
            .finish()
    }
}

impl IceCredentials {
    /// Credentials from signalling, checked against RFC 8839 (`ice-char`, lengths).
    pub fn new(ufrag: impl Into<String>, pwd: impl Into<String>) -> Result<Self, IceError> {
        let ufrag = ufrag.into();
        let pwd = pwd.into();
        if !is_ice_string(&ufrag, MIN_UFRAG_LEN) {
            return Err(IceError::InvalidUfrag);
        }
        if !is_ice_string(&pwd, MIN_PWD_LEN) {
            return Err(IceError::InvalidPassword);
        }
        Ok(IceCredentials { ufrag, pwd })
    }

    /// Fresh random credentials (8-character ufrag, 24-character password).
    pub fn random(rng: &mut impl Rng) -> Self {
        IceCredentials {
            ufrag: random_ice_string(rng, LOCAL_UFRAG_LEN),
            pwd: random_ice_string(rng, LOCAL_PWD_LEN),
        }
    }
}

fn is_ice_string(s: &str, min: usize) -> bool {
    (min..=MAX_CREDENTIAL_LEN).contains(&s.len()) && s.bytes().all(|b| ICE_CHARS.contains(&b))
}

fn random_ice_string(rng: &mut impl Rng, len: usize) -> String {
    (0..len)
        .map(|_| {
            let i = rng.random_range(0..ICE_CHARS.len());
            char::from(ICE_CHARS.get(i).copied().unwrap_or(b'a'))
        })
        .collect()
}

/// Credentials with their prepared MESSAGE-INTEGRITY key.
#[derive(Debug, Clone)]
struct Keyed {
    creds: IceCredentials,
    key: StunKey,
}

impl Keyed {
    fn new(creds: IceCredentials) -> Self {
        let key = StunKey::new(creds.pwd.as_bytes());
        Keyed { creds, key }
    }
}

/// Check state of a candidate pair (RFC 8445 §6.1.2.6; no Frozen: one component, and
/// pacing bounds the check rate anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairState {
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone)]
struct Pair {
    local: SocketAddr,
    remote: SocketAddr,
    local_priority: u32,
    remote_priority: u32,
    state: PairState,
    /// Controlled: the peer sent USE-CANDIDATE on this pair.
    nominated_by_peer: bool,
    /// Lite: when this 5-tuple last sent a valid request (for eviction).
    last_seen: Option<Instant>,
}

impl Pair {
    /// Pair priority (RFC 8445 §6.1.2.3).
    fn priority(&self, controlling: bool) -> u64 {
        let (g, d) = if controlling {
            (self.local_priority, self.remote_priority)
        } else {
            (self.remote_priority, self.local_priority)
        };
        let (g, d) = (u64::from(g), u64::from(d));
        (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
    }

    fn is(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.local == local && self.remote == remote
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxKind {
    /// An ordinary or triggered connectivity check.
    Check,
    /// A check with USE-CANDIDATE (controlling).
    Nominate,
    /// A consent-freshness request on the selected pair (not retransmitted).
    Consent,
}

#[derive(Debug, Clone)]
struct Transaction {
    id: TransactionId,
    local: SocketAddr,
    remote: SocketAddr,
    kind: TxKind,
    /// Whether the request claimed the controlling role (for 487 handling).
    controlling: bool,
    /// The remote password's key the request was signed with.
    key: StunKey,
    contents: Vec<u8>,
    attempts: u32,
    rto: Duration,
    /// Next retransmission, or (after the last one / for consent) when to give up.
    deadline: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Selected {
    local: SocketAddr,
    remote: SocketAddr,
    last_consent: Instant,
    next_consent: Instant,
}

/// The sans-IO ICE agent of one endpoint. See the [module docs](self).
#[derive(Debug)]
pub struct IceAgent {
    config: IceConfig,
    role: IceRole,
    rng: StdRng,
    tie_breaker: u64,
    local: Keyed,
    /// The local credentials before the last restart with the remote ufrag of that time,
    /// accepted until the peer uses the new ones (make-before-break).
    previous_local: Option<(Keyed, Option<String>)>,
    remote: Option<Keyed>,
    /// After a restart, whether new remote credentials are still awaited.
    awaiting_remote: bool,
    /// Local host candidates with their priority.
    local_candidates: Vec<(SocketAddr, u32)>,
    /// Remote candidates (signalled and peer-reflexive) with their priority.
    remote_candidates: Vec<(SocketAddr, u32)>,
    pairs: Vec<Pair>,
    triggered: VecDeque<(SocketAddr, SocketAddr)>,
    transactions: Vec<Transaction>,
    last_check_sent: Option<Instant>,
    /// Controlling: when the first pair of this generation succeeded.
    first_success: Option<Instant>,
    /// Controlling: a pair was nominated (successfully) in this generation.
    nominated: bool,
    selected: Option<Selected>,
    state: IceState,
    consent_expired: bool,
    last_now: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<IceEvent>,
    stats: IceStats,
}

impl IceAgent {
    /// A new agent with random local credentials and tie-breaker drawn from `rng`; `now` is
    /// the current time (the agent's clock starts there).
    pub fn new(config: IceConfig, rng: &mut impl RngCore, now: Instant) -> Self {
        let mut rng = StdRng::from_rng(rng);
        let local = Keyed::new(IceCredentials::random(&mut rng));
        let tie_breaker = rng.random();
        IceAgent {
            role: config.role,
            config,
            rng,
            tie_breaker,
            local,
            previous_local: None,
            remote: None,
            awaiting_remote: false,
            local_candidates: Vec::new(),
            remote_candidates: Vec::new(),
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            transactions: Vec::new(),
            last_check_sent: None,
            first_success: None,
            nominated: false,
            selected: None,
            state: IceState::New,
            consent_expired: false,
            last_now: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: IceStats::default(),
        }
    }

    /// The local credentials to put into signalling.
    pub fn local_credentials(&self) -> &IceCredentials {
        &self.local.creds
    }

    /// The remote credentials, if set.
    pub fn remote_credentials(&self) -> Option<&IceCredentials> {
        self.remote.as_ref().map(|r| &r.creds)
    }

    /// Set the peer's credentials from signalling (also after an ICE restart).
    pub fn set_remote_credentials(&mut self, creds: IceCredentials) {
        self.remote = Some(Keyed::new(creds));
        self.awaiting_remote = false;
    }

    /// The current role (a role conflict may have changed it).
    pub fn role(&self) -> IceRole {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> IceState {
        self.state
    }

    /// The counters.
    pub fn stats(&self) -> IceStats {
        self.stats
    }

    /// The selected `(local, remote)` 5-tuple, if any.
    pub fn selected_pair(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.selected.map(|s| (s.local, s.remote))
    }

    /// Whether media may be sent on the selected pair: a pair is selected, consent has not
    /// expired and the agent is not closed.
    pub fn can_send(&self) -> bool {
        self.selected.is_some() && !self.consent_expired && self.state != IceState::Closed
    }

    /// Whether a non-STUN datagram from `remote` to `local` belongs to this endpoint: the
    /// 5-tuple is the selected one or one proven by an authenticated STUN exchange (a
    /// succeeded check, or a valid request to a lite agent).
    pub fn is_valid_source(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        if self.consent_expired || self.state == IceState::Closed {
            return false;
        }
        self.selected_pair() == Some((local, remote))
            || self
                .pairs
                .iter()
                .any(|p| p.is(local, remote) && p.state == PairState::Succeeded)
    }

    /// Add a local host candidate (full agents; a lite agent answers on any address and
    /// ignores this).
    pub fn add_local_candidate(&mut self, addr: SocketAddr) -> Result<(), IceError> {
        self.check_open()?;
        check_candidate(addr)?;
        if self.role == IceRole::Lite || self.local_candidates.iter().any(|(a, _)| *a == addr) {
            return Ok(());
        }
        self.check_candidate_room()?;
        let index = u32::try_from(self.local_candidates.len()).unwrap_or(u32::MAX);
        let priority = candidate_priority(HOST_TYPE_PREFERENCE, index);
        self.local_candidates.push((addr, priority));
        let remotes: Vec<_> = self.remote_candidates.clone();
        for (remote, remote_priority) in remotes {
            self.add_pair(addr, priority, remote, remote_priority);
        }
        Ok(())
    }

    /// Add a remote candidate from signalling with its priority (full agents; a lite agent
    /// ignores it: it learns the peer's address from its checks).
    pub fn add_remote_candidate(
        &mut self,
        addr: SocketAddr,
        priority: u32,
    ) -> Result<(), IceError> {
        self.check_open()?;
        check_candidate(addr)?;
        if self.role == IceRole::Lite {
            return Ok(());
        }
        if let Some(existing) = self.remote_candidates.iter_mut().find(|(a, _)| *a == addr) {
            existing.1 = priority;
            return Ok(());
        }
        self.check_candidate_room()?;
        self.remote_candidates.push((addr, priority));
        let locals: Vec<_> = self.local_candidates.clone();
        for (local, local_priority) in locals {
            self.add_pair(local, local_priority, addr, priority);
        }
        Ok(())
    }

    /// ICE restart: new local credentials (returned, for signalling). The selected pair
    /// keeps working; the old local credentials stay accepted until the peer uses the new
    /// ones. A full agent re-checks all pairs once [`set_remote_credentials`] gave the
    /// peer's new credentials, and switches the selected pair when a new nomination
    /// succeeds (make-before-break).
    ///
    /// [`set_remote_credentials`]: IceAgent::set_remote_credentials
    pub fn restart(&mut self) -> Result<IceCredentials, IceError> {
        self.check_open()?;
        let new = Keyed::new(IceCredentials::random(&mut self.rng));
        let old = std::mem::replace(&mut self.local, new);
        let old_remote_ufrag = self.remote.as_ref().map(|r| r.creds.ufrag.clone());
        self.previous_local = Some((old, old_remote_ufrag));
        if self.role != IceRole::Lite {
            self.awaiting_remote = true;
            self.triggered.clear();
            self.transactions.retain(|t| t.kind == TxKind::Consent);
            for pair in &mut self.pairs {
                pair.state = PairState::Waiting;
                pair.nominated_by_peer = false;
            }
            self.first_success = None;
            self.nominated = false;
            if self.state == IceState::Failed {
                self.set_state(IceState::Checking);
            }
        }
        Ok(self.local.creds.clone())
    }

    /// Stop: no more transmits, events or timeouts after the `StateChanged(Closed)` event.
    pub fn close(&mut self) {
        if self.state != IceState::Closed {
            self.transmits.clear();
            self.transactions.clear();
            self.triggered.clear();
            self.set_state(IceState::Closed);
        }
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if !self.may_transmit() {
            self.transmits.clear();
            return None;
        }
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](IceAgent::handle_timeout) must be called next (may be in the
    /// past: call it right away). `None`: only new input can create work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.may_transmit() {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if self.has_check_work() {
            consider(
                self.last_check_sent
                    .map_or(self.last_now, |t| t + self.config.ta),
            );
        }
        for t in &self.transactions {
            consider(t.deadline);
        }
        if let Some(at) = self.nomination_deadline() {
            consider(at);
        }
        if let Some(s) = &self.selected {
            if self.role != IceRole::Lite {
                consider(s.next_consent);
            }
            if self.state == IceState::Connected {
                consider(s.last_consent + self.config.disconnected_timeout);
            }
            consider(s.last_consent + self.config.consent_timeout);
        }
        next
    }

    /// Advance timers to `now`: retransmissions, paced checks, nomination, consent.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        if !self.may_transmit() {
            return;
        }
        let now = self.last_now;
        self.check_consent(now);
        if !self.may_transmit() {
            return;
        }
        self.run_transactions(now);
        self.maybe_nominate(now);
        self.send_paced_check(now);
        self.send_consent(now);
        self.update_failed();
    }

    /// Process one received datagram (expected to be STUN; anything else is counted as
    /// malformed and dropped).
    pub fn handle_receive(&mut self, now: Instant, receive: Receive<'_>) {
        self.advance(now);
        if !self.may_transmit() {
            return;
        }
        let now = self.last_now;
        let message = match StunMessage::parse(receive.datagram) {
            Ok(message) => message,
            Err(_) => {
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        if message.is_binding_request() {
            self.handle_request(now, &receive, &message);
        } else if message.is_binding_success() || message.is_binding_error() {
            self.handle_response(now, &receive, &message);
        } else if message.is_binding_indication() {
            // Keepalive: nothing to do (it carries no integrity, so it is not consent).
        } else {
            self.stats.dropped_unexpected += 1;
        }
        self.update_failed();
    }

    // ---- receive path ------------------------------------------------------------------

    fn handle_request(&mut self, now: Instant, receive: &Receive<'_>, message: &StunMessage<'_>) {
        if message.verify_fingerprint().is_err() {
            self.stats.dropped_bad_fingerprint += 1;
            return;
        }
        if message.unknown_comprehension_required().is_some() {
            self.stats.dropped_malformed += 1;
            return;
        }
        let Some((ours, theirs)) = message.ice_ufrags() else {
            self.stats.dropped_bad_username += 1;
            return;
        };
        // The remote ufrag is checked when known, against the one that goes with the
        // local credentials the request names (the current or, after a restart, the old).
        let current = ours == self.local.creds.ufrag.as_bytes();
        let matched = if current {
            let remote_ufrag = self.remote.as_ref().map(|r| r.creds.ufrag.as_str());
            Some((self.local.key.clone(), remote_ufrag))
        } else {
            self.previous_local
                .as_ref()
                .filter(|(p, _)| ours == p.creds.ufrag.as_bytes())
                .map(|(p, remote_ufrag)| (p.key.clone(), remote_ufrag.as_deref()))
        };
        let Some((key, expected_remote)) = matched else {
            self.stats.dropped_bad_username += 1;
            return;
        };
        if expected_remote.is_some_and(|expected| theirs != expected.as_bytes()) {
            self.stats.dropped_bad_username += 1;
            return;
        }
        if message.verify_message_integrity_with(&key).is_err() {
            self.stats.dropped_bad_integrity += 1;
            return;
        }
        self.stats.requests_received += 1;
        if current {
            // The peer uses the new credentials: the restart's old ones are done with.
            self.previous_local = None;
        }
        let (local, remote) = (receive.destination, receive.source);

        // Role conflict (RFC 8445 §7.3.1.1), full agents only.
        match (
            self.role,
            message.ice_controlling(),
            message.ice_controlled(),
        ) {
            (IceRole::Controlling, Some(theirs), _) => {
                if self.tie_breaker >= theirs {
                    self.send_role_conflict(receive, message, &key);
                    return;
                }
                self.switch_role(IceRole::Controlled);
            }
            (IceRole::Controlled, _, Some(theirs)) => {
                if self.tie_breaker >= theirs {
                    self.switch_role(IceRole::Controlling);
                } else {
                    self.send_role_conflict(receive, message, &key);
                    return;
                }
            }
            _ => {}
        }

        self.send_success(receive, message, &key);

        match self.role {
            IceRole::Lite => self.lite_request(now, local, remote, message.use_candidate()),
            IceRole::Controlling | IceRole::Controlled => {
                self.full_request(now, local, remote, message)
            }
        }
    }

    fn lite_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        nominate: bool,
    ) {
        self.remember_lite_tuple(now, local, remote);
        match self.selected {
            Some(ref mut selected) if selected.local == local && selected.remote == remote => {
                selected.last_consent = now;
                if self.state == IceState::Disconnected {
                    self.set_state(IceState::Connected);
                }
            }
            Some(_) if nominate => self.select(now, local, remote),
            None if nominate || self.config.select_without_nomination => {
                self.select(now, local, remote)
            }
            _ => {}
        }
    }

    /// Remember a lite 5-tuple proven by a valid request, evicting the least recently seen
    /// unselected one when full.
    fn remember_lite_tuple(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        if let Some(pair) = self.pairs.iter_mut().find(|p| p.is(local, remote)) {
            pair.last_seen = Some(now);
            return;
        }
        if self.pairs.len() >= self.config.max_pairs.max(1) {
            let selected = self.selected_pair();
            let oldest = self
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| Some((p.local, p.remote)) != selected)
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => {
                    self.pairs.swap_remove(i);
                }
                None => return,
            }
        }
        self.pairs.push(Pair {
            local,
            remote,
            local_priority: 0,
            remote_priority: 0,
            state: PairState::Succeeded,
            nominated_by_peer: false,
            last_seen: Some(now),
        });
    }

    fn full_request(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        message: &StunMessage<'_>,
    ) {
        let Some(local_priority) = self
            .local_candidates
            .iter()
            .find(|(a, _)| *a == local)
            .map(|(_, p)| *p)
        else {
            // Answered, but not a local candidate of ours: no pair to check.
            return;
        };
        if !self.remote_candidates.iter().any(|(a, _)| *a == remote) {
            // Peer-reflexive remote candidate (RFC 8445 §7.3.1.3).
            if self.remote_candidates.len() + self.local_candidates.len()
                >= self.config.max_candidates
            {
                self.stats.dropped_overflow += 1;
                return;
            }
            let priority = message
                .priority()
                .unwrap_or_else(|| candidate_priority(PRFLX_TYPE_PREFERENCE, 0));
            self.remote_candidates.push((remote, priority));
            self.add_pair(local, local_priority, remote, priority);
        }
        let controlled = self.role == IceRole::Controlled;
        let Some(pair) = self.pairs.iter_mut().find(|p| p.is(local, remote)) else {
            return;
        };
        if controlled && message.use_candidate() {
            pair.nominated_by_peer = true;
        }
        match pair.state {
            PairState::Succeeded => {
                if controlled && pair.nominated_by_peer {
                    self.select_if_new(now, local, remote);
                }
            }
            PairState::Waiting | PairState::Failed => {
                pair.state = PairState::Waiting;
                if !self.triggered.contains(&(local, remote)) {
                    self.triggered.push_back((local, remote));
                }
            }
            PairState::InProgress => {}
        }
    }

    fn handle_response(&mut self, now: Instant, receive: &Receive<'_>, message: &StunMessage<'_>) {
        let id = message.transaction_id();
        let Some(index) = self.transactions.iter().position(|t| t.id == id) else {
            self.stats.dropped_unexpected += 1;
            return;
        };
        if message.verify_fingerprint().is_err() {
            self.stats.dropped_bad_fingerprint += 1;
            return;
        }
        let Some(tx) = self.transactions.get(index) else {
            return;
        };
        if message.verify_message_integrity_with(&tx.key).is_err() {
            self.stats.dropped_bad_integrity += 1;
            return;
        }
        let destination_ok =
            receive.destination == tx.local || receive.destination.ip().is_unspecified();
        if receive.source != tx.remote || !destination_ok {
            // Not symmetric (RFC 8445 §7.2.5.2.1): authenticated but from the wrong place.
            self.stats.dropped_unexpected += 1;
            return;
        }
        if message.is_binding_success() && message.xor_mapped_address().is_none() {
            self.stats.dropped_malformed += 1;
            return;
        }
        self.stats.responses_received += 1;
        let tx = self.transactions.swap_remove(index);
        if message.is_binding_error() {
            let code = message.error_code().map(|e| e.code());
            self.handle_error_response(now, &tx, code);
            return;
        }
        // Any authenticated response on the selected pair is consent.
        if let Some(selected) = self.selected.as_mut() {
            if selected.local == tx.local && selected.remote == tx.remote {
                selected.last_consent = now;
                if self.state == IceState::Disconnected {
                    self.set_state(IceState::Connected);
                }
            }
        }
        if tx.kind == TxKind::Consent {
            return;
        }
        let controlled = self.role == IceRole::Controlled;
        let Some(pair) = self.pairs.iter_mut().find(|p| p.is(tx.local, tx.remote)) else {
            return;
        };
        pair.state = PairState::Succeeded;
        let nominated_by_peer = pair.nominated_by_peer;
        self.first_success.get_or_insert(now);
        if tx.kind == TxKind::Nominate && self.role == IceRole::Controlling {
            self.nominated = true;
            self.select_if_new(now, tx.local, tx.remote);
        } else if controlled && nominated_by_peer {
            self.select_if_new(now, tx.local, tx.remote);
        }
    }

    fn handle_error_response(&mut self, _now: Instant, tx: &Transaction, code: Option<u16>) {
        if tx.kind == TxKind::Consent {
            // No consent from this response; the timer decides.
            return;
        }
        let pair = self.pairs.iter_mut().find(|p| p.is(tx.local, tx.remote));
        if code == Some(error_code::ROLE_CONFLICT) {
            // RFC 8445 §7.2.5.1: switch to the role opposite to the one the request claimed
            // and retry the check.
            if let Some(pair) = pair {
                pair.state = PairState::Waiting;
                self.triggered.push_back((tx.local, tx.remote));
            }
            let new_role = if tx.controlling {
                IceRole::Controlled
            } else {
                IceRole::Controlling
            };
            if self.role != new_role {
                self.switch_role(new_role);
            }
        } else if let Some(pair) = pair {
            pair.state = PairState::Failed;
        }
    }

    // ---- timers ------------------------------------------------------------------------

    fn advance(&mut self, now: Instant) {
        if now > self.last_now {
            self.last_now = now;
        }
    }

    fn check_consent(&mut self, now: Instant) {
        let Some(selected) = self.selected else {
            return;
        };
        let silent = now.saturating_duration_since(selected.last_consent);
        if silent >= self.config.consent_timeout {
            self.consent_expired = true;
            self.transmits.clear();
            self.transactions.clear();
            self.triggered.clear();
            self.push_event(IceEvent::ConsentExpired);
            self.set_state(IceState::Failed);
        } else if silent >= self.config.disconnected_timeout && self.state == IceState::Connected {
            self.set_state(IceState::Disconnected);
        }
    }

    fn run_transactions(&mut self, now: Instant) {
        let mut index = 0;
        while let Some(tx) = self.transactions.get_mut(index) {
            if tx.deadline > now {
                index += 1;
                continue;
            }
            if tx.kind != TxKind::Consent && tx.attempts < self.config.max_check_attempts {
                tx.attempts += 1;
                tx.rto = tx.rto.saturating_mul(2).min(self.config.max_rto);
                tx.deadline = now + tx.rto;
                let transmit = Transmit {
                    source: tx.local,
                    destination: tx.remote,
                    contents: tx.contents.clone(),
                };
                self.stats.retransmissions += 1;
                self.queue_transmit(transmit);
                index += 1;
                continue;
            }
            // Timed out.
            let tx = self.transactions.swap_remove(index);
            if tx.kind != TxKind::Consent {
                if let Some(pair) = self.pairs.iter_mut().find(|p| p.is(tx.local, tx.remote)) {
                    pair.state = PairState::Failed;
                }
            }
        }
    }

    fn nomination_deadline(&self) -> Option<Instant> {
        self.nomination_candidate().map(|(_, at)| at)
    }

    fn nomination_in_flight(&self) -> bool {
        self.transactions.iter().any(|t| t.kind == TxKind::Nominate)
    }

    /// Controlling, regular nomination: the best succeeded pair and when to nominate it:
    /// right away when no higher-priority pair is still being checked, else
    /// `nomination_delay` after the first success.
    fn nomination_candidate(&self) -> Option<((SocketAddr, SocketAddr), Instant)> {
        if self.role != IceRole::Controlling
            || self.nominated
            || self.nomination_in_flight()
            || self.remote.is_none()
            || self.awaiting_remote
        {
            return None;
        }
        let best = self
            .pairs
            .iter()
            .filter(|p| p.state == PairState::Succeeded)
            .max_by_key(|p| p.priority(true))?;
        let best_priority = best.priority(true);
        let better_pending = self.pairs.iter().any(|p| {
            matches!(p.state, PairState::Waiting | PairState::InProgress)
                && p.priority(true) > best_priority
        });
        let at = match self.first_success {
            Some(first) if better_pending => first + self.config.nomination_delay,
            _ => self.last_now,
        };
        Some(((best.local, best.remote), at))
    }

    fn maybe_nominate(&mut self, now: Instant) {
        if let Some(((local, remote), at)) = self.nomination_candidate() {
            if now >= at {
                self.start_transaction(now, local, remote, TxKind::Nominate);
            }
        }
    }

    fn has_check_work(&self) -> bool {
        if self.role == IceRole::Lite || self.remote.is_none() || self.awaiting_remote {
            return false;
        }
        !self.triggered.is_empty() || (!self.checks_done() && self.next_ordinary_pair().is_some())
    }

    /// Ordinary checks stop once this generation's nomination succeeded.
    fn checks_done(&self) -> bool {
        self.role == IceRole::Controlling && self.nominated
    }

    fn next_ordinary_pair(&self) -> Option<(SocketAddr, SocketAddr)> {
        let controlling = self.role == IceRole::Controlling;
        self.pairs
            .iter()
            .filter(|p| p.state == PairState::Waiting)
            .max_by_key(|p| p.priority(controlling))
            .map(|p| (p.local, p.remote))
    }

    fn send_paced_check(&mut self, now: Instant) {
        if !self.has_check_work() {
            return;
        }
        if self
            .last_check_sent
            .is_some_and(|t| now < t + self.config.ta)
        {
            return;
        }
        let next = loop {
            match self.triggered.pop_front() {
                Some((local, remote)) => {
                    let waiting = self
                        .pairs
                        .iter()
                        .any(|p| p.is(local, remote) && p.state == PairState::Waiting);
                    if waiting {
                        break Some((local, remote));
                    }
                }
                None if self.checks_done() => break None,
                None => break self.next_ordinary_pair(),
            }
        };
        let Some((local, remote)) = next else {
            return;
        };
        if let Some(pair) = self.pairs.iter_mut().find(|p| p.is(local, remote)) {
            pair.state = PairState::InProgress;
        }
        self.last_check_sent = Some(now);
        if self.state == IceState::New {
            self.set_state(IceState::Checking);
        }
        self.start_transaction(now, local, remote, TxKind::Check);
    }

    fn send_consent(&mut self, now: Instant) {
        if self.role == IceRole::Lite {
            return;
        }
        let Some(selected) = self.selected else {
            return;
        };
        if now < selected.next_consent {
            return;
        }
        let next = now + self.jittered_consent_interval();
        if let Some(s) = self.selected.as_mut() {
            s.next_consent = next;
        }
        let consent = self
            .transactions
            .iter()
            .filter(|t| t.kind == TxKind::Consent)
            .count();
        if consent >= MAX_CONSENT_TRANSACTIONS {
            return;
        }
        self.start_transaction(now, selected.local, selected.remote, TxKind::Consent);
    }

    fn jittered_consent_interval(&mut self) -> Duration {
        let factor: f64 = self.rng.random_range(0.8..=1.2);
        let interval = self.config.consent_interval;
        Duration::try_from_secs_f64(interval.as_secs_f64() * factor).unwrap_or(interval)
    }

    fn update_failed(&mut self) {
        if self.role == IceRole::Lite
            || self.selected.is_some()
            || !matches!(self.state, IceState::Checking)
            || self.pairs.is_empty()
            || !self.transactions.is_empty()
            || !self.triggered.is_empty()
        {
            return;
        }
        if self.pairs.iter().all(|p| p.state == PairState::Failed) {
            self.set_state(IceState::Failed);
        }
    }

    // ---- sending -----------------------------------------------------------------------

    fn start_transaction(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        kind: TxKind,
    ) {
        let Some(remote_creds) = self.remote.clone() else {
            return;
        };
        let local_priority = self
            .local_candidates
            .iter()
            .position(|(a, _)| *a == local)
            .and_then(|i| u32::try_from(i).ok())
            .map_or(candidate_priority(PRFLX_TYPE_PREFERENCE, 0), |i| {
                candidate_priority(PRFLX_TYPE_PREFERENCE, i)
            });
        let mut id = [0u8; 12];
        self.rng.fill(&mut id);
        let controlling = self.role == IceRole::Controlling;
        let contents = match self.build_request(
            id,
            &remote_creds,
            local_priority,
            controlling,
            kind == TxKind::Nominate,
        ) {
            Ok(contents) => contents,
            Err(_) => {
                self.stats.dropped_overflow += 1;
                return;
            }
        };
        let rto = if kind == TxKind::Consent {
            self.config.consent_timeout
        } else {
            self.config.initial_rto
        };
        self.transactions.push(Transaction {
            id,
            local,
            remote,
            kind,
            controlling,
            key: remote_creds.key,
            contents: contents.clone(),
            attempts: 1,
            rto,
            deadline: now + rto,
        });
        self.stats.requests_sent += 1;
        self.queue_transmit(Transmit {
            source: local,
            destination: remote,
            contents,
        });
    }

    fn build_request(
        &self,
        id: TransactionId,
        remote: &Keyed,
        priority: u32,
        controlling: bool,
        use_candidate: bool,
    ) -> Result<Vec<u8>, StunError> {
        let username = format!("{}:{}", remote.creds.ufrag, self.local.creds.ufrag);
        let mut buf = vec![0u8; 128 + username.len()];
        let mut writer = StunWriter::binding_request(&mut buf, id)?;
        writer.username(username.as_bytes())?.priority(priority)?;
        if controlling {
            writer.ice_controlling(self.tie_breaker)?;
        } else {
            writer.ice_controlled(self.tie_breaker)?;
        }
        if use_candidate {
            writer.use_candidate()?;
        }
        writer.message_integrity(&remote.key)?.fingerprint()?;
        let len = writer.finish();
        buf.truncate(len);
        Ok(buf)
    }

    fn send_success(&mut self, receive: &Receive<'_>, request: &StunMessage<'_>, key: &StunKey) {
        let mut buf = vec![0u8; 96];
        let written = (|| -> Result<usize, StunError> {
            let mut writer = StunWriter::binding_success(&mut buf, request.transaction_id())?;
            writer
                .xor_mapped_address(receive.source)?
                .message_integrity(key)?
                .fingerprint()?;
            Ok(writer.finish())
        })();
        self.queue_response(receive, buf, written);
        self.stats.responses_sent += 1;
    }

    fn send_role_conflict(
        &mut self,
        receive: &Receive<'_>,
        request: &StunMessage<'_>,
        key: &StunKey,
    ) {
        let mut buf = vec![0u8; 96];
        let written = (|| -> Result<usize, StunError> {
            let mut writer = StunWriter::binding_error(&mut buf, request.transaction_id())?;
            writer
                .error_code(error_code::ROLE_CONFLICT, "Role Conflict")?
                .message_integrity(key)?
                .fingerprint()?;
            Ok(writer.finish())
        })();
        self.queue_response(receive, buf, written);
        self.stats.role_conflicts_sent += 1;
    }

    fn queue_response(
        &mut self,
        receive: &Receive<'_>,
        mut buf: Vec<u8>,
        written: Result<usize, StunError>,
    ) {
        match written {
            Ok(len) => {
                buf.truncate(len);
                self.queue_transmit(Transmit {
                    source: receive.destination,
                    destination: receive.source,
                    contents: buf,
                });
            }
            Err(_) => self.stats.dropped_overflow += 1,
        }
    }

    fn queue_transmit(&mut self, transmit: Transmit) {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            self.stats.dropped_overflow += 1;
            return;
        }
        self.transmits.push_back(transmit);
    }

    // ---- state -------------------------------------------------------------------------

    fn may_transmit(&self) -> bool {
        !self.consent_expired && self.state != IceState::Closed
    }

    fn check_open(&self) -> Result<(), IceError> {
        if self.may_transmit() {
            Ok(())
        } else {
            Err(IceError::Closed)
        }
    }

    fn check_candidate_room(&self) -> Result<(), IceError> {
        if self.local_candidates.len() + self.remote_candidates.len() >= self.config.max_candidates
        {
            Err(IceError::TooManyCandidates)
        } else {
            Ok(())
        }
    }

    fn add_pair(
        &mut self,
        local: SocketAddr,
        local_priority: u32,
        remote: SocketAddr,
        remote_priority: u32,
    ) {
        if local.is_ipv4() != remote.is_ipv4()
            || self.pairs.iter().any(|p| p.is(local, remote))
            || self.pairs.len() >= self.config.max_pairs
        {
            return;
        }
        self.pairs.push(Pair {
            local,
            remote,
            local_priority,
            remote_priority,
            state: PairState::Waiting,
            nominated_by_peer: false,
            last_seen: None,
        });
    }

    fn select_if_new(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        if self.selected_pair() != Some((local, remote)) {
            self.select(now, local, remote);
        }
    }

    fn select(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        let next_consent = now + self.jittered_consent_interval();
        self.selected = Some(Selected {
            local,
            remote,
            last_consent: now,
            next_consent,
        });
        self.push_event(IceEvent::SelectedPairChanged { local, remote });
        self.set_state(IceState::Connected);
    }

    fn switch_role(&mut self, role: IceRole) {
        self.role = role;
        self.push_event(IceEvent::RoleChanged {
            controlling: role == IceRole::Controlling,
        });
    }

    fn set_state(&mut self, state: IceState) {
        if self.state != state {
            self.state = state;
            self.push_event(IceEvent::StateChanged(state));
        }
    }

    fn push_event(&mut self, event: IceEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
            self.stats.dropped_overflow += 1;
        }
        self.events.push_back(event);
    }
}

/// Candidate priority for component 1 (RFC 8445 §5.1.2.1), local preference decreasing
/// with the candidate's index.
fn candidate_priority(type_preference: u32, index: u32) -> u32 {
    let local_preference = 65_535u32.saturating_sub(index);
    (type_preference << 24) | (local_preference << 8) | (256 - 1)
}

fn check_candidate(addr: SocketAddr) -> Result<(), IceError> {
    let ip = addr.ip();
    if addr.port() == 0 || ip.is_unspecified() || ip.is_multicast() {
        Err(IceError::InvalidCandidate)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_are_valid() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let c = IceCredentials::random(&mut rng);
            assert!(IceCredentials::new(c.ufrag.clone(), c.pwd.clone()).is_ok());
        }
    }

    #[test]
    fn credentials_are_checked() {
        assert_eq!(
            IceCredentials::new("abc", "a".repeat(22)),
            Err(IceError::InvalidUfrag)
        );
        assert_eq!(
            IceCredentials::new("ab:c", "a".repeat(22)),
            Err(IceError::InvalidUfrag)
        );
        assert_eq!(
            IceCredentials::new("abcd", "a".repeat(21)),
            Err(IceError::InvalidPassword)
        );
        let debug = format!("{:?}", IceCredentials::new("abcd", "p".repeat(22)));
        assert!(!debug.contains("pppp"));
    }

    #[test]
    fn pair_priority_follows_rfc() {
        let pair = Pair {
            local: SocketAddr::from(([10, 0, 0, 1], 1)),
            remote: SocketAddr::from(([10, 0, 0, 2], 2)),
            local_priority: 10,
            remote_priority: 20,
            state: PairState::Waiting,
            nominated_by_peer: false,
            last_seen: None,
        };
        assert_eq!(pair.priority(true), (10u64 << 32) + 40);
        assert_eq!(pair.priority(false), (10u64 << 32) + 40 + 1);
    }

    #[test]
    fn host_priority() {
        assert_eq!(candidate_priority(126, 0), 0x7EFF_FFFF);
    }

    #[test]
    fn error_display_has_no_addresses() {
        for e in [
            IceError::InvalidUfrag,
            IceError::InvalidPassword,
            IceError::InvalidCandidate,
            IceError::TooManyCandidates,
            IceError::Closed,
        ] {
            // Fixed texts: no address or port can be formatted into them.
            let text = e.to_string();
            assert!(!text.contains('.') && !text.contains(':') && !text.contains('{'));
        }
    }
}
