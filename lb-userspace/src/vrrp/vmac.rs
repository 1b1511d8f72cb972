//! `use_vmac`: the VRRP virtual MAC on a macvlan, as keepalived 2.x makes it
//! (`vrrp_vmac.c`, `vrrp_if_config.c`).
//!
//! - A macvlan in **private** mode over the instance's interface, MAC 00:00:5e:00:01:VRID
//!   (IPv6: 00:00:5e:00:02:VRID, RFC 5798 7.3), named `vrrp.VRID` unless `use_vmac NAME`.
//!   It is created when the instance starts and stays **up in every state** (keepalived 2
//!   brings it up at creation and never down); the VIPs come and go on it. xlb marks the
//!   ones it creates with the alias `xlb vrrp_instance NAME` and deletes only those.
//! - An interface of that name that already exists is adopted when it is a private
//!   macvlan over the right interface with the right MAC (a daemon killed with `kill -9`
//!   left it). One of ours that does not fit is deleted and created again; anything else
//!   (not a macvlan, or a macvlan someone else made) is never touched: the instance does
//!   not start, and says why.
//! - Sysctls, as keepalived sets them: on the VMAC `arp_ignore=1` (it must not answer ARP
//!   for the base's addresses); IPv4 also `accept_local=1` (it hears the other routers'
//!   adverts, whose source MAC may be its own virtual MAC), `rp_filter=0` (it receives
//!   adverts with no address of its own) and `promote_secondaries=1`. On the base
//!   (IPv4) `arp_ignore=1` and `arp_filter=1` (it must not answer ARP for the VIPs on the
//!   VMAC), put back as they were when the last VMAC over it goes. `rp_filter` is the
//!   higher of `all` and the interface's, so when `all.rp_filter` is set keepalived moves
//!   its value onto `default` and every interface and sets `all` to 0 (restored when the
//!   last VMAC goes, if still 0); so does xlb. IPv6 is disabled on an IPv4 VMAC that
//!   carries no IPv6 VIP, and the VMAC gets no automatic link-local address
//!   (`addr_gen_mode` 1, RFC 5798 7.4); an IPv6 VMAC gets the base's link-local address,
//!   the adverts' source, unless `vmac_xmit_base`.
//! - The XDP program stays on the base interface: frames for the virtual MAC arrive on the
//!   base NIC and XDP sees them before the macvlan does.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::{Handle, LinkMacVlan, LinkUnspec};
use thiserror::Error;
use tracing::{info, warn};

use super::spec::VmacSpec;
use crate::config::VirtualIpAddress;

/// The alias xlb gives the macvlans it creates: what it may delete.
fn alias(instance: &str) -> String {
    format!("xlb vrrp_instance {instance}")
}

/// RFC 3768 7.3 / RFC 5798 7.3: 00-00-5E-00-01-{VRID} (IPv4), 00-00-5E-00-02-{VRID} (IPv6).
pub fn virtual_mac(vrid: u8, ipv6: bool) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid]
}

#[derive(Debug, Error)]
pub enum VmacError {
    #[error(
        "use_vmac: interface {name} exists and {what}: xlb does not change an interface it did \
         not create (delete it, or name the VMAC with use_vmac = \"NAME\")"
    )]
    Conflict { name: String, what: String },
    #[error("use_vmac {name}: {source}")]
    Netlink {
        name: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("use_vmac {name}: the macvlan was created but is not found")]
    Vanished { name: String },
}

/// A VMAC in use by an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vmac {
    pub name: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// Created by xlb (carries our alias): deleted when the instance stops.
    pub ours: bool,
    /// The base interface's name, whose ARP sysctls were set (IPv4).
    base_arp: Option<String>,
}

/// What an interface of the VMAC's name is now.
struct Existing {
    ifindex: u32,
    macvlan: bool,
    private: bool,
    link: Option<u32>,
    mac: Option<[u8; 6]>,
    alias: Option<String>,
}

