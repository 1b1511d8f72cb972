//! VRRP advertisements on the wire: a pure codec (no socket, no clock, no state) to read
//! next to RFC 3768 (VRRPv2) and RFC 9568 (VRRPv3, which obsoletes RFC 5798).
//!
//! A message here is the VRRP message alone, from the Version field on: the IP header is
//! the kernel's (raw `IPPROTO_VRRP` socket), so the caller passes the IP source and
//! destination, which the checksum may cover, and the TTL / hop limit it read from the
//! ancillary data.
//!
//! - [`Advert::encode`] builds a message; [`Advert::check`] says whether an advertisement
//!   can be put on the wire as it is (family, address count, interval range).
//! - [`decode`] checks what the message itself can prove (version, type, length against
//!   the address count, address family against the IP header, checksum) and fails with a
//!   [`DecodeError`] whose [`reason`](DecodeError::reason) is a counter label.
//! - [`check_received`] is the rest of the receive checks of RFC 3768 7.1 / RFC 9568 7.1,
//!   those that need the local instance ([`LocalParams`]): TTL 255, version, VRID,
//!   v2 authentication, v2 interval. It fails with a [`RejectReason`].
//! - [`addresses_differ`] is the "MAY verify the address list" check: a differing list is
//!   logged by the caller, the advertisement is still processed (RFC 9568 7.1).
//!
//! # Checksums
//!
//! Each is the Internet checksum (RFC 1071) of the message with its checksum field
//! zeroed, but they do not cover the same bytes:
//!
//! | message | covers | |
//! |---|---|---|
//! | v2 | the message, authentication data included | RFC 3768 5.3.8 |
//! | v3 over IPv6 | the IPv6 pseudo-header (RFC 8200 8.1, next header 112), then the message | RFC 9568 5.2.8 |
//! | v3 over IPv4 | the message only ([`V3Checksum::MessageOnly`]) | RFC 9568 5.2.8; Cisco, Juniper |
//! | v3 over IPv4 | an IPv4 pseudo-header, then the message ([`V3Checksum::PseudoHeader`]) | RFC 5798's ambiguous text as keepalived reads it (its default) |
//!
//! The sender of v3 over IPv4 picks a form (to interoperate with keepalived, which
//! rejects the other form unless configured otherwise, the default is `PseudoHeader`);
//! [`decode`] accepts either and reports in [`Decoded::checksum`] which one verified.
//!
//! ```text
//! IPv4 pseudo-header (as RFC 768 / 793)      IPv6 pseudo-header (RFC 8200 8.1)
//! +--------+--------+--------+--------+      +-----------------------------------+
//! |          Source Address           |      |     Source Address (16 octets)    |
//! +--------+--------+--------+--------+      +-----------------------------------+
//! |        Destination Address        |      |  Destination Address (16 octets)  |
//! +--------+--------+--------+--------+      +-----------------------------------+
//! |  zero  | 112    |  VRRP length    |      |   VRRP message length (32 bits)   |
//! +--------+--------+--------+--------+      +--------+--------+--------+--------+
//!                                            |          zero            |  112   |
//!                                            +--------+--------+--------+--------+
//! ```
//!
//! # Where xlb is stricter or looser than its references
//!
//! - The length must be exactly what the address count implies: the caller passes the IP
//!   payload as delimited by the IP header's total length, which leaves out any Ethernet
//!   padding, so trailing bytes are an error ([`DecodeError::BadLength`]).
//! - A count of zero addresses is accepted (RFC 9568 says the minimum is 1; rejecting it
//!   would buy nothing). The v3 "Rsvd" bits are ignored, as RFC 9568 5.2.6 says; so is the
//!   v2 authentication data when the authentication type is 0 (RFC 3768 5.3.10).
//! - TTL / hop limit 255 is always checked ([`check_received`]), unlike holo-vrrp.

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// IP protocol number of VRRP, both versions (the pseudo-headers' "next header").
pub const IPPROTO_VRRP: u8 = 112;
/// The TTL / hop limit advertisements are sent with, and must arrive with: a packet that
/// crossed a router has a lower one (RFC 3768 7.1, RFC 9568 7.1).
pub const TTL: u8 = 255;
/// The VRRP IPv4 multicast group (RFC 3768 5.2.2, RFC 9568 5.1.1.2).
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The VRRP IPv6 multicast group (RFC 9568 5.1.2.2).
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Octets before the first address: version/type, VRID, priority, count, two octets of
/// v2 auth type + interval or v3 rsvd + interval, checksum.
pub const HEADER_LEN: usize = 8;
/// Octets of v2 authentication data after the addresses (RFC 3768 5.3.10).
pub const V2_AUTH_LEN: usize = 8;
/// Largest v3 Max Advertise Interval: 12 bits of centiseconds, 40.95 s.
pub const V3_MAX_INTERVAL_CS: u16 = 0x0fff;

