//! `xlb-demo`: the demo behind `cargo xtask demo` (xtask builds xlb and this driver and runs
//! it as root, with `XLB_BIN` naming xlb). Direct-routing load balancing with real kernel
//! XDP and two directors in one VRRP group, in network namespaces on this machine, built up
//! and torn down again in well under a minute.
//!
//! The lab is the one the privileged VRRP tests use ([`netns::build_ha_lab`]), under fixed
//! names: a switch namespace `xlbdemo-sw` with bridge `br0`; a client (198.18.0.1); two
//! directors, dir1 (198.18.0.2, VRRP priority 150) and dir2 (198.18.0.3, priority 100),
//! neither holding the VIP 198.18.0.100 by hand, both running `xlb run` with the same
//! virtual server and a `[[vrrp_instance]]` that owns the VIP; three real servers
//! (198.18.0.11-13) prepared with `xlb realserver setup` and running
//! `tests/lab/realserver.py`, which answers HTTP with its name and the local address the
//! connection arrived at. Each host's eth0 is a veth whose peer `p-<host>` sits on the
//! bridge.
//!
//! The scenes: the election (dir1 holds the VIP, the client's ARP entry is dir1's MAC); DR
//! balancing through the master, with each real server's share next to its weight, and
//! `xlb status` / `xlb conns` from the master's pinned maps ([`balancing`]); then the master
//! crashes (link down, SIGKILL) while the client sends a request every 50 ms, and the demo
//! measures how long the client saw no answers before the backup took over; finally dir1
//! comes back and preempts, and the demo measures the client's silence during that
//! handover too ([`failover`]).
//!
//! Everything the demo creates (namespaces, processes, pins under /sys/fs/bpf/xlbdemo, a
//! temporary directory) belongs to the [`stage::Demo`], which removes it when the demo ends,
//! fails, or is interrupted (Ctrl-C, SIGTERM, SIGHUP). Leftovers of an earlier run that was
//! killed outright are removed before the lab is built.
//!
//! With `--scale-out`, the active-active demo instead: three directors behind an ECMP
//! router, announcing the VIP by BGP through BIRD ([`scaleout`]).

mod balancing;
mod client;
mod failover;
mod scaleout;
mod stage;

use std::{
    fmt,
    fs::File,
    os::fd::AsRawFd as _,
    panic::{self, AssertUnwindSafe},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use integration_tests::netns::{self, LAB_CLIENT, LAB_DIRECTOR, LAB_DIRECTOR2, LAB_VIP};

const VIP: &str = LAB_VIP;
const CLIENT_ADDR: &str = LAB_CLIENT;
/// The directors: name, address, VRRP priority. The first one is the master.
const DIRECTORS: [(&str, &str, u8); 2] =
    [("dir1", LAB_DIRECTOR, 150), ("dir2", LAB_DIRECTOR2, 100)];
/// The real servers' weights: real server `rs<n>` (at `netns::lab_real(n)`) has the n-th.
const WEIGHTS: [u32; 3] = [3, 2, 1];
/// The VRRP group: virtual router id, protocol version, advert interval (seconds). VRRPv3
/// allows sub-second adverts (v2 counts whole seconds): a backup declares the master dead
/// after 3 intervals plus a skew of (256 - priority) / 256 intervals.
const VRID: u8 = 51;
const VRRP_VERSION: u8 = 3;
const ADVERT_INT: f64 = 0.5;

/// Held (flock) while a demo runs, so a second one does not tear down the first one's lab.
const LOCK_FILE: &str = "/run/xlbdemo.lock";

/// A real server of the demo.
struct Real {
    name: String,
    addr: String,
    weight: u32,
}

/// The real servers, in order.
fn reals() -> Vec<Real> {
    WEIGHTS
        .iter()
        .enumerate()
        .map(|(i, &weight)| Real {
            name: format!("rs{}", i + 1),
            addr: netns::lab_real(i + 1),
            weight,
        })
        .collect()
}

/// One line saying what the demo is doing.
fn step(what: impl fmt::Display) {
    println!("[demo] {what}");
}

/// Sleeps `duration`; a caught signal ends it early (with a panic, see `main`).
fn pause(duration: Duration) {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        netns::check_interrupted();
        std::thread::sleep(Duration::from_millis(20).min(deadline - Instant::now()));
    }
    netns::check_interrupted();
}

/// A backup's master-down interval (RFC 5798): 3 advert intervals plus the skew.
fn master_down(priority: u8) -> f64 {
    3.0 * ADVERT_INT + f64::from(256 - u16::from(priority)) / 256.0 * ADVERT_INT
}

/// Holds an exclusive flock on `LOCK_FILE` (released when the file is closed).
fn lock() -> Result<File> {
    let file = File::create(LOCK_FILE).with_context(|| format!("cannot create {LOCK_FILE}"))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!("another `cargo xtask demo` is running (it holds {LOCK_FILE})");
    }
    Ok(file)
}

/// The demo from start to teardown.
fn run() -> Result<()> {
    let _lock = lock()?;
    if std::env::args().any(|a| a == "--scale-out") {
        return scaleout::run();
    }
    stage::remove_leftovers()?;
    let mut demo = stage::Demo::build();
    demo.play()
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "panic".to_string())
}

fn main() -> ExitCode {
    let started = Instant::now();
    // Lab helpers fail by panicking, and a caught signal makes the lab's waits panic too:
    // either way the Demo's Drop tears the lab down while unwinding, and the message is
    // printed once, below, after the teardown.
    netns::stop_on_signals();
    panic::set_hook(Box::new(|_| {}));
    let failure = match panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(format!("{err:#}")),
        Err(payload) => Some(panic_message(payload.as_ref())),
    };
    match failure {
        None => {
            step(format!(
                "done in {:.1} s: {}",
                started.elapsed().as_secs_f64(),
                if std::env::args().any(|a| a == "--scale-out") {
                    "active-active directors behind ECMP, announced by BGP, lost one and \
                     got it back without breaking a connection"
                } else {
                    "DR load balancing through XDP, VRRP failover and preemption worked"
                }
            ));
            ExitCode::SUCCESS
        }
        Some(message) => {
            eprintln!("xlb-demo: error: {message}");
            ExitCode::FAILURE
        }
    }
}
