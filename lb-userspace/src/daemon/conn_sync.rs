//! The daemon's side of connection sync (`crate::connsync`): the task is started with
//! the VRRP instances, and a reload that changes `[sync]` replaces it (a sender that
//! starts afresh sends its whole table again, paced: nothing is lost).

use anyhow::{Context, Result};
use tracing::info;

use super::Daemon;
use crate::connsync::{self, Settings};

impl Daemon {
    /// Starts, replaces or stops the sync task to match the config.
    pub(super) fn follow_sync(&mut self) -> Result<()> {
        let wanted = Settings::of(
            &self.config,
            self.pin_path.clone(),
            connsync::status_path(&self.state_file),
        )
        .map_err(anyhow::Error::msg)?;
        let running = self.conn_sync.as_ref().map(|t| &t.settings);
        if running == wanted.as_ref() {
            return Ok(());
        }
        if self.conn_sync.take().is_some() && wanted.is_none() {
            info!("connection sync stopped");
        }
        if let Some(s) = wanted {
            let task = connsync::start(s, self.instances.board().clone())
                .context("starting connection sync")?;
            self.conn_sync = Some(task);
        }
        Ok(())
    }
}
