//! One simulated WebRTC endpoint — ICE, DTLS-SRTP, SRTP/SRTCP and the RTCP a browser sends
//! — and the I/O driver that serves many of them from one thread.
//!
//! [`Participant`] is a sans-IO state machine in the manner of str0m and quinn-proto: it owns
//! no socket, no clock and no task. The caller feeds it datagrams
//! ([`Participant::handle_datagram`]) and timer expiries ([`Participant::handle_timeout`]),
//! hands it media ([`Participant::send_rtp`], [`Participant::send_rtcp`]) and drains
//! [`Participant::poll_transmit`], [`Participant::poll_event`] and
//! [`Participant::poll_timeout`]. It is built on the project's transport crates (the ICE
//! agent and DTLS-SRTP handshake of `relais-transport`, `relais-srtp`, `relais-rtp`), never
//! on the node's conference code, so a run exercises the node as a real client would.
//!
//! The one piece that is not sans-IO is the DTLS handshake of `relais-transport`, which runs
//! as a tokio future: the participant hands it over once through
//! [`Participant::poll_dtls_task`] and the shell spawns it. While it runs, the handshake's
//! output arrives from that task, so [`Participant::poll_timeout`] asks to be polled every
//! few milliseconds until the handshake is done.
//!
//! Receiving is built for a load generator: SRTP packets are *not* all decrypted. The RTP
//! header and its extensions are in the clear, so every packet is reported from its clear
//! header ([`ReceivedRtp`]) and only one in [`ParticipantConfig::verify_one_in`] per stream,
//! every RTX retransmission and the first packet of each video frame (for the payload types
//! of [`ParticipantConfig::frame_start_payload_types`]) is authenticated and decrypted
//! ([`Verification`]). SRTCP from the node is
//! always decrypted, parsed and surfaced as [`ParticipantEvent`]s (keyframe requests,
//! NACKs, REMB, transport-wide feedback, sender and receiver reports), so the media layer can
//! answer them. Like a browser, the participant itself sends receiver (and sender) reports
//! every [`ParticipantConfig::report_interval`], NACKs sequence gaps once after
//! [`ParticipantConfig::nack_delay`], and sends transport-wide congestion control feedback
//! when [`ParticipantConfig::transport_cc_id`] is set. With
//! [`ParticipantConfig::send_estimate`] it also keeps a browser's send-side bandwidth
//! estimate of its own uplink ([`SendEstimate`]: the node's transport-cc feedback about the
//! participant's packets, capped by the node's REMB) and reports it as
//! [`ParticipantEvent::SendEstimate`] after every feedback or REMB.
//!
//! [`driver`] is the tokio shell: one thread, many participants, each with its own UDP
//! socket, and an [`Application`] hook through which media models send at exact times.

mod estimate;
mod packet;
mod receive;
mod rtcp;
mod stats;
mod twcc;

pub mod driver;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use rand::RngCore;
use relais_rtp::demux::{classify, DatagramKind};
use relais_rtp::rtcp::packets::{ReceiverReport, SenderReport, TransportLayerCc};
use relais_rtp::rtcp::{feedback, RtcpPacket};
use relais_rtp::rtp::RtpPacket;
use relais_srtp::{
    DtlsRole, ReplayProtection, SrtpConfig, SrtpError, SrtpProfile, SrtpReceiver, SrtpSender,
};
use relais_transport::dtls_srtp::{
    DtlsSrtpConfig, DtlsSrtpError, DtlsSrtpHandshake, DtlsSrtpTask, Fingerprint, NodeCertificate,
};
use relais_transport::ice::{
    IceAgent, IceConfig, IceCredentials, IceError, IceEvent, IceState, Receive,
};

pub use driver::{Application, Driver, Outbox, ParticipantId};
pub use estimate::{ProbePadding, SendEstimate, SendEstimateConfig, SendEstimateUpdate};
pub use packet::{ReceivedRtp, Verification};
pub use stats::{ParticipantStats, RtcpCounts};

use packet::ClearHeader;
use receive::ReceiveStreams;
use rtcp::NtpClock;
use twcc::TwccFeedback;

/// Largest datagram a participant builds (RTP plus SRTP overhead fits well below).
pub const MAX_DATAGRAM: usize = 1500;

/// How often the shell must poll while the DTLS task runs (its output arrives from there).
const DTLS_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Most datagrams waiting for the shell; beyond it new ones are dropped (counted).
const MAX_QUEUED_TRANSMITS: usize = 4096;

/// Most events waiting for the shell; beyond it the oldest are dropped.
const MAX_QUEUED_EVENTS: usize = 4096;

/// Most padding bytes in one RTP packet (its last byte counts them).
const MAX_PADDING: usize = 255;

/// RTP header and the one-word extension block of a probe padding packet.
const PADDING_HEADER_LEN: usize = 12 + 8;

/// Type preference of host candidates (RFC 8445 §5.1.2.2).
const HOST_PRIORITY: u32 = (126 << 24) | (65_535 << 8) | 255;

