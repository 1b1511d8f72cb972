//! One VRRP instance at work: the driver around the pure [`Machine`].
//!
//! The task owns the machine, its socket and its timers. Everything it does is one of
//! five reactions: an advert arrived (decode, check, feed the machine), a deadline passed
//! (tick the machine, send due gratuitous ARPs), a tracked interface or a `vrrp_script`
//! verdict changed (FAULT in or out, or a priority delta), or the controller asked it to
//! stop. Notify commands run on every transition. The machine's actions are carried out in the
//! order given; the two that touch the data plane go through the [`Gate`], so that a
//! director that becomes MASTER forwards before it announces the VIPs, and one that stops
//! being MASTER stops forwarding in the same step as it removes them.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use rtnetlink::Handle;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::{
    machine::{Action, Event, Initial, Machine, Params, State},
    net::{self, VrrpSocket, VrrpSocketConfig},
    packet::{self, Advert, Auth, Interval, LocalParams, V3Checksum, Version},
    track::{self, Tracked},
    vip::{self, GarpSchedule},
};
use crate::config::{Config, InitialState, VirtualIpAddress, VrrpInstance};

/// Everything an instance needs, resolved from the config.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceSpec {
    pub name: String,
    pub interface: String,
    pub params_priority: u8,
    pub version: Version,
    pub vrid: u8,
    pub advert_int: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub initial: Initial,
    pub auth: Auth,
    pub vips: Vec<VirtualIpAddress>,
    /// The addresses carried in adverts.
    pub advertised: Vec<IpAddr>,
    pub src: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub mcast_group: IpAddr,
    pub checksum: V3Checksum,
    pub garp: GarpSchedule,
    /// Tracked interfaces by name, and how each counts.
    pub track_interfaces: Vec<(String, Tracked)>,
    pub track_own_interface: bool,
    /// Tracked `vrrp_script`s by name, and how each counts.
    pub track_scripts: Vec<(String, Tracked)>,
    /// The config block, for the notify commands.
    pub config: VrrpInstance,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl InstanceSpec {
    pub fn from_config(cfg: &Config, i: &VrrpInstance) -> Self {
        let g = &cfg.global_defs;
        let vips = i.virtual_addresses();
        let advertised: Vec<IpAddr> = vips.iter().map(|v| v.addr).collect();
        let v6 = i.is_ipv6().unwrap_or(false);
        let version = if i.version == 3 {
            Version::V3
        } else {
            Version::V2
        };
        let auth = match (&i.authentication, version) {
            (Some(a), Version::V2) => Auth::pass(a.auth_pass.as_bytes()).unwrap_or(Auth::None),
            _ => Auth::None,
        };
        let mut all_vips = vips;
        all_vips.extend(i.excluded_addresses());
        Self {
            name: i.name.clone(),
            interface: i.interface.clone(),
            params_priority: i.priority,
            version,
            vrid: i.virtual_router_id,
            advert_int: secs(i.advert_int),
            preempt: !i.nopreempt,
            preempt_delay: secs(i.preempt_delay),
            initial: match i.state {
                InitialState::Master => Initial::Master,
                InitialState::Backup => Initial::Backup,
            },
            auth,
            vips: all_vips,
            advertised,
            src: i.unicast_src_ip.or(i.mcast_src_ip),
            unicast_peers: i.unicast_peer.clone(),
            mcast_group: if v6 {
                IpAddr::V6(g.vrrp_mcast_group6)
            } else {
                IpAddr::V4(g.vrrp_mcast_group4)
            },
            checksum: if i.v3_checksum_as_v2 {
                V3Checksum::MessageOnly
            } else {
                V3Checksum::PseudoHeader
            },
            garp: GarpSchedule::for_instance(i, g),
            track_interfaces: i
                .tracked_interfaces()
                .iter()
                .map(|e| (e.name.clone(), Tracked::interface(e)))
                .collect(),
            track_own_interface: !i.dont_track_primary,
            track_scripts: i
                .tracked_scripts()
                .iter()
                .map(|e| {
                    (
                        e.name.clone(),
                        Tracked::script(e, cfg.vrrp_script.get(&e.name)),
                    )
                })
                .collect(),
            config: i.clone(),
        }
    }

    fn is_ipv6(&self) -> bool {
        self.advertised.first().is_some_and(IpAddr::is_ipv6)
    }

    /// Whether `other` differs from this spec in what happens on a transition at most
    /// (notify commands, `smtp_alert`): a running instance takes those without a restart,
    /// which would make a master resign.
    pub fn same_but_notify(&self, other: &Self) -> bool {
        fn strip(s: &InstanceSpec) -> InstanceSpec {
            let mut s = s.clone();
            let c = &mut s.config;
            (c.notify, c.notify_master, c.notify_backup) = (None, None, None);
            (c.notify_fault, c.notify_stop, c.smtp_alert) = (None, None, None);
            s
        }
        strip(self) == strip(other)
    }
}

