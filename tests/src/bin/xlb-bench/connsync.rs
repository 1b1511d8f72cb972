//! Scenario 8: what connection sync costs, in one run.
//!
//! - Forwarding: `BPF_PROG_TEST_RUN` ns per packet of an established flow (the table
//!   holding `flows` synced flows) with no sync, against the same with the master's
//!   sender (scan of the mapped tables + what is due) running on the other CPU, once at
//!   its real period (200 ms) and once back to back (the worst case: the scan never
//!   stops). The XDP program is the same either way (sync adds nothing to the packet
//!   path); what the ratio shows is the scan's pressure on the memory the program reads.
//! - The scan of `flows` live entries, and the receiver's install rate (the backup
//!   writing entries through the same victim rules as the program).
//! - Bandwidth: the bytes (UDP payload + IP/UDP headers) of 10,000 new flows as the task
//!   sends them (default maxlen 1472, HMAC), i.e. per second at 10,000 new flows/s.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use integration_tests::{Plane, frames::Frame, pin_to_cpu, service};
use lb_common::{CONN_OPEN, SchedAlgo};
use serde_json::json;
use xlb::{
    connsync::{
        auth::Key,
        batch,
        directory::Directory,
        sender::Sender,
        table::{install_conn, scan_conns},
        task::TICK,
        wire::Entry,
    },
    dataplane::{
        Maps,
        conn_table::{Tables, now_ticks},
    },
};

use crate::{
    Opts,
    report::{Report, Section, Summary, f0, f2},
    threads::AffinityGuard,
};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const XDP_TX: u32 = 3;
/// IPv4 + UDP headers of each datagram.
const IP_UDP: usize = 28;

fn entry(i: u32) -> Entry {
    let c = 0xc613_0000u32 + i; // 198.19.0.0 + i
    Entry {
        protocol: 6,
        state: CONN_OPEN,
        flags: 0,
        remaining_s: 900,
        virtual_service: SocketAddr::new(IpAddr::V4(VIP), 80),
        client: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(c)), 40000),
        real: SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11 + (i % 2) as u8)),
            80,
        ),
    }
}

/// The sender's work of one tick: scan, then what is due, marked sent (the tables stay
/// mapped between ticks, as the task keeps them). After the first round nothing is due.
fn sender_round(tables: &Tables, dir: &Directory, sender: &mut Sender) -> usize {
    let scanned = scan_conns(tables, dir, now_ticks());
    let now = Instant::now();
    let due = sender.due(&scanned, &Default::default(), now);
    // As the task does once they are sent (the budget is not the point here).
    for e in &due {
        sender.mark_sent(e, now);
    }
    due.len()
}

