//! Behaviour of the per-receiver video allocation (last-N, layer choice, bandwidth).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use relais_conference::allocation::{
    allocate, Allocation, LayerDescription, ReceiverConstraints, ReceiverConstraintsUpdate,
    SourceDescription, VideoConstraints, VideoType, MAX_OVERSEND_BPS,
};
use relais_conference::EndpointId;

const FRAME_RATES: [f64; 3] = [7.5, 15.0, 30.0];

/// Simulcast L1T3 at 180p/360p/720p; `bitrates[encoding]` are the per-temporal-layer costs.
fn simulcast(bitrates: [[u64; 3]; 3]) -> Vec<LayerDescription> {
    let mut layers = Vec::new();
    for (encoding, (height, rates)) in [180, 360, 720].into_iter().zip(bitrates).enumerate() {
        for (temporal, (frame_rate, bitrate_bps)) in FRAME_RATES.into_iter().zip(rates).enumerate()
        {
            layers.push(LayerDescription {
                encoding: encoding as u8,
                temporal: temporal as u8,
                height,
                frame_rate,
                bitrate_bps,
                active: true,
            });
        }
    }
    layers
}

/// A typical camera: 180p up to 150 kbit/s, 360p up to 500 kbit/s, 720p up to 1.5 Mbit/s.
fn camera_layers() -> Vec<LayerDescription> {
    simulcast([
        [50_000, 100_000, 150_000],
        [200_000, 350_000, 500_000],
        [600_000, 1_000_000, 1_500_000],
    ])
}

/// One layer per resolution, no temporal scalability.
fn single_temporal(layers: &[(u16, u64)]) -> Vec<LayerDescription> {
    layers
        .iter()
        .enumerate()
        .map(|(encoding, &(height, bitrate_bps))| LayerDescription {
            encoding: encoding as u8,
            temporal: 0,
            height,
            frame_rate: 30.0,
            bitrate_bps,
            active: true,
        })
        .collect()
}

fn name(endpoint: u64) -> String {
    format!("e{endpoint}-v0")
}

/// Index of (encoding, temporal) in [`simulcast`] layers.
fn layer(encoding: usize, temporal: usize) -> usize {
    encoding * 3 + temporal
}

fn sources<'a>(
    names: &'a [String],
    owners: &[u64],
    video_type: VideoType,
    layers: &'a [LayerDescription],
) -> Vec<SourceDescription<'a>> {
    owners
        .iter()
        .zip(names)
        .map(|(&owner, name)| SourceDescription {
            name,
            owner: EndpointId(owner),
            video_type,
            layers,
        })
        .collect()
}

fn forwarded(allocation: &Allocation) -> Vec<&str> {
    allocation.forwarded_sources().collect()
}

fn endpoints(ids: &[u64]) -> Vec<EndpointId> {
    ids.iter().copied().map(EndpointId).collect()
}

fn constraints_map(entries: &[(&str, i32)]) -> BTreeMap<String, VideoConstraints> {
    entries
        .iter()
        .map(|&(name, max_height)| {
            (
                name.to_owned(),
                VideoConstraints {
                    max_height,
                    max_frame_rate: -1.0,
                },
            )
        })
        .collect()
}

