//! The connection tables (`lb_common::conn`) on the real kernel: what the XDP program
//! writes, read back through the mmap-ed maps as `xlb status` reads them; TCP state and
//! timeouts; torn, expired and full buckets, crafted by writing slots directly.

use std::net::{IpAddr, Ipv4Addr};

use integration_tests::{
    Plane,
    frames::{Frame, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN},
    pin_to_cpu, real_mac, service,
};
use lb_common::{
    CONN_EVICTED_ESTABLISHED, CONN_EVICTED_SYN_RECV, CONN_FIN, CONN_NOT_TRACKED, CONN_OPEN,
    CONN_SYN_RECV, Conn4, ConnValue, FlowKey4, SchedAlgo, TIMEOUT_TCP, conn_check, conn_hash4,
    ticks,
};
use xlb::{
    cli::conns::{self, Conn},
    dataplane::conn_table::{Tables, now_ticks},
};

const XDP_TX: u32 = 3;
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);

fn plane(tag: &str) -> Plane {
    // rr keeps a cursor per CPU: one CPU, so that "the next server" is well defined.
    pin_to_cpu(0);
    let mut p = Plane::new(tag);
    let reals: Vec<(IpAddr, u32)> = (1..=2)
        .map(|i| (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10 + i)), 1))
        .collect();
    p.apply(&[service(IpAddr::V4(VIP), 80, true, SchedAlgo::Rr, &reals)]);
    p
}

/// Sends one TCP segment of CLIENT:`port` -> VIP:80; returns the real server (last octet
/// of its MAC).
fn send(p: &mut Plane, port: u16, flags: u8) -> u8 {
    let mut f = Frame::tcp(IpAddr::V4(CLIENT), port, IpAddr::V4(VIP), 80);
    f.tcp_flags = flags;
    let (action, out) = p.run(&f.build());
    assert_eq!(action, XDP_TX);
    assert_eq!(&out[..5], &real_mac(0)[..5]);
    out[5]
}

fn tables(p: &Plane) -> Tables {
    p.maps()
        .conn_tables(true)
        .expect("mapping the connection tables")
}

fn live(p: &Plane) -> Vec<Conn> {
    conns::list(&tables(p), now_ticks())
}

fn key(port: u16) -> FlowKey4 {
    FlowKey4 {
        saddr: CLIENT.octets(),
        daddr: VIP.octets(),
        sport: port,
        dport: 80,
        proto: 6,
        _pad: [0; 3],
    }
}

/// The bucket of a flow and the index of its slot there, if it has one.
fn slot_of(t: &Tables, k: &FlowKey4) -> (usize, Option<usize>) {
    let b = t.bucket4(k);
    let i = t.v4.get(b).slots.iter().position(|s| s.key == *k);
    (b, i)
}

fn new_flows(p: &Plane) -> u64 {
    p.maps()
        .service_stats
        .get(&0, 0)
        .unwrap()
        .iter()
        .map(|c| c.new_flows)
        .sum()
}

#[test]
fn a_flow_is_tracked_with_ipvs_states_and_timeouts() {
    let mut p = plane("conn-state");
    assert!(live(&p).is_empty());
    let real = send(&mut p, 40000, TCP_SYN);
    let conns = live(&p);
    assert_eq!(conns.len(), 1, "{conns:?}");
    let c = &conns[0];
    assert_eq!(c.client, "198.18.1.1:40000".parse().unwrap());
    assert_eq!(c.virtual_service, "198.18.0.100:80".parse().unwrap());
    assert_eq!(
        (c.protocol, c.state),
        ("TCP", "SYN_RECV"),
        "only a SYN seen"
    );
    assert!((50..=60).contains(&c.expires_in_s), "IPVS's 60 s: {c:?}");
    // A RST in SYN_RECV keeps it (IPVS's input-only table); the client's ACK establishes.
    assert_eq!(send(&mut p, 40000, TCP_RST), real);
    assert_eq!(live(&p)[0].state, "SYN_RECV");
    assert_eq!(send(&mut p, 40000, TCP_ACK), real);
    let c = &live(&p)[0];
    assert_eq!(c.state, "ESTABLISHED");
    assert!((890..=900).contains(&c.expires_in_s), "{c:?}");

    assert_eq!(send(&mut p, 40000, TCP_ACK | TCP_FIN), real);
    let c = &live(&p)[0];
    assert_eq!(c.state, "FIN_WAIT");
    assert!((110..=120).contains(&c.expires_in_s), "{c:?}");
    // The closing connection's last ACK still reaches the same server.
    assert_eq!(send(&mut p, 40000, TCP_ACK), real);
    assert_eq!(
        live(&p)[0].state,
        "FIN_WAIT",
        "a FIN is not undone by an ACK"
    );

    assert_eq!(send(&mut p, 40000, TCP_RST), real);
    let c = &live(&p)[0];
    assert_eq!(c.state, "CLOSE");
    assert!(c.expires_in_s <= 10, "{c:?}");

    // UDP flows have their own timeout.
    let f = Frame::udp(IpAddr::V4(CLIENT), 5353, IpAddr::V4(VIP), 80);
    let mut q = Plane::new("conn-udp");
    q.apply(&[service(
        IpAddr::V4(VIP),
        80,
        false,
        SchedAlgo::Rr,
        &[(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11)), 1)],
    )]);
    assert_eq!(q.run(&f.build()).0, XDP_TX);
    let c = &live(&q)[0];
    assert_eq!((c.protocol, c.state), ("UDP", "UDP"));
    assert!((290..=300).contains(&c.expires_in_s), "{c:?}");
}

