//! The bench programs of lb-ebpf/src/bench/: loading them out of the object that xlb
//! embeds (their config structs are `lb_common::bench`), their maps, and the context a
//! `BPF_PROG_TEST_RUN` of an XDP program starts from.

use anyhow::{Context as _, Result, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, PerCpuArray},
    programs::{Program, Xdp},
};
use lb_common::map_names;

/// Loads the object with xlb's own maps shrunk to one entry (unused here) and the given
/// bench map sizes, then loads (verifies) the named programs.
pub fn load(programs: &[&str], sizes: &[(&str, u32)]) -> Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    for name in map_names::ALL {
        loader.map_max_entries(name, 1);
    }
    for (name, size) in sizes {
        loader.map_max_entries(name, *size);
    }
    let mut ebpf = loader
        .load(xlb::dataplane::OBJECT)
        .context("loading the XDP object (bench programs)")?;
    for name in programs {
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing from the object"))?
            .try_into()?;
        prog.load().with_context(|| format!("verifying {name}"))?;
    }
    Ok(ebpf)
}

/// The `struct xdp_md` of a test run: a frame of `len` bytes received on `ifindex`.
pub fn xdp_md(ifindex: u32, len: usize) -> Vec<u8> {
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
    // egress_ifindex.
    let ctx: [u32; 6] = [0, len as u32, 0, ifindex, 0, 0];
    ctx.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

pub fn xdp<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a Xdp> {
    let p: &Program = ebpf
        .program(name)
        .with_context(|| format!("program {name} missing"))?;
    Ok(p.try_into()?)
}

pub fn xdp_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    Ok(ebpf
        .program_mut(name)
        .with_context(|| format!("program {name} missing"))?
        .try_into()?)
}

/// Sum over CPUs of slot 0 of a per-CPU u64 counter map.
pub fn percpu_sum(ebpf: &Ebpf, map: &str) -> Result<u64> {
    let m = ebpf
        .map(map)
        .with_context(|| format!("map {map} missing"))?;
    let a: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(m)?;
    Ok(a.get(&0, 0)?.iter().sum())
}

/// A second handle on a one-entry config map, by id: it can be written while a program of
/// the object runs on another thread (the object itself is borrowed by that thread).
pub fn cfg_handle<T: aya::Pod>(ebpf: &Ebpf, map: &str) -> Result<Array<MapData, T>> {
    let m = ebpf
        .map(map)
        .with_context(|| format!("map {map} missing"))?;
    let id = match m {
        aya::maps::Map::Array(d) => d.info()?.id(),
        _ => bail!("map {map} is not an array"),
    };
    Ok(Array::try_from(aya::maps::Map::Array(MapData::from_id(
        id,
    )?))?)
}

pub fn set_cfg<T: aya::Pod>(ebpf: &mut Ebpf, map: &str, value: T) -> Result<()> {
    let m = ebpf
        .map_mut(map)
        .with_context(|| format!("map {map} missing"))?;
    let mut a: Array<&mut MapData, T> = Array::try_from(m)?;
    a.set(0, value, 0)?;
    Ok(())
}