#[test]
fn issue_scenario_last_n_5_with_one_source_on_stage() {
    // 20 endpoints, 8 of which (1..=8) send simulcast video; the receiver is endpoint 3.
    let layers = camera_layers();
    let senders: Vec<u64> = (1..=8).collect();
    let names: Vec<String> = senders.iter().copied().map(name).collect();
    let sources = sources(&names, &senders, VideoType::Camera, &layers);
    let speaker_order = endpoints(&[
        12, 7, 3, 15, 5, 20, 1, 8, 9, 2, 4, 6, 10, 11, 13, 14, 16, 17, 18, 19,
    ]);
    let mut constraints = ReceiverConstraints::default();
    assert!(constraints.apply(ReceiverConstraintsUpdate {
        last_n: Some(5),
        on_stage_sources: Some(vec![name(2)]),
        constraints: Some(constraints_map(&[("e2-v0", 720)])),
        ..ReceiverConstraintsUpdate::default()
    }));

    for available_bps in [None, Some(100_000_000)] {
        let allocation = allocate(
            EndpointId(3),
            &constraints,
            &sources,
            &speaker_order,
            available_bps,
        );
        // On stage first, then the speakers in order; 4 and 6 are outside last-N.
        assert_eq!(
            forwarded(&allocation),
            ["e2-v0", "e7-v0", "e5-v0", "e1-v0", "e8-v0"]
        );
        assert_eq!(allocation.layer_for("e2-v0"), Some(layer(2, 2)));
        for other in ["e7-v0", "e5-v0", "e1-v0", "e8-v0"] {
            assert_eq!(allocation.layer_for(other), Some(layer(0, 2)), "{other}");
        }
        assert_eq!(allocation.layer_for("e4-v0"), None);
        assert_eq!(allocation.layer_for("e6-v0"), None);
        assert!(allocation.source("e3-v0").is_none(), "own source excluded");
        assert_eq!(allocation.sources.len(), 7);
        let on_stage = allocation.source("e2-v0").unwrap();
        assert!(on_stage.on_stage);
        assert_eq!(on_stage.effective_constraints.max_height, 720);
        assert_eq!(
            allocation.source("e4-v0").unwrap().effective_constraints,
            VideoConstraints::DISABLED
        );
        assert_eq!(allocation.target_bps, 1_500_000 + 4 * 150_000);
        assert!(!allocation.oversending);
    }
}

#[test]
fn partial_updates_keep_previous_values() {
    let mut constraints = ReceiverConstraints::default();
    assert_eq!(constraints.last_n, -1);
    assert_eq!(constraints.default_constraints.max_height, 180);

    assert!(constraints.apply(ReceiverConstraintsUpdate {
        last_n: Some(3),
        selected_sources: Some(vec!["a".into()]),
        on_stage_sources: Some(vec!["b".into()]),
        constraints: Some(constraints_map(&[("b", 720)])),
        assumed_bandwidth_bps: Some(1_000_000),
        ..ReceiverConstraintsUpdate::default()
    }));
    assert!(constraints.apply(ReceiverConstraintsUpdate {
        default_constraints: Some(VideoConstraints {
            max_height: 360,
            max_frame_rate: 15.0,
        }),
        ..ReceiverConstraintsUpdate::default()
    }));
    assert_eq!(constraints.last_n, 3);
    assert_eq!(constraints.selected_sources, ["a"]);
    assert_eq!(constraints.on_stage_sources, ["b"]);
    assert_eq!(constraints.constraints_for("b").max_height, 720);
    assert_eq!(constraints.constraints_for("c").max_height, 360);
    assert_eq!(constraints.assumed_bandwidth_bps, Some(1_000_000));

    // The same values again change nothing; an empty update neither.
    assert!(!constraints.apply(ReceiverConstraintsUpdate {
        last_n: Some(3),
        ..ReceiverConstraintsUpdate::default()
    }));
    assert!(!constraints.apply(ReceiverConstraintsUpdate::default()));

    // A new per-source map replaces the old one; a negative assumed bandwidth clears it.
    assert!(constraints.apply(ReceiverConstraintsUpdate {
        constraints: Some(constraints_map(&[("c", 0)])),
        assumed_bandwidth_bps: Some(-1),
        ..ReceiverConstraintsUpdate::default()
    }));
    assert_eq!(constraints.constraints_for("b").max_height, 360);
    assert_eq!(constraints.constraints_for("c").max_height, 0);
    assert_eq!(constraints.assumed_bandwidth_bps, None);
    assert_eq!(constraints.last_n, 3);
}

