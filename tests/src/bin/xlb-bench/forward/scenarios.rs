//! What the forwarding benchmark measures: the scenarios (which director, which VIP, how
//! many flows), the order of a round, and the addresses they use.

use std::net::Ipv4Addr;

/// The service whose real servers share the client's segment (one-armed DR: `XDP_TX`).
pub const VIP_TX: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);
/// The service whose real servers sit behind the director's second veth (redirect).
pub const VIP_RD: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 101);
/// The generator's first client address (flow `i` comes from `CLIENTS + i`).
pub const CLIENTS: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
pub const PORT: u16 = 80;
pub const REALS: usize = 4;

/// Real server `n` (from 1) of both services.
pub fn real_v4(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 2, 10 + n as u8)
}

/// The order of a round: groups measured back to back, each led by the baseline its
/// members' `/ ceiling` ratios use. This machine's rates shift by 2x for tens of seconds
/// at a time (both ways), so a ratio is taken between neighbours, seconds apart, never
/// across a whole round.
pub const GROUPS: &[&[&str]] = &[
    &[
        "ceiling",
        "xlb_established_1024",
        "nft_dnat_1024",
        "nft_dsr_1024",
    ],
    &[
        "ceiling",
        "xlb_established_1",
        "xlb_established_65536",
        "nft_dnat_65536",
    ],
    &["ceiling", "xlb_new_flows", "proto_established_1024"],
    &["ceiling_redirect", "xlb_redirect_1024"],
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Director {
    /// `xlb_bench_swap`: swap MACs, XDP_TX.
    Swap,
    /// `xlb_bench_fwd`: set MACs, redirect to the real-server side.
    Fwd,
    /// xlb's own program.
    Xlb,
    /// `xlb_pass` on the director's veth (so XDP frames are delivered) and nftables.
    Nft(NftKind),
    /// `xlb_bench_proto_established`: a prototype of a cheaper established path.
    Proto,
}

impl Director {
    /// An XDP program that does the forwarding, whose own run time bpf_stats can measure
    /// (not nftables behind `xlb_pass`).
    pub fn is_xdp(self) -> bool {
        !matches!(self, Director::Nft(_))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NftKind {
    /// `dnat to numgen inc mod N map {...}` in a prerouting nat chain (conntrack).
    Dnat,
    /// netdev ingress: set MACs by `jhash` of the client, `fwd to` the real-server side.
    Dsr,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub key: &'static str,
    pub label: &'static str,
    pub director: Director,
    pub vip: Ipv4Addr,
    /// 0: every frame a new flow.
    pub flows: u32,
}

impl Scenario {
    /// The ceiling of the same path that the `/ ceiling` column divides by (none for a
    /// ceiling itself).
    pub fn ceiling(&self) -> Option<&'static str> {
        match self.key {
            "ceiling" | "ceiling_redirect" => None,
            "xlb_redirect_1024" | "nft_dnat_1024" | "nft_dsr_1024" | "nft_dnat_65536" => {
                Some("ceiling_redirect")
            }
            _ => Some("ceiling"),
        }
    }

    /// The nftables DNAT row with as many flows that the `/ nft DNAT` column divides by
    /// (xlb's rows and the prototype's only).
    pub fn nft_dnat_peer(&self) -> Option<&'static str> {
        if !(self.key.starts_with("xlb") || self.key.starts_with("proto")) {
            return None;
        }
        Some(if self.flows == 65536 {
            "nft_dnat_65536"
        } else {
            "nft_dnat_1024"
        })
    }
}

/// Every scenario, in the order of the table's rows.
pub fn scenarios() -> Vec<Scenario> {
    let s = |key, label, director, vip, flows| Scenario {
        key,
        label,
        director,
        vip,
        flows,
    };
    vec![
        s(
            "ceiling",
            "ceiling: MAC swap + XDP_TX",
            Director::Swap,
            VIP_TX,
            1024,
        ),
        s(
            "xlb_established_1",
            "xlb, 1 established flow",
            Director::Xlb,
            VIP_TX,
            1,
        ),
        s(
            "xlb_established_1024",
            "xlb, 1,024 established flows",
            Director::Xlb,
            VIP_TX,
            1024,
        ),
        s(
            "xlb_established_65536",
            "xlb, 65,536 established flows",
            Director::Xlb,
            VIP_TX,
            65536,
        ),
        s(
            "xlb_new_flows",
            "xlb, every frame a new flow",
            Director::Xlb,
            VIP_TX,
            0,
        ),
        s(
            "proto_established_1024",
            "prototype, 16-byte key, 1,024 flows (not xlb)",
            Director::Proto,
            VIP_TX,
            1024,
        ),
        s(
            "ceiling_redirect",
            "ceiling: set MACs + redirect",
            Director::Fwd,
            VIP_RD,
            1024,
        ),
        s(
            "xlb_redirect_1024",
            "xlb redirect, 1,024 flows",
            Director::Xlb,
            VIP_RD,
            1024,
        ),
        s(
            "nft_dnat_1024",
            "nftables numgen DNAT, 1,024 flows",
            Director::Nft(NftKind::Dnat),
            VIP_RD,
            1024,
        ),
        s(
            "nft_dsr_1024",
            "nftables netdev DSR, 1,024 flows",
            Director::Nft(NftKind::Dsr),
            VIP_RD,
            1024,
        ),
        s(
            "nft_dnat_65536",
            "nftables numgen DNAT, 65,536 flows",
            Director::Nft(NftKind::Dnat),
            VIP_RD,
            65536,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<&'static str> {
        scenarios().iter().map(|s| s.key).collect()
    }

    #[test]
    fn every_scenario_is_measured_in_a_group_and_every_group_member_exists() {
        let keys = keys();
        for group in GROUPS {
            for member in *group {
                assert!(keys.contains(member), "{member} is not a scenario");
            }
        }
        for key in &keys {
            assert!(
                GROUPS.iter().any(|g| g.contains(key)),
                "{key} is in no group"
            );
        }
    }

    #[test]
    fn every_row_is_divided_by_the_ceiling_of_its_own_path() {
        let all = scenarios();
        for sc in &all {
            let Some(ceiling) = sc.ceiling() else {
                continue;
            };
            let ceiling = all.iter().find(|s| s.key == ceiling).expect("a scenario");
            assert_eq!(ceiling.vip, sc.vip, "{}", sc.key);
        }
    }

    #[test]
    fn the_nft_peer_has_as_many_flows() {
        let all = scenarios();
        for sc in &all {
            if let Some(peer) = sc.nft_dnat_peer() {
                let peer = all.iter().find(|s| s.key == peer).expect("a scenario");
                assert_eq!(peer.director, Director::Nft(NftKind::Dnat));
                if sc.flows == 65536 {
                    assert_eq!(peer.flows, 65536, "{}", sc.key);
                }
            }
        }
        let nft_rows = all.iter().filter(|s| !s.director.is_xdp());
        assert!(nft_rows.clone().all(|s| s.nft_dnat_peer().is_none()));
    }
}
