//! The metrics registry of one scrape: every family filled from the maps' reading (a
//! [`Status`] as `xlb status` has it) and the daemon's [`Snapshot`], encoded as
//! OpenMetrics text by `prometheus-client`. A registry is built per scrape: the sources
//! hold cumulative values already, and services that went away leave no stale series.

use std::{
    collections::BTreeSet,
    net::IpAddr,
    time::{Duration, SystemTime},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

use crate::{cli::status::Status, vrrp::status::InstanceStatus};

/// What only the daemon knows, as it last published it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every VRRP instance's status.
    pub vrrp: Vec<InstanceStatus>,
    /// Every health-checked real server.
    pub health: Vec<RealHealth>,
    pub reloads: Reloads,
    /// The connection tables' size, maximum and growths (None: no data plane).
    pub conn_table: Option<crate::dataplane::conn_grow::ConnTableInfo>,
    /// The BGP announcements (None: no `announce = "bgp"` service).
    pub bgp: Option<crate::bgp::status::BgpStatus>,
    /// Connection sync's counters (None: no `[sync]`).
    pub conn_sync: Option<crate::connsync::SyncStatus>,
}

/// A checked real server: its checkers' verdict and last check time.
#[derive(Clone, Debug, PartialEq)]
pub struct RealHealth {
    pub vip: IpAddr,
    pub vport: u16,
    /// "TCP" or "UDP".
    pub proto: &'static str,
    pub rip: IpAddr,
    pub rport: u16,
    pub up: bool,
    /// How long its last completed check took; `None` before the first.
    pub last_check: Option<Duration>,
}

