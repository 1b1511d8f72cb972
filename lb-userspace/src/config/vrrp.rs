//! `[vrrp_script.NAME]` and `[[vrrp_instance]]`: keepalived's VRRP keywords.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::de;

fn one_second() -> f64 {
    1.0
}
fn one() -> u32 {
    1
}
fn default_priority() -> u8 {
    100
}
fn default_version() -> u8 {
    2
}
fn three() -> u32 {
    3
}

/// `[vrrp_script.NAME]`: a command run periodically; instances that list it in
/// `track_script` move their priority (or go to FAULT) with its exit status.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpScript {
    /// The command line (split into words and run without a shell, as keepalived 2).
    pub script: String,
    /// Seconds between runs. Default 1.
    #[serde(default = "one_second", deserialize_with = "de::seconds")]
    pub interval: f64,
    /// Seconds after which a run counts as failed. Default: `interval`.
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub timeout: Option<f64>,
    /// Priority adjustment, -253..=253. 0 (default): failure puts the instance in
    /// FAULT; > 0 is added while the script succeeds; < 0 is added while it fails.
    #[serde(default, deserialize_with = "de::track_weight")]
    pub weight: i32,
    /// keepalived's `weight N reverse`: apply the weight in the opposite sense.
    /// Default false.
    #[serde(default)]
    pub reverse: bool,
    /// Consecutive successes before the script counts as up. Default 1.
    #[serde(default = "one", deserialize_with = "de::positive")]
    pub rise: u32,
    /// Consecutive failures before the script counts as down. Default 1.
    #[serde(default = "one", deserialize_with = "de::positive")]
    pub fall: u32,
    /// `user [group]` to run the script as. Default: global `script_user`, else root.
    pub user: Option<String>,
    /// Start in the failed state until the first success. Default false.
    #[serde(default)]
    pub init_fail: bool,
}

/// `[[vrrp_sync_group]]`: keepalived's `vrrp_sync_group`, instances that change state
/// together. One member going to FAULT takes every member to FAULT; one becoming MASTER
/// takes the others to MASTER (and only when all of them can: a member whose master-down
/// timer fires waits until every other member's has, keepalived's "prefer backup to
/// avoid thrashing"); one leaving MASTER for BACKUP takes the others to BACKUP.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpSyncGroup {
    /// keepalived's `vrrp_sync_group NAME`; unique, in logs, notify arguments, status.
    pub name: String,
    /// The `vrrp_instance` names of the group; an instance is in one group at most.
    /// A group of one instance is accepted (keepalived warns that it is probably not
    /// what you want).
    pub group: Vec<String>,
    /// Command run once when the group becomes MASTER. Default: none.
    pub notify_master: Option<String>,
    /// Command run once when the group becomes BACKUP. Default: none.
    pub notify_backup: Option<String>,
    /// Command run once when the group enters FAULT. Default: none.
    pub notify_fault: Option<String>,
    /// Command run when the group stops. Default: none.
    pub notify_stop: Option<String>,
    /// Command run on every group transition with `GROUP NAME STATE` appended.
    /// Default: none.
    pub notify: Option<String>,
    /// `user [group]` that `notify_master` runs as (keepalived's `notify_master "CMD"
    /// USER [GROUP]`), and so on for each notify key. Default: as every command
    /// (`global_defs.script_user`, ...).
    pub notify_master_user: Option<String>,
    pub notify_backup_user: Option<String>,
    pub notify_fault_user: Option<String>,
    pub notify_stop_user: Option<String>,
    pub notify_user: Option<String>,
    /// Mail on group transitions to MASTER and BACKUP (keepalived's "All VRRP group
    /// instances are now in ... state"). Default: `global_defs.smtp_alert`.
    pub smtp_alert: Option<bool>,
    /// Interfaces tracked by every member, as a member's own `track_interface` entries.
    #[serde(default)]
    pub track_interface: Vec<String>,
    /// `vrrp_script`s tracked by every member, as a member's own `track_script` entries.
    #[serde(default)]
    pub track_script: Vec<String>,
    /// keepalived's `sync_group_tracking_weight`: let the members' tracked scripts and
    /// interfaces with a weight move their priority. Without it, as in keepalived, a
    /// member leaves out every tracked script or interface that has a weight ("ignoring
    /// tracked script with weights due to SYNC group"): only FAULT trackers count.
    /// Default false.
    #[serde(default)]
    pub sync_group_tracking_weight: bool,
}

