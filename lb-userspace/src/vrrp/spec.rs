//! An instance's settings in one shape: [`InstanceSpec`], resolved from the config once.
//!
//! The other parts take their own views of it from here and nowhere else: the state
//! machine's [`Params`], the codec's receive checks ([`LocalParams`]), the adverts we
//! send ([`Advert`]) and the socket they leave by ([`VrrpSocketConfig`]). A reload
//! compares specs: [`InstanceSpec::restart_reason`] says which instances must restart
//! (a new virtual router id, interface, version or address family: another VRRP router
//! as far as the peers can tell, as keepalived's `vrrp_exist` sees it), and
//! [`InstanceSpec::changes`] names what the others take in place.

use std::{net::IpAddr, time::Duration};

use super::{
    garp::GarpSchedule,
    machine::{Initial, Params},
    net::VrrpSocketConfig,
    packet::{Advert, Auth, Interval, LocalParams, V3Checksum, Version},
    receive::ReceivePolicy,
    track::Tracked,
};
use crate::config::{Config, InitialState, VirtualIpAddress, VrrpInstance};
use crate::netlink::route::RouteSet;

/// Everything an instance needs, resolved from the config.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceSpec {
    pub name: String,
    pub interface: String,
    pub params_priority: u8,
    pub version: Version,
    pub vrid: u8,
    pub advert_int: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub down_timer_adverts: u32,
    pub initial: Initial,
    pub auth: Auth,
    pub vips: Vec<VirtualIpAddress>,
    /// The addresses carried in adverts.
    pub advertised: Vec<IpAddr>,
    pub src: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub mcast_group: IpAddr,
    pub checksum: V3Checksum,
    pub garp: GarpSchedule,
    /// Tracked interfaces by name, and how each counts.
    pub track_interfaces: Vec<(String, Tracked)>,
    pub track_own_interface: bool,
    /// Tracked `vrrp_script`s by name, and how each counts.
    pub track_scripts: Vec<(String, Tracked)>,
    /// `use_vmac`: the virtual MAC's macvlan, and whether adverts leave from the base.
    pub vmac: Option<VmacSpec>,
    /// `virtual_routes` and `virtual_rules`: added with the VIPs on becoming MASTER,
    /// removed with them.
    pub routes: RouteSet,
    /// The config block, for the notify commands.
    pub config: VrrpInstance,
    /// The `vrrp_sync_group` the instance is in.
    pub sync_group: Option<String>,
    /// `track_reference`: the reference addresses pinged for split-brain arbitration.
    pub reference: Option<crate::config::TrackReference>,
    /// `heartbeat`: the second path of the adverts.
    pub heartbeat: Option<crate::config::Heartbeat>,
}

