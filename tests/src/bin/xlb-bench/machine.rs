//! The machine a run measured on, for latest.json and the table's heading: CPUs, model,
//! memory, OS, kernel.

use serde_json::{Value, json};

/// The rest of the first line of `text` that starts with `prefix`.
fn proc_line(text: &str, prefix: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(str::to_string)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    read("/proc/sys/kernel/osrelease").trim().to_string()
}

/// The kernel's release and build (`uname -rv`).
pub fn kernel() -> String {
    format!(
        "{} {}",
        kernel_release(),
        read("/proc/sys/kernel/version").trim()
    )
}

/// latest.json's `machine`.
pub fn description() -> Value {
    let model = proc_line(&read("/proc/cpuinfo"), "model name")
        .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()));
    let mem_kb = proc_line(&read("/proc/meminfo"), "MemTotal:").and_then(|l| {
        l.split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
    });
    let os = proc_line(&read("/etc/os-release"), "PRETTY_NAME=")
        .map(|v| v.trim_matches('"').to_string());
    json!({
        "hostname": read("/proc/sys/kernel/hostname").trim(),
        "cpus": cpus(),
        "cpu_model": model,
        "memory_mib": mem_kb.map(|k| k / 1024),
        "os": os,
        "arch": std::env::consts::ARCH,
    })
}
