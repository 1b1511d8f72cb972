//! Typed handles on every map of the XDP program ([`Maps`]), taken from a freshly loaded
//! program or opened from the pins of a running one (`xlb status`, `xlb conns`).

use std::path::Path;

use aya::maps::{Array, HashMap, Map, MapData, PerCpuArray};
use lb_common::{
    Counters, Meta, PersistKey, PersistValue, RealConns, RealServer, ServiceInfo, ServiceKey,
    map_names,
};

use crate::dataplane::{
    DataPlaneError, conn_table::Tables, mmap::MappedArray, pins::check_abi, sizing::MapSizes,
};

/// Typed handles on every map.
pub struct Maps {
    pub services: HashMap<MapData, ServiceKey, ServiceInfo>,
    /// Written through syscalls; read through `reals_view`.
    pub reals: Array<MapData, RealServer>,
    pub reals_view: MappedArray<RealServer>,
    /// The scheduling-table arena, as memory.
    pub table: MappedArray<u32>,
    /// The connection tables: read them through [`Maps::conn_tables`].
    conns4: MapData,
    conns6: MapData,
    pub conn_evictions: PerCpuArray<MapData, u64>,
    pub persist: HashMap<MapData, PersistKey, PersistValue>,
    pub cursors: PerCpuArray<MapData, u32>,
    pub svc_state: Array<MapData, u32>,
    pub service_stats: PerCpuArray<MapData, Counters>,
    pub real_stats: PerCpuArray<MapData, Counters>,
    pub drops: PerCpuArray<MapData, u64>,
    pub passes: PerCpuArray<MapData, u64>,
    /// ICMP "fragmentation needed" (0) / ICMPv6 "packet too big" (1) forwarded.
    pub icmp_forwarded: PerCpuArray<MapData, u64>,
    /// NAT replies translated back to the VIP, per `lb_common::NatEvent`.
    pub nat_stats: PerCpuArray<MapData, u64>,
    /// The NAT real servers' endpoints (written by `sync`).
    pub nat_reals: HashMap<MapData, ServiceKey, u32>,
    pub meta: Array<MapData, Meta>,
    /// ActiveConn / InActConn per real-server slot for the counting schedulers, as
    /// memory (`real_conns`: the controller writes only its correction field).
    pub real_conns: MappedArray<RealConns>,
}

fn typed<T: TryFrom<Map, Error = aya::maps::MapError>>(
    name: &'static str,
    map: Option<Map>,
) -> Result<T, DataPlaneError> {
    let map = map.ok_or(DataPlaneError::MissingMap(name))?;
    T::try_from(map).map_err(|source| DataPlaneError::Map { name, source })
}

fn mapped<T: Copy>(
    name: &'static str,
    data: &MapData,
    len: u32,
    writable: bool,
) -> Result<MappedArray<T>, DataPlaneError> {
    MappedArray::new(data, len, writable).map_err(|source| DataPlaneError::Mmap { name, source })
}

/// The entries of an array map (its size is set at load: `sizing`).
fn entries(name: &'static str, data: &MapData) -> Result<u32, DataPlaneError> {
    data.info()
        .map(|i| i.max_entries())
        .map_err(|source| DataPlaneError::Map { name, source })
}

/// An array map's handle, untyped (for mmap).
fn array_data(name: &'static str, map: Option<Map>) -> Result<MapData, DataPlaneError> {
    match map.ok_or(DataPlaneError::MissingMap(name))? {
        Map::Array(data) => Ok(data),
        _ => Err(DataPlaneError::NotAnArray(name)),
    }
}

impl Maps {
    pub(super) fn build(
        mut take: impl FnMut(&'static str) -> Result<Option<Map>, DataPlaneError>,
    ) -> Result<Self, DataPlaneError> {
        use map_names::*;
        let reals = array_data(REALS, take(REALS)?)?;
        let reals_view = mapped(REALS, &reals, entries(REALS, &reals)?, false)?;
        let table = array_data(TABLE, take(TABLE)?)?;
        let table_len = entries(TABLE, &table)?;
        Ok(Self {
            services: typed(SERVICES, take(SERVICES)?)?,
            reals: typed(REALS, Some(Map::Array(reals)))?,
            reals_view,
            table: mapped(TABLE, &table, table_len, true)?,
            conns4: array_data(CONNS4, take(CONNS4)?)?,
            conns6: array_data(CONNS6, take(CONNS6)?)?,
            conn_evictions: typed(CONN_EVICTIONS, take(CONN_EVICTIONS)?)?,
            persist: typed(PERSIST, take(PERSIST)?)?,
            cursors: typed(CURSORS, take(CURSORS)?)?,
            svc_state: typed(SVC_STATE, take(SVC_STATE)?)?,
            service_stats: typed(SERVICE_STATS, take(SERVICE_STATS)?)?,
            real_stats: typed(REAL_STATS, take(REAL_STATS)?)?,
            drops: typed(DROPS, take(DROPS)?)?,
            passes: typed(PASSES, take(PASSES)?)?,
            icmp_forwarded: typed(ICMP_FORWARDED, take(ICMP_FORWARDED)?)?,
            nat_stats: typed(NAT_STATS, take(NAT_STATS)?)?,
            nat_reals: typed(NAT_REALS, take(NAT_REALS)?)?,
            meta: typed(META, take(META)?)?,
            real_conns: {
                let data = array_data(REAL_CONNS, take(REAL_CONNS)?)?;
                let len = entries(REAL_CONNS, &data)?;
                mapped(REAL_CONNS, &data, len, true)?
            },
        })
    }

    /// The entries of the sized maps as loaded (`sizing`).
    pub fn sizes(&self) -> MapSizes {
        MapSizes {
            reals: self.reals_view.len() as u32,
            table: self.table.len() as u32,
        }
    }

    /// The connection tables, mapped into this process.
    pub fn conn_tables(&self, writable: bool) -> Result<Tables, DataPlaneError> {
        let meta = self.meta.get(&0, 0).map_err(|source| DataPlaneError::Map {
            name: map_names::META,
            source,
        })?;
        let b4 = entries(map_names::CONNS4, &self.conns4)?;
        let b6 = entries(map_names::CONNS6, &self.conns6)?;
        Tables::open(&self.conns4, b4, &self.conns6, b6, &meta, writable).map_err(|source| {
            DataPlaneError::Mmap {
                name: "xlb_conns4, xlb_conns6",
                source,
            }
        })
    }

    /// Takes the connection tables of `grown` (loaded over the same pinned maps, with
    /// bigger connection tables: `conn_grow`) in place of these.
    pub fn take_conn_tables(&mut self, grown: Maps) {
        self.conns4 = grown.conns4;
        self.conns6 = grown.conns6;
    }

    /// The IPv4 and IPv6 slots of the connection tables.
    pub fn conn_slots(&self) -> Result<(u32, u32), DataPlaneError> {
        let ways = lb_common::CONN_WAYS as u32;
        Ok((
            entries(map_names::CONNS4, &self.conns4)? * ways,
            entries(map_names::CONNS6, &self.conns6)? * ways,
        ))
    }

    /// Opens the maps pinned under `dir` (for `xlb status`; needs no program).
    pub fn from_pins(dir: &Path) -> Result<Self, DataPlaneError> {
        check_abi(dir)?;
        Self::build(|name| {
            let path = dir.join(name);
            let data =
                MapData::from_pin(&path).map_err(|source| DataPlaneError::Map { name, source })?;
            Map::from_map_data(data)
                .map(Some)
                .map_err(|source| DataPlaneError::Map { name, source })
        })
    }
}
