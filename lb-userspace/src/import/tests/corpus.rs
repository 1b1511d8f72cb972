//! Every file of the keepalived corpus (real keepalived.conf files from public
//! repositories, /work/shared/keepalived-corpus, sources in its SOURCES.md) against the
//! outcome recorded in [`EXPECTED`]: converted and loaded as `xlb check
//! --no-host-checks` loads it ([`Config::load`]), or refused with the first error
//! recorded. A file that changes outcome, a file missing from the table, or a table
//! entry without its file fails the test, so a regression (or a fix) shows.
//!
//! The corpus is found at `$XLB_KEEPALIVED_CORPUS`, else `../shared/keepalived-corpus`
//! from the repository, else `/work/shared/keepalived-corpus` (where CI's clean clone,
//! on the same machine, finds it); without it the test fails and says so.

use super::*;

/// What a corpus file gives.
enum Expect {
    /// Converts, and the TOML loads.
    Imports,
    /// Refused; the first error reads `NAME:LINE: ...FRAGMENT...` (NAME: the file, or
    /// the included file, relative to the corpus directory).
    Refused(&'static str, &'static str),
}
use Expect::{Imports, Refused};

/// A directory (a configuration split with `include`) is read from its keepalived.conf.
const EXPECTED: &[(&str, Expect)] = &[
    (
        "1newstar-MHA-mysql-shell__keepalived_keepalived.conf",
        Imports,
    ),
    (
        "Dok-dev-devops-netology__hw-03.8_netology1.md.extracted.conf",
        Imports,
    ),
    ("MX-Steve-nsd01__keepalived_keepalived.conf", Imports),
    ("acassen-keepalived__docker__keepalived.conf", Imports),
    ("acassen-keepalived__etc__default-keepalived.conf", Imports),
    ("acassen-keepalived__samples__HTTP_GET.port.conf", Imports),
    ("acassen-keepalived__samples__IPv6.conf", Imports),
    ("acassen-keepalived__samples__PING_CHECK.conf", Imports),
    ("acassen-keepalived__samples__SMTP_CHECK.conf", Imports),
    (
        "acassen-keepalived__samples__SSL_GET.conf",
        Refused(
            "acassen-keepalived__samples__SSL_GET.conf:20",
            "auth_type AH (IPsec AH) is not supported",
        ),
    ),
    ("acassen-keepalived__samples__UDP_CHECK.conf", Imports),
    (
        "acassen-keepalived__samples__conditional_conf.conf",
        Refused(
            "acassen-keepalived__samples__conditional_conf.conf:3",
            "`net_namespace` is not converted",
        ),
    ),
    ("acassen-keepalived__samples__fwmark.conf", Imports),
    ("acassen-keepalived__samples__inhibit.conf", Imports),
    ("acassen-keepalived__samples__misc_check.conf", Imports),
    ("acassen-keepalived__samples__misc_check_arg.conf", Imports),
    ("acassen-keepalived__samples__quorum.conf", Imports),
    ("acassen-keepalived__samples__sample.conf", Imports),
    ("acassen-keepalived__samples__status_code.conf", Imports),
    ("acassen-keepalived__samples__track_interface.conf", Imports),
    (
        "acassen-keepalived__samples__virtual_server_group.conf",
        Refused(
            "acassen-keepalived__samples__virtual_server_group.conf:29",
            "a real server cannot be the VIP itself",
        ),
    ),
    ("acassen-keepalived__samples__virtualhost.conf", Imports),
    ("acassen-keepalived__samples__vrrp.conf", Imports),
    ("acassen-keepalived__samples__vrrp.localcheck.conf", Imports),
    ("acassen-keepalived__samples__vrrp.lvs_syncd.conf", Imports),
    ("acassen-keepalived__samples__vrrp.routes.conf", Imports),
    ("acassen-keepalived__samples__vrrp.rules.conf", Imports),
    ("acassen-keepalived__samples__vrrp.scripts.conf", Imports),
    (
        "acassen-keepalived__samples__vrrp.static_ipaddress.conf",
        Imports,
    ),
    ("acassen-keepalived__samples__vrrp.sync.conf", Imports),
    ("angeloyang-magic__lvs_keepalived.conf", Imports),
    ("boboyang-mydoc__LVS_keepalived.conf", Imports),
    ("chaihuo0-document__LVS_keepalived.conf", Imports),
    (
        "chenerqi-rgw__keepalived_keepalived.conf.rendered-defaults.conf",
        Imports,
    ),
    ("coregear-linux__keepalived_keepalived.conf", Imports),
    ("fanux-kubeinit__pkg_ha_manifast.go.extracted.conf", Imports),
    ("hanajava-apache__keepalived_keepalived.conf", Imports),
    (
        "ideaxy-mysql-keepalived__keepalived_keepalived.conf",
        Imports,
    ),
    ("itoliver-Linux_Doc__LVS_keepalived.conf", Imports),
    ("kingkongmok-linux__etc_keepalived_keepalived.conf", Imports),
    (
        "kubernetes-kubeadm__docs_ha-considerations.md.rendered.conf",
        Imports,
    ),
    ("linlams-cmz__keepalived", Imports),
    (
        "openshift-machine-config-operator__on-prem_keepalived-keepalived.yaml.rendered.conf",
        Imports,
    ),
    ("qimanchen-interview_plan__lvs_keepalived.conf", Imports),
    (
        "qiuyesuifeng-codis_keepalived_lvs__conf_keepalived.conf",
        Imports,
    ),
    ("renzhsh-shell-repo__keepalived_keepalived.conf", Imports),
    (
        "rootsongjc-kubernetes-handbook__etc_keepalived_keepalived.conf",
        Refused(
            "rootsongjc-kubernetes-handbook__etc_keepalived_keepalived.conf:30",
            "unknown lb_algo \"loadbalance\"",
        ),
    ),
    ("sangrealest-shell__keepalived", Imports),
    (
        "thanks173-system-admin-notes__load-balancer_keepalived_keepalived_master.conf",
        Imports,
    ),
    ("tony-yin-ceph_scripts__keepalived_keepalived.conf", Imports),
    (
        "xusxlinux-Document__kubernetes_05-keepalived_master02.md.extracted.conf",
        Refused(
            "xusxlinux-Document__kubernetes_05-keepalived_master02.md.extracted.conf:22",
            "unknown lb_algo \"loadbalance\"",
        ),
    ),
    ("zhangzuoqiang-DevOps__lvs_keepalived.conf", Imports),
    ("zhdnf-python_script__lvs_keepalived.conf", Imports),
    (
        "zillow-linuxgateway__etc_keepalived_keepalived.conf",
        Imports,
    ),
    ("zznan0o0-AutoInstallShell__lvs_keepalived.conf", Imports),
];

