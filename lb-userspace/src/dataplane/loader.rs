//! Loading the XDP program over the pinned maps (created or adopted) and attaching it
//! through pinned links, which outlive the controller. The loaded [`DataPlane`] also keeps
//! its own handle on every link and map it pinned, so that a pin someone removes can be
//! pinned again (the watchdog's repairs) without a moment of not forwarding.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::MapData,
    programs::{
        Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use lb_common::{ABI_VERSION, Meta, PROGRAM_NAME, map_names};

use crate::dataplane::{
    DataPlaneError, conn_grow, grow,
    maps::Maps,
    pins::{check_abi, ensure_bpffs, link_pin_path, pinned_entries},
    sizing::{Fate, MapSizes},
};

/// The XDP object, built by `build.rs` with BTF and embedded here.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("XLB_EBPF_OBJECT"));

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

/// What the maps are made with: the connection tables, and the sizes of the maps sized
/// from the config (`sizing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnTableOptions {
    /// The most IPv4 slots the connection tables grow to
    /// (`global_defs.connection_table_size`; `conn_grow`).
    pub conn_slots: u32,
    /// IPv4 slots when the tables are created (`global_defs.connection_table_start_size`,
    /// never above `conn_slots`).
    pub conn_start: u32,
    /// Grow pinned tables smaller than this many IPv4 slots to it (the daemon's decision,
    /// `conn_grow::grow_to`); None: pinned tables keep their size.
    pub conn_grow_to: Option<u32>,
    /// Idle timeouts (`global_defs.lvs_timeouts`).
    pub timeouts: lb_common::Timeouts,
    /// Entries of `xlb_reals`, `xlb_real_stats` and `xlb_table` (pinned maps keep theirs
    /// when big enough and are grown otherwise).
    pub map_sizes: MapSizes,
}

impl Default for ConnTableOptions {
    fn default() -> Self {
        Self {
            conn_slots: lb_common::MAX_CONNS,
            conn_start: lb_common::MAX_CONNS,
            conn_grow_to: None,
            timeouts: lb_common::Timeouts::IPVS,
            map_sizes: MapSizes::MAX,
        }
    }
}

/// The loaded program and its maps.
pub struct DataPlane {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    attached: BTreeMap<String, Attachment>,
    /// Our own handle on every pinned map, by name: what re-pins one that was removed.
    pinned_maps: Vec<(&'static str, MapData)>,
}

/// One interface the program is attached to.
struct Attachment {
    ifindex: u32,
    mode: AttachMode,
    /// Our handle on the link (it is pinned too): the link stays while we hold it, so
    /// removing its pin alone does not detach the program. None only if pinning it again
    /// failed (then the kernel has let it go).
    link: Option<FdLink>,
}

impl DataPlane {
    /// [`DataPlane::load_with`] with the default connection tables.
    pub fn load(pin_dir: &Path) -> Result<(Self, Maps), DataPlaneError> {
        Self::load_with(pin_dir, ConnTableOptions::default())
    }

    /// Creates the maps under `pin_dir`, or adopts the ones already pinned there, and loads
    /// the program (not attached yet). New connection tables get `opts.conn_start` IPv4
    /// slots (never above `opts.conn_slots`); pinned ones keep theirs (with a warning if
    /// above `opts.conn_slots`) unless `opts.conn_grow_to` is more: then they grow as the
    /// sized maps do, with a second copy after the swap (`conn_grow`). The timeouts apply
    /// to every flow from this load on. A sized map pinned smaller than `opts.map_sizes`
    /// is grown (`sizing`): its entries copied into a new map pinned in
    /// its place, and the new program swapped into every pinned link at once, so that the
    /// old program never reads what is written to the new map.
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
        let start = lb_common::conn_buckets(conn_grow::start_slots(opts.conn_start, conn_slots));
        let max = lb_common::conn_buckets(conn_slots);
        let grow_to = opts.conn_grow_to.map(lb_common::conn_buckets);
        let pinned4 = pinned_entries(pin_dir, map_names::CONNS4)?;
        if let Some(p) = pinned4.filter(|&p| p > max.v4) {
            tracing::warn!(
                pinned_slots = p * lb_common::CONN_WAYS as u32,
                connection_table_size = conn_slots,
                "the pinned connection tables are bigger than connection_table_size: they \
                 keep their size (a pinned table never shrinks; `xlb teardown` removes it, \
                 and its connections)"
            );
        }
        let mut growing = Vec::new();
        let mut conn_fate =
            |name: &'static str, pinned: Option<u32>, start: u32, to: Option<u32>| {
                let fate = match (pinned, to) {
                    (None, _) => Fate::Create(start),
                    (Some(p), Some(to)) => Fate::of(Some(p), to),
                    (Some(p), None) => Fate::Keep(p),
                };
                if let Fate::Grow { from, to } = fate {
                    growing.push((name, from, to));
                }
                fate.entries()
            };
        let b4 = conn_fate(map_names::CONNS4, pinned4, start.v4, grow_to.map(|b| b.v4));
        let pinned6 = pinned_entries(pin_dir, map_names::CONNS6)?;
        let b6 = conn_fate(map_names::CONNS6, pinned6, start.v6, grow_to.map(|b| b.v6));
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
        for name in MapSizes::NAMES {
            let want = opts.map_sizes.of(name).expect("a sized map");
            let fate = Fate::of(pinned_entries(pin_dir, name)?, want);
            loader.map_max_entries(name, fate.entries());
            if let Fate::Grow { from, to } = fate {
                growing.push((name, from, to));
            }
        }
        for (name, path) in &paths {
            // A map that grows is created afresh, and pinned once it holds the old entries.
            if !growing.iter().any(|(n, _, _)| n == name) {
                loader.map_pin_path(name, path.as_path());
            }
        }
        let mut ebpf = loader.load(OBJECT)?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(DataPlaneError::MissingMap(PROGRAM_NAME))?
            .try_into()?;
        program.load()?;
        if !growing.is_empty() {
            let tables = grow::TableParams {
                seed: conn_seed,
                timeouts: opts.timeouts,
            };
            grow::grow(&mut ebpf, pin_dir, &growing, tables)?;
        }
        let mut pinned_maps = Vec::with_capacity(paths.len());
        for (name, path) in &paths {
            let data =
                MapData::from_pin(path).map_err(|source| DataPlaneError::Map { name, source })?;
            pinned_maps.push((*name, data));
        }
        let mut maps = Maps::build(|name| Ok(ebpf.take_map(name)))?;
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
                pinned_maps,
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
                Ok(link) => {
                    self.attached.insert(
                        ifname.to_string(),
                        Attachment {
                            ifindex,
                            mode,
                            link: Some(link),
                        },
                    );
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
        let pinned = fd_link.pin(&path).map_err(|source| DataPlaneError::Pin {
            path: path.clone(),
            source,
        })?;
        self.attached.insert(
            ifname.to_string(),
            Attachment {
                ifindex,
                mode,
                link: Some(pinned.into()),
            },
        );
        Ok(false)
    }

