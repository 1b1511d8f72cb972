//! `xlb teardown`: detach XDP and remove the pinned maps, saying what went. Refused while
//! a daemon runs on the pin path (its watchdog would put back what it still holds), unless
//! forced.

use std::path::{Path, PathBuf};

use anyhow::Result;

/// Who holds the pin path's lock (`xlb run` takes it for as long as it runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    Nobody,
    /// A running daemon, with its PID when the lock file names it.
    Daemon {
        pid: Option<u32>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error(
        "xlb (pid {}) runs on pin path {}: it would put back what teardown removes; stop it \
         first (it leaves the data plane forwarding), then teardown; or pass --force",
        .pid.map_or_else(|| "unknown".to_string(), |p| p.to_string()),
        .pin_path.display()
    )]
    DaemonRunning { pid: Option<u32>, pin_path: PathBuf },
}

/// Detaches and unpins everything under `pin_path`, and prints each path removed;
/// refused while `holder` is a daemon, unless `force`.
pub fn teardown(pin_path: &Path, holder: Holder, force: bool) -> Result<()> {
    if let Holder::Daemon { pid } = holder {
        let refusal = TeardownError::DaemonRunning {
            pid,
            pin_path: pin_path.to_path_buf(),
        };
        if !force {
            return Err(refusal.into());
        }
        eprintln!("xlb: --force: tearing down anyway, but {refusal}");
    }
    let removed = crate::dataplane::teardown(pin_path)?;
    if removed.is_empty() {
        println!("nothing pinned under {}", pin_path.display());
    }
    for p in removed {
        println!("removed {}", p.display());
    }
    Ok(())
}
