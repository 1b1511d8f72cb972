//! Notifications of VRRP transitions, real servers' verdicts and quorum changes, through
//! the channels the running config sets up: notify FIFOs (`fifo`) and mail alerts
//! ([`mail`]). What is reported has one shape for every channel ([`Notification`]); the
//! channels are leaves that know nothing of each other.
//!
//! Whoever reports is handed a [`Notifier`]; tests hand in [`Notifier::recorder`]. The
//! per-object notify commands (`notify_master`, `notify_up`, `quorum_up`, ...) stay with
//! their objects and run through [`crate::process`], under the running config's
//! [`Policy`] ([`Notifier::script_policy`], [`Notifier::run_command`]).

use std::sync::{Arc, Mutex, MutexGuard};

use tracing::warn;

mod fifo;
pub mod mail;
mod notification;

pub use notification::{Notification, VrrpState};

use crate::{config::GlobalDefs, process::Policy};
use fifo::Fifos;
use mail::MailSettings;

/// Where notifications go. The daemon makes one and hands a clone to everything that
/// reports (VRRP instances, health verdicts, quorum changes); clones share the channels,
/// so a reload reconfigures them for every holder at once.
#[derive(Clone)]
pub struct Notifier {
    sink: Arc<Sink>,
}

enum Sink {
    /// The running config's channels.
    Channels(Mutex<Channels>),
    /// Keeps what is announced, for tests.
    Recorder(Mutex<Vec<Announced>>),
}

#[derive(Default)]
struct Channels {
    fifos: Fifos,
    mail: MailSettings,
    /// Who notify commands run as, and script security.
    scripts: Policy,
}

/// One notification as a recorder keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// keepalived's event line (what a notify FIFO would get).
    pub line: String,
    /// The object's `smtp_alert`, as handed to [`Notifier::announce`].
    pub smtp_alert: Option<bool>,
}

/// Locks `m`; a panic elsewhere while it was held leaves nothing half-written that
/// matters here, so a poisoned lock is taken as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Notifier {
    /// The channels `g` sets up: opens (and creates) the notify FIFOs, starts their
    /// readers, takes the mail settings. A FIFO that cannot be opened is left out with
    /// a warning.
    pub fn running(g: &GlobalDefs) -> Self {
        let notifier = Self {
            sink: Arc::new(Sink::Channels(Mutex::default())),
        };
        notifier.reconfigure(g);
        notifier
    }

    /// A notifier that only records what it is told, for tests.
    pub fn recorder() -> Self {
        Self {
            sink: Arc::new(Sink::Recorder(Mutex::default())),
        }
    }

    /// What a [`Notifier::recorder`] was told, in order (nothing for real channels).
    pub fn announced(&self) -> Vec<Announced> {
        match &*self.sink {
            Sink::Recorder(log) => lock(log).clone(),
            Sink::Channels(_) => Vec::new(),
        }
    }

    /// Takes `g`'s settings (on reload). FIFOs and readers whose settings did not
    /// change are kept, so a reload does not restart a reader; the rest close.
    pub fn reconfigure(&self, g: &GlobalDefs) {
        let Sink::Channels(channels) = &*self.sink else {
            return;
        };
        let mut channels = lock(channels);
        let old = std::mem::take(&mut channels.fifos);
        let (fifos, errors) = Fifos::configure(g, old);
        for e in errors {
            warn!("notify FIFO left out: {e:#}");
        }
        channels.fifos = fifos;
        // Everything that mails reads the running config's settings here, VRRP
        // instances included (not from their spec: a reload that changes only mail
        // settings then restarts no instance).
        channels.mail = MailSettings::of(g);
        channels.scripts = Policy::of(g);
    }

    /// The running config's rules for commands (a recorder: the defaults).
    pub fn script_policy(&self) -> Policy {
        match &*self.sink {
            Sink::Channels(channels) => lock(channels).scripts.clone(),
            Sink::Recorder(_) => Policy::default(),
        }
    }

    /// Runs a notify command (`notify_up`, `quorum_down`, ...: `what`) in the background
    /// under [`Notifier::script_policy`].
    pub fn run_command(&self, what: &str, command: &str) {
        crate::process::spawn_notify(&self.script_policy(), what, command, None, &[]);
    }

    /// A guard that closes the FIFOs (readers ended, FIFOs xlb made removed) when it
    /// drops, whichever way the daemon returns.
    pub fn close_on_drop(&self) -> CloseOnDrop {
        CloseOnDrop(self.clone())
    }

    /// Writes `notice` to the notify FIFOs that want it, and mails it when `smtp_alert` is
    /// on for its object (`smtp_alert`: the object's own setting; unset, `global_defs`').
    pub fn announce(&self, notice: &Notification, smtp_alert: Option<bool>) {
        match &*self.sink {
            Sink::Channels(channels) => {
                let mailer = {
                    let mut channels = lock(channels);
                    channels.fifos.write(notice);
                    channels.mail.for_object(smtp_alert).cloned()
                };
                if let Some(m) = mailer {
                    if let Some(alert) = m.alert(notice) {
                        m.send(alert);
                    }
                }
            }
            Sink::Recorder(log) => lock(log).push(Announced {
                line: notice.to_string(),
                smtp_alert,
            }),
        }
    }
}

