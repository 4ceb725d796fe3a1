//! In-process DTLS-SRTP handshakes: two endpoints wired back to back through their
//! datagram channels, under tokio's paused clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use relais_srtp::{DtlsRole, SrtpConfig, SrtpKeys, SrtpProfile, SrtpReceiver, SrtpSender};
use relais_transport::dtls_srtp::{
    DtlsEvent, DtlsSrtpConfig, DtlsSrtpError, DtlsSrtpHandshake, DtlsSrtpOutcome, Fingerprint,
    FingerprintAlgorithm, FingerprintParseError, NodeCertificate, MAX_DATAGRAM_LEN,
};

type Outcome = Result<DtlsSrtpOutcome, DtlsSrtpError>;

fn config(profiles: &[SrtpProfile]) -> DtlsSrtpConfig {
    DtlsSrtpConfig {
        profiles: profiles.to_vec(),
        ..DtlsSrtpConfig::default()
    }
}

/// Moves datagrams between the two handles until both have a result. `garbage` is
/// injected into both sides before each forwarded datagram.
async fn pump(
    a: &mut DtlsSrtpHandshake,
    b: &mut DtlsSrtpHandshake,
    garbage: &[Vec<u8>],
) -> (Outcome, Outcome) {
    lossy_pump(a, b, garbage, |_, _| false).await
}

/// [`pump`] dropping the datagrams for which `lose(from_a, index_from_that_side)` is true.
async fn lossy_pump(
    a: &mut DtlsSrtpHandshake,
    b: &mut DtlsSrtpHandshake,
    garbage: &[Vec<u8>],
    mut lose: impl FnMut(bool, usize) -> bool,
) -> (Outcome, Outcome) {
    let (mut ra, mut rb) = (None, None);
    let mut sent = [0usize; 2];
    while ra.is_none() || rb.is_none() {
        let (from_a, ev) = tokio::select! {
            Some(ev) = a.next_event() => (true, ev),
            Some(ev) = b.next_event() => (false, ev),
            else => break,
        };
        let (src_result, dst) = if from_a {
            (&mut ra, &*b)
        } else {
            (&mut rb, &*a)
        };
        match ev {
            DtlsEvent::Transmit(d) => {
                let counter = &mut sent[usize::from(!from_a)];
                let index = *counter;
                *counter += 1;
                if lose(from_a, index) {
                    continue;
                }
                for g in garbage {
                    dst.handle_datagram(g);
                }
                dst.handle_datagram(&d);
            }
            DtlsEvent::Completed(r) => *src_result = Some(r),
        }
    }
    (
        ra.unwrap_or(Err(DtlsSrtpError::TaskEnded)),
        rb.unwrap_or(Err(DtlsSrtpError::TaskEnded)),
    )
}

struct Pair {
    client: DtlsSrtpHandshake,
    server: DtlsSrtpHandshake,
    client_cert: NodeCertificate,
    server_cert: NodeCertificate,
}

fn start_pair(
    client_cfg: DtlsSrtpConfig,
    server_cfg: DtlsSrtpConfig,
    client_expects: Option<Fingerprint>,
    server_expects: Option<Fingerprint>,
) -> Pair {
    let client_cert = NodeCertificate::generate().unwrap();
    let server_cert = NodeCertificate::generate().unwrap();
    let client = DtlsSrtpHandshake::spawn(
        DtlsRole::Client,
        &client_cert,
        client_expects.unwrap_or_else(|| server_cert.fingerprint().clone()),
        client_cfg,
    )
    .unwrap();
    let server = DtlsSrtpHandshake::spawn(
        DtlsRole::Server,
        &server_cert,
        server_expects.unwrap_or_else(|| client_cert.fingerprint().clone()),
        server_cfg,
    )
    .unwrap();
    Pair {
        client,
        server,
        client_cert,
        server_cert,
    }
}

fn rtp_packet(seq: u16, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&1234u32.to_be_bytes());
    p.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    p.extend((0..payload_len).map(|i| i as u8));
    p
}

