//! Shared pieces of xlb's privileged tests and of the drivers built on them (the demo,
//! the benchmark): crafted frames, a data plane pinned in a private directory, and
//! network-namespace labs that clean up after themselves.
//!
//! These tests need root and a kernel with XDP; run them with `cargo xtask test`.

pub mod frames;
pub mod netns;
mod xdp_pass;

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use aya::programs::{TestRun, TestRunOptions};
use lb_common::{PROTO_TCP, PROTO_UDP, SchedAlgo, ServiceKey, addr_of};
use xlb::{
    dataplane::sync::{DesiredReal, DesiredService, MapSync},
    dataplane::{ConnTableOptions, DataPlane, Maps},
};

/// Where test pins go: a bpffs, mounted here if the machine has none yet.
pub fn bpffs_root() -> PathBuf {
    let root = Path::new("/sys/fs/bpf");
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split(' ').nth(1) == Some("/sys/fs/bpf"))
        })
        .unwrap_or(false);
    if !mounted {
        let ok = std::process::Command::new("mount")
            .args(["-t", "bpf", "-o", "mode=0700", "bpf", "/sys/fs/bpf"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "cannot mount a bpffs at /sys/fs/bpf (are the tests running as root?)"
        );
    }
    root.to_path_buf()
}

/// A unique pin directory, removed (with everything pinned in it) on drop.
pub struct PinDir(pub PathBuf);

impl PinDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = bpffs_root().join(format!("xlbtest_{tag}_{}_{n}", std::process::id()));
        Self(dir)
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        // Labs pin per director in subdirectories.
        if let Ok(entries) = std::fs::read_dir(&self.0) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    let _ = xlb::dataplane::teardown(&e.path());
                }
            }
        }
        let _ = xlb::dataplane::teardown(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
        // Status files of daemons killed with SIGKILL (they remove theirs on a clean stop).
        let status = xlb::daemon::default_state_file(&self.0);
        let prefix = status
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_end_matches(".status.json")
                    .to_string()
            })
            .unwrap_or_default();
        if let Ok(entries) = std::fs::read_dir("/run/xlb") {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// The interface index the test runs claim to arrive on: `lo` exists in every namespace.
pub const TEST_IFINDEX: u32 = 1;
pub const DIRECTOR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// MAC of the test real server with the given last octet.
pub fn real_mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, n]
}

/// A loaded data plane in a private pin directory, with the MapSync that drives it.
pub struct Plane {
    pub dataplane: DataPlane,
    pub sync: MapSync,
    pub pins: PinDir,
}

impl Plane {
    pub fn new(tag: &str) -> Self {
        Self::sized(tag, lb_common::MAX_CONNS)
    }

    /// A plane whose IPv4 connection table has `conn_slots` slots.
    pub fn sized(tag: &str, conn_slots: u32) -> Self {
        let pins = PinDir::new(tag);
        let (dataplane, maps) = DataPlane::load_with(
            &pins.0,
            ConnTableOptions {
                conn_slots,
                ..Default::default()
            },
        )
        .expect("loading the XDP program");
        let mut sync = MapSync::adopt(maps).expect("adopting fresh maps");
        let mut ifaces = std::collections::BTreeMap::new();
        ifaces.insert(TEST_IFINDEX, DIRECTOR_MAC);
        sync.apply_ifaces(&ifaces).expect("ifaces");
        Self {
            dataplane,
            sync,
            pins,
        }
    }

    /// Runs one frame through the program as if received on [`TEST_IFINDEX`].
    pub fn run(&mut self, frame: &[u8]) -> (u32, Vec<u8>) {
        let (action, out, _) = self.run_timed(frame, 1);
        (action, out)
    }

    /// Runs `frame` `repeat` times; returns the action, the output and ns per run.
    pub fn run_timed(&mut self, frame: &[u8], repeat: u32) -> (u32, Vec<u8>, f64) {
        let mut out = vec![0u8; frame.len() + 256];
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex.
        let ctx: [u32; 6] = [0, frame.len() as u32, 0, TEST_IFINDEX, 0, 0];
        let ctx_bytes: Vec<u8> = ctx.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let program = self.dataplane.program().expect("program");
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx_bytes),
                repeat,
                ..TestRunOptions::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        let ns = result.duration.as_nanos() as f64;
        (result.return_value, out, ns)
    }

    pub fn maps(&self) -> &Maps {
        self.sync.maps()
    }

    pub fn apply(&mut self, services: &[DesiredService]) {
        self.sync.apply(services).expect("map sync");
    }
}

/// A service on `vip:port` with real servers `(ip, weight)` on [`TEST_IFINDEX`], each with
/// the MAC `real_mac(last octet)`.
pub fn service(
    vip: IpAddr,
    port: u16,
    tcp: bool,
    algo: SchedAlgo,
    reals: &[(IpAddr, u32)],
) -> DesiredService {
    DesiredService {
        key: ServiceKey {
            vip: addr_of(vip),
            port,
            proto: if tcp { PROTO_TCP } else { PROTO_UDP },
            _pad: 0,
        },
        aliases: Vec::new(),
        algo,
        hash_port: false,
        active: true,
        persistence_timeout: 0,
        nat: false,
        reals: reals
            .iter()
            .map(|(ip, w)| DesiredReal {
                addr: addr_of(*ip),
                port,
                weight: *w,
                alive: true,
                ifindex: TEST_IFINDEX,
                mac: Some(real_mac(last_octet(*ip))),
            })
            .collect(),
    }
}

pub fn last_octet(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    }
}

/// Pins the calling thread to one CPU: per-CPU cursors then behave like the model's one.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t filled through the libc macros.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(rc, 0, "sched_setaffinity");
    }
}
