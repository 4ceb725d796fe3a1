//! The simulator's driver: a [`Conference`] between simulated endpoints, with a seeded
//! network model (delay, jitter, random loss) on every uplink and downlink, and time that
//! only moves when the test says so.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use relais_conference::{
    Conference, ConferenceConfig, ConferenceEvent, ConferenceOutput, EndpointId,
};

use super::media::SimRng;

/// One direction of one endpoint's access link: a FIFO bottleneck (capacity and a
/// drop-tail queue, both optional), then propagation delay, jitter and random loss.
#[derive(Debug, Clone, Copy)]
pub struct LinkModel {
    /// One-way delay.
    pub delay: Duration,
    /// Added uniform jitter, at most this much (packets may reorder).
    pub jitter: Duration,
    /// Probability a packet is lost.
    pub loss: f64,
    /// Bottleneck capacity in bits per second; `None`: unlimited.
    pub capacity_bps: Option<u64>,
    /// Longest a packet may wait in the bottleneck queue before it is dropped (drop-tail).
    pub queue_limit: Duration,
}

impl Default for LinkModel {
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(20),
            jitter: Duration::ZERO,
            loss: 0.0,
            capacity_bps: None,
            queue_limit: Duration::from_millis(300),
        }
    }
}

/// The state of a bottleneck: when it is free again, and what it dropped and carried.
#[derive(Debug, Clone, Copy, Default)]
pub struct BottleneckState {
    /// When the last queued packet has left the bottleneck.
    pub busy_until: Option<Instant>,
    /// Packets dropped because the queue was full.
    pub queue_drops: u64,
    /// Bytes that went through.
    pub bytes: u64,
    /// The longest queueing delay seen since the last reset.
    pub max_queue_delay: Duration,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Direction {
    /// Endpoint to node.
    Up,
    /// Node to endpoint.
    Down,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Payload {
    Rtp(Vec<u8>),
    Rtcp(Vec<u8>),
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    direction: Direction,
    endpoint: EndpointId,
    payload: Payload,
}

/// What one endpoint received from the node.
#[derive(Debug, Default)]
pub struct Inbox {
    /// RTP packets, in arrival order.
    pub rtp: Vec<Vec<u8>>,
    /// When each of `rtp` arrived.
    pub rtp_times: Vec<Instant>,
    /// RTCP packets, in arrival order.
    pub rtcp: Vec<Vec<u8>>,
    /// Bridge channel events, in order.
    pub events: Vec<ConferenceEvent>,
}

/// The conference and its network.
pub struct Harness {
    /// The system under test.
    pub conference: Conference,
    /// Simulated time.
    pub now: Instant,
    /// Per endpoint: uplink and downlink models.
    pub links: HashMap<EndpointId, (LinkModel, LinkModel)>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    rng: SimRng,
    inboxes: HashMap<EndpointId, Inbox>,
    /// Packets the network dropped, per endpoint and direction (up, down).
    pub network_losses: HashMap<EndpointId, (u64, u64)>,
    /// Downlink bottleneck state per endpoint (only for links with a capacity).
    pub bottlenecks: HashMap<EndpointId, BottleneckState>,
}

impl Harness {
    /// A conference with `config` at a fixed start time, network randomness from `seed`.
    pub fn new(seed: u64, config: ConferenceConfig) -> Self {
        let now = Instant::now();
        Self {
            conference: Conference::new(now, config),
            now,
            links: HashMap::new(),
            in_flight: BinaryHeap::new(),
            order: 0,
            rng: SimRng::new(seed),
            inboxes: HashMap::new(),
            network_losses: HashMap::new(),
            bottlenecks: HashMap::new(),
        }
    }

    fn link(&self, endpoint: EndpointId, direction: &Direction) -> LinkModel {
        let (up, down) = self.links.get(&endpoint).copied().unwrap_or_default();
        match direction {
            Direction::Up => up,
            Direction::Down => down,
        }
    }

    fn send(&mut self, direction: Direction, endpoint: EndpointId, payload: Payload) {
        let link = self.link(endpoint, &direction);
        // The bottleneck first (downlinks only): serialisation at the capacity behind what
        // is queued, drop-tail beyond the queue limit.
        let mut departure = self.now;
        if let (Direction::Down, Some(capacity)) = (&direction, link.capacity_bps) {
            let size = match &payload {
                Payload::Rtp(p) | Payload::Rtcp(p) => p.len() + 10, // + the SRTP tag
            };
            let state = self.bottlenecks.entry(endpoint).or_default();
            let start = state.busy_until.map_or(self.now, |b| b.max(self.now));
            let waiting = start.saturating_duration_since(self.now);
            if waiting > link.queue_limit {
                state.queue_drops += 1;
                return;
            }
            state.max_queue_delay = state.max_queue_delay.max(waiting);
            let transmit = Duration::from_secs_f64(size as f64 * 8.0 / capacity.max(1) as f64);
            departure = start + transmit;
            state.busy_until = Some(departure);
            state.bytes += size as u64;
        }
        if link.loss > 0.0 && self.rng.unit() < link.loss {
            let counts = self.network_losses.entry(endpoint).or_default();
            match direction {
                Direction::Up => counts.0 += 1,
                Direction::Down => counts.1 += 1,
            }
            return;
        }
        let jitter = if link.jitter.is_zero() {
            Duration::ZERO
        } else {
            link.jitter.mul_f64(self.rng.unit())
        };
        self.order += 1;
        self.in_flight.push(Reverse(InFlight {
            at: departure + link.delay + jitter,
            order: self.order,
            direction,
            endpoint,
            payload,
        }));
    }

    /// An endpoint sends an RTP packet to the node (through its uplink).
    pub fn send_rtp(&mut self, from: EndpointId, packet: Vec<u8>) {
        self.send(Direction::Up, from, Payload::Rtp(packet));
    }

    /// An endpoint sends an RTCP packet to the node.
    pub fn send_rtcp(&mut self, from: EndpointId, packet: Vec<u8>) {
        self.send(Direction::Up, from, Payload::Rtcp(packet));
    }

    fn drain_outputs(&mut self) {
        while let Some(output) = self.conference.poll_output() {
            match output {
                ConferenceOutput::Rtp { to, packet } => {
                    self.send(Direction::Down, to, Payload::Rtp(packet))
                }
                ConferenceOutput::Rtcp { to, packet } => {
                    self.send(Direction::Down, to, Payload::Rtcp(packet))
                }
                ConferenceOutput::Event { to, event } => {
                    self.inboxes.entry(to).or_default().events.push(event)
                }
            }
        }
    }

    /// Moves time to `until`, delivering packets and running the conference's timers in
    /// order.
    pub fn advance_to(&mut self, until: Instant) {
        loop {
            self.drain_outputs();
            let next_packet = self.in_flight.peek().map(|Reverse(p)| p.at);
            let next_timer = self.conference.poll_timeout();
            let next = [next_packet, next_timer].into_iter().flatten().min();
            let Some(next) = next.filter(|t| *t <= until) else {
                break;
            };
            self.now = self.now.max(next);
            if next_packet.is_some_and(|t| t <= next) {
                let Some(Reverse(packet)) = self.in_flight.pop() else {
                    continue;
                };
                match (packet.direction, packet.payload) {
                    (Direction::Up, Payload::Rtp(p)) => {
                        self.conference.handle_rtp(self.now, packet.endpoint, &p)
                    }
                    (Direction::Up, Payload::Rtcp(p)) => {
                        self.conference.handle_rtcp(self.now, packet.endpoint, &p)
                    }
                    (Direction::Down, Payload::Rtp(p)) => {
                        let inbox = self.inboxes.entry(packet.endpoint).or_default();
                        inbox.rtp.push(p);
                        inbox.rtp_times.push(self.now);
                    }
                    (Direction::Down, Payload::Rtcp(p)) => self
                        .inboxes
                        .entry(packet.endpoint)
                        .or_default()
                        .rtcp
                        .push(p),
                }
            } else {
                self.conference.handle_timeout(self.now);
            }
        }
        self.now = self.now.max(until);
        self.drain_outputs();
    }

    /// Takes what `endpoint` received so far.
    pub fn take_inbox(&mut self, endpoint: EndpointId) -> Inbox {
        self.inboxes.remove(&endpoint).unwrap_or_default()
    }

    /// Drops everything queued for `endpoint`.
    pub fn clear_inbox(&mut self, endpoint: EndpointId) {
        self.inboxes.remove(&endpoint);
    }
}

/// The PLIs in an RTCP compound: the media SSRCs they ask key frames for.
pub fn pli_ssrcs(compound: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    let mut rest = compound;
    while rest.len() >= 12 {
        let length = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if rest[1] == 206 && rest[0] & 0x1F == 1 && length >= 12 {
            out.push(u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]));
        }
        if length > rest.len() {
            break;
        }
        rest = &rest[length..];
    }
    out
}
