//! The Dependency Descriptor RTP header extension (AV1 RTP specification, Appendix A):
//! parsing, a per-stream reader that resolves templates, a writer, and libwebrtc's
//! template structures for the scalability modes relais meets.
//!
//! Every packet carries the three mandatory bytes:
//!
//! ```text
//!  0                   1                   2
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |S|E|  template id  |         frame number          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Longer values carry extended fields: five flags, then optionally the template dependency
//! structure (sent with key frames and structure changes), the active decode targets
//! bitmask, and per-frame DTIs, frame diffs and chain diffs that override the template's.
//! The template id only means something against the latest structure, so parsing is
//! stateful: [`DependencyDescriptorReader`] keeps the structure of one incoming stream and
//! resolves each packet into a small `Copy` [`DependencyDescriptor`]. [`parse`] is the
//! stateless form; [`write()`] goes the other way. [`ScalabilityMode`] holds libwebrtc's
//! structures for the `scalabilityMode` values L1T1, L1T3, L3T3 (full SVC) and L3T3_KEY
//! (K-SVC, what Jitsi Meet asks Chromium for) and says which template each layer frame of
//! a temporal unit uses, so tests and the simulator can generate realistic AV1 streams.
//!
//! # What an SFU may and may not infer
//!
//! The descriptor is a header extension: SRTP is hop by hop, so the SFU decrypts it, and
//! end-to-end encryption (insertable streams, SFrame) encrypts only the payload. The
//! descriptor is therefore the SFU's whole view of an E2EE stream, and it is enough to
//! thin it: a receiver gets decode target `dt` when it is sent every frame whose DTI for
//! `dt` is not *not present* ([`DependencyDescriptor::is_part_of`]), and it may join `dt`
//! at the first packet of a frame whose DTI is *switch* or that carries a new structure
//! ([`DependencyDescriptor::is_switch_point`]). Frame numbers and frame diffs name the
//! frames a frame references; chains tell whether a decode target is still decodable after
//! a loss without waiting for the lost frame; the structure gives per-spatial-layer render
//! resolutions; the active decode targets bitmask says which targets the sender produces.
//!
//! It may not infer anything the sender did not declare: the descriptor is not
//! authenticated against the payload, so a wrong one only misleads the SFU about that
//! sender's own stream; it says nothing of the codec (libwebrtc also sends it with VP8,
//! VP9 and H264), of a layer's bitrate, of whether a frame is intra-coded beyond the
//! structure and DTIs, nor of frames whose packets were lost before the structure
//! arrived. A packet that refers to a template of a structure the reader has not seen
//! (it was lost, or arrives after a reordered newer one) cannot be resolved
//! ([`DescriptorError::NoStructure`], [`DescriptorError::UnknownTemplate`]); the SFU then
//! knows the mandatory fields only ([`MandatoryFields`]) and should request a key frame.

use std::fmt;

use thiserror::Error;

/// Length of the mandatory fields; longer values carry extended fields.
pub const MANDATORY_LEN: usize = 3;
/// Most templates a structure can hold: template ids are 6 bits.
pub const MAX_TEMPLATES: usize = 64;
/// Most decode targets: `dt_cnt_minus_one` is 5 bits.
pub const MAX_DECODE_TARGETS: usize = 32;
/// Most chains: at most one per decode target.
pub const MAX_CHAINS: usize = MAX_DECODE_TARGETS;
/// Most spatial layers, as AV1 allows (and libwebrtc enforces when parsing).
pub const MAX_SPATIAL_LAYERS: usize = 4;
/// Most temporal layers, as AV1 allows (and libwebrtc enforces when parsing).
pub const MAX_TEMPORAL_LAYERS: usize = 8;
/// Most frame diffs (references) kept per frame. The syntax has no limit; an AV1 frame
/// references at most 7 frames, so more is treated as invalid rather than truncated.
pub const MAX_FRAME_DIFFS: usize = 8;
/// Largest frame diff a template can carry (4 bits, plus one).
pub const MAX_TEMPLATE_FRAME_DIFF: u16 = 16;
/// Largest frame diff a frame can carry in custom fdiffs (12 bits, plus one).
pub const MAX_FRAME_DIFF: u16 = 4096;
/// Largest chain diff a template can carry (4 bits).
pub const MAX_TEMPLATE_CHAIN_DIFF: u8 = 15;
/// Largest render width or height (16 bits, plus one).
pub const MAX_RENDER_DIMENSION: u32 = 1 << 16;

/// Why a dependency descriptor could not be parsed or resolved.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DescriptorError {
    /// The value ends inside a field.
    #[error("dependency descriptor truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the fields read so far need.
        needed: usize,
        /// Bytes in the value.
        available: usize,
    },
    /// The packet refers to a template, or has fields sized by a structure, but no
    /// structure has been received.
    #[error("dependency descriptor without a known template structure")]
    NoStructure,
    /// The template id maps outside the structure's templates.
    #[error("dependency descriptor template id {template_id} is not in the structure ({template_count} templates from offset {template_id_offset})")]
    UnknownTemplate {
        /// The packet's template id.
        template_id: u8,
        /// The structure's template id offset.
        template_id_offset: u8,
        /// Templates in the structure.
        template_count: usize,
    },
    /// The structure announces more than [`MAX_TEMPLATES`] templates.
    #[error("dependency descriptor structure has more than 64 templates")]
    TooManyTemplates,
    /// The structure announces more than [`MAX_SPATIAL_LAYERS`] spatial layers.
    #[error("dependency descriptor structure has more than 4 spatial layers")]
    TooManySpatialLayers,
    /// The structure announces more than [`MAX_TEMPORAL_LAYERS`] temporal layers.
    #[error("dependency descriptor structure has more than 8 temporal layers")]
    TooManyTemporalLayers,
    /// A template or frame has more than [`MAX_FRAME_DIFFS`] frame diffs.
    #[error("dependency descriptor frame has more than 8 frame diffs")]
    TooManyFrameDiffs,
}

/// Why a template structure or a descriptor could not be built or written.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum BuildError {
    /// Decode target count outside 1..=32.
    #[error("decode target count {0} outside 1..=32")]
    DecodeTargetCount(usize),
    /// More chains than decode targets.
    #[error("chain count {chains} exceeds decode target count {decode_targets}")]
    ChainCount {
        /// Chains asked for.
        chains: usize,
        /// Decode targets of the structure.
        decode_targets: usize,
    },
    /// The decode-target-to-chain map has the wrong length or names a missing chain.
    #[error("decode target protected by chain: wrong length or chain out of range")]
    ProtectedByChain,
    /// Template count outside 1..=64.
    #[error("template count {0} outside 1..=64")]
    TemplateCount(usize),
    /// Template `index` breaks the layer order the wire format can express: the first
    /// template is S0T0 and each next one keeps the layer, goes up one temporal layer, or
    /// goes up one spatial layer at T0; ids stay below 4 spatial and 8 temporal layers.
    #[error("template {0} breaks the (spatial, temporal) layer order")]
    TemplateOrder(usize),
    /// Template `index` has a DTI count other than the decode target count.
    #[error("template {0} has a DTI count other than the decode target count")]
    TemplateDtis(usize),
    /// Template `index` has a chain diff count other than the chain count, or a chain
    /// diff above 15.
    #[error("template {0} has the wrong chain diff count or a chain diff above 15")]
    TemplateChainDiffs(usize),
    /// Template `index` has a frame diff outside 1..=16.
    #[error("template {0} has a frame diff outside 1..=16")]
    TemplateFrameDiffs(usize),
    /// Resolutions are not one per spatial layer, or a dimension is outside 1..=65536.
    #[error("render resolutions are not one per spatial layer within 1..=65536")]
    Resolutions,
    /// Template id offset of 64 or more.
    #[error("template id offset {0} is not below 64")]
    TemplateIdOffset(u8),
    /// The descriptor names a template index the structure does not have.
    #[error("template index {0} is not in the structure")]
    UnknownTemplate(u8),
    /// Custom DTIs with a count other than the decode target count.
    #[error("custom DTIs do not match the decode target count")]
    CustomDtis,
    /// Custom frame diff outside 1..=4096.
    #[error("custom frame diff outside 1..=4096")]
    CustomFrameDiffs,
    /// Custom chain diffs with a count other than the chain count.
    #[error("custom chain diffs do not match the chain count")]
    CustomChainDiffs,
    /// Active decode targets bitmask with bits beyond the decode target count.
    #[error("active decode targets bitmask has bits beyond the decode target count")]
    ActiveDecodeTargets,
    /// The output buffer is shorter than the descriptor.
    #[error("buffer of {available} bytes is too small for a {needed}-byte descriptor")]
    BufferTooSmall {
        /// Bytes the descriptor needs.
        needed: usize,
        /// Bytes offered.
        available: usize,
    },
}

