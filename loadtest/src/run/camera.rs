//! A participant's camera in a run: the synthetic VP8 or H264 simulcast model, or a capture
//! replayed (`--replay`). Both answer keyframe requests and follow layer limits alike.

use std::time::Duration;

use crate::media::{LayerSet, MediaPacket, ReplaySource, VideoSource};

/// One layer as the run sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraLayer {
    /// Its SSRC.
    pub ssrc: u32,
    /// Its frame height.
    pub height: u32,
    /// Its target bitrate, kbit/s (what the sender's estimate must leave for it).
    pub kbps: u32,
}

/// What sends a participant's video.
#[derive(Debug)]
pub enum Camera {
    /// Frames modelled from the scenario's layers.
    Synthetic(VideoSource),
    /// A capture's video streams replayed with the scenario's SSRCs and resolutions.
    Replay {
        /// The source.
        source: Box<ReplaySource>,
        /// Its layers, lowest first.
        layers: Vec<CameraLayer>,
    },
}

impl Camera {
    /// The layers, lowest first.
    pub fn layers(&self) -> Vec<CameraLayer> {
        match self {
            Self::Synthetic(video) => video
                .layers()
                .map(|l| CameraLayer {
                    ssrc: l.ssrc,
                    height: u32::from(l.height),
                    kbps: l.kbps,
                })
                .collect(),
            Self::Replay { layers, .. } => layers.clone(),
        }
    }

    /// The layer `ssrc` belongs to.
    pub fn layer_of_ssrc(&self, ssrc: u32) -> Option<usize> {
        match self {
            Self::Synthetic(video) => video.layer_of_ssrc(ssrc),
            Self::Replay { source, .. } => source.layer_of_ssrc(ssrc),
        }
    }

    /// When the next packet is due (since the run's start); `None` when every layer is off.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self {
            Self::Synthetic(video) => video.poll_timeout(),
            Self::Replay { source, .. } => source.poll_timeout(),
        }
    }

    /// The next packet due at `now`, if any.
    pub fn poll(&mut self, now: Duration) -> Option<MediaPacket> {
        match self {
            Self::Synthetic(video) => video.poll(now),
            Self::Replay { source, .. } => source.poll(now),
        }
    }

    /// A PLI/FIR for `ssrc`: its next frame is a keyframe (rate-limited).
    pub fn request_keyframe_for_ssrc(&mut self, now: Duration, ssrc: u32) {
        match self {
            Self::Synthetic(video) => {
                let _ = video.request_keyframe_for_ssrc(now, ssrc);
            }
            Self::Replay { source, .. } => {
                let _ = source.request_keyframe_for_ssrc(now, ssrc);
            }
        }
    }

    /// The layers being sent.
    pub fn active_layers(&self) -> LayerSet {
        match self {
            Self::Synthetic(video) => video.active_layers(),
            Self::Replay { source, .. } => source.active_layers(),
        }
    }

    /// Sends exactly `set` from `now` on.
    pub fn set_active_layers(&mut self, now: Duration, set: LayerSet) {
        match self {
            Self::Synthetic(video) => video.set_active_layers(now, set),
            Self::Replay { source, .. } => source.set_active_layers(now, set),
        }
    }
}
