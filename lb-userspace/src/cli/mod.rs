//! What the `xlb` commands other than `run` show or change on this host, read from the
//! pinned maps and the daemon's state file; `main.rs` parses the command line and calls
//! these. They depend on `dataplane`, never the other way round.
//!
//! - [`status`]: `xlb status`, like `ipvsadm -Ln --stats`.
//! - [`rate`]: `xlb status --rate`, like `ipvsadm -Ln --rate`.
//! - [`conns`]: `xlb conns`, like `ipvsadm -Lnc`.
//! - [`maps`]: `xlb maps`, the pinned maps and the bpftool commands that show them.
//! - [`realserver`]: `xlb realserver setup|teardown`, for DR real servers.
//! - [`teardown`]: `xlb teardown`, which stops forwarding and forgets connections.
//! - [`control`]: the control socket's client (`xlb reload`, `weight`, `drain`, `log`,
//!   and the live part of `xlb status`).
//! - [`bird_config`]: `xlb bird-config`, the BIRD include or bird.conf for BGP VIPs.
//! - [`man`]: the man pages, generated from the command line (`xlb generate-man`).

pub mod bird_config;
pub mod conns;
pub mod control;
pub mod man;
pub mod maps;
pub mod rate;
pub mod realserver;
pub mod status;
pub mod teardown;
