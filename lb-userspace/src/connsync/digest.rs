//! The digest of this director's `mh` / `sh` scheduling tables, real servers named by
//! address: two directors with the same digest send every new flow of those services to
//! the same real server, so the master need not sync those flows (the design's identical
//! tables, checked rather than assumed).

use std::net::{IpAddr, SocketAddr};

use ring::digest::{Context, SHA256};

use super::{
    directory::{Directory, is_hashed},
    wire::DIGEST_LEN,
};

/// SHA-256 over each hashed service (in key order): its key, algorithm, and table as
/// addresses. `slot_at(i)` reads `xlb_table[i]`. `None` without hashed services.
pub fn of(dir: &Directory, slot_at: impl Fn(u32) -> Option<u32>) -> Option<[u8; DIGEST_LEN]> {
    let mut services: Vec<_> = dir.services().filter(|s| is_hashed(s.algo)).collect();
    if services.is_empty() {
        return None;
    }
    services.sort_by_key(|s| s.key);
    let mut ctx = Context::new(&SHA256);
    for s in services {
        put_addr(&mut ctx, SocketAddr::new(s.key.0, s.key.1));
        ctx.update(&[s.key.2]);
        ctx.update(&s.algo.to_be_bytes());
        ctx.update(&s.table.1.to_be_bytes());
        for i in 0..s.table.1 {
            let real = slot_at(s.table.0 + i).and_then(|slot| dir.real_addr(slot, s.id));
            match real {
                Some(a) => put_addr(&mut ctx, a),
                None => ctx.update(&[0xff]),
            }
        }
    }
    ctx.finish().as_ref().try_into().ok()
}

fn put_addr(ctx: &mut Context, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v) => ctx.update(&v.octets()),
        IpAddr::V6(v) => ctx.update(&v.octets()),
    }
    ctx.update(&a.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::SchedAlgo;

    fn dir(first: u32, second: u32) -> Directory {
        let mut d = Directory::default();
        let vip = "198.18.0.100".parse().unwrap();
        d.add_service((vip, 80, 6), 1, SchedAlgo::Mh as u32, 0);
        d.add_real(first, 1, "198.18.0.11:80".parse().unwrap());
        d.add_real(second, 1, "198.18.0.12:80".parse().unwrap());
        d.set_table(1, 10, 3);
        d
    }

    #[test]
    fn the_digest_names_real_servers_by_address_not_slot() {
        // Tables rs1 rs2 rs1 in slots 0/1 on one director, 5/7 on the other.
        let a = of(&dir(0, 1), |i| Some([0, 1, 0][(i - 10) as usize])).unwrap();
        let b = of(&dir(5, 7), |i| Some([5, 7, 5][(i - 10) as usize])).unwrap();
        assert_eq!(a, b);
        let c = of(&dir(5, 7), |i| Some([5, 7, 7][(i - 10) as usize])).unwrap();
        assert_ne!(a, c, "one entry differs");
        let mut wrr = Directory::default();
        wrr.add_service(
            ("198.18.0.100".parse().unwrap(), 80, 6),
            1,
            SchedAlgo::Wrr as u32,
            0,
        );
        assert_eq!(of(&wrr, |_| None), None, "wrr flows are always sent");
    }
}
