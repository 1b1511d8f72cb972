//! What a reload from one config to another would change: [`diff`]`(running, new)` gives
//! a [`ReloadPlan`], which [`ReloadPlan::render`] prints for people and serde serializes
//! for programs. `xlb check --diff RUNNING -c NEW` prints it for two files; the daemon
//! can give it for its running config. Pure: two parsed configs in, no host, no maps.
//!
//! It says what the daemon does with the same rules the daemon uses:
//! - VRRP instances (matched by name) are kept, changed in place with the settings
//!   that change (a MASTER stays MASTER), restarted (new virtual router id, interface,
//!   version or family), added or removed, by [`ReloadAction::of`], the rule the daemon
//!   applies; with the VIPs each adds or removes.
//! - Virtual services (matched by address, port and protocol) are added, removed or
//!   changed; their real servers (matched by address and port) added, removed, given a
//!   new weight, or changed otherwise (checks, ...).
//! - For each changed `sh` / `mh` service, the share of new flows whose real server
//!   changes: both tables are built with the data plane's own scheduler code
//!   ([`build_table_in`]) from every real server at its configured weight (health is not
//!   known to a file), and compared slot by slot; tables of different sizes (the `mh`
//!   size follows the server count) are compared over 2^20 flow hashes spread evenly
//!   over every residue of either size.
//!   Established connections are not in that share: the connection table keeps them on
//!   their real server whatever the tables say.

use std::{fmt::Write as _, net::SocketAddr};

use lb_common::{SchedAlgo, addr_of};
use serde::Serialize;

use crate::{
    config::{Config, RealServerConfig, VirtualServer},
    dataplane::sched::{Candidate, build_table_in},
    vrrp::instance::{ReloadAction, specs},
};

/// Everything a reload from one config to another changes (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReloadPlan {
    /// Every instance of either config, in the new config's order, removed ones last.
    pub instances: Vec<InstanceDiff>,
    /// The services that change, in the new config's order, removed ones last.
    pub services: Vec<ServiceDiff>,
    /// How many services stay exactly as they are.
    pub services_unchanged: usize,
    /// What `global_defs` changes mean for the data plane and the daemon.
    pub global_defs: Vec<&'static str>,
    /// `vrrp_sync_group`s added, removed or changed (their members' own changes are in
    /// `instances`): one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sync_groups: Vec<String>,
    /// `static_ipaddress` / `static_routes` / `static_rules` entries added and removed
    /// (`address ...`, `route ...`, `rule ...`); the others are not touched.
    pub statics_added: Vec<String>,
    pub statics_removed: Vec<String>,
    /// What a changed `[sync]` does (connection sync), if it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_sync: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceDiff {
    pub name: String,
    #[serde(flatten)]
    pub action: InstanceAction,
    /// VIPs (as written in `virtual_ipaddress`) the reload adds / removes.
    pub vips_added: Vec<String>,
    pub vips_removed: Vec<String>,
    /// `virtual_routes` / `virtual_rules` entries (`route ...`, `rule ...`) a running
    /// instance adds / removes (while MASTER).
    pub routes_added: Vec<String>,
    pub routes_removed: Vec<String>,
}

