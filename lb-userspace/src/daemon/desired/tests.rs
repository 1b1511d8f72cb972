//! The desired-state rules, without root: configs parsed from text, verdicts and VRRP
//! states recorded by hand.

use super::*;
use crate::health;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config(text: &str) -> Config {
    Config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e:#}"))
}

/// 198.18.0.100:80/TCP on eth0 with `vs_extra` lines, then `servers`.
fn service(vs_extra: &str, servers: &str) -> Config {
    config(&format!(
        "[[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\ninterface = \"eth0\"\n\
         {vs_extra}\n{servers}"
    ))
}

/// A real server of the service at `ip`, port 80, with `extra` lines.
fn real(ip: &str, extra: &str) -> String {
    format!("[[virtual_server.real_server]]\nip = \"{ip}\"\nport = 80\n{extra}\n")
}

const CHECKED: &str = "tcp_check = { connect_port = 80 }";

fn key(rip: &str) -> RealKey {
    RealKey {
        vip: ip("198.18.0.100"),
        vport: 80,
        protocol: Protocol::Tcp,
        rip: ip(rip),
        rport: 80,
    }
}

fn verdict(rip: &str, alive: bool, weight: Option<u32>) -> Verdict {
    Verdict {
        key: key(rip),
        alive,
        weight,
        reason: "test".into(),
    }
}

/// `(alive, weight)` of the first service's real servers, by address.
fn effective_all(o: &Observations, cfg: &Config) -> Vec<(IpAddr, (bool, u32))> {
    let vs = &cfg.virtual_server[0];
    vs.real_server
        .iter()
        .map(|r| (r.ip, o.effective(vs, r)))
        .collect()
}

/// `(address, port, alive, weight)` of the first service's real servers as the data plane
/// should hold them.
fn planned(o: &Observations, cfg: &Config) -> Vec<(IpAddr, u16, bool, u32)> {
    let services = o.services(cfg, &HashMap::new());
    services[0]
        .reals
        .iter()
        .map(|r| (lb_common::ip_of(&r.addr), r.port, r.alive, r.weight))
        .collect()
}

/// Quorum news as `(up, live_weight)`.
fn news(o: &mut Observations, cfg: &Config) -> Vec<(bool, u32)> {
    o.update_quorum(cfg)
        .iter()
        .map(|c| (c.up, c.live_weight))
        .collect()
}

// ------------------------------------------------------------- effective (alive, weight)

#[test]
fn an_unchecked_server_is_alive_at_its_weight() {
    let cfg = service("", &real("198.18.0.21", "weight = 3"));
    let o = Observations::default();
    assert_eq!(effective_all(&o, &cfg), [(ip("198.18.0.21"), (true, 3))]);
}

#[test]
fn a_dead_server_is_dead_unless_inhibited_then_alive_at_weight_0() {
    let servers = real("198.18.0.21", "weight = 3")
        + &real("198.18.0.22", "weight = 2\ninhibit_on_failure = true");
    let cfg = service("", &servers);
    let mut o = Observations::default();
    o.record_verdict(&verdict("198.18.0.21", false, None));
    o.record_verdict(&verdict("198.18.0.22", false, None));
    assert_eq!(
        effective_all(&o, &cfg),
        [
            (ip("198.18.0.21"), (false, 3)),
            (ip("198.18.0.22"), (true, 0)),
        ]
    );
}

#[test]
fn inhibit_on_failure_is_inherited_from_the_virtual_server() {
    let cfg = service(
        "inhibit_on_failure = true",
        &real("198.18.0.21", "weight = 3"),
    );
    let mut o = Observations::default();
    o.record_verdict(&verdict("198.18.0.21", false, None));
    assert_eq!(effective_all(&o, &cfg), [(ip("198.18.0.21"), (true, 0))]);
}

#[test]
fn a_misc_dynamic_weight_replaces_the_configured_one_until_cleared() {
    let cfg = service("", &real("198.18.0.21", "weight = 3"));
    let mut o = Observations::default();
    o.record_verdict(&verdict("198.18.0.21", true, Some(7)));
    assert_eq!(effective_all(&o, &cfg), [(ip("198.18.0.21"), (true, 7))]);
    o.record_verdict(&verdict("198.18.0.21", true, None));
    assert_eq!(effective_all(&o, &cfg), [(ip("198.18.0.21"), (true, 3))]);
}

