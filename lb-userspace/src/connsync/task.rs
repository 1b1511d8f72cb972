//! The sync task: one tokio task per daemon owns the socket, the sender's memory and the
//! counters. Every [`TICK`] it reads the VRRP instance's state (MASTER sends, any other
//! state receives), scans the tables when master, and publishes its status; datagrams
//! are handled as they arrive. Nothing here runs on the packet path.

use std::{
    collections::{HashMap, HashSet},
    io,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::AsRawFd,
    path::PathBuf,
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tracing::{info, warn};

use super::{
    auth::Key,
    batch, digest,
    directory::Directory,
    sender::{Budget, Sender},
    status::SyncStatus,
    table,
    wire::{self, DIGEST_LEN, Entry, Kind},
};
use crate::{
    config::{Config, sync::SyncConfig},
    dataplane::{Maps, conn_table::now_ticks},
    vrrp::instance::StatusBoard,
};

/// How often the master scans its tables (the 200 ms of the design: a new flow reaches
/// the backup within about that).
pub const TICK: Duration = Duration::from_millis(200);
/// Persistence templates are read by syscall per entry: every fifth tick.
const TEMPLATE_EVERY: u64 = 5;
/// The digest goes out this often (in ticks).
const PUBLISH_EVERY: u64 = 5;
/// How long a peer's matching digest lets the master leave out mh/sh flows.
pub const DIGEST_VALID: Duration = Duration::from_secs(10);

/// Everything the task needs, resolved from the config.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: SyncConfig,
    pub destinations: Vec<SocketAddr>,
    /// Sources datagrams are taken from; empty: any (multicast, authenticated).
    pub peers: Vec<IpAddr>,
    pub interface: Option<String>,
    pub key: Option<Key>,
    pub pin_path: PathBuf,
    pub status_path: PathBuf,
}

impl PartialEq for Settings {
    fn eq(&self, other: &Self) -> bool {
        // The key is compared through the config (its text or file path).
        self.config == other.config
            && self.destinations == other.destinations
            && self.peers == other.peers
            && self.interface == other.interface
            && self.pin_path == other.pin_path
    }
}

impl Settings {
    /// The sync settings of `cfg`, if it has a `[sync]` table.
    pub fn of(
        cfg: &Config,
        pin_path: PathBuf,
        status_path: PathBuf,
    ) -> Result<Option<Self>, String> {
        let Some(s) = &cfg.sync else {
            return Ok(None);
        };
        // What `xlb check` checks on the host, checked again where it matters.
        if let Some(problem) = s
            .key_file
            .as_deref()
            .and_then(crate::config::sync::key_file_problem)
        {
            return Err(format!("sync.key_file: {problem}"));
        }
        let key = s
            .secret()
            .map_err(|e| format!("sync key_file: {e}"))?
            .map(|k| Key::new(&k));
        Ok(Some(Self {
            config: s.clone(),
            destinations: s.destinations(cfg),
            peers: s.peers_in_force(cfg),
            interface: s.interface_in_force(cfg).map(str::to_owned),
            key,
            pin_path,
            status_path,
        }))
    }
}

/// The running task; dropping it stops it.
pub struct SyncTask {
    pub settings: Settings,
    handle: tokio::task::AbortHandle,
    status: tokio::sync::watch::Receiver<SyncStatus>,
}

impl SyncTask {
    /// The task's counters as last published.
    pub fn status(&self) -> SyncStatus {
        self.status.borrow().clone()
    }
}

impl Drop for SyncTask {
    fn drop(&mut self) {
        self.handle.abort();
        let _ = std::fs::remove_file(&self.settings.status_path);
    }
}

/// Opens the socket and starts the task.
pub fn start(settings: Settings, board: StatusBoard) -> io::Result<SyncTask> {
    let socket = open_socket(&settings)?;
    info!(
        instance = %settings.config.instance,
        destinations = ?settings.destinations,
        authenticated = settings.key.is_some(),
        "connection sync started"
    );
    let (published, status) = tokio::sync::watch::channel(SyncStatus::default());
    let mut state = State::new(settings.clone(), board, published);
    let task = tokio::spawn(async move { state.run(socket).await });
    let handle = task.abort_handle();
    // A task that dies says so: sync must not stop silently.
    tokio::spawn(async move {
        if let Err(e) = task.await {
            if e.is_panic() {
                tracing::error!("connection sync stopped: the task panicked: {e}");
            }
        }
    });
    Ok(SyncTask {
        settings,
        handle,
        status,
    })
}

