//! Everything an instance's driver does to the world, behind one trait: [`InstanceIo`].
//!
//! The driver decides *what* happens and in which order; an `InstanceIo` only carries it
//! out. [`HostIo`] is the real one, over the instance's [`VrrpSocket`], rtnetlink, the
//! controller's [`Gate`], the notify commands and the [`StatusBoard`]. The driver's tests
//! use a recording one with a virtual clock, so the ordering rules are checked without
//! root (events in, calls out).

use std::{future::Future, io, net::IpAddr, time::Instant};

use rtnetlink::Handle;
use tokio::sync::{mpsc, oneshot, watch};

use super::{
    machine::State,
    net::{Received, VrrpSocket, VrrpSocketConfig},
    packet::{Advert, V3Checksum},
    status::{InstanceStatus, StatusBoard},
    track,
    vip::{self, VipError},
    vmac::VmacHold,
};
use crate::{
    config::{VirtualIpAddress, VrrpInstance},
    netlink::NetlinkError,
    netlink::route::{RouteError, RouteSet},
    notify::{Notification, Notifier, VrrpState},
};

/// Asks the controller to switch forwarding of an instance's virtual services, and waits
/// until the maps say so.
#[derive(Clone)]
pub struct Gate(pub mpsc::Sender<GateRequest>);

pub struct GateRequest {
    pub instance: String,
    pub state: State,
    pub done: oneshot::Sender<()>,
}