    /// Swaps our program into the link pinned at `path`; returns our handle on the link.
    fn replace_in_pinned_link(&mut self, path: &Path) -> Result<FdLink, DataPlaneError> {
        let link_err = |source| DataPlaneError::Link {
            path: path.to_path_buf(),
            source,
        };
        let pinned = PinnedLink::from_pin(path).map_err(link_err)?;
        let link = XdpLink::try_from(FdLink::from(pinned)).map_err(link_err)?;
        let program = self.program()?;
        let id = program.attach_to_link(link)?;
        FdLink::try_from(program.take_link(id)?).map_err(link_err)
    }

    /// Forgets the attachment to `ifname` (its interface is gone, or the link was detached
    /// by hand): our handle on the link is closed and its pin removed, so the next
    /// [`attach`](Self::attach) makes a new link.
    pub fn forget(&mut self, ifname: &str) {
        if self.attached.remove(ifname).is_some() {
            let _ = fs::remove_file(link_pin_path(&self.pin_dir, ifname));
        }
    }

    /// Pins the link on `ifname` again at its path (its pin was removed while we held it).
    pub fn repin_link(&mut self, ifname: &str) -> Result<(), DataPlaneError> {
        let path = link_pin_path(&self.pin_dir, ifname);
        ensure_bpffs(&self.pin_dir)?;
        let Some(link) = self.attached.get_mut(ifname).and_then(|a| a.link.take()) else {
            return Ok(());
        };
        // Pinning takes the handle and gives it back pinned; on failure it is closed and
        // the kernel detaches the link: the watchdog's next look attaches afresh.
        let pinned = link.pin(&path).map_err(|source| DataPlaneError::Pin {
            path: path.clone(),
            source,
        })?;
        if let Some(a) = self.attached.get_mut(ifname) {
            a.link = Some(pinned.into());
        }
        Ok(())
    }

    /// Pins again every map whose pin is missing (the directory too, if it went); returns
    /// their names.
    pub fn repin_maps(&self) -> Result<Vec<&'static str>, DataPlaneError> {
        let mut repinned = Vec::new();
        for (name, data) in &self.pinned_maps {
            let path = self.pin_dir.join(name);
            if path.exists() {
                continue;
            }
            ensure_bpffs(&self.pin_dir)?;
            data.pin(&path)
                .map_err(|source| DataPlaneError::Pin { path, source })?;
            repinned.push(*name);
        }
        Ok(repinned)
    }

    /// The names of pinned maps whose pin file is missing.
    pub fn unpinned_maps(&self) -> Vec<&'static str> {
        self.pinned_maps
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !self.pin_dir.join(name).exists())
            .collect()
    }

    /// The kernel's id of the loaded program (what an interface's XDP attribute names
    /// while our link holds it there).
    pub fn program_id(&mut self) -> Result<u32, DataPlaneError> {
        Ok(self.program()?.info()?.id())
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Every attached interface: name, the ifindex it had when attached, and the mode.
    pub fn attached(&self) -> impl Iterator<Item = (&str, u32, AttachMode)> {
        self.attached
            .iter()
            .map(|(k, a)| (k.as_str(), a.ifindex, a.mode))
    }
}
