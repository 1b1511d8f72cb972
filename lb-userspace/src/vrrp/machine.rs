//! The VRRP state machine (RFC 5798 / RFC 9568 section 6, RFC 3768 section 6 for
//! version 2) as a pure function: `step(state, now, event) -> actions`.
//!
//! No sockets, no tasks, no clock. The driver owns one [`Machine`] per instance, feeds it
//! [`Event`]s with the time they happened, carries out the returned [`Action`]s in order,
//! and sleeps until [`Machine::next_deadline`] to send [`Event::Tick`]. Timers are
//! deadlines held inside the machine, so a test drives it with a virtual clock
//! (`Instant::now()` plus `Duration`s) and reads like a recorded exchange: these events
//! at these times in, these actions out.
//!
//! ```text
//!   Initialize --Startup----------------------------------> Backup (Master_Down_Timer)
//!   Initialize --Startup, owner (priority 255)------------> Master (advert, VIPs, GARP)
//!   Initialize --Startup while faulted--------------------> Fault
//!   Backup     --master-down deadline---------------------> Master
//!   Master     --higher priority, or same from higher IP--> Backup (VIPs removed)
//!   Backup, Master --Fault(true)--------------------------> Fault (Master: priority 0)
//!   Fault      --Fault(false)-----------------------------> Backup, or Master if owner
//!   Master     --Reference(false)-------------------------> Fault (priority 0)
//!   Backup     --master-down deadline, Reference(false)---> Fault instead of Master
//!   Fault      --Reference(true), no Fault(true)----------> Backup, or Master if owner
//!   any        --Shutdown---------------------------------> Initialize (Master: priority 0)
//! ```
//!
//! Timing is computed in [`Duration`] with nanosecond precision, never truncated to whole
//! seconds or centiseconds: priority 100 with a 1 s interval gives a Master_Down_Interval
//! of exactly 3.609375 s (v2), and priority 100 at 100 ms (v3) exactly 360.9375 ms.
//! keepalived's `down_timer_adverts` ([`Params::down_timer_adverts`]) replaces the RFCs'
//! factor 3: with 5, priority 100 at 1 s waits 5.609375 s.
//!
//! # Choices where the RFC leaves room (keepalived 2.2's behaviour unless noted)
//!
//! - **Address owner** (configured priority 255): becomes Master at [`Event::Startup`]
//!   and when a fault clears, whatever [`Initial`] says (RFC 5798 6.4.1). keepalived
//!   does the same when `state` is not given (it derives MASTER from priority 255); with
//!   an explicit `state BACKUP` it waits one Master_Down_Interval first. The config
//!   defaults `state` to BACKUP, so xlb cannot tell the two apart and follows the RFC.
//!   The owner's effective priority stays 255 whatever the trackers say.
//! - **`state MASTER` without being the owner** ([`Initial::Master`]): keepalived does not
//!   take over at once. It enters BACKUP with a short master-down timer of one
//!   Master_Adver_Interval plus the smallest skew (`(1 x Master_Adver_Interval) / 256`
//!   in v3, 1/256 s in v2) "to ensure there is no other master", so it takes over after
//!   about one interval unless it hears an equal-or-higher-priority master first
//!   (`vrrp_init_state` in keepalived's `vrrp_scheduler.c`). The first accepted advert
//!   rearms the ordinary Master_Down_Interval. keepalived also clears `nopreempt` and
//!   `preempt_delay` on such an instance ("will not work with initial state MASTER"):
//!   this machine ignores both for it.
//! - **`preempt_delay`**: keepalived's meaning, read from `vrrp_state_backup` in its
//!   `vrrp.c`, not the "after startup" wording of older manuals. A timeout never waits:
//!   with no master heard, the backup takes over after Master_Down_Interval as usual. What
//!   is delayed is preempting a *lower-priority* master: the first lower-priority advert
//!   heard in BACKUP starts a preempt clock of `preempt_delay`; until it runs out,
//!   lower-priority adverts are accepted as if `nopreempt` were set (they rearm the
//!   master-down timer and, in v3, set Master_Adver_Interval). An equal-or-higher-priority
//!   advert stops the clock, and entering BACKUP resets it. Once it has run out, the next
//!   lower-priority advert is discarded and the master-down timer (last rearmed by an
//!   accepted advert) takes us over: preemption about `preempt_delay +
//!   Master_Down_Interval` after the lower-priority master was first heard, as
//!   keepalived's manual describes. The clock is compared on receipt, so it needs no
//!   deadline of its own.
//! - **Master hearing a lower priority** (or an equal priority from a lower address): the
//!   split brain heals at once: send an advert now (and rearm the advert timer from now,
//!   as keepalived does after every received packet) and re-send gratuitous ARP / NA, so
//!   neighbours that followed the other master come back. The RFC would discard it.
//! - **Master hearing its own priority from its own address** (a looped-back advert, or
//!   a misconfigured twin): ignored, as keepalived does (it logs a warning).
//! - **Priority 0 heard by a Master**: send an advert at once and rearm the advert timer
//!   (RFC 5798 6.4.3).
//! - **Effective priority** = configured + [`Event::SetPriorityDelta`], clamped to
//!   1..=254 (keepalived's `vrrp_set_effective_priority`). A Master advertises the new
//!   value at its next advert. A Backup's running master-down deadline moves by the change
//!   in Skew_Time, as keepalived does, so a backup that became more important waits less.
//! - **Two address owners**: the RFC's tie-break on the primary address decides; keepalived's
//!   extra "rogue owner" back-off is not implemented.
//! - **Fault**: [`Event::Fault`]`(true)` takes Backup or Master to FAULT (a Master sends
//!   priority 0 first and removes the VIPs, as keepalived does). [`Event::Fault`]`(false)`
//!   leaves FAULT for Backup with a fresh Master_Down_Interval at the configured interval
//!   (or Master at once for the owner). A fault reported in Initialize is remembered:
//!   [`Event::Startup`] then goes straight to FAULT.
//! - **Reload** ([`Event::Reconfigure`]): the state is kept, as keepalived keeps it
//!   (`restore_vrrp_state`). The new configured priority makes a new effective priority
//!   with the trackers' delta, which a Master advertises at its next advert. A Master's
//!   next advert stays due when it was (or comes sooner, at one new interval from now, if
//!   the interval shrank); the adverts after it follow the new interval. A Backup's
//!   running master-down deadline moves by the change in Master_Down_Interval (a new
//!   priority moves Skew_Time, a new v2 interval or `down_timer_adverts` the rest), never
//!   into the past; a v3 Backup keeps the interval it learned from the master. A changed
//!   `preempt_delay` restarts the preempt clock at the next lower-priority advert. No
//!   transition comes of it directly: from then on the usual rules apply (a Backup whose
//!   priority now beats the master's preempts it as any would; a Master whose priority
//!   fell below a preempting Backup's is taken over).
//! - **Sync groups** (`vrrp_sync_group`, keepalived's `vrrp_sync.c`): the group's rules
//!   live in `super::sync`; the machine only carries them out. [`Event::SyncWait`] holds
//!   a due takeover for another Master_Down_Interval (the group cannot go MASTER yet);
//!   [`Event::SyncMaster`] takes a Backup to Master at once, [`Event::SyncBackup`] a
//!   Master to Backup (no priority-0 advert: a step down, not a resignation); both with
//!   [`Reason::SyncGroup`]. A group fault reaches the machine as [`Event::Fault`].
//! - **Late driver**: every [`Machine::step`] first fires the deadlines that are due at
//!   `now` (`deadline <= now`), then handles its event. A [`Event::Tick`] is just a step
//!   with nothing else to do. A Master whose driver slept through several advert times
//!   sends one advert, not a burst.
//!
//! # Order of actions
//!
//! Within one step, actions come in the order they must be carried out. A state change
//! ends with its [`Action::Transition`], after the actions that make it real: entering
//! Master is `SendAdvert`, `AddVips`, `SendGratuitous`, `Transition` (the advert first so
//! the old master drops the VIPs before our gratuitous ARPs, as keepalived does; notify
//! scripts that run on `Transition` then see the VIPs in place); leaving Master for
//! Initialize or Fault is `SendAdvert { priority: 0 }`, `RemoveVips`, `Transition`.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::packet::Version;

