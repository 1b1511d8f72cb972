//! `[sync]`: defaults in force, and refusals located at their key.

use super::*;

const INSTANCE: &str = r#"
[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 100
unicast_src_ip = "198.18.0.2"
unicast_peer = ["198.18.0.3"]
virtual_ipaddress = ["198.18.0.100/32"]

[[virtual_server]]
ip = "198.18.0.100"
port = 80

[[virtual_server.real_server]]
ip = "198.18.0.21"
"#;

#[test]
fn sync_defaults_follow_ipvs_and_the_instance() {
    let c = parse(&format!("{INSTANCE}\n[sync]\ninstance = \"VI_1\"\n"));
    let s = c.sync.as_ref().unwrap();
    assert_eq!((s.id, s.port, s.ttl, s.maxlen), (0, 8848, 1, 1472));
    assert_eq!(s.group.to_string(), "224.0.0.81");
    assert_eq!(s.interface_in_force(&c), Some("eth0"));
    assert_eq!(s.peers_in_force(&c), [ip("198.18.0.3")]);
    assert_eq!(
        s.destinations(&c),
        ["198.18.0.3:8848".parse::<std::net::SocketAddr>().unwrap()]
    );
    // Without unicast peers: the group, which then needs a key.
    let multicast = INSTANCE
        .replace("unicast_src_ip = \"198.18.0.2\"\n", "")
        .replace("unicast_peer = [\"198.18.0.3\"]\n", "");
    let c = parse(&format!(
        "{multicast}\n[sync]\ninstance = \"VI_1\"\nkey = \"k\"\n"
    ));
    let s = c.sync.as_ref().unwrap();
    assert_eq!(
        s.destinations(&c),
        ["224.0.0.81:8848".parse::<std::net::SocketAddr>().unwrap()]
    );
    assert_err(
        &format!("{multicast}\n[sync]\ninstance = \"VI_1\"\n"),
        "17:12: sync.instance",
        "needs key or key_file",
    );
}

#[test]
fn bad_sync_settings_are_refused_at_their_key() {
    let with = |body: &str| format!("{INSTANCE}\n[sync]\ninstance = \"VI_1\"\n{body}");
    // [sync] starts at line 18, instance at 19, the key under test at 20.
    assert_err(
        &format!("{INSTANCE}\n[sync]\ninstance = \"VI_9\"\n"),
        "19:12: sync.instance",
        "no vrrp_instance is named \"VI_9\"",
    );
    assert_err(
        &with("group = \"198.18.0.1\"\n"),
        "20:9: sync.group",
        "not a multicast",
    );
    assert_err(&with("id = 256\n"), "20:6: sync.id", "");
    assert_err(
        &with("maxlen = 100\n"),
        "20:10: sync.maxlen",
        "at least 128",
    );
    assert_err(&with("port = 0\n"), "20:8: sync.port", "1..=65535");
    assert_err(&with("rate = 0\n"), "20:8: sync.rate", "> 0");
    assert_err(
        &with("key = \"a\"\nkey_file = \"/etc/xlb/k\"\n"),
        "21:12: sync.key_file",
        "exclusive",
    );
    assert_err(
        &with("key_file = \"k\"\n"),
        "20:12: sync.key_file",
        "absolute",
    );
    assert_err(
        &with("peers = [\"198.18.0.3\", \"2001:db8::3\"]\n"),
        "20:9: sync.peers",
        "mix IPv4 and IPv6",
    );
    assert_err(
        &with("peers = [\"224.0.0.1\"]\n"),
        "20:10: sync.peers[0]",
        "not a director's address",
    );
    assert_err(&with("speed = 1\n"), "20:1: sync.speed", "unknown field");
    let vrrp_only = INSTANCE.split("\n[[virtual_server]]").next().unwrap();
    assert_err(
        &format!("{vrrp_only}\n[sync]\ninstance = \"VI_1\"\n"),
        "12:12: sync.instance",
        "no virtual_server",
    );
}

#[test]
fn a_key_file_others_can_read_is_a_host_problem() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("xlb-sync-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("k");
    std::fs::write(&f, "s\n").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    let p = crate::config::sync::key_file_problem(&f).expect("group-readable");
    assert!(p.contains("chmod 600"), "{p}");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(crate::config::sync::key_file_problem(&f), None);
    let mut s = crate::config::sync::SyncConfig::for_instance("VI_1");
    s.key_file = Some(f.clone());
    assert_eq!(
        s.secret().unwrap().as_deref(),
        Some(&b"s"[..]),
        "the newline is not the key"
    );
    std::fs::write(&f, "").unwrap();
    assert!(
        crate::config::sync::key_file_problem(&f)
            .unwrap()
            .contains("empty")
    );
    assert!(crate::config::sync::key_file_problem(&dir.join("none")).is_some());
    let _ = std::fs::remove_dir_all(&dir);
}
