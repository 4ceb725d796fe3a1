//! `parse` never panics on arbitrary input, and what `to_json` writes reads back the same.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use relais_colibri::bridge_channel::{
    parse, BridgeChannelMessage, ConnectionStats, DominantSpeakerEndpointChangeEvent,
    EndpointConnectivityStatusChangeEvent, EndpointMessage, EndpointStats,
    ReceiverAudioSubscription, ReceiverVideoConstraints, SenderSourceConstraints,
    SourceVideoTypeMessage, VideoConstraints, VideoSourceMapping, VideoSourcesMap, VideoType,
    COLIBRI_CLASSES,
};
use serde_json::{Map, Value};

/// Parses; whatever parses must write JSON that reads back to the same message.
fn exercise(text: &str) {
    if let Ok(message) = parse(text) {
        let written = message.to_json();
        assert_eq!(parse(&written).as_ref(), Ok(&message), "written: {written}");
    }
}

/// Pieces of bridge-channel JSON, to get past the first checks more often than noise does.
fn json_token() -> impl Strategy<Value = String> {
    let class = proptest::sample::select(COLIBRI_CLASSES.to_vec())
        .prop_map(|class| format!(r#""colibriClass":"{class}""#));
    prop_oneof![
        class,
        proptest::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "null",
            "true",
            "false",
            "-1",
            "0",
            "1.5",
            "1e400",
            "4294967296",
            "\"to\"",
            "\"from\"",
            "\"\"",
            "\"mode\"",
            "\"All\"",
            "\"list\"",
            "\"all\"",
            "\"include\"",
            "\"maxHeight\"",
            "\"constraints\"",
            "\"mappedSources\"",
            "\"videoType\"",
            "\"CAMERA\"",
            "\"active\"",
            "\"true\"",
            "\\u0000",
            " ",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9\"\\\\]{0,4}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9-]{0,8}", any::<String>()]
}

fn names() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(name(), 0..4)
}

fn video_type() -> impl Strategy<Value = VideoType> {
    proptest::sample::select(vec![
        VideoType::Camera,
        VideoType::Desktop,
        VideoType::DesktopHighFps,
        VideoType::Disabled,
        VideoType::None,
    ])
}

fn video_constraints() -> impl Strategy<Value = VideoConstraints> {
    // Halves are exact in binary, so the float survives writing and reading unchanged.
    (
        -1i32..2200,
        proptest::option::of((0u32..121).prop_map(|halves| f64::from(halves) / 2.0)),
    )
        .prop_map(|(max_height, max_frame_rate)| VideoConstraints {
            max_height,
            max_frame_rate,
        })
}

fn free_fields() -> impl Strategy<Value = Map<String, Value>> {
    let value = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        names().prop_map(Value::from),
    ];
    proptest::collection::btree_map(
        "[a-zA-Z_]{1,10}".prop_filter("reserved", |key| {
            !matches!(key.as_str(), "colibriClass" | "to" | "from")
        }),
        value,
        0..4,
    )
    .prop_map(|fields| fields.into_iter().collect())
}

