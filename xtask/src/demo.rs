//! `cargo xtask demo`: direct-routing load balancing with real kernel XDP and two
//! directors in one VRRP group, in network namespaces on this machine, built up and torn
//! down again in about twenty seconds.
//!
//! The lab is the one the privileged VRRP tests use (`tests/src/netns.rs`, `ha_lab`): a
//! switch namespace with bridge `br0`; a client (198.18.0.1); two directors, dir1
//! (198.18.0.2, VRRP priority 150) and dir2 (198.18.0.3, priority 100), neither holding the
//! VIP 198.18.0.100 by hand, both running `xlb run` with the same virtual server and a
//! `[[vrrp_instance]]` that owns the VIP; three real servers (198.18.0.11-13) prepared with
//! `xlb realserver setup` and running `tests/lab/realserver.py`, which answers HTTP with its
//! name and the local address the connection arrived at. Each host's eth0 is a veth whose
//! peer `p-<host>` sits on the bridge.
//!
//! The demo shows the election (dir1 holds the VIP, the client's ARP entry is dir1's MAC),
//! DR balancing through the master, then crashes the master (link down, SIGKILL) while the
//! client sends a request every 50 ms, and measures how long the client saw no answers
//! before the backup took over; finally dir1 comes back and preempts, and the demo measures
//! the client's silence during that handover too.
//!
//! Everything the demo creates (namespaces, processes, pins under /sys/fs/bpf/xlbdemo, a
//! temporary directory) is owned by a guard that removes it when the demo ends, fails, or is
//! interrupted (Ctrl-C, SIGTERM, SIGHUP). Processes are stopped by the PIDs the demo got
//! when it started them. Leftovers of an earlier run that was killed outright are removed
//! before the lab is built.

use std::{
    fmt::Write as _,
    fs::{self, File},
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    os::{fd::AsRawFd as _, unix::process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::{self, sleep},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    build::build_xlb,
    setup::setup,
    util::{display, is_root, on_path, output, run, step, workspace_root},
};

const TASK: &str = "demo";

/// Prefix of every namespace the demo creates (and removes when left over).
const PREFIX: &str = "xlbdemo";
/// The demo's pin directory (on the bpffs that `setup` mounts): each director's maps and
/// program link in a subdirectory named after it, the XDP_PASS links of the switch ports
/// as `pass_<director>`.
const PIN_DIR: &str = "/sys/fs/bpf/xlbdemo";
/// Held (flock) while a demo runs, so a second one does not tear down the first one's lab.
const LOCK_FILE: &str = "/run/xlbdemo.lock";

const VIP: &str = "198.18.0.100";
const CLIENT_ADDR: &str = "198.18.0.1";
/// The directors: name, address, VRRP priority. The first one is the master.
const DIRECTORS: [(&str, &str, u8); 2] = [("dir1", "198.18.0.2", 150), ("dir2", "198.18.0.3", 100)];
/// The real servers: name, address, weight.
const REALS: [(&str, &str, u32); 3] = [
    ("rs1", "198.18.0.11", 3),
    ("rs2", "198.18.0.12", 2),
    ("rs3", "198.18.0.13", 1),
];
/// The VRRP group: virtual router id, protocol version, advert interval (seconds). VRRPv3
/// allows sub-second adverts (v2 counts whole seconds): a backup declares the master dead
/// after 3 intervals plus a skew of (256 - priority) / 256 intervals.
const VRID: u8 = 51;
const VRRP_VERSION: u8 = 3;
const ADVERT_INT: f64 = 0.5;
/// HTTP requests the client sends through the VIP, each on a new TCP connection.
const REQUESTS: usize = 60;
/// Failed requests after which the client gives up (a broken lab fails fast).
const MAX_FAILURES: usize = 5;
/// Bytes of filler in each HTTP answer (`GET /?size=N`), so the answers outweigh requests.
const BODY: usize = 10_000;
/// Answers printed as they came.
const SHOWN: usize = 6;
/// The client loop during failover and preemption: a new request this often, each given
/// up after `PROBE_TIMEOUT`.
const PROBE_EVERY: Duration = Duration::from_millis(50);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the client loop runs before the crash, and before dir1 comes back.
const LEAD: Duration = Duration::from_secs(1);
/// How long answers through the backup must keep coming after the failover.
const SETTLE: Duration = Duration::from_secs(2);
/// How long the client loop runs once dir1 has taken the VIP back.
const AFTERMATH: Duration = Duration::from_secs(1);
/// A request answered later than this lost a SYN (the first retransmission is after 1 s).
const LATE: Duration = Duration::from_millis(900);

const SERVER_START: Duration = Duration::from_secs(10);
const XLB_START: Duration = Duration::from_secs(20);
/// Until the master holds the VIP (election), and until the backup does after the crash.
const VIP_MOVE: Duration = Duration::from_secs(8);
/// Until the client gets answers again after the crash.
const ANSWERS_BACK: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(5);

pub fn demo() -> Result<()> {
    let started = Instant::now();
    if !is_root() {
        bail!(
            "the demo needs root for network namespaces and XDP: run `cargo xtask demo` as \
             root (e.g. `sudo -E env \"PATH=$PATH\" cargo xtask demo`)"
        );
    }
    catch_signals();
    let tools = setup()?;
    let xlb = build_xlb(&tools, false)?;
    check_interrupted()?;
    let missing: Vec<&str> = ["ip", "nsenter", "ethtool", "python3", "curl", "bpftool"]
        .into_iter()
        .filter(|tool| on_path(tool).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing on PATH: {} (on Debian `cargo xtask setup` installs them)",
            missing.join(", ")
        );
    }
    let _lock = lock()?;

    remove_leftovers(&xlb)?;
    let mut lab = Lab::new(xlb)?;
    lab.build()?;
    let result = lab.run_demo();
    if let Err(err) = result {
        if !INTERRUPTED.load(Ordering::SeqCst) {
            lab.print_logs();
        }
        return Err(err);
    }
    drop(lab);
    step(
        TASK,
        format!(
            "done in {:.1} s: DR load balancing through XDP, VRRP failover and preemption \
             worked",
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Signals: Ctrl-C sets a flag; the demo checks it between steps and inside its waits, then
// returns an error, and the guard's Drop tears the lab down.

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn catch_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe); the struct is
        // fully initialised (zeroed, empty mask) before the call.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps `duration`, failing early when interrupted.
fn pause(duration: Duration) -> Result<()> {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        check_interrupted()?;
        sleep(Duration::from_millis(20).min(deadline - Instant::now()));
    }
    check_interrupted()
}

/// Holds an exclusive flock on `LOCK_FILE` (released when the file is closed).
fn lock() -> Result<File> {
    let file = File::create(LOCK_FILE).with_context(|| format!("cannot create {LOCK_FILE}"))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!("another `cargo xtask demo` is running (it holds {LOCK_FILE})");
    }
    Ok(file)
}

