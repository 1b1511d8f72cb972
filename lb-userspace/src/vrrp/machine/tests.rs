//! The state machine driven by a virtual clock: every transition of RFC 5798 6.4, the
//! keepalived choices, and two machines wired back to back.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::*;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
const C: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3));

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

/// Version 2, 1 s, preempt, no delay, initial BACKUP, our address A.
fn v2(priority: u8) -> Params {
    Params {
        version: Version::V2,
        vrid: 51,
        priority,
        advert_int: secs(1),
        preempt: true,
        preempt_delay: Duration::ZERO,
        initial_state: Initial::Backup,
        primary_addr: A,
        down_timer_adverts: 3,
    }
}

/// Version 3 at `int`, otherwise as [`v2`].
fn v3(priority: u8, int: Duration) -> Params {
    Params {
        version: Version::V3,
        advert_int: int,
        ..v2(priority)
    }
}

fn machine(p: Params) -> Machine {
    Machine::new(p).expect("valid params")
}

fn advert(src: IpAddr, priority: u8, interval: Duration) -> Event {
    Event::Advert {
        src,
        priority,
        interval,
    }
}

fn tr(from: State, to: State, reason: Reason) -> Action {
    Action::Transition { from, to, reason }
}

fn send(priority: u8) -> Action {
    Action::SendAdvert { priority }
}

/// The actions of entering Master.
fn to_master(priority: u8, from: State, reason: Reason) -> Vec<Action> {
    vec![
        send(priority),
        Action::AddVips,
        Action::SendGratuitous,
        tr(from, State::Master, reason),
    ]
}

/// A recorded exchange: at each time, this event in, these actions out.
struct Exchange {
    t0: Instant,
    m: Machine,
}

impl Exchange {
    fn new(p: Params) -> Self {
        Self {
            t0: Instant::now(),
            m: machine(p),
        }
    }

    fn at(&self, d: Duration) -> Instant {
        self.t0 + d
    }

    /// Feeds `event` at `t0 + d` and checks the actions.
    #[track_caller]
    fn step(&mut self, d: Duration, event: Event, expect: &[Action]) {
        let got = self.m.step(self.t0 + d, event);
        assert_eq!(got, expect, "at {d:?} after {event:?}");
    }

    /// Checks that nothing fires just before `deadline` and that it is the next deadline.
    #[track_caller]
    fn quiet_until(&mut self, deadline: Duration) {
        assert_eq!(self.m.next_deadline(), Some(self.at(deadline)));
        self.step(deadline - ns(1), Event::Tick, &[]);
    }

    fn deadline(&self) -> Option<Duration> {
        self.m.next_deadline().map(|t| t - self.t0)
    }
}

// ----- timers -----

#[test]
fn skew_and_master_down_interval_are_exact() {
    // v2: Skew = (256 - 100) / 256 s = 0.609375 s.
    let m = machine(v2(100));
    assert_eq!(m.skew_time(), ns(609_375_000));
    assert_eq!(m.master_down_interval(), ns(3_609_375_000));

    // v3 at 10 cs: Skew = 156 x 100 ms / 256 = 60.9375 ms.
    let m = machine(v3(100, ms(100)));
    assert_eq!(m.skew_time(), ns(60_937_500));
    assert_eq!(m.master_down_interval(), ns(360_937_500));

    // The smallest skews are not zero (holo truncates them to whole seconds).
    let m = machine(v2(254));
    assert_eq!(m.skew_time(), ns(7_812_500));
    let m = machine(v3(255, ms(10)));
    // 10 ms / 256 = 39062.5 ns, rounded down to the nanosecond.
    assert_eq!(m.skew_time(), ns(39_062));
    assert_eq!(m.master_down_interval(), ns(30_039_062));
    let m = machine(v3(1, ms(40_950)));
    assert_eq!(m.skew_time(), ns(40_950_000_000 * 255 / 256));
}

#[test]
fn params_are_checked() {
    let bad = |p: Params| Machine::new(p).err();
    assert_eq!(bad(Params { vrid: 0, ..v2(100) }), Some(ParamsError::Vrid0));
    assert_eq!(bad(v2(0)), Some(ParamsError::Priority0));
    for int in [Duration::ZERO, ms(1500), secs(256)] {
        assert_eq!(
            bad(Params {
                advert_int: int,
                ..v2(100)
            }),
            Some(ParamsError::AdvertIntV2(int))
        );
    }
    for int in [Duration::ZERO, ms(15), ms(40_960), ns(10_000_001)] {
        assert_eq!(bad(v3(100, int)), Some(ParamsError::AdvertIntV3(int)));
    }
    assert_eq!(
        bad(Params {
            preempt_delay: secs(1001),
            ..v2(100)
        }),
        Some(ParamsError::PreemptDelay(secs(1001)))
    );
    for n in [0, 101] {
        assert_eq!(
            bad(Params {
                down_timer_adverts: n,
                ..v2(100)
            }),
            Some(ParamsError::DownTimerAdverts(n))
        );
    }
    assert!(Machine::new(v3(255, ms(10))).is_ok());
    assert!(Machine::new(v3(1, ms(40_950))).is_ok());
    assert!(Machine::new(v2(255)).is_ok());
}

// ----- 6.4.1 Initialize -----

#[test]
fn owner_starts_as_master_and_advertises_every_interval() {
    for initial_state in [Initial::Backup, Initial::Master] {
        let mut x = Exchange::new(Params {
            initial_state,
            ..v2(255)
        });
        assert_eq!(x.m.state(), State::Initialize);
        assert_eq!(x.m.next_deadline(), None);
        x.step(
            secs(0),
            Event::Startup,
            &to_master(255, State::Initialize, Reason::AddressOwner),
        );
        assert_eq!(x.m.state(), State::Master);
        for n in 1..=3 {
            x.quiet_until(secs(n));
            x.step(secs(n), Event::Tick, &[send(255)]);
        }
        // A second Startup changes nothing.
        x.step(secs(3), Event::Startup, &[]);
    }
}

#[test]
fn non_owner_starts_as_backup_and_takes_over_after_master_down_interval() {
    let mut x = Exchange::new(v2(100));
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    let down = ns(3_609_375_000);
    x.quiet_until(down);
    x.step(
        down,
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterDown),
    );
    // Adverts every interval from the takeover.
    x.quiet_until(down + secs(1));
    x.step(down + secs(1), Event::Tick, &[send(100)]);

    // v3 the same, in centiseconds.
    let mut x = Exchange::new(v3(100, ms(100)));
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    x.quiet_until(ns(360_937_500));
    x.step(
        ns(360_937_500),
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterDown),
    );
    assert_eq!(x.deadline(), Some(ns(460_937_500)));
}

