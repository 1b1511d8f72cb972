//! The desired-state rules: what the data plane should hold, given the config and what the
//! daemon has observed (health verdicts, VRRP states, where real servers are). Pure: no
//! I/O, no tokio, no root, so every rule has a unit test (`desired/tests.rs`).
//!
//! The rules, as keepalived has them:
//! - a real server's effective (alive, weight): its verdict and `misc_dynamic` weight, with
//!   `inhibit_on_failure` turning "dead" into "weight 0" so its connections go on;
//! - quorum with hysteresis: lost below `quorum - hysteresis`, regained at
//!   `quorum + hysteresis`; starting with the quorum is not news, starting without it is;
//! - the sorry server takes the new flows alone while the quorum is lost;
//! - a service is forwarded when no VRRP instance owns its VIP, or when ours is MASTER;
//! - `ha_suspend`: checks run only where the service is forwarded.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use lb_common::{PROTO_TCP, PROTO_UDP, ServiceKey, addr_of};

use super::{
    edits::{Edits, Overlaid},
    neighbors::Neighbor,
};
use crate::{
    config::{Config, LbKind, Protocol, RealServerConfig, VirtualServer},
    dataplane::sync::{DesiredReal, DesiredService},
    health::{RealKey, Target, Verdict},
    vrrp::machine::State as VrrpState,
};

#[cfg(test)]
mod tests;

/// A real server's health as the checkers last said.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Health {
    alive: bool,
    /// `misc_dynamic` weight; None = the configured weight.
    weight: Option<u32>,
}

/// A virtual service as its quorum is remembered: VIP, port, protocol.
type ServiceId = (IpAddr, u16, Protocol);

fn service_id(vs: &VirtualServer) -> ServiceId {
    (vs.ip, vs.port, vs.protocol)
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

/// The data plane's key of `ip`:`port`/`protocol`.
fn service_key(ip: IpAddr, port: u16, protocol: Protocol) -> ServiceKey {
    ServiceKey {
        vip: addr_of(ip),
        port,
        proto: match protocol {
            Protocol::Tcp => PROTO_TCP,
            Protocol::Udp => PROTO_UDP,
        },
        _pad: 0,
    }
}

/// The virtual service of `key` in `config`.
fn service_of<'c>(config: &'c Config, key: &RealKey) -> Option<&'c VirtualServer> {
    config
        .virtual_server
        .iter()
        .find(|vs| vs.ip == key.vip && vs.port == key.vport && vs.protocol == key.protocol)
}

/// The real server `key` names in `config`, if it still has it.
pub fn real_server<'c>(config: &'c Config, key: &RealKey) -> Option<&'c RealServerConfig> {
    service_of(config, key)?
        .real_server
        .iter()
        .find(|r| r.ip == key.rip && r.port == key.rport)
}

/// A change of a service's quorum worth announcing (quorum_up / quorum_down, logs,
/// notifications).
#[derive(Debug, PartialEq)]
pub struct QuorumChange<'c> {
    pub service: &'c VirtualServer,
    pub up: bool,
    /// The total weight of the service's live real servers.
    pub live_weight: u32,
}

/// What the daemon has observed, and the quorum it derived from it.
#[derive(Default)]
pub struct Observations {
    /// Health-check verdicts by real server; absent = not checked = alive.
    health: HashMap<RealKey, Health>,
    /// The state each VRRP instance last reported through the gate.
    vrrp: HashMap<String, VrrpState>,
    /// Whether each virtual service has its quorum; absent = not evaluated yet.
    quorum: HashMap<ServiceId, bool>,
    /// Runtime edits (`xlb weight`, `drain`, `disable`) over the file, until the next
    /// reload.
    pub edits: Edits,
}

impl Observations {
    /// A checker's verdict.
    pub fn record_verdict(&mut self, v: &Verdict) {
        self.health.insert(
            v.key,
            Health {
                alive: v.alive,
                weight: v.weight,
            },
        );
    }

    /// Every checked real server and whether its checkers say it is up.
    pub fn health(&self) -> impl Iterator<Item = (&RealKey, bool)> {
        self.health.iter().map(|(k, h)| (k, h.alive))
    }

    /// The state an instance reported through the gate.
    pub fn record_vrrp(&mut self, instance: String, state: VrrpState) {
        self.vrrp.insert(instance, state);
    }

    /// An instance stopped: its services are no longer forwarded.
    pub fn forget_instance(&mut self, instance: &str) {
        self.vrrp.remove(instance);
    }

    /// The checks that should run now, out of every checked server of the config
    /// (`all`): with `ha_suspend`, none for a service this director does not forward.
    pub fn check_targets(&self, config: &Config, all: &[Target]) -> Vec<Target> {
        all.iter()
            .filter(|t| {
                service_of(config, &t.key)
                    .is_none_or(|vs| !vs.ha_suspend || self.forwards(config, vs))
            })
            .cloned()
            .collect()
    }

    /// Verdicts of servers no longer checked (`all`) are forgotten; servers whose checks
    /// start now (`running`) and have no verdict start alive, or dead with `alpha`.
    pub fn expect_targets(&mut self, all: &[Target], running: &[Target]) {
        let checked: HashSet<RealKey> = all.iter().map(|t| t.key).collect();
        self.health.retain(|key, _| checked.contains(key));
        for t in running {
            self.health.entry(t.key).or_insert(Health {
                alive: t.initially_alive(),
                weight: None,
            });
        }
    }

