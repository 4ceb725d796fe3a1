//! The zero-copy view of a received STUN message.
//!
//! [`StunMessage::parse`] walks the attributes once, bounds-checking every header, value and
//! padding, and remembers where the attributes ICE needs are, so the accessors afterwards are
//! field reads. Rules applied while walking (RFC 8489 §14, §14.5, §14.7):
//! - the first occurrence of an attribute wins; later duplicates are ignored;
//! - attributes after MESSAGE-INTEGRITY are ignored (they are not covered by the HMAC), except
//!   FINGERPRINT;
//! - FINGERPRINT must be the last attribute;
//! - attributes relais decodes must have their specified length.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::integrity::{self, StunKey, FINGERPRINT_LEN, INTEGRITY_LEN};
use super::{
    attr, header_checks, split_message_type, StunClass, StunError, StunMethod, TransactionId,
    HEADER_LEN, MAGIC_COOKIE,
};

/// Length of an attribute's type + length header.
const ATTR_HEADER_LEN: usize = 4;

/// A parsed STUN message borrowing the datagram it came from.
///
/// Its `Debug` output names the message and which attributes are present but leaves out
/// USERNAME, addresses and other contents, so it is safe to log (DESIGN.md principle 4).
#[derive(Clone, Copy)]
pub struct StunMessage<'a> {
    bytes: &'a [u8],
    class: StunClass,
    method: StunMethod,
    transaction_id: TransactionId,
    username: Option<&'a [u8]>,
    software: Option<&'a [u8]>,
    priority: Option<u32>,
    use_candidate: bool,
    ice_controlling: Option<u64>,
    ice_controlled: Option<u64>,
    xor_mapped_address: Option<SocketAddr>,
    error_code: Option<StunErrorCode<'a>>,
    unknown_required: Option<u16>,
    message_integrity: Option<usize>,
    fingerprint: Option<usize>,
}

impl std::fmt::Debug for StunMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StunMessage")
            .field("class", &self.class)
            .field("method", &self.method)
            .field("len", &self.bytes.len())
            .field("username", &self.username.map(|_| "<redacted>"))
            .field("priority", &self.priority)
            .field("use_candidate", &self.use_candidate)
            .field("ice_controlling", &self.ice_controlling.is_some())
            .field("ice_controlled", &self.ice_controlled.is_some())
            .field(
                "xor_mapped_address",
                &self.xor_mapped_address.map(|_| "<redacted>"),
            )
            .field("error_code", &self.error_code.map(|e| e.code))
            .field("message_integrity", &self.message_integrity)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The decoded ERROR-CODE attribute (RFC 8489 §14.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunErrorCode<'a> {
    code: u16,
    reason: &'a [u8],
}

impl<'a> StunErrorCode<'a> {
    /// The error code: class × 100 + number, e.g. 401 or 487.
    #[inline]
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reason phrase bytes (UTF-8 by the RFC, unchecked).
    #[inline]
    pub fn reason(&self) -> &'a [u8] {
        self.reason
    }

    /// The reason phrase if it is valid UTF-8.
    #[inline]
    pub fn reason_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.reason).ok()
    }
}

/// One raw attribute of a parsed message: its type and value without padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunAttribute<'a> {
    /// The attribute type (see [`attr`](super::attr)).
    pub attr_type: u16,
    /// The value, without padding.
    pub value: &'a [u8],
}

/// Iterator over all attributes of a parsed message, in wire order, including those after
/// MESSAGE-INTEGRITY that [`StunMessage`]'s accessors ignore.
#[derive(Debug, Clone)]
pub struct StunAttributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for StunAttributes<'a> {
    type Item = StunAttribute<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // The layout was validated by `StunMessage::parse`, so a failure here only ends the
        // iteration; it cannot happen for a view built by `parse`.
        let (attribute, next) = split_attribute(self.rest).ok()?;
        self.rest = next;
        Some(attribute)
    }
}

