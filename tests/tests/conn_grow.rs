//! Connection tables that grow under load, end to end: `xlb run` with tables that start
//! at 4,096 IPv4 slots (`connection_table_start_size`), long-lived TCP echo streams
//! through a `wrr` service of three real servers, then enough half-open flows (crafted
//! SYNs) to fill more than half the table. The daemon must grow the tables fourfold,
//! say so in its log and in `xlb status`, and every stream must keep talking to its
//! first real server while the tables grow and after (a lost or misplaced entry would
//! send the stream's next packet to another server, which resets it). A lowered maximum
//! keeps the grown size, and a restart adopts it. Tables full at their maximum do not
//! grow until a reload raises it; then they do, without teardown.

use std::{
    net::SocketAddr,
    process::Command,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::Duration,
};

use integration_tests::{
    frames::TCP_SYN,
    netns::{
        EchoConn, LAB_VIP, Lab, dr_lab, echo_server, lab_real, send_segments, start_xlb, wait_for,
        write_config, xlb_bin, xlb_status, xlb_status_json,
    },
};

const START_SLOTS: u64 = 4096;
const STREAMS: usize = 24;
/// Half-open flows sent: more than half of 4,096 slots stay live (60 s in SYN_RECV),
/// fewer than half of 16,384, so the tables grow once.
const SYNS: usize = 6000;

fn vip(port: u16) -> SocketAddr {
    format!("{LAB_VIP}:{port}").parse().unwrap()
}

/// The echo service (port 7) with `wrr` 1:2:3 over three real servers.
fn config(global_defs: &str) -> String {
    let mut c = format!(
        "[global_defs]\n{global_defs}\n\n[[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 7\n\
         protocol = \"TCP\"\nlb_algo = \"wrr\"\nlb_kind = \"DR\"\ninterface = \"eth0\"\n"
    );
    for n in 1..=3 {
        c.push_str(&format!(
            "\n[[virtual_server.real_server]]\nip = \"{}\"\nport = 7\nweight = {n}\n",
            lab_real(n)
        ));
    }
    c
}

/// Buckets of a pinned table, as bpftool shows it.
fn buckets(lab: &Lab, map: &str) -> u64 {
    let out = Command::new("bpftool")
        .args(["-j", "map", "show", "pinned"])
        .arg(lab.pins.0.join(map))
        .output()
        .expect("bpftool");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool -j");
    v["max_entries"].as_u64().expect("max_entries")
}

/// Asks every stream once more; each must answer from its first server.
fn ask_all(streams: &mut [(EchoConn, String)], what: &str) {
    for (i, (c, server)) in streams.iter_mut().enumerate() {
        let line = format!("stream {i} {what}");
        let answer = c
            .ask(&line)
            .unwrap_or_else(|e| panic!("stream {i} (on {server}) lost {what}: {e}"));
        assert_eq!(echo_server(&answer), *server, "stream {i} moved: {answer}");
        assert!(answer.ends_with(&line), "{answer}");
    }
}