#[test]
fn a_first_ack_is_half_open_until_the_next_and_a_first_rst_makes_no_slot() {
    let mut p = plane("conn-first");
    // A flow taken over mid-stream (or a spoofed ACK): half-open until its next packet.
    let real = send(&mut p, 40010, TCP_ACK);
    assert_eq!(live(&p)[0].state, "SYN_RECV");
    assert_eq!(send(&mut p, 40010, TCP_ACK), real);
    assert_eq!(live(&p)[0].state, "ESTABLISHED");
    // A connection's last packet seen first is forwarded, and nothing is kept for it.
    send(&mut p, 40011, TCP_RST);
    send(&mut p, 40012, TCP_ACK | TCP_FIN);
    send(&mut p, 40013, 0);
    assert_eq!(live(&p).len(), 1, "{:?}", live(&p));
    assert_eq!(new_flows(&p), 4, "each scheduled, none kept");
}

#[test]
fn a_syn_retransmit_stays_but_a_syn_after_close_is_scheduled_again() {
    let mut p = plane("conn-reuse");
    let first = send(&mut p, 40001, TCP_SYN);
    // rr: the next new flow would go to the other server; a retransmitted SYN must not.
    assert_eq!(send(&mut p, 40001, TCP_SYN), first);
    assert_eq!(new_flows(&p), 1);
    send(&mut p, 40001, TCP_ACK);
    send(&mut p, 40001, TCP_RST);
    let again = send(&mut p, 40001, TCP_SYN);
    assert_eq!(
        new_flows(&p),
        2,
        "the new connection on the old 5-tuple is a new flow"
    );
    assert_ne!(
        again, first,
        "rr gave the reopened connection the next server"
    );
    let conns = live(&p);
    assert_eq!(conns.len(), 1, "its old slot was reused: {conns:?}");
    assert_eq!(conns[0].state, "SYN_RECV");
}

#[test]
fn an_expired_or_torn_slot_is_a_new_flow() {
    let mut p = plane("conn-torn");
    let first = send(&mut p, 40002, TCP_SYN);
    let mut t = tables(&p);
    let k = key(40002);
    let (b, i) = slot_of(&t, &k);
    let i = i.expect("the flow has a slot");

    // Idle for longer than the TCP timeout: the slot is free, the next packet is new.
    let mut bucket = t.v4.get(b);
    bucket.slots[i].value.seen = now_ticks() - TIMEOUT_TCP - 2;
    t.v4.set(b, bucket);
    let second = send(&mut p, 40002, TCP_ACK);
    assert_eq!(new_flows(&p), 2);
    assert_ne!(second, first, "rr scheduled the expired flow again");

    // Torn: the slot names the other real server with the check of this one. xlb must
    // not follow it.
    let mut bucket = t.v4.get(b);
    let v = &mut bucket.slots[i].value;
    assert!(v.live(conn_hash4(&k, t.seed), now_ticks(), &t.timeouts));
    v.real ^= 1;
    t.v4.set(b, bucket);
    send(&mut p, 40002, TCP_ACK);
    assert_eq!(new_flows(&p), 3, "a torn slot is a miss");
    let v = t.v4.get(b).slots[i].value;
    assert!(
        v.live(conn_hash4(&k, t.seed), now_ticks(), &t.timeouts),
        "and was written whole again"
    );
}