#[cfg(test)]
mod tests;

/// Priority of the address owner (RFC 5798 5.2.4).
pub const PRIORITY_OWNER: u8 = 255;
/// Priority a Master sends when it resigns (RFC 5798 5.2.4).
pub const PRIORITY_STOP: u8 = 0;
/// Largest `preempt_delay` accepted, as keepalived's range (0..=1000 s).
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// Largest `down_timer_adverts`, as keepalived's range (1..=100).
const MAX_DOWN_TIMER_ADVERTS: u32 = 100;

/// keepalived's `state`: what the instance does at startup when it is not the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Initial {
    /// Wait a full Master_Down_Interval for a master (keepalived's default).
    #[default]
    Backup,
    /// Take over after one advert interval unless a master is heard (see the module
    /// documentation); `preempt = false` and `preempt_delay` are ignored.
    Master,
}

/// What the machine needs to know about its instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// The codec's version. It decides the skew formula (v2: Skew_Time = (256 - Priority)
    /// / 256 s, intervals in whole seconds; v3: ((256 - Priority) x Master_Adver_Interval)
    /// / 256, intervals in centiseconds) and whether a Backup adopts the Master's
    /// advertised interval (v3 only).
    pub version: Version,
    /// Virtual router id, 1..=255. The machine does not use it beyond validation; the
    /// driver demultiplexes adverts by it.
    pub vrid: u8,
    /// Configured priority, 1..=255; 255 = address owner.
    pub priority: u8,
    /// Advertisement_Interval. v2: whole seconds 1..=255; v3: a multiple of 10 ms,
    /// 10 ms..=40.95 s.
    pub advert_int: Duration,
    /// Preempt_Mode: take over from a lower-priority master. keepalived's `nopreempt`
    /// sets it false.
    pub preempt: bool,
    /// keepalived's `preempt_delay`, 0..=1000 s (see the module documentation).
    pub preempt_delay: Duration,
    /// keepalived's `state`.
    pub initial_state: Initial,
    /// keepalived's `down_timer_adverts`, 1..=100: Master_Down_Interval is this many
    /// Master_Adver_Intervals plus Skew_Time. The RFCs' 3 unless configured (and when
    /// a serialized `Params` leaves it out).
    #[serde(default = "rfc_down_timer_adverts")]
    pub down_timer_adverts: u32,
    /// Our primary address, the source of our adverts: breaks ties between equal
    /// priorities (the higher address wins).
    pub primary_addr: IpAddr,
}

