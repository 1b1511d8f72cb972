//! The connection-counting schedulers in the XDP program, through `BPF_PROG_TEST_RUN`:
//! given the counts set in `xlb_real_conns`, a new flow goes where the controller's model
//! (`lb_common::sched`, `dataplane::sched::Model`) says; the program keeps the counts as
//! flows open, establish, close and reopen; `dh` and `fo` as IPVS.

use std::net::IpAddr;

use integration_tests::{
    Plane,
    frames::{Frame, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN},
    real_mac, service,
};
use lb_common::{RealConns, SchedAlgo, addr_of, flow_hash};
use rand::{Rng, SeedableRng, rngs::StdRng};
use xlb::dataplane::sched::{Candidate, Model};

const XDP_TX: u32 = 3;
const XDP_DROP: u32 = 1;
const VIP: &str = "198.18.0.100";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Real servers 198.18.0.11.. with these weights.
fn reals(weights: &[u32]) -> Vec<(IpAddr, u32)> {
    (weights.iter().enumerate())
        .map(|(i, w)| (ip(&format!("198.18.0.{}", 11 + i)), *w))
        .collect()
}

/// The slot of the real server whose address ends in `last`.
fn slot_of(p: &Plane, last: u8) -> u32 {
    let want = addr_of(ip(&format!("198.18.0.{last}")));
    (0..p.maps().reals_view.len() as u32)
        .find(|&i| {
            let r = p.maps().reals_view.get(i as usize);
            r.addr == want && r.flags & lb_common::REAL_F_IN_USE != 0
        })
        .expect("real server in a slot")
}

/// The last octet of the real server a forwarded frame went to.
fn real_of(action: u32, out: &[u8]) -> u8 {
    assert_eq!(action, XDP_TX, "not forwarded");
    assert_eq!(&out[..5], &real_mac(0)[..5]);
    out[5]
}

fn syn(sport: u16) -> Vec<u8> {
    let mut f = Frame::tcp(ip("198.18.1.1"), sport, ip(VIP), 80);
    f.tcp_flags = TCP_SYN;
    f.build()
}

fn with_flags(sport: u16, flags: u8) -> Vec<u8> {
    let mut f = Frame::tcp(ip("198.18.1.1"), sport, ip(VIP), 80);
    f.tcp_flags = flags;
    f.build()
}

#[test]
fn counting_schedulers_pick_what_the_model_picks_from_the_counts() {
    let weights = [1, 3, 1, 2, 0];
    let mut rng = StdRng::seed_from_u64(14);
    for algo in [
        SchedAlgo::Lc,
        SchedAlgo::Wlc,
        SchedAlgo::Sed,
        SchedAlgo::Nq,
        SchedAlgo::Ovf,
    ] {
        let mut p = Plane::new(&format!("sc{}", algo.name()));
        p.apply(&[service(ip(VIP), 80, true, algo, &reals(&weights))]);
        let slots: Vec<u32> = (0..weights.len())
            .map(|i| slot_of(&p, 11 + i as u8))
            .collect();
        let candidates: Vec<Candidate> = (weights.iter().enumerate())
            .map(|(i, &w)| Candidate {
                index: slots[i],
                addr: addr_of(ip(&format!("198.18.0.{}", 11 + i))),
                port: 80,
                weight: w,
            })
            .collect();
        let mut model = Model::from_servers(algo, &candidates);
        let mut seen = std::collections::BTreeSet::new();
        for trial in 0..300u16 {
            for &slot in &slots {
                // Small counts make ties and idle servers common (and, for ovf, servers
                // over their weight, every one of them at times).
                let top = if algo == SchedAlgo::Ovf { 6 } else { 4 };
                let (a, i) = (rng.random_range(0..top), rng.random_range(0..600u64));
                p.sync.set_real_conns(slot, a, i);
                model.set_conns(slot, RealConns::of(a as i32, i as i32));
            }
            let want = model.pick(&[0; 16], 0, false);
            let (action, out) = p.run(&syn(10_000 + trial));
            match want {
                Some(slot) => {
                    let got = real_of(action, &out);
                    let got_slot = slot_of(&p, got);
                    assert_eq!(got_slot, slot, "{algo:?} trial {trial}");
                    assert_ne!(got, 15, "weight 0 is never chosen");
                    seen.insert(got);
                }
                None => assert_eq!(action, XDP_DROP, "{algo:?}: no server qualifies"),
            }
        }
        assert!(seen.len() >= 2, "{algo:?} always chose {seen:?}");
    }
}

