//! `xlb status`: what the data plane holds and has counted, read straight from the pinned
//! maps (like `ipvsadm -Ln --stats`). It needs no running controller; the VRRP part comes
//! from the daemon's status file, and is marked stale when the daemon that wrote it is gone.
//! With a daemon answering on its control socket, [`LiveStatus`] adds what only the daemon
//! knows (PID, uptime, config and when it was loaded, runtime edits), [`render_live`]
//! shows it.

use std::{collections::BTreeMap, net::IpAddr, path::Path};

use anyhow::Result;
use lb_common::{
    Counters, DROP_REASON_NAMES, Mac, NatEvent, PASS_REASON_NAMES, PROTO_TCP, REAL_F_ALIVE,
    REAL_F_IN_USE, REAL_F_MAC_VALID, RealServer, SVC_F_ACTIVE, SVC_F_NAT, SchedAlgo, ip_of,
};
use serde::Serialize;

use crate::{
    dataplane::{Maps, conn_table::Evictions, watch::InterfaceStatus},
    process::identity::{Liveness, ProcessId},
    vrrp::status::{InstanceStatus, StatusFile},
};

#[derive(Debug, Default, Serialize)]
pub struct Status {
    /// The daemon that wrote the status file, when there is one.
    pub daemon: Option<DaemonStatus>,
    /// VRRP instances from the status file (empty when there is none or none is
    /// configured); the daemon's last state, not a live one, unless `daemon.running`.
    pub vrrp: Vec<InstanceStatus>,
    /// The interfaces the data plane is attached to, as the daemon's watchdog last saw
    /// them (from the status file, like `vrrp`).
    pub interfaces: Vec<InterfaceStatus>,
    pub services: Vec<ServiceStatus>,
    pub drops: Vec<(String, u64)>,
    pub passes: Vec<(String, u64)>,
    /// ICMP "fragmentation needed" and ICMPv6 "packet too big" forwarded to the real
    /// server of their flow (path-MTU discovery through the director).
    pub icmp_forwarded: IcmpForwarded,
    /// NAT replies translated back to the VIP (`xlb_nat_stats`).
    pub nat_replies: NatReplies,
    pub connections: usize,
    /// What new flows did in full connection-table buckets since the tables were made.
    pub conn_evictions: Evictions,
    /// The connection tables' IPv4 and IPv6 slots now (they grow: `conn_grow`).
    pub conn_slots: Option<(u32, u32)>,
    /// Connection sync, as the daemon's sync task last wrote it (`[sync]` configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_sync: Option<crate::connsync::SyncStatus>,
}

/// `xlb_icmp_fwd`, summed over the CPUs.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct IcmpForwarded {
    pub v4: u64,
    pub v6: u64,
}

/// `xlb_nat_stats`, summed over the CPUs (`lb_common::NatEvent`).
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct NatReplies {
    /// Sent to the next hop towards the client from XDP.
    pub forwarded: u64,
    /// Handed to the host stack to resolve the next hop's MAC.
    pub to_stack: u64,
}

#[derive(Debug, Serialize)]
pub struct DaemonStatus {
    pub pid: u32,
    /// False when the PID is gone or names another process now: the VRRP state is stale.
    pub running: bool,
}

