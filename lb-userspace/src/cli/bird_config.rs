//! `xlb bird-config`: the BIRD 2 include for the announced VIPs, or with the session's
//! settings a whole director bird.conf (BGP + BFD to each upstream router).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::{Result, bail};

use crate::bgp::bird::{self, Session};
use crate::config::{Config, DEFAULT_ANNOUNCE_TABLE};

/// The session options, all given or none.
pub struct SessionArgs {
    pub local_as: Option<u32>,
    pub peer_as: Option<u32>,
    pub neighbors: Vec<IpAddr>,
    pub router_id: Option<Ipv4Addr>,
}

/// The text to print: the table from `table`, else from `config`'s `[announce]`, else 201.
pub fn text(config: Option<&Path>, table: Option<u32>, s: SessionArgs) -> Result<String> {
    let table = match (table, config) {
        (Some(t), _) => t,
        (None, Some(path)) => {
            Config::load(path)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .announce
                .table
        }
        (None, None) => DEFAULT_ANNOUNCE_TABLE,
    };
    if [0, 253, 254, 255].contains(&table) {
        bail!("table {table} is the kernel's own: give xlb a table of its own, e.g. 201");
    }
    let session = match (s.local_as, s.peer_as, s.router_id, s.neighbors.is_empty()) {
        (None, None, None, true) => None,
        (Some(local_as), Some(peer_as), Some(router_id), false) => Some(Session {
            router_id,
            local_as,
            peer_as,
            neighbors: s.neighbors,
        }),
        _ => bail!(
            "a whole bird.conf needs --local-as, --peer-as, --router-id and at least one \
             --neighbor; without any of them, the include alone is printed"
        ),
    };
    Ok(match session {
        Some(s) => bird::full(table, &s),
        None => bird::include(table),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> SessionArgs {
        SessionArgs {
            local_as: None,
            peer_as: None,
            neighbors: Vec::new(),
            router_id: None,
        }
    }

    #[test]
    fn the_include_alone_or_a_whole_config() {
        assert!(
            text(None, None, none())
                .unwrap()
                .contains("kernel table 201;")
        );
        assert!(
            text(None, Some(7), none())
                .unwrap()
                .contains("kernel table 7;")
        );
        assert!(text(None, Some(254), none()).is_err());
        let partial = SessionArgs {
            local_as: Some(65001),
            ..none()
        };
        assert!(
            text(None, None, partial)
                .unwrap_err()
                .to_string()
                .contains("--peer-as")
        );
        let full = SessionArgs {
            local_as: Some(65001),
            peer_as: Some(65000),
            neighbors: vec!["198.18.2.254".parse().unwrap()],
            router_id: Some("198.18.2.1".parse().unwrap()),
        };
        let t = text(None, None, full).unwrap();
        assert!(t.contains("protocol bgp upstream1"));
    }
}
