//! The I/O shell around [`Participant`]s: one thread, many participants, each with its own
//! UDP socket (its own 5-tuple — the node demultiplexes by it).
//!
//! The driver runs on a tokio current-thread runtime inside a [`tokio::task::LocalSet`]
//! (participants and the application live in one `RefCell`, touched only between awaits):
//!
//! - one small task per participant waits on its socket and, on wake-up, drains every
//!   datagram already queued (bounded), feeding the state machine in place — the receive
//!   buffer is reused, received packets are reported to the [`Application`] borrowed from
//!   it, nothing is copied or allocated per packet;
//! - [`Driver::run`] is the timer loop: participants' deadlines sit in a binary heap (one
//!   entry per participant and deadline), the application's own deadline
//!   ([`Application::poll_timeout`]) is checked alongside, and the loop sleeps until the
//!   earliest — woken early when a receive task schedules something sooner;
//! - every datagram a participant produces is sent at once with a non-blocking
//!   `try_send_to` (a full socket buffer drops it, counted in [`DriverStats`]), and its
//!   buffer goes back to the participant's pool.
//!
//! Media is plugged in through [`Application`]: the driver calls it for each received
//! packet and event, and whenever its deadline passes, always with an [`Outbox`] through
//! which it sends for any participant. An audio/video model keeps its own schedule (e.g. a
//! heap of next-frame times) and reports the earliest as its deadline: no task per stream
//! or per packet.
//!
//! A participant may be put behind a network impairment ([`Driver::set_impairment`]): two
//! [`Impairment`] stages, one per direction, between it and its socket. What it sends goes
//! into its *up* stage and leaves the socket when the stage releases it; what its socket
//! receives is copied into its *down* stage and handed to the participant (and the
//! application) when released, with the release time as `now`. The stages' release times
//! join the participant's deadline in the timer heap. Participants without an impairment
//! keep the direct path (sent at once, received in place); the only cost to them is one
//! `Option` check per flush and per datagram.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Participant, ParticipantError, ParticipantEvent, ReceivedRtp, MAX_DATAGRAM};
use crate::impair::{Impairment, ImpairmentConfig, ImpairmentStats};

/// Datagrams one receive task handles per wake-up before yielding to the others.
const RECEIVE_BATCH: usize = 64;

/// Most datagrams one impairment stage (one direction of one participant) holds; beyond it,
/// new ones are dropped before they reach the stage ([`DriverStats::impair_overflow`]).
///
/// Without a rate limit a stage queues whatever arrives for its delay (rate × delay), so this
/// is what bounds its memory (about 12 MB of 1500-byte datagrams). At 40 ms of delay it takes
/// some 200 000 datagrams per second to reach it; at 60 s, 136 per second.
pub const MAX_IMPAIRED_IN_FLIGHT: usize = 8192;

/// Mixed into a participant's seed for its up stage (participant → node).
const UP_STREAM: u64 = 0x7570_5f73_7461_6765;
/// Mixed into a participant's seed for its down stage (node → participant).
const DOWN_STREAM: u64 = 0x646f_776e_5f73_7467;

/// A participant's handle within one [`Driver`]. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u32);

/// The media (and measurement) side plugged into a [`Driver`].
///
/// All methods run on the driver's thread, between awaits; they must not call the
/// [`Driver`] (its state is borrowed while they run) — act through the [`Outbox`].
pub trait Application {
    /// A received RTP packet (its clear header; decrypted when sampled).
    fn on_rtp(
        &mut self,
        participant: ParticipantId,
        now: Instant,
        packet: &ReceivedRtp<'_>,
        out: &mut Outbox<'_>,
    ) {
        let _ = (participant, now, packet, out);
    }

    /// A participant's event (connected, keyframe request, NACK, estimate, ...).
    fn on_event(
        &mut self,
        participant: ParticipantId,
        now: Instant,
        event: ParticipantEvent,
        out: &mut Outbox<'_>,
    ) {
        let _ = (participant, now, event, out);
    }

