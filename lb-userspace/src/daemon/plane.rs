//! The data plane as the daemon drives it: the XDP program and its maps, loaded over
//! what an earlier run pinned, attached to the services' interfaces, loaded again when
//! `lvs_timeouts` change, and synced to the desired state. A start that fails takes back
//! what it made ([`Plane::undo_start`]), never what an earlier run left forwarding. What
//! the watchdog (`watchdog`) repairs is done here too: a link or map pinned again, an
//! interface attached again; its [`Watch`] is what `xlb status` shows of each interface.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

use lb_common::map_names;
use rtnetlink::Handle;
use tracing::{info, warn};

use crate::{
    config::Config,
    dataplane::{
        AttachMode, ConnTableOptions, DataPlane, DataPlaneError,
        conn_table::{EvictionWatch, Evictions},
        link_pin_path,
        sizing::MapSizes,
        sync::{DesiredService, MapSync, SyncError},
        teardown,
        watch::Watch,
    },
    netlink::{self, NetlinkError},
};

#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    #[error("virtual server {ip}:{port} has no interface")]
    NoInterface { ip: IpAddr, port: u16 },
    #[error(
        "interface {interface} already has an XDP program (id {prog_id}) that is not pinned \
         under {}: another xlb with another --pin-path, or another XDP user; stop it first \
         (`xlb teardown --pin-path ITS_PIN_PATH`, or `ip link set dev {interface} xdp off`)",
        .pin_path.display()
    )]
    ForeignXdp {
        interface: String,
        prog_id: u32,
        pin_path: PathBuf,
    },
    #[error(transparent)]
    DataPlane(#[from] DataPlaneError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// The XDP program and the maps, present when the config has virtual servers.
pub struct Plane {
    dataplane: DataPlane,
    sync: MapSync,
    /// This run created the maps (none were pinned before it).
    created: bool,
    /// Interfaces this run attached through a new link (not an adopted one).
    linked_here: Vec<String>,
    /// What full connection-table buckets cost, last said in the log.
    evictions: EvictionWatch,
    /// Every attached interface's status, as the watchdog keeps it.
    pub watch: Watch,
}

fn table_options(config: &Config) -> ConnTableOptions {
    let g = &config.global_defs;
    ConnTableOptions {
        conn_slots: g.connection_table_size,
        timeouts: g.lvs_timeouts.to_ticks(),
        map_sizes: MapSizes::for_needs(config.map_needs()),
    }
}

/// The interfaces the virtual services of `config` need, each once.
pub fn interfaces(config: &Config) -> Result<Vec<String>, PlaneError> {
    let mut wanted: Vec<String> = Vec::new();
    for vs in &config.virtual_server {
        let name = vs
            .resolved_interface(config)
            .ok_or(PlaneError::NoInterface {
                ip: vs.ip,
                port: vs.port,
            })?
            .to_string();
        if !wanted.contains(&name) {
            wanted.push(name);
        }
    }
    Ok(wanted)
}

impl Plane {
    /// Loads the program over the maps pinned at `pin_path`, adopting the services an
    /// earlier run left there. Maps it created are removed again if loading fails.
    pub fn load(pin_path: &Path, config: &Config) -> Result<Plane, PlaneError> {
        let created = !pin_path.join(map_names::META).exists();
        let loaded = DataPlane::load_with(pin_path, table_options(config))
            .map_err(PlaneError::from)
            .and_then(|(dataplane, maps)| Ok((dataplane, MapSync::adopt(maps)?)));
        let (dataplane, sync) = match loaded {
            Ok(l) => l,
            Err(e) => {
                // A refused directory is not ours to clean: nothing was pinned in it.
                let refused = matches!(
                    e,
                    PlaneError::DataPlane(
                        DataPlaneError::UnsafePinDir { .. } | DataPlaneError::NotBpffs(_)
                    )
                );
                if created && !refused && pin_path.exists() {
                    let _ = teardown(pin_path);
                }
                return Err(e);
            }
        };
        if sync.service_count() > 0 {
            info!(
                services = sync.service_count(),
                pin_path = %pin_path.display(),
                "adopted the pinned data plane"
            );
        }
        let evictions = EvictionWatch::new(Evictions::read(&sync.maps().conn_evictions));
        Ok(Plane {
            dataplane,
            sync,
            created,
            linked_here: Vec::new(),
            evictions,
            watch: Watch::default(),
        })
    }

    /// After a failed start: created maps are removed with every link (nothing else can
    /// use them); over adopted maps only the links this run added go, and the data plane
    /// an earlier run left keeps forwarding.
    pub fn undo_start(self) {
        let pin_dir = self.dataplane.pin_dir().to_path_buf();
        drop(self.dataplane);
        if self.created {
            let _ = teardown(&pin_dir);
            return;
        }
        for name in &self.linked_here {
            // The pin holds the link: removing it detaches the program.
            let _ = std::fs::remove_file(link_pin_path(&pin_dir, name));
        }
    }

    /// Attaches to each of `interfaces` not attached yet, but those the watchdog knows
    /// are down (gone, or taken by another program): it attaches them once they are back,
    /// and a reload meanwhile is not refused for them.
    pub async fn attach(
        &mut self,
        handle: &Handle,
        interfaces: Vec<String>,
        mode: AttachMode,
    ) -> Result<(), PlaneError> {
        for name in interfaces {
            let down = self.watch.get(&name).is_some_and(|s| !s.forwarding);
            if self.attached_at(&name).is_none() && !down {
                self.attach_one(handle, &name, mode).await?;
            }
        }
        Ok(())
    }

    /// Attaches to `name`: through the link pinned for it (adopted) or a new one.
    pub async fn attach_one(
        &mut self,
        handle: &Handle,
        name: &str,
        mode: AttachMode,
    ) -> Result<(), PlaneError> {
        let ifindex = netlink::ifindex(handle, name).await?;
        // Ours when pinned here (adopted); otherwise the kernel would refuse the attach
        // with a bare EBUSY: say whose it may be.
        let pin_dir = self.dataplane.pin_dir();
        if !link_pin_path(pin_dir, name).exists() {
            if let Some(prog_id) = netlink::xdp_prog_id(handle, ifindex).await? {
                return Err(PlaneError::ForeignXdp {
                    interface: name.to_string(),
                    prog_id,
                    pin_path: pin_dir.to_path_buf(),
                });
            }
        }
        let adopted = self.dataplane.attach(name, ifindex, mode)?;
        if !adopted {
            self.linked_here.push(name.to_string());
        }
        self.watch.attached(name);
        match mode {
            AttachMode::Native => info!(interface = %name, adopted, "XDP attached (native)"),
            AttachMode::Generic => warn!(
                interface = %name,
                adopted,
                "XDP attached in GENERIC mode: about half the speed of native"
            ),
        }
        Ok(())
    }

    /// The ifindex `name` had when the program was attached to it, if it is.
    pub fn attached_at(&self, name: &str) -> Option<u32> {
        self.dataplane
            .attached()
            .find(|(n, _, _)| *n == name)
            .map(|(_, ifindex, _)| ifindex)
    }

    /// Where the link of `name` is pinned.
    pub fn link_pin(&self, name: &str) -> PathBuf {
        link_pin_path(self.dataplane.pin_dir(), name)
    }

    /// Whether the link of `name` is pinned.
    pub fn link_pinned(&self, name: &str) -> bool {
        self.link_pin(name).exists()
    }

    /// The loaded program's id.
    pub fn program_id(&mut self) -> Result<u32, PlaneError> {
        Ok(self.dataplane.program_id()?)
    }

    /// Lets go of the attachment to `name` (the interface is gone, or the link was
    /// detached): the next [`attach`](Self::attach) makes a new link.
    pub fn forget(&mut self, name: &str) {
        self.dataplane.forget(name);
    }

    /// Pins the link of `name` again.
    pub fn repin_link(&mut self, name: &str) -> Result<(), PlaneError> {
        self.dataplane.repin_link(name)?;
        self.watch.repinned(name);
        Ok(())
    }

    /// Pins again the maps whose pins were removed; returns their names.
    pub fn repin_maps(&mut self) -> Result<Vec<&'static str>, PlaneError> {
        if self.dataplane.unpinned_maps().is_empty() {
            return Ok(Vec::new());
        }
        let names = self.dataplane.repin_maps()?;
        let attached: Vec<String> = self
            .dataplane
            .attached()
            .map(|(n, _, _)| n.to_string())
            .collect();
        for name in attached {
            self.watch.repinned(&name);
        }
        Ok(names)
    }

    /// After a reload from `was` to `now`: `lvs_timeouts` are constants of the loaded
    /// program, and a config that needs more real-server slots or table entries than the
    /// maps hold grows them (`dataplane::sizing`); either loads the program again over the
    /// pinned maps, and attaching then swaps it into the pinned links atomically, as a
    /// restarted daemon does (a grown map's program is swapped in at once). Tracked flows
    /// stay.
    pub fn reload_program(&mut self, was: &Config, now: &Config) -> Result<(), PlaneError> {
        let (g_was, g_now) = (&was.global_defs, &now.global_defs);
        let have = self.sync.maps().sizes();
        let want = MapSizes::for_needs(now.map_needs());
        let grow = want.reals > have.reals || want.table > have.table;
        if g_was.lvs_timeouts == g_now.lvs_timeouts && !grow {
            // Loading the program again would say so itself (`DataPlane::load_with`).
            if g_was.connection_table_size != g_now.connection_table_size {
                warn!("connection_table_size applies once `xlb teardown` removes the tables");
            }
            return Ok(());
        }
        let pin_dir = self.dataplane.pin_dir().to_path_buf();
        let (dataplane, maps) = DataPlane::load_with(&pin_dir, table_options(now))?;
        self.dataplane = dataplane;
        if grow {
            // The grown maps are other maps: the writer follows them.
            self.sync = MapSync::adopt(maps)?;
            let got = self.sync.maps().sizes();
            info!(
                reals = got.reals,
                table = got.table,
                "maps grown for the new config: program reloaded"
            );
        }
        if g_was.lvs_timeouts != g_now.lvs_timeouts {
            let t = &g_now.lvs_timeouts;
            info!(
                tcp = t.tcp,
                tcpfin = t.tcpfin,
                udp = t.udp,
                syn_recv = t.syn_recv,
                "lvs_timeouts changed: program reloaded"
            );
        }
        Ok(())
    }

    /// Logs what full connection-table buckets cost since the last time, at most once a
    /// period: flows lost or untracked (the table is too small), or half-open ones given up.
    pub fn watch_conn_table(&mut self) {
        let now = Evictions::read(&self.sync.maps().conn_evictions);
        let Some(g) = self.evictions.due(now, std::time::Instant::now()) else {
            return;
        };
        if g.established > 0 || g.not_tracked > 0 {
            warn!(
                established_evicted = g.established,
                not_tracked = g.not_tracked,
                half_open_evicted = g.syn_recv,
                "connection table full: established connections evicted or new ones left \
                 untracked; raise global_defs.connection_table_size"
            );
        } else {
            warn!(
                half_open_evicted = g.syn_recv,
                "connection table: half-open connections (SYN_RECV) given up in full \
                 buckets, established ones kept (a SYN flood, or a table near full)"
            );
        }
    }

    /// Writes the interfaces' MACs and the services into the maps.
    pub fn sync(
        &mut self,
        interface_macs: &BTreeMap<u32, [u8; 6]>,
        desired: &[DesiredService],
    ) -> Result<(), PlaneError> {
        self.sync.apply_ifaces(interface_macs)?;
        let report = self.sync.apply(desired)?;
        info!(?report, "data plane synced");
        Ok(())
    }
}
