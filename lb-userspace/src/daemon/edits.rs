//! Runtime edits: what `xlb weight`, `drain`, `disable` and `enable` change, as an overlay
//! over the file's real servers that the desired-state rules (`desired`) apply on top of
//! the health verdicts. Pure: no I/O, every rule has a unit test below.
//!
//! - `weight N` and `drain` (weight 0) replace the weight the file and `misc_dynamic`
//!   give; a failed check still takes the server out (an edit never revives a dead one).
//! - `disable` takes the server out of the table as a failed check does, and no good
//!   check puts it back; `inhibit_on_failure` does not keep it at weight 0 either.
//! - `enable` undoes all of them: the file's weight, the checks' verdicts.
//! - Edits count like any weight or verdict for the quorum: draining servers below a
//!   service's `quorum` brings in its sorry server, as failed checks would.
//! - The next reload drops every edit (the file is the truth, as keepalived re-syncs IPVS
//!   to its config on reload over any `ipvsadm` edit): [`Edits::take_all`].

use std::collections::BTreeMap;

use crate::{
    config::{Config, RealServerConfig, VirtualServer},
    control::{EditInfo, Peer, RealRef, ServiceRef},
    health::RealKey,
};

/// When and by whom an edit was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Unix seconds.
    pub at: u64,
    pub by: Peer,
}

/// A weight set at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightEdit {
    pub weight: u32,
    /// By `drain` (rather than `weight 0`): what status says.
    pub drained: bool,
    pub stamp: Stamp,
}

/// The edits of one real server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealEdit {
    pub weight: Option<WeightEdit>,
    pub disabled: Option<Stamp>,
}

impl RealEdit {
    fn is_empty(&self) -> bool {
        self.weight.is_none() && self.disabled.is_none()
    }
}

/// One edit, as a request asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditKind {
    Weight(u32),
    Drain,
    Disable,
    Enable,
}

/// Why an edit names no real server of the running config.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("no virtual server {service}; configured: {}", list(.candidates))]
    UnknownService {
        service: ServiceRef,
        candidates: Vec<String>,
    },
    #[error("{service} has no real server {real}; its real servers: {}", list(.candidates))]
    UnknownReal {
        service: ServiceRef,
        real: RealRef,
        candidates: Vec<String>,
    },
    /// The config's range (and IPVS's): a counting scheduler's comparison, and the
    /// wrr/mh tables, are built for weights up to 65535.
    #[error("weight {0} is out of range (0..=65535, as in the config)")]
    WeightOutOfRange(u32),
}

/// The largest weight, in the config and at run time (IPVS's too).
pub const MAX_WEIGHT: u32 = 65_535;

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// Every runtime edit in effect, by real server.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Edits {
    by_real: BTreeMap<RealKey, RealEdit>,
}

/// `service` as the config names it: a key of a fwmark service other than its first
/// (`xlb status` lists it under its lowest) becomes the service's own ip:port/protocol.
pub fn canonical(config: &Config, service: ServiceRef) -> ServiceRef {
    let key = (service.addr.ip(), service.addr.port(), service.protocol);
    config
        .virtual_server
        .iter()
        .find(|vs| vs.fwmark.is_some() && vs.service_keys().contains(&key))
        .map_or(service, |vs| ServiceRef {
            addr: std::net::SocketAddr::new(vs.ip, vs.port),
            protocol: vs.protocol,
        })
}

