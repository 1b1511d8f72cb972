//! Health checks: `HealthMonitor` running `tcp_check`s with `delay_loop` 1 against local
//! listeners in a namespace of our own; checks per second, and the CPU of the checker and
//! of the listeners.

use std::{
    net::TcpListener,
    os::fd::{AsRawFd, FromRawFd},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use integration_tests::netns::Lab;

use crate::{
    Opts,
    report::{Report, Section},
    threads::enter_netns,
};

/// A listening socket with a deep backlog (std's is 128), in the calling thread's netns.
fn listener(port: u16) -> Result<TcpListener> {
    // SAFETY: plain socket calls on an fd we own; the fd goes into a TcpListener.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            bail!("socket: {}", std::io::Error::last_os_error());
        }
        let l = TcpListener::from_raw_fd(fd);
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        );
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: 0 },
            sin_zero: [0; 8],
        };
        if libc::bind(
            fd,
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        ) != 0
        {
            bail!("bind: {}", std::io::Error::last_os_error());
        }
        if libc::listen(fd, 65535) != 0 {
            bail!("listen: {}", std::io::Error::last_os_error());
        }
        Ok(l)
    }
}

fn cpu_secs(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// CPU time of thread `tid` of this process (schedstat: nanoseconds on a CPU).
fn thread_cpu_secs(tid: i32) -> f64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|ns| ns as f64 / 1e9)
        .unwrap_or(0.0)
}

fn health_config(n: usize) -> String {
    let mut text = String::new();
    let per_service = 100;
    for s in 0..n.div_ceil(per_service) {
        text.push_str(&format!(
            "[[virtual_server]]\nip = \"198.18.{}.{}\"\nport = 80\nprotocol = \"TCP\"\n\
             lb_algo = \"wrr\"\ndelay_loop = 1\ninterface = \"lo\"\n\n",
            100 + s / 250,
            1 + s % 250
        ));
        for r in 0..per_service.min(n - s * per_service) {
            let i = s * per_service + r + 1;
            text.push_str(&format!(
                "[[virtual_server.real_server]]\nip = \"198.19.{}.{}\"\nport = 80\n\
                 tcp_check = {{ connect_timeout = 3 }}\n\n",
                i >> 8,
                i & 255
            ));
        }
    }
    text
}

pub fn health_bench(opts: &Opts, report: &mut Report, sec: &mut Section) -> Result<()> {
    let (n, warm, window) = if opts.quick {
        (
            1_000usize,
            Duration::from_millis(1500),
            Duration::from_secs(2),
        )
    } else {
        (10_000usize, Duration::from_secs(3), Duration::from_secs(10))
    };
    let cfg = xlb::config::Config::parse(&health_config(n), "bench-health.toml")
        .map_err(|e| anyhow!("{e}"))
        .context("the health-check config")?;
    let targets = xlb::health::targets_from_config(&cfg);
    if targets.len() != n {
        bail!(
            "{} health-check targets from the config, {n} expected",
            targets.len()
        );
    }

    let mut lab = Lab::new("bhc");
    lab.add_ns("hc");
    // Every address of 198.19.0.0/16 is local in the namespace: n real servers, one
    // listener.
    lab.sh(
        "hc",
        "ip route add local 198.19.0.0/16 dev lo && \
         sysctl -qw net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535",
    );
    let ns = lab.ns("hc");
    let accepted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let listener_tid = Arc::new(std::sync::atomic::AtomicI32::new(0));

    let result = std::thread::scope(|s| -> Result<(f64, f64, f64, usize)> {
        let (ns, accepted, stop, listener_tid) = (&ns, &accepted, &stop, &listener_tid);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        s.spawn(move || {
            // SAFETY: gettid has no preconditions.
            listener_tid.store(unsafe { libc::gettid() }, Ordering::SeqCst);
            let l = match enter_netns(ns).and_then(|_| listener(80)) {
                Ok(l) => {
                    let _ = ready_tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            l.set_nonblocking(true).ok();
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        drop(c);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        // SAFETY: poll on our own listening fd.
                        let mut pfd = libc::pollfd {
                            fd: l.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        };
                        unsafe { libc::poll(&mut pfd, 1, 50) };
                    }
                    Err(_) => {}
                }
            }
        });
        ready_rx
            .recv()
            .map_err(|_| anyhow!("listener thread gone"))??;

        // The monitor runs on a runtime whose threads live in the namespace.
        let out = s
            .spawn(move || -> Result<(f64, f64, f64, usize)> {
                enter_netns(ns)?;
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let (monitor, mut verdicts) = xlb::health::HealthMonitor::spawn(targets);
                    let downs = Arc::new(AtomicU64::new(0));
                    let d = downs.clone();
                    let drain = tokio::spawn(async move {
                        while let Some(v) = verdicts.recv().await {
                            if !v.alive {
                                d.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                    tokio::time::sleep(warm).await;
                    let tid = listener_tid.load(Ordering::SeqCst);
                    // Accepted connections, this process's CPU, the listener's, and when.
                    let reading = || {
                        (
                            accepted.load(Ordering::Relaxed),
                            cpu_secs(libc::RUSAGE_SELF),
                            thread_cpu_secs(tid),
                            Instant::now(),
                        )
                    };
                    let (a0, c0, l0, t0) = reading();
                    tokio::time::sleep(window).await;
                    let (a1, c1, l1, t1) = reading();
                    monitor.shutdown().await;
                    drain.abort();
                    let secs = (t1 - t0).as_secs_f64();
                    Ok((
                        (a1 - a0) as f64 / secs,
                        ((c1 - c0) - (l1 - l0)).max(0.0) / secs,
                        (l1 - l0) / secs,
                        downs.load(Ordering::Relaxed) as usize,
                    ))
                })
            })
            .join()
            .map_err(|_| anyhow!("monitor thread panicked"))?;
        stop.store(true, Ordering::Relaxed);
        out
    });
    let (checks_per_s, checker_cpu, listener_cpu, downs) = result?;
    let expected = n as f64; // delay_loop 1 s
    sec.row(vec![
        format!("health checks: {n} tcp_check, delay_loop 1 s: checks/s (expected {n})"),
        format!("{checks_per_s:.0}"),
    ]);
    sec.row(vec![
        "  CPU of the checker (HealthMonitor on tokio), cores".into(),
        format!("{checker_cpu:.2}"),
    ]);
    sec.row(vec![
        format!("  per 1,000 checks/s, % of a core"),
        format!("{:.1}", checker_cpu * 100.0 / (checks_per_s / 1000.0)),
    ]);
    sec.row(vec![
        "  CPU of the listeners' accept loop (not xlb), cores".into(),
        format!("{listener_cpu:.2}"),
    ]);
    if downs > 0 {
        report.note(format!(
            "health checks: {downs} servers reported down (local listeners)"
        ));
    }
    report.set("health_checks_targets", n as u64);
    report.set("health_checks_per_second", checks_per_s);
    report.set("health_checks_ratio_of_schedule", checks_per_s / expected);
    report.set("health_checks_cpu_cores", checker_cpu);
    report.set("health_checks_listener_cpu_cores", listener_cpu);
    report.set("health_checks_servers_down", downs as u64);
    drop(lab);
    Ok(())
}
