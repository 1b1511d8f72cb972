//! Scenario 7: the control plane.
//!
//! - Loading the data plane (pinned maps + program) and `MapSync::apply` of many virtual
//!   services on it (the first sync, a no-op sync, a one-weight change).
//! - The `mh` table: building a 100-server weighted Maglev table, and applying a change
//!   of such a service (rebuild + write into the map).
//! - Health checks: `HealthMonitor` running `tcp_check`s with `delay_loop` 1 against
//!   local listeners in a namespace of our own; checks per second and CPU used.
//!
//! The modules: `sync` (map sync and the mh table), `health` (health checks).

mod health;
mod sync;

use anyhow::Result;

use crate::{
    Opts,
    report::{Report, Section},
};

pub fn bench(opts: &Opts, report: &mut Report) -> Result<()> {
    let mut sec = Section::new(
        &format!(
            "Control plane (userspace built {})",
            if cfg!(debug_assertions) {
                "debug: slower than a release xlb"
            } else {
                "release"
            }
        ),
        &["operation", "ms / value"],
    );
    if let Err(e) = sync::sync_bench(opts, report, &mut sec) {
        report.fail(format!("control plane sync: {e:#}"));
    }
    if let Err(e) = health::health_bench(opts, report, &mut sec) {
        report.fail(format!("health checks: {e:#}"));
    }
    report.sections.push(sec);
    Ok(())
}
