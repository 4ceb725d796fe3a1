//! Zero-copy, non-allocating views over the datagrams that arrive on relais's one UDP port.
//!
//! Everything here works on borrowed bytes: parsing never allocates and never panics, and
//! rewriting (SSRC, sequence number, timestamp, header-extension ids and values) happens in
//! place in the caller's buffer, so the forwarding hot path copies a packet once per receiver
//! and no more.
//!
//! - [`demux`]: which protocol a datagram belongs to (RFC 7983).
//! - [`rtp`]: the RTP header view and RFC 8285 header extensions.
//! - [`extensions`]: the header extensions an SFU reads and rewrites.
//! - [`codec`]: payload descriptors of VP8, VP9, H264 and Opus.
//! - [`rtcp`]: compound RTCP iteration and typed feedback through the `rtcp` crate.
//! - [`stun`]: STUN binding requests and responses for ICE.

pub mod codec;
pub mod demux;
pub mod extensions;
pub mod rtcp;
pub mod rtp;
pub mod stun;
