//! The XDP program's decisions on crafted frames, through `BPF_PROG_TEST_RUN`: action,
//! output bytes and counters. Real kernel, real verifier, no interface attached.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
};

use integration_tests::{
    DIRECTOR_MAC, Plane, TEST_IFINDEX, frames::Frame, last_octet, pin_to_cpu, real_mac, service,
};
use lb_common::{DropReason, PassReason, REAL_F_IN_USE, SchedAlgo, addr_of};
use rand::{Rng, SeedableRng, rngs::StdRng};
use xlb::{
    dataplane::sched::{Candidate, Model},
    dataplane::sync::DesiredService,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const VIP: &str = "198.18.0.100";
const VIP6: &str = "2001:db8::100";
const CLIENT: &str = "198.18.1.1";
const CLIENT6: &str = "2001:db8:1::1";

fn reals4(n: u8) -> Vec<(IpAddr, u32)> {
    (1..=n)
        .map(|i| (ip(&format!("198.18.0.{}", 10 + i)), 1))
        .collect()
}

fn drops(p: &Plane, r: DropReason) -> u64 {
    p.maps().drops.get(&(r as u32), 0).unwrap().iter().sum()
}

fn passes(p: &Plane, r: PassReason) -> u64 {
    p.maps().passes.get(&(r as u32), 0).unwrap().iter().sum()
}

/// The real server a forwarded frame went to, by its destination MAC.
fn real_of(out: &[u8]) -> u8 {
    assert_eq!(
        &out[..5],
        &real_mac(0)[..5],
        "not a real server's MAC: {:02x?}",
        &out[..6]
    );
    out[5]
}

fn assert_forwarded(action: u32, input: &[u8], out: &[u8], l3: usize) {
    assert_eq!(action, XDP_TX, "expected XDP_TX");
    assert_eq!(out.len(), input.len());
    assert_eq!(
        &out[6..12],
        &DIRECTOR_MAC,
        "source MAC must be the director's"
    );
    assert_eq!(
        &out[12..],
        &input[12..],
        "everything after the MACs must be untouched"
    );
    assert_eq!(
        &out[l3..],
        &input[l3..],
        "L3 onwards must be byte-identical"
    );
}

#[test]
fn ipv4_tcp_and_udp_to_a_vip_are_transmitted_with_rewritten_macs() {
    let mut p = Plane::new("v4");
    let reals = reals4(2);
    p.apply(&[
        service(ip(VIP), 80, true, SchedAlgo::Rr, &reals),
        service(ip(VIP), 53, false, SchedAlgo::Rr, &reals),
    ]);
    for f in [
        Frame::tcp(ip(CLIENT), 40000, ip(VIP), 80),
        Frame::udp(ip(CLIENT), 40000, ip(VIP), 53),
    ] {
        let input = f.build();
        let (action, out) = p.run(&input);
        assert_forwarded(action, &input, &out, f.l3_offset());
        assert!([11, 12].contains(&real_of(&out)));
    }
}

#[test]
fn ipv6_tcp_and_udp_to_a_vip_are_transmitted_with_rewritten_macs() {
    let mut p = Plane::new("v6");
    let reals = vec![(ip("2001:db8::11"), 1), (ip("2001:db8::12"), 1)];
    p.apply(&[
        service(ip(VIP6), 443, true, SchedAlgo::Wrr, &reals),
        service(ip(VIP6), 53, false, SchedAlgo::Mh, &reals),
    ]);
    for f in [
        Frame::tcp(ip(CLIENT6), 40000, ip(VIP6), 443),
        Frame::udp(ip(CLIENT6), 40000, ip(VIP6), 53),
    ] {
        let input = f.build();
        let (action, out) = p.run(&input);
        assert_forwarded(action, &input, &out, f.l3_offset());
        assert!([0x11, 0x12].contains(&real_of(&out)));
    }
}

#[test]
fn vlan_tagged_frames_are_forwarded_with_the_tag_kept() {
    let mut p = Plane::new("vlan");
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Rr, &reals4(1))]);
    let mut f = Frame::tcp(ip(CLIENT), 40000, ip(VIP), 80);
    f.vlan = Some(42);
    let input = f.build();
    let (action, out) = p.run(&input);
    assert_forwarded(action, &input, &out, f.l3_offset());
    assert_eq!(&out[12..16], &[0x81, 0x00, 0, 42]);
}

