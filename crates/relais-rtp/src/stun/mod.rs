//! STUN for ICE (RFC 8489, formerly RFC 5389; ICE usage per RFC 8445).
//!
//! This module owns the STUN wire format as relais's ICE agent needs it on the shared media
//! port: parsing binding requests, responses and indications into a zero-copy
//! [`StunMessage`] view, checking MESSAGE-INTEGRITY (short-term credentials, HMAC-SHA1) and
//! FINGERPRINT, and building binding requests, success responses and error responses into a
//! caller-provided buffer with [`StunWriter`]. Nothing here allocates.
//!
//! What it does not own: ICE state (candidates, checks, nomination, consent freshness) lives
//! in the transport crate; this module only answers "what does this datagram say and is it
//! authentic".
//!
//! # Credentials
//!
//! ICE uses STUN short-term credentials: the MESSAGE-INTEGRITY key is the ICE password
//! bytes as they appear in the SDP (`ice-pwd`). RFC 8489 asks for OpaqueString (SASLprep)
//! processing of the password, but `ice-pwd` is restricted by RFC 8839 to `ice-char`
//! (ALPHA / DIGIT / "+" / "/"), on which that processing is the identity, so no
//! normalisation is done. Long-term credentials (TURN) are not supported.
//!
//! # Privacy
//!
//! Error values never carry addresses, usernames or other message contents, so they can be
//! logged and counted without leaking who talked to the node (DESIGN.md principle 4).

mod integrity;
mod message;
mod writer;

pub use integrity::StunKey;
pub use message::{StunAttribute, StunAttributes, StunErrorCode, StunMessage};
pub use writer::StunWriter;

/// The fixed value in bytes 4..8 of every RFC 5389/8489 STUN message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// Length of the STUN message header in bytes.
pub const HEADER_LEN: usize = 20;

/// Length of a STUN transaction id in bytes.
pub const TRANSACTION_ID_LEN: usize = 12;

/// XOR constant of the FINGERPRINT attribute ("STUN" in ASCII).
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// A STUN transaction id: 96 bits chosen by the client, echoed by the server.
pub type TransactionId = [u8; TRANSACTION_ID_LEN];

/// STUN attribute types relais reads or writes (IANA "STUN Attributes" registry).
pub mod attr {
    /// MAPPED-ADDRESS (RFC 8489 §14.1), the pre-RFC 5389 form of XOR-MAPPED-ADDRESS.
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME (RFC 8489 §14.3); in ICE `remote-ufrag:local-ufrag`.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY (RFC 8489 §14.5): HMAC-SHA1, 20 bytes.
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE (RFC 8489 §14.8).
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES (RFC 8489 §14.9).
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    /// REALM (RFC 8489 §14.9), long-term credentials only.
    pub const REALM: u16 = 0x0014;
    /// NONCE (RFC 8489 §14.10), long-term credentials only.
    pub const NONCE: u16 = 0x0015;
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// PASSWORD-ALGORITHM (RFC 8489 §14.12).
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    /// USERHASH (RFC 8489 §14.4).
    pub const USERHASH: u16 = 0x001E;
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2).
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY (RFC 8445 §16.1): the priority of the peer-reflexive candidate.
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (RFC 8445 §16.1): the controlling agent nominates this pair.
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// SOFTWARE (RFC 8489 §14.14).
    pub const SOFTWARE: u16 = 0x8022;
    /// ALTERNATE-SERVER (RFC 8489 §14.15).
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    /// FINGERPRINT (RFC 8489 §14.7): CRC-32 of the message XOR 0x5354554E.
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED (RFC 8445 §16.1) with the 64-bit tie-breaker.
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING (RFC 8445 §16.1) with the 64-bit tie-breaker.
    pub const ICE_CONTROLLING: u16 = 0x802A;
    /// GOOG-NETWORK-INFO, sent by libwebrtc (Chrome) in every binding request.
    pub const GOOG_NETWORK_INFO: u16 = 0xC057;

    /// Whether an agent must understand an attribute of this type to process the message
    /// (types 0x0000..=0x7FFF are "comprehension-required", RFC 8489 §14).
    #[inline]
    pub const fn is_comprehension_required(attr_type: u16) -> bool {
        attr_type < 0x8000
    }
}

