//! The bytes at the start of an H.264 RTP payload in packetization mode 1 (RFC 6184), and
//! the sequence parameter set that tells a receiver (or an SFU) a layer's resolution.
//!
//! A frame is one coded slice NAL unit: an IDR slice (type 5) on keyframes, a non-IDR slice
//! (type 1) otherwise. A NAL unit that fits the MTU budget goes out as a single NAL unit
//! packet; a larger one is split into FU-A fragments (type 28) whose sizes differ by at most
//! a byte, as libwebrtc's packetiser does. A keyframe is preceded, as Chrome sends it, by a
//! STAP-A (type 24) carrying the SPS and the PPS, so the first packet of a keyframe is the
//! one that says the resolution.
//!
//! The SPS is a real constrained-baseline SPS (`profile-level-id=42e01f`): its
//! `pic_width_in_mbs_minus1`, `pic_height_in_map_units_minus1` and frame cropping give the
//! layer's width and height, written with exp-Golomb codes and emulation prevention.
//! [`parse_sps_dimensions`] reads them back; the receive side uses it on decrypted first
//! packets of keyframes. Slice headers carry their first fields for realism; the rest of a
//! NAL unit is the payload's filler.

use relais_rtp::codec::h264::{NAL_FU_A, NAL_IDR, NAL_PPS, NAL_SPS, NAL_STAP_A};

/// Longest prefix this module writes: a STAP-A with the largest SPS (16 bytes of RBSP for
/// 16383×16383, plus emulation prevention) and a 4-byte PPS.
pub const H264_MAX_PREFIX_LEN: usize = 30;
/// Bytes of a FU-A packet before the fragment's data: the FU indicator and FU header.
pub const FU_A_HEADER_LEN: usize = 2;
/// `profile_idc` of the baseline profile.
const PROFILE_BASELINE: u8 = 66;
/// `constraint_set0_flag` and `constraint_set1_flag`: constrained baseline (the `e0` of
/// `42e01f`).
const CONSTRAINED_BASELINE_FLAGS: u8 = 0xE0;
/// `level_idc` 3.1 (the `1f` of `42e01f`).
const LEVEL_3_1: u8 = 31;
/// Type of a coded slice of a non-IDR picture.
const NAL_NON_IDR: u8 = 1;
/// `nal_ref_idc` of reference pictures and parameter sets (the two NRI bits, highest).
const NRI_REFERENCE: u8 = 0x60;
/// `slice_type` of an I slice when all slices of the picture share it.
const SLICE_TYPE_I_ALL: u32 = 7;
/// `slice_type` of a P slice when all slices of the picture share it.
const SLICE_TYPE_P_ALL: u32 = 5;
/// `log2_max_frame_num_minus4` of the SPS: frame_num has 4 bits.
const FRAME_NUM_BITS: u32 = 4;
/// Longest SPS or slice-header RBSP written, before emulation prevention.
const MAX_RBSP: usize = 24;
/// Luma samples per macroblock side.
const MB_SIZE: u32 = 16;
/// Frame cropping is in units of 2 luma samples in 4:2:0 progressive video.
const CROP_UNIT: u32 = 2;

/// Writes bits most significant first into a fixed buffer: RBSP syntax (u(n), ue(v), se(v))
/// without allocating. Bits past the buffer are dropped and reported by [`BitWriter::finish`].
struct BitWriter {
    bytes: [u8; MAX_RBSP],
    bit: usize,
    overflow: bool,
}

impl BitWriter {
    fn new() -> Self {
        Self {
            bytes: [0; MAX_RBSP],
            bit: 0,
            overflow: false,
        }
    }

    fn bit(&mut self, value: bool) {
        match self.bytes.get_mut(self.bit / 8) {
            Some(byte) => *byte |= u8::from(value) << (7 - self.bit % 8),
            None => self.overflow = true,
        }
        self.bit += 1;
    }

    /// u(n): the low `count` bits of `value`.
    fn bits(&mut self, value: u32, count: u32) {
        for shift in (0..count).rev() {
            self.bit((value >> shift) & 1 == 1);
        }
    }

