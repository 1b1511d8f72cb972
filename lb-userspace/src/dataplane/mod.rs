//! The XDP data plane as the controller sees it: load (or adopt) the pinned maps, load the
//! program, attach it through pinned links, and tear it all down on request.
//!
//! Everything lives under one pin directory (default `/sys/fs/bpf/xlb`):
//! - one file per map (`lb_common::map_names`), so `bpftool map dump pinned DIR/xlb_services`
//!   works and a restarted controller finds the same maps, connection table included;
//! - one `link_<interface>` per attached interface: the kernel keeps the program attached
//!   while the pin exists, so forwarding goes on when the controller stops or crashes, and
//!   a restarted controller swaps its freshly loaded program into the same link
//!   atomically (`bpf_link_update`), without a moment with no program.

pub mod arena;
pub mod conns;
pub mod mmap;
pub mod plan;
pub mod sched;
pub mod sync;
pub mod view;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, Map, MapData, PerCpuArray},
    programs::{
        Xdp, XdpMode,
        links::{FdLink, LinkError, PinnedLink},
        xdp::XdpLink,
    },
};
use lb_common::{
    ABI_VERSION, Counters, Meta, PROGRAM_NAME, PersistKey, PersistValue, RealServer, ServiceInfo,
    ServiceKey, map_names,
};
use thiserror::Error;

use crate::dataplane::mmap::MappedArray;

pub const DEFAULT_PIN_PATH: &str = "/sys/fs/bpf/xlb";

/// The XDP object, built by `build.rs` with BTF and embedded here.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("XLB_EBPF_OBJECT"));

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, Error)]
pub enum DataPlaneError {
    #[error(
        "{0} is not on a BPF filesystem: mount one (`mount -t bpf bpf /sys/fs/bpf`) or pass \
         --pin-path on a bpffs"
    )]
    NotBpffs(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the maps pinned under {dir} have layout version {found}, this xlb uses {ABI_VERSION}: \
         remove them with `xlb teardown --pin-path {dir}` (this drops the connection table)"
    )]
    AbiMismatch { dir: PathBuf, found: u32 },
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("XDP program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("map {0} is missing")]
    MissingMap(&'static str),
    #[error("map {0} is not an array")]
    NotAnArray(&'static str),
    #[error("mapping {name}: {source}")]
    Mmap {
        name: &'static str,
        source: std::io::Error,
    },
    #[error("pinned link {path}: {source}")]
    Link { path: PathBuf, source: LinkError },
    #[error("pinning {path}: {source}")]
    Pin {
        path: PathBuf,
        source: aya::pin::PinError,
    },
    #[error(
        "attaching XDP to {ifname} in native (driver) mode failed: {source}. The driver may \
         not support XDP; pass --xdp-generic to use the slower generic mode"
    )]
    NativeAttach {
        ifname: String,
        source: aya::programs::ProgramError,
    },
}

/// How the program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) XDP; fails where the driver has none.
    Native,
    /// Generic (skb) XDP: works everywhere, at about half the speed.
    Generic,
}

impl AttachMode {
    fn xdp_mode(self) -> XdpMode {
        match self {
            Self::Native => XdpMode::Driver,
            Self::Generic => XdpMode::Skb,
        }
    }
}