#[test]
fn wlc_sends_a_new_flow_to_the_least_loaded_server_per_weight() {
    let mut p = Plane::new("scwlc2");
    p.apply(&[service(
        ip(VIP),
        80,
        true,
        SchedAlgo::Wlc,
        &reals(&[1, 1, 2]),
    )]);
    let s: Vec<u32> = (11..=13).map(|l| slot_of(&p, l)).collect();
    // 11: 5 active (1280), 12: 4 active + 10 inactive (1034), 13: 9 active / 2 (1152).
    p.sync.set_real_conns(s[0], 5, 0);
    p.sync.set_real_conns(s[1], 4, 10);
    p.sync.set_real_conns(s[2], 9, 0);
    let (action, out) = p.run(&syn(20_000));
    assert_eq!(real_of(action, &out), 12);
    // The program counted the new flow (SYN_RECV: inactive) on the server it chose.
    assert_eq!(p.sync.real_conns(s[1]), (4, 11));
}

#[test]
fn the_program_counts_flows_as_they_open_establish_close_and_reopen() {
    let mut p = Plane::new("sccount");
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Lc, &reals(&[1]))]);
    let s = slot_of(&p, 11);
    assert_eq!(p.sync.real_conns(s), (0, 0));
    let step = |p: &mut Plane, flags, want: (u32, u32), what: &str| {
        let (action, _) = p.run(&with_flags(30_000, flags));
        assert_eq!(action, XDP_TX, "{what}");
        assert_eq!(p.sync.real_conns(s), want, "after {what}");
    };
    step(&mut p, TCP_SYN, (0, 1), "SYN: half-open is inactive");
    step(&mut p, TCP_ACK, (1, 0), "ACK: established is active");
    step(&mut p, TCP_ACK, (1, 0), "another ACK changes nothing");
    step(
        &mut p,
        TCP_FIN | TCP_ACK,
        (0, 1),
        "FIN: closing is inactive",
    );
    step(
        &mut p,
        TCP_SYN,
        (0, 1),
        "SYN after FIN: the old entry replaced",
    );
    step(&mut p, TCP_ACK, (1, 0), "established again");
    step(&mut p, TCP_RST, (0, 1), "RST");
    // A second connection, and the controller's correction on top of what XDP counted.
    let (action, _) = p.run(&with_flags(30_001, TCP_SYN));
    assert_eq!(action, XDP_TX);
    assert_eq!(p.sync.real_conns(s), (0, 2));
    p.sync.set_real_conns(s, 7, 3);
    assert_eq!(p.sync.real_conns(s), (7, 3));
    let (action, _) = p.run(&with_flags(30_001, TCP_ACK));
    assert_eq!(action, XDP_TX);
    assert_eq!(
        p.sync.real_conns(s),
        (8, 2),
        "XDP's update after the correction is kept"
    );
}

#[test]
fn a_wrr_service_counts_nothing() {
    let mut p = Plane::new("scwrr");
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Wrr, &reals(&[1]))]);
    let s = slot_of(&p, 11);
    p.run(&with_flags(30_000, TCP_SYN));
    p.run(&with_flags(30_000, TCP_ACK));
    assert_eq!(p.sync.real_conns(s), (0, 0));
}

#[test]
fn dh_hashes_the_vip_and_fo_takes_the_heaviest() {
    let weights = [1, 3, 3, 2];
    let mut p = Plane::new("scdh");
    p.apply(&[
        service(ip(VIP), 80, true, SchedAlgo::Dh, &reals(&weights)),
        service(ip(VIP), 81, true, SchedAlgo::Fo, &reals(&weights)),
    ]);
    let mut got = std::collections::BTreeSet::new();
    for sport in 0..200u16 {
        let mut f = Frame::tcp(
            ip(&format!("198.18.{}.{}", 1 + sport / 100, sport % 100)),
            40_000 + sport,
            ip(VIP),
            80,
        );
        f.tcp_flags = TCP_SYN;
        let (a, out) = p.run(&f.build());
        got.insert(real_of(a, &out));
        let mut f = Frame::tcp(ip("198.18.1.1"), 40_000 + sport, ip(VIP), 81);
        f.tcp_flags = TCP_SYN;
        let (a, out) = p.run(&f.build());
        assert_eq!(real_of(a, &out), 12, "fo: the first of the heaviest");
    }
    assert_eq!(
        got.len(),
        1,
        "dh: every client of one VIP to one server: {got:?}"
    );
    // The one the table and the VIP's hash give.
    let candidates: Vec<Candidate> = (weights.iter().enumerate())
        .map(|(i, &w)| Candidate {
            index: 11 + i as u32,
            addr: addr_of(ip(&format!("198.18.0.{}", 11 + i))),
            port: 80,
            weight: w,
        })
        .collect();
    let table = xlb::dataplane::sched::build_table(SchedAlgo::Dh, &candidates);
    let want = table[(flow_hash(&addr_of(ip(VIP)), 0) % table.len() as u32) as usize];
    assert_eq!(got.into_iter().next(), Some(want as u8));
}

