//! Waiting for what a lab should come to: a condition, an address arriving or leaving.

use std::time::{Duration, Instant};

use super::{LAB_VIP, Lab, check_interrupted};

/// Polls `f` until it returns Some, or panics with `what` and the last observation.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> (Option<T>, String)) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let (got, seen) = f();
        if let Some(v) = got {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {timeout:?}; last seen: {seen}"
        );
        check_interrupted();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether namespace `ns` has `addr` on one of its interfaces.
pub fn has_address(lab: &Lab, ns: &str, addr: &str) -> bool {
    lab.sh(ns, "ip -o addr show")
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(addr))
}

/// Waits until namespace `ns` holds `addr` (or no longer does); returns how long it took.
pub fn wait_addr(lab: &Lab, ns: &str, addr: &str, present: bool, timeout: Duration) -> Duration {
    let start = Instant::now();
    while has_address(lab, ns, addr) != present {
        assert!(
            start.elapsed() < timeout,
            "{ns}: {addr} {} within {timeout:?}",
            if present {
                "did not come"
            } else {
                "did not leave"
            }
        );
        check_interrupted();
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

/// [`wait_addr`] for the lab's VIP.
pub fn wait_vip(lab: &Lab, ns: &str, present: bool, timeout: Duration) -> Duration {
    wait_addr(lab, ns, LAB_VIP, present, timeout)
}

/// The MAC of namespace `ns`'s eth0.
pub fn mac_of(lab: &Lab, ns: &str) -> String {
    lab.sh(ns, "cat /sys/class/net/eth0/address")
        .trim()
        .to_string()
}
