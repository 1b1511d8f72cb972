//! The NAPI kthreads of the lab's veths (threaded NAPI: `napi/<ifname>-<id>`), where all
//! the director's and the sinks' work runs: pinned to the forwarding CPU, at priorities
//! that let the sinks keep their rings empty and the director run ahead of other work.

/// The director's forwarding, and the sinks' receiving (see the module documentation of
/// `forward`).
pub const FWD_CPU: usize = 1;
/// The sinks' NAPI kthreads run before the director's when both are runnable.
pub const SINK_NICE: i32 = -15;
/// The director's NAPI kthread and the generator get their CPU ahead of other work on a
/// shared machine: a generator time-sliced with another process sends in bursts, and the
/// director idles between them (seen here as rounds at half the rate).
pub const DIRECTOR_NICE: i32 = -5;

/// Pins the NAPI kthreads of `ifname` to `cpu` and gives them the nice value `nice`.
pub fn place(ifname: &str, cpu: usize, nice: i32) {
    for pid in kthreads(ifname) {
        crate::threads::set_affinity(pid, cpu);
        // SAFETY: plain syscall on a kernel thread of our own interface.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as u32, nice) };
    }
}

/// The PIDs of the NAPI kthreads of `ifname`.
fn kthreads(ifname: &str) -> Vec<i32> {
    let prefix = format!("napi/{ifname}-");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            comm.trim_end().starts_with(&prefix).then_some(pid)
        })
        .collect()
}