/// How a frame relates to a decode target (spec table A.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeTargetIndication {
    /// `-`: not needed to decode the target.
    NotPresent = 0,
    /// `D`: part of the target, but no later frame of the target depends on it.
    Discardable = 1,
    /// `S`: part of the target, and a receiver may start decoding the target here.
    Switch = 2,
    /// `R`: part of the target, and later frames of the target depend on it.
    Required = 3,
}

impl DecodeTargetIndication {
    /// The indication coded as `bits` (the low two bits).
    #[inline]
    pub const fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => Self::NotPresent,
            1 => Self::Discardable,
            2 => Self::Switch,
            _ => Self::Required,
        }
    }

    /// The two-bit code.
    #[inline]
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// libwebrtc's notation: `-`, `D`, `S` or `R`.
    #[inline]
    pub const fn symbol(self) -> char {
        match self {
            Self::NotPresent => '-',
            Self::Discardable => 'D',
            Self::Switch => 'S',
            Self::Required => 'R',
        }
    }

    /// The indication written as `symbol` in libwebrtc's notation.
    #[inline]
    pub const fn from_symbol(symbol: char) -> Option<Self> {
        match symbol {
            '-' => Some(Self::NotPresent),
            'D' => Some(Self::Discardable),
            'S' => Some(Self::Switch),
            'R' => Some(Self::Required),
            _ => None,
        }
    }
}

/// One DTI per decode target, packed two bits each. `Copy`, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DecodeTargetIndications {
    packed: u64,
    len: u8,
}

impl DecodeTargetIndications {
    /// No decode targets.
    #[inline]
    pub const fn new() -> Self {
        Self { packed: 0, len: 0 }
    }

    /// From one indication per decode target; `None` beyond [`MAX_DECODE_TARGETS`].
    pub fn from_slice(dtis: &[DecodeTargetIndication]) -> Option<Self> {
        let mut out = Self::new();
        for &dti in dtis {
            if !out.push(dti) {
                return None;
            }
        }
        Some(out)
    }

    /// From libwebrtc's notation, one of `-DSR` per decode target (`"-DS"`); `None` on
    /// another character or beyond [`MAX_DECODE_TARGETS`].
    pub fn from_notation(notation: &str) -> Option<Self> {
        let mut out = Self::new();
        for symbol in notation.chars() {
            if !out.push(DecodeTargetIndication::from_symbol(symbol)?) {
                return None;
            }
        }
        Some(out)
    }

    /// For the constant structures below; evaluated at compile time, where a bad
    /// character is a build error.
    const fn from_notation_const(notation: &str) -> Self {
        let mut rest = notation.as_bytes();
        let mut out = Self::new();
        while let [symbol, tail @ ..] = rest {
            let bits: u64 = match *symbol {
                b'-' => 0,
                b'D' => 1,
                b'S' => 2,
                b'R' => 3,
                _ => panic!("DTI notation is one of -DSR per decode target"),
            };
            out.packed |= bits << (2 * out.len as u32);
            out.len += 1;
            rest = tail;
        }
        out
    }

    /// Appends `dti`; false when already holding [`MAX_DECODE_TARGETS`].
    #[inline]
    fn push(&mut self, dti: DecodeTargetIndication) -> bool {
        if usize::from(self.len) >= MAX_DECODE_TARGETS {
            return false;
        }
        self.packed |= u64::from(dti.bits()) << (2 * u32::from(self.len));
        self.len += 1;
        true
    }

    /// Number of decode targets.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are no decode targets.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The indication for decode target `decode_target`, if the frame has one.
    #[inline]
    pub fn get(&self, decode_target: u8) -> Option<DecodeTargetIndication> {
        (decode_target < self.len).then(|| {
            DecodeTargetIndication::from_bits((self.packed >> (2 * u32::from(decode_target))) as u8)
        })
    }

    /// The indications in decode target order.
    pub fn iter(self) -> impl Iterator<Item = DecodeTargetIndication> {
        (0..self.len).filter_map(move |dt| self.get(dt))
    }
}

impl fmt::Debug for DecodeTargetIndications {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let notation: String = self.iter().map(DecodeTargetIndication::symbol).collect();
        f.debug_tuple("DecodeTargetIndications")
            .field(&notation)
            .finish()
    }
}

/// Frame diffs: how many frame numbers back each referenced frame is. `Copy`, at most
/// [`MAX_FRAME_DIFFS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FrameDiffs {
    diffs: [u16; MAX_FRAME_DIFFS],
    len: u8,
}

impl FrameDiffs {
    /// No references.
    #[inline]
    pub const fn new() -> Self {
        Self {
            diffs: [0; MAX_FRAME_DIFFS],
            len: 0,
        }
    }

    /// From a slice; `None` beyond [`MAX_FRAME_DIFFS`]. Values are checked where they are
    /// used (a structure, or a descriptor being written).
    pub fn from_slice(diffs: &[u16]) -> Option<Self> {
        let mut out = Self::new();
        for &diff in diffs {
            if !out.push(diff) {
                return None;
            }
        }
        Some(out)
    }

    // Compile-time only (constant structures), where a bad index is a build error.
    #[allow(clippy::indexing_slicing)]
    const fn from_slice_const(mut rest: &[u16]) -> Self {
        let mut out = Self::new();
        while let [diff, tail @ ..] = rest {
            if out.len as usize == MAX_FRAME_DIFFS {
                panic!("more frame diffs than MAX_FRAME_DIFFS");
            }
            out.diffs[out.len as usize] = *diff;
            out.len += 1;
            rest = tail;
        }
        out
    }

    #[inline]
    fn push(&mut self, diff: u16) -> bool {
        match self.diffs.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = diff;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Number of diffs.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are no diffs.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The diffs, in the order they were sent.
    #[inline]
    pub fn as_slice(&self) -> &[u16] {
        self.diffs.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl fmt::Debug for FrameDiffs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Chain diffs, one per chain: how many frame numbers back the previous frame of each
/// chain is (0: none, the chain starts here). `Copy`, at most [`MAX_CHAINS`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainDiffs {
    diffs: [u8; MAX_CHAINS],
    len: u8,
}

impl ChainDiffs {
    /// No chains.
    #[inline]
    pub const fn new() -> Self {
        Self {
            diffs: [0; MAX_CHAINS],
            len: 0,
        }
    }

    /// From a slice; `None` beyond [`MAX_CHAINS`].
    pub fn from_slice(diffs: &[u8]) -> Option<Self> {
        let mut out = Self::new();
        for &diff in diffs {
            if !out.push(diff) {
                return None;
            }
        }
        Some(out)
    }

    // Compile-time only (constant structures), where a bad index is a build error.
    #[allow(clippy::indexing_slicing)]
    const fn from_slice_const(mut rest: &[u8]) -> Self {
        let mut out = Self::new();
        while let [diff, tail @ ..] = rest {
            if out.len as usize == MAX_CHAINS {
                panic!("more chain diffs than MAX_CHAINS");
            }
            out.diffs[out.len as usize] = *diff;
            out.len += 1;
            rest = tail;
        }
        out
    }

    #[inline]
    fn push(&mut self, diff: u8) -> bool {
        match self.diffs.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = diff;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The diff of chain `chain`.
    #[inline]
    pub fn get(&self, chain: u8) -> Option<u8> {
        self.as_slice().get(usize::from(chain)).copied()
    }

    /// Number of diffs.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are no diffs.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The diffs in chain order.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        self.diffs.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl fmt::Debug for ChainDiffs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Maximum render resolution of a spatial layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RenderResolution {
    /// Width in pixels, 1..=65536.
    pub width: u32,
    /// Height in pixels, 1..=65536.
    pub height: u32,
}

impl RenderResolution {
    /// `width` x `height`.
    #[inline]
    pub const fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }
}

/// One frame dependency template: the layer, DTIs, references and chain diffs shared by
/// the frames that name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FrameTemplate {
    /// Spatial layer id.
    pub spatial_id: u8,
    /// Temporal layer id.
    pub temporal_id: u8,
    /// One indication per decode target.
    pub dtis: DecodeTargetIndications,
    /// References, each 1..=16 in a template.
    pub frame_diffs: FrameDiffs,
    /// One diff per chain, each 0..=15 in a template.
    pub chain_diffs: ChainDiffs,
}

impl FrameTemplate {
    /// A template in libwebrtc's notation (`"--D--R--R"` for the DTIs); evaluated at compile
    /// time by the constant structures.
    const fn new_const(
        spatial_id: u8,
        temporal_id: u8,
        dtis: &str,
        chain_diffs: &[u8],
        frame_diffs: &[u16],
    ) -> Self {
        Self {
            spatial_id,
            temporal_id,
            dtis: DecodeTargetIndications::from_notation_const(dtis),
            frame_diffs: FrameDiffs::from_slice_const(frame_diffs),
            chain_diffs: ChainDiffs::from_slice_const(chain_diffs),
        }
    }
}

/// The template dependency structure: decode targets, chains, templates and render
/// resolutions. Sent with key frames; every later descriptor refers to it. Always valid
/// (every constructor checks), so it can be written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateStructure {
    template_id_offset: u8,
    decode_target_count: u8,
    chain_count: u8,
    protected_by_chain: [u8; MAX_DECODE_TARGETS],
    templates: Vec<FrameTemplate>,
    resolutions: [RenderResolution; MAX_SPATIAL_LAYERS],
    has_resolutions: bool,
    /// Derived (spec `decode_target_layers()`): per decode target, the highest spatial id
    /// and highest temporal id of the templates that are part of it.
    decode_target_layers: [(u8, u8); MAX_DECODE_TARGETS],
}

