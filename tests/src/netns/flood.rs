//! Crafted TCP segments from many sources onto the DR lab's client link: what fills the
//! director's connection tables (a SYN flood, an ACK flood) without a socket per flow.

use std::{net::Ipv4Addr, time::Duration};

use super::{LAB_VIP, Lab, enter, mac_of};
use crate::frames::tcp4_on_wire;

fn parse_mac(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (b, part) in mac.iter_mut().zip(s.split(':')) {
        *b = u8::from_str_radix(part, 16).expect("MAC");
    }
    mac
}

/// Sends `count` TCP segments with `flags` (SYNs, or bare ACKs) to VIP:7 from random
/// sources in 198.19.0.0/16 (off every lab link, so the real servers' answers go nowhere)
/// and random ports, through an AF_PACKET socket on the client's eth0, paced so that the
/// director's veth ring does not simply drop them. Returns how many the kernel took.
pub fn send_segments(lab: &Lab, count: usize, flags: u8) -> usize {
    let netns = lab.netns_file("client");
    let director_mac = parse_mac(&mac_of(lab, "dir"));
    let client_mac = parse_mac(&mac_of(lab, "client"));
    std::thread::scope(|s| {
        s.spawn(move || {
            enter(&netns).expect("setns");
            // SAFETY: plain socket calls on an fd we own and close.
            unsafe {
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
                assert!(fd >= 0, "AF_PACKET: {}", std::io::Error::last_os_error());
                let ifindex = libc::if_nametoindex(c"eth0".as_ptr());
                let mut addr: libc::sockaddr_ll = std::mem::zeroed();
                addr.sll_family = libc::AF_PACKET as u16;
                addr.sll_ifindex = ifindex as i32;
                addr.sll_halen = 6;
                addr.sll_addr[..6].copy_from_slice(&director_mac);
                let vip: Ipv4Addr = LAB_VIP.parse().unwrap();
                let mut sent = 0;
                for i in 0..count {
                    let r: u32 = rand::random();
                    let src = Ipv4Addr::new(198, 19, (r >> 8) as u8, r as u8);
                    let sport = 1024 + (r >> 16) as u16 % 60_000;
                    let f = tcp4_on_wire((director_mac, client_mac), src, sport, vip, 7, flags);
                    let n = libc::sendto(
                        fd,
                        f.as_ptr().cast(),
                        f.len(),
                        0,
                        (&raw const addr).cast(),
                        size_of::<libc::sockaddr_ll>() as u32,
                    );
                    if n > 0 {
                        sent += 1;
                    }
                    if i % 128 == 127 {
                        std::thread::sleep(Duration::from_micros(500));
                    }
                }
                libc::close(fd);
                sent
            }
        })
        .join()
        .expect("flood thread")
    })
}
