//! Network-namespace labs: hosts on a bridge, processes inside them, and cleanup on drop
//! (processes killed by PID, namespaces deleted, pins removed), even when a test panics.
//!
//! Addresses come from 198.18.0.0/15; nothing leaves the namespaces the lab creates.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use crate::{PinDir, xdp_pass};

/// How long [`Lab::kill`] waits for a signalled process before it sends SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT, SIGTERM and SIGHUP end the lab's waits (they panic with "interrupted")
/// instead of the process, so that the labs' Drop still cleans up. For drivers (the demo);
/// the tests leave signals alone.
pub fn stop_on_signals() {
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

/// Whether a signal caught by [`stop_on_signals`] asked the process to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Panics with "interrupted" once a caught signal asked to stop: waits call it each round.
pub fn check_interrupted() {
    assert!(!interrupted(), "interrupted");
}

/// The xlb binary under test (`cargo xtask test` sets XLB_BIN).
pub fn xlb_bin() -> PathBuf {
    if let Ok(p) = std::env::var("XLB_BIN") {
        return PathBuf::from(p);
    }
    // Next to the test binary's deps/ directory.
    let exe = std::env::current_exe().expect("current_exe");
    let p = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("xlb");
    assert!(
        p.exists(),
        "xlb binary not found: run through `cargo xtask test` (XLB_BIN)"
    );
    p
}

/// The lab's real-server program (HTTP on 80, line echo on 7; both name the server and
/// the connection's local address).
pub fn realserver_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/realserver.py")
}

pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    pub pins: PinDir,
    pub tmp: PathBuf,
}