/// What a reload does to one VRRP instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum InstanceAction {
    /// Nothing changes.
    Kept,
    /// New settings applied to the running instance; it keeps its state.
    InPlace {
        changes: Vec<&'static str>,
    },
    /// Stopped (a MASTER resigns) and started again.
    Restart {
        reason: String,
    },
    Added,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceDiff {
    /// `ip:port/PROTO`.
    pub service: String,
    #[serde(flatten)]
    pub action: ServiceAction,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ServiceAction {
    Added {
        real_servers: usize,
    },
    Removed {
        real_servers: usize,
    },
    Changed {
        /// Service settings that change (`lb_algo`, `persistence_timeout`, ...).
        settings: Vec<&'static str>,
        real_servers: Vec<RealDiff>,
        /// For `sh` / `mh`: how much of the scheduling changes.
        #[serde(skip_serializing_if = "Option::is_none")]
        table: Option<TableMove>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RealDiff {
    /// `ip:port`.
    pub real_server: String,
    #[serde(flatten)]
    pub action: RealAction,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RealAction {
    Added {
        weight: u32,
    },
    Removed {
        weight: u32,
    },
    Weight {
        from: u32,
        to: u32,
    },
    /// Checks or other settings; the scheduling does not change.
    Changed,
}

/// How an `sh` / `mh` service's scheduling changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableMove {
    pub lb_algo: &'static str,
    pub slots_from: usize,
    pub slots_to: usize,
    /// The share of new flows (0..=1) whose real server changes.
    pub moved: f64,
}

/// What a reload from `running` to `new` changes.
pub fn diff(running: &Config, new: &Config) -> ReloadPlan {
    let mut plan = ReloadPlan {
        instances: instances(running, new),
        global_defs: global_defs(running, new),
        sync_groups: sync_groups(running, new),
        statics_added: statics(new, running),
        statics_removed: statics(running, new),
        conn_sync: conn_sync(running, new),
        ..ReloadPlan::default()
    };
    for vs in &new.virtual_server {
        match find_service(running, vs) {
            None => plan.services.push(ServiceDiff {
                service: vs.service_name(),
                action: ServiceAction::Added {
                    real_servers: vs.real_server.len(),
                },
            }),
            Some(old) if old == vs => plan.services_unchanged += 1,
            Some(old) => plan.services.push(ServiceDiff {
                service: vs.service_name(),
                action: changed_service(old, vs),
            }),
        }
    }
    for old in &running.virtual_server {
        if find_service(new, old).is_none() {
            plan.services.push(ServiceDiff {
                service: old.service_name(),
                action: ServiceAction::Removed {
                    real_servers: old.real_server.len(),
                },
            });
        }
    }
    plan
}

fn global_defs(running: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&running.global_defs, &new.global_defs);
    let mut out = Vec::new();
    if a.lvs_timeouts != b.lvs_timeouts {
        out.push(
            "lvs_timeouts: the XDP program is reloaded in place (connections and tables kept)",
        );
    }
    if a.connection_table_size < b.connection_table_size {
        out.push(
            "connection_table_size raised: the connection tables may grow up to the new \
             maximum (no teardown, connections kept)",
        );
    } else if a.connection_table_size > b.connection_table_size {
        out.push(
            "connection_table_size lowered: the tables stop growing at the new maximum; \
             tables already bigger keep their size (a pinned table never shrinks)",
        );
    }
    if a.connection_table_start_size != b.connection_table_start_size {
        out.push(
            "connection_table_start_size: applies to tables created after `xlb teardown` \
             (pinned tables keep their size and grow from it)",
        );
    }
    let mut rest = a.clone();
    rest.lvs_timeouts = b.lvs_timeouts;
    rest.connection_table_size = b.connection_table_size;
    rest.connection_table_start_size = b.connection_table_start_size;
    if rest != *b {
        out.push("other settings (notifications, scripts, VRRP defaults): taken as they are");
    }
    out
}

/// A changed `[sync]`: the sync task is replaced in place (VRRP and the data plane are
/// not touched).
fn conn_sync(running: &Config, new: &Config) -> Option<&'static str> {
    match (&running.sync, &new.sync) {
        (a, b) if a == b => None,
        (None, Some(_)) => Some("sync: connection sync starts"),
        (Some(_), None) => Some("sync: connection sync stops"),
        _ => Some(
            "sync: changed in place (the sync task restarts; a master sends its table again, \
             paced)",
        ),
    }
}

/// The sync groups a reload adds, removes or changes, as `xlb check --diff` prints them.
/// Groups change in place: their members keep their states.
fn sync_groups(running: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for g in &new.vrrp_sync_group {
        match running.vrrp_sync_group.iter().find(|o| o.name == g.name) {
            None => out.push(format!(
                "vrrp_sync_group {}: added ({})",
                g.name,
                g.group.join(", ")
            )),
            Some(o) if o != g => {
                let mut what = Vec::new();
                if o.group != g.group {
                    what.push(format!(
                        "members {} -> {}",
                        o.group.join(", "),
                        g.group.join(", ")
                    ));
                }
                if (
                    &o.track_interface,
                    &o.track_script,
                    o.sync_group_tracking_weight,
                ) != (
                    &g.track_interface,
                    &g.track_script,
                    g.sync_group_tracking_weight,
                ) {
                    what.push("tracking".to_owned());
                }
                let mut notify = o.clone();
                notify.group = g.group.clone();
                notify.track_interface = g.track_interface.clone();
                notify.track_script = g.track_script.clone();
                notify.sync_group_tracking_weight = g.sync_group_tracking_weight;
                if &notify != g {
                    what.push("notify".to_owned());
                }
                out.push(format!(
                    "vrrp_sync_group {}: changed in place, member states kept: {}",
                    g.name,
                    what.join(", ")
                ));
            }
            Some(_) => {}
        }
    }
    for o in &running.vrrp_sync_group {
        if !new.vrrp_sync_group.iter().any(|g| g.name == o.name) {
            out.push(format!(
                "vrrp_sync_group {}: removed (its members go on, each on its own)",
                o.name
            ));
        }
    }
    out
}

/// The static entries of `a` that `b` lacks.
fn statics(a: &Config, b: &Config) -> Vec<String> {
    let mut out: Vec<String> = (a.static_addresses().into_iter())
        .filter(|x| !b.static_addresses().contains(x))
        .map(|x| format!("address {x}"))
        .collect();
    out.extend(
        (a.static_route_list().into_iter())
            .filter(|x| !b.static_route_list().contains(x))
            .map(|x| format!("route {x}")),
    );
    out.extend(
        (a.static_rule_list().into_iter())
            .filter(|x| !b.static_rule_list().contains(x))
            .map(|x| format!("rule {x}")),
    );
    out
}

/// The virtual routes and rules of `a` that `b` lacks.
fn route_lines(
    a: &crate::netlink::route::RouteSet,
    b: &crate::netlink::route::RouteSet,
) -> Vec<String> {
    let gone = a.minus(b);
    (gone.routes.iter().map(|r| format!("route {r}")))
        .chain(gone.rules.iter().map(|r| format!("rule {r}")))
        .collect()
}

fn instances(running: &Config, new: &Config) -> Vec<InstanceDiff> {
    let old_specs = specs(running);
    let new_specs = specs(new);
    let shown = |vips: &[crate::config::VirtualIpAddress],
                 other: &[crate::config::VirtualIpAddress]| {
        vips.iter()
            .filter(|v| !other.contains(v))
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    for s in &new_specs {
        let old = old_specs.iter().find(|o| o.name == s.name);
        let (routes_added, routes_removed) = match old {
            Some(o) => (
                route_lines(&s.routes, &o.routes),
                route_lines(&o.routes, &s.routes),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let (action, added, removed) = match old {
            None => (InstanceAction::Added, shown(&s.vips, &[]), Vec::new()),
            Some(o) => {
                let action = match ReloadAction::of(o, Some(s)) {
                    ReloadAction::Keep => InstanceAction::Kept,
                    ReloadAction::InPlace(changes) => InstanceAction::InPlace { changes },
                    ReloadAction::Restart(reason) => InstanceAction::Restart { reason },
                    ReloadAction::Remove => InstanceAction::Removed,
                };
                (action, shown(&s.vips, &o.vips), shown(&o.vips, &s.vips))
            }
        };
        out.push(InstanceDiff {
            name: s.name.clone(),
            action,
            vips_added: added,
            vips_removed: removed,
            routes_added,
            routes_removed,
        });
    }
    for o in old_specs
        .iter()
        .filter(|o| !new_specs.iter().any(|s| s.name == o.name))
    {
        out.push(InstanceDiff {
            name: o.name.clone(),
            action: InstanceAction::Removed,
            vips_added: Vec::new(),
            vips_removed: shown(&o.vips, &[]),
            routes_added: Vec::new(),
            routes_removed: Vec::new(),
        });
    }
    out
}

/// `vs` in `config`: a fwmark service by its mark, any other by ip:port/protocol.
fn find_service<'c>(config: &'c Config, vs: &VirtualServer) -> Option<&'c VirtualServer> {
    (config.virtual_server.iter()).find(|o| match vs.fwmark {
        Some(mark) => o.fwmark == Some(mark),
        None => o.fwmark.is_none() && (o.ip, o.port, o.protocol) == (vs.ip, vs.port, vs.protocol),
    })
}

fn find_real<'c>(vs: &'c VirtualServer, r: &RealServerConfig) -> Option<&'c RealServerConfig> {
    vs.real_server
        .iter()
        .find(|o| (o.ip, o.port) == (r.ip, r.port))
}

