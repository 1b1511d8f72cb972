//! `xlb run`: the daemon. It owns the desired state and drives the data plane to it.
//!
//! Every input becomes an `Event` on one channel (`event`): signals (`signals`, caught
//! from the first moment, so one sent during start-up waits for the loop), the caller's
//! shutdown future, gate requests of VRRP instances, instances that stopped, neighbour
//! changes, timer ticks, health verdicts. One loop takes them one at a time and
//! `Daemon::handle` matches each. Handlers never wait for another task of ours: a
//! stopping instance resigns in a task of its own and its end arrives as an event, so gate
//! requests are served meanwhile. Shutdown is a phase of the same loop: resign every
//! instance, serve their last gate requests until each has stopped, then leave the loop,
//! stop the checks and exit. The data plane stays attached and pinned: flows go on while
//! the daemon restarts; `xlb teardown` is what stops forwarding.
//!
//! The rest, by responsibility: `desired` (the pure rules from observations to the wanted
//! data-plane state), `neighbors` (where real servers are), `plane` (the XDP program and
//! maps), `instances` (VRRP instances), `phase` (which events wait while instances stop),
//! `reload` (SIGHUP and `xlb reload`), `control` (the control socket) and `commands` (what
//! its requests do), `edits` (runtime edits over the file, pure), `report` (notify
//! commands and notifications), `state_file` (the status for `xlb status`), `metrics`
//! (the Prometheus endpoint and its snapshot), `lock` (one daemon per pin path),
//! `watchdog` (what was attached and pinned, checked and repaired), `systemd` (READY,
//! RELOADING, STOPPING, STATUS and the watchdog of `Type=notify`, fed from this loop).

mod announcer;
mod commands;
mod conn_sync;
mod control;
mod desired;
mod edits;
mod event;
mod instances;
mod lock;
mod metrics;
mod neighbors;
mod phase;
mod plane;
mod reload;
mod report;
mod signals;
mod state_file;
mod statics;
mod systemd;
mod watchdog;

use std::{
    future::Future,
    ops::ControlFlow,
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result, bail};
use rtnetlink::Handle;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

pub use control::{ControlError, default_socket};
pub use lock::{LockError, PinLock};
pub use state_file::default_state_file;

use self::{
    desired::Observations,
    event::{Event, Inputs},
    instances::Instances,
    neighbors::Neighbors,
    phase::{AfterStops, Phase},
    plane::{Plane, PlaneError},
    systemd::Systemd,
};
use crate::{
    config::Config,
    dataplane::AttachMode,
    health::{self, HealthMonitor, Verdict},
    netlink,
    notify::Notifier,
    process::identity::ProcessId,
    vrrp::instance::{Gate, GateRequest, StatusBoard},
};

/// How long start-up waits for real servers' MACs before going on without them (those
/// get no new flows until resolved).
const INITIAL_RESOLVE_WAIT: Duration = Duration::from_secs(3);
/// Unresolved real servers are asked for again this often.
const RESOLVE_RETRY: Duration = Duration::from_secs(1);
/// Resolved ones are re-confirmed this often, so a changed MAC is noticed even when no
/// neighbour event arrives (XDP traffic does not confirm neighbour entries).
const RESOLVE_REFRESH: Duration = Duration::from_secs(30);
/// The status file is written this often.
const PUBLISH: Duration = Duration::from_millis(500);
/// Gate requests waiting to be forwarded into the loop.
const GATE_QUEUE: usize = 16;

pub struct RunOptions {
    pub config_path: PathBuf,
    pub pin_path: PathBuf,
    /// Where the VRRP status is written for `xlb status` ([`default_state_file`]).
    pub state_file: PathBuf,
    pub attach_mode: AttachMode,
    /// The control socket ([`default_socket`]).
    pub socket: PathBuf,
}