#[test]
fn down_timer_adverts_sets_how_many_adverts_a_backup_misses() {
    // keepalived's down_timer_adverts 5: 5 x 1 s + 0.609375 s at priority 100 (v2).
    let five = Params {
        down_timer_adverts: 5,
        ..v2(100)
    };
    let mut x = backup(five);
    let down = ns(5_609_375_000);
    assert_eq!(x.m.master_down_interval(), down);
    x.quiet_until(down);
    x.step(
        down,
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterDown),
    );

    // An accepted advert rearms the same longer timer.
    let mut x = backup(five);
    x.step(secs(2), advert(B, 200, secs(1)), &[]);
    x.quiet_until(secs(2) + down);

    // 1: a backup takes over one interval plus skew after the last advert; v3 uses the
    // master's interval as always (1 x 300 ms + 156 x 300 ms / 256).
    let mut x = backup(Params {
        down_timer_adverts: 1,
        ..v3(100, ms(100))
    });
    x.step(ms(10), advert(B, 200, ms(300)), &[]);
    x.quiet_until(ms(10) + ns(482_812_500));
    x.step(
        ms(10) + ns(482_812_500),
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterDown),
    );
}

#[test]
fn initial_master_waits_one_interval_plus_the_smallest_skew() {
    // v2: 1 s + 1/256 s.
    let mut x = Exchange::new(Params {
        initial_state: Initial::Master,
        ..v2(100)
    });
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    x.quiet_until(ns(1_003_906_250));
    x.step(
        ns(1_003_906_250),
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterDown),
    );

    // v3 at 100 ms: 100 ms + 100 ms / 256.
    let mut x = Exchange::new(Params {
        initial_state: Initial::Master,
        ..v3(100, ms(100))
    });
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    assert_eq!(x.deadline(), Some(ns(100_390_625)));
}

#[test]
fn initial_master_defers_to_a_higher_master_heard_in_time() {
    let mut x = Exchange::new(Params {
        initial_state: Initial::Master,
        ..v2(100)
    });
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    // The first accepted advert rearms the ordinary Master_Down_Interval.
    x.step(ms(500), advert(B, 200, secs(1)), &[]);
    assert_eq!(x.deadline(), Some(ms(500) + ns(3_609_375_000)));
    x.step(ms(1500), advert(B, 200, secs(1)), &[]);
    assert_eq!(x.m.state(), State::Backup);
}

#[test]
fn initial_master_ignores_nopreempt_and_preempt_delay() {
    // keepalived clears both for `state MASTER`: a lower-priority master is preempted.
    let mut x = Exchange::new(Params {
        initial_state: Initial::Master,
        preempt: false,
        preempt_delay: secs(100),
        ..v2(100)
    });
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    x.step(ms(500), advert(B, 50, secs(1)), &[]);
    x.step(
        ns(1_003_906_250),
        Event::Tick,
        &to_master(100, State::Backup, Reason::Preempt),
    );
}

// ----- 6.4.2 Backup -----

/// A started non-owner backup at priority 100.
fn backup(p: Params) -> Exchange {
    let mut x = Exchange::new(p);
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    x
}

#[test]
fn backup_accepts_higher_and_equal_priority_adverts() {
    let down = ns(3_609_375_000);
    for preempt in [true, false] {
        let mut x = backup(Params { preempt, ..v2(100) });
        // Higher priority: master-down timer rearmed from the advert.
        x.step(secs(1), advert(B, 200, secs(1)), &[]);
        assert_eq!(x.deadline(), Some(secs(1) + down));
        // Equal priority: accepted too (RFC: "greater than or equal"), whatever the
        // address: the tie-break is the Master's business.
        x.step(secs(2), advert(C, 100, secs(1)), &[]);
        x.step(
            secs(3),
            advert(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)), 100, secs(1)),
            &[],
        );
        x.quiet_until(secs(3) + down);
        x.step(
            secs(3) + down,
            Event::Tick,
            &to_master(100, State::Backup, Reason::MasterDown),
        );
    }
}

#[test]
fn backup_with_preempt_discards_lower_priority_and_takes_over() {
    let mut x = backup(v2(100));
    let down = ns(3_609_375_000);
    // Lower-priority adverts do not rearm the timer: the original deadline stands.
    x.step(secs(1), advert(B, 50, secs(1)), &[]);
    x.step(secs(2), advert(B, 50, secs(1)), &[]);
    x.step(secs(3), advert(B, 50, secs(1)), &[]);
    x.quiet_until(down);
    x.step(
        down,
        Event::Tick,
        &to_master(100, State::Backup, Reason::Preempt),
    );
    // The old master hears us, we hear it once more before it yields: split brain heal.
    x.step(
        secs(4),
        advert(B, 50, secs(1)),
        &[send(100), Action::SendGratuitous],
    );
}

#[test]
fn backup_without_preempt_follows_a_lower_priority_master() {
    let mut x = backup(Params {
        preempt: false,
        ..v2(100)
    });
    for n in 1..=20 {
        x.step(secs(n), advert(B, 50, secs(1)), &[]);
        assert_eq!(x.deadline(), Some(secs(n) + ns(3_609_375_000)));
    }
    assert_eq!(x.m.state(), State::Backup);
}

#[test]
fn backup_hearing_priority_zero_waits_skew_time_only() {
    let mut x = backup(v2(100));
    x.step(secs(1), advert(B, 200, secs(1)), &[]);
    x.step(secs(2), advert(B, 0, secs(1)), &[]);
    let at = secs(2) + ns(609_375_000);
    x.quiet_until(at);
    x.step(
        at,
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterResigned),
    );

    // v3: the skew scales with the master's interval, adopted from its last advert.
    let mut x = backup(v3(100, ms(100)));
    x.step(ms(50), advert(B, 200, secs(1)), &[]);
    x.step(ms(60), advert(B, 0, secs(1)), &[]);
    // 156 x 1 s / 256.
    assert_eq!(x.deadline(), Some(ms(60) + ns(609_375_000)));
    // A new master appearing in the meantime restores the full interval.
    x.step(ms(70), advert(C, 150, ms(200)), &[]);
    assert_eq!(x.deadline(), Some(ms(70) + ms(600) + ns(121_875_000)));
}

#[test]
fn v3_backup_adopts_the_masters_interval_and_v2_does_not() {
    let mut x = backup(v3(100, ms(100)));
    x.step(ms(10), advert(B, 200, ms(300)), &[]);
    assert_eq!(x.m.master_adver_interval(), ms(300));
    // 3 x 300 ms + 156 x 300 ms / 256 = 900 ms + 182.8125 ms.
    assert_eq!(x.m.master_down_interval(), ns(1_082_812_500));
    assert_eq!(x.deadline(), Some(ms(10) + ns(1_082_812_500)));
    // Once Master, we advertise at our own interval again.
    x.step(
        ms(10) + ns(1_082_812_500),
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterDown),
    );
    assert_eq!(x.m.master_adver_interval(), ms(100));
    assert_eq!(x.deadline(), Some(ms(110) + ns(1_082_812_500)));

    let mut x = backup(v2(100));
    x.step(ms(10), advert(B, 200, secs(3)), &[]);
    assert_eq!(x.m.master_adver_interval(), secs(1));
    assert_eq!(x.deadline(), Some(ms(10) + ns(3_609_375_000)));
}

