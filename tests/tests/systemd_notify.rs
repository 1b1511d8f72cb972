//! `xlb run` as a systemd `Type=notify` service, and its log outputs, with a real daemon
//! in network namespaces. The test plays systemd's part: it binds the `NOTIFY_SOCKET`
//! datagram socket and sets `WATCHDOG_USEC`, as systemd does for `WatchdogSec=`; and
//! syslog's: `XLB_SYSLOG_SOCKET` points `--log-facility` at its own socket.
//!
//! It checks that READY=1 comes only once forwarding works (the XDP program attached,
//! a client answered through the VIP at that moment), that WATCHDOG=1 keeps coming from
//! the running loop, that SIGHUP gives RELOADING=1 then READY=1 and reopens the log file
//! (renamed by "logrotate" just before), that SIGTERM gives STOPPING=1, and that the
//! same lines reach syslog with the facility's priority. Without NOTIFY_SOCKET nothing is
//! sent and the log is plain stderr; with stderr as the journal stream, lines carry their
//! priority. The unit's capability bounding set is enough to start, forward, become
//! MASTER and adopt the pins after a restart (setpriv runs the daemon under exactly it).

use std::{
    net::SocketAddr,
    os::unix::net::UnixDatagram,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use integration_tests::netns::{LAB_VIP, Lab, dr_lab, http_get, lab_real, xlb_bin};

/// A VIP of the VRRP instance only (the service's VIP stays on eth0, as without VRRP).
const INSTANCE_VIP: &str = "198.18.0.200";
/// local3, keepalived's `-S 3`.
const FACILITY: &str = "local3";
/// local3 (19) * 8 + info (6).
const LOCAL3_INFO: &str = "<158>";

fn config() -> String {
    format!(
        r#"[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 61
priority = 100
advert_int = 1
virtual_ipaddress = ["{INSTANCE_VIP}/32"]

[[virtual_server]]
ip = "{LAB_VIP}"
port = 80
protocol = "TCP"
lb_algo = "rr"
lb_kind = "DR"
interface = "eth0"

[[virtual_server.real_server]]
ip = "{rs1}"
port = 80
"#,
        rs1 = lab_real(1)
    )
}

/// A datagram socket bound in the lab's directory, read with a timeout.
struct Listener {
    socket: UnixDatagram,
    /// Its file name, in what the test prints.
    path: String,
    /// Everything received so far, in order.
    seen: Vec<String>,
}

impl Listener {
    fn bind(path: &Path) -> Self {
        let _ = std::fs::remove_file(path);
        let socket = UnixDatagram::bind(path).expect("binding a datagram socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        Self {
            socket,
            path: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            seen: Vec::new(),
        }
    }

    /// The next datagram, if one arrives before `deadline`.
    fn next(&mut self, deadline: Instant) -> Option<String> {
        let mut buf = vec![0u8; 64 * 1024];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                // Shown with --nocapture: the exchange as systemd / syslog sees it.
                eprintln!("{:?} received {msg:?}", self.path);
                self.seen.push(msg.clone());
                return Some(msg);
            }
        }
        None
    }

    /// Reads until a datagram satisfies `want`; panics, with what came, after `timeout`.
    fn until(&mut self, what: &str, timeout: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        while let Some(msg) = self.next(deadline) {
            if want(&msg) {
                return msg;
            }
        }
        panic!("no {what} within {timeout:?}; received: {:#?}", self.seen);
    }
}

/// A datagram socket read on a thread of its own, into a list.
struct Collector {
    got: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    fn bind(path: &Path) -> Self {
        let mut listener = Listener::bind(path);
        let got = Arc::new(Mutex::new(Vec::new()));
        let to = Arc::clone(&got);
        // Ends with the test process (it only reads).
        std::thread::spawn(move || {
            loop {
                if let Some(m) = listener.next(Instant::now() + Duration::from_secs(1)) {
                    to.lock().unwrap().push(m);
                }
            }
        });
        Self { got }
    }