#[test]
fn max_height_zero_is_never_sent_and_takes_no_slot() {
    let layers = camera_layers();
    let names: Vec<String> = [1, 2, 3].into_iter().map(name).collect();
    let sources = sources(&names, &[1, 2, 3], VideoType::Camera, &layers);
    let constraints = ReceiverConstraints {
        last_n: 2,
        constraints: constraints_map(&[("e1-v0", 0)]),
        ..ReceiverConstraints::default()
    };
    let allocation = allocate(
        EndpointId(9),
        &constraints,
        &sources,
        &endpoints(&[1, 2, 3]),
        None,
    );
    assert_eq!(forwarded(&allocation), ["e2-v0", "e3-v0"]);
    assert_eq!(allocation.source("e1-v0").unwrap().ideal_layer, None);

    // Even selected and on stage, maxHeight 0 is never sent.
    let constraints = ReceiverConstraints {
        on_stage_sources: vec![name(1)],
        selected_sources: vec![name(1)],
        default_constraints: VideoConstraints::DISABLED,
        constraints: constraints_map(&[("e3-v0", 180)]),
        ..ReceiverConstraints::default()
    };
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], None);
    assert_eq!(forwarded(&allocation), ["e3-v0"]);
}

#[test]
fn disabled_video_takes_no_slot_and_sorts_last() {
    let layers = camera_layers();
    let names: Vec<String> = [1, 2, 3].into_iter().map(name).collect();
    let mut sources = sources(&names, &[1, 2, 3], VideoType::Camera, &layers);
    sources[0].video_type = VideoType::Disabled;
    let constraints = ReceiverConstraints {
        last_n: 2,
        on_stage_sources: vec![name(1)],
        ..ReceiverConstraints::default()
    };
    let allocation = allocate(
        EndpointId(9),
        &constraints,
        &sources,
        &endpoints(&[1, 2, 3]),
        None,
    );
    assert_eq!(forwarded(&allocation), ["e2-v0", "e3-v0"]);
    assert_eq!(allocation.sources.last().unwrap().name, "e1-v0");
}

#[test]
fn last_n_zero_forwards_nothing_and_minus_one_everything() {
    let layers = camera_layers();
    let owners: Vec<u64> = (1..=30).collect();
    let names: Vec<String> = owners.iter().copied().map(name).collect();
    let sources = sources(&names, &owners, VideoType::Camera, &layers);
    let mut constraints = ReceiverConstraints {
        last_n: 0,
        ..ReceiverConstraints::default()
    };
    let allocation = allocate(EndpointId(1), &constraints, &sources, &[], None);
    assert_eq!(forwarded(&allocation).len(), 0);
    assert_eq!(allocation.target_bps, 0);

    constraints.last_n = -1;
    let allocation = allocate(EndpointId(1), &constraints, &sources, &[], None);
    assert_eq!(forwarded(&allocation).len(), 29);
    assert!(allocation
        .sources
        .iter()
        .all(|source| source.layer == Some(layer(0, 2))));
}

#[test]
fn priority_is_on_stage_then_selected_then_speech_then_the_rest() {
    let layers = camera_layers();
    let owners = [1, 2, 3, 4, 5, 6];
    let names: Vec<String> = owners.iter().copied().map(name).collect();
    let sources = sources(&names, &owners, VideoType::Camera, &layers);
    let constraints = ReceiverConstraints {
        selected_sources: vec![name(5), name(6), name(4)],
        on_stage_sources: vec![name(6)],
        ..ReceiverConstraints::default()
    };
    let allocation = allocate(
        EndpointId(9),
        &constraints,
        &sources,
        &endpoints(&[3, 1]),
        None,
    );
    let order: Vec<&str> = allocation.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        order,
        ["e6-v0", "e5-v0", "e4-v0", "e3-v0", "e1-v0", "e2-v0"]
    );
}

