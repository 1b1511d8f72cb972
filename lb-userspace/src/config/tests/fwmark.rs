//! `fwmark` services: `match` entries instead of `ip` / `port`, one service under every
//! key; overlaps and bad entries refused at file:line:column.

use super::*;

const VRRP: &str = r#"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 100
virtual_ipaddress = ["198.18.0.10/24", "198.18.0.11/24"]
"#;

fn with_vrrp(vs: &str) -> String {
    format!("{VRRP}{vs}")
}

#[test]
fn a_fwmark_service_takes_its_identity_from_its_first_entry() {
    let cfg = parse(&with_vrrp(
        r#"
[[virtual_server]]
fwmark = 1
match = ["198.18.0.10:80-81", "udp:198.18.0.11:*", "tcp:198.18.0.11:443"]
protocol = "TCP"
persistence_timeout = 900
lb_algo = "rr"

[[virtual_server.real_server]]
ip = "198.18.0.21"
tcp_check = { connect_port = 80 }

[[virtual_server.real_server]]
ip = "198.18.0.22"
"#,
    ));
    let vs = &cfg.virtual_server[0];
    assert_eq!(vs.fwmark, Some(1));
    assert_eq!(
        (vs.ip, vs.port, vs.protocol),
        (ip("198.18.0.10"), 80, Protocol::Tcp)
    );
    assert_eq!(vs.service_name(), "FWM 1 (198.18.0.10:80/TCP)");
    assert_eq!(
        vs.service_keys(),
        [
            (ip("198.18.0.10"), 80, Protocol::Tcp),
            (ip("198.18.0.10"), 81, Protocol::Tcp),
            (ip("198.18.0.11"), 0, Protocol::Udp),
            (ip("198.18.0.11"), 443, Protocol::Tcp),
        ]
    );
    // Real servers have no port: DR keeps each packet's.
    assert!(vs.real_server.iter().all(|r| r.port == 0));
    assert_eq!(vs.resolved_interface(&cfg), Some("eth0"));
    // The serialized form reads back the same.
    let text = toml::to_string(&cfg).unwrap();
    assert_eq!(Config::parse(&text, "ser.toml").unwrap(), cfg);
}

#[test]
fn ipv6_fwmark_services_parse() {
    let cfg = parse(
        r#"
[[virtual_server]]
fwmark = 0x10
match = ["tcp:[2001:db8::10]:80", "tcp:[2001:db8::10]:443"]
interface = "eth0"
persistence_timeout = 60
[[virtual_server.real_server]]
ip = "2001:db8::21"
"#,
    );
    assert_eq!(cfg.virtual_server[0].fwmark, Some(16));
    assert_eq!(cfg.virtual_server[0].service_keys().len(), 2);
}

