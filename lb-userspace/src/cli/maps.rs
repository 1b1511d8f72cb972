//! `xlb maps`: every pinned map with its type and size, and the exact `bpftool` command
//! that shows it; then, per virtual service (or the one asked for), the commands for its
//! own entries: its `xlb_services` entry, its counters and flags by service id, its
//! scheduling-table slice, and each real server's slot; and with `--flow`, the bucket of
//! one connection in the connection tables (their hash is seeded per table, so only xlb
//! can say which). Every command printed reads a
//! bounded amount: a whole map only where the map is small (`dataplane::sizing`), one
//! entry or one bucket elsewhere. It needs no running controller.

use std::{
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use aya::maps::{MapInfo, MapType};
use lb_common::{
    CONN_WAYS, FlowKey, FlowKey4, PROTO_TCP, PROTO_UDP, REAL_F_IN_USE, SchedAlgo, ServiceInfo,
    ServiceKey, ip_of, map_names,
};
use serde::Serialize;

use crate::dataplane::{
    DataPlaneError, Maps,
    conn_grow::{self, ConnTableInfo},
};

/// One pinned map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapRow {
    pub name: &'static str,
    /// bpftool's name of the map type.
    pub kind: &'static str,
    pub entries: u32,
    pub value_size: u32,
    /// The bpftool command that shows it.
    pub command: String,
}

/// One real server's slot, and the commands that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RealRow {
    pub real_server: SocketAddr,
    pub slot: u32,
    pub commands: Vec<String>,
}

/// One virtual service and the commands that show its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceRow {
    pub protocol: &'static str,
    pub virtual_service: SocketAddr,
    pub scheduler: &'static str,
    pub id: u32,
    pub table_offset: u32,
    pub table_len: u32,
    pub commands: Vec<String>,
    pub real_servers: Vec<RealRow>,
}

/// A flow as the client sent it: what `--flow` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub protocol: &'static str,
    pub client: SocketAddr,
    pub virtual_service: SocketAddr,
}

/// The connection-table bucket a flow lives in, and the command that shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRow {
    pub flow: Flow,
    pub map: &'static str,
    pub bucket: u32,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapsReport {
    pub pin_path: PathBuf,
    pub maps: Vec<MapRow>,
    pub services: Vec<ServiceRow>,
    /// The bucket of the flow `--flow` named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowRow>,
    /// The connection tables' IPv4 slots now, and what the daemon says of their maximum
    /// and growths (None: no daemon answered).
    pub conn_slots: u32,
    pub conn_table: Option<ConnTableInfo>,
}

/// bpftool's name of a map type.
fn kind(t: MapType) -> &'static str {
    match t {
        MapType::Hash => "hash",
        MapType::Array => "array",
        MapType::PerCpuArray => "percpu_array",
        MapType::LruHash => "lru_hash",
        MapType::PerCpuHash => "percpu_hash",
        _ => "other",
    }
}

/// A `u32` key as bpftool takes it: four bytes, little-endian as this host lays it out.
pub fn u32_key(v: u32) -> String {
    let b = v.to_ne_bytes();
    format!("{} {} {} {}", b[0], b[1], b[2], b[3])
}

/// The `xlb_services` key of `key` as bpftool takes it (hex bytes, as the map holds them).
pub fn service_key_hex(key: &ServiceKey) -> String {
    let mut bytes = Vec::with_capacity(20);
    bytes.extend_from_slice(&key.vip);
    bytes.extend_from_slice(&key.port.to_ne_bytes());
    bytes.push(key.proto);
    bytes.push(key._pad);
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("hex {}", hex.join(" "))
}

fn lookup(dir: &Path, map: &str, key: &str) -> String {
    format!(
        "bpftool map lookup pinned {}/{map} key {key}",
        dir.display()
    )
}

/// The most buckets a connection table may have for `xlb maps` to print a dump of it
/// (the tables' start size, `conn_grow::START_SLOTS`: about 11 MB of text, 0.3 s): a
/// dump prints every bucket, used or not, about 2.7 KB each.
pub const CONN_DUMP_MAX_BUCKETS: u32 = conn_grow::START_SLOTS / CONN_WAYS as u32;

