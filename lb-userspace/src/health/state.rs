//! The per-real-server checker state machine, with keepalived's semantics and no I/O.
//!
//! Time is a value passed in (`now`), so tests drive it with a virtual clock.
//!
//! Per checker (keepalived 2.x `check_*.c` epilogues):
//! - It starts up, or down with `alpha`. The first check runs after a random delay in
//!   `[0, warmup]`.
//! - A failure while up (or before the first result) is retried `retry` times, each
//!   `delay_before_retry` after the previous attempt ended; the next failure takes the
//!   checker down: down after exactly `1 + retry` consecutive failures. Exception, as
//!   keepalived: a checker without `alpha` that has never run goes down on its first
//!   failure (it was only presumed up).
//! - A failure while down is not retried: the next check is `delay_loop` later.
//! - A success takes the checker up at once and clears the retry count.
//! - After a success or a final failure, the next check is `delay_loop` later,
//!   counted from the end of the check, or from its start for `misc_check`
//!   ([`CheckerPolicy::from_start`], keepalived's `last_ran`).
//!
//! Per server: alive while every checker is up; the weight is the last one a
//! `misc_dynamic` checker gave (exit status - 2), `None` for the configured weight. A
//! [`Transition`] is emitted whenever either changes.

use std::time::{Duration, Instant};

/// How one checker is scheduled and judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerPolicy {
    /// Names the checker in reasons and logs (`tcp_check 198.18.0.21:80`).
    pub label: String,
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub delay_loop: Duration,
    pub warmup: Duration,
    pub alpha: bool,
    /// Report every failed attempt, not only transitions.
    pub log_all_failures: bool,
    /// Count `delay_loop` from the start of a check instead of its end.
    pub from_start: bool,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Passed. `weight`: the server weight a `misc_dynamic` script asked for (exit
    /// status - 2); `None`: the configured weight (every other checker says `None`).
    Success { weight: Option<u32> },
    /// Failed, with the reason for logs ("connection refused", "status 503").
    Failure { reason: String },
}

impl Outcome {
    pub fn up() -> Self {
        Self::Success { weight: None }
    }

    pub fn down(reason: impl Into<String>) -> Self {
        Self::Failure {
            reason: reason.into(),
        }
    }
}

/// A change of the server's aliveness or weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub alive: bool,
    /// Weight in force: `Some` from a `misc_dynamic` checker, `None` the configured one.
    pub weight: Option<u32>,
    /// Why, naming the checker: `tcp_check 198.18.0.21:80: connection refused`.
    pub reason: String,
}

/// What one result did, for the caller to log and forward.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// The checker went up (`Some(true)`) or down (`Some(false)`).
    pub checker_changed: Option<bool>,
    /// A failure that will be retried: (attempt number, 1 + retry).
    pub retrying: Option<(u32, u32)>,
    /// The server's aliveness or weight changed.
    pub transition: Option<Transition>,
    /// When this checker runs next.
    pub next_due: Option<Instant>,
}

/// One checker's progress. Public so a reload can carry it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerState {
    pub up: bool,
    /// A result has been seen since start.
    pub has_run: bool,
    /// Failures so far in the current series of retries.
    pub retry_it: u32,
    /// Consecutive failed checks.
    pub failures: u32,
    /// The weight this checker asks for (`misc_dynamic`).
    pub weight: Option<u32>,
    /// When the next check is due; `None` while one runs.
    pub next_due: Option<Instant>,
    /// When the running (or last) check started.
    pub started: Option<Instant>,
    /// Last failure reason, for the reason of a later transition.
    pub last_reason: String,
}

impl CheckerState {
    /// A checker that has not run: up unless `alpha`, first check after `warmup *
    /// jitter` (`jitter` in `[0, 1]`).
    pub fn new(policy: &CheckerPolicy, now: Instant, jitter: f64) -> Self {
        Self {
            up: !policy.alpha,
            has_run: false,
            // keepalived: "for non alpha mode, one failure is enough initially".
            retry_it: if policy.alpha { 0 } else { policy.retry },
            failures: 0,
            weight: None,
            next_due: Some(now + policy.warmup.mul_f64(jitter.clamp(0.0, 1.0))),
            started: None,
            last_reason: if policy.alpha {
                "alpha: down until a first success".to_owned()
            } else {
                String::new()
            },
        }
    }
}

