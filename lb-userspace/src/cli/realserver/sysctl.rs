//! sysctls read and written as files under a root (`/proc/sys`, a directory in tests).

use std::path::{Path, PathBuf};

use super::RealServerError;

/// sysctls as files under a root (`/proc/sys`).
pub(super) struct Sysctls<'a>(pub(super) &'a Path);

impl Sysctls<'_> {
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name.replace('.', "/"))
    }

    pub(super) fn read(&self, name: &str) -> Result<String, RealServerError> {
        let path = self.path(name);
        std::fs::read_to_string(&path)
            .map(|v| v.trim().to_owned())
            .map_err(|source| RealServerError::ReadSysctl {
                name: name.to_owned(),
                path,
                source,
            })
    }

    pub(super) fn write(&self, name: &str, value: &str) -> Result<(), RealServerError> {
        let path = self.path(name);
        std::fs::write(&path, format!("{value}\n")).map_err(|source| RealServerError::WriteSysctl {
            name: name.to_owned(),
            path,
            source,
        })
    }
}
