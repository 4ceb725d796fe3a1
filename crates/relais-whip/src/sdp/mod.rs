//! SDP offer/answer for one BUNDLE transport, as WHIP (RFC 9725) and WHEP need it.
//!
//! - [`parse`] reads an offer (or an answer) into a typed [`SessionDescription`]. It accepts
//!   what real browsers and libraries send (Chromium, Firefox, GStreamer webrtcbin, aiortc):
//!   LF-only line endings, unknown attributes (kept raw in `other_attributes`), unknown line
//!   types (ignored). Syntax errors in the attributes it does understand are reported with
//!   the 1-based line number and what is wrong, since the HTTP layer turns them into 400
//!   responses. Input is capped ([`MAX_SDP_BYTES`], [`MAX_LINES`], [`MAX_LINE_LENGTH`],
//!   [`MAX_MEDIA_SECTIONS`]) so that memory is bounded; the parser never panics.
//! - `SessionDescription`'s `Display` writes SDP with CRLF line endings; writing then parsing
//!   gives back the same model.
//! - [`answer`] builds the node's answer to an offer from the node's configuration
//!   ([`AnswerParams`], [`CodecConfig`]): BUNDLE, rtcp-mux, ICE-lite credentials and host
//!   candidates, DTLS fingerprint and setup role, codec and header-extension intersection,
//!   simulcast with `rid` (RFC 8853), and the node's SSRCs when it sends (WHEP).
//!
//! The codecs of an answer come from the node's configuration, not from another
//! participant's offer, so a viewer who arrives before the publisher can be answered.

mod answer;
mod model;
mod parse;
mod write;

use thiserror::Error;

pub use answer::{
    answer, h264_profile, host_candidate_priority, host_candidates, AnswerParams, CodecConfig,
    CodecSpec, H264Profile, SendStream, DEFAULT_EXTENSIONS,
};
pub use model::{
    Attribute, Candidate, CandidateType, Codec, Direction, Extmap, Fingerprint, Fmtp, FmtpParam,
    MediaKind, MediaSection, Msid, Origin, Rid, RidDirection, RtcpFb, SessionDescription, Setup,
    Simulcast, SimulcastRid, Ssrc, SsrcGroup,
};
pub use parse::parse;

/// Largest SDP accepted, in bytes.
pub const MAX_SDP_BYTES: usize = 256 * 1024;
/// Most lines accepted in one SDP.
pub const MAX_LINES: usize = 8192;
/// Longest line accepted, in bytes (without the line ending).
pub const MAX_LINE_LENGTH: usize = 4096;
/// Most `m=` sections accepted in one SDP.
pub const MAX_MEDIA_SECTIONS: usize = 64;

/// Why an SDP could not be parsed or answered. Every variant names what is wrong (and the
/// line, for syntax errors) so it can be returned to the client as a 400 body.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The SDP is larger than [`MAX_SDP_BYTES`].
    #[error("SDP is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// The SDP has more than [`MAX_LINES`] lines.
    #[error("SDP has more than {max} lines")]
    TooManyLines {
        /// The cap.
        max: usize,
    },
    /// A line is longer than [`MAX_LINE_LENGTH`].
    #[error("line {line}: longer than {max} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
        /// The cap.
        max: usize,
    },
    /// More than [`MAX_MEDIA_SECTIONS`] `m=` sections.
    #[error("line {line}: more than {max} m= sections")]
    TooManyMediaSections {
        /// 1-based line number of the first `m=` line over the cap.
        line: usize,
        /// The cap.
        max: usize,
    },
    /// A line the parser understands is malformed.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong, e.g. `a=rtpmap: payload type 'x' is not a number`.
        message: String,
    },
    /// A line every SDP must have is absent.
    #[error("SDP has no {0} line")]
    MissingLine(&'static str),
    /// An m-line the answer would accept lacks an attribute the node requires.
    #[error("m-line {index} (mid {mid}): {attribute} is missing")]
    MissingAttribute {
        /// 0-based index of the m-line.
        index: usize,
        /// Its mid (empty when it has none).
        mid: String,
        /// The attribute, e.g. `a=rtcp-mux`.
        attribute: &'static str,
    },
    /// A value given outside an SDP line (e.g. a configured fingerprint) is malformed.
    #[error("invalid {what}: '{value}'")]
    InvalidValue {
        /// What was being parsed.
        what: &'static str,
        /// The value (truncated).
        value: String,
    },
    /// The offer cannot be answered by this node; the message says why.
    #[error("offer not acceptable: {0}")]
    Unacceptable(String),
}

/// At most 64 characters of `s`, for error messages (bounded size, char-boundary safe).
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}