fn existing(msg: &LinkMessage) -> Existing {
    let mut e = Existing {
        ifindex: msg.header.index,
        macvlan: false,
        private: false,
        link: None,
        mac: None,
        alias: None,
    };
    for a in &msg.attributes {
        match a {
            LinkAttribute::Link(l) => e.link = Some(*l),
            LinkAttribute::Address(m) => e.mac = m.as_slice().try_into().ok(),
            LinkAttribute::IfAlias(s) => e.alias = Some(s.clone()),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(InfoKind::MacVlan) => e.macvlan = true,
                        LinkInfo::Data(InfoData::MacVlan(d)) => {
                            e.private = d
                                .iter()
                                .any(|x| matches!(x, InfoMacVlan::Mode(MacVlanMode::Private)));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    e
}

/// What to do with an interface that already has the VMAC's name.
enum Judgement {
    /// A private macvlan over the base with the VRRP MAC: used as it is (deleted at the
    /// end only if `ours`).
    Adopt { ours: bool },
    /// One of ours that does not fit: deleted and created again.
    Recreate,
    /// Anything else: left alone, and why it cannot be used.
    Conflict(String),
}

fn judge(e: &Existing, base_ifindex: u32, base_name: &str, mac: [u8; 6]) -> Judgement {
    let fits = e.macvlan && e.private && e.link == Some(base_ifindex) && e.mac == Some(mac);
    let marked = e
        .alias
        .as_deref()
        .is_some_and(|a| a.starts_with("xlb vrrp_instance "));
    if fits {
        Judgement::Adopt { ours: marked }
    } else if e.macvlan && marked {
        Judgement::Recreate
    } else if !e.macvlan {
        Judgement::Conflict("is not a macvlan".to_owned())
    } else if e.link != Some(base_ifindex) {
        Judgement::Conflict(format!(
            "is a macvlan over another interface than {base_name}"
        ))
    } else if e.mac != Some(mac) {
        Judgement::Conflict(format!(
            "is a macvlan with another MAC than {}",
            mac_string(&mac)
        ))
    } else {
        Judgement::Conflict("is a macvlan not in private mode".to_owned())
    }
}

/// For `xlb check`: why the interface called `name` cannot be the VMAC over
/// `base_ifindex` (`base_name`) with `mac`, if it exists and cannot.
pub async fn conflict(
    handle: &Handle,
    name: &str,
    base_ifindex: u32,
    base_name: &str,
    mac: [u8; 6],
) -> Result<Option<String>, rtnetlink::Error> {
    let Some(msg) = lookup(handle, name).await? else {
        return Ok(None);
    };
    Ok(match judge(&existing(&msg), base_ifindex, base_name, mac) {
        Judgement::Conflict(what) => Some(format!(
            "interface {name} exists and {what}: xlb does not change an interface it did not \
             create (delete it, or name the VMAC with use_vmac = \"NAME\")"
        )),
        _ => None,
    })
}

async fn lookup(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, rtnetlink::Error> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(m) => Ok(m),
        Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates (or adopts) the instance's VMAC over `base_ifindex`, sets the sysctls and
/// brings it up. `link_local`: for IPv6 without `vmac_xmit_base`, the adverts' source
/// address, added to the VMAC. `other_family`: the instance has VIPs of the other
/// family (an IPv4 VMAC then keeps IPv6).
#[expect(
    clippy::too_many_arguments,
    reason = "one call site, each argument named there"
)]
pub async fn ensure(
    handle: &Handle,
    instance: &str,
    spec: &VmacSpec,
    vrid: u8,
    ipv6: bool,
    base_ifindex: u32,
    base_name: &str,
    link_local: Option<Ipv6Addr>,
    other_family: bool,
) -> Result<Vmac, VmacError> {
    let name = &spec.name;
    let nl = |source| VmacError::Netlink {
        name: name.clone(),
        source,
    };
    let mac = virtual_mac(vrid, ipv6);
    let marker = alias(instance);
    let mut ours = true;
    let mut create = true;
    if let Some(msg) = lookup(handle, name).await.map_err(nl)? {
        let e = existing(&msg);
        match judge(&e, base_ifindex, base_name, mac) {
            Judgement::Adopt { ours: marked } => {
                create = false;
                ours = marked;
                info!(
                    instance,
                    vmac = %name,
                    ours,
                    "VMAC interface exists with the right MAC and mode: adopted"
                );
            }
            Judgement::Recreate => {
                info!(instance, vmac = %name, "VMAC interface of ours does not fit (MAC, mode or base): re-creating it");
                handle.link().del(e.ifindex).execute().await.map_err(nl)?;
            }
            Judgement::Conflict(what) => {
                return Err(VmacError::Conflict {
                    name: name.clone(),
                    what,
                });
            }
        }
    }
    if create {
        let msg = LinkMacVlan::new(name, base_ifindex, MacVlanMode::Private)
            .address(mac.to_vec())
            .build();
        handle.link().add(msg).execute().await.map_err(nl)?;
        info!(instance, vmac = %name, base = base_name, mac = %mac_string(&mac), "VMAC interface created");
    }
    let ifindex = match lookup(handle, name).await.map_err(nl)? {
        Some(m) => m.header.index,
        None => return Err(VmacError::Vanished { name: name.clone() }),
    };
    if ours {
        let msg = LinkUnspec::new_with_index(ifindex)
            .append_extra_attribute(LinkAttribute::IfAlias(marker))
            .build();
        if let Err(e) = handle.link().set(msg).execute().await {
            warn!(instance, vmac = %name, "setting the VMAC's alias: {e}");
        }
    }
    // Sysctls before the link is up: no automatic link-local address, no IPv6 on an
    // IPv4-only VMAC.
    set_sysctl(&format!("net/ipv4/conf/{name}/arp_ignore"), "1");
    if !ipv6 {
        clear_rp_filter();
        set_sysctl(&format!("net/ipv4/conf/{name}/accept_local"), "1");
        set_sysctl(&format!("net/ipv4/conf/{name}/rp_filter"), "0");
        set_sysctl(&format!("net/ipv4/conf/{name}/promote_secondaries"), "1");
    }
    set_sysctl(&format!("net/ipv6/conf/{name}/addr_gen_mode"), "1");
    let ipv6_on = ipv6 || other_family;
    set_sysctl(
        &format!("net/ipv6/conf/{name}/disable_ipv6"),
        if ipv6_on { "0" } else { "1" },
    );
    let base_arp = if ipv6 {
        None
    } else {
        set_base_arp(base_name);
        Some(base_name.to_owned())
    };
    let up = LinkUnspec::new_with_index(ifindex).up().build();
    handle.link().set(up).execute().await.map_err(nl)?;
    if let Some(ll) = link_local {
        let addr: VirtualIpAddress = format!("{ll}/64").parse().expect("a link-local /64 parses");
        if let Err(e) = super::vip::add_vips(handle, ifindex, &[addr]).await {
            warn!(instance, vmac = %name, "adding the link-local address {ll}: {e}");
        }
    }
    Ok(Vmac {
        name: name.clone(),
        ifindex,
        mac,
        ours,
        base_arp,
    })
}

/// Undoes [`ensure`]: deletes the VMAC if xlb created it, and puts the base's ARP
/// sysctls (and `all.rp_filter`) back when no VMAC needs them any more.
pub async fn remove(handle: &Handle, instance: &str, vmac: &Vmac) {
    if vmac.ours {
        // Only if it is still the one we made: a name taken over meanwhile is not ours.
        match lookup(handle, &vmac.name).await {
            Ok(Some(m)) if m.header.index == vmac.ifindex => {
                match handle.link().del(vmac.ifindex).execute().await {
                    Ok(()) => info!(instance, vmac = %vmac.name, "VMAC interface removed"),
                    Err(e) => {
                        warn!(instance, vmac = %vmac.name, "removing the VMAC interface: {e}")
                    }
                }
            }
            Ok(_) => {}
            Err(e) => warn!(instance, vmac = %vmac.name, "looking up the VMAC interface: {e}"),
        }
    } else {
        info!(instance, vmac = %vmac.name, "VMAC interface left in place: xlb did not create it");
    }
    if let Some(base) = &vmac.base_arp {
        reset_base_arp(base);
        restore_rp_filter();
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{key}")
}

fn get_sysctl(key: &str) -> Option<String> {
    std::fs::read_to_string(sysctl_path(key))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn set_sysctl(key: &str, value: &str) {
    if let Err(e) = std::fs::write(sysctl_path(key), value) {
        warn!("sysctl {} = {value}: {e}", key.replace('/', "."));
    }
}

/// The base interfaces whose `arp_ignore` / `arp_filter` xlb set: (VMACs over it, the
/// values before).
static BASE_ARP: Mutex<Option<HashMap<String, BaseArp>>> = Mutex::new(None);

/// (VMACs over the base, its `arp_ignore` and `arp_filter` before).
type BaseArp = (usize, Option<String>, Option<String>);

fn set_base_arp(base: &str) {
    let mut guard = BASE_ARP.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(entry) = map.get_mut(base) {
        entry.0 += 1;
        // Set again all the same: the interface may be a new one of that name.
        for key in ["arp_ignore", "arp_filter"] {
            let key = format!("net/ipv4/conf/{base}/{key}");
            if get_sysctl(&key).as_deref() != Some("1") {
                set_sysctl(&key, "1");
            }
        }
        return;
    }
    let ignore = get_sysctl(&format!("net/ipv4/conf/{base}/arp_ignore"));
    let filter = get_sysctl(&format!("net/ipv4/conf/{base}/arp_filter"));
    if ignore.as_deref() != Some("1") {
        set_sysctl(&format!("net/ipv4/conf/{base}/arp_ignore"), "1");
    }
    if filter.as_deref() != Some("1") {
        set_sysctl(&format!("net/ipv4/conf/{base}/arp_filter"), "1");
    }
    map.insert(base.to_owned(), (1, ignore, filter));
}

/// A base interface that went away: its saved values are dropped, not written back.
fn forget_base_arp(base: &str) {
    let mut guard = BASE_ARP.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(map) = guard.as_mut() {
        if let Some(entry) = map.get_mut(base) {
            entry.0 -= 1;
            if entry.0 == 0 {
                map.remove(base);
            }
        }
    }
}

fn reset_base_arp(base: &str) {
    let mut guard = BASE_ARP.lock().unwrap_or_else(|e| e.into_inner());
    let Some(map) = guard.as_mut() else {
        return;
    };
    let Some(entry) = map.get_mut(base) else {
        return;
    };
    entry.0 -= 1;
    if entry.0 > 0 {
        return;
    }
    let (_, ignore, filter) = map.remove(base).expect("present");
    if let Some(v) = ignore {
        set_sysctl(&format!("net/ipv4/conf/{base}/arp_ignore"), &v);
    }
    if let Some(v) = filter {
        set_sysctl(&format!("net/ipv4/conf/{base}/arp_filter"), &v);
    }
}

/// IPv4 VMACs using `all.rp_filter` cleared: (count, all's value, default's value before
/// it was raised).
static RP_FILTER: Mutex<(usize, Option<RpSaved>)> = Mutex::new((0, None));

/// `all.rp_filter` before, and `default.rp_filter` before it was raised.
type RpSaved = (u32, Option<u32>);

fn sysctl_u32(key: &str) -> Option<u32> {
    get_sysctl(key)?.parse().ok()
}

/// keepalived's `clear_rp_filter`: the effective `rp_filter` of an interface is the
/// higher of `all` and its own, so a VMAC gets 0 only with `all` at 0. Moves `all`'s
/// value onto `default` and onto every interface below it first, so no other interface
/// changes behaviour.
fn clear_rp_filter() {
    let mut guard = RP_FILTER.lock().unwrap_or_else(|e| e.into_inner());
    guard.0 += 1;
    if guard.0 > 1 {
        return;
    }
    let Some(all) = sysctl_u32("net/ipv4/conf/all/rp_filter") else {
        return;
    };
    if all == 0 {
        return;
    }
    let mut default_before = None;
    if let Some(d) = sysctl_u32("net/ipv4/conf/default/rp_filter") {
        if d < all {
            info!("NOTICE: setting sysctl net.ipv4.conf.default.rp_filter from {d} to {all}");
            set_sysctl("net/ipv4/conf/default/rp_filter", &all.to_string());
            default_before = Some(d);
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/sys/net/ipv4/conf") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "all" || name == "default" {
                continue;
            }
            let key = format!("net/ipv4/conf/{name}/rp_filter");
            if sysctl_u32(&key).is_some_and(|v| v < all) {
                set_sysctl(&key, &all.to_string());
            }
        }
    }
    info!("NOTICE: setting sysctl net.ipv4.conf.all.rp_filter from {all} to 0");
    set_sysctl("net/ipv4/conf/all/rp_filter", "0");
    guard.1 = Some((all, default_before));
}

/// keepalived's `restore_rp_filter`, when the last IPv4 VMAC goes: `all` (and `default`)
/// back to what they were, if nobody changed them meanwhile.
fn restore_rp_filter() {
    let mut guard = RP_FILTER.lock().unwrap_or_else(|e| e.into_inner());
    guard.0 = guard.0.saturating_sub(1);
    if guard.0 > 0 {
        return;
    }
    let Some((all, default_before)) = guard.1.take() else {
        return;
    };
    if sysctl_u32("net/ipv4/conf/all/rp_filter") == Some(0) {
        info!("NOTICE: resetting sysctl net.ipv4.conf.all.rp_filter to {all}");
        set_sysctl("net/ipv4/conf/all/rp_filter", &all.to_string());
    }
    if let Some(d) = default_before {
        if sysctl_u32("net/ipv4/conf/default/rp_filter") == Some(all) {
            set_sysctl("net/ipv4/conf/default/rp_filter", &d.to_string());
        }
    }
}

/// What an instance needs to make its VMAC again (on an interface re-created under a
/// new index, the macvlan went with the old one), and the VMAC it has now, shared
/// between its task (VIPs, adverts, announcements) and its stop.
#[derive(Clone, Debug)]
pub struct VmacHold {
    pub instance: String,
    pub spec: VmacSpec,
    pub vrid: u8,
    pub ipv6: bool,
    pub other_family: bool,
    pub link_local: Option<Ipv6Addr>,
    pub current: std::sync::Arc<Mutex<Option<Vmac>>>,
}

impl VmacHold {
    /// The VMAC now, if there is one.
    pub fn get(&self) -> Option<Vmac> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, v: Option<Vmac>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    /// Makes the VMAC over `base_ifindex` (`base_name`).
    pub async fn make(
        &self,
        handle: &Handle,
        base_ifindex: u32,
        base_name: &str,
    ) -> Result<Vmac, VmacError> {
        // Made before over an interface that is gone: what was set on it is forgotten
        // (an interface of the same name now has its own values, set again below).
        let old = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(Vmac {
            base_arp: Some(base),
            ..
        }) = old
        {
            forget_base_arp(&base);
            restore_rp_filter();
        }
        let v = ensure(
            handle,
            &self.instance,
            &self.spec,
            self.vrid,
            self.ipv6,
            base_ifindex,
            base_name,
            if self.spec.xmit_base {
                None
            } else {
                self.link_local
            },
            self.other_family,
        )
        .await?;
        self.set(Some(v.clone()));
        Ok(v)
    }

    /// Removes the VMAC (see [`remove`]) and forgets it.
    pub async fn release(&self, handle: &Handle) {
        let v = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(v) = v {
            remove(handle, &self.instance, &v).await;
        }
    }
}

/// Whether `addrs` holds an address of the other family than `ipv6`.
pub fn has_other_family(addrs: &[VirtualIpAddress], ipv6: bool) -> bool {
    addrs
        .iter()
        .any(|v| matches!(v.addr, IpAddr::V6(_)) != ipv6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_virtual_macs() {
        assert_eq!(virtual_mac(51, false), [0, 0, 0x5e, 0, 1, 51]);
        assert_eq!(virtual_mac(255, true), [0, 0, 0x5e, 0, 2, 255]);
        assert_eq!(mac_string(&virtual_mac(10, false)), "00:00:5e:00:01:0a");
    }

    #[test]
    fn other_family() {
        let v4: VirtualIpAddress = "198.18.0.100/32".parse().unwrap();
        let v6: VirtualIpAddress = "2001:db8::1/128".parse().unwrap();
        assert!(!has_other_family(std::slice::from_ref(&v4), false));
        assert!(has_other_family(&[v4, v6], false));
    }
}
