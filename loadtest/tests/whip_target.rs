//! The WHIP/WHEP adapter's signalling against a real relais node that requires a bearer
//! token: refused without it, then a publish and a watch answered with `201`, a `Location`,
//! the node's transport and the SSRCs it sends, and the sessions deleted again.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: a panic is a test failure"
)]

use relais_loadtest::media::VideoCodec;
use relais_loadtest::participant::{Candidate, LocalTransport};
use relais_loadtest::run::node::LocalNode;
use relais_loadtest::target::sdp::MediaKind;
use relais_loadtest::target::whip::{WhipConfig, WhipTarget};
use relais_loadtest::target::{JoinRequest, TargetError, VideoSource};
use relais_srtp::DtlsRole;
use relais_transport::dtls_srtp::NodeCertificate;
use relais_transport::ice::IceCredentials;

mod common;

const TOKEN: &str = "whip-test-token-0123456789";

fn local(ufrag: &str) -> LocalTransport {
    LocalTransport {
        credentials: IceCredentials::new(ufrag, "0123456789012345678901").unwrap(),
        fingerprint: NodeCertificate::generate().unwrap().fingerprint().clone(),
        candidates: vec![Candidate {
            address: "127.0.0.1:40000".parse().unwrap(),
            priority: 2_130_706_431,
        }],
    }
}

fn publisher(endpoint_id: &str) -> JoinRequest {
    JoinRequest {
        endpoint_id: endpoint_id.to_owned(),
        transport: local("pub1"),
        audio_ssrc: Some(11),
        video: Some(VideoSource {
            ssrcs: vec![21, 22, 23],
            rtx_ssrcs: vec![31, 32, 33],
            codec: VideoCodec::Vp8,
        }),
    }
}

fn refused_status(error: &TargetError) -> u16 {
    match error {
        TargetError::Refused { status, .. } => *status,
        other => panic!("not a refusal: {other:?}"),
    }
}

#[test]
fn publish_and_watch_with_a_bearer_token_then_delete() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log_dir = std::env::temp_dir();
        let node = LocalNode::start(
            &common::relais_binary(),
            &log_dir,
            &["--http-whip-bearer-token".to_owned(), TOKEN.to_owned()],
        )
        .await
        .unwrap();
        let mut config = WhipConfig::from_url(&format!("http://{}", node.public)).unwrap();
        config.rids = ["q", "h", "f"].map(String::from).to_vec();

        // Without the token, or with another one: 401, and nothing is remembered.
        let anonymous = WhipTarget::new(config.clone());
        let error = anonymous.publish(&publisher("aaaa0001")).await.unwrap_err();
        assert_eq!(refused_status(&error), 401, "{error}");
        config.token = Some("wrong".to_owned());
        let wrong = WhipTarget::new(config.clone());
        let error = wrong.publish(&publisher("aaaa0001")).await.unwrap_err();
        assert_eq!(refused_status(&error), 401);
        assert!(!error.to_string().contains("wrong"), "{error}");

        config.token = Some(TOKEN.to_owned());
        let target = WhipTarget::new(config);
        let published = target.publish(&publisher("aaaa0001")).await.unwrap();
        assert!(
            published.location.starts_with("/whip/aaaa0001/"),
            "{}",
            published.location
        );
        // ICE lite on the node's media port; the node is the DTLS server.
        assert_eq!(published.remote.candidates[0].address, node.media);
        assert_eq!(published.remote.dtls_role, DtlsRole::Client);
        // Simulcast by rid accepted: the answer receives the three encodings.
        let video = published
            .answer
            .sections
            .iter()
            .find(|s| s.kind() == MediaKind::Video)
            .unwrap();
        assert_eq!(video.direction, "recvonly");

        let (watching, streams) = target
            .watch("bbbb0002", "aaaa0001", &local("view"))
            .await
            .unwrap();
        assert!(watching.location.starts_with("/whep/aaaa0001/"));
        assert_eq!(streams.len(), 2, "{streams:?}");
        assert_eq!(streams[0].kind, MediaKind::Audio);
        assert_eq!(streams[1].kind, MediaKind::Video);
        assert!(streams[1].rtx_ssrc.is_some());
        assert_ne!(streams[0].ssrc, streams[1].ssrc);

        // A stream name the node refuses: 400 naming the rule.
        let error = target
            .watch("bbbb0002", "not.a.name", &local("view"))
            .await
            .unwrap_err();
        assert_eq!(refused_status(&error), 400);
        assert!(error.to_string().contains("stream name"), "{error}");

        // The viewer leaves (its session is deleted); a second DELETE finds nothing.
        target.leave("bbbb0002").await.unwrap();
        let error = target
            .stop("bbbb0002", &watching.location)
            .await
            .unwrap_err();
        assert_eq!(refused_status(&error), 404);
        target.end().await.unwrap();
        let error = target
            .stop("aaaa0001", &published.location)
            .await
            .unwrap_err();
        assert_eq!(refused_status(&error), 404);
    });
}
