//! Where xlb's log goes and how verbose it is, changeable while the daemon runs.
//!
//! The subscriber is global (tracing's), so its runtime handles are too: the control
//! socket changes the verbosity with [`set_filter`] and reopens a log file with
//! [`reopen`] (for logrotate) without knowing how logging was set up.
//!
//! Where the lines go, as a keepalived user expects ([`LogOptions`], options of `xlb run`):
//! - stderr by default, which journald takes under systemd. When stderr *is* the journal
//!   (`JOURNAL_STREAM` names it), each line starts with its syslog priority (`<3>` ...,
//!   sd-daemon(3)) and has no timestamp of its own, so `journalctl -p warning` works;
//!   colours only on a terminal;
//! - `--log-file PATH`: appended to, created 0640, reopened by [`reopen`] (`xlb log
//!   reopen`, and every reload) after logrotate moved it (`file`);
//! - `--log-facility local0..local7|daemon|user` (keepalived's `-S`): syslog through
//!   `/dev/log`, RFC 3164 as glibc's syslog(3) writes it (`syslog`);
//!
//! A line that cannot be written to the file or to syslog goes to stderr with the reason,
//! never nowhere. Every sink gets whole lines ([`line`]).

mod file;
mod line;
mod syslog;

use std::{path::PathBuf, sync::Arc, sync::OnceLock};

use anyhow::{Context, Result};
use tracing_subscriber::{
    EnvFilter, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt,
};

pub use file::LogFile;
pub use syslog::{Facility, SYSLOG_SOCKET_ENV, Syslog};

use self::line::{Journal, Lines};

/// The default verbosity. netlink-packet-route warns about every attribute newer than
/// itself: noise.
pub const DEFAULT_FILTER: &str = "info,netlink_packet_route=error";

/// The filter's reload handle, set once by [`init`].
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The log file, when there is one, for [`reopen`].
static FILE: OnceLock<Arc<LogFile>> = OnceLock::new();

/// Where the log goes (`xlb run` options). Neither: stderr.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct LogOptions {
    /// Append the log to FILE (created 0640) instead of stderr; reopened on reload and by
    /// `xlb log reopen`, for logrotate.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Send the log to syslog (/dev/log, or $XLB_SYSLOG_SOCKET) with this facility:
    /// local0..local7 (or 0..7, as keepalived's -S), daemon or user.
    #[arg(long, value_name = "FACILITY")]
    pub log_facility: Option<Facility>,
}

/// Sets up logging: stderr, or the file and / or syslog of `opts`; the filter from
/// `XLB_LOG` or [`DEFAULT_FILTER`]. Fails when the file cannot be opened or there is no
/// syslog socket.
pub fn init(opts: &LogOptions) -> Result<()> {
    let filter =
        EnvFilter::try_from_env("XLB_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (filter, handle) = reload::Layer::new(filter);

    let file = match &opts.log_file {
        Some(path) => Some(Arc::new(
            LogFile::open(path).with_context(|| format!("--log-file {}", path.display()))?,
        )),
        None => None,
    };
    let syslog = match opts.log_facility {
        Some(facility) => Some(Arc::new(Syslog::new(facility).context("--log-facility")?)),
        None => None,
    };
    let to_stderr = file.is_none() && syslog.is_none();
    let journal = to_stderr && line::stderr_is_journal();

    let stderr = (to_stderr && !journal).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let journal = journal.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(Lines(Arc::new(Journal)))
            .with_ansi(false)
            .without_time()
            .with_level(false)
    });
    let to_file = file.clone().map(|f| {
        tracing_subscriber::fmt::layer()
            .with_writer(Lines(f))
            .with_ansi(false)
    });
    let to_syslog = syslog.map(|s| {
        tracing_subscriber::fmt::layer()
            .with_writer(Lines(s))
            .with_ansi(false)
            .without_time()
            .with_level(false)
    });
    if tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(journal)
        .with(to_file)
        .with(to_syslog)
        .try_init()
        .is_ok()
    {
        let _ = FILTER.set(handle);
        if let Some(f) = file {
            let _ = FILE.set(f);
        }
    }
    Ok(())
}

/// Replaces the verbosity: `debug`, `info,xlb::vrrp=trace`, ... (`EnvFilter` syntax).
pub fn set_filter(directives: &str) -> Result<()> {
    let filter = EnvFilter::try_new(directives)
        .with_context(|| format!("{directives:?} is not a log filter"))?;
    FILTER
        .get()
        .context("logging is not set up in this process")?
        .reload(filter)
        .context("changing the log filter")
}

/// The filter in effect, as [`set_filter`] takes it.
pub fn current_filter() -> Option<String> {
    FILTER.get()?.with_current(|f| f.to_string()).ok()
}

/// Reopens the log file after logrotate moved it. Logging to stderr or syslog, there is
/// nothing to reopen.
pub fn reopen() -> Result<()> {
    match FILE.get() {
        Some(f) => f
            .reopen()
            .with_context(|| format!("reopening {}", f.path().display())),
        None => Ok(()),
    }
}
