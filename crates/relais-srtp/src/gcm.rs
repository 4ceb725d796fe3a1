//! `SRTP_AEAD_AES_128_GCM` (RFC 7714) in place over `ring::aead`: the fast path.
//!
//! Per packet this module does one AES-GCM seal or open on the caller's buffer and builds a
//! 12-byte nonce and (for SRTCP) a 12-byte AAD on the stack. It never allocates.
//!
//! Layouts (RFC 7714 §8, §9, §17):
//!
//! ```text
//! SRTP:   | RTP header (AAD) | ciphertext | tag (16) |
//!         IV = (00 00 || SSRC || ROC || SEQ) XOR salt
//! SRTCP:  | header + SSRC (8) | ciphertext | tag (16) | E || SRTCP index (4) |
//!         IV = (00 00 || SSRC || 00 00 || 0 || index) XOR salt
//!         AAD = first 8 bytes || E || SRTCP index
//! ```

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};

use crate::header::RTCP_CLEAR_LEN;
use crate::kdf::{derive, Label};
use crate::SrtpError;

/// GCM authentication tag length.
pub(crate) const TAG_LEN: usize = 16;
/// E flag + 31-bit SRTCP index.
const SRTCP_TRAILER_LEN: usize = 4;

/// Session keys of one direction for AEAD_AES_128_GCM.
pub(crate) struct GcmTransform {
    rtp_key: LessSafeKey,
    rtp_salt: [u8; 12],
    rtcp_key: LessSafeKey,
    rtcp_salt: [u8; 12],
}

impl GcmTransform {
    /// Derives the SRTP and SRTCP session keys and salts from a master key and 12-byte
    /// master salt (RFC 7714 §11: the RFC 3711 AES-CM PRF, labels 0/2 and 3/5).
    pub(crate) fn new(master_key: &[u8; 16], master_salt: &[u8]) -> Result<Self, SrtpError> {
        let mut rtp_key = [0u8; 16];
        let mut rtp_salt = [0u8; 12];
        let mut rtcp_key = [0u8; 16];
        let mut rtcp_salt = [0u8; 12];
        derive(master_key, master_salt, Label::RtpEncryption, &mut rtp_key);
        derive(master_key, master_salt, Label::RtpSalt, &mut rtp_salt);
        derive(
            master_key,
            master_salt,
            Label::RtcpEncryption,
            &mut rtcp_key,
        );
        derive(master_key, master_salt, Label::RtcpSalt, &mut rtcp_salt);
        Self::from_session_keys(&rtp_key, rtp_salt, &rtcp_key, rtcp_salt)
    }

    /// Builds the transform from already-derived session keys (the RFC 7714 test vectors
    /// are given this way).
    pub(crate) fn from_session_keys(
        rtp_key: &[u8; 16],
        rtp_salt: [u8; 12],
        rtcp_key: &[u8; 16],
        rtcp_salt: [u8; 12],
    ) -> Result<Self, SrtpError> {
        let key = |k: &[u8; 16]| {
            UnboundKey::new(&AES_128_GCM, k)
                .map(LessSafeKey::new)
                .map_err(|_| SrtpError::Crypto)
        };
        Ok(Self {
            rtp_key: key(rtp_key)?,
            rtp_salt,
            rtcp_key: key(rtcp_key)?,
            rtcp_salt,
        })
    }

