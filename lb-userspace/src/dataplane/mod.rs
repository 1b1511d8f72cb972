//! The XDP data plane as the controller sees it: load (or adopt) the pinned maps, load the
//! program, attach it through pinned links, and tear it all down on request.
//!
//! Everything lives under one pin directory (default `/sys/fs/bpf/xlb`):
//! - one file per map (`lb_common::map_names`), so `bpftool map dump pinned DIR/xlb_services`
//!   works and a restarted controller finds the same maps, connection table included;
//! - one `link_<interface>` per attached interface: the kernel keeps the program attached
//!   while the pin exists, so forwarding goes on when the controller stops or crashes, and
//!   a restarted controller swaps its freshly loaded program into the same link
//!   atomically (`bpf_link_update`), without a moment with no program.
//!
//! The modules, from the program to the tables it reads:
//! - `loader`: load the program over created or adopted maps, attach it ([`DataPlane`]);
//! - `pins`: the pin directory: bpffs check, layout version, `xlb teardown`;
//! - `maps`: typed handles on every map ([`Maps`]); `mmap`: maps read and written as memory;
//! - `view`, `plan`, `step`, `sync`: what the maps hold, the plan that changes it, made of
//!   steps, and their writer;
//! - `sizing`: how big the slot and table maps are made, and when they grow; `grow`:
//!   growing one under traffic;
//! - `sched`: the scheduling tables; `arena`: where in `xlb_table` they live;
//!   `real_conns`: the connection counts the counting schedulers read, and their recount;
//! - `conn_table`: the connection tables as userspace reads them;
//! - `watch`: the watchdog's rules (what a look at an attached interface means).

pub mod arena;
pub mod conn_grow;
pub mod conn_table;
mod grow;
pub mod loader;
pub mod maps;
pub mod mmap;
pub mod pins;
pub mod plan;
pub mod real_conns;
pub mod sched;
pub mod sizing;
pub mod step;
pub mod sync;
pub mod view;
pub mod watch;

use std::path::PathBuf;

use aya::programs::links::LinkError;
use lb_common::ABI_VERSION;
use thiserror::Error;

pub use loader::{AttachMode, ConnTableOptions, DataPlane, OBJECT};
pub use maps::Maps;
pub use pins::{DEFAULT_PIN_PATH, link_pin_path, teardown};

#[derive(Debug, Error)]
pub enum DataPlaneError {
    #[error(
        "{0} is not on a BPF filesystem: mount one (`mount -t bpf bpf /sys/fs/bpf`) or pass \
         --pin-path on a bpffs"
    )]
    NotBpffs(PathBuf),
    #[error(
        "pin directory {path} {why}: another user could replace the pinned maps and links; \
         fix it with `chown root:root {path} && chmod 0700 {path}`",
        path = .path.display(),
        why = match .why {
            pins::Unsafe::NotRootOwned { uid } => format!("is owned by uid {uid}, not root"),
            pins::Unsafe::WritableByOthers { mode } => {
                format!("has mode {mode:04o} (group or world writable)")
            }
        }
    )]
    UnsafePinDir { path: PathBuf, why: pins::Unsafe },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the maps pinned under {dir} have layout version {found}, this xlb uses {ABI_VERSION}: \
         remove them with `xlb teardown --pin-path {dir}` (this drops the connection table)"
    )]
    AbiMismatch { dir: PathBuf, found: u32 },
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("XDP program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("map {0} is missing")]
    MissingMap(&'static str),
    #[error("map {0} is not an array")]
    NotAnArray(&'static str),
    #[error("mapping {name}: {source}")]
    Mmap {
        name: &'static str,
        source: std::io::Error,
    },
    #[error("pinned link {path}: {source}")]
    Link { path: PathBuf, source: LinkError },
    #[error("pinning {path}: {source}")]
    Pin {
        path: PathBuf,
        source: aya::pin::PinError,
    },
    #[error(
        "attaching XDP to {ifname} in native (driver) mode failed: {source}. The driver may \
         not support XDP; pass --xdp-generic to use the slower generic mode"
    )]
    NativeAttach {
        ifname: String,
        source: aya::programs::ProgramError,
    },
}
