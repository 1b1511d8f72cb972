//! The control protocol without a socket: parsing of services, real servers and request
//! lines, and the wire shapes both sides agree on.

use super::*;

#[test]
fn services_parse_with_tcp_by_default_and_ipv6_in_brackets() {
    let s: ServiceRef = "198.18.0.100:80".parse().unwrap();
    assert_eq!(s.addr, "198.18.0.100:80".parse().unwrap());
    assert_eq!(s.protocol, Protocol::Tcp);
    let s: ServiceRef = "[2001:db8::1]:53/UDP".parse().unwrap();
    assert_eq!(s.addr, "[2001:db8::1]:53".parse().unwrap());
    assert_eq!(s.protocol, Protocol::Udp);
    assert_eq!(s.to_string(), "[2001:db8::1]:53/udp");
    assert_eq!(
        "198.18.0.100:80/tcp"
            .parse::<ServiceRef>()
            .unwrap()
            .to_string(),
        "198.18.0.100:80/tcp"
    );
}

#[test]
fn bad_services_and_real_servers_say_what_is_expected() {
    assert_eq!(
        "198.18.0.100".parse::<ServiceRef>(),
        Err(RefError::Service("198.18.0.100".into()))
    );
    assert_eq!(
        "2001:db8::1:80".parse::<ServiceRef>(),
        Err(RefError::Service("2001:db8::1:80".into())),
        "IPv6 needs brackets"
    );
    assert_eq!(
        "198.18.0.100:80/sctp".parse::<ServiceRef>(),
        Err(RefError::Protocol("sctp".into()))
    );
    assert_eq!(
        "198.18.0.100:99999".parse::<ServiceRef>(),
        Err(RefError::Service("198.18.0.100:99999".into()))
    );
    assert_eq!(
        parse_real("198.18.0.21"),
        Err(RefError::Real("198.18.0.21".into()))
    );
    assert_eq!(
        parse_real("[2001:db8::11]:80"),
        Ok("[2001:db8::11]:80".parse().unwrap())
    );
    assert_eq!(
        RefError::Real("x".into()).to_string(),
        "\"x\": not IP:PORT (IPv6 as [2001:db8::11]:80)"
    );
}

#[test]
fn a_request_line_round_trips_and_reads_as_documented() {
    let r = Request::Weight {
        service: "198.18.0.100:80".parse().unwrap(),
        real: "198.18.0.21:80".parse().unwrap(),
        weight: 0,
    };
    let line = request_line(&r);
    assert_eq!(
        line,
        "{\"version\":1,\"command\":\"weight\",\"service\":\"198.18.0.100:80/tcp\",\
         \"real\":\"198.18.0.21:80\",\"weight\":0}\n"
    );
    assert_eq!(parse_request(line.as_bytes()), Ok(r));
    for r in [
        Request::Reload,
        Request::Status,
        Request::LogReopen,
        Request::LogLevel {
            filter: "info,xlb::vrrp=trace".into(),
        },
        Request::Disable {
            service: "[2001:db8::100]:53/udp".parse().unwrap(),
            real: "[2001:db8::11]:53".parse().unwrap(),
        },
    ] {
        assert_eq!(parse_request(request_line(&r).as_bytes()), Ok(r));
    }
    assert_eq!(
        parse_request(br#"{"version":1,"command":"log_level","filter":"debug"}"#),
        Ok(Request::LogLevel {
            filter: "debug".into()
        })
    );
}

#[test]
fn bad_request_lines_get_errors_not_panics() {
    assert!(matches!(
        parse_request(b"hello"),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        parse_request(br#"{"command":"reload"}"#),
        Err(RequestError::Malformed(_))
    ));
    assert_eq!(
        parse_request(br#"{"version":2,"command":"frobnicate"}"#),
        Err(RequestError::Version { got: 2 })
    );
    assert!(matches!(
        parse_request(br#"{"version":1,"command":"frobnicate"}"#),
        Err(RequestError::Malformed(_))
    ));
    assert_eq!(
        parse_request(br#"{"version":1,"command":"reload","extra":1}"#),
        Err(RequestError::Malformed(
            "unknown field `extra` for command `reload`".into()
        ))
    );
    assert!(matches!(
        parse_request(
            br#"{"version":1,"command":"drain","service":"198.18.0.100:80","real":"198.18.0.21:80","weight":1}"#
        ),
        Err(RequestError::Malformed(_))
    ));
    let e = parse_request(
        br#"{"version":1,"command":"drain","service":"198.18.0.100","real":"198.18.0.21:80"}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not IP:PORT[/tcp|udp]"), "{e}");
    assert_eq!(parse_request(&[0xff, 0xfe]), Err(RequestError::NotUtf8));
    let long = vec![b' '; MAX_REQUEST + 1];
    assert_eq!(parse_request(&long), Err(RequestError::TooLong));
}

#[test]
fn replies_carry_the_version_and_read_back() {
    let r = ReplyLine::new(Reply::error("nope"));
    let line = r.to_line();
    assert_eq!(
        line,
        "{\"version\":1,\"result\":\"error\",\"message\":\"nope\"}\n"
    );
    assert_eq!(serde_json::from_str::<ReplyLine>(&line).unwrap(), r);
    let info = DaemonInfo {
        pid: 7,
        started_at: 100,
        uptime_s: 5,
        config_path: "/etc/xlb/xlb.toml".into(),
        config_loaded_at: 101,
        config_age_s: 4,
        pin_path: "/sys/fs/bpf/xlb".into(),
        state_file: "/run/xlb/sys_fs_bpf_xlb.status.json".into(),
        log_filter: Some("info".into()),
        edits: Vec::new(),
        conn_table: Some(crate::dataplane::conn_grow::ConnTableInfo {
            slots: 65536,
            max_slots: 524_288,
            growths: 1,
        }),
    };
    let r = ReplyLine::new(Reply::Status(Box::new(info)));
    assert_eq!(serde_json::from_str::<ReplyLine>(&r.to_line()).unwrap(), r);
}
