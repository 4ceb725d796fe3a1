//! The RTP packet view (RFC 3550) and its RFC 8285 header extensions.
//!
//! This module owns the byte layout of an RTP packet: the fixed header, the CSRC list, the
//! header-extension block (one-byte form, profile `0xBEDE`, and two-byte form, profiles
//! `0x1000..=0x100F`) and the padding trailer. [`RtpPacket`] validates all of it once in
//! [`RtpPacket::parse`] and keeps only offsets, so every getter afterwards is a load from the
//! caller's buffer. When the buffer is mutable the same view rewrites SSRC, sequence number,
//! timestamp, payload type, marker and header-extension ids and values in place; nothing here
//! ever changes the length of a packet, so a rewritten packet can be SRTP-protected in place.
//!
//! What the extension parser accepts follows libwebrtc, the implementation relais has to
//! interoperate with:
//! - a zero byte where an element header is expected is one byte of padding (both forms);
//! - in the one-byte form, id 15 ends processing of the block (RFC 8285 §4.2), and so does id
//!   0 with a non-zero length nibble (libwebrtc stops there too);
//! - an element whose value runs past the end of the block makes the packet malformed.
//!
//! Parsing allocates nothing and never panics, whatever the bytes.

use thiserror::Error;

/// The RTP version this module accepts; RFC 3550 defines only version 2.
pub const RTP_VERSION: u8 = 2;
/// Length of the fixed RTP header, before the CSRC list.
pub const FIXED_HEADER_LEN: usize = 12;
/// "Defined by profile" value of the RFC 8285 one-byte header-extension form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// "Defined by profile" value of the RFC 8285 two-byte form; the low 4 bits are "appbits".
pub const TWO_BYTE_PROFILE: u16 = 0x1000;
/// Mask selecting the part of the profile that identifies the two-byte form.
const TWO_BYTE_PROFILE_MASK: u16 = 0xFFF0;
/// One-byte form id that ends processing of the extension block (RFC 8285 §4.2).
const ONE_BYTE_RESERVED_ID: u8 = 15;

/// Why a datagram is not a valid RTP packet, or why an in-place rewrite was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RtpError {
    /// The buffer ends before the part of the header it announces.
    #[error("RTP packet truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the header says are there.
        needed: usize,
        /// Bytes the buffer holds.
        available: usize,
    },
    /// The version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The padding count (last byte) is zero or larger than what follows the header.
    #[error("RTP padding count {padding_len} invalid with {available} bytes after the header")]
    BadPadding {
        /// The padding count found in the last byte.
        padding_len: u8,
        /// Bytes between the end of the header and the end of the packet.
        available: usize,
    },
    /// A header-extension element's value runs past the end of the extension block.
    #[error("header extension element at block offset {offset} overruns the block")]
    ExtensionOverrun {
        /// Offset of the element's header within the extension block.
        offset: usize,
    },
    /// No header-extension element with this id is in the packet.
    #[error("header extension id {0} not present")]
    ExtensionNotFound(u8),
    /// The id cannot be written in the packet's extension form (one-byte: 1..=14,
    /// two-byte: 1..=255).
    #[error("header extension id {id} not allowed in the {form:?} form")]
    InvalidExtensionId {
        /// The refused id.
        id: u8,
        /// The form of the packet's extension block.
        form: ExtensionForm,
    },
    /// A new value does not have the length of the value it replaces.
    #[error("header extension id {id} holds {expected} bytes, new value has {actual}")]
    ExtensionLengthMismatch {
        /// The element's id.
        id: u8,
        /// Length of the value in the packet.
        expected: usize,
        /// Length of the value offered.
        actual: usize,
    },
}

/// The two header-extension forms of RFC 8285.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionForm {
    /// Profile `0xBEDE`: 4-bit id (1..=14), values of 1..=16 bytes.
    OneByte,
    /// Profile `0x100X`: 8-bit id (1..=255), values of 0..=255 bytes.
    TwoByte,
}

impl ExtensionForm {
    /// The form a "defined by profile" value selects; `None` for RFC 3550 extensions that
    /// are not RFC 8285 elements.
    #[inline]
    pub const fn from_profile(profile: u16) -> Option<Self> {
        if profile == ONE_BYTE_PROFILE {
            Some(Self::OneByte)
        } else if profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE {
            Some(Self::TwoByte)
        } else {
            None
        }
    }