/// Config reloads (SIGHUP) since the daemon started.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reloads {
    /// Applied.
    pub ok: u64,
    /// The new file did not load (syntax, validation): the running config stays.
    pub refused: u64,
    /// The data plane could not take it: rolled back to the running config.
    pub rolled_back: u64,
    /// When the last reload was applied.
    pub last_ok: Option<SystemTime>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    local_address: String,
    local_port: u16,
    proto: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct BackendLabels {
    local_address: String,
    local_port: u16,
    remote_address: String,
    remote_port: u16,
    proto: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    iname: String,
    intf: String,
    vrid: u8,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabels {
    iname: String,
    intf: String,
    vrid: u8,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabels {
    family: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

type Counters<L> = Family<L, Counter>;
type Gauges<L> = Family<L, Gauge>;
type FloatGauges<L> = Family<L, Gauge<f64, std::sync::atomic::AtomicU64>>;

/// keepalived-exporter's name of a reason an advert was rejected (or, for
/// `address_list_differs`, accepted but counted), where it has one; xlb's own otherwise.
pub fn reject_reason_name(ours: &str) -> &str {
    match ours {
        "truncated" | "bad_length" => "packet_len_err",
        "bad_type" => "invalid_type_rcvd",
        "bad_ttl" => "ip_ttl_err",
        "interval_mismatch" => "advert_interval_err",
        "address_list_differs" => "addr_list_err",
        "auth_type_mismatch" => "authtype_mismatch",
        "bad_password" => "auth_failure",
        other => other,
    }
}

/// keepalived's numbering of VRRP states, as keepalived-exporter exports them.
fn state_number(state: &str) -> i64 {
    match state {
        "BACKUP" => 1,
        "MASTER" => 2,
        "FAULT" => 3,
        _ => 0,
    }
}

fn backend(vip: IpAddr, vport: u16, proto: &'static str, rip: IpAddr, rport: u16) -> BackendLabels {
    BackendLabels {
        local_address: vip.to_string(),
        local_port: vport,
        remote_address: rip.to_string(),
        remote_port: rport,
        proto,
    }
}

/// The exposition text of the maps' reading `plane` (absent without virtual servers or
/// pins) and the daemon's `snap`.
pub fn encode(plane: Option<&Status>, snap: &Snapshot) -> String {
    let mut reg = Registry::with_prefix("xlb");
    if let Some(s) = plane {
        register_plane(&mut reg, s, snap);
    } else {
        register_health(&mut reg, snap, &BTreeSet::new());
    }
    register_vrrp(&mut reg, &snap.vrrp);
    register_reloads(&mut reg, &snap.reloads);
    if let Some(b) = &snap.bgp {
        crate::bgp::metrics::register(&mut reg, b);
    }
    if let Some(sync) = &snap.conn_sync {
        crate::connsync::metrics::register(&mut reg, sync);
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &reg)
        .expect("writing to a String cannot fail");
    out
}

fn register_plane(reg: &mut Registry, s: &Status, snap: &Snapshot) {
    let svc_packets = Counters::<ServiceLabels>::default();
    let svc_bytes = Counters::<ServiceLabels>::default();
    let svc_flows = Counters::<ServiceLabels>::default();
    let svc_nat = Gauges::<ServiceLabels>::default();
    let packets = Counters::<BackendLabels>::default();
    let bytes = Counters::<BackendLabels>::default();
    let flows = Counters::<BackendLabels>::default();
    let active = Gauges::<BackendLabels>::default();
    let inactive = Gauges::<BackendLabels>::default();
    let weight = Gauges::<BackendLabels>::default();
    let mut alive_in_maps = BTreeSet::new();
    for svc in &s.services {
        let l = ServiceLabels {
            local_address: svc.vip.to_string(),
            local_port: svc.port,
            proto: svc.protocol,
        };
        svc_packets.get_or_create(&l).inc_by(svc.packets);
        svc_bytes.get_or_create(&l).inc_by(svc.bytes);
        svc_flows.get_or_create(&l).inc_by(svc.new_flows);
        svc_nat
            .get_or_create(&l)
            .set(i64::from(svc.lb_kind == "NAT"));
        for r in &svc.real_servers {
            let b = backend(svc.vip, svc.port, svc.protocol, r.ip, r.port);
            packets.get_or_create(&b).inc_by(r.packets);
            bytes.get_or_create(&b).inc_by(r.bytes);
            flows.get_or_create(&b).inc_by(r.new_flows);
            active.get_or_create(&b).set(r.active_conns as i64);
            inactive.get_or_create(&b).set(r.inactive_conns as i64);
            weight.get_or_create(&b).set(i64::from(r.weight));
            alive_in_maps.insert((b, r.alive));
        }
    }
    reg.register(
        "service_packets",
        "Packets received for the virtual service",
        svc_packets,
    );
    reg.register(
        "service_bytes",
        "Bytes received for the virtual service",
        svc_bytes,
    );
    reg.register(
        "service_new_flows",
        "New flows (connections) scheduled for the virtual service",
        svc_flows,
    );
    reg.register(
        "service_nat",
        "1 when the virtual service forwards by NAT (lb_kind NAT), 0 by DR",
        svc_nat,
    );
    reg.register(
        "backend_packets",
        "Packets forwarded to the real server",
        packets,
    );
    reg.register("backend_bytes", "Bytes forwarded to the real server", bytes);
    reg.register(
        "backend_new_flows",
        "New flows (connections) scheduled to the real server",
        flows,
    );
    reg.register(
        "backend_connections_active",
        "ESTABLISHED TCP connections to the real server in the connection table (ipvsadm ActiveConn)",
        active,
    );
    reg.register(
        "backend_connections_inactive",
        "Other live entries of the real server in the connection table (ipvsadm InActConn)",
        inactive,
    );
    reg.register(
        "backend_weight",
        "Weight of the real server in the data plane",
        weight,
    );
    register_health(reg, snap, &alive_in_maps);

    let dropped = Counters::<ReasonLabels>::default();
    for (reason, n) in &s.drops {
        dropped
            .get_or_create(&ReasonLabels {
                reason: reason.clone(),
            })
            .inc_by(*n);
    }
    reg.register(
        "dropped_packets",
        "Packets dropped by the XDP program",
        dropped,
    );
    let passed = Counters::<ReasonLabels>::default();
    for (reason, n) in &s.passes {
        passed
            .get_or_create(&ReasonLabels {
                reason: reason.clone(),
            })
            .inc_by(*n);
    }
    reg.register(
        "passed_packets",
        "Packets the XDP program passed to the host stack",
        passed,
    );
    let icmp = Counters::<FamilyLabels>::default();
    for (family, n) in [("ipv4", s.icmp_forwarded.v4), ("ipv6", s.icmp_forwarded.v6)] {
        icmp.get_or_create(&FamilyLabels { family }).inc_by(n);
    }
    reg.register(
        "icmp_forwarded_packets",
        "ICMP fragmentation-needed / ICMPv6 packet-too-big forwarded to the real server of their flow",
        icmp,
    );
    let nat = Counters::<ReasonLabels>::default();
    for (reason, n) in [
        ("forwarded", s.nat_replies.forwarded),
        ("to_stack", s.nat_replies.to_stack),
    ] {
        nat.get_or_create(&ReasonLabels {
            reason: reason.into(),
        })
        .inc_by(n);
    }
    reg.register(
        "nat_replies",
        "NAT replies translated back to the VIP: sent from XDP (forwarded) or through the host stack (to_stack: next hop unresolved)",
        nat,
    );
    let evictions = Counters::<ReasonLabels>::default();
    let e = s.conn_evictions;
    for (reason, n) in [
        ("syn_recv", e.syn_recv),
        ("established", e.established),
        ("not_tracked", e.not_tracked),
    ] {
        evictions
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc_by(n);
    }
    reg.register(
        "conn_table_evictions",
        "New flows in full connection-table buckets: half-open or idle established entries given up, or packets forwarded untracked (not_tracked)",
        evictions,
    );
    let entries = Gauge::<i64>::default();
    entries.set(s.connections as i64);
    reg.register(
        "conn_table_entries",
        "Live entries of the connection tables",
        entries,
    );
    if let Some((v4, v6)) = s.conn_slots {
        let slots = Gauges::<FamilyLabels>::default();
        for (family, n) in [("ipv4", v4), ("ipv6", v6)] {
            slots.get_or_create(&FamilyLabels { family }).set(n.into());
        }
        reg.register(
            "conn_table_slots",
            "Slots of each connection table now (they grow up to connection_table_size)",
            slots,
        );
    }
    if let Some(t) = snap.conn_table {
        let max = Gauge::<i64>::default();
        max.set(t.max_slots.into());
        reg.register(
            "conn_table_max_slots",
            "The most IPv4 slots the connection tables grow to (connection_table_size)",
            max,
        );
        let growths = Counter::<u64>::default();
        growths.inc_by(t.growths);
        reg.register(
            "conn_table_growths",
            "Connection-table growths since the daemon started",
            growths,
        );
    }
}

/// `backend_up` and `backend_last_check_duration_seconds`: every checked server from the
/// verdicts, every other server of the maps from its data-plane state (`maps`).
fn register_health(reg: &mut Registry, snap: &Snapshot, maps: &BTreeSet<(BackendLabels, bool)>) {
    let up = Gauges::<BackendLabels>::default();
    let took = FloatGauges::<BackendLabels>::default();
    let mut checked = BTreeSet::new();
    for h in &snap.health {
        let b = backend(h.vip, h.vport, h.proto, h.rip, h.rport);
        up.get_or_create(&b).set(i64::from(h.up));
        if let Some(d) = h.last_check {
            took.get_or_create(&b).set(d.as_secs_f64());
        }
        checked.insert(b);
    }
    for (b, alive) in maps {
        if !checked.contains(b) {
            up.get_or_create(b).set(i64::from(*alive));
        }
    }
    reg.register(
        "backend_up",
        "Whether the real server is up: its health checks pass (unchecked servers: as in the data plane)",
        up,
    );
    reg.register_with_unit(
        "backend_last_check_duration",
        "How long the last completed health check of the real server took",
        Unit::Seconds,
        took,
    );
}

fn register_vrrp(reg: &mut Registry, instances: &[InstanceStatus]) {
    let state = Gauges::<InstanceLabels>::default();
    let priority = Gauges::<InstanceLabels>::default();
    let sent = Counters::<InstanceLabels>::default();
    let rcvd = Counters::<InstanceLabels>::default();
    let became = Counters::<InstanceLabels>::default();
    let release = Counters::<InstanceLabels>::default();
    let restored = Counters::<InstanceLabels>::default();
    let rejected = Counters::<RejectLabels>::default();
    for i in instances {
        let l = InstanceLabels {
            iname: i.name.clone(),
            intf: i.interface.clone(),
            vrid: i.vrid,
        };
        state.get_or_create(&l).set(state_number(&i.state));
        priority.get_or_create(&l).set(i64::from(i.priority));
        sent.get_or_create(&l).inc_by(i.counts.adverts_sent);
        rcvd.get_or_create(&l).inc_by(i.counts.adverts_received);
        became.get_or_create(&l).inc_by(i.counts.became_master);
        release.get_or_create(&l).inc_by(i.counts.left_master);
        restored.get_or_create(&l).inc_by(i.counts.vips_restored);
        for (reason, n) in &i.rejected {
            rejected
                .get_or_create(&RejectLabels {
                    iname: i.name.clone(),
                    intf: i.interface.clone(),
                    vrid: i.vrid,
                    reason: reject_reason_name(reason).to_string(),
                })
                .inc_by(*n);
        }
    }
    reg.register(
        "vrrp_state",
        "VRRP state of the instance: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT (keepalived's numbers)",
        state,
    );
    reg.register(
        "vrrp_priority",
        "Effective priority of the instance (configured, moved by trackers)",
        priority,
    );
    reg.register("vrrp_advert_sent", "Adverts sent", sent);
    reg.register("vrrp_advert_rcvd", "Adverts received and accepted", rcvd);
    reg.register("vrrp_become_master", "Transitions to MASTER", became);
    reg.register("vrrp_release_master", "Transitions from MASTER", release);
    reg.register(
        "vrrp_vip_restored",
        "VIPs removed by someone else from a MASTER and put back",
        restored,
    );
    reg.register(
        "vrrp_advert_rejected",
        "Adverts rejected by reason (addr_list_err: accepted, address list differs)",
        rejected,
    );
}

fn register_reloads(reg: &mut Registry, r: &Reloads) {
    let reloads = Counters::<ResultLabels>::default();
    for (result, n) in [
        ("ok", r.ok),
        ("refused", r.refused),
        ("rolled_back", r.rolled_back),
    ] {
        reloads.get_or_create(&ResultLabels { result }).inc_by(n);
    }
    reg.register(
        "config_reloads",
        "Config reloads by result: ok, refused (the file did not load), rolled_back (the data plane refused it)",
        reloads,
    );
    if let Some(t) = r.last_ok {
        let last = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        last.set(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        reg.register_with_unit(
            "config_last_reload_success_timestamp",
            "When the last reload was applied (Unix time; absent before the first)",
            Unit::Seconds,
            last,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::status::{RealStatus, ServiceStatus};

    fn plane() -> Status {
        let real = |ip: &str, packets, alive, active_conns| RealStatus {
            ip: ip.parse().unwrap(),
            port: 8080,
            weight: 3,
            alive,
            mac: None,
            ifindex: 2,
            packets,
            bytes: packets * 60,
            new_flows: packets / 5,
            active_conns,
            inactive_conns: 1,
        };
        Status {
            daemon: None,
            vrrp: Vec::new(),
            interfaces: Vec::new(),
            services: vec![ServiceStatus {
                vip: "198.18.0.100".parse().unwrap(),
                port: 80,
                protocol: "TCP",
                scheduler: "rr",
                active: true,
                table_len: 0,
                persistence_timeout: 0,
                lb_kind: "DR",
                packets: 30,
                bytes: 1800,
                new_flows: 6,
                real_servers: vec![
                    real("198.18.1.21", 20, true, 4),
                    real("198.18.1.22", 10, false, 0),
                ],
                also: Vec::new(),
            }],
            drops: vec![("no_real_server".into(), 2)],
            passes: vec![("not_a_service".into(), 9)],
            icmp_forwarded: crate::cli::status::IcmpForwarded { v4: 3, v6: 0 },
            nat_replies: crate::cli::status::NatReplies {
                forwarded: 4,
                to_stack: 1,
            },
            connections: 6,
            conn_evictions: crate::dataplane::conn_table::Evictions {
                syn_recv: 5,
                established: 0,
                not_tracked: 1,
            },
            conn_slots: Some((65536, 16384)),
            conn_sync: None,
        }
    }

    fn snapshot() -> Snapshot {
        let mut rejected = std::collections::BTreeMap::new();
        rejected.insert("bad_ttl".to_string(), 3);
        rejected.insert("truncated".to_string(), 1);
        rejected.insert("bad_length".to_string(), 2);
        Snapshot {
            vrrp: vec![InstanceStatus {
                name: "VI_1".into(),
                interface: "eth0".into(),
                vrid: 51,
                version: 2,
                state: "MASTER".into(),
                priority: 150,
                configured_priority: 150,
                source: "198.18.0.2".parse().unwrap(),
                vips: vec!["198.18.0.100".parse().unwrap()],
                last_advert_from: None,
                rejected,
                counts: crate::vrrp::status::VrrpCounts {
                    adverts_sent: 40,
                    adverts_received: 7,
                    became_master: 1,
                    left_master: 0,
                    vips_restored: 3,
                },
                vmac: None,
                sync_group: None,
                reference: None,
            }],
            health: vec![RealHealth {
                vip: "198.18.0.100".parse().unwrap(),
                vport: 80,
                proto: "TCP",
                rip: "198.18.1.21".parse().unwrap(),
                rport: 8080,
                up: false,
                last_check: Some(Duration::from_millis(250)),
            }],
            reloads: Reloads {
                ok: 2,
                refused: 1,
                rolled_back: 0,
                last_ok: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            },
            conn_table: Some(crate::dataplane::conn_grow::ConnTableInfo {
                slots: 65536,
                max_slots: 524_288,
                growths: 2,
            }),
            bgp: None,
            conn_sync: None,
        }
    }

    /// The sample lines of `text` (no comments).
    fn samples(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn services_and_real_servers_carry_node_exporter_labels() {
        let text = encode(Some(&plane()), &snapshot());
        let s = samples(&text);
        let b21 = r#"{local_address="198.18.0.100",local_port="80",remote_address="198.18.1.21",remote_port="8080",proto="TCP"}"#;
        let b22 = r#"{local_address="198.18.0.100",local_port="80",remote_address="198.18.1.22",remote_port="8080",proto="TCP"}"#;
        for line in [
            r#"xlb_service_packets_total{local_address="198.18.0.100",local_port="80",proto="TCP"} 30"#.to_string(),
            r#"xlb_service_nat{local_address="198.18.0.100",local_port="80",proto="TCP"} 0"#.to_string(),
            r#"xlb_service_new_flows_total{local_address="198.18.0.100",local_port="80",proto="TCP"} 6"#.to_string(),
            format!("xlb_backend_packets_total{b21} 20"),
            format!("xlb_backend_bytes_total{b21} 1200"),
            format!("xlb_backend_new_flows_total{b21} 4"),
            format!("xlb_backend_connections_active{b21} 4"),
            format!("xlb_backend_connections_inactive{b21} 1"),
            format!("xlb_backend_weight{b21} 3"),
            // .21 is checked: its verdict (down) wins over the data plane's flag.
            format!("xlb_backend_up{b21} 0"),
            format!("xlb_backend_last_check_duration_seconds{b21} 0.25"),
            // .22 is not checked: as in the data plane.
            format!("xlb_backend_up{b22} 0"),
            r#"xlb_dropped_packets_total{reason="no_real_server"} 2"#.to_string(),
            r#"xlb_passed_packets_total{reason="not_a_service"} 9"#.to_string(),
            r#"xlb_icmp_forwarded_packets_total{family="ipv4"} 3"#.to_string(),
            r#"xlb_icmp_forwarded_packets_total{family="ipv6"} 0"#.to_string(),
            r#"xlb_nat_replies_total{reason="forwarded"} 4"#.to_string(),
            r#"xlb_nat_replies_total{reason="to_stack"} 1"#.to_string(),
            r#"xlb_conn_table_evictions_total{reason="syn_recv"} 5"#.to_string(),
            r#"xlb_conn_table_evictions_total{reason="not_tracked"} 1"#.to_string(),
            "xlb_conn_table_entries 6".to_string(),
            r#"xlb_conn_table_slots{family="ipv4"} 65536"#.to_string(),
            r#"xlb_conn_table_slots{family="ipv6"} 16384"#.to_string(),
            "xlb_conn_table_max_slots 524288".to_string(),
            "xlb_conn_table_growths_total 2".to_string(),
        ] {
            assert!(s.contains(&line.as_str()), "{line}\n  missing from\n{text}");
        }
        assert!(
            text.contains("# TYPE xlb_backend_packets counter"),
            "{text}"
        );
        assert!(
            text.contains("# UNIT xlb_backend_last_check_duration_seconds seconds"),
            "{text}"
        );
        assert!(
            text.ends_with("# EOF\n"),
            "OpenMetrics ends with EOF: {text}"
        );
    }

    #[test]
    fn vrrp_and_reloads_use_keepalived_exporter_names() {
        let text = encode(Some(&plane()), &snapshot());
        let s = samples(&text);
        let i = r#"{iname="VI_1",intf="eth0",vrid="51"}"#;
        for line in [
            format!("xlb_vrrp_state{i} 2"),
            format!("xlb_vrrp_priority{i} 150"),
            format!("xlb_vrrp_advert_sent_total{i} 40"),
            format!("xlb_vrrp_advert_rcvd_total{i} 7"),
            format!("xlb_vrrp_become_master_total{i} 1"),
            format!("xlb_vrrp_release_master_total{i} 0"),
            format!("xlb_vrrp_vip_restored_total{i} 3"),
            r#"xlb_vrrp_advert_rejected_total{iname="VI_1",intf="eth0",vrid="51",reason="ip_ttl_err"} 3"#.into(),
            // truncated and bad_length are both keepalived's packet length errors.
            r#"xlb_vrrp_advert_rejected_total{iname="VI_1",intf="eth0",vrid="51",reason="packet_len_err"} 3"#.into(),
            r#"xlb_config_reloads_total{result="ok"} 2"#.into(),
            r#"xlb_config_reloads_total{result="refused"} 1"#.into(),
            r#"xlb_config_reloads_total{result="rolled_back"} 0"#.into(),
            "xlb_config_last_reload_success_timestamp_seconds 1700000000.0".into(),
        ] {
            assert!(s.contains(&line.as_str()), "{line}\n  missing from\n{text}");
        }
    }

    #[test]
    fn without_a_data_plane_only_the_daemon_part_is_shown() {
        let mut snap = snapshot();
        snap.reloads.last_ok = None;
        let text = encode(None, &snap);
        assert!(!text.contains("xlb_backend_packets"), "{text}");
        assert!(
            !text.contains("last_reload_success"),
            "absent before the first: {text}"
        );
        assert!(text.contains("xlb_vrrp_state{"), "{text}");
        assert!(
            text.contains(r#"xlb_backend_up{local_address="198.18.0.100""#),
            "{text}"
        );
    }
}