/// Fills the bucket of `k` with four live strangers of (state, ticks since seen).
fn fill_bucket(t: &mut Tables, k: &FlowKey4, slots: [(u8, u32); 4]) -> usize {
    let (b, _) = slot_of(t, k);
    let now = now_ticks();
    let mut bucket = t.v4.get(b);
    for (w, (slot, (state, age))) in bucket.slots.iter_mut().zip(slots).enumerate() {
        let mut key = *k;
        key.saddr = [198, 19, 0, w as u8];
        let (real, service_id) = (0, 0);
        *slot = Conn4 {
            key,
            value: ConnValue {
                real,
                service_id,
                state,
                proto: 6,
                seen: now - age,
                check: conn_check(conn_hash4(&key, t.seed), real, service_id),
            },
        };
    }
    t.v4.set(b, bucket);
    b
}

/// `xlb_conn_evictions`, summed over CPUs, by kind.
fn evictions(p: &Plane) -> [u64; 3] {
    let m = &p.maps().conn_evictions;
    let total = |i: u32| m.get(&i, 0).unwrap().iter().sum();
    [
        total(CONN_EVICTED_SYN_RECV),
        total(CONN_EVICTED_ESTABLISHED),
        total(CONN_NOT_TRACKED),
    ]
}

#[test]
fn a_full_bucket_gives_up_the_oldest_half_open_slot_first() {
    let mut p = plane("conn-evict-syn");
    let mut t = tables(&p);
    let k = key(40003);
    // An established flow idle 10 minutes, three half-open ones seen 3, 5 and 4 ticks ago.
    let b = fill_bucket(
        &mut t,
        &k,
        [
            (CONN_OPEN, ticks(600)),
            (CONN_SYN_RECV, 3),
            (CONN_SYN_RECV, 5),
            (CONN_SYN_RECV, 4),
        ],
    );
    assert_eq!(live(&p).len(), 4);
    send(&mut p, 40003, TCP_SYN);
    let after = t.v4.get(b);
    assert_eq!(after.slots[2].key, k, "the oldest SYN_RECV slot went");
    for w in [0, 1, 3] {
        assert_eq!(after.slots[w].key.saddr, [198, 19, 0, w as u8], "slot {w}");
    }
    assert_eq!(evictions(&p), [1, 0, 0]);
}

#[test]
fn a_full_bucket_gives_up_an_established_flow_only_after_60_s_idle() {
    let mut p = plane("conn-evict-idle");
    let mut t = tables(&p);
    let k = key(40006);
    let b = fill_bucket(
        &mut t,
        &k,
        [
            (CONN_OPEN, 0),
            (CONN_OPEN, ticks(61) + 1),
            (CONN_FIN, ticks(30)),
            (CONN_OPEN, ticks(300)),
        ],
    );
    send(&mut p, 40006, TCP_SYN);
    assert_eq!(t.v4.get(b).slots[3].key, k, "the flow idle longest went");
    assert_eq!(evictions(&p), [0, 1, 0]);

    // Four flows with a packet in the last 60 s: all stay, the new flow is forwarded
    // untracked and counted.
    let k = key(40007);
    let b = fill_bucket(
        &mut t,
        &k,
        [
            (CONN_OPEN, 0),
            (CONN_OPEN, 1),
            (CONN_FIN, 2),
            (CONN_OPEN, ticks(60)),
        ],
    );
    let before = t.v4.get(b);
    let real = send(&mut p, 40007, TCP_SYN);
    assert_eq!(t.v4.get(b), before, "no active flow given up");
    assert_eq!(evictions(&p), [0, 1, 1]);
    assert_ne!(
        send(&mut p, 40007, TCP_ACK),
        real,
        "untracked: rr schedules its next packet again"
    );
}

#[test]
fn flows_survive_the_controller_reloading_the_program() {
    // A restart adopts the pinned tables and their seed: the flow is still found.
    let mut p = plane("conn-adopt");
    let first = send(&mut p, 40004, TCP_SYN);
    let seed = tables(&p).seed;
    let (dataplane, maps) =
        xlb::dataplane::DataPlane::load(&p.pins.0).expect("loading over the pinned maps");
    p.dataplane = dataplane;
    let t = maps.conn_tables(false).unwrap();
    assert_eq!(t.seed, seed, "the seed is kept with the tables");
    assert_eq!(send(&mut p, 40004, TCP_ACK), first);
    assert_eq!(new_flows(&p), 1);
}

