//! Scenario 8: aggregate UDP forwarding with 1, 2 and 3 active-active directors.
//!
//! The scale-out lab of the integration tests ([`netns::scaleout`]): a client, a router
//! running BIRD with ECMP over the directors that announce the VIP by BGP, three directors
//! (xlb + BIRD) and three real servers. A UDP service `VIP:9` (`mh`, client port hashed,
//! `announce = "bgp"`) is added to the directors' config; the real servers drop its
//! datagrams in nftables' prerouting hook (cheaply, and with no ICMP back). The client
//! sends from 64 sockets (64 flows) as fast as one thread can; what reaches the real
//! servers (their eth0 `rx_packets`) per second is the aggregate rate, and each
//! director's eth0 `rx_packets` its share. The number of announcing directors is set by
//! starting and stopping (SIGTERM: withdrawn) their xlb; BIRD keeps running. Rounds are
//! interleaved (1, 2, 3, 1, 2, 3, ...) so the ratios compare like with like.
//!
//! On this 2-CPU machine the client, the router's kernel forwarding, every director's
//! XDP and the real servers share the same two CPUs: more directors add no CPU, so the
//! aggregate is expected to stay flat and the figure says what the shared CPUs allow. The
//! per-director shares show that ECMP spreads the load.

use std::{
    net::UdpSocket,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Result, anyhow};
use integration_tests::{
    PinDir,
    netns::{Lab, scaleout::*},
};
use serde_json::json;

use crate::{
    Opts,
    report::{Report, Section, Summary, f2, mmm},
    threads::enter_netns,
};

const DIRECTORS: usize = 3;
const REALS: usize = 3;
const FLOWS: usize = 64;

/// The UDP service, appended to each director's config.
fn udp_service() -> String {
    let mut s = format!(
        "\n[[virtual_server]]\nip = \"{SO_VIP}\"\nport = 9\nprotocol = \"UDP\"\n\
         lb_algo = \"mh\"\nmh_port = true\ninterface = \"eth0\"\nannounce = \"bgp\"\n"
    );
    for r in 1..=REALS {
        s.push_str(&format!(
            "[[virtual_server.real_server]]\nip = \"{}\"\nport = 9\n",
            so_real(r)
        ));
    }
    s
}

/// Sends to `SO_VIP:9` from [`FLOWS`] sockets until `stop`; returns datagrams sent.
fn generator(client_ns: &str, stop: &AtomicBool) -> Result<u64> {
    enter_netns(client_ns)?;
    let sockets: Vec<UdpSocket> = (0..FLOWS)
        .map(|_| {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.connect(format!("{SO_VIP}:9"))?;
            Ok(s)
        })
        .collect::<Result<_>>()?;
    let payload = [0u8; 18];
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for s in &sockets {
            if s.send(&payload).is_ok() {
                sent += 1;
            }
        }
    }
    Ok(sent)
}

fn rx(lab: &Lab, ns: &str) -> u64 {
    lab.counter(ns, "eth0", "rx_packets")
}

/// One measurement of `window` with the traffic on: (Mpps at the real servers, share of
/// each director, Mpps the client sent).
fn measure(lab: &Lab, window: Duration) -> Result<(f64, Vec<f64>, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let ns = lab.ns("client");
    let s2 = stop.clone();
    let sender = std::thread::spawn(move || generator(&ns, &s2));
    // Warm-up: connection-table slots, ARP, the router's ECMP choice per flow.
    std::thread::sleep(Duration::from_millis(300));
    let reals0: u64 = (1..=REALS).map(|r| rx(lab, &format!("rs{r}"))).sum();
    let dirs0: Vec<u64> = (1..=DIRECTORS)
        .map(|d| rx(lab, &format!("dir{d}")))
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let secs = t0.elapsed().as_secs_f64();
    let reals1: u64 = (1..=REALS).map(|r| rx(lab, &format!("rs{r}"))).sum();
    let dirs1: Vec<u64> = (1..=DIRECTORS)
        .map(|d| rx(lab, &format!("dir{d}")))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().map_err(|_| anyhow!("generator panicked"))??;
    let total: u64 = dirs1.iter().zip(&dirs0).map(|(a, b)| a - b).sum();
    let shares = dirs1
        .iter()
        .zip(&dirs0)
        .map(|(a, b)| (a - b) as f64 / total.max(1) as f64)
        .collect();
    let sent_mpps = sent as f64 / (secs + 0.3) / 1e6;
    Ok(((reals1 - reals0) as f64 / secs / 1e6, shares, sent_mpps))
}