#[test]
fn per_source_constraints_and_frame_rate_limits() {
    let layers = camera_layers();
    let names: Vec<String> = [1, 2, 3].into_iter().map(name).collect();
    let sources = sources(&names, &[1, 2, 3], VideoType::Camera, &layers);
    let mut per_source = constraints_map(&[("e1-v0", 360), ("e2-v0", -1)]);
    per_source.insert(
        name(3),
        VideoConstraints {
            max_height: 720,
            max_frame_rate: 15.0,
        },
    );
    let constraints = ReceiverConstraints {
        constraints: per_source,
        ..ReceiverConstraints::default()
    };
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], None);
    assert_eq!(allocation.layer_for("e1-v0"), Some(layer(1, 2)));
    assert_eq!(allocation.layer_for("e2-v0"), Some(layer(2, 2)));
    assert_eq!(allocation.layer_for("e3-v0"), Some(layer(2, 1)));
}

#[test]
fn max_height_is_a_soft_limit() {
    // A sender without simulcast: one 720p layer, and a receiver asking for 180p.
    let layers = single_temporal(&[(720, 1_200_000)]);
    let names = vec![name(1)];
    let sources = sources(&names, &[1], VideoType::Camera, &layers);
    let constraints = ReceiverConstraints::default();
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], None);
    assert_eq!(allocation.layer_for("e1-v0"), Some(0));
    // Only with the bandwidth for it.
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], Some(1_000_000));
    assert_eq!(allocation.layer_for("e1-v0"), None);
    assert_eq!(allocation.source("e1-v0").unwrap().ideal_layer, Some(0));
}

#[test]
fn inactive_layers_are_skipped_and_an_inactive_source_keeps_its_slot() {
    let mut layers = camera_layers();
    // The 720p encoding is suspended.
    for layer in &mut layers[6..] {
        layer.active = false;
        layer.bitrate_bps = 0;
    }
    let mut silent = camera_layers();
    for layer in &mut silent {
        layer.active = false;
    }
    let names: Vec<String> = [1, 2, 3].into_iter().map(name).collect();
    let sources = vec![
        SourceDescription {
            name: &names[0],
            owner: EndpointId(1),
            video_type: VideoType::Camera,
            layers: &layers,
        },
        SourceDescription {
            name: &names[1],
            owner: EndpointId(2),
            video_type: VideoType::Camera,
            layers: &silent,
        },
        SourceDescription {
            name: &names[2],
            owner: EndpointId(3),
            video_type: VideoType::Camera,
            layers: &layers,
        },
    ];
    let constraints = ReceiverConstraints {
        last_n: 2,
        default_constraints: VideoConstraints::UNLIMITED,
        ..ReceiverConstraints::default()
    };
    let allocation = allocate(
        EndpointId(9),
        &constraints,
        &sources,
        &endpoints(&[2, 1, 3]),
        Some(600_000),
    );
    // The silent source takes a slot, as in JVB, and costs nothing until it sends.
    assert_eq!(forwarded(&allocation), ["e2-v0", "e1-v0"]);
    assert_eq!(allocation.layer_for("e2-v0"), Some(layer(2, 2)));
    assert_eq!(allocation.source("e2-v0").unwrap().bitrate_bps, 0);
    // 720p is inactive: the best active layer that fits is 360p/30.
    assert_eq!(allocation.layer_for("e1-v0"), Some(layer(1, 2)));
    assert_eq!(
        allocation.source("e1-v0").unwrap().ideal_layer,
        Some(layer(1, 2))
    );
}

