//! A director on the lab's `xbd` for the length of one measurement: the bench programs,
//! xlb, or `xlb_pass` with the nftables rules; its NAPI kthreads placed; then what reaches
//! the sink (`measure`) or the program's own run time per packet (`program_ns`).

use anyhow::{Result, anyhow, bail};
use aya::{
    Ebpf,
    programs::{XdpMode, xdp::XdpLinkId},
};
use lb_common::bench::FwdCfg;

use super::{
    counters::director_rx,
    generator::{Offer, Sample, Window},
    lab::ForwardLab,
    napi::{self, DIRECTOR_NICE, FWD_CPU, SINK_NICE},
    nft,
    scenarios::{Director, Scenario},
    shell::sh,
};
use crate::objs;

/// What is attached to `xbd`, to detach it.
enum Attached {
    Bench(&'static str, XdpLinkId),
    Xlb(XdpLinkId),
}

impl ForwardLab {
    /// Pins the NAPI kthreads of all four veths to the forwarding CPU (after every XDP
    /// attach, which recreates the director's).
    fn place_napis(&self) {
        if self.cpus < 2 {
            return;
        }
        for k in ["d", "e"] {
            napi::place(&self.ifname[k], FWD_CPU, DIRECTOR_NICE);
        }
        for k in ["g", "r"] {
            napi::place(&self.ifname[k], FWD_CPU, SINK_NICE);
        }
    }

    fn nft_path(&self) -> nft::Path<'_> {
        nft::Path {
            ingress: &self.ifname["d"],
            egress: &self.ifname["e"],
            egress_mac: self.mac_e,
            real_mac: self.mac_r,
        }
    }

    fn attach(&mut self, director: Director) -> Result<Attached> {
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
            if let Err(e) = nft::install(&self.lab, kind, &self.nft_path()) {
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

    /// Runs `f` with `director` attached and the NAPI kthreads placed, then takes the
    /// director (and its nftables rules) off again.
    fn with_director<T>(
        &mut self,
        director: Director,
        f: impl FnOnce(&mut Self, &Attached) -> Result<T>,
    ) -> Result<T> {
        let attached = self.attach(director)?;
        self.place_napis();
        let result = f(self, &attached);
        if let Director::Nft(kind) = director {
            nft::remove(&self.lab, kind);
        }
        self.detach(attached)?;
        result
    }

    /// What reaches the sink through scenario `sc`'s director, and what it lost.
    pub fn measure(&mut self, sc: &Scenario, offer: Offer, window: Window) -> Result<Sample> {
        self.with_director(sc.director, |fwd, _| {
            let cfg = fwd.gen_cfg(sc);
            let (lab, d) = (&fwd.lab, &fwd.ifname["d"]);
            let mut rx = [None, None];
            let mut sample = fwd.generator.pump(cfg, offer, window, |start| {
                rx[usize::from(!start)] = director_rx(lab, d)
            })?;
            if let [Some(a), Some(b)] = rx {
                let secs = window.length.as_secs_f64();
                let received = (b - a) as f64 / secs / 1e6;
                if received > 0.0 {
                    sample.lost = (1.0 - sample.sink_mpps / received).max(0.0);
                }
            }
            Ok(sample)
        })
    }

    /// The director program's own run time per packet during forwarding (bpf_stats), the
    /// generator paced with `gap_ns` (the peak's, found by `measure`).
    pub fn program_ns(&mut self, sc: &Scenario, gap_ns: u32, window: Window) -> Result<f64> {
        self.with_director(sc.director, |fwd, attached| {
            let cfg = fwd.gen_cfg(sc);
            let stats = aya::sys::enable_stats(aya::sys::Stats::RunTime)
                .map_err(|e| anyhow!("BPF_ENABLE_STATS: {e}"))?;
            let mut read = || -> (u64, u64) {
                let info = match attached {
                    Attached::Bench(name, _) => {
                        objs::xdp(&fwd.dir, name).ok().and_then(|p| p.info().ok())
                    }
                    Attached::Xlb(_) => fwd.xlb.program().ok().and_then(|p| p.info().ok()),
                };
                info.map(|i| (i.run_time().as_nanos() as u64, i.run_count()))
                    .unwrap_or((0, 0))
            };
            let mut before = (0, 0);
            let mut after = (0, 0);
            let pumped = fwd
                .generator
                .pump(cfg, Offer::Gap(gap_ns), window, |start| {
                    if start {
                        before = read();
                    } else {
                        after = read();
                    }
                });
            drop(stats);
            pumped?;
            let ((t0, n0), (t1, n1)) = (before, after);
            if n1 <= n0 {
                bail!("no run-time statistics");
            }
            Ok((t1 - t0) as f64 / (n1 - n0) as f64)
        })
    }
}
