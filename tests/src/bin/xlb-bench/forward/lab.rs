//! The forwarding lab: three namespaces and two veth pairs (generator -> director -> real
//! servers), the sink on both ends, threaded NAPI, xlb's data plane with its two services,
//! and the prototype's state. Setting it up is all this module does; `director` puts a
//! director on it and measures.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    process::Command,
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{Ebpf, programs::XdpMode};
use integration_tests::netns::Lab;
use lb_common::{
    Mac, PROTO_UDP, SVC_F_ACTIVE, SchedAlgo, ServiceKey, addr_of,
    bench::{GenCfg, PROTO_REAL_USABLE, ProtoFlow, ProtoReal},
};
use xlb::{
    dataplane::DataPlane,
    dataplane::sync::{DesiredReal, DesiredService, MapSync},
};

use super::{
    generator::{FRAME_LEN, Generator},
    scenarios::{CLIENTS, PORT, REALS, Scenario, VIP_RD, VIP_TX, real_v4},
    shell::{run, sh},
};
use crate::{objs, report::Report};

/// The lab and what is loaded on it. Interfaces by their key: `g` the generator's veth,
/// `d` and `e` the director's (client side, real-server side), `r` the real servers'.
pub struct ForwardLab {
    pub lab: Lab,
    pub ifname: BTreeMap<&'static str, String>,
    pub idx_d: u32,
    pub idx_e: u32,
    pub mac_g: [u8; 6],
    pub mac_d: [u8; 6],
    pub mac_e: [u8; 6],
    pub mac_r: [u8; 6],
    pub generator: Generator,
    /// The bench directors: `xlb_bench_swap`, `xlb_bench_fwd`, `xlb_pass`, the prototype.
    pub dir: Ebpf,
    pub xlb: DataPlane,
    _sync: MapSync,
    pub cpus: usize,
    /// Threaded NAPI is on: the director's kthread can be pinned.
    pub napi_pinned: bool,
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

impl ForwardLab {
    pub fn setup(report: &mut Report) -> Result<Self> {
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
            aliases: Vec::new(),
            algo: SchedAlgo::Wrr,
            hash_port: false,
            active: true,
            persistence_timeout: 0,
            nat: false,
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

        let generator = Generator {
            ebpf: gen_ebpf,
            sink,
            netns: lab.ns("gen"),
            ifindex: idx_g,
            cpus,
        };
        Ok(Self {
            lab,
            ifname,
            idx_d,
            idx_e,
            mac_g,
            mac_d,
            mac_e,
            mac_r,
            generator,
            dir,
            xlb,
            _sync: sync,
            cpus,
            napi_pinned: threaded.is_ok(),
        })
    }

    /// The generator's frames for scenario `sc`, flat out.
    pub fn gen_cfg(&self, sc: &Scenario) -> GenCfg {
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
