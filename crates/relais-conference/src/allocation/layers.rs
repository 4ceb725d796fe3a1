//! What a source offers (its layers and video type) and, for one receiver's constraints,
//! which of those layers the allocation may choose from.

use super::VideoConstraints;
use crate::EndpointId;

/// The height from which an on-stage camera prefers frame rate over resolution (JVB
/// `onstage-preferred-height-px`): the bandwidth allocation raises it eagerly up to here.
pub const ONSTAGE_PREFERRED_HEIGHT: u16 = 360;

/// The frame rate an on-stage camera wants from [`ONSTAGE_PREFERRED_HEIGHT`] up (JVB
/// `onstage-preferred-framerate`); capped by the best frame rate the source sends.
pub const ONSTAGE_PREFERRED_FRAME_RATE: f64 = 30.0;

/// What a video source carries, as its sender signals it (`SourceVideoTypeMessage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoType {
    /// A camera (`CAMERA`): above 360p, frame rate matters as much as resolution.
    Camera,
    /// A screen share (`DESKTOP`): resolution first, a low frame rate is fine.
    Desktop,
    /// A screen share of moving content (`DESKTOP_HIGH_FPS`): resolution first, but above
    /// the lowest resolution only at a full frame rate.
    DesktopHighFps,
    /// No video (`NONE`, e.g. the sender muted it): never sent, takes no last-N slot.
    Disabled,
}

impl VideoType {
    /// Whether this is a screen share.
    pub fn is_screen_share(self) -> bool {
        matches!(self, Self::Desktop | Self::DesktopHighFps)
    }
}

/// One layer of a source: a simulcast encoding (or a VP9/AV1 spatial layer) at one temporal
/// layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerDescription {
    /// The simulcast encoding index, or the spatial layer id with SVC.
    pub encoding: u8,
    /// The temporal layer id.
    pub temporal: u8,
    /// Height in pixels.
    pub height: u16,
    /// Frames per second; not positive when unknown.
    pub frame_rate: f64,
    /// What forwarding this layer costs, in bits per second, the layers it depends on
    /// included.
    pub bitrate_bps: u64,
    /// Whether the sender is sending this layer now.
    pub active: bool,
}

/// One video source of another endpoint, as the allocation sees it.
#[derive(Debug, Clone, Copy)]
pub struct SourceDescription<'a> {
    /// The source name (`<endpoint>-v0`).
    pub name: &'a str,
    /// The endpoint sending it.
    pub owner: EndpointId,
    /// What it carries.
    pub video_type: VideoType,
    /// Its layers, in ascending quality (JVB's index order: by encoding, then temporal layer).
    pub layers: &'a [LayerDescription],
}

/// The layers of one source the allocation may choose from, for one receiver, in ascending
/// quality, with what each costs.
#[derive(Debug, Default)]
pub(super) struct ConsideredLayers {
    /// Per considered layer: its index in the source's layers, and its cost.
    layers: Vec<(usize, u64)>,
    /// Its height, parallel to `layers` (to find the screen-share oversend target).
    heights: Vec<u16>,
    /// The position (in `layers`) the allocation raises an on-stage source to eagerly.
    preferred: Option<usize>,
}

impl ConsideredLayers {
    /// Picks the layers of `source` worth considering under `constraints` (JVB
    /// `SingleSourceAllocation.selectLayers`).
    pub(super) fn select(source: &SourceDescription<'_>, constraints: &VideoConstraints) -> Self {
        if constraints.is_disabled() || source.video_type == VideoType::Disabled {
            return Self::default();
        }
        // A source with no active layer (just signalled, or paused) is considered with all
        // its layers at no cost, as in JVB, so it keeps its slot and shows as soon as it
        // sends; the caller re-allocates when a layer becomes active.
        let any_active = source.layers.iter().any(|layer| layer.active);
        let usable: Vec<(usize, &LayerDescription)> = source
            .layers
            .iter()
            .enumerate()
            .filter(|(_, layer)| layer.active || !any_active)
            .collect();
        let mut chosen = within_soft_limits(&usable, constraints);

        let min_height = chosen.iter().map(|(_, l)| l.height).min().unwrap_or(0);
        let preferred_height = match source.video_type {
            VideoType::Camera if constraints.is_above_thumbnail() => {
                let full_rate = full_frame_rate(&chosen);
                chosen.retain(|(_, l)| {
                    l.height < ONSTAGE_PREFERRED_HEIGHT
                        || l.height == min_height
                        || !is_known(l.frame_rate)
                        || l.frame_rate >= full_rate
                });
                Some(ONSTAGE_PREFERRED_HEIGHT.max(min_height))
            }
            VideoType::Camera => Some(min_height),
            VideoType::DesktopHighFps => {
                let full_rate = full_frame_rate(&chosen);
                chosen.retain(|(_, l)| {
                    l.height == min_height || !is_known(l.frame_rate) || l.frame_rate >= full_rate
                });
                None
            }
            VideoType::Desktop | VideoType::Disabled => None,
        };
        let preferred = match preferred_height {
            Some(height) => chosen.iter().rposition(|(_, l)| l.height <= height),
            // Screen shares want their best layer before anything else gets more.
            None => chosen.len().checked_sub(1),
        };
        Self {
            layers: chosen
                .iter()
                .map(|&(index, l)| (index, if any_active { l.bitrate_bps } else { 0 }))
                .collect(),
            heights: chosen.iter().map(|(_, l)| l.height).collect(),
            preferred,
        }
    }