/// The only VRRP packet type (RFC 3768 5.3.2, RFC 9568 5.2.2).
const TYPE_ADVERTISEMENT: u8 = 1;
/// Byte offset of the checksum.
const CHECKSUM_AT: usize = 6;
/// v2 Auth Type values (RFC 2338 5.3.6; RFC 3768 keeps only 0, keepalived still speaks 1).
const AUTH_NONE: u8 = 0;
const AUTH_PASS: u8 = 1;

//
// VRRPv2 advertisement, RFC 3768 5.1
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |   Auth Type   |   Adver Int   |          Checksum             |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                         IP Address (1)                        |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                            .                                  |
// |                            .                                  |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                         IP Address (n)                        |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                     Authentication Data (1)                   |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                     Authentication Data (2)                   |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Version 2, Type 1. Adver Int in seconds (default 1). Auth Type 0: none (data zero on
// send, ignored on receipt); 1: plain-text password, NUL-padded to 8 octets (RFC 2338,
// keepalived `auth_type PASS`); 2: IPsec AH (the data is not here; xlb does not speak it).
//
// VRRPv3 advertisement, RFC 9568 5.1 (same as RFC 5798)
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |Version| Type  | Virtual Rtr ID|   Priority    |IPvX Addr Count|
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |(rsvd) |     Max Adver Int     |          Checksum             |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                                                               |
// +                                                               +
// |                       IPvX Address(es)                        |
// +                                                               +
// |                                                               |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Version 3, Type 1. Max Adver Int: 12 bits of centiseconds (default 100). Addresses are
// all IPv4 (4 octets) or all IPv6 (16 octets), the family of the IP header. No
// authentication.

/// VRRP version: the high nibble of the first octet. The state machine uses it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in seconds, optional plain-text password.
    V2,
    /// RFC 9568: IPv4 or IPv6, interval in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The number on the wire: 2 or 3.
    pub const fn number(self) -> u8 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }
}

/// v2 authentication (Auth Type and Authentication Data). VRRPv3 has none: a v3
/// [`Advert`] always has [`Auth::None`].
///
/// `Debug` does not print passwords.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Auth Type 0.
    None,
    /// Auth Type 1: a password of up to 8 octets, NUL-padded (keepalived `auth_type PASS`).
    Pass([u8; V2_AUTH_LEN]),
    /// Any other Auth Type as received, 2 (IPsec AH) included, with the 8 octets that
    /// followed the addresses: kept so that [`check_received`] can reject it as a type
    /// mismatch with the type in the log.
    Other {
        /// The Auth Type octet.
        auth_type: u8,
        /// The Authentication Data.
        data: [u8; V2_AUTH_LEN],
    },
}

impl Auth {
    /// `Auth::Pass` with `password` NUL-padded to 8 octets; `None` if it is longer (where
    /// keepalived truncates with a warning, the configuration should refuse it).
    pub fn pass(password: &[u8]) -> Option<Self> {
        let mut data = [0; V2_AUTH_LEN];
        data.get_mut(..password.len())?.copy_from_slice(password);
        Some(Self::Pass(data))
    }

    /// The Auth Type octet.
    pub const fn auth_type(&self) -> u8 {
        match self {
            Self::None => AUTH_NONE,
            Self::Pass(_) => AUTH_PASS,
            Self::Other { auth_type, .. } => *auth_type,
        }
    }

    /// The Authentication Data octets as sent.
    const fn data(&self) -> [u8; V2_AUTH_LEN] {
        match self {
            Self::None => [0; V2_AUTH_LEN],
            Self::Pass(data) | Self::Other { data, .. } => *data,
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Pass(_) => f.write_str("Pass(<redacted>)"),
            Self::Other { auth_type, .. } => f
                .debug_struct("Other")
                .field("auth_type", auth_type)
                .finish_non_exhaustive(),
        }
    }
}

