//! SIGHUP: the config loaded again and only the difference applied. A new config that
//! does not load is refused and changes nothing; one the data plane cannot take (a real
//! server off-link, an interface missing, ...) is rolled back to the running one.
//! Instances that must restart stop first; the reload ends once they have
//! ([`Daemon::finish_reload`], called when their last `InstanceStopped` arrives).

use anyhow::Result;
use tracing::{error, info};

use super::Daemon;
use crate::config::Config;

impl Daemon {
    pub(super) async fn reload(&mut self) {
        self.systemd.reloading();
        // A rotated log file is reopened with every reload (and `xlb log reopen`).
        if let Err(e) = crate::logging::reopen() {
            error!("reopening the log file: {e:#}");
        }
        let new = match Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                error!("reload refused, keeping the running config: {e}");
                return;
            }
        };
        let old = std::mem::replace(&mut self.config, new);
        if let Err(e) = self.converge(&old).await {
            error!("reload failed, restoring the running config: {e:#}");
            let failed = std::mem::replace(&mut self.config, old);
            if let Err(e) = self.converge(&failed).await {
                error!("restoring the running config failed: {e:#}");
            }
            return;
        }
        info!(path = %self.config_path.display(), "config reloaded");
        let commands = crate::process::audit::Audit::of(&self.config);
        commands.log(Some(&crate::process::audit::Audit::of(&old)));
        self.notifier.reconfigure(&self.config.global_defs);
        let outdated = self.instances.outdated_by(&self.config);
        if outdated.is_empty() {
            self.finish_reload().await;
        } else {
            self.phase.restart();
            self.instances.stop(outdated, &self.events);
        }
    }

    /// Brings the data plane to `self.config`, which replaced `was`.
    async fn converge(&mut self, was: &Config) -> Result<()> {
        if let Some(plane) = self.plane.as_mut() {
            plane.reload_for_timeouts(&was.global_defs, &self.config.global_defs)?;
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
        self.sync_monitor();
        self.sync().await;
    }
}
