//! Network-namespace labs: hosts on a bridge, processes inside them, and cleanup on drop
//! (processes killed by PID, namespaces deleted, pins removed), even when a test panics.
//!
//! Addresses come from 198.18.0.0/15; nothing leaves the namespaces the lab creates.
//!
//! - this module: the [`Lab`] itself (namespaces, veths, processes, logs, cleanup);
//! - `topology`: the DR and HA labs the tests, the demo and the benchmark share;
//! - `watch`: waiting for what a lab should come to (an address, a condition);
//! - `client`: a lab client's HTTP and echo connections;
//! - `flood`: crafted segments from many sources, to fill the connection tables;
//! - `interrupt`: signals that end a driver's waits, not the driver;
//! - `scaleout`: active-active directors behind an ECMP router running BIRD.
//!
//! Everything is re-exported here: users name `netns::X`.

mod client;
mod flood;
mod interrupt;
pub mod keepalived;
pub mod scaleout;
mod topology;
mod watch;

pub use client::{EchoConn, http_get};
pub use flood::send_segments;
pub use interrupt::{check_interrupted, interrupted, stop_on_signals};
pub use topology::{
    LAB_CLIENT, LAB_CLIENT6, LAB_DIRECTOR, LAB_DIRECTOR2, LAB_DIRECTOR6, LAB_VIP, LAB_VIP6,
    build_ha_lab, dr_lab, ha_lab, lab_mh_service, lab_real, lab_real6, realserver_state,
    replug_director, replug_director_without_ipv4, start_xlb, start_xlb_in, unplug_director,
    write_config,
};
pub use watch::{has_address, mac_of, wait_addr, wait_for, wait_vip};

use std::{
    fs::File,
    os::fd::AsRawFd,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{PinDir, xdp_pass};

/// How long [`Lab::kill`] waits for a signalled process before it sends SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

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

/// `xlb status ARGS --pin-path PINS`: its output; a failing status fails the test.
pub fn xlb_status(pins: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(xlb_bin())
        .arg("status")
        .args(args)
        .arg("--pin-path")
        .arg(pins)
        .output()
        .expect("xlb status");
    assert!(
        out.status.success(),
        "xlb status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `xlb status --json` of the daemon whose maps are pinned at `pins`.
pub fn xlb_status_json(pins: &Path) -> serde_json::Value {
    serde_json::from_str(&xlb_status(pins, &["--json"])).expect("xlb status --json")
}

/// The real server named by an echo answer ("<name> <local addr> <line>").
pub fn echo_server(answer: &str) -> String {
    answer.split(' ').next().unwrap_or_default().to_string()
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
fn run_ok(cmd: &mut Command) -> String {
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

    /// The PID of the process started as `label`.
    pub fn pid(&self, label: &str) -> u32 {
        self.children
            .iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("no process {label}"))
            .1
            .id()
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
    /// `pin` (see the `xdp_pass` module).
    pub fn pass_xdp(&self, switch: &str, port: &str, pin: &Path) {
        // 0700, as xlb creates pin directories (it refuses ones others could write).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.pins.0)
            .expect("pin dir");
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
