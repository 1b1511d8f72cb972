//! A SYN flood against established flows, end to end: `xlb run` on a small connection
//! table, long-lived TCP streams through the VIP to real servers, then 200,000 SYNs from
//! random sources sent onto the client's link. Every stream must keep talking to the
//! same real server, and `xlb status` and the daemon's log must show the half-open slots
//! the flood gave up.

use std::{
    net::SocketAddr,
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use integration_tests::{
    frames::{TCP_ACK, TCP_SYN},
    netns::{
        EchoConn, LAB_VIP, Lab, dr_lab, echo_server, lab_real, send_segments, start_xlb,
        write_config, xlb_bin, xlb_status, xlb_status_json,
    },
};

/// Slots of the IPv4 table: 1,024 buckets, the smallest `connection_table_size`.
const TABLE_SLOTS: u32 = 4096;
const STREAMS: usize = 12;
const FLOOD: usize = 200_000;
const REALS: usize = 3;

fn vip(port: u16) -> SocketAddr {
    format!("{LAB_VIP}:{port}").parse().unwrap()
}

/// The echo service (port 7) with `rr` over every real server: a flow that loses its slot
/// is scheduled again, most likely to another server, which resets it.
fn config(global_defs: &str) -> String {
    let mut c = format!(
        r#"
[global_defs]
{global_defs}

[[virtual_server]]
ip = "{LAB_VIP}"
port = 7
protocol = "TCP"
lb_algo = "rr"
lb_kind = "DR"
interface = "eth0"
"#
    );
    for n in 1..=REALS {
        c.push_str(&format!(
            "\n[[virtual_server.real_server]]\nip = \"{}\"\nport = 7\nweight = 1\n",
            lab_real(n)
        ));
    }
    c
}

/// The DR lab with `xlb run` on a [`TABLE_SLOTS`] table, and [`STREAMS`] echo streams
/// through the VIP, each with the real server that answered it.
fn lab_with_streams(tag: &str) -> (Lab, Vec<(EchoConn, String)>) {
    let mut lab = dr_lab(tag, REALS);
    let cfg = write_config(
        &lab,
        &config(&format!("connection_table_size = {TABLE_SLOTS}")),
    );
    start_xlb(&mut lab, "xlb", &cfg);
    let streams = lab.within("client", || {
        (0..STREAMS)
            .map(|i| {
                let mut c = EchoConn::connect(vip(7)).expect("connect through the VIP");
                let first = c.ask(&format!("stream {i} hello")).expect("echo");
                (c, echo_server(&first))
            })
            .collect()
    });
    (lab, streams)
}

#[test]
fn established_streams_survive_a_syn_flood_on_a_small_table() {
    let (mut lab, mut streams) = lab_with_streams("synflood");
    let servers: std::collections::BTreeSet<&String> = streams.iter().map(|(_, s)| s).collect();
    assert!(servers.len() > 1, "rr spread the streams: {servers:?}");

    let flooding = AtomicBool::new(true);
    // The streams keep talking while the flood runs, and after it.
    let (sent, rounds) = std::thread::scope(|s| {
        let talker = s.spawn(|| {
            let mut rounds = 0;
            while flooding.load(Ordering::Relaxed) {
                for (i, (c, server)) in streams.iter_mut().enumerate() {
                    let line = format!("stream {i} round {rounds}");
                    let answer = c
                        .ask(&line)
                        .unwrap_or_else(|e| panic!("stream {i} (on {server}) lost: {e}"));
                    assert_eq!(
                        echo_server(&answer),
                        *server,
                        "stream {i} moved to another real server: {answer}"
                    );
                    assert!(answer.ends_with(&line), "{answer}");
                }
                rounds += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            rounds
        });
        let sent = send_segments(&lab, FLOOD, TCP_SYN);
        flooding.store(false, Ordering::Relaxed);
        (sent, talker.join())
    });
    let rounds = rounds.unwrap_or_else(|e| std::panic::resume_unwind(e));
    println!("flood: {sent} SYNs sent; the streams talked {rounds} rounds meanwhile");
    assert!(sent > FLOOD * 9 / 10, "only {sent} SYNs sent");
    for (i, (c, server)) in streams.iter_mut().enumerate() {
        let answer = c
            .ask(&format!("stream {i} after the flood"))
            .unwrap_or_else(|e| panic!("stream {i} (on {server}) lost after the flood: {e}"));
        assert_eq!(echo_server(&answer), *server, "stream {i}: {answer}");
    }

    let json: serde_json::Value = xlb_status_json(&lab.pins.0);
    let evictions = &json["conn_evictions"];
    let half_open = evictions["syn_recv"].as_u64();
    assert!(
        half_open.is_some_and(|n| n > FLOOD as u64 / 4),
        "the flood's half-open slots were evicted: {evictions}"
    );
    assert_eq!(evictions["established"], 0, "{evictions}");
    let text = xlb_status(&lab.pins.0, &[]);
    assert!(
        text.contains("half-open connections (SYN_RECV) evicted from full buckets: "),
        "{text}"
    );
    println!("{text}");
    // The daemon says so in its log too (at most once every 10 s), and that no
    // established flow went.
    lab.wait_log(
        "xlb",
        "half-open connections (SYN_RECV) given up in full buckets, established ones kept",
        Duration::from_secs(5),
    );
    assert!(
        !lab.log("xlb").contains("connection table full"),
        "{}",
        lab.log("xlb")
    );
}

fn xlb_conns(lab: &Lab) -> Vec<serde_json::Value> {
    let out = Command::new(xlb_bin())
        .args(["conns", "--json", "--pin-path"])
        .arg(&lab.pins.0)
        .output()
        .expect("xlb conns");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("conns JSON");
    v.as_array().cloned().unwrap_or_default()
}

#[test]
fn a_half_open_connection_expires_after_the_syn_recv_timeout() {
    let mut lab = dr_lab("synrecv", 2);
    let cfg = write_config(&lab, &config(""));
    start_xlb(&mut lab, "xlb", &cfg);
    let mut stream = lab.within("client", || {
        let mut c = EchoConn::connect(vip(7)).expect("connect through the VIP");
        c.ask("hello").expect("echo");
        c
    });
    let state = |c: &serde_json::Value| c["state"].as_str().unwrap_or_default().to_string();
    let expires = |c: &serde_json::Value| c["expires_in_s"].as_u64().unwrap_or(u64::MAX);
    // IPVS's default: 60 s in SYN_RECV.
    assert_eq!(send_segments(&lab, 1, TCP_SYN), 1);
    let conns = xlb_conns(&lab);
    let half_open: Vec<_> = conns.iter().filter(|c| state(c) == "SYN_RECV").collect();
    assert_eq!(half_open.len(), 1, "the SYN's slot: {conns:?}");
    assert!((50..=60).contains(&expires(half_open[0])), "{conns:?}");
    let established: Vec<_> = conns.iter().filter(|c| state(c) == "ESTABLISHED").collect();
    assert_eq!(established.len(), 1, "the stream, by its ACK: {conns:?}");
    assert!(expires(established[0]) > 800, "{conns:?}");

    // Settable beside keepalived's lvs_timeouts; a reload applies it.
    std::fs::write(&cfg, config("lvs_timeouts = { syn_recv = 3 }")).expect("config");
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log(
        "xlb",
        "lvs_timeouts changed: program reloaded",
        Duration::from_secs(10),
    );
    assert_eq!(send_segments(&lab, 1, TCP_SYN), 1);
    let conns = xlb_conns(&lab);
    assert!(
        conns
            .iter()
            .any(|c| state(c) == "SYN_RECV" && expires(c) <= 3),
        "lvs_timeouts.syn_recv 3: {conns:?}"
    );
    // Past the timeout (3 s in ticks of 1.07 s, plus one tick) that slot is gone, and the
    // first one counts 3 s too now; the stream, refreshed meanwhile, stays.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        stream.ask("still here").expect("the stream lives");
    }
    let conns = xlb_conns(&lab);
    assert!(
        conns.len() == 1 && state(&conns[0]) == "ESTABLISHED",
        "{conns:?}"
    );
}

#[test]
fn an_ack_flood_costs_neither_established_streams_nor_new_connections() {
    let (lab, mut streams) = lab_with_streams("ackflood");
    // Bare ACKs from random sources look like flows taken over mid-stream: each makes a
    // half-open slot, which the next one may take.
    let sent = send_segments(&lab, 50_000, TCP_ACK);
    assert!(sent > 45_000, "only {sent} ACKs sent");
    // In reverse: a stream that lost its slot is scheduled again, and rr must not give
    // the streams their old servers back merely because they ask in their old order.
    for (i, (c, server)) in streams.iter_mut().enumerate().rev() {
        let answer = c
            .ask(&format!("stream {i} after the flood"))
            .unwrap_or_else(|e| panic!("stream {i} (on {server}) lost: {e}"));
        assert_eq!(echo_server(&answer), *server, "stream {i}: {answer}");
    }
    // New connections are still tracked: a conversation stays on one real server.
    lab.within("client", || {
        for n in 0..10 {
            let mut c = EchoConn::connect(vip(7)).expect("a new connection after the flood");
            let server = echo_server(&c.ask("first").expect("echo"));
            for line in 0..3 {
                let answer = c
                    .ask(&format!("connection {n} line {line}"))
                    .unwrap_or_else(|e| panic!("new connection {n} broke: {e}"));
                assert_eq!(echo_server(&answer), server, "{answer}");
            }
        }
    });
    let json: serde_json::Value = xlb_status_json(&lab.pins.0);
    let evictions = &json["conn_evictions"];
    assert!(
        evictions["syn_recv"].as_u64().is_some_and(|n| n > 10_000),
        "{evictions}"
    );
    assert_eq!(evictions["established"], 0, "{evictions}");
    assert_eq!(evictions["not_tracked"], 0, "{evictions}");
}