    /// How many layers are considered.
    pub(super) fn len(&self) -> usize {
        self.layers.len()
    }

    /// The index, in the source's layers, of the considered layer at `position`.
    pub(super) fn layer_index(&self, position: usize) -> Option<usize> {
        self.layers.get(position).map(|&(index, _)| index)
    }

    /// What the considered layer at `position` costs (0 for no layer).
    pub(super) fn cost(&self, position: Option<usize>) -> u64 {
        position
            .and_then(|p| self.layers.get(p))
            .map_or(0, |&(_, cost)| cost)
    }

    /// The position of the best layer: what the source gets without a bandwidth limit.
    pub(super) fn ideal(&self) -> Option<usize> {
        self.layers.len().checked_sub(1)
    }

    /// The position an on-stage source is raised to eagerly.
    pub(super) fn preferred(&self) -> Option<usize> {
        self.preferred
    }

    /// The position an on-stage screen share may oversend up to: of the highest-resolution
    /// layers, the cheapest.
    pub(super) fn oversend_target(&self) -> Option<usize> {
        let max_height = self.heights.iter().copied().max()?;
        (0..self.len())
            .filter(|&p| self.heights.get(p) == Some(&max_height))
            .min_by_key(|&p| self.cost(Some(p)))
    }

    /// From `position`, skips to the best higher layer costing no more (JVB does the same: a
    /// better layer for the same bandwidth is always worth it).
    pub(super) fn settle(&self, position: usize) -> usize {
        let cost = self.cost(Some(position));
        (position..self.len())
            .rev()
            .find(|&p| self.cost(Some(p)) <= cost)
            .unwrap_or(position)
    }
}

