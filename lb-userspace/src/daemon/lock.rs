//! One daemon per pin path: an exclusive, non-blocking `flock` on `/run/xlb/<pin path>.lock`,
//! taken before anything is loaded or attached. Two daemons on one pin path would share the
//! maps, and the exit of either would switch services off under the other. The file holds
//! its owner's PID for the refusal message. The kernel releases the lock when its owner
//! dies, even by SIGKILL, so a crash leaves no stale lock behind.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, Write},
    os::{
        fd::AsRawFd,
        unix::fs::{MetadataExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
};

use super::state_file::run_file;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another xlb (pid {}) runs on pin path {}: stop it first, or give this one another \
         --pin-path (lock {})",
        .pid.map_or_else(|| "unknown".to_string(), |p| p.to_string()),
        .pin_path.display(),
        .lock.display()
    )]
    Held {
        pid: Option<u32>,
        pin_path: PathBuf,
        lock: PathBuf,
    },
    #[error("lock file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The lock file of the daemon on `pin_path`, next to its status file.
pub fn lock_file(pin_path: &Path) -> PathBuf {
    run_file(pin_path, "lock")
}

/// The held lock; dropping it removes the file and releases the lock.
#[derive(Debug)]
pub struct PinLock {
    /// Open for as long as the lock is held: closing it releases the lock.
    _held: File,
    path: PathBuf,
}

impl PinLock {
    /// Takes the lock of `pin_path` for this process, or says who holds it.
    pub fn acquire(pin_path: &Path) -> Result<PinLock, LockError> {
        let path = lock_file(pin_path);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        loop {
            // Close-on-exec (std's default): a child we spawn must not keep the lock alive.
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&path)
                .map_err(io)?;
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                    return Err(io(e));
                }
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    pid: text.trim().parse().ok(),
                    pin_path: pin_path.to_path_buf(),
                    lock: path,
                });
            }
            // The owner before us may have removed the file between our open and our flock:
            // a lock on that orphan excludes nobody, so open the path again.
            let ours = file.metadata().map_err(io)?;
            match std::fs::metadata(&path) {
                Ok(m) if m.dev() == ours.dev() && m.ino() == ours.ino() => {}
                _ => continue,
            }
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            return Ok(PinLock { _held: file, path });
        }
    }
}

impl Drop for PinLock {
    fn drop(&mut self) {
        // Removed while still held, so the next daemon never locks a file about to vanish.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_pin_path_names_the_first_owner() {
        let pin = PathBuf::from(format!("/tmp/xlb-lock-test-{}", std::process::id()));
        let Ok(first) = PinLock::acquire(&pin) else {
            return; // /run/xlb is root's: nothing to test without it.
        };
        match PinLock::acquire(&pin) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("a second lock must be refused: {other:?}"),
        }
        drop(first);
        assert!(
            !lock_file(&pin).exists(),
            "dropping the lock removes its file"
        );
        drop(PinLock::acquire(&pin).expect("free again after the first is dropped"));
    }
}
