//! From capture-file bytes to UDP datagrams: the pcap/pcapng container (through `pcap-file`),
//! the link layer, IPv4/IPv6 and UDP.
//!
//! Everything a file says is checked before use, since captures come from anywhere: a frame
//! too short for its headers, a fragment, a non-UDP packet or an unknown link type is
//! skipped (and counted), never indexed past its end. Only the container itself can fail the
//! read, because a broken container leaves no trustworthy frame boundary to resume at.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{DataLink, PcapError, TsResolution};

use super::ReplayError;

/// pcap magic numbers (microsecond and nanosecond, either byte order).
const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x4d, 0x3c, 0xb2, 0xa1],
];
/// pcapng files start with a section header block of this type (a palindrome).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// pcapng's default timestamp resolution when an interface has no `if_tsresol`: 10⁻⁶ s.
const DEFAULT_TSRESOL: u8 = 6;
/// At most this many IPv6 extension headers are walked before giving up on a packet.
const MAX_IPV6_EXTENSION_HEADERS: usize = 8;
/// At most this many stacked VLAN tags are walked.
const MAX_VLAN_TAGS: usize = 2;
/// IP protocol number of UDP.
const IPPROTO_UDP: u8 = 17;

/// One UDP datagram of the capture.
#[derive(Debug, Clone, Copy)]
pub(super) struct Datagram<'a> {
    /// Capture time, on the file's clock.
    pub time: Duration,
    pub source: IpAddr,
    pub source_port: u16,
    pub destination: IpAddr,
    pub destination_port: u16,
    /// The UDP payload's length on the wire, from the UDP header: right even when the
    /// capture kept only the first bytes of each frame (a snap length).
    pub length: usize,
    /// The captured part of the UDP payload (all of it unless truncated by the snap length).
    pub payload: &'a [u8],
}

/// What was not turned into datagrams, for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Frames (packets) in the file.
    pub frames: u64,
    /// Frames that are UDP datagrams (the rest: other protocols, fragments, unreadable).
    pub udp: u64,
    /// Frames of a link type this reader does not decode.
    pub unsupported_link: u64,
    /// Frames without a timestamp (pcapng simple packet blocks).
    pub untimed: u64,
}

/// Calls `each` with every UDP datagram of a pcap or pcapng file, in file order.
pub(super) fn for_each_datagram<'a>(
    bytes: &'a [u8],
    mut each: impl FnMut(Datagram<'a>),
) -> Result<FrameCounts, ReplayError> {
    let mut counts = FrameCounts::default();
    let magic = bytes.first_chunk::<4>().ok_or(ReplayError::UnknownFormat)?;
    if PCAP_MAGICS.contains(magic) {
        read_pcap(bytes, &mut counts, &mut each)?;
    } else if *magic == PCAPNG_MAGIC {
        read_pcapng(bytes, &mut counts, &mut each)?;
    } else {
        return Err(ReplayError::UnknownFormat);
    }
    Ok(counts)
}

fn container_error(error: PcapError, frames: u64) -> ReplayError {
    match error {
        PcapError::IncompleteBuffer => ReplayError::Truncated { frames },
        other => ReplayError::Malformed {
            frames,
            reason: other.to_string(),
        },
    }
}

fn read_pcap<'a>(
    bytes: &'a [u8],
    counts: &mut FrameCounts,
    each: &mut impl FnMut(Datagram<'a>),
) -> Result<(), ReplayError> {
    let (mut rest, parser) = PcapParser::new(bytes).map_err(|e| container_error(e, 0))?;
    let header = parser.header();
    while !rest.is_empty() {
        // The raw record: `next_packet` would refuse records whose original length exceeds
        // the snap length, which is what every truncated capture has.
        let (tail, raw) = parser
            .next_raw_packet(rest)
            .map_err(|e| container_error(e, counts.frames))?;
        rest = tail;
        counts.frames += 1;
        let nanos = match header.ts_resolution {
            TsResolution::MicroSecond => u64::from(raw.ts_frac).saturating_mul(1_000),
            TsResolution::NanoSecond => u64::from(raw.ts_frac),
        };
        let time = Duration::from_secs(u64::from(raw.ts_sec)) + Duration::from_nanos(nanos);
        frame(header.datalink, time, borrowed(raw.data), counts, each);
    }
    Ok(())
}

