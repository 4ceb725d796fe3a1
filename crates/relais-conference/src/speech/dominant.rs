//! Dominant speaker identification after Volfin & Cohen, "Dominant Speaker Identification for
//! Multipoint Videoconferencing", as adapted to RFC 6464 audio levels by jitsi-videobridge.
//!
//! Owns, per speaker, a fixed-size history of audio levels (one per 20 ms frame, about one
//! second), the speaker's noise floor, and, for the conference, the dominant speaker, the
//! speech-activity order of the endpoints and the pending events.
//!
//! Every decision interval each speaker gets three speech-activity scores from its history:
//! immediate (the newest frame), medium (the newest five frames) and long (the whole
//! history). A speaker replaces the dominant one only when its scores exceed the dominant's at
//! all three time scales by the configured margins, so a dominant speaker who pauses keeps the
//! floor until somebody else actually talks, and a short noise does not take it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::EndpointId;

/// Frames of level history kept per speaker (one second of 20 ms frames): ten medium blocks
/// of five frames.
pub const LEVEL_HISTORY_LEN: usize = FRAMES_PER_MEDIUM * MEDIUMS_PER_LONG;

/// jitsi-videobridge's `speech-activity.silence-detection-timeout`, for
/// [`DominantSpeakerConfig::silence_timeout`].
pub const DEFAULT_SILENCE_TIMEOUT: Duration = Duration::from_secs(3);

/// The loudest RFC 6464 level magnitude (the value is -dBov, so 127 is silence).
const MAX_LEVEL: u8 = 127;
/// Energy (`127 - level`) of a frame without speech: a muted or missing packet.
const SILENT_ENERGY: u8 = 0;
/// Sub-bands of the immediate time scale (the paper's N1); the level range is split in 13.
const IMMEDIATE_SUBBANDS: u8 = 13;
/// Energy width of one sub-band: `ceil(127 / 13)` = 10.
const SUBBAND_WIDTH: u8 = MAX_LEVEL.div_ceil(IMMEDIATE_SUBBANDS);
/// Frames per medium block (N2).
const FRAMES_PER_MEDIUM: usize = 5;
/// Medium blocks in the long time scale (N3).
const MEDIUMS_PER_LONG: usize = 10;
/// Floor of a score: positive because scores are divided and their logarithms taken.
const MIN_SCORE: f64 = 1e-10;
/// Frames after which a risen noise floor is adopted (15 s of 20 ms frames).
const NOISE_FLOOR_WINDOW: u32 = 750;
/// Poisson rates of the paper's speech-activity likelihood per time scale.
const IMMEDIATE_LAMBDA: f64 = 0.78;
const MEDIUM_LAMBDA: f64 = 24.0;
const LONG_LAMBDA: f64 = 47.0;
/// Events kept for [`DominantSpeakerIdentification::poll_event`]; older ones are dropped
/// (counted) so a caller that never polls cannot grow memory.
const MAX_PENDING_EVENTS: usize = 32;

/// Tunables of [`DominantSpeakerIdentification`]. The default is jitsi-videobridge's except
/// for the two activity thresholds ([`active_frame_level`](Self::active_frame_level),
/// [`active_frames_per_block`](Self::active_frames_per_block)), relaxed because with JVB's
/// values a quiet new speaker could wait 2 s for the floor in simulated conversations.
#[derive(Debug, Clone, PartialEq)]
pub struct DominantSpeakerConfig {
    /// How often the dominant speaker is re-decided (JVB: 300 ms).
    pub decision_interval: Duration,
    /// Duration of one audio frame: a speaker that sent nothing for a frame is taken as silent
    /// for that frame (Opus DTX sends nothing while silent).
    pub frame_duration: Duration,
    /// Gap without a level after which the missing frames count as silent (JVB: 40 ms, more
    /// than one 20 or 30 ms packet so that jitter alone does not insert silence).
    pub level_idle_timeout: Duration,
    /// Margin (natural log of the score ratio) a challenger needs at the immediate time scale
    /// (JVB's C1 = 3).
    pub immediate_margin: f64,
    /// Margin at the medium time scale (C2 = 2); among several winning challengers the one
    /// with the largest medium margin takes the floor.
    pub medium_margin: f64,
    /// Margin at the long time scale (C3 = 0).
    pub long_margin: f64,
    /// Frames at least this loud (a level value at or below it, in -dBov) count as active at
    /// the medium and long time scales. Default 52; JVB's 47 (more than 7 of 13 sub-bands)
    /// ignores much quiet speech (about -45..-55 dBov).
    pub active_frame_level: u8,
    /// Active frames (of 5) that make a medium block count at the long time scale. Default 4,
    /// so one quiet frame does not void 100 ms of speech; JVB: 5.
    pub active_frames_per_block: u8,
    /// When set, a dominant speaker without speech for this long (and nobody taking over)
    /// ends in [`DominantSpeakerEvent::Silence`]. JVB's `enable-silence-detection` is off by
    /// default; its timeout is [`DEFAULT_SILENCE_TIMEOUT`].
    pub silence_timeout: Option<Duration>,
    /// How long after its last loud frame a speaker still counts as active for
    /// [`DominantSpeakerIdentification::is_active_speaker`].
    pub active_speaker_window: Duration,
}

