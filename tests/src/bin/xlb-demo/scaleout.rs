//! `cargo xtask demo --scale-out`: active-active directors behind an ECMP router, each
//! announcing the VIP by BGP through BIRD 2 (`announce = "bgp"`), on the lab the scale-out
//! tests use ([`netns::scaleout`]): a client, a router (BIRD, `merge paths`, the kernel's
//! L4 multipath hash), three directors each running `xlb run` and BIRD (eBGP with BFD to
//! the router), three real servers.
//!
//! The scenes: the router's ECMP route over the three directors and what `xlb status`
//! says of the announcement; 48 connections spread over the directors (and, by `mh`, the
//! real servers); director 3 dies (link down, `kill -9` of xlb and BIRD): the demo times
//! how long until the router's route no longer goes through it (BFD: 3 x 100 ms) and then
//! asks every connection again, those that went through the dead director included;
//! director 3 comes back and takes a share of new connections while the old ones go on.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Result, bail};
use integration_tests::{
    PinDir,
    netns::{self, Lab, scaleout::*},
};

use crate::step;

const PREFIX: &str = "xsodemo";
const PIN_DIR: &str = "/sys/fs/bpf/xsodemo";
const DIRECTORS: usize = 3;
const REALS: usize = 3;
const CONNS: usize = 48;

