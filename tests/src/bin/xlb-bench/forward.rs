//! Scenarios 1-4: packets per second through a director, generator -> director -> sink.
//!
//! ```text
//!  gen ns                 dir ns                               rs ns
//!  [xbg] =====veth===== [xbd]  director program   [xbe] ===veth=== [xbr]
//!  live-frames gen       (ceiling / xlb / pass+nft)                 sink (XDP_DROP,
//!  + sink for XDP_TX                                                 counts)
//! ```
//! The generator is `xlb_bench_gen` run with `BPF_PROG_TEST_RUN` in live-frames mode on a
//! thread pinned alone to CPU 0, transmitting out of `xbg`; it offers more than any
//! director here forwards. Everything the director does runs in the threaded NAPI kthread
//! of `xbd`, pinned to CPU 1 (re-pinned after every XDP attach, which recreates it). The
//! sink, the real servers' stand-in, is one counting `XDP_DROP` program attached to `xbr`
//! (real servers behind a second interface: xlb redirects, nftables routes) and to `xbg`
//! (real servers on the client's segment, the one-armed DR layout: xlb and the ceiling
//! transmit back with `XDP_TX`). Its NAPI kthreads share CPU 1 with the director, at nice
//! -10: a sink that waits for its fair share lets its ring fill, and the director then
//! spends its CPU on frames that are dropped on transmit (measured here: the ceiling fell
//! from 4.2 to 3.1 Mpps). So every row is bound by CPU 1, which does the director's work
//! plus a fixed receive cost per frame; the `lost` column says how many frames the director
//! processed that never reached the sink (high: the row is not director-bound). On a shared
//! machine the generator (nice -10) and the director (nice -5) take their CPUs ahead of
//! other work for the few seconds of each window. Rates are what reaches the sink per
//! second over a fixed window, after a warm-up, with the generator paced at the rate where
//! the director forwarded the most (`peak.rs`: flat out, the generator's overflow charged
//! the slower rows extra); the rate flat out is reported next to it.
//!
//! Development knobs: `XLB_BENCH_FORWARD=ceiling,xlb_new_flows` runs only those scenarios,
//! `XLB_BENCH_WINDOW_MS=5000` changes the measuring window.

use std::{
    collections::BTreeMap,
    fs::File,
    net::{IpAddr, Ipv4Addr},
    os::fd::AsRawFd,
    process::Command,
    sync::atomic::{AtomicBool, AtomicI32, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf,
    programs::{TestRun, TestRunAttrs, TestRunOptions, XdpMode, xdp::XdpLinkId},
};
use integration_tests::netns::Lab;
use lb_common::{
    Mac, PROTO_UDP, SVC_F_ACTIVE, SchedAlgo, ServiceKey, addr_of,
    bench::{FwdCfg, GenCfg, PROTO_REAL_USABLE, ProtoFlow, ProtoReal},
};
use serde_json::json;
use xlb::{
    dataplane::DataPlane,
    dataplane::sync::{DesiredReal, DesiredService, MapSync},
};

use crate::{
    Opts, objs,
    peak::{Rates, peak_gap},
    report::{Report, Section, Summary, f2, mmm},
};

const VIP_TX: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);
const VIP_RD: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 101);
const CLIENTS: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
const PORT: u16 = 80;
const REALS: usize = 4;
const FRAME_LEN: usize = 60;
/// Frames per BPF_PROG_TEST_RUN call of the generator: each call waits for an RCU grace
/// period (the XDP dispatcher is switched to the program and back), so calls are long;
/// a signal (`SIGUSR1`) ends one early.
const GEN_REPEAT: u32 = 1 << 30;
const GEN_CPU: usize = 0;
/// The director's forwarding, and the sinks' receiving (see the module documentation).
const FWD_CPU: usize = 1;
/// The sinks' NAPI kthreads run before the director's when both are runnable.
const SINK_NICE: i32 = -15;
/// The director's NAPI kthread and the generator get their CPU ahead of other work on a
/// shared machine: a generator time-sliced with another process sends in bursts, and the
/// director idles between them (seen here as rounds at half the rate).
const DIRECTOR_NICE: i32 = -5;
const GEN_NICE: i32 = -10;

/// The order of a round: groups measured back to back, each led by the baseline its
/// members' `/ ceiling` ratios use. This machine's rates shift by 2x for tens of seconds
/// at a time (both ways), so a ratio is taken between neighbours, seconds apart, never
/// across a whole round.
const GROUPS: &[&[&str]] = &[
    &[
        "ceiling",
        "xlb_established_1024",
        "nft_dnat_1024",
        "nft_dsr_1024",
    ],
    &[
        "ceiling",
        "xlb_established_1",
        "xlb_established_65536",
        "nft_dnat_65536",
    ],
    &["ceiling", "xlb_new_flows", "proto_established_1024"],
    &["ceiling_redirect", "xlb_redirect_1024"],
];

