//! The packet generator and one measurement: `xlb_bench_gen` run with `BPF_PROG_TEST_RUN`
//! in live-frames mode on a thread of its own, paced through its config map (flat out, at
//! a fixed gap, or at the peak `peak.rs` finds), and a window over which the sink's and
//! the generator's counters give the rates.

use std::{
    sync::atomic::{AtomicBool, AtomicI32, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::{
    Ebpf,
    programs::{TestRun, TestRunAttrs, TestRunOptions},
};
use lb_common::bench::GenCfg;

use super::{
    counters::{busy_share, cpu_jiffies},
    napi::FWD_CPU,
};
use crate::{
    objs,
    peak::{Rates, peak_gap},
    threads::{enter_netns, set_affinity},
};

pub const FRAME_LEN: usize = 60;
/// Frames per BPF_PROG_TEST_RUN call of the generator: each call waits for an RCU grace
/// period (the XDP dispatcher is switched to the program and back), so calls are long;
/// a signal (`SIGUSR1`) ends one early.
const GEN_REPEAT: u32 = 1 << 30;
pub const GEN_CPU: usize = 0;
/// See `napi::DIRECTOR_NICE`.
const GEN_NICE: i32 = -10;

/// How long the generator runs before a measurement (`warm`), and the window measured.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub warm: Duration,
    pub length: Duration,
}

/// How hard the generator drives the director in a measurement.
#[derive(Clone, Copy, Debug)]
pub enum Offer {
    /// Find the peak forwarding rate first (`peak.rs`), with trials of this length.
    Peak(Duration),
    /// A fixed gap between frames (ns; 0: flat out).
    Gap(u32),
}

/// What one window measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Frames per second at the sink, in millions.
    pub sink_mpps: f64,
    /// Frames per second the generator produced, in millions.
    pub gen_mpps: f64,
    /// Share of the frames the director received that did not reach the sink.
    pub lost: f64,
    /// The generator's gap between frames at the peak (ns; 0: flat out).
    pub gap_ns: u32,
    /// Frames per second at the sink with the generator flat out, in millions (the
    /// search's first trial; NaN when there was no search).
    pub flat_sink_mpps: f64,
    /// Share of the window the director's CPU was busy: well under 1, the generator, not
    /// the director, set the rate.
    pub director_busy: f64,
}

/// The generator's object and the sink's (whose counter is what arrived), and where the
/// generator transmits: interface `ifindex` of namespace `netns`.
pub struct Generator {
    pub ebpf: Ebpf,
    pub sink: Ebpf,
    pub netns: String,
    pub ifindex: u32,
    pub cpus: usize,
}

impl Generator {
    /// One live-frames call: does this kernel generate at all?
    pub fn probe_live_frames(&self) -> Result<()> {
        let prog = objs::xdp(&self.ebpf, "xlb_bench_gen")?;
        let frame = [0u8; FRAME_LEN];
        let ctx = objs::xdp_md(self.ifindex, FRAME_LEN);
        std::thread::scope(|s| {
            s.spawn(|| -> Result<()> {
                enter_netns(&self.netns)?;
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

    /// Sink and generator counters now.
    fn counters(&self) -> Result<(u64, u64, Instant)> {
        Ok((
            objs::percpu_sum(&self.sink, "xlb_bench_sink_n")?,
            objs::percpu_sum(&self.ebpf, "xlb_bench_gen_n")?,
            Instant::now(),
        ))
    }

    /// Runs the generator with config `cfg` for `window.warm` (at `offer`'s gap, or flat
    /// out before a search for the peak), then measures what the sink got in the window at
    /// that gap or at the peak's; `at(true)` / `at(false)` run at the start and the end of
    /// the window.
    pub fn pump(
        &self,
        cfg: GenCfg,
        offer: Offer,
        window: Window,
        mut at: impl FnMut(bool),
    ) -> Result<Sample> {
        let prog = objs::xdp(&self.ebpf, "xlb_bench_gen")?;
        let mut pacing = objs::cfg_handle::<GenCfg>(&self.ebpf, "xlb_bench_gen_cfg")?;
        let mut pace = |gap_ns: u32| -> Result<()> {
            pacing
                .set(0, GenCfg { gap_ns, ..cfg }, 0)
                .context("pacing the generator")
        };
        pace(match offer {
            Offer::Gap(gap) => gap,
            Offer::Peak(_) => 0,
        })?;
        let ctx = objs::xdp_md(self.ifindex, FRAME_LEN);
        let stop = AtomicBool::new(false);
        let tid = AtomicI32::new(0);
        install_wakeup_signal();
        std::thread::scope(|s| -> Result<Sample> {
            let worker = s.spawn(|| -> Result<()> {
                enter_netns(&self.netns)?;
                if self.cpus >= 2 {
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
            let running = || -> Result<()> {
                if worker.is_finished() {
                    bail!("the generator stopped early");
                }
                Ok(())
            };
            let result = (|| -> Result<Sample> {
                std::thread::sleep(window.warm);
                running()?;
                let (gap_ns, flat_sink_mpps) = match offer {
                    Offer::Gap(gap) => (gap, f64::NAN),
                    Offer::Peak(trial) => {
                        let peak = peak_gap(|gap| -> Result<Rates> {
                            pace(gap)?;
                            // The rings settle within a few NAPI polls; a tenth of a trial.
                            std::thread::sleep(trial / 10);
                            let r = self.rates_over(trial)?;
                            running()?;
                            Ok(r)
                        })?;
                        pace(peak.gap)?;
                        std::thread::sleep(trial / 10);
                        (peak.gap, peak.flat.sink)
                    }
                };
                at(true);
                let j0 = cpu_jiffies(FWD_CPU);
                let r = self.rates_over(window.length)?;
                let director_busy = busy_share(j0, cpu_jiffies(FWD_CPU));
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

    /// The generator's and the sink's rates over the next `span`.
    fn rates_over(&self, span: Duration) -> Result<Rates> {
        let (s0, g0, t0) = self.counters()?;
        std::thread::sleep(span);
        let (s1, g1, t1) = self.counters()?;
        let secs = (t1 - t0).as_secs_f64();
        Ok(Rates {
            offered: (g1 - g0) as f64 / secs / 1e6,
            sink: (s1 - s0) as f64 / secs / 1e6,
        })
    }
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
