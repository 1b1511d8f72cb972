//! Allocation of the global scheduling-table array (`xlb_table`).
//!
//! Every service's scheduling table is a slice `xlb_table[offset .. offset + len]` of one
//! array of [`lb_common::TABLE_CAPACITY`] entries (see [`lb_common::ServiceInfo`]). Tables
//! are never edited in place under traffic: a rebuilt table is written to a *fresh* region,
//! then the service's `ServiceInfo` is replaced whole to point at it, and only then is the
//! old region given back. [`TableArena`] hands out those regions.
//!
//! * **First fit over a free list** kept sorted by offset, **coalescing** neighbours on
//!   release, so churn (services rebuilt at different sizes) does not fragment the array
//!   for long.
//! * **Quarantine.** Right after the swap an XDP program may still be running with the old
//!   `ServiceInfo` it read a moment ago, and will read the old region. A freed region
//!   therefore waits in quarantine and becomes allocatable again only when
//!   [`TableArena::release_quarantined`] sees it older than a grace period
//!   ([`DEFAULT_GRACE`], 1 s: orders of magnitude longer than one XDP invocation).
//! * **Adoption.** A restarted controller adopts the pinned maps and keeps forwarding with
//!   the tables already there: it [`TableArena::reserve`]s each region the pinned services
//!   point at before allocating anything.
//!
//! Zero-length regions (a service with no eligible real server) occupy nothing: `alloc(0)`
//! returns offset 0 and `free`/`reserve` of a zero length are no-ops.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a freed region stays in quarantine by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(1);

/// No free run is long enough for the requested table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "scheduling-table arena full: no free run of {requested} entries (largest free run \
     {largest_free}, {total_free} free in all, {quarantined} quarantined)"
)]
pub struct ArenaFull {
    pub requested: u32,
    pub largest_free: u32,
    pub total_free: u32,
    /// Entries that will become free once their grace period is over.
    pub quarantined: u32,
}

