//! The driver against a recording [`InstanceIo`] with a virtual clock: events in (start,
//! adverts, deadlines, tracker changes, stop), the calls it makes out, in order and at
//! which time. No sockets, no root.

use std::{
    collections::HashSet,
    io,
    net::IpAddr,
    time::{Duration, Instant},
};

use super::*;
use crate::{
    config::VirtualIpAddress,
    netlink::NetlinkError,
    vrrp::{
        net::VrrpSocketConfig,
        packet::{Advert, Auth, Interval, V3Checksum, Version},
        spec::test_spec as spec,
        track::Tracked,
        trackers::tracked_links,
        vip::VipError,
    },
};

const OWN_IFINDEX: u32 = 2;
const OTHER_IFINDEX: u32 = 3;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn us() -> IpAddr {
    ip("198.18.0.1")
}

fn peer() -> IpAddr {
    ip("198.18.0.2")
}

fn vip() -> IpAddr {
    ip("198.18.0.100")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the driver asked of the world.
#[derive(Clone, Debug, PartialEq)]
enum Call {
    Advert(u8),
    AddVips,
    RemoveVips,
    /// One VIP put back (it was missing).
    RestoreVip(IpAddr),
    Announce(IpAddr),
    Forward(State),
    /// A transition to this state at this priority (Initialize: keepalived's STOP).
    Notify(State, u8),
    /// The socket moved to this interface index.
    Rebind(u32),
    /// VIPs other than the test's one VIP added / removed (a reload's).
    AddSome(Vec<IpAddr>),
    RemoveSome(Vec<IpAddr>),
    /// The socket opened again for these unicast peers (a reload's).
    Resocket(Vec<IpAddr>),
    /// Virtual routes and rules added / removed, as text (only a non-empty set).
    AddRoutes(Vec<String>),
    RemoveRoutes(Vec<String>),
}
use Call::*;

fn route_texts(set: &RouteSet) -> Vec<String> {
    (set.routes.iter().map(ToString::to_string))
        .chain(set.rules.iter().map(ToString::to_string))
        .collect()
}

/// Records every call with the virtual time it came at.
struct Recorder {
    t0: Instant,
    now: Instant,
    calls: Vec<(Duration, Call)>,
    statuses: Vec<InstanceStatus>,
    down: HashSet<u32>,
    /// Whether a VIP to restore is already back (the removal was our own).
    vip_present: bool,
    /// How long the data plane takes to follow a gate request.
    forward_takes: Duration,
    /// The real clock instead of the virtual one (for the run loop, which sleeps).
    real_clock: bool,
    /// Where calls are copied to, for a driver that runs as a task.
    mirror: Option<tokio::sync::mpsc::UnboundedSender<Call>>,
    /// The instance's interface index.
    ifindex: u32,
    /// The socket cannot open on the interface (after a rebind).
    socket_closed: bool,
}

impl Recorder {
    fn new() -> Self {
        let t0 = Instant::now();
        Self {
            t0,
            now: t0,
            calls: Vec::new(),
            statuses: Vec::new(),
            down: HashSet::new(),
            vip_present: false,
            forward_takes: Duration::ZERO,
            real_clock: false,
            mirror: None,
            ifindex: OWN_IFINDEX,
            socket_closed: false,
        }
    }

    fn record(&mut self, call: Call) {
        if let Some(mirror) = &self.mirror {
            let _ = mirror.send(call.clone());
        }
        self.calls.push((self.now() - self.t0, call));
    }
}

impl InstanceIo for Recorder {
    fn now(&self) -> Instant {
        if self.real_clock {
            Instant::now()
        } else {
            self.now
        }
    }

    async fn recv(&mut self) -> io::Result<Received> {
        std::future::pending().await
    }

    async fn send_advert(&mut self, advert: &Advert) -> io::Result<()> {
        self.record(Advert(advert.priority));
        Ok(())
    }

    async fn resocket(&mut self, socket: VrrpSocketConfig, _: V3Checksum) -> io::Result<()> {
        self.record(Resocket(socket.unicast_peers));
        Ok(())
    }

    async fn add_vips(&mut self, vips: &[VirtualIpAddress]) -> Result<(), VipError> {
        let addrs: Vec<IpAddr> = vips.iter().map(|v| v.addr).collect();
        self.record(if addrs == [vip()] {
            AddVips
        } else {
            AddSome(addrs)
        });
        Ok(())
    }

    async fn remove_vips(&mut self, vips: &[VirtualIpAddress]) -> Result<(), VipError> {
        let addrs: Vec<IpAddr> = vips.iter().map(|v| v.addr).collect();
        self.record(if addrs == [vip()] {
            RemoveVips
        } else {
            RemoveSome(addrs)
        });
        Ok(())
    }

    async fn add_routes(&mut self, set: &RouteSet) -> Vec<RouteError> {
        if !set.is_empty() {
            self.record(AddRoutes(route_texts(set)));
        }
        Vec::new()
    }

    async fn remove_routes(&mut self, set: &RouteSet) -> Vec<RouteError> {
        if !set.is_empty() {
            self.record(RemoveRoutes(route_texts(set)));
        }
        Vec::new()
    }

    async fn restore_vip(&mut self, vip: &VirtualIpAddress) -> Result<bool, VipError> {
        if self.vip_present {
            return Ok(false);
        }
        self.record(RestoreVip(vip.addr));
        Ok(true)
    }

    fn announce(&mut self, vip: IpAddr) -> io::Result<()> {
        self.record(Announce(vip));
        Ok(())
    }

    async fn forward(&mut self, state: State) {
        self.record(Forward(state));
        self.now += self.forward_takes;
    }

    fn notify(&mut self, state: State, priority: u8) {
        self.record(Notify(state, priority));
    }

    fn publish(&mut self, status: InstanceStatus) {
        self.statuses.push(status);
    }

    async fn link_up(&mut self, ifindex: u32) -> Result<bool, NetlinkError> {
        Ok(!self.down.contains(&ifindex))
    }

    fn ifindex(&self) -> u32 {
        self.ifindex
    }

    async fn rebind(&mut self, ifindex: u32) {
        self.ifindex = ifindex;
        self.record(Rebind(ifindex));
    }

    fn socket_open(&self) -> bool {
        !self.socket_closed
    }
}

/// A driver tracking its own interface (as `spawn` sets it up) and `scripts`.
fn driver_with(spec: InstanceSpec, scripts: Vec<(Tracked, bool)>) -> Driver<Recorder> {
    let links = tracked_links(&spec, OWN_IFINDEX, &[]);
    let trackers = Trackers::new(links, scripts);
    Driver::new(spec, us(), trackers, Recorder::new()).unwrap()
}

fn driver(extra: &str) -> Driver<Recorder> {
    driver_with(spec(extra), Vec::new())
}

/// Lets virtual time run to `t0 + at`, firing every deadline on the way at its time, as
/// the run loop does.
async fn run_until(d: &mut Driver<Recorder>, at: Duration) {
    let until = d.io.t0 + at;
    while let Some(deadline) = d.next_deadline().filter(|t| *t <= until) {
        d.io.now = d.io.now.max(deadline);
        d.deadline_passed().await;
    }
    d.io.now = d.io.now.max(until);
}

/// The calls made since the last look, without their times.
fn take(d: &mut Driver<Recorder>) -> Vec<Call> {
    d.io.calls.drain(..).map(|(_, call)| call).collect()
}

fn advert_from(src: IpAddr, priority: u8) -> Received {
    let advert = Advert {
        version: Version::V2,
        vrid: 51,
        priority,
        auth: Auth::None,
        interval: Interval::Secs(1),
        addresses: vec![vip()],
    };
    let group = ip("224.0.0.18");
    Received {
        src,
        dst: group,
        ttl: 255,
        payload: advert.encode(src, group, V3Checksum::PseudoHeader),
    }
}

fn removed_from(interface: &str) -> AddressRemoved {
    AddressRemoved {
        interface: interface.into(),
        addr: vip(),
        prefix_len: 32,
    }
}

fn announces(n: usize) -> Vec<Call> {
    vec![Announce(vip()); n]
}

/// What becoming MASTER at `priority` does, in order.
fn becoming_master(priority: u8) -> Vec<Call> {
    let mut calls = vec![Advert(priority), Forward(State::Master), AddVips];
    calls.extend(announces(5));
    calls.push(Notify(State::Master, priority));
    calls
}

/// What stopping does when not MASTER: no advert, the STOP notification, and the
/// clean-up that runs whatever the state.
fn stopped_outside_master(priority: u8) -> Vec<Call> {
    vec![
        Notify(State::Initialize, priority),
        RemoveVips,
        Forward(State::Initialize),
    ]
}

/// Priority 100, 1 s: Master_Down_Interval = 3 s + 156/256 s.
const MASTER_DOWN: Duration = Duration::from_nanos(3_609_375_000);

/// A driver that has started and taken over after the master-down interval.
async fn master(extra: &str) -> Driver<Recorder> {
    let mut d = driver(extra);
    d.start().await;
    run_until(&mut d, MASTER_DOWN).await;
    assert_eq!(d.machine.state(), State::Master);
    d.io.calls.clear();
    d
}

#[tokio::test]
async fn start_clears_stale_vips_then_waits_as_backup() {
    let mut d = driver("priority = 100");
    d.start().await;
    assert_eq!(take(&mut d), [RemoveVips, Notify(State::Backup, 100)]);
    assert_eq!(d.next_deadline(), Some(d.io.t0 + MASTER_DOWN));
    let status = d.io.statuses.last().unwrap();
    assert_eq!(
        (status.state.as_str(), status.priority, status.source),
        ("BACKUP", 100, us())
    );
}

#[tokio::test]
async fn becoming_master_forwards_before_adding_and_announcing_the_vips() {
    let mut d = driver("priority = 100");
    d.start().await;
    take(&mut d);
    run_until(&mut d, MASTER_DOWN - ms(1)).await;
    assert_eq!(take(&mut d), []);
    run_until(&mut d, MASTER_DOWN).await;
    assert_eq!(take(&mut d), becoming_master(100));
    assert_eq!(d.io.statuses.last().unwrap().state, "MASTER");
}

#[tokio::test]
async fn the_address_owner_is_master_at_once() {
    let mut d = driver("priority = 255");
    d.start().await;
    let mut expect = vec![RemoveVips];
    expect.extend(becoming_master(255));
    assert_eq!(take(&mut d), expect);
}

#[tokio::test]
async fn a_master_advertises_every_interval_and_announces_twice() {
    let mut d = master("priority = 100").await;
    // keepalived's defaults: 5 messages at once (already sent), 5 more after 5 s.
    run_until(&mut d, MASTER_DOWN + ms(5500)).await;
    let at = |s: u64| MASTER_DOWN + Duration::from_secs(s);
    let mut expect: Vec<(Duration, Call)> = (1..=5).map(|s| (at(s), Advert(100))).collect();
    expect.splice(5..5, announces(5).into_iter().map(|c| (at(5), c)));
    assert_eq!(d.io.calls, expect);
    d.io.calls.clear();
    run_until(&mut d, MASTER_DOWN + ms(30_500)).await;
    assert!(
        take(&mut d).iter().all(|c| *c == Advert(100)),
        "no refresh unless configured"
    );
}

#[tokio::test]
async fn garp_refresh_and_repeat_follow_the_config() {
    let mut d =
        master("priority = 100\ngarp_master_delay = 0\ngarp_master_refresh = 10\ngarp_master_repeat = 2\ngarp_master_refresh_repeat = 3")
            .await;
    run_until(&mut d, MASTER_DOWN + ms(20_500)).await;
    let announced: Vec<Duration> =
        d.io.calls
            .iter()
            .filter(|(_, c)| matches!(c, Announce(_)))
            .map(|(t, _)| *t - MASTER_DOWN)
            .collect();
    let ten = Duration::from_secs(10);
    assert_eq!(announced, [ten, ten, ten, ten * 2, ten * 2, ten * 2]);
}

#[tokio::test]
async fn announcements_start_when_the_data_plane_forwards() {
    let mut d = driver("priority = 100");
    d.io.forward_takes = ms(300);
    d.start().await;
    d.io.calls.clear();
    run_until(&mut d, MASTER_DOWN).await;
    let second_burst = MASTER_DOWN + ms(300) + Duration::from_secs(5);
    run_until(&mut d, second_burst).await;
    let last: Vec<_> = d.io.calls.iter().rev().take(5).cloned().collect();
    assert_eq!(last, vec![(second_burst, Announce(vip())); 5]);
}

#[tokio::test]
async fn leaving_master_stops_forwarding_in_the_step_that_removes_the_vips() {
    let mut d = master("priority = 100").await;
    d.received(&advert_from(peer(), 200)).await;
    assert_eq!(
        take(&mut d),
        [
            Advert(100),
            RemoveVips,
            Forward(State::Backup),
            Notify(State::Backup, 100)
        ]
    );
    // The second gratuitous ARP burst is cancelled with the VIPs.
    for s in 1..=6 {
        run_until(&mut d, MASTER_DOWN + Duration::from_secs(s)).await;
        d.received(&advert_from(peer(), 200)).await;
    }
    assert_eq!(take(&mut d), []);
    let status = d.io.statuses.last().unwrap();
    assert_eq!(status.state, "BACKUP");
    assert_eq!(status.last_advert_from, Some(peer()));
}

#[tokio::test]
async fn a_backup_hearing_a_higher_master_stays_backup() {
    let mut d = driver("priority = 100");
    d.start().await;
    take(&mut d);
    for s in 0..10 {
        run_until(&mut d, Duration::from_secs(s)).await;
        d.received(&advert_from(peer(), 200)).await;
    }
    run_until(&mut d, Duration::from_secs(9) + MASTER_DOWN - ms(1)).await;
    assert_eq!(take(&mut d), []);
    run_until(&mut d, Duration::from_secs(9) + MASTER_DOWN).await;
    assert_eq!(take(&mut d), becoming_master(100), "master gone: take over");
}

#[tokio::test]
async fn a_master_hearing_a_lower_priority_reasserts_itself() {
    let mut d = master("priority = 100").await;
    d.received(&advert_from(peer(), 50)).await;
    let mut expect = vec![Advert(100)];
    expect.extend(announces(5));
    assert_eq!(take(&mut d), expect);
}

#[tokio::test]
async fn our_own_looped_back_advert_and_bad_ones_change_nothing() {
    let mut d = master("priority = 100").await;
    d.received(&advert_from(us(), 200)).await;
    let mut bad = advert_from(peer(), 200);
    bad.ttl = 1;
    d.received(&bad).await;
    assert_eq!(take(&mut d), []);
    assert_eq!(d.machine.state(), State::Master);
    assert_eq!(d.adverts.rejected().values().sum::<u64>(), 1);
    let status = d.io.statuses.last().unwrap();
    assert_eq!(
        status.rejected.get("bad_ttl"),
        Some(&1),
        "a rejection is published at once"
    );
    assert_eq!(
        status.counts.adverts_received, 0,
        "neither advert counts as received"
    );
}

#[tokio::test]
async fn a_vip_removed_from_a_master_is_put_back_and_announced() {
    let mut d = master("priority = 100").await;
    d.address_removed(&removed_from("eth1")).await;
    assert_eq!(take(&mut d), [], "another interface: not ours");
    d.address_removed(&removed_from("eth0")).await;
    let mut expect = vec![RestoreVip(vip())];
    expect.extend(announces(5));
    assert_eq!(take(&mut d), expect, "no transition, no notification");
    assert_eq!(d.machine.state(), State::Master);
    // Already back (the removal was our own): nothing to announce.
    d.io.vip_present = true;
    d.address_removed(&removed_from("eth0")).await;
    assert_eq!(take(&mut d), []);
}

#[tokio::test]
async fn a_vip_removed_outside_master_stays_removed() {
    let mut d = driver("priority = 100");
    d.start().await;
    take(&mut d);
    d.address_removed(&removed_from("eth0")).await;
    assert_eq!(take(&mut d), [], "a BACKUP holds no VIP");
    let mut d = master("priority = 100").await;
    d.received(&advert_from(peer(), 200)).await;
    take(&mut d);
    // The echo of the removal leaving MASTER made.
    d.address_removed(&removed_from("eth0")).await;
    assert_eq!(take(&mut d), []);
}

#[tokio::test]
async fn stopping_a_master_resigns() {
    let mut d = master("priority = 100").await;
    d.stop().await;
    assert_eq!(
        take(&mut d),
        [
            Advert(0),
            RemoveVips,
            Forward(State::Initialize),
            Notify(State::Initialize, 100),
            // Whatever the state was, nothing of ours stays.
            RemoveVips,
            Forward(State::Initialize),
        ]
    );
    assert_eq!(d.io.statuses.last().unwrap().state, "INIT");
}

#[tokio::test]
async fn stopping_a_backup_sends_nothing() {
    let mut d = driver("priority = 100");
    d.start().await;
    take(&mut d);
    d.stop().await;
    assert_eq!(take(&mut d), stopped_outside_master(100));
}

#[tokio::test]
async fn a_tracked_interface_going_down_is_a_fault() {
    let mut d = master("priority = 100").await;
    d.link_changed(OTHER_IFINDEX, false).await;
    assert_eq!(take(&mut d), [], "untracked interface");
    d.link_changed(OWN_IFINDEX, false).await;
    assert_eq!(
        take(&mut d),
        [
            Advert(0),
            RemoveVips,
            Forward(State::Fault),
            Notify(State::Fault, 100)
        ]
    );
    d.link_changed(OWN_IFINDEX, false).await;
    assert_eq!(take(&mut d), [], "no change");
    d.link_changed(OWN_IFINDEX, true).await;
    assert_eq!(take(&mut d), [Notify(State::Backup, 100)]);
    let back = d.io.now - d.io.t0;
    run_until(&mut d, back + MASTER_DOWN).await;
    assert_eq!(take(&mut d), becoming_master(100));
}

#[tokio::test]
async fn a_tracked_interface_down_at_start_starts_in_fault() {
    let mut d = driver("priority = 100");
    d.io.down.insert(OWN_IFINDEX);
    d.start().await;
    assert_eq!(take(&mut d), [RemoveVips, Notify(State::Fault, 100)]);
    assert_eq!(d.next_deadline(), None);
}

#[tokio::test]
async fn a_weighted_script_moves_the_advertised_priority() {
    let script = Tracked {
        what: "script chk".into(),
        weight: Some(-30),
        reverse: false,
    };
    let mut d = driver_with(spec("priority = 100"), vec![(script, true)]);
    d.start().await;
    run_until(&mut d, MASTER_DOWN).await;
    take(&mut d);
    d.verdict(0, false).await;
    assert_eq!(take(&mut d), [], "no transition, no notification");
    assert_eq!(d.io.statuses.last().unwrap().priority, 70);
    run_until(&mut d, MASTER_DOWN + Duration::from_secs(1)).await;
    assert_eq!(take(&mut d), [Advert(70)]);
    d.verdict(7, false).await;
    d.verdict(0, true).await;
    run_until(&mut d, MASTER_DOWN + Duration::from_secs(2)).await;
    assert_eq!(take(&mut d), [Advert(100)]);
}

#[tokio::test]
async fn a_script_without_weight_faults_until_stopped() {
    let script = Tracked {
        what: "script chk".into(),
        weight: None,
        reverse: false,
    };
    let mut d = driver_with(spec("priority = 100"), vec![(script, false)]);
    d.start().await;
    assert_eq!(take(&mut d), [RemoveVips, Notify(State::Fault, 100)]);
    d.stop().await;
    assert_eq!(take(&mut d), stopped_outside_master(100));
}

#[tokio::test]
async fn every_step_publishes_the_status() {
    let mut d = driver("priority = 100");
    d.start().await;
    let published = d.io.statuses.len();
    d.received(&advert_from(peer(), 200)).await;
    assert_eq!(d.io.statuses.len(), published + 1);
    let status = d.io.statuses.last().unwrap();
    assert_eq!(status.name, "VI_1");
    assert_eq!(status.interface, "eth0");
    assert_eq!((status.vrid, status.version), (51, 2));
    assert_eq!(status.configured_priority, 100);
    assert_eq!(status.vips, [vip()]);
    assert_eq!(status.last_advert_from, Some(peer()));
    assert_eq!(status.counts.adverts_received, 1);
}

#[tokio::test]
async fn the_status_counts_adverts_and_transitions_to_and_from_master() {
    let mut d = master("priority = 100").await;
    let c = d.io.statuses.last().unwrap().counts;
    assert_eq!((c.became_master, c.left_master), (1, 0));
    assert_eq!(c.adverts_sent, 1, "the advert of the takeover");
    run_until(&mut d, MASTER_DOWN + Duration::from_millis(2_500)).await;
    let c = d.io.statuses.last().unwrap().counts;
    assert_eq!(c.adverts_sent, 3, "one a second while MASTER");
    // A higher priority takes over: MASTER released.
    d.received(&advert_from(peer(), 200)).await;
    let c = d.io.statuses.last().unwrap().counts;
    assert_eq!(
        (c.became_master, c.left_master, c.adverts_received),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn the_run_loop_follows_links_and_resigns_when_stopped() {
    let mut d = driver("priority = 255");
    let (mirror, mut calls) = tokio::sync::mpsc::unbounded_channel();
    d.io.mirror = Some(mirror);
    d.io.real_clock = true;
    let (stop_tx, stop) = oneshot::channel();
    let (link_tx, links) = futures::channel::mpsc::unbounded();
    let (_verdict_tx, verdicts) = mpsc::channel(1);
    let (address_tx, addresses) = futures::channel::mpsc::unbounded();
    let (update_tx, updates) = mpsc::channel(1);
    let task = tokio::spawn(d.run(Inputs {
        stop,
        links: links.boxed(),
        verdicts,
        addresses: addresses.boxed(),
        routes: futures::stream::pending().boxed(),
        updates,
        sync: None,
    }));
    let mut until = async |last: Call| {
        let mut seen = Vec::new();
        while let Ok(Some(call)) = tokio::time::timeout(Duration::from_secs(5), calls.recv()).await
        {
            seen.push(call.clone());
            if call == last {
                break;
            }
        }
        seen
    };
    let mut expect = vec![RemoveVips];
    expect.extend(becoming_master(255));
    assert_eq!(until(Notify(State::Master, 255)).await, expect);
    address_tx.unbounded_send(removed_from("eth0")).unwrap();
    assert_eq!(until(RestoreVip(vip())).await, [RestoreVip(vip())]);
    for _ in 0..5 {
        assert_eq!(until(Announce(vip())).await, [Announce(vip())]);
    }
    // A reload from owner to priority 254: still MASTER, the next advert says 254.
    update_tx.send(update("priority = 254")).await.unwrap();
    let adverts = until(Advert(254)).await;
    assert!(
        adverts.iter().all(|c| matches!(c, Advert(_))),
        "{adverts:?}"
    );
    let down = LinkEvent {
        ifindex: OWN_IFINDEX,
        up: false,
        name: None,
    };
    link_tx.unbounded_send(down).unwrap();
    assert_eq!(
        until(Notify(State::Fault, 255)).await,
        [
            Advert(0),
            RemoveVips,
            Forward(State::Fault),
            Notify(State::Fault, 254)
        ]
    );
    stop_tx.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(
        until(Forward(State::Initialize)).await,
        stopped_outside_master(254)
    );
}

fn link_event(ifindex: u32, up: bool, name: Option<&str>) -> LinkEvent {
    LinkEvent {
        ifindex,
        up,
        name: name.map(str::to_string),
    }
}

/// What the run loop does with a link event.
async fn link(d: &mut Driver<Recorder>, ev: LinkEvent) {
    let up = d.follow_interface(&ev).await;
    d.link_changed(ev.ifindex, up).await;
}

#[tokio::test]
async fn an_interface_deleted_and_re_created_faults_then_follows_the_new_index() {
    let mut d = driver("");
    d.start().await;
    run_until(&mut d, ms(4000)).await;
    assert_eq!(d.machine.state(), State::Master);
    take(&mut d);
    // Deleted: the kernel's DelLink names no interface.
    link(&mut d, link_event(OWN_IFINDEX, false, None)).await;
    assert_eq!(d.machine.state(), State::Fault);
    let calls = take(&mut d);
    assert!(calls.contains(&Notify(State::Fault, 100)), "{calls:?}");
    // Another interface coming and going changes nothing.
    link(&mut d, link_event(OTHER_IFINDEX, true, Some("eth1"))).await;
    assert_eq!(d.machine.state(), State::Fault);
    // Re-created, down at first: the socket moves, the instance stays in FAULT.
    let new = 17;
    link(&mut d, link_event(new, false, Some("eth0"))).await;
    assert_eq!(take(&mut d), [Rebind(new)]);
    assert_eq!(d.machine.state(), State::Fault);
    // Up: out of FAULT into BACKUP, and MASTER again once no advert came.
    link(&mut d, link_event(new, true, Some("eth0"))).await;
    assert_eq!(d.machine.state(), State::Backup);
    assert!(take(&mut d).contains(&Notify(State::Backup, 100)));
    run_until(&mut d, ms(8000)).await;
    assert_eq!(d.machine.state(), State::Master);
    assert!(take(&mut d).contains(&AddVips));
}

#[tokio::test]
async fn a_re_created_interface_without_the_source_address_stays_in_fault_until_the_socket_opens() {
    let mut d = driver("");
    d.start().await;
    run_until(&mut d, ms(4000)).await;
    assert_eq!(d.machine.state(), State::Master);
    link(&mut d, link_event(OWN_IFINDEX, false, None)).await;
    assert_eq!(d.machine.state(), State::Fault);
    // Back and up, but the socket cannot open there (no source address yet).
    d.io.socket_closed = true;
    let new = 17;
    link(&mut d, link_event(new, true, Some("eth0"))).await;
    assert_eq!(
        d.machine.state(),
        State::Fault,
        "up, but adverts can neither leave nor arrive"
    );
    run_until(&mut d, ms(12000)).await;
    assert_eq!(
        d.machine.state(),
        State::Fault,
        "no MASTER claimed meanwhile"
    );
    take(&mut d);
    // The address is back: the socket opens (as `recv` finds), out of FAULT.
    d.io.socket_closed = false;
    d.follow_socket().await;
    assert_eq!(d.machine.state(), State::Backup);
    assert!(take(&mut d).contains(&Notify(State::Backup, 100)));
    run_until(&mut d, ms(16000)).await;
    assert_eq!(d.machine.state(), State::Master);
}

#[tokio::test]
async fn an_interface_renamed_away_is_down_and_renamed_back_is_up() {
    let mut d = driver("");
    d.start().await;
    run_until(&mut d, ms(4000)).await;
    assert_eq!(d.machine.state(), State::Master);
    link(&mut d, link_event(OWN_IFINDEX, true, Some("moved0"))).await;
    assert_eq!(d.machine.state(), State::Fault, "renamed away");
    link(&mut d, link_event(OWN_IFINDEX, true, Some("eth0"))).await;
    assert_eq!(d.machine.state(), State::Backup, "renamed back");
    assert!(
        !take(&mut d).iter().any(|c| matches!(c, Rebind(_))),
        "same index: the socket stays"
    );
}

// ----- reload: new settings in place -----

/// The update a reload sends for `extra` (tracking unchanged unless `tracking`).
fn update(extra: &str) -> Update {
    Update {
        spec: spec(extra),
        source: us(),
        tracking: None,
        sync: None,
    }
}

#[tokio::test]
async fn a_reload_keeps_master_and_advertises_the_new_priority_next() {
    let mut d = master("priority = 100").await;
    let verdicts = d.reconfigure(update("priority = 150")).await;
    assert!(verdicts.is_none());
    assert_eq!(take(&mut d), [], "no transition, no VIP touched");
    assert_eq!(d.machine.state(), State::Master);
    let status = d.io.statuses.last().unwrap();
    assert_eq!((status.priority, status.configured_priority), (150, 150));
    run_until(&mut d, MASTER_DOWN + ms(1000)).await;
    assert_eq!(take(&mut d), [Advert(150)]);
}

#[tokio::test]
async fn a_reload_adds_and_announces_a_new_vip_and_removes_only_a_gone_one() {
    let two = "priority = 100\nvirtual_ipaddress_excluded = [\"198.18.0.101/32\"]";
    let mut d = master("priority = 100").await;
    d.reconfigure(update(two)).await;
    let added = ip("198.18.0.101");
    let mut expect = vec![AddSome(vec![added])];
    expect.extend(vec![Announce(added); 5]);
    assert_eq!(take(&mut d), expect);
    assert_eq!(d.io.statuses.last().unwrap().vips, [vip(), added]);
    // The second burst of becoming MASTER (at 5 s) announces both now.
    run_until(&mut d, MASTER_DOWN + ms(5500)).await;
    let announced: Vec<Call> = take(&mut d)
        .into_iter()
        .filter(|c| matches!(c, Announce(_)))
        .collect();
    assert_eq!(announced.len(), 10);
    // Back to one VIP: only the other one goes.
    d.reconfigure(update("priority = 100")).await;
    assert_eq!(take(&mut d), [RemoveSome(vec![added])]);
    // A BACKUP holds no VIP: a reload touches none.
    let mut b = driver("priority = 100");
    b.start().await;
    take(&mut b);
    b.reconfigure(update(two)).await;
    assert_eq!(take(&mut b), []);
    assert_eq!(b.machine.state(), State::Backup);
}

#[tokio::test]
async fn a_reload_with_new_peers_reopens_the_socket_and_keeps_the_state() {
    let mut d = master("priority = 100").await;
    d.reconfigure(update("priority = 100\nunicast_peer = [\"198.18.0.2\"]"))
        .await;
    assert_eq!(take(&mut d), [Resocket(vec![peer()])]);
    assert_eq!(d.machine.state(), State::Master);
    // Same socket again: not reopened.
    d.reconfigure(update("priority = 110\nunicast_peer = [\"198.18.0.2\"]"))
        .await;
    assert_eq!(take(&mut d), []);
}

#[tokio::test]
async fn a_reload_that_needs_a_restart_is_refused_in_place() {
    let mut d = master("priority = 100").await;
    d.reconfigure(update("priority = 150\nversion = 3")).await;
    assert_eq!(take(&mut d), []);
    assert_eq!(d.machine.params().priority, 100);
    assert_eq!(d.spec.version, Version::V2);
}

#[tokio::test]
async fn new_trackers_move_the_priority_by_their_net_effect_only() {
    let weight = |w: i32| Tracked {
        what: "chk".into(),
        weight: Some(w),
        reverse: false,
    };
    let mut d = driver_with(spec("priority = 100"), vec![(weight(-20), false)]);
    d.start().await;
    run_until(&mut d, MASTER_DOWN + ms(1000)).await;
    assert_eq!(d.machine.state(), State::Master);
    assert_eq!(d.machine.effective_priority(), 80);
    take(&mut d);
    // The script's weight is now -30 (tracked anew, with a new verdict channel).
    let s = spec("priority = 100");
    let links = tracked_links(&s, OWN_IFINDEX, &[]);
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    let verdicts = d
        .reconfigure(Update {
            spec: s,
            source: us(),
            tracking: Some((Trackers::new(links, vec![(weight(-30), false)]), rx)),
            sync: None,
        })
        .await;
    assert!(verdicts.is_some());
    assert_eq!(d.machine.effective_priority(), 70);
    assert_eq!(d.machine.state(), State::Master);
    run_until(&mut d, MASTER_DOWN + ms(2000)).await;
    assert_eq!(take(&mut d), [Advert(70)]);
}

mod sync_group {
    use super::*;
    use crate::{
        config::VrrpSyncGroup,
        notify::Notifier,
        vrrp::sync::{Command, SyncGroup},
    };

    /// Two members of group G: VI_A (tracking a fault script) and VI_B, their command
    /// channels, and what the group announced.
    fn pair() -> (
        [Driver<Recorder>; 2],
        [tokio::sync::mpsc::UnboundedReceiver<Command>; 2],
        Notifier,
    ) {
        let config: VrrpSyncGroup =
            toml::from_str("name = \"G\"\ngroup = [\"VI_A\", \"VI_B\"]\nsmtp_alert = false\n")
                .unwrap();
        let notifier = Notifier::recorder();
        let group = SyncGroup::new(&config, notifier.clone());
        let script = Tracked {
            what: "script chk".into(),
            weight: None,
            reverse: false,
        };
        let mut a_spec = spec("priority = 100");
        a_spec.name = "VI_A".into();
        let mut b_spec = spec("priority = 100");
        b_spec.name = "VI_B".into();
        let (a_link, a_rx) = group.join("VI_A");
        let (b_link, b_rx) = group.join("VI_B");
        let a = driver_with(a_spec, vec![(script, true)]).with_sync(Some(a_link));
        let b = driver_with(b_spec, Vec::new()).with_sync(Some(b_link));
        ([a, b], [a_rx, b_rx], notifier)
    }

    /// Hands each driver what the group told it, until nothing is left.
    async fn pump(
        d: &mut [Driver<Recorder>; 2],
        rx: &mut [tokio::sync::mpsc::UnboundedReceiver<Command>; 2],
    ) {
        loop {
            let mut any = false;
            for i in 0..2 {
                while let Ok(c) = rx[i].try_recv() {
                    any = true;
                    d[i].sync_command(c).await;
                }
            }
            if !any {
                return;
            }
        }
    }

    fn group_lines(n: &Notifier) -> Vec<String> {
        (n.announced().into_iter())
            .map(|a| a.line)
            .filter(|l| l.starts_with("GROUP"))
            .collect()
    }

    /// Both started; both master-down timers fire; the group goes MASTER together.
    async fn both_master() -> (
        [Driver<Recorder>; 2],
        [tokio::sync::mpsc::UnboundedReceiver<Command>; 2],
        Notifier,
    ) {
        let (mut d, mut rx, n) = pair();
        for x in d.iter_mut() {
            x.start().await;
        }
        // VI_A's timer fires first: VI_B does not want MASTER yet, so VI_A waits.
        run_until(&mut d[0], MASTER_DOWN).await;
        assert_eq!(d[0].machine.state(), State::Backup, "held by the group");
        run_until(&mut d[1], MASTER_DOWN).await;
        assert_eq!(d[1].machine.state(), State::Master);
        pump(&mut d, &mut rx).await;
        assert_eq!(d[0].machine.state(), State::Master, "taken along");
        for x in d.iter_mut() {
            take(x);
        }
        (d, rx, n)
    }

    #[tokio::test]
    async fn members_become_master_together_once_all_can() {
        let (d, _rx, n) = both_master().await;
        assert_eq!(d[0].machine.state(), State::Master);
        assert_eq!(
            group_lines(&n),
            ["GROUP \"G\" BACKUP", "GROUP \"G\" MASTER"]
        );
    }

    #[tokio::test]
    async fn one_member_stepping_down_takes_the_other_to_backup() {
        let (mut d, mut rx, n) = both_master().await;
        d[1].received(&advert_from(peer(), 200)).await;
        assert_eq!(d[1].machine.state(), State::Backup);
        pump(&mut d, &mut rx).await;
        assert_eq!(d[0].machine.state(), State::Backup);
        assert_eq!(
            take(&mut d[0]),
            [
                RemoveVips,
                Forward(State::Backup),
                Notify(State::Backup, 100)
            ],
            "no priority-0 advert: a step down, not a resignation"
        );
        assert_eq!(group_lines(&n).last().unwrap(), "GROUP \"G\" BACKUP");
        // VI_A's timer fires again, but VI_B hears its better master: VI_A stays BACKUP.
        let later = MASTER_DOWN * 3;
        for s in 0..12 {
            let t = MASTER_DOWN + Duration::from_secs(s);
            run_until(&mut d[1], t).await;
            d[1].received(&advert_from(peer(), 200)).await;
            run_until(&mut d[0], t).await;
        }
        run_until(&mut d[0], later).await;
        assert_eq!(d[0].machine.state(), State::Backup, "prefer backup");
        assert_eq!(group_lines(&n).len(), 3, "no flapping");
    }

    #[tokio::test]
    async fn one_member_s_fault_takes_the_other_to_fault_and_back() {
        let (mut d, mut rx, n) = both_master().await;
        d[0].verdict(0, false).await;
        pump(&mut d, &mut rx).await;
        assert_eq!(d[0].machine.state(), State::Fault);
        assert_eq!(d[1].machine.state(), State::Fault);
        assert_eq!(
            take(&mut d[1]),
            [
                Advert(0),
                RemoveVips,
                Forward(State::Fault),
                Notify(State::Fault, 100)
            ],
            "the healthy member resigns too"
        );
        assert_eq!(group_lines(&n).last().unwrap(), "GROUP \"G\" FAULT");
        d[0].verdict(0, true).await;
        pump(&mut d, &mut rx).await;
        assert_eq!(d[0].machine.state(), State::Backup);
        assert_eq!(d[1].machine.state(), State::Backup);
        assert_eq!(group_lines(&n).len(), 4);
        assert_eq!(group_lines(&n).last().unwrap(), "GROUP \"G\" BACKUP");
    }

    #[tokio::test]
    async fn a_member_starting_while_another_is_faulted_starts_in_fault() {
        let (mut d, mut rx, _n) = pair();
        d[0].verdict(0, false).await;
        d[0].start().await;
        d[1].start().await;
        pump(&mut d, &mut rx).await;
        assert_eq!(d[1].machine.state(), State::Fault);
    }

    #[tokio::test]
    async fn a_reload_moves_a_master_into_a_group_and_out_without_a_transition() {
        let (mut d, mut rx, _n) = both_master().await;
        // VI_B leaves G (a reload: `Instance::update` lets it go, then the driver
        // hears of it): it keeps MASTER; VI_A's fault no longer holds it.
        d[1].sync.as_ref().unwrap().group.leave("VI_B");
        let m = d[1].change_group(None);
        assert!(m.is_none());
        d[1].reconfigure(update("priority = 100")).await;
        take(&mut d[1]);
        d[0].verdict(0, false).await;
        pump(&mut d, &mut rx).await;
        assert_eq!(d[0].machine.state(), State::Fault);
        assert_eq!(d[1].machine.state(), State::Master, "out of the group");
        assert!(
            !take(&mut d[1]).iter().any(|c| matches!(c, Notify(..))),
            "no transition"
        );
        // A reload puts it back into G while VI_A is faulted: it follows the group.
        let config: crate::config::VrrpSyncGroup =
            toml::from_str("name = \"G2\"\ngroup = [\"VI_B\"]\n").unwrap();
        let g2 = SyncGroup::new(&config, Notifier::recorder());
        let (link, new_rx) = g2.join("VI_B");
        rx[1] = d[1].change_group(Some((link, new_rx))).unwrap();
        d[1].reconfigure(update("priority = 100")).await;
        assert_eq!(d[1].machine.state(), State::Master, "alone in G2: kept");
        assert_eq!(g2.state(), State::Master, "the group took its state");
    }
}

// ----- virtual_routes / virtual_rules -----

const ROUTES: &str = "virtual_routes = [\"198.18.9.0/24 src 198.18.0.100 via 198.18.0.254 table 100\"]\n\
                      virtual_rules = [\"from 198.18.0.100 preference 100 table 100\"]";

#[tokio::test]
async fn virtual_routes_follow_master_after_the_vips_and_go_before_them() {
    let set = vec![
        "198.18.9.0/24 src 198.18.0.100 via 198.18.0.254 table 100".to_owned(),
        "from 198.18.0.100/32 preference 100 table 100".to_owned(),
    ];
    let mut d = driver(ROUTES);
    d.start().await;
    // A crashed predecessor's routes go at start, before its VIPs.
    let calls = take(&mut d);
    assert_eq!(calls[..2], [RemoveRoutes(set.clone()), RemoveVips]);
    run_until(&mut d, MASTER_DOWN).await;
    assert_eq!(d.machine.state(), State::Master);
    let calls = take(&mut d);
    let at = |c: &Call| calls.iter().position(|x| x == c).unwrap();
    assert_eq!(at(&AddRoutes(set.clone())), at(&AddVips) + 1, "{calls:?}");
    // A higher priority takes over: routes and rules go, then the VIPs.
    d.received(&advert_from(peer(), 200)).await;
    assert_eq!(d.machine.state(), State::Backup);
    let calls = take(&mut d);
    let at = |c: &Call| calls.iter().position(|x| x == c).unwrap();
    assert_eq!(
        at(&RemoveRoutes(set.clone())) + 1,
        at(&RemoveVips),
        "{calls:?}"
    );
    // Stop removes them whatever the state.
    d.stop().await;
    assert!(take(&mut d).contains(&RemoveRoutes(set)));
}

#[tokio::test]
async fn a_reload_changes_a_masters_virtual_routes_in_place() {
    let mut d = master(ROUTES).await;
    let next = "virtual_routes = [\"198.18.9.0/24 src 198.18.0.100 via 198.18.0.254 table 100\", \
                \"blackhole 198.18.10.0/24\"]";
    d.reconfigure(update(next)).await;
    assert_eq!(
        take(&mut d),
        [
            RemoveRoutes(vec!["from 198.18.0.100/32 preference 100 table 100".into()]),
            AddRoutes(vec!["blackhole 198.18.10.0/24".into()]),
        ],
        "only the difference, no transition"
    );
    assert_eq!(d.machine.state(), State::Master);
    // A BACKUP has none: a reload adds none.
    let mut b = driver("");
    b.start().await;
    take(&mut b);
    b.reconfigure(update(ROUTES)).await;
    assert_eq!(take(&mut b), []);
}

#[tokio::test]
async fn a_masters_virtual_route_removed_by_someone_else_is_put_back() {
    use crate::netlink::route::{Removed, route_message, rule_message};
    let mut d = master(ROUTES).await;
    let route = d.spec.routes.routes[0].clone();
    let rule = d.spec.routes.rules[0].clone();
    d.route_removed(&Removed::Route(route_message(&route, None, &[], false)))
        .await;
    d.route_removed(&Removed::Rule(rule_message(&rule))).await;
    assert_eq!(
        take(&mut d),
        [
            AddRoutes(vec![route.to_string()]),
            AddRoutes(vec![rule.to_string()]),
        ],
        "no transition"
    );
    assert_eq!(d.machine.state(), State::Master);
    // Someone else's route of another table: not ours.
    let mut other = route.clone();
    other.table = 7;
    d.route_removed(&Removed::Route(route_message(&other, None, &[], false)))
        .await;
    assert_eq!(take(&mut d), []);
    // A BACKUP holds none: nothing to put back.
    let mut b = driver(ROUTES);
    b.start().await;
    take(&mut b);
    b.route_removed(&Removed::Route(route_message(&route, None, &[], false)))
        .await;
    assert_eq!(take(&mut b), []);
}

#[tokio::test]
async fn a_master_adds_its_routes_again_when_their_interface_is_back_up() {
    let via_eth1 = "virtual_routes = [\"198.18.9.0/24 dev eth1\"]";
    let mut d = master(via_eth1).await;
    let ev = |up| LinkEvent {
        ifindex: OTHER_IFINDEX,
        up,
        name: Some("eth1".into()),
    };
    // Up without having been down (any RTM_NEWLINK): nothing.
    d.route_link(&ev(true)).await;
    assert_eq!(take(&mut d), []);
    d.route_link(&ev(false)).await;
    assert_eq!(take(&mut d), []);
    d.route_link(&ev(true)).await;
    assert_eq!(
        take(&mut d),
        [AddRoutes(vec!["198.18.9.0/24 dev eth1".into()])]
    );
    // An interface no route names: nothing.
    let other = LinkEvent {
        ifindex: 9,
        up: false,
        name: Some("eth5".into()),
    };
    d.route_link(&other).await;
    d.route_link(&LinkEvent { up: true, ..other }).await;
    assert_eq!(take(&mut d), []);
}
