//! `ReceiverVideoConstraints`: what video a receiver wants, and the per-source
//! [`VideoConstraints`] it carries.
//!
//! Every field of the message is optional and a message is a partial update: an absent field
//! leaves that part of the receiver's state unchanged. This module keeps absence as `None`;
//! merging into the receiver's state is the conference core's job. Meaning of the values
//! (JVB `doc/allocation.md`): `lastN` −1 is unlimited; `maxHeight` −1 is unlimited, 0 is
//! "send nothing", a positive value a soft limit.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fields::{Fields, F64, I32, I64, STRINGS};
use super::strict_json::parse_strict;
use super::writer::ObjectWriter;
use super::{BridgeChannelError, MAX_MESSAGE_BYTES};

/// Limits on one video source (or the default for all sources).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoConstraints {
    /// Highest resolution wanted, in pixels of height: −1 unlimited, 0 none.
    pub max_height: i32,
    /// Highest frame rate wanted; `None` when the client did not say (JVB: −1, unlimited).
    pub max_frame_rate: Option<f64>,
}

impl VideoConstraints {
    /// Constraints with a height limit and no frame-rate limit.
    pub fn max_height(max_height: i32) -> Self {
        Self {
            max_height,
            max_frame_rate: None,
        }
    }

    /// Parses a bare constraints object (`{"maxHeight": 1080, "maxFrameRate": 15.0}`), with
    /// the same size cap and duplicate-key rule as [`parse`](super::parse).
    pub fn parse(text: &str) -> Result<Self, BridgeChannelError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(BridgeChannelError::TooLarge {
                size: text.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        match parse_strict(text)? {
            Value::Object(map) => Self::read(Fields::new("VideoConstraints", map)),
            _ => Err(BridgeChannelError::NotAnObject),
        }
    }

    /// Writes the constraints as a JSON object (`maxFrameRate` only when set).
    pub fn to_json(&self) -> String {
        let mut writer = ObjectWriter::new();
        writer.integer("maxHeight", i64::from(self.max_height));
        if let Some(rate) = self.max_frame_rate {
            writer.float("maxFrameRate", rate);
        }
        writer.finish()
    }

    /// Reads `maxHeight` (required, as in JVB) and `maxFrameRate`; other fields are ignored
    /// (JVB ignores them too).
    pub(crate) fn read(mut fields: Fields) -> Result<Self, BridgeChannelError> {
        Ok(Self {
            max_height: fields.required("maxHeight", I32)?,
            max_frame_rate: fields.optional("maxFrameRate", F64)?,
        })
    }
}

/// A receiver's (partial) video preferences. `None` means "not in this message".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverVideoConstraints {
    /// Most video sources to receive (−1 unlimited).
    pub last_n: Option<i32>,
    /// Sources the receiver selected (e.g. pinned); preferred after on-stage ones.
    pub selected_sources: Option<Vec<String>>,
    /// Sources shown large; preferred first, up to 360p/30 fps before others get more.
    pub on_stage_sources: Option<Vec<String>>,
    /// Constraints for sources not named in `constraints`.
    pub default_constraints: Option<VideoConstraints>,
    /// Constraints per source name.
    pub constraints: Option<BTreeMap<String, VideoConstraints>>,
    /// A bandwidth to assume instead of the estimate (testing aid), in bits per second.
    pub assumed_bandwidth_bps: Option<i64>,
}

impl ReceiverVideoConstraints {
    pub(crate) fn read(mut fields: Fields) -> Result<Self, BridgeChannelError> {
        let default_constraints = match fields.optional_value("defaultConstraints") {
            Some(value) => Some(VideoConstraints::read(
                fields.nested("defaultConstraints", value)?,
            )?),
            None => None,
        };
        let constraints = match fields.optional_value("constraints") {
            Some(value) => {
                let mut per_source = fields.nested("constraints", value)?;
                let mut constraints = BTreeMap::new();
                for (source, value) in per_source.take_all() {
                    let source_fields = per_source.nested(&source, value)?;
                    constraints.insert(source, VideoConstraints::read(source_fields)?);
                }
                Some(constraints)
            }
            None => None,
        };
        Ok(Self {
            last_n: fields.optional("lastN", I32)?,
            selected_sources: fields.optional("selectedSources", STRINGS)?,
            on_stage_sources: fields.optional("onStageSources", STRINGS)?,
            default_constraints,
            constraints,
            assumed_bandwidth_bps: fields.optional("assumedBandwidthBps", I64)?,
        })
    }

    pub(crate) fn write(&self, writer: &mut ObjectWriter) {
        if let Some(last_n) = self.last_n {
            writer.integer("lastN", i64::from(last_n));
        }
        if let Some(sources) = &self.selected_sources {
            writer.strings("selectedSources", sources);
        }
        if let Some(sources) = &self.on_stage_sources {
            writer.strings("onStageSources", sources);
        }
        if let Some(default) = &self.default_constraints {
            writer.raw("defaultConstraints", &default.to_json());
        }
        if let Some(constraints) = &self.constraints {
            let mut per_source = ObjectWriter::new();
            for (source, constraint) in constraints {
                per_source.raw(source, &constraint.to_json());
            }
            writer.raw("constraints", &per_source.finish());
        }
        if let Some(bandwidth) = self.assumed_bandwidth_bps {
            writer.integer("assumedBandwidthBps", bandwidth);
        }
    }
}