struct Daemon {
    handle: Handle,
    /// Present when the config had virtual servers at start.
    plane: Option<Plane>,
    config: Config,
    config_path: PathBuf,
    /// Where the maps are pinned; the dumps are named after it.
    pin_path: PathBuf,
    attach_mode: AttachMode,
    neighbors: Neighbors,
    /// Verdicts, VRRP states and quorum: what the desired state is made from.
    observed: Observations,
    instances: Instances,
    monitor: Option<HealthMonitor>,
    state_file: PathBuf,
    /// This process, as the status file names it.
    me: ProcessId,
    /// Where VRRP transitions, verdicts and quorum changes are reported.
    notifier: Notifier,
    /// The loop's own channel, for the inputs that start while it runs.
    events: mpsc::Sender<Event>,
    inputs: Inputs,
    /// Shutting down, restarting instances for a reload, or neither.
    phase: Phase,
    /// When the daemon started (wall clock, for status) and its uptime's origin.
    started_at: SystemTime,
    started: Instant,
    /// When the running config was loaded (start or last successful reload): the wall
    /// clock's time, and the monotonic clock's for its age.
    config_loaded_at: (SystemTime, Instant),
    /// `xlb reload` requests that wait for a reload under way (see `commands`).
    reload_waiters: Vec<oneshot::Sender<crate::control::Reply>>,
    /// The Prometheus endpoint, when `global_defs.metrics_listen` is set.
    metrics: Option<crate::metrics::MetricsServer>,
    /// Where the daemon's part of the metrics is published for the endpoint.
    snapshot: tokio::sync::watch::Sender<crate::metrics::Snapshot>,
    /// Config reloads so far, for the metrics.
    reloads: crate::metrics::Reloads,
    /// What systemd is told (nothing without NOTIFY_SOCKET).
    systemd: Systemd,
    /// `static_ipaddress`, `static_routes`, `static_rules` in force.
    statics: statics::Statics,
    /// The `announce = "bgp"` VIPs' routes (`announcer`).
    announcer: announcer::Announcer,
    /// Connection sync (`[sync]`), when configured.
    conn_sync: Option<crate::connsync::SyncTask>,
}

impl Daemon {
    /// The loop: one event at a time, until shutting down has finished.
    async fn serve(&mut self, queue: &mut mpsc::Receiver<Event>) {
        while let Some(event) = queue.recv().await {
            if self.handle(event).await.is_break() {
                return;
            }
        }
    }

    /// Every event, in one place. Awaiting netlink or map I/O here is fine: the kernel
    /// answers without waiting on this loop.
    async fn handle(&mut self, event: Event) -> ControlFlow<()> {
        if !self.phase.admits(&event) {
            return ControlFlow::Continue(());
        }
        match event {
            Event::Shutdown => {
                let resigning = self.resign();
                self.systemd
                    .stopping(&format!("stopping: {resigning} VRRP instance(s) resigning"));
                if resigning > 0 {
                    info!(instances = resigning, "resigning VRRP instances");
                }
                if !self.instances.stopping() {
                    return ControlFlow::Break(());
                }
            }
            Event::Reload => {
                let outcome = self.reload().await;
                self.answer_reload(&outcome);
            }
            Event::Control(call, reply) => self.on_control(call, reply).await,
            Event::Dump(what) => self.dump(what),
            Event::Gate(req) => self.on_gate(req).await,
            Event::InstanceStopped(name) => {
                if self.on_instance_stopped(&name).await.is_break() {
                    return ControlFlow::Break(());
                }
            }
            Event::Neighbor(ev) => {
                if self.neighbors.on_event(ev) {
                    self.sync().await;
                }
            }
            Event::ResolveRetry => match self.neighbors.poll_unresolved(&self.handle, true).await {
                Ok(true) => self.sync().await,
                Ok(false) => {}
                Err(e) => warn!("neighbour lookup failed: {e}"),
            },
            Event::Refresh => self.neighbors.refresh(&self.handle).await,
            Event::Publish => {
                self.announce_tick().await;
                self.write_state();
                self.publish_metrics();
                self.systemd.status(self.summary());
                let grown = self.plane.as_mut().is_some_and(|plane| {
                    plane.recount_conns();
                    plane.watch_conn_table();
                    plane.grow_conn_tables()
                });
                // The new program is in every pinned link already: this takes them back.
                if grown {
                    if let Err(e) = self.attach_all().await {
                        warn!("attaching after the connection tables grew: {e}");
                    }
                }
            }
            Event::Watch => self.watch_plane().await,
            Event::Verdict(v) => self.on_verdict(v).await,
            Event::Watchdog => self.systemd.watchdog(),
            Event::StaticRemoved(r) => self.statics.on_removed(&r, &self.handle).await,
            Event::StaticLink(ev) => self.statics.on_link(&ev, &self.handle).await,
        }
        // A reload (SIGHUP or the control socket) has ended once no instance it stopped
        // is still stopping: READY=1 again.
        if self.systemd.is_reloading() && !self.phase.restarting() {
            self.systemd.reloaded(self.summary());
        }
        ControlFlow::Continue(())
    }

