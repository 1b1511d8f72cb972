//! Pure: which announced VIPs this director should announce now, and why not the others.
//!
//! A VIP is announced while at least one of its services can take new flows here: the
//! quorum holds, a live real server with a weight exists, and the interface XDP serves it
//! on forwards. Otherwise it is withdrawn, with the first reason found, so that the
//! routers send its flows to the other directors.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What one service of an announced VIP looks like to the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceView {
    /// `ip:port/PROTO`, for the reasons.
    pub name: String,
    pub quorum: bool,
    /// The total weight of its live real servers.
    pub live_weight: u32,
    /// Its XDP interface, and whether our program is attached there and forwards.
    pub interface: String,
    pub forwarding: bool,
}

/// Whether a VIP should be announced, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub vip: IpAddr,
    pub announce: bool,
    /// Why (e.g. "2 services, quorum held, forwarding on eth0"; "no live real server").
    pub reason: String,
}

/// One service's reason not to take flows, if any.
fn unusable(s: &ServiceView) -> Option<String> {
    if !s.forwarding {
        Some(format!("{}: XDP not forwarding on {}", s.name, s.interface))
    } else if !s.quorum {
        Some(format!("{}: quorum lost", s.name))
    } else if s.live_weight == 0 {
        Some(format!("{}: no live real server", s.name))
    } else {
        None
    }
}

/// The decision for `vip` from its services (at least one).
pub fn decide(vip: IpAddr, services: &[ServiceView]) -> Decision {
    let problems: Vec<String> = services.iter().filter_map(unusable).collect();
    let usable = services.len() - problems.len();
    if usable > 0 {
        let mut reason = format!("{usable} of {} service(s) can take flows", services.len());
        if !problems.is_empty() {
            reason.push_str(&format!(" ({})", problems.join("; ")));
        }
        return Decision {
            vip,
            announce: true,
            reason,
        };
    }
    Decision {
        vip,
        announce: false,
        reason: if problems.is_empty() {
            "no service".to_owned()
        } else {
            problems.join("; ")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, quorum: bool, live_weight: u32, forwarding: bool) -> ServiceView {
        ServiceView {
            name: name.into(),
            quorum,
            live_weight,
            interface: "eth0".into(),
            forwarding,
        }
    }

    const VIP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 100));

    #[test]
    fn a_healthy_service_is_announced() {
        let d = decide(VIP, &[svc("a:80", true, 2, true)]);
        assert!(d.announce);
        assert_eq!(d.reason, "1 of 1 service(s) can take flows");
    }

    #[test]
    fn each_missing_condition_withdraws_with_its_reason() {
        let d = decide(VIP, &[svc("a:80", false, 0, true)]);
        assert!(!d.announce);
        assert_eq!(d.reason, "a:80: quorum lost");
        let d = decide(VIP, &[svc("a:80", true, 0, true)]);
        assert_eq!(
            (d.announce, d.reason.as_str()),
            (false, "a:80: no live real server")
        );
        let d = decide(VIP, &[svc("a:80", true, 3, false)]);
        assert_eq!(
            (d.announce, d.reason.as_str()),
            (false, "a:80: XDP not forwarding on eth0")
        );
        assert!(!decide(VIP, &[]).announce);
    }

    #[test]
    fn one_usable_service_keeps_the_vip_and_names_the_others() {
        let d = decide(
            VIP,
            &[svc("a:80", false, 0, true), svc("a:443", true, 1, true)],
        );
        assert!(d.announce);
        assert_eq!(
            d.reason,
            "1 of 2 service(s) can take flows (a:80: quorum lost)"
        );
    }
}