    /// Whether `id` names an element in this form (0 is padding; 15 is reserved in the
    /// one-byte form).
    #[inline]
    pub const fn is_valid_id(self, id: u8) -> bool {
        match self {
            Self::OneByte => id >= 1 && id <= 14,
            Self::TwoByte => id >= 1,
        }
    }

    /// The longest value one element can hold in this form.
    #[inline]
    pub const fn max_value_len(self) -> usize {
        match self {
            Self::OneByte => 16,
            Self::TwoByte => 255,
        }
    }
}

/// Reads a big-endian `u16` at `at`, `None` past the end.
#[inline]
fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    bytes
        .get(at..)
        .and_then(|rest| rest.first_chunk::<2>())
        .map(|b| u16::from_be_bytes(*b))
}

/// Writes `value` big-endian at `at`; silently does nothing past the end, which a parsed
/// view never asks for.
#[inline]
fn write_be<const N: usize>(bytes: &mut [u8], at: usize, value: [u8; N]) {
    if let Some(dst) = bytes
        .get_mut(at..)
        .and_then(|rest| rest.first_chunk_mut::<N>())
    {
        *dst = value;
    }
}

/// Where the header-extension block sits, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExtensionBlock {
    /// The 16-bit "defined by profile" field.
    profile: u16,
    /// Offset of the first byte after the 4-byte extension header.
    data_start: usize,
}

/// The header's shape: everything up to the payload, without looking at the payload or the
/// padding (which SRTP encrypts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HeaderLayout {
    header_len: usize,
    extension: Option<ExtensionBlock>,
}

impl HeaderLayout {
    #[inline]
    fn parse(bytes: &[u8]) -> Result<Self, RtpError> {
        let available = bytes.len();
        let Some(fixed) = bytes.first_chunk::<FIXED_HEADER_LEN>() else {
            return Err(RtpError::Truncated {
                needed: FIXED_HEADER_LEN,
                available,
            });
        };
        let version = fixed[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let csrc_end = FIXED_HEADER_LEN + 4 * usize::from(fixed[0] & 0x0F);
        if available < csrc_end {
            return Err(RtpError::Truncated {
                needed: csrc_end,
                available,
            });
        }
        if fixed[0] & 0x10 == 0 {
            return Ok(Self {
                header_len: csrc_end,
                extension: None,
            });
        }
        let (Some(profile), Some(words)) =
            (read_u16(bytes, csrc_end), read_u16(bytes, csrc_end + 2))
        else {
            return Err(RtpError::Truncated {
                needed: csrc_end + 4,
                available,
            });
        };
        let data_start = csrc_end + 4;
        let header_len = data_start + 4 * usize::from(words);
        if available < header_len {
            return Err(RtpError::Truncated {
                needed: header_len,
                available,
            });
        }
        Ok(Self {
            header_len,
            extension: Some(ExtensionBlock {
                profile,
                data_start,
            }),
        })
    }
}

/// Length of the RTP header (fixed header, CSRCs and extension block) at the start of
/// `datagram`: where the payload begins.
///
/// This is what SRTP needs: it encrypts the payload only and authenticates the header, and
/// it must find the header's end before decryption, when padding (encrypted, at the end of
/// an SRTP packet followed by the auth tag) cannot be checked. So unlike
/// [`RtpPacket::parse`] this looks at neither padding nor extension elements.
#[inline]
pub fn header_len(datagram: &[u8]) -> Result<usize, RtpError> {
    HeaderLayout::parse(datagram).map(|layout| layout.header_len)
}

/// Position of one header-extension element, relative to the start of the extension data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    id: u8,
    header_at: usize,
    value_at: usize,
    value_len: usize,
}

impl Element {
    #[inline]
    fn value_end(&self) -> usize {
        self.value_at + self.value_len
    }
}

/// Walks the elements of an RFC 8285 extension block, skipping padding. Stops at the end,
/// at the one-byte form's terminating ids, or at an element that overruns the block, which
/// it remembers in `overrun`.
#[derive(Debug, Clone)]
struct ElementCursor<'a> {
    data: &'a [u8],
    form: ExtensionForm,
    at: usize,
    overrun: Option<usize>,
}

impl<'a> ElementCursor<'a> {
    #[inline]
    fn new(data: &'a [u8], form: ExtensionForm, at: usize) -> Self {
        Self {
            data,
            form,
            at,
            overrun: None,
        }
    }

    #[inline]
    fn stop(&mut self) {
        self.at = self.data.len();
    }
}

