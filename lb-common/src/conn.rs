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
//! - A TCP slot follows IPVS's state table for what a DR director sees, the client's
//!   packets only ([`tcp_next`]): a SYN opens it in SYN_RECV ([`CONN_SYN_RECV`], 60 s as
//!   IPVS), the client's ACK makes it ESTABLISHED. A flow first seen mid-stream is
//!   half-open until its second packet; a first FIN or RST makes no slot
//!   ([`initial_state`]).
//! - A new flow takes its own old slot, else an empty or expired one, else the oldest slot
//!   that never reached ESTABLISHED, else the established slot idle longest if idle over
//!   [`EVICTABLE_IDLE`] (IPVS's drop_entry spares a connection with a packet in the last
//!   60 s). A bucket of four active flows keeps them: the new flow goes untracked
//!   ([`VictimSearch`]). A SYN flood thus pushes out only its own half-open slots.
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

/// `ConnValue::state`: ESTABLISHED (UDP flows stay here).
pub const CONN_OPEN: u8 = 0;
/// The client sent a FIN (IPVS's FIN_WAIT, TIME_WAIT, CLOSE_WAIT).
pub const CONN_FIN: u8 = 1;
/// The client sent a RST (IPVS's CLOSE).
pub const CONN_RST: u8 = 2;
/// Never ESTABLISHED: only the client's SYN seen so far (IPVS's SYN_RECV), or the one
/// ACK of a flow first seen mid-stream.
pub const CONN_SYN_RECV: u8 = 3;

/// TCP header flags the state table reads.
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// The state a TCP slot moves to on a client packet with `flags`: IPVS's `tcp_states`
/// for the input-only direction (DR: the director never sees the server's packets), with
/// IPVS's FIN_WAIT / TIME_WAIT / CLOSE_WAIT folded into [`CONN_FIN`]. As IPVS's
/// `tcp_state_idx`, RST counts before SYN, SYN before FIN, FIN before ACK; a segment with
/// none of them changes nothing.
#[inline(always)]
pub const fn tcp_next(state: u8, flags: u8) -> u8 {
    if flags & TCP_RST != 0 {
        // IPVS keeps SYN_RECV on a RST (the handshake may still complete).
        if state == CONN_SYN_RECV {
            CONN_SYN_RECV
        } else {
            CONN_RST
        }
    } else if flags & TCP_SYN != 0 {
        if state == CONN_OPEN {
            CONN_OPEN
        } else {
            CONN_SYN_RECV
        }
    } else if flags & TCP_FIN != 0 {
        if state == CONN_RST {
            CONN_RST
        } else {
            CONN_FIN
        }
    } else if flags & TCP_ACK != 0 && state == CONN_SYN_RECV {
        CONN_OPEN
    } else {
        state
    }
}

/// The state of a new slot, made by the flow's first packet seen, or `None`: the packet
/// is forwarded without a slot. A SYN opens it in SYN_RECV (IPVS's column sNO). So does
/// a bare ACK, where IPVS (with `sloppy_tcp`) says ESTABLISHED: such a first packet is a
/// flow taken over from another director mid-stream, or a spoofed one, and only its
/// second packet tells them apart (SYN_RECV + ACK = ESTABLISHED); until then the slot is
/// given up first, so a flood of ACKs from random sources costs no established flow. A
/// first FIN, RST or flagless segment makes no slot (IPVS makes no connection for them):
/// a flood of those does not touch the table. UDP flows are always open.
#[inline(always)]
pub const fn initial_state(proto: u8, flags: u8) -> Option<u8> {
    if proto == crate::PROTO_UDP {
        Some(CONN_OPEN)
    } else if flags & (TCP_RST | TCP_FIN) == 0 && flags & (TCP_SYN | TCP_ACK) != 0 {
        Some(CONN_SYN_RECV)
    } else if flags & TCP_RST == 0 && flags & TCP_SYN != 0 {
        // SYN + FIN: IPVS counts the SYN.
        Some(CONN_SYN_RECV)
    } else {
        None
    }
}

