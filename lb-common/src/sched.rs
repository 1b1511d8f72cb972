//! IPVS's connection-counting schedulers (`lc`, `wlc`, `sed`, `nq`, `ovf`, `twos`) as
//! plain code that both sides run: the XDP program walks a service's candidate list once
//! per new flow and feeds each candidate to a [`LeastConn`] (or [`Twos`]), and the
//! controller's model (`lb-userspace/src/dataplane/sched/model.rs`) does the same over
//! counts it sets, so tests compare the two.
//!
//! A counting service's table (`xlb_table[table_offset..][..table_len]`) holds pairs
//! `(real-server index, weight)`, [`COUNTED_ENTRY`] entries per candidate, in the
//! controller's canonical order (address, port): the order IPVS's ties follow (IPVS
//! follows the order servers were added). Only candidates that take new flows (alive,
//! weight > 0) are in it. `xlb_real_conns[index]` ([`RealConns`]) holds each real
//! server's ActiveConn / InActConn.

/// Entries of `xlb_table` per candidate of a counting service: index, weight.
pub const COUNTED_ENTRY: u32 = 2;
/// The most candidates a counting service's new flow scans (the kernel's loop bound);
/// `xlb check` refuses a counting service with more real servers.
pub const MAX_COUNTED: u32 = 256;

/// A counter value that is negative after drift (a flow that XDP counted leaving but the
/// controller's recount already dropped) counts as 0; a huge one is capped, so that
/// `overhead * weight` stays inside 64 bits.
const COUNT_CAP: i32 = 1 << 24;

#[inline(always)]
const fn clamp(v: i32) -> u32 {
    if v < 0 {
        0
    } else if v > COUNT_CAP {
        COUNT_CAP as u32
    } else {
        v as u32
    }
}

/// [`RealConns::conns`] (and `fix`) of one active connection: ActiveConn is the high
/// 32 bits, InActConn the low 32, so that one atomic add moves a flow from one to the
/// other (`ACTIVE_ONE - 1`).
pub const ACTIVE_ONE: i64 = 1 << 32;

/// Value of `xlb_real_conns[index]`: a real server's connection counts, kept by two
/// writers that never write the same field. The XDP program adds to `conns` (atomically)
/// as flows come, change state and are evicted; the controller writes `fix` after each
/// recount of the connection tables, so that `conns + fix` equals the recount (flows
/// that expired without a packet are only seen there). A concurrent update of the
/// program is never lost: the controller never writes the program's field. Both are
/// `active * 2^32 + inactive` ([`ACTIVE_ONE`]), as two's-complement sums.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RealConns {
    pub conns: i64,
    pub fix: i64,
}

/// The (active, inactive) pair packed in a [`RealConns`] field.
#[inline(always)]
pub const fn unpack(v: i64) -> (i32, i32) {
    let inactive = v as i32;
    let active = (v.wrapping_sub(inactive as i64) >> 32) as i32;
    (active, inactive)
}

/// The field value of `active` and `inactive` connections.
#[inline(always)]
pub const fn pack(active: i32, inactive: i32) -> i64 {
    (active as i64)
        .wrapping_mul(ACTIVE_ONE)
        .wrapping_add(inactive as i64)
}

impl RealConns {
    /// A value whose sum is `active`, `inactive`.
    pub const fn of(active: i32, inactive: i32) -> Self {
        Self {
            conns: pack(active, inactive),
            fix: 0,
        }
    }

    /// ActiveConn (TCP ESTABLISHED) and InActConn as the scheduler sees them: the sum of
    /// both fields, a negative count (drift) as 0.
    #[inline(always)]
    pub const fn now(&self) -> (u32, u32) {
        let (a, i) = unpack(self.conns.wrapping_add(self.fix));
        (clamp(a), clamp(i))
    }

    #[inline(always)]
    pub const fn active_now(&self) -> u32 {
        self.now().0
    }
}

/// Whether a connection-table entry of `proto` in `state` is an active connection
/// (ipvsadm's ActiveConn): TCP in ESTABLISHED. Everything else is inactive.
#[inline(always)]
pub const fn counts_active(proto: u8, state: u8) -> bool {
    proto == crate::PROTO_TCP && state == crate::CONN_OPEN
}

/// IPVS's `ip_vs_dest_conn_overhead`: an active connection weighs 256 inactive ones.
#[inline(always)]
pub const fn conn_overhead(active: u32, inactive: u32) -> u64 {
    ((active as u64) << 8) + inactive as u64
}

/// The counting scheduler a [`LeastConn`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Least overhead; the first of equals.
    Lc,
    /// Least overhead / weight (cross-multiplied); the first of equals.
    Wlc,
    /// Shortest expected delay: least (active + 1) / weight.
    Sed,
    /// Never queue: the first server with no active connection, else as `sed`.
    Nq,
    /// Overflow: the highest weight among servers whose active connections do not exceed
    /// their weight; the first of equals.
    Ovf,
}