impl DaemonStatus {
    fn of(daemon: &ProcessId, liveness: Liveness) -> DaemonStatus {
        DaemonStatus {
            pid: daemon.pid,
            running: liveness == Liveness::Running,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub vip: IpAddr,
    pub port: u16,
    pub protocol: &'static str,
    pub scheduler: &'static str,
    pub active: bool,
    pub table_len: u32,
    pub persistence_timeout: u32,
    /// `"DR"` or `"NAT"`.
    pub lb_kind: &'static str,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
    pub real_servers: Vec<RealStatus>,
    /// The service's other keys (`PROTO ADDRESS:PORT`), when several select it (a fwmark
    /// service's match entries): one service id, so one set of counters, listed once.
    pub also: Vec<String>,
}

impl ServiceStatus {
    /// Whether `addr`/`protocol` (`"TCP"` / `"UDP"`) is one of its keys (its own, or one
    /// in `also`).
    pub fn selected_by(&self, addr: std::net::SocketAddr, protocol: &str) -> bool {
        (self.vip, self.port, self.protocol) == (addr.ip(), addr.port(), protocol)
            || self.also.contains(&format!("{protocol} {addr}"))
    }
}

#[derive(Debug, Serialize)]
pub struct RealStatus {
    pub ip: IpAddr,
    pub port: u16,
    pub weight: u32,
    pub alive: bool,
    pub mac: Option<String>,
    pub ifindex: u32,
    pub packets: u64,
    pub bytes: u64,
    pub new_flows: u64,
    /// ipvsadm's ActiveConn: ESTABLISHED TCP connections in the connection table.
    pub active_conns: u64,
    /// ipvsadm's InActConn: every other live entry (half-open or closing TCP, UDP).
    pub inactive_conns: u64,
}

fn sum(values: impl IntoIterator<Item = Counters>) -> Counters {
    values
        .into_iter()
        .fold(Counters::default(), |a, c| Counters {
            packets: a.packets + c.packets,
            bytes: a.bytes + c.bytes,
            new_flows: a.new_flows + c.new_flows,
        })
}

fn algo_name(v: u32) -> &'static str {
    SchedAlgo::from_u32(v).map_or("?", SchedAlgo::name)
}

/// Reads the VRRP status the daemon writes to `state_file` and everything in the maps
/// pinned under `pin_path` (either may be absent, not both).
pub fn read(pin_path: &Path, state_file: &Path) -> Result<Status> {
    let (daemon, vrrp, interfaces) = match std::fs::read_to_string(state_file) {
        Ok(text) => match serde_json::from_str::<StatusFile>(&text) {
            Ok(file) => {
                let liveness = file.daemon.liveness();
                (
                    Some(DaemonStatus::of(&file.daemon, liveness)),
                    file.instances,
                    file.interfaces,
                )
            }
            // A daemon started before the file named its writer wrote the bare list: show
            // it (its liveness unknown) rather than fail while that daemon still runs.
            Err(e) => match serde_json::from_str::<Vec<InstanceStatus>>(&text) {
                Ok(instances) => (None, instances, Vec::new()),
                Err(_) => anyhow::bail!("{}: {e}", state_file.display()),
            },
        },
        Err(_) => (None, Vec::new(), Vec::new()),
    };
    if !pin_path.join(lb_common::map_names::SERVICES).exists() {
        if vrrp.is_empty() {
            anyhow::bail!(
                "nothing to show: no maps pinned under {} and no daemon status in {}",
                pin_path.display(),
                state_file.display()
            );
        }
        return Ok(Status {
            daemon,
            vrrp,
            interfaces,
            ..Status::default()
        });
    }
    let maps = Maps::from_pins(pin_path)?;
    Ok(Status {
        daemon,
        vrrp,
        interfaces,
        conn_sync: crate::connsync::SyncStatus::read(&crate::connsync::status_path(state_file)),
        ..from_maps(&maps)?
    })
}

/// What the maps hold and have counted (no daemon, VRRP or interface part): services and
/// real servers with their counters and ActiveConn / InActConn, drops, passes, the
/// connection table. Reads per-CPU counters by syscall (one per service and real
/// server) and the connection tables in one pass over their mapped memory.
pub fn from_maps(maps: &Maps) -> Result<Status> {
    let conns = maps
        .conn_tables(false)?
        .conn_counts(crate::dataplane::conn_table::now_ticks());
    // In-use slots by owning service id: one pass over the array, not one per service.
    struct Slot {
        index: u32,
        real: RealServer,
    }
    let mut slots_of: BTreeMap<u32, Vec<Slot>> = BTreeMap::new();
    for index in 0..maps.sizes().reals {
        let real = maps.reals_view.get(index as usize);
        if real.flags & REAL_F_IN_USE != 0 {
            slots_of
                .entry(real.service_id)
                .or_default()
                .push(Slot { index, real });
        }
    }
    let mut services = Vec::new();
    // A service under several keys (fwmark) is one row, under its lowest key.
    let mut by_id: BTreeMap<u32, Vec<(lb_common::ServiceKey, lb_common::ServiceInfo)>> =
        BTreeMap::new();
    for item in maps.services.iter() {
        let (key, info) = item?;
        by_id.entry(info.id).or_default().push((key, info));
    }
    for mut entries in by_id.into_values() {
        entries.sort_by_key(|(k, _)| (ip_of(&k.vip), k.port, k.proto));
        let (key, info) = entries[0];
        let also = entries[1..]
            .iter()
            .map(|(k, _)| {
                let proto = if k.proto == PROTO_TCP { "TCP" } else { "UDP" };
                format!(
                    "{proto} {}",
                    std::net::SocketAddr::new(ip_of(&k.vip), k.port)
                )
            })
            .collect();
        let c = sum(maps.service_stats.get(&info.id, 0)?.iter().copied());
        let mut rs = Vec::new();
        for Slot { index, real: r } in slots_of.get(&info.id).into_iter().flatten() {
            let rc = sum(maps.real_stats.get(index, 0)?.iter().copied());
            let ai = conns.of_real(*index, info.id);
            rs.push(RealStatus {
                ip: ip_of(&r.addr),
                port: r.port,
                weight: r.weight,
                alive: r.flags & REAL_F_ALIVE != 0,
                mac: (r.flags & REAL_F_MAC_VALID != 0).then(|| Mac(&r.mac).to_string()),
                ifindex: r.ifindex,
                packets: rc.packets,
                bytes: rc.bytes,
                new_flows: rc.new_flows,
                active_conns: ai.active,
                inactive_conns: ai.inactive,
            });
        }
        rs.sort_by_key(|r| (r.ip, r.port));
        services.push(ServiceStatus {
            vip: ip_of(&key.vip),
            port: key.port,
            protocol: if key.proto == PROTO_TCP { "TCP" } else { "UDP" },
            scheduler: algo_name(info.algo),
            active: info.flags & SVC_F_ACTIVE != 0,
            table_len: info.table_len,
            persistence_timeout: info.persistence_timeout,
            lb_kind: if info.flags & SVC_F_NAT != 0 {
                "NAT"
            } else {
                "DR"
            },
            packets: c.packets,
            bytes: c.bytes,
            new_flows: c.new_flows,
            real_servers: rs,
            also,
        });
    }
    services.sort_by_key(|s| (s.vip, s.port, s.protocol));
    let per_reason = |map: &aya::maps::PerCpuArray<aya::maps::MapData, u64>, names: &[&str]| {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let total = map.get(&(i as u32), 0).map(|v| v.iter().sum()).unwrap_or(0);
                (n.to_string(), total)
            })
            .collect::<Vec<_>>()
    };
    let drops = per_reason(&maps.drops, DROP_REASON_NAMES);
    let passes = per_reason(&maps.passes, PASS_REASON_NAMES);
    let connections = conns.total;
    let icmp = |i: u32| {
        maps.icmp_forwarded
            .get(&i, 0)
            .map(|v| v.iter().sum())
            .unwrap_or(0)
    };
    let icmp_forwarded = IcmpForwarded {
        v4: icmp(0),
        v6: icmp(1),
    };
    let nat = |e: NatEvent| {
        maps.nat_stats
            .get(&(e as u32), 0)
            .map(|v| v.iter().sum())
            .unwrap_or(0)
    };
    let nat_replies = NatReplies {
        forwarded: nat(NatEvent::Forwarded),
        to_stack: nat(NatEvent::ToStack),
    };
    let conn_evictions = Evictions::read(&maps.conn_evictions);
    Ok(Status {
        daemon: None,
        vrrp: Vec::new(),
        interfaces: Vec::new(),
        services,
        drops,
        passes,
        icmp_forwarded,
        nat_replies,
        connections,
        conn_evictions,
        conn_slots: maps.conn_slots().ok(),
        conn_sync: None,
    })
}