#[test]
fn ipv6_flows_are_tracked_in_their_own_table() {
    pin_to_cpu(0);
    let vip: IpAddr = "2001:db8::100".parse().unwrap();
    let client: IpAddr = "2001:db8:1::1".parse().unwrap();
    let mut p = Plane::new("conn-v6");
    let reals: Vec<(IpAddr, u32)> = ["2001:db8::11", "2001:db8::12"]
        .iter()
        .map(|a| (a.parse().unwrap(), 1))
        .collect();
    p.apply(&[service(vip, 443, true, SchedAlgo::Rr, &reals)]);
    let mut f = Frame::tcp(client, 40000, vip, 443);
    let (action, out) = p.run(&f.build());
    assert_eq!(action, XDP_TX);
    let real = out[5];
    let conns = live(&p);
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(conns[0].client, "[2001:db8:1::1]:40000".parse().unwrap());
    assert_eq!(
        conns[0].virtual_service,
        "[2001:db8::100]:443".parse().unwrap()
    );
    assert_eq!(conns[0].state, "SYN_RECV");
    f.tcp_flags = TCP_ACK | TCP_FIN;
    let (_, out) = p.run(&f.build());
    assert_eq!(out[5], real, "the established IPv6 flow stays");
    assert_eq!(live(&p)[0].state, "FIN_WAIT");
    assert_eq!(new_flows(&p), 1);
}

#[test]
fn the_table_size_is_set_at_creation_and_pinned_tables_keep_theirs() {
    pin_to_cpu(0);
    let mut p = Plane::sized("conn-size", 1 << 12);
    p.apply(&[service(
        IpAddr::V4(VIP),
        80,
        true,
        SchedAlgo::Rr,
        &[(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11)), 1)],
    )]);
    {
        let t = tables(&p);
        assert_eq!((t.v4.len(), t.v6.len()), (1024, 256));
    }
    for port in 0..3000 {
        send(&mut p, 20000 + port, TCP_SYN);
    }
    let n = live(&p).len();
    assert!(
        (2500..=3000).contains(&n),
        "{n} of 3,000 flows in 4,096 slots"
    );
    // A restart asking for another size adopts the pinned tables as they are.
    let (dataplane, maps) = xlb::dataplane::DataPlane::load_with(
        &p.pins.0,
        xlb::dataplane::ConnTableOptions {
            conn_slots: 1 << 16,
            ..Default::default()
        },
    )
    .expect("loading over the pinned maps");
    p.dataplane = dataplane;
    assert_eq!(maps.conn_tables(false).unwrap().v4.len(), 1024);
    assert_eq!(send(&mut p, 20000, TCP_ACK), 11);
    assert_eq!(
        new_flows(&p),
        3000,
        "the program found the flows with the pinned size"
    );
}

#[test]
fn lvs_timeouts_reach_the_program_and_the_readers() {
    let mut p = plane("conn-timeouts");
    let (dataplane, _maps) = xlb::dataplane::DataPlane::load_with(
        &p.pins.0,
        xlb::dataplane::ConnTableOptions {
            timeouts: lb_common::Timeouts::from_seconds(7200, 60, 30).with_syn_recv(5),
            ..Default::default()
        },
    )
    .expect("loading with lvs_timeouts");
    p.dataplane = dataplane;
    let first = send(&mut p, 40005, TCP_SYN);
    let c = &live(&p)[0];
    assert!(c.expires_in_s <= 5, "syn_recv 5: {c:?}");
    assert_eq!(send(&mut p, 40005, TCP_ACK), first);
    let c = &live(&p)[0];
    assert!((7190..=7200).contains(&c.expires_in_s), "{c:?}");
    // Idle for longer than IPVS's default 900 s, within 7,200: still the same flow.
    let mut t = tables(&p);
    let k = key(40005);
    let (b, i) = slot_of(&t, &k);
    let mut bucket = t.v4.get(b);
    bucket.slots[i.unwrap()].value.seen = now_ticks() - TIMEOUT_TCP - 100;
    t.v4.set(b, bucket);
    assert_eq!(send(&mut p, 40005, TCP_ACK), first);
    assert_eq!(new_flows(&p), 1, "the flow outlived IPVS's default timeout");
    assert_eq!(send(&mut p, 40005, TCP_ACK | TCP_FIN), first);
    let c = &live(&p)[0];
    assert!((50..=60).contains(&c.expires_in_s), "tcpfin 60: {c:?}");
}