fn rfc_down_timer_adverts() -> u32 {
    3
}

/// Why [`Machine::new`] refused its [`Params`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("virtual router id 0 is reserved (1..=255)")]
    Vrid0,
    #[error("priority 0 is reserved for a master that resigns (1..=255)")]
    Priority0,
    #[error("VRRPv2 advert interval {0:?} is not a whole number of seconds in 1..=255")]
    AdvertIntV2(Duration),
    #[error("VRRPv3 advert interval {0:?} is not a multiple of 10 ms in 10 ms..=40.95 s")]
    AdvertIntV3(Duration),
    #[error("preempt_delay {0:?} is out of range (0..=1000 s)")]
    PreemptDelay(Duration),
    #[error("down_timer_adverts {0} is out of range (1..=100)")]
    DownTimerAdverts(u32),
}

impl Params {
    /// Checks the ranges the protocol and the timers rely on.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.vrid == 0 {
            return Err(ParamsError::Vrid0);
        }
        if self.priority == PRIORITY_STOP {
            return Err(ParamsError::Priority0);
        }
        let int = self.advert_int;
        match self.version {
            Version::V2 => {
                if int.subsec_nanos() != 0 || !(1..=255).contains(&int.as_secs()) {
                    return Err(ParamsError::AdvertIntV2(int));
                }
            }
            Version::V3 => {
                let ns = int.as_nanos();
                let cs = 10_000_000;
                if !ns.is_multiple_of(cs) || !(1..=4095).contains(&(ns / cs)) {
                    return Err(ParamsError::AdvertIntV3(int));
                }
            }
        }
        if self.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(ParamsError::PreemptDelay(self.preempt_delay));
        }
        if !(1..=MAX_DOWN_TIMER_ADVERTS).contains(&self.down_timer_adverts) {
            return Err(ParamsError::DownTimerAdverts(self.down_timer_adverts));
        }
        Ok(())
    }
}

