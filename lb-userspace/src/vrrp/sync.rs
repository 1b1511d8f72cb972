//! `vrrp_sync_group`: instances that change state together, as keepalived 2.x's
//! `vrrp_sync.c` does it.
//!
//! The rules, in [`Core`] (pure, unit-tested):
//! - **FAULT**: while any member is in fault of its own (its trackers, its interface),
//!   every other member is held in FAULT too; when the last one's fault clears, they all
//!   leave FAULT together (for BACKUP, then the usual election).
//! - **MASTER**: a member whose master-down timer fires may become MASTER only when the
//!   group is MASTER already or every other member wants MASTER too (its own timer
//!   fired); otherwise it stays BACKUP and waits another Master_Down_Interval
//!   (keepalived's `vrrp_sync_can_goto_master`: "prefer backup state to avoid
//!   thrashing"). Once one member becomes MASTER, every other member not MASTER is told
//!   to become MASTER ([`Command::Master`]).
//! - **BACKUP**: a MASTER member that steps down to BACKUP (it heard a higher priority)
//!   takes every other MASTER member to BACKUP ([`Command::Backup`]).
//! - The group's own state: FAULT when a member is in FAULT, else MASTER when a member is
//!   MASTER, else BACKUP, or STOP when every member has stopped. Each change of it runs
//!   the group's notify commands once (`GROUP name STATE`), and mails when `smtp_alert`.
//!
//! [`SyncGroup`] is the shared handle the members' drivers hold (they all run on the one
//! VRRP thread): each reports its transitions and own fault, and receives the commands
//! the rules give it on a channel of its own.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::machine::State;
use crate::{
    config::VrrpSyncGroup,
    notify::{Notification, Notifier, VrrpState},
};

/// What the group tells a member to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Another member is in fault of its own (true), or none is any more (false).
    Fault(bool),
    /// Another member became MASTER: become MASTER too.
    Master,
    /// Another member stepped down to BACKUP: step down too.
    Backup,
}

/// What the group knows of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Member {
    state: State,
    /// In fault of its own (not because of the group).
    own_fault: bool,
    /// Its master-down timer fired and it is waiting for the others.
    wants_master: bool,
    /// The group fault it was last told.
    told_fault: bool,
}

impl Default for Member {
    fn default() -> Self {
        Self {
            state: State::Initialize,
            own_fault: false,
            wants_master: false,
            told_fault: false,
        }
    }
}

/// The group's rules over its members' states (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Core {
    members: BTreeMap<String, Member>,
    /// The group's state last reported.
    state: Option<State>,
}

/// What a report changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Commands for other members, in member order.
    pub commands: Vec<(String, Command)>,
    /// The group's new state, when it changed.
    pub group: Option<State>,
}

