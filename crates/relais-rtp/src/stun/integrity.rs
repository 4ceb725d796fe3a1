//! MESSAGE-INTEGRITY (HMAC-SHA1) and FINGERPRINT (CRC-32) computation.
//!
//! Both cover the message "up to" their attribute, with the header's length field rewritten
//! as if that attribute were the last one (RFC 8489 §14.5, §14.7). On receive that rewritten
//! header differs from the bytes in the datagram, so the header is fed separately from a
//! 20-byte stack copy: no allocation, no copy of the message body.

use ring::hmac;

use super::{FINGERPRINT_XOR, HEADER_LEN};

/// Length of the MESSAGE-INTEGRITY value (an HMAC-SHA1 tag).
pub(crate) const INTEGRITY_LEN: usize = 20;

/// Length of the FINGERPRINT value.
pub(crate) const FINGERPRINT_LEN: usize = 4;

/// A prepared MESSAGE-INTEGRITY key for ICE short-term credentials.
///
/// The key bytes are the ICE password (`ice-pwd`) as-is (see the [module docs](super)).
/// Preparing a `StunKey` once per ICE session saves re-hashing the password into the HMAC
/// state for every check; the `&[u8]` variants of the verify and write functions build one
/// on the fly.
#[derive(Clone, Debug)]
pub struct StunKey {
    key: hmac::Key,
}

impl StunKey {
    /// A key for the short-term credential `password` (the ICE password bytes).
    pub fn new(password: &[u8]) -> Self {
        StunKey {
            key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, password),
        }
    }

    /// HMAC-SHA1 over `header` with its length field replaced by `length`, then `body`.
    pub(crate) fn tag(&self, header: &[u8; HEADER_LEN], length: u16, body: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&with_length(header, length));
        ctx.update(body);
        ctx.sign()
    }

    /// Constant-time comparison of a computed tag with a received one.
    ///
    /// `ring::hmac::verify` wants the signed data in one slice, which the adjusted header
    /// prevents without a copy. Instead both tags are HMACed again and `hmac::verify`
    /// compares those ("double HMAC"): it runs in constant time by ring's guarantee and is
    /// true exactly when the tags are equal, without a hand-rolled comparison loop that an
    /// optimiser might turn into an early exit.
    pub(crate) fn tags_equal(&self, computed: &hmac::Tag, received: &[u8]) -> bool {
        let rehashed = hmac::sign(&self.key, computed.as_ref());
        hmac::verify(&self.key, received, rehashed.as_ref()).is_ok()
    }
}

/// The FINGERPRINT value of `header` (length field replaced by `length`) followed by `body`.
pub(crate) fn fingerprint(header: &[u8; HEADER_LEN], length: u16, body: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&with_length(header, length));
    crc.update(body);
    crc.finalize() ^ FINGERPRINT_XOR
}

/// A copy of `header` with the message length field (bytes 2..4) set to `length`.
fn with_length(header: &[u8; HEADER_LEN], length: u16) -> [u8; HEADER_LEN] {
    let mut adjusted = *header;
    let [l0, l1] = length.to_be_bytes();
    if let Some(field) = adjusted.get_mut(2..4) {
        field.copy_from_slice(&[l0, l1]);
    }
    adjusted
}
