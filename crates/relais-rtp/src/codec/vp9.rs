//! VP9 payload descriptor (RFC 9628 §4.2): layer indices, references and the scalability
//! structure an SFU needs to pick spatial and temporal layers.
//!
//! ```text
//!       0 1 2 3 4 5 6 7
//!      +-+-+-+-+-+-+-+-+
//!      |I|P|L|F|B|E|V|Z| (REQUIRED)
//!      +-+-+-+-+-+-+-+-+
//! I:   |M| PICTURE ID  | (REQUIRED in RFC 9628, 7 or 15 bits)
//!      +-+-+-+-+-+-+-+-+
//! M:   | EXTENDED PID  |
//!      +-+-+-+-+-+-+-+-+
//! L:   |  TID  |U| SID |D| (layer indices; TL0PICIDX follows in non-flexible mode)
//!      +-+-+-+-+-+-+-+-+
//!      |   TL0PICIDX   |
//!      +-+-+-+-+-+-+-+-+
//! P,F: | P_DIFF      |N| (flexible mode, up to 3 times)
//!      +-+-+-+-+-+-+-+-+
//! V:   | SS            | (scalability structure)
//!      +-+-+-+-+-+-+-+-+
//! ```
//!
//! The scalability structure is parsed to find its end and to expose the number of spatial
//! layers and their resolutions (at most 8, stored inline); its picture-group description
//! is skipped, only its length kept.

use thiserror::Error;

use super::PictureId;

/// Most spatial layers the 3-bit N_S field can describe.
pub const MAX_SPATIAL_LAYERS: usize = 8;
/// Most P_DIFF references a flexible-mode descriptor can carry.
pub const MAX_REFERENCES: usize = 3;

/// Why a payload has no valid VP9 descriptor, or a rewrite was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Vp9Error {
    /// The payload ends inside the descriptor.
    #[error("VP9 payload truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the descriptor announces.
        needed: usize,
        /// Bytes in the payload.
        available: usize,
    },
    /// The third P_DIFF announces a fourth (N=1).
    #[error("VP9 descriptor announces more than 3 reference indices")]
    TooManyReferences,
    /// Picture id rewrite on a descriptor without one (I=0).
    #[error("VP9 descriptor has no picture id")]
    NoPictureId,
    /// TL0PICIDX rewrite on a descriptor without one.
    #[error("VP9 descriptor has no TL0PICIDX")]
    NoTl0PicIdx,
}

/// The layer indices byte (L bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vp9Layer {
    /// TID: temporal layer.
    pub temporal_id: u8,
    /// U: switching up point; from this frame on, frames of this temporal layer depend on
    /// no earlier frame of the same or a higher temporal layer.
    pub switching_up: bool,
    /// SID: spatial layer.
    pub spatial_id: u8,
    /// D: this frame depends on the lower spatial layer of the same picture.
    pub inter_layer_dependency: bool,
}

/// The scalability structure (V bit), as far as an SFU needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vp9Scalability {
    /// N_S + 1: the number of spatial layers in the stream.
    pub spatial_layers: u8,
    /// `(width, height)` per spatial layer; meaningful for the first `spatial_layers`
    /// entries when `has_resolutions` (the Y bit).
    resolutions: [(u16, u16); MAX_SPATIAL_LAYERS],
    /// Y: resolutions are present.
    pub has_resolutions: bool,
    /// N_G, the number of pictures in the picture group, when G is set.
    pub picture_group_len: Option<u8>,
}

impl Vp9Scalability {
    /// `(width, height)` of spatial layer `spatial_id`, if the structure carries it.
    #[inline]
    pub fn resolution(&self, spatial_id: u8) -> Option<(u16, u16)> {
        if !self.has_resolutions || spatial_id >= self.spatial_layers {
            return None;
        }
        self.resolutions.get(usize::from(spatial_id)).copied()
    }
}

/// A parsed VP9 payload descriptor. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vp9Descriptor {
    /// Picture id with its width, when I is set.
    pub picture_id: Option<PictureId>,
    /// P: the frame uses inter-picture prediction (refers to an earlier picture).
    pub inter_picture_predicted: bool,
    /// F: flexible mode (references as P_DIFF rather than a picture group).
    pub flexible_mode: bool,
    /// B: the packet starts a layer frame.
    pub start_of_frame: bool,
    /// E: the packet ends a layer frame.
    pub end_of_frame: bool,
    /// Z: the frame is not used by the next higher spatial layer.
    pub not_upper_reference: bool,
    /// Layer indices, when L is set.
    pub layer: Option<Vp9Layer>,
    /// TL0PICIDX, present with L in non-flexible mode.
    pub tl0_pic_idx: Option<u8>,
    p_diffs: [u8; MAX_REFERENCES],
    p_diff_count: u8,
    /// Scalability structure, when V is set.
    pub scalability: Option<Vp9Scalability>,
    /// Length of the descriptor: the VP9 frame data starts at this offset.
    pub len: usize,
}

