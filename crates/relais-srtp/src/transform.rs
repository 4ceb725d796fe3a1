//! Dispatch from a profile to its packet transform, so the contexts stay profile-agnostic.
//! An enum rather than a trait object: no vtable, and the match is predictable on the hot
//! path.
//!
//! GCM's session keys are shared by all SSRCs of a context, so its per-SSRC crypto state
//! is empty. AES-CM goes through webrtc-srtp, whose state lives in one `Context` per SSRC
//! and packet type (see `cm`): that is what [`RtpStream::Cm`] and [`RtcpStream::Cm`] hold,
//! boxed so GCM's per-SSRC entries stay one pointer wide.

use crate::cm::{CmContext, CmRtcp, CmRtp, Spare, FIRST_SRTCP_INDEX};
use crate::gcm::GcmTransform;
use crate::header::RtpHeader;
use crate::{SrtpError, SrtpKey, SrtpProfile};

/// The session keys of one direction, for one profile.
#[allow(
    clippy::large_enum_variant,
    reason = "one per context, and GCM (the fast path) stays inline: no pointer hop per packet"
)]
pub(crate) enum Transform {
    /// The master key (webrtc-srtp derives the session keys per context) and the spare
    /// context first packets of unknown SSRCs are tried on.
    Cm {
        key: SrtpKey,
        spare: Spare,
    },
    Gcm(GcmTransform),
}

/// Per-SSRC crypto state of an SRTP stream.
pub(crate) enum RtpStream {
    Gcm,
    Cm(Box<CmRtp>),
}

/// Per-SSRC crypto state of an SRTCP stream.
pub(crate) enum RtcpStream {
    Gcm,
    Cm(Box<CmRtcp>),
}

impl Transform {
    /// Derives the session keys for `key`'s profile.
    pub(crate) fn new(key: &SrtpKey) -> Result<Self, SrtpError> {
        Ok(match key.profile() {
            SrtpProfile::Aes128CmHmacSha1_80 => {
                // Fail now rather than on the first packet if the crate refuses the key.
                CmContext::new(key)?;
                Self::Cm {
                    key: key.clone(),
                    spare: Spare::default(),
                }
            }
            SrtpProfile::AeadAes128Gcm => {
                Self::Gcm(GcmTransform::new(key.master_key(), key.master_salt())?)
            }
        })
    }

    /// The SRTCP index of an SSRC's first protected packet.
    pub(crate) fn first_srtcp_index(&self) -> u32 {
        match self {
            Self::Cm { .. } => FIRST_SRTCP_INDEX,
            Self::Gcm(_) => 0,
        }
    }

    /// State for an SSRC we start sending.
    pub(crate) fn new_rtp_stream(&self) -> Result<RtpStream, SrtpError> {
        match self {
            Self::Cm { key, .. } => Ok(RtpStream::Cm(Box::new(CmRtp::new(CmContext::new(key)?)))),
            Self::Gcm(_) => Ok(RtpStream::Gcm),
        }
    }

    /// State for an SSRC we start sending RTCP for.
    pub(crate) fn new_rtcp_stream(&self) -> Result<RtcpStream, SrtpError> {
        match self {
            Self::Cm { key, .. } => Ok(RtcpStream::Cm(Box::new(CmRtcp::new(CmContext::new(key)?)))),
            Self::Gcm(_) => Ok(RtcpStream::Gcm),
        }
    }

    /// State to try an unknown SSRC's first received SRTP packet with; give it back with
    /// [`Self::rtp_probe_failed`] if the packet does not authenticate.
    pub(crate) fn rtp_probe(&mut self) -> Result<RtpStream, SrtpError> {
        match self {
            Self::Cm { key, spare } => Ok(RtpStream::Cm(Box::new(CmRtp::new(spare.take(key)?)))),
            Self::Gcm(_) => Ok(RtpStream::Gcm),
        }
    }

