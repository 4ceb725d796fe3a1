//! A participant's counters: what it sent and received, what it verified, and its RTCP by
//! type. Plain integers, updated on the hot path without allocation.

use relais_rtp::rtcp::RtcpKind;

/// RTCP packets by type (each packet of a compound counts once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtcpCounts {
    /// Sender reports.
    pub sender_reports: u64,
    /// Receiver reports.
    pub receiver_reports: u64,
    /// Source descriptions.
    pub source_descriptions: u64,
    /// Goodbyes.
    pub goodbyes: u64,
    /// Generic NACKs.
    pub nacks: u64,
    /// Picture loss indications.
    pub plis: u64,
    /// Full intra requests.
    pub firs: u64,
    /// REMBs.
    pub rembs: u64,
    /// Transport-wide congestion control feedback.
    pub transport_cc: u64,
    /// Everything else.
    pub other: u64,
}

impl RtcpCounts {
    /// Counts one packet of `kind`.
    pub fn count(&mut self, kind: RtcpKind) {
        let counter = match kind {
            RtcpKind::SenderReport => &mut self.sender_reports,
            RtcpKind::ReceiverReport => &mut self.receiver_reports,
            RtcpKind::SourceDescription => &mut self.source_descriptions,
            RtcpKind::Goodbye => &mut self.goodbyes,
            RtcpKind::Nack => &mut self.nacks,
            RtcpKind::Pli => &mut self.plis,
            RtcpKind::Fir => &mut self.firs,
            RtcpKind::Remb => &mut self.rembs,
            RtcpKind::TransportCc => &mut self.transport_cc,
            _ => &mut self.other,
        };
        *counter += 1;
    }
}

/// Everything one participant counted since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParticipantStats {
    /// SRTP packets sent.
    pub rtp_sent: u64,
    /// Bytes of SRTP packets sent (UDP payload).
    pub rtp_sent_bytes: u64,
    /// Padding-only packets sent for bandwidth probes (their bytes are in
    /// `rtp_sent_bytes`).
    pub probe_packets_sent: u64,
    /// RTP packets the application handed over before SRTP was keyed, or that did not
    /// protect: not sent.
    pub rtp_send_refused: u64,
    /// SRTCP compounds sent.
    pub rtcp_sent: u64,
    /// Bytes of SRTCP compounds sent.
    pub rtcp_sent_bytes: u64,
    /// RTCP packets sent, by type.
    pub rtcp_sent_by_kind: RtcpCounts,
    /// Sequence numbers asked for in NACKs sent.
    pub nacked_sequence_numbers: u64,
    /// SRTP packets received (with a valid clear header).
    pub rtp_received: u64,
    /// Bytes of SRTP packets received.
    pub rtp_received_bytes: u64,
    /// Sampled SRTP packets whose tag verified.
    pub srtp_verified: u64,
    /// Sampled SRTP packets whose tag did not verify.
    pub srtp_verify_failed: u64,
    /// SRTP packets decrypted because they start a frame (see
    /// [`ParticipantConfig::frame_start_payload_types`](super::ParticipantConfig)); also
    /// counted in `srtp_verified`.
    pub frame_starts_decrypted: u64,
    /// SRTCP compounds received and decrypted.
    pub rtcp_received: u64,
    /// Bytes of SRTCP compounds received.
    pub rtcp_received_bytes: u64,
    /// SRTCP compounds that did not decrypt or parse.
    pub rtcp_failed: u64,
    /// RTCP packets received, by type.
    pub rtcp_received_by_kind: RtcpCounts,
    /// STUN datagrams received.
    pub stun_received: u64,
    /// DTLS datagrams received.
    pub dtls_received: u64,
    /// Datagrams dropped: unknown protocol, no valid RTP header, or media before keys.
    pub dropped: u64,
    /// Datagrams queued for sending and not taken by the driver before the queue filled.
    pub transmit_overflow: u64,
}