    /// When [`Application::on_timeout`] must run next (the earliest media due).
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    /// The deadline passed: send what is due at `now`.
    fn on_timeout(&mut self, now: Instant, out: &mut Outbox<'_>) {
        let _ = (now, out);
    }
}

/// An [`Application`] that does nothing (participants still answer RTCP as browsers do).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoApplication;

impl Application for NoApplication {}

/// Counters of the shell itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Datagrams the socket refused (buffer full or error): dropped.
    pub send_dropped: u64,
    /// Receive errors (e.g. ICMP reports surfacing on the socket).
    pub receive_errors: u64,
    /// Timer loop iterations.
    pub timer_wakeups: u64,
    /// Datagrams participants sent that their impairment dropped (random or bursty loss, a
    /// full rate-limit queue): participant → node, every participant.
    pub impair_up_dropped: u64,
    /// Datagrams participants sent that their impairment released later than they were sent
    /// (delay, jitter, rate limit; each copy of a duplicate counts): participant → node.
    pub impair_up_delayed: u64,
    /// Datagrams received for participants that their impairment dropped: node → participant.
    pub impair_down_dropped: u64,
    /// Datagrams received for participants that their impairment handed over later than they
    /// arrived: node → participant.
    pub impair_down_delayed: u64,
    /// Datagrams dropped before an impairment stage because it already held
    /// [`MAX_IMPAIRED_IN_FLIGHT`] (either direction). Not in [`ImpairmentStats`]: the stage
    /// never saw them.
    pub impair_overflow: u64,
}

/// A participant's impairment seed from a run's `seed` and the participant's index in the
/// run (its join order, say): every participant gets its own random sequence, and the same
/// run seed gives the same sequences again. Pass the result to [`Driver::set_impairment`].
pub fn impairment_seed(seed: u64, participant_index: u64) -> u64 {
    splitmix64(seed ^ splitmix64(participant_index))
}

/// SplitMix64's output function: a well-mixed 64-bit value from any input (neighbouring
/// seeds must not give neighbouring random sequences).
fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One direction of an impaired participant: the stage, and the address of each datagram
/// in it.
struct Stage {
    impairment: Impairment,
    /// Destination (up) or source (down) of each datagram in the stage, keyed by the address
    /// of its buffer. The stage carries bytes only, and since it drops, duplicates and
    /// reorders, a queue of addresses beside it would not stay in step. A buffer's address is
    /// unique while the datagram lives (its duplicates share it, hence `copies`), and the
    /// entry leaves with the last copy, so keys cannot collide and the map holds exactly what
    /// is in flight.
    tags: HashMap<usize, Tag>,
}

/// What the driver remembers of a datagram in a [`Stage`].
#[derive(Debug, Clone, Copy)]
struct Tag {
    address: SocketAddr,
    pushed: Instant,
    /// Copies still in the stage (2 after a duplication).
    copies: usize,
}

/// A datagram a [`Stage`] released.
struct Released {
    /// Its release time (at or before the `now` it was polled at).
    at: Instant,
    address: SocketAddr,
    datagram: Bytes,
}

/// The counters of one direction in [`DriverStats`].
struct Counters<'a> {
    dropped: &'a mut u64,
    delayed: &'a mut u64,
    overflow: &'a mut u64,
}

impl DriverStats {
    fn up(&mut self) -> Counters<'_> {
        Counters {
            dropped: &mut self.impair_up_dropped,
            delayed: &mut self.impair_up_delayed,
            overflow: &mut self.impair_overflow,
        }
    }

    fn down(&mut self) -> Counters<'_> {
        Counters {
            dropped: &mut self.impair_down_dropped,
            delayed: &mut self.impair_down_delayed,
            overflow: &mut self.impair_overflow,
        }
    }
}

