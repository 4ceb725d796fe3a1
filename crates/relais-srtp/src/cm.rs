//! `SRTP_AES128_CM_HMAC_SHA1_80` (RFC 3711) through `webrtc-srtp` 0.17: the profile only
//! clients that offer no GCM get.
//!
//! relais does the GCM profile in place itself (`gcm`); for AES-CM the project's mandatory
//! stack is `webrtc_srtp::context::Context`. That crate returns every packet in a freshly
//! allocated `Bytes`, which this module copies back into the caller's buffer: **the AES-CM
//! profile allocates per packet** (the accepted, documented exception to "no allocation per
//! packet"). Everything around the crypto stays relais's: header parsing, length checks,
//! ROC estimation, the replay window, the SSRC cap, SRTCP index limits.
//!
//! # Guards
//!
//! webrtc-srtp 0.17.2 mishandles some network input. The contexts (`context.rs`) and this
//! module make sure none of it reaches the crate (`webrtc-srtp-0.17.2/src/...` and
//! `rtp-0.17.2/src/...` are paths in the registry source):
//!
//! 1. **Panic on RTP header extensions.** `Context::decrypt_rtp` and `Context::encrypt_rtp`
//!    (`context/srtp.rs` lines 42-46 and 74-78) parse the packet with
//!    `rtp::header::Header::unmarshal` (`rtp-0.17.2/src/header.rs`). For the RFC 8285
//!    profiles it walks the elements of the extension block, but only checks that the
//!    *block* fits in the packet (line 112): an element whose length runs past the end of
//!    the packet panics in `bytes::Buf::copy_to_bytes` (line 141 one-byte, line 166
//!    two-byte), and for the two-byte profile (`0x1000`) an element ID in the packet's last
//!    byte panics in `get_u8` reading its length (line 161). The trigger found here is a
//!    20-byte packet `90 60 00 01 00000000 00000001 bede 0001 1f 000000`: an element of 16
//!    bytes in a one-word block. The same parse also recomputes the header length from the
//!    elements (`marshal_size()`, lines 207-215): when an element overruns its block, or the
//!    reserved ID 15 stops the walk early, it differs from the length on the wire, and
//!    `cipher_aes_cm_hmac_sha1/ctrcipher.rs` (lines 105 and 163) then en/decrypts from the
//!    wrong offset, or panics slicing `writer[header.marshal_size()..]` past the end of a
//!    short plaintext (line 105).
//!
//!    Guard: relais never calls `encrypt_rtp` / `decrypt_rtp`, so the crate's RTP parser
//!    never sees a packet. `header.rs` parses the header (version, CSRC list and extension
//!    block bounded by the packet; on receive at least header + 10-byte tag), and this
//!    module calls `encrypt_rtp_with_header` / `decrypt_rtp_with_header` with a header built
//!    from that parse whose `marshal_size()` is exactly relais's header length (checked on
//!    every packet). Extension elements are not interpreted, as RFC 3711 and the GCM path
//!    do not interpret them either.
//! 2. **SRTCP with the E flag clear.** `ctrcipher.rs` `decrypt_rtcp` (lines 230-233)
//!    returns such a packet as plaintext without checking its tag. Guard: the receiver
//!    refuses E = 0 itself ([`SrtpError::UnencryptedSrtcp`]) before calling the crate.
//! 3. **Per-SSRC state before authentication.** `Context::decrypt_rtp_with_header` and
//!    `decrypt_rtcp` create the SSRC's state (`context/srtp.rs` line 18 and `context/srtcp.rs`
//!    line 16, through `get_*_ssrc_state`, `context/mod.rs` lines 165-183) before the tag is
//!    checked (lines 29 and 22), and nothing ever removes it. Guard: every SSRC gets its own
//!    `Context`, held in relais's capped per-SSRC maps and dropped with
//!    [`crate::SrtpReceiver::remove_ssrc`]; an unknown SSRC when the map is full is refused
//!    ([`SrtpError::TooManySsrcs`]) without calling the crate. First packets of unknown SSRCs
//!    are tried on one spare context ([`Spare`]); each forgery leaves one inert default entry
//!    in it (about 50 bytes), and the spare is replaced after [`SPARE_PROBES`] failures, so
//!    forged packets can hold crate-side state for at most that many SSRCs at a time. A spare
//!    that does authenticate becomes that SSRC's context and carries its inert entries (fewer
//!    than [`SPARE_PROBES`]) along.
//! 4. **Private rollover counter.** The crate estimates the ROC itself, relative to the *last*
//!    packet it processed for the SSRC (`next_rollover_count` and `update_rollover_count`,
//!    `context/mod.rs` lines 46-89; `set_roc` is private), whereas relais estimates relative to
//!    the *highest* one and owns the replay window (checked before the crypto, updated only
//!    after the crate authenticated the packet; the crate's own replay detection stays off, its
//!    default). For the same reference both estimates are the same function (unit test below,
//!    against a transcription of the crate's code), so they only differ after a late packet
//!    (last < highest) followed by a jump of almost 2^15 sequence numbers (tests:
//!    `late_packet_then_jump_of_almost_half_the_sequence_space`). This module tracks the
//!    crate's reference ([`CmRtp`]); when the two would differ it first moves the crate's
//!    reference to relais's highest index by protecting a throwaway header-only packet at that
//!    index on the same context (the crate shares the per-SSRC ROC state between its encrypt
//!    and decrypt paths, and nothing of the throwaway packet leaves this module), so the packet
//!    is always processed under relais's ROC and both profiles accept exactly the same packets.
//!    On the send side the ROC on the wire is therefore always the one
//!    [`crate::SrtpSender::roc`] reports.
//! 5. **Short SRTCP.** `Context::decrypt_rtcp` (`context/srtcp.rs` lines 13-14) computes
//!    `len - 14` (`cipher_aes_cm_hmac_sha1/mod.rs` line 131, overflow panic below 14
//!    bytes) and reads bytes 4..8 (index panic below 8 bytes) before any length check.
//!    Guard: the receiver refuses SRTCP shorter than 8 + 4 + 10 = 22 bytes
//!    ([`SrtpError::TooShort`]) first.
//! 6. **Index wrap.** The crate's SRTCP index silently wraps from 2^31 - 1 to 0
//!    (`context/srtcp.rs` lines 43-50), reusing keystream. Guard: the sender mirrors the
//!    index (the crate starts at 1, not 0; see [`CmRtcp`]) and refuses with
//!    [`SrtpError::IndexExhausted`] before the wrap; SRTP indices above 2^48 - 1 are
//!    refused before the crate is called, as for GCM.
//!
//! Every `Bytes` the crate returns is length-checked before it is copied back; a
//! mismatch, or any error other than a failed tag, is [`SrtpError::Crypto`] (unreachable
//! with the guards above).

