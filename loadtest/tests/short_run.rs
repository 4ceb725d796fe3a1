//! The test suite's load run: `relais-loadtest` itself, 10 participants for 10 s against a
//! relais node it starts on loopback, must pass the scenario's criteria and report real
//! figures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use std::process::Command;

use relais_loadtest::report::RunReport;

mod common;

#[test]
fn ten_participants_for_ten_seconds_pass_the_small_scenario() {
    let run = common::run_loadtest(
        "small",
        &[
            "--scenario",
            "small",
            "--participants",
            "10",
            "--duration",
            "10",
            "--ramp-up",
            "2",
        ],
        "relais-colibri2.json",
    );
    let (report, stdout, stderr) = (&run.report, &run.stdout, &run.stderr);
    assert!(run.succeeded, "relais-loadtest failed:\n{stdout}\n{stderr}");

    assert!(report.passed, "{stdout}");
    assert_eq!(report.participants, 10);
    assert_eq!(report.load_generator.connected, 10);
    assert_eq!(report.load_generator.srtp_verify_failed, 0);
    assert!(report.load_generator.srtp_verified > 100, "{report:?}");
    // 5 cameras (small's) seen by 10 receivers (one on stage, the rest as thumbnails) and
    // the speaker's audio: over a thousand packets a second, none lost on loopback, and
    // every receiver got every camera.
    let r = &report.receive;
    assert!(r.packets > 10_000, "{r:?}");
    assert_eq!(r.lost, 0, "{r:?}");
    assert!(r.frames > 1_000, "{r:?}");
    assert!(r.latency.samples > 10_000, "{r:?}");
    assert!(r.latency.p99 < 10.0, "{r:?}");
    assert_eq!(r.streams_received_pct, 100.0);
    assert!(r.longest_freeze_ms < 500.0, "{r:?}");
    let names: Vec<&str> = report.criteria.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "max_loss_pct",
            "max_added_latency_p99_ms",
            "min_streams_received_pct",
            "max_video_freeze_ms"
        ]
    );
    // The node was observed: its CPU, memory and forwarded packets (from its metrics).
    let node = report.node.as_ref().expect("node figures");
    assert!(node.cpu_s > 0.0);
    assert!(node.rss_max_mib > 1.0);
    assert_eq!(node.forwarded_source, "metrics");
    assert!(node.egress_pps > 1_000.0, "{node:?}");
    assert!(!report.node_series.is_empty());
    assert!(report.receive_series.len() >= 10);
}

/// `--replay`: the video of a Chromium simulcast publish to relais, captured on `lo`
/// (tests/data, made by scripts/capture-publish), replayed by 4 participants through a node.
#[test]
fn a_replayed_chromium_capture_goes_through_the_node() {
    let report_dir =
        std::env::temp_dir().join(format!("relais-loadtest-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&report_dir);
    let capture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chromium-publish.pcapng");
    let output = Command::new(env!("CARGO_BIN_EXE_relais-loadtest"))
        .args([
            "--scenario",
            "small",
            "--participants",
            "4",
            "--duration",
            "6",
        ])
        .args(["--ramp-up", "1", "--quiet", "--replay"])
        .arg(&capture)
        .arg("--node-bin")
        .arg(common::relais_binary())
        .arg("--report")
        .arg(&report_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let json = std::fs::read_to_string(report_dir.join("relais-colibri2.json")).unwrap();
    let report: RunReport = serde_json::from_str(&json).unwrap();
    assert!(report.passed);
    assert_eq!(report.load_generator.connected, 4);
    let r = &report.receive;
    // Every receiver gets the 3 other cameras: the capture's frames, looped.
    assert!(r.frames > 300, "{r:?}");
    assert!(r.packets > 1_500, "{r:?}");
    assert_eq!(r.lost, 0, "{r:?}");
    assert_eq!(r.streams_received_pct, 100.0);
    // The index page shows the run.
    let html = std::fs::read_to_string(report_dir.join("index.html")).unwrap();
    assert!(html.contains("relais (Colibri2)"));
    let _ = std::fs::remove_dir_all(&report_dir);
}