/// Datagrams the stage dropped, for any reason.
fn stage_dropped(stats: &ImpairmentStats) -> u64 {
    stats.dropped_random + stats.dropped_burst + stats.dropped_queue
}

impl Stage {
    fn new(config: ImpairmentConfig, seed: u64) -> Self {
        Self {
            impairment: Impairment::new(config, seed),
            tags: HashMap::new(),
        }
    }

    /// Hands `datagram` (to or from `address`) to the stage at `now`.
    fn push(&mut self, now: Instant, address: SocketAddr, datagram: Bytes, counters: Counters<'_>) {
        // An empty datagram has no buffer of its own to key it by; it carries nothing anyway.
        if datagram.is_empty() {
            return;
        }
        if self.impairment.in_flight() >= MAX_IMPAIRED_IN_FLIGHT {
            *counters.overflow += 1;
            return;
        }
        let key = datagram.as_ptr() as usize;
        let in_flight = self.impairment.in_flight();
        let dropped = stage_dropped(&self.impairment.stats());
        self.impairment.push(now, datagram);
        *counters.dropped += stage_dropped(&self.impairment.stats()).saturating_sub(dropped);
        let copies = self.impairment.in_flight().saturating_sub(in_flight);
        if copies > 0 {
            self.tags
                .entry(key)
                .or_insert(Tag {
                    address,
                    pushed: now,
                    copies: 0,
                })
                .copies += copies;
        }
    }

    /// The next datagram due at `now`.
    fn poll(&mut self, now: Instant, counters: Counters<'_>) -> Option<Released> {
        loop {
            // The stage releases the datagram its `poll_timeout` reports: that is its release
            // time.
            let at = self.impairment.poll_timeout().filter(|at| *at <= now)?;
            let datagram = self.impairment.poll(now)?;
            let Entry::Occupied(mut entry) = self.tags.entry(datagram.as_ptr() as usize) else {
                // Every datagram in the stage has its tag; one without has nowhere to go.
                continue;
            };
            let tag = *entry.get();
            if tag.copies <= 1 {
                entry.remove();
            } else {
                entry.get_mut().copies -= 1;
            }
            if at > tag.pushed {
                *counters.delayed += 1;
            }
            return Some(Released {
                at,
                address: tag.address,
                datagram,
            });
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.impairment.poll_timeout()
    }
}

/// The two stages of an impaired participant ([`Driver::set_impairment`]).
struct Impaired {
    /// Participant → node.
    up: Stage,
    /// Node → participant.
    down: Stage,
}

struct Slot {
    participant: Participant,
    socket: Rc<UdpSocket>,
    /// The deadline this participant has in the heap, if any.
    scheduled: Option<Instant>,
    receiver: Option<JoinHandle<()>>,
    /// `None` for the direct path. Boxed: most slots have none.
    impairment: Option<Box<Impaired>>,
}

/// Access to the driver's participants from inside [`Application`] callbacks (and
/// [`Driver::with`]): sends go out at once.
pub struct Outbox<'a> {
    now: Instant,
    slots: &'a mut Vec<Option<Slot>>,
    timers: &'a mut Timers,
    stats: &'a mut DriverStats,
}

