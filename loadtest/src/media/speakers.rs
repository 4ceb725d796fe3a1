//! [`SpeakerSchedule`]: who speaks when, drawn once from the scenario's seed.
//!
//! The schedule has `concurrent` slots. Each slot holds one speaker for a turn of uniform
//! random length within the bounds; when the turn ends the slot passes to a participant
//! not speaking at that moment (and, when the pool allows, not the one who just spoke). So
//! at every instant before the horizon exactly `concurrent` distinct participants speak.
//!
//! The whole schedule up to a horizon is computed at construction (a few hundred turns for
//! an hour), so queries take `&self`, are cheap binary searches, and one schedule can be
//! shared by every participant of a run.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::scenario::Scenario;

/// What a [`SpeakerSchedule`] is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeakerParams {
    /// The seed every turn derives from.
    pub seed: u64,
    /// Speakers are participants `0..pool`.
    pub pool: u32,
    /// Speakers at once; capped by `pool`.
    pub concurrent: u32,
    /// Shortest turn.
    pub turn_min: Duration,
    /// Longest turn.
    pub turn_max: Duration,
}

impl SpeakerParams {
    /// The scenario's speakers: drawn from the video senders that also send audio (the
    /// first `min(video_senders, audio_senders)` participants), or from the audio senders
    /// when nobody sends video.
    pub fn from_scenario(scenario: &Scenario) -> Self {
        let audio = scenario.audio_senders();
        let pool = if scenario.video_senders > 0 {
            scenario.video_senders.min(audio)
        } else {
            audio
        };
        let [low, high] = scenario.audio.speaker_turn_s;
        Self {
            seed: scenario.seed,
            pool,
            concurrent: scenario.audio.concurrent_speakers,
            turn_min: Duration::from_secs(u64::from(low)),
            turn_max: Duration::from_secs(u64::from(high.max(low))),
        }
    }
}

/// One speaker turn: `participant` speaks during `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpeakerTurn {
    /// Who speaks.
    pub participant: u32,
    /// Which slot the turn fills, `0..concurrent`.
    pub slot: u32,
    /// When the turn begins.
    pub start: Duration,
    /// When it ends (exclusive).
    pub end: Duration,
}

/// Who speaks when, deterministic for a given [`SpeakerParams`] and horizon.
#[derive(Debug, Clone)]
pub struct SpeakerSchedule {
    concurrent: u32,
    horizon: Duration,
    /// Per slot, its turns in time order (back to back).
    slots: Vec<Vec<SpeakerTurn>>,
    /// Per participant of the pool, its turns as `(start, end)` in time order.
    by_participant: Vec<Vec<(Duration, Duration)>>,
}