/// Common error-code values for ICE (RFC 8489 §14.8, RFC 8445 §7.3.1.1).
pub mod error_code {
    /// 400 Bad Request: malformed, or missing USERNAME / MESSAGE-INTEGRITY.
    pub const BAD_REQUEST: u16 = 400;
    /// 401 Unauthenticated: MESSAGE-INTEGRITY does not verify or USERNAME is unknown.
    pub const UNAUTHENTICATED: u16 = 401;
    /// 420 Unknown Attribute: a comprehension-required attribute was not understood.
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    /// 487 Role Conflict: both agents claim the same ICE role.
    pub const ROLE_CONFLICT: u16 = 487;
    /// 500 Server Error.
    pub const SERVER_ERROR: u16 = 500;
}

/// The class of a STUN message (RFC 8489 §5), two bits interleaved in the message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StunClass {
    /// A request; expects a success or error response.
    Request,
    /// An indication; no response (ICE uses binding indications as keepalives).
    Indication,
    /// A success response to a request.
    SuccessResponse,
    /// An error response to a request; carries ERROR-CODE.
    ErrorResponse,
}

impl StunClass {
    /// The class as its two-bit value (C1 C0).
    #[inline]
    pub const fn bits(self) -> u16 {
        match self {
            StunClass::Request => 0b00,
            StunClass::Indication => 0b01,
            StunClass::SuccessResponse => 0b10,
            StunClass::ErrorResponse => 0b11,
        }
    }

    /// The class from its two-bit value; only the low two bits are looked at.
    #[inline]
    pub const fn from_bits(bits: u16) -> Self {
        match bits & 0b11 {
            0b00 => StunClass::Request,
            0b01 => StunClass::Indication,
            0b10 => StunClass::SuccessResponse,
            _ => StunClass::ErrorResponse,
        }
    }
}

/// A STUN method (12 bits). ICE uses only [`StunMethod::BINDING`]; other methods (TURN's
/// Allocate, Refresh, ...) parse but are the caller's to reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StunMethod(u16);

impl StunMethod {
    /// The Binding method (0x001).
    pub const BINDING: StunMethod = StunMethod(0x001);

    /// A method from its 12-bit number; returns `None` above 0xFFF.
    #[inline]
    pub const fn new(number: u16) -> Option<Self> {
        if number <= 0x0FFF {
            Some(StunMethod(number))
        } else {
            None
        }
    }

    /// The 12-bit method number.
    #[inline]
    pub const fn number(self) -> u16 {
        self.0
    }
}

/// Combine a class and method into the 14-bit STUN message type (RFC 8489 §5, Figure 3):
/// the method bits M11..M0 are split around the class bits C1 (bit 8) and C0 (bit 4).
#[inline]
pub const fn message_type(class: StunClass, method: StunMethod) -> u16 {
    let m = method.0;
    let c = class.bits();
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 0b01) << 4) | ((c & 0b10) << 7)
}

/// Split a 14-bit STUN message type into class and method; the inverse of [`message_type`].
#[inline]
pub const fn split_message_type(message_type: u16) -> (StunClass, StunMethod) {
    let t = message_type & 0x3FFF;
    let class = StunClass::from_bits(((t >> 4) & 0b01) | ((t >> 7) & 0b10));
    let method = (t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80);
    (class, StunMethod(method))
}