impl Core {
    /// A group of `members`, all in Initialize.
    pub fn new<'a>(members: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            members: members
                .into_iter()
                .map(|m| (m.to_owned(), Member::default()))
                .collect(),
            state: None,
        }
    }

    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// The group's state as last reported (Initialize before any member started).
    pub fn state(&self) -> State {
        self.state.unwrap_or(State::Initialize)
    }

    /// Whether another member is in fault of its own: `member` must be held in FAULT.
    pub fn fault_for(&self, member: &str) -> bool {
        self.members
            .iter()
            .any(|(name, m)| name != member && m.own_fault)
    }

    /// keepalived's `vrrp_sync_can_goto_master`: whether `member`, whose master-down
    /// timer fired, may become MASTER now. It is marked as wanting MASTER either way.
    /// A member not running (INIT: stopped for a restart, or not started yet) has no say.
    pub fn can_goto_master(&mut self, member: &str) -> bool {
        if let Some(m) = self.members.get_mut(member) {
            m.wants_master = true;
        }
        if self.state == Some(State::Master) {
            return true;
        }
        self.members.iter().all(|(name, m)| {
            name == member || m.wants_master || matches!(m.state, State::Master | State::Initialize)
        })
    }

    /// `member` heard a master again (an accepted advert rearmed its timer): it no longer
    /// wants MASTER.
    pub fn master_heard(&mut self, member: &str) {
        if let Some(m) = self.members.get_mut(member) {
            m.wants_master = false;
        }
    }

    /// `member`'s own fault is now `fault`: the other members' group fault follows.
    pub fn own_fault(&mut self, member: &str, fault: bool) -> Outcome {
        if let Some(m) = self.members.get_mut(member) {
            m.own_fault = fault;
        }
        let mut out = Outcome::default();
        self.tell_faults(&mut out);
        out
    }

    /// `member` went from `from` to `to`.
    pub fn transition(&mut self, member: &str, from: State, to: State) -> Outcome {
        let mut out = Outcome::default();
        let Some(m) = self.members.get_mut(member) else {
            return out;
        };
        m.state = to;
        if to != State::Backup {
            m.wants_master = false;
        }
        match (from, to) {
            (_, State::Master) => {
                for (name, other) in &mut self.members {
                    if name != member
                        && other.state != State::Master
                        && other.state != State::Fault
                        && other.state != State::Initialize
                    {
                        out.commands.push((name.clone(), Command::Master));
                    }
                }
            }
            (State::Master, State::Backup) => {
                for (name, other) in &self.members {
                    if name != member && other.state == State::Master {
                        out.commands.push((name.clone(), Command::Backup));
                    }
                }
            }
            _ => {}
        }
        self.tell_faults(&mut out);
        let group = self.derived();
        if Some(group) != self.state && !(self.state.is_none() && group == State::Initialize) {
            self.state = Some(group);
            out.group = Some(group);
        }
        out
    }

    /// Removes `member` (stopped for good, or moved to another group by a reload).
    pub fn remove(&mut self, member: &str) -> Outcome {
        self.members.remove(member);
        let mut out = Outcome::default();
        self.tell_faults(&mut out);
        out
    }

    /// FAULT when a member is, else MASTER when one is, else BACKUP; STOP (Initialize)
    /// when all have stopped.
    fn derived(&self) -> State {
        let states = || self.members.values().map(|m| m.state);
        if states().any(|s| s == State::Fault) {
            State::Fault
        } else if states().any(|s| s == State::Master) {
            State::Master
        } else if states().all(|s| s == State::Initialize) {
            State::Initialize
        } else {
            State::Backup
        }
    }

    fn tell_faults(&mut self, out: &mut Outcome) {
        let faults: Vec<(String, bool)> = self
            .members
            .keys()
            .map(|name| (name.clone(), self.fault_for(name)))
            .collect();
        for (name, fault) in faults {
            let m = self.members.get_mut(&name).expect("listed");
            if m.told_fault != fault {
                m.told_fault = fault;
                out.commands.push((name, Command::Fault(fault)));
            }
        }
    }
}

/// The shared group: its rules, its config (for notifications) and each member's
/// command channel.
struct Shared {
    core: Core,
    config: VrrpSyncGroup,
    senders: BTreeMap<String, mpsc::UnboundedSender<Command>>,
    notifier: Notifier,
}

/// A handle on one running sync group, shared by its members' drivers.
#[derive(Clone)]
pub struct SyncGroup {
    shared: Arc<Mutex<Shared>>,
}

/// A member's end: its group, its name, and where its commands arrive.
pub struct Link {
    pub group: SyncGroup,
    pub member: String,
}

impl SyncGroup {
    /// A group from its config; members join with [`SyncGroup::join`].
    pub fn new(config: &VrrpSyncGroup, notifier: Notifier) -> Self {
        if config.group.len() == 1 {
            warn!(
                sync_group = %config.name,
                "sync group {} has only 1 virtual router(s) - this probably isn't what you want",
                config.name
            );
        }
        Self {
            shared: Arc::new(Mutex::new(Shared {
                core: Core::new(config.group.iter().map(String::as_str)),
                config: config.clone(),
                senders: BTreeMap::new(),
                notifier,
            })),
        }
    }

    pub fn name(&self) -> String {
        self.lock().config.name.clone()
    }

    /// The group's state (Initialize before any member has started).
    pub fn state(&self) -> State {
        self.lock().core.state()
    }

    /// A reload's new settings of the group (notify commands, mail); membership changes
    /// as members [`join`](SyncGroup::join) and [`leave`](SyncGroup::leave).
    pub fn set_config(&self, config: &VrrpSyncGroup) {
        self.lock().config = config.clone();
    }

