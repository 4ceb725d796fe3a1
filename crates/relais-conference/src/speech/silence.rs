//! Silence suppression: per sending endpoint, whether an audio packet is worth forwarding.
//!
//! Owns the endpoint's last loud packet time and its admitted / suppressed counters. A quiet
//! packet (comfort noise, background noise) of an endpoint that is not speaking is dropped;
//! every packet of an endpoint while it speaks is kept, including the quiet frames between
//! words, through a hangover after each loud packet and through the active-speaker flag of
//! [`DominantSpeakerIdentification`](super::DominantSpeakerIdentification).
//!
//! Dropping leaves gaps in the RTP sequence numbers of the stream; the forwarder rewrites
//! them for the receivers.

use std::time::{Duration, Instant};

/// Default [`SilenceFilterConfig::quiet_level`]: -70 dBov. Speech is about -20..-60 dBov;
/// Opus DTX comfort noise (about -90..-127 dBov) and the background noise that noise
/// suppression leaves are quieter.
pub const DEFAULT_QUIET_LEVEL: u8 = 70;

/// Tunables of [`SilenceFilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceFilterConfig {
    /// Packets whose level (-dBov) is at or above this value are quiet; below it they are
    /// loud and always forwarded.
    pub quiet_level: u8,
    /// Quiet packets are still forwarded for this long after the endpoint's last loud one, so
    /// the pauses between words reach the receivers.
    pub hangover: Duration,
}

impl Default for SilenceFilterConfig {
    fn default() -> Self {
        Self {
            quiet_level: DEFAULT_QUIET_LEVEL,
            hangover: Duration::from_millis(500),
        }
    }
}

/// Counters of one [`SilenceFilter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SilenceStats {
    /// Packets forwarded.
    pub admitted: u64,
    /// Quiet packets dropped.
    pub suppressed: u64,
}

/// Decides, for one sending endpoint, which audio packets to forward.
#[derive(Debug, Clone)]
pub struct SilenceFilter {
    config: SilenceFilterConfig,
    last_loud_at: Option<Instant>,
    stats: SilenceStats,
}

impl SilenceFilter {
    /// A filter for an endpoint that has not sent a loud packet yet.
    pub fn new(config: SilenceFilterConfig) -> Self {
        Self {
            config,
            last_loud_at: None,
            stats: SilenceStats::default(),
        }
    }

    /// Whether to forward a packet received at `now` with audio level `level` (-dBov; the V
    /// bit is ignored; `None` without the extension). `speaker_is_active` is the endpoint's
    /// [`is_active_speaker`](super::DominantSpeakerIdentification::is_active_speaker).
    ///
    /// Forwarded: packets without a level, loud packets, and quiet packets of an active
    /// speaker or within the hangover after the endpoint's last loud packet.
    pub fn admit(&mut self, now: Instant, level: Option<u8>, speaker_is_active: bool) -> bool {
        let admitted = match level {
            None => true,
            Some(level) if level & 0x7F < self.config.quiet_level => {
                self.last_loud_at = Some(now);
                true
            }
            Some(_) => {
                speaker_is_active
                    || self
                        .last_loud_at
                        .is_some_and(|at| now.saturating_duration_since(at) <= self.config.hangover)
            }
        };
        if admitted {
            self.stats.admitted += 1;
        } else {
            self.stats.suppressed += 1;
        }
        admitted
    }

    /// The counters.
    pub fn stats(&self) -> SilenceStats {
        self.stats
    }
}

impl Default for SilenceFilter {
    fn default() -> Self {
        Self::new(SilenceFilterConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_packets_pass_only_within_the_hangover_or_while_active() {
        let start = Instant::now();
        let mut filter = SilenceFilter::new(SilenceFilterConfig::default());
        assert!(
            !filter.admit(start, Some(110), false),
            "comfort noise of a non-speaker"
        );
        assert!(filter.admit(start, None, false), "no level: forwarded");
        assert!(filter.admit(start, Some(30), false), "speech");
        let pause = start + Duration::from_millis(500);
        assert!(filter.admit(pause, Some(90), false), "within the hangover");
        let later = start + Duration::from_millis(520);
        assert!(!filter.admit(later, Some(90), false), "hangover over");
        assert!(filter.admit(later, Some(90), true), "active speaker");
        assert!(filter.admit(later, Some(0x80 | 30), false), "V bit ignored");
        assert_eq!(
            filter.stats(),
            SilenceStats {
                admitted: 5,
                suppressed: 2
            }
        );
    }
}
