//! The two directions of an SRTP session: [`SrtpSender`] protects what we send,
//! [`SrtpReceiver`] unprotects what the peer sends.
//!
//! Each owns its session keys and a small map of per-SSRC state (the rollover counter,
//! the replay window, the next SRTCP index, and for AES-CM the SSRC's webrtc-srtp
//! context), capped at [`SrtpConfig::max_ssrcs`] entries per map so a peer cannot grow
//! memory by inventing SSRCs. On the receive side an SSRC is only recorded after its first
//! packet authenticated, so forged packets cannot fill the map either.
//!
//! Both profiles share everything here: header parsing and length checks, ROC
//! estimation, the replay window (checked before the crypto, updated only after the tag
//! verified), the SSRC cap and the index limits. Only the crypto differs (`transform`).
//!
//! # Allocation
//!
//! GCM works in place on the caller's buffer. The only allocation is inserting state for
//! an SSRC seen for the first time (the maps are pre-sized for a few SSRCs, so usually not
//! even then); every later packet of that SSRC is allocation-free.
//!
//! AES-CM goes through webrtc-srtp, which allocates for every packet it handles (the
//! result is copied back into the caller's buffer) and builds one context per new SSRC:
//! the accepted exception, for clients that offer no GCM. Packets refused before the
//! crypto (malformed, too short, replayed, over the SSRC cap, SRTCP with E = 0) never
//! reach the crate and allocate nothing, in both profiles.

use crate::header::{be_u32, parse_rtcp, parse_rtp, RTCP_CLEAR_LEN};
use crate::replay::{Refusal, ReplayWindow, MAX_REPLAY_WINDOW};
use crate::rollover::{estimate_index, MAX_RTP_INDEX};
use crate::ssrc_map::{ssrc_map, SsrcMap};
use crate::transform::{RtcpStream, RtpStream, Transform};
use crate::{SrtpError, SrtpKey, SrtpProfile};

/// Default for [`SrtpConfig::max_ssrcs`].
pub const DEFAULT_MAX_SSRCS: usize = 64;
/// Largest SRTCP index (RFC 3711 §3.3.2: 31 bits).
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;
/// Initial capacity of the per-SSRC maps: audio, video simulcast and RTX fit without
/// growing, without reserving the whole cap up front.
const INITIAL_SSRCS: usize = 8;

/// Replay protection of an [`SrtpReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayProtection {
    /// Accept every authentic packet, duplicates included. For benchmarks, tests, or when
    /// a layer above already deduplicates. The rollover counter is still tracked.
    Disabled,
    /// Refuse duplicates and packets more than this many indices (1..=128) behind the
    /// highest one accepted, per SSRC, for SRTP and SRTCP alike.
    Window(u32),
}

impl Default for ReplayProtection {
    /// A window of [`MAX_REPLAY_WINDOW`] (128) packets: about 1.3 s of 1 Mbit/s video, so
    /// NACK-driven retransmissions (which arrive late) are not mistaken for replays.
    fn default() -> Self {
        Self::Window(MAX_REPLAY_WINDOW)
    }
}

/// Settings shared by [`SrtpSender`] and [`SrtpReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpConfig {
    /// Replay protection on the receive side (the sender ignores it). On by default.
    pub replay: ReplayProtection,
    /// Most SSRCs one context tracks, counted separately for RTP and RTCP. A packet from
    /// one more SSRC fails with [`SrtpError::TooManySsrcs`]; [`SrtpSender::remove_ssrc`]
    /// and [`SrtpReceiver::remove_ssrc`] free a slot. A sender forwarding many streams to
    /// one receiver may need more than the default.
    pub max_ssrcs: usize,
}

impl Default for SrtpConfig {
    fn default() -> Self {
        Self {
            replay: ReplayProtection::default(),
            max_ssrcs: DEFAULT_MAX_SSRCS,
        }
    }
}

impl SrtpConfig {
    fn validate(&self) -> Result<(), SrtpError> {
        if self.max_ssrcs == 0 {
            return Err(SrtpError::InvalidConfig("max_ssrcs must be at least 1"));
        }
        match self.replay {
            ReplayProtection::Window(w) if w == 0 || w > MAX_REPLAY_WINDOW => Err(
                SrtpError::InvalidConfig("replay window must be 1..=128 packets"),
            ),
            _ => Ok(()),
        }
    }

