//! The VRRP instances the daemon runs: started from the config; on a reload kept,
//! given their new settings in place (they keep their state: a MASTER stays MASTER) or,
//! for a new virtual router id, interface, version or family, stopped to be started
//! again; resigned on shutdown. A stop runs as a task of its own
//! that posts [`Event::InstanceStopped`]: the stopping instance waits for its services to
//! be switched off, so the daemon must go on serving its gate requests meanwhile.

use std::collections::HashMap;

use anyhow::{Context, Result};
use rtnetlink::Handle;
use tokio::sync::{mpsc, watch};
use tracing::{error, info};

use super::event::{self, Event};
use crate::{
    config::Config,
    notify::Notifier,
    vrrp::{
        self,
        instance::{Gate, Instance, ReloadAction, StatusBoard},
        sync::SyncGroup,
        track::ScriptTracker,
    },
};

pub struct Instances {
    running: Vec<Instance>,
    /// `vrrp_script` trackers, shared by the instances that track them.
    scripts: HashMap<String, ScriptTracker>,
    /// `vrrp_sync_group`s, by name, shared by their members.
    groups: HashMap<String, SyncGroup>,
    /// The batch being stopped: names whose task still runs, names whose task ended.
    stopping: Vec<String>,
    stopped: Vec<String>,
    gate: Gate,
    board: StatusBoard,
}

impl Instances {
    pub fn new(gate: Gate, board: StatusBoard) -> Self {
        Self {
            running: Vec::new(),
            scripts: HashMap::new(),
            groups: HashMap::new(),
            stopping: Vec::new(),
            stopped: Vec::new(),
            gate,
            board,
        }
    }

