//! The AV1 dependency descriptor: Chromium-captured values byte for byte, writer → reader
//! round trips over whole GOPs of libwebrtc's scalability structures (layers, DTIs,
//! references, chains and switch points checked against what a thinned receiver can
//! decode), errors, and parsing arbitrary bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;

use proptest::collection::vec;
use proptest::prelude::*;
use relais_rtp::codec::av1::{
    self, BuildError, ChainDiffs, DecodeTargetIndication, DecodeTargetIndications,
    DependencyDescriptor, DependencyDescriptorReader, DescriptorError, DescriptorFields,
    FrameDiffs, FrameTemplate, MandatoryFields, RenderResolution, ScalabilityMode,
    TemplateStructure,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn hex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn dtis(notation: &str) -> DecodeTargetIndications {
    DecodeTargetIndications::from_notation(notation).unwrap()
}

// Dependency descriptor values of AV1 packets Chromium sent in Jitsi test calls, from
// jitsi-videobridge's jitsi-media-transform/src/test/kotlin/org/jitsi/nlj/rtp/codec/av1/
// Av1DDPacketTest.kt (the header extension with id 11 of each captured RTP packet).

/// "non-scalable keyframe": L1T1 structure with a 480x270 resolution, frame 1.
const JITSI_NON_SCALABLE_KEY: &str = "80000180003a410180ef808680";
/// "non-scalable following packet": the last packet of frame 1.
const JITSI_NON_SCALABLE_NEXT: &str = "400001";
/// "scalable keyframe": L3T3_KEY structure, 320x180 / 640x360 / 1280x720, frame 0x03ca.
const JITSI_SCALABLE_KEY: &str = concat!(
    "8003ca80081485214eaaaaa8000600004000100002aa80a80006",
    "00004000100002a000a800060000400016d549241b5524906d549231",
    "57e001974ca864330e222396eca8655304224390eca87753013f00b3",
    "027f016704ff02cf"
);
/// "scalable following packet changing available DTs": S0 T2, active decode targets 0-2.
const JITSI_SCALABLE_NEXT: &str = "c303cd401c";
/// "temporally-scalable portrait-mode keyframe": 3 decode targets, 7 templates, no
/// chains, 720x1280.
const JITSI_PORTRAIT_KEY: &str = "8023c58002044eaaaf2860414d34538a094040b3c13fc0";

fn key_fields(frame_number: u16, template_index: u8) -> DescriptorFields {
    DescriptorFields {
        start_of_frame: true,
        end_of_frame: false,
        frame_number,
        template_index,
        attach_structure: true,
        ..DescriptorFields::default()
    }
}

#[test]
fn chromium_l1t1_key_frame_parses_and_writes_back_byte_for_byte() {
    let bytes = hex(JITSI_NON_SCALABLE_KEY);
    let mut reader = DependencyDescriptorReader::new();
    let d = reader.read(&bytes).unwrap();
    assert!(d.start_of_frame && !d.end_of_frame);
    assert_eq!((d.template_id, d.template_index, d.frame_number), (0, 0, 1));
    assert_eq!((d.spatial_id, d.temporal_id), (0, 0));
    assert!(d.carries_structure);
    assert_eq!(d.active_decode_targets, Some(0b1));
    assert_eq!(d.dtis, dtis("S"));
    assert!(d.frame_diffs.is_empty());
    assert_eq!(d.chain_diffs.as_slice(), &[0]);
    assert_eq!(d.resolution, Some(RenderResolution::new(480, 270)));

    let expected = TemplateStructure::l1t1()
        .with_resolutions(&[RenderResolution::new(480, 270)])
        .unwrap();
    assert_eq!(reader.structure(), Some(&expected));
    assert_eq!(av1::to_vec(&expected, &key_fields(1, 0)).unwrap(), bytes);

    let next = reader.read(&hex(JITSI_NON_SCALABLE_NEXT)).unwrap();
    assert!(!next.start_of_frame && next.end_of_frame && !next.carries_structure);
    assert_eq!((next.frame_number, next.template_index), (1, 0));
    assert_eq!(next.active_decode_targets, None);
    let fields = DescriptorFields {
        end_of_frame: true,
        frame_number: 1,
        ..DescriptorFields::default()
    };
    assert_eq!(
        av1::to_vec(&expected, &fields).unwrap(),
        hex(JITSI_NON_SCALABLE_NEXT)
    );
}

#[test]
fn chromium_l3t3_key_structure_parses_and_writes_back_byte_for_byte() {
    let bytes = hex(JITSI_SCALABLE_KEY);
    assert_eq!(bytes.len(), 90);
    let mut reader = DependencyDescriptorReader::new();
    let d = reader.read(&bytes).unwrap();
    assert!(d.start_of_frame && !d.end_of_frame && d.carries_structure);
    assert_eq!((d.template_index, d.frame_number), (0, 0x03ca));
    assert_eq!(d.dtis, dtis("SSSSSSSSS"));
    assert_eq!(d.active_decode_targets, Some(0x1FF));
    assert_eq!(d.resolution, Some(RenderResolution::new(320, 180)));
    assert!((0..9).all(|dt| d.is_switch_point(dt)));

    let resolutions = [
        RenderResolution::new(320, 180),
        RenderResolution::new(640, 360),
        RenderResolution::new(1280, 720),
    ];
    let expected = TemplateStructure::l3t3_key()
        .with_resolutions(&resolutions)
        .unwrap();
    let structure = reader.structure().unwrap();
    assert_eq!(structure, &expected);
    assert_eq!(
        av1::to_vec(&expected, &key_fields(0x03ca, 0)).unwrap(),
        bytes
    );

    // What an SFU asks of it.
    assert_eq!(structure.decode_target_count(), 9);
    assert_eq!(structure.chain_count(), 3);
    assert_eq!(
        (structure.max_spatial_id(), structure.max_temporal_id()),
        (2, 2)
    );
    assert_eq!(structure.resolutions(), &resolutions);
    assert_eq!(structure.resolution(3), None);
    for s in 0..3 {
        for t in 0..3 {
            assert_eq!(structure.decode_target_for(s, t), Some(3 * s + t));
            assert_eq!(structure.chain_protecting(3 * s + t), Some(s));
        }
    }
    assert_eq!(structure.decode_target_for(3, 0), None);

    // The next temporal unit's S0 T2 frame, now with only spatial layer 0 produced.
    let next = reader.read(&hex(JITSI_SCALABLE_NEXT)).unwrap();
    assert!(next.start_of_frame && next.end_of_frame && !next.carries_structure);
    assert_eq!((next.template_index, next.frame_number), (3, 0x03cd));
    assert_eq!((next.spatial_id, next.temporal_id), (0, 2));
    assert_eq!(next.dtis, dtis("--D------"));
    assert_eq!(next.active_decode_targets, Some(0b111));
    assert_eq!(reader.active_decode_targets(), 0b111);
    assert!(reader.is_active(2) && !reader.is_active(3));
    assert!(next.is_part_of(2) && !next.is_part_of(1) && !next.is_part_of(5));
    assert!(!next.is_switch_point(2));
    assert_eq!(next.referenced_frames().collect::<Vec<_>>(), [0x03ca]);
    assert_eq!(next.previous_frame_in_chain(0), Some(0x03ca));
    assert_eq!(
        structure_after(&reader).best_decode_target_within(2, 2, 0b111),
        Some(2)
    );
    let fields = DescriptorFields {
        active_decode_targets: Some(0b111),
        ..DescriptorFields::single_packet(0x03cd, 3)
    };
    assert_eq!(
        av1::to_vec(&expected, &fields).unwrap(),
        hex(JITSI_SCALABLE_NEXT)
    );
}

fn structure_after(reader: &DependencyDescriptorReader) -> &TemplateStructure {
    reader.structure().unwrap()
}

#[test]
fn chromium_portrait_l1t3_without_chains_parses_and_writes_back() {
    let bytes = hex(JITSI_PORTRAIT_KEY);
    let (d, structure) = av1::parse(&bytes, None).unwrap();
    let structure = structure.unwrap();
    assert_eq!((d.frame_number, d.template_index), (0x23c5, 0));
    assert_eq!(d.resolution, Some(RenderResolution::new(720, 1280)));
    assert!(d.chain_diffs.is_empty());
    assert_eq!(structure.decode_target_count(), 3);
    assert_eq!(structure.chain_count(), 0);
    assert_eq!(structure.chain_protecting(0), None);
    let layers: Vec<(u8, u8, DecodeTargetIndications, Vec<u16>)> = structure
        .templates()
        .iter()
        .map(|t| {
            (
                t.spatial_id,
                t.temporal_id,
                t.dtis,
                t.frame_diffs.as_slice().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        layers,
        [
            (0, 0, dtis("SSS"), vec![]),
            (0, 0, dtis("SSS"), vec![4]),
            (0, 0, dtis("SRR"), vec![4]),
            (0, 1, dtis("-SS"), vec![2]),
            (0, 1, dtis("-DS"), vec![4, 2]),
            (0, 2, dtis("--D"), vec![1]),
            (0, 2, dtis("--D"), vec![3, 1]),
        ]
    );
    for t in 0..3 {
        assert_eq!(structure.decode_target_for(0, t), Some(t));
    }
    assert_eq!(
        av1::to_vec(&structure, &key_fields(0x23c5, 0)).unwrap(),
        bytes
    );
}

#[test]
fn constant_structures_pass_validation() {
    for mode in [
        ScalabilityMode::L1T1,
        ScalabilityMode::L1T3,
        ScalabilityMode::L3T3,
        ScalabilityMode::L3T3Key,
    ] {
        let s = mode.structure();
        let protected: Vec<u8> = (0..s.decode_target_count())
            .map(|dt| s.chain_protecting(dt).unwrap())
            .collect();
        let rebuilt = TemplateStructure::new(
            usize::from(s.decode_target_count()),
            usize::from(s.chain_count()),
            &protected,
            s.templates(),
        )
        .unwrap();
        assert_eq!(rebuilt, s, "{}", mode.name());
        assert_eq!(ScalabilityMode::from_name(mode.name()), Some(mode));
        assert_eq!(
            usize::from(s.decode_target_count()),
            usize::from(mode.spatial_layers()) * usize::from(mode.temporal_layers())
        );
        assert_eq!(s.max_spatial_id() + 1, mode.spatial_layers());
        assert_eq!(s.max_temporal_id() + 1, mode.temporal_layers());
        // Decode target s * T + t decodes S<s> up to T<t>.
        for dt in 0..s.decode_target_count() {
            let t = mode.temporal_layers();
            assert_eq!(s.decode_target_layers(dt), Some((dt / t, dt % t)));
        }
    }
    assert_eq!(ScalabilityMode::from_name("L2T2"), None);
}

/// One layer frame as generated and as read back.
struct SeenFrame {
    temporal_unit: u64,
    descriptor: DependencyDescriptor,
}

/// Generates `temporal_units` temporal units of `mode` (each layer frame in two packets,
/// the structure on the key frame's first), writes and reads every packet, and checks
/// each read descriptor against the template the generator chose. Returns the frames.
fn generate_and_read(
    mode: ScalabilityMode,
    temporal_units: u64,
    first_frame_number: u16,
) -> Vec<SeenFrame> {
    let structure = mode
        .structure()
        .with_template_id_offset(60)
        .unwrap()
        .with_resolutions(
            &[
                RenderResolution::new(320, 180),
                RenderResolution::new(640, 360),
                RenderResolution::new(1280, 720),
            ][..usize::from(mode.spatial_layers())],
        )
        .unwrap();
    let mut reader = DependencyDescriptorReader::new();
    let mut frame_number = first_frame_number;
    let mut frames = Vec::new();
    let mut buf = [0u8; 256];
    for temporal_unit in 0..temporal_units {
        let layer_frames: Vec<_> = mode.layer_frames(temporal_unit).collect();
        assert_eq!(layer_frames.len(), usize::from(mode.spatial_layers()));
        for layer_frame in layer_frames {
            let template = structure.templates()[usize::from(layer_frame.template_index)];
            assert_eq!(
                (template.spatial_id, template.temporal_id),
                (layer_frame.spatial_id, layer_frame.temporal_id)
            );
            let mut read = Vec::new();
            for (start, end) in [(true, false), (false, true)] {
                let fields = DescriptorFields {
                    start_of_frame: start,
                    end_of_frame: end,
                    frame_number,
                    template_index: layer_frame.template_index,
                    attach_structure: start && layer_frame.is_key_frame,
                    ..DescriptorFields::default()
                };
                let len = av1::write(&structure, &fields, &mut buf).unwrap();
                assert_eq!(len, av1::encoded_len(&structure, &fields).unwrap());
                if !fields.attach_structure {
                    // A frame that follows its template costs the mandatory 3 bytes.
                    assert_eq!(len, 3);
                }
                let d = reader.read(&buf[..len]).unwrap();
                assert_eq!((d.start_of_frame, d.end_of_frame), (start, end));
                assert_eq!(d.carries_structure, fields.attach_structure);
                read.push(d);
            }
            let d = read[0];
            assert_eq!(d.frame_number, frame_number);
            assert_eq!(d.template_index, layer_frame.template_index);
            assert_eq!(
                (d.spatial_id, d.temporal_id),
                (template.spatial_id, template.temporal_id)
            );
            assert_eq!(d.dtis, template.dtis);
            assert_eq!(d.frame_diffs, template.frame_diffs);
            assert_eq!(d.chain_diffs, template.chain_diffs);
            assert_eq!(d.resolution, structure.resolution(d.spatial_id));
            assert_eq!(read[1].dtis, d.dtis);
            frames.push(SeenFrame {
                temporal_unit,
                descriptor: d,
            });
            frame_number = frame_number.wrapping_add(1);
        }
    }
    assert_eq!(reader.structure(), Some(&structure));
    frames
}

/// Checks that every decode target can be decoded from what an SFU forwards for it, that
/// references and chains point where they should, and that switch points are real.
fn check_decodability(mode: ScalabilityMode, frames: &[SeenFrame]) {
    let structure = mode.structure();
    let by_number: HashMap<u16, usize> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (f.descriptor.frame_number, i))
        .collect();
    let decode_targets = structure.decode_target_count();

    // A frame belongs to chain c when it is part of every decode target c protects.
    let in_chain = |d: &DependencyDescriptor, chain: u8| {
        (0..decode_targets)
            .filter(|&dt| structure.chain_protecting(dt) == Some(chain))
            .all(|dt| d.is_part_of(dt))
    };

    for (i, frame) in frames.iter().enumerate() {
        let d = &frame.descriptor;
        for reference in d.referenced_frames() {
            let r = &frames[by_number[&reference]].descriptor;
            assert!(by_number[&reference] < i);
            assert!(r.spatial_id <= d.spatial_id && r.temporal_id <= d.temporal_id);
            // Thinning to any decode target keeps every reference of a kept frame.
            for dt in 0..decode_targets {
                if d.is_part_of(dt) {
                    assert!(
                        r.is_part_of(dt),
                        "frame {i} dt {dt} refers to a dropped frame"
                    );
                }
            }
        }
        for chain in 0..structure.chain_count() {
            let expected = frames[..i]
                .iter()
                .rev()
                .find(|f| in_chain(&f.descriptor, chain))
                .map(|f| f.descriptor.frame_number);
            assert_eq!(
                d.previous_frame_in_chain(chain),
                expected,
                "{} frame {i} chain {chain}",
                mode.name()
            );
        }
    }

    // A receiver of a lower decode target that only had the chain protecting `dt` can
    // start `dt` at a switch point and decode everything of `dt` from that temporal unit
    // on.
    for dt in 0..decode_targets {
        let chain = structure.chain_protecting(dt);
        for (start, frame) in frames.iter().enumerate() {
            if !frame.descriptor.is_switch_point(dt) {
                continue;
            }
            let unit_start = frames
                .iter()
                .position(|f| f.temporal_unit == frame.temporal_unit)
                .unwrap();
            let mut have: Vec<u16> = frames[..unit_start]
                .iter()
                .filter(|f| chain.is_some_and(|c| in_chain(&f.descriptor, c)))
                .map(|f| f.descriptor.frame_number)
                .collect();
            for f in &frames[unit_start..] {
                let d = &f.descriptor;
                if !d.is_part_of(dt) {
                    continue;
                }
                for reference in d.referenced_frames() {
                    assert!(
                        have.contains(&reference),
                        "{} dt {dt}: switching at frame {start}, frame {} misses {reference}",
                        mode.name(),
                        d.frame_number
                    );
                }
                have.push(d.frame_number);
            }
        }
    }
}

#[test]
fn l1t3_gop_round_trips_and_thins() {
    // Key + three GOPs of four, frame numbers wrapping through 0.
    let frames = generate_and_read(ScalabilityMode::L1T3, 13, 65530);
    let temporal_ids: Vec<u8> = frames.iter().map(|f| f.descriptor.temporal_id).collect();
    assert_eq!(temporal_ids, [0, 2, 1, 2, 0, 2, 1, 2, 0, 2, 1, 2, 0]);
    assert!(frames[0].descriptor.carries_structure);
    let structure = TemplateStructure::l1t3();
    assert_eq!(structure.decode_target_for(0, 1), Some(1));
    // T1 frames are where a T1 receiver may move up to T2.
    assert!(frames[2].descriptor.is_switch_point(2));
    assert!(!frames[1].descriptor.is_switch_point(2));
    assert!(!frames[1].descriptor.is_part_of(1));
    check_decodability(ScalabilityMode::L1T3, &frames);
}

#[test]
fn l3t3_full_svc_gop_round_trips_and_thins() {
    let frames = generate_and_read(ScalabilityMode::L3T3, 9, 65000);
    assert_eq!(frames.len(), 27);
    let layers: Vec<(u8, u8)> = frames[..15]
        .iter()
        .map(|f| (f.descriptor.spatial_id, f.descriptor.temporal_id))
        .collect();
    assert_eq!(
        layers,
        [
            (0, 0),
            (1, 0),
            (2, 0),
            (0, 2),
            (1, 2),
            (2, 2),
            (0, 1),
            (1, 1),
            (2, 1),
            (0, 2),
            (1, 2),
            (2, 2),
            (0, 0),
            (1, 0),
            (2, 0),
        ]
    );
    // Full SVC: the S0 T0 delta frame is needed by every decode target.
    assert_eq!(frames[12].descriptor.dtis, dtis("SSSRRRRRR"));
    check_decodability(ScalabilityMode::L3T3, &frames);
}

#[test]
fn l3t3_key_gop_round_trips_and_thins() {
    let frames = generate_and_read(ScalabilityMode::L3T3Key, 9, 0);
    // K-SVC: past the key frame, a spatial layer is independent of the others.
    assert_eq!(frames[12].descriptor.dtis, dtis("SSS------"));
    assert_eq!(frames[13].descriptor.dtis, dtis("---SSS---"));
    assert!(frames[1].descriptor.is_switch_point(5));
    assert!(!frames[1].descriptor.is_switch_point(0));
    check_decodability(ScalabilityMode::L3T3Key, &frames);
}

#[test]
fn l1t1_gop_round_trips() {
    let frames = generate_and_read(ScalabilityMode::L1T1, 5, 7);
    assert!(frames[1..].iter().all(|f| f.descriptor.template_index == 1));
    check_decodability(ScalabilityMode::L1T1, &frames);
}

#[test]
fn custom_fields_round_trip() {
    let structure = TemplateStructure::l3t3();
    // Boundaries of the 4, 8 and 12 bit frame diff codes, as libwebrtc's tests use.
    let fields = DescriptorFields {
        start_of_frame: true,
        end_of_frame: true,
        frame_number: 4242,
        template_index: 7,
        attach_structure: false,
        active_decode_targets: Some(0b000_111_111),
        custom_dtis: Some(dtis("RDS-RR-RR")),
        custom_frame_diffs: Some(FrameDiffs::from_slice(&[1, 16, 17, 256, 257, 4096]).unwrap()),
        custom_chain_diffs: Some(ChainDiffs::from_slice(&[255, 0, 17]).unwrap()),
    };
    let bytes = av1::to_vec(&structure, &fields).unwrap();
    let (d, new_structure) = av1::parse(&bytes, Some(&structure)).unwrap();
    assert!(new_structure.is_none());
    assert!(d.custom_dtis && d.custom_frame_diffs && d.custom_chain_diffs);
    assert_eq!((d.spatial_id, d.temporal_id), (1, 1));
    assert_eq!(d.dtis, fields.custom_dtis.unwrap());
    assert_eq!(d.frame_diffs.as_slice(), &[1, 16, 17, 256, 257, 4096]);
    assert_eq!(d.chain_diffs.as_slice(), &[255, 0, 17]);
    assert_eq!(d.previous_frame_in_chain(1), None);
    assert_eq!(d.previous_frame_in_chain(3), None);
    assert_eq!(d.active_decode_targets, Some(0b000_111_111));
    assert_eq!(
        d.referenced_frames().collect::<Vec<_>>(),
        [4241, 4226, 4225, 3986, 3985, 146]
    );
    assert_eq!(d.dti(0), Some(DecodeTargetIndication::Required));
    assert!(d.is_switch_point(2) && !d.is_switch_point(0) && !d.is_part_of(3));
    assert!(!d.is_part_of(9) && !d.is_switch_point(9));
}

#[test]
fn writer_refuses_what_the_format_cannot_carry() {
    let s = TemplateStructure::l1t3();
    let base = DescriptorFields::single_packet(1, 0);
    let write = |fields: DescriptorFields| av1::to_vec(&s, &fields);
    assert_eq!(
        write(DescriptorFields {
            template_index: 5,
            ..base
        }),
        Err(BuildError::UnknownTemplate(5))
    );
    for bad in [0, 4097] {
        assert_eq!(
            write(DescriptorFields {
                custom_frame_diffs: FrameDiffs::from_slice(&[bad]),
                ..base
            }),
            Err(BuildError::CustomFrameDiffs)
        );
    }
    assert_eq!(
        write(DescriptorFields {
            custom_dtis: Some(dtis("SS")),
            ..base
        }),
        Err(BuildError::CustomDtis)
    );
    assert_eq!(
        write(DescriptorFields {
            custom_chain_diffs: ChainDiffs::from_slice(&[1, 2]),
            ..base
        }),
        Err(BuildError::CustomChainDiffs)
    );
    assert_eq!(
        write(DescriptorFields {
            active_decode_targets: Some(0b1000),
            ..base
        }),
        Err(BuildError::ActiveDecodeTargets)
    );
    let mut small = [0u8; 2];
    assert_eq!(
        av1::write(&s, &base, &mut small),
        Err(BuildError::BufferTooSmall {
            needed: 3,
            available: 2
        })
    );
    // Bytes after the descriptor are left alone.
    let mut big = [0xEE; 5];
    assert_eq!(av1::write(&s, &base, &mut big), Ok(3));
    assert_eq!(big, [0xC0, 0x00, 0x01, 0xEE, 0xEE]);
}

#[test]
fn structure_validation() {
    let t = |s: u8, t: u8, d: &str| FrameTemplate {
        spatial_id: s,
        temporal_id: t,
        dtis: dtis(d),
        ..FrameTemplate::default()
    };
    assert!(TemplateStructure::new(1, 0, &[], &[t(0, 0, "S")]).is_ok());
    assert_eq!(
        TemplateStructure::new(0, 0, &[], &[t(0, 0, "")]),
        Err(BuildError::DecodeTargetCount(0))
    );
    assert_eq!(
        TemplateStructure::new(1, 2, &[0], &[t(0, 0, "S")]),
        Err(BuildError::ChainCount {
            chains: 2,
            decode_targets: 1
        })
    );
    assert_eq!(
        TemplateStructure::new(2, 1, &[0, 1], &[t(0, 0, "SS")]),
        Err(BuildError::ProtectedByChain)
    );
    assert_eq!(
        TemplateStructure::new(1, 0, &[], &[]),
        Err(BuildError::TemplateCount(0))
    );
    // S0 T0 first; no skipping a temporal layer; a new spatial layer starts at T0.
    assert_eq!(
        TemplateStructure::new(1, 0, &[], &[t(0, 1, "S")]),
        Err(BuildError::TemplateOrder(0))
    );
    assert_eq!(
        TemplateStructure::new(1, 0, &[], &[t(0, 0, "S"), t(0, 2, "S")]),
        Err(BuildError::TemplateOrder(1))
    );
    assert_eq!(
        TemplateStructure::new(1, 0, &[], &[t(0, 0, "S"), t(0, 1, "S"), t(1, 1, "S")]),
        Err(BuildError::TemplateOrder(2))
    );
    assert_eq!(
        TemplateStructure::new(2, 0, &[], &[t(0, 0, "S")]),
        Err(BuildError::TemplateDtis(0))
    );
    let mut bad_fdiff = t(0, 0, "S");
    bad_fdiff.frame_diffs = FrameDiffs::from_slice(&[17]).unwrap();
    assert_eq!(
        TemplateStructure::new(1, 0, &[], &[bad_fdiff]),
        Err(BuildError::TemplateFrameDiffs(0))
    );
    let mut bad_chain = t(0, 0, "S");
    bad_chain.chain_diffs = ChainDiffs::from_slice(&[16]).unwrap();
    assert_eq!(
        TemplateStructure::new(1, 1, &[0], &[bad_chain]),
        Err(BuildError::TemplateChainDiffs(0))
    );
    assert_eq!(
        TemplateStructure::l1t3().with_template_id_offset(64),
        Err(BuildError::TemplateIdOffset(64))
    );
    assert_eq!(
        TemplateStructure::l3t3().with_resolutions(&[RenderResolution::new(1, 1)]),
        Err(BuildError::Resolutions)
    );
    assert_eq!(
        TemplateStructure::l1t1().with_resolutions(&[RenderResolution::new(0, 1)]),
        Err(BuildError::Resolutions)
    );
    let largest = TemplateStructure::l1t1()
        .with_resolutions(&[RenderResolution::new(65536, 65536)])
        .unwrap();
    let bytes = av1::to_vec(&largest, &key_fields(0, 0)).unwrap();
    assert_eq!(av1::parse(&bytes, None).unwrap().1, Some(largest.clone()));
    assert_eq!(
        largest.with_resolutions(&[]).unwrap(),
        TemplateStructure::l1t1()
    );
}

#[test]
fn truncation_is_an_error() {
    for len in 0..3 {
        assert_eq!(
            MandatoryFields::parse(&[0x80; 2][..len]),
            Err(DescriptorError::Truncated {
                needed: 3,
                available: len
            })
        );
    }
    let key = hex(JITSI_SCALABLE_KEY);
    for len in 0..key.len() {
        let mut reader = DependencyDescriptorReader::new();
        match reader.read(&key[..len]) {
            Err(DescriptorError::Truncated { needed, available }) => {
                assert_eq!(available, len);
                assert!(needed > len);
            }
            // Three bytes are a whole descriptor, but name a template of no structure.
            Err(DescriptorError::NoStructure) => assert_eq!(len, 3),
            other => panic!("{len} bytes: {other:?}"),
        }
        assert!(reader.structure().is_none());
    }
    // Custom fields past the end.
    let structure = TemplateStructure::l1t3();
    let fields = DescriptorFields {
        custom_chain_diffs: ChainDiffs::from_slice(&[9]),
        ..DescriptorFields::single_packet(3, 2)
    };
    let bytes = av1::to_vec(&structure, &fields).unwrap();
    assert_eq!(bytes.len(), 5);
    assert!(matches!(
        av1::parse(&bytes[..4], Some(&structure)),
        Err(DescriptorError::Truncated {
            needed: 5,
            available: 4
        })
    ));
}

#[test]
fn unknown_templates_are_errors_and_leave_the_reader_alone() {
    let mut reader = DependencyDescriptorReader::new();
    assert_eq!(
        reader.read(&hex(JITSI_NON_SCALABLE_NEXT)),
        Err(DescriptorError::NoStructure)
    );
    // Extended fields sized by a structure that is not there.
    assert_eq!(
        reader.read(&[0x80, 0, 1, 0x40, 0]),
        Err(DescriptorError::NoStructure)
    );

    // Template ids 63 and 0 (the offset wraps).
    let structure = TemplateStructure::l1t1()
        .with_template_id_offset(63)
        .unwrap();
    assert_eq!(structure.template_index(63), Some(0));
    assert_eq!(structure.template_index(0), Some(1));
    assert_eq!(structure.template_index(1), None);
    let key = av1::to_vec(&structure, &key_fields(10, 0)).unwrap();
    assert_eq!(key[0] & 0x3F, 63);
    reader.read(&key).unwrap();
    let d = reader.read(&[0x00, 0, 11]).unwrap();
    assert_eq!(d.template_index, 1);
    assert_eq!(
        reader.read(&[0x01, 0, 12]),
        Err(DescriptorError::UnknownTemplate {
            template_id: 1,
            template_id_offset: 63,
            template_count: 2
        })
    );
    assert_eq!(reader.structure(), Some(&structure));
    assert_eq!(reader.active_decode_targets(), 1);

    // A packet with a new structure whose own template id is out of range changes
    // nothing.
    let mut bad = av1::to_vec(&TemplateStructure::l1t3(), &key_fields(20, 0)).unwrap();
    bad[0] = (bad[0] & 0xC0) | 9;
    assert!(matches!(
        reader.read(&bad),
        Err(DescriptorError::UnknownTemplate { template_id: 9, .. })
    ));
    assert_eq!(reader.structure(), Some(&structure));

    reader.reset();
    assert!(reader.structure().is_none());
    assert_eq!(reader.active_decode_targets(), 0);
}

/// Bits for hand-made structures the writer refuses to make.
#[derive(Default)]
struct Bits(Vec<bool>);

impl Bits {
    fn put(&mut self, value: u32, count: u32) -> &mut Self {
        for shift in (0..count).rev() {
            self.0.push((value >> shift) & 1 == 1);
        }
        self
    }

    fn zeros(&mut self, count: usize) -> &mut Self {
        self.0.extend(std::iter::repeat_n(false, count));
        self
    }

    fn bytes(&self) -> Vec<u8> {
        self.0
            .chunks(8)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u8, |b, (i, &bit)| b | (u8::from(bit) << (7 - i)))
            })
            .collect()
    }
}

