//! Growing a map under traffic (`sizing` and `conn_grow` say when): the loaded program's
//! new, larger map takes the pinned map's entries, then the program takes every pinned
//! link, then the new map takes the pin. Until the links are swapped the old program runs
//! over the old map; after, the new program runs over the copy.
//!
//! - The sized maps (`xlb_reals`, `xlb_real_stats`, `xlb_table`) are written by the
//!   controller only, which writes nothing meanwhile: one copy is all. `xlb_real_conns`
//!   (sized as `xlb_reals`) the program adds to as well: one copy, and the next recount
//!   puts right what the old program counted after it.
//! - The connection tables are the program's: what the old program recorded between the
//!   first copy and the swap is copied again after it, each entry only if the new table
//!   does not hold its key (`conn_grow::copy_live`).
//!
//! A crash at any point leaves a pinned map that matches what is pinned around it: the
//! old one (before the rename, with its entries), or the full copy (after). A grown map
//! is pinned first beside the old one (`<name>_grown`, which `xlb teardown` removes),
//! then renamed over it: the name always holds a map.

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
use lb_common::{
    ConnBucket4, ConnBucket6, Counters, PROGRAM_NAME, RealConns, RealServer, Timeouts, map_names,
};
use tracing::{info, warn};

use crate::dataplane::{
    DataPlaneError,
    conn_grow::{self, Bucket, Copied},
    conn_table::now_ticks,
    mmap::MappedArray,
    pins::GROWN_SUFFIX,
};

/// What copying connection-table entries needs: the tables' hash seed and the timeouts
/// that say which entries are live.
#[derive(Clone, Copy, Debug)]
pub(super) struct TableParams {
    pub seed: u32,
    pub timeouts: Timeouts,
}

/// Grows each `(name, from, to)` of `growing`: `ebpf` holds the loaded program and the
/// new, unpinned maps; the old ones are pinned under `pin_dir`.
pub(super) fn grow(
    ebpf: &mut Ebpf,
    pin_dir: &Path,
    growing: &[(&'static str, u32, u32)],
    tables: TableParams,
) -> Result<(), DataPlaneError> {
    // Every copy first, then the swap and the renames: a failed copy leaves every pin as
    // it was (and the old program in every link).
    let mut firsts = Vec::with_capacity(growing.len());
    for &(name, from, to) in growing {
        let path = pin_dir.join(name);
        let old =
            MapData::from_pin(&path).map_err(|source| DataPlaneError::Map { name, source })?;
        let new = ebpf.map_mut(name).ok_or(DataPlaneError::MissingMap(name))?;
        let first = copy(name, old, new, from, to, tables)?;
        // Pinned beside the old map, then renamed over it: the name always holds a map.
        let staged = pin_dir.join(format!("{name}{GROWN_SUFFIX}"));
        let _ = fs::remove_file(&staged);
        new.pin(&staged).map_err(|source| DataPlaneError::Pin {
            path: staged.clone(),
            source,
        })?;
        firsts.push(first);
    }
    swap_links(ebpf, pin_dir)?;
    for (&(name, from, to), first) in growing.iter().zip(firsts) {
        let path = pin_dir.join(name);
        if is_conn_table(name) {
            // The old program's last entries: those the new one has not seen yet.
            let old =
                MapData::from_pin(&path).map_err(|source| DataPlaneError::Map { name, source })?;
            let new = ebpf.map_mut(name).ok_or(DataPlaneError::MissingMap(name))?;
            let second = copy(name, old, new, from, to, tables)?.unwrap_or_default();
            let first = first.unwrap_or_default();
            info!(
                map = name,
                from_buckets = from,
                to_buckets = to,
                copied = first.copied,
                copied_after_swap = second.copied,
                left_out = first.left_out + second.left_out,
                "connection table grown (entries kept)"
            );
            if first.left_out + second.left_out > 0 {
                warn!(
                    map = name,
                    left_out = first.left_out + second.left_out,
                    "connection table growth: entries left out, their new bucket full of \
                     live flows (those flows are scheduled again)"
                );
            }
        }
        let staged = pin_dir.join(format!("{name}{GROWN_SUFFIX}"));
        fs::rename(&staged, &path).map_err(|source| DataPlaneError::Io {
            path: path.clone(),
            source,
        })?;
        if !is_conn_table(name) {
            info!(
                map = name,
                from, to, "map grown for the config (entries kept)"
            );
        }
    }
    Ok(())
}

fn is_conn_table(name: &str) -> bool {
    name == map_names::CONNS4 || name == map_names::CONNS6
}

/// Copies every live entry of connection table `old` (`from` buckets) into `new` (`to`).
fn copy_table<B: Bucket>(
    old: &MapData,
    new: &mut MapData,
    from: u32,
    to: u32,
    tables: TableParams,
) -> std::io::Result<Copied> {
    let old = MappedArray::<B>::new(old, from, false)?;
    let mut new = MappedArray::<B>::new(new, to, true)?;
    Ok(conn_grow::copy_live(
        &old,
        &mut new,
        tables.seed,
        now_ticks(),
        &tables.timeouts,
    ))
}

/// Copies the first `n` (`from`) entries of `old` into `new` (both arrays of `name`'s
/// type); a connection table's live entries into their buckets of `to` (what it copied).
fn copy(
    name: &'static str,
    old: MapData,
    new: &mut Map,
    from: u32,
    to: u32,
    tables: TableParams,
) -> Result<Option<Copied>, DataPlaneError> {
    let n = from;
    let mmap_err = |source| DataPlaneError::Mmap { name, source };
    match (name, new) {
        (map_names::CONNS4, Map::Array(new)) => {
            let c = copy_table::<ConnBucket4>(&old, new, from, to, tables).map_err(mmap_err)?;
            return Ok(Some(c));
        }
        (map_names::CONNS6, Map::Array(new)) => {
            let c = copy_table::<ConnBucket6>(&old, new, from, to, tables).map_err(mmap_err)?;
            return Ok(Some(c));
        }
        (map_names::REALS, Map::Array(new)) => {
            let from = MappedArray::<RealServer>::new(&old, n, false).map_err(mmap_err)?;
            let mut to = MappedArray::<RealServer>::new(new, n, true).map_err(mmap_err)?;
            for i in 0..n as usize {
                to.set(i, from.get(i));
            }
        }
        (map_names::REAL_CONNS, Map::Array(new)) => {
            // The program adds to the old map until the links are swapped: what it added
            // meanwhile is lost here and put right by the next recount (`real_conns`).
            let from = MappedArray::<RealConns>::new(&old, n, false).map_err(mmap_err)?;
            let mut to = MappedArray::<RealConns>::new(new, n, true).map_err(mmap_err)?;
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
    Ok(None)
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