    /// ue(v): exp-Golomb, `value + 1` in binary after as many zeros as it has bits less one.
    fn ue(&mut self, value: u32) {
        let coded = u64::from(value) + 1;
        let bits = 64 - coded.leading_zeros();
        for _ in 1..bits {
            self.bit(false);
        }
        for shift in (0..bits).rev() {
            self.bit((coded >> shift) & 1 == 1);
        }
    }

    /// se(v): 0, 1, −1, 2, −2, … mapped to ue 0, 1, 2, 3, 4, ….
    fn se(&mut self, value: i32) {
        let mapped = if value > 0 {
            value.unsigned_abs() * 2 - 1
        } else {
            value.unsigned_abs() * 2
        };
        self.ue(mapped);
    }

    /// rbsp_trailing_bits: a one, then zeros to the byte boundary.
    fn trailing_bits(&mut self) {
        self.bit(true);
        while self.bit % 8 != 0 {
            self.bit(false);
        }
    }

    /// The bytes written (whole bytes; a partial last byte is zero-padded), or `None` if
    /// they did not fit.
    fn finish(&self) -> Option<&[u8]> {
        if self.overflow {
            return None;
        }
        self.bytes.get(..self.bit.div_ceil(8))
    }
}

/// Reads RBSP bits most significant first; `None` past the end.
struct BitReader<'a> {
    bytes: &'a [u8],
    bit: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let byte = self.bytes.get(self.bit / 8)?;
        let value = (byte >> (7 - self.bit % 8)) & 1 == 1;
        self.bit += 1;
        Some(value)
    }

    fn bits(&mut self, count: u32) -> Option<u32> {
        (0..count).try_fold(0u32, |acc, _| Some((acc << 1) | u32::from(self.bit()?)))
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        let value = (1u64 << zeros) - 1 + u64::from(rest);
        u32::try_from(value).ok()
    }

    fn se(&mut self) -> Option<i64> {
        let mapped = i64::from(self.ue()?);
        Some(if mapped % 2 == 1 {
            (mapped + 1) / 2
        } else {
            -mapped / 2
        })
    }
}

