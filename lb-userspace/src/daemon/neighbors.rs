//! Where the real servers are: the interface each is reached through and its MAC, asked
//! of the kernel (routes, neighbour table) and kept current from neighbour events, retries
//! for the unresolved and periodic refreshes of the resolved.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::IpAddr,
    time::Duration,
};

use lb_common::Mac;
use rtnetlink::Handle;
use tracing::{info, warn};

use crate::{
    config::Config,
    netlink::{self, NeighborEvent, NetlinkError},
};

/// What the kernel told us about one real server's link-layer location.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbor {
    pub ifindex: u32,
    pub mac: Option<[u8; 6]>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// A real server the director cannot reach on a link of its own (DR needs one).
    #[error("real server {ip}")]
    Unreachable {
        ip: IpAddr,
        #[source]
        source: NetlinkError,
    },
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// Every real server and sorry server of the config, by address.
#[derive(Default)]
pub struct Neighbors {
    table: HashMap<IpAddr, Neighbor>,
    /// Servers forgotten because their interface went away: until it is back, not
    /// finding a route to them is expected, not a reason to refuse a reload.
    stranded: HashSet<IpAddr>,
}

impl Neighbors {
    pub fn table(&self) -> &HashMap<IpAddr, Neighbor> {
        &self.table
    }

    /// Finds the interface of every real server of `config` (refusing ones that are not
    /// on-link), forgets the others, and asks the kernel for the MACs it does not know yet.
    pub async fn locate(&mut self, handle: &Handle, config: &Config) -> Result<(), LocateError> {
        let ips = server_ips(config);
        self.table.retain(|ip, _| ips.contains(ip));
        self.stranded.retain(|ip| ips.contains(ip));
        for ip in ips {
            if self.table.contains_key(&ip) {
                continue;
            }
            let link = match netlink::route_to(handle, ip).await {
                Ok(link) => link,
                Err(_) if self.stranded.contains(&ip) => continue,
                Err(source) => return Err(LocateError::Unreachable { ip, source }),
            };
            self.stranded.remove(&ip);
            let mac = netlink::lookup(handle, link.ifindex, ip).await?;
            if mac.is_none() {
                netlink::resolve(handle, link.ifindex, ip).await?;
            }
            self.table.insert(
                ip,
                Neighbor {
                    ifindex: link.ifindex,
                    mac,
                },
            );
        }
        Ok(())
    }

    /// Forgets every real server reached through interface `ifindex` (it is gone): they
    /// get no new flows until [`locate`](Self::locate) finds them again.
    pub fn forget_interface(&mut self, ifindex: u32) {
        let stranded = &mut self.stranded;
        self.table.retain(|ip, n| {
            let keep = n.ifindex != ifindex;
            if !keep {
                warn!(real_server = %ip, ifindex, "its interface is gone; located again once it is back");
                stranded.insert(*ip);
            }
            keep
        });
    }

    /// How many servers wait for their interface to come back.
    pub fn stranded(&self) -> usize {
        self.stranded.len()
    }