// ---------------------------------------------------------------------------------------
// Commands.

/// The full name of the demo's namespace `short`.
fn ns(short: &str) -> String {
    format!("{PREFIX}-{short}")
}

/// `program` inside namespace `short`, keeping this process's mounts (`ip netns exec` would
/// remount /sys and hide /sys/fs/bpf). In a process group of its own: Ctrl-C reaches only
/// xtask, which then stops everything in order.
fn in_ns(short: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{}", ns(short)))
        .arg("--")
        .arg(program);
    cmd.stdin(Stdio::null()).process_group(0);
    cmd
}

/// A command on the host, in a process group of its own (see `in_ns`).
fn host(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null()).process_group(0);
    cmd
}

/// Runs `script` with `sh -c` in namespace `short`, quietly; fails with its stderr.
fn sh(short: &str, script: &str) -> Result<String> {
    let out = output(in_ns(short, "sh").args(["-c", script]))?;
    check_interrupted()?;
    Ok(out)
}

/// Bytes received so far on eth0 of namespace `short` (from its /proc/net/dev: /sys would
/// show the host's interfaces, as `in_ns` keeps the host's mounts).
fn rx_bytes(short: &str) -> Result<u64> {
    let dev = output(in_ns(short, "cat").arg("/proc/net/dev"))?;
    dev.lines()
        .find_map(|line| line.trim_start().strip_prefix("eth0:"))
        .and_then(|fields| fields.split_whitespace().next())
        .and_then(|rx| rx.parse().ok())
        .with_context(|| format!("no eth0 in /proc/net/dev of {}", ns(short)))
}

/// Sends `signal` to `child` (by its PID), waits up to `grace` for it to exit, then kills
/// it. The child is ours and not reaped yet, so its PID cannot have been reused.
fn stop(child: &mut Child, signal: libc::c_int, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    // SAFETY: kill(2) on the PID of our own unreaped child.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------
// Leftovers of an earlier run.

/// The demo's namespaces that exist now.
fn demo_namespaces() -> Result<Vec<String>> {
    let list = output(host("ip").args(["netns", "list"]))?;
    Ok(list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(&format!("{PREFIX}-")))
        .map(str::to_owned)
        .collect())
}