#[test]
fn vp9_svc_layers_are_allocated_like_simulcast() {
    // One SSRC, spatial layers 0..=2 × temporal 0..=2; costs include the lower layers.
    let layers = simulcast([
        [60_000, 110_000, 160_000],
        [250_000, 400_000, 560_000],
        [800_000, 1_200_000, 1_700_000],
    ]);
    let names: Vec<String> = [1, 2].into_iter().map(name).collect();
    let sources = sources(&names, &[1, 2], VideoType::Camera, &layers);
    let constraints = ReceiverConstraints {
        on_stage_sources: vec![name(1)],
        constraints: constraints_map(&[("e1-v0", 720)]),
        ..ReceiverConstraints::default()
    };
    let unlimited = allocate(EndpointId(9), &constraints, &sources, &[], None);
    assert_eq!(unlimited.layer_for("e1-v0"), Some(layer(2, 2)));
    assert_eq!(unlimited.layer_for("e2-v0"), Some(layer(0, 2)));
    let limited = allocate(EndpointId(9), &constraints, &sources, &[], Some(1_000_000));
    assert_eq!(limited.layer_for("e1-v0"), Some(layer(1, 2)));
    assert_eq!(limited.layer_for("e2-v0"), Some(layer(0, 2)));
    assert_eq!(limited.target_bps, 560_000 + 160_000);
}

#[test]
fn bandwidth_on_stage_gets_360p_and_thumbnails_180p() {
    let stage = single_temporal(&[(180, 150_000), (360, 500_000), (720, 1_500_000)]);
    let thumbnail = single_temporal(&[(180, 150_000), (360, 500_000), (720, 1_500_000)]);
    let owners: Vec<u64> = (1..=7).collect();
    let names: Vec<String> = owners.iter().copied().map(name).collect();
    let mut sources = sources(&names, &owners, VideoType::Camera, &thumbnail);
    sources[0].layers = &stage;
    let constraints = ReceiverConstraints {
        on_stage_sources: vec![name(1)],
        constraints: constraints_map(&[("e1-v0", 720)]),
        ..ReceiverConstraints::default()
    };
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], Some(2_000_000));
    assert_eq!(allocation.layer_for("e1-v0"), Some(1));
    for owner in 2..=7 {
        assert_eq!(allocation.layer_for(&name(owner)), Some(0));
    }
    assert_eq!(allocation.target_bps, 500_000 + 6 * 150_000);
    assert_eq!(allocation.ideal_bps, 1_500_000 + 6 * 150_000);

    // Enough for 720p on stage.
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], Some(2_400_000));
    assert_eq!(allocation.layer_for("e1-v0"), Some(2));
}

#[test]
fn bandwidth_gives_lowest_layers_in_priority_order_first() {
    let layers = camera_layers();
    let owners: Vec<u64> = (1..=5).collect();
    let names: Vec<String> = owners.iter().copied().map(name).collect();
    let sources = sources(&names, &owners, VideoType::Camera, &layers);
    let constraints = ReceiverConstraints::default();
    let speaker_order = endpoints(&[5, 4, 3, 2, 1]);

    // 3 × 50 kbit/s fit, the other two get nothing and are not forwarded.
    let allocation = allocate(
        EndpointId(9),
        &constraints,
        &sources,
        &speaker_order,
        Some(160_000),
    );
    assert_eq!(forwarded(&allocation), ["e5-v0", "e4-v0", "e3-v0"]);
    assert!(allocation.target_bps <= 160_000);

    // Then raised a layer at a time, round after round, in priority order.
    let allocation = allocate(
        EndpointId(9),
        &constraints,
        &sources,
        &speaker_order,
        Some(5 * 50_000 + 2 * 50_000),
    );
    let layers: Vec<Option<usize>> = allocation.sources.iter().map(|s| s.layer).collect();
    assert_eq!(layers, [Some(1), Some(1), Some(0), Some(0), Some(0)]);
}

#[test]
fn desktop_on_stage_is_allocated_before_cameras() {
    let desktop = single_temporal(&[(360, 300_000), (720, 800_000), (1080, 1_600_000)]);
    let camera = camera_layers();
    let names: Vec<String> = [1, 2, 3].into_iter().map(name).collect();
    let mut sources = sources(&names, &[1, 2, 3], VideoType::Camera, &camera);
    sources[2].video_type = VideoType::Desktop;
    sources[2].layers = &desktop;
    let constraints = ReceiverConstraints {
        // The camera is listed first, the screen share still gets bandwidth first.
        on_stage_sources: vec![name(1), name(3)],
        default_constraints: VideoConstraints::UNLIMITED,
        ..ReceiverConstraints::default()
    };
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], Some(1_800_000));
    assert_eq!(allocation.layer_for("e3-v0"), Some(2));
    // What is left: the camera on stage and the thumbnail share 200 kbit/s.
    assert_eq!(allocation.layer_for("e1-v0"), Some(layer(0, 2)));
    assert_eq!(allocation.layer_for("e2-v0"), Some(layer(0, 0)));
    assert!(allocation.target_bps <= 1_800_000);
}