#[test]
fn everything_not_for_a_virtual_service_passes_untouched_and_is_counted() {
    let mut p = Plane::new("pass");
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Rr, &reals4(2))]);
    let base = Frame::tcp(ip(CLIENT), 40000, ip(VIP), 80);

    let mut cases: Vec<(&str, Vec<u8>, PassReason)> = vec![
        (
            "other address",
            Frame::tcp(ip(CLIENT), 40000, ip("198.18.0.200"), 80).build(),
            PassReason::NotVirtualService,
        ),
        (
            "other port",
            Frame::tcp(ip(CLIENT), 40000, ip(VIP), 81).build(),
            PassReason::NotVirtualService,
        ),
        (
            "UDP to a TCP service",
            Frame::udp(ip(CLIENT), 40000, ip(VIP), 80).build(),
            PassReason::NotVirtualService,
        ),
        (
            "ARP",
            integration_tests::frames::arp_request(
                "198.18.1.1".parse().unwrap(),
                "198.18.0.100".parse().unwrap(),
            ),
            PassReason::NotIp,
        ),
        (
            "ICMP to the VIP",
            Frame {
                proto: 1,
                ..base.clone()
            }
            .build(),
            PassReason::NotTcpUdp,
        ),
        (
            "first fragment",
            Frame {
                frag: 0x2000,
                ..base.clone()
            }
            .build(),
            PassReason::Fragment,
        ),
        (
            "later fragment",
            Frame {
                frag: 0x0010,
                ..base.clone()
            }
            .build(),
            PassReason::Fragment,
        ),
        (
            "IP options",
            Frame {
                ip_options: vec![1, 1, 1, 0],
                ..base.clone()
            }
            .build(),
            PassReason::IpOptions,
        ),
        (
            "stacked VLAN",
            Frame {
                vlan: Some(2),
                outer_vlans: vec![1],
                ..base.clone()
            }
            .build(),
            PassReason::StackedVlan,
        ),
    ];
    // Truncated at every length inside the headers.
    let full = base.build();
    // (The kernel refuses test frames shorter than an Ethernet header.)
    for len in [14, 20, 33, 34, 40, 50, 53] {
        cases.push(("truncated", full[..len].to_vec(), PassReason::Truncated));
    }
    for (what, input, reason) in cases {
        let before = passes(&p, reason);
        let (action, out) = p.run(&input);
        assert_eq!(action, XDP_PASS, "{what}: expected XDP_PASS");
        assert_eq!(out, input, "{what}: the frame must pass unchanged");
        assert_eq!(
            passes(&p, reason),
            before + 1,
            "{what}: {reason:?} not counted"
        );
    }
}

#[test]
fn an_inactive_service_passes_to_the_host() {
    let mut p = Plane::new("inactive");
    let mut svc = service(ip(VIP), 80, true, SchedAlgo::Rr, &reals4(2));
    svc.active = false;
    p.apply(&[svc]);
    let input = Frame::tcp(ip(CLIENT), 40000, ip(VIP), 80).build();
    let (action, out) = p.run(&input);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out, input);
    assert_eq!(passes(&p, PassReason::Inactive), 1);
}

#[test]
fn a_service_without_a_live_real_server_drops_and_counts() {
    let mut p = Plane::new("noreal");
    let mut svc = service(ip(VIP), 80, true, SchedAlgo::Rr, &reals4(2));
    for r in &mut svc.reals {
        r.alive = false;
    }
    p.apply(&[svc.clone(), service(ip(VIP), 81, true, SchedAlgo::Wrr, &[])]);
    for port in [80, 81] {
        let input = Frame::tcp(ip(CLIENT), 40000, ip(VIP), port).build();
        assert_eq!(p.run(&input).0, XDP_DROP);
    }
    assert_eq!(drops(&p, DropReason::NoRealServer), 2);
    // An unresolved MAC is no better than a dead server.
    for r in &mut svc.reals {
        r.alive = true;
        r.mac = None;
    }
    p.apply(&[svc]);
    let input = Frame::tcp(ip(CLIENT), 40001, ip(VIP), 80).build();
    assert_eq!(p.run(&input).0, XDP_DROP);
    assert_eq!(drops(&p, DropReason::NoRealServer), 3);
}