/// The advertisement interval in the unit of its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    /// v2 Adver Int: seconds.
    Secs(u8),
    /// v3 Max Adver Int: centiseconds, at most [`V3_MAX_INTERVAL_CS`].
    Centisecs(u16),
}

impl Interval {
    /// The interval as a duration.
    pub fn duration(self) -> Duration {
        match self {
            Self::Secs(s) => Duration::from_secs(u64::from(s)),
            Self::Centisecs(cs) => Duration::from_millis(u64::from(cs) * 10),
        }
    }

    /// The v2 Adver Int octet. Only [`Interval::Secs`] is valid for v2 ([`Advert::check`]);
    /// centiseconds are rounded down, saturating, so that a release build never panics.
    fn v2_wire(self) -> u8 {
        match self {
            Self::Secs(s) => s,
            Self::Centisecs(cs) => u8::try_from(cs / 100).unwrap_or(u8::MAX),
        }
    }

    /// The v3 Rsvd + Max Adver Int field (Rsvd zero). Only [`Interval::Centisecs`] up to
    /// [`V3_MAX_INTERVAL_CS`] is valid for v3 ([`Advert::check`]); anything else saturates.
    fn v3_wire(self) -> u16 {
        match self {
            Self::Secs(s) => u16::from(s).saturating_mul(100),
            Self::Centisecs(cs) => cs,
        }
        .min(V3_MAX_INTERVAL_CS)
    }
}

/// Which bytes a VRRPv3-over-IPv4 checksum covers (see the module documentation). For
/// other messages the form is fixed, and [`Decoded::checksum`] reports it as it is: v2
/// is `MessageOnly`, v3 over IPv6 is `PseudoHeader` (the IPv6 one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum V3Checksum {
    /// IPv4 pseudo-header (source, destination, zero, 112, VRRP length), then the
    /// message: keepalived's default.
    #[default]
    PseudoHeader,
    /// The message only: RFC 9568, Cisco, Juniper, and keepalived with
    /// `v3_checksum_as_v2`.
    MessageOnly,
}

/// One VRRP advertisement, either version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    /// 2 or 3.
    pub version: Version,
    /// Virtual Router ID, 1..=255 in configurations (0 decodes, and is nobody's).
    pub vrid: u8,
    /// 255: address owner; 1..=254: backup; 0: the master is resigning (RFC 9568 5.2.4).
    pub priority: u8,
    /// v2 authentication; always [`Auth::None`] in v3.
    pub auth: Auth,
    /// [`Interval::Secs`] in v2, [`Interval::Centisecs`] in v3.
    pub interval: Interval,
    /// The virtual addresses, all of the IP header's family (v2: IPv4 only). For IPv6,
    /// RFC 9568 wants the link-local one first; that is the sender's business.
    pub addresses: Vec<IpAddr>,
}

/// Why an [`Advert`] cannot go on the wire as it is ([`Advert::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The IP source and destination are not of one family.
    #[error("IP source {src} and destination {dst} are not of one address family")]
    FamilyMismatch {
        /// IP source.
        src: IpAddr,
        /// IP destination.
        dst: IpAddr,
    },
    /// VRRPv2 over IPv6.
    #[error("VRRPv2 is IPv4 only")]
    V2OverIpv6,
    /// An address of the other family than the IP header.
    #[error("virtual address {0} is not of the IP header's address family")]
    AddressFamily(IpAddr),
    /// More than 255 addresses.
    #[error("{0} virtual addresses: at most 255 fit in an advertisement")]
    TooManyAddresses(usize),
    /// A v2 interval not in seconds, or a v3 interval not in centiseconds or above
    /// [`V3_MAX_INTERVAL_CS`].
    #[error("advertisement interval {interval:?} cannot be sent in VRRPv{}", version.number())]
    Interval {
        /// The advertisement's version.
        version: Version,
        /// The interval that does not fit it.
        interval: Interval,
    },
    /// Authentication in a v3 advertisement.
    #[error("VRRPv3 has no authentication")]
    AuthInV3,
}

impl Advert {
    /// The advertisement interval as a duration.
    pub fn interval_duration(&self) -> Duration {
        self.interval.duration()
    }

