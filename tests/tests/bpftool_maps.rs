//! bpftool inspection on a running daemon: every command of the README's bpftool cheat
//! sheet, every map dumped whole (the connection tables at their start size), and every
//! command `xlb maps` prints, each run against `xlb run` with the sample config's services;
//! each must succeed, print less than a bound in bytes, and show the fields it is for.
//! Then a reload, and a restart, that need a larger scheduling table grow it without
//! cutting a connection.

use std::{net::SocketAddr, path::Path, process::Command, time::Duration};

use integration_tests::netns::{
    EchoConn, LAB_VIP, Lab, dr_lab, http_get, lab_real, start_xlb, wait_for, write_config, xlb_bin,
};
use lb_common::map_names;

/// The most a command may print: what `xlb_table` of a small config prints as JSON
/// (65,536 entries, about 7.5 MB) with room to spare, 100 times less than a dump of the
/// table before it was sized from the config (861 MB).
const DUMP_BOUND: usize = 12 << 20;
/// The most a dump of a connection table at its start size (16,384 IPv4 slots) may print:
/// 22 times less than the 355 MB the IPv4 table printed at its old fixed 524,288 slots.
const CONN_DUMP_BOUND: usize = 16 << 20;
/// The most a single lookup, or one service's command, may print.
const LOOKUP_BOUND: usize = 64 << 10;

/// The sample config's services (`lb-userspace/examples/xlb.toml`) on the DR lab, plus a
/// line-echo service for a long-lived connection.
fn sample_services() -> String {
    let rs = |n: usize, port: Option<u16>, weight: u32| {
        let port = port.map(|p| format!("port = {p}\n")).unwrap_or_default();
        format!(
            "[[virtual_server.real_server]]\nip = \"{}\"\n{port}weight = {weight}\n\n",
            lab_real(n)
        )
    };
    let vs = |port: u16, proto: &str, algo: &str, extra: &str| {
        format!(
            "[[virtual_server]]\nip = \"{LAB_VIP}\"\nport = {port}\nprotocol = \"{proto}\"\n\
             lb_algo = \"{algo}\"\nlb_kind = \"DR\"\ninterface = \"eth0\"\n{extra}\n"
        )
    };
    let mut cfg = vs(80, "TCP", "wrr", "");
    cfg += &rs(1, Some(80), 3);
    cfg += &rs(2, Some(80), 1);
    cfg += &rs(3, None, 1);
    cfg += &vs(53, "UDP", "sh", "sh_port = true\n");
    cfg += &rs(1, None, 1);
    cfg += &rs(2, None, 1);
    cfg += &vs(7, "TCP", "rr", "");
    cfg += &rs(1, Some(7), 1);
    cfg += &rs(2, Some(7), 1);
    cfg
}

/// Runs `script` with `sh -c` (a cheat-sheet line may hold a loop or two commands);
/// returns its output, after checking it succeeded.
fn run(script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `bpftool` lines of the README's cheat sheet, for the pins under `dir`.
fn cheat_sheet(dir: &Path) -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let section = readme
        .split("## bpftool cheat sheet")
        .nth(1)
        .expect("the README has a bpftool cheat sheet")
        .split("\n## ")
        .next()
        .unwrap();
    let mut lines = Vec::new();
    let mut in_code = false;
    for line in section.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let command = line.split(" #").next().unwrap().trim();
        if in_code && command.starts_with("bpftool ") {
            lines.push(command.replace("/sys/fs/bpf/xlb", &dir.display().to_string()));
        }
    }
    assert!(lines.len() >= 8, "cheat sheet commands: {lines:?}");
    lines
}

/// A field the output of a command on `map` must show (BTF names, so bpftool printed
/// the layout and not raw bytes).
fn field_of(map: &str) -> &'static str {
    match map {
        map_names::SERVICES => "table_len",
        map_names::REALS => "src_mac",
        map_names::TABLE => "\"value\"",
        map_names::CONNS4 | map_names::CONNS6 => "slots",
        map_names::SERVICE_STATS | map_names::REAL_STATS => "new_flows",
        map_names::META => "conn_seed",
        // Hashes that may be empty in a DR lab.
        map_names::PERSIST | map_names::NAT_REPLIES | map_names::NAT_REALS => "",
        _ => "\"value",
    }
}

/// The map a command is about, if it names one.
fn map_of(command: &str) -> Option<&'static str> {
    // The longest name first: xlb_conns4 is not xlb_conns.
    let mut names = map_names::ALL.to_vec();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    names
        .into_iter()
        .find(|n| command.contains(&format!("/{n} ")) || command.ends_with(&format!("/{n}")))
}

fn check_output(command: &str, out: &str, bound: usize) {
    let conn_dump = command.contains(" dump ")
        && matches!(map_of(command), Some(map_names::CONNS4 | map_names::CONNS6));
    let bound = if conn_dump { CONN_DUMP_BOUND } else { bound };
    assert!(
        out.len() < bound,
        "{command} printed {} bytes (bound {bound})",
        out.len()
    );
    if let Some(map) = map_of(command) {
        assert!(
            out.contains(field_of(map)),
            "{command} does not show {:?}: {}",
            field_of(map),
            &out[..out.len().min(2000)]
        );
    }
}