/// The virtual server and real server of the config that `service` and `real` name (any
/// key of a fwmark service names it).
pub fn find(
    config: &Config,
    service: ServiceRef,
    real: RealRef,
) -> Result<(&VirtualServer, &RealServerConfig), EditError> {
    let key = (service.addr.ip(), service.addr.port(), service.protocol);
    let vs = config
        .virtual_server
        .iter()
        .find(|vs| vs.service_keys().contains(&key))
        .ok_or_else(|| EditError::UnknownService {
            service,
            candidates: config
                .virtual_server
                .iter()
                .map(|vs| {
                    ServiceRef {
                        addr: std::net::SocketAddr::new(vs.ip, vs.port),
                        protocol: vs.protocol,
                    }
                    .to_string()
                })
                .collect(),
        })?;
    let r = vs
        .real_server
        .iter()
        .find(|r| r.ip == real.ip() && r.port == real.port())
        .ok_or_else(|| EditError::UnknownReal {
            service,
            real,
            candidates: vs
                .real_server
                .iter()
                .map(|r| crate::control::real_str(r.ip, r.port))
                .collect(),
        })?;
    Ok((vs, r))
}

impl Edits {
    /// Applies `kind` to the real server `real` of `service`, which must be in `config`.
    /// Returns the real server's edits now (empty after `enable`).
    pub fn apply(
        &mut self,
        config: &Config,
        service: ServiceRef,
        real: RealRef,
        kind: EditKind,
        stamp: Stamp,
    ) -> Result<RealEdit, EditError> {
        find(config, service, real)?;
        if let EditKind::Weight(w) = kind {
            if w > MAX_WEIGHT {
                return Err(EditError::WeightOutOfRange(w));
            }
        }
        let key = canonical(config, service).real_key(real);
        let mut edit = self.by_real.get(&key).copied().unwrap_or_default();
        match kind {
            EditKind::Weight(weight) => {
                edit.weight = Some(WeightEdit {
                    weight,
                    drained: false,
                    stamp,
                })
            }
            EditKind::Drain => {
                edit.weight = Some(WeightEdit {
                    weight: 0,
                    drained: true,
                    stamp,
                })
            }
            EditKind::Disable => edit.disabled = Some(stamp),
            EditKind::Enable => edit = RealEdit::default(),
        }
        if edit.is_empty() {
            self.by_real.remove(&key);
        } else {
            self.by_real.insert(key, edit);
        }
        Ok(edit)
    }

    /// The edits of real server `key`.
    pub fn get(&self, key: &RealKey) -> Option<&RealEdit> {
        self.by_real.get(key)
    }

    /// How many real servers carry edits.
    pub fn len(&self) -> usize {
        self.by_real.len()
    }

    /// Drops every edit (a reload: the file is the truth); returns them, so that a reload
    /// that fails can put them back.
    pub fn take_all(&mut self) -> Edits {
        std::mem::take(self)
    }

    /// A real server's (alive, weight) with its edits applied over what the checks made
    /// of it (`alive`, and `weight` from the file or `misc_dynamic`): either what the
    /// caller's rules (`inhibit_on_failure`) go on with, or, disabled, the final answer.
    pub fn overlay(&self, key: &RealKey, alive: bool, weight: u32) -> Overlaid {
        let Some(e) = self.by_real.get(key) else {
            return Overlaid::Rules { alive, weight };
        };
        let weight = e.weight.map_or(weight, |w| w.weight);
        if e.disabled.is_some() {
            return Overlaid::Out { weight };
        }
        Overlaid::Rules { alive, weight }
    }

    /// The edits as `xlb status` shows them, with the file's weights from `config`.
    pub fn describe(&self, config: &Config) -> Vec<EditInfo> {
        self.by_real
            .iter()
            .map(|(key, e)| {
                let service = ServiceRef::of(key);
                let real = std::net::SocketAddr::new(key.rip, key.rport);
                let file_weight = find(config, service, real).map_or(0, |(_, r)| r.weight);
                EditInfo {
                    service,
                    real,
                    file_weight,
                    weight: e.weight.map(|w| w.weight),
                    drained: e.weight.is_some_and(|w| w.drained),
                    weight_at: e.weight.map(|w| w.stamp.at),
                    weight_by: e.weight.map(|w| w.stamp.by),
                    disabled_at: e.disabled.map(|s| s.at),
                    disabled_by: e.disabled.map(|s| s.by),
                }
            })
            .collect()
    }
}