/// `use_vmac [NAME]` and `vmac_xmit_base`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmacSpec {
    /// The macvlan's name.
    pub name: String,
    /// Adverts leave from the base interface with its MAC, not from the VMAC.
    pub xmit_base: bool,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl InstanceSpec {
    pub fn from_config(cfg: &Config, i: &VrrpInstance) -> Self {
        let g = &cfg.global_defs;
        let vips = i.virtual_addresses();
        let advertised: Vec<IpAddr> = vips.iter().map(|v| v.addr).collect();
        let v6 = i.is_ipv6().unwrap_or(false);
        let version = if i.version == 3 {
            Version::V3
        } else {
            Version::V2
        };
        let auth = match (&i.authentication, version) {
            (Some(a), Version::V2) => Auth::pass(a.auth_pass.as_bytes()).unwrap_or(Auth::None),
            _ => Auth::None,
        };
        let mut all_vips = vips;
        all_vips.extend(i.excluded_addresses());
        Self {
            name: i.name.clone(),
            interface: i.interface.clone(),
            params_priority: i.priority,
            version,
            vrid: i.virtual_router_id,
            advert_int: secs(i.advert_int),
            preempt: !i.nopreempt,
            preempt_delay: secs(i.preempt_delay),
            down_timer_adverts: i.down_timer_adverts,
            initial: match i.state {
                InitialState::Master => Initial::Master,
                InitialState::Backup => Initial::Backup,
            },
            auth,
            vips: all_vips,
            advertised,
            src: i.unicast_src_ip.or(i.mcast_src_ip),
            unicast_peers: i.unicast_peer.clone(),
            mcast_group: if v6 {
                IpAddr::V6(g.vrrp_mcast_group6)
            } else {
                IpAddr::V4(g.vrrp_mcast_group4)
            },
            checksum: if i.v3_checksum_as_v2 {
                V3Checksum::MessageOnly
            } else {
                V3Checksum::PseudoHeader
            },
            garp: GarpSchedule::for_instance(i, g),
            track_interfaces: cfg
                .tracked_interfaces(i)
                .iter()
                .map(|e| (e.name.clone(), Tracked::interface(e)))
                .collect(),
            track_own_interface: !i.dont_track_primary,
            track_scripts: cfg
                .tracked_scripts(i)
                .iter()
                .map(|e| {
                    (
                        e.name.clone(),
                        Tracked::script(e, cfg.vrrp_script.get(&e.name)),
                    )
                })
                .collect(),
            vmac: i.vmac_name().map(|name| VmacSpec {
                name,
                xmit_base: i.vmac_xmit_base,
            }),
            routes: RouteSet {
                routes: i.virtual_route_list(),
                rules: i.virtual_rule_list(),
            },
            config: i.clone(),
            sync_group: cfg.sync_group_of(&i.name).map(|g| g.name.clone()),
            reference: i.track_reference.clone(),
            heartbeat: i.heartbeat.clone(),
        }
    }

    /// Where the VIPs without `dev` go: the VMAC when there is one, else the interface.
    pub fn vip_interface(&self) -> &str {
        self.vmac.as_ref().map_or(&self.interface, |v| &v.name)
    }

    /// Whether the instance speaks IPv6 (its addresses are IPv6).
    pub fn is_ipv6(&self) -> bool {
        self.advertised.first().is_some_and(IpAddr::is_ipv6)
    }

    /// Why a running instance with this spec cannot take `new` in place and must restart:
    /// a new virtual router id, interface, version or address family. `None` when it can.
    pub fn restart_reason(&self, new: &Self) -> Option<String> {
        if self.vrid != new.vrid {
            return Some(format!("virtual_router_id {} -> {}", self.vrid, new.vrid));
        }
        if self.interface != new.interface {
            return Some(format!("interface {} -> {}", self.interface, new.interface));
        }
        if self.vmac != new.vmac {
            let show = |v: &Option<VmacSpec>| match v {
                None => "none".to_owned(),
                Some(v) if v.xmit_base => format!("{} (vmac_xmit_base)", v.name),
                Some(v) => v.name.clone(),
            };
            return Some(format!(
                "use_vmac {} -> {}",
                show(&self.vmac),
                show(&new.vmac)
            ));
        }
        if self.heartbeat != new.heartbeat {
            return Some("heartbeat path changed".to_string());
        }
        if self.version != new.version {
            return Some(format!(
                "version {} -> {}",
                self.version.number(),
                new.version.number()
            ));
        }
        if self.is_ipv6() != new.is_ipv6() {
            let family = |v6| if v6 { "IPv6" } else { "IPv4" };
            return Some(format!(
                "address family {} -> {}",
                family(self.is_ipv6()),
                family(new.is_ipv6())
            ));
        }
        None
    }

    /// The settings that differ between this spec and `new`, by their config names, in a
    /// fixed order (empty when nothing does). What a reload applies in place, or logs.
    pub fn changes(&self, new: &Self) -> Vec<&'static str> {
        let (a, b) = (&self.config, &new.config);
        let mut out = Vec::new();
        let mut differs = |name, differ: bool| {
            if differ {
                out.push(name);
            }
        };
        differs("priority", self.params_priority != new.params_priority);
        differs("virtual_ipaddress", self.vips != new.vips);
        differs("virtual_routes", self.routes.routes != new.routes.routes);
        differs("virtual_rules", self.routes.rules != new.routes.rules);
        differs("advert_int", self.advert_int != new.advert_int);
        differs("nopreempt", self.preempt != new.preempt);
        differs("preempt_delay", self.preempt_delay != new.preempt_delay);
        differs(
            "down_timer_adverts",
            self.down_timer_adverts != new.down_timer_adverts,
        );
        differs("state", self.initial != new.initial);
        differs("authentication", self.auth != new.auth);
        differs("unicast_src_ip", self.src != new.src);
        differs("unicast_peer", self.unicast_peers != new.unicast_peers);
        differs("vrrp_mcast_group", self.mcast_group != new.mcast_group);
        differs("v3_checksum_as_v2", self.checksum != new.checksum);
        differs("garp", self.garp != new.garp);
        differs(
            "track_interface",
            self.track_interfaces != new.track_interfaces
                || self.track_own_interface != new.track_own_interface,
        );
        differs("track_script", self.track_scripts != new.track_scripts);
        differs("vrrp_sync_group", self.sync_group != new.sync_group);
        differs("track_reference", self.reference != new.reference);
        let checks = |s: &Self| {
            let p = s.receive_policy();
            (p.skip_check_adv_addr, p.allowed_sources)
        };
        differs("receive checks", checks(self) != checks(new));
        differs(
            "notify",
            (&a.notify, &a.notify_master, &a.notify_backup)
                != (&b.notify, &b.notify_master, &b.notify_backup)
                || (&a.notify_fault, &a.notify_stop, a.smtp_alert)
                    != (&b.notify_fault, &b.notify_stop, b.smtp_alert)
                || (
                    &a.notify_master_user,
                    &a.notify_backup_user,
                    &a.notify_fault_user,
                ) != (
                    &b.notify_master_user,
                    &b.notify_backup_user,
                    &b.notify_fault_user,
                )
                || (&a.notify_stop_user, &a.notify_user) != (&b.notify_stop_user, &b.notify_user),
        );
        if out.is_empty() && self != new {
            out.push("other settings");
        }
        out
    }

    /// Whether what is tracked (interfaces, scripts, and how each counts) differs.
    pub fn tracking_differs(&self, new: &Self) -> bool {
        self.track_interfaces != new.track_interfaces
            || self.track_own_interface != new.track_own_interface
            || self.track_scripts != new.track_scripts
    }

    /// The state machine's view, with `primary`, the address our adverts leave from.
    pub fn machine_params(&self, primary: IpAddr) -> Params {
        Params {
            version: self.version,
            vrid: self.vrid,
            priority: self.params_priority,
            advert_int: self.advert_int,
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            initial_state: self.initial,
            primary_addr: primary,
            down_timer_adverts: self.down_timer_adverts,
        }
    }

    /// What the codec checks received adverts against.
    pub fn receive_params(&self) -> LocalParams {
        LocalParams {
            version: self.version,
            vrid: self.vrid,
            auth: match self.auth {
                Auth::Pass(p) => Some(p),
                _ => None,
            },
            v2_interval_s: self.v2_interval_s(),
        }
    }

    /// The instance's own checks of received adverts (see `receive`).
    pub fn receive_policy(&self) -> ReceivePolicy {
        let unicast = !self.unicast_peers.is_empty();
        ReceivePolicy {
            advertised: self.advertised.clone(),
            skip_check_adv_addr: self.config.skip_check_adv_addr,
            allowed_sources: (unicast && self.config.check_unicast_src).then(|| {
                let mut peers = self.unicast_peers.clone();
                if let Some(h) = &self.heartbeat {
                    peers.extend(&h.unicast_peer);
                }
                peers
            }),
        }
    }

    /// Our advert at `priority` (0 when resigning).
    pub fn advert(&self, priority: u8) -> Advert {
        let interval = match self.version {
            Version::V2 => Interval::Secs(self.v2_interval_s()),
            Version::V3 => {
                Interval::Centisecs((self.advert_int.as_millis() / 10).clamp(1, 4095) as u16)
            }
        };
        Advert {
            version: self.version,
            vrid: self.vrid,
            priority,
            auth: self.auth,
            interval,
            addresses: self.advertised.clone(),
        }
    }

    /// The socket on interface `ifindex` sending from `src`: to the unicast peers if
    /// there are any, else to the multicast group.
    pub fn socket_config(&self, ifindex: u32, src: IpAddr) -> VrrpSocketConfig {
        let mut config = if self.unicast_peers.is_empty() {
            VrrpSocketConfig::multicast(ifindex, src)
        } else {
            VrrpSocketConfig::unicast(ifindex, src, self.unicast_peers.clone())
        };
        config.group = self.mcast_group;
        config
    }

    fn v2_interval_s(&self) -> u8 {
        self.advert_int.as_secs().clamp(1, 255) as u8
    }
}