#[test]
fn preempt_delay_holds_off_preempting_a_lower_priority_master() {
    // Priority 150: Master_Down_Interval = 3 + 106/256 s = 3.4140625 s.
    let down = ns(3_414_062_500);
    let mut x = backup(Params {
        preempt_delay: secs(10),
        ..v2(150)
    });
    // A lower-priority master advertises every second from 0.5 s. The first advert
    // starts the 10 s preempt clock (until 10.5 s); until then its adverts are accepted.
    for n in 0..10 {
        let t = ms(500 + 1000 * n);
        x.step(t, advert(B, 100, secs(1)), &[]);
        assert_eq!(x.deadline(), Some(t + down), "advert at {t:?} accepted");
    }
    // From 10.5 s they are discarded, so the timer last armed at 9.5 s runs out.
    x.step(ms(10_500), advert(B, 100, secs(1)), &[]);
    x.step(ms(11_500), advert(B, 100, secs(1)), &[]);
    x.step(ms(12_500), advert(B, 100, secs(1)), &[]);
    x.quiet_until(ms(9500) + down);
    x.step(
        ms(9500) + down,
        Event::Tick,
        &to_master(150, State::Backup, Reason::Preempt),
    );
}

#[test]
fn preempt_delay_clock_stops_on_a_higher_master_and_restarts_on_backup_entry() {
    let down = ns(3_414_062_500);
    let mut x = backup(Params {
        preempt_delay: secs(5),
        ..v2(150)
    });
    x.step(secs(1), advert(B, 100, secs(1)), &[]); // clock starts: 6 s
    x.step(secs(4), advert(C, 200, secs(1)), &[]); // higher master: clock stopped
    x.step(secs(5), advert(B, 100, secs(1)), &[]); // restarts: 10 s
    x.step(secs(7), advert(B, 100, secs(1)), &[]); // would have been past 6 s: accepted
    assert_eq!(x.deadline(), Some(secs(7) + down));
    x.step(secs(10), advert(B, 100, secs(1)), &[]); // 10 s is not before 10 s: discarded
    assert_eq!(x.deadline(), Some(secs(7) + down));
    x.step(
        secs(7) + down,
        Event::Tick,
        &to_master(150, State::Backup, Reason::Preempt),
    );
    // Back to Backup (a higher master): the clock starts afresh.
    x.step(
        secs(11),
        advert(C, 200, secs(1)),
        &[
            Action::SendAdvert { priority: 150 },
            Action::RemoveVips,
            tr(State::Master, State::Backup, Reason::HigherPriority),
        ],
    );
    x.step(secs(12), advert(B, 100, secs(1)), &[]);
    assert_eq!(x.deadline(), Some(secs(12) + down));
}

#[test]
fn preempt_delay_does_not_delay_a_timeout() {
    let mut x = backup(Params {
        preempt_delay: secs(300),
        ..v2(100)
    });
    x.step(
        ns(3_609_375_000),
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterDown),
    );
}

#[test]
fn shutdown_from_backup_cancels_the_timer() {
    let mut x = backup(v2(100));
    x.step(
        secs(1),
        Event::Shutdown,
        &[tr(State::Backup, State::Initialize, Reason::Shutdown)],
    );
    assert_eq!(x.m.next_deadline(), None);
    x.step(secs(10), Event::Tick, &[]);
    x.step(secs(10), advert(B, 200, secs(1)), &[]);
    x.step(secs(11), Event::Shutdown, &[]);
    // And it can start again.
    x.step(
        secs(12),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    assert_eq!(x.deadline(), Some(secs(12) + ns(3_609_375_000)));
}

// ----- 6.4.3 Master -----

/// A v2 master at priority 100, address A, master since 0 s (adverts due each second).
fn master(p: Params) -> Exchange {
    let mut x = Exchange::new(Params {
        initial_state: Initial::Master,
        ..p
    });
    let int = x.m.params().advert_int;
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    let at = x.deadline().expect("master-down deadline");
    x.step(
        at,
        Event::Tick,
        &to_master(x.m.effective_priority(), State::Backup, Reason::MasterDown),
    );
    // Shift the clock so the master is "since 0 s".
    x.t0 += at;
    assert_eq!(x.deadline(), Some(int));
    x
}

#[test]
fn master_advertises_on_its_timer_and_catches_up_after_a_late_tick() {
    let mut x = master(v2(100));
    for n in 1..=3 {
        x.quiet_until(secs(n));
        x.step(secs(n), Event::Tick, &[send(100)]);
    }
    // The driver slept through 4 s and 5 s: one advert, then one interval from now.
    x.step(ms(5500), Event::Tick, &[send(100)]);
    assert_eq!(x.deadline(), Some(ms(6500)));
    // A slightly late tick keeps the cadence.
    x.step(ms(6501), Event::Tick, &[send(100)]);
    assert_eq!(x.deadline(), Some(ms(7500)));
}

#[test]
fn master_yields_to_a_higher_priority() {
    let mut x = master(v2(100));
    x.step(
        ms(500),
        advert(B, 101, secs(1)),
        &[
            Action::SendAdvert { priority: 100 },
            Action::RemoveVips,
            tr(State::Master, State::Backup, Reason::HigherPriority),
        ],
    );
    assert_eq!(x.deadline(), Some(ms(500) + ns(3_609_375_000)));

    // v3 adopts the new master's interval.
    let mut x = master(v3(100, ms(100)));
    x.step(
        ms(50),
        advert(B, 200, secs(2)),
        &[
            Action::SendAdvert { priority: 100 },
            Action::RemoveVips,
            tr(State::Master, State::Backup, Reason::HigherPriority),
        ],
    );
    assert_eq!(x.m.master_adver_interval(), secs(2));
    assert_eq!(x.deadline(), Some(ms(50) + secs(6) + ns(1_218_750_000)));
}

#[test]
fn master_breaks_a_tie_on_the_primary_address() {
    // Equal priority from a higher address: yield.
    let mut x = master(v2(100));
    x.step(
        ms(500),
        advert(B, 100, secs(1)),
        &[
            Action::SendAdvert { priority: 100 },
            Action::RemoveVips,
            tr(State::Master, State::Backup, Reason::HigherAddress),
        ],
    );

    // Equal priority from a lower address: we win, and heal the split brain at once.
    let mut x = master(Params {
        primary_addr: B,
        ..v2(100)
    });
    x.step(
        ms(500),
        advert(A, 100, secs(1)),
        &[send(100), Action::SendGratuitous],
    );
    assert_eq!(x.m.state(), State::Master);

    // Equal priority from our own address (looped back): nothing.
    let mut x = master(v2(100));
    x.step(ms(500), advert(A, 100, secs(1)), &[]);
    assert_eq!(x.deadline(), Some(secs(1)));

    // The comparison is numeric, IPv6 too.
    let lo = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x9));
    let hi = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10));
    let mut x = master(Params {
        primary_addr: lo,
        ..v3(100, ms(100))
    });
    x.step(
        ms(50),
        advert(hi, 100, ms(100)),
        &[
            Action::SendAdvert { priority: 100 },
            Action::RemoveVips,
            tr(State::Master, State::Backup, Reason::HigherAddress),
        ],
    );
}

