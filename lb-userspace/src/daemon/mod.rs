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
use lb_common::{Mac, PROTO_TCP, PROTO_UDP, SchedAlgo, ServiceKey, addr_of};
use rtnetlink::Handle;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};
use tracing::{error, info, warn};

use crate::{
    config::{Config, LbAlgo, Protocol, RealServerConfig, VirtualServer},
    dataplane::sync::{DesiredReal, DesiredService, MapSync},
    dataplane::{AttachMode, DataPlane},
    health::{self, HealthMonitor, RealKey},
    netlink::{self, NeighborEvent},
    notify::{Notification, Notifier, mail::Mailer},
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
    /// Where VRRP transitions, verdicts and quorum changes are reported.
    notifier: Notifier,
    /// Health-check verdicts by real server; absent = no checker = alive.
    health: HashMap<RealKey, Health>,
    monitor: Option<HealthMonitor>,
    /// Whether each virtual service has its quorum (by index of `config.virtual_server`
    /// key); absent = not evaluated yet.
    quorum: HashMap<(IpAddr, u16, Protocol), bool>,
    /// A verdict channel opened by a reload, for the main loop to pick up.
    new_verdicts: Option<mpsc::Receiver<health::Verdict>>,
}

/// A real server's health as the checkers last said.
#[derive(Clone, Copy, Debug)]
struct Health {
    alive: bool,
    /// `misc_dynamic` weight; None = the configured weight.
    weight: Option<u32>,
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
            let ifindex = netlink::ifindex(&self.handle, &name).await?;
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
            .flat_map(|vs| {
                vs.real_server
                    .iter()
                    .map(|r| r.ip)
                    .chain(vs.sorry_server.as_ref().map(|s| s.ip))
            })
            .collect();
        ips.sort();
        ips.dedup();
        self.neighbors.retain(|ip, _| ips.contains(ip));
        for ip in ips {
            if self.neighbors.contains_key(&ip) {
                continue;
            }
            let link = netlink::route_to(&self.handle, ip)
                .await
                .with_context(|| format!("real server {ip}"))?;
            let mac = netlink::lookup(&self.handle, link.ifindex, ip).await?;
            if mac.is_none() {
                netlink::resolve(&self.handle, link.ifindex, ip).await?;
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
            if let Some(mac) = netlink::lookup(&self.handle, ifindex, ip).await? {
                info!(real_server = %ip, mac = %Mac(&mac), "resolved");
                self.neighbors.insert(
                    ip,
                    Neighbor {
                        ifindex,
                        mac: Some(mac),
                    },
                );
                changed = true;
            } else if trigger {
                netlink::resolve(&self.handle, ifindex, ip).await?;
            }
        }
        Ok(changed)
    }

    async fn refresh_all(&mut self) {
        for (ip, n) in &self.neighbors {
            if let Err(e) = netlink::resolve(&self.handle, n.ifindex, *ip).await {
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
                info!(real_server = %ev.addr, mac = %Mac(&mac), "neighbour changed");
                n.mac = Some(mac);
                true
            }
            // Gone or failed: keep forwarding to the last MAC we knew (the server may only
            // have been idle); the next refresh asks again.
            _ => false,
        }
    }

    fn real_key(vs: &VirtualServer, ip: IpAddr, port: u16) -> RealKey {
        RealKey {
            vip: vs.ip,
            vport: vs.port,
            protocol: vs.protocol,
            rip: ip,
            rport: port,
        }
    }

    /// A real server's (alive, weight) for the data plane: health verdicts applied, and
    /// `inhibit_on_failure` turning "dead" into "weight 0" so its connections go on.
    fn effective(&self, vs: &VirtualServer, r: &RealServerConfig) -> (bool, u32) {
        let h = self.health.get(&Self::real_key(vs, r.ip, r.port));
        let alive = h.is_none_or(|h| h.alive);
        let weight = h.and_then(|h| h.weight).unwrap_or(r.weight);
        match (alive, r.inhibit_on_failure) {
            (true, _) => (true, weight),
            (false, true) => (true, 0),
            (false, false) => (false, weight),
        }
    }

    fn desired_real(&self, ip: IpAddr, port: u16, alive: bool, weight: u32) -> DesiredReal {
        let n = self.neighbors.get(&ip);
        DesiredReal {
            addr: addr_of(ip),
            port,
            weight,
            alive,
            ifindex: n.map_or(0, |n| n.ifindex),
            mac: n.and_then(|n| n.mac),
        }
    }