/// Protects with `tx` keys' local key, unprotects with `rx` keys' remote key.
fn assert_srtp_round_trip(tx: &SrtpKeys, rx: &SrtpKeys) {
    let mut sender = SrtpSender::new(&tx.local, SrtpConfig::default()).unwrap();
    let mut receiver = SrtpReceiver::new(&rx.remote, SrtpConfig::default()).unwrap();
    for seq in 1..4u16 {
        let plain = rtp_packet(seq, 100);
        let mut buf = plain.clone();
        buf.resize(plain.len() + tx.local.profile().rtp_overhead(), 0);
        let n = sender.protect_rtp(&mut buf, plain.len()).unwrap();
        assert_ne!(
            buf[12..plain.len()],
            plain[12..],
            "payload must be encrypted"
        );
        let m = receiver.unprotect_rtp(&mut buf[..n]).unwrap();
        assert_eq!(&buf[..m], &plain[..]);
    }
}

fn assert_matching(client: &DtlsSrtpOutcome, server: &DtlsSrtpOutcome, profile: SrtpProfile) {
    assert_eq!(client.profile, profile);
    assert_eq!(server.profile, profile);
    assert_eq!(client.role, DtlsRole::Client);
    assert_eq!(server.role, DtlsRole::Server);
    assert_eq!(client.keys.local, server.keys.remote);
    assert_eq!(client.keys.remote, server.keys.local);
    assert_ne!(client.keys.local, client.keys.remote);
    assert_srtp_round_trip(&client.keys, &server.keys);
    assert_srtp_round_trip(&server.keys, &client.keys);
}

#[tokio::test(start_paused = true)]
async fn handshake_completes_and_keys_protect_srtp() {
    let started = tokio::time::Instant::now();
    let mut p = start_pair(
        DtlsSrtpConfig::default(),
        DtlsSrtpConfig::default(),
        None,
        None,
    );
    let (c, s) = pump(&mut p.client, &mut p.server, &[]).await;
    let (c, s) = (c.unwrap(), s.unwrap());
    // Nothing was lost: no retransmission timer had to fire.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_matching(&c, &s, SrtpProfile::AeadAes128Gcm);
    assert_eq!(&c.remote_fingerprint, p.server_cert.fingerprint());
    assert_eq!(&s.remote_fingerprint, p.client_cert.fingerprint());
    assert_eq!(p.client.stats().outbound_dropped, 0);
    assert_eq!(p.server.stats().inbound_dropped, 0);
}

