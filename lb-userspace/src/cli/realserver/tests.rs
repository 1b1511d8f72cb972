//! setup and teardown against a fake `lo` and a sysctl tree in a temporary directory.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A directory removed on drop, standing in for /proc/sys and /run/xlb.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xlb-realserver-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fake `lo`.
#[derive(Default)]
struct FakeLo {
    addrs: BTreeSet<IpAddr>,
    up: bool,
}

impl Loopback for FakeLo {
    async fn ensure_up(&mut self) -> Result<(), RealServerError> {
        self.up = true;
        Ok(())
    }
    async fn has(&mut self, ip: IpAddr) -> Result<bool, RealServerError> {
        Ok(self.addrs.contains(&ip))
    }
    async fn add(&mut self, ip: IpAddr) -> Result<(), RealServerError> {
        self.addrs.insert(ip);
        Ok(())
    }
    async fn remove(&mut self, ip: IpAddr) -> Result<bool, RealServerError> {
        Ok(self.addrs.remove(&ip))
    }
}

/// A host: a sysctl tree with the stock values (0) and a state file path.
struct Host {
    _dir: TempDir,
    opts: RealServerOptions,
    lo: FakeLo,
}

impl Host {
    fn new() -> Self {
        let dir = TempDir::new();
        let opts = RealServerOptions {
            state_file: dir.0.join("run/xlb/realserver.json"),
            proc_sys_root: dir.0.join("proc/sys"),
        };
        for iface in ["all", "lo", "eth0"] {
            let d = opts.proc_sys_root.join("net/ipv4/conf").join(iface);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("arp_ignore"), "0\n").unwrap();
            std::fs::write(d.join("arp_announce"), "0\n").unwrap();
        }
        Self {
            _dir: dir,
            opts,
            lo: FakeLo::default(),
        }
    }

    fn sysctl(&self, name: &str) -> String {
        Sysctls(&self.opts.proc_sys_root).read(name).unwrap()
    }

    fn set_sysctl(&self, name: &str, value: &str) {
        Sysctls(&self.opts.proc_sys_root)
            .write(name, value)
            .unwrap()
    }

    fn arp(&self) -> Vec<String> {
        ARP_SYSCTLS.iter().map(|(n, _)| self.sysctl(n)).collect()
    }

    fn state(&self) -> Option<State> {
        State::load(&self.opts.state_file).unwrap()
    }

    async fn setup(&mut self, vips: &[IpAddr]) -> Report {
        setup_with(vips, &self.opts, &mut self.lo).await.unwrap()
    }

    async fn teardown(&mut self, vips: &[IpAddr]) -> Report {
        teardown_with(vips, &self.opts, &mut self.lo).await.unwrap()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn setup_sets_arp_sysctls_and_records_the_old_values() {
    let mut host = Host::new();
    host.set_sysctl("net.ipv4.conf.all.arp_announce", "1");
    let vip = ip("198.18.0.100");
    let report = host.setup(&[vip]).await;

    assert_eq!(host.arp(), ["1", "2", "1", "2"]);
    assert_eq!(
        host.sysctl("net.ipv4.conf.eth0.arp_ignore"),
        "0",
        "untouched"
    );
    assert!(host.lo.addrs.contains(&vip) && host.lo.up);
    let state = host.state().unwrap();
    assert_eq!(
        state.saved_sysctls.values().collect::<Vec<_>>(),
        ["1", "0", "0", "0"],
        "{:?}",
        state.saved_sysctls
    );
    assert_eq!(state.saved_sysctls["net.ipv4.conf.all.arp_announce"], "1");
    assert_eq!(state.vips, BTreeSet::from([vip]));
    assert!(report.0.contains(&Action::VipAdded(vip)));
    assert!(report.0.contains(&Action::SysctlSet {
        name: "net.ipv4.conf.all.arp_announce".into(),
        old: "1".into(),
        new: "2".into(),
    }));
    assert!(
        report
            .to_string()
            .contains("net.ipv4.conf.all.arp_ignore = 1 (was 0)")
    );
}

#[tokio::test]
async fn setup_twice_keeps_the_original_values() {
    let mut host = Host::new();
    let vip = ip("198.18.0.100");
    host.setup(&[vip]).await;
    let report = host.setup(&[vip, ip("198.18.0.101")]).await;
    assert!(report.0.contains(&Action::VipAlreadyPresent(vip)));
    let state = host.state().unwrap();
    assert!(state.saved_sysctls.values().all(|v| v == "0"), "{state:?}");
    assert_eq!(state.vips.len(), 2);

    host.teardown(&[]).await;
    assert_eq!(host.arp(), ["0", "0", "0", "0"]);
    assert!(host.lo.addrs.is_empty());
    assert!(host.state().is_none(), "state file removed");
}

#[tokio::test]
async fn teardown_restores_only_after_the_last_ipv4_vip() {
    let mut host = Host::new();
    let (a, b) = (ip("198.18.0.100"), ip("198.18.0.101"));
    host.setup(&[a, b]).await;

    let report = host.teardown(&[a]).await;
    assert_eq!(
        report.0,
        [
            Action::VipRemoved(a),
            Action::SysctlsKept { remaining: vec![b] }
        ]
    );
    assert_eq!(host.arp(), ["1", "2", "1", "2"]);

    let report = host.teardown(&[b]).await;
    assert_eq!(report.0[0], Action::VipRemoved(b));
    assert_eq!(report.0.len(), 5, "{report}");
    assert_eq!(host.arp(), ["0", "0", "0", "0"]);
    assert!(host.state().is_none());
}

#[tokio::test]
async fn teardown_without_state_leaves_sysctls_alone() {
    let mut host = Host::new();
    let vip = ip("198.18.0.100");
    host.setup(&[vip]).await;
    std::fs::remove_file(&host.opts.state_file).unwrap();

    let report = host.teardown(&[vip, ip("198.18.0.9")]).await;
    assert_eq!(
        report.0,
        [
            Action::VipRemoved(vip),
            Action::VipNotPresent(ip("198.18.0.9")),
            Action::NoStateFile(host.opts.state_file.clone()),
        ]
    );
    assert!(report.to_string().contains("left as they are"));
    assert_eq!(host.arp(), ["1", "2", "1", "2"]);
    assert!(host.lo.addrs.is_empty());
}

#[tokio::test]
async fn ipv6_vips_need_no_sysctl() {
    let mut host = Host::new();
    // No IPv4 sysctl tree at all: setup must not look for it.
    std::fs::remove_dir_all(host.opts.proc_sys_root.join("net/ipv4")).unwrap();
    let vip = ip("2001:db8::100");
    let report = host.setup(&[vip]).await;
    assert_eq!(report.0, [Action::VipAdded(vip)]);
    assert!(host.state().unwrap().saved_sysctls.is_empty());
    let report = host.teardown(&[vip]).await;
    assert_eq!(report.0, [Action::VipRemoved(vip)]);
    assert!(host.state().is_none());
}

#[tokio::test]
async fn errors_are_named() {
    let mut host = Host::new();
    let err = setup_with(&[], &host.opts, &mut host.lo).await.unwrap_err();
    assert!(matches!(err, RealServerError::NoVips));
    let err = setup_with(&[ip("127.0.0.2")], &host.opts, &mut host.lo)
        .await
        .unwrap_err();
    assert!(matches!(err, RealServerError::BadVip(_)), "{err}");
    let err = teardown_with(&[], &host.opts, &mut host.lo)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RealServerError::NothingToTearDown(_)),
        "{err}"
    );

    std::fs::remove_file(
        host.opts
            .proc_sys_root
            .join("net/ipv4/conf/lo/arp_announce"),
    )
    .unwrap();
    let err = setup_with(&[ip("198.18.0.100")], &host.opts, &mut host.lo)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read sysctl net.ipv4.conf.lo.arp_announce ("),
        "{err}"
    );
    assert!(
        host.lo.addrs.is_empty(),
        "no VIP added when the sysctls failed"
    );

    std::fs::create_dir_all(host.opts.state_file.parent().unwrap()).unwrap();
    std::fs::write(&host.opts.state_file, "{").unwrap();
    let err = teardown_with(&[], &host.opts, &mut host.lo)
        .await
        .unwrap_err();
    assert!(matches!(err, RealServerError::StateFormat { .. }), "{err}");
}
