//! [`HealthMonitor`]: runs the checkers of every real server and reports verdicts.
//!
//! One tokio task per real server owns its [`ServerState`]: it sleeps until the next
//! check is due, starts the checks that are (concurrently, as futures of the same task:
//! no thread per check, no task per check), feeds their outcomes to the state machine,
//! logs what changed and sends a [`Verdict`] when the server's aliveness or weight does.
//! A reload hands the task its new [`Target`] through a watch channel; checkers that
//! did not change keep their state, schedule and running check. Dropping the task's
//! sender (removal, shutdown) ends it, and dropping its running checks kills their
//! scripts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{AbortHandle, Aborted, BoxFuture};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::ping::{Pinger, Pingers};
use super::state::{CheckerState, Outcome, ServerState, Step};
use super::{CheckKind, CheckerSpec, RealKey, Target, dns, http, misc, ping, smtp, tcp, udp};

/// A change of a real server's health, as decided by its checkers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub key: RealKey,
    /// Alive: every checker is up.
    pub alive: bool,
    /// The weight a `misc_dynamic` checker set (exit status - 2); `None`: the
    /// configured weight.
    pub weight: Option<u32>,
    /// Why, naming the checker: `tcp_check 198.18.0.21:80: connection refused (after
    /// 4 attempts)`, `http_get 198.18.0.22:80: /health: status 503 (expected
    /// 200-299)`, `misc_check "/usr/local/bin/chk": exit code 1`.
    pub reason: String,
}

/// Verdicts waiting for the receiver; a task with a verdict to send waits when full.
const VERDICT_QUEUE: usize = 4096;

/// What the checks of one monitor share.
#[derive(Default)]
struct Shared {
    pingers: Pingers,
    /// How long the last completed check of each real server took (for the metrics).
    last_check: Mutex<HashMap<RealKey, Duration>>,
}

impl Shared {
    fn record_check(&self, key: RealKey, took: Duration) {
        if let Ok(mut m) = self.last_check.lock() {
            m.insert(key, took);
        }
    }
}

struct Running {
    target: Target,
    updates: watch::Sender<Target>,
    task: JoinHandle<()>,
}

/// Runs health checks; see the module documentation.
pub struct HealthMonitor {
    running: HashMap<RealKey, Running>,
    verdicts: mpsc::Sender<Verdict>,
    shared: Arc<Shared>,
}

impl HealthMonitor {
    /// Starts checking `targets` (inside a tokio runtime). Verdicts are sent only on
    /// changes: a server starts as [`Target::initially_alive`] says.
    pub fn spawn(targets: Vec<Target>) -> (HealthMonitor, mpsc::Receiver<Verdict>) {
        let (tx, rx) = mpsc::channel(VERDICT_QUEUE);
        let mut monitor = HealthMonitor {
            running: HashMap::new(),
            verdicts: tx,
            shared: Arc::default(),
        };
        monitor.update(targets);
        (monitor, rx)
    }

    /// Applies a new set of targets (a reload): targets whose key and checkers are
    /// unchanged keep running untouched; changed ones keep the state of their
    /// unchanged checkers; removed ones stop; new ones start. A target listed twice
    /// keeps its last entry.
    pub fn update(&mut self, targets: Vec<Target>) {
        let mut wanted: HashMap<RealKey, Target> = HashMap::with_capacity(targets.len());
        for t in targets {
            if wanted.insert(t.key, t).is_some() {
                warn!("health check target listed twice; the last entry is used");
            }
        }
        self.running.retain(|key, r| {
            let keep = wanted.contains_key(key);
            if !keep {
                debug!(server = %key, "health checks stopped");
                r.task.abort();
            }
            keep
        });
        if let Ok(mut m) = self.shared.last_check.lock() {
            m.retain(|key, _| wanted.contains_key(key));
        }
        for (key, target) in wanted {
            match self.running.get_mut(&key) {
                Some(r) if r.target == target => {}
                Some(r) => {
                    r.target = target.clone();
                    let _ = r.updates.send(target);
                }
                None => {
                    let (updates, rx) = watch::channel(target.clone());
                    let task = tokio::spawn(run_target(
                        target.clone(),
                        rx,
                        self.verdicts.clone(),
                        self.shared.clone(),
                    ));
                    self.running.insert(
                        key,
                        Running {
                            target,
                            updates,
                            task,
                        },
                    );
                }
            }
        }
    }