    /// A real server's (alive, weight) for the data plane: health verdicts applied, the
    /// runtime edits over them (`edits`), and `inhibit_on_failure` turning "dead" into
    /// "weight 0" so its connections go on (but not for a disabled server).
    pub fn effective(&self, vs: &VirtualServer, r: &RealServerConfig) -> (bool, u32) {
        let key = real_key(vs, r.ip, r.port);
        let h = self.health.get(&key);
        let alive = h.is_none_or(|h| h.alive);
        let weight = h.and_then(|h| h.weight).unwrap_or(r.weight);
        let (alive, weight) = match self.edits.overlay(&key, alive, weight) {
            Overlaid::Out { weight } => return (false, weight),
            Overlaid::Rules { alive, weight } => (alive, weight),
        };
        match (alive, r.inhibit_on_failure) {
            (true, _) => (true, weight),
            (false, true) => (true, 0),
            (false, false) => (false, weight),
        }
    }

    /// Whether this director forwards `vs`: no VRRP instance owns its VIP, or ours is
    /// MASTER.
    pub fn forwards(&self, config: &Config, vs: &VirtualServer) -> bool {
        match vs.vrrp_instance(config) {
            None => true,
            Some(i) => self.vrrp.get(&i.name) == Some(&VrrpState::Master),
        }
    }

    /// The total weight of the live real servers of `vs`.
    pub fn live_weight(&self, vs: &VirtualServer) -> u32 {
        vs.real_server
            .iter()
            .map(|r| self.effective(vs, r))
            .filter(|(alive, _)| *alive)
            .map(|(_, weight)| weight)
            .sum()
    }

    /// Re-evaluates every service's quorum and returns the changes to announce.
    pub fn update_quorum<'c>(&mut self, config: &'c Config) -> Vec<QuorumChange<'c>> {
        let mut news = Vec::new();
        for vs in &config.virtual_server {
            let live_weight = self.live_weight(vs);
            let was = self.quorum.get(&service_id(vs)).copied();
            let up = match was {
                None => live_weight >= vs.quorum,
                Some(true) => live_weight + vs.hysteresis >= vs.quorum,
                Some(false) => live_weight >= vs.quorum + vs.hysteresis,
            };
            if was == Some(up) {
                continue;
            }
            self.quorum.insert(service_id(vs), up);
            // Starting with the quorum is not news; starting without it is.
            if was.is_some() || !up {
                news.push(QuorumChange {
                    service: vs,
                    up,
                    live_weight,
                });
            }
        }
        news
    }

    /// Whether `vs` has its quorum (false before the first evaluation).
    pub fn has_quorum(&self, vs: &VirtualServer) -> bool {
        self.quorum_is(vs, true)
    }

    fn quorum_is(&self, vs: &VirtualServer, up: bool) -> bool {
        self.quorum.get(&service_id(vs)) == Some(&up)
    }

    /// The services as the data plane should hold them; `neighbors` says where each real
    /// server is (absent or without a MAC: no new flows go to it).
    pub fn services(
        &self,
        config: &Config,
        neighbors: &HashMap<IpAddr, Neighbor>,
    ) -> Vec<DesiredService> {
        config
            .virtual_server
            .iter()
            .map(|vs| DesiredService {
                key: service_key(vs.ip, vs.port, vs.protocol),
                aliases: vs
                    .service_keys()
                    .into_iter()
                    .skip(1)
                    .map(|(ip, port, proto)| service_key(ip, port, proto))
                    .collect(),
                algo: vs.lb_algo.sched_algo(),
                hash_port: vs.hash_port,
                active: self.forwards(config, vs),
                persistence_timeout: vs.persistence_timeout,
                nat: vs.lb_kind == LbKind::Nat,
                reals: self.reals(vs, neighbors),
            })
            .collect()
    }

    /// The real servers of `vs` as the data plane should hold them. While the quorum is
    /// lost and a sorry server is set, the sorry server takes the new flows alone; the
    /// remaining live servers keep their existing flows (weight 0).
    fn reals(&self, vs: &VirtualServer, neighbors: &HashMap<IpAddr, Neighbor>) -> Vec<DesiredReal> {
        let located = |ip: IpAddr, port: u16, alive: bool, weight: u32| {
            let n = neighbors.get(&ip);
            DesiredReal {
                addr: addr_of(ip),
                port,
                weight,
                alive,
                ifindex: n.map_or(0, |n| n.ifindex),
                mac: n.and_then(|n| n.mac),
            }
        };
        let sorry = vs
            .sorry_server
            .as_ref()
            .filter(|_| self.quorum_is(vs, false));
        let mut reals: Vec<DesiredReal> = vs
            .real_server
            .iter()
            .map(|r| {
                let (alive, weight) = self.effective(vs, r);
                let weight = if sorry.is_some() { 0 } else { weight };
                located(r.ip, r.port, alive, weight)
            })
            .collect();
        if let Some(s) = sorry {
            let port = s.port.unwrap_or(vs.port);
            // A sorry server that is also a real server keeps its one entry (weight 0).
            if !vs
                .real_server
                .iter()
                .any(|r| r.ip == s.ip && r.port == port)
            {
                reals.push(located(s.ip, port, true, 1));
            }
        }
        reals
    }

    /// keepalived's `omega`, on shutdown: the notify_down commands of live real servers
    /// and the quorum_down commands of services that had their quorum.
    pub fn omega_commands<'c>(&self, config: &'c Config) -> Vec<&'c str> {
        let mut commands = Vec::new();
        for vs in config.virtual_server.iter().filter(|v| v.omega) {
            for r in &vs.real_server {
                if self.effective(vs, r).0 {
                    commands.extend(r.notify_down.as_deref());
                }
            }
            if self.quorum_is(vs, true) {
                commands.extend(vs.quorum_down.as_deref());
            }
        }
        commands
    }
}
