//! The daemon's side of BGP announcements (`crate::bgp`): after every data-plane sync
//! and every status tick it decides which `announce = "bgp"` VIPs this director can serve
//! (`bgp::wanted`) and adds or removes their host routes; every [`RESYNC`] it compares
//! with the kernel and puts back a route someone removed (and removes one of ours it no
//! longer wants); on a clean stop it withdraws everything, so the routers move the flows
//! to the other directors while this one still forwards what reaches it. A `kill -9`
//! leaves the routes: the pinned data plane still forwards. A reload changes the routes
//! in place (a new table: withdrawn from the old one, announced in the new one).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtnetlink::Handle;
use tracing::{error, info, warn};

use super::Daemon;
use crate::bgp::{
    bird, routes,
    status::{self, BgpStatus, VipStatus},
    wanted::{self, Decision, ServiceView},
};
use crate::config::Config;

/// How often the routes are compared with the kernel.
pub const RESYNC: Duration = Duration::from_secs(5);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The announcements this daemon made, and their bookkeeping.
pub struct Announcer {
    /// The kernel table in use (the config's, once applied).
    table: u32,
    /// The include last written, and for which table.
    include: Option<(PathBuf, u32)>,
    vips: BTreeMap<IpAddr, VipStatus>,
    counts: BgpStatus,
    last_resync: Option<Instant>,
    file: PathBuf,
}

impl Announcer {
    pub fn new(config: &Config, state_file: &std::path::Path) -> Self {
        Self {
            table: config.announce.table,
            include: None,
            vips: BTreeMap::new(),
            counts: BgpStatus::default(),
            last_resync: None,
            file: status::file_beside(state_file),
        }
    }

    /// Nothing to announce and nothing announced: no status to show.
    fn idle(config: &Config) -> bool {
        config.virtual_server.iter().all(|v| v.announce.is_none())
    }

    /// Writes `[announce] bird_include` when its path or table changed.
    fn write_include(&mut self, config: &Config) {
        let Some(path) = config.announce.bird_include.as_deref().map(PathBuf::from) else {
            self.include = None;
            return;
        };
        let table = config.announce.table;
        if self.include.as_ref() == Some(&(path.clone(), table)) {
            return;
        }
        match bird::write_include(&path, table) {
            Ok(changed) => {
                if changed {
                    info!(path = %path.display(), table, "BIRD include written (reconfigure BIRD to load it)");
                }
                self.include = Some((path, table));
            }
            Err(e) => error!(path = %path.display(), "writing the BIRD include: {e}"),
        }
    }

    /// Brings the routes to `decisions`.
    async fn apply(&mut self, handle: &Handle, config: &Config, decisions: Vec<Decision>) {
        self.write_include(config);
        if config.announce.table != self.table {
            info!(
                from = self.table,
                to = config.announce.table,
                "BGP: announcement table changed; moving the routes"
            );
            self.withdraw_all(handle, "table changed").await;
            self.vips.clear();
            self.table = config.announce.table;
        }
        let wanted: Vec<IpAddr> = decisions.iter().map(|d| d.vip).collect();
        let gone: Vec<IpAddr> = (self.vips.keys())
            .filter(|v| !wanted.contains(v))
            .copied()
            .collect();
        for vip in gone {
            if self.vips.get(&vip).is_some_and(|s| s.announced) {
                self.remove(handle, vip, "no longer announced by the config")
                    .await;
            }
            self.vips.remove(&vip);
        }
        for d in decisions {
            let was = self.vips.get(&d.vip).map(|s| s.announced);
            let (announced, reason) = match (was, d.announce) {
                (Some(a), b) if a == b => (a, d.reason),
                (_, true) => match routes::announce(handle, d.vip, self.table).await {
                    Ok(()) => {
                        self.counts.announcements += 1;
                        info!(vip = %d.vip, table = self.table, reason = %d.reason, "BGP: announced");
                        (true, d.reason)
                    }
                    Err(e) => {
                        error!(vip = %d.vip, "BGP: adding the route failed: {e}");
                        (false, format!("adding the route failed: {e}"))
                    }
                },
                (_, false) => {
                    if was == Some(true) {
                        self.remove(handle, d.vip, &d.reason).await;
                    } else {
                        info!(vip = %d.vip, reason = %d.reason, "BGP: not announced");
                    }
                    (false, d.reason)
                }
            };
            let since = match self.vips.get(&d.vip) {
                Some(s) if s.announced == announced => s.since,
                _ => unix_now(),
            };
            self.vips.insert(
                d.vip,
                VipStatus {
                    vip: d.vip,
                    announced,
                    reason,
                    since,
                },
            );
        }
    }

