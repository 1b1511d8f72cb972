//! The connection-sync datagram: xlb's own format (not IPVS's: IPVS names real servers by
//! address too, but carries no TCP state of ours, no remaining timeout in our units and
//! no authentication). Pure: `decode(&[u8])` never trusts a length it has not checked,
//! `encode` writes what `decode` reads; byte fixtures in the tests below.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  magic "XLBS" (0x584c4253)                     |
//! +---------------+---------------+---------------+---------------+
//! |  version (1)  |     kind      |    sync id    |  flags (HMAC) |
//! +---------------+---------------+---------------+---------------+
//! |                          sequence                             |
//! +-------------------------------+-------------------------------+
//! |            count              |       reserved (0)            |
//! +-------------------------------+-------------------------------+
//! |  kind ENTRIES: `count` entries; kind DIGEST: 32-byte digest;  |
//! |  kind BULK_REQUEST: nothing                                   |
//! +---------------------------------------------------------------+
//! |  HMAC-SHA256 of everything before it (32 bytes, flag HMAC)    |
//! +---------------------------------------------------------------+
//!
//! An entry (28 bytes for IPv4, 64 for IPv6):
//! +---------------+---------------+---------------+---------------+
//! | family (4|6)  |   protocol    |  TCP state    | entry flags   |
//! +---------------+---------------+---------------+---------------+
//! |              remaining timeout, seconds                       |
//! +-------------------------------+-------------------------------+
//! |        virtual port           |         client port           |
//! +-------------------------------+-------------------------------+
//! |         real port             |         reserved (0)          |
//! +-------------------------------+-------------------------------+
//! | virtual address, client address, real address (4 or 16 each)  |
//! +---------------------------------------------------------------+
//! ```
//! Entry flag TEMPLATE: a persistence template (client address -> real server for the
//! service; the client port is 0). All integers are big-endian.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const MAGIC: [u8; 4] = *b"XLBS";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 16;
pub const HMAC_LEN: usize = 32;
pub const DIGEST_LEN: usize = 32;
/// Header flag: an HMAC-SHA256 trailer follows the payload.
pub const FLAG_HMAC: u8 = 0x01;
/// Entry flag: a persistence template.
pub const ENTRY_TEMPLATE: u8 = 0x01;
const ENTRY_FIXED: usize = 16;

/// What a datagram carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// New, changed or refreshed connection entries (master to backups).
    Entries = 1,
    /// "Send me your whole table" (a backup that just started).
    BulkRequest = 2,
    /// The sender's digest of its mh/sh scheduling tables (both ways).
    Digest = 3,
}

impl Kind {
    fn of(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Entries),
            2 => Some(Self::BulkRequest),
            3 => Some(Self::Digest),
            _ => None,
        }
    }
}

/// The fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub sync_id: u8,
    pub flags: u8,
    pub sequence: u32,
    pub count: u16,
}

/// One connection (or persistence template) as directors exchange it: the real server
/// by address and port, because real-server indexes differ between directors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub protocol: u8,
    /// `lb_common::CONN_*`.
    pub state: u8,
    pub flags: u8,
    pub remaining_s: u32,
    pub virtual_service: SocketAddr,
    /// Port 0 for a template.
    pub client: SocketAddr,
    pub real: SocketAddr,
}

impl Entry {
    /// Bytes this entry takes on the wire.
    pub fn wire_len(&self) -> usize {
        ENTRY_FIXED
            + 3 * if self.virtual_service.is_ipv4() {
                4
            } else {
                16
            }
    }

    pub fn is_template(&self) -> bool {
        self.flags & ENTRY_TEMPLATE != 0
    }
}

/// A decoded datagram (HMAC checked separately: [`signed_part`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub header: Header,
    pub entries: Vec<Entry>,
    pub digest: Option<[u8; DIGEST_LEN]>,
    /// The HMAC trailer, when the header's flag says there is one.
    pub mac: Option<[u8; HMAC_LEN]>,
}

