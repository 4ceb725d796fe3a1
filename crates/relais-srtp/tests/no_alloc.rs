//! Allocation on the hot path, counted with a global allocator wrapper, per thread.
//!
//! * GCM (relais's own in-place code): after the first packet of each SSRC, protecting and
//!   unprotecting RTP and RTCP (across the sequence wrap) performs zero heap allocations.
//! * AES-CM goes through webrtc-srtp, which returns every packet in a new allocation: the
//!   accepted, documented exception (only clients that offer no GCM get it). Checked here
//!   to stay at that (one per packet today, at most two allowed), so a regression such as a
//!   context built per packet shows up.
//! * For both profiles, packets refused before the crypto (replayed, too old, malformed,
//!   too short, over the SSRC cap, SRTCP with E = 0) allocate nothing: for AES-CM this is
//!   also the proof that they never reach webrtc-srtp, which allocates on every call.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::{keys, rtcp, rtp, RICH};
use relais_srtp::{SrtpConfig, SrtpProfile, SrtpReceiver, SrtpSender};

thread_local! {
    // `const` initialisation: no lazy init, no destructor, so touching it from inside the
    // allocator cannot itself allocate.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter is a plain thread-local `Cell` and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Protected packets of `ssrcs` (RTP across the wrap, then RTCP), and how many of each.
struct Traffic {
    rtp: Vec<(Vec<u8>, usize)>,
    rtcp: Vec<(Vec<u8>, usize)>,
}

fn plaintexts(profile: SrtpProfile, ssrcs: &[u32]) -> Traffic {
    let mut rtp_packets = Vec::new();
    let mut rtcp_packets = Vec::new();
    for i in 0..400u16 {
        for &ssrc in ssrcs {
            let p = rtp(ssrc, 65_300u16.wrapping_add(i), RICH);
            let len = p.len();
            let mut b = p;
            b.resize(len + profile.rtp_overhead(), 0);
            rtp_packets.push((b, len));
        }
    }
    for n in 0..20 {
        for &ssrc in ssrcs {
            let p = rtcp(ssrc, n);
            let len = p.len();
            let mut b = p;
            b.resize(len + profile.rtcp_overhead(), 0);
            rtcp_packets.push((b, len));
        }
    }
    Traffic {
        rtp: rtp_packets,
        rtcp: rtcp_packets,
    }
}

const SSRCS: [u32; 4] = [1, 2, 3, 0xffff_ffff];

#[test]
fn allocations_per_packet_after_the_first_of_each_ssrc() {
    // The counter itself works.
    let before = allocations();
    drop(std::hint::black_box(Vec::<u8>::with_capacity(16)));
    assert_eq!(allocations() - before, 1);

    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 41);
        let mut tx = SrtpSender::new(&peer.local, SrtpConfig::default()).unwrap();
        let mut rx = SrtpReceiver::new(&relais.remote, SrtpConfig::default()).unwrap();
        // Plaintexts prepared up front, each in a buffer with room for the trailer.
        let Traffic {
            rtp: mut packets,
            rtcp: mut controls,
        } = plaintexts(profile, &SSRCS);

        // First packet of each SSRC (inserts into the maps; AES-CM builds contexts).
        let first = SSRCS.len();
        for (buf, len) in &mut packets[..first] {
            let n = tx.protect_rtp(buf, *len).unwrap();
            rx.unprotect_rtp(&mut buf[..n]).unwrap();
        }
        for (buf, len) in &mut controls[..first] {
            let n = tx.protect_rtcp(buf, *len).unwrap();
            rx.unprotect_rtcp(&mut buf[..n]).unwrap();
        }

        let before = allocations();
        for (buf, len) in &mut packets[first..] {
            let n = tx.protect_rtp(buf, *len).unwrap();
            let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
            assert_eq!(m, *len);
        }
        for (buf, len) in &mut controls[first..] {
            let n = tx.protect_rtcp(buf, *len).unwrap();
            let m = rx.unprotect_rtcp(&mut buf[..n]).unwrap();
            assert_eq!(m, *len);
        }
        let spent = allocations() - before;
        let operations = 2 * (packets.len() - first + controls.len() - first);

        match profile {
            SrtpProfile::AeadAes128Gcm => {
                assert_eq!(spent, 0, "{profile}: allocations on the hot path");
            }
            SrtpProfile::Aes128CmHmacSha1_80 => {
                // The accepted exception: webrtc-srtp allocates the packet it returns.
                println!("{profile}: {spent} allocations for {operations} protect/unprotect calls");
                assert!(
                    spent > 0,
                    "{profile}: webrtc-srtp no longer allocates: update the docs"
                );
                assert!(
                    spent <= 2 * operations,
                    "{profile}: {spent} allocations for {operations} calls"
                );
            }
        }
        assert_eq!(tx.roc(1), Some(1));
        assert_eq!(rx.roc(1), Some(1));
    }
}