impl TemplateStructure {
    /// A placeholder the reader parses into; not valid until filled.
    fn empty() -> Self {
        Self {
            template_id_offset: 0,
            decode_target_count: 0,
            chain_count: 0,
            protected_by_chain: [0; MAX_DECODE_TARGETS],
            templates: Vec::new(),
            resolutions: [RenderResolution::default(); MAX_SPATIAL_LAYERS],
            has_resolutions: false,
            decode_target_layers: [(0, 0); MAX_DECODE_TARGETS],
        }
    }

    /// A structure of `decode_target_count` decode targets and `chain_count` chains,
    /// decode target `i` protected by chain `protected_by_chain[i]` (empty without
    /// chains), with `templates` sorted by layer as the wire format requires. Template id
    /// offset 0, no resolutions: see [`with_template_id_offset`](Self::with_template_id_offset)
    /// and [`with_resolutions`](Self::with_resolutions).
    pub fn new(
        decode_target_count: usize,
        chain_count: usize,
        protected_by_chain: &[u8],
        templates: &[FrameTemplate],
    ) -> Result<Self, BuildError> {
        if !(1..=MAX_DECODE_TARGETS).contains(&decode_target_count) {
            return Err(BuildError::DecodeTargetCount(decode_target_count));
        }
        if chain_count > decode_target_count {
            return Err(BuildError::ChainCount {
                chains: chain_count,
                decode_targets: decode_target_count,
            });
        }
        let mut protected = [0; MAX_DECODE_TARGETS];
        if chain_count > 0 {
            if protected_by_chain.len() != decode_target_count
                || protected_by_chain
                    .iter()
                    .any(|&chain| usize::from(chain) >= chain_count)
            {
                return Err(BuildError::ProtectedByChain);
            }
            for (slot, &chain) in protected.iter_mut().zip(protected_by_chain) {
                *slot = chain;
            }
        } else if !protected_by_chain.is_empty() {
            return Err(BuildError::ProtectedByChain);
        }
        if !(1..=MAX_TEMPLATES).contains(&templates.len()) {
            return Err(BuildError::TemplateCount(templates.len()));
        }
        let mut previous: Option<&FrameTemplate> = None;
        for (index, template) in templates.iter().enumerate() {
            let ordered = match previous {
                None => template.spatial_id == 0 && template.temporal_id == 0,
                Some(prev) => next_layer_idc(prev, template).is_some(),
            };
            if !ordered
                || usize::from(template.spatial_id) >= MAX_SPATIAL_LAYERS
                || usize::from(template.temporal_id) >= MAX_TEMPORAL_LAYERS
            {
                return Err(BuildError::TemplateOrder(index));
            }
            if template.dtis.len() != decode_target_count {
                return Err(BuildError::TemplateDtis(index));
            }
            if template.chain_diffs.len() != chain_count
                || template
                    .chain_diffs
                    .as_slice()
                    .iter()
                    .any(|&d| d > MAX_TEMPLATE_CHAIN_DIFF)
            {
                return Err(BuildError::TemplateChainDiffs(index));
            }
            if template
                .frame_diffs
                .as_slice()
                .iter()
                .any(|&d| !(1..=MAX_TEMPLATE_FRAME_DIFF).contains(&d))
            {
                return Err(BuildError::TemplateFrameDiffs(index));
            }
            previous = Some(template);
        }
        let mut structure = Self {
            template_id_offset: 0,
            decode_target_count: decode_target_count as u8,
            chain_count: chain_count as u8,
            protected_by_chain: protected,
            templates: templates.to_vec(),
            ..Self::empty()
        };
        structure.derive_decode_target_layers();
        Ok(structure)
    }

    /// The same structure with its template ids starting at `offset` (below 64). Senders
    /// move the offset with each new structure so that packets of frames sent before it
    /// cannot be resolved against it by mistake.
    pub fn with_template_id_offset(mut self, offset: u8) -> Result<Self, BuildError> {
        if usize::from(offset) >= MAX_TEMPLATES {
            return Err(BuildError::TemplateIdOffset(offset));
        }
        self.template_id_offset = offset;
        Ok(self)
    }

    /// The same structure with one render resolution per spatial layer (or none, with an
    /// empty slice).
    pub fn with_resolutions(
        mut self,
        resolutions: &[RenderResolution],
    ) -> Result<Self, BuildError> {
        if resolutions.is_empty() {
            self.has_resolutions = false;
            self.resolutions = [RenderResolution::default(); MAX_SPATIAL_LAYERS];
            return Ok(self);
        }
        let dimension_ok = |d: u32| (1..=MAX_RENDER_DIMENSION).contains(&d);
        if resolutions.len() != usize::from(self.max_spatial_id()) + 1
            || resolutions
                .iter()
                .any(|r| !dimension_ok(r.width) || !dimension_ok(r.height))
        {
            return Err(BuildError::Resolutions);
        }
        for (slot, &resolution) in self.resolutions.iter_mut().zip(resolutions) {
            *slot = resolution;
        }
        self.has_resolutions = true;
        Ok(self)
    }

    fn derive_decode_target_layers(&mut self) {
        for (dt, slot) in (0..self.decode_target_count).zip(self.decode_target_layers.iter_mut()) {
            *slot = self
                .templates
                .iter()
                .filter(|t| {
                    t.dtis
                        .get(dt)
                        .is_some_and(|dti| dti != DecodeTargetIndication::NotPresent)
                })
                .fold((0, 0), |(s, t), template| {
                    (s.max(template.spatial_id), t.max(template.temporal_id))
                });
        }
    }

    /// The template id of the first template; template `i` has id `(offset + i) % 64`.
    #[inline]
    pub fn template_id_offset(&self) -> u8 {
        self.template_id_offset
    }

    /// Number of decode targets.
    #[inline]
    pub fn decode_target_count(&self) -> u8 {
        self.decode_target_count
    }

    /// Bitmask with a bit for every decode target (bit `i` for decode target `i`).
    #[inline]
    pub fn all_decode_targets(&self) -> u32 {
        mask_of(self.decode_target_count)
    }

    /// Number of chains (0: the sender uses none).
    #[inline]
    pub fn chain_count(&self) -> u8 {
        self.chain_count
    }

    /// The chain protecting `decode_target`: when every frame of that chain up to the
    /// current one has arrived, the decode target is decodable.
    #[inline]
    pub fn chain_protecting(&self, decode_target: u8) -> Option<u8> {
        if self.chain_count == 0 || decode_target >= self.decode_target_count {
            return None;
        }
        self.protected_by_chain
            .get(usize::from(decode_target))
            .copied()
    }