    /// Whether [`encode`](Self::encode) can send this advertisement from `src` to `dst`
    /// faithfully. The configuration layer calls it once; `encode` only debug-asserts it.
    pub fn check(&self, src: IpAddr, dst: IpAddr) -> Result<(), EncodeError> {
        if src.is_ipv6() != dst.is_ipv6() {
            return Err(EncodeError::FamilyMismatch { src, dst });
        }
        if self.version == Version::V2 && src.is_ipv6() {
            return Err(EncodeError::V2OverIpv6);
        }
        if let Some(&a) = self.addresses.iter().find(|a| a.is_ipv6() != src.is_ipv6()) {
            return Err(EncodeError::AddressFamily(a));
        }
        if self.addresses.len() > usize::from(u8::MAX) {
            return Err(EncodeError::TooManyAddresses(self.addresses.len()));
        }
        let interval_ok = match (self.version, self.interval) {
            (Version::V2, Interval::Secs(_)) => true,
            (Version::V3, Interval::Centisecs(cs)) => cs <= V3_MAX_INTERVAL_CS,
            _ => false,
        };
        if !interval_ok {
            return Err(EncodeError::Interval {
                version: self.version,
                interval: self.interval,
            });
        }
        if self.version == Version::V3 && self.auth != Auth::None {
            return Err(EncodeError::AuthInV3);
        }
        Ok(())
    }

    /// The VRRP message (from the Version field on) to send from `src` to `dst`, checksum
    /// filled in. `v3_ipv4_checksum` matters only for v3 over IPv4 (see
    /// [`V3Checksum`]); v2 always covers the message only, v3 over IPv6 always the IPv6
    /// pseudo-header too.
    ///
    /// The advertisement should pass [`check`](Self::check) (debug builds assert it). If
    /// it does not, a release build still returns a well-formed message rather than
    /// panic: addresses of the other family are left out and only the first 255 sent, the
    /// interval is converted to the version's unit (saturating), v3 sends no
    /// authentication.
    pub fn encode(&self, src: IpAddr, dst: IpAddr, v3_ipv4_checksum: V3Checksum) -> Vec<u8> {
        debug_assert_eq!(
            self.check(src, dst),
            Ok(()),
            "encoding an invalid advertisement"
        );
        let ipv6 = src.is_ipv6();
        let addresses: Vec<IpAddr> = self
            .addresses
            .iter()
            .copied()
            .filter(|a| a.is_ipv6() == ipv6)
            .take(usize::from(u8::MAX))
            .collect();
        let count = u8::try_from(addresses.len()).unwrap_or(u8::MAX);

        let mut msg = Vec::with_capacity(message_len(self.version, ipv6, count));
        msg.push((self.version.number() << 4) | TYPE_ADVERTISEMENT);
        msg.extend_from_slice(&[self.vrid, self.priority, count]);
        match self.version {
            Version::V2 => msg.extend_from_slice(&[self.auth.auth_type(), self.interval.v2_wire()]),
            Version::V3 => msg.extend_from_slice(&self.interval.v3_wire().to_be_bytes()),
        }
        msg.extend_from_slice(&[0, 0]); // checksum, filled in below
        for a in addresses {
            match a {
                IpAddr::V4(a) => msg.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => msg.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            msg.extend_from_slice(&self.auth.data());
        }

        let form = checksum_form(self.version, ipv6, v3_ipv4_checksum);
        let checksum = !fold(checksum_start(form, src, dst, msg.len()) + sum_words(&msg));
        msg[CHECKSUM_AT..CHECKSUM_AT + 2].copy_from_slice(&checksum.to_be_bytes());
        msg
    }
}

/// A message that [`decode`] accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Its contents.
    pub advert: Advert,
    /// Which checksum verified: for v3 over IPv4 whichever form the sender used (both are
    /// tried, `PseudoHeader` first); v2 is always `MessageOnly`, v3 over IPv6 always
    /// `PseudoHeader`.
    pub checksum: V3Checksum,
}

