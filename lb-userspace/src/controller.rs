//! `xlb run`: the daemon. It owns the desired state and drives the data plane to it.
//!
//! One task owns everything; the events it reacts to are neighbour changes (a real
//! server's MAC), a periodic re-resolution tick, SIGHUP (reload the config, apply only the
//! difference) and shutdown. Stopping leaves the data plane attached and pinned: flows go
//! on while the controller restarts; `xlb teardown` is what stops forwarding.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use lb_common::{Addr, PROTO_TCP, PROTO_UDP, SchedAlgo, ServiceKey};
use rtnetlink::Handle;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};
use tracing::{error, info, warn};

use crate::{
    config::{Config, LbAlgo, Protocol},
    dataplane::{AttachMode, DataPlane},
    neighbor::{self, NeighborEvent},
    sync::{DesiredReal, DesiredService, MapSync},
    vrrp::{
        self,
        instance::{Gate, GateRequest, Instance, StatusBoard},
        machine::State as VrrpState,
    },
};

/// How long start-up waits for real servers' MACs before going on without them (those
/// get no new flows until resolved).
const INITIAL_RESOLVE_WAIT: Duration = Duration::from_secs(3);
/// Unresolved real servers are asked for again this often.
const RESOLVE_RETRY: Duration = Duration::from_secs(1);
/// Resolved ones are re-confirmed this often, so a changed MAC is noticed even when no
/// neighbour event arrives (XDP traffic does not confirm neighbour entries).
const RESOLVE_REFRESH: Duration = Duration::from_secs(30);

pub struct RunOptions {
    pub config_path: PathBuf,
    pub pin_path: PathBuf,
    /// Where the VRRP status is written for `xlb status` ([`default_state_file`]).
    pub state_file: PathBuf,
    pub attach_mode: AttachMode,
}

/// The status file of the daemon whose maps are pinned at `pin_path`: one per pin path,
/// so several directors on one host (labs) do not share one.
pub fn default_state_file(pin_path: &Path) -> PathBuf {
    let name = pin_path
        .to_string_lossy()
        .trim_matches('/')
        .replace('/', "_");
    PathBuf::from("/run/xlb").join(format!("{name}.status.json"))
}

