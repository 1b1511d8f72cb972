//! `announce = "bgp"` and `[announce]`: the rules that keep an announced VIP consistent.
//! An announced VIP is forwarded by every director at once, so it cannot also be a VRRP
//! instance's (one owner at a time), every service on it must be announced the same way
//! (one route per VIP), and it cannot be NAT (the real servers' replies must come back
//! through the director that translated the request, which ECMP does not promise).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use super::{Invalid, invalid};
use crate::config::locate::{Document, KeyPath};
use crate::config::{AnnounceMode, Config, LbAlgo, LbKind, VirtualServer};

/// Tables the kernel keeps for itself: unspec (0), default (253), main (254), local (255).
const RESERVED_TABLES: [u32; 4] = [0, 253, 254, 255];

fn mode_name(m: Option<AnnounceMode>) -> &'static str {
    m.map_or("no announce (an interface address)", AnnounceMode::as_str)
}

/// The VIPs of `vs` (a fwmark service has one per `match` address).
fn vips(vs: &VirtualServer) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = vs.service_keys().into_iter().map(|k| k.0).collect();
    v.dedup();
    v
}

/// Schedulers whose choice depends only on the packet and the real servers, so that
/// every director with the same real servers picks the same one for a flow.
const SAME_ON_EVERY_DIRECTOR: [LbAlgo; 3] = [LbAlgo::Mh, LbAlgo::Sh, LbAlgo::Dh];

/// Announced services that are valid but will reset connections when the set of directors
/// changes: the routers then move some flows to another director, which schedules their
/// next packet as a new flow. Said by `xlb check` and logged by `xlb run` and reloads,
/// not refused: a deployment that accepts those resets may still want `wrr`.
pub(crate) fn announce_advice(cfg: &Config) -> Vec<Invalid> {
    let root = KeyPath::root();
    (cfg.virtual_server.iter().enumerate())
        .filter(|(_, vs)| vs.announce.is_some() && !SAME_ON_EVERY_DIRECTOR.contains(&vs.lb_algo))
        .map(|(i, vs)| {
            invalid(
                root.key("virtual_server").index(i).key("lb_algo"),
                format!(
                    "{} is announced by BGP with lb_algo \"{}\": when a director joins or \
                     leaves, the routers move some flows to another director, which picks \
                     their real server afresh (their connections reset); \"mh\" picks the \
                     same real server on every director",
                    vs.ip,
                    vs.lb_algo.as_str()
                ),
            )
        })
        .collect()
}

