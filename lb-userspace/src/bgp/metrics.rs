//! The `xlb_bgp_*` metrics: per VIP whether it is announced, and the daemon's route
//! additions, removals and restorations.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::status::BgpStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VipLabels {
    vip: String,
}

/// Registers the families of `s` in `reg` (prefixed `xlb_` by the caller's registry).
pub fn register(reg: &mut Registry, s: &BgpStatus) {
    let announced = Family::<VipLabels, Gauge>::default();
    for v in &s.vips {
        announced
            .get_or_create(&VipLabels {
                vip: v.vip.to_string(),
            })
            .set(i64::from(v.announced));
    }
    reg.register(
        "bgp_announced",
        "1 while the VIP's host route is in xlb's table (BIRD announces it), 0 while withdrawn",
        announced,
    );
    for (name, help, n) in [
        (
            "bgp_announcements",
            "Host routes added (VIPs announced)",
            s.announcements,
        ),
        (
            "bgp_withdrawals",
            "Host routes removed (VIPs withdrawn)",
            s.withdrawals,
        ),
        (
            "bgp_restored",
            "Host routes someone else removed, put back by the resync",
            s.restored,
        ),
    ] {
        let c = Counter::<u64>::default();
        c.inc_by(n);
        reg.register(name, help, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::status::VipStatus;

    #[test]
    fn one_gauge_per_vip_and_the_counters() {
        let s = BgpStatus {
            pid: 1,
            table: 201,
            vips: vec![VipStatus {
                vip: "198.18.0.100".parse().unwrap(),
                announced: true,
                reason: String::new(),
                since: 0,
            }],
            announcements: 3,
            withdrawals: 2,
            restored: 1,
        };
        let mut reg = Registry::with_prefix("xlb");
        register(&mut reg, &s);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        for line in [
            "xlb_bgp_announced{vip=\"198.18.0.100\"} 1",
            "xlb_bgp_announcements_total 3",
            "xlb_bgp_withdrawals_total 2",
            "xlb_bgp_restored_total 1",
        ] {
            assert!(out.contains(line), "{line}\n{out}");
        }
    }
}