pub fn addr16(ip: IpAddr) -> Addr {
    match ip {
        IpAddr::V4(v4) => lb_common::v4_mapped(v4.octets()),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn algo(a: LbAlgo) -> SchedAlgo {
    match a {
        LbAlgo::Rr => SchedAlgo::Rr,
        LbAlgo::Wrr => SchedAlgo::Wrr,
        LbAlgo::Sh => SchedAlgo::Sh,
        LbAlgo::Mh => SchedAlgo::Mh,
    }
}

/// What the kernel told us about one real server's link-layer location.
#[derive(Clone, Copy, Debug)]
struct Neighbor {
    ifindex: u32,
    mac: Option<[u8; 6]>,
}

/// The XDP program and the maps, present when the config has virtual servers.
struct Plane {
    dataplane: DataPlane,
    sync: MapSync,
}

struct Daemon {
    handle: Handle,
    plane: Option<Plane>,
    config: Config,
    config_path: PathBuf,
    attach_mode: AttachMode,
    neighbors: HashMap<IpAddr, Neighbor>,
    /// Running VRRP instances and the state each last reported through the gate.
    instances: Vec<Instance>,
    vrrp_state: HashMap<String, VrrpState>,
    scripts: HashMap<String, vrrp::track::ScriptTracker>,
    gate: Gate,
    board: StatusBoard,
    state_file: PathBuf,
}

impl Daemon {
    /// Attaches to every interface a virtual service needs.
    async fn attach_all(&mut self) -> Result<()> {
        let mut wanted: Vec<String> = Vec::new();
        for vs in &self.config.virtual_server {
            let name = vs
                .resolved_interface(&self.config)
                .map(str::to_string)
                .with_context(|| {
                    format!("virtual server {}:{} has no interface", vs.ip, vs.port)
                })?;
            if !wanted.contains(&name) {
                wanted.push(name);
            }
        }
        let Some(plane) = self.plane.as_mut() else {
            return Ok(());
        };
        for name in wanted {
            if plane.dataplane.attached().any(|(n, _)| n == name.as_str()) {
                continue;
            }
            let ifindex = neighbor::ifindex(&self.handle, &name).await?;
            let adopted = plane.dataplane.attach(&name, ifindex, self.attach_mode)?;
            match self.attach_mode {
                AttachMode::Native => info!(interface = %name, adopted, "XDP attached (native)"),
                AttachMode::Generic => warn!(
                    interface = %name,
                    adopted,
                    "XDP attached in GENERIC mode: about half the speed of native"
                ),
            }
        }
        Ok(())
    }

    /// Finds the interface of every real server (refusing ones that are not on-link) and
    /// asks the kernel for the MACs it does not know yet.
    async fn locate_reals(&mut self) -> Result<()> {
        let mut ips: Vec<IpAddr> = self
            .config
            .virtual_server
            .iter()
            .flat_map(|vs| vs.real_server.iter().map(|r| r.ip))
            .collect();
        ips.sort();
        ips.dedup();
        self.neighbors.retain(|ip, _| ips.contains(ip));
        for ip in ips {
            if self.neighbors.contains_key(&ip) {
                continue;
            }
            let link = neighbor::route_to(&self.handle, ip)
                .await
                .with_context(|| format!("real server {ip}"))?;
            let mac = neighbor::lookup(&self.handle, link.ifindex, ip).await?;
            if mac.is_none() {
                neighbor::resolve(&self.handle, link.ifindex, ip).await?;
            }
            self.neighbors.insert(
                ip,
                Neighbor {
                    ifindex: link.ifindex,
                    mac,
                },
            );
        }
        Ok(())
    }

    /// Re-reads the neighbour table for unresolved real servers; true if any changed.
    async fn poll_unresolved(&mut self, trigger: bool) -> Result<bool> {
        let mut changed = false;
        let pending: Vec<(IpAddr, u32)> = self
            .neighbors
            .iter()
            .filter(|(_, n)| n.mac.is_none())
            .map(|(ip, n)| (*ip, n.ifindex))
            .collect();
        for (ip, ifindex) in pending {
            if let Some(mac) = neighbor::lookup(&self.handle, ifindex, ip).await? {
                info!(real_server = %ip, mac = %fmt_mac(&mac), "resolved");
                self.neighbors.insert(
                    ip,
                    Neighbor {
                        ifindex,
                        mac: Some(mac),
                    },
                );
                changed = true;
            } else if trigger {
                neighbor::resolve(&self.handle, ifindex, ip).await?;
            }
        }
        Ok(changed)
    }

    async fn refresh_all(&mut self) {
        for (ip, n) in &self.neighbors {
            if let Err(e) = neighbor::resolve(&self.handle, n.ifindex, *ip).await {
                warn!(real_server = %ip, error = %e, "neighbour refresh failed");
            }
        }
    }

    /// Applies a neighbour event; true if a MAC the data plane uses changed.
    fn on_neighbor(&mut self, ev: NeighborEvent) -> bool {
        let Some(n) = self.neighbors.get_mut(&ev.addr) else {
            return false;
        };
        if n.ifindex != ev.ifindex {
            return false;
        }
        match ev.mac {
            Some(mac) if n.mac != Some(mac) => {
                info!(real_server = %ev.addr, mac = %fmt_mac(&mac), "neighbour changed");
                n.mac = Some(mac);
                true
            }
            // Gone or failed: keep forwarding to the last MAC we knew (the server may only
            // have been idle); the next refresh asks again.
            _ => false,
        }
    }

    fn desired(&self) -> Vec<DesiredService> {
        self.config
            .virtual_server
            .iter()
            .map(|vs| DesiredService {
                key: ServiceKey {
                    vip: addr16(vs.ip),
                    port: vs.port,
                    proto: match vs.protocol {
                        Protocol::Tcp => PROTO_TCP,
                        Protocol::Udp => PROTO_UDP,
                    },
                    _pad: 0,
                },
                algo: algo(vs.lb_algo),
                hash_port: vs.hash_port,
                // Forwarded when no VRRP instance owns the VIP, or when ours is MASTER.
                active: match vs.vrrp_instance(&self.config) {
                    None => true,
                    Some(i) => self.vrrp_state.get(&i.name) == Some(&VrrpState::Master),
                },
                persistence_timeout: vs.persistence_timeout,
                reals: vs
                    .real_server
                    .iter()
                    .map(|r| {
                        let n = self.neighbors.get(&r.ip);
                        DesiredReal {
                            addr: addr16(r.ip),
                            port: r.port,
                            weight: r.weight,
                            alive: true,
                            ifindex: n.map_or(0, |n| n.ifindex),
                            mac: n.and_then(|n| n.mac),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    async fn apply(&mut self) -> Result<()> {
        if self.plane.is_none() {
            return Ok(());
        }
        let mut ifaces = BTreeMap::new();
        for n in self.neighbors.values() {
            if let std::collections::btree_map::Entry::Vacant(e) = ifaces.entry(n.ifindex) {
                e.insert(neighbor::link_mac(&self.handle, n.ifindex).await?);
            }
        }
        let desired = self.desired();
        let plane = self.plane.as_mut().expect("checked above");
        plane.sync.apply_ifaces(&ifaces)?;
        let report = plane.sync.apply(&desired)?;
        info!(?report, "data plane synced");
        Ok(())
    }

    /// Start-up: every real server located (refusing ones not on-link) before anything
    /// is attached, the maps filled before the program sees a packet, then attach.
    async fn start(&mut self) -> Result<()> {
        self.locate_reals().await?;
        // Give ARP / NDP a moment so the first sync already has the MACs.
        let deadline = tokio::time::Instant::now() + INITIAL_RESOLVE_WAIT;
        while self.neighbors.values().any(|n| n.mac.is_none())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.poll_unresolved(false).await?;
        }
        for (ip, n) in &self.neighbors {
            if n.mac.is_none() {
                warn!(real_server = %ip, "MAC unknown: no new flows go to it until it answers ARP/NDP");
            }
        }
        self.apply().await?;
        self.attach_all().await
    }

    /// Writes the VRRP status for `xlb status` (atomically: a reader never sees half).
    fn write_state(&self) {
        let Ok(board) = self.board.lock() else { return };
        let instances: Vec<&vrrp::instance::InstanceStatus> = board.values().collect();
        let Ok(text) = serde_json::to_string_pretty(&instances) else {
            return;
        };
        if let Some(dir) = self.state_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.state_file.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.state_file);
        }
    }

    /// A gate request from an instance: switch its services, then let it go on.
    async fn on_gate(&mut self, req: GateRequest) {
        info!(instance = %req.instance, state = %req.state, "data plane follows VRRP");
        self.vrrp_state.insert(req.instance, req.state);
        if let Err(e) = self.apply().await {
            error!("sync failed: {e:#}");
        }
        let _ = req.done.send(());
    }

    /// Stops `stopping` instances while still serving their gate requests (each waits for
    /// its services to be switched off before it ends).
    async fn stop_instances(
        &mut self,
        stopping: Vec<Instance>,
        gate_rx: &mut mpsc::Receiver<GateRequest>,
    ) {
        let names: Vec<String> = stopping.iter().map(|i| i.name.clone()).collect();
        let all = futures::future::join_all(stopping.into_iter().map(Instance::stop));
        tokio::pin!(all);
        loop {
            tokio::select! {
                _ = &mut all => break,
                Some(req) = gate_rx.recv() => self.on_gate(req).await,
            }
        }
        for n in names {
            self.vrrp_state.remove(&n);
            if let Ok(mut board) = self.board.lock() {
                board.remove(&n);
            }
        }
        self.write_state();
        if let Err(e) = self.apply().await {
            error!("sync failed: {e:#}");
        }
    }

    /// Starts every configured instance that is not running.
    async fn start_instances(&mut self) -> Result<()> {
        // Trackers are shared by instances; new scripts start, existing ones go on.
        for (name, tracker) in vrrp::track::spawn_trackers(&self.config) {
            self.scripts.entry(name).or_insert(tracker);
        }
        for spec in vrrp::instance::specs(&self.config) {
            if self.instances.iter().any(|i| i.name == spec.name) {
                continue;
            }
            let inst = vrrp::instance::spawn(
                spec,
                self.handle.clone(),
                self.gate.clone(),
                &self.scripts,
                self.board.clone(),
            )
            .await?;
            self.instances.push(inst);
        }
        Ok(())
    }

    /// After a reload: instances whose settings changed (or that were removed) stop, new
    /// and changed ones start. Unchanged instances keep their state.
    async fn restart_changed_instances(&mut self, gate_rx: &mut mpsc::Receiver<GateRequest>) {
        let specs = vrrp::instance::specs(&self.config);
        let (keep, stop): (Vec<Instance>, Vec<Instance>) = std::mem::take(&mut self.instances)
            .into_iter()
            .partition(|i| specs.iter().any(|s| *s == i.spec));
        self.instances = keep;
        if !stop.is_empty() {
            self.stop_instances(stop, gate_rx).await;
        }
        if let Err(e) = self.start_instances().await {
            error!("starting VRRP instances after reload: {e:#}");
        }
    }

    /// SIGHUP: a bad new config is reported and changes nothing.
    async fn reload(&mut self, gate_rx: &mut mpsc::Receiver<GateRequest>) {
        let new = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                error!("reload refused, keeping the running config: {e}");
                return;
            }
        };
        let old = std::mem::replace(&mut self.config, new);
        let result = async {
            self.locate_reals().await?;
            self.apply().await?;
            self.attach_all().await
        }
        .await;
        match result {
            Ok(()) => {
                info!(path = %self.config_path.display(), "config reloaded");
                self.restart_changed_instances(gate_rx).await;
            }
            Err(e) => {
                error!("reload failed, restoring the running config: {e:#}");
                self.config = old;
                let restored = async {
                    self.locate_reals().await?;
                    self.apply().await
                };
                if let Err(e) = restored.await {
                    error!("restoring the running config failed: {e:#}");
                }
            }
        }
    }
}

fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Says loudly what the config asks for that this version does not do yet, rather than
/// letting a keepalived user believe it happens.
fn warn_unimplemented(config: &Config) {
    let g = &config.global_defs;
    let mail_wanted = !g.notification_email.is_empty()
        && (g.smtp_alert
            || config
                .vrrp_instance
                .iter()
                .any(|i| i.smtp_alert == Some(true)));
    if mail_wanted {
        warn!("smtp_alert is set but xlb does not send mail yet: use notify scripts meanwhile");
    }
    let checked = config
        .virtual_server
        .iter()
        .flat_map(|v| &v.real_server)
        .filter(|r| {
            r.tcp_check.is_some()
                || r.http_get.is_some()
                || r.ssl_get.is_some()
                || r.misc_check.is_some()
        })
        .count();
    if checked > 0 {
        warn!(
            real_servers = checked,
            "health checkers are validated but not run yet: every real server counts as alive"
        );
    }
}

/// Runs the daemon until `shutdown` completes (or SIGINT / SIGTERM arrive).
pub async fn run(opts: RunOptions, shutdown: impl Future<Output = ()>) -> Result<()> {
    let config = Config::load(&opts.config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    if config.virtual_server.is_empty() && config.vrrp_instance.is_empty() {
        bail!(
            "{}: neither virtual_server nor vrrp_instance: nothing to do",
            opts.config_path.display()
        );
    }
    warn_unimplemented(&config);
    let handle = neighbor::connect()?;
    // Without virtual servers xlb is a plain VRRP daemon, as keepalived is: no XDP.
    let mut fresh = true;
    let plane = if config.virtual_server.is_empty() {
        None
    } else {
        let (dataplane, maps) = DataPlane::load(&opts.pin_path)?;
        let sync = MapSync::adopt(maps)?;
        fresh = sync.service_count() == 0;
        if !fresh {
            info!(
                services = sync.service_count(),
                pin_path = %opts.pin_path.display(),
                "adopted the pinned data plane"
            );
        }
        Some(Plane { dataplane, sync })
    };
    let (gate_tx, mut gate_rx) = mpsc::channel(16);
    let mut d = Daemon {
        handle,
        plane,
        config,
        config_path: opts.config_path.clone(),
        attach_mode: opts.attach_mode,
        neighbors: HashMap::new(),
        instances: Vec::new(),
        vrrp_state: HashMap::new(),
        scripts: HashMap::new(),
        board: StatusBoard::default(),
        state_file: opts.state_file.clone(),
        gate: Gate(gate_tx),
    };
    let mut events = neighbor::watch()?;
    if let Err(e) = d.start().await {
        if fresh && d.plane.is_some() {
            // Leave nothing half-made behind: no pinned maps, no attached program.
            let _ = crate::dataplane::teardown(&opts.pin_path);
        }
        return Err(e);
    }
    if let Err(e) = d.start_instances().await {
        let running = std::mem::take(&mut d.instances);
        d.stop_instances(running, &mut gate_rx).await;
        return Err(e);
    }
    info!(
        config = %opts.config_path.display(),
        pin_path = %opts.pin_path.display(),
        services = d.config.virtual_server.len(),
        vrrp_instances = d.instances.len(),
        "xlb running"
    );

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut retry = tokio::time::interval(RESOLVE_RETRY);
    let mut publish = tokio::time::interval(Duration::from_millis(500));
    let mut refresh = tokio::time::interval(RESOLVE_REFRESH);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => d.reload(&mut gate_rx).await,
            Some(req) = gate_rx.recv() => d.on_gate(req).await,
            Some(ev) = events.next() => {
                if d.on_neighbor(ev) {
                    if let Err(e) = d.apply().await { error!("sync failed: {e:#}"); }
                }
            }
            _ = retry.tick() => {
                match d.poll_unresolved(true).await {
                    Ok(true) => if let Err(e) = d.apply().await { error!("sync failed: {e:#}"); },
                    Ok(false) => {}
                    Err(e) => warn!("neighbour lookup failed: {e}"),
                }
            }
            _ = refresh.tick() => d.refresh_all().await,
            _ = publish.tick() => d.write_state(),
        }
    }
    // Resign first (priority 0 adverts, VIPs removed, services switched off), so the
    // backup takes over within its skew time.
    let running = std::mem::take(&mut d.instances);
    if !running.is_empty() {
        info!(instances = running.len(), "resigning VRRP instances");
        d.stop_instances(running, &mut gate_rx).await;
    }
    let _ = std::fs::remove_file(&d.state_file);
    if d.plane.is_some() {
        info!(
            pin_path = %opts.pin_path.display(),
            "stopping; the data plane stays attached (`xlb teardown` removes it)"
        );
    }
    Ok(())
}

/// `xlb teardown`: detach and unpin everything under `pin_path`.
pub fn teardown(pin_path: &Path) -> Result<()> {
    let removed = crate::dataplane::teardown(pin_path)?;
    if removed.is_empty() {
        println!("nothing pinned under {}", pin_path.display());
    }
    for p in removed {
        println!("removed {}", p.display());
    }
    Ok(())
}
