//! The connection tables `xlb_conns4` (IPv4) and `xlb_conns6` (IPv6): set-associative hash
//! tables in mmap-able BPF arrays, written by the XDP program only.
//!
//! Why not the kernel's LRU hash: `cargo xtask bench` measured an LRU hit at 25-29 ns (a
//! helper call and jhash) and an LRU insert at 570-620 ns (its list locks), where the
//! aims are 60 ns for an established flow and 150 ns for a new one. The verifier inlines
//! an array lookup, so a hit here costs our hash and one cache line, an insert a few
//! stores.
//!
//! - A flow lives in bucket `conn_hash(key, seed) % buckets`; a bucket has [`CONN_WAYS`]
//!   slots. The seed is random per pinned table (`Meta::conn_seed`), so that nobody can
//!   aim a flood of flows at one bucket.
//! - A slot is live while `now - seen <= timeout(proto, state)` ([`ConnValue::live`]),
//!   with `now` from `bpf_ktime_get_coarse_ns` ([`clock_ticks`]). An expired slot is
//!   simply reused: nothing has to sweep the table, and the controller may be down.
//! - A new flow takes its own old slot, else an empty or expired one, else the slot seen
//!   longest ago (as an LRU evicts).
//! - CPUs write slots without locks. `check` binds the value to the key's full hash, so a
//!   slot torn by two concurrent inserts reads as empty instead of sending a flow to
//!   another flow's real server. `seen` and `state` are single stores outside `check`.

use crate::{
    FlowKey, FlowKey4, MAX_CONNS,
    hash::{C1, C2, fmix},
};

/// Slots per bucket.
pub const CONN_WAYS: usize = 4;
/// Default buckets of `xlb_conns4` (a power of two; `connection_table_size` sets it).
pub const CONN_BUCKETS4: u32 = MAX_CONNS / CONN_WAYS as u32;
/// Default buckets of `xlb_conns6`: a quarter of IPv4's slots.
pub const CONN_BUCKETS6: u32 = MAX_CONNS / 4 / CONN_WAYS as u32;
/// The XDP program's globals holding the bucket counts (rewritten at load).
pub const CONN_BUCKETS4_GLOBAL: &str = "XLB_CONN_BUCKETS4";
pub const CONN_BUCKETS6_GLOBAL: &str = "XLB_CONN_BUCKETS6";
/// The XDP program's copy of `Meta::timeouts`.
pub const CONN_TIMEOUTS_GLOBAL: &str = "XLB_CONN_TIMEOUTS";
/// The XDP program's copy of `Meta::conn_seed` (a constant where the verifier reads it).
pub const CONN_SEED_GLOBAL: &str = "XLB_CONN_SEED";

/// Bucket counts of the two connection tables (the entries of their maps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnBuckets {
    /// `xlb_conns4`.
    pub v4: u32,
    /// `xlb_conns6`: a quarter of IPv4's.
    pub v6: u32,
}

/// Bucket counts of a table of `slots` IPv4 slots (a power of two >= 64).
pub const fn conn_buckets(slots: u32) -> ConnBuckets {
    let v4 = slots / CONN_WAYS as u32;
    ConnBuckets { v4, v6: v4 / 4 }
}

/// `clock_ticks` unit: 2^30 ns, about 1.07 s.
const CLOCK_SHIFT: u32 = 30;

/// The table clock: `CLOCK_MONOTONIC_COARSE` (the kernel's `ktime_get_coarse_ns`) in
/// ticks of 2^30 ns, plus one, so that `seen == 0` can mean an empty slot.
#[inline(always)]
pub const fn clock_ticks(monotonic_coarse_ns: u64) -> u32 {
    (monotonic_coarse_ns >> CLOCK_SHIFT) as u32 + 1
}

/// Seconds in clock ticks (rounded down).
pub const fn ticks(seconds: u64) -> u32 {
    let t = (seconds.saturating_mul(1_000_000_000)) >> CLOCK_SHIFT;
    if t > u32::MAX as u64 / 2 {
        u32::MAX / 2
    } else {
        t as u32
    }
}

/// Ticks in seconds (rounded down).
pub const fn seconds(ticks: u32) -> u64 {
    ((ticks as u64) << CLOCK_SHIFT) / 1_000_000_000
}

/// `ConnValue::state`: no FIN or RST seen from the client (UDP flows stay here).
pub const CONN_OPEN: u8 = 0;
/// The client sent a FIN.
pub const CONN_FIN: u8 = 1;
/// The client sent a RST.
pub const CONN_RST: u8 = 2;

/// IPVS's default timeouts (`ipvsadm --set 900 120 300`, and 10 s after a RST), in ticks.
pub const TIMEOUT_TCP: u32 = ticks(900);
const TIMEOUT_TCP_FIN: u32 = ticks(120);
const TIMEOUT_TCP_RST: u32 = ticks(10);
const TIMEOUT_UDP: u32 = ticks(300);

