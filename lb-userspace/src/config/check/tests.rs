//! The checkers' own keys: defaults, inheritance, values refused at their place.

use super::super::Config;
use super::dns::{DnsType, check_dns_name};
use super::udp::{HexBytes, RequireReply};

const VS: &str = "\
[[virtual_server]]
ip = \"198.18.0.100\"
port = 53
protocol = \"UDP\"
interface = \"eth0\"
delay_loop = 10
";

fn parse(text: &str) -> Config {
    Config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e:#}"))
}

#[track_caller]
fn refused(text: &str, at: &str, fragment: &str) {
    let msg = match Config::parse(text, "t.toml") {
        Ok(_) => panic!("accepted, expected {at}: ...{fragment}..."),
        Err(e) => e.to_string(),
    };
    assert!(msg.starts_with(&format!("t.toml:{at}")), "{msg}");
    assert!(
        msg.contains(fragment),
        "{msg}\n  does not mention\n{fragment}"
    );
}

#[test]
fn config_check_new_checkers_take_keepalived_defaults() {
    let cfg = parse(&format!(
        "{VS}[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
         dns_check = {{}}\n\
         udp_check = {{}}\n\
         ping_check = {{}}\n\
         smtp_check = {{}}\n"
    ));
    let vs = &cfg.virtual_server[0];
    let rs = &vs.real_server[0];
    assert!(rs.has_checker());
    let d = rs.checker_defaults(vs, &cfg.global_defs);

    let dns = rs.dns_check.as_ref().unwrap();
    assert_eq!((dns.query_type, dns.name.as_str()), (DnsType::Soa, "."));
    let t = dns.timing_in_force(&d);
    // keepalived's DNS_CHECK: retry 3, delay_before_retry = delay_loop.
    assert_eq!(
        (t.retry, t.delay_before_retry, t.delay_loop),
        (3, 10.0, 10.0)
    );
    assert_eq!((t.connect_timeout, t.warmup, t.alpha), (5.0, 10.0, false));

    let udp = rs.udp_check.as_ref().unwrap();
    assert_eq!(udp.require_reply, RequireReply::No);
    assert_eq!((udp.min_reply_length, udp.max_reply_length), (0, 65535));
    let t = udp.timing_in_force(&d);
    assert_eq!((t.retry, t.delay_before_retry), (1, 1.0));

    for t in [
        rs.ping_check.as_ref().unwrap().timing_in_force(&d),
        rs.smtp_check.as_ref().unwrap().timing_in_force(&d),
    ] {
        assert_eq!(
            (t.retry, t.delay_before_retry, t.delay_loop),
            (1, 1.0, 10.0)
        );
    }
    assert_eq!(rs.smtp_check.as_ref().unwrap().helo_name, None);
}