/// The human-readable table.
pub fn render(s: &Status) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if let Some(d) = s.daemon.as_ref().filter(|d| !d.running) {
        let _ = writeln!(
            out,
            "daemon not running (pid {} gone); last state below is stale",
            d.pid
        );
    }
    for (group, state, members) in crate::vrrp::status::sync_groups(&s.vrrp) {
        let _ = writeln!(
            out,
            "VRRP sync group {group}: {state} ({})",
            members.join(", ")
        );
    }
    for i in &s.vrrp {
        let vips: Vec<String> = i.vips.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "VRRP {} (vrid {}, v{}, {}{}{}): {} priority {}/{} vips {}{}",
            i.name,
            i.vrid,
            i.version,
            i.interface,
            i.vmac
                .as_ref()
                .map(|v| format!(", vmac {v}"))
                .unwrap_or_default(),
            i.sync_group
                .as_ref()
                .map(|g| format!(", sync group {g}"))
                .unwrap_or_default(),
            i.state,
            i.priority,
            i.configured_priority,
            vips.join(","),
            i.last_advert_from
                .map(|a| format!(" last advert from {a}"))
                .unwrap_or_default()
        );
        if let Some(r) = &i.reference {
            let _ = writeln!(out, "  reference {r}");
        }
        if !i.rejected.is_empty() {
            let r: Vec<String> = i.rejected.iter().map(|(k, n)| format!("{k}={n}")).collect();
            let _ = writeln!(out, "  rejected adverts: {}", r.join(" "));
        }
        if i.counts.vips_restored > 0 {
            let _ = writeln!(
                out,
                "  VIPs removed by someone else and put back: {}",
                i.counts.vips_restored
            );
        }
    }
    for i in &s.interfaces {
        let _ = writeln!(out, "{}", interface_line(i));
    }
    if s.services.is_empty() && s.connections == 0 && s.drops.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{:<32} {:<6} {:>10} {:>10} {:>12} {:>14} {:>10}",
        "Prot LocalAddress:Port Scheduler", "State", "", "", "Packets", "Bytes", "NewFlows"
    );
    let header = format!(
        "{:<32} {:<6} {:>10} {:>10} {:>12} {:>14} {:>10}",
        "  -> RemoteAddress:Port Weight", "", "ActiveConn", "InActConn", "", "", ""
    );
    let _ = writeln!(out, "{}", header.trim_end());
    for svc in &s.services {
        let addr = match svc.vip {
            IpAddr::V4(a) => format!("{a}:{}", svc.port),
            IpAddr::V6(a) => format!("[{a}]:{}", svc.port),
        };
        let mut head = format!("{} {addr} {}", svc.protocol, svc.scheduler);
        if svc.lb_kind == "NAT" {
            head.push_str(" nat");
        }
        if svc.persistence_timeout > 0 {
            let _ = write!(head, " persistent {}", svc.persistence_timeout);
        }
        let _ = writeln!(
            out,
            "{:<32} {:<6} {:>10} {:>10} {:>12} {:>14} {:>10}",
            head,
            if svc.active { "active" } else { "backup" },
            "",
            "",
            svc.packets,
            svc.bytes,
            svc.new_flows
        );
        if !svc.also.is_empty() {
            let _ = writeln!(out, "  also {}", svc.also.join(", "));
        }
        for r in &svc.real_servers {
            let raddr = match r.ip {
                IpAddr::V4(a) => format!("{a}:{}", r.port),
                IpAddr::V6(a) => format!("[{a}]:{}", r.port),
            };
            let state = match (r.alive, r.mac.is_some()) {
                (true, true) => "up",
                (false, _) => "down",
                (true, false) => "no-mac",
            };
            let _ = writeln!(
                out,
                "{:<32} {:<6} {:>10} {:>10} {:>12} {:>14} {:>10}",
                format!("  -> {raddr} {}", r.weight),
                state,
                r.active_conns,
                r.inactive_conns,
                r.packets,
                r.bytes,
                r.new_flows
            );
        }
    }
    let _ = writeln!(out, "connections tracked: {}", s.connections);
    if let Some((v4, v6)) = s.conn_slots {
        let _ = writeln!(out, "connection table slots: {v4} IPv4, {v6} IPv6");
    }
    for line in s.conn_evictions.lines() {
        let _ = writeln!(out, "{line}");
    }
    let nonzero = |v: &[(String, u64)]| {
        let parts: Vec<String> = v
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(" ")
        }
    };
    let _ = writeln!(out, "dropped: {}", nonzero(&s.drops));
    let _ = writeln!(out, "passed to the host: {}", nonzero(&s.passes));
    let i = &s.icmp_forwarded;
    if i.v4 + i.v6 > 0 {
        let _ = writeln!(
            out,
            "icmp too-big forwarded to real servers: {} IPv4, {} IPv6",
            i.v4, i.v6
        );
    }
    for line in s
        .conn_sync
        .iter()
        .flat_map(crate::connsync::SyncStatus::lines)
    {
        let _ = writeln!(out, "{line}");
    }
    let n = &s.nat_replies;
    if n.forwarded + n.to_stack > 0 {
        let _ = writeln!(
            out,
            "nat replies: {} forwarded, {} to the host stack (next hop unresolved)",
            n.forwarded, n.to_stack
        );
    }
    out
}

