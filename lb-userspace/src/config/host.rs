//! A configuration against the host it is meant to run on: what `xlb run` would refuse
//! although the file itself is valid. Every interface the file names (an instance's,
//! its tracked ones, a VIP's `dev`, a virtual server's) must exist; an IPv4
//! `unicast_src_ip` / `mcast_src_ip` must be an address of this host (the VRRP socket
//! binds to it; IPv6 sources are bound with `IPV6_FREEBIND`, so they are not checked);
//! an instance without one needs an address on its interface to send adverts from (IPv4,
//! or link-local IPv6); and every real and sorry server must be on a directly connected
//! network (DR rewrites MAC addresses only), not an address of this host.
//!
//! `xlb check` runs these by default and skips them with `--no-host-checks`, for a
//! file meant for another machine. [`HostView`] is what they ask; [`ThisHost`] answers
//! from the kernel, tests can give them any host.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;

use super::locate::{Document, KeyPath};
use super::{Config, ConfigError, ConfigErrorKind, Location, VrrpInstance};
use crate::netlink::{self, NetlinkError};

/// What the host checks need to know about a host.
pub trait HostView {
    /// Whether an interface of this name exists.
    fn has_interface(&self, name: &str) -> bool;
    /// Whether a socket can bind to `addr` (it is an address of this host).
    fn can_bind(&self, addr: IpAddr) -> bool;
    /// Whether `instance`'s interface has an address its adverts can leave from (asked
    /// only of an instance without `unicast_src_ip` / `mcast_src_ip`).
    fn has_advert_source(&self, instance: &VrrpInstance) -> bool;
    /// Why `ip` cannot be a DR real server of this host, if it cannot.
    fn real_server_problem(&self, ip: IpAddr) -> Option<String>;
    /// Why `instance`'s `use_vmac` interface, which exists, cannot be its VMAC.
    fn vmac_conflict(&self, instance: &VrrpInstance) -> Option<String>;
}

/// The host xlb runs on, in its network namespace. Interfaces and addresses are asked
/// of the kernel when checked; routes and interface addresses, which need rtnetlink, are
/// gathered once by [`ThisHost::probe`].
pub struct ThisHost {
    /// Instances whose interface has no address to send adverts from.
    without_source: BTreeSet<String>,
    /// Real and sorry servers that are not on-link, and why.
    off_link: BTreeMap<IpAddr, String>,
    /// Instances whose `use_vmac` name is taken by an interface xlb cannot use, and why.
    vmac_conflicts: BTreeMap<String, String>,
}

impl ThisHost {
    /// Asks the kernel what `cfg`'s checks need.
    pub async fn probe(cfg: &Config) -> Result<Self, NetlinkError> {
        let handle = netlink::connect()?;
        let mut host = Self {
            without_source: BTreeSet::new(),
            off_link: BTreeMap::new(),
            vmac_conflicts: BTreeMap::new(),
        };
        for vi in &cfg.vrrp_instance {
            let (Some(name), Ok(base)) = (
                vi.vmac_name(),
                netlink::ifindex(&handle, &vi.interface).await,
            ) else {
                continue;
            };
            let mac =
                crate::vrrp::vmac::virtual_mac(vi.virtual_router_id, vi.is_ipv6().unwrap_or(false));
            if let Some(why) =
                crate::vrrp::vmac::conflict(&handle, &name, base, &vi.interface, mac).await?
            {
                host.vmac_conflicts.insert(vi.name.clone(), why);
            }
        }
        for vi in &cfg.vrrp_instance {
            if vi.unicast_src_ip.is_some() || vi.mcast_src_ip.is_some() {
                continue;
            }
            // A missing interface is reported as such.
            let Ok(ifindex) = netlink::ifindex(&handle, &vi.interface).await else {
                continue;
            };
            let v6 = vi.is_ipv6().unwrap_or(false);
            let vips = vi.vips();
            let source = crate::vrrp::net::source_address(&handle, ifindex, v6, &vips).await?;
            if source.is_none() {
                host.without_source.insert(vi.name.clone());
            }
        }
        let servers: BTreeSet<IpAddr> = cfg
            .virtual_server
            .iter()
            .flat_map(|vs| vs.server_addresses())
            .collect();
        for ip in servers {
            match netlink::route_to(&handle, ip).await {
                Ok(_) => {}
                Err(e @ (NetlinkError::Io(_) | NetlinkError::Netlink(_))) => return Err(e),
                Err(e) => {
                    host.off_link.insert(ip, e.to_string());
                }
            }
        }
        Ok(host)
    }
}

