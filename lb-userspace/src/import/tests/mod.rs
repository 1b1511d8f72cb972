//! The importer on the keepalived.conf files of the seed tutorial and on the usual
//! variants (master/master, unicast, scripts and notify, checkers, includes): each
//! converts, passes `Config::parse`, and gives the expected values.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::*;
use crate::config::{Config, InitialState, LbAlgo, Protocol, RealServerConfig};

mod corpus;
mod fwmark;
mod includes;
mod refusals;
mod routes;
mod seed;
mod sync;
mod variants;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Converts `text` (as `keepalived.conf`), panicking with the diagnostics on failure.
#[track_caller]
fn import(text: &str) -> Conversion {
    match import_str(text, "keepalived.conf", Path::new("/nonexistent")) {
        Ok(c) => c,
        Err(e) => panic!("conversion failed:\n{e}\nwarnings: {:#?}", e.warnings),
    }
}

/// Converts `text`, expecting failure; returns the errors as `FILE:LINE: message`.
#[track_caller]
fn import_err(text: &str) -> Vec<String> {
    match import_str(text, "keepalived.conf", Path::new("/nonexistent")) {
        Ok(c) => panic!("converted, expected errors:\n{}", c.toml),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

#[track_caller]
fn has(list: &[String], prefix: &str, fragment: &str) {
    assert!(
        list.iter()
            .any(|m| m.starts_with(prefix) && m.contains(fragment)),
        "no `{prefix}...{fragment}...` in {list:#?}"
    );
}

fn warnings(c: &Conversion) -> Vec<String> {
    c.warnings.iter().map(ToString::to_string).collect()
}

/// The output reads back (through `xlb check`'s parser) to the same configuration,
/// and serializing that configuration and reading it again changes nothing.
#[track_caller]
fn round_trip(c: &Conversion) {
    let again = Config::parse(&c.toml, "out.toml").unwrap_or_else(|e| panic!("{e:#}\n{}", c.toml));
    assert_eq!(again, c.config);
    let text = toml::to_string(&c.config).unwrap();
    let back = Config::parse(&text, "ser.toml").unwrap_or_else(|e| panic!("{e:#}\n{text}"));
    assert_eq!(back, c.config, "{text}");
}

/// One VRRP instance owning 10.4.0.100, for the snippets that need a VIP.
const VI: &str = "\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.4.0.100/24
    }
}
";
