//! The daemon as a systemd `Type=notify` service (sd_notify(3), through the `sd-notify`
//! crate): what it tells the service manager, and when.
//!
//! - `READY=1` once the data plane is attached and filled and the VRRP instances run (where
//!   "xlb running" is logged), never before: `systemctl start` returns then, and units
//!   ordered `After=xlb.service` start with forwarding working.
//! - `STATUS=` a one-line summary (services, each instance's VRRP state), sent again when
//!   it changes; `systemctl status xlb` shows it.
//! - `RELOADING=1` (with `MONOTONIC_USEC=`, as systemd 253's `notify-reload` wants) when a
//!   reload starts, and `READY=1` once it has ended, instances restarted included; a
//!   refused reload ends too.
//! - `STOPPING=1` when shutdown starts (the instances resign while systemd waits).
//! - `WATCHDOG=1` at half of `WATCHDOG_USEC`, from an `Event` that goes through the
//!   daemon's one loop: a loop that is stuck stops feeding the watchdog, and systemd
//!   restarts the daemon (`WatchdogSec=` with `Restart=on-failure`). `WATCHDOG_PID`, when
//!   set, must be this process (as `sd_watchdog_enabled`).
//!
//! Without `NOTIFY_SOCKET` nothing at all is sent. A send that fails is logged once; the
//! daemon goes on (systemd would notice a missing READY or watchdog on its own).

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::warn;

use crate::vrrp::instance::StatusBoard;

/// The daemon's channel to systemd.
#[derive(Debug, Default)]
pub struct Systemd {
    /// `NOTIFY_SOCKET` was set at start: without it nothing is ever sent.
    enabled: bool,
    /// `WATCHDOG_USEC` for this process.
    watchdog: Option<Duration>,
    /// `RELOADING=1` sent, its `READY=1` not yet.
    reloading: bool,
    /// The last `STATUS=` sent, so an unchanged one is not sent again.
    status: String,
    /// A send has failed and was logged; later failures are not.
    failed: bool,
}

impl Systemd {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`.
    pub fn from_env() -> Self {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        Self {
            enabled,
            watchdog: if enabled {
                sd_notify::watchdog_enabled()
            } else {
                None
            },
            ..Self::default()
        }
    }

    /// How often the loop feeds the watchdog (half of `WATCHDOG_USEC`), if systemd set one.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog.map(|w| (w / 2).max(Duration::from_millis(1)))
    }

    /// Start-up is done: the data plane forwards and the instances run.
    pub fn ready(&mut self, status: String) {
        let line = format!("running: {status}");
        self.send(&[NotifyState::Ready, NotifyState::Status(&line)]);
        self.status = line;
    }

    /// A reload starts.
    pub fn reloading(&mut self) {
        if self.reloading {
            return;
        }
        self.reloading = true;
        let now = sd_notify::NotifyState::monotonic_usec_now();
        let mut states = vec![NotifyState::Reloading, NotifyState::Status("reloading")];
        if let Ok(now) = now {
            states.push(now);
        }
        self.send(&states);
        self.status = "reloading".into();
    }

    /// Whether a reload was announced and not yet finished.
    pub fn is_reloading(&self) -> bool {
        self.reloading
    }

    /// The announced reload has ended.
    pub fn reloaded(&mut self, status: String) {
        if std::mem::take(&mut self.reloading) {
            self.ready(status);
        }
    }

    /// The summary, sent only when it changed (and not over "reloading").
    pub fn status(&mut self, status: String) {
        let line = format!("running: {status}");
        if self.reloading || line == self.status {
            return;
        }
        self.send(&[NotifyState::Status(&line)]);
        self.status = line;
    }

    /// Shutdown starts.
    pub fn stopping(&mut self, status: &str) {
        self.send(&[NotifyState::Stopping, NotifyState::Status(status)]);
        self.status = status.to_string();
    }

    /// The loop is alive.
    pub fn watchdog(&mut self) {
        if self.watchdog.is_some() {
            self.send(&[NotifyState::Watchdog]);
        }
    }

    fn send(&mut self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states) {
            if !std::mem::replace(&mut self.failed, true) {
                warn!("telling systemd ({states:?}) failed: {e} (not logged again)");
            }
        }
    }
}

/// The `STATUS=` summary: how many virtual services, and each configured VRRP instance's
/// state (`INIT` until the instance has published one).
pub fn summary<'a>(
    services: usize,
    instances: impl IntoIterator<Item = &'a str>,
    board: &StatusBoard,
) -> String {
    let mut line = format!(
        "{services} virtual service{}",
        if services == 1 { "" } else { "s" }
    );
    let Ok(board) = board.lock() else {
        return line;
    };
    let states: Vec<String> = instances
        .into_iter()
        .map(|name| match board.get(name) {
            Some(s) => format!("{name} {} prio {}", s.state, s.priority),
            None => format!("{name} INIT"),
        })
        .collect();
    if !states.is_empty() {
        line.push_str("; VRRP ");
        line.push_str(&states.join(", "));
    }
    line
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

    use super::*;
    use crate::vrrp::status::InstanceStatus;

    #[test]
    fn disabled_without_notify_socket_sends_nothing_and_has_no_watchdog() {
        let mut s = Systemd {
            watchdog: None,
            ..Systemd::default()
        };
        assert_eq!(s.watchdog_period(), None);
        s.ready("x".into());
        s.watchdog();
        assert!(!s.failed, "nothing was even tried");
    }

    #[test]
    fn the_watchdog_is_fed_at_half_its_period() {
        let s = Systemd {
            enabled: true,
            watchdog: Some(Duration::from_secs(10)),
            ..Systemd::default()
        };
        assert_eq!(s.watchdog_period(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn ready_follows_a_reload_only_once() {
        let mut s = Systemd::default();
        s.reloading();
        s.reloading();
        assert!(s.is_reloading());
        s.status("ignored while reloading".into());
        assert_eq!(s.status, "reloading");
        s.reloaded("1 virtual service".into());
        assert!(!s.is_reloading());
        assert_eq!(s.status, "running: 1 virtual service");
    }

    #[test]
    fn the_summary_names_each_instance_and_its_state() {
        let board: StatusBoard = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        assert_eq!(summary(1, [], &board), "1 virtual service");
        assert_eq!(
            summary(0, ["VI_1"], &board),
            "0 virtual services; VRRP VI_1 INIT",
            "configured, not published yet"
        );
        let status = |name: &str, state: &str, priority| InstanceStatus {
            name: name.into(),
            interface: "eth0".into(),
            vrid: 51,
            version: 2,
            state: state.into(),
            priority,
            configured_priority: priority,
            source: IpAddr::from([198, 18, 0, 2]),
            vips: vec![],
            last_advert_from: None,
            rejected: BTreeMap::new(),
            counts: Default::default(),
            vmac: None,
            sync_group: None,
            reference: None,
        };
        board
            .lock()
            .unwrap()
            .insert("VI_1".into(), status("VI_1", "MASTER", 100));
        board
            .lock()
            .unwrap()
            .insert("VI_2".into(), status("VI_2", "BACKUP", 90));
        assert_eq!(
            summary(2, ["VI_1", "VI_2"], &board),
            "2 virtual services; VRRP VI_1 MASTER prio 100, VI_2 BACKUP prio 90"
        );
    }
}