impl Default for DominantSpeakerConfig {
    fn default() -> Self {
        Self {
            decision_interval: Duration::from_millis(300),
            frame_duration: Duration::from_millis(20),
            level_idle_timeout: Duration::from_millis(40),
            immediate_margin: 3.0,
            medium_margin: 2.0,
            long_margin: 0.0,
            active_frame_level: 52,
            active_frames_per_block: 4,
            silence_timeout: None,
            active_speaker_window: Duration::from_secs(1),
        }
    }
}

/// A change of the conference's speech state, for the bridge channel's
/// `DominantSpeakerEndpointChangeEvent` (its `previousSpeakers` come from
/// [`DominantSpeakerIdentification::previous_speakers`], its `silence` from
/// [`DominantSpeakerIdentification::is_silent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DominantSpeakerEvent {
    /// `speaker` now holds the floor; this also ends a silence period.
    DominantSpeakerChanged {
        /// The new dominant speaker.
        speaker: EndpointId,
        /// The dominant speaker it replaced; `None` after silence or at the start.
        previous: Option<EndpointId>,
    },
    /// Nobody has spoken for [`DominantSpeakerConfig::silence_timeout`]: the conference is
    /// silent until somebody talks; [`DominantSpeakerIdentification::dominant_speaker`] still
    /// names the last speaker, as JVB's event does next to `silence: true`.
    Silence {
        /// The dominant speaker before the silence.
        last_speaker: EndpointId,
    },
}

/// Counters of [`DominantSpeakerIdentification`] (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DominantSpeakerStats {
    /// Levels taken into a speaker's history.
    pub levels: u64,
    /// Levels ignored: the endpoint was not added as a speaker.
    pub unknown_speaker_levels: u64,
    /// Levels ignored: older than the speaker's newest level.
    pub late_levels: u64,
    /// Decisions made.
    pub decisions: u64,
    /// Times a speaker took the floor.
    pub dominant_changes: u64,
    /// Silence periods entered.
    pub silence_periods: u64,
    /// Events dropped because the caller did not poll them.
    pub events_dropped: u64,
}

/// Identifies the dominant speaker of a conference from its endpoints' audio levels.
///
/// Sans-IO: feed [`audio_level`](Self::audio_level) for every audio packet carrying the
/// audio-level extension, call [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), and drain [`poll_event`](Self::poll_event).
#[derive(Debug)]
pub struct DominantSpeakerIdentification {
    config: DominantSpeakerConfig,
    speakers: HashMap<EndpointId, Speaker>,
    /// Every speaker by speech activity: the dominant (or, in silence, the last dominant)
    /// speaker first, then the speakers who held the floor before, most recent first, then
    /// the others in the order they were added.
    order: Vec<EndpointId>,
    /// The floor holder; in silence, the last one.
    dominant: Option<EndpointId>,
    silent: bool,
    next_decision: Option<Instant>,
    events: VecDeque<DominantSpeakerEvent>,
    stats: DominantSpeakerStats,
}