/// Why a datagram was refused: each is a counter of `xlb status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than its header or than its count says")]
    Truncated,
    #[error("not an xlb sync datagram (magic)")]
    BadMagic,
    #[error("unsupported version")]
    BadVersion,
    #[error("unknown kind")]
    BadKind,
    #[error("malformed entry (family, ports or addresses)")]
    BadEntry,
    #[error("bytes after the last entry")]
    TrailingBytes,
}

impl DecodeError {
    /// The counter name.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::BadMagic => "bad_magic",
            Self::BadVersion => "bad_version",
            Self::BadKind => "bad_kind",
            Self::BadEntry => "bad_entry",
            Self::TrailingBytes => "trailing_bytes",
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes a datagram. Every length is checked before it is used.
pub fn decode(b: &[u8]) -> Result<Datagram, DecodeError> {
    if b.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    if b[0..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if b[4] != VERSION {
        return Err(DecodeError::BadVersion);
    }
    let kind = Kind::of(b[5]).ok_or(DecodeError::BadKind)?;
    let header = Header {
        kind,
        sync_id: b[6],
        flags: b[7],
        sequence: be32(b, 8),
        count: be16(b, 12),
    };
    let (body, mac) = if header.flags & FLAG_HMAC != 0 {
        if b.len() < HEADER_LEN + HMAC_LEN {
            return Err(DecodeError::Truncated);
        }
        let (body, mac) = b.split_at(b.len() - HMAC_LEN);
        (&body[HEADER_LEN..], Some(mac.try_into().expect("32 bytes")))
    } else {
        (&b[HEADER_LEN..], None)
    };
    let mut entries = Vec::new();
    let mut digest = None;
    match kind {
        Kind::Entries => {
            let mut rest = body;
            for _ in 0..header.count {
                let (e, used) = decode_entry(rest)?;
                entries.push(e);
                rest = &rest[used..];
            }
            if !rest.is_empty() {
                return Err(DecodeError::TrailingBytes);
            }
        }
        Kind::BulkRequest => {
            if !body.is_empty() {
                return Err(DecodeError::TrailingBytes);
            }
        }
        Kind::Digest => {
            if body.len() < DIGEST_LEN {
                return Err(DecodeError::Truncated);
            }
            if body.len() > DIGEST_LEN {
                return Err(DecodeError::TrailingBytes);
            }
            digest = Some(body.try_into().expect("32 bytes"));
        }
    }
    Ok(Datagram {
        header,
        entries,
        digest,
        mac,
    })
}

/// The bytes an HMAC covers (everything before the trailer), when `b` has one.
pub fn signed_part(b: &[u8]) -> Option<(&[u8], &[u8])> {
    if b.len() >= HEADER_LEN + HMAC_LEN && b[7] & FLAG_HMAC != 0 {
        Some(b.split_at(b.len() - HMAC_LEN))
    } else {
        None
    }
}

fn decode_entry(b: &[u8]) -> Result<(Entry, usize), DecodeError> {
    if b.len() < ENTRY_FIXED {
        return Err(DecodeError::Truncated);
    }
    let alen = match b[0] {
        4 => 4,
        6 => 16,
        _ => return Err(DecodeError::BadEntry),
    };
    let len = ENTRY_FIXED + 3 * alen;
    if b.len() < len {
        return Err(DecodeError::Truncated);
    }
    if be16(b, 14) != 0 {
        return Err(DecodeError::BadEntry);
    }
    let addr = |at: usize| -> IpAddr {
        if alen == 4 {
            IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
        } else {
            let o: [u8; 16] = b[at..at + 16].try_into().expect("16 bytes");
            IpAddr::V6(Ipv6Addr::from(o))
        }
    };
    let a = ENTRY_FIXED;
    let e = Entry {
        protocol: b[1],
        state: b[2],
        flags: b[3],
        remaining_s: be32(b, 4),
        virtual_service: SocketAddr::new(addr(a), be16(b, 8)),
        client: SocketAddr::new(addr(a + alen), be16(b, 10)),
        real: SocketAddr::new(addr(a + 2 * alen), be16(b, 12)),
    };
    // A real server port of 0 cannot be a forwarding target of ours.
    if e.real.port() == 0 || (e.client.port() == 0) != e.is_template() {
        return Err(DecodeError::BadEntry);
    }
    Ok((e, len))
}

/// Writes the header for `count` items of `kind` (HMAC flag when `signed`).
pub fn encode_header(
    out: &mut Vec<u8>,
    kind: Kind,
    sync_id: u8,
    sequence: u32,
    count: u16,
    signed: bool,
) {
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind as u8);
    out.push(sync_id);
    out.push(if signed { FLAG_HMAC } else { 0 });
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// Appends one entry. Addresses of mixed families are refused (`None`: nothing written).
pub fn encode_entry(out: &mut Vec<u8>, e: &Entry) -> Option<()> {
    let (v, c, r) = (e.virtual_service.ip(), e.client.ip(), e.real.ip());
    let family = match (v, c, r) {
        (IpAddr::V4(_), IpAddr::V4(_), IpAddr::V4(_)) => 4,
        (IpAddr::V6(_), IpAddr::V6(_), IpAddr::V6(_)) => 6,
        _ => return None,
    };
    out.extend_from_slice(&[family, e.protocol, e.state, e.flags]);
    out.extend_from_slice(&e.remaining_s.to_be_bytes());
    for p in [e.virtual_service.port(), e.client.port(), e.real.port(), 0] {
        out.extend_from_slice(&p.to_be_bytes());
    }
    for a in [v, c, r] {
        match a {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
    }
    Some(())
}

/// Sets the count of a datagram built with [`encode_header`].
pub fn set_count(out: &mut [u8], count: u16) {
    out[12..14].copy_from_slice(&count.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry4() -> Entry {
        Entry {
            protocol: 6,
            state: 0,
            flags: 0,
            remaining_s: 899,
            virtual_service: "198.18.0.100:80".parse().unwrap(),
            client: "198.18.0.1:40000".parse().unwrap(),
            real: "198.18.0.11:80".parse().unwrap(),
        }
    }

    /// One IPv4 entry, sequence 7, sync id 3, unsigned.
    const FIXTURE4: [u8; 44] = [
        b'X', b'L', b'B', b'S', 1, 1, 3, 0, // magic, version, kind, id, flags
        0, 0, 0, 7, 0, 1, 0, 0, // sequence, count, reserved
        4, 6, 0, 0, // family, TCP, ESTABLISHED, flags
        0, 0, 0x03, 0x83, // 899 s
        0, 80, 0x9c, 0x40, 0, 80, 0, 0, // ports
        198, 18, 0, 100, 198, 18, 0, 1, 198, 18, 0, 11,
    ];

    #[test]
    fn an_ipv4_entry_matches_its_fixture_both_ways() {
        let mut out = Vec::new();
        encode_header(&mut out, Kind::Entries, 3, 7, 1, false);
        encode_entry(&mut out, &entry4()).unwrap();
        assert_eq!(out, FIXTURE4);
        let d = decode(&FIXTURE4).unwrap();
        assert_eq!(d.header.sequence, 7);
        assert_eq!(d.header.sync_id, 3);
        assert_eq!(d.entries, [entry4()]);
        assert_eq!(entry4().wire_len(), 28);
    }

    #[test]
    fn ipv6_entries_and_templates_round_trip() {
        let e6 = Entry {
            protocol: 17,
            state: 0,
            flags: ENTRY_TEMPLATE,
            remaining_s: 300,
            virtual_service: "[2001:db8::100]:53".parse().unwrap(),
            client: "[2001:db8::1]:0".parse().unwrap(),
            real: "[2001:db8::11]:53".parse().unwrap(),
        };
        let mut out = Vec::new();
        encode_header(&mut out, Kind::Entries, 0, 1, 2, false);
        encode_entry(&mut out, &e6).unwrap();
        encode_entry(&mut out, &entry4()).unwrap();
        assert_eq!(out.len(), HEADER_LEN + 64 + 28);
        assert_eq!(decode(&out).unwrap().entries, [e6, entry4()]);
    }

    #[test]
    fn lengths_are_never_trusted() {
        // Every truncation of a valid datagram is refused, none panics.
        for n in 0..FIXTURE4.len() {
            assert_eq!(decode(&FIXTURE4[..n]), Err(DecodeError::Truncated), "{n}");
        }
        // A count larger than the entries present.
        let mut b = FIXTURE4;
        b[13] = 200;
        assert_eq!(decode(&b), Err(DecodeError::Truncated));
        // A count smaller: trailing bytes.
        b[13] = 0;
        assert_eq!(decode(&b), Err(DecodeError::TrailingBytes));
        let mut b = FIXTURE4;
        b[16] = 5;
        assert_eq!(decode(&b), Err(DecodeError::BadEntry), "family 5");
        let mut b = FIXTURE4;
        b[0] = b'Y';
        assert_eq!(decode(&b), Err(DecodeError::BadMagic));
        let mut b = FIXTURE4;
        b[4] = 2;
        assert_eq!(decode(&b), Err(DecodeError::BadVersion));
        let mut b = FIXTURE4;
        b[5] = 9;
        assert_eq!(decode(&b), Err(DecodeError::BadKind));
        let mut b = FIXTURE4;
        b[29] = 0; // real port 0
        assert_eq!(decode(&b), Err(DecodeError::BadEntry));
        // An HMAC flag on a datagram too short for the trailer.
        let mut b = FIXTURE4;
        b[7] = FLAG_HMAC;
        assert_eq!(decode(&b[..40]), Err(DecodeError::Truncated));
    }

    #[test]
    fn control_datagrams_have_exact_bodies() {
        let mut out = Vec::new();
        encode_header(&mut out, Kind::BulkRequest, 1, 2, 0, false);
        assert_eq!(decode(&out).unwrap().header.kind, Kind::BulkRequest);
        out.push(0);
        assert_eq!(decode(&out), Err(DecodeError::TrailingBytes));
        let mut out = Vec::new();
        encode_header(&mut out, Kind::Digest, 1, 2, 0, false);
        out.extend_from_slice(&[0xab; DIGEST_LEN]);
        assert_eq!(decode(&out).unwrap().digest, Some([0xab; DIGEST_LEN]));
        assert_eq!(decode(&out[..40]), Err(DecodeError::Truncated));
    }

    /// What the fuzz target (`fuzz/fuzz_targets/sync_decode.rs`) checks, on random
    /// mutations of the fixtures: no panic, and what decodes re-encodes to the same.
    #[test]
    fn mutated_datagrams_never_panic_and_round_trip() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        let mut signed = FIXTURE4.to_vec();
        signed[7] = FLAG_HMAC;
        signed.extend_from_slice(&[7; HMAC_LEN]);
        let mut accepted = 0;
        for i in 0..50_000 {
            let mut b = if i % 2 == 0 {
                FIXTURE4.to_vec()
            } else {
                signed.clone()
            };
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..b.len());
                b[at] = rng.random();
            }
            if rng.random_bool(0.1) {
                b.truncate(rng.random_range(0..b.len()));
            }
            let Ok(d) = decode(&b) else { continue };
            accepted += 1;
            let h = d.header;
            let mut again = Vec::new();
            encode_header(
                &mut again,
                h.kind,
                h.sync_id,
                h.sequence,
                h.count,
                h.flags & FLAG_HMAC != 0,
            );
            for e in &d.entries {
                encode_entry(&mut again, e).expect("a decoded entry has one family");
            }
            if let Some(digest) = d.digest {
                again.extend_from_slice(&digest);
            }
            if let Some(mac) = d.mac {
                again.extend_from_slice(&mac);
            }
            let back = decode(&again).expect("re-encoded datagram decodes");
            assert_eq!(
                (back.entries, back.digest, back.mac),
                (d.entries, d.digest, d.mac)
            );
        }
        assert!(
            accepted > 1000,
            "the mutations reach the entry decoder: {accepted}"
        );
    }

    #[test]
    fn mixed_families_are_not_encoded() {
        let mut e = entry4();
        e.real = "[2001:db8::11]:80".parse().unwrap();
        let mut out = Vec::new();
        assert_eq!(encode_entry(&mut out, &e), None);
        assert!(out.is_empty());
    }
}