    /// Window size for [`ReplayWindow::check`]: 0 means off.
    fn window(&self) -> u32 {
        match self.replay {
            ReplayProtection::Disabled => 0,
            ReplayProtection::Window(w) => w,
        }
    }
}

fn buffer_check(buf: &[u8], plaintext_len: usize, overhead: usize) -> Result<(), SrtpError> {
    let needed = plaintext_len.saturating_add(overhead);
    if needed > buf.len() {
        return Err(SrtpError::BufferTooSmall {
            needed,
            capacity: buf.len(),
        });
    }
    Ok(())
}

/// Protects outgoing RTP and RTCP with our (local) key.
///
/// The rollover counter of each SSRC starts at 0 and steps when the sequence number wraps
/// 65535 → 0. SRTCP indices start at 0 for GCM and at 1 for AES-CM (webrtc-srtp numbers
/// those; both count up by one per packet). Protecting the same SSRC and sequence number
/// twice is allowed (retransmissions) but must then carry the same bytes: with AES-GCM two
/// different plaintexts under one packet index reveal the authentication key.
///
/// ```
/// use relais_srtp::{DtlsRole, SrtpConfig, SrtpKeys, SrtpProfile, SrtpReceiver, SrtpSender};
///
/// # fn main() -> Result<(), relais_srtp::SrtpError> {
/// let profile = SrtpProfile::AeadAes128Gcm;
/// // In production this comes from the DTLS exporter ("EXTRACTOR-dtls_srtp").
/// let material = vec![7u8; profile.keying_material_len()];
/// let ours = SrtpKeys::from_dtls_keying_material(profile, &material, DtlsRole::Server)?;
/// let theirs = SrtpKeys::from_dtls_keying_material(profile, &material, DtlsRole::Client)?;
///
/// let mut sender = SrtpSender::new(&ours.local, SrtpConfig::default())?;
/// let mut receiver = SrtpReceiver::new(&theirs.remote, SrtpConfig::default())?;
///
/// // A 12-byte RTP header (V=2, PT 96, seq 1, SSRC 0x1234) and a payload, with room for
/// // the tag after it.
/// let mut buf = [0u8; 1500];
/// let rtp = [0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0x12, 0x34, b'h', b'i'];
/// buf[..rtp.len()].copy_from_slice(&rtp);
///
/// let protected_len = sender.protect_rtp(&mut buf, rtp.len())?;
/// assert_eq!(protected_len, rtp.len() + profile.rtp_overhead());
///
/// let plain_len = receiver.unprotect_rtp(&mut buf[..protected_len])?;
/// assert_eq!(&buf[..plain_len], &rtp);
///
/// // The same packet again is a replay.
/// let again = sender.protect_rtp(&mut buf, rtp.len())?;
/// assert!(receiver.unprotect_rtp(&mut buf[..again]).is_err());
/// # Ok(())
/// # }
/// ```
pub struct SrtpSender {
    profile: SrtpProfile,
    transform: Transform,
    max_ssrcs: usize,
    rtp: SsrcMap<TxRtp>,
    rtcp: SsrcMap<TxRtcp>,
}

/// Sender state of one SSRC's RTP.
struct TxRtp {
    /// Highest packet index protected.
    highest: u64,
    stream: RtpStream,
}

/// Sender state of one SSRC's RTCP.
struct TxRtcp {
    /// SRTCP index of the next packet.
    next: u32,
    stream: RtcpStream,
}

impl SrtpSender {
    /// A sender keyed with `key` (normally [`crate::SrtpKeys::local`]).
    pub fn new(key: &SrtpKey, config: SrtpConfig) -> Result<Self, SrtpError> {
        config.validate()?;
        let initial = config.max_ssrcs.min(INITIAL_SSRCS);
        Ok(Self {
            profile: key.profile(),
            transform: Transform::new(key)?,
            max_ssrcs: config.max_ssrcs,
            rtp: ssrc_map(initial),
            rtcp: ssrc_map(initial),
        })
    }

