//! `vrrp_script` trackers and notify commands: the scripts keepalived runs around VRRP.
//!
//! A tracker runs its script every `interval` (with [`crate::process`]: split into words,
//! no shell, as its `user`, in its own process group, killed as a group after
//! `timeout`), counts `rise` successes / `fall` failures before its verdict changes, and
//! publishes the verdict on a `watch` channel. Instances that track it turn the verdicts
//! into a priority delta or FAULT ([`TrackState`]). A script refused when it is first
//! started (script security, a missing program or user) is disabled, as keepalived does
//! ("Disabling track script ... due to insecure" / "since not found/accessible"): it never
//! runs and the instances that track it leave it out, so a config migrated from
//! keepalived keeps its priorities. One that becomes refused later (made unsafe while
//! running) counts as failed at each run. `xlb check` reports both. Notify commands (`notify_master`, `notify_backup`, ...) run in the
//! background on each transition and are never waited for, as in keepalived.

use std::{collections::HashMap, time::Duration};

use tokio::{sync::watch, task::JoinHandle};
use tracing::{debug, info, info_span};

use super::machine::State;
use crate::{
    config::{Config, TrackEntry, VrrpInstance, VrrpScript, VrrpSyncGroup},
    notify::VrrpState,
    process::{self, Policy},
};

/// A running `vrrp_script`; its verdict (true = up) is on `verdict`.
pub struct ScriptTracker {
    pub name: String,
    pub verdict: watch::Receiver<bool>,
    /// Refused when started: never run, and no instance tracks it (keepalived's
    /// "Disabling track script").
    pub disabled: bool,
    task: JoinHandle<()>,
}

impl Drop for ScriptTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptTracker {
    pub fn spawn(name: &str, script: &VrrpScript, policy: &Policy) -> Self {
        let what = format!("vrrp_script {name}");
        // Refused now: disabled, as keepalived does (its words, its reasons).
        if let Err(refused) = policy.prepare(&script.script, script.user.as_deref(), &[]) {
            process::log_refusal(&what, &script.script, &refused);
            let why = match refused {
                process::Refused::Insecure(_) => "due to insecure",
                _ => "since not found/accessible",
            };
            tracing::error!(
                script = %name,
                "Disabling track script {name} {why}: instances that track it leave it out"
            );
            let (_, rx) = watch::channel(false);
            return Self {
                name: name.to_string(),
                verdict: rx,
                disabled: true,
                task: tokio::spawn(async {}),
            };
        }
        let (tx, rx) = watch::channel(!script.init_fail);
        let script = script.clone();
        let name_owned = name.to_string();
        let policy = policy.clone();
        let task = tokio::spawn(async move {
            let interval = Duration::from_secs_f64(script.interval.max(0.01));
            let timeout = script
                .timeout
                .map(|t| Duration::from_secs_f64(t.max(0.01)))
                .unwrap_or(interval);
            let (mut ok_run, mut ko_run) = (0u32, 0u32);
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // Prepared at each run: a script made unsafe later is refused then.
                let ok = match policy.prepare(&script.script, script.user.as_deref(), &[]) {
                    Ok(s) => match process::run(&s, timeout).await {
                        Ok(status) if status.success() => true,
                        Ok(status) => {
                            debug!(script = %name_owned, %status, "vrrp_script failed");
                            false
                        }
                        Err(e) => {
                            debug!(script = %name_owned, reason = %e, "vrrp_script failed");
                            false
                        }
                    },
                    Err(refused) => {
                        process::log_refusal(&what, &script.script, &refused);
                        false
                    }
                };
                if ok {
                    ok_run += 1;
                    ko_run = 0;
                } else {
                    ko_run += 1;
                    ok_run = 0;
                }
                let current = *tx.borrow();
                let next = if current && ko_run >= script.fall.max(1) {
                    false
                } else if !current && ok_run >= script.rise.max(1) {
                    true
                } else {
                    current
                };
                if next != current {
                    info!(script = %name_owned, up = next, "vrrp_script verdict changed");
                    let _ = tx.send(next);
                }
            }
        });
        Self {
            name: name.to_string(),
            verdict: rx,
            disabled: false,
            task,
        }
    }
}

