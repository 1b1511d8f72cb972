//! When to announce the VIPs: keepalived's gratuitous ARP / unsolicited NA timing for one
//! instance, as a schedule without a clock ([`GarpSchedule`]). `vip` sends the messages.

use std::time::{Duration, Instant};

use crate::config::{GlobalDefs, VrrpInstance};

/// keepalived's gratuitous ARP / NA timing for one instance, without the clock: on
/// becoming MASTER a burst of `repeat` messages per VIP at once, a second burst `delay`
/// later (none if `delay` is zero), and while MASTER, if `refresh` is set, `refresh_repeat`
/// messages every `refresh`, counted from becoming MASTER.
///
/// The driver calls [`start`](Self::start) on becoming MASTER and [`stop`](Self::stop) on
/// leaving it; it sleeps until [`next_deadline`](Self::next_deadline) and then asks
/// [`due`](Self::due) how many messages per VIP to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GarpSchedule {
    pub delay: Duration,
    pub repeat: u32,
    pub refresh: Option<Duration>,
    pub refresh_repeat: u32,
    /// Pending events while MASTER.
    first: Option<Instant>,
    second: Option<Instant>,
    next_refresh: Option<Instant>,
}

impl Default for GarpSchedule {
    /// keepalived's defaults: 5 messages, again after 5 s, no refresh.
    fn default() -> Self {
        Self::new(Duration::from_secs(5), 5, None, 1)
    }
}

impl GarpSchedule {
    /// `refresh` of `None` or zero: no periodic refresh.
    pub fn new(
        delay: Duration,
        repeat: u32,
        refresh: Option<Duration>,
        refresh_repeat: u32,
    ) -> Self {
        Self {
            delay,
            repeat,
            refresh: refresh.filter(|r| !r.is_zero()),
            refresh_repeat,
            first: None,
            second: None,
            next_refresh: None,
        }
    }

    /// The instance's settings, falling back to `global_defs`.
    pub fn for_instance(inst: &VrrpInstance, global: &GlobalDefs) -> Self {
        let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
        Self::new(
            secs(
                inst.garp_master_delay
                    .unwrap_or(global.vrrp_garp_master_delay),
            ),
            inst.garp_master_repeat
                .unwrap_or(global.vrrp_garp_master_repeat),
            Some(secs(
                inst.garp_master_refresh
                    .unwrap_or(global.vrrp_garp_master_refresh),
            )),
            inst.garp_master_refresh_repeat
                .unwrap_or(global.vrrp_garp_master_refresh_repeat),
        )
    }

    /// Became MASTER at `now`: the first burst is due at once.
    pub fn start(&mut self, now: Instant) {
        self.first = Some(now);
        self.second = (!self.delay.is_zero()).then(|| now + self.delay);
        self.next_refresh = self.refresh.map(|r| now + r);
    }

    /// A reload's new settings (`new`'s timing, not its pending events): bursts already
    /// due stay due with the new size; a changed refresh period restarts from `now` when
    /// announcing.
    pub fn retime(&mut self, new: &GarpSchedule, now: Instant) {
        let refresh_changed = self.refresh != new.refresh;
        self.delay = new.delay;
        self.repeat = new.repeat;
        self.refresh = new.refresh;
        self.refresh_repeat = new.refresh_repeat;
        if refresh_changed && self.active() {
            self.next_refresh = self.refresh.map(|r| now + r);
        }
    }

    /// Left MASTER: nothing more is due.
    pub fn stop(&mut self) {
        self.first = None;
        self.second = None;
        self.next_refresh = None;
    }

    /// Whether the instance is being announced (between start and stop).
    pub fn active(&self) -> bool {
        self.first.is_some() || self.second.is_some() || self.next_refresh.is_some()
    }