#[test]
fn established_flows_stay_and_new_flows_rotate() {
    let mut p = Plane::new("sticky");
    pin_to_cpu(0);
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Rr, &reals4(3))]);
    let first: Vec<u8> = (0..6)
        .map(|i| {
            let (a, out) = p.run(&Frame::tcp(ip(CLIENT), 50000 + i, ip(VIP), 80).build());
            assert_eq!(a, XDP_TX);
            real_of(&out)
        })
        .collect();
    // Round robin over three: every window of three distinct.
    assert_eq!(
        first[0..3]
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );
    assert_eq!(first[0..3], first[3..6]);
    // The same flows again: the same real servers, however often.
    for _ in 0..3 {
        for (i, want) in first.iter().enumerate() {
            let (_, out) = p.run(&Frame::tcp(ip(CLIENT), 50000 + i as u16, ip(VIP), 80).build());
            assert_eq!(real_of(&out), *want);
        }
    }
    let svc_stats: u64 = p
        .maps()
        .service_stats
        .get(&0, 0)
        .unwrap()
        .iter()
        .map(|c| c.new_flows)
        .sum();
    assert_eq!(svc_stats, 6, "six new flows counted");
}

#[test]
fn weight_zero_is_quiescent_and_a_removed_real_server_is_rescheduled() {
    let mut p = Plane::new("weight0");
    pin_to_cpu(0);
    let reals = reals4(2);
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Rr, &reals)]);
    // Two flows, one on each real server.
    let mut on = HashMap::new();
    for sport in [1000u16, 1001] {
        let (_, out) = p.run(&Frame::tcp(ip(CLIENT), sport, ip(VIP), 80).build());
        on.insert(real_of(&out), sport);
    }
    assert_eq!(on.len(), 2);
    let quiet_port = on[&11];

    // .11 to weight 0: its flow continues, new flows all go to .12.
    p.apply(&[service(
        ip(VIP),
        80,
        true,
        SchedAlgo::Rr,
        &[(reals[0].0, 0), reals[1]],
    )]);
    let (_, out) = p.run(&Frame::tcp(ip(CLIENT), quiet_port, ip(VIP), 80).build());
    assert_eq!(real_of(&out), 11, "an established flow survives weight 0");
    for sport in 2000..2010 {
        let (_, out) = p.run(&Frame::tcp(ip(CLIENT), sport, ip(VIP), 80).build());
        assert_eq!(real_of(&out), 12, "no new flow to a quiescent server");
    }

    // .11 removed: its flow moves on its next packet.
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Rr, &reals[1..])]);
    let (a, out) = p.run(&Frame::tcp(ip(CLIENT), quiet_port, ip(VIP), 80).build());
    assert_eq!(a, XDP_TX);
    assert_eq!(
        real_of(&out),
        12,
        "a removed server's flow is scheduled again"
    );
    let in_use = (0..16)
        .filter(|i| p.maps().reals.get(i, 0).unwrap().flags & REAL_F_IN_USE != 0)
        .count();
    assert_eq!(in_use, 1, "the removed server's slot is cleared");
}

#[test]
fn a_dead_real_servers_flows_move_but_others_stay() {
    let mut p = Plane::new("dead");
    let reals = reals4(3);
    let mut svc = service(ip(VIP), 80, true, SchedAlgo::Mh, &reals);
    p.apply(&[svc.clone()]);
    let mut before = Vec::new();
    for i in 0..300u16 {
        let src = IpAddr::V4(Ipv4Addr::new(198, 19, (i >> 8) as u8, i as u8));
        let (_, out) = p.run(&Frame::tcp(src, 1000 + i, ip(VIP), 80).build());
        before.push((src, 1000 + i, real_of(&out)));
    }
    svc.reals[0].alive = false;
    p.apply(&[svc]);
    for (src, sport, was) in before {
        let (_, out) = p.run(&Frame::tcp(src, sport, ip(VIP), 80).build());
        let now = real_of(&out);
        if was == 11 {
            assert_ne!(now, 11, "a flow on a dead server must move");
        } else {
            assert_eq!(now, was, "a flow on a live server must not move");
        }
    }
}

