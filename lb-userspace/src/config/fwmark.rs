//! `fwmark` services: what IPVS selects by a firewall mark (`iptables -t mangle ... -j MARK
//! --set-mark N`), xlb selects by an explicit `match` list, because XDP runs before
//! netfilter and sees no mark. Each entry is `[PROTO:]ADDRESS:PORTS`:
//!
//! - `PROTO`: `tcp` or `udp`; default the virtual server's `protocol`;
//! - `ADDRESS`: an IPv4 address, or an IPv6 one in brackets (`[2001:db8::10]`);
//! - `PORTS`: a port (`443`), a range (`8000-8010`, each port one entry of the data
//!   plane's service map), or `*` (every port of the address, as a port-0 service).
//!
//! Every entry of one `virtual_server` is one service: one scheduler state, one
//! persistence table, one set of real servers and counters (in the data plane, several
//! keys of `xlb_services` with one service id).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Protocol;

/// Most service-map entries one `match` list may expand to: a range costs one entry of
/// `xlb_services` (which holds `lb_common::MAX_SERVICES` in all) per port.
pub const MAX_MATCH_KEYS: usize = 1024;

/// The ports of a [`FwmarkMatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchPorts {
    /// `*`: every port (a port-0 service key).
    All,
    /// `first-last` (`first` alone when equal).
    Range(u16, u16),
}

/// One entry of a fwmark service's `match` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FwmarkMatch {
    /// None: the virtual server's `protocol` (filled in when the config is resolved).
    pub protocol: Option<Protocol>,
    pub ip: IpAddr,
    pub ports: MatchPorts,
    /// Why the entry as written is not one: kept so that validation reports it at the
    /// entry's own line and column (a deserializer error would point at the list).
    /// Never set in a config that loaded.
    pub(super) invalid: Option<String>,
}

impl FwmarkMatch {
    /// The protocol in force (`default`: the virtual server's).
    pub fn protocol_or(&self, default: Protocol) -> Protocol {
        self.protocol.unwrap_or(default)
    }

    /// The service-map ports: 0 for `*`.
    pub fn port_list(&self) -> impl Iterator<Item = u16> {
        let (a, b) = match self.ports {
            MatchPorts::All => (0, 0),
            MatchPorts::Range(a, b) => (a, b),
        };
        a..=b
    }

    /// How many service-map entries it takes.
    pub fn key_count(&self) -> usize {
        match self.ports {
            MatchPorts::All => 1,
            MatchPorts::Range(a, b) => usize::from(b - a) + 1,
        }
    }

    /// The first port, as the service's own port (0 for `*`).
    pub fn first_port(&self) -> u16 {
        match self.ports {
            MatchPorts::All => 0,
            MatchPorts::Range(a, _) => a,
        }
    }

    /// Whether the two entries select a common packet (same protocol in force, address,
    /// and overlapping ports; `*` overlaps only `*`: an exact port is looked up first).
    pub fn overlaps(
        &self,
        other: &FwmarkMatch,
        default: Protocol,
        other_default: Protocol,
    ) -> bool {
        if self.ip != other.ip || self.protocol_or(default) != other.protocol_or(other_default) {
            return false;
        }
        match (self.ports, other.ports) {
            (MatchPorts::All, MatchPorts::All) => true,
            (MatchPorts::Range(a, b), MatchPorts::Range(c, d)) => a <= d && c <= b,
            _ => false,
        }
    }

    /// Whether it selects `port` of `ip`/`protocol` as a service key (a port-0 key is only
    /// matched by `*`).
    pub fn holds(&self, ip: IpAddr, port: u16, protocol: Protocol, default: Protocol) -> bool {
        self.ip == ip
            && self.protocol_or(default) == protocol
            && match self.ports {
                MatchPorts::All => port == 0,
                MatchPorts::Range(a, b) => port != 0 && (a..=b).contains(&port),
            }
    }
}