/// Makes exactly directors 1..=`k` announce: xlb started on those that lack it, stopped
/// (SIGTERM, withdrawn) on the others; waits for the router's route.
fn announce_on(lab: &mut Lab, k: usize) {
    for n in 1..=DIRECTORS {
        let label = format!("xlb{n}");
        let running = lab.has_process(&label);
        if n <= k && !running {
            let config = director_config(lab, n, REALS, &udp_service());
            start_director_xlb(lab, n, &config);
        } else if n > k && running {
            lab.kill(&label, libc::SIGTERM);
        }
    }
    wait_next_hops(lab, k, Duration::from_secs(20));
}

pub fn bench(opts: &Opts, report: &mut Report) -> Result<()> {
    let (rounds, window) = if opts.quick {
        (1, Duration::from_millis(700))
    } else {
        (3, Duration::from_secs(3))
    };
    let has = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok()
    };
    if !has("bird") || !has("nft") {
        report.note(
            "scaleout skipped: needs BIRD 2 (`bird`, Debian bird2) and nftables (`nft`); \
             `cargo xtask setup` installs them",
        );
        return Ok(());
    }
    let prefix = format!("xso-bench{}", std::process::id());
    let mut lab = scale_out_lab(Lab::named(&prefix, PinDir::new("sob")), DIRECTORS, REALS);
    for r in 1..=REALS {
        lab.sh(
            &format!("rs{r}"),
            "nft add table inet sink && nft add chain inet sink pre '{ type filter hook \
             prerouting priority -300; }' && nft add rule inet sink pre udp dport 9 drop",
        );
    }
    start_router(&mut lab, DIRECTORS);
    for n in 1..=DIRECTORS {
        start_director_bird(&mut lab, n);
    }
    let mut mpps: Vec<Vec<f64>> = vec![Vec::new(); DIRECTORS];
    let mut sent: Vec<Vec<f64>> = vec![Vec::new(); DIRECTORS];
    let mut shares: Vec<Vec<Vec<f64>>> = vec![Vec::new(); DIRECTORS];
    for round in 0..rounds {
        for k in 1..=DIRECTORS {
            announce_on(&mut lab, k);
            let (m, s, g) = measure(&lab, window)?;
            eprintln!(
                "[bench]   scaleout round {} with {k} director(s): {m:.3} Mpps at the real \
                 servers (client sent {g:.3}), shares {s:.2?}",
                round + 1
            );
            mpps[k - 1].push(m);
            sent[k - 1].push(g);
            shares[k - 1].push(s);
        }
    }
    let base = Summary::of(&mpps[0]).map(|s| s.median);
    let mut sec = Section::new(
        &format!(
            "Scale-out: aggregate UDP forwarding through 1-3 directors behind ECMP, Mpps at the \
             real servers ({rounds} round(s) of {:.1} s, {FLOWS} flows)",
            window.as_secs_f64()
        ),
        &[
            "directors",
            "min",
            "median",
            "max",
            "x 1 director",
            "client sent",
            "shares",
        ],
    );
    for k in 1..=DIRECTORS {
        let s = Summary::of(&mpps[k - 1]);
        let ratio = s.zip(base).map(|(s, b)| s.median / b);
        let [a, b, c] = mmm(s, f2);
        let last_shares = shares[k - 1]
            .last()
            .map(|v| {
                v.iter()
                    .map(|x| format!("{:.0}%", x * 100.0))
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default();
        sec.row(vec![
            k.to_string(),
            a,
            b,
            c,
            f2(ratio),
            f2(Summary::of(&sent[k - 1]).map(|s| s.median)),
            last_shares,
        ]);
        if let Some(s) = s {
            report.set(&format!("scaleout_{k}_mpps"), s.median);
        }
        if let Some(r) = ratio {
            report.set(&format!("scaleout_{k}_ratio"), r);
        }
        report.detail(
            &format!("scaleout_{k}"),
            json!({
                "directors": k,
                "mpps": s.map(|s| s.json(&mpps[k - 1])),
                "client_sent_mpps": sent[k - 1],
                "director_shares": shares[k - 1],
            }),
        );
    }
    sec.note(
        "one machine with 2 CPUs runs the client, the router's kernel forwarding, every \
         director's XDP and the real servers: a director adds no CPU, so the aggregate stays \
         flat. The bound is the client's sending thread: a veth transmit runs the router's \
         forwarding and the director's XDP in the sender's own softirq, so what is delivered \
         equals what one thread can push through the whole path. The shares show ECMP \
         spreading the flows; on real hardware each director brings its own CPUs and NIC \
         queues.",
    );
    report.sections.push(sec);
    for n in 1..=DIRECTORS {
        let label = format!("xlb{n}");
        if lab.has_process(&label) {
            lab.kill(&label, libc::SIGTERM);
        }
    }
    Ok(())
}
