//! The data plane as the daemon drives it: the XDP program and its maps, loaded over
//! what an earlier run pinned, attached to the services' interfaces, loaded again when
//! `lvs_timeouts` change, and synced to the desired state. A start that fails takes back
//! what it made ([`Plane::undo_start`]), never what an earlier run left forwarding. What
//! the watchdog (`watchdog`) repairs is done here too: a link or map pinned again, an
//! interface attached again; its [`Watch`] is what `xlb status` shows of each interface.
//! The connection tables grow here too, when the publish tick finds them filling
//! ([`Plane::grow_conn_tables`], `dataplane::conn_grow`).

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use lb_common::map_names;
use rtnetlink::Handle;
use tracing::{error, info, warn};

use crate::{
    config::Config,
    dataplane::{
        AttachMode, ConnTableOptions, DataPlane, DataPlaneError,
        conn_grow::{self, ConnTableInfo, Occupancy},
        conn_table::{EvictionWatch, Evictions, now_ticks},
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
    /// What the program is loaded with (the config's connection-table and map sizes).
    opts: ConnTableOptions,
    /// Connection-table growths since this daemon started.
    growths: u64,
    /// The eviction counters at the last growth check: a rise means full buckets.
    grow_seen: Evictions,
    /// After a failed growth: no new attempt before this.
    grow_retry_at: Option<Instant>,
}

/// How long a failed connection-table growth waits before the next attempt.
const GROW_RETRY: Duration = Duration::from_secs(60);

fn table_options(config: &Config) -> ConnTableOptions {
    let g = &config.global_defs;
    ConnTableOptions {
        conn_slots: g.connection_table_size,
        conn_start: g.connection_table_start_size,
        conn_grow_to: None,
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

/// Adds to `wanted` the interfaces the real servers of NAT services are on (as located:
/// `neighbors`): their replies come in there, and XDP translates them back to the VIP.
pub fn add_nat_interfaces(
    config: &Config,
    neighbors: &std::collections::HashMap<IpAddr, super::neighbors::Neighbor>,
    wanted: &mut Vec<String>,
) {
    for vs in &config.virtual_server {
        if vs.lb_kind != crate::config::LbKind::Nat {
            continue;
        }
        for ip in vs.server_addresses() {
            let Some(n) = neighbors.get(&ip) else {
                continue;
            };
            if let Some(name) = ifname(n.ifindex) {
                if !wanted.contains(&name) {
                    wanted.push(name);
                }
            }
        }
    }
}

/// What this host's sysctls deny NAT services (read from /proc/sys, in this network
/// namespace): replies are translated in XDP, but `bpf_fib_lookup` sends them on only
/// with forwarding enabled on the interface they arrive at, and a reply whose client
/// the director has no MAC for yet goes through the host stack, which takes an IPv4
/// packet from the VIP (a local address) only with `accept_local`.
pub fn nat_sysctl_problems(config: &Config, nat_interfaces: &[String]) -> Vec<String> {
    let nat: Vec<_> = config
        .virtual_server
        .iter()
        .filter(|vs| vs.lb_kind == crate::config::LbKind::Nat)
        .collect();
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|v| v.trim() == "1")
            .unwrap_or(false)
    };
    let mut problems = Vec::new();
    if nat.iter().any(|vs| vs.ip.is_ipv4()) {
        if !read("/proc/sys/net/ipv4/ip_forward") {
            problems.push(
                "net.ipv4.ip_forward is 0: IPv4 NAT replies are dropped (nat_no_route)".into(),
            );
        }
        for i in nat_interfaces {
            if !read("/proc/sys/net/ipv4/conf/all/accept_local")
                && !read(&format!("/proc/sys/net/ipv4/conf/{i}/accept_local"))
            {
                problems.push(format!(
                    "net.ipv4.conf.{i}.accept_local is 0: an IPv4 NAT reply to a client whose \
                     MAC the director does not know yet is dropped by the host stack"
                ));
            }
        }
    }
    if nat.iter().any(|vs| vs.ip.is_ipv6()) {
        for i in nat_interfaces {
            if !read(&format!("/proc/sys/net/ipv6/conf/{i}/forwarding")) {
                problems.push(format!(
                    "net.ipv6.conf.{i}.forwarding is 0: IPv6 NAT replies arriving there are \
                     dropped (nat_no_route)"
                ));
            }
        }
    }
    problems
}

/// The name of interface `ifindex`, if it exists.
fn ifname(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has IF_NAMESIZE bytes, as if_indextoname needs.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name into `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

impl Plane {
    /// Loads the program over the maps pinned at `pin_path`, adopting the services an
    /// earlier run left there. Maps it created are removed again if loading fails.
    pub fn load(pin_path: &Path, config: &Config) -> Result<Plane, PlaneError> {
        let created = !pin_path.join(map_names::META).exists();
        let opts = table_options(config);
        let loaded = DataPlane::load_with(pin_path, opts)
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
        let counted = Evictions::read(&sync.maps().conn_evictions);
        Ok(Plane {
            dataplane,
            sync,
            created,
            linked_here: Vec::new(),
            evictions: EvictionWatch::new(counted),
            watch: Watch::default(),
            opts,
            growths: 0,
            grow_seen: counted,
            grow_retry_at: None,
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
    /// stay. A new `connection_table_size` is the connection tables' new maximum: they
    /// grow up to a larger one on the next ticks; above a smaller one they stay as they
    /// are (never shrunk), with a warning.
    pub fn reload_program(&mut self, was: &Config, now: &Config) -> Result<(), PlaneError> {
        let (g_was, g_now) = (&was.global_defs, &now.global_defs);
        self.opts = table_options(now);
        self.follow_conn_table_size(g_was.connection_table_size);
        let have = self.sync.maps().sizes();
        let want = MapSizes::for_needs(now.map_needs());
        let grow = want.reals > have.reals || want.table > have.table;
        if g_was.lvs_timeouts == g_now.lvs_timeouts && !grow {
            return Ok(());
        }
        let pin_dir = self.dataplane.pin_dir().to_path_buf();
        let (dataplane, maps) = DataPlane::load_with(&pin_dir, self.opts)?;
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

    /// Says what a changed `connection_table_size` (the tables' maximum) does: tables may
    /// grow up to a larger one; above a smaller one they keep their size.
    fn follow_conn_table_size(&self, was: u32) {
        let max = self.opts.conn_slots;
        if max == was {
            return;
        }
        let slots = self.conn_table().slots;
        if slots > max {
            warn!(
                slots,
                connection_table_size = max,
                "the connection tables are bigger than the new connection_table_size: they \
                 keep their size (a pinned table never shrinks; `xlb teardown` removes it, \
                 and its connections)"
            );
        } else {
            info!(
                slots,
                connection_table_size = max,
                "connection_table_size changed: the connection tables grow up to it"
            );
        }
    }

    /// On the publish tick: corrects the counting schedulers' connection counts from a
    /// recount of the connection tables (`dataplane::real_conns`).
    pub fn recount_conns(&mut self) {
        if let Err(e) = self.sync.recount_conns() {
            warn!("connection counts not recounted: {e}");
        }
    }

    /// The connection tables' size now, their maximum and their growths.
    pub fn conn_table(&self) -> ConnTableInfo {
        let slots = self.sync.maps().conn_slots().map_or(0, |(v4, _)| v4);
        ConnTableInfo {
            slots,
            max_slots: self.opts.conn_slots,
            growths: self.growths,
        }
    }

    /// On the publish tick: grows the connection tables (`dataplane::conn_grow`) when
    /// more than half of either is live or a full bucket cost an established entry or
    /// left a new flow untracked since the last look, up to `connection_table_size`.
    /// Returns true when they grew: the new program is in every pinned link, and the
    /// caller attaches again so that this plane holds the links.
    pub fn grow_conn_tables(&mut self) -> bool {
        let now = Instant::now();
        if self.grow_retry_at.is_some_and(|t| now < t) {
            return false;
        }
        let counted = Evictions::read(&self.sync.maps().conn_evictions);
        let full = counted.established > self.grow_seen.established
            || counted.not_tracked > self.grow_seen.not_tracked;
        self.grow_seen = counted;
        let (slots, occupancy) = match self.occupancy() {
            Ok(o) => o,
            Err(e) => {
                warn!("connection tables not readable for their growth check: {e}");
                return false;
            }
        };
        let Some(to) = conn_grow::grow_to(slots, self.opts.conn_slots, occupancy, full) else {
            return false;
        };
        info!(
            from = slots,
            to,
            occupancy_percent = occupancy.percent(),
            live_ipv4 = occupancy.live4,
            live_ipv6 = occupancy.live6,
            full_buckets = full,
            "connection tables filling: growing them (program reloaded over bigger tables)"
        );
        let started = Instant::now();
        let opts = ConnTableOptions {
            conn_grow_to: Some(to),
            ..self.opts
        };
        match DataPlane::load_with(self.dataplane.pin_dir(), opts) {
            Ok((dataplane, maps)) => {
                self.dataplane = dataplane;
                self.sync.take_conn_tables(maps);
                self.growths += 1;
                info!(
                    from = slots,
                    to,
                    occupancy_percent = occupancy.percent(),
                    took_ms = started.elapsed().as_millis() as u64,
                    growths = self.growths,
                    "connection tables grown"
                );
                true
            }
            Err(e) => {
                error!(
                    from = slots,
                    to,
                    "connection tables not grown (the current ones stay; next attempt in \
                     {} s): {e}",
                    GROW_RETRY.as_secs()
                );
                self.grow_retry_at = Some(now + GROW_RETRY);
                false
            }
        }
    }

    /// The IPv4 slots and both tables' live entries now.
    fn occupancy(&self) -> Result<(u32, Occupancy), PlaneError> {
        let tables = self.sync.maps().conn_tables(false)?;
        let (slots4, slots6) = tables.slots();
        if slots4 >= self.opts.conn_slots {
            // At the maximum: nothing to count.
            return Ok((slots4, Occupancy::default()));
        }
        let (live4, live6) = tables.count_live_each(now_ticks());
        Ok((
            slots4,
            Occupancy {
                live4,
                slots4: slots4.into(),
                live6,
                slots6: slots6.into(),
            },
        ))
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
                 untracked (the tables grow up to global_defs.connection_table_size; raise \
                 it if they are there)"
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