    /// The templates, in template index order.
    #[inline]
    pub fn templates(&self) -> &[FrameTemplate] {
        &self.templates
    }

    /// The template index a wire template id maps to, if the structure has it.
    #[inline]
    pub fn template_index(&self, template_id: u8) -> Option<u8> {
        let index = (usize::from(template_id & 0x3F) + MAX_TEMPLATES
            - usize::from(self.template_id_offset))
            % MAX_TEMPLATES;
        (index < self.templates.len()).then_some(index as u8)
    }

    /// The wire template id of template `index`.
    #[inline]
    pub fn template_id(&self, index: u8) -> u8 {
        ((usize::from(self.template_id_offset) + usize::from(index)) % MAX_TEMPLATES) as u8
    }

    /// The spatial id and highest temporal id decode target `decode_target` covers.
    #[inline]
    pub fn decode_target_layers(&self, decode_target: u8) -> Option<(u8, u8)> {
        if decode_target >= self.decode_target_count {
            return None;
        }
        self.decode_target_layers
            .get(usize::from(decode_target))
            .copied()
    }

    /// The decode target that decodes spatial layer `spatial_id` up to temporal layer
    /// `temporal_id`, if the structure has one (the first, should several match).
    pub fn decode_target_for(&self, spatial_id: u8, temporal_id: u8) -> Option<u8> {
        (0..self.decode_target_count)
            .find(|&dt| self.decode_target_layers(dt) == Some((spatial_id, temporal_id)))
    }

    /// The highest decode target within `max_spatial_id` and `max_temporal_id` (highest
    /// spatial id first, then highest temporal id), among those set in `active` (bit `i`
    /// for decode target `i`; pass [`all_decode_targets`](Self::all_decode_targets) to
    /// ignore activity). What an SFU forwards to a receiver limited to those layers.
    pub fn best_decode_target_within(
        &self,
        max_spatial_id: u8,
        max_temporal_id: u8,
        active: u32,
    ) -> Option<u8> {
        (0..self.decode_target_count)
            .filter(|&dt| active & (1 << dt) != 0)
            .filter_map(|dt| self.decode_target_layers(dt).map(|layers| (layers, dt)))
            .filter(|&((s, t), _)| s <= max_spatial_id && t <= max_temporal_id)
            // Among equal layers keep the lowest index, as decode_target_for does.
            .max_by_key(|&((s, t), dt)| (s, t, std::cmp::Reverse(dt)))
            .map(|(_, dt)| dt)
    }

    /// Highest spatial id of the templates.
    #[inline]
    pub fn max_spatial_id(&self) -> u8 {
        self.templates.last().map_or(0, |t| t.spatial_id)
    }

    /// Highest temporal id of the templates.
    #[inline]
    pub fn max_temporal_id(&self) -> u8 {
        self.templates
            .iter()
            .map(|t| t.temporal_id)
            .max()
            .unwrap_or(0)
    }

    /// Render resolutions, one per spatial layer, or empty when the sender sent none.
    #[inline]
    pub fn resolutions(&self) -> &[RenderResolution] {
        if !self.has_resolutions {
            return &[];
        }
        self.resolutions
            .get(..=usize::from(self.max_spatial_id()))
            .unwrap_or(&[])
    }

    /// Render resolution of spatial layer `spatial_id`, if sent.
    #[inline]
    pub fn resolution(&self, spatial_id: u8) -> Option<RenderResolution> {
        self.resolutions().get(usize::from(spatial_id)).copied()
    }

    /// libwebrtc's L1T1 structure (one layer; ScalabilityStructureL1T1): Chromium's AV1
    /// without `scalabilityMode`.
    pub fn l1t1() -> Self {
        Self::from_valid_parts(1, 1, &[0], &L1T1_TEMPLATES)
    }

    /// libwebrtc's L1T3 structure (ScalabilityStructureL1T3): three temporal layers, decode
    /// target `t` = T0..=Tt.
    pub fn l1t3() -> Self {
        Self::from_valid_parts(3, 1, &[0, 0, 0], &L1T3_TEMPLATES)
    }

    /// libwebrtc's L3T3 full-SVC structure (ScalabilityStructureL3T3): three spatial by
    /// three temporal layers, decode target `3 * s + t`, chain `s` protecting S`s`.
    pub fn l3t3() -> Self {
        Self::from_valid_parts(9, 3, &[0, 0, 0, 1, 1, 1, 2, 2, 2], &L3T3_TEMPLATES)
    }

    /// libwebrtc's L3T3 K-SVC structure (ScalabilityStructureL3T3Key): like
    /// [`l3t3`](Self::l3t3), but upper spatial layers refer to lower ones only in the key
    /// frame, so a delta frame is part of its own spatial layer's decode targets only.
    /// What Jitsi Meet asks Chromium for (`scalabilityMode: "L3T3_KEY"`).
    pub fn l3t3_key() -> Self {
        Self::from_valid_parts(9, 3, &[0, 0, 0, 1, 1, 1, 2, 2, 2], &L3T3_KEY_TEMPLATES)
    }

    /// For the constant structures, which the tests check against [`new`](Self::new).
    fn from_valid_parts(
        decode_target_count: u8,
        chain_count: u8,
        protected_by_chain: &[u8],
        templates: &[FrameTemplate],
    ) -> Self {
        let mut protected = [0; MAX_DECODE_TARGETS];
        for (slot, &chain) in protected.iter_mut().zip(protected_by_chain) {
            *slot = chain;
        }
        let mut structure = Self {
            decode_target_count,
            chain_count,
            protected_by_chain: protected,
            templates: templates.to_vec(),
            ..Self::empty()
        };
        structure.derive_decode_target_layers();
        structure
    }
}

#[inline]
fn mask_of(decode_targets: u8) -> u32 {
    if usize::from(decode_targets) >= MAX_DECODE_TARGETS {
        u32::MAX
    } else {
        (1u32 << decode_targets) - 1
    }
}

/// `next_layer_idc` from `previous` to `next`: 0 same layer, 1 next temporal layer, 2 next
/// spatial layer (at T0); `None` for any other step, which the format cannot express.
fn next_layer_idc(previous: &FrameTemplate, next: &FrameTemplate) -> Option<u32> {
    let same_spatial = next.spatial_id == previous.spatial_id;
    if same_spatial && next.temporal_id == previous.temporal_id {
        Some(0)
    } else if same_spatial && u16::from(next.temporal_id) == u16::from(previous.temporal_id) + 1 {
        Some(1)
    } else if u16::from(next.spatial_id) == u16::from(previous.spatial_id) + 1
        && next.temporal_id == 0
    {
        Some(2)
    } else {
        None
    }
}

const L1T1_TEMPLATES: [FrameTemplate; 2] = [
    FrameTemplate::new_const(0, 0, "S", &[0], &[]),
    FrameTemplate::new_const(0, 0, "S", &[1], &[1]),
];

const L1T3_TEMPLATES: [FrameTemplate; 5] = [
    FrameTemplate::new_const(0, 0, "SSS", &[0], &[]),
    FrameTemplate::new_const(0, 0, "SSS", &[4], &[4]),
    FrameTemplate::new_const(0, 1, "-DS", &[2], &[2]),
    FrameTemplate::new_const(0, 2, "--D", &[1], &[1]),
    FrameTemplate::new_const(0, 2, "--D", &[3], &[1]),
];

// Sorted by layer as the format requires; the stream uses them in the order
// key (1, 6, 11), T2A (3, 8, 13), T1 (2, 7, 12), T2B (4, 9, 14), T0 (0, 5, 10).
const L3T3_TEMPLATES: [FrameTemplate; 15] = [
    FrameTemplate::new_const(0, 0, "SSSRRRRRR", &[12, 11, 10], &[12]),
    FrameTemplate::new_const(0, 0, "SSSSSSSSS", &[0, 0, 0], &[]),
    FrameTemplate::new_const(0, 1, "-DS-RR-RR", &[6, 5, 4], &[6]),
    FrameTemplate::new_const(0, 2, "--D--R--R", &[3, 2, 1], &[3]),
    FrameTemplate::new_const(0, 2, "--D--R--R", &[9, 8, 7], &[3]),
    FrameTemplate::new_const(1, 0, "---SSSRRR", &[1, 1, 1], &[12, 1]),
    FrameTemplate::new_const(1, 0, "---SSSSSS", &[1, 1, 1], &[1]),
    FrameTemplate::new_const(1, 1, "----DS-RR", &[7, 6, 5], &[6, 1]),
    FrameTemplate::new_const(1, 2, "-----D--R", &[4, 3, 2], &[3, 1]),
    FrameTemplate::new_const(1, 2, "-----D--R", &[10, 9, 8], &[3, 1]),
    FrameTemplate::new_const(2, 0, "------SSS", &[2, 1, 1], &[12, 1]),
    FrameTemplate::new_const(2, 0, "------SSS", &[2, 1, 1], &[1]),
    FrameTemplate::new_const(2, 1, "-------DS", &[8, 7, 6], &[6, 1]),
    FrameTemplate::new_const(2, 2, "--------D", &[5, 4, 3], &[3, 1]),
    FrameTemplate::new_const(2, 2, "--------D", &[11, 10, 9], &[3, 1]),
];

