//! `--log-file`: the log appended to a file, reopened after logrotate moved it.
//!
//! Created 0640 (less the umask) when missing; an existing file keeps its mode and owner
//! (logrotate's `create` sets them). [`LogFile::reopen`] opens the path again and swaps
//! the new file in under the lock, so no line is split between the two files; if the
//! path cannot be opened the old file stays in use and the error is returned.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Mutex,
};

use tracing::Level;

use super::line::Sink;

/// The mode of a log file xlb creates: root reads and writes, its group (adm) reads.
pub const LOG_FILE_MODE: u32 = 0o640;

/// A log file that can be reopened.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(open_append(path)?),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the path again: after a rename, new lines go to the new file.
    pub fn reopen(&self) -> io::Result<()> {
        let new = open_append(&self.path)?;
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = new;
        Ok(())
    }

    /// Appends `text`.
    pub fn append(&self, text: &[u8]) -> io::Result<()> {
        self.file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_all(text)
    }
}

impl Sink for LogFile {
    fn emit(&self, _level: Level, text: &[u8]) {
        if let Err(e) = self.append(text) {
            let mut err = io::stderr().lock();
            let _ = write!(err, "xlb: writing {}: {e}: ", self.path.display());
            let _ = err.write_all(text);
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(LOG_FILE_MODE)
        .open(path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xlb-logfile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn appends_and_after_a_rename_reopen_writes_to_a_new_file() {
        let dir = tmp("rotate");
        let path = dir.join("xlb.log");
        std::fs::write(&path, "earlier\n").unwrap();
        let f = LogFile::open(&path).unwrap();
        f.append(b"one\n").unwrap();
        std::fs::rename(&path, dir.join("xlb.log.1")).unwrap();
        f.append(b"two\n").unwrap();
        f.reopen().unwrap();
        f.append(b"three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("xlb.log.1")).unwrap(),
            "earlier\none\ntwo\n",
            "appended, and the moved file kept until reopen"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !LOG_FILE_MODE, 0, "created at most 0640: {mode:o}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reopen_that_fails_keeps_the_old_file() {
        let dir = tmp("gone");
        let path = dir.join("sub/xlb.log");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let f = LogFile::open(&path).unwrap();
        std::fs::rename(dir.join("sub"), dir.join("moved")).unwrap();
        assert!(f.reopen().is_err(), "the directory is gone");
        f.append(b"still logged\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("moved/xlb.log")).unwrap(),
            "still logged\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