fn real_v4(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 2, 10 + n as u8)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Director {
    /// `xlb_bench_swap`: swap MACs, XDP_TX.
    Swap,
    /// `xlb_bench_fwd`: set MACs, redirect to the real-server side.
    Fwd,
    /// xlb's own program.
    Xlb,
    /// `xlb_pass` on the director's veth (so XDP frames are delivered) and nftables.
    Nft(NftKind),
    /// `xlb_bench_proto_established`: a prototype of a cheaper established path.
    Proto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NftKind {
    /// `dnat to numgen inc mod N map {...}` in a prerouting nat chain (conntrack).
    Dnat,
    /// netdev ingress: set MACs by `jhash` of the client, `fwd to` the real-server side.
    Dsr,
}

#[derive(Clone, Debug)]
struct Scenario {
    key: &'static str,
    label: &'static str,
    director: Director,
    vip: Ipv4Addr,
    /// 0: every frame a new flow.
    flows: u32,
}

fn scenarios() -> Vec<Scenario> {
    let s = |key, label, director, vip, flows| Scenario {
        key,
        label,
        director,
        vip,
        flows,
    };
    vec![
        s(
            "ceiling",
            "ceiling: MAC swap + XDP_TX",
            Director::Swap,
            VIP_TX,
            1024,
        ),
        s(
            "xlb_established_1",
            "xlb, 1 established flow",
            Director::Xlb,
            VIP_TX,
            1,
        ),
        s(
            "xlb_established_1024",
            "xlb, 1,024 established flows",
            Director::Xlb,
            VIP_TX,
            1024,
        ),
        s(
            "xlb_established_65536",
            "xlb, 65,536 established flows",
            Director::Xlb,
            VIP_TX,
            65536,
        ),
        s(
            "xlb_new_flows",
            "xlb, every frame a new flow",
            Director::Xlb,
            VIP_TX,
            0,
        ),
        s(
            "proto_established_1024",
            "prototype, 16-byte key, 1,024 flows (not xlb)",
            Director::Proto,
            VIP_TX,
            1024,
        ),
        s(
            "ceiling_redirect",
            "ceiling: set MACs + redirect",
            Director::Fwd,
            VIP_RD,
            1024,
        ),
        s(
            "xlb_redirect_1024",
            "xlb redirect, 1,024 flows",
            Director::Xlb,
            VIP_RD,
            1024,
        ),
        s(
            "nft_dnat_1024",
            "nftables numgen DNAT, 1,024 flows",
            Director::Nft(NftKind::Dnat),
            VIP_RD,
            1024,
        ),
        s(
            "nft_dsr_1024",
            "nftables netdev DSR, 1,024 flows",
            Director::Nft(NftKind::Dsr),
            VIP_RD,
            1024,
        ),
        s(
            "nft_dnat_65536",
            "nftables numgen DNAT, 65,536 flows",
            Director::Nft(NftKind::Dnat),
            VIP_RD,
            65536,
        ),
    ]
}

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// Frames per second at the sink, in millions.
    sink_mpps: f64,
    /// Frames per second the generator produced, in millions.
    gen_mpps: f64,
    /// Share of the frames the director received that did not reach the sink.
    lost: f64,
    /// The generator's gap between frames at the peak (ns; 0: flat out).
    gap_ns: u32,
    /// Frames per second at the sink with the generator flat out, in millions (the
    /// search's first trial; NaN when there was no search).
    flat_sink_mpps: f64,
    /// Share of the window the director's CPU was busy: well under 1, the generator, not
    /// the director, set the rate.
    director_busy: f64,
}

/// One figure of every round's sample of a scenario.
fn column<T>(
    samples: &BTreeMap<&'static str, Vec<Sample>>,
    key: &str,
    figure: impl Fn(&Sample) -> T,
) -> Vec<T> {
    samples
        .get(key)
        .map(|s| s.iter().map(figure).collect())
        .unwrap_or_default()
}

/// Busy and total jiffies of one CPU so far (`/proc/stat`).
fn cpu_jiffies(cpu: usize) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("cpu{cpu}")))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// How hard the generator drives the director in a measurement.
#[derive(Clone, Copy, Debug)]
enum Offer {
    /// Find the peak forwarding rate first (`peak.rs`), with trials of this length.
    Peak(Duration),
    /// A fixed gap between frames (ns; 0: flat out).
    Gap(u32),
}

enum Attached {
    Bench(&'static str, XdpLinkId),
    Xlb(XdpLinkId),
}

struct Fwd {
    lab: Lab,
    ifname: BTreeMap<&'static str, String>,
    idx_g: u32,
    idx_d: u32,
    idx_e: u32,
    mac_g: [u8; 6],
    mac_d: [u8; 6],
    mac_e: [u8; 6],
    mac_r: [u8; 6],
    gen_ebpf: Ebpf,
    sink: Ebpf,
    dir: Ebpf,
    xlb: DataPlane,
    _sync: MapSync,
    nft: Option<String>,
    cpus: usize,
    napi_pinned: bool,
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("spawning {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `script` in namespace `short`, returning an error instead of panicking.
fn sh(lab: &Lab, short: &str, script: &str) -> Result<String> {
    run(Command::new("ip").args(["netns", "exec", &lab.ns(short), "sh", "-c", script]))
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = s.trim().split(':').collect();
    if parts.len() != 6 {
        bail!("not a MAC: {s:?}");
    }
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16)?;
    }
    Ok(mac)
}

/// Moves the calling thread into network namespace `ns` (a name under /run/netns).
pub fn enter_netns(ns: &str) -> Result<()> {
    let f = File::open(format!("/run/netns/{ns}")).with_context(|| format!("netns {ns}"))?;
    // SAFETY: setns on this thread only, with an fd we own.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns({ns}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

pub fn set_affinity(pid: i32, cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t filled through the libc macros.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Pins the threaded-NAPI kthreads of `ifname` (`napi/<ifname>-<id>`) to `cpu`.
fn pin_napi(ifname: &str, cpu: usize) -> usize {
    let prefix = format!("napi/{ifname}-");
    let mut pinned = 0;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) else {
            continue;
        };
        if comm.trim_end().starts_with(&prefix) && set_affinity(pid, cpu) {
            pinned += 1;
        }
    }
    pinned
}

/// Sets the nice value of the NAPI kthreads of `ifname`.
fn renice_napi(ifname: &str, nice: i32) {
    let prefix = format!("napi/{ifname}-");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) else {
            continue;
        };
        if comm.trim_end().starts_with(&prefix) {
            // SAFETY: plain syscall on a kernel thread of our own interface.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, nice) };
        }
    }
}

