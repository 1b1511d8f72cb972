//! Scheduling tables: the userspace half of in-kernel scheduling.
//!
//! The XDP program never runs a scheduling algorithm. For a new flow it reads one entry of
//! the service's table, `xlb_table[table_offset .. table_offset + table_len]` (see
//! [`lb_common::ServiceInfo`]), and every entry is a real-server index (a slot of
//! `xlb_reals`). All the intelligence is here, in [`build_table`], which runs in the
//! controller whenever the set of eligible real servers or their weights change; the new
//! table is written to a fresh region of the arena ([`crate::dataplane::arena`]) and swapped in whole.
//!
//! # Eligibility and canonical order
//!
//! Only real servers that take new flows belong in a table: alive (health checks pass)
//! and `weight > 0`. The caller passes the *alive* servers as [`Candidate`]s; candidates
//! of weight 0 (quiescent, IPVS's "weight 0 = no new connections") are dropped here, so a
//! caller may pass them too. Everything is computed over the candidates sorted by
//! `(address bytes, port)` (then index, for determinism if a configuration lists a server
//! twice): the order of the configuration file never matters, and two directors with the
//! same server set build byte-identical tables: with `sh`/`mh`, whose choice depends only
//! on the client, a flow keeps its real server when the backup director takes over.
//!
//! # The algorithms (slot picked per new flow by the kernel)
//!
//! | algo | table | slot for a new flow |
//! |------|-------|---------------------|
//! | `rr`  | one entry per server, canonical order | `c % len`, then `c += 1` (per-CPU `u32` cursor `c`) |
//! | `wrr` | nginx's smooth weighted round-robin sequence, weights divided by their gcd; `len = Σ w` (≤ `wrr::WRR_MAX_LEN`) | as `rr` |
//! | `sh`  | `sh::SH_TABLE_SIZE` buckets, servers in canonical order each taking `w` consecutive buckets, cycling until full (as IPVS `ip_vs_sh`) | `flow_hash(client, port or 0) % len` |
//! | `mh`  | weighted Maglev of a prime size from `mh::MH_PRIMES` (as IPVS `ip_vs_mh`) | `flow_hash(client, port or 0) % len` |
//! | `dh`  | as `sh` | `flow_hash(VIP, 0) % len` (IPVS `ip_vs_dh` hashes the destination) |
//! | `fo`  | the one server of the highest weight (the first of equals) | as `rr` |
//! | `lc`, `wlc`, `sed`, `nq`, `ovf`, `twos` | `(index, weight)` pairs, canonical order | a walk over the pairs with each server's counts (`xlb_real_conns`, `lb_common::sched`) |
//!
//! `flow_hash` is [`lb_common::flow_hash`]; the port is hashed only with the service flag
//! `SVC_F_HASH_PORT` (IPVS `sh-port` / `mh-port`). [`Model`] is the same per-packet choice
//! in plain Rust: the integration tests compare the kernel against it flow by flow.
//!
//! ## Weight scaling
//!
//! * `wrr`: weights are divided by their gcd. If the sum still exceeds `wrr::WRR_MAX_LEN`
//!   (65,536), they are scaled down proportionally (`w * budget / Σw`, rounded down, at
//!   least 1 so that no eligible server disappears) until the sum fits, then divided by
//!   their gcd again: each server's share is then off by about one entry in 65,536.
//! * `sh`: IPVS walks the destinations, each taking `weight` consecutive buckets, and
//!   wraps around until the 256 buckets are full; with a total weight above 256 the servers
//!   late in the list get no bucket at all. xlb divides by the gcd first (so `10,10` gives
//!   128/128 rather than IPVS's 130/126) and, if the total exceeds the table, scales weights
//!   down as for `wrr` (every eligible server keeps at least one bucket) instead of
//!   starving the last ones. With more than 256 eligible servers the table grows to the
//!   next power of two that holds them all.
//! * `mh`: as IPVS: weights divided by their gcd, then shifted right so that the largest
//!   fits in `mh::MH_WEIGHT_BITS` bits (each server keeps at least one turn); in each round of
//!   the population a server takes as many slots as it has turns.
//!
//! Maglev itself is described in `mh`.
//!
//! The modules: `wrr`, `sh` and `mh` build their tables (`rr`'s is the canonical order),
//! `weights` scales weights for them, `model` is the kernel's per-flow choice.