    /// The one-line summary systemd shows as the service's status.
    fn summary(&self) -> String {
        systemd::summary(
            self.config.virtual_server.len(),
            self.config.vrrp_instance.iter().map(|i| i.name.as_str()),
            self.instances.board(),
        )
    }

    /// Starts shutting down: every instance resigns (priority 0 adverts, VIPs removed,
    /// services switched off) so the backup takes over within its skew time. Returns
    /// how many instances were running.
    fn resign(&mut self) -> usize {
        self.phase.shut_down();
        self.instances.stop_all(&self.events)
    }

    /// A gate request from an instance: switch its services, then let it go on.
    async fn on_gate(&mut self, req: GateRequest) {
        info!(instance = %req.instance, state = %req.state, "data plane follows VRRP");
        self.observed.record_vrrp(req.instance, req.state);
        // ha_suspend: checks run only where the service is forwarded.
        if self.monitor.is_some() {
            self.sync_monitor();
        }
        self.sync().await;
        let _ = req.done.send(());
    }

    /// A stopping instance has ended. Once its whole batch has, their services are off:
    /// a shutdown is done, and a reload starts the new and changed instances (the old
    /// ones have given up their VRIDs).
    async fn on_instance_stopped(&mut self, name: &str) -> ControlFlow<()> {
        let Some(batch) = self.instances.stopped(name) else {
            return ControlFlow::Continue(());
        };
        for n in &batch {
            self.observed.forget_instance(n);
        }
        self.write_state();
        self.sync().await;
        match self.phase.stops_done() {
            AfterStops::Exit => return ControlFlow::Break(()),
            AfterStops::FinishReload { then_reload } => {
                self.finish_reload().await;
                if then_reload {
                    let outcome = self.reload().await;
                    self.answer_reload(&outcome);
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// A checker's verdict: notify_up / notify_down, then the quorum and the data plane.
    async fn on_verdict(&mut self, v: Verdict) {
        let real_server = desired::real_server(&self.config, &v.key);
        report::verdict(&v, real_server, &self.notifier);
        self.observed.record_verdict(&v);
        self.update_quorum();
        self.sync().await;
    }

    /// Starts or updates the health monitor for the current config; a new monitor's
    /// verdicts are forwarded into the loop at once.
    fn sync_monitor(&mut self) {
        let all = health::targets_from_config(&self.config);
        let running = self.observed.check_targets(&self.config, &all);
        self.observed.expect_targets(&all, &running);
        match self.monitor.as_mut() {
            Some(m) => m.update(running),
            None if !all.is_empty() => {
                let (m, verdicts) = HealthMonitor::spawn(running);
                self.monitor = Some(m);
                self.inputs
                    .forward_channel(&self.events, verdicts, Event::Verdict);
            }
            None => {}
        }
        self.update_quorum();
    }

    /// Re-evaluates the quorum of every service and reports the changes.
    fn update_quorum(&mut self) {
        for change in self.observed.update_quorum(&self.config) {
            report::quorum(&change, &self.notifier);
        }
    }

    /// Brings the data plane to the desired state.
    async fn apply(&mut self) -> Result<(), PlaneError> {
        let Some(plane) = self.plane.as_mut() else {
            return Ok(());
        };
        let macs = self.neighbors.interface_macs(&self.handle).await?;
        let desired = self.observed.services(&self.config, self.neighbors.table());
        plane.sync(&macs, &desired)
    }

    /// [`Daemon::apply`] where a failure is only logged: the next change tries again.
    async fn sync(&mut self) {
        if let Err(e) = self.apply().await {
            error!("sync failed: {:#}", anyhow::Error::new(e));
        }
        self.announce().await;
    }

    /// Attaches to every interface a virtual service needs.
    async fn attach_all(&mut self) -> Result<(), PlaneError> {
        let mut wanted = plane::interfaces(&self.config)?;
        plane::add_nat_interfaces(&self.config, self.neighbors.table(), &mut wanted);
        match self.plane.as_mut() {
            Some(p) => p.attach(&self.handle, wanted, self.attach_mode).await,
            None => Ok(()),
        }
    }

    /// Start-up: every real server located (refusing ones not on-link) before anything
    /// is attached, the maps filled before the program sees a packet, then attach.
    async fn start(&mut self) -> Result<()> {
        self.neighbors.locate(&self.handle, &self.config).await?;
        // Give ARP / NDP a moment so the first sync already has the MACs.
        self.neighbors
            .wait_for_macs(&self.handle, INITIAL_RESOLVE_WAIT)
            .await?;
        self.apply().await?;
        self.attach_all().await?;
        let mut nat_interfaces = Vec::new();
        plane::add_nat_interfaces(&self.config, self.neighbors.table(), &mut nat_interfaces);
        for problem in plane::nat_sysctl_problems(&self.config, &nat_interfaces) {
            warn!("NAT: {problem}");
        }
        Ok(())
    }

    /// A failed start leaves nothing it made: no status file, and no maps or links of
    /// its own (see [`Plane::undo_start`]).
    fn undo_start(&mut self) {
        state_file::remove(&self.state_file);
        if let Some(plane) = self.plane.take() {
            plane.undo_start();
        }
    }

    /// Writes the VRRP status for `xlb status`.
    fn write_state(&self) {
        let interfaces = self
            .plane
            .as_ref()
            .map(|p| p.watch.statuses())
            .unwrap_or_default();
        state_file::write(
            &self.state_file,
            self.me,
            self.instances.board(),
            interfaces,
        );
    }

    /// keepalived's `omega`: on shutdown, the down notifiers of live real servers and the
    /// quorum_down of services that had their quorum.
    fn omega(&self) {
        for command in self.observed.omega_commands(&self.config) {
            self.notifier.run_command("omega", command);
        }
    }
}

/// Runs the daemon until `shutdown` completes (or SIGINT / SIGTERM arrive).
pub async fn run(
    opts: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // Caught from now on: a SIGHUP during start-up must not kill us; it waits in the queue.
    let signals = signals::listen()?;
    let (events, mut queue) = mpsc::channel(event::QUEUE);
    let mut inputs = Inputs::default();
    let started = signals.forward(&events, &mut inputs);
    // Before anything else: a second daemon on these pins must change nothing.
    let _lock = lock::PinLock::acquire(&opts.pin_path)?;
    let started_at = SystemTime::now();
    // Bound (and refused if a daemon answers there) before anything changes; requests
    // wait in the queue until the loop runs. Removed on the way out, failed start included.
    let mut control = control::ControlSocket::bind(&opts.socket).await?;
    control.serve(&events);
    let me = ProcessId::current().context("reading /proc/self/stat")?;
    let config = Config::load(&opts.config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in config.warnings(&opts.config_path) {
        warn!("{w}");
    }
    if config.virtual_server.is_empty()
        && config.vrrp_instance.is_empty()
        && statics::Statics::of(&config).is_empty()
    {
        bail!(
            "{}: neither virtual_server nor vrrp_instance (nor static addresses, routes or \
             rules): nothing to do",
            opts.config_path.display()
        );
    }
    report::warn_mail_impossible(&config);
    crate::process::audit::Audit::of(&config).log(None);
    // The notification channels live as long as the daemon: the FIFOs close with the guard.
    let notifier = Notifier::running(&config.global_defs);
    let _channels = notifier.close_on_drop();
    let handle = netlink::connect()?;
    // Before anything is loaded: an address that cannot be listened on fails the start
    // having changed nothing.
    let (snapshot, snapshot_rx) = tokio::sync::watch::channel(crate::metrics::Snapshot::default());
    let metrics = metrics::start(
        config.global_defs.metrics_listen,
        (!config.virtual_server.is_empty()).then(|| opts.pin_path.clone()),
        snapshot_rx,
    )
    .await?;
    // Without virtual servers xlb is a plain VRRP daemon, as keepalived is: no XDP.
    let plane = if config.virtual_server.is_empty() {
        None
    } else {
        Some(Plane::load(&opts.pin_path, &config)?)
    };
    let (gate, gate_requests) = mpsc::channel(GATE_QUEUE);
    inputs.forward_channel(&events, gate_requests, Event::Gate);
    inputs.forward(&events, netlink::watch()?, Event::Neighbor);
    inputs.forward(&events, netlink::route::watch_removed()?, |r| {
        Event::StaticRemoved(statics::StaticRemoval::Routing(r))
    });
    inputs.forward(&events, crate::vrrp::addr_watch::watch_removed()?, |a| {
        Event::StaticRemoved(statics::StaticRemoval::Address(a))
    });
    inputs.forward(&events, netlink::watch_links()?, Event::StaticLink);
    let statics = statics::Statics::of(&config);
    let announcer = announcer::Announcer::new(&config, &opts.state_file);
    let mut d = Daemon {
        handle,
        plane,
        config,
        config_path: opts.config_path.clone(),
        pin_path: opts.pin_path.clone(),
        attach_mode: opts.attach_mode,
        neighbors: Neighbors::default(),
        observed: Observations::default(),
        instances: Instances::new(Gate(gate), StatusBoard::default()),
        monitor: None,
        state_file: opts.state_file.clone(),
        me,
        notifier,
        events: events.clone(),
        inputs,
        phase: Phase::default(),
        started_at,
        started: Instant::now(),
        config_loaded_at: (started_at, Instant::now()),
        reload_waiters: Vec::new(),
        metrics,
        snapshot,
        reloads: crate::metrics::Reloads::default(),
        systemd: Systemd::from_env(),
        statics,
        announcer,
        conn_sync: None,
    };
    // Health first: servers with `alpha` must not get flows before their first success.
    d.sync_monitor();
    if let Err(e) = d.start().await {
        d.undo_start();
        return Err(e);
    }
    // As keepalived: what a predecessor left goes, then the static entries, before VRRP.
    d.statics.remove(&d.handle).await;
    d.statics.add(&d.handle).await;
    if let Err(e) = d.instances.start(&d.config, &d.handle, &d.notifier).await {
        // The instances that did start resign first, their gate requests served.
        if d.resign() > 0 {
            d.serve(&mut queue).await;
        }
        d.statics.remove(&d.handle).await;
        d.undo_start();
        return Err(e);
    }
    if let Err(e) = d.follow_sync() {
        if d.resign() > 0 {
            d.serve(&mut queue).await;
        }
        d.statics.remove(&d.handle).await;
        d.undo_start();
        return Err(e);
    }
    // The first scrape already sees the instances, not only from the first status tick on.
    d.publish_metrics();
    info!(
        config = %opts.config_path.display(),
        pin_path = %opts.pin_path.display(),
        socket = %control.path().display(),
        services = d.config.virtual_server.len(),
        vrrp_instances = d.instances.running(),
        "xlb running"
    );
    started.set();
    d.systemd.ready(d.summary());
    if let Some(period) = d.systemd.watchdog_period() {
        info!(?period, "feeding the systemd watchdog from the event loop");
        d.inputs.every(&events, period, || Event::Watchdog);
    }

    d.inputs.once(&events, shutdown, || Event::Shutdown);
    d.inputs
        .every(&events, RESOLVE_RETRY, || Event::ResolveRetry);
    d.inputs.every(&events, PUBLISH, || Event::Publish);
    d.inputs.every(&events, RESOLVE_REFRESH, || Event::Refresh);
    d.inputs.every(&events, watchdog::WATCH, || Event::Watch);
    d.serve(&mut queue).await;
    // First: the routers move the flows to the other directors while this one still
    // forwards what reaches it (the data plane stays).
    d.announcer.withdraw_all(&d.handle, "xlb stopping").await;
    d.announcer.remove_file();

    // The instances have resigned; now the checks stop.
    if let Some(m) = d.monitor.take() {
        m.shutdown().await;
    }
    d.omega();
    // After the instances (their virtual routes may use a static address), as keepalived.
    d.statics.remove(&d.handle).await;
    state_file::remove(&d.state_file);
    if d.plane.is_some() {
        info!(
            pin_path = %opts.pin_path.display(),
            "stopping; the data plane stays attached (`xlb teardown` removes it)"
        );
    }
    Ok(())
}