impl Fwd {
    fn setup(report: &mut Report) -> Result<Self> {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let mut lab = Lab::new("bf");
        for ns in ["gen", "dir", "rs"] {
            lab.add_ns(ns);
        }
        let tag = format!("{:05}", std::process::id() % 100_000);
        let ifname: BTreeMap<&'static str, String> = [
            ("g", format!("xbg{tag}")),
            ("d", format!("xbd{tag}")),
            ("e", format!("xbe{tag}")),
            ("r", format!("xbr{tag}")),
        ]
        .into_iter()
        .collect();
        let (g, d, e, r) = (&ifname["g"], &ifname["d"], &ifname["e"], &ifname["r"]);
        for (a, ans, b, bns) in [(g, "gen", d, "dir"), (e, "dir", r, "rs")] {
            run(Command::new("ip").args([
                "link",
                "add",
                a,
                "netns",
                &lab.ns(ans),
                "type",
                "veth",
                "peer",
                "name",
                b,
                "netns",
                &lab.ns(bns),
            ]))?;
        }
        sh(
            &lab,
            "gen",
            &format!("ip link set {g} up && ip addr add 198.18.1.2/24 dev {g}"),
        )?;
        sh(
            &lab,
            "dir",
            &format!(
                "ip link set {d} up && ip link set {e} up && \
                 ip addr add 198.18.1.1/24 dev {d} && ip addr add 198.18.2.1/24 dev {e} && \
                 ip route add 198.19.0.0/16 dev {d} && \
                 sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
                   net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.{d}.rp_filter=0 \
                   net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.{d}.send_redirects=0"
            ),
        )?;
        sh(
            &lab,
            "rs",
            &format!("ip link set {r} up && ip addr add 198.18.2.2/24 dev {r}"),
        )?;
        let mac = |short: &str, ifn: &str| -> Result<[u8; 6]> {
            parse_mac(&sh(
                &lab,
                short,
                &format!("cat /sys/class/net/{ifn}/address"),
            )?)
        };
        let idx = |short: &str, ifn: &str| -> Result<u32> {
            Ok(
                sh(&lab, short, &format!("cat /sys/class/net/{ifn}/ifindex"))?
                    .trim()
                    .parse()?,
            )
        };
        let (mac_g, mac_d, mac_e, mac_r) = (
            mac("gen", g)?,
            mac("dir", d)?,
            mac("dir", e)?,
            mac("rs", r)?,
        );
        let (idx_g, idx_d, idx_e) = (idx("gen", g)?, idx("dir", d)?, idx("dir", e)?);
        // The real servers behind xbe, for nftables' routing: permanent neighbours (the
        // sink drops ARP).
        let mut neigh = String::from("true");
        for n in 1..=REALS {
            neigh.push_str(&format!(
                " && ip neigh replace {} lladdr {} dev {e} nud permanent",
                real_v4(n),
                Mac(&mac_r)
            ));
        }
        sh(&lab, "dir", &neigh)?;

        let gen_ebpf = objs::load(&["xlb_bench_gen"], &[])?;
        let mut sink = objs::load(&["xlb_bench_sink"], &[])?;
        let mut dir = objs::load(
            &[
                "xlb_bench_swap",
                "xlb_bench_fwd",
                "xlb_pass",
                "xlb_bench_proto_established",
            ],
            &[
                ("xlb_bench_map_p_conns", 4096),
                ("xlb_bench_map_p_svc", 16),
                ("xlb_bench_map_p_reals", 16),
            ],
        )?;
        proto_state(&mut dir, idx_d, mac_g, mac_d)?;
        for (short, ifn) in [("gen", g.clone()), ("rs", r.clone())] {
            let prog = objs::xdp_mut(&mut sink, "xlb_bench_sink")?;
            lab.within(short, || prog.attach(&ifn, XdpMode::Driver))
                .map_err(|e| anyhow!("native XDP on veth ({ifn}): {e}"))?;
        }
        // Threaded NAPI: the forwarding work becomes kthreads we can pin.
        let threaded = sh(&lab, "gen", &format!("echo 1 > /sys/class/net/{g}/threaded"))
            .and_then(|_| sh(&lab, "rs", &format!("echo 1 > /sys/class/net/{r}/threaded")))
            .and_then(|_| {
                sh(
                    &lab,
                    "dir",
                    &format!(
                        "echo 1 > /sys/class/net/{d}/threaded; echo 1 > /sys/class/net/{e}/threaded; true"
                    ),
                )
            });
        if let Err(err) = &threaded {
            report.note(format!(
                "threaded NAPI unavailable ({err}): forwarding runs in softirq on whatever CPU"
            ));
        }

        let pins = lab.pins.0.join("bench_xlb");
        let (xlb, maps) = DataPlane::load(&pins).context("loading xlb's data plane")?;
        let mut sync = MapSync::adopt(maps)?;
        let mut ifaces = BTreeMap::new();
        ifaces.insert(idx_d, mac_d);
        ifaces.insert(idx_e, mac_e);
        sync.apply_ifaces(&ifaces)?;
        // One service whose real servers share the client's segment (XDP_TX back out of
        // xbd: one-armed DR) and one whose real servers sit behind xbe (redirect).
        let svc = |vip: Ipv4Addr, ifindex: u32, mac: [u8; 6]| DesiredService {
            key: ServiceKey {
                vip: addr_of(IpAddr::V4(vip)),
                port: PORT,
                proto: PROTO_UDP,
                _pad: 0,
            },
            algo: SchedAlgo::Wrr,
            hash_port: false,
            active: true,
            persistence_timeout: 0,
            reals: (1..=REALS)
                .map(|n| DesiredReal {
                    addr: addr_of(IpAddr::V4(real_v4(n))),
                    port: PORT,
                    weight: 1,
                    alive: true,
                    ifindex,
                    mac: Some(mac),
                })
                .collect(),
        };
        sync.apply(&[svc(VIP_TX, idx_d, mac_g), svc(VIP_RD, idx_e, mac_r)])?;