    /// The real servers of `vs` as the data plane should hold them. While the quorum is
    /// lost and a sorry server is set, the sorry server takes the new flows alone; the
    /// remaining live servers keep their existing flows (weight 0).
    fn desired_reals(&self, vs: &VirtualServer) -> Vec<DesiredReal> {
        let quorum_lost = self.quorum.get(&(vs.ip, vs.port, vs.protocol)) == Some(&false);
        let sorry = vs.sorry_server.as_ref().filter(|_| quorum_lost);
        let mut reals: Vec<DesiredReal> = vs
            .real_server
            .iter()
            .map(|r| {
                let (alive, weight) = self.effective(vs, r);
                let weight = if sorry.is_some() { 0 } else { weight };
                self.desired_real(r.ip, r.port, alive, weight)
            })
            .collect();
        if let Some(s) = sorry {
            let port = s.port.unwrap_or(vs.port);
            if !vs
                .real_server
                .iter()
                .any(|r| r.ip == s.ip && r.port == port)
            {
                reals.push(self.desired_real(s.ip, port, true, 1));
            }
        }
        reals
    }

    /// Re-evaluates every service's quorum (keepalived: lost below quorum - hysteresis,
    /// regained at quorum + hysteresis) and runs quorum_up / quorum_down on changes.
    fn update_quorum(&mut self) {
        let mut changes = Vec::new();
        for vs in &self.config.virtual_server {
            let live: u32 = vs
                .real_server
                .iter()
                .map(|r| self.effective(vs, r))
                .filter(|(alive, _)| *alive)
                .map(|(_, w)| w)
                .sum();
            let key = (vs.ip, vs.port, vs.protocol);
            let was = self.quorum.get(&key).copied();
            let up = match was {
                None => live >= vs.quorum,
                Some(true) => live + vs.hysteresis >= vs.quorum,
                Some(false) => live >= vs.quorum + vs.hysteresis,
            };
            if was != Some(up) {
                changes.push((key, up, was.is_some(), vs.service_name(), live, vs.clone()));
            }
        }
        for (key, up, was_known, name, live, vs) in changes {
            self.quorum.insert(key, up);
            if !was_known && up {
                continue; // starting with the quorum is not news
            }
            if up {
                info!(service = %name, live_weight = live, "quorum gained");
            } else {
                warn!(service = %name, live_weight = live, quorum = vs.quorum, sorry_server = ?vs.sorry_server.as_ref().map(|s| s.ip), "quorum lost");
            }
            let command = if up { &vs.quorum_up } else { &vs.quorum_down };
            if let Some(c) = command {
                run_in_background(c.clone());
            }
            let (vip, port, protocol) = key;
            let quorum = Notification::Quorum {
                vip,
                port,
                protocol,
                up,
            };
            self.notifier.announce(&quorum, vs.smtp_alert);
        }
    }

    /// The health-check targets that should run now: with `ha_suspend`, none for a
    /// service this director does not forward.
    fn check_targets(&self) -> Vec<health::Target> {
        health::targets_from_config(&self.config)
            .into_iter()
            .filter(|t| {
                let vs = self.config.virtual_server.iter().find(|v| {
                    v.ip == t.key.vip && v.port == t.key.vport && v.protocol == t.key.protocol
                });
                vs.is_none_or(|vs| !vs.ha_suspend || self.forwards(vs))
            })
            .collect()
    }

    /// Whether this director forwards `vs`: no VRRP instance owns its VIP, or ours is MASTER.
    fn forwards(&self, vs: &VirtualServer) -> bool {
        match vs.vrrp_instance(&self.config) {
            None => true,
            Some(i) => self.vrrp_state.get(&i.name) == Some(&VrrpState::Master),
        }
    }

    /// Starts or updates the health monitor for the current config; servers seen for the
    /// first time start alive, or dead with `alpha`.
    fn sync_monitor(&mut self) -> Option<mpsc::Receiver<health::Verdict>> {
        let targets = self.check_targets();
        let wanted: std::collections::HashSet<RealKey> = health::targets_from_config(&self.config)
            .iter()
            .map(|t| t.key)
            .collect();
        self.health.retain(|k, _| wanted.contains(k));
        for t in &targets {
            self.health.entry(t.key).or_insert(Health {
                alive: t.initially_alive(),
                weight: None,
            });
        }
        match self.monitor.as_mut() {
            Some(m) => m.update(targets),
            None => {
                if !wanted.is_empty() {
                    let (m, rx) = HealthMonitor::spawn(targets);
                    self.monitor = Some(m);
                    self.update_quorum();
                    return Some(rx);
                }
            }
        }
        self.update_quorum();
        None
    }