#[test]
fn an_ipv6_syn_flood_gives_up_only_half_open_slots() {
    pin_to_cpu(0);
    let vip: IpAddr = "2001:db8::100".parse().unwrap();
    // 4,096 IPv4 slots: 256 IPv6 buckets, 1,024 slots.
    let mut p = Plane::sized("conn-v6-flood", 1 << 12);
    let reals: Vec<(IpAddr, u32)> = ["2001:db8::11", "2001:db8::12"]
        .iter()
        .map(|a| (a.parse().unwrap(), 1))
        .collect();
    p.apply(&[service(vip, 443, true, SchedAlgo::Rr, &reals)]);
    let client: IpAddr = "2001:db8:1::1".parse().unwrap();
    let mut stream = Frame::tcp(client, 40000, vip, 443);
    let run = |p: &mut Plane, f: &Frame| {
        let (action, out) = p.run(&f.build());
        assert_eq!(action, XDP_TX);
        out[5]
    };
    let real = run(&mut p, &stream);
    stream.tcp_flags = TCP_ACK;
    assert_eq!(run(&mut p, &stream), real);
    for i in 0..5000u32 {
        let src: IpAddr = format!("2001:db8:2::{:x}:{:x}", i >> 16, i & 0xffff)
            .parse()
            .unwrap();
        run(
            &mut p,
            &Frame::tcp(src, 1024 + (i % 60000) as u16, vip, 443),
        );
        if i % 500 == 0 {
            assert_eq!(run(&mut p, &stream), real, "the stream, after {i} SYNs");
        }
    }
    assert_eq!(run(&mut p, &stream), real);
    assert_eq!(new_flows(&p), 5001, "the stream was never scheduled again");
    let [syn_recv, established, not_tracked] = evictions(&p);
    assert!(syn_recv > 3000, "{syn_recv} half-open slots given up");
    assert_eq!((established, not_tracked), (0, 0));
}

#[test]
fn grown_tables_keep_every_flow_in_its_new_bucket() {
    pin_to_cpu(0);
    let mut p = Plane::sized("conn-grow", 1 << 12);
    let reals: Vec<(IpAddr, u32)> = (1..=2)
        .map(|i| (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10 + i)), 1))
        .collect();
    p.apply(&[service(IpAddr::V4(VIP), 80, true, SchedAlgo::Rr, &reals)]);
    // 2,500 flows in 4,096 slots: established, each on the real server rr gave it.
    let mut real_of = std::collections::BTreeMap::new();
    for port in 0..2500u16 {
        let real = send(&mut p, 20000 + port, TCP_SYN);
        send(&mut p, 20000 + port, TCP_ACK);
        real_of.insert(20000 + port, real);
    }
    let before: Vec<Conn> = live(&p);
    assert!(before.len() > 2000, "{} flows live", before.len());
    let flows = new_flows(&p);
    // The daemon's growth: the program loaded over tables four times bigger, the
    // entries copied into their buckets under the wider mask.
    let (dataplane, maps) = xlb::dataplane::DataPlane::load_with(
        &p.pins.0,
        xlb::dataplane::ConnTableOptions {
            conn_slots: 1 << 14,
            conn_grow_to: Some(1 << 14),
            ..Default::default()
        },
    )
    .expect("growing the pinned tables");
    p.dataplane = dataplane;
    p.sync.take_conn_tables(maps);
    {
        let t = tables(&p);
        assert_eq!((t.v4.len(), t.v6.len()), (4096, 1024));
    }
    let pinned = std::fs::read_dir(&p.pins.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(
        !pinned.iter().any(|n| n.ends_with("_grown")),
        "the staged pins were renamed: {pinned:?}"
    );
    let after = live(&p);
    assert_eq!(after.len(), before.len(), "every live entry copied");
    // The new program finds each flow where the copy put it: same real server, no new
    // flow scheduled.
    for c in &before {
        let port = c.client.port();
        assert_eq!(send(&mut p, port, TCP_ACK), real_of[&port], "flow {port}");
    }
    assert_eq!(new_flows(&p), flows, "no flow was scheduled again");
    // And records new ones in the bigger table.
    send(&mut p, 40000, TCP_SYN);
    assert_eq!(live(&p).len(), before.len() + 1);
    // A load that asks for no growth adopts the grown tables.
    let (dataplane, maps) =
        xlb::dataplane::DataPlane::load_with(&p.pins.0, Default::default()).expect("adopting");
    p.dataplane = dataplane;
    assert_eq!(maps.conn_tables(false).unwrap().v4.len(), 4096);
}
