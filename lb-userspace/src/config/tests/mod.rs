//! `Config::parse` on whole files: what it accepts and the values in force
//! ([`accepted`]), what it refuses and where it says so ([`refused`]).

use std::net::IpAddr;

use super::*;

mod accepted;
mod fwmark;
mod keys;
mod limits;
mod refused;
mod sync;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn parse(text: &str) -> Config {
    Config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e:#}"))
}

/// Asserts the error starts with `t.toml:LINE:COL: PATH: ` and mentions `fragment`.
#[track_caller]
fn assert_err(text: &str, loc_and_path: &str, fragment: &str) {
    let e = match Config::parse(text, "t.toml") {
        Ok(_) => panic!("accepted, expected {loc_and_path}: ...{fragment}..."),
        Err(e) => e,
    };
    let msg = e.to_string();
    let prefix = format!("t.toml:{loc_and_path}: ");
    assert!(
        msg.starts_with(&prefix),
        "{msg}\n  does not start with\n{prefix}"
    );
    assert!(
        msg.contains(fragment),
        "{msg}\n  does not mention\n{fragment}"
    );
    assert!(!msg.contains('\n'), "one line: {msg}");
}

/// One virtual server with its own interface: lines 1 to 4.
const VS: &str = "\
[[virtual_server]]
ip = \"198.18.0.100\"
port = 80
interface = \"eth0\"
";

/// One VRRP instance owning 198.18.0.100: lines 1 to 5.
const VI: &str = "\
[[vrrp_instance]]
name = \"VI_1\"
interface = \"eth0\"
virtual_router_id = 51
virtual_ipaddress = [\"198.18.0.100/24\"]
";
