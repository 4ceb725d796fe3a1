//! VP8 payload descriptor (RFC 7741 §4.2) and the fields an SFU rewrites in it.
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      +-+-+-+-+-+-+-+-+
//!      |X|R|N|S|R| PID | (REQUIRED)
//!      +-+-+-+-+-+-+-+-+
//! X:   |I|L|T|K| RSV   | (OPTIONAL)
//!      +-+-+-+-+-+-+-+-+
//! I:   |M| PictureID   | (OPTIONAL, 7 or 15 bits)
//!      +-+-+-+-+-+-+-+-+
//!      |   PictureID   | (if M)
//!      +-+-+-+-+-+-+-+-+
//! L:   |   TL0PICIDX   | (OPTIONAL)
//!      +-+-+-+-+-+-+-+-+
//! T/K: |TID|Y| KEYIDX  | (OPTIONAL)
//!      +-+-+-+-+-+-+-+-+
//! ```
//!
//! The descriptor is followed by the VP8 payload; when it starts partition 0 (S=1, PID=0)
//! its first byte is the VP8 payload header whose P bit is 0 on key frames (RFC 7741 §4.3).
//! Forwarding one simulcast layer at a time to a receiver means rewriting picture id and
//! TL0PICIDX so they stay continuous across switches: [`rewrite_picture_id`] and
//! [`rewrite_tl0_pic_idx`] do that in place.

use thiserror::Error;

use super::PictureId;

/// Why a payload has no valid VP8 descriptor, or a rewrite was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Vp8Error {
    /// The payload ends inside the descriptor, or right after it (no VP8 data).
    #[error("VP8 payload truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the descriptor announces, plus one byte of VP8 data.
        needed: usize,
        /// Bytes in the payload.
        available: usize,
    },
    /// Picture id rewrite on a descriptor without one (I=0).
    #[error("VP8 descriptor has no picture id")]
    NoPictureId,
    /// TL0PICIDX rewrite on a descriptor without one.
    #[error("VP8 descriptor has no TL0PICIDX")]
    NoTl0PicIdx,
}

/// A parsed VP8 payload descriptor. Small and `Copy`; offsets are into the RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vp8Descriptor {
    /// N: the frame is not used as reference and can be dropped.
    pub non_reference: bool,
    /// S: the payload starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: partition index.
    pub partition_index: u8,
    /// Picture id with its width, when I is set.
    pub picture_id: Option<PictureId>,
    /// Temporal level zero index, when L is set.
    pub tl0_pic_idx: Option<u8>,
    /// Temporal layer index, when T is set.
    pub temporal_id: Option<u8>,
    /// Y: layer sync, the frame depends only on TL0 frames (meaningful with T).
    pub layer_sync: bool,
    /// Temporal key frame index, when K is set.
    pub key_idx: Option<u8>,
    /// Length of the descriptor: the VP8 payload starts at this offset.
    pub len: usize,
    /// The packet starts a key frame: start of partition 0 with P=0 in the VP8 payload
    /// header.
    pub is_keyframe: bool,
}

impl Vp8Descriptor {
    /// Whether the packet starts a frame (S=1 and PID=0): the packet an SFU may switch on.
    #[inline]
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_index == 0
    }
}

/// Where the rewritable fields sit, and the descriptor.
struct Layout {
    descriptor: Vp8Descriptor,
    picture_id_at: usize,
    tl0_pic_idx_at: usize,
}

fn truncated(needed: usize, payload: &[u8]) -> Vp8Error {
    Vp8Error::Truncated {
        needed,
        available: payload.len(),
    }
}

#[inline]
fn layout(payload: &[u8]) -> Result<Layout, Vp8Error> {
    let byte = |at: usize| {
        payload
            .get(at)
            .copied()
            .ok_or_else(|| truncated(at + 1, payload))
    };
    let first = byte(0)?;
    let mut at = 1;
    let (mut has_picture_id, mut has_tl0, mut has_tid, mut has_key_idx) =
        (false, false, false, false);
    if first & 0x80 != 0 {
        let x = byte(at)?;
        at += 1;
        has_picture_id = x & 0x80 != 0;
        has_tl0 = x & 0x40 != 0;
        has_tid = x & 0x20 != 0;
        has_key_idx = x & 0x10 != 0;
    }
    let picture_id_at = at;
    let picture_id = if has_picture_id {
        let high = byte(at)?;
        if high & 0x80 != 0 {
            let low = byte(at + 1)?;
            at += 2;
            Some(PictureId::Bits15(u16::from_be_bytes([high & 0x7F, low])))
        } else {
            at += 1;
            Some(PictureId::Bits7(high))
        }
    } else {
        None
    };
    let tl0_pic_idx_at = at;
    let tl0_pic_idx = if has_tl0 {
        let v = byte(at)?;
        at += 1;
        Some(v)
    } else {
        None
    };
    let (mut temporal_id, mut layer_sync, mut key_idx) = (None, false, None);
    if has_tid || has_key_idx {
        let v = byte(at)?;
        at += 1;
        if has_tid {
            temporal_id = Some(v >> 6);
            layer_sync = v & 0x20 != 0;
        }
        if has_key_idx {
            key_idx = Some(v & 0x1F);
        }
    }
    // A packet with a descriptor and no VP8 data carries nothing to forward.
    let vp8_header = byte(at)?;
    let start_of_partition = first & 0x10 != 0;
    let partition_index = first & 0x07;
    Ok(Layout {
        descriptor: Vp8Descriptor {
            non_reference: first & 0x20 != 0,
            start_of_partition,
            partition_index,
            picture_id,
            tl0_pic_idx,
            temporal_id,
            layer_sync,
            key_idx,
            len: at,
            is_keyframe: start_of_partition && partition_index == 0 && vp8_header & 0x01 == 0,
        },
        picture_id_at,
        tl0_pic_idx_at,
    })
}