/// Mandatory fields for template 0, frame 1, then the flags with only the structure set,
/// the template id offset and one decode target.
fn structure_start() -> Bits {
    let mut b = Bits::default();
    b.put(0x80, 8)
        .put(1, 16)
        .put(0b10000, 5)
        .put(0, 6)
        .put(0, 5);
    b
}

#[test]
fn invalid_structures_are_errors() {
    // Five spatial layers.
    let mut b = structure_start();
    for _ in 0..4 {
        b.put(2, 2);
    }
    b.put(3, 2).zeros(64);
    assert_eq!(
        av1::parse(&b.bytes(), None).map(|_| ()),
        Err(DescriptorError::TooManySpatialLayers)
    );
    // Four spatial layers are fine: 4 templates, DTIs, no fdiffs, no chains, no
    // resolutions.
    let mut b = structure_start();
    for _ in 0..3 {
        b.put(2, 2);
    }
    b.put(3, 2).put(0xAA, 8).put(0, 4).put(0, 1).put(0, 1);
    let (d, s) = av1::parse(&b.bytes(), None).unwrap();
    assert_eq!(s.unwrap().max_spatial_id(), 3);
    assert_eq!(d.spatial_id, 0);

    // Nine temporal layers.
    let mut b = structure_start();
    for _ in 0..8 {
        b.put(1, 2);
    }
    b.put(3, 2).zeros(64);
    assert_eq!(
        av1::parse(&b.bytes(), None).map(|_| ()),
        Err(DescriptorError::TooManyTemporalLayers)
    );

    // 65 templates.
    let mut b = structure_start();
    for _ in 0..64 {
        b.put(0, 2);
    }
    b.put(3, 2).zeros(400);
    assert_eq!(
        av1::parse(&b.bytes(), None).map(|_| ()),
        Err(DescriptorError::TooManyTemplates)
    );

    // A template with nine frame diffs.
    let mut b = structure_start();
    b.put(3, 2).put(2, 2);
    for _ in 0..9 {
        b.put(1, 1).put(0, 4);
    }
    b.put(0, 1).put(0, 8);
    assert_eq!(
        av1::parse(&b.bytes(), None).map(|_| ()),
        Err(DescriptorError::TooManyFrameDiffs)
    );

    // A frame with nine custom frame diffs against a valid structure.
    let structure = TemplateStructure::l1t1();
    let mut b = Bits::default();
    b.put(0x80, 8).put(1, 16).put(0b00010, 5);
    for _ in 0..9 {
        b.put(1, 2).put(0, 4);
    }
    b.put(0, 2);
    assert_eq!(
        av1::parse(&b.bytes(), Some(&structure)).map(|_| ()),
        Err(DescriptorError::TooManyFrameDiffs)
    );
}

