//! Helpers for network-namespace labs (the demo and the integration tests), not for
//! production: attaching an `XDP_PASS` program to a veth peer inside a namespace.
//!
//! A veth hands frames sent with `XDP_TX` / `XDP_REDIRECT` to its peer only when the peer
//! runs an XDP program itself; in a lab the director's veth peer sits on a bridge, so the
//! lab puts this pass-through program there. The link is pinned so it outlives the
//! process that attached it; deleting the namespace (or the pin) detaches it.

use std::{fs::File, os::fd::AsRawFd, path::Path};

use anyhow::{Context, Result, bail};
use aya::{
    EbpfLoader,
    programs::{Xdp, XdpMode, links::FdLink},
};
use lb_common::{PASS_PROGRAM_NAME, map_names};

use crate::dataplane::OBJECT;

/// Attaches the pass-through program to `ifname` in the network namespace `netns` (a name
/// under /run/netns) and pins the link at `pin`.
pub fn attach_xdp_pass(netns: &str, ifname: &str, pin: &Path) -> Result<()> {
    let ns_path = format!("/run/netns/{netns}");
    let ns = File::open(&ns_path).with_context(|| format!("opening {ns_path}"))?;
    let ifname = ifname.to_string();
    let netns = netns.to_string();
    let pin = pin.to_path_buf();
    // setns() changes only the calling thread's namespace: do it on a thread of its own.
    std::thread::spawn(move || -> Result<()> {
        // SAFETY: plain syscall on an fd we own.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns({ns_path}): {}", std::io::Error::last_os_error());
        }
        let mut loader = EbpfLoader::new();
        // The object's maps are not used by this program: keep them tiny.
        for name in map_names::ALL {
            loader.map_max_entries(name, 1);
        }
        let mut ebpf = loader.load(OBJECT)?;
        let prog: &mut Xdp = ebpf
            .program_mut(PASS_PROGRAM_NAME)
            .context("pass program missing from the object")?
            .try_into()?;
        prog.load()?;
        let id = prog
            .attach(&ifname, XdpMode::Driver)
            .with_context(|| format!("attaching XDP pass to {ifname} in {netns}"))?;
        let link = FdLink::try_from(prog.take_link(id)?)?;
        link.pin(&pin)
            .with_context(|| format!("pinning {}", pin.display()))?;
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("attach thread panicked"))?
}
