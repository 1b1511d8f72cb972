//! What notifications report, in one shape for every channel: a VRRP transition, a real
//! server's verdict, a virtual service's quorum. [`announce`] hands a notification to the
//! channels the running config sets up (notify FIFOs, mail alerts); the per-object notify
//! commands (`notify_master`, `notify_up`, `quorum_up`, ...) stay with their objects.

use std::net::IpAddr;

pub mod fifo;
pub mod mail;

use crate::{config::Protocol, health::RealKey};
use mail::Mailer;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Notification<'a> {
    /// An instance entered `state` (keepalived's names: MASTER, BACKUP, FAULT, STOP).
    Vrrp {
        instance: &'a str,
        state: &'a str,
        priority: u8,
    },
    /// A real server went up or down, and why (the checker's reason).
    RealServer {
        key: &'a RealKey,
        up: bool,
        reason: &'a str,
    },
    /// A virtual service gained or lost its quorum.
    Quorum {
        vip: IpAddr,
        port: u16,
        protocol: Protocol,
        up: bool,
    },
}

/// Where notifications go. The daemon makes one and hands a clone to everything that
/// reports (VRRP instances, health verdicts, quorum changes); a test hands in a recorder.
#[derive(Clone, Default)]
pub struct Notifier {
    _private: (),
}

impl Notifier {
    /// The channels of the running config (notify FIFOs, mail alerts).
    pub fn running() -> Self {
        Self::default()
    }

    /// Writes `notice` to the notify FIFOs that want it, and mails it when `smtp_alert` is
    /// on for its object (`smtp_alert`: the object's own setting; unset, `global_defs`').
    pub fn announce(&self, notice: &Notification, smtp_alert: Option<bool>) {
        fifo::with(|n| n.write(notice));
        if let Some(m) = Mailer::running(smtp_alert) {
            if let Some(alert) = m.alert(notice) {
                m.send(alert);
            }
        }
    }
}