/// Split the first attribute (header, value, padding) off `rest`.
fn split_attribute(rest: &[u8]) -> Result<(StunAttribute<'_>, &[u8]), StunError> {
    let (header, after_header) = rest
        .split_first_chunk::<ATTR_HEADER_LEN>()
        .ok_or(StunError::AttributeTruncated { attr_type: 0 })?;
    let [t0, t1, l0, l1] = *header;
    let attr_type = u16::from_be_bytes([t0, t1]);
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    let padded = len.next_multiple_of(4);
    let (value_and_padding, next) = after_header
        .split_at_checked(padded)
        .ok_or(StunError::AttributeTruncated { attr_type })?;
    let value = value_and_padding
        .get(..len)
        .ok_or(StunError::AttributeTruncated { attr_type })?;
    Ok((StunAttribute { attr_type, value }, next))
}

impl<'a> StunMessage<'a> {
    /// Parse a STUN message from a whole UDP datagram.
    ///
    /// Checks the header (top two bits zero, magic cookie, length a multiple of four and
    /// equal to the datagram length minus 20) and every attribute's bounds. Does not verify
    /// MESSAGE-INTEGRITY or FINGERPRINT; call [`verify_message_integrity`] and
    /// [`verify_fingerprint`] for that.
    ///
    /// [`verify_message_integrity`]: StunMessage::verify_message_integrity
    /// [`verify_fingerprint`]: StunMessage::verify_fingerprint
    pub fn parse(datagram: &'a [u8]) -> Result<Self, StunError> {
        header_checks(datagram)?;
        let (header, mut rest) =
            datagram
                .split_first_chunk::<HEADER_LEN>()
                .ok_or(StunError::TooShort {
                    len: datagram.len(),
                })?;
        let [m0, m1, _, _, _, _, _, _, tid @ ..] = *header;
        let (class, method) = split_message_type(u16::from_be_bytes([m0, m1]));

        let mut message = StunMessage {
            bytes: datagram,
            class,
            method,
            transaction_id: tid,
            username: None,
            software: None,
            priority: None,
            use_candidate: false,
            ice_controlling: None,
            ice_controlled: None,
            xor_mapped_address: None,
            error_code: None,
            unknown_required: None,
            message_integrity: None,
            fingerprint: None,
        };

        let mut offset = HEADER_LEN;
        while !rest.is_empty() {
            if message.fingerprint.is_some() {
                return Err(StunError::FingerprintNotLast);
            }
            let (attribute, next) = split_attribute(rest)?;
            message.record(attribute, offset)?;
            offset = datagram.len() - next.len();
            rest = next;
        }
        Ok(message)
    }

    /// Take note of one attribute found at `offset` (of its header) during `parse`.
    fn record(&mut self, attribute: StunAttribute<'a>, offset: usize) -> Result<(), StunError> {
        let StunAttribute { attr_type, value } = attribute;
        if attr_type == attr::FINGERPRINT {
            expect_len(attr_type, value, FINGERPRINT_LEN)?;
            self.fingerprint = Some(offset);
            return Ok(());
        }
        if self.message_integrity.is_some() {
            // RFC 8489 §14.5: ignore everything after MESSAGE-INTEGRITY but FINGERPRINT.
            return Ok(());
        }
        match attr_type {
            attr::MESSAGE_INTEGRITY => {
                expect_len(attr_type, value, INTEGRITY_LEN)?;
                self.message_integrity = Some(offset);
            }
            attr::USERNAME => {
                self.username.get_or_insert(value);
            }
            attr::SOFTWARE => {
                self.software.get_or_insert(value);
            }
            attr::PRIORITY => {
                let value = expect_array::<4>(attr_type, value)?;
                self.priority.get_or_insert(u32::from_be_bytes(value));
            }
            attr::USE_CANDIDATE => {
                expect_len(attr_type, value, 0)?;
                self.use_candidate = true;
            }
            attr::ICE_CONTROLLING => {
                let value = expect_array::<8>(attr_type, value)?;
                self.ice_controlling
                    .get_or_insert(u64::from_be_bytes(value));
            }
            attr::ICE_CONTROLLED => {
                let value = expect_array::<8>(attr_type, value)?;
                self.ice_controlled.get_or_insert(u64::from_be_bytes(value));
            }
            attr::XOR_MAPPED_ADDRESS => {
                let transaction_id = self.transaction_id;
                keep_first(&mut self.xor_mapped_address, || {
                    decode_xor_address(value, &transaction_id)
                })?;
            }
            attr::ERROR_CODE => keep_first(&mut self.error_code, || decode_error_code(value))?,
            attr::MAPPED_ADDRESS | attr::UNKNOWN_ATTRIBUTES | attr::REALM | attr::NONCE => {}
            other if attr::is_comprehension_required(other) => {
                self.unknown_required.get_or_insert(other);
            }
            _ => {}
        }
        Ok(())
    }