/// Why [`decode`] rejected a message. [`reason`](Self::reason) is a counter label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer octets than the fixed header, or than the address count (and, in v2, the
    /// authentication data) need.
    #[error("truncated: {len} octets where {need} are needed")]
    Truncated {
        /// Octets received.
        len: usize,
        /// Octets the header says the message has (at least [`HEADER_LEN`]).
        need: usize,
    },
    /// A version other than 2 or 3.
    #[error("VRRP version {0} (xlb speaks 2 and 3)")]
    BadVersion(u8),
    /// A type other than 1 (advertisement).
    #[error("VRRP packet type {0} (1, advertisement, is the only one)")]
    BadType(u8),
    /// More octets than the address count (and, in v2, the authentication data) account
    /// for.
    #[error("{len} octets where the address count says {need}")]
    BadLength {
        /// Octets received.
        len: usize,
        /// Octets the header says the message has.
        need: usize,
    },
    /// The checksum verifies in no form this message may use.
    #[error("bad checksum")]
    BadChecksum,
    /// IP source and destination of different families, or VRRPv2 over IPv6.
    #[error("address family mismatch (IP source and destination, or VRRPv2 over IPv6)")]
    FamilyMismatch,
}

impl DecodeError {
    /// A short `snake_case` label for counters and logs.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::BadVersion(_) => "bad_version",
            Self::BadType(_) => "bad_type",
            Self::BadLength { .. } => "bad_length",
            Self::BadChecksum => "bad_checksum",
            Self::FamilyMismatch => "family_mismatch",
        }
    }
}

/// Parses one VRRP message (from the Version field on; exactly the IP payload) received
/// from `src` for `dst`, and verifies its checksum.
///
/// Checks, in this order: at least the fixed header; version 2 or 3; type 1; `src` and
/// `dst` of one family, and IPv4 if v2 (the address family of a v3 message is the IP
/// header's); length exactly what the address count implies; checksum, in either form
/// for v3 over IPv4. Never panics, whatever the input.
pub fn decode(bytes: &[u8], src: IpAddr, dst: IpAddr) -> Result<Decoded, DecodeError> {
    let truncated = |need| DecodeError::Truncated {
        len: bytes.len(),
        need,
    };
    let (hdr, body) = bytes
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(truncated(HEADER_LEN))?;
    let &[
        ver_type,
        vrid,
        priority,
        count,
        auth_or_rsvd,
        interval_lo,
        _,
        _,
    ] = hdr;
    let version = match ver_type >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        v => return Err(DecodeError::BadVersion(v)),
    };
    if ver_type & 0x0f != TYPE_ADVERTISEMENT {
        return Err(DecodeError::BadType(ver_type & 0x0f));
    }
    let ipv6 = src.is_ipv6();
    if dst.is_ipv6() != ipv6 || (version == Version::V2 && ipv6) {
        return Err(DecodeError::FamilyMismatch);
    }
    let need = message_len(version, ipv6, count);
    if bytes.len() < need {
        return Err(truncated(need));
    }
    if bytes.len() > need {
        return Err(DecodeError::BadLength {
            len: bytes.len(),
            need,
        });
    }

    let message_sum = sum_words(bytes);
    let verifies = |form| fold(checksum_start(form, src, dst, bytes.len()) + message_sum) == 0xffff;
    let checksum = match (version, ipv6) {
        (Version::V2, _) => V3Checksum::MessageOnly,
        (Version::V3, true) => V3Checksum::PseudoHeader,
        (Version::V3, false) if verifies(V3Checksum::PseudoHeader) => V3Checksum::PseudoHeader,
        (Version::V3, false) => V3Checksum::MessageOnly,
    };
    if !verifies(checksum) {
        return Err(DecodeError::BadChecksum);
    }

    let (addr_bytes, auth_bytes) = body
        .split_at_checked(need - HEADER_LEN - auth_len(version))
        .ok_or(truncated(need))?;
    let addresses = if ipv6 {
        addr_bytes
            .chunks_exact(16)
            .map(|c| {
                let mut octets = [0; 16];
                octets.copy_from_slice(c);
                IpAddr::V6(Ipv6Addr::from(octets))
            })
            .collect()
    } else {
        addr_bytes
            .chunks_exact(4)
            .map(|c| IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])))
            .collect()
    };
    let (auth, interval) = match version {
        Version::V2 => {
            let data = *auth_bytes
                .first_chunk::<V2_AUTH_LEN>()
                .ok_or(truncated(need))?;
            let auth = match auth_or_rsvd {
                AUTH_NONE => Auth::None,
                AUTH_PASS => Auth::Pass(data),
                auth_type => Auth::Other { auth_type, data },
            };
            (auth, Interval::Secs(interval_lo))
        }
        Version::V3 => {
            let field = u16::from_be_bytes([auth_or_rsvd, interval_lo]);
            (Auth::None, Interval::Centisecs(field & V3_MAX_INTERVAL_CS))
        }
    };
    Ok(Decoded {
        advert: Advert {
            version,
            vrid,
            priority,
            auth,
            interval,
            addresses,
        },
        checksum,
    })
}

