//! Bridge channel messages beyond the fixtures: the exact JSON the bridge sends, field-named
//! errors for wrong types, and hostile input (size, nesting, duplicates).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::collections::BTreeMap;

use relais_colibri::bridge_channel::{
    parse, AudioSourceMapping, AudioSourcesMap, BridgeChannelError, BridgeChannelMessage,
    ConnectionStats, DominantSpeakerEndpointChangeEvent, EndpointConnectivityStatusChangeEvent,
    EndpointMessage, ForwardedSources, ReceiverAudioSubscription, ReceiverVideoConstraints,
    SenderSourceConstraints, ServerHello, VideoConstraints, VideoSourceMapping, VideoSourcesMap,
    VideoType, COLIBRI_CLASSES, MAX_MESSAGE_BYTES,
};
use serde_json::Value;

fn invalid(class: &'static str, field: &str, expected: &'static str) -> BridgeChannelError {
    BridgeChannelError::InvalidField {
        class,
        field: field.to_owned(),
        expected,
    }
}

fn invalid_field_of(text: &str) -> (String, String) {
    match parse(text) {
        Err(BridgeChannelError::InvalidField { class, field, .. }) => (class.to_owned(), field),
        other => panic!("expected InvalidField for {text}, got {other:?}"),
    }
}

// Server → client: byte-exact where JVB writes by hand, field names everywhere.