/// The config id a file is read with (keepalived's `-i`), where the file has `@ID`
/// lines; the others are read with none.
const CONFIG_IDS: &[(&str, &str)] =
    &[("acassen-keepalived__samples__conditional_conf.conf", "high")];

fn corpus_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("XLB_KEEPALIVED_CORPUS").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/keepalived-corpus")),
        Some(PathBuf::from("/work/shared/keepalived-corpus")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.join("files").is_dir() {
            return c.join("files");
        }
    }
    panic!(
        "the keepalived corpus is missing: looked for files/ in $XLB_KEEPALIVED_CORPUS, \
         ../shared/keepalived-corpus (from the repository) and \
         /work/shared/keepalived-corpus; this test needs it"
    );
}

/// The `xlb import-keepalived` flags a file is imported with: what keepalived.conf
/// cannot say. `--interface` for virtual servers whose VIP is in no vrrp_instance (IPVS
/// needs no interface, XDP does; the name is made up, as `--no-host-checks` allows);
/// `--fwmark` for fwmark services: the packets the (absent) firewall rules would mark,
/// made up on the sample's addresses.
const FLAGS: &[(&str, &[&str])] = &[
    (
        "acassen-keepalived__etc__default-keepalived.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__HTTP_GET.port.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__IPv6.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__PING_CHECK.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__SMTP_CHECK.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__SSL_GET.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__UDP_CHECK.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__fwmark.conf",
        &[
            "--interface",
            "eth0",
            "--fwmark",
            "1=tcp:192.168.201.10:80,tcp:192.168.201.10:443",
        ],
    ),
    (
        "acassen-keepalived__samples__inhibit.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__misc_check.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__misc_check_arg.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__quorum.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__sample.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__status_code.conf",
        &["--interface", "eth0"],
    ),
    (
        "acassen-keepalived__samples__virtual_server_group.conf",
        &[
            "--interface",
            "eth0",
            "--fwmark",
            "1=tcp:192.168.200.20:80,tcp:192.168.200.20:443",
            "--fwmark",
            "2=tcp:192.168.200.21:8000-8009",
        ],
    ),
    (
        "acassen-keepalived__samples__virtualhost.conf",
        &["--interface", "eth0"],
    ),
    (
        "zhdnf-python_script__lvs_keepalived.conf",
        &["--interface", "eth0"],
    ),
];