/// What [`check_received`] compares a received advertisement with: the local instance.
///
/// `Debug` does not print the password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LocalParams {
    /// Our VRRP version.
    pub version: Version,
    /// Our VRID.
    pub vrid: u8,
    /// v2 only: our password (`auth_type PASS`), NUL-padded to 8 octets (see
    /// [`Auth::pass`]); `None` for no authentication. Ignored in v3.
    pub auth: Option<[u8; V2_AUTH_LEN]>,
    /// v2 only: our advertisement interval in seconds, which a v2 advertisement must carry
    /// too. Ignored in v3, where the backup adopts the master's interval.
    pub v2_interval_s: u8,
}

impl fmt::Debug for LocalParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalParams")
            .field("version", &self.version)
            .field("vrid", &self.vrid)
            .field("auth", &self.auth.map(|_| "<redacted>"))
            .field("v2_interval_s", &self.v2_interval_s)
            .finish()
    }
}

/// Why [`check_received`] discarded a decoded advertisement. [`reason`](Self::reason) is a
/// counter label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// For another virtual router on the same link: not ours, not an error
    /// ([`is_error`](Self::is_error) is false).
    #[error("advertisement for VRID {0}, not ours")]
    OtherVrid(u8),
    /// TTL / hop limit not 255: sent from off-link, or by a broken peer.
    #[error("TTL / hop limit {0}, must be 255")]
    BadTtl(u8),
    /// A VRRP version other than ours.
    #[error("VRRPv{} advertisement, we speak VRRPv{}", received.number(), ours.number())]
    VersionMismatch {
        /// The advertisement's.
        received: Version,
        /// Ours.
        ours: Version,
    },
    /// v2 Auth Type other than ours (IPsec AH, type 2, is never ours).
    #[error("authentication type {received}, ours is {ours}")]
    AuthTypeMismatch {
        /// The advertisement's Auth Type.
        received: u8,
        /// Ours (0 or 1).
        ours: u8,
    },
    /// v2 password other than ours.
    #[error("wrong password")]
    BadPassword,
    /// v2 Adver Int other than ours.
    #[error("advertisement interval {received_s} s, ours is {ours_s} s")]
    IntervalMismatch {
        /// The advertisement's, in seconds.
        received_s: u8,
        /// Ours, in seconds.
        ours_s: u8,
    },
}

impl RejectReason {
    /// A short `snake_case` label for counters and logs.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::OtherVrid(_) => "other_vrid",
            Self::BadTtl(_) => "bad_ttl",
            Self::VersionMismatch { .. } => "version_mismatch",
            Self::AuthTypeMismatch { .. } => "auth_type_mismatch",
            Self::BadPassword => "bad_password",
            Self::IntervalMismatch { .. } => "interval_mismatch",
        }
    }

    /// False for an advertisement that is simply someone else's ([`Self::OtherVrid`]):
    /// count it quietly, do not log it as an error.
    pub const fn is_error(&self) -> bool {
        !matches!(self, Self::OtherVrid(_))
    }
}

