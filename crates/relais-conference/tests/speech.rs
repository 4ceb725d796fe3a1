//! Dominant speaker identification and silence suppression on simulated conversations:
//! deterministic time (20 ms audio frames), seeded pseudo-random audio levels.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

use std::time::{Duration, Instant};

use relais_conference::speech::{
    DominantSpeakerConfig, DominantSpeakerEvent, DominantSpeakerIdentification, SilenceFilter,
    SilenceFilterConfig, DEFAULT_QUIET_LEVEL, DEFAULT_SILENCE_TIMEOUT, LEVEL_HISTORY_LEN,
};
use relais_conference::EndpointId;

const FRAME: Duration = Duration::from_millis(20);
/// Opus DTX: one comfort-noise packet per 400 ms while silent.
const DTX_PERIOD_FRAMES: usize = 20;

/// xorshift64: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `low..=high`.
    fn range(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }

    fn level(&mut self, low: u8, high: u8) -> u8 {
        self.range(usize::from(low), usize::from(high)) as u8
    }
}

#[derive(Debug, Clone, Copy)]
struct Turn {
    speaker: usize,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone, Copy)]
struct Cough {
    endpoint: usize,
    turn: usize,
}

/// Audio levels per endpoint per frame; `None`: no packet (DTX).
struct Script {
    levels: Vec<Vec<Option<u8>>>,
    turns: Vec<Turn>,
    coughs: Vec<Cough>,
}

impl Script {
    /// Everybody silent: DTX comfort noise (-100..-127 dBov) every 400 ms, phases spread.
    fn silent(rng: &mut Rng, endpoints: usize, frames: usize) -> Self {
        let levels = (0..endpoints)
            .map(|_| {
                let phase = rng.range(0, DTX_PERIOD_FRAMES - 1);
                (0..frames)
                    .map(|frame| (frame % DTX_PERIOD_FRAMES == phase).then(|| rng.level(100, 127)))
                    .collect()
            })
            .collect();
        Self {
            levels,
            turns: Vec::new(),
            coughs: Vec::new(),
        }
    }

    fn set(&mut self, endpoint: usize, frame: usize, level: u8) {
        self.levels[endpoint][frame] = Some(level);
    }

    /// Speech from `start` for `len` frames: words (200..700 ms, -20..-60 dBov around a
    /// per-word loudness) separated by pauses between words (60..240 ms, -60..-95 dBov, still
    /// sent); with `long_pauses`, some pauses last 600..900 ms. Starts and ends with a word.
    fn speak(
        &mut self,
        rng: &mut Rng,
        endpoint: usize,
        start: usize,
        len: usize,
        long_pauses: bool,
    ) {
        let end = start + len;
        let mut frame = start;
        while frame < end {
            let word_base = rng.range(30, 45) as i32;
            let word_end = (frame + rng.range(10, 35)).min(end);
            while frame < word_end {
                let level = (word_base + rng.range(0, 16) as i32 - 8).clamp(20, 60);
                self.set(endpoint, frame, level as u8);
                frame += 1;
            }
            let pause = if long_pauses && rng.range(0, 9) == 0 {
                rng.range(30, 45)
            } else {
                rng.range(3, 12)
            };
            // Leave room for a closing word.
            if frame + pause + 10 > end {
                continue;
            }
            for _ in 0..pause {
                let level = rng.level(60, 95);
                self.set(endpoint, frame, level);
                frame += 1;
            }
        }
    }

    /// A loud cough (-15..-30 dBov) of `len` frames.
    fn cough(&mut self, rng: &mut Rng, endpoint: usize, start: usize, len: usize) {
        for frame in start..start + len {
            let level = rng.level(15, 30);
            self.set(endpoint, frame, level);
        }
    }

    /// Turns of 3..6 s among `speakers`, never the same speaker twice in a row, each after a
    /// gap of 0..400 ms, from frame `cursor`; returns the frame after the last turn.
    fn add_turns(
        &mut self,
        rng: &mut Rng,
        speakers: &[usize],
        turns: usize,
        mut cursor: usize,
        long_pauses: bool,
    ) -> usize {
        for _ in 0..turns {
            let previous = self.turns.last().map(|turn| turn.speaker);
            let speaker = loop {
                let candidate = speakers[rng.range(0, speakers.len() - 1)];
                if Some(candidate) != previous {
                    break candidate;
                }
            };
            let start = cursor + rng.range(0, 20);
            let len = rng.range(150, 300);
            self.speak(rng, speaker, start, len, long_pauses);
            self.turns.push(Turn {
                speaker,
                start,
                end: start + len,
            });
            cursor = start + len;
        }
        cursor
    }
}

