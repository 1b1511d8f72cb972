//! The driver of one VRRP instance: it owns the pure [`Machine`] and carries out what it
//! decides through an [`InstanceIo`].
//!
//! Everything it does is one of eight reactions: an advert arrived (filter, feed the
//! machine), a deadline passed (tick the machine, send due gratuitous ARPs), a tracked
//! interface or a `vrrp_script` verdict changed (FAULT in or out, or a priority delta), one
//! of its VIPs was removed by someone else (put back and announced while MASTER), its
//! `vrrp_sync_group` told it to follow another member ([`Driver::sync_command`]: FAULT,
//! MASTER, BACKUP), a reload gave it new settings ([`Driver::reconfigure`]: applied in
//! place, the state kept), or the controller asked it to stop. In a sync group, a due
//! takeover first asks the group ([`super::sync`]), and each transition is reported to it. Notifications go out on every transition. The
//! machine's actions are carried out in the order given; the two that touch the data
//! plane go through the gate ([`InstanceIo::forward`]), so that a director that becomes
//! MASTER forwards before it announces the VIPs, and one that stops being MASTER stops
//! forwarding in the same step as it removes them.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::BoxStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use super::{
    addr_watch::{self, AddressRemoved, Removal},
    garp::GarpSchedule,
    io::InstanceIo,
    machine::{Action, Event, Machine, ParamsError, State},
    net::Received,
    receive::AdvertFilter,
    reference::ReferenceProbe,
    spec::InstanceSpec,
    status::{InstanceStatus, VrrpCounts},
    sync::{self, Link},
    trackers::Trackers,
};
use crate::netlink::LinkEvent;
use crate::netlink::route::{Removed, RouteError, RouteSet, is_route, is_rule};

#[cfg(test)]
mod tests;

/// One instance at work (see the module docs).
pub struct Driver<I> {
    spec: InstanceSpec,
    machine: Machine,
    io: I,
    /// Where our adverts come from: the machine's primary address.
    source: IpAddr,
    garp: GarpSchedule,
    adverts: AdvertFilter,
    trackers: Trackers,
    counts: VrrpCounts,
    /// The instance's `vrrp_sync_group`, if any.
    sync: Option<Link>,
    /// The own fault last reported to the sync group.
    reported_own_fault: Option<bool>,
    /// A due takeover is being held for the sync group (logged once per wait).
    sync_waiting: bool,
    /// Interfaces named by the virtual routes (or the instance's own) last seen down:
    /// the kernel drops the routes through an interface that goes down, and a MASTER
    /// adds them again when it is back.
    links_down: std::collections::HashSet<String>,
    /// `track_reference`: the latest verdict (true = a reference answers), none before
    /// the first round or without references.
    reference: Option<bool>,
}

/// Script verdicts as they change: (position in the spec's `track_scripts`, up).
pub type Verdicts = mpsc::Receiver<(usize, bool)>;

/// Where a running driver's events come from, besides its socket and its timers.
pub struct Inputs {
    /// Fires when the controller stops the instance.
    pub stop: oneshot::Receiver<()>,
    /// Link changes of every interface.
    pub links: BoxStream<'static, LinkEvent>,
    pub verdicts: Verdicts,
    /// Addresses removed from any interface.
    pub addresses: BoxStream<'static, AddressRemoved>,
    /// Routes and rules removed.
    pub routes: BoxStream<'static, Removed>,
    /// New settings from a reload.
    pub updates: mpsc::Receiver<Update>,
    /// What the instance's sync group tells it (none outside a group).
    pub sync: Option<mpsc::UnboundedReceiver<sync::Command>>,
}

/// A reload's new settings for a running instance (see [`Driver::reconfigure`]). Its
/// spec has the running one's virtual router id, interface, version and family (others
/// restart the instance: [`InstanceSpec::restart_reason`]).
pub struct Update {
    pub spec: InstanceSpec,
    /// Where adverts leave from under the new settings.
    pub source: IpAddr,
    /// What is tracked now and the channel of its script verdicts, when it changed.
    pub tracking: Option<(Trackers, Verdicts)>,
    /// The new sync group membership, when it changed: the link and command channel of
    /// the group joined, or none (the old group has been left).
    pub sync: Option<Membership>,
}

