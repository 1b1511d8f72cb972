//! Scenario 6: failover between two xlb directors (VRRP), as the client sees it.
//!
//! The HA lab of the integration tests: a client, two directors and two real servers on
//! a bridge. `dir1` (priority 150) is MASTER. The client opens a new TCP connection to
//! the VIP every 10 ms. Then `dir1` dies: its link goes down and its xlb is
//! killed with SIGKILL right after (killing only the process would leave the pinned XDP
//! program forwarding and the VIP in place: a controller crash is not a director
//! failure). Measured from that instant: when `dir2` holds the VIP, and when the first
//! connection attempt started after it is answered (a real server's SYN-ACK: the path
//! through the new master works and the client's ARP entry has moved).
//! VRRPv2 with 1 s adverts and VRRPv3 with 0.1 s adverts, runs interleaved.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use integration_tests::netns::{LAB_VIP, Lab, ha_lab, has_address, lab_mh_service, start_xlb_in};
use serde_json::json;

use crate::{
    Opts,
    report::{Report, Section, Summary, f0, mmm},
    threads::enter_netns,
};

const PROBE_EVERY: Duration = Duration::from_millis(10);

fn config(priority: u8, version: u8, advert: &str) -> String {
    format!(
        r#"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = {priority}
advert_int = {advert}
version = {version}
virtual_ipaddress = ["{LAB_VIP}/32"]
{service}"#,
        service = lab_mh_service()
    )
}

struct Run {
    vip_moved_ms: f64,
    answered_ms: f64,
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Some(start.elapsed())
}

/// Successful connects: (when the attempt started, when it was answered).
type Answers = Arc<Mutex<Vec<(Instant, Instant)>>>;

/// New TCP connections to the VIP every [`PROBE_EVERY`] from the client namespace.
fn prober(client_ns: &str, stop: &AtomicBool, answers: Answers) -> Result<()> {
    enter_netns(client_ns)?;
    let vip: SocketAddr = format!("{LAB_VIP}:80").parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut tick = tokio::time::interval(PROBE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let started = Instant::now();
            let answers = answers.clone();
            tokio::spawn(async move {
                let c = tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio::net::TcpStream::connect(vip),
                )
                .await;
                if let Ok(Ok(stream)) = c {
                    answers
                        .lock()
                        .expect("answers")
                        .push((started, Instant::now()));
                    drop(stream);
                }
            });
        }
    });
    Ok(())
}

fn one_run(lab: &mut Lab, n: usize, version: u8, advert: &str) -> Result<Run> {
    let c1 = lab.tmp.join(format!("fo-dir1-v{version}.toml"));
    let c2 = lab.tmp.join(format!("fo-dir2-v{version}.toml"));
    std::fs::write(&c1, config(150, version, advert))?;
    std::fs::write(&c2, config(100, version, advert))?;
    let l1 = format!("xlb1-{n}");
    let l2 = format!("xlb2-{n}");
    start_xlb_in(lab, "dir1", &l1, &c1);
    start_xlb_in(lab, "dir2", &l2, &c2);
    wait_until(Duration::from_secs(15), || {
        has_address(lab, "dir1", LAB_VIP)
    })
    .context("dir1 never became MASTER")?;

    let answers: Answers = Arc::default();
    let stop = AtomicBool::new(false);
    let client = lab.ns("client");
    let result = std::thread::scope(|s| -> Result<Run> {
        let probe = s.spawn(|| prober(&client, &stop, answers.clone()));
        let outcome = (|| -> Result<Run> {
            // Traffic flows through dir1 before the failure.
            wait_until(Duration::from_secs(5), || {
                !answers.lock().expect("answers").is_empty()
            })
            .context("the client is not answered through dir1")?;
            // The director dies when its link goes down (t0); its controller with it.
            lab.sh("dir1", "ip link set eth0 down");
            let t0 = Instant::now();
            lab.kill(&l1, libc::SIGKILL);
            wait_until(Duration::from_secs(15), || {
                has_address(lab, "dir2", LAB_VIP)
            })
            .context("dir2 never took the VIP")?;
            let vip_moved = t0.elapsed();
            wait_until(Duration::from_secs(15), || {
                answers
                    .lock()
                    .expect("answers")
                    .iter()
                    .any(|(start, _)| *start >= t0)
            })
            .context("the client was not answered after the failover")?;
            let first = answers
                .lock()
                .expect("answers")
                .iter()
                .filter(|(start, _)| *start >= t0)
                .map(|(_, done)| *done)
                .min()
                .ok_or_else(|| anyhow!("no answer"))?;
            Ok(Run {
                vip_moved_ms: vip_moved.as_secs_f64() * 1e3,
                answered_ms: (first - t0).as_secs_f64() * 1e3,
            })
        })();
        stop.store(true, Ordering::Relaxed);
        probe.join().map_err(|_| anyhow!("prober panicked"))??;
        outcome
    });
    // Back to the start: dir2 steps down (and removes its VIP), dir1 comes back clean.
    lab.kill(&l2, libc::SIGTERM);
    let _ = lab.sh(
        "dir1",
        &format!("ip link set eth0 up; ip addr del {LAB_VIP}/32 dev eth0 2>/dev/null; true"),
    );
    let _ = lab.sh(
        "dir2",
        &format!("ip addr del {LAB_VIP}/32 dev eth0 2>/dev/null; true"),
    );
    let _ = lab.sh("client", "ip neigh flush dev eth0");
    result
}

