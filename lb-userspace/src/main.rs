//! The `xlb` command line: a thin layer over the library.

use std::{net::IpAddr, path::PathBuf, process::ExitCode};

use clap::{Args, CommandFactory, Parser, Subcommand};
use xlb::{
    cli::{
        control,
        realserver::{self, RealServerOptions},
        status, teardown,
    },
    config::Config,
    control::{RealRef, Reply, Request, ServiceRef, parse_real},
    daemon::{self, RunOptions},
    dataplane::{AttachMode, DEFAULT_PIN_PATH},
    logging::LogOptions,
};

/// The end of `xlb --help` and of xlb(8): what the options do not say.
const AFTER_HELP: &str = "\
Signals (to `xlb run`): SIGHUP reloads the config and reopens the log file; SIGTERM and \
SIGINT resign the VRRP instances and stop, leaving the data plane forwarding; SIGUSR1 and \
SIGUSR2 dump the config and state or the statistics under /run/xlb/, as keepalived does.

Files: /etc/xlb/xlb.toml (the config; `xlb check` validates it), /sys/fs/bpf/xlb (the \
pinned maps and links), /run/xlb/ (status file, lock, dumps).

Environment: XLB_LOG (log filter, e.g. `info,xlb::vrrp=debug`), XLB_SYSLOG_SOCKET (the \
socket of --log-facility, /dev/log by default), NOTIFY_SOCKET and WATCHDOG_USEC (set by \
systemd for Type=notify and WatchdogSec=).";

