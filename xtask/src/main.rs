//! Developer tasks for xlb: `cargo xtask <setup | build | run | install | deb | test | demo |
//! bench>`.
//!
//! Each subcommand prints one line per step, and every command it runs as `  $ ...`;
//! a failing command stops the task, and xtask exits with that command's exit code.

mod bench;
mod build;
mod deb;
mod demo;
mod install;
mod run;
mod setup;
mod test;
mod util;

use std::{ffi::OsString, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "xlb developer tasks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and testing need: rust-src, bpf-linker, Debian packages, bpffs.
    /// Idempotent; fast when nothing is missing.
    Setup,
    /// Setup, then build `xlb` with its embedded XDP object.
    Build {
        /// Optimised build (`target/release/xlb`).
        #[arg(long)]
        release: bool,
    },
    /// Build, then run `xlb run ARGS` in the foreground as root (through sudo if needed).
    Run {
        /// Run the optimised build.
        #[arg(long)]
        release: bool,
        /// Arguments of `xlb run`, after `--` (e.g. `-- -c /etc/xlb/xlb.toml`).
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Install xlb as a service: PREFIX/sbin/xlb (release build, XDP object embedded), the
    /// systemd unit, man pages, /etc/xlb/xlb.toml.sample (never xlb.toml) and a logrotate
    /// snippet.
    Install {
        #[arg(long, default_value = "/usr/local")]
        prefix: PathBuf,
        /// Stage everything under DIR (packaging; nothing outside it is touched).
        #[arg(long)]
        destdir: Option<PathBuf>,
        /// Install the debug build.
        #[arg(long)]
        debug: bool,
        /// Then check the install: `xlb --version` and `xlb check` on the sample from
        /// there, the man pages, `systemd-analyze verify` on the unit.
        #[arg(long)]
        check: bool,
    },
    /// A .deb of the same files (prefix /usr) with cargo-deb, into target/debian/; the
    /// unit is enabled on install, not started.
    Deb,
    /// Every test: unit tests, then the privileged integration tests (needs root).
    Test {
        /// Arguments for the test binaries, after `--` (e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// A DR lab in network namespaces on this machine (client, director, three real
    /// servers), showing balancing through XDP; failover joins it with VRRP.
    Demo {
        /// Instead: three active-active directors behind an ECMP router, each announcing
        /// the VIP by BGP through BIRD; one dies and comes back, connections survive.
        #[arg(long)]
        scale_out: bool,
    },
    /// xlb against the XDP ceiling and nftables in one run (needs root): packets per
    /// second, BPF_PROG_TEST_RUN ns per packet, failover time, control-plane costs. Prints
    /// a table; every figure goes to target/bench/latest.json.
    Bench {
        /// Every scenario, briefly (what `cargo xtask test` runs); debug build by default.
        #[arg(long)]
        quick: bool,
        /// Optimised build (the default without --quick).
        #[arg(long, conflicts_with = "debug")]
        release: bool,
        /// Debug build (the default with --quick).
        #[arg(long)]
        debug: bool,
        /// Arguments for the benchmark driver, after `--` (e.g. `-- --only forward,testrun`).
        #[arg(last = true)]
        args: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Setup => setup::setup().map(drop),
        Task::Build { release } => build::build(release).map(drop),
        Task::Run { release, args } => run::run(release, args),
        Task::Install {
            prefix,
            destdir,
            debug,
            check,
        } => install::install(&install::InstallArgs {
            prefix,
            destdir,
            release: !debug,
            check,
        }),
        Task::Deb => deb::deb(),
        Task::Test { args } => test::test(&args),
        Task::Demo { scale_out } => demo::demo(scale_out),
        Task::Bench {
            quick,
            release,
            debug,
            args,
        } => bench::bench(&bench::BenchArgs {
            quick,
            release: if release {
                Some(true)
            } else if debug {
                Some(false)
            } else {
                None
            },
            args,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            match err.downcast_ref::<util::CommandFailed>() {
                Some(failed) => ExitCode::from(u8::try_from(failed.code).unwrap_or(1).max(1)),
                None => ExitCode::FAILURE,
            }
        }
    }
}
