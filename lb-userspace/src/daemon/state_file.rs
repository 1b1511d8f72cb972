//! The status file: the daemon's PID and start time and every VRRP instance's status as
//! JSON, for `xlb status` (which may run as another process) to read, and to tell stale
//! when the daemon is gone.

use std::path::{Path, PathBuf};

use crate::{
    dataplane::watch::InterfaceStatus,
    process::identity::ProcessId,
    vrrp::{instance::StatusBoard, status::StatusFile},
};

/// The file `/run/xlb/<pin path>.<suffix>` of the daemon whose maps are pinned at
/// `pin_path`: one per pin path, so several directors on one host (labs) do not share one.
pub(super) fn run_file(pin_path: &Path, suffix: &str) -> PathBuf {
    let name = pin_path
        .to_string_lossy()
        .trim_matches('/')
        .replace('/', "_");
    PathBuf::from("/run/xlb").join(format!("{name}.{suffix}"))
}

/// The status file of the daemon on `pin_path`.
pub fn default_state_file(pin_path: &Path) -> PathBuf {
    run_file(pin_path, "status.json")
}

/// Writes `board` and the data plane's `interfaces` to `path` atomically, signed by
/// `daemon`: a reader never sees half. Best effort: the next publish tick writes it again.
pub fn write(
    path: &Path,
    daemon: ProcessId,
    board: &StatusBoard,
    interfaces: Vec<InterfaceStatus>,
) {
    let Ok(board) = board.lock() else { return };
    let file = StatusFile {
        daemon,
        instances: board.values().cloned().collect(),
        interfaces,
    };
    let Ok(text) = serde_json::to_string_pretty(&file) else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// On shutdown: no daemon, no status.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_per_pin_path() {
        assert_eq!(
            default_state_file(Path::new("/sys/fs/bpf/xlb")),
            Path::new("/run/xlb/sys_fs_bpf_xlb.status.json")
        );
        assert_ne!(
            default_state_file(Path::new("/sys/fs/bpf/xlb-a")),
            default_state_file(Path::new("/sys/fs/bpf/xlb-b"))
        );
    }
}
