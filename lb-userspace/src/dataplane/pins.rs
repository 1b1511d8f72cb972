//! The pin directory (default `/sys/fs/bpf/xlb`): one file per map and one `link_<ifname>`
//! per attached interface. Checking it is a bpffs, reading what is pinned there, and
//! removing it all (`xlb teardown`).

use std::{
    fs,
    path::{Path, PathBuf},
};

use aya::maps::{Array, Map, MapData};
use lb_common::{ABI_VERSION, Meta, map_names};

use crate::dataplane::DataPlaneError;

pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/xlb";

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The size of a map pinned under `dir`, if there is one.
pub(super) fn pinned_entries(
    dir: &Path,
    name: &'static str,
) -> Result<Option<u32>, DataPlaneError> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let data = MapData::from_pin(&path).map_err(|source| DataPlaneError::Map { name, source })?;
    let info = data
        .info()
        .map_err(|source| DataPlaneError::Map { name, source })?;
    Ok(Some(info.max_entries()))
}

/// Refuses pinned maps of another layout: reading them with this ABI would be garbage.
/// Returns the pinned `xlb_meta[0]`, if there is one.
pub(super) fn check_abi(dir: &Path) -> Result<Option<Meta>, DataPlaneError> {
    let path = dir.join(map_names::META);
    if !path.exists() {
        return Ok(None);
    }
    let map = MapData::from_pin(&path).map_err(|source| DataPlaneError::Map {
        name: map_names::META,
        source,
    })?;
    let meta: Array<MapData, Meta> =
        Array::try_from(Map::Array(map)).map_err(|source| DataPlaneError::Map {
            name: map_names::META,
            source,
        })?;
    let pinned = meta.get(&0, 0).map_err(|source| DataPlaneError::Map {
        name: map_names::META,
        source,
    })?;
    let found = pinned.abi_version;
    // 0: created by a controller that died before writing it; ours to take.
    if found != 0 && found != ABI_VERSION {
        return Err(DataPlaneError::AbiMismatch {
            dir: dir.to_path_buf(),
            found,
        });
    }
    Ok(Some(pinned))
}

/// Creates `dir` if need be and checks that it is on a BPF filesystem.
pub(super) fn ensure_bpffs(dir: &Path) -> Result<(), DataPlaneError> {
    let io = |source| DataPlaneError::Io {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| DataPlaneError::NotBpffs(dir.to_path_buf()))?;
    // SAFETY: statfs writes into the zeroed struct we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    if st.f_type as i64 != BPF_FS_MAGIC {
        return Err(DataPlaneError::NotBpffs(dir.to_path_buf()));
    }
    Ok(())
}

/// The pin file of the link on `ifname` (bpffs rejects '.', as in `eth0.100`).
pub fn link_pin_path(dir: &Path, ifname: &str) -> PathBuf {
    dir.join(format!("link_{}", ifname.replace('.', "_")))
}

/// Detaches every pinned link under `dir` and removes the pinned maps: forwarding stops and
/// the connection table is gone. Returns what was removed.
pub fn teardown(dir: &Path) -> Result<Vec<PathBuf>, DataPlaneError> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(source) => {
            return Err(DataPlaneError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // Links first: once unpinned the program detaches, then the maps can go.
    paths.sort_by_key(|p| {
        !p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("link_"))
    });
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let ours = name.as_deref().is_some_and(|n| {
            n.starts_with("link_") || map_names::ALL.contains(&n) || map_names::LEGACY.contains(&n)
        });
        if !ours {
            continue;
        }
        fs::remove_file(&path).map_err(|source| DataPlaneError::Io {
            path: path.clone(),
            source,
        })?;
        removed.push(path);
    }
    let _ = fs::remove_dir(dir);
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pins_are_named_after_the_interface_without_dots() {
        let dir = Path::new("/sys/fs/bpf/xlb");
        assert_eq!(
            link_pin_path(dir, "eth0.100"),
            Path::new("/sys/fs/bpf/xlb/link_eth0_100")
        );
    }

    #[test]
    fn teardown_removes_links_first_then_maps_and_leaves_other_files() {
        let dir = std::env::temp_dir().join(format!("xlb-pins-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for name in [
            map_names::SERVICES,
            "link_eth0",
            map_names::LEGACY[0],
            "notes.txt",
        ] {
            fs::write(dir.join(name), "").unwrap();
        }
        let removed = teardown(&dir).unwrap();
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert_eq!(removed[0], dir.join("link_eth0"), "links first");
        assert!(
            dir.join("notes.txt").exists(),
            "not ours: kept, and so is the directory"
        );
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            teardown(&dir).unwrap(),
            Vec::<PathBuf>::new(),
            "nothing there"
        );
    }
}
