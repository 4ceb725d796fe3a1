//! Codec payload descriptors: what an SFU reads (and, for VP8/VP9, rewrites) at the start
//! of an RTP payload to select layers and switch on key frames.
//!
//! Each codec module parses a payload into a small `Copy` struct with its own typed error,
//! without allocating; VP8 and VP9 also rewrite picture id and TL0PICIDX in place. This
//! module holds what they share ([`PictureId`]) and a codec-independent entry point
//! ([`VideoCodec::is_keyframe`]) for code that only needs that answer.

pub mod av1;
pub mod h264;
pub mod opus;
pub mod vp8;
pub mod vp9;

use thiserror::Error;

/// A VP8 or VP9 picture id with the width it was sent with. An SFU rewriting picture ids
/// must keep the width: it cannot grow the descriptor in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PictureId {
    /// M=0: 7-bit picture id.
    Bits7(u8),
    /// M=1: 15-bit picture id.
    Bits15(u16),
}

impl PictureId {
    /// The picture id's value.
    #[inline]
    pub fn value(self) -> u16 {
        match self {
            Self::Bits7(v) => u16::from(v),
            Self::Bits15(v) => v,
        }
    }

    /// The modulus picture ids of this width wrap at (2^7 or 2^15).
    #[inline]
    pub fn modulus(self) -> u16 {
        match self {
            Self::Bits7(_) => 1 << 7,
            Self::Bits15(_) => 1 << 15,
        }
    }

    /// `value` in this width, reduced modulo [`modulus`](Self::modulus).
    #[inline]
    pub fn with_value(self, value: u16) -> Self {
        match self {
            Self::Bits7(_) => Self::Bits7((value & 0x7F) as u8),
            Self::Bits15(_) => Self::Bits15(value & 0x7FFF),
        }
    }
}

/// Writes `value` as a picture id of `width`'s width at `at` (the M byte). Callers have
/// parsed the descriptor, so the bytes are there; a short buffer is left unchanged.
fn write_picture_id(payload: &mut [u8], at: usize, width: PictureId, value: u16) {
    match width.with_value(value) {
        PictureId::Bits7(v) => {
            if let Some(b) = payload.get_mut(at) {
                *b = v;
            }
        }
        PictureId::Bits15(v) => {
            if let Some(b) = payload
                .get_mut(at..)
                .and_then(|rest| rest.first_chunk_mut::<2>())
            {
                *b = (v | 0x8000).to_be_bytes();
            }
        }
    }
}

/// Any codec module's error.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// See [`vp8::Vp8Error`].
    #[error(transparent)]
    Vp8(#[from] vp8::Vp8Error),
    /// See [`vp9::Vp9Error`].
    #[error(transparent)]
    Vp9(#[from] vp9::Vp9Error),
    /// See [`h264::H264Error`].
    #[error(transparent)]
    H264(#[from] h264::H264Error),
}

/// The video codecs relais forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// RFC 7741.
    Vp8,
    /// RFC 9628.
    Vp9,
    /// RFC 6184.
    H264,
}

impl VideoCodec {
    /// Whether `payload` starts a key frame, by the codec's rule (see
    /// [`vp8::Vp8Descriptor::is_keyframe`], [`vp9::Vp9Descriptor::is_keyframe`],
    /// [`h264::H264Descriptor::is_keyframe`]).
    pub fn is_keyframe(self, payload: &[u8]) -> Result<bool, CodecError> {
        Ok(match self {
            Self::Vp8 => vp8::parse(payload)?.is_keyframe,
            Self::Vp9 => vp9::parse(payload)?.is_keyframe(),
            Self::H264 => h264::parse(payload)?.is_keyframe(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picture_id_wraps_in_its_width() {
        assert_eq!(PictureId::Bits7(5).with_value(128 + 3), PictureId::Bits7(3));
        assert_eq!(
            PictureId::Bits15(5).with_value(0x8003),
            PictureId::Bits15(3)
        );
        assert_eq!(PictureId::Bits15(0).modulus(), 0x8000);
        let mut p = [0u8; 2];
        write_picture_id(&mut p, 0, PictureId::Bits15(0), 0x1234);
        assert_eq!(p, [0x92, 0x34]);
    }

    #[test]
    fn dispatch() {
        assert!(VideoCodec::Vp8.is_keyframe(&[0x10, 0x00]).unwrap());
        assert!(VideoCodec::Vp9.is_keyframe(&[0x08]).unwrap());
        assert!(VideoCodec::H264.is_keyframe(&[0x65, 0x88]).unwrap());
        assert!(VideoCodec::H264.is_keyframe(&[0x7C]).is_err());
    }
}
