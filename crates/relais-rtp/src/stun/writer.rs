//! Building STUN messages into a caller-provided buffer.
//!
//! [`StunWriter`] writes the header at construction and appends one attribute per call,
//! keeping the header's length field current, so MESSAGE-INTEGRITY and FINGERPRINT can be
//! computed over the bytes already in the buffer. It enforces the ordering rules of RFC 8489
//! §14.5/§14.7 (only FINGERPRINT after MESSAGE-INTEGRITY, nothing after FINGERPRINT).
//!
//! Padding bytes are zero by default, as RFC 8489 §14 recommends. They are covered by
//! MESSAGE-INTEGRITY and FINGERPRINT, so reproducing a captured message byte for byte needs
//! the sender's padding: the RFC 5769 test vectors pad with 0x20 (spaces), which
//! [`StunWriter::padding_byte`] allows.

use std::net::{IpAddr, SocketAddr};

use super::integrity::{self, StunKey, FINGERPRINT_LEN, INTEGRITY_LEN};
use super::message::xor_key_v6;
use super::{
    attr, message_type, StunClass, StunError, StunMethod, TransactionId, HEADER_LEN, MAGIC_COOKIE,
};

/// Largest message body: the 16-bit length field, rounded down to a multiple of four.
const MAX_BODY_LEN: usize = 0xFFFC;

/// Longest ERROR-CODE reason phrase: 128 characters of up to 6 UTF-8 bytes, minus one
/// (RFC 8489 §14.8: "less than 128 characters (which can be as long as 509 bytes)" in the
/// 8489 count, 763 in RFC 5389's; the larger bound is accepted).
const MAX_REASON_LEN: usize = 763;

/// Where the writer is in the attribute sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Any attribute may follow.
    Open,
    /// MESSAGE-INTEGRITY was written; only FINGERPRINT may follow.
    Integrity,
    /// FINGERPRINT was written; the message is complete.
    Fingerprint,
}

/// Writes one STUN message into a borrowed buffer.
///
/// ```
/// # use relais_rtp::stun::{StunKey, StunMessage, StunWriter};
/// # fn main() -> Result<(), relais_rtp::stun::StunError> {
/// let key = StunKey::new(b"ice-password-of-the-peer");
/// let mut buf = [0u8; 1280];
/// let mut writer = StunWriter::binding_request(&mut buf, [7; 12])?;
/// writer
///     .username(b"peerufrag:ourufrag")?
///     .priority(0x6e00_01ff)?
///     .ice_controlling(0x1234_5678_9abc_def0)?
///     .use_candidate()?
///     .message_integrity(&key)?
///     .fingerprint()?;
/// let len = writer.finish();
/// let request = StunMessage::parse(&buf[..len])?;
/// request.verify_message_integrity_with(&key)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StunWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    padding: u8,
    stage: Stage,
    transaction_id: TransactionId,
}

impl<'b> StunWriter<'b> {
    /// Start a message of `class` and `method` with `transaction_id` in `buf`.
    pub fn new(
        buf: &'b mut [u8],
        class: StunClass,
        method: StunMethod,
        transaction_id: TransactionId,
    ) -> Result<Self, StunError> {
        let available = buf.len();
        let header = buf
            .first_chunk_mut::<HEADER_LEN>()
            .ok_or(StunError::BufferTooSmall {
                needed: HEADER_LEN,
                available,
            })?;
        let [t0, t1] = message_type(class, method).to_be_bytes();
        let [c0, c1, c2, c3] = MAGIC_COOKIE.to_be_bytes();
        let [i0, i1, i2, i3, i4, i5, i6, i7, i8, i9, i10, i11] = transaction_id;
        *header = [
            t0, t1, 0, 0, c0, c1, c2, c3, i0, i1, i2, i3, i4, i5, i6, i7, i8, i9, i10, i11,
        ];
        Ok(StunWriter {
            buf,
            len: HEADER_LEN,
            padding: 0,
            stage: Stage::Open,
            transaction_id,
        })
    }

    /// Start a Binding request (an ICE connectivity check).
    pub fn binding_request(
        buf: &'b mut [u8],
        transaction_id: TransactionId,
    ) -> Result<Self, StunError> {
        Self::new(buf, StunClass::Request, StunMethod::BINDING, transaction_id)
    }

    /// Start a Binding success response; `transaction_id` is the request's.
    pub fn binding_success(
        buf: &'b mut [u8],
        transaction_id: TransactionId,
    ) -> Result<Self, StunError> {
        Self::new(
            buf,
            StunClass::SuccessResponse,
            StunMethod::BINDING,
            transaction_id,
        )
    }

    /// Start a Binding error response; `transaction_id` is the request's.
    pub fn binding_error(
        buf: &'b mut [u8],
        transaction_id: TransactionId,
    ) -> Result<Self, StunError> {
        Self::new(
            buf,
            StunClass::ErrorResponse,
            StunMethod::BINDING,
            transaction_id,
        )
    }