/// A `free` or `reserve` that does not match the arena's state (a controller bug, or
/// pinned maps that do not agree with each other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArenaError {
    #[error("table region {offset}+{len} lies outside the arena of {capacity} entries")]
    OutOfRange {
        offset: u32,
        len: u32,
        capacity: u32,
    },
    #[error("table region {offset}+{len} was not allocated (double free or wrong length)")]
    NotAllocated { offset: u32, len: u32 },
    #[error("table region {offset}+{len} is not free: it overlaps a table in use or in quarantine")]
    NotFree { offset: u32, len: u32 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Quarantined {
    offset: u32,
    len: u32,
    freed_at: Instant,
}

/// Allocator of `[0, capacity)` (see the module documentation).
#[derive(Clone, Debug)]
pub struct TableArena {
    capacity: u32,
    grace: Duration,
    /// Free runs, offset -> length; never empty runs, never two adjacent runs.
    free: BTreeMap<u32, u32>,
    /// Regions handed out (or reserved), offset -> length.
    allocated: BTreeMap<u32, u32>,
    /// Regions freed but possibly still read by a packet in flight.
    quarantine: Vec<Quarantined>,
}

impl TableArena {
    /// An empty arena over `[0, capacity)` with the [`DEFAULT_GRACE`] quarantine.
    pub fn new(capacity: u32) -> Self {
        Self::with_grace(capacity, DEFAULT_GRACE)
    }

    /// An empty arena over `[0, capacity)` whose freed regions wait `grace` before reuse.
    pub(crate) fn with_grace(capacity: u32, grace: Duration) -> Self {
        let mut free = BTreeMap::new();
        if capacity > 0 {
            free.insert(0, capacity);
        }
        Self {
            capacity,
            grace,
            free,
            allocated: BTreeMap::new(),
            quarantine: Vec::new(),
        }
    }

    /// A region of `len` entries: the lowest-offset free run that is long enough.
    pub fn alloc(&mut self, len: u32) -> Result<u32, ArenaFull> {
        if len == 0 {
            return Ok(0);
        }
        let Some((&offset, &run)) = self.free.iter().find(|&(_, &run)| run >= len) else {
            return Err(ArenaFull {
                requested: len,
                largest_free: self.largest_free_run(),
                total_free: self.free_entries(),
                quarantined: self.quarantined_entries(),
            });
        };
        self.free.remove(&offset);
        if run > len {
            self.free.insert(offset + len, run - len);
        }
        self.allocated.insert(offset, len);
        Ok(offset)
    }

    /// [`Self::free_at`] now.
    #[cfg(test)]
    fn free(&mut self, offset: u32, len: u32) -> Result<(), ArenaError> {
        self.free_at(offset, len, Instant::now())
    }

    /// Gives back a region returned by [`Self::alloc`] (or adopted by [`Self::reserve`]),
    /// swapped out at `now`: it is quarantined until [`Self::release_quarantined`] sees it
    /// older than the grace period.
    pub fn free_at(&mut self, offset: u32, len: u32, now: Instant) -> Result<(), ArenaError> {
        if len == 0 {
            return Ok(());
        }
        self.check_range(offset, len)?;
        if self.allocated.get(&offset) != Some(&len) {
            return Err(ArenaError::NotAllocated { offset, len });
        }
        self.allocated.remove(&offset);
        self.quarantine.push(Quarantined {
            offset,
            len,
            freed_at: now,
        });
        Ok(())
    }

    /// Returns to the free list every quarantined region freed at least the grace period
    /// before `now`. Returns the number of entries made allocatable.
    pub fn release_quarantined(&mut self, now: Instant) -> u32 {
        let grace = self.grace;
        let (ripe, waiting): (Vec<Quarantined>, Vec<Quarantined>) = self
            .quarantine
            .drain(..)
            .partition(|q| now.saturating_duration_since(q.freed_at) >= grace);
        self.quarantine = waiting;
        let mut released = 0;
        for q in ripe {
            self.insert_free(q.offset, q.len);
            released += q.len;
        }
        released
    }

    /// When the next quarantined region becomes releasable, if any is waiting: when to
    /// call [`Self::release_quarantined`] next.
    #[cfg(test)]
    fn next_release(&self) -> Option<Instant> {
        self.quarantine
            .iter()
            .map(|q| q.freed_at + self.grace)
            .min()
    }

    /// Marks `[offset, offset + len)` as allocated, as found in use in the pinned maps at
    /// startup. The region must be entirely free; it is later freed like any other.
    pub fn reserve(&mut self, offset: u32, len: u32) -> Result<(), ArenaError> {
        if len == 0 {
            return Ok(());
        }
        self.check_range(offset, len)?;
        let end = offset + len; // checked by check_range
        let Some((&run_off, &run_len)) = self.free.range(..=offset).next_back() else {
            return Err(ArenaError::NotFree { offset, len });
        };
        let run_end = run_off + run_len;
        if run_end < end {
            return Err(ArenaError::NotFree { offset, len });
        }
        self.free.remove(&run_off);
        if run_off < offset {
            self.free.insert(run_off, offset - run_off);
        }
        if end < run_end {
            self.free.insert(end, run_end - end);
        }
        self.allocated.insert(offset, len);
        Ok(())
    }

    /// Entries immediately allocatable.
    fn free_entries(&self) -> u32 {
        self.free.values().sum()
    }

    /// Entries in regions handed out or reserved.
    #[cfg(test)]
    pub(crate) fn allocated_entries(&self) -> u32 {
        self.allocated.values().sum()
    }

    /// Entries waiting for their grace period.
    pub(crate) fn quarantined_entries(&self) -> u32 {
        self.quarantine.iter().map(|q| q.len).sum()
    }

    /// The longest table that can be allocated right now.
    fn largest_free_run(&self) -> u32 {
        self.free.values().copied().max().unwrap_or(0)
    }

    /// Number of separate free runs (1 for an arena without holes).
    #[cfg(test)]
    fn free_runs(&self) -> usize {
        self.free.len()
    }

    fn check_range(&self, offset: u32, len: u32) -> Result<(), ArenaError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.capacity => Ok(()),
            _ => Err(ArenaError::OutOfRange {
                offset,
                len,
                capacity: self.capacity,
            }),
        }
    }

    /// Adds a free run, merging it with the runs just before and just after it.
    fn insert_free(&mut self, mut offset: u32, mut len: u32) {
        let before = self.free.range(..offset).next_back().map(|(&o, &l)| (o, l));
        if let Some((p_off, p_len)) = before.filter(|&(o, l)| o + l == offset) {
            self.free.remove(&p_off);
            offset = p_off;
            len += p_len;
        }
        if let Some(n_len) = self.free.remove(&(offset + len)) {
            len += n_len;
        }
        self.free.insert(offset, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Free, allocated and quarantined regions tile [0, capacity) exactly, and no two
    /// free runs touch (coalescing is complete).
    fn check_invariants(a: &TableArena) {
        let mut regions: Vec<(u32, u32, char)> = Vec::new();
        regions.extend(a.free.iter().map(|(&o, &l)| (o, l, 'f')));
        regions.extend(a.allocated.iter().map(|(&o, &l)| (o, l, 'a')));
        regions.extend(a.quarantine.iter().map(|q| (q.offset, q.len, 'q')));
        regions.sort();
        let mut at = 0u32;
        let mut prev = ' ';
        for (o, l, kind) in regions {
            assert!(l > 0, "empty region at {o}");
            assert_eq!(o, at, "gap or overlap at {at}: {a:?}");
            assert!(
                !(prev == 'f' && kind == 'f'),
                "uncoalesced free runs at {o}"
            );
            at = o + l;
            prev = kind;
        }
        assert_eq!(at, a.capacity);
    }

    #[test]
    fn first_fit_and_full() {
        let mut a = TableArena::new(100);
        assert_eq!(a.alloc(30), Ok(0));
        assert_eq!(a.alloc(30), Ok(30));
        assert_eq!(a.alloc(40), Ok(60));
        let err = a.alloc(1).unwrap_err();
        assert_eq!(
            err,
            ArenaFull {
                requested: 1,
                largest_free: 0,
                total_free: 0,
                quarantined: 0
            }
        );
        assert!(err.to_string().contains("no free run of 1 entries"));
        check_invariants(&a);
    }

    #[test]
    fn zero_length_is_free_of_charge() {
        let mut a = TableArena::new(10);
        assert_eq!(a.alloc(0), Ok(0));
        assert_eq!(a.free(0, 0), Ok(()));
        assert_eq!(a.reserve(5, 0), Ok(()));
        assert_eq!(a.free_entries(), 10);
        check_invariants(&a);
        let mut empty = TableArena::new(0);
        assert!(empty.alloc(1).is_err());
        assert_eq!(empty.alloc(0), Ok(0));
    }

    #[test]
    fn freed_regions_wait_out_the_grace_period() {
        let t0 = Instant::now();
        let mut a = TableArena::with_grace(100, Duration::from_secs(1));
        let x = a.alloc(60).unwrap();
        let _y = a.alloc(40).unwrap();
        a.free_at(x, 60, t0).unwrap();
        assert_eq!(a.quarantined_entries(), 60);
        // Not reusable yet: a packet may still read the old table.
        assert!(a.alloc(10).is_err());
        assert_eq!(a.release_quarantined(t0 + Duration::from_millis(999)), 0);
        assert!(a.alloc(10).is_err());
        assert_eq!(a.next_release(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(a.release_quarantined(t0 + Duration::from_secs(1)), 60);
        assert_eq!(a.next_release(), None);
        assert_eq!(a.alloc(10), Ok(0));
        check_invariants(&a);
    }

    #[test]
    fn quarantine_releases_only_ripe_regions() {
        let t0 = Instant::now();
        let mut a = TableArena::with_grace(30, Duration::from_secs(1));
        let r: Vec<u32> = (0..3).map(|_| a.alloc(10).unwrap()).collect();
        a.free_at(r[0], 10, t0 + Duration::from_millis(500))
            .unwrap();
        a.free_at(r[1], 10, t0).unwrap();
        assert_eq!(a.next_release(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(a.release_quarantined(t0 + Duration::from_millis(1200)), 10);
        assert_eq!(a.alloc(10), Ok(10));
        assert_eq!(a.quarantined_entries(), 10);
        // A clock that seems to go backwards releases nothing early.
        assert_eq!(a.release_quarantined(t0), 0);
        assert_eq!(a.release_quarantined(t0 + Duration::from_millis(1500)), 10);
        check_invariants(&a);
    }

    #[test]
    fn fragmentation_and_coalescing() {
        let t0 = Instant::now();
        let mut a = TableArena::with_grace(100, Duration::ZERO);
        let a0 = a.alloc(10).unwrap(); // [0,10)
        let a1 = a.alloc(20).unwrap(); // [10,30)
        let a2 = a.alloc(10).unwrap(); // [30,40)
        let a3 = a.alloc(30).unwrap(); // [40,70)
        assert_eq!((a0, a1, a2, a3), (0, 10, 30, 40));
        // Holes at [10,30) and [40,70), plus the tail [70,100).
        a.free_at(a1, 20, t0).unwrap();
        a.free_at(a3, 30, t0).unwrap();
        a.release_quarantined(t0);
        assert_eq!(a.free_runs(), 2, "[40,70) merged with the tail [70,100)");
        assert_eq!(a.largest_free_run(), 60);
        check_invariants(&a);
        // First fit: a small table goes in the first hole, a big one further on.
        assert_eq!(a.alloc(15), Ok(10));
        assert_eq!(a.alloc(50), Ok(40));
        assert_eq!(a.alloc(5), Ok(25));
        check_invariants(&a);
        // Only the tail [90,100) is left.
        assert_eq!(a.free_entries(), 10);
        assert!(a.alloc(11).is_err());
        // Free everything: one run again, whatever the order.
        for (o, l) in [(25, 5), (0, 10), (40, 50), (30, 10), (10, 15)] {
            a.free_at(o, l, t0).unwrap();
        }
        a.release_quarantined(t0);
        assert_eq!(a.free_runs(), 1);
        assert_eq!(a.largest_free_run(), 100);
        assert_eq!(a.alloc(100), Ok(0));
        check_invariants(&a);
    }

    #[test]
    fn bad_frees_are_refused() {
        let mut a = TableArena::new(100);
        let x = a.alloc(10).unwrap();
        assert_eq!(
            a.free(x, 9),
            Err(ArenaError::NotAllocated { offset: x, len: 9 })
        );
        assert_eq!(
            a.free(95, 10),
            Err(ArenaError::OutOfRange {
                offset: 95,
                len: 10,
                capacity: 100
            })
        );
        assert!(matches!(
            a.free(u32::MAX, 2),
            Err(ArenaError::OutOfRange { .. })
        ));
        assert_eq!(a.free(x, 10), Ok(()));
        assert_eq!(
            a.free(x, 10),
            Err(ArenaError::NotAllocated { offset: x, len: 10 }),
            "double free"
        );
        check_invariants(&a);
    }

    #[test]
    fn reserve_adopts_regions_in_use() {
        let mut a = TableArena::new(100);
        a.reserve(20, 10).unwrap();
        a.reserve(0, 5).unwrap();
        a.reserve(90, 10).unwrap();
        check_invariants(&a);
        assert_eq!(a.allocated_entries(), 25);
        // Overlaps are refused.
        assert_eq!(
            a.reserve(25, 10),
            Err(ArenaError::NotFree {
                offset: 25,
                len: 10
            })
        );
        assert!(a.reserve(0, 1).is_err());
        assert!(a.reserve(85, 6).is_err());
        assert!(a.reserve(95, 10).is_err());
        // Allocation works around the adopted regions.
        assert_eq!(a.alloc(15), Ok(5));
        assert_eq!(a.alloc(16), Ok(30));
        assert_eq!(a.alloc(5), Ok(46));
        // An adopted region is freed like any other.
        a.free(20, 10).unwrap();
        assert!(a.reserve(20, 10).is_err(), "quarantined is not free");
        check_invariants(&a);
    }

    #[test]
    fn random_churn_keeps_the_arena_consistent() {
        let mut rng = StdRng::seed_from_u64(1);
        let t0 = Instant::now();
        let mut a = TableArena::with_grace(10_000, Duration::from_secs(1));
        let mut live: Vec<(u32, u32)> = Vec::new();
        for step in 0..5_000u64 {
            let now = t0 + Duration::from_millis(step * 100);
            if live.is_empty() || rng.random_bool(0.55) {
                let len = rng.random_range(1..=700);
                if let Ok(o) = a.alloc(len) {
                    live.push((o, len));
                }
            } else {
                let (o, l) = live.swap_remove(rng.random_range(0..live.len()));
                a.free_at(o, l, now).unwrap();
            }
            a.release_quarantined(now);
            if step % 50 == 0 {
                check_invariants(&a);
            }
        }
        for (o, l) in live.drain(..) {
            a.free_at(o, l, t0).unwrap();
        }
        a.release_quarantined(t0 + Duration::from_secs(10_000));
        check_invariants(&a);
        assert_eq!(a.free_runs(), 1);
        assert_eq!(a.free_entries(), 10_000);
    }
}
