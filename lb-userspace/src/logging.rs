//! Where xlb's log goes and how verbose it is, changeable while the daemon runs.
//!
//! The subscriber is global (tracing's), so its runtime handles are too: the control
//! socket changes the verbosity with [`set_filter`] and reopens a log file with
//! [`reopen`] (for logrotate) without knowing how logging was set up.

use std::sync::OnceLock;

use anyhow::{Context, Result};
use tracing_subscriber::{
    EnvFilter, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt,
};

/// The default verbosity. netlink-packet-route warns about every attribute newer than
/// itself: noise.
pub const DEFAULT_FILTER: &str = "info,netlink_packet_route=error";

/// The filter's reload handle, set once by [`init`].
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Logs to stderr, with the filter from `XLB_LOG` or [`DEFAULT_FILTER`].
pub fn init() {
    let filter =
        EnvFilter::try_from_env("XLB_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        let _ = FILTER.set(handle);
    }
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

/// Reopens the log file after logrotate moved it. Logging to stderr, there is nothing
/// to reopen.
pub fn reopen() -> Result<()> {
    Ok(())
}