/// Asks the controller to switch forwarding of an instance's virtual services, and waits
/// until the maps say so.
#[derive(Clone)]
pub struct Gate(pub mpsc::Sender<GateRequest>);

pub struct GateRequest {
    pub instance: String,
    pub state: State,
    pub done: oneshot::Sender<()>,
}

impl Gate {
    async fn set(&self, instance: &str, state: State) {
        let (done, wait) = oneshot::channel();
        let req = GateRequest {
            instance: instance.to_string(),
            state,
            done,
        };
        if self.0.send(req).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// A running instance.
pub struct Instance {
    pub name: String,
    pub spec: InstanceSpec,
    stop: Option<oneshot::Sender<()>>,
    /// The config block the running task notifies with (see [`Instance::renotify`]).
    notify_config: tokio::sync::watch::Sender<VrrpInstance>,
    task: tokio::task::JoinHandle<()>,
}

impl Instance {
    /// Takes `spec`, which [`InstanceSpec::same_but_notify`] found equal to the running
    /// one but for its notify settings, without a restart: the next transition uses them.
    pub fn renotify(&mut self, spec: InstanceSpec) {
        self.notify_config.send_replace(spec.config.clone());
        self.spec = spec;
    }

    /// Resigns (priority 0 advert if MASTER, VIPs removed) and waits for the task to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }
}

/// What `xlb status` shows of an instance.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub state: String,
    pub priority: u8,
    pub configured_priority: u8,
    pub source: IpAddr,
    pub vips: Vec<IpAddr>,
    /// The source of the last accepted advert (the master, when we are BACKUP).
    pub last_advert_from: Option<IpAddr>,
    /// Rejected adverts by reason since start.
    pub rejected: std::collections::BTreeMap<String, u64>,
}

/// Every instance's status, shared with the controller (which writes it to a file).
pub type StatusBoard =
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, InstanceStatus>>>;

/// Counts rejected adverts by reason and logs at most one line per reason per period.
#[derive(Default)]
struct RejectLog {
    counts: HashMap<&'static str, (u64, Option<Instant>)>,
}

impl RejectLog {
    const PERIOD: Duration = Duration::from_secs(10);

    fn record(&mut self, instance: &str, reason: &'static str, detail: &dyn std::fmt::Display) {
        let now = Instant::now();
        let entry = self.counts.entry(reason).or_insert((0, None));
        entry.0 += 1;
        if entry
            .1
            .is_none_or(|t| now.duration_since(t) >= Self::PERIOD)
        {
            entry.1 = Some(now);
            warn!(
                instance,
                reason,
                total = entry.0,
                "advert rejected: {detail}"
            );
        }
    }
}

/// The runtime VRRP instances run on: one thread of its own, at real-time priority when
/// the kernel allows it (as keepalived's `vrrp_rt_priority`), so that adverts leave on
/// time however busy the machine is with map syncs, health checks or anything else.
pub fn runtime() -> tokio::runtime::Handle {
    static HANDLE: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("xlb-vrrp".into())
                .spawn(move || {
                    raise_priority();
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("VRRP runtime");
                    let _ = tx.send(rt.handle().clone());
                    rt.block_on(std::future::pending::<()>());
                })
                .expect("VRRP thread");
            rx.recv().expect("VRRP runtime handle")
        })
        .clone()
}