/// Settings of one participant.
#[derive(Debug, Clone)]
pub struct ParticipantConfig {
    /// The ICE agent. Controlled for Colibri2 (the node controls, as Jicofo asks).
    pub ice: IceConfig,
    /// The DTLS-SRTP handshake.
    pub dtls: DtlsSrtpConfig,
    /// One in this many received SRTP packets is authenticated and decrypted (1: all, 0:
    /// none). RTX packets always are.
    pub verify_one_in: u32,
    /// Payload types (video) whose frames' first packets are decrypted: the first packet of
    /// a stream with a newer RTP timestamp than any before. That one packet per frame says
    /// whether the frame is a keyframe and, for keyframes, the resolution, which is how a
    /// receiver sees the layers the node forwards; the rest of the frame stays unread.
    pub frame_start_payload_types: Vec<u8>,
    /// Payload types that are RTX: never NACKed, and always verified (their payload starts
    /// with the original sequence number) unless they carry padding (bandwidth probes).
    pub rtx_payload_types: Vec<u8>,
    /// RTP clock rate by payload type, for jitter and sender reports (90 kHz otherwise).
    pub clock_rates: Vec<(u8, u32)>,
    /// Interval of receiver/sender reports (browsers: about one second).
    pub report_interval: Duration,
    /// How long a sequence gap may stay open (reordering) before it is NACKed.
    pub nack_delay: Duration,
    /// The transport-wide sequence number extension id: received packets carrying it are
    /// acknowledged in transport-cc feedback, and sent packets carrying it get the
    /// participant's transport-wide sequence number written in.
    pub transport_cc_id: Option<u8>,
    /// Interval of transport-cc feedback.
    pub transport_cc_interval: Duration,
    /// SSRC the participant's own RTCP (reports, NACK, feedback) is sent from.
    pub rtcp_ssrc: u32,
    /// Most SSRCs tracked by the SRTP receiver (each forwarded stream is one).
    pub max_receive_ssrcs: usize,
    /// Keep a send-side bandwidth estimate ([`SendEstimate`]): every sent packet that gets
    /// a transport-wide sequence number is recorded, the node's transport-cc feedback and
    /// REMB update it, and with probing the participant sends the probe padding itself.
    /// `None`: no estimate.
    pub send_estimate: Option<SendEstimateConfig>,
}

impl Default for ParticipantConfig {
    fn default() -> Self {
        Self {
            ice: IceConfig::controlled(),
            dtls: DtlsSrtpConfig::default(),
            verify_one_in: 64,
            frame_start_payload_types: Vec::new(),
            rtx_payload_types: vec![96, 97, 99, 42],
            clock_rates: vec![(111, 48_000), (0, 8_000), (8, 8_000), (9, 8_000)],
            report_interval: Duration::from_secs(1),
            nack_delay: Duration::from_millis(20),
            transport_cc_id: None,
            transport_cc_interval: Duration::from_millis(100),
            rtcp_ssrc: 1,
            max_receive_ssrcs: 2048,
            send_estimate: None,
        }
    }
}

impl ParticipantConfig {
    fn clock_rate(&self, payload_type: u8) -> u32 {
        self.clock_rates
            .iter()
            .find(|(pt, _)| *pt == payload_type)
            .map_or(90_000, |(_, rate)| *rate)
    }
}

/// A candidate: an address and its ICE priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The transport address.
    pub address: SocketAddr,
    /// The ICE priority.
    pub priority: u32,
}

/// What the participant tells the SFU about its transport.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    /// ICE ufrag and pwd.
    pub credentials: IceCredentials,
    /// The participant's DTLS certificate fingerprint.
    pub fingerprint: Fingerprint,
    /// Its host candidate(s).
    pub candidates: Vec<Candidate>,
}

/// What the SFU told the participant about its transport.
#[derive(Debug, Clone)]
pub struct RemoteTransport {
    /// The SFU's ICE ufrag and pwd.
    pub credentials: IceCredentials,
    /// The SFU's candidates.
    pub candidates: Vec<Candidate>,
    /// The SFU's DTLS certificate fingerprint.
    pub fingerprint: Fingerprint,
    /// The participant's own DTLS role (client when the SFU answered `actpass` or
    /// `passive`).
    pub dtls_role: DtlsRole,
}

