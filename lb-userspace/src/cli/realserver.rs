//! `xlb realserver setup|teardown --vip ADDR...`: prepares a Linux host as an LVS-DR
//! real server, as the LVS-DR documentation describes.
//!
//! In DR mode the director only rewrites the destination MAC, so frames reach the real
//! server still addressed to the VIP. The real server must therefore
//! 1. accept the VIP as a local address: [`setup`] adds it on `lo` (IPv4 /32,
//!    IPv6 /128), so it is local without being on the wire;
//! 2. never answer ARP for it, or it would steal the VIP from the director:
//!    `net.ipv4.conf.{all,lo}.arp_ignore = 1` (answer only for addresses of the
//!    interface the request came in on) and `arp_announce = 2` (never use the VIP as
//!    the source of its own ARP requests). IPv6 needs nothing: Linux only answers
//!    neighbour solicitations for addresses of the receiving interface.
//!
//! [`setup`] records the sysctl values it found in a state file
//! (`/run/xlb/realserver.json` by default) before changing them, and keeps the values
//! of the *first* setup when run again; [`teardown`] removes the VIPs and, once no IPv4
//! VIP it set up remains, writes the recorded values back and deletes the state file.
//! Without a state file, teardown removes the VIPs and leaves the sysctls alone.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default state file: under `/run`, so a reboot (which also forgets `lo`'s VIPs and
/// the sysctls) forgets it too.
pub const DEFAULT_STATE_FILE: &str = "/run/xlb/realserver.json";

/// The sysctls a DR real server with IPv4 VIPs needs, with their values.
pub const ARP_SYSCTLS: [(&str, &str); 4] = [
    ("net.ipv4.conf.all.arp_ignore", "1"),
    ("net.ipv4.conf.all.arp_announce", "2"),
    ("net.ipv4.conf.lo.arp_ignore", "1"),
    ("net.ipv4.conf.lo.arp_announce", "2"),
];

/// Where setup and teardown keep their state and find the sysctls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerOptions {
    /// Records the original sysctl values and the VIPs set up.
    /// Default [`DEFAULT_STATE_FILE`].
    pub state_file: PathBuf,
    /// Root of the sysctl tree. Default `/proc/sys` (tests use a directory of files).
    pub proc_sys_root: PathBuf,
}

