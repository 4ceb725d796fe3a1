//! Replays every seed and every crash ever found through the fuzz targets, on each
//! `cargo test`: the seeds keep the harnesses compiling and working, the crash files
//! (`fuzz/crashes/<target>/`) keep fixed bugs fixed.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for folder in ["seeds", "crashes"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            run(&input);
            // Every prefix too: truncation is the most common malformation on the wire.
            for len in 0..input.len() {
                run(&input[..len]);
            }
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no seeds for fuzz target {target}");
}

#[test]
fn rtp_corpus() {
    replay("rtp", relais_fuzz::rtp);
}

#[test]
fn rtcp_corpus() {
    replay("rtcp", relais_fuzz::rtcp);
}

#[test]
fn stun_corpus() {
    replay("stun", relais_fuzz::stun);
}

#[test]
fn codec_corpus() {
    replay("codec", relais_fuzz::codec);
}

#[test]
fn srtp_corpus() {
    replay("srtp", relais_fuzz::srtp);
}
