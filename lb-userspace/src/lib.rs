//! xlb's controller as a library: `main.rs` is a thin command-line layer over it, and
//! the privileged integration tests drive the same pieces. The modules, from the outside in:
//!
//! - `config`: the TOML file, validated with file:line:column errors.
//! - `import`: `xlb import-keepalived`, keepalived.conf to that TOML file.
//! - `connsync`: connection sync between directors (the lvs_sync_daemon role).
//! - `daemon`: `xlb run`, one event loop that owns the desired state and drives the rest.
//! - `vrrp`: VRRP instances (codec, state machine, sockets, VIPs, trackers).
//! - `health`: health checks of real servers, with keepalived's checkers.
//! - `notify`: notifications of transitions and verdicts (FIFOs, mail).
//! - `process`: every external command (checks, trackers, notify commands, FIFO readers).
//! - `dataplane`: the XDP program and its maps: load / adopt, attach, scheduling tables,
//!   map sync, connection tables.
//! - `netlink`: links, routes and neighbours through rtnetlink.
//! - `net`: socket helpers and the SMTP client shared by health checks and mail alerts.
//! - `metrics`: the Prometheus endpoint (`global_defs.metrics_listen`).
//! - `logging`: where the log goes, its verbosity changed at run time.
//! - `control`: the control socket's protocol (requests, replies), which `daemon` serves
//!   and `cli` speaks.
//! - `cli`: the views and host changes behind `xlb status`, `xlb realserver`, ...

pub mod bgp;
pub mod cli;
pub mod config;
pub mod connsync;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod diff;
pub mod health;
pub mod import;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod netlink;
pub mod notify;
pub mod process;
pub mod vrrp;