impl std::str::FromStr for FwmarkMatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{s:?} is not a match entry ({why}): expected [tcp:|udp:]ADDRESS:PORTS, \
                 PORTS a port, FIRST-LAST or *, an IPv6 address in brackets, e.g. \
                 \"tcp:198.18.0.10:80-81\" or \"udp:[2001:db8::10]:*\""
            )
        };
        let t = s.trim();
        let (protocol, rest) = match t.split_once(':') {
            Some((p, rest)) if p.eq_ignore_ascii_case("tcp") => (Some(Protocol::Tcp), rest),
            Some((p, rest)) if p.eq_ignore_ascii_case("udp") => (Some(Protocol::Udp), rest),
            Some((p, _)) if p.eq_ignore_ascii_case("sctp") => {
                return Err(bad("xlb balances TCP and UDP"));
            }
            _ => (None, t),
        };
        let (addr, ports) = if let Some(v6) = rest.strip_prefix('[') {
            let (a, after) = v6.split_once(']').ok_or_else(|| bad("no closing ]"))?;
            let ports = after
                .strip_prefix(':')
                .ok_or_else(|| bad("no :PORTS after the address"))?;
            (a, ports)
        } else {
            let (a, ports) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("no :PORTS after the address"))?;
            if a.contains(':') {
                return Err(bad("write an IPv6 address in brackets"));
            }
            (a, ports)
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| bad(&format!("{addr:?} is not an IP address")))?;
        if ip.is_ipv4() == rest.starts_with('[') {
            return Err(bad("only IPv6 addresses take brackets"));
        }
        let port = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad(&format!("{p:?} is not a port (1..=65535)"))),
        };
        let ports = match ports {
            "*" => MatchPorts::All,
            p => match p.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (port(a)?, port(b)?);
                    if b < a {
                        return Err(bad("the range's last port is below its first"));
                    }
                    MatchPorts::Range(a, b)
                }
                None => {
                    let n = port(p)?;
                    MatchPorts::Range(n, n)
                }
            },
        };
        Ok(FwmarkMatch {
            protocol,
            ip,
            ports,
            invalid: None,
        })
    }
}

impl fmt::Display for FwmarkMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.protocol {
            write!(f, "{}:", p.as_str().to_ascii_lowercase())?;
        }
        match self.ip {
            IpAddr::V4(a) => write!(f, "{a}:")?,
            IpAddr::V6(a) => write!(f, "[{a}]:")?,
        }
        match self.ports {
            MatchPorts::All => f.write_str("*"),
            MatchPorts::Range(a, b) if a == b => write!(f, "{a}"),
            MatchPorts::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl Serialize for FwmarkMatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FwmarkMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(text.parse().unwrap_or_else(|why| FwmarkMatch {
            protocol: None,
            ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            ports: MatchPorts::All,
            invalid: Some(why),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fwmark_match_entries_parse_and_print() {
        let m: FwmarkMatch = "tcp:198.18.0.10:80-81".parse().unwrap();
        assert_eq!(m.protocol, Some(Protocol::Tcp));
        assert_eq!(m.ports, MatchPorts::Range(80, 81));
        assert_eq!(m.port_list().collect::<Vec<_>>(), [80, 81]);
        assert_eq!(m.to_string(), "tcp:198.18.0.10:80-81");
        let m: FwmarkMatch = "UDP:[2001:db8::10]:*".parse().unwrap();
        assert_eq!(m.ports, MatchPorts::All);
        assert_eq!(m.port_list().collect::<Vec<_>>(), [0]);
        assert_eq!(m.to_string(), "udp:[2001:db8::10]:*");
        let m: FwmarkMatch = "198.18.0.10:443".parse().unwrap();
        assert_eq!(m.protocol, None);
        assert_eq!(m.first_port(), 443);
        for bad in [
            "tcp:198.18.0.10",
            "tcp:2001:db8::1:80",
            "tcp:[198.18.0.10]:80",
            "tcp:198.18.0.10:0",
            "tcp:198.18.0.10:81-80",
            "sctp:198.18.0.10:80",
            "tcp:198.18.0.300:80",
            "tcp:[2001:db8::1:80",
        ] {
            assert!(bad.parse::<FwmarkMatch>().is_err(), "{bad}");
        }
        let a: FwmarkMatch = "tcp:198.18.0.10:80-90".parse().unwrap();
        let b: FwmarkMatch = "198.18.0.10:90".parse().unwrap();
        assert!(a.overlaps(&b, Protocol::Tcp, Protocol::Tcp));
        assert!(!a.overlaps(&b, Protocol::Tcp, Protocol::Udp));
        assert!(a.holds(
            "198.18.0.10".parse().unwrap(),
            85,
            Protocol::Tcp,
            Protocol::Udp
        ));
        assert!(!a.holds(
            "198.18.0.10".parse().unwrap(),
            0,
            Protocol::Tcp,
            Protocol::Tcp
        ));
    }
}