fn real_name(r: &RealServerConfig) -> String {
    SocketAddr::new(r.ip, r.port).to_string()
}

fn changed_service(old: &VirtualServer, new: &VirtualServer) -> ServiceAction {
    let mut settings = Vec::new();
    let mut differs = |name, differ: bool| {
        if differ {
            settings.push(name);
        }
    };
    differs("lb_algo", old.lb_algo != new.lb_algo);
    differs("match", old.fwmark_match != new.fwmark_match);
    differs(
        "persistence_timeout",
        old.persistence_timeout != new.persistence_timeout,
    );
    differs("hash_port", old.hash_port != new.hash_port);
    // In place: existing flows keep their real server, their next packets rewritten the
    // new way (replies are translated only for flows that started as NAT).
    differs("lb_kind", old.lb_kind != new.lb_kind);
    differs("interface", old.interface != new.interface);
    differs(
        "quorum",
        (old.quorum, old.hysteresis) != (new.quorum, new.hysteresis),
    );
    differs("sorry_server", old.sorry_server != new.sorry_server);
    // In place: the VIP's host route is added or removed (`daemon::announcer`).
    differs("announce", old.announce != new.announce);
    let mut reals = Vec::new();
    for r in &new.real_server {
        let action = match find_real(old, r) {
            None => Some(RealAction::Added { weight: r.weight }),
            Some(o) if o.weight != r.weight => Some(RealAction::Weight {
                from: o.weight,
                to: r.weight,
            }),
            Some(o) if o != r => Some(RealAction::Changed),
            Some(_) => None,
        };
        if let Some(action) = action {
            reals.push(RealDiff {
                real_server: real_name(r),
                action,
            });
        }
    }
    for o in &old.real_server {
        if find_real(new, o).is_none() {
            reals.push(RealDiff {
                real_server: real_name(o),
                action: RealAction::Removed { weight: o.weight },
            });
        }
    }
    let mut rest = old.clone();
    rest.real_server.clone_from(&new.real_server);
    if settings.is_empty() && reals.is_empty() && rest != *new {
        settings.push("other settings");
    }
    ServiceAction::Changed {
        settings,
        real_servers: reals,
        table: table_move(old, new),
    }
}

