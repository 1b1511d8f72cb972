//! What the `xlb` commands other than `run` show or change on this host, read from the
//! pinned maps and the daemon's state file; `main.rs` parses the command line and calls
//! these. They depend on `dataplane`, never the other way round.
//!
//! - [`status`]: `xlb status`, like `ipvsadm -Ln --stats`.
//! - [`conns`]: `xlb conns`, like `ipvsadm -Lnc`.
//! - [`realserver`]: `xlb realserver setup|teardown`, for DR real servers.
//! - [`teardown`]: `xlb teardown`, which stops forwarding and forgets connections.
//! - [`man`]: the man pages, generated from the command line (`xlb generate-man`).

pub mod conns;
pub mod man;
pub mod realserver;
pub mod status;
pub mod teardown;
