//! Jitsi's own Colibri2 JSON messages (copied unchanged from the shared fixtures) parse into
//! the model and serialise back to the same JSON; the copies match the shared originals.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::path::{Path, PathBuf};

use relais_colibri::colibri2::{
    from_json_slice, ConferenceModified, ConferenceModify, SourceEntry, ICE_UDP_XMLNS,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn local_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/colibri2")
}

fn read(relative: &str) -> Vec<u8> {
    std::fs::read(local_fixtures().join(relative)).unwrap()
}

/// Every `.json` file under `dir`, relative to it, sorted.
fn json_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for sub in ["rest-doc", "serializer-cases"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".json") {
                files.push(format!("{sub}/{name}"));
            }
        }
    }
    files.sort();
    files
}

/// Which model a fixture is: a request, an answer, or free JSON (the dominant-speaker state,
/// which the backend produces as a `serde_json::Value`).
#[derive(Debug, PartialEq)]
enum Kind {
    Request,
    Answer,
    FreeJson,
}

fn kind(relative: &str) -> Kind {
    if relative.ends_with("dominant-speaker-identification.response.json") {
        Kind::FreeJson
    } else if relative.ends_with(".response.json") || relative.contains("/03-conference-modified") {
        Kind::Answer
    } else {
        Kind::Request
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> (Value, Value) {
    let original: Value = serde_json::from_slice(bytes).unwrap();
    let model: T = from_json_slice(bytes).unwrap();
    let written = serde_json::to_value(&model).unwrap();
    // Through a string too, as the router writes it.
    let reparsed: T = serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
    assert_eq!(serde_json::to_value(&reparsed).unwrap(), written);
    (original, written)
}

#[test]
fn every_fixture_round_trips_to_equivalent_json() {
    let files = json_files(&local_fixtures());
    assert_eq!(files.len(), 16, "fixture set changed: {files:?}");
    for relative in files {
        let bytes = read(&relative);
        let (original, written) = match kind(&relative) {
            Kind::Request => round_trip::<ConferenceModify>(&bytes),
            Kind::Answer => round_trip::<ConferenceModified>(&bytes),
            Kind::FreeJson => round_trip::<Value>(&bytes),
        };
        assert_eq!(original, written, "{relative} did not round-trip");
    }
}

#[test]
fn known_fields_are_typed_not_kept_as_unknown() {
    let request: ConferenceModify =
        from_json_slice(&read("rest-doc/create-conference.request.json")).unwrap();
    assert!(request.other.is_empty());
    assert!(request.creates_conference());
    let endpoint = &request.endpoints()[0];
    assert!(endpoint.other.is_empty());
    assert!(endpoint.creates());
    assert_eq!(endpoint.muc_role.as_deref(), Some("moderator"));
    let medias = endpoint.medias.as_ref().unwrap();
    let opus = &medias[0].payload_types.as_ref().unwrap()[1];
    assert!(opus.other.is_empty());
    assert_eq!(opus.payload_type(), Ok(111));
    assert_eq!(opus.clockrate_hz(), Ok(48_000));
    assert_eq!(opus.channel_count(), Ok(2));
    assert_eq!(opus.parameter("minptime"), Some("10"));
    let red = &medias[0].payload_types.as_ref().unwrap()[0];
    assert_eq!(red.parameter("null"), Some("111/111"));
    let vp8 = &medias[1].payload_types.as_ref().unwrap()[0];
    assert_eq!(vp8.channel_count(), Ok(1), "absent channels is 1");
    assert_eq!(
        vp8.rtcp_fbs.as_ref().unwrap()[2].subtype.as_deref(),
        Some("pli")
    );
    assert_eq!(medias[1].rtp_hdrexts.as_ref().unwrap()[0].id, 3);
    assert_eq!(medias[0].extmap_allow_mixed, Some(true));
    let transport = endpoint.transport.as_ref().unwrap();
    assert_eq!(transport.ice_controlling, Some(true));
    assert!(transport.transport.is_none());
    assert!(endpoint.has_capability("source-names"));
    let connects = request.connects.as_ref().unwrap();
    assert_eq!(connects[0].connect_type, "transcriber");
    assert!(connects[0].other.is_empty());

    let answer: ConferenceModified =
        from_json_slice(&read("rest-doc/create-conference.response.json")).unwrap();
    let ice = answer.endpoints.as_ref().unwrap()[0]
        .transport
        .as_ref()
        .unwrap()
        .transport
        .as_ref()
        .unwrap();
    assert!(ice.other.is_empty());
    assert_eq!(ice.xmlns.as_deref(), Some(ICE_UDP_XMLNS));
    assert_eq!(ice.web_sockets.as_ref().unwrap().len(), 1);
    let srflx = &ice.candidates.as_ref().unwrap()[1];
    assert!(srflx.other.is_empty());
    assert_eq!(srflx.port_number(), Ok(10_000));
    assert_eq!(srflx.priority_value(), Ok(1_694_498_815));
    assert_eq!(srflx.rel_port_number(), Ok(Some(10_000)));
    assert_eq!(srflx.candidate_type, "srflx");
    let sources = answer.sources.as_ref().unwrap();
    assert_eq!(sources[0].id, "jvb-a0");
    assert_eq!(sources[0].ssrcs().collect::<Vec<_>>(), [3_191_927_963]);
}

#[test]
fn both_source_forms_are_read_and_kept() {
    let bare: ConferenceModify = from_json_slice(&read(
        "serializer-cases/01-endpoint-with-sources-same-as-colibri2iqtest.json",
    ))
    .unwrap();
    let endpoint = &bare.endpoints()[0];
    let source = &endpoint.sources.as_ref().unwrap()[0];
    assert_eq!(
        source.sources.as_ref().unwrap()[0],
        SourceEntry::Ssrc(803_354_056)
    );
    assert_eq!(endpoint.initial_last_n.as_ref().unwrap().value, 13);
    assert_eq!(endpoint.force_mute.as_ref().unwrap().video, Some(true));

    let described: ConferenceModify = from_json_slice(&read(
        "serializer-cases/04-update-endpoint-with-transport-and-sources.json",
    ))
    .unwrap();
    let video = &described.endpoints()[0].sources.as_ref().unwrap()[1];
    let SourceEntry::Described(first) = &video.sources.as_ref().unwrap()[0] else {
        panic!("object form expected");
    };
    assert_eq!(first.ssrc, 437_485_591);
    assert_eq!(first.name.as_deref(), Some("79f0273e-v0"));
    let groups = video.ssrc_groups.as_ref().unwrap();
    assert_eq!(groups[1].semantics, "SIM");
    assert_eq!(
        groups[1].ssrcs().collect::<Vec<_>>(),
        [437_485_591, 1_565_856_603, 1_153_580_044]
    );

    let answer: ConferenceModified = from_json_slice(&read(
        "serializer-cases/03-conference-modified-with-transport-for-an-endpoint-and-feedb.json",
    ))
    .unwrap();
    let audio = &answer.sources.as_ref().unwrap()[0];
    assert_eq!(audio.other.get("synthetic"), Some(&Value::Bool(true)));
    let SourceEntry::Described(jvb_a0) = &audio.sources.as_ref().unwrap()[0] else {
        panic!("object form expected");
    };
    assert_eq!(
        jvb_a0.parameters.as_ref().unwrap()["msid"],
        "mixedmslabel mixedlabelaudio0"
    );
}

#[test]
fn unknown_fields_are_kept_at_every_level_and_absent_fields_stay_absent() {
    let input = serde_json::json!({
        "meeting-id": "m",
        "future-flag": {"nested": [1, 2]},
        "endpoints": [{
            "id": "e",
            "x-endpoint": 1,
            "medias": [{"type": "audio", "x-media": "m",
                "payload-types": [{"name": "opus", "x-pt": true, "rtcp-fbs": [{"type": "nack", "x-fb": 0}]}],
                "rtp-hdrexts": [{"uri": "u", "id": 1, "x-ext": null}]}],
            "transport": {"x-outer": 1, "transport": {"x-ice": 2,
                "fingerprints": [{"fingerprint": "AA", "x-fp": 3}],
                "candidates": [{"foundation": "1", "component": "1", "protocol": "udp",
                    "priority": "1", "ip": "192.0.2.1", "port": "1", "type": "host",
                    "tcptype": "passive"}]},
                "sctp": {"port": 5000, "x-sctp": 1}},
            "sources": [{"type": "video", "id": "e-v0", "x-source": 1,
                "sources": [{"ssrc": 1, "videoType": "camera", "rid": "h"}, 2],
                "ssrc-groups": [{"semantics": "FID", "sources": [1, 2], "x-group": 1}]}],
            "initial-last-n": {"value": -1, "x-lastn": 1},
            "force-mute": {"audio": false, "x-mute": 1}
        }],
        "connects": [{"url": "wss://x", "protocol": "mediajson", "type": "recorder", "x-connect": 1,
            "ping": {"interval": 1, "timeout": 2, "x-ping": 1}}],
        "relays": [{"id": "r", "x-relay": 1}]
    });
    let bytes = serde_json::to_vec(&input).unwrap();
    let model: ConferenceModify = from_json_slice(&bytes).unwrap();
    assert!(model.other.contains_key("future-flag"));
    assert!(model.name.is_none() && model.create.is_none() && model.expire.is_none());
    assert_eq!(serde_json::to_value(&model).unwrap(), input);
}

#[test]
fn numbers_given_as_json_integers_are_accepted_and_written_as_strings() {
    let model: ConferenceModify = from_json_slice(
        br#"{"meeting-id": "m", "endpoints": [{"id": "e", "medias": [{"type": "audio",
            "payload-types": [{"name": "opus", "id": 111, "clockrate": 48000, "channels": 2}]}]}]}"#,
    )
    .unwrap();
    let pt = &model.endpoints()[0].medias.as_ref().unwrap()[0]
        .payload_types
        .as_ref()
        .unwrap()[0];
    assert_eq!(pt.clockrate.as_deref(), Some("48000"));
    assert_eq!(pt.payload_type(), Ok(111));
    let written = serde_json::to_value(&model).unwrap();
    assert_eq!(
        written["endpoints"][0]["medias"][0]["payload-types"][0]["clockrate"],
        "48000"
    );
}

/// The shared fixtures, when this checkout has them next to the workspace.
fn shared_fixtures() -> Option<PathBuf> {
    let root = std::env::var_os("RELAIS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let dir = root.join("fixtures/colibri2");
    dir.is_dir().then_some(dir)
}

#[test]
fn copies_are_byte_identical_to_the_shared_fixtures() {
    let Some(shared) = shared_fixtures() else {
        println!("note: shared fixtures not found (set RELAIS_SHARED); skipping the copy check");
        return;
    };
    let local = local_fixtures();
    let shared_files = json_files(&shared);
    assert_eq!(
        json_files(&local),
        shared_files,
        "the copies and the shared fixtures list different files"
    );
    for relative in shared_files {
        let original = std::fs::read(shared.join(&relative)).unwrap();
        let copy = std::fs::read(local.join(&relative)).unwrap();
        assert!(
            original == copy,
            "{relative} differs from the shared fixture"
        );
    }
}
