//! The rules of `vrrp_instance`s: names, interfaces, virtual addresses and their
//! families, versions and advert intervals, authentication, unicast peers, tracking,
//! strict mode, and virtual_router_id clashes between instances; and the `global_defs`
//! VRRP keys xlb accepts only at their default.

use std::collections::HashMap;
use std::net::IpAddr;

use super::super::locate::{Document, KeyPath};
use super::super::{Config, TrackEntry, VirtualIpAddress, VrrpInstance};
use super::{Invalid, check_ifname, family, invalid};

/// The RFCs' number of missed adverts before a backup takes over.
const RFC_DOWN_TIMER_ADVERTS: u32 = 3;

pub(super) fn validate_vrrp(cfg: &Config, doc: &Document) -> Result<(), Invalid> {
    validate_vrrp_globals(cfg)?;
    let root = KeyPath::root().key("vrrp_instance");
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut owners: HashMap<IpAddr, usize> = HashMap::new();
    let mut vmacs: HashMap<String, String> = HashMap::new();
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

        if let Some(r) = &vi.track_reference {
            let at = p.key("track_reference");
            if r.addresses.is_empty() {
                return Err(invalid(
                    at.key("addresses"),
                    "track_reference needs at least one address to ping",
                ));
            }
            for (k, a) in r.addresses.iter().enumerate() {
                if a.is_unspecified() || a.is_multicast() {
                    return Err(invalid(
                        at.key("addresses").index(k),
                        format!("{a} cannot be pinged as a reference address"),
                    ));
                }
            }
            if r.interval <= 0.0 || r.timeout.is_some_and(|t| t <= 0.0) {
                return Err(invalid(
                    at.key("interval"),
                    "track_reference's interval and timeout must be above 0 seconds",
                ));
            }
        }
        let same_family = |ip: IpAddr| ipv6.is_none_or(|v6| ip.is_ipv6() == v6);
        if let Some(h) = &vi.heartbeat {
            let at = p.key("heartbeat");
            check_ifname(&h.interface).map_err(|m| invalid(at.key("interface"), m))?;
            if h.interface == vi.interface {
                return Err(invalid(
                    at.key("interface"),
                    "the heartbeat path must be another interface than the instance's own",
                ));
            }
            if !same_family(h.unicast_src_ip) {
                return Err(invalid(
                    at.key("unicast_src_ip"),
                    "not of the virtual addresses' family",
                ));
            }
            if h.unicast_peer.is_empty() {
                return Err(invalid(
                    at.key("unicast_peer"),
                    "the heartbeat path needs at least one unicast_peer",
                ));
            }
            for (k, &peer) in h.unicast_peer.iter().enumerate() {
                if !same_family(peer)
                    || peer.is_unspecified()
                    || peer.is_multicast()
                    || peer == h.unicast_src_ip
                {
                    return Err(invalid(
                        at.key("unicast_peer").index(k),
                        format!("{peer} cannot be a heartbeat peer here"),
                    ));
                }
            }
        }
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

        validate_receive_and_strict(cfg, vi, &p, doc)?;

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
        validate_vmac(cfg, vi, &p, &mut vmacs)?;
    }

    validate_sync_groups(cfg)?;

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

/// `use_vmac` / `vmac_xmit_base`: a valid macvlan name that is not the instance's own
/// interface nor another instance's VMAC (`vmacs`: name -> instance so far); keepalived's
/// config errors (`vmac_xmit_base` without a VMAC, or under strict mode) refused.
fn validate_vmac(
    cfg: &Config,
    vi: &VrrpInstance,
    p: &KeyPath,
    vmacs: &mut HashMap<String, String>,
) -> Result<(), Invalid> {
    let Some(name) = vi.vmac_name() else {
        if vi.vmac_xmit_base {
            return Err(invalid(
                p.key("vmac_xmit_base"),
                "vmac_xmit_base is only valid with use_vmac",
            ));
        }
        return Ok(());
    };
    let at = p.key("use_vmac");
    check_ifname(&name).map_err(|m| invalid(at.clone(), format!("use_vmac: {m}")))?;
    if name == vi.interface {
        return Err(invalid(
            at,
            format!(
                "use_vmac: {name:?} is the instance's own interface; the VMAC is a macvlan over it"
            ),
        ));
    }
    if vi.vmac_xmit_base && cfg.global_defs.vrrp_strict {
        return Err(invalid(
            p.key("vmac_xmit_base"),
            "vmac_xmit_base is incompatible with vrrp_strict (keepalived resets it)",
        ));
    }
    if let Some(other) = vmacs.insert(name.clone(), vi.name.clone()) {
        return Err(invalid(
            at,
            format!(
                "use_vmac: {name:?} is already the VMAC of vrrp_instance {other:?}; name one with use_vmac = \"NAME\""
            ),
        ));
    }
    Ok(())
}

