//! The scenario files: every shipped one loads and feeds the media models, the reference
//! meeting matches the shared copy, and broken files give the documented errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use relais_loadtest::media::{AudioConfig, SpeakerSchedule, VideoConfig, VideoSource};
use relais_loadtest::scenario::{Scenario, ScenarioError, SHIPPED};

fn hostsharing_text() -> &'static str {
    SHIPPED
        .iter()
        .find(|s| s.name == "hostsharing")
        .unwrap()
        .toml
}

#[test]
fn every_shipped_scenario_parses_and_drives_the_media_models() {
    assert!(SHIPPED.len() >= 5);
    for shipped in SHIPPED {
        let scenario =
            Scenario::load(shipped.name).unwrap_or_else(|e| panic!("{}: {e}", shipped.name));
        assert_eq!(scenario.name, shipped.name);
        assert!(scenario.video_senders <= scenario.participants);
        AudioConfig::from_scenario(&scenario.audio, 1, 111).unwrap();
        let ssrcs: Vec<u32> = (0..scenario.video.layers.len() as u32).collect();
        let video = VideoConfig::from_scenario(&scenario.video, &ssrcs, 96).unwrap();
        VideoSource::new(video, scenario.seed, Default::default()).unwrap();
        let schedule = SpeakerSchedule::from_scenario(&scenario);
        let expected = scenario
            .audio
            .concurrent_speakers
            .min(scenario.video_senders.min(scenario.audio_senders()));
        assert_eq!(schedule.concurrent(), expected, "{}", shipped.name);
    }
}

#[test]
fn hostsharing_matches_the_shared_reference() {
    let shared =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/scenarios/hostsharing.toml");
    let Ok(reference) = std::fs::read(&shared) else {
        eprintln!("skipped: {} not present", shared.display());
        return;
    };
    let shipped =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/hostsharing.toml"))
            .unwrap();
    assert!(
        shipped == reference,
        "loadtest/scenarios/hostsharing.toml differs from {}",
        shared.display()
    );
    assert_eq!(hostsharing_text().as_bytes(), &reference[..]);
}

#[test]
fn layers_out_of_order_are_invalid() {
    let text = hostsharing_text().replace(
        "{ rid = \"q\", width = 320,  height = 180",
        "{ rid = \"q\", width = 1920,  height = 1080",
    );
    assert_ne!(text, hostsharing_text());
    match Scenario::parse("bad-layers", &text) {
        Err(ScenarioError::Invalid { name, reason }) => {
            assert_eq!(name, "bad-layers");
            assert_eq!(reason, "video layers must be listed lowest first");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn unknown_fields_are_parse_errors() {
    let text = hostsharing_text().replace("seed = 46105641", "seed = 46105641\ncolour = \"blue\"");
    match Scenario::parse("bad-field", &text) {
        Err(error @ ScenarioError::Parse { .. }) => {
            let message = error.to_string();
            assert!(message.contains("bad-field"), "{message}");
            assert!(message.contains("unknown field"), "{message}");
            assert!(message.contains("colour"), "{message}");
        }
        other => panic!("expected Parse, got {other:?}"),
    }
    // In a section too.
    let text = hostsharing_text().replace("dtx = true", "dtx = true\nfec = true");
    assert!(matches!(
        Scenario::parse("bad-audio", &text),
        Err(ScenarioError::Parse { .. })
    ));
}

#[test]
fn more_video_senders_than_participants_is_invalid() {
    let text = hostsharing_text().replace("video_senders = 40", "video_senders = 171");
    match Scenario::parse("too-many", &text) {
        Err(ScenarioError::Invalid { reason, .. }) => {
            assert_eq!(reason, "video_senders exceeds participants");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn unknown_names_are_not_found() {
    match Scenario::load("no-such-scenario") {
        Err(error @ ScenarioError::NotFound { .. }) => {
            assert!(error.to_string().contains("hostsharing"));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}