impl Default for RealServerOptions {
    fn default() -> Self {
        Self {
            state_file: PathBuf::from(DEFAULT_STATE_FILE),
            proc_sys_root: PathBuf::from("/proc/sys"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RealServerError {
    #[error("no VIP given (use --vip ADDR)")]
    NoVips,
    #[error("no VIP given and none recorded in {0}: nothing to tear down")]
    NothingToTearDown(PathBuf),
    #[error("{0} cannot be a VIP (unspecified, loopback or multicast)")]
    BadVip(IpAddr),
    #[error("cannot read sysctl {name} ({path}): {source}")]
    ReadSysctl {
        name: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot write sysctl {name} ({path}): {source}")]
    WriteSysctl {
        name: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("state file {path}: {source}")]
    StateIo { path: PathBuf, source: io::Error },
    #[error("state file {path} is not valid (delete it to start over): {source}")]
    StateFormat {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot open a netlink socket: {0}")]
    Connect(io::Error),
    #[error("no loopback interface `lo`")]
    NoLoopback,
    #[error("netlink: cannot {op}: {source} (xlb realserver needs root)")]
    Netlink {
        op: String,
        source: rtnetlink::Error,
    },
}

/// One thing setup or teardown did (or found already done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    VipAdded(IpAddr),
    VipAlreadyPresent(IpAddr),
    VipRemoved(IpAddr),
    VipNotPresent(IpAddr),
    SysctlSet {
        name: String,
        old: String,
        new: String,
    },
    SysctlRestored {
        name: String,
        value: String,
    },
    /// Teardown kept the ARP sysctls because these IPv4 VIPs are still set up.
    SysctlsKept {
        remaining: Vec<IpAddr>,
    },
    /// Teardown found no state file, so it does not know the original values.
    NoStateFile(PathBuf),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VipAdded(ip) => write!(f, "added {ip} on lo"),
            Self::VipAlreadyPresent(ip) => write!(f, "{ip} already on lo"),
            Self::VipRemoved(ip) => write!(f, "removed {ip} from lo"),
            Self::VipNotPresent(ip) => write!(f, "{ip} was not on lo"),
            Self::SysctlSet { name, old, new } if old == new => {
                write!(f, "{name} = {new} (already)")
            }
            Self::SysctlSet { name, old, new } => write!(f, "{name} = {new} (was {old})"),
            Self::SysctlRestored { name, value } => write!(f, "{name} = {value} (restored)"),
            Self::SysctlsKept { remaining } => {
                let list: Vec<String> = remaining.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "ARP sysctls kept: IPv4 VIPs still set up: {}",
                    list.join(", ")
                )
            }
            Self::NoStateFile(path) => write!(
                f,
                "no state file {}: the original ARP sysctl values are unknown, left as they are",
                path.display()
            ),
        }
    }
}

/// What setup or teardown did, in order; `Display` prints one action per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report(pub Vec<Action>);

impl Report {
    /// Records an action done, and logs it.
    fn push(&mut self, action: Action) {
        match &action {
            Action::NoStateFile(_) => tracing::warn!("{action}"),
            _ => tracing::info!("{action}"),
        }
        self.0.push(action);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.0 {
            writeln!(f, "{a}")?;
        }
        Ok(())
    }
}

/// `xlb realserver setup`: [`setup_report`], for the command line (each action is
/// logged at info level as it happens).
pub async fn setup(vips: &[IpAddr], opts: &RealServerOptions) -> anyhow::Result<()> {
    setup_report(vips, opts).await?;
    Ok(())
}

/// `xlb realserver teardown`: [`teardown_report`], for the command line.
pub async fn teardown(vips: &[IpAddr], opts: &RealServerOptions) -> anyhow::Result<()> {
    teardown_report(vips, opts).await?;
    Ok(())
}

/// Adds `vips` on `lo` and, for IPv4 VIPs, sets the ARP sysctls (recording the values
/// found the first time). Idempotent.
pub async fn setup_report(
    vips: &[IpAddr],
    opts: &RealServerOptions,
) -> Result<Report, RealServerError> {
    check_vips(vips)?;
    let mut lo = NetlinkLoopback::open().await?;
    setup_with(vips, opts, &mut lo).await
}

/// Removes `vips` (or, if empty, every VIP recorded by setup) from `lo`, and restores
/// the recorded sysctl values once no recorded IPv4 VIP remains.
pub async fn teardown_report(
    vips: &[IpAddr],
    opts: &RealServerOptions,
) -> Result<Report, RealServerError> {
    let mut lo = NetlinkLoopback::open().await?;
    teardown_with(vips, opts, &mut lo).await
}

fn check_vips(vips: &[IpAddr]) -> Result<(), RealServerError> {
    if vips.is_empty() {
        return Err(RealServerError::NoVips);
    }
    match vips
        .iter()
        .find(|ip| ip.is_unspecified() || ip.is_loopback() || ip.is_multicast())
    {
        Some(&bad) => Err(RealServerError::BadVip(bad)),
        None => Ok(()),
    }
}

async fn setup_with(
    vips: &[IpAddr],
    opts: &RealServerOptions,
    lo: &mut impl Loopback,
) -> Result<Report, RealServerError> {
    check_vips(vips)?;
    let mut report = Report::default();
    let mut state = State::load(&opts.state_file)?.unwrap_or_default();

    // Sysctls first, so the VIP never appears on a host that still answers ARP for it.
    if vips.iter().any(IpAddr::is_ipv4) {
        let sysctls = Sysctls(&opts.proc_sys_root);
        let mut current = Vec::new();
        for (name, _) in ARP_SYSCTLS {
            let value = sysctls.read(name)?;
            state
                .saved_sysctls
                .entry(name.to_owned())
                .or_insert_with(|| value.clone());
            current.push(value);
        }
        // Record before changing anything: a teardown after a crash still restores.
        state.save(&opts.state_file)?;
        for ((name, new), old) in ARP_SYSCTLS.into_iter().zip(current) {
            if old != new {
                sysctls.write(name, new)?;
            }
            report.push(Action::SysctlSet {
                name: name.to_owned(),
                old,
                new: new.to_owned(),
            });
        }
    }

    lo.ensure_up().await?;
    for &vip in vips {
        if lo.has(vip).await? {
            report.push(Action::VipAlreadyPresent(vip));
        } else {
            lo.add(vip).await?;
            report.push(Action::VipAdded(vip));
        }
        state.vips.insert(vip);
    }
    state.save(&opts.state_file)?;
    Ok(report)
}

async fn teardown_with(
    vips: &[IpAddr],
    opts: &RealServerOptions,
    lo: &mut impl Loopback,
) -> Result<Report, RealServerError> {
    let mut report = Report::default();
    let state = State::load(&opts.state_file)?;
    let vips: Vec<IpAddr> = if !vips.is_empty() {
        vips.to_vec()
    } else {
        match &state {
            Some(s) if !s.vips.is_empty() => s.vips.iter().copied().collect(),
            _ => return Err(RealServerError::NothingToTearDown(opts.state_file.clone())),
        }
    };

    // VIPs first: with the VIP gone, restoring ARP behaviour is harmless.
    for &vip in &vips {
        if lo.remove(vip).await? {
            report.push(Action::VipRemoved(vip));
        } else {
            report.push(Action::VipNotPresent(vip));
        }
    }

    let Some(mut state) = state else {
        report.push(Action::NoStateFile(opts.state_file.clone()));
        return Ok(report);
    };
    for vip in &vips {
        state.vips.remove(vip);
    }
    let remaining: Vec<IpAddr> = state.vips.iter().copied().filter(IpAddr::is_ipv4).collect();
    if !remaining.is_empty() {
        if !state.saved_sysctls.is_empty() {
            report.push(Action::SysctlsKept { remaining });
        }
        state.save(&opts.state_file)?;
        return Ok(report);
    }
    let sysctls = Sysctls(&opts.proc_sys_root);
    for (name, value) in &state.saved_sysctls {
        sysctls.write(name, value)?;
        report.push(Action::SysctlRestored {
            name: name.clone(),
            value: value.clone(),
        });
    }
    state.saved_sysctls.clear();
    if state.vips.is_empty() {
        std::fs::remove_file(&opts.state_file).map_err(|source| RealServerError::StateIo {
            path: opts.state_file.clone(),
            source,
        })?;
    } else {
        // Only IPv6 VIPs remain: they need no sysctl.
        state.save(&opts.state_file)?;
    }
    Ok(report)
}

/// The state file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// sysctl name -> value found by the first setup that changed it.
    saved_sysctls: BTreeMap<String, String>,
    /// VIPs set up and not yet torn down.
    vips: BTreeSet<IpAddr>,
}

impl State {
    fn load(path: &Path) -> Result<Option<State>, RealServerError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|source| {
                RealServerError::StateFormat {
                    path: path.to_owned(),
                    source,
                }
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(RealServerError::StateIo {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes atomically (temporary file, then rename), creating the directory.
    fn save(&self, path: &Path) -> Result<(), RealServerError> {
        let io_err = |source| RealServerError::StateIo {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut text = serde_json::to_string_pretty(self).expect("State serializes");
        text.push('\n');
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        std::fs::write(&tmp, text).map_err(io_err)?;
        std::fs::rename(&tmp, path).map_err(io_err)
    }
}

/// sysctls as files under a root (`/proc/sys`).
struct Sysctls<'a>(&'a Path);

impl Sysctls<'_> {
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name.replace('.', "/"))
    }