/// See [`Notifier::close_on_drop`].
pub struct CloseOnDrop(Notifier);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Sink::Channels(channels) = &*self.0.sink {
            let fifos = std::mem::take(&mut lock(channels).fifos);
            drop(fifos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorder_keeps_what_every_clone_announces() {
        let notifier = Notifier::recorder();
        let instance = notifier.clone();
        instance.announce(
            &Notification::Vrrp {
                instance: "VI_1",
                state: VrrpState::Master,
                priority: 150,
            },
            Some(true),
        );
        notifier.announce(
            &Notification::Quorum {
                vip: "198.18.1.100".parse().unwrap(),
                port: 80,
                protocol: crate::config::Protocol::Tcp,
                up: false,
            },
            None,
        );
        assert_eq!(
            notifier.announced(),
            [
                Announced {
                    line: "INSTANCE \"VI_1\" MASTER 150".into(),
                    smtp_alert: Some(true),
                },
                Announced {
                    line: "VS [198.18.1.100]:tcp:80 DOWN".into(),
                    smtp_alert: None,
                },
            ]
        );
    }

    #[test]
    fn clones_share_the_channels_a_reload_sets_and_the_guard_closes() {
        use fifo::tests::drain;

        let dir = std::env::temp_dir().join(format!("xlb-notifier-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let first = dir.join("first.fifo");
        let second = dir.join("second.fifo");
        let with_fifo = |path: &std::path::Path| GlobalDefs {
            notify_fifo: Some(path.display().to_string()),
            ..GlobalDefs::default()
        };
        let stop = Notification::Vrrp {
            instance: "VI_1",
            state: VrrpState::Stop,
            priority: 0,
        };

        let notifier = Notifier::running(&with_fifo(&first));
        let guard = notifier.close_on_drop();
        let instance = notifier.clone();
        instance.announce(&stop, None);
        assert_eq!(drain(&first), "INSTANCE \"VI_1\" STOP 0\n");
        // A reload through one handle is what every clone writes to.
        notifier.reconfigure(&with_fifo(&second));
        assert!(!first.exists(), "the FIFO the reload dropped is removed");
        instance.announce(&stop, None);
        assert_eq!(drain(&second), "INSTANCE \"VI_1\" STOP 0\n");
        assert!(
            notifier.announced().is_empty(),
            "real channels record nothing"
        );
        drop(guard);
        assert!(!second.exists(), "the guard closes the FIFOs");
        // Clones outliving the guard write nowhere, and do not fail.
        instance.announce(&stop, None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