impl DominantSpeakerIdentification {
    /// An identification without speakers.
    pub fn new(config: DominantSpeakerConfig) -> Self {
        Self {
            config,
            speakers: HashMap::new(),
            order: Vec::new(),
            dominant: None,
            silent: false,
            next_decision: None,
            events: VecDeque::new(),
            stats: DominantSpeakerStats::default(),
        }
    }

    /// Adds a speaker (an endpoint that may send audio); adding it again does nothing.
    pub fn add_speaker(&mut self, id: EndpointId) {
        if self.speakers.contains_key(&id) {
            return;
        }
        self.speakers.insert(id, Speaker::new());
        self.order.push(id);
    }

    /// Removes a speaker and its state. Removing the dominant speaker leaves the conference
    /// without one until somebody takes the floor; no event is emitted for the removal.
    pub fn remove_speaker(&mut self, id: EndpointId) {
        if self.speakers.remove(&id).is_none() {
            return;
        }
        self.order.retain(|&other| other != id);
        if self.dominant == Some(id) {
            self.dominant = None;
            self.silent = false;
        }
        if self.speakers.is_empty() {
            self.next_decision = None;
        }
    }

    /// Takes the audio level (-dBov, 0 loudest, 127 silence; the V bit must be masked off or
    /// is ignored) of a packet of `id` received at `now`. Levels of unknown endpoints and
    /// levels older than the speaker's newest are ignored and counted.
    pub fn audio_level(&mut self, now: Instant, id: EndpointId, level: u8) {
        let Some(speaker) = self.speakers.get_mut(&id) else {
            self.stats.unknown_speaker_levels += 1;
            return;
        };
        if speaker.last_frame_at.is_some_and(|last| now < last) {
            self.stats.late_levels += 1;
            return;
        }
        speaker.fill_missing_frames(now, &self.config);
        speaker.push_level(now, level, &self.config);
        self.stats.levels += 1;
        if self.next_decision.is_none() {
            self.next_decision = Some(now + self.config.decision_interval);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due; `None` without speakers or
    /// before the first level.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_decision
    }

    /// Makes the decision when it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.speakers.is_empty() {
            self.next_decision = None;
            return;
        }
        match self.next_decision {
            Some(due) if now >= due => {
                self.decide(now);
                self.next_decision = Some(now + self.config.decision_interval);
            }
            Some(_) => {}
            None => self.next_decision = Some(now + self.config.decision_interval),
        }
    }

    /// The next pending event, oldest first.
    pub fn poll_event(&mut self) -> Option<DominantSpeakerEvent> {
        self.events.pop_front()
    }

    /// The speaker holding the floor, or in silence ([`Self::is_silent`]) the last one;
    /// `None` before anybody spoke or after the dominant speaker was removed.
    pub fn dominant_speaker(&self) -> Option<EndpointId> {
        self.dominant
    }

    /// Every speaker by speech activity, for last-N: the dominant speaker (in silence, the
    /// last one) first, then the speakers who held the floor before, most recent first, then
    /// the others in the order they were added.
    pub fn speaker_order(&self) -> impl Iterator<Item = EndpointId> + '_ {
        self.order.iter().copied()
    }

    /// Up to `max` speakers who held the floor before [`Self::dominant_speaker`], most recent
    /// first. JVB's event lists at most 10.
    pub fn previous_speakers(&self, max: usize) -> Vec<EndpointId> {
        self.order
            .iter()
            .copied()
            .filter(|&id| Some(id) != self.dominant)
            .filter(|id| self.speakers.get(id).is_some_and(|s| s.has_been_dominant))
            .take(max)
            .collect()
    }

    /// Whether the conference is in a silence period (the `silence` flag of JVB's event).
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// Whether `id` holds the floor (outside silence) or had a loud frame within
    /// [`DominantSpeakerConfig::active_speaker_window`] before `now`; for
    /// [`SilenceFilter::admit`](super::SilenceFilter::admit).
    pub fn is_active_speaker(&self, now: Instant, id: EndpointId) -> bool {
        if self.dominant == Some(id) && !self.silent {
            return true;
        }
        self.speakers
            .get(&id)
            .and_then(|speaker| speaker.last_active_at)
            .is_some_and(|at| {
                now.saturating_duration_since(at) <= self.config.active_speaker_window
            })
    }

    /// Speakers currently tracked.
    pub fn speaker_count(&self) -> usize {
        self.speakers.len()
    }

    /// The level history of `id` in -dBov, newest first, [`LEVEL_HISTORY_LEN`] frames
    /// (silent frames read 127); `None` for an unknown speaker.
    pub fn level_history(&self, id: EndpointId) -> Option<impl ExactSizeIterator<Item = u8> + '_> {
        self.speakers
            .get(&id)
            .map(|speaker| speaker.energies.iter().map(|&energy| MAX_LEVEL - energy))
    }

    /// The counters.
    pub fn stats(&self) -> DominantSpeakerStats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &DominantSpeakerConfig {
        &self.config
    }

    fn decide(&mut self, now: Instant) {
        self.stats.decisions += 1;
        for speaker in self.speakers.values_mut() {
            speaker.fill_missing_frames(now, &self.config);
        }

        // Without a floor holder (start, silence, removal) challengers, the last speaker
        // included, compete against a speaker that never spoke.
        let holder = self.dominant.filter(|_| !self.silent);
        let baseline = holder
            .and_then(|id| self.speakers.get(&id))
            .map_or([MIN_SCORE; 3], |speaker| speaker.scores(&self.config));
        let mut winner = None;
        let mut best_medium_margin = self.config.medium_margin;
        // `order` rather than the map keeps ties deterministic.
        for &id in &self.order {
            if Some(id) == holder {
                continue;
            }
            let Some(speaker) = self.speakers.get(&id) else {
                continue;
            };
            let [immediate, medium, long] = speaker.scores(&self.config);
            let immediate_margin = (immediate / baseline[0]).ln();
            let medium_margin = (medium / baseline[1]).ln();
            let long_margin = (long / baseline[2]).ln();
            if immediate_margin > self.config.immediate_margin
                && medium_margin > best_medium_margin
                && long_margin > self.config.long_margin
            {
                best_medium_margin = medium_margin;
                winner = Some(id);
            }
        }

        if let Some(id) = winner {
            self.take_floor(id);
            return;
        }
        let (Some(timeout), Some(dominant)) = (self.config.silence_timeout, holder) else {
            return;
        };
        let quiet_for_timeout = self
            .speakers
            .get(&dominant)
            .and_then(|speaker| speaker.last_active_at)
            .is_none_or(|at| now.saturating_duration_since(at) > timeout);
        if quiet_for_timeout {
            self.silent = true;
            self.stats.silence_periods += 1;
            self.push_event(DominantSpeakerEvent::Silence {
                last_speaker: dominant,
            });
        }
    }

    fn take_floor(&mut self, id: EndpointId) {
        let previous = self.dominant.filter(|_| !self.silent);
        self.dominant = Some(id);
        self.silent = false;
        if let Some(speaker) = self.speakers.get_mut(&id) {
            speaker.has_been_dominant = true;
        }
        self.order.retain(|&other| other != id);
        self.order.insert(0, id);
        self.stats.dominant_changes += 1;
        self.push_event(DominantSpeakerEvent::DominantSpeakerChanged {
            speaker: id,
            previous,
        });
    }

    fn push_event(&mut self, event: DominantSpeakerEvent) {
        if self.events.len() >= MAX_PENDING_EVENTS {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(event);
    }
}

