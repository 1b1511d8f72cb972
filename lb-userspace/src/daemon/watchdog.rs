//! The data-plane watchdog: every [`WATCH`] the daemon looks at what it attached and
//! pinned, and repairs what someone else (or the kernel) took away:
//! - a map or link pin removed: pinned again (we hold every map and link, so forwarding
//!   never stopped);
//! - the XDP link detached by hand: attached again, with the same maps (connection state
//!   and counters stay);
//! - the interface deleted or renamed away: forwarding there is down, in the log and in
//!   `xlb status`, and its real servers' neighbours are forgotten; when an interface of
//!   that name is back, the program is attached to it and the real servers are located
//!   and resolved again. (The VRRP instances on it follow the same link events by
//!   themselves: FAULT, then their socket reopened on the new interface.)
//!
//! The rules of what a look means are [`crate::dataplane::watch`]'s; this module only
//! looks and acts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{debug, error, info};

use super::{Daemon, plane};
use crate::{
    dataplane::watch::{Change, Finding, inspect},
    netlink,
};

/// How often the watchdog looks: a removed pin or a detached program is noticed within
/// this, at the cost of one rtnetlink request per interface and a few `stat`s.
pub const WATCH: Duration = Duration::from_millis(500);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Daemon {
    /// One look at the data plane, and the repairs it calls for.
    pub(super) async fn watch_plane(&mut self) {
        let Some(plane) = self.plane.as_mut() else {
            return;
        };
        match plane.repin_maps() {
            Ok(names) => {
                if !names.is_empty() {
                    error!(
                        maps = ?names,
                        "pinned maps removed by someone else; pinned again (the program kept them)"
                    );
                }
                plane.watch.maps_problem(None);
            }
            Err(e) => {
                let problem = format!("{:#}", anyhow::Error::new(e));
                if plane.watch.maps_problem(Some(problem.clone())) {
                    error!("pinning removed maps again: {problem}");
                }
            }
        }
        let Ok(mut wanted) = plane::interfaces(&self.config) else {
            return;
        };
        plane::add_nat_interfaces(&self.config, self.neighbors.table(), &mut wanted);
        plane.watch.retain(&wanted);
        let mut resync = false;
        for name in wanted {
            resync |= self.watch_interface(&name).await;
        }
        let stranded = self.neighbors.stranded();
        if stranded > 0 {
            match self.neighbors.locate(&self.handle, &self.config).await {
                Ok(()) if self.neighbors.stranded() < stranded => {
                    info!(
                        waiting = self.neighbors.stranded(),
                        "real servers located again on their interface"
                    );
                    resync = true;
                }
                Ok(()) => {}
                Err(e) => debug!("real servers not located yet: {e}"),
            }
        }
        if resync {
            self.sync().await;
        }
    }

    /// Looks at interface `name` and repairs it; true when the maps must follow (its
    /// index changed, or it went away).
    async fn watch_interface(&mut self, name: &str) -> bool {
        let Some(plane) = self.plane.as_mut() else {
            return false;
        };
        let now = match netlink::link_state(&self.handle, name).await {
            Ok(now) => now,
            Err(e) => {
                debug!(interface = name, "watchdog: {e}");
                return false;
            }
        };
        let Ok(prog) = plane.program_id() else {
            return false;
        };
        let attached_at = plane.attached_at(name);
        let finding = inspect(attached_at, prog, now, plane.link_pinned(name));
        let mut resync = false;
        match finding {
            Finding::Healthy => return false,
            Finding::LinkUnpinned => {
                error!(
                    interface = name,
                    pin = %plane.link_pin(name).display(),
                    "pinned XDP link removed by someone else; pinning it again"
                );
                if let Err(e) = plane.repin_link(name) {
                    error!(
                        interface = name,
                        "pinning the link again: {:#}",
                        anyhow::Error::new(e)
                    );
                }
                return false;
            }
            Finding::InterfaceGone | Finding::Foreign { .. } => {
                if let Some(old) = attached_at {
                    plane.forget(name);
                    if finding == Finding::InterfaceGone {
                        self.neighbors.forget_interface(old);
                        resync = true;
                    }
                }
                let reason = finding.down_reason(name).unwrap_or_default();
                if let Some(Change::Down(reason)) = plane.watch.down(name, reason, unix_now()) {
                    error!(interface = name, "not forwarding: {reason}");
                }
                return resync;
            }
            Finding::Detached => {
                error!("XDP program detached from {name} by someone else; re-attaching");
                plane.forget(name);
            }
            Finding::InterfaceBack { ifindex } => {
                info!(
                    interface = name,
                    ifindex, "interface is back; attaching XDP"
                );
                if let Some(old) = attached_at {
                    plane.forget(name);
                    self.neighbors.forget_interface(old);
                }
                resync = true;
            }
        }
        match plane.attach_one(&self.handle, name, self.attach_mode).await {
            Ok(()) => {
                let change = plane.watch.reattached(name, unix_now());
                let times = plane.watch.get(name).map_or(0, |s| s.reattached);
                info!(interface = name, times, "XDP re-attached");
                if change == Some(Change::Up) {
                    info!(interface = name, "forwarding again");
                }
            }
            Err(e) => {
                let reason = format!("re-attaching XDP failed: {:#}", anyhow::Error::new(e));
                if let Some(Change::Down(reason)) = plane.watch.down(name, reason, unix_now()) {
                    error!(interface = name, "not forwarding: {reason}");
                }
            }
        }
        resync
    }
}