#[test]
fn master_hearing_a_lower_priority_readvertises_and_resends_gratuitous_arp() {
    let mut x = master(v2(100));
    x.step(
        ms(500),
        advert(B, 99, secs(1)),
        &[send(100), Action::SendGratuitous],
    );
    // The advert timer restarts from the immediate advert.
    assert_eq!(x.deadline(), Some(ms(1500)));
    assert_eq!(x.m.state(), State::Master);
}

#[test]
fn master_hearing_priority_zero_advertises_at_once() {
    let mut x = master(v2(100));
    x.step(ms(300), advert(B, 0, secs(1)), &[send(100)]);
    assert_eq!(x.deadline(), Some(ms(1300)));
}

#[test]
fn master_shutdown_sends_priority_zero_and_removes_vips() {
    let mut x = master(v2(100));
    x.step(
        ms(300),
        Event::Shutdown,
        &[
            send(0),
            Action::RemoveVips,
            tr(State::Master, State::Initialize, Reason::Shutdown),
        ],
    );
    assert_eq!(x.m.next_deadline(), None);
    x.step(secs(5), Event::Tick, &[]);
}

// ----- FAULT -----

#[test]
fn fault_from_initialize_is_remembered_until_startup() {
    let mut x = Exchange::new(v2(100));
    x.step(secs(0), Event::Fault(true), &[]);
    assert_eq!(x.m.state(), State::Initialize);
    x.step(
        secs(1),
        Event::Startup,
        &[tr(State::Initialize, State::Fault, Reason::Fault)],
    );
    assert_eq!(x.m.next_deadline(), None);
    x.step(secs(2), advert(B, 50, secs(1)), &[]);
    x.step(
        secs(3),
        Event::Fault(false),
        &[tr(State::Fault, State::Backup, Reason::FaultCleared)],
    );
    assert_eq!(x.deadline(), Some(secs(3) + ns(3_609_375_000)));

    // Cleared before startup: a normal start.
    let mut x = Exchange::new(v2(100));
    x.step(secs(0), Event::Fault(true), &[]);
    x.step(secs(0), Event::Fault(false), &[]);
    x.step(
        secs(1),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
}

#[test]
fn fault_from_backup_and_back() {
    let mut x = backup(v3(100, ms(100)));
    x.step(ms(10), advert(B, 200, secs(1)), &[]);
    x.step(
        ms(20),
        Event::Fault(true),
        &[tr(State::Backup, State::Fault, Reason::Fault)],
    );
    assert_eq!(x.m.next_deadline(), None);
    // Repeated reports and adverts change nothing; no timer runs.
    x.step(ms(30), Event::Fault(true), &[]);
    x.step(ms(40), advert(B, 200, secs(1)), &[]);
    x.step(secs(100), Event::Tick, &[]);
    // Back to Backup with the configured interval, not the last master's.
    x.step(
        secs(100),
        Event::Fault(false),
        &[tr(State::Fault, State::Backup, Reason::FaultCleared)],
    );
    assert_eq!(x.m.master_adver_interval(), ms(100));
    assert_eq!(x.deadline(), Some(secs(100) + ns(360_937_500)));
    x.step(secs(100) + ms(1), Event::Fault(false), &[]);
}

#[test]
fn fault_from_master_resigns_and_comes_back_as_backup() {
    let mut x = master(v2(100));
    x.step(
        ms(500),
        Event::Fault(true),
        &[
            send(0),
            Action::RemoveVips,
            tr(State::Master, State::Fault, Reason::Fault),
        ],
    );
    assert_eq!(x.m.next_deadline(), None);
    x.step(
        secs(2),
        Event::Fault(false),
        &[tr(State::Fault, State::Backup, Reason::FaultCleared)],
    );
    assert_eq!(x.deadline(), Some(secs(2) + ns(3_609_375_000)));
}

#[test]
fn owner_leaves_fault_as_master_at_once() {
    let mut x = Exchange::new(v2(255));
    x.step(
        secs(0),
        Event::Startup,
        &to_master(255, State::Initialize, Reason::AddressOwner),
    );
    x.step(
        secs(1) - ms(1),
        Event::Fault(true),
        &[
            send(0),
            Action::RemoveVips,
            tr(State::Master, State::Fault, Reason::Fault),
        ],
    );
    x.step(
        secs(5),
        Event::Fault(false),
        &to_master(255, State::Fault, Reason::FaultCleared),
    );
    assert_eq!(x.deadline(), Some(secs(6)));
}

#[test]
fn shutdown_from_fault() {
    let mut x = backup(v2(100));
    x.step(
        secs(1),
        Event::Fault(true),
        &[tr(State::Backup, State::Fault, Reason::Fault)],
    );
    x.step(
        secs(2),
        Event::Shutdown,
        &[tr(State::Fault, State::Initialize, Reason::Shutdown)],
    );
    // Still faulted: a restart goes back to Fault.
    x.step(
        secs(3),
        Event::Startup,
        &[tr(State::Initialize, State::Fault, Reason::Fault)],
    );
}

// ----- effective priority -----

#[test]
fn effective_priority_is_clamped_and_the_owner_never_moves() {
    let mut m = machine(v2(100));
    let now = Instant::now();
    for (delta, expect) in [
        (0, 100),
        (-50, 50),
        (-99, 1),
        (-1000, 1),
        (154, 254),
        (155, 254),
        (i32::MAX, 254),
        (i32::MIN, 1),
    ] {
        assert_eq!(m.step(now, Event::SetPriorityDelta(delta)), []);
        assert_eq!(m.effective_priority(), expect, "delta {delta}");
    }
    let mut m = machine(v2(255));
    m.step(now, Event::SetPriorityDelta(-100));
    assert_eq!(m.effective_priority(), 255);
}

#[test]
fn master_advertises_a_new_priority_at_its_next_advert() {
    let mut x = master(v2(100));
    x.step(ms(200), Event::SetPriorityDelta(-30), &[]);
    x.step(secs(1), Event::Tick, &[send(70)]);
    // It now yields to 80, which it beat before.
    x.step(
        ms(1100),
        advert(B, 80, secs(1)),
        &[
            Action::SendAdvert { priority: 70 },
            Action::RemoveVips,
            tr(State::Master, State::Backup, Reason::HigherPriority),
        ],
    );
}

#[test]
fn backup_priority_change_moves_its_deadline_and_its_preemption() {
    let mut x = backup(v2(100));
    x.step(secs(1), advert(B, 120, secs(1)), &[]);
    assert_eq!(x.deadline(), Some(secs(1) + ns(3_609_375_000)));
    // 100 -> 150: the skew shrinks by 50/256 s, and so does the wait.
    x.step(ms(1500), Event::SetPriorityDelta(50), &[]);
    assert_eq!(x.m.master_down_interval(), ns(3_414_062_500));
    assert_eq!(x.deadline(), Some(secs(1) + ns(3_414_062_500)));
    // Now 120 is a lower priority: its adverts are discarded and we take over.
    x.step(secs(2), advert(B, 120, secs(1)), &[]);
    x.step(secs(3), advert(B, 120, secs(1)), &[]);
    x.step(
        secs(1) + ns(3_414_062_500),
        Event::Tick,
        &to_master(150, State::Backup, Reason::Preempt),
    );
}

#[test]
fn a_priority_change_can_bring_a_deadline_due_at_once() {
    // v3 at 40.95 s, priority 1: skew 40.79 s; at priority 254 it is 0.32 s.
    let mut x = backup(v3(1, ms(40_950)));
    let late = x.deadline().expect("deadline");
    let early = late - (ns(40_950_000_000 * 255 / 256) - ns(40_950_000_000 * 2 / 256));
    x.step(
        early + ms(1),
        Event::SetPriorityDelta(253),
        &to_master(254, State::Backup, Reason::MasterDown),
    );
}

// ----- the driver is late -----

#[test]
fn a_deadline_already_due_fires_before_the_event() {
    let mut x = backup(v2(100));
    let down = ns(3_609_375_000);
    // The advert arrives after the deadline the driver failed to tick: the takeover
    // happened first, and the Master then yields to the higher advert.
    let mut expect = to_master(100, State::Backup, Reason::MasterDown);
    expect.extend([
        Action::SendAdvert { priority: 100 },
        Action::RemoveVips,
        tr(State::Master, State::Backup, Reason::HigherPriority),
    ]);
    x.step(down + ms(1), advert(B, 200, secs(1)), &expect);
}

// ----- recorded exchanges -----

/// A whole exchange as data: parameters, then events at offsets from the start, each with
/// the actions it must produce.
#[derive(Debug, Serialize, Deserialize)]
struct Recording {
    params: Params,
    steps: Vec<RecordedStep>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RecordedStep {
    at: Duration,
    event: Event,
    actions: Vec<Action>,
}

impl Recording {
    fn replay(&self) {
        let mut x = Exchange::new(self.params);
        for s in &self.steps {
            x.step(s.at, s.event, &s.actions);
        }
    }
}

/// RFC 5798 6.4 end to end for one backup, written as the JSON a capture tool would record.
const RECORDED: &str = r#"{
  "params": {
    "version": "V3", "vrid": 51, "priority": 100,
    "advert_int": {"secs": 0, "nanos": 100000000},
    "preempt": true, "preempt_delay": {"secs": 0, "nanos": 0},
    "initial_state": "Backup", "primary_addr": "198.18.0.1"
  },
  "steps": [
    {"at": {"secs": 0, "nanos": 0}, "event": "Startup",
     "actions": [{"Transition": {"from": "Initialize", "to": "Backup", "reason": "Startup"}}]},
    {"at": {"secs": 0, "nanos": 50000000},
     "event": {"Advert": {"src": "198.18.0.2", "priority": 200,
                          "interval": {"secs": 0, "nanos": 100000000}}},
     "actions": []},
    {"at": {"secs": 0, "nanos": 410937499}, "event": "Tick", "actions": []},
    {"at": {"secs": 0, "nanos": 410937500}, "event": "Tick",
     "actions": [{"SendAdvert": {"priority": 100}}, "AddVips", "SendGratuitous",
                 {"Transition": {"from": "Backup", "to": "Master", "reason": "MasterDown"}}]},
    {"at": {"secs": 0, "nanos": 510937500}, "event": "Tick",
     "actions": [{"SendAdvert": {"priority": 100}}]},
    {"at": {"secs": 0, "nanos": 520000000},
     "event": {"Advert": {"src": "198.18.0.2", "priority": 200,
                          "interval": {"secs": 0, "nanos": 100000000}}},
     "actions": [{"SendAdvert": {"priority": 100}}, "RemoveVips",
                 {"Transition": {"from": "Master", "to": "Backup", "reason": "HigherPriority"}}]},
    {"at": {"secs": 0, "nanos": 600000000}, "event": {"Fault": true},
     "actions": [{"Transition": {"from": "Backup", "to": "Fault", "reason": "Fault"}}]},
    {"at": {"secs": 1, "nanos": 0}, "event": "Shutdown",
     "actions": [{"Transition": {"from": "Fault", "to": "Initialize", "reason": "Shutdown"}}]}
  ]
}"#;

#[test]
fn recorded_exchange_replays() {
    let rec: Recording = serde_json::from_str(RECORDED).expect("recording parses");
    rec.replay();
    // And it survives a round trip, so recordings can be written by a test harness.
    let again: Recording =
        serde_json::from_str(&serde_json::to_string(&rec).expect("serialises")).expect("parses");
    again.replay();
}

// ----- two machines back to back -----

/// Two machines on a link that delivers each advert to the other 1 ms later.
struct Net {
    t0: Instant,
    now: Duration,
    nodes: [Machine; 2],
    /// (delivery time, sequence) -> (destination, event).
    wire: BTreeMap<(Duration, u64), (usize, Event)>,
    seq: u64,
    /// Every action, with its time and node.
    log: Vec<(Duration, usize, Action)>,
}

const LINK_DELAY: Duration = Duration::from_millis(1);

impl Net {
    fn new(a: Params, b: Params) -> Self {
        Self {
            t0: Instant::now(),
            now: Duration::ZERO,
            nodes: [machine(a), machine(b)],
            wire: BTreeMap::new(),
            seq: 0,
            log: Vec::new(),
        }
    }

    fn schedule(&mut self, at: Duration, node: usize, event: Event) {
        self.seq += 1;
        self.wire.insert((at, self.seq), (node, event));
    }

    fn feed(&mut self, node: usize, event: Event) {
        let actions = self.nodes[node].step(self.t0 + self.now, event);
        for action in actions {
            self.log.push((self.now, node, action));
            if let Action::SendAdvert { priority } = action {
                let p = self.nodes[node].params();
                let ev = advert(p.primary_addr, priority, p.advert_int);
                self.schedule(self.now + LINK_DELAY, 1 - node, ev);
            }
        }
    }

    fn masters(&self) -> usize {
        self.nodes
            .iter()
            .filter(|m| m.state() == State::Master)
            .count()
    }

    /// Runs every timer and delivery up to `end`; after `settled` there must be exactly
    /// one master after each step.
    fn run(&mut self, end: Duration, settled: Duration) {
        loop {
            let timer = (0..2)
                .filter_map(|i| Some((self.nodes[i].next_deadline()? - self.t0, i)))
                .min();
            let wire = self.wire.first_key_value().map(|(&(t, _), _)| t);
            let next = match (timer, wire) {
                (Some((t, i)), w) if w.is_none_or(|w| t <= w) => (t, Some(i)),
                (_, Some(w)) => (w, None),
                (None, None) => break,
                (Some(_), None) => unreachable!("handled by the first arm"),
            };
            if next.0 > end {
                break;
            }
            self.now = next.0;
            match next.1 {
                Some(i) => self.feed(i, Event::Tick),
                None => {
                    let (_, (node, event)) = self.wire.pop_first().expect("a delivery");
                    self.feed(node, event);
                }
            }
            if self.now > settled {
                assert_eq!(self.masters(), 1, "at {:?}: {:?}", self.now, self.states());
            }
        }
        self.now = end;
    }

    fn states(&self) -> [State; 2] {
        [self.nodes[0].state(), self.nodes[1].state()]
    }

    fn master(&self) -> usize {
        (0..2)
            .find(|&i| self.nodes[i].state() == State::Master)
            .expect("a master")
    }

    /// When `node` last became Master.
    fn became_master(&self, node: usize) -> Option<Duration> {
        self.log
            .iter()
            .rev()
            .find(|(_, n, a)| {
                *n == node
                    && matches!(
                        a,
                        Action::Transition {
                            to: State::Master,
                            ..
                        }
                    )
            })
            .map(|&(t, _, _)| t)
    }

    /// Shuts the master down at `now`: the other must take over exactly one link delay
    /// plus its Skew_Time later, and stay master.
    fn shut_down_master(&mut self) {
        let old = self.master();
        let other = 1 - old;
        let at = self.now;
        self.feed(old, Event::Shutdown);
        assert_eq!(self.nodes[old].state(), State::Initialize);
        let skew = self.nodes[other].skew_time();
        self.run(at + secs(60), at + LINK_DELAY + skew);
        assert_eq!(self.master(), other);
        assert_eq!(self.became_master(other), Some(at + LINK_DELAY + skew));
    }
}

#[test]
fn two_equal_routers_started_together_elect_the_higher_address() {
    let mut net = Net::new(
        v2(100),
        Params {
            primary_addr: B,
            ..v2(100)
        },
    );
    net.feed(0, Event::Startup);
    net.feed(1, Event::Startup);
    // Both time out together and both become master; the tie-break settles it 1 ms later.
    let down = ns(3_609_375_000);
    net.run(secs(30), down + LINK_DELAY);
    assert_eq!(net.master(), 1);
    assert_eq!(net.nodes[0].state(), State::Backup);
    net.shut_down_master();
}

#[test]
fn a_higher_priority_router_started_later_preempts() {
    let mut net = Net::new(
        v3(200, ms(100)),
        Params {
            primary_addr: B,
            ..v3(100, ms(100))
        },
    );
    net.feed(1, Event::Startup);
    net.run(secs(5), ms(400));
    assert_eq!(net.master(), 1);
    net.feed(0, Event::Startup);
    net.run(secs(10), secs(6));
    assert_eq!(net.master(), 0);
    net.shut_down_master();
}

#[test]
fn nopreempt_keeps_the_running_master() {
    let mut net = Net::new(
        Params {
            preempt: false,
            ..v2(200)
        },
        Params {
            primary_addr: B,
            ..v2(100)
        },
    );
    net.feed(1, Event::Startup);
    net.run(secs(5), secs(4));
    net.feed(0, Event::Startup);
    net.run(secs(120), secs(4));
    assert_eq!(net.master(), 1);
    net.shut_down_master();
    assert_eq!(net.master(), 0);
}

#[test]
fn two_initial_masters_converge() {
    let p = Params {
        initial_state: Initial::Master,
        ..v3(150, ms(100))
    };
    let mut net = Net::new(
        p,
        Params {
            primary_addr: B,
            ..p
        },
    );
    net.feed(0, Event::Startup);
    net.feed(1, Event::Startup);
    net.run(secs(20), ms(200));
    assert_eq!(net.master(), 1);
    net.shut_down_master();
}

#[test]
fn an_owner_takes_over_at_once_and_a_restarted_backup_does_not_disturb_it() {
    let mut net = Net::new(
        v2(255),
        Params {
            primary_addr: B,
            ..v2(100)
        },
    );
    net.feed(1, Event::Startup);
    net.run(secs(10), secs(4));
    assert_eq!(net.master(), 1);
    net.feed(0, Event::Startup);
    assert_eq!(net.states(), [State::Master, State::Master]);
    net.run(secs(20), secs(10) + LINK_DELAY);
    assert_eq!(net.master(), 0);
    // The backup restarts: it waits, hears the owner, stays backup.
    net.feed(1, Event::Shutdown);
    net.feed(1, Event::Startup);
    net.run(secs(40), secs(20));
    assert_eq!(net.master(), 0);
    net.shut_down_master();
}

#[test]
fn a_fault_on_the_master_hands_over_within_skew_time() {
    let mut net = Net::new(
        v2(200),
        Params {
            primary_addr: B,
            ..v2(100)
        },
    );
    net.feed(0, Event::Startup);
    net.feed(1, Event::Startup);
    net.run(secs(10), ns(3_218_750_000) + LINK_DELAY);
    assert_eq!(net.master(), 0);
    let at = net.now;
    net.feed(0, Event::Fault(true));
    net.run(secs(20), at + LINK_DELAY + ns(609_375_000));
    assert_eq!(
        net.became_master(1),
        Some(at + LINK_DELAY + ns(609_375_000))
    );
    // The fault clears: node 0 comes back as backup and preempts.
    net.feed(0, Event::Fault(false));
    net.run(secs(40), secs(30));
    assert_eq!(net.master(), 0);
}

// ----- reload: Event::Reconfigure -----

fn transitions(net: &Net) -> usize {
    net.log
        .iter()
        .filter(|(_, _, a)| matches!(a, Action::Transition { .. }))
        .count()
}

#[test]
fn a_master_keeps_its_state_and_advertises_a_new_priority_next() {
    let mut x = master(v2(100));
    x.step(ms(300), Event::Reconfigure(v2(150)), &[]);
    assert_eq!(x.m.state(), State::Master);
    assert_eq!(x.m.effective_priority(), 150);
    assert_eq!(x.deadline(), Some(secs(1)), "the advert due stays due");
    x.step(secs(1), Event::Tick, &[send(150)]);
    // The trackers' delta still counts on top of the new configured priority.
    x.step(ms(1100), Event::SetPriorityDelta(-20), &[]);
    x.step(ms(1200), Event::Reconfigure(v2(90)), &[]);
    assert_eq!(x.m.effective_priority(), 70);
    x.step(secs(2), Event::Tick, &[send(70)]);
    // Becoming the address owner: 255 whatever the trackers say.
    x.step(ms(2100), Event::Reconfigure(v2(255)), &[]);
    x.step(secs(3), Event::Tick, &[send(255)]);
}

#[test]
fn a_new_advert_interval_takes_effect_at_the_next_advert() {
    // Longer: the advert due at 1 s stays, the next one is 3 s after it.
    let mut x = master(v2(100));
    let slow = Params {
        advert_int: secs(3),
        ..v2(100)
    };
    x.step(ms(200), Event::Reconfigure(slow), &[]);
    x.quiet_until(secs(1));
    x.step(secs(1), Event::Tick, &[send(100)]);
    assert_eq!(x.deadline(), Some(secs(4)));
    // Shorter: no waiting out the old interval, one new interval from now at most.
    x.step(ms(1500), Event::Reconfigure(v2(100)), &[]);
    assert_eq!(x.deadline(), Some(ms(2500)));
    x.step(ms(2500), Event::Tick, &[send(100)]);
    assert_eq!(x.deadline(), Some(ms(3500)));
}

#[test]
fn a_backup_s_master_down_deadline_follows_the_new_settings() {
    let mut x = backup(v2(100));
    x.step(secs(1), advert(B, 200, secs(1)), &[]);
    assert_eq!(x.deadline(), Some(secs(1) + ns(3_609_375_000)));
    // Priority 100 -> 228: Skew_Time 0.609375 s -> 0.109375 s, the deadline 0.5 s earlier.
    x.step(secs(2), Event::Reconfigure(v2(228)), &[]);
    assert_eq!(x.m.state(), State::Backup);
    assert_eq!(x.deadline(), Some(secs(1) + ns(3_109_375_000)));
    // v2 interval 1 s -> 2 s: 3 more seconds of Master_Down_Interval.
    let slow = Params {
        advert_int: secs(2),
        ..v2(228)
    };
    x.step(secs(2), Event::Reconfigure(slow), &[]);
    assert_eq!(x.m.master_down_interval(), ns(6_109_375_000));
    assert_eq!(x.deadline(), Some(secs(1) + ns(6_109_375_000)));
    // down_timer_adverts 3 -> 1: never into the past, it fires now.
    let short = Params {
        down_timer_adverts: 1,
        ..slow
    };
    x.step(
        secs(5),
        Event::Reconfigure(short),
        &to_master(228, State::Backup, Reason::MasterDown),
    );
}

#[test]
fn a_v3_backup_keeps_the_interval_it_learned_from_the_master() {
    let mut x = backup(v3(100, ms(100)));
    x.step(ms(50), advert(B, 200, secs(1)), &[]);
    assert_eq!(x.m.master_adver_interval(), secs(1));
    x.step(ms(60), Event::Reconfigure(v3(100, ms(200))), &[]);
    assert_eq!(x.m.master_adver_interval(), secs(1));
    assert_eq!(x.m.params().advert_int, ms(200));
    // One that has heard no master yet follows its own interval.
    let mut x = backup(v3(100, ms(100)));
    x.step(ms(10), Event::Reconfigure(v3(100, ms(200))), &[]);
    assert_eq!(x.m.master_adver_interval(), ms(200));
}

#[test]
fn version_or_vrid_changes_and_invalid_params_are_ignored() {
    let mut x = master(v2(100));
    let before = *x.m.params();
    for p in [
        v3(150, secs(1)),
        Params {
            vrid: 52,
            ..v2(150)
        },
        Params {
            advert_int: ms(1500),
            ..v2(150)
        },
    ] {
        x.step(ms(100), Event::Reconfigure(p), &[]);
        assert_eq!(x.m.params(), &before);
        assert_eq!(x.m.effective_priority(), 100);
    }
}

#[test]
fn a_changed_preempt_delay_restarts_the_preempt_clock() {
    let delayed = |s| Params {
        preempt_delay: secs(s),
        ..v2(100)
    };
    let mut x = backup(delayed(10));
    x.step(secs(1), advert(B, 50, secs(1)), &[]);
    // Delay 10 -> 2 s: the clock that would run out at 11 s starts again at the next
    // lower-priority advert (2 s), so the adverts until 4 s exclusive hold us off.
    x.step(ms(1500), Event::Reconfigure(delayed(2)), &[]);
    for n in 2..=3 {
        x.step(secs(n), advert(B, 50, secs(1)), &[]);
        assert_eq!(x.deadline(), Some(secs(n) + ns(3_609_375_000)));
    }
    // 4 s: the clock ran out, the advert is discarded and the timer takes us over.
    x.step(secs(4), advert(B, 50, secs(1)), &[]);
    assert_eq!(x.deadline(), Some(secs(3) + ns(3_609_375_000)));
}

#[test]
fn a_reload_on_two_nodes_makes_no_transition_unless_the_priorities_say_so() {
    // Node 0 is master at 200, node 1 backup at 100, both preempting.
    let mut net = Net::new(
        v2(200),
        Params {
            primary_addr: B,
            ..v2(100)
        },
    );
    net.feed(0, Event::Startup);
    net.feed(1, Event::Startup);
    net.run(secs(10), secs(4));
    assert_eq!(net.master(), 0);
    let before = transitions(&net);
    // Priority 200 -> 150, advert interval unchanged, on the master: still above the
    // backup, nothing changes hands.
    net.feed(0, Event::Reconfigure(v2(150)));
    net.run(secs(30), secs(10));
    assert_eq!(net.master(), 0);
    assert_eq!(transitions(&net), before, "{:?}", &net.log[before..]);
    // The backup raised to 120: still below, nothing either.
    net.feed(
        1,
        Event::Reconfigure(Params {
            primary_addr: B,
            ..v2(120)
        }),
    );
    net.run(secs(50), secs(30));
    assert_eq!(transitions(&net), before);
    // The master lowered below the preempting backup: the normal rules hand over.
    let at = net.now;
    net.feed(0, Event::Reconfigure(v2(110)));
    net.run(secs(70), at + secs(5));
    assert_eq!(net.master(), 1);
    assert!(net.became_master(1).is_some_and(|t| t > at));
}

// ----- vrrp_sync_group -----

#[test]
fn sync_wait_holds_a_due_takeover_for_another_master_down_interval() {
    let mut x = backup(v2(100));
    let down = x.m.master_down_interval();
    assert!(!x.m.takeover_due(x.at(down - ns(1))));
    assert!(x.m.takeover_due(x.at(down)));
    // The group is not ready: no takeover, the timer runs again from now.
    x.step(down, Event::SyncWait, &[]);
    assert_eq!(x.m.state(), State::Backup);
    assert_eq!(x.deadline(), Some(down * 2));
    // Not due: SyncWait changes nothing.
    x.step(down + secs(1), Event::SyncWait, &[]);
    assert_eq!(x.deadline(), Some(down * 2));
    x.step(
        down * 2,
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterDown),
    );
}

