//! The Prometheus endpoint (`global_defs.metrics_listen`): OpenMetrics text on
//! `GET /metrics`, made at scrape time from two sources:
//!
//! - the maps pinned by the daemon, opened and read by the scrape itself (per service and
//!   real server packets, bytes, new flows, weight, ActiveConn / InActConn; drops,
//!   passes, connection-table evictions and slots), as `xlb status` reads them;
//! - a [`Snapshot`] of what only the daemon knows (VRRP instances, health verdicts and
//!   check durations, config reloads, the connection tables' maximum and growths), which the daemon's loop publishes on its status
//!   tick (every 500 ms) through a watch channel: publishing never waits for a scrape and
//!   a scrape never enters the loop.
//!
//! [`collect`] turns both into the exposition text (pure, on fixed inputs in its tests);
//! [`http`] serves it. Label names are node_exporter's ipvs collector's (`local_address`,
//! `local_port`, `remote_address`, `remote_port`, `proto`) and keepalived-exporter's
//! (`iname`, `intf`, `vrid`), so existing dashboards and alerts carry over.

pub mod collect;
pub mod http;

pub use collect::{RealHealth, Reloads, Snapshot};
pub use http::MetricsServer;
