//! `static_ipaddress`, `static_routes`, `static_rules` and each instance's
//! `virtual_routes` / `virtual_rules`: every entry parses, names valid interfaces, and is
//! not listed twice (the second would be added and removed with the first).

use std::collections::HashMap;
use std::str::FromStr;

use super::super::locate::KeyPath;
use super::super::{Config, IpRoute, IpRule, VirtualIpAddress};
use super::{Invalid, check_ifname, invalid};

pub(super) fn validate_routes(cfg: &Config) -> Result<(), Invalid> {
    let root = KeyPath::root();
    let statics: Vec<VirtualIpAddress> =
        parse(&cfg.static_ipaddress, &root.key("static_ipaddress"))?;
    let vips: HashMap<_, _> = cfg
        .vrrp_instance
        .iter()
        .flat_map(|vi| vi.vips().into_iter().map(move |a| (a, vi.name.as_str())))
        .collect();
    let mut seen = HashMap::new();
    for (k, a) in statics.iter().enumerate() {
        let at = root.key("static_ipaddress").index(k);
        let Some(dev) = &a.dev else {
            return Err(invalid(
                at,
                format!(
                    "static address {}: `dev IFNAME` is required (which interface gets it)",
                    a.addr
                ),
            ));
        };
        check_ifname(dev).map_err(|m| invalid(at.clone(), m))?;
        if a.no_track {
            return Err(invalid(
                at,
                "`no_track` is for VIPs: a static address is never tracked",
            ));
        }
        if let Some(name) = vips.get(&a.addr) {
            return Err(invalid(
                at,
                format!(
                    "{} is also a VIP of vrrp_instance {name:?}: the VIP would leave with \
                     MASTER and take the static address with it",
                    a.addr
                ),
            ));
        }
        if let Some(first) = seen.insert(a.addr, k) {
            return Err(invalid(
                at,
                format!("{} is already static_ipaddress[{first}]", a.addr),
            ));
        }
    }
    let mut routes = Routes::default();
    let mut rules = Rules::default();
    let sr: Vec<IpRoute> = parse(&cfg.static_routes, &root.key("static_routes"))?;
    routes.check(&sr, &root.key("static_routes"))?;
    let sl: Vec<IpRule> = parse(&cfg.static_rules, &root.key("static_rules"))?;
    rules.check(&sl, &root.key("static_rules"))?;
    for (i, vi) in cfg.vrrp_instance.iter().enumerate() {
        let p = root.key("vrrp_instance").index(i);
        let vr: Vec<IpRoute> = parse(&vi.virtual_routes, &p.key("virtual_routes"))?;
        routes.check(&vr, &p.key("virtual_routes"))?;
        let vl: Vec<IpRule> = parse(&vi.virtual_rules, &p.key("virtual_rules"))?;
        rules.check(&vl, &p.key("virtual_rules"))?;
    }
    Ok(())
}

fn parse<T: FromStr<Err = String>>(raw: &[String], at: &KeyPath) -> Result<Vec<T>, Invalid> {
    raw.iter()
        .enumerate()
        .map(|(k, s)| s.parse().map_err(|m| invalid(at.index(k), m)))
        .collect()
}

/// Routes seen so far, by what identifies them in the kernel.
#[derive(Default)]
struct Routes(HashMap<(String, bool), KeyPath>);

impl Routes {
    fn check(&mut self, list: &[IpRoute], at: &KeyPath) -> Result<(), Invalid> {
        for (k, r) in list.iter().enumerate() {
            let here = at.index(k);
            for dev in r.devices() {
                check_ifname(dev).map_err(|m| invalid(here.clone(), m))?;
            }
            if let Some(first) = self.0.insert((r.key(), r.is_ipv6()), here.clone()) {
                return Err(invalid(
                    here,
                    format!("route {} is already {first}", r.key()),
                ));
            }
        }
        Ok(())
    }
}

/// Rules seen so far.
#[derive(Default)]
struct Rules(HashMap<(String, bool), KeyPath>);

impl Rules {
    fn check(&mut self, list: &[IpRule], at: &KeyPath) -> Result<(), Invalid> {
        for (k, r) in list.iter().enumerate() {
            let here = at.index(k);
            for dev in r.iif.iter().chain(&r.oif) {
                check_ifname(dev).map_err(|m| invalid(here.clone(), m))?;
            }
            if let Some(first) = self.0.insert((r.to_string(), r.ipv6), here.clone()) {
                return Err(invalid(here, format!("rule {r} is already {first}")));
            }
        }
        Ok(())
    }
}