    async fn remove(&mut self, handle: &Handle, vip: IpAddr, reason: &str) {
        match routes::withdraw(handle, vip, self.table).await {
            Ok(()) => {
                self.counts.withdrawals += 1;
                warn!(%vip, table = self.table, %reason, "BGP: withdrawn");
            }
            Err(e) => error!(%vip, "BGP: removing the route failed: {e}"),
        }
    }

    /// Every [`RESYNC`]: a route of ours someone removed goes back; one of ours in the
    /// table this daemon does not announce (a predecessor's, a hand-made one) goes.
    async fn resync(&mut self, handle: &Handle) {
        if self.last_resync.is_some_and(|t| t.elapsed() < RESYNC) {
            return;
        }
        self.last_resync = Some(Instant::now());
        let present = match routes::list(handle, Some(self.table)).await {
            Ok(p) => p,
            Err(e) => {
                error!("BGP: reading the announcements back: {e}");
                return;
            }
        };
        for (vip, s) in &self.vips {
            if s.announced && !present.iter().any(|(v, _)| v == vip) {
                error!(%vip, table = self.table, "BGP: route removed by someone else; restoring");
                match routes::announce(handle, *vip, self.table).await {
                    Ok(()) => self.counts.restored += 1,
                    Err(e) => error!(%vip, "BGP: restoring the route failed: {e}"),
                }
            }
        }
        for (vip, _) in present {
            if !self.vips.get(&vip).is_some_and(|s| s.announced) {
                warn!(%vip, table = self.table, "BGP: a route of protocol 201 this daemon does not announce; removing it");
                if let Err(e) = routes::withdraw(handle, vip, self.table).await {
                    error!(%vip, "BGP: removing the route failed: {e}");
                }
            }
        }
    }

    /// Withdraws every announced VIP (clean stop, table change).
    pub async fn withdraw_all(&mut self, handle: &Handle, reason: &str) {
        let announced: Vec<IpAddr> = (self.vips.values())
            .filter(|s| s.announced)
            .map(|s| s.vip)
            .collect();
        for vip in announced {
            self.remove(handle, vip, reason).await;
            if let Some(s) = self.vips.get_mut(&vip) {
                s.announced = false;
                s.reason = reason.to_owned();
                s.since = unix_now();
            }
        }
    }

    /// What `xlb status` shows.
    pub fn status(&self) -> BgpStatus {
        BgpStatus {
            pid: std::process::id(),
            table: self.table,
            vips: self.vips.values().cloned().collect(),
            ..self.counts.clone()
        }
    }

    fn publish(&self, config: &Config) {
        if Self::idle(config) && self.vips.is_empty() {
            status::remove(&self.file);
        } else {
            status::write(&self.file, &self.status());
        }
    }

    /// What the metrics show: nothing without announced VIPs.
    pub fn metrics(&self, config: &Config) -> Option<BgpStatus> {
        (!(Self::idle(config) && self.vips.is_empty())).then(|| self.status())
    }

    /// On the way out: no daemon, no status.
    pub fn remove_file(&self) {
        status::remove(&self.file);
    }
}

impl Daemon {
    /// What each announced VIP's services look like now.
    fn announce_decisions(&self) -> Vec<Decision> {
        let Some(plane) = self.plane.as_ref() else {
            return Vec::new();
        };
        let interfaces = plane.watch.statuses();
        let mut by_vip: BTreeMap<IpAddr, Vec<ServiceView>> = BTreeMap::new();
        for vs in self
            .config
            .virtual_server
            .iter()
            .filter(|v| v.announce.is_some())
        {
            let interface = vs
                .resolved_interface(&self.config)
                .unwrap_or("?")
                .to_owned();
            let forwarding = interfaces
                .iter()
                .any(|i| i.name == interface && i.forwarding);
            let view = ServiceView {
                name: vs.service_name(),
                quorum: self.observed.has_quorum(vs),
                live_weight: self.observed.live_weight(vs),
                interface,
                forwarding,
            };
            let mut vips: Vec<IpAddr> = vs.service_keys().into_iter().map(|k| k.0).collect();
            vips.dedup();
            for vip in vips {
                by_vip.entry(vip).or_default().push(view.clone());
            }
        }
        by_vip
            .into_iter()
            .map(|(vip, services)| wanted::decide(vip, &services))
            .collect()
    }

    /// Announces and withdraws as the services stand now.
    pub(super) async fn announce(&mut self) {
        if Announcer::idle(&self.config) && self.announcer.vips.is_empty() {
            return;
        }
        let decisions = self.announce_decisions();
        self.announcer
            .apply(&self.handle, &self.config, decisions)
            .await;
    }

    /// The status tick's part: decide, compare with the kernel when due, publish.
    pub(super) async fn announce_tick(&mut self) {
        self.announce().await;
        if !self.announcer.vips.is_empty() {
            self.announcer.resync(&self.handle).await;
        }
        self.announcer.publish(&self.config);
    }
}