impl Outbox<'_> {
    /// The time of the call this outbox belongs to.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// SRTP-protects and sends one RTP packet of `participant` now
    /// ([`ParticipantError::NotConnected`] also for an unknown participant).
    pub fn send_rtp(
        &mut self,
        participant: ParticipantId,
        packet: &[u8],
    ) -> Result<(), ParticipantError> {
        self.send(participant, |p, now| p.send_rtp(now, packet))
    }

    /// SRTCP-protects and sends one (compound) RTCP packet of `participant` now.
    pub fn send_rtcp(
        &mut self,
        participant: ParticipantId,
        packet: &[u8],
    ) -> Result<(), ParticipantError> {
        self.send(participant, |p, now| p.send_rtcp(now, packet))
    }

    /// Queues through `queue` on the participant, then flushes what it queued.
    fn send(
        &mut self,
        participant: ParticipantId,
        queue: impl FnOnce(&mut Participant, Instant) -> Result<(), ParticipantError>,
    ) -> Result<(), ParticipantError> {
        let now = self.now;
        let slot = slot_mut(self.slots, participant)?;
        queue(&mut slot.participant, now)?;
        flush(slot, self.stats, now);
        if slot.impairment.is_some() {
            // The up stage may hold it: its release time must reach the timer heap.
            self.timers.dirty.push(participant.0);
        }
        Ok(())
    }

    /// A participant, e.g. to read its stats. Whatever it queues through this reference is
    /// sent when the callback returns.
    pub fn participant(&mut self, participant: ParticipantId) -> Option<&mut Participant> {
        let index = participant.0 as usize;
        let slot = self.slots.get_mut(index)?.as_mut()?;
        self.timers.dirty.push(participant.0);
        Some(&mut slot.participant)
    }

    /// What the impairment of `participant` did so far, up (participant → node) and down
    /// (node → participant); `None` without one (or for an unknown participant).
    pub fn impairment_stats(
        &self,
        participant: ParticipantId,
    ) -> Option<(ImpairmentStats, ImpairmentStats)> {
        let slot = self.slots.get(participant.0 as usize)?.as_ref()?;
        slot.impairment.as_deref().map(Impaired::stats)
    }

    /// The ids of the participants currently in the driver.
    pub fn participants(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| ParticipantId(i as u32))
    }
}

fn slot_mut(
    slots: &mut [Option<Slot>],
    participant: ParticipantId,
) -> Result<&mut Slot, ParticipantError> {
    slots
        .get_mut(participant.0 as usize)
        .and_then(Option::as_mut)
        .ok_or(ParticipantError::NotConnected)
}

#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32)>>,
    /// The deadline the timer loop sleeps until.
    sleeping_until: Option<Instant>,
    /// Participants touched through [`Outbox::participant`], to service afterwards.
    dirty: Vec<u32>,
}

struct State<A> {
    app: A,
    slots: Vec<Option<Slot>>,
    timers: Timers,
    stats: DriverStats,
    shutdown: bool,
}

struct Shared<A> {
    state: RefCell<State<A>>,
    wake: Notify,
}

/// The single-threaded shell serving many participants. Cheap to clone (a handle).
///
/// Everything must run inside one [`tokio::task::LocalSet`] on a current-thread runtime:
/// [`Driver::add`] spawns the participant's receive task with `spawn_local`, and
/// [`Driver::run`] is the timer loop. Methods called while an [`Application`] callback runs
/// (re-entrantly) find the state borrowed and return `None`.
pub struct Driver<A> {
    shared: Rc<Shared<A>>,
}

impl<A> Clone for Driver<A> {
    fn clone(&self) -> Self {
        Self {
            shared: Rc::clone(&self.shared),
        }
    }
}

impl<A> std::fmt::Debug for Driver<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Driver")
    }
}

/// Binds a participant's UDP socket on `ip`, port 0 (each participant its own 5-tuple).
pub async fn bind(ip: IpAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(SocketAddr::new(ip, 0)).await
}