fn open_socket(s: &Settings) -> io::Result<UdpSocket> {
    let v4 = s.destinations.first().is_none_or(SocketAddr::is_ipv4);
    let sock = Socket::new(
        if v4 { Domain::IPV4 } else { Domain::IPV6 },
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    sock.set_reuse_address(true)?;
    let ttl = u32::from(s.config.ttl);
    if let Some(ifname) = &s.interface {
        bind_device(&sock, ifname)?;
    }
    if v4 {
        sock.set_ttl(ttl)?;
        sock.set_multicast_ttl_v4(ttl)?;
        sock.set_multicast_loop_v4(false)?;
        if s.peers.is_empty() {
            let ifindex = s
                .interface
                .as_deref()
                .map(ifindex)
                .transpose()?
                .unwrap_or(0);
            sock.join_multicast_v4_n(
                &s.config.group,
                &socket2::InterfaceIndexOrAddress::Index(ifindex),
            )?;
        }
        sock.bind(&SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), s.config.port).into())?;
    } else {
        sock.set_unicast_hops_v6(ttl)?;
        sock.set_only_v6(true)?;
        sock.bind(&SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), s.config.port).into())?;
    }
    sock.set_nonblocking(true)?;
    UdpSocket::from_std(sock.into())
}

fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated name.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::other(format!("no interface {name}"))),
        i => Ok(i),
    }
}