    /// The whole message as received.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The message class.
    #[inline]
    pub fn class(&self) -> StunClass {
        self.class
    }

    /// The message method.
    #[inline]
    pub fn method(&self) -> StunMethod {
        self.method
    }

    /// Whether this is a Binding request (an ICE connectivity check or consent check).
    #[inline]
    pub fn is_binding_request(&self) -> bool {
        self.method == StunMethod::BINDING && self.class == StunClass::Request
    }

    /// Whether this is a Binding success response.
    #[inline]
    pub fn is_binding_success(&self) -> bool {
        self.method == StunMethod::BINDING && self.class == StunClass::SuccessResponse
    }

    /// Whether this is a Binding error response.
    #[inline]
    pub fn is_binding_error(&self) -> bool {
        self.method == StunMethod::BINDING && self.class == StunClass::ErrorResponse
    }

    /// Whether this is a Binding indication (a keepalive).
    #[inline]
    pub fn is_binding_indication(&self) -> bool {
        self.method == StunMethod::BINDING && self.class == StunClass::Indication
    }

    /// The 96-bit transaction id.
    #[inline]
    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }

    /// The USERNAME value, if present (raw bytes, UTF-8 by the RFC but unchecked).
    #[inline]
    pub fn username(&self) -> Option<&'a [u8]> {
        self.username
    }

    /// The USERNAME value if present and valid UTF-8.
    #[inline]
    pub fn username_str(&self) -> Option<&'a str> {
        self.username.and_then(|u| std::str::from_utf8(u).ok())
    }

    /// The USERNAME split at its first `:` into the two ICE username fragments. In a check
    /// received by relais the first is relais's own ufrag, the second the peer's (RFC 8445
    /// §7.2.2). `None` if there is no USERNAME or it has no `:`.
    #[inline]
    pub fn ice_ufrags(&self) -> Option<(&'a [u8], &'a [u8])> {
        let username = self.username?;
        let colon = username.iter().position(|&b| b == b':')?;
        let (first, colon_and_second) = username.split_at_checked(colon)?;
        Some((first, colon_and_second.get(1..)?))
    }

    /// The SOFTWARE value, if present.
    #[inline]
    pub fn software(&self) -> Option<&'a [u8]> {
        self.software
    }

    /// The PRIORITY value, if present.
    #[inline]
    pub fn priority(&self) -> Option<u32> {
        self.priority
    }

    /// Whether USE-CANDIDATE is present (the controlling agent nominates the pair).
    #[inline]
    pub fn use_candidate(&self) -> bool {
        self.use_candidate
    }

    /// The tie-breaker of ICE-CONTROLLING, if present (the sender claims the controlling role).
    #[inline]
    pub fn ice_controlling(&self) -> Option<u64> {
        self.ice_controlling
    }

    /// The tie-breaker of ICE-CONTROLLED, if present (the sender claims the controlled role).
    #[inline]
    pub fn ice_controlled(&self) -> Option<u64> {
        self.ice_controlled
    }

    /// The decoded XOR-MAPPED-ADDRESS, if present.
    #[inline]
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.xor_mapped_address
    }

    /// The ERROR-CODE, if present.
    #[inline]
    pub fn error_code(&self) -> Option<StunErrorCode<'a>> {
        self.error_code
    }

    /// The first comprehension-required attribute type (below 0x8000) that this module does
    /// not understand, if any. A request with one gets a 420 error response listing it
    /// (RFC 8489 §6.3.1.1).
    #[inline]
    pub fn unknown_comprehension_required(&self) -> Option<u16> {
        self.unknown_required
    }

    /// Whether MESSAGE-INTEGRITY is present.
    #[inline]
    pub fn has_message_integrity(&self) -> bool {
        self.message_integrity.is_some()
    }

    /// Byte offset of the MESSAGE-INTEGRITY attribute header in the message, if present.
    #[inline]
    pub fn message_integrity_offset(&self) -> Option<usize> {
        self.message_integrity
    }

    /// Whether FINGERPRINT is present.
    #[inline]
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Byte offset of the FINGERPRINT attribute header in the message, if present.
    #[inline]
    pub fn fingerprint_offset(&self) -> Option<usize> {
        self.fingerprint
    }

    /// All attributes in wire order.
    #[inline]
    pub fn attributes(&self) -> StunAttributes<'a> {
        StunAttributes {
            rest: self.bytes.get(HEADER_LEN..).unwrap_or_default(),
        }
    }

    /// Verify MESSAGE-INTEGRITY with a short-term credential: `password` is the ICE password
    /// (see the [module docs](super) on why no SASLprep is applied).
    ///
    /// Prefer [`verify_message_integrity_with`](Self::verify_message_integrity_with) with a
    /// [`StunKey`] kept per session.
    pub fn verify_message_integrity(&self, password: &[u8]) -> Result<(), StunError> {
        self.verify_message_integrity_with(&StunKey::new(password))
    }

    /// Verify MESSAGE-INTEGRITY with a prepared key.
    ///
    /// The HMAC covers the message up to MESSAGE-INTEGRITY with the header length rewritten
    /// to end after it (RFC 8489 §14.5); the comparison is constant-time.
    pub fn verify_message_integrity_with(&self, key: &StunKey) -> Result<(), StunError> {
        let offset = self
            .message_integrity
            .ok_or(StunError::MissingMessageIntegrity)?;
        let covered = self.covered(offset, INTEGRITY_LEN)?;
        let computed = key.tag(covered.header, covered.length, covered.body);
        if key.tags_equal(&computed, covered.value) {
            Ok(())
        } else {
            Err(StunError::IntegrityMismatch)
        }
    }

    /// Verify FINGERPRINT: CRC-32 of the message up to FINGERPRINT (header length rewritten to
    /// end after it) XOR 0x5354554E (RFC 8489 §14.7).
    pub fn verify_fingerprint(&self) -> Result<(), StunError> {
        let offset = self.fingerprint.ok_or(StunError::MissingFingerprint)?;
        let covered = self.covered(offset, FINGERPRINT_LEN)?;
        let received = <[u8; FINGERPRINT_LEN]>::try_from(covered.value)
            .map_err(|_| StunError::MissingFingerprint)?;
        let computed = integrity::fingerprint(covered.header, covered.length, covered.body);
        if computed == u32::from_be_bytes(received) {
            Ok(())
        } else {
            Err(StunError::FingerprintMismatch)
        }
    }

    /// Split the message for checking the attribute at `offset` with a `value_len`-byte value.
    ///
    /// `parse` recorded `offset` with the value in bounds, and the message length fits the
    /// 16-bit field, so the errors here are unreachable for a parsed message; they exist so
    /// that not even a logic slip can index out of bounds.
    fn covered(&self, offset: usize, value_len: usize) -> Result<Covered<'a>, StunError> {
        let truncated = StunError::TooShort {
            len: self.bytes.len(),
        };
        let value_start = offset + ATTR_HEADER_LEN;
        let end = value_start + value_len;
        Ok(Covered {
            header: self.bytes.first_chunk::<HEADER_LEN>().ok_or(truncated)?,
            length: end
                .checked_sub(HEADER_LEN)
                .and_then(|length| u16::try_from(length).ok())
                .ok_or(truncated)?,
            body: self.bytes.get(HEADER_LEN..offset).ok_or(truncated)?,
            value: self.bytes.get(value_start..end).ok_or(truncated)?,
        })
    }
}