impl Iterator for ElementCursor<'_> {
    type Item = Element;

    #[inline]
    fn next(&mut self) -> Option<Element> {
        loop {
            let header = *self.data.get(self.at)?;
            if header == 0 {
                self.at += 1;
                continue;
            }
            let (id, value_at, value_len) = match self.form {
                ExtensionForm::OneByte => {
                    let id = header >> 4;
                    if id == ONE_BYTE_RESERVED_ID || id == 0 {
                        self.stop();
                        return None;
                    }
                    (id, self.at + 1, usize::from(header & 0x0F) + 1)
                }
                ExtensionForm::TwoByte => match self.data.get(self.at + 1) {
                    Some(&len) => (header, self.at + 2, usize::from(len)),
                    None => {
                        self.overrun = Some(self.at);
                        self.stop();
                        return None;
                    }
                },
            };
            let element = Element {
                id,
                header_at: self.at,
                value_at,
                value_len,
            };
            if element.value_end() > self.data.len() {
                self.overrun = Some(self.at);
                self.stop();
                return None;
            }
            self.at = element.value_end();
            return Some(element);
        }
    }
}

/// Iterator over the `(id, value)` pairs of a packet's RFC 8285 header extensions, in packet
/// order, padding skipped. Empty when the packet has no extension block or an RFC 3550
/// block of another profile.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    cursor: ElementCursor<'a>,
}

impl<'a> Extensions<'a> {
    /// The elements of an extension block read on its own: its "defined by profile" value
    /// and its data (after the 4-byte block header). For headers whose payload cannot be
    /// validated, e.g. SRTP, where the padding count sits in the encrypted part. Empty for
    /// a profile that is not RFC 8285; elements past the end of `data` are not returned.
    pub fn from_block(profile: u16, data: &'a [u8]) -> Self {
        let form = ExtensionForm::from_profile(profile);
        let data = if form.is_some() { data } else { &[] };
        Self {
            cursor: ElementCursor::new(data, form.unwrap_or(ExtensionForm::OneByte), 0),
        }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u8, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let element = self.cursor.next()?;
        let value = self
            .cursor
            .data
            .get(element.value_at..element.value_end())?;
        Some((element.id, value))
    }
}

/// A validated view of one RTP packet over a borrowed or owned buffer `B`.
///
/// With `B = &[u8]` it reads; with `B = &mut [u8]` (or any `AsMut<[u8]>`, e.g. a pooled
/// buffer) it also rewrites the header in place. The view stores offsets only, so it is as
/// cheap to build as the validation it performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<B> {
    buf: B,
    header_len: usize,
    payload_end: usize,
    extension: Option<ExtensionBlock>,
}

impl<B: AsRef<[u8]>> RtpPacket<B> {
    /// Validates `buf` as an RTP packet: version 2, CSRC list, extension block and its
    /// elements, and padding all within the buffer.
    #[inline]
    pub fn parse(buf: B) -> Result<Self, RtpError> {
        let bytes = buf.as_ref();
        let layout = HeaderLayout::parse(bytes)?;
        let available = bytes.len().saturating_sub(layout.header_len);
        let has_padding = bytes.first().is_some_and(|b0| b0 & 0x20 != 0);
        let payload_end = if has_padding {
            let padding_len = bytes.last().copied().unwrap_or(0);
            if padding_len == 0 || usize::from(padding_len) > available {
                return Err(RtpError::BadPadding {
                    padding_len,
                    available,
                });
            }
            bytes.len().saturating_sub(usize::from(padding_len))
        } else {
            bytes.len()
        };
        if let Some(block) = layout.extension {
            if let (Some(form), Some(data)) = (
                ExtensionForm::from_profile(block.profile),
                bytes.get(block.data_start..layout.header_len),
            ) {
                let mut cursor = ElementCursor::new(data, form, 0);
                cursor.by_ref().for_each(drop);
                if let Some(offset) = cursor.overrun {
                    return Err(RtpError::ExtensionOverrun { offset });
                }
            }
        }
        Ok(Self {
            buf,
            header_len: layout.header_len,
            payload_end,
            extension: layout.extension,
        })
    }

    #[inline]
    fn fixed(&self) -> &[u8; FIXED_HEADER_LEN] {
        // Parse checked the length; the fallback only guards against an `AsRef` that
        // changes its answer, and never fires for slices, vectors or `Bytes`.
        self.buf
            .as_ref()
            .first_chunk()
            .unwrap_or(&[0; FIXED_HEADER_LEN])
    }