#[test]
fn refusals_before_the_crypto_do_not_allocate() {
    for profile in SrtpProfile::ALL {
        let (relais, peer) = keys(profile, 42);
        let mut tx = SrtpSender::new(&peer.local, SrtpConfig::default()).unwrap();
        let capped = SrtpConfig {
            max_ssrcs: SSRCS.len(),
            ..SrtpConfig::default()
        };
        let mut rx = SrtpReceiver::new(&relais.remote, capped).unwrap();

        // Everything prepared (and protected: AES-CM protection allocates) up front.
        let Traffic {
            rtp: packets,
            rtcp: controls,
        } = plaintexts(profile, &SSRCS);
        let rtp_wires: Vec<Vec<u8>> = packets[..800]
            .iter()
            .map(|(b, len)| {
                let mut b = b.clone();
                let n = tx.protect_rtp(&mut b, *len).unwrap();
                b.truncate(n);
                b
            })
            .collect();
        let rtcp_wires: Vec<Vec<u8>> = controls[..8]
            .iter()
            .map(|(b, len)| {
                let mut b = b.clone();
                let n = tx.protect_rtcp(&mut b, *len).unwrap();
                b.truncate(n);
                b
            })
            .collect();
        // Deliver all but SSRC 1's first RTP packet (199 behind its last one: too old by
        // then) and its first SRTCP packet.
        for w in &rtp_wires[1..] {
            rx.unprotect_rtp(&mut w.clone()).unwrap();
        }
        for w in &rtcp_wires[1..] {
            rx.unprotect_rtcp(&mut w.clone()).unwrap();
        }
        let mut replayed = rtp_wires[700].clone();
        let mut too_old = rtp_wires[0].clone();
        let mut srtcp_replayed = rtcp_wires[5].clone();
        let mut fifth = rtp(5, 1, RICH);
        tx.protect_rtp_vec(&mut fifth).unwrap();
        let mut fifth_rtcp = rtcp(5, 1);
        tx.protect_rtcp_vec(&mut fifth_rtcp).unwrap();
        let mut bad_version = rtp_wires[750].clone();
        bad_version[0] &= 0x3f;
        let mut truncated = rtp_wires[750].clone();
        truncated.truncate(12 + 8 + 12 + profile.rtp_auth_tag_len() - 1);
        let mut csrc_overrun = rtp_wires[750][..14].to_vec();
        let mut unencrypted = rtcp_wires[6].clone();
        let e_at = match profile {
            SrtpProfile::AeadAes128Gcm => unencrypted.len() - 4,
            SrtpProfile::Aes128CmHmacSha1_80 => unencrypted.len() - 14,
        };
        unencrypted[e_at] &= 0x7f;
        let mut short_rtcp = rtcp_wires[6][..13].to_vec();

        let before = allocations();
        let refusals = [
            rx.unprotect_rtp(&mut replayed),
            rx.unprotect_rtp(&mut too_old),
            rx.unprotect_rtp(&mut fifth),
            rx.unprotect_rtp(&mut bad_version),
            rx.unprotect_rtp(&mut truncated),
            rx.unprotect_rtp(&mut csrc_overrun),
            rx.unprotect_rtcp(&mut srtcp_replayed),
            rx.unprotect_rtcp(&mut fifth_rtcp),
            rx.unprotect_rtcp(&mut unencrypted),
            rx.unprotect_rtcp(&mut short_rtcp),
        ];
        let spent = allocations() - before;
        let reasons: Vec<_> = refusals
            .iter()
            .map(|r| r.as_ref().map_err(|e| e.reason()).unwrap_err())
            .collect();
        assert_eq!(
            reasons,
            [
                "replayed",
                "too_old",
                "too_many_ssrcs",
                "bad_header",
                "too_short",
                "bad_header",
                "replayed",
                "too_many_ssrcs",
                "unencrypted_srtcp",
                "too_short"
            ],
            "{profile}"
        );
        assert_eq!(spent, 0, "{profile}: allocations refusing packets");
    }
}