/// Starts a tracker for every `vrrp_script` that some instance tracks.
pub fn spawn_trackers(cfg: &Config) -> HashMap<String, ScriptTracker> {
    let policy = Policy::of(&cfg.global_defs);
    let mut out = HashMap::new();
    for inst in &cfg.vrrp_instance {
        for entry in cfg.tracked_scripts(inst) {
            if out.contains_key(&entry.name) {
                continue;
            }
            if let Some(script) = cfg.vrrp_script.get(&entry.name) {
                out.insert(
                    entry.name.clone(),
                    ScriptTracker::spawn(&entry.name, script, &policy),
                );
            }
        }
    }
    out
}

/// One thing an instance tracks and how its verdict counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Tracked {
    pub what: String,
    /// None: down means FAULT; Some(w): the priority moves by w (see [`contribution`]).
    pub weight: Option<i32>,
    pub reverse: bool,
}

impl Tracked {
    /// From a `track_script` entry: its own weight overrides the script's; a script
    /// weight of 0 means FAULT.
    pub fn script(entry: &TrackEntry, script: Option<&VrrpScript>) -> Self {
        let weight = entry
            .weight
            .or(script.map(|s| s.weight))
            .filter(|w| *w != 0);
        Self {
            what: format!("script {}", entry.name),
            weight,
            reverse: entry.reverse || script.is_some_and(|s| s.reverse) && entry.weight.is_none(),
        }
    }

    /// From a `track_interface` entry: without a weight, down means FAULT.
    pub fn interface(entry: &TrackEntry) -> Self {
        Self {
            what: format!("interface {}", entry.name),
            weight: entry.weight.filter(|w| *w != 0),
            reverse: entry.reverse,
        }
    }

    /// (fault, priority delta) for the verdict `up`, keepalived's rules: a positive
    /// weight is added while up, a negative one while down; `reverse` swaps up and down.
    pub fn contribution(&self, up: bool) -> (bool, i32) {
        let effective_up = up != self.reverse;
        match self.weight {
            None => (!effective_up, 0),
            Some(w) if w > 0 => (false, if effective_up { w } else { 0 }),
            Some(w) => (false, if effective_up { 0 } else { w }),
        }
    }
}

/// The combined effect of everything an instance tracks.
pub fn combine(items: impl IntoIterator<Item = (Tracked, bool)>) -> (bool, i32) {
    items
        .into_iter()
        .map(|(t, up)| t.contribution(up))
        .fold((false, 0), |(f, d), (f2, d2)| (f || f2, d + d2))
}

/// What an instance reports on entering `state`: the machine's Initialize is
/// keepalived's STOP (the instance stopped).
impl From<State> for VrrpState {
    fn from(state: State) -> Self {
        match state {
            State::Initialize => Self::Stop,
            State::Backup => Self::Backup,
            State::Master => Self::Master,
            State::Fault => Self::Fault,
        }
    }
}

/// Runs the notify commands of `inst` for a transition to `state`, in the background,
/// as `policy` says (see [`crate::process`]). keepalived appends the generic `notify`'s
/// arguments: `INSTANCE name state priority`, each one argument.
pub fn notify(inst: &VrrpInstance, state: VrrpState, priority: u8, policy: &Policy) {
    let specific = match state {
        VrrpState::Master => (
            "notify_master",
            &inst.notify_master,
            &inst.notify_master_user,
        ),
        VrrpState::Backup => (
            "notify_backup",
            &inst.notify_backup,
            &inst.notify_backup_user,
        ),
        VrrpState::Fault => ("notify_fault", &inst.notify_fault, &inst.notify_fault_user),
        VrrpState::Stop => ("notify_stop", &inst.notify_stop, &inst.notify_stop_user),
    };
    let _instance = info_span!("notify", instance = %inst.name).entered();
    if let (key, Some(command), user) = specific {
        info!(%command, "notify");
        process::spawn_notify(policy, key, command, user.as_deref(), &[]);
    }
    if let Some(generic) = &inst.notify {
        let (state, priority) = (state.to_string(), priority.to_string());
        let args = ["INSTANCE", inst.name.as_str(), &state, &priority];
        info!(command = %generic, ?args, "notify");
        let user = inst.notify_user.as_deref();
        process::spawn_notify(policy, "notify", generic, user, &args);
    }
}

