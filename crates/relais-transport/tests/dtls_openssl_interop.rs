//! Interop with OpenSSL's DTLS 1.2 (`openssl s_client` / `s_server`, as used by GStreamer
//! webrtcbin through libnice/OpenSSL) with RSA certificates, over loopback UDP.
//!
//! The dtls crate cannot act with an RSA key itself and rcgen (ring backend) cannot generate
//! RSA keys, so the RSA side is the `openssl` binary. Fails with a clear message when `openssl` is not
//! installed. Real time (a real peer process), short timeouts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use relais_srtp::{DtlsRole, SrtpProfile};
use relais_transport::dtls_srtp::{
    DtlsEvent, DtlsSrtpConfig, DtlsSrtpError, DtlsSrtpHandshake, DtlsSrtpOutcome, Fingerprint,
    NodeCertificate,
};

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh RSA-2048 self-signed certificate: (dir, cert.pem, key.pem, fingerprint).
fn rsa_cert(name: &str) -> (PathBuf, PathBuf, Fingerprint) {
    let dir = std::env::temp_dir().join(format!("relais-dtls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, der) = (dir.join("c.pem"), dir.join("k.pem"), dir.join("c.der"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=peer", "-days", "1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let ok = Command::new("openssl")
        .args(["x509", "-outform", "DER"])
        .arg("-in")
        .arg(&cert)
        .arg("-out")
        .arg(&der)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let fp = Fingerprint::sha256(&std::fs::read(&der).unwrap());
    (cert, key, fp)
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(args: &[&str], cert: &Path, key: &Path) -> KillOnDrop {
    let child = Command::new("openssl")
        .args(args)
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .args(["-use_srtp", "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"])
        .stdin(Stdio::piped()) // kept open: s_client would quit on EOF
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// Bridges the handle to a UDP socket until the handshake result.
async fn bridge(
    handle: &mut DtlsSrtpHandshake,
    socket: UdpSocket,
    mut peer: Option<SocketAddr>,
) -> Result<DtlsSrtpOutcome, DtlsSrtpError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, SocketAddr)>(64);
    let reader = socket.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 2048];
        loop {
            match reader.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if tx.blocking_send((buf[..n].to_vec(), from)).is_err() {
                        return;
                    }
                }
                Err(_) if tx.is_closed() => return,
                Err(_) => {}
            }
        }
    });
    let mut pending = Vec::new();
    loop {
        tokio::select! {
            Some((d, from)) = rx.recv() => {
                peer.get_or_insert(from);
                handle.handle_datagram(&d);
            }
            ev = handle.next_event() => match ev {
                Some(DtlsEvent::Transmit(d)) => match peer {
                    Some(p) => { socket.send_to(&d, p).unwrap(); }
                    None => pending.push(d),
                },
                Some(DtlsEvent::Completed(r)) => return r,
                None => return Err(DtlsSrtpError::TaskEnded),
            },
        }
        if let (Some(p), false) = (peer, pending.is_empty()) {
            for d in pending.drain(..) {
                socket.send_to(&d, p).unwrap();
            }
        }
    }
}

fn short() -> DtlsSrtpConfig {
    DtlsSrtpConfig {
        handshake_timeout: Duration::from_secs(8),
        ..DtlsSrtpConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relais_server_accepts_openssl_rsa_client() {
    assert!(
        openssl_available(),
        "the openssl binary is missing: install the Debian package openssl (scripts/test does)"
    );
    let (cert, key, peer_fp) = rsa_cert("rsa-client");
    let node = NodeCertificate::generate().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut server =
        DtlsSrtpHandshake::spawn(DtlsRole::Server, &node, peer_fp.clone(), short()).unwrap();
    let connect = format!("127.0.0.1:{port}");
    let _client = openssl(
        &["s_client", "-dtls1_2", "-connect", &connect, "-quiet"],
        &cert,
        &key,
    );
    let outcome = bridge(&mut server, socket, None).await.unwrap();
    assert_eq!(outcome.remote_fingerprint, peer_fp);
    assert_eq!(outcome.profile, SrtpProfile::AeadAes128Gcm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relais_client_accepts_openssl_rsa_server() {
    assert!(
        openssl_available(),
        "the openssl binary is missing: install the Debian package openssl (scripts/test does)"
    );
    let (cert, key, peer_fp) = rsa_cert("rsa-server");
    let node = NodeCertificate::generate().unwrap();
    // Reserve a free port for s_server, then release it.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let accept = port.to_string();
    let _server = openssl(
        &[
            "s_server", "-dtls1_2", "-accept", &accept, "-verify", "1", "-quiet",
        ],
        &cert,
        &key,
    );
    tokio::time::sleep(Duration::from_millis(500)).await; // let s_server bind
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut client =
        DtlsSrtpHandshake::spawn(DtlsRole::Client, &node, peer_fp.clone(), short()).unwrap();
    let peer: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let outcome = bridge(&mut client, socket, Some(peer)).await.unwrap();
    assert_eq!(outcome.remote_fingerprint, peer_fp);
    assert_eq!(outcome.profile, SrtpProfile::AeadAes128Gcm);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relais_server_rejects_openssl_client_with_other_fingerprint() {
    assert!(
        openssl_available(),
        "the openssl binary is missing: install the Debian package openssl (scripts/test does)"
    );
    let (cert, key, _) = rsa_cert("rsa-wrong");
    let node = NodeCertificate::generate().unwrap();
    let other = NodeCertificate::generate().unwrap().fingerprint().clone();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let mut server = DtlsSrtpHandshake::spawn(DtlsRole::Server, &node, other, short()).unwrap();
    let connect = format!("127.0.0.1:{port}");
    let _client = openssl(
        &["s_client", "-dtls1_2", "-connect", &connect, "-quiet"],
        &cert,
        &key,
    );
    let err = bridge(&mut server, socket, None).await.unwrap_err();
    assert_eq!(err, DtlsSrtpError::FingerprintMismatch);
}