    /// The protection profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Protects the RTP packet in `buf[..plaintext_len]` in place and returns the protected
    /// length. `buf` must have [`SrtpProfile::rtp_overhead`] bytes of room after the
    /// plaintext for the tag; the bytes there are overwritten.
    pub fn protect_rtp(
        &mut self,
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, SrtpError> {
        buffer_check(buf, plaintext_len, self.profile.rtp_overhead())?;
        let header = parse_rtp(buf.get(..plaintext_len).unwrap_or_default())?;
        let Self {
            transform,
            rtp,
            max_ssrcs,
            ..
        } = self;
        match rtp.get_mut(&header.ssrc) {
            Some(state) => {
                let index = estimate_index(state.highest, header.seq);
                if index > MAX_RTP_INDEX {
                    return Err(SrtpError::IndexExhausted { ssrc: header.ssrc });
                }
                let len = transform.protect_rtp(
                    &mut state.stream,
                    buf,
                    &header,
                    plaintext_len,
                    index,
                    state.highest,
                )?;
                state.highest = state.highest.max(index);
                Ok(len)
            }
            None => {
                if rtp.len() >= *max_ssrcs {
                    return Err(SrtpError::TooManySsrcs { max: *max_ssrcs });
                }
                let index = u64::from(header.seq);
                let mut stream = transform.new_rtp_stream()?;
                let len = transform.protect_rtp(
                    &mut stream,
                    buf,
                    &header,
                    plaintext_len,
                    index,
                    index,
                )?;
                rtp.insert(
                    header.ssrc,
                    TxRtp {
                        highest: index,
                        stream,
                    },
                );
                Ok(len)
            }
        }
    }

    /// Protects the (possibly compound) RTCP packet in `buf[..plaintext_len]` in place and
    /// returns the protected length. `buf` must have [`SrtpProfile::rtcp_overhead`] bytes of
    /// room after the plaintext. The SRTCP index is per sender SSRC (bytes 4..8).
    pub fn protect_rtcp(
        &mut self,
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, SrtpError> {
        buffer_check(buf, plaintext_len, self.profile.rtcp_overhead())?;
        let ssrc = parse_rtcp(buf.get(..plaintext_len).unwrap_or_default())?;
        let Self {
            transform,
            rtcp,
            max_ssrcs,
            ..
        } = self;
        match rtcp.get_mut(&ssrc) {
            Some(state) => {
                if state.next > MAX_SRTCP_INDEX {
                    return Err(SrtpError::IndexExhausted { ssrc });
                }
                let len = transform.protect_rtcp(
                    &mut state.stream,
                    buf,
                    plaintext_len,
                    ssrc,
                    state.next,
                )?;
                state.next += 1;
                Ok(len)
            }
            None => {
                if rtcp.len() >= *max_ssrcs {
                    return Err(SrtpError::TooManySsrcs { max: *max_ssrcs });
                }
                let first = transform.first_srtcp_index();
                let mut stream = transform.new_rtcp_stream()?;
                let len = transform.protect_rtcp(&mut stream, buf, plaintext_len, ssrc, first)?;
                rtcp.insert(
                    ssrc,
                    TxRtcp {
                        next: first + 1,
                        stream,
                    },
                );
                Ok(len)
            }
        }
    }

    /// [`Self::protect_rtp`] on a `Vec` holding exactly the plaintext packet: grows it by
    /// the tag (no allocation if the capacity is there) and leaves the protected packet.
    /// On error the vector is left as it was.
    pub fn protect_rtp_vec(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let plaintext_len = packet.len();
        packet.resize(plaintext_len + self.profile.rtp_overhead(), 0);
        let result = self.protect_rtp(packet, plaintext_len);
        packet.truncate(*result.as_ref().unwrap_or(&plaintext_len));
        result.map(|_| ())
    }

    /// [`Self::protect_rtcp`] on a `Vec` holding exactly the plaintext packet, like
    /// [`Self::protect_rtp_vec`].
    pub fn protect_rtcp_vec(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let plaintext_len = packet.len();
        packet.resize(plaintext_len + self.profile.rtcp_overhead(), 0);
        let result = self.protect_rtcp(packet, plaintext_len);
        packet.truncate(*result.as_ref().unwrap_or(&plaintext_len));
        result.map(|_| ())
    }

    /// The rollover counter of `ssrc` (of the highest index protected), if it sent RTP.
    /// For both profiles this is the ROC the packets of that index carry on the wire.
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        self.rtp.get(&ssrc).map(|s| (s.highest >> 16) as u32)
    }

    /// Forgets `ssrc` (RTP and RTCP state, for AES-CM its webrtc-srtp contexts too),
    /// freeing its slot under the SSRC cap. Only for streams that have ended: if the SSRC
    /// sends again its ROC and SRTCP index restart, which the peer will not accept after a
    /// wrap.
    pub fn remove_ssrc(&mut self, ssrc: u32) {
        self.rtp.remove(&ssrc);
        self.rtcp.remove(&ssrc);
    }
}

/// Unprotects incoming SRTP and SRTCP with the peer's (remote) key: verifies, checks
/// replay, and decrypts in place.
///
/// A packet is checked against the replay window before any crypto and enters the window
/// only once its tag verified. The ROC of each SSRC starts at 0 with its first
/// authenticated packet and follows the sequence number (RFC 3711 Appendix A), reordering
/// across the wrap included.
///
/// See [`SrtpSender`] for an example.
pub struct SrtpReceiver {
    profile: SrtpProfile,
    transform: Transform,
    config: SrtpConfig,
    rtp: SsrcMap<RxState<RtpStream>>,
    rtcp: SsrcMap<RxState<RtcpStream>>,
}

/// Receiver state of one SSRC's RTP or RTCP.
struct RxState<S> {
    /// Replay window (and highest index accepted).
    window: ReplayWindow,
    stream: S,
}

impl SrtpReceiver {
    /// A receiver keyed with `key` (normally [`crate::SrtpKeys::remote`]).
    pub fn new(key: &SrtpKey, config: SrtpConfig) -> Result<Self, SrtpError> {
        config.validate()?;
        let initial = config.max_ssrcs.min(INITIAL_SSRCS);
        Ok(Self {
            profile: key.profile(),
            transform: Transform::new(key)?,
            config,
            rtp: ssrc_map(initial),
            rtcp: ssrc_map(initial),
        })
    }