#[test]
fn persistence_keeps_a_client_on_its_real_server() {
    let mut p = Plane::new("persist");
    pin_to_cpu(0);
    let mut svc = service(ip(VIP), 0, true, SchedAlgo::Rr, &reals4(3));
    svc.persistence_timeout = 300;
    p.apply(&[svc]);
    // Port 0 service: every port, one client -> one real server.
    let (_, out) = p.run(&Frame::tcp(ip(CLIENT), 1000, ip(VIP), 80).build());
    let first = real_of(&out);
    for (sport, dport) in [(1001, 80), (1002, 443), (1003, 8080), (1004, 80)] {
        let (a, out) = p.run(&Frame::tcp(ip(CLIENT), sport, ip(VIP), dport).build());
        assert_eq!(a, XDP_TX);
        assert_eq!(
            real_of(&out),
            first,
            "a persistent client changed real server"
        );
    }
    // Other clients still rotate.
    let others: std::collections::BTreeSet<u8> = (2..8)
        .map(|i| {
            let c = IpAddr::V4(Ipv4Addr::new(198, 18, 1, i));
            real_of(&p.run(&Frame::tcp(c, 1000, ip(VIP), 80).build()).1)
        })
        .collect();
    assert_eq!(others.len(), 3);
}

#[test]
fn a_real_server_behind_another_interface_is_redirected() {
    let mut p = Plane::new("redirect");
    let mut svc = service(ip(VIP), 80, true, SchedAlgo::Rr, &reals4(1));
    svc.reals[0].ifindex = TEST_IFINDEX + 1;
    p.apply(&[svc]);
    let mut ifaces = std::collections::BTreeMap::new();
    ifaces.insert(TEST_IFINDEX, DIRECTOR_MAC);
    ifaces.insert(TEST_IFINDEX + 1, [2, 0, 0, 0, 0, 0x99]);
    p.sync.apply_ifaces(&ifaces).unwrap();
    let input = Frame::tcp(ip(CLIENT), 40000, ip(VIP), 80).build();
    let (a, out) = p.run(&input);
    assert_eq!(a, XDP_REDIRECT);
    assert_eq!(
        &out[6..12],
        &[2, 0, 0, 0, 0, 0x99],
        "source MAC of the egress interface"
    );
    assert_eq!(&out[12..], &input[12..]);
}

/// The slot each real server got in `xlb_reals`, by last octet.
fn slots(p: &Plane) -> HashMap<u32, u8> {
    (0..p.maps().sizes().reals)
        .filter_map(|i| {
            let r = p.maps().reals.get(&i, 0).ok()?;
            (r.flags & REAL_F_IN_USE != 0).then(|| (i, r.addr[15]))
        })
        .collect()
}

fn model_for(p: &Plane, svc: &DesiredService) -> (Model, HashMap<u32, u8>) {
    let slots = slots(p);
    let by_octet: HashMap<u8, u32> = slots.iter().map(|(i, o)| (*o, *i)).collect();
    let candidates: Vec<Candidate> = svc
        .reals
        .iter()
        .filter(|r| r.alive && r.weight > 0)
        .map(|r| Candidate {
            index: by_octet[&r.addr[15]],
            addr: r.addr,
            port: r.port,
            weight: r.weight,
        })
        .collect();
    (
        Model::from_servers_in(svc.algo, &candidates, svc.reals.len()),
        slots,
    )
}

