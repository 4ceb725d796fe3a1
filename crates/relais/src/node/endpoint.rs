//! One endpoint's transport state (ICE agent, DTLS handshake channel, SRTP contexts), owned
//! by the media task. Kept in one struct so that sharding endpoints over workers later moves
//! whole `Endpoint`s.

use std::net::SocketAddr;

use relais_conference::EndpointId;
use relais_srtp::{SrtpReceiver, SrtpSender};
use relais_transport::dtls_srtp::{DtlsEvent, DtlsSrtpHandshake};
use relais_transport::ice::{IceAgent, IceStats};
use relais_whip::http::SessionKind;
use tokio::sync::mpsc;

/// Inbound DTLS datagrams queued per endpoint before drops (the handshake's own queue is
/// behind it).
pub(crate) const DTLS_INBOUND_QUEUE: usize = 64;

/// SRTP contexts of a completed DTLS-SRTP handshake.
pub(crate) struct Srtp {
    pub(crate) sender: SrtpSender,
    pub(crate) receiver: SrtpReceiver,
}

/// One WHIP publisher or WHEP viewer.
pub(crate) struct Endpoint {
    pub(crate) kind: SessionKind,
    pub(crate) stream: String,
    pub(crate) session: String,
    pub(crate) ice: IceAgent,
    /// The agent's counters when last added to the node's (for the deltas).
    pub(crate) ice_counted: IceStats,
    /// The local ufrag before the last ICE restart, still routed to this endpoint (the
    /// agent accepts it until the peer uses the new one); removed with the endpoint or at
    /// the next restart.
    pub(crate) previous_ufrag: Option<String>,
    /// The selected remote address (normalised), fed by `SelectedPairChanged`.
    pub(crate) remote: Option<SocketAddr>,
    /// DTLS datagrams to the endpoint's handshake driver task; dropping it ends the task.
    /// `None` until the peer's fingerprint is known (Colibri2 may send it later).
    pub(crate) dtls_in: Option<mpsc::Sender<Vec<u8>>>,
    /// Installed when the handshake completes.
    pub(crate) srtp: Option<Srtp>,
    /// Publisher with an audio line (`relais_endpoints_sending_audio`).
    pub(crate) sends_audio: bool,
    /// Publisher with a video line (`relais_endpoints_sending_video`).
    pub(crate) sends_video: bool,
    /// Whether this endpoint's ICE outcome (succeeded or failed) was counted.
    pub(crate) ice_outcome_counted: bool,
    /// RTP/RTCP accepted from this endpoint (`limits.max_packet_rate_per_source`).
    pub(crate) rate: super::media::TokenBucket,
    /// When signalling created it (for the connect timeout).
    pub(crate) created: std::time::Instant,
    /// Set for Jitsi Meet (Colibri2) endpoints, whose media goes to a conference.
    pub(crate) colibri: Option<super::media::colibri::ColibriLink>,
}

impl Endpoint {
    /// Whether media may be sent: SRTP ready, a selected pair, consent fresh.
    pub(crate) fn send_target(&self) -> Option<SocketAddr> {
        if self.ice.can_send() {
            self.remote
        } else {
            None
        }
    }
}

/// Drives one DTLS handshake handle: feeds it the datagrams the media task routes here and
/// forwards its events (datagrams to send, the outcome) to the media task. Ends when the
/// media task drops the endpoint (its sender), or when the handshake task has ended.
pub(crate) async fn drive_dtls(
    id: EndpointId,
    mut handle: DtlsSrtpHandshake,
    mut inbound: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<(EndpointId, DtlsEvent)>,
) {
    loop {
        tokio::select! {
            datagram = inbound.recv() => match datagram {
                // Drops (queue full) are counted in the handle's stats.
                Some(datagram) => { let _ = handle.handle_datagram(&datagram); }
                None => break,
            },
            event = handle.next_event() => match event {
                Some(event) => {
                    if events.send((id, event)).await.is_err() {
                        break;
                    }
                }
                None => {
                    // The handshake task ended (failure or close); wait for the endpoint to
                    // be removed so late datagrams are simply discarded.
                    while inbound.recv().await.is_some() {}
                    break;
                }
            },
        }
    }
}