/// SCHED_RR at the lowest real-time priority for the calling thread: enough to run ahead
/// of every ordinary task; the thread only ever waits on sockets and timers.
fn raise_priority() {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: plain syscall on the calling thread with a valid parameter.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
    if rc != 0 {
        warn!(
            "VRRP thread stays at normal priority ({}): adverts may be late on a busy machine",
            std::io::Error::last_os_error()
        );
    }
}

/// Opens the socket and starts the task.
pub async fn spawn(
    spec: InstanceSpec,
    handle: Handle,
    gate: Gate,
    scripts: HashMap<String, tokio::sync::watch::Receiver<bool>>,
    board: StatusBoard,
    notifier: crate::notify::Notifier,
) -> Result<Instance> {
    let ifindex = crate::netlink::ifindex(&handle, &spec.interface).await?;
    let src = match spec.src {
        Some(s) => s,
        None => net::source_address(&handle, ifindex, spec.is_ipv6(), &spec.advertised)
            .await?
            .with_context(|| {
                format!(
                    "instance {}: interface {} has no {} address to send adverts from",
                    spec.name,
                    spec.interface,
                    if spec.is_ipv6() {
                        "link-local IPv6"
                    } else {
                        "IPv4"
                    }
                )
            })?,
    };
    let mut sock_cfg = if spec.unicast_peers.is_empty() {
        VrrpSocketConfig::multicast(ifindex, src)
    } else {
        VrrpSocketConfig::unicast(ifindex, src, spec.unicast_peers.clone())
    };
    sock_cfg.group = spec.mcast_group;
    let socket = VrrpSocket::open(&sock_cfg)
        .with_context(|| format!("instance {}: VRRP socket on {}", spec.name, spec.interface))?;
    let mac = crate::netlink::link_mac(&handle, ifindex).await?;
    let params = Params {
        version: spec.version,
        vrid: spec.vrid,
        priority: spec.params_priority,
        advert_int: spec.advert_int,
        preempt: spec.preempt,
        preempt_delay: spec.preempt_delay,
        initial_state: spec.initial,
        primary_addr: src,
    };
    let machine = Machine::new(params).with_context(|| format!("instance {}", spec.name))?;
    let mut tracked = HashMap::new();
    if spec.track_own_interface {
        let own = Tracked {
            what: format!("interface {}", spec.interface),
            weight: None,
            reverse: false,
        };
        tracked.insert(ifindex, (own, true));
    }
    for (name, how) in &spec.track_interfaces {
        let index = crate::netlink::ifindex(&handle, name).await?;
        tracked.insert(index, (how.clone(), true));
    }
    // Script verdicts arrive on one channel: (position, up).
    let (verdict_tx, verdict_rx) = mpsc::channel(16);
    let mut script_states = Vec::new();
    for (pos, (name, how)) in spec.track_scripts.iter().enumerate() {
        let Some(verdict) = scripts.get(name) else {
            bail!(
                "instance {}: track_script {name} has no vrrp_script",
                spec.name
            );
        };
        let mut rx = verdict.clone();
        script_states.push((how.clone(), *rx.borrow()));
        let tx = verdict_tx.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let up = *rx.borrow();
                if tx.send((pos, up)).await.is_err() {
                    break;
                }
            }
        });
    }
    let links = crate::netlink::watch_links()?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let (notify_tx, notify_rx) = tokio::sync::watch::channel(spec.config.clone());
    let driver = Driver {
        notify_config: notify_rx,
        spec: spec.clone(),
        machine,
        socket,
        handle,
        gate,
        ifindex,
        mac,
        garp: spec.garp.clone(),
        rejects: RejectLog::default(),
        tracked,
        scripts: script_states,
        applied: (false, 0),
        board,
        notifier,
        last_advert_from: None,
    };
    let task = tokio::spawn(driver.run(stop_rx, links, verdict_rx));
    Ok(Instance {
        name: spec.name.clone(),
        spec,
        stop: Some(stop_tx),
        notify_config: notify_tx,
        task,
    })
}