/// `xlb status` with what the daemon said on its control socket, or why it said nothing.
#[derive(Debug, Serialize)]
pub struct LiveStatus {
    /// The daemon's answer; None when no daemon answered (the maps are shown as they are).
    pub live: Option<crate::control::DaemonInfo>,
    /// Why there is no live part (no daemon on the socket, ...).
    pub live_unavailable: Option<String>,
    #[serde(flatten)]
    pub status: Status,
}

/// `1h02m03s`.
fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// The human-readable live status: the daemon's line, the table of [`render`], then the
/// runtime edits that differ from the file; without a daemon, why there is none, last.
pub fn render_live(s: &LiveStatus) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    render_live_at(s, now)
}

/// [`render_live`] with ages at `now` (Unix seconds).
fn render_live_at(s: &LiveStatus, now: u64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if let Some(d) = &s.live {
        let _ = writeln!(
            out,
            "daemon pid {}, up {}, config {} loaded {} ago, log filter {}",
            d.pid,
            duration(d.uptime_s),
            d.config_path.display(),
            duration(d.config_age_s),
            d.log_filter.as_deref().unwrap_or("?")
        );
        if let Some(t) = &d.conn_table {
            let _ = writeln!(
                out,
                "connection tables: {} IPv4 slots (IPv6: a quarter), {}; grown {} time{} \
                 since the daemon started",
                t.slots,
                if t.slots >= t.max_slots {
                    format!("at their maximum (connection_table_size {})", t.max_slots)
                } else {
                    format!("growing up to {}", t.max_slots)
                },
                t.growths,
                if t.growths == 1 { "" } else { "s" }
            );
        }
    }
    out.push_str(&render(&s.status));
    // Last, so that a dead daemon's "stale" line stays the first thing said.
    if let (None, Some(why)) = (&s.live, &s.live_unavailable) {
        let _ = writeln!(out, "{why}: the pinned maps only, nothing live");
    }
    if let Some(d) = s.live.as_ref().filter(|d| !d.edits.is_empty()) {
        let _ = writeln!(
            out,
            "runtime edits (differ from the file; the next reload undoes them):"
        );
        for e in &d.edits {
            let _ = writeln!(out, "  {} -> {}: {}", e.service, e.real, e.describe(now));
        }
    }
    out
}