/// Flow hashes sampled when two tables differ in size.
const SAMPLES: u64 = 1 << 20;

/// How much of an `sh` / `mh` service's scheduling changes from `old` to `new` (both
/// hashed, by client: `None` otherwise).
fn table_move(old: &VirtualServer, new: &VirtualServer) -> Option<TableMove> {
    let hashed = |a: SchedAlgo| matches!(a, SchedAlgo::Sh | SchedAlgo::Mh);
    let (a, b) = (old.lb_algo.sched_algo(), new.lb_algo.sched_algo());
    if !hashed(a) || !hashed(b) {
        return None;
    }
    // One index per real server of either config, so both tables name servers alike.
    let mut keys: Vec<(std::net::IpAddr, u16)> = Vec::new();
    for r in old.real_server.iter().chain(&new.real_server) {
        if !keys.contains(&(r.ip, r.port)) {
            keys.push((r.ip, r.port));
        }
    }
    let table = |vs: &VirtualServer, algo| {
        let candidates: Vec<Candidate> = (vs.real_server.iter())
            .map(|r| Candidate {
                index: keys.iter().position(|k| *k == (r.ip, r.port)).unwrap_or(0) as u32,
                addr: addr_of(r.ip),
                port: r.port,
                weight: r.weight,
            })
            .collect();
        build_table_in(algo, &candidates, candidates.len())
    };
    let (from, to) = (table(old, a), table(new, b));
    let moved = if old.hash_port != new.hash_port {
        // Another hash input: every flow is placed anew.
        1.0
    } else {
        moved_share(&from, &to)
    };
    Some(TableMove {
        lb_algo: new.lb_algo.as_str(),
        slots_from: from.len(),
        slots_to: to.len(),
        moved,
    })
}

/// The share of flow hashes whose entry differs between the two tables (a flow hash `h`
/// takes slot `h % len`). An empty table sends nothing anywhere: against a non-empty one,
/// every flow changes.
fn moved_share(from: &[u32], to: &[u32]) -> f64 {
    match (from.len(), to.len()) {
        (0, 0) => 0.0,
        (0, _) | (_, 0) => 1.0,
        (a, b) if a == b => {
            let moved = from.iter().zip(to).filter(|(x, y)| x != y).count();
            moved as f64 / a as f64
        }
        (a, b) => {
            // Spread over the 32-bit hash space by an odd multiplier (Knuth's), so every
            // residue of a power-of-two or prime size is visited evenly.
            let moved = (0..SAMPLES)
                .map(|i| (i * 2_654_435_761) & 0xffff_ffff)
                .filter(|h| from[(h % a as u64) as usize] != to[(h % b as u64) as usize])
                .count();
            moved as f64 / SAMPLES as f64
        }
    }
}