#[test]
fn fwmark_mistakes_are_refused_where_they_are() {
    // No match list: says what to write.
    assert_err(
        &with_vrrp("[[virtual_server]]\nfwmark = 1\n"),
        "9:10: virtual_server[0].fwmark",
        "needs `match`",
    );
    // A match list without fwmark.
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nip = \"198.18.0.10\"\nport = 80\nmatch = [\"198.18.0.10:81\"]\n",
        ),
        "11:9: virtual_server[0].match",
        "set fwmark = N",
    );
    // Neither ip nor fwmark.
    assert_err(
        &with_vrrp("[[virtual_server]]\nport = 80\n"),
        "8:1: virtual_server[0]",
        "missing field `ip`",
    );
    // A bad entry, at its column.
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80\", \"tcp:2001:db8::1:80\"]\n",
        ),
        "10:28: virtual_server[0].match[1]",
        "\"tcp:2001:db8::1:80\" is not a match entry (write an IPv6 address in brackets)",
    );
    // Overlaps: within the list, with another fwmark service, with a plain service.
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80-90\", \"tcp:198.18.0.10:85\"]\n",
        ),
        "10:31: virtual_server[0].match[1]",
        "198.18.0.10:85/TCP overlaps an earlier entry of this match list",
    );
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80\"]\n\
             [[virtual_server]]\nfwmark = 2\nmatch = [\"198.18.0.11:80\", \"198.18.0.10:79-80\"]\n",
        ),
        "13:28: virtual_server[1].match[1]",
        "198.18.0.10:80/TCP overlaps a match entry of virtual_server[0] (fwmark 1)",
    );
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:443\"]\n\
             [[virtual_server]]\nip = \"198.18.0.10\"\nport = 443\n",
        ),
        "11:1: virtual_server[1]",
        "duplicate virtual service 198.18.0.10:443/TCP: already defined as a match entry of \
         virtual_server[0] (fwmark 1)",
    );
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nip = \"198.18.0.10\"\nport = 443\n\
             [[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:400-500\"]\n",
        ),
        "13:10: virtual_server[1].match[0]",
        "198.18.0.10:443/TCP overlaps virtual_server[0]",
    );
    // `*` against another service's exact port, a port against another's port 0.
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nip = \"198.18.0.10\"\nport = 443\n\
             [[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.11:80\", \"198.18.0.10:*\"]\npersistence_timeout = 1\n",
        ),
        "13:28: virtual_server[1].match[1]",
        "every port of this entry overlaps 198.18.0.10:443/TCP of virtual_server[0]",
    );
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80\"]\n\
             [[virtual_server]]\nip = \"198.18.0.10\"\nport = 0\npersistence_timeout = 1\n",
        ),
        "10:10: virtual_server[0].match[0]",
        "tcp:198.18.0.10:80 of this entry overlaps every port of 198.18.0.10/TCP (port 0) of \
         virtual_server[1]",
    );
    // Within one service, `*` and a port of the same VIP are one service anyway; other
    // protocols and VIPs do not overlap.
    parse(&with_vrrp(
        "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80\", \"198.18.0.10:*\"]\n\
         persistence_timeout = 1\n\
         [[virtual_server]]\nip = \"198.18.0.10\"\nport = 0\nprotocol = \"UDP\"\npersistence_timeout = 1\n\
         [[virtual_server]]\nip = \"198.18.0.11\"\nport = 0\npersistence_timeout = 1\n",
    ));
    // The same mark twice.
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80\"]\n\
             [[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:81\"]\n",
        ),
        "12:10: virtual_server[1].fwmark",
        "fwmark 1 is already virtual_server[0]",
    );
    // One family, one VRRP instance.
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80\", \"[2001:db8::1]:80\"]\n",
        ),
        "10:28: virtual_server[0].match[1]",
        "is IPv6 but the first entry's 198.18.0.10 is IPv4",
    );
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80\", \"198.18.0.99:80\"]\n",
        ),
        "10:28: virtual_server[0].match[1]",
        "198.18.0.99 belongs to no vrrp_instance but 198.18.0.10 to vrrp_instance VI_1",
    );
    // VIPs of one instance on two interfaces (`dev`).
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80\", \"198.18.0.12:80\"]\n",
        )
        .replace(
            "\"198.18.0.11/24\"]",
            "\"198.18.0.11/24\", \"198.18.0.12/24 dev eth1\"]",
        ),
        "10:28: virtual_server[0].match[1]",
        "198.18.0.12 lives on eth1 but 198.18.0.10 on eth0",
    );
    // A port on a real server, or an ip that is not the first entry's.
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80\"]\n\
             [[virtual_server.real_server]]\nip = \"198.18.0.21\"\nport = 80\n",
        ),
        "13:8: virtual_server[0].real_server[0].port",
        "a fwmark service's real servers have no port",
    );
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nip = \"198.18.0.11\"\nmatch = [\"198.18.0.10:80\"]\n",
        ),
        "10:6: virtual_server[0].ip",
        "leave `ip` out (it is the first entry's, tcp:198.18.0.10:80)",
    );
    // A check on a port-less real server needs connect_port.
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:80\"]\n\
             [[virtual_server.real_server]]\nip = \"198.18.0.21\"\ntcp_check = {}\n",
        ),
        "13:13: virtual_server[0].real_server[0].tcp_check",
        "set connect_port",
    );
    // An IPv4-mapped IPv6 address would be the IPv4 service.
    assert_err(
        "[[virtual_server]]\nfwmark = 1\ninterface = \"eth0\"\nmatch = [\"[::ffff:198.18.0.10]:80\"]\n",
        "4:10: virtual_server[0].match[0]",
        "is an IPv4-mapped IPv6 address",
    );
    // Ranges cost one service-map entry per port: capped.
    assert_err(
        &with_vrrp(
            "[[virtual_server]]\nfwmark = 1\nmatch = [\"198.18.0.10:1-2000\"]\npersistence_timeout = 1\n",
        ),
        "10:10: virtual_server[0].match[0]",
        "2000 service-map entries",
    );
}