/// What the edits make of a real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlaid {
    /// The usual rules go on with this (alive, weight).
    Rules { alive: bool, weight: u32 },
    /// Disabled: out of the table, whatever the checks and `inhibit_on_failure` say.
    Out { weight: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            r#"
[[virtual_server]]
ip = "198.18.0.100"
port = 80
interface = "eth0"
[[virtual_server.real_server]]
ip = "198.18.0.21"
port = 80
weight = 3
[[virtual_server.real_server]]
ip = "198.18.0.22"
port = 80

[[virtual_server]]
ip = "2001:db8::100"
port = 53
protocol = "UDP"
interface = "eth0"
[[virtual_server.real_server]]
ip = "2001:db8::11"
port = 53
"#,
            "xlb.toml",
        )
        .expect("config")
    }

    fn svc(s: &str) -> ServiceRef {
        s.parse().unwrap()
    }

    #[test]
    fn any_key_of_a_fwmark_service_names_it() {
        let config = Config::parse(
            r#"
[[virtual_server]]
fwmark = 1
match = ["198.18.0.100:80", "198.18.0.100:7"]
interface = "eth0"
persistence_timeout = 60
[[virtual_server.real_server]]
ip = "198.18.0.21"
"#,
            "xlb.toml",
        )
        .unwrap();
        let mut edits = Edits::default();
        // By its second key, as `xlb status` lists it (its lowest).
        edits
            .apply(
                &config,
                svc("198.18.0.100:7"),
                rs("198.18.0.21:0"),
                EditKind::Weight(0),
                stamp(1),
            )
            .unwrap();
        let own = svc("198.18.0.100:80").real_key(rs("198.18.0.21:0"));
        assert!(
            edits.get(&own).is_some(),
            "recorded under the service's own key"
        );
        assert_eq!(
            canonical(&config, svc("198.18.0.100:7")),
            svc("198.18.0.100:80")
        );
        assert_eq!(
            canonical(&config, svc("198.18.0.100:9")),
            svc("198.18.0.100:9")
        );
        assert!(find(&config, svc("198.18.0.100:9"), rs("198.18.0.21:0")).is_err());
    }

    fn rs(s: &str) -> RealRef {
        s.parse().unwrap()
    }

    fn stamp(at: u64) -> Stamp {
        Stamp {
            at,
            by: Peer {
                uid: 0,
                pid: Some(42),
            },
        }
    }

    #[test]
    fn a_weight_above_65535_is_refused_and_changes_nothing() {
        let config = Config::parse(
            r#"
[[virtual_server]]
ip = "198.18.0.100"
port = 80
interface = "eth0"
[[virtual_server.real_server]]
ip = "198.18.0.21"
port = 80
"#,
            "xlb.toml",
        )
        .unwrap();
        let mut edits = Edits::default();
        let (s, r) = (svc("198.18.0.100:80"), rs("198.18.0.21:80"));
        let e = edits
            .apply(&config, s, r, EditKind::Weight(70_000), stamp(1))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "weight 70000 is out of range (0..=65535, as in the config)"
        );
        assert!(edits.get(&s.real_key(r)).is_none());
        edits
            .apply(&config, s, r, EditKind::Weight(MAX_WEIGHT), stamp(2))
            .unwrap();
    }

    #[test]
    fn an_unknown_service_or_real_server_is_refused_with_the_candidates() {
        let c = config();
        let mut e = Edits::default();
        let err = e
            .apply(
                &c,
                svc("198.18.0.100:81"),
                rs("198.18.0.21:80"),
                EditKind::Drain,
                stamp(1),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no virtual server 198.18.0.100:81/tcp; configured: 198.18.0.100:80/tcp, \
             [2001:db8::100]:53/udp"
        );
        // The right address and port, the wrong protocol: another service.
        assert!(matches!(
            e.apply(
                &c,
                svc("198.18.0.100:80/udp"),
                rs("198.18.0.21:80"),
                EditKind::Drain,
                stamp(1)
            ),
            Err(EditError::UnknownService { .. })
        ));
        let err = e
            .apply(
                &c,
                svc("[2001:db8::100]:53/udp"),
                rs("[2001:db8::12]:53"),
                EditKind::Weight(2),
                stamp(1),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "[2001:db8::100]:53/udp has no real server [2001:db8::12]:53; its real servers: \
             [2001:db8::11]:53"
        );
        assert_eq!(e.len(), 0, "a refused edit records nothing");
    }

    #[test]
    fn weight_and_drain_replace_the_weight_and_never_revive_a_dead_server() {
        let c = config();
        let mut e = Edits::default();
        let (s, r) = (svc("198.18.0.100:80"), rs("198.18.0.21:80"));
        let key = s.real_key(r);
        assert_eq!(
            e.overlay(&key, true, 3),
            Overlaid::Rules {
                alive: true,
                weight: 3
            },
            "no edit: as the rules say"
        );
        e.apply(&c, s, r, EditKind::Weight(7), stamp(1)).unwrap();
        assert_eq!(
            e.overlay(&key, true, 3),
            Overlaid::Rules {
                alive: true,
                weight: 7
            }
        );
        assert_eq!(
            e.overlay(&key, false, 3),
            Overlaid::Rules {
                alive: false,
                weight: 7
            },
            "a failed check still takes it out"
        );
        e.apply(&c, s, r, EditKind::Drain, stamp(2)).unwrap();
        assert_eq!(
            e.overlay(&key, true, 3),
            Overlaid::Rules {
                alive: true,
                weight: 0
            }
        );
        let other = s.real_key(rs("198.18.0.22:80"));
        assert_eq!(
            e.overlay(&other, true, 1),
            Overlaid::Rules {
                alive: true,
                weight: 1
            },
            "the other real server is untouched"
        );
    }

    #[test]
    fn disable_outlasts_good_checks_and_enable_undoes_everything() {
        let c = config();
        let mut e = Edits::default();
        let (s, r) = (svc("198.18.0.100:80/TCP"), rs("198.18.0.21:80"));
        let key = s.real_key(r);
        e.apply(&c, s, r, EditKind::Weight(5), stamp(1)).unwrap();
        let now = e.apply(&c, s, r, EditKind::Disable, stamp(2)).unwrap();
        assert_eq!(now.disabled, Some(stamp(2)));
        assert_eq!(
            now.weight.map(|w| w.weight),
            Some(5),
            "the weight edit stays"
        );
        assert_eq!(
            e.overlay(&key, true, 3),
            Overlaid::Out { weight: 5 },
            "a good check does not put it back"
        );
        let now = e.apply(&c, s, r, EditKind::Enable, stamp(3)).unwrap();
        assert_eq!(now, RealEdit::default());
        assert_eq!(e.len(), 0, "enable leaves no record");
        assert_eq!(
            e.overlay(&key, true, 3),
            Overlaid::Rules {
                alive: true,
                weight: 3
            }
        );
    }

    #[test]
    fn a_reload_takes_every_edit_and_status_describes_them_against_the_file() {
        let c = config();
        let mut e = Edits::default();
        let s = svc("198.18.0.100:80");
        e.apply(&c, s, rs("198.18.0.21:80"), EditKind::Drain, stamp(100))
            .unwrap();
        e.apply(&c, s, rs("198.18.0.22:80"), EditKind::Disable, stamp(110))
            .unwrap();
        let shown = e.describe(&c);
        assert_eq!(shown.len(), 2);
        assert_eq!(
            shown[0].describe(142),
            "weight 0 (file: 3, drained 42 s ago by uid 0 pid 42)"
        );
        assert_eq!(
            shown[1].describe(142),
            "disabled 32 s ago by uid 0 pid 42 (out of the table whatever the checks say)"
        );
        let dropped = e.take_all();
        assert_eq!(dropped.len(), 2);
        assert_eq!(e.len(), 0);
    }
}
