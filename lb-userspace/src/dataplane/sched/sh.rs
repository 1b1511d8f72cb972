//! `sh`: IPVS-like source hashing, servers taking weighted runs of buckets.

use super::{Candidate, weights::fit_weights};

/// Buckets of an `sh` table (IPVS's `IP_VS_SH_TAB_SIZE`, 2^8), unless more servers than
/// that are eligible (then the next power of two that holds them all).
const SH_TABLE_SIZE: u32 = 256;

/// The `sh` table size for `servers` eligible real servers.
fn sh_table_size(servers: usize) -> u32 {
    let n = u32::try_from(servers).unwrap_or(u32::MAX);
    if n <= SH_TABLE_SIZE {
        SH_TABLE_SIZE
    } else {
        n.checked_next_power_of_two().unwrap_or(n)
    }
}

/// IPVS-like source hashing: servers in canonical order each take `weight` consecutive
/// buckets, cycling through the list until every bucket is assigned.
pub(super) fn table(servers: &[Candidate]) -> Vec<u32> {
    let len = sh_table_size(servers.len());
    let weights: Vec<u32> = servers.iter().map(|c| c.weight).collect();
    let w = fit_weights(&weights, u64::from(len));
    let len = len as usize;
    let mut table = Vec::with_capacity(len);
    'fill: loop {
        for (c, &turns) in servers.iter().zip(&w) {
            for _ in 0..turns {
                if table.len() == len {
                    break 'fill;
                }
                table.push(c.index);
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use lb_common::{SchedAlgo, v4_mapped};

    use crate::dataplane::sched::{Candidate, build_table, test_support::*};

    #[test]
    fn sh_has_256_buckets_in_weighted_runs() {
        let t = build_table(SchedAlgo::Sh, &servers(&[3, 1]));
        assert_eq!(t.len(), 256);
        assert_eq!(&t[..8], &[100, 100, 100, 101, 100, 100, 100, 101]);
        let c = counts(&t);
        assert_eq!((c[&100], c[&101]), (192, 64));
        // gcd first: 10,10 is 1,1.
        let c = counts(&build_table(SchedAlgo::Sh, &servers(&[10, 10])));
        assert_eq!((c[&100], c[&101]), (128, 128));
    }

    #[test]
    fn sh_weight_proportions() {
        let w = [5u32, 3, 2];
        let c = counts(&build_table(SchedAlgo::Sh, &servers(&w)));
        for (i, &wi) in w.iter().enumerate() {
            let got = c[&(100 + i as u32)] as f64 / 256.0;
            let want = f64::from(wi) / 10.0;
            assert!((got - want).abs() < 0.02, "server {i}: {got} vs {want}");
        }
        // Total above 256: scaled, nobody starved (IPVS would give the third none).
        let w = [101u32, 200, 300];
        let c = counts(&build_table(SchedAlgo::Sh, &servers(&w)));
        for (i, &wi) in w.iter().enumerate() {
            let got = c[&(100 + i as u32)] as f64 / 256.0;
            let want = f64::from(wi) / 601.0;
            assert!((got - want).abs() < 0.01, "server {i}: {got} vs {want}");
        }
    }

    #[test]
    fn sh_grows_past_256_servers() {
        let s: Vec<Candidate> = (0..300u32)
            .map(|i| Candidate {
                index: i,
                addr: v4_mapped([10, 1, (i / 256) as u8, i as u8]),
                port: 80,
                weight: 1,
            })
            .collect();
        let t = build_table(SchedAlgo::Sh, &s);
        assert_eq!(t.len(), 512);
        assert_eq!(counts(&t).len(), 300);
    }
}