#[test]
fn server_hello_leaves_out_version_unless_set() {
    let hello = BridgeChannelMessage::ServerHello(ServerHello::default());
    assert_eq!(hello.to_json(), r#"{"colibriClass":"ServerHello"}"#);
    let versioned = BridgeChannelMessage::ServerHello(ServerHello {
        version: Some("2.3-1".to_owned()),
    });
    assert_eq!(
        versioned.to_json(),
        r#"{"colibriClass":"ServerHello","version":"2.3-1"}"#
    );
    assert_eq!(parse(&versioned.to_json()), Ok(versioned));
    assert_eq!(
        parse(r#"{"colibriClass":"ClientHello"}"#),
        Ok(BridgeChannelMessage::ClientHello)
    );
}

#[test]
fn bridge_messages_are_written_as_jvb_writes_them() {
    let cases: Vec<(BridgeChannelMessage, &str)> = vec![
        (
            BridgeChannelMessage::EndpointConnectivityStatusChangeEvent(
                EndpointConnectivityStatusChangeEvent {
                    endpoint: "abcdabcd".to_owned(),
                    active: true,
                },
            ),
            r#"{"colibriClass":"EndpointConnectivityStatusChangeEvent","endpoint":"abcdabcd","active":"true"}"#,
        ),
        (
            BridgeChannelMessage::DominantSpeakerEndpointChangeEvent(
                DominantSpeakerEndpointChangeEvent {
                    dominant_speaker_endpoint: "d".to_owned(),
                    previous_speakers: Some(vec!["p1".to_owned(), "p2".to_owned()]),
                    silence: false,
                },
            ),
            r#"{"colibriClass":"DominantSpeakerEndpointChangeEvent","dominantSpeakerEndpoint":"d","previousSpeakers":["p1","p2"],"silence":false}"#,
        ),
        (
            BridgeChannelMessage::DominantSpeakerEndpointChangeEvent(
                DominantSpeakerEndpointChangeEvent {
                    dominant_speaker_endpoint: "d".to_owned(),
                    previous_speakers: None,
                    silence: true,
                },
            ),
            r#"{"colibriClass":"DominantSpeakerEndpointChangeEvent","dominantSpeakerEndpoint":"d","silence":true}"#,
        ),
        (
            BridgeChannelMessage::ForwardedSources(ForwardedSources {
                forwarded_sources: vec!["s1".to_owned(), "s2".to_owned()],
            }),
            r#"{"colibriClass":"ForwardedSources","forwardedSources":["s1","s2"]}"#,
        ),
        (
            BridgeChannelMessage::SenderSourceConstraints(SenderSourceConstraints {
                source_name: "s1".to_owned(),
                max_height: 1080,
            }),
            r#"{"colibriClass":"SenderSourceConstraints","sourceName":"s1","maxHeight":1080}"#,
        ),
        (
            BridgeChannelMessage::ConnectionStats(ConnectionStats {
                estimated_downlink_bandwidth: 2_500_000,
            }),
            r#"{"colibriClass":"ConnectionStats","estimatedDownlinkBandwidth":2500000}"#,
        ),
        (
            BridgeChannelMessage::VideoSourcesMap(VideoSourcesMap {
                mapped_sources: vec![VideoSourceMapping {
                    source: "ep1-v0".to_owned(),
                    owner: None,
                    ssrc: 4_294_967_295,
                    rtx: 1,
                    video_type: VideoType::Camera,
                }],
            }),
            r#"{"colibriClass":"VideoSourcesMap","mappedSources":[{"source":"ep1-v0","owner":null,"ssrc":4294967295,"rtx":1,"videoType":"CAMERA"}]}"#,
        ),
        (
            BridgeChannelMessage::AudioSourcesMap(AudioSourcesMap {
                mapped_sources: vec![AudioSourceMapping {
                    source: "ep1-a0".to_owned(),
                    owner: Some("ep1".to_owned()),
                    ssrc: 7,
                }],
            }),
            r#"{"colibriClass":"AudioSourcesMap","mappedSources":[{"source":"ep1-a0","owner":"ep1","ssrc":7}]}"#,
        ),
    ];
    for (message, json) in cases {
        assert_eq!(message.to_json(), json);
        assert_eq!(parse(json).as_ref(), Ok(&message), "{json}");
    }
}

#[test]
fn forwarded_endpoint_message_keeps_its_payload_and_gains_from() {
    let text = r#"{"colibriClass":"EndpointMessage","msgPayload":{"type":"face-box","faceBox":{"left":33,"right":64,"width":31}},"to":""}"#;
    let BridgeChannelMessage::EndpointMessage(mut message) = parse(text).unwrap() else {
        panic!("an EndpointMessage");
    };
    message.from = Some("3b213301".to_owned());
    let forwarded = BridgeChannelMessage::EndpointMessage(message).to_json();
    assert!(
        forwarded.starts_with(r#"{"colibriClass":"EndpointMessage","to":"","from":"3b213301","#)
    );
    let written: Value = serde_json::from_str(&forwarded).unwrap();
    let original: Value = serde_json::from_str(text).unwrap();
    assert_eq!(written["msgPayload"], original["msgPayload"]);
    assert_eq!(written["from"], "3b213301");
}

#[test]
fn a_client_supplied_from_is_read_so_the_bridge_can_overwrite_it() {
    let BridgeChannelMessage::EndpointStats(stats) =
        parse(r#"{"colibriClass":"EndpointStats","from":"spoofed","bitrate":{"up":1}}"#).unwrap()
    else {
        panic!("EndpointStats");
    };
    assert_eq!(stats.from.as_deref(), Some("spoofed"));
    assert_eq!(stats.other_fields.len(), 1);
}

#[test]
fn every_class_is_known_and_reported() {
    assert_eq!(COLIBRI_CLASSES.len(), 16);
    for class in COLIBRI_CLASSES {
        // Only ClientHello is complete with no field; the others fail on a field, not the class.
        let result = parse(&format!(r#"{{"colibriClass":"{class}"}}"#));
        assert!(
            !matches!(result, Err(BridgeChannelError::UnknownClass(_))),
            "{class}"
        );
        if let Ok(message) = result {
            assert_eq!(message.colibri_class(), class);
        }
    }
    for legacy in [
        "SelectedEndpointsChangedEvent",
        "AddReceiver",
        "clienthello",
    ] {
        assert_eq!(
            parse(&format!(r#"{{"colibriClass":"{legacy}"}}"#)),
            Err(BridgeChannelError::UnknownClass(legacy.to_owned()))
        );
    }
}

// Receiver video constraints: partial updates stay partial.

#[test]
fn receiver_video_constraints_keep_absent_fields_absent() {
    let only_on_stage = parse(
        r#"{"colibriClass":"ReceiverVideoConstraints","onStageSources":["a-v0"],"lastN":null}"#,
    )
    .unwrap();
    assert_eq!(
        only_on_stage,
        BridgeChannelMessage::ReceiverVideoConstraints(ReceiverVideoConstraints {
            on_stage_sources: Some(vec!["a-v0".to_owned()]),
            ..Default::default()
        })
    );
    assert_eq!(
        only_on_stage.to_json(),
        r#"{"colibriClass":"ReceiverVideoConstraints","onStageSources":["a-v0"]}"#
    );

    let everything = r#"{"colibriClass":"ReceiverVideoConstraints","lastN":-1,"selectedSources":["b-v0"],"onStageSources":[],"defaultConstraints":{"maxHeight":180},"constraints":{"a-v0":{"maxHeight":-1,"maxFrameRate":15.5},"b-v0":{"maxHeight":360,"unknown":true}},"assumedBandwidthBps":10000000}"#;
    let BridgeChannelMessage::ReceiverVideoConstraints(parsed) = parse(everything).unwrap() else {
        panic!("ReceiverVideoConstraints");
    };
    assert_eq!(
        parsed,
        ReceiverVideoConstraints {
            last_n: Some(-1),
            selected_sources: Some(vec!["b-v0".to_owned()]),
            on_stage_sources: Some(vec![]),
            default_constraints: Some(VideoConstraints::max_height(180)),
            constraints: Some(BTreeMap::from([
                (
                    "a-v0".to_owned(),
                    VideoConstraints {
                        max_height: -1,
                        max_frame_rate: Some(15.5)
                    }
                ),
                ("b-v0".to_owned(), VideoConstraints::max_height(360)),
            ])),
            assumed_bandwidth_bps: Some(10_000_000),
        }
    );
    let message = BridgeChannelMessage::ReceiverVideoConstraints(parsed);
    assert_eq!(parse(&message.to_json()), Ok(message));
}

#[test]
fn constraint_errors_name_the_nested_field() {
    assert_eq!(
        invalid_field_of(
            r#"{"colibriClass":"ReceiverVideoConstraints","constraints":{"ep1":{"maxHeight":"720"}}}"#
        ),
        (
            "ReceiverVideoConstraints".to_owned(),
            "constraints.ep1.maxHeight".to_owned()
        )
    );
    assert_eq!(
        parse(
            r#"{"colibriClass":"ReceiverVideoConstraints","defaultConstraints":{"maxFrameRate":30}}"#
        ),
        Err(BridgeChannelError::MissingField {
            class: "ReceiverVideoConstraints",
            field: "defaultConstraints.maxHeight".to_owned()
        })
    );
    assert_eq!(
        invalid_field_of(r#"{"colibriClass":"ReceiverVideoConstraints","constraints":[]}"#).1,
        "constraints"
    );
    assert_eq!(
        invalid_field_of(r#"{"colibriClass":"ReceiverVideoConstraints","lastN":"3"}"#).1,
        "lastN"
    );
    assert_eq!(
        invalid_field_of(r#"{"colibriClass":"ReceiverVideoConstraints","lastN":3.5}"#).1,
        "lastN"
    );
    assert_eq!(
        invalid_field_of(r#"{"colibriClass":"ReceiverVideoConstraints","lastN":4294967296}"#).1,
        "lastN"
    );
    assert_eq!(
        invalid_field_of(
            r#"{"colibriClass":"ReceiverVideoConstraints","selectedSources":["a",1]}"#
        )
        .1,
        "selectedSources"
    );
    assert_eq!(
        VideoConstraints::parse(r#"{"maxHeight":1,"maxHeight":2}"#),
        Err(BridgeChannelError::DuplicateKey("maxHeight".to_owned()))
    );
    assert_eq!(
        VideoConstraints::parse("[]"),
        Err(BridgeChannelError::NotAnObject)
    );
}

// Audio subscriptions.

#[test]
fn audio_subscription_forms_are_not_mixed() {
    let class = "ReceiverAudioSubscription";
    assert_eq!(
        parse(r#"{"colibriClass":"ReceiverAudioSubscription","mode":"All","all":false}"#),
        Err(invalid(
            class,
            "mode",
            "absent when `all`, `include` or `exclude` is given"
        ))
    );
    assert_eq!(
        parse(r#"{"colibriClass":"ReceiverAudioSubscription","list":["a"]}"#),
        Err(invalid(class, "list", "absent when there is no `mode`"))
    );
    assert_eq!(
        invalid_field_of(r#"{"colibriClass":"ReceiverAudioSubscription","mode":"all"}"#).1,
        "mode"
    );
    assert_eq!(
        invalid_field_of(
            r#"{"colibriClass":"ReceiverAudioSubscription","mode":"Include","list":"a"}"#
        )
        .1,
        "list"
    );
    assert_eq!(
        invalid_field_of(r#"{"colibriClass":"ReceiverAudioSubscription","all":"true"}"#).1,
        "all"
    );
}

#[test]
fn audio_subscription_meaning_follows_jvb() {
    let names = |list: &[&str]| {
        list.iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>()
    };
    assert!(ReceiverAudioSubscription::All.wants("x"));
    assert!(!ReceiverAudioSubscription::None.wants("x"));
    assert!(ReceiverAudioSubscription::Include(names(&["x"])).wants("x"));
    assert!(!ReceiverAudioSubscription::Include(names(&["x"])).wants("y"));
    assert!(!ReceiverAudioSubscription::Exclude(names(&["x"])).wants("x"));
    assert!(ReceiverAudioSubscription::Exclude(names(&["x"])).wants("y"));
    let custom = ReceiverAudioSubscription::Custom {
        all: true,
        include: names(&["synthetic"]),
        exclude: names(&["muted"]),
    };
    assert!(custom.wants("anyone"));
    assert!(custom.wants("synthetic"));
    assert!(!custom.wants("muted"));
    let only = ReceiverAudioSubscription::Custom {
        all: false,
        include: names(&["a", "b"]),
        exclude: names(&["b"]),
    };
    assert!(only.wants("a"));
    assert!(!only.wants("b"));
    assert!(!only.wants("c"));
}

// Field types and values.

#[test]
fn wrong_field_types_are_refused_naming_the_field() {
    let cases = [
        (
            r#"{"colibriClass":5}"#,
            ("BridgeChannelMessage", "colibriClass"),
        ),
        (
            r#"{"colibriClass":"EndpointMessage","to":5}"#,
            ("EndpointMessage", "to"),
        ),
        (
            r#"{"colibriClass":"EndpointMessage","to":null}"#,
            ("EndpointMessage", "to"),
        ),
        (
            r#"{"colibriClass":"EndpointMessage","to":"","from":[]}"#,
            ("EndpointMessage", "from"),
        ),
        (
            r#"{"colibriClass":"EndpointStats","from":{}}"#,
            ("EndpointStats", "from"),
        ),
        (
            r#"{"colibriClass":"ServerHello","version":2}"#,
            ("ServerHello", "version"),
        ),
        (
            r#"{"colibriClass":"EndpointConnectivityStatusChangeEvent","endpoint":"a","active":true}"#,
            ("EndpointConnectivityStatusChangeEvent", "active"),
        ),
        (
            r#"{"colibriClass":"EndpointConnectivityStatusChangeEvent","endpoint":"a","active":"yes"}"#,
            ("EndpointConnectivityStatusChangeEvent", "active"),
        ),
        (
            r#"{"colibriClass":"DominantSpeakerEndpointChangeEvent","dominantSpeakerEndpoint":"a","silence":"no"}"#,
            ("DominantSpeakerEndpointChangeEvent", "silence"),
        ),
        (
            r#"{"colibriClass":"SourceVideoTypeMessage","sourceName":"a","videoType":"SCREEN"}"#,
            ("SourceVideoTypeMessage", "videoType"),
        ),
        (
            r#"{"colibriClass":"ConnectionStats","estimatedDownlinkBandwidth":-1}"#,
            ("ConnectionStats", "estimatedDownlinkBandwidth"),
        ),
        (
            r#"{"colibriClass":"LastNChangedEvent","lastN":true}"#,
            ("LastNChangedEvent", "lastN"),
        ),
        (
            r#"{"colibriClass":"VideoSourcesMap","mappedSources":[{"source":"a","owner":"e","ssrc":1,"rtx":2,"videoType":"CAMERA"},{"source":"b","owner":"e","ssrc":4294967296,"rtx":2,"videoType":"CAMERA"}]}"#,
            ("VideoSourcesMap", "mappedSources[1].ssrc"),
        ),
        (
            r#"{"colibriClass":"AudioSourcesMap","mappedSources":[7]}"#,
            ("AudioSourcesMap", "mappedSources[0]"),
        ),
        (
            r#"{"colibriClass":"AudioSourcesMap","mappedSources":{}}"#,
            ("AudioSourcesMap", "mappedSources"),
        ),
    ];
    for (text, (class, field)) in cases {
        assert_eq!(
            invalid_field_of(text),
            (class.to_owned(), field.to_owned()),
            "{text}"
        );
    }
    assert_eq!(
        parse(r#"{"colibriClass":"EndpointMessage"}"#),
        Err(BridgeChannelError::MissingField {
            class: "EndpointMessage",
            field: "to".to_owned()
        })
    );
    assert_eq!(
        parse(
            r#"{"colibriClass":"VideoSourcesMap","mappedSources":[{"source":"a","ssrc":1,"videoType":"CAMERA"}]}"#
        ),
        Err(BridgeChannelError::MissingField {
            class: "VideoSourcesMap",
            field: "mappedSources[0].rtx".to_owned()
        })
    );
}

#[test]
fn video_types_read_case_insensitively() {
    for name in ["none", "NONE", "None", "nOnE"] {
        let text = format!(r#"{{"colibriClass":"VideoTypeMessage","videoType":"{name}"}}"#);
        let BridgeChannelMessage::VideoTypeMessage(message) = parse(&text).unwrap() else {
            panic!("VideoTypeMessage");
        };
        assert_eq!(message.video_type, VideoType::None);
        assert!(!message.video_type.is_enabled());
    }
    assert_eq!("disabled".parse(), Ok(VideoType::Disabled));
    assert_eq!(VideoType::DesktopHighFps.to_string(), "DESKTOP_HIGH_FPS");
}

#[test]
fn unknown_fields_of_typed_messages_are_ignored() {
    assert_eq!(
        parse(r#"{"colibriClass":"LastNChangedEvent","lastN":5,"future":{"x":[1]}}"#),
        parse(r#"{"colibriClass":"LastNChangedEvent","lastN":5}"#)
    );
}

// Hostile input.

#[test]
fn non_objects_and_broken_json_are_refused() {
    for text in ["[]", "\"ClientHello\"", "null", "5", "true"] {
        assert_eq!(parse(text), Err(BridgeChannelError::NotAnObject), "{text}");
    }
    for text in [
        "",
        "{invalid json",
        "{\"colibriClass\":\"ClientHello\"",
        "{\"colibriClass\":\"ClientHello\"} {}",
        "{\"colibriClass\":\"ClientHello\",}",
        "{'colibriClass':'ClientHello'}",
        "{\"a\":1e999}",
        "\u{feff}{}",
    ] {
        assert!(
            matches!(parse(text), Err(BridgeChannelError::Malformed(_))),
            "{text:?}: {:?}",
            parse(text)
        );
    }
    assert_eq!(
        parse("  {\"colibriClass\":\"ClientHello\"}\n"),
        Ok(BridgeChannelMessage::ClientHello)
    );
}

#[test]
fn duplicate_keys_are_refused_at_any_depth() {
    assert_eq!(
        parse(r#"{"colibriClass":"EndpointMessage","to":"","msgPayload":{"a":[{"k":1,"k":1}]}}"#),
        Err(BridgeChannelError::DuplicateKey("k".to_owned()))
    );
    assert_eq!(
        parse(
            r#"{"colibriClass":"ReceiverVideoConstraints","constraints":{"s":{"maxHeight":1},"s":{"maxHeight":2}}}"#
        ),
        Err(BridgeChannelError::DuplicateKey("s".to_owned()))
    );
    // An escaped key is the same key.
    assert_eq!(
        parse(r#"{"colibriClass":"EndpointMessage","to":"a","t\u006f":"b"}"#),
        Err(BridgeChannelError::DuplicateKey("to".to_owned()))
    );
}

/// An EndpointMessage of exactly `size` bytes.
fn endpoint_message_of_size(size: usize) -> String {
    let empty = r#"{"colibriClass":"EndpointMessage","to":"","p":""}"#;
    let padding = "x".repeat(size - empty.len());
    format!(r#"{{"colibriClass":"EndpointMessage","to":"","p":"{padding}"}}"#)
}

#[test]
fn messages_over_the_size_limit_are_refused_before_parsing() {
    let at_limit = endpoint_message_of_size(MAX_MESSAGE_BYTES);
    assert!(parse(&at_limit).is_ok());
    let over = endpoint_message_of_size(MAX_MESSAGE_BYTES + 1);
    assert_eq!(
        parse(&over),
        Err(BridgeChannelError::TooLarge {
            size: MAX_MESSAGE_BYTES + 1,
            max: MAX_MESSAGE_BYTES
        })
    );
    // Not even looked at: broken JSON over the limit is TooLarge, not Malformed.
    assert!(matches!(
        parse(&"[".repeat(MAX_MESSAGE_BYTES + 1)),
        Err(BridgeChannelError::TooLarge { .. })
    ));
}

fn nested_payload(depth: usize, open: &str, close: &str) -> String {
    format!(
        r#"{{"colibriClass":"EndpointMessage","to":"","p":{}0{}}}"#,
        open.repeat(depth),
        close.repeat(depth)
    )
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    // Within the reader's limit (128 levels, the message object being one): carried through.
    let deep = nested_payload(120, "[", "]");
    let message = parse(&deep).unwrap();
    assert_eq!(parse(&message.to_json()), Ok(message));
    // Far deeper, still under the size cap: refused as malformed, no stack overflow.
    for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
        let depth = (MAX_MESSAGE_BYTES - 100) / (open.len() + close.len());
        let text = nested_payload(depth, open, close);
        assert!(text.len() <= MAX_MESSAGE_BYTES);
        assert!(
            matches!(parse(&text), Err(BridgeChannelError::Malformed(_))),
            "depth {depth} of {open}"
        );
    }
    assert!(matches!(
        parse(&"[".repeat(MAX_MESSAGE_BYTES)),
        Err(BridgeChannelError::Malformed(_))
    ));
}

#[test]
fn strings_with_escapes_survive_a_round_trip() {
    let to = "line\nbreak \"quoted\" back\\slash \u{0001} é 😀 \u{2028}";
    let message = BridgeChannelMessage::EndpointMessage(EndpointMessage {
        to: to.to_owned(),
        from: Some("\t".to_owned()),
        other_fields: serde_json::from_str(r#"{"k\"ey":"v\u0000"}"#).unwrap(),
    });
    assert_eq!(parse(&message.to_json()), Ok(message));
}