/// `vrrp_sync_group`s: unique names, members that exist and are in one group only,
/// tracking entries as an instance's.
fn validate_sync_groups(cfg: &Config) -> Result<(), Invalid> {
    let root = KeyPath::root().key("vrrp_sync_group");
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut member_of: HashMap<&str, usize> = HashMap::new();
    for (i, g) in cfg.vrrp_sync_group.iter().enumerate() {
        let p = root.index(i);
        if g.name.trim().is_empty() {
            return Err(invalid(p.key("name"), "name is empty"));
        }
        if let Some(first) = names.insert(&g.name, i) {
            return Err(invalid(
                p.key("name"),
                format!(
                    "vrrp_sync_group name {:?} is already used by vrrp_sync_group[{first}]",
                    g.name
                ),
            ));
        }
        if g.group.is_empty() {
            return Err(invalid(
                p.key("group"),
                "a sync group needs at least one vrrp_instance",
            ));
        }
        for (k, member) in g.group.iter().enumerate() {
            let at = p.key("group").index(k);
            if !cfg.vrrp_instance.iter().any(|vi| &vi.name == member) {
                return Err(invalid(at, format!("there is no vrrp_instance {member:?}")));
            }
            if let Some(other) = member_of.insert(member, i) {
                let what = if other == i {
                    "is listed twice in this vrrp_sync_group".to_owned()
                } else {
                    format!(
                        "is already in vrrp_sync_group {:?}: an instance can be in one sync \
                         group only",
                        cfg.vrrp_sync_group[other].name
                    )
                };
                return Err(invalid(at, format!("vrrp_instance {member:?} {what}")));
            }
        }
        for (k, raw) in g.track_interface.iter().enumerate() {
            let at = p.key("track_interface").index(k);
            let t: TrackEntry = raw.parse().map_err(|m| invalid(at.clone(), m))?;
            check_ifname(&t.name).map_err(|m| invalid(at, m))?;
        }
        for (k, raw) in g.track_script.iter().enumerate() {
            let at = p.key("track_script").index(k);
            let t: TrackEntry = raw.parse().map_err(|m| invalid(at.clone(), m))?;
            if !cfg.vrrp_script.contains_key(&t.name) {
                return Err(invalid(at, format!("there is no [vrrp_script.{}]", t.name)));
            }
        }
    }
    Ok(())
}

/// `global_defs` keys whose only supported value is their default.
fn validate_vrrp_globals(cfg: &Config) -> Result<(), Invalid> {
    let g = KeyPath::root().key("global_defs");
    for (key, value, what) in [
        (
            "vrrp_garp_interval",
            cfg.global_defs.vrrp_garp_interval,
            "gratuitous ARPs",
        ),
        (
            "vrrp_gna_interval",
            cfg.global_defs.vrrp_gna_interval,
            "unsolicited neighbour adverts",
        ),
    ] {
        if value != 0.0 {
            return Err(invalid(
                g.key(key),
                format!(
                    "{key} = {value} is not supported: xlb sends the {what} of a burst back \
                     to back; remove it (or set 0) and space bursts with \
                     vrrp_garp_master_delay / vrrp_garp_master_refresh"
                ),
            ));
        }
    }
    Ok(())
}

/// `check_unicast_src`, `accept` and what `vrrp_strict` forbids of an instance.
fn validate_receive_and_strict(
    cfg: &Config,
    vi: &VrrpInstance,
    p: &KeyPath,
    doc: &Document,
) -> Result<(), Invalid> {
    let strict = cfg.global_defs.vrrp_strict;
    if doc.contains(&p.key("check_unicast_src"))
        && vi.check_unicast_src
        && vi.unicast_peer.is_empty()
    {
        return Err(invalid(
            p.key("check_unicast_src"),
            "check_unicast_src checks the source of unicast adverts, and this instance \
             has no unicast_peer: add unicast_peer, or remove check_unicast_src",
        ));
    }
    if vi.accept == Some(false) {
        return Err(invalid(
            p.key("accept"),
            "accept = false (keepalived's no_accept) is not supported: xlb installs no \
             firewall rules to drop packets to the VIPs, so a non-owner master always \
             accepts them; remove it, or set accept = true",
        ));
    }
    if strict && vi.accept.is_none() && vi.priority != 255 {
        return Err(invalid(
            p.clone(),
            format!(
                "global_defs.vrrp_strict turns accept mode off for vrrp_instance {:?} (as \
                 keepalived's no_accept), which xlb cannot do (it installs no firewall \
                 rules): write accept = true in this instance to run strict with accept \
                 mode on",
                vi.name
            ),
        ));
    }
    if strict && vi.down_timer_adverts != RFC_DOWN_TIMER_ADVERTS {
        let at = if doc.contains(&p.key("down_timer_adverts")) {
            p.key("down_timer_adverts")
        } else {
            KeyPath::root()
                .key("global_defs")
                .key("vrrp_down_timer_adverts")
        };
        return Err(invalid(
            at,
            format!(
                "global_defs.vrrp_strict requires the RFCs' {RFC_DOWN_TIMER_ADVERTS} missed \
                 adverts; {} deviates from the protocol",
                vi.down_timer_adverts
            ),
        ));
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
