//! H264 simulcast through a real relais node: `small-h264` for 10 s against a node the tool
//! starts on loopback must pass, and the receivers, reading the SPS of the keyframes they
//! get, must see the heights their views ask for — the dominant speaker's camera on stage at
//! 720p, the others as 180p thumbnails — and count the layer switches as the stage moves.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

mod common;

#[test]
fn small_h264_passes_and_receivers_see_the_heights_their_views_ask_for() {
    let run = common::run_loadtest(
        "h264",
        &[
            "--scenario",
            "small-h264",
            "--duration",
            "10",
            "--ramp-up",
            "2",
        ],
        "relais-colibri2.json",
    );
    let (report, stdout, stderr) = (&run.report, &run.stdout, &run.stderr);
    assert!(run.succeeded, "{stdout}\n{stderr}");
    assert!(report.passed, "{stdout}");
    assert_eq!(report.load_generator.connected, 5);
    assert_eq!(report.load_generator.srtp_verify_failed, 0);
    let r = &report.receive;
    assert_eq!(r.lost, 0, "{r:?}");
    assert_eq!(r.streams_received_pct, 100.0);

    // The first packet of every frame was decrypted: 5 receivers × 4 cameras × 15 fps (the
    // 180p thumbnails) at least, for 12 s.
    let decrypted = report.load_generator.frame_starts_decrypted;
    assert!(decrypted > 5 * 4 * 15 * 10, "{decrypted}");

    // Heights read from the SPS: thumbnails at 180p, the stage at 720p, nothing asks for
    // 360p. Each receiver has one camera on stage (of 4), so 720p is a share of the time.
    let at = |height: u32| r.time_at_height_ms.get(&height).copied().unwrap_or(0.0);
    assert!(at(180) > 0.0 && at(720) > 0.0, "{:?}", r.time_at_height_ms);
    assert!(at(180) > at(720), "{:?}", r.time_at_height_ms);
    assert!(
        at(360) < 0.02 * (at(180) + at(720)),
        "{:?}",
        r.time_at_height_ms
    );
    assert_eq!(
        r.time_at_height_ms
            .keys()
            .copied()
            .filter(|h| ![180, 360, 720].contains(h))
            .count(),
        0
    );
    // The stage follows the dominant speaker, which changes in 10 s of 2..6 s turns: every
    // change is a switch up for the new speaker's stream and down for the old one's.
    assert!(r.layer_switches >= 2, "{r:?}");
    // Each stage change is answered by a keyframe at the asked height, within the grace.
    assert!(r.view_switches >= 2, "{r:?}");
    let slowest = r.view_switch_ms_max.unwrap();
    assert!(slowest < 2000.0, "{slowest}");
    assert!(r.view_switch_ms_mean.unwrap() <= slowest);
    // Once switched, the streams stay at the heights the views ask for.
    let pct = r.at_view_height_pct.unwrap();
    assert!(pct > 99.0, "{pct}");
    assert_eq!(r.receivers_with_view_heights, 5);
    assert_eq!(r.receivers_at_view_heights, 5);
    // The table shows them.
    assert!(stdout.contains("layer switches"), "{stdout}");
    assert!(stdout.contains("720p"), "{stdout}");
}