    /// A checker's verdict: notify_up / notify_down, then the data plane.
    async fn on_verdict(&mut self, v: health::Verdict) {
        let vs = self.config.virtual_server.iter().find(|vs| {
            vs.ip == v.key.vip && vs.port == v.key.vport && vs.protocol == v.key.protocol
        });
        let rs = vs.and_then(|vs| {
            vs.real_server
                .iter()
                .find(|r| r.ip == v.key.rip && r.port == v.key.rport)
        });
        if v.alive {
            info!(real_server = %v.key, weight = ?v.weight, reason = %v.reason, "UP");
        } else {
            warn!(real_server = %v.key, reason = %v.reason, "DOWN");
        }
        if let Some(rs) = rs {
            let command = if v.alive {
                &rs.notify_up
            } else {
                &rs.notify_down
            };
            if let Some(c) = command {
                run_in_background(c.clone());
            }
        }
        let verdict = Notification::RealServer {
            key: &v.key,
            up: v.alive,
            reason: &v.reason,
        };
        self.notifier
            .announce(&verdict, rs.and_then(|r| r.smtp_alert));
        self.health.insert(
            v.key,
            Health {
                alive: v.alive,
                weight: v.weight,
            },
        );
        self.update_quorum();
        if let Err(e) = self.apply().await {
            error!("sync failed: {e:#}");
        }
    }

    /// keepalived's `omega`: on shutdown, the down notifiers of live real servers and the
    /// quorum_down of services that had their quorum.
    fn omega(&self) {
        for vs in self.config.virtual_server.iter().filter(|v| v.omega) {
            for r in &vs.real_server {
                if self.effective(vs, r).0 {
                    if let Some(c) = &r.notify_down {
                        run_in_background(c.clone());
                    }
                }
            }
            if self.quorum.get(&(vs.ip, vs.port, vs.protocol)) == Some(&true) {
                if let Some(c) = &vs.quorum_down {
                    run_in_background(c.clone());
                }
            }
        }
    }

    fn desired(&self) -> Vec<DesiredService> {
        self.config
            .virtual_server
            .iter()
            .map(|vs| DesiredService {
                key: ServiceKey {
                    vip: addr_of(vs.ip),
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
                active: self.forwards(vs),
                persistence_timeout: vs.persistence_timeout,
                reals: self.desired_reals(vs),
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
                e.insert(netlink::link_mac(&self.handle, n.ifindex).await?);
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
        // ha_suspend: checks run only where the service is forwarded.
        if self.monitor.is_some() {
            let _ = self.sync_monitor();
        }
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
            let verdicts = self
                .scripts
                .iter()
                .map(|(name, t)| (name.clone(), t.verdict.clone()))
                .collect();
            // On the VRRP thread, where the instance's socket and timers must live.
            let inst = vrrp::instance::runtime()
                .spawn(vrrp::instance::spawn(
                    spec,
                    self.handle.clone(),
                    self.gate.clone(),
                    verdicts,
                    self.board.clone(),
                    self.notifier.clone(),
                ))
                .await
                .context("VRRP instance task")??;
            self.instances.push(inst);
        }
        Ok(())
    }

    /// After a reload: instances whose settings changed (or that were removed) stop, new
    /// and changed ones start. Unchanged instances keep their state, and so do instances
    /// whose notify settings alone changed: they take the new ones in place.
    async fn restart_changed_instances(&mut self, gate_rx: &mut mpsc::Receiver<GateRequest>) {
        let specs = vrrp::instance::specs(&self.config);
        let mut keep = Vec::new();
        let mut stop = Vec::new();
        for mut i in std::mem::take(&mut self.instances) {
            if specs.contains(&i.spec) {
                keep.push(i);
            } else if let Some(s) = specs.iter().find(|s| s.same_but_notify(&i.spec)) {
                info!(instance = %i.name, "notify settings changed: applied without a restart");
                i.renotify(s.clone());
                keep.push(i);
            } else {
                stop.push(i);
            }
        }
        self.instances = keep;
        if !stop.is_empty() {
            self.stop_instances(stop, gate_rx).await;
        }
        if let Err(e) = self.start_instances().await {
            error!("starting VRRP instances after reload: {e:#}");
        }
    }

    /// SIGHUP: a bad new config is reported and changes nothing.
    /// `lvs_timeouts` are constants of the loaded program: a change loads the program
    /// again over the same pinned maps; `attach_all` then swaps it into the pinned links
    /// atomically, as a restarted controller does. Tracked flows stay.
    fn reload_program_for_timeouts(&mut self, old: &Config) -> Result<()> {
        let (was, now) = (&old.global_defs, &self.config.global_defs);
        let Some(plane) = self.plane.as_mut() else {
            return Ok(());
        };
        if was.lvs_timeouts == now.lvs_timeouts {
            // Loading the program again would say so itself (`DataPlane::load_with`).
            if was.connection_table_size != now.connection_table_size {
                warn!("connection_table_size applies once `xlb teardown` removes the tables");
            }
            return Ok(());
        }
        let now = &now.lvs_timeouts;
        let pin_dir = plane.dataplane.pin_dir().to_path_buf();
        let (dataplane, _maps) = DataPlane::load_with(
            &pin_dir,
            crate::dataplane::ConnTableOptions {
                conn_slots: self.config.global_defs.connection_table_size,
                timeouts: now.to_ticks(),
            },
        )?;
        plane.dataplane = dataplane;
        info!(
            tcp = now.tcp,
            tcpfin = now.tcpfin,
            udp = now.udp,
            "lvs_timeouts changed: program reloaded"
        );
        Ok(())
    }

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
            self.reload_program_for_timeouts(&old)?;
            self.locate_reals().await?;
            self.apply().await?;
            self.attach_all().await
        }
        .await;
        match result {
            Ok(()) => {
                info!(path = %self.config_path.display(), "config reloaded");
                self.notifier.reconfigure(&self.config.global_defs);
                self.restart_changed_instances(gate_rx).await;
                if let Some(rx) = self.sync_monitor() {
                    self.new_verdicts = Some(rx);
                }
                if let Err(e) = self.apply().await {
                    error!("sync failed: {e:#}");
                }
            }
            Err(e) => {
                error!("reload failed, restoring the running config: {e:#}");
                let failed = std::mem::replace(&mut self.config, old);
                let restored = async {
                    self.reload_program_for_timeouts(&failed)?;
                    self.locate_reals().await?;
                    self.apply().await?;
                    self.attach_all().await
                };
                if let Err(e) = restored.await {
                    error!("restoring the running config failed: {e:#}");
                }
            }
        }
    }
}