/// Removes what an earlier scale-out demo left when it was killed outright.
fn remove_leftovers() -> Result<()> {
    let listing = Command::new("ip").args(["netns", "list"]).output()?;
    for name in String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{PREFIX}-")))
    {
        let pids = Command::new("ip").args(["netns", "pids", name]).output()?;
        for pid in String::from_utf8_lossy(&pids.stdout)
            .lines()
            .filter_map(|p| p.trim().parse::<libc::pid_t>().ok())
        {
            // SAFETY: kill(2) has no memory-safety preconditions; only PIDs inside the
            // demo's own namespaces.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        Command::new("ip").args(["netns", "del", name]).status()?;
        step(format!("removed namespace {name} of an earlier run"));
    }
    if Path::new(PIN_DIR).exists() {
        drop(PinDir(PathBuf::from(PIN_DIR)));
    }
    Ok(())
}

fn shown(cmd: &str) {
    println!("  $ {cmd}");
}

fn indent(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}

/// The share of each director (by `xlb conns`) and of each real server.
fn shares(lab: &Lab, conns: &[(netns::EchoConn, String)]) -> (Vec<usize>, BTreeMap<String, usize>) {
    let per_dir = (1..=DIRECTORS)
        .map(|n| {
            let through = client_ports_through(lab, n);
            conns
                .iter()
                .filter(|(c, _)| c.local_addr().is_ok_and(|a| through.contains(&a.port())))
                .count()
        })
        .collect();
    let mut per_real = BTreeMap::new();
    for (_, server) in conns {
        *per_real.entry(server.clone()).or_default() += 1;
    }
    (per_dir, per_real)
}

pub fn run() -> Result<()> {
    remove_leftovers()?;
    step(format!(
        "namespaces {PREFIX}-{{client,router,swup,swdn,dir1..3,rs1..3}}: client -- router; \
         router and directors on swup (198.18.2.0/24, BGP + BFD); router, directors' eth1 and \
         real servers on swdn (198.18.3.0/24)"
    ));
    let mut lab = scale_out_lab(
        Lab::named(PREFIX, PinDir(PathBuf::from(PIN_DIR))),
        DIRECTORS,
        REALS,
    );
    step(
        "router: BIRD 2 with `merge paths on` (one ECMP route over every director that \
         announces the VIP), net.ipv4.fib_multipath_hash_policy=1 (the next hop is a hash of \
         the 5-tuple), BFD 3 x 100 ms towards each director",
    );
    start_router(&mut lab, DIRECTORS);
    let config = director_config(&lab, 1, REALS, "");
    step(format!(
        "each director runs xlb with this config ({}): no VRRP, `announce = \"bgp\"`",
        config.display()
    ));
    indent(&std::fs::read_to_string(&config)?);
    step("and BIRD with the bird.conf xlb prints for it:");
    shown(&format!(
        "xlb bird-config --local-as {DIRECTOR_AS} --peer-as {ROUTER_AS} --neighbor \
         {SO_ROUTER_UP} --router-id 198.18.2.1"
    ));
    for n in 1..=DIRECTORS {
        start_director(&mut lab, n, REALS);
    }
    let took = wait_next_hops(&lab, DIRECTORS, Duration::from_secs(30));
    step(format!(
        "the router's route to {SO_VIP}, {:.1} s after the last director started:",
        took.as_secs_f64()
    ));
    shown(&format!("ip route show {SO_VIP}   (in router)"));
    indent(&lab.sh("router", &format!("ip route show {SO_VIP}")));
    step("on dir1, xlb's announcement and its status:");
    shown("ip route show table 201 proto 201   (in dir1)");
    indent(&announced_routes(&lab, 1));
    let status = Command::new(netns::xlb_bin())
        .args(["status", "--pin-path"])
        .arg(director_pins(&lab, 1))
        .output()?;
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    if let Some(at) = status.find("BGP announcements") {
        indent(&status[at..]);
    }

    step(format!(
        "the client opens {CONNS} echo connections to {SO_VIP}:7"
    ));
    let mut conns = open_echo_conns(&lab, CONNS);
    let (per_dir, per_real) = shares(&lab, &conns);
    step(format!(
        "through the directors: {}; answered by: {}",
        per_dir
            .iter()
            .enumerate()
            .map(|(i, n)| format!("dir{} {n}", i + 1))
            .collect::<Vec<_>>()
            .join(", "),
        per_real
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if per_dir.contains(&0) {
        bail!("a director carried no connection: {per_dir:?}");
    }

    // BIRD acts only on BFD sessions that came Up: the kill must come after.
    wait_bfd_up(&lab, DIRECTORS, Duration::from_secs(10));
    step("dir3 dies: its link goes down, xlb and BIRD are killed with SIGKILL");
    lab.sh("dir3", "ip link set eth0 down");
    lab.kill("xlb3", libc::SIGKILL);
    lab.kill("bird3", libc::SIGKILL);
    let took = wait_next_hops(&lab, DIRECTORS - 1, Duration::from_secs(12));
    step(format!(
        "the router dropped dir3 from the route after {:.0} ms (BFD: 3 missed packets 100 ms \
         apart):",
        took.as_secs_f64() * 1000.0
    ));
    indent(&lab.sh("router", &format!("ip route show {SO_VIP}")));
    let alive = still_answering(&lab, &mut conns, "after");
    step(format!(
        "{alive} of {CONNS} connections still answer, from the same real server ({} had gone \
         through dir3: the survivors' identical mh tables pick the same real server)",
        per_dir[2]
    ));
    if alive != CONNS {
        bail!("{} connections broke", CONNS - alive);
    }

    step("dir3 comes back: link up, xlb adopts its pinned data plane, BIRD peers again");
    lab.sh("dir3", "ip link set eth0 up");
    start_director(&mut lab, 3, REALS);
    let took = wait_next_hops(&lab, DIRECTORS, Duration::from_secs(30));
    step(format!(
        "back in the route after {:.1} s",
        took.as_secs_f64()
    ));
    let alive = still_answering(&lab, &mut conns, "rejoined");
    let fresh = open_echo_conns(&lab, CONNS);
    let (per_dir, _) = shares(&lab, &fresh);
    step(format!(
        "{alive} of {CONNS} old connections still answer; {CONNS} new ones go through: {}",
        per_dir
            .iter()
            .enumerate()
            .map(|(i, n)| format!("dir{} {n}", i + 1))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if alive != CONNS {
        bail!("{} connections broke when dir3 came back", CONNS - alive);
    }
    step("removing the lab");
    drop(lab);
    Ok(())
}