#[test]
fn screen_shares_prefer_resolution_and_high_fps_ones_frame_rate() {
    // 720p at 5/15/30 fps and 1080p at 5/15/30 fps.
    let mut layers = Vec::new();
    for (encoding, (height, rates)) in [
        (720, [300_000, 500_000, 700_000]),
        (1080, [600_000, 900_000, 1_300_000]),
    ]
    .into_iter()
    .enumerate()
    {
        for (temporal, (frame_rate, bitrate_bps)) in
            [5.0, 15.0, 30.0].into_iter().zip(rates).enumerate()
        {
            layers.push(LayerDescription {
                encoding: encoding as u8,
                temporal: temporal as u8,
                height,
                frame_rate,
                bitrate_bps,
                active: true,
            });
        }
    }
    let names = vec![name(1)];
    let mut sources = sources(&names, &[1], VideoType::Desktop, &layers);
    let constraints = ReceiverConstraints {
        on_stage_sources: vec![name(1)],
        default_constraints: VideoConstraints::UNLIMITED,
        ..ReceiverConstraints::default()
    };
    // 1080p/5 over 720p/30.
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], Some(700_000));
    assert_eq!(allocation.layer_for("e1-v0"), Some(3));
    // With high frame rate content, 1080p only at 30 fps (1.3 Mbit/s, beyond even the
    // oversend allowance): 720p/30 it is.
    sources[0].video_type = VideoType::DesktopHighFps;
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], Some(700_000));
    assert_eq!(allocation.layer_for("e1-v0"), Some(2));
    // 100 kbit/s more and the oversend allowance reaches 1080p/30.
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], Some(800_000));
    assert_eq!(allocation.layer_for("e1-v0"), Some(5));
    assert!(allocation.oversending);
}

#[test]
fn on_stage_screen_share_first_may_oversend() {
    let scalable = single_temporal(&[(360, 300_000), (1080, 1_400_000)]);
    let single = single_temporal(&[(1080, 3_000_000)]);
    let camera = camera_layers();
    let names: Vec<String> = [1, 2].into_iter().map(name).collect();
    let mut sources = sources(&names, &[1, 2], VideoType::Camera, &camera);
    sources[0].video_type = VideoType::Desktop;
    sources[0].layers = &scalable;
    let constraints = ReceiverConstraints {
        on_stage_sources: vec![name(1)],
        default_constraints: VideoConstraints::UNLIMITED,
        ..ReceiverConstraints::default()
    };
    // 1.4 Mbit/s is within 1 Mbit/s + MAX_OVERSEND_BPS: the 1080p layer, and nothing else.
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], Some(1_000_000));
    assert_eq!(allocation.layer_for("e1-v0"), Some(1));
    assert_eq!(allocation.layer_for("e2-v0"), None);
    assert!(allocation.oversending);
    assert!(allocation.target_bps <= 1_000_000 + MAX_OVERSEND_BPS);

    // A single-layer screen share is sent whatever it costs.
    sources[0].layers = &single;
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], Some(1_000_000));
    assert_eq!(forwarded(&allocation), ["e1-v0"]);
    assert_eq!(allocation.target_bps, 3_000_000);

    // A camera on stage never oversends.
    sources[0].video_type = VideoType::Camera;
    let allocation = allocate(EndpointId(9), &constraints, &sources, &[], Some(1_000_000));
    assert_eq!(forwarded(&allocation), ["e2-v0"]);
    assert!(!allocation.oversending);
}