/// RFC 5798 states, plus keepalived's FAULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Not running: before [`Event::Startup`], after [`Event::Shutdown`].
    Initialize,
    Backup,
    Master,
    /// Running, but a tracked interface (or tracker) is down: no adverts, no VIPs, no
    /// timers.
    Fault,
}

impl State {
    /// keepalived's spelling, as notify scripts expect it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initialize => "INIT",
            Self::Backup => "BACKUP",
            Self::Master => "MASTER",
            Self::Fault => "FAULT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened, as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The instance starts (RFC 5798 6.4.1 Startup).
    Startup,
    /// The instance stops (daemon shutdown, instance removed by a reload).
    Shutdown,
    /// A valid advert for this instance (the codec and the driver have checked version,
    /// vrid, TTL, checksum, authentication and, for v2, that `interval` matches ours).
    Advert {
        /// Source address of the packet: the sender's primary address.
        src: IpAddr,
        priority: u8,
        /// The advert's Max Adver Int (v3) / Adver Int (v2).
        interval: Duration,
    },
    /// `true`: the instance's interface or a tracked interface / tracker went down;
    /// `false`: all are up again. Absolute, so repeating it is harmless.
    Fault(bool),
    /// `track_reference`: whether any reference address answers (true) or none does
    /// (false). Absolute. Unreachable: a Master goes to Fault, and a Backup whose
    /// master-down timer fires goes to Fault instead of Master (a Backup that still hears
    /// its master stays). Reachable again: a Fault entered for this alone goes to Backup.
    Reference(bool),
    /// The sum of the weights of the trackers now in effect (not an increment): the
    /// effective priority becomes configured + this, clamped to 1..=254 (the owner stays
    /// at 255). Absolute, so a lost or repeated message cannot make it drift.
    SetPriorityDelta(i32),
    /// Time passed: fire the deadlines that are due.
    Tick,
    /// A reload changed the instance's settings: the machine keeps its state and takes
    /// the new ones (see [`Machine::step`] and the module documentation, "Reload"). A
    /// change of version or virtual router id is a restart, never this event: a machine
    /// given one ignores the event (as it does invalid [`Params`]).
    Reconfigure(Params),
    /// `vrrp_sync_group`: another member became MASTER. A Backup becomes Master at once
    /// (advert, VIPs, gratuitous ARP), as keepalived's `vrrp_sync_master`; other states
    /// ignore it.
    SyncMaster,
    /// `vrrp_sync_group`: another member stepped down to BACKUP. A Master steps down too
    /// (VIPs removed, a fresh Master_Down_Interval), as keepalived's `vrrp_sync_backup`.
    SyncBackup,
    /// `vrrp_sync_group`: the master-down timer fired but the group cannot go MASTER yet
    /// (another member still hears its master). A Backup whose master-down deadline is
    /// due stays Backup and waits another Master_Down_Interval, as keepalived's
    /// `vrrp_sync_can_goto_master`. Handled before the due deadlines fire.
    SyncWait,
}

/// What the driver must do, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Send an advert with this priority (0 when resigning).
    SendAdvert { priority: u8 },
    /// Add the virtual addresses.
    AddVips,
    /// Remove the virtual addresses.
    RemoveVips,
    /// Start a gratuitous ARP / unsolicited NA burst for the VIPs.
    SendGratuitous,
    /// The state changed; logged by the driver, and what notify scripts react to.
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// Why a state changed. A typed value rather than a string so tests and notify code can
/// match on it; [`Reason::as_str`] gives the log text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// Initialize -> Backup at startup.
    Startup,
    /// -> Master at startup because we own the addresses (priority 255).
    AddressOwner,
    /// Backup -> Master: no advert accepted within Master_Down_Interval.
    MasterDown,
    /// Backup -> Master: the master resigned (priority 0) and Skew_Time passed.
    MasterResigned,
    /// Backup -> Master: we discarded a lower-priority master's adverts (preemption).
    Preempt,
    /// Master -> Backup: an advert with a higher priority.
    HigherPriority,
    /// Master -> Backup: an advert with our priority from a higher primary address.
    HigherAddress,
    /// -> Initialize.
    Shutdown,
    /// -> Fault.
    Fault,
    /// Fault -> Backup, or Fault -> Master for the owner.
    FaultCleared,
    /// Backup -> Master or Master -> Backup with another member of its sync group.
    SyncGroup,
    /// Master -> Fault, or Backup -> Fault instead of Master: no reference address answers.
    ReferenceLost,
    /// Fault -> Backup: a reference address answers again.
    ReferenceRegained,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::AddressOwner => "address owner (priority 255)",
            Self::MasterDown => "master down timer expired",
            Self::MasterResigned => "master resigned (priority 0)",
            Self::Preempt => "preempting a lower-priority master",
            Self::HigherPriority => "advert with higher priority",
            Self::HigherAddress => "advert with equal priority from a higher address",
            Self::Shutdown => "shutdown",
            Self::Fault => "fault",
            Self::FaultCleared => "fault cleared",
            Self::SyncGroup => "sync group",
            Self::ReferenceLost => "no reference address answers",
            Self::ReferenceRegained => "a reference address answers again",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state with the one timer it runs, so a deadline cannot outlive its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Initialize,
    Backup { master_down: Instant },
    Master { adver: Instant },
    Fault,
}