    fn read(&self, name: &str) -> Result<String, RealServerError> {
        let path = self.path(name);
        std::fs::read_to_string(&path)
            .map(|v| v.trim().to_owned())
            .map_err(|source| RealServerError::ReadSysctl {
                name: name.to_owned(),
                path,
                source,
            })
    }

    fn write(&self, name: &str, value: &str) -> Result<(), RealServerError> {
        let path = self.path(name);
        std::fs::write(&path, format!("{value}\n")).map_err(|source| RealServerError::WriteSysctl {
            name: name.to_owned(),
            path,
            source,
        })
    }
}

/// Addresses on `lo`; netlink in production, a set in the unit tests.
trait Loopback {
    async fn ensure_up(&mut self) -> Result<(), RealServerError>;
    async fn has(&mut self, ip: IpAddr) -> Result<bool, RealServerError>;
    async fn add(&mut self, ip: IpAddr) -> Result<(), RealServerError>;
    /// Returns false when the address was not there.
    async fn remove(&mut self, ip: IpAddr) -> Result<bool, RealServerError>;
}

struct NetlinkLoopback {
    handle: rtnetlink::Handle,
    index: u32,
    up: bool,
}

fn netlink_err(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> RealServerError {
    let op = op.into();
    move |source| RealServerError::Netlink { op, source }
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.code.map(|c| c.get()) == Some(-errno))
}

impl NetlinkLoopback {
    async fn open() -> Result<Self, RealServerError> {
        use futures::TryStreamExt;
        use rtnetlink::packet_route::link::LinkFlags;

        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(RealServerError::Connect)?;
        tokio::spawn(connection);
        let link = handle
            .link()
            .get()
            .match_name("lo".to_owned())
            .execute()
            .try_next()
            .await
            .map_err(|e| {
                if is_errno(&e, libc::ENODEV) {
                    RealServerError::NoLoopback
                } else {
                    netlink_err("look up lo")(e)
                }
            })?
            .ok_or(RealServerError::NoLoopback)?;
        Ok(Self {
            handle,
            index: link.header.index,
            up: link.header.flags.contains(LinkFlags::Up),
        })
    }

