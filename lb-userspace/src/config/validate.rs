//! After deserialization: keepalived's inheritance of defaults ([`resolve`]), then the
//! rules that span several keys ([`validate`]). Single-value rules (ranges, enum
//! spellings) are enforced while deserializing, in `de.rs` and the `TryFrom` impls.

use std::collections::HashMap;
use std::net::IpAddr;

use super::check::TimingOptions;
use super::locate::{Document, KeyPath};
use super::{Config, HttpGet, LbAlgo, Protocol, RealServerConfig, VirtualServer};
use super::{TrackEntry, VirtualIpAddress, VrrpInstance};

/// A rule broken at `path`.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub path: KeyPath,
    pub message: String,
}

fn invalid(path: KeyPath, message: impl Into<String>) -> Invalid {
    Invalid {
        path,
        message: message.into(),
    }
}

/// Fills values that keepalived inherits from an enclosing block when the file does
/// not set them where they apply. (Checker timing is not filled in: checkers keep it
/// as written, and `timing_in_force` resolves it.)
pub(crate) fn resolve(cfg: &mut Config, doc: &Document) {
    let root = KeyPath::root();
    let global = cfg.global_defs.clone();
    for (i, vi) in cfg.vrrp_instance.iter_mut().enumerate() {
        let p = root.key("vrrp_instance").index(i);
        if !doc.contains(&p.key("version")) {
            vi.version = if vi.is_ipv6() == Some(true) {
                3
            } else {
                global.vrrp_version
            };
        }
    }
    for (i, vs) in cfg.virtual_server.iter_mut().enumerate() {
        let p = root.key("virtual_server").index(i);
        for (j, rs) in vs.real_server.iter_mut().enumerate() {
            let q = p.key("real_server").index(j);
            if !doc.contains(&q.key("port")) {
                rs.port = vs.port;
            }
            if !doc.contains(&q.key("inhibit_on_failure")) {
                rs.inhibit_on_failure = vs.inhibit_on_failure;
            }
            if !doc.contains(&q.key("alpha")) {
                rs.alpha = vs.alpha;
            }
            let host = rs.virtualhost.as_ref().or(vs.virtualhost.as_ref());
            for c in [&mut rs.http_get, &mut rs.ssl_get].into_iter().flatten() {
                if c.virtualhost.is_none() {
                    c.virtualhost = host.cloned();
                }
            }
        }
    }
}

/// Checks the rules that involve more than one value. The first broken rule, in file
/// order of sections, is returned.
pub(crate) fn validate(cfg: &Config, doc: &Document) -> Result<(), Invalid> {
    let root = KeyPath::root();
    validate_global(cfg, &root.key("global_defs"))?;
    for (name, script) in &cfg.vrrp_script {
        let p = root.key("vrrp_script").key(name);
        if script.script.trim().is_empty() {
            return Err(invalid(p.key("script"), "the script command is empty"));
        }
        if script.interval <= 0.0 {
            return Err(invalid(p.key("interval"), "interval must be > 0 seconds"));
        }
        if script.timeout == Some(0.0) {
            return Err(invalid(p.key("timeout"), "timeout must be > 0 seconds"));
        }
    }
    validate_vrrp(cfg)?;
    validate_virtual_servers(cfg, doc)
}

fn validate_global(cfg: &Config, p: &KeyPath) -> Result<(), Invalid> {
    let g = &cfg.global_defs;
    if let Some(s) = &g.smtp_server {
        if s.trim().is_empty() {
            return Err(invalid(p.key("smtp_server"), "smtp_server is empty"));
        }
    }
    for (k, mail) in g.notification_email.iter().enumerate() {
        if !mail.contains('@') {
            return Err(invalid(
                p.key("notification_email").index(k),
                format!("{mail:?} is not a mail address"),
            ));
        }
    }
    if !g.vrrp_mcast_group4.is_multicast() {
        return Err(invalid(
            p.key("vrrp_mcast_group4"),
            format!("{} is not a multicast address", g.vrrp_mcast_group4),
        ));
    }
    if !g.vrrp_mcast_group6.is_multicast() {
        return Err(invalid(
            p.key("vrrp_mcast_group6"),
            format!("{} is not a multicast address", g.vrrp_mcast_group6),
        ));
    }
    Ok(())
}

