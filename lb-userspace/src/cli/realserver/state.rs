//! The state file: the sysctl values found before setup changed them, and the VIPs set up.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::RealServerError;

/// The state file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct State {
    /// sysctl name -> value found by the first setup that changed it.
    pub(super) saved_sysctls: BTreeMap<String, String>,
    /// VIPs set up and not yet torn down.
    pub(super) vips: BTreeSet<IpAddr>,
}

impl State {
    pub(super) fn load(path: &Path) -> Result<Option<State>, RealServerError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|source| {
                RealServerError::StateFormat {
                    path: path.to_owned(),
                    source,
                }
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RealServerError::StateIo {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes atomically (temporary file, then rename), creating the directory.
    pub(super) fn save(&self, path: &Path) -> Result<(), RealServerError> {
        let io_err = |source| RealServerError::StateIo {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut text = serde_json::to_string_pretty(self).expect("State serializes");
        text.push('\n');
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, text).map_err(io_err)?;
        std::fs::rename(&tmp, path).map_err(io_err)
    }
}