/// The [`Options`] of `name`'s [`FLAGS`].
fn options(name: &str) -> Options {
    let mut opts = Options::default();
    let flags = FLAGS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[][..], |f| f.1);
    for pair in flags.chunks(2) {
        match pair {
            ["--interface", i] => opts.interface = Some((*i).to_owned()),
            ["--fwmark", f] => opts.add_fwmark(f).unwrap(),
            _ => panic!("{name}: bad FLAGS entry {pair:?}"),
        }
    }
    opts.config_id = (CONFIG_IDS.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, id)| (*id).to_owned());
    opts
}

/// The outcome of one corpus entry, as `Ok(())` or `Err("NAME:LINE: message")`.
fn outcome(dir: &Path, name: &str) -> Result<(), String> {
    let mut path = dir.join(name);
    if path.is_dir() {
        path = path.join("keepalived.conf");
    }
    let prefix = format!("{}/", dir.display());
    match import_file_with(&path, &options(name)) {
        Ok(conv) => {
            let out =
                std::env::temp_dir().join(format!("xlb-corpus-{}-{name}.toml", std::process::id()));
            fs::write(&out, &conv.toml).unwrap();
            let loaded = Config::load(&out);
            let _ = fs::remove_file(&out);
            loaded.map(|_| ()).map_err(|e| format!("xlb check: {e}"))
        }
        Err(e) => Err(e.errors[0].to_string().replace(&prefix, "")),
    }
}

#[test]
fn import_every_corpus_file_gives_its_recorded_outcome() {
    let dir = corpus_dir();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut wrong = Vec::new();
    let mut imported = 0;
    for name in &names {
        let got = outcome(&dir, name);
        if got.is_ok() {
            imported += 1;
        }
        let Some((_, want)) = EXPECTED.iter().find(|(n, _)| n == name) else {
            wrong.push(format!("{name}: not in the table; it gives {got:?}"));
            continue;
        };
        match (want, &got) {
            (Imports, Ok(())) => {}
            (Refused(at, fragment), Err(e))
                if e.starts_with(&format!("{at}: ")) && e.contains(fragment) => {}
            (Imports, Err(e)) => wrong.push(format!("{name}: expected to import, refused: {e}")),
            (Refused(at, fragment), _) => wrong.push(format!(
                "{name}: expected refused at {at} with ...{fragment}..., got {got:?}"
            )),
        }
    }
    for name in EXPECTED
        .iter()
        .map(|e| e.0)
        .chain(FLAGS.iter().map(|f| f.0))
    {
        if !names.iter().any(|n| n == name) {
            wrong.push(format!("{name}: in the table, not in {}", dir.display()));
        }
    }
    assert!(
        wrong.is_empty(),
        "{imported} of {} corpus files import; outcomes differ from the table:\n{}",
        names.len(),
        wrong.join("\n")
    );
}