/// Typed handles on every map.
pub struct Maps {
    pub services: HashMap<MapData, ServiceKey, ServiceInfo>,
    /// Written through syscalls; read through `reals_view`.
    pub reals: Array<MapData, RealServer>,
    pub reals_view: MappedArray<RealServer>,
    /// The scheduling-table arena, as memory.
    pub table: MappedArray<u32>,
    /// The connection tables: read them through [`Maps::conn_tables`].
    pub conns4: MapData,
    pub conns6: MapData,
    pub conn_evictions: PerCpuArray<MapData, u64>,
    pub persist: HashMap<MapData, PersistKey, PersistValue>,
    pub cursors: PerCpuArray<MapData, u32>,
    pub svc_state: Array<MapData, u32>,
    pub service_stats: PerCpuArray<MapData, Counters>,
    pub real_stats: PerCpuArray<MapData, Counters>,
    pub drops: PerCpuArray<MapData, u64>,
    pub passes: PerCpuArray<MapData, u64>,
    pub meta: Array<MapData, Meta>,
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

/// An array map's handle, untyped (for mmap).
fn array_data(name: &'static str, map: Option<Map>) -> Result<MapData, DataPlaneError> {
    match map.ok_or(DataPlaneError::MissingMap(name))? {
        Map::Array(data) => Ok(data),
        _ => Err(DataPlaneError::NotAnArray(name)),
    }
}

impl Maps {
    fn build(
        mut take: impl FnMut(&'static str) -> Result<Option<Map>, DataPlaneError>,
    ) -> Result<Self, DataPlaneError> {
        use map_names::*;
        let reals = array_data(REALS, take(REALS)?)?;
        let reals_view = mapped(REALS, &reals, lb_common::MAX_REALS, false)?;
        let table = array_data(TABLE, take(TABLE)?)?;
        Ok(Self {
            services: typed(SERVICES, take(SERVICES)?)?,
            reals: typed(REALS, Some(Map::Array(reals)))?,
            reals_view,
            table: mapped(TABLE, &table, lb_common::TABLE_CAPACITY, true)?,
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
            meta: typed(META, take(META)?)?,
        })
    }

    /// The connection tables, mapped into this process.
    pub fn conn_tables(
        &self,
        writable: bool,
    ) -> Result<crate::dataplane::conns::Tables, DataPlaneError> {
        let meta = self.meta.get(&0, 0).map_err(|source| DataPlaneError::Map {
            name: map_names::META,
            source,
        })?;
        let entries = |name, data: &MapData| {
            data.info()
                .map(|i| i.max_entries())
                .map_err(|source| DataPlaneError::Map { name, source })
        };
        let b4 = entries(map_names::CONNS4, &self.conns4)?;
        let b6 = entries(map_names::CONNS6, &self.conns6)?;
        crate::dataplane::conns::Tables::open(&self.conns4, b4, &self.conns6, b6, &meta, writable)
            .map_err(|source| DataPlaneError::Mmap {
                name: "xlb_conns4, xlb_conns6",
                source,
            })
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

/// The size of a map pinned under `dir`, if there is one.
fn pinned_entries(dir: &Path, name: &'static str) -> Result<Option<u32>, DataPlaneError> {
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
fn check_abi(dir: &Path) -> Result<Option<Meta>, DataPlaneError> {
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

fn ensure_bpffs(dir: &Path) -> Result<(), DataPlaneError> {
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

/// What the connection tables are made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnTableOptions {
    /// IPv4 slots when the tables are created (`global_defs.connection_table_size`).
    pub conn_slots: u32,
    /// Idle timeouts (`global_defs.lvs_timeouts`).
    pub timeouts: lb_common::Timeouts,
}

impl Default for ConnTableOptions {
    fn default() -> Self {
        Self {
            conn_slots: lb_common::MAX_CONNS,
            timeouts: lb_common::Timeouts::IPVS,
        }
    }
}

/// The loaded program and its maps.
pub struct DataPlane {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    attached: BTreeMap<String, AttachMode>,
}

impl DataPlane {
    /// [`DataPlane::load_with`] with the default connection tables.
    pub fn load(pin_dir: &Path) -> Result<(Self, Maps), DataPlaneError> {
        Self::load_with(pin_dir, ConnTableOptions::default())
    }

    /// Creates the maps under `pin_dir`, or adopts the ones already pinned there, and loads
    /// the program (not attached yet). New connection tables get `opts.conn_slots` IPv4
    /// slots (a power of two); pinned ones keep theirs, with a warning if that differs.
    /// The timeouts apply to every flow from this load on.
    pub fn load_with(
        pin_dir: &Path,
        opts: ConnTableOptions,
    ) -> Result<(Self, Maps), DataPlaneError> {
        let conn_slots = opts.conn_slots;
        ensure_bpffs(pin_dir)?;
        let pinned_meta = check_abi(pin_dir)?;
        // Adopted tables keep their seed: another one would lose every tracked flow.
        let conn_seed = pinned_meta
            .map(|m| m.conn_seed)
            .filter(|&s| s != 0)
            .unwrap_or_else(|| rand::random::<u32>().max(1));
        let (want4, want6) = lb_common::conn_buckets(conn_slots);
        let b4 = pinned_entries(pin_dir, map_names::CONNS4)?.unwrap_or(want4);
        let b6 = pinned_entries(pin_dir, map_names::CONNS6)?.unwrap_or(want6);
        if (b4, b6) != (want4, want6) {
            tracing::warn!(
                pinned_slots = b4 * lb_common::CONN_WAYS as u32,
                configured_slots = conn_slots,
                "the pinned connection tables keep their size; connection_table_size \
                 applies once `xlb teardown` removes them (that drops the connections)"
            );
        }
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries(map_names::CONNS4, b4)
            .map_max_entries(map_names::CONNS6, b6)
            .override_global(lb_common::CONN_BUCKETS4_GLOBAL, &b4, true)
            .override_global(lb_common::CONN_BUCKETS6_GLOBAL, &b6, true)
            .override_global(lb_common::CONN_SEED_GLOBAL, &conn_seed, true)
            .override_global(lb_common::CONN_TIMEOUTS_GLOBAL, &opts.timeouts, true);
        let paths: Vec<(&'static str, PathBuf)> = map_names::ALL
            .iter()
            .map(|n| (*n, pin_dir.join(n)))
            .collect();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(OBJECT)?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(DataPlaneError::MissingMap(PROGRAM_NAME))?
            .try_into()?;
        program.load()?;
        let maps = Maps::build(|name| Ok(ebpf.take_map(name)))?;
        let mut maps = maps;
        let meta_err = |source| DataPlaneError::Map {
            name: map_names::META,
            source,
        };
        maps.meta
            .set(
                0,
                Meta {
                    abi_version: ABI_VERSION,
                    conn_seed,
                    timeouts: opts.timeouts,
                },
                0,
            )
            .map_err(meta_err)?;
        Ok((
            Self {
                ebpf,
                pin_dir: pin_dir.to_path_buf(),
                attached: BTreeMap::new(),
            },
            maps,
        ))
    }

    /// The loaded XDP program (for `BPF_PROG_TEST_RUN` in tests).
    pub fn program(&mut self) -> Result<&mut Xdp, DataPlaneError> {
        Ok(self
            .ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(DataPlaneError::MissingMap(PROGRAM_NAME))?
            .try_into()?)
    }

    /// Attaches to `ifname`: replaces the program of an existing pinned link atomically, or
    /// creates and pins a new link. Returns true when an existing link was adopted.
    pub fn attach(
        &mut self,
        ifname: &str,
        ifindex: u32,
        mode: AttachMode,
    ) -> Result<bool, DataPlaneError> {
        let path = link_pin_path(&self.pin_dir, ifname);
        if path.exists() {
            match self.replace_in_pinned_link(&path) {
                Ok(()) => {
                    self.attached.insert(ifname.to_string(), mode);
                    return Ok(true);
                }
                Err(e) => {
                    // The interface was deleted (the link is defunct) or the pin is stale.
                    tracing::warn!(%ifname, error = %e, "pinned link unusable; attaching afresh");
                    let _ = fs::remove_file(&path);
                }
            }
        }
        let program = self.program()?;
        let id = program
            .attach_to_if_index(ifindex, mode.xdp_mode())
            .map_err(|source| match mode {
                AttachMode::Native => DataPlaneError::NativeAttach {
                    ifname: ifname.to_string(),
                    source,
                },
                AttachMode::Generic => DataPlaneError::Program(source),
            })?;
        let link: XdpLink = program.take_link(id)?;
        let fd_link = FdLink::try_from(link).map_err(|source| DataPlaneError::Link {
            path: path.clone(),
            source,
        })?;
        fd_link.pin(&path).map_err(|source| DataPlaneError::Pin {
            path: path.clone(),
            source,
        })?;
        self.attached.insert(ifname.to_string(), mode);
        Ok(false)
    }

    fn replace_in_pinned_link(&mut self, path: &Path) -> Result<(), DataPlaneError> {
        let pinned = PinnedLink::from_pin(path).map_err(|source| DataPlaneError::Link {
            path: path.to_path_buf(),
            source,
        })?;
        let link =
            XdpLink::try_from(FdLink::from(pinned)).map_err(|source| DataPlaneError::Link {
                path: path.to_path_buf(),
                source,
            })?;
        self.program()?.attach_to_link(link)?;
        Ok(())
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    pub fn attached(&self) -> impl Iterator<Item = (&str, AttachMode)> {
        self.attached.iter().map(|(k, v)| (k.as_str(), *v))
    }
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