fn xlb(args: &[&str], pins: &Path) -> String {
    let out = Command::new(xlb_bin())
        .args(args)
        .arg("--pin-path")
        .arg(pins)
        .output()
        .expect("running xlb");
    assert!(
        out.status.success(),
        "xlb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn vip(port: u16) -> SocketAddr {
    SocketAddr::new(LAB_VIP.parse().unwrap(), port)
}

/// Traffic, so that counters, cursors and connection slots hold something.
fn traffic(lab: &Lab) {
    lab.within("client", || {
        for i in 0..6 {
            http_get(vip(80), "/").unwrap_or_else(|e| panic!("request {i}: {e}"));
        }
    });
}

#[test]
fn every_cheat_sheet_command_and_map_dump_is_bounded() {
    let mut lab = dr_lab("bpe", 3);
    let cfg = write_config(&lab, &sample_services());
    start_xlb(&mut lab, "xlb", &cfg);
    traffic(&lab);
    let dir = lab.pins.0.clone();

    for command in cheat_sheet(&dir) {
        let out = run(&command);
        println!("{command}: {} bytes", out.len());
        check_output(&command, &out, DUMP_BOUND);
    }

    // Every map, whole, both ways bpftool prints; the connection tables too, at the size
    // they start at (they grow under load: `conn_grow.rs`).
    for name in map_names::ALL {
        for json in ["", "-j "] {
            let command = format!("bpftool {json}map dump pinned {}/{name}", dir.display());
            let started = std::time::Instant::now();
            let out = run(&command);
            // The time is printed for the README, not checked.
            let took = started.elapsed().as_secs_f64();
            println!("{command}: {} bytes, {took:.2} s", out.len());
            check_output(&command, &out, DUMP_BOUND);
        }
    }
    // The sized maps were made for this config: 1,024 slots, 65,536 table entries.
    let entries = |name: &str| -> u64 {
        let out = run(&format!(
            "bpftool -j map show pinned {}/{name}",
            dir.display()
        ));
        let v: serde_json::Value = serde_json::from_str(&out).expect("bpftool -j");
        v["max_entries"].as_u64().expect("max_entries")
    };
    assert_eq!(entries(map_names::REALS), 1024);
    assert_eq!(entries(map_names::REAL_STATS), 1024);
    assert_eq!(entries(map_names::TABLE), 1 << 16);
    // The connection tables start at 16,384 IPv4 slots (4,096 buckets of 4) and a quarter
    // of that for IPv6, below connection_table_size (524,288), their maximum.
    assert_eq!(entries(map_names::CONNS4), 4096);
    assert_eq!(entries(map_names::CONNS6), 1024);

    // `xlb maps`: every command it prints, map rows and each service's own.
    let report: serde_json::Value =
        serde_json::from_str(&xlb(&["maps", "--json"], &dir)).expect("xlb maps --json");
    for m in report["maps"].as_array().expect("maps") {
        let command = m["command"].as_str().unwrap();
        let out = run(command);
        check_output(command, &out, DUMP_BOUND);
    }
    let services = report["services"].as_array().expect("services");
    assert_eq!(services.len(), 3, "{report}");
    for s in services {
        for c in s["commands"].as_array().unwrap() {
            let command = c.as_str().unwrap();
            let out = run(command);
            check_output(command, &out, LOOKUP_BOUND);
            if command.contains("xlb_table") {
                // The slice: one entry per table slot, each a slot of this service.
                let len = s["table_len"].as_u64().unwrap() as usize;
                assert_eq!(out.matches("\"value\"").count(), len, "{command}: {out}");
            }
        }
        for r in s["real_servers"].as_array().unwrap() {
            for c in r["commands"].as_array().unwrap() {
                let command = c.as_str().unwrap();
                let out = run(command);
                check_output(command, &out, LOOKUP_BOUND);
            }
        }
    }
    let wrr = services
        .iter()
        .find(|s| s["virtual_service"] == format!("{LAB_VIP}:80"))
        .expect("the wrr service");
    assert_eq!(wrr["table_len"], 5, "wrr 3:1:1");
    assert_eq!(wrr["real_servers"].as_array().unwrap().len(), 3);
    // A flow's bucket: `xlb maps --flow` names it, and the lookup shows the flow there.
    let conns: serde_json::Value =
        serde_json::from_str(&xlb(&["conns", "--json"], &dir)).expect("xlb conns --json");
    let conn = &conns.as_array().expect("connections")[0];
    let flow = format!(
        "{},{},{}",
        conn["protocol"].as_str().unwrap(),
        conn["client"].as_str().unwrap(),
        conn["virtual_service"].as_str().unwrap()
    );
    let report: serde_json::Value =
        serde_json::from_str(&xlb(&["maps", "--json", "--flow", &flow], &dir)).expect("--flow");
    let command = report["flow"]["command"]
        .as_str()
        .expect("the flow's command");
    let out = run(command);
    check_output(command, &out, LOOKUP_BOUND);
    let client: SocketAddr = conn["client"].as_str().unwrap().parse().unwrap();
    assert!(
        out.contains(&format!("\"sport\": {}", client.port())),
        "{command} does not show the flow {flow}: {out}"
    );
    // One service only, in the human form.
    let one = xlb(&["maps", "--service", &format!("{LAB_VIP}:53")], &dir);
    assert!(one.contains(&format!("UDP {LAB_VIP}:53 sh")), "{one}");
    assert!(!one.contains(&format!("{LAB_VIP}:80 wrr")), "{one}");
    println!(
        "{}",
        xlb(&["maps", "--service", &format!("{LAB_VIP}:80")], &dir)
    );
    lab.signal("xlb", 0);
}

/// How the daemon meets a config that needs a larger table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Reload,
    Restart,
}

