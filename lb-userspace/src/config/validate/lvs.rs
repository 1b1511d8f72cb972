//! The rules of `virtual_server`s and their real servers and checkers: addresses and
//! families, DR's single port, hashing flags, interfaces, sorry servers, duplicates,
//! check targets and timeouts in force, HTTP URLs.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::super::check::TimingOptions;
use super::super::locate::{Document, KeyPath};
use super::super::{
    Config, HttpGet, LbAlgo, LbKind, MAX_MATCH_KEYS, MatchPorts, Protocol, RealServerConfig,
    VirtualServer,
};
use super::{Invalid, check_ifname, family, invalid};

pub(super) fn validate_virtual_servers(cfg: &Config, doc: &Document) -> Result<(), Invalid> {
    let root = KeyPath::root().key("virtual_server");
    let mut services: HashMap<(IpAddr, u16, Protocol), usize> = HashMap::new();
    let mut marks: HashMap<u32, usize> = HashMap::new();
    for (i, vs) in cfg.virtual_server.iter().enumerate() {
        let p = root.index(i);
        validate_fwmark(cfg, doc, i, &p, &mut services, &mut marks)?;
        if vs.ip.is_unspecified() || vs.ip.is_multicast() || vs.ip.is_loopback() {
            return Err(invalid(
                p.key("ip"),
                format!("{} cannot be a virtual server address", vs.ip),
            ));
        }
        if let IpAddr::V6(v6) = vs.ip {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return Err(invalid(p.key("ip"), mapped_vip_message(cfg, i, v4)));
            }
        }
        if vs.fwmark.is_none() {
            if let Some(first) = services.insert((vs.ip, vs.port, vs.protocol), i) {
                return Err(invalid(
                    p.clone(),
                    format!(
                        "duplicate virtual service {}: already defined as {}",
                        vs.service_name(),
                        owner_name(cfg, first)
                    ),
                ));
            }
        }
        if vs.port == 0 && vs.persistence_timeout == 0 && vs.fwmark.is_none() {
            return Err(invalid(
                p.key("port"),
                "port 0 (all ports) needs persistence_timeout > 0: IPVS only accepts an \
                 all-ports service as a persistent one",
            ));
        }
        if vs.ops {
            return Err(invalid(
                p.key("ops"),
                "ops (one-packet scheduling) is not supported: xlb tracks UDP flows like \
                 TCP connections, each staying on its real server until idle for \
                 lvs_timeouts.udp; remove it",
            ));
        }
        let algo = vs.lb_algo.sched_algo();
        if algo.counts_conns() && vs.real_server.len() > lb_common::MAX_COUNTED as usize {
            return Err(invalid(
                p.key("real_server"),
                format!(
                    "lb_algo {:?} scans every real server per new flow in the XDP program, \
                     at most {} of them: this service has {}; split it, or use \"wrr\" or \
                     \"mh\"",
                    algo.name(),
                    lb_common::MAX_COUNTED,
                    vs.real_server.len()
                ),
            ));
        }
        if vs.sorry_server_inhibit {
            return Err(invalid(
                p.key("sorry_server_inhibit"),
                "sorry_server_inhibit is not supported: when the quorum is back xlb removes \
                 the sorry server from the data plane and its flows move to the real \
                 servers; remove it",
            ));
        }
        let hashed = matches!(vs.lb_algo, LbAlgo::Sh | LbAlgo::Mh);
        for (on, keys) in [
            (vs.hash_port, ["mh_port", "mh-port", "sh_port", "sh-port"]),
            (
                vs.hash_fallback,
                ["mh_fallback", "mh-fallback", "sh_fallback", "sh-fallback"],
            ),
        ] {
            if on && !hashed {
                let key = keys
                    .into_iter()
                    .find(|k| doc.contains(&p.key(k)))
                    .unwrap_or(keys[0]);
                return Err(invalid(
                    p.key(key),
                    format!(
                        "{key} only applies to lb_algo \"sh\" or \"mh\" (this service uses {:?})",
                        vs.lb_algo.as_str()
                    ),
                ));
            }
        }
        if vs.delay_loop <= 0.0 {
            return Err(invalid(
                p.key("delay_loop"),
                "delay_loop must be > 0 seconds",
            ));
        }
        match &vs.interface {
            Some(name) => check_ifname(name).map_err(|m| invalid(p.key("interface"), m))?,
            None => {
                if vs.resolved_interface(cfg).is_none() {
                    return Err(invalid(
                        p.key("interface"),
                        format!(
                            "{} is not in any vrrp_instance's virtual_ipaddress, so there is \
                             no interface to attach to: set `interface`",
                            vs.ip
                        ),
                    ));
                }
            }
        }
        if let Some(sorry) = &vs.sorry_server {
            let at = p.key("sorry_server");
            if sorry.ip.is_ipv4() != vs.ip.is_ipv4() {
                return Err(invalid(
                    at.key("ip"),
                    format!(
                        "{} is {} but the VIP {} is {}: DR forwards frames unchanged, so \
                         both must be of one family",
                        sorry.ip,
                        family(sorry.ip),
                        vs.ip,
                        family(vs.ip)
                    ),
                ));
            }
            if let Some(port) = sorry.port {
                if vs.fwmark.is_some() && port != 0 {
                    return Err(invalid(
                        at.key("port"),
                        "a fwmark service's sorry server has no port (DR keeps each \
                         packet's destination port): leave it out",
                    ));
                }
                if vs.fwmark.is_none()
                    && vs.lb_kind == LbKind::Dr
                    && vs.port != 0
                    && port != vs.port
                {
                    return Err(invalid(at.key("port"), dr_port_message(vs)));
                }
            }
        }

        let mut backends: HashMap<(IpAddr, u16), usize> = HashMap::new();
        for (j, rs) in vs.real_server.iter().enumerate() {
            let q = p.key("real_server").index(j);
            validate_real_server(vs, rs, &rs.checker_defaults(vs, &cfg.global_defs), &q)?;
            if let Some(first) = backends.insert((rs.ip, rs.port), j) {
                return Err(invalid(
                    q,
                    format!(
                        "duplicate real server {}: already real_server[{first}] of this \
                         virtual_server",
                        std::net::SocketAddr::new(rs.ip, rs.port)
                    ),
                ));
            }
        }
    }
    every_port_overlaps(cfg, &services)
}