    /// The first datagram containing `needle`, waiting a little for it.
    fn find(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(m) = self.got.lock().unwrap().iter().find(|m| m.contains(needle)) {
                return m.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in syslog: {:#?}",
                self.got.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits for READY=1; panics with the daemon's output if it does not come.
fn wait_ready(lab: &Lab, notify: &mut Listener) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(m) = notify.next(deadline) {
        if has(&m, "READY=1") {
            return m;
        }
    }
    panic!(
        "no READY=1; received {:#?}; the daemon said:\n{}",
        notify.seen,
        lab.log("xlb")
    );
}

/// The lines of a notify datagram (`KEY=VALUE` each).
fn has(msg: &str, line: &str) -> bool {
    msg.lines().any(|l| l == line)
}

fn xdp_attached(lab: &Lab) -> bool {
    lab.sh("dir", "ip link show dev eth0").contains("xdp")
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what} not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn notify_protocol_watchdog_reload_stop_and_log_outputs() {
    let mut lab = dr_lab("sdn", 1);
    let cfg = lab.tmp.join("xlb.toml");
    std::fs::write(&cfg, config()).expect("config");
    let mut notify = Listener::bind(&lab.tmp.join("notify.sock"));
    // Syslog reads all the time, as a syslog daemon does (its queue holds 10 datagrams).
    let syslog = Collector::bind(&lab.tmp.join("syslog.sock"));
    // Not "xlb.log": that is where the lab keeps the daemon's stderr.
    let log_file = lab.tmp.join("director.log");

    let mut cmd = lab.command("dir", &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(&cfg)
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .arg("--log-file")
        .arg(&log_file)
        .args(["--log-facility", FACILITY])
        .env("NOTIFY_SOCKET", lab.tmp.join("notify.sock"))
        .env("WATCHDOG_USEC", "1000000")
        .env("XLB_SYSLOG_SOCKET", lab.tmp.join("syslog.sock"));
    lab.spawn("xlb", cmd);

    // READY=1, and at that moment the data plane forwards.
    let ready = wait_ready(&lab, &mut notify);
    assert!(
        xdp_attached(&lab),
        "READY=1 came before XDP was attached to eth0"
    );
    let vip: SocketAddr = format!("{LAB_VIP}:80").parse().unwrap();
    let answer = lab
        .within("client", || http_get(vip, "/"))
        .expect("a request through the VIP right after READY=1");
    assert!(answer.starts_with("rs1 "), "answered by {answer:?}");
    assert!(
        notify.seen[..notify.seen.len() - 1]
            .iter()
            .all(|m| !has(m, "READY=1") && !has(m, "WATCHDOG=1")),
        "nothing but READY=1 first: {:#?}",
        notify.seen
    );
    assert!(
        ready.contains("STATUS=running: 1 virtual service; VRRP VI_1"),
        "a useful status: {ready:?}"
    );

    // The status follows the instance (no peer: MASTER after the master-down interval).
    notify.until("STATUS with VI_1 MASTER", Duration::from_secs(15), |m| {
        m.contains("VI_1 MASTER prio 100")
    });

    // The watchdog keeps being fed (every 0.5 s for WATCHDOG_USEC=1 s).
    for n in 0..3 {
        notify.until(&format!("WATCHDOG=1 #{n}"), Duration::from_secs(10), |m| {
            has(m, "WATCHDOG=1")
        });
    }

    // The log went to the file and to syslog, not to stderr.
    let logged = std::fs::read_to_string(&log_file).expect("the log file");
    assert!(logged.contains("xlb running"), "{logged}");
    assert!(
        !lab.log("xlb").contains("xlb running"),
        "nothing on stderr: {}",
        lab.log("xlb")
    );
    let line = syslog.find("xlb running");
    assert!(
        line.starts_with(LOCAL3_INFO) && line.contains(" xlb["),
        "local3.info, RFC 3164: {line:?}"
    );

    // logrotate moves the file; the reload (SIGHUP) reopens it: RELOADING=1, then READY=1.
    // The reload changes the instance's VRID, which restarts it (the old one resigns
    // first): READY=1 must wait for that.
    let rotated = lab.tmp.join("director.log.1");
    std::fs::rename(&log_file, &rotated).expect("rotating");
    std::fs::write(
        &cfg,
        config().replace("virtual_router_id = 61", "virtual_router_id = 62"),
    )
    .expect("new config");
    lab.signal("xlb", libc::SIGHUP);
    let reloading = notify.until("RELOADING=1", Duration::from_secs(10), |m| {
        has(m, "RELOADING=1")
    });
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "systemd 253's notify-reload wants the time: {reloading:?}"
    );
    notify.until("READY=1 after the reload", Duration::from_secs(20), |m| {
        has(m, "READY=1")
    });
    let new = std::fs::read_to_string(&log_file).expect("the new log file");
    assert!(
        new.contains("from=MASTER to=INIT"),
        "READY=1 only once the old instance had stopped: {new}"
    );
    wait_until(
        "the reload's line in the new file",
        Duration::from_secs(5),
        || std::fs::read_to_string(&log_file).is_ok_and(|s| s.contains("config reloaded")),
    );
    let old = std::fs::read_to_string(&rotated).expect("the rotated file");
    assert!(
        !old.contains("config reloaded"),
        "the moved file no longer written: {old}"
    );
    assert!(xdp_attached(&lab));

    // SIGTERM: STOPPING=1, then the daemon exits.
    lab.signal("xlb", libc::SIGTERM);
    notify.until("STOPPING=1", Duration::from_secs(10), |m| {
        has(m, "STOPPING=1")
    });
    lab.kill("xlb", libc::SIGTERM);
    assert!(
        std::fs::read_to_string(&log_file)
            .expect("the log file")
            .contains("stopping"),
        "the shutdown is logged to the file"
    );
}

#[test]
fn without_notify_socket_nothing_is_sent_and_stderr_is_the_log() {
    let mut lab = dr_lab("sdx", 1);
    let cfg = lab.tmp.join("xlb.toml");
    std::fs::write(&cfg, config()).expect("config");
    // A socket at the path a stale variable would name: nothing may arrive there.
    let mut notify = Listener::bind(&lab.tmp.join("notify.sock"));
    let mut cmd = lab.command("dir", &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(&cfg)
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .env_remove("NOTIFY_SOCKET")
        .env("WATCHDOG_USEC", "1000000");
    lab.spawn("xlb", cmd);
    lab.wait_log("xlb", "xlb running", Duration::from_secs(30));
    assert!(
        notify
            .next(Instant::now() + Duration::from_secs(2))
            .is_none(),
        "sent without NOTIFY_SOCKET: {:#?}",
        notify.seen
    );
    let log = lab.log("xlb");
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI colours off a terminal: {log:?}"
    );
    assert!(
        !log.contains("watchdog"),
        "no watchdog without NOTIFY_SOCKET"
    );
}

/// The unit's `CapabilityBoundingSet=`, as setpriv's `--bounding-set` takes it.
fn unit_bounding_set() -> String {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lb-userspace/dist/xlb.service");
    let text = std::fs::read_to_string(&unit).expect("the unit file");
    let caps = text
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("CapabilityBoundingSet= in the unit");
    let mut set = String::from("-all");
    for cap in caps.split_whitespace() {
        set.push_str(",+");
        set.push_str(&cap.to_ascii_lowercase().replacen("cap_", "", 1));
    }
    set
}

/// `xlb run` in the director's namespace under the unit's capability bounding set.
fn under_unit_caps(lab: &Lab) -> std::process::Command {
    let mut cmd = lab.command("dir", Path::new("setpriv"));
    cmd.arg(format!("--bounding-set={}", unit_bounding_set()))
        .arg("--inh-caps=-all")
        .arg("--")
        .arg(xlb_bin())
        .arg("run")
        .arg("-c")
        .arg(lab.tmp.join("xlb.toml"))
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .env("NOTIFY_SOCKET", lab.tmp.join("notify.sock"));
    cmd
}

/// The unit's hardening does not starve the daemon: under exactly its capability bounding
/// set, `xlb run` attaches, forwards, and its VRRP instance becomes MASTER (raw sockets,
/// the VIP added).
#[test]
fn the_units_capability_bounding_set_is_enough() {
    let mut lab = dr_lab("sdc", 1);
    let cfg = lab.tmp.join("xlb.toml");
    std::fs::write(&cfg, config()).expect("config");
    let mut notify = Listener::bind(&lab.tmp.join("notify.sock"));
    let bounding = unit_bounding_set();
    lab.spawn("xlb", under_unit_caps(&lab));
    wait_ready(&lab, &mut notify);
    let status = std::fs::read_to_string(format!("/proc/{}/status", lab.pid("xlb")))
        .expect("the daemon's status");
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex"))
        .expect("CapBnd");
    assert_ne!(
        bnd,
        u64::MAX >> 23,
        "bounded to the unit's set ({bounding})"
    );
    assert_eq!(
        bnd & (1 << 21),
        if bounding.contains("sys_admin") {
            1 << 21
        } else {
            0
        },
        "CAP_SYS_ADMIN as the unit says"
    );
    let vip: SocketAddr = format!("{LAB_VIP}:80").parse().unwrap();
    let answer = lab
        .within("client", || http_get(vip, "/"))
        .expect("forwarding under the unit's capabilities");
    assert!(answer.starts_with("rs1 "), "{answer:?}");
    notify.until("VI_1 MASTER", Duration::from_secs(15), |m| {
        m.contains("VI_1 MASTER")
    });
    wait_until("the instance's VIP", Duration::from_secs(5), || {
        lab.sh("dir", "ip -o addr show dev eth0")
            .contains(INSTANCE_VIP)
    });
    let log = lab.log("xlb");
    assert!(!log.contains("ERROR"), "{log}");

    // A restart (Restart=on-failure, or an upgrade) under the same set adopts the pinned
    // program and maps.
    lab.kill("xlb", libc::SIGTERM);
    lab.spawn("xlb2", under_unit_caps(&lab));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !notify.next(deadline).is_some_and(|m| has(&m, "READY=1")) {
        assert!(
            Instant::now() < deadline,
            "no READY=1 after the restart:\n{}",
            lab.log("xlb2")
        );
    }
    assert!(
        lab.log("xlb2").contains("adopted=true"),
        "adopted: {}",
        lab.log("xlb2")
    );
    let answer = lab
        .within("client", || http_get(vip, "/"))
        .expect("forwarding after the restart");
    assert!(answer.starts_with("rs1 "), "{answer:?}");
}

/// Under systemd, stderr is the journal (`JOURNAL_STREAM` names it): each line carries its
/// syslog priority for journald and no timestamp of its own. The lab's log file plays
/// the journal stream: its device and inode are what systemd would put in the variable.
#[test]
fn stderr_to_the_journal_carries_priorities() {
    use std::os::unix::fs::MetadataExt;

    let mut lab = dr_lab("sdj", 1);
    let cfg = lab.tmp.join("xlb.toml");
    std::fs::write(&cfg, config()).expect("config");
    // The lab truncates this same file (same inode) when it starts the daemon.
    let stream = lab.log_path("xlb");
    std::fs::write(&stream, "").expect("the stream file");
    let meta = std::fs::metadata(&stream).expect("stat");
    let mut cmd = lab.command("dir", &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(&cfg)
        .arg("--pin-path")
        .arg(&lab.pins.0)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    lab.spawn("xlb", cmd);
    lab.wait_log("xlb", "xlb running", Duration::from_secs(30));
    let log = lab.log("xlb");
    let running = log
        .lines()
        .find(|l| l.contains("xlb running"))
        .expect("the line");
    assert!(
        running.starts_with("<6>xlb::daemon: xlb running"),
        "info, no timestamp: {running:?}"
    );
    assert!(
        log.lines().all(|l| l.starts_with('<')),
        "every line prefixed: {log}"
    );
    // A warning, to see its priority: a config that does not load, on reload.
    std::fs::write(&cfg, "[[virtual_server]]\nip = 1\n").expect("bad config");
    lab.signal("xlb", libc::SIGHUP);
    lab.wait_log("xlb", "reload refused", Duration::from_secs(10));
    let refused = lab
        .log("xlb")
        .lines()
        .find(|l| l.contains("reload refused"))
        .map(str::to_string)
        .expect("the line");
    assert!(refused.starts_with("<3>"), "an error: {refused:?}");
}