mod mh;
mod model;
mod sh;
mod weights;
mod wrr;

use lb_common::{Addr, SchedAlgo, flow_hash};

pub use model::Model;

/// A real server that may receive new flows: the caller passes the servers that are alive
/// (health checks pass); those of weight 0 are ignored by [`build_table`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// The real server's slot in `xlb_reals`: what the table holds.
    pub index: u32,
    /// Its address (IPv4 in IPv4-mapped form, see [`lb_common::v4_mapped`]).
    pub addr: Addr,
    /// Its port (host byte order).
    pub port: u16,
    /// Its configured weight; 0 = quiescent (no new flows).
    pub weight: u32,
}

impl Candidate {
    fn canonical_key(&self) -> (Addr, u16, u32, u32) {
        (self.addr, self.port, self.index, self.weight)
    }
}

/// The eligible candidates (weight > 0) in canonical order: by address bytes, then port
/// (then index and weight, only to make duplicate entries deterministic).
fn canonical_order(servers: &[Candidate]) -> Vec<Candidate> {
    let mut v: Vec<Candidate> = servers.iter().copied().filter(|c| c.weight > 0).collect();
    v.sort_by_key(Candidate::canonical_key);
    v
}

/// The scheduling table of `algo` over `servers`: the real-server indices the kernel
/// reads. Empty when no candidate has a weight above 0. An `mh` table is sized for the
/// eligible servers; the data plane uses [`build_table_in`].
pub fn build_table(algo: SchedAlgo, servers: &[Candidate]) -> Vec<u32> {
    build_table_in(algo, servers, 0)
}

/// [`build_table`] for a service of `population` real servers in all, eligible or not
/// (down, weight 0, MAC unknown): an `mh` table is sized for that many (or for the
/// eligible ones, if more). A server that goes down or is drained then leaves a table
/// of the same size, where Maglev moves only its own flows; sized for the eligible ones,
/// a table crossing a size (4 to 5 servers: 4,093 to 8,191 slots) would send almost
/// every client elsewhere. Both directors read the population from the same config, so
/// their tables stay byte-identical.
pub fn build_table_in(algo: SchedAlgo, servers: &[Candidate], population: usize) -> Vec<u32> {
    let servers = canonical_order(servers);
    if servers.is_empty() {
        return Vec::new();
    }
    match algo {
        SchedAlgo::Rr => servers.iter().map(|c| c.index).collect(),
        SchedAlgo::Wrr => wrr::table(&servers),
        SchedAlgo::Sh | SchedAlgo::Dh => sh::table(&servers),
        SchedAlgo::Mh => mh::table(&servers, population),
        // The first of the highest weight (IPVS's `fo` takes a strictly higher one).
        SchedAlgo::Fo => {
            let mut best = servers[0];
            for c in &servers[1..] {
                if c.weight > best.weight {
                    best = *c;
                }
            }
            vec![best.index]
        }
        SchedAlgo::Lc
        | SchedAlgo::Wlc
        | SchedAlgo::Sed
        | SchedAlgo::Nq
        | SchedAlgo::Ovf
        | SchedAlgo::Twos => servers.iter().flat_map(|c| [c.index, c.weight]).collect(),
    }
}

/// The slot of a hashed (`sh` / `mh`) table of `len` entries for a client: the kernel's
/// `flow_hash(client, hash_port ? sport : 0) % len`. `len` must not be 0.
fn hash_slot(client: &Addr, sport: u16, hash_port: bool, len: u32) -> u32 {
    let port = if hash_port { sport } else { 0 };
    flow_hash(client, port) % len
}

#[cfg(test)]
mod test_support {
    use std::collections::HashMap;

