//! `ReceiverAudioSubscription`: which audio sources a receiver wants.
//!
//! Two wire forms exist. lib-jitsi-meet sends `{"mode": "All"|"None"|"Include"|"Exclude",
//! "list": [..]}`; current JVB also reads `{"all": bool, "include": [..], "exclude": [..]}`
//! (all fields optional, defaults `false` / empty), which can say "all, plus these synthetic
//! sources, minus those". A message is read into the variant of the form it used, so that it
//! is written back the same way; [`ReceiverAudioSubscription::wants`] gives the meaning.

use super::fields::{Fields, BOOL, STRING, STRINGS};
use super::writer::ObjectWriter;
use super::BridgeChannelError;

/// The audio sources a receiver wants to get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverAudioSubscription {
    /// `{"mode": "All"}`: every audio source.
    All,
    /// `{"mode": "None"}`: no audio at all.
    None,
    /// `{"mode": "Include", "list": [..]}`: only the listed source names.
    Include(Vec<String>),
    /// `{"mode": "Exclude", "list": [..]}`: every source except the listed ones.
    Exclude(Vec<String>),
    /// `{"all": .., "include": [..], "exclude": [..]}` (JVB's current form; a message with
    /// none of these fields reads as `Custom` with `all: false`, i.e. nothing).
    Custom {
        /// Whether every (non-synthetic) source is wanted by default.
        all: bool,
        /// Sources wanted in addition (or, with `all: false`, the only ones wanted).
        include: Vec<String>,
        /// Sources not wanted.
        exclude: Vec<String>,
    },
}

impl ReceiverAudioSubscription {
    /// Whether the receiver wants the audio source `source_name`. The legacy modes mean what
    /// JVB maps them to (`All` = all, `Exclude(l)` = all minus `l`, `Include(l)` = only `l`);
    /// in the `Custom` form a source is wanted when included or covered by `all`, and an
    /// excluded source is never wanted.
    pub fn wants(&self, source_name: &str) -> bool {
        let named = |list: &[String]| list.iter().any(|name| name == source_name);
        match self {
            Self::All => true,
            Self::None => false,
            Self::Include(list) => named(list),
            Self::Exclude(list) => !named(list),
            Self::Custom {
                all,
                include,
                exclude,
            } => !named(exclude) && (*all || named(include)),
        }
    }

    pub(crate) fn read(mut fields: Fields) -> Result<Self, BridgeChannelError> {
        let uses_lists_form = fields.has("all") || fields.has("include") || fields.has("exclude");
        let Some(mode) = fields.optional("mode", STRING)? else {
            if fields.has("list") {
                return Err(fields.invalid("list", "absent when there is no `mode`"));
            }
            return Ok(Self::Custom {
                all: fields.optional("all", BOOL)?.unwrap_or(false),
                include: fields.optional("include", STRINGS)?.unwrap_or_default(),
                exclude: fields.optional("exclude", STRINGS)?.unwrap_or_default(),
            });
        };
        if uses_lists_form {
            // Mixing both forms has no defined meaning; JVB's reader would pick one silently.
            return Err(
                fields.invalid("mode", "absent when `all`, `include` or `exclude` is given")
            );
        }
        // `list` is read (and type-checked) for every mode but only meaningful for two.
        let list = fields.optional("list", STRINGS)?.unwrap_or_default();
        match mode.as_str() {
            "All" => Ok(Self::All),
            "None" => Ok(Self::None),
            "Include" => Ok(Self::Include(list)),
            "Exclude" => Ok(Self::Exclude(list)),
            _ => Err(fields.invalid("mode", "one of All, None, Include, Exclude")),
        }
    }

    /// Writes the fields in the form the variant stands for; empty lists and `all: false`
    /// are left out (they are the defaults on read).
    pub(crate) fn write(&self, writer: &mut ObjectWriter) {
        let mut mode_with_list = |mode: &str, list: &[String]| {
            writer.string("mode", mode);
            if !list.is_empty() {
                writer.strings("list", list);
            }
        };
        match self {
            Self::All => mode_with_list("All", &[]),
            Self::None => mode_with_list("None", &[]),
            Self::Include(list) => mode_with_list("Include", list),
            Self::Exclude(list) => mode_with_list("Exclude", list),
            Self::Custom {
                all,
                include,
                exclude,
            } => {
                if *all {
                    writer.boolean("all", true);
                }
                if !include.is_empty() {
                    writer.strings("include", include);
                }
                if !exclude.is_empty() {
                    writer.strings("exclude", exclude);
                }
            }
        }
    }
}
