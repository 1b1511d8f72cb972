//! The search for a director's peak forwarding rate (RFC 2889's "maximum forwarding rate":
//! the most a device forwards at any offered load, not at the largest one).
//!
//! Why not simply flat out: a generator that offers twice what the director takes drops
//! the rest at the director's veth ring, and returns those frames to its page pool under
//! the lock the sink takes on the director's CPU to return the frames it received
//! (`perf` here: a third of that CPU in `page_pool_put_unrefed_netmem` spinning, and the
//! ring's cache lines bouncing between the CPUs). The cost grows with the overflow, so the
//! slower a director, the more it paid on top of its own work: flat out, the ceiling
//! forwarded 3.7 Mpps and xlb 2.6; offered 5.6 and 4.5 Mpps, they forwarded 5.5 and 4.5.
//! A real NIC drops its overflow in hardware, at no cost to the host.

/// What one trial at a given pacing measured, in millions of frames per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// Frames the generator produced (offered to the director).
    pub offered: f64,
    /// Frames that reached the sink.
    pub sink: f64,
}

/// Each step offers this much more than the one before (`gap` shrinks by it).
pub const STEP: f64 = 1.07;
/// Steps in a row without a new best that end the search: the peak is behind us. Three,
/// so that one trial disturbed by the machine (a short trial, a busy neighbour) does not.
const PATIENCE: usize = 3;
/// A new best must beat the old by this much: noise does not move the peak.
const BETTER: f64 = 1.005;
const MAX_STEPS: usize = 40;

/// What the search found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Peak {
    /// The generator's gap between frames at the peak (ns; 0: flat out).
    pub gap: u32,
    /// What the trial at that gap measured.
    pub best: Rates,
    /// What the first trial, flat out, measured.
    pub flat: Rates,
}

/// Finds the generator's gap between frames (ns; 0: flat out) at which the sink rate peaks.
/// `trial(gap)` paces the generator and measures. It starts flat out, whose sink rate is
/// a lower bound of the peak, offers a little more than that rate, and raises the offer a
/// step at a time until the sink rate stops rising or the generator cannot go faster.
pub fn peak_gap<E>(mut trial: impl FnMut(u32) -> Result<Rates, E>) -> Result<Peak, E> {
    let flat = trial(0)?;
    let mut best = (0, flat);
    let peak = |(gap, best): (u32, Rates)| Peak { gap, best, flat };
    if flat.sink <= 0.0 {
        return Ok(peak(best));
    }
    let mut gap = 1e3 / (flat.sink * STEP);
    let mut since_best = 0;
    for _ in 0..MAX_STEPS {
        if gap < 1.0 {
            break;
        }
        let r = trial(gap as u32)?;
        if r.sink > best.1.sink * BETTER {
            best = (gap as u32, r);
            since_best = 0;
        } else {
            since_best += 1;
        }
        // Past the peak, or the generator is at its own limit (paced as fast as flat out).
        if since_best >= PATIENCE || r.offered >= flat.offered {
            break;
        }
        gap /= STEP;
    }
    Ok(peak(best))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A director that forwards everything up to `capacity`, and past it loses a share of
    /// its capacity proportional to the overflow (the penalty measured here).
    fn director(capacity: f64, gen_max: f64, penalty: f64) -> impl FnMut(u32) -> Result<Rates, ()> {
        move |gap| {
            let offered = if gap == 0 {
                gen_max
            } else {
                (1e3 / gap as f64).min(gen_max)
            };
            let over = (offered - capacity).max(0.0);
            let sink = offered.min(capacity) - penalty * over;
            Ok(Rates { offered, sink })
        }
    }

    #[test]
    fn finds_the_peak_of_a_director_penalised_by_overflow() {
        let Peak { gap, best: r, flat } = peak_gap(director(4.5, 7.0, 0.8)).unwrap();
        // Flat out it forwards 2.5; the peak is within one step of the capacity.
        assert_eq!(flat.sink, 2.5);
        assert!(r.sink > 4.5 / STEP && r.sink <= 4.5, "{r:?}");
        assert!(gap > 0 && (1e3 / gap as f64) < 4.5 * STEP * STEP, "{gap}");
    }

    #[test]
    fn one_disturbed_trial_does_not_end_the_search() {
        let mut d = director(4.5, 7.0, 0.8);
        let mut n = 0;
        let Peak { best: r, .. } = peak_gap(|gap| {
            n += 1;
            let mut r = d(gap)?;
            // The third trial loses half its frames to something else on the machine.
            if n == 3 {
                r.sink /= 2.0;
                r.offered /= 2.0;
            }
            Ok::<_, ()>(r)
        })
        .unwrap();
        assert!(r.sink > 4.5 / STEP, "{r:?}");
    }

    #[test]
    fn keeps_flat_out_when_pacing_never_does_better() {
        // No penalty and a generator slower than the director: flat out is the peak.
        let Peak { gap, best: r, .. } = peak_gap(director(9.0, 6.0, 0.0)).unwrap();
        assert_eq!(gap, 0);
        assert_eq!(r.sink, 6.0);
    }

    #[test]
    fn stops_when_the_generator_cannot_go_faster() {
        let mut trials = 0;
        let mut d = director(100.0, 5.0, 0.0);
        let Peak { best: r, .. } = peak_gap(|gap| {
            trials += 1;
            d(gap)
        })
        .unwrap();
        assert_eq!(r.sink, 5.0);
        assert!(trials < 5, "{trials} trials");
    }

    #[test]
    fn a_dead_director_ends_the_search_at_once() {
        let mut trials = 0;
        let Peak { gap, .. } = peak_gap(|_| {
            trials += 1;
            Ok::<_, ()>(Rates {
                offered: 7.0,
                sink: 0.0,
            })
        })
        .unwrap();
        assert_eq!((gap, trials), (0, 1));
    }

    #[test]
    fn a_failed_trial_is_returned() {
        let r = peak_gap(|gap| {
            if gap == 0 {
                Ok(Rates {
                    offered: 7.0,
                    sink: 3.0,
                })
            } else {
                Err("gone")
            }
        });
        assert_eq!(r, Err("gone"));
    }
}