use std::sync::{Mutex, PoisonError};

use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;
use webrtc_util::marshal::MarshalSize;

use crate::header::{be_u32, RtpHeader, RTP_FIXED_HEADER_LEN};
use crate::rollover::estimate_index;
use crate::{SrtpError, SrtpKey};

/// Truncated HMAC-SHA1 tag length (80 bits).
pub(crate) const TAG_LEN: usize = 10;
/// E flag + 31-bit SRTCP index.
const SRTCP_TRAILER_LEN: usize = 4;
/// First SRTCP index webrtc-srtp uses for an SSRC: it increments before the first packet.
pub(crate) const FIRST_SRTCP_INDEX: u32 = 1;
/// First packets of unknown SSRCs that may fail on one spare context before it is dropped.
pub(crate) const SPARE_PROBES: usize = 16;

/// One webrtc-srtp context, used for a single SSRC and a single packet type.
///
/// `Context` is `Send` but not `Sync` (its cipher is a `Box<dyn Cipher + Send>`); the
/// mutex only restores `Sync` for the contexts that hold it. It is never locked: every
/// access goes through [`Mutex::get_mut`], which is free.
pub(crate) struct CmContext(Mutex<Context>);

impl CmContext {
    pub(crate) fn new(key: &SrtpKey) -> Result<Self, SrtpError> {
        Context::new(
            key.master_key(),
            key.master_salt(),
            ProtectionProfile::Aes128CmHmacSha1_80,
            // No replay detection in the crate: relais's window runs before it.
            None,
            None,
        )
        .map(|c| Self(Mutex::new(c)))
        .map_err(|_| SrtpError::Crypto)
    }

