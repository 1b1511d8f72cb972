//! Which received packets reach the state machine: [`AdvertFilter`] decodes them, applies
//! the codec's checks and a few of the driver's own, and turns an acceptable advert into
//! an [`Event::Advert`]. What it rejects is counted by reason (for `xlb status`) and
//! logged at most once per reason per [`RejectLog::PERIOD`], so a flood of bad adverts
//! cannot flood the log.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    time::{Duration, Instant},
};

use tracing::warn;

use super::{
    machine::Event,
    net::Received,
    packet::{self, LocalParams},
};

/// Counts rejected adverts by reason and logs at most one line per reason per period.
#[derive(Default)]
struct RejectLog {
    counts: HashMap<&'static str, (u64, Option<Instant>)>,
}

impl RejectLog {
    const PERIOD: Duration = Duration::from_secs(10);

    /// Counts one rejection at `now`; returns whether it was logged.
    fn record(
        &mut self,
        now: Instant,
        instance: &str,
        reason: &'static str,
        detail: &dyn std::fmt::Display,
    ) -> bool {
        let entry = self.counts.entry(reason).or_insert((0, None));
        entry.0 += 1;
        let log = entry
            .1
            .is_none_or(|t| now.duration_since(t) >= Self::PERIOD);
        if log {
            entry.1 = Some(now);
            warn!(
                instance,
                reason,
                total = entry.0,
                "advert rejected: {detail}"
            );
        }
        log
    }
}

/// Decides which received packets are adverts for this instance (see the module docs).
pub struct AdvertFilter {
    instance: String,
    /// Our own source address: a packet from it is our advert looped back.
    source: IpAddr,
    local: LocalParams,
    /// The addresses we advertise, compared with the sender's.
    advertised: Vec<IpAddr>,
    rejects: RejectLog,
    last_advert_from: Option<IpAddr>,
}

impl AdvertFilter {
    pub fn new(instance: &str, source: IpAddr, local: LocalParams, advertised: &[IpAddr]) -> Self {
        Self {
            instance: instance.to_string(),
            source,
            local,
            advertised: advertised.to_vec(),
            rejects: RejectLog::default(),
            last_advert_from: None,
        }
    }

    /// The event `rx`, received at `now`, gives the machine, if any.
    pub fn accept(&mut self, now: Instant, rx: &Received) -> Option<Event> {
        if rx.src == self.source {
            return None; // our own advert, looped back
        }
        let decoded = match packet::decode(&rx.payload, rx.src, rx.dst) {
            Ok(d) => d,
            Err(e) => {
                self.reject(now, e.reason(), &format!("{e} from {}", rx.src));
                return None;
            }
        };
        if let Err(e) = packet::check_received(&decoded, rx.ttl, &self.local) {
            if e.is_error() {
                self.reject(now, e.reason(), &format!("{e} from {}", rx.src));
            }
            return None;
        }
        if decoded.advert.interval_duration().is_zero() {
            // A v3 backup adopts the master's interval: zero would make it take over at once.
            self.reject(
                now,
                "zero_interval",
                &format!("advert from {} with a zero interval", rx.src),
            );
            return None;
        }
        if packet::addresses_differ(&decoded, &self.advertised) {
            self.reject(
                now,
                "address_list_differs",
                &format!(
                    "{} advertises {:?}, we have {:?} (accepted, RFC 9568)",
                    rx.src, decoded.advert.addresses, self.advertised
                ),
            );
        }
        self.last_advert_from = Some(rx.src);
        Some(Event::Advert {
            src: rx.src,
            priority: decoded.advert.priority,
            interval: decoded.advert.interval_duration(),
        })
    }

    fn reject(&mut self, now: Instant, reason: &'static str, detail: &dyn std::fmt::Display) {
        self.rejects.record(now, &self.instance, reason, detail);
    }

    /// The source of the last accepted advert.
    pub fn last_advert_from(&self) -> Option<IpAddr> {
        self.last_advert_from
    }