pub fn bench(opts: &Opts, report: &mut Report) -> Result<()> {
    let (flows, rounds, repeat) = if opts.quick {
        (1u32 << 14, 3, 200_000u32)
    } else {
        (1u32 << 16, 15, 2_000_000u32)
    };
    let _restore = AffinityGuard::save();
    pin_to_cpu(0);
    let mut p = Plane::sized("benchsync", (flows * 4).next_power_of_two());
    let reals = [
        (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11)), 1),
        (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 12)), 1),
    ];
    p.apply(&[service(IpAddr::V4(VIP), 80, true, SchedAlgo::Wrr, &reals)]);
    let maps = Maps::from_pins(&p.pins.0)?;
    let dir = Directory::read(&maps);

    // The backup's side: installing `flows` entries.
    let mut tables = maps.conn_tables(true)?;
    let now = now_ticks();
    let t = Instant::now();
    let mut installed = 0u32;
    for i in 0..flows {
        if install_conn(&mut tables, &dir, &entry(i), now).is_ok() {
            installed += 1;
        }
    }
    let install_s = t.elapsed().as_secs_f64();
    if installed < flows * 9 / 10 {
        bail!("only {installed} of {flows} entries installed");
    }

    // The master's side: the scan of every live entry, and the steady state (nothing due).
    let mut sender = Sender::default();
    let reader = maps.conn_tables(false)?;
    let first = sender_round(&reader, &dir, &mut sender);
    let mut scan_us = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        sender_round(&reader, &dir, &mut sender);
        scan_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let scan = Summary::of(&scan_us);
    // The read of the tables alone (without the sender's bookkeeping).
    let mut read_us = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let n = scan_conns(&reader, &dir, now_ticks()).len();
        read_us.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(n);
    }
    let read = Summary::of(&read_us);

    // Bandwidth of 10,000 new flows.
    let new: Vec<Entry> = (0..10_000).map(entry).collect();
    let key = Key::new(b"bench");
    let mut seq = 0;
    let datagrams = batch::datagrams(&new, 1472, 0, Some(&key), &mut seq);
    let bytes: usize = datagrams.iter().map(|(d, _)| d.len() + IP_UDP).sum();

    // Forwarding of an established (synced) flow, sync off / on at 200 ms / back to back.
    let e = entry(0);
    let mut frame = Frame::tcp(e.client.ip(), e.client.port(), IpAddr::V4(VIP), 80);
    frame.tcp_flags = integration_tests::frames::TCP_ACK;
    let frame = frame.build();
    let (action, _, _) = p.run_timed(&frame, 1);
    if action != XDP_TX {
        bail!("the synced flow's packet got action {action}, not XDP_TX");
    }
    // The kernel's figure (whole ns per run, 1-2 % at this speed): it stops its timer
    // while the task is scheduled out, so other load on this shared machine stays out
    // of it; the scanner's pressure on caches and memory does not.
    let timed = |p: &mut Plane| p.run_timed(&frame, repeat).2;
    let mut off = Vec::new();
    let mut periodic = Vec::new();
    let mut busy = Vec::new();
    for _ in 0..rounds {
        off.push(timed(&mut p));
        for (period, out) in [(Some(TICK), &mut periodic), (None, &mut busy)] {
            let stop = AtomicBool::new(false);
            let ns = std::thread::scope(|s| {
                let scanner = s.spawn(|| {
                    pin_to_cpu(1);
                    let mut sender = Sender::default();
                    while !stop.load(Ordering::Relaxed) {
                        sender_round(&reader, &dir, &mut sender);
                        if let Some(d) = period {
                            std::thread::sleep(d);
                        }
                    }
                });
                // Let the scanner start before timing.
                std::thread::sleep(Duration::from_millis(20));
                let ns = timed(&mut p);
                stop.store(true, Ordering::Relaxed);
                let _ = scanner.join();
                ns
            });
            out.push(ns);
        }
    }
    let (off_s, per_s, busy_s) = (
        Summary::of(&off),
        Summary::of(&periodic),
        Summary::of(&busy),
    );
    let ratio = |s: Option<Summary>| match (off_s, s) {
        (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
        _ => None,
    };

    let mut sec = Section::new(
        &format!("connection sync ({flows} synced flows, BPF_PROG_TEST_RUN)"),
        &["figure", "value", "unit"],
    );
    sec.row(vec![
        "established flow, no sync".into(),
        f2(off_s.map(|s| s.median)),
        "ns/packet".into(),
    ]);
    sec.row(vec![
        "established flow, sender scanning every 200 ms".into(),
        f2(per_s.map(|s| s.median)),
        "ns/packet".into(),
    ]);
    sec.row(vec![
        "  forwarding rate with sync / without".into(),
        f2(ratio(per_s)),
        "ratio".into(),
    ]);
    sec.row(vec![
        "established flow, sender scanning back to back".into(),
        f2(busy_s.map(|s| s.median)),
        "ns/packet".into(),
    ]);
    sec.row(vec![
        "  forwarding rate with sync / without (worst case)".into(),
        f2(ratio(busy_s)),
        "ratio".into(),
    ]);
    sec.row(vec![
        format!("scan of {flows} live entries + what is due"),
        f0(scan.map(|s| s.median)),
        "us".into(),
    ]);
    sec.row(vec![
        "  of which reading the tables into entries".into(),
        f0(read.map(|s| s.median)),
        "us".into(),
    ]);
    sec.row(vec![
        "backup installs".into(),
        f0(Some(f64::from(installed) / install_s)),
        "entries/s".into(),
    ]);
    sec.row(vec![
        "10,000 new flows (maxlen 1472, HMAC)".into(),
        format!("{bytes} B in {} datagrams", datagrams.len()),
        "per 10k flows".into(),
    ]);
    sec.note(format!(
        "at 10,000 new flows/s: {:.0} kB/s ({:.2} Mbit/s), {:.1} B per flow; a flow whose \
         handshake a scan catches half-done is sent twice (SYN_RECV, then ESTABLISHED)",
        bytes as f64 / 1e3,
        bytes as f64 * 8.0 / 1e6,
        bytes as f64 / 1e4
    ));
    report.set("connsync_established_ns_off", off_s.map(|s| s.median));
    report.set("connsync_established_ns_200ms", per_s.map(|s| s.median));
    report.set("connsync_established_ns_busy", busy_s.map(|s| s.median));
    report.set("connsync_forward_ratio_200ms", ratio(per_s));
    report.set("connsync_forward_ratio_busy", ratio(busy_s));
    report.set("connsync_scan_us", scan.map(|s| s.median));
    report.set("connsync_read_us", read.map(|s| s.median));
    report.set("connsync_install_per_s", f64::from(installed) / install_s);
    report.set("connsync_bytes_per_10k_new_flows", bytes as u64);
    report.detail(
        "connsync",
        json!({
            "flows": flows, "installed": installed, "first_round_due": first,
            "repeat": repeat, "rounds": rounds, "datagrams_per_10k": datagrams.len(),
            "off_ns": off_s.map(|s| s.json(&off)),
            "periodic_ns": per_s.map(|s| s.json(&periodic)),
            "busy_ns": busy_s.map(|s| s.json(&busy)),
            "scan_us": scan.map(|s| s.json(&scan_us)),
        }),
    );
    report.sections.push(sec);
    Ok(())
}
