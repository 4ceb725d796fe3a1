//! The SDP of the Janus adapter: the publisher's offer with Janus's options (simulcast by
//! SSRC, the header extensions of [`HEADER_EXTENSIONS`]) and the answers to Janus's
//! subscriber offers. The reader and the offer writer are the shared [`crate::target::sdp`].

use std::fmt::Write as _;

pub use crate::target::sdp::{
    parse_candidate, Description, MediaKind, Section, AUDIO_MID, VIDEO_MID,
};
use crate::target::sdp::{session_header, write_transport, OfferOptions, Simulcast};

use super::HEADER_EXTENSIONS;
use crate::participant::LocalTransport;
use crate::target::{JoinRequest, TargetError};

/// The publisher's offer: the shared [`publisher_offer`](crate::target::sdp::publisher_offer)
/// with the camera's encodings as an `ssrc-group:SIM` (lowest first, Janus's substream 0..2)
/// and one `FID` group per encoding, and the header extensions of [`HEADER_EXTENSIONS`]
/// (audio level on audio only).
pub fn publisher_offer(request: &JoinRequest, session_id: u64) -> Result<String, TargetError> {
    let options = OfferOptions {
        extensions: &HEADER_EXTENSIONS,
        simulcast: Simulcast::Ssrc,
    };
    crate::target::sdp::publisher_offer(request, session_id, &options)
}