#[test]
fn one_hundred_thousand_random_flows_agree_with_the_model_for_every_scheduler() {
    pin_to_cpu(0);
    let weights = [5u32, 1, 3, 2, 7, 1, 4];
    let reals: Vec<(IpAddr, u32)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| (ip(&format!("198.18.0.{}", 11 + i)), *w))
        .collect();
    for (algo, hash_port) in [
        (SchedAlgo::Rr, false),
        (SchedAlgo::Wrr, false),
        (SchedAlgo::Sh, false),
        (SchedAlgo::Sh, true),
        (SchedAlgo::Mh, false),
        (SchedAlgo::Mh, true),
    ] {
        let mut p = Plane::new("model");
        let mut svc = service(ip(VIP), 80, true, algo, &reals);
        svc.hash_port = hash_port;
        p.apply(&[svc.clone()]);
        let (mut model, slots) = model_for(&p, &svc);
        let mut rng = StdRng::seed_from_u64(0x786c62);
        let mut agree = 0;
        const FLOWS: usize = 100_000;
        for _ in 0..FLOWS {
            let src = IpAddr::V4(Ipv4Addr::new(
                198,
                18 + rng.random_range(0..2),
                rng.random(),
                rng.random(),
            ));
            let sport: u16 = rng.random_range(1024..65535);
            let (a, out) = p.run(&Frame::tcp(src, sport, ip(VIP), 80).build());
            assert_eq!(a, XDP_TX);
            let want = model
                .pick(&addr_of(src), sport, hash_port)
                .expect("model picks");
            assert_eq!(
                real_of(&out),
                slots[&want],
                "{algo:?} hash_port={hash_port}: flow {src}:{sport} went against the model"
            );
            agree += 1;
        }
        // IPv6 clients of an IPv6 service take the same path with 16-byte addresses.
        let reals6: Vec<(IpAddr, u32)> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| (ip(&format!("2001:db8::{:x}", 0x11 + i)), *w))
            .collect();
        let mut svc6 = service(ip(VIP6), 80, true, algo, &reals6);
        svc6.hash_port = hash_port;
        let mut p6 = Plane::new("model6");
        p6.apply(&[svc6.clone()]);
        let (mut model6, slots6) = model_for(&p6, &svc6);
        for _ in 0..FLOWS / 10 {
            let mut o = [0u8; 16];
            o[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            rng.fill(&mut o[4..]);
            let src = IpAddr::from(o);
            let sport: u16 = rng.random_range(1024..65535);
            let (a, out) = p6.run(&Frame::tcp(src, sport, ip(VIP6), 80).build());
            assert_eq!(a, XDP_TX);
            let want = model6.pick(&o, sport, hash_port).expect("model picks");
            assert_eq!(
                real_of(&out),
                slots6[&want],
                "{algo:?} IPv6 flow {src}:{sport}"
            );
            agree += 1;
        }
        assert_eq!(agree, FLOWS + FLOWS / 10);
        println!("{algo:?} hash_port={hash_port}: {agree} flows, 100% agreement with the model");
    }
}

#[test]
fn removing_one_maglev_server_moves_its_flows_and_a_small_collateral() {
    let mut p = Plane::new("mhremove");
    let reals = (1..=10u8)
        .map(|i| (ip(&format!("198.18.0.{}", 10 + i)), 1))
        .collect::<Vec<_>>();
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Mh, &reals)]);
    let clients: Vec<IpAddr> = (0..20_000u32)
        .map(|i| IpAddr::V4(Ipv4Addr::new(198, 19, (i >> 8) as u8, i as u8)))
        .collect();
    let before: Vec<u8> = clients
        .iter()
        .map(|c| real_of(&p.run(&Frame::tcp(*c, 1000, ip(VIP), 80).build()).1))
        .collect();
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Mh, &reals[1..])]);
    let removed = last_octet(reals[0].0);
    let (mut moved_established, mut collateral, mut on_removed) = (0, 0, 0);
    for (c, was) in clients.iter().zip(&before) {
        // The same flow: established, it moves only if its server went away.
        let now = real_of(&p.run(&Frame::tcp(*c, 1000, ip(VIP), 80).build()).1);
        if *was == removed {
            on_removed += 1;
            assert_ne!(now, removed);
        } else if now != *was {
            moved_established += 1;
        }
        // A new flow of the same client: Maglev's own disruption shows here.
        let fresh = real_of(&p.run(&Frame::tcp(*c, 2000, ip(VIP), 80).build()).1);
        if *was != removed && fresh != *was {
            collateral += 1;
        }
    }
    assert_eq!(
        moved_established, 0,
        "established flows on live servers never move"
    );
    let fraction = collateral as f64 / (clients.len() - on_removed) as f64;
    println!(
        "mh: removing 1 of 10 moved {on_removed} flows of the removed server; collateral for \
         new flows of other clients: {:.2}%",
        fraction * 100.0
    );
    assert!(on_removed > 1000, "the removed server had its share");
    assert!(fraction < 0.03, "Maglev collateral {fraction} too large");
}