impl HostView for ThisHost {
    fn has_interface(&self, name: &str) -> bool {
        let Ok(c) = CString::new(name) else {
            return false;
        };
        // SAFETY: a valid NUL-terminated string; the call only reads it.
        unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
    }

    fn can_bind(&self, addr: IpAddr) -> bool {
        UdpSocket::bind(SocketAddr::new(addr, 0)).is_ok()
    }

    fn has_advert_source(&self, instance: &VrrpInstance) -> bool {
        !self.without_source.contains(&instance.name)
    }

    fn real_server_problem(&self, ip: IpAddr) -> Option<String> {
        self.off_link.get(&ip).cloned()
    }

    fn vmac_conflict(&self, instance: &VrrpInstance) -> Option<String> {
        self.vmac_conflicts.get(&instance.name).cloned()
    }
}

impl Config {
    /// [`Config::load`], then the checks against this host (see the module docs).
    pub async fn load_on_host(path: &Path) -> Result<Config, ConfigError> {
        let (text, file) = super::read(path)?;
        let cfg = Self::parse(&text, &file)?;
        let host = ThisHost::probe(&cfg).await.map_err(|e| ConfigError {
            file: file.clone(),
            location: None,
            key_path: String::new(),
            kind: ConfigErrorKind::Host(e.to_string()),
        })?;
        cfg.check_on(&host, &text, &file)?;
        Ok(cfg)
    }

    /// [`Config::parse`], then the checks against `host`.
    pub fn parse_on_host(
        text: &str,
        file_name: &str,
        host: &dyn HostView,
    ) -> Result<Config, ConfigError> {
        let cfg = Self::parse(text, file_name)?;
        cfg.check_on(host, text, file_name)?;
        Ok(cfg)
    }

    /// The host checks of this config, parsed from `text`, located in it.
    fn check_on(
        &self,
        host: &dyn HostView,
        text: &str,
        file_name: &str,
    ) -> Result<(), ConfigError> {
        let Err((path, message)) = check_host(self, host) else {
            return Ok(());
        };
        // The text parsed a moment ago, so it parses again.
        let span = Document::parse(text)
            .ok()
            .and_then(|doc| doc.span_of(&path));
        Err(ConfigError {
            file: file_name.to_owned(),
            location: span.map(|s| Box::new(Location::from_span(text, s))),
            key_path: path.to_string(),
            kind: ConfigErrorKind::Invalid(message),
        })
    }
}

const WHY: &str = "xlb run would refuse it; `xlb check --no-host-checks` checks a file \
                   meant for another machine";