/// Runs a notify / quorum command without waiting for it (keepalived does not either).
fn run_in_background(command: String) {
    crate::process::spawn_notify(command);
}

/// Says loudly when the config asks for mail alerts that cannot be sent, rather than
/// letting a keepalived user believe they will be.
fn warn_mail_impossible(config: &Config) {
    let g = &config.global_defs;
    let asked = g.smtp_alert
        || config
            .vrrp_instance
            .iter()
            .any(|i| i.smtp_alert == Some(true))
        || config.virtual_server.iter().any(|vs| {
            vs.smtp_alert == Some(true) || vs.real_server.iter().any(|r| r.smtp_alert == Some(true))
        });
    if asked && Mailer::from_global(g).is_none() {
        warn!(
            "smtp_alert is set but no mail will be sent: global_defs needs smtp_server and \
             notification_email"
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
    warn_mail_impossible(&config);
    let notifier = Notifier::running(&config.global_defs);
    let _fifos = notifier.close_on_drop();
    let handle = netlink::connect()?;
    // Without virtual servers xlb is a plain VRRP daemon, as keepalived is: no XDP.
    let mut fresh = true;
    let plane = if config.virtual_server.is_empty() {
        None
    } else {
        let (dataplane, maps) = DataPlane::load_with(
            &opts.pin_path,
            crate::dataplane::ConnTableOptions {
                conn_slots: config.global_defs.connection_table_size,
                timeouts: config.global_defs.lvs_timeouts.to_ticks(),
            },
        )?;
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
        notifier,
        health: HashMap::new(),
        monitor: None,
        quorum: HashMap::new(),
        new_verdicts: None,
        gate: Gate(gate_tx),
    };
    let mut events = netlink::watch()?;
    // Health first: servers with `alpha` must not get flows before their first success.
    let mut verdicts = d.sync_monitor();
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
            _ = publish.tick() => {
                d.write_state();
                if let Some(rx) = d.new_verdicts.take() {
                    verdicts = Some(rx);
                }
            }
            Some(v) = async {
                match verdicts.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => d.on_verdict(v).await,
        }
    }
    // Resign first (priority 0 adverts, VIPs removed, services switched off), so the
    // backup takes over within its skew time.
    let running = std::mem::take(&mut d.instances);
    if !running.is_empty() {
        info!(instances = running.len(), "resigning VRRP instances");
        d.stop_instances(running, &mut gate_rx).await;
    }
    if let Some(m) = d.monitor.take() {
        m.shutdown().await;
    }
    d.omega();
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