/// Copies `rbsp` after `header` into `out` with emulation prevention (a 0x03 after two zero
/// bytes that a byte ≤ 3 follows, H.264 §7.4.1); returns the NAL unit's length, or `None`
/// if it does not fit.
fn write_nal(header: u8, rbsp: &[u8], out: &mut [u8]) -> Option<usize> {
    *out.first_mut()? = header;
    let mut at = 1;
    let mut zeros = 0;
    for &byte in rbsp {
        if zeros >= 2 && byte <= 3 {
            *out.get_mut(at)? = 3;
            at += 1;
            zeros = 0;
        }
        *out.get_mut(at)? = byte;
        at += 1;
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    Some(at)
}

/// The RBSP of a NAL unit's payload with emulation prevention bytes removed, into `out`;
/// returns its length (bytes beyond `out` are dropped: only the start is needed).
fn unescape(nal_payload: &[u8], out: &mut [u8]) -> usize {
    let mut len = 0;
    let mut zeros = 0;
    for &byte in nal_payload {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        let Some(slot) = out.get_mut(len) else {
            break;
        };
        *slot = byte;
        len += 1;
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    len
}

/// Writes the constrained-baseline SPS of a `width`×`height` layer (both even, at most
/// 16383) into `out`; returns its length, `None` for dimensions it cannot describe.
pub fn write_sps(width: u16, height: u16, out: &mut [u8]) -> Option<usize> {
    let (width, height) = (u32::from(width), u32::from(height));
    if width == 0 || height == 0 || width % CROP_UNIT != 0 || height % CROP_UNIT != 0 {
        return None;
    }
    let width_mbs = width.div_ceil(MB_SIZE);
    let height_mbs = height.div_ceil(MB_SIZE);
    let crop_right = (width_mbs * MB_SIZE - width) / CROP_UNIT;
    let crop_bottom = (height_mbs * MB_SIZE - height) / CROP_UNIT;
    let mut w = BitWriter::new();
    w.bits(u32::from(PROFILE_BASELINE), 8);
    w.bits(u32::from(CONSTRAINED_BASELINE_FLAGS), 8);
    w.bits(u32::from(LEVEL_3_1), 8);
    w.ue(0); // seq_parameter_set_id
    w.ue(FRAME_NUM_BITS - 4); // log2_max_frame_num_minus4
    w.ue(2); // pic_order_cnt_type: POC from frame_num, no B frames (as libwebrtc)
    w.ue(1); // max_num_ref_frames
    w.bit(false); // gaps_in_frame_num_value_allowed_flag
    w.ue(width_mbs - 1);
    w.ue(height_mbs - 1); // map units are macroblocks with frame_mbs_only_flag
    w.bit(true); // frame_mbs_only_flag
    w.bit(true); // direct_8x8_inference_flag
    let cropping = crop_right != 0 || crop_bottom != 0;
    w.bit(cropping);
    if cropping {
        w.ue(0); // left
        w.ue(crop_right);
        w.ue(0); // top
        w.ue(crop_bottom);
    }
    w.bit(false); // vui_parameters_present_flag
    w.trailing_bits();
    write_nal(NRI_REFERENCE | NAL_SPS, w.finish()?, out)
}

/// Writes the PPS that goes with [`write_sps`] (CAVLC, one slice group) into `out`.
pub fn write_pps(out: &mut [u8]) -> Option<usize> {
    let mut w = BitWriter::new();
    w.ue(0); // pic_parameter_set_id
    w.ue(0); // seq_parameter_set_id
    w.bit(false); // entropy_coding_mode_flag: CAVLC (baseline)
    w.bit(false); // bottom_field_pic_order_in_frame_present_flag
    w.ue(0); // num_slice_groups_minus1
    w.ue(0); // num_ref_idx_l0_default_active_minus1
    w.ue(0); // num_ref_idx_l1_default_active_minus1
    w.bit(false); // weighted_pred_flag
    w.bits(0, 2); // weighted_bipred_idc
    w.se(0); // pic_init_qp_minus26
    w.se(0); // pic_init_qs_minus26
    w.se(0); // chroma_qp_index_offset
    w.bit(true); // deblocking_filter_control_present_flag
    w.bit(false); // constrained_intra_pred_flag
    w.bit(false); // redundant_pic_cnt_present_flag
    w.trailing_bits();
    write_nal(NRI_REFERENCE | NAL_PPS, w.finish()?, out)
}

/// The start of a slice's RBSP (slice header fields up to `disable_deblocking_filter_idc`
/// for the SPS and PPS above); slice data would follow.
fn slice_header(keyframe: bool, frame_num: u32, out: &mut [u8]) -> Option<usize> {
    let mut w = BitWriter::new();
    w.ue(0); // first_mb_in_slice
    w.ue(if keyframe {
        SLICE_TYPE_I_ALL
    } else {
        SLICE_TYPE_P_ALL
    });
    w.ue(0); // pic_parameter_set_id
    w.bits(frame_num, FRAME_NUM_BITS);
    if keyframe {
        w.ue(0); // idr_pic_id
        w.bit(false); // no_output_of_prior_pics_flag
        w.bit(false); // long_term_reference_flag
    } else {
        w.bit(false); // num_ref_idx_active_override_flag
        w.bit(false); // ref_pic_list_modification_flag_l0
        w.bit(false); // adaptive_ref_pic_marking_mode_flag
    }
    w.se(0); // slice_qp_delta
    w.ue(0); // disable_deblocking_filter_idc
    let bytes = w.finish()?;
    out.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some(bytes.len())
}

/// A layer's resolution read from an SPS NAL unit (header byte included): `(width,
/// height)` after cropping. `None` if it is no SPS or uses syntax this reader does not
/// follow (scaling matrices, VUI are not needed: they come after the dimensions).
pub fn parse_sps_dimensions(nal: &[u8]) -> Option<(u32, u32)> {
    let (&header, payload) = nal.split_first()?;
    if header & 0x1F != NAL_SPS {
        return None;
    }
    let mut rbsp = [0u8; 64];
    let len = unescape(payload, &mut rbsp);
    let mut r = BitReader {
        bytes: rbsp.get(..len)?,
        bit: 0,
    };
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            // seq_scaling_matrix_present_flag: not produced by WebRTC encoders.
            return None;
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut crop_x, mut crop_y) = (0u64, 0u64);
    if r.bit()? {
        let (left, right) = (u64::from(r.ue()?), u64::from(r.ue()?));
        let (top, bottom) = (u64::from(r.ue()?), u64::from(r.ue()?));
        // Crop units (§7.4.2.1.1): 4:2:0 halves both directions, fields double vertically.
        let unit_x = if chroma_format_idc == 0 || chroma_format_idc == 3 {
            1
        } else {
            2
        };
        let unit_y =
            if chroma_format_idc == 1 { 2 } else { 1 } * if frame_mbs_only { 1 } else { 2 };
        crop_x = (left + right) * unit_x;
        crop_y = (top + bottom) * unit_y;
    }
    let frame_height_mbs = height_map_units * if frame_mbs_only { 1 } else { 2 };
    let width = (width_mbs * 16).checked_sub(crop_x)?;
    let height = (frame_height_mbs * 16).checked_sub(crop_y)?;
    Some((u32::try_from(width).ok()?, u32::try_from(height).ok()?))
}

/// One H.264 frame being packetised: a single slice NAL unit of `nal_bytes` (header byte
/// included), preceded by a STAP-A with SPS and PPS when it is a keyframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct H264Frame {
    /// IDR slice (and parameter sets) rather than a non-IDR slice.
    pub keyframe: bool,
    /// Size of the slice NAL unit, header byte included.
    pub nal_bytes: u32,
    /// `frame_num` of the slice header (modulo 16).
    pub frame_num: u32,
    /// Largest RTP payload.
    pub mtu_payload: u32,
    /// The layer's resolution, written into the SPS.
    pub width: u16,
    /// See `width`.
    pub height: u16,
}