fn read_pcapng<'a>(
    bytes: &'a [u8],
    counts: &mut FrameCounts,
    each: &mut impl FnMut(Datagram<'a>),
) -> Result<(), ReplayError> {
    let (mut rest, mut parser) = PcapNgParser::new(bytes).map_err(|e| container_error(e, 0))?;
    while !rest.is_empty() {
        let (tail, block) = parser
            .next_block(rest)
            .map_err(|e| container_error(e, counts.frames))?;
        rest = tail;
        let (interface_id, ticks, data) = match block {
            Block::EnhancedPacket(packet) => (
                packet.interface_id,
                // pcap-file stores the raw tick count as nanoseconds whatever the interface's
                // resolution; the resolution is applied below.
                u64::try_from(packet.timestamp.as_nanos()).unwrap_or(u64::MAX),
                borrowed(packet.data),
            ),
            Block::Packet(packet) => (
                u32::from(packet.interface_id),
                packet.timestamp,
                borrowed(packet.data),
            ),
            Block::SimplePacket(_) => {
                counts.frames += 1;
                counts.untimed += 1;
                continue;
            }
            _ => continue,
        };
        counts.frames += 1;
        let interface = usize::try_from(interface_id)
            .ok()
            .and_then(|id| parser.interfaces().get(id));
        let Some(interface) = interface else {
            return Err(ReplayError::Malformed {
                frames: counts.frames,
                reason: format!("packet of undeclared interface {interface_id}"),
            });
        };
        let tsresol = interface
            .options
            .iter()
            .find_map(|option| match option {
                InterfaceDescriptionOption::IfTsResol(resolution) => Some(*resolution),
                _ => None,
            })
            .unwrap_or(DEFAULT_TSRESOL);
        let time = ticks_to_duration(ticks, tsresol);
        frame(interface.linktype, time, data, counts, each);
    }
    Ok(())
}

/// The frame bytes, which the parsers borrow from the file (an owned copy, which they never
/// make, would be skipped as empty).
fn borrowed(data: Cow<'_, [u8]>) -> &[u8] {
    match data {
        Cow::Borrowed(bytes) => bytes,
        Cow::Owned(_) => &[],
    }
}

/// pcapng `if_tsresol`: a power of ten (top bit clear) or of two (top bit set) of a second.
fn ticks_to_duration(ticks: u64, tsresol: u8) -> Duration {
    let exponent = u32::from(tsresol & 0x7F);
    let ticks = u128::from(ticks);
    let nanos = if tsresol & 0x80 == 0 {
        match exponent.checked_sub(9) {
            None => 10u128
                .checked_pow(9 - exponent)
                .map_or(u128::MAX, |scale| ticks.saturating_mul(scale)),
            Some(excess) => 10u128.checked_pow(excess).map_or(0, |scale| ticks / scale),
        }
    } else {
        let scaled = ticks.saturating_mul(1_000_000_000);
        1u128
            .checked_shl(exponent)
            .map_or(0, |scale| scaled / scale)
    };
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Decodes one link-layer frame and hands a UDP datagram in it to `each`.
fn frame<'a>(
    link: DataLink,
    time: Duration,
    data: &'a [u8],
    counts: &mut FrameCounts,
    each: &mut impl FnMut(Datagram<'a>),
) {
    let ip = match link {
        DataLink::ETHERNET => ethernet(data),
        DataLink::LINUX_SLL => data.get(16..),
        DataLink::LINUX_SLL2 => data.get(20..),
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Some(data),
        // BSD loopback: a 4-byte address family (host or network order, and its values
        // differ between systems), so the IP version nibble decides instead.
        DataLink::NULL | DataLink::LOOP => data.get(4..),
        _ => {
            counts.unsupported_link += 1;
            return;
        }
    };
    let Some(datagram) = ip.and_then(|ip| udp_in_ip(time, ip)) else {
        return;
    };
    counts.udp += 1;
    each(datagram);
}

/// The network-layer bytes of an Ethernet frame carrying IPv4 or IPv6 (after VLAN tags).
fn ethernet(data: &[u8]) -> Option<&[u8]> {
    let mut ethertype = u16::from_be_bytes(*data.get(12..)?.first_chunk::<2>()?);
    let mut at = 14;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != 0x8100 && ethertype != 0x88A8 {
            break;
        }
        ethertype = u16::from_be_bytes(*data.get(at + 2..)?.first_chunk::<2>()?);
        at += 4;
    }
    match ethertype {
        0x0800 | 0x86DD => data.get(at..),
        _ => None,
    }
}