impl<A: Application + 'static> Driver<A> {
    /// A driver around `app`, with no participants yet.
    pub fn new(app: A) -> Self {
        Self {
            shared: Rc::new(Shared {
                state: RefCell::new(State {
                    app,
                    slots: Vec::new(),
                    timers: Timers::default(),
                    stats: DriverStats::default(),
                    shutdown: false,
                }),
                wake: Notify::new(),
            }),
        }
    }

    /// Adds a participant with its socket (bound at [`Participant::local_address`]) and
    /// starts receiving. Must be called inside the driver's `LocalSet`.
    pub fn add(&self, participant: Participant, socket: UdpSocket) -> Option<ParticipantId> {
        let socket = Rc::new(socket);
        let id = {
            let mut state = self.shared.state.try_borrow_mut().ok()?;
            let id = u32::try_from(state.slots.len()).ok()?;
            state.slots.push(Some(Slot {
                participant,
                socket: Rc::clone(&socket),
                scheduled: None,
                receiver: None,
                impairment: None,
            }));
            let now = Instant::now();
            service(&mut state, id, now);
            self.shared.wake.notify_one();
            id
        };
        let task = tokio::task::spawn_local(receive_loop(Rc::clone(&self.shared), id, socket));
        if let Ok(mut state) = self.shared.state.try_borrow_mut() {
            if let Some(Some(slot)) = state.slots.get_mut(id as usize) {
                slot.receiver = Some(task);
            }
        }
        Some(ParticipantId(id))
    }

    /// Removes a participant (its socket closes, its receive task ends) and returns it.
    pub fn remove(&self, participant: ParticipantId) -> Option<Participant> {
        let mut state = self.shared.state.try_borrow_mut().ok()?;
        let slot = state.slots.get_mut(participant.0 as usize)?.take()?;
        if let Some(task) = slot.receiver {
            task.abort();
        }
        Some(slot.participant)
    }

    /// Runs `f` with the application and an [`Outbox`] (e.g. to set up media for a new
    /// participant, or to read counters), then sends what it queued.
    pub fn with<R>(&self, f: impl FnOnce(&mut A, &mut Outbox<'_>) -> R) -> Option<R> {
        let mut state = self.shared.state.try_borrow_mut().ok()?;
        let now = Instant::now();
        let State {
            app,
            slots,
            timers,
            stats,
            ..
        } = &mut *state;
        let mut out = Outbox {
            now,
            slots,
            timers,
            stats,
        };
        let result = f(app, &mut out);
        service_dirty(slots, timers, stats, now);
        drop(state);
        // The application may have moved its deadline earlier.
        self.shared.wake.notify_one();
        Some(result)
    }

    /// Runs `f` on one participant (e.g. [`Participant::set_remote`] after joining), then
    /// services it.
    pub fn with_participant<R>(
        &self,
        participant: ParticipantId,
        f: impl FnOnce(&mut Participant) -> R,
    ) -> Option<R> {
        let mut state = self.shared.state.try_borrow_mut().ok()?;
        let slot = state.slots.get_mut(participant.0 as usize)?.as_mut()?;
        let result = f(&mut slot.participant);
        service(&mut state, participant.0, Instant::now());
        drop(state);
        self.shared.wake.notify_one();
        Some(result)
    }

    /// Puts `participant` behind a network impairment: `up` on what it sends (participant →
    /// node), `down` on what it receives (node → participant), each stage with its own
    /// random sequence derived from `seed` (see [`impairment_seed`] for one seed per
    /// participant). Replaces an earlier impairment, discarding what that one held.
    ///
    /// Received datagrams are copied into the down stage and handed over at their release
    /// time; sent ones wait in the up stage. When both configurations are transparent
    /// ([`ImpairmentConfig::is_transparent`]), better not call this: the direct path is
    /// cheaper. `false` for an unknown participant, or when called from an [`Application`]
    /// callback.
    pub fn set_impairment(
        &self,
        participant: ParticipantId,
        up: ImpairmentConfig,
        down: ImpairmentConfig,
        seed: u64,
    ) -> bool {
        let Ok(mut state) = self.shared.state.try_borrow_mut() else {
            return false;
        };
        let Some(Some(slot)) = state.slots.get_mut(participant.0 as usize) else {
            return false;
        };
        slot.impairment = Some(Box::new(Impaired {
            up: Stage::new(up, splitmix64(seed ^ UP_STREAM)),
            down: Stage::new(down, splitmix64(seed ^ DOWN_STREAM)),
        }));
        true
    }

    /// What the impairment of `participant` did so far: (up, down). `None` without one, for
    /// an unknown participant, or from an [`Application`] callback (use
    /// [`Outbox::impairment_stats`] there).
    pub fn impairment_stats(
        &self,
        participant: ParticipantId,
    ) -> Option<(ImpairmentStats, ImpairmentStats)> {
        let state = self.shared.state.try_borrow().ok()?;
        let slot = state.slots.get(participant.0 as usize)?.as_ref()?;
        slot.impairment.as_deref().map(Impaired::stats)
    }

    /// The shell's counters.
    pub fn stats(&self) -> Option<DriverStats> {
        Some(self.shared.state.try_borrow().ok()?.stats)
    }

    /// Makes [`Driver::run`] return and every receive task end.
    pub fn shutdown(&self) {
        if let Ok(mut state) = self.shared.state.try_borrow_mut() {
            state.shutdown = true;
            for slot in state.slots.iter_mut().flatten() {
                if let Some(task) = slot.receiver.take() {
                    task.abort();
                }
            }
        }
        self.shared.wake.notify_one();
    }

    /// The timer loop: participants' and the application's deadlines, until
    /// [`Driver::shutdown`].
    pub async fn run(&self) {
        loop {
            let deadline = {
                let Ok(mut state) = self.shared.state.try_borrow_mut() else {
                    tokio::task::yield_now().await;
                    continue;
                };
                if state.shutdown {
                    return;
                }
                let now = Instant::now();
                state.stats.timer_wakeups += 1;
                fire_due(&mut state, now);
                let State {
                    app,
                    slots,
                    timers,
                    stats,
                    ..
                } = &mut *state;
                if app.poll_timeout().is_some_and(|at| at <= now) {
                    let mut out = Outbox {
                        now,
                        slots,
                        timers,
                        stats,
                    };
                    app.on_timeout(now, &mut out);
                    service_dirty(slots, timers, stats, now);
                }
                let participants = state.timers.heap.peek().map(|Reverse((at, _))| *at);
                let deadline = match (participants, state.app.poll_timeout()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                state.timers.sleeping_until = deadline;
                deadline
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = self.shared.wake.notified() => {}
                    }
                }
                None => self.shared.wake.notified().await,
            }
        }
    }
}