impl H264Frame {
    /// Packets carrying the slice: one single NAL unit packet, or FU-A fragments.
    fn slice_packets(&self) -> u32 {
        if self.nal_bytes <= self.mtu_payload {
            1
        } else {
            let per_fragment = self
                .mtu_payload
                .saturating_sub(FU_A_HEADER_LEN as u32)
                .max(1);
            (self.nal_bytes - 1).div_ceil(per_fragment)
        }
    }

    /// Packets of the whole frame.
    pub fn packets(&self) -> u32 {
        self.slice_packets() + u32::from(self.keyframe)
    }

    /// Writes packet `index` of the frame: its codec bytes into `out`; returns their length
    /// and the number of filler bytes that follow them. `None` past the last packet or for
    /// a resolution the SPS cannot carry.
    pub fn write_packet(
        &self,
        index: u32,
        out: &mut [u8; H264_MAX_PREFIX_LEN],
    ) -> Option<(usize, usize)> {
        let index = if self.keyframe {
            if index == 0 {
                return self.write_parameter_sets(out).map(|len| (len, 0));
            }
            index - 1
        } else {
            index
        };
        let fragments = self.slice_packets();
        if index >= fragments {
            return None;
        }
        let nal_header = NRI_REFERENCE | if self.keyframe { NAL_IDR } else { NAL_NON_IDR };
        if fragments == 1 {
            let (first, rest) = out.split_first_mut()?;
            *first = nal_header;
            let header_len = slice_header(self.keyframe, self.frame_num, rest)?;
            let filler = (self.nal_bytes as usize).saturating_sub(1 + header_len);
            return Some((1 + header_len, filler));
        }
        // The NAL header byte is not repeated in fragments: its F/NRI go into the FU
        // indicator, its type into the FU header.
        let body = self.nal_bytes - 1;
        let chunk = body / fragments + u32::from(index < body % fragments);
        let start = index == 0;
        let end = index + 1 == fragments;
        let [indicator, fu_header, rest @ ..] = out;
        *indicator = (nal_header & 0xE0) | NAL_FU_A;
        *fu_header = (u8::from(start) << 7) | (u8::from(end) << 6) | (nal_header & 0x1F);
        let header_len = if start {
            slice_header(self.keyframe, self.frame_num, rest)?
        } else {
            0
        };
        let filler = (chunk as usize).saturating_sub(header_len);
        Some((FU_A_HEADER_LEN + header_len, filler))
    }

