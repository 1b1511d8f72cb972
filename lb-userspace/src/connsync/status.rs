//! What sync has done, for `xlb status` (a file next to the daemon's status file,
//! written by the sync task) and the metrics.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Counters and state of the sync task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    pub instance: String,
    /// "master" (sending), "backup" (receiving).
    pub role: String,
    pub sync_id: u8,
    /// Where datagrams go (peers, or the multicast group).
    pub destinations: Vec<String>,
    pub authenticated: bool,
    pub sent_entries: u64,
    pub sent_datagrams: u64,
    pub sent_bytes: u64,
    pub received_datagrams: u64,
    pub received_entries: u64,
    pub installed: u64,
    /// Entries received but not installed, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Datagrams dropped, by reason.
    pub drops: BTreeMap<String, u64>,
    /// Datagrams a peer sent that never arrived (sequence gaps).
    pub lost: u64,
    pub bulk_requests_sent: u64,
    pub bulk_requests_served: u64,
    /// Flows the peers were told about that still live here (master).
    pub flows_synced: u64,
    /// Duration of the last scan of the tables, microseconds.
    pub last_scan_us: u64,
    /// Whether flows of `mh`/`sh` services are left out (the peer confirmed identical
    /// scheduling tables within the last 10 s).
    pub hashed_skipped: bool,
    pub last_error: Option<String>,
}

impl SyncStatus {
    pub fn drop(&mut self, reason: &str) {
        *self.drops.entry(reason.to_owned()).or_default() += 1;
    }

    pub fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_owned()).or_default() += 1;
    }

    /// The lines `xlb status` prints.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "connection sync: {} (instance {}, sync id {}) -> {}{}",
            self.role,
            self.instance,
            self.sync_id,
            self.destinations.join(", "),
            if self.authenticated { ", HMAC" } else { "" }
        )];
        out.push(format!(
            "  sent {} entries in {} datagrams ({} bytes), {} flows synced, last scan {} us{}",
            self.sent_entries,
            self.sent_datagrams,
            self.sent_bytes,
            self.flows_synced,
            self.last_scan_us,
            if self.hashed_skipped {
                ", mh/sh flows not sent (peer has the same tables)"
            } else {
                ""
            }
        ));
        out.push(format!(
            "  received {} datagrams, {} entries, {} installed, {} lost; bulk requests \
             sent {}, served {}",
            self.received_datagrams,
            self.received_entries,
            self.installed,
            self.lost,
            self.bulk_requests_sent,
            self.bulk_requests_served
        ));
        if !self.drops.is_empty() {
            out.push(format!("  dropped datagrams: {}", join(&self.drops)));
        }
        if !self.skipped.is_empty() {
            out.push(format!("  entries not installed: {}", join(&self.skipped)));
        }
        if let Some(e) = &self.last_error {
            out.push(format!("  last error: {e}"));
        }
        out
    }

    /// Writes the status atomically.
    pub fn write(&self, path: &Path) {
        let Ok(text) = serde_json::to_string_pretty(self) else {
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

    /// Reads a status written by [`SyncStatus::write`].
    pub fn read(path: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }
}

fn join(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sync status file of the daemon whose status file is `state_file`.
pub fn status_path(state_file: &Path) -> PathBuf {
    state_file.with_extension("sync.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_name_role_counters_and_drops() {
        let mut s = SyncStatus {
            instance: "VI_1".into(),
            role: "backup".into(),
            destinations: vec!["198.18.0.2:8848".into()],
            ..SyncStatus::default()
        };
        s.drop("unknown_peer");
        s.drop("unknown_peer");
        s.skip("unknown_real");
        let l = s.lines();
        assert!(
            l[0].starts_with("connection sync: backup (instance VI_1"),
            "{l:?}"
        );
        assert!(
            l.contains(&"  dropped datagrams: unknown_peer 2".to_string()),
            "{l:?}"
        );
        assert!(l.contains(&"  entries not installed: unknown_real 1".to_string()));
        assert_eq!(
            status_path(Path::new("/run/xlb/x.status.json")),
            Path::new("/run/xlb/x.status.sync.json")
        );
    }
}