/// One speaker's level history and noise floor.
#[derive(Debug)]
struct Speaker {
    /// Frame energies (`127 - level`), newest first.
    energies: [u8; LEVEL_HISTORY_LEN],
    /// Time of the newest frame in `energies`, received or filled in as silent.
    last_frame_at: Option<Instant>,
    /// The lowest energy seen, the speaker's "silence"; levels close to it count as silent so
    /// that speakers with different background noise compete on equal footing. 0: unknown.
    noise_floor: u8,
    /// Candidate for a risen noise floor, the minimum over the current window; 0: none.
    next_noise_floor: u8,
    next_noise_floor_frames: u32,
    /// When the speaker last sent a loud frame (one that counts at the medium time scale).
    last_active_at: Option<Instant>,
    has_been_dominant: bool,
}

impl Speaker {
    fn new() -> Self {
        Self {
            energies: [SILENT_ENERGY; LEVEL_HISTORY_LEN],
            last_frame_at: None,
            noise_floor: SILENT_ENERGY,
            next_noise_floor: SILENT_ENERGY,
            next_noise_floor_frames: 0,
            last_active_at: None,
            has_been_dominant: false,
        }
    }

    /// Enters the frames between the newest one and `now` as silent once the gap exceeds the
    /// idle timeout (DTX senders are silent between comfort-noise packets). The frame at
    /// `now` itself is left for a packet that may still arrive.
    fn fill_missing_frames(&mut self, now: Instant, config: &DominantSpeakerConfig) {
        let Some(last) = self.last_frame_at else {
            return;
        };
        let gap = now.saturating_duration_since(last);
        if gap <= config.level_idle_timeout {
            return;
        }
        let frame_nanos = config.frame_duration.as_nanos().max(1);
        let gap_nanos = gap.as_nanos();
        let missing = (gap_nanos / frame_nanos).saturating_sub(1);
        if missing == 0 {
            return;
        }
        let silent_frames = usize::try_from(missing)
            .unwrap_or(LEVEL_HISTORY_LEN)
            .min(LEVEL_HISTORY_LEN);
        self.energies
            .rotate_right(silent_frames % LEVEL_HISTORY_LEN);
        for energy in self.energies.iter_mut().take(silent_frames) {
            *energy = SILENT_ENERGY;
        }
        // The newest filled frame lies one frame plus the remainder before `now`.
        let remainder = u64::try_from(gap_nanos % frame_nanos).unwrap_or(0);
        let filled_until = config.frame_duration + Duration::from_nanos(remainder);
        self.last_frame_at = Some(now.checked_sub(filled_until).unwrap_or(now));
    }

