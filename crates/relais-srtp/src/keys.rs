//! Master keys and their extraction from DTLS-SRTP keying material.
//!
//! A DTLS handshake exports `2 * (key_len + salt_len)` bytes laid out as
//! `client_write_key | server_write_key | client_write_salt | server_write_salt`
//! (RFC 5764 §4.2). Which half protects what we send depends on our DTLS role; this module
//! owns that split so no caller has to get it right twice.

use std::fmt;

use crate::{SrtpError, SrtpProfile};

const MAX_SALT_LEN: usize = 14;
const KEY_LEN: usize = 16;

/// Our role in the DTLS handshake that produced the keying material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// We sent the ClientHello (`a=setup:active`).
    Client,
    /// We answered it (`a=setup:passive`).
    Server,
}

/// One SRTP master key and master salt for one profile: what keys one direction.
///
/// `Debug` never prints the key material.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    profile: SrtpProfile,
    master_key: [u8; KEY_LEN],
    // Sized for the longest salt (AES-CM, 14 bytes); GCM uses the first 12.
    master_salt: [u8; MAX_SALT_LEN],
}

impl SrtpKey {
    /// A master key and salt for `profile`; the lengths must match the profile's.
    pub fn new(
        profile: SrtpProfile,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        let key: [u8; KEY_LEN] = master_key
            .try_into()
            .map_err(|_| SrtpError::MasterKeyLength {
                expected: profile.master_key_len(),
                actual: master_key.len(),
            })?;
        if master_salt.len() != profile.master_salt_len() {
            return Err(SrtpError::MasterSaltLength {
                expected: profile.master_salt_len(),
                actual: master_salt.len(),
            });
        }
        let mut salt = [0u8; MAX_SALT_LEN];
        for (dst, src) in salt.iter_mut().zip(master_salt) {
            *dst = *src;
        }
        Ok(Self {
            profile,
            master_key: key,
            master_salt: salt,
        })
    }

    /// The profile this key is for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The 16-byte master key.
    pub fn master_key(&self) -> &[u8; 16] {
        &self.master_key
    }

    /// The master salt (14 bytes for AES-CM, 12 for GCM).
    pub fn master_salt(&self) -> &[u8] {
        let len = self.profile.master_salt_len();
        self.master_salt.get(..len).unwrap_or(&self.master_salt)
    }
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKey")
            .field("profile", &self.profile)
            .field("master_key", &"<redacted>")
            .field("master_salt", &"<redacted>")
            .finish()
    }
}

/// The two keys of a DTLS-SRTP association, already assigned to directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// Keys what we send: give it to [`crate::SrtpSender`].
    pub local: SrtpKey,
    /// Keys what the peer sends: give it to [`crate::SrtpReceiver`].
    pub remote: SrtpKey,
}

impl SrtpKeys {
    /// Splits keying material exported from DTLS with the label `EXTRACTOR-dtls_srtp`
    /// (RFC 5764 §4.2) into our sending key and the peer's sending key.
    ///
    /// `material` must be exactly [`SrtpProfile::keying_material_len`] bytes.
    pub fn from_dtls_keying_material(
        profile: SrtpProfile,
        material: &[u8],
        role: DtlsRole,
    ) -> Result<Self, SrtpError> {
        let key_len = profile.master_key_len();
        let salt_len = profile.master_salt_len();
        if material.len() != profile.keying_material_len() {
            return Err(SrtpError::KeyingMaterialLength {
                expected: profile.keying_material_len(),
                actual: material.len(),
            });
        }
        let (client_key, rest) = split(material, key_len)?;
        let (server_key, rest) = split(rest, key_len)?;
        let (client_salt, server_salt) = split(rest, salt_len)?;
        let client = SrtpKey::new(profile, client_key, client_salt)?;
        let server = SrtpKey::new(profile, server_key, server_salt)?;
        Ok(match role {
            DtlsRole::Client => Self {
                local: client,
                remote: server,
            },
            DtlsRole::Server => Self {
                local: server,
                remote: client,
            },
        })
    }
}

fn split(buf: &[u8], at: usize) -> Result<(&[u8], &[u8]), SrtpError> {
    // The total length was checked by the caller; this only keeps the slicing panic-free.
    buf.split_at_checked(at)
        .ok_or(SrtpError::KeyingMaterialLength {
            expected: at,
            actual: buf.len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(profile: SrtpProfile) -> Vec<u8> {
        (0..profile.keying_material_len() as u8).collect()
    }

    #[test]
    fn client_and_server_get_mirrored_keys() {
        for profile in SrtpProfile::ALL {
            let m = material(profile);
            let client =
                SrtpKeys::from_dtls_keying_material(profile, &m, DtlsRole::Client).unwrap();
            let server =
                SrtpKeys::from_dtls_keying_material(profile, &m, DtlsRole::Server).unwrap();
            assert_eq!(client.local, server.remote);
            assert_eq!(client.remote, server.local);

            // client_write_key | server_write_key | client_write_salt | server_write_salt
            let s = profile.master_salt_len();
            assert_eq!(&client.local.master_key()[..], &m[0..16]);
            assert_eq!(&client.remote.master_key()[..], &m[16..32]);
            assert_eq!(client.local.master_salt(), &m[32..32 + s]);
            assert_eq!(client.remote.master_salt(), &m[32 + s..32 + 2 * s]);
        }
    }

    #[test]
    fn wrong_lengths_are_typed_errors() {
        let p = SrtpProfile::AeadAes128Gcm;
        assert_eq!(
            SrtpKeys::from_dtls_keying_material(p, &[0; 60], DtlsRole::Client),
            Err(SrtpError::KeyingMaterialLength {
                expected: 56,
                actual: 60
            })
        );
        assert_eq!(
            SrtpKey::new(p, &[0; 15], &[0; 12]),
            Err(SrtpError::MasterKeyLength {
                expected: 16,
                actual: 15
            })
        );
        assert_eq!(
            SrtpKey::new(p, &[0; 16], &[0; 14]),
            Err(SrtpError::MasterSaltLength {
                expected: 12,
                actual: 14
            })
        );
    }

    #[test]
    fn debug_redacts_key_material() {
        let k = SrtpKey::new(SrtpProfile::AeadAes128Gcm, &[0xab; 16], &[0xcd; 12]).unwrap();
        let s = format!("{k:?}");
        assert!(
            !s.contains("171") && !s.to_lowercase().contains("ab,"),
            "{s}"
        );
        assert!(s.contains("redacted"));
    }
}