    /// State to try an unknown SSRC's first received SRTCP packet with.
    pub(crate) fn rtcp_probe(&mut self) -> Result<RtcpStream, SrtpError> {
        match self {
            Self::Cm { key, spare } => Ok(RtcpStream::Cm(Box::new(CmRtcp::new(spare.take(key)?)))),
            Self::Gcm(_) => Ok(RtcpStream::Gcm),
        }
    }

    pub(crate) fn rtp_probe_failed(&mut self, stream: RtpStream) {
        if let (Self::Cm { spare, .. }, RtpStream::Cm(s)) = (self, stream) {
            if let Some(context) = s.into_fresh_context() {
                spare.failed(context);
            }
        }
    }

    pub(crate) fn rtcp_probe_failed(&mut self, stream: RtcpStream) {
        if let (Self::Cm { spare, .. }, RtcpStream::Cm(s)) = (self, stream) {
            spare.failed(s.into_context());
        }
    }

    pub(crate) fn probe_succeeded(&mut self) {
        if let Self::Cm { spare, .. } = self {
            spare.succeeded();
        }
    }

    /// Protects `buf[..plaintext_len]` in place at packet index `index`; `highest` is the
    /// highest index protected before for the SSRC (`index` for its first packet).
    #[inline]
    pub(crate) fn protect_rtp(
        &self,
        stream: &mut RtpStream,
        buf: &mut [u8],
        header: &RtpHeader,
        plaintext_len: usize,
        index: u64,
        highest: u64,
    ) -> Result<usize, SrtpError> {
        match (self, stream) {
            (Self::Gcm(t), _) => t.protect_rtp(buf, header.len, plaintext_len, header.ssrc, index),
            (Self::Cm { .. }, RtpStream::Cm(s)) => {
                s.protect(buf, header, plaintext_len, index, highest)
            }
            // Streams are only ever made by the context's own transform.
            (Self::Cm { .. }, RtpStream::Gcm) => Err(SrtpError::Crypto),
        }
    }

    /// Verifies and decrypts `packet` in place at packet index `index`; `highest` is the
    /// highest index accepted before for the SSRC (`index` for its first packet).
    #[inline]
    pub(crate) fn unprotect_rtp(
        &self,
        stream: &mut RtpStream,
        packet: &mut [u8],
        header: &RtpHeader,
        index: u64,
        highest: u64,
    ) -> Result<usize, SrtpError> {
        match (self, stream) {
            (Self::Gcm(t), _) => t.unprotect_rtp(packet, header.len, header.ssrc, index),
            (Self::Cm { .. }, RtpStream::Cm(s)) => s.unprotect(packet, header, index, highest),
            (Self::Cm { .. }, RtpStream::Gcm) => Err(SrtpError::Crypto),
        }
    }

    #[inline]
    pub(crate) fn protect_rtcp(
        &self,
        stream: &mut RtcpStream,
        buf: &mut [u8],
        plaintext_len: usize,
        ssrc: u32,
        srtcp_index: u32,
    ) -> Result<usize, SrtpError> {
        match (self, stream) {
            (Self::Gcm(t), _) => t.protect_rtcp(buf, plaintext_len, ssrc, srtcp_index),
            (Self::Cm { .. }, RtcpStream::Cm(s)) => s.protect(buf, plaintext_len, srtcp_index),
            (Self::Cm { .. }, RtcpStream::Gcm) => Err(SrtpError::Crypto),
        }
    }

    /// Verifies and decrypts an SRTCP packet whose trailer word is `word` (E flag set).
    #[inline]
    pub(crate) fn unprotect_rtcp(
        &self,
        stream: &mut RtcpStream,
        packet: &mut [u8],
        ssrc: u32,
        word: u32,
    ) -> Result<usize, SrtpError> {
        match (self, stream) {
            (Self::Gcm(t), _) => t.unprotect_rtcp(packet, ssrc, word),
            (Self::Cm { .. }, RtcpStream::Cm(s)) => s.unprotect(packet),
            (Self::Cm { .. }, RtcpStream::Gcm) => Err(SrtpError::Crypto),
        }
    }
}