struct Driver {
    spec: InstanceSpec,
    /// The config block to notify with: `spec.config` until a reload changes only it.
    notify_config: tokio::sync::watch::Receiver<VrrpInstance>,
    machine: Machine,
    socket: VrrpSocket,
    handle: Handle,
    gate: Gate,
    ifindex: u32,
    mac: [u8; 6],
    garp: GarpSchedule,
    rejects: RejectLog,
    /// Tracked interfaces by ifindex: how each counts and whether it is up.
    tracked: HashMap<u32, (Tracked, bool)>,
    /// Tracked scripts: how each counts and its verdict.
    scripts: Vec<(Tracked, bool)>,
    /// The (fault, priority delta) last given to the machine.
    applied: (bool, i32),
    board: StatusBoard,
    notifier: crate::notify::Notifier,
    last_advert_from: Option<IpAddr>,
}

impl Driver {
    fn local(&self) -> LocalParams {
        let interval = self.spec.advert_int.as_secs().clamp(1, 255) as u8;
        LocalParams {
            version: self.spec.version,
            vrid: self.spec.vrid,
            auth: match self.spec.auth {
                Auth::Pass(p) => Some(p),
                _ => None,
            },
            v2_interval_s: interval,
        }
    }

    fn advert(&self, priority: u8) -> Advert {
        let interval = match self.spec.version {
            Version::V2 => Interval::Secs(self.spec.advert_int.as_secs().clamp(1, 255) as u8),
            Version::V3 => {
                Interval::Centisecs((self.spec.advert_int.as_millis() / 10).clamp(1, 4095) as u16)
            }
        };
        Advert {
            version: self.spec.version,
            vrid: self.spec.vrid,
            priority,
            auth: self.spec.auth,
            interval,
            addresses: self.spec.advertised.clone(),
        }
    }

    /// Puts this instance's current status on the board.
    fn publish(&self) {
        let status = InstanceStatus {
            name: self.spec.name.clone(),
            interface: self.spec.interface.clone(),
            vrid: self.spec.vrid,
            version: self.spec.version.number(),
            state: self.machine.state().as_str().to_string(),
            priority: self.machine.effective_priority(),
            configured_priority: self.spec.params_priority,
            source: self.socket.source(),
            vips: self.spec.vips.iter().map(|v| v.addr).collect(),
            last_advert_from: self.last_advert_from,
            rejected: self
                .rejects
                .counts
                .iter()
                .map(|(k, (n, _))| (k.to_string(), *n))
                .collect(),
        };
        if let Ok(mut board) = self.board.lock() {
            board.insert(self.spec.name.clone(), status);
        }
    }

    async fn perform(&mut self, actions: Vec<Action>) {
        self.perform_actions(actions).await;
        self.publish();
    }

