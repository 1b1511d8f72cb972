//! `[sync]`: connection sync between directors, keepalived's `lvs_sync_daemon
//! INTERFACE VRRP_INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]` as a table.
//! The VRRP instance's state gives the role: MASTER sends, BACKUP receives.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
};

use serde::{Deserialize, Serialize};

use super::Config;

/// IPVS's sync multicast group.
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// IPVS's sync port.
pub const DEFAULT_PORT: u16 = 8848;
/// The largest datagram that fits a 1500-byte Ethernet MTU over IPv4 / UDP.
pub const DEFAULT_MAXLEN: u16 = 1472;
/// The smallest `maxlen`: a header, one IPv6 entry and an HMAC.
pub const MIN_MAXLEN: u16 = 128;
/// Entries a second the master sends at most, by default (10 000 new flows a second
/// and their refreshes).
pub const DEFAULT_RATE: u32 = 50_000;

/// `[sync]`. Absent: no connection sync.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The `vrrp_instance` whose state gives the role (keepalived's VRRP_INSTANCE).
    pub instance: String,
    /// Interface the datagrams use. Default: the instance's interface.
    #[serde(default)]
    pub interface: Option<String>,
    /// Sync id, 0..=255: datagrams of another id are dropped (several pairs on one
    /// segment). Default 0.
    #[serde(default)]
    pub id: u8,
    /// Addresses of the other directors. Default: the instance's `unicast_peer`, else
    /// multicast to `group` (which then needs `key` or `key_file`).
    #[serde(default)]
    pub peers: Vec<IpAddr>,
    /// Multicast group when there are no peers. Default 224.0.0.81 (IPVS's).
    #[serde(default = "default_group")]
    pub group: Ipv4Addr,
    /// UDP port. Default 8848 (IPVS's).
    #[serde(default = "default_port")]
    pub port: u16,
    /// TTL (hop limit) of the datagrams. Default 1.
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// Largest datagram, bytes (IP and UDP headers excluded). Default 1472.
    #[serde(default = "default_maxlen")]
    pub maxlen: u16,
    /// Shared secret: every datagram carries an HMAC-SHA256 of it. Default: none (then
    /// only datagrams from `peers` are taken).
    #[serde(default)]
    pub key: Option<String>,
    /// A file holding the secret (readable by its owner only, or refused).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Most entries sent per second; the rest wait for the next round. Default 50000.
    #[serde(default = "default_rate")]
    pub rate: u32,
}

fn default_group() -> Ipv4Addr {
    DEFAULT_GROUP
}
fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_ttl() -> u8 {
    1
}
fn default_maxlen() -> u16 {
    DEFAULT_MAXLEN
}
fn default_rate() -> u32 {
    DEFAULT_RATE
}

impl SyncConfig {
    /// A config for `instance` with every default.
    pub fn for_instance(instance: &str) -> Self {
        Self {
            instance: instance.to_owned(),
            interface: None,
            id: 0,
            peers: Vec::new(),
            group: DEFAULT_GROUP,
            port: DEFAULT_PORT,
            ttl: 1,
            maxlen: DEFAULT_MAXLEN,
            key: None,
            key_file: None,
            rate: DEFAULT_RATE,
        }
    }

    /// The peers in force: the configured ones, else the instance's unicast peers.
    /// Empty: multicast.
    pub fn peers_in_force(&self, cfg: &Config) -> Vec<IpAddr> {
        if !self.peers.is_empty() {
            return self.peers.clone();
        }
        cfg.vrrp_instance
            .iter()
            .find(|i| i.name == self.instance)
            .map(|i| i.unicast_peer.clone())
            .unwrap_or_default()
    }

    /// Where datagrams go: each peer, or the group.
    pub fn destinations(&self, cfg: &Config) -> Vec<SocketAddr> {
        let peers = self.peers_in_force(cfg);
        if peers.is_empty() {
            vec![SocketAddr::new(IpAddr::V4(self.group), self.port)]
        } else {
            peers
                .into_iter()
                .map(|p| SocketAddr::new(p, self.port))
                .collect()
        }
    }

    /// The interface in force.
    pub fn interface_in_force<'a>(&'a self, cfg: &'a Config) -> Option<&'a str> {
        self.interface.as_deref().or_else(|| {
            cfg.vrrp_instance
                .iter()
                .find(|i| i.name == self.instance)
                .map(|i| i.interface.as_str())
        })
    }

    /// The secret: `key`, or `key_file`'s content without its trailing newline.
    pub fn secret(&self) -> std::io::Result<Option<Vec<u8>>> {
        if let Some(k) = &self.key {
            return Ok(Some(k.as_bytes().to_vec()));
        }
        match &self.key_file {
            Some(p) => {
                let mut s = std::fs::read(p)?;
                while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    s.pop();
                }
                Ok(Some(s))
            }
            None => Ok(None),
        }
    }
}

/// Why a key file is refused: unreadable, empty, or readable by group or others.
pub fn key_file_problem(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("{}: {e}", path.display())),
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Some(format!(
            "{} is readable or writable by group or others (mode {:o}): a secret must be \
             the owner's only (chmod 600)",
            path.display(),
            mode & 0o777
        ));
    }
    if meta.len() == 0 {
        return Some(format!("{} is empty", path.display()));
    }
    None
}