    /// When something is next due; `None` when nothing ever will be (until `start`).
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.first, self.second, self.next_refresh]
            .into_iter()
            .flatten()
            .min()
    }

    /// How many messages per VIP to send at `now` (0: none). Each event counts once;
    /// events that fell due together add up; a refresh that was missed several times is
    /// sent once and the next one keeps the original period.
    pub fn due(&mut self, now: Instant) -> u32 {
        let mut n = 0;
        if self.first.is_some_and(|t| t <= now) {
            self.first = None;
            n += self.repeat;
        }
        if self.second.is_some_and(|t| t <= now) {
            self.second = None;
            n += self.repeat;
        }
        if let (Some(t), Some(period)) = (self.next_refresh, self.refresh) {
            if t <= now {
                let mut next = t + period;
                while next <= now {
                    next += period;
                }
                self.next_refresh = Some(next);
                n += self.refresh_repeat;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_defaults_two_bursts() {
        let t0 = Instant::now();
        let mut s = GarpSchedule::default();
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.due(t0), 0);
        s.start(t0);
        assert!(s.active());
        assert_eq!(s.next_deadline(), Some(t0));
        assert_eq!(s.due(t0), 5);
        assert_eq!(s.due(t0), 0, "each burst once");
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(s.due(t0 + Duration::from_millis(4999)), 0);
        assert_eq!(s.due(t0 + Duration::from_secs(5)), 5);
        assert_eq!(s.next_deadline(), None);
        assert!(!s.active());
        assert_eq!(s.due(t0 + Duration::from_secs(100)), 0);
    }

    #[test]
    fn garp_retime_keeps_what_is_due_and_restarts_a_new_refresh() {
        let t0 = Instant::now();
        let sec = Duration::from_secs;
        let mut s = GarpSchedule::default();
        s.start(t0);
        assert_eq!(s.due(t0), 5);
        s.retime(&GarpSchedule::new(sec(5), 2, Some(sec(30)), 3), t0 + sec(1));
        assert_eq!(
            s.next_deadline(),
            Some(t0 + sec(5)),
            "the second burst stays"
        );
        assert_eq!(s.due(t0 + sec(5)), 2, "at the new size");
        assert_eq!(s.next_deadline(), Some(t0 + sec(31)));
        assert_eq!(s.due(t0 + sec(31)), 3);
        // Not announcing: nothing becomes due.
        let mut idle = GarpSchedule::default();
        idle.retime(&GarpSchedule::new(sec(1), 1, Some(sec(10)), 1), t0);
        assert_eq!(idle.next_deadline(), None);
    }

    #[test]
    fn garp_no_second_burst() {
        let t0 = Instant::now();
        let mut s = GarpSchedule::new(Duration::ZERO, 3, Some(Duration::ZERO), 1);
        s.start(t0);
        assert_eq!(s.due(t0), 3);
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn garp_refresh_keeps_period() {
        let t0 = Instant::now();
        let sec = Duration::from_secs;
        let mut s = GarpSchedule::new(sec(5), 5, Some(sec(60)), 2);
        s.start(t0);
        assert_eq!(s.due(t0), 5);
        assert_eq!(s.due(t0 + sec(5)), 5);
        assert_eq!(s.next_deadline(), Some(t0 + sec(60)));
        assert_eq!(s.due(t0 + sec(61)), 2);
        assert_eq!(s.next_deadline(), Some(t0 + sec(120)));
        // Late by more than one period: once, and the phase stays.
        assert_eq!(s.due(t0 + sec(250)), 2);
        assert_eq!(s.next_deadline(), Some(t0 + sec(300)));
        s.stop();
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.due(t0 + sec(1000)), 0);
        // Becoming MASTER again starts over.
        s.start(t0 + sec(1000));
        assert_eq!(s.due(t0 + sec(1000)), 5);
    }

    #[test]
    fn garp_events_falling_due_together_add_up() {
        let t0 = Instant::now();
        let sec = Duration::from_secs;
        let mut s = GarpSchedule::new(sec(5), 5, Some(sec(5)), 1);
        s.start(t0);
        assert_eq!(s.due(t0 + sec(7)), 5 + 5 + 1);
    }

    #[test]
    fn garp_from_config() {
        let global = GlobalDefs::default();
        let inst: VrrpInstance = toml::from_str(
            r#"
            name = "VI_1"
            interface = "eth0"
            virtual_router_id = 51
            garp_master_repeat = 2
            garp_master_refresh = 30
            "#,
        )
        .unwrap();
        let s = GarpSchedule::for_instance(&inst, &global);
        assert_eq!(s.delay, Duration::from_secs(5));
        assert_eq!(s.repeat, 2);
        assert_eq!(s.refresh, Some(Duration::from_secs(30)));
        assert_eq!(s.refresh_repeat, 1);
        let s = GarpSchedule::for_instance(
            &VrrpInstance {
                garp_master_refresh: None,
                ..inst
            },
            &global,
        );
        assert_eq!(s.refresh, None);
    }
}