impl SpeakerSchedule {
    /// Draws every turn that starts before `horizon`. Queries at or after the last turn's
    /// end find nobody speaking in that slot, so pick a horizon past the run's end (see
    /// [`horizon_for`](Self::horizon_for)).
    pub fn new(params: SpeakerParams, horizon: Duration) -> Self {
        let concurrent = params.concurrent.min(params.pool);
        let pool = params.pool;
        let mut rng = StdRng::seed_from_u64(params.seed);
        let turn_min_ms = millis(params.turn_min);
        let turn_max_ms = millis(params.turn_max).max(turn_min_ms);
        // At least 1 ms so a zero lower bound cannot stall the loop below.
        let draw_turn = |rng: &mut StdRng| {
            Duration::from_millis(rng.random_range(turn_min_ms..=turn_max_ms).max(1))
        };

        let mut slots: Vec<Vec<SpeakerTurn>> = Vec::with_capacity(concurrent as usize);
        let mut by_participant = vec![Vec::new(); pool as usize];
        // (participant, end) of each slot's current turn.
        let mut current: Vec<(u32, Duration)> = Vec::with_capacity(concurrent as usize);
        for slot in 0..concurrent {
            let participant = pick(&mut rng, pool, |p| current.iter().any(|&(c, _)| c == p));
            let turn = SpeakerTurn {
                participant,
                slot,
                start: Duration::ZERO,
                end: draw_turn(&mut rng),
            };
            current.push((participant, turn.end));
            slots.push(vec![turn]);
        }
        // Advance the slot whose turn ends first (lowest slot on ties) until all pass the
        // horizon.
        while let Some((slot, (previous, start))) = current
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, (_, end))| end < horizon)
            .min_by_key(|&(slot, (_, end))| (end, slot))
        {
            let avoid_previous = pool > concurrent;
            let participant = pick(&mut rng, pool, |p| {
                (avoid_previous && p == previous)
                    || current
                        .iter()
                        .enumerate()
                        .any(|(other, &(c, _))| other != slot && c == p)
            });
            let turn = SpeakerTurn {
                participant,
                slot: slot as u32,
                start,
                end: start + draw_turn(&mut rng),
            };
            if let Some(entry) = current.get_mut(slot) {
                *entry = (participant, turn.end);
            }
            if let Some(turns) = slots.get_mut(slot) {
                turns.push(turn);
            }
        }
        for turn in slots.iter().flatten() {
            if let Some(turns) = by_participant.get_mut(turn.participant as usize) {
                turns.push((turn.start, turn.end));
            }
        }
        for turns in &mut by_participant {
            turns.sort_unstable();
        }
        Self {
            concurrent,
            horizon,
            slots,
            by_participant,
        }
    }

    /// The scenario's schedule, up to [`horizon_for`](Self::horizon_for) the scenario.
    pub fn from_scenario(scenario: &Scenario) -> Self {
        Self::new(
            SpeakerParams::from_scenario(scenario),
            Self::horizon_for(scenario),
        )
    }

    /// A horizon safely past the scenario's end: twice ramp-up plus duration, plus a minute
    /// for teardown and slow joins.
    pub fn horizon_for(scenario: &Scenario) -> Duration {
        let run_s = u64::from(scenario.ramp_up_s) + u64::from(scenario.duration_s);
        Duration::from_secs(run_s * 2 + 60)
    }

    /// Speakers at once (`concurrent_speakers` capped by the pool).
    pub fn concurrent(&self) -> u32 {
        self.concurrent
    }

    /// The horizon the schedule was drawn to.
    pub fn horizon(&self) -> Duration {
        self.horizon
    }

    /// Every turn, slot by slot, each slot's in time order.
    pub fn turns(&self) -> impl Iterator<Item = &SpeakerTurn> + '_ {
        self.slots.iter().flatten()
    }

    /// The participants speaking at `t`, one per slot, in slot order.
    pub fn speakers_at(&self, t: Duration) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().filter_map(move |turns| {
            let index = turns
                .partition_point(|turn| turn.start <= t)
                .checked_sub(1)?;
            let turn = turns.get(index)?;
            (t < turn.end).then_some(turn.participant)
        })
    }

    /// Whether `participant` speaks at `t`.
    pub fn is_speaking(&self, participant: u32, t: Duration) -> bool {
        let Some(turns) = self.by_participant.get(participant as usize) else {
            return false;
        };
        turns
            .partition_point(|&(start, _)| start <= t)
            .checked_sub(1)
            .and_then(|index| turns.get(index))
            .is_some_and(|&(_, end)| t < end)
    }

    /// The first instant after `t` at which [`is_speaking`](Self::is_speaking) for
    /// `participant` changes, or `None` if it never does again. Lets a driver sleep until
    /// then rather than poll.
    pub fn next_change(&self, participant: u32, t: Duration) -> Option<Duration> {
        let turns = self.by_participant.get(participant as usize)?;
        let next = turns.partition_point(|&(start, _)| start <= t);
        let speaking_until = next
            .checked_sub(1)
            .and_then(|index| turns.get(index))
            .map(|&(_, end)| end)
            .filter(|&end| t < end);
        match speaking_until {
            // Speaking: the change is where back-to-back turns stop.
            Some(mut end) => {
                for &(start, next_end) in turns.get(next..).unwrap_or(&[]) {
                    if start > end {
                        break;
                    }
                    end = end.max(next_end);
                }
                Some(end)
            }
            None => turns.get(next).map(|&(start, _)| start),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A uniformly random participant of `0..pool` for which `excluded` is false; 0 when every
/// one is excluded (which the callers' `concurrent <= pool` rules out).
fn pick(rng: &mut StdRng, pool: u32, excluded: impl Fn(u32) -> bool) -> u32 {
    let candidates = (0..pool).filter(|&p| !excluded(p)).count();
    if candidates == 0 {
        return 0;
    }
    let nth = rng.random_range(0..candidates);
    (0..pool).filter(|&p| !excluded(p)).nth(nth).unwrap_or(0)
}
