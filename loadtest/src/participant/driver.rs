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

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Participant, ParticipantError, ParticipantEvent, ReceivedRtp, MAX_DATAGRAM};

/// Datagrams one receive task handles per wake-up before yielding to the others.
const RECEIVE_BATCH: usize = 64;

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
}

struct Slot {
    participant: Participant,
    socket: Rc<UdpSocket>,
    /// The deadline this participant has in the heap, if any.
    scheduled: Option<Instant>,
    receiver: Option<JoinHandle<()>>,
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
        let now = self.now;
        let slot = slot_mut(self.slots, participant)?;
        slot.participant.send_rtp(now, packet)?;
        flush(slot, self.stats);
        Ok(())
    }

    /// SRTCP-protects and sends one (compound) RTCP packet of `participant` now.
    pub fn send_rtcp(
        &mut self,
        participant: ParticipantId,
        packet: &[u8],
    ) -> Result<(), ParticipantError> {
        let now = self.now;
        let slot = slot_mut(self.slots, participant)?;
        slot.participant.send_rtcp(now, packet)?;
        flush(slot, self.stats);
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
        service_dirty(slots, timers, stats);
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
                    service_dirty(slots, timers, stats);
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
        slot.participant.handle_timeout(now);
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
    flush(slot, stats);
    schedule(slot, id, timers);
    service_dirty(slots, timers, stats);
}

/// Flushes and reschedules the participants touched through [`Outbox::participant`]. Their
/// events wait for their next service; datagrams and deadlines cannot.
fn service_dirty(slots: &mut [Option<Slot>], timers: &mut Timers, stats: &mut DriverStats) {
    while let Some(id) = timers.dirty.pop() {
        let Some(Some(slot)) = slots.get_mut(id as usize) else {
            continue;
        };
        flush(slot, stats);
        schedule(slot, id, timers);
    }
}

/// Puts the participant's next deadline in the heap unless an earlier one is there.
fn schedule(slot: &mut Slot, id: u32, timers: &mut Timers) {
    if let Some(at) = slot.participant.poll_timeout() {
        if slot.scheduled.is_none_or(|scheduled| at < scheduled) {
            slot.scheduled = Some(at);
            timers.heap.push(Reverse((at, id)));
        }
    }
}

/// Sends what the participant queued.
fn flush(slot: &mut Slot, stats: &mut DriverStats) {
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
                if let Some(packet) = slot.participant.handle_datagram(now, from, datagram) {
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
    service(&mut state, id, now);
    let scheduled = state
        .slots
        .get(id as usize)
        .and_then(Option::as_ref)
        .and_then(|s| s.scheduled);
    drop(state);
    // Wake the timer loop if this participant now needs it before it planned to wake.
    if scheduled.is_some_and(|at| before.is_none_or(|b| at < b)) {
        shared.wake.notify_one();
    }
    if handled >= RECEIVE_BATCH {
        AfterBatch::Yield
    } else {
        AfterBatch::Wait
    }
}