impl ReloadPlan {
    /// Whether the reload changes nothing.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
            && self.global_defs.is_empty()
            && self.sync_groups.is_empty()
            && self.statics_added.is_empty()
            && self.statics_removed.is_empty()
            && self.conn_sync.is_none()
            && (self.instances.iter()).all(|i| i.action == InstanceAction::Kept)
    }

    /// The plan for people, one line per change.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.is_empty() {
            out.push_str("no change\n");
            return out;
        }
        for g in &self.global_defs {
            let _ = writeln!(out, "global_defs {g}");
        }
        for g in &self.sync_groups {
            let _ = writeln!(out, "{g}");
        }
        if let Some(c) = self.conn_sync {
            let _ = writeln!(out, "{c}");
        }
        for a in &self.statics_added {
            let _ = writeln!(out, "static {a}: added");
        }
        for r in &self.statics_removed {
            let _ = writeln!(out, "static {r}: removed");
        }
        for i in &self.instances {
            let what = match &i.action {
                InstanceAction::Kept => "kept".to_string(),
                InstanceAction::InPlace { changes } => {
                    format!("changed in place, state kept: {}", changes.join(", "))
                }
                InstanceAction::Restart { reason } => {
                    format!(
                        "RESTARTED ({reason}): a MASTER resigns, the VIPs move for about a second"
                    )
                }
                InstanceAction::Added => "added".to_string(),
                InstanceAction::Removed => "removed (a MASTER resigns)".to_string(),
            };
            let _ = writeln!(out, "vrrp_instance {}: {what}", i.name);
            for v in &i.vips_added {
                let _ = writeln!(out, "  + VIP {v}");
            }
            for v in &i.vips_removed {
                let _ = writeln!(out, "  - VIP {v}");
            }
            for r in &i.routes_added {
                let _ = writeln!(out, "  + {r}");
            }
            for r in &i.routes_removed {
                let _ = writeln!(out, "  - {r}");
            }
        }
        for s in &self.services {
            match &s.action {
                ServiceAction::Added { real_servers } => {
                    let _ = writeln!(
                        out,
                        "virtual_server {}: added ({real_servers} real servers)",
                        s.service
                    );
                }
                ServiceAction::Removed { real_servers } => {
                    let _ = writeln!(
                        out,
                        "virtual_server {}: removed ({real_servers} real servers; its connections end)",
                        s.service
                    );
                }
                ServiceAction::Changed {
                    settings,
                    real_servers,
                    table,
                } => {
                    let _ = write!(out, "virtual_server {}: changed", s.service);
                    if !settings.is_empty() {
                        let _ = write!(out, " ({})", settings.join(", "));
                    }
                    out.push('\n');
                    for r in real_servers {
                        let line = match r.action {
                            RealAction::Added { weight } => {
                                format!("+ {} weight {weight}", r.real_server)
                            }
                            RealAction::Removed { weight } => {
                                format!("- {} weight {weight} (its connections end)", r.real_server)
                            }
                            RealAction::Weight { from, to } => {
                                format!("~ {} weight {from} -> {to}", r.real_server)
                            }
                            RealAction::Changed => {
                                format!("~ {} checks or settings", r.real_server)
                            }
                        };
                        let _ = writeln!(out, "  {line}");
                    }
                    if let Some(t) = table {
                        let _ = write!(
                            out,
                            "  {} table {} -> {} slots: {:.1}% of new flows change real server",
                            t.lb_algo,
                            t.slots_from,
                            t.slots_to,
                            t.moved * 100.0
                        );
                        if t.slots_from != t.slots_to {
                            out.push_str(" (table resized)");
                        }
                        out.push('\n');
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "{} virtual server(s) unchanged; established connections of kept real servers stay where they are",
            self.services_unchanged
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTANCE: &str = "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n\
                            virtual_router_id = 51\n";

    fn config(text: &str) -> Config {
        Config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// VI_1 with `vrrp` lines, then 198.18.0.100:80 (`algo`) with servers .1 to .`n`
    /// (weights 1), then `more`.
    fn lab(vrrp: &str, algo: &str, n: u8, more: &str) -> Config {
        let mut t = format!("{INSTANCE}{vrrp}\n");
        t.push_str(&format!(
            "[[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\nlb_algo = \"{algo}\"\n"
        ));
        for i in 1..=n {
            t.push_str(&format!(
                "[[virtual_server.real_server]]\nip = \"198.18.1.{i}\"\nport = 80\n"
            ));
        }
        t.push_str(more);
        config(&t)
    }

    const ONE_VIP: &str = "priority = 150\nvirtual_ipaddress = [\"198.18.0.100/24\"]";
    const OTHER: &str = "[[virtual_server]]\nip = \"198.18.0.100\"\nport = 443\n\
                         [[virtual_server.real_server]]\nip = \"198.18.1.9\"\nport = 443\n";

    #[test]
    fn a_change_of_lb_kind_is_named() {
        let running = lab(ONE_VIP, "rr", 2, "");
        let nat = {
            let mut c = running.clone();
            c.virtual_server[0].lb_kind = crate::config::LbKind::Nat;
            c
        };
        let plan = diff(&running, &nat);
        assert_eq!(
            plan.services[0].action,
            ServiceAction::Changed {
                settings: vec!["lb_kind"],
                real_servers: vec![],
                table: None,
            }
        );
    }

    #[test]
    fn announcing_by_bgp_is_a_service_change() {
        let running = lab(ONE_VIP, "rr", 2, "");
        let bgp = {
            let mut c = running.clone();
            c.virtual_server[0].announce = Some(crate::config::AnnounceMode::Bgp);
            c
        };
        assert_eq!(
            diff(&running, &bgp).services[0].action,
            ServiceAction::Changed {
                settings: vec!["announce"],
                real_servers: vec![],
                table: None,
            }
        );
    }

    #[test]
    fn a_change_of_track_reference_applies_in_place() {
        let running = lab(ONE_VIP, "rr", 1, "");
        let with = lab(
            &format!("{ONE_VIP}\ntrack_reference = {{ addresses = [\"198.18.0.254\"] }}"),
            "rr",
            1,
            "",
        );
        for (a, b) in [(&running, &with), (&with, &running)] {
            let plan = diff(a, b);
            assert_eq!(
                plan.instances[0].action,
                InstanceAction::InPlace {
                    changes: vec!["track_reference"]
                }
            );
            assert!(
                plan.render()
                    .contains("vrrp_instance VI_1: changed in place, state kept: track_reference"),
                "{}",
                plan.render()
            );
        }
    }

    #[test]
    fn the_same_config_changes_nothing() {
        let c = lab(ONE_VIP, "mh", 3, OTHER);
        let plan = diff(&c, &c);
        assert!(plan.is_empty());
        assert_eq!(plan.services_unchanged, 2);
        assert_eq!(plan.render(), "no change\n");
    }

    #[test]
    fn instances_changed_in_place_restarted_added_and_removed() {
        let running = lab(ONE_VIP, "rr", 1, "");
        let new = lab(
            "priority = 100\nvirtual_ipaddress = [\"198.18.0.100/24\", \"198.18.0.101/24\"]\n\
             [[vrrp_instance]]\nname = \"VI_2\"\ninterface = \"eth0\"\nvirtual_router_id = 52\n\
             virtual_ipaddress = [\"198.18.0.200/24\"]",
            "rr",
            1,
            "",
        );
        let plan = diff(&running, &new);
        assert_eq!(
            plan.instances[0],
            InstanceDiff {
                name: "VI_1".into(),
                action: InstanceAction::InPlace {
                    changes: vec!["priority", "virtual_ipaddress"]
                },
                vips_added: vec!["198.18.0.101/24".into()],
                vips_removed: vec![],
                routes_added: vec![],
                routes_removed: vec![],
            }
        );
        assert_eq!(plan.instances[1].action, InstanceAction::Added);
        assert_eq!(plan.instances[1].vips_added, ["198.18.0.200/24"]);
        // Back: VI_2 goes, VI_1 loses a VIP.
        let back = diff(&new, &running);
        assert_eq!(back.instances[0].vips_removed, ["198.18.0.101/24"]);
        assert_eq!(back.instances[1].action, InstanceAction::Removed);
        // A new VRID restarts.
        let vrid = config(
            &format!("{INSTANCE}{ONE_VIP}\n")
                .replace("virtual_router_id = 51", "virtual_router_id = 61"),
        );
        let plan = diff(&config(&format!("{INSTANCE}{ONE_VIP}\n")), &vrid);
        assert_eq!(
            plan.instances[0].action,
            InstanceAction::Restart {
                reason: "virtual_router_id 51 -> 61".into()
            }
        );
        assert!(
            plan.render()
                .contains("vrrp_instance VI_1: RESTARTED (virtual_router_id 51 -> 61)")
        );
    }

    #[test]
    fn services_and_real_servers_added_removed_and_reweighted() {
        let running = lab(ONE_VIP, "wrr", 3, OTHER);
        let text = |w3: &str| {
            format!(
                "{INSTANCE}{ONE_VIP}\n[[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\n\
                 lb_algo = \"wrr\"\npersistence_timeout = 60\n\
                 [[virtual_server.real_server]]\nip = \"198.18.1.1\"\nport = 80\n\
                 [[virtual_server.real_server]]\nip = \"198.18.1.2\"\nport = 80\nweight = 3\n\
                 {w3}\
                 [[virtual_server]]\nip = \"198.18.0.100\"\nport = 53\nprotocol = \"UDP\"\n\
                 [[virtual_server.real_server]]\nip = \"198.18.1.9\"\nport = 53\n"
            )
        };
        let new = config(&text(
            "[[virtual_server.real_server]]\nip = \"198.18.1.4\"\nport = 80\nweight = 2\n",
        ));
        let plan = diff(&running, &new);
        assert_eq!(plan.services_unchanged, 0);
        let names: Vec<_> = plan.services.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(
            names,
            [
                "198.18.0.100:80/TCP",
                "198.18.0.100:53/UDP",
                "198.18.0.100:443/TCP"
            ]
        );
        assert_eq!(
            plan.services[0].action,
            ServiceAction::Changed {
                settings: vec!["persistence_timeout"],
                real_servers: vec![
                    RealDiff {
                        real_server: "198.18.1.2:80".into(),
                        action: RealAction::Weight { from: 1, to: 3 }
                    },
                    RealDiff {
                        real_server: "198.18.1.4:80".into(),
                        action: RealAction::Added { weight: 2 }
                    },
                    RealDiff {
                        real_server: "198.18.1.3:80".into(),
                        action: RealAction::Removed { weight: 1 }
                    },
                ],
                table: None,
            }
        );
        assert_eq!(
            plan.services[1].action,
            ServiceAction::Added { real_servers: 1 }
        );
        assert_eq!(
            plan.services[2].action,
            ServiceAction::Removed { real_servers: 1 }
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["services"][0]["action"], "changed");
        assert_eq!(json["services"][0]["real_servers"][0]["action"], "weight");
        assert_eq!(json["services"][0]["real_servers"][0]["to"], 3);
        assert_eq!(json["instances"][0]["action"], "kept");
        let text = plan.render();
        assert!(text.contains("  ~ 198.18.1.2:80 weight 1 -> 3\n"), "{text}");
        assert!(text.contains("  + 198.18.1.4:80 weight 2\n"), "{text}");
    }

    #[test]
    fn a_fwmark_service_is_followed_by_its_mark() {
        let fwm = |m: &str| {
            format!(
                "[[virtual_server]]\nfwmark = 1\nmatch = [{m}]\npersistence_timeout = 60\n\
                 [[virtual_server.real_server]]\nip = \"198.18.1.9\"\n"
            )
        };
        let running = lab(ONE_VIP, "wrr", 1, &fwm("\"198.18.0.100:443\""));
        let new = lab(
            ONE_VIP,
            "wrr",
            1,
            &fwm("\"198.18.0.100:443\", \"198.18.0.100:8443\""),
        );
        let plan = diff(&running, &new);
        assert_eq!(plan.services_unchanged, 1);
        assert_eq!(plan.services.len(), 1, "{plan:?}");
        assert_eq!(plan.services[0].service, "FWM 1 (198.18.0.100:443/TCP)");
        assert_eq!(
            plan.services[0].action,
            ServiceAction::Changed {
                settings: vec!["match"],
                real_servers: Vec::new(),
                table: None,
            }
        );
        // A new first entry is still the same service.
        let moved = lab(ONE_VIP, "wrr", 1, &fwm("\"198.18.0.100:8443\""));
        let plan = diff(&running, &moved);
        assert_eq!(plan.services.len(), 1, "{plan:?}");
        assert!(matches!(
            plan.services[0].action,
            ServiceAction::Changed { .. }
        ));
    }

    #[test]
    fn the_share_of_moved_flows_is_measured_on_the_real_tables() {
        // mh, 10 -> 11 servers: the table keeps its 16,381 slots and the new server
        // takes about 1/11 of them.
        let plan = diff(&lab(ONE_VIP, "mh", 10, ""), &lab(ONE_VIP, "mh", 11, ""));
        let ServiceAction::Changed { table: Some(t), .. } = &plan.services[0].action else {
            panic!("{plan:?}")
        };
        assert_eq!((t.lb_algo, t.slots_from, t.slots_to), ("mh", 16381, 16381));
        assert!((0.085..0.11).contains(&t.moved), "{}", t.moved);
        // A weight change: only part of one server's share.
        let heavier = lab(ONE_VIP, "mh", 10, "").clone();
        let mut heavier_text = heavier.clone();
        heavier_text.virtual_server[0].real_server[0].weight = 2;
        let plan = diff(&heavier, &heavier_text);
        let ServiceAction::Changed { table: Some(t), .. } = &plan.services[0].action else {
            panic!("{plan:?}")
        };
        assert!(t.moved > 0.05 && t.moved < 0.15, "{}", t.moved);
        // 4 -> 5 servers crosses a table size: almost every flow moves, and it says so.
        let plan = diff(&lab(ONE_VIP, "mh", 4, ""), &lab(ONE_VIP, "mh", 5, ""));
        let ServiceAction::Changed { table: Some(t), .. } = &plan.services[0].action else {
            panic!("{plan:?}")
        };
        assert_eq!((t.slots_from, t.slots_to), (4093, 8191));
        assert!(t.moved > 0.7, "{}", t.moved);
        assert!(plan.render().contains("(table resized)"));
        // sh: one of four servers removed moves its quarter, and the others shift.
        let plan = diff(&lab(ONE_VIP, "sh", 4, ""), &lab(ONE_VIP, "sh", 3, ""));
        let ServiceAction::Changed { table: Some(t), .. } = &plan.services[0].action else {
            panic!("{plan:?}")
        };
        assert!(t.moved >= 0.25, "{}", t.moved);
        // Not hashed by client: no share (the counting schedulers place by counts, dh
        // by the VIP).
        for algo in ["wrr", "wlc", "lc", "sed", "nq", "ovf", "twos", "fo", "dh"] {
            let plan = diff(&lab(ONE_VIP, algo, 4, ""), &lab(ONE_VIP, algo, 5, ""));
            assert!(
                matches!(
                    plan.services[0].action,
                    ServiceAction::Changed { table: None, .. }
                ),
                "{algo}"
            );
        }
    }

    #[test]
    fn a_changed_sync_table_is_said_once() {
        let running = Config::default();
        let mut new = running.clone();
        new.sync = Some(crate::config::sync::SyncConfig::for_instance("VI_1"));
        let text = diff(&running, &new).render();
        assert!(text.starts_with("sync: connection sync starts\n"), "{text}");
        let mut changed = new.clone();
        changed.sync.as_mut().unwrap().id = 5;
        assert!(
            diff(&new, &changed)
                .render()
                .starts_with("sync: changed in place")
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn global_defs_changes_say_what_they_mean() {
        let running = lab(ONE_VIP, "rr", 1, "");
        let mut new = running.clone();
        new.global_defs.lvs_timeouts.tcp += 1.0;
        new.global_defs.connection_table_size /= 2;
        let plan = diff(&running, &new);
        assert!(!plan.is_empty());
        assert_eq!(plan.global_defs.len(), 2, "{:?}", plan.global_defs);
        assert!(
            plan.render()
                .starts_with("global_defs lvs_timeouts: the XDP program is reloaded")
        );
        assert!(
            plan.render()
                .contains("connection_table_size lowered: the tables stop growing"),
            "{}",
            plan.render()
        );
        new = running.clone();
        new.global_defs.connection_table_size *= 2;
        new.global_defs.connection_table_start_size *= 2;
        let plan = diff(&running, &new);
        assert_eq!(plan.global_defs.len(), 2, "{:?}", plan.global_defs);
        assert!(
            plan.render().contains(
                "connection_table_size raised: the connection tables may grow up to the new \
                 maximum (no teardown, connections kept)"
            ),
            "{}",
            plan.render()
        );
        assert!(
            plan.render()
                .contains("connection_table_start_size: applies to tables created after")
        );
        new = running.clone();
        new.global_defs.router_id = Some("LVS_02".into());
        assert_eq!(diff(&running, &new).global_defs.len(), 1);
    }

    #[test]
    fn moved_share_of_tables() {
        assert_eq!(moved_share(&[], &[]), 0.0);
        assert_eq!(moved_share(&[1, 2], &[]), 1.0);
        assert_eq!(moved_share(&[1, 2, 3, 4], &[1, 2, 3, 5]), 0.25);
        // Different sizes: h % 2 against h % 4 over evenly spread hashes.
        assert_eq!(moved_share(&[1, 2], &[1, 2, 1, 2]), 0.0);
        assert_eq!(moved_share(&[1, 2], &[1, 2, 3, 3]), 0.5);
    }

    #[test]
    fn sync_groups_added_changed_and_removed() {
        let two = format!(
            "{INSTANCE}[[vrrp_instance]]\nname = \"VI_2\"\ninterface = \"eth1\"\n\
             virtual_router_id = 52\n"
        );
        let a = Config::parse(&two, "a.toml").unwrap();
        let b = Config::parse(
            &format!("{two}[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\", \"VI_2\"]\n"),
            "b.toml",
        )
        .unwrap();
        let c = Config::parse(
            &format!(
                "{two}[[vrrp_sync_group]]\nname = \"G\"\ngroup = [\"VI_1\"]\nnotify = \"/bin/true\"\n"
            ),
            "c.toml",
        )
        .unwrap();
        let text = diff(&a, &b).render();
        assert!(
            text.contains("vrrp_sync_group G: added (VI_1, VI_2)"),
            "{text}"
        );
        assert!(
            text.contains("vrrp_instance VI_2: changed in place, state kept: vrrp_sync_group"),
            "{text}"
        );
        let text = diff(&b, &c).render();
        assert!(
            text.contains(
                "vrrp_sync_group G: changed in place, member states kept: members VI_1, VI_2 -> VI_1, notify"
            ),
            "{text}"
        );
        let text = diff(&c, &a).render();
        assert!(text.contains("vrrp_sync_group G: removed"), "{text}");
    }

    #[test]
    fn static_and_virtual_routes_are_listed() {
        let a = config(&format!(
            "static_routes = [\"198.18.50.0/24 via 198.18.0.1 table 100\"]\n\
             static_rules = [\"from 198.18.1.0/24 preference 100 table 100\"]\n\
             {INSTANCE}{ONE_VIP}\nvirtual_routes = [\"blackhole 198.18.9.0/24\"]\n"
        ));
        let b = config(&format!(
            "static_routes = [\"198.18.51.0/24 via 198.18.0.1 table 100\"]\n\
             static_rules = [\"from 198.18.1.0/24 preference 100 table 100\"]\n\
             {INSTANCE}{ONE_VIP}\nvirtual_rules = [\"from 198.18.0.100 preference 5 table 7\"]\n"
        ));
        let plan = diff(&a, &b);
        assert_eq!(
            plan.statics_added,
            ["route 198.18.51.0/24 via 198.18.0.1 table 100"]
        );
        assert_eq!(
            plan.statics_removed,
            ["route 198.18.50.0/24 via 198.18.0.1 table 100"]
        );
        let text = plan.render();
        assert!(
            text.contains(
                "vrrp_instance VI_1: changed in place, state kept: virtual_routes, virtual_rules"
            ),
            "{text}"
        );
        assert!(text.contains("  + rule from 198.18.0.100/32 preference 5 table 7\n  - route blackhole 198.18.9.0/24\n"), "{text}");
        assert!(diff(&a, &a).is_empty());
    }
}