/// A message split for checking MESSAGE-INTEGRITY or FINGERPRINT.
struct Covered<'a> {
    /// The header as received.
    header: &'a [u8; HEADER_LEN],
    /// The length field as if the checked attribute were the last one.
    length: u16,
    /// Everything between the header and the checked attribute.
    body: &'a [u8],
    /// The checked attribute's value.
    value: &'a [u8],
}

/// Decode into `slot` unless an earlier duplicate already filled it (first occurrence wins,
/// and a malformed later duplicate is ignored rather than failing the message).
fn keep_first<T>(
    slot: &mut Option<T>,
    decode: impl FnOnce() -> Result<T, StunError>,
) -> Result<(), StunError> {
    if slot.is_none() {
        *slot = Some(decode()?);
    }
    Ok(())
}

fn expect_len(attr_type: u16, value: &[u8], len: usize) -> Result<(), StunError> {
    if value.len() == len {
        Ok(())
    } else {
        Err(StunError::BadAttributeLength {
            attr_type,
            len: value.len(),
        })
    }
}

fn expect_array<const N: usize>(attr_type: u16, value: &[u8]) -> Result<[u8; N], StunError> {
    <[u8; N]>::try_from(value).map_err(|_| StunError::BadAttributeLength {
        attr_type,
        len: value.len(),
    })
}