    /// The whole packet.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// Length of the whole packet, padding included.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.as_ref().len()
    }

    /// Always false: a parsed packet holds at least the fixed header.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.as_ref().is_empty()
    }

    /// The version field; always 2 after a successful parse.
    #[inline]
    pub fn version(&self) -> u8 {
        self.fixed()[0] >> 6
    }

    /// The P bit: the packet ends with padding.
    #[inline]
    pub fn has_padding(&self) -> bool {
        self.fixed()[0] & 0x20 != 0
    }

    /// The X bit: a header-extension block follows the CSRCs.
    #[inline]
    pub fn has_extension(&self) -> bool {
        self.extension.is_some()
    }

    /// Number of CSRC identifiers (CC field).
    #[inline]
    pub fn csrc_count(&self) -> u8 {
        self.fixed()[0] & 0x0F
    }

    /// The M bit (end of frame for video, start of talkspurt for audio).
    #[inline]
    pub fn marker(&self) -> bool {
        self.fixed()[1] & 0x80 != 0
    }

    /// The 7-bit payload type.
    #[inline]
    pub fn payload_type(&self) -> u8 {
        self.fixed()[1] & 0x7F
    }

    /// The 16-bit sequence number.
    #[inline]
    pub fn sequence_number(&self) -> u16 {
        let f = self.fixed();
        u16::from_be_bytes([f[2], f[3]])
    }

    /// The 32-bit media timestamp.
    #[inline]
    pub fn timestamp(&self) -> u32 {
        let f = self.fixed();
        u32::from_be_bytes([f[4], f[5], f[6], f[7]])
    }

    /// The synchronisation source.
    #[inline]
    pub fn ssrc(&self) -> u32 {
        let f = self.fixed();
        u32::from_be_bytes([f[8], f[9], f[10], f[11]])
    }

    /// The contributing sources, in packet order.
    #[inline]
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        let end = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        self.buf
            .as_ref()
            .get(FIXED_HEADER_LEN..end)
            .unwrap_or(&[])
            .chunks_exact(4)
            .map(|c| c.first_chunk::<4>().map_or(0, |b| u32::from_be_bytes(*b)))
    }

    /// The "defined by profile" field of the extension block, if there is one.
    #[inline]
    pub fn extension_profile(&self) -> Option<u16> {
        self.extension.map(|block| block.profile)
    }

    /// The RFC 8285 form of the extension block; `None` without a block or for another
    /// profile.
    #[inline]
    pub fn extension_form(&self) -> Option<ExtensionForm> {
        self.extension
            .and_then(|block| ExtensionForm::from_profile(block.profile))
    }

    /// The raw bytes of the extension block after its 4-byte header (empty without one).
    #[inline]
    pub fn extension_data(&self) -> &[u8] {
        match self.extension {
            Some(block) => self
                .buf
                .as_ref()
                .get(block.data_start..self.header_len)
                .unwrap_or(&[]),
            None => &[],
        }
    }

    /// The RFC 8285 header-extension elements as `(id, value)` pairs.
    #[inline]
    pub fn extensions(&self) -> Extensions<'_> {
        match self.extension_profile() {
            Some(profile) => Extensions::from_block(profile, self.extension_data()),
            None => Extensions::from_block(0, &[]),
        }
    }

    /// The value of the first header-extension element with `id`.
    #[inline]
    pub fn extension(&self, id: u8) -> Option<&[u8]> {
        self.extensions()
            .find_map(|(found, value)| (found == id).then_some(value))
    }

    /// Length of the header: fixed part, CSRCs and extension block. The payload starts here.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The payload, without header and padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buf
            .as_ref()
            .get(self.header_len..self.payload_end)
            .unwrap_or(&[])
    }

    /// Number of padding bytes at the end of the packet (0 without the P bit).
    #[inline]
    pub fn padding_len(&self) -> usize {
        self.len().saturating_sub(self.payload_end)
    }

    /// The element with `id`, with absolute offsets into the packet.
    fn find_element(&self, id: u8) -> Option<(ExtensionForm, Element)> {
        let form = self.extension_form()?;
        let block = self.extension?;
        let mut cursor = ElementCursor::new(self.extension_data(), form, 0);
        let element = cursor.find(|element| element.id == id)?;
        Some((form, block.absolute(element)))
    }
}

