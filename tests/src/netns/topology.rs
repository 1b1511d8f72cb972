//! The labs the tests, the demo and the benchmark share: the DR lab (one director holding
//! the VIP) and the HA lab (two directors, VRRP moves the VIP), their addresses, and
//! `xlb run` started in them.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::{Lab, realserver_script, run_ok, xlb_bin};

pub const LAB_VIP: &str = "198.18.0.100";
pub const LAB_CLIENT: &str = "198.18.0.1";
pub const LAB_DIRECTOR: &str = "198.18.0.2";
/// The HA lab's second director.
pub const LAB_DIRECTOR2: &str = "198.18.0.3";
pub const LAB_VIP6: &str = "2001:db8::100";
pub const LAB_CLIENT6: &str = "2001:db8::1";
pub const LAB_DIRECTOR6: &str = "2001:db8::2";

/// IPv6 address of real server `n` (1-based) of the DR lab.
pub fn lab_real6(n: usize) -> String {
    format!("2001:db8::{:x}", 0x10 + n)
}

/// Real server `n` (1-based) of the DR lab.
pub fn lab_real(n: usize) -> String {
    format!("198.18.0.{}", 10 + n)
}

/// The DR lab: a bridge (`sw`), a client (`client`), one director (`dir`) holding the VIP
/// on its eth0 (as an operator does without VRRP), and `reals` real servers (`rs1`..)
/// prepared with `xlb realserver setup` and running the lab real-server program. The
/// director's switch port runs the XDP pass program so XDP_TX frames are delivered.
pub fn dr_lab(tag: &str, reals: usize) -> Lab {
    let mut lab = Lab::new(tag);
    for short in ["sw", "client", "dir"] {
        lab.add_ns(short);
    }
    lab.bridge("sw");
    lab.plug(
        "sw",
        "client",
        &[
            &format!("{LAB_CLIENT}/24"),
            &format!("{LAB_CLIENT6}/64 nodad"),
        ],
    );
    plug_director(&mut lab, true);
    let xlb = xlb_bin();
    for n in 1..=reals {
        let short = format!("rs{n}");
        lab.add_ns(&short);
        lab.plug(
            "sw",
            &short,
            &[
                &format!("{}/24", lab_real(n)),
                &format!("{}/64 nodad", lab_real6(n)),
            ],
        );
        let state = realserver_state(&lab, &short);
        run_ok(
            lab.command(&short, &xlb)
                .args([
                    "realserver",
                    "setup",
                    "--vip",
                    LAB_VIP,
                    "--vip",
                    LAB_VIP6,
                    "--state-file",
                ])
                .arg(&state),
        );
        let mut server = lab.command(&short, Path::new("python3"));
        server.arg(realserver_script()).arg(&short);
        lab.spawn(&short, server);
        lab.wait_log(&short, "listening", Duration::from_secs(10));
    }
    lab
}

/// Plugs the DR lab's director into the switch: its eth0 with the director's addresses
/// (and the VIPs when `with_vips`), and the XDP pass program on its switch port.
fn plug_director(lab: &mut Lab, with_vips: bool) {
    plug_director_with(lab, with_vips, true);
}

fn plug_director_with(lab: &mut Lab, with_vips: bool, with_ipv4: bool) {
    let mut addrs = vec![format!("{LAB_DIRECTOR6}/64 nodad")];
    if with_ipv4 {
        addrs.insert(0, format!("{LAB_DIRECTOR}/24"));
    }
    if with_vips {
        addrs.push(format!("{LAB_VIP}/32"));
        addrs.push(format!("{LAB_VIP6}/128 nodad"));
    }
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    lab.plug("sw", "dir", &addrs);
    let pin = lab.pins.0.join("pass_dir");
    // A pass link left by a deleted port is defunct: its pin goes first.
    let _ = std::fs::remove_file(&pin);
    lab.pass_xdp("sw", "p-dir", &pin);
}

/// Deletes the DR lab director's eth0 (and with it its switch port), as an operator or a
/// driver reset does.
pub fn unplug_director(lab: &Lab) {
    lab.sh("dir", "ip link del eth0");
}

/// Re-creates the DR lab director's eth0 after [`unplug_director`], with the same name and
/// the director's addresses but not the VIPs (VRRP puts those back).
pub fn replug_director(lab: &mut Lab) {
    plug_director(lab, false);
}