/// Runs `cmd` to completion and returns its stdout; panics, with its output, on failure.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Lab {
    /// A lab whose names carry `tag` and this process's PID, so that concurrent runs never
    /// collide.
    pub fn new(tag: &str) -> Self {
        Self::named(&format!("xlb{tag}{}", std::process::id()), PinDir::new(tag))
    }

    /// A lab with fixed names (the demo's, which a user can type): namespaces
    /// `<prefix>-<short>`, logs in the temporary directory `<prefix>`, pins in `pins`.
    pub fn named(prefix: &str, pins: PinDir) -> Self {
        let tmp = std::env::temp_dir().join(prefix);
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("temp dir");
        Self {
            pins,
            prefix: prefix.to_string(),
            namespaces: Vec::new(),
            children: Vec::new(),
            tmp,
        }
    }

    /// The full name of the lab's namespace `short`.
    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    pub fn add_ns(&mut self, short: &str) -> String {
        let name = self.ns(short);
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        self.namespaces.push(name.clone());
        self.sh(short, "ip link set lo up");
        name
    }

    /// Runs `script` with `sh -c` inside namespace `short`; panics on failure.
    pub fn sh(&self, short: &str, script: &str) -> String {
        run_ok(Command::new("ip").args(["netns", "exec", &self.ns(short), "sh", "-c", script]))
    }

    /// A command that runs in namespace `short` and keeps this process's mounts (so the
    /// host's /sys/fs/bpf stays visible, unlike with `ip netns exec`).
    pub fn command(&self, short: &str, program: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns(short)))
            .arg("--")
            .arg(program);
        c
    }

    /// Starts a long-running process; it is killed (by PID) when the lab drops.
    pub fn spawn(&mut self, label: &str, mut cmd: Command) -> u32 {
        let log = File::create(self.log_path(label)).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {label}: {e}"));
        let pid = child.id();
        self.children.push((label.to_string(), child));
        pid
    }

    /// Where the output of the process started as `label` goes.
    pub fn log_path(&self, label: &str) -> PathBuf {
        self.tmp.join(format!("{label}.log"))
    }

    pub fn log(&self, label: &str) -> String {
        std::fs::read_to_string(self.log_path(label)).unwrap_or_default()
    }

    /// Waits until the log of `label` contains `needle`.
    pub fn wait_log(&mut self, label: &str, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log(label).contains(needle) {
                return;
            }
            if let Some((_, child)) = self.children.iter_mut().find(|(l, _)| l == label) {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{label} exited ({status}) before logging {needle:?}:\n{}",
                        self.log(label)
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "{label} did not log {needle:?} within {timeout:?}:\n{}",
                self.log(label)
            );
            check_interrupted();
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to a process this lab started and reaps it (with SIGKILL if it has
    /// not exited after a grace period); returns its PID.
    pub fn kill(&mut self, label: &str, signal: i32) -> u32 {
        let pos = self
            .children
            .iter()
            .position(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("no process {label}"));
        let (_, mut child) = self.children.remove(pos);
        // SAFETY: a PID of a child we have not reaped yet.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + KILL_GRACE;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        child.id()
    }

    /// Whether the lab still holds a process started as `label` (not killed yet).
    pub fn has_process(&self, label: &str) -> bool {
        self.children.iter().any(|(l, _)| l == label)
    }

    /// Creates the bridge `br0` in namespace `switch`.
    pub fn bridge(&mut self, switch: &str) {
        self.sh(switch, "ip link add br0 type bridge && ip link set br0 up");
    }

    /// Plugs host `short` into the bridge: its `eth0` with `addr` (CIDR), the switch side
    /// named `p-<short>`. Transmit checksum offload is off (see TOOLCHAIN.md: XDP_TX'd
    /// CHECKSUM_PARTIAL packets would reach the receiver with bad checksums).
    pub fn plug(&mut self, switch: &str, short: &str, addrs: &[&str]) {
        let port = format!("p-{short}");
        let host_ns = self.ns(short);
        self.sh(
            switch,
            &format!(
                "ip link add {port} type veth peer name eth0 netns {host_ns} && \
                 ip link set {port} master br0 && ip link set {port} up"
            ),
        );
        let mut script = String::from("ip link set eth0 up && ethtool -K eth0 tx off >/dev/null");
        for a in addrs {
            script.push_str(&format!(" && ip addr add {a} dev eth0"));
        }
        self.sh(short, &script);
    }

    /// Runs `f` on a thread inside namespace `short` (sockets it opens live there).
    pub fn within<T: Send>(&self, short: &str, f: impl FnOnce() -> T + Send) -> T {
        let ns = self.netns_file(short);
        std::thread::scope(|s| {
            s.spawn(move || {
                enter(&ns).expect("setns");
                f()
            })
            .join()
            .expect("lab thread panicked")
        })
    }

    /// The file of namespace `short`, for a thread that [`enter`]s it later.
    pub fn netns_file(&self, short: &str) -> File {
        File::open(format!("/run/netns/{}", self.ns(short))).expect("netns file")
    }

    /// Attaches the pass-through XDP program to `port` of namespace `switch`, pinned at
    /// `pin` (see [`xdp_pass`]).
    pub fn pass_xdp(&self, switch: &str, port: &str, pin: &Path) {
        std::fs::create_dir_all(&self.pins.0).expect("pin dir");
        self.within(switch, || xdp_pass::attach(port, pin))
            .unwrap_or_else(|e| panic!("XDP pass on {port} of {switch}: {e}"));
    }

    /// An interface counter of namespace `short` (e.g. "eth0", "rx_bytes").
    pub fn counter(&self, short: &str, ifname: &str, name: &str) -> u64 {
        self.sh(
            short,
            &format!("cat /sys/class/net/{ifname}/statistics/{name}"),
        )
        .trim()
        .parse()
        .expect("counter")
    }
}

/// Moves the calling thread into the network namespace `netns` (a [`Lab::netns_file`]);
/// threads it starts afterwards are born there too. setns() changes only this thread.
pub fn enter(netns: &File) -> std::io::Result<()> {
    // SAFETY: setns on this thread only, with an fd we own.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            // SAFETY: PIDs of our own unreaped children.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// One HTTP GET over a fresh connection; returns the response body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok(body)
}

/// A line-echo connection to the lab's real servers (port 7).
pub struct EchoConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl EchoConn {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Self {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// Sends a line, returns the server's answer ("<name> <local addr> <line>").
    pub fn ask(&mut self, line: &str) -> std::io::Result<String> {
        writeln!(self.writer, "{line}")?;
        let mut answer = String::new();
        self.reader.read_line(&mut answer)?;
        if answer.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed",
            ));
        }
        Ok(answer.trim_end().to_string())
    }
}