        let nft = which("nft");
        if nft.is_none() {
            report.note("nft not found: the nftables scenarios are skipped");
        }
        Ok(Self {
            lab,
            ifname,
            idx_g,
            idx_d,
            idx_e,
            mac_g,
            mac_d,
            mac_e,
            mac_r,
            gen_ebpf,
            sink,
            dir,
            xlb,
            _sync: sync,
            nft,
            cpus,
            napi_pinned: threaded.is_ok(),
        })
    }

    fn pin_napis(&self) -> usize {
        if self.cpus < 2 {
            return 0;
        }
        let mut n = 0;
        for k in ["d", "e"] {
            n += pin_napi(&self.ifname[k], FWD_CPU);
            renice_napi(&self.ifname[k], DIRECTOR_NICE);
        }
        for k in ["g", "r"] {
            n += pin_napi(&self.ifname[k], FWD_CPU);
            renice_napi(&self.ifname[k], SINK_NICE);
        }
        n
    }

    /// One live-frames call: does this kernel generate at all?
    fn probe_live_frames(&self) -> Result<()> {
        let prog = objs::xdp(&self.gen_ebpf, "xlb_bench_gen")?;
        let frame = [0u8; FRAME_LEN];
        let ctx = xdp_md(self.idx_g);
        let g = self.lab.ns("gen");
        std::thread::scope(|s| {
            s.spawn(|| -> Result<()> {
                enter_netns(&g)?;
                prog.test_run(TestRunOptions {
                    data_in: Some(&frame),
                    ctx_in: Some(&ctx),
                    repeat: 16,
                    attrs: TestRunAttrs::new().xdp_live_frames(16),
                    ..TestRunOptions::default()
                })?;
                Ok(())
            })
            .join()
            .map_err(|_| anyhow!("generator thread panicked"))?
        })
    }

    fn attach_director(&mut self, director: Director) -> Result<Attached> {
        let d = self.ifname["d"].clone();
        let idx_d = self.idx_d;
        let Self { lab, dir, xlb, .. } = self;
        let bench = |dir: &mut Ebpf, name: &'static str| -> Result<Attached> {
            let prog = objs::xdp_mut(dir, name)?;
            let id = lab
                .within("dir", || prog.attach_to_if_index(idx_d, XdpMode::Driver))
                .map_err(|e| anyhow!("native XDP attach of {name} to {d}: {e}"))?;
            Ok(Attached::Bench(name, id))
        };
        let attached = match director {
            Director::Swap => bench(dir, "xlb_bench_swap")?,
            Director::Fwd => {
                let cfg = FwdCfg {
                    dst_mac: self.mac_r,
                    src_mac: self.mac_e,
                    ifindex: self.idx_e,
                };
                objs::set_cfg(dir, "xlb_bench_fwd_cfg", cfg)?;
                bench(dir, "xlb_bench_fwd")?
            }
            Director::Nft(_) => bench(dir, "xlb_pass")?,
            Director::Proto => bench(dir, "xlb_bench_proto_established")?,
            Director::Xlb => {
                let prog = xlb.program()?;
                let id = lab
                    .within("dir", || prog.attach_to_if_index(idx_d, XdpMode::Driver))
                    .map_err(|e| anyhow!("native XDP attach of xlb to {d}: {e}"))?;
                Attached::Xlb(id)
            }
        };
        if let Director::Nft(kind) = director {
            if let Err(e) = self.nft_install(kind) {
                let _ = self.detach(attached);
                return Err(e);
            }
        }
        if self.napi_pinned {
            // Threaded mode for the NAPI instance this attach created on xbd.
            let _ = sh(
                &self.lab,
                "dir",
                &format!("echo 1 > /sys/class/net/{}/threaded", self.ifname["d"]),
            );
        }
        Ok(attached)
    }

    fn detach(&mut self, attached: Attached) -> Result<()> {
        let Self { lab, dir, xlb, .. } = self;
        match attached {
            Attached::Bench(name, id) => {
                let prog = objs::xdp_mut(dir, name)?;
                lab.within("dir", || prog.detach(id))?;
            }
            Attached::Xlb(id) => {
                let prog = xlb.program()?;
                lab.within("dir", || prog.detach(id))?;
            }
        }
        Ok(())
    }

    fn nft_install(&self, kind: NftKind) -> Result<()> {
        let e = &self.ifname["e"];
        let d = &self.ifname["d"];
        let rules = match kind {
            NftKind::Dnat => {
                let map: Vec<String> = (1..=REALS)
                    .map(|n| format!("{} : {}", n - 1, real_v4(n)))
                    .collect();
                format!(
                    "table ip xlbbench {{\n chain pre {{\n  type nat hook prerouting priority dstnat; policy accept;\n  \
                     ip daddr {VIP_RD} udp dport {PORT} dnat to numgen inc mod {REALS} map {{ {} }}\n }}\n}}\n",
                    map.join(", ")
                )
            }
            NftKind::Dsr => {
                // DR as a stateless netdev rule: the real server is picked by a hash of the
                // client (numgen would scatter a flow's packets over servers).
                let map: Vec<String> = (1..=REALS)
                    .map(|n| format!("{} : {}", n - 1, Mac(&self.mac_r)))
                    .collect();
                format!(
                    "table netdev xlbbench {{\n chain ingress {{\n  type filter hook ingress device \"{d}\" priority 0; policy accept;\n  \
                     ip daddr {VIP_RD} udp dport {PORT} ether saddr set {} ether daddr set jhash ip saddr . udp sport mod {REALS} map {{ {} }} fwd to \"{e}\"\n }}\n}}\n",
                    Mac(&self.mac_e),
                    map.join(", ")
                )
            }
        };
        let path = self.lab.tmp.join("bench.nft");
        std::fs::write(&path, rules)?;
        sh(&self.lab, "dir", &format!("nft -f {}", path.display()))
            .with_context(|| format!("nftables {kind:?} rules"))?;
        Ok(())
    }

    fn nft_remove(&self, kind: NftKind) {
        let family = match kind {
            NftKind::Dnat => "ip",
            NftKind::Dsr => "netdev",
        };
        let _ = sh(
            &self.lab,
            "dir",
            &format!("nft delete table {family} xlbbench"),
        );
    }

    fn gen_cfg(&self, sc: &Scenario) -> GenCfg {
        GenCfg {
            dst_mac: self.mac_d,
            src_mac: self.mac_g,
            saddr: u32::from(CLIENTS),
            daddr: u32::from(sc.vip),
            flows: sc.flows,
            dport: PORT,
            sport: 1024,
            ip_len: (FRAME_LEN - 14) as u16,
            _pad: 0,
            gap_ns: 0,
        }
    }

    fn pump(
        &mut self,
        sc: &Scenario,
        offer: Offer,
        warm: Duration,
        window: Duration,
    ) -> Result<Sample> {
        let cfg = self.gen_cfg(sc);
        let (lab, d) = (&self.lab, &self.ifname["d"]);
        let mut rx = [None, None];
        let mut sample = pump(
            &self.gen_ebpf,
            &self.sink,
            &self.lab.ns("gen"),
            self.idx_g,
            self.cpus,
            cfg,
            offer,
            warm,
            window,
            |start| rx[usize::from(!start)] = director_rx(lab, d),
        )?;
        if let [Some(a), Some(b)] = rx {
            let secs = window.as_secs_f64();
            let received = (b - a) as f64 / secs / 1e6;
            if received > 0.0 {
                sample.lost = (1.0 - sample.sink_mpps / received).max(0.0);
            }
        }
        Ok(sample)
    }

    fn measure(
        &mut self,
        sc: &Scenario,
        offer: Offer,
        warm: Duration,
        window: Duration,
    ) -> Result<Sample> {
        let attached = self.attach_director(sc.director)?;
        self.pin_napis();
        let sample = self.pump(sc, offer, warm, window);
        if let Director::Nft(kind) = sc.director {
            self.nft_remove(kind);
        }
        self.detach(attached)?;
        sample
    }

    /// The director program's own run time per packet during forwarding (bpf_stats), the
    /// generator paced with `gap_ns` (the peak's, found by `measure`).
    fn program_ns(
        &mut self,
        sc: &Scenario,
        gap_ns: u32,
        warm: Duration,
        window: Duration,
    ) -> Result<f64> {
        let attached = self.attach_director(sc.director)?;
        self.pin_napis();
        let cfg = self.gen_cfg(sc);
        let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime);
        let result = match &stats {
            Err(e) => Err(anyhow!("BPF_ENABLE_STATS: {e}")),
            Ok(_) => {
                let gen_ns = self.lab.ns("gen");
                let Self {
                    gen_ebpf,
                    sink,
                    dir,
                    xlb,
                    idx_g,
                    cpus,
                    ..
                } = self;
                let mut read = || -> (u64, u64) {
                    let info = match &attached {
                        Attached::Bench(name, _) => {
                            objs::xdp(dir, name).ok().and_then(|p| p.info().ok())
                        }
                        Attached::Xlb(_) => xlb.program().ok().and_then(|p| p.info().ok()),
                    };
                    info.map(|i| (i.run_time().as_nanos() as u64, i.run_count()))
                        .unwrap_or((0, 0))
                };
                let mut before = (0, 0);
                let mut after = (0, 0);
                pump(
                    gen_ebpf,
                    sink,
                    &gen_ns,
                    *idx_g,
                    *cpus,
                    cfg,
                    Offer::Gap(gap_ns),
                    warm,
                    window,
                    |start| {
                        if start {
                            before = read();
                        } else {
                            after = read();
                        }
                    },
                )
                .and_then(|_| {
                    let ((t0, n0), (t1, n1)) = (before, after);
                    if n1 <= n0 {
                        bail!("no run-time statistics");
                    }
                    Ok((t1 - t0) as f64 / (n1 - n0) as f64)
                })
            }
        };
        drop(stats);
        if let Director::Nft(kind) = sc.director {
            self.nft_remove(kind);
        }
        self.detach(attached)?;
        result
    }
}