    use lb_common::{SchedAlgo, murmur3_32, v4_mapped};

    use super::Candidate;

    pub fn cand(index: u32, last: u8, port: u16, weight: u32) -> Candidate {
        Candidate {
            index,
            addr: v4_mapped([10, 0, 0, last]),
            port,
            weight,
        }
    }

    /// Servers 10.0.0.(1+i):80, index 100+i (so indices differ from positions).
    pub fn servers(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| cand(100 + i as u32, 1 + i as u8, 80, w))
            .collect()
    }

    pub fn counts(table: &[u32]) -> HashMap<u32, usize> {
        let mut m = HashMap::new();
        for &x in table {
            *m.entry(x).or_insert(0) += 1;
        }
        m
    }

    /// The fixed table hash pinned by the golden tests: MurmurHash3 of the entries as
    /// little-endian u32 (the bytes written to `xlb_table`), seed 0.
    pub fn table_hash(table: &[u32]) -> u32 {
        let bytes: Vec<u8> = table.iter().flat_map(|x| x.to_le_bytes()).collect();
        murmur3_32(&bytes, 0)
    }

    pub const ALL: [SchedAlgo; 12] = SchedAlgo::ALL;
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use lb_common::v4_mapped;
    use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};

    use super::{test_support::*, *};

    #[test]
    fn empty_and_quiescent_sets_give_empty_tables() {
        for algo in ALL {
            assert!(build_table(algo, &[]).is_empty(), "{algo:?}");
            assert!(build_table(algo, &servers(&[0, 0])).is_empty(), "{algo:?}");
            let mut m = Model::from_servers(algo, &[]);
            assert_eq!(m.pick(&v4_mapped([1, 2, 3, 4]), 1234, true), None);
            assert_eq!(m.pick(&v4_mapped([1, 2, 3, 4]), 1234, false), None);
        }
    }

    #[test]
    fn weight_zero_servers_are_never_in_a_table() {
        let s = servers(&[2, 0, 3, 0, 1]);
        for algo in ALL {
            let t = build_table(algo, &s);
            assert!(!t.is_empty());
            assert!(!t.contains(&101) && !t.contains(&103), "{algo:?}");
            if algo == SchedAlgo::Fo {
                assert_eq!(t, [102], "fo: the highest weight only");
                continue;
            }
            for idx in [100, 102, 104] {
                assert!(t.contains(&idx), "{algo:?} lacks {idx}");
            }
        }
    }

    #[test]
    fn counting_tables_are_index_weight_pairs_and_fo_takes_the_first_heaviest() {
        let s = servers(&[2, 0, 3, 3]);
        for algo in SchedAlgo::ALL.into_iter().filter(|a| a.counts_conns()) {
            assert_eq!(build_table(algo, &s), [100, 2, 102, 3, 103, 3], "{algo:?}");
        }
        assert_eq!(build_table(SchedAlgo::Fo, &s), [102]);
        assert_eq!(
            build_table(SchedAlgo::Dh, &s),
            build_table(SchedAlgo::Sh, &s)
        );
    }

    #[test]
    fn model_picks_the_least_loaded_server_from_the_counts() {
        use lb_common::RealConns;
        // 10.0.0.1 (100) weight 1, 10.0.0.2 (101) weight 3, 10.0.0.3 (102) weight 1.
        let s = servers(&[1, 3, 1]);
        let with = |algo, conns: [(i32, i32); 3]| {
            let mut m = Model::from_servers(algo, &s);
            for (k, (a, i)) in conns.into_iter().enumerate() {
                m.set_conns(100 + k as u32, RealConns::of(a, i));
            }
            m.pick(&v4_mapped([1, 2, 3, 4]), 1, false)
        };
        assert_eq!(with(SchedAlgo::Lc, [(2, 0), (1, 0), (1, 0)]), Some(101));
        // wlc: 256/1 vs 512/3 vs 256/1: the weighted one.
        assert_eq!(with(SchedAlgo::Wlc, [(1, 0), (2, 0), (1, 0)]), Some(101));
        assert_eq!(with(SchedAlgo::Wlc, [(1, 0), (4, 0), (0, 300)]), Some(100));
        assert_eq!(with(SchedAlgo::Nq, [(1, 0), (1, 0), (0, 9)]), Some(102));
        assert_eq!(with(SchedAlgo::Ovf, [(0, 0), (4, 0), (0, 0)]), Some(100));
        assert_eq!(with(SchedAlgo::Ovf, [(2, 0), (4, 0), (2, 0)]), None);
    }

    #[test]
    fn a_slow_server_gets_fewer_new_flows_under_wlc() {
        // Three servers of weight 1; connections to 100 last 4 ticks, to the others 1.
        // Every tick 30 new connections arrive: wlc keeps the open counts even, so the
        // slow one takes about a quarter of the share of each fast one.
        use lb_common::RealConns;
        let s = servers(&[1, 1, 1]);
        let mut m = Model::from_servers(SchedAlgo::Wlc, &s);
        let life = |idx: u32| if idx == 100 { 4 } else { 1 };
        let mut open: Vec<(u32, u32)> = Vec::new(); // (index, ends at tick)
        let mut got = HashMap::new();
        for tick in 0..1000u32 {
            open.retain(|&(_, end)| end > tick);
            for _ in 0..30 {
                for idx in 100..103 {
                    let n = open.iter().filter(|(i, _)| *i == idx).count() as i32;
                    m.set_conns(idx, RealConns::of(n, 0));
                }
                let idx = m.pick(&v4_mapped([1, 2, 3, 4]), 1, false).unwrap();
                open.push((idx, tick + life(idx)));
                *got.entry(idx).or_insert(0u32) += 1;
            }
        }
        let (slow, fast) = (got[&100], got[&101].min(got[&102]));
        assert!(slow * 3 < fast, "slow {slow}, fast {fast}: {got:?}");
    }

    #[test]
    fn every_algorithm_is_independent_of_input_order() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut s: Vec<Candidate> = (0..40)
            .map(|i| Candidate {
                index: 1000 - i,
                addr: if i % 3 == 0 {
                    let mut a = [0u8; 16];
                    a[0] = 0x20;
                    a[1] = 0x01;
                    a[15] = i as u8;
                    a
                } else {
                    v4_mapped([192, 0, 2, (i / 2) as u8])
                },
                port: 8000 + (i % 2) as u16,
                weight: 1 + i % 7,
            })
            .collect();
        for algo in ALL {
            let reference = build_table(algo, &s);
            for _ in 0..5 {
                s.shuffle(&mut rng);
                assert_eq!(build_table(algo, &s), reference, "{algo:?}");
            }
        }
    }

    #[test]
    fn canonical_order_sorts_by_address_bytes_then_port() {
        let s = vec![
            cand(0, 2, 80, 1),
            cand(1, 1, 443, 1),
            cand(2, 1, 80, 1),
            cand(3, 10, 80, 1),
        ];
        let order: Vec<u32> = canonical_order(&s).iter().map(|c| c.index).collect();
        assert_eq!(order, [2, 1, 0, 3]);
        assert_eq!(build_table(SchedAlgo::Rr, &s), [2, 1, 0, 3]);
    }

    #[test]
    fn rr_balances_exactly_and_ignores_weights() {
        let s = servers(&[1, 5, 2, 9]);
        let t = build_table(SchedAlgo::Rr, &s);
        assert_eq!(t, [100, 101, 102, 103]);
        let mut m = Model::new(SchedAlgo::Rr, t);
        let mut c = HashMap::new();
        for i in 0..100_000u32 {
            let idx = m.pick(&v4_mapped([1, 1, 1, 1]), i as u16, false).unwrap();
            *c.entry(idx).or_insert(0) += 1;
        }
        assert!(c.values().all(|&n| n == 25_000), "{c:?}");
        assert_eq!(m.cursor(), 100_000);
    }
}