/// A runtime edit of the real server at `rip` of the first service.
fn edit(o: &mut Observations, cfg: &Config, rip: &str, kind: super::super::edits::EditKind) {
    let service = "198.18.0.100:80".parse().unwrap();
    let real = format!("{rip}:80").parse().unwrap();
    let stamp = super::super::edits::Stamp {
        at: 1,
        by: crate::control::Peer { uid: 0, pid: None },
    };
    o.edits.apply(cfg, service, real, kind, stamp).unwrap();
}

#[test]
fn runtime_edits_ride_over_checks_and_a_disabled_server_ignores_inhibit_on_failure() {
    use super::super::edits::EditKind;
    let servers = real("198.18.0.21", "weight = 3\ninhibit_on_failure = true")
        + &real("198.18.0.22", "weight = 2");
    let cfg = service("", &servers);
    let mut o = Observations::default();
    edit(&mut o, &cfg, "198.18.0.21", EditKind::Weight(9));
    // A misc_dynamic weight loses to the operator's.
    o.record_verdict(&verdict("198.18.0.21", true, Some(7)));
    assert_eq!(effective_all(&o, &cfg)[0], (ip("198.18.0.21"), (true, 9)));
    // A failed check still wins over a weight edit (inhibited: weight 0, alive).
    o.record_verdict(&verdict("198.18.0.21", false, None));
    assert_eq!(effective_all(&o, &cfg)[0], (ip("198.18.0.21"), (true, 0)));
    // Disabled: out, even inhibited and even after a good check.
    edit(&mut o, &cfg, "198.18.0.21", EditKind::Disable);
    o.record_verdict(&verdict("198.18.0.21", true, None));
    assert_eq!(effective_all(&o, &cfg)[0], (ip("198.18.0.21"), (false, 9)));
    // Drained: in the table at weight 0, so its flows stay and no new one comes.
    edit(&mut o, &cfg, "198.18.0.22", EditKind::Drain);
    assert_eq!(
        planned(&o, &cfg),
        [
            (ip("198.18.0.21"), 80, false, 9),
            (ip("198.18.0.22"), 80, true, 0)
        ]
    );
    edit(&mut o, &cfg, "198.18.0.21", EditKind::Enable);
    edit(&mut o, &cfg, "198.18.0.22", EditKind::Enable);
    assert_eq!(
        effective_all(&o, &cfg),
        [
            (ip("198.18.0.21"), (true, 3)),
            (ip("198.18.0.22"), (true, 2))
        ]
    );
}

// ------------------------------------------------------------------------------- quorum

#[test]
fn starting_with_the_quorum_is_not_news_starting_without_it_is() {
    let cfg = service("quorum = 2", &real("198.18.0.21", "weight = 2"));
    let mut o = Observations::default();
    assert_eq!(news(&mut o, &cfg), [], "quorum at start");
    assert_eq!(news(&mut o, &cfg), [], "nothing changed");

    let cfg = service("quorum = 3", &real("198.18.0.21", "weight = 2"));
    let mut o = Observations::default();
    assert_eq!(news(&mut o, &cfg), [(false, 2)], "no quorum at start");
    assert_eq!(news(&mut o, &cfg), [], "said once");
}

#[test]
fn hysteresis_loses_below_quorum_minus_it_and_regains_at_quorum_plus_it() {
    let servers: String = (21..=24)
        .map(|n| real(&format!("198.18.0.{n}"), "weight = 1"))
        .collect();
    let cfg = service("quorum = 3\nhysteresis = 1", &servers);
    let mut o = Observations::default();
    assert_eq!(news(&mut o, &cfg), [], "4 live: up from the start");
    let set = |o: &mut Observations, n: u8, alive: bool| {
        o.record_verdict(&verdict(&format!("198.18.0.{n}"), alive, None));
        news(o, &cfg)
    };
    assert_eq!(set(&mut o, 21, false), [], "3 live: still up");
    assert_eq!(
        set(&mut o, 22, false),
        [],
        "2 live = quorum - hysteresis: still up"
    );
    assert_eq!(set(&mut o, 23, false), [(false, 1)], "1 live: lost");
    assert_eq!(set(&mut o, 21, true), [], "2 live: still lost");
    assert_eq!(set(&mut o, 22, true), [], "3 live = quorum: still lost");
    assert_eq!(
        set(&mut o, 23, true),
        [(true, 4)],
        "4 live = quorum + hysteresis"
    );
}

#[test]
fn quorum_0_is_never_lost() {
    let cfg = service(
        "quorum = 0",
        &(real("198.18.0.21", "weight = 1") + &real("198.18.0.22", "weight = 1")),
    );
    let mut o = Observations::default();
    assert_eq!(news(&mut o, &cfg), []);
    o.record_verdict(&verdict("198.18.0.21", false, None));
    o.record_verdict(&verdict("198.18.0.22", false, None));
    assert_eq!(news(&mut o, &cfg), [], "every server dead");
}