#[test]
fn sync_master_and_sync_backup_move_only_backup_and_master() {
    let mut x = backup(v2(100));
    x.step(
        secs(1),
        Event::SyncMaster,
        &to_master(100, State::Backup, Reason::SyncGroup),
    );
    x.step(secs(1), Event::SyncMaster, &[]);
    // Stepping down is no resignation: no priority-0 advert.
    x.step(
        ms(1500),
        Event::SyncBackup,
        &[
            Action::RemoveVips,
            tr(State::Master, State::Backup, Reason::SyncGroup),
        ],
    );
    assert_eq!(
        x.deadline(),
        Some(ms(1500) + x.m.master_down_interval()),
        "a fresh master-down timer"
    );
    x.step(secs(3), Event::SyncBackup, &[]);
    x.step(
        secs(3),
        Event::Fault(true),
        &[tr(State::Backup, State::Fault, Reason::Fault)],
    );
    x.step(secs(4), Event::SyncMaster, &[]);
    assert_eq!(
        x.m.state(),
        State::Fault,
        "FAULT wins over the group's MASTER"
    );
}

// ----- track_reference: arbitration by reference address -----

#[test]
fn an_isolated_master_goes_to_fault_and_comes_back_as_backup() {
    let mut x = Exchange::new(v2(100));
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    let down = ns(3_609_375_000);
    x.step(
        down,
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterDown),
    );
    x.step(down, Event::Reference(true), &[]);
    x.step(
        down + ms(10),
        Event::Reference(false),
        &[
            send(0),
            Action::RemoveVips,
            tr(State::Master, State::Fault, Reason::ReferenceLost),
        ],
    );
    assert!(x.m.isolated());
    x.step(down + secs(5), Event::Reference(false), &[]);
    x.step(
        down + secs(6),
        Event::Reference(true),
        &[tr(State::Fault, State::Backup, Reason::ReferenceRegained)],
    );
    assert_eq!(x.deadline(), Some(down + secs(6) + ns(3_609_375_000)));
}

