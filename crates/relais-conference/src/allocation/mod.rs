//! The per-receiver video allocation: for one receiver, which video sources of the other
//! endpoints it gets (last-N) and at which layer, from its constraints, the sources' layers,
//! the speaker order and, optionally, the bandwidth available towards it.
//!
//! [`allocate`] is a pure, deterministic function (no I/O, no time), called again whenever one
//! of its inputs changes. It follows jitsi-videobridge's `BandwidthAllocator`
//! (`doc/allocation.md`):
//!
//! 1. **Priority.** On-stage sources (in the receiver's order), then selected ones, then the
//!    others by their owner's place in the speaker order (owners not in it last, in input
//!    order); sources with no video ([`VideoType::Disabled`]) go to the very end. The
//!    receiver's own sources are left out.
//! 2. **Last-N.** Walking that order, each source the receiver wants (not disabled, effective
//!    `maxHeight` ≠ 0) takes a slot until last-N slots are taken; the rest get
//!    [`VideoConstraints::DISABLED`]. A source with no active layer still takes its slot, as in
//!    JVB (it is then forwarded at no cost, so it shows as soon as it sends).
//! 3. **Layers.** Per source, the active layers within its constraints (soft limits: with no
//!    layer within them, the lowest resolution); an on-stage-sized camera (`maxHeight` > 180)
//!    only takes 360p and above at full frame rate, a `DESKTOP_HIGH_FPS` screen share only
//!    takes resolutions above its lowest at full frame rate, a `DESKTOP` one any frame rate.
//!    The best of those is the source's ideal layer.
//! 4. **Bandwidth.** Without a budget every source gets its ideal layer. With one, greedily:
//!    on-stage screen shares are raised to their best layer that fits; then every source, in
//!    priority order, gets its lowest layer if it fits; then on-stage cameras are raised up to
//!    360p at full frame rate; then all sources are raised one layer at a time, in priority
//!    order, round after round, while it fits. A source that gets nothing is not forwarded.
//!    One exception lets the total exceed the budget, JVB's on-stage oversending: when the
//!    first source in priority order is an on-stage screen share, it may exceed the budget by
//!    [`MAX_OVERSEND_BPS`] to reach its highest resolution, and a screen share with a single
//!    usable layer gets it whatever it costs; nothing else then gets bandwidth.
//!
//! Unlike JVB, which gives thumbnails nothing until the on-stage camera has reached 360p,
//! thumbnails get their lowest layer before the on-stage camera is raised.

mod constraints;
mod layers;

use std::collections::HashMap;

pub use constraints::{
    ReceiverConstraints, ReceiverConstraintsUpdate, VideoConstraints, THUMBNAIL_HEIGHT,
};
pub use layers::{
    LayerDescription, SourceDescription, VideoType, ONSTAGE_PREFERRED_FRAME_RATE,
    ONSTAGE_PREFERRED_HEIGHT,
};

use crate::EndpointId;
use layers::ConsideredLayers;

/// How far the first source, when it is an on-stage screen share, may exceed the budget to
/// reach its highest resolution (JVB `max-oversend-bitrate`; JVB allows it by default,
/// `allow-oversend-onstage`), so a screen share stays legible on a low estimate.
pub const MAX_OVERSEND_BPS: u64 = 500_000;

/// What one source gets.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceAllocation {
    /// The source name.
    pub name: String,
    /// The endpoint sending it.
    pub owner: EndpointId,
    /// The layer to forward, as an index into the source's layers; `None`: not forwarded.
    pub layer: Option<usize>,
    /// The layer it would get without a bandwidth limit; `None` when it gets none at all
    /// (outside last-N, disabled, no layers).
    pub ideal_layer: Option<usize>,
    /// Whether the receiver has it on stage.
    pub on_stage: bool,
    /// The receiver's constraints for it after last-N ([`VideoConstraints::DISABLED`] outside
    /// last-N or with no video): what sender-side constraints are derived from.
    pub effective_constraints: VideoConstraints,
    /// What forwarding [`Self::layer`] costs, in bits per second (0 when not forwarded).
    pub bitrate_bps: u64,
}

/// The result of [`allocate`] for one receiver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocation {
    /// Every source of the other endpoints, forwarded or not, in priority order.
    pub sources: Vec<SourceAllocation>,
    /// What the forwarded layers cost together, in bits per second.
    pub target_bps: u64,
    /// What the ideal layers would cost together, in bits per second.
    pub ideal_bps: u64,
    /// Whether [`Self::target_bps`] exceeds the budget (see [`MAX_OVERSEND_BPS`]).
    pub oversending: bool,
}

impl Allocation {
    /// The names of the forwarded sources, in priority order (the `ForwardedSources` message).
    pub fn forwarded_sources(&self) -> impl Iterator<Item = &str> {
        self.sources
            .iter()
            .filter(|source| source.layer.is_some())
            .map(|source| source.name.as_str())
    }