fn at(start: Instant, frame: usize) -> Instant {
    start + FRAME * frame as u32
}

fn ms(duration: Duration) -> u128 {
    duration.as_millis()
}

#[derive(Debug, Default)]
struct Trace {
    /// (frame, dominant speaker after the decision), one per decision.
    decisions: Vec<(usize, Option<usize>)>,
    /// (frame, event).
    events: Vec<(usize, DominantSpeakerEvent)>,
}

/// Feeds every packet of `script` to `dsi` in time order, running decisions when due.
fn run(script: &Script, dsi: &mut DominantSpeakerIdentification, start: Instant) -> Trace {
    let frames = script.levels[0].len();
    let mut trace = Trace::default();
    for frame in 0..frames {
        let now = at(start, frame);
        for (endpoint, levels) in script.levels.iter().enumerate() {
            if let Some(level) = levels[frame] {
                dsi.audio_level(now, EndpointId(endpoint as u64), level);
            }
        }
        if dsi.poll_timeout().is_some_and(|due| due <= now) {
            dsi.handle_timeout(now);
            trace
                .decisions
                .push((frame, dsi.dominant_speaker().map(|id| id.0 as usize)));
        }
        while let Some(event) = dsi.poll_event() {
            trace.events.push((frame, event));
        }
    }
    trace
}

fn dsi_with(endpoints: usize, config: DominantSpeakerConfig) -> DominantSpeakerIdentification {
    let mut dsi = DominantSpeakerIdentification::new(config);
    for endpoint in 0..endpoints {
        dsi.add_speaker(EndpointId(endpoint as u64));
    }
    dsi
}