#[test]
fn inhibited_servers_count_for_nothing_towards_the_quorum() {
    let cfg = service(
        "quorum = 1\ninhibit_on_failure = true",
        &real("198.18.0.21", "weight = 1"),
    );
    let mut o = Observations::default();
    assert_eq!(news(&mut o, &cfg), []);
    o.record_verdict(&verdict("198.18.0.21", false, None));
    assert_eq!(news(&mut o, &cfg), [(false, 0)], "alive at weight 0");
}

// ------------------------------------------------------------------------- sorry server

#[test]
fn the_sorry_server_takes_new_flows_alone_while_the_quorum_is_lost() {
    let servers = real("198.18.0.21", "weight = 2") + &real("198.18.0.22", "weight = 1");
    let cfg = service(
        "quorum = 2\nsorry_server = { ip = \"198.18.0.30\" }",
        &servers,
    );
    let mut o = Observations::default();
    news(&mut o, &cfg);
    assert_eq!(
        planned(&o, &cfg),
        [
            (ip("198.18.0.21"), 80, true, 2),
            (ip("198.18.0.22"), 80, true, 1),
        ],
        "with the quorum: no sorry server"
    );
    o.record_verdict(&verdict("198.18.0.21", false, None));
    assert_eq!(news(&mut o, &cfg), [(false, 1)]);
    assert_eq!(
        planned(&o, &cfg),
        [
            (ip("198.18.0.21"), 80, false, 0),
            (ip("198.18.0.22"), 80, true, 0),
            (ip("198.18.0.30"), 80, true, 1),
        ],
        "quorum lost: the live server keeps its flows, the sorry server (on the service's \
         port) takes the new ones"
    );
    o.record_verdict(&verdict("198.18.0.21", true, None));
    assert_eq!(news(&mut o, &cfg), [(true, 3)]);
    assert_eq!(planned(&o, &cfg).len(), 2, "quorum back: sorry server gone");
}

#[test]
fn a_sorry_server_that_is_also_a_real_server_keeps_one_entry() {
    let servers = real("198.18.0.21", "weight = 1") + &real("198.18.0.22", "weight = 1");
    let cfg = service(
        "quorum = 2\nsorry_server = { ip = \"198.18.0.22\", port = 80 }",
        &servers,
    );
    let mut o = Observations::default();
    o.record_verdict(&verdict("198.18.0.21", false, None));
    assert_eq!(news(&mut o, &cfg), [(false, 1)]);
    assert_eq!(
        planned(&o, &cfg),
        [
            (ip("198.18.0.21"), 80, false, 0),
            (ip("198.18.0.22"), 80, true, 0),
        ]
    );
}

#[test]
fn no_sorry_server_no_change_of_weights_when_the_quorum_is_lost() {
    let cfg = service("quorum = 5", &real("198.18.0.21", "weight = 2"));
    let mut o = Observations::default();
    assert_eq!(news(&mut o, &cfg), [(false, 2)]);
    assert_eq!(planned(&o, &cfg), [(ip("198.18.0.21"), 80, true, 2)]);
}

// ------------------------------------------------------------------- alpha, ha_suspend

#[test]
fn alpha_servers_start_dead_until_a_first_success() {
    let servers =
        real("198.18.0.21", &format!("alpha = true\n{CHECKED}")) + &real("198.18.0.22", CHECKED);
    let cfg = service("", &servers);
    let all = health::targets_from_config(&cfg);
    let mut o = Observations::default();
    let running = o.check_targets(&cfg, &all);
    o.expect_targets(&all, &running);
    assert_eq!(
        planned(&o, &cfg),
        [
            (ip("198.18.0.21"), 80, false, 1),
            (ip("198.18.0.22"), 80, true, 1),
        ]
    );
    o.record_verdict(&verdict("198.18.0.21", true, None));
    o.expect_targets(&all, &running);
    assert!(
        planned(&o, &cfg)[0].2,
        "a verdict is not reset by a later sync"
    );
}

#[test]
fn servers_no_longer_checked_forget_their_verdict() {
    let checked = service("", &real("198.18.0.21", CHECKED));
    let mut o = Observations::default();
    o.record_verdict(&verdict("198.18.0.21", false, None));
    let unchecked = service("", &real("198.18.0.21", ""));
    let all = health::targets_from_config(&unchecked);
    o.expect_targets(&all, &all);
    assert_eq!(
        effective_all(&o, &checked),
        [(ip("198.18.0.21"), (true, 1))]
    );
}