/// Runs the generator with config `cfg` for `warm` (at `offer`'s gap, or flat out before a
/// search for the peak), then measures what the sink got in `window` at that gap or at the
/// peak's; `at(true)` / `at(false)` run at the start and the end of the window.
#[allow(clippy::too_many_arguments)]
fn pump(
    gen_ebpf: &Ebpf,
    sink: &Ebpf,
    gen_ns: &str,
    idx_g: u32,
    cpus: usize,
    cfg: GenCfg,
    offer: Offer,
    warm: Duration,
    window: Duration,
    mut at: impl FnMut(bool),
) -> Result<Sample> {
    let prog = objs::xdp(gen_ebpf, "xlb_bench_gen")?;
    let mut pacing = objs::cfg_handle::<GenCfg>(gen_ebpf, "xlb_bench_gen_cfg")?;
    let mut pace = |gap_ns: u32| -> Result<()> {
        pacing
            .set(0, GenCfg { gap_ns, ..cfg }, 0)
            .context("pacing the generator")
    };
    let counters = || -> Result<(u64, u64, Instant)> {
        Ok((
            objs::percpu_sum(sink, "xlb_bench_sink_n")?,
            objs::percpu_sum(gen_ebpf, "xlb_bench_gen_n")?,
            Instant::now(),
        ))
    };
    let rates = |(s0, g0, t0): (u64, u64, Instant), (s1, g1, t1): (u64, u64, Instant)| {
        let secs = (t1 - t0).as_secs_f64();
        Rates {
            offered: (g1 - g0) as f64 / secs / 1e6,
            sink: (s1 - s0) as f64 / secs / 1e6,
        }
    };
    pace(match offer {
        Offer::Gap(gap) => gap,
        Offer::Peak(_) => 0,
    })?;
    let ctx = xdp_md(idx_g);
    let stop = AtomicBool::new(false);
    let tid = AtomicI32::new(0);
    install_wakeup_signal();
    std::thread::scope(|s| -> Result<Sample> {
        let worker = s.spawn(|| -> Result<()> {
            enter_netns(gen_ns)?;
            if cpus >= 2 {
                set_affinity(0, GEN_CPU);
            }
            // SAFETY: gettid has no preconditions; setpriority on this thread only.
            let me = unsafe { libc::gettid() };
            unsafe { libc::setpriority(libc::PRIO_PROCESS, me as u32, GEN_NICE) };
            tid.store(me, Ordering::SeqCst);
            let frame = [0u8; FRAME_LEN];
            while !stop.load(Ordering::SeqCst) {
                let r = prog.test_run(TestRunOptions {
                    data_in: Some(&frame),
                    ctx_in: Some(&ctx),
                    repeat: GEN_REPEAT,
                    attrs: TestRunAttrs::new().xdp_live_frames(64),
                    ..TestRunOptions::default()
                });
                if let Err(e) = r {
                    if stop.load(Ordering::SeqCst) {
                        break; // EINTR: our own stop signal
                    }
                    return Err(e).context("live-frames generator");
                }
            }
            Ok(())
        });
        let result = (|| -> Result<Sample> {
            std::thread::sleep(warm);
            if worker.is_finished() {
                bail!("the generator stopped early");
            }
            let (gap_ns, flat_sink_mpps) = match offer {
                Offer::Gap(gap) => (gap, f64::NAN),
                Offer::Peak(trial) => {
                    let peak = peak_gap(|gap| -> Result<Rates> {
                        pace(gap)?;
                        // The rings settle within a few NAPI polls; a tenth of a trial.
                        std::thread::sleep(trial / 10);
                        let c0 = counters()?;
                        std::thread::sleep(trial);
                        let r = rates(c0, counters()?);
                        if worker.is_finished() {
                            bail!("the generator stopped early");
                        }
                        Ok(r)
                    })?;
                    pace(peak.gap)?;
                    std::thread::sleep(trial / 10);
                    (peak.gap, peak.flat.sink)
                }
            };
            at(true);
            let j0 = cpu_jiffies(FWD_CPU);
            let c0 = counters()?;
            std::thread::sleep(window);
            let r = rates(c0, counters()?);
            let director_busy = match (j0, cpu_jiffies(FWD_CPU)) {
                (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64,
                _ => f64::NAN,
            };
            at(false);
            Ok(Sample {
                sink_mpps: r.sink,
                gen_mpps: r.offered,
                lost: f64::NAN,
                gap_ns,
                flat_sink_mpps,
                director_busy,
            })
        })();
        stop.store(true, Ordering::SeqCst);
        while !worker.is_finished() {
            let t = tid.load(Ordering::SeqCst);
            if t != 0 {
                // SAFETY: signals a thread of this process (ours, still running).
                unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), t, libc::SIGUSR1) };
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let generator = worker
            .join()
            .map_err(|_| anyhow!("generator thread panicked"))?;
        let sample = result?;
        generator?;
        Ok(sample)
    })
}

