//! The bytes at the start of a VP8 RTP payload: the RFC 7741 payload descriptor and, on
//! the first packet of a frame, the VP8 frame header (RFC 6386 §9.1).
//!
//! Every packet carries the long descriptor a browser sends for simulcast: X=1 with I (15-bit
//! picture id), L (TL0PICIDX) and T (temporal id 0, Y set on keyframes). The first packet of
//! a frame has S=1 and starts with the 3-byte frame tag; a keyframe's tag is followed by the
//! start code and the 14-bit width and height, which is what an SFU reads to learn a
//! layer's resolution.

/// Length of the descriptor every packet carries: the required byte, the X byte, a 15-bit
/// picture id, TL0PICIDX and the TID/Y/KEYIDX byte.
pub const VP8_DESCRIPTOR_LEN: usize = 6;
/// Length of a keyframe's VP8 header: 3-byte frame tag, 3-byte start code, width, height.
pub const VP8_KEYFRAME_HEADER_LEN: usize = 10;
/// Length of an interframe's VP8 header: the frame tag only.
pub const VP8_INTERFRAME_HEADER_LEN: usize = 3;
/// Longest prefix this module writes.
pub const VP8_MAX_PREFIX_LEN: usize = VP8_DESCRIPTOR_LEN + VP8_KEYFRAME_HEADER_LEN;

/// The keyframe start code (RFC 6386 §9.1).
const START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];
/// Largest first-partition size the 19-bit frame-tag field holds.
const MAX_FIRST_PARTITION: u32 = (1 << 19) - 1;

/// What the descriptor and frame header of one packet say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Vp8PacketHeader {
    /// 15-bit picture id of the frame.
    pub picture_id: u16,
    /// TL0PICIDX of the frame.
    pub tl0_pic_idx: u8,
    /// Whether the frame is a keyframe.
    pub keyframe: bool,
    /// Whether this packet is the frame's first (S=1, frame header follows).
    pub first_packet: bool,
    /// The frame's VP8 data size, for the frame tag's first-partition size.
    pub frame_bytes: u32,
    /// The layer's resolution, written into keyframe headers.
    pub width: u16,
    /// See `width`.
    pub height: u16,
}

impl Vp8PacketHeader {
    /// Writes the prefix into `out` and returns its length.
    pub fn write(&self, out: &mut [u8; VP8_MAX_PREFIX_LEN]) -> usize {
        let [pid_high, pid_low] = (self.picture_id & 0x7FFF).to_be_bytes();
        let descriptor = [
            // X=1, S on the first packet, PartID 0.
            0x80 | if self.first_packet { 0x10 } else { 0 },
            // I, L, T present; K absent.
            0xE0,
            // M=1: 15-bit picture id.
            0x80 | pid_high,
            pid_low,
            self.tl0_pic_idx,
            // TID 0, Y (layer sync) on keyframes, KEYIDX 0.
            if self.keyframe { 0x20 } else { 0 },
        ];
        let (head, tail) = out.split_at_mut(VP8_DESCRIPTOR_LEN);
        head.copy_from_slice(&descriptor);
        if !self.first_packet {
            return VP8_DESCRIPTOR_LEN;
        }
        // Frame tag, little-endian: P (0 = keyframe), version 0, show_frame 1 and the
        // first partition's size, which real encoders make a small share of the frame.
        let first_partition = (self.frame_bytes / 8).clamp(1, MAX_FIRST_PARTITION);
        let tag = (first_partition << 5) | (1 << 4) | u32::from(!self.keyframe);
        let [t0, t1, t2, _] = tag.to_le_bytes();
        if !self.keyframe {
            if let Some(dst) = tail.first_chunk_mut::<VP8_INTERFRAME_HEADER_LEN>() {
                *dst = [t0, t1, t2];
            }
            return VP8_DESCRIPTOR_LEN + VP8_INTERFRAME_HEADER_LEN;
        }
        // Horizontal and vertical scale (top 2 bits) stay 0.
        let [w0, w1] = (self.width & 0x3FFF).to_le_bytes();
        let [h0, h1] = (self.height & 0x3FFF).to_le_bytes();
        let [s0, s1, s2] = START_CODE;
        if let Some(dst) = tail.first_chunk_mut::<VP8_KEYFRAME_HEADER_LEN>() {
            *dst = [t0, t1, t2, s0, s1, s2, w0, w1, h0, h1];
        }
        VP8_MAX_PREFIX_LEN
    }
}
