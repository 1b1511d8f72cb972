//! Growing a sized map under traffic (`sizing` says when): the loaded program's new,
//! larger map takes the pinned map's entries, then its pin, then the program takes every
//! pinned link. Until the links are swapped the old program runs over the old map, whose
//! entries nothing changes any more; after, the new program runs over the copy. A crash
//! at any point leaves a pinned map that matches what is pinned around it: the old one
//! (before the rename), or its full copy (after).

use std::{fs, path::Path};

use aya::{
    Ebpf,
    maps::{Map, MapData, PerCpuArray},
    programs::{
        Xdp,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use lb_common::{Counters, PROGRAM_NAME, RealServer, map_names};
use tracing::{info, warn};

use crate::dataplane::{DataPlaneError, mmap::MappedArray, pins::GROWN_SUFFIX};

/// Grows each `(name, from, to)` of `growing`: `ebpf` holds the loaded program and the
/// new, unpinned maps; the old ones are pinned under `pin_dir`.
pub(super) fn grow(
    ebpf: &mut Ebpf,
    pin_dir: &Path,
    growing: &[(&'static str, u32, u32)],
) -> Result<(), DataPlaneError> {
    // Every copy first, then the renames: a failed copy leaves every pin as it was.
    for &(name, from, _) in growing {
        let path = pin_dir.join(name);
        let old =
            MapData::from_pin(&path).map_err(|source| DataPlaneError::Map { name, source })?;
        let new = ebpf.map_mut(name).ok_or(DataPlaneError::MissingMap(name))?;
        copy(name, old, new, from)?;
        // Pinned beside the old map, then renamed over it: the name always holds a map.
        let staged = pin_dir.join(format!("{name}{GROWN_SUFFIX}"));
        let _ = fs::remove_file(&staged);
        new.pin(&staged).map_err(|source| DataPlaneError::Pin {
            path: staged.clone(),
            source,
        })?;
    }
    for &(name, from, to) in growing {
        let path = pin_dir.join(name);
        let staged = pin_dir.join(format!("{name}{GROWN_SUFFIX}"));
        fs::rename(&staged, &path).map_err(|source| DataPlaneError::Io {
            path: path.clone(),
            source,
        })?;
        info!(
            map = name,
            from, to, "map grown for the config (entries kept)"
        );
    }
    swap_links(ebpf, pin_dir)
}

/// Copies the first `n` entries of `old` into `new` (both arrays of `name`'s type).
fn copy(name: &'static str, old: MapData, new: &mut Map, n: u32) -> Result<(), DataPlaneError> {
    let mmap_err = |source| DataPlaneError::Mmap { name, source };
    match (name, new) {
        (map_names::REALS, Map::Array(new)) => {
            let from = MappedArray::<RealServer>::new(&old, n, false).map_err(mmap_err)?;
            let mut to = MappedArray::<RealServer>::new(new, n, true).map_err(mmap_err)?;
            for i in 0..n as usize {
                to.set(i, from.get(i));
            }
        }
        (map_names::TABLE, Map::Array(new)) => {
            let from = MappedArray::<u32>::new(&old, n, false).map_err(mmap_err)?;
            let mut to = MappedArray::<u32>::new(new, n, true).map_err(mmap_err)?;
            for i in 0..n as usize {
                to.set(i, from.get(i));
            }
        }
        (map_names::REAL_STATS, new @ Map::PerCpuArray(_)) => {
            let map_err = |source| DataPlaneError::Map { name, source };
            let from: PerCpuArray<MapData, Counters> =
                PerCpuArray::try_from(Map::PerCpuArray(old)).map_err(map_err)?;
            let mut to: PerCpuArray<&mut MapData, Counters> =
                PerCpuArray::try_from(new).map_err(map_err)?;
            for i in 0..n {
                let values = from.get(&i, 0).map_err(map_err)?;
                if values.iter().any(|c| *c != Counters::default()) {
                    to.set(i, values, 0).map_err(map_err)?;
                }
            }
        }
        _ => return Err(DataPlaneError::NotAnArray(name)),
    }
    Ok(())
}

/// Swaps the loaded program into every link pinned under `pin_dir`, atomically per link.
/// A link that cannot take it (its interface was deleted) is left for `attach`.
fn swap_links(ebpf: &mut Ebpf, pin_dir: &Path) -> Result<(), DataPlaneError> {
    let program: &mut Xdp = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or(DataPlaneError::MissingMap(PROGRAM_NAME))?
        .try_into()?;
    let entries = fs::read_dir(pin_dir).map_err(|source| DataPlaneError::Io {
        path: pin_dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with("link_") {
            continue;
        }
        let swapped = PinnedLink::from_pin(&path)
            .map_err(|e| e.to_string())
            .and_then(|pinned| XdpLink::try_from(FdLink::from(pinned)).map_err(|e| e.to_string()))
            .and_then(|link| program.attach_to_link(link).map_err(|e| e.to_string()))
            .and_then(|id| program.take_link(id).map_err(|e| e.to_string()))
            .and_then(|link| FdLink::try_from(link).map_err(|e| e.to_string()));
        match swapped {
            // Our handle closes; the pin keeps the link, now running this program.
            Ok(_link) => {}
            Err(e) => warn!(link = %path.display(), error = %e, "pinned link not swapped"),
        }
    }
    Ok(())
}