/// The command that shows map `name` of `entries`: a dump, except for connection tables
/// grown past [`CONN_DUMP_MAX_BUCKETS`] (one lookup shows a bucket of `CONN_WAYS`).
fn map_command(dir: &Path, name: &str, entries: u32) -> String {
    if (name == map_names::CONNS4 || name == map_names::CONNS6) && entries > CONN_DUMP_MAX_BUCKETS {
        return lookup(dir, name, &u32_key(0));
    }
    format!("bpftool map dump pinned {}/{name}", dir.display())
}

/// The commands for one service's own entries.
fn service_commands(dir: &Path, key: &ServiceKey, info: &ServiceInfo) -> Vec<String> {
    let id = u32_key(info.id);
    let mut out = vec![
        lookup(dir, map_names::SERVICES, &service_key_hex(key)),
        lookup(dir, map_names::SVC_STATE, &id),
        lookup(dir, map_names::SERVICE_STATS, &id),
        lookup(dir, map_names::CURSORS, &id),
    ];
    if info.table_len > 0 {
        let (first, last) = (info.table_offset, info.table_offset + info.table_len - 1);
        out.push(format!(
            "for i in $(seq {first} {last}); do bpftool map lookup pinned {}/{} key \
             $((i & 255)) $((i >> 8 & 255)) $((i >> 16 & 255)) $((i >> 24)); done",
            dir.display(),
            map_names::TABLE
        ));
    }
    out
}

fn algo_name(algo: u32) -> &'static str {
    SchedAlgo::from_u32(algo).map_or("?", SchedAlgo::name)
}

/// The bucket of `flow` in the connection tables pinned with `maps` (the hash is seeded
/// per table: only the tables' own seed finds it).
fn flow_row(dir: &Path, maps: &Maps, flow: Flow) -> Result<FlowRow, DataPlaneError> {
    let tables = maps.conn_tables(false)?;
    let proto = if flow.protocol == "UDP" {
        PROTO_UDP
    } else {
        PROTO_TCP
    };
    let (map, bucket) = match (flow.client.ip(), flow.virtual_service.ip()) {
        (IpAddr::V4(c), IpAddr::V4(v)) => {
            let key = FlowKey4 {
                saddr: c.octets(),
                daddr: v.octets(),
                sport: flow.client.port(),
                dport: flow.virtual_service.port(),
                proto,
                _pad: [0; 3],
            };
            (map_names::CONNS4, tables.bucket4(&key))
        }
        (c, v) => {
            let key = FlowKey {
                saddr: lb_common::addr_of(c),
                daddr: lb_common::addr_of(v),
                sport: flow.client.port(),
                dport: flow.virtual_service.port(),
                proto,
                _pad: [0; 3],
            };
            (map_names::CONNS6, tables.bucket6(&key))
        }
    };
    let bucket = bucket as u32;
    Ok(FlowRow {
        flow,
        map,
        bucket,
        command: lookup(dir, map, &u32_key(bucket)),
    })
}