/// One interface of the data plane: forwarding or why not, and what was repaired.
fn interface_line(i: &InterfaceStatus) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    interface_line_at(i, now)
}

/// [`interface_line`] with times said as ages at `now` (Unix seconds).
fn interface_line_at(i: &InterfaceStatus, now: u64) -> String {
    let ago = |t: u64| format!("{} s ago", now.saturating_sub(t));
    let mut line = if i.forwarding {
        format!("XDP {}: forwarding", i.name)
    } else {
        format!(
            "XDP {}: DOWN ({}){}",
            i.name,
            i.down_reason.as_deref().unwrap_or("not attached"),
            i.down_since
                .map(|t| format!(" for {} s", now.saturating_sub(t)))
                .unwrap_or_default()
        )
    };
    if let Some(last) = i.last_reattached {
        line.push_str(&format!(
            ", re-attached {} times, last {}",
            i.reattached,
            ago(last)
        ));
    }
    if i.repinned > 0 {
        line.push_str(&format!(", removed pins restored {} times", i.repinned));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real(ip: &str, weight: u32, alive: bool, mac: Option<&str>) -> RealStatus {
        RealStatus {
            ip: ip.parse().unwrap(),
            port: 80,
            weight,
            alive,
            mac: mac.map(str::to_string),
            ifindex: 2,
            packets: 10,
            bytes: 1000,
            new_flows: 1,
            active_conns: 7,
            inactive_conns: 2,
        }
    }

    #[test]
    fn render_lists_services_their_real_servers_and_counters() {
        let s = Status {
            daemon: None,
            vrrp: Vec::new(),
            interfaces: Vec::new(),
            services: vec![ServiceStatus {
                vip: "2001:db8::100".parse().unwrap(),
                port: 80,
                protocol: "TCP",
                scheduler: "wrr",
                active: false,
                table_len: 4,
                persistence_timeout: 300,
                lb_kind: "DR",
                packets: 30,
                bytes: 3000,
                new_flows: 3,
                real_servers: vec![
                    real("2001:db8::11", 3, true, Some("02:00:00:00:00:11")),
                    real("2001:db8::12", 1, true, None),
                    real("2001:db8::13", 1, false, None),
                ],
                also: Vec::new(),
            }],
            drops: vec![("no_real_server".into(), 2), ("bad_header".into(), 0)],
            passes: vec![("not_a_service".into(), 0)],
            connections: 5,
            conn_evictions: Evictions::default(),
            icmp_forwarded: IcmpForwarded::default(),
            nat_replies: Default::default(),
            conn_slots: None,
            conn_sync: None,
        };
        let out = render(&s);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("Prot LocalAddress:Port Scheduler"),
            "{out}"
        );
        assert!(
            lines[2].starts_with("TCP [2001:db8::100]:80 wrr persistent 300 backup"),
            "{out}"
        );
        assert!(lines[3].starts_with("  -> [2001:db8::11]:80 3"), "{out}");
        assert!(lines[3].contains(" up "), "{out}");
        let cols: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(
            cols[3..],
            ["up", "7", "2", "10", "1000", "1"],
            "state, ActiveConn, InActConn, counters: {out}"
        );
        assert!(lines[1].contains("ActiveConn  InActConn"), "{out}");
        assert!(lines[4].contains(" no-mac "), "{out}");
        assert!(lines[5].contains(" down "), "{out}");
        assert_eq!(lines[6], "connections tracked: 5");
        assert_eq!(lines[7], "dropped: no_real_server=2");
        assert_eq!(lines[8], "passed to the host: none");
        assert_eq!(lines.len(), 9, "no eviction line without evictions: {out}");
        let mut icmp = s;
        icmp.icmp_forwarded = IcmpForwarded { v4: 2, v6: 1 };
        let out = render(&icmp);
        assert_eq!(
            out.lines().last(),
            Some("icmp too-big forwarded to real servers: 2 IPv4, 1 IPv6")
        );
    }

    fn vrrp_only(daemon: DaemonStatus) -> Status {
        Status {
            daemon: Some(daemon),
            vrrp: Vec::new(),
            interfaces: Vec::new(),
            services: Vec::new(),
            drops: Vec::new(),
            passes: Vec::new(),
            connections: 0,
            conn_evictions: Evictions::default(),
            icmp_forwarded: IcmpForwarded::default(),
            nat_replies: Default::default(),
            conn_slots: None,
            conn_sync: None,
        }
    }

    #[test]
    fn the_state_of_a_daemon_that_is_gone_is_marked_stale() {
        let rec = ProcessId {
            pid: 4242,
            start_time: 100,
        };
        for gone in [Liveness::Gone, Liveness::Reused] {
            let out = render(&vrrp_only(DaemonStatus::of(&rec, gone)));
            assert_eq!(
                out.lines().next(),
                Some("daemon not running (pid 4242 gone); last state below is stale"),
                "{gone:?}: {out}"
            );
        }
        let out = render(&vrrp_only(DaemonStatus::of(&rec, Liveness::Running)));
        assert!(
            !out.contains("stale"),
            "a running daemon's state is live: {out}"
        );
    }

    #[test]
    fn an_interface_says_whether_it_forwards_and_what_was_repaired() {
        let mut i = InterfaceStatus {
            name: "eth0".into(),
            forwarding: true,
            ..InterfaceStatus::default()
        };
        assert_eq!(interface_line_at(&i, 1000), "XDP eth0: forwarding");
        i.reattached = 2;
        i.last_reattached = Some(990);
        i.repinned = 1;
        assert_eq!(
            interface_line_at(&i, 1000),
            "XDP eth0: forwarding, re-attached 2 times, last 10 s ago, \
             removed pins restored 1 times"
        );
        let down = InterfaceStatus {
            name: "eth0".into(),
            forwarding: false,
            down_reason: Some("interface eth0 is gone".into()),
            down_since: Some(997),
            ..InterfaceStatus::default()
        };
        assert_eq!(
            interface_line_at(&down, 1000),
            "XDP eth0: DOWN (interface eth0 is gone) for 3 s"
        );
    }

    #[test]
    fn a_status_file_of_an_older_daemon_is_shown_without_liveness() {
        let dir = std::env::temp_dir().join(format!("xlb-status-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("status.json");
        // What a daemon from before the file named its writer wrote: the bare list.
        std::fs::write(
            &file,
            r#"[{"name":"VI_1","interface":"eth0","vrid":51,"version":2,"state":"MASTER",
                "priority":150,"configured_priority":150,"source":"198.18.0.2",
                "vips":["198.18.0.100"],"last_advert_from":null,"rejected":{}}]"#,
        )
        .unwrap();
        let status = read(&dir.join("no-pins"), &file);
        std::fs::remove_dir_all(&dir).unwrap();
        let status = status.expect("an older daemon's status file is read");
        assert!(status.daemon.is_none());
        assert_eq!(status.vrrp.len(), 1);
        assert_eq!(status.vrrp[0].state, "MASTER");
    }

    #[test]
    fn the_live_status_names_the_daemon_and_the_edits_against_the_file() {
        let live = LiveStatus {
            live: Some(crate::control::DaemonInfo {
                pid: 4242,
                started_at: 1000,
                uptime_s: 3723,
                config_path: "/etc/xlb/xlb.toml".into(),
                config_loaded_at: 4000,
                config_age_s: 723,
                pin_path: "/sys/fs/bpf/xlb".into(),
                state_file: "/run/xlb/x.status.json".into(),
                log_filter: Some("info".into()),
                edits: vec![crate::control::EditInfo {
                    service: "198.18.0.100:80".parse().unwrap(),
                    real: "198.18.0.21:80".parse().unwrap(),
                    file_weight: 3,
                    weight: Some(0),
                    drained: true,
                    weight_at: Some(4700),
                    weight_by: Some(crate::control::Peer {
                        uid: 0,
                        pid: Some(77),
                    }),
                    disabled_at: None,
                    disabled_by: None,
                }],
                conn_table: Some(crate::dataplane::conn_grow::ConnTableInfo {
                    slots: 65536,
                    max_slots: 524_288,
                    growths: 1,
                }),
            }),
            live_unavailable: None,
            status: vrrp_only(DaemonStatus {
                pid: 4242,
                running: true,
            }),
        };
        let out = render_live_at(&live, 4723);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "daemon pid 4242, up 1h02m03s, config /etc/xlb/xlb.toml loaded 12m03s ago, \
                 log filter info",
                "connection tables: 65536 IPv4 slots (IPv6: a quarter), growing up to 524288; \
                 grown 1 time since the daemon started",
                "runtime edits (differ from the file; the next reload undoes them):",
                "  198.18.0.100:80/tcp -> 198.18.0.21:80: weight 0 (file: 3, drained 23 s ago \
                 by uid 0 pid 77)"
            ]
        );
        let fallback = LiveStatus {
            live: None,
            live_unavailable: Some("no xlb daemon answers on /run/xlb/xlb.sock".into()),
            status: vrrp_only(DaemonStatus {
                pid: 1,
                running: false,
            }),
        };
        let out = render_live_at(&fallback, 0);
        assert!(
            out.starts_with("daemon not running (pid 1 gone)"),
            "the stale line stays first: {out}"
        );
        assert!(
            out.ends_with(
                "no xlb daemon answers on /run/xlb/xlb.sock: the pinned maps only, nothing live\n"
            ),
            "{out}"
        );
        let json = serde_json::to_value(&fallback).unwrap();
        assert!(json["live"].is_null());
        assert!(
            json["services"].is_array(),
            "the map view's keys stay at the top: {json}"
        );
    }
}
