//! `wrr`: nginx's smooth weighted round robin, unrolled into a table.

use super::{Candidate, weights::fit_weights};

/// The longest `wrr` table; weights are scaled down to fit it.
const WRR_MAX_LEN: u32 = 65_536;

/// nginx's smooth weighted round robin, unrolled over one period: at each step every
/// server's `current` grows by its weight, the largest `current` (the first in canonical
/// order on a tie) is picked and loses the total weight. The period is the total weight.
/// Cost: O(len × servers), len <= [`WRR_MAX_LEN`].
pub(super) fn table(servers: &[Candidate]) -> Vec<u32> {
    let weights: Vec<u32> = servers.iter().map(|c| c.weight).collect();
    let w = fit_weights(&weights, u64::from(WRR_MAX_LEN));
    if w.iter().all(|&x| x == 1) {
        // Every server equal: the sequence is the canonical order (what the loop gives).
        return servers.iter().map(|c| c.index).collect();
    }
    let total: i64 = w.iter().map(|&x| i64::from(x)).sum();
    let mut current = vec![0i64; w.len()];
    let mut table = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best = 0;
        for i in 0..w.len() {
            current[i] += i64::from(w[i]);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        table.push(servers[best].index);
    }
    table
}

#[cfg(test)]
mod tests {
    use lb_common::{SchedAlgo, v4_mapped};

    use super::*;
    use crate::dataplane::sched::{Model, build_table, test_support::*};

    #[test]
    fn wrr_follows_nginx_smooth_sequence() {
        // nginx's documented example: weights 5, 1, 1 -> a a b a c a a.
        let t = build_table(SchedAlgo::Wrr, &servers(&[5, 1, 1]));
        assert_eq!(t, [100, 100, 101, 100, 102, 100, 100]);
        // 3:1 -> a a b a
        let t = build_table(SchedAlgo::Wrr, &servers(&[3, 1]));
        assert_eq!(t, [100, 100, 101, 100]);
        // Equal weights: plain round robin in canonical order.
        let t = build_table(SchedAlgo::Wrr, &servers(&[4, 4, 4]));
        assert_eq!(t, [100, 101, 102]);
    }

    #[test]
    fn wrr_proportions_are_exact_and_reduced_by_gcd() {
        let t = build_table(SchedAlgo::Wrr, &servers(&[300, 100]));
        assert_eq!(t.len(), 4);
        let t = build_table(SchedAlgo::Wrr, &servers(&[6, 4, 2, 1]));
        assert_eq!(t.len(), 13);
        let c = counts(&t);
        assert_eq!((c[&100], c[&101], c[&102], c[&103]), (6, 4, 2, 1));
        // Through the model: 100,000 flows split exactly 3:1 (100,000 is a multiple of 4).
        let mut m = Model::from_servers(SchedAlgo::Wrr, &servers(&[3, 1]));
        let mut n = [0u32; 2];
        for i in 0..100_000u32 {
            let idx = m.pick(&v4_mapped([9, 9, 9, 9]), i as u16, true).unwrap();
            n[(idx - 100) as usize] += 1;
        }
        assert_eq!(n, [75_000, 25_000]);
    }

    #[test]
    fn wrr_is_smooth() {
        // Within any window the picks of each server stay within one of its ideal share:
        // no burst of the heavy server (that is what "smooth" buys over classic wrr).
        let w = [5u32, 3, 2, 1];
        let t = build_table(SchedAlgo::Wrr, &servers(&w));
        let total: u32 = w.iter().sum();
        for (i, &wi) in w.iter().enumerate() {
            let idx = 100 + i as u32;
            let mut picked = 0u32;
            for (k, &x) in t.iter().enumerate() {
                picked += u32::from(x == idx);
                let ideal = f64::from(wi) * (k + 1) as f64 / f64::from(total);
                assert!(
                    (f64::from(picked) - ideal).abs() < 1.0 + 1e-9,
                    "server {i} after {} picks: {picked} vs {ideal}",
                    k + 1
                );
            }
        }
    }

    #[test]
    fn wrr_scales_large_weights_to_fit() {
        let t = build_table(SchedAlgo::Wrr, &servers(&[100_000, 1]));
        assert!(t.len() <= WRR_MAX_LEN as usize);
        let c = counts(&t);
        assert_eq!(c[&101], 1, "the light server keeps one entry");
        assert_eq!(c[&100], t.len() - 1);

        let w = [70_000u32, 35_000, 7, 1_000_000];
        let t = build_table(SchedAlgo::Wrr, &servers(&w));
        assert!(
            t.len() <= WRR_MAX_LEN as usize && t.len() > 60_000,
            "{}",
            t.len()
        );
        let c = counts(&t);
        let total: u32 = w.iter().sum();
        for (i, &wi) in w.iter().enumerate() {
            let got = c[&(100 + i as u32)] as f64 / t.len() as f64;
            let want = f64::from(wi) / f64::from(total);
            assert!((got - want).abs() < 1e-4, "server {i}: {got} vs {want}");
        }
        // Huge weights that do not overflow anything.
        let t = build_table(SchedAlgo::Wrr, &servers(&[u32::MAX, u32::MAX - 1, 1]));
        assert!(t.len() <= WRR_MAX_LEN as usize);
        assert_eq!(counts(&t).len(), 3);
    }
}
