//! `xlb check` against the host: a file naming an interface or a source address this
//! host lacks is refused at its line (as `xlb run` would refuse it), and accepted with
//! `--no-host-checks` (a file meant for another machine). Run in a namespace of the
//! test's own, which has the interface and the address.

use std::path::Path;
use std::process::Output;

use integration_tests::netns::{Lab, xlb_bin};

const CONFIG: &str = "\
[[vrrp_instance]]
name = \"VI_1\"
interface = \"xlb-chk0\"
virtual_router_id = 51
virtual_ipaddress = [\"198.18.0.100/24\"]
unicast_src_ip = \"SRC\"
unicast_peer = [\"198.18.0.12\"]
";

fn check(lab: &Lab, ns: Option<&str>, file: &Path, flags: &[&str]) -> Output {
    let mut cmd = match ns {
        Some(ns) => lab.command(ns, &xlb_bin()),
        None => std::process::Command::new(xlb_bin()),
    };
    cmd.arg("check")
        .args(flags)
        .arg("-c")
        .arg(file)
        .output()
        .expect("running xlb check")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_refuses_what_this_host_lacks_unless_told_the_file_is_for_another() {
    let mut lab = Lab::new("chk");
    lab.add_ns("d");
    lab.sh(
        "d",
        "ip link add xlb-chk0 type veth peer name xlb-chk1 && ip link set xlb-chk0 up && \
         ip addr add 198.18.0.11/24 dev xlb-chk0",
    );
    let dir = std::env::temp_dir().join(format!("xlb-config-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, CONFIG.replace("SRC", "198.18.0.11")).unwrap();
    let foreign_src = dir.join("src.toml");
    std::fs::write(&foreign_src, CONFIG.replace("SRC", "198.18.0.99")).unwrap();

    // In the namespace that has them: accepted.
    let out = check(&lab, Some("d"), &good, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(": OK ("), "{}", text(&out));

    // Here, without xlb-chk0: refused at the interface, with the way out.
    let out = check(&lab, None, &good, &[]);
    let said = text(&out);
    assert!(!out.status.success(), "accepted: {said}");
    assert!(
        said.contains(&format!(
            "{}:3:13: vrrp_instance[0].interface: interface \"xlb-chk0\" does not exist on \
             this host (xlb run would refuse it; `xlb check --no-host-checks` checks a file \
             meant for another machine)",
            good.display()
        )),
        "{said}"
    );
    let out = check(&lab, None, &good, &["--no-host-checks"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("host checks skipped"), "{}", text(&out));

    // A unicast_src_ip that is not an address of the host: refused at it.
    let out = check(&lab, Some("d"), &foreign_src, &[]);
    let said = text(&out);
    assert!(!out.status.success(), "accepted: {said}");
    assert!(
        said.contains(
            ":6:18: vrrp_instance[0].unicast_src_ip: 198.18.0.99 is not an address of this host"
        ),
        "{said}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