/// The receiving participant's answer to a subscriber offer from Janus: every audio/video
/// m-line Janus offers with a port is accepted receive-only (`inactive` stays `inactive`)
/// with the offered payload types and header extensions mirrored; other m-lines (data
/// channels) and removed ones (port 0) are rejected. The participant takes the DTLS client
/// side (`active`) against Janus's `actpass`.
pub fn subscriber_answer(
    offer: &Description,
    local: &LocalTransport,
    session_id: u64,
    version: u64,
) -> String {
    let accepted = |section: &Section| section.port != 0 && section.kind() != MediaKind::Other;
    let mids: Vec<&str> = offer
        .sections
        .iter()
        .filter(|s| accepted(s))
        .filter_map(|s| s.mid.as_deref())
        .collect();
    let setup = match offer.setup.as_deref() {
        Some("active") => "passive",
        _ => "active",
    };
    let mut sdp = String::with_capacity(1024 + 512 * offer.sections.len());
    session_header(&mut sdp, session_id, version, &mids);
    for section in &offer.sections {
        if !accepted(section) {
            let _ = write!(
                sdp,
                "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\n",
                section.media,
                section.proto,
                section.formats.join(" ")
            );
            if let Some(mid) = &section.mid {
                let _ = write!(sdp, "a=mid:{mid}\r\n");
            }
            sdp.push_str("a=inactive\r\n");
            continue;
        }
        let _ = write!(
            sdp,
            "m={} 9 {} {}\r\n",
            section.media,
            section.proto,
            section.formats.join(" ")
        );
        write_transport(&mut sdp, local, setup);
        if let Some(mid) = &section.mid {
            let _ = write!(sdp, "a=mid:{mid}\r\n");
        }
        for (id, uri) in &section.extmaps {
            let _ = write!(sdp, "a=extmap:{id} {uri}\r\n");
        }
        let direction = match section.direction.as_str() {
            "inactive" | "recvonly" => "inactive",
            _ => "recvonly",
        };
        let _ = write!(sdp, "a={direction}\r\na=rtcp-mux\r\n");
        for (_, line) in &section.payload_lines {
            sdp.push_str(line);
            sdp.push_str("\r\n");
        }
    }
    sdp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::super::AUDIO_LEVEL_ID;
    use super::*;
    use crate::media::VideoCodec;
    use crate::participant::Candidate;
    use crate::target::sdp::VP8_RTX_PT;
    use crate::target::VideoSource;
    use relais_rtp::extensions::AUDIO_LEVEL_URI;
    use relais_srtp::DtlsRole;
    use relais_transport::dtls_srtp::NodeCertificate;
    use relais_transport::ice::IceCredentials;

    fn local() -> LocalTransport {
        LocalTransport {
            credentials: IceCredentials::new("ufrag", "0123456789012345678901").unwrap(),
            fingerprint: NodeCertificate::generate().unwrap().fingerprint().clone(),
            candidates: vec![Candidate {
                address: "10.99.0.2:40000".parse().unwrap(),
                priority: 2_130_706_431,
            }],
        }
    }

    #[test]
    fn the_offer_signals_sim_and_fid_groups_lowest_first() {
        let request = JoinRequest {
            endpoint_id: "abcd0001".into(),
            transport: local(),
            audio_ssrc: Some(11),
            video: Some(VideoSource {
                ssrcs: vec![21, 22, 23],
                rtx_ssrcs: vec![31, 32, 33],
                codec: VideoCodec::Vp8,
            }),
        };
        let sdp = publisher_offer(&request, 7).unwrap();
        assert!(sdp.contains("a=group:BUNDLE 0 1\r\n"));
        assert!(sdp.contains("a=ssrc-group:SIM 21 22 23\r\n"));
        assert!(sdp.contains("a=ssrc-group:FID 23 33\r\n"));
        assert!(sdp.contains("a=candidate:1 1 udp 2130706431 10.99.0.2 40000 typ host"));
        let parsed = Description::parse(&sdp);
        assert_eq!(parsed.sections.len(), 2);
        assert_eq!(parsed.sections[0].ssrcs, vec![11]);
        assert_eq!(parsed.sections[1].ssrcs, vec![21, 22, 23, 31, 32, 33]);
        assert_eq!(parsed.sections[1].rtx_payload_type(), Some(VP8_RTX_PT));
        assert_eq!(
            parsed.sections[0].extmaps[0],
            (AUDIO_LEVEL_ID, AUDIO_LEVEL_URI.into())
        );
        assert_eq!(parsed.ufrag.as_deref(), Some("ufrag"));
        let nothing = JoinRequest {
            audio_ssrc: None,
            video: None,
            ..request
        };
        assert!(publisher_offer(&nothing, 7).is_err());
    }

    #[test]
    fn a_subscriber_offer_is_answered_receive_only() {
        let janus = NodeCertificate::generate().unwrap();
        let offer = format!(
            "v=0\r\no=- 1 1 IN IP4 10.99.0.1\r\ns=VideoRoom 1\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n\
             a=ice-lite\r\na=fingerprint:{}\r\na=ice-ufrag:JnUs\r\na=ice-pwd:0123456789abcdefghijkl\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 10.99.0.1\r\na=sendonly\r\na=mid:0\r\n\
             a=rtcp-mux\r\na=ice-options:trickle\r\na=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\n\
             a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=ssrc:555 cname:janus\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 100 101\r\nc=IN IP4 10.99.0.1\r\na=sendonly\r\na=mid:1\r\n\
             a=rtpmap:100 VP8/90000\r\na=rtcp-fb:100 nack\r\na=rtpmap:101 rtx/90000\r\n\
             a=fmtp:101 apt=100\r\na=ssrc-group:FID 666 667\r\na=ssrc:666 cname:janus\r\n\
             a=ssrc:667 cname:janus\r\n\
             m=video 0 UDP/TLS/RTP/SAVPF 100\r\nc=IN IP4 10.99.0.1\r\na=inactive\r\na=mid:2\r\n",
            janus.fingerprint()
        );
        let parsed = Description::parse(&offer);
        let video = &parsed.sections[1];
        assert_eq!(video.media_ssrc(), Some(666));
        assert_eq!(video.rtx_ssrc(), Some(667));
        assert_eq!(video.codec_payload_type(), Some(100));
        assert_eq!(video.rtx_payload_type(), Some(101));
        let answer = subscriber_answer(&parsed, &local(), 9, 3);
        assert!(answer.contains("a=group:BUNDLE 0 1\r\n"), "{answer}");
        assert!(answer.contains("a=setup:active\r\n"));
        assert!(answer.contains("m=video 0 UDP/TLS/RTP/SAVPF 100\r\n"));
        assert!(answer.contains("a=fmtp:101 apt=100\r\n"));
        assert_eq!(answer.matches("a=recvonly").count(), 2);
        let candidate = parse_candidate("candidate:1 1 udp 2015363327 10.99.0.1 20123 typ host");
        let remote = parsed.remote_transport(&[candidate.unwrap()]).unwrap();
        assert_eq!(remote.dtls_role, DtlsRole::Client);
        assert_eq!(remote.candidates[0].address.port(), 20123);
        assert_eq!(&remote.fingerprint, janus.fingerprint());
        assert!(Description::default().remote_transport(&[]).is_err());
        assert_eq!(
            parse_candidate("candidate:1 2 udp 1 10.99.0.1 1 typ host"),
            None
        );
    }
}