/// Why a participant call failed. Never contains an address.
#[derive(Debug, thiserror::Error)]
pub enum ParticipantError {
    /// ICE refused a credential or candidate.
    #[error("ICE: {0}")]
    Ice(#[from] IceError),
    /// The DTLS handshake could not start or failed.
    #[error("DTLS: {0}")]
    Dtls(#[from] DtlsSrtpError),
    /// SRTP could not be keyed or protect a packet.
    #[error("SRTP: {0}")]
    Srtp(#[from] SrtpError),
    /// Media before ICE and DTLS are up, or after close.
    #[error("the transport is not connected")]
    NotConnected,
    /// The packet is larger than [`MAX_DATAGRAM`] allows.
    #[error("packet of {len} bytes is too large")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// The bytes are not an RTP (or RTCP) packet.
    #[error("not a valid packet")]
    Malformed,
    /// ICE failed or consent expired.
    #[error("ICE failed")]
    IceFailed,
}

/// Something the media layer or the harness should know.
#[derive(Debug)]
pub enum ParticipantEvent {
    /// ICE changed state.
    IceStateChanged(IceState),
    /// ICE and DTLS are up and SRTP is keyed: media can flow.
    Connected {
        /// The negotiated SRTP profile.
        profile: SrtpProfile,
    },
    /// The transport failed for good (DTLS error, ICE failure, consent expiry).
    Failed(ParticipantError),
    /// The node asks for a keyframe on `ssrc` (PLI, or FIR when `full_intra`).
    KeyframeRequest {
        /// The media SSRC.
        ssrc: u32,
        /// Whether it was a FIR.
        full_intra: bool,
    },
    /// The node asks for retransmissions.
    Nack {
        /// The media SSRC.
        ssrc: u32,
        /// The lost sequence numbers.
        sequence_numbers: Vec<u16>,
    },
    /// The node's receiver estimate.
    Remb {
        /// Estimated bitrate.
        bitrate_bps: u64,
        /// The SSRCs it applies to.
        ssrcs: Vec<u32>,
    },
    /// Transport-wide congestion control feedback about the participant's packets.
    TransportFeedback(Box<TransportLayerCc>),
    /// The participant's send-side estimate after a transport-cc feedback or a REMB (only
    /// with [`ParticipantConfig::send_estimate`]).
    SendEstimate(SendEstimateUpdate),
    /// A sender report about a stream the participant receives.
    SenderReport {
        /// The stream.
        ssrc: u32,
        /// 32.32 NTP time.
        ntp_time: u64,
        /// RTP timestamp at `ntp_time`.
        rtp_time: u32,
        /// Packets sent.
        packet_count: u32,
        /// Payload octets sent.
        octet_count: u32,
    },
    /// A report block about a stream the participant sends.
    ReceptionReport {
        /// The participant's stream.
        ssrc: u32,
        /// Fraction lost since the previous report, 1/256 units.
        fraction_lost: u8,
        /// Cumulative packets lost.
        cumulative_lost: i32,
        /// Extended highest sequence number received.
        extended_highest_sequence: u32,
        /// Interarrival jitter, timestamp units.
        jitter: u32,
        /// Round trip, when the block echoes one of the participant's sender reports.
        round_trip: Option<Duration>,
    },
    /// The node ended streams.
    Goodbye {
        /// The SSRCs.
        ssrcs: Vec<u32>,
    },
}

/// A datagram to send.
#[derive(Debug)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// The bytes. Hand the vector back with [`Participant::recycle`] after sending.
    pub contents: Vec<u8>,
}

/// State of one stream the participant sends (for sender reports).
#[derive(Debug, Clone, Copy)]
struct SendStream {
    clock_rate: u32,
    packets: u32,
    octets: u32,
    last_timestamp: u32,
    last_sent: Instant,
}

/// Keyed SRTP contexts.
struct Srtp {
    sender: SrtpSender,
    receiver: SrtpReceiver,
    profile: SrtpProfile,
}

/// One simulated WebRTC endpoint. See the [module documentation](self).
pub struct Participant {
    config: ParticipantConfig,
    local: SocketAddr,
    certificate: NodeCertificate,
    ice: IceAgent,
    remote_dtls: Option<(Fingerprint, DtlsRole)>,
    dtls: Option<DtlsSrtpHandshake>,
    dtls_task: Option<DtlsSrtpTask>,
    srtp: Option<Srtp>,
    selected: Option<SocketAddr>,
    events: VecDeque<ParticipantEvent>,
    transmits: VecDeque<Transmit>,
    pool: Vec<Vec<u8>>,
    receive: ReceiveStreams,
    sending: HashMap<u32, SendStream>,
    twcc: Option<TwccFeedback>,
    send_estimate: Option<SendEstimate>,
    transport_sequence: u16,
    /// Next sequence number of the probe padding stream.
    probe_sequence: u16,
    next_report: Option<Instant>,
    clock: NtpClock,
    last_now: Instant,
    failed: bool,
    closed: bool,
    stats: ParticipantStats,
    nack_scratch: Vec<(u32, Vec<u16>)>,
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant")
            .field("ice", &self.ice.state())
            .field("connected", &self.is_connected())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Participant {
    /// A participant whose socket is bound at `local` (its one host candidate), with its
    /// own ICE credentials from `rng` and the DTLS `certificate` (one may serve many
    /// participants: it only authenticates the fingerprint).
    pub fn new(
        config: ParticipantConfig,
        local: SocketAddr,
        certificate: NodeCertificate,
        rng: &mut impl RngCore,
        now: Instant,
    ) -> Result<Self, ParticipantError> {
        let mut ice = IceAgent::new(config.ice.clone(), rng, now);
        ice.add_local_candidate(local)?;
        let twcc = config
            .transport_cc_id
            .map(|_| TwccFeedback::new(now, config.transport_cc_interval));
        let send_estimate = config.send_estimate.map(|c| SendEstimate::new(c, now));
        Ok(Self {
            receive: ReceiveStreams::new(now, config.nack_delay),
            config,
            local,
            certificate,
            ice,
            remote_dtls: None,
            dtls: None,
            dtls_task: None,
            srtp: None,
            selected: None,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            pool: Vec::new(),
            sending: HashMap::new(),
            twcc,
            send_estimate,
            transport_sequence: 0,
            probe_sequence: 0,
            next_report: None,
            // The only wall-clock read: NTP timestamps of sender reports need one anchor.
            clock: NtpClock::new(now, SystemTime::now()),
            last_now: now,
            failed: false,
            closed: false,
            stats: ParticipantStats::default(),
            nack_scratch: Vec::new(),
        })
    }

    /// The local address (the socket the driver must use for this participant).
    pub fn local_address(&self) -> SocketAddr {
        self.local
    }

    /// What to tell the SFU: ICE credentials, fingerprint, host candidate.
    pub fn local_transport(&self) -> LocalTransport {
        LocalTransport {
            credentials: self.ice.local_credentials().clone(),
            fingerprint: self.certificate.fingerprint().clone(),
            candidates: vec![Candidate {
                address: self.local,
                priority: HOST_PRIORITY,
            }],
        }
    }

    /// Applies the SFU's transport: ICE starts checking, DTLS starts once a pair is
    /// selected.
    pub fn set_remote(
        &mut self,
        now: Instant,
        remote: RemoteTransport,
    ) -> Result<(), ParticipantError> {
        self.ice.set_remote_credentials(remote.credentials);
        for candidate in &remote.candidates {
            // Candidates of the other address family or beyond the cap are skipped, as a
            // browser skips what it cannot use.
            let _ = self
                .ice
                .add_remote_candidate(candidate.address, candidate.priority);
        }
        self.remote_dtls = Some((remote.fingerprint, remote.dtls_role));
        self.drain_ice(now);
        self.maybe_start_dtls()?;
        Ok(())
    }

    /// Whether ICE and DTLS are up (media can be sent).
    pub fn is_connected(&self) -> bool {
        self.srtp.is_some() && self.selected.is_some() && !self.closed && !self.failed
    }

    /// The counters.
    pub fn stats(&self) -> &ParticipantStats {
        &self.stats
    }

    /// The ICE state.
    pub fn ice_state(&self) -> IceState {
        self.ice.state()
    }

    /// How many received streams are tracked.
    pub fn received_streams(&self) -> usize {
        self.receive.len()
    }

    /// The DTLS handshake task, once, when the handshake starts: the shell must spawn it on
    /// its tokio runtime.
    pub fn poll_dtls_task(&mut self) -> Option<DtlsSrtpTask> {
        self.dtls_task.take()
    }

    /// One datagram from `from`. STUN and DTLS feed the transport; SRTCP is decrypted and
    /// turned into events; SRTP is reported from its clear header, verified on the sample.
    /// The buffer may be decrypted in place.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a mut [u8],
    ) -> Option<ReceivedRtp<'a>> {
        self.last_now = now;
        match classify(datagram) {
            DatagramKind::Stun => {
                self.stats.stun_received += 1;
                self.ice.handle_receive(
                    now,
                    Receive {
                        source: from,
                        destination: self.local,
                        datagram,
                    },
                );
                self.drain_ice(now);
                if let Err(error) = self.maybe_start_dtls() {
                    self.fail(error);
                }
                None
            }
            DatagramKind::Dtls => {
                self.stats.dtls_received += 1;
                if let Some(dtls) = &self.dtls {
                    dtls.handle_datagram(datagram);
                }
                None
            }
            DatagramKind::Rtp => self.receive_rtp(now, from, datagram),
            DatagramKind::Rtcp => {
                self.receive_rtcp(now, from, datagram);
                None
            }
            DatagramKind::Unknown => {
                self.stats.dropped += 1;
                None
            }
        }
    }

    fn receive_rtp<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a mut [u8],
    ) -> Option<ReceivedRtp<'a>> {
        let (Some(srtp), Some(selected)) = (self.srtp.as_mut(), self.selected) else {
            self.stats.dropped += 1;
            return None;
        };
        let Some(header) = (from == selected)
            .then(|| ClearHeader::parse(datagram))
            .flatten()
        else {
            self.stats.dropped += 1;
            return None;
        };
        let datagram_len = datagram.len();
        self.stats.rtp_received += 1;
        self.stats.rtp_received_bytes += datagram_len as u64;
        let is_rtx = self.config.rtx_payload_types.contains(&header.payload_type);
        let (stream_packets, new_timestamp) = self.receive.on_packet(
            now,
            header.ssrc,
            header.sequence_number,
            header.timestamp,
            self.config.clock_rate(header.payload_type),
            !is_rtx,
        );
        let transport_sequence = self.config.transport_cc_id.and_then(|id| {
            let data = datagram.get(header.extension_range.clone())?;
            let value = packet::find_extension(header.extension_profile, data, id)?;
            Some(u16::from_be_bytes(*value.first_chunk::<2>()?))
        });
        if let (Some(twcc), Some(sequence)) = (self.twcc.as_mut(), transport_sequence) {
            twcc.on_packet(now, sequence);
        }
        // Sampled per stream (its first packet, then one in n), so that interleaved
        // streams cannot alias with the sampling period. RTX retransmissions are always
        // decrypted (their original sequence number is encrypted); RTX with padding is the
        // node's bandwidth probing and is sampled like media.
        let frame_start = new_timestamp
            && !header.padding
            && self
                .config
                .frame_start_payload_types
                .contains(&header.payload_type);
        let sampled = (is_rtx && !header.padding)
            || frame_start
            || match self.config.verify_one_in {
                0 => false,
                n => stream_packets % u64::from(n) == 1 % u64::from(n),
            };
        let payload_len = datagram_len
            .saturating_sub(header.header_len)
            .saturating_sub(srtp.profile.rtp_auth_tag_len());
        let (verified_len, failed) = if sampled {
            match srtp.receiver.unprotect_rtp(datagram) {
                Ok(len) => {
                    self.stats.srtp_verified += 1;
                    self.stats.frame_starts_decrypted += u64::from(frame_start);
                    (Some(len), false)
                }
                Err(_) => {
                    self.stats.srtp_verify_failed += 1;
                    (None, true)
                }
            }
        } else {
            (None, false)
        };
        let datagram: &'a [u8] = datagram;
        let verification = match verified_len {
            Some(len) => Verification::Verified(datagram.get(..len).unwrap_or_default()),
            None if failed => Verification::Failed,
            None => Verification::NotSampled,
        };
        Some(ReceivedRtp {
            ssrc: header.ssrc,
            sequence_number: header.sequence_number,
            timestamp: header.timestamp,
            marker: header.marker,
            padding: header.padding,
            payload_type: header.payload_type,
            header_len: header.header_len,
            payload_len,
            datagram_len,
            extension_profile: header.extension_profile,
            extension_data: datagram.get(header.extension_range).unwrap_or_default(),
            transport_sequence,
            verification,
        })
    }

    fn receive_rtcp(&mut self, now: Instant, from: SocketAddr, datagram: &mut [u8]) {
        let (Some(srtp), true) = (self.srtp.as_mut(), self.selected == Some(from)) else {
            self.stats.dropped += 1;
            return;
        };
        self.stats.rtcp_received += 1;
        self.stats.rtcp_received_bytes += datagram.len() as u64;
        let Ok(len) = srtp.receiver.unprotect_rtcp(datagram) else {
            self.stats.rtcp_failed += 1;
            return;
        };
        let compound = datagram.get(..len).unwrap_or_default();
        let now_compact = self.clock.compact(now);
        let Self {
            events,
            receive,
            stats,
            send_estimate,
            ..
        } = self;
        let mut estimate_changed = false;
        let ok = rtcp::parse_compound(
            compound,
            now_compact,
            &mut stats.rtcp_received_by_kind,
            &mut |event| {
                if let Some(estimate) = send_estimate.as_mut() {
                    estimate_changed |= feed_estimate(estimate, now, &event);
                }
                push_event(events, event);
            },
            &mut |report| receive.on_sender_report(now, report.ssrc, report.compact_ntp),
        );
        if let (true, Some(estimate)) = (estimate_changed, self.send_estimate.as_ref()) {
            push_event(
                &mut self.events,
                ParticipantEvent::SendEstimate(estimate.current()),
            );
        }
        if !ok {
            self.stats.rtcp_failed += 1;
        }
    }

    /// Timers: ICE checks and consent, the DTLS handshake's output, reports, NACKs and
    /// transport-cc feedback due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        if self.closed {
            return;
        }
        self.ice.handle_timeout(now);
        self.drain_ice(now);
        self.drive_dtls(now);
        if self.srtp.is_none() || self.selected.is_none() {
            return;
        }
        if self.next_report.is_some_and(|at| at <= now) {
            self.send_reports(now);
            self.next_report = Some(now + self.config.report_interval);
        }
        let mut nacks = std::mem::take(&mut self.nack_scratch);
        self.receive.due_nacks(now, &mut nacks);
        for (ssrc, lost) in nacks.drain(..) {
            // One NACK packet carries at most 253 pairs (~4000 sequence numbers).
            if let Ok(nack) = feedback::nack(self.config.rtcp_ssrc, ssrc, &lost) {
                self.stats.nacked_sequence_numbers += lost.len() as u64;
                self.queue_rtcp(&[nack.into()]);
            }
        }
        self.nack_scratch = nacks;
        self.send_probes(now);
        let media_ssrc = 0;
        while let Some(feedback) = self
            .twcc
            .as_mut()
            .and_then(|t| t.poll_feedback(now, self.config.rtcp_ssrc, media_ssrc))
        {
            self.queue_rtcp(&[feedback.into()]);
        }
    }

    /// When [`Self::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut next = self.ice.poll_timeout();
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        if self.dtls.is_some() && self.srtp.is_none() && !self.failed {
            consider(Some(self.last_now + DTLS_POLL_INTERVAL));
        }
        if self.srtp.is_some() {
            consider(self.next_report);
            consider(self.receive.next_nack());
            consider(self.twcc.as_ref().and_then(TwccFeedback::poll_timeout));
            consider(
                self.send_estimate
                    .as_ref()
                    .and_then(SendEstimate::poll_timeout),
            );
        }
        next
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ParticipantEvent> {
        self.events.pop_front()
    }

    /// Hands a sent datagram's buffer back for reuse (keeps sending allocation-free).
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.pool.len() < 64 && buffer.capacity() >= MAX_DATAGRAM {
            buffer.clear();
            self.pool.push(buffer);
        }
    }

    /// SRTP-protects the plain RTP packet and queues it for the selected pair. When
    /// [`ParticipantConfig::transport_cc_id`] is set and the packet carries that extension,
    /// the participant's transport-wide sequence number is written into it first.
    pub fn send_rtp(&mut self, now: Instant, packet: &[u8]) -> Result<(), ParticipantError> {
        self.last_now = now;
        let (Some(srtp), Some(destination), false) = (
            self.srtp.as_mut(),
            self.selected,
            self.closed || self.failed,
        ) else {
            self.stats.rtp_send_refused += 1;
            return Err(ParticipantError::NotConnected);
        };
        let overhead = srtp.profile.rtp_overhead();
        if packet.len() + overhead > MAX_DATAGRAM {
            self.stats.rtp_send_refused += 1;
            return Err(ParticipantError::TooLarge { len: packet.len() });
        }
        let mut buffer = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_DATAGRAM));
        buffer.extend_from_slice(packet);
        let Ok(mut rtp) = RtpPacket::parse(buffer.as_mut_slice()) else {
            self.stats.rtp_send_refused += 1;
            self.pool.push(buffer);
            return Err(ParticipantError::Malformed);
        };
        let mut transport_sequence = None;
        if let Some(id) = self.config.transport_cc_id {
            if let Some(value) = rtp.extension_mut(id) {
                if let Some(slot) = value.first_chunk_mut::<2>() {
                    self.transport_sequence = self.transport_sequence.wrapping_add(1);
                    *slot = self.transport_sequence.to_be_bytes();
                    transport_sequence = Some(self.transport_sequence);
                }
            }
        }
        let (ssrc, timestamp, payload_len) =
            (rtp.ssrc(), rtp.timestamp(), rtp.payload().len() as u32);
        let clock_rate = self.config.clock_rate(rtp.payload_type());
        if let Err(error) = srtp.sender.protect_rtp_vec(&mut buffer) {
            self.stats.rtp_send_refused += 1;
            self.recycle(buffer);
            return Err(error.into());
        }
        let stream = self.sending.entry(ssrc).or_insert(SendStream {
            clock_rate,
            packets: 0,
            octets: 0,
            last_timestamp: timestamp,
            last_sent: now,
        });
        stream.packets = stream.packets.wrapping_add(1);
        stream.octets = stream.octets.wrapping_add(payload_len);
        stream.last_timestamp = timestamp;
        stream.last_sent = now;
        if let (Some(estimate), Some(sequence)) = (self.send_estimate.as_mut(), transport_sequence)
        {
            estimate.on_sent(now, sequence, buffer.len());
        }
        self.stats.rtp_sent += 1;
        self.stats.rtp_sent_bytes += buffer.len() as u64;
        self.queue(destination, buffer);
        Ok(())
    }

    /// The sender would use `wanted_bps` (its next layer's need, say): with probing, the
    /// send-side estimate probes toward it (see [`SendEstimate::request_bitrate`]).
    pub fn request_send_bitrate(&mut self, now: Instant, wanted_bps: u64) {
        self.last_now = now;
        if let Some(estimate) = self.send_estimate.as_mut() {
            estimate.request_bitrate(now, wanted_bps);
        }
    }

    /// The estimate's probe bytes due at `now`, as padding-only RTP packets on the probe
    /// stream, each stamped with a transport-wide sequence number and recorded as part of
    /// its cluster.
    fn send_probes(&mut self, now: Instant) {
        let (Some(mut estimate), Some(tcc_id)) =
            (self.send_estimate.take(), self.config.transport_cc_id)
        else {
            return;
        };
        if let Some(padding) = estimate.probe_padding() {
            while let Some(probe) = estimate.poll_probe(now) {
                let mut left = probe.bytes;
                while left > 0 {
                    let Some(size) = self.send_padding(now, padding, tcc_id, left) else {
                        break;
                    };
                    estimate.on_probe_sent(now, self.transport_sequence, size, probe.cluster);
                    left = left.saturating_sub(size);
                }
            }
        }
        self.send_estimate = Some(estimate);
    }

    /// Queues one padding-only packet of about `bytes` on the wire (at most
    /// [`MAX_PADDING`] bytes of padding); returns its size.
    fn send_padding(
        &mut self,
        now: Instant,
        padding: ProbePadding,
        tcc_id: u8,
        bytes: usize,
    ) -> Option<usize> {
        let (Some(srtp), Some(destination), false) = (
            self.srtp.as_mut(),
            self.selected,
            self.closed || self.failed,
        ) else {
            return None;
        };
        let overhead = PADDING_HEADER_LEN + srtp.profile.rtp_overhead();
        let padding_len = bytes.saturating_sub(overhead).clamp(1, MAX_PADDING);
        self.transport_sequence = self.transport_sequence.wrapping_add(1);
        let sequence = self.probe_sequence;
        self.probe_sequence = sequence.wrapping_add(1);
        let mut buffer = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_DATAGRAM));
        // V=2, padding, one header extension; no marker.
        buffer.extend_from_slice(&[0xB0, padding.payload_type & 0x7F]);
        buffer.extend_from_slice(&sequence.to_be_bytes());
        // Nobody reads a padding stream's clock: the compact NTP time will do.
        let timestamp = self.clock.compact(now);
        buffer.extend_from_slice(&timestamp.to_be_bytes());
        buffer.extend_from_slice(&padding.ssrc.to_be_bytes());
        // RFC 8285 one-byte form, one word: the transport-wide sequence number (2 bytes).
        buffer.extend_from_slice(&[0xBE, 0xDE, 0, 1, (tcc_id << 4) | 1]);
        buffer.extend_from_slice(&self.transport_sequence.to_be_bytes());
        buffer.push(0);
        buffer.resize(buffer.len() + padding_len - 1, 0);
        // Within 1..=255 by the clamp above.
        buffer.push(padding_len as u8);
        if srtp.sender.protect_rtp_vec(&mut buffer).is_err() {
            self.stats.rtp_send_refused += 1;
            self.recycle(buffer);
            return None;
        }
        let size = buffer.len();
        self.stats.probe_packets_sent += 1;
        self.stats.rtp_sent_bytes += size as u64;
        self.queue(destination, buffer);
        Some(size)
    }

    /// SRTCP-protects a plain (compound) RTCP packet built by the caller and queues it.
    pub fn send_rtcp(&mut self, now: Instant, packet: &[u8]) -> Result<(), ParticipantError> {
        self.last_now = now;
        let (Some(srtp), Some(destination), false) = (
            self.srtp.as_mut(),
            self.selected,
            self.closed || self.failed,
        ) else {
            return Err(ParticipantError::NotConnected);
        };
        if packet.len() + srtp.profile.rtcp_overhead() > MAX_DATAGRAM {
            return Err(ParticipantError::TooLarge { len: packet.len() });
        }
        let mut kinds = RtcpCounts::default();
        for item in relais_rtp::rtcp::RtcpCompound::new(packet) {
            let view = item.map_err(|_| ParticipantError::Malformed)?;
            kinds.count(view.kind());
        }
        let mut buffer = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_DATAGRAM));
        buffer.extend_from_slice(packet);
        if let Err(error) = srtp.sender.protect_rtcp_vec(&mut buffer) {
            self.recycle(buffer);
            return Err(error.into());
        }
        add_counts(&mut self.stats.rtcp_sent_by_kind, &kinds);
        self.stats.rtcp_sent += 1;
        self.stats.rtcp_sent_bytes += buffer.len() as u64;
        self.queue(destination, buffer);
        Ok(())
    }

    /// Leaves: closes DTLS (close_notify goes out on the next timeout) and ICE. Nothing is
    /// sent or received afterwards.
    pub fn close(&mut self) {
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.close();
        }
        self.ice.close();
        self.closed = true;
    }

    fn drain_ice(&mut self, now: Instant) {
        while let Some(transmit) = self.ice.poll_transmit() {
            self.queue(transmit.destination, transmit.contents);
        }
        while let Some(event) = self.ice.poll_event() {
            match event {
                IceEvent::SelectedPairChanged { remote, .. } => {
                    self.selected = Some(remote);
                    if self.srtp.is_some() && self.next_report.is_none() {
                        self.next_report = Some(now + self.config.report_interval);
                    }
                }
                IceEvent::StateChanged(state) => {
                    push_event(&mut self.events, ParticipantEvent::IceStateChanged(state));
                    if state == IceState::Failed {
                        self.fail(ParticipantError::IceFailed);
                    }
                }
                IceEvent::ConsentExpired => self.fail(ParticipantError::IceFailed),
                IceEvent::RoleChanged { .. } => {}
            }
        }
    }

    fn maybe_start_dtls(&mut self) -> Result<(), ParticipantError> {
        if self.dtls.is_some() || self.selected.is_none() || self.closed || self.failed {
            return Ok(());
        }
        let Some((fingerprint, role)) = self.remote_dtls.clone() else {
            return Ok(());
        };
        let (handle, task) = DtlsSrtpHandshake::start(
            role,
            &self.certificate,
            fingerprint,
            self.config.dtls.clone(),
        )?;
        self.dtls = Some(handle);
        self.dtls_task = Some(task);
        Ok(())
    }

    fn drive_dtls(&mut self, now: Instant) {
        if let Err(error) = self.maybe_start_dtls() {
            self.fail(error);
            return;
        }
        while let Some(datagram) = self
            .dtls
            .as_mut()
            .and_then(DtlsSrtpHandshake::poll_transmit)
        {
            match self.selected {
                Some(destination) => self.queue(destination, datagram),
                None => break,
            }
        }
        let outcome = match (self.srtp.is_none(), self.dtls.as_mut()) {
            (true, Some(dtls)) => dtls.poll_outcome(),
            _ => None,
        };
        match outcome {
            Some(Ok(outcome)) => {
                let receive_config = SrtpConfig {
                    // Only a sample is decrypted, so the replay window would see large
                    // jumps and stale samples; authentication is what is checked.
                    replay: ReplayProtection::Disabled,
                    max_ssrcs: self.config.max_receive_ssrcs,
                };
                let keyed = SrtpSender::new(&outcome.keys.local, SrtpConfig::default()).and_then(
                    |sender| {
                        SrtpReceiver::new(&outcome.keys.remote, receive_config)
                            .map(|receiver| (sender, receiver))
                    },
                );
                match keyed {
                    Ok((sender, receiver)) => {
                        self.srtp = Some(Srtp {
                            sender,
                            receiver,
                            profile: outcome.profile,
                        });
                        // Spread the reports of many participants over the interval.
                        let spread = Duration::from_micros(
                            u64::from(self.local.port()) * 7919
                                % (self.config.report_interval.as_micros() as u64).max(1),
                        );
                        self.next_report = Some(now + spread);
                        push_event(
                            &mut self.events,
                            ParticipantEvent::Connected {
                                profile: outcome.profile,
                            },
                        );
                    }
                    Err(error) => self.fail(error.into()),
                }
            }
            Some(Err(error)) => self.fail(error.into()),
            None => {}
        }
    }

    /// Sender reports for the streams sent recently, then receiver reports for the streams
    /// received (31 blocks per packet).
    fn send_reports(&mut self, now: Instant) {
        let ntp_time = self.clock.ntp(now);
        let mut packets: Vec<RtcpPacket> = Vec::new();
        for (ssrc, stream) in &self.sending {
            if now.saturating_duration_since(stream.last_sent) > Duration::from_secs(5) {
                continue;
            }
            let elapsed = now.saturating_duration_since(stream.last_sent);
            let advance = elapsed.as_micros() as u64 * u64::from(stream.clock_rate) / 1_000_000;
            packets.push(
                SenderReport {
                    ssrc: *ssrc,
                    ntp_time,
                    rtp_time: stream.last_timestamp.wrapping_add(advance as u32),
                    packet_count: stream.packets,
                    octet_count: stream.octets,
                    ..Default::default()
                }
                .into(),
            );
        }
        let blocks = self.receive.report_blocks(now);
        if packets.is_empty() || !blocks.is_empty() {
            let mut rest = blocks.as_slice();
            loop {
                let (head, tail) = rest.split_at(rest.len().min(31));
                packets.push(
                    ReceiverReport {
                        ssrc: self.config.rtcp_ssrc,
                        reports: head.to_vec(),
                        ..Default::default()
                    }
                    .into(),
                );
                rest = tail;
                if rest.is_empty() {
                    break;
                }
            }
        }
        // Several compounds when the blocks do not fit one datagram.
        for chunk in packets.chunks(4) {
            self.queue_rtcp(chunk);
        }
    }

    /// Marshals, protects and queues one compound built here.
    fn queue_rtcp(&mut self, packets: &[RtcpPacket]) {
        let (Some(srtp), Some(destination)) = (self.srtp.as_mut(), self.selected) else {
            return;
        };
        let mut buffer = self
            .pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(MAX_DATAGRAM));
        let size: usize = packets.iter().map(RtcpPacket::marshal_size).sum();
        buffer.resize(size + srtp.profile.rtcp_overhead(), 0);
        let Ok(len) = relais_rtp::rtcp::marshal_compound(packets, &mut buffer) else {
            self.recycle(buffer);
            return;
        };
        match srtp.sender.protect_rtcp(&mut buffer, len) {
            Ok(protected) => buffer.truncate(protected),
            Err(_) => {
                self.recycle(buffer);
                return;
            }
        }
        for packet in packets {
            let kind = packet.kind();
            self.stats.rtcp_sent_by_kind.count(kind);
        }
        self.stats.rtcp_sent += 1;
        self.stats.rtcp_sent_bytes += buffer.len() as u64;
        self.queue(destination, buffer);
    }

    fn queue(&mut self, destination: SocketAddr, contents: Vec<u8>) {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            self.stats.transmit_overflow += 1;
            self.recycle(contents);
            return;
        }
        self.transmits.push_back(Transmit {
            destination,
            contents,
        });
    }

    fn fail(&mut self, error: ParticipantError) {
        if !self.failed {
            self.failed = true;
            push_event(&mut self.events, ParticipantEvent::Failed(error));
        }
    }
}

