//! The rules of `virtual_server`s and their real servers and checkers: addresses and
//! families, DR's single port, hashing flags, interfaces, sorry servers, duplicates,
//! check targets and timeouts in force, HTTP URLs.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::super::check::TimingOptions;
use super::super::locate::{Document, KeyPath};
use super::super::{Config, HttpGet, LbAlgo, LbKind, Protocol, RealServerConfig, VirtualServer};
use super::{Invalid, check_ifname, family, invalid};

pub(super) fn validate_virtual_servers(cfg: &Config, doc: &Document) -> Result<(), Invalid> {
    let root = KeyPath::root().key("virtual_server");
    let mut services: HashMap<(IpAddr, u16, Protocol), usize> = HashMap::new();
    for (i, vs) in cfg.virtual_server.iter().enumerate() {
        let p = root.index(i);
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
        if let Some(first) = services.insert((vs.ip, vs.port, vs.protocol), i) {
            return Err(invalid(
                p.clone(),
                format!(
                    "duplicate virtual service {}: already defined as virtual_server[{first}]",
                    vs.service_name()
                ),
            ));
        }
        if vs.port == 0 && vs.persistence_timeout == 0 {
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
                if vs.lb_kind == LbKind::Dr && vs.port != 0 && port != vs.port {
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
    if vs.lb_kind == LbKind::Dr && vs.port != 0 && rs.port != vs.port {
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