// Sorted by layer; the stream uses key (0, 5, 10), T2A (3, 8, 13), T1 (2, 7, 12),
// T2B (4, 9, 14), T0 (1, 6, 11).
const L3T3_KEY_TEMPLATES: [FrameTemplate; 15] = [
    FrameTemplate::new_const(0, 0, "SSSSSSSSS", &[0, 0, 0], &[]),
    FrameTemplate::new_const(0, 0, "SSS------", &[12, 11, 10], &[12]),
    FrameTemplate::new_const(0, 1, "-DS------", &[6, 5, 4], &[6]),
    FrameTemplate::new_const(0, 2, "--D------", &[3, 2, 1], &[3]),
    FrameTemplate::new_const(0, 2, "--D------", &[9, 8, 7], &[3]),
    FrameTemplate::new_const(1, 0, "---SSSSSS", &[1, 1, 1], &[1]),
    FrameTemplate::new_const(1, 0, "---SSS---", &[1, 12, 11], &[12]),
    FrameTemplate::new_const(1, 1, "----DS---", &[7, 6, 5], &[6]),
    FrameTemplate::new_const(1, 2, "-----D---", &[4, 3, 2], &[3]),
    FrameTemplate::new_const(1, 2, "-----D---", &[10, 9, 8], &[3]),
    FrameTemplate::new_const(2, 0, "------SSS", &[2, 1, 1], &[1]),
    FrameTemplate::new_const(2, 0, "------SSS", &[2, 1, 12], &[12]),
    FrameTemplate::new_const(2, 1, "-------DS", &[8, 7, 6], &[6]),
    FrameTemplate::new_const(2, 2, "--------D", &[5, 4, 3], &[3]),
    FrameTemplate::new_const(2, 2, "--------D", &[11, 10, 9], &[3]),
];

/// The three mandatory bytes, readable without a structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MandatoryFields {
    /// The packet is the first of its frame.
    pub start_of_frame: bool,
    /// The packet is the last of its frame.
    pub end_of_frame: bool,
    /// `frame_dependency_template_id`, 6 bits.
    pub template_id: u8,
    /// Frame number, 16 bits, wrapping; one per layer frame.
    pub frame_number: u16,
}

impl MandatoryFields {
    /// Parses the first three bytes of a descriptor.
    #[inline]
    pub fn parse(value: &[u8]) -> Result<Self, DescriptorError> {
        let &[first, high, low] =
            value
                .first_chunk::<MANDATORY_LEN>()
                .ok_or(DescriptorError::Truncated {
                    needed: MANDATORY_LEN,
                    available: value.len(),
                })?;
        Ok(Self {
            start_of_frame: first & 0x80 != 0,
            end_of_frame: first & 0x40 != 0,
            template_id: first & 0x3F,
            frame_number: u16::from_be_bytes([high, low]),
        })
    }
}

/// One packet's descriptor resolved against its structure: everything an SFU needs to
/// forward or drop the packet for a decode target. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DependencyDescriptor {
    /// The packet is the first of its frame.
    pub start_of_frame: bool,
    /// The packet is the last of its frame.
    pub end_of_frame: bool,
    /// The wire template id.
    pub template_id: u8,
    /// The template's index in the structure.
    pub template_index: u8,
    /// Frame number, 16 bits, wrapping; one per layer frame.
    pub frame_number: u16,
    /// Spatial layer of the frame.
    pub spatial_id: u8,
    /// Temporal layer of the frame.
    pub temporal_id: u8,
    /// The frame's indication per decode target (the template's, or custom).
    pub dtis: DecodeTargetIndications,
    /// The frame's references (the template's, or custom).
    pub frame_diffs: FrameDiffs,
    /// The frame's chain diffs (the template's, or custom).
    pub chain_diffs: ChainDiffs,
    /// The packet carries a template structure: the first packet of a key frame (or of a
    /// structure change), from which every decode target can be decoded.
    pub carries_structure: bool,
    /// Decode targets the sender produces from this frame on (bit `i` for decode target
    /// `i`), when the packet says: a new structure makes all active, and the bitmask may
    /// follow. `None`: unchanged.
    pub active_decode_targets: Option<u32>,
    /// The DTIs were sent with the frame rather than taken from the template.
    pub custom_dtis: bool,
    /// The frame diffs were sent with the frame.
    pub custom_frame_diffs: bool,
    /// The chain diffs were sent with the frame.
    pub custom_chain_diffs: bool,
    /// Render resolution of the frame's spatial layer, when the structure has them.
    pub resolution: Option<RenderResolution>,
}

impl DependencyDescriptor {
    /// The frame's indication for `decode_target`.
    #[inline]
    pub fn dti(&self, decode_target: u8) -> Option<DecodeTargetIndication> {
        self.dtis.get(decode_target)
    }

    /// Whether a receiver of `decode_target` needs this frame (its DTI is not *not
    /// present*). An SFU forwards exactly these frames to it.
    #[inline]
    pub fn is_part_of(&self, decode_target: u8) -> bool {
        self.dti(decode_target)
            .is_some_and(|dti| dti != DecodeTargetIndication::NotPresent)
    }

    /// Whether a receiver may start decoding `decode_target` with this frame: its DTI is
    /// *switch*, or the packet carries a new structure (a key frame). Switch at the first
    /// packet of the frame ([`start_of_frame`](Self::start_of_frame)).
    #[inline]
    pub fn is_switch_point(&self, decode_target: u8) -> bool {
        self.dti(decode_target)
            .is_some_and(|dti| self.carries_structure || dti == DecodeTargetIndication::Switch)
    }

    /// Frame numbers of the frames this frame references.
    pub fn referenced_frames(&self) -> impl Iterator<Item = u16> + '_ {
        self.frame_diffs
            .as_slice()
            .iter()
            .map(|&diff| self.frame_number.wrapping_sub(diff))
    }

    /// Frame number of the previous frame of chain `chain`; `None` when the chain starts
    /// here (diff 0) or there is no such chain.
    #[inline]
    pub fn previous_frame_in_chain(&self, chain: u8) -> Option<u16> {
        match self.chain_diffs.get(chain)? {
            0 => None,
            diff => Some(self.frame_number.wrapping_sub(u16::from(diff))),
        }
    }
}

/// Reads bits most significant first, reporting the bytes a read would need when the
/// value is too short.
struct BitReader<'a> {
    value: &'a [u8],
    bit: usize,
}

impl BitReader<'_> {
    #[inline]
    fn bits(&mut self, count: u32) -> Result<u32, DescriptorError> {
        let end = self.bit + count as usize;
        if end > self.value.len() * 8 {
            return Err(DescriptorError::Truncated {
                needed: end.div_ceil(8),
                available: self.value.len(),
            });
        }
        let mut out = 0u32;
        for position in self.bit..end {
            let byte = self.value.get(position / 8).copied().unwrap_or(0);
            out = (out << 1) | u32::from((byte >> (7 - position % 8)) & 1);
        }
        self.bit = end;
        Ok(out)
    }

    #[inline]
    fn flag(&mut self) -> Result<bool, DescriptorError> {
        Ok(self.bits(1)? == 1)
    }

    /// `ns(n)`: a value below `n` (which is at least 1) in `w - 1` or `w` bits, `w` the
    /// bit length of `n`; the first `2^w - n` values take the shorter code.
    fn non_symmetric(&mut self, n: u32) -> Result<u32, DescriptorError> {
        let width = u32::BITS - n.leading_zeros();
        let short_codes = (1u32 << width) - n;
        let value = self.bits(width.saturating_sub(1))?;
        if value < short_codes {
            return Ok(value);
        }
        let extra = self.bits(1)?;
        Ok((value << 1) - short_codes + extra)
    }
}

