//! Steady-state forwarding does not allocate: after warm-up (every retransmission cache slot
//! written once, output buffers recycled), a publisher frame to two viewers performs zero heap
//! allocations, and neither does unwrapping a publisher's RTX repair and forwarding it.
//! Counted with a global allocator wrapper, per thread.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use relais_conference::{Forwarder, ForwarderOutput};

thread_local! {
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

fn send_and_recycle(f: &mut Forwarder) -> usize {
    let mut n = 0;
    while let Some(output) = f.poll_output() {
        let (ForwarderOutput::Rtp { packet, .. } | ForwarderOutput::Rtcp { packet, .. }) = output;
        n += 1;
        f.recycle(packet);
    }
    n
}

#[test]
fn steady_state_forwarding_does_not_allocate() {
    let clock = Clock::new();
    let mut f = forwarder();
    f.add_publisher(clock.at(0), STREAM, PUB, publisher_lines())
        .unwrap();
    f.add_viewer(clock.at(0), STREAM, V1, viewer_lines(1000, true, true))
        .unwrap();
    f.add_viewer(clock.at(0), STREAM, V2, viewer_lines(2000, false, false))
        .unwrap();
    let source = Source::new(LAYER_SSRCS);
    // Pre-built packets so the measured loop only forwards.
    let mut frames = Vec::new();
    for i in 0..300u64 {
        let mut batch = Vec::new();
        for layer in [2, 1, 0] {
            batch.push(video_packet(
                layer,
                LAYER_SSRCS[layer],
                source.seq[layer].wrapping_add(i as u16),
                source.ts.wrapping_add(i as u32 * 2970),
                100 + i as u16,
                i == 0,
                i as u16,
            ));
        }
        batch.push(audio_packet(500 + i as u16, i as u32 * 960, i as u16));
        frames.push(batch);
    }
    let mut measured = 0;
    let mut warm_up = 0;
    let mut forwarded = 0;
    for (i, batch) in frames.iter().enumerate() {
        let now = clock.at(i as u64 * 33);
        let before = allocations();
        for p in batch {
            f.handle_rtp(now, PUB, p);
        }
        forwarded += send_and_recycle(&mut f);
        // Warm-up: the 64-slot caches fill during the first 64 frames.
        if i >= 100 {
            measured += allocations() - before;
        } else {
            warm_up += allocations() - before;
        }
    }
    assert_eq!(forwarded, 300 * 4);
    assert!(
        warm_up > 0,
        "the counter counts (buffers and cache slots at warm-up)"
    );
    assert_eq!(measured, 0, "allocations in steady state");
}

#[test]
fn unwrapping_and_forwarding_a_publisher_repair_does_not_allocate() {
    let clock = Clock::new();
    let mut f = forwarder();
    f.add_publisher(clock.at(0), STREAM, PUB, publisher_lines())
        .unwrap();
    f.add_viewer(clock.at(0), STREAM, V1, viewer_lines(1000, true, true))
        .unwrap();
    let mut source = Source::new(LAYER_SSRCS);
    for i in 0..100u64 {
        source.frame(&mut f, PUB, clock.at(i * 33), &[2, 1, 0], i == 0);
        send_and_recycle(&mut f);
    }
    // The top layer's next packet is lost: the gap's NACK goes through the rtcp crate
    // (allocates, once per loss, not measured).
    let lost = video_packet(
        2,
        LAYER_SSRCS[2],
        source.seq[2],
        source.ts,
        source.pic,
        false,
        1,
    );
    source.seq[2] = source.seq[2].wrapping_add(1);
    source.frame(&mut f, PUB, clock.at(3300), &[2, 1, 0], false);
    send_and_recycle(&mut f);
    let parsed = parse(&lost);
    let mut payload = parsed.sequence_number().to_be_bytes().to_vec();
    payload.extend_from_slice(parsed.payload());
    let rtx = rtp(
        97,
        true,
        1,
        parsed.timestamp(),
        0x77,
        &[(P_MID, b"1"), (P_RRID, b"f")],
        &payload,
    );
    // The RTX SSRC's route is learnt once, on first sight (a probe-like repair of an old
    // packet: a duplicate).
    let mut warm_up = rtx.clone();
    let osn_at = parse(&rtx).header_len();
    warm_up[osn_at..osn_at + 2].copy_from_slice(&1000u16.to_be_bytes());
    f.handle_rtp(clock.at(3305), PUB, &warm_up);
    assert_eq!(f.stats().publisher_rtx_duplicate, 1);
    let before = allocations();
    f.handle_rtp(clock.at(3310), PUB, &rtx);
    let sent = send_and_recycle(&mut f);
    let measured = allocations() - before;
    assert_eq!(sent, 1, "the repair reaches the viewer");
    assert_eq!(f.stats().publisher_rtx_recovered, 1);
    assert_eq!(
        measured, 0,
        "allocations unwrapping and forwarding a repair"
    );
}