extern "C" fn on_wakeup(_: libc::c_int) {}

/// SIGUSR1 does nothing but interrupt a blocking BPF_PROG_TEST_RUN (no SA_RESTART).
fn install_wakeup_signal() {
    // SAFETY: a handler that does nothing; sigaction struct zeroed then filled.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_wakeup as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
}

/// The prototype's state for the generator's 1,024 flows to VIP_TX: one service (id 0),
/// one real server (slot 0) on the client's segment.
fn proto_state(dir: &mut Ebpf, idx_d: u32, mac_g: [u8; 6], mac_d: [u8; 6]) -> Result<()> {
    use aya::maps::{Array, HashMap, MapData};
    let m = dir.map_mut("xlb_bench_map_p_conns").context("p_conns")?;
    let mut conns = HashMap::<&mut MapData, [u8; 16], ProtoFlow>::try_from(m)?;
    for i in 0..1024u32 {
        let mut k = [0u8; 16];
        k[..4].copy_from_slice(&(u32::from(CLIENTS) + i).to_be_bytes());
        k[4..8].copy_from_slice(&VIP_TX.octets());
        k[8..10].copy_from_slice(&1024u16.to_le_bytes());
        k[10..12].copy_from_slice(&PORT.to_le_bytes());
        k[12] = PROTO_UDP;
        conns.insert(k, ProtoFlow::default(), 0)?;
    }
    let m = dir.map_mut("xlb_bench_map_p_svc").context("p_svc")?;
    Array::<&mut MapData, u32>::try_from(m)?.set(0, SVC_F_ACTIVE, 0)?;
    let m = dir.map_mut("xlb_bench_map_p_reals").context("p_reals")?;
    Array::<&mut MapData, ProtoReal>::try_from(m)?.set(
        0,
        ProtoReal {
            mac: mac_g,
            src_mac: mac_d,
            ifindex: idx_d,
            flags: PROTO_REAL_USABLE,
            service_id: 0,
        },
        0,
    )?;
    Ok(())
}

/// Frames the director's veth has received in its XDP path (`ethtool -S`).
fn director_rx(lab: &Lab, ifname: &str) -> Option<u64> {
    let out = sh(lab, "dir", &format!("ethtool -S {ifname}")).ok()?;
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("rx_queue_0_xdp_packets:"))
        .find_map(|v| v.trim().parse().ok())
}