    /// Makes `member` a member (in Initialize) and returns its link and command channel.
    pub fn join(&self, member: &str) -> (Link, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut s = self.lock();
        s.core.members.entry(member.to_owned()).or_default();
        s.senders.insert(member.to_owned(), tx);
        drop(s);
        let link = Link {
            group: self.clone(),
            member: member.to_owned(),
        };
        (link, rx)
    }

    /// Takes `member` out of the group.
    pub fn leave(&self, member: &str) {
        let mut s = self.lock();
        s.senders.remove(member);
        let out = s.core.remove(member);
        s.carry_out(out);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Link {
    /// Whether another member's own fault holds this one in FAULT.
    pub fn group_fault(&self) -> bool {
        self.group.lock().core.fault_for(&self.member)
    }

    /// See [`Core::can_goto_master`].
    pub fn can_goto_master(&self) -> bool {
        self.group.lock().core.can_goto_master(&self.member)
    }

    /// See [`Core::master_heard`].
    pub fn master_heard(&self) {
        self.group.lock().core.master_heard(&self.member);
    }

    /// This member's own fault changed.
    pub fn own_fault(&self, fault: bool) {
        let mut s = self.group.lock();
        let out = s.core.own_fault(&self.member, fault);
        s.carry_out(out);
    }

    /// This member went from `from` to `to`.
    pub fn transition(&self, from: State, to: State) {
        let mut s = self.group.lock();
        let out = s.core.transition(&self.member, from, to);
        s.carry_out(out);
    }
}

impl Shared {
    /// Sends the commands and reports the group's transition.
    fn carry_out(&mut self, out: Outcome) {
        for (member, command) in out.commands {
            if let Some(tx) = self.senders.get(&member) {
                let _ = tx.send(command);
            }
        }
        if let Some(state) = out.group {
            let name = &self.config.name;
            let state = VrrpState::from(state);
            info!(sync_group = %name, %state, "VRRP_Group({name}) Syncing instances to {state} state");
            super::track::notify_group(&self.config, state, &self.notifier.script_policy());
            let notice = Notification::VrrpGroup { group: name, state };
            self.notifier.announce(&notice, self.config.smtp_alert);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(out: &Outcome) -> Vec<(&str, Command)> {
        out.commands.iter().map(|(n, c)| (n.as_str(), *c)).collect()
    }

    /// Both members started as BACKUP: the group is BACKUP, reported once.
    fn started() -> Core {
        let mut g = Core::new(["VI_1", "VI_2"]);
        let a = g.transition("VI_1", State::Initialize, State::Backup);
        assert_eq!(a.group, Some(State::Backup));
        let b = g.transition("VI_2", State::Initialize, State::Backup);
        assert_eq!(b, Outcome::default(), "no second BACKUP");
        g
    }

    #[test]
    fn one_member_faulted_holds_every_other_in_fault_until_it_clears() {
        let mut g = started();
        let out = g.own_fault("VI_1", true);
        assert_eq!(cmds(&out), [("VI_2", Command::Fault(true))]);
        assert!(g.fault_for("VI_2") && !g.fault_for("VI_1"));
        let out = g.transition("VI_1", State::Backup, State::Fault);
        assert_eq!(out.group, Some(State::Fault));
        let out = g.transition("VI_2", State::Backup, State::Fault);
        assert_eq!(out, Outcome::default(), "FAULT reported once");
        // Both faulted on their own: the group fault stays until the last clears.
        let out = g.own_fault("VI_2", true);
        assert_eq!(cmds(&out), [("VI_1", Command::Fault(true))]);
        // VI_1 clears: VI_2 is no longer held by the group, only by its own fault.
        let out = g.own_fault("VI_1", false);
        assert_eq!(cmds(&out), [("VI_2", Command::Fault(false))]);
        assert!(g.fault_for("VI_1"), "VI_2's own fault still holds VI_1");
        let out = g.own_fault("VI_2", false);
        assert_eq!(cmds(&out), [("VI_1", Command::Fault(false))]);
        g.transition("VI_1", State::Fault, State::Backup);
        assert_eq!(g.state(), State::Fault, "VI_2 still in FAULT");
        let out = g.transition("VI_2", State::Fault, State::Backup);
        assert_eq!(out.group, Some(State::Backup));
    }

    #[test]
    fn a_member_goes_master_only_when_all_want_to_then_takes_the_others() {
        let mut g = started();
        assert!(!g.can_goto_master("VI_1"), "VI_2 still hears a master");
        g.master_heard("VI_2");
        assert!(!g.can_goto_master("VI_1"));
        // VI_2's timer fires too: now both want MASTER.
        assert!(g.can_goto_master("VI_2"));
        let out = g.transition("VI_2", State::Backup, State::Master);
        assert_eq!(cmds(&out), [("VI_1", Command::Master)]);
        assert_eq!(out.group, Some(State::Master));
        let out = g.transition("VI_1", State::Backup, State::Master);
        assert_eq!(out, Outcome::default(), "MASTER reported once");
        // A MASTER group lets a member back in at once.
        assert!(g.can_goto_master("VI_1"));
    }

    #[test]
    fn a_wish_is_forgotten_when_a_master_is_heard_again() {
        let mut g = started();
        assert!(!g.can_goto_master("VI_1"));
        g.master_heard("VI_1");
        assert!(
            !g.can_goto_master("VI_2"),
            "VI_1 heard its master again: it no longer wants MASTER"
        );
    }

    #[test]
    fn one_master_stepping_down_takes_the_others_to_backup() {
        let mut g = started();
        g.can_goto_master("VI_1");
        g.can_goto_master("VI_2");
        g.transition("VI_1", State::Backup, State::Master);
        g.transition("VI_2", State::Backup, State::Master);
        let out = g.transition("VI_2", State::Master, State::Backup);
        assert_eq!(cmds(&out), [("VI_1", Command::Backup)]);
        assert_eq!(out.group, None, "VI_1 still MASTER");
        let out = g.transition("VI_1", State::Master, State::Backup);
        assert!(out.commands.is_empty());
        assert_eq!(out.group, Some(State::Backup));
    }

    #[test]
    fn fault_in_master_resigns_all_and_stop_is_reported_when_all_stopped() {
        let mut g = started();
        g.can_goto_master("VI_1");
        g.can_goto_master("VI_2");
        g.transition("VI_1", State::Backup, State::Master);
        g.transition("VI_2", State::Backup, State::Master);
        let out = g.own_fault("VI_1", true);
        assert_eq!(cmds(&out), [("VI_2", Command::Fault(true))]);
        let out = g.transition("VI_1", State::Master, State::Fault);
        assert!(
            out.commands.is_empty(),
            "MASTER -> FAULT is no step down: {out:?}"
        );
        assert_eq!(out.group, Some(State::Fault));
        g.transition("VI_2", State::Master, State::Fault);
        g.transition("VI_1", State::Fault, State::Initialize);
        let out = g.transition("VI_2", State::Fault, State::Initialize);
        assert_eq!(out.group, Some(State::Initialize));
    }

    #[test]
    fn a_member_not_running_does_not_hold_the_others() {
        let mut g = Core::new(["VI_1", "VI_2"]);
        g.transition("VI_1", State::Initialize, State::Backup);
        assert!(g.can_goto_master("VI_1"), "VI_2 has not started");
        let out = g.transition("VI_1", State::Backup, State::Master);
        assert!(out.commands.is_empty(), "nothing to take along: {out:?}");
        // VI_2 starts later: the group is MASTER, so it may join at once.
        g.transition("VI_2", State::Initialize, State::Backup);
        assert!(g.can_goto_master("VI_2"));
    }

    #[test]
    fn a_group_of_one_runs_as_a_plain_instance() {
        let mut g = Core::new(["VI_1"]);
        g.transition("VI_1", State::Initialize, State::Backup);
        assert!(g.can_goto_master("VI_1"));
        let out = g.own_fault("VI_1", true);
        assert!(out.commands.is_empty());
        assert!(!g.fault_for("VI_1"));
    }

    #[test]
    fn a_removed_member_no_longer_holds_the_others() {
        let mut g = started();
        g.own_fault("VI_1", true);
        let out = g.remove("VI_1");
        assert_eq!(cmds(&out), [("VI_2", Command::Fault(false))]);
        assert!(g.can_goto_master("VI_2"));
    }
}