/// Initial VRRP state, TOML `"MASTER"` or `"BACKUP"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialState {
    /// Start as MASTER (keepalived still waits for adverts unless priority is 255).
    Master,
    /// keepalived's default.
    #[default]
    Backup,
}

impl TryFrom<String> for InitialState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "MASTER" => Ok(Self::Master),
            "BACKUP" => Ok(Self::Backup),
            _ => Err(format!(
                "unknown state {s:?}: expected \"MASTER\" or \"BACKUP\""
            )),
        }
    }
}

impl InitialState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Master => "MASTER",
            Self::Backup => "BACKUP",
        }
    }
}

/// VRRPv2 authentication type. Only `"PASS"`: `"AH"` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthType {
    #[default]
    Pass,
}

impl TryFrom<String> for AuthType {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "PASS" => Ok(Self::Pass),
            "AH" => Err("auth_type AH (IPsec AH) is not supported: use PASS, or no \
                         authentication"
                .to_owned()),
            _ => Err(format!("unknown auth_type {s:?}: expected \"PASS\"")),
        }
    }
}

/// `authentication = { auth_type = "PASS", auth_pass = "..." }` (VRRPv2 only; removed
/// from the protocol by RFC 3768 but kept for interworking with keepalived).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Authentication {
    /// Default `"PASS"`.
    #[serde(default)]
    pub auth_type: AuthType,
    /// 1 to 8 characters (keepalived silently truncates longer ones; xlb refuses them).
    pub auth_pass: String,
}

fn two() -> u32 {
    2
}

/// `track_reference = { addresses = [...], interval, timeout, fall, rise }`: the seed's
/// arbitration by reference address (ICMP / ICMPv6 echo).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrackReference {
    /// Addresses pinged (IPv4 or IPv6); reachable while any one answers. At least one.
    pub addresses: Vec<IpAddr>,
    /// Seconds between rounds of pings. Default 1.
    #[serde(default = "one_second", deserialize_with = "de::seconds")]
    pub interval: f64,
    /// Seconds a ping waits for its reply. Default: `interval`.
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub timeout: Option<f64>,
    /// Consecutive failed rounds before the references count as unreachable. Default 3.
    #[serde(default = "three", deserialize_with = "de::positive")]
    pub fall: u32,
    /// Consecutive answered rounds before they count as reachable again. Default 2.
    #[serde(default = "two", deserialize_with = "de::positive")]
    pub rise: u32,
}

/// `heartbeat = { interface, unicast_src_ip, unicast_peer }`: a second path for an
/// instance's adverts (the seed's redundant heartbeat lines).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The interface of the second path (a dedicated heartbeat link).
    pub interface: String,
    /// Source address of the adverts on it: one of this host's addresses there.
    pub unicast_src_ip: IpAddr,
    /// The peers' addresses on it; the adverts go to each by unicast.
    pub unicast_peer: Vec<IpAddr>,
}