#[test]
fn an_isolated_backup_that_hears_its_master_stays_and_one_that_does_not_faults() {
    let mut x = Exchange::new(v2(100));
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    // References gone while the master is heard: nothing to decide, still BACKUP.
    x.step(ms(100), Event::Reference(false), &[]);
    x.step(secs(1), advert(B, 150, secs(1)), &[]);
    x.step(secs(2), advert(B, 150, secs(1)), &[]);
    assert_eq!(x.m.state(), State::Backup);
    // The master is lost too: FAULT rather than MASTER (no VIPs, no advert).
    let down = secs(2) + ns(3_609_375_000);
    x.quiet_until(down);
    x.step(
        down,
        Event::Tick,
        &[tr(State::Backup, State::Fault, Reason::ReferenceLost)],
    );
    // Adverts are not listened to in FAULT; the references coming back make it BACKUP,
    // and with no master heard it then takes over.
    x.step(down + secs(1), advert(B, 150, secs(1)), &[]);
    x.step(
        down + secs(2),
        Event::Reference(true),
        &[tr(State::Fault, State::Backup, Reason::ReferenceRegained)],
    );
    let again = down + secs(2) + ns(3_609_375_000);
    x.step(
        again,
        Event::Tick,
        &to_master(100, State::Backup, Reason::MasterDown),
    );
}