    async fn find(
        &self,
        ip: IpAddr,
    ) -> Result<Option<rtnetlink::packet_route::address::AddressMessage>, RealServerError> {
        use futures::TryStreamExt;
        self.handle
            .address()
            .get()
            .set_link_index_filter(self.index)
            .set_address_filter(ip)
            .execute()
            .try_next()
            .await
            .map_err(netlink_err(format!("list the addresses of lo for {ip}")))
    }
}

impl Loopback for NetlinkLoopback {
    async fn ensure_up(&mut self) -> Result<(), RealServerError> {
        if !self.up {
            let msg = rtnetlink::LinkUnspec::new_with_index(self.index)
                .up()
                .build();
            self.handle
                .link()
                .set(msg)
                .execute()
                .await
                .map_err(netlink_err("set lo up"))?;
            self.up = true;
        }
        Ok(())
    }

    async fn has(&mut self, ip: IpAddr) -> Result<bool, RealServerError> {
        Ok(self.find(ip).await?.is_some())
    }

    async fn add(&mut self, ip: IpAddr) -> Result<(), RealServerError> {
        let prefix_len = if ip.is_ipv4() { 32 } else { 128 };
        match self
            .handle
            .address()
            .add(self.index, ip, prefix_len)
            .execute()
            .await
        {
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            r => r.map_err(netlink_err(format!("add {ip}/{prefix_len} on lo"))),
        }
    }

    async fn remove(&mut self, ip: IpAddr) -> Result<bool, RealServerError> {
        let Some(msg) = self.find(ip).await? else {
            return Ok(false);
        };
        match self.handle.address().del(msg).execute().await {
            Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) => Ok(false),
            r => r
                .map(|()| true)
                .map_err(netlink_err(format!("remove {ip} from lo"))),
        }
    }
}

#[cfg(test)]
mod tests {
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
}