/// Each handshake datagram of either side is lost once, in turn (including the server's
/// final flight): retransmission recovers and the keys still match.
#[tokio::test(start_paused = true)]
async fn handshake_survives_any_single_lost_datagram() {
    for from_client in [true, false] {
        for lost in 0..8 {
            let started = tokio::time::Instant::now();
            let mut p = start_pair(
                DtlsSrtpConfig::default(),
                DtlsSrtpConfig::default(),
                None,
                None,
            );
            let (c, s) = lossy_pump(&mut p.client, &mut p.server, &[], |from_a, i| {
                from_a == from_client && i == lost
            })
            .await;
            let ctx = format!("lost datagram {lost} from client={from_client}");
            let (c, s) = (c.expect(&ctx), s.expect(&ctx));
            assert_matching(&c, &s, SrtpProfile::AeadAes128Gcm);
            assert!(started.elapsed() < Duration::from_secs(5), "{ctx}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_servers_preference_wins_when_both_offer_both() {
    // The client prefers GCM, the server CM: the server chooses among what is offered.
    let cm_first = [SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm];
    let mut p = start_pair(config(&SrtpProfile::ALL), config(&cm_first), None, None);
    let (c, s) = pump(&mut p.client, &mut p.server, &[]).await;
    assert_matching(&c.unwrap(), &s.unwrap(), SrtpProfile::Aes128CmHmacSha1_80);
}

#[tokio::test(start_paused = true)]
async fn server_prefers_gcm_when_the_client_lists_cm_first() {
    // What Chromium offers (SHA1_80 first): the node as DTLS server chooses by its own
    // preference among the offered profiles, GCM.
    let cm_first = [SrtpProfile::Aes128CmHmacSha1_80, SrtpProfile::AeadAes128Gcm];
    let mut p = start_pair(config(&cm_first), config(&SrtpProfile::ALL), None, None);
    let (c, s) = pump(&mut p.client, &mut p.server, &[]).await;
    assert_matching(&c.unwrap(), &s.unwrap(), SrtpProfile::AeadAes128Gcm);
}

#[tokio::test(start_paused = true)]
async fn cm_when_client_offers_only_cm() {
    let cm = [SrtpProfile::Aes128CmHmacSha1_80];
    let mut p = start_pair(config(&cm), DtlsSrtpConfig::default(), None, None);
    let (c, s) = pump(&mut p.client, &mut p.server, &[]).await;
    assert_matching(&c.unwrap(), &s.unwrap(), SrtpProfile::Aes128CmHmacSha1_80);
}

#[tokio::test(start_paused = true)]
async fn cm_when_server_offers_only_cm() {
    let cm = [SrtpProfile::Aes128CmHmacSha1_80];
    let mut p = start_pair(DtlsSrtpConfig::default(), config(&cm), None, None);
    let (c, s) = pump(&mut p.client, &mut p.server, &[]).await;
    assert_matching(&c.unwrap(), &s.unwrap(), SrtpProfile::Aes128CmHmacSha1_80);
}

#[tokio::test(start_paused = true)]
async fn no_common_profile_fails_both_sides() {
    let mut p = start_pair(
        config(&[SrtpProfile::Aes128CmHmacSha1_80]),
        config(&[SrtpProfile::AeadAes128Gcm]),
        None,
        None,
    );
    let (c, s) = pump(&mut p.client, &mut p.server, &[]).await;
    assert!(c.is_err(), "{c:?}");
    assert!(s.is_err(), "{s:?}");
}

fn other_fingerprint() -> Fingerprint {
    NodeCertificate::generate().unwrap().fingerprint().clone()
}

#[tokio::test(start_paused = true)]
async fn client_rejects_wrong_server_fingerprint() {
    let mut p = start_pair(
        DtlsSrtpConfig::default(),
        DtlsSrtpConfig::default(),
        Some(other_fingerprint()),
        None,
    );
    let (c, s) = pump(&mut p.client, &mut p.server, &[]).await;
    assert_eq!(c.unwrap_err(), DtlsSrtpError::FingerprintMismatch);
    let s = s.unwrap_err();
    eprintln!("server: {s}");
    assert_ne!(
        s,
        DtlsSrtpError::FingerprintMismatch,
        "server's own check passed"
    );
}

#[tokio::test(start_paused = true)]
async fn server_rejects_wrong_client_fingerprint() {
    let mut p = start_pair(
        DtlsSrtpConfig::default(),
        DtlsSrtpConfig::default(),
        None,
        Some(other_fingerprint()),
    );
    let (c, s) = pump(&mut p.client, &mut p.server, &[]).await;
    assert_eq!(s.unwrap_err(), DtlsSrtpError::FingerprintMismatch);
    let c = c.unwrap_err();
    eprintln!("client: {c}");
    assert_ne!(
        c,
        DtlsSrtpError::FingerprintMismatch,
        "client's own check passed"
    );
}

#[tokio::test(start_paused = true)]
async fn expected_fingerprint_with_other_hash_is_checked_with_that_hash() {
    let client_cert = NodeCertificate::generate().unwrap();
    let server_cert = NodeCertificate::generate().unwrap();
    let fp384 = Fingerprint::of_der(FingerprintAlgorithm::Sha384, server_cert.der());
    let mut client = DtlsSrtpHandshake::spawn(
        DtlsRole::Client,
        &client_cert,
        fp384.clone(),
        config(&SrtpProfile::ALL),
    )
    .unwrap();
    let mut server = DtlsSrtpHandshake::spawn(
        DtlsRole::Server,
        &server_cert,
        client_cert.fingerprint().clone(),
        DtlsSrtpConfig::default(),
    )
    .unwrap();
    let (c, s) = pump(&mut client, &mut server, &[]).await;
    assert_eq!(c.unwrap().remote_fingerprint, fp384);
    s.unwrap();
}

fn garbage() -> Vec<Vec<u8>> {
    let mut g = vec![
        vec![],
        vec![22],
        vec![22, 0xfe, 0xfd, 0, 0],
        // handshake record header claiming a long body
        vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 9, 0xff, 0xff, 1, 2, 3],
        // handshake record, truncated ClientHello/ServerHello body
        vec![
            22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 5, 0, 4, 1, 2, 0, 0, 0, 0,
        ],
        // change cipher spec, alert (not fatal: level 1 unknown desc), application data
        vec![20, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 7, 0, 1, 1],
        vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4],
        vec![0xff; 300],
    ];
    // Pseudo-random records with a DTLS-looking first byte.
    let mut x: u32 = 0x1234_5678;
    for _ in 0..16 {
        let len = 13 + (x % 200) as usize;
        let mut d: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        d[0] = 22;
        g.push(d);
    }
    g
}

#[tokio::test(start_paused = true)]
async fn garbage_mid_handshake_does_not_panic() {
    let mut p = start_pair(
        DtlsSrtpConfig::default(),
        DtlsSrtpConfig::default(),
        None,
        None,
    );
    let (c, s) = pump(&mut p.client, &mut p.server, &garbage()).await;
    // No panic, and the garbage (dropped by the dtls crate's record parser) does not
    // prevent the handshake.
    assert_matching(&c.unwrap(), &s.unwrap(), SrtpProfile::AeadAes128Gcm);
}

#[tokio::test(start_paused = true)]
async fn client_times_out_when_peer_never_answers() {
    let cert = NodeCertificate::generate().unwrap();
    let timeout = Duration::from_secs(10);
    let started = tokio::time::Instant::now();
    let real = std::time::Instant::now();
    let mut client = DtlsSrtpHandshake::spawn(
        DtlsRole::Client,
        &cert,
        other_fingerprint(),
        DtlsSrtpConfig::default(),
    )
    .unwrap();
    let mut sent = 0;
    let result = loop {
        match client.next_event().await.unwrap() {
            DtlsEvent::Transmit(_) => sent += 1,
            DtlsEvent::Completed(r) => break r,
        }
    };
    assert_eq!(result.unwrap_err(), DtlsSrtpError::Timeout(timeout));
    assert_eq!(started.elapsed(), timeout);
    assert!(sent >= 5, "ClientHello retransmitted, sent {sent}");
    assert!(
        real.elapsed() < Duration::from_secs(5),
        "paused clock: {:?}",
        real.elapsed()
    );
    // The task ends after the failure: the event stream ends.
    assert!(client.next_event().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn server_times_out_when_client_stalls() {
    let cert = NodeCertificate::generate().unwrap();
    let cfg = DtlsSrtpConfig {
        handshake_timeout: Duration::from_secs(3),
        ..DtlsSrtpConfig::default()
    };
    let mut server =
        DtlsSrtpHandshake::spawn(DtlsRole::Server, &cert, other_fingerprint(), cfg).unwrap();
    for g in garbage() {
        server.handle_datagram(&g);
    }
    assert_eq!(
        server.outcome().await.unwrap_err(),
        DtlsSrtpError::Timeout(Duration::from_secs(3))
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_ends_the_task() {
    let cert = NodeCertificate::generate().unwrap();
    let (handle, task) = DtlsSrtpHandshake::start(
        DtlsRole::Client,
        &cert,
        other_fingerprint(),
        DtlsSrtpConfig::default(),
    )
    .unwrap();
    let join = tokio::spawn(task);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(handle);
    tokio::time::timeout(Duration::from_secs(1), join)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn close_after_handshake_sends_close_notify() {
    let mut p = start_pair(
        DtlsSrtpConfig::default(),
        DtlsSrtpConfig::default(),
        None,
        None,
    );
    let (c, s) = pump(&mut p.client, &mut p.server, &[]).await;
    c.unwrap();
    s.unwrap();
    p.client.close();
    let mut forwarded = 0;
    while let Some(ev) = p.client.next_event().await {
        if let DtlsEvent::Transmit(d) = ev {
            p.server.handle_datagram(&d);
            forwarded += 1;
        }
    }
    assert!(forwarded >= 1, "close_notify transmitted");
    // The server's connection ends on close_notify; its task ends.
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        while p.server.next_event().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "server task ended after close_notify");
}

#[tokio::test(start_paused = true)]
async fn oversized_and_overflowing_datagrams_are_dropped_and_counted() {
    let cert = NodeCertificate::generate().unwrap();
    let cfg = DtlsSrtpConfig {
        queue_capacity: 2,
        ..DtlsSrtpConfig::default()
    };
    // Task not spawned: nothing drains the inbound queue.
    let (server, _task) =
        DtlsSrtpHandshake::start(DtlsRole::Server, &cert, other_fingerprint(), cfg).unwrap();
    assert!(!server.handle_datagram(&vec![22; MAX_DATAGRAM_LEN + 1]));
    assert!(server.handle_datagram(&[22; 20]));
    assert!(server.handle_datagram(&[22; 20]));
    assert!(!server.handle_datagram(&[22; 20]));
    let stats = server.stats();
    assert_eq!(stats.inbound_oversized, 1);
    assert_eq!(stats.inbound_dropped, 1);
}

#[test]
fn invalid_config_is_rejected() {
    let cert = NodeCertificate::generate().unwrap();
    let fp = cert.fingerprint().clone();
    let err = DtlsSrtpHandshake::start(DtlsRole::Client, &cert, fp, config(&[])).unwrap_err();
    assert!(matches!(err, DtlsSrtpError::InvalidConfig(_)));
}

#[test]
fn node_certificate_fingerprint_is_sha256_of_der() {
    let cert = NodeCertificate::generate().unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.der());
    assert_eq!(cert.fingerprint().digest(), digest.as_ref());
    assert_eq!(cert.fingerprint().algorithm(), FingerprintAlgorithm::Sha256);
    assert!(cert.fingerprint().matches(cert.der()));
    let text = cert.fingerprint().to_string();
    assert!(text.starts_with("sha-256 "));
    let hex = text.strip_prefix("sha-256 ").unwrap();
    assert_eq!(hex.len(), 32 * 3 - 1);
    assert!(hex
        .chars()
        .all(|c| c == ':' || c.is_ascii_digit() || c.is_ascii_uppercase()));
    // Two generations differ.
    assert_ne!(
        NodeCertificate::generate().unwrap().fingerprint(),
        cert.fingerprint()
    );
}

#[test]
fn fingerprint_parse_format_round_trip() {
    let cert = NodeCertificate::generate().unwrap();
    for alg in [
        FingerprintAlgorithm::Sha1,
        FingerprintAlgorithm::Sha256,
        FingerprintAlgorithm::Sha384,
        FingerprintAlgorithm::Sha512,
    ] {
        let fp = Fingerprint::of_der(alg, cert.der());
        assert_eq!(fp.digest().len(), alg.digest_len());
        let text = fp.to_string();
        assert_eq!(Fingerprint::parse(&text).unwrap(), fp);
        assert_eq!(text.parse::<Fingerprint>().unwrap(), fp);
        // Case-insensitive, surrounding whitespace tolerated.
        let lower = format!("  {}\t", text.to_ascii_lowercase());
        assert_eq!(Fingerprint::parse(&lower).unwrap(), fp);
        assert_eq!(Fingerprint::parse(&text.to_ascii_uppercase()).unwrap(), fp);
    }
    let known = "sha-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:\
                 10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:FF";
    let fp = Fingerprint::parse(known).unwrap();
    assert_eq!(fp.to_string(), known);
    assert_eq!(fp.digest()[31], 0xff);
}

#[test]
fn fingerprint_parse_errors() {
    use FingerprintParseError::*;
    let ok_hex = vec!["AB"; 32].join(":");
    assert_eq!(Fingerprint::parse(""), Err(Malformed));
    assert_eq!(Fingerprint::parse("sha-256"), Err(Malformed));
    assert_eq!(
        Fingerprint::parse(&format!("sha-256 {ok_hex} x")),
        Err(Malformed)
    );
    assert_eq!(
        Fingerprint::parse(&format!("md5 {ok_hex}")),
        Err(UnknownAlgorithm)
    );
    assert_eq!(
        Fingerprint::parse(&format!("sha-256 {ok_hex}:AB")),
        Err(WrongLength {
            expected: 32,
            actual: 33
        })
    );
    assert_eq!(
        Fingerprint::parse("sha-1 AB:CD"),
        Err(WrongLength {
            expected: 20,
            actual: 2
        })
    );
    assert_eq!(
        Fingerprint::parse(&format!("sha-256 {}:G0", vec!["AB"; 31].join(":"))),
        Err(InvalidHex)
    );
    assert_eq!(
        Fingerprint::parse(&format!("sha-256 {}:A", vec!["AB"; 31].join(":"))),
        Err(InvalidHex)
    );
    assert_eq!(Fingerprint::parse("sha-256 ABC:DE"), Err(InvalidHex));
    assert_eq!(Fingerprint::parse("sha-256 AB::CD"), Err(InvalidHex));
    assert_eq!(Fingerprint::parse("sha-256 é1:CD"), Err(InvalidHex));
    // Very long input stops early.
    let long = format!("sha-256 {}", vec!["AB"; 100_000].join(":"));
    assert!(matches!(Fingerprint::parse(&long), Err(WrongLength { .. })));
    // Errors never echo the input.
    let e = Fingerprint::parse("md5 secret").unwrap_err().to_string();
    assert!(!e.contains("secret") && !e.contains("md5"));
}