/// A fwmark entry `*` (every port) and another service's exact port of the same VIP and
/// protocol, or a fwmark entry's port and another service's port 0: the data plane
/// would give the exact port to one and the rest to the other, where IPVS gives a marked
/// packet to its fwmark service. Refused at the fwmark entry.
fn every_port_overlaps(
    cfg: &Config,
    services: &HashMap<(IpAddr, u16, Protocol), usize>,
) -> Result<(), Invalid> {
    let root = KeyPath::root().key("virtual_server");
    for (i, vs) in cfg.virtual_server.iter().enumerate() {
        if vs.fwmark.is_none() {
            continue;
        }
        for (k, m) in vs.fwmark_match.iter().enumerate() {
            let proto = m.protocol_or(vs.protocol);
            // The first in file order (the map's own order is random).
            let clash = (services.iter())
                .filter(|((ip, port, p), owner)| {
                    **owner != i
                        && *ip == m.ip
                        && *p == proto
                        && match m.ports {
                            MatchPorts::All => *port != 0,
                            MatchPorts::Range(..) => *port == 0,
                        }
                })
                .min_by_key(|((_, port, _), owner)| (**owner, *port));
            if let Some(((ip, port, p), owner)) = clash {
                let (what, other) = match m.ports {
                    MatchPorts::All => (
                        "every port".to_owned(),
                        format!("{}/{}", std::net::SocketAddr::new(*ip, *port), p.as_str()),
                    ),
                    MatchPorts::Range(..) => (
                        format!("{m}"),
                        format!("every port of {ip}/{} (port 0)", p.as_str()),
                    ),
                };
                return Err(invalid(
                    root.index(i).key("match").index(k),
                    format!(
                        "{what} of this entry overlaps {other} of {}: a packet must select \
                         one service (IPVS would give a marked packet to the fwmark \
                         service; list the ports instead)",
                        owner_name(cfg, *owner)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `virtual_server[i]` in an error: with its fwmark, if any.
fn owner_name(cfg: &Config, i: usize) -> String {
    match cfg.virtual_server[i].fwmark {
        Some(mark) => format!("a match entry of virtual_server[{i}] (fwmark {mark})"),
        None => format!("virtual_server[{i}]"),
    }
}

/// A fwmark service's own rules: `match` instead of `ip` / `port`, one family, one VRRP
/// instance, at most [`MAX_MATCH_KEYS`] service-map entries; and every service key
/// (its entries' ports, or a plain service's ip:port/protocol) taken by one service.
fn validate_fwmark(
    cfg: &Config,
    doc: &Document,
    i: usize,
    p: &KeyPath,
    services: &mut HashMap<(IpAddr, u16, Protocol), usize>,
    marks: &mut HashMap<u32, usize>,
) -> Result<(), Invalid> {
    let vs = &cfg.virtual_server[i];
    for (k, m) in vs.fwmark_match.iter().enumerate() {
        if let Some(why) = &m.invalid {
            return Err(invalid(p.key("match").index(k), why.clone()));
        }
    }
    let Some(mark) = vs.fwmark else {
        if doc.contains(&p.key("match")) {
            return Err(invalid(
                p.key("match"),
                "match lists a fwmark service's packets: set fwmark = N, or remove it",
            ));
        }
        for key in ["ip", "port"] {
            if !doc.contains(&p.key(key)) {
                return Err(invalid(
                    p.clone(),
                    format!(
                        "missing field `{key}` (a virtual_server is ip + port, or fwmark + match)"
                    ),
                ));
            }
        }
        return Ok(());
    };
    if let Some(first) = marks.insert(mark, i) {
        return Err(invalid(
            p.key("fwmark"),
            format!("fwmark {mark} is already virtual_server[{first}]"),
        ));
    }
    if vs.fwmark_match.is_empty() {
        return Err(invalid(
            p.key("fwmark"),
            format!(
                "fwmark {mark} needs `match`, the packets your firewall marks {mark} \
                 (XDP runs before netfilter and sees no mark), e.g. match = \
                 [\"tcp:198.18.0.10:80\", \"tcp:198.18.0.10:443\"]"
            ),
        ));
    }
    // `ip` and `port` name the service by its first entry; written, they must agree
    // (a serialized config has them).
    let first = &vs.fwmark_match[0];
    for (key, same) in [
        ("ip", vs.ip == first.ip),
        ("port", vs.port == first.first_port()),
    ] {
        if doc.contains(&p.key(key)) && !same {
            return Err(invalid(
                p.key(key),
                format!(
                    "a fwmark service's packets are its `match` entries: leave `{key}` out \
                     (it is the first entry's, {first})"
                ),
            ));
        }
    }
    let owner = |ip: IpAddr| {
        cfg.vrrp_instance
            .iter()
            .find(|vi| vi.owns(ip))
            .map(|vi| vi.name.as_str())
    };
    let mut keys = 0usize;
    for (k, m) in vs.fwmark_match.iter().enumerate() {
        let at = p.key("match").index(k);
        if m.ip.is_unspecified() || m.ip.is_multicast() || m.ip.is_loopback() {
            return Err(invalid(
                at,
                format!("{} cannot be a virtual server address", m.ip),
            ));
        }
        if let IpAddr::V6(v6) = m.ip {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return Err(invalid(
                    at,
                    format!(
                        "{} is an IPv4-mapped IPv6 address: the data plane keys IPv4 \
                         services by that form; write {v4}",
                        m.ip
                    ),
                ));
            }
        }
        if m.ip.is_ipv4() != vs.ip.is_ipv4() {
            return Err(invalid(
                at,
                format!(
                    "{} is {} but the first entry's {} is {}: the real servers of one \
                     service are of one family",
                    m.ip,
                    family(m.ip),
                    vs.ip,
                    family(vs.ip)
                ),
            ));
        }
        if owner(m.ip) != owner(vs.ip) {
            let name = |o: Option<&str>| {
                o.map_or("no vrrp_instance".to_owned(), |n| {
                    format!("vrrp_instance {n}")
                })
            };
            return Err(invalid(
                at,
                format!(
                    "{} belongs to {} but {} to {}: one service is forwarded where one \
                     instance is MASTER, so its addresses must move together",
                    m.ip,
                    name(owner(m.ip)),
                    vs.ip,
                    name(owner(vs.ip))
                ),
            ));
        }
        if vs.interface.is_none() && k > 0 {
            // Each VIP's packets arrive where its address lives: one interface for all.
            let mut probe = vs.clone();
            probe.ip = m.ip;
            let (here, first) = (probe.resolved_interface(cfg), vs.resolved_interface(cfg));
            if here != first {
                return Err(invalid(
                    at,
                    format!(
                        "{} lives on {} but {} on {}: XDP attaches one service to one \
                         interface; set `interface`, or keep the VIPs on one",
                        m.ip,
                        here.unwrap_or("no interface"),
                        vs.ip,
                        first.unwrap_or("no interface")
                    ),
                ));
            }
        }
        keys += m.key_count();
        if keys > MAX_MATCH_KEYS {
            return Err(invalid(
                at,
                format!(
                    "the match entries come to {keys} service-map entries (one per port of \
                     a range); at most {MAX_MATCH_KEYS} per service (the map holds \
                     {} in all): use `*` for every port of an address",
                    lb_common::MAX_SERVICES
                ),
            ));
        }
        let proto = m.protocol_or(vs.protocol);
        for port in m.port_list() {
            if let Some(first) = services.insert((m.ip, port, proto), i) {
                let whom = if first == i {
                    "an earlier entry of this match list".to_owned()
                } else {
                    owner_name(cfg, first)
                };
                return Err(invalid(
                    at,
                    format!(
                        "{}/{} overlaps {whom}: a packet must select one service",
                        std::net::SocketAddr::new(m.ip, port),
                        proto.as_str()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// xlb's maps hold an IPv4 address as its IPv4-mapped IPv6 form, so `::ffff:a.b.c.d`
/// would be the IPv4 service (and clash with one that exists).
fn mapped_vip_message(cfg: &Config, i: usize, v4: Ipv4Addr) -> String {
    let vs = &cfg.virtual_server[i];
    let shadowed = cfg
        .virtual_server
        .iter()
        .position(|o| o.ip == IpAddr::V4(v4) && o.port == vs.port && o.protocol == vs.protocol);
    let clash = match shadowed {
        Some(j) => format!(
            " and shadow virtual_server[{j}] ({})",
            cfg.virtual_server[j].service_name()
        ),
        None => String::new(),
    };
    format!(
        "{} is an IPv4-mapped IPv6 address: the data plane keys IPv4 services by that \
         form, so it would be the IPv4 service {v4}{clash}; write ip = \"{v4}\"",
        vs.ip
    )
}

fn dr_port_message(vs: &VirtualServer) -> String {
    format!(
        "DR forwards to the virtual server's port unchanged, so this must be {} (or left \
         out); health-check another port with connect_port, or use lb_kind = \"NAT\"",
        vs.port
    )
}

fn validate_real_server(
    vs: &VirtualServer,
    rs: &RealServerConfig,
    inherited: &TimingOptions,
    q: &KeyPath,
) -> Result<(), Invalid> {
    if rs.ip.is_ipv4() != vs.ip.is_ipv4() {
        return Err(invalid(
            q.key("ip"),
            format!(
                "real server {} is {} but the VIP {} is {}: DR forwards frames unchanged, \
                 so both must be of one family",
                rs.ip,
                family(rs.ip),
                vs.ip,
                family(vs.ip)
            ),
        ));
    }
    if rs.ip == vs.ip {
        return Err(invalid(
            q.key("ip"),
            "a real server cannot be the VIP itself",
        ));
    }
    if rs.ip.is_unspecified() || rs.ip.is_multicast() || rs.ip.is_loopback() {
        return Err(invalid(
            q.key("ip"),
            format!("{} cannot be a real server address", rs.ip),
        ));
    }
    if vs.fwmark.is_some() && rs.port != 0 {
        return Err(invalid(
            q.key("port"),
            "a fwmark service's real servers have no port (DR keeps each packet's \
             destination port): leave it out, and health-check a port with connect_port",
        ));
    }
    if vs.fwmark.is_none() && vs.lb_kind == LbKind::Dr && vs.port != 0 && rs.port != vs.port {
        return Err(invalid(q.key("port"), dr_port_message(vs)));
    }

    let target_port = |connect_port: Option<u16>, at: &KeyPath| {
        if connect_port.is_none() && rs.port == 0 {
            Err(invalid(
                at.clone(),
                "the real server's port is 0 (all ports), so the check has no port: set \
                 connect_port",
            ))
        } else {
            Ok(())
        }
    };
    let connection = |connect_ip: Option<IpAddr>, bindto: Option<IpAddr>, at: &KeyPath| {
        let target = connect_ip.unwrap_or(rs.ip);
        if let Some(b) = bindto {
            if b.is_ipv4() != target.is_ipv4() {
                return Err(invalid(
                    at.key("bindto"),
                    format!("{b} is {} but the check connects to {target}", family(b)),
                ));
            }
        }
        Ok(())
    };
    let positive = |v: f64, at: KeyPath| {
        if v <= 0.0 {
            Err(invalid(at, "must be > 0 seconds"))
        } else {
            Ok(())
        }
    };

    if let Some(c) = &rs.tcp_check {
        let at = q.key("tcp_check");
        target_port(c.connect_port, &at)?;
        connection(c.connect_ip, c.bindto, &at)?;
        let t = c.timing_in_force(inherited);
        positive(t.connect_timeout, at.key("connect_timeout"))?;
        positive(t.delay_loop, at.key("delay_loop"))?;
    }
    for (key, check) in [("http_get", &rs.http_get), ("ssl_get", &rs.ssl_get)] {
        if let Some(c) = check {
            let at = q.key(key);
            target_port(c.connect_port, &at)?;
            connection(c.connect_ip, c.bindto, &at)?;
            let t = c.timing_in_force(inherited);
            positive(t.connect_timeout, at.key("connect_timeout"))?;
            positive(t.delay_loop, at.key("delay_loop"))?;
            validate_http(c, key == "ssl_get", &at)?;
        }
    }
    if let Some(c) = &rs.smtp_check {
        let at = q.key("smtp_check");
        connection(c.connect_ip, c.bindto, &at)?;
        for (k, (h, written)) in c.hosts().iter().skip(1).zip(&c.host).enumerate() {
            let hat = at.key("host").index(k);
            connection(h.connect_ip, h.bindto, &hat)?;
            if let Some(t) = written.connect_timeout {
                positive(t, hat.key("connect_timeout"))?;
            }
        }
    }
    if let Some(c) = &rs.misc_check {
        let at = q.key("misc_check");
        if c.misc_path.trim().is_empty() {
            return Err(invalid(at.key("misc_path"), "the command is empty"));
        }
        // `misc_timeout` in force: as written, else `delay_loop`.
        let t = c.timing_in_force(inherited);
        positive(t.connect_timeout, at.key("misc_timeout"))?;
        positive(t.delay_loop, at.key("delay_loop"))?;
    }
    Ok(())
}

fn validate_http(c: &HttpGet, ssl: bool, at: &KeyPath) -> Result<(), Invalid> {
    if c.url.is_empty() {
        return Err(invalid(
            at.clone(),
            "needs at least one url, e.g. url = [{ path = \"/\" }]",
        ));
    }
    for (k, u) in c.url.iter().enumerate() {
        let ua = at.key("url").index(k);
        if !u.path.starts_with('/') {
            return Err(invalid(
                ua.key("path"),
                format!("{:?} is not an absolute path (starts with '/')", u.path),
            ));
        }
        if let Some(d) = &u.digest {
            if d.len() != 32 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    ua.key("digest"),
                    "digest is an MD5 sum: 32 hexadecimal digits",
                ));
            }
        }
    }
    if !ssl {
        for (key, on) in [
            ("enable_sni", c.enable_sni),
            ("sni_name", c.sni_name.is_some()),
            ("tls_compliant", c.tls_compliant),
        ] {
            if on {
                return Err(invalid(
                    at.key(key),
                    format!("{key} is for ssl_get (TLS); http_get speaks plain HTTP"),
                ));
            }
        }
    }
    Ok(())
}