/// Handles every participant deadline that has passed.
fn fire_due<A: Application>(state: &mut State<A>, now: Instant) {
    while let Some(Reverse((at, id))) = state.timers.heap.peek().copied() {
        if at > now {
            break;
        }
        state.timers.heap.pop();
        let Some(Some(slot)) = state.slots.get_mut(id as usize) else {
            continue;
        };
        if slot.scheduled != Some(at) {
            // Superseded by an earlier deadline that already fired.
            continue;
        }
        slot.scheduled = None;
        if slot.impairment.is_none() {
            slot.participant.handle_timeout(now);
        } else {
            // The deadline may be a stage's release time rather than the participant's own:
            // deliver what is due, and wake the participant only when it asked to be.
            deliver_down(state, id, now);
            if let Some(Some(slot)) = state.slots.get_mut(id as usize) {
                if slot.participant.poll_timeout().is_some_and(|at| at <= now) {
                    slot.participant.handle_timeout(now);
                }
            }
        }
        service(state, id, now);
    }
}

/// After the state machine of `id` ran: events to the application, datagrams out, the DTLS
/// task spawned, the next deadline scheduled.
fn service<A: Application>(state: &mut State<A>, id: u32, now: Instant) {
    let State {
        app,
        slots,
        timers,
        stats,
        ..
    } = state;
    loop {
        let Some(Some(slot)) = slots.get_mut(id as usize) else {
            return;
        };
        let Some(event) = slot.participant.poll_event() else {
            break;
        };
        let mut out = Outbox {
            now,
            slots,
            timers,
            stats,
        };
        app.on_event(ParticipantId(id), now, event, &mut out);
    }
    let Some(Some(slot)) = slots.get_mut(id as usize) else {
        return;
    };
    if let Some(task) = slot.participant.poll_dtls_task() {
        tokio::task::spawn_local(task);
    }
    flush(slot, stats, now);
    schedule(slot, id, timers);
    service_dirty(slots, timers, stats, now);
}