fn fields_strategy() -> impl Strategy<Value = DescriptorFields> {
    (
        any::<(bool, bool, u16)>(),
        0u8..15,
        any::<bool>(),
        proptest::option::of(0u32..0x200),
        proptest::option::of(vec(0u8..4, 9)),
        proptest::option::of(vec(1u16..=4096, 0..=8)),
        proptest::option::of(vec(any::<u8>(), 3)),
    )
        .prop_map(
            |((start, end, frame_number), template_index, attach, active, dtis, fdiffs, chains)| {
                DescriptorFields {
                    start_of_frame: start,
                    end_of_frame: end,
                    frame_number,
                    template_index,
                    attach_structure: attach,
                    active_decode_targets: active,
                    custom_dtis: dtis.map(|d| {
                        let d: Vec<_> = d
                            .into_iter()
                            .map(DecodeTargetIndication::from_bits)
                            .collect();
                        DecodeTargetIndications::from_slice(&d).unwrap()
                    }),
                    custom_frame_diffs: fdiffs.map(|f| FrameDiffs::from_slice(&f).unwrap()),
                    custom_chain_diffs: chains.map(|c| ChainDiffs::from_slice(&c).unwrap()),
                }
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in vec(any::<u8>(), 0..160)) {
        let _ = MandatoryFields::parse(&bytes);
        let _ = av1::parse(&bytes, None);
        let known = TemplateStructure::l3t3_key();
        if let Ok((d, new)) = av1::parse(&bytes, Some(&known)) {
            let s = new.as_ref().unwrap_or(&known);
            prop_assert!(d.spatial_id <= s.max_spatial_id());
            prop_assert_eq!(d.dtis.len(), usize::from(s.decode_target_count()));
            prop_assert_eq!(d.chain_diffs.len(), usize::from(s.chain_count()));
            for dt in 0..40 {
                let _ = (d.is_part_of(dt), d.is_switch_point(dt), s.decode_target_layers(dt));
            }
            let _ = d.referenced_frames().count();
        }
    }

    #[test]
    fn reader_survives_arbitrary_packet_sequences(
        packets in vec(vec(any::<u8>(), 0..48), 0..24),
        seed_structure in any::<bool>(),
    ) {
        let mut reader = if seed_structure {
            DependencyDescriptorReader::with_structure(TemplateStructure::l3t3())
        } else {
            DependencyDescriptorReader::new()
        };
        for packet in &packets {
            let before = reader.structure().cloned();
            if reader.read(packet).is_err() {
                prop_assert_eq!(reader.structure(), before.as_ref());
            }
        }
    }

    /// Whatever structure arbitrary bytes carry, writing it back with the same frame
    /// fields reads back the same.
    #[test]
    fn parsed_structures_write_back(bytes in vec(any::<u8>(), 5..120)) {
        // A structure, template id 0 and template id offset 0, so that most inputs get
        // past the template lookup.
        let mut bytes = bytes;
        bytes[0] &= 0xC0;
        bytes[3] = (bytes[3] | 0x80) & 0xF8;
        bytes[4] &= 0x1F;
        if let Ok((d, Some(structure))) = av1::parse(&bytes, None) {
            let fields = DescriptorFields {
                start_of_frame: d.start_of_frame,
                end_of_frame: d.end_of_frame,
                frame_number: d.frame_number,
                template_index: d.template_index,
                attach_structure: true,
                // As sent: the flag is the second extended bit.
                active_decode_targets: d.active_decode_targets.filter(|_| bytes[3] & 0x40 != 0),
                custom_dtis: d.custom_dtis.then_some(d.dtis),
                custom_frame_diffs: d.custom_frame_diffs.then_some(d.frame_diffs),
                custom_chain_diffs: d.custom_chain_diffs.then_some(d.chain_diffs),
            };
            let written = av1::to_vec(&structure, &fields).unwrap();
            // Same bits; only the original's padding (arbitrary here) may differ. Custom
            // frame diffs may have been sent in a wider code than the writer picks.
            if !d.custom_frame_diffs {
                let last = written.len() - 1;
                prop_assert!(written.len() <= bytes.len());
                prop_assert_eq!(&written[..last], &bytes[..last]);
                prop_assert_eq!(written[last] & !bytes[last], 0);
            }
            let (again, again_structure) = av1::parse(&written, None).unwrap();
            prop_assert_eq!(again, d);
            prop_assert_eq!(again_structure, Some(structure));
        }
    }

    #[test]
    fn written_fields_read_back(fields in fields_strategy()) {
        let structure = TemplateStructure::l3t3().with_template_id_offset(50).unwrap();
        let bytes = av1::to_vec(&structure, &fields).unwrap();
        let (d, new) = av1::parse(&bytes, Some(&structure)).unwrap();
        prop_assert_eq!(new.is_some(), fields.attach_structure);
        let template = structure.templates()[usize::from(fields.template_index)];
        prop_assert_eq!(d.frame_number, fields.frame_number);
        prop_assert_eq!(d.template_index, fields.template_index);
        prop_assert_eq!((d.start_of_frame, d.end_of_frame), (fields.start_of_frame, fields.end_of_frame));
        prop_assert_eq!((d.spatial_id, d.temporal_id), (template.spatial_id, template.temporal_id));
        prop_assert_eq!(d.dtis, fields.custom_dtis.unwrap_or(template.dtis));
        prop_assert_eq!(d.frame_diffs, fields.custom_frame_diffs.unwrap_or(template.frame_diffs));
        prop_assert_eq!(d.chain_diffs, fields.custom_chain_diffs.unwrap_or(template.chain_diffs));
        let expected_active = fields.active_decode_targets
            .or(fields.attach_structure.then_some(0x1FF));
        prop_assert_eq!(d.active_decode_targets, expected_active);
    }
}