    /// The protection profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Unprotects the SRTP packet filling `packet` in place and returns the plaintext
    /// length (header included): the RTP packet is `packet[..len]`. On error the buffer's
    /// contents are unspecified.
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let header = parse_rtp(packet)?;
        let min = header.len + self.profile.rtp_auth_tag_len();
        if packet.len() < min {
            return Err(SrtpError::TooShort {
                len: packet.len(),
                min,
            });
        }
        let window = self.config.window();
        let max_ssrcs = self.config.max_ssrcs;
        let Self { transform, rtp, .. } = self;
        let ssrc = header.ssrc;
        match rtp.get_mut(&ssrc) {
            Some(state) => {
                let highest = state.window.highest();
                let index = estimate_index(highest, header.seq);
                if index > MAX_RTP_INDEX {
                    return Err(SrtpError::IndexExhausted { ssrc });
                }
                state
                    .window
                    .check(index, window)
                    .map_err(|r| refused(r, ssrc, index))?;
                let len =
                    transform.unprotect_rtp(&mut state.stream, packet, &header, index, highest)?;
                state.window.accept(index);
                Ok(len)
            }
            None => {
                if rtp.len() >= max_ssrcs {
                    return Err(SrtpError::TooManySsrcs { max: max_ssrcs });
                }
                let index = u64::from(header.seq);
                let mut stream = transform.rtp_probe()?;
                match transform.unprotect_rtp(&mut stream, packet, &header, index, index) {
                    Ok(len) => {
                        transform.probe_succeeded();
                        rtp.insert(
                            ssrc,
                            RxState {
                                window: ReplayWindow::new(index),
                                stream,
                            },
                        );
                        Ok(len)
                    }
                    Err(e) => {
                        transform.rtp_probe_failed(stream);
                        Err(e)
                    }
                }
            }
        }
    }

