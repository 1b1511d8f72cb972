//! The kernel's per-flow choice in plain Rust: the integration tests compare the XDP
//! program against it flow by flow.

use lb_common::{Addr, SchedAlgo};

use super::{Candidate, build_table, build_table_in, hash_slot};

/// The kernel's choice of a real server for a new flow, in plain Rust: what the XDP
/// program does with a service's table. `rr`/`wrr` use one cursor, as one CPU would (the
/// kernel has one per CPU and per service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    algo: SchedAlgo,
    table: Vec<u32>,
    cursor: u32,
}

impl Model {
    /// A model over an already built table, cursor at 0.
    pub fn new(algo: SchedAlgo, table: Vec<u32>) -> Self {
        Self {
            algo,
            table,
            cursor: 0,
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
    /// `rr`/`wrr`. `hash_port`: the service hashes the client port (`SVC_F_HASH_PORT`).
    /// `None` when the table is empty (the kernel drops with `no_real_server`).
    pub fn slot(&mut self, client: &Addr, sport: u16, hash_port: bool) -> Option<u32> {
        let len = u32::try_from(self.table.len()).ok().filter(|&l| l > 0)?;
        Some(match self.algo {
            SchedAlgo::Rr | SchedAlgo::Wrr => {
                let s = self.cursor % len;
                self.cursor = self.cursor.wrapping_add(1);
                s
            }
            SchedAlgo::Sh | SchedAlgo::Mh => hash_slot(client, sport, hash_port, len),
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
        for algo in ALL {
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