    /// Encrypts `buf[header_len..plaintext_len]` in place with `buf[..header_len]` as AAD
    /// and writes the tag after it. Returns the protected length.
    pub(crate) fn protect_rtp(
        &self,
        buf: &mut [u8],
        header_len: usize,
        plaintext_len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, SrtpError> {
        let total = plaintext_len + TAG_LEN;
        let capacity = buf.len();
        let packet = buf.get_mut(..total).ok_or(SrtpError::BufferTooSmall {
            needed: total,
            capacity,
        })?;
        let (header, rest) = packet
            .split_at_mut_checked(header_len)
            .ok_or(SrtpError::Crypto)?;
        let (payload, tag_out) = rest
            .split_at_mut_checked(plaintext_len.saturating_sub(header_len))
            .ok_or(SrtpError::Crypto)?;
        let tag = self
            .rtp_key
            .seal_in_place_separate_tag(
                rtp_nonce(&self.rtp_salt, ssrc, index),
                Aad::from(&*header),
                payload,
            )
            .map_err(|_| SrtpError::Crypto)?;
        for (dst, src) in tag_out.iter_mut().zip(tag.as_ref()) {
            *dst = *src;
        }
        Ok(total)
    }

    /// Verifies and decrypts `packet[header_len..]` (ciphertext || tag) in place. Returns
    /// the plaintext length (header included).
    pub(crate) fn unprotect_rtp(
        &self,
        packet: &mut [u8],
        header_len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, SrtpError> {
        let (header, rest) = packet
            .split_at_mut_checked(header_len)
            .ok_or(SrtpError::AuthFailed)?;
        let plain = self
            .rtp_key
            .open_in_place(
                rtp_nonce(&self.rtp_salt, ssrc, index),
                Aad::from(&*header),
                rest,
            )
            .map_err(|_| SrtpError::AuthFailed)?;
        Ok(header_len + plain.len())
    }

    /// Encrypts `buf[8..plaintext_len]` in place and appends tag and E || index.
    pub(crate) fn protect_rtcp(
        &self,
        buf: &mut [u8],
        plaintext_len: usize,
        ssrc: u32,
        srtcp_index: u32,
    ) -> Result<usize, SrtpError> {
        let total = plaintext_len + TAG_LEN + SRTCP_TRAILER_LEN;
        let capacity = buf.len();
        let packet = buf.get_mut(..total).ok_or(SrtpError::BufferTooSmall {
            needed: total,
            capacity,
        })?;
        let (header, rest) = packet
            .split_at_mut_checked(RTCP_CLEAR_LEN)
            .ok_or(SrtpError::Crypto)?;
        let (payload, trailer) = rest
            .split_at_mut_checked(plaintext_len.saturating_sub(RTCP_CLEAR_LEN))
            .ok_or(SrtpError::Crypto)?;
        let word = (0x8000_0000 | srtcp_index).to_be_bytes();
        let aad = rtcp_aad(header, word)?;
        let tag = self
            .rtcp_key
            .seal_in_place_separate_tag(
                rtcp_nonce(&self.rtcp_salt, ssrc, srtcp_index),
                Aad::from(aad),
                payload,
            )
            .map_err(|_| SrtpError::Crypto)?;
        for (dst, src) in trailer.iter_mut().zip(tag.as_ref().iter().chain(&word)) {
            *dst = *src;
        }
        Ok(total)
    }

    /// Verifies and decrypts an SRTCP packet whose trailer word is `word` (E flag set).
    /// Returns the plaintext RTCP length.
    pub(crate) fn unprotect_rtcp(
        &self,
        packet: &mut [u8],
        ssrc: u32,
        word: u32,
    ) -> Result<usize, SrtpError> {
        let body_len = packet
            .len()
            .checked_sub(SRTCP_TRAILER_LEN)
            .ok_or(SrtpError::AuthFailed)?;
        let body = packet.get_mut(..body_len).ok_or(SrtpError::AuthFailed)?;
        let (header, rest) = body
            .split_at_mut_checked(RTCP_CLEAR_LEN)
            .ok_or(SrtpError::AuthFailed)?;
        let aad = rtcp_aad(header, word.to_be_bytes())?;
        let plain = self
            .rtcp_key
            .open_in_place(
                rtcp_nonce(&self.rtcp_salt, ssrc, word & 0x7fff_ffff),
                Aad::from(aad),
                rest,
            )
            .map_err(|_| SrtpError::AuthFailed)?;
        Ok(RTCP_CLEAR_LEN + plain.len())
    }
}

/// RFC 7714 §8.1: `(00 00 || SSRC || ROC || SEQ) XOR salt`; ROC || SEQ is the 48-bit index.
fn rtp_nonce(salt: &[u8; 12], ssrc: u32, index: u64) -> Nonce {
    let mut iv = [0u8; 12];
    let ssrc = ssrc.to_be_bytes();
    let index = index.to_be_bytes(); // 8 bytes, the top two are zero
    for (dst, src) in iv
        .iter_mut()
        .skip(2)
        .zip(ssrc.iter().chain(index.iter().skip(2)))
    {
        *dst = *src;
    }
    for (dst, s) in iv.iter_mut().zip(salt) {
        *dst ^= s;
    }
    Nonce::assume_unique_for_key(iv)
}

/// RFC 7714 §9.1: `(00 00 || SSRC || 00 00 || 0 || SRTCP index) XOR salt`.
fn rtcp_nonce(salt: &[u8; 12], ssrc: u32, srtcp_index: u32) -> Nonce {
    let mut iv = [0u8; 12];
    let ssrc = ssrc.to_be_bytes();
    let index = srtcp_index.to_be_bytes();
    for (dst, src) in iv.iter_mut().skip(2).zip(ssrc) {
        *dst = src;
    }
    for (dst, src) in iv.iter_mut().skip(8).zip(index) {
        *dst = src;
    }
    for (dst, s) in iv.iter_mut().zip(salt) {
        *dst ^= s;
    }
    Nonce::assume_unique_for_key(iv)
}

/// RFC 7714 §9.2 (E = 1): the 8 clear bytes followed by E || SRTCP index.
fn rtcp_aad(header: &[u8], word: [u8; 4]) -> Result<[u8; 12], SrtpError> {
    let mut aad = [0u8; 12];
    if header.len() != RTCP_CLEAR_LEN {
        return Err(SrtpError::Crypto);
    }
    for (dst, src) in aad.iter_mut().zip(header.iter().chain(&word)) {
        *dst = *src;
    }
    Ok(aad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 7714 §16/§17 give the session key and salt directly (no KDF), the same for
    /// SRTP and SRTCP.
    fn rfc7714() -> GcmTransform {
        let key: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let salt: [u8; 12] = hex("517569642070726f2071756f").try_into().unwrap();
        GcmTransform::from_session_keys(&key, salt, &key, salt).unwrap()
    }

    const RTP_PLAIN: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
                             20646976 69736120 696e2070 61727465 73207472 6573";
    /// RFC 7714 §16.1.1, "Encrypted and tagged RTP packet".
    const RTP_PROTECTED: &str = "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca
                                 be633bd5 0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1
                                 6a9152cf 765ee439 0cce";
    /// The RTCP packet RFC 7714 §17.1 encrypts (SSRC "Mars").
    const RTCP_PLAIN: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
                              4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";
    /// RFC 7714 §17.1, "Encrypted and tagged packet", SRTCP index 0x5d4.
    const RTCP_PROTECTED: &str = "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7
                                  6c06f32d c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458
                                  96cf4d2f c5abf872 45d9eade 800005d4";

    #[test]
    fn rfc7714_ivs() {
        let salt: [u8; 12] = hex("517569642070726f2071756f").try_into().unwrap();
        assert_eq!(
            rtp_nonce(&salt, 0x5501a0b2, 0xf17b).as_ref()[..],
            hex("51753c6580c2726f20718414")[..]
        );
        assert_eq!(
            rtcp_nonce(&salt, 0x4d617273, 0x5d4).as_ref()[..],
            hex("517524055203726f207170bb")[..]
        );
    }

    #[test]
    fn rfc7714_16_1_rtp_encrypt_and_decrypt() {
        let plain = hex(RTP_PLAIN);
        let want = hex(RTP_PROTECTED);
        let t = rfc7714();

        let mut buf = plain.clone();
        buf.resize(plain.len() + TAG_LEN, 0);
        let n = t
            .protect_rtp(&mut buf, 12, plain.len(), 0x5501a0b2, 0xf17b)
            .unwrap();
        assert_eq!(&buf[..n], &want[..]);

        let mut wire = want.clone();
        let n = t.unprotect_rtp(&mut wire, 12, 0x5501a0b2, 0xf17b).unwrap();
        assert_eq!(&wire[..n], &plain[..]);

        // Wrong ROC: same bytes, other index -> tag fails.
        let mut wire = want;
        assert_eq!(
            t.unprotect_rtp(&mut wire, 12, 0x5501a0b2, 0x1_f17b),
            Err(SrtpError::AuthFailed)
        );
    }

    #[test]
    fn rfc7714_17_1_rtcp_encrypt_and_decrypt() {
        let plain = hex(RTCP_PLAIN);
        let want = hex(RTCP_PROTECTED);
        let t = rfc7714();

        let mut buf = plain.clone();
        buf.resize(plain.len() + TAG_LEN + 4, 0);
        let n = t
            .protect_rtcp(&mut buf, plain.len(), 0x4d617273, 0x5d4)
            .unwrap();
        assert_eq!(&buf[..n], &want[..]);

        let mut wire = want.clone();
        let n = t
            .unprotect_rtcp(&mut wire, 0x4d617273, 0x8000_05d4)
            .unwrap();
        assert_eq!(&wire[..n], &plain[..]);

        // The index is authenticated (it is in the AAD and the IV).
        let mut wire = want;
        assert_eq!(
            t.unprotect_rtcp(&mut wire, 0x4d617273, 0x8000_05d5),
            Err(SrtpError::AuthFailed)
        );
    }

    #[test]
    fn short_buffers_are_errors_not_panics() {
        let t = rfc7714();
        let mut buf = [0x80u8; 20];
        assert_eq!(
            t.protect_rtp(&mut buf, 12, 20, 1, 1),
            Err(SrtpError::BufferTooSmall {
                needed: 36,
                capacity: 20
            })
        );
        assert_eq!(
            t.unprotect_rtp(&mut buf[..5], 12, 1, 1),
            Err(SrtpError::AuthFailed)
        );
        assert_eq!(
            t.unprotect_rtcp(&mut buf[..3], 1, 0x8000_0000),
            Err(SrtpError::AuthFailed)
        );
        assert_eq!(
            t.unprotect_rtcp(&mut buf[..10], 1, 0x8000_0000),
            Err(SrtpError::AuthFailed)
        );
    }
}