/// IPVS's default timeouts (`ipvsadm --set 900 120 300`, 10 s after a RST, 60 s in
/// SYN_RECV), in ticks.
pub const TIMEOUT_TCP: u32 = ticks(900);
const TIMEOUT_TCP_FIN: u32 = ticks(120);
const TIMEOUT_TCP_RST: u32 = ticks(10);
const TIMEOUT_UDP: u32 = ticks(300);
pub const TIMEOUT_SYN_RECV: u32 = ticks(60);

/// An established slot may be evicted for a new flow only after this long without a
/// packet: IPVS's `todrop_entry` never drops a connection within 60 s of its last packet.
pub const EVICTABLE_IDLE: u32 = ticks(60);

/// Indexes of `xlb_conn_evictions`: what a new flow did when its bucket was full.
/// An established (or closing) slot idle over [`EVICTABLE_IDLE`] was evicted.
pub const CONN_EVICTED_ESTABLISHED: u32 = 0;
/// A slot that never reached ESTABLISHED (SYN_RECV) was evicted.
pub const CONN_EVICTED_SYN_RECV: u32 = 1;
/// Every slot held an active flow: the new flow's packet was forwarded but not recorded
/// (its next packet is scheduled again).
pub const CONN_NOT_TRACKED: u32 = 2;
/// Entries of `xlb_conn_evictions`.
pub const CONN_EVICTION_KINDS: u32 = 3;

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
    /// A TCP slot that has seen only the client's SYN ([`CONN_SYN_RECV`]).
    pub syn_recv: u32,
}

impl Timeouts {
    pub const IPVS: Self = Self {
        tcp: TIMEOUT_TCP,
        tcp_fin: TIMEOUT_TCP_FIN,
        tcp_rst: TIMEOUT_TCP_RST,
        udp: TIMEOUT_UDP,
        syn_recv: TIMEOUT_SYN_RECV,
    };

    /// From seconds (at least one tick each); SYN_RECV keeps IPVS's 60 s.
    pub const fn from_seconds(tcp: u64, tcp_fin: u64, udp: u64) -> Self {
        Self {
            tcp: at_least_a_tick(tcp),
            tcp_fin: at_least_a_tick(tcp_fin),
            tcp_rst: TIMEOUT_TCP_RST,
            udp: at_least_a_tick(udp),
            syn_recv: TIMEOUT_SYN_RECV,
        }
    }

    /// The same with `seconds` in SYN_RECV (at least one tick).
    pub const fn with_syn_recv(self, seconds: u64) -> Self {
        Self {
            syn_recv: at_least_a_tick(seconds),
            ..self
        }
    }

    /// Ticks a slot in `state` of protocol `proto` may stay idle.
    #[inline(always)]
    pub const fn of(&self, state: u8, proto: u8) -> u32 {
        match state {
            CONN_FIN => self.tcp_fin,
            CONN_RST => self.tcp_rst,
            CONN_SYN_RECV => self.syn_recv,
            _ if proto == crate::PROTO_UDP => self.udp,
            _ => self.tcp,
        }
    }
}

const fn at_least_a_tick(seconds: u64) -> u32 {
    let v = ticks(seconds);
    if v == 0 { 1 } else { v }
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
    /// [`CONN_OPEN`], [`CONN_FIN`], [`CONN_RST`] or [`CONN_SYN_RECV`].
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
        t.of(self.state, self.proto)
    }

    /// Holds a flow at tick `now`, written whole by one writer (see the module doc).
    #[inline(always)]
    pub const fn live(&self, hash: u32, now: u32, t: &Timeouts) -> bool {
        self.seen != 0
            && now.wrapping_sub(self.seen) <= self.timeout(t)
            && self.check == conn_check(hash, self.real, self.service_id)
    }
}

/// What a new flow does in its bucket (see [`VictimSearch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Its own old slot, or an empty or expired one: nothing live is lost.
    Free(usize),
    /// A live slot, counted under this index of `xlb_conn_evictions`.
    Evict(usize, u32),
    /// Every slot holds an active flow: forward the new one without recording it.
    None,
}