#[test]
fn the_tables_grow_under_load_and_every_stream_keeps_its_real_server() {
    let mut lab = dr_lab("cgw", 3);
    let cfg = write_config(
        &lab,
        &config(&format!("connection_table_start_size = {START_SLOTS}")),
    );
    start_xlb(&mut lab, "xlb", &cfg);
    assert_eq!(buckets(&lab, "xlb_conns4"), START_SLOTS / 4);
    assert_eq!(buckets(&lab, "xlb_conns6"), START_SLOTS / 16);
    let text = xlb_status(&lab.pins.0, &[]);
    assert!(
        text.contains("connection tables: 4096 IPv4 slots (IPv6: a quarter), growing up to 524288; grown 0 times"),
        "{text}"
    );

    let mut streams: Vec<(EchoConn, String)> = lab.within("client", || {
        (0..STREAMS)
            .map(|i| {
                let mut c = EchoConn::connect(vip(7)).expect("connect through the VIP");
                let first = c.ask(&format!("stream {i} hello")).expect("echo");
                (c, echo_server(&first))
            })
            .collect()
    });
    let servers: std::collections::BTreeSet<&String> = streams.iter().map(|(_, s)| s).collect();
    assert_eq!(servers.len(), 3, "wrr spread the streams: {servers:?}");

    // The streams talk all along: while the half-open flows fill the table, while the
    // daemon grows it, and after.
    let talking = AtomicBool::new(true);
    let done = AtomicUsize::new(0);
    let (rounds, sent, before) = std::thread::scope(|s| {
        let talker = s.spawn(|| {
            let mut rounds = 0;
            while talking.load(Ordering::Relaxed) {
                ask_all(&mut streams, &format!("round {rounds}"));
                rounds += 1;
                done.store(rounds, Ordering::Relaxed);
            }
            rounds
        });
        let rounds_done = |at_least: usize| {
            wait_for(Duration::from_secs(30), "rounds of the streams", || {
                let n = done.load(Ordering::Relaxed);
                (
                    (n >= at_least || talker.is_finished()).then_some(()),
                    format!("{n}"),
                )
            })
        };
        rounds_done(1);
        let sent = send_segments(&lab, SYNS, TCP_SYN);
        let log = lab.log_path("xlb");
        wait_for(Duration::from_secs(10), "the tables grown", || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            (text.contains("connection tables grown").then_some(()), text)
        });
        let before = done.load(Ordering::Relaxed);
        // Whole rounds on the grown tables.
        rounds_done(before + 2);
        talking.store(false, Ordering::Relaxed);
        (talker.join(), sent, before)
    });
    let rounds = rounds.unwrap_or_else(|e| std::panic::resume_unwind(e));
    println!("{sent} SYNs sent; {rounds} rounds of {STREAMS} streams, {before} before the growth");
    assert!(sent > SYNS * 9 / 10, "only {sent} SYNs sent");
    assert!(
        before > 0 && rounds >= before + 2,
        "traffic all along: {before} / {rounds}"
    );

    let log = lab.log("xlb");
    for line in log.lines().filter(|l| l.contains("connection table")) {
        println!("{line}");
    }
    let grew = log
        .lines()
        .find(|l| l.contains("connection tables grown"))
        .expect("the growth line");
    assert!(
        grew.contains("from=4096") && grew.contains("to=16384"),
        "{grew}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("connection tables filling") && l.contains("occupancy_percent")),
        "{log}"
    );
    for map in ["xlb_conns4", "xlb_conns6"] {
        assert!(
            log.lines()
                .any(|l| l.contains("connection table grown (entries kept)")
                    && l.contains(&format!("map=\"{map}\""))
                    || l.contains("connection table grown (entries kept)")
                        && l.contains(&format!("map={map}"))),
            "{map}: {log}"
        );
    }
    assert_eq!(log.matches("connection tables grown").count(), 1, "{log}");
    assert_eq!(buckets(&lab, "xlb_conns4"), START_SLOTS);
    assert_eq!(buckets(&lab, "xlb_conns6"), START_SLOTS / 4);
    let json: serde_json::Value = xlb_status_json(&lab.pins.0);
    assert_eq!(json["live"]["conn_table"]["slots"], 16384, "{json}");
    assert_eq!(json["live"]["conn_table"]["growths"], 1, "{json}");
    assert_eq!(
        json["conn_slots"],
        serde_json::json!([16384, 4096]),
        "{json}"
    );
    assert!(
        json["connections"].as_u64().unwrap() > START_SLOTS / 2,
        "the half-open flows were copied too: {json}"
    );
    let text = xlb_status(&lab.pins.0, &[]);
    println!("{text}");
    assert!(
        text.contains("grown 1 time since the daemon started"),
        "{text}"
    );
    assert!(
        text.contains("connection table slots: 16384 IPv4, 4096 IPv6"),
        "{text}"
    );
    let maps = Command::new(xlb_bin())
        .args(["maps", "--pin-path"])
        .arg(&lab.pins.0)
        .output()
        .expect("xlb maps");
    let maps = String::from_utf8_lossy(&maps.stdout);
    assert!(
        maps.contains(
            "16384 IPv4 slots now, growing up to 524288 (connection_table_size; grown 1 time"
        ),
        "{maps}"
    );

    // New connections go through the grown tables and stay on one server.
    lab.within("client", || {
        for n in 0..6 {
            let mut c = EchoConn::connect(vip(7)).expect("a new connection after the growth");
            let server = echo_server(&c.ask("first").expect("echo"));
            for line in 0..3 {
                let answer = c
                    .ask(&format!("connection {n} line {line}"))
                    .unwrap_or_else(|e| panic!("new connection {n} broke: {e}"));
                assert_eq!(echo_server(&answer), server, "{answer}");
            }
        }
    });

    // A lower maximum keeps the grown tables, with a warning.
    std::fs::write(
        &cfg,
        config(&format!(
            "connection_table_start_size = {START_SLOTS}\nconnection_table_size = 8192"
        )),
    )
    .expect("config");
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log(
        "xlb",
        "the connection tables are bigger than the new connection_table_size",
        Duration::from_secs(10),
    );
    assert_eq!(buckets(&lab, "xlb_conns4"), START_SLOTS);
    ask_all(&mut streams, "after the reload");

    // A restart adopts the tables at their size; the streams stay.
    lab.kill("xlb", libc::SIGTERM);
    start_xlb(&mut lab, "xlb2", &cfg);
    assert_eq!(buckets(&lab, "xlb_conns4"), START_SLOTS);
    ask_all(&mut streams, "after the restart");
    let json: serde_json::Value = xlb_status_json(&lab.pins.0);
    assert_eq!(json["live"]["conn_table"]["slots"], 16384, "{json}");
    assert_eq!(json["live"]["conn_table"]["max_slots"], 8192, "{json}");
    assert_eq!(json["live"]["conn_table"]["growths"], 0, "{json}");
    lab.signal("xlb2", 0);
}