/// Runs the notify commands of sync group `group` for its transition to `state`, as
/// keepalived does: the state's own command, and the generic `notify` with `GROUP name
/// state` appended.
pub fn notify_group(group: &VrrpSyncGroup, state: VrrpState, policy: &Policy) {
    let specific = match state {
        VrrpState::Master => (
            "notify_master",
            &group.notify_master,
            &group.notify_master_user,
        ),
        VrrpState::Backup => (
            "notify_backup",
            &group.notify_backup,
            &group.notify_backup_user,
        ),
        VrrpState::Fault => (
            "notify_fault",
            &group.notify_fault,
            &group.notify_fault_user,
        ),
        VrrpState::Stop => ("notify_stop", &group.notify_stop, &group.notify_stop_user),
    };
    let _group = info_span!("notify", sync_group = %group.name).entered();
    if let (key, Some(command), user) = specific {
        info!(%command, "notify");
        process::spawn_notify(policy, key, command, user.as_deref(), &[]);
    }
    if let Some(generic) = &group.notify {
        let state = state.to_string();
        let args = ["GROUP", group.name.as_str(), &state];
        info!(command = %generic, ?args, "notify");
        let user = group.notify_user.as_deref();
        process::spawn_notify(policy, "notify", generic, user, &args);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(weight: Option<i32>, reverse: bool) -> Tracked {
        Tracked {
            what: "x".into(),
            weight,
            reverse,
        }
    }

    #[test]
    fn keepalived_weight_rules() {
        assert_eq!(t(None, false).contribution(false), (true, 0));
        assert_eq!(t(None, false).contribution(true), (false, 0));
        assert_eq!(t(Some(-30), false).contribution(false), (false, -30));
        assert_eq!(t(Some(-30), false).contribution(true), (false, 0));
        assert_eq!(t(Some(20), false).contribution(true), (false, 20));
        assert_eq!(t(Some(20), false).contribution(false), (false, 0));
        assert_eq!(t(Some(-30), true).contribution(true), (false, -30));
        assert_eq!(t(None, true).contribution(true), (true, 0));
        let all = [
            (t(Some(-30), false), false),
            (t(Some(20), false), true),
            (t(None, false), true),
        ];
        assert_eq!(combine(all), (false, -10));
    }

    /// The `vrrp_script.chk` of a config whose script line is `line`.
    fn vrrp_script(line: &str) -> VrrpScript {
        let text = format!("[vrrp_script.chk]\nscript = \"{line}\"\ninterval = 0.05\n");
        Config::parse(&text, "t.toml").unwrap().vrrp_script["chk"].clone()
    }

    #[tokio::test]
    async fn a_script_refused_at_start_is_disabled_as_keepalived_does() {
        let policy = Policy::default();
        let refused = ScriptTracker::spawn("chk", &vrrp_script("/no/such/xlb-chk"), &policy);
        assert!(refused.disabled, "not found: disabled");
        let working = ScriptTracker::spawn("ok", &vrrp_script("/bin/true"), &policy);
        assert!(!working.disabled);
        assert!(*working.verdict.borrow());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(*working.verdict.borrow());
    }

    #[test]
    fn a_stopped_machine_reports_keepalived_s_stop() {
        assert_eq!(VrrpState::from(State::Initialize).to_string(), "STOP");
        assert_eq!(VrrpState::from(State::Master).to_string(), "MASTER");
        assert_eq!(VrrpState::from(State::Backup).to_string(), "BACKUP");
        assert_eq!(VrrpState::from(State::Fault).to_string(), "FAULT");
    }
}