/// Parses `PROTO,CLIENT:PORT,VIP:PORT` (`tcp,198.18.0.1:40000,198.18.0.100:80`).
pub fn parse_flow(s: &str) -> Result<Flow, String> {
    let bad = || {
        format!(
            "{s:?} is not PROTO,CLIENT:PORT,VIP:PORT (e.g. tcp,198.18.0.1:40000,198.18.0.100:80)"
        )
    };
    let mut parts = s.split(',');
    let (Some(p), Some(c), Some(v), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let protocol = match p.to_ascii_lowercase().as_str() {
        "tcp" => "TCP",
        "udp" => "UDP",
        _ => return Err(bad()),
    };
    let client: SocketAddr = c.parse().map_err(|_| bad())?;
    let virtual_service: SocketAddr = v.parse().map_err(|_| bad())?;
    if client.is_ipv4() != virtual_service.is_ipv4() {
        return Err(bad());
    }
    Ok(Flow {
        protocol,
        client,
        virtual_service,
    })
}

/// Reads the maps pinned under `dir`; `only`: just the service at that address and port;
/// `flow`: also the connection-table bucket of that flow.
pub fn read(
    dir: &Path,
    only: Option<SocketAddr>,
    flow: Option<Flow>,
) -> Result<MapsReport, DataPlaneError> {
    let mut maps = Vec::new();
    for name in map_names::ALL {
        let path = dir.join(name);
        let info =
            MapInfo::from_pin(&path).map_err(|source| DataPlaneError::Map { name, source })?;
        let kind = info.map_type().map(kind).unwrap_or("other");
        maps.push(MapRow {
            name,
            kind,
            entries: info.max_entries(),
            value_size: info.value_size(),
            command: map_command(dir, name, info.max_entries()),
        });
    }
    let pinned = Maps::from_pins(dir)?;
    let sizes = pinned.sizes();
    let mut reals_of: std::collections::BTreeMap<u32, Vec<RealRow>> = Default::default();
    for slot in 0..sizes.reals {
        let real = pinned.reals_view.get(slot as usize);
        if real.flags & REAL_F_IN_USE != 0 {
            let key = u32_key(slot);
            reals_of.entry(real.service_id).or_default().push(RealRow {
                real_server: SocketAddr::new(ip_of(&real.addr), real.port),
                slot,
                commands: vec![
                    lookup(dir, map_names::REALS, &key),
                    lookup(dir, map_names::REAL_STATS, &key),
                ],
            });
        }
    }
    let mut services = Vec::new();
    for item in pinned.services.iter() {
        let (key, info) = item.map_err(|source| DataPlaneError::Map {
            name: map_names::SERVICES,
            source,
        })?;
        let vs = SocketAddr::new(ip_of(&key.vip), key.port);
        if only.is_some_and(|o| o != vs) {
            continue;
        }
        services.push(ServiceRow {
            protocol: if key.proto == PROTO_UDP { "UDP" } else { "TCP" },
            virtual_service: vs,
            scheduler: algo_name(info.algo),
            id: info.id,
            table_offset: info.table_offset,
            table_len: info.table_len,
            commands: service_commands(dir, &key, &info),
            real_servers: reals_of.remove(&info.id).unwrap_or_default(),
        });
    }
    services.sort_by_key(|s| (s.virtual_service, s.protocol));
    let flow = flow.map(|f| flow_row(dir, &pinned, f)).transpose()?;
    let conn_slots = pinned.conn_slots()?.0;
    Ok(MapsReport {
        pin_path: dir.to_path_buf(),
        maps,
        services,
        flow,
        conn_slots,
        conn_table: None,
    })
}

/// The report as `xlb maps` prints it.
pub fn render(r: &MapsReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Maps pinned under {} (a dump prints every entry of an array, used or not):",
        r.pin_path.display()
    );
    let _ = writeln!(
        out,
        "{:<20} {:<13} {:>9}  command",
        "map", "type", "entries"
    );
    for m in &r.maps {
        let _ = writeln!(
            out,
            "{:<20} {:<13} {:>9}  {}",
            m.name, m.kind, m.entries, m.command
        );
    }
    let max = match &r.conn_table {
        Some(t) => format!(
            "up to {} (connection_table_size; grown {} time{} since the daemon started)",
            t.max_slots,
            t.growths,
            if t.growths == 1 { "" } else { "s" }
        ),
        None => "up to connection_table_size (no daemon answered to say it)".to_string(),
    };
    let _ = writeln!(
        out,
        "(xlb_conns4 / xlb_conns6: {} IPv4 slots now, growing {max}; a dump while they \
         have at most {CONN_DUMP_MAX_BUCKETS} buckets, then one bucket of {CONN_WAYS} slots \
         per lookup; `xlb conns` lists the live ones)",
        r.conn_slots
    );
    if let Some(f) = &r.flow {
        let _ = writeln!(
            out,
            "\n{} {} -> {}: bucket {} of {}\n  {}",
            f.flow.protocol, f.flow.client, f.flow.virtual_service, f.bucket, f.map, f.command
        );
    }
    for s in &r.services {
        let _ = writeln!(
            out,
            "\n{} {} {}: service id {}, table xlb_table[{}..{}]",
            s.protocol,
            s.virtual_service,
            s.scheduler,
            s.id,
            s.table_offset,
            s.table_offset + s.table_len
        );
        for c in &s.commands {
            let _ = writeln!(out, "  {c}");
        }
        for real in &s.real_servers {
            let _ = writeln!(out, "  -> {} (slot {})", real.real_server, real.slot);
            for c in &real.commands {
                let _ = writeln!(out, "     {c}");
            }
        }
    }
    out
}

