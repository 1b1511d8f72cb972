//! Crafted Ethernet frames for `BPF_PROG_TEST_RUN`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{CLIENT_MAC, DIRECTOR_MAC};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_ARP: u16 = 0x0806;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// What to put in a frame; `Frame::build` makes the bytes.
#[derive(Clone, Debug)]
pub struct Frame {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// 6 = TCP, 17 = UDP, anything else as is.
    pub proto: u8,
    pub vlan: Option<u16>,
    /// Extra 802.1Q tags outside the first (a stacked VLAN frame).
    pub outer_vlans: Vec<u16>,
    /// IPv4 flags + fragment offset field.
    pub frag: u16,
    /// IPv4 option bytes (a multiple of 4).
    pub ip_options: Vec<u8>,
    pub payload: Vec<u8>,
    pub ttl: u8,
    /// TCP flags (SYN unless set).
    pub tcp_flags: u8,
}

impl Frame {
    pub fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Self {
        Self {
            src,
            dst,
            sport,
            dport,
            proto: 6,
            vlan: None,
            outer_vlans: Vec::new(),
            frag: 0x4000, // don't fragment
            ip_options: Vec::new(),
            payload: b"xlb test payload".to_vec(),
            ttl: 64,
            tcp_flags: TCP_SYN,
        }
    }

    pub fn udp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Self {
        Self {
            proto: 17,
            ..Self::tcp(src, sport, dst, dport)
        }
    }

    /// Offset of the IP header in the built frame.
    pub fn l3_offset(&self) -> usize {
        14 + 4 * (self.outer_vlans.len() + usize::from(self.vlan.is_some()))
    }

    pub fn build(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&DIRECTOR_MAC);
        f.extend_from_slice(&CLIENT_MAC);
        for tag in self.outer_vlans.iter().chain(self.vlan.iter()) {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&tag.to_be_bytes());
        }
        let l4 = self.l4();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&ETH_P_IP.to_be_bytes());
                f.extend_from_slice(&ipv4_header(
                    s,
                    d,
                    self.proto,
                    self.ttl,
                    self.frag,
                    &self.ip_options,
                    l4.len(),
                ));
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
                f.extend_from_slice(&ipv6_header(s, d, self.proto, self.ttl, l4.len()));
            }
            _ => panic!("mixed address families"),
        }
        f.extend_from_slice(&l4);
        f
    }

    fn l4(&self) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&self.sport.to_be_bytes());
        l4.extend_from_slice(&self.dport.to_be_bytes());
        match self.proto {
            6 => {
                l4.extend_from_slice(&1u32.to_be_bytes()); // seq
                l4.extend_from_slice(&0u32.to_be_bytes()); // ack
                l4.extend_from_slice(&[0x50, self.tcp_flags]); // data offset 5
                l4.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]); // window, csum, urg
            }
            17 => {
                let len = 8 + self.payload.len() as u16;
                l4.extend_from_slice(&len.to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
            }
            _ => {}
        }
        l4.extend_from_slice(&self.payload);
        l4
    }
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4_header(
    s: Ipv4Addr,
    d: Ipv4Addr,
    proto: u8,
    ttl: u8,
    frag: u16,
    options: &[u8],
    l4_len: usize,
) -> Vec<u8> {
    let hlen = 20 + options.len();
    let mut h = vec![0x40 | (hlen / 4) as u8, 0];
    h.extend_from_slice(&((hlen + l4_len) as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[ttl, proto, 0, 0]);
    h.extend_from_slice(&s.octets());
    h.extend_from_slice(&d.octets());
    h.extend_from_slice(options);
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn ipv6_header(s: Ipv6Addr, d: Ipv6Addr, next: u8, hop_limit: u8, l4_len: usize) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(l4_len as u16).to_be_bytes());
    h.extend_from_slice(&[next, hop_limit]);
    h.extend_from_slice(&s.octets());
    h.extend_from_slice(&d.octets());
    h
}

/// A TCP segment with `flags` of `src`:`sport` -> `dst`:`dport` between real MAC
/// addresses, with valid IPv4 and TCP checksums and no payload: a frame a host's stack
/// accepts (a flood sent onto a lab link, unlike the program-only frames of [`Frame`]).
pub fn tcp4_on_wire(
    macs: ([u8; 6], [u8; 6]),
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
) -> Vec<u8> {
    let frame = Frame {
        payload: Vec::new(),
        tcp_flags: flags,
        ..Frame::tcp(IpAddr::V4(src), sport, IpAddr::V4(dst), dport)
    };
    let mut f = frame.build();
    f[..6].copy_from_slice(&macs.0);
    f[6..12].copy_from_slice(&macs.1);
    let l4 = 14 + 20;
    // The pseudo-header, then the segment with its checksum field zero.
    let mut sum = Vec::with_capacity(12 + f.len() - l4);
    sum.extend_from_slice(&src.octets());
    sum.extend_from_slice(&dst.octets());
    sum.extend_from_slice(&[0, 6]);
    sum.extend_from_slice(&((f.len() - l4) as u16).to_be_bytes());
    sum.extend_from_slice(&f[l4..]);
    let c = checksum(&sum);
    f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    f
}

/// An ARP request for `target` from `sender`.
pub fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

/// An ICMP "fragmentation needed" (IPv4: type 3 code 4) or ICMPv6 "packet too big"
/// (type 2) from `router` to the source of `inner`, reporting `mtu` and quoting the
/// first `quote` bytes of `inner` from its IP header on (RFC 792: the header and 8
/// bytes; RFC 4443: as much as fits), with valid checksums. Client MAC to director MAC,
/// as a router on the client side sends it.
pub fn too_big(router: IpAddr, inner: &Frame, mtu: u16, quote: usize) -> Vec<u8> {
    let packet = inner.build();
    let l3 = inner.l3_offset();
    let quoted = &packet[l3..(l3 + quote).min(packet.len())];
    let v6 = router.is_ipv6();
    let mut icmp = if v6 {
        vec![2, 0, 0, 0]
    } else {
        vec![3, 4, 0, 0]
    };
    icmp.extend_from_slice(&[0, 0]);
    icmp.extend_from_slice(&mtu.to_be_bytes());
    icmp.extend_from_slice(quoted);
    let mut f = Vec::new();
    f.extend_from_slice(&DIRECTOR_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    match (router, inner.src) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let c = checksum(&icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ETH_P_IP.to_be_bytes());
            f.extend_from_slice(&ipv4_header(s, d, 1, 64, 0, &[], icmp.len()));
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut sum = Vec::new();
            sum.extend_from_slice(&s.octets());
            sum.extend_from_slice(&d.octets());
            sum.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
            sum.extend_from_slice(&[0, 0, 0, 58]);
            sum.extend_from_slice(&icmp);
            let c = checksum(&sum);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
            f.extend_from_slice(&ipv6_header(s, d, 58, 64, icmp.len()));
        }
        _ => panic!("mixed address families"),
    }
    f.extend_from_slice(&icmp);
    f
}
