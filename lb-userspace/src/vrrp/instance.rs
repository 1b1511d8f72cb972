//! A running VRRP instance as the controller sees it: [`spawn`] resolves what the spec
//! names on this host (interfaces, the source address, the MAC), opens the socket and
//! starts the driver task on the VRRP [`runtime`]; the [`Instance`] it returns stops
//! it or hands it a reload's new settings ([`Instance::update`]).

use std::{collections::HashMap, net::IpAddr};

use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;

use super::{
    driver::{Driver, Inputs, Update, Verdicts},
    io::HostIo,
    machine::ParamsError,
    net::{self, VrrpSocket},
    sync::SyncGroup,
    track::Tracked,
    trackers::{self, Trackers},
    vmac::VmacHold,
};
// What the controller names through this module, wherever it is defined.
pub use super::{
    io::{Gate, GateRequest},
    spec::{InstanceSpec, ReloadAction, specs},
    status::{InstanceStatus, StatusBoard},
};
use crate::{config::VrrpInstance, netlink::NetlinkError, notify::Notifier};

/// Why an instance could not start.
#[derive(Debug, Error)]
pub enum SpawnError {
    /// An interface lookup, the link watch or the MAC address failed.
    #[error(transparent)]
    Link(#[from] NetlinkError),
    /// Listing the interface's addresses, for the source address, failed.
    #[error(transparent)]
    Addresses(#[from] rtnetlink::Error),
    #[error(
        "instance {instance}: interface {interface} has no {family} address to send adverts from"
    )]
    NoSource {
        instance: String,
        interface: String,
        family: &'static str,
    },
    #[error("instance {instance}: VRRP socket on {interface}")]
    Socket {
        instance: String,
        interface: String,
        #[source]
        source: std::io::Error,
    },
    /// `use_vmac`: the macvlan could not be made (or the name is taken).
    #[error("instance {instance}")]
    Vmac {
        instance: String,
        #[source]
        source: super::vmac::VmacError,
    },
    #[error("instance {instance}")]
    Params {
        instance: String,
        #[source]
        source: ParamsError,
    },
}

/// A running instance.
pub struct Instance {
    pub name: String,
    pub spec: InstanceSpec,
    stop: Option<oneshot::Sender<()>>,
    /// The config block the running task notifies with (see [`Instance::update`]).
    notify_config: watch::Sender<VrrpInstance>,
    /// New settings for the running task.
    updates: mpsc::Sender<Update>,
    /// The sync group the instance is a member of.
    group: Option<SyncGroup>,
    task: tokio::task::JoinHandle<()>,
    /// `use_vmac`: the VMAC, removed once the task has resigned.
    vmac: Option<(VmacHold, rtnetlink::Handle)>,
}

impl Instance {
    /// Hands the running task `spec`, a reload's settings for this instance, which
    /// [`InstanceSpec::restart_reason`] found it can take in place: it keeps its state.
    /// What the new spec names on this host (its source address, tracked interfaces
    /// and scripts) is looked up here first; a lookup that fails changes nothing.
    pub async fn update(
        &mut self,
        spec: InstanceSpec,
        handle: &rtnetlink::Handle,
        scripts: &HashMap<String, watch::Receiver<bool>>,
        group: Option<&SyncGroup>,
    ) -> Result<(), SpawnError> {
        let ifindex = crate::netlink::ifindex(handle, &spec.interface).await?;
        let src = source(&spec, handle, ifindex).await?;
        let tracking = if self.spec.tracking_differs(&spec) {
            let mut tracked_indexes = Vec::new();
            for (name, _) in &spec.track_interfaces {
                tracked_indexes.push(crate::netlink::ifindex(handle, name).await?);
            }
            let links = trackers::tracked_links(&spec, ifindex, &tracked_indexes);
            let (states, verdicts) = follow_scripts(&spec, scripts)?;
            Some((Trackers::new(links, states), verdicts))
        } else {
            None
        };
        self.notify_config.send_replace(spec.config.clone());
        // Another sync group (or none): the task leaves the old one and joins the new
        // one in its current state.
        let sync = (self.spec.sync_group != spec.sync_group).then(|| {
            self.leave_group();
            self.group = group.cloned();
            group.map(|g| g.join(&self.name))
        });
        let update = Update {
            spec: spec.clone(),
            source: src,
            tracking,
            sync,
        };
        if self.updates.send(update).await.is_err() {
            warn!(instance = %self.name, "instance task gone; new settings not applied");
        }
        self.spec = spec;
        Ok(())
    }

    /// Leaves its sync group (moved out by a reload, or removed): the group no longer
    /// waits for it, nor follows it.
    pub fn leave_group(&mut self) {
        if let Some(g) = self.group.take() {
            g.leave(&self.name);
        }
    }

