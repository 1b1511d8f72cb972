//! Connection tables that grow: `xlb_conns4` / `xlb_conns6` start small
//! (`global_defs.connection_table_start_size`, default [`START_SLOTS`]) and grow by
//! [`GROWTH_FACTOR`] when they fill, up to `global_defs.connection_table_size`, which is
//! their maximum. They never shrink while pinned.
//!
//! Why: `bpftool map dump` prints every bucket of an array, empty or not. At the old fixed
//! 524,288 slots, dumping `xlb_conns4` printed 355 MB in 5-10 s; at 16,384 slots it is
//! a thirty-second of that. A smaller maximum would cut capacity instead (a full bucket
//! forwards new flows untracked).
//!
//! - When (the daemon's 500 ms publish tick, [`grow_to`]): more than half of either
//!   table's slots live, or an established entry evicted / a new flow left untracked in a
//!   full bucket since the last tick. Both tables grow together (IPv6 keeps a quarter of
//!   IPv4's slots).
//! - How (`grow`, `loader`), without losing or moving an established flow: a new, bigger
//!   map per table, the program loaded over it (the program reads the bucket count as a
//!   load-time constant, so an established packet costs the same); every live entry
//!   copied into its bucket in the new table ([`choose_way`]: the hash and seed are the
//!   same, only the mask widens, so one old bucket's entries spread over [`GROWTH_FACTOR`]
//!   new ones and always fit); the new program swapped into every pinned link; then a
//!   second pass copies the entries the old program made between the first copy and the
//!   swap, each only if the new table does not hold its key already (the new program may
//!   have seen the flow since); then the new table is pinned in place of the old one
//!   (staged beside it, then renamed).
//! - What can still go: a flow whose first packet the old program recorded after the
//!   first copy and whose next packet the new program saw before the second pass (a few
//!   microseconds) is scheduled again; a bucket the new program filled in that window
//!   leaves an old entry out (counted and logged).

use lb_common::{
    CONN_WAYS, Conn4, Conn6, ConnBucket4, ConnBucket6, ConnValue, FlowKey, FlowKey4, Timeouts,
    conn_hash4, conn_hash6,
};

use crate::dataplane::mmap::MappedArray;

/// IPv4 slots the tables start with by default (IPv6: a quarter): 512 KiB, dumped by
/// bpftool in well under a second.
pub const START_SLOTS: u32 = 16_384;
/// What a growth multiplies the slots by (capped at the maximum).
pub const GROWTH_FACTOR: u32 = 4;
/// The tables grow when more than this share (percent) of either one's slots is live.
pub const GROW_AT_PERCENT: u64 = 50;

/// The connection tables' size and growths, as the daemon tells `xlb status` and the
/// metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConnTableInfo {
    /// IPv4 slots now (IPv6: a quarter).
    pub slots: u32,
    /// The most they grow to (`connection_table_size`).
    pub max_slots: u32,
    /// Growths since the daemon started.
    pub growths: u64,
}

/// Live entries of both tables and their slots, as the daemon counted them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Occupancy {
    pub live4: u64,
    pub slots4: u64,
    pub live6: u64,
    pub slots6: u64,
}

impl Occupancy {
    /// The fuller table's live share, in percent.
    pub fn percent(&self) -> u64 {
        let p = |live: u64, slots: u64| live * 100 / slots.max(1);
        p(self.live4, self.slots4).max(p(self.live6, self.slots6))
    }
}

/// The IPv4 slots the tables should grow to, if they should: `slots` now (IPv4), `max`
/// the configured maximum, `occupancy` counted now, and whether a full bucket cost an
/// established entry or left a new flow untracked since the last look.
pub fn grow_to(slots: u32, max: u32, occupancy: Occupancy, full_buckets: bool) -> Option<u32> {
    if slots >= max {
        return None;
    }
    let over = |live: u64, slots: u64| live * 100 > slots * GROW_AT_PERCENT;
    let filling =
        over(occupancy.live4, occupancy.slots4) || over(occupancy.live6, occupancy.slots6);
    (filling || full_buckets).then(|| slots.saturating_mul(GROWTH_FACTOR).min(max))
}

/// The IPv4 slots new tables are created with: the start size, never above the maximum.
pub fn start_slots(start: u32, max: u32) -> u32 {
    start.min(max)
}

/// A slot type of a connection table.
pub trait Slot: Copy {
    type Key: Copy + PartialEq;
    fn key(&self) -> Self::Key;
    fn value(&self) -> ConnValue;
    fn hash(key: &Self::Key, seed: u32) -> u32;
    /// Writes `slot` at `p` as the XDP program does: `seen` 0 first (a reader sees an
    /// empty slot), the key and value, `seen` last.
    ///
    /// # Safety
    /// `p` points at a slot of a live, writable mapping.
    unsafe fn write(p: *mut Self, slot: Self);
}

