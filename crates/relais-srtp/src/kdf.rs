//! AES counter mode and the RFC 3711 §4.3 key derivation built on it.
//!
//! Used for the GCM profile's session keys (RFC 7714 §11 reuses the AES-CM PRF); the
//! AES-CM profile's session keys are derived inside webrtc-srtp, which also does its packet
//! transform (`cm`). The RFC 3711 B.2 (keystream) and B.3 (key derivation) vectors are
//! checked here.
//!
//! Session keys are derived once per context with the AES-CM PRF and
//! `key_derivation_rate = 0` (the only rate DTLS-SRTP uses, RFC 5764 §4.1.2), so
//! `index DIV kdr` is always zero and only the label varies.
//!
//! PRF input: `x = (label || 0^48) XOR master_salt`, the two right-aligned on the 112-bit
//! salt, then `x * 2^16` is the AES-CM IV. For GCM's 96-bit master salt (RFC 7714 §11) the
//! salt is padded on the right with two zero bytes to the same 112 bits — the layout libsrtp
//! and webrtc-srtp use — so the label always lands in byte 7 of the IV.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128Enc, Block};

/// Keystream blocks computed per AES call: eight lets AES-NI pipeline the rounds.
const PAR_BLOCKS: usize = 8;

/// Key-derivation labels of RFC 3711 §4.3.1.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub(crate) enum Label {
    RtpEncryption = 0x00,
    #[cfg_attr(
        not(test),
        allow(
            dead_code,
            reason = "GCM has no auth key; checked by the RFC 3711 B.3 test"
        )
    )]
    RtpAuthentication = 0x01,
    RtpSalt = 0x02,
    RtcpEncryption = 0x03,
    #[allow(
        dead_code,
        reason = "GCM has no auth key; kept for the complete label set"
    )]
    RtcpAuthentication = 0x04,
    RtcpSalt = 0x05,
}

/// XORs the AES-CM keystream starting at counter block `iv` into `data` (encryption and
/// decryption are the same operation). Counter block `j` is `iv + j` mod 2^128
/// (RFC 3711 §4.1.1).
///
/// Counter mode by hand over `&Aes128Enc` rather than through the `ctr` crate, whose
/// cipher takes the key schedule by value: that would mean copying or re-expanding the key
/// for every packet.
pub(crate) fn aes_cm_apply(cipher: &Aes128Enc, iv: &[u8; 16], data: &mut [u8]) {
    let mut counter = u128::from_be_bytes(*iv);
    let mut keystream = [Block::default(); PAR_BLOCKS];
    for chunk in data.chunks_mut(16 * PAR_BLOCKS) {
        for block in keystream.iter_mut() {
            *block = counter.to_be_bytes().into();
            counter = counter.wrapping_add(1);
        }
        cipher.encrypt_blocks(&mut keystream);
        for (bytes, key) in chunk.chunks_mut(16).zip(&keystream) {
            for (b, k) in bytes.iter_mut().zip(key.iter()) {
                *b ^= k;
            }
        }
    }
}

/// The AES-CM PRF of RFC 3711 §4.3.3 with `key_derivation_rate = 0`: fills `out` (any
/// length) with the session key material for `label`.
///
/// `master_salt` is 14 bytes (AES-CM profiles) or 12 bytes (GCM, right-padded with zeros).
pub(crate) fn derive(master_key: &[u8; 16], master_salt: &[u8], label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    // The salt occupies the first 14 bytes at most; bytes 14..16 are the block counter.
    for (dst, src) in iv.iter_mut().take(14).zip(master_salt) {
        *dst = *src;
    }
    // label || (index DIV kdr = 0^48), right-aligned on the 112-bit salt: byte 7.
    if let Some(b) = iv.get_mut(7) {
        *b ^= label as u8;
    }
    out.fill(0);
    aes_cm_apply(&Aes128Enc::new(master_key.into()), &iv, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3711 Appendix B.2: the AES-CM keystream for SSRC 0, index 0.
    #[test]
    fn rfc3711_b2_aes_cm_keystream() {
        let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
        // Session salt F0F1...FCFD, "already shifted": the IV is salt * 2^16.
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();

        // Keystream segment length: 1044512 octets (65282 AES blocks).
        let mut keystream = vec![0u8; 1_044_512];
        aes_cm_apply(&Aes128Enc::new((&key).into()), &iv, &mut keystream);

        assert_eq!(
            &keystream[..48],
            &hex("E03EAD0935C95E80E166B16DD92B4EB4
                  D23513162B02D0F72A43A2FE4A5F97AB
                  41E95B3BB0A2E8DD477901E4FCA894C0")[..]
        );
        // Counters ...FEFF, ...FF00, ...FF01: the last three blocks of the segment.
        assert_eq!(
            &keystream[keystream.len() - 48..],
            &hex("EC8CDF7398607CB0F2D21675EA9EA1E4
                  362B7C3C6773516318A077D7FC5073AE
                  6A2CC3787889374FBEB4C81B17BA6C44")[..]
        );
        // (The packet IV construction for AES-CM is webrtc-srtp's; the libsrtp interop
        // tests check it end to end.)
    }

    /// RFC 3711 Appendix B.3: key derivation with kdr = 0.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let master_key: [u8; 16] = hex("E1F97A0D3E018BE0D64FA32C06DE4139").try_into().unwrap();
        let master_salt = hex("0EC675AD498AFEEBB6960B3AABE6");

        let mut cipher_key = [0u8; 16];
        derive(
            &master_key,
            &master_salt,
            Label::RtpEncryption,
            &mut cipher_key,
        );
        assert_eq!(cipher_key[..], hex("C61E7A93744F39EE10734AFE3FF7A087")[..]);

        let mut cipher_salt = [0u8; 14];
        derive(&master_key, &master_salt, Label::RtpSalt, &mut cipher_salt);
        assert_eq!(cipher_salt[..], hex("30CBBC08863D8C85D49DB34A9AE1")[..]);

        // The RFC derives a 94-octet auth key; HMAC-SHA1 uses its first 20 bytes.
        let mut auth_key = [0u8; 94];
        derive(
            &master_key,
            &master_salt,
            Label::RtpAuthentication,
            &mut auth_key,
        );
        assert_eq!(
            auth_key[..],
            hex(
                "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
                 E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
                 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
            )[..]
        );
    }

    /// The 12-byte GCM master salt is right-padded with zeros: deriving with it equals
    /// deriving with the same salt followed by two zero bytes.
    #[test]
    fn gcm_salt_is_right_padded() {
        let key = [7u8; 16];
        let salt12 = [0x5au8; 12];
        let mut salt14 = [0u8; 14];
        salt14[..12].copy_from_slice(&salt12);
        for label in [Label::RtpEncryption, Label::RtpSalt, Label::RtcpSalt] {
            let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
            derive(&key, &salt12, label, &mut a);
            derive(&key, &salt14, label, &mut b);
            assert_eq!(a, b);
        }
    }
}
