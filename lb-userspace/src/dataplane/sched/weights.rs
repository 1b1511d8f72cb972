//! Weights made to fit a table: divided by their gcd, scaled down when their sum is
//! larger than the table, never below 1 (an eligible server never disappears).

const fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

pub(super) fn gcd_all(w: &[u32]) -> u32 {
    w.iter().fold(0, |g, &x| gcd(g, x))
}

fn divide_by_gcd(w: &mut [u32]) {
    let g = gcd_all(w);
    if g > 1 {
        w.iter_mut().for_each(|x| *x /= g);
    }
}

/// Weights (all > 0) divided by their gcd and, if their sum exceeds `limit`, scaled down
/// proportionally so that it fits while every weight stays >= 1. With more weights than
/// `limit`, every weight becomes 1 (the sum is then the number of weights).
pub(super) fn fit_weights(weights: &[u32], limit: u64) -> Vec<u32> {
    let mut w = weights.to_vec();
    divide_by_gcd(&mut w);
    let total: u64 = w.iter().map(|&x| u64::from(x)).sum();
    if total <= limit {
        return w;
    }
    let n = w.len() as u64;
    if n >= limit {
        return vec![1; w.len()];
    }
    // Rounding down keeps the sum <= budget, but the floor of 1 may add up to n more:
    // shrink the budget by the excess until the sum fits (a budget of 0 gives all 1s, whose
    // sum n < limit, so this ends).
    let mut budget = limit;
    loop {
        let scaled: Vec<u32> = w
            .iter()
            .map(|&x| {
                let s = u128::from(x) * u128::from(budget) / u128::from(total);
                // s <= x, so it fits in u32.
                u32::try_from(s).unwrap_or(x).max(1)
            })
            .collect();
        let sum: u64 = scaled.iter().map(|&x| u64::from(x)).sum();
        if sum <= limit {
            let mut scaled = scaled;
            divide_by_gcd(&mut scaled);
            return scaled;
        }
        budget = budget.saturating_sub(sum - limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_weights_keeps_every_server_and_the_limit() {
        assert_eq!(fit_weights(&[4, 6], 100), [2, 3]);
        let w = fit_weights(&[1_000_000, 1, 1, 1], 10);
        assert!(w.iter().all(|&x| x >= 1));
        assert!(w.iter().sum::<u32>() <= 10, "{w:?}");
        assert_eq!(w, [7, 1, 1, 1]);
        assert_eq!(fit_weights(&[5, 5, 9], 2), [1, 1, 1]);
    }
}