    /// Start-up: gives ARP / NDP up to `patience` so the first sync already has the MACs,
    /// then names the servers still unresolved.
    pub async fn wait_for_macs(
        &mut self,
        handle: &Handle,
        patience: Duration,
    ) -> Result<(), NetlinkError> {
        let deadline = tokio::time::Instant::now() + patience;
        while self.table.values().any(|n| n.mac.is_none()) && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.poll_unresolved(handle, false).await?;
        }
        for (ip, n) in &self.table {
            if n.mac.is_none() {
                warn!(real_server = %ip, "MAC unknown: no new flows go to it until it answers ARP/NDP");
            }
        }
        Ok(())
    }

    /// Re-reads the neighbour table for unresolved real servers, asking the kernel to
    /// resolve them again when `trigger`; true if any changed.
    pub async fn poll_unresolved(
        &mut self,
        handle: &Handle,
        trigger: bool,
    ) -> Result<bool, NetlinkError> {
        let mut changed = false;
        let pending: Vec<(IpAddr, u32)> = self
            .table
            .iter()
            .filter(|(_, n)| n.mac.is_none())
            .map(|(ip, n)| (*ip, n.ifindex))
            .collect();
        for (ip, ifindex) in pending {
            if let Some(mac) = netlink::lookup(handle, ifindex, ip).await? {
                info!(real_server = %ip, mac = %Mac(&mac), "resolved");
                self.table.insert(
                    ip,
                    Neighbor {
                        ifindex,
                        mac: Some(mac),
                    },
                );
                changed = true;
            } else if trigger {
                netlink::resolve(handle, ifindex, ip).await?;
            }
        }
        Ok(changed)
    }

    /// Asks the kernel to confirm every known entry, so a changed MAC is noticed even when
    /// no neighbour event arrives (XDP traffic does not confirm neighbour entries).
    pub async fn refresh(&self, handle: &Handle) {
        for (ip, n) in &self.table {
            if let Err(e) = netlink::resolve(handle, n.ifindex, *ip).await {
                warn!(real_server = %ip, error = %e, "neighbour refresh failed");
            }
        }
    }

    /// Applies a neighbour event; true if a MAC the data plane uses changed.
    pub fn on_event(&mut self, ev: NeighborEvent) -> bool {
        let Some(n) = self.table.get_mut(&ev.addr) else {
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

    /// The MAC of every interface a real server is reached through: the source MAC of
    /// forwarded frames.
    pub async fn interface_macs(
        &self,
        handle: &Handle,
    ) -> Result<BTreeMap<u32, [u8; 6]>, NetlinkError> {
        let mut ifaces = BTreeMap::new();
        for n in self.table.values() {
            if ifaces.contains_key(&n.ifindex) {
                continue;
            }
            match netlink::link_mac(handle, n.ifindex).await {
                Ok(mac) => {
                    ifaces.insert(n.ifindex, mac);
                }
                // Deleted a moment ago: the watchdog forgets its servers on its next look;
                // meanwhile the rest of the sync (a FAULT switching services off) goes on.
                Err(e) if netlink::is_no_such_link(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ifaces)
    }
}

/// Every real server's and sorry server's address in `config`, each once.
fn server_ips(config: &Config) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = config
        .virtual_server
        .iter()
        .flat_map(|vs| vs.server_addresses())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table(entries: &[(&str, u32, Option<[u8; 6]>)]) -> Neighbors {
        Neighbors {
            stranded: HashSet::new(),
            table: entries
                .iter()
                .map(|(a, ifindex, mac)| {
                    (
                        ip(a),
                        Neighbor {
                            ifindex: *ifindex,
                            mac: *mac,
                        },
                    )
                })
                .collect(),
        }
    }

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    fn event(addr: &str, ifindex: u32, mac: Option<[u8; 6]>) -> NeighborEvent {
        NeighborEvent {
            ifindex,
            addr: ip(addr),
            mac,
        }
    }

    #[test]
    fn a_new_mac_on_the_servers_interface_is_taken() {
        let mut n = table(&[("198.18.0.21", 3, Some(MAC_A))]);
        assert!(n.on_event(event("198.18.0.21", 3, Some(MAC_B))));
        assert_eq!(n.table()[&ip("198.18.0.21")].mac, Some(MAC_B));
        assert!(
            !n.on_event(event("198.18.0.21", 3, Some(MAC_B))),
            "same MAC again"
        );
    }

    #[test]
    fn servers_behind_a_gone_interface_are_forgotten_and_only_they() {
        let mut n = table(&[
            ("198.18.0.21", 3, Some(MAC_A)),
            ("198.18.0.22", 4, Some(MAC_B)),
        ]);
        n.forget_interface(3);
        assert!(!n.table().contains_key(&ip("198.18.0.21")));
        assert!(
            n.stranded.contains(&ip("198.18.0.21")),
            "expected unreachable"
        );
        assert_eq!(n.table()[&ip("198.18.0.22")].mac, Some(MAC_B));
    }

    #[test]
    fn a_first_mac_resolves_the_server() {
        let mut n = table(&[("198.18.0.21", 3, None)]);
        assert!(n.on_event(event("198.18.0.21", 3, Some(MAC_A))));
        assert_eq!(n.table()[&ip("198.18.0.21")].mac, Some(MAC_A));
    }

    #[test]
    fn other_interfaces_strangers_and_failures_change_nothing() {
        let mut n = table(&[("198.18.0.21", 3, Some(MAC_A))]);
        assert!(
            !n.on_event(event("198.18.0.21", 4, Some(MAC_B))),
            "other link"
        );
        assert!(
            !n.on_event(event("198.18.0.99", 3, Some(MAC_B))),
            "not a server"
        );
        assert!(!n.on_event(event("198.18.0.21", 3, None)), "entry gone");
        assert_eq!(
            n.table()[&ip("198.18.0.21")].mac,
            Some(MAC_A),
            "last MAC kept"
        );
    }
}
