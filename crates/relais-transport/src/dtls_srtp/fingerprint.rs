//! Certificate fingerprints as carried in SDP `a=fingerprint` (RFC 8122) and the node
//! certificate.

use std::fmt;
use std::str::FromStr;

use dtls::crypto::{Certificate, CryptoPrivateKeyKind};

use super::DtlsSrtpError;

/// The hash function of a certificate fingerprint (RFC 8122 §5, hash function textual names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FingerprintAlgorithm {
    /// `sha-1` (legacy; still accepted in offers).
    Sha1,
    /// `sha-256`, the one relais emits.
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
}

impl FingerprintAlgorithm {
    /// The SDP textual name (`sha-256`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha-1",
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }

    /// Parses an SDP hash name case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Length of the digest in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }
}

impl fmt::Display for FingerprintAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an SDP fingerprint could not be parsed. The input is never echoed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintParseError {
    /// Not `<hash-name> <hex>:<hex>:...`.
    #[error("fingerprint is not '<hash> <hex pairs separated by colons>'")]
    Malformed,
    /// The hash name is not sha-1, sha-256, sha-384 or sha-512.
    #[error("unsupported fingerprint hash function")]
    UnknownAlgorithm,
    /// A byte is not exactly two hex digits.
    #[error("fingerprint contains an invalid hex byte")]
    InvalidHex,
    /// The number of bytes does not match the hash function.
    #[error("fingerprint has {actual} bytes, the hash function needs {expected}")]
    WrongLength {
        /// Digest length of the hash function.
        expected: usize,
        /// Bytes found.
        actual: usize,
    },
}

/// A certificate fingerprint: hash function and digest of the DER certificate.
///
/// `Display` gives the SDP form after `a=fingerprint:`, e.g. `sha-256 AB:CD:...` (uppercase
/// hex, colon separated); [`Fingerprint::parse`] / `FromStr` accept it case-insensitively.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    algorithm: FingerprintAlgorithm,
    digest: Vec<u8>,
}

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate with the given hash function.
    pub fn of_der(algorithm: FingerprintAlgorithm, der: &[u8]) -> Self {
        let digest = ring::digest::digest(algorithm.ring(), der);
        Self {
            algorithm,
            digest: digest.as_ref().to_vec(),
        }
    }

    /// The SHA-256 fingerprint of a DER-encoded certificate.
    pub fn sha256(der: &[u8]) -> Self {
        Self::of_der(FingerprintAlgorithm::Sha256, der)
    }

    /// Parses the value of an SDP `a=fingerprint:` attribute, e.g. `sha-256 AB:CD:...`.
    pub fn parse(s: &str) -> Result<Self, FingerprintParseError> {
        let mut parts = s.split_ascii_whitespace();
        let (Some(name), Some(hex), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(FingerprintParseError::Malformed);
        };
        let algorithm =
            FingerprintAlgorithm::from_name(name).ok_or(FingerprintParseError::UnknownAlgorithm)?;
        let expected = algorithm.digest_len();
        let mut digest = Vec::with_capacity(expected);
        for pair in hex.split(':') {
            if digest.len() > expected {
                break; // the length error below reports it; don't parse unbounded input
            }
            let &[hi, lo] = pair.as_bytes() else {
                return Err(FingerprintParseError::InvalidHex);
            };
            let (Some(hi), Some(lo)) = (hex_val(hi), hex_val(lo)) else {
                return Err(FingerprintParseError::InvalidHex);
            };
            digest.push((hi << 4) | lo);
        }
        if digest.len() != expected {
            return Err(FingerprintParseError::WrongLength {
                expected,
                actual: digest.len(),
            });
        }
        Ok(Self { algorithm, digest })
    }

    /// The hash function.
    pub fn algorithm(&self) -> FingerprintAlgorithm {
        self.algorithm
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// Whether `der` (a DER certificate) hashes to this fingerprint.
    pub fn matches(&self, der: &[u8]) -> bool {
        Self::of_der(self.algorithm, der) == *self
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.algorithm.name())?;
        for (i, b) in self.digest.iter().enumerate() {
            let sep = if i == 0 { ' ' } else { ':' };
            write!(f, "{sep}{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The node's DTLS certificate: ECDSA P-256, self-signed, generated once per node (WebRTC
/// authenticates it by the SDP fingerprint, not by a CA). Cheap to clone.
#[derive(Clone)]
pub struct NodeCertificate {
    pub(super) inner: Certificate,
    fingerprint: Fingerprint,
}

impl NodeCertificate {
    /// Generates a fresh ECDSA P-256 self-signed certificate.
    pub fn generate() -> Result<Self, DtlsSrtpError> {
        // rcgen's default key type (used by the dtls crate here) is ECDSA P-256 / SHA-256.
        let inner = Certificate::generate_self_signed(vec!["relais.invalid".to_owned()])
            .map_err(|e| DtlsSrtpError::Certificate(e.to_string()))?;
        if !matches!(inner.private_key.kind, CryptoPrivateKeyKind::Ecdsa256(_)) {
            return Err(DtlsSrtpError::Certificate(
                "generated key is not ECDSA P-256".to_owned(),
            ));
        }
        let der = inner
            .certificate
            .first()
            .ok_or_else(|| DtlsSrtpError::Certificate("no certificate generated".to_owned()))?;
        let fingerprint = Fingerprint::sha256(der.as_ref());
        Ok(Self { inner, fingerprint })
    }

    /// The SHA-256 fingerprint to put in SDP `a=fingerprint:`.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The DER-encoded certificate.
    pub fn der(&self) -> &[u8] {
        self.inner
            .certificate
            .first()
            .map(|c| c.as_ref())
            .unwrap_or_default()
    }
}

impl fmt::Debug for NodeCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCertificate")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}
