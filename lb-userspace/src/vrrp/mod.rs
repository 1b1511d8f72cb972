//! VRRP (RFC 3768 v2, RFC 5798 / 9568 v3), as keepalived runs it.
//!
//! The pure parts:
//! - `packet`: the wire codec and the receive checks.
//! - `machine`: the state machine, a function of (state, event, now) -> actions.
//! - `spec`: an instance's settings, from the config, and the views the others take of it;
//!   what a reload changes in place and what makes it restart.
//! - `receive`: which received packets become adverts for the machine; the reject log.
//! - `trackers`: an instance's tracked interfaces and scripts, and their combined effect.
//! - `garp`: when to announce the VIPs (keepalived's bursts and refresh).
//! - `sync`: `vrrp_sync_group`, the rules by which members change state together, and
//!   the handle their drivers share.
//!
//! The instance at work:
//! - `driver`: one instance's reactions to adverts, deadlines, trackers, a reload's new
//!   settings and stop, carried out through `io` in the order the rules require.
//! - `io`: the one trait for everything a driver does to the world, and its real
//!   implementation (socket, rtnetlink, the data-plane gate, notifications, status).
//! - `instance`: starting an instance on this host, and the handle the controller keeps
//!   (stop, new settings).
//! - `status`: what `xlb status` shows of each instance.
//!
//! The host mechanisms:
//! - `net`: the raw IP-protocol-112 sockets (multicast and unicast, TTL 255).
//! - `vip`: adding and removing the VIPs, gratuitous ARP / unsolicited NA.
//! - `vmac`: `use_vmac`, the virtual MAC's macvlan and the sysctls keepalived sets.
//! - `addr_watch`: addresses removed from interfaces, and when a VIP is put back.
//! - `track`: `vrrp_script` trackers, tracked-interface weights and notify commands.
//! - `reference`: `track_reference`, the pings to the reference addresses (split brain).

pub mod addr_watch;
mod driver;
pub mod garp;
pub mod instance;
mod io;
pub mod machine;
pub mod net;
pub mod packet;
mod receive;
pub mod reference;
pub mod spec;
pub mod status;
pub mod sync;
pub mod track;
mod trackers;
pub mod vip;
pub mod vmac;
