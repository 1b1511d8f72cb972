//! What setup or teardown did, action by action, as logged and printed.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// One thing setup or teardown did (or found already done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    VipAdded(IpAddr),
    VipAlreadyPresent(IpAddr),
    VipRemoved(IpAddr),
    VipNotPresent(IpAddr),
    SysctlSet {
        name: String,
        old: String,
        new: String,
    },
    SysctlRestored {
        name: String,
        value: String,
    },
    /// Teardown kept the ARP sysctls because these IPv4 VIPs are still set up.
    SysctlsKept {
        remaining: Vec<IpAddr>,
    },
    /// Teardown found no state file, so it does not know the original values.
    NoStateFile(PathBuf),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VipAdded(ip) => write!(f, "added {ip} on lo"),
            Self::VipAlreadyPresent(ip) => write!(f, "{ip} already on lo"),
            Self::VipRemoved(ip) => write!(f, "removed {ip} from lo"),
            Self::VipNotPresent(ip) => write!(f, "{ip} was not on lo"),
            Self::SysctlSet { name, old, new } if old == new => {
                write!(f, "{name} = {new} (already)")
            }
            Self::SysctlSet { name, old, new } => write!(f, "{name} = {new} (was {old})"),
            Self::SysctlRestored { name, value } => write!(f, "{name} = {value} (restored)"),
            Self::SysctlsKept { remaining } => {
                let list: Vec<String> = remaining.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "ARP sysctls kept: IPv4 VIPs still set up: {}",
                    list.join(", ")
                )
            }
            Self::NoStateFile(path) => write!(
                f,
                "no state file {}: the original ARP sysctl values are unknown, left as they are",
                path.display()
            ),
        }
    }
}

/// What setup or teardown did, in order; `Display` prints one action per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report(pub Vec<Action>);

impl Report {
    /// Records an action done, and logs it.
    pub(super) fn push(&mut self, action: Action) {
        match &action {
            Action::NoStateFile(_) => tracing::warn!("{action}"),
            _ => tracing::info!("{action}"),
        }
        self.0.push(action);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.0 {
            writeln!(f, "{a}")?;
        }
        Ok(())
    }
}