/// The layers within the constraints; where none is, the soft-limit fallback: the lowest
/// resolution, and the lowest frame rate.
fn within_soft_limits<'a>(
    usable: &[(usize, &'a LayerDescription)],
    constraints: &VideoConstraints,
) -> Vec<(usize, &'a LayerDescription)> {
    let mut chosen: Vec<_> = usable
        .iter()
        .copied()
        .filter(|(_, l)| constraints.allows_height(l.height))
        .collect();
    if chosen.is_empty() {
        let Some(min_height) = usable.iter().map(|(_, l)| l.height).min() else {
            return chosen;
        };
        chosen = usable
            .iter()
            .copied()
            .filter(|(_, l)| l.height == min_height)
            .collect();
    }
    if chosen
        .iter()
        .any(|(_, l)| constraints.allows_frame_rate(l.frame_rate))
    {
        chosen.retain(|(_, l)| constraints.allows_frame_rate(l.frame_rate));
    } else {
        let min_rate = chosen
            .iter()
            .map(|(_, l)| l.frame_rate)
            .fold(f64::INFINITY, f64::min);
        chosen.retain(|(_, l)| l.frame_rate <= min_rate);
    }
    chosen
}

/// Whether a frame rate is known (senders may not say; unknown counts as good enough).
pub(super) fn is_known(frame_rate: f64) -> bool {
    frame_rate > 0.0
}

/// The frame rate a layer above the lowest resolution must reach to be worth its resolution:
/// the preferred one, or the best the source sends when that is lower.
fn full_frame_rate(layers: &[(usize, &LayerDescription)]) -> f64 {
    let best = layers
        .iter()
        .map(|(_, l)| l.frame_rate)
        .filter(|rate| is_known(*rate))
        .fold(0.0, f64::max);
    if best > 0.0 {
        best.min(ONSTAGE_PREFERRED_FRAME_RATE)
    } else {
        ONSTAGE_PREFERRED_FRAME_RATE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simulcast() -> Vec<LayerDescription> {
        let mut layers = Vec::new();
        for (encoding, height, bitrates) in [
            (0, 180, [50_000, 100_000, 150_000]),
            (1, 360, [200_000, 350_000, 500_000]),
            (2, 720, [600_000, 1_000_000, 1_500_000]),
        ] {
            for (temporal, (rate, bps)) in [7.5, 15.0, 30.0].into_iter().zip(bitrates).enumerate() {
                layers.push(LayerDescription {
                    encoding,
                    temporal: temporal as u8,
                    height,
                    frame_rate: rate,
                    bitrate_bps: bps,
                    active: true,
                });
            }
        }
        layers
    }

    fn considered(
        video_type: VideoType,
        layers: &[LayerDescription],
        constraints: VideoConstraints,
    ) -> Vec<usize> {
        let source = SourceDescription {
            name: "a-v0",
            owner: EndpointId(1),
            video_type,
            layers,
        };
        let selected = ConsideredLayers::select(&source, &constraints);
        (0..selected.len())
            .filter_map(|p| selected.layer_index(p))
            .collect()
    }

    #[test]
    fn stage_camera_needs_full_frame_rate_from_360p() {
        let layers = simulcast();
        let constraints = VideoConstraints {
            max_height: 720,
            max_frame_rate: -1.0,
        };
        assert_eq!(
            considered(VideoType::Camera, &layers, constraints),
            vec![0, 1, 2, 5, 8]
        );
        let source = SourceDescription {
            name: "a-v0",
            owner: EndpointId(1),
            video_type: VideoType::Camera,
            layers: &layers,
        };
        let selected = ConsideredLayers::select(&source, &constraints);
        // 360p/30 is the fourth considered layer.
        assert_eq!(selected.preferred(), Some(3));
    }

    #[test]
    fn thumbnail_camera_keeps_every_temporal_layer_of_180p() {
        let layers = simulcast();
        assert_eq!(
            considered(VideoType::Camera, &layers, VideoConstraints::THUMBNAIL),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn frame_rate_limit_lowers_the_stage_frame_rate_requirement() {
        let layers = simulcast();
        let constraints = VideoConstraints {
            max_height: 720,
            max_frame_rate: 15.0,
        };
        assert_eq!(
            considered(VideoType::Camera, &layers, constraints),
            vec![0, 1, 4, 7]
        );
    }

    #[test]
    fn desktop_keeps_low_frame_rates_and_high_fps_desktop_does_not() {
        let layers = simulcast();
        assert_eq!(
            considered(VideoType::Desktop, &layers, VideoConstraints::UNLIMITED),
            (0..9).collect::<Vec<_>>()
        );
        assert_eq!(
            considered(
                VideoType::DesktopHighFps,
                &layers,
                VideoConstraints::UNLIMITED
            ),
            vec![0, 1, 2, 5, 8]
        );
    }

    #[test]
    fn soft_limits_fall_back_to_lowest_resolution_and_frame_rate() {
        let layers = simulcast();
        let tiny = VideoConstraints {
            max_height: 90,
            max_frame_rate: 5.0,
        };
        assert_eq!(considered(VideoType::Camera, &layers, tiny), vec![0]);
        let tiny_height = VideoConstraints {
            max_height: 90,
            max_frame_rate: -1.0,
        };
        assert_eq!(
            considered(VideoType::Camera, &layers, tiny_height),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn settle_skips_to_a_better_layer_costing_no_more() {
        let mut layers = simulcast();
        if let Some(layer) = layers.get_mut(8) {
            layer.bitrate_bps = 400_000;
        }
        let source = SourceDescription {
            name: "a-v0",
            owner: EndpointId(1),
            video_type: VideoType::Camera,
            layers: &layers,
        };
        let selected = ConsideredLayers::select(&source, &VideoConstraints::UNLIMITED);
        // From 360p/30 (500 kbit/s) the 720p/30 layer at 400 kbit/s is better and cheaper.
        assert_eq!(selected.settle(3), 4);
        assert_eq!(selected.settle(0), 0);
    }
}