impl Vp9Descriptor {
    /// Spatial layer (SID), 0 without layer indices.
    #[inline]
    pub fn spatial_id(&self) -> u8 {
        self.layer.map_or(0, |l| l.spatial_id)
    }

    /// Temporal layer (TID), 0 without layer indices.
    #[inline]
    pub fn temporal_id(&self) -> u8 {
        self.layer.map_or(0, |l| l.temporal_id)
    }

    /// The P_DIFF reference indices (flexible mode with P), in order.
    #[inline]
    pub fn p_diffs(&self) -> &[u8] {
        self.p_diffs
            .get(..usize::from(self.p_diff_count))
            .unwrap_or(&[])
    }

    /// Whether the packet starts a key frame: the first packet (B) of the base spatial
    /// layer (SID 0) of a picture that refers to no earlier picture (P=0). This is the
    /// rule libwebrtc's VP9 depacketizer uses.
    #[inline]
    pub fn is_keyframe(&self) -> bool {
        !self.inter_picture_predicted && self.start_of_frame && self.spatial_id() == 0
    }

    /// Whether a receiver may start getting this frame's temporal layer here (U bit), given
    /// it already gets the lower temporal layers.
    #[inline]
    pub fn is_temporal_switch_up_point(&self) -> bool {
        self.layer.is_some_and(|l| l.switching_up)
    }

    /// Whether a receiver may start getting this frame's spatial layer here: the first
    /// packet of a layer frame that refers to no earlier picture (P=0), only to lower
    /// spatial layers of the same picture, which the receiver already gets. On SID 0 this is
    /// a key frame. (With K-SVC, libwebrtc's default for screen and camera SVC, upper layers
    /// have such frames only in key pictures.)
    #[inline]
    pub fn is_spatial_switch_up_point(&self) -> bool {
        !self.inter_picture_predicted && self.start_of_frame
    }

    /// Whether a receiver of up to `spatial_id` / `temporal_id` can switch up to this
    /// packet's layers here: a key frame, or a switch point of every dimension that goes up.
    pub fn is_layer_switch_point(&self, spatial_id: u8, temporal_id: u8) -> bool {
        if self.is_keyframe() {
            return true;
        }
        let spatial_ok = self.spatial_id() <= spatial_id || self.is_spatial_switch_up_point();
        let temporal_ok = self.temporal_id() <= temporal_id || self.is_temporal_switch_up_point();
        spatial_ok && temporal_ok
    }
}

/// Where the rewritable fields sit, and the descriptor.
struct Layout {
    descriptor: Vp9Descriptor,
    picture_id_at: usize,
    tl0_pic_idx_at: usize,
}

struct Reader<'a> {
    payload: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    #[inline]
    fn u8(&mut self) -> Result<u8, Vp9Error> {
        let v = self
            .payload
            .get(self.at)
            .copied()
            .ok_or(Vp9Error::Truncated {
                needed: self.at + 1,
                available: self.payload.len(),
            })?;
        self.at += 1;
        Ok(v)
    }

    #[inline]
    fn u16(&mut self) -> Result<u16, Vp9Error> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    #[inline]
    fn skip(&mut self, n: usize) -> Result<(), Vp9Error> {
        if self.payload.len() < self.at + n {
            return Err(Vp9Error::Truncated {
                needed: self.at + n,
                available: self.payload.len(),
            });
        }
        self.at += n;
        Ok(())
    }
}

fn scalability(r: &mut Reader<'_>) -> Result<Vp9Scalability, Vp9Error> {
    let b = r.u8()?;
    let spatial_layers = (b >> 5) + 1;
    let has_resolutions = b & 0x10 != 0;
    let has_picture_group = b & 0x08 != 0;
    let mut resolutions = [(0, 0); MAX_SPATIAL_LAYERS];
    if has_resolutions {
        for slot in resolutions.iter_mut().take(usize::from(spatial_layers)) {
            *slot = (r.u16()?, r.u16()?);
        }
    }
    let picture_group_len = if has_picture_group {
        let n_g = r.u8()?;
        for _ in 0..n_g {
            // |  T  |U| R |-|-|, then R one-byte P_DIFFs.
            let entry = r.u8()?;
            r.skip(usize::from((entry >> 2) & 0x03))?;
        }
        Some(n_g)
    } else {
        None
    };
    Ok(Vp9Scalability {
        spatial_layers,
        resolutions,
        has_resolutions,
        picture_group_len,
    })
}

