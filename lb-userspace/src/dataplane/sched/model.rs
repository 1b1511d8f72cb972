//! The kernel's per-flow choice in plain Rust: the integration tests compare the XDP
//! program against it flow by flow.

use std::collections::HashMap;

use lb_common::{
    Addr, COUNTED_ENTRY, RealConns, SchedAlgo, flow_hash,
    sched::{LeastConn, Twos},
};

use super::{Candidate, build_table, build_table_in, hash_slot};

/// The kernel's choice of a real server for a new flow, in plain Rust: what the XDP
/// program does with a service's table. `rr`/`wrr` use one cursor, as one CPU would (the
/// kernel has one per CPU and per service). The counting schedulers read the counts set
/// with [`Model::set_conns`] (the kernel's `xlb_real_conns`); `dh` hashes the VIP set
/// with [`Model::set_vip`]; `twos` draws from a seeded generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    algo: SchedAlgo,
    table: Vec<u32>,
    cursor: u32,
    vip: Addr,
    conns: HashMap<u32, RealConns>,
    rand: u64,
}

impl Model {
    /// A model over an already built table, cursor at 0.
    pub fn new(algo: SchedAlgo, table: Vec<u32>) -> Self {
        Self {
            algo,
            table,
            cursor: 0,
            vip: [0; 16],
            conns: HashMap::new(),
            rand: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// The VIP `dh` hashes.
    pub fn set_vip(&mut self, vip: Addr) {
        self.vip = vip;
    }

    /// The counts of real server `index`, as `xlb_real_conns[index]` would hold them.
    pub fn set_conns(&mut self, index: u32, conns: RealConns) {
        self.conns.insert(index, conns);
    }

    /// The counts of real server `index` (zeros unless set).
    pub fn conns(&self, index: u32) -> RealConns {
        self.conns.get(&index).copied().unwrap_or_default()
    }

    fn next_rand(&mut self) -> u32 {
        self.rand = self
            .rand
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.rand >> 33) as u32
    }

    /// The counting schedulers' walk over the `(index, weight)` pairs: the chosen pair's
    /// position.
    fn counted_pos(&mut self) -> Option<u32> {
        let pairs: Vec<(u32, u32)> = (self.table.chunks_exact(COUNTED_ENTRY as usize))
            .map(|p| (p[0], p[1]))
            .collect();
        match self.algo.rule() {
            Some(rule) => {
                let mut lc = LeastConn::new(rule);
                for (pos, (index, weight)) in pairs.iter().enumerate() {
                    if lc.done() {
                        break;
                    }
                    lc.consider(pos as u32, *weight, &self.conns(*index));
                }
                lc.choice()
            }
            None => {
                let mut t = Twos::new();
                for (_, weight) in &pairs {
                    t.add_weight(*weight);
                }
                let (r1, r2) = (self.next_rand(), self.next_rand());
                t.start(r1, r2);
                for (pos, (index, weight)) in pairs.iter().enumerate() {
                    if t.done() {
                        break;
                    }
                    t.consider(pos as u32, *weight, &self.conns(*index));
                }
                t.choice()
            }
        }
    }

    /// A model over `build_table(algo, servers)`.
    pub fn from_servers(algo: SchedAlgo, servers: &[Candidate]) -> Self {
        Self::new(algo, build_table(algo, servers))
    }

    /// A model over `build_table_in(algo, servers, population)`: what the data plane
    /// holds for a service of `population` real servers, `servers` of them eligible.
    pub fn from_servers_in(algo: SchedAlgo, servers: &[Candidate], population: usize) -> Self {
        Self::new(algo, build_table_in(algo, servers, population))
    }

    /// The `rr`/`wrr` cursor: the number of new flows scheduled so far (mod 2^32).
    pub fn cursor(&self) -> u32 {
        self.cursor
    }

    /// Sets the `rr`/`wrr` cursor, e.g. to the kernel's value for one CPU.
    #[cfg(test)]
    fn set_cursor(&mut self, cursor: u32) {
        self.cursor = cursor;
    }

    /// Replaces the table (a swap), keeping the cursor as the kernel does.
    #[cfg(test)]
    fn set_table(&mut self, table: Vec<u32>) {
        self.table = table;
    }

    /// The table slot a new flow from `client`:`sport` takes, advancing the cursor for
    /// `rr`/`wrr`/`fo` (for a counting scheduler: the slot of the chosen pair's index;
    /// `None` also when `ovf` finds every server over its weight). `hash_port`: the service hashes the client port (`SVC_F_HASH_PORT`).
    /// `None` when the table is empty (the kernel drops with `no_real_server`).
    pub fn slot(&mut self, client: &Addr, sport: u16, hash_port: bool) -> Option<u32> {
        let len = u32::try_from(self.table.len()).ok().filter(|&l| l > 0)?;
        Some(match self.algo {
            SchedAlgo::Rr | SchedAlgo::Wrr | SchedAlgo::Fo => {
                let s = self.cursor % len;
                self.cursor = self.cursor.wrapping_add(1);
                s
            }
            SchedAlgo::Sh | SchedAlgo::Mh => hash_slot(client, sport, hash_port, len),
            SchedAlgo::Dh => flow_hash(&self.vip, 0) % len,
            SchedAlgo::Lc
            | SchedAlgo::Wlc
            | SchedAlgo::Sed
            | SchedAlgo::Nq
            | SchedAlgo::Ovf
            | SchedAlgo::Twos => self.counted_pos()? * COUNTED_ENTRY,
        })
    }

    /// The real-server index a new flow from `client`:`sport` goes to (see [`Self::slot`]).
    pub fn pick(&mut self, client: &Addr, sport: u16, hash_port: bool) -> Option<u32> {
        let slot = self.slot(client, sport, hash_port)?;
        self.table.get(slot as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use lb_common::{flow_hash, v4_mapped};
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;
    use crate::dataplane::sched::test_support::*;

    #[test]
    fn cursor_is_modulo_table_length_and_wraps() {
        let mut m = Model::new(SchedAlgo::Rr, vec![7, 8, 9]);
        m.set_cursor(u32::MAX);
        let a = v4_mapped([0; 4]);
        assert_eq!(
            m.pick(&a, 0, false),
            Some([7, 8, 9][(u32::MAX % 3) as usize])
        );
        assert_eq!(m.cursor(), 0);
        assert_eq!(m.pick(&a, 0, false), Some(7));
        // A swap keeps the cursor.
        m.set_table(vec![1, 2]);
        assert_eq!(m.pick(&a, 0, false), Some(2));
    }

    #[test]
    fn sh_and_mh_model_use_flow_hash() {
        let s = servers(&[1, 2, 3]);
        let client = v4_mapped([198, 51, 100, 7]);
        for algo in [SchedAlgo::Sh, SchedAlgo::Mh] {
            let t = build_table(algo, &s);
            let len = t.len() as u32;
            let mut m = Model::new(algo, t.clone());
            let want = t[(flow_hash(&client, 0) % len) as usize];
            assert_eq!(m.pick(&client, 5555, false), Some(want));
            assert_eq!(m.pick(&client, 6666, false), Some(want), "port ignored");
            let want = t[(flow_hash(&client, 5555) % len) as usize];
            assert_eq!(m.pick(&client, 5555, true), Some(want));
            assert_eq!(m.cursor(), 0, "hashing leaves the cursor alone");
        }
    }

    #[test]
    fn model_matches_tables_for_random_flows() {
        let mut rng = StdRng::seed_from_u64(42);
        let s = servers(&[3, 1, 2]);
        for algo in [SchedAlgo::Rr, SchedAlgo::Wrr, SchedAlgo::Sh, SchedAlgo::Mh] {
            let t = build_table(algo, &s);
            let mut m = Model::new(algo, t.clone());
            for k in 0..1000u32 {
                let client = v4_mapped(rng.random());
                let sport: u16 = rng.random();
                let slot = match algo {
                    SchedAlgo::Rr | SchedAlgo::Wrr => k % t.len() as u32,
                    _ => flow_hash(&client, sport) % t.len() as u32,
                };
                assert_eq!(m.pick(&client, sport, true), Some(t[slot as usize]));
            }
        }
    }
}
