//! Scenario files: the meeting a run reproduces (who sends what, what every receiver asks
//! for, the network in between and what counts as a pass).
//!
//! The shipped scenarios live in `loadtest/scenarios/` and are compiled in, so `--scenario
//! hostsharing` works from any directory; `--scenario path/to/file.toml` loads any other.

use std::path::Path;

use serde::Deserialize;

/// A scenario shipped with the tool: its name and its TOML text.
#[derive(Debug, Clone, Copy)]
pub struct ShippedScenario {
    /// The name `--scenario` accepts.
    pub name: &'static str,
    /// The file's text.
    pub toml: &'static str,
}

/// Every scenario in `loadtest/scenarios/`.
pub const SHIPPED: &[ShippedScenario] = &[
    ShippedScenario {
        name: "hostsharing",
        toml: include_str!("../scenarios/hostsharing.toml"),
    },
    ShippedScenario {
        name: "hostsharing-lossy",
        toml: include_str!("../scenarios/hostsharing-lossy.toml"),
    },
    ShippedScenario {
        name: "small",
        toml: include_str!("../scenarios/small.toml"),
    },
    ShippedScenario {
        name: "small-h264",
        toml: include_str!("../scenarios/small-h264.toml"),
    },
    ShippedScenario {
        name: "lecture",
        toml: include_str!("../scenarios/lecture.toml"),
    },
    ShippedScenario {
        name: "churn",
        toml: include_str!("../scenarios/churn.toml"),
    },
];

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Neither a shipped name nor a readable file.
    #[error("no shipped scenario named {name:?} (shipped: {shipped}) and no such file: {source}")]
    NotFound {
        /// What was asked for.
        name: String,
        /// The shipped names, comma separated.
        shipped: String,
        /// Why the file could not be read.
        source: std::io::Error,
    },
    /// The TOML does not describe a scenario.
    #[error("scenario {name:?}: {source}")]
    Parse {
        /// The scenario's name or path.
        name: String,
        /// What is wrong.
        source: toml::de::Error,
    },
    /// The values contradict each other.
    #[error("scenario {name:?}: {reason}")]
    Invalid {
        /// The scenario's name or path.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// One meeting, as a scenario file describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The profile name.
    pub name: String,
    /// Participants in the meeting; every one receives.
    pub participants: u32,
    /// How many of them also send simulcast video (the first `video_senders` participants).
    pub video_senders: u32,
    /// How many send audio (the first `audio_senders`); all of them when absent.
    #[serde(default)]
    pub audio_senders: Option<u32>,
    /// The measured steady state, after ramp-up, in seconds.
    pub duration_s: u32,
    /// Participants join evenly over this many seconds.
    pub ramp_up_s: u32,
    /// The seed every random choice derives from.
    pub seed: u64,
    /// What audio senders send.
    pub audio: AudioSection,
    /// What video senders send.
    pub video: VideoSection,
    /// What every receiver asks for.
    pub view: ViewSection,
    /// Impairment between participants and the node.
    #[serde(default)]
    pub network: NetworkSection,
    /// Participants joining and leaving during the run (the churn scenario).
    #[serde(default)]
    pub churn: Option<ChurnSection>,
    /// What counts as a pass.
    pub pass: PassSection,
}

/// `[audio]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSection {
    /// Codec name; only `opus`.
    pub codec: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Packet duration while speaking.
    pub ptime_ms: u32,
    /// Bitrate while speaking.
    pub bitrate_kbps: u32,
    /// Whether silent participants send only comfort noise.
    pub dtx: bool,
    /// Comfort-noise packet interval while silent.
    pub dtx_interval_ms: u32,
    /// Speakers active at once, drawn from the video senders.
    pub concurrent_speakers: u32,
    /// Bounds of one speaker turn, seconds.
    pub speaker_turn_s: [u32; 2],
    /// Whether packets carry the RFC 6464 audio level.
    pub audio_level_ext: bool,
}

/// `[video]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSection {
    /// Codec name: `VP8` (or `H264`).
    pub codec: String,
    /// Periodic keyframe interval, seconds.
    pub keyframe_interval_s: u32,
    /// Largest RTP payload of a video packet.
    pub mtu_payload_bytes: u32,
    /// Simulcast layers, lowest first.
    pub layers: Vec<VideoLayer>,
}

/// One simulcast layer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoLayer {
    /// RTP stream id (`a=rid`).
    pub rid: String,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Target bitrate.
    pub kbps: u32,
}

/// `[view]`: what every receiver asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewSection {
    /// Most video streams per receiver.
    pub last_n: u32,
    /// On-stage sources (the current dominant speakers).
    pub on_stage: u32,
    /// Height limit of on-stage sources.
    pub on_stage_max_height: u32,
    /// Height limit of everything else.
    pub thumbnail_max_height: u32,
}