fn read_structure(
    r: &mut BitReader<'_>,
    structure: &mut TemplateStructure,
) -> Result<(), DescriptorError> {
    // Start from a clean slate but keep the template allocation.
    let mut templates = std::mem::take(&mut structure.templates);
    templates.clear();
    *structure = TemplateStructure {
        templates,
        ..TemplateStructure::empty()
    };
    structure.template_id_offset = r.bits(6)? as u8;
    structure.decode_target_count = r.bits(5)? as u8 + 1;

    // template_layers()
    let (mut spatial_id, mut temporal_id) = (0u8, 0u8);
    loop {
        if structure.templates.len() == MAX_TEMPLATES {
            return Err(DescriptorError::TooManyTemplates);
        }
        structure.templates.push(FrameTemplate {
            spatial_id,
            temporal_id,
            ..FrameTemplate::default()
        });
        match r.bits(2)? {
            0 => {}
            1 => {
                temporal_id += 1;
                if usize::from(temporal_id) >= MAX_TEMPORAL_LAYERS {
                    return Err(DescriptorError::TooManyTemporalLayers);
                }
            }
            2 => {
                temporal_id = 0;
                spatial_id += 1;
                if usize::from(spatial_id) >= MAX_SPATIAL_LAYERS {
                    return Err(DescriptorError::TooManySpatialLayers);
                }
            }
            _ => break,
        }
    }

    // template_dtis()
    for template in &mut structure.templates {
        for _ in 0..structure.decode_target_count {
            // Cannot fail: at most 32 decode targets.
            template
                .dtis
                .push(DecodeTargetIndication::from_bits(r.bits(2)? as u8));
        }
    }

    // template_fdiffs()
    for template in &mut structure.templates {
        while r.flag()? {
            let diff = r.bits(4)? as u16 + 1;
            if !template.frame_diffs.push(diff) {
                return Err(DescriptorError::TooManyFrameDiffs);
            }
        }
    }

    // template_chains()
    structure.chain_count = r.non_symmetric(u32::from(structure.decode_target_count) + 1)? as u8;
    if structure.chain_count > 0 {
        for slot in structure
            .protected_by_chain
            .iter_mut()
            .take(usize::from(structure.decode_target_count))
        {
            *slot = r.non_symmetric(u32::from(structure.chain_count))? as u8;
        }
        for template in &mut structure.templates {
            for _ in 0..structure.chain_count {
                // Cannot fail: chains never outnumber decode targets.
                template.chain_diffs.push(r.bits(4)? as u8);
            }
        }
    }

    // render_resolutions()
    if r.flag()? {
        let spatial_layers = usize::from(structure.max_spatial_id()) + 1;
        for slot in structure.resolutions.iter_mut().take(spatial_layers) {
            let width = r.bits(16)? + 1;
            let height = r.bits(16)? + 1;
            *slot = RenderResolution { width, height };
        }
        structure.has_resolutions = true;
    }
    structure.derive_decode_target_layers();
    Ok(())
}

/// Parses `value` against `latest` (the structure in force), parsing an attached
/// structure into `attached` (then [`DependencyDescriptor::carries_structure`] is set).
fn parse_into(
    value: &[u8],
    latest: Option<&TemplateStructure>,
    attached: &mut TemplateStructure,
) -> Result<DependencyDescriptor, DescriptorError> {
    let mandatory = MandatoryFields::parse(value)?;
    let mut r = BitReader {
        value,
        bit: MANDATORY_LEN * 8,
    };
    let mut carries_structure = false;
    let mut active_present = false;
    let mut custom_dtis = false;
    let mut custom_frame_diffs = false;
    let mut custom_chain_diffs = false;
    if value.len() > MANDATORY_LEN {
        carries_structure = r.flag()?;
        active_present = r.flag()?;
        custom_dtis = r.flag()?;
        custom_frame_diffs = r.flag()?;
        custom_chain_diffs = r.flag()?;
        if carries_structure {
            read_structure(&mut r, attached)?;
        }
    }
    let structure = if carries_structure {
        &*attached
    } else {
        latest.ok_or(DescriptorError::NoStructure)?
    };

    let mut active_decode_targets = carries_structure.then(|| structure.all_decode_targets());
    if active_present {
        active_decode_targets = Some(r.bits(u32::from(structure.decode_target_count))?);
    }

    let template_index = structure.template_index(mandatory.template_id).ok_or(
        DescriptorError::UnknownTemplate {
            template_id: mandatory.template_id,
            template_id_offset: structure.template_id_offset,
            template_count: structure.templates.len(),
        },
    )?;
    let template = structure
        .templates
        .get(usize::from(template_index))
        .copied()
        .unwrap_or_default();

    let mut dtis = template.dtis;
    if custom_dtis {
        dtis = DecodeTargetIndications::new();
        for _ in 0..structure.decode_target_count {
            dtis.push(DecodeTargetIndication::from_bits(r.bits(2)? as u8));
        }
    }
    let mut frame_diffs = template.frame_diffs;
    if custom_frame_diffs {
        frame_diffs = FrameDiffs::new();
        loop {
            let size = r.bits(2)?;
            if size == 0 {
                break;
            }
            let diff = r.bits(4 * size)? as u16 + 1;
            if !frame_diffs.push(diff) {
                return Err(DescriptorError::TooManyFrameDiffs);
            }
        }
    }
    let mut chain_diffs = template.chain_diffs;
    if custom_chain_diffs {
        chain_diffs = ChainDiffs::new();
        for _ in 0..structure.chain_count {
            chain_diffs.push(r.bits(8)? as u8);
        }
    }

    Ok(DependencyDescriptor {
        start_of_frame: mandatory.start_of_frame,
        end_of_frame: mandatory.end_of_frame,
        template_id: mandatory.template_id,
        template_index,
        frame_number: mandatory.frame_number,
        spatial_id: template.spatial_id,
        temporal_id: template.temporal_id,
        dtis,
        frame_diffs,
        chain_diffs,
        carries_structure,
        active_decode_targets,
        custom_dtis,
        custom_frame_diffs,
        custom_chain_diffs,
        resolution: structure.resolution(template.spatial_id),
    })
}

/// Parses one descriptor against `latest`, the structure in force for its stream (if
/// any). Returns the descriptor and, when the value carries one, the new structure, which
/// replaces `latest` for the packets that follow. Allocates only for a new structure;
/// [`DependencyDescriptorReader`] keeps the structure and reuses its allocation.
pub fn parse(
    value: &[u8],
    latest: Option<&TemplateStructure>,
) -> Result<(DependencyDescriptor, Option<TemplateStructure>), DescriptorError> {
    let mut attached = TemplateStructure::empty();
    let descriptor = parse_into(value, latest, &mut attached)?;
    let new_structure = descriptor.carries_structure.then_some(attached);
    Ok((descriptor, new_structure))
}

/// The dependency descriptor state of one incoming stream: the latest template structure
/// and active decode targets, against which each packet's descriptor is resolved.
///
/// Packets are read in arrival order. A structure replaces the previous one as soon as a
/// packet carrying it parses; a reordered packet of an older frame may then fail to
/// resolve (the sender moves the template id offset so it fails rather than resolving to
/// a wrong template).
#[derive(Debug, Clone)]
pub struct DependencyDescriptorReader {
    structure: Option<TemplateStructure>,
    /// Where an attached structure is parsed before it replaces `structure`; swapped with
    /// it so both allocations are reused.
    spare: TemplateStructure,
    active_decode_targets: u32,
}

impl Default for DependencyDescriptorReader {
    fn default() -> Self {
        Self::new()
    }
}

impl DependencyDescriptorReader {
    /// A reader that has seen no structure yet.
    pub fn new() -> Self {
        Self {
            structure: None,
            spare: TemplateStructure::empty(),
            active_decode_targets: 0,
        }
    }

    /// A reader starting from a structure learnt elsewhere (all decode targets active).
    pub fn with_structure(structure: TemplateStructure) -> Self {
        Self {
            active_decode_targets: structure.all_decode_targets(),
            structure: Some(structure),
            spare: TemplateStructure::empty(),
        }
    }

