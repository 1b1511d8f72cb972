//! SIGHUP and `xlb reload`: the config loaded again and only the difference applied, its
//! [`ReloadOutcome`] logged and, for `xlb reload`, answered. Runtime edits (`edits`) are
//! dropped: the file is the truth. A new config that does not load is refused and
//! changes nothing (edits included); one the data plane cannot take (a real
//! server off-link, an interface missing, ...) is rolled back to the running one.
//! The data plane follows first, then the VRRP instances: changed ones take their new
//! settings in place (a MASTER stays MASTER; see `instances`), and only those with a
//! new virtual router id, interface, version or family stop first; the reload ends once
//! they have ([`Daemon::finish_reload`], called when their last `InstanceStopped`
//! arrives).

use anyhow::Result;
use tracing::{error, info, warn};

use super::{
    Daemon,
    metrics::{ReloadResult, count_reload},
};
use crate::{config::Config, control::Reply};

/// How a reload ended; `xlb reload` prints it, SIGHUP only logs it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReloadOutcome {
    /// The new config runs (its VRRP instances may still be restarting).
    Applied { summary: String },
    /// The file did not load: nothing changed (the error names file:line:column).
    Refused(String),
    /// The data plane could not take it: the running config was restored.
    RolledBack(String),
}

impl ReloadOutcome {
    /// The control socket's reply.
    pub fn reply(&self) -> Reply {
        match self {
            ReloadOutcome::Applied { summary } => Reply::Done {
                message: summary.clone(),
            },
            ReloadOutcome::Refused(e) => Reply::error(format!(
                "reload refused, the running config and runtime edits stay: {e}"
            )),
            ReloadOutcome::RolledBack(e) => Reply::error(format!(
                "reload failed, the running config and runtime edits were restored: {e}"
            )),
        }
    }
}

impl Daemon {
    pub(super) async fn reload(&mut self) -> ReloadOutcome {
        self.systemd.reloading();
        // A rotated log file is reopened with every reload (and `xlb log reopen`).
        if let Err(e) = crate::logging::reopen() {
            error!("reopening the log file: {e:#}");
        }
        let new = match Config::load(&self.config_path) {
            Ok(c) => {
                for w in c.warnings(&self.config_path) {
                    warn!("{w}");
                }
                c
            }
            Err(e) => {
                error!("reload refused, keeping the running config: {e}");
                count_reload(&mut self.reloads, ReloadResult::Refused);
                return ReloadOutcome::Refused(e.to_string());
            }
        };
        let old = std::mem::replace(&mut self.config, new);
        // The file is the truth: runtime edits go (back only if the reload fails).
        let edits = self.observed.edits.take_all();
        if let Err(e) = self.converge(&old).await {
            error!("reload failed, restoring the running config: {e:#}");
            let failed = std::mem::replace(&mut self.config, old);
            self.observed.edits = edits;
            if let Err(e) = self.converge(&failed).await {
                error!("restoring the running config failed: {e:#}");
            }
            count_reload(&mut self.reloads, ReloadResult::RolledBack);
            return ReloadOutcome::RolledBack(format!("{e:#}"));
        }
        self.config_loaded_at = (std::time::SystemTime::now(), std::time::Instant::now());
        // What changed, as `xlb check --diff` shows it: one log line each.
        for line in crate::diff::diff(&old, &self.config).render().lines() {
            info!("reload: {line}");
        }
        let commands = crate::process::audit::Audit::of(&self.config);
        commands.log(Some(&crate::process::audit::Audit::of(&old)));
        self.notifier.reconfigure(&self.config.global_defs);
        let statics = super::statics::Statics::of(&self.config);
        self.statics.reload(&statics, &self.handle).await;
        self.statics = statics.keeping_links_of(&self.statics);
        let outdated = (self.instances)
            .reconcile(&self.config, &self.handle, &self.notifier)
            .await;
        let summary = summary(&self.config, edits.len(), outdated.len());
        info!(
            path = %self.config_path.display(),
            runtime_edits_dropped = edits.len(),
            "config reloaded: {summary}"
        );
        count_reload(&mut self.reloads, ReloadResult::Ok);
        self.follow_metrics_listen(old.global_defs.metrics_listen)
            .await;
        if outdated.is_empty() {
            self.finish_reload().await;
        } else {
            self.phase.restart();
            self.instances.stop(outdated, &self.events);
        }
        ReloadOutcome::Applied { summary }
    }

    /// Brings the data plane to `self.config`, which replaced `was`.
    async fn converge(&mut self, was: &Config) -> Result<()> {
        if let Some(plane) = self.plane.as_mut() {
            plane.reload_program(was, &self.config)?;
        }
        self.neighbors.locate(&self.handle, &self.config).await?;
        self.apply().await?;
        self.attach_all().await?;
        Ok(())
    }

    /// The rest of a reload, once the instances it stopped have: new and changed
    /// instances start, the checks follow the new config, the data plane follows.
    pub(super) async fn finish_reload(&mut self) {
        if let Err(e) = self
            .instances
            .start(&self.config, &self.handle, &self.notifier)
            .await
        {
            error!("starting VRRP instances after reload: {e:#}");
        }
        if let Err(e) = self.follow_sync() {
            error!("connection sync after reload: {e:#}");
        }
        self.sync_monitor();
        self.sync().await;
    }
}

/// `config reloaded: 2 virtual servers, 5 real servers, 1 VRRP instances; 1 runtime edit
/// dropped`, as the log and `xlb reload` say it.
fn summary(config: &Config, edits_dropped: usize, restarting: usize) -> String {
    let reals: usize = config
        .virtual_server
        .iter()
        .map(|v| v.real_server.len())
        .sum();
    let mut s = format!(
        "{} virtual servers, {reals} real servers, {} VRRP instances",
        config.virtual_server.len(),
        config.vrrp_instance.len()
    );
    if restarting > 0 {
        s.push_str(&format!("; {restarting} VRRP instances restarting"));
    }
    match edits_dropped {
        0 => {}
        1 => s.push_str("; 1 runtime edit dropped (the file is the truth)"),
        n => s.push_str(&format!(
            "; {n} runtime edits dropped (the file is the truth)"
        )),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_what_runs_and_what_was_dropped() {
        let c = Config::parse(
            "[[virtual_server]]\nip = \"198.18.0.100\"\nport = 80\ninterface = \"eth0\"\n\
             [[virtual_server.real_server]]\nip = \"198.18.0.21\"\nport = 80\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            summary(&c, 0, 0),
            "1 virtual servers, 1 real servers, 0 VRRP instances"
        );
        assert_eq!(
            summary(&c, 2, 1),
            "1 virtual servers, 1 real servers, 0 VRRP instances; 1 VRRP instances \
             restarting; 2 runtime edits dropped (the file is the truth)"
        );
        assert!(
            ReloadOutcome::Refused("t.toml:3:7: bad".into())
                .reply()
                .eq(&Reply::error(
                    "reload refused, the running config and runtime edits stay: t.toml:3:7: bad"
                ))
        );
    }
}
