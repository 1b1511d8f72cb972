//! The nftables baseline xlb is compared with: a numgen DNAT (conntrack) and a stateless
//! netdev DSR rule, loaded into the director's namespace and removed after each window.

use anyhow::{Context as _, Result};
use integration_tests::netns::Lab;
use lb_common::Mac;

use super::{
    scenarios::{NftKind, PORT, REALS, VIP_RD, real_v4},
    shell::sh,
};

/// The `nft` binary, if installed (without it the nftables scenarios are skipped).
pub fn binary() -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("nft"))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// The director's two veths: frames come in on `ingress` and go out of `egress` (MAC
/// `egress_mac`) to the real servers, all of them answering at `real_mac`.
pub struct Path<'a> {
    pub ingress: &'a str,
    pub egress: &'a str,
    pub egress_mac: [u8; 6],
    pub real_mac: [u8; 6],
}

/// The rule set of `kind` for VIP_RD's service.
fn rules(kind: NftKind, path: &Path) -> String {
    let Path {
        ingress: d,
        egress: e,
        ..
    } = path;
    match kind {
        NftKind::Dnat => {
            let map: Vec<String> = (1..=REALS)
                .map(|n| format!("{} : {}", n - 1, real_v4(n)))
                .collect();
            format!(
                "table ip xlbbench {{\n chain pre {{\n  type nat hook prerouting priority dstnat; policy accept;\n  \
                 ip daddr {VIP_RD} udp dport {PORT} dnat to numgen inc mod {REALS} map {{ {} }}\n }}\n}}\n",
                map.join(", ")
            )
        }
        NftKind::Dsr => {
            // DR as a stateless netdev rule: the real server is picked by a hash of the
            // client (numgen would scatter a flow's packets over servers).
            let map: Vec<String> = (1..=REALS)
                .map(|n| format!("{} : {}", n - 1, Mac(&path.real_mac)))
                .collect();
            format!(
                "table netdev xlbbench {{\n chain ingress {{\n  type filter hook ingress device \"{d}\" priority 0; policy accept;\n  \
                 ip daddr {VIP_RD} udp dport {PORT} ether saddr set {} ether daddr set jhash ip saddr . udp sport mod {REALS} map {{ {} }} fwd to \"{e}\"\n }}\n}}\n",
                Mac(&path.egress_mac),
                map.join(", ")
            )
        }
    }
}

/// Loads the rules of `kind` in the lab's director namespace.
pub fn install(lab: &Lab, kind: NftKind, path: &Path) -> Result<()> {
    let file = lab.tmp.join("bench.nft");
    std::fs::write(&file, rules(kind, path))?;
    sh(lab, "dir", &format!("nft -f {}", file.display()))
        .with_context(|| format!("nftables {kind:?} rules"))?;
    Ok(())
}

/// Removes what [`install`] loaded (quietly: there may be nothing).
pub fn remove(lab: &Lab, kind: NftKind) {
    let family = match kind {
        NftKind::Dnat => "ip",
        NftKind::Dsr => "netdev",
    };
    let _ = sh(lab, "dir", &format!("nft delete table {family} xlbbench"));
}
