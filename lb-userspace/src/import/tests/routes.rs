//! `static_*`, `virtual_routes` / `virtual_rules` and `@ID` lines, on the lines of
//! keepalived's own samples.

use super::*;
use crate::import::lexer::{Conditionals, Options, conditional};

/// keepalived's samples/vrrp.routes.conf and vrrp.rules.conf, the parts that matter.
const ROUTES: &str = "\
global_defs {
   default_interface eth9
}
static_ipaddress {
    192.168.200.16 dev eth0 scope link
    192.168.200.18
}
static_routes {
    src 192.168.100.1 192.168.209.0/24 via 192.168.200.254 dev eth0
    192.168.212.0/24 dev eth3 scope site
}
static_rules {
    from 192.168.100.0/24 table 1
    to 192.168.100./24 table 1
    from 2001:db8::/64 table 3
    from 192.168.101.0/24 table 1 preference 7
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.168.200.20
    }
    virtual_routes {
        192.168.113.0/24 via 192.168.100.252 or 192.168.100.253
        blackhole 192.168.113.1/32
        0.0.0.0/0 gw 192.168.0.1 table 100  # To set a default gateway into table 100.
    }
    virtual_rules {
        from 192.168.200.0/24 table 2
    }
}
";

#[test]
fn import_routes_rules_and_static_addresses_as_keepalived_reads_them() {
    let c = import(ROUTES);
    let cfg = &c.config;
    assert_eq!(
        cfg.static_ipaddress,
        [
            "192.168.200.16 dev eth0 scope link",
            "192.168.200.18 dev eth9"
        ],
        "no dev: keepalived's default interface, written out"
    );
    assert_eq!(cfg.static_route_list().len(), 2);
    // Rules without a preference are numbered as keepalived numbers them: from 16384
    // down, per family, in file order; the malformed one is skipped as keepalived
    // skips it.
    assert_eq!(
        cfg.static_rules,
        [
            "from 192.168.100.0/24 table 1 preference 16384",
            "from 2001:db8::/64 table 3 preference 16384",
            "from 192.168.101.0/24 table 1 preference 7",
        ]
    );
    let vi = &cfg.vrrp_instance[0];
    assert_eq!(
        vi.virtual_rules,
        ["from 192.168.200.0/24 table 2 preference 16383"]
    );
    let routes = vi.virtual_route_list();
    assert_eq!(routes.len(), 3);
    assert_eq!(routes[0].nexthops.len(), 2, "`or`: two next hops");
    assert_eq!(routes[2].table, 100);
    let w = warnings(&c);
    has(
        &w,
        "keepalived.conf:6: ",
        "keepalived puts it on its default interface, eth9",
    );
    has(&w, "keepalived.conf:13: ", "keepalived sets it to 16384");
    has(&w, "keepalived.conf:14: ", "skipped");
    has(&w, "keepalived.conf:25: ", "`or` is deprecated");
    has(&w, "keepalived.conf:27: ", "`gw` is deprecated");
    round_trip(&c);
}

#[test]
fn import_refuses_route_options_xlb_lacks_at_their_line() {
    let errs = import_err(&format!(
        "static_routes {{\n 10.9.0.0/16 via 10.4.0.1 mtu 1400\n 10.8.0.0/16 via 10.4.0.1 \
         table frob\n}}\nstatic_rules {{\n from 10.4.0.0/24 sport 80 table 1 preference 5\n}}\n{VI}"
    ));
    has(
        &errs,
        "keepalived.conf:2: ",
        "route option `mtu` cannot be converted",
    );
    has(&errs, "keepalived.conf:3: ", "rt_tables");
    has(
        &errs,
        "keepalived.conf:6: ",
        "rule option `sport` cannot be converted",
    );
    // A bad value reaches xlb's parser through the TOML, and is reported at its line.
    let errs = import_err(&format!(
        "static_ipaddress {{\n 10.4.0.7/24 dev eth0 frob\n}}\n{VI}"
    ));
    has(&errs, "keepalived.conf:2: ", "`frob` is not supported");
}

/// parser.c's `@` test: `@ID` kept for that id only, `@^ID` for every other id (and
/// without one), an `@` line with nothing after the id dropped.
#[test]
fn conditional_lines_follow_keepalived_s_parser() {
    assert_eq!(
        conditional("@high priority 170", Some("high")),
        Some("priority 170")
    );
    assert_eq!(
        conditional("@high\tpriority 170", Some("high")),
        Some("priority 170")
    );
    assert_eq!(conditional("@high priority 170", Some("low")), None);
    assert_eq!(conditional("@high priority 170", Some("highest")), None);
    assert_eq!(conditional("@high priority 170", None), None);
    assert_eq!(conditional("@^high priority 85", Some("high")), None);
    assert_eq!(
        conditional("@^high priority 85", Some("low")),
        Some("priority 85")
    );
    assert_eq!(conditional("@^high priority 85", None), Some("priority 85"));
    assert_eq!(
        conditional("@high", Some("high")),
        None,
        "nothing after the id"
    );
    assert_eq!(conditional("@", Some("")), None);
}

#[test]
fn import_with_a_config_id_keeps_that_directors_lines() {
    // The corpus's samples/conditional_conf.conf, without its VMAC and namespace.
    let text = "\
vrrp_instance VI_0 {
\tinterface eth0
\tvirtual_router_id 1
@high\tpriority 170
@low\tpriority 85
@^high\tstate BACKUP
\tvirtual_ipaddress {
\t\t10.1.0.254/32
\t}
}
";
    let as_id = |id: Option<&str>| {
        let o = crate::import::Options {
            config_id: id.map(str::to_owned),
            ..Default::default()
        };
        import_str_with(text, "keepalived.conf", Path::new("/nonexistent"), &o)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let high = as_id(Some("high"));
    assert_eq!(high.config.vrrp_instance[0].priority, 170);
    assert_eq!(
        high.config.vrrp_instance[0].state,
        InitialState::Backup,
        "default"
    );
    assert!(
        high.toml
            .contains("config id high (`--config-id`): 1 conditional line(s) kept, 2 dropped")
    );
    let low = as_id(Some("low"));
    assert_eq!(low.config.vrrp_instance[0].priority, 85);
    // An id of no line: every `@ID` line dropped silently, `@^ID` kept.
    let other = as_id(Some("lb7"));
    assert_eq!(other.config.vrrp_instance[0].priority, 100);
    assert!(other.warnings.is_empty());
    let mut d = Diagnostics::default();
    let (_, cond) = crate::import::lexer::read_str_with(
        text,
        "k.conf",
        Path::new("/nonexistent"),
        &Options::default(),
        &mut d,
    );
    assert_eq!(
        cond,
        Conditionals {
            kept: 1,
            dropped: 2
        }
    );
}