#[test]
fn dominant_speaker_follows_a_scripted_conversation() {
    const SPEAKERS: usize = 6;
    const TURNS: usize = 30;
    let mut rng = Rng(0x0005_eed0_fd51);
    let start = Instant::now();

    // 1 s of silence, 30 turns, 6 s of general silence, then one more turn.
    let mut script = Script::silent(&mut rng, SPEAKERS, 60 * TURNS * 15);
    let all: Vec<usize> = (0..SPEAKERS).collect();
    let mut cursor = script.add_turns(&mut rng, &all, TURNS, 50, false);
    // Every other turn somebody else (not the previous speaker) coughs for 200..440 ms over
    // the speech, once the speaker holds the floor (1.6 s in, past the latency bound) and
    // about 1 s before the turn ends. (A cough while the floor is still changing hands, the
    // old speaker already quiet, is the loudest sound around and may take the floor.)
    for (index, turn) in script
        .turns
        .clone()
        .into_iter()
        .enumerate()
        .skip(1)
        .step_by(2)
    {
        let previous = script.turns[index - 1].speaker;
        let endpoint = loop {
            let candidate = rng.range(0, SPEAKERS - 1);
            if candidate != turn.speaker && candidate != previous {
                break candidate;
            }
        };
        let cough_len = rng.range(10, 22);
        let latest = (turn.end - turn.start - cough_len - 50).max(80);
        let cough_start = turn.start + rng.range(80, latest);
        script.cough(&mut rng, endpoint, cough_start, cough_len);
        script.coughs.push(Cough {
            endpoint,
            turn: index,
        });
    }
    let last_speech = cursor;
    let config = DominantSpeakerConfig {
        silence_timeout: Some(DEFAULT_SILENCE_TIMEOUT),
        ..DominantSpeakerConfig::default()
    };
    // The silence timeout runs from the last frame loud enough to count as speech activity.
    let last_speaker = script.turns[TURNS - 1].speaker;
    let last_loud = (0..last_speech)
        .rev()
        .find(|&frame| {
            script.levels[last_speaker][frame]
                .is_some_and(|level| level <= config.active_frame_level)
        })
        .expect("the last turn has loud frames");
    cursor += 300;
    let final_speaker = (script.turns[TURNS - 1].speaker + 1) % SPEAKERS;
    script.speak(&mut rng, final_speaker, cursor, 150, false);
    let final_turn = Turn {
        speaker: final_speaker,
        start: cursor,
        end: cursor + 150,
    };
    for levels in &mut script.levels {
        levels.truncate(final_turn.end + 50);
    }

    let mut dsi = dsi_with(SPEAKERS, config);
    let trace = run(&script, &mut dsi, start);

    let mut latencies = Vec::new();
    let mut extra_changes = 0;
    let window_end = |index: usize| {
        script
            .turns
            .get(index + 1)
            .map_or(last_speech, |next: &Turn| next.start)
    };
    for (index, turn) in script.turns.iter().enumerate() {
        let end = window_end(index);
        let in_turn = |frame: usize| frame >= turn.start && frame < end;
        let took_floor = trace
            .decisions
            .iter()
            .find(|&&(frame, dominant)| in_turn(frame) && dominant == Some(turn.speaker))
            .map(|&(frame, _)| frame)
            .unwrap_or_else(|| panic!("turn {index} ({turn:?}): speaker never took the floor"));
        let latency = FRAME * (took_floor - turn.start) as u32;
        assert!(
            latency <= Duration::from_millis(1500),
            "turn {index}: took the floor after {latency:?}"
        );
        latencies.push(latency);
        // Once it has the floor, it keeps it for the rest of its turn.
        for &(frame, dominant) in &trace.decisions {
            if frame >= took_floor && in_turn(frame) {
                assert_eq!(
                    dominant,
                    Some(turn.speaker),
                    "turn {index}: flapped at frame {frame}"
                );
            }
        }
        let changes = trace
            .events
            .iter()
            .filter(|(frame, event)| {
                in_turn(*frame)
                    && matches!(event, DominantSpeakerEvent::DominantSpeakerChanged { .. })
            })
            .count();
        assert!(changes <= 1, "turn {index}: {changes} changes");
        extra_changes += changes.saturating_sub(1);
    }
    for cough in &script.coughs {
        let turn = script.turns[cough.turn];
        let end = window_end(cough.turn);
        assert!(
            !trace
                .decisions
                .iter()
                .any(|&(frame, dominant)| frame >= turn.start
                    && frame < end
                    && dominant == Some(cough.endpoint)),
            "cough of {} in turn {} took the floor",
            cough.endpoint,
            cough.turn
        );
    }

    // General silence: reported once the last speaker has been quiet for the timeout.
    let silence: Vec<_> = trace
        .events
        .iter()
        .filter(|(_, event)| matches!(event, DominantSpeakerEvent::Silence { .. }))
        .collect();
    assert_eq!(silence.len(), 1, "one silence period: {silence:?}");
    let (silence_frame, silence_event) = *silence[0];
    assert_eq!(
        silence_event,
        DominantSpeakerEvent::Silence {
            last_speaker: EndpointId(last_speaker as u64)
        }
    );
    let silence_after = FRAME * (silence_frame - last_loud) as u32;
    assert!(
        silence_after > DEFAULT_SILENCE_TIMEOUT
            && silence_after <= DEFAULT_SILENCE_TIMEOUT + Duration::from_millis(400),
        "silence reported {silence_after:?} after the last loud frame"
    );
    // Silence ends with the next speaker, who has no predecessor.
    let (resume_frame, resume) = trace
        .events
        .iter()
        .copied()
        .find(|&(frame, _)| frame > silence_frame)
        .expect("speech after the silence");
    assert_eq!(
        resume,
        DominantSpeakerEvent::DominantSpeakerChanged {
            speaker: EndpointId(final_speaker as u64),
            previous: None
        }
    );
    let resume_latency = FRAME * (resume_frame - final_turn.start) as u32;
    assert!(resume_latency <= Duration::from_millis(1500));
    assert!(!dsi.is_silent());
    assert_eq!(
        dsi.dominant_speaker(),
        Some(EndpointId(final_speaker as u64))
    );
    let previous = dsi.previous_speakers(10);
    assert_eq!(previous.first(), Some(&EndpointId(last_speaker as u64)));
    assert!(!previous.contains(&EndpointId(final_speaker as u64)));
    let order: Vec<EndpointId> = dsi.speaker_order().collect();
    assert_eq!(order.len(), SPEAKERS);
    assert_eq!(order.first(), Some(&EndpointId(final_speaker as u64)));

    latencies.sort();
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    println!(
        "{} turns, {} coughs: switch latency min {} ms, mean {} ms, max {} ms; extra changes {}; \
         silence reported {} ms after the last loud frame, floor retaken {} ms after speech resumed",
        latencies.len(),
        script.coughs.len(),
        ms(latencies[0]),
        ms(mean),
        ms(latencies[latencies.len() - 1]),
        extra_changes,
        ms(silence_after),
        ms(resume_latency),
    );
}