/// Parses `VIP:PORT` (IPv6 in brackets).
pub fn parse_service(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
        .map_err(|_| format!("{s:?} is not VIP:PORT (e.g. 198.18.0.100:80 or [2001:db8::1]:80)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::v4_mapped;

    #[test]
    fn keys_are_written_as_the_maps_hold_them() {
        assert_eq!(u32_key(0x0102_0304), "4 3 2 1");
        let key = ServiceKey {
            vip: v4_mapped([198, 18, 0, 100]),
            port: 80,
            proto: PROTO_TCP,
            _pad: 0,
        };
        assert_eq!(
            service_key_hex(&key),
            "hex 00 00 00 00 00 00 00 00 00 00 ff ff c6 12 00 64 50 00 06 00"
        );
    }

    #[test]
    fn a_service_gets_its_entries_and_its_table_slice() {
        let dir = Path::new("/sys/fs/bpf/xlb");
        let key = ServiceKey {
            vip: v4_mapped([198, 18, 0, 100]),
            port: 80,
            proto: PROTO_TCP,
            _pad: 0,
        };
        let info = ServiceInfo {
            id: 3,
            table_offset: 256,
            table_len: 5,
            ..Default::default()
        };
        let c = service_commands(dir, &key, &info);
        assert_eq!(c.len(), 5);
        assert_eq!(
            c[2],
            "bpftool map lookup pinned /sys/fs/bpf/xlb/xlb_svc_stats key 3 0 0 0"
        );
        assert!(c[4].starts_with("for i in $(seq 256 260); do"), "{}", c[4]);
        let empty = ServiceInfo {
            table_len: 0,
            ..info
        };
        assert_eq!(service_commands(dir, &key, &empty).len(), 4, "no table");
    }

    #[test]
    fn connection_tables_are_dumped_at_their_start_size_and_looked_up_once_grown() {
        let dir = Path::new("/p");
        assert_eq!(
            map_command(dir, map_names::CONNS4, CONN_DUMP_MAX_BUCKETS),
            "bpftool map dump pinned /p/xlb_conns4"
        );
        assert_eq!(
            map_command(dir, map_names::CONNS4, CONN_DUMP_MAX_BUCKETS * 4),
            "bpftool map lookup pinned /p/xlb_conns4 key 0 0 0 0"
        );
        assert_eq!(
            map_command(dir, map_names::CONNS6, CONN_DUMP_MAX_BUCKETS * 4),
            "bpftool map lookup pinned /p/xlb_conns6 key 0 0 0 0"
        );
        assert_eq!(
            map_command(dir, map_names::TABLE, 1 << 24),
            "bpftool map dump pinned /p/xlb_table"
        );
    }

    #[test]
    fn flows_are_named_as_protocol_client_and_service() {
        let f = parse_flow("tcp,198.18.0.1:40000,198.18.0.100:80").unwrap();
        assert_eq!(f.protocol, "TCP");
        assert_eq!(f.client, "198.18.0.1:40000".parse().unwrap());
        assert_eq!(f.virtual_service.port(), 80);
        assert!(parse_flow("UDP,[2001:db8::1]:5353,[2001:db8::100]:53").is_ok());
        for bad in [
            "tcp,198.18.0.1:40000",
            "icmp,198.18.0.1:1,198.18.0.100:80",
            "tcp,198.18.0.1:1,[2001:db8::100]:80",
            "tcp,198.18.0.1:1,198.18.0.100:80,x",
        ] {
            assert!(
                parse_flow(bad).unwrap_err().contains("PROTO,CLIENT:PORT"),
                "{bad}"
            );
        }
    }

    #[test]
    fn services_are_named_as_vip_and_port() {
        assert_eq!(
            parse_service("198.18.0.100:80").unwrap(),
            "198.18.0.100:80".parse().unwrap()
        );
        assert!(parse_service("[2001:db8::1]:53").is_ok());
        assert!(parse_service("nonsense").unwrap_err().contains("VIP:PORT"));
    }
}
