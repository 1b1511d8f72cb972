//! The demo's lab and its life: the tests' HA lab built under fixed names, the directors'
//! configs and `xlb run`s, what the scenes show of them (addresses, VRRP transitions, ARP),
//! and the teardown, in the order a careful operator would, when the demo ends or fails.
//! Also what an earlier run left, removed before the lab is built.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};
use integration_tests::{
    PinDir,
    netns::{self, Lab},
};

use crate::{ADVERT_INT, DIRECTORS, VIP, VRID, VRRP_VERSION, reals, step};

/// Prefix of every namespace the demo creates (and removes when left over), and the name
/// of its temporary directory.
const PREFIX: &str = "xlbdemo";
/// The demo's pin directory (on the bpffs that `cargo xtask setup` mounts): each
/// director's maps and program link in a subdirectory named after it, the XDP_PASS links of
/// the switch ports as `pass_<director>`.
const PIN_DIR: &str = "/sys/fs/bpf/xlbdemo";

/// The lab and what the demo started in it; Drop tears everything down.
pub struct Demo {
    /// `None` once torn down.
    lab: Option<Lab>,
    xlb: PathBuf,
    /// Labels of every `xlb run` started (their logs are printed when the demo fails).
    xlb_runs: Vec<String>,
    /// Each director's config file, as in `DIRECTORS`.
    configs: Vec<PathBuf>,
    /// Each director's eth0 MAC address, as in `DIRECTORS`.
    macs: Vec<String>,
    /// A scene failed: the logs are printed before the teardown.
    failed: bool,
}

/// Director `dir`'s pin path (`xlb run --pin-path`), as the lab's `start_xlb_in` uses it.
pub fn pins_of(dir: &str) -> PathBuf {
    Path::new(PIN_DIR).join(dir)
}

/// The label (and log name) of an `xlb run` on director `dir`.
pub fn xlb_label(dir: &str) -> String {
    format!("xlb-{dir}")
}

/// The index of director `dir` in `DIRECTORS`.
fn director(dir: &str) -> usize {
    DIRECTORS
        .iter()
        .position(|(d, _, _)| *d == dir)
        .expect("a director of DIRECTORS")
}

/// `cmd` as a line to show: `  $ program args...`.
pub fn shown(cmd: &Command) -> String {
    let mut line = String::from("  $");
    for part in std::iter::once(cmd.get_program()).chain(cmd.get_args()) {
        let _ = write!(line, " {}", part.to_string_lossy());
    }
    line
}

/// Shows `cmd` and runs it with this process's output; fails when it fails.
pub fn run_shown(cmd: &mut Command) -> Result<()> {
    println!("{}", shown(cmd));
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{} failed ({status})", shown(cmd).trim_start());
    }
    Ok(())
}