pub const LAB_VIP: &str = "198.18.0.100";
pub const LAB_CLIENT: &str = "198.18.0.1";
pub const LAB_DIRECTOR: &str = "198.18.0.2";
pub const LAB_VIP6: &str = "2001:db8::100";
pub const LAB_CLIENT6: &str = "2001:db8::1";
pub const LAB_DIRECTOR6: &str = "2001:db8::2";

/// IPv6 address of real server `n` (1-based) of the DR lab.
pub fn lab_real6(n: usize) -> String {
    format!("2001:db8::{:x}", 0x10 + n)
}

/// Real server `n` (1-based) of the DR lab.
pub fn lab_real(n: usize) -> String {
    format!("198.18.0.{}", 10 + n)
}

/// The DR lab: a bridge (`sw`), a client (`client`), one director (`dir`) holding the VIP
/// on its eth0 (as an operator does without VRRP), and `reals` real servers (`rs1`..)
/// prepared with `xlb realserver setup` and running the lab real-server program. The
/// director's switch port runs the XDP pass program so XDP_TX frames are delivered.
pub fn dr_lab(tag: &str, reals: usize) -> Lab {
    let mut lab = Lab::new(tag);
    for short in ["sw", "client", "dir"] {
        lab.add_ns(short);
    }
    lab.bridge("sw");
    lab.plug(
        "sw",
        "client",
        &[
            &format!("{LAB_CLIENT}/24"),
            &format!("{LAB_CLIENT6}/64 nodad"),
        ],
    );
    lab.plug(
        "sw",
        "dir",
        &[
            &format!("{LAB_DIRECTOR}/24"),
            &format!("{LAB_VIP}/32"),
            &format!("{LAB_DIRECTOR6}/64 nodad"),
            &format!("{LAB_VIP6}/128 nodad"),
        ],
    );
    let xlb = xlb_bin();
    for n in 1..=reals {
        let short = format!("rs{n}");
        lab.add_ns(&short);
        lab.plug(
            "sw",
            &short,
            &[
                &format!("{}/24", lab_real(n)),
                &format!("{}/64 nodad", lab_real6(n)),
            ],
        );
        let state = realserver_state(&lab, &short);
        run_ok(
            lab.command(&short, &xlb)
                .args([
                    "realserver",
                    "setup",
                    "--vip",
                    LAB_VIP,
                    "--vip",
                    LAB_VIP6,
                    "--state-file",
                ])
                .arg(&state),
        );
        let mut server = lab.command(&short, Path::new("python3"));
        server.arg(realserver_script()).arg(&short);
        lab.spawn(&short, server);
        lab.wait_log(&short, "listening", Duration::from_secs(10));
    }
    let pin = lab.pins.0.join("pass_dir");
    lab.pass_xdp("sw", "p-dir", &pin);
    lab
}

/// The state file of `xlb realserver setup` on real server `short` (what its teardown
/// restores from).
pub fn realserver_state(lab: &Lab, short: &str) -> PathBuf {
    lab.tmp.join(format!("{short}-realserver.json"))
}

/// Writes the director's config for the DR lab: `services` is TOML for the
/// `[[virtual_server]]` blocks.
pub fn write_config(lab: &Lab, services: &str) -> PathBuf {
    let path = lab.tmp.join("xlb.toml");
    std::fs::write(&path, services).expect("config");
    path
}

/// Starts `xlb run` in the director namespace under the label `label`; waits until running.
pub fn start_xlb(lab: &mut Lab, label: &str, config: &Path) {
    let mut cmd = lab.command("dir", &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .arg("--pin-path")
        .arg(&lab.pins.0);
    lab.spawn(label, cmd);
    lab.wait_log(label, "xlb running", Duration::from_secs(20));
}

impl Lab {
    /// Sends `signal` to a process this lab started, leaving it running and unreaped (the
    /// lab still kills it on drop). Panics if the process has already exited.
    pub fn signal(&mut self, label: &str, signal: i32) {
        let log = self.log(label);
        let (_, child) = self
            .children
            .iter_mut()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("no process {label}"));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{label} already exited ({status}):\n{log}");
        }
        // SAFETY: the PID of a child we have not reaped yet.
        unsafe { libc::kill(child.id() as i32, signal) };
    }
}

pub const LAB_DIRECTOR2: &str = "198.18.0.3";