    /// Start a Binding indication (keepalive).
    pub fn binding_indication(
        buf: &'b mut [u8],
        transaction_id: TransactionId,
    ) -> Result<Self, StunError> {
        Self::new(
            buf,
            StunClass::Indication,
            StunMethod::BINDING,
            transaction_id,
        )
    }

    /// Use `byte` for the padding of attributes written from now on (default 0).
    #[inline]
    pub fn padding_byte(&mut self, byte: u8) -> &mut Self {
        self.padding = byte;
        self
    }

    /// Append an attribute with a raw value (padding added). For attribute types this module
    /// has no typed method for; must not be MESSAGE-INTEGRITY or FINGERPRINT, whose values
    /// are computed by [`message_integrity`](Self::message_integrity) and
    /// [`fingerprint`](Self::fingerprint).
    pub fn attribute(&mut self, attr_type: u16, value: &[u8]) -> Result<&mut Self, StunError> {
        if attr_type == attr::MESSAGE_INTEGRITY || attr_type == attr::FINGERPRINT {
            return Err(StunError::ComputedAttribute { attr_type });
        }
        self.begin(attr_type, value.len())?.copy_from_slice(value);
        Ok(self)
    }

    /// Append USERNAME (in ICE: `remote-ufrag:local-ufrag` of the sender's view).
    pub fn username(&mut self, username: &[u8]) -> Result<&mut Self, StunError> {
        self.attribute(attr::USERNAME, username)
    }

    /// Append SOFTWARE.
    pub fn software(&mut self, software: &str) -> Result<&mut Self, StunError> {
        self.attribute(attr::SOFTWARE, software.as_bytes())
    }

    /// Append PRIORITY.
    pub fn priority(&mut self, priority: u32) -> Result<&mut Self, StunError> {
        self.attribute(attr::PRIORITY, &priority.to_be_bytes())
    }

    /// Append ICE-CONTROLLING with the agent's tie-breaker.
    pub fn ice_controlling(&mut self, tie_breaker: u64) -> Result<&mut Self, StunError> {
        self.attribute(attr::ICE_CONTROLLING, &tie_breaker.to_be_bytes())
    }

    /// Append ICE-CONTROLLED with the agent's tie-breaker.
    pub fn ice_controlled(&mut self, tie_breaker: u64) -> Result<&mut Self, StunError> {
        self.attribute(attr::ICE_CONTROLLED, &tie_breaker.to_be_bytes())
    }

    /// Append USE-CANDIDATE (no value).
    pub fn use_candidate(&mut self) -> Result<&mut Self, StunError> {
        self.attribute(attr::USE_CANDIDATE, &[])
    }

    /// Append XOR-MAPPED-ADDRESS for `address` (the request's source as seen by relais).
    pub fn xor_mapped_address(&mut self, address: SocketAddr) -> Result<&mut Self, StunError> {
        let port = (address.port() ^ (MAGIC_COOKIE >> 16) as u16).to_be_bytes();
        match address.ip() {
            IpAddr::V4(ip) => {
                let ip = (u32::from(ip) ^ MAGIC_COOKIE).to_be_bytes();
                let value = [0, 1, port[0], port[1], ip[0], ip[1], ip[2], ip[3]];
                self.attribute(attr::XOR_MAPPED_ADDRESS, &value)
            }
            IpAddr::V6(ip) => {
                let ip = (u128::from(ip) ^ xor_key_v6(&self.transaction_id)).to_be_bytes();
                let value = self.begin(attr::XOR_MAPPED_ADDRESS, 20)?;
                let (head, address) = value.split_at_mut(4);
                head.copy_from_slice(&[0, 2, port[0], port[1]]);
                address.copy_from_slice(&ip);
                Ok(self)
            }
        }
    }

    /// Append ERROR-CODE with `code` in 300..=699 (e.g. 400, 401, 487) and a reason phrase.
    pub fn error_code(&mut self, code: u16, reason: &str) -> Result<&mut Self, StunError> {
        if !(300..=699).contains(&code) {
            return Err(StunError::InvalidErrorCode { code });
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(StunError::ValueTooLong {
                attr_type: attr::ERROR_CODE,
                len: reason.len(),
            });
        }
        // Both fit in a byte: code / 100 is 3..=6, code % 100 is 0..=99.
        let class = (code / 100) as u8;
        let number = (code % 100) as u8;
        let value = self.begin(attr::ERROR_CODE, 4 + reason.len())?;
        let (head, phrase) = value.split_at_mut(4);
        head.copy_from_slice(&[0, 0, class, number]);
        phrase.copy_from_slice(reason.as_bytes());
        Ok(self)
    }

