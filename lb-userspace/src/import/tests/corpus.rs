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
    (
        "acassen-keepalived__etc__default-keepalived.conf",
        Refused(
            "acassen-keepalived__etc__default-keepalived.conf:36",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__HTTP_GET.port.conf",
        Refused(
            "acassen-keepalived__samples__HTTP_GET.port.conf:13",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__IPv6.conf",
        Refused(
            "acassen-keepalived__samples__IPv6.conf:13",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__PING_CHECK.conf",
        Refused(
            "acassen-keepalived__samples__PING_CHECK.conf:14",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__SMTP_CHECK.conf",
        Refused(
            "acassen-keepalived__samples__SMTP_CHECK.conf:64",
            "SMTP_CHECK `host` blocks are not supported",
        ),
    ),
    (
        "acassen-keepalived__samples__SSL_GET.conf",
        Refused(
            "acassen-keepalived__samples__SSL_GET.conf:30",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__UDP_CHECK.conf",
        Refused(
            "acassen-keepalived__samples__UDP_CHECK.conf:14",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__conditional_conf.conf",
        Refused(
            "acassen-keepalived__samples__conditional_conf.conf:3",
            "a line conditional on a keepalived config id (`@ID ...`) cannot be converted",
        ),
    ),
    (
        "acassen-keepalived__samples__fwmark.conf",
        Refused(
            "acassen-keepalived__samples__fwmark.conf:7",
            "`virtual_server fwmark` is not supported",
        ),
    ),
    (
        "acassen-keepalived__samples__inhibit.conf",
        Refused(
            "acassen-keepalived__samples__inhibit.conf:13",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__misc_check.conf",
        Refused(
            "acassen-keepalived__samples__misc_check.conf:14",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__misc_check_arg.conf",
        Refused(
            "acassen-keepalived__samples__misc_check_arg.conf:13",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__quorum.conf",
        Refused(
            "acassen-keepalived__samples__quorum.conf:23",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__sample.conf",
        Refused(
            "acassen-keepalived__samples__sample.conf:26",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__status_code.conf",
        Refused(
            "acassen-keepalived__samples__status_code.conf:14",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "acassen-keepalived__samples__track_interface.conf",
        Refused(
            "acassen-keepalived__samples__track_interface.conf:7",
            "`static_routes` is not supported",
        ),
    ),
    (
        "acassen-keepalived__samples__virtual_server_group.conf",
        Refused(
            "acassen-keepalived__samples__virtual_server_group.conf:18",
            "fwmark entries are not supported",
        ),
    ),
    (
        "acassen-keepalived__samples__virtualhost.conf",
        Refused(
            "acassen-keepalived__samples__virtualhost.conf:13",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    ("acassen-keepalived__samples__vrrp.conf", Imports),
    ("acassen-keepalived__samples__vrrp.localcheck.conf", Imports),
    (
        "acassen-keepalived__samples__vrrp.lvs_syncd.conf",
        Refused(
            "acassen-keepalived__samples__vrrp.lvs_syncd.conf:3",
            "vrrp_sync_group is not supported",
        ),
    ),
    (
        "acassen-keepalived__samples__vrrp.routes.conf",
        Refused(
            "acassen-keepalived__samples__vrrp.routes.conf:7",
            "`static_routes` is not supported",
        ),
    ),
    (
        "acassen-keepalived__samples__vrrp.rules.conf",
        Refused(
            "acassen-keepalived__samples__vrrp.rules.conf:9",
            "`static_rules` is not supported",
        ),
    ),
    (
        "acassen-keepalived__samples__vrrp.scripts.conf",
        Refused(
            "acassen-keepalived__samples__vrrp.scripts.conf:6",
            "vrrp_sync_group is not supported",
        ),
    ),
    (
        "acassen-keepalived__samples__vrrp.static_ipaddress.conf",
        Refused(
            "acassen-keepalived__samples__vrrp.static_ipaddress.conf:7",
            "`static_ipaddress` is not supported",
        ),
    ),
    (
        "acassen-keepalived__samples__vrrp.sync.conf",
        Refused(
            "acassen-keepalived__samples__vrrp.sync.conf:3",
            "vrrp_sync_group is not supported",
        ),
    ),
    (
        "angeloyang-magic__lvs_keepalived.conf",
        Refused(
            "angeloyang-magic__lvs_keepalived.conf:13",
            "vrrp_sync_group is not supported",
        ),
    ),
    ("boboyang-mydoc__LVS_keepalived.conf", Imports),
    ("chaihuo0-document__LVS_keepalived.conf", Imports),
    (
        "chenerqi-rgw__keepalived_keepalived.conf.rendered-defaults.conf",
        Imports,
    ),
    (
        "coregear-linux__keepalived_keepalived.conf",
        Refused(
            "coregear-linux__keepalived_keepalived.conf:18",
            "vrrp_sync_group is not supported",
        ),
    ),
    (
        "fanux-kubeinit__pkg_ha_manifast.go.extracted.conf",
        Refused(
            "fanux-kubeinit__pkg_ha_manifast.go.extracted.conf:1",
            "vrrp_sync_group is not supported",
        ),
    ),
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
    (
        "sangrealest-shell__keepalived",
        Refused(
            "sangrealest-shell__keepalived/keepalived.conf:3",
            "vrrp_sync_group is not supported",
        ),
    ),
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
    (
        "zhdnf-python_script__lvs_keepalived.conf",
        Refused(
            "zhdnf-python_script__lvs_keepalived.conf:1",
            "is not a VIP of any vrrp_instance",
        ),
    ),
    (
        "zillow-linuxgateway__etc_keepalived_keepalived.conf",
        Refused(
            "zillow-linuxgateway__etc_keepalived_keepalived.conf:15",
            "vrrp_sync_group is not supported",
        ),
    ),
    ("zznan0o0-AutoInstallShell__lvs_keepalived.conf", Imports),
];

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

/// The outcome of one corpus entry, as `Ok(())` or `Err("NAME:LINE: message")`.
fn outcome(dir: &Path, name: &str) -> Result<(), String> {
    let mut path = dir.join(name);
    if path.is_dir() {
        path = path.join("keepalived.conf");
    }
    let prefix = format!("{}/", dir.display());
    match import_file(&path) {
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
    for (name, _) in EXPECTED {
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