pub(super) fn validate_announce(cfg: &Config, doc: &Document) -> Result<(), Invalid> {
    let root = KeyPath::root();
    let a = &cfg.announce;
    if RESERVED_TABLES.contains(&a.table) {
        return Err(invalid(
            root.key("announce").key("table"),
            format!(
                "table {} is the kernel's own (0 unspec, 253 default, 254 main, 255 local): \
                 give xlb a table of its own, e.g. 201",
                a.table
            ),
        ));
    }
    if let Some(path) = &a.bird_include {
        check_include_path(path)
            .map_err(|m| invalid(root.key("announce").key("bird_include"), m))?;
    }
    let mut seen: HashMap<IpAddr, (usize, Option<AnnounceMode>)> = HashMap::new();
    for (i, vs) in cfg.virtual_server.iter().enumerate() {
        let p = root.key("virtual_server").index(i);
        // Points at `announce` when written, else at the service's address.
        let here = if doc.contains(&p.key("announce")) {
            p.key("announce")
        } else {
            p.key("ip")
        };
        if vs.announce.is_some() {
            if let Some(vi) = vs.vrrp_instance(cfg) {
                return Err(invalid(
                    p.key("announce"),
                    format!(
                        "{} is in vrrp_instance {:?}'s virtual_ipaddress: an announced VIP \
                         is served by every director at once, not moved by VRRP; remove \
                         one or the other",
                        vs.ip, vi.name
                    ),
                ));
            }
            if vs.lb_kind == LbKind::Nat {
                return Err(invalid(
                    p.key("lb_kind"),
                    "a NAT service cannot be announced by BGP: its real servers' replies \
                     must come back through the director that translated the request, \
                     and ECMP routers do not promise that; use \"DR\"",
                ));
            }
        }
        for vip in vips(vs) {
            match seen.get(&vip) {
                Some(&(first, mode)) if mode != vs.announce => {
                    return Err(invalid(
                        here,
                        format!(
                            "{vip} is announced as {} here but as {} by {}: every service \
                             on one VIP is announced the same way",
                            mode_name(vs.announce),
                            mode_name(mode),
                            cfg.virtual_server[first].service_name()
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    seen.insert(vip, (i, vs.announce));
                }
            }
        }
    }
    Ok(())
}

/// The include is written by the daemon (as root) and read by BIRD: an absolute path to a
/// file, not a directory.
fn check_include_path(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!("{path:?} is not an absolute path"));
    }
    if path.ends_with('/') || p.file_name().is_none() {
        return Err(format!("{path:?} names a directory, not a file"));
    }
    if path.contains(['\n', '\0', '"']) {
        return Err(format!(
            "{path:?} contains a line break, a NUL or a quote (bird.conf's include would \
             not name it)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn err(text: &str) -> String {
        Config::parse(text, "x.toml").unwrap_err().to_string()
    }

    const VS: &str = r#"
[[virtual_server]]
ip = "198.18.0.100"
port = 80
lb_algo = "mh"
interface = "eth0"
announce = "bgp"
"#;

    #[test]
    fn an_announced_service_parses_with_the_default_table() {
        let c = Config::parse(VS, "x.toml").unwrap();
        assert_eq!(
            c.virtual_server[0].announce,
            Some(crate::config::AnnounceMode::Bgp)
        );
        assert_eq!(c.announce.table, 201);
        assert_eq!(c.announce.bird_include, None);
    }

    #[test]
    fn unknown_mode_is_refused_where_written() {
        let e = err(&VS.replace("\"bgp\"", "\"ospf\""));
        assert!(
            e.starts_with("x.toml:7:12: virtual_server[0].announce"),
            "{e}"
        );
        assert!(e.contains("expected \"bgp\""), "{e}");
    }

    #[test]
    fn kernel_tables_are_refused() {
        for t in [0, 253, 254, 255] {
            let e = err(&format!("{VS}\n[announce]\ntable = {t}\n"));
            assert!(e.contains("announce.table: table"), "{e}");
            assert!(e.starts_with("x.toml:10:9"), "{e}");
        }
        Config::parse(&format!("{VS}\n[announce]\ntable = 1000\n"), "x.toml").unwrap();
    }

    #[test]
    fn a_relative_or_directory_include_is_refused() {
        for bad in ["bird/xlb.conf", "/etc/bird/", "/etc/bird/x\"y"] {
            let e = err(&format!(
                "{VS}\n[announce]\nbird_include = {}\n",
                toml_string(bad)
            ));
            assert!(e.contains("announce.bird_include"), "{bad}: {e}");
            assert!(e.starts_with("x.toml:10:16"), "{e}");
        }
        Config::parse(
            &format!("{VS}\n[announce]\nbird_include = \"/etc/bird/xlb.conf\"\n"),
            "x.toml",
        )
        .unwrap();
    }

    fn toml_string(s: &str) -> String {
        format!("{s:?}")
    }

    #[test]
    fn a_vip_of_a_vrrp_instance_cannot_be_announced() {
        let text = format!(
            r#"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 100
virtual_ipaddress = ["198.18.0.100/24"]
{VS}"#
        );
        let e = err(&text);
        assert!(e.contains("virtual_server[0].announce"), "{e}");
        assert!(e.contains("vrrp_instance \"VI_1\""), "{e}");
        assert!(e.starts_with("x.toml:14:12"), "{e}");
    }

    #[test]
    fn mixed_modes_on_one_vip_are_refused() {
        let text = format!(
            "{VS}\n[[virtual_server]]\nip = \"198.18.0.100\"\nport = 443\ninterface = \"eth0\"\n"
        );
        let e = err(&text);
        assert!(e.contains("virtual_server[1].ip"), "{e}");
        assert!(e.contains("every service on one VIP"), "{e}");
        assert!(e.starts_with("x.toml:10:6"), "{e}");
    }

    #[test]
    fn nat_cannot_be_announced() {
        let e = err(&VS.replace("lb_algo = \"mh\"", "lb_algo = \"mh\"\nlb_kind = \"NAT\""));
        assert!(e.contains("virtual_server[0].lb_kind"), "{e}");
        assert!(e.contains("NAT service cannot be announced"), "{e}");
    }

    #[test]
    fn a_scheduler_that_differs_between_directors_is_a_warning_at_its_line() {
        let dir = std::env::temp_dir().join(format!("xlb-advice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("xlb.toml");
        for (algo, warned) in [("mh", false), ("sh", false), ("wrr", true), ("wlc", true)] {
            let text = VS.replace("\"mh\"", &format!("\"{algo}\""));
            std::fs::write(&path, &text).unwrap();
            let c = Config::load(&path).expect("valid: a warning, not an error");
            let w = c.warnings(&path);
            if !warned {
                assert!(w.is_empty(), "{algo}: {w:?}");
                continue;
            }
            assert_eq!(w.len(), 1, "{algo}: {w:?}");
            let expect = format!(
                "{}:5:11: warning: virtual_server[0].lb_algo: ",
                path.display()
            );
            assert!(w[0].starts_with(&expect), "{}", w[0]);
            assert!(
                w[0].contains("\"mh\" picks the same real server"),
                "{}",
                w[0]
            );
        }
        // Services that are not announced are none of this rule's business.
        std::fs::write(
            &path,
            VS.replace("announce = \"bgp\"\n", "")
                .replace("\"mh\"", "\"wrr\""),
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert!(c.warnings(&path).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