    /// The STAP-A: header byte, then each NAL unit after its 16-bit size.
    fn write_parameter_sets(&self, out: &mut [u8; H264_MAX_PREFIX_LEN]) -> Option<usize> {
        let (stap_header, rest) = out.split_first_mut()?;
        *stap_header = NRI_REFERENCE | NAL_STAP_A;
        let sps_len = write_sps(self.width, self.height, rest.get_mut(2..)?)?;
        let [s0, s1] = u16::try_from(sps_len).ok()?.to_be_bytes();
        rest.get_mut(..2)?.copy_from_slice(&[s0, s1]);
        let pps_at = 2 + sps_len;
        let pps_len = write_pps(rest.get_mut(pps_at + 2..)?)?;
        let [p0, p1] = u16::try_from(pps_len).ok()?.to_be_bytes();
        rest.get_mut(pps_at..pps_at + 2)?.copy_from_slice(&[p0, p1]);
        Some(1 + pps_at + 2 + pps_len)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn exp_golomb_round_trips() {
        let mut w = BitWriter::new();
        for v in [0, 1, 2, 3, 7, 79, 44, 1023] {
            w.ue(v);
        }
        for v in [0, 1, -1, 5, -7] {
            w.se(v);
        }
        let bytes = w.finish().unwrap().to_vec();
        let mut r = BitReader {
            bytes: &bytes,
            bit: 0,
        };
        for v in [0, 1, 2, 3, 7, 79, 44, 1023] {
            assert_eq!(r.ue(), Some(v));
        }
        for v in [0, 1, -1, 5, -7] {
            assert_eq!(r.se(), Some(v));
        }
    }

    #[test]
    fn emulation_prevention_is_inserted_and_removed() {
        let mut out = [0u8; 16];
        let len = write_nal(0x67, &[0, 0, 1, 0, 0, 0, 5], &mut out).unwrap();
        assert_eq!(&out[..len], &[0x67, 0, 0, 3, 1, 0, 0, 3, 0, 5]);
        let mut back = [0u8; 16];
        let n = unescape(&out[1..len], &mut back);
        assert_eq!(&back[..n], &[0, 0, 1, 0, 0, 0, 5]);
    }

    #[test]
    fn sps_round_trips_to_the_layer_resolution() {
        for (width, height) in [
            (320, 180),
            (640, 360),
            (1280, 720),
            (1920, 1080),
            (16382, 16382),
        ] {
            let mut out = [0u8; 32];
            let len = write_sps(width, height, &mut out).unwrap();
            assert_eq!(out[0], 0x67, "SPS NAL header");
            assert_eq!(&out[1..4], &[0x42, 0xE0, 0x1F], "profile-level-id 42e01f");
            assert_eq!(
                parse_sps_dimensions(&out[..len]),
                Some((u32::from(width), u32::from(height)))
            );
            // The node's parser sees a keyframe in it.
            assert!(relais_rtp::codec::h264::parse(&out[..len])
                .unwrap()
                .is_keyframe());
        }
        // 720 is 45 macroblocks: no cropping; 180 needs 6 rows cropped (3 crop units).
        let mut out = [0u8; 32];
        let len = write_sps(1280, 720, &mut out).unwrap();
        let mut rbsp = [0u8; 32];
        let n = unescape(&out[1..len], &mut rbsp);
        let mut r = BitReader {
            bytes: &rbsp[..n],
            bit: 24,
        };
        let fields: Vec<u32> = (0..4).map(|_| r.ue().unwrap()).collect();
        assert_eq!(fields, vec![0, 0, 2, 1]);
        assert_eq!(r.bit(), Some(false));
        assert_eq!(r.ue(), Some(79), "pic_width_in_mbs_minus1");
        assert_eq!(r.ue(), Some(44), "pic_height_in_map_units_minus1");
        assert!(write_sps(321, 180, &mut out).is_none());
        assert!(parse_sps_dimensions(&[0x68, 0xCE]).is_none());
    }

    fn frame(keyframe: bool, nal_bytes: u32) -> H264Frame {
        H264Frame {
            keyframe,
            nal_bytes,
            frame_num: 3,
            mtu_payload: 1160,
            width: 640,
            height: 360,
        }
    }

    /// Reassembles the slice NAL unit of a frame from its packets (filler as zeros),
    /// returning it and every packet's payload length.
    fn packetise(frame: &H264Frame) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut packets = Vec::new();
        let mut nal = Vec::new();
        for index in 0..frame.packets() {
            let mut prefix = [0u8; H264_MAX_PREFIX_LEN];
            let (len, filler) = frame.write_packet(index, &mut prefix).unwrap();
            let mut payload = prefix[..len].to_vec();
            payload.resize(len + filler, 0);
            let descriptor = relais_rtp::codec::h264::parse(&payload).unwrap();
            match descriptor.packet {
                relais_rtp::codec::h264::H264Packet::FuA { start, .. } => {
                    if start {
                        nal.push((payload[0] & 0xE0) | (payload[1] & 0x1F));
                    }
                    nal.extend_from_slice(&payload[2..]);
                }
                relais_rtp::codec::h264::H264Packet::Single { .. } => nal = payload.clone(),
                relais_rtp::codec::h264::H264Packet::StapA { .. } => {}
            }
            packets.push(payload);
        }
        assert!(frame.write_packet(frame.packets(), &mut [0; 30]).is_none());
        (packets, nal)
    }