    /// Parses one packet's descriptor value and resolves it against the latest structure,
    /// adopting the packet's structure and active decode targets when it carries them. On
    /// error the state is unchanged.
    pub fn read(&mut self, value: &[u8]) -> Result<DependencyDescriptor, DescriptorError> {
        let descriptor = parse_into(value, self.structure.as_ref(), &mut self.spare)?;
        if descriptor.carries_structure {
            match &mut self.structure {
                Some(current) => std::mem::swap(current, &mut self.spare),
                None => {
                    self.structure = Some(std::mem::replace(
                        &mut self.spare,
                        TemplateStructure::empty(),
                    ))
                }
            }
        }
        if let Some(active) = descriptor.active_decode_targets {
            self.active_decode_targets = active;
        }
        Ok(descriptor)
    }

    /// The latest structure, once one has been read.
    #[inline]
    pub fn structure(&self) -> Option<&TemplateStructure> {
        self.structure.as_ref()
    }

    /// Decode targets the sender currently produces (bit `i` for decode target `i`); 0
    /// before any structure.
    #[inline]
    pub fn active_decode_targets(&self) -> u32 {
        self.active_decode_targets
    }

    /// Whether the sender currently produces `decode_target`.
    #[inline]
    pub fn is_active(&self, decode_target: u8) -> bool {
        u32::from(decode_target) < u32::BITS
            && self.active_decode_targets & (1 << decode_target) != 0
    }

    /// Forgets the structure (the stream restarted, or its SSRC changed hands).
    pub fn reset(&mut self) {
        self.structure = None;
        self.active_decode_targets = 0;
    }
}

/// What to write for one packet: the mandatory fields, the template the frame follows and
/// what it overrides. A frame that matches its template needs only 3 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DescriptorFields {
    /// The packet is the first of its frame.
    pub start_of_frame: bool,
    /// The packet is the last of its frame.
    pub end_of_frame: bool,
    /// Frame number, one per layer frame.
    pub frame_number: u16,
    /// Index of the frame's template in the structure.
    pub template_index: u8,
    /// Attach the structure (the first packet of a key frame).
    pub attach_structure: bool,
    /// Send the active decode targets bitmask.
    pub active_decode_targets: Option<u32>,
    /// Send these DTIs instead of the template's.
    pub custom_dtis: Option<DecodeTargetIndications>,
    /// Send these frame diffs (each 1..=4096) instead of the template's.
    pub custom_frame_diffs: Option<FrameDiffs>,
    /// Send these chain diffs instead of the template's.
    pub custom_chain_diffs: Option<ChainDiffs>,
}

impl DescriptorFields {
    /// A single-packet frame (start and end of frame) following template
    /// `template_index` exactly.
    #[inline]
    pub fn single_packet(frame_number: u16, template_index: u8) -> Self {
        Self {
            start_of_frame: true,
            end_of_frame: true,
            frame_number,
            template_index,
            ..Self::default()
        }
    }

    fn has_extended_fields(&self) -> bool {
        self.attach_structure
            || self.active_decode_targets.is_some()
            || self.custom_dtis.is_some()
            || self.custom_frame_diffs.is_some()
            || self.custom_chain_diffs.is_some()
    }

    fn validate(&self, structure: &TemplateStructure) -> Result<(), BuildError> {
        if usize::from(self.template_index) >= structure.templates.len() {
            return Err(BuildError::UnknownTemplate(self.template_index));
        }
        if self
            .custom_dtis
            .is_some_and(|d| d.len() != usize::from(structure.decode_target_count))
        {
            return Err(BuildError::CustomDtis);
        }
        if self.custom_frame_diffs.is_some_and(|d| {
            d.as_slice()
                .iter()
                .any(|&diff| !(1..=MAX_FRAME_DIFF).contains(&diff))
        }) {
            return Err(BuildError::CustomFrameDiffs);
        }
        if self
            .custom_chain_diffs
            .is_some_and(|d| d.len() != usize::from(structure.chain_count))
        {
            return Err(BuildError::CustomChainDiffs);
        }
        if self
            .active_decode_targets
            .is_some_and(|mask| mask & !structure.all_decode_targets() != 0)
        {
            return Err(BuildError::ActiveDecodeTargets);
        }
        Ok(())
    }
}

/// Writes bits most significant first into a zeroed buffer; bits past its end are only
/// counted, so an empty buffer measures.
struct BitWriter<'a> {
    out: &'a mut [u8],
    bit: usize,
}

impl BitWriter<'_> {
    #[inline]
    fn bits(&mut self, value: u32, count: u32) {
        for shift in (0..count).rev() {
            if (value >> shift) & 1 == 1 {
                if let Some(byte) = self.out.get_mut(self.bit / 8) {
                    *byte |= 0x80 >> (self.bit % 8);
                }
            }
            self.bit += 1;
        }
    }

    #[inline]
    fn flag(&mut self, value: bool) {
        self.bits(u32::from(value), 1);
    }

    /// `ns(n)` for `value < n`: the short code is `value` in `w - 1` bits, the long code
    /// `value + 2^w - n` in `w` bits.
    fn non_symmetric(&mut self, value: u32, n: u32) {
        let width = u32::BITS - n.leading_zeros();
        let short_codes = (1u32 << width) - n;
        if value < short_codes {
            self.bits(value, width.saturating_sub(1));
        } else {
            self.bits(value + short_codes, width);
        }
    }
}

fn write_structure(w: &mut BitWriter<'_>, structure: &TemplateStructure) {
    w.bits(u32::from(structure.template_id_offset), 6);
    w.bits(u32::from(structure.decode_target_count) - 1, 5);
    for pair in structure.templates.windows(2) {
        if let [previous, next] = pair {
            // Constructors only admit templates with a valid step.
            w.bits(next_layer_idc(previous, next).unwrap_or(0), 2);
        }
    }
    w.bits(3, 2);
    for template in &structure.templates {
        for dti in template.dtis.iter() {
            w.bits(u32::from(dti.bits()), 2);
        }
    }
    for template in &structure.templates {
        for &diff in template.frame_diffs.as_slice() {
            w.flag(true);
            w.bits(u32::from(diff) - 1, 4);
        }
        w.flag(false);
    }
    w.non_symmetric(
        u32::from(structure.chain_count),
        u32::from(structure.decode_target_count) + 1,
    );
    if structure.chain_count > 0 {
        for &chain in structure
            .protected_by_chain
            .iter()
            .take(usize::from(structure.decode_target_count))
        {
            w.non_symmetric(u32::from(chain), u32::from(structure.chain_count));
        }
        for template in &structure.templates {
            for &diff in template.chain_diffs.as_slice() {
                w.bits(u32::from(diff), 4);
            }
        }
    }
    let resolutions = structure.resolutions();
    w.flag(!resolutions.is_empty());
    for resolution in resolutions {
        w.bits(resolution.width - 1, 16);
        w.bits(resolution.height - 1, 16);
    }
}

fn write_fields(w: &mut BitWriter<'_>, structure: &TemplateStructure, fields: &DescriptorFields) {
    w.flag(fields.start_of_frame);
    w.flag(fields.end_of_frame);
    w.bits(u32::from(structure.template_id(fields.template_index)), 6);
    w.bits(u32::from(fields.frame_number), 16);
    if !fields.has_extended_fields() {
        return;
    }
    w.flag(fields.attach_structure);
    w.flag(fields.active_decode_targets.is_some());
    w.flag(fields.custom_dtis.is_some());
    w.flag(fields.custom_frame_diffs.is_some());
    w.flag(fields.custom_chain_diffs.is_some());
    if fields.attach_structure {
        write_structure(w, structure);
    }
    if let Some(mask) = fields.active_decode_targets {
        w.bits(mask, u32::from(structure.decode_target_count));
    }
    if let Some(dtis) = fields.custom_dtis {
        for dti in dtis.iter() {
            w.bits(u32::from(dti.bits()), 2);
        }
    }
    if let Some(diffs) = fields.custom_frame_diffs {
        for &diff in diffs.as_slice() {
            let minus_one = u32::from(diff) - 1;
            // next_fdiff_size: the number of 4-bit nibbles the diff needs.
            let nibbles = match minus_one {
                0..=0xF => 1,
                0x10..=0xFF => 2,
                _ => 3,
            };
            w.bits(nibbles, 2);
            w.bits(minus_one, 4 * nibbles);
        }
        w.bits(0, 2);
    }
    if let Some(diffs) = fields.custom_chain_diffs {
        for &diff in diffs.as_slice() {
            w.bits(u32::from(diff), 8);
        }
    }
}