#[test]
fn silence_filter_suppresses_non_speakers_and_keeps_every_speech_packet() {
    const ENDPOINTS: usize = 50;
    const SPEAKERS: [usize; 3] = [0, 1, 2];
    /// Endpoints whose room noise defeats DTX now and then: 20 ms packets at -72..-95 dBov.
    const NOISY: std::ops::Range<usize> = 40..50;
    let mut rng = Rng(0xd75e_ed50);
    let start = Instant::now();

    let mut script = Script::silent(&mut rng, ENDPOINTS, 60 * 50 * 20);
    let end = script.add_turns(&mut rng, &SPEAKERS, 20, 50, true);
    for endpoint in NOISY {
        let mut frame = rng.range(0, 500);
        while frame + 150 < end {
            let len = rng.range(50, 150);
            for noisy in frame..frame + len {
                let level = rng.level(72, 95);
                script.set(endpoint, noisy, level);
            }
            frame += len + rng.range(250, 750);
        }
    }
    for levels in &mut script.levels {
        levels.truncate(end + 50);
    }
    let frames = end + 50;

    let mut dsi = dsi_with(ENDPOINTS, DominantSpeakerConfig::default());
    let mut filters: Vec<SilenceFilter> = (0..ENDPOINTS)
        .map(|_| SilenceFilter::new(SilenceFilterConfig::default()))
        .collect();
    let turn_at = |frame: usize| {
        script
            .turns
            .iter()
            .find(|turn| frame >= turn.start && frame < turn.end)
            .map(|turn| turn.speaker)
    };

    let mut speech_packets = 0u64;
    let mut speech_admitted = 0u64;
    let mut quiet = [0u64; 2]; // [never-speakers, speakers off their turn]
    let mut quiet_suppressed = [0u64; 2];
    for frame in 0..frames {
        let now = at(start, frame);
        let speaking = turn_at(frame);
        for (endpoint, filter) in filters.iter_mut().enumerate() {
            let Some(level) = script.levels[endpoint][frame] else {
                continue;
            };
            let id = EndpointId(endpoint as u64);
            dsi.audio_level(now, id, level);
            let active = dsi.is_active_speaker(now, id);
            let admitted = filter.admit(now, Some(level), active);
            if speaking == Some(endpoint) {
                speech_packets += 1;
                speech_admitted += u64::from(admitted);
            } else if level >= DEFAULT_QUIET_LEVEL {
                let group = usize::from(SPEAKERS.contains(&endpoint));
                quiet[group] += 1;
                quiet_suppressed[group] += u64::from(!admitted);
            }
        }
        if dsi.poll_timeout().is_some_and(|due| due <= now) {
            dsi.handle_timeout(now);
        }
        while dsi.poll_event().is_some() {}
    }

    assert_eq!(
        speech_admitted, speech_packets,
        "every speech packet of the speaker whose turn it is"
    );
    let total_quiet = quiet[0] + quiet[1];
    let total_suppressed = quiet_suppressed[0] + quiet_suppressed[1];
    let share = |suppressed: u64, of: u64| 100.0 * suppressed as f64 / of as f64;
    assert!(
        share(total_suppressed, total_quiet) >= 95.0,
        "{total_suppressed} of {total_quiet} quiet packets of non-speakers suppressed"
    );
    let admitted: u64 = filters.iter().map(|f| f.stats().admitted).sum();
    let suppressed: u64 = filters.iter().map(|f| f.stats().suppressed).sum();
    println!(
        "{} turns over {} s: {speech_admitted}/{speech_packets} speech packets admitted; quiet \
         packets of non-speakers suppressed: {:.2} % ({total_suppressed}/{total_quiet}; \
         never-speakers {:.2} %, speakers off turn {:.2} %); all packets: {admitted} admitted, \
         {suppressed} suppressed",
        script.turns.len(),
        frames / 50,
        share(total_suppressed, total_quiet),
        share(quiet_suppressed[0], quiet[0]),
        share(quiet_suppressed[1], quiet[1]),
    );
}

