//! What a receiver asks for: the state built from its bridge-channel
//! `ReceiverVideoConstraints` messages, and the partial updates those messages carry.

use std::collections::BTreeMap;

/// The height of a thumbnail: the default `maxHeight` of a receiver that has not said
/// otherwise (JVB `thumbnail-max-height-px`), and the limit above which a camera is treated as
/// watched large (it then gets the on-stage frame-rate preference).
pub const THUMBNAIL_HEIGHT: i32 = 180;

/// The maximum resolution and frame rate a receiver wants for one source.
///
/// Both are soft limits when positive (a source with no layer within them is still sent at its
/// lowest resolution), no limit when negative, and `max_height == 0` turns the source off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoConstraints {
    /// Maximum height in pixels: negative = no limit, 0 = never send, positive = soft limit.
    pub max_height: i32,
    /// Maximum frame rate: not positive (or not a number) = no limit, positive = soft limit.
    pub max_frame_rate: f64,
}

impl VideoConstraints {
    /// No limit on resolution nor frame rate.
    pub const UNLIMITED: Self = Self {
        max_height: -1,
        max_frame_rate: -1.0,
    };

    /// Never send the source.
    pub const DISABLED: Self = Self {
        max_height: 0,
        max_frame_rate: -1.0,
    };

    /// Thumbnail size ([`THUMBNAIL_HEIGHT`]), any frame rate: the default for every source.
    pub const THUMBNAIL: Self = Self {
        max_height: THUMBNAIL_HEIGHT,
        max_frame_rate: -1.0,
    };

    /// Whether these constraints turn the source off (`maxHeight` 0).
    pub fn is_disabled(&self) -> bool {
        self.max_height == 0
    }

    /// Whether a layer of `height` pixels is within the height limit.
    pub(super) fn allows_height(&self, height: u16) -> bool {
        self.max_height < 0 || i32::from(height) <= self.max_height
    }

    /// Whether a layer at `frame_rate` is within the frame-rate limit (an unknown, i.e. not
    /// positive, frame rate always is).
    pub(super) fn allows_frame_rate(&self, frame_rate: f64) -> bool {
        let limited = self.max_frame_rate > 0.0;
        !limited || !super::layers::is_known(frame_rate) || frame_rate <= self.max_frame_rate
    }

    /// Whether the receiver shows the source larger than a thumbnail, which makes a camera
    /// prefer frame rate over resolution from 360p up (JVB `getPreferred`).
    pub(super) fn is_above_thumbnail(&self) -> bool {
        self.max_height < 0 || self.max_height > THUMBNAIL_HEIGHT
    }
}

/// One receiver's allocation settings, as its `ReceiverVideoConstraints` messages left them.
///
/// [`Default`] gives JVB's initial state: last-N −1 (unlimited), nothing selected or on stage,
/// every source at [`VideoConstraints::THUMBNAIL`], no assumed bandwidth.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConstraints {
    /// How many sources the receiver wants at most; negative = no limit, 0 = no video.
    pub last_n: i32,
    /// Source names to prefer over the speech order, most wanted first.
    pub selected_sources: Vec<String>,
    /// Source names shown large; they come before selected ones and get bandwidth first.
    pub on_stage_sources: Vec<String>,
    /// Constraints for every source not in [`Self::constraints`].
    pub default_constraints: VideoConstraints,
    /// Per-source constraints, by source name; they override the default.
    pub constraints: BTreeMap<String, VideoConstraints>,
    /// A bandwidth the receiver asks the bridge to assume (JVB `assumedBandwidthBps`, a
    /// testing aid); it caps the estimated bandwidth in [`super::allocate`].
    pub assumed_bandwidth_bps: Option<u64>,
}

impl Default for ReceiverConstraints {
    fn default() -> Self {
        Self {
            last_n: -1,
            selected_sources: Vec::new(),
            on_stage_sources: Vec::new(),
            default_constraints: VideoConstraints::THUMBNAIL,
            constraints: BTreeMap::new(),
            assumed_bandwidth_bps: None,
        }
    }
}

/// A partial `ReceiverVideoConstraints` message: each field present replaces the receiver's
/// value, each absent one leaves it as it was.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverConstraintsUpdate {
    /// `lastN`.
    pub last_n: Option<i32>,
    /// `selectedSources`.
    pub selected_sources: Option<Vec<String>>,
    /// `onStageSources`.
    pub on_stage_sources: Option<Vec<String>>,
    /// `defaultConstraints`.
    pub default_constraints: Option<VideoConstraints>,
    /// `constraints`: replaces the whole per-source map, as in JVB (it is not merged).
    pub constraints: Option<BTreeMap<String, VideoConstraints>>,
    /// `assumedBandwidthBps`: a negative value clears the assumption.
    pub assumed_bandwidth_bps: Option<i64>,
}

impl ReceiverConstraints {
    /// Applies a partial update; returns whether anything changed (the caller re-allocates
    /// only then).
    pub fn apply(&mut self, update: ReceiverConstraintsUpdate) -> bool {
        let mut changed = false;
        replace_if_different(&mut self.last_n, update.last_n, &mut changed);
        replace_if_different(
            &mut self.selected_sources,
            update.selected_sources,
            &mut changed,
        );
        replace_if_different(
            &mut self.on_stage_sources,
            update.on_stage_sources,
            &mut changed,
        );
        replace_if_different(
            &mut self.default_constraints,
            update.default_constraints,
            &mut changed,
        );
        replace_if_different(&mut self.constraints, update.constraints, &mut changed);
        let assumed = update
            .assumed_bandwidth_bps
            .map(|bps| u64::try_from(bps).ok());
        replace_if_different(&mut self.assumed_bandwidth_bps, assumed, &mut changed);
        changed
    }

    /// The constraints that apply to `source_name`: its own, or the default.
    pub fn constraints_for(&self, source_name: &str) -> VideoConstraints {
        self.constraints
            .get(source_name)
            .copied()
            .unwrap_or(self.default_constraints)
    }
}

fn replace_if_different<T: PartialEq>(field: &mut T, update: Option<T>, changed: &mut bool) {
    if let Some(value) = update {
        if *field != value {
            *field = value;
            *changed = true;
        }
    }
}
