//! `[sync]`: the instance it follows, where it sends, and its secret.

use std::net::IpAddr;

use super::{Invalid, invalid};
use crate::config::{Config, locate::KeyPath, sync::MIN_MAXLEN};

pub(super) fn validate_sync(cfg: &Config) -> Result<(), Invalid> {
    let Some(s) = &cfg.sync else {
        return Ok(());
    };
    let p = KeyPath::root().key("sync");
    let Some(inst) = cfg.vrrp_instance.iter().find(|i| i.name == s.instance) else {
        return Err(invalid(
            p.key("instance"),
            format!(
                "no vrrp_instance is named {:?}: sync follows an instance's state",
                s.instance
            ),
        ));
    };
    if cfg.virtual_server.is_empty() {
        return Err(invalid(
            p.key("instance"),
            "sync has nothing to sync: no virtual_server (xlb without virtual servers is a \
             plain VRRP daemon, with no connection table)",
        ));
    }
    if !s.group.is_multicast() {
        return Err(invalid(
            p.key("group"),
            format!("{} is not a multicast address", s.group),
        ));
    }
    if s.port == 0 {
        return Err(invalid(p.key("port"), "port must be 1..=65535"));
    }
    if s.ttl == 0 {
        return Err(invalid(p.key("ttl"), "ttl must be 1..=255"));
    }
    if s.maxlen < MIN_MAXLEN {
        return Err(invalid(
            p.key("maxlen"),
            format!("maxlen must be at least {MIN_MAXLEN} bytes (a header and an IPv6 entry)"),
        ));
    }
    if s.rate == 0 {
        return Err(invalid(
            p.key("rate"),
            "rate must be > 0 entries per second",
        ));
    }
    if let Some(i) = s.interface.as_deref() {
        if i.is_empty() {
            return Err(invalid(p.key("interface"), "interface is empty"));
        }
    }
    if s.peers.iter().any(IpAddr::is_ipv4) && s.peers.iter().any(IpAddr::is_ipv6) {
        return Err(invalid(
            p.key("peers"),
            "peers mix IPv4 and IPv6: sync uses one socket of one family",
        ));
    }
    for (k, peer) in s.peers.iter().enumerate() {
        if peer.is_unspecified() || peer.is_multicast() || peer.is_loopback() {
            return Err(invalid(
                p.key("peers").index(k),
                format!("{peer} is not a director's address"),
            ));
        }
    }
    match (&s.key, &s.key_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(p.key("key_file"), "key and key_file are exclusive"));
        }
        (Some(k), None) if k.is_empty() => {
            return Err(invalid(p.key("key"), "key is empty"));
        }
        (None, Some(f)) if !f.is_absolute() => {
            return Err(invalid(
                p.key("key_file"),
                format!("{} is not an absolute path", f.display()),
            ));
        }
        // Its content and mode are the host's: checked by `xlb check` (host checks) and
        // at start.
        _ => {}
    }
    let unicast = !s.peers.is_empty() || !inst.unicast_peer.is_empty();
    if !unicast && s.key.is_none() && s.key_file.is_none() {
        return Err(invalid(
            p.key("instance"),
            "multicast sync (no peers, and the instance has no unicast_peer) needs key or \
             key_file: otherwise any host on the segment could inject connections",
        ));
    }
    Ok(())
}
