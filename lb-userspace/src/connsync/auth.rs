//! Datagram authentication: HMAC-SHA256 over the whole datagram, keyed by `sync.key` or
//! `sync.key_file`. `ring` because it is already in the build (rustls's provider) and
//! its `hmac::verify` compares in constant time.

use ring::hmac;

use super::wire::HMAC_LEN;

/// The shared key of the directors.
#[derive(Clone)]
pub struct Key(hmac::Key);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// Appends the HMAC of `datagram` to it.
    pub fn sign(&self, datagram: &mut Vec<u8>) {
        let tag = hmac::sign(&self.0, datagram);
        debug_assert_eq!(tag.as_ref().len(), HMAC_LEN);
        datagram.extend_from_slice(tag.as_ref());
    }

    /// Whether `mac` is the HMAC of `signed`.
    pub fn verify(&self, signed: &[u8], mac: &[u8]) -> bool {
        hmac::verify(&self.0, signed, mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connsync::wire::{Kind, encode_header, signed_part};

    #[test]
    fn a_signed_datagram_verifies_only_with_its_key_and_bytes() {
        let k = Key::new(b"secret");
        let mut d = Vec::new();
        encode_header(&mut d, Kind::BulkRequest, 0, 1, 0, true);
        k.sign(&mut d);
        let (body, mac) = signed_part(&d).unwrap();
        assert!(k.verify(body, mac));
        assert!(!Key::new(b"other").verify(body, mac));
        let mut forged = d.clone();
        forged[8] ^= 1;
        let (body, mac) = signed_part(&forged).unwrap();
        assert!(!k.verify(body, mac));
    }
}