/// One VRRP instance's protocol state. See the module documentation.
#[derive(Debug, Clone)]
pub struct Machine {
    params: Params,
    phase: Phase,
    /// Latest [`Event::SetPriorityDelta`].
    priority_delta: i32,
    /// Configured priority plus `priority_delta`, clamped; 255 for the owner.
    effective: u8,
    /// Master_Adver_Interval: the configured interval, or in v3 the interval of the
    /// master a Backup listens to.
    master_adver_int: Duration,
    /// Latest [`Event::Fault`].
    faulted: bool,
    /// Latest [`Event::Reference`], negated: no reference address answers.
    isolated: bool,
    /// keepalived's `preempt_time`: when a lower-priority master may be preempted.
    preempt_at: Option<Instant>,
    /// The reason to give if the master-down timer fires now.
    takeover_reason: Reason,
}

impl Machine {
    /// A machine in [`State::Initialize`]; nothing happens until [`Event::Startup`].
    pub fn new(params: Params) -> Result<Self, ParamsError> {
        params.validate()?;
        Ok(Self {
            effective: params.priority,
            master_adver_int: params.advert_int,
            params,
            phase: Phase::Initialize,
            priority_delta: 0,
            faulted: false,
            isolated: false,
            preempt_at: None,
            takeover_reason: Reason::MasterDown,
        })
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Initialize => State::Initialize,
            Phase::Backup { .. } => State::Backup,
            Phase::Master { .. } => State::Master,
            Phase::Fault => State::Fault,
        }
    }

    /// The priority we advertise and compare with: configured plus the trackers' delta,
    /// clamped to 1..=254, or 255 for the address owner.
    pub fn effective_priority(&self) -> u8 {
        self.effective
    }

    /// The latest [`Event::SetPriorityDelta`] (0 until one arrives).
    pub fn priority_delta(&self) -> i32 {
        self.priority_delta
    }

    /// The latest [`Event::Fault`], remembered in every state.
    pub fn faulted(&self) -> bool {
        self.faulted
    }

    /// Whether we are the address owner (configured priority 255).
    pub fn is_owner(&self) -> bool {
        self.params.priority == PRIORITY_OWNER
    }

    /// Master_Adver_Interval now in force (v3: the master's, while Backup).
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_int
    }

    /// Skew_Time for the effective priority and Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        self.skew_for(self.effective)
    }

    /// Master_Down_Interval = `down_timer_adverts` (the RFCs' 3 by default) x
    /// Master_Adver_Interval + Skew_Time, as keepalived's `VRRP_MS_DOWN_TIMER`.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_int * self.params.down_timer_adverts + self.skew_time()
    }

    /// Whether a Backup's master-down deadline is due at `now`: the next step would
    /// take it to Master (what a sync group must agree to first: [`Event::SyncWait`]).
    pub fn takeover_due(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Backup { master_down } if master_down <= now)
    }

    /// When the driver must send [`Event::Tick`]: the master-down deadline in Backup,
    /// the next advert in Master, none otherwise. It may be in the past (the driver then
    /// ticks at once).
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Backup { master_down } => Some(master_down),
            Phase::Master { adver } => Some(adver),
            Phase::Initialize | Phase::Fault => None,
        }
    }

    /// Handles `event`, which happened at `now`, after firing any deadline due at `now`.
    /// Returns the actions to carry out, in order.
    pub fn step(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if event == Event::SyncWait && self.takeover_due(now) {
            self.phase = Phase::Backup {
                master_down: now + self.master_down_interval(),
            };
        }
        self.expire(now, &mut out);
        match event {
            Event::Startup => self.startup(now, &mut out),
            Event::Shutdown => {
                if self.phase != Phase::Initialize {
                    self.change(Phase::Initialize, Reason::Shutdown, &mut out);
                }
            }
            Event::Advert {
                src,
                priority,
                interval,
            } => match self.phase {
                Phase::Backup { .. } => self.backup_rx(now, priority, interval),
                Phase::Master { .. } => self.master_rx(now, src, priority, interval, &mut out),
                Phase::Initialize | Phase::Fault => {}
            },
            Event::Fault(down) => self.fault(now, down, &mut out),
            Event::Reference(reachable) => self.reference(now, reachable, &mut out),
            Event::SetPriorityDelta(delta) => {
                self.set_priority_delta(delta, now);
                self.expire(now, &mut out);
            }
            Event::Reconfigure(params) => {
                self.reconfigure(now, params);
                self.expire(now, &mut out);
            }
            Event::SyncMaster => {
                if let Phase::Backup { .. } = self.phase {
                    if self.isolated {
                        self.change(Phase::Fault, Reason::ReferenceLost, &mut out);
                    } else {
                        self.change(self.master_phase(now), Reason::SyncGroup, &mut out);
                    }
                }
            }
            Event::SyncBackup => {
                if let Phase::Master { .. } = self.phase {
                    self.master_adver_int = self.params.advert_int;
                    let next = Phase::Backup {
                        master_down: now + self.master_down_interval(),
                    };
                    self.change(next, Reason::SyncGroup, &mut out);
                }
            }
            Event::Tick | Event::SyncWait => {}
        }
        out
    }

    // ----- events -----

    fn startup(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.phase != Phase::Initialize {
            return;
        }
        if self.faulted {
            self.change(Phase::Fault, Reason::Fault, out);
        } else if self.is_owner() {
            self.change(self.master_phase(now), Reason::AddressOwner, out);
        } else {
            self.master_adver_int = self.params.advert_int;
            let wait = match self.params.initial_state {
                Initial::Backup => self.master_down_interval(),
                // keepalived: one interval plus the smallest skew.
                Initial::Master => self.master_adver_int + self.skew_for(PRIORITY_OWNER),
            };
            self.change(
                Phase::Backup {
                    master_down: now + wait,
                },
                Reason::Startup,
                out,
            );
        }
    }

    /// RFC 5798 6.4.2, "If an ADVERTISEMENT is received", with keepalived's preempt_delay.
    fn backup_rx(&mut self, now: Instant, priority: u8, interval: Duration) {
        if priority == PRIORITY_STOP {
            self.phase = Phase::Backup {
                master_down: now + self.skew_time(),
            };
            self.takeover_reason = Reason::MasterResigned;
            return;
        }
        let delay = self.preempt_delay();
        let holding = !delay.is_zero() && self.preempt_at.is_none_or(|at| at > now);
        if !self.preempt() || priority >= self.effective || holding {
            self.adopt_interval(interval);
            self.phase = Phase::Backup {
                master_down: now + self.master_down_interval(),
            };
            self.takeover_reason = Reason::MasterDown;
            if !delay.is_zero() {
                if priority >= self.effective {
                    self.preempt_at = None;
                } else if self.preempt_at.is_none() {
                    self.preempt_at = Some(now + delay);
                }
            }
        } else {
            // Discard: the master-down timer keeps running and takes us over.
            self.takeover_reason = Reason::Preempt;
        }
    }

    /// RFC 5798 6.4.3, "If an ADVERTISEMENT is received", with keepalived's split-brain
    /// healing for lower priorities.
    fn master_rx(
        &mut self,
        now: Instant,
        src: IpAddr,
        priority: u8,
        interval: Duration,
        out: &mut Vec<Action>,
    ) {
        let ours = self.effective;
        let me = self.params.primary_addr;
        // `IpAddr`'s order is the numeric order of the address within a family.
        if priority == PRIORITY_STOP {
            self.advertise_now(now, out);
        } else if priority > ours || (priority == ours && src > me) {
            let reason = if priority > ours {
                Reason::HigherPriority
            } else {
                Reason::HigherAddress
            };
            // One last advert at our own priority before stepping down: if this was a
            // split brain healing, the winner may never have heard us (it heard nothing
            // lower), so it would not re-send gratuitous ARP and clients would stay on our
            // MAC. Hearing this advert, it does (the branch below). keepalived does not,
            // and leaves clients on the loser until their ARP entries expire.
            out.push(Action::SendAdvert { priority: ours });
            self.adopt_interval(interval);
            let next = Phase::Backup {
                master_down: now + self.master_down_interval(),
            };
            self.change(next, reason, out);
        } else if priority == ours && src == me {
            // Our own advert looped back, or a twin with our address: nothing to decide.
        } else {
            self.advertise_now(now, out);
            out.push(Action::SendGratuitous);
        }
    }

    fn fault(&mut self, now: Instant, down: bool, out: &mut Vec<Action>) {
        self.faulted = down;
        match (self.phase, down) {
            (Phase::Backup { .. } | Phase::Master { .. }, true) => {
                self.change(Phase::Fault, Reason::Fault, out);
            }
            (Phase::Fault, false) if self.isolated && self.is_owner() => {}
            (Phase::Fault, false) => {
                let next = if self.is_owner() {
                    self.master_phase(now)
                } else {
                    self.master_adver_int = self.params.advert_int;
                    Phase::Backup {
                        master_down: now + self.master_down_interval(),
                    }
                };
                self.change(next, Reason::FaultCleared, out);
            }
            _ => {}
        }
    }

    /// See [`Event::Reference`].
    fn reference(&mut self, now: Instant, reachable: bool, out: &mut Vec<Action>) {
        self.isolated = !reachable;
        match (self.phase, reachable) {
            (Phase::Master { .. }, false) => {
                self.change(Phase::Fault, Reason::ReferenceLost, out);
            }
            (Phase::Fault, true) if !self.faulted => {
                let next = if self.is_owner() {
                    self.master_phase(now)
                } else {
                    self.master_adver_int = self.params.advert_int;
                    Phase::Backup {
                        master_down: now + self.master_down_interval(),
                    }
                };
                self.change(next, Reason::ReferenceRegained, out);
            }
            _ => {}
        }
    }

    /// Whether no reference address answers (the latest [`Event::Reference`]).
    pub fn isolated(&self) -> bool {
        self.isolated
    }

    fn set_priority_delta(&mut self, delta: i32, now: Instant) {
        self.priority_delta = delta;
        let old_skew = self.skew_time();
        self.effective = self.effective_for(delta);
        let new_skew = self.skew_time();
        // keepalived moves the running master-down deadline by the change in the
        // interval, which is the change in Skew_Time.
        self.move_master_down(old_skew, new_skew, now);
    }

    /// See "Reload" in the module documentation.
    fn reconfigure(&mut self, now: Instant, params: Params) {
        let p = &self.params;
        if params.version != p.version || params.vrid != p.vrid || params.validate().is_err() {
            return;
        }
        let old_down = self.master_down_interval();
        let old_int = p.advert_int;
        if params.preempt_delay != p.preempt_delay {
            self.preempt_at = None;
        }
        self.params = params;
        self.effective = self.effective_for(self.priority_delta);
        match &mut self.phase {
            Phase::Master { adver } => {
                self.master_adver_int = params.advert_int;
                *adver = (*adver).min(now + params.advert_int);
            }
            // A v3 Backup keeps the interval it learned from the master.
            Phase::Backup { .. }
                if params.version == Version::V3 && self.master_adver_int != old_int => {}
            _ => self.master_adver_int = params.advert_int,
        }
        let new_down = self.master_down_interval();
        self.move_master_down(old_down, new_down, now);
    }

    /// The effective priority for the trackers' `delta` (see [`Event::SetPriorityDelta`]).
    fn effective_for(&self, delta: i32) -> u8 {
        if self.is_owner() {
            PRIORITY_OWNER
        } else {
            let total = i64::from(self.params.priority) + i64::from(delta);
            u8::try_from(total.clamp(1, i64::from(PRIORITY_OWNER - 1))).expect("clamped to 1..=254")
        }
    }

    /// A Backup's running master-down deadline moves by the change from `old` to `new`
    /// in the interval it counts, never into the past.
    fn move_master_down(&mut self, old: Duration, new: Duration, now: Instant) {
        if let Phase::Backup { master_down } = &mut self.phase {
            *master_down = if new >= old {
                *master_down + (new - old)
            } else {
                master_down.checked_sub(old - new).unwrap_or(now).max(now)
            };
        }
    }

    /// Fires the deadline due at `now`, if any.
    fn expire(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.phase {
            // Isolated, a master is still heard (only a lower one, whose adverts we
            // discard to preempt): it keeps the VIPs, we stay BACKUP.
            Phase::Backup { master_down }
                if master_down <= now
                    && self.isolated
                    && self.takeover_reason == Reason::Preempt =>
            {
                self.phase = Phase::Backup {
                    master_down: now + self.master_down_interval(),
                };
                self.takeover_reason = Reason::MasterDown;
            }
            Phase::Backup { master_down } if master_down <= now && self.isolated => {
                self.change(Phase::Fault, Reason::ReferenceLost, out);
            }
            Phase::Backup { master_down } if master_down <= now => {
                let reason = self.takeover_reason;
                self.change(self.master_phase(now), reason, out);
            }
            Phase::Master { adver } if adver <= now => {
                out.push(Action::SendAdvert {
                    priority: self.effective,
                });
                // Keep the cadence, but never schedule into the past after a late tick.
                let int = self.params.advert_int;
                let next = adver + int;
                self.phase = Phase::Master {
                    adver: if next > now { next } else { now + int },
                };
            }
            _ => {}
        }
    }

    // ----- the one place states change -----

    /// Leaves the current state for `next`: exit actions of the old state, entry actions
    /// of the new one, then the [`Action::Transition`] record.
    fn change(&mut self, next: Phase, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state();
        if from == State::Master {
            if matches!(next, Phase::Initialize | Phase::Fault) {
                out.push(Action::SendAdvert {
                    priority: PRIORITY_STOP,
                });
            }
            out.push(Action::RemoveVips);
        }
        match next {
            Phase::Master { .. } => {
                self.master_adver_int = self.params.advert_int;
                out.push(Action::SendAdvert {
                    priority: self.effective,
                });
                out.push(Action::AddVips);
                out.push(Action::SendGratuitous);
            }
            Phase::Backup { .. } => {
                self.preempt_at = None;
                self.takeover_reason = Reason::MasterDown;
            }
            Phase::Initialize | Phase::Fault => {}
        }
        self.phase = next;
        out.push(Action::Transition {
            from,
            to: self.state(),
            reason,
        });
    }

    // ----- helpers -----

    fn master_phase(&self, now: Instant) -> Phase {
        Phase::Master {
            adver: now + self.params.advert_int,
        }
    }

    /// Sends an advert now and restarts the advert interval from now.
    fn advertise_now(&mut self, now: Instant, out: &mut Vec<Action>) {
        out.push(Action::SendAdvert {
            priority: self.effective,
        });
        self.phase = self.master_phase(now);
    }

    /// v3: Master_Adver_Interval := the advert's interval (RFC 5798 6.4.2, 6.4.3). v2
    /// keeps the configured one. A zero interval (which the codec should refuse) would
    /// make the master-down timer fire at once, so it is ignored.
    fn adopt_interval(&mut self, interval: Duration) {
        if self.params.version == Version::V3 && !interval.is_zero() {
            self.master_adver_int = interval;
        }
    }

    /// Skew_Time for `priority`, exact to the nanosecond (rounded down).
    fn skew_for(&self, priority: u8) -> Duration {
        let weight = 256 - u128::from(priority);
        let base = match self.params.version {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => self.master_adver_int,
        };
        let ns = base.as_nanos() * weight / 256;
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    fn preempt(&self) -> bool {
        self.params.preempt || self.params.initial_state == Initial::Master
    }

    fn preempt_delay(&self) -> Duration {
        match self.params.initial_state {
            Initial::Backup => self.params.preempt_delay,
            Initial::Master => Duration::ZERO,
        }
    }
}
