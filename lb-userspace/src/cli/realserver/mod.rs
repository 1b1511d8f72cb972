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
//!
//! The modules: `sysctl` (the ARP sysctls as files), `state` (the state file),
//! `loopback` (addresses on `lo`), `report` (what was done).

mod loopback;
mod report;
mod state;
mod sysctl;
#[cfg(test)]
mod tests;

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use loopback::{Loopback, NetlinkLoopback};
use report::{Action, Report};
use state::State;
use sysctl::Sysctls;

/// Default state file: under `/run`, so a reboot (which also forgets `lo`'s VIPs and
/// the sysctls) forgets it too.
const DEFAULT_STATE_FILE: &str = "/run/xlb/realserver.json";

/// The sysctls a DR real server with IPv4 VIPs needs, with their values.
const ARP_SYSCTLS: [(&str, &str); 4] = [
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
async fn setup_report(
    vips: &[IpAddr],
    opts: &RealServerOptions,
) -> Result<Report, RealServerError> {
    check_vips(vips)?;
    let mut lo = NetlinkLoopback::open().await?;
    setup_with(vips, opts, &mut lo).await
}

/// Removes `vips` (or, if empty, every VIP recorded by setup) from `lo`, and restores
/// the recorded sysctl values once no recorded IPv4 VIP remains.
async fn teardown_report(
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
