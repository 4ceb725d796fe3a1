//! `relais-loadtest --target whip` against a relais node it starts on loopback: 5 people,
//! all publishing through WHIP and watching each other through WHEP (one session per
//! watched stream), for 10 s. The run must pass the small scenario's criteria with every
//! person connected, nothing lost and every stream of every view received.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

mod common;

#[test]
fn five_people_publish_and_watch_through_whip_and_whep() {
    let run = common::run_loadtest(
        "whip",
        &[
            "--scenario",
            "small",
            "--target",
            "whip",
            "--participants",
            "5",
            "--duration",
            "10",
            "--ramp-up",
            "2",
        ],
        "relais-whip-whep.json",
    );
    let (report, stdout, stderr) = (&run.report, &run.stdout, &run.stderr);
    assert!(run.succeeded, "relais-loadtest failed:\n{stdout}\n{stderr}");

    assert_eq!(report.target, "relais (WHIP/WHEP)");
    assert!(report.passed, "{stdout}");
    assert_eq!(report.participants, 5);
    // Every person's transports (its WHIP publisher and its 4 WHEP sessions) connected.
    assert_eq!(report.load_generator.joined, 5);
    assert_eq!(report.load_generator.connected, 5);
    assert_eq!(report.load_generator.failed, 0, "{report:?}");
    assert_eq!(report.load_generator.srtp_verify_failed, 0);
    assert!(report.load_generator.srtp_verified > 100, "{report:?}");
    // 5 cameras, each watched by the 4 others at the top layer (WHEP has no layer choice),
    // and their audio: no loss on loopback, every stream of every view received.
    let r = &report.receive;
    assert!(r.packets > 10_000, "{r:?}");
    assert_eq!(r.lost, 0, "{r:?}");
    assert!(r.frames > 1_000, "{r:?}");
    assert!(r.latency.samples > 10_000, "{r:?}");
    assert!(r.latency.p99 < 10.0, "{r:?}");
    assert_eq!(r.streams_received_pct, 100.0);
    assert!(r.longest_freeze_ms < 500.0, "{r:?}");
    // The node was observed through its metrics.
    let node = report.node.as_ref().expect("node figures");
    assert!(node.cpu_s > 0.0);
    assert_eq!(node.forwarded_source, "metrics");
    assert!(node.egress_pps > 1_000.0, "{node:?}");
}