/// Flushes and reschedules the participants touched through [`Outbox::participant`]. Their
/// events wait for their next service; datagrams and deadlines cannot.
fn service_dirty(
    slots: &mut [Option<Slot>],
    timers: &mut Timers,
    stats: &mut DriverStats,
    now: Instant,
) {
    while let Some(id) = timers.dirty.pop() {
        let Some(Some(slot)) = slots.get_mut(id as usize) else {
            continue;
        };
        flush(slot, stats, now);
        schedule(slot, id, timers);
    }
}

/// Puts the participant's next deadline (with its impairment's release times) in the heap
/// unless an earlier one is there.
fn schedule(slot: &mut Slot, id: u32, timers: &mut Timers) {
    let mut next = slot.participant.poll_timeout();
    if let Some(impaired) = slot.impairment.as_deref() {
        for at in [impaired.up.poll_timeout(), impaired.down.poll_timeout()]
            .into_iter()
            .flatten()
        {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    if let Some(at) = next {
        if slot.scheduled.is_none_or(|scheduled| at < scheduled) {
            slot.scheduled = Some(at);
            timers.heap.push(Reverse((at, id)));
        }
    }
}

/// Sends what the participant queued — through its up stage, when impaired, at `now`.
fn flush(slot: &mut Slot, stats: &mut DriverStats, now: Instant) {
    if let Some(impaired) = slot.impairment.as_deref_mut() {
        flush_impaired(&mut slot.participant, &slot.socket, impaired, stats, now);
        return;
    }
    while let Some(transmit) = slot.participant.poll_transmit() {
        match slot
            .socket
            .try_send_to(&transmit.contents, transmit.destination)
        {
            Ok(_) => stats.datagrams_sent += 1,
            Err(_) => stats.send_dropped += 1,
        }
        slot.participant.recycle(transmit.contents);
    }
}

/// [`flush`] of an impaired participant: its datagrams into the up stage, what the stage
/// releases by `now` out of the socket.
fn flush_impaired(
    participant: &mut Participant,
    socket: &UdpSocket,
    impaired: &mut Impaired,
    stats: &mut DriverStats,
    now: Instant,
) {
    while let Some(transmit) = participant.poll_transmit() {
        // The vector becomes the `Bytes` without a copy.
        let datagram = Bytes::from(transmit.contents);
        impaired
            .up
            .push(now, transmit.destination, datagram, stats.up());
    }
    while let Some(released) = impaired.up.poll(now, stats.up()) {
        match socket.try_send_to(&released.datagram, released.address) {
            Ok(_) => stats.datagrams_sent += 1,
            Err(_) => stats.send_dropped += 1,
        }
        // The last copy's buffer goes back to the pool, as on the direct path.
        if let Ok(buffer) = released.datagram.try_into_mut() {
            participant.recycle(buffer.into());
        }
    }
}

/// Hands the datagrams of `id`'s down stage that are due by `now` to the participant, and
/// its RTP to the application, each at its release time.
fn deliver_down<A: Application>(state: &mut State<A>, id: u32, now: Instant) {
    let State {
        app,
        slots,
        timers,
        stats,
        ..
    } = state;
    loop {
        let Some(Some(slot)) = slots.get_mut(id as usize) else {
            return;
        };
        let Some(impaired) = slot.impairment.as_deref_mut() else {
            return;
        };
        let Some(released) = impaired.down.poll(now, stats.down()) else {
            return;
        };
        // The participant decrypts in place: the stage's buffer when this is its last copy,
        // else a copy of it (a duplicate).
        let mut datagram = released
            .datagram
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let at = released.at;
        if let Some(packet) = slot
            .participant
            .handle_datagram(at, released.address, &mut datagram)
        {
            let mut out = Outbox {
                now: at,
                slots,
                timers,
                stats,
            };
            app.on_rtp(ParticipantId(id), at, &packet, &mut out);
        }
    }
}

impl Impaired {
    fn stats(&self) -> (ImpairmentStats, ImpairmentStats) {
        (self.up.impairment.stats(), self.down.impairment.stats())
    }
}

/// What a receive task does after a batch.
enum AfterBatch {
    /// Wait for the socket again.
    Wait,
    /// The batch was full: let the other tasks run first.
    Yield,
    /// The participant is gone or the driver shut down.
    Stop,
}

/// One participant's receive task.
async fn receive_loop<A: Application>(shared: Rc<Shared<A>>, id: u32, socket: Rc<UdpSocket>) {
    let mut buffer = vec![0u8; MAX_DATAGRAM.max(2048)];
    loop {
        let first = socket.recv_from(&mut buffer).await;
        match receive_batch(&shared, id, &socket, &mut buffer, first) {
            AfterBatch::Wait => {}
            AfterBatch::Yield => tokio::task::yield_now().await,
            AfterBatch::Stop => return,
        }
    }
}

/// Handles `first` and whatever else the socket already holds (up to [`RECEIVE_BATCH`]),
/// then services the participant. Synchronous: the state is never borrowed across an await.
fn receive_batch<A: Application>(
    shared: &Shared<A>,
    id: u32,
    socket: &UdpSocket,
    buffer: &mut [u8],
    first: std::io::Result<(usize, SocketAddr)>,
) -> AfterBatch {
    let Ok(mut state) = shared.state.try_borrow_mut() else {
        // Never happens on one thread between awaits; the datagram is dropped if it does.
        return AfterBatch::Wait;
    };
    if state.shutdown {
        return AfterBatch::Stop;
    }
    let now = Instant::now();
    let mut next = Some(first);
    let mut handled = 0;
    while let Some(received) = next.take() {
        match received {
            Ok((len, from)) => {
                state.stats.datagrams_received += 1;
                let State {
                    app,
                    slots,
                    timers,
                    stats,
                    ..
                } = &mut *state;
                let Some(Some(slot)) = slots.get_mut(id as usize) else {
                    return AfterBatch::Stop;
                };
                let datagram = buffer.get_mut(..len).unwrap_or_default();
                if let Some(impaired) = slot.impairment.as_deref_mut() {
                    // A copy: the receive buffer is reused for the next datagram.
                    let datagram = Bytes::copy_from_slice(datagram);
                    impaired.down.push(now, from, datagram, stats.down());
                } else if let Some(packet) = slot.participant.handle_datagram(now, from, datagram) {
                    let mut out = Outbox {
                        now,
                        slots,
                        timers,
                        stats,
                    };
                    app.on_rtp(ParticipantId(id), now, &packet, &mut out);
                }
            }
            Err(_) => state.stats.receive_errors += 1,
        }
        handled += 1;
        if handled < RECEIVE_BATCH {
            match socket.try_recv_from(buffer) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => next = Some(other),
            }
        }
    }
    let before = state.timers.sleeping_until;
    // What the down stage releases at once (no delay configured) is handed over now.
    deliver_down(&mut state, id, now);
    service(&mut state, id, now);
    // The earliest deadline: this participant's, or another's that the application's
    // callbacks made sooner (a send into an impaired participant's up stage). The timer loop
    // sleeps until the heap's earliest entry, so anything earlier in it is new.
    let earliest = state.timers.heap.peek().map(|Reverse((at, _))| *at);
    drop(state);
    // Wake the timer loop if something now needs it before it planned to wake.
    if earliest.is_some_and(|at| before.is_none_or(|b| at < b)) {
        shared.wake.notify_one();
    }
    if handled >= RECEIVE_BATCH {
        AfterBatch::Yield
    } else {
        AfterBatch::Wait
    }
}
