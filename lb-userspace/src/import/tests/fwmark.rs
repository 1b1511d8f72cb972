//! `virtual_server fwmark N` and `fwmark N` group entries, with `--fwmark N=SPEC` for the
//! packets (keepalived.conf does not say which carry the mark).

use super::*;

fn with(text: &str, flags: &[&str]) -> Result<Conversion, ImportError> {
    let mut opts = Options::default();
    for f in flags {
        opts.add_fwmark(f).unwrap();
    }
    import_str_with(text, "keepalived.conf", Path::new("/nonexistent"), &opts)
}

const FWM: &str = "virtual_server fwmark 1 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    persistence_timeout 900
    protocol TCP
    real_server 10.4.0.2 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.4.0.3 {
        TCP_CHECK {
            connect_port 443
        }
    }
}
";

#[test]
fn import_fwmark_with_its_packets_is_one_service() {
    let c = with(
        &format!("{VI}{FWM}"),
        &["1=tcp:10.4.0.100:80,10.4.0.100:443", "1=udp:10.4.0.100:*"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.config.virtual_server.len(), 1);
    let vs = &c.config.virtual_server[0];
    assert_eq!(vs.fwmark, Some(1));
    assert_eq!(
        vs.fwmark_match
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "tcp:10.4.0.100:80",
            "tcp:10.4.0.100:443",
            "udp:10.4.0.100:*"
        ]
    );
    assert_eq!(vs.persistence_timeout, 900);
    // The VIP is VI_1's: its interface, and the service moves with VI_1.
    assert_eq!(vs.resolved_interface(&c.config), Some("eth0"));
    // Real servers have no port; the written one stays the check's.
    assert!(vs.real_server.iter().all(|r| r.port == 0));
    assert_eq!(
        vs.real_server[0].tcp_check.as_ref().unwrap().connect_port,
        Some(80)
    );
    assert_eq!(
        vs.real_server[1].tcp_check.as_ref().unwrap().connect_port,
        Some(443)
    );
    has(
        &warnings(&c),
        "keepalived.conf:14: ",
        "real_server port 80 in a fwmark service",
    );
    assert!(c.toml.contains("fwmark = 1"), "{}", c.toml);
    round_trip(&c);
    // A mark the file does not use is named.
    let c = with(
        &format!("{VI}{FWM}"),
        &["1=tcp:10.4.0.100:80", "2=tcp:10.4.0.100:81"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    has(
        &warnings(&c),
        "keepalived.conf: ",
        "--fwmark 2: no virtual_server uses fwmark 2",
    );
}

#[test]
fn import_fwmark_without_its_packets_says_what_to_pass() {
    let errs = match with(&format!("{VI}{FWM}"), &[]) {
        Ok(c) => panic!("converted:\n{}", c.toml),
        Err(e) => e.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
    };
    has(
        &errs,
        "keepalived.conf:8: ",
        "pass `--fwmark 1=tcp:VIP:PORT[,...]`",
    );
    has(&errs, "keepalived.conf:8: ", "iptables -t mangle -S");
    // The mark's number is read as keepalived reads it: 0x10 is 16.
    let text = FWM.replace("fwmark 1", "fwmark 0x10");
    let c = with(&format!("{VI}{text}"), &["16=10.4.0.100:80"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.config.virtual_server[0].fwmark, Some(16));
    // A --fwmark entry overlapping a plain service: xlb check's error, at the line.
    let plain = "virtual_server 10.4.0.100 443 {\n lb_algo rr\n lb_kind DR\n}\n";
    let e = with(&format!("{VI}{FWM}{plain}"), &["1=tcp:10.4.0.100:400-500"]).unwrap_err();
    has(
        &e.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "keepalived.conf:26: ",
        "duplicate virtual service 10.4.0.100:443/TCP: already defined as a match entry of \
         virtual_server[0] (fwmark 1)",
    );
}

#[test]
fn import_fwmark_group_entries_are_services_of_their_own() {
    let text = format!(
        "{VI}virtual_server_group G {{\n 10.4.0.100 80\n fwmark 7\n}}\n\
         virtual_server group G {{\n lb_algo rr\n lb_kind DR\n persistence_timeout 60\n \
         real_server 10.4.0.2 {{\n }}\n}}\n"
    );
    let e = with(&text, &[]).unwrap_err();
    has(
        &e.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "keepalived.conf:10: ",
        "pass `--fwmark 7=",
    );
    let c = with(&text, &["7=tcp:10.4.0.100:443"]).unwrap_or_else(|e| panic!("{e}"));
    let vs = &c.config.virtual_server;
    assert_eq!(vs.len(), 2);
    assert_eq!((vs[0].fwmark, vs[0].port), (None, 80));
    assert_eq!(vs[1].fwmark, Some(7));
    assert_eq!(vs[1].service_keys().len(), 1);
    // The member's own real servers: the plain one keeps port 80, the fwmark one none.
    assert_eq!(vs[0].real_server[0].port, 80);
    assert_eq!(vs[1].real_server[0].port, 0);
    round_trip(&c);
}

#[test]
fn import_fwmark_flag_syntax() {
    let mut o = Options::default();
    o.add_fwmark("3=tcp:[2001:db8::1]:80-81,udp:198.18.0.1:*")
        .unwrap();
    assert_eq!(o.fwmarks[&3].len(), 2);
    o.add_fwmark("0x3=tcp:198.18.0.1:9").unwrap();
    assert_eq!(o.fwmarks[&3].len(), 3);
    for (bad, why) in [
        ("tcp:198.18.0.1:80", "expected N=SPEC"),
        ("x=tcp:198.18.0.1:80", "is not a mark number"),
        ("1=", "no SPEC"),
        ("1=tcp:198.18.0.1", "no :PORTS"),
    ] {
        let e = o.add_fwmark(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}