/// The state of one real server: its checkers and what was last reported.
#[derive(Debug, Clone)]
pub struct ServerState {
    policies: Vec<CheckerPolicy>,
    checkers: Vec<CheckerState>,
    alive: bool,
    weight: Option<u32>,
}

impl ServerState {
    /// A server whose checkers have not run. `jitter` gives each checker's warmup
    /// fraction in `[0, 1]`.
    pub fn new(
        policies: Vec<CheckerPolicy>,
        now: Instant,
        mut jitter: impl FnMut() -> f64,
    ) -> Self {
        let checkers = policies
            .iter()
            .map(|p| CheckerState::new(p, now, jitter()))
            .collect();
        Self::from_parts(policies, checkers, None)
    }

    /// A server from checker states carried over (a reload). `reported`: what was
    /// last reported (aliveness, weight); `None` to take the checkers' view as
    /// reported. Follow with [`Self::evaluate`] to report a difference.
    pub fn from_parts(
        policies: Vec<CheckerPolicy>,
        checkers: Vec<CheckerState>,
        reported: Option<(bool, Option<u32>)>,
    ) -> Self {
        assert_eq!(policies.len(), checkers.len(), "one state per checker");
        let mut s = Self {
            policies,
            checkers,
            alive: true,
            weight: None,
        };
        (s.alive, s.weight) = reported.unwrap_or_else(|| s.computed());
        s
    }

    pub fn alive(&self) -> bool {
        self.alive
    }

    pub fn weight(&self) -> Option<u32> {
        self.weight
    }

    pub fn checkers(&self) -> &[CheckerState] {
        &self.checkers
    }