    fn push_level(&mut self, now: Instant, level: u8, config: &DominantSpeakerConfig) {
        let energy = MAX_LEVEL - level.min(MAX_LEVEL);
        self.energies.rotate_right(1);
        if let Some(newest) = self.energies.first_mut() {
            *newest = energy;
        }
        self.last_frame_at = Some(now);
        self.update_noise_floor(energy);
        if is_active_frame(energy, self.noise_floor, config) {
            self.last_active_at = Some(now);
        }
    }

    /// Follows the minimum energy down at once and up slowly: after a window without a new
    /// minimum, to the geometric mean of the old floor and the window's minimum.
    fn update_noise_floor(&mut self, energy: u8) {
        if energy == SILENT_ENERGY {
            return;
        }
        if self.noise_floor == SILENT_ENERGY || energy < self.noise_floor {
            self.noise_floor = energy;
            self.next_noise_floor = SILENT_ENERGY;
            self.next_noise_floor_frames = 0;
            return;
        }
        if self.next_noise_floor == SILENT_ENERGY || energy < self.next_noise_floor {
            self.next_noise_floor = energy;
        }
        self.next_noise_floor_frames += 1;
        if self.next_noise_floor_frames >= NOISE_FLOOR_WINDOW {
            let mean = (f64::from(self.noise_floor) * f64::from(self.next_noise_floor)).sqrt();
            // The mean lies between two u8 values, so the conversion cannot saturate.
            self.noise_floor = mean.clamp(0.0, f64::from(MAX_LEVEL)) as u8;
            self.next_noise_floor = SILENT_ENERGY;
            self.next_noise_floor_frames = 0;
        }
    }