    /// What the source named `name` gets (a linear search).
    pub fn source(&self, name: &str) -> Option<&SourceAllocation> {
        self.sources.iter().find(|source| source.name == name)
    }

    /// The layer forwarded for the source named `name`, as an index into its layers.
    pub fn layer_for(&self, name: &str) -> Option<usize> {
        self.source(name).and_then(|source| source.layer)
    }
}

/// Decides which sources `receiver` gets and at which layer (see the module documentation).
///
/// `speaker_order` lists endpoints by speech activity, the dominant speaker first;
/// `available_bps` is the estimated bandwidth towards the receiver (`None`: no limit), capped
/// by the receiver's [`ReceiverConstraints::assumed_bandwidth_bps`]. Bridge-wide last-N limits
/// are the caller's to fold into `constraints.last_n`.
pub fn allocate(
    receiver: EndpointId,
    constraints: &ReceiverConstraints,
    sources: &[SourceDescription<'_>],
    speaker_order: &[EndpointId],
    available_bps: Option<u64>,
) -> Allocation {
    let on_stage = first_positions(constraints.on_stage_sources.iter().map(String::as_str));
    let prioritized = prioritize(receiver, constraints, &on_stage, sources, speaker_order);

    // A negative last-N means no limit.
    let last_n = usize::try_from(constraints.last_n).unwrap_or(usize::MAX);
    let mut slots_taken = 0;
    let mut candidates: Vec<Candidate<'_, '_>> = prioritized
        .into_iter()
        .map(|source| {
            let requested = constraints.constraints_for(source.name);
            let wanted = source.video_type != VideoType::Disabled && !requested.is_disabled();
            let effective = if wanted && slots_taken < last_n {
                slots_taken += 1;
                requested
            } else {
                VideoConstraints::DISABLED
            };
            Candidate {
                source,
                on_stage: on_stage.contains_key(source.name),
                layers: ConsideredLayers::select(source, &effective),
                effective,
                current: None,
                stuck: false,
            }
        })
        .collect();

    // The assumed bandwidth only ever lowers the budget: JVB uses it instead of the estimate
    // (and only when its configuration allows), capping it keeps a receiver from making the
    // bridge send more than the estimate allows.
    let budget = match (available_bps, constraints.assumed_bandwidth_bps) {
        (Some(available), Some(assumed)) => Some(available.min(assumed)),
        (available, assumed) => available.or(assumed),
    };
    match budget {
        None => {
            for candidate in &mut candidates {
                candidate.current = candidate.layers.ideal();
            }
        }
        Some(budget) => allocate_bandwidth(&mut candidates, budget),
    }

    let mut allocation = Allocation {
        sources: Vec::with_capacity(candidates.len()),
        ..Allocation::default()
    };
    for candidate in candidates {
        let bitrate_bps = candidate.layers.cost(candidate.current);
        let ideal = candidate.layers.ideal();
        allocation.target_bps = allocation.target_bps.saturating_add(bitrate_bps);
        allocation.ideal_bps = allocation
            .ideal_bps
            .saturating_add(candidate.layers.cost(ideal));
        allocation.sources.push(SourceAllocation {
            name: candidate.source.name.to_owned(),
            owner: candidate.source.owner,
            layer: candidate
                .current
                .and_then(|position| candidate.layers.layer_index(position)),
            ideal_layer: ideal.and_then(|position| candidate.layers.layer_index(position)),
            on_stage: candidate.on_stage,
            effective_constraints: candidate.effective,
            bitrate_bps,
        });
    }
    allocation.oversending = budget.is_some_and(|budget| allocation.target_bps > budget);
    allocation
}

/// One source during allocation.
struct Candidate<'s, 'a> {
    source: &'s SourceDescription<'a>,
    on_stage: bool,
    effective: VideoConstraints,
    layers: ConsideredLayers,
    /// The chosen position in `layers`.
    current: Option<usize>,
    /// Its next layer did not fit: the budget left only shrinks, so it will not later.
    stuck: bool,
}

impl Candidate<'_, '_> {
    fn cost(&self) -> u64 {
        self.layers.cost(self.current)
    }
}

/// The bandwidth budget, as it is being spent.
struct Spending {
    budget: u64,
    spent: u64,
}

impl Spending {
    /// What `candidate` may cost at most, given what the others already take.
    fn headroom(&self, candidate: &Candidate<'_, '_>) -> u64 {
        self.budget
            .saturating_sub(self.spent)
            .saturating_add(candidate.cost())
    }

    fn switch(&mut self, candidate: &mut Candidate<'_, '_>, position: usize) {
        let before = candidate.cost();
        candidate.current = Some(candidate.layers.settle(position));
        self.spent = self
            .spent
            .saturating_sub(before)
            .saturating_add(candidate.cost());
    }

    /// Raises `candidate` to its best layer up to `limit` (a position) costing at most
    /// `allowance` (its headroom, unless oversending).
    fn raise_within(&mut self, candidate: &mut Candidate<'_, '_>, limit: usize, allowance: u64) {
        let from = candidate.current.map_or(0, |position| position + 1);
        let best = (from..=limit)
            .rev()
            .find(|&position| candidate.layers.cost(Some(position)) <= allowance);
        if let Some(position) = best {
            self.switch(candidate, position);
        }
    }

    /// Raises `candidate` eagerly to its preferred layer, or as close as fits.
    fn raise_to_preferred(&mut self, candidate: &mut Candidate<'_, '_>) {
        if let Some(preferred) = candidate.layers.preferred() {
            let allowance = self.headroom(candidate);
            self.raise_within(candidate, preferred, allowance);
        }
    }

    /// JVB's on-stage oversending, for the first source when it is an on-stage screen share.
    fn oversend(&mut self, candidate: &mut Candidate<'_, '_>) {
        if let Some(target) = candidate.layers.oversend_target() {
            let allowance = self.headroom(candidate).saturating_add(MAX_OVERSEND_BPS);
            self.raise_within(candidate, target, allowance);
        }
        if candidate.current.is_none() && candidate.layers.len() == 1 {
            self.switch(candidate, 0);
        }
    }

    /// Raises `candidate` by one layer if it fits; returns whether it did.
    fn step(&mut self, candidate: &mut Candidate<'_, '_>) -> bool {
        let next = candidate.current.map_or(0, |position| position + 1);
        if next >= candidate.layers.len() {
            return false;
        }
        if candidate.layers.cost(Some(next)) <= self.headroom(candidate) {
            self.switch(candidate, next);
            true
        } else {
            candidate.stuck = true;
            false
        }
    }
}

/// The greedy bandwidth allocation of step 4 of the module documentation.
fn allocate_bandwidth(candidates: &mut [Candidate<'_, '_>], budget: u64) {
    let mut spending = Spending { budget, spent: 0 };

    for (position, candidate) in candidates.iter_mut().enumerate() {
        if candidate.on_stage && candidate.source.video_type.is_screen_share() {
            spending.raise_to_preferred(candidate);
            if position == 0 {
                spending.oversend(candidate);
            }
        }
    }
    for candidate in candidates.iter_mut() {
        if candidate.current.is_none()
            && candidate.layers.len() > 0
            && candidate.layers.cost(Some(0)) <= spending.headroom(candidate)
        {
            spending.switch(candidate, 0);
        }
    }
    for candidate in candidates.iter_mut() {
        if candidate.on_stage && candidate.source.video_type == VideoType::Camera {
            spending.raise_to_preferred(candidate);
        }
    }
    // Each round raises every source that still can by one layer, so the rounds are bounded
    // by the number of layers of a source.
    loop {
        let mut raised = false;
        for candidate in candidates.iter_mut() {
            if !candidate.stuck && spending.step(candidate) {
                raised = true;
            }
        }
        if !raised {
            break;
        }
    }
}

/// The sources of the other endpoints, in priority order (step 1 of the module
/// documentation).
fn prioritize<'s, 'a>(
    receiver: EndpointId,
    constraints: &ReceiverConstraints,
    on_stage: &HashMap<&str, usize>,
    sources: &'s [SourceDescription<'a>],
    speaker_order: &[EndpointId],
) -> Vec<&'s SourceDescription<'a>> {
    let selected = first_positions(constraints.selected_sources.iter().map(String::as_str));
    let speech = first_positions(speaker_order.iter().copied());
    let mut ranked: Vec<((u8, usize), &SourceDescription<'a>)> = sources
        .iter()
        .filter(|source| source.owner != receiver)
        .map(|source| {
            let rank = if source.video_type == VideoType::Disabled {
                (3, 0)
            } else if let Some(&position) = on_stage.get(source.name) {
                (0, position)
            } else if let Some(&position) = selected.get(source.name) {
                (1, position)
            } else {
                (2, speech.get(&source.owner).copied().unwrap_or(usize::MAX))
            };
            (rank, source)
        })
        .collect();
    // Stable: equal ranks keep the input order.
    ranked.sort_by_key(|&(rank, _)| rank);
    ranked.into_iter().map(|(_, source)| source).collect()
}

/// Each item's first position in `items`.
fn first_positions<T: std::hash::Hash + Eq>(items: impl Iterator<Item = T>) -> HashMap<T, usize> {
    let mut positions = HashMap::new();
    for (position, item) in items.enumerate() {
        positions.entry(item).or_insert(position);
    }
    positions
}