/// Linux interface names (`dev_valid_name`): 1 to 15 bytes, no `/`, `:` or whitespace,
/// not `.` or `..`.
fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(format!(
            "{name:?} is not an interface name (1 to 15 characters, no '/', ':' or spaces)"
        ));
    }
    Ok(())
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn validate_vrrp(cfg: &Config) -> Result<(), Invalid> {
    let root = KeyPath::root().key("vrrp_instance");
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut owners: HashMap<IpAddr, usize> = HashMap::new();
    for (i, vi) in cfg.vrrp_instance.iter().enumerate() {
        let p = root.index(i);
        if vi.name.trim().is_empty() {
            return Err(invalid(p.key("name"), "name is empty"));
        }
        if let Some(first) = names.insert(&vi.name, i) {
            return Err(invalid(
                p.key("name"),
                format!(
                    "vrrp_instance name {:?} is already used by vrrp_instance[{first}]",
                    vi.name
                ),
            ));
        }
        check_ifname(&vi.interface).map_err(|m| invalid(p.key("interface"), m))?;

        let vips = parse_vips(&vi.virtual_ipaddress, &p.key("virtual_ipaddress"))?;
        let excluded = parse_vips(
            &vi.virtual_ipaddress_excluded,
            &p.key("virtual_ipaddress_excluded"),
        )?;
        if let Some(first) = vips.first() {
            if let Some((k, v)) = vips
                .iter()
                .enumerate()
                .find(|(_, v)| v.addr.is_ipv4() != first.addr.is_ipv4())
            {
                return Err(invalid(
                    p.key("virtual_ipaddress").index(k),
                    format!(
                        "{} is {} but {} is {}: a VRRP instance advertises one address \
                         family; move it to virtual_ipaddress_excluded or to another \
                         vrrp_instance",
                        v.addr,
                        family(v.addr),
                        first.addr,
                        family(first.addr)
                    ),
                ));
            }
        }
        for (key, list) in [
            ("virtual_ipaddress", &vips),
            ("virtual_ipaddress_excluded", &excluded),
        ] {
            for (k, v) in list.iter().enumerate() {
                if v.addr.is_unspecified() || v.addr.is_multicast() || v.addr.is_loopback() {
                    return Err(invalid(
                        p.key(key).index(k),
                        format!("{} cannot be a virtual address", v.addr),
                    ));
                }
                if let Some(dev) = &v.dev {
                    check_ifname(dev).map_err(|m| invalid(p.key(key).index(k), m))?;
                }
                if let Some(&other) = owners.get(&v.addr) {
                    let (what, other_name) = if other == i {
                        ("listed twice in this vrrp_instance", String::new())
                    } else {
                        (
                            "already a VIP of vrrp_instance",
                            format!(" {:?}", cfg.vrrp_instance[other].name),
                        )
                    };
                    return Err(invalid(
                        p.key(key).index(k),
                        format!("{} is {what}{other_name}", v.addr),
                    ));
                }
                owners.insert(v.addr, i);
            }
        }

        let ipv6 = vips.first().map(|v| v.addr.is_ipv6());
        if ipv6 == Some(true) && vi.version == 2 {
            return Err(invalid(
                p.key("version"),
                "VRRPv2 is IPv4 only and this instance has IPv6 virtual addresses: use \
                 version = 3",
            ));
        }
        check_advert_int(vi).map_err(|m| invalid(p.key("advert_int"), m))?;
        if vi.preempt_delay > 1000.0 {
            return Err(invalid(
                p.key("preempt_delay"),
                format!("{} is out of range (0..=1000 seconds)", vi.preempt_delay),
            ));
        }
        if let Some(auth) = &vi.authentication {
            if vi.version == 3 {
                return Err(invalid(
                    p.key("authentication"),
                    "VRRPv3 has no authentication (RFC 5798): remove it, or use version = 2",
                ));
            }
            if cfg.global_defs.vrrp_strict {
                return Err(invalid(
                    p.key("authentication"),
                    "global_defs.vrrp_strict forbids authentication",
                ));
            }
            let n = auth.auth_pass.chars().count();
            if n == 0 || n > 8 || !auth.auth_pass.is_ascii() {
                return Err(invalid(
                    p.key("authentication").key("auth_pass"),
                    format!(
                        "auth_pass must be 1 to 8 ASCII characters (VRRP PASS carries 8 \
                         bytes; keepalived silently truncates, xlb refuses), got {n}"
                    ),
                ));
            }
        }

        let same_family = |ip: IpAddr| ipv6.is_none_or(|v6| ip.is_ipv6() == v6);
        if vi.unicast_src_ip.is_some() && vi.unicast_peer.is_empty() {
            return Err(invalid(
                p.key("unicast_src_ip"),
                "unicast_src_ip without unicast_peer: adverts would go nowhere; add \
                 unicast_peer, or remove unicast_src_ip for multicast",
            ));
        }
        if !vi.unicast_peer.is_empty() && cfg.global_defs.vrrp_strict {
            return Err(invalid(
                p.key("unicast_peer"),
                "global_defs.vrrp_strict forbids unicast_peer",
            ));
        }
        for (key, ip) in [
            ("unicast_src_ip", vi.unicast_src_ip),
            ("mcast_src_ip", vi.mcast_src_ip),
        ] {
            if let Some(ip) = ip {
                if !same_family(ip) {
                    return Err(invalid(
                        p.key(key),
                        format!("{ip} is {} but the virtual addresses are not", family(ip)),
                    ));
                }
            }
        }
        let mut peers = HashMap::new();
        for (k, &peer) in vi.unicast_peer.iter().enumerate() {
            let at = p.key("unicast_peer").index(k);
            if !same_family(peer) {
                return Err(invalid(
                    at,
                    format!(
                        "{peer} is {} but the virtual addresses are not",
                        family(peer)
                    ),
                ));
            }
            if peer.is_unspecified() || peer.is_multicast() {
                return Err(invalid(at, format!("{peer} cannot be a unicast peer")));
            }
            if Some(peer) == vi.unicast_src_ip {
                return Err(invalid(
                    at,
                    format!("{peer} is this router's own unicast_src_ip"),
                ));
            }
            if let Some(first) = peers.insert(peer, k) {
                return Err(invalid(
                    at,
                    format!("{peer} is already unicast_peer[{first}]"),
                ));
            }
        }

        for (k, raw) in vi.track_interface.iter().enumerate() {
            let at = p.key("track_interface").index(k);
            let t: TrackEntry = raw.parse().map_err(|m| invalid(at.clone(), m))?;
            check_ifname(&t.name).map_err(|m| invalid(at, m))?;
        }
        for (k, raw) in vi.track_script.iter().enumerate() {
            let at = p.key("track_script").index(k);
            let t: TrackEntry = raw.parse().map_err(|m| invalid(at.clone(), m))?;
            if !cfg.vrrp_script.contains_key(&t.name) {
                return Err(invalid(at, format!("there is no [vrrp_script.{}]", t.name)));
            }
        }
    }

    // Two instances with one virtual_router_id on one interface and address family
    // would read each other's adverts; keepalived allows it only with disjoint unicast
    // peers.
    for (b, vb) in cfg.vrrp_instance.iter().enumerate() {
        for va in &cfg.vrrp_instance[..b] {
            let disjoint_unicast = !va.unicast_peer.is_empty()
                && !vb.unicast_peer.is_empty()
                && va.unicast_peer.iter().all(|x| !vb.unicast_peer.contains(x));
            if va.interface == vb.interface
                && va.virtual_router_id == vb.virtual_router_id
                && va.is_ipv6().unwrap_or(false) == vb.is_ipv6().unwrap_or(false)
                && !disjoint_unicast
            {
                return Err(invalid(
                    root.index(b).key("virtual_router_id"),
                    format!(
                        "virtual_router_id {} is already used on {} by vrrp_instance {:?}",
                        vb.virtual_router_id, vb.interface, va.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn parse_vips(raw: &[String], at: &KeyPath) -> Result<Vec<VirtualIpAddress>, Invalid> {
    raw.iter()
        .enumerate()
        .map(|(k, s)| s.parse().map_err(|m| invalid(at.index(k), m)))
        .collect()
}

fn check_advert_int(vi: &VrrpInstance) -> Result<(), String> {
    let a = vi.advert_int;
    if vi.version == 2 {
        if a.fract() != 0.0 || !(1.0..=255.0).contains(&a) {
            return Err(format!(
                "{a} is not a VRRPv2 advert_int: whole seconds, 1..=255 (VRRPv3 allows \
                 steps of 0.01)"
            ));
        }
    } else {
        let centis = (a * 100.0).round();
        if (a * 100.0 - centis).abs() > 1e-6 || !(1.0..=4095.0).contains(&centis) {
            return Err(format!(
                "{a} is not a VRRPv3 advert_int: 0.01..=40.95 seconds in steps of 0.01"
            ));
        }
    }
    Ok(())
}

fn validate_virtual_servers(cfg: &Config, doc: &Document) -> Result<(), Invalid> {
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
        if vs.ops && vs.protocol != Protocol::Udp {
            return Err(invalid(
                p.key("ops"),
                "ops (one-packet scheduling) is for UDP services",
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
                if vs.port != 0 && port != vs.port {
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

fn dr_port_message(vs: &VirtualServer) -> String {
    format!(
        "DR forwards to the virtual server's port unchanged, so this must be {} (or left \
         out); health-check another port with connect_port",
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
    if vs.port != 0 && rs.port != vs.port {
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
