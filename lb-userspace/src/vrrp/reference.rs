//! `track_reference`: the seed's split-brain arbitration by reference address. A task
//! pings the instance's reference addresses (ICMP / ICMPv6 echo, through the `ping_check`
//! pinger of [`crate::health::ping`]) every `interval`; a round succeeds when any one
//! answers within `timeout`. `fall` failed rounds in a row make the references
//! unreachable, `rise` answered rounds reachable again ([`Counter`]); the first round's
//! result is taken at once, so an instance started cut off knows it before its
//! master-down timer fires. Each change of verdict goes to the driver, which gives it to
//! the machine as [`super::machine::Event::Reference`].

use std::{net::IpAddr, time::Duration};

use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{info, warn};

use crate::config::TrackReference;
use crate::health::ping::{PingSpec, Pingers};

/// Counts rounds into a verdict (true = reachable), as `vrrp_script` counts runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    verdict: Option<bool>,
    ok_run: u32,
    ko_run: u32,
    fall: u32,
    rise: u32,
}

impl Counter {
    pub fn new(fall: u32, rise: u32) -> Self {
        Self {
            verdict: None,
            ok_run: 0,
            ko_run: 0,
            fall: fall.max(1),
            rise: rise.max(1),
        }
    }

    /// Records one round; returns the new verdict when it changed (the first round's
    /// result always is one).
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.ok_run += 1;
            self.ko_run = 0;
        } else {
            self.ko_run += 1;
            self.ok_run = 0;
        }
        let next = match self.verdict {
            None => ok,
            Some(true) if self.ko_run >= self.fall => false,
            Some(false) if self.ok_run >= self.rise => true,
            Some(v) => v,
        };
        (self.verdict != Some(next)).then(|| {
            self.verdict = Some(next);
            next
        })
    }
}

/// A running reference check; stopped when dropped.
pub struct ReferenceProbe {
    pub verdicts: mpsc::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Drop for ReferenceProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ReferenceProbe {
    /// Starts pinging `r`'s addresses for instance `instance`.
    pub fn spawn(instance: &str, r: &TrackReference) -> Self {
        let (tx, verdicts) = mpsc::channel(8);
        let r = r.clone();
        let instance = instance.to_string();
        let task = tokio::spawn(async move {
            let interval = Duration::from_secs_f64(r.interval.max(0.01));
            let timeout = r
                .timeout
                .map(|t| Duration::from_secs_f64(t.max(0.01)))
                .unwrap_or(interval);
            let pingers = Pingers::default();
            let mut counter = Counter::new(r.fall, r.rise);
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let round = futures::future::join_all(
                    r.addresses.iter().map(|a| ping(&pingers, *a, timeout)),
                )
                .await;
                let answered: Vec<IpAddr> = r
                    .addresses
                    .iter()
                    .zip(&round)
                    .filter(|(_, ok)| **ok)
                    .map(|(a, _)| *a)
                    .collect();
                if let Some(reachable) = counter.record(!answered.is_empty()) {
                    if reachable {
                        info!(instance = %instance, answered = ?answered, "track_reference: reference reachable");
                    } else {
                        warn!(instance = %instance, addresses = ?r.addresses, "track_reference: no reference address answers");
                    }
                    if tx.send(reachable).await.is_err() {
                        return;
                    }
                }
            }
        });
        Self { verdicts, task }
    }
}

/// One echo to `target`; false on no answer in time, or no socket.
async fn ping(pingers: &Pingers, target: IpAddr, timeout: Duration) -> bool {
    let spec = PingSpec {
        target,
        bindto: None,
        bind_if: None,
        fwmark: None,
        timeout,
    };
    match pingers.get(&spec) {
        Ok(p) => p.ping(target, timeout).await.is_ok(),
        Err(e) => {
            warn!(%target, "track_reference: no ICMP socket: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_and_rise_count_rounds_in_a_row() {
        let mut c = Counter::new(3, 2);
        assert_eq!(
            c.record(true),
            Some(true),
            "the first round decides at once"
        );
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(true), None, "an answer resets the failures");
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(false), Some(false), "three failed rounds in a row");
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(false), None, "a failure resets the answers");
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(true), Some(true), "two answered rounds in a row");
        let mut cut = Counter::new(3, 2);
        assert_eq!(
            cut.record(false),
            Some(false),
            "started cut off: known at once"
        );
        assert_eq!(cut.record(true), None);
        assert_eq!(cut.record(true), Some(true));
    }

    #[tokio::test]
    async fn loopback_answers() {
        let pingers = Pingers::default();
        let lo = "127.0.0.1".parse().unwrap();
        if pingers
            .get(&PingSpec {
                target: lo,
                bindto: None,
                bind_if: None,
                fwmark: None,
                timeout: Duration::from_secs(1),
            })
            .is_err()
        {
            eprintln!("no ICMP socket here: skipped");
            return;
        }
        assert!(ping(&pingers, lo, Duration::from_secs(2)).await);
    }
}