/// A sync group member's link and the channel of its group's commands.
pub type Membership = Option<(Link, mpsc::UnboundedReceiver<sync::Command>)>;

impl<I: InstanceIo> Driver<I> {
    /// A driver for `spec` whose adverts leave from `source`; nothing happens until
    /// [`start`](Self::start).
    pub fn new(
        spec: InstanceSpec,
        source: IpAddr,
        trackers: Trackers,
        io: I,
    ) -> Result<Self, ParamsError> {
        let machine = Machine::new(spec.machine_params(source))?;
        Ok(Self {
            adverts: AdvertFilter::new(
                &spec.name,
                source,
                spec.receive_params(),
                spec.receive_policy(),
            ),
            garp: spec.garp.clone(),
            spec,
            machine,
            io,
            source,
            trackers,
            counts: VrrpCounts::default(),
            sync: None,
            reported_own_fault: None,
            sync_waiting: false,
            links_down: std::collections::HashSet::new(),
            reference: None,
        })
    }

    /// Makes the driver a member of a sync group (before [`start`](Self::start)).
    pub fn with_sync(mut self, link: Option<Link>) -> Self {
        self.sync = link;
        self
    }

    /// Runs until `inputs.stop` fires, then resigns.
    pub async fn run(mut self, mut inputs: Inputs) {
        let spawn_probe = |spec: &InstanceSpec| {
            spec.reference
                .as_ref()
                .map(|r| ReferenceProbe::spawn(&spec.name, r))
        };
        let mut probe = spawn_probe(&self.spec);
        let mut probe_settings = self.spec.reference.clone();
        self.start().await;
        loop {
            let deadline = self.next_deadline();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = &mut inputs.stop => break,
                _ = sleep => self.deadline_passed().await,
                rx = self.io.recv() => match rx {
                    Ok(rx) => {
                        self.follow_socket().await;
                        self.received(&rx).await
                    }
                    // Closed since a rebind: FAULT until it opens (logged once there).
                    Err(e) if e.kind() == std::io::ErrorKind::NotConnected => {
                        self.follow_socket().await
                    }
                    Err(e) => {
                        warn!(instance = %self.spec.name, "receiving: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(ev) = inputs.links.next() => {
                    let up = self.follow_interface(&ev).await;
                    self.link_changed(ev.ifindex, up).await;
                    self.route_link(&ev).await;
                }
                Some((pos, up)) = inputs.verdicts.recv() => self.verdict(pos, up).await,
                Some(removed) = inputs.addresses.next() => self.address_removed(&removed).await,
                Some(removed) = inputs.routes.next() => self.route_removed(&removed).await,
                Some(mut update) = inputs.updates.recv() => {
                    if let Some(membership) = update.sync.take() {
                        inputs.sync = self.change_group(membership);
                    }
                    if let Some(verdicts) = self.reconfigure(update).await {
                        inputs.verdicts = verdicts;
                    }
                }
                Some(command) = recv_sync(&mut inputs.sync) => self.sync_command(command).await,
                Some(reachable) = recv_reference(&mut probe) => self.reference_changed(reachable).await,
            }
            if self.spec.reference != probe_settings {
                // A reload changed the references: applied in place, with a new probe
                // (whose first round decides at once).
                probe_settings = self.spec.reference.clone();
                probe = spawn_probe(&self.spec);
                if probe.is_none() {
                    self.reference_changed(true).await;
                    self.reference = None;
                    self.publish();
                }
            }
        }
        self.stop().await;
    }

    /// Reads the tracked links, clears what a predecessor may have left, and starts the
    /// machine.
    pub async fn start(&mut self) {
        // Initial link states: a tracked interface that is down starts us in FAULT.
        for ifindex in self.trackers.link_indexes() {
            let up = self.io.link_up(ifindex).await.unwrap_or(true);
            self.trackers.set_link(ifindex, up);
        }
        // A VIP left on the interface by a crashed predecessor would answer ARP for a
        // VIP we do not hold: remove it, as keepalived does at startup.
        let _ = self.io.remove_routes(&self.spec.routes).await;
        let _ = self.io.remove_vips(&self.spec.vips).await;
        // Trackers first, so that Startup already knows about a fault or a lower priority
        // (a fault of another member of the sync group included).
        if let Some(link) = &self.sync {
            self.trackers.set_group_fault(link.group_fault());
        }
        self.retrack().await;
        self.step(Event::Startup).await;
    }

    /// When [`deadline_passed`](Self::deadline_passed) is due next: the machine's timer
    /// or the next gratuitous ARP burst.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.machine.next_deadline(), self.garp.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires what is due: the machine's timers, then gratuitous ARP bursts.
    pub async fn deadline_passed(&mut self) {
        self.step(Event::Tick).await;
        self.send_due_gratuitous();
    }

    /// A packet arrived on the socket.
    pub async fn received(&mut self, rx: &Received) {
        match self.adverts.accept(self.io.now(), rx) {
            Some(event) => {
                self.counts.adverts_received += 1;
                self.step(event).await;
            }
            // Rejected (or our own, looped back): no step, but the rejection counts
            // must reach the status and the metrics now, not at the next step.
            None => self.publish(),
        }
    }

    /// Interface `ifindex` went up or down.
    pub async fn link_changed(&mut self, ifindex: u32, up: bool) {
        if let Some(how) = self.trackers.set_link(ifindex, up) {
            info!(instance = %self.spec.name, tracked = %how.what, up, "tracked interface changed");
            self.retrack().await;
        }
    }

    /// Interfaces are the ones of their configured names: a link event for an index under
    /// another name means it was renamed away (down for us, as when it is deleted), and
    /// one for a name under another index means it is back (re-created or renamed back):
    /// trackers follow it there, and so does the socket when it is the instance's own.
    /// Returns whether `ev` counts as up.
    pub async fn follow_interface(&mut self, ev: &LinkEvent) -> bool {
        let Some(name) = ev.name.as_deref() else {
            return ev.up;
        };
        let current = self.io.ifindex();
        let own = name == self.spec.interface;
        if own && ev.ifindex != current {
            info!(
                instance = %self.spec.name,
                interface = name,
                ifindex = ev.ifindex,
                "interface is back under a new index; following it"
            );
            self.io.rebind(ev.ifindex).await;
            self.follow_socket().await;
        }
        let renamed_away = !own && ev.ifindex == current;
        self.trackers.follow(ev.ifindex, name) && !renamed_away && ev.up
    }

    /// A socket that cannot open on the re-created interface (its source address is not
    /// there) is a fault: adverts could neither leave nor arrive, so claiming MASTER or
    /// waiting as BACKUP would both be lies. FAULT until it opens, as for a tracked
    /// interface that is down.
    pub async fn follow_socket(&mut self) {
        let open = self.io.socket_open();
        if !self.trackers.set_socket(open) {
            return;
        }
        if open {
            info!(instance = %self.spec.name, "VRRP socket open again: out of FAULT");
        } else {
            warn!(
                instance = %self.spec.name,
                interface = %self.spec.interface,
                source = %self.source,
                "the VRRP socket cannot open on the re-created interface (is its source \
                 address there?): FAULT until it can"
            );
        }
        self.retrack().await;
    }

    /// `track_reference`'s verdict changed: `reachable` when a reference answers.
    pub async fn reference_changed(&mut self, reachable: bool) {
        self.reference = Some(reachable);
        self.step(Event::Reference(reachable)).await;
    }

    /// Script `position` of the spec's `track_scripts` has a new verdict.
    pub async fn verdict(&mut self, position: usize, up: bool) {
        if self.trackers.set_script(position, up) {
            self.retrack().await;
        }
    }

    /// An address was removed from an interface: a MASTER puts its VIP back at once and
    /// announces it again (see `addr_watch` for the rule and keepalived's way).
    pub async fn address_removed(&mut self, removed: &AddressRemoved) {
        let name = &self.spec.name;
        let (addr, len, dev) = (removed.addr, removed.prefix_len, &removed.interface);
        match addr_watch::on_removed(
            self.machine.state(),
            self.spec.vip_interface(),
            &self.spec.vips,
            removed,
        ) {
            Removal::NotOurs | Removal::NotHeld => {}
            Removal::NoTrack(_) => {
                info!(instance = %name, "{name}: VIP {addr}/{len} removed from {dev}; no_track: left removed");
            }
            Removal::Restore(vip) => match self.io.restore_vip(vip).await {
                Ok(false) => {}
                Ok(true) => {
                    self.counts.vips_restored += 1;
                    warn!(instance = %name, "{name}: VIP {addr}/{len} removed from {dev} by someone else; restoring");
                    for _ in 0..self.garp.repeat.max(1) {
                        if let Err(e) = self.io.announce(addr) {
                            warn!(instance = %name, vip = %addr, "gratuitous ARP/NA: {e}");
                        }
                    }
                }
                Err(e) => {
                    error!(instance = %name, "{name}: VIP {addr}/{len} removed from {dev}; restoring it failed: {e:#}");
                }
            },
        }
        // The count reaches the status and the metrics now, not at the next step.
        self.publish();
    }

    /// A link event for the virtual routes: an interface they name (or the instance's
    /// own) that comes back up after being down has lost the routes through it (the
    /// kernel removes them, without telling), so a MASTER adds its routes and rules again
    /// (those still there are left as they are), as keepalived does when an interface
    /// comes up.
    pub async fn route_link(&mut self, ev: &LinkEvent) {
        let Some(name) = ev.name.as_deref() else {
            return;
        };
        let set = &self.spec.routes;
        if set.is_empty()
            || (name != self.spec.interface
                && !set.routes.iter().any(|r| r.devices().any(|d| d == name)))
        {
            return;
        }
        if !ev.up {
            self.links_down.insert(name.to_owned());
            return;
        }
        if !self.links_down.remove(name) || self.machine.state() != State::Master {
            return;
        }
        info!(instance = %self.spec.name, interface = name, "interface up again: adding the virtual routes and rules again");
        let set = self.spec.routes.clone();
        let errors = self.io.add_routes(&set).await;
        self.log_route_errors("adding", &set, errors);
    }

    /// A route or rule was removed: a MASTER puts back its own (`virtual_routes`,
    /// `virtual_rules`, not `no_track`) at once, as it does a VIP. keepalived drops to
    /// BACKUP and comes back, which ends in the same place with two transitions; as for
    /// VIPs, xlb restores without one.
    pub async fn route_removed(&mut self, removed: &Removed) {
        if self.machine.state() != State::Master {
            return;
        }
        let lost = match removed {
            Removed::Route(m) => RouteSet {
                routes: (self.spec.routes.routes.iter())
                    .filter(|r| !r.no_track && is_route(m, r))
                    .cloned()
                    .collect(),
                rules: Vec::new(),
            },
            Removed::Rule(m) => RouteSet {
                routes: Vec::new(),
                rules: (self.spec.routes.rules.iter())
                    .filter(|r| !r.no_track && is_rule(m, r))
                    .cloned()
                    .collect(),
            },
        };
        if lost.is_empty() {
            return;
        }
        let name = &self.spec.name;
        for r in &lost.routes {
            warn!(instance = %name, "{name}: virtual route {r} removed by someone else; restoring");
        }
        for r in &lost.rules {
            warn!(instance = %name, "{name}: virtual rule {r} removed by someone else; restoring");
        }
        for e in self.io.add_routes(&lost).await {
            error!(instance = %name, "{name}: restoring virtual routes/rules: {e:#}");
        }
    }

    /// A reload's new settings, applied without leaving the current state (keepalived's
    /// `clear_diff_vrrp` and `restore_vrrp_state`): a MASTER removes the VIPs that went
    /// (only those), adds the new ones and announces them at once; the socket, the
    /// receive checks and the announcement timing follow the new spec; the machine takes
    /// the new priority, intervals and preempt settings ([`Event::Reconfigure`]); new
    /// trackers replace the old and only their net effect reaches the machine. Returns
    /// the new verdict channel when what is tracked changed.
    pub async fn reconfigure(&mut self, update: Update) -> Option<Verdicts> {
        // (A new sync group membership is taken before: `change_group`.)
        let Update {
            spec,
            source,
            tracking,
            sync: _,
        } = update;
        let name = self.spec.name.clone();
        if let Some(why) = self.spec.restart_reason(&spec) {
            error!(instance = %name, "{why}: needs a restart, not applied in place");
            return None;
        }
        let params = spec.machine_params(source);
        if let Err(e) = params.validate() {
            error!(instance = %name, "new settings refused, keeping the running ones: {e}");
            return None;
        }
        let changed = self.spec.changes(&spec);
        info!(instance = %name, state = %self.machine.state(), changed = ?changed, "new settings applied in place");
        if self.machine.state() == State::Master {
            // Routes and rules that went first (one may use a VIP that goes), those that
            // came after the new VIPs (one may use a new VIP as its source).
            let gone = self.spec.routes.minus(&spec.routes);
            let errors = self.io.remove_routes(&gone).await;
            self.log_route_errors("removing", &gone, errors);
            self.swap_vips(&spec).await;
            let added = spec.routes.minus(&self.spec.routes);
            let errors = self.io.add_routes(&added).await;
            self.log_route_errors("adding", &added, errors);
        }
        let ifindex = self.io.ifindex();
        let socket = spec.socket_config(ifindex, source);
        if socket != self.spec.socket_config(ifindex, self.source)
            || spec.checksum != self.spec.checksum
        {
            if let Err(e) = self.io.resocket(socket, spec.checksum).await {
                error!(instance = %name, "VRRP socket for the new settings: {e}; adverts keep the old destinations");
            }
        }
        self.adverts
            .reconfigure(source, spec.receive_params(), spec.receive_policy());
        self.garp.retime(&spec.garp, self.io.now());
        self.source = source;
        self.spec = spec;
        self.step(Event::Reconfigure(params)).await;
        let verdicts = tracking.map(|(trackers, verdicts)| {
            self.trackers.replace(trackers);
            verdicts
        });
        if verdicts.is_some() {
            for ifindex in self.trackers.link_indexes() {
                let up = self.io.link_up(ifindex).await.unwrap_or(true);
                self.trackers.set_link(ifindex, up);
            }
        }
        self.retrack().await;
        self.publish();
        verdicts
    }

    /// A MASTER's VIPs from the running spec to `new`'s: the ones gone removed, the new
    /// ones added and announced at once (a changed entry, same address with another
    /// prefix or device, is both). VIPs in both are not touched.
    async fn swap_vips(&mut self, new: &InstanceSpec) {
        let name = &self.spec.name;
        let gone: Vec<_> = (self.spec.vips.iter())
            .filter(|v| !new.vips.contains(v))
            .cloned()
            .collect();
        let added: Vec<_> = (new.vips.iter())
            .filter(|v| !self.spec.vips.contains(v))
            .cloned()
            .collect();
        if !gone.is_empty() {
            info!(instance = %name, vips = ?gone.iter().map(|v| v.addr).collect::<Vec<_>>(), "VIPs removed by reload");
            if let Err(e) = self.io.remove_vips(&gone).await {
                warn!(instance = %name, "removing VIPs: {e:#}");
            }
        }
        if !added.is_empty() {
            info!(instance = %name, vips = ?added.iter().map(|v| v.addr).collect::<Vec<_>>(), "VIPs added by reload");
            if let Err(e) = self.io.add_vips(&added).await {
                warn!(instance = %name, "adding VIPs: {e:#}");
            }
            for _ in 0..new.garp.repeat.max(1) {
                for v in &added {
                    if let Err(e) = self.io.announce(v.addr) {
                        warn!(instance = %name, vip = %v.addr, "gratuitous ARP/NA: {e}");
                    }
                }
            }
        }
    }

    /// Logs what `adding`/`removing` the virtual routes and rules of `set` did.
    fn log_route_errors(&self, doing: &str, set: &RouteSet, errors: Vec<RouteError>) {
        let name = &self.spec.name;
        for e in &errors {
            warn!(instance = %name, "{doing} virtual routes/rules: {e:#}");
        }
        if !set.is_empty() {
            info!(
                instance = %name,
                routes = set.routes.len(),
                rules = set.rules.len(),
                failed = errors.len(),
                "virtual routes/rules {}",
                if doing == "adding" { "added" } else { "removed" }
            );
        }
    }

    /// Resigns (priority 0 advert if MASTER) and makes sure nothing of ours stays,
    /// whatever state we were in.
    pub async fn stop(&mut self) {
        self.step(Event::Shutdown).await;
        let _ = self.io.remove_routes(&self.spec.routes).await;
        let _ = self.io.remove_vips(&self.spec.vips).await;
        self.io.forward(State::Initialize).await;
    }

    /// A reload moved the instance to another sync group, or out of its group: it joins
    /// the new one in its current state (the group hears of it as a transition from
    /// INIT, and of its own fault at the next [`retrack`](Self::retrack)) and stops
    /// listening to the old one, which has let it go. Its state is not touched here:
    /// the group's rules act from now on. Returns the new command channel.
    pub fn change_group(
        &mut self,
        membership: Membership,
    ) -> Option<mpsc::UnboundedReceiver<sync::Command>> {
        let (link, rx) = membership.unzip();
        info!(
            instance = %self.spec.name,
            group = ?link.as_ref().map(|l| l.group.name()),
            "sync group membership changed by reload"
        );
        self.reported_own_fault = None;
        match &link {
            Some(l) => {
                let state = self.machine.state();
                if state != State::Initialize {
                    l.transition(State::Initialize, state);
                }
                self.trackers.set_group_fault(l.group_fault());
            }
            None => {
                self.trackers.set_group_fault(false);
            }
        }
        self.sync = link;
        rx
    }

    /// What the sync group tells this member: another member's fault holds it in FAULT
    /// (or no longer does), another became MASTER or stepped down to BACKUP.
    pub async fn sync_command(&mut self, command: sync::Command) {
        match command {
            sync::Command::Fault(fault) => {
                if self.trackers.set_group_fault(fault) {
                    info!(instance = %self.spec.name, fault, "sync group fault changed");
                    self.retrack().await;
                }
            }
            sync::Command::Master => self.step(Event::SyncMaster).await,
            sync::Command::Backup => self.step(Event::SyncBackup).await,
        }
    }

    /// Gives the machine the combined effect of everything tracked, if it changed.
    async fn retrack(&mut self) {
        if let Some(link) = &self.sync {
            let own = self.trackers.own().0;
            if self.reported_own_fault != Some(own) {
                self.reported_own_fault = Some(own);
                link.own_fault(own);
            }
        }
        let change = self.trackers.take_change();
        if let Some(delta) = change.delta {
            info!(instance = %self.spec.name, delta, "priority moved by trackers");
            self.step(Event::SetPriorityDelta(delta)).await;
        }
        if let Some(fault) = change.fault {
            self.step(Event::Fault(fault)).await;
        }
    }

    /// Feeds the machine one event, carries out its actions and publishes the status.
    /// In a sync group, a due takeover waits until the group can go MASTER
    /// ([`Event::SyncWait`]), and an accepted advert in BACKUP withdraws the wish.
    async fn step(&mut self, event: Event) {
        let now = self.io.now();
        if let Some(link) = &self.sync {
            if !matches!(event, Event::Startup | Event::Shutdown)
                && self.machine.takeover_due(now)
                && !link.can_goto_master()
            {
                if !std::mem::replace(&mut self.sync_waiting, true) {
                    info!(instance = %self.spec.name, "master down, but the sync group is not ready for MASTER: staying BACKUP");
                }
                let actions = self.machine.step(now, Event::SyncWait);
                debug_assert!(actions.is_empty());
            }
        }
        let before = self.machine.next_deadline();
        let backup = self.machine.state() == State::Backup;
        let actions = self.machine.step(now, event);
        if let (Some(link), Event::Advert { .. }) = (&self.sync, event) {
            if backup
                && self.machine.state() == State::Backup
                && self.machine.next_deadline() > before
            {
                link.master_heard();
                self.sync_waiting = false;
            }
        }
        if self.machine.state() != State::Backup {
            self.sync_waiting = false;
        }
        for action in actions {
            self.perform(action).await;
        }
        self.publish();
    }

    async fn perform(&mut self, action: Action) {
        let name = &self.spec.name;
        match action {
            Action::SendAdvert { priority } => {
                let advert = self.spec.advert(priority);
                match self.io.send_advert(&advert).await {
                    Ok(()) => self.counts.adverts_sent += 1,
                    Err(e) => warn!(instance = %name, "sending advert: {e}"),
                }
            }
            Action::AddVips => {
                // Forward first, then announce: no client reaches us before we can.
                self.io.forward(State::Master).await;
                if let Err(e) = self.io.add_vips(&self.spec.vips).await {
                    warn!(instance = %name, "adding VIPs: {e:#}");
                }
                let errors = self.io.add_routes(&self.spec.routes).await;
                self.log_route_errors("adding", &self.spec.routes, errors);
            }
            Action::RemoveVips => {
                let errors = self.io.remove_routes(&self.spec.routes).await;
                self.log_route_errors("removing", &self.spec.routes, errors);
                if let Err(e) = self.io.remove_vips(&self.spec.vips).await {
                    warn!(instance = %name, "removing VIPs: {e:#}");
                }
                self.io.forward(self.machine.state()).await;
                self.garp.stop();
            }
            Action::SendGratuitous => {
                self.garp.start(self.io.now());
                self.send_due_gratuitous();
            }
            Action::Transition { from, to, reason } => {
                if to == State::Master {
                    self.counts.became_master += 1;
                } else if from == State::Master {
                    self.counts.left_master += 1;
                }
                let priority = self.machine.effective_priority();
                self.io.notify(to, priority);
                info!(
                    instance = %name,
                    %from,
                    %to,
                    %reason,
                    priority,
                    "VRRP transition"
                );
                if let Some(link) = &self.sync {
                    link.transition(from, to);
                }
            }
        }
    }

    fn send_due_gratuitous(&mut self) {
        let count = self.garp.due(self.io.now());
        for _ in 0..count {
            for v in &self.spec.vips {
                if let Err(e) = self.io.announce(v.addr) {
                    warn!(instance = %self.spec.name, vip = %v.addr, "gratuitous ARP/NA: {e}");
                }
            }
        }
    }

    /// Puts this instance's current status on the board.
    fn publish(&mut self) {
        let status = InstanceStatus {
            name: self.spec.name.clone(),
            interface: self.spec.interface.clone(),
            vrid: self.spec.vrid,
            version: self.spec.version.number(),
            state: self.machine.state().as_str().to_string(),
            priority: self.machine.effective_priority(),
            configured_priority: self.spec.params_priority,
            source: self.source,
            vips: self.spec.vips.iter().map(|v| v.addr).collect(),
            last_advert_from: self.adverts.last_advert_from(),
            rejected: self.adverts.rejected(),
            counts: self.counts,
            vmac: self.spec.vmac.as_ref().map(|v| v.name.clone()),
            sync_group: self.spec.sync_group.clone(),
            reference: self.spec.reference.as_ref().map(|r| {
                let addresses: Vec<String> = r.addresses.iter().map(ToString::to_string).collect();
                let verdict = match self.reference {
                    None => "checking",
                    Some(true) => "reachable",
                    Some(false) => "unreachable",
                };
                format!("{verdict} ({})", addresses.join(","))
            }),
        };
        self.io.publish(status);
    }
}

/// The next verdict of the reference probe; never, without one.
async fn recv_reference(probe: &mut Option<ReferenceProbe>) -> Option<bool> {
    match probe {
        Some(p) => p.verdicts.recv().await,
        None => std::future::pending().await,
    }
}

/// The next command of a sync group's channel; never, outside a group.
async fn recv_sync(
    rx: &mut Option<mpsc::UnboundedReceiver<sync::Command>>,
) -> Option<sync::Command> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
