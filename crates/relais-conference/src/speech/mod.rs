//! Speech activity of a conference, sans-IO: who holds the floor
//! ([`DominantSpeakerIdentification`]) and which audio packets are worth forwarding
//! ([`SilenceFilter`]).
//!
//! Both work on the RFC 6464 audio-level header extension value: the level in -dBov, 0..=127,
//! 0 the loudest and 127 silence. Time is passed in by the caller.

mod dominant;
mod silence;

pub use dominant::{
    DominantSpeakerConfig, DominantSpeakerEvent, DominantSpeakerIdentification,
    DominantSpeakerStats, DEFAULT_SILENCE_TIMEOUT, LEVEL_HISTORY_LEN,
};
pub use silence::{SilenceFilter, SilenceFilterConfig, SilenceStats, DEFAULT_QUIET_LEVEL};