/// `[[vrrp_instance]]`: one VRRP virtual router.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpInstance {
    /// keepalived's `vrrp_instance NAME`; unique, used in logs, notify scripts, status.
    pub name: String,
    /// Initial state. Default `"BACKUP"`.
    #[serde(default)]
    pub state: InitialState,
    /// Interface the adverts are sent and received on, and the VIPs are added to
    /// (unless a VIP says `dev`).
    pub interface: String,
    /// 1..=255, shared by the routers of this instance.
    #[serde(deserialize_with = "de::vrid")]
    pub virtual_router_id: u8,
    /// 1..=255; highest wins. 255 means "address owner" (the VIPs are this host's own
    /// addresses): such an instance takes over at once. Default 100.
    #[serde(default = "default_priority", deserialize_with = "de::priority")]
    pub priority: u8,
    /// Seconds between adverts. Default 1. VRRPv2: whole seconds 1..=255;
    /// VRRPv3: 0.01..=40.95 in steps of 0.01.
    #[serde(default = "one_second", deserialize_with = "de::seconds")]
    pub advert_int: f64,
    /// 2 or 3. Default: `global_defs.vrrp_version` (2); an instance with IPv6 VIPs
    /// always runs version 3. After [`Config::parse`](super::Config::parse) this holds the
    /// version in force.
    #[serde(default = "default_version", deserialize_with = "de::vrrp_version")]
    pub version: u8,
    /// Do not take over from a lower-priority master. Default false. Needs
    /// `state = "BACKUP"` to matter, as in keepalived.
    #[serde(default)]
    pub nopreempt: bool,
    /// Seconds to wait before preempting a lower-priority master, 0..=1000. Default 0.
    #[serde(default, deserialize_with = "de::seconds")]
    pub preempt_delay: f64,
    /// VRRPv2 simple password. Default: none.
    pub authentication: Option<Authentication>,
    /// The VIPs, in keepalived's syntax:
    /// `ADDR[/PREFIX] [brd ADDR] [dev IFNAME] [scope SCOPE] [label LABEL] [no_track]`.
    /// Without a prefix, /32 (IPv4) or /128 (IPv6). All of one address family: they are
    /// carried in the adverts. See [`VrrpInstance::virtual_addresses`].
    #[serde(default)]
    pub virtual_ipaddress: Vec<String>,
    /// More VIPs, same syntax, not carried in adverts (and may be of the other family).
    #[serde(default)]
    pub virtual_ipaddress_excluded: Vec<String>,
    /// keepalived's `virtual_routes`: routes added when the instance becomes MASTER
    /// (after its VIPs, so `src VIP` works) and removed when it leaves MASTER; syntax
    /// in [`IpRoute`](super::IpRoute). Default: none.
    #[serde(default)]
    pub virtual_routes: Vec<String>,
    /// keepalived's `virtual_rules`: routing policy rules, added and removed as
    /// `virtual_routes`; syntax in [`IpRule`](super::IpRule). Default: none.
    #[serde(default)]
    pub virtual_rules: Vec<String>,
    /// Source address of unicast adverts. Default: the interface's primary address.
    pub unicast_src_ip: Option<IpAddr>,
    /// Send adverts to these peers by unicast instead of multicast. Default: none
    /// (multicast to 224.0.0.18 / ff02::12).
    #[serde(default)]
    pub unicast_peer: Vec<IpAddr>,
    /// Source address of multicast adverts. Default: the interface's primary address.
    pub mcast_src_ip: Option<IpAddr>,
    /// Interfaces whose link state is tracked: `"eth1"` (down puts the instance in
    /// FAULT) or `"eth1 weight -20 [reverse]"` (moves the priority). Default: none.
    #[serde(default)]
    pub track_interface: Vec<String>,
    /// `vrrp_script` names tracked, `"chk"` or `"chk weight -20 [reverse|noreverse]"`
    /// (a weight here overrides the script's). Default: none.
    #[serde(default)]
    pub track_script: Vec<String>,
    /// xlb's split-brain arbitration (no keepalived keyword): reference addresses (the
    /// gateway) pinged every `interval`. While none answers, a MASTER goes to FAULT (gives
    /// up the VIPs) and a BACKUP whose master is down goes to FAULT instead of MASTER.
    /// Default: none.
    pub track_reference: Option<TrackReference>,
    /// xlb's redundant heartbeat path (no keepalived keyword): the adverts are also sent
    /// to and received from these unicast peers on a second interface; only the loss of
    /// every path counts as the master down. Default: none.
    pub heartbeat: Option<Heartbeat>,
    /// Do not go to FAULT when `interface` itself goes down. Default false.
    #[serde(default)]
    pub dont_track_primary: bool,
    /// keepalived's `use_vmac [NAME]`: the VRRP virtual MAC (00:00:5e:00:01:VRID, IPv6
    /// 00:00:5e:00:02:VRID) on a private-mode macvlan over `interface`, created at start
    /// and up in every state; the VIPs without `dev` go on it, and adverts and gratuitous
    /// ARP / NA leave from it. `true` names it `vrrp.VRID` (keepalived's default), a string
    /// names it. Default: none.
    pub use_vmac: Option<UseVmac>,
    /// With `use_vmac`: adverts leave from `interface` with its own MAC (the VIPs and
    /// gratuitous ARP / NA stay on the virtual MAC). Default false.
    #[serde(default)]
    pub vmac_xmit_base: bool,
    /// VRRPv3 Accept Mode: accept packets to the VIPs when not the address owner.
    /// xlb always does (it installs no firewall rules to drop them), so only `true` is
    /// accepted; under `global_defs.vrrp_strict`, whose default is keepalived's
    /// `no_accept`, it must be written. Default: true.
    pub accept: Option<bool>,
    /// Command run on becoming MASTER. Default: none.
    pub notify_master: Option<String>,
    /// Command run on becoming BACKUP. Default: none.
    pub notify_backup: Option<String>,
    /// Command run on entering FAULT. Default: none.
    pub notify_fault: Option<String>,
    /// Command run when the instance stops. Default: none.
    pub notify_stop: Option<String>,
    /// Command run on every transition, with `INSTANCE NAME STATE PRIORITY` appended.
    /// Default: none.
    pub notify: Option<String>,
    /// `user [group]` that `notify_master` runs as (keepalived's `notify_master "CMD"
    /// USER [GROUP]`), and so on for each notify key. Default: as every command
    /// (`global_defs.script_user`, ...).
    pub notify_master_user: Option<String>,
    pub notify_backup_user: Option<String>,
    pub notify_fault_user: Option<String>,
    pub notify_stop_user: Option<String>,
    pub notify_user: Option<String>,
    /// Mail on transitions. Default: `global_defs.smtp_alert`.
    pub smtp_alert: Option<bool>,
    /// Seconds between the first gratuitous ARP/NA burst on becoming MASTER and the
    /// second one. Default: `global_defs.vrrp_garp_master_delay` (5).
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub garp_master_delay: Option<f64>,
    /// Gratuitous ARP/NA messages per burst. Default:
    /// `global_defs.vrrp_garp_master_repeat` (5).
    #[serde(default, deserialize_with = "de::opt_count")]
    pub garp_master_repeat: Option<u32>,
    /// Seconds between periodic gratuitous ARP/NA while MASTER (0: none). Default:
    /// `global_defs.vrrp_garp_master_refresh` (0).
    #[serde(default, deserialize_with = "de::opt_seconds")]
    pub garp_master_refresh: Option<f64>,
    /// Messages per periodic refresh. Default:
    /// `global_defs.vrrp_garp_master_refresh_repeat` (1).
    #[serde(default, deserialize_with = "de::opt_count")]
    pub garp_master_refresh_repeat: Option<u32>,
    /// The master-down timer is this many advert intervals (plus skew): how many
    /// adverts a backup misses before it takes over. 1..=100; default
    /// `global_defs.vrrp_down_timer_adverts` (3, as the RFCs say; anything else
    /// deviates from the protocol, so `vrrp_strict` refuses it). After
    /// [`Config::parse`](super::Config::parse) this holds the value in force.
    #[serde(default = "three", deserialize_with = "de::down_timer_adverts")]
    pub down_timer_adverts: u32,
    /// Compare a received advert's address list with ours only when it comes from
    /// another master than the previous advert (a mismatch is counted and logged, the
    /// advert still accepted). Default: `global_defs.vrrp_skip_check_adv_addr` (false);
    /// after [`Config::parse`](super::Config::parse) the value in force.
    #[serde(default)]
    pub skip_check_adv_addr: bool,
    /// With `unicast_peer`: drop (and count) adverts whose source is not one of the
    /// peers. Default: `global_defs.vrrp_check_unicast_src` (false); after
    /// [`Config::parse`](super::Config::parse) the value in force.
    #[serde(default)]
    pub check_unicast_src: bool,
    /// VRRPv3 over IPv4: compute the checksum without the IPv4 pseudo-header (what
    /// RFC 9568 settles on, and some routers do). Received adverts are accepted with
    /// either checksum. Default false (keepalived's default).
    #[serde(default)]
    pub v3_checksum_as_v2: bool,
}