#[test]
fn nanoseconds_per_packet_are_reported() {
    let mut p = Plane::new("timing");
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Wrr, &reals4(4))]);
    let frame = Frame::tcp(ip(CLIENT), 40000, ip(VIP), 80).build();
    p.run(&frame); // establish
    // Rewriting MACs does not change the decision, so repeat is safe here.
    let (a, _, ns) = p.run_timed(&frame, 100_000);
    assert_eq!(a, XDP_TX);
    let mut rng = StdRng::seed_from_u64(1);
    let mut total = 0.0;
    const NEW: usize = 20_000;
    for _ in 0..NEW {
        let c = IpAddr::V4(Ipv4Addr::new(198, 19, rng.random(), rng.random()));
        let f = Frame::tcp(c, rng.random_range(1024..65535), ip(VIP), 80).build();
        total += p.run_timed(&f, 1).2;
    }
    println!(
        "BPF_PROG_TEST_RUN: established flow {ns:.0} ns/packet, new flow {:.0} ns/packet",
        total / NEW as f64
    );
}

fn icmp_forwarded(p: &Plane, family: u32) -> u64 {
    p.maps()
        .icmp_forwarded
        .get(&family, 0)
        .unwrap()
        .iter()
        .sum()
}

/// Opens `flows` TCP flows (client ports 40000..) to `vip`:`port`; returns each one's
/// real server (last MAC byte).
fn open_flows(p: &mut Plane, client: &str, vip: &str, port: u16, flows: u16) -> Vec<u8> {
    (0..flows)
        .map(|i| {
            let input = Frame::tcp(ip(client), 40000 + i, ip(vip), port).build();
            let (action, out) = p.run(&input);
            assert_eq!(action, XDP_TX);
            real_of(&out)
        })
        .collect()
}

/// The reply a real server sends on flow `client_port` (source VIP, destination client).
fn reply(client: &str, client_port: u16, vip: &str, port: u16) -> Frame {
    Frame {
        tcp_flags: integration_tests::frames::TCP_ACK,
        payload: vec![0x5a; 1400],
        ..Frame::tcp(ip(vip), port, ip(client), client_port)
    }
}

#[test]
fn packet_too_big_for_a_tracked_flow_goes_to_its_real_server_ipv4_and_ipv6() {
    use integration_tests::frames::too_big;
    for (tag, client, vip, router, reals, family) in [
        ("ptb4", CLIENT, VIP, "198.18.1.254", reals4(3), 0),
        (
            "ptb6",
            CLIENT6,
            VIP6,
            "2001:db8:1::fe",
            vec![(ip("2001:db8::11"), 1), (ip("2001:db8::12"), 1)],
            1,
        ),
    ] {
        let mut p = Plane::new(tag);
        p.apply(&[service(ip(vip), 80, true, SchedAlgo::Rr, &reals)]);
        let owners = open_flows(&mut p, client, vip, 80, 6);
        assert!(
            owners.iter().any(|o| *o != owners[0]),
            "{tag}: round robin must spread the flows: {owners:?}"
        );
        for (i, owner) in owners.iter().enumerate() {
            // Quoting the header and 8 bytes (RFC 792), or much more (RFC 4443).
            for quote in [if family == 0 { 28 } else { 48 }, 1232] {
                let input = too_big(
                    ip(router),
                    &reply(client, 40000 + i as u16, vip, 80),
                    1280,
                    quote,
                );
                let (action, out) = p.run(&input);
                assert_forwarded(action, &input, &out, 14);
                assert_eq!(
                    real_of(&out),
                    *owner,
                    "{tag}: flow {i}'s ICMP went to another real server"
                );
            }
        }
        assert_eq!(icmp_forwarded(&p, family), 12, "{tag}");
        assert_eq!(icmp_forwarded(&p, 1 - family), 0, "{tag}");
    }
}