#[derive(Parser)]
#[command(
    name = "xlb",
    version,
    about = "XDP direct-routing load balancer with VRRP failover",
    after_long_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the director in the foreground (systemd-friendly).
    Run {
        #[arg(short, long, default_value = "/etc/xlb/xlb.toml")]
        config: PathBuf,
        /// Where maps and links are pinned (must be on a bpffs).
        #[arg(long, default_value = DEFAULT_PIN_PATH)]
        pin_path: PathBuf,
        /// Attach in generic (skb) mode: for drivers without native XDP; about half as fast.
        #[arg(long)]
        xdp_generic: bool,
        /// The control socket [default: /run/xlb/xlb.sock, or /run/xlb/<pin path>.sock
        /// for another --pin-path].
        #[arg(long)]
        socket: Option<PathBuf>,
        #[command(flatten)]
        log: LogOptions,
    },
    /// Validate a config file; errors name file:line:column and the key. Refuses what
    /// `xlb run` would refuse, this host's interfaces and addresses included.
    Check {
        #[arg(short, long, default_value = "/etc/xlb/xlb.toml")]
        config: PathBuf,
        /// Skip the checks against this host (interfaces exist, source addresses are
        /// local): for a file meant for another machine.
        #[arg(long)]
        no_host_checks: bool,
        /// Also print what a reload from RUNNING (the config the daemon runs) to this
        /// config would change: VRRP instances kept, changed in place or restarted, VIPs,
        /// services, real servers, and the share of new flows each changed sh/mh
        /// service would send to another real server.
        #[arg(long, value_name = "RUNNING")]
        diff: Option<PathBuf>,
        /// With --diff: the plan as JSON.
        #[arg(long, requires = "diff")]
        json: bool,
    },
    /// Convert a keepalived.conf (and what it includes) to xlb's TOML configuration;
    /// warnings and errors name FILE:LINE.
    ImportKeepalived {
        file: PathBuf,
        /// Write the TOML here instead of to stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// keepalived's `-i ID` / `--config-id ID`: keep the `@ID` lines of this director
        /// and drop its `@^ID` lines (default: the short host name, as keepalived).
        #[arg(short = 'i', long)]
        config_id: Option<String>,
        /// The interface XDP attaches to for a virtual_server whose VIP no vrrp_instance
        /// holds (nor any instance's subnet): IPVS needs none, xlb does.
        #[arg(long, value_name = "IFNAME")]
        interface: Option<String>,
        /// The packets the firewall marks N, for `virtual_server fwmark N` (XDP runs
        /// before netfilter: there is no mark): N=SPEC[,SPEC...], SPEC
        /// [tcp:|udp:]ADDRESS:PORTS, PORTS a port, FIRST-LAST or *, IPv6 in brackets;
        /// e.g. --fwmark 1=tcp:198.18.0.10:80,tcp:198.18.0.10:443. Repeat per mark.
        #[arg(long, value_name = "N=SPEC[,SPEC...]")]
        fwmark: Vec<String>,
    },
    /// Show the virtual services, real servers and counters from the pinned maps, with the
    /// daemon's PID, uptime, config and runtime edits when one answers on its socket.
    Status {
        #[command(flatten)]
        daemon: DaemonArgs,
        #[arg(long)]
        json: bool,
        /// Packets, bytes and new flows per second (like `ipvsadm -Ln --rate`), from two
        /// readings `--interval` apart.
        #[arg(long)]
        rate: bool,
        /// Seconds between the two readings of `--rate`.
        #[arg(long, default_value_t = 1.0, requires = "rate", value_parser = interval_secs)]
        interval: f64,
    },
    /// Have the running daemon load its config file again (as SIGHUP) and say how it went;
    /// runtime edits are dropped (the file is the truth). Exit status 1 if refused.
    Reload {
        /// Change nothing: print what a reload of the file would change (instances, VIPs,
        /// services, real servers, and the share of new flows an mh/sh table moves).
        #[arg(long)]
        plan: bool,
        /// With --plan: as JSON.
        #[arg(long, requires = "plan")]
        json: bool,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Set a real server's weight until the next reload (like `ipvsadm -e -w`).
    Weight {
        /// The virtual service: IP:PORT[/tcp|udp], IPv6 as [2001:db8::1]:80.
        #[arg(value_parser = parse_service)]
        service: ServiceRef,
        /// The real server: IP:PORT.
        #[arg(value_parser = parse_real_arg)]
        real: RealRef,
        /// 0..=65535, as in the config.
        #[arg(value_parser = clap::value_parser!(u32).range(0..=65535))]
        weight: u32,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Weight 0 until the next reload: existing connections stay, new ones go elsewhere.
    Drain {
        /// The virtual service: IP:PORT[/tcp|udp], IPv6 as [2001:db8::1]:80.
        #[arg(value_parser = parse_service)]
        service: ServiceRef,
        /// The real server: IP:PORT.
        #[arg(value_parser = parse_real_arg)]
        real: RealRef,
        /// Then wait until the real server has no active connection left.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds (exit status 1 when it runs out).
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Undo `weight`, `drain` and `disable` of a real server: the file's weight, and its
    /// health checks rule again.
    Enable {
        /// The virtual service: IP:PORT[/tcp|udp], IPv6 as [2001:db8::1]:80.
        #[arg(value_parser = parse_service)]
        service: ServiceRef,
        /// The real server: IP:PORT.
        #[arg(value_parser = parse_real_arg)]
        real: RealRef,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Take a real server out of the table (its connections move), whatever its checks
    /// say, until `enable` or the next reload.
    Disable {
        /// The virtual service: IP:PORT[/tcp|udp], IPv6 as [2001:db8::1]:80.
        #[arg(value_parser = parse_service)]
        service: ServiceRef,
        /// The real server: IP:PORT.
        #[arg(value_parser = parse_real_arg)]
        real: RealRef,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// The running daemon's log: verbosity, or reopen the file (for logrotate).
    Log {
        #[command(subcommand)]
        action: LogAction,
    },
    /// List the tracked connections (as `ipvsadm -Lnc`), read from the pinned maps.
    Conns {
        #[arg(long, default_value = DEFAULT_PIN_PATH)]
        pin_path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List the pinned maps with their sizes and the exact bpftool command that shows each,
    /// then every virtual service's own entries (service, counters, table slice, real
    /// servers' slots) as bpftool commands.
    Maps {
        #[arg(long, default_value = DEFAULT_PIN_PATH)]
        pin_path: PathBuf,
        /// Only this virtual service: VIP:PORT (`[IPv6]:PORT`).
        #[arg(long, value_parser = xlb::cli::maps::parse_service)]
        service: Option<std::net::SocketAddr>,
        /// Also the connection-table bucket of this flow, and the bpftool lookup that
        /// shows it: PROTO,CLIENT:PORT,VIP:PORT (`tcp,198.18.0.1:40000,198.18.0.100:80`).
        #[arg(long, value_parser = xlb::cli::maps::parse_flow)]
        flow: Option<xlb::cli::maps::Flow>,
        #[arg(long)]
        json: bool,
    },
    /// Detach XDP and remove the pinned maps: forwarding stops, connections are forgotten.
    /// Refused while `xlb run` runs on the pin path.
    Teardown {
        #[arg(long, default_value = DEFAULT_PIN_PATH)]
        pin_path: PathBuf,
        /// Tear down even while a daemon holds the pin path (one that no longer answers; a
        /// live one pins again what it still holds).
        #[arg(long)]
        force: bool,
    },
    /// Print the BIRD 2 include that learns xlb's announced VIPs (`announce = "bgp"`) from
    /// its kernel table; with --local-as, --peer-as, --router-id and --neighbor, a whole
    /// director bird.conf (BGP with BFD to each neighbour).
    BirdConfig {
        /// Take the table from this config's `[announce]`.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The kernel table [default: the config's, else 201].
        #[arg(long)]
        table: Option<u32>,
        #[arg(long)]
        local_as: Option<u32>,
        /// The routers' AS.
        #[arg(long)]
        peer_as: Option<u32>,
        /// An upstream router's address (repeat per router).
        #[arg(long)]
        neighbor: Vec<IpAddr>,
        #[arg(long)]
        router_id: Option<std::net::Ipv4Addr>,
    },
    /// Prepare (or restore) this host as a DR real server.
    Realserver {
        #[command(subcommand)]
        action: RealServerAction,
    },
    /// Write the man pages (xlb.8 and one per subcommand) into DIR.
    #[command(hide = true)]
    GenerateMan { dir: PathBuf },
}

/// Which daemon a command talks to.
#[derive(Args)]
struct DaemonArgs {
    /// The daemon's pin path (its socket is named after it).
    #[arg(long, default_value = DEFAULT_PIN_PATH)]
    pin_path: PathBuf,
    /// The daemon's control socket [default: from --pin-path, /run/xlb/xlb.sock for the
    /// default one].
    #[arg(long)]
    socket: Option<PathBuf>,
}

impl DaemonArgs {
    fn socket(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| daemon::default_socket(&self.pin_path))
    }
}

#[derive(Subcommand)]
enum LogAction {
    /// Replace the log filter: `debug`, `info,xlb::vrrp=trace`, ... (RUST_LOG syntax).
    Level {
        filter: String,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Reopen the log file (after logrotate moved it).
    Reopen {
        #[command(flatten)]
        daemon: DaemonArgs,
    },
}

fn parse_service(s: &str) -> Result<ServiceRef, String> {
    s.parse().map_err(|e: xlb::control::RefError| e.to_string())
}

fn parse_real_arg(s: &str) -> Result<RealRef, String> {
    parse_real(s).map_err(|e| e.to_string())
}

/// Sends `request` and prints the outcome: the reply's line on stdout, or the error on
/// stderr with exit status 1.
fn ask(daemon: &DaemonArgs, request: &Request) -> anyhow::Result<Reply> {
    let reply = control::call(&daemon.socket(), request)?;
    if let Reply::Error { message } = &reply {
        anyhow::bail!("{message}");
    }
    Ok(reply)
}

fn print_outcome(reply: Reply) -> anyhow::Result<()> {
    match control::outcome(reply) {
        Ok(line) => {
            println!("{line}");
            Ok(())
        }
        Err(e) => anyhow::bail!("{e}"),
    }
}

/// `xlb status`: live when the daemon answers, the pinned maps alone (said so) when not.
fn status_command(daemon: &DaemonArgs, json: bool) -> anyhow::Result<()> {
    let s = control::live_status(
        &daemon.socket(),
        &daemon.pin_path,
        &daemon::default_state_file(&daemon.pin_path),
    )?;
    let bgp = bgp_status(&daemon.pin_path);
    if json {
        let mut v = serde_json::to_value(&s)?;
        if let (Some(b), Some(map)) = (bgp, v.as_object_mut()) {
            map.insert("bgp".into(), serde_json::to_value(b)?);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", status::render_live(&s));
        if let Some(b) = bgp {
            print!("\n{}", xlb::bgp::status::render(&b.status, b.alive, b.now));
        }
    }
    Ok(())
}

/// What the daemon wrote of its BGP announcements (`announce = "bgp"`), if it did.
#[derive(serde::Serialize)]
struct BgpView {
    #[serde(flatten)]
    status: xlb::bgp::status::BgpStatus,
    /// Whether the daemon that wrote it still runs.
    alive: bool,
    #[serde(skip)]
    now: u64,
}

fn bgp_status(pin_path: &std::path::Path) -> Option<BgpView> {
    use xlb::bgp::status;
    let file = status::file_beside(&daemon::default_state_file(pin_path));
    let s = status::read(&file)?;
    let alive = std::path::Path::new(&format!("/proc/{}", s.pid)).exists();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Some(BgpView {
        status: s,
        alive,
        now,
    })
}

/// `xlb status --rate`: two readings of the pinned counters `interval` seconds apart.
async fn rate_command(pin_path: &std::path::Path, json: bool, interval: f64) -> anyhow::Result<()> {
    let state_file = daemon::default_state_file(pin_path);
    let before = status::read(pin_path, &state_file)?;
    let start = std::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs_f64(interval)).await;
    let after = status::read(pin_path, &state_file)?;
    let r = xlb::cli::rate::between(&before, &after, start.elapsed().as_secs_f64());
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", xlb::cli::rate::render(&r));
    }
    Ok(())
}

/// `xlb drain`, then with `--wait` until the real server has no active connection.
fn drain_command(
    daemon: &DaemonArgs,
    service: ServiceRef,
    real: RealRef,
    wait: bool,
    timeout: u64,
) -> anyhow::Result<()> {
    let reply = ask(daemon, &Request::Drain { service, real })?;
    let pin_path = match &reply {
        Reply::Edited { pin_path, .. } => pin_path.clone(),
        _ => daemon.pin_path.clone(),
    };
    print_outcome(reply)?;
    if !wait {
        return Ok(());
    }
    let waited = control::wait_drained(
        &pin_path,
        service,
        real,
        std::time::Duration::from_secs(timeout),
        |n| {
            println!(
                "{service} -> {real}: {} active, {} inactive connections",
                n.active, n.inactive
            )
        },
    )?;
    match waited {
        Ok(took) => {
            println!(
                "{service} -> {real}: drained, no active connection left (after {:.1} s)",
                took.as_secs_f64()
            );
            Ok(())
        }
        Err(left) => anyhow::bail!(
            "{service} -> {real}: {} active connections left after {timeout} s (still drained)",
            left.active
        ),
    }
}

#[derive(Subcommand)]
enum RealServerAction {
    /// VIPs on `lo`, arp_ignore=1 and arp_announce=2 (previous values recorded).
    Setup {
        #[arg(long = "vip", required = true)]
        vips: Vec<IpAddr>,
        #[arg(long)]
        state_file: Option<PathBuf>,
    },
    /// Remove the VIPs and restore what setup changed.
    Teardown {
        #[arg(long = "vip", required = true)]
        vips: Vec<IpAddr>,
        #[arg(long)]
        state_file: Option<PathBuf>,
    },
}

/// `--interval`: seconds, more than 0 and at most an hour.
fn interval_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!(
            "{s:?}: expected seconds, more than 0 and at most 3600"
        )),
    }
}

fn realserver_options(state_file: Option<PathBuf>) -> RealServerOptions {
    let mut opts = RealServerOptions::default();
    if let Some(f) = state_file {
        opts.state_file = f;
    }
    opts
}

async fn main_inner(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run {
            config,
            pin_path,
            xdp_generic,
            socket,
            log: _,
        } => {
            let opts = RunOptions {
                config_path: config,
                state_file: daemon::default_state_file(&pin_path),
                socket: socket.unwrap_or_else(|| daemon::default_socket(&pin_path)),
                pin_path,
                attach_mode: if xdp_generic {
                    AttachMode::Generic
                } else {
                    AttachMode::Native
                },
            };
            daemon::run(opts, std::future::pending()).await
        }
        Command::Check {
            config,
            no_host_checks,
            diff,
            json,
        } => {
            let loaded = if no_host_checks {
                Config::load(&config)
            } else {
                Config::load_on_host(&config).await
            };
            let cfg = loaded.map_err(|e| anyhow::anyhow!("{e}"))?;
            for w in cfg.warnings(&config) {
                eprintln!("{w}");
            }
            // The commands as this host would run them (users, programs, script
            // security): a host check too.
            if !no_host_checks {
                let commands = xlb::process::audit::Audit::of(&cfg).check_report();
                for w in &commands.warnings {
                    eprintln!("{}: warning: {w}", config.display());
                }
                for e in &commands.errors {
                    eprintln!("{}: error: {e}", config.display());
                }
                if !commands.errors.is_empty() {
                    anyhow::bail!(
                        "{}: {} command(s) refused by enable_script_security",
                        config.display(),
                        commands.errors.len()
                    );
                }
            }
            let ok = format!(
                "{}: OK ({} virtual servers, {} real servers, {} VRRP instances{})",
                config.display(),
                cfg.virtual_server.len(),
                cfg.virtual_server
                    .iter()
                    .map(|v| v.real_server.len())
                    .sum::<usize>(),
                cfg.vrrp_instance.len(),
                if no_host_checks {
                    "; host checks skipped"
                } else {
                    ""
                }
            );
            // With --json, stdout is the plan alone.
            if json {
                eprintln!("{ok}");
            } else {
                println!("{ok}");
            }
            if let Some(running) = diff {
                let old = Config::load(&running).map_err(|e| anyhow::anyhow!("{e}"))?;
                let plan = xlb::diff::diff(&old, &cfg);
                if json {
                    println!("{}", serde_json::to_string_pretty(&plan)?);
                } else {
                    println!("reload from {} to {}:", running.display(), config.display());
                    print!("{}", plan.render());
                }
            }
            Ok(())
        }
        Command::ImportKeepalived {
            file,
            output,
            config_id,
            interface,
            fwmark,
        } => {
            let mut opts = xlb::import::Options {
                interface,
                config_id: config_id.or_else(xlb::import::short_hostname),
                ..Default::default()
            };
            for f in &fwmark {
                opts.add_fwmark(f).map_err(anyhow::Error::msg)?;
            }
            xlb::import::run(&file, output.as_deref(), &opts)
        }
        Command::Status {
            daemon,
            json,
            rate,
            interval,
        } => {
            if rate {
                rate_command(&daemon.pin_path, json, interval).await
            } else {
                status_command(&daemon, json)
            }
        }
        Command::Reload {
            plan: true,
            json,
            daemon,
        } => match ask(&daemon, &Request::Plan)? {
            Reply::Plan { plan, .. } if json => {
                println!("{}", serde_json::to_string_pretty(&plan)?);
                Ok(())
            }
            reply => print_outcome(reply),
        },
        Command::Reload { daemon, .. } => print_outcome(ask(&daemon, &Request::Reload)?),
        Command::Weight {
            service,
            real,
            weight,
            daemon,
        } => print_outcome(ask(
            &daemon,
            &Request::Weight {
                service,
                real,
                weight,
            },
        )?),
        Command::Drain {
            service,
            real,
            wait,
            timeout,
            daemon,
        } => drain_command(&daemon, service, real, wait, timeout),
        Command::Enable {
            service,
            real,
            daemon,
        } => print_outcome(ask(&daemon, &Request::Enable { service, real })?),
        Command::Disable {
            service,
            real,
            daemon,
        } => print_outcome(ask(&daemon, &Request::Disable { service, real })?),
        Command::Log { action } => match action {
            LogAction::Level { filter, daemon } => {
                print_outcome(ask(&daemon, &Request::LogLevel { filter })?)
            }
            LogAction::Reopen { daemon } => print_outcome(ask(&daemon, &Request::LogReopen)?),
        },
        Command::Conns { pin_path, json } => {
            let conns = xlb::cli::conns::read(&pin_path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&conns.conns)?);
            } else {
                print!("{}", xlb::cli::conns::render(&conns));
            }
            Ok(())
        }
        Command::Maps {
            pin_path,
            service,
            flow,
            json,
        } => {
            let mut report = xlb::cli::maps::read(&pin_path, service, flow)?;
            // The tables' maximum is the daemon's config: asked, if one answers.
            report.conn_table = match control::call(
                &daemon::default_socket(&pin_path),
                &xlb::control::Request::Status,
            ) {
                Ok(xlb::control::Reply::Status(info)) => info.conn_table,
                _ => None,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", xlb::cli::maps::render(&report));
            }
            Ok(())
        }
        Command::Teardown { pin_path, force } => {
            // Held through the teardown: no daemon starts on the pins meanwhile.
            let (_lock, holder) = match daemon::PinLock::acquire(&pin_path) {
                Ok(lock) => (Some(lock), teardown::Holder::Nobody),
                Err(daemon::LockError::Held { pid, .. }) => {
                    (None, teardown::Holder::Daemon { pid })
                }
                Err(e) => return Err(e.into()),
            };
            teardown::teardown(&pin_path, holder, force)?;
            // The routers must stop sending this director the VIPs it no longer forwards.
            let handle = xlb::netlink::connect()?;
            for (vip, table) in xlb::bgp::routes::withdraw_everything(&handle).await? {
                println!("withdrew the BGP announcement of {vip} (table {table})");
            }
            Ok(())
        }
        Command::BirdConfig {
            config,
            table,
            local_as,
            peer_as,
            neighbor,
            router_id,
        } => {
            let session = xlb::cli::bird_config::SessionArgs {
                local_as,
                peer_as,
                neighbors: neighbor,
                router_id,
            };
            print!(
                "{}",
                xlb::cli::bird_config::text(config.as_deref(), table, session)?
            );
            Ok(())
        }
        Command::GenerateMan { dir } => {
            for page in xlb::cli::man::generate(Cli::command(), &dir)? {
                println!("{}", page.display());
            }
            Ok(())
        }
        Command::Realserver { action } => match action {
            RealServerAction::Setup { vips, state_file } => {
                realserver::setup(&vips, &realserver_options(state_file)).await
            }
            RealServerAction::Teardown { vips, state_file } => {
                realserver::teardown(&vips, &realserver_options(state_file)).await
            }
        },
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = match &cli.command {
        Command::Run { log, .. } => log.clone(),
        _ => LogOptions::default(),
    };
    if let Err(e) = xlb::logging::init(&log) {
        eprintln!("xlb: {e:#}");
        return ExitCode::FAILURE;
    }
    // Two workers: a long map sync on one never delays a VRRP advert on the other.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xlb: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main_inner(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xlb: {e:#}");
            ExitCode::FAILURE
        }
    }
}