/// The UDP datagram in an IPv4 or IPv6 packet, if it is one and is not a fragment.
fn udp_in_ip(time: Duration, ip: &[u8]) -> Option<Datagram<'_>> {
    let (source, destination, udp) = match ip.first()? >> 4 {
        4 => ipv4(ip)?,
        6 => ipv6(ip)?,
        _ => return None,
    };
    let header = udp.first_chunk::<8>()?;
    let [s0, s1, d0, d1, l0, l1, _, _] = *header;
    let length = usize::from(u16::from_be_bytes([l0, l1])).checked_sub(8)?;
    let captured = udp.get(8..)?;
    Some(Datagram {
        time,
        source,
        source_port: u16::from_be_bytes([s0, s1]),
        destination,
        destination_port: u16::from_be_bytes([d0, d1]),
        length,
        payload: captured.get(..length).unwrap_or(captured),
    })
}

fn ipv4(ip: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    let header = ip.first_chunk::<20>()?;
    let header_len = usize::from(header.first()? & 0x0F) * 4;
    let flags_fragment = u16::from_be_bytes(*header.get(6..)?.first_chunk::<2>()?);
    // More-fragments set or a non-zero offset: only a reassembled datagram has a UDP header
    // worth reading, and media never needs fragmenting.
    if header_len < 20 || flags_fragment & 0x3FFF != 0 || *header.get(9)? != IPPROTO_UDP {
        return None;
    }
    let source = Ipv4Addr::from(*header.get(12..)?.first_chunk::<4>()?);
    let destination = Ipv4Addr::from(*header.get(16..)?.first_chunk::<4>()?);
    Some((source.into(), destination.into(), ip.get(header_len..)?))
}

fn ipv6(ip: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    let header = ip.first_chunk::<40>()?;
    let source = Ipv6Addr::from(*header.get(8..)?.first_chunk::<16>()?);
    let destination = Ipv6Addr::from(*header.get(24..)?.first_chunk::<16>()?);
    let mut next = *header.get(6)?;
    let mut at = 40;
    for _ in 0..MAX_IPV6_EXTENSION_HEADERS {
        match next {
            IPPROTO_UDP => return Some((source.into(), destination.into(), ip.get(at..)?)),
            // Hop-by-hop, routing, destination options: skip by their length field.
            0 | 43 | 60 => {
                let [following, length] = *ip.get(at..)?.first_chunk::<2>()?;
                next = following;
                at += (usize::from(length) + 1) * 8;
            }
            // A fragment (44) or anything else.
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn tsresol_scales() {
        assert_eq!(ticks_to_duration(1_500_000, 6), Duration::from_millis(1500));
        assert_eq!(
            ticks_to_duration(1_500_000_000, 9),
            Duration::from_millis(1500)
        );
        assert_eq!(ticks_to_duration(15, 1), Duration::from_millis(1500));
        assert_eq!(
            ticks_to_duration(1_500_000_000_000, 12),
            Duration::from_millis(1500)
        );
        assert_eq!(
            ticks_to_duration(3 << 9, 0x80 | 10),
            Duration::from_millis(1500)
        );
        // Absurd resolutions saturate instead of overflowing.
        let _ = ticks_to_duration(u64::MAX, 0x7F);
        let _ = ticks_to_duration(u64::MAX, 0xFF);
        let _ = ticks_to_duration(u64::MAX, 0);
    }

    #[test]
    fn ipv4_udp_in_ethernet() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[
            0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2,
        ]);
        frame.extend_from_slice(&[0x30, 0x39, 0x27, 0x10, 0, 20, 0, 0]);
        frame.extend_from_slice(&[0xAA; 12]);
        let ip = ethernet(&frame).unwrap();
        let datagram = udp_in_ip(Duration::ZERO, ip).unwrap();
        assert_eq!(datagram.source_port, 12345);
        assert_eq!(datagram.destination_port, 10000);
        assert_eq!(datagram.length, 12);
        assert_eq!(datagram.payload, &[0xAA; 12]);
        // Truncated: the UDP length still tells the datagram's size.
        let datagram = udp_in_ip(Duration::ZERO, &ip[..32]).unwrap();
        assert_eq!(datagram.length, 12);
        assert_eq!(datagram.payload.len(), 4);
    }
}
