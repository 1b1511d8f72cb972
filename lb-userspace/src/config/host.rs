//! A configuration against the host it is meant to run on: what `xlb run` would refuse
//! although the file itself is valid. Every interface the file names (an instance's,
//! its tracked ones, a VIP's `dev`, a virtual server's) must exist, and an IPv4
//! `unicast_src_ip` / `mcast_src_ip` must be an address of this host (the VRRP socket
//! binds to it; IPv6 sources are bound with `IPV6_FREEBIND`, so they are not checked).
//!
//! `xlb check` runs these by default and skips them with `--no-host-checks`, for a
//! file meant for another machine. [`HostView`] is what they ask, so tests can give
//! them any host.

use std::ffi::CString;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;

use super::locate::{Document, KeyPath};
use super::{Config, ConfigError, ConfigErrorKind, Location};

/// What the host checks need to know about a host.
pub trait HostView {
    /// Whether an interface of this name exists.
    fn has_interface(&self, name: &str) -> bool;
    /// Whether a socket can bind to `addr` (it is an address of this host).
    fn can_bind(&self, addr: IpAddr) -> bool;
}

/// The host xlb runs on, in its network namespace.
pub struct ThisHost;

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
}

impl Config {
    /// [`Config::load`], then the checks against `host` (see the module docs).
    pub fn load_on_host(path: &Path, host: &dyn HostView) -> Result<Config, ConfigError> {
        let (text, file) = super::read(path)?;
        Self::parse_on_host(&text, &file, host)
    }

    /// [`Config::parse`], then the checks against `host`.
    pub fn parse_on_host(
        text: &str,
        file_name: &str,
        host: &dyn HostView,
    ) -> Result<Config, ConfigError> {
        let cfg = Self::parse(text, file_name)?;
        if let Err((path, message)) = check_host(&cfg, host) {
            // The text parsed a moment ago, so it parses again.
            let span = Document::parse(text)
                .ok()
                .and_then(|doc| doc.span_of(&path));
            return Err(ConfigError {
                file: file_name.to_owned(),
                location: span.map(|s| Box::new(Location::from_span(text, s))),
                key_path: path.to_string(),
                kind: ConfigErrorKind::Invalid(message),
            });
        }
        Ok(cfg)
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
    for (i, vi) in cfg.vrrp_instance.iter().enumerate() {
        let p = root.key("vrrp_instance").index(i);
        interface(&vi.interface, p.key("interface"))?;
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
    }
    for (i, vs) in cfg.virtual_server.iter().enumerate() {
        if let Some(name) = &vs.interface {
            interface(name, root.key("virtual_server").index(i).key("interface"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host with `eth0` and `eth1`, and the address 198.18.0.11.
    struct FakeHost;

    impl HostView for FakeHost {
        fn has_interface(&self, name: &str) -> bool {
            ["eth0", "eth1"].contains(&name)
        }
        fn can_bind(&self, addr: IpAddr) -> bool {
            addr == "198.18.0.11".parse::<IpAddr>().unwrap()
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
    fn this_host_answers_from_the_kernel() {
        assert!(ThisHost.has_interface("lo"));
        assert!(!ThisHost.has_interface("xlb-nonexist0"));
        assert!(!ThisHost.has_interface("bad\0name"));
        assert!(ThisHost.can_bind("127.0.0.1".parse().unwrap()));
        // TEST-NET-2, never an address of a test machine.
        assert!(!ThisHost.can_bind("198.51.100.77".parse().unwrap()));
    }
}