    #[test]
    fn large_slices_are_fu_a_fragments_under_the_mtu_that_reassemble() {
        let big = frame(false, 5000);
        let (packets, nal) = packetise(&big);
        assert_eq!(packets.len(), 5, "4999 body bytes in 1158-byte fragments");
        assert_eq!(nal.len(), 5000);
        assert_eq!(nal[0], 0x61, "non-IDR slice, reference");
        let sizes: Vec<usize> = packets.iter().map(Vec::len).collect();
        assert!(sizes.iter().all(|&s| s <= 1160), "{sizes:?}");
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        let flags: Vec<(u8, u8)> = packets.iter().map(|p| (p[0], p[1])).collect();
        assert_eq!(flags[0], (0x7C, 0x81), "FU-A, start, type 1");
        assert_eq!(flags[1], (0x7C, 0x01));
        assert_eq!(flags[4], (0x7C, 0x41), "end");
        // The slice header follows the NAL header: first_mb 0, P slice, pps 0, frame_num 3.
        let mut r = BitReader {
            bytes: &nal[1..],
            bit: 0,
        };
        assert_eq!(
            (r.ue(), r.ue(), r.ue(), r.bits(4)),
            (Some(0), Some(5), Some(0), Some(3))
        );
    }

    #[test]
    fn small_slices_are_single_nal_units() {
        let (packets, nal) = packetise(&frame(false, 1160));
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].len(), 1160);
        assert_eq!(nal[0], 0x61);
    }

    #[test]
    fn keyframes_start_with_a_stap_a_of_sps_and_pps_then_the_idr() {
        let key = frame(true, 3000);
        let (packets, nal) = packetise(&key);
        assert_eq!(packets.len(), 4, "STAP-A and three fragments");
        let stap = &packets[0];
        assert_eq!(stap[0], 0x78, "STAP-A, NRI 3");
        let units: Vec<&[u8]> = relais_rtp::codec::h264::stap_a_nal_units(stap).collect();
        assert_eq!(units.len(), 2);
        assert_eq!(units[0][0] & 0x1F, 7);
        assert_eq!(units[1][0] & 0x1F, 8);
        assert_eq!(parse_sps_dimensions(units[0]), Some((640, 360)));
        let d = relais_rtp::codec::h264::parse(stap).unwrap();
        assert!(d.has_sps && d.has_pps && d.is_keyframe());
        assert_eq!(nal.len(), 3000);
        assert_eq!(nal[0], 0x65, "IDR slice");
        assert!(relais_rtp::codec::h264::parse(&packets[1])
            .unwrap()
            .is_keyframe());
        assert!(!relais_rtp::codec::h264::parse(&packets[2])
            .unwrap()
            .is_keyframe());
    }
}