#[test]
fn assumed_bandwidth_caps_the_estimate() {
    let layers = camera_layers();
    let names = vec![name(1)];
    let sources = sources(&names, &[1], VideoType::Camera, &layers);
    let constraints = ReceiverConstraints {
        default_constraints: VideoConstraints::UNLIMITED,
        assumed_bandwidth_bps: Some(600_000),
        ..ReceiverConstraints::default()
    };
    let without_estimate = allocate(EndpointId(9), &constraints, &sources, &[], None);
    assert_eq!(without_estimate.layer_for("e1-v0"), Some(layer(1, 2)));
    let higher_estimate = allocate(EndpointId(9), &constraints, &sources, &[], Some(5_000_000));
    assert_eq!(higher_estimate.layer_for("e1-v0"), Some(layer(1, 2)));
    let lower_estimate = allocate(EndpointId(9), &constraints, &sources, &[], Some(200_000));
    assert_eq!(lower_estimate.layer_for("e1-v0"), Some(layer(0, 2)));
}

#[test]
fn two_hundred_sources() {
    let layers = camera_layers();
    let owners: Vec<u64> = (0..200).collect();
    let names: Vec<String> = owners.iter().copied().map(name).collect();
    let sources = sources(&names, &owners, VideoType::Camera, &layers);
    let speaker_order: Vec<EndpointId> = owners.iter().rev().copied().map(EndpointId).collect();
    let constraints = ReceiverConstraints {
        last_n: 25,
        selected_sources: vec![name(7)],
        ..ReceiverConstraints::default()
    };
    let allocation = allocate(
        EndpointId(0),
        &constraints,
        &sources,
        &speaker_order,
        Some(2_000_000),
    );
    let forwarded = forwarded(&allocation);
    assert_eq!(forwarded.len(), 25);
    assert_eq!(forwarded[0], "e7-v0");
    assert_eq!(forwarded[1], "e199-v0");
    assert!(allocation.target_bps <= 2_000_000);
}

// ---- properties ----

#[derive(Debug, Clone)]
struct Case {
    sources: Vec<(u64, VideoType, Vec<LayerDescription>)>,
    receiver: u64,
    speaker_order: Vec<u64>,
    constraints: ReceiverConstraints,
    available_bps: Option<u64>,
}

fn video_type() -> impl Strategy<Value = VideoType> {
    prop_oneof![
        4 => Just(VideoType::Camera),
        1 => Just(VideoType::Desktop),
        1 => Just(VideoType::DesktopHighFps),
        1 => Just(VideoType::Disabled),
    ]
}

fn layers() -> impl Strategy<Value = Vec<LayerDescription>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![90u16, 180, 360, 720, 1080]),
            prop::sample::select(vec![-1.0, 0.0, 5.0, 7.5, 15.0, 30.0, 60.0]),
            0u64..3_000_000,
            prop::bool::weighted(0.8),
        ),
        0..9,
    )
    .prop_map(|layers| {
        layers
            .into_iter()
            .enumerate()
            .map(
                |(i, (height, frame_rate, bitrate_bps, active))| LayerDescription {
                    encoding: (i / 3) as u8,
                    temporal: (i % 3) as u8,
                    height,
                    frame_rate,
                    bitrate_bps,
                    active,
                },
            )
            .collect()
    })
}

fn video_constraints() -> impl Strategy<Value = VideoConstraints> {
    (
        prop::sample::select(vec![-1, 0, 100, 180, 360, 720, 2000]),
        prop::sample::select(vec![-1.0, 0.0, 5.0, 15.0, 30.0]),
    )
        .prop_map(|(max_height, max_frame_rate)| VideoConstraints {
            max_height,
            max_frame_rate,
        })
}