/// Chooses the slot a new flow takes, one slot of the bucket at a time (the XDP program
/// reads each slot in place; the choice is here so that it is tested as plain code):
/// an empty or expired slot first, else the oldest SYN_RECV slot, else the established
/// slot idle longest if idle over [`EVICTABLE_IDLE`], else none. One score per slot
/// (class, then age) keeps the program's state to two registers.
#[derive(Clone, Copy, Debug)]
pub struct VictimSearch {
    best: u32,
    victim: usize,
}

impl Default for VictimSearch {
    fn default() -> Self {
        Self::new()
    }
}

/// [`VictimSearch`]'s classes, in the score's top two bits.
const CLASS_SHIFT: u32 = 30;
const CLASS_FREE: u32 = 3;
const CLASS_SYN_RECV: u32 = 2;
const CLASS_IDLE: u32 = 1;

impl VictimSearch {
    #[inline(always)]
    pub const fn new() -> Self {
        Self { best: 0, victim: 0 }
    }

    /// Slot `i` (another flow's) was last seen at `seen`, in `state`, of `proto`.
    #[inline(always)]
    pub fn consider(&mut self, i: usize, seen: u32, state: u8, proto: u8, now: u32, t: &Timeouts) {
        let age = now.wrapping_sub(seen);
        // Free slots fill from the first; of the others the one seen longest ago goes,
        // of equals the last (the first slots hold the older flows).
        let (class, rank) = if seen == 0 || age > t.of(state, proto) {
            (CLASS_FREE, (CONN_WAYS - i) as u32)
        } else if state == CONN_SYN_RECV {
            (CLASS_SYN_RECV, age)
        } else if age > EVICTABLE_IDLE {
            (CLASS_IDLE, age)
        } else {
            return;
        };
        let score = (class << CLASS_SHIFT) | (rank & ((1 << CLASS_SHIFT) - 1));
        if score >= self.best {
            self.best = score;
            self.victim = i;
        }
    }

