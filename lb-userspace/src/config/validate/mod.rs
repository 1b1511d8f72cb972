//! After deserialization and [`resolve`](super::resolve): the rules that span several
//! keys. Single-value rules (ranges, enum spellings) are enforced while deserializing,
//! in `de.rs` and the `TryFrom` impls. Here: `global_defs` and `vrrp_script`; the
//! VRRP instances in [`vrrp`]; virtual servers, real servers and checkers in [`lvs`];
//! what leaves xlb: command lines in [`commands`], mail headers in [`mail`].

mod announce;
mod commands;
mod limits;
mod lvs;
mod mail;
mod routes;
mod sync;
mod vrrp;

use std::net::IpAddr;

use super::Config;
use super::locate::{Document, KeyPath};

/// A rule broken at `path`.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub path: KeyPath,
    pub message: String,
}

fn invalid(path: KeyPath, message: impl Into<String>) -> Invalid {
    Invalid {
        path,
        message: message.into(),
    }
}

/// Checks the rules that involve more than one value. The first broken rule, in file
/// order of sections, is returned.
pub(crate) fn validate(cfg: &Config, doc: &Document) -> Result<(), Invalid> {
    let root = KeyPath::root();
    validate_global(cfg, &root.key("global_defs"))?;
    for (name, script) in &cfg.vrrp_script {
        let p = root.key("vrrp_script").key(name);
        if script.script.trim().is_empty() {
            return Err(invalid(p.key("script"), "the script command is empty"));
        }
        if script.interval <= 0.0 {
            return Err(invalid(p.key("interval"), "interval must be > 0 seconds"));
        }
        if script.timeout == Some(0.0) {
            return Err(invalid(p.key("timeout"), "timeout must be > 0 seconds"));
        }
    }
    vrrp::validate_vrrp(cfg, doc)?;
    routes::validate_routes(cfg)?;
    lvs::validate_virtual_servers(cfg, doc)?;
    announce::validate_announce(cfg, doc)?;
    commands::validate_commands(cfg)?;
    mail::validate_mail(cfg)?;
    sync::validate_sync(cfg)?;
    limits::validate_limits(cfg)
}

/// What is valid but likely not what the operator wants: warnings, not errors.
pub(crate) fn advise(cfg: &Config) -> Vec<Invalid> {
    announce::announce_advice(cfg)
}

/// What `cfg` needs of the maps sized from the config.
pub(in crate::config) fn map_needs(cfg: &Config) -> crate::dataplane::sizing::Needs {
    limits::needs(cfg)
}

fn validate_global(cfg: &Config, p: &KeyPath) -> Result<(), Invalid> {
    let g = &cfg.global_defs;
    if let Some(s) = &g.smtp_server {
        if s.trim().is_empty() {
            return Err(invalid(p.key("smtp_server"), "smtp_server is empty"));
        }
    }
    for (k, mail) in g.notification_email.iter().enumerate() {
        // keepalived takes any word: a local recipient (`root`) is valid for the
        // SMTP server, so only an empty address is refused here (line breaks are
        // refused by `mail`, at their byte).
        if mail.trim().is_empty() {
            return Err(invalid(
                p.key("notification_email").index(k),
                format!(
                    "{mail:?} is not a mail address (user@domain, or a local user such as root)"
                ),
            ));
        }
    }
    if !g.vrrp_mcast_group4.is_multicast() {
        return Err(invalid(
            p.key("vrrp_mcast_group4"),
            format!("{} is not a multicast address", g.vrrp_mcast_group4),
        ));
    }
    if !g.vrrp_mcast_group6.is_multicast() {
        return Err(invalid(
            p.key("vrrp_mcast_group6"),
            format!("{} is not a multicast address", g.vrrp_mcast_group6),
        ));
    }
    Ok(())
}

/// Linux interface names (`dev_valid_name`): 1 to 15 bytes, no `/`, `:` or whitespace,
/// not `.` or `..`.
fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(format!(
            "{name:?} is not an interface name (1 to 15 characters, no '/', ':' or spaces)"
        ));
    }
    Ok(())
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}