/// One VRRP instance VI_1 owning 198.18.0.100, and its service with `vs_extra`.
fn owned_service(vs_extra: &str) -> Config {
    config(&format!(
        "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\n\
         virtual_ipaddress = [\"198.18.0.100/24\"]\n\n\
         [[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\n{vs_extra}\n{}",
        real("198.18.0.21", CHECKED)
    ))
}

#[test]
fn a_service_is_forwarded_without_an_instance_or_where_ours_is_master() {
    let cfg = service("", &real("198.18.0.21", ""));
    let o = Observations::default();
    assert!(o.forwards(&cfg, &cfg.virtual_server[0]), "no VRRP instance");
    assert!(o.services(&cfg, &HashMap::new())[0].active);

    let cfg = owned_service("");
    let vs = &cfg.virtual_server[0];
    let mut o = Observations::default();
    assert!(!o.forwards(&cfg, vs), "instance not reported yet");
    o.record_vrrp("VI_1".into(), VrrpState::Backup);
    assert!(!o.forwards(&cfg, vs), "BACKUP");
    o.record_vrrp("VI_1".into(), VrrpState::Master);
    assert!(o.forwards(&cfg, vs), "MASTER");
    assert!(o.services(&cfg, &HashMap::new())[0].active);
    o.forget_instance("VI_1");
    assert!(!o.forwards(&cfg, vs), "stopped");
}

#[test]
fn ha_suspend_checks_only_where_this_director_forwards() {
    let cfg = owned_service("ha_suspend = true");
    let all = health::targets_from_config(&cfg);
    let mut o = Observations::default();
    assert_eq!(o.check_targets(&cfg, &all), [], "BACKUP: suspended");
    o.record_vrrp("VI_1".into(), VrrpState::Master);
    assert_eq!(o.check_targets(&cfg, &all), all, "MASTER: checked");

    let cfg = owned_service("");
    let all = health::targets_from_config(&cfg);
    let o = Observations::default();
    assert_eq!(
        o.check_targets(&cfg, &all),
        all,
        "no ha_suspend: always checked"
    );
}

// ------------------------------------------------------------------ where, and omega

#[test]
fn real_servers_are_sent_where_their_neighbour_entry_says() {
    let servers = real("198.18.0.21", "") + &real("198.18.0.22", "");
    let cfg = service("", &servers);
    let mac = [2, 0, 0, 0, 0, 0x21];
    let neighbors = HashMap::from([
        (
            ip("198.18.0.21"),
            Neighbor {
                ifindex: 3,
                mac: Some(mac),
            },
        ),
        (
            ip("198.18.0.22"),
            Neighbor {
                ifindex: 3,
                mac: None,
            },
        ),
    ]);
    let reals = &Observations::default().services(&cfg, &neighbors)[0].reals;
    assert_eq!((reals[0].ifindex, reals[0].mac), (3, Some(mac)));
    assert_eq!((reals[1].ifindex, reals[1].mac), (3, None), "unresolved");
    let unlocated = &Observations::default().services(&cfg, &HashMap::new())[0].reals;
    assert_eq!((unlocated[0].ifindex, unlocated[0].mac), (0, None));
}

#[test]
fn omega_runs_down_notifiers_of_live_servers_and_quorum_down_if_held() {
    let servers = real("198.18.0.21", "notify_down = \"down 21\"")
        + &real("198.18.0.22", "notify_down = \"down 22\"");
    let cfg = service("omega = true\nquorum_down = \"qdown\"", &servers);
    let mut o = Observations::default();
    news(&mut o, &cfg);
    o.record_verdict(&verdict("198.18.0.22", false, None));
    assert_eq!(o.omega_commands(&cfg), ["down 21", "qdown"]);

    let cfg = service("quorum_down = \"qdown\"", &servers);
    let mut o = Observations::default();
    news(&mut o, &cfg);
    assert_eq!(o.omega_commands(&cfg), Vec::<&str>::new(), "without omega");
}

#[test]
fn a_verdict_names_its_real_server_while_the_config_has_it() {
    let cfg = service("", &real("198.18.0.21", "weight = 3"));
    assert_eq!(
        real_server(&cfg, &key("198.18.0.21")).map(|r| r.weight),
        Some(3)
    );
    assert!(
        real_server(&cfg, &key("198.18.0.22")).is_none(),
        "removed by a reload"
    );
    let other_port = RealKey {
        vport: 81,
        ..key("198.18.0.21")
    };
    assert!(real_server(&cfg, &other_port).is_none(), "another service");
}