    /// Append MESSAGE-INTEGRITY: HMAC-SHA1 with `key` over everything written so far, with the
    /// length field already counting this attribute (RFC 8489 §14.5).
    pub fn message_integrity(&mut self, key: &StunKey) -> Result<&mut Self, StunError> {
        let start = self.len;
        self.begin(attr::MESSAGE_INTEGRITY, INTEGRITY_LEN)?;
        let (header, body, value) = self.split_for_value(start, INTEGRITY_LEN)?;
        let tag = key.tag(header, body_length(header), body);
        value.copy_from_slice(tag.as_ref());
        self.stage = Stage::Integrity;
        Ok(self)
    }

    /// Append MESSAGE-INTEGRITY keyed by the short-term credential `password`.
    pub fn message_integrity_with_password(
        &mut self,
        password: &[u8],
    ) -> Result<&mut Self, StunError> {
        self.message_integrity(&StunKey::new(password))
    }

    /// Append FINGERPRINT over everything written so far; nothing may follow it.
    pub fn fingerprint(&mut self) -> Result<&mut Self, StunError> {
        let start = self.len;
        self.begin(attr::FINGERPRINT, FINGERPRINT_LEN)?;
        let (header, body, value) = self.split_for_value(start, FINGERPRINT_LEN)?;
        let crc = integrity::fingerprint(header, body_length(header), body);
        value.copy_from_slice(&crc.to_be_bytes());
        self.stage = Stage::Fingerprint;
        Ok(self)
    }

    /// The bytes written so far (a complete message after every call).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Finish and return the message length; the message is `buf[..len]`.
    #[inline]
    pub fn finish(self) -> usize {
        self.len
    }

    /// Write the header of an attribute with a `value_len`-byte value and its padding, update
    /// the message length, and return the (still unwritten) value bytes.
    fn begin(&mut self, attr_type: u16, value_len: usize) -> Result<&mut [u8], StunError> {
        match (self.stage, attr_type) {
            (Stage::Fingerprint, _) => return Err(StunError::AttributeAfterFingerprint),
            (Stage::Integrity, attr::FINGERPRINT) | (Stage::Open, _) => {}
            (Stage::Integrity, _) => return Err(StunError::AttributeAfterIntegrity),
        }
        let too_long = StunError::ValueTooLong {
            attr_type,
            len: value_len,
        };
        let value_len_field = u16::try_from(value_len).map_err(|_| too_long)?;
        let start = self.len;
        let end = start + 4 + value_len.next_multiple_of(4);
        let body_len = end - HEADER_LEN;
        if body_len > MAX_BODY_LEN {
            return Err(too_long);
        }
        let body_len = u16::try_from(body_len).map_err(|_| too_long)?;
        let too_small = StunError::BufferTooSmall {
            needed: end,
            available: self.buf.len(),
        };
        // Everything that can fail is checked before the first byte is written, so a failed
        // call leaves the message as it was.
        let attribute = self.buf.get_mut(start..end).ok_or(too_small)?;
        let (attr_header, value_and_padding) =
            attribute.split_at_mut_checked(4).ok_or(too_small)?;
        let padding = value_and_padding.get_mut(value_len..).ok_or(too_small)?;
        let [t0, t1] = attr_type.to_be_bytes();
        let [l0, l1] = value_len_field.to_be_bytes();
        attr_header.copy_from_slice(&[t0, t1, l0, l1]);
        padding.fill(self.padding);
        let value_start = start + 4;

        if let Some(length_field) = self.buf.get_mut(2..4) {
            length_field.copy_from_slice(&body_len.to_be_bytes());
        }
        self.len = end;
        self.buf
            .get_mut(value_start..value_start + value_len)
            .ok_or(too_small)
    }

    /// Split the written message into header, body before the attribute at `start`, and that
    /// attribute's `value_len`-byte value.
    fn split_for_value(
        &mut self,
        start: usize,
        value_len: usize,
    ) -> Result<SplitForValue<'_>, StunError> {
        let available = self.buf.len();
        let too_small = StunError::BufferTooSmall {
            needed: start + 4 + value_len,
            available,
        };
        let (head, rest) = self.buf.split_at_mut_checked(start).ok_or(too_small)?;
        let (header, body) = head.split_first_chunk::<HEADER_LEN>().ok_or(too_small)?;
        let value = rest.get_mut(4..4 + value_len).ok_or(too_small)?;
        Ok((header, body, value))
    }
}

/// The written message split for computing a MESSAGE-INTEGRITY or FINGERPRINT value: header,
/// the body before the attribute, and the attribute's value to fill in.
type SplitForValue<'m> = (&'m [u8; HEADER_LEN], &'m [u8], &'m mut [u8]);

/// The message length field of a header.
fn body_length(header: &[u8; HEADER_LEN]) -> u16 {
    let [_, _, l0, l1, ..] = *header;
    u16::from_be_bytes([l0, l1])
}