#[test]
fn twos_prefers_the_lighter_of_its_two_draws() {
    let mut p = Plane::new("sctwos");
    p.apply(&[service(
        ip(VIP),
        80,
        true,
        SchedAlgo::Twos,
        &reals(&[1, 1, 0]),
    )]);
    let (s11, s12) = (slot_of(&p, 11), slot_of(&p, 12));
    let mut n = [0u32; 2];
    for k in 0..600u16 {
        p.sync.set_real_conns(s11, 50, 0);
        p.sync.set_real_conns(s12, 0, 0);
        let (a, out) = p.run(&syn(40_000 + k));
        match real_of(a, &out) {
            11 => n[0] += 1,
            12 => n[1] += 1,
            other => panic!("weight 0 server {other} chosen"),
        }
    }
    // Draws in 0..=2 over weights 1, 1: the loaded one only when both draws are its
    // (4/9 of the time); a plain weighted random would give it half.
    assert!(n[0] > 150 && n[0] < 330, "{n:?}");
}

#[test]
fn the_recount_corrects_flows_that_expired_and_keeps_the_programs_later_updates() {
    let mut p = Plane::new("screcount");
    p.apply(&[service(ip(VIP), 80, true, SchedAlgo::Wlc, &reals(&[1]))]);
    let s = slot_of(&p, 11);
    for port in 50_000..50_010u16 {
        p.run(&with_flags(port, TCP_SYN));
        p.run(&with_flags(port, TCP_ACK));
    }
    for port in 50_010..50_013u16 {
        p.run(&with_flags(port, TCP_SYN));
    }
    assert_eq!(p.sync.real_conns(s), (10, 3));
    // The recount agrees with what the program counted (what `xlb status` shows).
    assert_eq!(p.sync.recount_conns().unwrap(), 1);
    assert_eq!(p.sync.real_conns(s), (10, 3));
    // The flows expire without a packet: gone from the table, only a recount sees it.
    {
        let mut tables = p.maps().conn_tables(true).unwrap();
        for b in 0..tables.v4.len() {
            tables.v4.set(b, Default::default());
        }
    }
    assert_eq!(p.sync.real_conns(s), (10, 3), "the program cannot know");
    p.sync.recount_conns().unwrap();
    assert_eq!(p.sync.real_conns(s), (0, 0));
    // A new flow after the correction counts from there.
    p.run(&with_flags(50_100, TCP_SYN));
    assert_eq!(p.sync.real_conns(s), (0, 1));
    p.sync.recount_conns().unwrap();
    assert_eq!(p.sync.real_conns(s), (0, 1));
}

#[test]
fn ipv6_flows_are_scheduled_and_counted_alike() {
    let vip6 = ip("2001:db8::100");
    let reals6 = vec![(ip("2001:db8::11"), 1), (ip("2001:db8::12"), 1)];
    let mut p = Plane::new("scv6");
    p.apply(&[service(vip6, 80, true, SchedAlgo::Wlc, &reals6)]);
    let slot6 = |p: &Plane, last: u8| {
        let want = addr_of(ip(&format!("2001:db8::{last:x}")));
        (0..p.maps().reals_view.len() as u32)
            .find(|&i| p.maps().reals_view.get(i as usize).addr == want)
            .unwrap()
    };
    let (a, b) = (slot6(&p, 0x11), slot6(&p, 0x12));
    p.sync.set_real_conns(a, 3, 0);
    p.sync.set_real_conns(b, 2, 100);
    let frame = |flags| {
        let mut f = Frame::tcp(ip("2001:db8:1::1"), 41_000, vip6, 80);
        f.tcp_flags = flags;
        f.build()
    };
    let (action, out) = p.run(&frame(TCP_SYN));
    assert_eq!(real_of(action, &out), 0x12, "612 < 768");
    assert_eq!(p.sync.real_conns(b), (2, 101));
    p.run(&frame(TCP_ACK));
    assert_eq!(p.sync.real_conns(b), (3, 100));
    assert_eq!(p.sync.real_conns(a), (3, 0));
}
