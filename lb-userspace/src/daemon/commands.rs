//! What each control-socket request does, on the daemon's loop (one [`Event::Control`] at a
//! time, between the other events): reload, the daemon's own status, runtime edits of
//! real servers (kept in `Observations::edits`, see `edits`), and the log's verbosity.
//! Every edit and log change is logged with who asked (uid, pid).
//!
//! [`Event::Control`]: super::event::Event::Control

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use tracing::{debug, info};

use super::{
    Daemon,
    control::Call,
    edits::{EditKind, Stamp},
    reload::ReloadOutcome,
};
use crate::control::{DaemonInfo, Peer, RealRef, Reply, Request, ServiceRef};

/// Unix seconds of `t`.
pub(super) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Daemon {
    /// One request from the control socket; the reply goes back through `reply`.
    pub(super) async fn on_control(&mut self, call: Call, reply: oneshot::Sender<Reply>) {
        let Call { peer, request } = call;
        info!(%peer, request = request.name(), "control request");
        let answer = match request {
            Request::Reload => {
                // A reload already restarting instances: this one runs after it, and is
                // answered then.
                if self.phase.defer_reload() {
                    self.reload_waiters.push(reply);
                    return;
                }
                let outcome = self.reload().await;
                self.answer_reload(&outcome);
                outcome.reply()
            }
            Request::Plan => self.plan(),
            Request::Status => {
                // The VRRP part of the status file as of now, not the last publish tick.
                self.write_state();
                Reply::Status(Box::new(self.info()))
            }
            Request::Weight {
                service,
                real,
                weight,
            } => {
                self.edit(peer, service, real, EditKind::Weight(weight))
                    .await
            }
            Request::Drain { service, real } => {
                self.edit(peer, service, real, EditKind::Drain).await
            }
            Request::Enable { service, real } => {
                self.edit(peer, service, real, EditKind::Enable).await
            }
            Request::Disable { service, real } => {
                self.edit(peer, service, real, EditKind::Disable).await
            }
            Request::LogLevel { filter } => {
                let was = crate::logging::current_filter().unwrap_or_default();
                match crate::logging::set_filter(&filter) {
                    Ok(()) => {
                        info!(%peer, was = %was, now = %filter, "log filter changed");
                        Reply::Done {
                            message: format!("log filter: {filter} (was {was})"),
                        }
                    }
                    Err(e) => Reply::error(format!("{e:#}")),
                }
            }
            Request::LogReopen => match crate::logging::reopen() {
                Ok(()) => {
                    info!(%peer, "log reopened");
                    Reply::Done {
                        message: "log reopened".into(),
                    }
                }
                Err(e) => Reply::error(format!("reopening the log: {e:#}")),
            },
        };
        debug!(%peer, reply = answer.kind(), "control reply");
        // The client may have gone: nothing to do about it.
        let _ = reply.send(answer);
    }

    /// Answers the reloads that waited for `outcome` (see [`Daemon::on_control`]).
    pub(super) fn answer_reload(&mut self, outcome: &ReloadOutcome) {
        for waiting in self.reload_waiters.drain(..) {
            let _ = waiting.send(outcome.reply());
        }
    }

    /// What only the daemon knows, for `xlb status`.
    fn info(&self) -> DaemonInfo {
        DaemonInfo {
            pid: self.me.pid,
            started_at: unix(self.started_at),
            uptime_s: self.started.elapsed().as_secs(),
            config_path: self.config_path.clone(),
            config_loaded_at: unix(self.config_loaded_at.0),
            config_age_s: self.config_loaded_at.1.elapsed().as_secs(),
            pin_path: self.pin_path.clone(),
            state_file: self.state_file.clone(),
            log_filter: crate::logging::current_filter(),
            edits: self.observed.edits.describe(&self.config),
            conn_table: self.plane.as_ref().map(|p| p.conn_table()),
        }
    }

    /// A runtime edit of one real server: recorded, logged, then the data plane follows.
    async fn edit(
        &mut self,
        peer: Peer,
        service: ServiceRef,
        real: RealRef,
        kind: EditKind,
    ) -> Reply {
        let stamp = Stamp {
            at: unix(SystemTime::now()),
            by: peer,
        };
        // A fwmark service named by another of its keys: by its own from here on.
        let service = crate::daemon::edits::canonical(&self.config, service);
        let before = self.observed.edits.get(&service.real_key(real)).copied();
        if let Err(e) = self
            .observed
            .edits
            .apply(&self.config, service, real, kind, stamp)
        {
            return Reply::error(e.to_string());
        }
        let shown = self
            .observed
            .edits
            .describe(&self.config)
            .into_iter()
            .find(|e| e.service == service && e.real == real);
        let what = match (&shown, kind) {
            (Some(e), _) => e.describe(stamp.at),
            (None, EditKind::Enable) if before.is_none() => {
                "enabled (it had no runtime edit)".to_string()
            }
            (None, _) => "enabled: the file's weight, health checks rule again".to_string(),
        };
        let message = format!("{service} -> {real}: {what}");
        info!(%peer, "runtime edit: {message} (until the next reload)");
        self.update_quorum();
        if let Err(e) = self.apply().await {
            return Reply::error(format!(
                "{message}; but the maps could not be synced (retried on the next change): {:#}",
                anyhow::Error::new(e)
            ));
        }
        Reply::Edited {
            message,
            pin_path: self.pin_path.clone(),
        }
    }

    /// `xlb reload --plan`: the file against the running config, as `xlb check --diff`
    /// shows it. Nothing changes; a file that does not load is the error reply.
    fn plan(&self) -> Reply {
        let new = match crate::config::Config::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => return Reply::error(format!("a reload would be refused: {e}")),
        };
        let plan = crate::diff::diff(&self.config, &new);
        let text = if plan.is_empty() {
            format!(
                "{}: a reload would change nothing\n",
                self.config_path.display()
            )
        } else {
            plan.render()
        };
        match serde_json::to_value(&plan) {
            Ok(plan) => Reply::Plan { text, plan },
            Err(e) => Reply::error(format!("the plan as JSON: {e}")),
        }
    }
}