    /// Resigns (priority 0 advert if MASTER, VIPs removed) and waits for the task to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        if let Some((hold, handle)) = &self.vmac {
            hold.release(handle).await;
        }
    }
}

/// The runtime VRRP instances run on: one thread of its own, at real-time priority when
/// the kernel allows it (as keepalived's `vrrp_rt_priority`), so that adverts leave on
/// time however busy the machine is with map syncs, health checks or anything else.
pub fn runtime() -> tokio::runtime::Handle {
    static HANDLE: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("xlb-vrrp".into())
                .spawn(move || {
                    raise_priority();
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("VRRP runtime");
                    let _ = tx.send(rt.handle().clone());
                    rt.block_on(std::future::pending::<()>());
                })
                .expect("VRRP thread");
            rx.recv().expect("VRRP runtime handle")
        })
        .clone()
}

/// SCHED_RR at the lowest real-time priority for the calling thread: enough to run ahead
/// of every ordinary task; the thread only ever waits on sockets and timers.
fn raise_priority() {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: plain syscall on the calling thread with a valid parameter.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
    if rc != 0 {
        warn!(
            "VRRP thread stays at normal priority ({}): adverts may be late on a busy machine",
            std::io::Error::last_os_error()
        );
    }
}

/// Opens the socket and starts the task; a member of `group` when given (its
/// `vrrp_sync_group`).
pub async fn spawn(
    spec: InstanceSpec,
    handle: rtnetlink::Handle,
    gate: Gate,
    scripts: HashMap<String, watch::Receiver<bool>>,
    board: StatusBoard,
    notifier: Notifier,
    group: Option<SyncGroup>,
) -> Result<Instance, SpawnError> {
    let ifindex = crate::netlink::ifindex(&handle, &spec.interface).await?;
    let src = source(&spec, &handle, ifindex).await?;
    let socket_config = spec.socket_config(ifindex, src);
    let vmac = match &spec.vmac {
        None => None,
        Some(vs) => {
            let hold = VmacHold {
                instance: spec.name.clone(),
                spec: vs.clone(),
                vrid: spec.vrid,
                ipv6: spec.is_ipv6(),
                other_family: super::vmac::has_other_family(&spec.vips, spec.is_ipv6()),
                link_local: match src {
                    IpAddr::V6(a) if (a.segments()[0] & 0xffc0) == 0xfe80 => Some(a),
                    _ => None,
                },
                current: Default::default(),
            };
            let v = hold
                .make(&handle, ifindex, &spec.interface)
                .await
                .map_err(|source| SpawnError::Vmac {
                    instance: spec.name.clone(),
                    source,
                })?;
            Some((hold, v))
        }
    };
    match start(
        spec,
        handle,
        gate,
        scripts,
        board,
        notifier,
        ifindex,
        src,
        socket_config,
        vmac.clone(),
        group,
    )
    .await
    {
        Ok(i) => Ok(i),
        Err((e, handle)) => {
            if let Some((hold, _)) = &vmac {
                hold.release(&handle).await;
            }
            Err(e)
        }
    }
}

/// [`spawn`] once the VMAC (if any) is there; on failure, the handle back to remove it.
#[expect(clippy::too_many_arguments, reason = "spawn's own values, passed on")]
async fn start(
    spec: InstanceSpec,
    handle: rtnetlink::Handle,
    gate: Gate,
    scripts: HashMap<String, watch::Receiver<bool>>,
    board: StatusBoard,
    notifier: Notifier,
    ifindex: u32,
    src: IpAddr,
    socket_config: super::net::VrrpSocketConfig,
    vmac: Option<(VmacHold, super::vmac::Vmac)>,
    group: Option<SyncGroup>,
) -> Result<Instance, (SpawnError, rtnetlink::Handle)> {
    let h = handle.clone();
    start_inner(
        spec,
        handle,
        gate,
        scripts,
        board,
        notifier,
        ifindex,
        src,
        socket_config,
        vmac,
        group,
    )
    .await
    .map_err(|e| (e, h))
}

