//! The SRTP protection profiles relais speaks and their fixed parameters.
//!
//! Only the two profiles WebRTC endpoints actually offer: `SRTP_AEAD_AES_128_GCM`
//! (RFC 7714, preferred by browsers) and `SRTP_AES128_CM_HMAC_SHA1_80` (RFC 3711/5764, the
//! mandatory-to-implement fallback).

use std::fmt;

/// A DTLS-SRTP protection profile (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (0x0001): AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    Aes128CmHmacSha1_80,
    /// `SRTP_AEAD_AES_128_GCM` (0x0007): AES-128-GCM with a 128-bit tag.
    AeadAes128Gcm,
}

impl SrtpProfile {
    /// Both profiles, in the order relais prefers them when negotiating (GCM first).
    pub const ALL: [SrtpProfile; 2] =
        [SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmHmacSha1_80];

    /// The two-byte protection profile id carried in the DTLS `use_srtp` extension.
    pub const fn dtls_id(self) -> u16 {
        match self {
            Self::Aes128CmHmacSha1_80 => 0x0001,
            Self::AeadAes128Gcm => 0x0007,
        }
    }

    /// The profile for a DTLS `use_srtp` id, or `None` for profiles relais does not speak.
    pub const fn from_dtls_id(id: u16) -> Option<Self> {
        match id {
            0x0001 => Some(Self::Aes128CmHmacSha1_80),
            0x0007 => Some(Self::AeadAes128Gcm),
            _ => None,
        }
    }

    /// The IANA name of the profile.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_HMAC_SHA1_80",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
        }
    }

    /// Master key length in bytes.
    pub const fn master_key_len(self) -> usize {
        16
    }

    /// Master salt length in bytes (112 bits for AES-CM, 96 bits for GCM).
    pub const fn master_salt_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 14,
            Self::AeadAes128Gcm => 12,
        }
    }

    /// Bytes of keying material to export from DTLS (RFC 5764 §4.2): two keys and two salts.
    pub const fn keying_material_len(self) -> usize {
        2 * (self.master_key_len() + self.master_salt_len())
    }

    /// Authentication tag length of an SRTP packet.
    pub const fn rtp_auth_tag_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 10,
            Self::AeadAes128Gcm => 16,
        }
    }

    /// Authentication tag length of an SRTCP packet.
    pub const fn rtcp_auth_tag_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 10,
            Self::AeadAes128Gcm => 16,
        }
    }

    /// Bytes protecting an RTP packet adds (the tag): the room `protect_rtp` needs past
    /// the plaintext.
    pub const fn rtp_overhead(self) -> usize {
        self.rtp_auth_tag_len()
    }

    /// Bytes protecting an RTCP packet adds (the tag plus the 4-byte E flag / SRTCP index
    /// word): the room `protect_rtcp` needs past the plaintext.
    pub const fn rtcp_overhead(self) -> usize {
        self.rtcp_auth_tag_len() + 4
    }
}

impl fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtls_ids_round_trip() {
        for p in SrtpProfile::ALL {
            assert_eq!(SrtpProfile::from_dtls_id(p.dtls_id()), Some(p));
        }
        assert_eq!(SrtpProfile::from_dtls_id(0x0002), None);
        assert_eq!(SrtpProfile::from_dtls_id(0x0008), None);
    }

    #[test]
    fn lengths_match_the_rfcs() {
        let cm = SrtpProfile::Aes128CmHmacSha1_80;
        assert_eq!((cm.master_key_len(), cm.master_salt_len()), (16, 14));
        assert_eq!(cm.keying_material_len(), 60);
        assert_eq!((cm.rtp_overhead(), cm.rtcp_overhead()), (10, 14));

        let gcm = SrtpProfile::AeadAes128Gcm;
        assert_eq!((gcm.master_key_len(), gcm.master_salt_len()), (16, 12));
        assert_eq!(gcm.keying_material_len(), 56);
        assert_eq!((gcm.rtp_overhead(), gcm.rtcp_overhead()), (16, 20));
    }
}