/// The HA labs' virtual server, in TOML: `LAB_VIP:80` over rs1 and rs2 with `mh`, so that
/// either director sends a client to the same real server.
pub fn lab_mh_service() -> String {
    format!(
        r#"
[[virtual_server]]
ip = "{LAB_VIP}"
port = 80
protocol = "TCP"
lb_algo = "mh"

[[virtual_server.real_server]]
ip = "{rs1}"
port = 80

[[virtual_server.real_server]]
ip = "{rs2}"
port = 80
"#,
        rs1 = lab_real(1),
        rs2 = lab_real(2)
    )
}

/// The HA lab: like [`dr_lab`] but with two directors, `dir1` (198.18.0.2) and `dir2`
/// (198.18.0.3), and no VIP on either: VRRP moves it. Both switch ports run the XDP pass
/// program.
pub fn ha_lab(tag: &str, reals: usize) -> Lab {
    build_ha_lab(Lab::new(tag), reals)
}

/// [`ha_lab`] built in `lab`, a fresh one (the demo's is [`Lab::named`]).
pub fn build_ha_lab(mut lab: Lab, reals: usize) -> Lab {
    for short in ["sw", "client", "dir1", "dir2"] {
        lab.add_ns(short);
    }
    lab.bridge("sw");
    lab.plug("sw", "client", &[&format!("{LAB_CLIENT}/24")]);
    lab.plug("sw", "dir1", &[&format!("{LAB_DIRECTOR}/24")]);
    lab.plug("sw", "dir2", &[&format!("{LAB_DIRECTOR2}/24")]);
    let xlb = xlb_bin();
    for n in 1..=reals {
        let short = format!("rs{n}");
        lab.add_ns(&short);
        lab.plug("sw", &short, &[&format!("{}/24", lab_real(n))]);
        let state = realserver_state(&lab, &short);
        run_ok(
            lab.command(&short, &xlb)
                .args(["realserver", "setup", "--vip", LAB_VIP, "--state-file"])
                .arg(&state),
        );
        let mut server = lab.command(&short, Path::new("python3"));
        server.arg(realserver_script()).arg(&short);
        lab.spawn(&short, server);
        lab.wait_log(&short, "listening", Duration::from_secs(10));
    }
    for dir in ["dir1", "dir2"] {
        let pin = lab.pins.0.join(format!("pass_{dir}"));
        lab.pass_xdp("sw", &format!("p-{dir}"), &pin);
    }
    lab
}

/// Starts `xlb run` in namespace `ns` (pins in a per-namespace subdirectory); waits until
/// it runs.
pub fn start_xlb_in(lab: &mut Lab, ns: &str, label: &str, config: &Path) {
    let pins = lab.pins.0.join(ns);
    let mut cmd = lab.command(ns, &xlb_bin());
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .arg("--pin-path")
        .arg(&pins);
    lab.spawn(label, cmd);
    lab.wait_log(label, "xlb running", Duration::from_secs(20));
}

/// Polls `f` until it returns Some, or panics with `what` and the last observation.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> (Option<T>, String)) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let (got, seen) = f();
        if let Some(v) = got {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {timeout:?}; last seen: {seen}"
        );
        check_interrupted();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether namespace `ns` has `addr` on one of its interfaces.
pub fn has_address(lab: &Lab, ns: &str, addr: &str) -> bool {
    lab.sh(ns, "ip -o addr show")
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(addr))
}

/// Waits until namespace `ns` holds `addr` (or no longer does); returns how long it took.
pub fn wait_addr(lab: &Lab, ns: &str, addr: &str, present: bool, timeout: Duration) -> Duration {
    let start = Instant::now();
    while has_address(lab, ns, addr) != present {
        assert!(
            start.elapsed() < timeout,
            "{ns}: {addr} {} within {timeout:?}",
            if present {
                "did not come"
            } else {
                "did not leave"
            }
        );
        check_interrupted();
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

/// [`wait_addr`] for the lab's VIP.
pub fn wait_vip(lab: &Lab, ns: &str, present: bool, timeout: Duration) -> Duration {
    wait_addr(lab, ns, LAB_VIP, present, timeout)
}

/// The MAC of namespace `ns`'s eth0.
pub fn mac_of(lab: &Lab, ns: &str) -> String {
    lab.sh(ns, "cat /sys/class/net/eth0/address")
        .trim()
        .to_string()
}
