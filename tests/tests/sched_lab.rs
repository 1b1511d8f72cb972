//! The connection-counting schedulers end to end in network namespaces: a client, a DR
//! director running `xlb run`, three real servers (line echo on port 7, each answer naming
//! its server).
//!
//! - `wlc` with one slow real server: the client opens connections six at a time and
//!   holds the slow server's open (it "answers later": its connections last) while it
//!   closes the others at once. IPVS's rule (overhead = active x 256 + inactive, least
//!   overhead per weight) sends a new connection to the slow server only while its
//!   overhead is no higher than another's: once it holds one established connection
//!   (256), the fast ones, holding only closed ones (1 each, fewer than 256 in this run),
//!   take every later connection. So the slow server gets new connections in the first
//!   round only: at most 6 of 60. The same run under `rr` gives it about a third (the
//!   check that the test can fail).
//! - `lc` with unequal open connections: twelve held connections spread 4/4/4; after the
//!   client closes those of one server, the next six go 1/4/1 (IPVS's least overhead,
//!   the first of equals in address order).

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use integration_tests::netns::{
    EchoConn, LAB_VIP, Lab, dr_lab, echo_server, lab_real, start_xlb, write_config,
};

fn config(algo: &str) -> String {
    let mut cfg = format!(
        "[[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 7\nprotocol = \"TCP\"\n\
         lb_algo = \"{algo}\"\ninterface = \"eth0\"\n"
    );
    for n in 1..=3 {
        cfg.push_str(&format!(
            "\n[[virtual_server.real_server]]\nip = \"{}\"\nport = 7\n",
            lab_real(n)
        ));
    }
    cfg
}

fn vip() -> SocketAddr {
    SocketAddr::new(LAB_VIP.parse::<IpAddr>().unwrap(), 7)
}

/// Opens `n` connections at once; each with the name of the server that answered.
fn open_batch(n: usize) -> Vec<(EchoConn, String)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|k| {
                s.spawn(move || {
                    let mut c = EchoConn::connect(vip()).expect("connect to the VIP");
                    let who = echo_server(&c.ask(&format!("hello {k}")).expect("echo"));
                    (c, who)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Runs ten rounds of six concurrent connections under `algo`, holding rs1's open and
/// closing the others'; returns how many of the 60 rs1 got.
fn slow_share(tag: &str, algo: &str) -> usize {
    let mut lab = dr_lab(tag, 3);
    let path = write_config(&lab, &config(algo));
    start_xlb(&mut lab, "xlb", &path);
    let slow = lab.within("client", || {
        let mut held = Vec::new();
        let mut slow = 0;
        for _ in 0..10 {
            for (conn, who) in open_batch(6) {
                if who == "rs1" {
                    slow += 1;
                    held.push(conn);
                }
                // The others drop here: the client closes them (FIN).
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        slow
    });
    stop(&mut lab);
    slow
}

fn stop(lab: &mut Lab) {
    lab.kill("xlb", libc::SIGTERM);
}

#[test]
fn wlc_sends_fewer_new_connections_to_a_slow_real_server() {
    let wlc = slow_share("schw", "wlc");
    let rr = slow_share("schr", "rr");
    eprintln!("slow server's share of 60 connections: wlc {wlc}, rr {rr}");
    assert!(
        wlc <= 6,
        "wlc gave the slow server {wlc} of 60 (bound: the first round, 6)"
    );
    assert!(
        rr >= 12,
        "rr gave the slow server only {rr} of 60: the lab does not load it"
    );
}

#[test]
fn lc_fills_the_server_with_the_fewest_open_connections() {
    let mut lab = dr_lab("schl", 3);
    let path = write_config(&lab, &config("lc"));
    start_xlb(&mut lab, "xlb", &path);
    let (first, second) = lab.within("client", || {
        let count = |conns: &[(EchoConn, String)]| {
            let mut n = [0usize; 3];
            for (_, who) in conns {
                n[who.trim_start_matches("rs").parse::<usize>().unwrap() - 1] += 1;
            }
            n
        };
        // One at a time: each is established before the next is scheduled.
        let mut held: Vec<(EchoConn, String)> = (0..12).flat_map(|_| open_batch(1)).collect();
        let first = count(&held);
        held.retain(|(_, who)| who != "rs2");
        let more: Vec<(EchoConn, String)> = (0..6).flat_map(|_| open_batch(1)).collect();
        let second = count(&more);
        drop(held);
        (first, second)
    });
    stop(&mut lab);
    assert_eq!(first, [4, 4, 4], "lc over equal servers");
    // rs1 and rs3 hold 4 established (1024); rs2 only 4 closed ones (4): rs2 takes new
    // connections until its overhead (4 + 256 k) passes 1024, then rs1, rs3.
    assert_eq!(second, [1, 4, 1], "lc after rs2's connections closed");
}