/// Parses the VP8 payload descriptor at the start of an RTP payload.
#[inline]
pub fn parse(payload: &[u8]) -> Result<Vp8Descriptor, Vp8Error> {
    layout(payload).map(|l| l.descriptor)
}

/// The frame size a key frame announces: `(width, height)` from the VP8 key frame header
/// (RFC 6386 §9.1: 3-byte frame tag, start code `9d 01 2a`, then 14-bit width and height),
/// which starts the VP8 data of the first packet of a key frame. `None` for any other packet.
///
/// With Jitsi's end-to-end encryption these first 10 bytes of a key frame stay in the clear,
/// so an SFU can read the size of encrypted frames too.
pub fn keyframe_dimensions(payload: &[u8], descriptor: &Vp8Descriptor) -> Option<(u16, u16)> {
    if !descriptor.is_keyframe {
        return None;
    }
    let header = payload.get(descriptor.len..)?.first_chunk::<10>()?;
    if header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([header[6], header[7]]) & 0x3FFF;
    let height = u16::from_le_bytes([header[8], header[9]]) & 0x3FFF;
    Some((width, height))
}

/// Rewrites the picture id in place, keeping its width: `picture_id` is taken modulo 2^7 or
/// 2^15, which is how picture ids wrap anyway.
pub fn rewrite_picture_id(payload: &mut [u8], picture_id: u16) -> Result<(), Vp8Error> {
    let l = layout(payload)?;
    let width = l.descriptor.picture_id.ok_or(Vp8Error::NoPictureId)?;
    super::write_picture_id(payload, l.picture_id_at, width, picture_id);
    Ok(())
}

/// Rewrites TL0PICIDX in place.
pub fn rewrite_tl0_pic_idx(payload: &mut [u8], tl0_pic_idx: u8) -> Result<(), Vp8Error> {
    let l = layout(payload)?;
    if l.descriptor.tl0_pic_idx.is_none() {
        return Err(Vp8Error::NoTl0PicIdx);
    }
    if let Some(b) = payload.get_mut(l.tl0_pic_idx_at) {
        *b = tl0_pic_idx;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_keyframe() {
        // S=1 PID=0, VP8 header with P=0.
        let d = parse(&[0x10, 0x00, 0x9D]).unwrap();
        assert!(d.is_keyframe && d.starts_frame());
        assert_eq!(d.len, 1);
        assert_eq!(d.picture_id, None);
        // P=1: inter frame.
        assert!(!parse(&[0x10, 0x01]).unwrap().is_keyframe);
        // No VP8 data at all.
        assert_eq!(
            parse(&[0x10]),
            Err(Vp8Error::Truncated {
                needed: 2,
                available: 1
            })
        );
    }

    #[test]
    fn rewrite_keeps_width() {
        // X, I+L, M=1 picture id 0x1234, TL0PICIDX 7, data.
        let mut p = [0x90, 0xC0, 0x92, 0x34, 0x07, 0x00];
        rewrite_picture_id(&mut p, 0x8001).unwrap();
        rewrite_tl0_pic_idx(&mut p, 9).unwrap();
        let d = parse(&p).unwrap();
        assert_eq!(d.picture_id, Some(PictureId::Bits15(1)));
        assert_eq!(d.tl0_pic_idx, Some(9));
        let mut short = [0x90, 0x80, 0x05, 0x00];
        rewrite_picture_id(&mut short, 130).unwrap();
        assert_eq!(parse(&short).unwrap().picture_id, Some(PictureId::Bits7(2)));
        assert_eq!(
            rewrite_tl0_pic_idx(&mut short, 1),
            Err(Vp8Error::NoTl0PicIdx)
        );
    }
}