    /// Unprotects the SRTCP packet filling `packet` in place and returns the plaintext RTCP
    /// length. Packets with the E flag clear are refused
    /// ([`SrtpError::UnencryptedSrtcp`]). On error the buffer's contents are unspecified.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let ssrc = parse_rtcp(packet)?;
        let len = packet.len();
        let min = RTCP_CLEAR_LEN + self.profile.rtcp_overhead();
        if len < min {
            return Err(SrtpError::TooShort { len, min });
        }
        // GCM puts E || index after the tag, AES-CM before it.
        let word_at = match self.profile {
            SrtpProfile::AeadAes128Gcm => len - 4,
            SrtpProfile::Aes128CmHmacSha1_80 => len - 4 - self.profile.rtcp_auth_tag_len(),
        };
        let word = be_u32(packet, word_at).ok_or(SrtpError::TooShort { len, min })?;
        if word & 0x8000_0000 == 0 {
            return Err(SrtpError::UnencryptedSrtcp);
        }
        let index = u64::from(word & MAX_SRTCP_INDEX);

        let window = self.config.window();
        let max_ssrcs = self.config.max_ssrcs;
        let Self {
            transform, rtcp, ..
        } = self;
        match rtcp.get_mut(&ssrc) {
            Some(state) => {
                state
                    .window
                    .check(index, window)
                    .map_err(|r| refused(r, ssrc, index))?;
                let len = transform.unprotect_rtcp(&mut state.stream, packet, ssrc, word)?;
                state.window.accept(index);
                Ok(len)
            }
            None => {
                if rtcp.len() >= max_ssrcs {
                    return Err(SrtpError::TooManySsrcs { max: max_ssrcs });
                }
                let mut stream = transform.rtcp_probe()?;
                match transform.unprotect_rtcp(&mut stream, packet, ssrc, word) {
                    Ok(len) => {
                        transform.probe_succeeded();
                        rtcp.insert(
                            ssrc,
                            RxState {
                                window: ReplayWindow::new(index),
                                stream,
                            },
                        );
                        Ok(len)
                    }
                    Err(e) => {
                        transform.rtcp_probe_failed(stream);
                        Err(e)
                    }
                }
            }
        }
    }

    /// The rollover counter of `ssrc` (of the highest index accepted), if any of its RTP
    /// packets authenticated.
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        self.rtp
            .get(&ssrc)
            .map(|s| (s.window.highest() >> 16) as u32)
    }

    /// Forgets `ssrc` (RTP and RTCP state, for AES-CM its webrtc-srtp contexts too),
    /// freeing its slot under the SSRC cap. Its replay window goes with it: only call this
    /// for streams that have ended.
    pub fn remove_ssrc(&mut self, ssrc: u32) {
        self.rtp.remove(&ssrc);
        self.rtcp.remove(&ssrc);
    }
}

fn refused(refusal: Refusal, ssrc: u32, index: u64) -> SrtpError {
    match refusal {
        Refusal::Replayed => SrtpError::Replayed { ssrc, index },
        Refusal::TooOld => SrtpError::TooOld { ssrc, index },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated() {
        let key = SrtpKey::new(SrtpProfile::AeadAes128Gcm, &[0; 16], &[0; 12]).unwrap();
        for bad in [
            SrtpConfig {
                max_ssrcs: 0,
                ..SrtpConfig::default()
            },
            SrtpConfig {
                replay: ReplayProtection::Window(0),
                ..SrtpConfig::default()
            },
            SrtpConfig {
                replay: ReplayProtection::Window(129),
                ..SrtpConfig::default()
            },
        ] {
            assert!(matches!(
                SrtpReceiver::new(&key, bad),
                Err(SrtpError::InvalidConfig(_))
            ));
        }
        let ok = SrtpConfig {
            replay: ReplayProtection::Window(64),
            max_ssrcs: 1,
        };
        assert!(SrtpReceiver::new(&key, ok).is_ok());
        assert!(SrtpSender::new(&key, ok).is_ok());
    }
}