/// Why a STUN datagram was rejected or could not be written.
///
/// Variants carry sizes and attribute types only, never message contents or addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Shorter than the 20-byte header.
    #[error("STUN datagram of {len} bytes is shorter than the 20-byte header")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// The two most significant bits of the message type are not zero (not STUN).
    #[error("first two bits of a STUN message must be zero")]
    NotStun,
    /// Bytes 4..8 are not the magic cookie (not STUN, or RFC 3489 which ICE does not use).
    #[error("magic cookie mismatch")]
    BadMagicCookie,
    /// The header's message length is not a multiple of four.
    #[error("STUN message length {declared} is not a multiple of 4")]
    LengthNotAligned {
        /// The length field.
        declared: u16,
    },
    /// The header's message length disagrees with the datagram length.
    #[error("STUN message length {declared} does not match {actual} bytes after the header")]
    LengthMismatch {
        /// The length field.
        declared: u16,
        /// Bytes after the header in the datagram.
        actual: usize,
    },
    /// An attribute header or value runs past the end of the message.
    #[error("STUN attribute 0x{attr_type:04x} runs past the end of the message")]
    AttributeTruncated {
        /// The attribute type (0 if even the type was cut off).
        attr_type: u16,
    },
    /// An attribute has a length its type does not allow.
    #[error("STUN attribute 0x{attr_type:04x} has invalid length {len}")]
    BadAttributeLength {
        /// The attribute type.
        attr_type: u16,
        /// Its value length.
        len: usize,
    },
    /// An address attribute names a family other than IPv4 (1) or IPv6 (2).
    #[error("STUN address family {family} is neither IPv4 nor IPv6")]
    BadAddressFamily {
        /// The family byte.
        family: u8,
    },
    /// An attribute other than FINGERPRINT follows FINGERPRINT (RFC 8489 §14.7).
    #[error("FINGERPRINT is not the last STUN attribute")]
    FingerprintNotLast,
    /// The message has no MESSAGE-INTEGRITY to verify.
    #[error("STUN message has no MESSAGE-INTEGRITY")]
    MissingMessageIntegrity,
    /// MESSAGE-INTEGRITY does not match the key (wrong password or altered message).
    #[error("STUN MESSAGE-INTEGRITY does not verify")]
    IntegrityMismatch,
    /// The message has no FINGERPRINT to verify.
    #[error("STUN message has no FINGERPRINT")]
    MissingFingerprint,
    /// FINGERPRINT does not match the message's CRC-32.
    #[error("STUN FINGERPRINT does not match")]
    FingerprintMismatch,
    /// The output buffer cannot hold what is being written.
    #[error("STUN output buffer too small: need {needed} bytes, have {available}")]
    BufferTooSmall {
        /// Bytes the write needs in total.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// An attribute value is longer than the 16-bit length field or the message allows.
    #[error("STUN attribute 0x{attr_type:04x} value of {len} bytes is too long")]
    ValueTooLong {
        /// The attribute type.
        attr_type: u16,
        /// The value length asked for.
        len: usize,
    },
    /// An attribute was added after MESSAGE-INTEGRITY (only FINGERPRINT may follow it).
    #[error("only FINGERPRINT may follow MESSAGE-INTEGRITY")]
    AttributeAfterIntegrity,
    /// An attribute was added after FINGERPRINT (it must be last).
    #[error("no attribute may follow FINGERPRINT")]
    AttributeAfterFingerprint,
    /// MESSAGE-INTEGRITY or FINGERPRINT was passed as a raw attribute; their values are
    /// computed by the writer's dedicated methods.
    #[error("STUN attribute 0x{attr_type:04x} is computed by the writer, not passed raw")]
    ComputedAttribute {
        /// The attribute type.
        attr_type: u16,
    },
    /// An ERROR-CODE outside 300..=699 (RFC 8489 §14.8).
    #[error("STUN error code {code} is outside 300..=699")]
    InvalidErrorCode {
        /// The code asked for.
        code: u16,
    },
}

/// Cheap check whether a datagram looks like an RFC 5389/8489 STUN message: at least a
/// header, top two bits zero, the magic cookie, and a length field matching the datagram.
///
/// This does not look at attributes; [`StunMessage::parse`] does.
#[inline]
pub fn is_stun(datagram: &[u8]) -> bool {
    header_checks(datagram).is_ok()
}

/// The transaction id of a datagram that passes [`is_stun`], without parsing attributes
/// (e.g. to match a response to an outstanding check before doing any other work).
#[inline]
pub fn transaction_id(datagram: &[u8]) -> Option<TransactionId> {
    header_checks(datagram).ok()?;
    datagram
        .get(8..HEADER_LEN)
        .and_then(|tid| TransactionId::try_from(tid).ok())
}

/// The header checks shared by [`is_stun`] and [`StunMessage::parse`]; returns the declared
/// message length (bytes after the header).
pub(crate) fn header_checks(datagram: &[u8]) -> Result<usize, StunError> {
    let header: &[u8; HEADER_LEN] = datagram.first_chunk().ok_or(StunError::TooShort {
        len: datagram.len(),
    })?;
    let [b0, _, l0, l1, c0, c1, c2, c3, ..] = *header;
    if b0 & 0xC0 != 0 {
        return Err(StunError::NotStun);
    }
    if u32::from_be_bytes([c0, c1, c2, c3]) != MAGIC_COOKIE {
        return Err(StunError::BadMagicCookie);
    }
    let declared = u16::from_be_bytes([l0, l1]);
    if declared % 4 != 0 {
        return Err(StunError::LengthNotAligned { declared });
    }
    let actual = datagram.len() - HEADER_LEN;
    if usize::from(declared) != actual {
        return Err(StunError::LengthMismatch { declared, actual });
    }
    Ok(actual)
}
