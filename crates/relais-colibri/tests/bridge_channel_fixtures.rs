//! Jitsi's own bridge-channel messages (jitsi-videobridge's BridgeChannelMessageTest): the
//! accepted ones parse and write back to equivalent JSON, the rejected ones are refused for
//! the reason JVB refuses them.
//!
//! "Equivalent" ignores key order and applies the normalisations documented in
//! `relais_colibri::bridge_channel`: numbers compare as numbers (`30` = `30.0`) and
//! `videoType` compares case-insensitively (it is written upper-case).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use relais_colibri::bridge_channel::{
    parse, BridgeChannelError, BridgeChannelMessage, ReceiverAudioSubscription, VideoConstraints,
    VideoType,
};
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bridge-channel")
}

/// The files of one fixture folder, by name, sorted.
fn read_folder(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("reading {}: {error}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect()
}

fn fixture_texts(folder: &str) -> BTreeMap<String, String> {
    read_folder(&fixtures_dir().join(folder))
        .into_iter()
        .map(|(name, bytes)| (name, String::from_utf8(bytes).unwrap()))
        .collect()
}

/// Numbers as f64 and `videoType` upper-cased, recursively.
fn normalise(value: &Value) -> Value {
    match value {
        Value::Number(number) => Value::from(number.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("videoType", Value::String(name)) => Value::String(name.to_uppercase()),
                        _ => normalise(value),
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn assert_equivalent(name: &str, original: &str, written: &str) {
    let original: Value = serde_json::from_str(original).unwrap();
    let written: Value = serde_json::from_str(written)
        .unwrap_or_else(|error| panic!("{name}: written JSON does not parse: {error}"));
    assert_eq!(
        normalise(&written),
        normalise(&original),
        "{name}: written JSON differs from the fixture"
    );
}

#[test]
fn copies_match_the_shared_fixtures() {
    let shared_root = std::env::var_os("RELAIS_SHARED").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    );
    let shared = shared_root.join("fixtures/bridge-channel");
    if !shared.is_dir() {
        println!(
            "note: {} not found (set RELAIS_SHARED); skipping the fixture copy check",
            shared.display()
        );
        return;
    }
    for folder in ["accepted", "rejected"] {
        assert_eq!(
            read_folder(&fixtures_dir().join(folder)),
            read_folder(&shared.join(folder)),
            "tests/fixtures/bridge-channel/{folder} differs from {}",
            shared.join(folder).display()
        );
    }
}

#[test]
fn every_accepted_message_parses_and_writes_back_equivalent_json() {
    let accepted = fixture_texts("accepted");
    assert_eq!(accepted.len(), 16);
    for (name, text) in &accepted {
        if name == "14-VideoConstraints-object.json" {
            let constraints = VideoConstraints::parse(text).unwrap();
            assert_equivalent(name, text, &constraints.to_json());
            continue;
        }
        let message = parse(text).unwrap_or_else(|error| panic!("{name}: {error}"));
        let written = message.to_json();
        assert_equivalent(name, text, &written);
        assert_eq!(
            parse(&written).unwrap(),
            message,
            "{name}: written JSON reads back differently"
        );
        let class_in_name = name.split_once('-').unwrap().1.trim_end_matches(".json");
        assert_eq!(message.colibri_class(), class_in_name, "{name}");
    }
}

fn accepted(name: &str) -> BridgeChannelMessage {
    parse(&fixture_texts("accepted")[name]).unwrap()
}

#[test]
fn accepted_messages_read_as_jvb_reads_them() {
    let BridgeChannelMessage::EndpointMessage(face_box) = accepted("01-EndpointMessage.json")
    else {
        panic!("01 is an EndpointMessage");
    };
    assert!(face_box.is_broadcast());
    assert_eq!(face_box.other_fields["msgPayload"]["faceBox"]["width"], 31);

    let BridgeChannelMessage::EndpointMessage(free) = accepted("13-EndpointMessage.json") else {
        panic!("13 is an EndpointMessage");
    };
    assert_eq!(free.to, "to_value");
    assert_eq!(free.from, None);
    assert!(!free.is_broadcast());
    assert_eq!(free.other_fields["other_field1"], "other_value1");
    assert_eq!(free.other_fields["other_field2"], 97);
    assert_eq!(free.other_fields.get("other_null"), Some(&Value::Null));
    assert!(!free.other_fields.contains_key("to"));

    let BridgeChannelMessage::VideoTypeMessage(legacy) = accepted("02-VideoTypeMessage.json")
    else {
        panic!("02 is a VideoTypeMessage");
    };
    assert_eq!(legacy.video_type, VideoType::DesktopHighFps);

    let BridgeChannelMessage::SourceVideoTypeMessage(source) =
        accepted("03-SourceVideoTypeMessage.json")
    else {
        panic!("03 is a SourceVideoTypeMessage");
    };
    assert_eq!(source.source_name, "source1234");
    assert_eq!(source.video_type, VideoType::DesktopHighFps);

    let BridgeChannelMessage::VideoSourcesMap(video) = accepted("04-VideoSourcesMap.json") else {
        panic!("04 is a VideoSourcesMap");
    };
    assert_eq!(video.mapped_sources.len(), 2);
    assert_eq!(video.mapped_sources[1].owner.as_deref(), Some("endpoint2"));
    assert_eq!(video.mapped_sources[1].rtx, 98765);
    assert_eq!(video.mapped_sources[1].video_type, VideoType::Desktop);

    let BridgeChannelMessage::AudioSourcesMap(audio) = accepted("05-AudioSourcesMap.json") else {
        panic!("05 is an AudioSourcesMap");
    };
    assert_eq!(audio.mapped_sources[0].ssrc, 23456);

    let BridgeChannelMessage::ReceiverVideoConstraints(empty) =
        accepted("15-ReceiverVideoConstraints.json")
    else {
        panic!("15 is ReceiverVideoConstraints");
    };
    assert_eq!(empty, Default::default());

    let BridgeChannelMessage::ReceiverVideoConstraints(full) =
        accepted("16-ReceiverVideoConstraints.json")
    else {
        panic!("16 is ReceiverVideoConstraints");
    };
    assert_eq!(full.last_n, Some(3));
    assert_eq!(full.selected_sources, None);
    assert_eq!(
        full.default_constraints,
        Some(VideoConstraints::max_height(0))
    );
    let constraints = full.constraints.unwrap();
    assert_eq!(constraints.len(), 3);
    assert_eq!(constraints["epOnStage"], VideoConstraints::max_height(720));
    assert_eq!(
        constraints["epThumbnail2"],
        VideoConstraints {
            max_height: 180,
            max_frame_rate: Some(30.0)
        }
    );

    assert_eq!(
        VideoConstraints::parse(&fixture_texts("accepted")["14-VideoConstraints-object.json"]),
        Ok(VideoConstraints {
            max_height: 1080,
            max_frame_rate: Some(15.0)
        })
    );
}

#[test]
fn audio_subscriptions_read_in_both_forms() {
    let subscription = |name: &str| match accepted(name) {
        BridgeChannelMessage::ReceiverAudioSubscription(subscription) => subscription,
        other => panic!("{name}: {other:?}"),
    };
    let names = |list: &[&str]| list.iter().map(|name| (*name).to_owned()).collect();
    assert_eq!(
        subscription("06-ReceiverAudioSubscription.json"),
        ReceiverAudioSubscription::Custom {
            all: true,
            include: names(&["endpoint1", "endpoint2"]),
            exclude: names(&["endpoint3"]),
        }
    );
    assert_eq!(
        subscription("07-ReceiverAudioSubscription.json"),
        ReceiverAudioSubscription::Custom {
            all: false,
            include: vec![],
            exclude: vec![],
        }
    );
    assert_eq!(
        subscription("08-ReceiverAudioSubscription.json"),
        ReceiverAudioSubscription::All
    );
    assert_eq!(
        subscription("09-ReceiverAudioSubscription.json"),
        ReceiverAudioSubscription::None
    );
    assert_eq!(
        subscription("10-ReceiverAudioSubscription.json"),
        ReceiverAudioSubscription::Include(names(&["source1", "source2"]))
    );
    assert_eq!(
        subscription("11-ReceiverAudioSubscription.json"),
        ReceiverAudioSubscription::Exclude(names(&["source3"]))
    );
    assert_eq!(
        subscription("12-ReceiverAudioSubscription.json"),
        ReceiverAudioSubscription::Include(vec![])
    );
}

#[test]
fn every_rejected_message_is_refused_for_its_reason() {
    let missing_field = |field: &str| BridgeChannelError::MissingField {
        class: "DominantSpeakerEndpointChangeEvent",
        field: field.to_owned(),
    };
    let expected: BTreeMap<&str, BridgeChannelError> = [
        ("00-empty-object.json", BridgeChannelError::MissingClass),
        (
            "01-invalid-colibri-class.json",
            BridgeChannelError::UnknownClass("invalid-colibri-class".to_owned()),
        ),
        (
            "02-EndpointStats.json",
            BridgeChannelError::DuplicateKey("colibriClass".to_owned()),
        ),
        (
            "03-EndpointStats.json",
            BridgeChannelError::DuplicateKey("to".to_owned()),
        ),
        (
            "04-EndpointStats.json",
            BridgeChannelError::DuplicateKey("from".to_owned()),
        ),
        (
            "05-EndpointStats.json",
            BridgeChannelError::DuplicateKey("non-defined-prop".to_owned()),
        ),
        (
            "06-DominantSpeakerEndpointChangeEvent.json",
            missing_field("dominantSpeakerEndpoint"),
        ),
        (
            "07-DominantSpeakerEndpointChangeEvent.json",
            BridgeChannelError::InvalidField {
                class: "DominantSpeakerEndpointChangeEvent",
                field: "dominantSpeakerEndpoint".to_owned(),
                expected: "a string",
            },
        ),
    ]
    .into_iter()
    .collect();
    let rejected = fixture_texts("rejected");
    assert_eq!(
        rejected.keys().map(String::as_str).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>(),
        "every rejected fixture has an expected reason"
    );
    for (name, text) in &rejected {
        assert_eq!(parse(text), Err(expected[name.as_str()].clone()), "{name}");
    }
}
