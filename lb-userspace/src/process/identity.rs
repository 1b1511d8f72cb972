//! Which process a PID names: the PID with the process's start time (field 22 of
//! `/proc/PID/stat`, clock ticks since boot), so that a PID the kernel gave to another
//! process since is not taken for the one recorded. `xlb status` uses it to tell a live
//! daemon's status file from the last words of one that died.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A process, as recorded by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    /// Clock ticks after boot at which it started.
    pub start_time: u64,
}

/// Whether the process a [`ProcessId`] names still runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Running,
    /// No process has that PID any more.
    Gone,
    /// The PID now names a process that started later.
    Reused,
}

impl ProcessId {
    /// This process.
    pub fn current() -> Option<ProcessId> {
        let pid = std::process::id();
        start_time(pid).map(|start_time| ProcessId { pid, start_time })
    }

    /// Looks the PID up in `/proc`.
    pub fn liveness(&self) -> Liveness {
        liveness(self, start_time(self.pid))
    }
}

/// The decision: `found` is the start time of the process now holding the PID, if any.
pub fn liveness(recorded: &ProcessId, found: Option<u64>) -> Liveness {
    match found {
        None => Liveness::Gone,
        Some(t) if t == recorded.start_time => Liveness::Running,
        Some(_) => Liveness::Reused,
    }
}

/// The start time of process `pid`, if it exists.
fn start_time(pid: u32) -> Option<u64> {
    let stat =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a `/proc/PID/stat` line. The command name (field 2) is in parentheses and
/// may itself hold spaces and parentheses, so fields are counted after the last ')'.
fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts with field 3 (the state).
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_field_22_even_with_odd_command_names() {
        let stat = "1234 (x) y (z)) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 2 0 \
                    987654 12345678 500 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(987_654));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn a_recorded_process_is_running_only_with_the_same_start_time() {
        let rec = ProcessId {
            pid: 42,
            start_time: 1000,
        };
        assert_eq!(liveness(&rec, Some(1000)), Liveness::Running);
        assert_eq!(liveness(&rec, None), Liveness::Gone);
        assert_eq!(liveness(&rec, Some(2000)), Liveness::Reused);
    }

    #[test]
    fn this_process_is_running() {
        let me = ProcessId::current().expect("/proc/self/stat");
        assert_eq!(me.liveness(), Liveness::Running);
    }
}
