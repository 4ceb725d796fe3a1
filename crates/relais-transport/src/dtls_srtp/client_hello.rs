//! Reads the SRTP protection profiles a DTLS ClientHello offers (RFC 5764 `use_srtp`), so
//! the node as DTLS server can choose by its own preference.
//!
//! The `dtls` crate's server takes the client's first profile it supports, and browsers list
//! AES_CM_128_HMAC_SHA1_80 before AEAD_AES_128_GCM (Chromium does): every browser session
//! would use the slower profile. Knowing the offer, the server is configured with the one
//! profile it prefers among those offered.

/// DTLS record content type: handshake.
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type: ClientHello.
const CLIENT_HELLO: u8 = 1;
/// TLS extension type `use_srtp`.
const USE_SRTP: u16 = 14;
/// DTLS record header: type, version, epoch, sequence number, length.
const RECORD_HEADER_LEN: usize = 13;
/// DTLS handshake header: type, length, message sequence, fragment offset and length.
const HANDSHAKE_HEADER_LEN: usize = 12;

/// A cursor over a byte slice; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes(b.try_into().ok()?))
    }

    fn u24(&mut self) -> Option<usize> {
        let [a, b, c] = <[u8; 3]>::try_from(self.take(3)?).ok()?;
        Some(usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c))
    }

    /// A length-prefixed block whose length field has `len_bytes` bytes.
    fn block(&mut self, len_bytes: usize) -> Option<&'a [u8]> {
        let len = match len_bytes {
            1 => usize::from(self.u8()?),
            _ => usize::from(self.u16()?),
        };
        self.take(len)
    }
}

/// Largest ClientHello reassembled (Chromium's, with a post-quantum key share, is about
/// 1.4 kB and comes in two fragments).
const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// The client's first flight, reassembled from its handshake fragments.
#[derive(Debug, Default)]
pub(crate) struct ClientHelloAssembly {
    body: Vec<u8>,
    filled: Vec<bool>,
    missing: usize,
    started: bool,
    failed: bool,
}

impl ClientHelloAssembly {
    /// Feeds one datagram of the client's; returns whether the ClientHello is complete.
    /// Anything that is not a ClientHello fragment of a sane size ends the attempt (then
    /// [`ClientHelloAssembly::offered_srtp_profiles`] answers `None`).
    pub(crate) fn push(&mut self, datagram: &[u8]) -> bool {
        if self.failed {
            return false;
        }
        let mut records = Reader(datagram);
        while !records.0.is_empty() && !self.failed {
            if self.push_record(&mut records).is_none() {
                self.failed = true;
            }
        }
        self.is_complete()
    }

    /// Whether every byte of the ClientHello arrived.
    pub(crate) fn is_complete(&self) -> bool {
        self.started && self.missing == 0 && !self.failed
    }

    /// Whether the attempt was given up.
    pub(crate) fn has_failed(&self) -> bool {
        self.failed
    }

    fn push_record(&mut self, records: &mut Reader<'_>) -> Option<()> {
        let header = records.take(RECORD_HEADER_LEN)?;
        if header.first() != Some(&CONTENT_HANDSHAKE) {
            return None;
        }
        let record_len = usize::from(u16::from_be_bytes(header.get(11..13)?.try_into().ok()?));
        let mut handshake = Reader(records.take(record_len)?);
        while !handshake.0.is_empty() {
            let mut header = Reader(handshake.take(HANDSHAKE_HEADER_LEN)?);
            if header.u8()? != CLIENT_HELLO {
                return None;
            }
            let length = header.u24()?;
            let _message_seq = header.u16()?;
            let offset = header.u24()?;
            let fragment_len = header.u24()?;
            let fragment = handshake.take(fragment_len)?;
            if length > MAX_CLIENT_HELLO {
                return None;
            }
            if !self.started {
                self.started = true;
                self.body = vec![0; length];
                self.filled = vec![false; length];
                self.missing = length;
            } else if length != self.body.len() {
                return None;
            }
            let end = offset.checked_add(fragment_len)?;
            self.body.get_mut(offset..end)?.copy_from_slice(fragment);
            for filled in self.filled.get_mut(offset..end)? {
                if !*filled {
                    *filled = true;
                    self.missing -= 1;
                }
            }
        }
        Some(())
    }

    /// The protection profile ids (IANA numbers, client's order) of the complete
    /// ClientHello's `use_srtp` extension.
    pub(crate) fn offered_srtp_profiles(&self) -> Option<Vec<u16>> {
        if !self.is_complete() {
            return None;
        }
        let mut body = Reader(&self.body);
        body.take(2 + 32)?; // client_version, random
        body.block(1)?; // session_id
        body.block(1)?; // cookie
        body.block(2)?; // cipher_suites
        body.block(1)?; // compression_methods
        let mut extensions = Reader(body.block(2)?);
        while !extensions.0.is_empty() {
            let kind = extensions.u16()?;
            let data = extensions.block(2)?;
            if kind == USE_SRTP {
                let mut profiles = Reader(Reader(data).block(2)?);
                let mut ids = Vec::new();
                while !profiles.0.is_empty() {
                    ids.push(profiles.u16()?);
                }
                return Some(ids);
            }
        }
        None
    }
}

