//! A real keepalived (Debian's 2.2.7) as a lab peer: its config and pid files in the
//! lab's temporary directory, its log (`-l -D`) in the lab's log of `label`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::Lab;

/// Starts keepalived with `config` in namespace `ns` as process `label` (killed by PID
/// with the lab), and waits until its log says `ready` (e.g. `"(VI_1) Entering"`).
pub fn start_keepalived(lab: &mut Lab, ns: &str, label: &str, config: &str, ready: &str) {
    let dir = lab.tmp.join(label);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, config).unwrap();
    let pid = |n: &str| -> PathBuf { dir.join(n) };
    let mut cmd = lab.command(ns, Path::new("keepalived"));
    cmd.args(["-n", "-l", "-D", "-P", "-f"])
        .arg(&conf)
        .arg("-p")
        .arg(pid("keepalived.pid"))
        .arg("-r")
        .arg(pid("vrrp.pid"))
        .arg("-c")
        .arg(pid("checkers.pid"))
        .arg("-b")
        .arg(pid("bfd.pid"));
    lab.spawn(label, cmd);
    lab.wait_log(label, ready, Duration::from_secs(10));
}