/// One pass over a service's candidates, in table order: [`LeastConn::consider`] each,
/// then [`LeastConn::choice`] is the position IPVS's scheduler picks. Three registers of
/// state, so that the XDP program's loop stays small.
#[derive(Clone, Copy, Debug)]
pub struct LeastConn {
    rule: Rule,
    /// Position of the best candidate so far, `u32::MAX` for none.
    best: u32,
    /// Its overhead (or weight, for `ovf`) and weight.
    best_cost: u64,
    best_weight: u64,
    /// `nq` found an idle server: nothing later counts.
    done: bool,
}

impl LeastConn {
    #[inline(always)]
    pub const fn new(rule: Rule) -> Self {
        Self {
            rule,
            best: u32::MAX,
            best_cost: 0,
            best_weight: 0,
            done: false,
        }
    }

    /// Whether a later candidate can still change the choice (`nq` stops at an idle one).
    #[inline(always)]
    pub const fn done(&self) -> bool {
        self.done
    }

    /// Candidate at position `pos` with `weight` and counts `conns`.
    #[inline(always)]
    pub fn consider(&mut self, pos: u32, weight: u32, conns: &RealConns) {
        if weight == 0 || self.done {
            return;
        }
        let active = conns.active_now();
        let w = weight as u64;
        let first = self.best == u32::MAX;
        let (cost, better) = match self.rule {
            Rule::Lc => {
                let c = conn_overhead(active, conns.now().1);
                (c, first || c < self.best_cost)
            }
            Rule::Wlc => {
                let c = conn_overhead(active, conns.now().1);
                (c, first || self.best_cost * w > c * self.best_weight)
            }
            Rule::Sed => {
                let c = active as u64 + 1;
                (c, first || self.best_cost * w > c * self.best_weight)
            }
            Rule::Nq => {
                let c = active as u64 + 1;
                if active == 0 {
                    self.done = true;
                    (c, true)
                } else {
                    (c, first || self.best_cost * w > c * self.best_weight)
                }
            }
            Rule::Ovf => {
                if active as u64 > w {
                    return;
                }
                (w, first || w > self.best_weight)
            }
        };
        if better {
            self.best = pos;
            self.best_cost = cost;
            self.best_weight = w;
        }
    }

    /// The chosen position, if any candidate qualified.
    #[inline(always)]
    pub const fn choice(&self) -> Option<u32> {
        if self.best == u32::MAX {
            None
        } else {
            Some(self.best)
        }
    }
}

/// IPVS's `twos`: two servers drawn at random in proportion to their weights, the one
/// with the smaller overhead per weight taken (the first draw on a tie). Run as two
/// passes: [`Twos::add_weight`] over every candidate, then [`Twos::start`] with two
/// random numbers and [`Twos::consider`] over the candidates again.
#[derive(Clone, Copy, Debug, Default)]
pub struct Twos {
    total: u64,
    r1: i64,
    r2: i64,
    pick1: u32,
    pick2: u32,
    cost1: u64,
    cost2: u64,
    weight1: u64,
    weight2: u64,
    have1: bool,
    have2: bool,
}

impl Twos {
    #[inline(always)]
    pub const fn new() -> Self {
        Self {
            total: 0,
            r1: 0,
            r2: 0,
            pick1: 0,
            pick2: 0,
            cost1: 0,
            cost2: 0,
            weight1: 0,
            weight2: 0,
            have1: false,
            have2: false,
        }
    }

    #[inline(always)]
    pub fn add_weight(&mut self, weight: u32) {
        self.total += weight as u64;
    }

    /// Draws in `[0, total]` from two random numbers (IPVS's `% (total + 1)`).
    #[inline(always)]
    pub fn start(&mut self, rand1: u32, rand2: u32) {
        // The total is at most 256 x 65,535: `+ 1` never wraps, but the XDP program
        // must not carry a division-by-zero panic (the verifier refuses it).
        let n = self.total.wrapping_add(1);
        if n == 0 {
            return;
        }
        self.r1 = (rand1 as u64 % n) as i64;
        self.r2 = (rand2 as u64 % n) as i64;
    }

    /// Both draws are placed: later candidates change nothing.
    #[inline(always)]
    pub const fn done(&self) -> bool {
        self.have1 && self.have2
    }

    #[inline(always)]
    pub fn consider(&mut self, pos: u32, weight: u32, conns: &RealConns) {
        if weight == 0 {
            return;
        }
        self.r1 -= weight as i64;
        self.r2 -= weight as i64;
        if self.r1 <= 0 && !self.have1 {
            self.have1 = true;
            self.pick1 = pos;
            self.weight1 = weight as u64;
            self.cost1 = {
                let (a, i) = conns.now();
                conn_overhead(a, i)
            };
        }
        if self.r2 <= 0 && !self.have2 {
            self.have2 = true;
            self.pick2 = pos;
            self.weight2 = weight as u64;
            self.cost2 = {
                let (a, i) = conns.now();
                conn_overhead(a, i)
            };
        }
    }