fn bind_device(sock: &Socket, name: &str) -> io::Result<()> {
    // SAFETY: the option value is the name's bytes, its length given.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The maps, reopened from the pins now and then (the connection tables are replaced
/// when they grow).
struct Local {
    maps: Maps,
    tables: crate::dataplane::conn_table::Tables,
    opened: Instant,
}

const REOPEN: Duration = Duration::from_secs(2);

struct State {
    s: Settings,
    board: StatusBoard,
    status: SyncStatus,
    sender: Sender,
    budget: Budget,
    local: Option<Local>,
    dir: Directory,
    master: Option<bool>,
    sequence: u32,
    /// Last sequence seen from each peer (gaps are lost datagrams).
    last_seq: HashMap<IpAddr, u32>,
    /// The last digest of the peer's mh/sh tables, and when it came.
    peer_digest: Option<([u8; DIGEST_LEN], Instant)>,
    my_digest: Option<[u8; DIGEST_LEN]>,
    ticks: u64,
    /// The persistence templates as last read.
    templates: Vec<(u32, Entry)>,
    /// The status as last written.
    written: Option<SyncStatus>,
    /// Where the daemon reads it (for the metrics).
    published: tokio::sync::watch::Sender<SyncStatus>,
}

impl State {
    fn new(
        s: Settings,
        board: StatusBoard,
        published: tokio::sync::watch::Sender<SyncStatus>,
    ) -> Self {
        let status = SyncStatus {
            instance: s.config.instance.clone(),
            role: "starting".into(),
            sync_id: s.config.id,
            destinations: s.destinations.iter().map(ToString::to_string).collect(),
            authenticated: s.key.is_some(),
            ..SyncStatus::default()
        };
        let budget = Budget::new(s.config.rate, Instant::now());
        Self {
            s,
            board,
            status,
            sender: Sender::default(),
            budget,
            local: None,
            dir: Directory::default(),
            master: None,
            sequence: 0,
            last_seq: HashMap::new(),
            peer_digest: None,
            my_digest: None,
            ticks: 0,
            templates: Vec::new(),
            written: None,
            published,
        }
    }

    async fn run(&mut self, socket: UdpSocket) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = vec![0u8; 65536];
        loop {
            tokio::select! {
                _ = tick.tick() => self.on_tick(&socket).await,
                r = socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.on_datagram(&socket, &buf[..n], from).await,
                    Err(e) => self.error(format!("receiving: {e}")),
                },
            }
        }
    }

    fn error(&mut self, e: String) {
        if self.status.last_error.as_ref() != Some(&e) {
            warn!("connection sync: {e}");
        }
        self.status.last_error = Some(e);
    }

    fn is_master(&self) -> bool {
        self.board
            .lock()
            .ok()
            .and_then(|b| b.get(&self.s.config.instance).map(|i| i.state == "MASTER"))
            .unwrap_or(false)
    }

    /// The maps and the directory, reopened when stale.
    fn refresh_local(&mut self) -> bool {
        let stale = self
            .local
            .as_ref()
            .is_none_or(|l| l.opened.elapsed() >= REOPEN);
        if stale {
            match Maps::from_pins(&self.s.pin_path).and_then(|maps| {
                let tables = maps.conn_tables(true)?;
                Ok(Local {
                    maps,
                    tables,
                    opened: Instant::now(),
                })
            }) {
                Ok(l) => self.local = Some(l),
                Err(e) => {
                    self.error(format!("opening the pinned maps: {e}"));
                    return false;
                }
            }
        }
        let Some(l) = &self.local else { return false };
        self.dir = Directory::read(&l.maps);
        true
    }

    async fn on_tick(&mut self, socket: &UdpSocket) {
        self.ticks += 1;
        let master = self.is_master();
        if self.master != Some(master) {
            self.master = Some(master);
            self.status.role = if master { "master" } else { "backup" }.into();
            info!(role = %self.status.role, "connection sync role");
            if master {
                // What a backup had installed is now ours to send.
                self.sender.forget_all();
            } else {
                // A backup that (re)starts asks for the whole table.
                self.send_control(socket, Kind::BulkRequest, None).await;
                self.status.bulk_requests_sent += 1;
            }
        }
        if !self.refresh_local() {
            self.publish();
            return;
        }
        if self.ticks.is_multiple_of(PUBLISH_EVERY) {
            let Local { maps, .. } = self.local.as_ref().expect("refreshed");
            self.my_digest = digest::of(&self.dir, |i| {
                (i < maps.table.len() as u32).then(|| maps.table.get(i as usize))
            });
            if let Some(d) = self.my_digest {
                self.send_control(socket, Kind::Digest, Some(d)).await;
            }
        }
        if master {
            self.send_round(socket).await;
        }
        self.publish();
    }

    /// Writes the status file when it changed (every tick at most: `xlb status` is
    /// never more than [`TICK`] behind).
    fn publish(&mut self) {
        self.status.hashed_skipped = self.hashed_skip();
        self.status.flows_synced = self.sender.known() as u64;
        if self.written.as_ref() != Some(&self.status) {
            self.status.write(&self.s.status_path);
            self.published.send_replace(self.status.clone());
            self.written = Some(self.status.clone());
        }
    }

    /// Whether mh/sh flows may be left out: the peer's last digest, less than
    /// [`DIGEST_VALID`] old, is ours (a differing digest ends it at once).
    fn hashed_skip(&self) -> bool {
        match (self.my_digest, self.peer_digest) {
            (Some(mine), Some((theirs, at))) => mine == theirs && at.elapsed() < DIGEST_VALID,
            _ => false,
        }
    }

    /// One round of the master: scan, pick what is due, send within the budget.
    async fn send_round(&mut self, socket: &UdpSocket) {
        let started = Instant::now();
        let Local { maps, tables, .. } = self.local.as_ref().expect("refreshed");
        let mut scanned = table::scan_conns(tables, &self.dir, now_ticks());
        // Templates from the last read of them, so that they stay known (not due) between
        // reads.
        if self.ticks.is_multiple_of(TEMPLATE_EVERY) {
            self.templates = table::scan_templates(maps, &self.dir, table::monotonic_ns());
        }
        scanned.extend_from_slice(&self.templates);
        let skip: HashSet<u32> = if self.hashed_skip() {
            self.dir.hashed_ids().into_iter().collect()
        } else {
            HashSet::new()
        };
        let now = Instant::now();
        let mut due = self.sender.due(&scanned, &skip, now);
        self.status.last_scan_us = started.elapsed().as_micros() as u64;
        let budget = self.budget.available(now);
        due.truncate(budget);
        if due.is_empty() {
            return;
        }
        self.budget.spend(due.len());
        let key = self.s.key.clone();
        let datagrams = batch::datagrams(
            &due,
            self.s.config.maxlen,
            self.s.config.id,
            key.as_ref(),
            &mut self.sequence,
        );
        let mut at = 0;
        for (datagram, n) in datagrams {
            if self.send(socket, &datagram).await {
                self.status.sent_entries += n as u64;
                for e in &due[at..at + n] {
                    self.sender.mark_sent(e, now);
                }
            }
            at += n;
        }
    }

    async fn send_control(
        &mut self,
        socket: &UdpSocket,
        kind: Kind,
        digest: Option<[u8; DIGEST_LEN]>,
    ) {
        let mut out = Vec::new();
        self.sequence = self.sequence.wrapping_add(1);
        wire::encode_header(
            &mut out,
            kind,
            self.s.config.id,
            self.sequence,
            0,
            self.s.key.is_some(),
        );
        if let Some(d) = digest {
            out.extend_from_slice(&d);
        }
        if let Some(k) = &self.s.key {
            k.sign(&mut out);
        }
        self.send(socket, &out).await;
    }

    /// Sends to every destination; false if none took it.
    async fn send(&mut self, socket: &UdpSocket, datagram: &[u8]) -> bool {
        let mut any = false;
        for to in self.s.destinations.clone() {
            match socket.send_to(datagram, to).await {
                Ok(_) => {
                    any = true;
                    self.status.sent_datagrams += 1;
                    self.status.sent_bytes += datagram.len() as u64;
                }
                Err(e) => self.error(format!("sending to {to}: {e}")),
            }
        }
        any
    }

    async fn on_datagram(&mut self, socket: &UdpSocket, b: &[u8], from: SocketAddr) {
        self.status.received_datagrams += 1;
        let from_ip = match from.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if !self.s.peers.is_empty() && !self.s.peers.contains(&from_ip) {
            self.status.drop("unknown_peer");
            return;
        }
        let d = match wire::decode(b) {
            Ok(d) => d,
            Err(e) => {
                self.status.drop(e.reason());
                return;
            }
        };
        match (&self.s.key, wire::signed_part(b)) {
            (Some(_), None) => return self.status.drop("unsigned"),
            (Some(k), Some((body, mac))) if !k.verify(body, mac) => {
                return self.status.drop("bad_hmac");
            }
            (None, Some(_)) => return self.status.drop("unexpected_hmac"),
            _ => {}
        }
        if d.header.sync_id != self.s.config.id {
            return self.status.drop("sync_id");
        }
        if let Some(last) = self.last_seq.insert(from_ip, d.header.sequence) {
            let gap = d.header.sequence.wrapping_sub(last).wrapping_sub(1);
            // A restarted peer starts again at 1: not a loss.
            if gap < 1 << 16 {
                self.status.lost += u64::from(gap);
            }
        }
        match d.header.kind {
            Kind::Entries => self.install(&d.entries),
            Kind::BulkRequest => {
                if self.master == Some(true) {
                    info!(peer = %from_ip, "bulk sync requested: sending the whole table, paced");
                    self.sender.forget_all();
                    self.status.bulk_requests_served += 1;
                    self.send_round(socket).await;
                }
            }
            Kind::Digest => {
                self.peer_digest = d.digest.map(|d| (d, Instant::now()));
            }
        }
    }

    fn install(&mut self, entries: &[Entry]) {
        self.status.received_entries += entries.len() as u64;
        if self.master == Some(true) {
            // Two masters (split brain): ours is the table in force.
            self.status.drop("while_master");
            return;
        }
        if !self.refresh_local() {
            return;
        }
        let now = now_ticks();
        let now_ns = table::monotonic_ns();
        let Local { maps, tables, .. } = self.local.as_mut().expect("refreshed");
        for e in entries {
            let r = if e.is_template() {
                table::install_template(maps, &self.dir, e, now_ns)
            } else {
                table::install_conn(tables, &self.dir, e, now)
            };
            match r {
                Ok(()) => self.status.installed += 1,
                Err(skip) => self.status.skip(skip.reason()),
            }
        }
    }
}