#[test]
fn references_regained_do_not_clear_a_tracker_fault_nor_a_tracker_fault_clear_isolation() {
    let mut x = Exchange::new(v2(100));
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    x.step(
        ms(1),
        Event::Fault(true),
        &[tr(State::Backup, State::Fault, Reason::Fault)],
    );
    x.step(ms(2), Event::Reference(false), &[]);
    x.step(ms(3), Event::Reference(true), &[]);
    assert_eq!(x.m.state(), State::Fault, "the tracker still says FAULT");
    x.step(ms(4), Event::Reference(false), &[]);
    // The tracker clears: BACKUP, but isolated it will not claim MASTER.
    x.step(
        ms(5),
        Event::Fault(false),
        &[tr(State::Fault, State::Backup, Reason::FaultCleared)],
    );
    let down = ms(5) + ns(3_609_375_000);
    x.step(
        down,
        Event::Tick,
        &[tr(State::Backup, State::Fault, Reason::ReferenceLost)],
    );
    // The owner, isolated, stays in FAULT when its tracker clears, until a reference
    // answers.
    let mut o = Exchange::new(v2(255));
    o.step(secs(0), Event::Fault(true), &[]);
    o.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Fault, Reason::Fault)],
    );
    o.step(ms(1), Event::Reference(false), &[]);
    o.step(ms(2), Event::Fault(false), &[]);
    o.step(
        ms(3),
        Event::Reference(true),
        &to_master(255, State::Fault, Reason::ReferenceRegained),
    );
}

#[test]
fn an_isolated_backup_does_not_preempt_a_lower_master_it_hears() {
    let mut x = Exchange::new(v2(150));
    x.step(
        secs(0),
        Event::Startup,
        &[tr(State::Initialize, State::Backup, Reason::Startup)],
    );
    x.step(ms(100), Event::Reference(false), &[]);
    // A lower master's adverts are discarded (preempt), so the timer runs out; isolated,
    // it neither preempts nor faults.
    let down = ns(3_414_062_500);
    for t in 1..=3 {
        x.step(secs(t), advert(B, 100, secs(1)), &[]);
    }
    x.step(down, Event::Tick, &[]);
    assert_eq!(x.m.state(), State::Backup);
    // The lower master falls silent too: the next expiry is FAULT.
    let next = x.deadline().expect("a fresh master-down timer");
    assert_eq!(next, down + down);
    x.step(
        next,
        Event::Tick,
        &[tr(State::Backup, State::Fault, Reason::ReferenceLost)],
    );
}