/// A bucket type: [`CONN_WAYS`] slots.
pub trait Bucket: Copy {
    type S: Slot;
    fn slots(&self) -> &[Self::S; CONN_WAYS];
    /// The first slot of the bucket at `p` (not dereferenced).
    fn slots_mut(p: *mut Self) -> *mut Self::S;
}

macro_rules! slot_impl {
    ($slot:ty, $key:ty, $hash:path, $bucket:ty) => {
        impl Slot for $slot {
            type Key = $key;
            fn key(&self) -> $key {
                self.key
            }
            fn value(&self) -> ConnValue {
                self.value
            }
            fn hash(key: &$key, seed: u32) -> u32 {
                $hash(key, seed)
            }
            unsafe fn write(p: *mut Self, slot: Self) {
                // SAFETY: the caller's pointer; single aligned volatile stores, in order.
                unsafe {
                    core::ptr::write_volatile(&raw mut (*p).value.seen, 0);
                    core::ptr::write_volatile(&raw mut (*p).key, slot.key);
                    let mut v = slot.value;
                    v.seen = 0;
                    core::ptr::write_volatile(&raw mut (*p).value, v);
                    core::ptr::write_volatile(&raw mut (*p).value.seen, slot.value.seen);
                }
            }
        }
        impl Bucket for $bucket {
            type S = $slot;
            fn slots(&self) -> &[$slot; CONN_WAYS] {
                &self.slots
            }
            fn slots_mut(p: *mut Self) -> *mut $slot {
                // repr(C), `slots` its only field: the bucket's address is its first slot's.
                p.cast()
            }
        }
    };
}

slot_impl!(Conn4, FlowKey4, conn_hash4, ConnBucket4);
slot_impl!(Conn6, FlowKey, conn_hash6, ConnBucket6);

/// Whether `s` holds a flow at tick `now`.
fn live<S: Slot>(s: &S, seed: u32, now: u32, t: &Timeouts) -> bool {
    let v = s.value();
    v.seen != 0 && v.live(S::hash(&s.key(), seed), now, t)
}

/// The bucket of a flow whose hash is `hash` in a table of `buckets` (a power of two):
/// growing widens the mask, so the bucket of the smaller table is this one's low bits.
pub fn bucket_of(hash: u32, buckets: u32) -> usize {
    (hash & (buckets - 1)) as usize
}

/// Where an entry goes in its bucket of the new table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// The bucket holds this key already (the new program saw the flow): left as it is.
    Present,
    /// This way is empty or expired.
    Way(usize),
    /// Every way holds a live flow: the entry is left out.
    Full,
}

/// Where `slot` goes in `bucket`, inserting only a key the bucket does not hold (live or
/// not: a slot of the same key was written by the new program, which knows better).
pub fn choose_way<S: Slot>(
    bucket: &[S; CONN_WAYS],
    slot: &S,
    seed: u32,
    now: u32,
    t: &Timeouts,
) -> Placement {
    let key = slot.key();
    if bucket.iter().any(|s| s.value().seen != 0 && s.key() == key) {
        return Placement::Present;
    }
    match bucket.iter().position(|s| !live(s, seed, now, t)) {
        Some(i) => Placement::Way(i),
        None => Placement::Full,
    }
}

/// What one copy pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Entries written into the new table.
    pub copied: u64,
    /// Entries whose key the new table held already.
    pub present: u64,
    /// Entries left out, their new bucket full of live flows.
    pub left_out: u64,
}

