//! What `xlb status` shows of the VRRP instances: each running instance puts its
//! [`InstanceStatus`] on the shared [`StatusBoard`] after every step, and the controller
//! writes the board to the state file.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

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
    pub rejected: BTreeMap<String, u64>,
    /// Adverts sent, accepted, and transitions to and from MASTER since start (absent
    /// from older daemons' files).
    #[serde(default)]
    pub counts: VrrpCounts,
    /// The `vrrp_sync_group` the instance is in (absent from older daemons' files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_group: Option<String>,
}

/// What an instance counts for the metrics (keepalived's `vrrp_statistics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VrrpCounts {
    /// Adverts sent (priority 0 on resigning included).
    pub adverts_sent: u64,
    /// Adverts accepted (past every receive check).
    pub adverts_received: u64,
    /// Transitions to MASTER (keepalived's `become_master`).
    pub became_master: u64,
    /// Transitions from MASTER to anything else (keepalived's `release_master`).
    pub left_master: u64,
    /// VIPs someone else removed from a MASTER that it put back (absent from older
    /// daemons' files).
    #[serde(default)]
    pub vips_restored: u64,
}

/// The state file as the daemon writes it and `xlb status` reads it: who wrote it (so a
/// reader can tell when that daemon is gone) and every instance's status.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatusFile {
    pub daemon: crate::process::identity::ProcessId,
    pub instances: Vec<InstanceStatus>,
    /// The data plane's interfaces as the watchdog sees them (absent from older daemons'
    /// files).
    #[serde(default)]
    pub interfaces: Vec<crate::dataplane::watch::InterfaceStatus>,
}

/// Every instance's status, shared with the controller (which writes it to a file).
pub type StatusBoard = Arc<Mutex<BTreeMap<String, InstanceStatus>>>;
