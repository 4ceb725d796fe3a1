//! The one error type of this crate.
//!
//! Every way a packet can be refused has its own variant so callers can count drops by
//! reason ([`SrtpError::reason`] gives a stable label for metrics). Variants are small and
//! `Copy`: building one on the hot path costs nothing and never allocates.

/// Why a header could not be used (the part of [`SrtpError::BadHeader`] callers may want to
/// tell apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The version field is not 2.
    #[error("RTP/RTCP version is {0}, not 2")]
    Version(u8),
    /// The CSRC count points past the end of the packet.
    #[error("CSRC list runs past the end of the packet")]
    CsrcOverrun,
    /// The header extension's length field points past the end of the packet.
    #[error("header extension runs past the end of the packet")]
    ExtensionOverrun,
}

/// Everything that can go wrong keying a context or protecting / unprotecting a packet.
///
/// On an `Err` from an `unprotect_*` call the packet buffer's contents are unspecified
/// (AES-GCM may have decrypted in place before the tag check failed; AES-CM leaves it
/// untouched): drop the packet.
/// `protect_*` calls leave the buffer untouched when they fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// DTLS-exported keying material of the wrong length for the profile.
    #[error("keying material is {actual} bytes, the profile needs {expected}")]
    KeyingMaterialLength {
        /// Length the profile requires ([`crate::SrtpProfile::keying_material_len`]).
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// Master key of the wrong length for the profile.
    #[error("master key is {actual} bytes, the profile needs {expected}")]
    MasterKeyLength {
        /// Length the profile requires.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// Master salt of the wrong length for the profile.
    #[error("master salt is {actual} bytes, the profile needs {expected}")]
    MasterSaltLength {
        /// Length the profile requires.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// A [`crate::SrtpConfig`] value out of range.
    #[error("invalid SRTP configuration: {0}")]
    InvalidConfig(&'static str),
    /// The packet is shorter than its header plus the SRTP/SRTCP trailer.
    #[error("packet of {len} bytes is shorter than the {min} bytes it needs")]
    TooShort {
        /// Packet length.
        len: usize,
        /// Minimum length for this packet's header and the profile's trailer.
        min: usize,
    },
    /// `protect_*`: the buffer has no room for the trailer (or `plaintext_len` exceeds it).
    #[error("buffer of {capacity} bytes cannot hold the {needed} bytes of the protected packet")]
    BufferTooSmall {
        /// Bytes the protected packet needs.
        needed: usize,
        /// Length of the buffer given.
        capacity: usize,
    },
    /// The RTP/RTCP header is malformed.
    #[error("malformed header: {0}")]
    BadHeader(HeaderError),
    /// The authentication tag does not verify: forged, corrupted, or keyed differently
    /// (also what a wrong rollover-counter guess looks like).
    #[error("authentication tag mismatch")]
    AuthFailed,
    /// This packet index was already accepted for this SSRC.
    #[error("replayed packet (SSRC {ssrc:#010x}, index {index})")]
    Replayed {
        /// SSRC of the packet.
        ssrc: u32,
        /// 48-bit SRTP packet index, or 31-bit SRTCP index.
        index: u64,
    },
    /// The packet index is behind the replay window: it cannot be told from a replay.
    #[error("packet too old for the replay window (SSRC {ssrc:#010x}, index {index})")]
    TooOld {
        /// SSRC of the packet.
        ssrc: u32,
        /// 48-bit SRTP packet index, or 31-bit SRTCP index.
        index: u64,
    },
    /// A new SSRC arrived while the context already tracks its maximum number of SSRCs.
    #[error("SSRC limit of {max} reached")]
    TooManySsrcs {
        /// The configured limit ([`crate::SrtpConfig::max_ssrcs`]).
        max: usize,
    },
    /// 2^48 SRTP or 2^31 SRTCP packets were protected for this SSRC under this key
    /// (RFC 3711 §9.2): the session must be rekeyed.
    #[error("packet index space exhausted for SSRC {ssrc:#010x}: rekey")]
    IndexExhausted {
        /// SSRC whose index ran out.
        ssrc: u32,
    },
    /// An SRTCP packet with the E flag clear. DTLS-SRTP profiles always encrypt SRTCP,
    /// so such a packet is refused rather than passed through.
    #[error("SRTCP packet not encrypted (E flag clear)")]
    UnencryptedSrtcp,
    /// The crypto backend refused an operation that cannot fail for valid lengths, or (for
    /// AES-CM) webrtc-srtp returned or would have used something relais did not account
    /// for: a length, an SRTCP index, a rollover counter. Kept as an error rather than a
    /// panic; not expected in practice.
    #[error("crypto backend failure")]
    Crypto,
}

impl SrtpError {
    /// A short, stable, lowercase label for metrics (`"auth_failed"`, `"replayed"`, ...).
    /// It never contains packet data.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::KeyingMaterialLength { .. } => "keying_material_length",
            Self::MasterKeyLength { .. } => "master_key_length",
            Self::MasterSaltLength { .. } => "master_salt_length",
            Self::InvalidConfig(_) => "invalid_config",
            Self::TooShort { .. } => "too_short",
            Self::BufferTooSmall { .. } => "buffer_too_small",
            Self::BadHeader(_) => "bad_header",
            Self::AuthFailed => "auth_failed",
            Self::Replayed { .. } => "replayed",
            Self::TooOld { .. } => "too_old",
            Self::TooManySsrcs { .. } => "too_many_ssrcs",
            Self::IndexExhausted { .. } => "index_exhausted",
            Self::UnencryptedSrtcp => "unencrypted_srtcp",
            Self::Crypto => "crypto",
        }
    }
}