/// [`replug_director`] without the director's IPv4 address (`LAB_DIRECTOR`), as a
/// re-created interface whose configuration has not been applied yet.
pub fn replug_director_without_ipv4(lab: &mut Lab) {
    plug_director_with(lab, false, false);
}

/// The state file of `xlb realserver setup` on real server `short` (what its teardown
/// restores from).
pub fn realserver_state(lab: &Lab, short: &str) -> PathBuf {
    lab.tmp.join(format!("{short}-realserver.json"))
}

/// Writes the director's config for the DR lab: `services` is TOML for the
/// `[[virtual_server]]` blocks.
pub fn write_config(lab: &Lab, services: &str) -> PathBuf {
    let path = lab.tmp.join("xlb.toml");
    std::fs::write(&path, services).expect("config");
    path
}

/// Starts `xlb run` in the director namespace under the label `label`; waits until running.
pub fn start_xlb(lab: &mut Lab, label: &str, config: &Path) {
    let mut cmd = lab.command("dir", &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .arg("--pin-path")
        .arg(&lab.pins.0);
    lab.spawn(label, cmd);
    lab.wait_log(label, "xlb running", Duration::from_secs(20));
}

/// The HA labs' virtual server, in TOML: `LAB_VIP:80` over rs1 and rs2 with `mh`, so that
/// either director sends a client to the same real server.
pub fn lab_mh_service() -> String {
    format!(
        r#"
[[virtual_server]]
ip = "{LAB_VIP}"
port = 80
protocol = "TCP"
lb_algo = "mh"

[[virtual_server.real_server]]
ip = "{rs1}"
port = 80

[[virtual_server.real_server]]
ip = "{rs2}"
port = 80
"#,
        rs1 = lab_real(1),
        rs2 = lab_real(2)
    )
}

/// The HA lab: like [`dr_lab`] but with two directors, `dir1` (198.18.0.2) and `dir2`
/// (198.18.0.3), and no VIP on either: VRRP moves it. Both switch ports run the XDP pass
/// program.
pub fn ha_lab(tag: &str, reals: usize) -> Lab {
    build_ha_lab(Lab::new(tag), reals)
}

/// [`ha_lab`] built in `lab`, a fresh one (the demo's is [`Lab::named`]).
pub fn build_ha_lab(mut lab: Lab, reals: usize) -> Lab {
    for short in ["sw", "client", "dir1", "dir2"] {
        lab.add_ns(short);
    }
    lab.bridge("sw");
    lab.plug("sw", "client", &[&format!("{LAB_CLIENT}/24")]);
    lab.plug("sw", "dir1", &[&format!("{LAB_DIRECTOR}/24")]);
    lab.plug("sw", "dir2", &[&format!("{LAB_DIRECTOR2}/24")]);
    let xlb = xlb_bin();
    for n in 1..=reals {
        let short = format!("rs{n}");
        lab.add_ns(&short);
        lab.plug("sw", &short, &[&format!("{}/24", lab_real(n))]);
        let state = realserver_state(&lab, &short);
        run_ok(
            lab.command(&short, &xlb)
                .args(["realserver", "setup", "--vip", LAB_VIP, "--state-file"])
                .arg(&state),
        );
        let mut server = lab.command(&short, Path::new("python3"));
        server.arg(realserver_script()).arg(&short);
        lab.spawn(&short, server);
        lab.wait_log(&short, "listening", Duration::from_secs(10));
    }
    for dir in ["dir1", "dir2"] {
        let pin = lab.pins.0.join(format!("pass_{dir}"));
        lab.pass_xdp("sw", &format!("p-{dir}"), &pin);
    }
    lab
}

/// Starts `xlb run` in namespace `ns` (pins in a per-namespace subdirectory); waits until
/// it runs.
pub fn start_xlb_in(lab: &mut Lab, ns: &str, label: &str, config: &Path) {
    let pins = lab.pins.0.join(ns);
    let mut cmd = lab.command(ns, &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .arg("--pin-path")
        .arg(&pins);
    lab.spawn(label, cmd);
    lab.wait_log(label, "xlb running", Duration::from_secs(20));
}