impl Gate {
    async fn set(&self, instance: &str, state: State) {
        let (done, wait) = oneshot::channel();
        let req = GateRequest {
            instance: instance.to_string(),
            state,
            done,
        };
        if self.0.send(req).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// What a driver does to the world. Errors are returned for the driver to log; none of
/// them stops the instance.
pub trait InstanceIo {
    /// The time now (the tests' clock is virtual).
    fn now(&self) -> Instant;

    /// The next packet for the instance's socket.
    fn recv(&mut self) -> impl Future<Output = io::Result<Received>> + Send;

    /// Sends `advert` to every destination (the group or the unicast peers).
    fn send_advert(&mut self, advert: &Advert) -> impl Future<Output = io::Result<()>> + Send;

    /// A reload changed where adverts go or how they are sent: opens the socket for
    /// `socket` (the old one stays if that fails) and sends with `checksum` from now on.
    fn resocket(
        &mut self,
        socket: VrrpSocketConfig,
        checksum: V3Checksum,
    ) -> impl Future<Output = io::Result<()>> + Send;

    /// Adds the VIPs to their interfaces.
    fn add_vips(
        &mut self,
        vips: &[VirtualIpAddress],
    ) -> impl Future<Output = Result<(), VipError>> + Send;

    /// Removes the VIPs from their interfaces.
    fn remove_vips(
        &mut self,
        vips: &[VirtualIpAddress],
    ) -> impl Future<Output = Result<(), VipError>> + Send;

    /// Adds the instance's `virtual_routes` and `virtual_rules` (routes first).
    fn add_routes(&mut self, set: &RouteSet) -> impl Future<Output = Vec<RouteError>> + Send;

    /// Removes them (rules first).
    fn remove_routes(&mut self, set: &RouteSet) -> impl Future<Output = Vec<RouteError>> + Send;

    /// Adds `vip` back if it is missing from its interface; whether it was missing.
    fn restore_vip(
        &mut self,
        vip: &VirtualIpAddress,
    ) -> impl Future<Output = Result<bool, VipError>> + Send;

    /// One gratuitous ARP (IPv4) or unsolicited NA (IPv6) for `vip`.
    fn announce(&mut self, vip: IpAddr) -> io::Result<()>;

    /// Makes the data plane forward the instance's services as `state` says, and waits
    /// until it does.
    fn forward(&mut self, state: State) -> impl Future<Output = ()> + Send;

    /// Reports a transition to `state` at `priority`: notify commands, FIFOs, mail.
    fn notify(&mut self, state: State, priority: u8);

    /// Puts the instance's status on the board.
    fn publish(&mut self, status: InstanceStatus);

    /// Whether interface `ifindex` is up now.
    fn link_up(&mut self, ifindex: u32) -> impl Future<Output = Result<bool, NetlinkError>> + Send;

    /// The index of the instance's interface, as far as it knows.
    fn ifindex(&self) -> u32;

    /// The instance's interface is back under another index (deleted and re-created, or
    /// renamed back): the socket, VIPs and announcements move there.
    fn rebind(&mut self, ifindex: u32) -> impl Future<Output = ()> + Send;

    /// Whether the socket is open on the instance's interface. After a [`rebind`] it may
    /// not be (the re-created interface lacks the source address): [`recv`] then retries
    /// and returns [`io::ErrorKind::NotConnected`] after each try, open or not, and the
    /// instance is in FAULT while it is not.
    ///
    /// [`rebind`]: Self::rebind
    /// [`recv`]: Self::recv
    fn socket_open(&self) -> bool {
        true
    }
}

/// The real [`InstanceIo`] of one instance.
pub struct HostIo {
    pub instance: String,
    pub socket: VrrpSocket,
    pub checksum: V3Checksum,
    pub handle: Handle,
    /// The instance's interface: where VIPs without a `dev` go and announcements leave.
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub gate: Gate,
    /// The config block to notify with: the spec's until a reload changes only it.
    pub notify_config: watch::Receiver<VrrpInstance>,
    pub notifier: Notifier,
    pub board: StatusBoard,
    /// What the socket was opened with: how it is opened again on another interface.
    pub socket_config: VrrpSocketConfig,
    /// The interface changed and the socket is not open there yet (its source address
    /// may not be back yet): retried before each receive and send.
    pub reopen: bool,
    /// `use_vmac`: the VIPs, announcements and (unless `vmac_xmit_base`) adverts are on
    /// the VMAC rather than on `ifindex`, the base interface.
    pub vmac: Option<VmacHold>,
    /// `heartbeat`: the socket of the second path, if any.
    pub heartbeat: Option<VrrpSocket>,
}

impl HostIo {
    /// Where the VIPs without `dev` go and announcements leave, with which MAC: the VMAC
    /// when there is one.
    fn vip_link(&self) -> (u32, [u8; 6]) {
        match self.vmac.as_ref().and_then(VmacHold::get) {
            Some(v) => (v.ifindex, v.mac),
            None => (self.ifindex, self.mac),
        }
    }

    /// `config` as the socket is opened with: on the VMAC unless `vmac_xmit_base`.
    fn on_wire(&self, config: &VrrpSocketConfig) -> VrrpSocketConfig {
        let mut c = config.clone();
        if let Some(hold) = &self.vmac {
            if !hold.spec.xmit_base {
                if let Some(v) = hold.get() {
                    c.ifindex = v.ifindex;
                }
            }
        }
        c
    }

    /// Opens the socket on the current interface if it has to be; true when it is open.
    fn reopened(&mut self) -> bool {
        if !self.reopen {
            return true;
        }
        match VrrpSocket::open(&self.on_wire(&self.socket_config)) {
            Ok(socket) => {
                self.socket = socket;
                self.reopen = false;
                tracing::info!(
                    instance = %self.instance,
                    ifindex = self.ifindex,
                    "VRRP socket open on the interface again"
                );
                true
            }
            Err(e) => {
                tracing::debug!(instance = %self.instance, "VRRP socket not reopened yet: {e}");
                false
            }
        }
    }
}

impl InstanceIo for HostIo {
    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn recv(&mut self) -> io::Result<Received> {
        if self.reopen {
            // Retried at this pace. Either way the driver is told (NotConnected), so that
            // it looks at `socket_open` now rather than at the next packet.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            self.reopened();
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the VRRP socket was not open on the re-created interface",
            ));
        }
        match &self.heartbeat {
            Some(hb) => tokio::select! {
                r = self.socket.recv() => r,
                r = hb.recv() => r,
            },
            None => self.socket.recv().await,
        }
    }