/// Idle timeouts of tracked flows, in ticks (keepalived's `lvs_timeouts`). The XDP
/// program gets them as a load-time constant, readers from `Meta::timeouts`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: u32,
    /// After the client's FIN.
    pub tcp_fin: u32,
    /// After the client's RST.
    pub tcp_rst: u32,
    pub udp: u32,
}

impl Timeouts {
    pub const IPVS: Self = Self {
        tcp: TIMEOUT_TCP,
        tcp_fin: TIMEOUT_TCP_FIN,
        tcp_rst: TIMEOUT_TCP_RST,
        udp: TIMEOUT_UDP,
    };

    /// From seconds (at least one tick each).
    pub const fn from_seconds(tcp: u64, tcp_fin: u64, udp: u64) -> Self {
        const fn t(s: u64) -> u32 {
            let v = ticks(s);
            if v == 0 { 1 } else { v }
        }
        Self {
            tcp: t(tcp),
            tcp_fin: t(tcp_fin),
            tcp_rst: TIMEOUT_TCP_RST,
            udp: t(udp),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self::IPVS
    }
}

/// The value half of a slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConnValue {
    /// Real-server index (`xlb_reals`).
    pub real: u32,
    pub service_id: u16,
    /// [`CONN_OPEN`], [`CONN_FIN`] or [`CONN_RST`].
    pub state: u8,
    /// The flow's protocol (selects the timeout).
    pub proto: u8,
    /// [`clock_ticks`] of the flow's last packet; 0: the slot is empty.
    pub seen: u32,
    /// [`conn_check`] of the key's hash and `real`, `service_id`.
    pub check: u32,
}

impl ConnValue {
    /// Ticks this flow may stay idle.
    #[inline(always)]
    pub const fn timeout(&self, t: &Timeouts) -> u32 {
        match self.state {
            CONN_FIN => t.tcp_fin,
            CONN_RST => t.tcp_rst,
            _ if self.proto == crate::PROTO_UDP => t.udp,
            _ => t.tcp,
        }
    }

    /// Holds a flow at tick `now`, written whole by one writer (see the module doc).
    #[inline(always)]
    pub const fn live(&self, hash: u32, now: u32, t: &Timeouts) -> bool {
        self.seen != 0
            && now.wrapping_sub(self.seen) <= self.timeout(t)
            && self.check == conn_check(hash, self.real, self.service_id)
    }
}

/// A slot of `xlb_conns4`: 32 bytes, four to a bucket (two cache lines).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Conn4 {
    pub key: FlowKey4,
    pub value: ConnValue,
}

/// A slot of `xlb_conns6`: 64 bytes, one cache line.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Conn6 {
    pub key: FlowKey,
    pub value: ConnValue,
    pub _pad: [u8; 8],
}

/// Value of `xlb_conns4[bucket]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConnBucket4 {
    pub slots: [Conn4; CONN_WAYS],
}

/// Value of `xlb_conns6[bucket]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConnBucket6 {
    pub slots: [Conn6; CONN_WAYS],
}

/// One mixing round over a 64-bit word: cheaper than Murmur's per-32-bit rounds, and
/// enough for bucket selection with a secret seed.
#[inline(always)]
const fn mix64(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
}

#[inline(always)]
const fn fold(h: u64) -> u32 {
    fmix((h ^ (h >> 32)) as u32)
}

/// The bucket hash of an IPv4 flow (take it modulo the bucket count).
#[inline(always)]
pub const fn conn_hash4(key: &FlowKey4, seed: u32) -> u32 {
    let [a, b] = key.words();
    fold(mix64(mix64(seed as u64, a), b))
}

/// The bucket hash of an IPv6 flow.
#[inline(always)]
pub const fn conn_hash6(key: &FlowKey, seed: u32) -> u32 {
    let [a, b, c, d, e] = key.words();
    fold(mix64(
        mix64(mix64(mix64(mix64(seed as u64, a), b), c), d),
        e,
    ))
}

/// Binds a slot's value to its key (through the key's hash): see the module doc.
#[inline(always)]
pub const fn conn_check(hash: u32, real: u32, service_id: u16) -> u32 {
    fmix(hash ^ real.wrapping_mul(C1) ^ (service_id as u32).wrapping_mul(C2))
}

impl FlowKey4 {
    /// The key as two words, for comparing and hashing (a key is 8-byte aligned, no
    /// padding).
    #[inline(always)]
    pub const fn words(&self) -> [u64; 2] {
        // SAFETY: repr(C), 16 bytes, no implicit padding, align 8 (asserted in lib.rs).
        unsafe { core::mem::transmute::<FlowKey4, [u64; 2]>(*self) }
    }

