//! BIRD 2 configuration for announced VIPs, as text: the include (`xlb bird-config`, or
//! the file `[announce] bird_include` names, written by the daemon) and a whole bird.conf
//! for a director with one BGP session per upstream router and BFD
//! (`xlb bird-config --local-as --peer-as --neighbor --router-id`).
//!
//! xlb speaks no routing protocol itself: it puts blackhole host routes (protocol
//! [`PROTO_XLB`]) in its kernel table; the include's `kernel` protocols learn that table
//! into BIRD tables of their own (`xlb_vips4`, `xlb_vips6`), and a BGP channel on those
//! tables exports them. A withdrawn route leaves the BIRD table at once (BIRD hears the
//! kernel's netlink notifications; `scan time` is only the safety net), and BGP sends
//! the withdrawal.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use super::routes::PROTO_XLB;

/// BFD timers of the generated bird.conf: a dead director is declared down after
/// `MULTIPLIER` missed packets `INTERVAL_MS` apart (300 ms).
const BFD_INTERVAL_MS: u32 = 100;
const BFD_MULTIPLIER: u32 = 3;

/// The include for xlb's kernel table `table`.
pub fn include(table: u32) -> String {
    format!(
        r#"# BIRD 2 include written by xlb (`xlb bird-config`). xlb adds a blackhole host route
# (protocol {PROTO_XLB}) to kernel table {table} for each VIP with `announce = "bgp"` this
# director can serve, and removes it when it cannot (quorum lost, no live real server, XDP
# gone, xlb stopping). The kernel protocols below learn them into xlb_vips4 / xlb_vips6;
# export those tables by BGP (`ipv4 {{ table xlb_vips4; export filter xlb_vips; }}`).
ipv4 table xlb_vips4;
ipv6 table xlb_vips6;

filter xlb_vips {{
  if krt_source = {PROTO_XLB} && ((net.type = NET_IP4 && net.len = 32) ||
                        (net.type = NET_IP6 && net.len = 128)) then accept;
  reject;
}}

protocol kernel xlb_kernel4 {{
  ipv4 {{ table xlb_vips4; import filter xlb_vips; export none; }};
  kernel table {table};
  learn;
  scan time 2;
}}

protocol kernel xlb_kernel6 {{
  ipv6 {{ table xlb_vips6; import filter xlb_vips; export none; }};
  kernel table {table};
  learn;
  scan time 2;
}}
"#
    )
}

/// What a whole bird.conf for a director needs.
#[derive(Debug, Clone)]
pub struct Session {
    pub router_id: std::net::Ipv4Addr,
    pub local_as: u32,
    pub peer_as: u32,
    pub neighbors: Vec<IpAddr>,
}

/// A whole bird.conf: the include inline, BFD on every interface, one eBGP (or iBGP when
/// the AS numbers are equal) session per neighbour exporting the VIPs of its address
/// family and importing nothing (a director needs no routes from the routers for DR: the
/// real servers answer the clients directly). Multipath is the routers' business.
pub fn full(table: u32, s: &Session) -> String {
    let mut out = format!(
        "# bird.conf of an xlb director, written by `xlb bird-config`.\nrouter id {};\n\n\
         protocol device {{\n  scan time 10;\n}}\n\n\
         # A dead director is down for the routers after {BFD_MULTIPLIER} missed packets \
         {BFD_INTERVAL_MS} ms apart.\n\
         protocol bfd {{\n  interface \"*\" {{\n    min rx interval {BFD_INTERVAL_MS} ms;\n    \
         min tx interval {BFD_INTERVAL_MS} ms;\n    multiplier {BFD_MULTIPLIER};\n  }};\n}}\n\n",
        s.router_id
    );
    out.push_str(&include(table));
    for (n, peer) in s.neighbors.iter().enumerate() {
        let (family, vips) = if peer.is_ipv4() {
            ("ipv4", "xlb_vips4")
        } else {
            ("ipv6", "xlb_vips6")
        };
        let _ = write!(
            out,
            "\nprotocol bgp upstream{n} {{\n  local as {};\n  neighbor {peer} as {};\n  \
             bfd on;\n  hold time 9;\n  {family} {{\n    table {vips};\n    import none;\n    \
             export filter xlb_vips;\n  }};\n}}\n",
            s.local_as,
            s.peer_as,
            n = n + 1,
        );
    }
    out
}

/// Writes the include to `path` (atomically: BIRD may read it meanwhile) unless it holds
/// that text already. Returns whether it changed the file.
pub fn write_include(path: &Path, table: u32) -> std::io::Result<bool> {
    let text = include(table);
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("xlb-tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_include_learns_the_table_and_filters_host_routes_of_protocol_201() {
        let t = include(1000);
        assert!(t.contains("kernel table 1000;"));
        assert_eq!(t.matches("learn;").count(), 2);
        assert!(t.contains("krt_source = 201"));
        assert!(t.contains("net.len = 32") && t.contains("net.len = 128"));
    }

    #[test]
    fn a_full_config_has_one_session_per_neighbor_with_bfd() {
        let t = full(
            201,
            &Session {
                router_id: "198.18.2.1".parse().unwrap(),
                local_as: 65001,
                peer_as: 65000,
                neighbors: vec![
                    "198.18.2.254".parse().unwrap(),
                    "2001:db8:2::fe".parse().unwrap(),
                ],
            },
        );
        assert!(t.starts_with("# bird.conf"));
        assert!(t.contains("router id 198.18.2.1;"));
        assert!(t.contains("neighbor 198.18.2.254 as 65000;"));
        assert!(t.contains("neighbor 2001:db8:2::fe as 65000;"));
        assert_eq!(t.matches("bfd on;").count(), 2);
        assert!(t.contains("table xlb_vips6;"));
        assert!(t.contains("multiplier 3;"));
    }

    #[test]
    fn the_include_is_written_once() {
        let dir = std::env::temp_dir().join(format!("xlb-bird-{}", std::process::id()));
        let path = dir.join("xlb.conf");
        assert!(write_include(&path, 201).unwrap());
        assert!(!write_include(&path, 201).unwrap());
        assert!(write_include(&path, 202).unwrap());
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("kernel table 202;")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
