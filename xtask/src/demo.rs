//! `cargo xtask demo`: direct-routing load balancing with real kernel XDP, in network
//! namespaces on this machine, built up and torn down again in a few seconds.
//!
//! The lab is the one the privileged tests use (`tests/src/netns.rs`, `dr_lab`): a switch
//! namespace with bridge `br0`; a client (198.18.0.1); a director (198.18.0.2, holding the
//! VIP 198.18.0.100 on its eth0) running `xlb run`; three real servers (198.18.0.11-13)
//! prepared with `xlb realserver setup` and running `tests/lab/realserver.py`, which answers
//! HTTP with its name and the local address the connection arrived at. Each host's eth0 is
//! a veth whose peer `p-<host>` sits on the bridge.
//!
//! Everything the demo creates (namespaces, processes, pins under /sys/fs/bpf/xlbdemo, a
//! temporary directory) is owned by a guard that removes it when the demo ends, fails, or is
//! interrupted (Ctrl-C, SIGTERM, SIGHUP). Processes are stopped by the PIDs the demo got
//! when it started them. Leftovers of an earlier run that was killed outright are removed
//! before the lab is built.

use std::{
    fmt::Write as _,
    fs::{self, File},
    os::{fd::AsRawFd as _, unix::process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    thread::sleep,
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
/// The director's pin directory (on the bpffs that `setup` mounts).
const PIN_DIR: &str = "/sys/fs/bpf/xlbdemo";
/// The link of the XDP_PASS program on the director's switch port, inside `PIN_DIR`.
const PASS_PIN: &str = "pass_dir";
/// Held (flock) while a demo runs, so a second one does not tear down the first one's lab.
const LOCK_FILE: &str = "/run/xlbdemo.lock";

const VIP: &str = "198.18.0.100";
const CLIENT_ADDR: &str = "198.18.0.1";
const DIRECTOR_ADDR: &str = "198.18.0.2";
/// The real servers: name, address, weight.
const REALS: [(&str, &str, u32); 3] = [
    ("rs1", "198.18.0.11", 3),
    ("rs2", "198.18.0.12", 2),
    ("rs3", "198.18.0.13", 1),
];
/// HTTP requests the client sends through the VIP, each on a new TCP connection.
const REQUESTS: usize = 60;
/// Failed requests after which the client gives up (a broken lab fails fast).
const MAX_FAILURES: usize = 5;
/// Bytes of filler in each HTTP answer (`GET /?size=N`), so the answers outweigh requests.
const BODY: usize = 10_000;
/// Answers printed as they came.
const SHOWN: usize = 6;

const SERVER_START: Duration = Duration::from_secs(10);
const XLB_START: Duration = Duration::from_secs(20);
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
    lab.start_xlb()?;
    let answers = lab.client_requests()?;
    let verdict = report(&answers);
    lab.show_maps()?;
    if let Err(err) = verdict {
        println!("--- xlb log ({}) ---", lab.log_path("xlb").display());
        print!("{}", lab.log("xlb"));
        println!("---");
        return Err(err);
    }
    drop(lab);
    step(
        TASK,
        format!(
            "done in {:.1} s: DR load balancing through XDP worked",
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
        // Only what runs inside the demo's own namespaces: its servers and its director.
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
        output(host(xlb).args(["teardown", "--pin-path", PIN_DIR]))?;
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
    /// Real servers prepared with `xlb realserver setup`.
    prepared: Vec<&'static str>,
    /// Whether `PIN_DIR` was created (by the demo or by xlb).
    pins: bool,
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
            prepared: Vec::new(),
            pins: false,
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

    /// Namespaces, bridge, veths, real servers, and the XDP_PASS program on the director's
    /// switch port.
    fn build(&mut self) -> Result<()> {
        step(
            TASK,
            format!(
                "namespaces {PREFIX}-{{sw,client,dir,rs1,rs2,rs3}}: bridge br0 in sw, each \
                 host's eth0 a veth to p-<host> on br0, tx checksum offload off"
            ),
        );
        for short in ["sw", "client", "dir"] {
            self.add_ns(short)?;
        }
        sh("sw", "ip link add br0 type bridge && ip link set br0 up")?;
        self.plug("client", &[format!("{CLIENT_ADDR}/24")])?;
        self.plug("dir", &[format!("{DIRECTOR_ADDR}/24"), format!("{VIP}/32")])?;
        step(
            TASK,
            format!(
                "client {CLIENT_ADDR}, director {DIRECTOR_ADDR} with the VIP {VIP} on eth0, \
                 real servers {}",
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
            "XDP_PASS on the switch port p-dir: a veth delivers the director's XDP_TX frames \
             only when its peer runs XDP",
        );
        fs::create_dir_all(PIN_DIR).with_context(|| format!("cannot create {PIN_DIR}"))?;
        self.pins = true;
        run(host(&self.xlb)
            .arg("lab-xdp-pass")
            .args(["--netns", &ns("sw"), "--dev", "p-dir", "--pin"])
            .arg(Path::new(PIN_DIR).join(PASS_PIN)))?;
        check_interrupted()
    }

    /// Writes the director's config and starts `xlb run` in the director's namespace.
    fn start_xlb(&mut self) -> Result<()> {
        let config = self.tmp.join("xlb.toml");
        let text = config_text();
        fs::write(&config, &text).with_context(|| format!("cannot write {}", config.display()))?;
        step(
            TASK,
            format!(
                "director config {} (keepalived's keywords):",
                config.display()
            ),
        );
        for line in text.lines() {
            println!("    {line}");
        }
        step(
            TASK,
            format!("director: xlb run (log {})", self.log_path("xlb").display()),
        );
        let mut cmd = in_ns("dir", &self.xlb);
        cmd.arg("run")
            .arg("-c")
            .arg(&config)
            .args(["--pin-path", PIN_DIR])
            .env("NO_COLOR", "1");
        println!("  $ {}", display(&cmd));
        self.spawn("xlb", cmd)?;
        self.wait_log("xlb", "xlb running", XLB_START)?;
        let log = self.log("xlb");
        let attached = log
            .lines()
            .find(|line| line.contains("XDP attached"))
            .map(|line| {
                let line = strip_ansi(line);
                let start = line.find("XDP attached").unwrap_or(0);
                line[start..].to_owned()
            })
            .unwrap_or_else(|| "XDP attached".to_owned());
        step(TASK, format!("xlb running: {attached}"));
        Ok(())
    }

    /// `REQUESTS` HTTP requests from the client through the VIP, each with its own curl (so
    /// on a new TCP connection). Returns each answer's first line, or the error.
    fn client_requests(&mut self) -> Result<Vec<Result<String, String>>> {
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
        let rx_before = rx_bytes("dir")?;
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
        let received = rx_bytes("dir")?.saturating_sub(rx_before);
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
                "the real servers sent {} KB of answers straight to the client; the director's \
                 eth0 received {} KB in all (the client's side only)",
                sent / 1000,
                received / 1000
            ),
        );
        Ok(answers)
    }

    /// `xlb status` from the pinned maps, and bpftool on one of them.
    fn show_maps(&mut self) -> Result<()> {
        step(
            TASK,
            "what the data plane counted, read from the pinned maps (xlb need not run):",
        );
        run(host(&self.xlb).args(["status", "--pin-path", PIN_DIR]))?;
        step(TASK, "the maps are plain pinned BPF maps with BTF:");
        run(host("bpftool").args(["map", "show", "pinned", &format!("{PIN_DIR}/xlb_conns")]))?;
        step(
            TASK,
            format!(
                "(while a lab runs: `bpftool map dump pinned {PIN_DIR}/xlb_svc_stats` prints \
                 the per-CPU counters with field names)"
            ),
        );
        check_interrupted()
    }

    /// Stops and removes everything, best effort, saying what failed.
    fn teardown(&mut self) {
        step(
            TASK,
            "teardown: xlb (SIGTERM), its pins, the real servers, the namespaces",
        );
        if let Some(pos) = self.children.iter().position(|(l, _)| l == "xlb") {
            let (_, mut xlb) = self.children.remove(pos);
            stop(&mut xlb, libc::SIGTERM, STOP_GRACE);
        }
        if self.pins {
            // A stopped xlb leaves its program attached and its maps pinned (a restart adopts
            // them): `xlb teardown` detaches and unpins.
            match output(host(&self.xlb).args(["teardown", "--pin-path", PIN_DIR])) {
                Ok(out) => println!(
                    "  xlb teardown: {} pins removed",
                    out.lines().filter(|l| l.starts_with("removed")).count()
                ),
                Err(err) => println!("  xlb teardown: {err:#}"),
            }
            let pass = Path::new(PIN_DIR).join(PASS_PIN);
            if pass.exists() {
                if let Err(err) = fs::remove_file(&pass) {
                    println!("  cannot remove {}: {err}", pass.display());
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

/// The director's config: one virtual server, wrr, DR, the three real servers.
fn config_text() -> String {
    let mut text = format!(
        "[[virtual_server]]\nip = \"{VIP}\"\nport = 80\nprotocol = \"TCP\"\nlb_algo = \"wrr\"\n\
         lb_kind = \"DR\"\ninterface = \"eth0\"\n"
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
        format!("who answered the {} requests:", answers.len()),
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