#[expect(clippy::too_many_arguments, reason = "spawn's own values, passed on")]
async fn start_inner(
    spec: InstanceSpec,
    handle: rtnetlink::Handle,
    gate: Gate,
    scripts: HashMap<String, watch::Receiver<bool>>,
    board: StatusBoard,
    notifier: Notifier,
    ifindex: u32,
    src: IpAddr,
    socket_config: super::net::VrrpSocketConfig,
    vmac: Option<(VmacHold, super::vmac::Vmac)>,
    group: Option<SyncGroup>,
) -> Result<Instance, SpawnError> {
    // Adverts leave from the VMAC unless vmac_xmit_base; the driver keeps seeing the
    // base interface (its link, its index), HostIo maps the socket onto the VMAC.
    let mut wire = socket_config.clone();
    if let Some((hold, v)) = &vmac {
        if !hold.spec.xmit_base {
            wire.ifindex = v.ifindex;
        }
    }
    let socket = VrrpSocket::open(&wire).map_err(|source| SpawnError::Socket {
        instance: spec.name.clone(),
        interface: vmac
            .as_ref()
            .filter(|(h, _)| !h.spec.xmit_base)
            .map_or_else(|| spec.interface.clone(), |(_, v)| v.name.clone()),
        source,
    })?;
    let heartbeat = match &spec.heartbeat {
        Some(h) => {
            let hb_index = crate::netlink::ifindex(&handle, &h.interface).await?;
            let config = super::net::VrrpSocketConfig::unicast(
                hb_index,
                h.unicast_src_ip,
                h.unicast_peer.clone(),
            );
            Some(
                VrrpSocket::open(&config).map_err(|source| SpawnError::Socket {
                    instance: spec.name.clone(),
                    interface: h.interface.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    let mac = crate::netlink::link_mac(&handle, ifindex).await?;
    let mut tracked_indexes = Vec::new();
    for (name, _) in &spec.track_interfaces {
        tracked_indexes.push(crate::netlink::ifindex(&handle, name).await?);
    }
    let links = trackers::tracked_links(&spec, ifindex, &tracked_indexes);
    let (script_states, verdicts) = follow_scripts(&spec, &scripts)?;
    let link_events = crate::netlink::watch_links()?;
    let addresses = super::addr_watch::watch_removed()?;
    let routes = crate::netlink::route::watch_removed()?;
    let (stop_tx, stop) = oneshot::channel();
    let (notify_tx, notify_config) = watch::channel(spec.config.clone());
    let (updates_tx, updates) = mpsc::channel(4);
    let handle_for_stop = handle.clone();
    let io = HostIo {
        instance: spec.name.clone(),
        socket,
        checksum: spec.checksum,
        handle,
        ifindex,
        mac,
        gate,
        notify_config,
        notifier,
        board,
        socket_config,
        reopen: false,
        vmac: vmac.as_ref().map(|(h, _)| h.clone()),
        heartbeat,
    };
    let trackers = Trackers::new(links, script_states);
    let driver =
        Driver::new(spec.clone(), src, trackers, io).map_err(|source| SpawnError::Params {
            instance: spec.name.clone(),
            source,
        })?;
    let (link, sync) = match &group {
        Some(g) => {
            let (link, rx) = g.join(&spec.name);
            (Some(link), Some(rx))
        }
        None => (None, None),
    };
    let driver = driver.with_sync(link);
    let member_of = group.clone();
    let inputs = Inputs {
        stop,
        links: link_events,
        verdicts,
        addresses,
        routes,
        updates,
        sync,
    };
    let task = tokio::spawn(driver.run(inputs));
    Ok(Instance {
        name: spec.name.clone(),
        spec,
        stop: Some(stop_tx),
        notify_config: notify_tx,
        updates: updates_tx,
        group: member_of,
        task,
        vmac: vmac.map(|(h, _)| (h, handle_for_stop)),
    })
}

/// The address adverts leave from: the configured one, else the interface's own.
async fn source(
    spec: &InstanceSpec,
    handle: &rtnetlink::Handle,
    ifindex: u32,
) -> Result<IpAddr, SpawnError> {
    if let Some(s) = spec.src {
        return Ok(s);
    }
    let v6 = spec.is_ipv6();
    net::source_address(handle, ifindex, v6, &spec.advertised)
        .await?
        .ok_or_else(|| SpawnError::NoSource {
            instance: spec.name.clone(),
            interface: spec.interface.clone(),
            family: if v6 { "link-local IPv6" } else { "IPv4" },
        })
}

/// The tracked scripts' current verdicts, and one channel on which each later verdict
/// arrives as (position, up). A script not in `scripts` is disabled (refused when it
/// started): left out, as keepalived removes it from the instance.
fn follow_scripts(
    spec: &InstanceSpec,
    scripts: &HashMap<String, watch::Receiver<bool>>,
) -> Result<(Vec<(Tracked, bool)>, Verdicts), SpawnError> {
    let (verdict_tx, verdict_rx) = mpsc::channel(16);
    let mut states = Vec::new();
    for (name, how) in &spec.track_scripts {
        let Some(verdict) = scripts.get(name) else {
            tracing::info!(instance = %spec.name, script = %name, "track script disabled: not tracked");
            continue;
        };
        let pos = states.len();
        let mut rx = verdict.clone();
        states.push((how.clone(), *rx.borrow()));
        let tx = verdict_tx.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let up = *rx.borrow();
                if tx.send((pos, up)).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok((states, verdict_rx))
}