    async fn perform_actions(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::SendAdvert { priority } => {
                    let advert = self.advert(priority);
                    let checksum = self.spec.checksum;
                    if let Err(e) = self
                        .socket
                        .send_each(|src, dst| advert.encode(src, dst, checksum))
                        .await
                    {
                        warn!(instance = %self.spec.name, "sending advert: {e}");
                    }
                }
                Action::AddVips => {
                    // Forward first, then announce: no client reaches us before we can.
                    self.gate.set(&self.spec.name, State::Master).await;
                    if let Err(e) = vip::add_vips(&self.handle, self.ifindex, &self.spec.vips).await
                    {
                        warn!(instance = %self.spec.name, "adding VIPs: {e:#}");
                    }
                }
                Action::RemoveVips => {
                    if let Err(e) =
                        vip::remove_vips(&self.handle, self.ifindex, &self.spec.vips).await
                    {
                        warn!(instance = %self.spec.name, "removing VIPs: {e:#}");
                    }
                    self.gate.set(&self.spec.name, self.machine.state()).await;
                    self.garp.stop();
                }
                Action::SendGratuitous => {
                    self.garp.start(Instant::now());
                    self.send_due_gratuitous();
                }
                Action::Transition { from, to, reason } => {
                    let name = if to == State::Initialize {
                        "STOP"
                    } else {
                        to.as_str()
                    };
                    let config = self.notify_config.borrow().clone();
                    let priority = self.machine.effective_priority();
                    track::notify(&config, name, priority);
                    let transition = crate::notify::Notification::Vrrp {
                        instance: &self.spec.name,
                        state: name,
                        priority,
                    };
                    self.notifier.announce(&transition, config.smtp_alert);
                    info!(
                        instance = %self.spec.name,
                        %from,
                        %to,
                        %reason,
                        priority,
                        "VRRP transition"
                    );
                }
            }
        }
    }

    fn send_due_gratuitous(&mut self) {
        let count = self.garp.due(Instant::now());
        for _ in 0..count {
            for v in &self.spec.vips {
                if let Err(e) = vip::announce(self.ifindex, self.mac, v.addr) {
                    warn!(instance = %self.spec.name, vip = %v.addr, "gratuitous ARP/NA: {e}");
                }
            }
        }
    }

    fn on_packet(&mut self, rx: net::Received) -> Option<Event> {
        if rx.src == self.socket.source() {
            return None; // our own advert, looped back
        }
        let decoded = match packet::decode(&rx.payload, rx.src, rx.dst) {
            Ok(d) => d,
            Err(e) => {
                self.rejects
                    .record(&self.spec.name, e.reason(), &format!("{e} from {}", rx.src));
                return None;
            }
        };
        if let Err(e) = packet::check_received(&decoded, rx.ttl, &self.local()) {
            if e.is_error() {
                self.rejects
                    .record(&self.spec.name, e.reason(), &format!("{e} from {}", rx.src));
            }
            return None;
        }
        if decoded.advert.interval_duration().is_zero() {
            // A v3 backup adopts the master's interval: zero would make it take over at once.
            self.rejects.record(
                &self.spec.name,
                "zero_interval",
                &format!("advert from {} with a zero interval", rx.src),
            );
            return None;
        }
        if packet::addresses_differ(&decoded, &self.spec.advertised) {
            self.rejects.record(
                &self.spec.name,
                "address_list_differs",
                &format!(
                    "{} advertises {:?}, we have {:?} (accepted, RFC 9568)",
                    rx.src, decoded.advert.addresses, self.spec.advertised
                ),
            );
        }
        self.last_advert_from = Some(rx.src);
        Some(Event::Advert {
            src: rx.src,
            priority: decoded.advert.priority,
            interval: decoded.advert.interval_duration(),
        })
    }

    /// Gives the machine the combined effect of everything tracked, if it changed.
    async fn retrack(&mut self) {
        let now = track::combine(
            self.tracked
                .values()
                .cloned()
                .chain(self.scripts.iter().cloned()),
        );
        if now == self.applied {
            return;
        }
        let (fault, delta) = now;
        if delta != self.applied.1 {
            info!(instance = %self.spec.name, delta, "priority moved by trackers");
            let actions = self
                .machine
                .step(Instant::now(), Event::SetPriorityDelta(delta));
            self.perform(actions).await;
        }
        if fault != self.applied.0 {
            let actions = self.machine.step(Instant::now(), Event::Fault(fault));
            self.perform(actions).await;
        }
        self.applied = now;
    }

    async fn run(
        mut self,
        mut stop: oneshot::Receiver<()>,
        mut links: futures::stream::BoxStream<'static, crate::netlink::LinkEvent>,
        mut verdicts: mpsc::Receiver<(usize, bool)>,
    ) {
        // Initial link states: a tracked interface that is down starts us in FAULT.
        for (ifindex, (_, up)) in self.tracked.iter_mut() {
            *up = crate::netlink::link_up(&self.handle, *ifindex)
                .await
                .unwrap_or(true);
        }
        // A VIP left on the interface by a crashed predecessor would answer ARP for a
        // VIP we do not hold: remove it, as keepalived does at startup.
        let _ = vip::remove_vips(&self.handle, self.ifindex, &self.spec.vips).await;
        // Trackers first, so that Startup already knows about a fault or a lower priority.
        self.retrack().await;
        let actions = self.machine.step(Instant::now(), Event::Startup);
        self.perform(actions).await;
        loop {
            let deadline = [self.machine.next_deadline(), self.garp.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = &mut stop => break,
                _ = sleep => {
                    let actions = self.machine.step(Instant::now(), Event::Tick);
                    self.perform(actions).await;
                    self.send_due_gratuitous();
                }
                rx = self.socket.recv() => match rx {
                    Ok(rx) => {
                        if let Some(ev) = self.on_packet(rx) {
                            let actions = self.machine.step(Instant::now(), ev);
                            self.perform(actions).await;
                        }
                    }
                    Err(e) => {
                        warn!(instance = %self.spec.name, "receiving: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(ev) = links.next() => {
                    if let Some((how, up)) = self.tracked.get_mut(&ev.ifindex) {
                        if *up != ev.up {
                            *up = ev.up;
                            info!(instance = %self.spec.name, tracked = %how.what, up = ev.up, "tracked interface changed");
                            self.retrack().await;
                        }
                    }
                }
                Some((pos, up)) = verdicts.recv() => {
                    if let Some(entry) = self.scripts.get_mut(pos) {
                        entry.1 = up;
                        self.retrack().await;
                    }
                }
            }
        }
        let actions = self.machine.step(Instant::now(), Event::Shutdown);
        self.perform(actions).await;
        // Make sure nothing of ours stays, whatever state we were in.
        let _ = vip::remove_vips(&self.handle, self.ifindex, &self.spec.vips).await;
        self.gate.set(&self.spec.name, State::Initialize).await;
    }
}

/// The specs of every instance in the config.
pub fn specs(cfg: &Config) -> Vec<InstanceSpec> {
    cfg.vrrp_instance
        .iter()
        .map(|i| InstanceSpec::from_config(cfg, i))
        .collect()
}

/// Fails if a spec cannot work on this host before anything is started.
pub fn sanity(specs: &[InstanceSpec]) -> Result<()> {
    for s in specs {
        if s.advertised.is_empty() {
            bail!("instance {}: no virtual_ipaddress", s.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_and_fifo_settings_are_not_part_of_an_instance_spec() {
        // A reload restarts the instances whose spec changed: changing where alerts go
        // must not fail the VIP over.
        let instance = "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n\
                        virtual_router_id = 51\npriority = 150\n\
                        virtual_ipaddress = [\"198.18.0.100/32\"]\n";
        let before = Config::parse(instance, "a.toml").unwrap();
        let after = Config::parse(
            &format!(
                "[global_defs]\nnotification_email = [\"ops@example.org\"]\n\
                 smtp_server = \"127.0.0.1\"\nsmtp_alert = true\n\
                 notify_fifo = \"/run/xlb.fifo\"\n{instance}"
            ),
            "b.toml",
        )
        .unwrap();
        assert_eq!(specs(&before), specs(&after));
    }

    #[test]
    fn only_notify_changes_apply_in_place() {
        let spec = |extra: &str| {
            let text = format!(
                "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n\
                 virtual_router_id = 51\nvirtual_ipaddress = [\"198.18.0.100/32\"]\n{extra}\n"
            );
            specs(&Config::parse(&text, "x.toml").unwrap()).remove(0)
        };
        let running = spec("priority = 150\nnotify_master = \"/bin/true\"");
        let notify = spec("priority = 150\nnotify_master = \"/bin/false\"\nsmtp_alert = true");
        let priority = spec("priority = 140\nnotify_master = \"/bin/true\"");
        assert!(running.same_but_notify(&notify));
        assert!(!running.same_but_notify(&priority));
    }
}