#[test]
fn a_reload_that_needs_a_larger_table_grows_it_and_keeps_connections() {
    grows_and_keeps_connections("bpg", Change::Reload);
}

#[test]
fn a_restart_that_needs_a_larger_table_grows_it_and_keeps_connections() {
    grows_and_keeps_connections("bpr", Change::Restart);
}

/// xlb_table made for the sample config; then the config needs more, through `change`:
/// the table grows, a connection made before keeps its real server, new ones go through.
fn grows_and_keeps_connections(tag: &str, change: Change) {
    let mut lab = dr_lab(tag, 2);
    let cfg = write_config(&lab, &sample_services());
    start_xlb(&mut lab, "xlb", &cfg);
    let dir = lab.pins.0.clone();
    let table_entries = || -> u64 {
        let out = run(&format!(
            "bpftool -j map show pinned {}/xlb_table",
            dir.display()
        ));
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["max_entries"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(table_entries(), 1 << 16);
    let (mut conn, server) = lab.within("client", || {
        let mut c = EchoConn::connect(vip(7)).expect("connect");
        let a = c.ask("hello").expect("echo");
        (c, a.split(' ').next().unwrap().to_string())
    });

    // An mh service of 30 real servers has a table of 32,749 entries (the first prime
    // over 1,000 per server): with the headroom for swaps, more than 65,536.
    let mut bigger = sample_services();
    bigger += &format!(
        "[[virtual_server]]\nip = \"{LAB_VIP}\"\nport = 8080\nprotocol = \"TCP\"\n\
         lb_algo = \"mh\"\nlb_kind = \"DR\"\ninterface = \"eth0\"\n\n"
    );
    for n in 1..=30 {
        bigger += &format!(
            "[[virtual_server.real_server]]\nip = \"198.18.0.{}\"\nport = 8080\n\n",
            150 + n
        );
    }
    // rs2 answers ARP for them, so that the table holds real servers (as many as have
    // answered by then: the map was sized for all 30).
    let addrs: Vec<String> = (1..=30)
        .map(|n| format!("ip addr add 198.18.0.{}/32 dev eth0", 150 + n))
        .collect();
    lab.sh("rs2", &addrs.join(" && "));
    write_config(&lab, &bigger);
    let label = match change {
        Change::Reload => {
            lab.signal("xlb", libc::SIGHUP);
            lab.wait_log("xlb", "config reloaded", Duration::from_secs(20));
            "xlb"
        }
        Change::Restart => {
            lab.kill("xlb", libc::SIGTERM);
            start_xlb(&mut lab, "xlb2", &cfg);
            "xlb2"
        }
    };
    wait_for(Duration::from_secs(5), "xlb_table grown", || {
        let n = table_entries();
        (
            (n == 1 << 17).then_some(()),
            format!("{n} entries\n{}", lab.log(label)),
        )
    });
    assert!(lab.log(label).contains("map grown"), "{}", lab.log(label));

    let still = conn
        .ask("still there?")
        .expect("the connection survives the growth");
    assert!(still.starts_with(&server), "{still} (was {server})");
    lab.within("client", || {
        for i in 0..6 {
            http_get(vip(80), "/").unwrap_or_else(|e| panic!("request {i} after growth: {e}"));
        }
    });
    // The grown maps are what the tools read: the new service's table is there, in the
    // part of the table the growth added room for.
    let service = format!("{LAB_VIP}:8080");
    let svc = wait_for(
        Duration::from_secs(30),
        "the mh service's table of 30",
        || {
            let report: serde_json::Value =
                serde_json::from_str(&xlb(&["maps", "--json", "--service", &service], &dir))
                    .expect("xlb maps --json");
            let svc = report["services"][0].clone();
            let len = svc["table_len"].as_u64().unwrap_or(0);
            ((len > 0).then_some(svc.clone()), format!("{svc}"))
        },
    );
    let end = svc["table_offset"].as_u64().unwrap() + svc["table_len"].as_u64().unwrap();
    assert!(end <= 1 << 17, "{svc}");
    lab.signal(label, 0);
}