fn xdp_md(ifindex: u32) -> Vec<u8> {
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
    // egress_ifindex.
    let ctx: [u32; 6] = [0, FRAME_LEN as u32, 0, ifindex, 0, 0];
    ctx.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

pub fn which(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

pub fn bench(opts: &Opts, report: &mut Report) -> Result<()> {
    let (rounds, warm, window, trial) = if opts.quick {
        (
            2,
            Duration::from_millis(150),
            Duration::from_millis(300),
            Duration::from_millis(40),
        )
    } else {
        (
            5,
            Duration::from_millis(400),
            Duration::from_millis(1500),
            Duration::from_millis(200),
        )
    };
    let mut fwd = match Fwd::setup(report) {
        Ok(f) => f,
        Err(e) => {
            report.note(format!(
                "forwarding scenarios (1-4) skipped: the lab could not be set up: {e:#}"
            ));
            return Ok(());
        }
    };
    if fwd.cpus < 2 {
        report
            .note("one CPU only: generator and director share it, rates are not meaningful alone");
    }
    if let Err(e) = fwd.probe_live_frames() {
        report.note(format!(
            "forwarding scenarios (1-4) skipped: BPF_PROG_TEST_RUN live frames unsupported: {e:#}"
        ));
        return Ok(());
    }
    // Development knobs: a subset of scenarios and another window.
    let mut all = scenarios();
    if let Ok(keys) = std::env::var("XLB_BENCH_FORWARD") {
        all.retain(|s| keys.split(',').any(|k| k == s.key));
    }
    let window = std::env::var("XLB_BENCH_WINDOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(window);
    let mut samples: BTreeMap<&'static str, Vec<Sample>> = BTreeMap::new();
    // For each scenario, the baseline that led its group, measured just before it.
    let mut lead_of: BTreeMap<&'static str, (&'static str, Vec<Sample>)> = BTreeMap::new();
    let mut skipped: BTreeMap<&'static str, String> = BTreeMap::new();
    for round in 0..rounds {
        eprintln!("[bench] forwarding round {}/{rounds}", round + 1);
        let mut measured_this_round: Vec<&'static str> = Vec::new();
        for group in GROUPS {
            let members: Vec<&Scenario> = group
                .iter()
                .filter_map(|k| all.iter().find(|s| s.key == *k))
                .collect();
            // A group left with nothing new (a filtered run) is not measured again.
            if members.iter().all(|m| measured_this_round.contains(&m.key)) {
                continue;
            }
            let mut lead: Option<(&'static str, Sample)> = None;
            for (i, sc) in members.iter().enumerate() {
                if skipped.contains_key(sc.key) {
                    continue;
                }
                if matches!(sc.director, Director::Nft(_)) && fwd.nft.is_none() {
                    skipped.insert(sc.key, "nft not installed".into());
                    continue;
                }
                match fwd.measure(sc, Offer::Peak(trial), warm, window) {
                    Ok(s) => {
                        eprintln!(
                            "[bench]   {:<24} {:6.2} Mpps at the sink ({:.2} Mpps offered, \
                             {:.0}% lost after the director, its CPU {:.0}% busy; flat out \
                             {:.2})",
                            sc.key,
                            s.sink_mpps,
                            s.gen_mpps,
                            s.lost * 100.0,
                            s.director_busy * 100.0,
                            s.flat_sink_mpps,
                        );
                        if i == 0 {
                            lead = Some((sc.key, s));
                        } else if let Some((lk, ls)) = lead {
                            lead_of.entry(sc.key).or_insert((lk, Vec::new())).1.push(ls);
                        }
                        // A baseline that leads several groups: its row keeps the first.
                        if !measured_this_round.contains(&sc.key) {
                            measured_this_round.push(sc.key);
                            samples.entry(sc.key).or_default().push(s);
                        }
                    }
                    Err(e) => {
                        report.fail(format!("forwarding scenario {}: {e:#}", sc.key));
                        skipped.insert(sc.key, format!("{e:#}"));
                    }
                }
            }
        }
    }

    // The programs' own cost per packet while forwarding (bpf_stats, one pass).
    let mut prog_ns: BTreeMap<&'static str, f64> = BTreeMap::new();
    for sc in all.iter().filter(|s| {
        matches!(
            s.director,
            Director::Swap | Director::Fwd | Director::Xlb | Director::Proto
        ) && !skipped.contains_key(s.key)
    }) {
        // At the peak's pacing (the median of the rounds'): the cost of a miss depends on
        // how hard the other CPU hammers the same cache lines.
        let mut gaps = column(&samples, sc.key, |s| s.gap_ns);
        gaps.sort_unstable();
        let gap = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
        match fwd.program_ns(sc, gap, warm, window.min(Duration::from_millis(800))) {
            Ok(ns) => {
                prog_ns.insert(sc.key, ns);
            }
            Err(e) => {
                report.note(format!(
                    "bpf_stats run time of {} not measured: {e:#}",
                    sc.key
                ));
                break;
            }
        }
    }

    // Per-round ratios: against the baseline that led the scenario's group when that is
    // the one asked for (measured just before it), else against the same round's.
    let per_round_of = |a: &str, b: &str, rate: fn(&Sample) -> f64| -> Vec<f64> {
        if let (Some(x), Some((lead, y))) = (samples.get(a), lead_of.get(a)) {
            if *lead == b {
                return x.iter().zip(y).map(|(x, y)| rate(x) / rate(y)).collect();
            }
        }
        match (samples.get(a), samples.get(b)) {
            (Some(x), Some(y)) => x.iter().zip(y).map(|(x, y)| rate(x) / rate(y)).collect(),
            _ => Vec::new(),
        }
    };
    let per_round = |a: &str, b: &str| per_round_of(a, b, |s| s.sink_mpps);
    let flat = |s: &Sample| s.flat_sink_mpps;
    let mut sec = Section::new(
        &format!(
            "Forwarding: peak Mpps at the sink, 60-byte UDP frames; generator on CPU \
             {GEN_CPU}, director and sink on CPU {FWD_CPU} ({rounds} interleaved rounds of \
             {:.1} s)",
            window.as_secs_f64()
        ),
        &[
            "scenario",
            "min",
            "median",
            "max",
            "offered",
            "flat out",
            "lost",
            "CPU busy",
            "prog ns/pkt",
            "/ ceiling",
            "/ nft DNAT",
        ],
    );
    let ceiling_of = |key: &str| -> Option<&'static str> {
        match key {
            "ceiling" | "ceiling_redirect" => None,
            "xlb_redirect_1024" | "nft_dnat_1024" | "nft_dsr_1024" | "nft_dnat_65536" => {
                Some("ceiling_redirect")
            }
            _ => Some("ceiling"),
        }
    };
    for sc in &all {
        let v = column(&samples, sc.key, |s| s.sink_mpps);
        let offered = column(&samples, sc.key, |s| s.gen_mpps);
        let lost = column(&samples, sc.key, |s| s.lost);
        let flat_out = column(&samples, sc.key, flat);
        let gaps = column(&samples, sc.key, |s| s.gap_ns);
        let busy = column(&samples, sc.key, |s| s.director_busy);
        let pct = |v: &[f64]| {
            Summary::of(v)
                .map(|s| format!("{:.0}%", s.median * 100.0))
                .unwrap_or_else(|| "-".into())
        };
        let sum = Summary::of(&v);
        let [a, b, c] = mmm(sum, f2);
        let vs_ceiling =
            ceiling_of(sc.key).and_then(|c| Summary::of(&per_round(sc.key, c)).map(|s| s.median));
        let vs_nft = if sc.key.starts_with("xlb") || sc.key.starts_with("proto") {
            // The nftables DNAT row with as many flows.
            let nft = if sc.flows == 65536 {
                "nft_dnat_65536"
            } else {
                "nft_dnat_1024"
            };
            Summary::of(&per_round(sc.key, nft)).map(|s| s.median)
        } else {
            None
        };
        let mut row = vec![
            sc.label.to_string(),
            a,
            b,
            c,
            f2(Summary::of(&offered).map(|s| s.median)),
            f2(Summary::of(&flat_out).map(|s| s.median)),
            pct(&lost),
            pct(&busy),
            prog_ns
                .get(sc.key)
                .map(|n| format!("{n:.0}"))
                .unwrap_or_else(|| "-".into()),
            f2(vs_ceiling),
            f2(vs_nft),
        ];
        if let Some(why) = skipped.get(sc.key) {
            row[1] = "skipped".into();
            report.detail(&format!("forward_{}", sc.key), json!({ "skipped": why }));
        }
        sec.row(row);
        if let Some(s) = sum {
            report.set(&format!("mpps_{}", sc.key), s.median);
            report.detail(
                &format!("forward_{}", sc.key),
                json!({
                    "label": sc.label,
                    "sink_mpps": s.json(&v),
                    "offered_mpps": offered,
                    "generator_gap_ns": gaps,
                    "sink_mpps_flat_out": flat_out,
                    "lost_after_director": lost,
                    "director_cpu_busy": busy,
                    "program_ns_per_packet_bpf_stats": prog_ns.get(sc.key),
                }),
            );
        }
        if let Some(n) = prog_ns.get(sc.key) {
            report.set(&format!("program_ns_{}", sc.key), *n);
        }
    }
    sec.note(
        "/ ceiling: median of per-round ratios against the ceiling of the same path (XDP_TX \
         one-armed, or redirect into the real-server namespace), measured just before the \
         scenario's group (the rate of this machine shifts 2x for tens of seconds at a \
         time); / nft DNAT: against the numgen DNAT with as many flows, same round",
    );
    sec.note(
        "peak: the most the director forwarded at any offered rate (RFC 2889's maximum \
         forwarding rate), found by raising the generator's rate in steps of 7% from its \
         flat-out sink rate; flat out: the sink rate with the generator unpaced, which \
         charges a slower director extra for the generator's overflow (see peak.rs)",
    );
    sec.note(
        "prog ns/pkt: the director program's own run time per packet while forwarding \
         (BPF_ENABLE_STATS, a separate pass); lost: frames the director received that did \
         not reach the sink (ring full, or dropped by the stack); CPU busy: the director's \
         CPU in the window (well under 100%: the generator set the rate, not the director)",
    );
    report.sections.push(sec);

    let ratio = |a: &str, b: &str| Summary::of(&per_round(a, b));
    for (key, a, b) in [
        (
            "ratio_established_over_ceiling",
            "xlb_established_1024",
            "ceiling",
        ),
        (
            "ratio_established_over_nftables",
            "xlb_established_1024",
            "nft_dnat_1024",
        ),
        (
            "ratio_established_1_over_ceiling",
            "xlb_established_1",
            "ceiling",
        ),
        (
            "ratio_established_65536_over_ceiling",
            "xlb_established_65536",
            "ceiling",
        ),
        (
            "ratio_established_65536_over_nftables",
            "xlb_established_65536",
            "nft_dnat_65536",
        ),
        ("ratio_new_flows_over_ceiling", "xlb_new_flows", "ceiling"),
        (
            "ratio_new_flows_over_nftables",
            "xlb_new_flows",
            "nft_dnat_1024",
        ),
        (
            "ratio_redirect_over_ceiling_redirect",
            "xlb_redirect_1024",
            "ceiling_redirect",
        ),
        (
            "ratio_redirect_over_nftables",
            "xlb_redirect_1024",
            "nft_dnat_1024",
        ),
        (
            "ratio_established_over_nftables_dsr",
            "xlb_established_1024",
            "nft_dsr_1024",
        ),
        (
            "ratio_nftables_dsr_over_dnat",
            "nft_dsr_1024",
            "nft_dnat_1024",
        ),
        (
            "ratio_proto_established_over_ceiling",
            "proto_established_1024",
            "ceiling",
        ),
        (
            "ratio_proto_over_xlb_established",
            "proto_established_1024",
            "xlb_established_1024",
        ),
    ] {
        if let Some(s) = ratio(a, b) {
            report.set(key, s.median);
            report.detail(key, s.json(&per_round(a, b)));
        }
    }
    // The same two ratios with the generator flat out, as this bench measured them before
    // it searched for the peak: the difference is what overflow cost the slower row.
    for (key, a, b) in [
        (
            "ratio_established_over_ceiling_flat_out",
            "xlb_established_1024",
            "ceiling",
        ),
        (
            "ratio_established_over_nftables_flat_out",
            "xlb_established_1024",
            "nft_dnat_1024",
        ),
    ] {
        let v = per_round_of(a, b, flat);
        if let Some(s) = Summary::of(&v) {
            report.set(key, s.median);
            report.detail(key, s.json(&v));
        }
    }
    Ok(())
}
