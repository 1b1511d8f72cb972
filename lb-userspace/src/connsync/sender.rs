//! What the master sends: each round (a scan of the tables) yields the entries that are
//! new, changed (real server or TCP state), or due for a refresh, because the backup's
//! copy ages while the flow lives on here. Pure: the caller scans, sends within its
//! budget, and marks what it sent.

use std::{
    collections::{HashMap, HashSet},
    hash::BuildHasher,
    time::{Duration, Instant},
};

use super::wire::Entry;

/// At the latest, an entry is sent again after this long (sooner when half its
/// remaining timeout has passed): a backup's copy never expires under a living flow.
pub const REFRESH_MAX: Duration = Duration::from_secs(120);

/// A flow (or template) as both directors name it, hashed to 64 bits: the memory of
/// what was sent is read for every live flow every round, so its records are kept small
/// (a collision of two flows' ids, about 2^-64 a pair, would at worst delay a resend).
type FlowId = u64;

/// What the peers were told about a flow's real server and state (hashed as the id).
fn id(hasher: &foldhash::fast::FixedState, e: &Entry) -> FlowId {
    hasher.hash_one((e.client, e.virtual_service, e.protocol, e.flags))
}

fn told(hasher: &foldhash::fast::FixedState, e: &Entry) -> u64 {
    hasher.hash_one((e.real, e.state))
}

#[derive(Clone, Copy, Debug)]
struct Record {
    /// [`told`] of the entry sent.
    told: u64,
    /// When it was sent, ms after the sender's start.
    at_ms: u32,
    /// Half the remaining timeout when sent, capped at [`REFRESH_MAX`], ms.
    refresh_ms: u32,
    round: u32,
}

/// The master's memory of what its peers were told.
#[derive(Debug)]
pub struct Sender {
    sent: HashMap<FlowId, Record, foldhash::fast::RandomState>,
    hasher: foldhash::fast::FixedState,
    round: u32,
    epoch: Instant,
}

impl Default for Sender {
    fn default() -> Self {
        Self {
            sent: HashMap::default(),
            hasher: foldhash::fast::FixedState::with_seed(rand::random()),
            round: 0,
            epoch: Instant::now(),
        }
    }
}

impl Sender {
    fn ms(&self, at: Instant) -> u32 {
        at.saturating_duration_since(self.epoch).as_millis() as u32
    }

    /// The entries of this round's scan (`scanned`, with their service ids) that are
    /// due, leaving out services in `skip`. Flows gone from the scan are forgotten.
    pub fn due(
        &mut self,
        scanned: &[(u32, Entry)],
        skip: &HashSet<u32>,
        now: Instant,
    ) -> Vec<Entry> {
        self.round = self.round.wrapping_add(1);
        let round = self.round;
        let now_ms = self.ms(now);
        let mut out = Vec::new();
        for (sid, e) in scanned {
            if !skip.is_empty() && skip.contains(sid) {
                continue;
            }
            match self.sent.get_mut(&id(&self.hasher, e)) {
                Some(r) => {
                    r.round = round;
                    if r.told != told(&self.hasher, e)
                        || now_ms.wrapping_sub(r.at_ms) >= r.refresh_ms
                    {
                        out.push(*e);
                    }
                }
                None => out.push(*e),
            }
        }
        self.sent.retain(|_, r| r.round == round);
        out
    }

    /// `e` went out at `now`.
    pub fn mark_sent(&mut self, e: &Entry, now: Instant) {
        let refresh = Duration::from_secs(u64::from(e.remaining_s / 2))
            .clamp(Duration::from_secs(1), REFRESH_MAX);
        let record = Record {
            told: told(&self.hasher, e),
            at_ms: self.ms(now),
            refresh_ms: refresh.as_millis() as u32,
            round: self.round,
        };
        self.sent.insert(id(&self.hasher, e), record);
    }

    /// A backup asked for the whole table: everything is due again.
    pub fn forget_all(&mut self) {
        self.sent.clear();
    }

    /// Flows the peers were told about and that still live here.
    pub fn known(&self) -> usize {
        self.sent.len()
    }
}

/// A token bucket of entries per second, holding at most one second's worth.
#[derive(Debug)]
pub struct Budget {
    rate: u32,
    tokens: f64,
    at: Instant,
}

impl Budget {
    pub fn new(rate: u32, now: Instant) -> Self {
        Self {
            rate,
            tokens: f64::from(rate),
            at: now,
        }
    }

    /// Entries that may go now.
    pub fn available(&mut self, now: Instant) -> usize {
        let add = now.duration_since(self.at).as_secs_f64() * f64::from(self.rate);
        self.tokens = (self.tokens + add).min(f64::from(self.rate));
        self.at = now;
        self.tokens as usize
    }

    pub fn spend(&mut self, n: usize) {
        self.tokens = (self.tokens - n as f64).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connsync::wire::ENTRY_TEMPLATE;
    use std::net::SocketAddr;

    fn e(port: u16, real: &str, state: u8) -> Entry {
        Entry {
            protocol: 6,
            state,
            flags: 0,
            remaining_s: 900,
            virtual_service: "198.18.0.100:80".parse().unwrap(),
            client: SocketAddr::new("198.18.0.1".parse().unwrap(), port),
            real: real.parse().unwrap(),
        }
    }

    #[test]
    fn new_changed_and_stale_entries_are_due_and_the_rest_is_not() {
        let mut s = Sender::default();
        let t0 = Instant::now();
        let none = HashSet::new();
        let scan = vec![
            (1, e(1, "198.18.0.11:80", 3)),
            (1, e(2, "198.18.0.12:80", 0)),
        ];
        let due = s.due(&scan, &none, t0);
        assert_eq!(due.len(), 2, "new");
        for x in &due {
            s.mark_sent(x, t0);
        }
        assert!(s.due(&scan, &none, t0).is_empty(), "nothing changed");
        // SYN_RECV -> ESTABLISHED.
        let scan = vec![
            (1, e(1, "198.18.0.11:80", 0)),
            (1, e(2, "198.18.0.12:80", 0)),
        ];
        assert_eq!(s.due(&scan, &none, t0), [scan[0].1]);
        // Not marked (no budget): still due next round.
        assert_eq!(s.due(&scan, &none, t0), [scan[0].1]);
        s.mark_sent(&scan[0].1, t0);
        // Half the remaining timeout, capped: a refresh.
        let later = t0 + REFRESH_MAX;
        assert_eq!(s.due(&scan, &none, later).len(), 2);
        // Gone from the table: forgotten.
        s.due(&scan[..1], &none, t0);
        assert_eq!(s.known(), 1);
        // A bulk request: everything again; a skipped service: nothing.
        s.forget_all();
        assert_eq!(s.due(&scan, &none, t0).len(), 2);
        assert!(s.due(&scan, &HashSet::from([1]), t0).is_empty());
        // A template is another flow than the connection of the same client.
        let mut t = e(0, "198.18.0.11:80", 0);
        t.flags = ENTRY_TEMPLATE;
        assert_eq!(s.due(&[(1, t)], &none, t0), [t]);
    }

    #[test]
    fn the_budget_refills_at_the_rate_up_to_one_second() {
        let t0 = Instant::now();
        let mut b = Budget::new(1000, t0);
        assert_eq!(b.available(t0), 1000);
        b.spend(1000);
        assert_eq!(b.available(t0), 0);
        assert_eq!(b.available(t0 + Duration::from_millis(200)), 200);
        assert_eq!(b.available(t0 + Duration::from_secs(10)), 1000);
    }
}