/// Decode XOR-MAPPED-ADDRESS (RFC 8489 §14.2): the port is XORed with the cookie's top 16
/// bits, an IPv4 address with the cookie, an IPv6 address with cookie ‖ transaction id.
fn decode_xor_address(
    value: &[u8],
    transaction_id: &TransactionId,
) -> Result<SocketAddr, StunError> {
    let bad_length = StunError::BadAttributeLength {
        attr_type: attr::XOR_MAPPED_ADDRESS,
        len: value.len(),
    };
    let (head, address) = value.split_first_chunk::<4>().ok_or(bad_length)?;
    let [_, family, p0, p1] = *head;
    let port = u16::from_be_bytes([p0, p1]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match family {
        1 => {
            let address = <[u8; 4]>::try_from(address).map_err(|_| bad_length)?;
            IpAddr::V4(Ipv4Addr::from(u32::from_be_bytes(address) ^ MAGIC_COOKIE))
        }
        2 => {
            let address = <[u8; 16]>::try_from(address).map_err(|_| bad_length)?;
            let key = xor_key_v6(transaction_id);
            IpAddr::V6(Ipv6Addr::from(u128::from_be_bytes(address) ^ key))
        }
        family => return Err(StunError::BadAddressFamily { family }),
    };
    Ok(SocketAddr::new(ip, port))
}

/// The 128-bit XOR key for IPv6 addresses: magic cookie followed by the transaction id.
pub(crate) fn xor_key_v6(transaction_id: &TransactionId) -> u128 {
    let mut key = [0u8; 16];
    let (cookie, tid) = key.split_at_mut(4);
    cookie.copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    tid.copy_from_slice(transaction_id);
    u128::from_be_bytes(key)
}

/// Decode ERROR-CODE: two reserved bytes, the class (hundreds digit) in the low three bits
/// of the third byte, the number (0..99) in the fourth, then the reason phrase.
fn decode_error_code(value: &[u8]) -> Result<StunErrorCode<'_>, StunError> {
    let ([_, _, class, number], reason) =
        value
            .split_first_chunk::<4>()
            .ok_or(StunError::BadAttributeLength {
                attr_type: attr::ERROR_CODE,
                len: value.len(),
            })?;
    let code = u16::from(class & 0x07) * 100 + u16::from(*number);
    Ok(StunErrorCode { code, reason })
}