#[test]
fn a_reload_that_raises_the_maximum_lets_full_tables_grow_without_teardown() {
    let mut lab = dr_lab("cgr", 3);
    // The start size is capped at the maximum: 4,096 slots, and no room to grow.
    let cfg = write_config(&lab, &config("connection_table_size = 4096"));
    start_xlb(&mut lab, "xlb", &cfg);
    let mut streams: Vec<(EchoConn, String)> = lab.within("client", || {
        (0..6)
            .map(|i| {
                let mut c = EchoConn::connect(vip(7)).expect("connect through the VIP");
                let first = c.ask(&format!("stream {i} hello")).expect("echo");
                (c, echo_server(&first))
            })
            .collect()
    });
    let sent = send_segments(&lab, SYNS, TCP_SYN);
    assert!(sent > SYNS * 9 / 10, "only {sent} SYNs sent");
    // Full past the threshold, but at the maximum: a few ticks, and no growth.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!lab.log("xlb").contains("connection tables grown"));
    assert_eq!(buckets(&lab, "xlb_conns4"), START_SLOTS / 4);
    let text = xlb_status(&lab.pins.0, &[]);
    assert!(
        text.contains(
            "4096 IPv4 slots (IPv6: a quarter), at their maximum (connection_table_size 4096)"
        ),
        "{text}"
    );
    ask_all(&mut streams, "at the maximum");

    // A larger maximum: the half-open entries (60 s) still fill the table, which grows.
    std::fs::write(&cfg, config("connection_table_size = 65536")).expect("config");
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log(
        "xlb",
        "connection_table_size changed: the connection tables grow up to it",
        Duration::from_secs(10),
    );
    lab.wait_log("xlb", "connection tables grown", Duration::from_secs(10));
    assert_eq!(buckets(&lab, "xlb_conns4"), START_SLOTS);
    ask_all(&mut streams, "after the growth");
    let json: serde_json::Value = xlb_status_json(&lab.pins.0);
    assert_eq!(json["live"]["conn_table"]["slots"], 16384, "{json}");
    assert_eq!(json["live"]["conn_table"]["max_slots"], 65536, "{json}");
    assert_eq!(json["live"]["conn_table"]["growths"], 1, "{json}");
    lab.signal("xlb", 0);
}