fn layout(payload: &[u8]) -> Result<Layout, Vp9Error> {
    let mut r = Reader { payload, at: 0 };
    let first = r.u8()?;
    let has_picture_id = first & 0x80 != 0;
    let inter_picture_predicted = first & 0x40 != 0;
    let has_layer = first & 0x20 != 0;
    let flexible_mode = first & 0x10 != 0;
    let picture_id_at = r.at;
    let picture_id = if has_picture_id {
        let high = r.u8()?;
        if high & 0x80 != 0 {
            Some(PictureId::Bits15(u16::from_be_bytes([
                high & 0x7F,
                r.u8()?,
            ])))
        } else {
            Some(PictureId::Bits7(high))
        }
    } else {
        None
    };
    let mut tl0_pic_idx = None;
    let mut tl0_pic_idx_at = 0;
    let layer = if has_layer {
        let b = r.u8()?;
        if !flexible_mode {
            tl0_pic_idx_at = r.at;
            tl0_pic_idx = Some(r.u8()?);
        }
        Some(Vp9Layer {
            temporal_id: b >> 5,
            switching_up: b & 0x10 != 0,
            spatial_id: (b >> 1) & 0x07,
            inter_layer_dependency: b & 0x01 != 0,
        })
    } else {
        None
    };
    let mut p_diffs = [0; MAX_REFERENCES];
    let mut p_diff_count = 0;
    if flexible_mode && inter_picture_predicted {
        for (i, slot) in p_diffs.iter_mut().enumerate() {
            let b = r.u8()?;
            *slot = b >> 1;
            p_diff_count += 1;
            if b & 0x01 == 0 {
                break;
            }
            if i + 1 == MAX_REFERENCES {
                return Err(Vp9Error::TooManyReferences);
            }
        }
    }
    let scalability = if first & 0x02 != 0 {
        Some(scalability(&mut r)?)
    } else {
        None
    };
    Ok(Layout {
        descriptor: Vp9Descriptor {
            picture_id,
            inter_picture_predicted,
            flexible_mode,
            start_of_frame: first & 0x08 != 0,
            end_of_frame: first & 0x04 != 0,
            not_upper_reference: first & 0x01 != 0,
            layer,
            tl0_pic_idx,
            p_diffs,
            p_diff_count,
            scalability,
            len: r.at,
        },
        picture_id_at,
        tl0_pic_idx_at,
    })
}

/// Parses the VP9 payload descriptor at the start of an RTP payload.
#[inline]
pub fn parse(payload: &[u8]) -> Result<Vp9Descriptor, Vp9Error> {
    layout(payload).map(|l| l.descriptor)
}

/// Rewrites the picture id in place, keeping its width (`picture_id` modulo 2^7 or 2^15).
pub fn rewrite_picture_id(payload: &mut [u8], picture_id: u16) -> Result<(), Vp9Error> {
    let l = layout(payload)?;
    let width = l.descriptor.picture_id.ok_or(Vp9Error::NoPictureId)?;
    super::write_picture_id(payload, l.picture_id_at, width, picture_id);
    Ok(())
}

/// Rewrites TL0PICIDX in place (non-flexible mode only).
pub fn rewrite_tl0_pic_idx(payload: &mut [u8], tl0_pic_idx: u8) -> Result<(), Vp9Error> {
    let l = layout(payload)?;
    if l.descriptor.tl0_pic_idx.is_none() {
        return Err(Vp9Error::NoTl0PicIdx);
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
    fn three_references_then_n_is_an_error() {
        // I=0 P=1 F=1 B=1: three P_DIFFs, the last with N=0.
        let ok = parse(&[0x58, 0x03, 0x05, 0x06, 0xAA]).unwrap();
        assert_eq!(ok.p_diffs(), &[1, 2, 3]);
        assert_eq!(ok.len, 4);
        assert_eq!(
            parse(&[0x58, 0x03, 0x05, 0x07, 0xAA]),
            Err(Vp9Error::TooManyReferences)
        );
    }

    #[test]
    fn switch_points() {
        // L set, non-flexible: TID 1, U=1, SID 0, TL0PICIDX 4; P=1.
        let d = parse(&[0x68, 0x30, 0x04]).unwrap();
        assert!(!d.is_keyframe());
        assert!(d.is_temporal_switch_up_point());
        assert!(d.is_layer_switch_point(0, 0));
        // TID 2 without U: not a switch point for a TID 1 receiver.
        let d = parse(&[0x68, 0x40, 0x04]).unwrap();
        assert!(!d.is_layer_switch_point(0, 1));
        assert!(d.is_layer_switch_point(0, 2));
    }
}