/// `use_vmac = true` or `use_vmac = "NAME"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum UseVmac {
    /// `true`: the default name, `vrrp.VRID`; `false`: no VMAC.
    Flag(bool),
    /// The macvlan's name.
    Name(String),
}

impl VrrpInstance {
    /// The VMAC interface's name when `use_vmac` is on: the configured one, else
    /// keepalived's `vrrp.VRID` (at most 9 characters, within IFNAMSIZ).
    pub fn vmac_name(&self) -> Option<String> {
        match &self.use_vmac {
            None | Some(UseVmac::Flag(false)) => None,
            Some(UseVmac::Flag(true)) => Some(format!("vrrp.{}", self.virtual_router_id)),
            Some(UseVmac::Name(n)) => Some(n.clone()),
        }
    }

    /// The parsed `virtual_ipaddress` entries. [`Config::parse`](super::Config::parse)
    /// has rejected any that do not parse; on a hand-built instance such entries are
    /// skipped.
    pub fn virtual_addresses(&self) -> Vec<VirtualIpAddress> {
        self.virtual_ipaddress
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// The parsed `virtual_ipaddress_excluded` entries (same rules).
    pub fn excluded_addresses(&self) -> Vec<VirtualIpAddress> {
        self.virtual_ipaddress_excluded
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// Just the addresses of `virtual_ipaddress` and `virtual_ipaddress_excluded`: what
    /// this instance owns.
    pub fn vips(&self) -> Vec<IpAddr> {
        self.virtual_addresses()
            .into_iter()
            .chain(self.excluded_addresses())
            .map(|v| v.addr)
            .collect()
    }

    /// Whether `ip` is one of this instance's VIPs (advertised or excluded).
    pub fn owns(&self, ip: IpAddr) -> bool {
        self.vips().contains(&ip)
    }

    /// The address family of the advertised VIPs (`None` without any).
    pub fn is_ipv6(&self) -> Option<bool> {
        self.virtual_addresses().first().map(|v| v.addr.is_ipv6())
    }

    /// Parsed `virtual_routes` entries.
    pub fn virtual_route_list(&self) -> Vec<super::IpRoute> {
        self.virtual_routes
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// Parsed `virtual_rules` entries.
    pub fn virtual_rule_list(&self) -> Vec<super::IpRule> {
        self.virtual_rules
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// Parsed `track_interface` entries.
    pub fn tracked_interfaces(&self) -> Vec<TrackEntry> {
        self.track_interface
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// Parsed `track_script` entries.
    pub fn tracked_scripts(&self) -> Vec<TrackEntry> {
        self.track_script
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }
}

/// One `virtual_ipaddress` entry, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualIpAddress {
    pub addr: IpAddr,
    /// Default /32 (IPv4) or /128 (IPv6).
    pub prefix_len: u8,
    /// `brd ADDR` (IPv4 only).
    pub brd: Option<Ipv4Addr>,
    /// `dev IFNAME`: add on this interface instead of the instance's.
    pub dev: Option<String>,
    /// `scope site|link|host|nowhere|global`.
    pub scope: Option<String>,
    /// `label LABEL` (IPv4 only, `ifconfig` alias compatibility).
    pub label: Option<String>,
    /// `no_track`: the address vanishing does not put the instance in FAULT.
    pub no_track: bool,
}

impl FromStr for VirtualIpAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let first = words.next().ok_or("empty address")?;
        let (addr_s, prefix_s) = match first.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (first, None),
        };
        let addr: IpAddr = addr_s
            .parse()
            .map_err(|_| format!("{addr_s:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix_s {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("/{p} is not a prefix length (0..={max})"))?,
        };
        let mut vip = Self {
            addr,
            prefix_len,
            brd: None,
            dev: None,
            scope: None,
            label: None,
            no_track: false,
        };
        while let Some(word) = words.next() {
            let mut arg = |what: &str| {
                words
                    .next()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`{word}` needs {what}"))
            };
            match word {
                "brd" | "broadcast" => {
                    let b = arg("an address")?;
                    if addr.is_ipv6() {
                        return Err("`brd` is for IPv4 addresses".to_owned());
                    }
                    vip.brd = Some(
                        b.parse()
                            .map_err(|_| format!("{b:?} is not an IPv4 address"))?,
                    );
                }
                "dev" => vip.dev = Some(arg("an interface name")?),
                "scope" => {
                    let sc = arg("a scope")?;
                    if !["site", "link", "host", "nowhere", "global"].contains(&sc.as_str()) {
                        return Err(format!(
                            "unknown scope {sc:?}: expected site, link, host, nowhere or global"
                        ));
                    }
                    vip.scope = Some(sc);
                }
                "label" => vip.label = Some(arg("a label")?),
                "no_track" => vip.no_track = true,
                other => {
                    return Err(format!(
                        "`{other}` is not supported here (xlb takes ADDR[/PREFIX] [brd ADDR] \
                         [dev IFNAME] [scope SCOPE] [label LABEL] [no_track])"
                    ));
                }
            }
        }
        Ok(vip)
    }
}

impl fmt::Display for VirtualIpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)?;
        if let Some(b) = self.brd {
            write!(f, " brd {b}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if let Some(s) = &self.scope {
            write!(f, " scope {s}")?;
        }
        if let Some(l) = &self.label {
            write!(f, " label {l}")?;
        }
        if self.no_track {
            f.write_str(" no_track")?;
        }
        Ok(())
    }
}

