//! xlb's controller as a library: `main.rs` is a thin command-line layer over it, and
//! the privileged integration tests drive the same pieces.
//!
//! - `config`: the TOML file, validated with file:line:column errors.
//! - `import`: `xlb import-keepalived`, keepalived.conf to that TOML file.
//! - `dataplane`: load / adopt the pinned XDP program and maps, attach, tear down.
//! - `sched` + `arena`: scheduling tables (rr, wrr, sh, mh) and where they live in the map.
//! - `sync`: makes the maps match the desired state, changing only the difference.
//! - `neighbor`: routes and MACs of real servers (rtnetlink).
//! - `controller`: the `xlb run` daemon loop.
//! - `status`: `xlb status`, read from the pinned maps.
//! - `realserver`: `xlb realserver setup|teardown` for DR real servers.

pub mod alert;
pub mod arena;
pub mod check;
pub mod config;
pub mod conns;
pub mod controller;
pub mod dataplane;
pub mod import;
pub mod lab;
pub mod mmap;
pub mod neighbor;
pub mod notification;
pub mod notify_fifo;
pub mod realserver;
pub mod sched;
pub mod status;
pub mod sync;
pub mod vrrp;
