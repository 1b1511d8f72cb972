//! `include` with globs and relative paths; diagnostics name the included file.

use super::*;

/// A fresh directory under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xlb-import-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn import_includes_globs_relative_paths_and_lines() {
    let dir = temp_dir("include");
    fs::create_dir_all(dir.join("conf.d/vs")).unwrap();
    fs::write(
        dir.join("keepalived.conf"),
        "\
global_defs {
    include conf.d/global.inc
}
include conf.d/vrrp.conf
include conf.d/vs/*.conf
include conf.d/vs/{none,empty}.txt
",
    )
    .unwrap();
    fs::write(dir.join("conf.d/global.inc"), "router_id FROM_INCLUDE\n").unwrap();
    fs::write(
        dir.join("conf.d/vrrp.conf"),
        "\
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.3.0.100/24
    }
}
",
    )
    .unwrap();
    // Read in sorted order: a_web before b_dns.
    fs::write(
        dir.join("conf.d/vs/b_dns.conf"),
        "virtual_server 10.3.0.100 53 {\n protocol UDP\n lb_algo rr\n lb_kind DR\n}\n",
    )
    .unwrap();
    fs::write(
        dir.join("conf.d/vs/a_web.conf"),
        "virtual_server 10.3.0.100 80 {\n lb_algo rr\n lb_kind DR\n include ../rs.inc\n}\n",
    )
    .unwrap();
    // Relative to the file that includes it (conf.d/vs/), as keepalived does.
    fs::write(
        dir.join("conf.d/rs.inc"),
        "real_server 10.3.0.21 80 {\n weight 2\n}\n",
    )
    .unwrap();

    let c = import_file(&dir.join("keepalived.conf")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.config.global_defs.router_id.as_deref(),
        Some("FROM_INCLUDE")
    );
    assert_eq!(c.config.vrrp_instance[0].name, "VI_1");
    let ports: Vec<u16> = c.config.virtual_server.iter().map(|v| v.port).collect();
    assert_eq!(ports, [80, 53]);
    assert_eq!(c.config.virtual_server[0].real_server[0].weight, 2);
    let w = warnings(&c);
    has(
        &w,
        &format!("{}:6: ", dir.join("keepalived.conf").display()),
        "no file matches",
    );
    round_trip(&c);

    // Errors in an included file name that file and line.
    fs::write(
        dir.join("conf.d/vs/b_dns.conf"),
        "virtual_server 10.3.0.100 53 {\n protocol UDP\n lb_kind TUN\n}\n",
    )
    .unwrap();
    let e = import_file(&dir.join("keepalived.conf")).unwrap_err();
    let errs: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
    has(
        &errs,
        &format!("{}:3: ", dir.join("conf.d/vs/b_dns.conf").display()),
        "`lb_kind TUN` cannot be converted",
    );

    // A missing literal include is an error (the converted file would lack it).
    fs::write(dir.join("loop.conf"), "include missing.conf\n").unwrap();
    let e = import_file(&dir.join("loop.conf")).unwrap_err();
    assert!(
        e.errors[0]
            .to_string()
            .contains("cannot read included file"),
        "{e}"
    );
    // An include loop is refused.
    fs::write(dir.join("loop.conf"), "include loop.conf\n").unwrap();
    let e = import_file(&dir.join("loop.conf")).unwrap_err();
    assert!(e.errors[0].to_string().contains("include loop"), "{e}");
    let _ = fs::remove_dir_all(&dir);
}
