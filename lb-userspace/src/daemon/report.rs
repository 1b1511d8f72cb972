//! What the daemon reports beyond its own logs: the notify commands of real servers and
//! services (run without waiting, as keepalived does), notifications of verdicts and
//! quorum changes, keepalived's `omega`, and the settings of the notification channels.

use tracing::{info, warn};

use super::desired::QuorumChange;
use crate::{
    config::{Config, RealServerConfig},
    health::Verdict,
    notify::{Notification, Notifier, mail::Mailer},
};

/// Runs the command configured for going up or down, if any, without waiting for it
/// (keepalived does not either). `kind`: `notify` or `quorum`, naming it in the log.
fn run_transition_command(
    notifier: &Notifier,
    kind: &str,
    up: bool,
    on_up: &Option<String>,
    on_down: &Option<String>,
) {
    if let Some(c) = if up { on_up } else { on_down } {
        let what = format!("{kind}_{}", if up { "up" } else { "down" });
        notifier.run_command(&what, c);
    }
}

/// Says loudly when the config asks for mail alerts that cannot be sent, rather than
/// letting a keepalived user believe they will be.
pub fn warn_mail_impossible(config: &Config) {
    let g = &config.global_defs;
    let asked = g.smtp_alert
        || config
            .vrrp_instance
            .iter()
            .any(|i| i.smtp_alert == Some(true))
        || config.virtual_server.iter().any(|vs| {
            vs.smtp_alert == Some(true) || vs.real_server.iter().any(|r| r.smtp_alert == Some(true))
        });
    if asked && Mailer::from_global(g).is_none() {
        warn!(
            "smtp_alert is set but no mail will be sent: global_defs needs smtp_server and \
             notification_email"
        );
    }
}

/// A checker's verdict on `real_server` (None: no longer configured): logged, its
/// notify_up / notify_down run, announced.
pub fn verdict(v: &Verdict, real_server: Option<&RealServerConfig>, notifier: &Notifier) {
    if v.alive {
        info!(real_server = %v.key, weight = ?v.weight, reason = %v.reason, "UP");
    } else {
        warn!(real_server = %v.key, reason = %v.reason, "DOWN");
    }
    if let Some(rs) = real_server {
        run_transition_command(notifier, "notify", v.alive, &rs.notify_up, &rs.notify_down);
    }
    let verdict = Notification::RealServer {
        key: &v.key,
        up: v.alive,
        reason: &v.reason,
    };
    notifier.announce(&verdict, real_server.and_then(|r| r.smtp_alert));
}

/// A service gained or lost its quorum: logged, its quorum_up / quorum_down run,
/// announced.
pub fn quorum(change: &QuorumChange, notifier: &Notifier) {
    let vs = change.service;
    let name = vs.service_name();
    let live = change.live_weight;
    if change.up {
        info!(service = %name, live_weight = live, "quorum gained");
    } else {
        warn!(service = %name, live_weight = live, quorum = vs.quorum, sorry_server = ?vs.sorry_server.as_ref().map(|s| s.ip), "quorum lost");
    }
    run_transition_command(
        notifier,
        "quorum",
        change.up,
        &vs.quorum_up,
        &vs.quorum_down,
    );
    let quorum = Notification::Quorum {
        vip: vs.ip,
        port: vs.port,
        protocol: vs.protocol,
        up: change.up,
    };
    notifier.announce(&quorum, vs.smtp_alert);
}
