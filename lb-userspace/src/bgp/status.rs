//! The announcements as `xlb status` shows them: the daemon writes them next to its
//! status file (`<pin path>.bgp.json` under /run/xlb) every publish tick; `xlb status`
//! reads them back and prints one line per VIP.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One announced VIP's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    pub vip: IpAddr,
    pub announced: bool,
    /// Why it is (not) announced.
    pub reason: String,
    /// Since when (Unix seconds) it is in that state.
    pub since: u64,
}

/// What the daemon writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BgpStatus {
    /// The daemon that wrote it.
    pub pid: u32,
    /// Its kernel table.
    pub table: u32,
    pub vips: Vec<VipStatus>,
    /// Routes added and removed since the daemon started.
    pub announcements: u64,
    pub withdrawals: u64,
    /// Routes someone else removed that the resync put back.
    pub restored: u64,
}

/// The file beside `state_file` (`….status.json` -> `….bgp.json`).
pub fn file_beside(state_file: &Path) -> PathBuf {
    let name = state_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".status.json").unwrap_or(&name);
    state_file.with_file_name(format!("{stem}.bgp.json"))
}

/// Atomically, best effort (the next tick writes it again).
pub fn write(path: &Path, status: &BgpStatus) {
    let Ok(text) = serde_json::to_string_pretty(status) else {
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

pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// The file's content, if a daemon wrote one.
pub fn read(path: &Path) -> Option<BgpStatus> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The `xlb status` lines; `alive` says whether the daemon that wrote them still runs
/// (a killed daemon leaves its routes: the data plane still forwards).
pub fn render(s: &BgpStatus, alive: bool, now: u64) -> String {
    let mut out = format!(
        "BGP announcements (kernel table {}, protocol 201; {} announced, {} withdrawn, {} \
         restored since start){}\n",
        s.table,
        s.announcements,
        s.withdrawals,
        s.restored,
        if alive {
            ""
        } else {
            " [daemon gone: last known state; routes stay until `xlb teardown`]"
        }
    );
    for v in &s.vips {
        out.push_str(&format!(
            "  {} {} for {}s: {}\n",
            v.vip,
            if v.announced {
                "announced"
            } else {
                "withdrawn"
            },
            now.saturating_sub(v.since),
            v.reason
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_sits_beside_the_status_file() {
        assert_eq!(
            file_beside(Path::new("/run/xlb/sys_fs_bpf_xlb.status.json")),
            Path::new("/run/xlb/sys_fs_bpf_xlb.bgp.json")
        );
    }

    #[test]
    fn one_line_per_vip() {
        let s = BgpStatus {
            pid: 1,
            table: 201,
            vips: vec![
                VipStatus {
                    vip: "198.18.0.100".parse().unwrap(),
                    announced: true,
                    reason: "1 of 1 service(s) can take flows".into(),
                    since: 90,
                },
                VipStatus {
                    vip: "2001:db8::100".parse().unwrap(),
                    announced: false,
                    reason: "[2001:db8::100]:80/TCP: quorum lost".into(),
                    since: 95,
                },
            ],
            announcements: 2,
            withdrawals: 1,
            restored: 0,
        };
        let text = render(&s, true, 100);
        assert!(
            text.contains("  198.18.0.100 announced for 10s: 1 of 1"),
            "{text}"
        );
        assert!(
            text.contains("  2001:db8::100 withdrawn for 5s: [2001:db8::100]:80/TCP: quorum lost")
        );
        assert!(render(&s, false, 100).contains("daemon gone"));
    }
}