    #[inline(always)]
    pub const fn choice(&self) -> Option<u32> {
        if !self.have1 {
            return None;
        }
        if self.have2 && self.weight2 * self.cost1 > self.weight1 * self.cost2 {
            Some(self.pick2)
        } else {
            Some(self.pick1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(active: i32, inactive: i32) -> RealConns {
        RealConns::of(active, inactive)
    }

    fn run(rule: Rule, servers: &[(u32, RealConns)]) -> Option<u32> {
        let mut lc = LeastConn::new(rule);
        for (i, (w, conns)) in servers.iter().enumerate() {
            lc.consider(i as u32, *w, conns);
        }
        lc.choice()
    }

    #[test]
    fn overhead_is_active_times_256_plus_inactive() {
        assert_eq!(conn_overhead(2, 3), 515);
        let fixed = RealConns {
            conns: pack(5, 1),
            fix: pack(-2, -3),
        };
        assert_eq!(fixed.now(), (3, 0), "drift below 0");
        for (a, i) in [
            (0, 0),
            (1, -1),
            (-1, 1),
            (-7, -9),
            (100_000, 3),
            (3, 100_000),
        ] {
            assert_eq!(unpack(pack(a, i)), (a, i));
        }
        // A flow moving from inactive to active is one add.
        assert_eq!(unpack(pack(2, 5) + ACTIVE_ONE - 1), (3, 4));
    }

    #[test]
    fn lc_takes_the_least_overhead_first_of_equals_ignoring_weight() {
        let s = [(1, c(1, 0)), (5, c(0, 300)), (1, c(0, 300)), (1, c(1, 1))];
        assert_eq!(run(Rule::Lc, &s), Some(0), "256 < 300");
        let s = [(1, c(0, 3)), (9, c(0, 2)), (1, c(0, 2))];
        assert_eq!(run(Rule::Lc, &s), Some(1));
    }

    #[test]
    fn wlc_divides_by_weight_and_skips_weight_zero() {
        // 512/2 = 256 < 300/1.
        let s = [(1, c(0, 300)), (0, c(0, 0)), (2, c(2, 0))];
        assert_eq!(run(Rule::Wlc, &s), Some(2));
        // Equal ratios: the first.
        let s = [(1, c(1, 0)), (2, c(2, 0))];
        assert_eq!(run(Rule::Wlc, &s), Some(0));
        assert_eq!(run(Rule::Wlc, &[(0, c(0, 0))]), None);
    }

    #[test]
    fn sed_and_nq_count_active_plus_one() {
        // sed: (1+1)/1 = 2 vs (3+1)/3 = 1.33: the second.
        let s = [(1, c(1, 50)), (3, c(3, 0))];
        assert_eq!(run(Rule::Sed, &s), Some(1));
        // nq: an idle server wins at once, whatever its weight.
        let s = [(9, c(1, 0)), (1, c(0, 99)), (9, c(0, 0))];
        assert_eq!(run(Rule::Nq, &s), Some(1));
        let s = [(1, c(1, 50)), (3, c(3, 0))];
        assert_eq!(run(Rule::Nq, &s), Some(1));
    }

    #[test]
    fn ovf_takes_the_heaviest_not_over_its_weight() {
        let s = [(2, c(1, 0)), (5, c(6, 0)), (4, c(4, 0)), (4, c(0, 0))];
        assert_eq!(
            run(Rule::Ovf, &s),
            Some(2),
            "5 is over, 4 at its weight is not"
        );
        let s = [(1, c(2, 0)), (2, c(3, 0))];
        assert_eq!(run(Rule::Ovf, &s), None, "all overflowing");
    }

    #[test]
    fn twos_takes_the_lighter_of_two_weighted_draws() {
        let servers = [(1, c(5, 0)), (1, c(0, 0)), (2, c(1, 0))];
        let pick = |r1, r2| {
            let mut t = Twos::new();
            for (w, _) in &servers {
                t.add_weight(*w);
            }
            t.start(r1, r2);
            for (i, (w, conns)) in servers.iter().enumerate() {
                t.consider(i as u32, *w, conns);
            }
            t.choice()
        };
        // total 4, draws in 0..=4: 0,1 -> first; 2 -> second; 3,4 -> third.
        assert_eq!(pick(0, 0), Some(0));
        assert_eq!(pick(0, 2), Some(1));
        assert_eq!(pick(3, 2), Some(1), "256/1 vs 0/1");
        assert_eq!(pick(4, 0), Some(2), "256/2 < 1280/1");
    }
}