/// Removes what an earlier demo left when it was killed outright: its namespaces (with the
/// processes it had started inside them), its pins and its temporary directory.
fn remove_leftovers(xlb: &Path) -> Result<()> {
    let namespaces = demo_namespaces()?;
    let pins = Path::new(PIN_DIR).exists();
    let tmp = tmp_dir();
    if namespaces.is_empty() && !pins && !tmp.exists() {
        step(TASK, "leftovers of an earlier run: none");
        return Ok(());
    }
    step(
        TASK,
        format!(
            "leftovers of an earlier run: removing{}{}{}",
            if namespaces.is_empty() {
                String::new()
            } else {
                format!(" namespaces {}", namespaces.join(" "))
            },
            if pins {
                format!(" pins {PIN_DIR}")
            } else {
                String::new()
            },
            if tmp.exists() {
                format!(" {}", tmp.display())
            } else {
                String::new()
            },
        ),
    );
    for name in &namespaces {
        // Only what runs inside the demo's own namespaces: its servers and its directors.
        let pids = output(host("ip").args(["netns", "pids", name])).unwrap_or_default();
        for pid in pids
            .lines()
            .filter_map(|p| p.trim().parse::<libc::pid_t>().ok())
        {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        output(host("ip").args(["netns", "del", name]))?;
    }
    if pins {
        // Each director's pins, and those of an earlier demo with one director.
        let mut dirs: Vec<PathBuf> = DIRECTORS.iter().map(|(d, _, _)| pins_of(d)).collect();
        dirs.push(PathBuf::from(PIN_DIR));
        for dir in dirs {
            output(host(xlb).arg("teardown").arg("--pin-path").arg(dir))?;
        }
        if Path::new(PIN_DIR).exists() {
            fs::remove_dir_all(PIN_DIR).with_context(|| format!("cannot remove {PIN_DIR}"))?;
        }
    }
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    Ok(())
}

fn tmp_dir() -> PathBuf {
    std::env::temp_dir().join(PREFIX)
}

/// Director `dir`'s pin path (`xlb run --pin-path`).
fn pins_of(dir: &str) -> PathBuf {
    Path::new(PIN_DIR).join(dir)
}

/// The label (and log name) of an `xlb run` on director `dir`.
fn xlb_label(dir: &str) -> String {
    format!("xlb-{dir}")
}

/// A backup's master-down interval (RFC 5798): 3 advert intervals plus the skew.
fn master_down(priority: u8) -> f64 {
    3.0 * ADVERT_INT + f64::from(256 - u16::from(priority)) / 256.0 * ADVERT_INT
}

// ---------------------------------------------------------------------------------------
// The lab.

/// Everything the demo created; Drop removes it (in the order a careful operator would).
struct Lab {
    xlb: PathBuf,
    tmp: PathBuf,
    /// Created namespaces, in creation order.
    namespaces: Vec<String>,
    /// Started processes: label (also the log file's name) and child.
    children: Vec<(String, Child)>,
    /// Labels of every `xlb run` started (their logs are printed when the demo fails).
    xlb_runs: Vec<String>,
    /// Real servers prepared with `xlb realserver setup`.
    prepared: Vec<&'static str>,
    /// Whether `PIN_DIR` was created (by the demo or by xlb).
    pins: bool,
    /// Each director's config file, as in `DIRECTORS`.
    configs: Vec<PathBuf>,
    /// Each director's eth0 MAC address, as in `DIRECTORS`.
    macs: Vec<String>,
}

impl Lab {
    fn new(xlb: PathBuf) -> Result<Self> {
        let tmp = tmp_dir();
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(Self {
            xlb,
            tmp,
            namespaces: Vec::new(),
            children: Vec::new(),
            xlb_runs: Vec::new(),
            prepared: Vec::new(),
            pins: false,
            configs: Vec::new(),
            macs: Vec::new(),
        })
    }

    fn add_ns(&mut self, short: &str) -> Result<()> {
        let name = ns(short);
        output(host("ip").args(["netns", "add", &name]))?;
        self.namespaces.push(name);
        sh(short, "ip link set lo up")?;
        Ok(())
    }

    /// Host `short`'s eth0 on the bridge (peer `p-<short>` in `sw`), with `addrs` (CIDR) and
    /// transmit checksum offload off: veth would otherwise hand CHECKSUM_PARTIAL packets to
    /// XDP_TX, and the real servers would see bad TCP checksums.
    fn plug(&mut self, short: &str, addrs: &[String]) -> Result<()> {
        let port = format!("p-{short}");
        sh(
            "sw",
            &format!(
                "ip link add {port} type veth peer name eth0 netns {} && \
                 ip link set {port} master br0 && ip link set {port} up",
                ns(short)
            ),
        )?;
        let mut script = String::from("ip link set eth0 up && ethtool -K eth0 tx off >/dev/null");
        for addr in addrs {
            let _ = write!(script, " && ip addr add {addr} dev eth0");
        }
        sh(short, &script)?;
        Ok(())
    }

    fn log_path(&self, label: &str) -> PathBuf {
        self.tmp.join(format!("{label}.log"))
    }

    fn log(&self, label: &str) -> String {
        fs::read_to_string(self.log_path(label)).unwrap_or_default()
    }

    /// Starts a long-running process, its output going to `<tmp>/<label>.log`.
    fn spawn(&mut self, label: &str, mut cmd: Command) -> Result<()> {
        let log = File::create(self.log_path(label))
            .with_context(|| format!("cannot create the log of {label}"))?;
        let child = cmd
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start: {}", display(&cmd)))?;
        self.children.push((label.to_owned(), child));
        Ok(())
    }

    /// Sends `signal` to the process started as `label` and reaps it; returns its PID.
    fn kill(&mut self, label: &str, signal: libc::c_int) -> Result<u32> {
        let pos = self
            .children
            .iter()
            .position(|(l, _)| l == label)
            .with_context(|| format!("no process {label}"))?;
        let (_, mut child) = self.children.remove(pos);
        if let Some(status) = child.try_wait()? {
            bail!("{label} had already exited ({status})");
        }
        // SAFETY: kill(2) on the PID of our own unreaped child.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        child.wait()?;
        Ok(child.id())
    }

    /// Waits until the log of `label` contains `needle`; fails when the process exits first.
    fn wait_log(&mut self, label: &str, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log(label).contains(needle) {
                return Ok(());
            }
            let child = self
                .children
                .iter_mut()
                .find(|(l, _)| l == label)
                .map(|(_, c)| c)
                .with_context(|| format!("no process {label}"))?;
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{label} exited ({status}) before logging {needle:?}:\n{}",
                    self.log(label)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{label} did not log {needle:?} within {timeout:?}:\n{}",
                    self.log(label)
                );
            }
            pause(Duration::from_millis(50))?;
        }
    }

    /// Namespaces, bridge, veths, real servers, and the XDP_PASS program on each director's
    /// switch port.
    fn build(&mut self) -> Result<()> {
        let dirs = DIRECTORS.map(|(d, _, _)| d);
        step(
            TASK,
            format!(
                "namespaces {PREFIX}-{{sw,client,{},rs1,rs2,rs3}}: bridge br0 in sw, each \
                 host's eth0 a veth to p-<host> on br0, tx checksum offload off",
                dirs.join(",")
            ),
        );
        for short in ["sw", "client"].into_iter().chain(dirs) {
            self.add_ns(short)?;
        }
        sh("sw", "ip link add br0 type bridge && ip link set br0 up")?;
        self.plug("client", &[format!("{CLIENT_ADDR}/24")])?;
        for (dir, addr, _) in DIRECTORS {
            self.plug(dir, &[format!("{addr}/24")])?;
            let link = sh(dir, "ip -br link show dev eth0")?;
            let mac = link
                .split_whitespace()
                .nth(2)
                .with_context(|| format!("no MAC address in {link:?}"))?;
            self.macs.push(mac.to_owned());
        }
        step(
            TASK,
            format!(
                "client {CLIENT_ADDR}, directors {} (neither has the VIP {VIP}: VRRP will \
                 put it on the master), real servers {}",
                DIRECTORS
                    .iter()
                    .zip(&self.macs)
                    .map(|((dir, addr, _), mac)| format!("{dir} {addr} (MAC {mac})"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                REALS.map(|(_, addr, _)| addr).join(" ")
            ),
        );
        for (name, addr, _) in REALS {
            self.add_ns(name)?;
            self.plug(name, &[format!("{addr}/24")])?;
        }

        step(
            TASK,
            "real servers: VIP on lo, arp_ignore=1, arp_announce=2 (xlb realserver setup), \
             then an HTTP server naming itself and the address it was reached at",
        );
        let script = workspace_root().join("tests/lab/realserver.py");
        for (name, _, _) in REALS {
            let state = self.tmp.join(format!("{name}.json"));
            let mut setup = in_ns(name, &self.xlb);
            setup
                .args(["realserver", "setup", "--vip", VIP, "--state-file"])
                .arg(&state);
            self.prepared.push(name);
            // Quiet unless it fails: its log lines repeat what the step line says.
            println!("  $ {}", display(&setup));
            output(&mut setup)?;
            let mut server = in_ns(name, "python3");
            server.arg(&script).arg(name);
            self.spawn(name, server)?;
        }
        for (name, _, _) in REALS {
            self.wait_log(name, "listening", SERVER_START)?;
        }

        step(
            TASK,
            format!(
                "XDP_PASS on the switch ports {}: a veth delivers a director's XDP_TX frames \
                 only when its peer runs XDP",
                dirs.map(|d| format!("p-{d}")).join(" ")
            ),
        );
        fs::create_dir_all(PIN_DIR).with_context(|| format!("cannot create {PIN_DIR}"))?;
        self.pins = true;
        for dir in dirs {
            run(host(&self.xlb)
                .arg("lab-xdp-pass")
                .args(["--netns", &ns("sw"), "--dev", &format!("p-{dir}"), "--pin"])
                .arg(Path::new(PIN_DIR).join(format!("pass_{dir}"))))?;
        }
        check_interrupted()
    }

    /// The demo proper, on the built lab.
    fn run_demo(&mut self) -> Result<()> {
        self.start_directors()?;
        let answers = self.client_requests()?;
        let verdict = report(&answers);
        self.show_master()?;
        verdict?;
        self.failover()?;
        self.comeback()
    }

    /// `xlb run` on director `dir`, under `label`, until it logs that it runs.
    fn start_xlb(&mut self, dir: &str, label: &str) -> Result<()> {
        let index = director(dir);
        let mut cmd = in_ns(dir, &self.xlb);
        cmd.arg("run")
            .arg("-c")
            .arg(&self.configs[index])
            .arg("--pin-path")
            .arg(pins_of(dir))
            .env("NO_COLOR", "1");
        println!("  $ {}", display(&cmd));
        self.spawn(label, cmd)?;
        self.xlb_runs.push(label.to_owned());
        Ok(())
    }

    /// Writes both directors' configs, starts xlb on both, waits for the election.
    fn start_directors(&mut self) -> Result<()> {
        for (dir, _, priority) in DIRECTORS {
            let path = self.tmp.join(format!("{dir}.toml"));
            fs::write(&path, config_text(priority))
                .with_context(|| format!("cannot write {}", path.display()))?;
            self.configs.push(path);
        }
        let [(master, _, high), (backup, _, low)] = DIRECTORS;
        step(
            TASK,
            format!(
                "{master}'s config {} (keepalived's keywords); {backup}'s differs only in \
                 priority = {low}:",
                self.configs[0].display()
            ),
        );
        for line in config_text(high).lines() {
            println!("    {line}");
        }
        step(
            TASK,
            format!(
                "VRRPv{VRRP_VERSION} with advert_int = {ADVERT_INT} s, for a quicker demo (v2, \
                 keepalived's default, counts whole seconds: 1 s at least): a backup declares \
                 the master dead after 3 x {ADVERT_INT} s + (256 - priority) / 256 x \
                 {ADVERT_INT} s without adverts, {:.2} s for {master} and {:.2} s for {backup}",
                master_down(high),
                master_down(low)
            ),
        );
        step(
            TASK,
            "lb_algo = \"mh\" with mh_port: a connection's real server is a Maglev hash of \
             the client's address and port, over a table that both directors build \
             identically from the same real servers; so whichever director a flow reaches, \
             it lands on the same real server, and connections survive a failover",
        );
        step(
            TASK,
            format!(
                "both directors: xlb run (logs {})",
                DIRECTORS
                    .map(|(dir, _, _)| self.log_path(&xlb_label(dir)).display().to_string())
                    .join(", ")
            ),
        );
        // dir1 first: started together, the one whose master-down interval ends first takes
        // the VIP for a moment, and the other takes it back at its first advert.
        let started = Instant::now();
        for (dir, _, _) in DIRECTORS {
            self.start_xlb(dir, &xlb_label(dir))?;
            self.wait_log(&xlb_label(dir), "xlb running", XLB_START)?;
        }
        let took = wait_vip(master, true, VIP_MOVE)?.duration_since(started);
        self.wait_log(&xlb_label(master), "to=MASTER", VIP_MOVE)?;
        if has_vip(backup)? {
            bail!("both directors hold the VIP");
        }
        step(
            TASK,
            format!(
                "election: {master} (priority {high}) holds the VIP {:.1} s after its start \
                 (each starts as BACKUP and becomes MASTER if no advert from a higher priority \
                 came within its master-down interval); {backup} stays BACKUP",
                took.as_secs_f64()
            ),
        );
        self.show_vrrp()
    }

    /// Each director's eth0 addresses and the VRRP transitions its xlb logged.
    fn show_vrrp(&self) -> Result<()> {
        println!("  $ ip -br addr show dev eth0   (in each director)");
        for (dir, _, _) in DIRECTORS {
            println!(
                "    {dir}: {}",
                sh(dir, "ip -br addr show dev eth0")?.trim()
            );
        }
        println!("  VRRP transitions (xlb logs):");
        for label in &self.xlb_runs {
            let steps = transitions(&self.log(label));
            println!(
                "    {label}: {}",
                if steps.is_empty() {
                    "none".to_owned()
                } else {
                    steps.join(", ")
                }
            );
        }
        Ok(())
    }

    /// The client's ARP entry for the VIP; fails unless it is director `dir`'s MAC.
    fn show_arp(&self, dir: &str) -> Result<()> {
        let mac = &self.macs[director(dir)];
        let entry = client_arp()?;
        println!("  $ ip neigh show {VIP} dev eth0   (in client)");
        println!("    {entry}   ({dir}'s MAC: {mac})");
        if !entry.split_whitespace().any(|w| w == mac) {
            bail!("the client's ARP entry for the VIP is not {dir}'s MAC {mac}: {entry:?}");
        }
        Ok(())
    }

    /// `REQUESTS` HTTP requests from the client through the VIP, each with its own curl (so
    /// on a new TCP connection). Returns each answer's first line, or the error.
    fn client_requests(&mut self) -> Result<Vec<Result<String, String>>> {
        let master = DIRECTORS[0].0;
        let url = format!("http://{VIP}/?size={BODY}");
        let curl = || {
            let mut cmd = in_ns("client", "curl");
            cmd.args(["-sS", "--max-time", "3", &url]);
            cmd
        };
        step(
            TASK,
            format!("client: {REQUESTS} HTTP requests to {url}, each on a new TCP connection"),
        );
        println!("  $ {}   (x{REQUESTS})", display(&curl()));
        let rx_before = rx_bytes(master)?;
        let started = Instant::now();
        let mut answers = Vec::with_capacity(REQUESTS);
        let mut failures = 0;
        for _ in 0..REQUESTS {
            if failures == MAX_FAILURES {
                break;
            }
            let out = curl()
                .output()
                .context("cannot start curl in the client namespace")?;
            check_interrupted()?;
            let answer = if out.status.success() {
                let body = String::from_utf8_lossy(&out.stdout);
                let first = body.lines().next().unwrap_or_default().to_owned();
                if body.len() == first.len() + 1 + BODY {
                    Ok(first)
                } else {
                    Err(format!(
                        "{first:?}: {} bytes of body, not {}",
                        body.len(),
                        first.len() + 1 + BODY
                    ))
                }
            } else {
                Err(format!(
                    "curl {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            };
            failures += usize::from(answer.is_err());
            answers.push(answer);
        }
        let elapsed = started.elapsed();
        let received = rx_bytes(master)?.saturating_sub(rx_before);
        for (i, answer) in answers.iter().take(SHOWN).enumerate() {
            match answer {
                Ok(body) => println!("    {:>2}: {body}", i + 1),
                Err(err) => println!("    {:>2}: FAILED {err}", i + 1),
            }
        }
        let more = answers.len().saturating_sub(SHOWN);
        if more > 0 {
            println!("    ... ({more} more)");
        }
        println!(
            "    {} requests in {:.1} s",
            answers.len(),
            elapsed.as_secs_f64()
        );
        if answers.len() < REQUESTS {
            println!("    gave up after {MAX_FAILURES} failed requests");
        }
        if failures > 0 {
            return Ok(answers);
        }
        step(
            TASK,
            format!(
                "\"rsN {VIP}:80\": the real server answered from the VIP, the director having \
                 rewritten only MAC addresses (DR)"
            ),
        );
        let sent = answers
            .iter()
            .flatten()
            .map(|a| a.len() + 1 + BODY)
            .sum::<usize>();
        step(
            TASK,
            format!(
                "the real servers sent {} KB of answers straight to the client; {master}'s \
                 eth0 received {} KB in all (the client's side only)",
                sent / 1000,
                received / 1000
            ),
        );
        Ok(answers)
    }

    /// The client's ARP entry (the master's MAC), `xlb status` of the master from its pinned
    /// maps, and bpftool on one of them.
    fn show_master(&mut self) -> Result<()> {
        let master = DIRECTORS[0].0;
        step(
            TASK,
            format!("the client reaches the VIP at {master}'s MAC (its ARP entry):"),
        );
        self.show_arp(master)?;
        step(
            TASK,
            format!(
                "what {master}'s data plane counted, read from its pinned maps (xlb need not \
                 run):"
            ),
        );
        let pins = pins_of(master);
        run(host(&self.xlb).arg("status").arg("--pin-path").arg(&pins))?;
        step(
            TASK,
            "the connections it tracks, as `ipvsadm -Lnc` lists them (xlb conns):",
        );
        run(host(&self.xlb).arg("conns").arg("--pin-path").arg(&pins))?;
        step(TASK, "the maps are plain pinned BPF maps with BTF:");
        let conns = pins.join("xlb_conns4");
        run(host("bpftool").args(["map", "show", "pinned"]).arg(&conns))?;
        step(
            TASK,
            format!(
                "(while a lab runs: `bpftool map dump pinned {}` prints the per-CPU counters \
                 with field names)",
                pins.join("xlb_svc_stats").display()
            ),
        );
        check_interrupted()
    }

    /// Crashes the master while the client loop runs; measures the client's silence.
    fn failover(&mut self) -> Result<()> {
        let [(master, _, _), (backup, _, _)] = DIRECTORS;
        step(
            TASK,
            format!(
                "failover. The client loop starts: a new HTTP request to {VIP}:80 every {} ms, \
                 each on its own TCP connection with a {} s timeout, from threads in {}; the \
                 requests overlap, so one lost in the failover does not hold up the next",
                PROBE_EVERY.as_millis(),
                PROBE_TIMEOUT.as_secs(),
                ns("client")
            ),
        );
        step(
            TASK,
            format!(
                "and one more connection through {master}, opened now with its request only \
                 half sent: it is finished after the failover"
            ),
        );
        let held = HeldConnection::open()?;
        let client = ClientLoop::start()?;
        pause(LEAD)?;
        if client.answered() == 0 {
            bail!("the client loop got no answer before the crash");
        }
        step(
            TASK,
            format!(
                "crash of {master}, the master: its link goes down first (whatever it does \
                 next reaches no one, not even a priority-0 advert), then its xlb gets SIGKILL; \
                 {backup} has to notice that the adverts stopped"
            ),
        );
        let crash = Instant::now();
        sh(master, "ip link set eth0 down")?;
        let down = Instant::now();
        let pid = self.kill(&xlb_label(master), libc::SIGKILL)?;
        println!("  $ ip link set eth0 down   (in {master})");
        println!("  $ kill -KILL {pid}   (xlb run in {master})");
        let moved = wait_vip(backup, true, VIP_MOVE)
            .with_context(|| format!("{backup} did not take the VIP over"))?;
        self.wait_log(&xlb_label(backup), "to=MASTER", VIP_MOVE)?;
        let deadline = crash + ANSWERS_BACK;
        let resumed = loop {
            if let Some(at) = client.first_answer_sent_after(down) {
                break at;
            }
            if Instant::now() > deadline {
                let mut errors: Vec<String> = client
                    .snapshot()
                    .into_iter()
                    .filter(|p| p.sent >= down)
                    .filter_map(|p| p.answer.err())
                    .collect();
                errors.sort_unstable();
                errors.dedup();
                bail!(
                    "the client got no answer within {ANSWERS_BACK:?} of the crash, though \
                     {backup} holds the VIP (requests since: {})",
                    if errors.is_empty() {
                        "none finished".to_owned()
                    } else {
                        errors.join("; ")
                    }
                );
            }
            pause(Duration::from_millis(20))?;
        };
        // Answers through the backup for a while.
        pause((resumed + SETTLE).saturating_duration_since(Instant::now()))?;
        let probes = client.finish();
        let held = held.finish();
        println!(
            "    {backup} holds the VIP {:.2} s after the crash (polled every 20 ms)",
            moved.duration_since(crash).as_secs_f64()
        );
        let (before, after) = summarize(&probes, crash, "the crash")?;
        step(
            TASK,
            format!(
                "the client saw no answers for {:.2} s, from the last answer before the crash \
                 to the first answer through {backup} (expected {:.2} to {:.2} s: {backup}'s \
                 master-down interval runs from {master}'s last advert, sent 0 to {ADVERT_INT} s \
                 before the crash)",
                after.duration_since(before).as_secs_f64(),
                master_down(DIRECTORS[1].2) - ADVERT_INT,
                master_down(DIRECTORS[1].2)
            ),
        );
        match held {
            Ok(answer) => step(
                TASK,
                format!(
                    "the connection opened through {master} before the crash, finished through \
                     {backup}: \"{answer}\": {backup} sent it to the real server that had \
                     accepted it (another would have reset it)"
                ),
            ),
            Err(err) => bail!(
                "the connection opened through {master} before the crash failed after the \
                 failover: {err}"
            ),
        }
        step(TASK, format!("{backup} holds the VIP now:"));
        self.show_vrrp()?;
        step(
            TASK,
            format!("gratuitous ARP from {backup} moved the client's ARP entry:"),
        );
        self.show_arp(backup)?;
        step(
            TASK,
            format!(
                "what {backup}'s data plane counted (it forwards only while MASTER: these are \
                 the flows since the failover):"
            ),
        );
        run(host(&self.xlb)
            .arg("status")
            .arg("--pin-path")
            .arg(pins_of(backup)))?;
        check_interrupted()
    }

    /// The crashed master comes back and preempts; measures the client's silence.
    fn comeback(&mut self) -> Result<()> {
        let [(master, _, high), (backup, _, low)] = DIRECTORS;
        step(
            TASK,
            format!(
                "{master} comes back, as after a reboot, and runs xlb again: priority {high} > \
                 {low}, so it preempts {backup} when its master-down interval ({:.2} s) ends, \
                 and {backup} steps down at its first advert. The client loop runs again, and \
                 a connection is opened through {backup}, to be finished through {master}",
                master_down(high)
            ),
        );
        let held = HeldConnection::open()?;
        let client = ClientLoop::start()?;
        pause(LEAD)?;
        let start = Instant::now();
        if has_vip(master)? {
            // xlb was killed before it saw its link go down: the VIP is still there, as a
            // reboot would not have left it.
            sh(master, &format!("ip addr del {VIP}/32 dev eth0"))?;
            println!("  $ ip addr del {VIP}/32 dev eth0   (in {master}: the crash left it there)");
        }
        sh(master, "ip link set eth0 up")?;
        println!("  $ ip link set eth0 up   (in {master})");
        let label = format!("{}-again", xlb_label(master));
        self.start_xlb(master, &label)?;
        self.wait_log(&label, "xlb running", XLB_START)?;
        let taken = wait_vip(master, true, VIP_MOVE)
            .with_context(|| format!("{master} did not take the VIP back"))?;
        let left = wait_vip(backup, false, VIP_MOVE)
            .with_context(|| format!("{backup} did not give the VIP up"))?;
        self.wait_log(&label, "to=MASTER", VIP_MOVE)?;
        self.wait_log(&xlb_label(backup), "from=MASTER to=BACKUP", VIP_MOVE)?;
        pause(AFTERMATH)?;
        let probes = client.finish();
        let held = held.finish();
        println!(
            "    {master} holds the VIP {:.2} s after its link came up; {backup} had dropped it \
             {:.2} s later (both polled every 20 ms)",
            taken.duration_since(start).as_secs_f64(),
            left.saturating_duration_since(taken).as_secs_f64()
        );
        let (before, after) = summarize(&probes, start, &format!("{master}'s return"))?;
        step(
            TASK,
            format!(
                "during the preemption the client's longest wait between two answers was \
                 {:.2} s (a request every {} ms)",
                after.duration_since(before).as_secs_f64(),
                PROBE_EVERY.as_millis()
            ),
        );
        match held {
            Ok(answer) => step(
                TASK,
                format!(
                    "the connection opened through {backup}, finished through {master}: \
                     \"{answer}\""
                ),
            ),
            Err(err) => {
                bail!("the connection opened through {backup} failed after the preemption: {err}")
            }
        }
        step(TASK, format!("{master} holds the VIP again:"));
        self.show_vrrp()?;
        step(
            TASK,
            format!("gratuitous ARP from {master} moved the client's ARP entry back:"),
        );
        self.show_arp(master)?;
        check_interrupted()
    }

    /// The logs of every `xlb run`, for a failed demo.
    fn print_logs(&self) {
        for label in &self.xlb_runs {
            println!("--- {label} log ({}) ---", self.log_path(label).display());
            for line in self.log(label).lines() {
                println!("{}", strip_ansi(line));
            }
        }
        if !self.xlb_runs.is_empty() {
            println!("---");
        }
    }

    /// Stops and removes everything, best effort, saying what failed.
    fn teardown(&mut self) {
        step(
            TASK,
            "teardown: xlb on the directors (SIGTERM), their pins, the real servers, the \
             namespaces",
        );
        for label in &self.xlb_runs {
            if let Some(pos) = self.children.iter().position(|(l, _)| l == label) {
                let (_, mut xlb) = self.children.remove(pos);
                stop(&mut xlb, libc::SIGTERM, STOP_GRACE);
            }
        }
        if self.pins {
            // A stopped xlb leaves its program attached and its maps pinned (a restart adopts
            // them): `xlb teardown` detaches and unpins.
            for (dir, _, _) in DIRECTORS {
                match output(
                    host(&self.xlb)
                        .arg("teardown")
                        .arg("--pin-path")
                        .arg(pins_of(dir)),
                ) {
                    Ok(out) => println!(
                        "  xlb teardown ({dir}): {} pins removed",
                        out.lines().filter(|l| l.starts_with("removed")).count()
                    ),
                    Err(err) => println!("  xlb teardown ({dir}): {err:#}"),
                }
                let pass = Path::new(PIN_DIR).join(format!("pass_{dir}"));
                if pass.exists() {
                    if let Err(err) = fs::remove_file(&pass) {
                        println!("  cannot remove {}: {err}", pass.display());
                    }
                }
            }
            if Path::new(PIN_DIR).exists() {
                if let Err(err) = fs::remove_dir_all(PIN_DIR) {
                    println!("  cannot remove {PIN_DIR}: {err}");
                }
            }
        }
        for name in std::mem::take(&mut self.prepared) {
            let state = self.tmp.join(format!("{name}.json"));
            let mut restore = in_ns(name, &self.xlb);
            restore
                .args(["realserver", "teardown", "--vip", VIP, "--state-file"])
                .arg(&state);
            if let Err(err) = output(&mut restore) {
                println!("  {name}: xlb realserver teardown: {err:#}");
            }
        }
        for (_, child) in &mut self.children {
            stop(child, libc::SIGTERM, STOP_GRACE);
        }
        self.children.clear();
        for name in self.namespaces.drain(..).rev() {
            if let Err(err) = output(host("ip").args(["netns", "del", &name])) {
                println!("  ip netns del {name}: {err:#}");
            }
        }
        if let Err(err) = fs::remove_dir_all(&self.tmp) {
            println!("  cannot remove {}: {err}", self.tmp.display());
        }
        match demo_namespaces() {
            Ok(left) if left.is_empty() && !Path::new(PIN_DIR).exists() => {
                step(TASK, "teardown: nothing left");
            }
            Ok(left) => println!(
                "  still there: namespaces {left:?}, {PIN_DIR} exists: {}",
                Path::new(PIN_DIR).exists()
            ),
            Err(err) => println!("  ip netns list: {err:#}"),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The index of director `dir` in `DIRECTORS`.
fn director(dir: &str) -> usize {
    DIRECTORS
        .iter()
        .position(|(d, _, _)| *d == dir)
        .expect("a director of DIRECTORS")
}

/// Whether director `dir` has the VIP on its eth0.
fn has_vip(dir: &str) -> Result<bool> {
    Ok(sh(dir, "ip -o addr show dev eth0")?
        .split_whitespace()
        .any(|word| word.split('/').next() == Some(VIP)))
}

/// Waits until director `dir` holds the VIP (`present`) or no longer does; returns when it
/// saw so.
fn wait_vip(dir: &str, present: bool, timeout: Duration) -> Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        if has_vip(dir)? == present {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!(
                "{dir}: the VIP did not {} within {timeout:?}",
                if present { "come" } else { "go" }
            );
        }
        pause(Duration::from_millis(20))?;
    }
}

/// The client's neighbour entry for the VIP.
fn client_arp() -> Result<String> {
    let entry = sh("client", &format!("ip neigh show {VIP} dev eth0"))?;
    Ok(entry.trim().to_owned())
}

/// "FROM -> TO (reason)" for each `VRRP transition` line of an xlb log.
fn transitions(log: &str) -> Vec<String> {
    let field = |line: &str, key: &str| -> String {
        line.split_once(&format!(" {key}="))
            .map(|(_, rest)| {
                rest.split(" priority=")
                    .next()
                    .unwrap_or(rest)
                    .split_whitespace()
                    .collect::<Vec<_>>()
            })
            .map(|words| {
                if key == "reason" {
                    words.join(" ")
                } else {
                    words.first().copied().unwrap_or_default().to_owned()
                }
            })
            .unwrap_or_default()
    };
    log.lines()
        .map(strip_ansi)
        .filter(|line| line.contains("VRRP transition"))
        .map(|line| {
            format!(
                "{} -> {} ({})",
                field(&line, "from"),
                field(&line, "to"),
                field(&line, "reason")
            )
        })
        .collect()
}

/// A director's config: the VRRP instance owning the VIP, one virtual server on it (mh,
/// DR, the three real servers).
fn config_text(priority: u8) -> String {
    let mut text = format!(
        "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = {VRID}\n\
         priority = {priority}\nversion = {VRRP_VERSION}\nadvert_int = {ADVERT_INT}\n\
         virtual_ipaddress = [\"{VIP}/32\"]\n\n\
         [[virtual_server]]\nip = \"{VIP}\"\nport = 80\nprotocol = \"TCP\"\nlb_algo = \"mh\"\n\
         mh_port = true\nlb_kind = \"DR\"\n"
    );
    for (_, addr, weight) in REALS {
        let _ = write!(
            text,
            "\n[[virtual_server.real_server]]\nip = \"{addr}\"\nport = 80\nweight = {weight}\n"
        );
    }
    text
}

/// Prints who answered how often against the configured weights; fails unless every request
/// was answered, from the VIP, and every real server got some.
fn report(answers: &[Result<String, String>]) -> Result<()> {
    let total_weight: u32 = REALS.iter().map(|(_, _, w)| w).sum();
    let mut counts = [0usize; REALS.len()];
    let mut problems = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        let body = match answer {
            Ok(body) => body,
            Err(err) => {
                problems.push(format!("request {}: {err}", i + 1));
                continue;
            }
        };
        let (name, local) = body.split_once(' ').unwrap_or((body, ""));
        match REALS.iter().position(|(n, _, _)| *n == name) {
            Some(k) => counts[k] += 1,
            None => problems.push(format!("request {}: unexpected answer {body:?}", i + 1)),
        }
        if local != format!("{VIP}:80") {
            problems.push(format!(
                "request {}: {name} saw local address {local:?}, not the VIP (not DR)",
                i + 1
            ));
        }
    }
    step(
        TASK,
        format!(
            "who answered the {} requests (mh hashes each connection: shares follow the \
             weights only roughly over {REQUESTS} connections):",
            answers.len()
        ),
    );
    println!("    real server  address       answers   share   weight  weight share");
    for ((name, addr, weight), count) in REALS.iter().zip(counts) {
        println!(
            "    {name:<11}  {addr:<12}  {count:>7}  {:>5.1}%  {weight:>7}  {:>11.1}%",
            100.0 * count as f64 / answers.len().max(1) as f64,
            100.0 * f64::from(*weight) / f64::from(total_weight)
        );
        if count == 0 {
            problems.push(format!("{name} ({addr}) got no request"));
        }
    }
    if answers.len() < REQUESTS {
        problems.push(format!(
            "the client gave up after {} of {REQUESTS} requests",
            answers.len()
        ));
    }
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(10).map(String::as_str).collect();
        bail!(
            "balancing did not work ({} problems):\n  {}",
            problems.len(),
            shown.join("\n  ")
        );
    }
    Ok(())
}

/// `line` without ANSI colour sequences (ESC [ ... letter).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The client's requests during failover and preemption, from threads in the client
// namespace (so the demo times them itself, to the millisecond).

fn vip_port80() -> SocketAddr {
    SocketAddr::new(VIP.parse().expect("VIP is an address"), 80)
}

/// Moves the calling thread into the client's network namespace (threads it starts
/// afterwards are born there too).
fn enter_client(netns: &File) -> std::io::Result<()> {
    // SAFETY: setns(2) on this thread only, with a descriptor we own.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn client_netns() -> Result<File> {
    let path = format!("/run/netns/{}", ns("client"));
    File::open(&path).with_context(|| format!("cannot open {path}"))
}

/// Reads an HTTP answer until the server closes, by `deadline`; returns the body's first
/// line ("rsN VIP:80"), or what went wrong.
fn read_answer(stream: &mut TcpStream, deadline: Instant) -> Result<String, String> {
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no answer in time".to_owned());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("no answer in time".to_owned());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let text = String::from_utf8_lossy(&response);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    let first = body.lines().next().unwrap_or_default();
    match first.split_once(' ') {
        Some((name, local))
            if REALS.iter().any(|(n, _, _)| *n == name) && local == format!("{VIP}:80") =>
        {
            Ok(first.to_owned())
        }
        _ => Err(format!("unexpected answer {first:?}")),
    }
}

const REQUEST_LINE: &str = "GET / HTTP/1.0\r\n";

/// The rest of the request after `REQUEST_LINE`.
fn request_rest() -> String {
    format!("Host: {VIP}\r\n\r\n")
}

/// One HTTP request through the VIP on a new connection, within `PROBE_TIMEOUT`.
fn probe() -> Result<String, String> {
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&vip_port80(), PROBE_TIMEOUT).map_err(|e| {
        if e.kind() == std::io::ErrorKind::TimedOut {
            "no connection in time".to_owned()
        } else {
            format!("connect: {e}")
        }
    })?;
    stream
        .write_all(format!("{REQUEST_LINE}{}", request_rest()).as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    read_answer(&mut stream, deadline)
}

/// One request of the client loop.
#[derive(Clone)]
struct Probe {
    sent: Instant,
    done: Instant,
    answer: Result<String, String>,
}

/// The client loop: a new request every `PROBE_EVERY` on a thread of its own (so a request
/// waiting for a lost SYN to be sent again does not delay the next one), until stopped.
struct ClientLoop {
    probes: Arc<Mutex<Vec<Probe>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ClientLoop {
    fn start() -> Result<Self> {
        let netns = client_netns()?;
        let probes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let probes = Arc::clone(&probes);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                if let Err(err) = enter_client(&netns) {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                let mut requests: Vec<thread::JoinHandle<()>> = Vec::new();
                let mut next = Instant::now();
                while !stop.load(Ordering::SeqCst) && !INTERRUPTED.load(Ordering::SeqCst) {
                    let probes = Arc::clone(&probes);
                    requests.push(thread::spawn(move || {
                        let sent = Instant::now();
                        let answer = probe();
                        let done = Instant::now();
                        probes
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(Probe { sent, done, answer });
                    }));
                    requests.retain(|request| !request.is_finished());
                    next += PROBE_EVERY;
                    sleep(next.saturating_duration_since(Instant::now()));
                }
                for request in requests {
                    let _ = request.join();
                }
            })
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => bail!("cannot enter the client's namespace: {err}"),
            Err(_) => bail!("the client loop did not start"),
        }
        Ok(Self {
            probes,
            stop,
            thread: Some(thread),
        })
    }

    fn snapshot(&self) -> Vec<Probe> {
        self.probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn answered(&self) -> usize {
        self.snapshot().iter().filter(|p| p.answer.is_ok()).count()
    }

    /// When the first answer to a request sent at or after `t` came.
    fn first_answer_sent_after(&self, t: Instant) -> Option<Instant> {
        self.snapshot()
            .iter()
            .filter(|p| p.answer.is_ok() && p.sent >= t)
            .map(|p| p.done)
            .min()
    }

    /// Stops sending and waits for the requests under way (at most `PROBE_TIMEOUT`).
    fn finish(mut self) -> Vec<Probe> {
        self.halt();
        let mut probes = self.snapshot();
        probes.sort_by_key(|p| p.sent);
        probes
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ClientLoop {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Prints what the client loop saw, times relative to `reference` (`what`); returns the
/// longest silence: the answer before it and the answer after it.
fn summarize(probes: &[Probe], reference: Instant, what: &str) -> Result<(Instant, Instant)> {
    let (Some(first), Some(last)) = (probes.first(), probes.last()) else {
        bail!("the client loop sent no request");
    };
    let answered: Vec<&Probe> = probes.iter().filter(|p| p.answer.is_ok()).collect();
    let late = answered
        .iter()
        .filter(|p| p.done.duration_since(p.sent) > LATE)
        .count();
    let failed: Vec<&Probe> = probes.iter().filter(|p| p.answer.is_err()).collect();
    let mut servers: Vec<&str> = answered
        .iter()
        .filter_map(|p| p.answer.as_ref().ok())
        .filter_map(|a| a.split(' ').next())
        .collect();
    servers.sort_unstable();
    servers.dedup();
    let at = |t: Instant| -> String {
        if t >= reference {
            format!("+{:.2} s", t.duration_since(reference).as_secs_f64())
        } else {
            format!("-{:.2} s", reference.duration_since(t).as_secs_f64())
        }
    };
    println!(
        "    client loop: {} requests sent from {} to {} (times relative to {what}): {} \
         answered at once, {late} answered after a lost SYN was sent again, {} not answered \
         (answers came from {})",
        probes.len(),
        at(first.sent),
        at(last.sent),
        answered.len() - late,
        failed.len(),
        servers.join(" ")
    );
    let mut reasons: Vec<&str> = failed
        .iter()
        .filter_map(|p| p.answer.as_ref().err())
        .map(String::as_str)
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    if !reasons.is_empty() {
        println!("    unanswered: {}", reasons.join("; "));
    }
    let mut done: Vec<Instant> = answered.iter().map(|p| p.done).collect();
    done.sort_unstable();
    let (before, after) = done
        .windows(2)
        .map(|pair| (pair[0], pair[1]))
        .max_by_key(|(a, b)| b.duration_since(*a))
        .context("fewer than two answers: no silence to measure")?;
    println!(
        "    longest silence: from the answer at {} to the next one at {}",
        at(before),
        at(after)
    );
    Ok((before, after))
}

/// A connection through the VIP, opened with its request only half sent: finished later,
/// it shows whether the director in charge then sends it to the real server that accepted
/// it.
struct HeldConnection(TcpStream);

impl HeldConnection {
    fn open() -> Result<Self> {
        let netns = client_netns()?;
        let stream = thread::scope(|s| {
            s.spawn(|| -> Result<TcpStream> {
                enter_client(&netns).context("cannot enter the client's namespace")?;
                let mut stream = TcpStream::connect_timeout(&vip_port80(), PROBE_TIMEOUT)
                    .context("cannot connect to the VIP")?;
                stream.write_all(REQUEST_LINE.as_bytes())?;
                Ok(stream)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the connecting thread panicked"))?
        })?;
        Ok(Self(stream))
    }

    /// Sends the rest of the request; the answer's first line.
    fn finish(mut self) -> Result<String, String> {
        let deadline = Instant::now() + PROBE_TIMEOUT;
        self.0
            .write_all(request_rest().as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        read_answer(&mut self.0, deadline)
    }
}
