//! keepalived's static entries: `static_ipaddress`, `static_routes`, `static_rules`.
//! As keepalived's VRRP process does (`vrrp_daemon.c`), the daemon clears what a
//! predecessor left at start, adds the addresses, then the routes, then the rules; a
//! reload removes the entries that went and adds the new ones; the daemon removes them
//! all (rules, routes, addresses) when it stops. An entry removed by someone else while
//! the daemon runs is put back at once (keepalived's `reinstate_static_*`), unless it is
//! marked `no_track`.

use std::collections::HashSet;

use rtnetlink::Handle;
use tracing::{error, info, warn};

use crate::config::{Config, VirtualIpAddress};
use crate::netlink::LinkEvent;
use crate::netlink::route::{Removed, RouteSet, is_route, is_rule};
use crate::vrrp::addr_watch::AddressRemoved;
use crate::vrrp::vip;

/// Something of ours may have been removed.
#[derive(Debug, Clone)]
pub enum StaticRemoval {
    Routing(Removed),
    Address(AddressRemoved),
}

/// The static entries of one config.
#[derive(Debug, Clone, Default)]
pub struct Statics {
    pub addresses: Vec<VirtualIpAddress>,
    pub set: RouteSet,
    /// Interfaces they name that were last seen down.
    down: HashSet<String>,
}

impl Statics {
    pub fn of(cfg: &Config) -> Self {
        Self {
            addresses: cfg.static_addresses(),
            set: RouteSet {
                routes: cfg.static_route_list(),
                rules: cfg.static_rule_list(),
            },
            down: HashSet::new(),
        }
    }

    /// `self`, remembering which interfaces `old` saw down.
    pub fn keeping_links_of(mut self, old: &Self) -> Self {
        self.down = old.down.clone();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.set.is_empty()
    }

    /// Adds everything: addresses, routes, rules. Failures are logged (keepalived goes on
    /// too: a route to an interface that is not there yet is not fatal).
    pub async fn add(&self, handle: &Handle) {
        if self.is_empty() {
            return;
        }
        // The addresses carry their `dev`: the default index is never used.
        if let Err(e) = vip::add_vips(handle, 0, &self.addresses).await {
            error!("adding static_ipaddress: {e:#}");
        }
        let errors = self.set.add(handle).await;
        for e in &errors {
            error!("adding static routes/rules: {e:#}");
        }
        info!(
            addresses = self.addresses.len(),
            routes = self.set.routes.len(),
            rules = self.set.rules.len(),
            failed = errors.len(),
            "static addresses, routes and rules added"
        );
    }

    /// Removes everything: rules, routes, addresses.
    pub async fn remove(&self, handle: &Handle) {
        if self.is_empty() {
            return;
        }
        for e in self.set.remove(handle).await {
            warn!("removing static routes/rules: {e:#}");
        }
        if let Err(e) = vip::remove_vips(handle, 0, &self.addresses).await {
            warn!("removing static_ipaddress: {e:#}");
        }
        info!("static addresses, routes and rules removed");
    }

    /// A reload from `self` to `new`: what went is removed, what came is added; entries
    /// in both are not touched.
    pub async fn reload(&self, new: &Self, handle: &Handle) {
        let gone = Self {
            addresses: (self.addresses.iter())
                .filter(|a| !new.addresses.contains(a))
                .cloned()
                .collect(),
            set: self.set.minus(&new.set),
            down: HashSet::new(),
        };
        let added = Self {
            addresses: (new.addresses.iter())
                .filter(|a| !self.addresses.contains(a))
                .cloned()
                .collect(),
            set: new.set.minus(&self.set),
            down: HashSet::new(),
        };
        // What changes is logged with the reload's plan (`crate::diff`).
        gone.remove(handle).await;
        added.add(handle).await;
    }

    /// A link changed. An interface the entries name that comes back up after being
    /// down has lost its routes (the kernel removes them without telling, and with an
    /// address removed, the routes using it): everything is added again (what is still
    /// there stays as it is), as keepalived does when an interface comes up.
    pub async fn on_link(&mut self, ev: &LinkEvent, handle: &Handle) {
        let Some(name) = ev.name.as_deref() else {
            return;
        };
        let named = self
            .addresses
            .iter()
            .any(|a| a.dev.as_deref() == Some(name))
            || self
                .set
                .routes
                .iter()
                .any(|r| r.devices().any(|d| d == name));
        if !named {
            return;
        }
        if !ev.up {
            self.down.insert(name.to_owned());
        } else if self.down.remove(name) {
            info!(
                interface = name,
                "interface up again: adding the static entries again"
            );
            self.add(handle).await;
        }
    }

    /// Someone removed a route, rule or address: if it is one of ours (not `no_track`),
    /// it goes back.
    pub async fn on_removed(&self, removal: &StaticRemoval, handle: &Handle) {
        match removal {
            StaticRemoval::Routing(Removed::Route(m)) => {
                for r in self
                    .set
                    .routes
                    .iter()
                    .filter(|r| !r.no_track && is_route(m, r))
                {
                    error!("static route {r} removed by someone else; restoring");
                    if let Err(e) = crate::netlink::route::add_route(handle, r).await {
                        error!("restoring static route {r}: {e:#}");
                    }
                }
            }
            StaticRemoval::Routing(Removed::Rule(m)) => {
                for r in self
                    .set
                    .rules
                    .iter()
                    .filter(|r| !r.no_track && is_rule(m, r))
                {
                    error!("static rule {r} removed by someone else; restoring");
                    if let Err(e) = crate::netlink::route::add_rule(handle, r).await {
                        error!("restoring static rule {r}: {e:#}");
                    }
                }
            }
            StaticRemoval::Address(a) => {
                for s in self.addresses.iter().filter(|s| {
                    s.addr == a.addr
                        && s.prefix_len == a.prefix_len
                        && s.dev.as_deref() == Some(a.interface.as_str())
                }) {
                    error!(
                        "static_ipaddress {}/{} removed from {} by someone else; restoring",
                        s.addr, s.prefix_len, a.interface
                    );
                    if let Err(e) = vip::add_vips(handle, 0, std::slice::from_ref(s)).await {
                        error!("restoring static_ipaddress {s}: {e:#}");
                    }
                }
            }
        }
    }
}