/// `[network]`: the impairment of the lossy variant. Applied only when `apply` is true (the
/// `hostsharing-lossy` file sets it; `--impair` flags override).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Whether the `lossy_*` impairment applies to every participant in this scenario.
    #[serde(default)]
    pub apply: bool,
    /// Random loss, percent, each direction.
    #[serde(default)]
    pub lossy_loss_pct: f64,
    /// One-way delay added, ms.
    #[serde(default)]
    pub lossy_delay_ms: u32,
    /// Jitter around the delay, ms.
    #[serde(default)]
    pub lossy_jitter_ms: u32,
    /// Pass criterion under impairment: loss left after NACK/RTX recovery, percent.
    #[serde(default)]
    pub lossy_max_residual_loss_pct: Option<f64>,
    /// Pass criterion under impairment: share of lost video packets repaired in time, percent.
    #[serde(default)]
    pub lossy_min_recovered_pct: Option<f64>,
}

/// `[churn]`: participants leaving and being replaced while the meeting runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSection {
    /// Participants that leave (and are replaced by a newcomer) per minute.
    pub leaves_per_minute: u32,
    /// Bounds of how long a newcomer stays before it may be picked to leave, seconds.
    pub stay_s: [u32; 2],
}

/// `[pass]`: what "sustained" means, measured on every receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassSection {
    /// Most loss (gaps in received sequence numbers), percent.
    pub max_loss_pct: f64,
    /// Most added latency at the 99th percentile, ms.
    pub max_added_latency_p99_ms: f64,
    /// Least share of receivers that get every stream their view asks for, percent.
    pub min_streams_received_pct: f64,
    /// Longest gap in any allocated video stream after ramp-up, ms.
    pub max_video_freeze_ms: u32,
}

impl Scenario {
    /// A shipped scenario by name, or else a file by path.
    pub fn load(name_or_path: &str) -> Result<Self, ScenarioError> {
        if let Some(shipped) = SHIPPED.iter().find(|s| s.name == name_or_path) {
            return Self::parse(shipped.name, shipped.toml);
        }
        let text = std::fs::read_to_string(Path::new(name_or_path)).map_err(|source| {
            ScenarioError::NotFound {
                name: name_or_path.to_owned(),
                shipped: SHIPPED
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", "),
                source,
            }
        })?;
        Self::parse(name_or_path, &text)
    }

    /// Parses and checks scenario text; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|source| ScenarioError::Parse {
            name: origin.to_owned(),
            source,
        })?;
        scenario
            .validate()
            .map_err(|reason| ScenarioError::Invalid {
                name: origin.to_owned(),
                reason,
            })?;
        Ok(scenario)
    }

    /// How many participants send audio.
    pub fn audio_senders(&self) -> u32 {
        self.audio_senders.unwrap_or(self.participants)
    }

    fn validate(&self) -> Result<(), String> {
        if self.participants == 0 {
            return Err("participants must be at least 1".into());
        }
        if self.video_senders > self.participants {
            return Err("video_senders exceeds participants".into());
        }
        if self.audio_senders() > self.participants {
            return Err("audio_senders exceeds participants".into());
        }
        if !self.audio.codec.eq_ignore_ascii_case("opus") {
            return Err(format!("audio codec {:?} (only opus)", self.audio.codec));
        }
        if self.audio.ptime_ms == 0 || self.audio.dtx_interval_ms == 0 {
            return Err("audio ptime_ms and dtx_interval_ms must be positive".into());
        }
        let [low, high] = self.audio.speaker_turn_s;
        if low == 0 || low > high {
            return Err("speaker_turn_s must be [low, high] with 0 < low <= high".into());
        }
        if !matches!(
            self.video.codec.to_ascii_uppercase().as_str(),
            "VP8" | "H264"
        ) {
            return Err(format!("video codec {:?} (VP8 or H264)", self.video.codec));
        }
        if self.video.layers.is_empty() || self.video.layers.len() > 3 {
            return Err("video needs 1 to 3 simulcast layers".into());
        }
        if self.video.layers.iter().any(|l| l.fps == 0 || l.kbps == 0) {
            return Err("every video layer needs fps and kbps above 0".into());
        }
        if self
            .video
            .layers
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.height >= b.height))
        {
            return Err("video layers must be listed lowest first".into());
        }
        if self.video.mtu_payload_bytes < 200 {
            return Err("mtu_payload_bytes below 200".into());
        }
        if let Some(churn) = &self.churn {
            let [low, high] = churn.stay_s;
            if low > high {
                return Err("churn stay_s must be [low, high] with low <= high".into());
            }
        }
        Ok(())
    }
}
