//! The pin directory (default `/sys/fs/bpf/xlb`): one file per map and one `link_<ifname>`
//! per attached interface. Checking it is a bpffs that only root can change, reading what
//! is pinned there, and removing it all (`xlb teardown`).

use std::{
    fs,
    os::unix::fs::{DirBuilderExt, MetadataExt},
    path::{Path, PathBuf},
};

use aya::maps::{Array, Map, MapData};
use lb_common::{ABI_VERSION, Meta, map_names};

use crate::dataplane::DataPlaneError;

pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/xlb";

/// The suffix of a grown map's pin before it is renamed over the map's own (`grow`).
pub(super) const GROWN_SUFFIX: &str = "_grown";

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

/// Why a pin directory is refused: someone other than root could replace what is pinned
/// there (a map the program reads, a link), and so steer or stop forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsafe {
    NotRootOwned { uid: u32 },
    WritableByOthers { mode: u32 },
}

/// The rule on one directory's owner and mode: root's, and at most 0755 (no group or
/// world write).
pub fn check_owner_mode(uid: u32, mode: u32) -> Result<(), Unsafe> {
    if uid != 0 {
        return Err(Unsafe::NotRootOwned { uid });
    }
    if mode & 0o022 != 0 {
        return Err(Unsafe::WritableByOthers {
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Checks `dir` and its parents on the same bpffs, up to but not including the mount
/// point (the directories xlb would create; a bpffs root is commonly 1777, as /tmp is, or
/// 0700 as systemd mounts it).
fn check_chain(dir: &Path) -> Result<(), DataPlaneError> {
    let meta = |p: &Path| {
        fs::metadata(p).map_err(|source| DataPlaneError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let mut here = dir.to_path_buf();
    let mut m = meta(&here)?;
    loop {
        let parent = here.parent().map(Path::to_path_buf);
        let above = match &parent {
            Some(p) => Some(meta(p)?),
            None => None,
        };
        if above.as_ref().is_none_or(|a| a.dev() != m.dev()) {
            return Ok(()); // `here` is the mount point
        }
        check_owner_mode(m.uid(), m.mode()).map_err(|why| DataPlaneError::UnsafePinDir {
            path: here.clone(),
            why,
        })?;
        here = parent.expect("has a parent on the same filesystem");
        m = above.expect("read with the parent");
    }
}

/// Creates `dir` if need be (0700, parents too) and checks that it is on a BPF filesystem
/// and that only root can change it.
pub(super) fn ensure_bpffs(dir: &Path) -> Result<(), DataPlaneError> {
    let io = |source| DataPlaneError::Io {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
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
    check_chain(dir)
}

/// The pin file of the link on `ifname` (bpffs rejects '.', as in `eth0.100`).
pub fn link_pin_path(dir: &Path, ifname: &str) -> PathBuf {
    dir.join(format!("link_{}", ifname.replace('.', "_")))
}

/// Detaches every pinned link under `dir` (even one a process still holds) and removes the
/// pinned maps: forwarding stops and the connection table is gone. Returns what was
/// removed.
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
            n.starts_with("link_")
                || map_names::ALL.contains(&n)
                || map_names::LEGACY.contains(&n)
                // A grown map staged beside its pin by a run that died before the rename.
                || n.strip_suffix(GROWN_SUFFIX)
                    .is_some_and(|stem| map_names::ALL.contains(&stem))
        });
        if !ours {
            continue;
        }
        if name.as_deref().is_some_and(|n| n.starts_with("link_")) {
            // Unpinning alone leaves the program attached while any process (a daemon
            // that is hung, under `--force`) still holds the link: detach it first.
            let _ = detach_pinned_link(&path);
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

/// `bpftool link detach pinned PATH`: the program leaves the interface at once, whoever
/// holds the link (aya has no call for `BPF_LINK_DETACH`).
fn detach_pinned_link(path: &Path) -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_LINK_DETACH: libc::c_long = 34;
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // union bpf_attr, the BPF_OBJ_GET part: pathname, bpf_fd, file_flags.
    #[repr(C)]
    struct ObjGet {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    let get = ObjGet {
        pathname: c.as_ptr() as u64,
        bpf_fd: 0,
        file_flags: 0,
    };
    let fd = bpf(BPF_OBJ_GET, &get)?;
    // SAFETY: BPF_OBJ_GET returned a new descriptor that we own from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The BPF_LINK_DETACH part: link_fd.
    bpf(BPF_LINK_DETACH, &(fd.as_raw_fd() as u32))?;
    Ok(())
}

/// The `bpf(2)` system call with `attr`, a fully initialised prefix of `union bpf_attr`.
fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is valid for reads of its size, which is passed; pointers inside it
    // (a path) are the caller's and outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_dir_must_be_roots_and_not_writable_by_others() {
        assert_eq!(check_owner_mode(0, 0o40700), Ok(()));
        assert_eq!(check_owner_mode(0, 0o40755), Ok(()), "0755 at most");
        assert_eq!(
            check_owner_mode(0, 0o40777),
            Err(Unsafe::WritableByOthers { mode: 0o777 })
        );
        assert_eq!(
            check_owner_mode(0, 0o41777),
            Err(Unsafe::WritableByOthers { mode: 0o1777 })
        );
        assert_eq!(
            check_owner_mode(0, 0o40770),
            Err(Unsafe::WritableByOthers { mode: 0o770 })
        );
        assert_eq!(
            check_owner_mode(1000, 0o40700),
            Err(Unsafe::NotRootOwned { uid: 1000 })
        );
    }

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
            "xlb_table_grown",
            "notes.txt",
            "notes_grown",
        ] {
            fs::write(dir.join(name), "").unwrap();
        }
        let removed = teardown(&dir).unwrap();
        assert_eq!(removed.len(), 4, "{removed:?}");
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