/// Copies every live entry of `old` into its bucket of `new` (bigger, a power of two),
/// each only if `new` does not hold its key: the first pass (into an empty table) and
/// the second (after the swap, beside the new program's writes) alike. Only the slot
/// written changes in `new`: the rest of its bucket may be the program's.
pub fn copy_live<B: Bucket>(
    old: &MappedArray<B>,
    new: &mut MappedArray<B>,
    seed: u32,
    now: u32,
    t: &Timeouts,
) -> Copied {
    let buckets = new.len() as u32;
    let mut out = Copied::default();
    for i in 0..old.len() {
        let bucket = old.get(i);
        for s in bucket.slots() {
            if !live(s, seed, now, t) {
                continue;
            }
            let to = bucket_of(B::S::hash(&s.key(), seed), buckets);
            match choose_way(new.get(to).slots(), s, seed, now, t) {
                Placement::Present => out.present += 1,
                Placement::Full => out.left_out += 1,
                Placement::Way(w) => {
                    // SAFETY: `w` < CONN_WAYS, in the writable mapping's bucket `to`.
                    unsafe { B::S::write(B::slots_mut(new.ptr(to)).add(w), *s) };
                    out.copied += 1;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use lb_common::{CONN_OPEN, CONN_SYN_RECV, PROTO_TCP, conn_check};

    use super::*;

    const T: Timeouts = Timeouts::IPVS;
    const SEED: u32 = 0x5eed;
    const NOW: u32 = 100_000;

    fn key(n: u16) -> FlowKey4 {
        FlowKey4 {
            saddr: [198, 18, 0, 1],
            daddr: [198, 18, 0, 100],
            sport: n,
            dport: 80,
            proto: PROTO_TCP,
            _pad: [0; 3],
        }
    }

    fn slot(k: FlowKey4, real: u32, seen: u32) -> Conn4 {
        let hash = conn_hash4(&k, SEED);
        Conn4 {
            key: k,
            value: ConnValue {
                real,
                service_id: 1,
                state: CONN_OPEN,
                proto: PROTO_TCP,
                seen,
                check: conn_check(hash, real, 1),
            },
        }
    }

    fn occ(live4: u64, slots4: u64) -> Occupancy {
        Occupancy {
            live4,
            slots4,
            live6: 0,
            slots6: slots4 / 4,
        }
    }

    #[test]
    fn tables_grow_fourfold_past_half_full_or_on_full_buckets_up_to_the_maximum() {
        let max = 1 << 19;
        assert_eq!(grow_to(16_384, max, occ(8192, 16_384), false), None, "half");
        assert_eq!(grow_to(16_384, max, occ(8193, 16_384), false), Some(65_536));
        let v6 = Occupancy {
            live4: 0,
            slots4: 16_384,
            live6: 2049,
            slots6: 4096,
        };
        assert_eq!(grow_to(16_384, max, v6, false), Some(65_536), "IPv6 fuller");
        assert_eq!(
            grow_to(16_384, max, occ(10, 16_384), true),
            Some(65_536),
            "an established entry evicted, or a flow untracked"
        );
        assert_eq!(
            grow_to(1 << 18, max, occ(1 << 18, 1 << 18), false),
            Some(max),
            "capped at the maximum"
        );
        assert_eq!(grow_to(max, max, occ(max as u64, max as u64), true), None);
        assert_eq!(
            grow_to(1 << 20, max, occ(1 << 20, 1 << 20), true),
            None,
            "a table above a lowered maximum stays"
        );
        assert_eq!(start_slots(START_SLOTS, 4096), 4096);
        assert_eq!(start_slots(START_SLOTS, max), START_SLOTS);
        assert_eq!(occ(8193, 16_384).percent(), 50);
    }

    #[test]
    fn an_entry_moves_to_the_bucket_of_its_hash_under_the_wider_mask() {
        for n in 0..2000u16 {
            let h = conn_hash4(&key(n), SEED);
            let small = bucket_of(h, 4096);
            let big = bucket_of(h, 4096 * GROWTH_FACTOR);
            assert_eq!(
                big % 4096,
                small,
                "the new bucket's low bits are the old one"
            );
            assert_eq!(big, (h & (4096 * GROWTH_FACTOR - 1)) as usize);
        }
    }

    #[test]
    fn the_second_pass_inserts_only_keys_the_new_bucket_does_not_hold() {
        let empty = [Conn4::default(); CONN_WAYS];
        let a = slot(key(1), 3, NOW);
        assert_eq!(choose_way(&empty, &a, SEED, NOW, &T), Placement::Way(0));
        // The new program recorded the flow again (perhaps on another server): kept.
        let mut b = empty;
        b[2] = slot(key(1), 7, NOW);
        assert_eq!(choose_way(&b, &a, SEED, NOW, &T), Placement::Present);
        // An expired slot of the same key still counts as the program's.
        b[2].value.seen = NOW - 2000;
        assert_eq!(choose_way(&b, &a, SEED, NOW, &T), Placement::Present);
        // Other keys: the first empty or expired way.
        let mut c = [
            slot(key(2), 1, NOW),
            slot(key(3), 1, NOW - 5000),
            Conn4::default(),
            slot(key(4), 1, NOW),
        ];
        assert_eq!(choose_way(&c, &a, SEED, NOW, &T), Placement::Way(1));
        c[1] = slot(key(5), 1, NOW);
        c[2] = slot(key(6), 1, NOW);
        assert_eq!(choose_way(&c, &a, SEED, NOW, &T), Placement::Full);
        // A half-open entry is live too (60 s).
        c[2].value.state = CONN_SYN_RECV;
        c[2].value.seen = NOW - 10;
        assert_eq!(choose_way(&c, &a, SEED, NOW, &T), Placement::Full);
    }
}