    fn get(&mut self) -> &mut Context {
        // Never locked, so never poisoned; recover the value anyway rather than panic.
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The spare context first packets of unknown SSRCs are tried on (guard 3 above).
#[derive(Default)]
pub(crate) struct Spare {
    context: Option<CmContext>,
    failures: usize,
}

impl Spare {
    /// The spare context, built if there is none.
    pub(crate) fn take(&mut self, key: &SrtpKey) -> Result<CmContext, SrtpError> {
        match self.context.take() {
            Some(c) => Ok(c),
            None => {
                self.failures = 0;
                CmContext::new(key)
            }
        }
    }

    /// Gives back a context whose probe failed (its state for that SSRC is still the
    /// crate's default); drops it after [`SPARE_PROBES`] failures.
    pub(crate) fn failed(&mut self, context: CmContext) {
        self.failures += 1;
        if self.failures < SPARE_PROBES {
            self.context = Some(context);
        } else {
            self.failures = 0;
        }
    }

    /// The probe succeeded: the context now belongs to an SSRC.
    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// The webrtc-srtp side of one SSRC's SRTP stream: its context and the index the crate
/// will estimate the next ROC from.
pub(crate) struct CmRtp {
    context: CmContext,
    /// Index of the last packet the crate processed for this SSRC (protected, or
    /// authenticated on receive): its ROC reference. `None` before the first one, when the
    /// crate uses ROC 0 and the sequence number as is.
    last: Option<u64>,
}

impl CmRtp {
    pub(crate) fn new(context: CmContext) -> Self {
        Self {
            context,
            last: None,
        }
    }

    /// The context back, if the crate never processed a packet on it for this SSRC (a
    /// failed probe: its state for the SSRC is still the default a fresh context has).
    pub(crate) fn into_fresh_context(self) -> Option<CmContext> {
        self.last.is_none().then_some(self.context)
    }

    /// The packet index webrtc-srtp will use for `seq`: RFC 3711 Appendix A relative to
    /// `last` (its `next_rollover_count` is the same function as [`estimate_index`]).
    fn crate_index(&self, seq: u16) -> u64 {
        match self.last {
            Some(last) => estimate_index(last, seq),
            None => u64::from(seq),
        }
    }

    /// Makes webrtc-srtp use `index` for the next packet of `header`'s SSRC: if its own
    /// estimate would differ, moves its reference to `highest` first (guard 4).
    fn align(&mut self, header: &RtpHeader, index: u64, highest: u64) -> Result<(), SrtpError> {
        if self.crate_index(header.seq) == index {
            return Ok(());
        }
        let target_seq = (highest & 0xffff) as u16;
        if self.last.is_none() || self.crate_index(target_seq) != highest {
            return Err(SrtpError::Crypto);
        }
        // A header-only packet (no keystream used) protected at `highest`; the output
        // (a tag nobody sees) is dropped. Only the crate's ROC reference moves.
        let mut dummy = [0u8; RTP_FIXED_HEADER_LEN];
        for (dst, src) in dummy.iter_mut().zip(
            [0x80, 0]
                .iter()
                .chain(&target_seq.to_be_bytes())
                .chain(&[0; 4])
                .chain(&header.ssrc.to_be_bytes()),
        ) {
            *dst = *src;
        }
        let dummy_header = RtpHeader {
            len: RTP_FIXED_HEADER_LEN,
            seq: target_seq,
            ssrc: header.ssrc,
        };
        self.context
            .get()
            .encrypt_rtp_with_header(&dummy, &crate_header(&dummy_header)?)
            .map_err(map_err)?;
        self.last = Some(highest);
        if self.crate_index(header.seq) == index {
            Ok(())
        } else {
            Err(SrtpError::Crypto)
        }
    }

    /// Protects `buf[..plaintext_len]` at packet index `index` (relais's estimate relative
    /// to `highest`, the highest index protected so far) and writes the protected packet
    /// back into `buf`. Returns its length.
    pub(crate) fn protect(
        &mut self,
        buf: &mut [u8],
        header: &RtpHeader,
        plaintext_len: usize,
        index: u64,
        highest: u64,
    ) -> Result<usize, SrtpError> {
        let total = plaintext_len + TAG_LEN;
        if buf.len() < total {
            return Err(SrtpError::BufferTooSmall {
                needed: total,
                capacity: buf.len(),
            });
        }
        let crate_header = crate_header(header)?;
        self.align(header, index, highest)?;
        let plain = buf.get(..plaintext_len).ok_or(SrtpError::Crypto)?;
        let out = self
            .context
            .get()
            .encrypt_rtp_with_header(plain, &crate_header)
            .map_err(map_err)?;
        self.last = Some(index);
        copy_back(buf, &out, total)
    }

    /// Verifies and decrypts the SRTP packet filling `packet` at packet index `index`
    /// (relais's estimate relative to `highest`, the highest index accepted so far; for a
    /// first packet both are its sequence number). Returns the plaintext length.
    pub(crate) fn unprotect(
        &mut self,
        packet: &mut [u8],
        header: &RtpHeader,
        index: u64,
        highest: u64,
    ) -> Result<usize, SrtpError> {
        let plain_len = packet
            .len()
            .checked_sub(TAG_LEN)
            .filter(|&n| n >= header.len)
            .ok_or(SrtpError::TooShort {
                len: packet.len(),
                min: header.len + TAG_LEN,
            })?;
        let crate_header = crate_header(header)?;
        self.align(header, index, highest)?;
        let out = self
            .context
            .get()
            .decrypt_rtp_with_header(packet, &crate_header)
            .map_err(map_err)?;
        // Only now that the crate authenticated it did its reference move.
        self.last = Some(index);
        copy_back(packet, &out, plain_len)
    }
}

/// The webrtc-srtp side of one SSRC's SRTCP stream.
///
/// The crate numbers SRTCP packets itself, starting at [`FIRST_SRTCP_INDEX`] (1: it
/// increments before use) and wrapping to 0 after 2^31 - 1. The sender mirrors that count,
/// refuses before the wrap and checks every packet's trailer against it.
pub(crate) struct CmRtcp {
    context: CmContext,
}

impl CmRtcp {
    pub(crate) fn new(context: CmContext) -> Self {
        Self { context }
    }

    /// The context back (after a failed probe: the crate's SRTCP receive state holds no
    /// index, only a replay detector, which is off).
    pub(crate) fn into_context(self) -> CmContext {
        self.context
    }

    /// Protects `buf[..plaintext_len]`, which the crate numbers `srtcp_index`, and writes
    /// the protected packet back into `buf`. Returns its length.
    pub(crate) fn protect(
        &mut self,
        buf: &mut [u8],
        plaintext_len: usize,
        srtcp_index: u32,
    ) -> Result<usize, SrtpError> {
        let total = plaintext_len + SRTCP_TRAILER_LEN + TAG_LEN;
        if buf.len() < total {
            return Err(SrtpError::BufferTooSmall {
                needed: total,
                capacity: buf.len(),
            });
        }
        let plain = buf.get(..plaintext_len).ok_or(SrtpError::Crypto)?;
        let out = self.context.get().encrypt_rtcp(plain).map_err(map_err)?;
        // The index the crate chose must be the one relais accounted for.
        if be_u32(&out, plaintext_len) != Some(0x8000_0000 | srtcp_index) {
            return Err(SrtpError::Crypto);
        }
        copy_back(buf, &out, total)
    }

    /// Verifies and decrypts the SRTCP packet filling `packet` (E flag set, at least
    /// 8 + 14 bytes: checked by the caller). Returns the plaintext RTCP length.
    pub(crate) fn unprotect(&mut self, packet: &mut [u8]) -> Result<usize, SrtpError> {
        let plain_len = packet
            .len()
            .checked_sub(SRTCP_TRAILER_LEN + TAG_LEN)
            .ok_or(SrtpError::Crypto)?;
        let out = self.context.get().decrypt_rtcp(packet).map_err(map_err)?;
        copy_back(packet, &out, plain_len)
    }
}

/// The `rtp::header::Header` handed to webrtc-srtp for a packet relais parsed: the crate
/// reads only its SSRC, sequence number and `marshal_size()` (where encryption starts),
/// and takes the header bytes themselves from the packet. The length is expressed as
/// extension padding so no CSRC or extension vector is allocated.
fn crate_header(header: &RtpHeader) -> Result<rtp::header::Header, SrtpError> {
    let mut h = rtp::header::Header {
        version: 2,
        sequence_number: header.seq,
        ssrc: header.ssrc,
        ..Default::default()
    };
    // 12 + 4 * CC (+ 4 + 4 * words): 12, or 16 and up in steps of 4.
    if let Some(rest) = header.len.checked_sub(RTP_FIXED_HEADER_LEN + 4) {
        h.extension = true;
        h.extensions_padding = rest;
    }
    if h.marshal_size() == header.len {
        Ok(h)
    } else {
        Err(SrtpError::Crypto)
    }
}

/// Copies the crate's output into the caller's buffer if it has exactly the expected length.
fn copy_back(dst: &mut [u8], src: &[u8], expected: usize) -> Result<usize, SrtpError> {
    if src.len() != expected {
        return Err(SrtpError::Crypto);
    }
    dst.get_mut(..expected)
        .ok_or(SrtpError::Crypto)?
        .copy_from_slice(src);
    Ok(expected)
}

fn map_err(e: webrtc_srtp::Error) -> SrtpError {
    match e {
        webrtc_srtp::Error::RtpFailedToVerifyAuthTag
        | webrtc_srtp::Error::RtcpFailedToVerifyAuthTag => SrtpError::AuthFailed,
        _ => SrtpError::Crypto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// webrtc-srtp 0.17.2 `SrtpSsrcState::next_rollover_count` (`context/mod.rs`),
    /// transcribed: the index it uses for `seq` after processing `index` (with
    /// `rollover_has_processed` set).
    fn webrtc_srtp_next_index(index: u64, seq: u16) -> u64 {
        const MEDIAN: u16 = 1 << 15;
        let local_roc = (index >> 16) as u32;
        let local_seq = index as u16;
        let mut guess_roc = local_roc;
        let s = i32::from(seq).wrapping_sub(i32::from(local_seq));
        let diff = if index > u64::from(MEDIAN) {
            if local_seq < MEDIAN {
                if s > i32::from(MEDIAN) {
                    guess_roc = local_roc.wrapping_sub(1);
                    s.wrapping_sub(i32::from(u16::MAX) + 1)
                } else {
                    s
                }
            } else if local_seq - MEDIAN > seq {
                guess_roc = local_roc.wrapping_add(1);
                s.wrapping_add(i32::from(u16::MAX) + 1)
            } else {
                s
            }
        } else {
            s
        };
        // update_rollover_count: index + diff, which must agree with guess_roc || seq.
        let updated = index.wrapping_add(diff as u64);
        assert_eq!(updated, (u64::from(guess_roc) << 16) | u64::from(seq));
        updated
    }

    #[test]
    fn crate_rollover_estimate_is_relais_estimate() {
        // Sequence numbers at a stride of 37 and around the reference's half-way points,
        // against references at a stride of 31 and at the edges, for several ROCs.
        let mut checked = 0u64;
        for roc in [0u64, 1, 2, 0x1234_5678] {
            let local_seqs = (0..=u16::MAX)
                .step_by(31)
                .chain([0, 1, 0x7ffe, 0x7fff, 0x8000, 0x8001, 0x8002, 0xfffe, 0xffff]);
            for local_seq in local_seqs {
                let reference = (roc << 16) | u64::from(local_seq);
                for seq in (0..=u16::MAX).step_by(37).chain([
                    local_seq.wrapping_add(0x7fff),
                    local_seq.wrapping_add(0x8000),
                    local_seq.wrapping_add(0x8001),
                    local_seq.wrapping_sub(1),
                    local_seq.wrapping_add(1),
                    0,
                    u16::MAX,
                ]) {
                    assert_eq!(
                        estimate_index(reference, seq),
                        webrtc_srtp_next_index(reference, seq),
                        "reference {reference:#x}, seq {seq:#x}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000_000, "{checked}");
    }

    #[test]
    fn crate_header_has_relais_length() {
        for len in (RTP_FIXED_HEADER_LEN..=12 + 4 * 15 + 4 + 4 * 0xffff).step_by(4) {
            let h = RtpHeader {
                len,
                seq: 7,
                ssrc: 9,
            };
            let c = crate_header(&h).unwrap();
            assert_eq!(c.marshal_size(), len);
            assert_eq!((c.sequence_number, c.ssrc), (7, 9));
            assert!(c.csrc.is_empty() && c.extensions.is_empty());
        }
    }

    #[test]
    fn spare_is_replaced_after_its_probe_budget() {
        let key =
            SrtpKey::new(crate::SrtpProfile::Aes128CmHmacSha1_80, &[1; 16], &[2; 14]).unwrap();
        let mut spare = Spare::default();
        for _ in 0..SPARE_PROBES - 1 {
            let c = spare.take(&key).unwrap();
            spare.failed(c);
            assert!(spare.context.is_some());
        }
        let c = spare.take(&key).unwrap();
        spare.failed(c);
        assert!(spare.context.is_none());
        assert_eq!(spare.failures, 0);
    }
}