/// What a reload does to a running instance whose spec is `running`, given the new
/// config's spec of that name (`None`: the config no longer has it). The one rule the
/// daemon applies and the reload plan (`xlb check --diff`) shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadAction {
    /// Nothing changed.
    Keep,
    /// New settings, applied to the running instance; it keeps its state. The names of
    /// what changed ([`InstanceSpec::changes`]).
    InPlace(Vec<&'static str>),
    /// Stopped and started again, for this reason ([`InstanceSpec::restart_reason`]).
    Restart(String),
    /// No longer in the config: stopped.
    Remove,
}

impl ReloadAction {
    pub fn of(running: &InstanceSpec, new: Option<&InstanceSpec>) -> Self {
        let Some(new) = new else {
            return Self::Remove;
        };
        if let Some(why) = running.restart_reason(new) {
            Self::Restart(why)
        } else if running == new {
            Self::Keep
        } else {
            Self::InPlace(running.changes(new))
        }
    }
}

/// The specs of every instance in the config.
pub fn specs(cfg: &Config) -> Vec<InstanceSpec> {
    cfg.vrrp_instance
        .iter()
        .map(|i| InstanceSpec::from_config(cfg, i))
        .collect()
}

/// VI_1 on eth0 (VRID 51, v2, 1 s, the VIP 198.18.0.100/32) with `extra` config lines.
#[cfg(test)]
pub(super) fn test_spec(extra: &str) -> InstanceSpec {
    let text = format!(
        "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n\
         virtual_router_id = 51\nvirtual_ipaddress = [\"198.18.0.100/32\"]\n{extra}\n"
    );
    specs(&Config::parse(&text, "x.toml").unwrap()).remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_spec as spec;

    #[test]
    fn the_heartbeat_path_s_peers_are_accepted_sources_and_a_new_path_restarts() {
        let hb = "heartbeat = { interface = \"hb0\", unicast_src_ip = \"198.19.0.1\", \
                  unicast_peer = [\"198.19.0.2\"] }";
        let unicast = "unicast_peer = [\"198.18.0.3\"]\ncheck_unicast_src = true";
        let with = spec(&format!("{unicast}\n{hb}"));
        assert_eq!(
            with.receive_policy().allowed_sources,
            Some(vec![
                "198.18.0.3".parse().unwrap(),
                "198.19.0.2".parse().unwrap()
            ])
        );
        let without = spec(unicast);
        assert_eq!(
            without.restart_reason(&with).as_deref(),
            Some("heartbeat path changed")
        );
        assert_eq!(with.restart_reason(&with), None);
    }

    #[test]
    fn mail_and_fifo_settings_are_not_part_of_an_instance_spec() {
        // A reload restarts the instances whose spec changed: changing where alerts go
        // must not fail the VIP over.
        let instance = "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\n\
                        virtual_router_id = 51\npriority = 150\n\
                        virtual_ipaddress = [\"198.18.0.100/32\"]\n";
        let before = Config::parse(instance, "a.toml").unwrap();
        let after = Config::parse(
            &format!(
                "[global_defs]\nnotification_email = [\"ops@example.org\"]\n\
                 smtp_server = \"127.0.0.1\"\nsmtp_alert = true\n\
                 notify_fifo = \"/run/xlb.fifo\"\n{instance}"
            ),
            "b.toml",
        )
        .unwrap();
        assert_eq!(specs(&before), specs(&after));
    }

    #[test]
    fn notify_changes_are_named() {
        let running = spec("priority = 150\nnotify_master = \"/bin/true\"");
        let notify = spec("priority = 150\nnotify_master = \"/bin/false\"\nsmtp_alert = true");
        let priority = spec("priority = 140\nnotify_master = \"/bin/true\"");
        assert_eq!(running.changes(&notify), ["notify"]);
        assert_eq!(running.changes(&priority), ["priority"]);
    }

    #[test]
    fn only_router_identity_changes_restart_an_instance() {
        let running = spec("priority = 150");
        // test_spec fixes the VRID and the interface: those two are changed by hand.
        let mut other = running.clone();
        other.vrid = 52;
        assert_eq!(
            running.restart_reason(&other).as_deref(),
            Some("virtual_router_id 51 -> 52")
        );
        let mut other = running.clone();
        other.interface = "eth1".into();
        assert_eq!(
            running.restart_reason(&other).as_deref(),
            Some("interface eth0 -> eth1")
        );
        let v3 = spec("priority = 150\nversion = 3");
        assert_eq!(
            running.restart_reason(&v3).as_deref(),
            Some("version 2 -> 3")
        );
        let mut v6 = running.clone();
        v6.advertised = vec!["2001:db8::100".parse().unwrap()];
        assert_eq!(
            running.restart_reason(&v6).as_deref(),
            Some("address family IPv4 -> IPv6")
        );
        // use_vmac moves the VIPs and adverts to another interface (and MAC).
        let vmac = spec("priority = 150\nuse_vmac = true");
        assert_eq!(
            running.restart_reason(&vmac).as_deref(),
            Some("use_vmac none -> vrrp.51")
        );
        assert_eq!(vmac.vip_interface(), "vrrp.51");
        let base = spec("priority = 150\nuse_vmac = true\nvmac_xmit_base = true");
        assert_eq!(
            vmac.restart_reason(&base).as_deref(),
            Some("use_vmac vrrp.51 -> vrrp.51 (vmac_xmit_base)")
        );
        // Everything else is taken in place, and named.
        let changed = spec(
            "priority = 90\nadvert_int = 2\nnopreempt = true\n\
             virtual_ipaddress_excluded = [\"198.18.0.101/32\"]\n\
             unicast_peer = [\"198.18.0.2\"]\ngarp_master_delay = 1\n\
             track_interface = [\"eth1 weight -10\"]\nnotify_master = \"/bin/true\"\n\
             authentication = { auth_type = \"PASS\", auth_pass = \"secret\" }",
        );
        assert_eq!(running.restart_reason(&changed), None);
        assert_eq!(
            running.changes(&changed),
            [
                "priority",
                "virtual_ipaddress",
                "advert_int",
                "nopreempt",
                "authentication",
                "unicast_peer",
                "garp",
                "track_interface",
                "notify"
            ]
        );
        assert!(running.tracking_differs(&changed));
        assert!(running.changes(&running).is_empty());
    }

    #[test]
    fn a_reload_keeps_changes_in_place_restarts_or_removes() {
        let running = spec("priority = 150");
        assert_eq!(
            ReloadAction::of(&running, Some(&running)),
            ReloadAction::Keep
        );
        assert_eq!(ReloadAction::of(&running, None), ReloadAction::Remove);
        assert_eq!(
            ReloadAction::of(&running, Some(&spec("priority = 100"))),
            ReloadAction::InPlace(vec!["priority"])
        );
        assert_eq!(
            ReloadAction::of(&running, Some(&spec("priority = 100\nversion = 3"))),
            ReloadAction::Restart("version 2 -> 3".into())
        );
    }

    #[test]
    fn the_machine_the_codec_and_our_adverts_see_one_version() {
        let primary: IpAddr = "198.18.0.1".parse().unwrap();
        let v2 = spec("priority = 150\nadvert_int = 2");
        assert_eq!(v2.machine_params(primary).version, Version::V2);
        assert_eq!(
            v2.machine_params(primary).advert_int,
            Duration::from_secs(2)
        );
        assert_eq!(v2.machine_params(primary).primary_addr, primary);
        assert_eq!(v2.receive_params().version, Version::V2);
        assert_eq!(v2.receive_params().v2_interval_s, 2);
        let advert = v2.advert(150);
        assert_eq!(
            (advert.version, advert.interval, advert.priority),
            (Version::V2, Interval::Secs(2), 150)
        );
        let v3 = spec("version = 3\nadvert_int = 0.5");
        assert_eq!(v3.machine_params(primary).version, Version::V3);
        assert_eq!(v3.receive_params().version, Version::V3);
        let advert = v3.advert(0);
        assert_eq!(
            (advert.version, advert.interval, advert.priority),
            (Version::V3, Interval::Centisecs(50), 0)
        );
        assert_eq!(advert.addresses, v3.advertised);
    }

    #[test]
    fn receive_checks_follow_the_instance_then_global_defs() {
        let plain = spec("unicast_peer = [\"198.18.0.2\"]").receive_policy();
        assert_eq!(plain.allowed_sources, None);
        assert!(!plain.skip_check_adv_addr);
        assert_eq!(
            plain.advertised,
            ["198.18.0.100".parse::<IpAddr>().unwrap()]
        );
        let checked = spec(
            "unicast_peer = [\"198.18.0.2\"]\ncheck_unicast_src = true\n\
                            skip_check_adv_addr = true",
        )
        .receive_policy();
        assert_eq!(
            checked.allowed_sources,
            Some(vec!["198.18.0.2".parse::<IpAddr>().unwrap()])
        );
        assert!(checked.skip_check_adv_addr);

        let global = |globals: &str, instance: &str| {
            let text = format!(
                "[global_defs]\n{globals}\n[[vrrp_instance]]\nname = \"VI_1\"\n\
                 interface = \"eth0\"\nvirtual_router_id = 51\n\
                 virtual_ipaddress = [\"198.18.0.100/32\"]\n{instance}\n"
            );
            specs(&Config::parse(&text, "g.toml").unwrap()).remove(0)
        };
        let s = global(
            "vrrp_check_unicast_src = true\nvrrp_skip_check_adv_addr = true\n\
             vrrp_down_timer_adverts = 5",
            "unicast_peer = [\"198.18.0.2\"]",
        );
        assert!(s.receive_policy().allowed_sources.is_some());
        assert!(s.receive_policy().skip_check_adv_addr);
        assert_eq!(
            s.machine_params("198.18.0.1".parse().unwrap())
                .down_timer_adverts,
            5
        );
        // The instance's own value wins over global_defs.
        let s = global(
            "vrrp_skip_check_adv_addr = true\nvrrp_down_timer_adverts = 5",
            "skip_check_adv_addr = false\ndown_timer_adverts = 2",
        );
        assert!(!s.receive_policy().skip_check_adv_addr);
        assert_eq!(s.down_timer_adverts, 2);
        // Multicast: no unicast source to check, whatever the global switch says.
        let s = global("vrrp_check_unicast_src = true", "");
        assert_eq!(s.receive_policy().allowed_sources, None);
    }

    #[test]
    fn adverts_go_to_the_unicast_peers_if_any_else_to_the_group() {
        let src: IpAddr = "198.18.0.1".parse().unwrap();
        let multicast = spec("").socket_config(7, src);
        assert!(multicast.unicast_peers.is_empty());
        assert_eq!(multicast.group, "224.0.0.18".parse::<IpAddr>().unwrap());
        assert_eq!((multicast.ifindex, multicast.src), (7, src));
        let unicast = spec("unicast_peer = [\"198.18.0.2\"]").socket_config(7, src);
        assert_eq!(
            unicast.unicast_peers,
            ["198.18.0.2".parse::<IpAddr>().unwrap()]
        );
    }
}
