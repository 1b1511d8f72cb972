//! What the director did in a measuring window besides what reached the sink: how busy
//! its CPU was (`/proc/stat`), and how many frames its veth received (`ethtool -S`).

use integration_tests::netns::Lab;

use super::shell::sh;

/// Busy and total jiffies of one CPU so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Jiffies {
    busy: u64,
    total: u64,
}

/// The jiffies of `cpu` so far (`/proc/stat`).
pub fn cpu_jiffies(cpu: usize) -> Option<Jiffies> {
    parse_cpu_jiffies(&std::fs::read_to_string("/proc/stat").ok()?, cpu)
}

fn parse_cpu_jiffies(stat: &str, cpu: usize) -> Option<Jiffies> {
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("cpu{cpu}")))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some(Jiffies {
        busy: total - idle,
        total,
    })
}

/// The share of the time between two readings the CPU was busy (NaN if unknown).
pub fn busy_share(before: Option<Jiffies>, after: Option<Jiffies>) -> f64 {
    match (before, after) {
        (Some(b), Some(a)) if a.total > b.total => {
            (a.busy - b.busy) as f64 / (a.total - b.total) as f64
        }
        _ => f64::NAN,
    }
}

/// Frames the director's veth `ifname` has received in its XDP path (`ethtool -S`).
pub fn director_rx(lab: &Lab, ifname: &str) -> Option<u64> {
    let out = sh(lab, "dir", &format!("ethtool -S {ifname}")).ok()?;
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("rx_queue_0_xdp_packets:"))
        .find_map(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  10 0 10 100 0 0 0 0 0 0\n\
                        cpu0 5 0 5 50 0 0 0 0 0 0\n\
                        cpu1 3 1 2 40 4 1 1 0 0 0\n\
                        intr 1 2 3\n";

    #[test]
    fn reads_busy_and_total_of_one_cpu() {
        // idle and iowait are not busy; guest columns are past the eighth and not counted.
        assert_eq!(
            parse_cpu_jiffies(STAT, 1),
            Some(Jiffies { busy: 8, total: 52 })
        );
        assert_eq!(parse_cpu_jiffies(STAT, 2), None);
    }

    #[test]
    fn busy_share_between_two_readings() {
        let at = |busy, total| Some(Jiffies { busy, total });
        assert_eq!(busy_share(at(10, 100), at(40, 200)), 0.3);
        assert!(busy_share(at(10, 100), at(10, 100)).is_nan());
        assert!(busy_share(None, at(10, 100)).is_nan());
    }
}