/// The receive checks of RFC 3768 7.1 / RFC 9568 7.1 that need the local instance, on an
/// advertisement [`decode`] accepted that arrived with `ttl` (IPv4 TTL or IPv6 hop limit).
///
/// The VRID comes first: several instances share the multicast group, and what is wrong
/// with another router's advertisement is not ours to count (keepalived likewise picks
/// the instance by VRID before checking). Then TTL 255, version, and for v2 the
/// authentication type, the password and the interval (RFC 3768: MUST discard on an
/// interval mismatch; in v3 the backup adopts the master's interval instead).
///
/// A differing address list is not a reason to discard (RFC 9568 7.1: log, still
/// process): see [`addresses_differ`]. Nor is priority 255 from a peer while we own the
/// addresses: the state machine, which knows our priority, handles that.
pub fn check_received(d: &Decoded, ttl: u8, local: &LocalParams) -> Result<(), RejectReason> {
    let advert = &d.advert;
    if advert.vrid != local.vrid {
        return Err(RejectReason::OtherVrid(advert.vrid));
    }
    if ttl != TTL {
        return Err(RejectReason::BadTtl(ttl));
    }
    if advert.version != local.version {
        return Err(RejectReason::VersionMismatch {
            received: advert.version,
            ours: local.version,
        });
    }
    if local.version == Version::V2 {
        let ours = local.auth.map_or(Auth::None, Auth::Pass);
        match (advert.auth, ours) {
            (Auth::None, Auth::None) => {}
            (Auth::Pass(theirs), Auth::Pass(ours)) => {
                if !constant_time_eq(&theirs, &ours) {
                    return Err(RejectReason::BadPassword);
                }
            }
            (theirs, ours) => {
                return Err(RejectReason::AuthTypeMismatch {
                    received: theirs.auth_type(),
                    ours: ours.auth_type(),
                });
            }
        }
        let received_s = advert.interval.v2_wire();
        if received_s != local.v2_interval_s {
            return Err(RejectReason::IntervalMismatch {
                received_s,
                ours_s: local.v2_interval_s,
            });
        }
    }
    Ok(())
}

/// Whether the advertisement's addresses are not the same set as `ours` (order and
/// repetitions aside). Not a reason to discard it: the caller logs a warning.
pub fn addresses_differ(d: &Decoded, ours: &[IpAddr]) -> bool {
    let mut theirs = d.advert.addresses.clone();
    let mut ours = ours.to_vec();
    for list in [&mut theirs, &mut ours] {
        list.sort_unstable();
        list.dedup();
    }
    theirs != ours
}

/// Octets of a message with `count` addresses.
fn message_len(version: Version, ipv6: bool, count: u8) -> usize {
    let addr_len = if ipv6 { 16 } else { 4 };
    HEADER_LEN + usize::from(count) * addr_len + auth_len(version)
}

const fn auth_len(version: Version) -> usize {
    match version {
        Version::V2 => V2_AUTH_LEN,
        Version::V3 => 0,
    }
}

/// The checksum form a message of this version and family uses when sent.
fn checksum_form(version: Version, ipv6: bool, v3_ipv4: V3Checksum) -> V3Checksum {
    match (version, ipv6) {
        (Version::V2, _) => V3Checksum::MessageOnly,
        (Version::V3, true) => V3Checksum::PseudoHeader,
        (Version::V3, false) => v3_ipv4,
    }
}

/// The one's-complement sum the message's is added to: zero, or the pseudo-header's.
fn checksum_start(form: V3Checksum, src: IpAddr, dst: IpAddr, len: usize) -> u64 {
    match (form, src, dst) {
        (V3Checksum::MessageOnly, _, _) => 0,
        (V3Checksum::PseudoHeader, IpAddr::V4(src), IpAddr::V4(dst)) => {
            // The length is at most 8 + 255 * 16 octets: it always fits 16 bits.
            sum_words(&src.octets())
                + sum_words(&dst.octets())
                + u64::from(IPPROTO_VRRP)
                + u64::try_from(len).unwrap_or(u64::MAX)
        }
        // IPv6 (RFC 8200 8.1). Mixed families only reach here from an `encode` of an
        // advertisement that fails `check`: the IPv4 one is mapped, for want of better.
        (V3Checksum::PseudoHeader, src, dst) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => a,
            };
            sum_words(&v6(src).octets())
                + sum_words(&v6(dst).octets())
                + sum_words(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes())
                + u64::from(IPPROTO_VRRP)
        }
    }
}

/// The sum of `bytes` as big-endian 16-bit words (an odd last octet padded with zero).
/// Carries are folded by [`fold`]: a `u64` cannot overflow on any message here.
fn sum_words(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u64 = chunks
        .by_ref()
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds the carries of a one's-complement sum into 16 bits (RFC 1071).
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::try_from(sum).unwrap_or(u16::MAX)
}

/// Equality whose time does not depend on where the inputs differ, as keepalived's
/// `memcmp_constant_time` (a password sent in clear is no secret on the link, but there
/// is no reason to give out a timing oracle either).
fn constant_time_eq(a: &[u8; V2_AUTH_LEN], b: &[u8; V2_AUTH_LEN]) -> bool {
    a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}