    /// Every instance's status, shared with the instances.
    pub fn board(&self) -> &StatusBoard {
        &self.board
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Whether stops are under way (their [`Event::InstanceStopped`] are to come).
    pub fn stopping(&self) -> bool {
        !self.stopping.is_empty()
    }

    /// Starts every instance of `config` that is not running.
    pub async fn start(
        &mut self,
        config: &Config,
        handle: &Handle,
        notifier: &Notifier,
    ) -> Result<()> {
        self.spawn_scripts(config);
        self.update_groups(config, notifier);
        for spec in vrrp::instance::specs(config) {
            if self.running.iter().any(|i| i.name == spec.name) {
                continue;
            }
            let verdicts = self.verdicts();
            let group = (spec.sync_group.as_ref()).and_then(|g| self.groups.get(g).cloned());
            // On the VRRP thread, where the instance's socket and timers must live. This
            // awaits only the socket's setup there (netlink, bind), never a gate answer,
            // so it cannot wait on the loop that is awaiting it.
            let inst = vrrp::instance::runtime()
                .spawn(vrrp::instance::spawn(
                    spec,
                    handle.clone(),
                    self.gate.clone(),
                    verdicts,
                    self.board.clone(),
                    notifier.clone(),
                    group,
                ))
                .await
                .context("VRRP instance task")??;
            self.running.push(inst);
        }
        Ok(())
    }

    /// Sync groups are shared by their members: a new group is made, a kept one takes
    /// its new notify settings (its members' states stay), a removed one goes (members
    /// a reload moves out of it hold it until they have left).
    fn update_groups(&mut self, config: &Config, notifier: &Notifier) {
        self.groups
            .retain(|name, _| config.vrrp_sync_group.iter().any(|g| &g.name == name));
        for g in &config.vrrp_sync_group {
            match self.groups.get(&g.name) {
                Some(group) => group.set_config(g),
                None => {
                    let group = SyncGroup::new(g, notifier.clone());
                    self.groups.insert(g.name.clone(), group);
                }
            }
        }
    }

    /// Trackers are shared by instances; new scripts start, existing ones go on.
    fn spawn_scripts(&mut self, config: &Config) {
        for (name, tracker) in vrrp::track::spawn_trackers(config) {
            self.scripts.entry(name).or_insert(tracker);
        }
    }

    /// Every running script's verdict channel, by name (disabled ones are left out, and
    /// so the instances do not track them).
    fn verdicts(&self) -> HashMap<String, watch::Receiver<bool>> {
        self.scripts
            .iter()
            .filter(|(_, t)| !t.disabled)
            .map(|(name, t)| (name.clone(), t.verdict.clone()))
            .collect()
    }

    /// For a reload to `config`, by [`ReloadAction::of`] (the rule `xlb check --diff`
    /// shows): unchanged instances keep running as they are; changed ones take their new
    /// settings in place and keep their state, unless they must restart. Those, and the
    /// instances `config` no longer has, are returned for [`Instances::stop`]; `start`
    /// brings the new and restarted ones up after.
    pub async fn reconcile(
        &mut self,
        config: &Config,
        handle: &Handle,
        notifier: &Notifier,
    ) -> Vec<Instance> {
        self.spawn_scripts(config);
        self.update_groups(config, notifier);
        let scripts = self.verdicts();
        let specs = vrrp::instance::specs(config);
        let mut keep = Vec::new();
        let mut outdated = Vec::new();
        for mut i in std::mem::take(&mut self.running) {
            let spec = specs.iter().find(|s| s.name == i.name);
            match (ReloadAction::of(&i.spec, spec), spec) {
                (ReloadAction::Keep, _) => keep.push(i),
                (ReloadAction::InPlace(changed), Some(spec)) => {
                    let group = (spec.sync_group.as_ref()).and_then(|g| self.groups.get(g));
                    if let Err(e) = i.update(spec.clone(), handle, &scripts, group).await {
                        error!(instance = %i.name, changed = ?changed, "the new settings could not be applied; it keeps running with the previous ones: {e}");
                    }
                    keep.push(i);
                }
                (ReloadAction::Restart(why), _) => {
                    info!(instance = %i.name, "{why}: restarting the instance");
                    if spec.map(|s| &s.sync_group) != Some(&i.spec.sync_group) {
                        i.leave_group();
                    }
                    outdated.push(i);
                }
                // (`InPlace` always comes with the new spec: `ReloadAction::of`.)
                (ReloadAction::Remove, _) | (ReloadAction::InPlace(_), None) => {
                    info!(instance = %i.name, "removed from the config: stopping");
                    i.leave_group();
                    outdated.push(i);
                }
            }
        }
        self.running = keep;
        outdated
    }

    /// Stops every running instance; returns how many.
    pub fn stop_all(&mut self, events: &mpsc::Sender<Event>) -> usize {
        let all = std::mem::take(&mut self.running);
        let count = all.len();
        self.stop(all, events);
        count
    }

    /// Starts stopping `instances`: each resigns in a task of its own, which posts
    /// [`Event::InstanceStopped`] when it has ended.
    pub fn stop(&mut self, instances: Vec<Instance>, events: &mpsc::Sender<Event>) {
        for i in instances {
            self.stopping.push(i.name.clone());
            let name = i.name.clone();
            event::when_done(events, i.stop(), Event::InstanceStopped(name));
        }
    }

    /// An instance's stop task ended. Once the whole batch has, returns its names (their
    /// status is then off the board).
    pub fn stopped(&mut self, name: &str) -> Option<Vec<String>> {
        let at = self.stopping.iter().position(|n| n == name)?;
        self.stopped.push(self.stopping.swap_remove(at));
        if !self.stopping.is_empty() {
            return None;
        }
        let batch = std::mem::take(&mut self.stopped);
        if let Ok(mut board) = self.board.lock() {
            for n in &batch {
                board.remove(n);
            }
        }
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_ends_when_its_last_instance_has_stopped() {
        let mut i = Instances::new(Gate(mpsc::channel(1).0), StatusBoard::default());
        i.stopping = vec!["VI_1".into(), "VI_2".into()];
        assert_eq!(i.stopped("VI_2"), None);
        assert!(i.stopping());
        assert_eq!(i.stopped("VI_9"), None, "not stopping");
        assert_eq!(i.stopped("VI_1"), Some(vec!["VI_2".into(), "VI_1".into()]));
        assert!(!i.stopping());
    }
}