    /// The earliest time a checker that is not running is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.checkers.iter().filter_map(|c| c.next_due).min()
    }

    /// Marks the checkers due at `now` as running and returns their indices.
    pub fn start_due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for (i, c) in self.checkers.iter_mut().enumerate() {
            if c.next_due.is_some_and(|t| t <= now) {
                c.next_due = None;
                c.started = Some(now);
                due.push(i);
            }
        }
        due
    }

    /// Feeds the result of checker `i`, which ended at `now`.
    pub fn on_result(&mut self, i: usize, now: Instant, outcome: Outcome) -> Step {
        let p = &self.policies[i];
        let c = &mut self.checkers[i];
        let mut step = Step::default();
        let delay = match outcome {
            Outcome::Success { weight } => {
                c.retry_it = 0;
                c.failures = 0;
                c.weight = weight;
                if !c.up {
                    c.up = true;
                    step.checker_changed = Some(true);
                }
                c.last_reason.clear();
                p.delay_loop
            }
            Outcome::Failure { reason } => {
                c.last_reason = reason;
                c.failures = c.failures.saturating_add(1);
                if c.up || !c.has_run {
                    if c.retry_it < p.retry {
                        c.retry_it += 1;
                        step.retrying = Some((c.retry_it, p.retry + 1));
                        p.delay_before_retry
                    } else {
                        c.retry_it = 0;
                        if c.up {
                            c.up = false;
                            step.checker_changed = Some(false);
                        }
                        p.delay_loop
                    }
                } else {
                    p.delay_loop
                }
            }
        };
        c.has_run = true;
        let base = match (p.from_start, c.started) {
            (true, Some(started)) => started,
            _ => now,
        };
        let next = (base + delay).max(now);
        c.next_due = Some(next);
        step.next_due = Some(next);
        step.transition = self.evaluate_because(i);
        step
    }

    /// Reports a difference between what the checkers say and what was last reported
    /// (after [`Self::from_parts`] with changed checkers).
    pub fn evaluate(&mut self) -> Option<Transition> {
        let (alive, weight) = self.computed();
        if (alive, weight) == (self.alive, self.weight) {
            return None;
        }
        let reason = match self.checkers.iter().position(|c| !c.up) {
            Some(i) => self.reason_of(i, false),
            None => "checkers changed: all up".to_owned(),
        };
        self.alive = alive;
        self.weight = weight;
        Some(Transition {
            alive,
            weight,
            reason,
        })
    }

    fn evaluate_because(&mut self, i: usize) -> Option<Transition> {
        let (alive, weight) = self.computed();
        if (alive, weight) == (self.alive, self.weight) {
            return None;
        }
        let c = &self.checkers[i];
        let reason = if !c.up {
            self.reason_of(i, true)
        } else if alive {
            match weight {
                Some(w) if weight != self.weight => {
                    format!("{}: succeeded, weight {w}", self.policies[i].label)
                }
                _ => format!("{}: succeeded", self.policies[i].label),
            }
        } else {
            // This checker is fine but another one is still down: the change is the
            // weight alone.
            match weight {
                Some(w) => format!("{}: weight {w}", self.policies[i].label),
                None => format!("{}: configured weight", self.policies[i].label),
            }
        };
        self.alive = alive;
        self.weight = weight;
        Some(Transition {
            alive,
            weight,
            reason,
        })
    }

    fn reason_of(&self, i: usize, attempts: bool) -> String {
        let (p, c) = (&self.policies[i], &self.checkers[i]);
        let mut r = format!("{}: {}", p.label, c.last_reason);
        if attempts && c.failures > 1 {
            r.push_str(&format!(" (after {} attempts)", c.failures));
        }
        r
    }

    fn computed(&self) -> (bool, Option<u32>) {
        let alive = self.checkers.iter().all(|c| c.up);
        let weight = self.checkers.iter().rev().find_map(|c| c.weight);
        (alive, weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(retry: u32, dbr: u64, loop_: u64) -> CheckerPolicy {
        CheckerPolicy {
            label: "tcp_check 198.18.0.21:80".to_owned(),
            retry,
            delay_before_retry: Duration::from_secs(dbr),
            delay_loop: Duration::from_secs(loop_),
            warmup: Duration::ZERO,
            alpha: false,
            log_all_failures: false,
            from_start: false,
        }
    }

    /// A virtual clock and one server, driven check by check.
    struct Sim {
        t0: Instant,
        now: Instant,
        s: ServerState,
    }

    impl Sim {
        fn new(policies: Vec<CheckerPolicy>) -> Self {
            let t0 = Instant::now();
            Self {
                t0,
                now: t0,
                s: ServerState::new(policies, t0, || 0.0),
            }
        }

        fn at(&self) -> Duration {
            self.now - self.t0
        }

        /// Advances to the next due check, which must be checker `i`, and feeds it
        /// `outcome` after `took`.
        fn run(&mut self, i: usize, took: Duration, outcome: Outcome) -> Step {
            let due = self.s.next_due().expect("a check is due");
            self.now = self.now.max(due);
            let started = self.s.start_due(self.now);
            assert!(started.contains(&i), "checker {i} due at {:?}", self.at());
            self.now += took;
            self.s.on_result(i, self.now, outcome)
        }

        fn ok(&mut self) -> Step {
            self.run(0, Duration::ZERO, Outcome::up())
        }

        fn fail(&mut self) -> Step {
            self.run(0, Duration::ZERO, Outcome::down("connection refused"))
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn down_after_exactly_one_plus_retry_failures_spaced_by_delay_before_retry() {
        let mut sim = Sim::new(vec![policy(3, 2, 10)]);
        assert!(sim.ok().transition.is_none(), "already alive");
        assert_eq!(sim.at(), secs(0));

        // Attempt 1 at t=10; retries at 12, 14, 16; down at the 4th failure (1 + 3).
        let mut times = Vec::new();
        for attempt in 1..=3 {
            let step = sim.fail();
            times.push(sim.at());
            assert_eq!(step.retrying, Some((attempt, 4)));
            assert!(step.transition.is_none(), "attempt {attempt} is not enough");
        }
        let step = sim.fail();
        times.push(sim.at());
        assert_eq!(times, vec![secs(10), secs(12), secs(14), secs(16)]);
        assert_eq!(step.checker_changed, Some(false));
        let t = step.transition.expect("down");
        assert!(!t.alive);
        assert_eq!(
            t.reason,
            "tcp_check 198.18.0.21:80: connection refused (after 4 attempts)"
        );
        // Down: no retries any more, one check per delay_loop.
        assert_eq!(step.next_due, Some(sim.t0 + secs(26)));
        let step = sim.fail();
        assert_eq!((step.retrying, step.transition), (None, None));
        assert_eq!(sim.at(), secs(26));
        assert_eq!(step.next_due, Some(sim.t0 + secs(36)));
    }

    #[test]
    fn retries_count_from_the_end_of_the_attempt() {
        let mut sim = Sim::new(vec![policy(1, 2, 10)]);
        sim.ok();
        // The attempt at t=10 times out after 3 s: the retry is 2 s after that.
        let step = sim.run(0, secs(3), Outcome::down("connection timeout after 3s"));
        assert_eq!(step.next_due, Some(sim.t0 + secs(15)));
    }

    #[test]
    fn a_success_between_failures_resets_the_count() {
        let mut sim = Sim::new(vec![policy(1, 1, 5)]);
        sim.ok();
        assert!(sim.fail().retrying.is_some());
        assert!(sim.ok().transition.is_none());
        assert!(sim.fail().retrying.is_some(), "a new series of retries");
        assert!(!sim.fail().transition.unwrap().alive);
    }

    #[test]
    fn up_again_on_the_first_success() {
        let mut sim = Sim::new(vec![policy(2, 1, 5)]);
        sim.ok();
        for _ in 0..3 {
            sim.fail();
        }
        assert!(!sim.s.alive());
        let step = sim.ok();
        assert_eq!(step.checker_changed, Some(true));
        let t = step.transition.unwrap();
        assert!(t.alive);
        assert_eq!(t.reason, "tcp_check 198.18.0.21:80: succeeded");
    }

    #[test]
    fn a_fresh_server_goes_down_on_its_first_failure() {
        // keepalived: without alpha a server is only presumed up, so one failure is
        // enough before it has ever passed.
        let mut sim = Sim::new(vec![policy(3, 1, 5)]);
        let t = sim.fail().transition.expect("down at once");
        assert!(!t.alive);
    }

    #[test]
    fn alpha_starts_down_until_the_first_success() {
        let mut p = policy(1, 1, 5);
        p.alpha = true;
        let mut sim = Sim::new(vec![p]);
        assert!(!sim.s.alive());
        // Failures do not change anything (already down).
        let step = sim.fail();
        assert_eq!(step.transition, None);
        sim.fail();
        assert!(!sim.s.alive());
        let t = sim.ok().transition.expect("up");
        assert!(t.alive);
    }

    #[test]
    fn warmup_delays_the_first_check_by_a_fraction_of_it() {
        let mut p = policy(1, 1, 5);
        p.warmup = secs(10);
        let t0 = Instant::now();
        for (jitter, first) in [(0.0, 0), (0.5, 5), (1.0, 10), (7.0, 10), (-1.0, 0)] {
            let s = ServerState::new(vec![p.clone()], t0, || jitter);
            assert_eq!(s.next_due(), Some(t0 + secs(first)), "jitter {jitter}");
        }
        // With the monitor's jitter source, always within [0, warmup].
        for _ in 0..100 {
            let s = ServerState::new(vec![p.clone()], t0, rand::random::<f64>);
            let d = s.next_due().unwrap() - t0;
            assert!(d <= secs(10), "{d:?}");
        }
    }

    #[test]
    fn checks_repeat_every_delay_loop() {
        let mut sim = Sim::new(vec![policy(1, 1, 3)]);
        let mut times = Vec::new();
        for _ in 0..4 {
            sim.run(0, Duration::from_millis(100), Outcome::up());
            times.push(sim.at());
        }
        // Counted from the end of each check (100 ms each).
        let ms = |m| Duration::from_millis(m);
        assert_eq!(times, vec![ms(100), ms(3200), ms(6300), ms(9400)]);
    }

    #[test]
    fn misc_runs_every_delay_loop_from_the_start() {
        let mut p = policy(0, 1, 3);
        p.from_start = true;
        let mut sim = Sim::new(vec![p]);
        let mut starts = Vec::new();
        for _ in 0..3 {
            let due = sim.s.next_due().unwrap();
            starts.push(due - sim.t0);
            sim.run(0, Duration::from_millis(700), Outcome::up());
        }
        assert_eq!(starts, vec![secs(0), secs(3), secs(6)]);
        // A run longer than delay_loop: the next one starts at once.
        let step = sim.run(0, secs(5), Outcome::up());
        assert_eq!(step.next_due, Some(sim.now));
    }

    #[test]
    fn alive_only_when_every_checker_is_up() {
        let mut other = policy(0, 1, 5);
        other.label = "http_get 198.18.0.21:80".to_owned();
        let mut sim = Sim::new(vec![policy(0, 1, 5), other]);
        let t0 = sim.t0;
        assert_eq!(sim.s.start_due(t0), vec![0, 1]);
        assert!(sim.s.on_result(0, t0, Outcome::up()).transition.is_none());
        assert!(sim.s.on_result(1, t0, Outcome::up()).transition.is_none());

        let t = t0 + secs(5);
        sim.s.start_due(t);
        let down = sim.s.on_result(1, t, Outcome::down("status 503"));
        let tr = down.transition.expect("one checker down is enough");
        assert!(!tr.alive);
        assert_eq!(tr.reason, "http_get 198.18.0.21:80: status 503");
        // The other failing too changes nothing reported.
        let also = sim.s.on_result(0, t, Outcome::down("connection refused"));
        assert_eq!(also.checker_changed, Some(false));
        assert!(also.transition.is_none());

        let t = t0 + secs(10);
        sim.s.start_due(t);
        let one = sim.s.on_result(0, t, Outcome::up());
        assert_eq!(one.checker_changed, Some(true));
        assert!(one.transition.is_none(), "http_get is still down");
        let both = sim.s.on_result(1, t, Outcome::up());
        assert!(both.transition.expect("all up").alive);
    }

    #[test]
    fn misc_dynamic_sets_the_weight() {
        let mut p = policy(0, 1, 5);
        p.label = "misc_check \"/bin/chk\"".to_owned();
        p.from_start = true;
        let mut sim = Sim::new(vec![p]);
        // Exit 7: up with weight 5.
        let t = sim
            .run(0, Duration::ZERO, Outcome::Success { weight: Some(5) })
            .transition
            .expect("weight changed");
        assert_eq!((t.alive, t.weight), (true, Some(5)));
        assert_eq!(t.reason, "misc_check \"/bin/chk\": succeeded, weight 5");
        // Same weight again: nothing to report.
        let step = sim.run(0, Duration::ZERO, Outcome::Success { weight: Some(5) });
        assert_eq!(step.transition, None);
        // Exit 1: down; the weight it asked for stays.
        let t = sim.run(0, Duration::ZERO, Outcome::down("exit code 1"));
        let t = t.transition.unwrap();
        assert_eq!((t.alive, t.weight), (false, Some(5)));
        // Exit 0: up with the configured weight.
        let t = sim
            .run(0, Duration::ZERO, Outcome::up())
            .transition
            .unwrap();
        assert_eq!((t.alive, t.weight), (true, None));
        // Exit 2: weight 0, still up.
        let t = sim.run(0, Duration::ZERO, Outcome::Success { weight: Some(0) });
        assert_eq!(t.transition.unwrap().weight, Some(0));
    }

    #[test]
    fn a_reload_keeps_state_and_reports_what_changed() {
        let mut sim = Sim::new(vec![policy(0, 1, 5), policy(0, 1, 5)]);
        let t0 = sim.t0;
        sim.s.start_due(t0);
        sim.s.on_result(0, t0, Outcome::up());
        sim.s.on_result(1, t0, Outcome::down("connection refused"));
        assert!(!sim.s.alive());
        // The failing checker is removed by a reload: the server is alive again.
        let kept = sim.s.checkers()[0].clone();
        let reported = (sim.s.alive(), sim.s.weight());
        let mut s = ServerState::from_parts(vec![policy(0, 1, 5)], vec![kept], Some(reported));
        assert!(!s.alive());
        let t = s.evaluate().expect("now alive");
        assert!(t.alive);
        assert_eq!(s.next_due(), Some(t0 + secs(5)), "schedule kept");
        assert_eq!(s.evaluate(), None);
    }
}