    /// Rejected adverts by reason since start.
    pub fn rejected(&self) -> BTreeMap<String, u64> {
        self.rejects
            .counts
            .iter()
            .map(|(reason, (n, _))| (reason.to_string(), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::packet::{Advert, Auth, Interval, V3Checksum, Version};

    const US: &str = "198.18.0.1";
    const PEER: &str = "198.18.0.2";
    const GROUP: &str = "224.0.0.18";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn filter() -> AdvertFilter {
        let local = LocalParams {
            version: Version::V2,
            vrid: 51,
            auth: None,
            v2_interval_s: 1,
        };
        AdvertFilter::new("VI_1", ip(US), local, &[ip("198.18.0.100")])
    }

    fn advert(vrid: u8, addresses: &[&str]) -> Advert {
        Advert {
            version: Version::V2,
            vrid,
            priority: 200,
            auth: Auth::None,
            interval: Interval::Secs(1),
            addresses: addresses.iter().map(|a| ip(a)).collect(),
        }
    }

    fn received(from: &str, ttl: u8, advert: &Advert) -> Received {
        let (src, dst) = (ip(from), ip(GROUP));
        Received {
            src,
            dst,
            ttl,
            payload: advert.encode(src, dst, V3Checksum::PseudoHeader),
        }
    }

    #[test]
    fn a_good_advert_becomes_an_event_and_names_the_master() {
        let mut f = filter();
        let now = Instant::now();
        let ev = f.accept(now, &received(PEER, 255, &advert(51, &["198.18.0.100"])));
        assert_eq!(
            ev,
            Some(Event::Advert {
                src: ip(PEER),
                priority: 200,
                interval: Duration::from_secs(1),
            })
        );
        assert_eq!(f.last_advert_from(), Some(ip(PEER)));
        assert!(f.rejected().is_empty());
    }

    #[test]
    fn our_own_advert_and_other_routers_are_ignored_silently() {
        let mut f = filter();
        let now = Instant::now();
        assert_eq!(
            f.accept(now, &received(US, 255, &advert(51, &["198.18.0.100"]))),
            None
        );
        assert_eq!(
            f.accept(now, &received(PEER, 255, &advert(52, &["198.18.0.100"]))),
            None,
            "another VRID is not ours"
        );
        assert!(f.rejected().is_empty());
        assert_eq!(f.last_advert_from(), None);
    }

    #[test]
    fn bad_adverts_are_counted_by_reason() {
        let mut f = filter();
        let now = Instant::now();
        let good = advert(51, &["198.18.0.100"]);
        assert_eq!(f.accept(now, &received(PEER, 64, &good)), None);
        let mut garbled = received(PEER, 255, &good);
        garbled.payload.truncate(3);
        assert_eq!(f.accept(now, &garbled), None);
        let rejected = f.rejected();
        assert_eq!(rejected.values().sum::<u64>(), 2);
        assert_eq!(rejected.len(), 2, "{rejected:?}");
    }

    #[test]
    fn a_different_address_list_is_counted_but_accepted() {
        let mut f = filter();
        let ev = f.accept(
            Instant::now(),
            &received(PEER, 255, &advert(51, &["198.18.0.101"])),
        );
        assert!(matches!(ev, Some(Event::Advert { .. })));
        assert_eq!(f.rejected().get("address_list_differs"), Some(&1));
    }

    #[test]
    fn each_reason_is_logged_once_per_period_and_always_counted() {
        let mut log = RejectLog::default();
        let t0 = Instant::now();
        let detail = "x";
        assert!(log.record(t0, "VI_1", "bad_ttl", &detail));
        assert!(!log.record(t0 + Duration::from_secs(9), "VI_1", "bad_ttl", &detail));
        assert!(
            log.record(t0, "VI_1", "auth_mismatch", &detail),
            "per reason"
        );
        assert!(log.record(t0 + RejectLog::PERIOD, "VI_1", "bad_ttl", &detail));
        assert_eq!(log.counts["bad_ttl"].0, 3);
    }
}
