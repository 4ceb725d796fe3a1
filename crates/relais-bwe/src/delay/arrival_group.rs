//! Packets grouped into send bursts, and the delay variation between consecutive groups
//! (libwebrtc's `InterArrivalDelta`, draft-ietf-rmcat-gcc-02 §5.2).
//!
//! Packets sent within [`GROUP_LENGTH`] of a group's first packet belong to that group. A
//! packet sent later still joins the group when it looks like part of a burst the network
//! delivered back to back: it arrived within [`BURST_DELTA_THRESHOLD`] of the group's last
//! arrival, earlier relative to its send time than the group's last packet, and the group
//! has lasted less than [`MAX_BURST_DURATION`].

use std::time::{Duration, Instant};

use super::signed_ms;

/// Packets sent within this span of a group's first packet form one group.
pub(crate) const GROUP_LENGTH: Duration = Duration::from_millis(5);
/// A packet arriving within this span of the previous one may belong to its burst.
const BURST_DELTA_THRESHOLD: Duration = Duration::from_millis(5);
/// A burst never spans more than this, measured on arrivals.
const MAX_BURST_DURATION: Duration = Duration::from_millis(100);
/// After this many groups in a row arrive out of order, the grouping starts over.
const REORDERED_RESET_THRESHOLD: u32 = 3;

#[derive(Debug, Clone, Copy)]
struct Group {
    first_send: Instant,
    last_send: Instant,
    first_arrival: Instant,
    last_arrival: Instant,
    size: usize,
}

impl Group {
    fn new(sent: Instant, arrival: Instant) -> Self {
        Self {
            first_send: sent,
            last_send: sent,
            first_arrival: arrival,
            last_arrival: arrival,
            size: 0,
        }
    }
}

/// The delay variation between two consecutive groups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GroupDelta {
    /// Send time of the newer group's last packet minus the older one's (ms).
    pub(crate) send_delta_ms: f64,
    /// Arrival of the newer group's last packet minus the older one's (ms).
    pub(crate) arrival_delta_ms: f64,
}

/// Groups packets (fed in arrival order) and yields the delta between completed groups.
#[derive(Debug, Default)]
pub(crate) struct InterArrival {
    current: Option<Group>,
    prev: Option<Group>,
    reordered: u32,
}

impl InterArrival {
    /// Adds one received packet. Returns the delta between the two previous groups when this
    /// packet starts a new group.
    pub(crate) fn add(
        &mut self,
        sent: Instant,
        arrival: Instant,
        size: usize,
    ) -> Option<GroupDelta> {
        let Some(mut current) = self.current else {
            let mut group = Group::new(sent, arrival);
            group.size = size;
            self.current = Some(group);
            return None;
        };
        if sent < current.first_send {
            // Sent before the group being built: reordered on the way, ignored.
            return None;
        }
        let mut delta = None;
        if Self::starts_new_group(&current, sent, arrival) {
            if let Some(prev) = self.prev {
                let send_delta_ms = signed_ms(current.last_send, prev.last_send);
                let arrival_delta_ms = signed_ms(current.last_arrival, prev.last_arrival);
                if arrival_delta_ms < 0.0 {
                    // The groups were reordered after their arrival times were taken.
                    self.reordered += 1;
                    if self.reordered >= REORDERED_RESET_THRESHOLD {
                        self.reset();
                    }
                    return None;
                }
                self.reordered = 0;
                delta = Some(GroupDelta {
                    send_delta_ms,
                    arrival_delta_ms,
                });
            }
            self.prev = Some(current);
            current = Group::new(sent, arrival);
        } else {
            current.last_send = current.last_send.max(sent);
        }
        current.size = current.size.saturating_add(size);
        current.last_arrival = arrival;
        self.current = Some(current);
        delta
    }

    /// Forgets all groups.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }

    fn starts_new_group(current: &Group, sent: Instant, arrival: Instant) -> bool {
        if Self::belongs_to_burst(current, sent, arrival) {
            return false;
        }
        sent.saturating_duration_since(current.first_send) > GROUP_LENGTH
    }

    fn belongs_to_burst(current: &Group, sent: Instant, arrival: Instant) -> bool {
        let arrival_delta_ms = signed_ms(arrival, current.last_arrival);
        let send_delta_ms = signed_ms(sent, current.last_send);
        if send_delta_ms == 0.0 {
            return true;
        }
        let propagation_delta_ms = arrival_delta_ms - send_delta_ms;
        propagation_delta_ms < 0.0
            && arrival_delta_ms <= duration_ms(BURST_DELTA_THRESHOLD)
            && signed_ms(arrival, current.first_arrival) < duration_ms(MAX_BURST_DURATION)
    }
}

fn duration_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