impl ExtensionBlock {
    /// Moves an element's offsets from block-relative to packet-relative.
    #[inline]
    fn absolute(self, element: Element) -> Element {
        Element {
            header_at: self.data_start + element.header_at,
            value_at: self.data_start + element.value_at,
            ..element
        }
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RtpPacket<B> {
    /// The whole packet, mutably. Changing the header through this can invalidate the view's
    /// offsets (never memory safety: all accesses stay bounds checked).
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    /// The payload, mutably (e.g. to rewrite a VP8 picture id).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len..self.payload_end;
        self.buf.as_mut().get_mut(range).unwrap_or(&mut [])
    }

    /// Rewrites the marker bit.
    #[inline]
    pub fn set_marker(&mut self, marker: bool) {
        if let Some(b1) = self.buf.as_mut().get_mut(1) {
            *b1 = (*b1 & 0x7F) | (u8::from(marker) << 7);
        }
    }

    /// Rewrites the payload type. Only the low 7 bits of `payload_type` are used: the
    /// eighth bit of that byte is the marker, which this leaves alone.
    #[inline]
    pub fn set_payload_type(&mut self, payload_type: u8) {
        if let Some(b1) = self.buf.as_mut().get_mut(1) {
            *b1 = (*b1 & 0x80) | (payload_type & 0x7F);
        }
    }

    /// Rewrites the sequence number.
    #[inline]
    pub fn set_sequence_number(&mut self, sequence_number: u16) {
        write_be(self.buf.as_mut(), 2, sequence_number.to_be_bytes());
    }

    /// Rewrites the timestamp.
    #[inline]
    pub fn set_timestamp(&mut self, timestamp: u32) {
        write_be(self.buf.as_mut(), 4, timestamp.to_be_bytes());
    }

    /// Rewrites the SSRC.
    #[inline]
    pub fn set_ssrc(&mut self, ssrc: u32) {
        write_be(self.buf.as_mut(), 8, ssrc.to_be_bytes());
    }

    /// The value of the first header-extension element with `id`, mutably.
    #[inline]
    pub fn extension_mut(&mut self, id: u8) -> Option<&mut [u8]> {
        let (_, element) = self.find_element(id)?;
        self.buf
            .as_mut()
            .get_mut(element.value_at..element.value_end())
    }

    /// Overwrites the value of the element with `id`; `value` must have the same length as
    /// the value in the packet, since the packet's length never changes.
    pub fn set_extension_value(&mut self, id: u8, value: &[u8]) -> Result<(), RtpError> {
        let dst = self
            .extension_mut(id)
            .ok_or(RtpError::ExtensionNotFound(id))?;
        if dst.len() != value.len() {
            return Err(RtpError::ExtensionLengthMismatch {
                id,
                expected: dst.len(),
                actual: value.len(),
            });
        }
        dst.copy_from_slice(value);
        Ok(())
    }

    /// Renames the element with id `old` to `new` (1..=14 in the one-byte form, 1..=255 in
    /// the two-byte form), e.g. from the sender's negotiated id to the receiver's.
    pub fn set_extension_id(&mut self, old: u8, new: u8) -> Result<(), RtpError> {
        let (form, element) = self
            .find_element(old)
            .ok_or(RtpError::ExtensionNotFound(old))?;
        if !form.is_valid_id(new) {
            return Err(RtpError::InvalidExtensionId { id: new, form });
        }
        write_element_id(self.buf.as_mut(), form, element.header_at, new);
        Ok(())
    }

    /// Turns the element with `id` into padding: its header and value bytes become zeros,
    /// which RFC 8285 (§4.1.1) and libwebrtc read as padding between elements, so the
    /// packet keeps its length and stays valid.
    pub fn remove_extension(&mut self, id: u8) -> Result<(), RtpError> {
        let (_, element) = self
            .find_element(id)
            .ok_or(RtpError::ExtensionNotFound(id))?;
        if let Some(bytes) = self
            .buf
            .as_mut()
            .get_mut(element.header_at..element.value_end())
        {
            bytes.fill(0);
        }
        Ok(())
    }

    /// Rewrites every element's id through `map` in one pass over the block: `Some(new)`
    /// renames the element, `None` removes it as [`remove_extension`](Self::remove_extension)
    /// does (zero bytes, read as padding), which is how an SFU drops extensions a receiver
    /// did not negotiate without moving the payload.
    ///
    /// All new ids are checked against the block's form before anything is written, so on
    /// error the packet is unchanged. `map` is called twice per element (check, then write)
    /// and should be a pure lookup, such as [`ExtensionMap::translate`].
    ///
    /// An element cannot move between forms in place: a receiver needing ids above 14 gets
    /// them only if the sender already used the two-byte form.
    ///
    /// [`ExtensionMap::translate`]: crate::extensions::ExtensionMap::translate
    pub fn remap_extension_ids<F>(&mut self, map: F) -> Result<(), RtpError>
    where
        F: Fn(u8) -> Option<u8>,
    {
        let (Some(form), Some(block)) = (self.extension_form(), self.extension) else {
            return Ok(());
        };
        let data_range = block.data_start..self.header_len;
        for element in ElementCursor::new(self.extension_data(), form, 0) {
            if let Some(new) = map(element.id) {
                if !form.is_valid_id(new) {
                    return Err(RtpError::InvalidExtensionId { id: new, form });
                }
            }
        }
        let Some(data) = self.buf.as_mut().get_mut(data_range) else {
            return Ok(());
        };
        let mut at = 0;
        // The cursor borrows the block immutably, so walk one element at a time and rewrite
        // between steps. Removed elements become zeros, which the walk then skips.
        loop {
            let mut cursor = ElementCursor::new(data, form, at);
            let Some(element) = cursor.next() else {
                break;
            };
            at = cursor.at;
            match map(element.id) {
                Some(new) => write_element_id(data, form, element.header_at, new),
                None => {
                    if let Some(bytes) = data.get_mut(element.header_at..element.value_end()) {
                        bytes.fill(0);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Writes `id` into the element header at `header_at`, keeping a one-byte form's length.
#[inline]
fn write_element_id(bytes: &mut [u8], form: ExtensionForm, header_at: usize, id: u8) {
    if let Some(header) = bytes.get_mut(header_at) {
        *header = match form {
            ExtensionForm::OneByte => (id << 4) | (*header & 0x0F),
            ExtensionForm::TwoByte => id,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8285 §4.2 style one-byte block: id 1 (1 byte), padding, id 2 (2 bytes), id 15.
    fn one_byte_packet() -> Vec<u8> {
        let mut p = vec![
            0x90, 0x60, 0x12, 0x34, 0, 0, 0x10, 0, 0xDE, 0xAD, 0xBE, 0xEF, // fixed
            0xBE, 0xDE, 0x00, 0x02, // profile, 2 words
            0x10, 0xAA, 0x00, 0x21, 0xBB, 0xCC, 0xF0, 0x00, // elements
        ];
        p.extend_from_slice(b"payload");
        p
    }

    #[test]
    fn parses_one_byte_extensions() {
        let bytes = one_byte_packet();
        let p = RtpPacket::parse(&bytes[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.payload(), b"payload");
        let ext: Vec<_> = p.extensions().collect();
        assert_eq!(ext, vec![(1, &[0xAA][..]), (2, &[0xBB, 0xCC][..])]);
        assert_eq!(p.extension(2), Some(&[0xBB, 0xCC][..]));
        assert_eq!(p.extension(3), None);
    }

    #[test]
    fn overrun_is_an_error() {
        let mut bytes = one_byte_packet();
        bytes[22] = 0x35; // id 3, 6 bytes, past the block
        assert_eq!(
            RtpPacket::parse(&bytes[..]),
            Err(RtpError::ExtensionOverrun { offset: 6 })
        );
    }

    #[test]
    fn remap_checks_before_writing() {
        let mut bytes = one_byte_packet();
        let mut p = RtpPacket::parse(&mut bytes[..]).unwrap();
        let before = p.as_bytes().to_vec();
        assert_eq!(
            p.remap_extension_ids(|id| Some(id + 14)),
            Err(RtpError::InvalidExtensionId {
                id: 15,
                form: ExtensionForm::OneByte
            })
        );
        assert_eq!(p.as_bytes(), &before[..]);
        p.remap_extension_ids(|id| (id == 2).then_some(7)).unwrap();
        let p = RtpPacket::parse(p.as_bytes()).unwrap();
        let ext: Vec<_> = p.extensions().collect();
        assert_eq!(ext, vec![(7, &[0xBB, 0xCC][..])]);
    }

    #[test]
    fn zero_padding_count_is_rejected() {
        let mut bytes = one_byte_packet();
        bytes[0] |= 0x20;
        *bytes.last_mut().unwrap() = 0;
        assert!(matches!(
            RtpPacket::parse(&bytes[..]),
            Err(RtpError::BadPadding { padding_len: 0, .. })
        ));
    }
}