/// A `track_interface` / `track_script` entry: `NAME [weight N] [reverse|noreverse]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackEntry {
    pub name: String,
    /// -253..=253; `None`: the script's own weight (scripts) or FAULT (interfaces).
    pub weight: Option<i32>,
    pub reverse: bool,
}

impl FromStr for TrackEntry {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split_whitespace();
        let name = words.next().ok_or("empty entry")?.to_owned();
        let mut entry = Self {
            name,
            weight: None,
            reverse: false,
        };
        while let Some(word) = words.next() {
            match word {
                "weight" => {
                    let w = words.next().ok_or("`weight` needs a number")?;
                    let w: i32 = w
                        .parse()
                        .ok()
                        .filter(|w: &i32| (-253..=253).contains(w))
                        .ok_or_else(|| format!("weight {w} is not in -253..=253"))?;
                    entry.weight = Some(w);
                }
                "reverse" => entry.reverse = true,
                "noreverse" => entry.reverse = false,
                other => {
                    return Err(format!(
                        "unexpected `{other}`: expected NAME [weight N] [reverse|noreverse]"
                    ));
                }
            }
        }
        Ok(entry)
    }
}

// Enums are strings in TOML; these keep that true when a Config is serialized (for
// `xlb import-keepalived` and status output).
macro_rules! string_enum_serde {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
pub(crate) use string_enum_serde;

impl AuthType {
    pub fn as_str(self) -> &'static str {
        "PASS"
    }
}

string_enum_serde!(InitialState, AuthType);