/// The profiles offered by a ClientHello that is whole in `datagram` (tests and the
/// simple case).
#[cfg(test)]
fn offered_srtp_profiles(datagram: &[u8]) -> Option<Vec<u16>> {
    let mut assembly = ClientHelloAssembly::default();
    assembly.push(datagram);
    assembly.offered_srtp_profiles()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A DTLS 1.2 ClientHello record with `extensions` (type, data) pairs.
    fn client_hello(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut ext = Vec::new();
        for (kind, data) in extensions {
            ext.extend_from_slice(&kind.to_be_bytes());
            ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
            ext.extend_from_slice(data);
        }
        let mut body = vec![0xfe, 0xfd];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.push(0); // cookie
        body.extend_from_slice(&[0, 2, 0xc0, 0x2b]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let len = body.len() as u32;
        let mut handshake = vec![CLIENT_HELLO];
        handshake.extend_from_slice(&len.to_be_bytes()[1..]);
        handshake.extend_from_slice(&[0, 0]); // message seq
        handshake.extend_from_slice(&[0, 0, 0]); // offset
        handshake.extend_from_slice(&len.to_be_bytes()[1..]);
        handshake.extend_from_slice(&body);
        let mut record = vec![CONTENT_HANDSHAKE, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
        record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
        record.extend_from_slice(&handshake);
        record
    }

    fn use_srtp(profiles: &[u16]) -> Vec<u8> {
        let mut data = ((profiles.len() * 2) as u16).to_be_bytes().to_vec();
        for p in profiles {
            data.extend_from_slice(&p.to_be_bytes());
        }
        data.push(0); // no MKI
        data
    }

    #[test]
    fn reads_the_offered_profiles_in_the_clients_order() {
        let hello = client_hello(&[(10, vec![0, 2, 0, 23]), (USE_SRTP, use_srtp(&[1, 8, 7]))]);
        assert_eq!(offered_srtp_profiles(&hello), Some(vec![1, 8, 7]));
    }

    #[test]
    fn no_extension_fragment_or_other_message_gives_none() {
        assert_eq!(
            offered_srtp_profiles(&client_hello(&[(10, vec![0, 0])])),
            None
        );
        let mut fragment = client_hello(&[(USE_SRTP, use_srtp(&[7]))]);
        fragment[RECORD_HEADER_LEN + 8] = 1; // fragment offset 1
        assert_eq!(offered_srtp_profiles(&fragment), None);
        let mut other = client_hello(&[(USE_SRTP, use_srtp(&[7]))]);
        other[RECORD_HEADER_LEN] = 2; // ServerHello
        assert_eq!(offered_srtp_profiles(&other), None);
    }

    /// Splits a one-record ClientHello into two records (datagrams) at `at` bytes of the
    /// message, as Chromium's 1.4 kB ClientHello comes.
    fn fragmented(hello: &[u8], at: usize) -> (Vec<u8>, Vec<u8>) {
        let header = &hello[RECORD_HEADER_LEN..RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN];
        let body = &hello[RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN..];
        let piece = |offset: usize, part: &[u8]| {
            let mut handshake = header[..6].to_vec(); // type, length, message seq
            handshake.extend_from_slice(&(offset as u32).to_be_bytes()[1..]);
            handshake.extend_from_slice(&(part.len() as u32).to_be_bytes()[1..]);
            handshake.extend_from_slice(part);
            let mut record = hello[..11].to_vec();
            record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
            record.extend_from_slice(&handshake);
            record
        };
        (piece(0, &body[..at]), piece(at, &body[at..]))
    }

    #[test]
    fn a_fragmented_client_hello_is_reassembled() {
        let hello = client_hello(&[(10, vec![0; 1200]), (USE_SRTP, use_srtp(&[1, 7]))]);
        let (first, second) = fragmented(&hello, 1000);
        let mut assembly = ClientHelloAssembly::default();
        assert!(!assembly.push(&first));
        assert_eq!(assembly.offered_srtp_profiles(), None);
        assert!(assembly.push(&second));
        assert_eq!(assembly.offered_srtp_profiles(), Some(vec![1, 7]));
        // In the other order too.
        let mut assembly = ClientHelloAssembly::default();
        assert!(!assembly.push(&second));
        assert!(assembly.push(&first));
        assert_eq!(assembly.offered_srtp_profiles(), Some(vec![1, 7]));
        assert!(!assembly.has_failed());
    }

    #[test]
    fn truncated_input_never_panics() {
        let hello = client_hello(&[(USE_SRTP, use_srtp(&[1, 7]))]);
        for len in 0..hello.len() {
            assert_eq!(offered_srtp_profiles(&hello[..len]), None, "{len}");
        }
        assert_eq!(offered_srtp_profiles(&[]), None);
        assert_eq!(offered_srtp_profiles(&[0xff; 64]), None);
    }
}
