//! `xlb check` against the host: a file naming an interface or a source address this
//! host lacks, a real server off its links, or an instance with no address to send
//! adverts from, is refused at its line (as `xlb run` would refuse it), and accepted with
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

    // A real server on the link is fine; one the namespace has no route to is refused.
    let service = |real: &str| {
        format!(
            "{}[[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\n\
             [[virtual_server.real_server]]\nip = \"{real}\"\n",
            CONFIG.replace("SRC", "198.18.0.11")
        )
    };
    let on_link = dir.join("on_link.toml");
    std::fs::write(&on_link, service("198.18.0.21")).unwrap();
    let out = check(&lab, Some("d"), &on_link, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let off_link = dir.join("off_link.toml");
    std::fs::write(&off_link, service("198.18.9.21")).unwrap();
    let out = check(&lab, Some("d"), &off_link, &[]);
    let said = text(&out);
    assert!(!out.status.success(), "accepted: {said}");
    assert!(
        said.contains(":12:6: virtual_server[0].real_server[0].ip: no route to 198.18.9.21"),
        "{said}"
    );

    // Without unicast_src_ip, the instance's interface needs an IPv4 address of its own.
    let no_address = dir.join("no_address.toml");
    std::fs::write(
        &no_address,
        CONFIG
            .replace("xlb-chk0", "xlb-chk1")
            .replace("unicast_src_ip = \"SRC\"\n", ""),
    )
    .unwrap();
    let out = check(&lab, Some("d"), &no_address, &[]);
    let said = text(&out);
    assert!(!out.status.success(), "accepted: {said}");
    assert!(
        said.contains(
            ":3:13: vrrp_instance[0].interface: interface \"xlb-chk1\" has no IPv4 address \
             (besides the VIPs) to send adverts from"
        ),
        "{said}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
