//! What a receiver reads from the decrypted payload of the first packet of a frame: whether
//! the frame is a keyframe and, for keyframes, the resolution the sender encoded (VP8
//! keyframe header, H264 SPS). This is what tells a receiver which simulcast layer the node
//! forwards it, so layer switches can be counted without decoding anything.
//!
//! Descriptors are parsed with `relais_rtp`'s codec parsers (the node's own), the SPS with
//! [`parse_sps_dimensions`].

use relais_rtp::codec::{h264, vp8};

use super::h264::parse_sps_dimensions;
use super::VideoCodec;

/// What the first packet of a frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameStart {
    /// Whether the frame is a keyframe.
    pub keyframe: bool,
    /// The keyframe's `(width, height)`, when the packet carries it.
    pub resolution: Option<(u32, u32)>,
}

/// Reads a decrypted RTP payload of `codec`: `Some` when the packet starts a frame, `None`
/// when it continues one (or does not parse).
pub fn frame_start(codec: VideoCodec, payload: &[u8]) -> Option<FrameStart> {
    match codec {
        VideoCodec::Vp8 => {
            let descriptor = vp8::parse(payload).ok()?;
            if !descriptor.starts_frame() {
                return None;
            }
            Some(FrameStart {
                keyframe: descriptor.is_keyframe,
                resolution: vp8::keyframe_dimensions(payload, &descriptor)
                    .map(|(w, h)| (u32::from(w), u32::from(h))),
            })
        }
        VideoCodec::H264 => {
            let descriptor = h264::parse(payload).ok()?;
            let resolution = match descriptor.packet {
                h264::H264Packet::FuA { start: false, .. } => return None,
                h264::H264Packet::StapA { .. } => {
                    h264::stap_a_nal_units(payload).find_map(parse_sps_dimensions)
                }
                h264::H264Packet::Single { .. } => parse_sps_dimensions(payload),
                h264::H264Packet::FuA { .. } => None,
            };
            Some(FrameStart {
                keyframe: descriptor.is_keyframe(),
                resolution,
            })
        }
    }
}