/// The first thing `host` lacks, in file order of sections.
fn check_host(cfg: &Config, host: &dyn HostView) -> Result<(), (KeyPath, String)> {
    let interface = |name: &str, at: KeyPath| {
        if host.has_interface(name) {
            Ok(())
        } else {
            Err((
                at,
                format!("interface {name:?} does not exist on this host ({WHY})"),
            ))
        }
    };
    let root = KeyPath::root();
    for (k, a) in cfg.static_addresses().iter().enumerate() {
        if let Some(dev) = &a.dev {
            interface(dev, root.key("static_ipaddress").index(k))?;
        }
    }
    for (k, r) in cfg.static_route_list().iter().enumerate() {
        for dev in r.devices() {
            interface(dev, root.key("static_routes").index(k))?;
        }
    }
    for (i, vi) in cfg.vrrp_instance.iter().enumerate() {
        let p = root.key("vrrp_instance").index(i);
        interface(&vi.interface, p.key("interface"))?;
        for (k, r) in vi.virtual_route_list().iter().enumerate() {
            for dev in r.devices() {
                interface(dev, p.key("virtual_routes").index(k))?;
            }
        }
        for (k, t) in vi.tracked_interfaces().iter().enumerate() {
            interface(&t.name, p.key("track_interface").index(k))?;
        }
        for (key, vips) in [
            ("virtual_ipaddress", vi.virtual_addresses()),
            ("virtual_ipaddress_excluded", vi.excluded_addresses()),
        ] {
            for (k, v) in vips.iter().enumerate() {
                if let Some(dev) = &v.dev {
                    interface(dev, p.key(key).index(k))?;
                }
            }
        }
        for (key, src) in [
            ("unicast_src_ip", vi.unicast_src_ip),
            ("mcast_src_ip", vi.mcast_src_ip),
        ] {
            if let Some(ip @ IpAddr::V4(_)) = src {
                if !host.can_bind(ip) {
                    return Err((
                        p.key(key),
                        format!(
                            "{ip} is not an address of this host, so the VRRP socket cannot \
                             send from it ({WHY})"
                        ),
                    ));
                }
            }
        }
        if let Some(why) = host.vmac_conflict(vi) {
            return Err((p.key("use_vmac"), format!("{why} ({WHY})")));
        }
        if vi.unicast_src_ip.is_none() && vi.mcast_src_ip.is_none() && !host.has_advert_source(vi) {
            let family = if vi.is_ipv6() == Some(true) {
                "link-local IPv6"
            } else {
                "IPv4"
            };
            return Err((
                p.key("interface"),
                format!(
                    "interface {:?} has no {family} address (besides the VIPs) to send \
                     adverts from: add one, or set unicast_src_ip / mcast_src_ip ({WHY})",
                    vi.interface
                ),
            ));
        }
    }
    for (i, g) in cfg.vrrp_sync_group.iter().enumerate() {
        let p = root.key("vrrp_sync_group").index(i);
        for (k, raw) in g.track_interface.iter().enumerate() {
            if let Ok(t) = raw.parse::<crate::config::TrackEntry>() {
                interface(&t.name, p.key("track_interface").index(k))?;
            }
        }
    }
    for (i, vs) in cfg.virtual_server.iter().enumerate() {
        let p = root.key("virtual_server").index(i);
        if let Some(name) = &vs.interface {
            interface(name, p.key("interface"))?;
        }
        if vs.lb_kind == super::LbKind::Nat
            && vs.vrrp_instance(cfg).is_none()
            && !host.can_bind(vs.ip)
        {
            return Err((
                p.key("ip"),
                format!(
                    "{} is not an address of this host: a NAT service's VIP must be the \
                     director's own, as the real servers' replies are, so put it on an \
                     interface or in a vrrp_instance's virtual_ipaddress ({WHY})",
                    vs.ip
                ),
            ));
        }
        let servers = vs
            .real_server
            .iter()
            .enumerate()
            .map(|(j, r)| (r.ip, p.key("real_server").index(j).key("ip")))
            .chain(
                vs.sorry_server
                    .as_ref()
                    .map(|s| (s.ip, p.key("sorry_server").key("ip"))),
            );
        for (ip, at) in servers {
            if let Some(problem) = host.real_server_problem(ip) {
                return Err((at, format!("{problem} ({WHY})")));
            }
        }
    }
    if let Some(sync) = &cfg.sync {
        let p = root.key("sync");
        if let Some(name) = &sync.interface {
            interface(name, p.key("interface"))?;
        }
        if let Some(problem) = sync
            .key_file
            .as_deref()
            .and_then(super::sync::key_file_problem)
        {
            return Err((p.key("key_file"), format!("{problem} ({WHY})")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host with `eth0` and `eth1`, and the address 198.18.0.11 on eth0; 198.18.1.0/24
    /// is behind a gateway.
    struct FakeHost;

    impl HostView for FakeHost {
        fn has_interface(&self, name: &str) -> bool {
            ["eth0", "eth1"].contains(&name)
        }
        fn can_bind(&self, addr: IpAddr) -> bool {
            addr == "198.18.0.11".parse::<IpAddr>().unwrap()
        }
        fn has_advert_source(&self, instance: &VrrpInstance) -> bool {
            instance.interface == "eth0"
        }
        fn vmac_conflict(&self, instance: &VrrpInstance) -> Option<String> {
            (instance.vmac_name().as_deref() == Some("eth1"))
                .then(|| "interface eth1 exists and is not a macvlan".to_owned())
        }
        fn real_server_problem(&self, ip: IpAddr) -> Option<String> {
            let s = ip.to_string();
            s.starts_with("198.18.1.")
                .then(|| format!("{ip} is reached through the gateway 198.18.0.254"))
        }
    }

    const VI: &str = "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n\
                      virtual_router_id = 51\nvirtual_ipaddress = [\"198.18.0.100/24\"]\n";

    fn refused(text: &str) -> String {
        match Config::parse_on_host(text, "t.toml", &FakeHost) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_vmac_name_taken_by_another_interface_is_refused() {
        let e = refused(&format!("{VI}use_vmac = \"eth1\"\n"));
        assert!(
            e.starts_with(
                "t.toml:6:12: vrrp_instance[0].use_vmac: interface eth1 exists and is not a \
                 macvlan"
            ),
            "{e}"
        );
        assert!(
            Config::parse_on_host(&format!("{VI}use_vmac = true\n"), "t.toml", &FakeHost).is_ok()
        );
    }

    #[test]
    fn every_interface_named_must_exist() {
        let e = refused(&VI.replace("\"eth0\"", "\"xlb-nonexist0\""));
        assert_eq!(
            e,
            format!(
                "t.toml:3:13: vrrp_instance[0].interface: interface \"xlb-nonexist0\" does \
                 not exist on this host ({WHY})"
            )
        );
        for (text, expected) in [
            (
                format!("{VI}track_interface = [\"eth1\", \"eth9 weight -10\"]\n"),
                "t.toml:6:28: vrrp_instance[0].track_interface[1]: interface \"eth9\"",
            ),
            (
                format!("{VI}virtual_ipaddress_excluded = [\"2001:db8::1/64 dev eth7\"]\n"),
                "t.toml:6:31: vrrp_instance[0].virtual_ipaddress_excluded[0]: interface \"eth7\"",
            ),
            (
                "[[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\ninterface = \"eth5\"\n"
                    .to_owned(),
                "t.toml:4:13: virtual_server[0].interface: interface \"eth5\"",
            ),
            (
                format!("static_ipaddress = [\"198.18.1.1/24 dev eth4\"]\n{VI}"),
                "t.toml:1:21: static_ipaddress[0]: interface \"eth4\"",
            ),
            (
                format!(
                    "static_routes = [\"198.18.9.0/24 nexthop via 198.18.0.1 dev eth3\"]\n{VI}"
                ),
                "t.toml:1:18: static_routes[0]: interface \"eth3\"",
            ),
            (
                format!(
                    "{VI}virtual_routes = [\"198.18.9.0/24 dev eth1\", \"198.18.8.0/24 dev eth2\"]\n"
                ),
                "t.toml:6:45: vrrp_instance[0].virtual_routes[1]: interface \"eth2\"",
            ),
        ] {
            let e = refused(&text);
            assert!(
                e.starts_with(expected),
                "{e}\n  does not start with\n{expected}"
            );
        }
        Config::parse_on_host(
            &format!("{VI}track_interface = [\"eth1\"]\n"),
            "t.toml",
            &FakeHost,
        )
        .unwrap();
    }

    #[test]
    fn an_ipv4_source_must_be_an_address_of_this_host() {
        let unicast = |src: &str| {
            format!("{VI}unicast_src_ip = \"{src}\"\nunicast_peer = [\"198.18.0.12\"]\n")
        };
        Config::parse_on_host(&unicast("198.18.0.11"), "t.toml", &FakeHost).unwrap();
        assert_eq!(
            refused(&unicast("198.18.0.99")),
            format!(
                "t.toml:6:18: vrrp_instance[0].unicast_src_ip: 198.18.0.99 is not an address \
                 of this host, so the VRRP socket cannot send from it ({WHY})"
            )
        );
    }

    #[test]
    fn an_instance_needs_an_address_to_send_adverts_from() {
        let on_eth1 = VI.replace("\"eth0\"", "\"eth1\"");
        assert_eq!(
            refused(&on_eth1),
            format!(
                "t.toml:3:13: vrrp_instance[0].interface: interface \"eth1\" has no IPv4 \
                 address (besides the VIPs) to send adverts from: add one, or set \
                 unicast_src_ip / mcast_src_ip ({WHY})"
            )
        );
        Config::parse_on_host(
            &format!("{on_eth1}mcast_src_ip = \"198.18.0.11\"\n"),
            "t.toml",
            &FakeHost,
        )
        .unwrap();
    }

    #[test]
    fn real_and_sorry_servers_must_be_on_link() {
        let vs = "[[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\ninterface = \"eth0\"\n";
        let rs = |ip: &str| format!("[[virtual_server.real_server]]\nip = \"{ip}\"\n");
        assert_eq!(
            refused(&format!("{vs}{}{}", rs("198.18.0.21"), rs("198.18.1.5"))),
            format!(
                "t.toml:8:6: virtual_server[0].real_server[1].ip: 198.18.1.5 is reached \
                 through the gateway 198.18.0.254 ({WHY})"
            )
        );
        assert!(
            refused(&format!("{vs}sorry_server = {{ ip = \"198.18.1.9\" }}\n"))
                .starts_with("t.toml:5:23: virtual_server[0].sorry_server.ip: 198.18.1.9 is")
        );
    }

    #[test]
    fn a_nat_vip_must_be_this_hosts_own() {
        let nat = |vip: &str| {
            format!(
                "[[virtual_server]]\nip = \"{vip}\"\nport = 80\nlb_kind = \"NAT\"\n\
                 interface = \"eth0\"\n"
            )
        };
        assert_eq!(
            refused(&nat("198.18.0.99")),
            format!(
                "t.toml:2:6: virtual_server[0].ip: 198.18.0.99 is not an address of this \
                 host: a NAT service's VIP must be the director's own, as the real \
                 servers' replies are, so put it on an interface or in a vrrp_instance's \
                 virtual_ipaddress ({WHY})"
            )
        );
        // A local address, or a VRRP VIP (not on the host until MASTER), is fine; so is
        // a DR VIP anywhere.
        Config::parse_on_host(&nat("198.18.0.11"), "t.toml", &FakeHost).unwrap();
        Config::parse_on_host(&format!("{VI}{}", nat("198.18.0.100")), "t.toml", &FakeHost)
            .unwrap();
        Config::parse_on_host(
            &nat("198.18.0.99").replace("NAT", "DR"),
            "t.toml",
            &FakeHost,
        )
        .unwrap();
    }

    #[tokio::test]
    async fn this_host_answers_from_the_kernel() {
        let cfg = Config::parse(
            "[[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\ninterface = \"lo\"\n\
             [[virtual_server.real_server]]\nip = \"198.51.100.77\"\n",
            "t.toml",
        )
        .unwrap();
        let host = ThisHost::probe(&cfg).await.unwrap();
        assert!(host.has_interface("lo"));
        assert!(!host.has_interface("xlb-nonexist0"));
        assert!(!host.has_interface("bad\0name"));
        assert!(host.can_bind("127.0.0.1".parse().unwrap()));
        // TEST-NET-2, never an address of a test machine.
        assert!(!host.can_bind("198.51.100.77".parse().unwrap()));
        // Off-link: behind the default gateway, or no route at all.
        let problem = host
            .real_server_problem("198.51.100.77".parse().unwrap())
            .expect("TEST-NET-2 is not on a link of this host");
        assert!(problem.contains("198.51.100.77"), "{problem}");
    }
}