#[test]
fn speakers_are_added_removed_and_bounded() {
    let start = Instant::now();
    let mut dsi = dsi_with(3, DominantSpeakerConfig::default());
    let (a, b, stranger) = (EndpointId(0), EndpointId(1), EndpointId(99));

    // 10 000 levels: the history stays LEVEL_HISTORY_LEN frames, newest first.
    for frame in 0..10_000usize {
        let now = at(start, frame);
        dsi.audio_level(now, a, 20 + (frame % 30) as u8);
        if dsi.poll_timeout().is_some_and(|due| due <= now) {
            dsi.handle_timeout(now);
        }
    }
    let history: Vec<u8> = dsi.level_history(a).expect("known speaker").collect();
    assert_eq!(history.len(), LEVEL_HISTORY_LEN);
    assert_eq!(history[0], 20 + (9_999 % 30) as u8);
    assert_eq!(history[1], 20 + (9_998 % 30) as u8);
    assert_eq!(dsi.dominant_speaker(), Some(a));
    assert_eq!(dsi.stats().levels, 10_000);

    // Unknown endpoints are counted, not tracked.
    let now = at(start, 10_000);
    dsi.audio_level(now, stranger, 10);
    assert_eq!(dsi.stats().unknown_speaker_levels, 1);
    assert!(dsi.level_history(stranger).is_none());
    assert_eq!(dsi.speaker_count(), 3);

    // Late levels are ignored.
    dsi.audio_level(at(start, 5), a, 10);
    assert_eq!(dsi.stats().late_levels, 1);

    // Removing the dominant speaker frees its state and leaves the floor empty.
    dsi.remove_speaker(a);
    assert_eq!(dsi.speaker_count(), 2);
    assert!(dsi.level_history(a).is_none());
    assert_eq!(dsi.dominant_speaker(), None);
    assert!(!dsi.speaker_order().any(|id| id == a));
    assert!(dsi.previous_speakers(10).is_empty());
    assert!(!dsi.is_active_speaker(now, a));
    dsi.audio_level(now, a, 10);
    assert_eq!(dsi.stats().unknown_speaker_levels, 2);

    // The next speaker takes the floor from nobody.
    // (A speaker at one constant level is at its noise floor: silent. Vary it.)
    for frame in 10_001..10_100usize {
        let now = at(start, frame);
        dsi.audio_level(now, b, 20 + (frame % 30) as u8);
        if dsi.poll_timeout().is_some_and(|due| due <= now) {
            dsi.handle_timeout(now);
        }
    }
    assert_eq!(dsi.dominant_speaker(), Some(b));
    let mut events = Vec::new();
    while let Some(event) = dsi.poll_event() {
        events.push(event);
    }
    assert_eq!(
        events,
        vec![
            DominantSpeakerEvent::DominantSpeakerChanged {
                speaker: a,
                previous: None
            },
            DominantSpeakerEvent::DominantSpeakerChanged {
                speaker: b,
                previous: None
            },
        ]
    );
    dsi.remove_speaker(b);
    dsi.remove_speaker(EndpointId(2));
    assert_eq!(dsi.speaker_count(), 0);
    assert_eq!(dsi.poll_timeout(), None);
}

#[test]
fn unpolled_events_are_bounded() {
    let start = Instant::now();
    let mut dsi = dsi_with(2, DominantSpeakerConfig::default());
    // Two speakers alternate 2 s each, 100 times, and nobody polls the events.
    for frame in 0..100 * 100usize {
        let now = at(start, frame);
        let speaker = (frame / 100) % 2;
        dsi.audio_level(now, EndpointId(speaker as u64), 20 + (frame % 30) as u8);
        if dsi.poll_timeout().is_some_and(|due| due <= now) {
            dsi.handle_timeout(now);
        }
    }
    let stats = dsi.stats();
    assert_eq!(stats.dominant_changes, 100);
    let mut pending = 0;
    while dsi.poll_event().is_some() {
        pending += 1;
    }
    assert!(pending <= 32);
    assert_eq!(pending + stats.events_dropped, stats.dominant_changes);
}