pub fn bench(opts: &Opts, report: &mut Report) -> Result<()> {
    let runs = if opts.quick { 1 } else { 5 };
    let xlb = integration_tests::netns::xlb_bin();
    if !xlb.exists() {
        bail!("xlb binary {} missing", xlb.display());
    }
    let mut lab = ha_lab("bfo", 2);
    let variants = [
        (2u8, "1", "VRRPv2, advert_int 1 s"),
        (3u8, "0.1", "VRRPv3, advert_int 0.1 s"),
    ];
    let mut results: Vec<Vec<Run>> = vec![Vec::new(), Vec::new()];
    let mut n = 0;
    for round in 0..runs {
        for (i, (version, advert, label)) in variants.iter().enumerate() {
            n += 1;
            match one_run(&mut lab, n, *version, advert) {
                Ok(r) => {
                    eprintln!(
                        "[bench]   failover {label} run {}: VIP moved after {:.0} ms, client \
                         answered after {:.0} ms",
                        round + 1,
                        r.vip_moved_ms,
                        r.answered_ms
                    );
                    results[i].push(r);
                }
                Err(e) => report.fail(format!("failover {label} run {}: {e:#}", round + 1)),
            }
        }
    }
    let mut sec = Section::new(
        &format!(
            "Failover: master killed (SIGKILL + link down) -> client answered again, ms \
             ({runs} runs each)"
        ),
        &[
            "VRRP",
            "VIP on backup: min",
            "median",
            "max",
            "client answered: min",
            "median",
            "max",
        ],
    );
    for (i, (version, _, label)) in variants.iter().enumerate() {
        let vip: Vec<f64> = results[i].iter().map(|r| r.vip_moved_ms).collect();
        let ans: Vec<f64> = results[i].iter().map(|r| r.answered_ms).collect();
        let (sv, sa) = (Summary::of(&vip), Summary::of(&ans));
        let [a, b, c] = mmm(sv, f0);
        let [d, e, f] = mmm(sa, f0);
        sec.row(vec![label.to_string(), a, b, c, d, e, f]);
        if let Some(s) = sa {
            report.set(&format!("failover_v{version}_ms"), s.median);
        }
        if let Some(s) = sv {
            report.set(&format!("failover_v{version}_vip_moved_ms"), s.median);
        }
        report.detail(
            &format!("failover_v{version}"),
            json!({
                "label": label,
                "client_answered_ms": sa.map(|s| s.json(&ans)),
                "vip_moved_ms": sv.map(|s| s.json(&vip)),
            }),
        );
    }
    sec.note(
        "expected: 3 x advert_int + skew ((256 - priority) / 256 x advert_int) for the backup \
         to take over, then gratuitous ARP; the client probes with a new connection every 10 ms",
    );
    report.sections.push(sec);
    Ok(())
}