/// Bytes [`write()`] needs for `fields` against `structure`.
pub fn encoded_len(
    structure: &TemplateStructure,
    fields: &DescriptorFields,
) -> Result<usize, BuildError> {
    fields.validate(structure)?;
    let mut nothing = [0u8; 0];
    let mut w = BitWriter {
        out: &mut nothing,
        bit: 0,
    };
    write_fields(&mut w, structure, fields);
    Ok(w.bit.div_ceil(8))
}

/// Writes the descriptor for `fields` against `structure` at the start of `out`, padding
/// the last byte with zeros; returns its length. Bytes after it are left alone.
pub fn write(
    structure: &TemplateStructure,
    fields: &DescriptorFields,
    out: &mut [u8],
) -> Result<usize, BuildError> {
    let len = encoded_len(structure, fields)?;
    let available = out.len();
    let out = out.get_mut(..len).ok_or(BuildError::BufferTooSmall {
        needed: len,
        available,
    })?;
    out.fill(0);
    let mut w = BitWriter { out, bit: 0 };
    write_fields(&mut w, structure, fields);
    Ok(len)
}

/// [`write()`] into a new vector.
pub fn to_vec(
    structure: &TemplateStructure,
    fields: &DescriptorFields,
) -> Result<Vec<u8>, BuildError> {
    let mut out = vec![0; encoded_len(structure, fields)?];
    write(structure, fields, &mut out)?;
    Ok(out)
}

/// The scalability modes relais has libwebrtc's structures for, named as in WebRTC's
/// `scalabilityMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalabilityMode {
    /// One layer.
    L1T1,
    /// One spatial, three temporal layers.
    L1T3,
    /// Three spatial, three temporal layers, full SVC (every spatial layer predicted from
    /// the one below in every temporal unit).
    L3T3,
    /// Three spatial, three temporal layers, K-SVC (`L3T3_KEY`: spatial layers predicted
    /// from the one below only in the key frame).
    L3T3Key,
}

/// One layer frame of a temporal unit of a [`ScalabilityMode`] stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerFrame {
    /// Spatial layer.
    pub spatial_id: u8,
    /// Temporal layer.
    pub temporal_id: u8,
    /// Index of the template the frame follows in [`ScalabilityMode::structure`].
    pub template_index: u8,
    /// The frame is the key frame (S0 of temporal unit 0): its first packet carries the
    /// structure.
    pub is_key_frame: bool,
}

impl ScalabilityMode {
    /// The mode named `name` (`"L1T3"`), if relais has its structure.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "L1T1" => Some(Self::L1T1),
            "L1T3" => Some(Self::L1T3),
            "L3T3" => Some(Self::L3T3),
            "L3T3_KEY" => Some(Self::L3T3Key),
            _ => None,
        }
    }

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::L1T1 => "L1T1",
            Self::L1T3 => "L1T3",
            Self::L3T3 => "L3T3",
            Self::L3T3Key => "L3T3_KEY",
        }
    }

    /// Number of spatial layers.
    pub fn spatial_layers(self) -> u8 {
        match self {
            Self::L1T1 | Self::L1T3 => 1,
            Self::L3T3 | Self::L3T3Key => 3,
        }
    }

    /// Number of temporal layers.
    pub fn temporal_layers(self) -> u8 {
        match self {
            Self::L1T1 => 1,
            Self::L1T3 | Self::L3T3 | Self::L3T3Key => 3,
        }
    }

    /// libwebrtc's template structure for the mode (template id offset 0, no
    /// resolutions).
    pub fn structure(self) -> TemplateStructure {
        match self {
            Self::L1T1 => TemplateStructure::l1t1(),
            Self::L1T3 => TemplateStructure::l1t3(),
            Self::L3T3 => TemplateStructure::l3t3(),
            Self::L3T3Key => TemplateStructure::l3t3_key(),
        }
    }

    /// The layer frames of temporal unit `temporal_unit` (0: the key frame), lowest
    /// spatial layer first, as libwebrtc's encoder produces them with every decode target
    /// active. Each layer frame takes the next frame number. With three temporal layers
    /// the units after the key go T2, T1, T2, T0 and repeat.
    pub fn layer_frames(self, temporal_unit: u64) -> impl Iterator<Item = LayerFrame> {
        // Template index of the spatial layer 0 frame; higher spatial layers' templates
        // follow at a stride of 5 (the three-layer structures have five per layer). Only
        // full-SVC L3T3 orders its key templates after the T0 delta ones.
        let (base, temporal_id): (u8, u8) = match (self, temporal_unit % 4) {
            (Self::L1T1, _) => (u8::from(temporal_unit != 0), 0),
            _ if temporal_unit == 0 => (u8::from(self == Self::L3T3), 0),
            (_, 1) => (3, 2),
            (_, 2) => (2, 1),
            (_, 3) => (4, 2),
            _ => (u8::from(self != Self::L3T3), 0),
        };
        let spatial_layers = self.spatial_layers();
        (0..spatial_layers).map(move |spatial_id| LayerFrame {
            spatial_id,
            temporal_id,
            template_index: base + 5 * spatial_id,
            is_key_frame: temporal_unit == 0 && spatial_id == 0,
        })
    }
}

/// Whether an AV1 RTP payload starts a new coded video sequence: the N bit of the
/// aggregation header (AV1 RTP specification §4.4), set on the first packet of a key frame.
/// This is how a receiver without the dependency descriptor finds a decodable start.
#[inline]
pub fn starts_keyframe(payload: &[u8]) -> bool {
    payload.first().is_some_and(|header| header & 0x08 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns_round_trip(value: u32, n: u32) -> (u32, usize) {
        let mut buf = [0u8; 2];
        let mut w = BitWriter {
            out: &mut buf,
            bit: 0,
        };
        w.non_symmetric(value, n);
        let written = w.bit;
        let mut r = BitReader {
            value: &buf,
            bit: 0,
        };
        let read = r.non_symmetric(n).unwrap();
        assert_eq!(r.bit, written);
        (read, written)
    }

    #[test]
    fn non_symmetric_matches_the_spec_table() {
        // The spec's example, n = 5: values 0..=2 take 2 bits, 3 and 4 take 3.
        let widths: Vec<usize> = (0..5).map(|v| ns_round_trip(v, 5).1).collect();
        assert_eq!(widths, [2, 2, 2, 3, 3]);
        for n in 1..=33 {
            for v in 0..n {
                assert_eq!(ns_round_trip(v, n).0, v, "ns({n}) of {v}");
            }
        }
        // n = 1 codes nothing.
        assert_eq!(ns_round_trip(0, 1).1, 0);
    }

    #[test]
    fn ns_codes_are_the_spec_bits() {
        // n = 5: 3 -> 110, 4 -> 111 (v = 3 in 2 bits, then the extra bit).
        let mut buf = [0u8; 1];
        let mut w = BitWriter {
            out: &mut buf,
            bit: 0,
        };
        w.non_symmetric(3, 5);
        w.non_symmetric(4, 5);
        // 110 then 111, then two bits of padding.
        assert_eq!(buf[0], 0b1101_1100);
    }

    #[test]
    fn mask_of_all_widths() {
        assert_eq!(mask_of(1), 1);
        assert_eq!(mask_of(9), 0x1FF);
        assert_eq!(mask_of(32), u32::MAX);
    }

    #[test]
    fn dti_notation_round_trips() {
        let d = DecodeTargetIndications::from_notation("-DSR").unwrap();
        assert_eq!(d, DecodeTargetIndications::from_notation_const("-DSR"));
        assert_eq!(format!("{d:?}"), "DecodeTargetIndications(\"-DSR\")");
        assert_eq!(d.get(4), None);
        assert!(DecodeTargetIndications::from_notation("x").is_none());
        assert!(DecodeTargetIndications::from_notation(&"S".repeat(33)).is_none());
        assert_eq!(
            DecodeTargetIndications::from_notation(&"R".repeat(32))
                .unwrap()
                .get(31),
            Some(DecodeTargetIndication::Required)
        );
    }
}