    /// How long the last completed check of each checked real server took (any of its
    /// checkers, whichever completed last); servers not checked yet are absent.
    pub fn last_check_durations(&self) -> HashMap<RealKey, Duration> {
        self.shared
            .last_check
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// The targets being checked.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.running.len()
    }

    /// Stops every check (scripts still running are killed) and waits for the tasks
    /// to end. The verdict receiver then yields what was queued, then `None`.
    pub async fn shutdown(self) {
        let tasks: Vec<_> = self
            .running
            .into_values()
            .map(|r| {
                // Abort rather than wait for the task to notice: it may be waiting for
                // room in a verdict queue nobody reads any more.
                r.task.abort();
                r.task
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// A checker of a running target.
struct Slot {
    /// Identifies the checker's running check across reloads.
    id: u64,
    spec: CheckerSpec,
    running: Option<AbortHandle>,
    /// The shared ICMP socket of a `ping_check`, held between checks.
    pinger: Option<Arc<Pinger>>,
}

/// One running check: its checker's id, and its outcome with how long it took.
type Check = BoxFuture<'static, (u64, Result<(Outcome, Duration), Aborted>)>;
type Checks = FuturesUnordered<Check>;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// The task of one real server.
async fn run_target(
    target: Target,
    mut updates: watch::Receiver<Target>,
    verdicts: mpsc::Sender<Verdict>,
    shared: Arc<Shared>,
) {
    let key = target.key;
    let mut ids = 0u64..;
    let mut slots: Vec<Slot> = target
        .checkers
        .into_iter()
        .map(|spec| Slot {
            id: ids.next().unwrap_or_default(),
            spec,
            running: None,
            pinger: None,
        })
        .collect();
    let mut state = ServerState::new(
        slots.iter().map(|s| s.spec.policy.clone()).collect(),
        now(),
        rand::random::<f64>,
    );
    debug!(server = %key, checkers = slots.len(), alive = state.alive(), "health checks started");
    let mut checks = Checks::new();

    loop {
        let next = state.next_due();
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    break; // removed, or shutdown
                }
                let new = updates.borrow_and_update().clone();
                let transition = reconfigure(&mut slots, &mut state, new.checkers, &mut ids);
                if let Some(t) = transition {
                    report(&verdicts, key, t).await;
                }
            }
            Some((id, result)) = checks.next(), if !checks.is_empty() => {
                let Ok((outcome, took)) = result else {
                    continue; // aborted by a reload
                };
                shared.record_check(key, took);
                let Some(i) = slots.iter().position(|s| s.id == id) else {
                    continue;
                };
                slots[i].running = None;
                let log_outcome = outcome.clone();
                let step = state.on_result(i, now(), outcome);
                log_step(&key, &slots[i].spec, &log_outcome, &step);
                if let Some(t) = step.transition {
                    report(&verdicts, key, t).await;
                }
            }
            () = sleep_until(next) => {
                for i in state.start_due(now()) {
                    checks.push(start(&mut slots[i], &shared));
                }
            }
        }
    }
    // Dropping `checks` drops the running checks (scripts are killed).
}

/// Starts one check of `slot`.
fn start(slot: &mut Slot, shared: &Shared) -> Check {
    let kind = slot.spec.kind.clone();
    let pinger = match &kind {
        CheckKind::Ping(spec) if slot.pinger.is_none() => match shared.pingers.get(spec) {
            Ok(p) => {
                slot.pinger = Some(p.clone());
                Ok(Some(p))
            }
            Err(e) => Err(format!("ICMP socket: {e}")),
        },
        _ => Ok(slot.pinger.clone()),
    };
    let check = async move {
        let started = Instant::now();
        let outcome = match (&kind, pinger) {
            (_, Err(reason)) => Outcome::down(reason),
            (CheckKind::Tcp(s), _) => tcp::check(s).await,
            (CheckKind::Http(s), _) => http::check(s).await,
            (CheckKind::Misc(s), _) => misc::check(s).await,
            (CheckKind::Dns(s), _) => dns::check(s).await,
            (CheckKind::Udp(s), _) => udp::check(s).await,
            (CheckKind::Ping(s), Ok(Some(p))) => ping::check(s, &p).await,
            (CheckKind::Ping(_), Ok(None)) => Outcome::down("no ICMP socket"),
            (CheckKind::Smtp(s), _) => smtp::check(s).await,
        };
        (outcome, started.elapsed())
    };
    let (check, handle) = futures::future::abortable(check);
    slot.running = Some(handle);
    let id = slot.id;
    check.map(move |r| (id, r)).boxed()
}

/// Moves `slots` and `state` to `new` checkers: a checker whose probe is unchanged
/// keeps its slot (running check included) and state, under its new timing options;
/// others start fresh; removed ones are stopped.
/// Returns the transition to report if the change of checkers changed the verdict.
fn reconfigure(
    slots: &mut Vec<Slot>,
    state: &mut ServerState,
    new: Vec<CheckerSpec>,
    ids: &mut std::ops::RangeFrom<u64>,
) -> Option<super::state::Transition> {
    let t = now();
    let mut old: Vec<Option<(Slot, CheckerState)>> = std::mem::take(slots)
        .into_iter()
        .zip(state.checkers().iter().cloned())
        .map(Some)
        .collect();
    let mut states = Vec::with_capacity(new.len());
    for spec in new {
        // The same checker, else one probing the same way with other timing options
        // (keepalived's migrate_checkers compares the probe, not the timing).
        let same =
            |o: &Option<(Slot, CheckerState)>| o.as_ref().is_some_and(|(s, _)| s.spec == spec);
        let same_probe = |o: &Option<(Slot, CheckerState)>| {
            o.as_ref().is_some_and(|(s, _)| s.spec.kind == spec.kind)
        };
        let kept = old
            .iter()
            .position(same)
            .or_else(|| old.iter().position(same_probe))
            .and_then(|i| old[i].take());
        match kept {
            Some((mut slot, st)) => {
                slot.spec = spec;
                slots.push(slot);
                states.push(st);
            }
            None => {
                states.push(CheckerState::new(&spec.policy, t, rand::random::<f64>()));
                slots.push(Slot {
                    id: ids.next().unwrap_or_default(),
                    spec,
                    running: None,
                    pinger: None,
                });
            }
        }
    }
    for (slot, _) in old.into_iter().flatten() {
        if let Some(h) = slot.running {
            h.abort();
        }
    }
    let reported = (state.alive(), state.weight());
    *state = ServerState::from_parts(
        slots.iter().map(|s| s.spec.policy.clone()).collect(),
        states,
        Some(reported),
    );
    state.evaluate()
}

async fn report(verdicts: &mpsc::Sender<Verdict>, key: RealKey, t: super::state::Transition) {
    if t.alive {
        info!(server = %key, weight = ?t.weight, reason = %t.reason, "real server alive");
    } else {
        warn!(server = %key, reason = %t.reason, "real server down");
    }
    // A dropped receiver only means nobody listens any more; checks go on.
    let _ = verdicts
        .send(Verdict {
            key,
            alive: t.alive,
            weight: t.weight,
            reason: t.reason,
        })
        .await;
}

fn log_step(key: &RealKey, spec: &CheckerSpec, outcome: &Outcome, step: &Step) {
    let label = &spec.policy.label;
    let reason = match outcome {
        Outcome::Failure { reason } => reason.as_str(),
        Outcome::Success { .. } => "",
    };
    match step.checker_changed {
        Some(true) => info!(server = %key, checker = %label, "checker up"),
        Some(false) => info!(server = %key, checker = %label, reason, "checker down"),
        None => {}
    }
    if let Some((attempt, of)) = step.retrying {
        if spec.policy.log_all_failures {
            info!(server = %key, checker = %label, reason, attempt, of, "check failed, retrying");
        } else {
            debug!(server = %key, checker = %label, reason, attempt, of, "check failed, retrying");
        }
    } else if step.checker_changed.is_none() && !reason.is_empty() {
        if spec.policy.log_all_failures {
            info!(server = %key, checker = %label, reason, "check failed");
        } else {
            debug!(server = %key, checker = %label, reason, "check failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::net::TcpListener;

    use super::super::state::CheckerPolicy;
    use super::super::{ConnectOpts, misc::MiscSpec, tcp::TcpSpec};
    use super::*;
    use crate::config::Protocol;

    fn key(rport: u16) -> RealKey {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        RealKey {
            vip: lo,
            vport: 80,
            protocol: Protocol::Tcp,
            rip: lo,
            rport,
        }
    }

    fn policy(label: &str, ms: u64) -> CheckerPolicy {
        CheckerPolicy {
            label: label.to_owned(),
            retry: 1,
            delay_before_retry: Duration::from_millis(ms / 2),
            delay_loop: Duration::from_millis(ms),
            warmup: Duration::ZERO,
            alpha: false,
            log_all_failures: false,
            from_start: false,
        }
    }

    fn tcp_target(port: u16, loop_ms: u64) -> Target {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Target {
            key: key(port),
            checkers: vec![CheckerSpec {
                kind: CheckKind::Tcp(TcpSpec {
                    conn: ConnectOpts::new(addr, Duration::from_secs(1)),
                }),
                policy: policy(&format!("tcp_check {addr}"), loop_ms),
            }],
        }
    }

    /// A listener counting the connections it accepts.
    async fn counting_listener(
        addr: SocketAddr,
    ) -> (SocketAddr, Arc<Mutex<Vec<Instant>>>, JoinHandle<()>) {
        let l = TcpListener::bind(addr).await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((_s, _)) = l.accept().await {
                log.lock().unwrap().push(Instant::now());
            }
        });
        (addr, seen, task)
    }

    async fn next_verdict(rx: &mut mpsc::Receiver<Verdict>) -> Verdict {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a verdict in time")
            .expect("monitor running")
    }

    #[tokio::test]
    async fn check_monitor_reports_down_and_up_with_reasons() {
        let (addr, _seen, listener) = counting_listener("127.0.0.1:0".parse().unwrap()).await;
        let target = tcp_target(addr.port(), 200);
        assert!(target.initially_alive());
        let (monitor, mut rx) = HealthMonitor::spawn(vec![target]);
        // Give it a couple of successful checks, then close the port.
        tokio::time::sleep(Duration::from_millis(300)).await;
        listener.abort();
        let _ = listener.await;
        let down = next_verdict(&mut rx).await;
        assert_eq!(down.key, key(addr.port()));
        assert!(!down.alive);
        assert_eq!(
            down.reason,
            format!("tcp_check {addr}: connection refused (after 2 attempts)")
        );
        // Back: up on the first success.
        let (_a, _s, _l) = counting_listener(addr).await;
        let up = next_verdict(&mut rx).await;
        assert!(up.alive);
        assert_eq!(up.reason, format!("tcp_check {addr}: succeeded"));
        monitor.shutdown().await;
        assert_eq!(rx.recv().await, None, "no verdict after shutdown");
    }

    #[tokio::test]
    async fn check_monitor_alpha_and_misc_dynamic_weight() {
        let mut p = policy("misc_check \"exit 7\"", 200);
        p.alpha = true;
        p.from_start = true;
        let target = Target {
            key: key(1),
            checkers: vec![CheckerSpec {
                kind: CheckKind::Misc(Arc::new(MiscSpec::new(
                    "/bin/sh -c 'exit 7'",
                    Duration::from_secs(5),
                    true,
                    None,
                    &crate::process::Policy::default(),
                ))),
                policy: p,
            }],
        };
        assert!(!target.initially_alive());
        let (monitor, mut rx) = HealthMonitor::spawn(vec![target]);
        let v = next_verdict(&mut rx).await;
        assert_eq!((v.alive, v.weight), (true, Some(5)));
        monitor.shutdown().await;
    }

    #[tokio::test]
    async fn check_monitor_reload_keeps_removes_and_adds() {
        let (a_addr, a_seen, _a) = counting_listener("127.0.0.1:0".parse().unwrap()).await;
        let (b_addr, b_seen, _b) = counting_listener("127.0.0.1:0".parse().unwrap()).await;
        let a = tcp_target(a_addr.port(), 100);
        let b = tcp_target(b_addr.port(), 100);
        // A closed port: C goes down on its first failure and stays down.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c_port = closed.local_addr().unwrap().port();
        drop(closed);
        let c = tcp_target(c_port, 100);

        let (mut monitor, mut rx) = HealthMonitor::spawn(vec![a.clone(), c.clone()]);
        let v = next_verdict(&mut rx).await;
        assert_eq!((v.key, v.alive), (key(c_port), false));

        // Same targets plus B: A and C keep their state (no verdict for C again).
        tokio::time::sleep(Duration::from_millis(250)).await;
        monitor.update(vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(monitor.len(), 3);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(
            rx.try_recv().is_err(),
            "unchanged targets report nothing new"
        );
        assert!(!b_seen.lock().unwrap().is_empty(), "B is checked");

        // C's timing changes: same probe, so it stays down without a new verdict.
        let mut c_slower = c.clone();
        c_slower.checkers[0].policy.delay_loop = Duration::from_millis(150);
        monitor.update(vec![a.clone(), b.clone(), c_slower]);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(
            rx.try_recv().is_err(),
            "a timing change keeps the checker's state"
        );

        // C's checker changes to one that passes (a listening port): it comes back up.
        let mut c2 = tcp_target(b_addr.port(), 100);
        c2.key = c.key;
        monitor.update(vec![a.clone(), b.clone(), c2]);
        let v = next_verdict(&mut rx).await;
        assert_eq!((v.key, v.alive), (key(c_port), true));

        // A removed: its checks stop.
        monitor.update(vec![b.clone()]);
        assert_eq!(monitor.len(), 1);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let before = a_seen.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            a_seen.lock().unwrap().len(),
            before,
            "A is no longer checked"
        );
        monitor.shutdown().await;
    }

    /// CPU time (user + system) so far of this process's threads named `name`.
    fn threads_cpu(name: &str) -> Duration {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let mut ticks = 0u64;
        for task in std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = task.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.trim_end() != name {
                continue;
            }
            let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
            // Fields after the command's closing parenthesis: state is the 3rd field,
            // utime and stime the 14th and 15th.
            let rest = stat.rsplit(')').next().unwrap_or_default();
            let f: Vec<&str> = rest.split_whitespace().collect();
            ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            ticks += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
        Duration::from_millis(ticks * 1000 / hz)
    }

    /// 2,000 tcp_checks with delay_loop 1 against 2,000 local listeners for ~5 s, on a
    /// runtime of its own with 2 workers whose CPU time is measured: every check runs
    /// on schedule. The checks per second and CPU are printed (`--nocapture`).
    /// `XLB_SCALE_CHECKS=10000` runs that many instead (the bench's figure; it needs
    /// about 3 descriptors per check).
    #[test]
    fn check_scale_2000_tcp_checks_on_schedule() {
        let n: usize = std::env::var("XLB_SCALE_CHECKS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        const RUN: Duration = Duration::from_millis(5500);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("xlb-scale")
            .enable_all()
            .build()
            .unwrap();
        let (logs, cpu) = rt.block_on(async {
            let mut targets = Vec::with_capacity(n);
            let mut logs = Vec::with_capacity(n);
            for _ in 0..n {
                let (addr, seen, _task) = counting_listener("127.0.0.1:0".parse().unwrap()).await;
                let mut t = tcp_target(addr.port(), 1000);
                t.checkers[0].policy.warmup = Duration::from_secs(1);
                targets.push(t);
                logs.push(seen);
            }
            let cpu_before = threads_cpu("xlb-scale");
            let (monitor, mut rx) = HealthMonitor::spawn(targets);
            tokio::time::sleep(RUN).await;
            let cpu = threads_cpu("xlb-scale") - cpu_before;
            monitor.shutdown().await;
            let mut verdicts = Vec::new();
            while let Ok(v) = rx.try_recv() {
                verdicts.push(v);
            }
            assert!(verdicts.is_empty(), "all listeners were up: {verdicts:?}");
            (logs, cpu)
        });
        rt.shutdown_timeout(Duration::from_secs(10));

        let mut total = 0usize;
        let mut lags: Vec<Duration> = Vec::new();
        let mut too_early = Vec::new();
        let mut too_few = Vec::new();
        for (i, log) in logs.iter().enumerate() {
            let times = log.lock().unwrap().clone();
            total += times.len();
            if times.len() < 4 {
                too_few.push((i, times.len()));
            }
            for w in times.windows(2) {
                let gap = w[1] - w[0];
                match gap.checked_sub(Duration::from_secs(1)) {
                    Some(lag) => lags.push(lag),
                    None if gap < Duration::from_millis(900) => too_early.push((i, gap)),
                    None => lags.push(Duration::ZERO),
                }
            }
        }
        lags.sort();
        let pct = |p: f64| lags[((lags.len() - 1) as f64 * p) as usize];
        eprintln!(
            "scale: {n} tcp_checks, delay_loop 1 s, {:.1} s: {total} checks ({:.0}/s); \
             lag behind schedule p50 {:?} p99 {:?} max {:?}; CPU (checker + listeners) \
             {:.2} s = {:.0}% of one core",
            RUN.as_secs_f64(),
            total as f64 / RUN.as_secs_f64(),
            pct(0.5),
            pct(0.99),
            pct(1.0),
            cpu.as_secs_f64(),
            100.0 * cpu.as_secs_f64() / RUN.as_secs_f64(),
        );
        assert!(
            too_few.is_empty(),
            "targets checked fewer than 4 times: {too_few:?}"
        );
        assert!(
            too_early.is_empty(),
            "checks ahead of schedule: {too_early:?}"
        );
        assert!(
            pct(1.0) < Duration::from_millis(500),
            "a check ran {:?} late",
            pct(1.0)
        );
    }
}
