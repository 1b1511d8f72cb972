//! The daemon's side of the metrics endpoint (`crate::metrics`): it starts the endpoint
//! when `global_defs.metrics_listen` says so, moves it when a reload changes the address,
//! and on every status tick publishes what only it knows (VRRP instances, health
//! verdicts and check durations, reload counts) as a [`Snapshot`]: a watch channel, so
//! publishing never waits for a scrape.

use std::{net::SocketAddr, path::PathBuf, time::SystemTime};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::{error, info};

use super::Daemon;
use crate::metrics::{MetricsServer, RealHealth, Reloads, Snapshot};

/// The endpoint at `listen`, if any, reading the maps under `pin_path` if any.
pub(super) async fn start(
    listen: Option<SocketAddr>,
    pin_path: Option<PathBuf>,
    snapshot: watch::Receiver<Snapshot>,
) -> Result<Option<MetricsServer>> {
    let Some(addr) = listen else {
        return Ok(None);
    };
    let server = MetricsServer::bind(addr, pin_path, snapshot)
        .await
        .with_context(|| format!("global_defs.metrics_listen {addr}: cannot listen"))?;
    Ok(Some(server))
}

/// What a reload did, for the `config_reloads` counter.
#[derive(Clone, Copy, Debug)]
pub(super) enum ReloadResult {
    Ok,
    Refused,
    RolledBack,
}

pub(super) fn count_reload(reloads: &mut Reloads, result: ReloadResult) {
    match result {
        ReloadResult::Ok => {
            reloads.ok += 1;
            reloads.last_ok = Some(SystemTime::now());
        }
        ReloadResult::Refused => reloads.refused += 1,
        ReloadResult::RolledBack => reloads.rolled_back += 1,
    }
}

impl Daemon {
    /// Publishes the daemon's part of the metrics.
    pub(super) fn publish_metrics(&self) {
        if self.metrics.is_none() {
            return;
        }
        let vrrp = self
            .instances
            .board()
            .lock()
            .map(|b| b.values().cloned().collect())
            .unwrap_or_default();
        let durations = self
            .monitor
            .as_ref()
            .map(|m| m.last_check_durations())
            .unwrap_or_default();
        let health = self
            .observed
            .health()
            .map(|(key, up)| RealHealth {
                vip: key.vip,
                vport: key.vport,
                proto: key.protocol.as_str(),
                rip: key.rip,
                rport: key.rport,
                up,
                last_check: durations.get(key).copied(),
            })
            .collect();
        self.snapshot.send_replace(Snapshot {
            vrrp,
            health,
            reloads: self.reloads,
            conn_table: self.plane.as_ref().map(|p| p.conn_table()),
            bgp: self.announcer.metrics(&self.config),
            conn_sync: self.conn_sync.as_ref().map(|t| t.status()),
        });
    }

    /// After a reload: the endpoint follows `global_defs.metrics_listen` (moved, started
    /// or stopped). A new address that cannot be listened on is logged; the endpoint is
    /// then off until a reload fixes it.
    pub(super) async fn follow_metrics_listen(&mut self, was: Option<SocketAddr>) {
        let now = self.config.global_defs.metrics_listen;
        if now == was {
            return;
        }
        // The old listener closes first: the new address may be the same port on
        // another address of the host.
        self.metrics = None;
        let pin_path = self.plane.as_ref().map(|_| self.pin_path.clone());
        match start(now, pin_path, self.snapshot.subscribe()).await {
            Ok(server) => {
                if server.is_none() {
                    info!("metrics endpoint stopped (metrics_listen removed)");
                }
                self.metrics = server;
                self.publish_metrics();
            }
            Err(e) => error!("{e:#}; the metrics endpoint is off"),
        }
    }
}
