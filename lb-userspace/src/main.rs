//! The `xlb` command line: a thin layer over the library.

use std::{net::IpAddr, path::PathBuf, process::ExitCode};

use clap::{CommandFactory, Parser, Subcommand};
use xlb::{
    cli::{
        realserver::{self, RealServerOptions},
        status, teardown,
    },
    config::Config,
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
    },
    /// Convert a keepalived.conf (and what it includes) to xlb's TOML configuration;
    /// warnings and errors name FILE:LINE.
    ImportKeepalived {
        file: PathBuf,
        /// Write the TOML here instead of to stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Show the virtual services, real servers and counters from the pinned maps.
    Status {
        #[arg(long, default_value = DEFAULT_PIN_PATH)]
        pin_path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List the tracked connections (as `ipvsadm -Lnc`), read from the pinned maps.
    Conns {
        #[arg(long, default_value = DEFAULT_PIN_PATH)]
        pin_path: PathBuf,
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
    /// Prepare (or restore) this host as a DR real server.
    Realserver {
        #[command(subcommand)]
        action: RealServerAction,
    },
    /// Write the man pages (xlb.8 and one per subcommand) into DIR.
    #[command(hide = true)]
    GenerateMan { dir: PathBuf },
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
            log: _,
        } => {
            let opts = RunOptions {
                config_path: config,
                state_file: daemon::default_state_file(&pin_path),
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
        } => {
            let loaded = if no_host_checks {
                Config::load(&config)
            } else {
                Config::load_on_host(&config).await
            };
            let cfg = loaded.map_err(|e| anyhow::anyhow!("{e}"))?;
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
            println!(
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
            Ok(())
        }
        Command::ImportKeepalived { file, output } => xlb::import::run(&file, output.as_deref()),
        Command::Status { pin_path, json } => {
            let s = status::read(&pin_path, &daemon::default_state_file(&pin_path))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", status::render(&s));
            }
            Ok(())
        }
        Command::Conns { pin_path, json } => {
            let conns = xlb::cli::conns::read(&pin_path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&conns.conns)?);
            } else {
                print!("{}", xlb::cli::conns::render(&conns));
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
            teardown::teardown(&pin_path, holder, force)
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
