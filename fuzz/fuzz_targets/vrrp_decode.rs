//! `xlb::vrrp::packet::decode` on arbitrary bytes: it must never panic, and whatever it
//! accepts must be sendable as it is and decode again to the same thing.
//!
//! The first input byte picks the IP addresses (v2/v3 over IPv4 multicast or unicast,
//! v3 over IPv6, mismatched families); the rest is the VRRP message. Seeds: the fixtures
//! in `lb-userspace/src/vrrp/packet/tests.rs`, with a leading selector byte.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use xlb::vrrp::packet::{MULTICAST_V4, MULTICAST_V6, decode};

const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const UNICAST4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));

fuzz_target!(|data: &[u8]| {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let (src, dst) = match selector % 4 {
        0 => (SRC4, IpAddr::V4(MULTICAST_V4)),
        1 => (SRC4, UNICAST4),
        2 => (SRC6, IpAddr::V6(MULTICAST_V6)),
        _ => (SRC4, IpAddr::V6(MULTICAST_V6)),
    };
    if let Ok(decoded) = decode(message, src, dst) {
        assert_eq!(decoded.advert.check(src, dst), Ok(()));
        let again = decoded.advert.encode(src, dst, decoded.checksum);
        assert_eq!(decode(&again, src, dst), Ok(decoded));
    }
});