    /// Speech-activity scores at the immediate, medium and long time scales.
    fn scores(&self, config: &DominantSpeakerConfig) -> [f64; 3] {
        let floor = self.noise_floor;
        let newest_subbands = self
            .energies
            .first()
            .map_or(0, |&energy| subbands(energy, floor));
        let mut newest_medium = 0;
        let mut active_mediums = 0;
        for (block, frames) in self.energies.chunks_exact(FRAMES_PER_MEDIUM).enumerate() {
            let active_frames = count_u8(
                frames
                    .iter()
                    .filter(|&&energy| is_active_frame(energy, floor, config)),
            );
            if block == 0 {
                newest_medium = active_frames;
            }
            if active_frames >= config.active_frames_per_block {
                active_mediums += 1;
            }
        }
        [
            speech_activity_score(newest_subbands, IMMEDIATE_SUBBANDS, IMMEDIATE_LAMBDA),
            speech_activity_score(newest_medium, FRAMES_PER_MEDIUM as u8, MEDIUM_LAMBDA),
            speech_activity_score(active_mediums, MEDIUMS_PER_LONG as u8, LONG_LAMBDA),
        ]
    }
}

/// Active sub-bands of a frame: energies within one sub-band of the noise floor are silence.
fn subbands(energy: u8, noise_floor: u8) -> u8 {
    if u16::from(energy) < u16::from(noise_floor) + u16::from(SUBBAND_WIDTH) {
        0
    } else {
        energy / SUBBAND_WIDTH
    }
}

/// Whether a frame counts at the medium and long time scales: loud enough and clear of the
/// speaker's noise floor.
fn is_active_frame(energy: u8, noise_floor: u8, config: &DominantSpeakerConfig) -> bool {
    subbands(energy, noise_floor) > 0
        && u16::from(energy) + u16::from(config.active_frame_level) >= u16::from(MAX_LEVEL)
}

fn count_u8<T>(items: impl Iterator<Item = T>) -> u8 {
    u8::try_from(items.count()).unwrap_or(u8::MAX)
}

/// The paper's likelihood ratio of speech over silence for `active` of `total` active units:
/// a binomial (p = 1/2) speech model against an exponential silence model of rate `lambda`.
fn speech_activity_score(active: u8, total: u8, lambda: f64) -> f64 {
    let active_f = f64::from(active);
    let score = binomial_coefficient(total, active).ln()
        - f64::from(total) * std::f64::consts::LN_2
        - lambda.ln()
        + lambda * active_f;
    score.max(MIN_SCORE)
}

fn binomial_coefficient(n: u8, k: u8) -> f64 {
    let k = k.min(n.saturating_sub(k));
    let mut coefficient = 1.0;
    for i in 0..k {
        coefficient = coefficient * f64::from(n - i) / f64::from(i + 1);
    }
    coefficient
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_the_jvb_formula() {
        // log C(13, 8) - 13 ln 2 - ln 0.78 + 0.78 * 8
        let expected = 1287f64.ln() - 13.0 * 2f64.ln() - 0.78f64.ln() + 0.78 * 8.0;
        assert!((speech_activity_score(8, 13, IMMEDIATE_LAMBDA) - expected).abs() < 1e-9);
        assert_eq!(speech_activity_score(0, 5, MEDIUM_LAMBDA), MIN_SCORE);
        assert_eq!(binomial_coefficient(10, 3), 120.0);
        assert_eq!(binomial_coefficient(5, 5), 1.0);
    }

    #[test]
    fn frames_near_the_noise_floor_are_silent() {
        assert_eq!(SUBBAND_WIDTH, 10);
        assert_eq!(subbands(25, 20), 0);
        assert_eq!(subbands(95, 20), 9);
        assert_eq!(subbands(5, 0), 0);
    }

    #[test]
    fn gaps_are_filled_with_silent_frames_but_not_the_current_one() {
        let config = DominantSpeakerConfig::default();
        let start = Instant::now();
        let mut speaker = Speaker::new();
        speaker.push_level(start, 30, &config);
        // 400 ms of DTX: 19 silent frames between the packets, then the packet's frame.
        let later = start + Duration::from_millis(400);
        speaker.fill_missing_frames(later, &config);
        speaker.fill_missing_frames(later, &config);
        speaker.push_level(later, 110, &config);
        let energies: Vec<u8> = speaker.energies.iter().copied().take(21).collect();
        assert_eq!(energies.first(), Some(&17));
        assert!(energies
            .iter()
            .skip(1)
            .take(19)
            .all(|&e| e == SILENT_ENERGY));
        assert_eq!(energies.get(20), Some(&97));
    }
}