#[test]
fn config_check_new_checkers_inherit_like_the_others() {
    let cfg = parse(&format!(
        "{VS}retry = 4\nconnect_timeout = 2\nalpha = true\n\
         [[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
         delay_loop = 3\ndelay_before_retry = 0.5\n\
         dns_check = {{ type = \"aaaa\", name = \"www.example.org.\", retry = 1 }}\n\
         ping_check = {{ alpha = false, warmup = 0, nb_get_retry = 2 }}\n\
         tcp_check = {{ connect_port = 53 }}\n"
    ));
    let vs = &cfg.virtual_server[0];
    let rs = &vs.real_server[0];
    let d = rs.checker_defaults(vs, &cfg.global_defs);
    let dns = rs.dns_check.as_ref().unwrap();
    assert_eq!(
        (dns.query_type.code(), dns.query_type.as_str()),
        (28, "AAAA")
    );
    let t = dns.timing_in_force(&d);
    assert_eq!(
        (
            t.retry,
            t.connect_timeout,
            t.delay_before_retry,
            t.delay_loop,
            t.warmup
        ),
        (1, 2.0, 0.5, 3.0, 3.0)
    );
    assert!(t.alpha, "from the virtual server, through the real server");
    let t = rs.ping_check.as_ref().unwrap().timing_in_force(&d);
    assert_eq!((t.retry, t.warmup, t.alpha), (2, 0.0, false));
    // The older checkers resolve the same values.
    let tcp = rs.tcp_check.as_ref().unwrap().timing_in_force(&d);
    assert_eq!(
        (
            tcp.retry,
            tcp.connect_timeout,
            tcp.delay_before_retry,
            tcp.delay_loop
        ),
        (4, 2.0, 0.5, 3.0)
    );
}

#[test]
fn config_check_udp_payload_and_reply() {
    let cfg = parse(&format!(
        "{VS}[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
         udp_check = {{ payload = \"de ad BE EF\", require_reply = \"0a0b\", \
         min_reply_length = 2, max_reply_length = 512 }}\n\
         [[virtual_server.real_server]]\nip = \"198.18.0.22\"\n\
         udp_check = {{ require_reply = true }}\n"
    ));
    let rs = &cfg.virtual_server[0].real_server;
    let udp = rs[0].udp_check.as_ref().unwrap();
    assert_eq!(udp.payload, Some(HexBytes(vec![0xde, 0xad, 0xbe, 0xef])));
    assert_eq!(udp.require_reply, RequireReply::Data(vec![0x0a, 0x0b]));
    assert_eq!(udp.require_reply.data(), Some(&[0x0a, 0x0b][..]));
    assert_eq!((udp.min_reply_length, udp.max_reply_length), (2, 512));
    let any = rs[1].udp_check.as_ref().unwrap();
    assert!(any.require_reply.is_required() && any.require_reply.data().is_none());
}

#[test]
fn config_check_new_checkers_round_trip() {
    let cfg = parse(&format!(
        "{VS}retry = 2\n[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n\
         dns_check = {{ type = \"MX\", name = \"example.org\", connect_port = 5353 }}\n\
         udp_check = {{ payload = \"00ff\", require_reply = true }}\n\
         ping_check = {{ connect_timeout = 1.5, fwmark = 7 }}\n\
         smtp_check = {{ helo_name = \"lb1.example.org\", connect_ip = \"198.18.0.25\" }}\n\
         [[virtual_server.real_server]]\nip = \"198.18.0.22\"\n\
         udp_check = {{ require_reply = \"abcd\" }}\n\
         http_get = {{ url = [{{ path = \"/\", regex = \"^ok$\" }}] }}\n"
    ));
    let text = toml::to_string(&cfg).unwrap();
    assert_eq!(parse(&text), cfg, "{text}");
}

#[test]
fn config_check_bad_values_are_located() {
    let rs = "[[virtual_server.real_server]]\nip = \"198.18.0.21\"\n";
    refused(
        &format!("{VS}{rs}dns_check = {{ type = \"PTR\" }}\n"),
        "9:",
        "unknown DNS type \"PTR\": expected one of A, NS, CNAME, SOA",
    );
    refused(
        &format!("{VS}{rs}dns_check = {{ name = \"a..b\" }}\n"),
        "9:",
        "label \"\" must be 1 to 63 characters",
    );
    refused(
        &format!("{VS}{rs}dns_check = {{ qtype = \"A\" }}\n"),
        "9:",
        "real_server[0].dns_check.qtype",
    );
    refused(
        &format!("{VS}{rs}udp_check = {{ payload = \"abc\" }}\n"),
        "9:",
        "is not hexadecimal bytes",
    );
    refused(
        &format!("{VS}{rs}udp_check = {{ max_reply_length = 70000 }}\n"),
        "9:",
        "70000 is out of range (0..=65535)",
    );
    refused(
        &format!("{VS}{rs}ping_check = {{ connect_port = 7 }}\n"),
        "9:",
        "ping_check.connect_port",
    );
    refused(
        &format!("{VS}{rs}http_get = {{ url = [{{ path = \"/\", regex = \"(unclosed\" }}] }}\n"),
        "9:",
        "bad regex",
    );
}

#[test]
fn config_check_dns_names() {
    for good in [".", "example.org", "example.org.", "a.b-c.d"] {
        assert_eq!(check_dns_name(good), Ok(()), "{good}");
    }
    let long_label = "a".repeat(64);
    for bad in ["", "..", ".example", "a..b", long_label.as_str(), "é.org"] {
        assert!(check_dns_name(bad).is_err(), "{bad:?}");
    }
}