fn message() -> impl Strategy<Value = BridgeChannelMessage> {
    prop_oneof![
        Just(BridgeChannelMessage::ClientHello),
        (name(), proptest::option::of(name()), free_fields()).prop_map(|(to, from, other)| {
            BridgeChannelMessage::EndpointMessage(EndpointMessage {
                to,
                from,
                other_fields: other,
            })
        }),
        (proptest::option::of(name()), free_fields()).prop_map(|(from, other)| {
            BridgeChannelMessage::EndpointStats(EndpointStats {
                from,
                other_fields: other,
            })
        }),
        (
            proptest::option::of(-1i32..50),
            proptest::option::of(names()),
            proptest::option::of(names()),
            proptest::option::of(video_constraints()),
            proptest::option::of(proptest::collection::btree_map(
                name(),
                video_constraints(),
                0..4
            )),
            proptest::option::of(any::<i64>()),
        )
            .prop_map(
                |(last_n, selected, on_stage, default, constraints, bandwidth)| {
                    BridgeChannelMessage::ReceiverVideoConstraints(ReceiverVideoConstraints {
                        last_n,
                        selected_sources: selected,
                        on_stage_sources: on_stage,
                        default_constraints: default,
                        constraints: constraints.map(BTreeMap::from_iter),
                        assumed_bandwidth_bps: bandwidth,
                    })
                }
            ),
        (name(), proptest::option::of(names()), any::<bool>()).prop_map(
            |(speaker, previous, silence)| {
                BridgeChannelMessage::DominantSpeakerEndpointChangeEvent(
                    DominantSpeakerEndpointChangeEvent {
                        dominant_speaker_endpoint: speaker,
                        previous_speakers: previous,
                        silence,
                    },
                )
            }
        ),
        (name(), any::<i32>()).prop_map(|(source_name, max_height)| {
            BridgeChannelMessage::SenderSourceConstraints(SenderSourceConstraints {
                source_name,
                max_height,
            })
        }),
        any::<u64>().prop_map(|bandwidth| {
            BridgeChannelMessage::ConnectionStats(ConnectionStats {
                estimated_downlink_bandwidth: bandwidth,
            })
        }),
        (name(), any::<bool>()).prop_map(|(endpoint, active)| {
            BridgeChannelMessage::EndpointConnectivityStatusChangeEvent(
                EndpointConnectivityStatusChangeEvent { endpoint, active },
            )
        }),
        (name(), video_type(), proptest::option::of(name())).prop_map(
            |(source_name, video_type, endpoint_id)| {
                BridgeChannelMessage::SourceVideoTypeMessage(SourceVideoTypeMessage {
                    source_name,
                    video_type,
                    endpoint_id,
                })
            }
        ),
        proptest::collection::vec(
            (
                name(),
                proptest::option::of(name()),
                any::<u32>(),
                any::<u32>(),
                video_type()
            ),
            0..3
        )
        .prop_map(|mappings| {
            BridgeChannelMessage::VideoSourcesMap(VideoSourcesMap {
                mapped_sources: mappings
                    .into_iter()
                    .map(
                        |(source, owner, ssrc, rtx, video_type)| VideoSourceMapping {
                            source,
                            owner,
                            ssrc,
                            rtx,
                            video_type,
                        },
                    )
                    .collect(),
            })
        }),
        prop_oneof![
            Just(ReceiverAudioSubscription::All),
            Just(ReceiverAudioSubscription::None),
            names().prop_map(ReceiverAudioSubscription::Include),
            names().prop_map(ReceiverAudioSubscription::Exclude),
            (any::<bool>(), names(), names()).prop_map(|(all, include, exclude)| {
                ReceiverAudioSubscription::Custom {
                    all,
                    include,
                    exclude,
                }
            }),
        ]
        .prop_map(BridgeChannelMessage::ReceiverAudioSubscription),
    ]
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_strings(text in any::<String>()) {
        exercise(&text);
    }

    #[test]
    fn parse_never_panics_on_json_like_input(
        tokens in proptest::collection::vec(json_token(), 0..40)
    ) {
        exercise(&tokens.concat());
        exercise(&format!("{{{}}}", tokens.join(",")));
    }

    #[test]
    fn written_messages_read_back_the_same(message in message()) {
        let written = message.to_json();
        let class_first = written.starts_with(r#"{"colibriClass":""#);
        prop_assert!(class_first, "colibriClass must come first: {}", written);
        prop_assert_eq!(parse(&written), Ok(message));
    }

    #[test]
    fn truncated_messages_never_panic(message in message(), cut in any::<prop::sample::Index>()) {
        let written = message.to_json();
        let boundaries: Vec<usize> =
            (0..=written.len()).filter(|at| written.is_char_boundary(*at)).collect();
        exercise(&written[..*cut.get(&boundaries)]);
    }
}
