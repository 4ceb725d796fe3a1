//! Camera senders follow their own bandwidth estimate against a real relais node on
//! loopback: `relais-loadtest` with the first participant's uplink capped at 600 kbit/s
//! (`--impair rate=600kbit --impair-direction up --impair-participants 1`). That sender's
//! estimate settles near the cap and it sends one layer, while the others' estimates allow
//! every layer; every receiver still gets its stream without long freezes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

mod common;

#[test]
fn a_sender_on_a_600_kbps_uplink_sends_fewer_layers_and_stays_watchable() {
    let run = common::run_loadtest(
        "estimate",
        &[
            "--scenario",
            "small",
            "--participants",
            "4",
            "--video-senders",
            "4",
            "--duration",
            "8",
            "--ramp-up",
            "2",
            "--impair",
            "rate=600kbit",
            "--impair-direction",
            "up",
            "--impair-participants",
            "1",
        ],
        "relais-colibri2.json",
    );
    let (report, stdout) = (&run.report, &run.stdout);

    assert_eq!(report.load_generator.connected, 4, "{stdout}");
    assert_eq!(report.senders.len(), 4, "{:?}", report.senders);
    for sender in &report.senders {
        eprintln!("{sender:?}");
        assert_eq!(sender.layers, 3);
        assert!(sender.estimate_updates > 20, "{sender:?}");
    }
    let capped = &report.senders[0];
    // 600 kbit/s carries the 150 kbit/s layer; 150 + 1.35 × 500 kbit/s never fits.
    assert_eq!(capped.active_layers_at_end, 1, "{capped:?}");
    assert!(capped.mean_active_layers < 1.2, "{capped:?}");
    assert!(
        (250..=650).contains(&capped.estimate_median_kbps),
        "{capped:?}"
    );
    for free in &report.senders[1..] {
        // The probes find loopback's room within a second: an estimate for every layer, up
        // to the node's REMB. What a free camera sends also follows the node's
        // SenderSourceConstraints (180p while it is only a thumbnail, all layers on stage), so
        // its layer count depends on the stage; its estimate shows it could send them all.
        assert!(free.estimate_max_kbps >= 2_675, "{free:?}");
        assert!(free.estimate_median_kbps >= 2_000, "{free:?}");
        assert!(
            free.estimate_median_kbps > 3 * capped.estimate_median_kbps,
            "{free:?}"
        );
        assert!(free.mean_active_layers >= 1.0, "{free:?}");
    }
    // Every receiver got every camera, the capped one included, and no stream froze long.
    let r = &report.receive;
    assert_eq!(r.streams_received_pct, 100.0, "{stdout}");
    assert!(r.longest_freeze_ms < 500.0, "{stdout}");
    assert!(r.frames > 500, "{r:?}");
}