fn case() -> impl Strategy<Value = Case> {
    let sources = prop::collection::vec((0u64..6, video_type(), layers()), 0..12);
    let names = prop::collection::vec(0usize..12, 0..4);
    (
        sources,
        0u64..6,
        prop::collection::vec(0u64..6, 0..8),
        -2i32..8,
        names.clone(),
        names,
        video_constraints(),
        prop::collection::vec((0usize..12, video_constraints()), 0..5),
        prop::option::of(0u64..8_000_000),
        prop::option::weighted(0.2, 0u64..8_000_000),
    )
        .prop_map(
            |(
                sources,
                receiver,
                speaker_order,
                last_n,
                selected,
                on_stage,
                default_constraints,
                per_source,
                available_bps,
                assumed_bandwidth_bps,
            )| Case {
                sources,
                receiver,
                speaker_order,
                constraints: ReceiverConstraints {
                    last_n,
                    selected_sources: selected.into_iter().map(|i| format!("s{i}")).collect(),
                    on_stage_sources: on_stage.into_iter().map(|i| format!("s{i}")).collect(),
                    default_constraints,
                    constraints: per_source
                        .into_iter()
                        .map(|(i, c)| (format!("s{i}"), c))
                        .collect(),
                    assumed_bandwidth_bps,
                },
                available_bps,
            },
        )
}

proptest! {
    #[test]
    fn allocation_respects_budget_last_n_and_constraints(case in case()) {
        let names: Vec<String> = (0..case.sources.len()).map(|i| format!("s{i}")).collect();
        let sources: Vec<SourceDescription<'_>> = case
            .sources
            .iter()
            .zip(&names)
            .map(|((owner, video_type, layers), name)| SourceDescription {
                name,
                owner: EndpointId(*owner),
                video_type: *video_type,
                layers,
            })
            .collect();
        let speaker_order: Vec<EndpointId> =
            case.speaker_order.iter().copied().map(EndpointId).collect();
        let receiver = EndpointId(case.receiver);
        let allocation = allocate(
            receiver,
            &case.constraints,
            &sources,
            &speaker_order,
            case.available_bps,
        );

        let others = sources.iter().filter(|s| s.owner != receiver).count();
        prop_assert_eq!(allocation.sources.len(), others);
        let forwarded: Vec<&str> = allocation.forwarded_sources().collect();
        if let Ok(last_n) = usize::try_from(case.constraints.last_n) {
            prop_assert!(forwarded.len() <= last_n);
        }
        let mut total = 0u64;
        for result in &allocation.sources {
            let index: usize = result.name[1..].parse().unwrap();
            let source = &sources[index];
            prop_assert!(source.owner != receiver);
            total += result.bitrate_bps;
            let Some(layer) = result.layer else {
                prop_assert_eq!(result.bitrate_bps, 0);
                continue;
            };
            prop_assert!(result.ideal_layer.is_some());
            prop_assert!(source.video_type != VideoType::Disabled);
            prop_assert!(!case.constraints.constraints_for(source.name).is_disabled());
            let chosen = &source.layers[layer];
            let any_active = source.layers.iter().any(|l| l.active);
            prop_assert!(chosen.active || !any_active);
            let cost = if any_active { chosen.bitrate_bps } else { 0 };
            prop_assert_eq!(result.bitrate_bps, cost);
        }
        prop_assert_eq!(allocation.target_bps, total);

        let budget = match (case.available_bps, case.constraints.assumed_bandwidth_bps) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match budget {
            None => {
                for result in &allocation.sources {
                    prop_assert_eq!(result.layer, result.ideal_layer);
                }
            }
            Some(budget) if total > budget => {
                // Only the documented oversending: the first source, an on-stage screen
                // share, takes it all.
                let first = &allocation.sources[0];
                let index: usize = first.name[1..].parse().unwrap();
                prop_assert!(first.on_stage);
                prop_assert!(sources[index].video_type.is_screen_share());
                prop_assert_eq!(first.bitrate_bps, total);
                prop_assert!(allocation.oversending);
            }
            Some(_) => prop_assert!(!allocation.oversending),
        }
    }
}
