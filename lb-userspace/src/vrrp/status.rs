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
    /// `use_vmac`: the VMAC's name (absent without one, and from older daemons' files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmac: Option<String>,
    /// The `vrrp_sync_group` the instance is in (absent from older daemons' files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_group: Option<String>,
    /// `track_reference`: "reachable", "unreachable" or "checking", with the addresses
    /// (absent without references, and from older daemons' files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
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

/// The sync groups of `instances` as `xlb status` shows them: (group, its state, its
/// members), by group name. The state is the group's rule applied to the members'
/// states: FAULT when one is, else MASTER when one is, else BACKUP (INIT when all are).
pub fn sync_groups(instances: &[InstanceStatus]) -> Vec<(String, &'static str, Vec<String>)> {
    let mut groups: BTreeMap<&str, Vec<&InstanceStatus>> = BTreeMap::new();
    for i in instances {
        if let Some(g) = &i.sync_group {
            groups.entry(g).or_default().push(i);
        }
    }
    groups
        .into_iter()
        .map(|(name, members)| {
            let any = |s: &str| members.iter().any(|m| m.state == s);
            let state = if any("FAULT") {
                "FAULT"
            } else if any("MASTER") {
                "MASTER"
            } else if members.iter().all(|m| m.state == "INIT") {
                "INIT"
            } else {
                "BACKUP"
            };
            let names = members.iter().map(|m| m.name.clone()).collect();
            (name.to_owned(), state, names)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(name: &str, state: &str, group: Option<&str>) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            interface: "eth0".into(),
            vrid: 1,
            version: 2,
            state: state.into(),
            priority: 100,
            configured_priority: 100,
            source: "198.18.0.1".parse().unwrap(),
            vips: Vec::new(),
            last_advert_from: None,
            rejected: BTreeMap::new(),
            counts: VrrpCounts::default(),
            vmac: None,
            sync_group: group.map(Into::into),
            reference: None,
        }
    }

    #[test]
    fn a_group_shows_the_state_its_members_make() {
        let all = [
            inst("VI_1", "MASTER", Some("G")),
            inst("VI_2", "MASTER", Some("G")),
            inst("VI_3", "BACKUP", None),
            inst("VI_4", "FAULT", Some("H")),
            inst("VI_5", "MASTER", Some("H")),
        ];
        let g = sync_groups(&all);
        assert_eq!(
            g,
            [
                (
                    "G".to_string(),
                    "MASTER",
                    vec!["VI_1".to_string(), "VI_2".to_string()]
                ),
                (
                    "H".to_string(),
                    "FAULT",
                    vec!["VI_4".to_string(), "VI_5".to_string()]
                ),
            ]
        );
        let backup = sync_groups(&[inst("A", "BACKUP", Some("G")), inst("B", "INIT", Some("G"))]);
        assert_eq!(backup[0].1, "BACKUP");
    }
}