#[test]
fn icmp_about_no_tracked_flow_or_malformed_passes_and_is_counted() {
    use integration_tests::frames::too_big;
    let mut p = Plane::new("ptbpass");
    p.apply(&[
        service(ip(VIP), 80, true, SchedAlgo::Rr, &reals4(2)),
        service(
            ip(VIP6),
            80,
            true,
            SchedAlgo::Rr,
            &[(ip("2001:db8::11"), 1)],
        ),
    ]);
    open_flows(&mut p, CLIENT, VIP, 80, 1);
    open_flows(&mut p, CLIENT6, VIP6, 80, 1);
    let router = ip("198.18.1.254");
    let router6 = ip("2001:db8:1::fe");
    let tracked = reply(CLIENT, 40000, VIP, 80);
    let tracked6 = reply(CLIENT6, 40000, VIP6, 80);
    let mut other_type = too_big(router, &tracked, 1280, 64);
    other_type[14 + 21] = 1; // type 3 code 1: host unreachable
    let mut echo6 = too_big(router6, &tracked6, 1280, 64);
    echo6[14 + 40] = 128; // echo request
    let cases: Vec<(&str, Vec<u8>, PassReason)> = vec![
        (
            "untracked client port",
            too_big(router, &reply(CLIENT, 40001, VIP, 80), 1280, 64),
            PassReason::IcmpNoFlow,
        ),
        (
            "untracked IPv6 client port",
            too_big(router6, &reply(CLIENT6, 40001, VIP6, 80), 1280, 64),
            PassReason::IcmpNoFlow,
        ),
        (
            "inner not from a VIP",
            too_big(router, &reply(CLIENT, 40000, "198.18.0.200", 80), 1280, 64),
            PassReason::IcmpNoFlow,
        ),
        (
            "inner UDP on a TCP flow",
            too_big(
                router,
                &Frame::udp(ip(VIP), 80, ip(CLIENT), 40000),
                1280,
                64,
            ),
            PassReason::IcmpNoFlow,
        ),
        (
            "inner GRE",
            too_big(
                router,
                &Frame {
                    proto: 47,
                    ..tracked.clone()
                },
                1280,
                64,
            ),
            PassReason::IcmpInnerNotTcpUdp,
        ),
        (
            "inner IPv6 extension header",
            too_big(
                router6,
                &Frame {
                    proto: 0,
                    ..tracked6.clone()
                },
                1280,
                64,
            ),
            PassReason::IcmpInnerNotTcpUdp,
        ),
        (
            "inner IP options",
            too_big(
                router,
                &Frame {
                    ip_options: vec![1, 1, 1, 0],
                    ..tracked.clone()
                },
                1280,
                64,
            ),
            PassReason::IcmpMalformed,
        ),
        (
            "inner IPv4 in ICMPv6",
            {
                let mut f = too_big(router6, &tracked6, 1280, 64);
                f[14 + 48] = 0x45;
                f
            },
            PassReason::IcmpMalformed,
        ),
        (
            "inner ports cut (IPv4)",
            too_big(router, &tracked, 1280, 23),
            PassReason::IcmpMalformed,
        ),
        (
            "inner header cut (IPv4)",
            too_big(router, &tracked, 1280, 12),
            PassReason::IcmpMalformed,
        ),
        (
            "inner ports cut (IPv6)",
            too_big(router6, &tracked6, 1280, 43),
            PassReason::IcmpMalformed,
        ),
        (
            "inner header cut (IPv6)",
            too_big(router6, &tracked6, 1280, 30),
            PassReason::IcmpMalformed,
        ),
        ("host unreachable", other_type, PassReason::NotTcpUdp),
        ("ICMPv6 echo", echo6, PassReason::NotTcpUdp),
    ];
    for (what, input, reason) in cases {
        let before = passes(&p, reason);
        let (action, out) = p.run(&input);
        assert_eq!(action, XDP_PASS, "{what}: expected XDP_PASS");
        assert_eq!(out, input, "{what}: the frame must pass unchanged");
        assert_eq!(
            passes(&p, reason),
            before + 1,
            "{what}: {reason:?} not counted"
        );
    }
    assert_eq!(icmp_forwarded(&p, 0) + icmp_forwarded(&p, 1), 0);
    // The same tracked flow's ICMP, well formed, is forwarded: the cases above failed
    // for their defect alone.
    for input in [
        too_big(router, &tracked, 1280, 64),
        too_big(router6, &tracked6, 1280, 64),
    ] {
        assert_eq!(p.run(&input).0, XDP_TX);
    }
}