    async fn send_advert(&mut self, advert: &Advert) -> io::Result<()> {
        if !self.reopened() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the VRRP socket is not open on the re-created interface yet",
            ));
        }
        let checksum = self.checksum;
        if let Some(hb) = &self.heartbeat {
            if let Err(e) = hb
                .send_each(|src, dst| advert.encode(src, dst, checksum))
                .await
            {
                tracing::debug!(instance = %self.instance, "advert on the heartbeat path: {e}");
            }
        }
        self.socket
            .send_each(|src, dst| advert.encode(src, dst, checksum))
            .await
    }

    async fn resocket(&mut self, socket: VrrpSocketConfig, checksum: V3Checksum) -> io::Result<()> {
        self.checksum = checksum;
        if socket == self.socket_config {
            return Ok(());
        }
        self.socket = VrrpSocket::open(&self.on_wire(&socket))?;
        self.socket_config = socket;
        self.reopen = false;
        Ok(())
    }

    async fn add_vips(&mut self, vips: &[VirtualIpAddress]) -> Result<(), VipError> {
        vip::add_vips(&self.handle, self.vip_link().0, vips).await
    }

    async fn remove_vips(&mut self, vips: &[VirtualIpAddress]) -> Result<(), VipError> {
        vip::remove_vips(&self.handle, self.vip_link().0, vips).await
    }

    async fn add_routes(&mut self, set: &RouteSet) -> Vec<RouteError> {
        set.add(&self.handle).await
    }

    async fn remove_routes(&mut self, set: &RouteSet) -> Vec<RouteError> {
        set.remove(&self.handle).await
    }

    async fn restore_vip(&mut self, vip: &VirtualIpAddress) -> Result<bool, VipError> {
        // The removal may have been our own, just before we became MASTER again.
        let ifindex = self.vip_link().0;
        if vip::has_vip(&self.handle, ifindex, vip).await? {
            return Ok(false);
        }
        vip::add_vips(&self.handle, ifindex, std::slice::from_ref(vip)).await?;
        Ok(true)
    }

    fn announce(&mut self, vip: IpAddr) -> io::Result<()> {
        let (ifindex, mac) = self.vip_link();
        vip::announce(ifindex, mac, vip)
    }

    async fn forward(&mut self, state: State) {
        self.gate.set(&self.instance, state).await;
    }

    fn notify(&mut self, state: State, priority: u8) {
        // keepalived's names: leaving service is STOP, not INIT.
        let state = VrrpState::from(state);
        let config = self.notify_config.borrow().clone();
        track::notify(&config, state, priority, &self.notifier.script_policy());
        let transition = Notification::Vrrp {
            instance: &self.instance,
            state,
            priority,
        };
        self.notifier.announce(&transition, config.smtp_alert);
    }

    fn publish(&mut self, status: InstanceStatus) {
        if let Ok(mut board) = self.board.lock() {
            board.insert(status.name.clone(), status);
        }
    }

    async fn link_up(&mut self, ifindex: u32) -> Result<bool, NetlinkError> {
        crate::netlink::link_up(&self.handle, ifindex).await
    }

    fn ifindex(&self) -> u32 {
        self.ifindex
    }

    fn socket_open(&self) -> bool {
        !self.reopen
    }

    async fn rebind(&mut self, ifindex: u32) {
        self.ifindex = ifindex;
        self.socket_config.ifindex = ifindex;
        self.reopen = true;
        match crate::netlink::link_mac(&self.handle, ifindex).await {
            Ok(mac) => self.mac = mac,
            Err(e) => tracing::warn!(instance = %self.instance, "MAC of the new interface: {e}"),
        }
        // The macvlan went with the old interface: make it again over the new one.
        if let Some(hold) = &self.vmac {
            let base = super::net::if_name(ifindex)
                .map(|n| String::from_utf8_lossy(n.strip_suffix(&[0]).unwrap_or(&n)).into_owned())
                .unwrap_or_default();
            if let Err(e) = hold.make(&self.handle, ifindex, &base).await {
                tracing::error!(instance = %self.instance, "VMAC on the new interface: {e}");
            }
        }
        self.reopened();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_use_keepalived_s_state_names() {
        let names = [
            State::Master,
            State::Backup,
            State::Fault,
            State::Initialize,
        ]
        .map(|s| VrrpState::from(s).to_string());
        assert_eq!(names, ["MASTER", "BACKUP", "FAULT", "STOP"]);
    }
}