    /// The key of these words (any bits are a valid key).
    #[inline(always)]
    pub const fn from_words(w: [u64; 2]) -> Self {
        // SAFETY: as above; every field is an integer or a byte array.
        unsafe { core::mem::transmute::<[u64; 2], FlowKey4>(w) }
    }
}

impl FlowKey {
    #[inline(always)]
    pub const fn words(&self) -> [u64; 5] {
        // SAFETY: repr(C), 40 bytes, no implicit padding, align 8 (asserted in lib.rs).
        unsafe { core::mem::transmute::<FlowKey, [u64; 5]>(*self) }
    }

    #[inline(always)]
    pub const fn from_words(w: [u64; 5]) -> Self {
        // SAFETY: as above.
        unsafe { core::mem::transmute::<[u64; 5], FlowKey>(w) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key4() -> FlowKey4 {
        FlowKey4 {
            saddr: [198, 19, 0, 1],
            daddr: [198, 18, 0, 100],
            sport: 40000,
            dport: 80,
            proto: 6,
            _pad: [0; 3],
        }
    }

    #[test]
    fn default_tables_are_the_buckets_of_max_conns() {
        assert_eq!(
            conn_buckets(MAX_CONNS),
            ConnBuckets {
                v4: CONN_BUCKETS4,
                v6: CONN_BUCKETS6
            }
        );
        assert_eq!(conn_buckets(64), ConnBuckets { v4: 16, v6: 4 });
    }

    #[test]
    fn key_words_are_the_key_bytes() {
        let w = key4().words();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&w[0].to_ne_bytes());
        bytes[8..].copy_from_slice(&w[1].to_ne_bytes());
        assert_eq!(&bytes[..8], &[198, 19, 0, 1, 198, 18, 0, 100]);
        assert_eq!(&bytes[8..10], &40000u16.to_ne_bytes());
        assert_eq!(&bytes[10..12], &80u16.to_ne_bytes());
        assert_eq!(bytes[12], 6);
    }

    #[test]
    fn every_key_field_and_the_seed_change_the_hash() {
        let base = conn_hash4(&key4(), 7);
        let mut k = key4();
        k.sport += 1;
        assert_ne!(conn_hash4(&k, 7), base);
        let mut k = key4();
        k.proto = 17;
        assert_ne!(conn_hash4(&k, 7), base);
        let mut k = key4();
        k.daddr[3] = 101;
        assert_ne!(conn_hash4(&k, 7), base);
        assert_ne!(conn_hash4(&key4(), 8), base);
    }

    #[test]
    fn hashes_spread_flows_over_buckets() {
        // 2^16 client ports of one client: no bucket of 2^12 should get 3x its share.
        let mut counts = std::vec![0u32; 1 << 12];
        for port in 0..=u16::MAX {
            let mut k = key4();
            k.sport = port;
            counts[(conn_hash4(&k, 0x1234_5678) & 0xfff) as usize] += 1;
        }
        let max = *counts.iter().max().unwrap();
        assert!(max < 3 * 16, "fullest bucket holds {max}, the mean is 16");
        let mut k6 = FlowKey {
            proto: 6,
            ..Default::default()
        };
        let mut seen = std::collections::HashSet::new();
        for port in 0..1000u16 {
            k6.sport = port;
            seen.insert(conn_hash6(&k6, 1));
        }
        assert!(seen.len() > 990);
    }

    #[test]
    fn a_slot_lives_until_its_timeout_and_only_with_its_check() {
        let h = conn_hash4(&key4(), 1);
        let mut v = ConnValue {
            real: 3,
            service_id: 2,
            state: CONN_OPEN,
            proto: 6,
            seen: 100,
            check: conn_check(h, 3, 2),
        };
        let t = &Timeouts::IPVS;
        assert!(v.live(h, 100, t));
        assert!(v.live(h, 100 + TIMEOUT_TCP, t));
        assert!(!v.live(h, 101 + TIMEOUT_TCP, t));
        let long = &Timeouts::from_seconds(7200, 120, 300);
        assert!(v.live(h, 101 + TIMEOUT_TCP, long), "lvs_timeouts tcp 7200");
        assert_eq!(seconds(long.tcp), 7199, "ticks round down");
        // A torn slot: another flow's real server under this key.
        v.real = 4;
        assert!(!v.live(h, 100, t));
        v.real = 3;
        assert!(!v.live(h ^ 1, 100, t), "another key's hash");
        v.state = CONN_RST;
        assert!(!v.live(h, 101 + TIMEOUT_TCP_RST, t));
        v.state = CONN_OPEN;
        v.proto = 17;
        assert!(!v.live(h, 101 + TIMEOUT_UDP, t));
        v.seen = 0;
        assert!(!v.live(h, 0, t), "seen 0 is an empty slot");
        assert_eq!(clock_ticks(0), 1);
        assert_eq!(clock_ticks(3 << CLOCK_SHIFT), 4);
    }
}
