//! Where the benchmark's own threads run: in a lab's network namespace, on one CPU.

use std::fs::File;

use anyhow::{Context as _, Result};

/// Moves the calling thread into network namespace `ns` (a name under /run/netns).
pub fn enter_netns(ns: &str) -> Result<()> {
    let f = File::open(format!("/run/netns/{ns}")).with_context(|| format!("netns {ns}"))?;
    integration_tests::netns::enter(&f).with_context(|| format!("setns({ns})"))
}

/// Pins thread `pid` (0: the calling thread) to `cpu`; false if the kernel refused.
pub fn set_affinity(pid: i32, cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t filled through the libc macros.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Restores the calling thread's CPU affinity on drop.
pub struct AffinityGuard(libc::cpu_set_t);

impl AffinityGuard {
    pub fn save() -> Self {
        // SAFETY: sched_getaffinity fills the zeroed set we own.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
            Self(set)
        }
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        // SAFETY: a set sched_getaffinity filled.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
    }
}