    /// The choice over the slots considered.
    #[inline(always)]
    pub const fn choice(&self) -> Take {
        match self.best >> CLASS_SHIFT {
            CLASS_FREE => Take::Free(self.victim),
            CLASS_SYN_RECV => Take::Evict(self.victim, CONN_EVICTED_SYN_RECV),
            CLASS_IDLE => Take::Evict(self.victim, CONN_EVICTED_ESTABLISHED),
            _ => Take::None,
        }
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

    /// IPVS's input-only table for the states xlb keeps: (state, RST, SYN, FIN, ACK).
    const INPUT_ONLY: [(u8, [u8; 4]); 4] = [
        (CONN_OPEN, [CONN_RST, CONN_OPEN, CONN_FIN, CONN_OPEN]),
        (CONN_FIN, [CONN_RST, CONN_SYN_RECV, CONN_FIN, CONN_FIN]),
        (CONN_RST, [CONN_RST, CONN_SYN_RECV, CONN_RST, CONN_RST]),
        (
            CONN_SYN_RECV,
            [CONN_SYN_RECV, CONN_SYN_RECV, CONN_FIN, CONN_OPEN],
        ),
    ];

    #[test]
    fn tcp_states_follow_ipvs_input_only_table() {
        for (state, next) in INPUT_ONLY {
            for (flag, want) in [TCP_RST, TCP_SYN, TCP_FIN, TCP_ACK].into_iter().zip(next) {
                assert_eq!(tcp_next(state, flag), want, "state {state} flag {flag:#x}");
                // ACK rides along on most segments: it never outranks the others.
                assert_eq!(tcp_next(state, flag | TCP_ACK), want, "with ACK");
            }
            assert_eq!(tcp_next(state, 0), state, "no flag: no change");
            assert_eq!(tcp_next(state, 0x08), state, "PSH alone: no change");
        }
        // RST outranks SYN, SYN outranks FIN (IPVS's tcp_state_idx).
        assert_eq!(tcp_next(CONN_OPEN, TCP_RST | TCP_SYN), CONN_RST);
        assert_eq!(tcp_next(CONN_FIN, TCP_SYN | TCP_FIN), CONN_SYN_RECV);
    }

    #[test]
    fn the_first_packet_sets_the_state_as_ipvs_column_sno() {
        assert_eq!(initial_state(6, TCP_SYN), Some(CONN_SYN_RECV));
        assert_eq!(initial_state(6, TCP_SYN | TCP_ACK), Some(CONN_SYN_RECV));
        assert_eq!(initial_state(6, TCP_SYN | TCP_FIN), Some(CONN_SYN_RECV));
        // Taken over mid-stream, or spoofed: established by the next packet only.
        assert_eq!(initial_state(6, TCP_ACK), Some(CONN_SYN_RECV));
        assert_eq!(initial_state(6, TCP_ACK | 0x08), Some(CONN_SYN_RECV));
        assert_eq!(tcp_next(CONN_SYN_RECV, TCP_ACK), CONN_OPEN);
        // Nothing to keep for a connection that ends with its first packet seen.
        assert_eq!(initial_state(6, TCP_ACK | TCP_FIN), None);
        assert_eq!(initial_state(6, TCP_RST | TCP_SYN), None);
        assert_eq!(initial_state(6, TCP_RST), None);
        assert_eq!(initial_state(6, 0), None, "a flagless segment");
        assert_eq!(initial_state(crate::PROTO_UDP, 0), Some(CONN_OPEN));
    }

    #[test]
    fn syn_recv_expires_after_60_s_unless_configured() {
        let t = Timeouts::IPVS;
        let v = ConnValue {
            state: CONN_SYN_RECV,
            proto: 6,
            seen: 100,
            ..Default::default()
        };
        assert_eq!(v.timeout(&t), ticks(60));
        let h = 7;
        let v = ConnValue {
            check: conn_check(h, 0, 0),
            ..v
        };
        assert!(v.live(h, 100 + ticks(60), &t));
        assert!(!v.live(h, 101 + ticks(60), &t));
        let short = Timeouts::from_seconds(900, 120, 300).with_syn_recv(5);
        assert_eq!(short.syn_recv, ticks(5));
        assert_eq!(Timeouts::IPVS.with_syn_recv(0).syn_recv, 1);
        assert_eq!(Timeouts::from_seconds(900, 120, 300), Timeouts::IPVS);
    }

    /// The choice over a bucket of (seen, state, proto) slots at tick `now`.
    fn choose(slots: [(u32, u8, u8); CONN_WAYS], now: u32) -> Take {
        let mut search = VictimSearch::new();
        for (i, (seen, state, proto)) in slots.into_iter().enumerate() {
            search.consider(i, seen, state, proto, now, &Timeouts::IPVS);
        }
        search.choice()
    }

    #[test]
    fn a_full_bucket_gives_up_half_open_slots_first_and_active_flows_never() {
        let now = 10_000;
        let est = |age: u32| (now - age, CONN_OPEN, 6);
        let syn = |age: u32| (now - age, CONN_SYN_RECV, 6);
        // An empty or expired slot costs nothing; the first one is taken.
        assert_eq!(
            choose([est(0), (0, 0, 0), syn(0), (0, 0, 0)], now),
            Take::Free(1)
        );
        assert_eq!(
            choose([est(0), syn(ticks(60) + 1), est(0), est(0)], now),
            Take::Free(1),
            "an expired SYN_RECV slot"
        );
        // The oldest half-open slot, even when an established one is older.
        assert_eq!(
            choose([est(ticks(800)), syn(3), syn(5), syn(4)], now),
            Take::Evict(2, CONN_EVICTED_SYN_RECV)
        );
        // No half-open slot: the established flow idle longest, if over 60 s.
        assert_eq!(
            choose(
                [est(ticks(61)), est(ticks(500)), est(0), est(ticks(200))],
                now
            ),
            Take::Evict(1, CONN_EVICTED_ESTABLISHED)
        );
        let closing = (now - ticks(70), CONN_FIN, 6);
        assert_eq!(
            choose([est(0), closing, est(1), est(2)], now),
            Take::Evict(1, CONN_EVICTED_ESTABLISHED)
        );
        // Four flows with a packet in the last 60 s: none is given up.
        assert_eq!(
            choose([est(0), est(1), est(ticks(60)), est(5)], now),
            Take::None
        );
        let udp = |age: u32| (now - age, CONN_OPEN, crate::PROTO_UDP);
        assert_eq!(choose([udp(0), udp(0), udp(0), udp(0)], now), Take::None);
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