/// Feeds what `event` says about the participant's uplink to its estimate; `true` when the
/// estimate read something (feedback or REMB) and should be reported.
fn feed_estimate(estimate: &mut SendEstimate, now: Instant, event: &ParticipantEvent) -> bool {
    match event {
        ParticipantEvent::TransportFeedback(feedback) => {
            estimate.on_feedback(now, feedback);
            true
        }
        ParticipantEvent::Remb { bitrate_bps, .. } => {
            estimate.on_remb(*bitrate_bps);
            true
        }
        ParticipantEvent::ReceptionReport {
            round_trip: Some(rtt),
            ..
        } => {
            estimate.set_rtt(*rtt);
            false
        }
        _ => false,
    }
}

fn push_event(events: &mut VecDeque<ParticipantEvent>, event: ParticipantEvent) {
    if events.len() >= MAX_QUEUED_EVENTS {
        events.pop_front();
    }
    events.push_back(event);
}

fn add_counts(total: &mut RtcpCounts, more: &RtcpCounts) {
    total.sender_reports += more.sender_reports;
    total.receiver_reports += more.receiver_reports;
    total.source_descriptions += more.source_descriptions;
    total.goodbyes += more.goodbyes;
    total.nacks += more.nacks;
    total.plis += more.plis;
    total.firs += more.firs;
    total.rembs += more.rembs;
    total.transport_cc += more.transport_cc;
    total.other += more.other;
}