/// Runs `cmd` quietly; its stdout, or what went wrong (with its stderr).
fn quietly(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            shown(cmd).trim_start(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Demo {
    /// Namespaces, bridge, veths, real servers, and the XDP_PASS program on each
    /// director's switch port.
    pub fn build() -> Self {
        let dirs = DIRECTORS.map(|(d, _, _)| d);
        let reals = reals();
        let names: Vec<&str> = reals.iter().map(|r| r.name.as_str()).collect();
        step(format!(
            "namespaces {PREFIX}-{{sw,client,{},{}}}: bridge br0 in sw, each host's eth0 a veth \
             to p-<host> on br0, tx checksum offload off",
            dirs.join(","),
            names.join(",")
        ));
        let lab = netns::build_ha_lab(
            Lab::named(PREFIX, PinDir(PathBuf::from(PIN_DIR))),
            reals.len(),
        );
        let macs: Vec<String> = dirs.iter().map(|dir| netns::mac_of(&lab, dir)).collect();
        step(format!(
            "client {}, directors {} (neither has the VIP {VIP}: VRRP will put it on the \
             master), real servers {}",
            crate::CLIENT_ADDR,
            DIRECTORS
                .iter()
                .zip(&macs)
                .map(|((dir, addr, _), mac)| format!("{dir} {addr} (MAC {mac})"))
                .collect::<Vec<_>>()
                .join(" and "),
            reals
                .iter()
                .map(|r| r.addr.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
        step(
            "real servers: VIP on lo, arp_ignore=1, arp_announce=2 (xlb realserver setup), \
             then an HTTP server naming itself and the address it was reached at",
        );
        println!(
            "  $ {} realserver setup --vip {VIP} --state-file {}   (in {})",
            netns::xlb_bin().display(),
            netns::realserver_state(&lab, "rsN").display(),
            names.join(", ")
        );
        step(format!(
            "XDP_PASS on the switch ports {}: a veth delivers a director's XDP_TX frames only \
             when its peer runs XDP (pinned as {PIN_DIR}/pass_<director>)",
            dirs.map(|d| format!("p-{d}")).join(" ")
        ));
        Self {
            lab: Some(lab),
            xlb: netns::xlb_bin(),
            xlb_runs: Vec::new(),
            configs: Vec::new(),
            macs,
            failed: false,
        }
    }

    pub fn lab(&self) -> &Lab {
        self.lab.as_ref().expect("the lab runs until the teardown")
    }

    pub fn lab_mut(&mut self) -> &mut Lab {
        self.lab.as_mut().expect("the lab runs until the teardown")
    }

    /// The xlb binary the lab runs.
    pub fn xlb(&self) -> &Path {
        &self.xlb
    }

    /// The scenes, in order; a failure marks the demo failed (its logs get printed).
    pub fn play(&mut self) -> Result<()> {
        let result = self.scenes();
        self.failed = result.is_err();
        result
    }

    fn scenes(&mut self) -> Result<()> {
        self.election()?;
        let answers = self.client_requests()?;
        let verdict = crate::balancing::report(&answers);
        self.show_master()?;
        verdict?;
        self.failover()?;
        self.comeback()
    }

    /// Writes both directors' configs (`config_text`); their paths.
    pub fn write_configs(&mut self) -> Result<&[PathBuf]> {
        for (dir, _, priority) in DIRECTORS {
            let path = self.lab().tmp.join(format!("{dir}.toml"));
            fs::write(&path, config_text(priority))
                .with_context(|| format!("cannot write {}", path.display()))?;
            self.configs.push(path);
        }
        Ok(&self.configs)
    }

    /// `xlb run` on director `dir`, under `label`, until it logs that it runs.
    pub fn start_xlb(&mut self, dir: &str, label: &str) {
        let config = self.configs[director(dir)].clone();
        println!(
            "  $ nsenter --net=/run/netns/{} -- {} run -c {} --pin-path {}",
            self.lab().ns(dir),
            self.xlb.display(),
            config.display(),
            pins_of(dir).display()
        );
        self.xlb_runs.push(label.to_string());
        netns::start_xlb_in(self.lab_mut(), dir, label, &config);
    }

    /// Each director's eth0 addresses and the VRRP transitions its xlb logged.
    pub fn show_vrrp(&self) {
        println!("  $ ip -br addr show dev eth0   (in each director)");
        for (dir, _, _) in DIRECTORS {
            println!(
                "    {dir}: {}",
                self.lab().sh(dir, "ip -br addr show dev eth0").trim()
            );
        }
        println!("  VRRP transitions (xlb logs):");
        for label in &self.xlb_runs {
            let steps = transitions(&self.lab().log(label));
            println!(
                "    {label}: {}",
                if steps.is_empty() {
                    "none".to_string()
                } else {
                    steps.join(", ")
                }
            );
        }
    }

    /// The client's ARP entry for the VIP; fails unless it is director `dir`'s MAC.
    pub fn show_arp(&self, dir: &str) -> Result<()> {
        let mac = &self.macs[director(dir)];
        let entry = self
            .lab()
            .sh("client", &format!("ip neigh show {VIP} dev eth0"));
        let entry = entry.trim();
        println!("  $ ip neigh show {VIP} dev eth0   (in client)");
        println!("    {entry}   ({dir}'s MAC: {mac})");
        if !entry.split_whitespace().any(|w| w == mac) {
            bail!("the client's ARP entry for the VIP is not {dir}'s MAC {mac}: {entry:?}");
        }
        Ok(())
    }

    /// The logs of every `xlb run`, for a failed demo.
    fn print_logs(&self) {
        let Some(lab) = &self.lab else { return };
        for label in &self.xlb_runs {
            println!("--- {label} log ({}) ---", lab.log_path(label).display());
            print!("{}", lab.log(label));
        }
        if !self.xlb_runs.is_empty() {
            println!("---");
        }
    }

    /// Stops and removes everything, best effort (it runs in Drop: it must not panic),
    /// saying what failed.
    fn teardown(&mut self) {
        let Some(mut lab) = self.lab.take() else {
            return;
        };
        step(
            "teardown: xlb on the directors (SIGTERM), their pins, the real servers, the \
             namespaces",
        );
        for label in &self.xlb_runs {
            if lab.has_process(label) {
                lab.kill(label, libc::SIGTERM);
            }
        }
        // A stopped xlb leaves its program attached and its maps pinned (a restart adopts
        // them): detach and unpin, as `xlb teardown` does.
        for (dir, _, _) in DIRECTORS {
            match xlb::dataplane::teardown(&pins_of(dir)) {
                Ok(removed) => println!("  xlb teardown ({dir}): {} pins removed", removed.len()),
                Err(err) => println!("  xlb teardown ({dir}): {err}"),
            }
        }
        for real in reals() {
            let mut restore = lab.command(&real.name, &self.xlb);
            restore
                .args(["realserver", "teardown", "--vip", VIP, "--state-file"])
                .arg(netns::realserver_state(&lab, &real.name));
            if let Err(err) = quietly(&mut restore) {
                println!("  {}: xlb realserver teardown: {err:#}", real.name);
            }
        }
        // The real servers, the namespaces, the temporary directory and the pins.
        drop(lab);
        match demo_namespaces() {
            Ok(left) if left.is_empty() && !Path::new(PIN_DIR).exists() => {
                step("teardown: nothing left");
            }
            Ok(left) => println!(
                "  still there: namespaces {left:?}, {PIN_DIR} exists: {}",
                Path::new(PIN_DIR).exists()
            ),
            Err(err) => println!("  ip netns list: {err:#}"),
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if (self.failed || std::thread::panicking()) && !netns::interrupted() {
            self.print_logs();
        }
        self.teardown();
    }
}

/// The demo's namespaces that exist now.
fn demo_namespaces() -> Result<Vec<String>> {
    let list = quietly(Command::new("ip").args(["netns", "list"]))?;
    Ok(list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(&format!("{PREFIX}-")))
        .map(str::to_string)
        .collect())
}

/// Removes what an earlier demo left when it was killed outright: its namespaces (with the
/// processes it had started inside them), its pins and its temporary directory.
pub fn remove_leftovers() -> Result<()> {
    let namespaces = demo_namespaces()?;
    let pins = Path::new(PIN_DIR).exists();
    let tmp = std::env::temp_dir().join(PREFIX);
    if namespaces.is_empty() && !pins && !tmp.exists() {
        step("leftovers of an earlier run: none");
        return Ok(());
    }
    let mut what = String::new();
    if !namespaces.is_empty() {
        let _ = write!(what, " namespaces {}", namespaces.join(" "));
    }
    if pins {
        let _ = write!(what, " pins {PIN_DIR}");
    }
    if tmp.exists() {
        let _ = write!(what, " {}", tmp.display());
    }
    step(format!("leftovers of an earlier run: removing{what}"));
    for name in &namespaces {
        // Only what runs inside the demo's own namespaces: its servers and its directors.
        let pids = quietly(Command::new("ip").args(["netns", "pids", name])).unwrap_or_default();
        for pid in pids
            .lines()
            .filter_map(|p| p.trim().parse::<libc::pid_t>().ok())
        {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        quietly(Command::new("ip").args(["netns", "del", name]))?;
    }
    if pins {
        // Each director's pins, and those of an earlier demo with one director.
        for dir in DIRECTORS
            .iter()
            .map(|(d, _, _)| pins_of(d))
            .chain([PathBuf::from(PIN_DIR)])
        {
            xlb::dataplane::teardown(&dir)
                .with_context(|| format!("cannot unpin {}", dir.display()))?;
        }
        fs::remove_dir_all(PIN_DIR).with_context(|| format!("cannot remove {PIN_DIR}"))?;
    }
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    Ok(())
}

/// A director's config: the VRRP instance owning the VIP, one virtual server on it (mh,
/// DR, the three real servers).
pub fn config_text(priority: u8) -> String {
    let mut text = format!(
        "[[vrrp_instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = {VRID}\n\
         priority = {priority}\nversion = {VRRP_VERSION}\nadvert_int = {ADVERT_INT}\n\
         virtual_ipaddress = [\"{VIP}/32\"]\n\n\
         [[virtual_server]]\nip = \"{VIP}\"\nport = 80\nprotocol = \"TCP\"\nlb_algo = \"mh\"\n\
         mh_port = true\nlb_kind = \"DR\"\n"
    );
    for real in reals() {
        let _ = write!(
            text,
            "\n[[virtual_server.real_server]]\nip = \"{}\"\nport = 80\nweight = {}\n",
            real.addr, real.weight
        );
    }
    text
}

/// "FROM -> TO (reason)" for each `VRRP transition` line of an xlb log.
fn transitions(log: &str) -> Vec<String> {
    let field = |line: &str, key: &str| -> String {
        let Some((_, rest)) = line.split_once(&format!(" {key}=")) else {
            return String::new();
        };
        let words: Vec<&str> = rest
            .split(" priority=")
            .next()
            .unwrap_or(rest)
            .split_whitespace()
            .collect();
        if key == "reason" {
            words.join(" ")
        } else {
            words.first().copied().unwrap_or_default().to_string()
        }
    };
    log.lines()
        .filter(|line| line.contains("VRRP transition"))
        .map(|line| {
            format!(
                "{} -> {} ({})",
                field(line, "from"),
                field(line, "to"),
                field(line, "reason")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_read_from_reason_and_stop_at_priority() {
        let log = "2026-01-01T00:00:00Z  INFO VRRP transition instance=VI_1 from=BACKUP \
                   to=MASTER reason=master down timer expired priority=150\n\
                   something else\n";
        assert_eq!(
            transitions(log),
            ["BACKUP -> MASTER (master down timer expired)"]
        );
    }

    #[test]
    fn configs_list_every_real_server_with_its_weight() {
        let text = config_text(150);
        assert!(text.contains("priority = 150"));
        for real in reals() {
            assert!(text.contains(&format!(
                "ip = \"{}\"\nport = 80\nweight = {}",
                real.addr, real.weight
            )));
        }
    }
}
