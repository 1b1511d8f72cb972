//! Which received packets reach the state machine: [`AdvertFilter`] decodes them, applies
//! the codec's checks and a few of the driver's own, and turns an acceptable advert into
//! an [`Event::Advert`]. What it rejects is counted by reason (for `xlb status`) and
//! logged at most once per reason per [`RejectLog::PERIOD`], so a flood of bad adverts
//! cannot flood the log.
//!
//! The instance's own checks ([`ReceivePolicy`]), as keepalived's `vrrp_check_packet`:
//! - `check_unicast_src`: a unicast advert from an address that is not a `unicast_peer`
//!   is dropped and counted as `not_unicast_peer`.
//! - The address list: an advert listing other addresses than ours is still accepted
//!   (RFC 9568 only says the master MAY be misconfigured), counted as
//!   `address_list_differs` and logged once per change of sender or list. With
//!   `skip_check_adv_addr`, adverts from the same master as the previous one are not
//!   compared at all.

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

    /// Counts one occurrence of `reason` without logging; returns the total.
    fn count(&mut self, reason: &'static str) -> u64 {
        let entry = self.counts.entry(reason).or_insert((0, None));
        entry.0 += 1;
        entry.0
    }
}

/// The instance's checks of received adverts beyond the codec's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivePolicy {
    /// The addresses we advertise, compared with the sender's.
    pub advertised: Vec<IpAddr>,
    /// keepalived's `skip_check_adv_addr`: compare only when the sender changes.
    pub skip_check_adv_addr: bool,
    /// keepalived's `check_unicast_src`: the only sources accepted (`None`: any).
    pub allowed_sources: Option<Vec<IpAddr>>,
}

/// Decides which received packets are adverts for this instance (see the module docs).
pub struct AdvertFilter {
    instance: String,
    /// Our own source address: a packet from it is our advert looped back.
    source: IpAddr,
    local: LocalParams,
    policy: ReceivePolicy,
    rejects: RejectLog,
    last_advert_from: Option<IpAddr>,
    /// The last address-list mismatch logged (sender, its list): logged again only
    /// when either changes.
    last_mismatch: Option<(IpAddr, Vec<IpAddr>)>,
}

impl AdvertFilter {
    pub fn new(instance: &str, source: IpAddr, local: LocalParams, policy: ReceivePolicy) -> Self {
        Self {
            instance: instance.to_string(),
            source,
            local,
            policy,
            rejects: RejectLog::default(),
            last_advert_from: None,
            last_mismatch: None,
        }
    }

    /// A reload's new settings: what is checked changes, the counts and the last
    /// master heard stay.
    pub fn reconfigure(&mut self, source: IpAddr, local: LocalParams, policy: ReceivePolicy) {
        self.source = source;
        self.local = local;
        self.policy = policy;
        self.last_mismatch = None;
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
        // After the codec's checks, so another VRID's adverts are not counted here.
        if let Some(peers) = &self.policy.allowed_sources {
            if !peers.contains(&rx.src) {
                self.reject(
                    now,
                    "not_unicast_peer",
                    &format!(
                        "unicast source address {} is not a unicast_peer (check_unicast_src)",
                        rx.src
                    ),
                );
                return None;
            }
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
        let same_master = self.last_advert_from == Some(rx.src);
        if !(self.policy.skip_check_adv_addr && same_master) {
            self.check_addresses(rx.src, &decoded);
        }
        self.last_advert_from = Some(rx.src);
        Some(Event::Advert {
            src: rx.src,
            priority: decoded.advert.priority,
            interval: decoded.advert.interval_duration(),
        })
    }

    /// Counts an address list that differs from ours, and logs it once per change.
    fn check_addresses(&mut self, src: IpAddr, decoded: &packet::Decoded) {
        if !packet::addresses_differ(decoded, &self.policy.advertised) {
            self.last_mismatch = None;
            return;
        }
        let total = self.rejects.count("address_list_differs");
        let seen = (src, decoded.advert.addresses.clone());
        if self.last_mismatch.as_ref() != Some(&seen) {
            warn!(
                instance = %self.instance,
                total,
                "{src} advertises {:?}, we have {:?} (accepted, RFC 9568)",
                seen.1,
                self.policy.advertised
            );
            self.last_mismatch = Some(seen);
        }
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
        filter_with(ReceivePolicy {
            advertised: vec![ip("198.18.0.100")],
            skip_check_adv_addr: false,
            allowed_sources: None,
        })
    }

    fn filter_with(policy: ReceivePolicy) -> AdvertFilter {
        let local = LocalParams {
            version: Version::V2,
            vrid: 51,
            auth: None,
            v2_interval_s: 1,
        };
        AdvertFilter::new("VI_1", ip(US), local, policy)
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
    fn address_lists_are_compared_on_every_advert_by_default() {
        let mut f = filter();
        let now = Instant::now();
        let other = advert(51, &["198.18.0.101"]);
        for _ in 0..3 {
            assert!(f.accept(now, &received(PEER, 255, &other)).is_some());
        }
        assert_eq!(f.rejected().get("address_list_differs"), Some(&3));
        // Logged once per change: the same sender and list again is not news.
        assert_eq!(f.last_mismatch, Some((ip(PEER), vec![ip("198.18.0.101")])));
        assert!(
            f.accept(now, &received(PEER, 255, &advert(51, &["198.18.0.100"])))
                .is_some()
        );
        assert_eq!(f.last_mismatch, None, "a matching list ends the mismatch");
    }

    #[test]
    fn skip_check_adv_addr_compares_only_when_the_master_changes() {
        let mut f = filter_with(ReceivePolicy {
            advertised: vec![ip("198.18.0.100")],
            skip_check_adv_addr: true,
            allowed_sources: None,
        });
        let now = Instant::now();
        let other = advert(51, &["198.18.0.101"]);
        // The first advert from a master is compared, later ones from it are not.
        for _ in 0..3 {
            assert!(f.accept(now, &received(PEER, 255, &other)).is_some());
        }
        assert_eq!(f.rejected().get("address_list_differs"), Some(&1));
        // A new master is compared again.
        assert!(
            f.accept(now, &received("198.18.0.3", 255, &other))
                .is_some()
        );
        assert_eq!(f.rejected().get("address_list_differs"), Some(&2));
    }

    #[test]
    fn check_unicast_src_drops_and_counts_adverts_from_non_peers() {
        let mut f = filter_with(ReceivePolicy {
            advertised: vec![ip("198.18.0.100")],
            skip_check_adv_addr: false,
            allowed_sources: Some(vec![ip(PEER)]),
        });
        let now = Instant::now();
        let good = advert(51, &["198.18.0.100"]);
        assert_eq!(f.accept(now, &received("198.18.0.9", 255, &good)), None);
        assert_eq!(f.accept(now, &received("198.18.0.9", 255, &good)), None);
        assert_eq!(f.rejected().get("not_unicast_peer"), Some(&2));
        assert_eq!(f.last_advert_from(), None);
        // Another VRID from a non-peer belongs to another instance: not counted here.
        assert_eq!(
            f.accept(now, &received("198.18.0.9", 255, &advert(52, &[]))),
            None
        );
        assert_eq!(f.rejected().get("not_unicast_peer"), Some(&2));
        // A peer is accepted.
        assert!(f.accept(now, &received(PEER, 255, &good)).is_some());
        assert_eq!(f.last_advert_from(), Some(ip(PEER)));

        // Without the key, the same non-peer is accepted (today's behaviour).
        let mut f = filter();
        assert!(f.accept(now, &received("198.18.0.9", 255, &good)).is_some());
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
